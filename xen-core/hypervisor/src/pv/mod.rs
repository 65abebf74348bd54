//! Running 64-bit PV guests: domain and vCPU state, the initial-domain builder, hypercall
//! dispatch, and delivery of traps and events into the guest.

pub mod build;
mod descriptors;
pub mod domain;
mod emulate;
pub mod events;
mod hc_event;
mod hc_mem;
mod hc_misc;
mod hc_mmu;
pub mod hypercall;
pub mod m2p;
pub mod mmu;
pub mod traps;

use crate::arch::x86_64::trap::Regs;
use domain::Domain;
use spin::Mutex;

/// The domains; one CPU and one domain (dom0) so far.
pub static DOM0: Mutex<Option<Domain>> = Mutex::new(None);

/// SYSCALL from ring 3: a hypercall from guest kernel mode, or a guest system call.
pub fn guest_syscall(regs: &mut Regs) {
    let mut guard = DOM0.lock();
    let Some(d) = guard.as_mut() else {
        crate::println!("SYSCALL from ring 3 with no domain running\n{regs}");
        crate::arch::x86_64::qemu::exit(crate::arch::x86_64::qemu::ExitCode::Failure);
    };
    if d.vcpu.kernel_mode {
        hypercall::dispatch(d, regs);
    } else {
        traps::bounce_syscall(d, regs);
    }
    traps::exit_to_guest(d, regs);
}

/// An exception or interrupt that arrived while a guest ran.
pub fn guest_trap(regs: &mut Regs) {
    let mut guard = DOM0.lock();
    let Some(d) = guard.as_mut() else {
        crate::println!("trap {} from ring 3 with no domain running\n{regs}", regs.entry_vector);
        crate::arch::x86_64::qemu::exit(crate::arch::x86_64::qemu::ExitCode::Failure);
    };
    traps::guest_exception(d, regs);
    traps::exit_to_guest(d, regs);
}
