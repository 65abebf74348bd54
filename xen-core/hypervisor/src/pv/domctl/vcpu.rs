//! `setvcpucontext`, `getvcpucontext`, `getvcpuinfo` and `hypercall_init` for a domain
//! the toolstack builds (Xen's `arch_set_info_guest`/`arch_get_info_guest` for a 64-bit
//! PV vCPU). Domains have one vCPU here.

use super::super::domain::{Domain, RunState};
use super::super::sched::Domains;
use crate::arch::x86_64::guest::GuestView;
use crate::domain::control as ctl;
use crate::mm::FrameRefError;
use xen_abi::arch_x86_64::{
    VcpuGuestContext, FLAT_KERNEL_CS, FLAT_KERNEL_SS, FLAT_RING3_CS32, FLAT_RING3_CS64, FLAT_RING3_SS64,
    VGCF_in_kernel, VGCF_online,
};
use xen_abi::domctl::*;
use xen_abi::errno::Errno;
use xen_abi::{DomId, Mfn};

use crate::pv::hypercall::misc::VM_ASSIST_VALID;

const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_IOPL: u64 = 3 << 12;
const RFLAGS_VM: u64 = 1 << 17;

/// The vCPU facts `getvcpuinfo` and friends look at: (max_vcpus, created, initialised,
/// online). A boot-time domain has its one vCPU running from the start.
fn vcpu_state(d: &Domain) -> (u32, bool, bool, bool) {
    if d.ctl.toolstack {
        (d.ctl.max_vcpus, d.ctl.vcpu_created, d.ctl.vcpu_initialised, d.ctl.vcpu_online)
    } else {
        (1, true, true, true)
    }
}

/// A code selector for a vCPU with no GDT of its own yet: the flat ones, RPL 3
/// (`fixup_guest_code_selector`); anything else would fault on entry, so it is refused.
fn code_selector(cs: u16) -> Result<u16, Errno> {
    let cs = cs | 3;
    if [FLAT_KERNEL_CS, FLAT_RING3_CS64, FLAT_RING3_CS32].contains(&cs) {
        Ok(cs)
    } else {
        Err(Errno::EINVAL)
    }
}

fn stack_selector(ss: u16) -> Result<u16, Errno> {
    let ss = ss | 3;
    if [FLAT_KERNEL_SS, FLAT_RING3_SS64].contains(&ss) {
        Ok(ss)
    } else {
        Err(Errno::EINVAL)
    }
}

/// `XEN_DOMCTL_setvcpucontext` (the caller refused the current domain).
pub fn set_context(d: &mut Domain, guest: &GuestView, op: &XenDomctl) -> Result<(), Errno> {
    let v: XenDomctlVcpucontext = op.payload().ok_or(Errno::EINVAL)?;
    let (max, created, initialised, _) = vcpu_state(d);
    if v.vcpu >= max || !created || !d.ctl.toolstack {
        return Err(Errno::EINVAL);
    }
    if v.ctxt == 0 {
        // vcpu_reset: taking a loaded vCPU back down is not built here.
        return Err(Errno::EOPNOTSUPP);
    }
    let c: VcpuGuestContext = guest.read(v.ctxt)?;
    ctl::check_vcpu_context(&c, VM_ASSIST_VALID)?;
    let cs = code_selector(c.user_regs.cs)?;
    let ss = stack_selector(c.user_regs.ss)?;
    let kernel_ss = stack_selector(c.kernel_ss as u16)?;
    let mut traps = [xen_abi::arch_x86_64::TrapInfo::default(); 256];
    for (t, from) in traps.iter_mut().zip(c.trap_ctxt.iter()) {
        *t = *from;
        if t.address != 0 {
            t.cs = code_selector(t.cs)?;
        }
    }
    if initialised {
        // A loaded vCPU keeps its page-table bases, GDT and LDT (Xen: -EOPNOTSUPP if the
        // context names others).
        let same = c.ctrlreg[3] >> 12 == d.vcpu.kernel_l4
            && c.ctrlreg[1] >> 12 == d.vcpu.user_l4
            && c.gdt_ents == 0
            && u64::from(d.vcpu.mm.ldt_ents) == c.ldt_ents
            && (c.ldt_ents == 0 || d.vcpu.mm.ldt_base == c.ldt_base);
        if !same {
            return Err(Errno::EOPNOTSUPP);
        }
    } else {
        if c.gdt_ents != 0 {
            // A GDT of the guest's own frames at build time is not built here (our
            // builder and libxenguest's PV builder pass none).
            return Err(Errno::EOPNOTSUPP);
        }
        let dom = DomId(d.id);
        let mut vm = d.vcpu.mm;
        let rc = super::super::mmu::with(|t, hw| {
            t.new_baseptr(hw, dom, &mut vm, Mfn(c.ctrlreg[3] >> 12))?;
            t.new_user_baseptr(hw, dom, &mut vm, c.ctrlreg[1] >> 12)
        });
        // The references taken so far live in the vCPU's bases (a later context or
        // the domain's destruction drops them).
        d.vcpu.set_mm(vm);
        rc?;
        vm.ldt_ents = c.ldt_ents as u32;
        vm.ldt_base = if c.ldt_ents != 0 { c.ldt_base } else { 0 };
        d.vcpu.set_mm(vm);
        d.vm_assist = c.vm_assist;
    }
    let r = &c.user_regs;
    let s = &mut d.vcpu.saved;
    (s.r15, s.r14, s.r13, s.r12, s.rbp, s.rbx) = (r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx);
    (s.r11, s.r10, s.r9, s.r8, s.rax, s.rcx) = (r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx);
    (s.rdx, s.rsi, s.rdi) = (r.rdx, r.rsi, r.rdi);
    s.rip = r.rip;
    s.rsp = r.rsp;
    s.cs = u64::from(cs);
    s.ss = u64::from(ss);
    // IOPL is virtualised; real interrupts stay enabled.
    s.rflags = (r.rflags & !(RFLAGS_IOPL | RFLAGS_VM)) | RFLAGS_IF;
    d.vcpu.iopl = ((r.rflags & RFLAGS_IOPL) >> 12) as u32;
    d.vcpu.kernel_mode = c.flags & VGCF_in_kernel != 0;
    d.vcpu.trap_table = traps;
    d.vcpu.kernel_ss = u64::from(kernel_ss);
    d.vcpu.kernel_sp = c.kernel_sp;
    d.vcpu.event_callback = c.event_callback_eip;
    d.vcpu.failsafe_callback = c.failsafe_callback_eip;
    d.vcpu.syscall_callback = c.syscall_callback_eip;
    d.vcpu.fs_base = c.fs_base;
    d.vcpu.gs_base_kernel = c.gs_base_kernel;
    d.vcpu.gs_base_user = c.gs_base_user;
    // Only CR0.TS is the guest's.
    d.vcpu.fpu_ts = c.ctrlreg[0] & (1 << 3) != 0;
    d.vcpu.debugreg = [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400];
    for (i, &val) in c.debugreg.iter().enumerate() {
        if matches!(i, 0..=3 | 6 | 7) {
            // As Xen, a value set_debugreg refuses is left at its default.
            let _ = super::super::trap::emul_priv::set_debugreg(d, i as u64, val);
        }
    }
    d.vcpu.run = RunState::Runnable;
    d.ctl.vcpu_initialised = true;
    d.ctl.vcpu_online = c.flags & VGCF_online != 0;
    Ok(())
}

/// `XEN_DOMCTL_getvcpucontext`: `-EINVAL` for a vCPU that does not exist or is the
/// caller's own, `-ENODATA` before it was loaded.
pub fn get_context(doms: &mut Domains, guest: &GuestView, op: &mut XenDomctl) -> Result<(), Errno> {
    let v: XenDomctlVcpucontext = op.payload().ok_or(Errno::EINVAL)?;
    let me = doms.current_id();
    let d = doms.get(op.domain).ok_or(Errno::ESRCH)?;
    let (max, created, initialised, online) = vcpu_state(d);
    if v.vcpu >= max || !created || d.id == me {
        return Err(Errno::EINVAL);
    }
    if !initialised {
        return Err(Errno::ENODATA);
    }
    let s = &d.vcpu.saved;
    let mut c = VcpuGuestContext::default();
    let r = &mut c.user_regs;
    (r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx) = (s.r15, s.r14, s.r13, s.r12, s.rbp, s.rbx);
    (r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx) = (s.r11, s.r10, s.r9, s.r8, s.rax, s.rcx);
    (r.rdx, r.rsi, r.rdi) = (s.rdx, s.rsi, s.rdi);
    r.rip = s.rip;
    r.rsp = s.rsp;
    r.cs = s.cs as u16;
    r.ss = s.ss as u16;
    r.rflags = (s.rflags & !RFLAGS_IOPL) | (u64::from(d.vcpu.iopl & 3) << 12);
    c.flags = (if d.vcpu.kernel_mode { VGCF_in_kernel } else { 0 }) | (if online { VGCF_online } else { 0 });
    c.trap_ctxt = d.vcpu.trap_table;
    c.ldt_base = d.vcpu.mm.ldt_base;
    c.ldt_ents = u64::from(d.vcpu.mm.ldt_ents);
    for (dst, &f) in c.gdt_frames.iter_mut().zip(d.vcpu.gdt_frames.iter()) {
        *dst = f;
    }
    c.gdt_ents = d.vcpu.gdt_shadow.len() as u64;
    c.kernel_ss = d.vcpu.kernel_ss;
    c.kernel_sp = d.vcpu.kernel_sp;
    c.ctrlreg[0] = 0x8005_003b | if d.vcpu.fpu_ts { 1 << 3 } else { 0 };
    c.ctrlreg[3] = d.vcpu.kernel_l4 << 12;
    c.ctrlreg[1] = d.vcpu.user_l4 << 12;
    c.debugreg = d.vcpu.debugreg;
    c.event_callback_eip = d.vcpu.event_callback;
    c.failsafe_callback_eip = d.vcpu.failsafe_callback;
    c.syscall_callback_eip = d.vcpu.syscall_callback;
    c.vm_assist = d.vm_assist;
    c.fs_base = d.vcpu.fs_base;
    c.gs_base_kernel = d.vcpu.gs_base_kernel;
    c.gs_base_user = d.vcpu.gs_base_user;
    guest.write(v.ctxt, &c)?;
    Ok(())
}

/// `XEN_DOMCTL_getvcpuinfo`: `-EINVAL` past `max_vcpus`, `-ESRCH` for a vCPU not made.
pub fn get_info(doms: &mut Domains, op: &mut XenDomctl) -> Result<(), Errno> {
    let mut v: XenDomctlGetvcpuinfo = op.payload().ok_or(Errno::EINVAL)?;
    let running = doms.current_id();
    let d = doms.get(op.domain).ok_or(Errno::ESRCH)?;
    let (max, created, _, online) = vcpu_state(d);
    if v.vcpu >= max {
        return Err(Errno::EINVAL);
    }
    if !created {
        return Err(Errno::ESRCH);
    }
    v.online = u8::from(online);
    v.blocked = u8::from(!matches!(d.vcpu.run, RunState::Runnable));
    v.running = u8::from(d.id == running);
    v.cpu_time = 0;
    v.cpu = 0;
    op.set_payload(&v);
    Ok(())
}

/// `XEN_DOMCTL_hypercall_init`: writes the hypercall page into frame `gmfn` of `d`
/// through a writable reference: `-EINVAL` if `d` does not own it, `-EPERM` if it
/// cannot be written (a page table or descriptor frame).
pub fn hypercall_init(d: &mut Domain, gmfn: u64) -> Result<(), Errno> {
    let dom = DomId(d.id);
    let r = super::super::mmu::with(|t, hw| t.get_frame_ref(hw, dom, Mfn(gmfn), true)).map_err(|e| match e {
        FrameRefError::NotOwned => Errno::EINVAL,
        FrameRefError::NotWritable => Errno::EPERM,
    })?;
    let written = super::super::mmu::write_held(r, 0, &super::super::domain::build::hypercall_page());
    super::super::mmu::with(|t, hw| t.put_frame_ref(hw, r));
    if written {
        Ok(())
    } else {
        Err(Errno::EINVAL)
    }
}
