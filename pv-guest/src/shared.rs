//! The shared_info page (mapped by `start` in the window) and each vCPU's vcpu_info
//! (slot N of shared_info unless VCPUOP_register_vcpu_info moved it): event words, the
//! event mask, time and the wallclock. The accessors without a vCPU argument are the
//! running vCPU's.

use crate::arch::x86_64::cpu::rdtsc;
use crate::arch::x86_64::mem::WindowPage;
use crate::arch::x86_64::smp::{self, MAX_VCPUS};
use crate::events::EventWords;
use crate::time::{self, WallclockBase};
use core::mem::{offset_of, size_of};
use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use xen_abi::xen::{SharedInfo, VcpuInfo, VcpuTimeInfo};

static PAGE: AtomicU64 = AtomicU64::new(0);

pub fn set_page(page: WindowPage) {
    PAGE.store(page.va(), Ordering::Release);
}

pub fn page() -> Option<WindowPage> {
    match PAGE.load(Ordering::Acquire) {
        0 => None,
        va => Some(WindowPage::new(va)),
    }
}

fn si() -> WindowPage {
    page().expect("shared_info not mapped yet")
}

const fn vcpu_off(vcpu: usize, field: usize) -> usize {
    offset_of!(SharedInfo, vcpu_info) + vcpu * size_of::<VcpuInfo>() + field
}

/// Each vCPU's `vcpu_info` once `VCPUOP_register_vcpu_info` moved it: window page plus
/// offset (0 = still in shared_info).
static VCPU_INFO: [AtomicU64; MAX_VCPUS] = [const { AtomicU64::new(0) }; MAX_VCPUS];

/// The hypervisor now keeps the running vCPU's `vcpu_info` at `offset` of window page
/// `page`.
pub fn set_vcpu_info(page: WindowPage, offset: usize) {
    VCPU_INFO[smp::current()].store(page.va() + offset as u64, Ordering::Release);
}

/// Where field `field` of vCPU `cpu`'s `vcpu_info` is: page and offset in it.
fn vcpu_field(cpu: usize, field: usize) -> (WindowPage, usize) {
    match VCPU_INFO[cpu].load(Ordering::Acquire) {
        0 => (si(), vcpu_off(cpu, field)),
        va => (WindowPage::new(va & !0xfff), (va & 0xfff) as usize + field),
    }
}

fn cur(field: usize) -> (WindowPage, usize) {
    vcpu_field(smp::current(), field)
}

fn cur_u8(field: usize) -> &'static AtomicU8 {
    let (p, off) = cur(field);
    p.u8(off)
}

/// The running vCPU's `evtchn_upcall_mask`: its virtual interrupt flag (1 = masked).
pub fn upcall_mask() -> &'static AtomicU8 {
    cur_u8(offset_of!(VcpuInfo, evtchn_upcall_mask))
}

pub fn upcall_pending() -> &'static AtomicU8 {
    cur_u8(offset_of!(VcpuInfo, evtchn_upcall_pending))
}

pub fn pending_word(word: usize) -> &'static AtomicU64 {
    si().u64(offset_of!(SharedInfo, evtchn_pending) + word * 8)
}

pub fn mask_word(word: usize) -> &'static AtomicU64 {
    si().u64(offset_of!(SharedInfo, evtchn_mask) + word * 8)
}

/// `vcpu_info.arch.cr2`: the address of the last #PF Xen delivered.
pub fn cr2() -> u64 {
    if page().is_none() {
        return 0;
    }
    let (p, off) = cur(offset_of!(VcpuInfo, arch));
    p.u64(off).load(Ordering::Acquire)
}

/// vCPU `cpu`'s event words, for `events::scan`: its own selector and upcall flag, the
/// shared bitmaps, and only the ports bound to it (as Linux's per-CPU event masks).
#[derive(Debug)]
pub struct VcpuEvents {
    pub cpu: usize,
}

/// vCPU `cpu`'s `evtchn_pending_sel`, read without clearing it (for diagnostics).
pub fn pending_sel(cpu: usize) -> u64 {
    let (p, off) = vcpu_field(cpu, offset_of!(VcpuInfo, evtchn_pending_sel));
    p.u64(off).load(Ordering::SeqCst)
}

impl EventWords for VcpuEvents {
    fn clear_upcall_pending(&self) {
        let (p, off) = vcpu_field(self.cpu, offset_of!(VcpuInfo, evtchn_upcall_pending));
        p.u8(off).store(0, Ordering::SeqCst);
    }
    fn take_selector(&self) -> u64 {
        let (p, off) = vcpu_field(self.cpu, offset_of!(VcpuInfo, evtchn_pending_sel));
        p.u64(off).swap(0, Ordering::SeqCst)
    }
    fn owned(&self, word: usize) -> u64 {
        crate::evtchn::owned(self.cpu, word)
    }
    fn pending(&self, word: usize) -> u64 {
        pending_word(word).load(Ordering::Acquire)
    }
    fn masked(&self, word: usize) -> u64 {
        mask_word(word).load(Ordering::Acquire)
    }
    fn clear_pending(&self, word: usize, bits: u64) {
        pending_word(word).fetch_and(!bits, Ordering::SeqCst);
    }
}

/// A consistent copy of the running vCPU's `vcpu_time_info`.
pub fn time_info() -> VcpuTimeInfo {
    let (p, off) = cur(offset_of!(VcpuInfo, time));
    let version = p.u32(off + offset_of!(VcpuTimeInfo, version));
    time::read_versioned(|| version.load(Ordering::Acquire), || p.read::<VcpuTimeInfo>(off))
}

/// Xen system time now, in nanoseconds since boot.
pub fn now_ns() -> u64 {
    let info = time_info();
    time::system_time_ns(&info, rdtsc())
}

/// The wallclock base (time of day at system time 0), version-checked.
pub fn wallclock_base() -> WallclockBase {
    let p = si();
    let version = p.u32(offset_of!(SharedInfo, wc_version));
    time::read_versioned(
        || version.load(Ordering::Acquire),
        || {
            let f = |o| p.u32(o).load(Ordering::Relaxed);
            WallclockBase::from_fields(
                f(offset_of!(SharedInfo, wc_sec)),
                f(offset_of!(SharedInfo, wc_sec_hi)),
                f(offset_of!(SharedInfo, wc_nsec)),
            )
        },
    )
}

/// Time of day now (seconds, nanoseconds since the epoch).
pub fn wallclock() -> (u64, u32) {
    wallclock_base().at(now_ns())
}
