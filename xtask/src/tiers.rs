//! `cargo xtask test [TIER...]` and `cargo xtask run`.

use crate::error::{Error, Result};
use crate::images::{self, Images};
use crate::qemu::{self, Exit, Machine};
use crate::results::{self, Tally};
use crate::{cmd, deps, reference};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// In run order: the reference runs before ours so the boot tier can compare reports.
const TIERS: &[&str] = &["host", "reference", "boot", "dom0"];

/// The pv-guest command line every boot tier uses, on ours and on real Xen alike.
pub const GUEST_CMDLINE: &str = "tests=all";
/// pv-guest's forbidden-operation suite (not part of `tests=all`): each refusal must be
/// exactly what real Xen answers, and the guest must survive them all. It runs with two
/// vCPUs: vCPU 1 does concurrent work of its own meanwhile (`pv-guest/src/churn.rs`).
pub const HOSTILE_CMDLINE: &str = "tests=hostile";
/// pv-guest's SMP self-tests (in `tests=all` too, where with one vCPU they report
/// themselves skipped): run on a 2-CPU machine whose hypervisor gives dom0 2 vCPUs.
pub const SMP_CMDLINE: &str = "tests=smp";
/// The hypervisor command line: Xen's own options, so the same line boots both. Xen
/// 4.17 runs the credit scheduler, the one xen-core models (its default is credit2): the
/// hostile suite's `XEN_SYSCTL_scheduler_op` checks ask Pool-0's credit parameters.
const HV_CMDLINE: &str = "console=com1 dom0_mem=64M loglvl=all guest_loglvl=all sched=credit";
/// CPUs (QEMU `-smp`) and dom0 vCPUs (`dom0_max_vcpus`, which xen-core takes too) of
/// the SMP runs.
const SMP_VCPUS: u32 = 2;

/// The guest runs of the reference and boot tiers: (pv-guest command line, log name on
/// ours, log name on Xen, scenario name for the `XTASK_*_SCENARIOS` knobs, vCPUs).
const GUEST_RUNS: [(&str, &str, &str, &str, u32); 3] = [
    (GUEST_CMDLINE, "boot", "reference", "pv-guest", 1),
    (HOSTILE_CMDLINE, "boot-hostile", "reference-hostile", "pv-guest-hostile", SMP_VCPUS),
    (SMP_CMDLINE, "boot-smp", "reference-smp", "pv-guest-smp", SMP_VCPUS),
];

/// A machine whose hypervisor (`kernel`) boots pv-guest with `guest_cmdline` as dom0,
/// with `vcpus` CPUs and dom0 vCPUs.
fn guest_machine(kernel: &Path, guest: &Path, guest_cmdline: &str, vcpus: u32) -> Machine {
    let append = if vcpus > 1 { format!("{HV_CMDLINE} dom0_max_vcpus={vcpus}") } else { HV_CMDLINE.into() };
    Machine { kernel: kernel.to_path_buf(), append, modules: vec![(guest.to_path_buf(), guest_cmdline.into())], memory_mib: 512, smp: vcpus }
}

pub fn test(root: &Path, args: &[&str]) -> Result<()> {
    let mut tiers: Vec<&str> = if args.is_empty() { TIERS.to_vec() } else { args.to_vec() };
    tiers.sort_by_key(|t| TIERS.iter().position(|x| x == t));
    tiers.dedup();
    if let Some(bad) = tiers.iter().find(|t| !TIERS.contains(t)) {
        return Err(Error::new(format!("unknown test tier `{bad}` (tiers: {})", TIERS.join(", "))));
    }
    if tiers.iter().any(|t| *t != "host") {
        deps::ensure(root)?;
    }
    let mut images = None;
    let mut reference_reports = Vec::new();
    let mut total = Tally::default();
    for tier in tiers {
        println!("== tier {tier}");
        let t = match tier {
            "host" => host(root)?,
            "dom0" => crate::dom0::tier(root)?,
            _ => {
                if images.is_none() {
                    images = Some(images::build_all(root)?);
                }
                let img = images.as_ref().expect("built above");
                match tier {
                    "boot" => boot(root, img, &reference_reports)?,
                    _ => {
                        let (t, reports) = reference_tier(root, img)?;
                        reference_reports = reports;
                        t
                    }
                }
            }
        };
        println!("   {tier}: {t}");
        total.absorb(t);
    }
    for f in &total.failures {
        println!("failed: {f}");
    }
    println!("{total}");
    if total.failed > 0 {
        return Err(Error::new(format!("{} test(s) failed", total.failed)));
    }
    Ok(())
}

/// `cargo test` over the workspace, plus clippy with warnings as errors.
fn host(root: &Path) -> Result<Tally> {
    let mut t = Tally::default();
    let mut clippy = cmd::cargo(root);
    clippy.args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]);
    let clippy_ok = cmd::run(&mut clippy);
    t.record("clippy --workspace -D warnings", clippy_ok.is_ok(), &clippy_ok.err().map(|e| e.to_string()).unwrap_or_default());

    // The images' bare-metal code (arch, hypercalls, entry paths) only exists for their
    // target, so the host clippy above never sees it.
    for (package, flags) in images::BARE_IMAGES {
        let mut c = cmd::cargo(root);
        c.args(["clippy", "--quiet", "-p", package, "--target", images::BARE_TARGET, "--target-dir"])
            .arg(root.join("target/clippy-bare").join(package))
            .args(["--", "-D", "warnings"])
            .env("CARGO_TARGET_X86_64_UNKNOWN_NONE_RUSTFLAGS", flags);
        let r = cmd::run(&mut c);
        t.record(&format!("clippy {package} --target {} -D warnings", images::BARE_TARGET), r.is_ok(), &r.err().map(|e| e.to_string()).unwrap_or_default());
    }

    let hv_src = root.join("xen-core/hypervisor/src");
    match crate::audit::count_dir(&hv_src) {
        Ok(n) => {
            println!(
                "  xen-core hypervisor: {} unsafe sites (ceiling {}), {} lines of asm! (ceiling {}), {} lines of .s",
                n.unsafe_sites,
                crate::audit::UNSAFE_SITES_CEILING,
                n.asm_lines,
                crate::audit::ASM_LINES_CEILING,
                crate::audit::asm_file_lines(&hv_src)
            );
            let ok = n.unsafe_sites <= crate::audit::UNSAFE_SITES_CEILING && n.asm_lines <= crate::audit::ASM_LINES_CEILING;
            t.record("xen-core unsafe sites and asm! lines within their ceilings", ok, &format!("{n:?}"));
        }
        Err(e) => t.record("xen-core unsafe sites and asm! lines within their ceilings", false, &e.to_string()),
    }

    let mut c = cmd::cargo(root);
    c.args(["test", "--workspace", "--no-fail-fast"]).stdout(Stdio::piped());
    // Xen's example configs as Debian ships them: dom0-tools' xl.cfg tests parse each.
    match reference::unpacked(root, "xen-utils-common") {
        Ok(dir) => {
            c.env("XEN_RS_XLEXAMPLES", dir.join("etc/xen"));
        }
        Err(e) => t.record("fetch xen-utils-common (xl.cfg examples)", false, &e.to_string()),
    }
    // Debian's kernel, when the dom0 tier has fetched it: kernel-image unpacks it.
    if let Some(vmlinuz) = debian_vmlinuz(root) {
        c.env("XEN_RS_VMLINUZ", vmlinuz);
    }
    let mut child = c.spawn()?;
    let out = child.stdout.take().expect("piped");
    let mut suites = 0;
    for line in BufReader::new(out).lines() {
        let line = line?;
        println!("{line}");
        // "test result: ok. 13 passed; 0 failed; 0 ignored; ..."
        if let Some(rest) = line.strip_prefix("test result: ") {
            let num = |key: &str| -> u32 {
                rest.split("; ")
                    .find_map(|p| p.trim_start_matches(|c: char| !c.is_ascii_digit()).strip_suffix(key))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0)
            };
            suites += 1;
            t.passed += num(" passed");
            t.failed += num(" failed");
        }
    }
    let status = child.wait()?;
    if !status.success() {
        let msg = format!("cargo test exited with {status}");
        t.record("cargo test --workspace", false, &msg);
    } else if suites == 0 {
        t.record("cargo test --workspace", false, "no test suite ran");
    }
    Ok(t)
}

/// `boot/vmlinuz-*` of an already unpacked `linux-image-*` package, if any.
fn debian_vmlinuz(root: &Path) -> Option<PathBuf> {
    let unpacked = root.join("target/reference/unpacked");
    let mut found = Vec::new();
    for pkg in std::fs::read_dir(unpacked).ok()?.flatten() {
        if !pkg.file_name().to_string_lossy().starts_with("linux-image-") {
            continue;
        }
        for f in std::fs::read_dir(pkg.path().join("boot")).into_iter().flatten().flatten() {
            if f.file_name().to_string_lossy().starts_with("vmlinuz-") {
                found.push(f.path());
            }
        }
    }
    found.sort();
    found.pop()
}

fn log_dir(root: &Path) -> PathBuf {
    root.join("target/logs")
}

/// A second module, so the module list the hypervisor reports can be checked exactly.
fn data_module(root: &Path) -> Result<PathBuf> {
    let p = images::images_dir(root).join("boot-data.bin");
    let data: Vec<u8> = (0..12_345u32).map(|i| (i * 7) as u8).collect();
    std::fs::write(&p, data)?;
    Ok(p)
}

/// Our hypervisor with pv-guest as the initial domain, as the reference tier boots Xen.
fn ours(img: &Images, guest_cmdline: &str) -> Machine {
    guest_machine(&img.xen_core, &img.pv_guest, guest_cmdline, 1)
}

/// For the machine checks: an unknown option and a second module (the initrd).
fn ours_with_initrd(root: &Path, img: &Images) -> Result<Machine> {
    let mut m = ours(img, "tests=console");
    m.append = format!("{HV_CMDLINE} frobnicate");
    m.modules.push((data_module(root)?, String::new()));
    m.memory_mib = 256;
    Ok(m)
}

/// Boots our hypervisor: once to check what it reports about the machine it was given,
/// then with pv-guest's self-tests, its hostile suite and its SMP tests, each compared with real Xen's
/// report from the reference tier when that ran too.
/// `XTASK_BOOT_SCENARIOS=linux-dom0,pv-guest` runs only those scenarios of the boot tier
/// (machine, pairs, fuzz, maptrack, blk, xenstore, linux-dom0, linux-domu, run-pty, pv-guest, pv-guest-hostile, pv-guest-smp), for working on one of them.
fn boot_scenario_wanted(name: &str) -> bool {
    scenario_wanted("XTASK_BOOT_SCENARIOS", name)
}

/// `XTASK_REFERENCE_SCENARIOS=pv-guest-smp` runs only those runs of the reference tier
/// (pv-guest: the self-tests; pv-guest-hostile: the hostile suite on two vCPUs;
/// pv-guest-smp: the SMP self-tests).
fn reference_scenario_wanted(name: &str) -> bool {
    scenario_wanted("XTASK_REFERENCE_SCENARIOS", name)
}

fn scenario_wanted(knob: &str, name: &str) -> bool {
    std::env::var(knob).map_or(true, |v| v.split(',').any(|s| s.trim() == name))
}

fn boot(root: &Path, img: &Images, reference: &[Report]) -> Result<Tally> {
    let mut t = Tally::default();
    let scenarios: [(&str, &dyn Fn() -> Result<Tally>); 9] = [
        ("machine", &|| machine_checks(root, img)),
        ("pairs", &|| crate::multi::checks(root, img)),
        ("fuzz", &|| crate::fuzz::checks(root, img)),
        ("maptrack", &|| crate::multi::maptrack_checks(root, img)),
        ("blk", &|| crate::multi::blk_checks(root, img)),
        ("xenstore", &|| crate::multi::xenstore_checks(root, img)),
        ("linux-dom0", &|| crate::linux_dom0::checks(root, img)),
        ("linux-domu", &|| crate::linux_dom0::domu_checks(root, img)),
        ("run-pty", &|| crate::run_pty::checks(root)),
    ];
    for (name, run) in scenarios {
        if boot_scenario_wanted(name) {
            t.absorb(run()?);
        }
    }
    for (cmdline, name, _, scenario, vcpus) in GUEST_RUNS {
        if !boot_scenario_wanted(scenario) {
            continue;
        }
        let m = guest_machine(&img.xen_core, &img.pv_guest, cmdline, vcpus);
        let (tally, ours) = guest_report(root, &m, name)?;
        t.absorb(tally);
        match reference.iter().find(|r| r.cmdline == cmdline) {
            Some(theirs) => {
                let diff = compare(&ours, theirs);
                t.record(&format!("{name}: same report as real Xen 4.17"), diff.is_empty(), &diff.join("; "));
                // tests=all includes cpuid_dump: the CPUID a PV kernel sees, leaf by leaf.
                if !theirs.cpuid.is_empty() || !ours.cpuid.is_empty() {
                    let diff = crate::cpuid::compare(&ours.cpuid, &theirs.cpuid);
                    for d in diff.iter().take(40) {
                        println!("    cpuid: {d}");
                    }
                    t.record(
                        &format!("{name}: CPUID identical to real Xen 4.17 ({} leaves)", theirs.cpuid.len()),
                        diff.is_empty(),
                        &format!("{} difference(s): {}", diff.len(), diff.join("; ")),
                    );
                }
            }
            None => println!("  {name}: no reference report in this run (run `cargo xtask test reference boot` to compare)"),
        }
    }
    Ok(t)
}

/// Differences between two reports of the same guest command line.
fn compare(ours: &Report, theirs: &Report) -> Vec<String> {
    let mut diff = Vec::new();
    for r in &theirs.tests {
        match ours.tests.iter().find(|o| o.name == r.name) {
            None => diff.push(format!("{} missing", r.name)),
            Some(o) if o.passed != r.passed => {
                diff.push(format!("{}: ours {} ({}), Xen {}", r.name, verdict(o.passed), o.detail, verdict(r.passed)))
            }
            Some(_) => {}
        }
    }
    for o in ours.tests.iter().filter(|o| !theirs.tests.iter().any(|r| r.name == o.name)) {
        diff.push(format!("{} only on ours", o.name));
    }
    if ours.shutdown != theirs.shutdown {
        diff.push(format!("shutdown: ours {:?}, Xen {:?}", ours.shutdown, theirs.shutdown));
    }
    diff
}

fn verdict(passed: bool) -> &'static str {
    if passed {
        "PASS"
    } else {
        "FAIL"
    }
}

fn machine_checks(root: &Path, img: &Images) -> Result<Tally> {
    let m = ours_with_initrd(root, img)?;
    let out = qemu::run(&m, &log_dir(root).join("boot-machine.log"), Duration::from_secs(120), &[], &["xen-core "])?;
    println!("  log: {} ({} ms; banner after {:?})", out.log_path.display(), out.elapsed.as_millis(), out.marks[0]);
    let mut t = Tally::default();
    let log = &out.log;
    t.record("boot: debug-exit reports success", out.exit == Exit::Status(qemu::EXIT_SUCCESS), &format!("{:?}", out.exit));
    // Xen's first line, naming us: `Xen version 4.17.0-xen-core (xen-core ...)`.
    t.record("boot: banner on COM1", log.lines().any(|l| l.starts_with("(XEN) Xen version 4.17.0-xen-core (xen-core ")), "no `(XEN) Xen version 4.17.0-xen-core (xen-core` line");
    let cmdline_ok = log.lines().any(|l| l.starts_with("(XEN) Command line: ") && l.ends_with(&m.append));
    t.record("boot: command line passed through", cmdline_ok, "no matching `Command line:` line");
    t.record(
        "boot: unknown option reported as Xen does",
        log.contains("(XEN) parameter \"frobnicate\" unknown!"),
        "no `parameter \"frobnicate\" unknown!`",
    );
    let ram_mb = log
        .lines()
        .find_map(|l| l.strip_prefix("(XEN) System RAM: ")?.strip_suffix("MB")?.parse::<u32>().ok());
    t.record(
        "boot: memory map matches -m",
        ram_mb.is_some_and(|r| r + 4 >= m.memory_mib && r <= m.memory_mib),
        &format!("reported {ram_mb:?} MB for -m {}", m.memory_mib),
    );
    for (i, (path, args)) in m.modules.iter().enumerate() {
        let size = std::fs::metadata(path)?.len();
        let want_cmd = if args.is_empty() { path.display().to_string() } else { format!("{} {args}", path.display()) };
        let ok = log.lines().any(|l| {
            l.starts_with(&format!("(XEN) module {i}: ")) && l.contains(&format!(" {size} bytes \"{want_cmd}\""))
        });
        t.record(&format!("boot: module {i} size and command line"), ok, &format!("want {size} bytes \"{want_cmd}\""));
    }
    if t.failed > 0 {
        println!("--- {} ---\n{}", out.log_path.display(), out.log);
    }
    Ok(t)
}

/// Boots real Xen 4.17 with pv-guest as the initial domain and collects its report:
/// once with the self-tests, once with the hostile suite, once with the SMP tests on
/// two vCPUs.
fn reference_tier(root: &Path, img: &Images) -> Result<(Tally, Vec<Report>)> {
    let xen = reference::xen_hypervisor(root)?;
    let mut t = Tally::default();
    let mut reports = Vec::new();
    for (cmdline, _, name, scenario, vcpus) in GUEST_RUNS {
        if !reference_scenario_wanted(scenario) {
            continue;
        }
        let (tally, report) = guest_report(root, &guest_machine(&xen, &img.pv_guest, cmdline, vcpus), name)?;
        t.absorb(tally);
        reports.push(report);
    }
    Ok((t, reports))
}

/// What pv-guest reported for one command line.
#[derive(Debug)]
pub struct Report {
    cmdline: String,
    /// pv-guest's CPUID dump (its `cpuid_dump` self-test), also written to
    /// `target/logs/<name>.cpuid`.
    cpuid: Vec<crate::cpuid::Leaf>,
    tests: Vec<results::TestLine>,
    shutdown: Option<&'static str>,
}

/// Xen's words when the initial domain shuts down (xen/common/shutdown.c).
const DOM0_POWEROFF: &str = "Hardware Dom0 halted";
const DOM0_CRASH: &str = "Hardware Dom0 crashed";
const DOM0_REBOOT: &str = "Hardware Dom0 shutdown: rebooting";

/// Runs a machine whose initial domain is pv-guest and turns its `TEST` lines, its
/// closing summary and its shutdown reason into a tally and a report.
fn guest_report(root: &Path, m: &Machine, name: &str) -> Result<(Tally, Report)> {
    let log_path = log_dir(root).join(format!("{name}.log"));
    let out = qemu::run(
        m,
        &log_path,
        Duration::from_secs(300),
        &[DOM0_POWEROFF, DOM0_CRASH, DOM0_REBOOT, "Panic on CPU"],
        &["passed, ", "pv-guest: start"],
    )?;
    println!(
        "  log: {} (QEMU start to guest start {:?}, to report {:?}, total {} ms)",
        out.log_path.display(),
        out.marks[1],
        out.marks[0],
        out.elapsed.as_millis()
    );
    let mut t = Tally::default();
    let mut summary = None;
    let mut tests = Vec::new();
    for line in out.log.lines() {
        if let Some(r) = results::parse_test_line(line) {
            t.record(&format!("{name}: {}", r.name), r.passed, &r.detail);
            tests.push(r);
        } else if let Some(s) = results::parse_summary(line) {
            summary = Some(s);
        }
    }
    // Real Xen halts (xtask stops QEMU on the line); ours also leaves QEMU through the
    // debug-exit port right after printing the same line.
    let shutdown = [DOM0_POWEROFF, DOM0_CRASH, DOM0_REBOOT].into_iter().find(|l| out.log.contains(l));
    let consistent = summary == Some((t.passed, t.failed)) && t.passed > 0;
    t.record(
        &format!("{name}: guest summary matches its test lines"),
        consistent,
        &format!("summary {summary:?}, lines {} passed {} failed", t.passed, t.failed),
    );
    let want = if t.failed == 0 { DOM0_POWEROFF } else { DOM0_CRASH };
    t.record(
        &format!("{name}: shutdown reason tells the result"),
        shutdown == Some(want) && out.exit != Exit::TimedOut,
        &format!("wanted `{want}`, got {shutdown:?} ({:?})", out.exit),
    );
    if t.failed > 0 {
        let tail: Vec<&str> = out.log.lines().rev().take(60).collect();
        println!("--- last lines of {} ---", out.log_path.display());
        for l in tail.iter().rev() {
            println!("{l}");
        }
    }
    let cpuid = crate::cpuid::parse_log(&out.log);
    if !cpuid.is_empty() {
        let text: String = cpuid.iter().map(|l| format!("{l} {:08x} {:08x} {:08x} {:08x}\n", l.regs[0], l.regs[1], l.regs[2], l.regs[3])).collect();
        std::fs::write(log_dir(root).join(format!("{name}.cpuid")), text)?;
    }
    Ok((t, Report { cmdline: m.modules[0].1.clone(), cpuid, tests, shutdown }))
}

/// `cargo xtask run`: our hypervisor with pv-guest, console on this terminal.
/// `cargo xtask run`: Debian's Linux as dom0 on xen-core with our daemons, a shell on
/// the terminal. `cargo xtask run pv-guest`: the older demo (pv-guest's self-tests).
pub fn run_main(root: &Path, args: &[&str]) -> Result<()> {
    deps::ensure(root)?;
    let img = images::build_all(root)?;
    if args.first() == Some(&"pv-guest") {
        let m = ours(&img, GUEST_CMDLINE);
        println!("xtask: booting {} with {} (Ctrl-C stops QEMU)", img.xen_core.display(), img.pv_guest.display());
        return match qemu::run_interactive(&m, Duration::from_secs(300))? {
            qemu::EXIT_SUCCESS => Ok(()),
            qemu::EXIT_FAILURE => Err(Error::new("xen-core reported failure")),
            s => Err(Error::new(format!("QEMU exited with status {s}"))),
        };
    }
    if let Some(other) = args.first() {
        return Err(Error::new(format!("unknown `run` target `{other}` (pv-guest, or nothing for the Linux dom0 shell)")));
    }
    let dom0 = crate::dom0::build_image(root, crate::dom0::Variant::Interactive)?;
    let m = crate::dom0::interactive_machine(img.xen_core.clone(), &dom0);
    println!("xtask: booting xen-core with Debian's Linux as dom0 (a shell comes up in about a minute under TCG)");
    // A user's session: capped so a forgotten one does not run for ever.
    match qemu::run_interactive(&m, Duration::from_secs(4 * 3600))? {
        qemu::EXIT_SUCCESS | 0 => Ok(()),
        qemu::EXIT_FAILURE => Err(Error::new("xen-core reported failure")),
        s => Err(Error::new(format!("QEMU exited with status {s}"))),
    }
}
