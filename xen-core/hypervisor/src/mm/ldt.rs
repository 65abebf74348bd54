//! A vCPU's LDT as Xen maps it (`pv_map_ldt_shadow_page`, `pv_destroy_ldt`):
//! `MMUEXT_SET_LDT` only records base and entry count; the hypervisor's view of each
//! LDT page is mapped on the first fault through it, taking a descriptor-page type
//! reference (all 512 descriptors checked), and every page goes, references dropped,
//! when the LDT changes or the vCPU's domain does.

use super::pagetable::{is_canonical, present, pte_mfn};
use super::pv::VcpuMm;
use super::{FrameTable, Frames, PageInfo};
use xen_abi::{DomId, Mfn};

/// Pages of the largest LDT (8192 descriptors of 8 bytes).
pub const LDT_PAGES: usize = 16;

/// The LDT pages a vCPU has mapped, by page of its LDT: each holds a general and a
/// descriptor-page type reference.
pub type LdtPages = [Option<Mfn>; LDT_PAGES];

/// What a fault on the hypervisor's view of the running vCPU's LDT, `offset` bytes in,
/// asks for (Xen's `handle_ldt_mapping_fault`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdtFault {
    /// Map LDT page `page` from the guest's kernel mapping of `linear`; if that fails,
    /// [`LdtFault::PageFault`] at `linear`.
    Map { page: usize, linear: u64 },
    /// A #PF for the guest at `linear` (its error code the hardware's).
    PageFault { linear: u64 },
    /// A #GP with this error code: the LDT runs past the end of canonical space there.
    GeneralProtection(u16),
}

/// Classifies a fault `offset` bytes into the LDT of `vm`.
pub fn ldt_fault(vm: &VcpuMm, offset: u64) -> LdtFault {
    let linear = vm.ldt_base.wrapping_add(offset);
    let page = (offset >> 12) as usize;
    if !is_canonical(linear) {
        // Xen: the descriptor's offset with TI set (EXT and IDT clear).
        return LdtFault::GeneralProtection((offset as u16 & !3) | 4);
    }
    if offset >> 3 < u64::from(vm.ldt_ents) && page < LDT_PAGES {
        LdtFault::Map { page, linear }
    } else {
        LdtFault::PageFault { linear }
    }
}

impl<S: AsRef<[PageInfo]> + AsMut<[PageInfo]>> FrameTable<S> {
    /// Takes the references for a mapping of an LDT page of `dom` that the guest maps
    /// with kernel L1 entry `l1e` (present, a frame of `dom` that can be typed
    /// `PGT_seg_desc_page`: not mapped writable, not a page table, every descriptor
    /// accepted). None if any of that fails (the guest gets the fault).
    pub fn map_ldt_page<F: Frames>(&mut self, hw: &mut F, dom: DomId, l1e: u64) -> Option<Mfn> {
        if !present(l1e) {
            return None;
        }
        let mfn = pte_mfn(l1e);
        self.get_segdesc_page(hw, dom, mfn).ok()?;
        Some(mfn)
    }

    /// Drops the references of every mapped LDT page (`pv_destroy_ldt`); true if any
    /// page was mapped (the caller then removes the hypervisor's view of it).
    pub fn release_ldt_pages<F: Frames>(&mut self, hw: &mut F, pages: &mut LdtPages) -> bool {
        let mut any = false;
        for mfn in pages.iter_mut().filter_map(Option::take) {
            self.put_segdesc_page(hw, mfn);
            any = true;
        }
        any
    }
}
