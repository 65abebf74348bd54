//! Reply payloads.

use crate::{fields, xsd_error_from_name, xsd_error_name, Errno};

/// The payload of a successful write-like request.
pub const OK: &[u8] = b"OK\0";

/// The `XS_ERROR` payload for `e` (an errno name and a NUL).
pub fn error_payload(e: Errno, out: &mut [u8; 16]) -> usize {
    let name = xsd_error_name(e).as_bytes();
    out[..name.len()].copy_from_slice(name);
    out[name.len()] = 0;
    name.len() + 1
}

/// Decodes an `XS_ERROR` payload; unknown names read as `EINVAL` (what libxenstore does).
pub fn error_from_payload(payload: &[u8]) -> Errno {
    xsd_error_from_name(payload).unwrap_or(Errno::EINVAL)
}

/// Whether a reply payload is `OK` (with or without its NUL).
pub fn is_ok(payload: &[u8]) -> bool {
    payload == OK || payload == b"OK"
}

/// A watch event's path and token (`path\0token\0`).
pub fn watch_event(payload: &[u8]) -> Option<(&[u8], &[u8])> {
    let mut f = fields(payload);
    let path = f.next()?;
    let token = f.next()?;
    Some((path, token))
}

/// Builds a watch event payload into `out`; `None` if it does not fit.
pub fn watch_event_into<'a>(path: &[u8], token: &[u8], out: &'a mut [u8]) -> Option<&'a [u8]> {
    let n = path.len() + token.len() + 2;
    let o = out.get_mut(..n)?;
    o[..path.len()].copy_from_slice(path);
    o[path.len()] = 0;
    o[path.len() + 1..n - 1].copy_from_slice(token);
    o[n - 1] = 0;
    Some(o)
}

/// A number reply such as a transaction id (`"12\0"`).
pub fn number(payload: &[u8]) -> Option<u64> {
    crate::parse_decimal(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        let mut b = [0u8; 16];
        let n = error_payload(Errno::ENOENT, &mut b);
        assert_eq!(&b[..n], b"ENOENT\0");
        assert_eq!(error_from_payload(&b[..n]), Errno::ENOENT);
        assert_eq!(error_from_payload(b"EWHAT\0"), Errno::EINVAL);
        let mut out = [0u8; 32];
        let ev = watch_event_into(b"/a", b"tok", &mut out).unwrap();
        assert_eq!(ev, b"/a\0tok\0");
        assert_eq!(watch_event(ev), Some((&b"/a"[..], &b"tok"[..])));
        assert_eq!(watch_event(b"/a"), None);
        assert!(watch_event_into(b"/abc", b"t", &mut [0u8; 4]).is_none());
        assert_eq!(number(b"12\0"), Some(12));
        assert!(is_ok(b"OK\0"));
    }
}
