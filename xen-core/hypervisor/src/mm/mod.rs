//! The portable PV MMU: Xen's page-info array, page types and reference counts,
//! page-table validation and the guest-visible operations (`mmu_update`,
//! `update_va_mapping`, `mmuext_op`), after `xen/arch/x86/mm.c` (Xen 4.17).
//!
//! Safe Rust only: the hardware side (reading and writing machine frames, Xen's L4
//! slots, the M2P, TLB flushes) is the [`Frames`] trait the arch layer implements.
//!
//! # Model
//!
//! Every machine frame has a [`PageInfo`] in the [`FrameTable`] (indexed by MFN): an
//! [`Owner`], a general reference count, a [`PageType`] with its own count, and the
//! `validated` and `pinned` flags. A frame has one type at a time; the type can change
//! only while the type count is zero. Taking the first L1..L4 type reference validates
//! the frame's contents: each present entry must pass the level's flag rules and
//! reference a frame of the same domain of the next lower type (L1 entries: any frame
//! of the domain; a writable L1 entry takes a `Writable` type reference, so a
//! page-table or descriptor frame can never be mapped writable). Dropping the last type
//! reference of a page table drops what its entries held. Recursion is bounded: every
//! step goes one level down, and a linear (same-level) reference can be followed only
//! once because a table used linearly may not itself contain linear entries.
//!
//! Linear page tables follow Xen's default for 64-bit PV (`pv-linear-pt` enabled): an
//! L2/L3/L4 entry may point at an already-validated table of its own level, read-only
//! only; a table's entry pointing at the table itself takes no references.
//!
//! Not modelled (callers beware): foreign domains (`foreigndom`, `_otherdomain`), I/O
//! memory and cache attributes (every domain is treated as having no I/O capabilities),
//! `VMASST_TYPE_m2p_strict`, L1TF checks of non-present entries, hypercall preemption
//! (all work is done at once; every recursion is bounded).

mod ldt;
mod page_info;
pub mod pagetable;
mod pv;
mod refs;
#[cfg(test)]
mod tests;

pub use ldt::{ldt_fault, LdtFault, LdtPages, LDT_PAGES};
pub use page_info::{FrameTable, Owner, PageInfo, PageType};
pub use pv::{Flush, FrameRef, FrameRefError, MmuextEffect, ReleaseReport, VcpuMm};

use xen_abi::{DomId, Mfn};

/// What the arch layer provides to the portable MMU. `mfn` arguments are always inside
/// the frame table and `idx < 512`.
pub trait Frames {
    /// Entry `idx` (0..512) of machine frame `mfn`, viewed as 512 u64s.
    fn read_entry(&self, mfn: Mfn, idx: usize) -> u64;

    /// Writes entry `idx` of `mfn` (one atomic 8-byte store on hardware).
    fn write_entry(&mut self, mfn: Mfn, idx: usize, val: u64);

    /// `MMU_PT_UPDATE_PRESERVE_AD`: writes `val` ORed with the Accessed/Dirty bits the
    /// entry holds at the moment of the write. Hardware implementations must do this
    /// with a compare-exchange loop (the CPU may set A/D concurrently); the default
    /// read-then-write is for models.
    fn write_entry_preserve_ad(&mut self, mfn: Mfn, idx: usize, val: u64) {
        let ad = pagetable::PAGE_ACCESSED | pagetable::PAGE_DIRTY;
        let old = self.read_entry(mfn, idx);
        self.write_entry(mfn, idx, val | (old & ad));
    }

    /// Writes the hypervisor's entries into L4 slots 256..=271 of a newly validated L4
    /// (Xen's `init_xen_l4_slots`; slot 256 carries the read-only M2P). Guests can
    /// never write these slots.
    fn fill_xen_l4_slots(&mut self, mfn: Mfn);

    /// `MMU_MACHPHYS_UPDATE`: sets the M2P entry of `mfn` (owned by the caller) to `pfn`.
    fn set_m2p(&mut self, mfn: Mfn, pfn: u64);

    /// A frame of `dom` is changing type (e.g. writable -> page table): no CPU may keep
    /// a stale TLB entry from its previous use. Flush every CPU `dom` has run on.
    fn flush_tlbs(&mut self, dom: DomId);

    /// Checks the 512 descriptors of `mfn` for `PGT_seg_desc_page` (Xen's
    /// `check_descriptor`) and, as Xen's `validate_segdesc_page`, writes each accepted
    /// one back as checked (DPL raised), up to the first refused one: the CPU reads
    /// LDT pages in place. The default refuses, so descriptor frames cannot be typed
    /// until the arch layer implements this.
    fn validate_segdesc_frame(&mut self, mfn: Mfn) -> bool {
        let _ = mfn;
        false
    }
}
