//! pv-guest: a Rust PV kernel for Xen's 64-bit PV interface. It boots unmodified on real
//! Xen 4.17 and on xen-core, runs the self-tests its command line selects and reports
//! `TEST <name> PASS|FAIL` lines and a closing `N passed, N failed`.
#![cfg_attr(not(test), no_std)]

pub mod cmdline;

#[cfg(target_os = "none")]
pub mod arch;
#[cfg(target_os = "none")]
mod console;
#[cfg(target_os = "none")]
mod selftest;
#[cfg(target_os = "none")]
mod start;
