//! The register frame every entry builds (Xen's `cpu_user_regs` order up to `ss`) and the
//! Rust side of exception entry.

use core::fmt;

/// Saved by `entry.s`; fields below `rip` are pushed by software, the rest by the CPU
/// (or by hand for SYSCALL). Handlers may edit it: iretq uses what is left here.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
pub struct Regs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub error_code: u32,
    pub entry_vector: u32,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// `entry_vector` of a SYSCALL entry.
pub const ENTRY_SYSCALL: u32 = 0x100;

impl Regs {
    pub fn from_guest(&self) -> bool {
        self.cs & 3 == 3
    }
}

pub const EXCEPTION_NAMES: [&str; 32] = [
    "divide error", "debug", "NMI", "int3", "overflow", "bounds", "invalid opcode",
    "device not available", "double fault", "coprocessor segment", "invalid TSS",
    "segment not present", "stack segment", "general protection", "page fault", "reserved",
    "x87 FPU error", "alignment check", "machine check", "SIMD exception", "virtualisation",
    "control protection", "reserved", "reserved", "reserved", "reserved", "reserved",
    "reserved", "hypervisor injection", "VMM communication", "security", "reserved",
];

impl fmt::Display for Regs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "RIP:    {:04x}:[<{:016x}>]  RFLAGS: {:016x}", self.cs, self.rip, self.rflags)?;
        writeln!(f, "rax: {:016x}   rbx: {:016x}   rcx: {:016x}", self.rax, self.rbx, self.rcx)?;
        writeln!(f, "rdx: {:016x}   rsi: {:016x}   rdi: {:016x}", self.rdx, self.rsi, self.rdi)?;
        writeln!(f, "rbp: {:016x}   rsp: {:016x}   r8:  {:016x}", self.rbp, self.rsp, self.r8)?;
        writeln!(f, "r9:  {:016x}   r10: {:016x}   r11: {:016x}", self.r9, self.r10, self.r11)?;
        writeln!(f, "r12: {:016x}   r13: {:016x}   r14: {:016x}", self.r12, self.r13, self.r14)?;
        write!(f, "r15: {:016x}   ss: {:04x}   error code: {:04x}", self.r15, self.ss, self.error_code)
    }
}

/// Rust side of every exception and interrupt entry.
#[no_mangle]
extern "C" fn handle_trap(regs: &mut Regs) {
    if regs.entry_vector >= 32 {
        // An interrupt: the APIC timer, another CPU's IPI (or a spurious one). Its work
        // is done on the way back to the guest; in the hypervisor it only ends an idle
        // `hlt`. A TLB flush is done at once and needs nothing else (nor the domain lock,
        // which the CPU that asked holds while it waits).
        match regs.entry_vector {
            super::clock::TIMER_VECTOR => super::clock::eoi(),
            super::smp::FLUSH_VECTOR => {
                super::smp::service_flush();
                super::clock::ack();
                return;
            }
            super::smp::RESCHEDULE_VECTOR => super::clock::ack(),
            _ => {}
        }
        if regs.from_guest() {
            crate::guest_trap(regs);
        }
        return;
    }
    if regs.from_guest() {
        crate::guest_trap(regs);
        return;
    }
    if regs.rip == core::ptr::addr_of!(iretq_to_frame) as u64 && matches!(regs.entry_vector, 10..=14) {
        guest_iretq_fault(regs);
    }
    if regs.entry_vector == 13 {
        if let Some(resume) = super::cpu::rdmsr_fixup(regs.rip) {
            regs.rip = resume;
            return;
        }
    }
    let vector = regs.entry_vector as usize;
    let name = EXCEPTION_NAMES.get(vector).copied().unwrap_or("interrupt");
    crate::println!("----[ xen-core fatal trap: vector {vector} ({name}) in hypervisor ]----");
    if vector == 14 {
        crate::println!("cr2: {:016x}", super::cpu::read_cr2());
    }
    crate::println!("{regs}");
    crate::println!("Panic on CPU {}: fatal trap in hypervisor", super::percpu::cpu_index());
    super::qemu::exit(super::qemu::ExitCode::Failure);
}

/// Rust side of SYSCALL from ring 3.
#[no_mangle]
extern "C" fn handle_syscall(regs: &mut Regs) {
    crate::guest_syscall(regs);
}


extern "C" {
    fn return_to_frame();
    static iretq_to_frame: u8;
}

/// The `iretq` into a guest faulted on the code or stack segment it returns to (one of
/// its LDT's descriptors, changed by another vCPU since it was loaded, say). As in Xen,
/// the fault is the guest's, raised where it was returning to: its registers are still
/// the CPU's (saved in `regs`), the rest is the frame `iretq` was popping.
/// Returns if the frame was not a guest's. Either way nothing of the hypervisor's was
/// live on the stack: the guest's frame becomes the one `enter_guest` writes.
fn guest_iretq_fault(regs: &Regs) {
    let mut guest = *regs;
    // SAFETY: `regs.rsp` is the stack pointer at the faulting `iretq` in
    // `return_to_frame`: it points at the five words of the frame being returned to, on
    // this CPU's stack, just above the frame the fault itself pushed.
    let frame = unsafe { (regs.rsp as *const [u64; 5]).read() };
    [guest.rip, guest.cs, guest.rflags, guest.rsp, guest.ss] = frame;
    if !guest.from_guest() {
        return;
    }
    crate::guest_trap(&mut guest);
    enter_guest(&guest)
}

/// Where an entry from ring 3 leaves its frame: the top of this CPU's hypervisor stack.
pub fn guest_frame_slot() -> *mut Regs {
    let top = super::percpu::stack_top(super::percpu::cpu_index());
    (top as usize - core::mem::size_of::<Regs>()) as *mut Regs
}

/// Starts running a guest: its registers become the frame at the top of the hypervisor
/// stack and the exit path `iretq`s into them. The caller has loaded the guest's CR3.
/// (Our own asm: the x86_64 crate has no way into a guest's frame.)
pub fn enter_guest(regs: &Regs) -> ! {
    let frame = guest_frame_slot();
    // SAFETY: the frame slot lies at the top of the hypervisor stack, which nothing uses
    // while we run on the boot stack (or, after a guest's faulted iretq, holds only that
    // fault's frames, copied already, above ours); after the write we switch to that
    // stack, abandoning the one we ran on, and jump to the common exit path that pops
    // exactly a `Regs`.
    unsafe {
        frame.write(*regs);
        core::arch::asm!(
            "mov rsp, {frame}",
            "jmp {exit}",
            frame = in(reg) frame,
            exit = sym return_to_frame,
            options(noreturn)
        )
    }
}
