//! Unprivileged CPU instructions a PV kernel may use directly.

/// The time-stamp counter (Xen leaves `rdtsc` native for PV unless TSC emulation is on,
/// in which case it is trapped and emulated: either way this is the guest's TSC).
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads a counter into edx:eax and touches nothing else.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// CPUID as Xen presents it to a PV kernel: through the forced-emulation prefix
/// (`ud2; .ascii "xen"; cpuid`), which Xen intercepts at the #UD. Returns eax..edx.
pub fn xen_cpuid(leaf: u32, subleaf: u32) -> [u32; 4] {
    let (a, c, d): (u32, u32, u32);
    let b: u64;
    // SAFETY: the hypervisor emulates the 7-byte sequence (a #UD it handles itself) and
    // resumes after it; only eax..edx change, and rbx is saved around the block because
    // the compiler may reserve it.
    unsafe {
        core::arch::asm!(
            "mov {tmp}, rbx",
            "ud2",
            ".ascii \"xen\"",
            "cpuid",
            "xchg {tmp}, rbx",
            tmp = out(reg) b,
            inout("eax") leaf => a,
            inout("ecx") subleaf => c,
            out("edx") d,
            options(nostack)
        )
    };
    [a, b as u32, c, d]
}
