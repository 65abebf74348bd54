//! `cargo xtask soak [--cycles N]`: Linux dom0 on xen-core creates and destroys a pv-guest
//! domU N times (default 1,000) with our `xl`, and the hypervisor's free page count
//! (`xl info`'s `free_pages`, from `sysctl physinfo`) must come back exactly, with no
//! xenstore entries of dead domains left. Not part of CI (it takes a while under TCG).
//! `--xen` runs the same on Xen 4.17 for comparison. `--linux`: Linux domUs instead (one
//! restarted by a reboot, then two at a time, each booted to its shell's loop with one
//! ballooned down), destroyed; every Linux oops or panic is printed with its console.

use crate::dom0::{self, Variant};
use crate::error::{Error, Result};
use crate::qemu::{self, Exit};
use crate::results::parse_test_line;
use std::path::Path;
use std::time::Duration;

const DEFAULT_CYCLES: u32 = 1000;

/// Whether the soak boots Linux domUs (`--linux`) rather than pv-guests.
pub fn linux() -> bool {
    std::env::var("XTASK_SOAK_KIND").is_ok_and(|k| k == "linux")
}

/// dom0's steps after `base` for `--linux`: each cycle creates a Linux domU that reboots
/// and is restarted (then destroyed), then two Linux domUs at once (192 MiB, one ballooned to
/// 128 MiB once its shell loop runs), waits for each to report its memory three times (so
/// init has forked), looks for a kernel oops on their consoles, destroys them.
pub const LINUX_STEPS: &str = r#"#@ soak
pages() { xl info | sed -n 's/^free_pages *: //p'; }
p0=$(pages); n=@SOAK_CYCLES@; i=0; broke=0; crashed=0; up=0
read t0 _ < /proc/uptime
echo "SOAK start free_pages $p0 linux cycles $n"
dom0kb() { cat /sys/devices/system/xen_memory/xen_memory0/info/current_kb 2>/dev/null; }
echo "SOAK dom0 current_kb $(dom0kb)"
while [ $i -lt $n ]; do
  # As the dom0 tier's restart section before its memset one: a domU that reboots at
  # once and is restarted under a new id by xl, then destroyed.
  xl create /etc/xen/linux.cfg "name=\"lr$i\"" 'on_reboot="restart"' 'extra="@LINUX_CONSOLE@ selftest_reboot"' 'disk=[]' 'vif=[]' >/tmp/soak 2>&1 || { broke=1; echo "SOAK create lr$i failed: $(cat /tmp/soak)"; }
  id0=$(xl domid lr$i); id1=$id0
  read t _ < /proc/uptime; end=$(( ${t%.*} + 120 ))
  while [ "$id1" = "$id0" ] || [ -z "$id1" ]; do read t _ < /proc/uptime; [ ${t%.*} -ge $end ] && break; sleep 0.2; id1=$(xl domid lr$i 2>/dev/null); done
  [ "$id1" != "$id0" ] || echo "SOAK lr$i did not restart"
  xl destroy lr$i >/dev/null 2>&1
  for s in a b; do
    xl create /etc/xen/linux.cfg "name=\"lx$s$i\"" 'memory=192' 'extra="@LINUX_CONSOLE@ memwatch"' 'disk=[]' 'vif=[]' >/tmp/soak 2>&1 || { broke=1; echo "SOAK create lx$s$i failed: $(cat /tmp/soak)"; }
  done
  waitlog /var/log/xen/console/guest-lxa$i.log 'MEM MemTotal' 120 && xl mem-set lxa$i 128m
  for s in a b; do
    L=/var/log/xen/console/guest-lx$s$i.log
    read t _ < /proc/uptime; end=$(( ${t%.*} + 120 ))
    mems() { c=$(grep -a -c 'MEM MemTotal' $L 2>/dev/null); echo ${c:-0}; }
    while [ $(mems) -lt 3 ] && ! grep -a -q -E 'Oops|Kernel panic|BUG:|general protection' $L; do
      read t _ < /proc/uptime; [ ${t%.*} -ge $end ] && break; sleep 0.3
    done
    if grep -a -q -E 'Oops|Kernel panic|BUG:|general protection|Call Trace' $L; then
      crashed=$((crashed+1)); sleep 2
      echo "SOAK CRASH lx$s$i in cycle $i"; tr -d '\r' < $L | sed 's/^/SOAK con| /' | tail -120
    elif [ $(mems) -ge 3 ]; then up=$((up+1))
    else echo "SOAK lx$s$i never printed its memory three times"; tr -d '\r' < $L | sed 's/^/SOAK con| /' | tail -30; fi
    xl destroy lx$s$i >/tmp/soak 2>&1 || { broke=1; echo "SOAK destroy lx$s$i failed: $(cat /tmp/soak)"; }
    rm -f $L
  done
  i=$((i+1))
  read t _ < /proc/uptime; echo "SOAK $i cycles, $up domUs up, $crashed crashed, free_pages $(pages) uptime ${t%.*}"
done
read t1 _ < /proc/uptime
# The last domain's ring pages come back when the daemons unmap them: up to 30 s.
k=0; pn=$(pages); while [ "$pn" != "$p0" ] && [ $k -lt 60 ]; do sleep 0.5; k=$((k+1)); pn=$(pages); done
echo "SOAK free_pages $pn, $k half-seconds after the last destroy"
xl list | sed 's/^/SOAK xl list| /'
echo "SOAK dom0 current_kb $(dom0kb)"
echo "SOAK end free_pages $pn after $i cycles in $(echo "$t0 $t1" | awk '{printf "%d", $2-$1}') s"
check soak-all-cycles test $broke = 0
want soak-no-linux-crash 0 echo $crashed
want soak-free-pages-exact "$p0" echo "$pn"
want soak-no-stale-xenstore-domains 0 xenstore-list /local/domain
"#;

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
  [ $((i % 100)) -eq 0 ] && { read t _ < /proc/uptime; echo "SOAK $i cycles free_pages $(pages) uptime ${t%.*}"; }
done
read t1 _ < /proc/uptime
sleep 0.5
pn=$(pages)
echo "SOAK end free_pages $pn after $i cycles in $(echo "$t0 $t1" | awk '{printf "%d", $2-$1}') s"
check soak-all-cycles test $broke = 0
# (The counts printed during the loop can be a page short: a daemon in dom0 may still map
# the last destroyed domain's ring, which is freed at its last unmap.)
want soak-free-pages-exact "$p0" echo "$pn"
want soak-no-stale-xenstore-domains 0 xenstore-list /local/domain
want soak-no-stale-vm-entries "00000000-0000-0000-0000-000000000000" xenstore-list /vm
"#;

pub fn soak(root: &Path, args: &[&str]) -> Result<()> {
    let mut it = args.iter();
    let mut xen = false;
    while let Some(a) = it.next() {
        match *a {
            "--xen" => xen = true,
            "--linux" => std::env::set_var("XTASK_SOAK_KIND", "linux"),
            "--cycles" => {
                let n = it.next().and_then(|v| v.parse::<u32>().ok()).ok_or_else(|| Error::new("soak: --cycles needs a number"))?;
                std::env::set_var("XTASK_SOAK_CYCLES", n.to_string());
            }
            other => return Err(Error::new(format!("soak: unknown argument `{other}` (--cycles N, --xen, --linux)"))),
        }
    }
    crate::deps::ensure(root)?;
    let img = crate::images::build_all(root)?;
    let image = dom0::build_image(root, Variant::Soak)?;
    let hv = if xen { crate::reference::xen_hypervisor(root)? } else { img.xen_core };
    let name = if xen { "Xen 4.17" } else { "xen-core" };
    let m = dom0::interactive_machine(hv, &image);
    let n = cycles();
    let kind = if linux() { "two Linux domUs" } else { "a pv-guest domU" };
    println!("xtask: soak: {n} create/destroy cycles of {kind} from Linux dom0 on {name}");
    let log = root.join(if xen { "target/logs/soak-xen.log" } else { "target/logs/soak.log" });
    // About a second per cycle under TCG; generous, as a stuck cycle shows in the log.
    let timeout = Duration::from_secs(600 + if linux() { 60 } else { 10 } * u64::from(n));
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
