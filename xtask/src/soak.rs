//! `cargo xtask soak [--cycles N]`: Linux dom0 on xen-core creates and destroys a pv-guest
//! domU N times (default 1,000) with our `xl`, and the hypervisor's free page count
//! (`xl info`'s `free_pages`, from `sysctl physinfo`) must come back exactly, with no
//! xenstore entries of dead domains left. Not part of CI (it takes a while under TCG).
//! `--xen` runs the same on Xen 4.17 for comparison.

use crate::dom0::{self, Variant};
use crate::error::{Error, Result};
use crate::qemu::{self, Exit};
use crate::results::parse_test_line;
use std::path::Path;
use std::time::Duration;

const DEFAULT_CYCLES: u32 = 1000;

/// The cycles the soak image runs (`@SOAK_CYCLES@` in its script).
pub fn cycles() -> u32 {
    std::env::var("XTASK_SOAK_CYCLES").ok().and_then(|v| v.parse().ok()).unwrap_or(DEFAULT_CYCLES)
}

/// dom0's steps after `base`: the cycles, a progress line every 100, then the checks.
pub const STEPS: &str = r#"#@ soak
pages() { xl info | sed -n 's/^free_pages *: //p'; }
p0=$(pages); n=@SOAK_CYCLES@; i=0; broke=0
read t0 _ < /proc/uptime
echo "SOAK start free_pages $p0 cycles $n"
while [ $i -lt $n ]; do
  # Created running (not paused), destroyed at once: the guest is torn down wherever it is
  # in its start-up, xenstore traffic included.
  xl create /etc/xen/pv-guest.cfg "name=\"soak$i\"" >/tmp/soak 2>&1 || { broke=1; echo "SOAK create $i failed: $(cat /tmp/soak)"; break; }
  xl destroy soak$i >/tmp/soak 2>&1 || { broke=1; echo "SOAK destroy $i failed: $(cat /tmp/soak)"; break; }
  i=$((i+1))
  [ $i -eq 1 ] && { p1=$(pages); echo "SOAK after the first cycle free_pages $p1 (kept by the first cycle: $((p0 - p1)))"; }
  [ $((i % 100)) -eq 0 ] && { read t _ < /proc/uptime; echo "SOAK $i cycles free_pages $(pages) uptime ${t%.*}"; }
done
read t1 _ < /proc/uptime
sleep 0.5
pn=$(pages)
echo "SOAK end free_pages $pn after $i cycles in $(echo "$t0 $t1" | awk '{printf "%d", $2-$1}') s"
check soak-all-cycles test $broke = 0
# The first domain a dom0 creates leaves state behind that later ones reuse (on Xen too:
# `cargo xtask soak --xen` shows the same); from then on every cycle gives back all it took.
want soak-free-pages-exact-after-the-first-cycle "$p1" echo "$pn"
want soak-no-stale-xenstore-domains 0 xenstore-list /local/domain
want soak-no-stale-vm-entries "00000000-0000-0000-0000-000000000000" xenstore-list /vm
"#;

pub fn soak(root: &Path, args: &[&str]) -> Result<()> {
    let mut it = args.iter();
    let mut xen = false;
    while let Some(a) = it.next() {
        match *a {
            "--xen" => xen = true,
            "--cycles" => {
                let n = it.next().and_then(|v| v.parse::<u32>().ok()).ok_or_else(|| Error::new("soak: --cycles needs a number"))?;
                std::env::set_var("XTASK_SOAK_CYCLES", n.to_string());
            }
            other => return Err(Error::new(format!("soak: unknown argument `{other}` (--cycles N, --xen)"))),
        }
    }
    crate::deps::ensure(root)?;
    let img = crate::images::build_all(root)?;
    let image = dom0::build_image(root, Variant::Soak)?;
    let hv = if xen { crate::reference::xen_hypervisor(root)? } else { img.xen_core };
    let name = if xen { "Xen 4.17" } else { "xen-core" };
    let m = dom0::interactive_machine(hv, &image);
    let n = cycles();
    println!("xtask: soak: {n} create/destroy cycles of a pv-guest domU from Linux dom0 on {name}");
    let log = root.join(if xen { "target/logs/soak-xen.log" } else { "target/logs/soak.log" });
    // About a second per cycle under TCG; generous, as a stuck cycle shows in the log.
    let timeout = Duration::from_secs(600 + 10 * u64::from(n));
    let out = qemu::run(&m, &log, timeout, &[dom0::DOM0_POWEROFF, "Panic on CPU"], &[])?;
    for l in out.log.lines().filter(|l| l.contains("SOAK ")) {
        println!("  {}", l.trim_start_matches(|c: char| c != 'S'));
    }
    let tests: Vec<_> = out.log.lines().filter_map(parse_test_line).filter(|t| t.name.starts_with("soak-")).collect();
    for t in &tests {
        println!("  {}  {} {}", if t.passed { "ok  " } else { "FAIL" }, t.name, t.detail);
    }
    println!("  log: {} ({:?}, {} s)", log.display(), out.exit, out.elapsed.as_secs());
    let clean_end = matches!(out.exit, Exit::Stopped(ref s) if s == dom0::DOM0_POWEROFF);
    if tests.len() == 4 && tests.iter().all(|t| t.passed) && clean_end {
        Ok(())
    } else {
        Err(Error::new("soak: a check failed or dom0 did not finish (see the log)"))
    }
}
