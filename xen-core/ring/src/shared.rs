//! The only module with `unsafe` code: the raw shared page, atomic access to its four
//! indices, and copies of entries in and out of its slots (relaxed atomic words).
//!
//! Everything here is bounds-checked by construction: [`Shared::new`] validates the page
//! (non-null, aligned, large enough for at least one entry) and every slot access masks the
//! free-running index with `size - 1`, so no index value a peer can write leads outside
//! the page.

use core::marker::PhantomData;
use core::ptr::NonNull;
use core::sync::atomic::{AtomicU32, Ordering};

use zerocopy::{FromBytes, Immutable, IntoBytes};

use crate::{entry_size, ring_size, RingError, PREFETCH_SLOTS, RING_HEADER_SIZE};

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
/// concurrently): indices are accessed as atomics, entries copied with atomic words, so
/// every access is race-free in Rust's memory model whatever the peer does.
pub(crate) struct Shared<Req, Rsp> {
    base: NonNull<u8>,
    /// Number of entries (a power of two, 1..=2^31).
    size: u32,
    _types: PhantomData<fn() -> (Req, Rsp)>,
}

impl<Req, Rsp> core::fmt::Debug for Shared<Req, Rsp> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Shared")
            .field("base", &self.base)
            .field("size", &self.size)
            .finish()
    }
}

// SAFETY: `Shared` only touches the page through atomic accesses and copies of
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
        if (page as usize) & (align - 1) != 0 {
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

    /// Alignment the page must have: 8 bytes (indices are 32-bit atomics, slots are copied
    /// with up to 64-bit atomic words), and every slot aligned for both `Req` and `Rsp`.
    const fn required_align() -> usize {
        // 8: slots are copied with up to 64-bit atomic words.
        let mut a = 8;
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
        for off in (PVT_OFFSET..RING_HEADER_SIZE).step_by(4) {
            // SAFETY: 16..64 lies inside the page and each word is 4-byte aligned (see
            // `index`); these words are only accessed atomically from this side.
            unsafe { AtomicU32::from_ptr(self.base.as_ptr().add(off).cast::<u32>()) }
                .store(0, Ordering::Relaxed);
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

    /// Asks the CPU to bring the cache lines of slots `from..to` (free-running indices;
    /// at most the first [`PREFETCH_SLOTS`] of them) into this core's cache in the
    /// exclusive (writable) state: x86's `PREFETCHW`, a hint with no architectural effect
    /// (nothing elsewhere). Each side of a ring reads a slot and later writes the same
    /// slot (the back end its response over the request, the front end the next request
    /// over the response); fetching the lines for writing at once saves the second
    /// cross-core transaction (upgrading a shared copy), and issuing the fetches for a
    /// batch together overlaps their transfers instead of taking one miss at a time.
    /// A line that also holds part of slot `to` is left alone: the peer may be writing
    /// that slot right now, and taking the line from it would bounce it back and forth.
    #[inline(always)]
    pub(crate) fn prefetch_slots(&self, from: u32, to: u32) {
        #[cfg(target_arch = "x86_64")]
        self.for_slot_lines(from, to, |line| {
            // SAFETY: PREFETCHW is a hint: it never faults and reads or writes nothing
            // architecturally. (`line` is the cache line of a byte of a slot below `size`,
            // so it lies within the page anyway.)
            unsafe { core::arch::asm!("prefetchw [{0}]", in(reg) line, options(nostack, preserves_flags, readonly)) };
        });
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (from, to);
    }

    /// Asks the CPU to bring the index line (the 64-byte header holding all four shared
    /// indices) into this core's cache in the exclusive (writable) state: x86's
    /// `PREFETCHW`, a hint with no architectural effect. Issued just before this side
    /// stores its producer index, and as soon as it sees new entries from the peer (it
    /// will publish its answer shortly): the store only commits after it retires, so a
    /// load of the peer's index that follows it in program order executes first, and
    /// without the hint the line arrives shared for the load and needs a second
    /// cross-core transaction (an upgrade) for the store. A side that polls and finds
    /// nothing new does not issue it (taking the line exclusive on every empty poll
    /// would pull it away from the peer that is about to write it).
    #[inline(always)]
    pub(crate) fn prefetch_header(&self) {
        #[cfg(target_arch = "x86_64")]
        // SAFETY: PREFETCHW is a hint: it never faults and reads or writes nothing
        // architecturally. (The header is the first 64 bytes of the page.)
        unsafe {
            core::arch::asm!("prefetchw [{0}]", in(reg) self.base.as_ptr(), options(nostack, preserves_flags, readonly))
        };
    }

    /// Asks the CPU to move the cache lines of slots `from..to` (free-running indices; at
    /// most the first [`PREFETCH_SLOTS`] of them), just written by this side and about to
    /// be published, out of this core's private caches into the shared last-level cache:
    /// x86's `CLDEMOTE`, a hint with no architectural effect (a no-op on CPUs without it).
    /// The peer then fetches them from the shared cache instead of snooping them out of
    /// this core. A last line that extends past slot `to` is left alone: this side writes
    /// the next slot into it next.
    #[inline(always)]
    pub(crate) fn demote_slots(&self, from: u32, to: u32) {
        #[cfg(target_arch = "x86_64")]
        self.for_slot_lines(from, to, |line| {
            // SAFETY: CLDEMOTE is a hint: it never faults and reads or writes nothing
            // architecturally. (`line` is the cache line of a byte of a slot below `size`.)
            unsafe { core::arch::asm!("cldemote [{0}]", in(reg) line, options(nostack, preserves_flags, readonly)) };
        });
        #[cfg(not(target_arch = "x86_64"))]
        let _ = (from, to);
    }

    /// Calls `f` with the address of each cache line of slots `from..to` (free-running
    /// indices, at most the first [`PREFETCH_SLOTS`]; contiguous up to the end of the
    /// ring, then from slot 0), except a last line that extends past them.
    #[cfg(target_arch = "x86_64")]
    #[inline(always)]
    fn for_slot_lines(&self, from: u32, to: u32, f: impl Fn(usize)) {
        let n = to.wrapping_sub(from).min(PREFETCH_SLOTS).min(self.size);
        let first = from & (self.size - 1);
        let k = n.min(self.size - first);
        let e = entry_size::<Req, Rsp>();
        let base = self.base.as_ptr() as usize + RING_HEADER_SIZE;
        let lines = |first: u32, count: u32| {
            let start = base + first as usize * e;
            let mut line = start & !63;
            let end = (start + count as usize * e) & !63;
            while line < end {
                f(line);
                line += 64;
            }
        };
        lines(first, k);
        if n != k {
            lines(0, n - k);
        }
    }

    /// Copies the request in slot `idx` out of shared memory (`RING_COPY_REQUEST`).
    #[inline(always)]
    pub(crate) fn read_req(&self, idx: u32) -> Req {
        self.copy_out::<Req>(idx)
    }

    #[inline(always)]
    pub(crate) fn write_req(&self, idx: u32, req: &Req) {
        self.copy_in(idx, req)
    }

    #[inline(always)]
    pub(crate) fn read_rsp(&self, idx: u32) -> Rsp {
        self.copy_out::<Rsp>(idx)
    }

    #[inline(always)]
    pub(crate) fn write_rsp(&self, idx: u32, rsp: &Rsp) {
        self.copy_in(idx, rsp)
    }

    /// Width of the atomic words used to copy a `T` in or out of a slot: the largest of
    /// 8/4/2/1 bytes dividing both the slot size and `size_of::<T>()` (slots then start
    /// at multiples of it, since the page is 8-byte aligned and the header is 64 bytes).
    const fn word<T>() -> usize {
        let (e, s) = (entry_size::<Req, Rsp>(), core::mem::size_of::<T>());
        if e % 8 == 0 && s % 8 == 0 {
            8
        } else if e % 4 == 0 && s % 4 == 0 {
            4
        } else if e % 2 == 0 && s % 2 == 0 {
            2
        } else {
            1
        }
    }

    /// Copies a `T` out of slot `idx` with relaxed atomic word loads: each byte is read
    /// exactly once (no double fetch, whatever the peer does meanwhile) and the result is
    /// private memory. `T: FromBytes` makes any bytes a valid `T`.
    #[inline(always)]
    fn copy_out<T: FromBytes + IntoBytes>(&self, idx: u32) -> T {
        let src = self.slot(idx);
        let mut value = T::new_zeroed();
        let dst = value.as_mut_bytes();
        macro_rules! copy {
            ($atomic:ty, $w:expr) => {
                for (i, chunk) in dst.chunks_exact_mut($w).enumerate() {
                    // SAFETY: `src + i*w .. + w` lies within the slot (T fits in a slot);
                    // it is aligned to `w` (see `word`), and the page is valid for the life
                    // of `self`. The word is only accessed atomically from this side.
                    let word = unsafe { <$atomic>::from_ptr(src.add(i * $w).cast()) }
                        .load(Ordering::Relaxed);
                    chunk.copy_from_slice(&word.to_ne_bytes());
                }
            };
        }
        match Self::word::<T>() {
            8 => copy!(core::sync::atomic::AtomicU64, 8),
            4 => copy!(AtomicU32, 4),
            2 => copy!(core::sync::atomic::AtomicU16, 2),
            _ => copy!(core::sync::atomic::AtomicU8, 1),
        }
        value
    }

    /// Copies `value` into slot `idx` with relaxed atomic word stores. `T: IntoBytes`
    /// means no uninitialised padding reaches the peer.
    #[inline(always)]
    fn copy_in<T: IntoBytes + Immutable>(&self, idx: u32, value: &T) {
        let dst = self.slot(idx);
        let src = value.as_bytes();
        macro_rules! copy {
            ($atomic:ty, $int:ty, $w:expr) => {
                for (i, chunk) in src.chunks_exact($w).enumerate() {
                    let mut bytes = [0u8; $w];
                    bytes.copy_from_slice(chunk);
                    // SAFETY: as in `copy_out`: in bounds of the slot, aligned to `w`, page
                    // valid for the life of `self`, accessed only atomically from here.
                    unsafe { <$atomic>::from_ptr(dst.add(i * $w).cast()) }
                        .store(<$int>::from_ne_bytes(bytes), Ordering::Relaxed);
                }
            };
        }
        match Self::word::<T>() {
            8 => copy!(core::sync::atomic::AtomicU64, u64, 8),
            4 => copy!(AtomicU32, u32, 4),
            2 => copy!(core::sync::atomic::AtomicU16, u16, 2),
            _ => copy!(core::sync::atomic::AtomicU8, u8, 1),
        }
    }
}
