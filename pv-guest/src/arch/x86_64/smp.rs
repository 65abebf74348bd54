//! Which vCPU is running: told apart by the stack. vCPU 0 runs on the boot stack; each
//! secondary vCPU on its own slice of `ap_stacks` (head.s), which its VCPUOP_initialise
//! context points rsp at. Upcalls and exceptions arrive in kernel mode on the stack in
//! use, so the answer holds in handlers too.

/// vCPUs pv-guest can run (vCPU 0 and one secondary).
pub const MAX_VCPUS: usize = 2;
/// The size of each secondary vCPU's stack (head.s reserves `MAX_VCPUS - 1` of them).
pub const AP_STACK_SIZE: u64 = 128 * 1024;

extern "C" {
    static ap_stacks: u8;
    static ap_stacks_end: u8;
    fn secondary_entry();
    fn probe_gs_read(out: *mut u64) -> u64;
}

fn stacks() -> (u64, u64) {
    ((&raw const ap_stacks) as u64, (&raw const ap_stacks_end) as u64)
}

/// The running vCPU's id (0 on the boot stack).
pub fn current() -> usize {
    let rsp: u64;
    // SAFETY: reads the stack pointer into a register; no memory or flags touched.
    unsafe { core::arch::asm!("mov {}, rsp", out(reg) rsp, options(nomem, nostack, preserves_flags)) };
    let (base, end) = stacks();
    if (base..end).contains(&rsp) {
        1 + ((rsp - base) / AP_STACK_SIZE) as usize
    } else {
        0
    }
}

/// The initial stack pointer of secondary vCPU `cpu` (1..MAX_VCPUS): the top of its
/// stack, 16-byte aligned.
pub fn stack_top(cpu: usize) -> u64 {
    assert!((1..MAX_VCPUS).contains(&cpu), "no stack for vCPU {cpu}");
    let (base, end) = stacks();
    assert_eq!(end - base, AP_STACK_SIZE * (MAX_VCPUS as u64 - 1), "head.s reserves another size");
    base + cpu as u64 * AP_STACK_SIZE
}

/// Where a secondary vCPU starts (rdi = its id).
pub fn secondary_entry_point() -> u64 {
    secondary_entry as *const () as u64
}

/// The u64 at %gs:0 (the kernel GS base Xen loaded), or the vector of the fault.
pub fn gs_word() -> super::traps::Probe<u64> {
    let mut v = 0;
    // SAFETY: a load through %gs whose fault (e.g. a GS base of 0) is fixed up through
    // the exception table; `v` is a live local.
    let r = unsafe { probe_gs_read(&mut v) };
    if r == 0 {
        Ok(v)
    } else {
        Err(r - 1)
    }
}

/// Called by `secondary_entry` on the new vCPU's own stack.
#[no_mangle]
extern "C" fn pv_secondary(cpu: u64) -> ! {
    crate::smp::secondary_main(cpu as usize)
}
