//! Copies between the front-end's granted frames and private memory, in batches (one
//! `GNTTABOP_copy` / `IOCTL_GNTDEV_GRANT_COPY` for all the slots of a packet).

use xen_abi::GrantRef;

/// Why a grant could not be used (every variant fails its request), from its `GNTST_*`
/// status.
pub use xen_abi::grant_table::GrantError;

/// Which way a batch goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyDir {
    /// From the granted frames into the local buffer (transmit path).
    FromGrant,
    /// From the local buffer into the granted frames (receive path).
    ToGrant,
}

/// One piece of a batch: `len` bytes at `offset` of the frame granted as `gref`, and
/// at `local` in the local buffer. `status` is filled in by the copier.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CopySeg {
    pub gref: GrantRef,
    pub offset: u16,
    pub len: u16,
    pub local: usize,
    pub status: Result<(), GrantError>,
}

impl CopySeg {
    /// A segment not copied yet.
    pub const fn new(gref: GrantRef, offset: u16, len: u16, local: usize) -> Self {
        Self {
            gref,
            offset,
            len,
            local,
            status: Ok(()),
        }
    }
}

impl Default for CopySeg {
    fn default() -> Self {
        Self::new(GrantRef(0), 0, 0, 0)
    }
}

/// Copies to and from frames granted by the front-end.
///
/// [`Netback`](crate::Netback) only passes segments with `offset + len <=`
/// [`PAGE_SIZE`](crate::PAGE_SIZE) and `local + len <= local_buf.len()`;
/// implementations should still check and report [`GrantError::OutOfBounds`] rather than
/// panic.
pub trait GrantAccess {
    /// Performs every segment of `segs` in direction `dir` against `local`, setting each
    /// segment's `status` (a failed segment does not stop the others).
    fn copy(&mut self, dir: CopyDir, segs: &mut [CopySeg], local: &mut [u8]);
}

impl<G: GrantAccess + ?Sized> GrantAccess for &mut G {
    fn copy(&mut self, dir: CopyDir, segs: &mut [CopySeg], local: &mut [u8]) {
        (**self).copy(dir, segs, local)
    }
}
