//! Clocks: the TSC (calibrated against the PIT) for system time, the local APIC timer
//! for one-shot deadlines, and the CMOS RTC for the wallclock at boot.

use super::layout::phys_to_virt;
use super::port::{own_read_u8, own_write_u8};
use super::cpu;
use crate::time::{unix_seconds, TimeScale};
use core::sync::atomic::{AtomicU64, Ordering};

const PIT_HZ: u64 = 1_193_182;
use super::percpu::MAX_CPUS;

const LAPIC_BASE: u64 = 0xfee0_0000;
const LAPIC_EOI: u64 = 0xb0;
const LAPIC_SVR: u64 = 0xf0;
const LAPIC_LVT_TIMER: u64 = 0x320;
const LAPIC_TIMER_INIT: u64 = 0x380;
const LAPIC_TIMER_CUR: u64 = 0x390;
const LAPIC_TIMER_DIV: u64 = 0x3e0;
/// The vector the APIC timer raises (entry.s has a stub for it).
pub const TIMER_VECTOR: u32 = 0xf0;
pub const SPURIOUS_VECTOR: u32 = 0xff;

static TSC_HZ: AtomicU64 = AtomicU64::new(0);
static BOOT_TSC: AtomicU64 = AtomicU64::new(0);
static LAPIC_HZ: AtomicU64 = AtomicU64::new(0);
static TSC_MUL_SHIFT: AtomicU64 = AtomicU64::new(0);
static BOOT_WALLCLOCK: AtomicU64 = AtomicU64::new(0);

// The local APIC through its MMIO page in the direct map: the x86_64 crate has no APIC.
pub(crate) fn lapic_read(reg: u64) -> u32 {
    // SAFETY: the local APIC's MMIO page is inside the direct map (first 4 GiB); register
    // reads have no side effects.
    unsafe { core::ptr::read_volatile(phys_to_virt(LAPIC_BASE + reg) as *const u32) }
}

pub(crate) fn lapic_write(reg: u64, v: u32) {
    // SAFETY: as for lapic_read; the registers written are the timer, divide, SVR and
    // EOI, which only affect this CPU's interrupt delivery.
    unsafe { core::ptr::write_volatile(phys_to_virt(LAPIC_BASE + reg) as *mut u32, v) }
}

/// Waits `count` PIT ticks on channel 2 and returns the TSC ticks that passed.
fn tsc_over_pit(count: u16) -> u64 {
    // PIT channel 2's gate (port 0x61) and mode/count (0x42, 0x43) drive the PC speaker
    // timer only; the speaker output stays disabled.
    const GATE: u16 = 0x61;
    let speaker = own_read_u8(GATE);
    own_write_u8(GATE, (speaker & !0x02) | 0x01);
    own_write_u8(0x43, 0xb0); // channel 2, lo/hi byte, mode 0, binary
    own_write_u8(0x42, count as u8);
    own_write_u8(0x42, (count >> 8) as u8);
    let t0 = cpu::rdtsc();
    while own_read_u8(GATE) & 0x20 == 0 {}
    cpu::rdtsc() - t0
}

fn bcd(v: u8, binary: bool) -> u32 {
    if binary {
        u32::from(v)
    } else {
        u32::from(v >> 4) * 10 + u32::from(v & 0xf)
    }
}

fn cmos(reg: u8) -> u8 {
    // Selecting a CMOS register (bit 7 clear: NMI stays enabled) and reading it.
    own_write_u8(0x70, reg & 0x7f);
    own_read_u8(0x71)
}

/// Wallclock seconds from the RTC (UTC, as QEMU keeps it by default).
fn read_rtc() -> u64 {
    while cmos(0x0a) & 0x80 != 0 {} // update in progress
    let binary = cmos(0x0b) & 0x04 != 0;
    let sec = bcd(cmos(0x00), binary);
    let min = bcd(cmos(0x02), binary);
    let hour = bcd(cmos(0x04) & 0x7f, binary);
    let day = bcd(cmos(0x07), binary);
    let month = bcd(cmos(0x08), binary);
    let year = bcd(cmos(0x09), binary) + 100 * bcd(cmos(0x32), binary).max(19);
    unix_seconds(year, month, day, hour, min, sec)
}

/// Calibrates the TSC and the APIC timer and enables the local APIC.
pub fn init() {
    let count = 59_659u16; // 50 ms
    let tsc_hz = tsc_over_pit(count) * PIT_HZ / u64::from(count);
    TSC_HZ.store(tsc_hz, Ordering::Relaxed);
    let s = TimeScale::from_hz(tsc_hz);
    TSC_MUL_SHIFT.store((u64::from(s.mul) << 8) | u64::from(s.shift as u8), Ordering::Relaxed);

    lapic_write(LAPIC_SVR, 0x100 | SPURIOUS_VECTOR);
    lapic_write(LAPIC_TIMER_DIV, 0xb); // divide by 1
    lapic_write(LAPIC_LVT_TIMER, 1 << 16); // masked while measuring
    lapic_write(LAPIC_TIMER_INIT, u32::MAX);
    let t0 = cpu::rdtsc();
    while cpu::rdtsc() - t0 < tsc_hz / 100 {}
    let ticks = u64::from(u32::MAX - lapic_read(LAPIC_TIMER_CUR));
    lapic_write(LAPIC_TIMER_INIT, 0);
    LAPIC_HZ.store((ticks * 100).max(1), Ordering::Relaxed);

    BOOT_WALLCLOCK.store(read_rtc(), Ordering::Relaxed);
    BOOT_TSC.store(cpu::rdtsc(), Ordering::Relaxed);
}

/// Enables another CPU's local APIC with the boot CPU's calibration (one clock for all:
/// QEMU's TSCs run together).
pub fn init_ap() {
    lapic_write(LAPIC_SVR, 0x100 | SPURIOUS_VECTOR);
    lapic_write(LAPIC_TIMER_DIV, 0xb);
    lapic_write(LAPIC_LVT_TIMER, 1 << 16);
    lapic_write(LAPIC_TIMER_INIT, 0);
}

pub fn tsc_hz() -> u64 {
    TSC_HZ.load(Ordering::Relaxed)
}

pub fn lapic_hz() -> u64 {
    LAPIC_HZ.load(Ordering::Relaxed)
}

/// The scale from TSC ticks to nanoseconds, as guests get it in `vcpu_time_info`.
pub fn tsc_scale() -> TimeScale {
    let v = TSC_MUL_SHIFT.load(Ordering::Relaxed);
    TimeScale { mul: (v >> 8) as u32, shift: v as u8 as i8 }
}

/// System time: nanoseconds since boot.
pub fn now_ns() -> u64 {
    tsc_scale().scale(cpu::rdtsc().wrapping_sub(BOOT_TSC.load(Ordering::Relaxed)))
}

/// The TSC value at system time 0.
pub fn boot_tsc() -> u64 {
    BOOT_TSC.load(Ordering::Relaxed)
}

/// Seconds since the epoch at system time 0.
pub fn boot_wallclock() -> u64 {
    BOOT_WALLCLOCK.load(Ordering::Relaxed)
}

/// The deadline each CPU's APIC timer is armed for (`DISARMED` when it is not).
static ARMED: [AtomicU64; MAX_CPUS] = [const { AtomicU64::new(DISARMED) }; MAX_CPUS];

fn armed() -> &'static AtomicU64 {
    &ARMED[super::percpu::cpu_index()]
}

/// Whether CPU `cpu`'s timer fires by `deadline_ns` (armed for it or earlier).
pub fn fires_by(cpu: usize, deadline_ns: u64) -> bool {
    ARMED.get(cpu).is_some_and(|a| a.load(Ordering::Relaxed) <= deadline_ns)
}
const DISARMED: u64 = u64::MAX;

/// Raises TIMER_VECTOR once, at about `deadline_ns` system time; None disarms.
/// Called on every return to a guest: the timer is programmed only when the deadline
/// changes or has passed, as each local APIC access is an exit to the emulator under
/// QEMU (two of them made a null hypercall several times slower).
pub fn arm(deadline_ns: Option<u64>) {
    let Some(deadline) = deadline_ns else {
        if armed().swap(DISARMED, Ordering::Relaxed) != DISARMED {
            lapic_write(LAPIC_TIMER_INIT, 0);
        }
        return;
    };
    let now = now_ns();
    if armed().load(Ordering::Relaxed) == deadline && deadline > now {
        return;
    }
    armed().store(deadline, Ordering::Relaxed);
    let delta = deadline.saturating_sub(now).max(1000);
    let ticks = (u128::from(delta) * u128::from(lapic_hz()) / 1_000_000_000).clamp(1, u128::from(u32::MAX));
    lapic_write(LAPIC_LVT_TIMER, TIMER_VECTOR); // one-shot
    lapic_write(LAPIC_TIMER_INIT, ticks as u32);
}

/// Acknowledges the timer interrupt: the one-shot timer is spent, so the next `arm`
/// programs it again whatever the deadline.
pub fn eoi() {
    armed().store(DISARMED, Ordering::Relaxed);
    lapic_write(LAPIC_EOI, 0);
}

/// Acknowledges an interrupt that is not the timer (an IPI).
pub fn ack() {
    lapic_write(LAPIC_EOI, 0);
}
