//! Each CPU's GDT and TSS, and the IDT they share.
//!
//! Xen's reserved descriptors start at byte 0xe000 of the GDT (the pages below are the
//! guest's, through `set_gdt`), so the selectors guests know are real: 0xe008 hypervisor
//! code, 0xe023/0xe02b/0xe033 ring-3 compat code, data and 64-bit code. The LDT of the
//! vCPU a CPU runs is described at 0xe050 (Xen's `LDT_ENTRY`), over that CPU's LDT window.

//!
//! Descriptor encodings, the TSS and the loads come from the `x86_64` crate. The GDT and
//! IDT arrays stay our own: guests own the GDT's entries below 0xe000 (the crate's
//! `GlobalDescriptorTable` only appends), and the IDT's gates point at `entry.s` stubs.

use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::{lgdt, lidt, load_tss};
use x86_64::registers::model_specific::{LStar, SFMask, Star};
use x86_64::registers::rflags::RFlags;
use x86_64::structures::gdt::{Descriptor, DescriptorFlags, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::structures::DescriptorTablePointer;
use x86_64::VirtAddr;
use super::percpu::{self, MAX_CPUS};
use super::paging;
use crate::mm::{LdtPages, LDT_PAGES};
use xen_abi::Mfn;

pub const FIRST_RESERVED_GDT_ENTRY: usize = 0xe000 / 8;
pub const HYPERVISOR_CS: u16 = 0xe008;
pub const HYPERVISOR_DS: u16 = 0xe010;
pub const FLAT_RING3_CS32: u16 = 0xe023;
pub const FLAT_RING3_DS: u16 = 0xe02b;
pub const FLAT_RING3_CS64: u16 = 0xe033;
const TSS_SELECTOR: u16 = 0xe040;
const LDT_SELECTOR: u16 = 0xe050;

const GDT_ENTRIES: usize = FIRST_RESERVED_GDT_ENTRY + 16;

#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

/// One per CPU, locked for the Rust side; each CPU reads its own through GDTR (and marks
/// descriptors accessed or busy), as for any GDT. The guest part holds the checked
/// descriptors of the vCPU that CPU runs.
static GDT: [spin::Mutex<Gdt>; MAX_CPUS] = [const { spin::Mutex::new(Gdt([0; GDT_ENTRIES])) }; MAX_CPUS];
static TSS: [spin::Once<TaskStateSegment>; MAX_CPUS] = [const { spin::Once::new() }; MAX_CPUS];
static mut IDT: [[u64; 2]; 256] = [[0; 2]; 256];

extern "C" {
    static vector_table: [u64; 32];
    static vector_spurious_table: [u64; 5];
    static syscall_entries: [u64; MAX_CPUS];
    static syscall_stack_slots: [u64; MAX_CPUS];
}

/// A flat code or data descriptor as Xen writes them: the crate's, accessed bit clear.
const fn segment(flags: DescriptorFlags) -> u64 {
    flags.difference(DescriptorFlags::ACCESSED).bits()
}

const RING0_CODE64: u64 = segment(DescriptorFlags::KERNEL_CODE64);
const RING0_DATA: u64 = segment(DescriptorFlags::KERNEL_DATA);
const RING3_CODE32: u64 = segment(DescriptorFlags::USER_CODE32);
const RING3_DATA: u64 = segment(DescriptorFlags::USER_DATA);
const RING3_CODE64: u64 = segment(DescriptorFlags::USER_CODE64);
const RING0_CODE32: u64 = segment(DescriptorFlags::KERNEL_CODE32);
const _: () = assert!(RING0_CODE64 == 0x00af_9a00_0000_ffff && RING0_DATA == 0x00cf_9200_0000_ffff);
const _: () = assert!(RING3_CODE32 == 0x00cf_fa00_0000_ffff && RING3_DATA == 0x00cf_f200_0000_ffff);
const _: () = assert!(RING3_CODE64 == 0x00af_fa00_0000_ffff && RING0_CODE32 == 0x00cf_9a00_0000_ffff);

fn idt_gate(handler: u64, dpl: u64, ist: u64) -> [u64; 2] {
    let lo = (handler & 0xffff)
        | (u64::from(HYPERVISOR_CS) << 16)
        | (ist << 32)
        | ((0x8e | (dpl << 5)) << 40) // present, 64-bit interrupt gate
        | ((handler >> 16) & 0xffff) << 48;
    [lo, handler >> 32]
}

/// Loads CPU `cpu`'s GDT and TSS and the IDT (CPU 0 fills it) and programs SYSCALL:
/// once per CPU as it comes up, before it runs any guest.
pub fn init(cpu: usize) {
    let cpu = cpu.min(MAX_CPUS - 1);
    let stack_top = percpu::stack_top(cpu);
    let tss = TSS[cpu].call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.privilege_stack_table[0] = VirtAddr::new(stack_top);
        tss.interrupt_stack_table[0] = VirtAddr::new(percpu::ist_top(cpu));
        tss
    });
    let Descriptor::SystemSegment(tss_lo, tss_hi) = Descriptor::tss_segment(tss) else {
        unreachable!("a TSS descriptor is a system segment")
    };
    // SAFETY: runs once per CPU as it comes up (the IDT is filled once, by CPU 0, before
    // any other CPU starts), so nothing else writes these statics meanwhile; the
    // descriptors written are the ones the selectors above name, so the segment and TSS
    // loads find what they expect, and the SYSCALL slot is this CPU's own.
    let lstar = unsafe {
        let mut gdt = GDT[cpu].lock();
        let e = FIRST_RESERVED_GDT_ENTRY;
        gdt.0[e + 1] = RING0_CODE64; // 0xe008
        gdt.0[e + 2] = RING0_DATA; // 0xe010
        gdt.0[e + 4] = RING3_CODE32; // 0xe023
        gdt.0[e + 5] = RING3_DATA; // 0xe02b
        gdt.0[e + 6] = RING3_CODE64; // 0xe033
        gdt.0[e + 7] = RING0_CODE32; // 0xe038
        gdt.0[e + 8] = tss_lo; // 0xe040: present, available 64-bit TSS
        gdt.0[e + 9] = tss_hi;

        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        if cpu == 0 {
            let vectors = &*core::ptr::addr_of!(vector_table);
            for (v, &handler) in vectors.iter().enumerate() {
                // int3 and into may be raised from guest kernels (ring 3) on purpose.
                let dpl = if v == 3 || v == 4 { 3 } else { 0 };
                let ist = if v == 2 || v == 8 || v == 18 { 1 } else { 0 };
                idt[v] = idt_gate(handler, dpl, ist);
            }
            let spurious = &*core::ptr::addr_of!(vector_spurious_table);
            idt[0xf0] = idt_gate(spurious[1], 0, 0);
            idt[0xff] = idt_gate(spurious[2], 0, 0);
            idt[super::smp::RESCHEDULE_VECTOR as usize] = idt_gate(spurious[3], 0, 0);
            idt[super::smp::FLUSH_VECTOR as usize] = idt_gate(spurious[4], 0, 0);
        }

        // The static stays where it is: GDTR may point into it after the guard goes.
        lgdt(&DescriptorTablePointer { limit: (GDT_ENTRIES * 8 - 1) as u16, base: VirtAddr::from_ptr(&*gdt) });
        drop(gdt);
        lidt(&DescriptorTablePointer { limit: (256 * 16 - 1) as u16, base: VirtAddr::from_ptr(idt) });
        CS::set_reg(SegmentSelector(HYPERVISOR_CS));
        for load in [DS::set_reg, ES::set_reg, SS::set_reg] {
            load(SegmentSelector(HYPERVISOR_DS));
        }
        load_tss(SegmentSelector(TSS_SELECTOR));
        *(syscall_stack_slots[cpu] as *mut u64) = stack_top;
        syscall_entries[cpu]
    };
    let sel = SegmentSelector;
    Star::write(sel(FLAT_RING3_CS64), sel(FLAT_RING3_DS), sel(HYPERVISOR_CS), sel(HYPERVISOR_DS))
        .expect("the reserved selectors are laid out for SYSCALL/SYSRET");
    LStar::write(VirtAddr::new(lstar));
    // Clear TF, IF, DF, IOPL, NT, AC on entry.
    SFMask::write(
        RFlags::TRAP_FLAG
            | RFlags::INTERRUPT_FLAG
            | RFlags::DIRECTION_FLAG
            | RFlags::IOPL_LOW
            | RFlags::IOPL_HIGH
            | RFlags::NESTED_TASK
            | RFlags::ALIGNMENT_CHECK,
    );
}

/// How many guest entries each CPU's GDT holds now (the rest of the guest part is zero),
/// so a switch between vCPUs only rewrites what they use.
static GUEST_ENTRIES: [core::sync::atomic::AtomicUsize; MAX_CPUS] =
    [const { core::sync::atomic::AtomicUsize::new(0) }; MAX_CPUS];

/// Replaces the guest part of the GDT (entries below FIRST_RESERVED_GDT_ENTRY) with
/// already-checked descriptors; the rest of that part becomes not-present.
pub fn load_guest_descriptors(descs: &[u64]) {
    use core::sync::atomic::Ordering;
    let n = descs.len().min(FIRST_RESERVED_GDT_ENTRY);
    let cpu = percpu::cpu_index();
    let old = GUEST_ENTRIES[cpu].swap(n, Ordering::Relaxed);
    // The guest part is never loaded by the hypervisor itself, so no live selector of
    // ours changes under us.
    let mut gdt = GDT[cpu].lock();
    gdt.0[..n].copy_from_slice(&descs[..n]);
    if old > n {
        gdt.0[n..old].fill(0);
    }
}

/// Updates one checked guest descriptor.
pub fn set_guest_descriptor(index: usize, desc: u64) {
    if index < FIRST_RESERVED_GDT_ENTRY {
        GDT[percpu::cpu_index()].lock().0[index] = desc;
    }
}

/// Whether `sel` (RPL forced to 3) names a present, DPL-3 descriptor in the guest part
/// of the GDT: a code segment for CS, a writable data segment for SS.
pub fn guest_selector_ok(sel: u64, code: bool) -> bool {
    let index = (sel >> 3) as usize;
    if sel & 4 != 0 || index >= FIRST_RESERVED_GDT_ENTRY || sel > 0xffff {
        return false;
    }
    let d = DescriptorFlags::from_bits_retain(GDT[percpu::cpu_index()].lock().0[index]);
    let present_user = d.contains(DescriptorFlags::PRESENT | DescriptorFlags::DPL_RING_3 | DescriptorFlags::USER_SEGMENT);
    let is_code = d.contains(DescriptorFlags::EXECUTABLE);
    let writable_data = !is_code && d.contains(DescriptorFlags::WRITABLE);
    present_user && if code { is_code } else { writable_data }
}

/// What each CPU's LDT window maps, by page, and how many descriptors its LDTR covers
/// (0: a null LDTR).
struct LdtWindow {
    pages: LdtPages,
    ents: u32,
}

static LDT_WINDOW: [spin::Mutex<LdtWindow>; MAX_CPUS] =
    [const { spin::Mutex::new(LdtWindow { pages: [None; LDT_PAGES], ents: 0 }) }; MAX_CPUS];

/// Loads the LDT of the vCPU this CPU runs next (or none, `ents` 0): `ents` descriptors
/// seen through this CPU's LDT window, whose pages map the vCPU's mapped LDT pages
/// `pages` (the others are mapped on their first fault, as Xen's). Only what changed is
/// rewritten.
pub fn load_ldt(ents: u32, pages: &LdtPages) {
    let cpu = percpu::cpu_index();
    let mut window = LDT_WINDOW[cpu].lock();
    for (page, (cur, &new)) in window.pages.iter_mut().zip(pages).enumerate() {
        if *cur != new {
            paging::set_ldt_page(cpu, page, new.map(|m| m.0));
            *cur = new;
        }
    }
    let ents = ents.min((LDT_PAGES * 512) as u32);
    if window.ents == ents {
        return;
    }
    window.ents = ents;
    let selector = if ents == 0 {
        0
    } else {
        let base = paging::ldt_window(cpu);
        let limit = u64::from(ents) * 8 - 1;
        let lo = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x82 << 40) // present, DPL 0, LDT
            | (((limit >> 16) & 0xf) << 48)
            | (((base >> 24) & 0xff) << 56);
        let mut gdt = GDT[cpu].lock();
        gdt.0[FIRST_RESERVED_GDT_ENTRY + 10] = lo;
        gdt.0[FIRST_RESERVED_GDT_ENTRY + 11] = base >> 32;
        LDT_SELECTOR
    };
    // SAFETY: 0 (no LDT) or this CPU's LDT descriptor, just written into its own GDT,
    // which GDTR names: an LDT over this CPU's window, where only pages holding checked
    // descriptors are ever mapped. The hypervisor itself loads no selector from it.
    unsafe {
        core::arch::asm!("lldt {0:x}", in(reg) selector, options(nostack, preserves_flags));
    }
}

/// Drops this CPU's LDT (nothing to run).
pub fn unload_ldt() {
    load_ldt(0, &[None; LDT_PAGES]);
}

/// The offset into the LDT if `va` is in this CPU's LDT window.
pub fn ldt_window_offset(va: u64) -> Option<u64> {
    let offset = va.wrapping_sub(paging::ldt_window(percpu::cpu_index()));
    (offset < LDT_PAGES as u64 * 4096).then_some(offset)
}

/// Maps page `page` of the LDT this CPU runs with (its first fault).
pub fn map_ldt_page(page: usize, mfn: Mfn) {
    let cpu = percpu::cpu_index();
    if let Some(slot) = LDT_WINDOW[cpu].lock().pages.get_mut(page) {
        *slot = Some(mfn);
        paging::set_ldt_page(cpu, page, Some(mfn.0));
    }
}
