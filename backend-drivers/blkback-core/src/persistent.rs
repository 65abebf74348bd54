//! Persistent grants (`feature-persistent`, `io/blkif.h`): when both ends advertise it,
//! the front-end keeps reusing a fixed pool of granted pages, so the back-end may keep
//! each one mapped after first use and move data with a plain memory copy instead of a
//! grant copy or a map/unmap per request.
//!
//! [`PersistentGrants`] is a [`GrantAccess`] over two others: a [`GrantMapper`] that maps
//! one granted frame read-write (gntdev in the dom0 daemon) and a copying
//! [`GrantAccess`] used for everything it cannot map. It keeps at most `limit`
//! mappings per ring (Linux blkback keeps up to 1056, `xen_blkif_max_pgrants`), in a
//! fixed array: no allocation, and a hostile front-end cannot make it map more. A grant
//! that does not map (bad reference, read-only grant) is copied instead, so the request
//! gets exactly the status a copying back-end gives. Dropping it (or
//! [`clear`](PersistentGrants::clear)) unmaps everything: do so when the ring
//! disconnects, before the front-end ends its grants.

use xen_abi::GrantRef;

use crate::grant::{GrantAccess, GrantError, GrantSeg};
use crate::PAGE_SIZE;

/// A granted frame mapped into the back-end, read-write; unmapped when dropped.
pub trait MappedPage {
    /// Copies `buf.len()` bytes from `offset` of the frame (`offset + len <= PAGE_SIZE`).
    fn read(&self, offset: usize, buf: &mut [u8]);
    /// Copies `data` to `offset` of the frame (`offset + len <= PAGE_SIZE`).
    fn write(&mut self, offset: usize, data: &[u8]);
}

/// Maps frames the front-end granted, one at a time, read-write.
pub trait GrantMapper {
    /// One mapping.
    type Page: MappedPage;
    /// Maps `gref`. Any failure makes [`PersistentGrants`] copy that grant instead.
    fn map(&mut self, gref: GrantRef) -> Result<Self::Page, GrantError>;
}

/// Counters of a [`PersistentGrants`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PersistentStats {
    /// Segments served from a mapping already held.
    pub hits: u64,
    /// Grants mapped (and kept).
    pub maps: u64,
    /// Mappings refused (the grant was copied instead).
    pub map_failures: u64,
    /// Segments copied because the limit was reached or the mapping failed.
    pub copies: u64,
}

/// Keeps up to `limit` (at most `N`) grants mapped; see the module documentation.
pub struct PersistentGrants<M: GrantMapper, G, const N: usize> {
    mapper: M,
    copy: G,
    refs: [u32; N],
    /// Open-addressing hash index over `refs[..len]`: slot + 1, 0 = empty. Entries are
    /// only ever added (until `clear`), so linear probing needs no tombstones.
    index: [u16; INDEX_SIZE],
    pages: [Option<M::Page>; N],
    len: usize,
    limit: usize,
    stats: PersistentStats,
}

impl<M: GrantMapper, G, const N: usize> core::fmt::Debug for PersistentGrants<M, G, N> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PersistentGrants")
            .field("len", &self.len)
            .field("limit", &self.limit)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// Entries of [`PersistentGrants`]' hash index: at least twice the most mappings it may
/// hold (`N`), so probes stay short.
const INDEX_SIZE: usize = 4096;

/// The home bucket of `gref` in the index (Fibonacci hashing).
fn bucket(gref: u32) -> usize {
    (gref.wrapping_mul(0x9e37_79b9) >> (32 - INDEX_SIZE.trailing_zeros())) as usize
}

/// Where one segment's bytes are.
enum Slot {
    Mapped(usize),
    Copy,
}

impl<M: GrantMapper, G: GrantAccess, const N: usize> PersistentGrants<M, G, N> {
    /// Maps through `mapper` up to `limit` grants (clamped to `N`), copies the rest
    /// through `copy`.
    pub fn new(mapper: M, copy: G, limit: usize) -> Self {
        const { assert!(N <= INDEX_SIZE / 2) };
        Self {
            mapper,
            copy,
            refs: [0; N],
            index: [0; INDEX_SIZE],
            pages: core::array::from_fn(|_| None),
            len: 0,
            limit: limit.min(N),
            stats: PersistentStats::default(),
        }
    }

    /// Grants mapped now.
    pub fn len(&self) -> usize {
        self.len
    }

    /// No grant is mapped.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Counters since creation.
    pub fn stats(&self) -> &PersistentStats {
        &self.stats
    }

    /// The copying access used for what is not mapped.
    pub fn copier(&mut self) -> &mut G {
        &mut self.copy
    }

    /// Unmaps every grant.
    pub fn clear(&mut self) {
        for p in &mut self.pages[..self.len] {
            *p = None;
        }
        self.index.fill(0);
        self.len = 0;
    }

    /// The index bucket holding `gref`, or the empty one where it would go.
    fn find(&self, gref: u32) -> (usize, Option<usize>) {
        let mut b = bucket(gref);
        loop {
            match self.index[b] {
                0 => return (b, None),
                e if self.refs[usize::from(e) - 1] == gref => return (b, Some(usize::from(e) - 1)),
                _ => b = (b + 1) % INDEX_SIZE,
            }
        }
    }

    /// Whether `gref` is mapped now.
    fn is_mapped(&self, gref: u32) -> bool {
        self.find(gref).1.is_some()
    }

    /// The slot of `gref`'s mapping, mapping it now if there is room (counted in the
    /// [`stats`](Self::stats) as a copy through it is); `None`: it is not mapped and cannot
    /// be (limit reached, or the mapper refused it), copy it. For callers that move data to or from the
    /// mapped page themselves ([`page`](Self::page)).
    pub fn mapped_slot(&mut self, gref: GrantRef) -> Option<usize> {
        match self.slot(gref) {
            Slot::Mapped(i) => Some(i),
            Slot::Copy => None,
        }
    }

    /// The mapping in `slot` (from [`mapped_slot`](Self::mapped_slot)).
    pub fn page(&self, slot: usize) -> Option<&M::Page> {
        self.pages.get(slot)?.as_ref()
    }

    /// The mapping of `gref`, mapping it now if there is room; `None`: copy it.
    fn slot(&mut self, gref: GrantRef) -> Slot {
        let (b, found) = self.find(gref.0);
        if let Some(i) = found {
            self.stats.hits += 1;
            return Slot::Mapped(i);
        }
        if self.len >= self.limit {
            self.stats.copies += 1;
            return Slot::Copy;
        }
        match self.mapper.map(gref) {
            Ok(page) => {
                let i = self.len;
                self.refs[i] = gref.0;
                self.pages[i] = Some(page);
                // `i < N <= INDEX_SIZE / 2`: fits u16.
                self.index[b] = (i + 1) as u16;
                self.len += 1;
                self.stats.maps += 1;
                Slot::Mapped(i)
            }
            Err(_) => {
                self.stats.map_failures += 1;
                self.stats.copies += 1;
                Slot::Copy
            }
        }
    }

    fn in_frame(offset: usize, len: usize) -> Result<(), GrantError> {
        match offset.checked_add(len) {
            Some(end) if end <= PAGE_SIZE => Ok(()),
            _ => Err(GrantError::OutOfBounds),
        }
    }

    /// Moves a batch: mapped segments by memory copy, each run of consecutive unmapped
    /// ones with one batched copy.
    fn batch(
        &mut self,
        segs: &mut [GrantSeg],
        total: usize,
        mut mapped: impl FnMut(&mut Option<M::Page>, usize, core::ops::Range<usize>),
        mut copied: impl FnMut(&mut G, &mut [GrantSeg], core::ops::Range<usize>),
    ) {
        let mut at = 0usize;
        let mut i = 0;
        while i < segs.len() {
            let s = segs[i];
            let n = usize::from(s.len);
            let Some(end) = at.checked_add(n).filter(|&e| e <= total) else {
                // Past the caller's buffer: this one and every later one.
                for s in &mut segs[i..] {
                    s.status = Err(GrantError::OutOfBounds);
                }
                return;
            };
            if let Err(e) = Self::in_frame(usize::from(s.offset), n) {
                segs[i].status = Err(e);
                at = end;
                i += 1;
                continue;
            }
            match self.slot(s.gref) {
                Slot::Mapped(p) => {
                    mapped(&mut self.pages[p], usize::from(s.offset), at..end);
                    segs[i].status = Ok(());
                    at = end;
                    i += 1;
                }
                Slot::Copy => {
                    // This and the following segments that are not mapped either (and
                    // fit the buffer), as one batch.
                    let start = i;
                    let from = at;
                    at = end;
                    i += 1;
                    while i < segs.len() {
                        let t = segs[i];
                        let Some(e) = at.checked_add(usize::from(t.len)).filter(|&e| e <= total)
                        else {
                            break;
                        };
                        if self.len < self.limit || self.is_mapped(t.gref.0) {
                            break;
                        }
                        self.stats.copies += 1;
                        at = e;
                        i += 1;
                    }
                    copied(&mut self.copy, &mut segs[start..i], from..at);
                }
            }
        }
    }
}

impl<M: GrantMapper, G: GrantAccess, const N: usize> GrantAccess for PersistentGrants<M, G, N> {
    fn copy_from_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        Self::in_frame(offset, buf.len())?;
        match self.slot(gref) {
            Slot::Mapped(i) => {
                if let Some(p) = &self.pages[i] {
                    p.read(offset, buf);
                }
                Ok(())
            }
            Slot::Copy => self.copy.copy_from_grant(gref, offset, buf),
        }
    }

    fn copy_to_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        Self::in_frame(offset, data.len())?;
        match self.slot(gref) {
            Slot::Mapped(i) => {
                if let Some(p) = &mut self.pages[i] {
                    p.write(offset, data);
                }
                Ok(())
            }
            Slot::Copy => self.copy.copy_to_grant(gref, offset, data),
        }
    }

    fn copy_from_grants(&mut self, segs: &mut [GrantSeg], buf: &mut [u8]) {
        let total = buf.len();
        // Both closures need `buf` (never at the same time).
        let buf = core::cell::RefCell::new(buf);
        self.batch(
            segs,
            total,
            |page, off, r| {
                if let Some(p) = page {
                    p.read(off, &mut buf.borrow_mut()[r]);
                }
            },
            |copy, segs, r| copy.copy_from_grants(segs, &mut buf.borrow_mut()[r]),
        );
    }

    fn copy_to_grants(&mut self, segs: &mut [GrantSeg], data: &[u8]) {
        self.batch(
            segs,
            data.len(),
            |page, off, r| {
                if let Some(p) = page {
                    p.write(off, &data[r]);
                }
            },
            |copy, segs, r| copy.copy_to_grants(segs, &data[r]),
        );
    }
}
