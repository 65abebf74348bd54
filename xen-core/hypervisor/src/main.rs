//! The bootable hypervisor image. Everything lives in the library; on the bare-metal
//! target this binary only pulls in its entry point (`_start32`) and panic handler.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use xen_core as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("xen-core is a bare-metal image: build it with `cargo xtask build`");
    std::process::exit(2);
}
