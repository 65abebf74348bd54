//! Control registers, MSRs, CPUID and descriptor-table loads.

use core::sync::atomic::{AtomicBool, Ordering};

pub const MSR_EFER: u32 = 0xC000_0080;
pub const MSR_STAR: u32 = 0xC000_0081;
pub const MSR_LSTAR: u32 = 0xC000_0082;
pub const MSR_CSTAR: u32 = 0xC000_0083;
pub const MSR_FMASK: u32 = 0xC000_0084;
pub const MSR_FS_BASE: u32 = 0xC000_0100;
pub const MSR_GS_BASE: u32 = 0xC000_0101;
pub const MSR_KERNEL_GS_BASE: u32 = 0xC000_0102;

const EFER_SCE: u64 = 1 << 0;
const EFER_NXE: u64 = 1 << 11;

pub fn rdmsr(msr: u32) -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: only architectural MSRs listed above are read, which exist on every
    // x86_64 CPU; rdmsr has no memory effects.
    unsafe { core::arch::asm!("rdmsr", in("ecx") msr, out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// # Safety
/// The caller must know the effect of the MSR write on the running system.
pub unsafe fn wrmsr(msr: u32, value: u64) {
    // SAFETY: the caller vouches for the effect.
    unsafe {
        core::arch::asm!("wrmsr", in("ecx") msr, in("eax") value as u32, in("edx") (value >> 32) as u32, options(nostack, preserves_flags))
    };
}

/// The hypervisor's CR4.
pub fn read_cr4() -> u64 {
    let cr4: u64;
    // SAFETY: reading CR4 has no side effect.
    unsafe { core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack, preserves_flags)) };
    cr4
}

pub fn cpuid(leaf: u32, subleaf: u32) -> (u32, u32, u32, u32) {
    let r = core::arch::x86_64::__cpuid_count(leaf, subleaf);
    (r.eax, r.ebx, r.ecx, r.edx)
}

pub fn enable_nx_and_wp() {
    let nx = cpuid(0x8000_0001, 0).3 & (1 << 20) != 0;
    assert!(nx, "xen-core needs a CPU with NX");
    // SAFETY: setting EFER.NXE and EFER.SCE only enables the NX bit in page tables and the
    // SYSCALL instruction; nothing mapped yet uses bit 63.
    unsafe { wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE | EFER_SCE) };
    let mut cr0: u64;
    // SAFETY: reading and setting CR0.WP (bit 16) makes ring 0 honour read-only mappings.
    unsafe {
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 |= 1 << 16;
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
    }
}

/// Loads a new page-table root.
pub fn write_cr3(value: u64) {
    // SAFETY: callers pass a PML4 that maps the hypervisor image, its stacks and the
    // direct map at their linked addresses (built by paging::init or copied from it), so
    // execution continues unaffected.
    unsafe { core::arch::asm!("mov cr3, {}", in(reg) value, options(nostack)) };
}

pub fn read_cr3() -> u64 {
    let v: u64;
    // SAFETY: reading CR3 has no effect.
    unsafe { core::arch::asm!("mov {}, cr3", out(reg) v, options(nomem, nostack)) };
    v
}

pub fn read_cr2() -> u64 {
    let v: u64;
    // SAFETY: reading CR2 has no effect.
    unsafe { core::arch::asm!("mov {}, cr2", out(reg) v, options(nomem, nostack)) };
    v
}

pub fn invlpg(va: u64) {
    // SAFETY: invalidating a TLB entry only forces a re-walk.
    unsafe { core::arch::asm!("invlpg [{}]", in(reg) va, options(nostack)) };
}

pub fn flush_tlb() {
    write_cr3(read_cr3());
}

pub fn rdtsc() -> u64 {
    // SAFETY: rdtsc reads the time-stamp counter; no side effects.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Sets or clears CR0.TS (a guest's `fpu_taskswitch`; the hypervisor uses no FPU).
pub fn set_ts(on: bool) {
    let mut cr0: u64;
    // SAFETY: only CR0.TS (bit 3) changes; the hypervisor is built soft-float, so a #NM
    // can only come from guest code.
    unsafe {
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 = if on { cr0 | 8 } else { cr0 & !8 };
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
    }
}

/// Sleeps until the next interrupt (which the trap handler acknowledges).
pub fn idle_until_interrupt() {
    // SAFETY: `sti; hlt` is atomic with respect to interrupt delivery; the interrupt
    // handler runs on this stack and returns here, and interrupts are off again after.
    unsafe { core::arch::asm!("sti; hlt; cli", options(nomem, nostack)) };
}

/// Loads the FS base a guest asked for (the hypervisor makes no fs-relative accesses).
pub fn set_fs_base(base: u64) {
    // SAFETY: FS_BASE only affects fs-relative accesses, which only guest code makes.
    unsafe { wrmsr(MSR_FS_BASE, base) };
}

/// Loads the GS base a guest asked for (the hypervisor makes no gs-relative accesses).
pub fn set_gs_base(base: u64) {
    // SAFETY: GS_BASE only affects gs-relative accesses, which only guest code makes.
    unsafe { wrmsr(MSR_GS_BASE, base) };
}

/// Bytes of a vCPU's save area: the XSAVE standard format up to the last component a
/// PV guest may enable (AVX-512's Hi16_ZMM ends at 2688 on every CPU that has it).
pub const FPU_AREA_SIZE: usize = 4096;
/// XCR0 = x87 | SSE, what Xen gives a PV vCPU until it asks for more with XSETBV.
pub const XCR0_FP_SSE: u64 = 0b11;

/// A vCPU's x87/SSE/AVX state (an FXSAVE image, or an XSAVE standard-format area when
/// the CPU has XSAVE) and the XCR0 it runs with.
#[repr(C, align(64))]
#[derive(Clone, Debug)]
pub struct FpuArea {
    image: [u8; FPU_AREA_SIZE],
    /// The vCPU's XCR0 (meaningful when [`xsave_enabled`]).
    pub xcr0: u64,
}

impl FpuArea {
    /// The state after FNINIT with MXCSR's default (all exceptions masked), XCR0 x87|SSE.
    /// The XSAVE header (XSTATE_BV 0: every component in its initial state) is zero.
    pub fn initial() -> Self {
        let mut a = FpuArea { image: [0; FPU_AREA_SIZE], xcr0: XCR0_FP_SSE };
        a.image[0..2].copy_from_slice(&0x037fu16.to_le_bytes()); // FCW
        a.image[24..28].copy_from_slice(&0x1f80u32.to_le_bytes()); // MXCSR
        a
    }
}

static XSAVE_ENABLED: AtomicBool = AtomicBool::new(false);

/// CR4.OSXSAVE is on: guest state is kept with XSAVE/XRSTOR and each vCPU's XCR0.
pub fn xsave_enabled() -> bool {
    XSAVE_ENABLED.load(Ordering::Relaxed)
}

/// Loads XCR0. The caller passes a value the CPU accepts: x87 set, a subset of what
/// CPUID leaf 0xd reports, and consistent (`cpuid_policy::valid_xcr0`).
pub fn set_xcr0(xcr0: u64) {
    debug_assert!(xsave_enabled());
    // SAFETY: XCR0 only selects which state components XSAVE/XRSTOR and AVX use; the
    // hypervisor is soft-float, and the caller guarantees a value that does not fault.
    unsafe {
        core::arch::asm!("xsetbv", in("ecx") 0u32, in("eax") xcr0 as u32, in("edx") (xcr0 >> 32) as u32, options(nomem, nostack, preserves_flags))
    };
}

/// Enables SSE state for guests (CR4.OSFXSR, OSXMMEXCPT; CR0.MP on, EM off) and, as Xen
/// does, XSAVE (CR4.OSXSAVE, XCR0 x87|SSE) when the CPU has it and its full XSAVE area
/// fits a vCPU's save area.
pub fn enable_fpu() {
    // SAFETY: only bits about the FPU change; the hypervisor is soft-float and never
    // executes an FPU/SSE instruction itself except FXSAVE/FXRSTOR, which these enable.
    unsafe {
        let (mut cr0, mut cr4): (u64, u64);
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        cr0 = (cr0 | 2) & !4;
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
        core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
        cr4 |= (1 << 9) | (1 << 10);
        core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack));
    }
    let xsave = cpuid(1, 0).2 & (1 << 26) != 0;
    if xsave && cpuid(0xd, 0).2 as usize <= FPU_AREA_SIZE {
        // SAFETY: CR4.OSXSAVE (bit 18) only enables XGETBV/XSETBV/XSAVE and the XCR0 it
        // guards; the CPU has XSAVE.
        unsafe {
            let mut cr4: u64;
            core::arch::asm!("mov {}, cr4", out(reg) cr4, options(nomem, nostack));
            cr4 |= 1 << 18;
            core::arch::asm!("mov cr4, {}", in(reg) cr4, options(nostack));
        }
        XSAVE_ENABLED.store(true, Ordering::Relaxed);
        set_xcr0(XCR0_FP_SSE);
    }
}

/// Saves the running vCPU's FPU state (with its XCR0 in force).
pub fn save_fpu(area: &mut FpuArea) {
    let p = area.image.as_mut_ptr();
    // SAFETY: `area` is 4096 bytes, 64-byte aligned and exclusively borrowed, larger than
    // the XSAVE standard format for any XCR0 we load (FPU_AREA_SIZE, checked against
    // CPUID at enable_fpu); CR0.TS may be set for the guest, so clear it around the save
    // and restore it.
    unsafe {
        let cr0: u64;
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        if xsave_enabled() {
            core::arch::asm!("clts", "xsave64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack));
        } else {
            core::arch::asm!("clts", "fxsave64 [{}]", in(reg) p, options(nostack));
        }
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
    }
}

/// Loads a vCPU's XCR0 and FPU state.
pub fn restore_fpu(area: &FpuArea) {
    let p = area.image.as_ptr();
    if xsave_enabled() {
        set_xcr0(area.xcr0);
    }
    // SAFETY: as for save_fpu; the image was produced by save_fpu under this XCR0 (so its
    // XSTATE_BV is a subset of it; XSETBV emulation only widens XCR0 while the vCPU runs,
    // and the next save records the new set) or is FpuArea::initial, whose header is
    // zero and whose reserved MXCSR bits are zero, so neither restore can fault.
    unsafe {
        let cr0: u64;
        core::arch::asm!("mov {}, cr0", out(reg) cr0, options(nomem, nostack));
        if xsave_enabled() {
            core::arch::asm!("clts", "xrstor64 [{}]", in(reg) p, in("eax") u32::MAX, in("edx") u32::MAX, options(nostack));
        } else {
            core::arch::asm!("clts", "fxrstor64 [{}]", in(reg) p, options(nostack));
        }
        core::arch::asm!("mov cr0, {}", in(reg) cr0, options(nostack));
    }
}
