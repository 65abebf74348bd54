//! The hypercall fuzzer (pv-guest `role=fuzz`, pv-guest/src/fuzz.rs) on xen-core: fuzzing
//! domUs beside an honest event-channel pair and an honest grant pair, all from one boot
//! manifest (with several fuzzers, the last one is a privileged control domain that
//! fuzzes domctl and sysctl too). After the run the hypervisor must still be up and halt cleanly, the honest
//! domains must have finished their work, every fuzzer must report its invariants held,
//! and with every domain destroyed the frame allocator must be back to the count it had
//! before the first domain was built (each fuzzed domain returned every frame).
//!
//! `cargo xtask fuzz [--seed S] [--count N] [--domains D]`: D fuzzing domains, seeds
//! S..S+D, N calls each. The boot tier's `fuzz` scenario runs `CI_SEEDS` (see
//! docs/benchmarks.md for the calls/s this was sized with).

use crate::error::{Error, Result};
use crate::images::{self, Images};
use crate::multi;
use crate::qemu::{self, Exit};
use crate::results::Tally;
use boot_manifest::{DomainSpec, Manifest, StaticChannel};
use std::path::Path;
use std::time::Duration;

/// The boot tier's fuzz run: four fuzzing domains, 30 000 calls each (1.2 * 10^5).
pub const CI_SEEDS: [u64; 4] = [1, 2, 3, 4];
pub const CI_COUNT: u64 = 30_000;

fn dom(name: &str, cmdline: String) -> DomainSpec {
    DomainSpec { name: name.into(), kernel_module: 1, memory_kib: 32 * 1024, vcpus: 1, cmdline, privileged: false, initrd_module: None }
}

/// d0/d1 ping/pong, d2/d3 grant server/client, then one fuzzing domain per seed.
pub fn manifest(seeds: &[u64], count: u64, extra: &str) -> Manifest {
    let honest = 4u16;
    let all: Vec<String> = (0..honest + seeds.len() as u16).map(|d| d.to_string()).collect();
    let mut domains = vec![
        dom("pong", "role=pong port=10 peer=1 rounds=2000".into()),
        dom("ping", "role=ping port=10 peer=0 rounds=2000".into()),
        dom("grant-server", "role=grant-server port=11 peer=3".into()),
        dom("grant-client", "role=grant-client port=11 peer=2 iters=200".into()),
    ];
    for (i, seed) in seeds.iter().enumerate() {
        let id = honest + i as u16;
        let peers: Vec<&str> = all.iter().filter(|d| **d != id.to_string()).map(String::as_str).collect();
        // Two vCPUs: vCPU 1 works concurrently from its own seed (pv-guest/src/churn.rs).
        // With several, the last is a control domain (privileged: domctl and sysctl
        // too, pv-guest/src/fuzz/control.rs).
        let privileged = seeds.len() > 1 && i + 1 == seeds.len();
        let priv_arg = if privileged { " priv=1" } else { "" };
        domains.push(DomainSpec {
            vcpus: 2,
            privileged,
            ..dom(&format!("fuzz-{seed}"), format!("role=fuzz seed={seed} count={count} self={id} peers={} honest={}{priv_arg}{extra}", peers.join(","), all[..honest as usize].join(",")))
        });
    }
    Manifest {
        domains,
        channels: vec![
            StaticChannel { dom_a: 0, port_a: 10, dom_b: 1, port_b: 10 },
            StaticChannel { dom_a: 2, port_a: 11, dom_b: 3, port_b: 11 },
        ],
        xenstore: None,
    }
}

/// What one fuzz boot showed.
pub struct Outcome {
    pub tally: Tally,
    pub calls: u64,
    pub calls_per_s: Vec<u64>,
}

pub fn run(root: &Path, img: &Images, name: &str, seeds: &[u64], count: u64, timeout: Duration, extra: &str) -> Result<Outcome> {
    let m = manifest(seeds, count, extra);
    // Two CPUs: each fuzzing domain's two vCPUs can run at once.
    let run = multi::boot_cpus(root, img, name, &m, timeout, 2)?;
    let log = &run.log;
    let mut t = Tally::default();
    let (mut tally, per_domain) = multi::domain_results(&m, log, name);
    t.absorb(std::mem::take(&mut tally));
    for (id, (p, f)) in per_domain.iter().enumerate() {
        t.record(&format!("{name}: d{id} ({}) reported and passed", m.domains[id].name), *p > 0 && *f == 0, &format!("{p} passed, {f} failed"));
    }
    let mut calls = 0;
    for (i, seed) in seeds.iter().enumerate() {
        let id = 4 + i;
        let done = log.lines().find_map(|l| l.strip_prefix(&format!("(d{id}) FUZZ done seed {seed}: ")));
        let n = done.and_then(|d| d.split(' ').next()).and_then(|n| n.parse::<u64>().ok()).unwrap_or(0);
        calls += n;
        t.record(&format!("{name}: d{id} made its {count} calls (seed {seed})"), n >= count, &format!("{done:?}"));
    }
    // The boot's domains, and those the control-domain fuzzer created and destroyed.
    let destroyed: Vec<&str> = log.lines().filter(|l| l.contains(") destroyed (")).collect();
    let boot_domains = m.domains.iter().filter(|d| destroyed.iter().any(|l| l.contains(&format!(" ({}) destroyed (", d.name)))).count();
    t.record(
        &format!("{name}: every domain destroyed with nothing left referenced"),
        boot_domains == m.domains.len() && destroyed.iter().all(|l| l.ends_with(" 0 still referenced")),
        &destroyed.join(" | "),
    );
    if let Some(l) = log.lines().find(|l| l.contains("FUZZ control domain: ")) {
        println!("{name}: {}", &l[l.find("FUZZ control domain: ").unwrap_or(0)..]);
    }
    let frames = log.lines().find_map(|l| Some(&l[l.find("Frames free: ")? + 13..]));
    let back = frames.and_then(|f| {
        let (now, rest) = f.split_once(", ")?;
        Some((now.parse::<u64>().ok()?, rest.split(' ').next()?.parse::<u64>().ok()?))
    });
    t.record(
        &format!("{name}: every frame back in the allocator once all domains are gone"),
        back.is_some_and(|(now, before)| now == before),
        &format!("{frames:?}"),
    );
    t.record(
        &format!("{name}: the hypervisor is up to the end and halts cleanly"),
        log.contains("All domains have shut down") && run.exit == Exit::Status(qemu::EXIT_SUCCESS) && !log.contains("PANIC") && !log.contains("panicked"),
        &format!("{:?}", run.exit),
    );
    let calls_per_s = run.bench.iter().filter(|(n, _, _)| n == "fuzz_calls_per_s").map(|(_, v, _)| *v).collect();
    if t.failed > 0 {
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        println!("--- last lines of target/logs/{name}.log ---");
        for l in tail.iter().rev() {
            println!("{l}");
        }
    }
    Ok(Outcome { tally: t, calls, calls_per_s })
}

/// The boot tier's scenario.
pub fn checks(root: &Path, img: &Images) -> Result<Tally> {
    let o = run(root, img, "boot-fuzz", &CI_SEEDS, CI_COUNT, Duration::from_secs(300), "")?;
    println!("boot-fuzz: {} calls, {:?} calls/s per fuzzing domain", o.calls, o.calls_per_s);
    Ok(o.tally)
}

/// `cargo xtask fuzz [--seed S] [--count N] [--domains D] [--timeout SECS] [--trace 1]`
/// (`--trace 1`: every call printed before it is made).
pub fn command(root: &Path, args: &[&str]) -> Result<()> {
    let mut seed = 1;
    let mut count = 100_000;
    let mut domains = 1;
    let mut timeout = 1800;
    let mut trace = false;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it.next().ok_or_else(|| Error::new(format!("{a} needs a value")))?;
        let n: u64 = v.parse().map_err(|_| Error::new(format!("{a}: not a number: {v}")))?;
        match *a {
            "--seed" => seed = n,
            "--count" => count = n,
            "--domains" => domains = n.clamp(1, 8),
            "--timeout" => timeout = n,
            "--trace" => trace = n != 0,
            _ => return Err(Error::new(format!("unknown fuzz option {a}"))),
        }
    }
    crate::deps::ensure(root)?;
    let img = images::build_all(root)?;
    let seeds: Vec<u64> = (seed..seed + domains).collect();
    let o = run(root, &img, "fuzz", &seeds, count, Duration::from_secs(timeout), if trace { " trace=1" } else { "" })?;
    println!("fuzz: seeds {seeds:?}, {} calls, {:?} calls/s per fuzzing domain (log: target/logs/fuzz.log)", o.calls, o.calls_per_s);
    for f in &o.tally.failures {
        println!("  failed: {f}");
    }
    if o.tally.failed > 0 {
        return Err(Error::new(format!("{} of {} fuzz checks failed", o.tally.failed, o.tally.passed + o.tally.failed)));
    }
    println!("fuzz: all {} checks passed", o.tally.passed);
    Ok(())
}
