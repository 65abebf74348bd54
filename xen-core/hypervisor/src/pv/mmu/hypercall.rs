//! `mmu_update`, `update_va_mapping` and `mmuext_op`: decode guest requests and hand
//! them to the portable PV MMU; apply the TLB work it asks for.

use crate::pv::domain::Domain;
use crate::pv::hypercall::{array_ok, HcResult, Step, StepResult};
use crate::pv::mmu;
use crate::arch::x86_64::{cpu, phys};
use crate::arch::x86_64::guest::GuestView;
use crate::mm::Flush;
use xen_abi::errno::Errno;
use xen_abi::xen::{MmuUpdate, MmuextOp, DOMID_SELF};
use xen_abi::{DomId, Mfn};
use zerocopy::{FromBytes, IntoBytes};

/// Bit 31 of `count` marks a continuation in Xen: the done count so far is in `*pdone`.
const MMU_UPDATE_PREEMPTED: u64 = 1 << 31;

/// Requests of one `mmu_update` or `mmuext_op` done per entry into the hypervisor; the
/// rest continue (Xen stops where `hypercall_preempt_check` finds work pending).
pub const MMU_BATCH: u64 = 256;

fn foreign_ok(d: &Domain, foreigndom: u64) -> Result<(), Errno> {
    let f = foreigndom as u16;
    if f == DOMID_SELF.0 || f == d.id {
        Ok(())
    } else {
        Err(Errno::ESRCH)
    }
}

/// A batch of `mmu_update` or `mmuext_op` requests as the guest gave it, after Xen's
/// first checks (`do_mmu_update`, `do_mmuext_op`): `count` is an unsigned int whose bit
/// 31 marks a continuation (then `*pdone` holds what was done before), and the list
/// must start outside the hypervisor's hole (-EFAULT).
#[derive(Clone, Copy, Debug)]
pub struct Batch {
    list: u64,
    count: u64,
    pdone: u64,
    foreigndom: u64,
    before: u64,
}

impl Batch {
    pub fn new(guest: &GuestView, list: u64, count: u64, pdone: u64, foreigndom: u64) -> Result<Self, Errno> {
        let mut count = u64::from(count as u32);
        let mut before = 0;
        if count & MMU_UPDATE_PREEMPTED != 0 {
            count &= !MMU_UPDATE_PREEMPTED;
            if pdone != 0 {
                before = guest.read::<u32>(pdone).map_or(0, u64::from);
            }
        }
        array_ok(list)?;
        Ok(Batch { list, count, pdone, foreigndom, before })
    }

    /// Runs `one` on each request in turn, at most `MMU_BATCH` of them: stops at the
    /// first error (returned, with the done count in `*pdone`), or with the rest as a
    /// continuation (the list advanced, the count reduced and marked, `*pdone` so far).
    /// Returns how many requests ran, and the result.
    pub fn run<T: FromBytes + IntoBytes>(self, guest: &GuestView, mut one: impl FnMut(T) -> Result<(), Errno>) -> (u64, StepResult) {
        let size = core::mem::size_of::<T>() as u64;
        let mut i = 0;
        let mut result = Ok(Step::Done(0));
        while i < self.count {
            if i == MMU_BATCH {
                let rest = (self.count - i) | MMU_UPDATE_PREEMPTED;
                result = Ok(Step::More([self.list.wrapping_add(i * size), rest, self.pdone, self.foreigndom, 0]));
                break;
            }
            if let Err(e) = guest.read::<T>(self.list.wrapping_add(i * size)).and_then(&mut one) {
                result = Err(e);
                break;
            }
            i += 1;
        }
        if self.pdone != 0 {
            // Xen ignores a failure to write the count back.
            let _ = guest.write(self.pdone, &((self.before + i) as u32));
        }
        (i, result)
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

/// The page-table entry a `mmu_update` request names (normal or A/D-preserving update
/// of a RAM frame), as (frame, index).
fn pte_slot(req: &MmuUpdate) -> Option<(u64, usize)> {
    use xen_abi::xen::{MMU_NORMAL_PT_UPDATE, MMU_PT_UPDATE_PRESERVE_AD};
    let kind = req.ptr & 7;
    let pte = req.ptr & !7;
    ((kind == MMU_NORMAL_PT_UPDATE || kind == MMU_PT_UPDATE_PRESERVE_AD) && phys::frame_in_ram(pte >> 12))
        .then_some((pte >> 12, ((pte & 0xfff) / 8) as usize))
}

pub fn mmu_update(d: &mut Domain, guest: &GuestView, reqs: u64, count: u64, pdone: u64, foreigndom: u64) -> StepResult {
    let batch = Batch::new(guest, reqs, count, pdone, foreigndom)?;
    foreign_ok(d, foreigndom)?;
    let mut flush = false;
    let (_, result) = batch.run(guest, |req: MmuUpdate| {
        let slot = pte_slot(&req);
        let old = slot.map(|(mfn, idx)| phys::read_entry(mfn, idx));
        mmu::with(|t, hw| t.mmu_update_one(hw, DomId(d.id), req))?;
        if let (Some((mfn, idx)), Some(old)) = (slot, old) {
            flush |= mmu::change_needs_flush(old, phys::read_entry(mfn, idx));
        }
        Ok(())
    });
    // Entries that changed under the CPU's TLB (Xen leaves this to the guest and its TLB
    // flush clock; without one, a changed or removed mapping is flushed here).
    if flush {
        crate::arch::x86_64::smp::flush_tlb_current();
    }
    result
}

pub fn update_va_mapping(d: &mut Domain, guest: &GuestView, va: u64, val: u64, flags: u64) -> HcResult {
    let l4 = Mfn(d.vcpus[d.cur_vcpu].kernel_l4);
    let flush = mmu::with(|t, hw| t.update_va_mapping(hw, DomId(d.id), l4, va, val, flags))?;
    apply(guest, flush, Errno::EFAULT)?;
    Ok(0)
}

pub fn mmuext_op(d: &mut Domain, guest: &GuestView, ops: u64, count: u64, pdone: u64, foreigndom: u64) -> StepResult {
    let batch = Batch::new(guest, ops, count, pdone, foreigndom)?;
    foreign_ok(d, foreigndom)?;
    batch
        .run(guest, |op: MmuextOp| {
            let mut vm = d.vcpus[d.cur_vcpu].mm;
            let old_kernel_l4 = vm.kernel_l4;
            let effect = mmu::with(|t, hw| t.mmuext_op_one(hw, DomId(d.id), &mut vm, &op))?;
            d.vcpus[d.cur_vcpu].set_mm(vm);
            apply(guest, effect.flush, Errno::EINVAL)?;
            if effect.reload_cr3 {
                cpu::write_cr3(d.vcpus[d.cur_vcpu].current_l4() << 12);
            }
            // A new kernel base drops the LDT's mappings too (Xen's new_guest_cr3), as
            // does a new LDT; its pages are mapped again on their next fault.
            if effect.reload_ldt || vm.kernel_l4 != old_kernel_l4 {
                let v = d.cur_vcpu;
                super::descriptors::release_ldt_pages(d, v);
                crate::arch::x86_64::gdt::load_ldt(vm.ldt_ents, &d.vcpus[v].ldt_pages);
            }
            Ok(())
        })
        .1
}
