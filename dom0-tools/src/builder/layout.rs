//! The toolstack's start-of-day layout for a 64-bit PV domU (what libxenguest's
//! `xc_dom_*` builds), as a pure function, and its initial page tables.
//!
//! One region from `VIRT_BASE` maps the domain's first pages 1:1, each element
//! page-aligned, in this order:
//!
//! ```text
//!  kernel | ramdisk | P2M list | start_info | xenstore ring | console ring |
//!  page tables (L4, L3s, L2s, L1s) | boot stack | padding to 4 MiB (>= 512 KiB)
//! ```
//!
//! It differs from the initial domain's (`xen-core`'s `domain::layout`): the xenstore and
//! console pages, the table order, and no `dom0_vga_console_info`. The page-table count
//! uses the same rule ([`PtFrames::for_range`]), shared with xen-core.

use xen_core::domain::elf::DomainParams;
use xen_core::domain::layout::PtFrames;

pub const PAGE: u64 = 4096;
const MIN_SLACK: u64 = 512 << 10;
const V_END_ALIGN: u64 = 4 << 20;

/// PTE bits: present, writable, user, accessed, dirty.
const P: u64 = 1;
const RW: u64 = 2;
const USER: u64 = 4;
const ACCESSED: u64 = 0x20;
const DIRTY: u64 = 0x40;
/// libxenguest's `L1_PROT` and `L2_PROT` (used for L2–L4).
pub const L1_PROT: u64 = P | RW | ACCESSED;
pub const UPPER_PROT: u64 = P | RW | ACCESSED | DIRTY | USER;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LayoutError {
    /// The kernel's addresses are not page-aligned above `VIRT_BASE`.
    BadKernelRange,
    /// The domain has fewer pages than the initial mapping needs (pages needed).
    TooSmall(u64),
}

impl std::fmt::Display for LayoutError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LayoutError::BadKernelRange => write!(f, "kernel image lies below VIRT_BASE or wraps"),
            LayoutError::TooSmall(n) => write!(f, "memory too small: the initial mapping needs {n} pages ({} MiB)", (n * PAGE) >> 20),
        }
    }
}

impl std::error::Error for LayoutError {}

/// Where everything goes, in PFNs of the new domain (`va = virt_base + pfn * 4096`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DomuLayout {
    pub virt_base: u64,
    pub nr_pages: u64,
    pub kernel_pages: u64,
    /// First PFN and page count of the ramdisk (0 pages if none).
    pub ramdisk_pfn: u64,
    pub ramdisk_pages: u64,
    pub p2m_pfn: u64,
    pub p2m_pages: u64,
    pub start_info_pfn: u64,
    pub store_pfn: u64,
    pub console_pfn: u64,
    pub pt_pfn: u64,
    pub pt: PtFrames,
    pub stack_pfn: u64,
    /// End of the initial mapping.
    pub v_end: u64,
}

fn pages(bytes: u64) -> u64 {
    bytes.div_ceil(PAGE)
}

impl DomuLayout {
    pub fn va(&self, pfn: u64) -> u64 {
        self.virt_base + pfn * PAGE
    }

    /// Pages the initial mapping covers.
    pub fn mapped_pages(&self) -> u64 {
        (self.v_end - self.virt_base) / PAGE
    }
}

/// The layout for a kernel with `params`, `nr_pages` pages of memory and a ramdisk of
/// `ramdisk_len` bytes.
pub fn domu_layout(params: &DomainParams, nr_pages: u64, ramdisk_len: u64) -> Result<DomuLayout, LayoutError> {
    let base = params.virt_base;
    if params.virt_kstart < base || params.virt_kend < params.virt_kstart || !base.is_multiple_of(PAGE) {
        return Err(LayoutError::BadKernelRange);
    }
    let kernel_pages = pages(params.virt_kend - base);
    let ramdisk_pfn = kernel_pages;
    let ramdisk_pages = pages(ramdisk_len);
    let p2m_pfn = ramdisk_pfn + ramdisk_pages;
    let p2m_pages = pages(nr_pages * 8);
    let start_info_pfn = p2m_pfn + p2m_pages;
    let store_pfn = start_info_pfn + 1;
    let console_pfn = store_pfn + 1;
    let pt_pfn = console_pfn + 1;
    // The tables map the whole region, themselves included: grow until stable.
    let mut pt = PtFrames::for_range(base, base + (pt_pfn + 1) * PAGE);
    let v_end = loop {
        let stack_pfn = pt_pfn + pt.total();
        let end = (base + (stack_pfn + 1) * PAGE + MIN_SLACK).div_ceil(V_END_ALIGN) * V_END_ALIGN;
        let need = PtFrames::for_range(base, end);
        if need == pt {
            break end;
        }
        pt = need;
    };
    let stack_pfn = pt_pfn + pt.total();
    let l = DomuLayout {
        virt_base: base,
        nr_pages,
        kernel_pages,
        ramdisk_pfn,
        ramdisk_pages,
        p2m_pfn,
        p2m_pages,
        start_info_pfn,
        store_pfn,
        console_pfn,
        pt_pfn,
        pt,
        stack_pfn,
        v_end,
    };
    if l.mapped_pages() > nr_pages {
        return Err(LayoutError::TooSmall(l.mapped_pages()));
    }
    Ok(l)
}

/// The initial page tables, frame by frame in the layout's order (L4, L3s, L2s, L1s),
/// with `mfn(pfn)` giving each page's machine frame. Page-table frames are mapped
/// read-only, everything else writable.
pub fn page_tables(l: &DomuLayout, mfn: impl Fn(u64) -> u64) -> Vec<[u64; 512]> {
    let n = l.pt.total() as usize;
    let mut frames = vec![[0u64; 512]; n];
    let l3_first = 1u64;
    let l2_first = l3_first + l.pt.l3;
    let l1_first = l2_first + l.pt.l2;
    let idx = |va: u64, shift: u32| ((va >> shift) & 511) as usize;
    let base = l.virt_base;
    // Which table (pt frame index) serves each slot; slots are contiguous so a frame
    // is the slot's offset from the first one touched.
    let slot = |va: u64, shift: u32| (va >> shift) - (base >> shift);
    let pt_range = l.pt_pfn..l.pt_pfn + l.pt.total();
    let mut va = base;
    while va < l.v_end {
        let pfn = (va - base) / PAGE;
        let l3 = l3_first + slot(va, 39);
        let l2 = l2_first + slot(va, 30);
        let l1 = l1_first + slot(va, 21);
        frames[0][idx(va, 39)] = (mfn(l.pt_pfn + l3) << 12) | UPPER_PROT;
        frames[l3 as usize][idx(va, 30)] = (mfn(l.pt_pfn + l2) << 12) | UPPER_PROT;
        frames[l2 as usize][idx(va, 21)] = (mfn(l.pt_pfn + l1) << 12) | UPPER_PROT;
        let prot = if pt_range.contains(&pfn) { L1_PROT & !RW } else { L1_PROT };
        frames[l1 as usize][idx(va, 12)] = (mfn(pfn) << 12) | prot;
        va += PAGE;
    }
    frames
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn params(kstart: u64, kend: u64) -> DomainParams {
        DomainParams { virt_base: 0xffff_ffff_8000_0000, virt_kstart: kstart, virt_kend: kend, ..Default::default() }
    }

    #[test]
    fn small_kernel_layout() {
        let p = params(0xffff_ffff_8000_0000, 0xffff_ffff_8000_0000 + 0x23456);
        let l = domu_layout(&p, 32768, 0).unwrap();
        assert_eq!(l.kernel_pages, 0x24);
        assert_eq!(l.p2m_pfn, 0x24);
        assert_eq!(l.p2m_pages, 64);
        assert_eq!(l.start_info_pfn, 0x24 + 64);
        assert_eq!((l.store_pfn, l.console_pfn, l.pt_pfn), (l.start_info_pfn + 1, l.start_info_pfn + 2, l.start_info_pfn + 3));
        assert_eq!((l.pt.l4, l.pt.l3, l.pt.l2, l.pt.l1), (1, 1, 1, 2));
        assert_eq!(l.v_end - l.virt_base, 4 << 20);
        assert!(l.v_end - l.va(l.stack_pfn + 1) >= 512 << 10);
        assert_eq!(domu_layout(&p, 100, 0), Err(LayoutError::TooSmall(1024)));
    }

    #[test]
    fn tables_map_the_region_one_to_one() {
        let p = params(0xffff_ffff_8000_0000, 0xffff_ffff_8000_0000 + (5 << 20));
        let l = domu_layout(&p, 65536, 3 << 20).unwrap();
        let mfn = |pfn: u64| 0x10_0000 + pfn * 3;
        let t = page_tables(&l, mfn);
        assert_eq!(t.len() as u64, l.pt.total());
        // Walk every page of the region through the tables.
        let frame_of = |m: u64| ((m - 0x10_0000) / 3 - l.pt_pfn) as usize;
        for pfn in 0..l.mapped_pages() {
            let va = l.va(pfn);
            let e4 = t[0][((va >> 39) & 511) as usize];
            let e3 = t[frame_of(e4 >> 12)][((va >> 30) & 511) as usize];
            let e2 = t[frame_of(e3 >> 12)][((va >> 21) & 511) as usize];
            let e1 = t[frame_of(e2 >> 12)][((va >> 12) & 511) as usize];
            assert_eq!(e1 >> 12, mfn(pfn));
            let is_pt = (l.pt_pfn..l.pt_pfn + l.pt.total()).contains(&pfn);
            assert_eq!(e1 & RW == 0, is_pt, "pfn {pfn}");
            assert_eq!(e4 & 0xfff, UPPER_PROT);
        }
    }

    proptest! {
        #[test]
        fn layouts_are_ordered_and_fit(kpages in 1u64..20_000, rd in 0u64..(64 << 20), extra in 0u64..100_000) {
            let base = 0xffff_ffff_8000_0000u64;
            let p = params(base, base + kpages * PAGE);
            let needed = match domu_layout(&p, 1 << 30 >> 12, rd) { Ok(l) => l.mapped_pages(), Err(e) => return Err(TestCaseError::fail(format!("{e}"))) };
            let l = domu_layout(&p, needed + extra, rd).unwrap();
            prop_assert!(l.ramdisk_pfn >= l.kernel_pages);
            prop_assert!(l.p2m_pfn >= l.ramdisk_pfn + l.ramdisk_pages);
            prop_assert!(l.p2m_pages * 512 >= l.nr_pages);
            prop_assert!(l.stack_pfn == l.pt_pfn + l.pt.total());
            prop_assert_eq!(l.pt, PtFrames::for_range(base, l.v_end));
            prop_assert!(l.v_end.is_multiple_of(4 << 20));
            prop_assert!(l.v_end - l.va(l.stack_pfn + 1) >= 512 << 10);
            prop_assert!(l.mapped_pages() <= l.nr_pages);
        }
    }
}
