//! `memory.h`: `HYPERVISOR_memory_op` commands and their argument structures, plus
//! the 20-byte E820 entry returned by `XENMEM_memory_map`.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XENMEM_increase_reservation`
pub const XENMEM_increase_reservation: u32 = 0;
/// `XENMEM_decrease_reservation`
pub const XENMEM_decrease_reservation: u32 = 1;
/// `XENMEM_maximum_ram_page`
pub const XENMEM_maximum_ram_page: u32 = 2;
/// `XENMEM_current_reservation`
pub const XENMEM_current_reservation: u32 = 3;
/// `XENMEM_maximum_reservation`
pub const XENMEM_maximum_reservation: u32 = 4;
/// `XENMEM_machphys_mfn_list`
pub const XENMEM_machphys_mfn_list: u32 = 5;
/// `XENMEM_populate_physmap`
pub const XENMEM_populate_physmap: u32 = 6;
/// `XENMEM_add_to_physmap`
pub const XENMEM_add_to_physmap: u32 = 7;
/// `XENMEM_memory_map`
pub const XENMEM_memory_map: u32 = 9;
/// `XENMEM_machine_memory_map`
pub const XENMEM_machine_memory_map: u32 = 10;
/// `XENMEM_exchange`
pub const XENMEM_exchange: u32 = 11;
/// `XENMEM_machphys_mapping`
pub const XENMEM_machphys_mapping: u32 = 12;
/// `XENMEM_set_memory_map`
pub const XENMEM_set_memory_map: u32 = 13;
/// `XENMEM_maximum_gpfn`
pub const XENMEM_maximum_gpfn: u32 = 14;
/// `XENMEM_remove_from_physmap`
pub const XENMEM_remove_from_physmap: u32 = 15;
/// `XENMEM_set_pod_target`
pub const XENMEM_set_pod_target: u32 = 16;
/// `XENMEM_get_pod_target`
pub const XENMEM_get_pod_target: u32 = 17;
/// `XENMEM_get_sharing_freed_pages`
pub const XENMEM_get_sharing_freed_pages: u32 = 18;
/// `XENMEM_get_sharing_shared_pages`
pub const XENMEM_get_sharing_shared_pages: u32 = 19;
/// `XENMEM_paging_op`
pub const XENMEM_paging_op: u32 = 20;
/// `XENMEM_access_op`
pub const XENMEM_access_op: u32 = 21;
/// `XENMEM_sharing_op`
pub const XENMEM_sharing_op: u32 = 22;
/// `XENMEM_add_to_physmap_batch`
pub const XENMEM_add_to_physmap_batch: u32 = 23;
/// `XENMEM_claim_pages`
pub const XENMEM_claim_pages: u32 = 24;
/// `XENMEM_machphys_compat_mfn_list`
pub const XENMEM_machphys_compat_mfn_list: u32 = 25;
/// `XENMEM_get_vnumainfo`
pub const XENMEM_get_vnumainfo: u32 = 26;
/// `XENMEM_reserved_device_memory_map`
pub const XENMEM_reserved_device_memory_map: u32 = 27;
/// `XENMEM_acquire_resource`
pub const XENMEM_acquire_resource: u32 = 28;

/// `MEMOP_EXTENT_SHIFT`: `memory_op` continuations keep the start extent in
/// `cmd >> 6` (internal to Xen's hypercall handling, visible in `RDI`).
pub const MEMOP_EXTENT_SHIFT: u32 = 6;
/// `MEMOP_CMD_MASK`
pub const MEMOP_CMD_MASK: u32 = (1 << MEMOP_EXTENT_SHIFT) - 1;

/// `XENMEMF_address_bits(x)`
pub const fn xenmemf_address_bits(bits: u32) -> u32 {
    bits
}
/// `XENMEMF_get_address_bits(x)`
pub const fn xenmemf_get_address_bits(flags: u32) -> u32 {
    flags & 0xff
}
/// `XENMEMF_node(x)`
pub const fn xenmemf_node(node: u32) -> u32 {
    (node + 1) << 8
}
/// `XENMEMF_get_node(x)`
pub const fn xenmemf_get_node(flags: u32) -> u32 {
    ((flags >> 8).wrapping_sub(1)) & 0xff
}
/// `XENMEMF_populate_on_demand`
pub const XENMEMF_populate_on_demand: u32 = 1 << 16;
/// `XENMEMF_exact_node_request`
pub const XENMEMF_exact_node_request: u32 = 1 << 17;
/// `XENMEMF_vnode`
pub const XENMEMF_vnode: u32 = 1 << 18;

/// `XENMAPSPACE_shared_info`
pub const XENMAPSPACE_shared_info: u32 = 0;
/// `XENMAPSPACE_grant_table`
pub const XENMAPSPACE_grant_table: u32 = 1;
/// `XENMAPSPACE_gmfn`
pub const XENMAPSPACE_gmfn: u32 = 2;
/// `XENMAPSPACE_gmfn_range`
pub const XENMAPSPACE_gmfn_range: u32 = 3;
/// `XENMAPSPACE_gmfn_foreign`
pub const XENMAPSPACE_gmfn_foreign: u32 = 4;
/// `XENMAPSPACE_dev_mmio`
pub const XENMAPSPACE_dev_mmio: u32 = 5;
/// `XENMAPIDX_grant_table_status`
pub const XENMAPIDX_grant_table_status: u64 = 0x8000_0000;

/// `XENMEM_resource_ioreq_server`
pub const XENMEM_resource_ioreq_server: u16 = 0;
/// `XENMEM_resource_grant_table`
pub const XENMEM_resource_grant_table: u16 = 1;
/// `XENMEM_resource_vmtrace_buf`
pub const XENMEM_resource_vmtrace_buf: u16 = 2;
/// `XENMEM_resource_grant_table_id_shared`
pub const XENMEM_resource_grant_table_id_shared: u32 = 0;
/// `XENMEM_resource_grant_table_id_status`
pub const XENMEM_resource_grant_table_id_status: u32 = 1;

/// `struct xen_memory_reservation` (32 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryReservation {
    /// Guest handle to an array of `xen_pfn_t` (IN/OUT).
    pub extent_start: u64,
    pub nr_extents: u64,
    /// Each extent is `2^extent_order` pages.
    pub extent_order: u32,
    /// `XENMEMF_*`.
    pub mem_flags: u32,
    /// Target domain (`DOMID_SELF` unless privileged).
    pub domid: u16,
    pub _pad0: [u8; 6],
}

/// `struct xen_memory_exchange` (72 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryExchange {
    /// C field `in`.
    pub in_: XenMemoryReservation,
    pub out: XenMemoryReservation,
    pub nr_exchanged: u64,
}

/// `struct xen_memory_domain`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryDomain {
    pub domid: u16,
}

/// `struct xen_machphys_mfn_list` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMachphysMfnList {
    pub max_extents: u32,
    pub _pad0: [u8; 4],
    /// Guest handle to an array of `xen_pfn_t`.
    pub extent_start: u64,
    pub nr_extents: u32,
    pub _pad1: [u8; 4],
}

/// `struct xen_machphys_mapping` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMachphysMapping {
    /// Start virtual address of the read-only M2P.
    pub v_start: u64,
    /// End virtual address.
    pub v_end: u64,
    /// Maximum MFN that can be looked up.
    pub max_mfn: u64,
}

/// `struct xen_add_to_physmap` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenAddToPhysmap {
    pub domid: u16,
    /// Pages for `XENMAPSPACE_gmfn_range`.
    pub size: u16,
    /// `XENMAPSPACE_*`.
    pub space: u32,
    pub idx: u64,
    pub gpfn: u64,
}

/// `struct xen_add_to_physmap_batch` (32 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenAddToPhysmapBatch {
    pub domid: u16,
    pub space: u16,
    pub size: u16,
    /// `u.foreign_domid` (union with `u.res0`).
    pub foreign_domid: u16,
    /// Guest handle to `xen_ulong_t[]`.
    pub idxs: u64,
    /// Guest handle to `xen_pfn_t[]`.
    pub gpfns: u64,
    /// Guest handle to `int[]`.
    pub errs: u64,
}

/// `struct xen_remove_from_physmap` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenRemoveFromPhysmap {
    pub domid: u16,
    pub _pad0: [u8; 6],
    pub gpfn: u64,
}

/// `struct xen_memory_map` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemoryMap {
    /// IN: entries that fit in `buffer`; OUT: entries written.
    pub nr_entries: u32,
    pub _pad0: [u8; 4],
    /// Guest handle to an array of [`E820Entry`].
    pub buffer: u64,
}

/// `struct xen_foreign_memory_map` (24 bytes): `XENMEM_set_memory_map`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenForeignMemoryMap {
    pub domid: u16,
    pub _pad0: [u8; 6],
    pub map: XenMemoryMap,
}

/// `struct xen_pod_target` (40 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenPodTarget {
    pub target_pages: u64,
    pub tot_pages: u64,
    pub pod_cache_pages: u64,
    pub pod_entries: u64,
    pub domid: u16,
    pub _pad0: [u8; 6],
}

/// `struct xen_mem_acquire_resource` (32 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenMemAcquireResource {
    pub domid: u16,
    /// `XENMEM_resource_*`.
    pub type_: u16,
    pub id: u32,
    pub nr_frames: u32,
    pub pad: u32,
    pub frame: u64,
    /// Guest handle to `xen_pfn_t[]`.
    pub frame_list: u64,
}

/// `struct xen_vmemrange` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenVmemrange {
    pub start: u64,
    pub end: u64,
    pub flags: u32,
    pub nid: u32,
}

/// `struct xen_vnuma_topology_info` (40 bytes). The three trailing unions of a guest
/// handle and `uint64_t pad` are plain `u64` guest addresses here.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenVnumaTopologyInfo {
    pub domid: u16,
    pub pad: u16,
    pub nr_vnodes: u32,
    pub nr_vcpus: u32,
    pub nr_vmemranges: u32,
    /// `vdistance.h`
    pub vdistance: u64,
    /// `vcpu_to_vnode.h`
    pub vcpu_to_vnode: u64,
    /// `vmemrange.h`
    pub vmemrange: u64,
}

/// E820 `type`: usable RAM.
pub const E820_RAM: u32 = 1;
/// E820 `type`: reserved.
pub const E820_RESERVED: u32 = 2;
/// E820 `type`: ACPI reclaimable.
pub const E820_ACPI: u32 = 3;
/// E820 `type`: ACPI NVS.
pub const E820_NVS: u32 = 4;
/// E820 `type`: unusable.
pub const E820_UNUSABLE: u32 = 5;

/// One BIOS E820 entry as exchanged by `XENMEM_{set_,}memory_map`: the packed
/// 20-byte `{ u64 addr; u64 size; u32 type; }` (not declared in the 4.17 public
/// headers; the layout test checks it against a packed C definition).
#[repr(C, packed)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    /// `E820_*`.
    pub type_: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memflags() {
        assert_eq!(xenmemf_get_node(xenmemf_node(3)), 3);
        assert_eq!(
            xenmemf_get_address_bits(xenmemf_address_bits(32) | xenmemf_node(1)),
            32
        );
        let e = E820Entry {
            addr: 0,
            size: 0x1000,
            type_: E820_RAM,
        };
        let (addr, size, ty) = (e.addr, e.size, e.type_);
        assert_eq!((addr, size, ty), (0, 0x1000, 1));
    }
}
