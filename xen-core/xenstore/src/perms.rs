//! Permission strings: `<kind><domid>` with kind `n` (none), `r` (read), `w` (write),
//! `b` (both). A node's permission list is NUL-separated; the first entry names the
//! owner and the access everyone else gets, later entries grant access to one domain.

use crate::Errno;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PermKind {
    None,
    Read,
    Write,
    Both,
}

impl PermKind {
    pub fn letter(self) -> u8 {
        match self {
            PermKind::None => b'n',
            PermKind::Read => b'r',
            PermKind::Write => b'w',
            PermKind::Both => b'b',
        }
    }
    pub fn can_read(self) -> bool {
        matches!(self, PermKind::Read | PermKind::Both)
    }
    pub fn can_write(self) -> bool {
        matches!(self, PermKind::Write | PermKind::Both)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Perm {
    pub kind: PermKind,
    pub domid: u16,
}

impl Perm {
    pub fn new(kind: PermKind, domid: u16) -> Self {
        Perm { kind, domid }
    }

    /// Parses one entry such as `r5` (a trailing NUL is tolerated).
    pub fn parse(s: &[u8]) -> Result<Perm, Errno> {
        let s = s.strip_suffix(b"\0").unwrap_or(s);
        let (&k, digits) = s.split_first().ok_or(Errno::EINVAL)?;
        let kind = match k {
            b'n' => PermKind::None,
            b'r' => PermKind::Read,
            b'w' => PermKind::Write,
            b'b' => PermKind::Both,
            _ => return Err(Errno::EINVAL),
        };
        let domid = crate::parse_decimal(digits).ok_or(Errno::EINVAL)?;
        let domid = u16::try_from(domid).map_err(|_| Errno::EINVAL)?;
        Ok(Perm { kind, domid })
    }

    /// Writes the entry (without NUL) into `out`; returns its length.
    pub fn encode_into(&self, out: &mut [u8; 8]) -> usize {
        out[0] = self.kind.letter();
        let d = crate::Decimal::new(u64::from(self.domid));
        out[1..1 + d.as_bytes().len()].copy_from_slice(d.as_bytes());
        1 + d.as_bytes().len()
    }
}

/// Parses a whole permission list (`XS_SET_PERMS` payload after the path, or an
/// `XS_GET_PERMS` reply), calling `f` per entry. An empty list is an error.
pub fn parse_list(payload: &[u8], mut f: impl FnMut(Perm)) -> Result<usize, Errno> {
    let mut n = 0;
    for field in crate::fields(payload) {
        f(Perm::parse(field)?);
        n += 1;
    }
    if n == 0 {
        return Err(Errno::EINVAL);
    }
    Ok(n)
}

/// What `domid` may do with a node carrying `perms` (Xen's `perm_for_conn`): the owner
/// (first entry) may do anything; otherwise the last matching later entry, or else the
/// first entry's kind. Privileged callers (dom0) bypass this check.
pub fn access(perms: &[Perm], domid: u16) -> PermKind {
    let Some(first) = perms.first() else { return PermKind::None };
    if first.domid == domid {
        return PermKind::Both;
    }
    perms[1..].iter().rev().find(|p| p.domid == domid).map_or(first.kind, |p| p.kind)
}

#[cfg(any(test, feature = "alloc"))]
mod owned {
    use super::*;
    use alloc::vec::Vec;

    pub fn parse_vec(payload: &[u8]) -> Result<Vec<Perm>, Errno> {
        let mut v = Vec::new();
        parse_list(payload, |p| v.push(p))?;
        Ok(v)
    }

    /// The wire form: each entry followed by a NUL.
    pub fn encode_list(perms: &[Perm]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in perms {
            let mut b = [0u8; 8];
            let n = p.encode_into(&mut b);
            out.extend_from_slice(&b[..n]);
            out.push(0);
        }
        out
    }
}

#[cfg(any(test, feature = "alloc"))]
pub use owned::{encode_list, parse_vec};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_and_access() {
        assert_eq!(Perm::parse(b"r5"), Ok(Perm::new(PermKind::Read, 5)));
        assert_eq!(Perm::parse(b"b0\0"), Ok(Perm::new(PermKind::Both, 0)));
        for bad in [&b""[..], b"x1", b"r", b"r-1", b"r65536", b"r1a"] {
            assert_eq!(Perm::parse(bad), Err(Errno::EINVAL));
        }
        let p = parse_vec(b"n0\0r5\0").unwrap();
        assert_eq!(access(&p, 0), PermKind::Both);
        assert_eq!(access(&p, 5), PermKind::Read);
        assert_eq!(access(&p, 6), PermKind::None);
        let p = parse_vec(b"w3\0").unwrap();
        assert_eq!(access(&p, 3), PermKind::Both);
        assert_eq!(access(&p, 4), PermKind::Write);
        assert_eq!(parse_vec(b""), Err(Errno::EINVAL));
        assert_eq!(encode_list(&[Perm::new(PermKind::None, 0), Perm::new(PermKind::Read, 12)]), b"n0\0r12\0");
    }

    fn perm() -> impl Strategy<Value = Perm> {
        (0u8..4, any::<u16>()).prop_map(|(k, d)| {
            let kind = [PermKind::None, PermKind::Read, PermKind::Write, PermKind::Both][k as usize];
            Perm::new(kind, d)
        })
    }

    proptest! {
        #[test]
        fn lists_round_trip(v in proptest::collection::vec(perm(), 1..8)) {
            prop_assert_eq!(parse_vec(&encode_list(&v)).unwrap(), v);
        }

        #[test]
        fn parser_never_panics(b in proptest::collection::vec(any::<u8>(), 0..32)) {
            let _ = parse_vec(&b);
        }
    }
}
