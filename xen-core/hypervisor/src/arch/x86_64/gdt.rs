//! The GDT, TSS and IDT of CPU 0.
//!
//! Xen's reserved descriptors start at byte 0xe000 of the GDT (the pages below are the
//! guest's, through `set_gdt`), so the selectors guests know are real: 0xe008 hypervisor
//! code, 0xe023/0xe02b/0xe033 ring-3 compat code, data and 64-bit code.

use super::cpu;

pub const FIRST_RESERVED_GDT_ENTRY: usize = 0xe000 / 8;
pub const HYPERVISOR_CS: u16 = 0xe008;
pub const HYPERVISOR_DS: u16 = 0xe010;
pub const FLAT_RING3_CS32: u16 = 0xe023;
pub const FLAT_RING3_DS: u16 = 0xe02b;
pub const FLAT_RING3_CS64: u16 = 0xe033;
const TSS_SELECTOR: u16 = 0xe040;

const GDT_ENTRIES: usize = FIRST_RESERVED_GDT_ENTRY + 16;

#[repr(C, align(4096))]
struct Gdt([u64; GDT_ENTRIES]);

#[repr(C, packed)]
struct Tss {
    _r0: u32,
    rsp: [u64; 3],
    _r1: u64,
    ist: [u64; 7],
    _r2: u64,
    _r3: u16,
    iomap_base: u16,
}

#[repr(C, align(16))]
struct Stack([u8; 16 * 1024]);

static mut GDT: Gdt = Gdt([0; GDT_ENTRIES]);
static mut TSS: Tss = Tss { _r0: 0, rsp: [0; 3], _r1: 0, ist: [0; 7], _r2: 0, _r3: 0, iomap_base: 104 };
static mut IDT: [[u64; 2]; 256] = [[0; 2]; 256];
/// For double faults, NMIs and machine checks, which may arrive on a broken stack.
static mut IST_STACK: Stack = Stack([0; 16 * 1024]);

extern "C" {
    static vector_table: [u64; 32];
    static vector_spurious_table: [u64; 3];
    static hv_stack_top: u8;
    static mut syscall_stack_top: u64;
    fn syscall_entry();
}

#[repr(C, packed)]
struct Pointer {
    limit: u16,
    base: u64,
}

fn idt_gate(handler: u64, dpl: u64, ist: u64) -> [u64; 2] {
    let lo = (handler & 0xffff)
        | (u64::from(HYPERVISOR_CS) << 16)
        | (ist << 32)
        | ((0x8e | (dpl << 5)) << 40) // present, 64-bit interrupt gate
        | ((handler >> 16) & 0xffff) << 48;
    [lo, handler >> 32]
}

/// Loads the GDT, TSS and IDT and programs SYSCALL. Called once, on CPU 0, before any
/// guest runs.
pub fn init() {
    // SAFETY: called once during single-threaded boot; nothing else references these
    // statics yet, and the descriptors written are the ones the selectors above name.
    unsafe {
        let gdt = &mut *core::ptr::addr_of_mut!(GDT);
        let e = FIRST_RESERVED_GDT_ENTRY;
        gdt.0[e + 1] = 0x00af_9a00_0000_ffff; // 0xe008 ring 0 code, 64-bit
        gdt.0[e + 2] = 0x00cf_9200_0000_ffff; // 0xe010 ring 0 data
        gdt.0[e + 4] = 0x00cf_fa00_0000_ffff; // 0xe023 ring 3 code, compat
        gdt.0[e + 5] = 0x00cf_f200_0000_ffff; // 0xe02b ring 3 data
        gdt.0[e + 6] = 0x00af_fa00_0000_ffff; // 0xe033 ring 3 code, 64-bit
        gdt.0[e + 7] = 0x00cf_9a00_0000_ffff; // 0xe038 ring 0 code, compat

        let tss = &mut *core::ptr::addr_of_mut!(TSS);
        let stack_top = core::ptr::addr_of!(hv_stack_top) as u64;
        tss.rsp[0] = stack_top;
        tss.ist[0] = core::ptr::addr_of!(IST_STACK) as u64 + 16 * 1024;
        let base = tss as *const Tss as u64;
        let limit = core::mem::size_of::<Tss>() as u64 - 1;
        gdt.0[e + 8] = (limit & 0xffff)
            | ((base & 0xff_ffff) << 16)
            | (0x89 << 40) // present, available 64-bit TSS
            | (((base >> 24) & 0xff) << 56);
        gdt.0[e + 9] = base >> 32;

        let idt = &mut *core::ptr::addr_of_mut!(IDT);
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

        let gdtr = Pointer { limit: (GDT_ENTRIES * 8 - 1) as u16, base: gdt as *const Gdt as u64 };
        let idtr = Pointer { limit: (256 * 16 - 1) as u16, base: idt.as_ptr() as u64 };
        core::arch::asm!(
            "lgdt [{gdtr}]",
            "lidt [{idtr}]",
            // Reload CS through a far return, then the data segments.
            "push {cs}",
            "lea {tmp}, [rip + 2f]",
            "push {tmp}",
            "retfq",
            "2:",
            "mov ds, {ds:x}",
            "mov es, {ds:x}",
            "mov ss, {ds:x}",
            "ltr {tss:x}",
            gdtr = in(reg) &gdtr,
            idtr = in(reg) &idtr,
            cs = in(reg) u64::from(HYPERVISOR_CS),
            ds = in(reg) HYPERVISOR_DS,
            tss = in(reg) TSS_SELECTOR,
            tmp = out(reg) _,
        );

        *core::ptr::addr_of_mut!(syscall_stack_top) = stack_top;
        cpu::wrmsr(cpu::MSR_STAR, (u64::from(FLAT_RING3_CS32) << 48) | (u64::from(HYPERVISOR_CS) << 32));
        cpu::wrmsr(cpu::MSR_LSTAR, syscall_entry as *const () as u64);
        // Clear TF, IF, DF, IOPL, NT, AC on entry.
        cpu::wrmsr(cpu::MSR_FMASK, 0x4_7700);
    }
}

/// How many guest entries the GDT holds now (the rest of the guest part is zero), so a
/// switch between domains only rewrites what they use.
static GUEST_ENTRIES: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Replaces the guest part of the GDT (entries below FIRST_RESERVED_GDT_ENTRY) with
/// already-checked descriptors; the rest of that part becomes not-present.
pub fn load_guest_descriptors(descs: &[u64]) {
    use core::sync::atomic::Ordering;
    let n = descs.len().min(FIRST_RESERVED_GDT_ENTRY);
    let old = GUEST_ENTRIES.swap(n, Ordering::Relaxed);
    // SAFETY: one CPU; the GDT is only written here and in init, and the guest part is
    // never loaded by the hypervisor itself, so no live selector changes under us.
    let gdt = unsafe { &mut *core::ptr::addr_of_mut!(GDT) };
    gdt.0[..n].copy_from_slice(&descs[..n]);
    if old > n {
        gdt.0[n..old].fill(0);
    }
}

/// Updates one checked guest descriptor.
pub fn set_guest_descriptor(index: usize, desc: u64) {
    if index < FIRST_RESERVED_GDT_ENTRY {
        // SAFETY: as for load_guest_descriptors.
        unsafe { (*core::ptr::addr_of_mut!(GDT)).0[index] = desc };
    }
}

/// Whether `sel` (RPL forced to 3) names a present, DPL-3 descriptor in the guest part
/// of the GDT: a code segment for CS, a writable data segment for SS.
pub fn guest_selector_ok(sel: u64, code: bool) -> bool {
    let index = (sel >> 3) as usize;
    if sel & 4 != 0 || index >= FIRST_RESERVED_GDT_ENTRY || sel > 0xffff {
        return false;
    }
    // SAFETY: a read of the GDT under the same single-CPU discipline as the writers.
    let d = unsafe { (*core::ptr::addr_of!(GDT)).0[index] };
    let present_user = d & (1 << 47) != 0 && (d >> 45) & 3 == 3 && d & (1 << 44) != 0;
    let is_code = d & (1 << 43) != 0;
    let writable_data = !is_code && d & (1 << 41) != 0;
    present_user && if code { is_code } else { writable_data }
}
