//! Access to frames the front-end granted.

use xen_abi::GrantRef;

/// Why a grant could not be used. Every variant makes the request fail with
/// `BLKIF_RSP_ERROR` (as a failed grant map does in Linux's blkback).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// The reference is not (or no longer) a valid grant to us (`GNTST_bad_gntref`).
    BadRef,
    /// The grant is read-only and the back-end needed to write (`GNTST_permission_denied`).
    ReadOnly,
    /// `offset + len` runs past the frame (`GNTST_bad_copy_arg`).
    OutOfBounds,
    /// Any other failure, with Xen's `GNTST_*` status when there is one.
    Other(i16),
}

/// Copies to and from frames granted by the front-end.
///
/// A pv-guest back-end implements this with `GNTTABOP_copy`; a Linux-userspace one with
/// `/dev/xen/gntdev` (`IOCTL_GNTDEV_GRANT_COPY`, or a map + memcpy, possibly through a
/// persistent-grant cache). `offset + buf.len()` never exceeds [`PAGE_SIZE`](crate::PAGE_SIZE)
/// in calls made by [`Backend`](crate::Backend); implementations should still check.
pub trait GrantAccess {
    /// Copies `buf.len()` bytes starting at `offset` within the frame granted as `gref`
    /// into `buf` (read access to the grant suffices).
    fn copy_from_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError>;

    /// Copies `data` into the frame granted as `gref`, starting at `offset` (the grant
    /// must allow writing).
    fn copy_to_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError>;
}

impl<G: GrantAccess + ?Sized> GrantAccess for &mut G {
    fn copy_from_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        (**self).copy_from_grant(gref, offset, buf)
    }
    fn copy_to_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        (**self).copy_to_grant(gref, offset, data)
    }
}
