//! Request processing: consume requests from the ring, check them, move data between the
//! front-end's granted frames and the store, answer.
//!
//! Statuses, as Linux's `xen-blkback` gives them (`__do_block_io_op`,
//! `dispatch_rw_block_io`, `dispatch_discard_io`, `dispatch_other_io`,
//! `__end_block_io_op`); the response echoes the request's `id` and, for
//! read/write/flush/barrier/indirect, the *effective* operation (`indirect_op` for
//! `BLKIF_OP_INDIRECT`), for discard `BLKIF_OP_DISCARD`, otherwise the operation byte:
//!
//! | request | status |
//! |---|---|
//! | unknown operation (incl. `BLKIF_OP_RESERVED_1`) | `EOPNOTSUPP` |
//! | `INDIRECT` whose `indirect_op` is not READ/WRITE | `ERROR` |
//! | READ/WRITE with 0 segments | `ERROR` (FLUSH/BARRIER may have 0) |
//! | more than 11 direct segments, more than `max_indirect_segments` indirect ones | `ERROR` |
//! | a segment with `last_sect >= 8` or `last_sect < first_sect` | `ERROR` |
//! | sector range overflowing or past the end of the disk | `ERROR` |
//! | write, flush, barrier or discard on a read-only disk | `ERROR` |
//! | start or segment length not a multiple of the logical sector size | `ERROR` |
//! | a grant the [`GrantAccess`] refuses (data or indirect page) | `ERROR` |
//! | flush/barrier the store does not support | `EOPNOTSUPP` |
//! | discard the store does not support | `EOPNOTSUPP` |
//! | any other store failure | `ERROR` |
//!
//! Every check is made on the private copy of the request and of the indirect segment
//! list, before any data moves. Data moves in batches of up to `BATCH` segments (the
//! const parameter of [`Backend`]; the segments of a request are contiguous on disk): one
//! batched grant copy ([`GrantAccess::copy_from_grants`] / `copy_to_grants`, one
//! `IOCTL_GNTDEV_GRANT_COPY` in the dom0 daemon) and one store call per batch. One
//! difference from Linux: a request larger than a batch moves batch by batch, so a grant
//! that fails half-way through it leaves the earlier batches transferred (the request
//! still fails with `ERROR`; a failed block write has undefined contents anyway).
//!
//! [`Backend::process_direct`] offers each batch first to the grant access's [`DirectIo`]
//! path, which may move it itself, straight between the store and the granted frames (the
//! dom0 daemon: one `preadv`/`pwritev` into persistently mapped grants, no bounce buffer
//! and no second copy); the checks and statuses are the same either way.

use xen_abi::blkif::{
    BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifRequestSegment, BlkifResponse,
    BLKIF_DISCARD_SECURE, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD,
    BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_ERROR, BLKIF_RSP_OKAY,
    BLKIF_SEGS_PER_INDIRECT_FRAME,
};
use xen_abi::GrantRef;
use xen_ring::{BackRing, RingError};
use zerocopy::{FromBytes, IntoBytes};

use crate::grant::{GrantAccess, GrantSeg};
use crate::store::{BlockStore, StoreError};
use crate::{PAGE_SIZE, SECTORS_PER_PAGE, SECTOR_SIZE};

/// Most segments an indirect request may carry here (Linux blkback's
/// `MAX_INDIRECT_SEGMENTS`, the value it advertises as `feature-max-indirect-segments`).
pub const BLKBACK_MAX_INDIRECT_SEGMENTS: u16 = 256;

/// Indirect pages needed for [`BLKBACK_MAX_INDIRECT_SEGMENTS`].
const MAX_INDIRECT_PAGES: usize =
    (BLKBACK_MAX_INDIRECT_SEGMENTS as usize).div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME);

/// How a [`Backend`] treats its device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendConfig {
    /// Segments accepted in one `BLKIF_OP_INDIRECT` request (clamped to
    /// [`BLKBACK_MAX_INDIRECT_SEGMENTS`]); also what to advertise as
    /// `feature-max-indirect-segments`. 0 refuses every indirect request.
    pub max_indirect_segments: u16,
    /// Requests answered by one [`Backend::process`] call at most (at least 1), so one
    /// busy front-end cannot starve the other devices served by the same thread.
    pub max_requests_per_call: u32,
    /// The disk is read-only (`mode = "r"`; advertised as `VDISK_READONLY` in `info`).
    pub readonly: bool,
    /// Honour `BLKIF_DISCARD_SECURE` (advertised as `discard-secure`).
    pub discard_secure: bool,
}

impl BackendConfig {
    /// Linux's defaults: 256 indirect segments, read-write, no secure discard; 64
    /// requests per call (two full single-page rings).
    pub const DEFAULT: Self = Self {
        max_indirect_segments: BLKBACK_MAX_INDIRECT_SEGMENTS,
        max_requests_per_call: 64,
        readonly: false,
        discard_secure: false,
    };
}

impl Default for BackendConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Counters, like Linux blkback's `st_*` sysfs statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendStats {
    /// Read requests (direct or indirect) seen.
    pub rd_req: u64,
    /// Write requests seen.
    pub wr_req: u64,
    /// Flush and barrier requests seen.
    pub f_req: u64,
    /// Discard requests seen.
    pub ds_req: u64,
    /// Sectors read successfully.
    pub rd_sect: u64,
    /// Sectors written successfully.
    pub wr_sect: u64,
    /// Responses with `BLKIF_RSP_ERROR`.
    pub errors: u64,
    /// Responses with `BLKIF_RSP_EOPNOTSUPP`.
    pub unsupported: u64,
    /// Of the read and write requests, those sent as `BLKIF_OP_INDIRECT`.
    pub indirect_req: u64,
    /// Read and write requests by segment count (the shape of what the front-end
    /// sends): 1, 2, 3-4, 5-8, 9-16, 17-32, 33-64, 65-128, 129-256 segments.
    pub rw_segs: [u64; 9],
}

impl BackendStats {
    /// The [`rw_segs`](Self::rw_segs) bucket of a request of `nseg` segments.
    pub fn segs_bucket(nseg: usize) -> usize {
        (usize::BITS - nseg.saturating_sub(1).leading_zeros()).min(8) as usize
    }
}

/// Moves a batch of segments straight between the store and the front-end's granted
/// frames, without [`Backend`]'s bounce buffer: for a [`GrantAccess`] that keeps frames
/// mapped and a store that can read into them (the dom0 daemon: one `preadv`/`pwritev`
/// into persistently mapped grants). [`Backend::process_direct`] asks it first for every
/// batch; `None` (nothing moved, no status set) sends the batch through the bounce buffer
/// ([`BlockStore::read`] then [`GrantAccess::copy_to_grants`], or the other way round).
///
/// The segments are already checked (within their frame, contiguous on disk from
/// `sector`, inside the disk); on `Some`, set each segment's `status` as a copy would.
pub trait DirectIo<S: BlockStore + ?Sized>: GrantAccess {
    /// Reads the segments' bytes from `store` at `sector` into their granted frames.
    fn read_direct(
        &mut self,
        store: &mut S,
        sector: u64,
        segs: &mut [GrantSeg],
    ) -> Option<Result<(), StoreError>>;
    /// Writes the segments' bytes from their granted frames to `store` at `sector`.
    fn write_direct(
        &mut self,
        store: &mut S,
        sector: u64,
        segs: &mut [GrantSeg],
    ) -> Option<Result<(), StoreError>>;
}

/// A [`GrantAccess`] without a direct path: every batch goes through the bounce buffer.
struct Bounced<'a, G: ?Sized>(&'a mut G);

impl<G: GrantAccess + ?Sized> GrantAccess for Bounced<'_, G> {
    fn copy_from_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), crate::GrantError> {
        self.0.copy_from_grant(gref, offset, buf)
    }
    fn copy_to_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), crate::GrantError> {
        self.0.copy_to_grant(gref, offset, data)
    }
    fn copy_from_grants(&mut self, segs: &mut [GrantSeg], buf: &mut [u8]) {
        self.0.copy_from_grants(segs, buf)
    }
    fn copy_to_grants(&mut self, segs: &mut [GrantSeg], data: &[u8]) {
        self.0.copy_to_grants(segs, data)
    }
}

impl<G: GrantAccess + ?Sized, S: BlockStore + ?Sized> DirectIo<S> for Bounced<'_, G> {
    fn read_direct(&mut self, _: &mut S, _: u64, _: &mut [GrantSeg]) -> Option<Result<(), StoreError>> {
        None
    }
    fn write_direct(&mut self, _: &mut S, _: u64, _: &mut [GrantSeg]) -> Option<Result<(), StoreError>> {
        None
    }
}

/// What the caller should do with a ring after [`Backend::process`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RingState {
    /// No request is pending and `req_event` is armed: sleep until the front-end's next
    /// event.
    Idle,
    /// The per-call budget ran out with requests still pending: call again (after giving
    /// other devices their turn) without waiting for an event.
    MoreWork,
    /// The front-end published an impossible ring index. Stop serving this ring and tear
    /// the device down (switch to `Closing`); never call `process` on it again.
    Disconnect(RingError),
}

/// The result of one [`Backend::process`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Requests answered by this call.
    pub requests: u32,
    /// Send an event to the front-end (its `rsp_event` lies in the responses published).
    pub notify: bool,
    /// What to do next.
    pub state: RingState,
}

/// The blkif request processor. Holds only configuration, counters and private scratch
/// space (the copied indirect segment list, 2 KiB, and a bounce buffer of `BATCH` pages),
/// no per-ring state, so one `Backend` can serve any number of rings in turn.
///
/// `BATCH` is how many segments move with one batched grant copy and one store call:
/// 1 (the default, 6 KiB in all, small enough for a stack) up to
/// [`BLKBACK_MAX_INDIRECT_SEGMENTS`] (a whole indirect request per batch; put it in a
/// `Box`). [`Backend::new`] makes a `Backend<1>`, [`Backend::with_batch`] any size.
pub struct Backend<const BATCH: usize = 1> {
    cfg: BackendConfig,
    stats: BackendStats,
    /// Private copy of the segment list of the request being processed.
    segs: [BlkifRequestSegment; BLKBACK_MAX_INDIRECT_SEGMENTS as usize],
    /// The current batch's grant segments.
    batch: [GrantSeg; BATCH],
    /// Data on its way between granted frames and the store.
    bounce: [[u8; PAGE_SIZE]; BATCH],
}

impl<const BATCH: usize> core::fmt::Debug for Backend<BATCH> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Backend")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for Backend {
    fn default() -> Self {
        Self::new(BackendConfig::DEFAULT)
    }
}

/// The status of one request, before it becomes a response.
type Status = i16;

impl Backend {
    /// A back-end with `cfg` (`max_indirect_segments` clamped to
    /// [`BLKBACK_MAX_INDIRECT_SEGMENTS`], `max_requests_per_call` raised to at least 1),
    /// moving one segment at a time.
    pub fn new(cfg: BackendConfig) -> Self {
        Self::with_batch(cfg)
    }
}

impl<const BATCH: usize> Backend<BATCH> {
    /// A back-end with `cfg` (clamped as for [`Backend::new`]) moving up to `BATCH`
    /// segments per batched grant copy and store call (`BATCH` must be at least 1,
    /// checked at compile time).
    pub fn with_batch(mut cfg: BackendConfig) -> Self {
        const { assert!(BATCH >= 1 && BATCH <= u16::MAX as usize) };
        cfg.max_indirect_segments = cfg.max_indirect_segments.min(BLKBACK_MAX_INDIRECT_SEGMENTS);
        cfg.max_requests_per_call = cfg.max_requests_per_call.max(1);
        Self {
            cfg,
            stats: BackendStats::default(),
            segs: [BlkifRequestSegment::default(); BLKBACK_MAX_INDIRECT_SEGMENTS as usize],
            batch: [GrantSeg::new(GrantRef(0), 0, 0); BATCH],
            bounce: [[0; PAGE_SIZE]; BATCH],
        }
    }

    /// The configuration in force (after clamping).
    pub fn config(&self) -> &BackendConfig {
        &self.cfg
    }

    /// Counters since creation.
    pub fn stats(&self) -> &BackendStats {
        &self.stats
    }

    /// Replaces the configuration (clamped as for [`Backend::with_batch`]), e.g. when a
    /// `Backend` is reused for another device.
    pub fn set_config(&mut self, mut cfg: BackendConfig) {
        cfg.max_indirect_segments = cfg.max_indirect_segments.min(BLKBACK_MAX_INDIRECT_SEGMENTS);
        cfg.max_requests_per_call = cfg.max_requests_per_call.max(1);
        self.cfg = cfg;
    }

    /// Serves `ring`: answers up to `max_requests_per_call` requests, publishing responses
    /// as it goes, and when the ring runs dry arms `req_event` with
    /// `RING_FINAL_CHECK_FOR_REQUESTS` (and keeps going if requests arrived meanwhile).
    ///
    /// Notify the front-end when [`Outcome::notify`] is set, whatever the state.
    pub fn process<G, S>(
        &mut self,
        ring: &mut BackRing<BlkifRequest, BlkifResponse>,
        grants: &mut G,
        store: &mut S,
    ) -> Outcome
    where
        G: GrantAccess + ?Sized,
        S: BlockStore + ?Sized,
    {
        self.process_direct(ring, &mut Bounced(grants), store)
    }

    /// [`process`](Self::process), moving each batch through `grants`' [`DirectIo`] path
    /// when it takes it (the bounce buffer otherwise). Same checks, same statuses.
    pub fn process_direct<G, S>(
        &mut self,
        ring: &mut BackRing<BlkifRequest, BlkifResponse>,
        grants: &mut G,
        store: &mut S,
    ) -> Outcome
    where
        G: DirectIo<S> + ?Sized,
        S: BlockStore + ?Sized,
    {
        let budget = self.cfg.max_requests_per_call;
        let mut out = Outcome {
            requests: 0,
            notify: false,
            state: RingState::Idle,
        };
        let disconnect = |mut out: Outcome, ring: &mut BackRing<_, _>, e| {
            out.notify |= ring.push_responses_and_check_notify();
            out.state = RingState::Disconnect(e);
            out
        };
        loop {
            while out.requests < budget {
                let req = match ring.read_request() {
                    Ok(Some(req)) => req,
                    Ok(None) => break,
                    Err(e) => return disconnect(out, ring, e),
                };
                let rsp = self.handle_direct(&req, grants, store);
                if let Err(e) = ring.write_response(rsp) {
                    // Cannot happen (we just consumed a request), but never trust it.
                    return disconnect(out, ring, e);
                }
                out.requests += 1;
                // Publish each response at once (as Linux's make_response does) so the
                // front-end can reuse the slot while we work on the next request.
                out.notify |= ring.push_responses_and_check_notify();
            }
            if out.requests >= budget {
                match ring.unconsumed_requests() {
                    Ok(0) => {}
                    Ok(_) => {
                        out.state = RingState::MoreWork;
                        return out;
                    }
                    Err(e) => return disconnect(out, ring, e),
                }
            }
            match ring.final_check_for_requests() {
                // Requests arrived between the last read and arming req_event.
                Ok(true) if out.requests < budget => continue,
                Ok(true) => {
                    out.state = RingState::MoreWork;
                    return out;
                }
                Ok(false) => return out,
                Err(e) => return disconnect(out, ring, e),
            }
        }
    }

    /// Processes one request (a private copy) and builds its response.
    pub fn handle<G, S>(
        &mut self,
        req: &BlkifRequest,
        grants: &mut G,
        store: &mut S,
    ) -> BlkifResponse
    where
        G: GrantAccess + ?Sized,
        S: BlockStore + ?Sized,
    {
        self.handle_direct(req, &mut Bounced(grants), store)
    }

    /// [`handle`](Self::handle) with `grants`' [`DirectIo`] path.
    pub fn handle_direct<G, S>(
        &mut self,
        req: &BlkifRequest,
        grants: &mut G,
        store: &mut S,
    ) -> BlkifResponse
    where
        G: DirectIo<S> + ?Sized,
        S: BlockStore + ?Sized,
    {
        let (operation, status) = match req.operation {
            BLKIF_OP_READ
            | BLKIF_OP_WRITE
            | BLKIF_OP_WRITE_BARRIER
            | BLKIF_OP_FLUSH_DISKCACHE
            | BLKIF_OP_INDIRECT => self.rw(req, grants, store),
            BLKIF_OP_DISCARD => (BLKIF_OP_DISCARD, self.discard(req, store)),
            op => (op, BLKIF_RSP_EOPNOTSUPP),
        };
        match status {
            BLKIF_RSP_ERROR => self.stats.errors += 1,
            BLKIF_RSP_EOPNOTSUPP => self.stats.unsupported += 1,
            _ => {}
        }
        BlkifResponse {
            id: req.id,
            operation,
            status,
            ..Default::default()
        }
    }

    /// READ, WRITE, WRITE_BARRIER, FLUSH_DISKCACHE and INDIRECT. Returns the operation to
    /// echo and the status.
    fn rw<G, S>(&mut self, req: &BlkifRequest, grants: &mut G, store: &mut S) -> (u8, Status)
    where
        G: DirectIo<S> + ?Sized,
        S: BlockStore + ?Sized,
    {
        // The indirect layout shares the slot; reinterpret the private copy.
        let indirect = if req.operation == BLKIF_OP_INDIRECT {
            match BlkifRequestIndirect::read_from_prefix(req.as_bytes()) {
                Ok((ind, _)) => Some(ind),
                Err(_) => return (req.operation, BLKIF_RSP_ERROR),
            }
        } else {
            None
        };
        let (op, nseg, sector) = match &indirect {
            Some(ind) => (
                ind.indirect_op,
                usize::from(ind.nr_segments),
                ind.sector_number,
            ),
            None => (
                req.operation,
                usize::from(req.nr_segments),
                req.sector_number,
            ),
        };
        if indirect.is_some() && op != BLKIF_OP_READ && op != BLKIF_OP_WRITE {
            return (op, BLKIF_RSP_ERROR);
        }
        let flush = match op {
            BLKIF_OP_READ => {
                self.stats.rd_req += 1;
                false
            }
            BLKIF_OP_WRITE => {
                self.stats.wr_req += 1;
                false
            }
            _ => {
                // WRITE_BARRIER or FLUSH_DISKCACHE. Requests are processed one at a time,
                // so a barrier's "drain all outstanding I/O" holds already.
                self.stats.f_req += 1;
                true
            }
        };
        let max = if indirect.is_some() {
            usize::from(self.cfg.max_indirect_segments)
        } else {
            BLKIF_MAX_SEGMENTS_PER_REQUEST
        };
        if (nseg == 0 && !flush) || nseg > max {
            return (op, BLKIF_RSP_ERROR);
        }
        if !flush {
            self.stats.rw_segs[BackendStats::segs_bucket(nseg)] += 1;
            self.stats.indirect_req += u64::from(indirect.is_some());
        }

        // One private copy of the segment list.
        match &indirect {
            None => self.segs[..nseg].copy_from_slice(&req.seg[..nseg]),
            Some(ind) => {
                let pages = nseg.div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME);
                debug_assert!(pages <= MAX_INDIRECT_PAGES);
                for (p, &gref) in ind.indirect_grefs.iter().take(pages).enumerate() {
                    let first = p * BLKIF_SEGS_PER_INDIRECT_FRAME;
                    let last = nseg.min(first + BLKIF_SEGS_PER_INDIRECT_FRAME);
                    let bytes = self.segs[first..last].as_mut_bytes();
                    if grants.copy_from_grant(GrantRef(gref), 0, bytes).is_err() {
                        return (op, BLKIF_RSP_ERROR);
                    }
                }
            }
        }

        // Validate every segment, then the whole range, before moving any data.
        let mut nr_sects: u64 = 0;
        for s in &self.segs[..nseg] {
            if s.last_sect >= SECTORS_PER_PAGE || s.last_sect < s.first_sect {
                return (op, BLKIF_RSP_ERROR);
            }
            nr_sects += u64::from(s.last_sect - s.first_sect) + 1;
        }
        if op != BLKIF_OP_READ && self.cfg.readonly {
            return (op, BLKIF_RSP_ERROR);
        }
        if nr_sects != 0 {
            match sector.checked_add(nr_sects) {
                Some(end) if end <= store.sector_count() => {}
                _ => return (op, BLKIF_RSP_ERROR),
            }
        }
        let lbs_mask = u64::from(store.sector_size() / SECTOR_SIZE as u32).max(1) - 1;
        for s in &self.segs[..nseg] {
            let nsec = u64::from(s.last_sect - s.first_sect) + 1;
            if (sector | nsec) & lbs_mask != 0 {
                return (op, BLKIF_RSP_ERROR);
            }
        }

        if flush {
            match store.flush() {
                Ok(()) => {}
                Err(StoreError::Unsupported) => return (op, BLKIF_RSP_EOPNOTSUPP),
                Err(_) => return (op, BLKIF_RSP_ERROR),
            }
        }

        // Batch by batch: the segments are contiguous on disk, so one store call and one
        // batched grant copy per batch, the data back to back in the bounce buffer.
        let mut cur = sector;
        for group in self.segs[..nseg].chunks(BATCH) {
            let mut bytes = 0usize;
            for (g, s) in self.batch.iter_mut().zip(group) {
                let len = (usize::from(s.last_sect - s.first_sect) + 1) * SECTOR_SIZE;
                let offset = usize::from(s.first_sect) * SECTOR_SIZE;
                // Both below PAGE_SIZE (checked above), so they fit u16.
                *g = GrantSeg::new(GrantRef(s.gref), offset as u16, len as u16);
                bytes += len;
            }
            let batch = &mut self.batch[..group.len()];
            let direct = if op == BLKIF_OP_READ {
                grants.read_direct(store, cur, batch)
            } else {
                grants.write_direct(store, cur, batch)
            };
            let ok = match direct {
                Some(r) => r.is_ok() && batch.iter().all(|g| g.status.is_ok()),
                None if op == BLKIF_OP_READ => {
                    let buf = &mut self.bounce.as_flattened_mut()[..bytes];
                    store.read(cur, buf).is_ok() && {
                        grants.copy_to_grants(batch, buf);
                        batch.iter().all(|g| g.status.is_ok())
                    }
                }
                None => {
                    let buf = &mut self.bounce.as_flattened_mut()[..bytes];
                    grants.copy_from_grants(batch, buf);
                    batch.iter().all(|g| g.status.is_ok()) && store.write(cur, buf).is_ok()
                }
            };
            if !ok {
                return (op, BLKIF_RSP_ERROR);
            }
            cur += (bytes / SECTOR_SIZE) as u64;
        }
        if op == BLKIF_OP_READ {
            self.stats.rd_sect += nr_sects;
        } else {
            self.stats.wr_sect += nr_sects;
        }
        (op, BLKIF_RSP_OKAY)
    }

    /// BLKIF_OP_DISCARD.
    fn discard<S: BlockStore + ?Sized>(&mut self, req: &BlkifRequest, store: &mut S) -> Status {
        self.stats.ds_req += 1;
        let Ok((d, _)) = BlkifRequestDiscard::read_from_prefix(req.as_bytes()) else {
            return BLKIF_RSP_ERROR;
        };
        if self.cfg.readonly {
            return BLKIF_RSP_ERROR;
        }
        if d.nr_sectors != 0 {
            match d.sector_number.checked_add(d.nr_sectors) {
                Some(end) if end <= store.sector_count() => {}
                _ => return BLKIF_RSP_ERROR,
            }
        }
        let secure = self.cfg.discard_secure && d.flag & BLKIF_DISCARD_SECURE != 0;
        match store.discard(d.sector_number, d.nr_sectors, secure) {
            Ok(()) => BLKIF_RSP_OKAY,
            Err(StoreError::Unsupported) => BLKIF_RSP_EOPNOTSUPP,
            Err(_) => BLKIF_RSP_ERROR,
        }
    }
}
