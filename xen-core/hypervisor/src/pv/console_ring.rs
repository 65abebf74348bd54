//! The console of a domain from the boot manifest (what xenconsoled is for a toolstack
//! domU): the domain's last page is its `xencons_interface` ring
//! (`start_info.console.domU`), an event channel whose far end is the hypervisor, and a
//! back-end here that prints the guest's output on the serial line with a `(dN) ` prefix
//! and feeds it the serial input while it has the console focus. The hypervisor holds a
//! writable type reference on the ring page for the domain's life, so the guest can't
//! turn it into a page table under our writes.

use crate::pv::domain::Domain;
use crate::pv::event::{self, Port};
use crate::arch::x86_64::phys;
use core::mem::offset_of;
use frontend_drivers::console;
use frontend_drivers::page::SharedPage;
use xen_abi::console::XENCONS_OUT_SIZE;
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

/// The ring page as the shared console-ring code (`frontend_drivers::console`, the same
/// back-end functions xenconsoled uses) sees it: reads and writes only through the
/// hypervisor's held writable reference, inside the page.
struct HeldPage(crate::mm::FrameRef);

impl SharedPage for HeldPage {
    fn load_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        crate::pv::mmu::read_held(self.0, off as u64, &mut b);
        u32::from_le_bytes(b)
    }

    fn store_u32(&self, off: usize, v: u32) {
        crate::pv::mmu::write_held(self.0, off as u64, &v.to_le_bytes());
    }

    fn read(&self, off: usize, buf: &mut [u8]) {
        crate::pv::mmu::read_held(self.0, off as u64, buf);
    }

    fn write(&self, off: usize, data: &[u8]) {
        crate::pv::mmu::write_held(self.0, off as u64, data);
    }
}

/// Gives domain `d` its console: the ring in its last page, a port, the start_info
/// fields. Called right after the domain is built, before it runs.
pub fn setup(d: &mut Domain) -> Result<ConsoleRing, &'static str> {
    let mfn = *d.p2m.last().ok_or("domain has no memory")?;
    let held = crate::pv::mmu::with(|t, hw| t.get_frame_ref(hw, DomId(d.id), Mfn(mfn), true));
    let held = held.map_err(|_| "console page refused a writable reference")?;
    let Ok(port) = d.evtchn.alloc() else {
        crate::pv::mmu::with(|t, hw| t.put_frame_ref(hw, held));
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
/// Indices come from the guest: one claiming more than the ring holds is refused by the
/// shared back-end code (nothing read or written), so one call does bounded work.
pub fn guest_wrote(d: &mut Domain) {
    let Some(ring) = d.console_ring else { return };
    let mut bytes = [0u8; XENCONS_OUT_SIZE];
    let Ok(n) = console::take_output(&HeldPage(ring.held), &mut bytes) else { return };
    crate::pv::hypercall::guest_console_write(d, &bytes[..n]);
    event::set_pending(d, ring.port);
}

/// Hands serial input to the domain's console (its `in` ring); returns how many bytes
/// fit (none for a guest that broke the ring). The guest is notified if any did.
pub fn feed_input(d: &mut Domain, input: &[u8]) -> usize {
    let Some(ring) = d.console_ring else { return 0 };
    let n = console::put_input(&HeldPage(ring.held), input).unwrap_or(0);
    if n > 0 {
        event::set_pending(d, ring.port);
    }
    n
}

/// Drops the hypervisor's reference on the ring page when the domain goes.
pub fn teardown(d: &mut Domain) {
    if let Some(ring) = d.console_ring.take() {
        crate::pv::mmu::with(|t, hw| t.put_frame_ref(hw, ring.held));
    }
}
