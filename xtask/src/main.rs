//! `cargo xtask`: build images, run them in QEMU, run every test tier, run benchmarks.
#![forbid(unsafe_code)]

mod audit;
mod bench;
mod bench_boot;
mod cmd;
mod cpuid;
mod deps;
mod dom0;
mod domu_cfg;
mod error;
mod fuzz;
mod images;
mod linux_dom0;
mod multi;
mod qemu;
mod reference;
mod results;
mod run_pty;
mod soak;
mod tiers;
mod toolchain;

use error::Result;
use std::path::{Path, PathBuf};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  build                 build every image into target/images/
  run [pv-guest]        boot xen-core with Debian's Linux as dom0 into a shell (or the pv-guest demo)
  test [TIER...]        run test tiers: host, boot, reference, dom0 (default: all)
  fuzz [--seed S] [--count N] [--domains D]
                        the hypercall fuzzer on xen-core: D fuzzing domUs (seeds S..S+D, N calls
                        each) beside an honest pair; checks the hypervisor, the pair and every frame
  bench [NAME...]       run benchmarks: ring, boot, interdomain (default: all), or by name create, blk, net; results go to docs/benchmarks.md
  soak [--cycles N] [--xen]  N (1000) create/destroy cycles of a pv-guest domU from Linux dom0 on xen-core (or Xen); free pages must come back exactly
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = dispatch(&args) {
        eprintln!("xtask: {e}");
        std::process::exit(1);
    }
}

fn dispatch(args: &[String]) -> Result<()> {
    let root = workspace_root();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    if matches!(args.first().map(String::as_str), Some("build" | "run" | "test" | "bench" | "soak" | "fuzz")) {
        toolchain::ensure(&root)?;
    }
    match args.first().map(String::as_str) {
        Some("build") => images::build_all(&root).map(|_| ()),
        Some("run") => tiers::run_main(&root, &rest),
        Some("test") => tiers::test(&root, &rest),
        Some("bench") => bench::bench(&root, &rest),
        Some("soak") => soak::soak(&root, &rest),
        Some("fuzz") => fuzz::command(&root, &rest),
        Some("-h" | "--help" | "help") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(error::Error::new(format!("unknown command `{other}`\n{USAGE}"))),
    }
}

/// The workspace root: xtask lives one level below it.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask is inside the workspace")
        .to_path_buf()
}
