//! The Xen 4.17 public interface as seen by a 64-bit PV guest, its toolstack and its
//! split drivers: the one Rust copy of `xen/include/public`.
//!
//! Every `#[repr(C)]` type here is checked field by field against the real C headers
//! (Debian's `libxen-dev`) by `tests/layout.rs`. Padding is explicit so that every type
//! can be read from and written to guest memory as plain bytes (`zerocopy`).
#![no_std]
#![forbid(unsafe_code)]

pub mod blkif;
