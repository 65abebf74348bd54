//! Writable page tables (Xen's `ptwr_do_page_fault`): a PV kernel may write an entry of
//! one of its L1 tables through a read-only mapping of it. The write faults; we decode
//! the instruction (`crate::insn`), check and apply the new entry exactly as
//! `mmu_update` would, and step over the instruction. Anything else is a real fault.

use crate::pv::domain::Domain;
use crate::pv::mmu;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::paging::{PTE_ADDR_MASK, PTE_P, PTE_RW};
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::phys;
use crate::insn::{self, Op};
use crate::pv::trap::emul_priv::{reg, set_reg};
use crate::mm::{Owner, PageType};
use xen_abi::xen::{MmuUpdate, MMU_NORMAL_PT_UPDATE};
use xen_abi::{DomId, Mfn};

const RFLAGS_CF: u64 = 1;
const RFLAGS_ZF: u64 = 1 << 6;
const RFLAGS_SF: u64 = 1 << 7;
const RFLAGS_OF: u64 = 1 << 11;

/// Emulates the write that faulted at `cr2` if it is a page-table write; returns whether
/// it was (then the guest continues after the instruction).
pub fn emulate(d: &mut Domain, regs: &mut Regs, cr2: u64) -> bool {
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
    let Some((l1, idx)) = guest.l1_slot(cr2) else { return false };
    let pte = phys::read_entry(l1, idx);
    if pte & PTE_P == 0 || pte & PTE_RW != 0 {
        return false;
    }
    let table = (pte & PTE_ADDR_MASK) >> 12;
    let is_own_l1 = mmu::with(|t, _| {
        t.page(Mfn(table)).is_some_and(|p| p.owner() == Owner::Dom(DomId(d.id)) && p.page_type() == PageType::L1)
    });
    if !is_own_l1 {
        return false;
    }
    // The instruction may end near the end of a mapped page: fetch what is readable.
    let (bytes, fetched) = crate::pv::trap::emul_priv::fetch_insn(d, regs.rip);
    let Some(w) = insn::decode(&bytes[..fetched], |n| reg(regs, n)) else { return false };
    // The access must stay inside one 8-byte entry (Xen refuses split writes too).
    let size = u64::from(w.size);
    if (cr2 & 7) + size > 8 {
        return false;
    }
    let slot = ((cr2 & 0xfff) / 8) as usize;
    let old = phys::read_entry(table, slot);
    let (shift, mask) = ((cr2 & 7) * 8, insn::size_mask(w.size));
    let old_part = (old >> shift) & mask;
    let merge = |v: u64| (old & !(mask << shift)) | ((v & mask) << shift);
    let mut carry = None;
    let new = match w.op {
        Op::Store(v) => merge(v),
        Op::Xchg { reg: r } => merge(reg(regs, r)),
        Op::Alu { op, src } => merge(op.apply(old_part, src, w.size)),
        Op::Bit { op, bit } => {
            carry = Some(old_part >> bit & 1 != 0);
            merge(op.apply(old_part, bit))
        }
        Op::Cmpxchg { reg: r } => {
            if old_part != regs.rax & mask {
                // No write: the comparison failed, as the CPU would report it.
                regs.rax = if w.size == 8 { old_part } else { (regs.rax & !0xffff_ffff) | old_part };
                regs.rflags &= !RFLAGS_ZF;
                regs.rip += u64::from(w.len);
                return true;
            }
            merge(reg(regs, r))
        }
    };
    let req = MmuUpdate { ptr: (table << 12) | (slot as u64 * 8) | MMU_NORMAL_PT_UPDATE, val: new };
    if mmu::with(|t, hw| t.mmu_update_one(hw, DomId(d.id), req)).is_err() {
        return false; // refused entry: the guest sees its page fault
    }
    if mmu::change_needs_flush(old, new) {
        crate::arch::x86_64::smp::flush_tlb_current();
    }
    match w.op {
        Op::Xchg { reg: r } => {
            let full = if w.size >= 4 { old_part } else { (reg(regs, r) & !mask) | old_part };
            set_reg(regs, r, full)
        }
        Op::Cmpxchg { .. } => regs.rflags |= RFLAGS_ZF,
        // bt*: CF is the old bit. ALU forms: ZF/SF from the result, CF/OF cleared for
        // the logical ones (what a guest may test after `lock and/or`).
        Op::Bit { .. } => {
            regs.rflags = (regs.rflags & !RFLAGS_CF) | if carry == Some(true) { RFLAGS_CF } else { 0 };
        }
        Op::Alu { .. } => {
            let result = (new >> shift) & mask;
            let sign = 1u64 << (u32::from(w.size) * 8 - 1);
            regs.rflags &= !(RFLAGS_CF | RFLAGS_ZF | RFLAGS_SF | RFLAGS_OF);
            if result == 0 {
                regs.rflags |= RFLAGS_ZF;
            }
            if result & sign != 0 {
                regs.rflags |= RFLAGS_SF;
            }
        }
        Op::Store(_) => {}
    }
    regs.rip += u64::from(w.len);
    true
}
