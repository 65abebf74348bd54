//! Multi-domain runs of xen-core from a boot manifest: pv-guest pairs talking over static
//! event channels and grants, and over xenstore served by a pv-guest xenstore domain.
//! Used by the boot tier (checks) and `bench interdomain`.

use crate::error::{Error, Result};
use crate::images::{self, Images};
use crate::qemu::{self, Exit, Machine};
use crate::results::{self, Tally};
use boot_manifest::{DomainSpec, Manifest, StaticChannel, XenstoreSpec};
use std::path::Path;
use std::time::Duration;

const HV_CMDLINE: &str = "console=com1 loglvl=all guest_loglvl=all";
const ALL_DOWN: &str = "All domains have shut down";

fn dom(name: &str, cmdline: String) -> DomainSpec {
    DomainSpec { name: name.into(), kernel_module: 1, memory_kib: 32 * 1024, vcpus: 1, cmdline, privileged: false, initrd_module: None }
}

/// Ping/pong over one static channel, grant server/client over another.
pub fn pairs_manifest(rounds: u32, iters: u32) -> Manifest {
    Manifest {
        domains: vec![
            dom("pong", format!("role=pong port=10 peer=1 rounds={rounds}")),
            dom("ping", format!("role=ping port=10 peer=0 rounds={rounds}")),
            dom("grant-server", "role=grant-server port=11 peer=3".into()),
            dom("grant-client", format!("role=grant-client port=11 peer=2 iters={iters}")),
            dom("crasher", "role=crash port=12".into()),
            DomainSpec { privileged: true, ..dom("reaper", "role=reaper port=13 peer=6".into()) },
            dom("victim", "role=victim port=13 peer=5 self=6".into()),
        ],
        channels: vec![
            StaticChannel { dom_a: 0, port_a: 10, dom_b: 1, port_b: 10 },
            StaticChannel { dom_a: 2, port_a: 11, dom_b: 3, port_b: 11 },
            StaticChannel { dom_a: 4, port_a: 12, dom_b: 0, port_b: 12 },
            StaticChannel { dom_a: 5, port_a: 13, dom_b: 6, port_b: 13 },
        ],
        xenstore: None,
    }
}

/// A block back-end over a 72 MiB RAM disk serving three front-ends: one moves 64 MiB
/// each way (every byte checked), one crashes after 2 MiB, one sends garbage.
pub fn blk_manifest(mib: u64) -> Manifest {
    let mut backend = dom("blkback", "role=blkback ports=20,21,22 peers=1,2,3 disk-mib=72".into());
    backend.memory_kib = 112 * 1024;
    Manifest {
        domains: vec![
            backend,
            dom("blkfront", format!("role=blkfront port=20 peer=0 disk-mib=72 mib={mib}")),
            dom("blkfront-crash", "role=blkfront port=20 peer=0 disk-mib=72 base-mib=64 mib=8 crash-after-mib=2 seed=77".into()),
            dom("blkfront-hostile", "role=blkfront-hostile port=20 peer=0 disk-mib=72".into()),
        ],
        channels: vec![
            StaticChannel { dom_a: 0, port_a: 20, dom_b: 1, port_b: 20 },
            StaticChannel { dom_a: 0, port_a: 21, dom_b: 2, port_b: 20 },
            StaticChannel { dom_a: 0, port_a: 22, dom_b: 3, port_b: 20 },
        ],
        xenstore: None,
    }
}

/// TEST lines of a manifest run, per domain: (tally, per-domain (passed, failed)).
pub(crate) fn domain_results(manifest: &Manifest, log: &str, prefix: &str) -> (Tally, Vec<(u32, u32)>) {
    let mut t = Tally::default();
    let mut per_domain = vec![(0u32, 0u32); manifest.domains.len()];
    for line in log.lines() {
        let Some(rest) = line.strip_prefix("(d") else { continue };
        let Some((id, text)) = rest.split_once(") ") else { continue };
        let Ok(id) = id.parse::<usize>() else { continue };
        if let Some(r) = results::parse_test_line(text) {
            let name = manifest.domains.get(id).map_or("?", |d| d.name.as_str());
            t.record(&format!("{prefix}: d{id} ({name}) {}", r.name), r.passed, &r.detail);
        } else if let (Some(s), Some(slot)) = (results::parse_summary(text), per_domain.get_mut(id)) {
            *slot = s;
        }
    }
    (t, per_domain)
}

/// The boot tier's block checks (the inter-domain I/O done-when).
pub fn blk_checks(root: &Path, img: &Images) -> Result<Tally> {
    let manifest = blk_manifest(64);
    let run = boot(root, img, "boot-blk", &manifest)?;
    let (mut t, per_domain) = domain_results(&manifest, &run.log, "boot-blk");
    for (id, (p, f)) in per_domain.iter().enumerate().filter(|(id, _)| *id != 2) {
        t.record(&format!("boot-blk: d{id} reported and passed"), *p > 0 && *f == 0, &format!("{p} passed, {f} failed"));
    }
    // The crashed front-end: destroyed while the back-end still mapped its ring page, which
    // is freed once the back-end notices and unmaps it.
    let crashed = run.log.lines().find(|l| l.contains("Domain 2 (blkfront-crash) destroyed (crash)")).unwrap_or("");
    let held = crashed.split(", ").find_map(|p| p.strip_suffix(" still referenced")).and_then(|n| n.parse::<u32>().ok());
    t.record(
        "boot-blk: crashed front-end's ring page outlives it while mapped",
        held.is_some_and(|n| n >= 1),
        &format!("destroy line: {crashed:?}"),
    );
    t.record(
        "boot-blk: ...and is freed when the back-end unmaps it",
        run.log.contains("d2's page ") && run.log.contains("freed: its last grant mapping (by d0) is gone"),
        "no free line for d2's page",
    );
    let unfreed = left_behind(&run.log);
    t.record("boot-blk: nothing a dead domain left behind stays allocated", unfreed.is_empty(), &unfreed.join("; "));
    t.record(
        "boot-blk: machine halts after the last domain",
        run.log.contains(ALL_DOWN) && run.exit == Exit::Status(qemu::EXIT_FAILURE),
        &format!("{:?} (a crash makes the status a failure)", run.exit),
    );
    if t.failed > 0 {
        let tail: Vec<&str> = run.log.lines().rev().take(80).collect();
        println!("--- last lines of target/logs/boot-blk.log ---");
        for l in tail.iter().rev() {
            println!("{l}");
        }
    }
    Ok(t)
}

/// Xenstore as a service domain: pv-guest's xenstored serves every other domain's store
/// ring; a block back-end and front-end find each other through it (the xenbus
/// handshake) and move `mib` MiB each way; a fourth domain runs the xenstore self-test,
/// a fifth publishes a hostile ring index and must be dropped alone.
pub fn xenstore_manifest(mib: u64) -> Manifest {
    let mut backend = dom("blkback", "role=blkback-xenbus disk-mib=72".into());
    backend.memory_kib = 112 * 1024;
    Manifest {
        domains: vec![
            dom(
                "xenstored",
                "role=xenstored clients=1,2,3,4 port-base=100 vbd=2:1 names=blkback,blkfront,selftest,xs-hostile hostile=4".into(),
            ),
            backend,
            dom("blkfront", format!("role=blkfront-xenbus mib={mib}")),
            dom("selftest", "tests=xenstore".into()),
            dom("xs-hostile", "role=xenstore-hostile".into()),
        ],
        channels: vec![],
        xenstore: Some(XenstoreSpec { domain: 0, port_base: 100 }),
    }
}

/// The TEST lines each domain of `xenstore_manifest` must pass.
const XENSTORE_TESTS: [(usize, &[&str]); 5] = [
    (
        0,
        &[
            "xenstored_toolstack_setup",
            "xenstored_maps_every_client_ring",
            "xenstored_unmaps_gone_clients",
            "xenstored_drops_hostile_clients",
            "xenstored_served_every_client",
        ],
    ),
    (
        1,
        &[
            "blkback_xenbus_finds_device",
            "blkback_xenbus_initwait",
            "blkback_xenbus_reads_frontend_keys",
            "blkback_xenbus_connected",
            "blkback_cleanup_front0",
            "blkback_xenbus_closed",
            "blkback_served_every_front_end",
        ],
    ),
    (
        2,
        &[
            "blkfront_xenbus_finds_backend",
            "blkfront_xenbus_backend_initwait",
            "blkfront_xenbus_initialised",
            "blkfront_xenbus_connected",
            "blkfront_write",
            "blkfront_read_back_every_byte",
            "blkfront_teardown_ends_every_grant",
            "blkfront_xenbus_closed",
        ],
    ),
    (3, &["xenstore"]),
    (4, &["xenstore_hostile_served_first", "xenstore_hostile_index_gets_client_dropped"]),
];

/// The boot tier's xenstore checks: the service domain, the block pair over xenbus.
pub fn xenstore_checks(root: &Path, img: &Images) -> Result<Tally> {
    let manifest = xenstore_manifest(64);
    let run = boot(root, img, "boot-xenstore", &manifest)?;
    let (mut t, per_domain) = domain_results(&manifest, &run.log, "boot-xenstore");
    for (id, (p, f)) in per_domain.iter().enumerate() {
        t.record(&format!("boot-xenstore: d{id} reported and passed"), *p > 0 && *f == 0, &format!("{p} passed, {f} failed"));
    }
    for (id, names) in XENSTORE_TESTS {
        let missing: Vec<&str> =
            names.iter().copied().filter(|n| !run.log.contains(&format!("(d{id}) TEST {n} PASS"))).collect();
        t.record(&format!("boot-xenstore: d{id} passed every handshake step"), missing.is_empty(), &format!("missing: {missing:?}"));
    }
    t.record(
        "boot-xenstore: 64 MiB moved each way over the xenbus-connected pair",
        run.log.contains("blkfront moved 64 MiB each way"),
        "no \"blkfront moved 64 MiB each way\" line",
    );
    // A client dies with its store ring still mapped by xenstored (1 page held), which
    // unmaps it when it sees the client's port unbound; xenstored itself holds nothing.
    let destroyed: Vec<&str> = run.log.lines().filter(|l| l.contains(") destroyed (")).collect();
    let held = |l: &str| l.rsplit(", ").next().and_then(|p| p.strip_suffix(" still referenced")).and_then(|n| n.parse::<u32>().ok());
    let clients_ok = (1..manifest.domains.len()).all(|id| {
        destroyed.iter().any(|l| l.contains(&format!("Domain {id} (")) && held(l).is_some_and(|n| n <= 1))
            && run.log.contains(&format!("xenstored: d{id} is gone after "))
    });
    t.record(
        "boot-xenstore: every domain destroyed; a client holds only its store ring, which xenstored unmaps",
        destroyed.len() == manifest.domains.len() && clients_ok && destroyed.iter().any(|l| l.contains("Domain 0 (xenstored)") && held(l) == Some(0)),
        &destroyed.join(" | "),
    );
    let unfreed = left_behind(&run.log);
    t.record("boot-xenstore: nothing a dead domain left behind stays allocated", unfreed.is_empty(), &unfreed.join("; "));
    t.record(
        "boot-xenstore: machine halts after the last domain",
        run.log.contains(ALL_DOWN) && run.exit == Exit::Status(qemu::EXIT_SUCCESS),
        &format!("{:?}", run.exit),
    );
    if t.failed > 0 {
        let tail: Vec<&str> = run.log.lines().rev().take(80).collect();
        println!("--- last lines of target/logs/boot-xenstore.log ---");
        for l in tail.iter().rev() {
            println!("{l}");
        }
    }
    Ok(t)
}

/// Domains whose pages, still referenced by another domain at their death, were not
/// all freed once that domain let go (each destroy line says how many it left; each
/// later free is logged).
pub(crate) fn left_behind(log: &str) -> Vec<String> {
    let mut unfreed = Vec::new();
    for l in log.lines().filter(|l| l.contains(") destroyed (")) {
        let id = l.split("Domain ").nth(1).and_then(|r| r.split(' ').next()).unwrap_or("?");
        let held = l
            .rsplit(", ")
            .next()
            .and_then(|p| p.strip_suffix(" still referenced"))
            .and_then(|n| n.parse::<usize>().ok())
            .unwrap_or(usize::MAX);
        let freed = log.lines().filter(|f| f.contains(&format!("d{id}'s page ")) && f.contains(" freed: ")).count();
        if freed != held {
            unfreed.push(format!("d{id}: {held} held, {freed} freed later"));
        }
    }
    unfreed
}

/// What a manifest run printed.
#[derive(Debug)]
pub struct Run {
    pub log: String,
    pub exit: Exit,
    /// `BENCH <name> <value> <unit>` lines: (name, value, unit).
    pub bench: Vec<(String, u64, String)>,
}

pub fn boot(root: &Path, img: &Images, name: &str, manifest: &Manifest) -> Result<Run> {
    boot_timeout(root, img, name, manifest, Duration::from_secs(180))
}

pub fn boot_timeout(root: &Path, img: &Images, name: &str, manifest: &Manifest, timeout: Duration) -> Result<Run> {
    boot_cpus(root, img, name, manifest, timeout, 1)
}

/// A manifest boot on a machine with `cpus` CPUs (QEMU `-smp`).
pub fn boot_cpus(root: &Path, img: &Images, name: &str, manifest: &Manifest, timeout: Duration, cpus: u32) -> Result<Run> {
    let path = images::images_dir(root).join(format!("{name}.manifest"));
    std::fs::write(&path, manifest.encode())?;
    let m = Machine {
        kernel: img.xen_core.clone(),
        append: HV_CMDLINE.into(),
        modules: vec![(path, String::new()), (img.pv_guest.clone(), String::new())],
        memory_mib: 512,
        smp: cpus,
    };
    let out = qemu::run(&m, &root.join(format!("target/logs/{name}.log")), timeout, &[], &[])?;
    let bench = out
        .log
        .lines()
        .filter_map(|l| {
            let rest = &l[l.find("BENCH ")? + 6..];
            let mut w = rest.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.parse().ok()?, w.collect::<Vec<_>>().join(" ")))
        })
        .collect();
    Ok(Run { log: out.log, exit: out.exit, bench })
}

/// The boot tier's multi-domain checks.
pub fn checks(root: &Path, img: &Images) -> Result<Tally> {
    let manifest = pairs_manifest(2000, 200);
    let run = boot(root, img, "boot-pairs", &manifest)?;
    let (mut t, per_domain) = domain_results(&manifest, &run.log, "boot-pairs");
    let crasher = manifest.domains.iter().position(|d| d.cmdline.starts_with("role=crash"));
    for (id, (p, f)) in per_domain.iter().enumerate().filter(|(id, _)| Some(*id) != crasher) {
        t.record(&format!("boot-pairs: d{id} reported and passed"), *p > 0 && *f == 0, &format!("{p} passed, {f} failed"));
    }
    let destroyed: Vec<&str> = run.log.lines().filter(|l| l.contains(") destroyed (")).collect();
    t.record(
        "boot-pairs: every domain destroyed with nothing left referenced",
        destroyed.len() == manifest.domains.len() && destroyed.iter().all(|l| l.ends_with(" 0 still referenced")),
        &destroyed.join(" | "),
    );
    if let Some(c) = crasher {
        // A guest can only hurt itself: the crash is reported with a register dump, the
        // domain is destroyed, the others finish, and the machine's status says a domain
        // crashed.
        let dumped = run.log.contains("domain_crash called: Unhandled page fault")
            && run.log.contains(&format!("Domain {c} (vcpu#0) crashed on cpu#0:"))
            && run.log.contains(&format!("Domain {c} (crasher) destroyed (crash)"));
        t.record("boot-pairs: a crashing domain is contained and reported", dumped, "no crash report for the crasher");
    }
    if let Some(v) = manifest.domains.iter().position(|d| d.cmdline.starts_with("role=victim")) {
        // SCHEDOP_remote_shutdown by a privileged domain ends in the victim's
        // destruction, everything it held freed.
        // Its memory and shared_info, including the vcpu_info page it gave back while
        // the hypervisor held it.
        let pages = manifest.domains[v].memory_kib / 4 + 1;
        let gone = destroyed.iter().any(|l| {
            l.contains(&format!("Domain {v} (victim) destroyed (poweroff)")) && l.ends_with(&format!(" {pages} pages freed, 0 still referenced"))
        });
        t.record("boot-pairs: a domain shut down remotely is destroyed, every page freed", gone, &destroyed.join(" | "));
    }
    let want = if crasher.is_some() { qemu::EXIT_FAILURE } else { qemu::EXIT_SUCCESS };
    t.record(
        "boot-pairs: machine halts after the last domain",
        run.log.contains(ALL_DOWN) && run.exit == Exit::Status(want),
        &format!("{:?}", run.exit),
    );
    if t.failed > 0 {
        println!("--- target/logs/boot-pairs.log ---\n{}", run.log);
    }
    Ok(t)
}

/// Two domains fill their maptracks at once (each up to Xen's 262143 mappings, or
/// until the hypervisor refuses to grow one further with GNTST_no_space to keep heap
/// for the rest) beside a ping/pong pair, on two CPUs: both must end in
/// GNTST_no_space and still work, the pair must finish, every domain must be destroyed
/// with its mappings undone and every frame back, and the machine must halt cleanly.
pub fn maptrack_checks(root: &Path, img: &Images) -> Result<Tally> {
    let manifest = Manifest {
        domains: vec![
            dom("pong", "role=pong port=10 peer=1 rounds=2000".into()),
            dom("ping", "role=ping port=10 peer=0 rounds=2000".into()),
            dom("maptrack-a", "role=maptrack-fill self=2".into()),
            dom("maptrack-b", "role=maptrack-fill self=3".into()),
        ],
        channels: vec![StaticChannel { dom_a: 0, port_a: 10, dom_b: 1, port_b: 10 }],
        xenstore: None,
    };
    let name = "boot-maptrack";
    let run = boot_cpus(root, img, name, &manifest, Duration::from_secs(600), 2)?;
    let (mut t, per_domain) = domain_results(&manifest, &run.log, name);
    for (id, (p, f)) in per_domain.iter().enumerate() {
        t.record(&format!("{name}: d{id} ({}) reported and passed", manifest.domains[id].name), *p > 0 && *f == 0, &format!("{p} passed, {f} failed"));
    }
    let filled: Vec<&str> = run.log.lines().filter(|l| l.contains("MAPTRACK d")).collect();
    println!("  {name}: {}", filled.join(" | "));
    let destroyed: Vec<&str> = run.log.lines().filter(|l| l.contains(") destroyed (")).collect();
    t.record(
        &format!("{name}: every domain destroyed with nothing left referenced"),
        destroyed.len() == manifest.domains.len() && destroyed.iter().all(|l| l.ends_with(" 0 still referenced")),
        &destroyed.join(" | "),
    );
    let frames = run.log.lines().find_map(|l| Some(&l[l.find("Frames free: ")? + 13..]));
    let back = frames.and_then(|f| {
        let (now, rest) = f.split_once(", ")?;
        Some((now.parse::<u64>().ok()?, rest.split(' ').next()?.parse::<u64>().ok()?))
    });
    t.record(&format!("{name}: every frame back in the allocator"), back.is_some_and(|(now, before)| now == before), &format!("{frames:?}"));
    t.record(
        &format!("{name}: the hypervisor stays up and halts cleanly"),
        run.log.contains(ALL_DOWN) && run.exit == Exit::Status(qemu::EXIT_SUCCESS) && !run.log.contains("PANIC") && !run.log.contains("panicked"),
        &format!("{:?}", run.exit),
    );
    if t.failed > 0 {
        let tail: Vec<&str> = run.log.lines().rev().take(60).collect();
        println!("--- last lines of target/logs/{name}.log ---");
        for l in tail.iter().rev() {
            println!("{l}");
        }
    }
    Ok(t)
}

/// One pair of `pairs_manifest` on its own, so no other domain shares the CPU.
fn only(m: &Manifest, a: u16, b: u16) -> Manifest {
    let keep = |i: u16| i == a || i == b;
    let domains: Vec<_> = m.domains.iter().enumerate().filter(|(i, _)| keep(*i as u16)).map(|(_, d)| d.clone()).collect();
    let renum = |i: u16| if i == a { 0 } else { 1 };
    let fix = |d: DomainSpec| DomainSpec { cmdline: d.cmdline.replace(&format!("peer={a}"), "peer=0").replace(&format!("peer={b}"), "peer=1"), ..d };
    Manifest {
        domains: domains.into_iter().map(fix).collect(),
        channels: m
            .channels
            .iter()
            .filter(|c| keep(c.dom_a) && keep(c.dom_b))
            .map(|c| StaticChannel { dom_a: renum(c.dom_a), dom_b: renum(c.dom_b), ..*c })
            .collect(),
        xenstore: None,
    }
}

/// `cargo xtask bench interdomain`: the BENCH figures of longer runs, one pair at a time.
/// The boot-manifest pairs on xen-core alone: (name, value, unit) per BENCH line.
pub fn bench(root: &Path) -> Result<Vec<(String, u64, String)>> {
    crate::deps::ensure(root)?;
    let img = images::build_all(root)?;
    let all = pairs_manifest(20_000, 2_000);
    let mut figures = Vec::new();
    for (name, a, b) in [("bench-evtchn", 0u16, 1u16), ("bench-grant", 2, 3)] {
        let run = boot(root, &img, name, &only(&all, a, b))?;
        if run.bench.is_empty() {
            return Err(Error::new(format!("no BENCH lines (see target/logs/{name}.log)")));
        }
        figures.extend(run.bench);
    }
    let mut blk = blk_manifest(0);
    blk.domains.truncate(2);
    blk.channels.truncate(1);
    blk.domains[0].cmdline = "role=blkback ports=20 peers=1 disk-mib=16".into();
    blk.domains[0].memory_kib = 48 * 1024;
    blk.domains[1].cmdline = "role=blkfront-bench port=20 peer=0 disk-mib=16 count=4000".into();
    let run = boot(root, &img, "bench-blk", &blk)?;
    if run.bench.is_empty() {
        return Err(Error::new("no BENCH lines (see target/logs/bench-blk.log)"));
    }
    figures.extend(run.bench);
    Ok(figures)
}
