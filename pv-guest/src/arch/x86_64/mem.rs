//! Raw memory the kernel touches outside ordinary Rust objects: the boot layout, the
//! read-only M2P, the P2M, boot page-table frames, the hypercall scratch arena and pages
//! mapped in the dynamic window (`crate::mm::VMAP_*`). Each accessor checks its address
//! range, so callers stay in safe code.

use crate::mm::{PAGE_SIZE, VIRT_BASE, VMAP_END, VMAP_START};
use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU64, AtomicU8, Ordering};
use xen_abi::arch_x86_64::{MACH2PHYS_NR_ENTRIES, MACH2PHYS_VIRT_START};
use zerocopy::{FromBytes, Immutable, IntoBytes};

extern "C" {
    static boot_initial_rsp: u64;
    static __image_end: u8;
}

/// The stack pointer Xen entered `_start` with: the top of its boot stack, the last
/// element of the initial mapping.
pub fn initial_rsp() -> u64 {
    // SAFETY: written once by `_start` before any Rust code ran; plain data.
    unsafe { core::ptr::read_volatile(&raw const boot_initial_rsp) }
}

pub fn image_end() -> u64 {
    (&raw const __image_end) as u64
}

/// End of the initial mapping (set once the layout is known): Rust objects live below.
static OWNED_END: AtomicU64 = AtomicU64::new(0);

/// Start of the free pages of the initial mapping (after the boot stack).
static FREE_START: AtomicU64 = AtomicU64::new(u64::MAX);

pub fn set_owned_end(va: u64) {
    OWNED_END.store(va, Ordering::Relaxed);
}

pub fn set_free_start(va: u64) {
    FREE_START.store(va, Ordering::Relaxed);
}

/// Is `va` in the free pages of the initial mapping (no Rust object, no boot data)?
pub fn is_free_boot_page(va: u64) -> bool {
    va >= FREE_START.load(Ordering::Relaxed) && is_owned(va)
}

/// Is `addr` inside memory the kernel's Rust code uses (image, boot data, stacks)?
pub fn is_owned(addr: u64) -> bool {
    let end = OWNED_END.load(Ordering::Relaxed).max(image_end());
    (VIRT_BASE..end).contains(&addr)
}

// ---------------------------------------------------------------- scratch arena

/// Bytes shared with the hypervisor during one hypercall: arguments are copied in,
/// results copied out. Each vCPU has its own; only the normal (non-upcall) context of
/// that vCPU uses it.
pub const SCRATCH_SIZE: usize = 4 * PAGE_SIZE as usize;

#[repr(C, align(4096))]
struct Arena(UnsafeCell<[u8; SCRATCH_SIZE]>);

// SAFETY: each arena is used only by the vCPU it belongs to (`scratch_range` picks the
// running vCPU's), from its normal context only; accesses are byte copies.
unsafe impl Sync for Arena {}

static SCRATCH: [Arena; super::smp::MAX_VCPUS] = [const { Arena(UnsafeCell::new([0; SCRATCH_SIZE])) }; super::smp::MAX_VCPUS];

fn scratch_range(off: usize, len: usize) -> *mut u8 {
    assert!(off.checked_add(len).is_some_and(|e| e <= SCRATCH_SIZE), "scratch access {off}+{len} out of range");
    // SAFETY: in bounds, checked above.
    unsafe { SCRATCH[super::smp::current()].0.get().cast::<u8>().add(off) }
}

pub fn scratch_addr(off: usize) -> u64 {
    scratch_range(off, 0) as u64
}

pub fn in_scratch(addr: u64) -> bool {
    let base = scratch_addr(0);
    (base..base + SCRATCH_SIZE as u64).contains(&addr)
}

pub fn scratch_put<T: IntoBytes + Immutable + ?Sized>(off: usize, v: &T) {
    let bytes = v.as_bytes();
    let dst = scratch_range(off, bytes.len());
    // SAFETY: `dst` has room for `bytes` (checked); the arena never overlaps `v`.
    unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), dst, bytes.len()) }
}

pub fn scratch_get<T: FromBytes>(off: usize) -> T {
    let src = scratch_range(off, core::mem::size_of::<T>());
    // SAFETY: in bounds (checked); any bytes are a valid `T` (FromBytes); unaligned read.
    unsafe { core::ptr::read_unaligned(src.cast::<T>()) }
}

pub fn scratch_fill(off: usize, len: usize, byte: u8) {
    let dst = scratch_range(off, len);
    // SAFETY: in bounds (checked).
    unsafe { core::ptr::write_bytes(dst, byte, len) }
}

// ---------------------------------------------------------------- M2P and P2M

/// The read-only M2P entry of `mfn`, read fault-safely (unpopulated parts fault).
pub fn m2p(mfn: u64) -> Option<u64> {
    if mfn >= MACH2PHYS_NR_ENTRIES {
        return None;
    }
    super::traps::read_u64(MACH2PHYS_VIRT_START + mfn * 8).ok()
}

static P2M_VA: AtomicU64 = AtomicU64::new(0);
static P2M_LEN: AtomicU64 = AtomicU64::new(0);

/// Records start_info's `mfn_list` (an array of `nr_pages` u64 in the initial mapping).
pub fn set_p2m(va: u64, nr_pages: u64) {
    assert!(va.is_multiple_of(8) && va >= VIRT_BASE, "mfn_list {va:#x}");
    P2M_VA.store(va, Ordering::Relaxed);
    P2M_LEN.store(nr_pages, Ordering::Relaxed);
}

pub fn p2m(pfn: u64) -> Option<u64> {
    let (va, len) = (P2M_VA.load(Ordering::Relaxed), P2M_LEN.load(Ordering::Relaxed));
    if va == 0 || pfn >= len {
        return None;
    }
    // SAFETY: the builder maps the whole P2M array (len entries at va) RW in the initial
    // mapping for the life of the domain.
    Some(unsafe { core::ptr::read_volatile((va as *const u64).add(pfn as usize)) })
}

// ---------------------------------------------------------------- owned frames

fn check_owned_page(va: u64) {
    assert!(va.is_multiple_of(PAGE_SIZE) && is_free_boot_page(va), "not a free boot-mapping page: {va:#x}");
}

/// Reads entry `idx` of a page table mapped (read-only) in the initial mapping.
pub fn read_table_entry(table_va: u64, idx: usize) -> u64 {
    assert!(idx < 512 && table_va.is_multiple_of(PAGE_SIZE) && is_owned(table_va), "table {table_va:#x}[{idx}]");
    // SAFETY: the page lies in the initial mapping (checked), which is mapped for the
    // life of the domain; Xen may change A/D bits concurrently, hence volatile.
    unsafe { core::ptr::read_volatile((table_va as *const u64).add(idx)) }
}

/// Zeroes a free page of the initial mapping (above the image), before it becomes a
/// page table.
pub fn zero_owned_page(va: u64) {
    check_owned_page(va);
    // SAFETY: a page of the initial mapping above the image: no Rust object lives there
    // and it is mapped writable until the caller hands it to Xen.
    unsafe { core::ptr::write_bytes(va as *mut u8, 0, PAGE_SIZE as usize) }
}

// ---------------------------------------------------------------- window pages

/// A page mapped by `crate::mm` in the dynamic window. Accesses are volatile or atomic:
/// the other side (Xen, a backend) may change the bytes at any time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowPage {
    va: u64,
}

impl WindowPage {
    /// `va` must be page-aligned inside the window and mapped by the caller.
    pub fn new(va: u64) -> Self {
        assert!(va.is_multiple_of(PAGE_SIZE) && (VMAP_START..VMAP_END).contains(&va), "not a window page: {va:#x}");
        Self { va }
    }

    pub fn va(&self) -> u64 {
        self.va
    }

    fn ptr<T>(&self, off: usize) -> *mut T {
        assert!(off.is_multiple_of(core::mem::align_of::<T>()) && off + core::mem::size_of::<T>() <= PAGE_SIZE as usize);
        (self.va + off as u64) as *mut T
    }

    pub fn u8(&self, off: usize) -> &'static AtomicU8 {
        // SAFETY: in-page, aligned (checked); window pages stay mapped once mapped.
        unsafe { AtomicU8::from_ptr(self.ptr(off)) }
    }

    pub fn u16(&self, off: usize) -> &'static AtomicU16 {
        // SAFETY: as for `u8`.
        unsafe { AtomicU16::from_ptr(self.ptr(off)) }
    }

    pub fn u32(&self, off: usize) -> &'static AtomicU32 {
        // SAFETY: as for `u8`.
        unsafe { AtomicU32::from_ptr(self.ptr(off)) }
    }

    pub fn u64(&self, off: usize) -> &'static AtomicU64 {
        // SAFETY: as for `u8`.
        unsafe { AtomicU64::from_ptr(self.ptr(off)) }
    }

    /// Volatile read of a plain-data value at `off`.
    pub fn read<T: FromBytes>(&self, off: usize) -> T {
        assert!(off.is_multiple_of(core::mem::align_of::<T>()) && off + core::mem::size_of::<T>() <= PAGE_SIZE as usize);
        // SAFETY: in-page and aligned (checked), mapped; any bytes are a valid T.
        unsafe { core::ptr::read_volatile((self.va + off as u64) as *const T) }
    }

    pub fn read_bytes(&self, off: usize, buf: &mut [u8]) {
        for (i, b) in buf.iter_mut().enumerate() {
            *b = self.u8(off + i).load(Ordering::Relaxed);
        }
    }

    pub fn write_bytes(&self, off: usize, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.u8(off + i).store(*b, Ordering::Relaxed);
        }
    }
}

/// The block rings pv-guest's roles drive over window pages.
pub type BlkFrontRing = xen_ring::FrontRing<xen_abi::blkif::BlkifRequest, xen_abi::blkif::BlkifResponse>;
pub type BlkBackRing = xen_ring::BackRing<xen_abi::blkif::BlkifRequest, xen_abi::blkif::BlkifResponse>;

/// Initialises a front-end blkif ring in `page` (a page of ours, to be granted).
pub fn blk_front_ring(page: &WindowPage) -> Result<BlkFrontRing, xen_ring::RingError> {
    // SAFETY: window pages stay mapped read/write for the life of the domain, and the
    // caller uses this page for nothing but the ring (the back-end peer may write it).
    unsafe { xen_ring::FrontRing::init(page.va() as *mut u8, PAGE_SIZE as usize) }
}

/// Attaches a back-end to the ring the front-end initialised in `page` (a grant mapping).
pub fn blk_back_ring(page: &WindowPage) -> Result<BlkBackRing, xen_ring::RingError> {
    // SAFETY: as for blk_front_ring; the mapping stays until the caller unmaps it after
    // dropping the ring, and the front-end peer may write the page at any time.
    unsafe { xen_ring::BackRing::init(page.va() as *mut u8, PAGE_SIZE as usize) }
}

/// Initialises a front-end ring of any netif/blkif entry types in `page` (a page of
/// ours, to be granted): the network front-end's transmit and receive rings.
pub fn front_ring<Req, Rsp>(page: &WindowPage) -> Result<xen_ring::FrontRing<Req, Rsp>, xen_ring::RingError>
where
    Req: FromBytes + IntoBytes + Immutable,
    Rsp: FromBytes + IntoBytes + Immutable,
{
    // SAFETY: as for blk_front_ring: window pages stay mapped read/write for the life of
    // the domain and the caller uses this page for nothing but this ring.
    unsafe { xen_ring::FrontRing::init(page.va() as *mut u8, PAGE_SIZE as usize) }
}

extern "C" {
    static boot_stack: u8;
}

/// The lowest page of the kernel stack, kept unmapped so an overflow faults (and the
/// hypervisor reports it) instead of overwriting the statics below.
pub fn stack_guard_page() -> u64 {
    core::ptr::addr_of!(boot_stack) as u64
}
