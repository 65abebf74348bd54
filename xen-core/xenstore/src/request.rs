//! Request payloads, parsed into [`Request`] (server side) and built from it (client
//! side). Strings are NUL-terminated on the wire; a missing final NUL is tolerated on
//! parse, and always written on build (except after a `XS_WRITE` value, which is raw).

use crate::{fields, parse_decimal, Decimal, WireError, XsType};

/// One request, borrowing its payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    Control(&'a [u8]),
    Directory { path: &'a [u8] },
    DirectoryPart { path: &'a [u8], offset: u64 },
    Read { path: &'a [u8] },
    GetPerms { path: &'a [u8] },
    Watch { path: &'a [u8], token: &'a [u8] },
    Unwatch { path: &'a [u8], token: &'a [u8] },
    TransactionStart,
    TransactionEnd { commit: bool },
    Introduce { domid: u32, mfn: u64, port: u32 },
    Release { domid: u32 },
    GetDomainPath { domid: u32 },
    IsDomainIntroduced { domid: u32 },
    Resume { domid: u32 },
    SetTarget { domid: u32, target: u32 },
    Write { path: &'a [u8], value: &'a [u8] },
    Mkdir { path: &'a [u8] },
    Rm { path: &'a [u8] },
    /// `perms` is the raw NUL-separated list (see [`crate::perms::parse_list`]).
    SetPerms { path: &'a [u8], perms: &'a [u8] },
    ResetWatches,
}

fn one(payload: &[u8]) -> Result<&[u8], WireError> {
    let mut f = fields(payload);
    let a = f.next().ok_or(WireError::BadPayload)?;
    Ok(a)
}

fn two(payload: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let mut f = fields(payload);
    let a = f.next().ok_or(WireError::BadPayload)?;
    let b = f.next().ok_or(WireError::BadPayload)?;
    Ok((a, b))
}

fn domid(field: &[u8]) -> Result<u32, WireError> {
    parse_decimal(field).and_then(|d| u32::try_from(d).ok()).filter(|&d| d < 0x7ff0).ok_or(WireError::BadPayload)
}

impl<'a> Request<'a> {
    /// Parses the payload of a message of type `ty`. `XS_WATCH_EVENT` and `XS_ERROR`
    /// are replies, not requests.
    pub fn parse(ty: XsType, payload: &'a [u8]) -> Result<Self, WireError> {
        use XsType as T;
        let nonempty = |p: &'a [u8]| if p.is_empty() { Err(WireError::BadPayload) } else { Ok(p) };
        Ok(match ty {
            T::Control => Request::Control(payload),
            T::Directory => Request::Directory { path: nonempty(one(payload)?)? },
            T::DirectoryPart => {
                let (path, off) = two(payload)?;
                Request::DirectoryPart { path: nonempty(path)?, offset: parse_decimal(off).ok_or(WireError::BadPayload)? }
            }
            T::Read => Request::Read { path: nonempty(one(payload)?)? },
            T::GetPerms => Request::GetPerms { path: nonempty(one(payload)?)? },
            T::Mkdir => Request::Mkdir { path: nonempty(one(payload)?)? },
            T::Rm => Request::Rm { path: nonempty(one(payload)?)? },
            T::Watch | T::Unwatch => {
                let (path, token) = two(payload)?;
                let path = nonempty(path)?;
                if ty == T::Watch {
                    Request::Watch { path, token }
                } else {
                    Request::Unwatch { path, token }
                }
            }
            T::TransactionStart => Request::TransactionStart,
            T::TransactionEnd => match one(payload)? {
                b"T" => Request::TransactionEnd { commit: true },
                b"F" => Request::TransactionEnd { commit: false },
                _ => return Err(WireError::BadPayload),
            },
            T::Introduce => {
                let mut f = fields(payload);
                let mut next = || f.next().ok_or(WireError::BadPayload);
                let d = domid(next()?)?;
                let mfn = parse_decimal(next()?).ok_or(WireError::BadPayload)?;
                let port = parse_decimal(next()?).and_then(|p| u32::try_from(p).ok()).ok_or(WireError::BadPayload)?;
                Request::Introduce { domid: d, mfn, port }
            }
            T::Release => Request::Release { domid: domid(one(payload)?)? },
            T::GetDomainPath => Request::GetDomainPath { domid: domid(one(payload)?)? },
            T::IsDomainIntroduced => Request::IsDomainIntroduced { domid: domid(one(payload)?)? },
            T::Resume => Request::Resume { domid: domid(one(payload)?)? },
            T::SetTarget => {
                let (a, b) = two(payload)?;
                Request::SetTarget { domid: domid(a)?, target: domid(b)? }
            }
            T::Write => {
                let nul = payload.iter().position(|&b| b == 0).ok_or(WireError::BadPayload)?;
                Request::Write { path: nonempty(&payload[..nul])?, value: &payload[nul + 1..] }
            }
            T::SetPerms => {
                let nul = payload.iter().position(|&b| b == 0).ok_or(WireError::BadPayload)?;
                Request::SetPerms { path: nonempty(&payload[..nul])?, perms: &payload[nul + 1..] }
            }
            T::ResetWatches => Request::ResetWatches,
            T::WatchEvent | T::Error => return Err(WireError::BadPayload),
        })
    }

    pub fn msg_type(&self) -> XsType {
        use XsType as T;
        match self {
            Request::Control(_) => T::Control,
            Request::Directory { .. } => T::Directory,
            Request::DirectoryPart { .. } => T::DirectoryPart,
            Request::Read { .. } => T::Read,
            Request::GetPerms { .. } => T::GetPerms,
            Request::Watch { .. } => T::Watch,
            Request::Unwatch { .. } => T::Unwatch,
            Request::TransactionStart => T::TransactionStart,
            Request::TransactionEnd { .. } => T::TransactionEnd,
            Request::Introduce { .. } => T::Introduce,
            Request::Release { .. } => T::Release,
            Request::GetDomainPath { .. } => T::GetDomainPath,
            Request::IsDomainIntroduced { .. } => T::IsDomainIntroduced,
            Request::Resume { .. } => T::Resume,
            Request::SetTarget { .. } => T::SetTarget,
            Request::Write { .. } => T::Write,
            Request::Mkdir { .. } => T::Mkdir,
            Request::Rm { .. } => T::Rm,
            Request::SetPerms { .. } => T::SetPerms,
            Request::ResetWatches => T::ResetWatches,
        }
    }

    /// Hands the payload to `out` piece by piece, in order.
    pub fn for_each_part(&self, out: &mut dyn FnMut(&[u8])) {
        let mut s = |b: &[u8]| {
            out(b);
            out(b"\0");
        };
        match *self {
            Request::Control(p) => out(p),
            Request::Directory { path }
            | Request::Read { path }
            | Request::GetPerms { path }
            | Request::Mkdir { path }
            | Request::Rm { path } => s(path),
            Request::DirectoryPart { path, offset } => {
                s(path);
                s(Decimal::new(offset).as_bytes());
            }
            Request::Watch { path, token } | Request::Unwatch { path, token } => {
                s(path);
                s(token);
            }
            Request::TransactionStart => s(b""),
            Request::TransactionEnd { commit } => s(if commit { b"T" } else { b"F" }),
            Request::Introduce { domid, mfn, port } => {
                s(Decimal::new(domid.into()).as_bytes());
                s(Decimal::new(mfn).as_bytes());
                s(Decimal::new(port.into()).as_bytes());
            }
            Request::Release { domid }
            | Request::GetDomainPath { domid }
            | Request::IsDomainIntroduced { domid }
            | Request::Resume { domid } => s(Decimal::new(domid.into()).as_bytes()),
            Request::SetTarget { domid, target } => {
                s(Decimal::new(domid.into()).as_bytes());
                s(Decimal::new(target.into()).as_bytes());
            }
            Request::Write { path, value } => {
                s(path);
                out(value);
            }
            Request::SetPerms { path, perms } => {
                s(path);
                out(perms);
            }
            Request::ResetWatches => {}
        }
    }

    pub fn payload_len(&self) -> usize {
        let mut n = 0;
        self.for_each_part(&mut |b| n += b.len());
        n
    }

    #[cfg(any(test, feature = "alloc"))]
    pub fn to_payload(&self) -> alloc::vec::Vec<u8> {
        let mut v = alloc::vec::Vec::new();
        self.for_each_part(&mut |b| v.extend_from_slice(b));
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_examples() {
        assert_eq!(Request::parse(XsType::Read, b"/a\0"), Ok(Request::Read { path: b"/a" }));
        assert_eq!(Request::parse(XsType::Read, b"/a"), Ok(Request::Read { path: b"/a" }));
        assert_eq!(Request::parse(XsType::Read, b""), Err(WireError::BadPayload));
        assert_eq!(Request::parse(XsType::Write, b"/a\0v\0x"), Ok(Request::Write { path: b"/a", value: b"v\0x" }));
        assert_eq!(Request::parse(XsType::Write, b"/a"), Err(WireError::BadPayload));
        assert_eq!(Request::parse(XsType::Watch, b"@releaseDomain\0t\0"), Ok(Request::Watch { path: b"@releaseDomain", token: b"t" }));
        assert_eq!(Request::parse(XsType::TransactionEnd, b"T\0"), Ok(Request::TransactionEnd { commit: true }));
        assert_eq!(Request::parse(XsType::TransactionEnd, b"X\0"), Err(WireError::BadPayload));
        assert_eq!(
            Request::parse(XsType::Introduce, b"3\x0012345\x007\0"),
            Ok(Request::Introduce { domid: 3, mfn: 12345, port: 7 })
        );
        assert_eq!(Request::parse(XsType::Release, b"x\0"), Err(WireError::BadPayload));
        assert_eq!(Request::parse(XsType::SetPerms, b"/a\0n0\0r1\0"), Ok(Request::SetPerms { path: b"/a", perms: b"n0\0r1\0" }));
        assert_eq!(Request::parse(XsType::Error, b""), Err(WireError::BadPayload));
    }

    fn path() -> impl Strategy<Value = alloc::vec::Vec<u8>> {
        "(/[a-z0-9_-]{1,6}){1,4}".prop_map(|s| s.into_bytes())
    }

    fn request() -> impl Strategy<Value = (XsType, alloc::vec::Vec<u8>)> {
        prop_oneof![
            path().prop_map(|p| (XsType::Read, Request::Read { path: &p }.to_payload())),
            (path(), proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(|(p, v)| (XsType::Write, Request::Write { path: &p, value: &v }.to_payload())),
            (path(), "[a-z0-9]{0,8}").prop_map(|(p, t)| (XsType::Watch, Request::Watch { path: &p, token: t.as_bytes() }.to_payload())),
            (0u32..0x7ff0, any::<u64>(), any::<u32>())
                .prop_map(|(d, m, port)| (XsType::Introduce, Request::Introduce { domid: d, mfn: m, port }.to_payload())),
            (path(), any::<u64>()).prop_map(|(p, o)| (XsType::DirectoryPart, Request::DirectoryPart { path: &p, offset: o }.to_payload())),
            any::<bool>().prop_map(|c| (XsType::TransactionEnd, Request::TransactionEnd { commit: c }.to_payload())),
        ]
    }

    proptest! {
        #[test]
        fn built_requests_parse_back((ty, payload) in request()) {
            let r = Request::parse(ty, &payload).unwrap();
            prop_assert_eq!(r.msg_type(), ty);
            prop_assert_eq!(r.to_payload(), payload.clone());
            prop_assert_eq!(r.payload_len(), payload.len());
        }

        #[test]
        fn parse_never_panics(t in 0u32..23, payload in proptest::collection::vec(any::<u8>(), 0..64)) {
            if let Ok(ty) = XsType::try_from(t) {
                let _ = Request::parse(ty, &payload);
            }
        }
    }
}
