//! The other CPUs: each enabled local APIC the ACPI MADT lists is started with
//! INIT-SIPI-SIPI into `trampoline.s`, comes up on the hypervisor's page tables with its
//! own GDT, TSS, stacks and APIC timer, and waits for vCPUs to run. Between CPUs: a
//! reschedule IPI (something to run) and a TLB-flush IPI (a page-table change another
//! CPU may have cached).

use super::clock::{self, lapic_read, lapic_write};
use super::percpu::{self, MAX_CPUS};
use super::{cpu, gdt, phys};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};

pub const RESCHEDULE_VECTOR: u32 = 0xf1;
pub const FLUSH_VECTOR: u32 = 0xf2;

/// Where the trampoline is copied: below 1 MiB (the SIPI vector is its page number),
/// in low memory the frame allocator never hands out.
const TRAMPOLINE_PADDR: u64 = 0x8000;
const TRAMPOLINE_LEN: usize = 256;
const SLOT_CR3: u64 = 8;
const SLOT_STACK: u64 = 16;
const SLOT_ENTRY: u64 = 24;
const SLOT_CPU: u64 = 32;

const LAPIC_ID: u64 = 0x20;
const ICR_LO: u64 = 0x300;
const ICR_HI: u64 = 0x310;
const ICR_PENDING: u32 = 1 << 12;
const ICR_INIT: u32 = 0x4500;
const ICR_STARTUP: u32 = 0x4600;
const ICR_FIXED: u32 = 0x4000;

extern "C" {
    static ap_trampoline: [u8; TRAMPOLINE_LEN];
    static boot_pml4: u8;
}

/// Local APIC id of each CPU by index.
static APIC_ID: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];
/// CPUs up (the boot CPU is).
static ONLINE: AtomicUsize = AtomicUsize::new(1);
/// The hypervisor's page tables, which each CPU loads as it comes up.
static PML4: AtomicU64 = AtomicU64::new(0);
/// The domain each CPU runs a vCPU of (id + 1; 0 when idle): the CPUs a domain's
/// page-table change must reach (a CPU switching domains reloads CR3, flushing).
static RUNNING_DOMAIN: [AtomicU32; MAX_CPUS] = [const { AtomicU32::new(0) }; MAX_CPUS];

/// Records which domain's vCPU this CPU runs (None: idle).
pub fn set_running_domain(dom: Option<u16>) {
    RUNNING_DOMAIN[percpu::cpu_index()].store(dom.map_or(0, |d| u32::from(d) + 1), Ordering::Release);
}

/// Set by a CPU that must flush its TLB; it clears it when done.
static FLUSH_PENDING: [AtomicBool; MAX_CPUS] = [const { AtomicBool::new(false) }; MAX_CPUS];

/// How many CPUs run.
pub fn online() -> usize {
    ONLINE.load(Ordering::Acquire)
}

fn wait_us(us: u64) {
    let t0 = cpu::rdtsc();
    let ticks = clock::tsc_hz() / 1_000_000 * us;
    while cpu::rdtsc().wrapping_sub(t0) < ticks {
        core::hint::spin_loop();
    }
}

fn send_icr(apic_id: u32, low: u32) {
    while lapic_read(ICR_LO) & ICR_PENDING != 0 {
        core::hint::spin_loop();
    }
    lapic_write(ICR_HI, apic_id << 24);
    lapic_write(ICR_LO, low);
}

/// Starts every CPU in `apic_ids` but this one, at most `max` CPUs in all; returns how
/// many run. `ap_main(cpu)` is where each begins in Rust.
pub fn start_aps(apic_ids: &[u32], max: usize, pml4_mfn: u64, ap_main: extern "C" fn(usize) -> !) -> usize {
    let me = lapic_read(LAPIC_ID) >> 24;
    APIC_ID[0].store(me, Ordering::Relaxed);
    PML4.store(pml4_mfn, Ordering::Relaxed);
    if apic_ids.len() < 2 || max < 2 {
        return online();
    }
    // The trampoline's bytes (trampoline.s, padded to TRAMPOLINE_LEN), read through the
    // direct map at the image's physical address (virtual = XEN_VIRT_START + physical).
    let mut code = [0u8; TRAMPOLINE_LEN];
    phys::read_bytes(core::ptr::addr_of!(ap_trampoline) as u64 - super::layout::XEN_VIRT_START, &mut code);
    phys::write_bytes(TRAMPOLINE_PADDR, &code);
    // Linked in .bss.boot at its physical address.
    let boot_l4 = core::ptr::addr_of!(boot_pml4) as u64;
    for (cpu, &id) in (1..).zip(apic_ids.iter().filter(|&&id| id != me)) {
        if cpu >= max.min(MAX_CPUS) {
            break;
        }
        APIC_ID[cpu].store(id, Ordering::Relaxed);
        phys::write_bytes(TRAMPOLINE_PADDR + SLOT_CR3, &boot_l4.to_le_bytes());
        // Below the top, where the first guest frame of this CPU will go.
        phys::write_bytes(TRAMPOLINE_PADDR + SLOT_STACK, &(percpu::stack_top(cpu) - 8192).to_le_bytes());
        phys::write_bytes(TRAMPOLINE_PADDR + SLOT_ENTRY, &(ap_main as usize as u64).to_le_bytes());
        phys::write_bytes(TRAMPOLINE_PADDR + SLOT_CPU, &(cpu as u64).to_le_bytes());
        let before = online();
        send_icr(id, ICR_INIT);
        wait_us(10_000);
        for _ in 0..2 {
            send_icr(id, ICR_STARTUP | (TRAMPOLINE_PADDR >> 12) as u32);
            wait_us(200);
        }
        let t0 = cpu::rdtsc();
        while online() == before && cpu::rdtsc().wrapping_sub(t0) < clock::tsc_hz() {
            core::hint::spin_loop();
        }
        if online() == before {
            crate::println!("CPU{cpu} (APIC id {id}) did not start");
            break;
        }
    }
    online()
}

/// What a CPU that just came up does before it can run vCPUs.
pub fn init_this_ap(cpu: usize) {
    cpu::write_cr3(PML4.load(Ordering::Relaxed) << 12);
    cpu::enable_nx_and_wp();
    gdt::init(cpu);
    cpu::enable_fpu();
    clock::init_ap();
    crate::println!("CPU{cpu} up (APIC id {})", APIC_ID[cpu].load(Ordering::Relaxed));
    ONLINE.fetch_add(1, Ordering::AcqRel);
}

/// Switches this CPU to the hypervisor's own page tables: a CPU with no vCPU to run must
/// not stay on the last guest's, whose frames may be freed and reused meanwhile (Xen's
/// idle vCPU has `idle_pg_table` for the same reason).
pub fn load_idle_page_tables() {
    let pml4 = PML4.load(Ordering::Relaxed);
    if pml4 != 0 && cpu::read_cr3() >> 12 != pml4 {
        cpu::write_cr3(pml4 << 12);
    }
}

/// Asks CPU `cpu` to look for something to run.
pub fn kick(cpu: usize) {
    if cpu < online() && cpu != percpu::cpu_index() {
        send_icr(APIC_ID[cpu].load(Ordering::Relaxed), ICR_FIXED | RESCHEDULE_VECTOR);
    }
}

/// Flushes this CPU's TLB and every other running CPU's, waiting until they have (a
/// page-table change or an unmapped frame must not stay reachable through a cached
/// translation on another CPU).
pub fn flush_tlb_all() {
    cpu::flush_tlb();
    if online() > 1 {
        flush_others(None);
    }
}

/// Invalidates `va` here and flushes the TLBs of the other CPUs running `dom` (a
/// guest's page-table change: its vCPUs elsewhere must not keep the old translation).
pub fn invlpg_domain(dom: u16, va: u64) {
    cpu::invlpg(va);
    if online() > 1 {
        flush_others(Some(dom));
    }
}

/// The domain this CPU runs (the caller of a hypercall being handled).
fn this_domain() -> Option<u16> {
    let d = RUNNING_DOMAIN[percpu::cpu_index()].load(Ordering::Acquire);
    (d != 0).then(|| (d - 1) as u16)
}

/// [`invlpg_domain`] for the domain this CPU runs.
pub fn invlpg_current(va: u64) {
    match this_domain() {
        Some(d) => invlpg_domain(d, va),
        None => {
            cpu::invlpg(va);
            if online() > 1 {
                flush_others(None);
            }
        }
    }
}

/// [`flush_tlb_domain`] for the domain this CPU runs.
pub fn flush_tlb_current() {
    match this_domain() {
        Some(d) => flush_tlb_domain(d),
        None => flush_tlb_all(),
    }
}

/// Flushes this CPU's TLB and those of the other CPUs running `dom`.
pub fn flush_tlb_domain(dom: u16) {
    cpu::flush_tlb();
    if online() > 1 {
        flush_others(Some(dom));
    }
}

/// Flushes the other CPUs running `dom` (every other CPU for None) and waits for them.
fn flush_others(dom: Option<u16>) {
    let me = percpu::cpu_index();
    let n = online();
    let target = |c: usize| c != me && dom.is_none_or(|d| RUNNING_DOMAIN[c].load(Ordering::Acquire) == u32::from(d) + 1);
    for c in (0..n).filter(|&c| target(c)) {
        FLUSH_PENDING[c].store(true, Ordering::Release);
        send_icr(APIC_ID[c].load(Ordering::Relaxed), ICR_FIXED | FLUSH_VECTOR);
    }
    let since = cpu::rdtsc();
    for (c, pending) in FLUSH_PENDING.iter().enumerate().take(n) {
        let mut said = false;
        while c != me && pending.load(Ordering::Acquire) {
            // That CPU may itself be waiting for this one's flush.
            service_flush();
            core::hint::spin_loop();
            // A CPU that does not answer for a second is a hang: say so (once).
            if !said && cpu::rdtsc().wrapping_sub(since) > clock::tsc_hz() {
                said = true;
                crate::println!("CPU{me}: CPU{c} has not done the TLB flush asked of it for 1 s");
            }
        }
    }
}

/// Spins until `take` succeeds. Meanwhile this CPU still does the TLB flushes asked
/// of it: it waits with interrupts off, so the IPI can't reach it, and the CPU that
/// asked may hold what this one waits for.
pub fn spin_for<G>(what: &str, mut take: impl FnMut() -> Option<G>) -> G {
    if let Some(g) = take() {
        return g;
    }
    let since = cpu::rdtsc();
    let mut said = false;
    loop {
        if let Some(g) = take() {
            return g;
        }
        service_flush();
        core::hint::spin_loop();
        // A lock held for seconds is a hang: say so (once), and keep waiting.
        if !said && cpu::rdtsc().wrapping_sub(since) > 2 * clock::tsc_hz() {
            said = true;
            crate::println!("CPU{} has waited 2 s for {what}", percpu::cpu_index());
        }
    }
}

/// Does a flush another CPU asked of this one (from the flush IPI, or while waiting for
/// the domain lock with interrupts off).
pub fn service_flush() {
    let me = percpu::cpu_index();
    if FLUSH_PENDING[me].load(Ordering::Acquire) {
        cpu::flush_tlb();
        FLUSH_PENDING[me].store(false, Ordering::Release);
    }
}
