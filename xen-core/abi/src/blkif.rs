//! `io/blkif.h`: the block device request/response layouts.

use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout};

/// `BLKIF_MAX_SEGMENTS_PER_REQUEST`.
pub const BLKIF_MAX_SEGMENTS_PER_REQUEST: usize = 11;

pub const BLKIF_OP_READ: u8 = 0;
pub const BLKIF_OP_WRITE: u8 = 1;
pub const BLKIF_OP_WRITE_BARRIER: u8 = 2;
pub const BLKIF_OP_FLUSH_DISKCACHE: u8 = 3;
pub const BLKIF_OP_RESERVED_1: u8 = 4;
pub const BLKIF_OP_DISCARD: u8 = 5;
pub const BLKIF_OP_INDIRECT: u8 = 6;

pub const BLKIF_RSP_EOPNOTSUPP: i16 = -2;
pub const BLKIF_RSP_ERROR: i16 = -1;
pub const BLKIF_RSP_OKAY: i16 = 0;

/// `struct blkif_request_segment`: one granted frame and the inclusive 512-byte sector
/// range used within it.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BlkifRequestSegment {
    pub gref: u32,
    pub first_sect: u8,
    pub last_sect: u8,
    pub _pad: [u8; 2],
}

/// `struct blkif_request` (112 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BlkifRequest {
    pub operation: u8,
    pub nr_segments: u8,
    pub handle: u16,
    pub _pad: [u8; 4],
    pub id: u64,
    pub sector_number: u64,
    pub seg: [BlkifRequestSegment; BLKIF_MAX_SEGMENTS_PER_REQUEST],
}

/// `struct blkif_response` (16 bytes).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout)]
pub struct BlkifResponse {
    pub id: u64,
    pub operation: u8,
    pub _pad0: u8,
    pub status: i16,
    pub _pad1: [u8; 4],
}
