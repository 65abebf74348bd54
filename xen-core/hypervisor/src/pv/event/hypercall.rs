//! `event_channel_op` (2-level ABI; FIFO sub-ops answer -ENOSYS so guests stay on 2L),
//! including channels between domains.

use crate::pv::event::{self, Port};
use crate::pv::hypercall::HcResult;
use crate::pv::domain::Domain;
use crate::pv::domain::set::DomainSet;
use crate::arch::x86_64::guest::GuestView;
use xen_abi::errno::Errno;
use xen_abi::event_channel::*;
use xen_abi::xen::{DOMID_SELF, NR_VIRQS};

/// Resolves `DOMID_SELF`; any other id must name a live domain (`ERESTART`, nothing
/// done, if the call did not lock it: `DomainSet::reach`).
fn resolve(doms: &mut impl DomainSet, dom: u16) -> Result<u16, Errno> {
    let id = if dom == DOMID_SELF.0 { doms.me() } else { dom };
    doms.reach(id)?;
    doms.get(id).map(|d| d.id).ok_or(Errno::ESRCH)
}

/// The sub-ops that reach another domain's ports or look at them (`pv::local` runs
/// them with that domain locked: `named_domains`).
pub fn is_multi_domain_op(cmd: u32) -> bool {
    matches!(cmd, EVTCHNOP_alloc_unbound | EVTCHNOP_bind_interdomain | EVTCHNOP_close | EVTCHNOP_status)
}

/// The domains sub-op `cmd` of caller `d` names, besides `d` (unreadable arguments name
/// none: the op answers -EFAULT).
pub fn named_domains(d: &Domain, guest: &GuestView, cmd: u32, arg: u64) -> alloc::vec::Vec<u16> {
    let ids = match cmd {
        EVTCHNOP_alloc_unbound => guest.read::<EvtchnAllocUnbound>(arg).map(|a| alloc::vec![a.dom, a.remote_dom]),
        EVTCHNOP_bind_interdomain => guest.read::<EvtchnBindInterdomain>(arg).map(|a| alloc::vec![a.remote_dom]),
        EVTCHNOP_status => guest.read::<EvtchnStatus>(arg).map(|a| alloc::vec![a.dom]),
        EVTCHNOP_close => guest.read::<EvtchnClose>(arg).map(|a| match d.evtchn.get(a.port) {
            Some(Port::Interdomain { remote_dom, .. }) => alloc::vec![remote_dom],
            _ => alloc::vec![],
        }),
        _ => Ok(alloc::vec![]),
    };
    let mut ids = ids.unwrap_or_default();
    ids.retain(|&id| id != d.id && id != DOMID_SELF.0);
    ids
}

fn valid(state: Option<Port>) -> Result<Port, Errno> {
    match state {
        Some(Port::Free) | Some(Port::Reserved) | None => Err(Errno::EINVAL),
        Some(p) => Ok(p),
    }
}

/// Closes `port` of the current domain: an interdomain peer goes back to unbound.
pub fn close_port(doms: &mut impl DomainSet, port: u32) -> Result<(), Errno> {
    let me = doms.me();
    let state = valid(doms.cur().evtchn.get(port))?;
    if let Port::Interdomain { remote_dom, .. } = state {
        doms.reach(remote_dom)?;
    }
    match state {
        Port::Virq(v) => {
            let e = &mut doms.cur().evtchn;
            let on = if event::virq_is_global(v) { 0 } else { e.notify_vcpu(port) };
            e.set_virq_port(on, v, None);
        }
        Port::Interdomain { remote_dom, remote_port } => {
            let (cur, other) = doms.pair(remote_dom);
            let peer = if remote_dom == me { Some(cur) } else { other };
            if let Some(peer) = peer {
                peer.evtchn.set(remote_port, Port::Unbound { remote: me });
            }
        }
        _ => {}
    }
    let d = doms.cur();
    d.evtchn.set(port, Port::Free);
    event::clear_pending(d, port);
    Ok(())
}

/// `EVTCHNOP_send` on the read side (`pv::local`): a port of the caller's own domain
/// (an IPI, a loopback channel, the console) is raised here under its lock; an
/// interdomain port's far end is raised by the caller after it lets go of this
/// domain's lock. None (nothing done) when the argument can't be read: the write side
/// answers that.
pub fn send_local(d: &mut Domain, regs: &mut crate::arch::x86_64::trap::Regs) -> Option<crate::pv::local::Then> {
    use crate::pv::hypercall::After;
    use crate::pv::local::Then;
    let guest = GuestView { l4_mfn: d.vcpus[d.cur_vcpu].current_l4() };
    let a: EvtchnSend = guest.read(regs.rsi).ok()?;
    let (then, result) = match send_target(d, a.port) {
        Ok(Sent::Raise(dom, port)) => (raise(d, dom, port), 0),
        // The console's answer may be for another vCPU of the domain.
        Ok(Sent::Console) => (Then::Resume(After::Schedule), 0),
        Ok(Sent::Dropped) => (Then::Resume(After::Continue), 0),
        Err(e) => (Then::Resume(After::Continue), e.to_rax()),
    };
    regs.rax = result;
    Some(then)
}

/// What `EVTCHNOP_send` on a port leaves to do.
enum Sent {
    /// Raise this (domain, port): an interdomain channel's far end, or an IPI port.
    Raise(u16, u32),
    /// The console port: served here (`console_ring::guest_wrote`).
    Console,
    /// An unbound port: dropped, as Xen does.
    Dropped,
}

/// `EVTCHNOP_send` on `d`'s `port`, up to the far end.
fn send_target(d: &mut Domain, port: u32) -> Result<Sent, Errno> {
    match valid(d.evtchn.get(port))? {
        Port::Interdomain { remote_dom, remote_port } => Ok(Sent::Raise(remote_dom, remote_port)),
        Port::Ipi => Ok(Sent::Raise(d.id, port)),
        Port::HypervisorConsole => {
            crate::pv::console_ring::guest_wrote(d);
            Ok(Sent::Console)
        }
        Port::Unbound { .. } => Ok(Sent::Dropped),
        _ => Err(Errno::EINVAL),
    }
}

/// Raises `port` of `dom` from `d`'s vCPU: at once if it notifies that very vCPU (its
/// upcall goes with this return to the guest), else after `d`'s lock is let go.
fn raise(d: &Domain, dom: u16, port: u32) -> crate::pv::local::Then {
    if dom == d.id && d.evtchn.notify_vcpu(port) as usize == d.cur_vcpu {
        event::set_pending(d, port);
        return crate::pv::local::Then::Resume(crate::pv::hypercall::After::Continue);
    }
    crate::pv::local::Then::Notify { dom, port }
}

/// Whether sub-op `cmd` acts on the caller's own ports only (binding a VIRQ or an IPI
/// to one of its vCPUs, moving a port to another vCPU, unmasking), so that it needs no
/// other domain (`own_domain_op`).
pub fn is_own_domain_op(cmd: u32) -> bool {
    matches!(cmd, EVTCHNOP_bind_virq | EVTCHNOP_bind_ipi | EVTCHNOP_unmask | EVTCHNOP_bind_vcpu)
}

/// The sub-ops `is_own_domain_op` accepts.
pub fn own_domain_op(d: &mut Domain, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    match cmd {
        EVTCHNOP_bind_virq => {
            let mut a: EvtchnBindVirq = guest.read(arg)?;
            // Xen's evtchn_bind_virq, checks in its order.
            if a.virq >= NR_VIRQS {
                return Err(Errno::EINVAL);
            }
            if event::virq_is_global(a.virq) && a.vcpu != 0 {
                return Err(Errno::EINVAL);
            }
                        d.vcpu_mut(u64::from(a.vcpu))?;
            if d.evtchn.virq_port(a.vcpu, a.virq).is_some() {
                return Err(Errno::EEXIST);
            }
            let port = d.evtchn.alloc()?;
            d.evtchn.set(port, Port::Virq(a.virq));
            d.evtchn.set_notify_vcpu(port, a.vcpu);
            d.evtchn.set_virq_port(a.vcpu, a.virq, Some(port));
            a.port = port;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_bind_ipi => {
            let mut a: EvtchnBindIpi = guest.read(arg)?;
                        d.vcpu_mut(u64::from(a.vcpu))?;
            let port = d.evtchn.alloc()?;
            d.evtchn.set(port, Port::Ipi);
            d.evtchn.set_notify_vcpu(port, a.vcpu);
            a.port = port;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_unmask => {
            let a: EvtchnUnmask = guest.read(arg)?;
                        if a.port >= d.evtchn.ports.len() as u32 {
                return Err(Errno::EINVAL);
            }
            event::unmask(d, a.port);
            Ok(0)
        }
        EVTCHNOP_bind_vcpu => {
            // Xen's evtchn_bind_vcpu: the vCPU first, then the port's kind.
            let a: EvtchnBindVcpu = guest.read(arg)?;
                        d.vcpu_mut(u64::from(a.vcpu))?;
            match valid(d.evtchn.get(a.port))? {
                Port::Virq(v) if event::virq_is_global(v) => {}
                Port::Unbound { .. } | Port::Interdomain { .. } => {}
                _ => return Err(Errno::EINVAL),
            }
            d.evtchn.set_notify_vcpu(a.port, a.vcpu);
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

pub fn event_channel_op(doms: &mut impl DomainSet, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    if is_own_domain_op(cmd) {
        return own_domain_op(doms.cur(), guest, cmd, arg);
    }
    let me = doms.me();
    match cmd {
        EVTCHNOP_alloc_unbound => {
            let mut a: EvtchnAllocUnbound = guest.read(arg)?;
            let dom = resolve(doms, a.dom)?;
            if dom != me && !doms.cur().privileged {
                return Err(Errno::EPERM);
            }
            let remote = resolve(doms, a.remote_dom)?;
            let d = doms.get_mut(dom).ok_or(Errno::ESRCH)?;
            let port = d.evtchn.alloc()?;
            d.evtchn.set(port, Port::Unbound { remote });
            a.port = port;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_bind_interdomain => {
            let mut a: EvtchnBindInterdomain = guest.read(arg)?;
            let remote_dom = resolve(doms, a.remote_dom)?;
            let local = doms.cur().evtchn.alloc()?;
            let (cur, other) = doms.pair(remote_dom);
            let remote = if remote_dom == me { cur } else { other.ok_or(Errno::ESRCH)? };
            match remote.evtchn.get(a.remote_port) {
                Some(Port::Unbound { remote: r }) if r == me => {}
                _ => return Err(Errno::EINVAL),
            }
            remote.evtchn.set(a.remote_port, Port::Interdomain { remote_dom: me, remote_port: local });
            let d = doms.cur();
            d.evtchn.set(local, Port::Interdomain { remote_dom, remote_port: a.remote_port });
            // Xen marks the new local port pending, so a missed notification is not lost.
            event::set_pending(d, local);
            a.local_port = local;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_close => {
            let a: EvtchnClose = guest.read(arg)?;
            close_port(doms, a.port)?;
            Ok(0)
        }
        EVTCHNOP_send => {
            let a: EvtchnSend = guest.read(arg)?;
            if let Sent::Raise(dom, port) = send_target(doms.cur(), a.port)? {
                doms.reach(dom)?;
                let (cur, other) = doms.pair(dom);
                if let Some(t) = if dom == me { Some(cur) } else { other } {
                    event::set_pending(t, port);
                }
            }
            Ok(0)
        }
        EVTCHNOP_status => {
            let mut a: EvtchnStatus = guest.read(arg)?;
            let dom = resolve(doms, a.dom)?;
            if dom != me && !doms.cur().privileged {
                return Err(Errno::EPERM);
            }
            let d = doms.get(dom).ok_or(Errno::ESRCH)?;
            if a.port >= d.evtchn.ports.len() as u32 {
                return Err(Errno::EINVAL);
            }
            a.vcpu = d.evtchn.notify_vcpu(a.port);
            a.status = match d.evtchn.get(a.port) {
                Some(Port::Unbound { remote }) => {
                    a.set_unbound(remote);
                    EVTCHNSTAT_unbound
                }
                Some(Port::Interdomain { remote_dom, remote_port }) => {
                    a.set_interdomain(remote_dom, remote_port);
                    EVTCHNSTAT_interdomain
                }
                Some(Port::Virq(v)) => {
                    a.set_irq(v);
                    EVTCHNSTAT_virq
                }
                Some(Port::Ipi) => EVTCHNSTAT_ipi,
                // Connected like a toolstack domU's console, to the console back-end.
                Some(Port::HypervisorConsole) => {
                    a.set_interdomain(xen_abi::xen::DOMID_XEN.0, 0);
                    EVTCHNSTAT_interdomain
                }
                _ => EVTCHNSTAT_closed,
            };
            guest.write(arg, &a)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
