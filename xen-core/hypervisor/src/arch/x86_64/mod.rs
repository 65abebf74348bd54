//! x86_64: multiboot entry to long mode, page tables, descriptor tables, entry paths,
//! port I/O, COM1, QEMU's debug-exit port and access to machine memory.

pub mod clock;
pub mod cpu;
pub mod gdt;
pub mod guest;
pub mod layout;
pub mod mem;
pub mod paging;
pub mod percpu;
pub mod phys;
pub mod pic;
pub mod port;
pub mod qemu;
pub mod serial;
pub mod smp;
pub mod trap;

core::arch::global_asm!(include_str!("boot.s"), options(att_syntax));
// Entry paths, and where the other CPUs start (copied below 1 MiB by `smp`).
core::arch::global_asm!(concat!(include_str!("entry.s"), include_str!("trampoline.s")), options(att_syntax));

/// Stops this CPU for good.
pub fn halt_forever() -> ! {
    x86_64::instructions::interrupts::disable();
    loop {
        x86_64::instructions::hlt();
    }
}
