//! xen-core: a hypervisor for 64-bit PV guests speaking the Xen 4.17 public interface.
//!
//! Portable logic (multiboot, boot options, frames, time, descriptors, the domain
//! builder's ELF and layout rules, the PV MMU) is safe Rust, unit-tested on the host.
//! Everything that touches hardware lives in `arch`, built only for the bare-metal target;
//! every other module denies `unsafe`.
#![cfg_attr(not(test), no_std)]
// Constants keep Xen's names (EVTCHNOP_send, ...), so patterns use them as they are.
#![allow(non_upper_case_globals)]

extern crate alloc;

#[deny(unsafe_code)]
pub mod acpi;
#[deny(unsafe_code)]
pub mod boot_options;
#[deny(unsafe_code)]
pub mod cpuid_policy;
#[deny(unsafe_code)]
pub mod domain;
#[deny(unsafe_code)]
pub mod frames;
#[deny(unsafe_code)]
pub mod insn;
#[deny(unsafe_code)]
pub mod mm;
#[deny(unsafe_code)]
pub mod msr_policy;
#[deny(unsafe_code)]
pub mod multiboot;
#[deny(unsafe_code)]
pub mod priv_insn;
#[deny(unsafe_code)]
pub mod segdesc;
#[deny(unsafe_code)]
pub mod time;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
#[deny(unsafe_code)]
pub mod pv;
#[cfg(target_os = "none")]
pub use pv::{guest_syscall, guest_trap};
