//! `cargo xtask bench boot`: time from QEMU start to the initial domain's first line and
//! to its shutdown, for xen-core and real Xen 4.17 booting the same pv-guest image with
//! the same command lines, in one run.

use crate::error::{Error, Result};
use crate::qemu::{self, Machine};
use crate::{deps, images, reference};
use std::path::Path;
use std::time::Duration;

const RUNS: usize = 5;
const HV_CMDLINE: &str = "console=com1 dom0_mem=64M";
const GUEST: &str = "tests=console";

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Medians over RUNS boots: (QEMU start to "pv-guest: start", to dom0 shutdown) in ms.
fn measure(root: &Path, name: &str, m: &Machine) -> Result<(f64, f64)> {
    let (mut start, mut done) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let log = root.join(format!("target/logs/bench-boot-{name}-{i}.log"));
        let out = qemu::run(m, &log, Duration::from_secs(120), &["Hardware Dom0 halted"], &["pv-guest: start", "Hardware Dom0 halted"])?;
        match (out.marks[0], out.marks[1]) {
            (Some(s), Some(d)) => {
                start.push(s.as_secs_f64() * 1000.0);
                done.push(d.as_secs_f64() * 1000.0);
            }
            _ => return Err(Error::new(format!("{name}: no guest start/shutdown in {}", log.display()))),
        }
    }
    Ok((median(start), median(done)))
}

pub fn boot(root: &Path) -> Result<String> {
    deps::ensure(root)?;
    let img = images::build_all(root)?;
    let machine = |kernel| Machine {
        kernel,
        append: HV_CMDLINE.into(),
        modules: vec![(img.pv_guest.clone(), GUEST.into())],
        memory_mib: 512,
        smp: 1,
    };
    let ours = measure(root, "xen-core", &machine(img.xen_core.clone()))?;
    let xen = measure(root, "xen-4.17", &machine(reference::xen_hypervisor(root)?))?;
    let mut t = String::from("| hypervisor | QEMU start to dom0's first line (ms) | to dom0 shutdown (ms) |\n|---|---:|---:|\n");
    t += &format!("| xen-core | {:.0} | {:.0} |\n", ours.0, ours.1);
    t += &format!("| Xen 4.17 (Debian) | {:.0} | {:.0} |\n", xen.0, xen.1);
    Ok(t)
}
