//! `memory_op` (reservation queries, the machphys mapping) and the grant-table sub-ops a
//! domain needs to set its own table up.

use super::domain::Domain;
use super::hypercall::HcResult;
use crate::arch::x86_64::guest::GuestView;
use crate::arch::x86_64::{mem, phys};
use xen_abi::arch_x86_64::{MACH2PHYS_VIRT_END, MACH2PHYS_VIRT_START};
use xen_abi::errno::Errno;
use xen_abi::grant_table::*;
use xen_abi::memory::*;
use xen_abi::xen::DOMID_SELF;

pub fn memory_op(d: &mut Domain, guest: &GuestView, cmd: u64, arg: u64) -> HcResult {
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
        XENMEM_decrease_reservation => decrease_reservation(d, guest, arg),
        // A PV domain without a toolstack-set E820 gets -ENOSYS, as from Xen.
        _ => Err(Errno::ENOSYS),
    }
}

/// Xen 4.17's default `gnttab_max_frames`.
pub const MAX_GRANT_FRAMES: u32 = 64;

pub fn grant_table_op(d: &mut Domain, guest: &GuestView, cmd: u32, arg: u64, count: u64) -> HcResult {
    if count == 0 {
        return Ok(0);
    }
    // Sub-ops on the caller's own table take exactly one argument structure.
    let single = matches!(cmd, GNTTABOP_setup_table | GNTTABOP_query_size | GNTTABOP_set_version | GNTTABOP_get_version);
    if single && count != 1 {
        return Err(Errno::EINVAL);
    }
    match cmd {
        GNTTABOP_query_size => {
            let mut q: GnttabQuerySize = guest.read(arg)?;
            q.status = if q.dom == DOMID_SELF.0 || q.dom == d.id {
                q.nr_frames = d.grant_frames.len() as u32;
                q.max_nr_frames = MAX_GRANT_FRAMES;
                GNTST_okay
            } else {
                GNTST_bad_domain
            };
            guest.write(arg, &q)?;
            Ok(0)
        }
        GNTTABOP_setup_table => {
            let mut s: GnttabSetupTable = guest.read(arg)?;
            if s.dom != DOMID_SELF.0 && s.dom != d.id {
                s.status = GNTST_bad_domain;
            } else if s.nr_frames > MAX_GRANT_FRAMES {
                s.status = GNTST_general_error;
            } else {
                while d.grant_frames.len() < s.nr_frames as usize {
                    let Some(mfn) = mem::alloc_frame() else {
                        s.status = GNTST_general_error;
                        guest.write(arg, &s)?;
                        return Ok(0);
                    };
                    phys::zero_frame(mfn);
                    if super::mmu::share_with(d.id, mfn, true).is_err() {
                        s.status = GNTST_general_error;
                        guest.write(arg, &s)?;
                        return Ok(0);
                    }
                    d.grant_frames.push(mfn);
                }
                for (i, mfn) in d.grant_frames.iter().take(s.nr_frames as usize).enumerate() {
                    guest.write(s.frame_list.wrapping_add(8 * i as u64), mfn)?;
                }
                s.status = GNTST_okay;
            }
            guest.write(arg, &s)?;
            Ok(0)
        }
        GNTTABOP_copy => {
            let size = core::mem::size_of::<GnttabCopy>() as u64;
            for i in 0..count {
                let at = arg.wrapping_add(i.wrapping_mul(size));
                let mut op: GnttabCopy = guest.read(at)?;
                op.status = match grant_copy(d, &op) {
                    Ok(()) => GNTST_okay,
                    Err(st) => st,
                };
                guest.write(at, &op)?;
            }
            Ok(0)
        }
        GNTTABOP_map_grant_ref => {
            // Only the granting domain's id names a table; DOMID_SELF and unknown ids are
            // a bad domain, per operation, as in Xen.
            let size = core::mem::size_of::<GnttabMapGrantRef>() as u64;
            for i in 0..count {
                let at = arg.wrapping_add(i.wrapping_mul(size));
                let mut op: GnttabMapGrantRef = guest.read(at)?;
                if op.dom != d.id {
                    op.status = GNTST_bad_domain;
                    guest.write(at, &op)?;
                    continue;
                }
                // Mapping a grant into the mapper's page tables arrives with inter-domain
                // I/O (grant maps across domains); a domain mapping its own grants is
                // refused until then.
                return Err(Errno::ENOSYS);
            }
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
            if v.dom != DOMID_SELF.0 && v.dom != d.id {
                return Err(Errno::ESRCH);
            }
            v.version = 1;
            guest.write(arg, &v)?;
            Ok(0)
        }
        _ => Err(Errno::ENOSYS),
    }
}

/// Grant entries per 4 KiB frame (v1, 8 bytes each).
const ENTRIES_PER_FRAME: u32 = 512;

/// The machine address one side of a copy names: a granted frame (checked against the
/// granter's entry) or one of the caller's own frames.
fn copy_side(d: &Domain, p: &GnttabCopyPtr, by_ref: bool, write: bool) -> Result<u64, i16> {
    if p.domid != DOMID_SELF.0 && p.domid != d.id {
        // No other domains exist yet; only the caller can name its own frames by MFN.
        return Err(if by_ref { GNTST_bad_domain } else { GNTST_permission_denied });
    }
    let mfn = if by_ref {
        let gref = p.gref();
        let frame = d.grant_frames.get((gref / ENTRIES_PER_FRAME) as usize).ok_or(GNTST_bad_gntref)?;
        let mut e = GrantEntryV1::default();
        phys::read_bytes((frame << 12) + u64::from(gref % ENTRIES_PER_FRAME) * 8, zerocopy::IntoBytes::as_mut_bytes(&mut e));
        if e.flags & GTF_type_mask != GTF_permit_access || e.domid != d.id || (write && e.flags & GTF_readonly != 0) {
            return Err(GNTST_permission_denied);
        }
        u64::from(e.frame)
    } else {
        p.u
    };
    let pfn = super::m2p::get(mfn);
    if d.p2m.get(pfn as usize) != Some(&mfn) {
        return Err(GNTST_bad_page);
    }
    Ok(mfn << 12)
}

fn grant_copy(d: &Domain, op: &GnttabCopy) -> Result<(), i16> {
    let len = u64::from(op.len);
    if u64::from(op.source.offset) + len > 4096 || u64::from(op.dest.offset) + len > 4096 {
        return Err(GNTST_general_error);
    }
    let src = copy_side(d, &op.source, op.flags & GNTCOPY_source_gref != 0, false)?;
    let dst = copy_side(d, &op.dest, op.flags & GNTCOPY_dest_gref != 0, true)?;
    let mut buf = [0u8; 4096];
    let n = len as usize;
    phys::read_bytes(src + u64::from(op.source.offset), &mut buf[..n]);
    phys::write_bytes(dst + u64::from(op.dest.offset), &buf[..n]);
    Ok(())
}

/// `XENMEM_decrease_reservation`: gives frames back; returns how many extents were done.
fn decrease_reservation(d: &mut Domain, guest: &GuestView, arg: u64) -> HcResult {
    let r: XenMemoryReservation = guest.read(arg)?;
    if r.domid != DOMID_SELF.0 && r.domid != d.id {
        return Err(Errno::ESRCH);
    }
    // Xen's guest_handle_okay: a bad list means nothing is done.
    let list_ok = r.nr_extents >> 32 == 0 && (r.extent_start < (1 << 47) || r.extent_start >= 0xffff_8800_0000_0000);
    if !list_ok || r.extent_order != 0 {
        return Ok(0);
    }
    for i in 0..r.nr_extents {
        let Ok(mfn) = guest.read::<u64>(r.extent_start.wrapping_add(8 * i)) else { return Ok(i) };
        let pfn = super::m2p::get(mfn);
        if d.p2m.get(pfn as usize) != Some(&mfn) {
            return Ok(i);
        }
        let freed = super::mmu::with(|t, hw| {
            t.release_frame(hw, xen_abi::DomId(d.id), xen_abi::Mfn(mfn))?;
            Ok::<bool, Errno>(t.page(xen_abi::Mfn(mfn)).is_some_and(|p| p.is_free()))
        });
        match freed {
            Ok(free_now) => {
                super::m2p::set(mfn, super::m2p::INVALID_M2P_ENTRY);
                d.p2m[pfn as usize] = super::m2p::INVALID_M2P_ENTRY;
                crate::arch::x86_64::cpu::flush_tlb();
                if free_now {
                    mem::with_frames(|a| a.free(mfn));
                }
            }
            Err(_) => return Ok(i),
        }
    }
    Ok(r.nr_extents)
}
