//! `sysctl.h` (tools interface, `XEN_SYSCTL_INTERFACE_VERSION` 0x15 for Xen 4.17):
//! the `xen_sysctl` header with its 128-byte payload, `physinfo`,
//! `getdomaininfolist`, `readconsole`, `cpupool_op`, `cputopoinfo` and `numainfo`.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XEN_SYSCTL_INTERFACE_VERSION` (Xen 4.17).
pub const XEN_SYSCTL_INTERFACE_VERSION: u32 = 0x0000_0015;

/// `XEN_SYSCTL_readconsole`
pub const XEN_SYSCTL_readconsole: u32 = 1;
/// `XEN_SYSCTL_tbuf_op`
pub const XEN_SYSCTL_tbuf_op: u32 = 2;
/// `XEN_SYSCTL_physinfo`
pub const XEN_SYSCTL_physinfo: u32 = 3;
/// `XEN_SYSCTL_sched_id`
pub const XEN_SYSCTL_sched_id: u32 = 4;
/// `XEN_SYSCTL_perfc_op`
pub const XEN_SYSCTL_perfc_op: u32 = 5;
/// `XEN_SYSCTL_getdomaininfolist`
pub const XEN_SYSCTL_getdomaininfolist: u32 = 6;
/// `XEN_SYSCTL_debug_keys`
pub const XEN_SYSCTL_debug_keys: u32 = 7;
/// `XEN_SYSCTL_getcpuinfo`
pub const XEN_SYSCTL_getcpuinfo: u32 = 8;
/// `XEN_SYSCTL_availheap`
pub const XEN_SYSCTL_availheap: u32 = 9;
/// `XEN_SYSCTL_get_pmstat`
pub const XEN_SYSCTL_get_pmstat: u32 = 10;
/// `XEN_SYSCTL_cpu_hotplug`
pub const XEN_SYSCTL_cpu_hotplug: u32 = 11;
/// `XEN_SYSCTL_pm_op`
pub const XEN_SYSCTL_pm_op: u32 = 12;
/// `XEN_SYSCTL_page_offline_op`
pub const XEN_SYSCTL_page_offline_op: u32 = 14;
/// `XEN_SYSCTL_lockprof_op`
pub const XEN_SYSCTL_lockprof_op: u32 = 15;
/// `XEN_SYSCTL_cputopoinfo`
pub const XEN_SYSCTL_cputopoinfo: u32 = 16;
/// `XEN_SYSCTL_numainfo`
pub const XEN_SYSCTL_numainfo: u32 = 17;
/// `XEN_SYSCTL_cpupool_op`
pub const XEN_SYSCTL_cpupool_op: u32 = 18;
/// `XEN_SYSCTL_scheduler_op`
pub const XEN_SYSCTL_scheduler_op: u32 = 19;
/// `XEN_SYSCTL_coverage_op`
pub const XEN_SYSCTL_coverage_op: u32 = 20;
/// `XEN_SYSCTL_psr_cmt_op`
pub const XEN_SYSCTL_psr_cmt_op: u32 = 21;
/// `XEN_SYSCTL_pcitopoinfo`
pub const XEN_SYSCTL_pcitopoinfo: u32 = 22;
/// `XEN_SYSCTL_psr_alloc`
pub const XEN_SYSCTL_psr_alloc: u32 = 23;
/// `XEN_SYSCTL_get_cpu_levelling_caps`
pub const XEN_SYSCTL_get_cpu_levelling_caps: u32 = 25;
/// `XEN_SYSCTL_get_cpu_featureset`
pub const XEN_SYSCTL_get_cpu_featureset: u32 = 26;
/// `XEN_SYSCTL_livepatch_op`
pub const XEN_SYSCTL_livepatch_op: u32 = 27;
/// `XEN_SYSCTL_get_cpu_policy`
pub const XEN_SYSCTL_get_cpu_policy: u32 = 29;

/// `XEN_SYSCTL_PHYSCAP_hvm`
pub const XEN_SYSCTL_PHYSCAP_hvm: u32 = 1 << 0;
/// `XEN_SYSCTL_PHYSCAP_pv`
pub const XEN_SYSCTL_PHYSCAP_pv: u32 = 1 << 1;
/// `XEN_SYSCTL_PHYSCAP_directio`
pub const XEN_SYSCTL_PHYSCAP_directio: u32 = 1 << 2;
/// `XEN_SYSCTL_PHYSCAP_hap`
pub const XEN_SYSCTL_PHYSCAP_hap: u32 = 1 << 3;
/// `XEN_SYSCTL_PHYSCAP_shadow`
pub const XEN_SYSCTL_PHYSCAP_shadow: u32 = 1 << 4;
/// `XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share`
pub const XEN_SYSCTL_PHYSCAP_iommu_hap_pt_share: u32 = 1 << 5;
/// `XEN_SYSCTL_PHYSCAP_vmtrace`
pub const XEN_SYSCTL_PHYSCAP_vmtrace: u32 = 1 << 6;
/// `XEN_SYSCTL_PHYSCAP_vpmu`
pub const XEN_SYSCTL_PHYSCAP_vpmu: u32 = 1 << 7;
/// `XEN_SYSCTL_PHYSCAP_gnttab_v1`
pub const XEN_SYSCTL_PHYSCAP_gnttab_v1: u32 = 1 << 8;
/// `XEN_SYSCTL_PHYSCAP_gnttab_v2`
pub const XEN_SYSCTL_PHYSCAP_gnttab_v2: u32 = 1 << 9;

/// Size of the `xen_sysctl.u` union.
pub const XEN_SYSCTL_PAYLOAD_SIZE: usize = 128;

/// `struct xen_sysctl` (136 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenSysctl {
    /// `XEN_SYSCTL_*`.
    pub cmd: u32,
    /// Must equal [`XEN_SYSCTL_INTERFACE_VERSION`].
    pub interface_version: u32,
    /// The `u` union (one of the `XenSysctl*` payloads, or `uint8_t pad[128]`).
    pub u: [u64; XEN_SYSCTL_PAYLOAD_SIZE / 8],
}

zeroed_default!(XenSysctl);

impl XenSysctl {
    /// A request for `cmd` with the current interface version and a zeroed payload.
    pub fn new(cmd: u32) -> Self {
        Self {
            cmd,
            interface_version: XEN_SYSCTL_INTERFACE_VERSION,
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

/// `struct xen_sysctl_readconsole` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlReadconsole {
    /// Non-zero: clear after reading.
    pub clear: u8,
    /// Non-zero: start at `index`.
    pub incremental: u8,
    pub pad0: u8,
    pub pad1: u8,
    pub index: u32,
    /// Guest handle to the buffer.
    pub buffer: u64,
    /// IN: buffer size; OUT: bytes written.
    pub count: u32,
    pub _pad0: [u8; 4],
}

/// `struct xen_sysctl_physinfo` (112 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlPhysinfo {
    pub threads_per_core: u32,
    pub cores_per_socket: u32,
    pub nr_cpus: u32,
    pub max_cpu_id: u32,
    pub nr_nodes: u32,
    pub max_node_id: u32,
    pub cpu_khz: u32,
    /// `XEN_SYSCTL_PHYSCAP_*`.
    pub capabilities: u32,
    pub arch_capabilities: u32,
    pub pad: u32,
    pub total_pages: u64,
    pub free_pages: u64,
    pub scrub_pages: u64,
    pub outstanding_pages: u64,
    pub max_mfn: u64,
    pub hw_cap: [u32; 8],
}

/// `struct xen_sysctl_getdomaininfolist` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlGetdomaininfolist {
    pub first_domain: u16,
    pub _pad0: [u8; 2],
    pub max_domains: u32,
    /// Guest handle to `xen_domctl_getdomaininfo[]`.
    pub buffer: u64,
    /// OUT.
    pub num_domains: u32,
    pub _pad1: [u8; 4],
}

/// `struct xen_sysctl_sched_id`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlSchedId {
    pub sched_id: u32,
}

/// `XEN_SYSCTL_SCHEDOP_putinfo`: set the pool's scheduler parameters (then read back).
pub const XEN_SYSCTL_SCHEDOP_putinfo: u32 = 0;
/// `XEN_SYSCTL_SCHEDOP_getinfo`
pub const XEN_SYSCTL_SCHEDOP_getinfo: u32 = 1;
/// `XEN_SYSCTL_SCHED_RATELIMIT_MAX`: the credit and credit2 rate limit's range in µs
/// (0, no rate limit, is allowed too).
pub const XEN_SYSCTL_SCHED_RATELIMIT_MAX: u32 = 500_000;
/// `XEN_SYSCTL_SCHED_RATELIMIT_MIN`
pub const XEN_SYSCTL_SCHED_RATELIMIT_MIN: u32 = 100;
/// `XEN_SYSCTL_CSCHED_TSLICE_MAX`: the credit time slice's range in ms.
pub const XEN_SYSCTL_CSCHED_TSLICE_MAX: u32 = 1000;
/// `XEN_SYSCTL_CSCHED_TSLICE_MIN`
pub const XEN_SYSCTL_CSCHED_TSLICE_MIN: u32 = 1;
/// `XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US`: the most vCPU migration delay, in µs.
pub const XEN_SYSCTL_CSCHED_MGR_DLY_MAX_US: u32 = 100 * 1000;

/// `struct xen_sysctl_credit_schedule` (12 bytes): a credit pool's parameters.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlCreditSchedule {
    pub tslice_ms: u32,
    /// 0: no rate limit.
    pub ratelimit_us: u32,
    pub vcpu_migr_delay_us: u32,
}

/// `struct xen_sysctl_credit2_schedule` (4 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlCredit2Schedule {
    pub ratelimit_us: u32,
}

/// `struct xen_sysctl_scheduler_op` (32 bytes): `u` is the union of the arinc653
/// schedule handle and the credit and credit2 parameters (16 bytes, 8-aligned).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlSchedulerOp {
    /// The pool whose scheduler is meant.
    pub cpupool_id: u32,
    /// `XEN_SCHEDULER_*`: must be the pool's.
    pub sched_id: u32,
    /// `XEN_SYSCTL_SCHEDOP_*`.
    pub cmd: u32,
    pub _pad0: [u8; 4],
    pub u: [u64; 2],
}

impl XenSysctlSchedulerOp {
    /// The union read as credit parameters.
    pub fn credit(&self) -> XenSysctlCreditSchedule {
        crate::payload::read(self.u.as_bytes()).expect("fits")
    }

    /// Writes credit parameters into the union (the rest zeroed).
    pub fn set_credit(&mut self, c: XenSysctlCreditSchedule) {
        crate::payload::write(self.u.as_mut_bytes(), &c);
    }
}

/// `XEN_SYSCTL_CPUPOOL_OP_CREATE`
pub const XEN_SYSCTL_CPUPOOL_OP_CREATE: u32 = 1;
/// `XEN_SYSCTL_CPUPOOL_OP_DESTROY`
pub const XEN_SYSCTL_CPUPOOL_OP_DESTROY: u32 = 2;
/// `XEN_SYSCTL_CPUPOOL_OP_INFO`
pub const XEN_SYSCTL_CPUPOOL_OP_INFO: u32 = 3;
/// `XEN_SYSCTL_CPUPOOL_OP_ADDCPU`
pub const XEN_SYSCTL_CPUPOOL_OP_ADDCPU: u32 = 4;
/// `XEN_SYSCTL_CPUPOOL_OP_RMCPU`
pub const XEN_SYSCTL_CPUPOOL_OP_RMCPU: u32 = 5;
/// `XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN`
pub const XEN_SYSCTL_CPUPOOL_OP_MOVEDOMAIN: u32 = 6;
/// `XEN_SYSCTL_CPUPOOL_OP_FREEINFO`
pub const XEN_SYSCTL_CPUPOOL_OP_FREEINFO: u32 = 7;
/// `XEN_SYSCTL_CPUPOOL_PAR_ANY`
pub const XEN_SYSCTL_CPUPOOL_PAR_ANY: u32 = 0xffff_ffff;

/// `struct xen_sysctl_cpupool_op` (40 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlCpupoolOp {
    /// `XEN_SYSCTL_CPUPOOL_OP_*`.
    pub op: u32,
    pub cpupool_id: u32,
    pub sched_id: u32,
    pub domid: u32,
    pub cpu: u32,
    pub n_dom: u32,
    pub cpumap: crate::domctl::XenctlBitmap,
}

/// `XEN_INVALID_CORE_ID`, `XEN_INVALID_SOCKET_ID`, `XEN_INVALID_NODE_ID`
pub const XEN_INVALID_NODE_ID: u32 = !0;
/// `XEN_INVALID_MEM_SZ` (an `unsigned int` all-ones, widened into the 64-bit fields)
pub const XEN_INVALID_MEM_SZ: u32 = !0;
/// `XEN_INVALID_NODE_DIST`
pub const XEN_INVALID_NODE_DIST: u32 = !0;

/// `struct xen_sysctl_cputopo` (12 bytes): one CPU of `XEN_SYSCTL_cputopoinfo`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlCputopo {
    pub core: u32,
    pub socket: u32,
    pub node: u32,
}

/// `struct xen_sysctl_cputopoinfo` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlCputopoinfo {
    /// IN: entries in `cputopo`; OUT: CPUs there are (or written).
    pub num_cpus: u32,
    pub _pad0: [u8; 4],
    /// Guest handle to `xen_sysctl_cputopo[]` (null: only `num_cpus` asked).
    pub cputopo: u64,
}

/// `struct xen_sysctl_meminfo` (16 bytes): one node of `XEN_SYSCTL_numainfo`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlMeminfo {
    pub memsize: u64,
    pub memfree: u64,
}

/// `struct xen_sysctl_numainfo` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlNumainfo {
    /// IN: nodes the buffers hold; OUT: nodes there are (or written).
    pub num_nodes: u32,
    pub _pad0: [u8; 4],
    /// Guest handle to `xen_sysctl_meminfo[]` (may be null).
    pub meminfo: u64,
    /// Guest handle to `uint32_t[num_nodes * num_nodes]` (may be null).
    pub distance: u64,
}

/// `XEN_SYSCTL_cpu_featureset_*`: which featureset `get_cpu_featureset` reads.
pub const XEN_SYSCTL_cpu_featureset_raw: u32 = 0;
/// `XEN_SYSCTL_cpu_featureset_host`
pub const XEN_SYSCTL_cpu_featureset_host: u32 = 1;
/// `XEN_SYSCTL_cpu_featureset_pv`
pub const XEN_SYSCTL_cpu_featureset_pv: u32 = 2;
/// `XEN_SYSCTL_cpu_featureset_hvm`
pub const XEN_SYSCTL_cpu_featureset_hvm: u32 = 3;
/// `XEN_SYSCTL_cpu_featureset_pv_max`
pub const XEN_SYSCTL_cpu_featureset_pv_max: u32 = 4;
/// `XEN_SYSCTL_cpu_featureset_hvm_max`
pub const XEN_SYSCTL_cpu_featureset_hvm_max: u32 = 5;

/// `struct xen_sysctl_cpu_featureset` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlCpuFeatureset {
    /// `XEN_SYSCTL_cpu_featureset_*`.
    pub index: u32,
    /// IN: words in `features`; OUT: words written (or the most there are).
    pub nr_features: u32,
    /// Guest handle to `uint32_t[]` (null: only the count asked).
    pub features: u64,
}

/// `XEN_SYSCTL_cpu_policy_*`: which system policy `get_cpu_policy` reads.
pub const XEN_SYSCTL_cpu_policy_raw: u32 = 0;
/// `XEN_SYSCTL_cpu_policy_host`
pub const XEN_SYSCTL_cpu_policy_host: u32 = 1;
/// `XEN_SYSCTL_cpu_policy_pv_max`
pub const XEN_SYSCTL_cpu_policy_pv_max: u32 = 2;
/// `XEN_SYSCTL_cpu_policy_hvm_max`
pub const XEN_SYSCTL_cpu_policy_hvm_max: u32 = 3;
/// `XEN_SYSCTL_cpu_policy_pv_default`
pub const XEN_SYSCTL_cpu_policy_pv_default: u32 = 4;
/// `XEN_SYSCTL_cpu_policy_hvm_default`
pub const XEN_SYSCTL_cpu_policy_hvm_default: u32 = 5;

/// `struct xen_sysctl_cpu_policy` (32 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenSysctlCpuPolicy {
    /// `XEN_SYSCTL_cpu_policy_*`.
    pub index: u32,
    pub nr_leaves: u32,
    pub nr_msrs: u32,
    /// Must be zero.
    pub _rsvd: u32,
    /// Guest handle to `xen_cpuid_leaf_t[]`.
    pub leaves: u64,
    /// Guest handle to `xen_msr_entry_t[]`.
    pub msrs: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let mut s = XenSysctl::new(XEN_SYSCTL_physinfo);
        let p = XenSysctlPhysinfo {
            nr_cpus: 2,
            capabilities: XEN_SYSCTL_PHYSCAP_pv,
            ..Default::default()
        };
        assert!(s.set_payload(&p));
        assert_eq!(s.payload::<XenSysctlPhysinfo>(), Some(p));
        assert_eq!(s.interface_version, 0x15);
    }
}
