//! Running 64-bit PV guests: domains and vCPUs, the builder, the scheduler, hypercall
//! dispatch, and delivery of traps and events into the guest.

pub mod console_ring;
pub mod credit;
pub mod domctl;
pub mod domain;
pub mod event;
pub mod grant;
pub mod hypercall;
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
    let busy = {
        let mut guard = sched::lock();
        let Some(doms) = guard.as_mut() else { no_domain(format_args!("SYSCALL from ring 3"), regs) };
        doms.enter();
        let d = doms.cur();
        if d.vcpus[d.cur_vcpu].kernel_mode {
            hypercall::dispatch(doms, regs);
        } else {
            trap::bounce_syscall(doms.cur(), regs);
        }
        sched::exit_to_guest(doms, regs)
    };
    if !busy {
        sched::idle(regs);
    }
}

/// An exception or interrupt that arrived while a guest ran.
pub fn guest_trap(regs: &mut Regs) {
    let busy = {
        let mut guard = sched::lock();
        let Some(doms) = guard.as_mut() else { no_domain(format_args!("trap {} from ring 3", regs.entry_vector), regs) };
        doms.enter();
        trap::guest_exception(doms.cur(), regs);
        sched::exit_to_guest(doms, regs)
    };
    if !busy {
        sched::idle(regs);
    }
}
