//! Xen's `io/ring.h` shared-ring protocol, implemented once and generic over the request
//! and response types.
//!
//! A ring lives in one shared page (usually 4 KiB, granted by the front end and mapped by
//! the back end):
//!
//! | offset | field |
//! |---|---|
//! | 0 | `req_prod` (free-running `RING_IDX`, u32) |
//! | 4 | `req_event` |
//! | 8 | `rsp_prod` |
//! | 12 | `rsp_event` |
//! | 16 | `pvt` (4 bytes) |
//! | 20 | `__pad[44]` |
//! | 64 | `ring[]`: [`ring_size`] slots of `union { Req, Rsp }` |
//!
//! The front end ([`FrontRing`]) produces requests and consumes responses; the back end
//! ([`BackRing`]) consumes requests and produces responses, each into the slot of the
//! request it answers.
//!
//! The peer is not trusted: it controls the producer index it publishes and every byte of
//! every entry. Entries are therefore copied out exactly once (relaxed atomic word loads,
//! so even a concurrently scribbling peer is no data race) into values of types that are
//! valid for any bytes (`zerocopy::FromBytes`), slot indices are always masked with
//! `size - 1`, and a producer index that claims more entries than are possible is reported
//! as a [`RingError`] instead of being trusted.
//!
//! Memory ordering follows ring.h's barriers: `xen_wmb()` before publishing a producer index
//! is a `Release` store, `xen_rmb()` after reading the peer's producer index is an
//! `Acquire` load, and `xen_mb()` between publishing and reading the peer's event index
//! (and between setting our event index and re-reading the producer) is a `SeqCst` fence.
//!
//! `#![no_std]`, no allocation: usable in a bare-metal PV kernel and in userspace over
//! pages mapped with gntdev.
#![no_std]

#[cfg(test)]
extern crate std;

mod back;
mod front;
mod shared;

pub use back::BackRing;
pub use front::FrontRing;

/// `RING_IDX`: a free-running 32-bit index, compared with wrapping arithmetic.
pub type RingIdx = u32;

/// Bytes before `ring[]` in the shared page: four indices, `pvt`, padding.
pub const RING_HEADER_SIZE: usize = 64;

/// How many published slots a side keeps prefetched for writing ahead of its consumer
/// index (one page's worth of blkif or 64-byte slots; fetching a 16-page ring's whole
/// batch at once measured slower than a window at a time).
pub(crate) const PREFETCH_SLOTS: u32 = 32;

/// Largest ring this crate will use (free-running u32 indices need `size <= 2^31`).
pub const MAX_RING_SIZE: u32 = 1 << 31;

/// Errors from constructing or operating a ring. The `*Overflow` variants mean the peer
/// published an impossible producer index: treat the ring (and the peer) as broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RingError {
    /// The page pointer was null.
    NullPage,
    /// The page pointer is not aligned to `required` bytes (at least 8: indices are 32-bit
    /// atomics and slots are copied with up to 64-bit atomic words; slots must also be
    /// aligned for the entry types, and types aligned beyond 64 are unsupported).
    Misaligned { required: usize },
    /// The page cannot hold the 64-byte header and at least one entry.
    PageTooSmall { page_size: usize, entry_size: usize },
    /// Back end: the front end's `req_prod` claims more unanswered requests than the ring
    /// holds (`RING_REQUEST_PROD_OVERFLOW`), or moved backwards past requests already
    /// consumed.
    RequestProdOverflow {
        req_prod: RingIdx,
        req_cons: RingIdx,
        rsp_prod_pvt: RingIdx,
        size: u32,
    },
    /// Front end: the back end's `rsp_prod` claims more responses than there are
    /// published, unanswered requests (`req_prod - rsp_cons`; stricter than
    /// `RING_RESPONSE_PROD_OVERFLOW`), or moved backwards.
    ResponseProdOverflow {
        rsp_prod: RingIdx,
        rsp_cons: RingIdx,
        req_prod: RingIdx,
        size: u32,
    },
    /// Front end: no free request slot (`RING_FULL`).
    Full,
    /// Back end: every consumed request already has a response; writing another would
    /// overwrite a slot the front end may still be filling.
    NoRequestToAnswer,
}

impl core::fmt::Display for RingError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match *self {
            RingError::NullPage => write!(f, "ring page pointer is null"),
            RingError::Misaligned { required } => {
                write!(f, "ring page is not aligned to {required} bytes")
            }
            RingError::PageTooSmall {
                page_size,
                entry_size,
            } => write!(
                f,
                "{page_size}-byte page cannot hold a ring of {entry_size}-byte entries"
            ),
            RingError::RequestProdOverflow {
                req_prod,
                req_cons,
                rsp_prod_pvt,
                size,
            } => write!(
                f,
                "peer req_prod {req_prod} impossible (req_cons {req_cons}, rsp_prod_pvt {rsp_prod_pvt}, size {size})"
            ),
            RingError::ResponseProdOverflow {
                rsp_prod,
                rsp_cons,
                req_prod,
                size,
            } => write!(
                f,
                "peer rsp_prod {rsp_prod} impossible (rsp_cons {rsp_cons}, req_prod {req_prod}, size {size})"
            ),
            RingError::Full => write!(f, "ring full"),
            RingError::NoRequestToAnswer => write!(f, "no consumed request left to answer"),
        }
    }
}

impl core::error::Error for RingError {}

/// Size of one ring slot, `sizeof(union { Req req; Rsp rsp; })`: the larger of the two
/// sizes, rounded up to the larger alignment.
pub const fn entry_size<Req, Rsp>() -> usize {
    let (sa, sb) = (core::mem::size_of::<Req>(), core::mem::size_of::<Rsp>());
    let (aa, ab) = (core::mem::align_of::<Req>(), core::mem::align_of::<Rsp>());
    let size = if sa > sb { sa } else { sb };
    let align = if aa > ab { aa } else { ab };
    size.div_ceil(align) * align
}

/// `__RING_SIZE`: how many `entry_size`-byte slots fit after the 64-byte header in
/// `page_size` bytes, rounded down to a power of two (capped at [`MAX_RING_SIZE`]).
/// Returns 0 if not even one fits (or `entry_size` is 0).
pub const fn ring_size(page_size: usize, entry_size: usize) -> u32 {
    if entry_size == 0 || page_size < RING_HEADER_SIZE {
        return 0;
    }
    let n = (page_size - RING_HEADER_SIZE) / entry_size;
    if n == 0 {
        return 0;
    }
    if n >= MAX_RING_SIZE as usize {
        return MAX_RING_SIZE;
    }
    // Round down to a power of two: keep only the highest set bit.
    1u32 << (31 - (n as u32).leading_zeros())
}

/// [`ring_size`] for a ring of `Req`/`Rsp` in `page_size` bytes.
pub const fn ring_size_for<Req, Rsp>(page_size: usize) -> u32 {
    ring_size(page_size, entry_size::<Req, Rsp>())
}

/// `RING_PUSH_*_AND_CHECK_NOTIFY`'s test: did publishing `old..new` cross the peer's
/// event index? (`new - event < new - old`, unsigned.)
#[inline(always)]
pub const fn needs_notify(old: RingIdx, new: RingIdx, event: RingIdx) -> bool {
    new.wrapping_sub(event) < new.wrapping_sub(old)
}

#[cfg(test)]
mod tests {
    use super::*;
    use xen_abi::blkif::{BlkifRequest, BlkifResponse};

    #[repr(C)]
    struct NetifTxRequest([u16; 6]); // 12 bytes
    #[repr(C)]
    struct NetifTxResponse([u16; 2]); // 4 bytes
    #[repr(C)]
    struct NetifRxRequest([u16; 4]); // 8 bytes
    #[repr(C)]
    struct NetifRxResponse([u16; 4]); // 8 bytes

    #[test]
    fn blkif_ring_has_32_slots() {
        assert_eq!(core::mem::size_of::<BlkifRequest>(), 112);
        assert_eq!(core::mem::size_of::<BlkifResponse>(), 16);
        assert_eq!(entry_size::<BlkifRequest, BlkifResponse>(), 112);
        assert_eq!(ring_size_for::<BlkifRequest, BlkifResponse>(4096), 32);
        const { assert!(ring_size_for::<BlkifRequest, BlkifResponse>(4096) == 32) };
    }

    #[test]
    fn netif_rings_have_256_slots() {
        assert_eq!(ring_size_for::<NetifTxRequest, NetifTxResponse>(4096), 256);
        assert_eq!(ring_size_for::<NetifRxRequest, NetifRxResponse>(4096), 256);
    }

    #[test]
    fn ring_size_edge_cases() {
        assert_eq!(ring_size(4096, 0), 0);
        assert_eq!(ring_size(63, 1), 0);
        assert_eq!(ring_size(64, 1), 0);
        assert_eq!(ring_size(65, 1), 1);
        assert_eq!(ring_size(64 + 3 * 16, 16), 2);
        assert_eq!(ring_size(4096, 64), 32);
        assert_eq!(ring_size(4096, 1), 2048);
        assert_eq!(ring_size(2 * 4096, 112), 64);
        assert_eq!(ring_size(usize::MAX, 1), MAX_RING_SIZE);
    }

    #[test]
    fn union_entry_size_rounds_to_alignment() {
        #[repr(C)]
        struct A([u16; 3]); // size 6 align 2
        #[repr(C)]
        struct B(u32); // size 4 align 4
        assert_eq!(entry_size::<A, B>(), 8);
    }

    #[test]
    fn notify_test_matches_ring_h() {
        // Peer asked to be woken at index 1; we publish 0 -> 1.
        assert!(needs_notify(0, 1, 1));
        // Published 0 -> 5 crossing event 3.
        assert!(needs_notify(0, 5, 3));
        // Event already passed before this push.
        assert!(!needs_notify(5, 8, 3));
        // Event beyond what we publish.
        assert!(!needs_notify(0, 5, 6));
        // Nothing published.
        assert!(!needs_notify(7, 7, 7));
        // Wrap-around.
        assert!(needs_notify(u32::MAX - 1, 2, 0));
        assert!(!needs_notify(u32::MAX - 1, 2, 3));
    }
}
