//! The Rust targets and components the images and the host tier need. rustup reads
//! `rust-toolchain.toml` only when it installs a toolchain, so a stable toolchain that was
//! already there lacks the bare-metal and musl targets: add them (and say so) before
//! building anything.

use crate::cmd;
use crate::error::{Error, Result};
use std::path::Path;
use std::process::Command;

pub const TARGETS: [&str; 2] = ["x86_64-unknown-none", "x86_64-unknown-linux-musl"];
pub const COMPONENTS: [&str; 2] = ["clippy", "rustfmt"];

/// Names in `wanted` that `installed` (one name per line, as rustup lists them) lacks.
/// rustup lists components with their host suffix (`clippy-x86_64-unknown-linux-gnu`).
pub fn absent<'a>(installed: &str, wanted: &[&'a str]) -> Vec<&'a str> {
    wanted
        .iter()
        .copied()
        .filter(|w| !installed.lines().map(str::trim).any(|l| l == *w || l.strip_prefix(w).is_some_and(|r| r.starts_with('-'))))
        .collect()
}

fn rustup(root: &Path) -> Command {
    let mut c = Command::new("rustup");
    c.current_dir(root);
    c
}

/// Adds missing targets and components to the toolchain `rust-toolchain.toml` selects.
pub fn ensure(root: &Path) -> Result<()> {
    let listed = |what: &str| cmd::output(rustup(root).args([what, "list", "--installed"]));
    let (targets, components) = match (listed("target"), listed("component")) {
        (Ok(t), Ok(c)) => (t, c),
        // No rustup (a distribution's cargo): nothing we can add; the build says what is missing.
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("xtask: cannot list the Rust targets ({e}); not adding any");
            return Ok(());
        }
    };
    let (t, c) = (absent(&targets, &TARGETS), absent(&components, &COMPONENTS));
    if !t.is_empty() {
        eprintln!("xtask: adding Rust targets {}", t.join(", "));
        cmd::run(rustup(root).args(["target", "add"]).args(&t))?;
    }
    if !c.is_empty() {
        eprintln!("xtask: adding Rust components {}", c.join(", "));
        cmd::run(rustup(root).args(["component", "add"]).args(&c))?;
    }
    let now = listed("target")?;
    let still = absent(&now, &TARGETS);
    if !still.is_empty() {
        return Err(Error::new(format!("Rust targets still missing after `rustup target add`: {}", still.join(", "))));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::absent;

    #[test]
    fn finds_missing_targets_and_suffixed_components() {
        let targets = "x86_64-unknown-linux-gnu\nx86_64-unknown-none\n";
        assert_eq!(absent(targets, &super::TARGETS), vec!["x86_64-unknown-linux-musl"]);
        let comps = "cargo-x86_64-unknown-linux-gnu\nclippy-x86_64-unknown-linux-gnu\nrustc-x86_64-unknown-linux-gnu\n";
        assert_eq!(absent(comps, &super::COMPONENTS), vec!["rustfmt"]);
        assert!(absent("", &[]).is_empty());
    }
}
