//! `cargo xtask bench boot`: time from QEMU start to the initial domain's first line and
//! to its shutdown, for xen-core and real Xen 4.17 booting the same pv-guest image with
//! the same command lines, in one run.

use crate::error::{Error, Result};
use crate::qemu::{self, Machine};
use crate::{deps, images, reference};
use std::path::Path;
use std::time::Duration;

const RUNS: usize = 5;
const LINUX_RUNS: usize = 3;
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
    let xen_path = reference::xen_hypervisor(root)?;
    let ours = measure(root, "xen-core", &machine(img.xen_core.clone()))?;
    let xen = measure(root, "xen-4.17", &machine(xen_path.clone()))?;
    let mut t = String::from("| hypervisor | QEMU start to dom0's first line (ms) | to dom0 shutdown (ms) |\n|---|---:|---:|\n");
    t += &format!("| xen-core | {:.0} | {:.0} |\n", ours.0, ours.1);
    t += &format!("| Xen 4.17 (Debian) | {:.0} | {:.0} |\n", xen.0, xen.1);
    // Debian's Linux as dom0, same compressed kernel and initramfs on both, alternating.
    let (vmlinuz, initrd) = crate::linux_dom0::bench_image(root)?;
    let (mut l_ours, mut l_xen) = (Vec::new(), Vec::new());
    for i in 0..LINUX_RUNS {
        for (name, hv, into) in [("xen-core", &img.xen_core, &mut l_ours), ("xen-4.17", &xen_path, &mut l_xen)] {
            let m = crate::linux_dom0::machine(hv.clone(), vmlinuz.clone(), initrd.clone());
            let log = root.join(format!("target/logs/bench-boot-linux-{name}-{i}.log"));
            let marker = crate::linux_dom0::BENCH_MARKER;
            let out = qemu::run(&m, &log, Duration::from_secs(240), &[marker], &[marker])?;
            let at = out.marks[0].ok_or_else(|| Error::new(format!("{name}: no Linux userspace marker in {}", log.display())))?;
            into.push(at.as_secs_f64() * 1000.0);
        }
    }
    let span = |v: &[f64]| format!("{:.0}-{:.0}", v.iter().copied().fold(f64::MAX, f64::min), v.iter().copied().fold(0.0, f64::max));
    t += &format!(
        "\nDebian's Linux 6.1 as dom0 (the stock XZ `vmlinuz`, a busybox initramfs whose init prints a marker; `dom0_mem=512M`, 1 GiB, 2 CPUs), {LINUX_RUNS} boots each, alternating:\n\n\
| hypervisor | QEMU start to dom0 userspace (ms, median) | range |\n|---|---:|---|\n\
| xen-core | {:.0} | {} |\n| Xen 4.17 (Debian) | {:.0} | {} |\n",
        median(l_ours.clone()),
        span(&l_ours),
        median(l_xen.clone()),
        span(&l_xen)
    );
    Ok(t)
}
