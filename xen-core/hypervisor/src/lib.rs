//! xen-core: a hypervisor for 64-bit PV guests speaking the Xen 4.17 public interface.
//!
//! Portable logic (multiboot parsing, boot options) is plain safe Rust, unit-tested on the
//! host. Everything that touches hardware lives in `arch`, built only for the bare-metal
//! target.
#![cfg_attr(not(test), no_std)]
// Constants keep Xen's names (EVTCHNOP_send, ...), so patterns use them as they are.
#![allow(non_upper_case_globals)]

extern crate alloc;

pub mod boot_options;
pub mod domain;
pub mod frames;
pub mod mm;
pub mod multiboot;
pub mod segdesc;
pub mod time;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
pub mod pv;
#[cfg(target_os = "none")]
pub use pv::{guest_syscall, guest_trap};
