//! Test fixtures: one shared ring page, a fake grant table (the front-end's page pool and
//! its grants), event channels in memory, a RAM disk, and pattern data.
#![allow(dead_code)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use blkback_core::{Backend, BlockStore, GrantAccess, GrantError, Outcome, RingState, StoreError};
use frontend_drivers::blkfront::{self, BackendInfo, FrontGrants};
use frontend_drivers::Notify;
use xen_abi::blkif::{BlkifRequest, BlkifResponse};
use xen_abi::GrantRef;
use xen_ring::{BackRing, FrontRing, RingIdx};

pub const PAGE: usize = 4096;

pub type Front = FrontRing<BlkifRequest, BlkifResponse>;
pub type Back = BackRing<BlkifRequest, BlkifResponse>;

#[repr(C, align(4096))]
struct RingPage([u8; PAGE]);

/// A fresh zeroed, 4096-aligned ring page, deliberately leaked so that it stays valid for
/// every ring built on it, whatever order the test drops things in.
fn ring_page() -> *mut u8 {
    Box::into_raw(Box::new(RingPage([0; PAGE]))).cast::<u8>()
}

/// A front and a back end on one new shared page (`FrontRing::init`, `BackRing::init`).
pub fn ring_pair() -> (Front, Back) {
    let page = ring_page();
    // SAFETY: `page` is a leaked (never freed) 4096-byte, 4096-aligned allocation, so it
    // stays mapped, readable and writable for the rest of the process; no Rust reference
    // to it exists and it is accessed only through the two rings created here (one front,
    // one back), which is the sharing the contract allows.
    let front = unsafe { FrontRing::init(page, PAGE) }.unwrap();
    // SAFETY: as above; the front end initialised the page just now.
    let back = unsafe { BackRing::init(page, PAGE) }.unwrap();
    (front, back)
}

/// A back end on a new page and a front end attached with private indices starting at
/// `idx` (a hostile front-end whose `req_prod` can be anything).
pub fn ring_pair_at(idx: RingIdx) -> (Front, Back) {
    let page = ring_page();
    // SAFETY: as in `ring_pair`. `init` runs first so the header is initialised, then a
    // second `FrontRing` is never made: the initialising one is dropped before `attach`.
    let init = unsafe { FrontRing::<BlkifRequest, BlkifResponse>::init(page, PAGE) }.unwrap();
    let _ = init;
    // SAFETY: as above; only this front ring and the back ring below drive the page.
    let front = unsafe { FrontRing::attach(page, PAGE, idx) }.unwrap();
    // SAFETY: as above.
    let back = unsafe { BackRing::init(page, PAGE) }.unwrap();
    (front, back)
}

/// A front end on a new page and a back end attached at `idx` (a hostile back-end).
pub fn ring_pair_back_at(idx: RingIdx) -> (Front, Back) {
    let page = ring_page();
    // SAFETY: as in `ring_pair`.
    let front = unsafe { FrontRing::init(page, PAGE) }.unwrap();
    // SAFETY: as above.
    let back = unsafe { BackRing::attach(page, PAGE, idx) }.unwrap();
    (front, back)
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    page: usize,
    readonly: bool,
}

/// The front-end's page pool and grant table. Grant references start at 8 (0..7 are
/// reserved) and freed ones are reused, as a real table does.
#[derive(Debug)]
pub struct GrantTable {
    pages: Vec<[u8; PAGE]>,
    entries: HashMap<u32, Entry>,
    free_refs: Vec<u32>,
    next_ref: u32,
    pub granted_total: u64,
    pub copies: u64,
    /// Persistent mappings alive ([`FakeMapper`]), by reference.
    pub mapped_refs: Vec<u32>,
}

impl GrantTable {
    pub fn new(pages: usize) -> Self {
        Self {
            pages: vec![[0; PAGE]; pages],
            entries: HashMap::new(),
            free_refs: Vec::new(),
            next_ref: 8,
            granted_total: 0,
            copies: 0,
            mapped_refs: Vec::new(),
        }
    }
    /// Grants currently active.
    pub fn active(&self) -> usize {
        self.entries.len()
    }
    pub fn page_mut(&mut self, page: usize) -> &mut [u8; PAGE] {
        &mut self.pages[page]
    }
    pub fn grant(&mut self, page: usize, readonly: bool) -> GrantRef {
        let r = self.free_refs.pop().unwrap_or_else(|| {
            self.next_ref += 1;
            self.next_ref - 1
        });
        self.entries.insert(r, Entry { page, readonly });
        self.granted_total += 1;
        GrantRef(r)
    }
    fn lookup(
        &self,
        gref: GrantRef,
        offset: usize,
        len: usize,
        write: bool,
    ) -> Result<usize, GrantError> {
        let e = self.entries.get(&gref.0).ok_or(GrantError::BadRef)?;
        if write && e.readonly {
            return Err(GrantError::ReadOnly);
        }
        if offset.checked_add(len).is_none_or(|end| end > PAGE) {
            return Err(GrantError::OutOfBounds);
        }
        Ok(e.page)
    }
}

pub type SharedTable = Arc<Mutex<GrantTable>>;

pub fn table(pages: usize) -> SharedTable {
    Arc::new(Mutex::new(GrantTable::new(pages)))
}

/// The front-end's view: [`FrontGrants`].
#[derive(Debug, Clone)]
pub struct FrontSide(pub SharedTable);

impl FrontGrants for FrontSide {
    fn page_count(&self) -> usize {
        self.0.lock().unwrap().pages.len()
    }
    fn grant(&mut self, page: usize, readonly: bool) -> Result<GrantRef, blkfront::GrantError> {
        Ok(self.0.lock().unwrap().grant(page, readonly))
    }
    fn end_access(&mut self, gref: GrantRef) -> Result<(), blkfront::GrantError> {
        let mut t = self.0.lock().unwrap();
        if t.mapped_refs.contains(&gref.0) {
            return Err(blkfront::GrantError::InUse);
        }
        match t.entries.remove(&gref.0) {
            Some(_) => {
                t.free_refs.push(gref.0);
                Ok(())
            }
            None => Err(blkfront::GrantError::Other(-3)),
        }
    }
    fn write_page(&mut self, page: usize, offset: usize, data: &[u8]) {
        self.0.lock().unwrap().pages[page][offset..offset + data.len()].copy_from_slice(data);
    }
    fn read_page(&mut self, page: usize, offset: usize, buf: &mut [u8]) {
        let len = buf.len();
        buf.copy_from_slice(&self.0.lock().unwrap().pages[page][offset..offset + len]);
    }
}

/// The back-end's view: [`GrantAccess`] (a grant copy).
#[derive(Debug, Clone)]
pub struct BackSide(pub SharedTable);

impl GrantAccess for BackSide {
    fn copy_from_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        let mut t = self.0.lock().unwrap();
        let page = t.lookup(gref, offset, buf.len(), false)?;
        buf.copy_from_slice(&t.pages[page][offset..offset + buf.len()]);
        t.copies += 1;
        Ok(())
    }
    fn copy_to_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        let mut t = self.0.lock().unwrap();
        let page = t.lookup(gref, offset, data.len(), true)?;
        t.pages[page][offset..offset + data.len()].copy_from_slice(data);
        t.copies += 1;
        Ok(())
    }
}

/// The back-end's view with native batched copies (one lock per batch, per-segment
/// status), counting batches, as a gntdev `IOCTL_GNTDEV_GRANT_COPY` with `count` does.
#[derive(Debug, Clone)]
pub struct BatchSide(pub SharedTable, pub Arc<Mutex<Vec<usize>>>);

impl BatchSide {
    pub fn new(t: SharedTable) -> Self {
        Self(t, Arc::new(Mutex::new(Vec::new())))
    }
    /// Sizes (segments) of the batches so far.
    pub fn batches(&self) -> Vec<usize> {
        self.1.lock().unwrap().clone()
    }
}

impl GrantAccess for BatchSide {
    fn copy_from_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        buf: &mut [u8],
    ) -> Result<(), GrantError> {
        BackSide(self.0.clone()).copy_from_grant(gref, offset, buf)
    }
    fn copy_to_grant(
        &mut self,
        gref: GrantRef,
        offset: usize,
        data: &[u8],
    ) -> Result<(), GrantError> {
        BackSide(self.0.clone()).copy_to_grant(gref, offset, data)
    }
    fn copy_from_grants(&mut self, segs: &mut [blkback_core::GrantSeg], buf: &mut [u8]) {
        self.1.lock().unwrap().push(segs.len());
        let mut t = self.0.lock().unwrap();
        let mut at = 0;
        for s in segs {
            let (off, n) = (usize::from(s.offset), usize::from(s.len));
            s.status = if at + n > buf.len() {
                Err(GrantError::OutOfBounds)
            } else {
                t.lookup(s.gref, off, n, false).map(|page| {
                    buf[at..at + n].copy_from_slice(&t.pages[page][off..off + n]);
                })
            };
            at += n;
        }
        t.copies += 1;
    }
    fn copy_to_grants(&mut self, segs: &mut [blkback_core::GrantSeg], data: &[u8]) {
        self.1.lock().unwrap().push(segs.len());
        let mut t = self.0.lock().unwrap();
        let mut at = 0;
        for s in segs {
            let (off, n) = (usize::from(s.offset), usize::from(s.len));
            s.status = if at + n > data.len() {
                Err(GrantError::OutOfBounds)
            } else {
                t.lookup(s.gref, off, n, true).map(|page| {
                    t.pages[page][off..off + n].copy_from_slice(&data[at..at + n]);
                })
            };
            at += n;
        }
        t.copies += 1;
    }
}

/// The back-end's persistent mappings of the fake table: a mapping holds the page
/// (`GrantTable::mapped_refs` lists live ones; the front-end cannot end access to those); read-only or unknown grants do not map.
#[derive(Debug, Clone)]
pub struct FakeMapper(pub SharedTable);

#[derive(Debug)]
pub struct FakePage {
    table: SharedTable,
    page: usize,
    gref: u32,
}

impl blkback_core::MappedPage for FakePage {
    fn read(&self, offset: usize, buf: &mut [u8]) {
        let t = self.table.lock().unwrap();
        buf.copy_from_slice(&t.pages[self.page][offset..offset + buf.len()]);
    }
    fn write(&mut self, offset: usize, data: &[u8]) {
        let mut t = self.table.lock().unwrap();
        t.pages[self.page][offset..offset + data.len()].copy_from_slice(data);
    }
}

impl Drop for FakePage {
    fn drop(&mut self) {
        let mut t = self.table.lock().unwrap();
        let i = t.mapped_refs.iter().position(|&r| r == self.gref).unwrap();
        t.mapped_refs.swap_remove(i);
    }
}

impl blkback_core::GrantMapper for FakeMapper {
    type Page = FakePage;
    fn map(&mut self, gref: GrantRef) -> Result<FakePage, GrantError> {
        let mut t = self.0.lock().unwrap();
        let page = t.lookup(gref, 0, PAGE, true)?;
        t.mapped_refs.push(gref.0);
        Ok(FakePage {
            table: self.0.clone(),
            page,
            gref: gref.0,
        })
    }
}

/// A store wrapper that can refuse flush/discard and fail I/O, with a logical sector size.
#[derive(Debug)]
pub struct TestStore<S> {
    pub inner: S,
    pub flush: Result<(), StoreError>,
    pub discard: Result<(), StoreError>,
    pub sector_size: u32,
    pub flushes: u64,
}

impl<S> TestStore<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            flush: Ok(()),
            discard: Ok(()),
            sector_size: 512,
            flushes: 0,
        }
    }
}

impl<S: BlockStore> BlockStore for TestStore<S> {
    fn sector_count(&self) -> u64 {
        self.inner.sector_count()
    }
    fn sector_size(&self) -> u32 {
        self.sector_size
    }
    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        self.inner.read(sector, buf)
    }
    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), StoreError> {
        self.inner.write(sector, data)
    }
    fn flush(&mut self) -> Result<(), StoreError> {
        self.flushes += 1;
        self.flush?;
        self.inner.flush()
    }
    fn discard(&mut self, sector: u64, n: u64, secure: bool) -> Result<(), StoreError> {
        self.discard?;
        self.inner.discard(sector, n, secure)
    }
}

/// What the front-end reads from the back-end's xenstore directory, produced by the
/// back-end's own key functions (so the two ends are tested against each other).
pub fn negotiate<S: BlockStore>(store: &S, cfg: &blkback_core::BackendConfig) -> BackendInfo {
    use blkback_core::xenbus::{publish_disk, publish_features, BackendFeatures, DiskInfo};
    let mut kv: HashMap<String, String> = HashMap::new();
    let mut w = |k: &str, v: &str| {
        kv.insert(k.to_string(), v.to_string());
    };
    publish_features(&BackendFeatures::of(store, cfg, 0), &mut w);
    publish_disk(&DiskInfo::of(store, cfg, 0), &mut w);
    blkfront::read_backend(&mut |k: &str, buf: &mut [u8]| {
        let v = kv.get(k)?.as_bytes();
        let n = v.len().min(buf.len());
        buf[..n].copy_from_slice(&v[..n]);
        Some(v.len())
    })
    .unwrap()
}

/// Single-threaded event channels: the back-end runs inside the front-end's `wait`, and
/// only when it has been notified (or said it has more work), and `wait` returns only
/// when the back-end notified the front-end. A lost wake-up on either side makes `wait`
/// return `false` (the front-end then reports a timeout), so the tests check the
/// notification hold-off logic of both ends.
pub struct InlinePeer<G, S, const B: usize = 1> {
    pub back: RefCell<Back>,
    pub backend: RefCell<Backend<B>>,
    pub grants: RefCell<G>,
    pub store: RefCell<S>,
    to_back: Cell<bool>,
    to_front: Cell<bool>,
    more: Cell<bool>,
    pub kicks: Cell<u64>,
    pub wakeups: Cell<u64>,
    pub calls: Cell<u64>,
    pub last: Cell<Option<Outcome>>,
}

impl<G: GrantAccess, S: BlockStore, const B: usize> InlinePeer<G, S, B> {
    pub fn new(back: Back, backend: Backend<B>, grants: G, store: S) -> Self {
        Self {
            back: RefCell::new(back),
            backend: RefCell::new(backend),
            grants: RefCell::new(grants),
            store: RefCell::new(store),
            to_back: Cell::new(false),
            to_front: Cell::new(false),
            more: Cell::new(false),
            kicks: Cell::new(0),
            wakeups: Cell::new(0),
            calls: Cell::new(0),
            last: Cell::new(None),
        }
    }

    /// One back-end turn.
    pub fn run_backend(&self) -> Outcome {
        let out = self.backend.borrow_mut().process(
            &mut self.back.borrow_mut(),
            &mut *self.grants.borrow_mut(),
            &mut *self.store.borrow_mut(),
        );
        self.calls.set(self.calls.get() + 1);
        self.more.set(out.state == RingState::MoreWork);
        if out.notify {
            self.to_front.set(true);
            self.wakeups.set(self.wakeups.get() + 1);
        }
        self.last.set(Some(out));
        out
    }
}

impl<G: GrantAccess, S: BlockStore, const B: usize> Notify for InlinePeer<G, S, B> {
    fn notify(&self) {
        self.kicks.set(self.kicks.get() + 1);
        self.to_back.set(true);
    }
    fn wait(&self) -> bool {
        loop {
            if self.to_front.replace(false) {
                return true;
            }
            if self.to_back.replace(false) || self.more.get() {
                if let RingState::Disconnect(_) = self.run_backend().state {
                    return false;
                }
                continue;
            }
            return false;
        }
    }
}

/// A level-triggered event (an event channel's pending bit) for the two-thread tests.
#[derive(Debug, Default)]
pub struct Event {
    pending: Mutex<bool>,
    cv: Condvar,
}

impl Event {
    pub fn signal(&self) {
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }
    /// Waits for and consumes the event; `false` on timeout.
    pub fn wait(&self, timeout: Duration) -> bool {
        let g = self.pending.lock().unwrap();
        let (mut g, _) = self.cv.wait_timeout_while(g, timeout, |p| !*p).unwrap();
        std::mem::replace(&mut *g, false)
    }
}

/// The front-end's side of a threaded event-channel pair.
#[derive(Debug)]
pub struct ThreadNotify<'a> {
    pub to_back: &'a Event,
    pub to_front: &'a Event,
    pub timeout: Duration,
}

impl Notify for ThreadNotify<'_> {
    fn notify(&self) {
        self.to_back.signal();
    }
    fn wait(&self) -> bool {
        self.to_front.wait(self.timeout)
    }
}

/// Deterministic test data: byte `i` of the stream with `seed`.
pub fn pattern(seed: u64, offset: usize, len: usize) -> Vec<u8> {
    (offset..offset + len)
        .map(|i| {
            let mut x = (i as u64 / 8).wrapping_add(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
            x ^= x >> 33;
            x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
            x ^= x >> 29;
            (x >> ((i % 8) * 8)) as u8
        })
        .collect()
}
