//! Entries into the hypervisor that work for the running vCPU's own domain only: a
//! guest system call bounced to its kernel, an exception, and the hypercalls that touch
//! no other domain (`hypercall::local_kind`). They hold the domain table's read side and
//! their domain's own lock, so vCPUs of different domains do this work at the same time
//! on different CPUs; the page-type work inside takes the frame table's lock per
//! operation. What needs the scheduler or other domains goes to the write side.

use crate::arch::x86_64::trap::Regs;
use crate::pv::domain::Domain;
use crate::pv::hypercall::{self, After};
use crate::pv::{sched, trap};

/// How a local entry ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Done: the guest resumes with `regs` (its pending events delivered).
    Resume,
    /// Done, but the scheduler must look before the guest resumes (the time slice is
    /// over, the vCPU blocked or crashed, or a timer or another vCPU changed).
    Schedule,
    /// Not done: the entry needs the write side.
    NotLocal,
}

/// SYSCALL from ring 3.
pub fn syscall(regs: &mut Regs) -> Outcome {
    entry(regs, |d, regs| {
        if !d.vcpus[d.cur_vcpu].kernel_mode {
            trap::bounce_syscall(d, regs);
            return Some(After::Continue);
        }
        let after = hypercall::local_kind(regs, d.id)?;
        hypercall::dispatch_local(d, regs);
        Some(after)
    })
}

/// An exception from ring 3 (interrupts are the scheduler's: they go to the write side).
pub fn exception(regs: &mut Regs) -> Outcome {
    if regs.entry_vector >= 32 {
        return Outcome::NotLocal;
    }
    entry(regs, |d, regs| {
        trap::guest_exception(d, regs);
        Some(After::Continue)
    })
}

/// Runs `work` for the vCPU this CPU runs, under its domain's lock; `work` answers None
/// before changing anything if the entry is not local.
fn entry(regs: &mut Regs, work: impl FnOnce(&mut Domain, &mut Regs) -> Option<After>) -> Outcome {
    let guard = sched::read();
    let Some(doms) = guard.as_ref() else { return Outcome::NotLocal };
    let Some(((id, v), slice_over)) = doms.this_cpu() else { return Outcome::NotLocal };
    let Some(mut d) = doms.lock_running((id, v)) else { return Outcome::NotLocal };
    d.cur_vcpu = v;
    let Some(after) = work(&mut d, regs) else { return Outcome::NotLocal };
    if after == After::Schedule || slice_over || d.ending.is_some() || !sched::runnable(&d, v) {
        return Outcome::Schedule;
    }
    trap::deliver_events(&mut d, regs);
    Outcome::Resume
}
