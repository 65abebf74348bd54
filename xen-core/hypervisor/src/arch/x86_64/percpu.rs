//! What each physical CPU has of its own: its hypervisor stack (entries from guests land
//! at its top: TSS.RSP0 and the SYSCALL stub), its IST stack, and its index, found from
//! the stack it runs on.

/// Physical CPUs the hypervisor brings up at most.
pub const MAX_CPUS: usize = 8;
/// Each CPU's hypervisor stack.
pub const STACK_SIZE: usize = 64 * 1024;
const IST_SIZE: usize = 16 * 1024;

#[repr(C, align(65536))]
struct Stacks([[u8; STACK_SIZE]; MAX_CPUS]);

#[repr(C, align(16))]
struct IstStacks([[u8; IST_SIZE]; MAX_CPUS]);

/// Only ever used through RSP (no Rust reference to them is made).
static mut STACKS: Stacks = Stacks([[0; STACK_SIZE]; MAX_CPUS]);
static mut IST_STACKS: IstStacks = IstStacks([[0; IST_SIZE]; MAX_CPUS]);

fn stacks_base() -> u64 {
    core::ptr::addr_of!(STACKS) as u64
}

/// The top of CPU `cpu`'s hypervisor stack.
pub fn stack_top(cpu: usize) -> u64 {
    stacks_base() + ((cpu.min(MAX_CPUS - 1) + 1) * STACK_SIZE) as u64
}

/// The top of CPU `cpu`'s stack for double faults, NMIs and machine checks.
pub fn ist_top(cpu: usize) -> u64 {
    core::ptr::addr_of!(IST_STACKS) as u64 + ((cpu.min(MAX_CPUS - 1) + 1) * IST_SIZE) as u64
}

/// The index of the CPU running this: from the stack it is on (the boot CPU's
/// start-of-day stack, outside the per-CPU ones, is CPU 0's).
pub fn cpu_index() -> usize {
    let here = 0u8;
    let sp = core::ptr::addr_of!(here) as u64;
    let base = stacks_base();
    if (base..base + (MAX_CPUS * STACK_SIZE) as u64).contains(&sp) {
        ((sp - base) / STACK_SIZE as u64) as usize
    } else {
        0
    }
}
