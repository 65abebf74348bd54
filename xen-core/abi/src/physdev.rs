//! `physdev.h`: the sub-ops a PV kernel uses for its I/O privilege level and bitmap.
#![allow(non_upper_case_globals)]

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `PHYSDEVOP_set_iopl`: arg = [`PhysdevSetIopl`].
pub const PHYSDEVOP_set_iopl: u32 = 6;
/// `PHYSDEVOP_set_iobitmap`: arg = [`PhysdevSetIobitmap`].
pub const PHYSDEVOP_set_iobitmap: u32 = 7;

/// `struct physdev_set_iopl` (4 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PhysdevSetIopl {
    /// 0..=3.
    pub iopl: u32,
}

/// `struct physdev_set_iobitmap` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct PhysdevSetIobitmap {
    /// Guest pointer to the bitmap.
    pub bitmap: u64,
    pub nr_ports: u32,
    pub _pad0: [u8; 4],
}
