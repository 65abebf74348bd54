//! xenstore paths: Xen's rules (`tools/xenstore/xenstored_core.c`, `is_valid_nodename`).
//!
//! A valid absolute path starts with `/`, has no empty component (`//`), no trailing `/`
//! (except the root itself), only the characters `A-Za-z0-9-/_@`, and at most
//! [`XENSTORE_ABS_PATH_MAX`] bytes. Relative paths are resolved under
//! `/local/domain/<domid>` and limited to [`XENSTORE_REL_PATH_MAX`] bytes. Special paths
//! start with `@` (`@introduceDomain`, `@releaseDomain`) and only make sense for watches.

use crate::Errno;
use xen_abi::xenstore::{XENSTORE_ABS_PATH_MAX, XENSTORE_REL_PATH_MAX};

pub const INTRODUCE_DOMAIN: &str = "@introduceDomain";
pub const RELEASE_DOMAIN: &str = "@releaseDomain";

fn valid_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'/' | b'_' | b'@')
}

/// Checks the syntax of an absolute node path.
pub fn check_absolute(path: &[u8]) -> Result<(), Errno> {
    if path.first() != Some(&b'/') || path.len() > XENSTORE_ABS_PATH_MAX {
        return Err(Errno::EINVAL);
    }
    if path.len() > 1 && path.ends_with(b"/") {
        return Err(Errno::EINVAL);
    }
    if path.windows(2).any(|w| w == b"//") || !path.iter().all(|&c| valid_char(c)) {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

/// Checks a path as a request carries it: absolute, relative, or (if `special_ok`) one
/// of the `@` watch paths.
pub fn check_request_path(path: &[u8], special_ok: bool) -> Result<(), Errno> {
    match path.first() {
        None => Err(Errno::EINVAL),
        Some(b'/') => check_absolute(path),
        Some(b'@') => {
            if special_ok && path.len() <= XENSTORE_ABS_PATH_MAX && path.iter().all(|&c| valid_char(c)) {
                Ok(())
            } else {
                Err(Errno::EINVAL)
            }
        }
        Some(_) => {
            if path.len() > XENSTORE_REL_PATH_MAX || path.ends_with(b"/") {
                return Err(Errno::EINVAL);
            }
            if path.windows(2).any(|w| w == b"//") || !path.iter().all(|&c| valid_char(c)) {
                return Err(Errno::EINVAL);
            }
            Ok(())
        }
    }
}

/// Whether `path` is `ancestor` or lies below it (component-wise: `/a/bc` is not below
/// `/a/b`). Watches fire for their path and everything below it.
pub fn is_at_or_below(path: &str, ancestor: &str) -> bool {
    if ancestor == "/" {
        return path.starts_with('/');
    }
    match path.strip_prefix(ancestor) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// The parent of an absolute path (`None` for the root).
pub fn parent(path: &str) -> Option<&str> {
    if path == "/" {
        return None;
    }
    let i = path.rfind('/')?;
    Some(if i == 0 { "/" } else { &path[..i] })
}

/// The last component of an absolute path (`""` for the root).
pub fn basename(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or("")
}

/// `/local/domain/<domid>`, into `out`; returns the length written.
pub fn domain_path_into(domid: u32, out: &mut [u8; 32]) -> usize {
    let prefix = b"/local/domain/";
    out[..prefix.len()].copy_from_slice(prefix);
    let d = crate::Decimal::new(u64::from(domid));
    let n = prefix.len() + d.as_bytes().len();
    out[prefix.len()..n].copy_from_slice(d.as_bytes());
    n
}

#[cfg(any(test, feature = "alloc"))]
mod owned {
    use super::*;
    use alloc::format;
    use alloc::string::String;

    /// `/local/domain/<domid>`.
    pub fn domain_path(domid: u32) -> String {
        format!("/local/domain/{domid}")
    }

    /// The absolute form of a request path for a connection of `domid`, checked.
    pub fn resolve(path: &[u8], domid: u32, special_ok: bool) -> Result<String, Errno> {
        check_request_path(path, special_ok)?;
        let s = core::str::from_utf8(path).map_err(|_| Errno::EINVAL)?;
        let abs = if s.starts_with('/') || s.starts_with('@') { String::from(s) } else { format!("{}/{s}", domain_path(domid)) };
        if abs.len() > XENSTORE_ABS_PATH_MAX {
            return Err(Errno::EINVAL);
        }
        Ok(abs)
    }
}

#[cfg(any(test, feature = "alloc"))]
pub use owned::{domain_path, resolve};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn xen_syntax() {
        for ok in ["/", "/local", "/local/domain/0/name", "/a-b_c@d/1"] {
            assert_eq!(check_absolute(ok.as_bytes()), Ok(()), "{ok}");
        }
        for bad in ["", "local", "/a/", "//", "/a//b", "/a b", "/a.b", "/ä"] {
            assert_eq!(check_absolute(bad.as_bytes()), Err(Errno::EINVAL), "{bad}");
        }
        assert_eq!(check_request_path(b"device/vbd", false), Ok(()));
        assert_eq!(check_request_path(b"@releaseDomain", true), Ok(()));
        assert_eq!(check_request_path(b"@releaseDomain", false), Err(Errno::EINVAL));
        let long = alloc::vec![b'a'; XENSTORE_REL_PATH_MAX + 1];
        assert_eq!(check_request_path(&long, false), Err(Errno::EINVAL));
    }

    #[test]
    fn relations() {
        assert!(is_at_or_below("/a/b", "/a"));
        assert!(is_at_or_below("/a", "/a"));
        assert!(!is_at_or_below("/ab", "/a"));
        assert!(is_at_or_below("/x", "/"));
        assert_eq!(parent("/a/b"), Some("/a"));
        assert_eq!(parent("/a"), Some("/"));
        assert_eq!(parent("/"), None);
        assert_eq!(basename("/a/b"), "b");
        assert_eq!(resolve(b"name", 5, false).unwrap(), "/local/domain/5/name");
        assert_eq!(resolve(b"/tool", 5, false).unwrap(), "/tool");
        let mut buf = [0u8; 32];
        let n = domain_path_into(65535, &mut buf);
        assert_eq!(&buf[..n], b"/local/domain/65535");
    }

    proptest! {
        #[test]
        fn valid_paths_resolve_to_valid_absolute_paths(p in "[a-z0-9_@-]{1,8}(/[a-z0-9_@-]{1,8}){0,5}", d in 0u32..70000) {
            if !p.starts_with('@') {
                let abs = resolve(p.as_bytes(), d, false).unwrap();
                prop_assert_eq!(check_absolute(abs.as_bytes()), Ok(()));
                prop_assert!(is_at_or_below(&abs, &domain_path(d)));
            }
        }

        #[test]
        fn checker_never_panics(p in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = check_request_path(&p, true);
            let _ = check_absolute(&p);
        }

        #[test]
        fn parent_is_ancestor(p in "(/[a-z]{1,4}){1,6}") {
            let par = parent(&p).unwrap();
            prop_assert!(is_at_or_below(&p, par));
            prop_assert_eq!(check_absolute(par.as_bytes()), Ok(()));
        }
    }
}
