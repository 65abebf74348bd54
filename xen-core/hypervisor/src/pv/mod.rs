//! Running 64-bit PV guests: domains and vCPUs, the builder, the scheduler, hypercall
//! dispatch, and delivery of traps and events into the guest.

pub mod build;
pub mod console_ring;
mod descriptors;
pub mod destroy;
pub mod domctl;
pub mod domain;
mod emul_priv;
mod emulate;
pub mod events;
mod hc_event;
pub mod hc_grant;
pub mod hc_mem;
mod hc_misc;
mod hc_mmu;
mod hc_sysctl;
pub mod hypercall;
pub mod m2p;
pub mod mmu;
mod ptwr;
pub mod sched;
pub mod traps;
pub mod xenstore_setup;

use crate::arch::x86_64::trap::Regs;
use sched::Domains;
use spin::Mutex;

/// Every domain. One CPU, so one lock held from entry to exit.
pub static DOMAINS: Mutex<Option<Domains>> = Mutex::new(None);

fn no_domain(what: core::fmt::Arguments<'_>, regs: &Regs) -> ! {
    crate::println!("{what} with no domain running\n{regs}");
    crate::arch::x86_64::qemu::exit(crate::arch::x86_64::qemu::ExitCode::Failure);
}

/// SYSCALL from ring 3: a hypercall from guest kernel mode, or a guest system call.
pub fn guest_syscall(regs: &mut Regs) {
    let mut guard = DOMAINS.lock();
    let Some(doms) = guard.as_mut() else { no_domain(format_args!("SYSCALL from ring 3"), regs) };
    if doms.cur().vcpu.kernel_mode {
        hypercall::dispatch(doms, regs);
    } else {
        traps::bounce_syscall(doms.cur(), regs);
    }
    sched::exit_to_guest(doms, regs);
}

/// An exception or interrupt that arrived while a guest ran.
pub fn guest_trap(regs: &mut Regs) {
    let mut guard = DOMAINS.lock();
    let Some(doms) = guard.as_mut() else { no_domain(format_args!("trap {} from ring 3", regs.entry_vector), regs) };
    traps::guest_exception(doms.cur(), regs);
    sched::exit_to_guest(doms, regs);
}
