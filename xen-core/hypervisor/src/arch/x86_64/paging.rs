//! The hypervisor's own page tables: the image at XEN_VIRT_START with W^X in 4 KiB pages,
//! and the direct map of machine memory (read/write, never executable) in 2 MiB pages.
//! No identity map: the lower half belongs to guests.

use super::layout::{l4_slot, phys_to_virt, DIRECTMAP_VIRT_START, LDT_VIRT_SIZE, LDT_VIRT_START, PAGE_SIZE, XEN_VIRT_START};
use super::percpu::MAX_CPUS;
use core::sync::atomic::{AtomicU64, Ordering};
use super::{cpu, phys};
use crate::frames::FrameAllocator;

use x86_64::structures::paging::PageTableFlags as F;

pub const PTE_P: u64 = F::PRESENT.bits();
pub const PTE_RW: u64 = F::WRITABLE.bits();
pub const PTE_US: u64 = F::USER_ACCESSIBLE.bits();
pub const PTE_A: u64 = F::ACCESSED.bits();
pub const PTE_D: u64 = F::DIRTY.bits();
pub const PTE_PS: u64 = F::HUGE_PAGE.bits();
pub const PTE_G: u64 = F::GLOBAL.bits();
pub const PTE_NX: u64 = F::NO_EXECUTE.bits();
pub const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

extern "C" {
    static __text_start: u8;
    static __text_end: u8;
    static __rodata_end: u8;
    static __data_end: u8;
}

/// A linker-script symbol's address (taking it is safe; only the address is used).
macro_rules! sym {
    ($s:ident) => {
        core::ptr::addr_of!($s) as u64
    };
}

fn alloc_table(frames: &mut FrameAllocator<'_>) -> u64 {
    let mfn = frames.alloc().expect("out of memory building the hypervisor's page tables");
    phys::zero_frame(mfn);
    mfn
}

/// The table below `table[index]`, created if missing.
fn next_level(frames: &mut FrameAllocator<'_>, table: u64, index: usize) -> u64 {
    let e = phys::read_entry(table, index);
    if e & PTE_P != 0 {
        return (e & PTE_ADDR_MASK) >> 12;
    }
    let mfn = alloc_table(frames);
    phys::write_entry(table, index, (mfn << 12) | PTE_P | PTE_RW);
    mfn
}

fn map_4k(frames: &mut FrameAllocator<'_>, pml4: u64, va: u64, pa: u64, flags: u64) {
    let l3 = next_level(frames, pml4, l4_slot(va));
    let l2 = next_level(frames, l3, ((va >> 30) & 0x1ff) as usize);
    let l1 = next_level(frames, l2, ((va >> 21) & 0x1ff) as usize);
    phys::write_entry(l1, ((va >> 12) & 0x1ff) as usize, pa | flags | PTE_P);
}

fn map_2m(frames: &mut FrameAllocator<'_>, pml4: u64, va: u64, pa: u64, flags: u64) {
    let l3 = next_level(frames, pml4, l4_slot(va));
    let l2 = next_level(frames, l3, ((va >> 30) & 0x1ff) as usize);
    phys::write_entry(l2, ((va >> 21) & 0x1ff) as usize, pa | flags | PTE_P | PTE_PS);
}

/// Builds the tables, switches to them and returns the PML4's MFN. `phys_end` is the end
/// of the highest RAM (the direct map also always covers the first 4 GiB, where MMIO is).
pub fn init(frames: &mut FrameAllocator<'_>, phys_end: u64) -> u64 {
    cpu::enable_nx_and_wp();
    let pml4 = alloc_table(frames);

    let (text, text_end, ro_end, data_end) = (sym!(__text_start), sym!(__text_end), sym!(__rodata_end), sym!(__data_end));
    let mut va = text;
    while va < data_end {
        let flags = if va < text_end {
            PTE_G // executable, read-only
        } else if va < ro_end {
            PTE_G | PTE_NX
        } else {
            PTE_G | PTE_NX | PTE_RW
        };
        map_4k(frames, pml4, va, va - XEN_VIRT_START, flags | PTE_A | PTE_D);
        va += 4096;
    }

    let end = phys_end.max(4 << 30).next_multiple_of(2 << 20);
    let mut pa = 0;
    while pa < end {
        map_2m(frames, pml4, DIRECTMAP_VIRT_START + pa, pa, PTE_RW | PTE_NX | PTE_G | PTE_A | PTE_D);
        pa += 2 << 20;
    }
    // The LDT windows: one L1 table (entries written as LDT pages are mapped), made
    // now so that every guest L4 gets slot 260 with the other hypervisor slots.
    let l3 = next_level(frames, pml4, l4_slot(LDT_VIRT_START));
    let l2 = next_level(frames, l3, ((LDT_VIRT_START >> 30) & 0x1ff) as usize);
    LDT_L1.store(next_level(frames, l2, ((LDT_VIRT_START >> 21) & 0x1ff) as usize), Ordering::Relaxed);

    cpu::write_cr3(pml4 << 12);
    phys::set_mapped_limit(end);
    pml4
}

/// The L1 table behind the LDT windows of all CPUs.
static LDT_L1: AtomicU64 = AtomicU64::new(0);
const LDT_WINDOW_PAGES: usize = (LDT_VIRT_SIZE / PAGE_SIZE) as usize;
const _: () = assert!(MAX_CPUS * LDT_WINDOW_PAGES <= 512 && LDT_VIRT_START & ((2 << 20) - 1) == 0);

/// The start of CPU `cpu`'s LDT window.
pub fn ldt_window(cpu: usize) -> u64 {
    LDT_VIRT_START + cpu as u64 * LDT_VIRT_SIZE
}

/// Maps page `page` of CPU `cpu`'s LDT window to machine frame `mfn` (read/write, so
/// the CPU can set descriptors' accessed bits, as through Xen's LDT mappings), or
/// unmaps it, and flushes that page from this CPU's TLB. Only the CPU itself changes
/// its window.
pub fn set_ldt_page(cpu: usize, page: usize, mfn: Option<u64>) {
    if cpu >= MAX_CPUS || page >= LDT_WINDOW_PAGES {
        return;
    }
    let e = mfn.map_or(0, |m| (m << 12) | PTE_P | PTE_RW | PTE_NX | PTE_A | PTE_D);
    phys::write_entry(LDT_L1.load(Ordering::Relaxed), cpu * LDT_WINDOW_PAGES + page, e);
    cpu::invlpg(ldt_window(cpu) + page as u64 * PAGE_SIZE);
}

/// The virtual address of a machine frame in the direct map.
pub fn frame_va(mfn: u64) -> u64 {
    phys_to_virt(mfn << 12)
}
