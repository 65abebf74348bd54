//! The console of a domain from the boot manifest (what xenconsoled is for a toolstack
//! domU): the domain's last page is its `xencons_interface` ring
//! (`start_info.console.domU`), an event channel whose far end is the hypervisor, and a
//! back-end here that prints the guest's output on the serial line with a `(dN) ` prefix
//! and feeds it the serial input while it has the console focus. The hypervisor holds a
//! writable type reference on the ring page for the domain's life, so the guest can't
//! turn it into a page table under our writes.

use super::domain::Domain;
use super::events::{self, Port};
use crate::arch::x86_64::phys;
use core::mem::offset_of;
use xen_abi::console::{mask_xencons_in_idx, mask_xencons_out_idx, XenconsInterface, XENCONS_IN_SIZE, XENCONS_OUT_SIZE};
use xen_abi::xen::StartInfo;
use xen_abi::{DomId, Mfn};

/// The ring of a domain: its page and the domain's port.
#[derive(Clone, Copy, Debug)]
pub struct ConsoleRing {
    pub mfn: u64,
    pub port: u32,
    /// The hypervisor's writable reference on the page.
    held: crate::mm::FrameRef,
}

const OUT: u64 = offset_of!(XenconsInterface, out) as u64;
const IN: u64 = offset_of!(XenconsInterface, in_) as u64;
const IN_CONS: u64 = offset_of!(XenconsInterface, in_cons) as u64;
const IN_PROD: u64 = offset_of!(XenconsInterface, in_prod) as u64;
const OUT_CONS: u64 = offset_of!(XenconsInterface, out_cons) as u64;
const OUT_PROD: u64 = offset_of!(XenconsInterface, out_prod) as u64;

fn read_u32(maddr: u64) -> u32 {
    let mut b = [0u8; 4];
    phys::read_bytes(maddr, &mut b);
    u32::from_le_bytes(b)
}

fn write_u32(maddr: u64, v: u32) {
    phys::write_bytes(maddr, &v.to_le_bytes());
}

/// Gives domain `d` its console: the ring in its last page, a port, the start_info
/// fields. Called right after the domain is built, before it runs.
pub fn setup(d: &mut Domain) -> Result<ConsoleRing, &'static str> {
    let mfn = *d.p2m.last().ok_or("domain has no memory")?;
    let held = super::mmu::with(|t, hw| t.get_frame_ref(hw, DomId(d.id), Mfn(mfn), true));
    let held = held.map_err(|_| "console page refused a writable reference")?;
    let Ok(port) = d.evtchn.alloc() else {
        super::mmu::with(|t, hw| t.put_frame_ref(hw, held));
        return Err("no free port");
    };
    phys::zero_frame(mfn);
    d.evtchn.set(port, Port::HypervisorConsole);
    let si = d.start_info_maddr;
    phys::write_bytes(si + offset_of!(StartInfo, console_mfn) as u64, &mfn.to_le_bytes());
    phys::write_bytes(si + offset_of!(StartInfo, console_evtchn) as u64, &port.to_le_bytes());
    let ring = ConsoleRing { mfn, port, held };
    d.console_ring = Some(ring);
    Ok(ring)
}

/// The guest notified its console port: print what it wrote, free the space, notify.
/// Indices come from the guest: a producer more than a ring ahead is clamped to one ring
/// of bytes, as xenconsoled does, so one call does bounded work.
pub fn guest_wrote(d: &mut Domain) {
    let Some(ring) = d.console_ring else { return };
    let base = ring.mfn << 12;
    let (cons, prod) = (read_u32(base + OUT_CONS), read_u32(base + OUT_PROD));
    let avail = prod.wrapping_sub(cons).min(XENCONS_OUT_SIZE as u32);
    let mut bytes = [0u8; XENCONS_OUT_SIZE];
    for i in 0..avail {
        let mut b = [0u8];
        phys::read_bytes(base + OUT + mask_xencons_out_idx(cons.wrapping_add(i)) as u64, &mut b);
        bytes[i as usize] = b[0];
    }
    super::hypercall::guest_console_write(d, &bytes[..avail as usize]);
    write_u32(base + OUT_CONS, cons.wrapping_add(avail));
    events::set_pending(d, ring.port);
}

/// Hands serial input to the domain's console (its `in` ring); returns how many bytes
/// fit. The guest is notified if any did.
pub fn feed_input(d: &mut Domain, input: &[u8]) -> usize {
    let Some(ring) = d.console_ring else { return 0 };
    let base = ring.mfn << 12;
    let (cons, prod) = (read_u32(base + IN_CONS), read_u32(base + IN_PROD));
    let used = prod.wrapping_sub(cons);
    if used > XENCONS_IN_SIZE as u32 {
        return 0; // a guest that broke the ring gets nothing more
    }
    let room = (XENCONS_IN_SIZE as u32 - used) as usize;
    let n = room.min(input.len());
    for (i, &b) in input[..n].iter().enumerate() {
        phys::write_bytes(base + IN + mask_xencons_in_idx(prod.wrapping_add(i as u32)) as u64, &[b]);
    }
    if n > 0 {
        write_u32(base + IN_PROD, prod.wrapping_add(n as u32));
        events::set_pending(d, ring.port);
    }
    n
}

/// Drops the hypervisor's reference on the ring page when the domain goes.
pub fn teardown(d: &mut Domain) {
    if let Some(ring) = d.console_ring.take() {
        super::mmu::with(|t, hw| t.put_frame_ref(hw, ring.held));
    }
}
