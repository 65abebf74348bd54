//! `domctl.h` (tools interface, `XEN_DOMCTL_INTERFACE_VERSION` 0x15 for Xen 4.17):
//! the `xen_domctl` header with its 128-byte payload and the payloads the PV
//! domain-building path uses.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XEN_DOMCTL_INTERFACE_VERSION` (Xen 4.17).
pub const XEN_DOMCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// `XEN_DOMCTL_createdomain`
pub const XEN_DOMCTL_createdomain: u32 = 1;
/// `XEN_DOMCTL_destroydomain` (no payload)
pub const XEN_DOMCTL_destroydomain: u32 = 2;
/// `XEN_DOMCTL_pausedomain` (no payload)
pub const XEN_DOMCTL_pausedomain: u32 = 3;
/// `XEN_DOMCTL_unpausedomain` (no payload)
pub const XEN_DOMCTL_unpausedomain: u32 = 4;
/// `XEN_DOMCTL_getdomaininfo`
pub const XEN_DOMCTL_getdomaininfo: u32 = 5;
/// `XEN_DOMCTL_setvcpuaffinity`
pub const XEN_DOMCTL_setvcpuaffinity: u32 = 9;
/// `XEN_DOMCTL_shadow_op`
pub const XEN_DOMCTL_shadow_op: u32 = 10;
/// `XEN_DOMCTL_max_mem`
pub const XEN_DOMCTL_max_mem: u32 = 11;
/// `XEN_DOMCTL_setvcpucontext`
pub const XEN_DOMCTL_setvcpucontext: u32 = 12;
/// `XEN_DOMCTL_getvcpucontext`
pub const XEN_DOMCTL_getvcpucontext: u32 = 13;
/// `XEN_DOMCTL_getvcpuinfo`
pub const XEN_DOMCTL_getvcpuinfo: u32 = 14;
/// `XEN_DOMCTL_max_vcpus`
pub const XEN_DOMCTL_max_vcpus: u32 = 15;
/// `XEN_DOMCTL_scheduler_op`
pub const XEN_DOMCTL_scheduler_op: u32 = 16;
/// `XEN_DOMCTL_setdomainhandle`
pub const XEN_DOMCTL_setdomainhandle: u32 = 17;
/// `XEN_DOMCTL_setdebugging`
pub const XEN_DOMCTL_setdebugging: u32 = 18;
/// `XEN_DOMCTL_irq_permission`
pub const XEN_DOMCTL_irq_permission: u32 = 19;
/// `XEN_DOMCTL_iomem_permission`
pub const XEN_DOMCTL_iomem_permission: u32 = 20;
/// `XEN_DOMCTL_ioport_permission`
pub const XEN_DOMCTL_ioport_permission: u32 = 21;
/// `XEN_DOMCTL_hypercall_init`
pub const XEN_DOMCTL_hypercall_init: u32 = 22;
/// `XEN_DOMCTL_soft_reset_cont` (internal to Xen: only defined under `__XEN__`).
pub const XEN_DOMCTL_soft_reset_cont: u32 = 23;
/// `XEN_DOMCTL_settimeoffset`
pub const XEN_DOMCTL_settimeoffset: u32 = 24;
/// `XEN_DOMCTL_getvcpuaffinity`
pub const XEN_DOMCTL_getvcpuaffinity: u32 = 25;
/// `XEN_DOMCTL_real_mode_area` (obsolete, PPC only)
pub const XEN_DOMCTL_real_mode_area: u32 = 26;
/// `XEN_DOMCTL_resumedomain`
pub const XEN_DOMCTL_resumedomain: u32 = 27;
/// `XEN_DOMCTL_sendtrigger`
pub const XEN_DOMCTL_sendtrigger: u32 = 28;
/// `XEN_DOMCTL_subscribe`
pub const XEN_DOMCTL_subscribe: u32 = 29;
/// `XEN_DOMCTL_gethvmcontext`
pub const XEN_DOMCTL_gethvmcontext: u32 = 33;
/// `XEN_DOMCTL_sethvmcontext`
pub const XEN_DOMCTL_sethvmcontext: u32 = 34;
/// `XEN_DOMCTL_set_address_size`
pub const XEN_DOMCTL_set_address_size: u32 = 35;
/// `XEN_DOMCTL_get_address_size`
pub const XEN_DOMCTL_get_address_size: u32 = 36;
/// `XEN_DOMCTL_assign_device`
pub const XEN_DOMCTL_assign_device: u32 = 37;
/// `XEN_DOMCTL_bind_pt_irq`
pub const XEN_DOMCTL_bind_pt_irq: u32 = 38;
/// `XEN_DOMCTL_memory_mapping`
pub const XEN_DOMCTL_memory_mapping: u32 = 39;
/// `XEN_DOMCTL_ioport_mapping`
pub const XEN_DOMCTL_ioport_mapping: u32 = 40;
/// `XEN_DOMCTL_set_ext_vcpucontext`
pub const XEN_DOMCTL_set_ext_vcpucontext: u32 = 42;
/// `XEN_DOMCTL_get_ext_vcpucontext`
pub const XEN_DOMCTL_get_ext_vcpucontext: u32 = 43;
/// `XEN_DOMCTL_set_opt_feature` (obsolete, IA64 only)
pub const XEN_DOMCTL_set_opt_feature: u32 = 44;
/// `XEN_DOMCTL_test_assign_device`
pub const XEN_DOMCTL_test_assign_device: u32 = 45;
/// `XEN_DOMCTL_set_target`
pub const XEN_DOMCTL_set_target: u32 = 46;
/// `XEN_DOMCTL_deassign_device`
pub const XEN_DOMCTL_deassign_device: u32 = 47;
/// `XEN_DOMCTL_unbind_pt_irq`
pub const XEN_DOMCTL_unbind_pt_irq: u32 = 48;
/// `XEN_DOMCTL_get_device_group`
pub const XEN_DOMCTL_get_device_group: u32 = 50;
/// `XEN_DOMCTL_debug_op`
pub const XEN_DOMCTL_debug_op: u32 = 54;
/// `XEN_DOMCTL_gethvmcontext_partial`
pub const XEN_DOMCTL_gethvmcontext_partial: u32 = 55;
/// `XEN_DOMCTL_vm_event_op`
pub const XEN_DOMCTL_vm_event_op: u32 = 56;
/// `XEN_DOMCTL_mem_sharing_op`
pub const XEN_DOMCTL_mem_sharing_op: u32 = 57;
/// `XEN_DOMCTL_gettscinfo`
pub const XEN_DOMCTL_gettscinfo: u32 = 59;
/// `XEN_DOMCTL_settscinfo`
pub const XEN_DOMCTL_settscinfo: u32 = 60;
/// `XEN_DOMCTL_getpageframeinfo3`
pub const XEN_DOMCTL_getpageframeinfo3: u32 = 61;
/// `XEN_DOMCTL_setvcpuextstate`
pub const XEN_DOMCTL_setvcpuextstate: u32 = 62;
/// `XEN_DOMCTL_getvcpuextstate`
pub const XEN_DOMCTL_getvcpuextstate: u32 = 63;
/// `XEN_DOMCTL_set_access_required`
pub const XEN_DOMCTL_set_access_required: u32 = 64;
/// `XEN_DOMCTL_audit_p2m`
pub const XEN_DOMCTL_audit_p2m: u32 = 65;
/// `XEN_DOMCTL_set_virq_handler`
pub const XEN_DOMCTL_set_virq_handler: u32 = 66;
/// `XEN_DOMCTL_set_broken_page_p2m`
pub const XEN_DOMCTL_set_broken_page_p2m: u32 = 67;
/// `XEN_DOMCTL_setnodeaffinity`
pub const XEN_DOMCTL_setnodeaffinity: u32 = 68;
/// `XEN_DOMCTL_getnodeaffinity`
pub const XEN_DOMCTL_getnodeaffinity: u32 = 69;
/// `XEN_DOMCTL_cacheflush`
pub const XEN_DOMCTL_cacheflush: u32 = 71;
/// `XEN_DOMCTL_get_vcpu_msrs`
pub const XEN_DOMCTL_get_vcpu_msrs: u32 = 72;
/// `XEN_DOMCTL_set_vcpu_msrs`
pub const XEN_DOMCTL_set_vcpu_msrs: u32 = 73;
/// `XEN_DOMCTL_setvnumainfo`
pub const XEN_DOMCTL_setvnumainfo: u32 = 74;
/// `XEN_DOMCTL_psr_cmt_op`
pub const XEN_DOMCTL_psr_cmt_op: u32 = 75;
/// `XEN_DOMCTL_monitor_op`
pub const XEN_DOMCTL_monitor_op: u32 = 77;
/// `XEN_DOMCTL_psr_alloc`
pub const XEN_DOMCTL_psr_alloc: u32 = 78;
/// `XEN_DOMCTL_soft_reset`
pub const XEN_DOMCTL_soft_reset: u32 = 79;
/// `XEN_DOMCTL_vuart_op`
pub const XEN_DOMCTL_vuart_op: u32 = 81;
/// `XEN_DOMCTL_get_cpu_policy`
pub const XEN_DOMCTL_get_cpu_policy: u32 = 82;
/// `XEN_DOMCTL_set_cpu_policy`
pub const XEN_DOMCTL_set_cpu_policy: u32 = 83;
/// `XEN_DOMCTL_vmtrace_op`
pub const XEN_DOMCTL_vmtrace_op: u32 = 84;
/// `XEN_DOMCTL_get_paging_mempool_size`
pub const XEN_DOMCTL_get_paging_mempool_size: u32 = 85;
/// `XEN_DOMCTL_set_paging_mempool_size`
pub const XEN_DOMCTL_set_paging_mempool_size: u32 = 86;
/// `XEN_DOMCTL_gdbsx_guestmemio`
pub const XEN_DOMCTL_gdbsx_guestmemio: u32 = 1000;
/// `XEN_DOMCTL_gdbsx_pausevcpu`
pub const XEN_DOMCTL_gdbsx_pausevcpu: u32 = 1001;
/// `XEN_DOMCTL_gdbsx_unpausevcpu`
pub const XEN_DOMCTL_gdbsx_unpausevcpu: u32 = 1002;
/// `XEN_DOMCTL_gdbsx_domstatus`
pub const XEN_DOMCTL_gdbsx_domstatus: u32 = 1003;

/// `XEN_DOMCTL_CDF_hvm`
pub const XEN_DOMCTL_CDF_hvm: u32 = 1 << 0;
/// `XEN_DOMCTL_CDF_hap`
pub const XEN_DOMCTL_CDF_hap: u32 = 1 << 1;
/// `XEN_DOMCTL_CDF_s3_integrity`
pub const XEN_DOMCTL_CDF_s3_integrity: u32 = 1 << 2;
/// `XEN_DOMCTL_CDF_oos_off`
pub const XEN_DOMCTL_CDF_oos_off: u32 = 1 << 3;
/// `XEN_DOMCTL_CDF_xs_domain`
pub const XEN_DOMCTL_CDF_xs_domain: u32 = 1 << 4;
/// `XEN_DOMCTL_CDF_iommu`
pub const XEN_DOMCTL_CDF_iommu: u32 = 1 << 5;
/// `XEN_DOMCTL_CDF_nested_virt`
pub const XEN_DOMCTL_CDF_nested_virt: u32 = 1 << 6;
/// `XEN_DOMCTL_CDF_vpmu`
pub const XEN_DOMCTL_CDF_vpmu: u32 = 1 << 7;
/// `XEN_DOMCTL_CDF_MAX`
pub const XEN_DOMCTL_CDF_MAX: u32 = XEN_DOMCTL_CDF_vpmu;
/// `XEN_DOMCTL_IOMMU_no_sharept`
pub const XEN_DOMCTL_IOMMU_no_sharept: u32 = 1 << 0;
/// `XEN_DOMCTL_GRANT_version_mask`
pub const XEN_DOMCTL_GRANT_version_mask: u32 = 0xf;

/// `XEN_X86_EMU_PIT`: the only emulation flag a PV domain may request.
pub const XEN_X86_EMU_PIT: u32 = 1 << 8;
/// `XEN_X86_MSR_RELAXED`
pub const XEN_X86_MSR_RELAXED: u32 = 1 << 0;

/// `XEN_DOMINF_dying`
pub const XEN_DOMINF_dying: u32 = 1 << 0;
/// `XEN_DOMINF_hvm_guest`
pub const XEN_DOMINF_hvm_guest: u32 = 1 << 1;
/// `XEN_DOMINF_shutdown`
pub const XEN_DOMINF_shutdown: u32 = 1 << 2;
/// `XEN_DOMINF_paused`
pub const XEN_DOMINF_paused: u32 = 1 << 3;
/// `XEN_DOMINF_blocked`
pub const XEN_DOMINF_blocked: u32 = 1 << 4;
/// `XEN_DOMINF_running`
pub const XEN_DOMINF_running: u32 = 1 << 5;
/// `XEN_DOMINF_debugged`
pub const XEN_DOMINF_debugged: u32 = 1 << 6;
/// `XEN_DOMINF_xs_domain`
pub const XEN_DOMINF_xs_domain: u32 = 1 << 7;
/// `XEN_DOMINF_hap`
pub const XEN_DOMINF_hap: u32 = 1 << 8;
/// `XEN_DOMINF_shutdownmask`
pub const XEN_DOMINF_shutdownmask: u32 = 255;
/// `XEN_DOMINF_shutdownshift`
pub const XEN_DOMINF_shutdownshift: u32 = 16;
/// `XEN_INVALID_MAX_VCPU_ID`
pub const XEN_INVALID_MAX_VCPU_ID: u32 = !0;

/// Size of the `xen_domctl.u` union.
pub const XEN_DOMCTL_PAYLOAD_SIZE: usize = 128;

/// `struct xen_domctl` (144 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenDomctl {
    /// `XEN_DOMCTL_*`.
    pub cmd: u32,
    /// Must equal [`XEN_DOMCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    pub domain: u16,
    pub _pad: [u16; 3],
    /// The `u` union (one of the `XenDomctl*` payloads, or `uint8_t pad[128]`).
    pub u: [u64; XEN_DOMCTL_PAYLOAD_SIZE / 8],
}

zeroed_default!(XenDomctl);

impl XenDomctl {
    /// A request for `cmd` on `domain` with the current interface version and a
    /// zeroed payload.
    pub fn new(cmd: u32, domain: u16) -> Self {
        Self {
            cmd,
            interface_version: XEN_DOMCTL_INTERFACE_VERSION,
            domain,
            ..Self::default()
        }
    }

    /// Reads the payload as `T` (`None` if `T` is larger than the union).
    pub fn payload<T: FromBytes>(&self) -> Option<T> {
        crate::payload::read(self.u.as_bytes())
    }

    /// Writes `v` to the start of the payload and zeroes the rest. Returns `false`
    /// (leaving the payload untouched) if `T` is larger than the union.
    pub fn set_payload<T: IntoBytes + Immutable>(&mut self, v: &T) -> bool {
        crate::payload::write(self.u.as_mut_bytes(), v)
    }
}

/// `struct xen_arch_domainconfig` (x86, 8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenArchDomainconfig {
    /// `XEN_X86_EMU_*`.
    pub emulation_flags: u32,
    /// `XEN_X86_MSR_RELAXED`.
    pub misc_flags: u32,
}

/// `struct xen_domctl_createdomain` (64 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlCreatedomain {
    pub ssidref: u32,
    /// `xen_domain_handle_t` (UUID).
    pub handle: [u8; 16],
    /// `XEN_DOMCTL_CDF_*`.
    pub flags: u32,
    pub iommu_opts: u32,
    pub max_vcpus: u32,
    pub max_evtchn_port: u32,
    /// -1 = default.
    pub max_grant_frames: i32,
    /// -1 = default.
    pub max_maptrack_frames: i32,
    /// `XEN_DOMCTL_GRANT_version(v)` in the low 4 bits.
    pub grant_opts: u32,
    pub vmtrace_size: u32,
    pub cpupool_id: u32,
    pub arch: XenArchDomainconfig,
}

/// `struct xen_domctl_getdomaininfo` (112 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlGetdomaininfo {
    pub domain: u16,
    pub pad1: u16,
    /// `XEN_DOMINF_*`, shutdown code in bits 16-23.
    pub flags: u32,
    pub tot_pages: u64,
    pub max_pages: u64,
    pub outstanding_pages: u64,
    pub shr_pages: u64,
    pub paged_pages: u64,
    /// GMFN of the shared_info page.
    pub shared_info_frame: u64,
    pub cpu_time: u64,
    pub nr_online_vcpus: u32,
    pub max_vcpu_id: u32,
    pub ssidref: u32,
    pub handle: [u8; 16],
    pub cpupool: u32,
    pub gpaddr_bits: u8,
    pub pad2: [u8; 7],
    pub arch_config: XenArchDomainconfig,
}

/// `struct xen_domctl_max_mem`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlMaxMem {
    pub max_memkb: u64,
}

/// `struct xen_domctl_vcpucontext` (16 bytes): `XEN_DOMCTL_{set,get}vcpucontext`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlVcpucontext {
    pub vcpu: u32,
    pub _pad0: [u8; 4],
    /// Guest handle to a `vcpu_guest_context`.
    pub ctxt: u64,
}

/// `struct xen_domctl_getvcpuinfo` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlGetvcpuinfo {
    pub vcpu: u32,
    pub online: u8,
    pub blocked: u8,
    pub running: u8,
    pub _pad0: [u8; 1],
    pub cpu_time: u64,
    pub cpu: u32,
    pub _pad1: [u8; 4],
}

/// `struct xen_domctl_max_vcpus`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlMaxVcpus {
    pub max: u32,
}

/// `struct xen_domctl_setdomainhandle`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSetdomainhandle {
    pub handle: [u8; 16],
}

/// `struct xen_domctl_hypercall_init`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlHypercallInit {
    /// GMFN to be initialised with hypercall stubs.
    pub gmfn: u64,
}

/// `struct xen_domctl_settimeoffset`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSettimeoffset {
    pub time_offset_seconds: i64,
}

/// `struct xen_domctl_address_size`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlAddressSize {
    /// 64 for x86-64 PV.
    pub size: u32,
}

/// `XEN_SCHEDULER_CREDIT`: Xen's credit1 scheduler (the default in 4.17).
pub const XEN_SCHEDULER_CREDIT: u32 = 5;
/// `XEN_SCHEDULER_CREDIT2`
pub const XEN_SCHEDULER_CREDIT2: u32 = 6;
/// `XEN_SCHEDULER_ARINC653`
pub const XEN_SCHEDULER_ARINC653: u32 = 7;
/// `XEN_SCHEDULER_RTDS`
pub const XEN_SCHEDULER_RTDS: u32 = 8;
/// `XEN_SCHEDULER_NULL`
pub const XEN_SCHEDULER_NULL: u32 = 9;
/// `XEN_DOMCTL_SCHEDOP_putinfo`
pub const XEN_DOMCTL_SCHEDOP_putinfo: u32 = 0;
/// `XEN_DOMCTL_SCHEDOP_getinfo`
pub const XEN_DOMCTL_SCHEDOP_getinfo: u32 = 1;
/// `XEN_DOMCTL_SCHEDOP_putvcpuinfo`
pub const XEN_DOMCTL_SCHEDOP_putvcpuinfo: u32 = 2;
/// `XEN_DOMCTL_SCHEDOP_getvcpuinfo`
pub const XEN_DOMCTL_SCHEDOP_getvcpuinfo: u32 = 3;

/// `struct xen_domctl_sched_credit`: weight (0 in a putinfo: unchanged) and cap in
/// percent of one CPU (0: none; `0xffff` in a putinfo: unchanged).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSchedCredit {
    pub weight: u16,
    pub cap: u16,
}

/// `struct xen_domctl_scheduler_op` (24 bytes): `u` is the union of the credit, credit2
/// and rtds parameters and the per-vCPU array handle (16 bytes, 8-aligned).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlSchedulerOp {
    /// `XEN_SCHEDULER_*`.
    pub sched_id: u32,
    /// `XEN_DOMCTL_SCHEDOP_*`.
    pub cmd: u32,
    pub u: [u64; 2],
}

impl XenDomctlSchedulerOp {
    /// The union read as credit parameters.
    pub fn credit(&self) -> XenDomctlSchedCredit {
        crate::payload::read(self.u.as_bytes()).expect("fits")
    }

    /// Writes credit parameters into the union (the rest zeroed).
    pub fn set_credit(&mut self, c: XenDomctlSchedCredit) {
        crate::payload::write(self.u.as_mut_bytes(), &c);
    }
}

/// `struct xenctl_bitmap` (16 bytes): a guest handle to `nr_bits` bits, 8 a byte, CPU 0
/// the lowest bit of byte 0.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenctlBitmap {
    pub bitmap: u64,
    pub nr_bits: u32,
    pub _pad: u32,
}

/// `xen_cpuid_leaf_t` (24 bytes, `arch-x86/xen.h`): one CPUID leaf of a serialised policy.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenCpuidLeaf {
    pub leaf: u32,
    /// `XEN_CPUID_NO_SUBLEAF` (`!0`) for a leaf without subleaves.
    pub subleaf: u32,
    pub a: u32,
    pub b: u32,
    pub c: u32,
    pub d: u32,
}

/// `xen_msr_entry_t` (16 bytes, `arch-x86/xen.h`): one MSR of a serialised policy.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMsrEntry {
    pub idx: u32,
    /// Reserved, must be zero.
    pub flags: u32,
    pub val: u64,
}

/// `struct xen_domctl_cpu_policy` (40 bytes): `XEN_DOMCTL_{get,set}_cpu_policy`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlCpuPolicy {
    pub nr_leaves: u32,
    pub nr_msrs: u32,
    /// Guest handle to `xen_cpuid_leaf_t[]`.
    pub leaves: u64,
    /// Guest handle to `xen_msr_entry_t[]`.
    pub msrs: u64,
    /// OUT, set_cpu_policy: where the policy was refused (`!0`: not there).
    pub err_leaf: u32,
    pub err_subleaf: u32,
    pub err_msr: u32,
    pub _pad0: [u8; 4],
}

/// `struct xen_domctl_nodeaffinity` (16 bytes): `XEN_DOMCTL_{set,get}nodeaffinity`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlNodeaffinity {
    pub nodemap: XenctlBitmap,
}

/// `struct xen_domctl_tsc_info` (24 bytes): `XEN_DOMCTL_{set,get}tscinfo`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlTscInfo {
    /// `XEN_TSC_MODE_*` (0 default, 1 always emulate, 2 never emulate).
    pub tsc_mode: u32,
    pub gtsc_khz: u32,
    pub incarnation: u32,
    pub pad: u32,
    pub elapsed_nsec: u64,
}

/// `XEN_VCPUAFFINITY_HARD`
pub const XEN_VCPUAFFINITY_HARD: u32 = 1 << 0;
/// `XEN_VCPUAFFINITY_SOFT`
pub const XEN_VCPUAFFINITY_SOFT: u32 = 1 << 1;
/// `XEN_VCPUAFFINITY_FORCE`
pub const XEN_VCPUAFFINITY_FORCE: u32 = 1 << 2;

/// `struct xen_domctl_vcpuaffinity` (40 bytes): `XEN_DOMCTL_{set,get}vcpuaffinity`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenDomctlVcpuaffinity {
    pub vcpu: u32,
    /// `XEN_VCPUAFFINITY_*`.
    pub flags: u32,
    pub cpumap_hard: XenctlBitmap,
    pub cpumap_soft: XenctlBitmap,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let mut d = XenDomctl::new(XEN_DOMCTL_max_vcpus, 3);
        assert_eq!(d.interface_version, XEN_DOMCTL_INTERFACE_VERSION);
        assert!(d.set_payload(&XenDomctlMaxVcpus { max: 4 }));
        assert_eq!(
            d.payload::<XenDomctlMaxVcpus>(),
            Some(XenDomctlMaxVcpus { max: 4 })
        );
        let info = XenDomctlGetdomaininfo {
            domain: 3,
            tot_pages: 77,
            ..Default::default()
        };
        assert!(d.set_payload(&info));
        assert_eq!(d.payload::<XenDomctlGetdomaininfo>().unwrap().tot_pages, 77);
        assert!(!d.set_payload(&[0u8; 129]));
        assert_eq!(d.payload::<[u8; 129]>(), None);
    }
}
