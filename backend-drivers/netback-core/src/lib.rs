//! The netif back-end (`io/netif.h`) as a library, written once against a small
//! grant-copy trait so that a Linux-userspace netback (over `/dev/xen/gntdev`, feeding a
//! TAP device) and the host tests share it:
//!
//! - [`Netback::process_tx`] consumes the front-end's transmit ring: multi-slot packets
//!   (`NETTXF_more_data`), extra-info slots (GSO, multicast) consumed and validated, the
//!   data copied out of the granted pages into private memory, each slot answered, and
//!   each good packet handed over as a [`TxPacket`] with its checksum flags and GSO
//!   description.
//! - [`Netback::deliver_rx`] copies one packet into buffers the front-end posted on its
//!   receive ring (`feature-rx-copy`; page flipping is not supported, as in Linux), with
//!   `NETRXF_*` flags and, for a front-end that takes it, a GSO extra-info slot;
//!   [`Netback::deliver_rx_batch`] many packets with one copy and one push.
//! - [`csum`]: finding and filling TCP/UDP checksums and the `virtio_net_hdr` a TAP with
//!   `IFF_VNET_HDR` speaks, so `NETTXF_csum_blank` and GSO survive the trip into Linux.
//! - [`xenbus`]: what the back-end publishes and what it reads from the front-end.
//!
//! The front-end is not trusted. Following Linux's `xen-netback`, a malformed packet
//! (too many slots, sizes that do not add up, a first slot shorter than an Ethernet
//! header, a grant that cannot be copied) is answered with `NETIF_RSP_ERROR` on every
//! slot and dropped; a front-end that breaks the protocol itself (an impossible ring
//! index, a packet whose slots are not all published, a slot crossing its page, more
//! than [`FATAL_SKB_SLOTS`] slots, a bad extra-info type, a GSO size of 0 or an unknown
//! GSO type) gets [`TxState::Disconnect`] with a typed [`Fatal`] reason. Nothing a
//! front-end writes can make this crate panic or loop without bound.
//!
//! `#![no_std]`, no allocation, no `unsafe`.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(test)]
extern crate std;

pub mod backend;
pub mod csum;
pub mod grant;
pub mod xenbus;

pub use backend::{
    Fatal, Gso, GsoKind, Netback, NetbackConfig, NetbackStats, RxBatchOutcome, RxDrop,
    RxFrameRef, RxMeta, RxOutcome, TxOutcome, TxPacket, TxState, MAX_RX_GSO_PACKET, RX_BATCH,
};
pub use grant::{CopyDir, CopySeg, GrantAccess, GrantError};

/// Bytes in a granted frame.
pub const PAGE_SIZE: usize = xen_abi::types::PAGE_SIZE;
/// An Ethernet header: the least the first transmit slot must carry (`ETH_HLEN`).
pub const ETH_HLEN: usize = 14;
/// Fragments (slots after the first) a packet may use before it is dropped with errors
/// (`XEN_NETBK_LEGACY_SLOTS_MAX`, the historical `MAX_SKB_FRAGS`).
pub const LEGACY_SLOTS_MAX: usize = 18;
/// Fragments after which the front-end is considered malicious and disconnected (Linux
/// netback's `fatal_skb_slots` default, `FATAL_SKB_SLOTS_DEFAULT`).
pub const FATAL_SKB_SLOTS: usize = 20;
/// Largest packet: the first slot's 16-bit `size`.
pub const MAX_PACKET: usize = xen_abi::netif::XEN_NETIF_MAX_TX_SIZE as usize;
