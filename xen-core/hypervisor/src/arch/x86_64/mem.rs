//! Machine memory at boot: which frames are free, the frame allocator every other part
//! of the hypervisor uses, and the hypervisor heap.

use crate::frames::FrameAllocator;
use crate::multiboot::{BootInfo, RegionKind};
use linked_list_allocator::LockedHeap;
use spin::Mutex;

/// Highest machine memory we manage: 64 GiB.
const MAX_FRAMES: usize = 16 << 20;
const HEAP_FRAMES: u64 = 8192; // 32 MiB

static mut BITMAP: [u64; MAX_FRAMES / 64] = [0; MAX_FRAMES / 64];

pub static FRAMES: Mutex<Option<FrameAllocator<'static>>> = Mutex::new(None);

#[global_allocator]
static HEAP: LockedHeap = LockedHeap::empty();

extern "C" {
    static __bss_end_phys: u8;
}

/// End (exclusive) of the highest RAM region.
pub fn ram_end(boot: &BootInfo) -> u64 {
    boot.memory_map()
        .filter(|r| r.kind == RegionKind::Ram)
        .map(|r| r.base.saturating_add(r.len))
        .max()
        .unwrap_or(0)
}

/// Hands RAM above everything the loader placed (image, modules, multiboot data) to the
/// frame allocator. Returns (free frames, end of loader-used memory).
pub fn init_frames(boot: &BootInfo, info_paddr: u64) -> (u64, u64) {
    // SAFETY: called once during single-threaded boot, before anything else can see
    // BITMAP; the allocator is its only user afterwards.
    let bits: &'static mut [u64] = unsafe { &mut *core::ptr::addr_of_mut!(BITMAP) };
    let mut a = FrameAllocator::new(bits);
    for r in boot.memory_map().filter(|r| r.kind == RegionKind::Ram) {
        let start = r.base.div_ceil(4096);
        let end = r.base.saturating_add(r.len) / 4096;
        a.add_free_range(start, end);
    }
    // SAFETY: a linker-script symbol; only its address is used.
    let image_end = core::ptr::addr_of!(__bss_end_phys) as u64;
    let loader_end = boot
        .modules()
        .map(|m| m.end)
        .chain([image_end, info_paddr + 4096, 1 << 20])
        .max()
        .unwrap_or(0)
        .next_multiple_of(4096);
    // The loader keeps module command lines and the memory map just past the modules;
    // one more page of margin keeps them readable.
    a.reserve_range(0, loader_end / 4096 + 1);
    let free = a.free_frames();
    *FRAMES.lock() = Some(a);
    (free, loader_end)
}

/// Carves the hypervisor heap out of free frames (after `paging::init`).
pub fn init_heap() {
    let base = with_frames(|a| a.alloc_contiguous(HEAP_FRAMES, 1)).expect("no room for the hypervisor heap");
    let va = super::paging::frame_va(base);
    // SAFETY: [va, va + 32 MiB) is the direct-map view of frames just taken from the
    // allocator for the heap alone; it stays mapped and unused by anything else.
    unsafe { HEAP.lock().init(va as *mut u8, (HEAP_FRAMES * 4096) as usize) };
}

/// Bytes of the hypervisor heap not allocated now (possibly in several pieces).
pub fn heap_free() -> usize {
    HEAP.lock().free()
}

/// Runs `f` with the frame allocator.
pub fn with_frames<R>(f: impl FnOnce(&mut FrameAllocator<'static>) -> R) -> R {
    f(FRAMES.lock().as_mut().expect("frame allocator initialised at boot"))
}

pub fn alloc_frame() -> Option<u64> {
    with_frames(|a| a.alloc())
}

/// Contiguous frames the hypervisor borrows for a while (unpacking a compressed kernel),
/// seen as one byte buffer through the direct map and given back when dropped.
#[derive(Debug)]
pub struct ScratchFrames {
    base: u64,
    count: u64,
}

impl ScratchFrames {
    /// `bytes` rounded up to whole frames, or None if no such run is free.
    pub fn new(bytes: usize) -> Option<Self> {
        let count = (bytes as u64).div_ceil(4096).max(1);
        let base = with_frames(|a| a.alloc_contiguous(count, 1))?;
        Some(Self { base, count })
    }

    pub fn bytes(&mut self) -> &mut [u8] {
        let va = super::paging::frame_va(self.base);
        // SAFETY: [base, base + count) were just taken from the allocator for this value
        // alone and stay mapped in the direct map; the slice borrows `self`, so it ends
        // before the frames go back in `drop`.
        unsafe { core::slice::from_raw_parts_mut(va as *mut u8, (self.count * 4096) as usize) }
    }
}

impl Drop for ScratchFrames {
    fn drop(&mut self) {
        with_frames(|a| {
            for mfn in self.base..self.base + self.count {
                a.free(mfn);
            }
        });
    }
}
