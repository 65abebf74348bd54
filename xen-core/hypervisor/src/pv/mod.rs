//! Running 64-bit PV guests: domains and vCPUs, the builder, the scheduler, hypercall
//! dispatch, and delivery of traps and events into the guest.

pub mod console_ring;
pub mod credit;
pub mod domctl;
pub mod domain;
pub mod event;
pub mod grant;
pub mod hypercall;
pub mod local;
pub mod mmu;
pub mod sched;
pub mod trap;

use crate::arch::x86_64::trap::Regs;
pub use sched::DOMAINS;

fn no_domain(what: core::fmt::Arguments<'_>, regs: &Regs) -> ! {
    crate::println!("{what} with no domain running\n{regs}");
    crate::arch::x86_64::qemu::exit(crate::arch::x86_64::qemu::ExitCode::Failure);
}

/// SYSCALL from ring 3: a hypercall from guest kernel mode, or a guest system call.
pub fn guest_syscall(regs: &mut Regs) {
    let outcome = local::syscall(regs);
    heavy(regs, outcome, |doms, regs| {
        let d = doms.cur();
        if d.vcpus[d.cur_vcpu].kernel_mode {
            hypercall::dispatch(doms, regs);
        } else {
            trap::bounce_syscall(doms.cur(), regs);
        }
    });
}

/// An exception or interrupt that arrived while a guest ran.
pub fn guest_trap(regs: &mut Regs) {
    let outcome = local::exception(regs);
    heavy(regs, outcome, |doms, regs| trap::guest_exception(doms.cur(), regs));
}

/// The write side's part of an entry: `work` if the local path did not do it, then
/// the scheduler, unless the local path let the guest resume.
fn heavy(regs: &mut Regs, outcome: local::Outcome, work: impl FnOnce(&mut sched::Domains, &mut Regs)) {
    if outcome == local::Outcome::Resume {
        return;
    }
    let busy = {
        let mut guard = sched::lock();
        let Some(doms) = guard.as_mut() else { no_domain(format_args!("entry {} from ring 3", regs.entry_vector), regs) };
        doms.enter();
        if outcome == local::Outcome::NotLocal {
            work(doms, regs);
        }
        sched::exit_to_guest(doms, regs)
    };
    if !busy {
        sched::idle(regs);
    }
}
