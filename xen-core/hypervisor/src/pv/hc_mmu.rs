//! `mmu_update`, `update_va_mapping` and `mmuext_op`: decode guest requests and hand
//! them to the portable PV MMU; apply the TLB work it asks for.

use super::domain::Domain;
use super::hypercall::HcResult;
use super::mmu;
use crate::arch::x86_64::cpu;
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
        Flush::InvlpgLocal(va) | Flush::InvlpgAll(va) => cpu::invlpg(va),
        Flush::InvlpgMulti { va, vcpumask } => {
            guest.read::<u64>(vcpumask).map_err(|_| bad_mask)?;
            cpu::invlpg(va)
        }
        Flush::TlbMulti { vcpumask } => {
            guest.read::<u64>(vcpumask).map_err(|_| bad_mask)?;
            cpu::flush_tlb()
        }
        Flush::TlbLocal | Flush::TlbAll => cpu::flush_tlb(),
    }
    Ok(())
}

fn report_done(guest: &GuestView, pdone: u64, done: u64) {
    if pdone != 0 {
        // Xen ignores a failure to write the count back.
        let _ = guest.write(pdone, &(done as u32));
    }
}

pub fn mmu_update(d: &mut Domain, guest: &GuestView, reqs: u64, count: u64, pdone: u64, foreigndom: u64) -> HcResult {
    let count = count & !MMU_UPDATE_PREEMPTED;
    array_ok(reqs, count)?;
    foreign_ok(d, foreigndom)?;
    let size = core::mem::size_of::<MmuUpdate>() as u64;
    for i in 0..count {
        let result = guest
            .read::<MmuUpdate>(reqs.wrapping_add(i * size))
            .and_then(|req| mmu::with(|t, hw| t.mmu_update_one(hw, DomId(d.id), req)));
        if let Err(e) = result {
            report_done(guest, pdone, i);
            return Err(e);
        }
    }
    // Page-table entries may have changed under the CPU's TLB.
    cpu::flush_tlb();
    report_done(guest, pdone, count);
    Ok(0)
}

pub fn update_va_mapping(d: &mut Domain, guest: &GuestView, va: u64, val: u64, flags: u64) -> HcResult {
    let l4 = Mfn(d.vcpu.kernel_l4);
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
            let mut vm = d.vcpu.mm;
            let effect = mmu::with(|t, hw| t.mmuext_op_one(hw, DomId(d.id), &mut vm, &op))?;
            d.vcpu.set_mm(vm);
            apply(guest, effect.flush, Errno::EINVAL)?;
            if effect.reload_cr3 {
                cpu::write_cr3(d.vcpu.current_l4() << 12);
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
