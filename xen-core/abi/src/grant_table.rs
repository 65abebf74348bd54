//! `grant_table.h`: v1 grant entries, `HYPERVISOR_grant_table_op` commands, their
//! argument structures, and the `GNTTAB*`/`GTF_*`/`GNTMAP_*`/`GNTST_*` constants.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `GNTTAB_NR_RESERVED_ENTRIES`
pub const GNTTAB_NR_RESERVED_ENTRIES: u32 = 8;
/// `GNTTAB_RESERVED_CONSOLE`: grant ref the toolstack fills for the console ring.
pub const GNTTAB_RESERVED_CONSOLE: u32 = 0;
/// `GNTTAB_RESERVED_XENSTORE`: grant ref the toolstack fills for the xenstore ring.
pub const GNTTAB_RESERVED_XENSTORE: u32 = 1;

/// `GTF_invalid`
pub const GTF_invalid: u16 = 0;
/// `GTF_permit_access`
pub const GTF_permit_access: u16 = 1;
/// `GTF_accept_transfer`
pub const GTF_accept_transfer: u16 = 2;
/// `GTF_transitive`
pub const GTF_transitive: u16 = 3;
/// `GTF_type_mask`
pub const GTF_type_mask: u16 = 3;
/// `_GTF_readonly`
pub const _GTF_readonly: u16 = 2;
/// `GTF_readonly`
pub const GTF_readonly: u16 = 1 << _GTF_readonly;
/// `_GTF_reading`
pub const _GTF_reading: u16 = 3;
/// `GTF_reading`: set by Xen while mapped for reading.
pub const GTF_reading: u16 = 1 << _GTF_reading;
/// `_GTF_writing`
pub const _GTF_writing: u16 = 4;
/// `GTF_writing`: set by Xen while mapped for writing.
pub const GTF_writing: u16 = 1 << _GTF_writing;
/// `_GTF_PWT`
pub const _GTF_PWT: u16 = 5;
/// `GTF_PWT`
pub const GTF_PWT: u16 = 1 << _GTF_PWT;
/// `_GTF_PCD`
pub const _GTF_PCD: u16 = 6;
/// `GTF_PCD`
pub const GTF_PCD: u16 = 1 << _GTF_PCD;
/// `_GTF_PAT`
pub const _GTF_PAT: u16 = 7;
/// `GTF_PAT`
pub const GTF_PAT: u16 = 1 << _GTF_PAT;
/// `_GTF_sub_page`
pub const _GTF_sub_page: u16 = 8;
/// `GTF_sub_page`
pub const GTF_sub_page: u16 = 1 << _GTF_sub_page;
/// `_GTF_transfer_committed`
pub const _GTF_transfer_committed: u16 = 2;
/// `GTF_transfer_committed`
pub const GTF_transfer_committed: u16 = 1 << _GTF_transfer_committed;
/// `_GTF_transfer_completed`
pub const _GTF_transfer_completed: u16 = 3;
/// `GTF_transfer_completed`
pub const GTF_transfer_completed: u16 = 1 << _GTF_transfer_completed;

bitflags::bitflags! {
    /// A v1 grant entry's `flags` as a set of the `GTF_*` bits above (same values); the
    /// entry type (`GTF_permit_access`, ...) is the two-bit field [`Gtf::grant_type`].
    /// The granter writes this word, so it is read with `from_bits_retain`.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Gtf: u16 {
        /// The entry type field (`GTF_type_mask`): not a flag, see [`Gtf::grant_type`].
        const TYPE_MASK = GTF_type_mask;
        const READONLY = GTF_readonly;
        const READING = GTF_reading;
        const WRITING = GTF_writing;
        const PWT = GTF_PWT;
        const PCD = GTF_PCD;
        const PAT = GTF_PAT;
        const SUB_PAGE = GTF_sub_page;
    }
}

impl Gtf {
    /// The entry type: `GTF_invalid`, `GTF_permit_access`, `GTF_accept_transfer` or
    /// `GTF_transitive`.
    pub const fn grant_type(self) -> u16 {
        self.bits() & GTF_type_mask
    }
}

/// `GNTTABOP_map_grant_ref`
pub const GNTTABOP_map_grant_ref: u32 = 0;
/// `GNTTABOP_unmap_grant_ref`
pub const GNTTABOP_unmap_grant_ref: u32 = 1;
/// `GNTTABOP_setup_table`
pub const GNTTABOP_setup_table: u32 = 2;
/// `GNTTABOP_dump_table`
pub const GNTTABOP_dump_table: u32 = 3;
/// `GNTTABOP_transfer`
pub const GNTTABOP_transfer: u32 = 4;
/// `GNTTABOP_copy`
pub const GNTTABOP_copy: u32 = 5;
/// `GNTTABOP_query_size`
pub const GNTTABOP_query_size: u32 = 6;
/// `GNTTABOP_unmap_and_replace`
pub const GNTTABOP_unmap_and_replace: u32 = 7;
/// `GNTTABOP_set_version`
pub const GNTTABOP_set_version: u32 = 8;
/// `GNTTABOP_get_status_frames`
pub const GNTTABOP_get_status_frames: u32 = 9;
/// `GNTTABOP_get_version`
pub const GNTTABOP_get_version: u32 = 10;
/// `GNTTABOP_swap_grant_ref`
pub const GNTTABOP_swap_grant_ref: u32 = 11;
/// `GNTTABOP_cache_flush`
pub const GNTTABOP_cache_flush: u32 = 12;

/// `_GNTMAP_device_map`
pub const _GNTMAP_device_map: u32 = 0;
/// `GNTMAP_device_map`
pub const GNTMAP_device_map: u32 = 1 << _GNTMAP_device_map;
/// `_GNTMAP_host_map`
pub const _GNTMAP_host_map: u32 = 1;
/// `GNTMAP_host_map`
pub const GNTMAP_host_map: u32 = 1 << _GNTMAP_host_map;
/// `_GNTMAP_readonly`
pub const _GNTMAP_readonly: u32 = 2;
/// `GNTMAP_readonly`
pub const GNTMAP_readonly: u32 = 1 << _GNTMAP_readonly;
/// `_GNTMAP_application_map`
pub const _GNTMAP_application_map: u32 = 3;
/// `GNTMAP_application_map`
pub const GNTMAP_application_map: u32 = 1 << _GNTMAP_application_map;
/// `_GNTMAP_contains_pte`
pub const _GNTMAP_contains_pte: u32 = 4;
/// `GNTMAP_contains_pte`: `host_addr` is the machine address of a PTE.
pub const GNTMAP_contains_pte: u32 = 1 << _GNTMAP_contains_pte;
/// `_GNTMAP_guest_avail0`
pub const _GNTMAP_guest_avail0: u32 = 16;
/// `GNTMAP_guest_avail_mask`
pub const GNTMAP_guest_avail_mask: u32 = !0u32 << _GNTMAP_guest_avail0;

bitflags::bitflags! {
    /// `gnttab_map_grant_ref.flags` as a set of the `GNTMAP_*` bits above (same values).
    /// Xen ignores the bits between `contains_pte` and `guest_avail0`, so guest input is
    /// read with `from_bits_retain`: unknown bits are kept and ignored, never dropped.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct GntMap: u32 {
        const DEVICE_MAP = GNTMAP_device_map;
        const HOST_MAP = GNTMAP_host_map;
        const READONLY = GNTMAP_readonly;
        const APPLICATION_MAP = GNTMAP_application_map;
        const CONTAINS_PTE = GNTMAP_contains_pte;
        /// Bits 16..32, the guest's own (`GNTMAP_guest_avail_mask`).
        const GUEST_AVAIL_MASK = GNTMAP_guest_avail_mask;
    }
}

impl GnttabMapGrantRef {
    /// `flags` as typed `GNTMAP_*` bits (unknown bits kept, as Xen ignores them).
    pub fn map_flags(&self) -> GntMap {
        GntMap::from_bits_retain(self.flags)
    }
}

/// `_GNTCOPY_source_gref`
pub const _GNTCOPY_source_gref: u16 = 0;
/// `GNTCOPY_source_gref`
pub const GNTCOPY_source_gref: u16 = 1 << _GNTCOPY_source_gref;
/// `_GNTCOPY_dest_gref`
pub const _GNTCOPY_dest_gref: u16 = 1;
/// `GNTCOPY_dest_gref`
pub const GNTCOPY_dest_gref: u16 = 1 << _GNTCOPY_dest_gref;

/// `GNTTAB_CACHE_CLEAN`
pub const GNTTAB_CACHE_CLEAN: u32 = 1 << 0;
/// `GNTTAB_CACHE_INVAL`
pub const GNTTAB_CACHE_INVAL: u32 = 1 << 1;
/// `GNTTAB_CACHE_SOURCE_GREF`
pub const GNTTAB_CACHE_SOURCE_GREF: u32 = 1 << 31;

/// `GNTST_okay`
pub const GNTST_okay: i16 = 0;
/// `GNTST_general_error`
pub const GNTST_general_error: i16 = -1;
/// `GNTST_bad_domain`
pub const GNTST_bad_domain: i16 = -2;
/// `GNTST_bad_gntref`
pub const GNTST_bad_gntref: i16 = -3;
/// `GNTST_bad_handle`
pub const GNTST_bad_handle: i16 = -4;
/// `GNTST_bad_virt_addr`
pub const GNTST_bad_virt_addr: i16 = -5;
/// `GNTST_bad_dev_addr`
pub const GNTST_bad_dev_addr: i16 = -6;
/// `GNTST_no_device_space`
pub const GNTST_no_device_space: i16 = -7;
/// `GNTST_permission_denied`
pub const GNTST_permission_denied: i16 = -8;
/// `GNTST_bad_page`
pub const GNTST_bad_page: i16 = -9;
/// `GNTST_bad_copy_arg`
pub const GNTST_bad_copy_arg: i16 = -10;
/// `GNTST_address_too_big`
pub const GNTST_address_too_big: i16 = -11;
/// `GNTST_eagain`
pub const GNTST_eagain: i16 = -12;
/// `GNTST_no_space`
pub const GNTST_no_space: i16 = -13;

/// `GNTTABOP_error_msgs`, indexed by `-status`.
pub const GNTTABOP_ERROR_MSGS: [&str; 14] = [
    "okay",
    "undefined error",
    "unrecognised domain id",
    "invalid grant reference",
    "invalid mapping handle",
    "invalid virtual address",
    "invalid device address",
    "no spare translation slot in the I/O MMU",
    "permission denied",
    "bad page",
    "copy arguments cross page boundary",
    "page address size too large",
    "operation not done; try again",
    "out of space",
];

/// The `GNTTABOP_error_msgs` text for a `GNTST_*` status.
pub fn gntst_message(status: i16) -> Option<&'static str> {
    if status > 0 {
        return None;
    }
    GNTTABOP_ERROR_MSGS
        .get(status.unsigned_abs() as usize)
        .copied()
}

/// `struct grant_entry_v1` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GrantEntryV1 {
    /// `GTF_*`.
    pub flags: u16,
    /// The domain being granted foreign privileges.
    pub domid: u16,
    /// The frame (GFN) being granted, or the frame accepted by a transfer.
    pub frame: u32,
}

/// `struct grant_entry_header` (4 bytes; the common head of v2 entries).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GrantEntryHeader {
    pub flags: u16,
    pub domid: u16,
}

/// `struct gnttab_map_grant_ref` (32 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabMapGrantRef {
    pub host_addr: u64,
    /// `GNTMAP_*`.
    pub flags: u32,
    pub ref_: u32,
    pub dom: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    /// OUT.
    pub handle: u32,
    /// OUT.
    pub dev_bus_addr: u64,
}

/// `struct gnttab_unmap_grant_ref` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabUnmapGrantRef {
    pub host_addr: u64,
    pub dev_bus_addr: u64,
    pub handle: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad0: [u8; 2],
}

/// `struct gnttab_setup_table` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabSetupTable {
    pub dom: u16,
    pub _pad0: [u8; 2],
    pub nr_frames: u32,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad1: [u8; 6],
    /// Guest handle to `xen_pfn_t[nr_frames]` (OUT).
    pub frame_list: u64,
}

/// `struct gnttab_dump_table`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabDumpTable {
    pub dom: u16,
    pub status: i16,
}

/// `struct gnttab_transfer` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabTransfer {
    pub mfn: u64,
    pub domid: u16,
    pub _pad0: [u8; 2],
    pub ref_: u32,
    pub status: i16,
    pub _pad1: [u8; 6],
}

/// `struct gnttab_copy_ptr` (16 bytes): `u` is `union { grant_ref_t ref; xen_pfn_t gmfn; }`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabCopyPtr {
    pub u: u64,
    pub domid: u16,
    pub offset: u16,
    pub _pad0: [u8; 4],
}

impl GnttabCopyPtr {
    /// `u.ref` (when the matching `GNTCOPY_*_gref` flag is set).
    pub const fn gref(&self) -> u32 {
        self.u as u32
    }
    /// `u.gmfn`.
    pub const fn gmfn(&self) -> u64 {
        self.u
    }
}

/// `struct gnttab_copy` (40 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabCopy {
    pub source: GnttabCopyPtr,
    pub dest: GnttabCopyPtr,
    pub len: u16,
    /// `GNTCOPY_*`.
    pub flags: u16,
    /// OUT: `GNTST_*`.
    pub status: i16,
    pub _pad0: [u8; 2],
}

/// `struct gnttab_query_size` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabQuerySize {
    pub dom: u16,
    pub _pad0: [u8; 2],
    pub nr_frames: u32,
    pub max_nr_frames: u32,
    pub status: i16,
    pub _pad1: [u8; 2],
}

/// `struct gnttab_unmap_and_replace` (24 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabUnmapAndReplace {
    pub host_addr: u64,
    pub new_addr: u64,
    pub handle: u32,
    pub status: i16,
    pub _pad0: [u8; 2],
}

/// `struct gnttab_set_version`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabSetVersion {
    /// IN/OUT: 1 or 2.
    pub version: u32,
}

/// `struct gnttab_get_status_frames` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabGetStatusFrames {
    pub nr_frames: u32,
    pub dom: u16,
    pub status: i16,
    /// Guest handle to `uint64_t[]`.
    pub frame_list: u64,
}

/// `struct gnttab_get_version` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabGetVersion {
    pub dom: u16,
    pub pad: u16,
    pub version: u32,
}

/// `struct gnttab_swap_grant_ref` (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabSwapGrantRef {
    pub ref_a: u32,
    pub ref_b: u32,
    pub status: i16,
    pub _pad0: [u8; 2],
}

/// `struct gnttab_cache_flush` (16 bytes): `a` is `union { dev_bus_addr; ref; }`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct GnttabCacheFlush {
    pub a: u64,
    pub offset: u16,
    pub length: u16,
    /// `GNTTAB_CACHE_*`.
    pub op: u32,
}

/// Why a grant could not be used, from a failed `GNTST_*` status: what a back-end needs
/// to know to fail the request the grant belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The reference is not (or no longer) a valid grant to us (`GNTST_bad_gntref`).
    BadRef,
    /// The grant is read-only and the back-end needed to write (`GNTST_permission_denied`).
    ReadOnly,
    /// `offset + len` runs past the frame (`GNTST_bad_copy_arg`).
    OutOfBounds,
    /// Any other failure, with Xen's `GNTST_*` status when there is one.
    Other(i16),
}

impl GrantError {
    /// The error a failed (non-zero) `GNTST_*` status stands for.
    pub fn from_status(status: i16) -> GrantError {
        match status {
            GNTST_bad_gntref => GrantError::BadRef,
            GNTST_permission_denied => GrantError::ReadOnly,
            GNTST_bad_copy_arg => GrantError::OutOfBounds,
            other => GrantError::Other(other),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn grant_errors_from_status() {
        use super::*;
        assert_eq!(GrantError::from_status(GNTST_bad_gntref), GrantError::BadRef);
        assert_eq!(GrantError::from_status(GNTST_permission_denied), GrantError::ReadOnly);
        assert_eq!(GrantError::from_status(GNTST_bad_copy_arg), GrantError::OutOfBounds);
        assert_eq!(GrantError::from_status(GNTST_bad_handle), GrantError::Other(-4));
    }

    use super::*;

    #[test]
    fn messages() {
        assert_eq!(gntst_message(GNTST_okay), Some("okay"));
        assert_eq!(gntst_message(GNTST_no_space), Some("out of space"));
        assert_eq!(gntst_message(-14), None);
        assert_eq!(gntst_message(1), None);
        let p = GnttabCopyPtr {
            u: 0xdead_0000_0007,
            ..Default::default()
        };
        assert_eq!(p.gref(), 7);
    }
}
