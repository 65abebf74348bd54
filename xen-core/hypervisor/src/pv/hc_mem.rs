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
        XENMEM_machphys_mapping => {
            let mut m = XenMachphysMapping { v_start: MACH2PHYS_VIRT_START, v_end: MACH2PHYS_VIRT_END, max_mfn: 0 };
            m.max_mfn = super::m2p::entries() - 1;
            guest.write(arg, &m)?;
            Ok(0)
        }
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
