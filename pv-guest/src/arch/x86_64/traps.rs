//! Exception, upcall and failsafe entry points (head.s), the exception table and the
//! fault probes. Handling itself is in `crate::trap`.

use core::sync::atomic::AtomicU8;

/// What `trap_common` saves: general registers (pushed last, lowest first), then the
/// vector and error code it pushed, then the hardware-style frame Xen built.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    /// 0-19 exceptions, [`VECTOR_UPCALL`], [`VECTOR_FAILSAFE`].
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    /// CS in bits 0-15, the saved upcall mask in bits 32-39.
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

pub const VECTOR_UPCALL: u64 = 256;
pub const VECTOR_FAILSAFE: u64 = 257;

/// Non-zero: `trap_common` returns through a direct `syscall` instead of the hypercall
/// page's `iret` stub.
#[no_mangle]
static pv_iret_via_syscall: AtomicU8 = AtomicU8::new(0);

pub fn set_iret_via_syscall(on: bool) {
    pv_iret_via_syscall.store(u8::from(on), core::sync::atomic::Ordering::Relaxed);
}

extern "C" {
    fn trap_entry_0();
    fn trap_entry_1();
    fn trap_entry_2();
    fn trap_entry_3();
    fn trap_entry_4();
    fn trap_entry_5();
    fn trap_entry_6();
    fn trap_entry_7();
    fn trap_entry_8();
    fn trap_entry_9();
    fn trap_entry_10();
    fn trap_entry_11();
    fn trap_entry_12();
    fn trap_entry_13();
    fn trap_entry_14();
    fn trap_entry_15();
    fn trap_entry_16();
    fn trap_entry_17();
    fn trap_entry_18();
    fn trap_entry_19();
    fn hypervisor_callback();
    fn failsafe_callback();
    static __ex_table_start: [u64; 2];
    static __ex_table_end: [u64; 2];
    fn probe_ud2() -> u64;
    fn probe_int3() -> u64;
    fn probe_hlt() -> u64;
    fn probe_div0() -> u64;
    fn probe_wrmsr(msr: u32, value: u64) -> u64;
    fn probe_rdmsr(msr: u32, out: *mut u64) -> u64;
    fn probe_xsetbv(index: u32, value: u64) -> u64;
    fn probe_xgetbv(index: u32, out: *mut u64) -> u64;
    fn probe_ymm_copy(src: *const [u8; 32], dst: *mut [u8; 32]) -> u64;
    fn probe_read(addr: u64, out: *mut u64) -> u64;
    fn probe_inb(port: u16) -> u64;
    fn probe_write(addr: u64, value: u64) -> u64;
    fn probe_fs_read(sel: u16, addr: u64, out: *mut u64) -> u64;
    fn probe_lsl(sel: u16, out: *mut [u32; 2]) -> u64;
}

/// Entry addresses for exception vectors 0-19.
pub fn exception_entries() -> [u64; 20] {
    [
        trap_entry_0 as *const () as u64,
        trap_entry_1 as *const () as u64,
        trap_entry_2 as *const () as u64,
        trap_entry_3 as *const () as u64,
        trap_entry_4 as *const () as u64,
        trap_entry_5 as *const () as u64,
        trap_entry_6 as *const () as u64,
        trap_entry_7 as *const () as u64,
        trap_entry_8 as *const () as u64,
        trap_entry_9 as *const () as u64,
        trap_entry_10 as *const () as u64,
        trap_entry_11 as *const () as u64,
        trap_entry_12 as *const () as u64,
        trap_entry_13 as *const () as u64,
        trap_entry_14 as *const () as u64,
        trap_entry_15 as *const () as u64,
        trap_entry_16 as *const () as u64,
        trap_entry_17 as *const () as u64,
        trap_entry_18 as *const () as u64,
        trap_entry_19 as *const () as u64,
    ]
}

pub fn upcall_entry() -> u64 {
    hypervisor_callback as *const () as u64
}

pub fn failsafe_entry() -> u64 {
    failsafe_callback as *const () as u64
}

/// The exception table: (faulting rip, fixup rip) pairs from head.s.
pub fn extable() -> &'static [[u64; 2]] {
    // SAFETY: the linker script brackets the `.ex_table` input sections, which hold only
    // 16-byte aligned pairs of quads, with these two symbols; the data is read-only.
    unsafe {
        let start = &raw const __ex_table_start;
        let end = &raw const __ex_table_end;
        core::slice::from_raw_parts(start, end.offset_from(start) as usize)
    }
}

#[no_mangle]
extern "C" fn pv_trap(frame: *mut TrapFrame) {
    // SAFETY: trap_common passes the frame it just built on this stack; nothing else
    // refers to it until pv_trap returns.
    let frame = unsafe { &mut *frame };
    crate::trap::handle(frame);
}

/// Outcome of a probe: `Ok` when the instruction completed, `Err(vector)` when it
/// faulted and was resumed at its fixup.
pub type Probe<T> = Result<T, u64>;

fn probe_result<T>(r: u64, v: T) -> Probe<T> {
    if r == 0 {
        Ok(v)
    } else {
        Err(r - 1)
    }
}

/// Executes `ud2`.
pub fn ud2() -> Probe<()> {
    // SAFETY: the probe only executes ud2; its fault is fixed up through the table.
    probe_result(unsafe { probe_ud2() }, ())
}

/// Executes `int3` (vector 3 is registered with DPL 3, so it is delivered as #BP).
pub fn int3() -> Probe<()> {
    // SAFETY: int3 traps to our handler, which resumes after it.
    probe_result(unsafe { probe_int3() }, ())
}

/// Executes `hlt` (privileged: a PV kernel runs in ring 3).
pub fn hlt() -> Probe<()> {
    // SAFETY: hlt at CPL3 faults and is fixed up; if Xen emulated it, it just returns.
    probe_result(unsafe { probe_hlt() }, ())
}

/// Divides by zero.
pub fn div0() -> Probe<()> {
    // SAFETY: the division faults (#DE) and is fixed up; only rax/rcx/rdx are used.
    probe_result(unsafe { probe_div0() }, ())
}

/// `wrmsr`, emulated or refused (#GP) by Xen.
pub fn wrmsr(msr: u32, value: u64) -> Probe<()> {
    // SAFETY: at CPL3 wrmsr always traps to Xen, which emulates it or injects #GP; the
    // MSRs the tests write have no effect on our memory.
    probe_result(unsafe { probe_wrmsr(msr, value) }, ())
}

/// `xsetbv` (privileged: Xen emulates it for the guest kernel or injects #GP).
pub fn xsetbv(index: u32, value: u64) -> Probe<()> {
    // SAFETY: at CPL3 xsetbv always traps to Xen, which emulates it (changing only which
    // extended state components are enabled) or injects #GP; no memory is touched.
    probe_result(unsafe { probe_xsetbv(index, value) }, ())
}

/// `xgetbv` (unprivileged; #UD without CR4.OSXSAVE, #GP for an unknown register).
pub fn xgetbv(index: u32) -> Probe<u64> {
    let mut v = 0;
    // SAFETY: xgetbv only reads an extended control register; `v` is a live local.
    let r = unsafe { probe_xgetbv(index, &mut v) };
    probe_result(r, v)
}

/// Copies 32 bytes through %ymm1 (an AVX instruction: #UD unless XCR0 enables YMM).
pub fn ymm_copy(src: &[u8; 32]) -> Probe<[u8; 32]> {
    let mut dst = [0u8; 32];
    // SAFETY: unaligned 32-byte loads and stores of two live locals; the compiler keeps
    // no state in %ymm1 (pv-guest is soft-float), and vzeroupper leaves it clean.
    let r = unsafe { probe_ymm_copy(src, &mut dst) };
    probe_result(r, dst)
}

pub fn rdmsr(msr: u32) -> Probe<u64> {
    let mut v = 0;
    // SAFETY: rdmsr at CPL3 traps to Xen (emulate or #GP); `v` is a live local.
    let r = unsafe { probe_rdmsr(msr, &mut v) };
    probe_result(r, v)
}

/// `in %dx, %al` from the guest kernel (ring 3): emulated by the hypervisor when the
/// virtual IOPL or the I/O bitmap allows the port, else #GP.
pub fn inb(port: u16) -> Probe<()> {
    // SAFETY: at CPL3 `in` always traps to the hypervisor, which emulates it (the value
    // read is dropped) or injects #GP, fixed up through the table.
    probe_result(unsafe { probe_inb(port) }, ())
}

/// Reads a u64 at any address; a fault (#PF, #GP for non-canonical) is returned.
pub fn read_u64(addr: u64) -> Probe<u64> {
    let mut v = 0;
    // SAFETY: a plain load whose fault is fixed up; `v` is a live local. Reading memory
    // that Rust code also uses is harmless (no reference is created).
    let r = unsafe { probe_read(addr, &mut v) };
    probe_result(r, v)
}

/// Loads %fs with `sel` and reads the u64 at %fs:`addr` (FS base from the descriptor
/// plus `addr`); a fault of either is returned. %fs is null afterwards (its base is
/// the caller's to reset).
pub fn fs_read(sel: u16, addr: u64) -> Probe<u64> {
    let mut v = 0;
    // SAFETY: segment loads and a plain load, faults fixed up; `v` is a live local.
    // Nothing of ours uses %fs.
    let r = unsafe { probe_fs_read(sel, addr, &mut v) };
    probe_result(r, v)
}

/// `lsl` of `sel`: the limit if the descriptor is usable, None if lsl says it is not
/// (ZF clear); a fault (of reading the descriptor table) is returned.
pub fn lsl(sel: u16) -> Probe<Option<u32>> {
    let mut out = [0u32; 2];
    // SAFETY: lsl only reads a descriptor; `out` is a live local.
    let r = unsafe { probe_lsl(sel, &mut out) };
    probe_result(r, (out[1] != 0).then_some(out[0]))
}

/// Writes a u64 to a page of the dynamic window (never memory Rust code uses); a fault
/// is returned.
pub fn write_u64(addr: u64, value: u64) -> Probe<()> {
    assert!((crate::mm::VMAP_START..crate::mm::VMAP_END).contains(&addr), "write_u64 outside the window: {addr:#x}");
    // SAFETY: the address is in the window, where only pages the tests own are mapped;
    // a fault is fixed up.
    probe_result(unsafe { probe_write(addr, value) }, ())
}
