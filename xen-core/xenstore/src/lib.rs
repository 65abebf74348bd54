//! The xenstore wire protocol (`io/xs_wire.h`), written once for every side that speaks
//! it: the `no_std` client in `frontend-drivers`, `xenstored` and the dom0 tools.
//!
//! - [`header`]: the 16-byte `xsd_sockmsg` header, decoded with its limits checked.
//! - [`request`]: request payloads, parsed into typed [`Request`]s and built back.
//! - [`path`]: path syntax (Xen's character set and length limits), relative paths,
//!   special `@` paths, parent/child relations.
//! - [`perms`]: permission strings (`n0`, `r5`, `w3`, `b7`).
//! - [`reply`]: reply payloads (`OK`, errors by errno name, watch events, numbers).
//! - [`keys`]: a xenbus device's keys as drivers read and write them.
//! - `store` (feature `alloc`): xenstored's I/O-free engine (tree, permissions, watches,
//!   transactions), shared by dom0's xenstored and pv-guest's xenstore domain.
//! - `server_ring` (feature `alloc`): xenstored's end of a domain's store ring.
//!
//! No `unsafe`, no allocation unless the `alloc` feature is on.
#![no_std]
#![forbid(unsafe_code)]

#[cfg(any(test, feature = "alloc"))]
extern crate alloc;

pub mod header;
pub mod keys;
pub mod path;
pub mod perms;
pub mod reply;
pub mod request;
#[cfg(any(test, feature = "alloc"))]
pub mod server_ring;
#[cfg(any(test, feature = "alloc"))]
pub mod store;

pub use header::{Header, HEADER_LEN};
pub use perms::{Perm, PermKind};
pub use request::Request;
pub use xen_abi::errno::Errno;
pub use xen_abi::xenstore::{
    mask_xenstore_idx, xsd_error_from_name, xsd_error_name, XenstoreDomainInterface, XsType, XsdSockmsg,
    XENSTORE_ABS_PATH_MAX, XENSTORE_PAYLOAD_MAX, XENSTORE_REL_PATH_MAX, XENSTORE_RING_SIZE,
};

/// Why a message could not be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireError {
    /// Fewer than 16 header bytes.
    Short,
    /// `len` above [`XENSTORE_PAYLOAD_MAX`].
    TooLong(u32),
    /// A type number that is not an `XS_*` message type.
    UnknownType(u32),
    /// The payload does not have the fields its type needs (Xen answers `EINVAL`).
    BadPayload,
}

impl WireError {
    /// The errno xenstored answers with for this error.
    pub fn errno(self) -> Errno {
        match self {
            WireError::TooLong(_) => Errno::E2BIG,
            WireError::UnknownType(_) => Errno::ENOSYS,
            WireError::Short | WireError::BadPayload => Errno::EINVAL,
        }
    }
}

/// The NUL-separated fields of a payload, without the empty tail after a final NUL.
pub fn fields(payload: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = payload.strip_suffix(b"\0").unwrap_or(payload);
    let empty = payload.is_empty();
    body.split(|&b| b == 0).filter(move |_| !empty)
}

/// The names in a `XS_DIRECTORY` reply.
pub fn entries(reply: &[u8]) -> impl Iterator<Item = &[u8]> {
    reply.split(|&b| b == 0).filter(|s| !s.is_empty())
}

/// Decimal digits of `v` without allocation (domain ids, ports, frame numbers).
#[derive(Clone, Copy, Debug)]
pub struct Decimal {
    buf: [u8; 20],
    start: usize,
}

impl Decimal {
    pub fn new(mut v: u64) -> Self {
        let mut buf = [0u8; 20];
        let mut start = buf.len();
        loop {
            start -= 1;
            buf[start] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        Decimal { buf, start }
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    pub fn as_str(&self) -> &str {
        // Only ASCII digits were written.
        core::str::from_utf8(self.as_bytes()).unwrap_or("0")
    }
}

/// Parses an unsigned decimal field as Xen's daemons do (digits only, no sign, no
/// leading or trailing junk; an optional trailing NUL).
pub fn parse_decimal(field: &[u8]) -> Option<u64> {
    let f = field.strip_suffix(b"\0").unwrap_or(field);
    if f.is_empty() || f.len() > 20 {
        return None;
    }
    let mut v: u64 = 0;
    for &c in f {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(c - b'0'))?;
    }
    Some(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_split_like_xenstored() {
        let v: alloc::vec::Vec<&[u8]> = fields(b"a\0b\0").collect();
        assert_eq!(v, [&b"a"[..], b"b"]);
        let v: alloc::vec::Vec<&[u8]> = fields(b"a\0\0c").collect();
        assert_eq!(v, [&b"a"[..], b"", b"c"]);
        assert_eq!(fields(b"").count(), 0);
        assert_eq!(fields(b"\0").count(), 1);
    }

    #[test]
    fn decimals() {
        assert_eq!(Decimal::new(0).as_bytes(), b"0");
        assert_eq!(Decimal::new(u64::MAX).as_bytes(), b"18446744073709551615");
        assert_eq!(parse_decimal(b"42\0"), Some(42));
        assert_eq!(parse_decimal(b"-1"), None);
        assert_eq!(parse_decimal(b""), None);
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
    }
}
