//! Control registers, MSRs, CPUID and descriptor-table loads.

//!
//! Registers, MSRs with a fixed meaning, TLB and interrupt instructions come from the
//! `x86_64` crate; our own `asm!` remains only where it lacks the operation: an rdmsr
//! that survives #GP, XSAVE/FXSAVE and CLTS-around-save, and `sti; hlt; cli` as one step.

use x86_64::instructions::{interrupts, tlb};
use x86_64::registers::control::{Cr0, Cr0Flags, Cr2, Cr3, Cr3Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags, FsBase, GsBase};
use x86_64::structures::paging::PhysFrame;
use x86_64::{PhysAddr, VirtAddr};

// rdmsr that may fault (x86_64's `Msr::read` has no fixup): a #GP at
// `xen_core_rdmsr_safe_insn` resumes at `xen_core_rdmsr_safe_fail` (the trap handler asks
// `rdmsr_fixup`). System V: edi = msr, rsi = where the value goes; eax = 0 on success, 1
// if the CPU refused the MSR.
core::arch::global_asm!(
    ".globl xen_core_rdmsr_safe",
    ".globl xen_core_rdmsr_safe_insn",
    ".globl xen_core_rdmsr_safe_fail",
    "xen_core_rdmsr_safe:",
    "mov ecx, edi",
    "xen_core_rdmsr_safe_insn:",
    "rdmsr",
    "shl rdx, 32",
    "mov eax, eax",
    "or rax, rdx",
    "mov [rsi], rax",
    "xor eax, eax",
    "ret",
    "xen_core_rdmsr_safe_fail:",
    "mov eax, 1",
    "ret",
);

extern "C" {
    fn xen_core_rdmsr_safe(msr: u32, out: *mut u64) -> u32;
    static xen_core_rdmsr_safe_insn: u8;
    static xen_core_rdmsr_safe_fail: u8;
}

/// Reads an MSR that may not exist on this CPU (a guest's view of a host value): None
/// where the CPU refuses it with #GP.
pub fn rdmsr_safe(msr: u32) -> Option<u64> {
    let mut value = 0u64;
    // SAFETY: the routine writes only `value` and has no other memory effect; a #GP at its
    // rdmsr resumes at its failure label (rdmsr_fixup), which returns 1.
    let failed = unsafe { xen_core_rdmsr_safe(msr, &mut value) };
    (failed == 0).then_some(value)
}

/// If a hypervisor #GP hit `rdmsr_safe`'s rdmsr, the address to resume at.
pub fn rdmsr_fixup(rip: u64) -> Option<u64> {
    let (insn, fail) = (core::ptr::addr_of!(xen_core_rdmsr_safe_insn) as u64, core::ptr::addr_of!(xen_core_rdmsr_safe_fail) as u64);
    (rip == insn).then_some(fail)
}

/// The hypervisor's CR4.
pub fn read_cr4() -> u64 {
    Cr4::read_raw()
}

pub fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    (r.eax, r.ebx, r.ecx, r.edx)
}

pub fn enable_nx_and_wp() {
    let nx = cpuid(0x8000_0001, 0).3 & (1 << 20) != 0;
    assert!(nx, "xen-core needs a CPU with NX");
    // SAFETY: setting EFER.NXE and EFER.SCE only enables the NX bit in page tables and the
    // SYSCALL instruction; nothing mapped yet uses bit 63. Setting CR0.WP makes ring 0
    // honour read-only mappings, which the hypervisor never writes through.
    unsafe {
        Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE | EferFlags::SYSTEM_CALL_EXTENSIONS));
        Cr0::update(|f| f.insert(Cr0Flags::WRITE_PROTECT));
    }
}

/// Loads a new page-table root (a PML4's machine address; no PCID, PWT or PCD bits).
pub fn write_cr3(value: u64) {
    let frame = PhysFrame::containing_address(PhysAddr::new(value));
    // SAFETY: callers pass a PML4 that maps the hypervisor image, its stacks and the
    // direct map at their linked addresses (built by paging::init or copied from it), so
    // execution continues unaffected.
    unsafe { Cr3::write(frame, Cr3Flags::from_bits_truncate(value & 0xfff)) };
}

pub fn read_cr3() -> u64 {
    let (frame, low) = Cr3::read_raw();
    frame.start_address().as_u64() | u64::from(low)
}

pub fn read_cr2() -> u64 {
    Cr2::read_raw()
}

/// Invalidates the TLB entry for `va`; a non-canonical `va` has none (as invlpg, a no-op).
pub fn invlpg(va: u64) {
    if let Ok(va) = VirtAddr::try_new(va) {
        tlb::flush(va);
    }
}

pub fn flush_tlb() {
    tlb::flush_all();
}

pub fn read_cr0() -> u64 {
    Cr0::read_raw()
}

/// CR4 bits a PV guest controls while it runs (TSD, DE, FSGSBASE); OSXSAVE stays as the
/// hypervisor set it (on where XSAVE exists), the guest's own view is kept by the caller.
const CR4_GUEST_HW: Cr4Flags =
    Cr4Flags::TIMESTAMP_DISABLE.union(Cr4Flags::DEBUGGING_EXTENSIONS).union(Cr4Flags::FSGSBASE);

/// Loads the guest-controlled CR4 bits `bits` (only those in CR4_GUEST_HW take effect).
pub fn apply_guest_cr4(bits: u64) {
    let guest = Cr4Flags::from_bits_truncate(bits) & CR4_GUEST_HW;
    // SAFETY: only TSD (rdtsc from ring 3 faults), DE (DR4/5 alias) and FSGSBASE (ring 3
    // may use {rd,wr}{fs,gs}base; the hypervisor makes no fs/gs-relative accesses) change.
    unsafe { Cr4::update(|f| *f = (*f - CR4_GUEST_HW) | guest) };
}

/// The time-stamp counter (core's intrinsic: the x86_64 crate has no rdtsc).
pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter; no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Sets or clears CR0.TS (a guest's `fpu_taskswitch`; the hypervisor uses no FPU).
pub fn set_ts(on: bool) {
    // SAFETY: only CR0.TS changes; the hypervisor is built soft-float, so a #NM can only
    // come from guest code.
    unsafe { Cr0::update(|f| f.set(Cr0Flags::TASK_SWITCHED, on)) };
}

/// Sleeps until the next interrupt (which the trap handler acknowledges).
pub fn idle_until_interrupt() {
    // `sti; hlt` is atomic with respect to interrupt delivery; the handler runs on this
    // stack and returns here.
    interrupts::enable_and_hlt();
    interrupts::disable();
}

/// The FS base the running guest has.
pub fn fs_base() -> u64 {
    FsBase::read().as_u64()
}

/// The GS base the running guest has in its current mode.
pub fn gs_base() -> u64 {
    GsBase::read().as_u64()
}

/// Loads the FS base a guest asked for (checked canonical by the caller; the hypervisor
/// makes no fs-relative accesses).
pub fn set_fs_base(base: u64) {
    FsBase::write(VirtAddr::new(base));
}

/// Loads the GS base a guest asked for (checked canonical by the caller; the hypervisor
/// makes no gs-relative accesses).
pub fn set_gs_base(base: u64) {
    GsBase::write(VirtAddr::new(base));
}

/// XCR0 bits the hypervisor lets guests enable: whatever the CPU supports (CPUID 0xd).
static XCR0_SUPPORTED: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);
/// Bytes of an XSAVE image covering every supported feature (0 without XSAVE).
static XSAVE_SIZE: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// XCR0 bits the CPU supports (0 without XSAVE).
pub fn xcr0_supported() -> u64 {
    XCR0_SUPPORTED.load(core::sync::atomic::Ordering::Relaxed)
}

/// The FPU/SSE/extended state of a guest vCPU: an XSAVE image where the CPU has XSAVE
/// (with the vCPU's XCR0), an FXSAVE image otherwise. 64-byte aligned inside `buf`.
#[derive(Debug)]
pub struct FpuArea {
    buf: alloc::vec::Vec<u8>,
    /// The vCPU's XCR0 (x87 | SSE until it sets its own with xsetbv).
    pub xcr0: u64,
}

impl FpuArea {
    /// The initial state: an all-zero XSAVE header (every component in its init state)
    /// or FNINIT's FCW and MXCSR's default for FXSAVE.
    pub fn initial() -> Self {
        let size = (XSAVE_SIZE.load(core::sync::atomic::Ordering::Relaxed) as usize).max(512);
        let mut a = FpuArea { buf: alloc::vec![0; size + 64], xcr0: 3 };
        let off = a.offset();
        a.buf[off..off + 2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
        a.buf[off + 24..off + 28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        a
    }

    fn offset(&self) -> usize {
        self.buf.as_ptr().align_offset(64)
    }

    fn ptr(&mut self) -> *mut u8 {
        let off = self.offset();
        self.buf[off..].as_mut_ptr()
    }
}

/// Enables SSE for guests (CR4.OSFXSR, OSXMMEXCPT; CR0.MP on, EM off) and, where the CPU
/// has XSAVE, CR4.OSXSAVE with XCR0 = x87 | SSE; records the XCR0 bits and image size.
pub fn enable_fpu() {
    let (_, _, c1, _) = cpuid(1, 0);
    let xsave = c1 & (1 << 26) != 0;
    // SAFETY: only bits about the FPU change; the hypervisor is soft-float and never
    // executes an FPU/SSE instruction itself except the save/restore below.
    unsafe {
        Cr0::update(|f| {
            f.insert(Cr0Flags::MONITOR_COPROCESSOR);
            f.remove(Cr0Flags::EMULATE_COPROCESSOR);
        });
        Cr4::update(|f| {
            f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
            if xsave {
                f.insert(Cr4Flags::OSXSAVE);
            }
        });
    }
    if xsave {
        let (a, _, c, d) = cpuid(0xd, 0);
        XCR0_SUPPORTED.store((u64::from(d) << 32) | u64::from(a), core::sync::atomic::Ordering::Relaxed);
        XSAVE_SIZE.store(u64::from(c), core::sync::atomic::Ordering::Relaxed);
        set_xcr0(3);
    }
}

/// Loads XCR0 with `value`, which the caller has checked (`x87` set, supported bits only,
/// the architectural dependencies between them).
pub fn set_xcr0(value: u64) {
    // SAFETY: XCR0 only selects which state components XSAVE-family instructions and the
    // guest may use; the caller checked that the value is valid, so xsetbv cannot fault.
    unsafe { x86_64::registers::xcontrol::XCr0::write_raw(value) };
}

/// Saves the running vCPU's FPU state into `area`.
pub fn fpu_save(area: &mut FpuArea) {
    let xsave = xcr0_supported() != 0;
    let p = area.ptr();
    let cr0 = Cr0::read_raw();
    // XSAVE/FXSAVE and CLTS are not in the x86_64 crate, so they stay our own asm.
    // SAFETY: `p` is 64-byte aligned with room for the largest XSAVE image (or 512 bytes
    // for FXSAVE) and exclusively borrowed; CR0.TS may be set for the guest, so it is
    // cleared around the save and restored.
    unsafe {
        core::arch::asm!("clts", options(nostack));
        if xsave {
            core::arch::asm!("xsave64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack));
        } else {
            core::arch::asm!("fxsave64 [{}]", in(reg) p, options(nostack));
        }
        Cr0::write_raw(cr0);
    }
}

/// Loads `area` (and its XCR0) as the running FPU state.
pub fn fpu_restore(area: &mut FpuArea) {
    let xsave = xcr0_supported() != 0;
    if xsave {
        set_xcr0(area.xcr0);
    }
    let p = area.ptr();
    let cr0 = Cr0::read_raw();
    // SAFETY: as for fpu_save; the image came from fpu_save or FpuArea::initial (zeroed
    // XSAVE header, valid MXCSR), so the restore cannot fault.
    unsafe {
        core::arch::asm!("clts", options(nostack));
        if xsave {
            core::arch::asm!("xrstor64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack));
        } else {
            core::arch::asm!("fxrstor64 [{}]", in(reg) p, options(nostack));
        }
        Cr0::write_raw(cr0);
    }
}
