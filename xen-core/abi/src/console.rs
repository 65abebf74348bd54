//! `io/console.h`: the PV console ring page shared between a guest and its console
//! backend (mapped from `start_info.console.domU.mfn`).

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `sizeof(xencons_interface.in)`: backend -> guest bytes.
pub const XENCONS_IN_SIZE: usize = 1024;
/// `sizeof(xencons_interface.out)`: guest -> backend bytes.
pub const XENCONS_OUT_SIZE: usize = 2048;

/// `XENCONSOLE_CONNECTED`. Newer than 4.17: Xen 4.19+ headers add a `connection`
/// byte right after the 4.17 structure (at offset [`XENCONS_CONNECTION_OFFSET`]).
pub const XENCONSOLE_CONNECTED: u8 = 0;
/// `XENCONSOLE_DISCONNECTED` (see [`XENCONSOLE_CONNECTED`]).
pub const XENCONSOLE_DISCONNECTED: u8 = 1;
/// Offset of the post-4.17 `connection` byte within the ring page.
pub const XENCONS_CONNECTION_OFFSET: usize = core::mem::size_of::<XenconsInterface>();

/// `struct xencons_interface` (Xen 4.17: 3088 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct XenconsInterface {
    /// Backend -> guest ring.
    pub in_: [u8; XENCONS_IN_SIZE],
    /// Guest -> backend ring.
    pub out: [u8; XENCONS_OUT_SIZE],
    pub in_cons: u32,
    pub in_prod: u32,
    pub out_cons: u32,
    pub out_prod: u32,
}

zeroed_default!(XenconsInterface);

/// `MASK_XENCONS_IDX(idx, in)`
pub const fn mask_xencons_in_idx(idx: u32) -> usize {
    idx as usize & (XENCONS_IN_SIZE - 1)
}

/// `MASK_XENCONS_IDX(idx, out)`
pub const fn mask_xencons_out_idx(idx: u32) -> usize {
    idx as usize & (XENCONS_OUT_SIZE - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(mask_xencons_in_idx(1025), 1);
        assert_eq!(mask_xencons_out_idx(2049), 1);
        assert_eq!(XENCONS_CONNECTION_OFFSET, 3088);
    }
}
