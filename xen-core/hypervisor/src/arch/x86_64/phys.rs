//! Physical memory through the direct map: loader data and whole machine frames.

use super::layout::{phys_to_virt, DIRECTMAP_SIZE, PAGE_SIZE};
use crate::multiboot::{MultibootError, PhysRead};

/// Highest physical address + 1 that the direct map covers right now (raised by
/// `paging::init` once it maps all RAM; the boot tables map 4 GiB).
static MAPPED_LIMIT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(4 << 30);

pub fn set_mapped_limit(limit: u64) {
    MAPPED_LIMIT.store(limit.min(DIRECTMAP_SIZE), core::sync::atomic::Ordering::Relaxed);
}

fn mapped_limit() -> u64 {
    MAPPED_LIMIT.load(core::sync::atomic::Ordering::Relaxed)
}

/// Reads of loader-provided data (the multiboot block, module command lines).
#[derive(Debug)]
pub struct DirectMap;

impl PhysRead for DirectMap {
    fn read(&self, paddr: u64, buf: &mut [u8]) -> Result<(), MultibootError> {
        let len = buf.len() as u64;
        let err = MultibootError::Unreadable { paddr, len };
        let end = paddr.checked_add(len).ok_or(err)?;
        // Page 0 stays unreadable so a null pointer from a loader is an error.
        if paddr < PAGE_SIZE || end > mapped_limit() {
            return Err(err);
        }
        for (i, b) in buf.iter_mut().enumerate() {
            // SAFETY: [paddr, end) is inside the direct map; loader data is not a Rust
            // object, so it is read byte by byte with volatile reads.
            *b = unsafe { core::ptr::read_volatile(phys_to_virt(paddr + i as u64) as *const u8) };
        }
        Ok(())
    }
}

/// Whether machine frame `mfn` is ordinary RAM inside the direct map (not MMIO).
pub fn frame_in_ram(mfn: u64) -> bool {
    frame_end(mfn).is_some_and(|end| end <= RAM_LIMIT.load(core::sync::atomic::Ordering::Relaxed))
}

/// The machine address just past frame `mfn`, if it has one (a guest may name any
/// 64-bit frame number: `(mfn + 1) * PAGE_SIZE` must not wrap to a small address).
fn frame_end(mfn: u64) -> Option<u64> {
    mfn.checked_add(1)?.checked_mul(PAGE_SIZE)
}

/// End of the highest RAM region, set at boot.
static RAM_LIMIT: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

pub fn set_ram_limit(end: u64) {
    RAM_LIMIT.store(end, core::sync::atomic::Ordering::Relaxed);
}

/// 64-bit entry `index` of machine frame `mfn` (page tables, M2P, event-channel words a
/// guest changes on its other CPUs meanwhile) as an atomic: loads and stores of whole
/// entries, and locked read-modify-writes where the guest may race (as Xen's bitops).
pub fn entry(mfn: u64, index: usize) -> &'static core::sync::atomic::AtomicU64 {
    assert!(index < 512 && frame_end(mfn).is_some_and(|end| end <= mapped_limit()), "frame {mfn:#x}[{index}] outside the direct map");
    let ptr = (phys_to_virt(mfn * PAGE_SIZE) + index as u64 * 8) as *mut u64;
    // SAFETY: the entry is 8-aligned and inside the direct map, which stays mapped for
    // the hypervisor's life; AtomicU64 has u64's layout, and machine frames are reached
    // only through these atomic helpers and the byte copies below, never a plain
    // Rust reference.
    unsafe { core::sync::atomic::AtomicU64::from_ptr(ptr) }
}

/// Reads 64-bit entry `index` of machine frame `mfn` (page tables, M2P, ...).
pub fn read_entry(mfn: u64, index: usize) -> u64 {
    entry(mfn, index).load(core::sync::atomic::Ordering::Relaxed)
}

/// Writes 64-bit entry `index` of machine frame `mfn`.
pub fn write_entry(mfn: u64, index: usize, value: u64) {
    entry(mfn, index).store(value, core::sync::atomic::Ordering::Relaxed)
}

/// The 64-bit word at machine address `maddr` (8-aligned) as an atomic ([`entry`]).
pub fn atomic_u64(maddr: u64) -> &'static core::sync::atomic::AtomicU64 {
    assert!(maddr.is_multiple_of(8), "atomic word {maddr:#x} not aligned");
    entry(maddr / PAGE_SIZE, ((maddr % PAGE_SIZE) / 8) as usize)
}

/// Fills a whole frame with zeros.
pub fn zero_frame(mfn: u64) {
    for i in 0..512 {
        write_entry(mfn, i, 0);
    }
}

/// Copies `data` into physical memory at `paddr` (within one or more frames).
pub fn write_bytes(paddr: u64, data: &[u8]) {
    let end = paddr.checked_add(data.len() as u64).expect("no overflow");
    assert!(end <= mapped_limit(), "write outside the direct map");
    // SAFETY: the range is inside the direct map and is machine memory the caller owns
    // (a guest frame being populated); no Rust reference aliases it.
    unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), phys_to_virt(paddr) as *mut u8, data.len()) }
}

/// Copies physical memory at `paddr` into `buf`.
pub fn read_bytes(paddr: u64, buf: &mut [u8]) {
    let end = paddr.checked_add(buf.len() as u64).expect("no overflow");
    assert!(end <= mapped_limit(), "read outside the direct map");
    // SAFETY: as for write_bytes.
    unsafe { core::ptr::copy_nonoverlapping(phys_to_virt(paddr) as *const u8, buf.as_mut_ptr(), buf.len()) }
}

/// A boot module's bytes. Module frames are reserved at boot and never handed out or
/// written, so the slice stays valid and unaliased by writers.
pub fn module_bytes(start: u64, len: u64) -> &'static [u8] {
    let end = start.checked_add(len).expect("module range does not wrap");
    assert!(end <= mapped_limit(), "module outside the direct map");
    // SAFETY: [start, end) is a loader module inside the direct map; mem::init_frames
    // reserved it, so nothing allocates or writes these frames for the hypervisor's life.
    unsafe { core::slice::from_raw_parts(phys_to_virt(start) as *const u8, len as usize) }
}
