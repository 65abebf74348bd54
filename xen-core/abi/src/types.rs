//! Newtypes for the integer kinds that must not be mixed up: machine frames,
//! guest frames, domain ids, grant references, event-channel ports and vCPU ids.
//!
//! The wire structures in this crate keep C's plain integer fields (guest memory can
//! hold any bit pattern); these types are for the code that interprets them.
// zerocopy's derives on tuple structs emit helper types without `Debug`; every
// public type in this module derives `Debug` itself.
#![allow(missing_debug_implementations)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

macro_rules! newtype {
    ($(#[$doc:meta])* $name:ident($inner:ty)) => {
        $(#[$doc])*
        #[repr(transparent)]
        #[derive(
            Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord,
            FromBytes, IntoBytes, Immutable, KnownLayout,
        )]
        pub struct $name(pub $inner);

        impl $name {
            /// The raw value.
            pub const fn get(self) -> $inner {
                self.0
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }

        impl From<$name> for $inner {
            fn from(v: $name) -> $inner {
                v.0
            }
        }
    };
}

/// Page size of every frame number below (4 KiB).
pub const PAGE_SHIFT: u32 = 12;
/// `XEN_PAGE_SIZE`.
pub const PAGE_SIZE: usize = 1 << PAGE_SHIFT;

newtype! {
    /// A machine frame number (host-physical address >> 12).
    Mfn(u64)
}
newtype! {
    /// A guest frame number: the frame number a guest writes into PTEs and
    /// hypercall arguments. For PV guests GFN == MFN.
    Gfn(u64)
}
newtype! {
    /// A guest pseudo-physical frame number (index into the guest's P2M).
    Pfn(u64)
}
newtype! {
    /// `domid_t`: a domain id; values >= [`DomId::FIRST_RESERVED`] are special.
    DomId(u16)
}
newtype! {
    /// `grant_ref_t`: index into a domain's grant table.
    GrantRef(u32)
}
newtype! {
    /// `evtchn_port_t`: an event-channel port (0 is reserved, never allocated).
    EvtchnPort(u32)
}
newtype! {
    /// A virtual CPU id within a domain.
    VcpuId(u32)
}

macro_rules! frame_addr {
    ($($name:ident),*) => {$(
        impl $name {
            /// The byte address of the frame's first byte.
            pub const fn addr(self) -> u64 {
                self.0 << PAGE_SHIFT
            }
            /// The frame containing byte address `addr`.
            pub const fn containing(addr: u64) -> Self {
                Self(addr >> PAGE_SHIFT)
            }
        }
    )*};
}
frame_addr!(Mfn, Gfn, Pfn);

impl Mfn {
    /// `INVALID_MFN` (all ones).
    pub const INVALID: Mfn = Mfn(!0);
    /// For PV guests a GFN is an MFN.
    pub const fn to_pv_gfn(self) -> Gfn {
        Gfn(self.0)
    }
}

impl Gfn {
    /// `INVALID_GFN` (all ones).
    pub const INVALID: Gfn = Gfn(!0);
    /// For PV guests a GFN is an MFN.
    pub const fn to_pv_mfn(self) -> Mfn {
        Mfn(self.0)
    }
}

impl DomId {
    /// `DOMID_FIRST_RESERVED`: ids at or above this cannot name ordinary domains.
    pub const FIRST_RESERVED: DomId = DomId(0x7FF0);
    /// `DOMID_SELF`: the calling domain.
    pub const SELF: DomId = DomId(0x7FF0);
    /// `DOMID_IO`: restricts page-table updates to I/O memory.
    pub const IO: DomId = DomId(0x7FF1);
    /// `DOMID_XEN`: privileged mappings of Xen's heap (e.g. the M2P).
    pub const XEN: DomId = DomId(0x7FF2);
    /// `DOMID_COW`: owner of sharable pages.
    pub const COW: DomId = DomId(0x7FF3);
    /// `DOMID_INVALID`: unknown owner.
    pub const INVALID: DomId = DomId(0x7FF4);
    /// `DOMID_IDLE`: the idle domain.
    pub const IDLE: DomId = DomId(0x7FFF);
    /// `DOMID_MASK`: mask of valid domain id bits.
    pub const MASK: u16 = 0x7FFF;
    /// Domain 0.
    pub const DOM0: DomId = DomId(0);

    /// True for ids that can name an ordinary domain (`< DOMID_FIRST_RESERVED`).
    pub const fn is_ordinary(self) -> bool {
        self.0 < Self::FIRST_RESERVED.0
    }
}

impl EvtchnPort {
    /// Port 0 is never allocated.
    pub const RESERVED: EvtchnPort = EvtchnPort(0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions() {
        assert_eq!(Mfn(0x1234).addr(), 0x1234000);
        assert_eq!(Pfn::containing(0x1fff), Pfn(1));
        assert_eq!(Mfn(5).to_pv_gfn().to_pv_mfn(), Mfn(5));
        assert_eq!(u16::from(DomId::SELF), 0x7FF0);
        assert!(DomId(7).is_ordinary());
        assert!(!DomId::SELF.is_ordinary());
        assert_eq!(GrantRef::from(3).get(), 3);
        assert_eq!(EvtchnPort::default(), EvtchnPort::RESERVED);
        assert_eq!(VcpuId(1), VcpuId::from(1));
    }
}
