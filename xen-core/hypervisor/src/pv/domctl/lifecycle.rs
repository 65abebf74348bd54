//! How a toolstack-built domain ends (Xen's `domain_shutdown`, `domain_kill`): a shutdown
//! or crash leaves it in place, state shutdown, until the toolstack destroys it; both
//! raise `VIRQ_DOM_EXC` in the control domain. Frames of a destroyed domain that the
//! control domain still maps (privcmd or grant mappings) stay until their last
//! reference goes, and are then given back to the allocator.

use super::super::domain::Domain;
use super::super::event;
use super::super::mmu::m2p;
use super::super::mmu;
use super::super::sched::Domains;
use crate::arch::x86_64::mem;
use crate::mm::Owner;
use alloc::vec::Vec;
use spin::Mutex;
use xen_abi::xen::VIRQ_DOM_EXC;
use xen_abi::Mfn;

/// Frames of destroyed domains still referenced, with the domain they belonged to.
static ZOMBIES: Mutex<Vec<(u64, u16)>> = Mutex::new(Vec::new());

/// `XEN_DOMCTL_destroydomain`: the domain goes before the next guest runs (the
/// scheduler's end-of-domain pass), with the reason it shut down for, if any.
pub fn kill(d: &mut Domain) {
    d.ctl.killed = true;
    super::memory::spend_claim(d, u64::MAX);
    d.ending = Some(d.ctl.shutdown.or(d.ending).unwrap_or(xen_abi::sched::SHUTDOWN_poweroff));
}

/// A domain that ended (`Domain::ending`): true if it stays as a shut-down domain for
/// its toolstack (the state moves to `ctl.shutdown`), false if it is to be destroyed.
pub fn keep_shut_down(d: &mut Domain) -> bool {
    if !d.ctl.toolstack || d.ctl.killed {
        return false;
    }
    if let Some(reason) = d.ending.take() {
        d.ctl.shutdown.get_or_insert(reason);
        crate::println!("Domain {} shut down (reason {reason}): waiting for the toolstack", d.id);
    }
    true
}

/// `send_global_virq(VIRQ_DOM_EXC)`: to the control domains that bound it.
pub fn notify_dom_exc(doms: &mut Domains) {
    for id in doms.ids() {
        if let Some(d) = doms.get(id).filter(|d| d.privileged) {
            event::send_virq(d, VIRQ_DOM_EXC);
        }
    }
}

/// Remembers frame `mfn` of destroyed domain `dom`, still referenced by someone else.
pub fn hold(mfn: u64, dom: u16) {
    ZOMBIES.lock().push((mfn, dom));
}

/// Whether frames of a destroyed domain `dom` are still around (its id is not reused
/// until they are gone, so that nothing can take them for a new domain's).
pub fn has_zombies(dom: u16) -> bool {
    ZOMBIES.lock().iter().any(|&(_, d)| d == dom)
}

/// Gives back every held frame whose last reference went (one pass over the list,
/// which is empty unless the control domain still maps a dead domain's frames).
pub fn sweep() {
    let mut z = ZOMBIES.lock();
    if z.is_empty() {
        return;
    }
    z.retain(|&(mfn, dom)| {
        let free = mmu::with(|t, _| {
            let f = Mfn(mfn);
            // A hypervisor frame it had been lent (shared_info, grant frames) went back
            // to the hypervisor at its last reference; unreferenced, it is free RAM.
            if t.page(f).is_some_and(|p| p.owner() == Owner::Xen && p.count() == 0) {
                t.set_owner_at_boot(f, Owner::None);
            }
            t.page(f).is_some_and(|p| p.is_free())
        });
        // The grant-unmap path may have given it back already.
        if free && !mem::with_frames(|a| a.is_free(mfn)) {
            m2p::set(mfn, m2p::INVALID_M2P_ENTRY);
            mem::with_frames(|a| a.free(mfn));
            crate::println!("d{dom}'s page {mfn:#x} freed: its last mapping is gone");
        }
        !free
    });
}
