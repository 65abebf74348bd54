//! x86_64: multiboot entry to long mode, port I/O, COM1, QEMU's debug-exit port and
//! access to identity-mapped physical memory.

pub mod phys;
pub mod port;
pub mod qemu;
pub mod serial;

core::arch::global_asm!(include_str!("boot.s"), options(att_syntax));

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt only stops this CPU; no memory or stack is touched.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}
