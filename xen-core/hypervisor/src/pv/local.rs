//! Entries into the hypervisor on the domain table's read side: a guest system call
//! bounced to its kernel, an exception, and the hypercalls that touch no other domain
//! (`hypercall::local_kind`) hold their domain's own lock; an event sent to another
//! domain then takes that domain's lock alone; grant-table ops and the event-channel ops
//! between domains lock the caller and the domains they name, in ascending id order
//! (`locked_op`). vCPUs of different domains do this work at the same time on different
//! CPUs; the page-type work inside takes the frame table's lock per operation. What
//! needs the scheduler, and the toolstack's operations, go to the write side.

use crate::arch::x86_64::trap::Regs;
use crate::pv::domain::Domain;
use crate::pv::hypercall::{self, After, Step, StepResult};
use xen_abi::errno::Errno;
use crate::arch::x86_64::guest::GuestView;
use crate::pv::domain::set::DomainSet;
use crate::pv::grant;
use crate::pv::{event, sched, trap};
use alloc::vec::Vec;
use xen_abi::event_channel::EVTCHNOP_send;
use xen_abi::hypercall::{HYPERVISOR_event_channel_op, HYPERVISOR_grant_table_op, HYPERVISOR_memory_op, HYPERVISOR_multicall};
use xen_abi::memory::{MEMOP_CMD_MASK, XENMEM_decrease_reservation};

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
    if regs.rax == HYPERVISOR_grant_table_op {
        if let Some(outcome) = grant_op(regs) {
            return outcome;
        }
    }
    if regs.rax == HYPERVISOR_event_channel_op && event::hypercall::is_multi_domain_op(regs.rdi as u32) {
        if let Some(outcome) = event_op(regs) {
            return outcome;
        }
    }
    entry(regs, |d, regs| {
        if !d.vcpus[d.cur_vcpu].kernel_mode {
            trap::bounce_syscall(d, regs);
            return Some(Then::Resume(After::Continue));
        }
        if regs.rax == HYPERVISOR_event_channel_op && regs.rdi as u32 == EVTCHNOP_send {
            return event::hypercall::send_local(d, regs);
        }
        if regs.rax == HYPERVISOR_memory_op && (regs.rdi & u64::from(MEMOP_CMD_MASK)) as u32 == XENMEM_decrease_reservation {
            return hypercall::decrease_reservation_local(d, regs).map(Then::Resume);
        }
        if regs.rax == HYPERVISOR_multicall {
            return hypercall::multicall_local(d, regs).map(Then::Resume);
        }
        let after = hypercall::local_kind(regs, d.id)?;
        hypercall::dispatch_local(d, regs);
        Some(Then::Resume(after))
    })
}

/// An exception from ring 3 (interrupts are the scheduler's: they go to the write side).
pub fn exception(regs: &mut Regs) -> Outcome {
    if regs.entry_vector >= 32 {
        return Outcome::NotLocal;
    }
    entry(regs, |d, regs| {
        trap::guest_exception(d, regs);
        Some(Then::Resume(After::Continue))
    })
}

/// A hypercall that reaches other domains (`named` says which, read under the caller's
/// lock; `run` does it, None if it could not without another domain: nothing done):
/// the caller's lock and those of the named domains, taken in ascending id order. None,
/// with nothing done, if the SYSCALL came from guest user mode (a system call to
/// bounce, not a hypercall).
fn locked_op(
    regs: &mut Regs,
    named: impl FnOnce(&Domain, &GuestView, &Regs) -> Vec<u16>,
    run: impl FnOnce(&mut LockedSet<'_>, &GuestView, &Regs) -> Option<StepResult>,
) -> Option<Outcome> {
    let guard = sched::read();
    let Some(doms) = guard.as_ref() else { return Some(Outcome::NotLocal) };
    let Some(((me, v), slice_over)) = doms.this_cpu() else { return Some(Outcome::NotLocal) };
    let mut ids = {
        let Some(d) = doms.lock_id(me) else { return Some(Outcome::NotLocal) };
        let vcpu = d.vcpus.get(v)?;
        if !vcpu.kernel_mode {
            return None;
        }
        named(&d, &GuestView { l4_mfn: vcpu.current_l4() }, regs)
    };
    ids.push(me);
    ids.sort_unstable();
    ids.dedup();
    let mut set = LockedSet { me, table: doms, locked: doms.lock_ids(&ids) };
    let Some(d) = set.get_mut(me) else { return Some(Outcome::NotLocal) };
    // Another vCPU of the domain may have run in between.
    d.cur_vcpu = v;
    if !d.vcpus[v].kernel_mode {
        return Some(Outcome::NotLocal);
    }
    let guest = GuestView { l4_mfn: d.vcpus[v].current_l4() };
    let Some(result) = run(&mut set, &guest, regs) else { return Some(Outcome::NotLocal) };
    hypercall::set_result(regs, regs.rax, result);
    match set.get_mut(me) {
        Some(d) if !slice_over && d.ending.is_none() && sched::runnable(d, v) => {
            trap::deliver_events(d, regs);
            Some(Outcome::Resume)
        }
        _ => Some(Outcome::Schedule),
    }
}

/// A grant-table op with the domains it names (`grant::named_domains`).
fn grant_op(regs: &mut Regs) -> Option<Outcome> {
    let (cmd, arg, count) = (regs.rdi as u32, regs.rsi, regs.rdx);
    locked_op(
        regs,
        |d, guest, _| grant::named_domains(d, guest, cmd, arg, count),
        |set, guest, _| match grant::grant_table_op(set, guest, cmd, arg, count) {
            Err(Errno::ERESTART) => None,
            r => Some(r),
        },
    )
}

/// An event-channel op that sets up, closes or inspects a channel with another domain,
/// with that domain (`event::hypercall::named_domains`).
fn event_op(regs: &mut Regs) -> Option<Outcome> {
    let (cmd, arg) = (regs.rdi as u32, regs.rsi);
    locked_op(
        regs,
        |d, guest, _| event::hypercall::named_domains(d, guest, cmd, arg),
        |set, guest, _| match event::hypercall::event_channel_op(set, guest, cmd, arg) {
            Err(Errno::ERESTART) => None,
            r => Some(r.map(Step::Done)),
        },
    )
}

/// The domains a local grant operation locked (the caller among them).
struct LockedSet<'a> {
    me: u16,
    table: &'a sched::Domains,
    locked: Vec<(u16, spin::MutexGuard<'a, Domain>)>,
}

impl DomainSet for LockedSet<'_> {
    fn me(&self) -> u16 {
        self.me
    }
    fn cur(&mut self) -> &mut Domain {
        let me = self.me;
        self.get_mut(me).expect("the caller is locked and alive")
    }
    fn get_mut(&mut self, id: u16) -> Option<&mut Domain> {
        self.locked.iter_mut().find(|(i, _)| *i == id).map(|(_, g)| &mut **g).filter(|d| d.alive())
    }
    fn reachable(&self, id: u16) -> bool {
        self.locked.iter().any(|(i, _)| *i == id) || !self.table.exists(id)
    }
    fn pair(&mut self, other: u16) -> (&mut Domain, Option<&mut Domain>) {
        let me = self.me;
        let (mut mine, mut theirs) = (None, None);
        for (id, g) in self.locked.iter_mut() {
            if *id == me {
                mine = Some(&mut **g);
            } else if *id == other {
                theirs = Some(&mut **g);
            }
        }
        (mine.expect("the caller is locked"), theirs.filter(|d| d.alive()))
    }
}

/// What a local entry's work leaves to do once its domain's lock is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Then {
    /// Nothing more.
    Resume(After),
    /// Raise `port` of domain `dom` (an interdomain event channel's far end), under
    /// that domain's lock alone.
    Notify { dom: u16, port: u32 },
}

/// Runs `work` for the vCPU this CPU runs, under its domain's lock; `work` answers None
/// before changing anything if the entry is not local.
fn entry(regs: &mut Regs, work: impl FnOnce(&mut Domain, &mut Regs) -> Option<Then>) -> Outcome {
    let guard = sched::read();
    let Some(doms) = guard.as_ref() else { return Outcome::NotLocal };
    let Some(((id, v), slice_over)) = doms.this_cpu() else { return Outcome::NotLocal };
    let mut d = match doms.lock_id(id) {
        Some(d) => d,
        None => return Outcome::NotLocal,
    };
    d.cur_vcpu = v;
    let then = match work(&mut d, regs) {
        Some(t) => t,
        None => return Outcome::NotLocal,
    };
    let mut schedule = then == Then::Resume(After::Schedule) || slice_over || d.ending.is_some() || !sched::runnable(&d, v);
    if !schedule {
        trap::deliver_events(&mut d, regs);
    }
    drop(d);
    // The far end of an event channel (raised whatever this vCPU does next): one
    // domain's lock at a time, so two domains signalling each other from two CPUs never
    // wait on each other.
    if let Then::Notify { dom, port } = then {
        if let Some(far) = doms.lock_id(dom) {
            event::set_pending(&far, port);
            // The vCPU the port notifies, and any polling for it (SCHEDOP_poll), as
            // Xen's evtchn_port_set_pending does.
            let to = far.evtchn.notify_vcpu(port) as usize;
            for v in 0..far.vcpus.len() {
                if v == to || far.vcpus[v].polls(port) {
                    schedule |= doms.notify_vcpu(&far, v);
                }
            }
        }
    }
    if schedule {
        return Outcome::Schedule;
    }
    Outcome::Resume
}
