//! The `xsd_sockmsg` header every message starts with.

use crate::WireError;
use xen_abi::xenstore::{XsType, XsdSockmsg, XENSTORE_PAYLOAD_MAX};
use zerocopy::{FromBytes, IntoBytes};

/// Bytes in a header.
pub const HEADER_LEN: usize = core::mem::size_of::<XsdSockmsg>();

/// A decoded header whose `len` is within [`XENSTORE_PAYLOAD_MAX`]. The type stays a
/// raw number so a server can answer unknown types with an error in the same stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub ty: u32,
    pub req_id: u32,
    pub tx_id: u32,
    pub len: u32,
}

impl Header {
    pub fn new(ty: XsType, req_id: u32, tx_id: u32, len: usize) -> Self {
        Header { ty: ty.into(), req_id, tx_id, len: len as u32 }
    }

    /// Decodes the first [`HEADER_LEN`] bytes of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let raw = bytes.get(..HEADER_LEN).ok_or(WireError::Short)?;
        let m = XsdSockmsg::read_from_bytes(raw).map_err(|_| WireError::Short)?;
        if m.len as usize > XENSTORE_PAYLOAD_MAX {
            return Err(WireError::TooLong(m.len));
        }
        Ok(Header { ty: m.type_, req_id: m.req_id, tx_id: m.tx_id, len: m.len })
    }

    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let m = XsdSockmsg { type_: self.ty, req_id: self.req_id, tx_id: self.tx_id, len: self.len };
        let mut out = [0u8; HEADER_LEN];
        out.copy_from_slice(m.as_bytes());
        out
    }

    pub fn msg_type(&self) -> Result<XsType, WireError> {
        XsType::try_from(self.ty).map_err(WireError::UnknownType)
    }

    /// The header of a reply to this request: same ids, new type and length.
    pub fn reply(&self, ty: XsType, len: usize) -> Header {
        Header { ty: ty.into(), req_id: self.req_id, tx_id: self.tx_id, len: len as u32 }
    }

    pub fn payload_len(&self) -> usize {
        self.len as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trip_and_limits() {
        let h = Header::new(XsType::Read, 7, 3, 12);
        assert_eq!(Header::decode(&h.encode()), Ok(h));
        assert_eq!(h.encode()[..4], 2u32.to_le_bytes());
        assert_eq!(Header::decode(&[0; 15]), Err(WireError::Short));
        let big = Header { ty: 2, req_id: 0, tx_id: 0, len: 4097 };
        assert_eq!(Header::decode(&big.encode()), Err(WireError::TooLong(4097)));
        let odd = Header { ty: 20, req_id: 0, tx_id: 0, len: 0 };
        assert_eq!(Header::decode(&odd.encode()).unwrap().msg_type(), Err(WireError::UnknownType(20)));
    }

    proptest! {
        #[test]
        fn decode_never_panics_and_round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            if let Ok(h) = Header::decode(&bytes) {
                prop_assert!(h.payload_len() <= XENSTORE_PAYLOAD_MAX);
                prop_assert_eq!(&h.encode()[..], &bytes[..HEADER_LEN]);
            }
        }
    }
}
