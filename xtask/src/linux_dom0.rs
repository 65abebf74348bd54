//! Debian's stock Linux as the initial domain, on xen-core and on real Xen 4.17 in the same
//! invocation, with the same kernel, initramfs and script: userspace, Xen's /sys and
//! /proc entries, the dom0 device nodes, 1,000 fork+exec and a 64 MiB checksum. Both
//! must print the same test lines, all passing.

use crate::dom0::{self, Tree};
use crate::error::{Context, Result};
use crate::images::Images;
use crate::qemu::{self, Exit, Machine};
use crate::reference;
use crate::results::{parse_test_line, Tally};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The modules dom0 needs for its device nodes (the dom0 tier loads the same).
const MODULES: &[&str] = &["xen-evtchn", "xen-gntdev", "xen-privcmd", "xenfs"];
/// Both hypervisors: the machine the issue's reference boot used.
const HV_CMDLINE: &str = "console=com1 dom0_mem=512M,max:512M loglvl=all guest_loglvl=all";
const KERNEL_ARGS: &str = "console=hvc0 earlyprintk=xen acpi=off pci=off";
const DONE: &str = "LINUX-DOM0-DONE";
/// Bytes of the checksummed file, and the line that fills it.
const BIG_BYTES: u64 = 64 << 20;
const BIG_LINE: &str = "xen-rs linux dom0 checksum line";

const INIT: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
PASS=0; FAIL=0
ok() { echo "TEST $1 PASS"; PASS=$((PASS+1)); }
bad() { echo "TEST $1 FAIL $2"; FAIL=$((FAIL+1)); }
check() { n=$1; shift; if "$@" >/tmp/out 2>&1; then ok "$n"; else bad "$n" "$(tr '\n' ' ' </tmp/out | cut -c1-200)"; fi; }
want() { n=$1; e=$2; shift 2; got=$("$@" 2>&1); if [ "$got" = "$e" ]; then ok "$n"; else bad "$n" "want [$e] got [$(echo "$got" | tr '\n' ' ' | cut -c1-200)]"; fi; }
ok linux-dom0-userspace
want linux-dom0-hypervisor-type xen cat /sys/hypervisor/type
for m in @MODULES@; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
check linux-dom0-proc-xen mount -t xenfs xenfs /proc/xen
check linux-dom0-proc-xen-capabilities grep -q control_d /proc/xen/capabilities
for n in privcmd evtchn gntdev xenbus; do check linux-dom0-dev-xen-$n test -c /dev/xen/$n; done
i=0; while [ $i -lt 1000 ] && /bin/true; do i=$((i+1)); done
want linux-dom0-1000-fork-exec 1000 echo $i
yes "@BIG_LINE@" | head -c @BIG_BYTES@ > /tmp/big
want linux-dom0-sha256-64mib "@SHA@" sh -c "sha256sum /tmp/big | cut -d' ' -f1"
kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
if [ "$kb" -le 524288 ] && [ "$kb" -gt 262144 ]; then ok linux-dom0-memtotal-within-dom0-mem; else bad linux-dom0-memtotal-within-dom0-mem "MemTotal $kb kB"; fi
echo "MEMTOTAL $kb kB"
echo "$PASS passed, $FAIL failed"
echo @DONE@
poweroff -f
"#;

/// What the script checks the file against: the same bytes hashed on the host.
fn host_sha256() -> Result<String> {
    let out = crate::cmd::output(Command::new("sh").arg("-c").arg(format!("yes '{BIG_LINE}' | head -c {BIG_BYTES} | sha256sum")))?;
    Ok(out.split_whitespace().next().unwrap_or_default().to_string())
}

/// The kernel as Debian ships it (a bzImage with an XZ payload) and the initramfs.
fn image(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let kpkg = dom0::kernel_package()?;
    let kver = kpkg.trim_start_matches("linux-image-").to_string();
    let kroot = reference::unpacked(root, &kpkg)?;
    let vmlinuz = kroot.join(format!("boot/vmlinuz-{kver}"));
    let bb = reference::unpacked(root, "busybox-static")?.join("bin/busybox");
    let mut t = Tree::default();
    for d in ["/proc", "/sys", "/dev", "/tmp", "/bin"] {
        t.dir(d);
    }
    t.file("/bin/busybox", std::fs::read(&bb).context(|| format!("reading {}", bb.display()))?, 0o755);
    let mut load = String::new();
    for (name, data) in dom0::modules(&kroot.join(format!("lib/modules/{kver}/kernel")), MODULES)? {
        t.file(&format!("/lib/modules/{name}.ko"), data, 0o644);
        load.push_str(&format!("{name} "));
    }
    let init = INIT
        .replace("@MODULES@", load.trim())
        .replace("@BIG_LINE@", BIG_LINE)
        .replace("@BIG_BYTES@", &BIG_BYTES.to_string())
        .replace("@SHA@", &host_sha256()?)
        .replace("@DONE@", DONE);
    t.file("/init", init.into_bytes(), 0o755);
    let initrd = crate::images::images_dir(root).join("linux-dom0.cpio");
    std::fs::write(&initrd, t.cpio())?;
    Ok((vmlinuz, initrd))
}

/// One boot: the test lines it printed (name, passed, detail) and whether it finished.
fn boot(root: &Path, m: &Machine, log: &str) -> Result<(Vec<(String, bool, String)>, bool, Option<Duration>)> {
    let log_path = root.join("target/logs").join(log);
    let out = qemu::run(m, &log_path, Duration::from_secs(420), &[DONE, "Hardware Dom0 crashed", "Panic on CPU"], &["TEST linux-dom0-userspace"])?;
    let lines: Vec<_> = out.log.lines().filter_map(parse_test_line).map(|l| (l.name, l.passed, l.detail)).collect();
    let done = matches!(out.exit, Exit::Stopped(ref s) if s == DONE);
    println!("  log: {} ({:?} to userspace, {} ms in all)", out.log_path.display(), out.marks[0], out.elapsed.as_millis());
    Ok((lines, done, out.marks[0]))
}

pub fn checks(root: &Path, img: &Images) -> Result<Tally> {
    let mut t = Tally::default();
    let (vmlinuz, initrd) = image(root)?;
    let xen = reference::xen_hypervisor(root)?;
    let machine = |kernel: PathBuf, dom0: PathBuf| Machine {
        kernel,
        append: HV_CMDLINE.into(),
        modules: vec![(dom0, KERNEL_ARGS.into()), (initrd.clone(), String::new())],
        memory_mib: 1024,
        smp: 2,
    };
    let (theirs, theirs_done, _) = boot(root, &machine(xen, vmlinuz.clone()), "linux-dom0-xen.log")?;
    let (ours, ours_done, _) = boot(root, &machine(img.xen_core.clone(), vmlinuz), "linux-dom0-xen-core.log")?;
    for (name, passed, detail) in &ours {
        t.record(&format!("linux-dom0 on xen-core: {name}"), *passed, detail);
    }
    t.record("linux-dom0 on xen-core: script ran to the end", ours_done, "no done line");
    t.record("linux-dom0 on Xen 4.17: script ran to the end", theirs_done, "no done line");
    let names = |v: &[(String, bool, String)]| v.iter().map(|(n, p, _)| format!("{n}:{p}")).collect::<Vec<_>>();
    let (a, b) = (names(&ours), names(&theirs));
    t.record(
        "linux-dom0: same test lines on xen-core as on Xen 4.17",
        a == b && !a.is_empty(),
        &format!("xen-core {a:?}, Xen {b:?}"),
    );
    Ok(t)
}
