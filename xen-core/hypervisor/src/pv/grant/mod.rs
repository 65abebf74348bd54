//! `grant_table_op` (v1): a domain's own table (setup, query, version), grant copy and
//! grant mapping between domains. A mapped grant shows `GTF_reading`/`GTF_writing` in
//! the granter's entry, so the granter can't take it back while it is in use.

use crate::pv::domain::{Domain, GrantMapping, GrantPin};
use crate::pv::hypercall::{array_ok, Step, StepResult};
use crate::pv::domain::set::DomainSet;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::{mem, phys};
use crate::mm::{FrameRef, FrameRefError};
use xen_abi::errno::Errno;
use xen_abi::grant_table::*;
use xen_abi::xen::DOMID_SELF;
use xen_abi::{DomId, Mfn};
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Xen 4.17's default `gnttab_max_frames`.
pub const MAX_GRANT_FRAMES: u32 = 64;
/// Grant entries per 4 KiB frame (v1, 8 bytes each).
const ENTRIES_PER_FRAME: u32 = 512;
/// Maptrack handles one domain may have: Xen's default `gnttab_max_maptrack_frames` x
/// 256 handles. Each vCPU that has mapped keeps one back as the tail of its free list
/// (Xen's `get_maptrack_handle` and `steal_maptrack_handle`), so a domain whose two
/// vCPUs both mapped can hold 262142 mappings, one that mapped from one vCPU 262143.
const MAX_MAPTRACK: usize = 1024 * 256;

/// Heap bytes a maptrack never takes from the rest of the hypervisor. The heap is
/// shared by every domain; a growth of the maptrack that would leave less than this
/// free is refused with `GNTST_no_space`, as Xen's map when `alloc_xenheap_page` fails
/// for a maptrack frame, so that two domains filling theirs (a full one holds ~10 MiB
/// here) cannot exhaust it for allocations that are not fallible.
const MAPTRACK_HEAP_FLOOR: usize = 4 << 20;

/// Machine address of entry `gref` in `d`'s table.
fn entry_maddr(d: &Domain, gref: u32) -> Option<u64> {
    let frame = d.grant_frames.get((gref / ENTRIES_PER_FRAME) as usize)?;
    Some((frame << 12) + u64::from(gref % ENTRIES_PER_FRAME) * 8)
}

fn read_entry(maddr: u64) -> GrantEntryV1 {
    let mut e = GrantEntryV1::default();
    phys::read_bytes(maddr, e.as_mut_bytes());
    e
}

/// Writes a whole v1 entry (the builder's reserved entries).
pub fn write_entry(d: &Domain, gref: u32, entry: GrantEntryV1) -> bool {
    match entry_maddr(d, gref) {
        Some(at) => {
            phys::write_bytes(at, entry.as_bytes());
            true
        }
        None => false,
    }
}

fn write_flags(maddr: u64, flags: Gtf) {
    phys::write_bytes(maddr, &flags.bits().to_le_bytes());
}

/// Checks `gref` of `granter` grants `grantee` access (read, or write too). An entry
/// of another type, for another domain, or read-only for a writer is
/// `GNTST_general_error`, as Xen's `_set_status_v1`.
fn checked_entry(granter: &Domain, gref: u32, grantee: u16, write: bool) -> Result<(u64, GrantEntryV1), i16> {
    let at = entry_maddr(granter, gref).ok_or(GNTST_bad_gntref)?;
    let e = read_entry(at);
    let flags = Gtf::from_bits_retain(e.flags);
    if flags.grant_type() != GTF_permit_access || e.domid != grantee || (write && flags.contains(Gtf::READONLY)) {
        return Err(GNTST_general_error);
    }
    Ok((at, e))
}

/// Marks `gref` of `granter` in use by `grantee` (`GTF_reading`, and `GTF_writing` for
/// a writer) in the same atomic step as the check, as Xen's `_set_status_v1`: the
/// granter may be revoking the entry on another CPU meanwhile (its own compare-exchange
/// on the entry then fails, or ours does and is checked again). Returns the entry.
fn claim_entry(granter: &Domain, gref: u32, grantee: u16, write: bool) -> Result<GrantEntryV1, i16> {
    const RETRIES: usize = 4;
    for _ in 0..RETRIES {
        let (at, e) = checked_entry(granter, gref, grantee, write)?;
        let mut claimed = e;
        let mut flags = Gtf::from_bits_retain(e.flags) | Gtf::READING;
        flags.set(Gtf::WRITING, write || Gtf::from_bits_retain(e.flags).contains(Gtf::WRITING));
        claimed.flags = flags.bits();
        let (old, new) = (u64::from_le_bytes(*e.as_bytes().first_chunk().unwrap_or(&[0; 8])), u64::from_le_bytes(*claimed.as_bytes().first_chunk().unwrap_or(&[0; 8])));
        let word = phys::atomic_u64(at);
        if word.compare_exchange(old, new, core::sync::atomic::Ordering::SeqCst, core::sync::atomic::Ordering::SeqCst).is_ok() {
            return Ok(e);
        }
    }
    Err(GNTST_general_error)
}

/// `cmd` bits above these carry Xen's continuation argument (`GNTTABOP_CMD_MASK`).
const CMD_MASK: u32 = (1 << 12) - 1;

/// Map, unmap or copy operations done per entry into the hypervisor; the rest continue
/// (Xen's `do_grant_table_op` continuation: the list advanced, the count reduced).
pub const GRANT_BATCH: u64 = 128;

/// Runs `one` on each of `count` structures of type `T` at `arg` (read, done, written
/// back), at most `GRANT_BATCH` of them, the rest as a continuation of `cmd`. A list
/// outside the guest's range is -EFAULT before any is done (`guest_handle_okay`), an
/// unreadable or unwritable structure -EFAULT where it is. `one` answers false, having
/// done nothing, for an entry this call can't do (it names a domain the call did not
/// lock): the batch stops there and continues from it.
fn batch<T: FromBytes + IntoBytes + Immutable>(guest: &GuestView, cmd: u32, arg: u64, count: u64, mut one: impl FnMut(&mut T) -> bool) -> StepResult {
    array_ok(arg)?;
    let size = core::mem::size_of::<T>() as u64;
    for i in 0..count {
        let at = arg.wrapping_add(i.wrapping_mul(size));
        let more = Step::More([u64::from(cmd), at, count - i, 0, 0]);
        if i == GRANT_BATCH {
            return Ok(more);
        }
        let mut op: T = guest.read(at)?;
        if !one(&mut op) {
            return Ok(more);
        }
        guest.write(at, &op)?;
    }
    Ok(Step::Done(0))
}

/// `cmd`'s and `count`'s checks (do_grant_table_op): `count` is an unsigned int,
/// negative as an int -EINVAL; a continuation argument in `cmd` from the guest -EINVAL
/// (only cache_flush has one). The count as an unsigned int.
fn checked_count(cmd: u32, count: u64) -> Result<u64, Errno> {
    let count32 = count as u32;
    if (count32 as i32) < 0 || (cmd & !CMD_MASK != 0 && cmd & CMD_MASK != GNTTABOP_cache_flush) {
        return Err(Errno::EINVAL);
    }
    Ok(u64::from(count32))
}

pub fn grant_table_op(doms: &mut impl DomainSet, guest: &GuestView, cmd: u32, arg: u64, count: u64) -> StepResult {
    match mapping_op(doms, guest, cmd, arg, count) {
        Some(r) => r,
        None => single_op(doms, guest, cmd, arg, count).map(Step::Done),
    }
}

/// Whether `cmd` is one of the batched ops, which reach only the caller and the
/// domains their entries name (`mapping_op`).
pub fn is_mapping_op(cmd: u32) -> bool {
    matches!(cmd & CMD_MASK, GNTTABOP_copy | GNTTABOP_map_grant_ref | GNTTABOP_unmap_grant_ref)
}

/// Copy, map and unmap: None for the other sub-ops.
pub fn mapping_op(doms: &mut impl DomainSet, guest: &GuestView, cmd: u32, arg: u64, count: u64) -> Option<StepResult> {
    if !is_mapping_op(cmd) {
        return None;
    }
    let n = match checked_count(cmd, count) {
        Ok(n) => n,
        Err(e) => return Some(Err(e)),
    };
    let me = doms.me();
    Some(match cmd & CMD_MASK {
        GNTTABOP_copy => batch(guest, cmd, arg, n, |op: &mut GnttabCopy| {
            let side = |p: &GnttabCopyPtr| if p.domid == DOMID_SELF.0 { me } else { p.domid };
            if !(doms.reachable(side(&op.source)) && doms.reachable(side(&op.dest))) {
                return false;
            }
            op.status = match grant_copy(doms, op) {
                Ok(()) => GNTST_okay,
                Err(st) => st,
            };
            true
        }),
        GNTTABOP_map_grant_ref => batch(guest, cmd, arg, n, |op: &mut GnttabMapGrantRef| {
            if !doms.reachable(op.dom) {
                return false;
            }
            match map_one(doms, guest, op) {
                Ok((handle, frame)) => {
                    op.handle = handle;
                    op.dev_bus_addr = frame << 12;
                    op.status = GNTST_okay;
                }
                Err(st) => op.status = st,
            }
            true
        }),
        _ => batch(guest, cmd, arg, n, |op: &mut GnttabUnmapGrantRef| {
            if mapped_from(doms.cur(), op.handle).is_some_and(|g| !doms.reachable(g)) {
                return false;
            }
            op.status = match unmap_one(doms, op.handle, op.host_addr) {
                Ok(()) => GNTST_okay,
                Err(st) => st,
            };
            true
        }),
    })
}

/// The granter of `d`'s mapping `handle`, if it has that mapping.
pub fn mapped_from(d: &Domain, handle: u32) -> Option<u16> {
    d.maptrack.get(handle as usize).copied().flatten().map(|m| m.granter)
}

/// The domains a grant-table op of the caller `d` names (in the entries this call does,
/// for a batch; besides the caller): what `pv::local` locks before running it. Unreadable entries
/// name none (the op answers -EFAULT there).
pub fn named_domains(d: &Domain, guest: &GuestView, cmd: u32, arg: u64, count: u64) -> alloc::vec::Vec<u16> {
    let mut ids = alloc::vec::Vec::new();
    let n = u64::from(count as u32).min(GRANT_BATCH);
    fn each<T: FromBytes + IntoBytes + Immutable>(guest: &GuestView, arg: u64, n: u64, mut f: impl FnMut(T)) {
        let size = core::mem::size_of::<T>() as u64;
        for i in 0..n {
            match guest.read(arg.wrapping_add(i.wrapping_mul(size))) {
                Ok(op) => f(op),
                Err(_) => return,
            }
        }
    }
    match cmd & CMD_MASK {
        GNTTABOP_copy => each(guest, arg, n, |op: GnttabCopy| ids.extend([op.source.domid, op.dest.domid])),
        GNTTABOP_map_grant_ref => each(guest, arg, n, |op: GnttabMapGrantRef| ids.push(op.dom)),
        GNTTABOP_unmap_grant_ref => each(guest, arg, n, |op: GnttabUnmapGrantRef| ids.extend(mapped_from(d, op.handle))),
        GNTTABOP_query_size => each(guest, arg, 1, |q: GnttabQuerySize| ids.push(q.dom)),
        _ => {}
    }
    ids.retain(|&id| id != d.id && id != DOMID_SELF.0);
    ids.sort_unstable();
    ids.dedup();
    ids
}


/// The sub-ops on the caller's own table (one structure each), after the batches.
fn single_op(doms: &mut impl DomainSet, guest: &GuestView, cmd: u32, arg: u64, count: u64) -> Result<u64, Errno> {
    let count = checked_count(cmd, count)?;
    let cmd = cmd & CMD_MASK;
    // Sub-ops on the caller's own table take exactly one argument structure.
    let single = matches!(cmd, GNTTABOP_setup_table | GNTTABOP_query_size | GNTTABOP_set_version | GNTTABOP_get_version);
    if single && count != 1 {
        return Err(Errno::EINVAL);
    }
    let me = doms.me();
    let own = |dom: u16| dom == DOMID_SELF.0 || dom == me;
    match cmd {
        GNTTABOP_query_size => {
            let mut q: GnttabQuerySize = guest.read(arg)?;
            if !own(q.dom) {
                doms.reach(q.dom)?;
            }
            let privileged = doms.cur().privileged;
            q.status = match doms.get(if own(q.dom) { me } else { q.dom }) {
                Some(d) if own(q.dom) || privileged => {
                    q.nr_frames = d.grant_frames.len() as u32;
                    q.max_nr_frames = MAX_GRANT_FRAMES;
                    GNTST_okay
                }
                _ => GNTST_bad_domain,
            };
            guest.write(arg, &q)?;
            Ok(0)
        }
        GNTTABOP_setup_table => {
            // Xen's gnttab_setup_table: a frame list in the hypervisor's range is -EFAULT;
            // the table grows up to the domain's limit (Xen's default gnttab_max_frames),
            // and a frame number it can't write back is GNTST_bad_virt_addr.
            let mut s: GnttabSetupTable = guest.read(arg)?;
            array_ok(s.frame_list)?;
            let d = doms.cur();
            s.status = if !own(s.dom) {
                GNTST_bad_domain
            } else if s.nr_frames > MAX_GRANT_FRAMES {
                GNTST_general_error
            } else {
                grow_table(d, s.nr_frames)
            };
            if s.status == GNTST_okay {
                for (i, mfn) in d.grant_frames.iter().take(s.nr_frames as usize).enumerate() {
                    if guest.write(s.frame_list.wrapping_add(8 * i as u64), mfn).is_err() {
                        s.status = GNTST_bad_virt_addr;
                    }
                }
            }
            guest.write(arg, &s)?;
            Ok(0)
        }
        GNTTABOP_set_version => {
            let mut v: GnttabSetVersion = guest.read(arg)?;
            let r = if v.version == 1 { Ok(0) } else { Err(Errno::EINVAL) };
            v.version = 1;
            guest.write(arg, &v)?;
            r
        }
        GNTTABOP_get_version => {
            let mut v: GnttabGetVersion = guest.read(arg)?;
            if !own(v.dom) {
                return Err(Errno::ESRCH);
            }
            v.version = 1;
            guest.write(arg, &v)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Grows `d`'s table to `nr` frames, each lent to the domain read/write.
pub fn grow_table(d: &mut Domain, nr: u32) -> i16 {
    while d.grant_frames.len() < nr as usize {
        // The pin counts of the new entries; a full heap refuses, as a full allocator.
        if d.grant_pins.try_reserve(ENTRIES_PER_FRAME as usize).is_err() {
            return GNTST_general_error;
        }
        let Some(mfn) = mem::alloc_frame() else { return GNTST_general_error };
        phys::zero_frame(mfn);
        if crate::pv::mmu::share_with(d.id, mfn, true).is_err() {
            mem::with_frames(|a| a.free(mfn));
            return GNTST_general_error;
        }
        d.grant_frames.push(mfn);
        d.grant_pins.resize(d.grant_frames.len() * ENTRIES_PER_FRAME as usize, GrantPin::default());
    }
    GNTST_okay
}

/// The domain one side of a copy names (Xen's `gnttab_copy_lock_domain`): only
/// `DOMID_SELF` may name a frame directly, even the caller's own numeric id is refused.
fn copy_domain(doms: &mut impl DomainSet, p: &GnttabCopyPtr, by_ref: bool) -> Result<u16, i16> {
    if p.domid != DOMID_SELF.0 && !by_ref {
        return Err(GNTST_permission_denied);
    }
    let id = if p.domid == DOMID_SELF.0 { doms.current_id() } else { p.domid };
    doms.get(id).map(|d| d.id).ok_or(GNTST_bad_domain)
}

/// Claims one side of a copy (Xen's `gnttab_copy_claim_buf`): the frame a grant of
/// `owner` names (checked against its entry) or, by frame, one `owner` owns; with a
/// general reference, and the writable type for the destination. Page tables,
/// descriptor pages and read-only shared frames refuse the writable type:
/// `GNTST_general_error`; a frame `owner` does not own: `GNTST_bad_page`.
fn claim_side(doms: &mut impl DomainSet, owner: u16, p: &GnttabCopyPtr, by_ref: bool, write: bool) -> Result<FrameRef, i16> {
    let mfn = if by_ref {
        let me = doms.current_id();
        let g = doms.get(owner).ok_or(GNTST_bad_domain)?;
        let (_, e) = checked_entry(g, p.gref(), me, write)?;
        u64::from(e.frame)
    } else {
        p.u
    };
    crate::pv::mmu::with(|t, hw| t.get_frame_ref(hw, DomId(owner), Mfn(mfn), write)).map_err(|e| match e {
        FrameRefError::NotOwned => GNTST_bad_page,
        FrameRefError::NotWritable => GNTST_general_error,
    })
}

/// Drops a claim; a frame whose owner died meanwhile is freed with its last reference.
fn release_side(r: FrameRef) {
    if crate::pv::mmu::with(|t, hw| t.put_frame_ref(hw, r)) {
        mem::with_frames(|a| a.free(r.mfn().0));
    }
}

/// One `GNTTABOP_copy` (Xen's `gnttab_copy_one`): domains, source, destination, then
/// the bounds; both frames are referenced (the destination with the writable type)
/// for the duration of the copy.
fn grant_copy(doms: &mut impl DomainSet, op: &GnttabCopy) -> Result<(), i16> {
    let src_by_ref = op.flags & GNTCOPY_source_gref != 0;
    let dst_by_ref = op.flags & GNTCOPY_dest_gref != 0;
    let src_dom = copy_domain(doms, &op.source, src_by_ref)?;
    let dst_dom = copy_domain(doms, &op.dest, dst_by_ref)?;
    let src = claim_side(doms, src_dom, &op.source, src_by_ref, false)?;
    let dst = match claim_side(doms, dst_dom, &op.dest, dst_by_ref, true) {
        Ok(d) => d,
        Err(st) => {
            release_side(src);
            return Err(st);
        }
    };
    let len = u64::from(op.len);
    let r = if u64::from(op.source.offset) + len > 4096 || u64::from(op.dest.offset) + len > 4096 {
        Err(GNTST_bad_copy_arg)
    } else {
        let mut buf = [0u8; 4096];
        let n = len as usize;
        let done = crate::pv::mmu::read_held(src, u64::from(op.source.offset), &mut buf[..n])
            && crate::pv::mmu::write_held(dst, u64::from(op.dest.offset), &buf[..n]);
        if done {
            Ok(())
        } else {
            Err(GNTST_general_error)
        }
    };
    release_side(dst);
    release_side(src);
    r
}

/// Shows in `granter`'s entry `gref` whether it is mapped (`GTF_reading`) and mapped
/// writable (`GTF_writing`), from its pin counts: constant work per call.
fn refresh_flags(doms: &mut impl DomainSet, granter: u16, gref: u32) {
    let Some(g) = doms.get(granter) else { return };
    let Some(at) = entry_maddr(g, gref) else { return };
    let pin = g.grant_pins.get(gref as usize).copied().unwrap_or_default();
    let reading = pin.read_only > 0 || pin.writable > 0;
    let mut flags = Gtf::from_bits_retain(read_entry(at).flags);
    flags.set(Gtf::READING, reading);
    flags.set(Gtf::WRITING, pin.writable > 0);
    write_flags(at, flags);
}

/// Counts one more mapping of `granter`'s entry `gref` (`add`) or one fewer, and shows it
/// in the entry's flags.
fn adjust_pin(doms: &mut impl DomainSet, granter: u16, gref: u32, writable: bool, add: bool) {
    if let Some(p) = doms.get_mut(granter).and_then(|g| g.grant_pins.get_mut(gref as usize)) {
        let c = if writable { &mut p.writable } else { &mut p.read_only };
        *c = if add { c.saturating_add(1) } else { c.saturating_sub(1) };
    }
    refresh_flags(doms, granter, gref);
}

/// A mapping of `granter`'s entry `gref` went away without `unmap_one` (its mapper died).
pub fn unpin(doms: &mut impl DomainSet, granter: u16, gref: u32, writable: bool) {
    adjust_pin(doms, granter, gref, writable, false);
}

/// Xen refuses another pin of a kind once its 8-bit counter reaches 128
/// (`GNTPIN_incr2oflow_mask`).
const PIN_LIMIT: u32 = 128;

/// The handle the next mapping of `d` gets (the lowest unused), growing the maptrack
/// by one if none is free: fallible, and bounded by Xen's default maptrack size.
fn free_handle(d: &mut Domain) -> Result<u32, i16> {
    if let Some(&core::cmp::Reverse(h)) = d.maptrack_free.peek() {
        return Ok(h);
    }
    if d.maptrack.len() + d.maptrack_vcpus.count_ones() as usize >= MAX_MAPTRACK {
        return Err(GNTST_no_space);
    }
    let spare = (d.maptrack.len() + 1).saturating_sub(d.maptrack_free.len());
    if !growth_fits(d, spare) {
        return Err(GNTST_no_space);
    }
    if d.maptrack.try_reserve(1).is_err() || d.maptrack_free.try_reserve(spare).is_err() {
        return Err(GNTST_no_space);
    }
    let h = d.maptrack.len() as u32;
    d.maptrack.push(None);
    d.maptrack_free.push(core::cmp::Reverse(h));
    Ok(h)
}

/// Whether growing `d`'s maptrack by one handle (and its free list by `spare`) leaves
/// the heap at least `MAPTRACK_HEAP_FLOOR` free, counting what a reallocation takes
/// while the old copy still exists (capacity doubles).
fn growth_fits(d: &Domain, spare: usize) -> bool {
    let mut need = 0;
    if d.maptrack.len() == d.maptrack.capacity() {
        need += 2 * d.maptrack.capacity().max(4) * core::mem::size_of::<Option<GrantMapping>>();
    }
    if d.maptrack_free.capacity() < d.maptrack_free.len() + spare {
        need += 2 * (d.maptrack_free.len() + spare).max(4) * core::mem::size_of::<u32>();
    }
    need == 0 || mem::heap_free() >= need + MAPTRACK_HEAP_FLOOR
}

/// A refused map: the granter's entry shows its flags as its pins say again.
fn refused(doms: &mut impl DomainSet, granter: u16, gref: u32, st: i16) -> i16 {
    refresh_flags(doms, granter, gref);
    st
}

fn map_one(doms: &mut impl DomainSet, guest: &GuestView, op: &GnttabMapGrantRef) -> Result<(u32, u64), i16> {
    let me = doms.current_id();
    let flags = op.map_flags();
    if !flags.intersects(GntMap::HOST_MAP | GntMap::DEVICE_MAP) {
        return Err(GNTST_bad_gntref);
    }
    // A host mapping, by virtual address, or (Linux's gntdev in a PV dom0) by the
    // machine address of the PTE to write, 8-byte aligned, in one of the caller's L1
    // tables (`grant_map` checks the table), for user space with application_map.
    if !flags.contains(GntMap::HOST_MAP) {
        return Err(GNTST_general_error);
    }
    let by_pte = flags.contains(GntMap::CONTAINS_PTE);
    if by_pte && op.host_addr & 7 != 0 {
        return Err(GNTST_general_error);
    }
    // DOMID_SELF is not a domain here, as in Xen.
    doms.get(op.dom).ok_or(GNTST_bad_domain)?;
    // Xen takes a maptrack handle here, before the entry is looked at: from now on this
    // vCPU keeps the tail of its own free list.
    let vcpu = doms.cur().cur_vcpu.min(63);
    doms.cur().maptrack_vcpus |= 1 << vcpu;
    let g = doms.get(op.dom).ok_or(GNTST_bad_domain)?;
    let writable = !flags.contains(GntMap::READONLY);
    let e = claim_entry(g, op.ref_, me, writable)?;
    // From here a refusal shows the entry's flags as its pins say again.
    let refused = |doms: &mut _, st| refused(doms, op.dom, op.ref_, st);
    let frame = u64::from(e.frame);
    if !g.owns(frame) {
        return Err(refused(doms, GNTST_general_error));
    }
    let pin = g.grant_pins.get(op.ref_ as usize).copied().unwrap_or_default();
    if (if writable { pin.writable } else { pin.read_only }) >= PIN_LIMIT {
        return Err(refused(doms, GNTST_general_error));
    }
    let (l1, index) = if by_pte {
        (op.host_addr >> 12, ((op.host_addr & 0xfff) >> 3) as usize)
    } else {
        guest.l1_slot(op.host_addr).ok_or_else(|| refused(doms, GNTST_general_error))?
    };
    let handle = match free_handle(doms.cur()) {
        Ok(h) => h,
        Err(st) => return Err(refused(doms, st)),
    };
    if crate::pv::mmu::with(|t, hw| t.grant_map(hw, DomId(me), DomId(op.dom), Mfn(l1), index, Mfn(frame), writable)).is_err() {
        return Err(refused(doms, GNTST_general_error));
    }
    // By PTE the virtual address is not known: whatever the entry held goes everywhere.
    if by_pte {
        crate::arch::x86_64::smp::flush_tlb_current();
    } else {
        crate::arch::x86_64::smp::invlpg_current(op.host_addr);
    }
    let d = doms.cur();
    d.maptrack_free.pop();
    d.maptrack[handle as usize] = Some(GrantMapping {
        granter: op.dom,
        gref: op.ref_,
        frame,
        host_addr: op.host_addr,
        l1,
        index,
        writable,
        by_pte,
    });
    adjust_pin(doms, op.dom, op.ref_, writable, true);
    Ok((handle, frame))
}

/// Removes mapping `handle` of the current domain; `host_addr` 0 skips the address check
/// (teardown).
pub fn unmap_one(doms: &mut impl DomainSet, handle: u32, host_addr: u64) -> Result<(), i16> {
    let me = doms.current_id();
    let m = doms.cur().maptrack.get(handle as usize).copied().flatten().ok_or(GNTST_bad_handle)?;
    if host_addr != 0 && host_addr != m.host_addr {
        return Err(GNTST_general_error);
    }
    let d = doms.cur();
    d.maptrack[handle as usize] = None;
    // Capacity for every handle is reserved when the maptrack grows: no allocation.
    d.maptrack_free.push(core::cmp::Reverse(handle));
    let unmapped = crate::pv::mmu::with(|t, hw| {
        let r = t.grant_unmap(hw, DomId(me), Mfn(m.l1), m.index, Mfn(m.frame));
        // A granter that died while we held its page leaves it to us: free it now. A
        // page it had been lent (a ring) went back to the hypervisor at its death; once
        // unreferenced it is free too.
        let f = Mfn(m.frame);
        let lent_back = t.page(f).is_some_and(|p| p.owner() == crate::mm::Owner::Xen && p.count() == 0);
        if lent_back {
            t.set_owner_at_boot(f, crate::mm::Owner::None);
        }
        let free = t.page(f).is_some_and(|p| p.is_free());
        (r, free)
    });
    if m.by_pte {
        crate::arch::x86_64::smp::flush_tlb_current();
    } else {
        crate::arch::x86_64::smp::invlpg_current(m.host_addr);
    }
    if unmapped.1 {
        // A living granter gave it back while we mapped it: it no longer waits for it.
        if let Some(g) = doms.get_mut(m.granter) {
            g.given_back.remove(&m.frame);
        }
        mem::with_frames(|a| a.free(m.frame));
        crate::println!("d{}'s page {:#x} freed: its last grant mapping (by d{me}) is gone", m.granter, m.frame);
    }
    adjust_pin(doms, m.granter, m.gref, m.writable, false);
    // The guest overwrote the mapping itself: the references are gone, the entry too.
    unmapped.0.map_err(|_| GNTST_general_error)
}
