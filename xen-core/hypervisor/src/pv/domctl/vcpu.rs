//! `setvcpucontext`, `getvcpucontext`, `getvcpuinfo` and `hypercall_init` for a domain
//! the toolstack builds (Xen's `arch_set_info_guest`/`arch_get_info_guest` for a 64-bit
//! PV vCPU); `load_context` is also `VCPUOP_initialise`'s.

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
use xen_abi::vcpu::{RUNSTATE_offline, RUNSTATE_runnable};
use xen_abi::{DomId, Mfn};

use crate::pv::hypercall::misc::VM_ASSIST_VALID;

const RFLAGS_IF: u64 = 1 << 9;
const RFLAGS_IOPL: u64 = 3 << 12;
const RFLAGS_VM: u64 = 1 << 17;

/// The vCPU facts `getvcpuinfo` and friends look at for vCPU `n`: (max_vcpus,
/// created, initialised, online).
pub(super) fn vcpu_state(d: &Domain, n: u32) -> (u32, bool, bool, bool) {
    let v = d.vcpus.get(n as usize);
    let (initialised, online) = v.map_or((false, false), |v| (v.initialised, v.online));
    if d.ctl.toolstack {
        (d.ctl.max_vcpus, d.ctl.vcpu_created, initialised, online)
    } else {
        (d.vcpus.len() as u32, true, initialised, online)
    }
}

/// Descriptor bits that make a selector usable on entry (present; code or data).
const DESC_PRESENT: u64 = 1 << 47;
const DESC_CODE_OR_DATA: u64 = 1 << 44;
const DESC_EXECUTABLE: u64 = 1 << 43;
const DESC_WRITABLE: u64 = 1 << 41;

/// Whether GDT selector `sel` names a checked descriptor of `gdt` with `want` of
/// `mask` (an LDT selector never does here).
fn in_gdt(sel: u16, gdt: &[u64], mask: u64, want: u64) -> bool {
    sel & 4 == 0 && gdt.get(usize::from(sel >> 3)).is_some_and(|&d| d & mask == want)
}

/// A code selector with RPL 3 (`fixup_guest_code_selector`): a flat one, or a code
/// descriptor of the vCPU's checked GDT; anything else would fault on entry, so it is
/// refused.
fn code_selector(cs: u16, gdt: &[u64]) -> Result<u16, Errno> {
    let cs = cs | 3;
    let mask = DESC_PRESENT | DESC_CODE_OR_DATA | DESC_EXECUTABLE;
    if [FLAT_KERNEL_CS, FLAT_RING3_CS64, FLAT_RING3_CS32].contains(&cs) || in_gdt(cs, gdt, mask, mask) {
        Ok(cs)
    } else {
        Err(Errno::EINVAL)
    }
}

/// A stack selector with RPL 3: a flat one or a writable data descriptor of the GDT.
fn stack_selector(ss: u16, gdt: &[u64]) -> Result<u16, Errno> {
    let ss = ss | 3;
    let mask = DESC_PRESENT | DESC_CODE_OR_DATA | DESC_EXECUTABLE | DESC_WRITABLE;
    if [FLAT_KERNEL_SS, FLAT_RING3_SS64].contains(&ss) || in_gdt(ss, gdt, mask, DESC_PRESENT | DESC_CODE_OR_DATA | DESC_WRITABLE) {
        Ok(ss)
    } else {
        Err(Errno::EINVAL)
    }
}

/// `XEN_DOMCTL_setvcpucontext` (the caller refused the current domain).
pub fn set_context(d: &mut Domain, guest: &GuestView, op: &XenDomctl) -> Result<(), Errno> {
    let v: XenDomctlVcpucontext = op.payload().ok_or(Errno::EINVAL)?;
    let (max, created, _, _) = vcpu_state(d, v.vcpu);
    if v.vcpu >= max || !created || !d.ctl.toolstack {
        return Err(Errno::EINVAL);
    }
    if v.ctxt == 0 {
        // vcpu_reset: taking a loaded vCPU back down is not built here.
        return Err(Errno::EOPNOTSUPP);
    }
    let c: VcpuGuestContext = guest.read(v.ctxt)?;
    load_context(d, v.vcpu as usize, &c)
}

/// Xen's `arch_set_info_guest` for vCPU `n` (which exists) of a 64-bit PV domain: the
/// context's checks, then its page-table bases (taking their references), GDT,
/// registers, callbacks and traps; online as `VGCF_online` says. A vCPU already
/// loaded keeps its bases and GDT (`-EOPNOTSUPP` if the context names others).
pub fn load_context(d: &mut Domain, n: usize, c: &VcpuGuestContext) -> Result<(), Errno> {
    let initialised = d.vcpus[n].initialised;
    // Only vCPU 0's context sets (and so is checked for) the domain's vm_assist.
    ctl::check_vcpu_context(c, if n == 0 { VM_ASSIST_VALID } else { u64::MAX })?;
    // The GDT the selectors are checked against: the one loaded, or the context's
    // (checked first: nothing is taken if its frames or descriptors are refused).
    let nr_gdt = c.gdt_ents.div_ceil(512) as usize;
    let gdt_frames = c.gdt_frames.get(..nr_gdt).ok_or(Errno::EINVAL)?;
    let gdt = if initialised {
        d.vcpus[n].gdt_shadow.clone()
    } else {
        super::super::mmu::descriptors::check_gdt(d, gdt_frames, c.gdt_ents)?
    };
    let cs = code_selector(c.user_regs.cs, &gdt)?;
    let ss = stack_selector(c.user_regs.ss, &gdt)?;
    let kernel_ss = stack_selector(c.kernel_ss as u16, &gdt)?;
    let mut traps = [xen_abi::arch_x86_64::TrapInfo::default(); 256];
    for (t, from) in traps.iter_mut().zip(c.trap_ctxt.iter()) {
        *t = *from;
        if t.address != 0 {
            t.cs = code_selector(t.cs, &gdt)?;
        }
    }
    if initialised {
        // A loaded vCPU keeps its page-table bases, GDT and LDT (Xen: -EOPNOTSUPP if the
        // context names others).
        let v = &d.vcpus[n];
        let same = c.ctrlreg[3] >> 12 == v.kernel_l4
            && c.ctrlreg[1] >> 12 == v.user_l4
            && c.gdt_ents == v.gdt_shadow.len() as u64
            && gdt_frames == v.gdt_frames.as_slice()
            && u64::from(d.vcpus[n].mm.ldt_ents) == c.ldt_ents
            && (c.ldt_ents == 0 || d.vcpus[n].mm.ldt_base == c.ldt_base);
        if !same {
            return Err(Errno::EOPNOTSUPP);
        }
    } else {
        let dom = DomId(d.id);
        let mut vm = d.vcpus[n].mm;
        let rc = super::super::mmu::with(|t, hw| {
            t.new_baseptr(hw, dom, &mut vm, Mfn(c.ctrlreg[3] >> 12))?;
            t.new_user_baseptr(hw, dom, &mut vm, c.ctrlreg[1] >> 12)
        });
        // The references taken so far live in the vCPU's bases (a later context or
        // the domain's destruction drops them).
        d.vcpus[n].set_mm(vm);
        rc?;
        // (A vCPU never run has no LDT page mapped; were one, it goes with the LDT.)
        super::super::mmu::descriptors::release_ldt_pages(d, n);
        vm.ldt_ents = c.ldt_ents as u32;
        vm.ldt_base = if c.ldt_ents != 0 { c.ldt_base } else { 0 };
        d.vcpus[n].set_mm(vm);
        super::super::mmu::descriptors::hold_gdt_frames(d.id, gdt_frames)?;
        let old = core::mem::replace(&mut d.vcpus[n].gdt_frames, gdt_frames.to_vec());
        super::super::mmu::descriptors::release_gdt_frames(&old);
        d.vcpus[n].gdt_shadow = gdt;
        if n == 0 {
            d.vm_assist = c.vm_assist;
        }
    }
    let r = &c.user_regs;
    let s = &mut d.vcpus[n].saved;
    (s.r15, s.r14, s.r13, s.r12, s.rbp, s.rbx) = (r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx);
    (s.r11, s.r10, s.r9, s.r8, s.rax, s.rcx) = (r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx);
    (s.rdx, s.rsi, s.rdi) = (r.rdx, r.rsi, r.rdi);
    s.rip = r.rip;
    s.rsp = r.rsp;
    s.cs = u64::from(cs);
    s.ss = u64::from(ss);
    // IOPL is virtualised; real interrupts stay enabled.
    s.rflags = (r.rflags & !(RFLAGS_IOPL | RFLAGS_VM)) | RFLAGS_IF;
    d.vcpus[n].iopl = ((r.rflags & RFLAGS_IOPL) >> 12) as u32;
    d.vcpus[n].kernel_mode = c.flags & VGCF_in_kernel != 0;
    d.vcpus[n].trap_table = traps;
    d.vcpus[n].kernel_ss = u64::from(kernel_ss);
    d.vcpus[n].kernel_sp = c.kernel_sp;
    d.vcpus[n].event_callback = c.event_callback_eip;
    d.vcpus[n].failsafe_callback = c.failsafe_callback_eip;
    d.vcpus[n].syscall_callback = c.syscall_callback_eip;
    d.vcpus[n].fs_base = c.fs_base;
    d.vcpus[n].gs_base_kernel = c.gs_base_kernel;
    d.vcpus[n].gs_base_user = c.gs_base_user;
    // Only CR0.TS is the guest's.
    d.vcpus[n].fpu_ts = c.ctrlreg[0] & (1 << 3) != 0;
    d.vcpus[n].debugreg = [0, 0, 0, 0, 0, 0, 0xffff_0ff0, 0x400];
    for (i, &val) in c.debugreg.iter().enumerate() {
        if matches!(i, 0..=3 | 6 | 7) {
            // As Xen, a value set_debugreg refuses is left at its default.
            let _ = super::super::trap::emul_priv::set_vcpu_debugreg(&mut d.vcpus[n], i as u64, val);
        }
    }
    let now = crate::arch::x86_64::clock::now_ns();
    let v = &mut d.vcpus[n];
    v.run = RunState::Runnable;
    v.initialised = true;
    v.online = c.flags & VGCF_online != 0;
    v.runstate.enter(if v.online { RUNSTATE_runnable } else { RUNSTATE_offline }, now);
    Ok(())
}

/// `XEN_DOMCTL_getvcpucontext`: `-EINVAL` for a vCPU that does not exist or is the
/// caller's own, `-ENODATA` before it was loaded.
pub fn get_context(doms: &mut Domains, guest: &GuestView, op: &mut XenDomctl) -> Result<(), Errno> {
    let v: XenDomctlVcpucontext = op.payload().ok_or(Errno::EINVAL)?;
    let me = doms.current_id();
    let d = doms.get(op.domain).ok_or(Errno::ESRCH)?;
    let (max, created, initialised, online) = vcpu_state(d, v.vcpu);
    if v.vcpu >= max || !created || d.id == me {
        return Err(Errno::EINVAL);
    }
    if !initialised {
        return Err(Errno::ENODATA);
    }
    let vc = d.vcpus.get(v.vcpu as usize).ok_or(Errno::EINVAL)?;
    let s = &vc.saved;
    let mut c = VcpuGuestContext::default();
    let r = &mut c.user_regs;
    (r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx) = (s.r15, s.r14, s.r13, s.r12, s.rbp, s.rbx);
    (r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx) = (s.r11, s.r10, s.r9, s.r8, s.rax, s.rcx);
    (r.rdx, r.rsi, r.rdi) = (s.rdx, s.rsi, s.rdi);
    r.rip = s.rip;
    r.rsp = s.rsp;
    r.cs = s.cs as u16;
    r.ss = s.ss as u16;
    r.rflags = (s.rflags & !RFLAGS_IOPL) | (u64::from(vc.iopl & 3) << 12);
    c.flags = (if vc.kernel_mode { VGCF_in_kernel } else { 0 }) | (if online { VGCF_online } else { 0 });
    c.trap_ctxt = vc.trap_table;
    c.ldt_base = vc.mm.ldt_base;
    c.ldt_ents = u64::from(vc.mm.ldt_ents);
    for (dst, &f) in c.gdt_frames.iter_mut().zip(vc.gdt_frames.iter()) {
        *dst = f;
    }
    c.gdt_ents = vc.gdt_shadow.len() as u64;
    c.kernel_ss = vc.kernel_ss;
    c.kernel_sp = vc.kernel_sp;
    c.ctrlreg[0] = 0x8005_003b | if vc.fpu_ts { 1 << 3 } else { 0 };
    c.ctrlreg[3] = vc.kernel_l4 << 12;
    c.ctrlreg[1] = vc.user_l4 << 12;
    c.debugreg = vc.debugreg;
    c.event_callback_eip = vc.event_callback;
    c.failsafe_callback_eip = vc.failsafe_callback;
    c.syscall_callback_eip = vc.syscall_callback;
    c.vm_assist = d.vm_assist;
    c.fs_base = vc.fs_base;
    c.gs_base_kernel = vc.gs_base_kernel;
    c.gs_base_user = vc.gs_base_user;
    guest.write(v.ctxt, &c)?;
    Ok(())
}

/// `XEN_DOMCTL_getvcpuinfo`: `-EINVAL` past `max_vcpus`, `-ESRCH` for a vCPU not made.
pub fn get_info(doms: &mut Domains, op: &mut XenDomctl) -> Result<(), Errno> {
    let mut v: XenDomctlGetvcpuinfo = op.payload().ok_or(Errno::EINVAL)?;
    let running = doms.vcpu_running(op.domain, v.vcpu as usize);
    let doms_cpu = doms.vcpu_cpu(op.domain, v.vcpu as usize);
    let d = doms.get(op.domain).ok_or(Errno::ESRCH)?;
    let (max, created, _, online) = vcpu_state(d, v.vcpu);
    if v.vcpu >= max {
        return Err(Errno::EINVAL);
    }
    if !created {
        return Err(Errno::ESRCH);
    }
    let vc = d.vcpus.get(v.vcpu as usize).ok_or(Errno::ESRCH)?;
    v.online = u8::from(online);
    v.blocked = u8::from(!matches!(vc.run, RunState::Runnable));
    v.running = u8::from(running);
    v.cpu_time = vc.runstate.snapshot(crate::arch::x86_64::clock::now_ns()).time[0];
    v.cpu = crate::pv::credit::reported_cpu(d, v.vcpu as usize, doms_cpu) as u32;
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
