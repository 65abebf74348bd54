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
/// Two vCPUs for dom0 on both (xen-core runs them on its one physical CPU so far).
const HV_CMDLINE: &str = "console=com1 dom0_mem=512M,max:512M dom0_max_vcpus=2 loglvl=all guest_loglvl=all";
const KERNEL_ARGS: &str = "console=hvc0 earlyprintk=xen acpi=off pci=off";
const DONE: &str = "LINUX-DOM0-DONE";
/// The script asks for a command with this line; the harness types TYPED, whose output
/// must be TYPED_OUT (computed by the guest's shell, so the input really ran).
const PROMPT: &str = "LINUX-DOM0-TYPE-A-COMMAND";
const TYPED: &str = "echo typed-$((6*7))-ok\n";
const TYPED_OUT: &str = "typed-42-ok";
/// Bytes of the checksummed file, and the line that fills it.
const BIG_BYTES: u64 = 64 << 20;
const BIG_LINE: &str = "xen-rs linux dom0 checksum line";

/// What both inits start with: mounts and the TEST-line helpers.
const PRELUDE: &str = r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
PASS=0; FAIL=0
ok() { echo "TEST $1 PASS"; PASS=$((PASS+1)); }
bad() { echo "TEST $1 FAIL $2"; FAIL=$((FAIL+1)); }
check() { n=$1; shift; if "$@" >/tmp/out 2>&1; then ok "$n"; else bad "$n" "$(tr '\n' ' ' </tmp/out | cut -c1-200)"; fi; }
want() { n=$1; e=$2; shift 2; got=$("$@" 2>&1); if [ "$got" = "$e" ]; then ok "$n"; else bad "$n" "want [$e] got [$(echo "$got" | tr '\n' ' ' | cut -c1-200)]"; fi; }
"#;

const INIT: &str = r#"ok linux-dom0-userspace
want linux-dom0-hypervisor-type xen cat /sys/hypervisor/type
for m in @MODULES@; do insmod /lib/modules/$m.ko || echo "insmod $m failed"; done
check linux-dom0-proc-xen mount -t xenfs xenfs /proc/xen
check linux-dom0-proc-xen-capabilities grep -q control_d /proc/xen/capabilities
for n in privcmd evtchn gntdev xenbus; do check linux-dom0-dev-xen-$n test -c /dev/xen/$n; done
i=0; while [ $i -lt 1000 ] && /bin/true; do i=$((i+1)); done
want linux-dom0-1000-fork-exec 1000 echo $i
want linux-dom0-two-cpus 2 nproc
# Two CPU-bound processes against one alone: the ratio is printed, not asserted.
spin() { j=0; while [ $j -lt 40000 ]; do j=$((j+1)); done; }
cs() { awk '{printf "%d", $1*100}' /proc/uptime; }
t0=$(cs); spin; t1=$(cs); spin & spin & wait; t2=$(cs)
echo "PARALLEL one=$((t1-t0))cs two=$((t2-t1))cs"
both=$(awk '/^cpu[01] / && $2+$4 > 0 {n++} END {print n+0}' /proc/stat)
want linux-dom0-both-cpus-ran 2 echo $both
yes "@BIG_LINE@" | head -c @BIG_BYTES@ > /tmp/big
want linux-dom0-sha256-64mib "@SHA@" sh -c "sha256sum /tmp/big | cut -d' ' -f1"
kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
if [ "$kb" -le 524288 ] && [ "$kb" -gt 262144 ]; then ok linux-dom0-memtotal-within-dom0-mem; else bad linux-dom0-memtotal-within-dom0-mem "MemTotal $kb kB"; fi
echo "MEMTOTAL $kb kB"
# A command typed on the serial line by the harness (console_io read + VIRQ_CONSOLE).
echo "@PROMPT@"
if read -t 120 -r cmd; then want linux-dom0-serial-input-runs "@TYPED_OUT@" sh -c "$cmd"; else bad linux-dom0-serial-input-runs "nothing typed arrived"; fi
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
    let init = format!("{PRELUDE}{INIT}")
        .replace("@MODULES@", load.trim())
        .replace("@BIG_LINE@", BIG_LINE)
        .replace("@BIG_BYTES@", &BIG_BYTES.to_string())
        .replace("@SHA@", &host_sha256()?)
        .replace("@DONE@", DONE)
        .replace("@PROMPT@", PROMPT)
        .replace("@TYPED_OUT@", TYPED_OUT);
    t.file("/init", init.into_bytes(), 0o755);
    let initrd = crate::images::images_dir(root).join("linux-dom0.cpio");
    std::fs::write(&initrd, t.cpio())?;
    Ok((vmlinuz, initrd))
}

/// A test line: name, passed, detail.
type Line = (String, bool, String);

/// One boot: the test lines it printed and whether it finished.
fn boot(root: &Path, m: &Machine, log: &str) -> Result<(Vec<Line>, bool)> {
    let log_path = root.join("target/logs").join(log);
    let out = qemu::run_typing(m, &log_path, Duration::from_secs(420), &[DONE, "Hardware Dom0 crashed", "Panic on CPU"], &["TEST linux-dom0-userspace"], &[(PROMPT, TYPED)])?;
    let lines: Vec<_> = out.log.lines().filter_map(parse_test_line).map(|l| (l.name, l.passed, l.detail)).collect();
    let done = matches!(out.exit, Exit::Stopped(ref s) if s == DONE);
    println!("  log: {} ({:?} to userspace, {} ms in all)", out.log_path.display(), out.marks[0], out.elapsed.as_millis());
    // Two CPU-bound processes against one alone, in centiseconds (printed, not judged).
    if let Some(p) = out.log.lines().find_map(|l| l.strip_prefix("PARALLEL ")) {
        println!("  two CPU-bound processes at once vs one alone: {p}");
    }
    Ok((lines, done))
}

pub fn checks(root: &Path, img: &Images) -> Result<Tally> {
    let mut t = Tally::default();
    let (vmlinuz, initrd) = image(root)?;
    let xen = reference::xen_hypervisor(root)?;
    let machine = |kernel: PathBuf, dom0: PathBuf| machine(kernel, dom0, initrd.clone());
    let (theirs, theirs_done) = boot(root, &machine(xen, vmlinuz.clone()), "linux-dom0-xen.log")?;
    let (ours, ours_done) = boot(root, &machine(img.xen_core.clone(), vmlinuz), "linux-dom0-xen-core.log")?;
    for (name, passed, detail) in &ours {
        t.record(&format!("linux-dom0 on xen-core: {name}"), *passed, detail);
    }
    t.record("linux-dom0 on xen-core: script ran to the end", ours_done, "no done line");
    t.record("linux-dom0 on Xen 4.17: script ran to the end", theirs_done, "no done line");
    let names = |v: &[Line]| v.iter().map(|(n, p, _)| format!("{n}:{p}")).collect::<Vec<_>>();
    let (a, b) = (names(&ours), names(&theirs));
    t.record(
        "linux-dom0: same test lines on xen-core as on Xen 4.17",
        a == b && !a.is_empty(),
        &format!("xen-core {a:?}, Xen {b:?}"),
    );
    Ok(t)
}

/// Memory of each Linux domU from the manifest.
const DOMU_MIB: u64 = 256;
const DOMU_DONE: &str = "LINUX-DOMU-DONE";
const DOMU_PROMPT: &str = "LINUX-DOMU-TYPE-A-COMMAND";

/// A Linux domU's init: the same workload as dom0's, then `xenrs_role=crash` crashes its
/// kernel while `xenrs_role=steady` outlives it and finishes.
const DOMU_INIT: &str = r#"ok linux-domu-userspace
want linux-domu-hypervisor-type xen cat /sys/hypervisor/type
kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo)
if [ "$kb" -le @KIB@ ] && [ "$kb" -gt $((@KIB@ / 2)) ]; then ok linux-domu-memtotal-as-manifest; else bad linux-domu-memtotal-as-manifest "MemTotal $kb kB of @KIB@"; fi
i=0; while [ $i -lt 1000 ] && /bin/true; do i=$((i+1)); done
want linux-domu-1000-fork-exec 1000 echo $i
yes "@BIG_LINE@" | head -c @BIG_BYTES@ > /tmp/big
want linux-domu-sha256-64mib "@SHA@" sh -c "sha256sum /tmp/big | cut -d' ' -f1"
rm /tmp/big
echo "$PASS passed, $FAIL failed"
case "$(cat /proc/cmdline)" in
*xenrs_role=crash*) echo LINUX-DOMU-CRASHING; echo c > /proc/sysrq-trigger ;;
*) # The harness switches the serial input here (three Ctrl-A) and types a command.
   echo "@PROMPT@"
   if read -t 120 -r cmd; then want linux-domu-console-input-runs "@TYPED_OUT@" sh -c "$cmd"; else bad linux-domu-console-input-runs "nothing typed arrived"; fi ;;
esac
# Outlive the other domU's crash, then finish.
sleep 30
echo @DONE@
poweroff -f
"#;

fn domu_initrd(root: &Path) -> Result<PathBuf> {
    let bb = reference::unpacked(root, "busybox-static")?.join("bin/busybox");
    let mut t = Tree::default();
    for d in ["/proc", "/sys", "/dev", "/tmp", "/bin"] {
        t.dir(d);
    }
    t.file("/bin/busybox", std::fs::read(&bb).context(|| format!("reading {}", bb.display()))?, 0o755);
    let init = format!("{PRELUDE}{DOMU_INIT}")
        .replace("@KIB@", &(DOMU_MIB * 1024).to_string())
        .replace("@BIG_LINE@", BIG_LINE)
        .replace("@BIG_BYTES@", &BIG_BYTES.to_string())
        .replace("@SHA@", &host_sha256()?)
        .replace("@DONE@", DOMU_DONE)
        .replace("@PROMPT@", DOMU_PROMPT)
        .replace("@TYPED_OUT@", TYPED_OUT);
    t.file("/init", init.into_bytes(), 0o755);
    let path = crate::images::images_dir(root).join("linux-domu.cpio");
    std::fs::write(&path, t.cpio())?;
    Ok(path)
}

/// Two Debian Linux domUs from the boot manifest beside a pv-guest xenstore domain: both
/// reach init on hvc0 (their console rings, printed by the hypervisor with their ids),
/// run the workload; one crashes its kernel, the other finishes, every page of the
/// crashed one is freed.
pub fn domu_checks(root: &Path, img: &Images) -> Result<Tally> {
    use boot_manifest::{DomainSpec, Manifest, XenstoreSpec};
    let mut t = Tally::default();
    let (vmlinuz, _) = image(root)?;
    let initrd = domu_initrd(root)?;
    let linux = |name: &str, role: &str| DomainSpec {
        name: name.into(),
        kernel_module: 2,
        memory_kib: DOMU_MIB * 1024,
        vcpus: 1,
        cmdline: format!("console=hvc0 xenrs_role={role}"),
        privileged: false,
        initrd_module: Some(3),
    };
    let manifest = Manifest {
        domains: vec![
            DomainSpec {
                name: "xenstored".into(),
                kernel_module: 1,
                memory_kib: 32 * 1024,
                vcpus: 1,
                cmdline: "role=xenstored clients=1,2 port-base=100 names=linux-steady,linux-crash".into(),
                privileged: false,
                initrd_module: None,
            },
            linux("linux-steady", "steady"),
            linux("linux-crash", "crash"),
        ],
        channels: vec![],
        xenstore: Some(XenstoreSpec { domain: 0, port_base: 100 }),
    };
    let path = crate::images::images_dir(root).join("linux-domus.manifest");
    std::fs::write(&path, manifest.encode())?;
    let m = Machine {
        kernel: img.xen_core.clone(),
        append: "console=com1 loglvl=all guest_loglvl=all".into(),
        modules: vec![(path, String::new()), (img.pv_guest.clone(), String::new()), (vmlinuz, String::new()), (initrd, String::new())],
        memory_mib: 1024,
        smp: 2,
    };
    let log_path = root.join("target/logs/linux-domus.log");
    // The serial input starts with the first domain that has a console (xenstored, d0);
    // three Ctrl-A move it to d1, as on Xen, then a command is typed.
    let typed = format!("\x01\x01\x01{TYPED}");
    let out = qemu::run_typing(&m, &log_path, Duration::from_secs(480), &["Panic on CPU"], &["(d1) TEST linux-domu-userspace"], &[(DOMU_PROMPT, &typed)])?;
    println!("  log: {} ({:?} to d1's userspace, {} ms in all)", out.log_path.display(), out.marks[0], out.elapsed.as_millis());
    let log = &out.log;
    for (id, name) in [(1, "steady"), (2, "crash")] {
        let prefix = format!("(d{id}) ");
        let lines: Vec<_> = log.lines().filter_map(|l| l.strip_prefix(&prefix)).filter_map(parse_test_line).collect();
        for l in &lines {
            t.record(&format!("linux-domu {name} (d{id}): {}", l.name), l.passed, &l.detail);
        }
        let want = if id == 1 { 6 } else { 5 };
        t.record(&format!("linux-domu {name} (d{id}): ran the whole workload"), lines.len() >= want, &format!("{} test lines", lines.len()));
    }
    let at = |needle: &str| log.find(needle);
    let crashed = log.lines().find(|l| l.contains("Domain 2 (linux-crash) destroyed (crash)"));
    t.record("linux-domu: the crashing domU crashed its kernel", at("(d2) LINUX-DOMU-CRASHING").is_some() && crashed.is_some(), "no crash destroy line for d2");
    t.record(
        "linux-domu: the other domU kept running and finished after the crash",
        matches!((at("Domain 2 (linux-crash) destroyed (crash)"), at(&format!("(d1) {DOMU_DONE}"))), (Some(c), Some(d)) if c < d),
        "d1's done line missing or before d2's crash",
    );
    t.record("linux-domu: three Ctrl-A moved the serial input to d1", log.contains("*** Serial input to DOM1 (type 'CTRL-a' three times to switch input)"), "no switch line");
    let unfreed = crate::multi::left_behind(log);
    t.record("linux-domu: every page of the dead domains freed", crashed.is_some() && unfreed.is_empty(), &format!("{crashed:?}; {}", unfreed.join("; ")));
    if t.failed > 0 {
        println!("--- last lines of {} ---", out.log_path.display());
        for l in log.lines().rev().take(60).collect::<Vec<_>>().iter().rev() {
            println!("{l}");
        }
    }
    Ok(t)
}

/// What `bench boot` waits for: the first line of a minimal init.
pub const BENCH_MARKER: &str = "LINUX-DOM0-USERSPACE-MARKER";

/// For `bench boot`: the stock kernel, and an initramfs whose init prints the marker
/// and powers off.
pub fn bench_image(root: &Path) -> Result<(PathBuf, PathBuf)> {
    let (vmlinuz, _) = image(root)?;
    let bb = reference::unpacked(root, "busybox-static")?.join("bin/busybox");
    let mut t = Tree::default();
    for d in ["/proc", "/sys", "/dev", "/bin"] {
        t.dir(d);
    }
    t.file("/bin/busybox", std::fs::read(&bb).context(|| format!("reading {}", bb.display()))?, 0o755);
    t.file("/init", format!("#!/bin/busybox sh\necho {BENCH_MARKER}\n/bin/busybox poweroff -f\n").into_bytes(), 0o755);
    let path = crate::images::images_dir(root).join("linux-dom0-bench.cpio");
    std::fs::write(&path, t.cpio())?;
    Ok((vmlinuz, path))
}

/// The machine both hypervisors boot Linux dom0 on.
pub fn machine(hypervisor: PathBuf, vmlinuz: PathBuf, initrd: PathBuf) -> Machine {
    Machine {
        kernel: hypervisor,
        append: HV_CMDLINE.into(),
        modules: vec![(vmlinuz, KERNEL_ARGS.into()), (initrd, String::new())],
        memory_mib: 1024,
        smp: 2,
    }
}
