//! System packages the tests need: QEMU >= 8.0 and Xen's C headers (libxen-dev).
//! When one is missing we run `.ci/install-deps.sh` (apt-get, root, Debian), else stop
//! with one line saying what to install.

use crate::cmd;
use crate::error::{Error, Result};
use std::path::Path;
use std::process::Command;

pub const QEMU: &str = "qemu-system-x86_64";

/// Major version of the installed QEMU, if any.
fn qemu_major() -> Option<u32> {
    let out = Command::new(QEMU).arg("--version").output().ok()?;
    parse_qemu_major(&String::from_utf8_lossy(&out.stdout))
}

/// `QEMU emulator version 10.0.2 (...)` -> 10.
pub fn parse_qemu_major(version: &str) -> Option<u32> {
    let rest = version.split("version ").nth(1)?;
    rest.split('.').next()?.trim().parse().ok()
}

fn missing() -> Vec<&'static str> {
    let mut m = Vec::new();
    if qemu_major().is_none_or(|v| v < 8) {
        m.push("qemu-system-x86 (>= 8.0, from bookworm-backports)");
    }
    if !Path::new("/usr/include/xen/io/ring.h").exists() {
        m.push("libxen-dev");
    }
    m
}

fn can_install() -> bool {
    let root = cmd::output(Command::new("id").arg("-u")).map(|s| s.trim() == "0").unwrap_or(false);
    root && Path::new("/etc/debian_version").exists()
}

pub fn ensure(root: &Path) -> Result<()> {
    let m = missing();
    if m.is_empty() {
        return Ok(());
    }
    if !can_install() {
        return Err(Error::new(format!("missing {}: install it (as root: bash .ci/install-deps.sh)", m.join(", "))));
    }
    eprintln!("xtask: installing {}", m.join(", "));
    cmd::run(Command::new("bash").arg(root.join(".ci/install-deps.sh")))?;
    let still = missing();
    if !still.is_empty() {
        return Err(Error::new(format!("still missing after install: {}", still.join(", "))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_qemu_major;

    #[test]
    fn reads_qemu_major_version() {
        assert_eq!(parse_qemu_major("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2)\n"), Some(10));
        assert_eq!(parse_qemu_major("QEMU emulator version 7.2.15 (Debian 1:7.2+dfsg-7)"), Some(7));
        assert_eq!(parse_qemu_major("garbage"), None);
    }
}
