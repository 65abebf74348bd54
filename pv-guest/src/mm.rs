//! Portable memory-management pieces: the 64-bit PV address-space constants, page-table
//! entry encoding, the start-of-day layout and the frame and address allocators. The
//! hypercalls that apply them are in `paging` (bare metal only).

pub const PAGE_SIZE: u64 = 4096;
/// Where the kernel is linked and the domain builder maps the first PFNs (1:1).
pub const VIRT_BASE: u64 = 0xffff_ffff_8000_0000;
/// The dynamic window: shared_info, grant frames, test pages, rings. Its page tables are
/// built at run time (L4 slot 402, unused by the boot mapping).
pub const VMAP_START: u64 = 0xffff_c900_0000_0000;
pub const VMAP_END: u64 = VMAP_START + (1 << 30);

/// x86 page-table entry bits (hardware, not Xen ABI).
pub mod pte {
    pub const PRESENT: u64 = 1 << 0;
    pub const RW: u64 = 1 << 1;
    pub const USER: u64 = 1 << 2;
    pub const PWT: u64 = 1 << 3;
    pub const PCD: u64 = 1 << 4;
    pub const ACCESSED: u64 = 1 << 5;
    pub const DIRTY: u64 = 1 << 6;
    /// PSE at L2/L3 (superpage), PAT at L1.
    pub const PSE: u64 = 1 << 7;
    pub const GLOBAL: u64 = 1 << 8;
    pub const NX: u64 = 1 << 63;
    pub const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
    /// Flags of a kernel data page (Xen adds USER itself: the PV kernel runs in ring 3).
    pub const KERNEL_RW: u64 = PRESENT | RW | ACCESSED | DIRTY;
    pub const KERNEL_RO: u64 = PRESENT | ACCESSED;
    /// Flags of an intermediate table entry.
    pub const TABLE: u64 = PRESENT | RW | USER | ACCESSED | DIRTY;

    pub const fn make(mfn: u64, flags: u64) -> u64 {
        ((mfn << 12) & ADDR_MASK) | flags
    }

    pub const fn mfn(entry: u64) -> u64 {
        (entry & ADDR_MASK) >> 12
    }

    pub const fn present(entry: u64) -> bool {
        entry & PRESENT != 0
    }
}

/// Index of `va` in the page table of `level` (1 = L1 ... 4 = L4).
pub const fn table_index(va: u64, level: u32) -> usize {
    ((va >> (12 + 9 * (level - 1))) & 511) as usize
}

/// Is `va` canonical for 48-bit virtual addresses?
pub const fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1_ffff
}

/// The start-of-day layout (xen.h "Start-of-day memory layout"): the domain's first
/// PFNs are mapped 1:1 at [`VIRT_BASE`]; the boot stack is the last element, and the
/// mapping ends on a 4 MiB boundary at least 512 KiB after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// First PFN after the boot stack: mapped, unused by anything.
    pub first_free_pfn: u64,
    /// First PFN beyond the initial mapping.
    pub mapped_end_pfn: u64,
    /// The domain's pages.
    pub nr_pages: u64,
}

impl Layout {
    /// From Xen's initial stack pointer (the top of the boot stack page).
    pub fn from_boot(initial_rsp: u64, nr_pages: u64) -> Option<Layout> {
        let stack_top = initial_rsp.checked_sub(VIRT_BASE)?;
        let first_free_pfn = stack_top.div_ceil(PAGE_SIZE);
        const FOUR_MIB: u64 = 4 << 20;
        let end = (stack_top + (512 << 10)).div_ceil(FOUR_MIB) * FOUR_MIB;
        let mapped_end_pfn = (end / PAGE_SIZE).min(nr_pages);
        (first_free_pfn < mapped_end_pfn).then_some(Layout { first_free_pfn, mapped_end_pfn, nr_pages })
    }

    pub const fn va_of_pfn(pfn: u64) -> u64 {
        VIRT_BASE + pfn * PAGE_SIZE
    }

    pub fn mapped_end_va(&self) -> u64 {
        Self::va_of_pfn(self.mapped_end_pfn)
    }
}

/// Hands out PFNs from `[next, end)`, reusing freed ones first.
#[derive(Debug)]
pub struct FrameAllocator {
    next: u64,
    end: u64,
    freed: [u64; 64],
    nr_freed: usize,
}

impl FrameAllocator {
    pub const fn new(start: u64, end: u64) -> Self {
        Self { next: start, end, freed: [0; 64], nr_freed: 0 }
    }

    pub fn alloc(&mut self) -> Option<u64> {
        if self.nr_freed > 0 {
            self.nr_freed -= 1;
            return Some(self.freed[self.nr_freed]);
        }
        (self.next < self.end).then(|| {
            self.next += 1;
            self.next - 1
        })
    }

    /// Returns a frame; frames beyond the free list's capacity are leaked.
    pub fn free(&mut self, pfn: u64) {
        if self.nr_freed < self.freed.len() {
            self.freed[self.nr_freed] = pfn;
            self.nr_freed += 1;
        }
    }

    pub fn remaining(&self) -> u64 {
        self.end - self.next + self.nr_freed as u64
    }
}

/// Hands out page-aligned virtual ranges of the dynamic window.
#[derive(Debug)]
pub struct VaAllocator {
    next: u64,
    end: u64,
}

impl VaAllocator {
    pub const fn new(start: u64, end: u64) -> Self {
        Self { next: start, end }
    }

    pub fn alloc(&mut self, pages: u64) -> Option<u64> {
        let size = pages.checked_mul(PAGE_SIZE)?;
        let end = self.next.checked_add(size)?;
        (end <= self.end).then(|| core::mem::replace(&mut self.next, end))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries() {
        let e = pte::make(0x1234, pte::KERNEL_RW);
        assert_eq!(pte::mfn(e), 0x1234);
        assert!(pte::present(e));
        assert_eq!(pte::make(1 << 39, 0), 1 << 51);
        assert_eq!(pte::make(1 << 40, 0), 0); // beyond the 52-bit address field
        assert_eq!(pte::mfn(pte::NX | pte::make(5, pte::PRESENT)), 5);
    }

    #[test]
    fn indices() {
        assert_eq!(table_index(VIRT_BASE, 4), 511);
        assert_eq!(table_index(VIRT_BASE, 3), 510);
        assert_eq!(table_index(VIRT_BASE, 2), 0);
        assert_eq!(table_index(VMAP_START, 4), 402);
        assert_eq!(table_index(0xffff_8000_0000_0000, 4), 256);
        assert_eq!(table_index(0x1234_5000, 1), 0x145);
        assert_eq!(table_index(0x1234_5000, 2), 0x91);
        assert!(canonical(VIRT_BASE) && canonical(0x7fff_ffff_ffff) && !canonical(0x8000_0000_0000));
        assert!(!canonical(0xdead_beef_0000_0000));
    }

    #[test]
    fn layout_matches_xen_dom0_builder() {
        // Real Xen 4.17: boot stack ffffffff8003e000-ffffffff8003f000, TOTAL ends at
        // ffffffff80400000, dom0_mem=64M (15360 pages allocated).
        let l = Layout::from_boot(0xffff_ffff_8003_f000, 15360).unwrap();
        assert_eq!(l.first_free_pfn, 0x3f);
        assert_eq!(l.mapped_end_pfn, 0x400);
        assert_eq!(l.mapped_end_va(), 0xffff_ffff_8040_0000);
        // Less than 512 KiB of slack before the boundary: one more 4 MiB.
        let l = Layout::from_boot(VIRT_BASE + 0x3c_0000, 1 << 20).unwrap();
        assert_eq!(l.mapped_end_pfn, 0x800);
        assert_eq!(Layout::from_boot(0x1000, 10), None);
    }

    #[test]
    fn frames() {
        let mut a = FrameAllocator::new(10, 13);
        assert_eq!((a.alloc(), a.alloc()), (Some(10), Some(11)));
        a.free(10);
        assert_eq!(a.remaining(), 2);
        assert_eq!((a.alloc(), a.alloc(), a.alloc()), (Some(10), Some(12), None));
    }

    #[test]
    fn window() {
        let mut v = VaAllocator::new(VMAP_START, VMAP_START + 3 * PAGE_SIZE);
        assert_eq!(v.alloc(2), Some(VMAP_START));
        assert_eq!(v.alloc(2), None);
        assert_eq!(v.alloc(1), Some(VMAP_START + 2 * PAGE_SIZE));
        assert_eq!(v.alloc(u64::MAX), None);
    }
}
