//! The payload unions of `xen_domctl` and `xen_sysctl`: a command's structure sits at
//! the start of a fixed-size byte area.

use zerocopy::{FromBytes, Immutable, IntoBytes};

/// Reads the start of `area` as `T` (`None` if `T` is larger than the area).
pub(crate) fn read<T: FromBytes>(area: &[u8]) -> Option<T> {
    T::read_from_prefix(area).ok().map(|(v, _)| v)
}

/// Writes `v` to the start of `area` and zeroes the rest; `false` (area untouched) if
/// `T` is larger than the area.
pub(crate) fn write<T: IntoBytes + Immutable>(area: &mut [u8], v: &T) -> bool {
    let src = v.as_bytes();
    if src.len() > area.len() {
        return false;
    }
    area.fill(0);
    area[..src.len()].copy_from_slice(src);
    true
}
