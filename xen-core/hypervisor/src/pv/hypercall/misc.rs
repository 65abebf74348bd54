//! Hypercalls about the vCPU's own state: trap table, callbacks, kernel stack, segment
//! bases, FPU switching, vm_assist, timers, vcpu_op, and blocking.

use crate::pv::domain::{Domain, RunState};
use alloc::vec::Vec;
use crate::pv::event;
use super::HcResult;
use crate::pv::trap;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::{clock, cpu, phys};
use xen_abi::arch_x86_64::{TrapInfo, SEGBASE_FS, SEGBASE_GS_KERNEL, SEGBASE_GS_USER, SEGBASE_GS_USER_SEL};
use xen_abi::callback::*;
use xen_abi::errno::Errno;
use xen_abi::vcpu::*;
use xen_abi::xen::{self as x, VcpuInfo};
use xen_abi::{DomId, Mfn};

fn canonical(va: u64) -> bool {
    let top = va >> 47;
    top == 0 || top == 0x1ffff
}

/// `set_trap_table`: entries until one with address 0; NULL clears the table.
pub fn set_trap_table(d: &mut Domain, guest: &GuestView, list: u64) -> HcResult {
    if list == 0 {
        d.vcpus[d.cur_vcpu].trap_table = [TrapInfo::default(); 256];
        return Ok(0);
    }
    let size = core::mem::size_of::<TrapInfo>() as u64;
    for i in 0..=256u64 {
        let t: TrapInfo = guest.read(list.wrapping_add(i * size))?;
        if t.address == 0 {
            return Ok(0);
        }
        if !canonical(t.address) {
            return Err(Errno::EINVAL);
        }
        let mut t = t;
        t.cs |= 3;
        d.vcpus[d.cur_vcpu].trap_table[t.vector as usize] = t;
    }
    Ok(0)
}

pub fn set_callbacks(d: &mut Domain, event: u64, failsafe: u64, syscall: u64) -> HcResult {
    if ![event, failsafe, syscall].iter().all(|&a| canonical(a)) {
        return Err(Errno::EINVAL);
    }
    d.vcpus[d.cur_vcpu].event_callback = event;
    d.vcpus[d.cur_vcpu].failsafe_callback = failsafe;
    d.vcpus[d.cur_vcpu].syscall_callback = syscall;
    d.vcpus[d.cur_vcpu].syscall_masks_events = false;
    Ok(0)
}

pub fn callback_op(d: &mut Domain, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    match cmd {
        CALLBACKOP_register => {
            let r: CallbackRegister = guest.read(arg)?;
            if !canonical(r.address) {
                return Err(Errno::EINVAL);
            }
            let mask = r.flags & CALLBACKF_mask_events != 0;
            match r.type_ {
                CALLBACKTYPE_event => d.vcpus[d.cur_vcpu].event_callback = r.address,
                CALLBACKTYPE_failsafe => d.vcpus[d.cur_vcpu].failsafe_callback = r.address,
                CALLBACKTYPE_syscall => {
                    d.vcpus[d.cur_vcpu].syscall_callback = r.address;
                    d.vcpus[d.cur_vcpu].syscall_masks_events = mask;
                }
                // 32-bit user entry points and the NMI callback are accepted; no 32-bit
                // user code or NMIs reach a guest yet.
                CALLBACKTYPE_syscall32 | CALLBACKTYPE_sysenter | CALLBACKTYPE_nmi => {}
                _ => return Err(Errno::ENOSYS),
            }
            Ok(0)
        }
        CALLBACKOP_unregister => {
            let u: CallbackUnregister = guest.read(arg)?;
            match u.type_ {
                CALLBACKTYPE_nmi => Ok(0),
                CALLBACKTYPE_event | CALLBACKTYPE_failsafe | CALLBACKTYPE_syscall | CALLBACKTYPE_syscall32
                | CALLBACKTYPE_sysenter => Err(Errno::EINVAL),
                _ => Err(Errno::ENOSYS),
            }
        }
        _ => Err(Errno::ENOSYS),
    }
}

pub fn stack_switch(d: &mut Domain, ss: u64, sp: u64) -> HcResult {
    d.vcpus[d.cur_vcpu].kernel_ss = ss | 3;
    d.vcpus[d.cur_vcpu].kernel_sp = sp;
    Ok(0)
}

pub fn set_segment_base(d: &mut Domain, which: u32, base: u64) -> HcResult {
    match which {
        SEGBASE_FS | SEGBASE_GS_USER | SEGBASE_GS_KERNEL if !canonical(base) => Err(Errno::EINVAL),
        SEGBASE_FS => {
            cpu::set_fs_base(base);
            d.vcpus[d.cur_vcpu].fs_base = base;
            Ok(0)
        }
        SEGBASE_GS_USER => {
            d.vcpus[d.cur_vcpu].gs_base_user = base;
            if !d.vcpus[d.cur_vcpu].kernel_mode {
                cpu::set_gs_base(base);
            }
            Ok(0)
        }
        SEGBASE_GS_KERNEL => {
            d.vcpus[d.cur_vcpu].gs_base_kernel = base;
            if d.vcpus[d.cur_vcpu].kernel_mode {
                cpu::set_gs_base(base);
            }
            Ok(0)
        }
        // Loading the user GS selector: Xen's fixup loads the null selector when the CPU
        // refuses the given one, so the call always succeeds; either way the user GS
        // base becomes the descriptor's (flat: 0).
        SEGBASE_GS_USER_SEL => {
            d.vcpus[d.cur_vcpu].gs_base_user = 0;
            if !d.vcpus[d.cur_vcpu].kernel_mode {
                cpu::set_gs_base(0);
            }
            Ok(0)
        }
        _ => Err(Errno::EINVAL),
    }
}

pub fn fpu_taskswitch(d: &mut Domain, set: u64) -> HcResult {
    d.vcpus[d.cur_vcpu].fpu_ts = set != 0;
    cpu::set_ts(d.vcpus[d.cur_vcpu].fpu_ts);
    Ok(0)
}

/// The vm_assist types a 64-bit PV guest may use (Xen's VM_ASSIST_VALID).
pub(crate) const VM_ASSIST_VALID: u64 = (1 << x::VMASST_TYPE_4gb_segments)
    | (1 << x::VMASST_TYPE_4gb_segments_notify)
    | (1 << x::VMASST_TYPE_writable_pagetables)
    | (1 << x::VMASST_TYPE_pae_extended_cr3)
    | (1 << x::VMASST_TYPE_architectural_iopl)
    | (1 << x::VMASST_TYPE_runstate_update_flag)
    | (1 << x::VMASST_TYPE_m2p_strict);

pub fn vm_assist(d: &mut Domain, cmd: u32, kind: u32) -> HcResult {
    if kind >= 64 || VM_ASSIST_VALID & (1 << kind) == 0 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        x::VMASST_CMD_enable => d.vm_assist |= 1 << kind,
        x::VMASST_CMD_disable => d.vm_assist &= !(1 << kind),
        _ => return Err(Errno::ENOSYS),
    }
    Ok(0)
}

/// `set_timer_op(timeout)`: 0 cancels; a past deadline fires at once.
pub fn set_timer_op(d: &mut Domain, timeout: u64) -> HcResult {
    d.vcpus[d.cur_vcpu].timer_deadline = (timeout != 0).then_some(timeout);
    Ok(0)
}

/// The longest periodic timer Xen accepts (`STIME_DELTA_MAX`).
const STIME_DELTA_MAX: u64 = (1 << 62) - 1;

/// `vcpu_op(cmd, vcpu, arg)` on vCPU `vcpu` of the calling domain (Xen's
/// `common_vcpu_op`, in its order of checks): `-ENOENT` for a vCPU the domain does not
/// have.
pub fn vcpu_op(d: &mut Domain, guest: &GuestView, cmd: u32, vcpu: u64, arg: u64) -> HcResult {
    d.vcpu_mut(vcpu)?;
    let n = vcpu as usize;
    let is_current = n == d.cur_vcpu;
    match cmd {
        VCPUOP_initialise => {
            if d.vcpus[n].vcpu_info_maddr == 0 {
                return Err(Errno::EINVAL);
            }
            let c: xen_abi::arch_x86_64::VcpuGuestContext = guest.read(arg)?;
            if d.vcpus[n].initialised {
                return Err(Errno::EEXIST);
            }
            crate::pv::domctl::vcpu::load_context(d, n, &c)?;
            Ok(0)
        }
        VCPUOP_up => {
            let v = &mut d.vcpus[n];
            if !v.initialised {
                return Err(Errno::EINVAL);
            }
            if !v.online {
                v.online = true;
                v.run = RunState::Runnable;
                v.runstate.enter(RUNSTATE_runnable, clock::now_ns());
            }
            Ok(0)
        }
        VCPUOP_down => {
            // The last vCPU going down powers the domain off, as Xen.
            if !d.vcpus.iter().any(|v| v.id as usize != n && v.initialised && v.online) {
                d.ending = Some(xen_abi::sched::SHUTDOWN_poweroff);
                return Ok(0);
            }
            let v = &mut d.vcpus[n];
            if v.online {
                v.online = false;
                v.runstate.enter(RUNSTATE_offline, clock::now_ns());
            }
            Ok(0)
        }
        VCPUOP_is_up => Ok(u64::from(d.vcpus[n].initialised && d.vcpus[n].online)),
        VCPUOP_get_runstate_info => {
            guest.write(arg, &d.vcpus[n].runstate.snapshot(clock::now_ns()))?;
            Ok(0)
        }
        VCPUOP_register_runstate_memory_area => {
            let a: VcpuRegisterRunstateMemoryArea = guest.read(arg)?;
            if (HYPERVISOR_HOLE_START..xen_abi::arch_x86_64::HYPERVISOR_VIRT_END).contains(&a.addr) {
                return Err(Errno::EFAULT);
            }
            d.vcpus[n].runstate.area = Some(a.addr);
            // Xen writes it now, as far as it can (the address is not checked further).
            let snap = if is_current { d.vcpus[n].runstate.info } else { d.vcpus[n].runstate.snapshot(clock::now_ns()) };
            let _ = guest.write(a.addr, &snap);
            Ok(0)
        }
        VCPUOP_set_periodic_timer => {
            let t: VcpuSetPeriodicTimer = guest.read(arg)?;
            if t.period_ns < 1_000_000 || t.period_ns > STIME_DELTA_MAX {
                return Err(Errno::EINVAL);
            }
            d.vcpus[n].periodic_period = t.period_ns;
            Ok(0)
        }
        VCPUOP_stop_periodic_timer => {
            d.vcpus[n].periodic_period = 0;
            Ok(0)
        }
        VCPUOP_set_singleshot_timer => {
            if !is_current {
                return Err(Errno::EINVAL);
            }
            let t: VcpuSetSingleshotTimer = guest.read(arg)?;
            if t.flags & VCPU_SSHOTTMR_future != 0 && t.timeout_abs_ns < clock::now_ns() {
                return Err(Errno::ETIME);
            }
            d.vcpus[n].timer_deadline = Some(t.timeout_abs_ns);
            Ok(0)
        }
        VCPUOP_stop_singleshot_timer => {
            if !is_current {
                return Err(Errno::EINVAL);
            }
            d.vcpus[n].timer_deadline = None;
            Ok(0)
        }
        VCPUOP_register_vcpu_info => {
            // Xen's map_vcpu_info (common/domain.c).
            let r: VcpuRegisterVcpuInfo = guest.read(arg)?;
            let size = core::mem::size_of::<VcpuInfo>() as u64;
            if u64::from(r.offset) > 4096 - size || !r.offset.is_multiple_of(8) {
                return Err(Errno::ENXIO);
            }
            if d.vcpus[n].vcpu_info_ref.is_some() {
                return Err(Errno::EINVAL); // registered once already
            }
            // A writable type reference held until the vCPU goes: the frame can't
            // become a page table, and isn't freed if the guest gives it back.
            let held = crate::pv::mmu::with(|t, hw| t.get_frame_ref(hw, DomId(d.id), Mfn(r.mfn), true));
            let held = held.map_err(|_| Errno::EINVAL)?;
            let mut cur = [0u8; 64];
            if d.vcpus[n].vcpu_info_maddr != 0 {
                phys::read_bytes(d.vcpus[n].vcpu_info_maddr, &mut cur);
            }
            let new = (r.mfn << 12) + u64::from(r.offset);
            crate::pv::mmu::write_held(held, u64::from(r.offset), &cur);
            d.vcpus[n].vcpu_info_maddr = new;
            d.vcpus[n].vcpu_info_ref = Some(held);
            // Everything pending, so nothing is lost (a spurious upcall), as Xen.
            phys::write_bytes(new + core::mem::offset_of!(VcpuInfo, evtchn_pending_sel) as u64, &u64::MAX.to_le_bytes());
            phys::write_bytes(new + core::mem::offset_of!(VcpuInfo, evtchn_upcall_pending) as u64, &[1u8]);
            if is_current {
                event::update_time(d);
            }
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Where the non-canonical hole and the hypervisor's range start: a guest handle may
/// not point there (`guest_handle_okay`).
const HYPERVISOR_HOLE_START: u64 = 1 << 47;

/// `SCHEDOP_poll`: sleep until one of the listed ports is pending (masked or not), an
/// upcall is deliverable, or the timeout (absolute system time, 0 = none) passes. The
/// scheduler runs others meanwhile and wakes this vCPU (`event::wants_to_run`).
pub fn poll(d: &mut Domain, guest: &GuestView, arg: u64) -> HcResult {
    let p: xen_abi::sched::SchedPoll = guest.read(arg)?;
    if p.nr_ports > 128 {
        return Err(Errno::EINVAL);
    }
    if p.ports >= (1 << 47) && p.ports < xen_abi::arch_x86_64::HYPERVISOR_VIRT_END {
        return Err(Errno::EFAULT);
    }
    let mut ports = Vec::with_capacity(p.nr_ports as usize);
    for i in 0..u64::from(p.nr_ports) {
        let port: u32 = guest.read(p.ports.wrapping_add(4 * i))?;
        if port >= event::NR_EVENT_CHANNELS {
            return Err(Errno::EINVAL);
        }
        ports.push(port);
    }
    d.vcpus[d.cur_vcpu].poll_ports = ports;
    d.vcpus[d.cur_vcpu].run = RunState::Polling { timeout: p.timeout };
    Ok(0)
}

/// `SCHEDOP_block`: enable events and sleep until an upcall is deliverable.
pub fn block(d: &mut Domain) -> HcResult {
    trap::set_upcall_mask(d, false);
    d.vcpus[d.cur_vcpu].run = RunState::Blocked;
    Ok(0)
}

/// `physdev_op`: the I/O privilege level and bitmap of the vCPU; no physical devices
/// are routed to guests, so every other sub-op is unknown.
pub fn physdev_op(d: &mut Domain, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    use xen_abi::physdev::*;
    match cmd {
        PHYSDEVOP_set_iopl => {
            let a: PhysdevSetIopl = guest.read(arg)?;
            if a.iopl > 3 {
                return Err(Errno::EINVAL);
            }
            d.vcpus[d.cur_vcpu].iopl = a.iopl;
            Ok(0)
        }
        PHYSDEVOP_set_iobitmap => {
            // Xen's do_physdev_op: the handle checked as guest_handle_okay does (its
            // start outside the hypervisor's range), at most 65536 ports; the bitmap is
            // read on each I/O instruction (emul_priv::io_allowed).
            let a: PhysdevSetIobitmap = guest.read(arg)?;
            let handle_ok = a.bitmap < (1 << 47) || a.bitmap >= xen_abi::arch_x86_64::HYPERVISOR_VIRT_END;
            if !handle_ok || a.nr_ports > 65536 {
                return Err(Errno::EINVAL);
            }
            d.vcpus[d.cur_vcpu].iobmp = a.bitmap;
            d.vcpus[d.cur_vcpu].iobmp_limit = a.nr_ports;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
