//! Reference binaries from Debian's packages (`apt-get download`, cached under
//! `target/reference/`): real Xen 4.17, Debian's Linux kernel, busybox and the
//! userspace the dom0 tier puts into its initramfs.

use crate::cmd;
use crate::error::{Context, Error, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

pub const XEN_PACKAGE: &str = "xen-hypervisor-4.17-amd64";

fn cache(root: &Path) -> PathBuf {
    root.join("target/reference")
}

/// The cached `.deb` of `package`, downloading it first if needed.
fn deb(root: &Path, package: &str) -> Result<PathBuf> {
    let dir = cache(root).join("debs");
    std::fs::create_dir_all(&dir)?;
    let find = || -> Result<Option<PathBuf>> {
        for e in std::fs::read_dir(&dir)? {
            let p = e?.path();
            let name = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with(&format!("{package}_")) && name.ends_with(".deb") {
                return Ok(Some(p));
            }
        }
        Ok(None)
    };
    if let Some(p) = find()? {
        return Ok(p);
    }
    eprintln!("xtask: apt-get download {package}");
    let download = || cmd::output(Command::new("apt-get").args(["download", package]).current_dir(&dir));
    if download().is_err() {
        // A fresh machine may have no package lists yet.
        cmd::output(Command::new("apt-get").arg("update"))?;
        download()?;
    }
    find()?.ok_or_else(|| Error::new(format!("apt-get download {package} left no .deb in {}", dir.display())))
}

/// Unpacks `package` (once) and returns the directory it was unpacked into.
pub fn unpacked(root: &Path, package: &str) -> Result<PathBuf> {
    let deb = deb(root, package)?;
    let dir = cache(root).join("unpacked").join(package);
    let stamp = dir.join(".unpacked");
    if !stamp.exists() {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        cmd::run(Command::new("dpkg").arg("-x").arg(&deb).arg(&dir))?;
        std::fs::write(&stamp, deb.to_string_lossy().as_bytes())?;
    }
    Ok(dir)
}

/// Real Xen 4.17's multiboot ELF (gunzipped from the package's `/boot/xen-*.gz`).
pub fn xen_hypervisor(root: &Path) -> Result<PathBuf> {
    let out = cache(root).join("xen-4.17");
    if out.exists() {
        return Ok(out);
    }
    let dir = unpacked(root, XEN_PACKAGE)?;
    let boot = dir.join("boot");
    let gz = std::fs::read_dir(&boot)
        .context(|| format!("reading {}", boot.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            n.starts_with("xen-") && n.ends_with(".gz")
        })
        .ok_or_else(|| Error::new(format!("no xen-*.gz in {}", boot.display())))?;
    let tmp = cache(root).join("xen-4.17.partial");
    cmd::output(Command::new("sh").arg("-c").arg(format!("zcat '{}' > '{}'", gz.display(), tmp.display())))
        .and_then(|_| std::fs::rename(&tmp, &out).map_err(Error::from))
        .context(|| format!("unpacking {}", gz.display()))?;
    Ok(out)
}
