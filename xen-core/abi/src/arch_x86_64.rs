//! `arch-x86/xen.h` and `arch-x86/xen-x86_64.h`: trap table entries, register frames,
//! `vcpu_guest_context`, the flat segment selectors and the 64-bit PV address-space
//! constants.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

// ---------------------------------------------------------------- selectors

/// `FLAT_RING3_CS32` (GDT index 260).
pub const FLAT_RING3_CS32: u16 = 0xe023;
/// `FLAT_RING3_CS64` (GDT index 262).
pub const FLAT_RING3_CS64: u16 = 0xe033;
/// `FLAT_RING3_DS32` (GDT index 261).
pub const FLAT_RING3_DS32: u16 = 0xe02b;
/// `FLAT_RING3_DS64`: the NULL selector.
pub const FLAT_RING3_DS64: u16 = 0x0000;
/// `FLAT_RING3_SS32` (GDT index 261).
pub const FLAT_RING3_SS32: u16 = 0xe02b;
/// `FLAT_RING3_SS64` (GDT index 261).
pub const FLAT_RING3_SS64: u16 = 0xe02b;
/// `FLAT_KERNEL_DS64`
pub const FLAT_KERNEL_DS64: u16 = FLAT_RING3_DS64;
/// `FLAT_KERNEL_DS32`
pub const FLAT_KERNEL_DS32: u16 = FLAT_RING3_DS32;
/// `FLAT_KERNEL_DS`
pub const FLAT_KERNEL_DS: u16 = FLAT_KERNEL_DS64;
/// `FLAT_KERNEL_CS64`
pub const FLAT_KERNEL_CS64: u16 = FLAT_RING3_CS64;
/// `FLAT_KERNEL_CS32`
pub const FLAT_KERNEL_CS32: u16 = FLAT_RING3_CS32;
/// `FLAT_KERNEL_CS`
pub const FLAT_KERNEL_CS: u16 = FLAT_KERNEL_CS64;
/// `FLAT_KERNEL_SS64`
pub const FLAT_KERNEL_SS64: u16 = FLAT_RING3_SS64;
/// `FLAT_KERNEL_SS32`
pub const FLAT_KERNEL_SS32: u16 = FLAT_RING3_SS32;
/// `FLAT_KERNEL_SS`
pub const FLAT_KERNEL_SS: u16 = FLAT_KERNEL_SS64;
/// `FLAT_USER_DS64`
pub const FLAT_USER_DS64: u16 = FLAT_RING3_DS64;
/// `FLAT_USER_DS32`
pub const FLAT_USER_DS32: u16 = FLAT_RING3_DS32;
/// `FLAT_USER_DS`
pub const FLAT_USER_DS: u16 = FLAT_USER_DS64;
/// `FLAT_USER_CS64`
pub const FLAT_USER_CS64: u16 = FLAT_RING3_CS64;
/// `FLAT_USER_CS32`
pub const FLAT_USER_CS32: u16 = FLAT_RING3_CS32;
/// `FLAT_USER_CS`
pub const FLAT_USER_CS: u16 = FLAT_USER_CS64;
/// `FLAT_USER_SS64`
pub const FLAT_USER_SS64: u16 = FLAT_RING3_SS64;
/// `FLAT_USER_SS32`
pub const FLAT_USER_SS32: u16 = FLAT_RING3_SS32;
/// `FLAT_USER_SS`
pub const FLAT_USER_SS: u16 = FLAT_USER_SS64;

/// `FIRST_RESERVED_GDT_PAGE`: guest GDTs may use only the frames below this.
pub const FIRST_RESERVED_GDT_PAGE: usize = 14;
/// `FIRST_RESERVED_GDT_BYTE`
pub const FIRST_RESERVED_GDT_BYTE: usize = FIRST_RESERVED_GDT_PAGE * 4096;
/// `FIRST_RESERVED_GDT_ENTRY`
pub const FIRST_RESERVED_GDT_ENTRY: usize = FIRST_RESERVED_GDT_BYTE / 8;

// ---------------------------------------------------------------- address space

/// `HYPERVISOR_VIRT_START`: start of Xen's hole (L4 slot 256).
pub const HYPERVISOR_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// `HYPERVISOR_VIRT_END`: end of Xen's hole (L4 slot 272).
pub const HYPERVISOR_VIRT_END: u64 = 0xFFFF_8800_0000_0000;
/// `MACH2PHYS_VIRT_START`: the read-only M2P seen by guests.
pub const MACH2PHYS_VIRT_START: u64 = 0xFFFF_8000_0000_0000;
/// `MACH2PHYS_VIRT_END`
pub const MACH2PHYS_VIRT_END: u64 = 0xFFFF_8040_0000_0000;
/// `MACH2PHYS_NR_ENTRIES`: 8-byte entries in the M2P window.
pub const MACH2PHYS_NR_ENTRIES: u64 = (MACH2PHYS_VIRT_END - MACH2PHYS_VIRT_START) >> 3;

// ---------------------------------------------------------------- set_segment_base

/// `SEGBASE_FS`
pub const SEGBASE_FS: u32 = 0;
/// `SEGBASE_GS_USER`
pub const SEGBASE_GS_USER: u32 = 1;
/// `SEGBASE_GS_KERNEL`
pub const SEGBASE_GS_KERNEL: u32 = 2;
/// `SEGBASE_GS_USER_SEL`: load user `%gs` from `base[15:0]`.
pub const SEGBASE_GS_USER_SEL: u32 = 3;

// ---------------------------------------------------------------- VGCF flags

/// `_VGCF_i387_valid`
pub const _VGCF_i387_valid: u32 = 0;
/// `VGCF_i387_valid` (= `VGCF_I387_VALID`)
pub const VGCF_i387_valid: u64 = 1 << _VGCF_i387_valid;
/// `VGCF_I387_VALID`
pub const VGCF_I387_VALID: u64 = VGCF_i387_valid;
/// `_VGCF_in_kernel`
pub const _VGCF_in_kernel: u32 = 2;
/// `VGCF_in_kernel` (= `VGCF_IN_KERNEL`)
pub const VGCF_in_kernel: u64 = 1 << _VGCF_in_kernel;
/// `VGCF_IN_KERNEL`
pub const VGCF_IN_KERNEL: u64 = VGCF_in_kernel;
/// `_VGCF_failsafe_disables_events`
pub const _VGCF_failsafe_disables_events: u32 = 3;
/// `VGCF_failsafe_disables_events`
pub const VGCF_failsafe_disables_events: u64 = 1 << _VGCF_failsafe_disables_events;
/// `_VGCF_syscall_disables_events`
pub const _VGCF_syscall_disables_events: u32 = 4;
/// `VGCF_syscall_disables_events`
pub const VGCF_syscall_disables_events: u64 = 1 << _VGCF_syscall_disables_events;
/// `_VGCF_online`
pub const _VGCF_online: u32 = 5;
/// `VGCF_online`
pub const VGCF_online: u64 = 1 << _VGCF_online;
/// `_VGCF_in_syscall`
pub const _VGCF_in_syscall: u32 = 8;
/// `VGCF_in_syscall` (= `VGCF_IN_SYSCALL`): `iret` flag for a SYSRET-style return.
pub const VGCF_in_syscall: u64 = 1 << _VGCF_in_syscall;
/// `VGCF_IN_SYSCALL`
pub const VGCF_IN_SYSCALL: u64 = VGCF_in_syscall;

bitflags::bitflags! {
    /// `vcpu_guest_context.flags` and `iret_context.flags` as a set of the `VGCF_*` bits
    /// above (same values).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Vgcf: u64 {
        const I387_VALID = VGCF_i387_valid;
        const IN_KERNEL = VGCF_in_kernel;
        const FAILSAFE_DISABLES_EVENTS = VGCF_failsafe_disables_events;
        const SYSCALL_DISABLES_EVENTS = VGCF_syscall_disables_events;
        const ONLINE = VGCF_online;
        const IN_SYSCALL = VGCF_in_syscall;
    }
}

// ---------------------------------------------------------------- trap_info

/// `TI_GET_DPL` mask: privilege level allowed to use `int n`.
pub const TI_DPL_MASK: u8 = 3;
/// `TI_GET_IF` bit: clear the event mask on entry (interrupt gate).
pub const TI_IF: u8 = 4;

/// `struct trap_info` (16 bytes): one entry of the virtual IDT.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct TrapInfo {
    /// Exception vector.
    pub vector: u8,
    /// Bits 0-1: DPL; bit 2: clear event mask on entry.
    pub flags: u8,
    /// Code selector.
    pub cs: u16,
    pub _pad0: [u8; 4],
    /// Handler address (0 terminates a `set_trap_table` list).
    pub address: u64,
}

impl TrapInfo {
    /// `TI_GET_DPL`
    pub const fn dpl(&self) -> u8 {
        self.flags & TI_DPL_MASK
    }
    /// `TI_GET_IF`: does entry mask events?
    pub const fn masks_events(&self) -> bool {
        self.flags & TI_IF != 0
    }
}

// ---------------------------------------------------------------- register frames

/// `struct iret_context` (72 bytes): what the `iret` hypercall finds on the stack.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct IretContext {
    pub rax: u64,
    pub r11: u64,
    pub rcx: u64,
    /// `VGCF_in_syscall` or 0.
    pub flags: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// `struct cpu_user_regs` (x86-64, 200 bytes). The C header declares each GPR as a
/// union of its 64/32/16/8-bit names; only the 64-bit names are used here.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct CpuUserRegs {
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
    /// Private to Xen.
    pub error_code: u32,
    /// Private to Xen.
    pub entry_vector: u32,
    pub rip: u64,
    pub cs: u16,
    pub _pad0: [u16; 1],
    pub saved_upcall_mask: u8,
    pub _pad1: [u8; 3],
    /// `rflags.IF == !saved_upcall_mask`.
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u16,
    pub _pad2: [u16; 3],
    pub es: u16,
    pub _pad3: [u16; 3],
    pub ds: u16,
    pub _pad4: [u16; 3],
    pub fs: u16,
    pub _pad5: [u16; 3],
    pub gs: u16,
    pub _pad6: [u16; 3],
}

/// `struct vcpu_guest_context` (x86-64, 5168 bytes): used by `VCPUOP_initialise`
/// and `XEN_DOMCTL_{set,get}vcpucontext`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct VcpuGuestContext {
    /// FXSAVE image (`struct { char x[512]; } fpu_ctxt`).
    pub fpu_ctxt: [u8; 512],
    /// `VGCF_*`.
    pub flags: u64,
    pub user_regs: CpuUserRegs,
    /// Virtual IDT.
    pub trap_ctxt: [TrapInfo; 256],
    /// LDT linear address.
    pub ldt_base: u64,
    /// LDT entries.
    pub ldt_ents: u64,
    /// GDT machine frames.
    pub gdt_frames: [u64; 16],
    /// GDT entries.
    pub gdt_ents: u64,
    /// Virtual TSS: kernel stack segment.
    pub kernel_ss: u64,
    /// Virtual TSS: kernel stack pointer.
    pub kernel_sp: u64,
    /// CR0-CR7; `ctrlreg[3]` = kernel L4 (MFN << 12), `ctrlreg[1]` = user L4.
    pub ctrlreg: [u64; 8],
    /// DR0-DR7.
    pub debugreg: [u64; 8],
    pub event_callback_eip: u64,
    pub failsafe_callback_eip: u64,
    pub syscall_callback_eip: u64,
    /// `VMASST_TYPE_*` bitmap.
    pub vm_assist: u64,
    pub fs_base: u64,
    pub gs_base_kernel: u64,
    pub gs_base_user: u64,
}

zeroed_default!(VcpuGuestContext);

/// `xen_pfn_to_cr3`
pub const fn xen_pfn_to_cr3(pfn: u64) -> u64 {
    pfn << 12
}

/// `xen_cr3_to_pfn`
pub const fn xen_cr3_to_pfn(cr3: u64) -> u64 {
    cr3 >> 12
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trap_info_flags() {
        let t = TrapInfo {
            vector: 3,
            flags: 3 | TI_IF,
            cs: FLAT_KERNEL_CS,
            address: 1,
            ..Default::default()
        };
        assert_eq!(t.dpl(), 3);
        assert!(t.masks_events());
        assert_eq!(xen_cr3_to_pfn(xen_pfn_to_cr3(0x1234)), 0x1234);
        assert_eq!(MACH2PHYS_NR_ENTRIES, 1 << 35);
        assert_eq!(VcpuGuestContext::default().flags, 0);
    }
}
