//! The only module with `unsafe` code: the raw shared page, atomic access to its four
//! indices, and volatile copies of entries in and out of its slots.
//!
//! Everything here is bounds-checked by construction: [`Shared::new`] validates the page
//! (non-null, aligned, large enough for at least one entry) and every slot access masks the
//! free-running index with `size - 1`, so no index value a peer can write leads outside
//! the page.

use core::marker::PhantomData;
use core::ptr::{self, NonNull};
use core::sync::atomic::{AtomicU32, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::{entry_size, ring_size, RingError, RING_HEADER_SIZE};

/// The four shared `RING_IDX` fields of the ring page, by byte offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
pub(crate) enum Index {
    ReqProd = 0,
    ReqEvent = 4,
    RspProd = 8,
    RspEvent = 12,
}

/// Offset of `pvt` (4 bytes) followed by `__pad[44]`: the bytes zeroed by `SHARED_RING_INIT`.
const PVT_OFFSET: usize = 16;

/// A validated view of one shared ring page.
///
/// Holds a raw pointer, never a Rust reference to the page (the peer writes it
/// concurrently): indices are accessed as atomics, entries by volatile copies.
pub(crate) struct Shared<Req, Rsp> {
    base: NonNull<u8>,
    /// Number of entries (a power of two, 1..=2^31).
    size: u32,
    _types: PhantomData<(fn() -> Req, fn() -> Rsp)>,
}

impl<Req, Rsp> core::fmt::Debug for Shared<Req, Rsp> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("base", &self.base)
            .field("size", &self.size)
            .finish()
    }
}

// SAFETY: `Shared` only touches the page through atomics and volatile copies of
// `FromBytes + IntoBytes` data; the contract of `Shared::new` requires the mapping to stay
// valid for the object's whole life, independently of which thread holds the object.
unsafe impl<Req, Rsp> Send for Shared<Req, Rsp> {}

impl<Req, Rsp> Shared<Req, Rsp>
where
    Req: FromBytes + IntoBytes + Immutable,
    Rsp: FromBytes + IntoBytes + Immutable,
{
    /// Validates `page` and computes the ring size (`__RING_SIZE`).
    ///
    /// # Safety
    /// `page` must point to `page_size` bytes that are readable and writable for as long as
    /// the returned value (or anything built from it) exists, and that are accessed by
    /// everyone else only as a Xen shared ring (indices as aligned 32-bit words, entries as
    /// plain data). Other parties may write the memory concurrently.
    pub(crate) unsafe fn new(page: *mut u8, page_size: usize) -> Result<Self, RingError> {
        let base = NonNull::new(page).ok_or(RingError::NullPage)?;
        let align = Self::required_align();
        if align > RING_HEADER_SIZE {
            return Err(RingError::Misaligned { required: align });
        }
        if (page as usize) % align != 0 {
            return Err(RingError::Misaligned { required: align });
        }
        let size = ring_size(page_size, entry_size::<Req, Rsp>());
        if size == 0 {
            return Err(RingError::PageTooSmall {
                page_size,
                entry_size: entry_size::<Req, Rsp>(),
            });
        }
        Ok(Self {
            base,
            size,
            _types: PhantomData,
        })
    }

    /// Alignment the page must have: the indices are 32-bit atomics and every entry slot
    /// must be aligned for both `Req` and `Rsp`.
    const fn required_align() -> usize {
        let mut a = core::mem::align_of::<AtomicU32>();
        if core::mem::align_of::<Req>() > a {
            a = core::mem::align_of::<Req>();
        }
        if core::mem::align_of::<Rsp>() > a {
            a = core::mem::align_of::<Rsp>();
        }
        a
    }

    #[inline(always)]
    pub(crate) fn size(&self) -> u32 {
        self.size
    }

    #[inline(always)]
    fn index(&self, which: Index) -> &AtomicU32 {
        // SAFETY: offsets 0..16 lie inside the page (`new` checked page_size >= 64 + one
        // entry), the page is at least 4-byte aligned (checked in `new`) so every index is
        // aligned for `AtomicU32`, and the page is valid for the life of `self` (contract of
        // `new`). All accesses to these words from this side are atomic.
        unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(which as usize).cast::<u32>()) }
    }

    #[inline(always)]
    pub(crate) fn load(&self, which: Index, order: Ordering) -> u32 {
        self.index(which).load(order)
    }

    #[inline(always)]
    pub(crate) fn store(&self, which: Index, value: u32, order: Ordering) {
        self.index(which).store(value, order)
    }

    /// `SHARED_RING_INIT`: producers 0, events 1, `pvt` and padding zeroed.
    pub(crate) fn init_header(&self) {
        for off in PVT_OFFSET..RING_HEADER_SIZE {
            // SAFETY: 16..64 lies inside the page (see `index`); a volatile byte write has
            // no alignment requirement.
            unsafe { ptr::write_volatile(self.base.as_ptr().add(off), 0u8) };
        }
        self.store(Index::ReqProd, 0, Ordering::Relaxed);
        self.store(Index::RspProd, 0, Ordering::Relaxed);
        self.store(Index::ReqEvent, 1, Ordering::Relaxed);
        self.store(Index::RspEvent, 1, Ordering::Release);
    }

    /// Address of the slot for free-running index `idx` (masked with `size - 1`).
    #[inline(always)]
    fn slot(&self, idx: u32) -> *mut u8 {
        let slot = (idx & (self.size - 1)) as usize;
        // SAFETY: `slot < size` and `new` guaranteed 64 + size * entry_size <= page_size, so
        // the result stays within the page allocation.
        unsafe {
            self.base
                .as_ptr()
                .add(RING_HEADER_SIZE + slot * entry_size::<Req, Rsp>())
        }
    }

    /// Copies the request in slot `idx` out of shared memory (`RING_COPY_REQUEST`).
    #[inline(always)]
    pub(crate) fn read_req(&self, idx: u32) -> Req {
        // SAFETY: `slot` is in bounds and aligned for `Req` (page aligned to `Req`'s
        // alignment, header 64 bytes, entry size a multiple of it); `Req: FromBytes` so any
        // bytes the peer left there form a valid value, and the volatile read copies them
        // exactly once (no double fetch).
        unsafe { ptr::read_volatile(self.slot(idx).cast::<Req>()) }
    }

    #[inline(always)]
    pub(crate) fn write_req(&self, idx: u32, req: Req) {
        // SAFETY: in-bounds and aligned as in `read_req`; `Req: IntoBytes` so no
        // uninitialised padding is exposed to the peer.
        unsafe { ptr::write_volatile(self.slot(idx).cast::<Req>(), req) }
    }

    #[inline(always)]
    pub(crate) fn read_rsp(&self, idx: u32) -> Rsp {
        // SAFETY: as `read_req`, for `Rsp`.
        unsafe { ptr::read_volatile(self.slot(idx).cast::<Rsp>()) }
    }

    #[inline(always)]
    pub(crate) fn write_rsp(&self, idx: u32, rsp: Rsp) {
        // SAFETY: as `write_req`, for `Rsp`.
        unsafe { ptr::write_volatile(self.slot(idx).cast::<Rsp>(), rsp) }
    }
}
