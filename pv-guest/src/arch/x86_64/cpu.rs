//! Unprivileged CPU instructions a PV kernel may use directly.

/// The time-stamp counter (Xen leaves `rdtsc` native for PV unless TSC emulation is on,
/// in which case it is trapped and emulated: either way this is the guest's TSC).
pub fn rdtsc() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc reads a counter into edx:eax and touches nothing else.
    unsafe { core::arch::asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack, preserves_flags)) };
    (u64::from(hi) << 32) | u64::from(lo)
}
