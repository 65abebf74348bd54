//! `mmu_update` and `mmuext_op` with `foreigndom` naming another domain: how a PV
//! control domain maps a new domain's frames (Linux privcmd's `MMAPBATCH_V2` issues
//! `mmu_update` on its own L1 entries with the domain's id, `xen_remap_pfn`) and pins
//! its page tables (Xen's `do_mmu_update` / `do_mmuext_op` with `pg_owner` != `currd`).

use super::super::hypercall::StepResult;
use super::super::mmu::hypercall::Batch;
use super::super::mmu;
use super::super::sched::Domains;
use crate::arch::x86_64::guest::GuestView;
use crate::domain::control::DOMID_FIRST_RESERVED;
use xen_abi::errno::Errno;
use xen_abi::xen::{MmuUpdate, MmuextOp, DOMID_SELF};
use xen_abi::DomId;

/// Whether a `foreigndom` argument names another ordinary domain (or a page-table
/// owner), which the calls here handle; `DOMID_SELF`, the caller's own id and the
/// special ids stay with `hc_mmu`.
pub fn is_foreign(doms: &mut Domains, foreigndom: u64) -> bool {
    names_other(doms.current_id(), foreigndom)
}

/// `is_foreign` for a caller `me`.
pub fn names_other(me: u16, foreigndom: u64) -> bool {
    let pg = foreigndom as u16;
    let pt = (foreigndom >> 16) as u16;
    pt != 0 || (pg != DOMID_SELF.0 && pg != me && pg < DOMID_FIRST_RESERVED)
}

/// `get_pg_owner` + the dummy XSM's `XSM_TARGET` check: the caller's own id is
/// `-ESRCH` ("cannot specify itself"), an unknown id `-ESRCH`, an unprivileged caller
/// `-EPERM`.
fn pg_owner(doms: &mut Domains, id: u16) -> Result<u16, Errno> {
    if id == doms.current_id() || doms.get(id).is_none() {
        return Err(Errno::ESRCH);
    }
    if !doms.cur().privileged {
        return Err(Errno::EPERM);
    }
    Ok(id)
}

pub fn mmu_update(doms: &mut Domains, guest: &GuestView, reqs: u64, count: u64, pdone: u64, foreigndom: u64) -> StepResult {
    let batch = Batch::new(guest, reqs, count, pdone, foreigndom)?;
    let me = doms.current_id();
    let pt_dom = (foreigndom >> 16) as u16;
    if pt_dom != 0 {
        // Page tables of another domain (Xen's "PFD"): its vCPU 0 would do the update.
        // Only the caller's own tables are handled here.
        if doms.get(pt_dom - 1).is_none() {
            return Err(Errno::ESRCH);
        }
        if pt_dom - 1 != me {
            return Err(Errno::EINVAL);
        }
    }
    let pg = foreigndom as u16;
    let pg = if pg == DOMID_SELF.0 || (pt_dom != 0 && pg == me) { me } else { pg_owner(doms, pg)? };
    let (done, result) = batch.run(guest, |req: MmuUpdate| mmu::with(|t, hw| t.mmu_update_one_foreign(hw, DomId(me), DomId(pg), req)));
    // Removed or changed mappings must not linger in the TLB.
    if done > 0 {
        crate::arch::x86_64::smp::flush_tlb_current();
    }
    result
}

pub fn mmuext_op(doms: &mut Domains, guest: &GuestView, ops: u64, count: u64, pdone: u64, foreigndom: u64) -> StepResult {
    let batch = Batch::new(guest, ops, count, pdone, foreigndom)?;
    let pg = pg_owner(doms, foreigndom as u16)?;
    let (done, result) = batch.run(guest, |op: MmuextOp| mmu::with(|t, hw| t.mmuext_op_foreign(hw, DomId(pg), &op)));
    if done > 0 {
        crate::arch::x86_64::smp::flush_tlb_current();
    }
    result
}
