//! Guest segment descriptors: `set_gdt` and `update_descriptor`. The guest's GDT frames
//! are checked descriptor by descriptor (Xen's `check_descriptor`) and copied into the
//! low part of the hypervisor's GDT, below Xen's reserved entries, so only checked
//! descriptors are ever loaded. The LDT is Xen's: `MMUEXT_SET_LDT` records it, and each
//! of its pages is mapped (typed `PGT_seg_desc_page`, so checked) on its first fault.

use crate::pv::domain::Domain;
use crate::pv::hypercall::HcResult;
use crate::arch::x86_64::gdt::{self, FIRST_RESERVED_GDT_ENTRY};
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::phys;
use crate::mm::{LdtFault, PageType};
use crate::segdesc::check_descriptor;
use alloc::vec::Vec;
use xen_abi::errno::Errno;
use xen_abi::{DomId, Mfn};

fn owned(d: &Domain, mfn: u64) -> bool {
    let pfn = super::m2p::get(mfn);
    d.p2m.get(pfn as usize) == Some(&mfn)
}

/// `set_gdt(frame_list, entries)`.
pub fn set_gdt(d: &mut Domain, guest: &GuestView, list: u64, entries: u64) -> HcResult {
    if entries > FIRST_RESERVED_GDT_ENTRY as u64 {
        return Err(Errno::EINVAL);
    }
    let nr_frames = entries.div_ceil(512);
    let mut frames = Vec::with_capacity(nr_frames as usize);
    for i in 0..nr_frames {
        frames.push(guest.read::<u64>(list.wrapping_add(8 * i))?);
    }
    let descs = check_gdt(d, &frames, entries)?;
    hold_gdt_frames(d.id, &frames)?;
    let old = core::mem::replace(&mut d.vcpus[d.cur_vcpu].gdt_frames, frames);
    release_gdt_frames(&old);
    gdt::load_guest_descriptors(&descs);
    d.vcpus[d.cur_vcpu].gdt_shadow = descs;
    Ok(0)
}

/// Takes the descriptor-page type references a loaded GDT holds on its frames (Xen's
/// `get_page_and_type(PGT_seg_desc_page)` in `pv_set_gdt`), all of them or none: while
/// held, no frame of it can be mapped writable or become a page table.
pub fn hold_gdt_frames(dom: u16, frames: &[u64]) -> Result<(), Errno> {
    super::with(|t, hw| {
        for (i, &f) in frames.iter().enumerate() {
            if t.get_segdesc_page(hw, DomId(dom), Mfn(f)).is_err() {
                for &g in &frames[..i] {
                    t.put_segdesc_page(hw, Mfn(g));
                }
                return Err(Errno::EINVAL);
            }
        }
        Ok(())
    })
}

/// Drops what `hold_gdt_frames` took (a GDT replaced, or its vCPU's domain destroyed).
pub fn release_gdt_frames(frames: &[u64]) {
    super::with(|t, hw| {
        for &f in frames {
            t.put_segdesc_page(hw, Mfn(f));
        }
    });
}

/// The checked descriptors of a GDT of `entries` in `frames` (Xen's `pv_set_gdt`):
/// `-EINVAL` for too many entries, a frame the domain does not own, a frame in use as
/// something else (Xen's `get_page_and_type(PGT_seg_desc_page)` fails while the frame
/// has another type with references: mapped writable, or a page table), or a
/// descriptor `check_descriptor` refuses.
pub fn check_gdt(d: &Domain, frames: &[u64], entries: u64) -> Result<Vec<u64>, Errno> {
    if entries > FIRST_RESERVED_GDT_ENTRY as u64 || (frames.len() as u64) < entries.div_ceil(512) {
        return Err(Errno::EINVAL);
    }
    if frames.iter().any(|&mfn| !owned(d, mfn)) {
        return Err(Errno::EINVAL);
    }
    let other_use = super::with(|t, _| {
        frames.iter().any(|&mfn| t.page(Mfn(mfn)).is_some_and(|p| p.type_count() > 0 && p.page_type() != PageType::SegDesc))
    });
    if other_use {
        return Err(Errno::EINVAL);
    }
    let mut descs = Vec::with_capacity(entries as usize);
    for i in 0..entries {
        let raw = phys::read_entry(frames[(i / 512) as usize], (i % 512) as usize);
        descs.push(check_descriptor(raw).ok_or(Errno::EINVAL)?);
    }
    Ok(descs)
}

/// `update_descriptor(maddr, desc)`: one descriptor in a frame the domain owns that is
/// not a page table.
pub fn update_descriptor(d: &mut Domain, maddr: u64, desc: u64) -> HcResult {
    if !maddr.is_multiple_of(8) {
        return Err(Errno::EINVAL);
    }
    let desc = check_descriptor(desc).ok_or(Errno::EINVAL)?;
    let mfn = maddr >> 12;
    if !owned(d, mfn) {
        return Err(Errno::EINVAL);
    }
    let is_table = super::with(|t, _| {
        t.page(Mfn(mfn)).is_some_and(|p| matches!(p.page_type(), PageType::L1 | PageType::L2 | PageType::L3 | PageType::L4))
    });
    if is_table {
        return Err(Errno::EINVAL);
    }
    let index = ((maddr & 0xfff) / 8) as usize;
    phys::write_entry(mfn, index, desc);
    if let Some(n) = d.vcpus[d.cur_vcpu].gdt_frames.iter().position(|&f| f == mfn) {
        let entry = n * 512 + index;
        if let Some(slot) = d.vcpus[d.cur_vcpu].gdt_shadow.get_mut(entry) {
            *slot = desc;
            gdt::set_guest_descriptor(entry, desc);
        }
    }
    Ok(0)
}

/// Drops vCPU `v`'s mapped LDT pages (`pv_destroy_ldt`: its LDT changed, or its
/// domain is going). The caller reloads this CPU's LDT if `v` runs here.
pub fn release_ldt_pages(d: &mut Domain, v: usize) {
    let pages = &mut d.vcpus[v].ldt_pages;
    if pages.iter().any(Option::is_some) {
        super::with(|t, hw| t.release_ldt_pages(hw, pages));
    }
}

/// What became of a fault in this CPU's LDT window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LdtOutcome {
    /// The LDT page is mapped now: the guest retries the access.
    Retry,
    /// The guest gets a #PF at this address in its own LDT.
    PageFault(u64),
    /// The guest gets a #GP with this error code.
    GeneralProtection(u16),
}

/// A fault `offset` bytes into the running vCPU's LDT (Xen's
/// `handle_ldt_mapping_fault` and `pv_map_ldt_shadow_page`): the page is mapped from
/// the guest's kernel page tables if it can be typed `PGT_seg_desc_page` (present, the
/// domain's own, not mapped writable, not a page table, every descriptor accepted);
/// otherwise the fault is the guest's, at its LDT's linear address.
pub fn ldt_fault(d: &mut Domain, offset: u64, error_code: u32) -> LdtOutcome {
    let v = d.cur_vcpu;
    let (page, linear) = match crate::mm::ldt_fault(&d.vcpus[v].mm, offset) {
        LdtFault::Map { page, linear } => (page, linear),
        LdtFault::PageFault { linear } => return LdtOutcome::PageFault(linear),
        LdtFault::GeneralProtection(e) => return LdtOutcome::GeneralProtection(e),
    };
    if error_code & 1 != 0 {
        // A present mapping faulted (nothing the window's mappings allow).
        return LdtOutcome::PageFault(linear);
    }
    if let Some(mfn) = d.vcpus[v].ldt_pages[page] {
        gdt::map_ldt_page(page, mfn);
        return LdtOutcome::Retry;
    }
    let l4 = d.vcpus[v].kernel_l4;
    let slot = (l4 != 0).then(|| GuestView { l4_mfn: l4 }.l1_slot(linear)).flatten();
    let Some((l1, index)) = slot else { return LdtOutcome::PageFault(linear) };
    let l1e = phys::read_entry(l1, index);
    match super::with(|t, hw| t.map_ldt_page(hw, DomId(d.id), l1e)) {
        Some(mfn) => {
            d.vcpus[v].ldt_pages[page] = Some(mfn);
            gdt::map_ldt_page(page, mfn);
            LdtOutcome::Retry
        }
        None => LdtOutcome::PageFault(linear),
    }
}
