//! Builds the C side of the interop test and the benchmark from the real Xen headers:
//! `ring-c-peer` (a separate process, path exported as `RING_C_PEER`) and `libringbench_c`
//! (linked into this crate, used by `ring-bench`).

use std::path::{Path, PathBuf};
use std::process::Command;

const HEADERS: [&str; 2] = ["/usr/include/xen/io/ring.h", "/usr/include/xen/io/blkif.h"];
/// The newest interface version the Debian headers support; ring.h then expects the
/// xen_mb/xen_rmb/xen_wmb macros that csrc/ring_common.h defines.
const XEN_INTERFACE_VERSION: &str = "0x00040e00";

fn main() {
    for h in HEADERS {
        if !Path::new(h).exists() {
            eprintln!("error: {h} not found: install libxen-dev (apt-get install libxen-dev)");
            std::process::exit(1);
        }
    }
    for f in ["csrc/ring_common.h", "csrc/peer.c", "csrc/bench.c"] {
        println!("cargo:rerun-if-changed={f}");
    }
    for h in HEADERS {
        println!("cargo:rerun-if-changed={h}");
    }

    let mut build = cc::Build::new();
    build
        .include("csrc")
        .include("/usr/include")
        .define("__XEN_INTERFACE_VERSION__", XEN_INTERFACE_VERSION)
        .opt_level(2)
        .debug(false)
        .warnings(true)
        .extra_warnings(true);

    // The benchmark's C ring, linked into this crate.
    build.clone().file("csrc/bench.c").compile("ringbench_c");

    // The interop peer: a standalone executable.
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    let exe = out.join("ring-c-peer");
    let mut cmd: Command = build.get_compiler().to_command();
    cmd.arg("csrc/peer.c").arg("-o").arg(&exe);
    let status = cmd.status().expect("run C compiler");
    if !status.success() {
        eprintln!("error: compiling csrc/peer.c failed ({status})");
        std::process::exit(1);
    }
    println!("cargo:rustc-env=RING_C_PEER={}", exe.display());
}
