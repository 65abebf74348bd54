//! Hypercall dispatch: one table, Xen's numbers, Xen's errno values. Arguments arrive in
//! rdi, rsi, rdx, r10, r8; the result goes back in rax. Every pointer goes through the
//! checked guest-memory helpers; unknown hypercalls and sub-ops answer -ENOSYS.

pub mod misc;
pub mod sysctl;

use crate::pv::domain::Domain;
use crate::pv::sched::Domains;
use crate::pv::{event, grant, mmu, trap};
use crate::arch::x86_64::guest::GuestView;
use xen_abi::arch_x86_64::HYPERVISOR_VIRT_START;
use crate::arch::x86_64::trap::Regs;
use crate::println;
use xen_abi::errno::Errno;
use xen_abi::hypercall::Hypercall;
use xen_abi::{features as feat, sched, version as ver, xen};

/// What a hypercall handler returns: the value for rax, or an errno.
pub type HcResult = Result<u64, Errno>;

/// Our version: the interface is Xen 4.17's.
const XEN_MAJOR: u64 = 4;
const XEN_MINOR: u64 = 17;
const EXTRAVERSION: &[u8] = b".0-xen-core";

/// What a handler that bounds its work per entry into the hypervisor returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Finished: the value for rax.
    Done(u64),
    /// Stopped part-way (Xen's `hypercall_create_continuation`): the guest makes the
    /// same hypercall again with these arguments (its list advanced, its count reduced)
    /// the next time it runs, so other vCPUs and domains run in between.
    More([u64; 5]),
}

/// A bounded handler's result.
pub type StepResult = Result<Step, Errno>;

/// Xen's `array_access_ok` for a guest array (`guest_handle_okay`): the start must be
/// outside the hypervisor's hole (a 32-bit count times a small size can't wrap).
pub fn array_ok(ptr: u64) -> Result<(), Errno> {
    if ((1 << 47)..crate::arch::x86_64::guest::HYPERVISOR_VIRT_END).contains(&ptr) {
        return Err(Errno::EFAULT);
    }
    Ok(())
}

pub fn dispatch(doms: &mut Domains, regs: &mut Regs) {
    let a = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
    let nr = regs.rax;
    let result = match Hypercall::from_number(nr) {
        Some(Hypercall::Iret) => {
            // No return value: the frame is replaced (or the domain crashed).
            trap::do_iret(doms.cur(), regs);
            return;
        }
        Some(h) => call(doms, h, a),
        None => Err(Errno::ENOSYS),
    };
    set_result(regs, nr, result);
}

/// What the scheduler must do after a hypercall that works for the calling domain
/// alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    /// Nothing: the vCPU goes on.
    Continue,
    /// Look again: the call may have changed a timer or another vCPU's state.
    Schedule,
}

/// Whether the hypercall in `regs` works for domain `me` alone, touching no other
/// domain, so that it runs under that domain's own lock (`pv::local`); None for those
/// that reach other domains or the scheduler (event channels, grants, scheduling,
/// multicalls, the toolstack's operations), which run under the domain table's write
/// side.
pub fn local_kind(regs: &Regs, me: u16) -> Option<After> {
    kind_of(Hypercall::from_number(regs.rax), [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8], me)
}

/// `local_kind` of hypercall `h` with arguments `a` (a multicall's entries are
/// judged one by one: `multicall_local`).
fn kind_of(h: Option<Hypercall>, a: [u64; 5], me: u16) -> Option<After> {
    let Some(h) = h else { return Some(After::Continue) };
    match h {
        // Unmasking may make another of the caller's vCPUs' upcall deliverable.
        Hypercall::EventChannelOp if event::hypercall::is_own_domain_op(a[0] as u32) => {
            Some(if a[0] as u32 == xen_abi::event_channel::EVTCHNOP_unmask { After::Schedule } else { After::Continue })
        }
        Hypercall::SchedOp if a[0] as u32 == sched::SCHEDOP_yield => Some(After::Schedule),
        Hypercall::EventChannelOp
        | Hypercall::GrantTableOp
        | Hypercall::Multicall
        | Hypercall::Sysctl
        | Hypercall::Domctl => None,
        // Blocking, polling and shutting down change only the caller's vCPU and domain;
        // the scheduler then looks (yield and remote shutdown reach the scheduler's or
        // another domain's state).
        Hypercall::SchedOp => {
            matches!(a[0] as u32, sched::SCHEDOP_block | sched::SCHEDOP_poll | sched::SCHEDOP_shutdown).then_some(After::Schedule)
        }
        Hypercall::MemoryOp if crate::pv::domctl::memory::handles(a[0]) => None,
        Hypercall::MmuUpdate | Hypercall::MmuextOp if crate::pv::domctl::foreign::names_other(me, a[3]) => None,
        Hypercall::SetTimerOp | Hypercall::VcpuOp => Some(After::Schedule),
        _ => Some(After::Continue),
    }
}

/// A multicall whose entries (the first `MULTICALL_BATCH`, those this entry into the
/// hypervisor runs) are all local, run with only the calling domain; None, with
/// nothing done, if one is not (or can't be read: the write side answers that). An
/// entry another vCPU of the guest rewrites meanwhile to a non-local call gets -ENOSYS:
/// the guest raced itself.
pub fn multicall_local(d: &mut Domain, regs: &mut Regs) -> Option<After> {
    let (list, count) = (regs.rdi, regs.rsi);
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
    let size = core::mem::size_of::<xen::MulticallEntry>() as u64;
    let mut after = After::Continue;
    for i in 0..u64::from(count as u32).min(MULTICALL_BATCH) {
        let e: xen::MulticallEntry = guest.read(list.wrapping_add(i.wrapping_mul(size))).ok()?;
        let h = Hypercall::from_number(e.op);
        if matches!(h, Some(Hypercall::Multicall | Hypercall::Iret)) {
            return None;
        }
        if kind_of(h, [e.args[0], e.args[1], e.args[2], e.args[3], e.args[4]], d.id)? == After::Schedule {
            after = After::Schedule;
        }
    }
    let me = d.id;
    let result = multicall(&guest, list, count, |h, a| match kind_of(Some(h), a, me) {
        Some(_) => call_local(d, &guest, h, a),
        None => Err(Errno::ENOSYS),
    });
    set_result(regs, xen_abi::hypercall::HYPERVISOR_multicall, result);
    Some(after)
}

/// `XENMEM_decrease_reservation` of the caller's own frames, with only the caller; None,
/// with nothing done, if it names another domain (a privileged caller may: the write
/// side does that) or its argument can't be read.
pub fn decrease_reservation_local(d: &mut Domain, regs: &mut Regs) -> Option<After> {
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
    let r: xen_abi::memory::XenMemoryReservation = guest.read(regs.rsi).ok()?;
    if r.domid != xen::DOMID_SELF.0 && r.domid != d.id {
        return None;
    }
    let result = mmu::memory::decrease_reservation(d, &guest, regs.rdi, regs.rsi);
    set_result(regs, regs.rax, result);
    Some(After::Continue)
}

/// Runs a hypercall `local_kind` accepted, with only the calling domain.
pub fn dispatch_local(d: &mut Domain, regs: &mut Regs) {
    let a = [regs.rdi, regs.rsi, regs.rdx, regs.r10, regs.r8];
    let nr = regs.rax;
    let result = match Hypercall::from_number(nr) {
        Some(Hypercall::Iret) => {
            trap::do_iret(d, regs);
            return;
        }
        Some(h) => {
            let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
            call_local(d, &guest, h, a)
        }
        None => Err(Errno::ENOSYS),
    };
    set_result(regs, nr, result);
}

pub fn set_result(regs: &mut Regs, nr: u64, result: StepResult) {
    match result {
        Ok(Step::Done(v)) => regs.rax = v,
        Ok(Step::More(args)) => continuation(regs, nr, args),
        Err(e) => regs.rax = e.to_rax(),
    }
}

/// Sets the guest up to make hypercall `nr` again with `args`: its SYSCALL (2 bytes,
/// in the hypercall page or inline) is executed again when it next runs; rax holds
/// the number (Xen's `hypercall_create_continuation` for a 64-bit PV vCPU).
fn continuation(regs: &mut Regs, nr: u64, args: [u64; 5]) {
    regs.rax = nr;
    regs.rdi = args[0];
    regs.rsi = args[1];
    regs.rdx = args[2];
    regs.r10 = args[3];
    regs.r8 = args[4];
    regs.rip = regs.rip.wrapping_sub(2);
}

fn call(doms: &mut Domains, h: Hypercall, a: [u64; 5]) -> StepResult {
    let guest = GuestView { l4_mfn: { let d = doms.cur(); d.vcpus[d.cur_vcpu].current_l4() } };
    match h {
        Hypercall::EventChannelOp => return event::hypercall::event_channel_op(doms, &guest, a[0] as u32, a[1]).map(Step::Done),
        Hypercall::GrantTableOp => return grant::grant_table_op(doms, &guest, a[0] as u32, a[1], a[2]),
        Hypercall::SchedOp => return sched_op(doms, &guest, a[0] as u32, a[1]).map(Step::Done),
        Hypercall::Multicall => return multicall(&guest, a[0], a[1], |h, args| call(doms, h, args)),
        Hypercall::Sysctl => return sysctl::sysctl(doms, &guest, a[0]).map(Step::Done),
        Hypercall::Domctl => return crate::pv::domctl::domctl(doms, &guest, a[0]).map(Step::Done),
        // The toolstack's memory ops and foreign MMU ops (`pv::domctl`).
        Hypercall::MemoryOp if crate::pv::domctl::memory::handles(a[0]) => {
            return crate::pv::domctl::memory::memory_op(doms, &guest, a[0], a[1])
        }
        Hypercall::MmuUpdate if crate::pv::domctl::foreign::is_foreign(doms, a[3]) => {
            return crate::pv::domctl::foreign::mmu_update(doms, &guest, a[0], a[1], a[2], a[3])
        }
        Hypercall::MmuextOp if crate::pv::domctl::foreign::is_foreign(doms, a[3]) => {
            return crate::pv::domctl::foreign::mmuext_op(doms, &guest, a[0], a[1], a[2], a[3])
        }
        _ => {}
    }
    let d = doms.cur();
    call_local(d, &guest, h, a)
}

/// The hypercalls that need only the calling domain.
fn call_local(d: &mut Domain, guest: &GuestView, h: Hypercall, a: [u64; 5]) -> StepResult {
    match h {
        Hypercall::ConsoleIo => return console_io(d, guest, a[0] as u32, a[1], a[2]),
        Hypercall::MemoryOp => return mmu::memory::memory_op(d, guest, a[0], a[1]),
        Hypercall::MmuUpdate => return mmu::hypercall::mmu_update(d, guest, a[0], a[1], a[2], a[3]),
        Hypercall::MmuextOp => return mmu::hypercall::mmuext_op(d, guest, a[0], a[1], a[2], a[3]),
        _ => {}
    }
    match h {
        Hypercall::XenVersion => xen_version(d, guest, a[0] as u32, a[1]),
        Hypercall::SetTrapTable => misc::set_trap_table(d, guest, a[0]),
        Hypercall::SetCallbacks => misc::set_callbacks(d, a[0], a[1], a[2]),
        Hypercall::CallbackOp => misc::callback_op(d, guest, a[0] as u32, a[1]),
        Hypercall::StackSwitch => misc::stack_switch(d, a[0], a[1]),
        Hypercall::SetSegmentBase => misc::set_segment_base(d, a[0] as u32, a[1]),
        Hypercall::FpuTaskswitch => misc::fpu_taskswitch(d, a[0]),
        Hypercall::VmAssist => misc::vm_assist(d, a[0] as u32, a[1] as u32),
        Hypercall::SetTimerOp => misc::set_timer_op(d, a[0]),
        Hypercall::VcpuOp => misc::vcpu_op(d, guest, a[0] as u32, a[1], a[2]),
        Hypercall::UpdateVaMapping => mmu::hypercall::update_va_mapping(d, guest, a[0], a[1], a[2]),
        Hypercall::PhysdevOp => misc::physdev_op(d, guest, a[0] as u32, a[1]),
        Hypercall::SetGdt => mmu::descriptors::set_gdt(d, guest, a[0], a[1]),
        Hypercall::UpdateDescriptor => mmu::descriptors::update_descriptor(d, a[0], a[1]),
        Hypercall::SchedOp => sched_op_local(d, guest, a[0] as u32, a[1]),
        Hypercall::EventChannelOp => event::hypercall::own_domain_op(d, guest, a[0] as u32, a[1]),
        Hypercall::SetDebugreg => crate::pv::trap::emul_priv::set_debugreg(d, a[0], a[1]),
        Hypercall::GetDebugreg => crate::pv::trap::emul_priv::get_debugreg(d, a[0]),
        _ => Err(Errno::ENOSYS),
    }
    .map(Step::Done)
}

/// Multicall entries run per entry into the hypervisor; the rest continue (Xen checks
/// `hypercall_preempt_check` between entries).
pub const MULTICALL_BATCH: u64 = 64;

/// `multicall(entries, nr_calls)` (Xen's `do_multicall`): each entry's result is written
/// back; a list outside the guest's range, or an entry that can't be read or whose
/// result can't be written, ends the batch with -EFAULT. A nested multicall is -EINVAL
/// (re-entry), an iret -ENOSYS. At most `MULTICALL_BATCH` entries per entry into the
/// hypervisor, the rest as a continuation; an entry that itself stops part-way has its
/// continuation written over it (number and arguments, as Xen's `xlat_multicall_entry`)
/// and the multicall continues from that entry.
fn multicall(guest: &GuestView, list: u64, count: u64, mut call: impl FnMut(Hypercall, [u64; 5]) -> StepResult) -> StepResult {
    let count = u64::from(count as u32);
    let size = core::mem::size_of::<xen::MulticallEntry>() as u64;
    array_ok(list)?;
    for i in 0..count {
        let at = list.wrapping_add(i.wrapping_mul(size));
        let more = |i: u64| Step::More([list.wrapping_add(i.wrapping_mul(size)), count - i, 0, 0, 0]);
        if i == MULTICALL_BATCH {
            return Ok(more(i));
        }
        let mut e: xen::MulticallEntry = guest.read(at)?;
        let result = match Hypercall::from_number(e.op) {
            Some(Hypercall::Multicall) => Err(Errno::EINVAL),
            Some(Hypercall::Iret) | None => Err(Errno::ENOSYS),
            Some(h) => call(h, [e.args[0], e.args[1], e.args[2], e.args[3], e.args[4]]),
        };
        match result {
            Ok(Step::More(args)) => {
                // The entry's result is the hypercall number meanwhile, as from Xen.
                e.result = e.op;
                e.args[..5].copy_from_slice(&args);
                guest.write(at, &e)?;
                return Ok(more(i));
            }
            Ok(Step::Done(v)) => e.result = v,
            Err(err) => e.result = err.to_rax(),
        }
        // Only the result field goes back (Xen's `__copy_field_to_guest`).
        guest.write(at + 8, &e.result)?;
    }
    Ok(Step::Done(0))
}

/// Bytes of one `console_io` write done per entry into the hypervisor; the rest continue.
pub const CONSOLE_BATCH: u64 = 4096;

fn console_io(d: &mut Domain, guest: &GuestView, cmd: u32, count: u64, buf: u64) -> StepResult {
    // Xen 4.17's dummy XSM (`xsm_console_io`, include/xsm/dummy.h): only the control
    // domain (or a domain marked `is_console`, which we have none of) may use the
    // console; other domains get -EPERM for every command, before it is looked at. Only a
    // CONFIG_VERBOSE_DEBUG build (not Debian's release build) lets them write.
    if !d.privileged {
        return Err(Errno::EPERM);
    }
    // `count` is an unsigned int in Xen.
    let count = u64::from(count as u32);
    match cmd {
        xen::CONSOLEIO_write => {
            // Xen copies in small chunks and stops at the first unreadable byte; a long
            // write continues with the buffer advanced (`guest_console_write`).
            let mut chunk = [0u8; 128];
            let mut done = 0u64;
            while done < count {
                if done == CONSOLE_BATCH {
                    return Ok(Step::More([u64::from(cmd), count - done, buf.wrapping_add(done), 0, 0]));
                }
                let n = (count - done).min(chunk.len() as u64) as usize;
                guest.copy_from(buf.wrapping_add(done), &mut chunk[..n])?;
                guest_console_write(d, &chunk[..n]);
                done += n as u64;
            }
            Ok(Step::Done(0))
        }
        // Serial input goes to the hardware domain (Xen's initial console focus).
        xen::CONSOLEIO_read => {
            // A privileged domain that isn't the hardware domain has no input focus.
            if !d.hardware {
                return Ok(Step::Done(0));
            }
            let mut chunk = [0u8; 128];
            let n = crate::console::read_input(&mut chunk[..count.min(128) as usize]);
            guest.copy_to(buf, &chunk[..n])?;
            Ok(Step::Done(n as u64))
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// The hardware domain writes straight to the console (it may be interactive); other
/// domains' output goes out a line at a time with a `(dN) ` prefix, as Xen prints it
/// with `guest_loglvl=all`.
pub(crate) fn guest_console_write(d: &mut Domain, bytes: &[u8]) {
    if d.hardware {
        crate::console::write_raw(bytes);
        return;
    }
    for &b in bytes {
        // A full line (1 KiB, or no heap to grow it) goes out as if it ended here; the
        // buffer keeps its capacity, so a domain's output needs the heap only once.
        let text = b != b'\n' && b != b'\r';
        let full = text && (d.console_line.len() >= 1024 || d.console_line.try_reserve(1).is_err());
        if b == b'\n' || full {
            write_line(d.id, &d.console_line);
            d.console_line.clear();
        }
        if text && d.console_line.len() < d.console_line.capacity() {
            d.console_line.push(b);
        }
    }
}

/// Writes `(dN) ` and `text` for domain `id` as one line, without the heap (a guest's
/// output must not need it).
fn write_line(id: u16, text: &[u8]) {
    let mut digits = [0u8; 5];
    let mut n = id;
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    crate::console::write_line(&[b"(d", &digits[i..], b") ", text, b"\n"]);
}

fn copy_string(guest: &GuestView, dst: u64, s: &[u8], len: usize) -> HcResult {
    let mut buf = [0u8; 1024];
    let n = s.len().min(len - 1);
    buf[..n].copy_from_slice(&s[..n]);
    guest.copy_to(dst, &buf[..len])?;
    Ok(0)
}

fn xen_version(d: &Domain, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    match cmd {
        ver::XENVER_version => Ok((XEN_MAJOR << 16) | XEN_MINOR),
        ver::XENVER_extraversion => copy_string(guest, arg, EXTRAVERSION, ver::XEN_EXTRAVERSION_LEN),
        ver::XENVER_capabilities => copy_string(guest, arg, b"xen-3.0-x86_64 ", ver::XEN_CAPABILITIES_INFO_LEN),
        ver::XENVER_changeset => copy_string(guest, arg, b"xen-core", ver::XEN_CHANGESET_INFO_LEN),
        ver::XENVER_compile_info => {
            let mut ci = ver::XenCompileInfo::default();
            let put = |dst: &mut [u8], s: &[u8]| dst[..s.len()].copy_from_slice(s);
            put(&mut ci.compiler, b"rustc");
            put(&mut ci.compile_by, b"xen-core");
            put(&mut ci.compile_domain, b"xen-core");
            put(&mut ci.compile_date, b"unknown");
            guest.write(arg, &ci)?;
            Ok(0)
        }
        ver::XENVER_platform_parameters => {
            guest.write(arg, &ver::XenPlatformParameters { virt_start: HYPERVISOR_VIRT_START })?;
            Ok(0)
        }
        ver::XENVER_get_features => {
            let mut fi: ver::XenFeatureInfo = guest.read(arg)?;
            fi.submap = if fi.submap_idx == 0 { features(d) } else { 0 };
            guest.write(arg, &fi)?;
            Ok(0)
        }
        ver::XENVER_pagesize => Ok(4096),
        ver::XENVER_guest_handle => guest.copy_to(arg, &[0u8; ver::XEN_DOMAIN_HANDLE_LEN]).map(|_| 0),
        ver::XENVER_commandline => {
            if !d.privileged {
                return Err(Errno::EPERM);
            }
            copy_string(guest, arg, crate::start::hypervisor_cmdline().as_bytes(), ver::XEN_COMMANDLINE_LEN)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// `XENVER_get_features` submap 0 for a 64-bit PV guest, as Xen 4.17 answers it.
fn features(d: &Domain) -> u32 {
    use feat::XenFeatures as F;
    let mut f = F::MMU_PT_UPDATE_PRESERVE_AD
        | F::HIGHMEM_ASSIST
        | F::GNTTAB_MAP_AVAIL_BITS
        | F::MEMORY_OP_VNODE_SUPPORTED
        | F::DIRECT_MAPPED;
    f.set(F::DOM0, d.privileged);
    f.bits()
}

fn sched_op(doms: &mut Domains, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    let d = doms.cur();
    match cmd {
        sched::SCHEDOP_remote_shutdown => {
            let s: sched::SchedRemoteShutdown = guest.read(arg)?;
            let caller_privileged = d.privileged;
            // Xen's XSM_DM_PRIV: only the control domain (or a domain's device model,
            // which we have none of), even for the caller itself.
            let target = doms.get_mut(s.domain_id).ok_or(Errno::ESRCH)?;
            if !caller_privileged {
                return Err(Errno::EPERM);
            }
            shutdown(target, s.reason);
            Ok(0)
        }
        _ => sched_op_local(d, guest, cmd, arg),
    }
}

/// The scheduling operations that act on the caller alone.
fn sched_op_local(d: &mut Domain, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    match cmd {
        sched::SCHEDOP_yield => {
            crate::pv::sched::yield_this_cpu();
            Ok(0)
        }
        sched::SCHEDOP_block => misc::block(d),
        sched::SCHEDOP_poll => misc::poll(d, guest, arg),
        sched::SCHEDOP_shutdown => {
            let s: sched::SchedShutdown = guest.read(arg)?;
            shutdown(d, s.reason);
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Marks the domain as ending; the scheduler destroys it before the next guest runs.
/// A suspend (no toolstack to resume it) is a no-op, as without a listener in Xen.
fn shutdown(d: &mut Domain, reason: u32) {
    if reason != sched::SHUTDOWN_suspend {
        d.ending = Some(reason);
    }
}

/// The hardware domain of a single-domain boot shutting down takes the machine with it,
/// with Xen's words.
pub fn hardware_domain_shutdown(d: &Domain, reason: u32) -> ! {
    use crate::arch::x86_64::qemu::{exit, ExitCode};
    match reason {
        sched::SHUTDOWN_poweroff => {
            println!("Hardware Dom{} halted: halting machine", d.id);
            exit(ExitCode::Success);
        }
        sched::SHUTDOWN_reboot => {
            println!("Hardware Dom{} shutdown: rebooting machine", d.id);
            exit(ExitCode::Success);
        }
        _ => {
            println!("Hardware Dom{} crashed: rebooting machine in 5 seconds.", d.id);
            exit(ExitCode::Failure);
        }
    }
}
