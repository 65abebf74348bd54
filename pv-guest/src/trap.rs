//! Exception handling: the virtual IDT, the event and failsafe callbacks, recovery
//! through the exception table, and the register dump.

use crate::arch::x86_64::hypercall;
use crate::arch::x86_64::traps::{self, TrapFrame, VECTOR_FAILSAFE, VECTOR_UPCALL};
use crate::arch::x86_64::smp::{self, MAX_VCPUS};
use crate::{evtchn, hv, println, shared};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use xen_abi::arch_x86_64::{TrapInfo, FLAT_KERNEL_CS};
use xen_abi::callback::{CallbackRegister, CALLBACKF_mask_events, CALLBACKOP_register, CALLBACKTYPE_event, CALLBACKTYPE_failsafe};

const NAMES: [&str; 20] = [
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP", "#SS", "#GP", "#PF", "#15",
    "#MF", "#AC", "#MC", "#XM",
];

/// Exceptions handled, per vCPU and vector.
static COUNTS: [[AtomicU32; 20]; MAX_VCPUS] = [const { [const { AtomicU32::new(0) }; 20] }; MAX_VCPUS];
pub static FAILSAFES: AtomicU32 = AtomicU32::new(0);
pub static UPCALLS: AtomicU32 = AtomicU32::new(0);
static DUMP_NEXT: AtomicBool = AtomicBool::new(false);

/// The last exception recovered through the exception table on a vCPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Caught {
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    /// vcpu_info.arch.cr2 at the time (meaningful for #PF).
    pub cr2: u64,
}

static LAST: [[AtomicU64; 4]; MAX_VCPUS] = [const { [const { AtomicU64::new(0) }; 4] }; MAX_VCPUS];

/// The last exception the running vCPU recovered from.
pub fn last_caught() -> Caught {
    last_caught_on(smp::current())
}

pub fn last_caught_on(cpu: usize) -> Caught {
    let g = |i: usize| LAST[cpu][i].load(Ordering::Acquire);
    Caught { vector: g(0), error_code: g(1), rip: g(2), cr2: g(3) }
}

/// Exceptions `vector` the running vCPU handled.
pub fn count(vector: usize) -> u32 {
    count_on(smp::current(), vector)
}

pub fn count_on(cpu: usize, vector: usize) -> u32 {
    COUNTS[cpu][vector].load(Ordering::Acquire)
}

/// Print a full register dump for the next recovered exception too.
pub fn dump_next() {
    DUMP_NEXT.store(true, Ordering::Release);
}

/// Installs a handler for every exception vector 0-19 and the event and failsafe
/// callbacks. Returns the first failing hypercall's result.
/// The virtual IDT: vectors 0-19, then an entry with address 0 (the end of a
/// `set_trap_table` list).
pub fn trap_table() -> [TrapInfo; 21] {
    let mut table = [TrapInfo::default(); 21];
    for (v, &address) in traps::exception_entries().iter().enumerate() {
        // #BP and #OF may be raised by `int3`/`into` from the kernel itself: DPL 3.
        let dpl = if v == 3 || v == 4 { 3 } else { 0 };
        table[v] = TrapInfo { vector: v as u8, flags: dpl, cs: FLAT_KERNEL_CS, address, ..Default::default() };
    }
    table
}

pub fn init() -> Result<(), (&'static str, i64)> {
    let table = trap_table();
    crate::arch::x86_64::mem::scratch_put(hv::ARG, &table);
    let r = hypercall::call(
        xen_abi::hypercall::HYPERVISOR_set_trap_table,
        [crate::arch::x86_64::mem::scratch_addr(hv::ARG), 0, 0, 0, 0],
    );
    if r != 0 {
        return Err(("set_trap_table", r));
    }
    let cb = |type_, flags, address| {
        let mut c = CallbackRegister { type_, flags, address, ..Default::default() };
        hv::op(xen_abi::hypercall::HYPERVISOR_callback_op, CALLBACKOP_register.into(), &mut c)
    };
    match cb(CALLBACKTYPE_event, 0, traps::upcall_entry()) {
        0 => {}
        r => return Err(("callback_op(register event)", r)),
    }
    match cb(CALLBACKTYPE_failsafe, CALLBACKF_mask_events, traps::failsafe_entry()) {
        0 => Ok(()),
        r => Err(("callback_op(register failsafe)", r)),
    }
}

pub fn handle(f: &mut TrapFrame) {
    match f.vector {
        VECTOR_UPCALL => {
            UPCALLS.fetch_add(1, Ordering::AcqRel);
            evtchn::upcall();
        }
        VECTOR_FAILSAFE => {
            FAILSAFES.fetch_add(1, Ordering::AcqRel);
            println!("pv-guest: failsafe callback at rip {:#x}", f.rip);
        }
        v => exception(f, v as usize),
    }
}

fn exception(f: &mut TrapFrame, v: usize) {
    let cr2 = if v == 14 { shared::cr2() } else { 0 };
    let cpu = smp::current();
    if let Some(c) = COUNTS[cpu].get(v) {
        c.fetch_add(1, Ordering::AcqRel);
    }
    for (i, x) in [v as u64, f.error_code, f.rip, cr2].into_iter().enumerate() {
        LAST[cpu][i].store(x, Ordering::Release);
    }
    if let Some(&[_, fixup]) = traps::extable().iter().find(|e| e[0] == f.rip) {
        if DUMP_NEXT.swap(false, Ordering::AcqRel) {
            dump(f, cr2);
        }
        f.rip = fixup;
        f.rax = v as u64 + 1;
        return;
    }
    println!("pv-guest: unexpected exception");
    dump(f, cr2);
    hypercall::shutdown(xen_abi::sched::SHUTDOWN_crash);
}

fn dump(f: &TrapFrame, cr2: u64) {
    let name = NAMES.get(f.vector as usize).copied().unwrap_or("?");
    println!(
        "pv-guest: {name} (vector {}) error {:#x} at rip {:#018x} cs {:#x} (saved upcall mask {}) rflags {:#x} rsp {:#018x} ss {:#x} cr2 {cr2:#x}",
        f.vector,
        f.error_code,
        f.rip,
        f.cs & 0xffff,
        (f.cs >> 32) & 0xff,
        f.rflags,
        f.rsp,
        f.ss
    );
    println!("  rax {:#018x} rbx {:#018x} rcx {:#018x} rdx {:#018x}", f.rax, f.rbx, f.rcx, f.rdx);
    println!("  rsi {:#018x} rdi {:#018x} rbp {:#018x} r8  {:#018x}", f.rsi, f.rdi, f.rbp, f.r8);
    println!("  r9  {:#018x} r10 {:#018x} r11 {:#018x} r12 {:#018x}", f.r9, f.r10, f.r11, f.r12);
    println!("  r13 {:#018x} r14 {:#018x} r15 {:#018x}", f.r13, f.r14, f.r15);
}
