//! Hypercall numbers (`__HYPERVISOR_*` in `xen.h`), as placed in `RAX` by a 64-bit PV
//! guest before `SYSCALL` (or by the hypercall page stub at `page + 32 * nr`).
#![allow(non_upper_case_globals)]

macro_rules! hypercalls {
    ($($(#[$doc:meta])* $konst:ident = $val:literal => $variant:ident, $name:literal;)*) => {
        $( $(#[$doc])* pub const $konst: u64 = $val; )*

        /// Every hypercall number defined by Xen 4.17 (`__HYPERVISOR_*`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u64)]
        pub enum Hypercall {
            $( $(#[$doc])* $variant = $val, )*
        }

        impl Hypercall {
            /// All hypercalls, in numeric order.
            pub const ALL: &'static [Hypercall] = &[$(Hypercall::$variant),*];

            /// Xen's name without the `__HYPERVISOR_` prefix, e.g. `"mmu_update"`.
            pub const fn name(self) -> &'static str {
                match self { $(Hypercall::$variant => $name,)* }
            }

            /// The number placed in `RAX`.
            pub const fn number(self) -> u64 {
                self as u64
            }

            /// Looks a number up; `None` for unused slots (11, 43..=47, > 55).
            pub const fn from_number(nr: u64) -> Option<Self> {
                match nr { $($val => Some(Hypercall::$variant),)* _ => None }
            }
        }
    };
}

hypercalls! {
    /// `__HYPERVISOR_set_trap_table`
    HYPERVISOR_set_trap_table = 0 => SetTrapTable, "set_trap_table";
    /// `__HYPERVISOR_mmu_update`
    HYPERVISOR_mmu_update = 1 => MmuUpdate, "mmu_update";
    /// `__HYPERVISOR_set_gdt`
    HYPERVISOR_set_gdt = 2 => SetGdt, "set_gdt";
    /// `__HYPERVISOR_stack_switch`
    HYPERVISOR_stack_switch = 3 => StackSwitch, "stack_switch";
    /// `__HYPERVISOR_set_callbacks`
    HYPERVISOR_set_callbacks = 4 => SetCallbacks, "set_callbacks";
    /// `__HYPERVISOR_fpu_taskswitch`
    HYPERVISOR_fpu_taskswitch = 5 => FpuTaskswitch, "fpu_taskswitch";
    /// `__HYPERVISOR_sched_op_compat` (compat since 0x00030101)
    HYPERVISOR_sched_op_compat = 6 => SchedOpCompat, "sched_op_compat";
    /// `__HYPERVISOR_platform_op` (formerly `dom0_op`)
    HYPERVISOR_platform_op = 7 => PlatformOp, "platform_op";
    /// `__HYPERVISOR_set_debugreg`
    HYPERVISOR_set_debugreg = 8 => SetDebugreg, "set_debugreg";
    /// `__HYPERVISOR_get_debugreg`
    HYPERVISOR_get_debugreg = 9 => GetDebugreg, "get_debugreg";
    /// `__HYPERVISOR_update_descriptor`
    HYPERVISOR_update_descriptor = 10 => UpdateDescriptor, "update_descriptor";
    /// `__HYPERVISOR_memory_op`
    HYPERVISOR_memory_op = 12 => MemoryOp, "memory_op";
    /// `__HYPERVISOR_multicall`
    HYPERVISOR_multicall = 13 => Multicall, "multicall";
    /// `__HYPERVISOR_update_va_mapping`
    HYPERVISOR_update_va_mapping = 14 => UpdateVaMapping, "update_va_mapping";
    /// `__HYPERVISOR_set_timer_op`
    HYPERVISOR_set_timer_op = 15 => SetTimerOp, "set_timer_op";
    /// `__HYPERVISOR_event_channel_op_compat` (compat since 0x00030202)
    HYPERVISOR_event_channel_op_compat = 16 => EventChannelOpCompat, "event_channel_op_compat";
    /// `__HYPERVISOR_xen_version`
    HYPERVISOR_xen_version = 17 => XenVersion, "xen_version";
    /// `__HYPERVISOR_console_io`
    HYPERVISOR_console_io = 18 => ConsoleIo, "console_io";
    /// `__HYPERVISOR_physdev_op_compat` (compat since 0x00030202)
    HYPERVISOR_physdev_op_compat = 19 => PhysdevOpCompat, "physdev_op_compat";
    /// `__HYPERVISOR_grant_table_op`
    HYPERVISOR_grant_table_op = 20 => GrantTableOp, "grant_table_op";
    /// `__HYPERVISOR_vm_assist`
    HYPERVISOR_vm_assist = 21 => VmAssist, "vm_assist";
    /// `__HYPERVISOR_update_va_mapping_otherdomain`
    HYPERVISOR_update_va_mapping_otherdomain = 22 => UpdateVaMappingOtherdomain, "update_va_mapping_otherdomain";
    /// `__HYPERVISOR_iret` (x86 only)
    HYPERVISOR_iret = 23 => Iret, "iret";
    /// `__HYPERVISOR_vcpu_op`
    HYPERVISOR_vcpu_op = 24 => VcpuOp, "vcpu_op";
    /// `__HYPERVISOR_set_segment_base` (x86/64 only)
    HYPERVISOR_set_segment_base = 25 => SetSegmentBase, "set_segment_base";
    /// `__HYPERVISOR_mmuext_op`
    HYPERVISOR_mmuext_op = 26 => MmuextOp, "mmuext_op";
    /// `__HYPERVISOR_xsm_op`
    HYPERVISOR_xsm_op = 27 => XsmOp, "xsm_op";
    /// `__HYPERVISOR_nmi_op`
    HYPERVISOR_nmi_op = 28 => NmiOp, "nmi_op";
    /// `__HYPERVISOR_sched_op`
    HYPERVISOR_sched_op = 29 => SchedOp, "sched_op";
    /// `__HYPERVISOR_callback_op`
    HYPERVISOR_callback_op = 30 => CallbackOp, "callback_op";
    /// `__HYPERVISOR_xenoprof_op`
    HYPERVISOR_xenoprof_op = 31 => XenoprofOp, "xenoprof_op";
    /// `__HYPERVISOR_event_channel_op`
    HYPERVISOR_event_channel_op = 32 => EventChannelOp, "event_channel_op";
    /// `__HYPERVISOR_physdev_op`
    HYPERVISOR_physdev_op = 33 => PhysdevOp, "physdev_op";
    /// `__HYPERVISOR_hvm_op`
    HYPERVISOR_hvm_op = 34 => HvmOp, "hvm_op";
    /// `__HYPERVISOR_sysctl`
    HYPERVISOR_sysctl = 35 => Sysctl, "sysctl";
    /// `__HYPERVISOR_domctl`
    HYPERVISOR_domctl = 36 => Domctl, "domctl";
    /// `__HYPERVISOR_kexec_op`
    HYPERVISOR_kexec_op = 37 => KexecOp, "kexec_op";
    /// `__HYPERVISOR_tmem_op` (removed; always -ENOSYS)
    HYPERVISOR_tmem_op = 38 => TmemOp, "tmem_op";
    /// `__HYPERVISOR_argo_op`
    HYPERVISOR_argo_op = 39 => ArgoOp, "argo_op";
    /// `__HYPERVISOR_xenpmu_op`
    HYPERVISOR_xenpmu_op = 40 => XenpmuOp, "xenpmu_op";
    /// `__HYPERVISOR_dm_op`
    HYPERVISOR_dm_op = 41 => DmOp, "dm_op";
    /// `__HYPERVISOR_hypfs_op`
    HYPERVISOR_hypfs_op = 42 => HypfsOp, "hypfs_op";
    /// `__HYPERVISOR_arch_0` (x86: `mca`)
    HYPERVISOR_arch_0 = 48 => Arch0, "arch_0";
    /// `__HYPERVISOR_arch_1` (x86: `paging_domctl_cont`)
    HYPERVISOR_arch_1 = 49 => Arch1, "arch_1";
    /// `__HYPERVISOR_arch_2`
    HYPERVISOR_arch_2 = 50 => Arch2, "arch_2";
    /// `__HYPERVISOR_arch_3`
    HYPERVISOR_arch_3 = 51 => Arch3, "arch_3";
    /// `__HYPERVISOR_arch_4`
    HYPERVISOR_arch_4 = 52 => Arch4, "arch_4";
    /// `__HYPERVISOR_arch_5`
    HYPERVISOR_arch_5 = 53 => Arch5, "arch_5";
    /// `__HYPERVISOR_arch_6`
    HYPERVISOR_arch_6 = 54 => Arch6, "arch_6";
    /// `__HYPERVISOR_arch_7`
    HYPERVISOR_arch_7 = 55 => Arch7, "arch_7";
}

/// x86 alias: `__HYPERVISOR_mca` = `__HYPERVISOR_arch_0`.
pub const HYPERVISOR_mca: u64 = HYPERVISOR_arch_0;
/// x86 alias: `__HYPERVISOR_paging_domctl_cont` = `__HYPERVISOR_arch_1`.
pub const HYPERVISOR_paging_domctl_cont: u64 = HYPERVISOR_arch_1;
/// Number of 32-byte stubs in the hypercall page.
pub const HYPERCALL_PAGE_ENTRIES: usize = 128;
/// Size of one hypercall-page stub.
pub const HYPERCALL_STUB_SIZE: usize = 32;

impl TryFrom<u64> for Hypercall {
    type Error = u64;
    fn try_from(nr: u64) -> Result<Self, u64> {
        Self::from_number(nr).ok_or(nr)
    }
}

impl core::fmt::Display for Hypercall {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_round_trips() {
        for &h in Hypercall::ALL {
            assert_eq!(Hypercall::try_from(h.number()), Ok(h));
        }
        assert_eq!(Hypercall::ALL.len(), 50);
        assert_eq!(Hypercall::from_number(11), None);
        assert_eq!(Hypercall::try_from(56), Err(56));
        assert_eq!(Hypercall::Iret.name(), "iret");
        assert_eq!(
            Hypercall::from_number(HYPERVISOR_mmuext_op),
            Some(Hypercall::MmuextOp)
        );
    }
}
