//! The blkif back-end (`io/blkif.h`) as a library: request processing and the xenbus
//! description of a virtual block device, written once against three small traits so
//! that the same code serves a back-end inside `pv-guest` (grant copy through the
//! hypervisor) and a Linux-userspace blkback (over `/dev/xen/gntdev`):
//!
//! - [`GrantAccess`]: copy bytes from or to a frame the front-end granted;
//! - [`BlockStore`]: the storage behind the virtual disk ([`RamDisk`] is one, over a
//!   caller-provided byte slice);
//! - [`xenbus::KeyRead`] / [`xenbus::KeyWrite`]: reading the front-end's xenstore keys and
//!   publishing the back-end's (no xenstore client here, only the data and its checks).
//!
//! [`Backend::process`] consumes requests from a `xen_ring::BackRing`, copying each one
//! out of the shared page before looking at it (XSA-155), and answers each with the status
//! Linux's blkback gives (see the table in [`backend`]). A front-end publishing an
//! impossible ring index gets a [`RingState::Disconnect`], never a panic or an endless
//! loop, and one call does a bounded amount of work.
//!
//! `#![no_std]`, no allocation, no `unsafe`.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod backend;
pub mod grant;
pub mod persistent;
pub mod store;
pub mod xenbus;

pub use backend::{
    Backend, BackendConfig, BackendStats, DirectIo, Outcome, RingState, BLKBACK_MAX_INDIRECT_SEGMENTS,
};
pub use grant::{GrantAccess, GrantError, GrantSeg};
pub use persistent::{GrantMapper, MappedPage, PersistentGrants, PersistentStats};
pub use store::{BlockStore, RamDisk, StoreError};

/// Bytes in a blkif sector: `sector_number`, `first_sect`, `last_sect` and `sectors` are
/// always in 512-byte units, whatever the disk's logical sector size.
pub const SECTOR_SIZE: usize = 512;
/// Bytes in a granted frame.
pub const PAGE_SIZE: usize = xen_abi::types::PAGE_SIZE;
/// 512-byte sectors in a granted frame: `last_sect` must be below this.
pub const SECTORS_PER_PAGE: u8 = (PAGE_SIZE / SECTOR_SIZE) as u8;
