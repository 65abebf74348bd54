//! Delivery into a PV guest: bounce frames for exceptions, system calls and event upcalls,
//! the `iret` hypercall, kernel/user mode switches, and crashing a domain that can't take
//! what it caused.

pub mod emul_priv;
pub mod emulate;

use crate::pv::domain::Domain;
use crate::arch::x86_64::guest::{GuestView, HYPERVISOR_VIRT_END, HYPERVISOR_VIRT_START};
use crate::arch::x86_64::trap::{Regs, EXCEPTION_NAMES};
use crate::arch::x86_64::{cpu, gdt, phys};
use crate::pv::mmu::descriptors::{self, LdtOutcome};
use crate::println;
use xen_abi::arch_x86_64::{IretContext, Vgcf};

const FLAT_KERNEL_CS: u64 = 0xe033;
const FLAT_KERNEL_SS: u64 = 0xe02b;
const FLAT_RING3_CS32: u64 = 0xe023;

const RFLAGS_TF: u64 = 1 << 8;
const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_IOPL: u64 = 3 << 12;
const RFLAGS_NT: u64 = 1 << 14;
const RFLAGS_RF: u64 = 1 << 16;
const RFLAGS_VM: u64 = 1 << 17;
const RFLAGS_AC: u64 = 1 << 18;

/// `vcpu_info` byte offsets (xen.h): pending, mask, and `arch.cr2`.
const VCPU_INFO_UPCALL_PENDING: u64 = 0;
const VCPU_INFO_UPCALL_MASK: u64 = 1;
const VCPU_INFO_CR2: u64 = 16;

/// Trap-table flag: deliver with events masked (an interrupt gate).
const TI_MASK_EVENTS: u8 = 4;

fn vcpu_info_byte(d: &Domain, off: u64) -> u8 {
    let mut b = [0u8];
    phys::read_bytes(d.vcpus[d.cur_vcpu].vcpu_info_maddr + off, &mut b);
    b[0]
}

pub fn set_upcall_mask(d: &Domain, masked: bool) {
    phys::write_bytes(d.vcpus[d.cur_vcpu].vcpu_info_maddr + VCPU_INFO_UPCALL_MASK, &[u8::from(masked)]);
}

pub fn upcall_pending(d: &Domain) -> bool {
    vcpu_info_byte(d, VCPU_INFO_UPCALL_PENDING) != 0
}

pub fn upcall_mask(d: &Domain) -> bool {
    vcpu_info_byte(d, VCPU_INFO_UPCALL_MASK) != 0
}

/// Switches between guest kernel and user mode: page tables and GS bases.
fn toggle_guest_mode(d: &mut Domain) {
    let v = &mut d.vcpus[d.cur_vcpu];
    // The outgoing mode's GS base may have been changed through wrmsr emulation, which
    // updates these fields; the CPU's MSR holds the active one.
    let active_gs = cpu::gs_base();
    if v.kernel_mode {
        v.gs_base_kernel = active_gs;
    } else {
        v.gs_base_user = active_gs;
    }
    v.kernel_mode = !v.kernel_mode;
    let gs = if v.kernel_mode { v.gs_base_kernel } else { v.gs_base_user };
    cpu::set_gs_base(gs);
    cpu::write_cr3(v.current_l4() << 12);
}

/// Ends the domain because of something it did, as Xen's domain_crash does. The domain
/// is destroyed before the next return to a guest (for the hardware domain of a
/// single-domain boot, that ends the machine); callers stop touching its state.
pub fn crash_domain(d: &mut Domain, why: core::fmt::Arguments<'_>, regs: &Regs) {
    println!("domain_crash called: {why}");
    println!("Domain {} (vcpu#{}) crashed on cpu#0:\n{regs}", d.id, d.cur_vcpu);
    d.ending = Some(crate::pv::domain::END_CRASH);
}

/// Pushes Xen's bounce frame on the guest kernel stack and points the vCPU at `handler`.
fn bounce(d: &mut Domain, regs: &mut Regs, handler: u64, error_code: Option<u64>, mask_events: bool) {
    let saved_mask = u64::from(vcpu_info_byte(d, VCPU_INFO_UPCALL_MASK));
    let (stack, cs) = if d.vcpus[d.cur_vcpu].kernel_mode {
        (regs.rsp, regs.cs & !3)
    } else {
        toggle_guest_mode(d);
        (d.vcpus[d.cur_vcpu].kernel_sp, regs.cs)
    };
    let mut rflags = regs.rflags & !(RFLAGS_IF | RFLAGS_IOPL);
    if saved_mask == 0 {
        rflags |= RFLAGS_IF;
    }
    let mut words = [0u64; 9];
    let mut n = 0;
    let mut push = |w: u64| {
        words[n] = w;
        n += 1;
    };
    push(regs.rcx);
    push(regs.r11);
    if let Some(e) = error_code {
        push(e);
    }
    push(regs.rip);
    push(cs | (saved_mask << 32));
    push(rflags);
    push(regs.rsp);
    push(regs.ss);
    let new_sp = (stack & !0xf).wrapping_sub(8 * n as u64);
    let mut bytes = [0u8; 72];
    for (i, w) in words[..n].iter().enumerate() {
        bytes[i * 8..i * 8 + 8].copy_from_slice(&w.to_le_bytes());
    }
    let in_hole = (HYPERVISOR_VIRT_START..HYPERVISOR_VIRT_END).contains(&new_sp);
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].kernel_l4 };
    if in_hole || guest.copy_to(new_sp, &bytes[..n * 8]).is_err() {
        crash_domain(d, format_args!("cannot write a bounce frame at {new_sp:#x}"), regs);
        return;
    }
    regs.rsp = new_sp;
    regs.rip = handler;
    regs.cs = FLAT_KERNEL_CS;
    regs.ss = FLAT_KERNEL_SS;
    regs.rflags &= !(RFLAGS_TF | RFLAGS_NT | RFLAGS_RF | RFLAGS_VM | RFLAGS_AC);
    if mask_events {
        set_upcall_mask(d, true);
    }
}

/// Vectors whose hardware frame carries an error code.
fn has_error_code(vector: u32) -> bool {
    matches!(vector, 8 | 10..=14 | 17 | 21 | 29 | 30)
}

/// Reflects exception `vector` to the guest's trap table, or crashes the domain.
pub fn inject_exception(d: &mut Domain, regs: &mut Regs, vector: u32, error_code: Option<u64>) {
    let ti = d.vcpus[d.cur_vcpu].trap_table[vector as usize & 0xff];
    if ti.address == 0 {
        let name = EXCEPTION_NAMES.get(vector as usize).copied().unwrap_or("software interrupt");
        let id = d.id;
        crash_domain(d, format_args!("Unhandled {name} (vector {vector}) in domain {id}"), regs);
        return;
    }
    bounce(d, regs, ti.address, error_code, ti.flags & TI_MASK_EVENTS != 0);
}

/// An exception from guest code (ring 3).
pub fn guest_exception(d: &mut Domain, regs: &mut Regs) {
    let vector = regs.entry_vector;
    let error = has_error_code(vector).then_some(u64::from(regs.error_code));
    match vector {
        14 => {
            let mut cr2 = cpu::read_cr2();
            // The CPU reading the vCPU's LDT through this CPU's window (an implicit
            // supervisor access: U/S and RSVD clear, as Xen checks): the LDT page is
            // mapped now, or the fault is the guest's at its own LDT address.
            const PFEC_USER_RSVD: u32 = (1 << 2) | (1 << 3);
            let in_ldt = if regs.error_code & PFEC_USER_RSVD == 0 { gdt::ldt_window_offset(cr2) } else { None };
            if let Some(offset) = in_ldt {
                match descriptors::ldt_fault(d, offset, regs.error_code) {
                    LdtOutcome::Retry => return,
                    LdtOutcome::GeneralProtection(e) => return inject_exception(d, regs, 13, Some(u64::from(e))),
                    LdtOutcome::PageFault(linear) => cr2 = linear,
                }
            }
            // A kernel write to a present, read-only page (error code P|W, not user).
            // Only for a domain that asked for writable page tables (Xen's
            // VM_ASSIST(d, writable_pagetables) check in fixup_page_fault).
            let ptwr = d.vm_assist & (1 << xen_abi::xen::VMASST_TYPE_writable_pagetables) != 0;
            if ptwr
                && in_ldt.is_none()
                && regs.error_code & 3 == 3
                && d.vcpus[d.cur_vcpu].kernel_mode
                && crate::pv::mmu::ptwr::emulate(d, regs, cr2)
            {
                return;
            }
            phys::write_bytes(d.vcpus[d.cur_vcpu].vcpu_info_maddr + VCPU_INFO_CR2, &cr2.to_le_bytes());
            // The guest kernel runs at CPL 3: report U/S as the guest's own mode.
            let mut e = u64::from(regs.error_code) & !4;
            if !d.vcpus[d.cur_vcpu].kernel_mode {
                e |= 4;
            }
            inject_exception(d, regs, 14, Some(e));
        }
        6 if emulate::forced_cpuid(d, regs) => {}
        13 if regs.error_code == 0 && emul_priv::privileged_op(d, regs) => {}
        0..=31 => {
            if matches!(vector, 6 | 13) && d.vcpus[d.cur_vcpu].kernel_mode {
                log_unemulated_once(d, regs, vector);
            }
            inject_exception(d, regs, vector, error)
        }
        _ => {} // interrupts: handled by the caller's event check
    }
}

/// A guest-kernel #UD/#GP we did not emulate: named once per RIP (up to a bound) with
/// its instruction bytes, so the log says what the next missing piece is.
fn log_unemulated_once(d: &Domain, regs: &Regs, vector: u32) {
    static SEEN: spin::Mutex<alloc::vec::Vec<u64>> = spin::Mutex::new(alloc::vec::Vec::new());
    let mut seen = SEEN.lock();
    if seen.len() >= 128 || seen.contains(&regs.rip) {
        return;
    }
    seen.push(regs.rip);
    let (bytes, n) = emul_priv::fetch_insn(d, regs.rip);
    let name = if vector == 6 { "#UD" } else { "#GP" };
    crate::println!("d{}: {name} not emulated at {:#x} (error {:#x}), bytes {:02x?}", d.id, regs.rip, regs.error_code, &bytes[..n]);
}

/// SYSCALL from guest user mode: to the guest kernel's syscall callback.
pub fn bounce_syscall(d: &mut Domain, regs: &mut Regs) {
    if d.vcpus[d.cur_vcpu].syscall_callback == 0 {
        regs.rip = regs.rip.wrapping_sub(2); // #UD at the SYSCALL instruction
        inject_exception(d, regs, 6, None);
        return;
    }
    let handler = d.vcpus[d.cur_vcpu].syscall_callback;
    let mask = d.vcpus[d.cur_vcpu].syscall_masks_events;
    bounce(d, regs, handler, None, mask);
}

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

/// `HYPERVISOR_iret`: the guest's `iret_context` sits at its stack pointer.
pub fn do_iret(d: &mut Domain, regs: &mut Regs) {
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
    let ctx: IretContext = match guest.read(regs.rsp) {
        Ok(c) => c,
        Err(_) => return crash_domain(d, format_args!("iret: unreadable frame at {:#x}", regs.rsp), regs),
    };
    let to_user = ctx.cs & 3 == 3;
    // The frame's selectors are 16 bits; a bounce frame carries the saved upcall mask
    // above them (bits 32-39), which a guest hands back unchanged.
    let cs = (ctx.cs & 0xffff) | 3;
    // Only selectors whose descriptors iretq can load (Xen's flat ones, or checked guest
    // GDT entries), or LDT selectors: the LDT can change under the iretq (another vCPU's
    // update_descriptor), so its faults are the guest's anyway (`trap::guest_iretq_fault`).
    // Anything else crashes the domain.
    const TI: u64 = 4;
    let cs_ok = cs == FLAT_KERNEL_CS || cs == FLAT_RING3_CS32 || cs & TI != 0 || gdt::guest_selector_ok(cs, true);
    let ss = (ctx.ss & 0xffff) | 3;
    let ss_ok = ss == FLAT_KERNEL_SS || ss & TI != 0 || gdt::guest_selector_ok(ss, false);
    if !cs_ok || !ss_ok || !canonical(ctx.rip) || !canonical(ctx.rsp) {
        return crash_domain(d, format_args!("iret: bad frame cs {:#x} ss {:#x} rip {:#x}", ctx.cs, ctx.ss, ctx.rip), regs);
    }
    if to_user && d.vcpus[d.cur_vcpu].kernel_mode {
        if d.vcpus[d.cur_vcpu].user_l4 == 0 {
            return crash_domain(d, format_args!("iret to user mode with no user page tables"), regs);
        }
        toggle_guest_mode(d);
    }
    regs.rax = ctx.rax;
    regs.rip = ctx.rip;
    regs.rsp = ctx.rsp;
    regs.rflags = (ctx.rflags & !(RFLAGS_IOPL | RFLAGS_VM)) | RFLAGS_IF;
    // Xen looks at VGCF_in_syscall alone; the other bits are ignored, not refused.
    if !Vgcf::from_bits_retain(ctx.flags).contains(Vgcf::IN_SYSCALL) {
        regs.r11 = ctx.r11;
        regs.rcx = ctx.rcx;
    }
    regs.cs = cs;
    regs.ss = ss;
    set_upcall_mask(d, ctx.rflags & RFLAGS_IF == 0);
}

/// On every return to the running guest: a deliverable event upcall, and sane flags
/// for iretq.
pub fn deliver_events(d: &mut Domain, regs: &mut Regs) {
    let pending = vcpu_info_byte(d, VCPU_INFO_UPCALL_PENDING) != 0;
    if pending && !upcall_mask(d) && d.vcpus[d.cur_vcpu].event_callback != 0 {
        let cb = d.vcpus[d.cur_vcpu].event_callback;
        bounce(d, regs, cb, None, true);
    }
    regs.rflags = (regs.rflags | RFLAGS_IF) & !(RFLAGS_IOPL | RFLAGS_VM);
}
