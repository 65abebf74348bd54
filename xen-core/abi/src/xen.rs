//! `xen.h` (+ the x86 parts it pulls in): start-of-day structures, `shared_info`,
//! `vcpu_info`, the PV MMU operations, VIRQs, `vm_assist`, `console_io` and the
//! reserved domain ids.
#![allow(non_upper_case_globals)]

use crate::types::DomId;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

// ---------------------------------------------------------------- VIRQs

/// `VIRQ_TIMER` (per vCPU): timebase update and/or requested timeout.
pub const VIRQ_TIMER: u32 = 0;
/// `VIRQ_DEBUG` (per vCPU): request guest to dump debug info.
pub const VIRQ_DEBUG: u32 = 1;
/// `VIRQ_CONSOLE` (global, dom0): bytes received on emergency console.
pub const VIRQ_CONSOLE: u32 = 2;
/// `VIRQ_DOM_EXC` (global, dom0): exceptional event for some domain.
pub const VIRQ_DOM_EXC: u32 = 3;
/// `VIRQ_TBUF` (global): trace buffer has records available.
pub const VIRQ_TBUF: u32 = 4;
/// `VIRQ_DEBUGGER` (global): a domain has paused for debugging.
pub const VIRQ_DEBUGGER: u32 = 6;
/// `VIRQ_XENOPROF` (per vCPU): oprofile sample available.
pub const VIRQ_XENOPROF: u32 = 7;
/// `VIRQ_CON_RING` (global): bytes received on the console ring.
pub const VIRQ_CON_RING: u32 = 8;
/// `VIRQ_PCPU_STATE` (global): pCPU state changed.
pub const VIRQ_PCPU_STATE: u32 = 9;
/// `VIRQ_MEM_EVENT` (global): a memory event has occurred.
pub const VIRQ_MEM_EVENT: u32 = 10;
/// `VIRQ_ARGO`: Argo interdomain message notification.
pub const VIRQ_ARGO: u32 = 11;
/// `VIRQ_ENOMEM` (global): low on heap memory.
pub const VIRQ_ENOMEM: u32 = 12;
/// `VIRQ_XENPMU` (per vCPU): PMC interrupt.
pub const VIRQ_XENPMU: u32 = 13;
/// `VIRQ_ARCH_0` (x86: `VIRQ_MCA`).
pub const VIRQ_ARCH_0: u32 = 16;
/// `VIRQ_ARCH_1`.
pub const VIRQ_ARCH_1: u32 = 17;
/// `VIRQ_ARCH_2`.
pub const VIRQ_ARCH_2: u32 = 18;
/// `VIRQ_ARCH_3`.
pub const VIRQ_ARCH_3: u32 = 19;
/// `VIRQ_ARCH_4`.
pub const VIRQ_ARCH_4: u32 = 20;
/// `VIRQ_ARCH_5`.
pub const VIRQ_ARCH_5: u32 = 21;
/// `VIRQ_ARCH_6`.
pub const VIRQ_ARCH_6: u32 = 22;
/// `VIRQ_ARCH_7`.
pub const VIRQ_ARCH_7: u32 = 23;
/// `NR_VIRQS`.
pub const NR_VIRQS: u32 = 24;

// ---------------------------------------------------------------- mmu_update

/// `MMU_NORMAL_PT_UPDATE`: checked `*ptr = val`; `ptr` is a machine address.
pub const MMU_NORMAL_PT_UPDATE: u64 = 0;
/// `MMU_MACHPHYS_UPDATE`: `ptr` = MA within the frame, `val` = PFN for the M2P.
pub const MMU_MACHPHYS_UPDATE: u64 = 1;
/// `MMU_PT_UPDATE_PRESERVE_AD`: atomically `*ptr = val | (*ptr & (A|D))`.
pub const MMU_PT_UPDATE_PRESERVE_AD: u64 = 2;
/// `MMU_PT_UPDATE_NO_TRANSLATE`: checked `*ptr = val`, `val` never translated.
pub const MMU_PT_UPDATE_NO_TRANSLATE: u64 = 3;

/// `struct mmu_update` (16 bytes): the command is in `ptr & 3`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MmuUpdate {
    /// Machine address of the PTE, with the `MMU_*` command in bits 1:0.
    pub ptr: u64,
    /// New contents of the PTE (or the PFN for `MMU_MACHPHYS_UPDATE`).
    pub val: u64,
}

impl MmuUpdate {
    /// The `MMU_*` command: Xen reads the low `sizeof(l1_pgentry_t) - 1` = 3 bits
    /// (`do_mmu_update`), so commands 4..=7 exist as "unknown" (-ENOSYS).
    pub const fn cmd(&self) -> u64 {
        self.ptr & 7
    }
    /// The target address with the command bits cleared.
    pub const fn addr(&self) -> u64 {
        self.ptr & !7
    }
}

// ---------------------------------------------------------------- mmuext_op

/// `MMUEXT_PIN_L1_TABLE`
pub const MMUEXT_PIN_L1_TABLE: u32 = 0;
/// `MMUEXT_PIN_L2_TABLE`
pub const MMUEXT_PIN_L2_TABLE: u32 = 1;
/// `MMUEXT_PIN_L3_TABLE`
pub const MMUEXT_PIN_L3_TABLE: u32 = 2;
/// `MMUEXT_PIN_L4_TABLE`
pub const MMUEXT_PIN_L4_TABLE: u32 = 3;
/// `MMUEXT_UNPIN_TABLE`
pub const MMUEXT_UNPIN_TABLE: u32 = 4;
/// `MMUEXT_NEW_BASEPTR`: new kernel page-table base.
pub const MMUEXT_NEW_BASEPTR: u32 = 5;
/// `MMUEXT_TLB_FLUSH_LOCAL`
pub const MMUEXT_TLB_FLUSH_LOCAL: u32 = 6;
/// `MMUEXT_INVLPG_LOCAL`
pub const MMUEXT_INVLPG_LOCAL: u32 = 7;
/// `MMUEXT_TLB_FLUSH_MULTI`
pub const MMUEXT_TLB_FLUSH_MULTI: u32 = 8;
/// `MMUEXT_INVLPG_MULTI`
pub const MMUEXT_INVLPG_MULTI: u32 = 9;
/// `MMUEXT_TLB_FLUSH_ALL`
pub const MMUEXT_TLB_FLUSH_ALL: u32 = 10;
/// `MMUEXT_INVLPG_ALL`
pub const MMUEXT_INVLPG_ALL: u32 = 11;
/// `MMUEXT_FLUSH_CACHE`
pub const MMUEXT_FLUSH_CACHE: u32 = 12;
/// `MMUEXT_SET_LDT`
pub const MMUEXT_SET_LDT: u32 = 13;
/// `MMUEXT_NEW_USER_BASEPTR` (x86-64 only): new user page-table base.
pub const MMUEXT_NEW_USER_BASEPTR: u32 = 15;
/// `MMUEXT_CLEAR_PAGE`
pub const MMUEXT_CLEAR_PAGE: u32 = 16;
/// `MMUEXT_COPY_PAGE`
pub const MMUEXT_COPY_PAGE: u32 = 17;
/// `MMUEXT_FLUSH_CACHE_GLOBAL`
pub const MMUEXT_FLUSH_CACHE_GLOBAL: u32 = 18;
/// `MMUEXT_MARK_SUPER`
pub const MMUEXT_MARK_SUPER: u32 = 19;
/// `MMUEXT_UNMARK_SUPER`
pub const MMUEXT_UNMARK_SUPER: u32 = 20;

/// `struct mmuext_op` (24 bytes). `arg1` and `arg2` are C unions; use the accessors.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MmuextOp {
    /// `MMUEXT_*`.
    pub cmd: u32,
    pub _pad0: [u8; 4],
    /// `union { xen_pfn_t mfn; unsigned long linear_addr; } arg1`.
    pub arg1: u64,
    /// `union { unsigned int nr_ents; const void *vcpumask; xen_pfn_t src_mfn; } arg2`.
    pub arg2: u64,
}

impl MmuextOp {
    /// `arg1.mfn` (pin/unpin, new base pointers, clear/copy page, mark super).
    pub const fn mfn(&self) -> u64 {
        self.arg1
    }
    /// `arg1.linear_addr` (INVLPG_*, SET_LDT).
    pub const fn linear_addr(&self) -> u64 {
        self.arg1
    }
    /// `arg2.nr_ents` (SET_LDT): the low 32 bits of `arg2`.
    pub const fn nr_ents(&self) -> u32 {
        self.arg2 as u32
    }
    /// `arg2.vcpumask` (TLB_FLUSH_MULTI, INVLPG_MULTI): guest pointer to a bitmap.
    pub const fn vcpumask(&self) -> u64 {
        self.arg2
    }
    /// `arg2.src_mfn` (COPY_PAGE).
    pub const fn src_mfn(&self) -> u64 {
        self.arg2
    }
}

// ---------------------------------------------------------------- update_va_mapping

/// `UVMF_NONE`: no flushing at all.
pub const UVMF_NONE: u64 = 0;
/// `UVMF_TLB_FLUSH`: flush entire TLB(s).
pub const UVMF_TLB_FLUSH: u64 = 1;
/// `UVMF_INVLPG`: flush only one entry.
pub const UVMF_INVLPG: u64 = 2;
/// `UVMF_FLUSHTYPE_MASK`
pub const UVMF_FLUSHTYPE_MASK: u64 = 3;
/// `UVMF_MULTI`: flush a subset of TLBs (OR in a pointer to a vCPU bitmap).
pub const UVMF_MULTI: u64 = 0;
/// `UVMF_LOCAL`: flush the local TLB (= MULTI with a NULL bitmap).
pub const UVMF_LOCAL: u64 = 0;
/// `UVMF_ALL`: flush all TLBs.
pub const UVMF_ALL: u64 = 4;

// ---------------------------------------------------------------- multicall

/// `struct multicall_entry` (64 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct MulticallEntry {
    /// Hypercall number.
    pub op: u64,
    /// Return value, written by Xen.
    pub result: u64,
    /// Arguments (only the first five are used on x86-64).
    pub args: [u64; 6],
}

// ---------------------------------------------------------------- console_io, vm_assist

/// `CONSOLEIO_write`
pub const CONSOLEIO_write: u32 = 0;
/// `CONSOLEIO_read`
pub const CONSOLEIO_read: u32 = 1;

/// `VMASST_CMD_enable`
pub const VMASST_CMD_enable: u32 = 0;
/// `VMASST_CMD_disable`
pub const VMASST_CMD_disable: u32 = 1;
/// `VMASST_TYPE_4gb_segments`
pub const VMASST_TYPE_4gb_segments: u32 = 0;
/// `VMASST_TYPE_4gb_segments_notify`
pub const VMASST_TYPE_4gb_segments_notify: u32 = 1;
/// `VMASST_TYPE_writable_pagetables`
pub const VMASST_TYPE_writable_pagetables: u32 = 2;
/// `VMASST_TYPE_pae_extended_cr3`
pub const VMASST_TYPE_pae_extended_cr3: u32 = 3;
/// `VMASST_TYPE_architectural_iopl`
pub const VMASST_TYPE_architectural_iopl: u32 = 4;
/// `VMASST_TYPE_runstate_update_flag`
pub const VMASST_TYPE_runstate_update_flag: u32 = 5;
/// `VMASST_TYPE_m2p_strict`
pub const VMASST_TYPE_m2p_strict: u32 = 32;

// ---------------------------------------------------------------- domain ids

/// `DOMID_FIRST_RESERVED`
pub const DOMID_FIRST_RESERVED: DomId = DomId::FIRST_RESERVED;
/// `DOMID_SELF`
pub const DOMID_SELF: DomId = DomId::SELF;
/// `DOMID_IO`
pub const DOMID_IO: DomId = DomId::IO;
/// `DOMID_XEN`
pub const DOMID_XEN: DomId = DomId::XEN;
/// `DOMID_COW`
pub const DOMID_COW: DomId = DomId::COW;
/// `DOMID_INVALID`
pub const DOMID_INVALID: DomId = DomId::INVALID;
/// `DOMID_IDLE`
pub const DOMID_IDLE: DomId = DomId::IDLE;
/// `DOMID_MASK`
pub const DOMID_MASK: u16 = DomId::MASK;

// ---------------------------------------------------------------- time, vcpu_info

/// `XEN_PVCLOCK_TSC_STABLE_BIT` (in [`VcpuTimeInfo::flags`]).
pub const XEN_PVCLOCK_TSC_STABLE_BIT: u8 = 1 << 0;
/// `XEN_PVCLOCK_GUEST_STOPPED`
pub const XEN_PVCLOCK_GUEST_STOPPED: u8 = 1 << 1;

/// `struct vcpu_time_info` (32 bytes). `version` is a seqlock: odd while updating.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuTimeInfo {
    pub version: u32,
    pub pad0: u32,
    /// TSC at the last update of the time values.
    pub tsc_timestamp: u64,
    /// Nanoseconds since boot at `tsc_timestamp`.
    pub system_time: u64,
    pub tsc_to_system_mul: u32,
    pub tsc_shift: i8,
    /// `XEN_PVCLOCK_*`.
    pub flags: u8,
    pub pad1: [u8; 2],
}

impl VcpuTimeInfo {
    /// System time (ns) at TSC value `tsc`, computed as the C header describes:
    /// `system_time + ((((tsc - tsc_timestamp) << tsc_shift) * tsc_to_system_mul) >> 32)`.
    pub const fn system_time_at(&self, tsc: u64) -> u64 {
        let mut delta = tsc.wrapping_sub(self.tsc_timestamp);
        if self.tsc_shift >= 0 {
            delta <<= self.tsc_shift as u32;
        } else {
            delta >>= (-(self.tsc_shift as i32)) as u32;
        }
        let scaled = ((delta as u128 * self.tsc_to_system_mul as u128) >> 32) as u64;
        self.system_time.wrapping_add(scaled)
    }
}

/// `struct arch_vcpu_info` (x86-64, 16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ArchVcpuInfo {
    /// Faulting address of the last #PF delivered to the guest.
    pub cr2: u64,
    pub pad: u64,
}

/// `struct vcpu_info` (64 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct VcpuInfo {
    /// Written non-zero by Xen when an event is pending.
    pub evtchn_upcall_pending: u8,
    /// The guest's virtual interrupt flag (non-zero = events masked).
    pub evtchn_upcall_mask: u8,
    pub _pad0: [u8; 6],
    /// One bit per 64-bit word of `shared_info.evtchn_pending`.
    pub evtchn_pending_sel: u64,
    pub arch: ArchVcpuInfo,
    pub time: VcpuTimeInfo,
}

/// `XEN_LEGACY_MAX_VCPUS`: `vcpu_info` slots in `shared_info`.
pub const XEN_LEGACY_MAX_VCPUS: usize = 32;
/// Words in `shared_info.evtchn_pending`/`evtchn_mask` (`sizeof(xen_ulong_t) * 8`).
pub const EVTCHN_WORDS: usize = 64;

/// `struct arch_shared_info` (x86-64, 48 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct ArchSharedInfo {
    /// Number of valid P2M entries.
    pub max_pfn: u64,
    /// Frame of the 3-level P2M list-of-lists (0 unset, ~0 invalid).
    pub pfn_to_mfn_frame_list_list: u64,
    pub nmi_reason: u64,
    /// CR3 of the address space in which `p2m_vaddr` is valid.
    pub p2m_cr3: u64,
    /// Virtual address of the linear P2M list.
    pub p2m_vaddr: u64,
    /// Odd while the guest updates its P2M mappings.
    pub p2m_generation: u64,
}

/// `struct shared_info` (3136 bytes used of its page).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct SharedInfo {
    pub vcpu_info: [VcpuInfo; XEN_LEGACY_MAX_VCPUS],
    pub evtchn_pending: [u64; EVTCHN_WORDS],
    pub evtchn_mask: [u64; EVTCHN_WORDS],
    /// Wallclock version counter (seqlock like [`VcpuTimeInfo::version`]).
    pub wc_version: u32,
    pub wc_sec: u32,
    pub wc_nsec: u32,
    pub wc_sec_hi: u32,
    pub arch: ArchSharedInfo,
}

// ---------------------------------------------------------------- start_info

/// `MAX_GUEST_CMDLINE`
pub const MAX_GUEST_CMDLINE: usize = 1024;
/// The `start_info.magic` string of a 64-bit PV guest (NUL padded to 32 bytes).
pub const START_INFO_MAGIC_X86_64: &[u8] = b"xen-3.0-x86_64";

/// `SIF_PRIVILEGED`: is the domain privileged?
pub const SIF_PRIVILEGED: u32 = 1 << 0;
/// `SIF_INITDOMAIN`: is this the initial control domain?
pub const SIF_INITDOMAIN: u32 = 1 << 1;
/// `SIF_MULTIBOOT_MOD`: is `mod_start` a multiboot module?
pub const SIF_MULTIBOOT_MOD: u32 = 1 << 2;
/// `SIF_MOD_START_PFN`: is `mod_start` a PFN?
pub const SIF_MOD_START_PFN: u32 = 1 << 3;
/// `SIF_VIRT_P2M_4TOOLS`: tools understand a virtually mapped P2M.
pub const SIF_VIRT_P2M_4TOOLS: u32 = 1 << 4;
/// `SIF_PM_MASK`: one byte reserved for xen-pm options.
pub const SIF_PM_MASK: u32 = 0xFF << 8;

bitflags::bitflags! {
    /// `start_info.flags` as a set of the `SIF_*` bits above (same values).
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Sif: u32 {
        const PRIVILEGED = SIF_PRIVILEGED;
        const INITDOMAIN = SIF_INITDOMAIN;
        const MULTIBOOT_MOD = SIF_MULTIBOOT_MOD;
        const MOD_START_PFN = SIF_MOD_START_PFN;
        const VIRT_P2M_4TOOLS = SIF_VIRT_P2M_4TOOLS;
        /// One byte for xen-pm options (`SIF_PM_MASK`).
        const PM_MASK = SIF_PM_MASK;
    }
}

/// `struct start_info` (x86-64, 1168 bytes).
///
/// `console` is a C union: `console.domU.{mfn,evtchn}` for ordinary guests and
/// `console.dom0.{info_off,info_size}` for the hardware domain; see the accessors.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct StartInfo {
    /// `"xen-<version>-<platform>"`, e.g. [`START_INFO_MAGIC_X86_64`].
    pub magic: [u8; 32],
    /// Total pages allocated to this domain.
    pub nr_pages: u64,
    /// Machine address of the shared info page.
    pub shared_info: u64,
    /// `SIF_*`.
    pub flags: u32,
    pub _pad0: [u8; 4],
    /// Machine frame of the xenstore ring.
    pub store_mfn: u64,
    /// Event channel for xenstore.
    pub store_evtchn: u32,
    pub _pad1: [u8; 4],
    /// `console.domU.mfn` (for dom0: `info_off` | `info_size << 32`).
    pub console_mfn: u64,
    /// `console.domU.evtchn`.
    pub console_evtchn: u32,
    pub _pad2: [u8; 4],
    /// Virtual address of the bootstrap page directory (L4).
    pub pt_base: u64,
    /// Number of bootstrap page-table frames.
    pub nr_pt_frames: u64,
    /// Virtual address of the page-frame list (P2M).
    pub mfn_list: u64,
    /// Virtual address (or PFN if `SIF_MOD_START_PFN`) of the initrd.
    pub mod_start: u64,
    /// Size in bytes of the initrd.
    pub mod_len: u64,
    /// NUL-terminated command line.
    pub cmd_line: [u8; MAX_GUEST_CMDLINE],
    /// First PFN of the separately mapped initial P2M.
    pub first_p2m_pfn: u64,
    /// Number of PFNs of that P2M and its page tables.
    pub nr_p2m_frames: u64,
}

impl StartInfo {
    /// `console.dom0.info_off`: offset of the `dom0_vga_console_info` in this page.
    pub const fn dom0_console_info_off(&self) -> u32 {
        self.console_mfn as u32
    }
    /// `console.dom0.info_size`.
    pub const fn dom0_console_info_size(&self) -> u32 {
        (self.console_mfn >> 32) as u32
    }
    /// Sets `console.dom0` (overlapping `console.domU.mfn`).
    pub fn set_dom0_console(&mut self, info_off: u32, info_size: u32) {
        self.console_mfn = info_off as u64 | (info_size as u64) << 32;
    }
    /// Copies `magic` (truncated to 31 bytes) with NUL padding.
    pub fn set_magic(&mut self, magic: &[u8]) {
        let n = magic.len().min(self.magic.len() - 1);
        self.magic = [0; 32];
        self.magic[..n].copy_from_slice(&magic[..n]);
    }
}

/// `struct xen_multiboot_mod_list` (16 bytes): entry of a `SIF_MULTIBOOT_MOD` module.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMultibootModList {
    pub mod_start: u32,
    pub mod_end: u32,
    pub cmdline: u32,
    pub pad: u32,
}

zeroed_default!(SharedInfo, StartInfo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_info_console_union() {
        let mut si = StartInfo::default();
        si.set_dom0_console(1168, 40);
        assert_eq!(si.dom0_console_info_off(), 1168);
        assert_eq!(si.dom0_console_info_size(), 40);
        si.set_magic(START_INFO_MAGIC_X86_64);
        assert_eq!(&si.magic[..14], b"xen-3.0-x86_64");
        assert_eq!(si.magic[14], 0);
    }

    #[test]
    fn pvclock_scaling() {
        let t = VcpuTimeInfo {
            tsc_timestamp: 1000,
            system_time: 5,
            tsc_to_system_mul: 1 << 31, // 0.5 ns per shifted tick
            tsc_shift: 1,
            ..Default::default()
        };
        assert_eq!(t.system_time_at(1100), 5 + 100);
        let t2 = VcpuTimeInfo { tsc_shift: -1, ..t };
        assert_eq!(t2.system_time_at(1100), 5 + 25);
    }

    #[test]
    fn mmu_update_cmd() {
        let u = MmuUpdate {
            ptr: 0x1000 | MMU_PT_UPDATE_PRESERVE_AD,
            val: 0,
        };
        assert_eq!(u.cmd(), MMU_PT_UPDATE_PRESERVE_AD);
        assert_eq!(u.addr(), 0x1000);
    }
}
