//! Hypercalls, through the hypercall page or by a direct `syscall` (what post-XSA-466
//! Linux does). Both take the number in rax and arguments in rdi, rsi, rdx, r10, r8; the
//! hypervisor clobbers rcx and r11.

use core::sync::atomic::{AtomicBool, Ordering};

/// Which entry every hypercall uses; tests flip it to check both.
static USE_SYSCALL: AtomicBool = AtomicBool::new(false);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    HypercallPage,
    Syscall,
}

pub fn set_method(m: Method) {
    USE_SYSCALL.store(m == Method::Syscall, Ordering::Relaxed);
}

pub fn method() -> Method {
    if USE_SYSCALL.load(Ordering::Relaxed) {
        Method::Syscall
    } else {
        Method::HypercallPage
    }
}

/// Issues hypercall `nr` with up to five arguments; returns rax (negative = -errno).
///
/// # Safety
/// Pointer arguments must be valid for what hypercall `nr` reads or writes through them.
pub unsafe fn hypercall(nr: u64, a1: u64, a2: u64, a3: u64, a4: u64, a5: u64) -> i64 {
    let ret: i64;
    // The page has 128 stubs: a larger number can only be tried through `syscall`.
    let method = if nr >= xen_abi::hypercall::HYPERCALL_PAGE_ENTRIES as u64 { Method::Syscall } else { method() };
    match method {
        // SAFETY: the stub at hypercall_page + 32 * nr is the hypervisor's; it preserves
        // everything but rax, rcx and r11, which are declared clobbered. The caller vouches
        // for the memory the hypercall touches.
        Method::HypercallPage => unsafe {
            core::arch::asm!(
                "lea rcx, [rip + hypercall_page]",
                "shl rax, 5",
                "add rax, rcx",
                "call rax",
                inout("rax") nr => ret,
                inout("rdi") a1 => _,
                inout("rsi") a2 => _,
                inout("rdx") a3 => _,
                inout("r10") a4 => _,
                inout("r8") a5 => _,
                out("rcx") _,
                out("r11") _,
            )
        },
        // SAFETY: a 64-bit PV kernel's `syscall` enters the hypervisor, which clobbers only
        // rax, rcx and r11 (declared). The caller vouches for the memory touched.
        Method::Syscall => unsafe {
            core::arch::asm!(
                "syscall",
                inout("rax") nr => ret,
                inout("rdi") a1 => _,
                inout("rsi") a2 => _,
                inout("rdx") a3 => _,
                inout("r10") a4 => _,
                inout("r8") a5 => _,
                out("rcx") _,
                out("r11") _,
            )
        },
    }
    ret
}

/// `console_io(CONSOLEIO_write)`: the initial domain's console (Xen's own serial line).
pub fn console_write(bytes: &[u8]) -> i64 {
    use xen_abi::{hypercall::HYPERVISOR_console_io, xen::CONSOLEIO_write};
    // SAFETY: Xen reads `len` bytes from `ptr`, which is a live slice.
    unsafe {
        hypercall(HYPERVISOR_console_io, u64::from(CONSOLEIO_write), bytes.len() as u64, bytes.as_ptr() as u64, 0, 0)
    }
}

/// `xen_version(cmd, NULL)` for the sub-ops that take no buffer (e.g. `XENVER_version`).
pub fn xen_version_no_arg(cmd: u32) -> i64 {
    // SAFETY: a NULL argument: nothing is read or written.
    unsafe { hypercall(xen_abi::hypercall::HYPERVISOR_xen_version, u64::from(cmd), 0, 0, 0, 0) }
}

/// A hypercall with no arguments, for probing numbers the hypervisor must refuse.
pub fn raw_no_args(nr: u64) -> i64 {
    // SAFETY: all arguments are zero: a hypervisor that accepts the number reads no
    // guest memory through a NULL pointer it must validate anyway.
    unsafe { hypercall(nr, 0, 0, 0, 0, 0) }
}

/// `sched_op(SCHEDOP_shutdown, reason)`: never returns when it succeeds.
pub fn shutdown(reason: u32) -> i64 {
    use xen_abi::sched::{SchedShutdown, SCHEDOP_shutdown};
    let arg = SchedShutdown { reason };
    // SAFETY: Xen reads one `sched_shutdown` from a live local.
    unsafe {
        hypercall(xen_abi::hypercall::HYPERVISOR_sched_op, u64::from(SCHEDOP_shutdown), &arg as *const _ as u64, 0, 0, 0)
    }
}

/// Issues hypercall `nr` whose pointer arguments point into the scratch arena
/// (`mem::scratch_*`) or outside the kernel's own memory altogether (the hostile tests'
/// garbage pointers, window virtual addresses Xen resolves through the page tables).
/// Panics when an argument falls in the kernel's own memory outside the arena, so the
/// hypervisor can never write into a Rust object through it. Callers size arena
/// buffers for what the hypercall accesses (counts times element sizes).
pub fn call(nr: u64, args: [u64; 5]) -> i64 {
    for (i, &a) in args.iter().enumerate() {
        assert!(
            !super::mem::is_owned(a) || super::mem::in_scratch(a),
            "hypercall {nr}: argument {i} ({a:#x}) points into kernel memory outside the scratch arena"
        );
    }
    // SAFETY: no argument points at kernel memory other than the arena (checked above),
    // which is only accessed by copies between hypercalls.
    unsafe { hypercall(nr, args[0], args[1], args[2], args[3], args[4]) }
}

/// Unmaps the stack's guard page (`mem::stack_guard_page`): the one page of the image
/// that is taken out of use rather than written through.
pub fn unmap_stack_guard() -> i64 {
    let va = super::mem::stack_guard_page();
    // SAFETY: Xen only rewrites the L1 entry mapping `va`; the guard page holds no Rust
    // object (it is the unused bottom of the stack), so nothing refers to it.
    unsafe { hypercall(xen_abi::hypercall::HYPERVISOR_update_va_mapping, va, 0, xen_abi::xen::UVMF_INVLPG, 0, 0) }
}

/// `update_va_mapping(va, pte, flags)`. Xen never dereferences `va`: it rewrites the L1
/// entry mapping it. So `va` may be a window address or a free page of the initial
/// mapping (a page becoming a page table is remapped read-only), but not memory that
/// holds Rust objects or boot data.
pub fn update_va_mapping(va: u64, pte: u64, flags: u64) -> i64 {
    assert!(!super::mem::is_owned(va) || super::mem::is_free_boot_page(va), "update_va_mapping of kernel memory {va:#x}");
    // Beyond the flush type, `flags` may carry a vCPU-mask pointer (UVMF_MULTI).
    let mask_ptr = flags & !xen_abi::xen::UVMF_FLUSHTYPE_MASK & !xen_abi::xen::UVMF_ALL;
    assert!(!super::mem::is_owned(mask_ptr) || super::mem::in_scratch(mask_ptr), "vCPU mask {mask_ptr:#x}");
    // SAFETY: `va` is only used by Xen to find the L1 entry to rewrite (checked not to
    // be memory in use); a mask pointer is in the arena or outside our memory.
    unsafe { hypercall(xen_abi::hypercall::HYPERVISOR_update_va_mapping, va, pte, flags, 0, 0) }
}
