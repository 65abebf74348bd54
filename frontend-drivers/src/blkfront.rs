//! The blkif front-end (`io/blkif.h`): block reads and writes over a `xen_ring::FrontRing`,
//! in requests of up to 11 segments or, when the back-end offers
//! `feature-max-indirect-segments`, indirect requests of up to [`BLKFRONT_MAX_SEGMENTS`].
//!
//! Memory the back-end sees comes from a pool of pages the environment provides through
//! [`FrontGrants`] (pv-guest: pages it owns and grants in its grant table; host tests: a
//! fake table). Each request id owns a fixed run of pool pages (its data pages and its
//! indirect page), so ids and pages are allocated together and nothing is allocated on
//! the heap. Data is copied into those pages for writes and out of them for reads, after
//! the response, once the back-end's access has been ended.
//!
//! Responses are checked before they are believed: the id must name a request in flight,
//! the operation must be the one requested (the effective one for indirect requests, as
//! Linux's blkback echoes it), and the status is mapped to [`RspStatus`]. A back-end that
//! breaks these rules gets a [`BlkError`] (treat the device as broken), never a panic.
//!
//! Two levels of API: [`BlkFront::submit_read`] / [`submit_write`](BlkFront::submit_write)
//! / [`poll`](BlkFront::poll) / [`release`](BlkFront::release) for callers that keep
//! their own bookkeeping, and the blocking [`BlkFront::read`] / [`write`](BlkFront::write)
//! / [`flush`](BlkFront::flush) / [`discard`](BlkFront::discard), which split a transfer
//! into requests, keep the ring full and wait through [`Notify`].
//!
//! [`publish_frontend`] and [`read_backend`] are the xenbus keys, as data.

use xenstore_wire::Decimal;
use xen_abi::blkif::{
    BlkifRequest, BlkifRequestDiscard, BlkifRequestIndirect, BlkifRequestSegment, BlkifResponse,
    BLKIF_DISCARD_SECURE, BLKIF_MAX_SEGMENTS_PER_REQUEST, BLKIF_OP_DISCARD,
    BLKIF_OP_FLUSH_DISKCACHE, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_OP_WRITE,
    BLKIF_OP_WRITE_BARRIER, BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY, BLKIF_SEGS_PER_INDIRECT_FRAME,
    VDISK_READONLY,
};
use xen_abi::{EvtchnPort, GrantRef};
use xen_ring::{FrontRing, RingError};
use zerocopy::{FromZeros, IntoBytes};

use crate::page::Notify;

/// Bytes in a blkif sector (all sector numbers and counts on the wire).
pub const SECTOR_SIZE: usize = 512;
const PAGE_SIZE: usize = 4096;
const SECTORS_PER_PAGE: usize = PAGE_SIZE / SECTOR_SIZE;
/// Most segments this driver puts in one (indirect) request: 256 KiB.
pub const BLKFRONT_MAX_SEGMENTS: usize = 64;
const MAX_INDIRECT_PAGES: usize = BLKFRONT_MAX_SEGMENTS.div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME);
/// Pool pages one request id may use: data pages, then indirect pages.
const MAX_PAGES_PER_ID: usize = BLKFRONT_MAX_SEGMENTS + MAX_INDIRECT_PAGES;
/// Most requests in flight: the slots of a single-page blkif ring.
pub const BLKFRONT_MAX_REQUESTS: usize = 32;
/// `XEN_IO_PROTO_ABI_X86_64`.
pub const PROTOCOL_X86_64: &str = "x86_64-abi";

/// Why a grant operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantError {
    /// No free grant reference.
    NoFreeRef,
    /// The back-end still has the frame mapped: access could not be ended.
    InUse,
    /// Anything else (`GNTST_*` when there is one).
    Other(i16),
}

/// The pool of pages the driver shares with the back-end, and the grant table.
pub trait FrontGrants {
    /// Pages in the pool (indices `0..page_count()`).
    fn page_count(&self) -> usize;
    /// Grants the back-end domain access to pool page `page` (read-only when `readonly`)
    /// and returns the reference.
    fn grant(&mut self, page: usize, readonly: bool) -> Result<GrantRef, GrantError>;
    /// Ends the back-end's access to a grant made by [`grant`](Self::grant)
    /// (`gnttab_end_foreign_access`); [`GrantError::InUse`] if the back-end still maps it.
    fn end_access(&mut self, gref: GrantRef) -> Result<(), GrantError>;
    /// Copies `data` into pool page `page` at `offset`.
    fn write_page(&mut self, page: usize, offset: usize, data: &[u8]);
    /// Copies from pool page `page` at `offset` into `buf`.
    fn read_page(&mut self, page: usize, offset: usize, buf: &mut [u8]);
}

pub use xenstore_wire::keys::{KeyRead, KeyWrite};


/// Publishes the front-end's keys for a single-page ring (then switch to `Initialised`):
/// `ring-ref`, `event-channel`, `protocol` = `x86_64-abi`, `feature-persistent`.
pub fn publish_frontend(
    ring_ref: GrantRef,
    event_channel: EvtchnPort,
    persistent: bool,
    out: &mut (impl KeyWrite + ?Sized),
) {
    out.write_key("ring-ref", Decimal::new(ring_ref.0.into()).as_str());
    out.write_key("event-channel", Decimal::new(event_channel.0.into()).as_str());
    out.write_key("protocol", PROTOCOL_X86_64);
    out.write_key("feature-persistent", if persistent { "1" } else { "0" });
}

/// What the back-end published (read when it is `Connected`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BackendInfo {
    /// `sectors`: size in 512-byte sectors.
    pub sectors: u64,
    /// `info`: `VDISK_*` bits.
    pub info: u32,
    /// `sector-size`: logical sector size in bytes.
    pub sector_size: u32,
    /// `physical-sector-size` (defaults to `sector_size`).
    pub physical_sector_size: u32,
    /// `feature-flush-cache`.
    pub flush_cache: bool,
    /// `feature-barrier`.
    pub barrier: bool,
    /// `feature-discard`.
    pub discard: bool,
    /// `discard-granularity` (0 if absent).
    pub discard_granularity: u32,
    /// `discard-alignment` (0 if absent).
    pub discard_alignment: u32,
    /// `discard-secure`.
    pub discard_secure: bool,
    /// `feature-persistent`.
    pub persistent: bool,
    /// `feature-max-indirect-segments` (0: no indirect requests).
    pub max_indirect_segments: u32,
    /// `max-ring-page-order` (0 if absent).
    pub max_ring_page_order: u32,
}

impl BackendInfo {
    /// `info` has `VDISK_READONLY`.
    pub fn readonly(&self) -> bool {
        self.info & VDISK_READONLY != 0
    }
}

/// Why the back-end's keys are unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKeyError {
    /// A required key (`sectors`, `info`, `sector-size`) is absent.
    Missing(&'static str),
    /// A value is not a number, out of range, or (sector sizes) not a power of two >= 512.
    Invalid(&'static str),
}

use xenstore_wire::keys::parse_number as parse_decimal;

/// `Ok(None)` absent; `Err(())` present but not a number.
fn read_num(kv: &mut (impl KeyRead + ?Sized), key: &str) -> Result<Option<u64>, ()> {
    let mut b = [0u8; 32];
    match kv.read_key(key, &mut b) {
        None => Ok(None),
        Some(n) if n > b.len() => Err(()),
        Some(n) => parse_decimal(&b[..n]).map(Some).ok_or(()),
    }
}

/// Reads and checks the back-end's keys. Required: `sectors`, `info`, `sector-size`
/// (what Linux's blkfront requires). Optional flags read as 0 when absent or unreadable,
/// as Linux's `xenbus_read_unsigned` does.
pub fn read_backend(kv: &mut (impl KeyRead + ?Sized)) -> Result<BackendInfo, BackendKeyError> {
    let mut required = |key: &'static str| -> Result<u64, BackendKeyError> {
        read_num(kv, key)
            .map_err(|()| BackendKeyError::Invalid(key))?
            .ok_or(BackendKeyError::Missing(key))
    };
    let sectors = required("sectors")?;
    let info = u32::try_from(required("info")?).map_err(|_| BackendKeyError::Invalid("info"))?;
    let sector_size = u32::try_from(required("sector-size")?)
        .ok()
        .filter(|s| s.is_power_of_two() && *s >= SECTOR_SIZE as u32)
        .ok_or(BackendKeyError::Invalid("sector-size"))?;
    let physical_sector_size = match read_num(kv, "physical-sector-size") {
        Ok(None) => sector_size,
        Ok(Some(p)) => u32::try_from(p)
            .ok()
            .filter(|p| p.is_power_of_two() && *p >= sector_size)
            .ok_or(BackendKeyError::Invalid("physical-sector-size"))?,
        Err(()) => return Err(BackendKeyError::Invalid("physical-sector-size")),
    };
    let mut opt = |key: &str| read_num(kv, key).ok().flatten().unwrap_or(0);
    let as_u32 = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    Ok(BackendInfo {
        sectors,
        info,
        sector_size,
        physical_sector_size,
        flush_cache: opt("feature-flush-cache") != 0,
        barrier: opt("feature-barrier") != 0,
        discard: opt("feature-discard") != 0,
        discard_granularity: as_u32(opt("discard-granularity")),
        discard_alignment: as_u32(opt("discard-alignment")),
        discard_secure: opt("discard-secure") != 0,
        persistent: opt("feature-persistent") != 0,
        max_indirect_segments: as_u32(opt("feature-max-indirect-segments")),
        max_ring_page_order: as_u32(opt("max-ring-page-order")),
    })
}

/// How the driver uses what the back-end offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlkFrontConfig {
    /// Segments per request at most (clamped to 1..=[`BLKFRONT_MAX_SEGMENTS`]); above 11
    /// needs the back-end's `feature-max-indirect-segments`.
    pub max_segments: usize,
    /// Use persistent grants if the back-end offers them: pages stay granted (read-write)
    /// from first use until [`BlkFront::teardown`].
    pub persistent: bool,
}

impl Default for BlkFrontConfig {
    fn default() -> Self {
        Self {
            max_segments: BLKFRONT_MAX_SEGMENTS,
            persistent: false,
        }
    }
}

/// A response's status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RspStatus {
    /// `BLKIF_RSP_OKAY`.
    Okay,
    /// `BLKIF_RSP_ERROR`, or any status blkif does not define.
    Error,
    /// `BLKIF_RSP_EOPNOTSUPP`.
    NotSupported,
}

impl RspStatus {
    fn from_wire(s: i16) -> Self {
        match s {
            BLKIF_RSP_OKAY => Self::Okay,
            BLKIF_RSP_EOPNOTSUPP => Self::NotSupported,
            _ => Self::Error,
        }
    }
}

/// Errors of the front-end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlkError {
    /// The back-end published an impossible `rsp_prod`.
    Ring(RingError),
    /// A response names no request in flight.
    BadResponseId(u64),
    /// A response's operation is not the request's.
    BadResponseOp { id: u16, expected: u8, got: u8 },
    /// A grant could not be made.
    Grant(GrantError),
    /// The back-end still maps a page of a request it has answered (the id is retired).
    GrantStillInUse,
    /// A request failed: the first failing request's start sector and status.
    Status { sector: u64, status: RspStatus },
    /// Length or start not a multiple of the sector size.
    Unaligned,
    /// The range runs past the end of the disk.
    OutOfRange,
    /// Write or discard on a read-only disk.
    ReadOnly,
    /// The back-end does not offer this operation.
    Unsupported,
    /// Requests are in flight (the blocking calls need an idle driver), or no id/slot is
    /// free (low-level submit).
    Busy,
    /// [`Notify::wait`] gave up while requests were in flight; they stay in flight.
    Timeout,
    /// The page pool is too small for even one request.
    NotEnoughPages,
    /// An id passed to [`BlkFront::release`] has no completed request.
    NotCompleted,
}

impl From<RingError> for BlkError {
    fn from(e: RingError) -> Self {
        Self::Ring(e)
    }
}

/// A completed request, returned by [`BlkFront::poll`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    /// The request id (pass to [`BlkFront::release`]).
    pub id: u16,
    /// The effective operation (`BLKIF_OP_READ` for an indirect read, ...).
    pub operation: u8,
    /// The back-end's status.
    pub status: RspStatus,
    /// First sector of the request.
    pub sector: u64,
    /// Sectors of the request.
    pub nr_sectors: u32,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FrontStats {
    /// Requests submitted.
    pub requests: u64,
    /// Of which indirect.
    pub indirect_requests: u64,
    /// Sectors read successfully.
    pub sectors_read: u64,
    /// Sectors written successfully.
    pub sectors_written: u64,
    /// Grants made.
    pub grants: u64,
    /// Grants ended.
    pub grants_ended: u64,
    /// Most requests in flight at once.
    pub max_in_flight: u32,
    /// Notifications sent to the back-end by the blocking calls.
    pub notifies: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SlotState {
    Free,
    InFlight,
    Done(RspStatus),
    /// Retired: the back-end kept a grant.
    Dead,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    state: SlotState,
    /// Effective operation the response must echo.
    op: u8,
    sector: u64,
    nr_sectors: u32,
    /// Byte offset of this request's data within the blocking call's buffer.
    buf_off: usize,
    /// Bit `i`: local page `i` is currently granted (`grefs[i]` valid).
    granted: u128,
    grefs: [GrantRef; MAX_PAGES_PER_ID],
}

impl Slot {
    const FREE: Self = Self {
        state: SlotState::Free,
        op: 0,
        sector: 0,
        nr_sectors: 0,
        buf_off: 0,
        granted: 0,
        grefs: [GrantRef(0); MAX_PAGES_PER_ID],
    };
}

const _: () = assert!(MAX_PAGES_PER_ID <= 128);
const _: () = assert!(BLKFRONT_MAX_REQUESTS <= 64);

/// The blkif front-end over one single-page ring.
pub struct BlkFront<G> {
    ring: FrontRing<BlkifRequest, BlkifResponse>,
    grants: G,
    info: BackendInfo,
    persistent: bool,
    /// Segments per request at most.
    max_segs: usize,
    /// Indirect requests are used above 11 segments.
    indirect: bool,
    /// Pool pages per id: `max_segs` data pages, then the indirect pages.
    pages_per_id: usize,
    nr_ids: usize,
    /// Bit `i`: id `i` is free.
    free: u64,
    slots: [Slot; BLKFRONT_MAX_REQUESTS],
    stats: FrontStats,
}

impl<G> core::fmt::Debug for BlkFront<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BlkFront")
            .field("ring", &self.ring)
            .field("info", &self.info)
            .field("persistent", &self.persistent)
            .field("max_segs", &self.max_segs)
            .field("indirect", &self.indirect)
            .field("nr_ids", &self.nr_ids)
            .field("free", &self.free)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

/// What a blocking transfer moves.
enum Job<'a> {
    Read(&'a mut [u8]),
    Write(&'a [u8]),
}

/// Where a write's data comes from.
enum Src<'a> {
    Slice(&'a [u8]),
    /// Called per page with the byte offset within the request and the page's part.
    Fill(&'a mut dyn FnMut(usize, &mut [u8])),
}

impl<G: FrontGrants> BlkFront<G> {
    /// A front-end over `ring` (initialised with `FrontRing::init` on the page whose
    /// grant was published as `ring-ref`), the page pool `grants`, and the back-end's
    /// keys. Uses `min(ring slots, 32, pool pages / pages per request)` request ids.
    pub fn new(
        ring: FrontRing<BlkifRequest, BlkifResponse>,
        grants: G,
        info: BackendInfo,
        cfg: BlkFrontConfig,
    ) -> Result<Self, BlkError> {
        let want = cfg.max_segments.clamp(1, BLKFRONT_MAX_SEGMENTS);
        let backend_max = usize::try_from(info.max_indirect_segments).unwrap_or(usize::MAX);
        let indirect =
            want > BLKIF_MAX_SEGMENTS_PER_REQUEST && backend_max > BLKIF_MAX_SEGMENTS_PER_REQUEST;
        let max_segs = if indirect {
            want.min(backend_max)
        } else {
            want.min(BLKIF_MAX_SEGMENTS_PER_REQUEST)
        };
        let ind_pages = if indirect {
            max_segs.div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME)
        } else {
            0
        };
        let pages_per_id = max_segs + ind_pages;
        let nr_ids = (ring.size() as usize)
            .min(BLKFRONT_MAX_REQUESTS)
            .min(grants.page_count() / pages_per_id);
        if nr_ids == 0 {
            return Err(BlkError::NotEnoughPages);
        }
        Ok(Self {
            ring,
            grants,
            info,
            persistent: cfg.persistent && info.persistent,
            max_segs,
            indirect,
            pages_per_id,
            nr_ids,
            free: if nr_ids == 64 {
                u64::MAX
            } else {
                (1u64 << nr_ids) - 1
            },
            slots: [Slot::FREE; BLKFRONT_MAX_REQUESTS],
            stats: FrontStats::default(),
        })
    }

    /// The back-end's keys.
    pub fn info(&self) -> &BackendInfo {
        &self.info
    }
    /// The page pool / grant table.
    pub fn grants(&self) -> &G {
        &self.grants
    }
    /// The page pool / grant table.
    pub fn grants_mut(&mut self) -> &mut G {
        &mut self.grants
    }
    /// Counters.
    pub fn stats(&self) -> &FrontStats {
        &self.stats
    }
    /// Persistent grants are in use.
    pub fn persistent(&self) -> bool {
        self.persistent
    }
    /// Most segments in one request (> 11: indirect requests are used).
    pub fn max_segments(&self) -> usize {
        self.max_segs
    }
    /// Sectors one request can carry.
    pub fn max_sectors_per_request(&self) -> u32 {
        (self.max_segs * SECTORS_PER_PAGE) as u32
    }
    /// Request ids in use.
    pub fn nr_ids(&self) -> usize {
        self.nr_ids
    }
    /// Ids holding a request not yet released (in flight or completed).
    pub fn in_flight(&self) -> usize {
        self.slots[..self.nr_ids]
            .iter()
            .filter(|s| matches!(s.state, SlotState::InFlight | SlotState::Done(_)))
            .count()
    }
    /// Ids retired because the back-end kept a grant.
    pub fn dead_ids(&self) -> usize {
        self.slots[..self.nr_ids]
            .iter()
            .filter(|s| s.state == SlotState::Dead)
            .count()
    }
    /// Grants currently held by the driver (persistent ones included).
    pub fn grants_held(&self) -> u32 {
        self.slots[..self.nr_ids]
            .iter()
            .map(|s| s.granted.count_ones())
            .sum()
    }
    /// A request can be submitted now (an id and a ring slot are free).
    pub fn can_submit(&self) -> bool {
        self.free != 0 && !self.ring.is_full()
    }

    fn alloc_id(&mut self) -> Option<usize> {
        if self.free == 0 || self.ring.is_full() {
            return None;
        }
        let id = self.free.trailing_zeros() as usize;
        self.free &= !(1 << id);
        Some(id)
    }

    fn free_id(&mut self, id: usize) {
        self.slots[id].state = SlotState::Free;
        self.free |= 1 << id;
    }

    /// Pool page of local page `local` of `id`.
    fn page(&self, id: usize, local: usize) -> usize {
        id * self.pages_per_id + local
    }

    /// The grant for local page `local` of `id`, granting it if needed.
    fn gref(&mut self, id: usize, local: usize, readonly: bool) -> Result<GrantRef, BlkError> {
        if self.slots[id].granted & (1 << local) != 0 {
            return Ok(self.slots[id].grefs[local]);
        }
        let page = self.page(id, local);
        // Persistent grants are read-write: the same page serves reads and writes.
        let g = self
            .grants
            .grant(page, readonly && !self.persistent)
            .map_err(BlkError::Grant)?;
        self.stats.grants += 1;
        let slot = &mut self.slots[id];
        slot.grefs[local] = g;
        slot.granted |= 1 << local;
        Ok(g)
    }

    /// Ends the grants of `id` (all of them, or only non-persistent ones). On failure the
    /// id is retired.
    fn end_grants(&mut self, id: usize, all: bool) -> Result<(), BlkError> {
        if self.persistent && !all {
            return Ok(());
        }
        let mut failed = false;
        let mut mask = self.slots[id].granted;
        while mask != 0 {
            let local = mask.trailing_zeros() as usize;
            mask &= !(1 << local);
            match self.grants.end_access(self.slots[id].grefs[local]) {
                Ok(()) => {
                    self.slots[id].granted &= !(1 << local);
                    self.stats.grants_ended += 1;
                }
                Err(_) => failed = true,
            }
        }
        if failed {
            self.slots[id].state = SlotState::Dead;
            return Err(BlkError::GrantStillInUse);
        }
        Ok(())
    }

    /// Undo of a submission that failed half-way.
    fn abort(&mut self, id: usize, e: BlkError) -> BlkError {
        if self.end_grants(id, false).is_ok() {
            self.free_id(id);
        }
        e
    }

    /// Submits a read of `nr_sectors` (1..=[`max_sectors_per_request`](Self::max_sectors_per_request))
    /// from `sector`. Publish with [`push_requests`](Self::push_requests).
    pub fn submit_read(&mut self, sector: u64, nr_sectors: u32) -> Result<u16, BlkError> {
        self.submit_rw(sector, nr_sectors, None, 0)
    }

    /// Submits a write of `data` (a multiple of 512 bytes, at most
    /// [`max_sectors_per_request`](Self::max_sectors_per_request) sectors) at `sector`.
    pub fn submit_write(&mut self, sector: u64, data: &[u8]) -> Result<u16, BlkError> {
        if !data.len().is_multiple_of(SECTOR_SIZE) {
            return Err(BlkError::Unaligned);
        }
        let n = u32::try_from(data.len() / SECTOR_SIZE).map_err(|_| BlkError::OutOfRange)?;
        self.submit_rw(sector, n, Some(Src::Slice(data)), 0)
    }

    /// Submits a write of `nr_sectors` at `sector` whose data `fill` produces straight into
    /// the shared pages, page by page: `fill(offset, part)` fills `part` (at most a page)
    /// with the bytes at `offset` within the request. No caller buffer of the request's
    /// size is needed, so requests of any size can be kept in flight from a small stack.
    pub fn submit_write_with(
        &mut self,
        sector: u64,
        nr_sectors: u32,
        fill: &mut dyn FnMut(usize, &mut [u8]),
    ) -> Result<u16, BlkError> {
        self.submit_rw(sector, nr_sectors, Some(Src::Fill(fill)), 0)
    }

    fn submit_rw(
        &mut self,
        sector: u64,
        nr_sectors: u32,
        mut data: Option<Src<'_>>,
        buf_off: usize,
    ) -> Result<u16, BlkError> {
        if nr_sectors == 0 || nr_sectors > self.max_sectors_per_request() {
            return Err(BlkError::OutOfRange);
        }
        let write = data.is_some();
        if write && self.info.readonly() {
            return Err(BlkError::ReadOnly);
        }
        let id = self.alloc_id().ok_or(BlkError::Busy)?;
        let nsec = nr_sectors as usize;
        let nseg = nsec.div_ceil(SECTORS_PER_PAGE);
        let mut segs = [BlkifRequestSegment::default(); BLKFRONT_MAX_SEGMENTS];
        for (i, seg) in segs.iter_mut().enumerate().take(nseg) {
            let secs = (nsec - i * SECTORS_PER_PAGE).min(SECTORS_PER_PAGE);
            let off = i * PAGE_SIZE;
            let page = self.page(id, i);
            match &mut data {
                None => {}
                Some(Src::Slice(d)) => {
                    self.grants
                        .write_page(page, 0, &d[off..off + secs * SECTOR_SIZE]);
                }
                Some(Src::Fill(f)) => {
                    let mut tmp = [0u8; PAGE_SIZE];
                    let part = &mut tmp[..secs * SECTOR_SIZE];
                    f(off, part);
                    self.grants.write_page(page, 0, part);
                }
            }
            // The back-end writes into the pages of a read: grant those writable.
            let gref = match self.gref(id, i, write) {
                Ok(g) => g,
                Err(e) => return Err(self.abort(id, e)),
            };
            *seg = BlkifRequestSegment {
                gref: gref.0,
                first_sect: 0,
                last_sect: (secs - 1) as u8,
                _pad: [0; 2],
            };
        }
        let op = if write { BLKIF_OP_WRITE } else { BLKIF_OP_READ };
        let mut req = BlkifRequest::new_zeroed();
        if nseg <= BLKIF_MAX_SEGMENTS_PER_REQUEST {
            req.operation = op;
            req.nr_segments = nseg as u8;
            req.id = id as u64;
            req.sector_number = sector;
            req.seg[..nseg].copy_from_slice(&segs[..nseg]);
        } else {
            let mut ind = BlkifRequestIndirect {
                operation: BLKIF_OP_INDIRECT,
                indirect_op: op,
                nr_segments: nseg as u16,
                id: id as u64,
                sector_number: sector,
                ..Default::default()
            };
            let nind = nseg.div_ceil(BLKIF_SEGS_PER_INDIRECT_FRAME);
            for p in 0..nind {
                let first = p * BLKIF_SEGS_PER_INDIRECT_FRAME;
                let last = nseg.min(first + BLKIF_SEGS_PER_INDIRECT_FRAME);
                let local = self.max_segs + p;
                let page = self.page(id, local);
                self.grants
                    .write_page(page, 0, segs[first..last].as_bytes());
                match self.gref(id, local, true) {
                    Ok(g) => ind.indirect_grefs[p] = g.0,
                    Err(e) => return Err(self.abort(id, e)),
                }
            }
            req.as_mut_bytes()[..core::mem::size_of::<BlkifRequestIndirect>()]
                .copy_from_slice(ind.as_bytes());
            self.stats.indirect_requests += 1;
        }
        if let Err(e) = self.ring.write_request(req) {
            return Err(self.abort(id, e.into()));
        }
        self.slots[id] = Slot {
            state: SlotState::InFlight,
            op,
            sector,
            nr_sectors,
            buf_off,
            ..self.slots[id]
        };
        self.note_submitted();
        Ok(id as u16)
    }

    fn note_submitted(&mut self) {
        self.stats.requests += 1;
        let n = self.in_flight() as u32;
        self.stats.max_in_flight = self.stats.max_in_flight.max(n);
    }

    /// Submits a cache flush (`BLKIF_OP_FLUSH_DISKCACHE`, or `BLKIF_OP_WRITE_BARRIER`
    /// if the back-end offers only that), no data.
    pub fn submit_flush(&mut self) -> Result<u16, BlkError> {
        let op = if self.info.flush_cache {
            BLKIF_OP_FLUSH_DISKCACHE
        } else if self.info.barrier {
            BLKIF_OP_WRITE_BARRIER
        } else {
            return Err(BlkError::Unsupported);
        };
        let mut req = BlkifRequest::new_zeroed();
        req.operation = op;
        self.submit_plain(req, op, 0, 0)
    }

    /// Submits a discard of `nr_sectors` from `sector` (`secure` if the back-end offers
    /// `discard-secure`).
    pub fn submit_discard(
        &mut self,
        sector: u64,
        nr_sectors: u64,
        secure: bool,
    ) -> Result<u16, BlkError> {
        if !self.info.discard {
            return Err(BlkError::Unsupported);
        }
        if self.info.readonly() {
            return Err(BlkError::ReadOnly);
        }
        self.check_range(sector, nr_sectors)?;
        let d = BlkifRequestDiscard {
            operation: BLKIF_OP_DISCARD,
            flag: if secure && self.info.discard_secure {
                BLKIF_DISCARD_SECURE
            } else {
                0
            },
            sector_number: sector,
            nr_sectors,
            ..Default::default()
        };
        let mut req = BlkifRequest::new_zeroed();
        req.as_mut_bytes()[..core::mem::size_of::<BlkifRequestDiscard>()]
            .copy_from_slice(d.as_bytes());
        self.submit_plain(
            req,
            BLKIF_OP_DISCARD,
            sector,
            u32::try_from(nr_sectors).unwrap_or(u32::MAX),
        )
    }

    fn submit_plain(
        &mut self,
        mut req: BlkifRequest,
        op: u8,
        sector: u64,
        nr: u32,
    ) -> Result<u16, BlkError> {
        let id = self.alloc_id().ok_or(BlkError::Busy)?;
        req.id = id as u64;
        if let Err(e) = self.ring.write_request(req) {
            self.free_id(id);
            return Err(e.into());
        }
        self.slots[id] = Slot {
            state: SlotState::InFlight,
            op,
            sector,
            nr_sectors: nr,
            buf_off: 0,
            ..self.slots[id]
        };
        self.note_submitted();
        Ok(id as u16)
    }

    /// Publishes submitted requests; returns whether to notify the back-end.
    pub fn push_requests(&mut self) -> bool {
        self.ring.push_requests_and_check_notify()
    }

    /// Takes the next response, checks it, ends the back-end's access to the request's
    /// pages (unless persistent) and returns the completion. The id stays allocated until
    /// [`release`](Self::release).
    pub fn poll(&mut self) -> Result<Option<Completion>, BlkError> {
        let Some(rsp) = self.ring.read_response()? else {
            return Ok(None);
        };
        let id = match usize::try_from(rsp.id) {
            Ok(i) if i < self.nr_ids && self.slots[i].state == SlotState::InFlight => i,
            _ => return Err(BlkError::BadResponseId(rsp.id)),
        };
        let slot = self.slots[id];
        if rsp.operation != slot.op {
            return Err(BlkError::BadResponseOp {
                id: id as u16,
                expected: slot.op,
                got: rsp.operation,
            });
        }
        let status = RspStatus::from_wire(rsp.status);
        self.end_grants(id, false)?;
        self.slots[id].state = SlotState::Done(status);
        if status == RspStatus::Okay {
            match slot.op {
                BLKIF_OP_READ => self.stats.sectors_read += u64::from(slot.nr_sectors),
                BLKIF_OP_WRITE => self.stats.sectors_written += u64::from(slot.nr_sectors),
                _ => {}
            }
        }
        Ok(Some(Completion {
            id: id as u16,
            operation: slot.op,
            status,
            sector: slot.sector,
            nr_sectors: slot.nr_sectors,
        }))
    }

    /// Frees a completed request's id; for a successful read, first copies its data into
    /// `buf` (which must be `nr_sectors * 512` bytes; pass `None` to drop the data).
    pub fn release(&mut self, id: u16, buf: Option<&mut [u8]>) -> Result<(), BlkError> {
        let id = usize::from(id);
        let Some(slot) = self.slots[..self.nr_ids].get(id).copied() else {
            return Err(BlkError::NotCompleted);
        };
        let SlotState::Done(status) = slot.state else {
            return Err(BlkError::NotCompleted);
        };
        if let (Some(buf), BLKIF_OP_READ, RspStatus::Okay) = (buf, slot.op, status) {
            let len = slot.nr_sectors as usize * SECTOR_SIZE;
            if buf.len() != len {
                return Err(BlkError::OutOfRange);
            }
            for (i, chunk) in buf.chunks_mut(PAGE_SIZE).enumerate() {
                let page = self.page(id, i);
                self.grants.read_page(page, 0, chunk);
            }
        }
        self.free_id(id);
        Ok(())
    }

    /// As [`release`](Self::release), handing a successful read's data to `take` page by
    /// page (`take(offset within the request, bytes)`) instead of into one buffer.
    pub fn release_with(
        &mut self,
        id: u16,
        take: &mut dyn FnMut(usize, &[u8]),
    ) -> Result<(), BlkError> {
        let idx = usize::from(id);
        let Some(slot) = self.slots[..self.nr_ids].get(idx).copied() else {
            return Err(BlkError::NotCompleted);
        };
        if !matches!(slot.state, SlotState::Done(_)) {
            return Err(BlkError::NotCompleted);
        }
        if let (BLKIF_OP_READ, SlotState::Done(RspStatus::Okay)) = (slot.op, slot.state) {
            let len = slot.nr_sectors as usize * SECTOR_SIZE;
            let mut tmp = [0u8; PAGE_SIZE];
            for (i, off) in (0..len).step_by(PAGE_SIZE).enumerate() {
                let part = &mut tmp[..(len - off).min(PAGE_SIZE)];
                let page = self.page(idx, i);
                self.grants.read_page(page, 0, part);
                take(off, part);
            }
        }
        self.free_id(idx);
        Ok(())
    }

    fn check_range(&self, sector: u64, nr_sectors: u64) -> Result<(), BlkError> {
        match sector.checked_add(nr_sectors) {
            Some(end) if end <= self.info.sectors => Ok(()),
            _ => Err(BlkError::OutOfRange),
        }
    }

    /// Reads `buf.len()` bytes (a multiple of the sector size) from `sector`, waiting.
    pub fn read<N: Notify + ?Sized>(
        &mut self,
        sector: u64,
        buf: &mut [u8],
        notify: &N,
    ) -> Result<(), BlkError> {
        self.transfer(sector, Job::Read(buf), notify)
    }

    /// Writes `data` (a multiple of the sector size) at `sector`, waiting.
    pub fn write<N: Notify + ?Sized>(
        &mut self,
        sector: u64,
        data: &[u8],
        notify: &N,
    ) -> Result<(), BlkError> {
        self.transfer(sector, Job::Write(data), notify)
    }

    /// Flushes the back-end's cache, waiting.
    pub fn flush<N: Notify + ?Sized>(&mut self, notify: &N) -> Result<(), BlkError> {
        self.idle()?;
        let id = self.submit_flush()?;
        self.wait_one(id, notify)
    }

    /// Discards a range, waiting.
    pub fn discard<N: Notify + ?Sized>(
        &mut self,
        sector: u64,
        nr_sectors: u64,
        notify: &N,
    ) -> Result<(), BlkError> {
        self.idle()?;
        let id = self.submit_discard(sector, nr_sectors, false)?;
        self.wait_one(id, notify)
    }

    fn idle(&self) -> Result<(), BlkError> {
        if self.in_flight() != 0 {
            return Err(BlkError::Busy);
        }
        Ok(())
    }

    fn kick<N: Notify + ?Sized>(&mut self, notify: &N) {
        if self.ring.push_requests_and_check_notify() {
            self.stats.notifies += 1;
            notify.notify();
        }
    }

    /// Waits until there is a response to take (`Ok`), or `Notify::wait` gives up: the
    /// final check re-arms the response event before sleeping, so no wakeup is lost.
    /// For callers driving several requests with `submit_*`/`poll`.
    pub fn wait_response<N: Notify + ?Sized>(&mut self, notify: &N) -> Result<(), BlkError> {
        loop {
            if self.ring.final_check_for_responses()? {
                return Ok(());
            }
            if !notify.wait() {
                return Err(BlkError::Timeout);
            }
        }
    }

    fn wait_one<N: Notify + ?Sized>(&mut self, id: u16, notify: &N) -> Result<(), BlkError> {
        self.kick(notify);
        loop {
            match self.poll()? {
                Some(c) => {
                    self.release(c.id, None)?;
                    debug_assert_eq!(c.id, id);
                    return match c.status {
                        RspStatus::Okay => Ok(()),
                        status => Err(BlkError::Status {
                            sector: c.sector,
                            status,
                        }),
                    };
                }
                None => self.wait_response(notify)?,
            }
        }
    }

    fn transfer<N: Notify + ?Sized>(
        &mut self,
        sector: u64,
        mut job: Job<'_>,
        notify: &N,
    ) -> Result<(), BlkError> {
        self.idle()?;
        let len = match &job {
            Job::Read(b) => b.len(),
            Job::Write(d) => d.len(),
        };
        let ss = self.info.sector_size as usize;
        let start = sector
            .checked_mul(SECTOR_SIZE as u64)
            .ok_or(BlkError::OutOfRange)?;
        if !len.is_multiple_of(ss) || !start.is_multiple_of(ss as u64) {
            return Err(BlkError::Unaligned);
        }
        let total = (len / SECTOR_SIZE) as u64;
        self.check_range(sector, total)?;
        if matches!(job, Job::Write(_)) && self.info.readonly() {
            return Err(BlkError::ReadOnly);
        }
        let per_req = u64::from(self.max_sectors_per_request());
        let mut next: u64 = 0; // sectors submitted
        let mut failed: Option<BlkError> = None;
        loop {
            // Fill the ring.
            while failed.is_none() && next < total && self.can_submit() {
                let n = (total - next).min(per_req);
                let off = next as usize * SECTOR_SIZE;
                let data = match &job {
                    Job::Write(d) => Some(Src::Slice(&d[off..off + n as usize * SECTOR_SIZE])),
                    Job::Read(_) => None,
                };
                match self.submit_rw(sector + next, n as u32, data, off) {
                    Ok(_) => next += n,
                    Err(e) => failed = Some(e),
                }
            }
            self.kick(notify);
            // Drain.
            let mut progressed = false;
            while let Some(c) = self.poll()? {
                progressed = true;
                let buf = match &mut job {
                    Job::Read(b) if c.status == RspStatus::Okay => {
                        let off = self.slots[usize::from(c.id)].buf_off;
                        Some(&mut b[off..off + c.nr_sectors as usize * SECTOR_SIZE])
                    }
                    _ => None,
                };
                self.release(c.id, buf)?;
                if c.status != RspStatus::Okay && failed.is_none() {
                    failed = Some(BlkError::Status {
                        sector: c.sector,
                        status: c.status,
                    });
                }
            }
            if self.in_flight() == 0 && (next == total || failed.is_some()) {
                return failed.map_or(Ok(()), Err);
            }
            if !progressed {
                self.wait_response(notify)?;
            }
        }
    }

    /// Ends every grant the driver holds (the persistent ones). Needs no request in flight;
    /// call before closing the device. Returns the grants ended.
    ///
    /// With persistent grants the back-end may keep pages mapped until it disconnects
    /// (Linux's blkback: until the front-end is `Closed`); ending those fails with
    /// [`BlkError::GrantStillInUse`] and may be retried later: ids retired because of a
    /// grant still in use are tried again, and freed once all their grants are ended.
    pub fn teardown(&mut self) -> Result<u64, BlkError> {
        self.idle()?;
        let before = self.stats.grants_ended;
        let mut res = Ok(());
        for id in 0..self.nr_ids {
            match self.slots[id].state {
                SlotState::Free => {
                    if let Err(e) = self.end_grants(id, true) {
                        res = Err(e);
                    }
                }
                SlotState::Dead => match self.end_grants(id, true) {
                    Ok(()) => self.free_id(id),
                    Err(e) => res = Err(e),
                },
                SlotState::InFlight | SlotState::Done(_) => {}
            }
        }
        res.map(|()| self.stats.grants_ended - before)
    }

    /// Gives back the ring and the page pool.
    pub fn into_parts(self) -> (FrontRing<BlkifRequest, BlkifResponse>, G) {
        (self.ring, self.grants)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::string::{String, ToString};

    fn reader(m: &BTreeMap<String, String>) -> impl FnMut(&str, &mut [u8]) -> Option<usize> + '_ {
        |k: &str, buf: &mut [u8]| {
            let v = m.get(k)?.as_bytes();
            let n = v.len().min(buf.len());
            buf[..n].copy_from_slice(&v[..n]);
            Some(v.len())
        }
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn backend_keys() {
        let m = map(&[
            ("sectors", "16384"),
            ("info", "0"),
            ("sector-size", "512"),
            ("feature-flush-cache", "1"),
            ("feature-discard", "1"),
            ("discard-granularity", "4096"),
            ("feature-max-indirect-segments", "256"),
            ("feature-persistent", "1"),
        ]);
        let i = read_backend(&mut reader(&m)).unwrap();
        assert_eq!(i.sectors, 16384);
        assert_eq!(i.physical_sector_size, 512);
        assert!(i.flush_cache && i.discard && i.persistent && !i.barrier && !i.readonly());
        assert_eq!(i.discard_granularity, 4096);
        assert_eq!(i.max_indirect_segments, 256);

        let with = |k: &str, v: &str| {
            let mut n = m.clone();
            n.insert(k.to_string(), v.to_string());
            n
        };
        let without = |k: &str| {
            let mut n = m.clone();
            n.remove(k);
            n
        };
        use BackendKeyError::*;
        for (m, e) in [
            (without("sectors"), Missing("sectors")),
            (without("info"), Missing("info")),
            (without("sector-size"), Missing("sector-size")),
            (with("sectors", "lots"), Invalid("sectors")),
            (
                with("sectors", "99999999999999999999999"),
                Invalid("sectors"),
            ),
            (with("info", "4294967296"), Invalid("info")),
            (with("sector-size", "1000"), Invalid("sector-size")),
            (with("sector-size", "256"), Invalid("sector-size")),
            (
                with("physical-sector-size", "256"),
                Invalid("physical-sector-size"),
            ),
            (
                with("physical-sector-size", "x"),
                Invalid("physical-sector-size"),
            ),
        ] {
            assert_eq!(read_backend(&mut reader(&m)), Err(e));
        }
        // Unreadable optional flags read as 0.
        let i = read_backend(&mut reader(&with("feature-flush-cache", "yes"))).unwrap();
        assert!(!i.flush_cache);
        let i = read_backend(&mut reader(&with("info", "4\0"))).unwrap();
        assert!(i.readonly());
    }

    #[test]
    fn frontend_keys() {
        let mut out = BTreeMap::new();
        publish_frontend(
            GrantRef(42),
            EvtchnPort(7),
            true,
            &mut |k: &str, v: &str| {
                out.insert(k.to_string(), v.to_string());
            },
        );
        assert_eq!(
            out,
            map(&[
                ("ring-ref", "42"),
                ("event-channel", "7"),
                ("protocol", "x86_64-abi"),
                ("feature-persistent", "1")
            ])
        );
    }
}
