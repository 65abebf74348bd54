//! Front-end drivers for Xen PV devices, `no_std` and free of `unsafe`: they see shared
//! memory and event channels only through the [`SharedPage`] and [`Notify`] traits,
//! which `pv-guest` implements over mapped pages and hypercalls and the host tests
//! implement in memory with a fake peer.
//!
//! - [`console`]: the PV console ring (`xencons_interface`).
//! - [`xenstore`]: a xenstore client over the store ring (`xenstore_domain_interface`).
//! - [`netfront`]: the netif front-end; [`netproto`]: Ethernet, ARP, IPv4, ICMP echo.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod blkfront;
pub mod console;
pub mod netfront;
pub mod netproto;
pub mod page;
pub mod xenstore;

pub use page::{MemPage, Notify, SharedPage};
