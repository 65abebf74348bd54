//! Access to frames the front-end granted.

use xen_abi::GrantRef;

/// Why a grant could not be used (every variant fails its request), from its `GNTST_*`
/// status.
pub use xen_abi::grant_table::GrantError;

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

    /// Copies every segment of `segs` out of its grant into `buf` (back to back, in
    /// order), setting each segment's `status`. One batch is one `GNTTABOP_copy` /
    /// `IOCTL_GNTDEV_GRANT_COPY` for implementations that can; the default copies segment
    /// by segment. `buf` shorter than the segments' total: the segments past its end fail
    /// with [`GrantError::OutOfBounds`].
    fn copy_from_grants(&mut self, segs: &mut [GrantSeg], buf: &mut [u8]) {
        let len = buf.len();
        each_part(segs, buf, len, |buf, gref, off, r| {
            self.copy_from_grant(gref, off, &mut buf[r])
        });
    }

    /// Copies `data` (back to back, in order) into the grants of `segs`, setting each
    /// segment's `status`; as [`copy_from_grants`](Self::copy_from_grants).
    fn copy_to_grants(&mut self, segs: &mut [GrantSeg], data: &[u8]) {
        each_part(segs, &mut &*data, data.len(), |data, gref, off, r| {
            self.copy_to_grant(gref, off, &data[r])
        });
    }
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
    fn copy_from_grants(&mut self, segs: &mut [GrantSeg], buf: &mut [u8]) {
        (**self).copy_from_grants(segs, buf)
    }
    fn copy_to_grants(&mut self, segs: &mut [GrantSeg], data: &[u8]) {
        (**self).copy_to_grants(segs, data)
    }
}

/// One segment of a batched grant copy: `len` bytes at `offset` within the frame granted
/// as `gref`. The data of the segments of one batch lie back to back in the caller's
/// buffer, in order. The implementation sets `status` (one status per segment, so a
/// failure is charged to exactly the request that owns the segment).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GrantSeg {
    /// The grant.
    pub gref: GrantRef,
    /// Byte offset within the granted frame.
    pub offset: u16,
    /// Bytes to copy (`offset + len` at most [`PAGE_SIZE`](crate::PAGE_SIZE)).
    pub len: u16,
    /// Set by the copy: `Ok(())` once this segment's bytes moved.
    pub status: Result<(), GrantError>,
}

impl GrantSeg {
    /// A segment not yet copied (`status` = `Err(GrantError::Other(0))` until the copy
    /// sets it, so a segment an implementation forgot is never taken as done).
    pub const fn new(gref: GrantRef, offset: u16, len: u16) -> Self {
        Self {
            gref,
            offset,
            len,
            status: Err(GrantError::Other(0)),
        }
    }
}

/// Splits `buf` along `segs` (back to back) and calls `f` on each segment and its part;
/// segments past the end of `buf` get [`GrantError::OutOfBounds`].
fn each_part<B: ?Sized>(
    segs: &mut [GrantSeg],
    buf: &mut B,
    len: usize,
    mut f: impl FnMut(&mut B, GrantRef, usize, core::ops::Range<usize>) -> Result<(), GrantError>,
) {
    let mut at = 0usize;
    for s in segs {
        let n = usize::from(s.len);
        s.status = match at.checked_add(n) {
            Some(end) if end <= len => {
                let r = f(buf, s.gref, usize::from(s.offset), at..end);
                at = end;
                r
            }
            _ => Err(GrantError::OutOfBounds),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame of 4096 bytes per reference 1..=3; reference 3 is read-only.
    struct Frames([[u8; 4096]; 4]);

    impl GrantAccess for Frames {
        fn copy_from_grant(
            &mut self,
            g: GrantRef,
            off: usize,
            buf: &mut [u8],
        ) -> Result<(), GrantError> {
            let f = self
                .0
                .get(g.0 as usize)
                .filter(|_| g.0 != 0)
                .ok_or(GrantError::BadRef)?;
            let end = off
                .checked_add(buf.len())
                .filter(|&e| e <= 4096)
                .ok_or(GrantError::OutOfBounds)?;
            buf.copy_from_slice(&f[off..end]);
            Ok(())
        }
        fn copy_to_grant(
            &mut self,
            g: GrantRef,
            off: usize,
            data: &[u8],
        ) -> Result<(), GrantError> {
            if g.0 == 3 {
                return Err(GrantError::ReadOnly);
            }
            let f = self
                .0
                .get_mut(g.0 as usize)
                .filter(|_| g.0 != 0)
                .ok_or(GrantError::BadRef)?;
            let end = off
                .checked_add(data.len())
                .filter(|&e| e <= 4096)
                .ok_or(GrantError::OutOfBounds)?;
            f[off..end].copy_from_slice(data);
            Ok(())
        }
    }

    #[test]
    fn default_batches_split_back_to_back_with_per_segment_status() {
        let mut fr = Frames([[0; 4096], [1; 4096], [2; 4096], [3; 4096]]);
        let mut segs = [
            GrantSeg::new(GrantRef(1), 512, 1024),
            GrantSeg::new(GrantRef(9), 0, 512), // bad reference: its bytes are skipped
            GrantSeg::new(GrantRef(2), 0, 512),
            GrantSeg::new(GrantRef(3), 4000, 512), // runs past its frame
            GrantSeg::new(GrantRef(2), 0, 512),    // runs past the buffer
        ];
        let mut buf = [0xffu8; 1024 + 512 + 512 + 512 + 100];
        fr.copy_from_grants(&mut segs, &mut buf);
        let st: std::vec::Vec<_> = segs.iter().map(|s| s.status).collect();
        assert_eq!(
            st,
            [
                Ok(()),
                Err(GrantError::BadRef),
                Ok(()),
                Err(GrantError::OutOfBounds),
                Err(GrantError::OutOfBounds)
            ]
        );
        assert!(buf[..1024].iter().all(|&b| b == 1));
        assert!(buf[1024..1536].iter().all(|&b| b == 0xff));
        assert!(buf[1536..2048].iter().all(|&b| b == 2));

        let mut segs = [
            GrantSeg::new(GrantRef(1), 0, 8),
            GrantSeg::new(GrantRef(3), 0, 8),
            GrantSeg::new(GrantRef(2), 8, 8),
        ];
        let data: std::vec::Vec<u8> = (0..24).collect();
        fr.copy_to_grants(&mut segs, &data);
        assert_eq!(
            segs.map(|s| s.status),
            [Ok(()), Err(GrantError::ReadOnly), Ok(())]
        );
        assert_eq!(&fr.0[1][..8], &data[..8]);
        assert_eq!(&fr.0[2][8..16], &data[16..24]);
        // A fresh segment is never taken as done.
        assert!(GrantSeg::new(GrantRef(1), 0, 0).status.is_err());
    }
}
