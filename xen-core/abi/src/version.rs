//! `version.h`: `HYPERVISOR_xen_version` commands and their buffers.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XENVER_version`: returns `major << 16 | minor`.
pub const XENVER_version: u32 = 0;
/// `XENVER_extraversion`: arg = `xen_extraversion_t`.
pub const XENVER_extraversion: u32 = 1;
/// `XENVER_compile_info`: arg = [`XenCompileInfo`].
pub const XENVER_compile_info: u32 = 2;
/// `XENVER_capabilities`: arg = `xen_capabilities_info_t`.
pub const XENVER_capabilities: u32 = 3;
/// `XENVER_changeset`: arg = `xen_changeset_info_t`.
pub const XENVER_changeset: u32 = 4;
/// `XENVER_platform_parameters`: arg = [`XenPlatformParameters`].
pub const XENVER_platform_parameters: u32 = 5;
/// `XENVER_get_features`: arg = [`XenFeatureInfo`].
pub const XENVER_get_features: u32 = 6;
/// `XENVER_pagesize`
pub const XENVER_pagesize: u32 = 7;
/// `XENVER_guest_handle`: arg = `xen_domain_handle_t`.
pub const XENVER_guest_handle: u32 = 8;
/// `XENVER_commandline`: arg = `xen_commandline_t`.
pub const XENVER_commandline: u32 = 9;
/// `XENVER_build_id`: arg = [`XenBuildId`] followed by its buffer.
pub const XENVER_build_id: u32 = 10;

/// `XEN_EXTRAVERSION_LEN` (`sizeof(xen_extraversion_t)`).
pub const XEN_EXTRAVERSION_LEN: usize = 16;
/// `XEN_CAPABILITIES_INFO_LEN` (`sizeof(xen_capabilities_info_t)`).
pub const XEN_CAPABILITIES_INFO_LEN: usize = 1024;
/// `XEN_CHANGESET_INFO_LEN` (`sizeof(xen_changeset_info_t)`).
pub const XEN_CHANGESET_INFO_LEN: usize = 64;
/// `sizeof(xen_commandline_t)`.
pub const XEN_COMMANDLINE_LEN: usize = 1024;
/// `sizeof(xen_domain_handle_t)`.
pub const XEN_DOMAIN_HANDLE_LEN: usize = 16;

/// `xen_extraversion_t`: NUL-terminated, e.g. `".0"`.
pub type XenExtraversion = [u8; XEN_EXTRAVERSION_LEN];
/// `xen_capabilities_info_t`: space-separated, e.g. `"xen-3.0-x86_64 "`.
pub type XenCapabilitiesInfo = [u8; XEN_CAPABILITIES_INFO_LEN];
/// `xen_changeset_info_t`.
pub type XenChangesetInfo = [u8; XEN_CHANGESET_INFO_LEN];
/// `xen_commandline_t`.
pub type XenCommandline = [u8; XEN_COMMANDLINE_LEN];
/// `xen_domain_handle_t`.
pub type XenDomainHandle = [u8; XEN_DOMAIN_HANDLE_LEN];

/// The `XENVER_version` return value for `major.minor`.
pub const fn xen_version(major: u16, minor: u16) -> u32 {
    (major as u32) << 16 | minor as u32
}

/// `struct xen_compile_info` (144 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenCompileInfo {
    pub compiler: [u8; 64],
    pub compile_by: [u8; 16],
    pub compile_domain: [u8; 32],
    pub compile_date: [u8; 32],
}

zeroed_default!(XenCompileInfo);

/// `struct xen_platform_parameters`
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenPlatformParameters {
    /// `HYPERVISOR_VIRT_START` for 64-bit PV.
    pub virt_start: u64,
}

/// `struct xen_feature_info` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenFeatureInfo {
    /// IN: which 32-bit submap to return.
    pub submap_idx: u32,
    /// OUT: the submap (bit n = `XENFEAT_*` number `32 * submap_idx + n`).
    pub submap: u32,
}

/// `struct xen_build_id` header (4 bytes): `len` then a flexible `buf[]`.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenBuildId {
    /// IN: size of the buffer that follows.
    pub len: u32,
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_word() {
        assert_eq!(super::xen_version(4, 17), 0x0004_0011);
    }
}
