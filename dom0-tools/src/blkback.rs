//! `blkback`: the blkif back-end as a dom0 daemon. Serves raw image files (`disk=` lines
//! with `file:`/`phy:` targets written by `xl create`) to front-ends in other domains.
//!
//! The request processing and the xenbus key checks are `blkback_core`'s; this module
//! only wires them to Linux: the xenstore socket ([`Xs`]), `/dev/xen/gntdev` (ring
//! mapping and grant copies) and `/dev/xen/evtchn` ([`crate::sys`]), and a file as the
//! [`BlockStore`]. Each device has its own `Backend` (so a read-only one refuses writes
//! by its config); a ring with persistent grants moves each batch with one
//! `preadv`/`pwritev` straight between the file and the mapped grants
//! ([`DirectIo`]); counters (request shapes, grants, passes) are logged at disconnect.
//!
//! For each `/local/domain/0/backend/qdisk/<domid>/<devid>`: open `params` (read-only when
//! `mode` is `r`), publish the features, `InitWait`; when the front-end is `Initialised`
//! (or `Connected`) read its ring description, map the ring, bind the event channel,
//! publish the disk, `Connected`; serve. When the front-end goes `Closing`/`Closed` (or
//! its directory disappears), unmap and unbind, `Closing`, then `Closed`. When the
//! toolstack removes the back-end directory (`xl destroy`) the device is dropped
//! without writing anything.

use crate::sys::{self, CopySeg, Evtchn, Gntdev, GrantCopyError, IoVecs, MappedBlkRing, MappedPart};
use crate::xs::Xs;
use blkback_core::xenbus::{self as keys, BackendFeatures, DiskInfo};
use blkback_core::{
    Backend, BackendConfig, BlockStore, DirectIo, GrantAccess, GrantError, GrantMapper, GrantSeg, MappedPage, PersistentGrants, RingState,
    StoreError,
};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use xen_abi::GrantRef;

/// Where the toolstack creates our devices: `backendtype=qdisk` disks, the path libxl
/// uses for Xen's userspace back-end (`backend/vbd` belongs to Linux's kernel blkback).
pub const VBD_ROOT: &str = "/local/domain/0/backend/qdisk";

/// The image path in `params`: libxl writes `<format>:<path>` for the userspace
/// back-end (`aio:` for raw images); a bare path is taken as it is.
pub fn image_path(params: &str) -> &str {
    let p = params.trim();
    for prefix in ["aio:", "raw:", "file:"] {
        if let Some(rest) = p.strip_prefix(prefix) {
            return rest;
        }
    }
    p
}

use crate::daemon::{self, may_close, next_step, state_of, Phase, Step, CLOSED, CLOSING, CONNECTED, INIT_WAIT};
pub use crate::daemon::{Error, Result};

/// A raw image file or a block device as a block store (pread/pwrite/fdatasync,
/// discard by punching holes).
#[derive(Debug)]
pub struct FileStore {
    file: File,
    sectors: u64,
    /// Logical and physical sector sizes (a block device's own; 512 for a file).
    sector_size: u32,
    physical_sector_size: u32,
}

impl FileStore {
    pub fn open(path: &str, writable: bool) -> std::io::Result<FileStore> {
        use std::os::unix::fs::FileTypeExt;
        let file = OpenOptions::new().read(true).write(writable).open(path)?;
        let meta = file.metadata()?;
        let (len, sector_size, physical_sector_size) = if meta.file_type().is_block_device() {
            // metadata().len() is 0 for a block device: ask the device.
            sys::block_device_geometry(&file)?
        } else {
            (meta.len(), 512, 512)
        };
        // Whole logical sectors only.
        let len = len - len % u64::from(sector_size);
        Ok(FileStore { file, sectors: len / 512, sector_size, physical_sector_size })
    }

    fn check(&self, sector: u64, len: usize) -> std::result::Result<u64, StoreError> {
        let n = (len / 512) as u64;
        match sector.checked_add(n) {
            Some(end) if end <= self.sectors && len.is_multiple_of(512) => Ok(sector * 512),
            _ => Err(StoreError::OutOfRange),
        }
    }

    /// Reads `len` bytes from `sector` straight into mapped grants (one `preadv`).
    fn read_mapped<'a>(&mut self, sector: u64, len: usize, parts: impl IntoIterator<Item = MappedPart<'a>>, iov: &mut IoVecs) -> std::result::Result<(), StoreError> {
        let at = self.check(sector, len)?;
        sys::pread_into_grants(&self.file, at, len, parts, iov).map_err(|_| StoreError::Io)
    }

    /// Writes `len` bytes of mapped grants to `sector` (one `pwritev`).
    fn write_mapped<'a>(&mut self, sector: u64, len: usize, parts: impl IntoIterator<Item = MappedPart<'a>>, iov: &mut IoVecs) -> std::result::Result<(), StoreError> {
        let at = self.check(sector, len)?;
        sys::pwrite_from_grants(&self.file, at, len, parts, iov).map_err(|_| StoreError::Io)
    }
}

impl BlockStore for FileStore {
    fn sector_count(&self) -> u64 {
        self.sectors
    }
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn physical_sector_size(&self) -> u32 {
        self.physical_sector_size
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> std::result::Result<(), StoreError> {
        let at = self.check(sector, buf.len())?;
        self.file.read_exact_at(buf, at).map_err(|_| StoreError::Io)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> std::result::Result<(), StoreError> {
        let at = self.check(sector, data.len())?;
        self.file.write_all_at(data, at).map_err(|_| StoreError::Io)
    }
    fn flush(&mut self) -> std::result::Result<(), StoreError> {
        self.file.sync_data().map_err(|_| StoreError::Io)
    }
    fn discard(&mut self, sector: u64, nr_sectors: u64, _secure: bool) -> std::result::Result<(), StoreError> {
        let len = nr_sectors.checked_mul(512).ok_or(StoreError::OutOfRange)?;
        if sector.checked_add(nr_sectors).is_none_or(|e| e > self.sectors) {
            return Err(StoreError::OutOfRange);
        }
        if len == 0 {
            return Ok(());
        }
        match sys::punch_hole(&self.file, sector * 512, len) {
            Ok(()) => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EOPNOTSUPP) => Err(StoreError::Unsupported),
            Err(_) => Err(StoreError::Io),
        }
    }
}

/// Rings a front-end may use (`multi-queue-max-queues`; Linux's blkfront uses one per
/// vCPU up to this).
pub const MAX_QUEUES: u32 = 4;
/// Largest ring (`max-ring-page-order`, as Linux's blkback: 16 pages).
pub const MAX_RING_PAGE_ORDER: u8 = 4;

/// Segments moved per batched grant copy (one `IOCTL_GNTDEV_GRANT_COPY`): a whole
/// request of up to 64 segments (11 direct, or pv-guest's and Linux's indirect ones).
pub const BATCH_SEGMENTS: usize = 64;

/// Grants kept mapped per ring when the front-end uses persistent grants (Linux
/// blkback's `xen_blkif_max_pgrants`); beyond that, grants are copied.
pub const MAX_PERSISTENT_GRANTS: usize = 1056;

/// Grant copies through gntdev for one front-end domain; batches are one ioctl each.
#[derive(Debug)]
struct GntCopy {
    dev: Gntdev,
    domid: u16,
    /// Scratch for the ioctl's segment list and statuses.
    segs: Vec<CopySeg>,
    status: Vec<i16>,
}

impl GntCopy {
    fn new(dev: Gntdev, domid: u16) -> GntCopy {
        GntCopy { dev, domid, segs: Vec::with_capacity(BATCH_SEGMENTS), status: Vec::with_capacity(BATCH_SEGMENTS) }
    }

    fn prepare(&mut self, segs: &[GrantSeg]) {
        self.segs.clear();
        self.segs.extend(segs.iter().map(|s| CopySeg { gref: s.gref.0, offset: s.offset, len: s.len }));
        self.status.clear();
        self.status.resize(segs.len(), 0);
    }

    fn finish(&self, segs: &mut [GrantSeg], r: std::io::Result<()>) {
        for (s, &st) in segs.iter_mut().zip(&self.status) {
            s.status = match &r {
                // Refused before the ioctl (its own status), or the ioctl itself failed:
                // no segment moved for sure.
                Err(_) if st != 0 => Err(grant_error(GrantCopyError::Status(st))),
                Err(_) => Err(GrantError::Other(-1)),
                Ok(()) if st == 0 => Ok(()),
                Ok(()) => Err(grant_error(GrantCopyError::Status(st))),
            };
        }
    }
}

fn grant_error(e: GrantCopyError) -> GrantError {
    match e {
        GrantCopyError::Io(_) => GrantError::Other(-1),
        GrantCopyError::Status(s) => GrantError::from_status(s),
    }
}

impl GrantAccess for GntCopy {
    fn copy_from_grant(&mut self, gref: GrantRef, offset: usize, buf: &mut [u8]) -> std::result::Result<(), GrantError> {
        self.dev.copy_from_grant(self.domid, gref.0, offset, buf).map_err(grant_error)
    }
    fn copy_to_grant(&mut self, gref: GrantRef, offset: usize, data: &[u8]) -> std::result::Result<(), GrantError> {
        self.dev.copy_to_grant(self.domid, gref.0, offset, data).map_err(grant_error)
    }
    fn copy_from_grants(&mut self, segs: &mut [GrantSeg], buf: &mut [u8]) {
        self.prepare(segs);
        let r = self.dev.copy_from_grants(self.domid, &self.segs, buf, &mut self.status);
        self.finish(segs, r);
    }
    fn copy_to_grants(&mut self, segs: &mut [GrantSeg], data: &[u8]) {
        self.prepare(segs);
        let r = self.dev.copy_to_grants(self.domid, &self.segs, data, &mut self.status);
        self.finish(segs, r);
    }
}

/// Persistent mappings of single grants through gntdev.
#[derive(Debug)]
struct GntMapper {
    dev: Gntdev,
    domid: u16,
}

/// One grant mapped read-write.
#[derive(Debug)]
struct MappedGrant(sys::GrantMapping);

impl MappedPage for MappedGrant {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        self.0.copy_out(offset, buf);
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        self.0.copy_to(offset, data);
    }
}

impl GrantMapper for GntMapper {
    type Page = MappedGrant;
    fn map(&mut self, gref: GrantRef) -> std::result::Result<MappedGrant, GrantError> {
        self.dev.map(self.domid, &[gref.0]).map(MappedGrant).map_err(|_| GrantError::BadRef)
    }
}

/// How a ring reaches the front-end's data pages.
enum RingGrants {
    /// Batched grant copies.
    Copy(GntCopy),
    /// Persistent mappings (both ends advertised `feature-persistent`), copies beyond
    /// the limit.
    Persistent(Box<Persistent>),
}

/// A ring's persistent mappings, and scratch for moving data straight between them and
/// the file.
struct Persistent {
    grants: PersistentGrants<GntMapper, GntCopy, MAX_PERSISTENT_GRANTS>,
    /// Mapping slots of the batch being moved.
    slots: Vec<usize>,
    iov: IoVecs,
    /// Batches moved by `preadv`/`pwritev` straight into/out of mapped grants, and batches
    /// that went through the bounce buffer (a grant not mapped).
    direct: u64,
    bounced: u64,
}

impl Persistent {
    fn new(grants: PersistentGrants<GntMapper, GntCopy, MAX_PERSISTENT_GRANTS>) -> Persistent {
        Persistent { grants, slots: Vec::with_capacity(BATCH_SEGMENTS), iov: IoVecs::default(), direct: 0, bounced: 0 }
    }

    /// Maps every segment of `segs` (already checked within their frames); false when one
    /// cannot be (the batch then goes through the bounce buffer).
    fn map_all(&mut self, segs: &[GrantSeg]) -> bool {
        self.slots.clear();
        for s in segs {
            if usize::from(s.offset) + usize::from(s.len) > sys::PAGE_SIZE {
                return false;
            }
            match self.grants.mapped_slot(s.gref) {
                Some(i) => self.slots.push(i),
                None => return false,
            }
        }
        true
    }

    fn direct(&mut self, store: &mut FileStore, sector: u64, segs: &mut [GrantSeg], read: bool) -> Option<std::result::Result<(), StoreError>> {
        if !self.map_all(segs) {
            self.bounced += 1;
            return None;
        }
        self.direct += 1;
        let grants = &self.grants;
        let parts = segs.iter().zip(&self.slots).filter_map(|(s, &i)| {
            grants.page(i).map(|page| MappedPart { map: &page.0, offset: usize::from(s.offset), len: usize::from(s.len) })
        });
        let len = segs.iter().map(|s| usize::from(s.len)).sum();
        let r = if read { store.read_mapped(sector, len, parts, &mut self.iov) } else { store.write_mapped(sector, len, parts, &mut self.iov) };
        // Every grant was usable; a failure is the store's (and fails the request).
        for s in segs.iter_mut() {
            s.status = Ok(());
        }
        Some(r)
    }
}

impl std::fmt::Debug for RingGrants {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RingGrants::Copy(_) => f.write_str("Copy"),
            RingGrants::Persistent(p) => write!(f, "{:?}", p.grants),
        }
    }
}

impl RingGrants {
    fn access(&mut self) -> &mut dyn GrantAccess {
        match self {
            RingGrants::Copy(g) => g,
            RingGrants::Persistent(p) => &mut p.grants,
        }
    }
}

impl GrantAccess for RingGrants {
    fn copy_from_grant(&mut self, gref: GrantRef, offset: usize, buf: &mut [u8]) -> std::result::Result<(), GrantError> {
        self.access().copy_from_grant(gref, offset, buf)
    }
    fn copy_to_grant(&mut self, gref: GrantRef, offset: usize, data: &[u8]) -> std::result::Result<(), GrantError> {
        self.access().copy_to_grant(gref, offset, data)
    }
    fn copy_from_grants(&mut self, segs: &mut [GrantSeg], buf: &mut [u8]) {
        self.access().copy_from_grants(segs, buf)
    }
    fn copy_to_grants(&mut self, segs: &mut [GrantSeg], data: &[u8]) {
        self.access().copy_to_grants(segs, data)
    }
}

/// Persistently mapped batches move with one `preadv`/`pwritev` between the file and the
/// front-end's pages (no bounce buffer, no second copy); the rest through the bounce buffer.
impl DirectIo<FileStore> for RingGrants {
    fn read_direct(&mut self, store: &mut FileStore, sector: u64, segs: &mut [GrantSeg]) -> Option<std::result::Result<(), StoreError>> {
        match self {
            RingGrants::Copy(_) => None,
            RingGrants::Persistent(p) => p.direct(store, sector, segs, true),
        }
    }
    fn write_direct(&mut self, store: &mut FileStore, sector: u64, segs: &mut [GrantSeg]) -> Option<std::result::Result<(), StoreError>> {
        match self {
            RingGrants::Copy(_) => None,
            RingGrants::Persistent(p) => p.direct(store, sector, segs, false),
        }
    }
}

/// A connected ring.
#[derive(Debug)]
struct Conn {
    ring: MappedBlkRing,
    grants: RingGrants,
    /// Our end of the event channel.
    port: u32,
    requests: u64,
    /// Passes over the ring that answered requests, and the most answered in one.
    passes: u64,
    max_per_pass: u32,
    /// With `--timing`: time spent serving the ring and sectors moved, in passes of large
    /// requests (64 sectors or more on average) and of small ones: what the daemon itself
    /// costs, apart from the round trips through Xen and the front-end.
    busy: [std::time::Duration; 2],
    sectors: [u64; 2],
    /// Serve again without waiting for an event.
    more: bool,
}

#[derive(Debug)]
struct Device {
    be: String,
    fe: String,
    fe_id: u16,
    phase: Phase,
    /// The request processor with this device's configuration (read-only or not); made
    /// with the store.
    backend: Option<Box<Backend<BATCH_SEGMENTS>>>,
    store: Option<FileStore>,
    /// One per queue (ring) while connected.
    conns: Vec<Conn>,
}

/// The daemon: one xenstore connection, one event-channel handle, every device.
#[derive(Debug)]
pub struct Blkback {
    xs: Xs,
    evtchn: Evtchn,
    devices: BTreeMap<(u16, u32), Device>,
    /// Exit once a device was served and none is left (for tests).
    pub exit_when_idle: bool,
    /// Time each pass over a ring (two `clock_gettime` per pass, syscalls in a PV dom0
    /// without a stable TSC): the busy figures logged at disconnect.
    pub timing: bool,
    served_any: bool,
}

impl Blkback {
    pub fn new() -> Result<Blkback> {
        let mut xs = Xs::open()?;
        xs.watch(VBD_ROOT, "vbd")?;
        Ok(Blkback {
            xs,
            evtchn: Evtchn::open()?,
            devices: BTreeMap::new(),
            exit_when_idle: false,
            timing: false,
            served_any: false,
        })
    }

    /// Serves until an unrecoverable error (or, with `exit_when_idle`, until every
    /// device served is gone).
    pub fn run(&mut self) -> Result<()> {
        self.rescan()?;
        loop {
            let busy = self.devices.values().any(|d| d.conns.iter().any(|c| c.more));
            let timeout = if busy || !self.xs.events.is_empty() { 0 } else { 1000 };
            let ready = sys::poll_readable(&[self.xs.fd(), self.evtchn.fd()], timeout)?;
            let mut store_changed = !self.xs.events.is_empty();
            self.xs.events.clear();
            if ready[0] && self.xs.read_event()?.is_some() {
                store_changed = true;
            }
            if ready[1] {
                for p in self.evtchn.pending()? {
                    if let Some(c) = self.devices.values_mut().flat_map(|d| d.conns.iter_mut()).find(|c| c.port == p) {
                        c.more = true;
                    }
                }
            }
            self.serve_rings();
            if store_changed {
                self.rescan()?;
            }
            if self.exit_when_idle && self.served_any && self.devices.is_empty() {
                return Ok(());
            }
        }
    }

    fn serve_rings(&mut self) {
        let mut failed = Vec::new();
        for (key, d) in self.devices.iter_mut() {
            let (Some(store), Some(backend)) = (d.store.as_mut(), d.backend.as_mut()) else { continue };
            for (q, c) in d.conns.iter_mut().enumerate() {
                if !c.more {
                    continue;
                }
                // Up to the budget (64) per pass, the front-end notified once at its end
                // (when it asked): a syscall and a hypercall each, dear in a PV dom0.
                let t0 = self.timing.then(std::time::Instant::now);
                let sect0 = backend.stats().rd_sect + backend.stats().wr_sect;
                let out = backend.process_direct(c.ring.ring(), &mut c.grants, store);
                let served = out.requests;
                if out.notify {
                    let _ = self.evtchn.notify(c.port);
                }
                c.requests += u64::from(served);
                if served > 0 {
                    c.passes += 1;
                    c.max_per_pass = c.max_per_pass.max(served);
                    if let Some(t0) = t0 {
                        let sectors = backend.stats().rd_sect + backend.stats().wr_sect - sect0;
                        let large = usize::from(sectors >= 64 * u64::from(served));
                        c.busy[large] += t0.elapsed();
                        c.sectors[large] += sectors;
                    }
                }
                match out.state {
                    RingState::Idle => c.more = false,
                    RingState::MoreWork => c.more = true,
                    RingState::Disconnect(e) => {
                        // One broken ring takes the whole device down (as Linux's blkback).
                        eprintln!("blkback: {}: front-end broke ring {q} ({e}); disconnecting", d.be);
                        failed.push(*key);
                        break;
                    }
                }
            }
        }
        for k in failed {
            if let Some(d) = self.devices.get_mut(&k) {
                disconnect(&self.evtchn, d);
                d.phase = Phase::Closing;
                let _ = set_state(&mut self.xs, d, CLOSING);
            }
        }
    }

    /// Picks up new devices, drops removed ones, and moves each along the handshake.
    fn rescan(&mut self) -> Result<()> {
        let present = daemon::list_devices(&mut self.xs, VBD_ROOT);
        for k in daemon::removed(&self.devices, &present) {
            if let Some(mut d) = self.devices.remove(&k) {
                disconnect(&self.evtchn, &mut d);
                let _ = self.xs.unwatch(&format!("{}/state", d.fe), "fe");
                eprintln!("blkback: {}: removed by the toolstack", d.be);
            }
        }
        for k in present {
            let d = self.devices.entry(k).or_insert_with(|| Device {
                be: format!("{VBD_ROOT}/{}/{}", k.0, k.1),
                fe: String::new(),
                fe_id: k.0,
                phase: Phase::New,
                backend: None,
                store: None,
                conns: Vec::new(),
            });
            if let Err(e) = step(&mut self.xs, &self.evtchn, d) {
                eprintln!("blkback: {e}");
                disconnect(&self.evtchn, d);
                d.phase = Phase::Failed;
                let _ = set_state(&mut self.xs, d, CLOSING);
            }
            if d.phase == Phase::Connected {
                self.served_any = true;
            }
        }
        Ok(())
    }
}

/// Unmaps the ring and unbinds the channel (idempotent).
fn disconnect(evtchn: &Evtchn, d: &mut Device) {
    if d.conns.is_empty() {
        return;
    }
    let requests: Vec<u64> = d.conns.iter().map(|c| c.requests).collect();
    for (q, c) in d.conns.iter().enumerate() {
        let busy = if c.sectors == [0; 2] {
            String::new()
        } else {
            format!(
                "; busy {} ms for {} sectors in large-request passes, {} ms for {} sectors in small ones",
                c.busy[1].as_millis(),
                c.sectors[1],
                c.busy[0].as_millis(),
                c.sectors[0]
            )
        };
        eprintln!("blkback: {}: ring {q}: {} requests in {} passes (at most {} in one){busy}", d.be, c.requests, c.passes, c.max_per_pass);
        if let RingGrants::Persistent(p) = &c.grants {
            eprintln!(
                "blkback: {}: ring {q}: persistent grants: {} mapped, {:?}; batches by preadv/pwritev {}, through the bounce buffer {}",
                d.be,
                p.grants.len(),
                p.grants.stats(),
                p.direct,
                p.bounced
            );
        }
    }
    if let Some(b) = &d.backend {
        // The request shapes the front-end sent (segments per read/write request).
        eprintln!("blkback: {}: {:?}", d.be, b.stats());
    }
    for c in d.conns.drain(..) {
        let _ = evtchn.unbind(c.port);
        // `c.ring` drops here: the ring, then the grant mapping.
    }
    eprintln!("blkback: {}: disconnected after {requests:?} requests", d.be);
}

/// The request processor for a device: read-only (writes, flushes, barriers and discards
/// refused with `BLKIF_RSP_ERROR` before touching the file) unless `writable`.
fn device_backend(writable: bool) -> Box<Backend<BATCH_SEGMENTS>> {
    Box::new(Backend::with_batch(BackendConfig { readonly: !writable, ..BackendConfig::DEFAULT }))
}

fn dev_err(d: &Device, what: impl std::fmt::Display) -> Error {
    Error::Device(d.be.clone(), what.to_string())
}

fn set_state(xs: &mut Xs, d: &Device, s: u32) -> Result<()> {
    daemon::write_backend_keys(xs, &d.be, &[("state", s.to_string())])
}

/// One step of the xenbus handshake for `d`, as far as the front-end's state allows.
fn step(xs: &mut Xs, evtchn: &Evtchn, d: &mut Device) -> Result<()> {
    if d.phase == Phase::New {
        let be = d.be.clone();
        let rd = |xs: &mut Xs, k: &str| xs.read_string(0, &format!("{be}/{k}"));
        let fe = rd(xs, "frontend").map_err(|e| dev_err(d, format!("frontend: {e}")))?;
        let fe_id: u16 = rd(xs, "frontend-id").ok().and_then(|v| v.trim().parse().ok()).ok_or_else(|| dev_err(d, "frontend-id"))?;
        if fe_id != d.fe_id {
            return Err(dev_err(d, format!("frontend-id {fe_id} under {VBD_ROOT}/{}", d.fe_id)));
        }
        let params = rd(xs, "params").map_err(|e| dev_err(d, format!("params: {e}")))?;
        let writable = rd(xs, "mode").map(|m| m.trim() != "r").unwrap_or(false);
        let store = FileStore::open(image_path(&params), writable).map_err(|e| dev_err(d, format!("{params}: {e}")))?;
        d.fe = fe;
        let backend = device_backend(writable);
        let features = BackendFeatures { max_queues: MAX_QUEUES, max_ring_page_order: MAX_RING_PAGE_ORDER, ..BackendFeatures::of(&store, backend.config(), 0) };
        let mut kv: Vec<(String, String)> = Vec::new();
        keys::publish_features(&features, &mut |k: &str, v: &str| kv.push((k.to_string(), v.to_string())));
        daemon::write_backend_keys(xs, &be, &kv)?;
        xs.watch(&format!("{}/state", d.fe), "fe")?;
        d.store = Some(store);
        d.backend = Some(backend);
        set_state(xs, d, INIT_WAIT)?;
        d.phase = Phase::InitWait;
        eprintln!("blkback: {be}: {params} ({}) for d{fe_id} at {}: InitWait", if writable { "rw" } else { "ro" }, d.fe);
    }
    let fe_state = state_of(xs, &d.fe);
    match next_step(d.phase, fe_state) {
        Step::Connect => connect(xs, evtchn, d)?,
        Step::Close { disconnect: connected } => {
            if connected {
                disconnect(evtchn, d);
            }
            set_state(xs, d, CLOSING)?;
            d.phase = Phase::Closing;
        }
        Step::Stay => {}
    }
    if may_close(d.phase, fe_state) {
        set_state(xs, d, CLOSED)?;
        d.phase = Phase::Closed;
        eprintln!("blkback: {}: Closed", d.be);
    }
    Ok(())
}

fn connect(xs: &mut Xs, evtchn: &Evtchn, d: &mut Device) -> Result<()> {
    let fe = d.fe.clone();
    let queues = keys::read_frontend_queues(
        &mut |k: &str, buf: &mut [u8]| {
            let v = xs.read(0, &format!("{fe}/{k}")).ok()?;
            let n = v.len().min(buf.len());
            buf[..n].copy_from_slice(&v[..n]);
            Some(v.len())
        },
        MAX_RING_PAGE_ORDER,
        MAX_QUEUES,
    )
    .map_err(|e| dev_err(d, e))?;
    let gnt = Gntdev::open()?;
    let mut described = Vec::new();
    for (q, ring) in queues.rings().iter().enumerate() {
        let refs: Vec<u32> = ring.ring_refs().iter().map(|r| r.0).collect();
        // On failure the rings mapped so far drop with `d.conns` in `disconnect`.
        let map = gnt.map(d.fe_id, &refs).map_err(|e| dev_err(d, format!("mapping ring {q} {refs:?}: {e}")))?;
        let ring_map = MappedBlkRing::new(map).map_err(|e| dev_err(d, format!("ring {q}: {e}")))?;
        let port = evtchn
            .bind_interdomain(u32::from(d.fe_id), ring.event_channel.0)
            .map_err(|e| dev_err(d, format!("binding event channel {}: {e}", ring.event_channel.0)))?;
        let copy = GntCopy::new(gnt.clone(), d.fe_id);
        let grants = if ring.persistent {
            let mapper = GntMapper { dev: gnt.clone(), domid: d.fe_id };
            RingGrants::Persistent(Box::new(Persistent::new(PersistentGrants::new(mapper, copy, MAX_PERSISTENT_GRANTS))))
        } else {
            RingGrants::Copy(copy)
        };
        d.conns.push(Conn { ring: ring_map, grants, port, requests: 0, passes: 0, max_per_pass: 0, busy: Default::default(), sectors: [0; 2], more: true });
        let how = if ring.persistent { ", persistent grants" } else { "" };
        described.push(format!("ring-ref {refs:?}, event channel {} -> local {port}{how}", ring.event_channel.0));
    }
    let store = d.store.as_ref().expect("opened in New");
    let cfg = *d.backend.as_ref().expect("made in New").config();
    let be = d.be.clone();
    let mut kv: Vec<(String, String)> = Vec::new();
    keys::publish_disk(&DiskInfo::of(store, &cfg, 0), &mut |k: &str, v: &str| kv.push((k.to_string(), v.to_string())));
    daemon::write_backend_keys(xs, &be, &kv)?;
    set_state(xs, d, CONNECTED)?;
    d.phase = Phase::Connected;
    eprintln!("blkback: {be}: Connected ({})", described.join("; "));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_path_strips_the_format() {
        assert_eq!(image_path("aio:/tmp/a.img"), "/tmp/a.img");
        assert_eq!(image_path("/dev/loop0\n"), "/dev/loop0");
        assert_eq!(image_path("raw:/x"), "/x");
    }

    #[test]
    fn file_store_bounds_and_io() {
        let p = std::env::temp_dir().join(format!("blkback-test-{}.img", std::process::id()));
        std::fs::write(&p, vec![0u8; 8 * 512 + 100]).unwrap();
        let mut s = FileStore::open(p.to_str().unwrap(), true).unwrap();
        assert_eq!(s.sector_count(), 8);
        s.write(7, &[9u8; 512]).unwrap();
        assert_eq!(s.write(7, &[9u8; 1024]), Err(StoreError::OutOfRange));
        assert_eq!(s.write(u64::MAX, &[9u8; 512]), Err(StoreError::OutOfRange));
        let mut b = [0u8; 512];
        s.read(7, &mut b).unwrap();
        assert_eq!(b, [9u8; 512]);
        s.flush().unwrap();
        match s.discard(7, 1, false) {
            Ok(()) => {
                s.read(7, &mut b).unwrap();
                assert_eq!(b, [0u8; 512]);
            }
            Err(e) => assert_eq!(e, StoreError::Unsupported),
        }
        assert_eq!(s.discard(7, 2, false), Err(StoreError::OutOfRange));
        assert_eq!((s.sector_size(), s.physical_sector_size()), (512, 512));
        let _ = std::fs::remove_file(&p);
    }

    /// Front-end pages for `Backend::handle`: reference `r` is page `r`.
    struct Pages(Vec<[u8; 4096]>);

    impl GrantAccess for Pages {
        fn copy_from_grant(&mut self, g: GrantRef, off: usize, buf: &mut [u8]) -> std::result::Result<(), GrantError> {
            let p = self.0.get(g.0 as usize).ok_or(GrantError::BadRef)?;
            buf.copy_from_slice(p.get(off..off + buf.len()).ok_or(GrantError::OutOfBounds)?);
            Ok(())
        }
        fn copy_to_grant(&mut self, g: GrantRef, off: usize, data: &[u8]) -> std::result::Result<(), GrantError> {
            let p = self.0.get_mut(g.0 as usize).ok_or(GrantError::BadRef)?;
            p.get_mut(off..off + data.len()).ok_or(GrantError::OutOfBounds)?.copy_from_slice(data);
            Ok(())
        }
    }

    /// A device whose `mode` is `r` gets a read-only `Backend` of its own: writes,
    /// flushes, barriers and discards are refused with `BLKIF_RSP_ERROR` by the config
    /// (blkback-core's rules), before the file is touched — a flush on the read-only file
    /// would otherwise succeed — and reads are served. A writable device beside it (its own
    /// `Backend`) takes the same requests.
    #[test]
    fn read_only_device_refuses_writes_up_front() {
        use xen_abi::blkif::*;
        use zerocopy::{FromZeros, IntoBytes};
        let p = std::env::temp_dir().join(format!("blkback-ro-{}.img", std::process::id()));
        let image: Vec<u8> = (0..16 * 512).map(|i| (i % 251) as u8).collect();
        std::fs::write(&p, &image).unwrap();
        let path = p.to_str().unwrap();
        let mut ro_store = FileStore::open(path, false).unwrap();
        let mut rw_store = FileStore::open(path, true).unwrap();
        let mut ro = device_backend(false);
        let mut rw = device_backend(true);
        assert!(ro.config().readonly && !rw.config().readonly);
        assert_eq!(BackendFeatures::of(&ro_store, ro.config(), 0), BackendFeatures::of(&ro_store, &BackendConfig { readonly: true, ..BackendConfig::DEFAULT }, 0));
        let mut pages = Pages(vec![[0xa5; 4096]; 3]);

        let req = |op: u8, nseg: u8| {
            let mut r = BlkifRequest::new_zeroed();
            r.operation = op;
            r.nr_segments = nseg;
            r.id = 7;
            r.sector_number = 8;
            r.seg[0] = BlkifRequestSegment { gref: 1, first_sect: 0, last_sect: 7, _pad: [0; 2] };
            r
        };
        let discard = {
            let d = BlkifRequestDiscard { operation: BLKIF_OP_DISCARD, id: 7, sector_number: 0, nr_sectors: 8, ..Default::default() };
            let mut r = BlkifRequest::new_zeroed();
            r.as_mut_bytes()[..size_of::<BlkifRequestDiscard>()].copy_from_slice(d.as_bytes());
            r
        };
        let indirect_write = {
            let mut ind = BlkifRequestIndirect { operation: BLKIF_OP_INDIRECT, indirect_op: BLKIF_OP_WRITE, nr_segments: 1, id: 7, sector_number: 0, ..Default::default() };
            ind.indirect_grefs[0] = 2;
            let mut r = BlkifRequest::new_zeroed();
            r.as_mut_bytes()[..size_of::<BlkifRequestIndirect>()].copy_from_slice(ind.as_bytes());
            r
        };
        // The indirect page: one segment, page 1, whole.
        pages.0[2][..8].copy_from_slice(BlkifRequestSegment { gref: 1, first_sect: 0, last_sect: 7, _pad: [0; 2] }.as_bytes());
        let refused = [
            req(BLKIF_OP_WRITE, 1),
            req(BLKIF_OP_FLUSH_DISKCACHE, 0),
            req(BLKIF_OP_WRITE_BARRIER, 0),
            discard,
            indirect_write,
        ];
        for r in &refused {
            let rsp = ro.handle(r, &mut pages, &mut ro_store);
            assert_eq!(rsp.status, BLKIF_RSP_ERROR, "read-only device, {r:?}");
        }
        assert_eq!(ro.stats().errors, refused.len() as u64);
        assert_eq!(ro.stats().wr_sect, 0);
        assert_eq!(std::fs::read(&p).unwrap(), image, "the file is untouched");
        let rsp = ro.handle(&req(BLKIF_OP_READ, 1), &mut pages, &mut ro_store);
        assert_eq!(rsp.status, BLKIF_RSP_OKAY);
        assert_eq!(pages.0[1][..], image[8 * 512..16 * 512]);

        // The writable device: the same write and flush go through.
        pages.0[1].fill(0x3c);
        for r in [req(BLKIF_OP_WRITE, 1), req(BLKIF_OP_FLUSH_DISKCACHE, 0)] {
            assert_eq!(rw.handle(&r, &mut pages, &mut rw_store).status, BLKIF_RSP_OKAY, "{r:?}");
        }
        assert!(std::fs::read(&p).unwrap()[8 * 512..].iter().all(|&b| b == 0x3c));
        assert_eq!(ro.stats().wr_req + ro.stats().f_req, 4, "counted on the read-only device only");
        let _ = std::fs::remove_file(&p);
    }

    /// A block device's size comes from BLKGETSIZE64 (its metadata length is 0): a loop
    /// device over a 3 MiB image (when `losetup` works here, i.e. as root), read and
    /// written through the store. Skipped where no loop device can be set up.
    #[test]
    fn file_store_on_a_block_device() {
        let img = std::env::temp_dir().join(format!("blkback-loop-{}.img", std::process::id()));
        std::fs::write(&img, vec![7u8; 3 << 20]).unwrap();
        let out = std::process::Command::new("losetup").args(["-f", "--show"]).arg(&img).output();
        let dev = match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).trim().to_string(),
            _ => {
                let _ = std::fs::remove_file(&img);
                eprintln!("no loop device: skipped");
                return;
            }
        };
        let r = std::panic::catch_unwind(|| {
            assert_eq!(std::fs::metadata(&dev).unwrap().len(), 0, "a block device's length is 0");
            let mut s = FileStore::open(&dev, true).unwrap();
            assert_eq!(s.sector_count(), (3 << 20) / 512);
            assert!(s.sector_size() >= 512 && s.sector_size().is_power_of_two());
            let ss = s.sector_size() as usize;
            let last = s.sector_count() - (ss / 512) as u64;
            s.write(last, &vec![9u8; ss]).unwrap();
            s.flush().unwrap();
            let mut b = vec![0u8; ss];
            s.read(last, &mut b).unwrap();
            assert!(b.iter().all(|&x| x == 9));
            assert_eq!(s.read(s.sector_count(), &mut b), Err(StoreError::OutOfRange));
        });
        let _ = std::process::Command::new("losetup").args(["-d", &dev]).status();
        let _ = std::fs::remove_file(&img);
        if let Err(e) = r {
            std::panic::resume_unwind(e);
        }
    }
}
