//! `io/xs_wire.h`: the xenstore wire protocol — ring page, message header, message
//! types and the errno-name table used in `XS_ERROR` replies.

use crate::errno::Errno;
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

macro_rules! xs_types {
    ($($(#[$doc:meta])* $konst:ident = $val:literal => $variant:ident;)*) => {
        $( $(#[$doc])* pub const $konst: u32 = $val; )*

        /// `enum xsd_sockmsg_type` (Xen 4.17) as a checked Rust enum.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum XsType {
            $( $(#[$doc])* $variant = $val, )*
        }

        impl XsType {
            /// Every message type, in numeric order.
            pub const ALL: &'static [XsType] = &[$(XsType::$variant),*];

            /// Xen's name, e.g. `"XS_READ"`.
            pub const fn name(self) -> &'static str {
                match self { $(XsType::$variant => stringify!($konst),)* }
            }
        }

        impl TryFrom<u32> for XsType {
            type Error = u32;
            fn try_from(v: u32) -> Result<Self, u32> {
                match v { $($val => Ok(XsType::$variant),)* other => Err(other) }
            }
        }
    };
}

xs_types! {
    /// `XS_CONTROL` (alias `XS_DEBUG`).
    XS_CONTROL = 0 => Control;
    /// `XS_DIRECTORY`
    XS_DIRECTORY = 1 => Directory;
    /// `XS_READ`
    XS_READ = 2 => Read;
    /// `XS_GET_PERMS`
    XS_GET_PERMS = 3 => GetPerms;
    /// `XS_WATCH`
    XS_WATCH = 4 => Watch;
    /// `XS_UNWATCH`
    XS_UNWATCH = 5 => Unwatch;
    /// `XS_TRANSACTION_START`
    XS_TRANSACTION_START = 6 => TransactionStart;
    /// `XS_TRANSACTION_END`
    XS_TRANSACTION_END = 7 => TransactionEnd;
    /// `XS_INTRODUCE`
    XS_INTRODUCE = 8 => Introduce;
    /// `XS_RELEASE`
    XS_RELEASE = 9 => Release;
    /// `XS_GET_DOMAIN_PATH`
    XS_GET_DOMAIN_PATH = 10 => GetDomainPath;
    /// `XS_WRITE`
    XS_WRITE = 11 => Write;
    /// `XS_MKDIR`
    XS_MKDIR = 12 => Mkdir;
    /// `XS_RM`
    XS_RM = 13 => Rm;
    /// `XS_SET_PERMS`
    XS_SET_PERMS = 14 => SetPerms;
    /// `XS_WATCH_EVENT`: asynchronous, `req_id`/`tx_id` 0.
    XS_WATCH_EVENT = 15 => WatchEvent;
    /// `XS_ERROR`: payload is an errno name from [`XSD_ERRORS`].
    XS_ERROR = 16 => Error;
    /// `XS_IS_DOMAIN_INTRODUCED`
    XS_IS_DOMAIN_INTRODUCED = 17 => IsDomainIntroduced;
    /// `XS_RESUME`
    XS_RESUME = 18 => Resume;
    /// `XS_SET_TARGET`
    XS_SET_TARGET = 19 => SetTarget;
    /// `XS_RESET_WATCHES` (20, `XS_RESTRICT`, was removed).
    XS_RESET_WATCHES = 21 => ResetWatches;
    /// `XS_DIRECTORY_PART`
    XS_DIRECTORY_PART = 22 => DirectoryPart;
}

/// `XS_DEBUG` (alias of `XS_CONTROL`).
pub const XS_DEBUG: u32 = XS_CONTROL;
/// `XS_TYPE_COUNT`: number of valid types (one more than the last).
pub const XS_TYPE_COUNT: u32 = 23;
/// `XS_INVALID`: guaranteed to remain an invalid type.
pub const XS_INVALID: u32 = 0xffff;

impl From<XsType> for u32 {
    fn from(t: XsType) -> u32 {
        t as u32
    }
}

/// `XS_WRITE_NONE`
pub const XS_WRITE_NONE: &str = "NONE";
/// `XS_WRITE_CREATE`
pub const XS_WRITE_CREATE: &str = "CREATE";
/// `XS_WRITE_CREATE_EXCL`
pub const XS_WRITE_CREATE_EXCL: &str = "CREATE|EXCL";

/// `XS_WATCH_PATH`: index of the path in an `XS_WATCH_EVENT` payload.
pub const XS_WATCH_PATH: u32 = 0;
/// `XS_WATCH_TOKEN`: index of the token.
pub const XS_WATCH_TOKEN: u32 = 1;

/// `xsd_errors[]`: the errno values a xenstore server may report, with the names
/// sent as `XS_ERROR` payloads, in the header's order (new ones go at the end).
pub const XSD_ERRORS: [(Errno, &str); 16] = [
    (Errno::EINVAL, "EINVAL"),
    (Errno::EACCES, "EACCES"),
    (Errno::EEXIST, "EEXIST"),
    (Errno::EISDIR, "EISDIR"),
    (Errno::ENOENT, "ENOENT"),
    (Errno::ENOMEM, "ENOMEM"),
    (Errno::ENOSPC, "ENOSPC"),
    (Errno::EIO, "EIO"),
    (Errno::ENOTEMPTY, "ENOTEMPTY"),
    (Errno::ENOSYS, "ENOSYS"),
    (Errno::EROFS, "EROFS"),
    (Errno::EBUSY, "EBUSY"),
    (Errno::EAGAIN, "EAGAIN"),
    (Errno::EISCONN, "EISCONN"),
    (Errno::E2BIG, "E2BIG"),
    (Errno::EPERM, "EPERM"),
];

/// The `XS_ERROR` payload name for `e`; errors outside [`XSD_ERRORS`] map to
/// `"EINVAL"` like the reference daemon does.
pub fn xsd_error_name(e: Errno) -> &'static str {
    XSD_ERRORS
        .iter()
        .find(|(n, _)| *n == e)
        .map_or("EINVAL", |&(_, s)| s)
}

/// Parses an `XS_ERROR` payload (a trailing NUL is tolerated).
pub fn xsd_error_from_name(payload: &[u8]) -> Option<Errno> {
    let name = match payload.split_last() {
        Some((0, rest)) => rest,
        _ => payload,
    };
    XSD_ERRORS
        .iter()
        .find(|(_, s)| s.as_bytes() == name)
        .map(|&(e, _)| e)
}

/// `XENSTORE_RING_SIZE`
pub const XENSTORE_RING_SIZE: usize = 1024;
/// `XENSTORE_PAYLOAD_MAX`
pub const XENSTORE_PAYLOAD_MAX: usize = 4096;
/// `XENSTORE_ABS_PATH_MAX`
pub const XENSTORE_ABS_PATH_MAX: usize = 3072;
/// `XENSTORE_REL_PATH_MAX`
pub const XENSTORE_REL_PATH_MAX: usize = 2048;
/// `XENSTORE_SERVER_FEATURE_RECONNECTION`
pub const XENSTORE_SERVER_FEATURE_RECONNECTION: u32 = 1;
/// `XENSTORE_SERVER_FEATURE_ERROR`
pub const XENSTORE_SERVER_FEATURE_ERROR: u32 = 2;
/// `XENSTORE_CONNECTED`: the steady state.
pub const XENSTORE_CONNECTED: u32 = 0;
/// `XENSTORE_RECONNECT`: reconnect in progress.
pub const XENSTORE_RECONNECT: u32 = 1;
/// `XENSTORE_ERROR_NONE`
pub const XENSTORE_ERROR_NONE: u32 = 0;
/// `XENSTORE_ERROR_COMM`: communication problem.
pub const XENSTORE_ERROR_COMM: u32 = 1;
/// `XENSTORE_ERROR_RINGIDX`: invalid ring index.
pub const XENSTORE_ERROR_RINGIDX: u32 = 2;
/// `XENSTORE_ERROR_PROTO`: protocol violation (payload too long).
pub const XENSTORE_ERROR_PROTO: u32 = 3;

/// `MASK_XENSTORE_IDX(idx)`
pub const fn mask_xenstore_idx(idx: u32) -> usize {
    idx as usize & (XENSTORE_RING_SIZE - 1)
}

/// `struct xsd_sockmsg` (16 bytes), followed by `len` payload bytes.
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct XsdSockmsg {
    /// `XS_*` (see [`XsType`]).
    pub type_: u32,
    /// Echoed in the daemon's response.
    pub req_id: u32,
    /// Transaction id (0 if none).
    pub tx_id: u32,
    /// Payload length (at most [`XENSTORE_PAYLOAD_MAX`]).
    pub len: u32,
}

impl XsdSockmsg {
    /// The checked message type.
    pub fn msg_type(&self) -> Result<XsType, u32> {
        XsType::try_from(self.type_)
    }
}

/// `struct xenstore_domain_interface` (Xen 4.17: 2076 bytes): the xenstore ring page.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenstoreDomainInterface {
    /// Requests to the xenstore daemon.
    pub req: [u8; XENSTORE_RING_SIZE],
    /// Replies and asynchronous watch events.
    pub rsp: [u8; XENSTORE_RING_SIZE],
    pub req_cons: u32,
    pub req_prod: u32,
    pub rsp_cons: u32,
    pub rsp_prod: u32,
    /// `XENSTORE_SERVER_FEATURE_*`.
    pub server_features: u32,
    /// `XENSTORE_CONNECTED` / `XENSTORE_RECONNECT`.
    pub connection: u32,
    /// `XENSTORE_ERROR_*`.
    pub error: u32,
}

zeroed_default!(XenstoreDomainInterface);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_conversions() {
        for &t in XsType::ALL {
            assert_eq!(XsType::try_from(u32::from(t)), Ok(t));
        }
        assert_eq!(XsType::ALL.len(), 22);
        assert_eq!(XsType::try_from(20), Err(20));
        assert_eq!(XsType::try_from(XS_TYPE_COUNT), Err(23));
        assert_eq!(XsType::try_from(XS_INVALID), Err(0xffff));
        assert_eq!(XsType::try_from(2), Ok(XsType::Read));
        assert_eq!(XsType::WatchEvent.name(), "XS_WATCH_EVENT");
        let m = XsdSockmsg {
            type_: XS_ERROR,
            ..Default::default()
        };
        assert_eq!(m.msg_type(), Ok(XsType::Error));
    }

    #[test]
    fn errors() {
        assert_eq!(xsd_error_name(Errno::ENOENT), "ENOENT");
        assert_eq!(xsd_error_name(Errno::EFAULT), "EINVAL");
        assert_eq!(xsd_error_from_name(b"EACCES\0"), Some(Errno::EACCES));
        assert_eq!(xsd_error_from_name(b"E2BIG"), Some(Errno::E2BIG));
        assert_eq!(xsd_error_from_name(b"EFAULT"), None);
        for (e, name) in XSD_ERRORS {
            assert_eq!(e.name(), Some(name));
        }
        assert_eq!(mask_xenstore_idx(1030), 6);
    }
}
