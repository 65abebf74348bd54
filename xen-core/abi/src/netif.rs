//! `io/netif.h`: the PV network device request/response layouts and flags.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `XEN_NETIF_NR_SLOTS_MIN`
pub const XEN_NETIF_NR_SLOTS_MIN: u32 = 18;
/// `XEN_NETIF_MAX_TX_SIZE`
pub const XEN_NETIF_MAX_TX_SIZE: u32 = 0xFFFF;

/// `_NETTXF_csum_blank`
pub const _NETTXF_csum_blank: u16 = 0;
/// `NETTXF_csum_blank`: protocol checksum field is blank.
pub const NETTXF_csum_blank: u16 = 1 << _NETTXF_csum_blank;
/// `_NETTXF_data_validated`
pub const _NETTXF_data_validated: u16 = 1;
/// `NETTXF_data_validated`
pub const NETTXF_data_validated: u16 = 1 << _NETTXF_data_validated;
/// `_NETTXF_more_data`
pub const _NETTXF_more_data: u16 = 2;
/// `NETTXF_more_data`: the packet continues in the next request.
pub const NETTXF_more_data: u16 = 1 << _NETTXF_more_data;
/// `_NETTXF_extra_info`
pub const _NETTXF_extra_info: u16 = 3;
/// `NETTXF_extra_info`: a `netif_extra_info` follows.
pub const NETTXF_extra_info: u16 = 1 << _NETTXF_extra_info;

/// `_NETRXF_data_validated`
pub const _NETRXF_data_validated: u16 = 0;
/// `NETRXF_data_validated`
pub const NETRXF_data_validated: u16 = 1 << _NETRXF_data_validated;
/// `_NETRXF_csum_blank`
pub const _NETRXF_csum_blank: u16 = 1;
/// `NETRXF_csum_blank`
pub const NETRXF_csum_blank: u16 = 1 << _NETRXF_csum_blank;
/// `_NETRXF_more_data`
pub const _NETRXF_more_data: u16 = 2;
/// `NETRXF_more_data`
pub const NETRXF_more_data: u16 = 1 << _NETRXF_more_data;
/// `_NETRXF_extra_info`
pub const _NETRXF_extra_info: u16 = 3;
/// `NETRXF_extra_info`
pub const NETRXF_extra_info: u16 = 1 << _NETRXF_extra_info;
/// `_NETRXF_gso_prefix`
pub const _NETRXF_gso_prefix: u16 = 4;
/// `NETRXF_gso_prefix`
pub const NETRXF_gso_prefix: u16 = 1 << _NETRXF_gso_prefix;

/// `XEN_NETIF_EXTRA_TYPE_NONE` (never used)
pub const XEN_NETIF_EXTRA_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_EXTRA_TYPE_GSO`
pub const XEN_NETIF_EXTRA_TYPE_GSO: u8 = 1;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_ADD`
pub const XEN_NETIF_EXTRA_TYPE_MCAST_ADD: u8 = 2;
/// `XEN_NETIF_EXTRA_TYPE_MCAST_DEL`
pub const XEN_NETIF_EXTRA_TYPE_MCAST_DEL: u8 = 3;
/// `XEN_NETIF_EXTRA_TYPE_HASH`
pub const XEN_NETIF_EXTRA_TYPE_HASH: u8 = 4;
/// `XEN_NETIF_EXTRA_TYPE_MAX`
pub const XEN_NETIF_EXTRA_TYPE_MAX: u8 = 5;
/// `_XEN_NETIF_EXTRA_FLAG_MORE`
pub const _XEN_NETIF_EXTRA_FLAG_MORE: u8 = 0;
/// `XEN_NETIF_EXTRA_FLAG_MORE`
pub const XEN_NETIF_EXTRA_FLAG_MORE: u8 = 1 << _XEN_NETIF_EXTRA_FLAG_MORE;
/// `XEN_NETIF_GSO_TYPE_NONE`
pub const XEN_NETIF_GSO_TYPE_NONE: u8 = 0;
/// `XEN_NETIF_GSO_TYPE_TCPV4`
pub const XEN_NETIF_GSO_TYPE_TCPV4: u8 = 1;
/// `XEN_NETIF_GSO_TYPE_TCPV6`
pub const XEN_NETIF_GSO_TYPE_TCPV6: u8 = 2;

/// `NETIF_RSP_DROPPED`
pub const NETIF_RSP_DROPPED: i16 = -2;
/// `NETIF_RSP_ERROR`
pub const NETIF_RSP_ERROR: i16 = -1;
/// `NETIF_RSP_OKAY`
pub const NETIF_RSP_OKAY: i16 = 0;
/// `NETIF_RSP_NULL`: no response (used by the rx path for extra-info slots).
pub const NETIF_RSP_NULL: i16 = 1;

/// `XEN_NETIF_CTRL_TYPE_INVALID`
pub const XEN_NETIF_CTRL_TYPE_INVALID: u16 = 0;
/// `XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS`
pub const XEN_NETIF_CTRL_TYPE_GET_HASH_FLAGS: u16 = 1;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS`
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_FLAGS: u16 = 2;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_KEY`
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_KEY: u16 = 3;
/// `XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE`
pub const XEN_NETIF_CTRL_TYPE_GET_HASH_MAPPING_SIZE: u16 = 4;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE`
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING_SIZE: u16 = 5;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING`
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_MAPPING: u16 = 6;
/// `XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM`
pub const XEN_NETIF_CTRL_TYPE_SET_HASH_ALGORITHM: u16 = 7;
/// `XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE`
pub const XEN_NETIF_CTRL_TYPE_GET_GREF_MAPPING_SIZE: u16 = 8;
/// `XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING`
pub const XEN_NETIF_CTRL_TYPE_ADD_GREF_MAPPING: u16 = 9;
/// `XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING`
pub const XEN_NETIF_CTRL_TYPE_DEL_GREF_MAPPING: u16 = 10;
/// `XEN_NETIF_CTRL_STATUS_SUCCESS`
pub const XEN_NETIF_CTRL_STATUS_SUCCESS: u32 = 0;
/// `XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED`
pub const XEN_NETIF_CTRL_STATUS_NOT_SUPPORTED: u32 = 1;
/// `XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER`
pub const XEN_NETIF_CTRL_STATUS_INVALID_PARAMETER: u32 = 2;
/// `XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW`
pub const XEN_NETIF_CTRL_STATUS_BUFFER_OVERFLOW: u32 = 3;

/// `struct netif_tx_request` (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifTxRequest {
    pub gref: u32,
    pub offset: u16,
    /// `NETTXF_*`.
    pub flags: u16,
    pub id: u16,
    /// Whole packet size in the first slot, fragment size in the others.
    pub size: u16,
}

/// `struct netif_tx_response` (4 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifTxResponse {
    pub id: u16,
    /// `NETIF_RSP_*`.
    pub status: i16,
}

/// `struct netif_rx_request` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifRxRequest {
    pub id: u16,
    pub pad: u16,
    pub gref: u32,
}

/// `struct netif_rx_response` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifRxResponse {
    pub id: u16,
    pub offset: u16,
    /// `NETRXF_*`.
    pub flags: u16,
    /// Byte length if >= 0, else `NETIF_RSP_*`.
    pub status: i16,
}

/// `struct netif_extra_info` (8 bytes). `u` is the C union (`gso`, `mcast`, `hash`,
/// `uint16_t pad[3]`); use the accessors.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct NetifExtraInfo {
    /// `XEN_NETIF_EXTRA_TYPE_*`.
    pub type_: u8,
    /// `XEN_NETIF_EXTRA_FLAG_*`.
    pub flags: u8,
    pub u: [u16; 3],
}

impl NetifExtraInfo {
    /// The union's six bytes, in memory order.
    pub fn u_bytes(&self) -> [u8; 6] {
        let mut b = [0; 6];
        b.copy_from_slice(self.u.as_bytes());
        b
    }
    /// Overwrites the union's six bytes.
    pub fn set_u_bytes(&mut self, b: [u8; 6]) {
        self.u.as_mut_bytes().copy_from_slice(&b);
    }
    /// `u.gso.size`
    pub fn gso_size(&self) -> u16 {
        self.u[0]
    }
    /// `u.gso.type` (`XEN_NETIF_GSO_TYPE_*`)
    pub fn gso_type(&self) -> u8 {
        self.u_bytes()[2]
    }
    /// `u.gso.features`
    pub fn gso_features(&self) -> u16 {
        self.u[2]
    }
    /// Fills `u.gso`.
    pub fn set_gso(&mut self, size: u16, gso_type: u8, features: u16) {
        let s = size.to_ne_bytes();
        let f = features.to_ne_bytes();
        self.set_u_bytes([s[0], s[1], gso_type, 0, f[0], f[1]]);
    }
    /// `u.mcast.addr`
    pub fn mcast_addr(&self) -> [u8; 6] {
        self.u_bytes()
    }
    /// `u.hash.type`
    pub fn hash_type(&self) -> u8 {
        self.u_bytes()[0]
    }
    /// `u.hash.algorithm`
    pub fn hash_algorithm(&self) -> u8 {
        self.u_bytes()[1]
    }
    /// `u.hash.value`
    pub fn hash_value(&self) -> [u8; 4] {
        let b = self.u_bytes();
        [b[2], b[3], b[4], b[5]]
    }
}

/// `struct xen_netif_ctrl_request` (16 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenNetifCtrlRequest {
    pub id: u16,
    /// `XEN_NETIF_CTRL_TYPE_*`.
    pub type_: u16,
    pub data: [u32; 3],
}

/// `struct xen_netif_ctrl_response` (12 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenNetifCtrlResponse {
    pub id: u16,
    pub type_: u16,
    /// `XEN_NETIF_CTRL_STATUS_*`.
    pub status: u32,
    pub data: u32,
}

/// `struct xen_netif_gref` (8 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XenNetifGref {
    pub ref_: u32,
    pub flags: u16,
    pub status: u16,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_info_gso() {
        let mut e = NetifExtraInfo {
            type_: XEN_NETIF_EXTRA_TYPE_GSO,
            ..Default::default()
        };
        e.set_gso(1448, XEN_NETIF_GSO_TYPE_TCPV4, 0);
        assert_eq!(e.gso_size(), 1448);
        assert_eq!(e.gso_type(), XEN_NETIF_GSO_TYPE_TCPV4);
        assert_eq!(e.gso_features(), 0);
        e.set_u_bytes([1, 2, 3, 4, 5, 6]);
        assert_eq!(e.mcast_addr(), [1, 2, 3, 4, 5, 6]);
        assert_eq!(
            (e.hash_type(), e.hash_algorithm(), e.hash_value()),
            (1, 2, [3, 4, 5, 6])
        );
    }
}
