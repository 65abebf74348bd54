//! The end of a domain (Xen's `domain_kill` + `domain_relinquish_resources`): its event
//! channels close (interdomain peers see unbound ports), the grants it mapped are
//! unmapped, its page references go, and every frame nobody else still references goes
//! back to the allocator. Frames another domain still maps (through a grant) stay until
//! that domain unmaps them.

use super::Domain;
use crate::pv::event::Port;
use crate::pv::mmu::m2p;
use crate::pv::sched::Domains;
use crate::arch::x86_64::mem;
use crate::mm::Owner;
use crate::println;
use alloc::vec::Vec;
use xen_abi::sched::{SHUTDOWN_crash, SHUTDOWN_poweroff, SHUTDOWN_reboot};
use xen_abi::{DomId, Mfn};

fn reason_name(reason: u32) -> &'static str {
    match reason {
        SHUTDOWN_poweroff => "poweroff",
        SHUTDOWN_reboot => "reboot",
        SHUTDOWN_crash => "crash",
        _ => "other",
    }
}

pub fn destroy(doms: &mut Domains, mut d: Domain, reason: u32) {
    let id = d.id;
    let mut ports = 0;
    for state in &d.evtchn.ports {
        if let Port::Interdomain { remote_dom, remote_port } = *state {
            if let Some(peer) = doms.get_mut(remote_dom) {
                peer.evtchn.set(remote_port, Port::Unbound { remote: id });
            }
        }
        if !matches!(state, Port::Free | Port::Reserved) {
            ports += 1;
        }
    }

    crate::pv::console_ring::teardown(&mut d);
    // The maptrack is walked in place (a full one is ~10 MiB: no copy of it may be
    // needed to destroy the domain that filled the heap with it).
    let mappings = core::mem::take(&mut d.maptrack);
    d.maptrack_free = alloc::collections::BinaryHeap::new();
    crate::pv::mmu::with(|t, hw| {
        for m in mappings.iter().flatten() {
            let _ = t.grant_unmap(hw, DomId(id), Mfn(m.l1), m.index, Mfn(m.frame));
        }
    });
    for m in mappings.iter().flatten() {
        crate::pv::grant::unpin(doms, m.granter, m.gref, m.writable);
    }
    let undone = mappings.iter().flatten().count();
    drop(mappings);

    let shared: Vec<u64> =
        core::iter::once(d.shared_info_mfn).chain(d.grant_frames.iter().copied()).collect();
    // Its frames, and those it gave back while they were still referenced.
    let mut own: Vec<u64> = d.p2m.iter().copied().filter(|&m| m != m2p::INVALID_M2P_ENTRY).collect();
    own.extend(d.given_back.drain());
    // The registered vcpu_info frames (Xen's unmap_vcpu_info): their references go; a
    // frame the guest gave back while registered is freed now, with them.
    let vcpu_info: Vec<_> = d.vcpus.iter_mut().filter_map(|v| v.vcpu_info_ref.take()).collect();
    for r in &vcpu_info {
        let m = r.mfn().0;
        if !own.contains(&m) && !shared.contains(&m) {
            own.push(m);
        }
    }
    let (mut freed, mut held) = (0, 0);
    // Frames someone else still references (the control domain's mappings): freed at
    // their last unmap (`domctl::lifecycle::sweep`).
    let mut still_held = Vec::new();
    crate::pv::mmu::with(|t, hw| {
        for r in vcpu_info {
            t.put_frame_ref(hw, r);
        }
        // The descriptor-page references of the loaded GDTs and the mapped LDT pages.
        for &f in d.vcpus.iter().flat_map(|v| v.gdt_frames.iter()) {
            t.put_segdesc_page(hw, Mfn(f));
        }
        for v in d.vcpus.iter_mut() {
            t.release_ldt_pages(hw, &mut v.ldt_pages);
        }
        let mut mms: Vec<_> = d.vcpus.iter().map(|v| v.mm).collect();
        t.release_domain(hw, DomId(id), &mut mms);
        for &mfn in &own {
            if t.page(Mfn(mfn)).is_some_and(|p| p.is_free()) {
                m2p::set(mfn, m2p::INVALID_M2P_ENTRY);
                mem::with_frames(|a| a.free(mfn));
                freed += 1;
            } else {
                held += 1;
                still_held.push(mfn);
            }
        }
        for &mfn in &shared {
            // Lent hypervisor frames come back as the hypervisor's; unreferenced, free.
            if t.page(Mfn(mfn)).is_some_and(|p| p.owner() == Owner::Xen) && t.set_owner_at_boot(Mfn(mfn), Owner::None) {
                mem::with_frames(|a| a.free(mfn));
                freed += 1;
            } else {
                held += 1;
                still_held.push(mfn);
            }
        }
    });
    for mfn in still_held {
        crate::pv::domctl::lifecycle::hold(mfn, id);
    }
    crate::arch::x86_64::smp::flush_tlb_all();
    println!(
        "Domain {id} ({}) destroyed ({}): {ports} event channels closed, {} grant mappings undone, {freed} pages freed, {held} still referenced",
        d.name,
        reason_name(reason),
        undone
    );
}
