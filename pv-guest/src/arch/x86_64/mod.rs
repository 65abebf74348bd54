//! x86_64 PV: entry, trap entry points, hypercalls, and the raw memory the rest of the
//! kernel reaches only through the safe functions here.

pub mod hypercall;
pub mod mem;
pub mod cpu;
pub mod heap;
pub mod smp;
pub mod sync;
pub mod traps;

/// Called by `_start` with rsi (the virtual address of start_info) in rdi.
#[no_mangle]
extern "C" fn pv_main(start_info: *const xen_abi::xen::StartInfo) -> ! {
    // SAFETY: the domain builder passes the virtual address of start_info in rsi; it is
    // mapped, page-aligned and stays valid (and unchanged by Xen, barring resume) for
    // the life of the domain.
    let si = unsafe { &*start_info };
    crate::start::main(si)
}

core::arch::global_asm!(include_str!("head.s"), options(att_syntax));
