//! `mmu_update`, `update_va_mapping` and `mmuext_op`: decode guest requests and hand
//! them to the portable PV MMU; apply the TLB work it asks for.

use crate::pv::domain::Domain;
use crate::pv::hypercall::HcResult;
use crate::pv::mmu;
use crate::arch::x86_64::{cpu, phys};
use crate::arch::x86_64::guest::{GuestView, HYPERVISOR_VIRT_END};
use crate::mm::Flush;
use xen_abi::errno::Errno;
use xen_abi::xen::{MmuUpdate, MmuextOp, DOMID_SELF};
use xen_abi::{DomId, Mfn};

/// Bit 31 of `count` marks a continuation in Xen; guests never set it themselves.
const MMU_UPDATE_PREEMPTED: u64 = 1 << 31;

/// Xen's `array_access_ok`: fewer than 2^32 elements and a start outside the hole.
fn array_ok(ptr: u64, count: u64) -> Result<(), Errno> {
    let addr_ok = !((1 << 47)..HYPERVISOR_VIRT_END).contains(&ptr);
    if count >> 32 != 0 || !addr_ok {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

fn foreign_ok(d: &Domain, foreigndom: u64) -> Result<(), Errno> {
    let f = foreigndom as u16;
    if f == DOMID_SELF.0 || f == d.id {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// Carries out a flush request; a vcpumask the guest can't provide is `bad_mask`.
fn apply(guest: &GuestView, flush: Flush, bad_mask: Errno) -> Result<(), Errno> {
    match flush {
        Flush::None => {}
        Flush::InvlpgLocal(va) | Flush::InvlpgAll(va) => crate::arch::x86_64::smp::invlpg_current(va),
        Flush::InvlpgMulti { va, vcpumask } => {
            guest.read::<u64>(vcpumask).map_err(|_| bad_mask)?;
            crate::arch::x86_64::smp::invlpg_current(va)
        }
        Flush::TlbMulti { vcpumask } => {
            guest.read::<u64>(vcpumask).map_err(|_| bad_mask)?;
            crate::arch::x86_64::smp::flush_tlb_current()
        }
        Flush::TlbLocal | Flush::TlbAll => crate::arch::x86_64::smp::flush_tlb_current(),
    }
    Ok(())
}

fn report_done(guest: &GuestView, pdone: u64, done: u64) {
    if pdone != 0 {
        // Xen ignores a failure to write the count back.
        let _ = guest.write(pdone, &(done as u32));
    }
}

/// The page-table entry a `mmu_update` request names (normal or A/D-preserving update
/// of a RAM frame), as (frame, index).
fn pte_slot(req: &MmuUpdate) -> Option<(u64, usize)> {
    use xen_abi::xen::{MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD};
    let kind = req.ptr & 7;
    let pte = req.ptr & !7;
    ((kind == MMU_NORMAL_PT_UPDATE || kind == MMU_PT_UPDATE_PRESERVE_AD) && phys::frame_in_ram(pte >> 12))
        .then_some((pte >> 12, ((pte & 0xfff) / 8) as usize))
}

pub fn mmu_update(d: &mut Domain, guest: &GuestView, reqs: u64, count: u64, pdone: u64, foreigndom: u64) -> HcResult {
    let count = count & !MMU_UPDATE_PREEMPTED;
    array_ok(reqs, count)?;
    foreign_ok(d, foreigndom)?;
    let size = core::mem::size_of::<MmuUpdate>() as u64;
    let mut flush = false;
    let result = (0..count).try_for_each(|i| {
        let r = guest.read::<MmuUpdate>(reqs.wrapping_add(i * size)).and_then(|req| {
            let slot = pte_slot(&req);
            let old = slot.map(|(mfn, idx)| phys::read_entry(mfn, idx));
            mmu::with(|t, hw| t.mmu_update_one(hw, DomId(d.id), req))?;
            if let (Some((mfn, idx)), Some(old)) = (slot, old) {
                flush |= mmu::change_needs_flush(old, phys::read_entry(mfn, idx));
            }
            Ok(())
        });
        r.map_err(|e| (i, e))
    });
    // Entries that changed under the CPU's TLB (Xen leaves this to the guest and its TLB
    // flush clock; without one, a changed or removed mapping is flushed here).
    if flush {
        crate::arch::x86_64::smp::flush_tlb_current();
    }
    if let Err((i, e)) = result {
        report_done(guest, pdone, i);
        return Err(e);
    }
    report_done(guest, pdone, count);
    Ok(0)
}

pub fn update_va_mapping(d: &mut Domain, guest: &GuestView, va: u64, val: u64, flags: u64) -> HcResult {
    let l4 = Mfn(d.vcpus[d.cur_vcpu].kernel_l4);
    let flush = mmu::with(|t, hw| t.update_va_mapping(hw, DomId(d.id), l4, va, val, flags))?;
    apply(guest, flush, Errno::EFAULT)?;
    Ok(0)
}

pub fn mmuext_op(d: &mut Domain, guest: &GuestView, ops: u64, count: u64, pdone: u64, foreigndom: u64) -> HcResult {
    let count = count & !MMU_UPDATE_PREEMPTED;
    array_ok(ops, count)?;
    foreign_ok(d, foreigndom)?;
    let size = core::mem::size_of::<MmuextOp>() as u64;
    for i in 0..count {
        let result = guest.read::<MmuextOp>(ops.wrapping_add(i * size)).and_then(|op| {
            let mut vm = d.vcpus[d.cur_vcpu].mm;
            let effect = mmu::with(|t, hw| t.mmuext_op_one(hw, DomId(d.id), &mut vm, &op))?;
            d.vcpus[d.cur_vcpu].set_mm(vm);
            apply(guest, effect.flush, Errno::EINVAL)?;
            if effect.reload_cr3 {
                cpu::write_cr3(d.vcpus[d.cur_vcpu].current_l4() << 12);
            }
            Ok(())
        });
        if let Err(e) = result {
            report_done(guest, pdone, i);
            return Err(e);
        }
    }
    report_done(guest, pdone, count);
    Ok(0)
}
