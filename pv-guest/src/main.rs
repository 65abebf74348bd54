//! The bootable PV kernel. Everything lives in the library; on the bare-metal target this
//! binary only pulls in its entry point (`_start`), notes and panic handler.
#![cfg_attr(target_os = "none", no_std, no_main)]

#[cfg(target_os = "none")]
use pv_guest as _;

#[cfg(not(target_os = "none"))]
fn main() {
    eprintln!("pv-guest is a PV kernel image: build it with `cargo xtask build`");
    std::process::exit(2);
}
