//! Shared helpers for the integration tests: an aligned page and blkif payloads.
#![allow(dead_code)]

use std::boxed::Box;
use xen_abi::blkif::{BlkifRequest, BlkifRequestSegment, BlkifResponse};

pub const PAGE_SIZE: usize = 4096;

/// One 4 KiB page, page aligned, heap allocated.
#[repr(C, align(4096))]
pub struct Page(pub [u8; PAGE_SIZE]);

impl Page {
    pub fn new() -> Box<Page> {
        Box::new(Page([0; PAGE_SIZE]))
    }
    pub fn ptr(&mut self) -> *mut u8 {
        self.0.as_mut_ptr()
    }
}

/// Deterministic request contents derived from `id`.
pub fn make_request(id: u64) -> BlkifRequest {
    let mut seg = [BlkifRequestSegment::default(); 11];
    for (k, s) in seg.iter_mut().enumerate() {
        s.gref = (id as u32) ^ ((k as u32).wrapping_mul(0x0101_0101));
        s.first_sect = ((id as usize + k) & 7) as u8;
        s.last_sect = (((id as usize + k) >> 3) & 7) as u8;
    }
    BlkifRequest {
        operation: (id % 7) as u8,
        nr_segments: (id % 12) as u8,
        handle: (id >> 7) as u16 ^ 0x5a5a,
        _pad: [0; 4],
        id,
        sector_number: id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        seg,
    }
}

pub fn make_response(req: &BlkifRequest) -> BlkifResponse {
    BlkifResponse {
        id: req.id,
        operation: req.operation,
        _pad0: 0,
        status: (req.id % 3) as i16 - 2,
        _pad1: [0; 4],
    }
}
