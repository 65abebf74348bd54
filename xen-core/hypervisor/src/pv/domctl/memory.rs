//! The memory ops a toolstack uses on the domain it builds, and the one its guest uses
//! to read what was set: `XENMEM_populate_physmap` (any domain the caller may act on),
//! `XENMEM_set_memory_map`, `XENMEM_memory_map` (Xen's `common/memory.c` and
//! `arch/x86/mm.c`).

use super::super::domain::Domain;
use super::super::hypercall::{HcResult, Step, StepResult};
use super::super::mmu::memory::{continue_at, reservation, EXTENT_BATCH};
use super::super::mmu::m2p;
use super::super::sched::Domains;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::{mem, phys};
use crate::domain::control as ctl;
use xen_abi::errno::Errno;
use xen_abi::memory::*;
use xen_abi::xen::DOMID_SELF;
use xen_abi::{DomId, Mfn};

/// Pseudo-physical frames a domain may populate: below its `max_pages` or its P2M's
/// current end, whichever is higher. The P2M is a vector indexed by them, so a guest
/// can't make it larger than what it may own anyway (Xen keeps no P2M for PV guests).
fn gpfn_limit(d: &Domain) -> u64 {
    d.max_pages.max(d.p2m.len() as u64)
}

/// The memory ops handled here (the rest stay with `hc_mem`).
pub fn handles(cmd: u64) -> bool {
    matches!(
        (cmd & u64::from(MEMOP_CMD_MASK)) as u32,
        XENMEM_populate_physmap | XENMEM_set_memory_map | XENMEM_memory_map | XENMEM_decrease_reservation | XENMEM_claim_pages | XENMEM_acquire_resource
    )
}

/// `rcu_lock_domain_by_any_id` + Xen's dummy `XSM_TARGET`: the caller itself, or any
/// domain for a privileged caller (`-ESRCH` if none, `-EPERM` otherwise).
fn target(doms: &mut Domains, domid: u16) -> Result<u16, Errno> {
    let me = doms.current_id();
    let id = if domid == DOMID_SELF.0 { me } else { domid };
    if doms.get(id).is_none() {
        return Err(Errno::ESRCH);
    }
    if id != me && !doms.cur().privileged {
        return Err(Errno::EPERM);
    }
    Ok(id)
}

pub fn memory_op(doms: &mut Domains, guest: &GuestView, cmd: u64, arg: u64) -> StepResult {
    if (cmd & u64::from(MEMOP_CMD_MASK)) as u32 == XENMEM_populate_physmap {
        return populate_physmap(doms, guest, cmd, arg);
    }
    if (cmd & u64::from(MEMOP_CMD_MASK)) as u32 == XENMEM_decrease_reservation {
        // Xen's do_memory_op: the domain named (a privileged caller may name any, as a
        // toolstack does), else nothing done and the start extent returned.
        let start = cmd >> MEMOP_EXTENT_SHIFT;
        let id = match guest.read::<XenMemoryReservation>(arg) {
            Ok(r) => match target(doms, r.domid) {
                Ok(id) => id,
                Err(_) => return Ok(Step::Done(start)),
            },
            Err(_) => doms.current_id(),
        };
        let Some(d) = doms.get_mut(id) else { return Ok(Step::Done(start)) };
        return super::super::mmu::memory::decrease_reservation(d, guest, cmd, arg);
    }
    other_op(doms, guest, cmd, arg).map(Step::Done)
}

fn other_op(doms: &mut Domains, guest: &GuestView, cmd: u64, arg: u64) -> HcResult {
    match (cmd & u64::from(MEMOP_CMD_MASK)) as u32 {
        XENMEM_set_memory_map => {
            let m: XenForeignMemoryMap = guest.read(arg)?;
            ctl::check_memory_map(m.map.nr_entries)?;
            let id = target(doms, m.domid)?;
            let mut e820 = alloc::vec::Vec::with_capacity(m.map.nr_entries as usize);
            for i in 0..u64::from(m.map.nr_entries) {
                e820.push(guest.read::<E820Entry>(m.map.buffer.wrapping_add(20 * i))?);
            }
            let d = doms.get_mut(id).ok_or(Errno::ESRCH)?;
            d.ctl.e820 = (!e820.is_empty()).then_some(e820);
            Ok(0)
        }
        XENMEM_memory_map => memory_map(doms.cur(), guest, arg),
        XENMEM_claim_pages => claim_pages(doms, guest, cmd, arg),
        XENMEM_acquire_resource => acquire_resource(doms, guest, cmd, arg),
        _ => Err(Errno::ENOSYS),
    }
}

/// Pages claimed by every domain's `XENMEM_claim_pages` and not yet given to it
/// (`outstanding_claims`, physinfo's `outstanding_pages`).
pub static OUTSTANDING: spin::Mutex<u64> = spin::Mutex::new(0);

/// `XENMEM_claim_pages`, in Xen's order: a continuation's start extent, an unreadable
/// argument, an extent list, an order or flags `-EINVAL`/`-EFAULT`; the domain by id
/// (`DOMID_SELF` is none: `-EINVAL`); the control domain only (`-EPERM`); then
/// [`ctl::claim_pages`]. The claim is counted and reported, and `populate_physmap`
/// keeps the claimed pages for their claimant (only on that path: other allocations,
/// the hypervisor's own among them, do not look at claims).
fn claim_pages(doms: &mut Domains, guest: &GuestView, cmd: u64, arg: u64) -> HcResult {
    if cmd >> MEMOP_EXTENT_SHIFT != 0 {
        return Err(Errno::EINVAL);
    }
    let r: XenMemoryReservation = guest.read(arg)?;
    if r.extent_start != 0 || r.extent_order != 0 || r.mem_flags != 0 {
        return Err(Errno::EINVAL);
    }
    if doms.get(r.domid).is_none() {
        return Err(Errno::EINVAL);
    }
    if !doms.cur().privileged {
        return Err(Errno::EPERM);
    }
    let free = mem::with_frames(|a| a.free_frames());
    let d = doms.get_mut(r.domid).ok_or(Errno::EINVAL)?;
    let tot = d.p2m.iter().filter(|&&m| m != m2p::INVALID_M2P_ENTRY).count() as u64;
    let mut out = OUTSTANDING.lock();
    let new = ctl::claim_pages(r.nr_extents, d.ctl.claim, tot, d.max_pages, free, *out)?;
    *out = out.saturating_sub(d.ctl.claim) + new;
    d.ctl.claim = new;
    Ok(0)
}

/// `XENMEM_acquire_resource` (Xen's `acquire_resource` for a PV caller): the
/// arguments ([`ctl::check_acquire_args`]), the domain (none `-ESRCH`, the caller
/// `-EPERM`), the control domain only (`-EPERM`), then [`ctl::acquire_plan`]: a size
/// query, or the MFNs of grant table frames (the table grown to hold them, at most
/// `MAX_GRANT_FRAMES`, so no continuation is needed) written to the frame list. The
/// caller maps them with `mmu_update` naming the domain, as the frames are lent to it.
fn acquire_resource(doms: &mut Domains, guest: &GuestView, cmd: u64, arg: u64) -> HcResult {
    let start = cmd >> MEMOP_EXTENT_SHIFT;
    let mut x: XenMemAcquireResource = guest.read(arg)?;
    ctl::check_acquire_args(x.pad, x.frame, x.nr_frames)?;
    let me = doms.current_id();
    if doms.get(x.domid).is_none() {
        return Err(Errno::ESRCH);
    }
    if x.domid == me {
        return Err(Errno::EPERM);
    }
    if !doms.cur().privileged {
        return Err(Errno::EPERM);
    }
    let max = crate::pv::grant::MAX_GRANT_FRAMES;
    match ctl::acquire_plan(x.type_, x.id, x.frame, x.nr_frames, x.frame_list == 0, start, max)? {
        ctl::Acquire::Size(n) => {
            x.nr_frames = n;
            guest.write(arg, &x)?;
        }
        ctl::Acquire::GrantFrames { first, count } => {
            let d = doms.get_mut(x.domid).ok_or(Errno::ESRCH)?;
            if crate::pv::grant::grow_table(d, first + count) != xen_abi::grant_table::GNTST_okay {
                return Err(Errno::EINVAL);
            }
            for i in 0..count {
                let mfn = d.grant_frames[(first + i) as usize];
                guest.write(x.frame_list.wrapping_add(8 * u64::from(i + start as u32)), &mfn)?;
            }
        }
    }
    Ok(0)
}

/// A domain's claim given up (destroyed, or the claim spent `n` pages of it).
pub fn spend_claim(d: &mut Domain, n: u64) {
    let n = n.min(d.ctl.claim);
    if n > 0 {
        d.ctl.claim -= n;
        let mut out = OUTSTANDING.lock();
        *out = out.saturating_sub(n);
    }
}

/// `XENMEM_memory_map`: the E820 the toolstack set; `-ENOSYS` without one (as Xen, for
/// backwards compatibility).
fn memory_map(d: &Domain, guest: &GuestView, arg: u64) -> HcResult {
    let mut map: XenMemoryMap = guest.read(arg)?;
    let Some(e820) = d.ctl.e820.as_ref() else { return Err(Errno::ENOSYS) };
    let n = (map.nr_entries as usize).min(e820.len());
    for (i, e) in e820.iter().take(n).enumerate() {
        guest.write(map.buffer.wrapping_add(20 * i as u64), e)?;
    }
    map.nr_entries = n as u32;
    guest.write(arg, &map)?;
    Ok(0)
}

/// `XENMEM_populate_physmap` of order-0 extents: for each PFN in the list, a fresh
/// zeroed frame owned by the domain, its M2P entry, and its MFN written back over the
/// PFN (a PV domain's physmap is the guest's own). Stops at the first PFN it can't
/// fill (unreadable, taken, out of range, over `max_pages`, no memory) and returns how
/// many it filled, as Xen does. Larger orders are beyond `max_order` here: none done.
fn populate_physmap(doms: &mut Domains, guest: &GuestView, cmd: u64, arg: u64) -> StepResult {
    let (r, start) = match reservation(guest, cmd, arg) {
        Ok(v) => v,
        Err(done) => return Ok(Step::Done(done)),
    };
    // No such domain, or one the caller may not act on: nothing done, as Xen.
    let Ok(id) = target(doms, r.domid) else { return Ok(Step::Done(start)) };
    if r.extent_order != 0 {
        return Ok(Step::Done(start));
    }
    let d = doms.get_mut(id).ok_or(Errno::ESRCH)?;
    let mut done = start;
    let mut tot = d.p2m.iter().filter(|&&m| m != m2p::INVALID_M2P_ENTRY).count() as u64;
    while done < r.nr_extents {
        if done - start == EXTENT_BATCH {
            return Ok(continue_at(cmd, arg, done));
        }
        let at = r.extent_start.wrapping_add(done * 8);
        let Ok(gpfn) = guest.read::<u64>(at) else { break };
        let taken = d.p2m.get(gpfn as usize).is_some_and(|&m| m != m2p::INVALID_M2P_ENTRY);
        if gpfn >= gpfn_limit(d) || taken || tot >= d.max_pages || d.ending.is_some() || d.ctl.killed {
            break;
        }
        if d.p2m.len() <= gpfn as usize && d.p2m.try_reserve(gpfn as usize + 1 - d.p2m.len()).is_err() {
            break;
        }
        // Pages claimed by other domains are theirs (Xen's `alloc_heap_pages`).
        if d.ctl.claim == 0 {
            let out = *OUTSTANDING.lock();
            if out > 0 && mem::with_frames(|a| a.free_frames()) <= out {
                break;
            }
        }
        let Some(mfn) = mem::alloc_frame() else { break };
        phys::zero_frame(mfn);
        if super::super::mmu::with(|t, _| t.assign_frame(DomId(id), Mfn(mfn))).is_err() {
            mem::with_frames(|a| a.free(mfn));
            break;
        }
        m2p::set(mfn, gpfn);
        if d.p2m.len() <= gpfn as usize {
            d.p2m.resize(gpfn as usize + 1, m2p::INVALID_M2P_ENTRY);
        }
        d.p2m[gpfn as usize] = mfn;
        tot += 1;
        spend_claim(d, 1);
        // A list Xen can't write back ends the batch there; the page stays the domain's.
        if guest.write(at, &mfn).is_err() {
            break;
        }
        done += 1;
    }
    Ok(Step::Done(done))
}
