//! `memory_op` (reservation queries, the machphys mapping) and the grant-table sub-ops a
//! domain needs to set its own table up.

use crate::pv::domain::Domain;
use crate::pv::hypercall::{HcResult, Step, StepResult};
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::mem;
use xen_abi::arch_x86_64::{MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START};
use xen_abi::errno::Errno;
use xen_abi::memory::*;
use xen_abi::xen::DOMID_SELF;

/// The machine's memory map as the loader gave it (`XENMEM_machine_memory_map`).
pub static MACHINE_E820: spin::Once<alloc::vec::Vec<E820Entry>> = spin::Once::new();

/// `XENMEM_machine_memory_map` (hardware domain only): the machine E820. As Xen, a
/// buffer with room for fewer than all entries plus one is -EINVAL; a null buffer
/// only asks for the count.
fn machine_memory_map(d: &Domain, guest: &GuestView, arg: u64) -> HcResult {
    if !d.hardware {
        return Err(Errno::EPERM);
    }
    let mut map: XenMemoryMap = guest.read(arg)?;
    let e820 = MACHINE_E820.get().map_or(&[][..], |v| v.as_slice());
    if map.buffer != 0 {
        if (map.nr_entries as usize) < e820.len() + 1 {
            return Err(Errno::EINVAL);
        }
        for (i, e) in e820.iter().enumerate() {
            guest.write(map.buffer.wrapping_add(20 * i as u64), e)?;
        }
    }
    map.nr_entries = e820.len() as u32;
    guest.write(arg, &map)?;
    Ok(0)
}

/// Extents of a reservation op done per entry into the hypervisor; the rest continue
/// (the start extent in `cmd`'s bits above `MEMOP_EXTENT_SHIFT`, as Xen's).
pub const EXTENT_BATCH: u64 = 512;

pub fn memory_op(d: &mut Domain, guest: &GuestView, cmd: u64, arg: u64) -> StepResult {
    if (cmd & u64::from(MEMOP_CMD_MASK)) as u32 == XENMEM_decrease_reservation {
        return decrease_reservation(d, guest, cmd, arg);
    }
    other_op(d, guest, cmd, arg).map(Step::Done)
}

fn other_op(d: &mut Domain, guest: &GuestView, cmd: u64, arg: u64) -> HcResult {
    match (cmd & u64::from(MEMOP_CMD_MASK)) as u32 {
        XENMEM_current_reservation | XENMEM_maximum_reservation => {
            let mut dom = [0u8; 2];
            guest.copy_from(arg, &mut dom)?;
            let dom = u16::from_le_bytes(dom);
            if dom != DOMID_SELF.0 && dom != d.id {
                return Err(Errno::ESRCH);
            }
            Ok(if cmd as u32 == XENMEM_current_reservation { d.p2m.len() as u64 } else { d.max_pages })
        }
        XENMEM_maximum_ram_page => Ok(super::m2p::entries()),
        XENMEM_machphys_mfn_list => {
            // One MFN per 2 MiB extent of the M2P, as Xen lists its superpages.
            let mut l: XenMachphysMfnList = guest.read(arg)?;
            let extents = (super::m2p::entries() * 8).div_ceil(2 << 20);
            let n = u64::from(l.max_extents).min(extents);
            for i in 0..n {
                guest.write(l.extent_start.wrapping_add(8 * i), &(super::m2p::base_mfn() + i * 512))?;
            }
            l.nr_extents = n as u32;
            guest.write(arg, &l)?;
            Ok(0)
        }
        XENMEM_machphys_mapping => {
            let mut m = XenMachphysMapping { v_start: MACH2PHYS_VIRT_START, v_end: MACH2PHYS_VIRT_END, max_mfn: 0 };
            m.max_mfn = super::m2p::entries() - 1;
            guest.write(arg, &m)?;
            Ok(0)
        }
        XENMEM_machine_memory_map => machine_memory_map(d, guest, arg),
        // A PV domain without a toolstack-set E820 gets -ENOSYS, as from Xen.
        _ => Err(Errno::ENOSYS),
    }
}

/// Returns to the allocator the frames `d` gave back while they were still referenced
/// and that nothing references any more (at most one pass over the list).
fn sweep_given_back(d: &mut Domain) {
    d.given_back.retain(|&mfn| {
        let free = super::with(|t, _| t.page(xen_abi::Mfn(mfn)).is_some_and(|p| p.is_free()));
        if free {
            mem::with_frames(|a| a.free(mfn));
        }
        !free
    });
}

/// A reservation op's arguments after Xen's checks in `do_memory_op`, or the value to
/// return at once (the start extent: nothing done). `Ok((reservation, start))`.
pub fn reservation(guest: &GuestView, cmd: u64, arg: u64) -> Result<(XenMemoryReservation, u64), u64> {
    let start = cmd >> MEMOP_EXTENT_SHIFT;
    let r: XenMemoryReservation = guest.read(arg).map_err(|_| start)?;
    // Too large to encode a continuation, or nothing left.
    if r.nr_extents > u64::from(u32::MAX >> MEMOP_EXTENT_SHIFT) || start >= r.nr_extents {
        return Err(start);
    }
    Ok((r, start))
}

/// The continuation of reservation op `cmd` after `done` extents.
pub fn continue_at(cmd: u64, arg: u64, done: u64) -> Step {
    Step::More([(cmd & u64::from(MEMOP_CMD_MASK)) | (done << MEMOP_EXTENT_SHIFT), arg, 0, 0, 0])
}

/// `XENMEM_decrease_reservation`: gives frames back; returns how many extents were done
/// (counting those of earlier continuations), at most `EXTENT_BATCH` per entry. `d` is
/// the domain the frames are taken from: the caller, or (`pv::domctl::memory`) the
/// domain a privileged caller names; the list is read through the caller's `guest`.
pub fn decrease_reservation(d: &mut Domain, guest: &GuestView, cmd: u64, arg: u64) -> StepResult {
    let (r, start) = match reservation(guest, cmd, arg) {
        Ok(v) => v,
        Err(done) => return Ok(Step::Done(done)),
    };
    if r.domid != DOMID_SELF.0 && r.domid != d.id {
        return Ok(Step::Done(start));
    }
    // Xen's guest_handle_subrange_okay: a bad list means nothing is done.
    let list_ok = r.extent_start < (1 << 47) || r.extent_start >= 0xffff_8800_0000_0000;
    if !list_ok || r.extent_order != 0 {
        return Ok(Step::Done(start));
    }
    sweep_given_back(d);
    for i in start..r.nr_extents {
        if i - start == EXTENT_BATCH {
            return Ok(continue_at(cmd, arg, i));
        }
        let Ok(mfn) = guest.read::<u64>(r.extent_start.wrapping_add(8 * i)) else { return Ok(Step::Done(i)) };
        if !d.owns(mfn) {
            return Ok(Step::Done(i));
        }
        // Room to remember it if it stays referenced (no allocation failure later).
        if d.given_back.try_reserve(1).is_err() {
            return Ok(Step::Done(i));
        }
        let pfn = super::m2p::get(mfn);
        let freed = super::with(|t, hw| {
            t.release_frame(hw, xen_abi::DomId(d.id), xen_abi::Mfn(mfn))?;
            Ok::<bool, Errno>(t.page(xen_abi::Mfn(mfn)).is_some_and(|p| p.is_free()))
        });
        match freed {
            Ok(free_now) => {
                super::m2p::set(mfn, super::m2p::INVALID_M2P_ENTRY);
                if let Some(slot) = d.p2m.get_mut(pfn as usize).filter(|m| **m == mfn) {
                    *slot = super::m2p::INVALID_M2P_ENTRY;
                }
                crate::arch::x86_64::smp::flush_tlb_current();
                if free_now {
                    mem::with_frames(|a| a.free(mfn));
                } else {
                    // Still mapped or held by the hypervisor (Xen frees it with its last
                    // reference): returned once unreferenced, at the latest when the
                    // domain is destroyed.
                    d.given_back.insert(mfn);
                }
            }
            Err(_) => return Ok(Step::Done(i)),
        }
    }
    Ok(Step::Done(r.nr_extents))
}
