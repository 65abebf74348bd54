//! The portable PV MMU (`crate::mm`) on real machine memory: the frame table every
//! domain's page tables are checked against, and the `Frames` view of machine frames.

pub mod descriptors;
pub mod hypercall;
pub mod m2p;
pub mod memory;
pub mod ptwr;

use crate::arch::x86_64::phys;
use crate::mm::{FrameTable, Frames, Owner, PageInfo};
use alloc::vec;
use alloc::vec::Vec;
use spin::Mutex;
use xen_abi::{DomId, Mfn};

pub type Table = FrameTable<Vec<PageInfo>>;

/// One lock for every page-type operation.
pub static MM: Mutex<Option<Table>> = Mutex::new(None);

/// Machine frames through the direct map.
#[derive(Debug)]
pub struct MachineFrames;

impl Frames for MachineFrames {
    fn read_entry(&self, mfn: Mfn, idx: usize) -> u64 {
        phys::read_entry(mfn.0, idx)
    }

    fn write_entry(&mut self, mfn: Mfn, idx: usize, val: u64) {
        phys::write_entry(mfn.0, idx, val)
    }

    fn fill_xen_l4_slots(&mut self, mfn: Mfn) {
        m2p::install_xen_slots(mfn.0)
    }

    fn set_m2p(&mut self, mfn: Mfn, pfn: u64) {
        m2p::set(mfn.0, pfn)
    }

    fn flush_tlbs(&mut self, dom: DomId) {
        crate::arch::x86_64::smp::flush_tlb_domain(dom.0)
    }

    fn validate_segdesc_frame(&mut self, mfn: Mfn) -> bool {
        (0..512).all(|i| {
            let raw = phys::read_entry(mfn.0, i);
            let Some(checked) = crate::segdesc::check_descriptor(raw) else { return false };
            if checked != raw {
                phys::write_entry(mfn.0, i, checked);
            }
            true
        })
    }
}

/// Creates the frame table for `nr_frames` machine frames; every frame the allocator
/// has already handed out (image, loader data, page tables, heap, M2P) is the
/// hypervisor's.
pub fn init(nr_frames: u64, in_use: impl Fn(u64) -> bool) {
    let mut t = FrameTable::new(vec![PageInfo::FREE; nr_frames as usize]);
    for mfn in (0..nr_frames).filter(|&m| in_use(m)) {
        t.set_owner_at_boot(Mfn(mfn), Owner::Xen);
    }
    *MM.lock() = Some(t);
}

/// Whether replacing page-table entry `old` with `new` can leave a stale TLB entry: only
/// a present entry that changes in more than its accessed/dirty bits. A new mapping
/// (nothing present before) needs no flush, so building page tables costs none; every
/// removed or changed mapping is flushed before the guest runs again, so it can never
/// reach a frame through a mapping the PV MMU already dropped.
pub fn change_needs_flush(old: u64, new: u64) -> bool {
    const PRESENT: u64 = 1;
    const ACCESSED_DIRTY: u64 = (1 << 5) | (1 << 6);
    old & PRESENT != 0 && (old ^ new) & !ACCESSED_DIRTY != 0
}

/// Runs `f` with the frame table and the machine frames.
pub fn with<R>(f: impl FnOnce(&mut Table, &mut MachineFrames) -> R) -> R {
    let mut g = crate::arch::x86_64::smp::spin_for("the frame table", || MM.try_lock());
    f(g.as_mut().expect("frame table initialised at boot"), &mut MachineFrames)
}

/// A hypervisor frame lent to `dom` (shared_info, grant frames).
pub fn share_with(dom: u16, mfn: u64, writable: bool) -> Result<(), xen_abi::errno::Errno> {
    with(|t, _| {
        t.set_owner_at_boot(Mfn(mfn), Owner::Xen);
        t.share_xen_frame(DomId(dom), Mfn(mfn), writable)
    })
}

/// Reads `buf.len()` bytes at `offset` of a guest frame the hypervisor holds a reference
/// on. False (nothing read) if the range leaves the page.
pub fn read_held(r: crate::mm::FrameRef, offset: u64, buf: &mut [u8]) -> bool {
    if offset.checked_add(buf.len() as u64).is_none_or(|end| end > 4096) {
        return false;
    }
    phys::read_bytes((r.mfn().0 << 12) + offset, buf);
    true
}

/// Writes `bytes` at `offset` of a guest frame the hypervisor holds with the writable
/// type (so it is no page table or descriptor page). False (nothing written) if the
/// reference is read-only or the range leaves the page.
pub fn write_held(r: crate::mm::FrameRef, offset: u64, bytes: &[u8]) -> bool {
    if !r.writable() || offset.checked_add(bytes.len() as u64).is_none_or(|end| end > 4096) {
        return false;
    }
    phys::write_bytes((r.mfn().0 << 12) + offset, bytes);
    true
}
