//! Event channels (2-level ABI), timers and the time a PV guest reads from shared memory.
//!
//! Pending/mask bitmaps live in the domain's shared_info page and the selector and upcall
//! flag in the vcpu_info of the vCPU the port notifies (`EVTCHNOP_bind_vcpu`; VIRQs and
//! IPIs are bound to one vCPU). Guests on other CPUs change those words at any time, so
//! the hypervisor changes them with locked instructions.

pub mod hypercall;

use crate::pv::domain::{Domain, RunState};
use crate::arch::x86_64::{clock, cpu, phys};
use alloc::vec::Vec;
use core::mem::offset_of;
use xen_abi::errno::Errno;
use xen_abi::xen::{SharedInfo, VcpuInfo, VcpuTimeInfo, NR_VIRQS, VIRQ_TIMER};
use zerocopy::IntoBytes;

/// 2-level ABI on 64-bit: 64 selector bits x 64 bits per word.
pub const NR_EVENT_CHANNELS: u32 = 64 * 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Port {
    Free,
    /// Port 0 is never handed out.
    Reserved,
    Unbound { remote: u16 },
    Interdomain { remote_dom: u16, remote_port: u32 },
    Virq(u32),
    Ipi,
    /// The domain's console port; its far end is the hypervisor's console back-end
    /// (`console_ring`).
    HypervisorConsole,
}

/// Whether `virq` is one per domain (bound on vCPU 0, movable with `bind_vcpu`) rather
/// than one per vCPU (Xen's `virq_is_global`).
pub fn virq_is_global(virq: u32) -> bool {
    use xen_abi::xen::{VIRQ_DEBUG, VIRQ_XENOPROF, VIRQ_XENPMU};
    !matches!(virq, VIRQ_TIMER | VIRQ_DEBUG | VIRQ_XENOPROF | VIRQ_XENPMU)
}

/// The VIRQ bindings of one vCPU: the port of each VIRQ.
pub type VirqPorts = [Option<u32>; NR_VIRQS as usize];

#[derive(Debug)]
pub struct EventChannels {
    pub ports: Vec<Port>,
    /// The vCPU each port notifies (`notify_vcpu_id`), beside `ports`.
    notify: Vec<u32>,
    /// VIRQ bindings by vCPU (global VIRQs are bound on vCPU 0).
    virq: Vec<VirqPorts>,
}

impl Default for EventChannels {
    fn default() -> Self {
        EventChannels { ports: alloc::vec![Port::Reserved], notify: alloc::vec![0], virq: alloc::vec![[None; NR_VIRQS as usize]] }
    }
}

impl EventChannels {
    /// The lowest free port.
    pub fn alloc(&mut self) -> Result<u32, Errno> {
        if let Some(p) = self.ports.iter().position(|p| *p == Port::Free) {
            return Ok(p as u32);
        }
        if self.ports.len() as u32 >= NR_EVENT_CHANNELS {
            return Err(Errno::ENOSPC);
        }
        self.ports.push(Port::Free);
        self.notify.push(0);
        Ok(self.ports.len() as u32 - 1)
    }

    /// The vCPU `port` notifies.
    pub fn notify_vcpu(&self, port: u32) -> u32 {
        self.notify.get(port as usize).copied().unwrap_or(0)
    }

    pub fn set_notify_vcpu(&mut self, port: u32, vcpu: u32) {
        if let Some(n) = self.notify.get_mut(port as usize) {
            *n = vcpu;
        }
    }

    /// The port VIRQ `virq` of `vcpu` is bound to.
    pub fn virq_port(&self, vcpu: u32, virq: u32) -> Option<u32> {
        self.virq.get(vcpu as usize).and_then(|b| b.get(virq as usize)).copied().flatten()
    }

    /// Records (or, with None, forgets) the binding of `virq` on `vcpu` (`virq` below
    /// `NR_VIRQS`, checked by the caller).
    pub fn set_virq_port(&mut self, vcpu: u32, virq: u32, port: Option<u32>) {
        if self.virq.len() <= vcpu as usize {
            self.virq.resize(vcpu as usize + 1, [None; NR_VIRQS as usize]);
        }
        self.virq[vcpu as usize][virq as usize] = port;
    }

    /// Puts `port` (free, below the limit) into `state`: a static channel set at boot.
    pub fn bind_at(&mut self, port: u32, state: Port) -> Result<(), Errno> {
        if port == 0 || port >= NR_EVENT_CHANNELS {
            return Err(Errno::EINVAL);
        }
        if self.ports.len() <= port as usize {
            self.ports.resize(port as usize + 1, Port::Free);
            self.notify.resize(port as usize + 1, 0);
        }
        if self.ports[port as usize] != Port::Free {
            return Err(Errno::EEXIST);
        }
        self.ports[port as usize] = state;
        Ok(())
    }

    pub fn get(&self, port: u32) -> Option<Port> {
        self.ports.get(port as usize).copied()
    }

    /// Puts `port` into `state`; a port freed notifies vCPU 0 again when reused.
    pub fn set(&mut self, port: u32, state: Port) {
        if let Some(p) = self.ports.get_mut(port as usize) {
            *p = state;
            if state == Port::Free {
                self.set_notify_vcpu(port, 0);
            }
        }
    }
}

const PENDING: u64 = offset_of!(SharedInfo, evtchn_pending) as u64;
const MASK: u64 = offset_of!(SharedInfo, evtchn_mask) as u64;
const SEL: u64 = offset_of!(VcpuInfo, evtchn_pending_sel) as u64;
const UPCALL_PENDING: u64 = offset_of!(VcpuInfo, evtchn_upcall_pending) as u64;
const TIME: u64 = offset_of!(VcpuInfo, time) as u64;

fn word(maddr: u64) -> &'static core::sync::atomic::AtomicU64 {
    phys::atomic_u64(maddr)
}

const SEQ: core::sync::atomic::Ordering = core::sync::atomic::Ordering::SeqCst;

fn bit(base: u64, port: u32) -> (u64, u64) {
    (base + u64::from(port / 64) * 8, 1u64 << (port % 64))
}

/// Machine address of vCPU `v`'s `vcpu_info`, if it has one (a vCPU past the ones in
/// shared_info has none until it registers one).
fn vcpu_info(d: &Domain, v: u32) -> Option<u64> {
    d.vcpus.get(v as usize).map(|v| v.vcpu_info_maddr).filter(|&m| m != 0)
}

/// Marks the port's selector word and the upcall flag in the vcpu_info of the vCPU it
/// notifies, as Xen's 2-level `set_pending`. The words are the guest's too, which may
/// change them on another CPU meanwhile: locked bit operations, as Xen's.
fn mark_selector(d: &Domain, port: u32) {
    let Some(vi) = vcpu_info(d, d.evtchn.notify_vcpu(port)) else { return };
    let b = 1u64 << (port / 64);
    if word(vi + SEL).fetch_or(b, SEQ) & b == 0 {
        phys::write_bytes(vi + UPCALL_PENDING, &[1]);
    }
}

/// Sets `port` pending in `d` and raises the upcall if it is not masked.
pub fn set_pending(d: &Domain, port: u32) {
    let si = d.shared_info_mfn << 12;
    let (pw, pb) = bit(si + PENDING, port);
    if word(pw).fetch_or(pb, SEQ) & pb != 0 {
        return;
    }
    let (mw, mb) = bit(si + MASK, port);
    if word(mw).load(SEQ) & mb == 0 {
        mark_selector(d, port);
    }
}

pub fn is_pending(d: &Domain, port: u32) -> bool {
    let (pw, pb) = bit((d.shared_info_mfn << 12) + PENDING, port);
    word(pw).load(SEQ) & pb != 0
}

pub fn clear_pending(d: &Domain, port: u32) {
    let (pw, pb) = bit((d.shared_info_mfn << 12) + PENDING, port);
    word(pw).fetch_and(!pb, SEQ);
}

/// `EVTCHNOP_unmask`: clear the mask; a pending event then raises the upcall.
pub fn unmask(d: &Domain, port: u32) {
    let si = d.shared_info_mfn << 12;
    let (mw, mb) = bit(si + MASK, port);
    // As Xen's evtchn_2l_unmask: only a port this call unmasks is raised again. A guest
    // that cleared the mask bit itself must raise a pending event itself (Linux does).
    if word(mw).fetch_and(!mb, SEQ) & mb == 0 {
        return;
    }
    if is_pending(d, port) {
        mark_selector(d, port);
    }
}

/// Delivers a global VIRQ (bound on vCPU 0) if the domain bound it.
pub fn send_virq(d: &Domain, virq: u32) {
    send_vcpu_virq(d, 0, virq);
}

/// Delivers VIRQ `virq` of vCPU `vcpu` if it is bound there.
pub fn send_vcpu_virq(d: &Domain, vcpu: u32, virq: u32) {
    if let Some(port) = d.evtchn.virq_port(vcpu, virq) {
        set_pending(d, port);
    }
}

/// Fires vCPU `v`'s single-shot timer if it expired by `now`.
pub fn fire_timer(d: &mut Domain, v: usize, now: u64) {
    let Some(vcpu) = d.vcpus.get_mut(v) else { return };
    if vcpu.timer_deadline.is_some_and(|t| t <= now) {
        vcpu.timer_deadline = None;
        send_vcpu_virq(d, v as u32, VIRQ_TIMER);
    }
}

pub fn upcall_deliverable(d: &Domain, v: usize) -> bool {
    let Some(vi) = vcpu_info(d, v as u32) else { return false };
    let mut b = [0u8; 2];
    phys::read_bytes(vi + UPCALL_PENDING, &mut b);
    b == [1, 0] // pending, not masked (Xen tests the two bytes as one u16)
}

/// Whether vCPU `v`, blocked or polling, has a reason to run again.
pub fn wants_to_run(d: &Domain, v: usize) -> bool {
    let Some(vcpu) = d.vcpus.get(v) else { return false };
    match vcpu.run {
        RunState::Runnable => true,
        RunState::Blocked => upcall_deliverable(d, v),
        RunState::Polling { timeout } => {
            upcall_deliverable(d, v)
                || vcpu.poll_ports.iter().any(|&p| is_pending(d, p))
                || (timeout != 0 && clock::now_ns() >= timeout)
        }
    }
}

/// Publishes `vcpu_time_info` (version odd while writing, even when done) and the
/// wallclock, as Xen's `update_vcpu_system_time` / `update_domain_wallclock_time`.
pub fn update_time(d: &Domain) {
    if let Some(vi) = vcpu_info(d, d.cur_vcpu as u32) {
        write_vcpu_time(vi + TIME);
    }
    update_wallclock(d);
}

fn write_vcpu_time(at: u64) {
    let mut version = [0u8; 4];
    phys::read_bytes(at, &mut version);
    let v = u32::from_le_bytes(version).wrapping_add(1) | 1;
    phys::write_bytes(at, &v.to_le_bytes());
    let tsc = cpu::rdtsc();
    let scale = clock::tsc_scale();
    let info = VcpuTimeInfo {
        version: v,
        tsc_timestamp: tsc,
        system_time: scale.scale(tsc.wrapping_sub(clock::boot_tsc())),
        tsc_to_system_mul: scale.mul,
        tsc_shift: scale.shift,
        ..VcpuTimeInfo::default()
    };
    phys::write_bytes(at, info.as_bytes());
    phys::write_bytes(at, &v.wrapping_add(1).to_le_bytes());
}

fn update_wallclock(d: &Domain) {
    let si = d.shared_info_mfn << 12;
    let wc = si + offset_of!(SharedInfo, wc_version) as u64;
    let mut wv = [0u8; 4];
    phys::read_bytes(wc, &mut wv);
    let wv = u32::from_le_bytes(wv).wrapping_add(1) | 1;
    phys::write_bytes(wc, &wv.to_le_bytes());
    let secs = clock::boot_wallclock();
    phys::write_bytes(si + offset_of!(SharedInfo, wc_sec) as u64, &(secs as u32).to_le_bytes());
    phys::write_bytes(si + offset_of!(SharedInfo, wc_nsec) as u64, &0u32.to_le_bytes());
    phys::write_bytes(si + offset_of!(SharedInfo, wc_sec_hi) as u64, &((secs >> 32) as u32).to_le_bytes());
    phys::write_bytes(wc, &wv.wrapping_add(1).to_le_bytes());
}
