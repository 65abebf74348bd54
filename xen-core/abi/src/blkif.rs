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
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifRequestSegment {
    pub gref: u32,
    pub first_sect: u8,
    pub last_sect: u8,
    pub _pad: [u8; 2],
}

/// `struct blkif_request` (112 bytes).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
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
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifResponse {
    pub id: u64,
    pub operation: u8,
    pub _pad0: u8,
    pub status: i16,
    pub _pad1: [u8; 4],
}

/// `BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST`.
pub const BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST: usize = 8;
/// `BLKIF_DISCARD_SECURE`: flag of [`BlkifRequestDiscard::flag`].
pub const BLKIF_DISCARD_SECURE: u8 = 1 << 0;

/// `VDISK_CDROM` (backend `info` node).
pub const VDISK_CDROM: u32 = 0x1;
/// `VDISK_REMOVABLE`
pub const VDISK_REMOVABLE: u32 = 0x2;
/// `VDISK_READONLY`
pub const VDISK_READONLY: u32 = 0x4;

/// Segments described by one indirect page (`PAGE_SIZE / sizeof(blkif_request_segment)`).
pub const BLKIF_SEGS_PER_INDIRECT_FRAME: usize = 4096 / core::mem::size_of::<BlkifRequestSegment>();

/// `struct blkif_request_discard` (32 bytes; occupies a 112-byte ring slot).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifRequestDiscard {
    /// `BLKIF_OP_DISCARD`.
    pub operation: u8,
    /// `BLKIF_DISCARD_SECURE` or zero.
    pub flag: u8,
    pub handle: u16,
    pub _pad: [u8; 4],
    pub id: u64,
    pub sector_number: u64,
    pub nr_sectors: u64,
}

/// `struct blkif_request_indirect` (x86-64: 64 bytes; occupies a 112-byte ring slot).
#[repr(C)]
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, FromBytes, IntoBytes, Immutable, KnownLayout,
)]
pub struct BlkifRequestIndirect {
    /// `BLKIF_OP_INDIRECT`.
    pub operation: u8,
    /// `BLKIF_OP_{READ,WRITE}`.
    pub indirect_op: u8,
    pub nr_segments: u16,
    pub _pad0: [u8; 4],
    pub id: u64,
    pub sector_number: u64,
    pub handle: u16,
    pub _pad1: [u8; 2],
    /// Grant refs of pages holding `blkif_request_segment` arrays.
    pub indirect_grefs: [u32; BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST],
    pub _pad2: [u8; 4],
}

/// Bytes of one blkif ring slot (`union blkif_sring_entry`): the largest request.
pub const BLKIF_RING_ENTRY_SIZE: usize = core::mem::size_of::<BlkifRequest>();
