//! pv-guest: a Rust PV kernel for Xen's 64-bit PV interface. It boots unmodified on real
//! Xen 4.17 and on xen-core, runs the self-tests its command line selects and reports
//! `TEST <name> PASS|FAIL` lines and a closing `N passed, N failed`.
//!
//! Portable logic (command line, page-table encoding and allocators, time scaling,
//! event-bitmap scanning) is plain safe Rust with host unit tests; the bare-metal parts
//! build only for `x86_64-unknown-none`, with every `unsafe` block under `arch/`.
#![cfg_attr(not(test), no_std)]

extern crate alloc;

pub mod cmdline;
pub mod cpuid_dump;
pub mod events;
pub mod mm;
pub mod time;
pub mod xsd;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod churn;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod evtchn;
#[cfg(target_os = "none")]
mod fuzz;
#[cfg(target_os = "none")]
mod heap;
#[cfg(target_os = "none")]
mod hostile;
#[cfg(target_os = "none")]
mod hv;
#[cfg(target_os = "none")]
mod net;
#[cfg(target_os = "none")]
mod net_hostile;
#[cfg(target_os = "none")]
mod paging;
#[cfg(target_os = "none")]
mod roles;
#[cfg(target_os = "none")]
mod blk;
#[cfg(target_os = "none")]
mod blk_hostile;
#[cfg(target_os = "none")]
mod selftest;
#[cfg(target_os = "none")]
mod shared;
#[cfg(target_os = "none")]
mod smp;
#[cfg(target_os = "none")]
mod start;
#[cfg(target_os = "none")]
mod store;
#[cfg(target_os = "none")]
mod trap;
#[cfg(target_os = "none")]
mod xenbus;
#[cfg(target_os = "none")]
mod xenstored;
