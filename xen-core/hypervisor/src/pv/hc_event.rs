//! `event_channel_op` (2-level ABI; FIFO sub-ops answer -ENOSYS so guests stay on 2L).

use super::domain::Domain;
use super::events::{self, Port};
use super::hypercall::HcResult;
use crate::arch::x86_64::guest::GuestView;
use xen_abi::errno::Errno;
use xen_abi::event_channel::*;
use xen_abi::xen::{DOMID_SELF, NR_VIRQS};

/// Resolves `DOMID_SELF` and our own id; other domains don't exist yet.
fn own(d: &Domain, dom: u16) -> Result<u16, Errno> {
    if dom == DOMID_SELF.0 || dom == d.id {
        Ok(d.id)
    } else {
        Err(Errno::ESRCH)
    }
}

fn valid(d: &Domain, port: u32) -> Result<Port, Errno> {
    match d.evtchn.get(port) {
        Some(Port::Free) | Some(Port::Reserved) | None => Err(Errno::EINVAL),
        Some(p) => Ok(p),
    }
}

pub fn event_channel_op(d: &mut Domain, guest: &GuestView, cmd: u32, arg: u64) -> HcResult {
    match cmd {
        EVTCHNOP_alloc_unbound => {
            let mut a: EvtchnAllocUnbound = guest.read(arg)?;
            own(d, a.dom)?;
            let remote = own(d, a.remote_dom)?;
            let port = d.evtchn.alloc()?;
            d.evtchn.set(port, Port::Unbound { remote });
            a.port = port;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_bind_interdomain => {
            let mut a: EvtchnBindInterdomain = guest.read(arg)?;
            let remote_dom = own(d, a.remote_dom)?;
            match d.evtchn.get(a.remote_port) {
                Some(Port::Unbound { remote }) if remote == d.id => {}
                Some(_) => return Err(Errno::EINVAL),
                None => return Err(Errno::EINVAL),
            }
            let local = d.evtchn.alloc()?;
            d.evtchn.set(local, Port::Interdomain { remote_dom, remote_port: a.remote_port });
            d.evtchn.set(a.remote_port, Port::Interdomain { remote_dom, remote_port: local });
            // Xen marks the new local port pending, so a missed notification is not lost.
            events::set_pending(d, local);
            a.local_port = local;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_bind_virq => {
            let mut a: EvtchnBindVirq = guest.read(arg)?;
            if a.virq >= NR_VIRQS {
                return Err(Errno::EINVAL);
            }
            if a.vcpu != 0 {
                return Err(Errno::ENOENT);
            }
            if d.evtchn.virq[a.virq as usize].is_some() {
                return Err(Errno::EEXIST);
            }
            let port = d.evtchn.alloc()?;
            d.evtchn.set(port, Port::Virq(a.virq));
            d.evtchn.virq[a.virq as usize] = Some(port);
            a.port = port;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_bind_ipi => {
            let mut a: EvtchnBindIpi = guest.read(arg)?;
            if a.vcpu != 0 {
                return Err(Errno::ENOENT);
            }
            let port = d.evtchn.alloc()?;
            d.evtchn.set(port, Port::Ipi);
            a.port = port;
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_close => {
            let a: EvtchnClose = guest.read(arg)?;
            match valid(d, a.port)? {
                Port::Virq(v) => d.evtchn.virq[v as usize] = None,
                Port::Interdomain { remote_port, .. } => {
                    d.evtchn.set(remote_port, Port::Unbound { remote: d.id });
                }
                _ => {}
            }
            d.evtchn.set(a.port, Port::Free);
            events::clear_pending(d, a.port);
            Ok(0)
        }
        EVTCHNOP_send => {
            let a: EvtchnSend = guest.read(arg)?;
            match valid(d, a.port)? {
                Port::Interdomain { remote_port, .. } => events::set_pending(d, remote_port),
                Port::Ipi => events::set_pending(d, a.port),
                Port::Unbound { .. } => {} // dropped, as Xen does
                _ => return Err(Errno::EINVAL),
            }
            Ok(0)
        }
        EVTCHNOP_unmask => {
            let a: EvtchnUnmask = guest.read(arg)?;
            if a.port >= d.evtchn.ports.len() as u32 {
                return Err(Errno::EINVAL);
            }
            events::unmask(d, a.port);
            Ok(0)
        }
        EVTCHNOP_status => {
            let mut a: EvtchnStatus = guest.read(arg)?;
            own(d, a.dom)?;
            if a.port >= d.evtchn.ports.len() as u32 {
                return Err(Errno::EINVAL);
            }
            a.vcpu = 0;
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
                _ => EVTCHNSTAT_closed,
            };
            guest.write(arg, &a)?;
            Ok(0)
        }
        EVTCHNOP_bind_vcpu => {
            let a: EvtchnBindVcpu = guest.read(arg)?;
            valid(d, a.port)?;
            if a.vcpu != 0 {
                return Err(Errno::ENOENT);
            }
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}
