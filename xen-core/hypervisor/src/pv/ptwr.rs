//! Writable page tables (Xen's `ptwr_do_page_fault`): a PV kernel may write an entry of
//! one of its L1 tables through a read-only mapping of it. The write faults; we decode
//! the instruction (`crate::insn`), check and apply the new entry exactly as
//! `mmu_update` would, and step over the instruction. Anything else is a real fault.

use super::domain::Domain;
use super::mmu;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::paging::{PTE_ADDR_MASK, PTE_P, PTE_RW};
use crate::arch::x86_64::trap::Regs;
use crate::arch::x86_64::{cpu, phys};
use crate::insn::{self, Op};
use crate::mm::{Owner, PageType};
use xen_abi::xen::{MmuUpdate, MMU_NORMAL_PT_UPDATE};
use xen_abi::{DomId, Mfn};

const RFLAGS_ZF: u64 = 1 << 6;

fn reg(regs: &Regs, n: u8) -> u64 {
    match n {
        0 => regs.rax,
        1 => regs.rcx,
        2 => regs.rdx,
        3 => regs.rbx,
        4 => regs.rsp,
        5 => regs.rbp,
        6 => regs.rsi,
        7 => regs.rdi,
        8 => regs.r8,
        9 => regs.r9,
        10 => regs.r10,
        11 => regs.r11,
        12 => regs.r12,
        13 => regs.r13,
        14 => regs.r14,
        _ => regs.r15,
    }
}

fn set_reg(regs: &mut Regs, n: u8, v: u64) {
    let r = match n {
        0 => &mut regs.rax,
        1 => &mut regs.rcx,
        2 => &mut regs.rdx,
        3 => &mut regs.rbx,
        4 => &mut regs.rsp,
        5 => &mut regs.rbp,
        6 => &mut regs.rsi,
        7 => &mut regs.rdi,
        8 => &mut regs.r8,
        9 => &mut regs.r9,
        10 => &mut regs.r10,
        11 => &mut regs.r11,
        12 => &mut regs.r12,
        13 => &mut regs.r13,
        14 => &mut regs.r14,
        _ => &mut regs.r15,
    };
    *r = v;
}

/// Emulates the write that faulted at `cr2` if it is a page-table write; returns whether
/// it was (then the guest continues after the instruction).
pub fn emulate(d: &mut Domain, regs: &mut Regs, cr2: u64) -> bool {
    let guest = GuestView { l4_mfn: d.vcpu.current_l4() };
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
    let mut bytes = [0u8; 15];
    let fetched = (1..=15).rev().find(|&n| guest.copy_from(regs.rip, &mut bytes[..n]).is_ok()).unwrap_or(0);
    let Some(w) = insn::decode(&bytes[..fetched], |n| reg(regs, n)) else { return false };
    if !cr2.is_multiple_of(u64::from(w.size)) {
        return false;
    }
    let slot = ((cr2 & 0xfff) / 8) as usize;
    let old = phys::read_entry(table, slot);
    let (shift, mask) = if w.size == 8 { (0, !0u64) } else { ((cr2 & 4) * 8, 0xffff_ffffu64) };
    let old_part = (old >> shift) & mask;
    let merge = |v: u64| (old & !(mask << shift)) | ((v & mask) << shift);
    let new = match w.op {
        Op::Store(v) => merge(v),
        Op::Xchg { reg: r } => merge(reg(regs, r)),
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
    cpu::flush_tlb();
    match w.op {
        Op::Xchg { reg: r } => set_reg(regs, r, old_part),
        Op::Cmpxchg { .. } => regs.rflags |= RFLAGS_ZF,
        Op::Store(_) => {}
    }
    regs.rip += u64::from(w.len);
    true
}
