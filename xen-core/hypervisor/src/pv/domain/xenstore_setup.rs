//! What the toolstack does for xenstore when it builds a domain (libxl / libxenguest),
//! done by the hypervisor for domains from the boot manifest: a ring page (one of the
//! domain's own, the one before its console page, as libxenguest takes special pages
//! from the guest: a guest translates `store_mfn` through the M2P), grant
//! reference 1 (`GNTTAB_RESERVED_XENSTORE`) granting it to the xenstore domain, an
//! event channel between the two, and `start_info.store_mfn` / `store_evtchn`.

use crate::pv::event::Port;
use crate::pv::grant;
use crate::pv::sched::Domains;
use crate::arch::x86_64::phys;
use core::mem::offset_of;
use xen_abi::grant_table::{GrantEntryV1, GNTST_okay, GTF_permit_access};
use xen_abi::xen::StartInfo;

/// Connects domain `id` to the xenstore domain `xs` (whose end is port `xs_port`).
/// Returns (ring mfn, the domain's port).
pub fn connect(doms: &mut Domains, id: u16, xs: u16, xs_port: u32) -> Result<(u64, u32), &'static str> {
    let d = doms.get_mut(id).ok_or("no such domain")?;
    let pfn = d.p2m.len().checked_sub(2).ok_or("domain too small")?;
    let mfn = d.p2m[pfn];
    phys::zero_frame(mfn);
    if grant::grow_table(d, 1) != GNTST_okay {
        return Err("no grant table");
    }
    let entry = GrantEntryV1 { flags: GTF_permit_access, domid: xs, frame: mfn as u32 };
    if !grant::write_entry(d, 1, entry) {
        return Err("cannot seed grant reference 1");
    }
    let port = d.evtchn.alloc().map_err(|_| "no free port")?;
    d.evtchn.bind_at(port, Port::Interdomain { remote_dom: xs, remote_port: xs_port }).map_err(|_| "port in use")?;
    let si = d.start_info_maddr;
    phys::write_bytes(si + offset_of!(StartInfo, store_mfn) as u64, &mfn.to_le_bytes());
    phys::write_bytes(si + offset_of!(StartInfo, store_evtchn) as u64, &port.to_le_bytes());
    let x = doms.get_mut(xs).ok_or("no xenstore domain")?;
    x.evtchn.bind_at(xs_port, Port::Interdomain { remote_dom: id, remote_port: port }).map_err(|_| "xenstore port in use")?;
    Ok((mfn, port))
}
