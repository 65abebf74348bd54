//! Block roles on xen-core's boot manifest, built on the shared blkif logic:
//! `blkback-core` (a back-end over a RAM disk, serving several front-ends) and
//! `frontend_drivers::blkfront`. Two rendezvous share the data path here: the static
//! one (the front-end grants its ring page as reference `RING_REF`, then signals the
//! manifest's event channel; the back-end maps that reference when it sees the event)
//! and the xenbus handshake through xenstore (`crate::xenbus`), which finds the ring
//! reference and event channel in the store and then calls [`serve`] and [`transfer`].
#![allow(clippy::result_large_err)]
// Xen's constant names (GNTST_bad_gntref, ...) in patterns.
#![allow(non_upper_case_globals)]

use crate::arch::x86_64::mem::{blk_back_ring, blk_front_ring, scratch_addr, scratch_fill, scratch_get, BlkBackRing, WindowPage};
use crate::evtchn::{self, Sleep, HITS};
use crate::mm::pte;
use crate::selftest::{fail, Failure};
use crate::{hv, paging, println, shared};
use blkback_core::{Backend, BackendConfig, BlockStore, GrantAccess, GrantError, RingState, StoreError};
use core::cell::Cell;
use core::sync::atomic::{fence, Ordering};
use frontend_drivers::blkfront::{self, BackendInfo, BlkFront, BlkFrontConfig, FrontGrants};
use frontend_drivers::Notify;
use xen_abi::blkif::{BlkifRequest, BlkifRequestIndirect, BlkifRequestSegment, BLKIF_OP_INDIRECT, BLKIF_OP_READ, BLKIF_RSP_OKAY};
use zerocopy::IntoBytes;
use xen_abi::event_channel::EVTCHNSTAT_interdomain;
use xen_abi::grant_table::*;
use xen_abi::xen::DOMID_SELF;
use xen_abi::GrantRef;

/// The front-end's ring page reference; data pages follow it.
pub const RING_REF: u32 = GNTTAB_NR_RESERVED_ENTRIES;
const PAGE: usize = 4096;
const WAIT_NS: u64 = 10_000_000_000;

type TestResult = Result<(), Failure>;

// ------------------------------------------------------------------ shared helpers

fn read_words(page: &WindowPage, off: usize, buf: &mut [u8]) {
    for (i, chunk) in buf.chunks_exact_mut(8).enumerate() {
        chunk.copy_from_slice(&page.u64(off + i * 8).load(Ordering::Relaxed).to_le_bytes());
    }
}

fn write_words(page: &WindowPage, off: usize, data: &[u8]) {
    for (i, chunk) in data.chunks_exact(8).enumerate() {
        page.u64(off + i * 8).store(u64::from_le_bytes(chunk.try_into().expect("8 bytes")), Ordering::Relaxed);
    }
}

/// Sets up `frames` grant-table frames and maps frame 0 (references 0..512).
fn grant_table() -> Result<WindowPage, Failure> {
    scratch_fill(hv::AUX, 8, 0);
    let mut s = GnttabSetupTable { dom: DOMID_SELF.0, nr_frames: 1, frame_list: scratch_addr(hv::AUX), ..Default::default() };
    let rc = hv::grant(GNTTABOP_setup_table, &mut s);
    if rc != 0 || s.status != GNTST_okay {
        return Err(fail(format_args!("setup_table: {rc}, status {}", s.status)));
    }
    let frame: u64 = scratch_get(hv::AUX);
    paging::map_frame(frame, pte::KERNEL_RW).map_err(|e| fail(format_args!("map grant frame: {e}")))
}

fn grant_entry(table: &WindowPage, gref: u32, mfn: u64, domid: u16, readonly: bool) {
    let off = gref as usize * 8;
    table.u32(off + 4).store(mfn as u32, Ordering::Relaxed);
    table.u16(off + 2).store(domid, Ordering::Relaxed);
    fence(Ordering::Release); // domid and frame visible before the entry is valid
    let flags = GTF_permit_access | if readonly { GTF_readonly } else { 0 };
    table.u16(off).store(flags, Ordering::Release);
}

/// An event channel as the drivers' `Notify`.
pub(crate) struct Chan {
    port: u32,
    seen: Cell<u32>,
}

impl Chan {
    pub(crate) fn new(port: u32) -> Self {
        Chan { port, seen: Cell::new(HITS.count(port)) }
    }
}

impl Notify for Chan {
    fn notify(&self) {
        hv::send(self.port);
    }

    fn wait(&self) -> bool {
        let ok = evtchn::wait_for(self.port, self.seen.get(), shared::now_ns() + WAIT_NS, Sleep::Poll);
        self.seen.set(HITS.count(self.port));
        ok
    }
}

// ------------------------------------------------------------------ back-end

/// A RAM disk over consecutive window pages.
pub(crate) struct PagedDisk {
    base: u64,
    pages: u64,
}

impl PagedDisk {
    pub(crate) fn new(mib: u64) -> Result<Self, Failure> {
        let pages = mib * 256;
        let base = paging::alloc_window(pages).map_err(|e| fail(format_args!("disk window: {e}")))?;
        for i in 0..pages {
            let (_, mfn) = paging::alloc_frame().map_err(|e| fail(format_args!("disk frame {i}: {e}")))?;
            paging::map(base + i * 4096, mfn, pte::KERNEL_RW).map_err(|e| fail(format_args!("map disk page {i}: {e}")))?;
        }
        Ok(PagedDisk { base, pages })
    }

    fn each<'a>(&self, sector: u64, len: usize, mut f: impl FnMut(&WindowPage, usize, core::ops::Range<usize>) + 'a) -> Result<(), StoreError> {
        let start = sector.checked_mul(512).ok_or(StoreError::OutOfRange)?;
        let end = start.checked_add(len as u64).ok_or(StoreError::OutOfRange)?;
        if end > self.pages * 4096 || !len.is_multiple_of(8) {
            return Err(StoreError::OutOfRange);
        }
        let mut at = start;
        while at < end {
            let off = (at % 4096) as usize;
            let n = (4096 - off).min((end - at) as usize);
            let done = (at - start) as usize;
            f(&WindowPage::new(self.base + (at / 4096) * 4096), off, done..done + n);
            at += n as u64;
        }
        Ok(())
    }
}

impl BlockStore for PagedDisk {
    fn sector_count(&self) -> u64 {
        self.pages * 8
    }

    fn read(&mut self, sector: u64, buf: &mut [u8]) -> Result<(), StoreError> {
        let len = buf.len();
        self.each(sector, len, |p, off, r| read_words(p, off, &mut buf[r]))
    }

    fn write(&mut self, sector: u64, data: &[u8]) -> Result<(), StoreError> {
        self.each(sector, data.len(), |p, off, r| write_words(p, off, &data[r]))
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    fn discard(&mut self, sector: u64, nr_sectors: u64, _secure: bool) -> Result<(), StoreError> {
        let zero = [0u8; 512];
        (0..nr_sectors).try_for_each(|s| self.write(sector + s, &zero))
    }
}

/// Grant access by `GNTTABOP_copy` through a bounce page of ours.
struct CopyGrants {
    peer: u16,
    bounce: WindowPage,
    bounce_mfn: u64,
}


impl CopyGrants {
    fn copy(&self, gref: GrantRef, offset: usize, len: usize, to_grant: bool) -> Result<(), GrantError> {
        if offset + len > PAGE {
            return Err(GrantError::OutOfBounds);
        }
        let theirs = GnttabCopyPtr { u: u64::from(gref.get()), domid: self.peer, offset: offset as u16, ..Default::default() };
        let ours = GnttabCopyPtr { u: self.bounce_mfn, domid: DOMID_SELF.0, offset: 0, ..Default::default() };
        let mut c = if to_grant {
            GnttabCopy { source: ours, dest: theirs, len: len as u16, flags: GNTCOPY_dest_gref, ..Default::default() }
        } else {
            GnttabCopy { source: theirs, dest: ours, len: len as u16, flags: GNTCOPY_source_gref, ..Default::default() }
        };
        match hv::grant(GNTTABOP_copy, &mut c) {
            0 if c.status == GNTST_okay => Ok(()),
            0 => Err(GrantError::from_status(c.status)),
            rc => Err(GrantError::Other(rc as i16)),
        }
    }
}

impl GrantAccess for CopyGrants {
    fn copy_from_grant(&mut self, gref: GrantRef, offset: usize, buf: &mut [u8]) -> Result<(), GrantError> {
        self.copy(gref, offset, buf.len(), false)?;
        read_words(&self.bounce, 0, buf);
        Ok(())
    }

    fn copy_to_grant(&mut self, gref: GrantRef, offset: usize, data: &[u8]) -> Result<(), GrantError> {
        write_words(&self.bounce, 0, data);
        self.copy(gref, offset, data.len(), true)
    }
}

/// One front-end the back-end serves.
pub(crate) struct Conn {
    index: usize,
    name: &'static str,
    port: u32,
    peer: u16,
    /// The front-end's ring page reference (static: `RING_REF`; xenbus: `ring-ref`).
    ring_ref: u32,
    ring: Option<(BlkBackRing, u64, u32)>, // ring, mapped va, grant handle
    grants: CopyGrants,
    requests: u64,
    done: bool,
}

impl Conn {
    /// Front-end number `index` (0..4) of domain `peer`, on our `port`.
    pub(crate) fn new(index: usize, port: u32, peer: u16, ring_ref: u32) -> Result<Conn, Failure> {
        let (bounce, _, bounce_mfn) = paging::new_page().map_err(|e| fail(format_args!("bounce page: {e}")))?;
        if evtchn::unmask(port) != 0 {
            return Err(fail(format_args!("unmask {port}")));
        }
        let grants = CopyGrants { peer, bounce, bounce_mfn };
        Ok(Conn { index, name: NAMES[index], port, peer, ring_ref, ring: None, grants, requests: 0, done: false })
    }
}

fn peer_alive(port: u32) -> bool {
    matches!(hv::status(port), Ok(s) if s.status == EVTCHNSTAT_interdomain)
}

pub(crate) fn unmap_ring(c: &mut Conn) -> TestResult {
    if let Some((_, va, handle)) = c.ring.take() {
        let mut u = GnttabUnmapGrantRef { host_addr: va, handle, ..Default::default() };
        let rc = hv::grant(GNTTABOP_unmap_grant_ref, &mut u);
        if rc != 0 || u.status != GNTST_okay {
            return Err(fail(format_args!("unmapping {}'s ring: {rc}, status {}", c.name, u.status)));
        }
    }
    Ok(())
}

pub(crate) fn map_ring(c: &mut Conn) -> TestResult {
    let va = paging::alloc_window(1).and_then(|va| paging::prepare(va).map(|_| va)).map_err(|e| fail(format_args!("{e}")))?;
    let mut m = GnttabMapGrantRef { host_addr: va, flags: GNTMAP_host_map, ref_: c.ring_ref, dom: c.peer, ..Default::default() };
    let rc = hv::grant(GNTTABOP_map_grant_ref, &mut m);
    if rc != 0 || m.status != GNTST_okay {
        return Err(fail(format_args!("mapping {}'s ring: {rc}, status {}", c.name, m.status)));
    }
    let ring = blk_back_ring(&WindowPage::new(va)).map_err(|e| fail(format_args!("ring: {e:?}")))?;
    c.ring = Some((ring, va, m.handle));
    Ok(())
}

const NAMES: [&str; 4] = ["front0", "front1", "front2", "front3"];
const RING_TESTS: [&str; 4] = ["blkback_front0_ring", "blkback_front1_ring", "blkback_front2_ring", "blkback_front3_ring"];
const CLEANUP_TESTS: [&str; 4] =
    ["blkback_cleanup_front0", "blkback_cleanup_front1", "blkback_cleanup_front2", "blkback_cleanup_front3"];

/// `role=blkback ports=p1,p2.. peers=d1,d2.. disk-mib=M`: serves every front-end until
/// each is gone (shut down or crashed), then reports.
pub fn backend(cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    let list = |key: &str| crate::roles::arg(cmd, key).unwrap_or("").split(',').filter_map(|v| v.parse::<u64>().ok());
    let mib = crate::roles::num(cmd, "disk-mib", 16);
    let mut disk = match PagedDisk::new(mib) {
        Ok(d) => d,
        Err(f) => return test("blkback_disk", Err(f)),
    };
    let mut conns: heapless_vec::Vec4<Conn> = heapless_vec::Vec4::new();
    for (i, (port, peer)) in list("ports").zip(list("peers")).enumerate().take(4) {
        match Conn::new(i, port as u32, peer as u16, RING_REF) {
            Ok(c) => conns.push(c),
            Err(f) => return test("blkback_port", Err(f)),
        }
    }
    serve(&mut conns, &mut disk, None, &mut |_| false, test);
}

/// Serves every connection until each is done: its front-end is gone (port unbound),
/// broke the ring protocol, or (`closing`, asked when idle) asked to disconnect.
/// `wake` is one more port to wake up for (the store's, for `closing` to look).
pub(crate) fn serve(
    conns: &mut heapless_vec::Vec4<Conn>,
    disk: &mut PagedDisk,
    wake: Option<u32>,
    closing: &mut dyn FnMut(&Conn) -> bool,
    test: &mut dyn FnMut(&str, TestResult),
) {
    let mut backend = Backend::new(BackendConfig::DEFAULT);
    let mut seen = [0u32; 4];
    let mut wake_seen = wake.map_or(0, |p| HITS.count(p));
    loop {
        if let Some(p) = wake {
            wake_seen = HITS.count(p);
        }
        let mut busy = false;
        for (i, c) in conns.iter_mut().enumerate().filter(|(_, c)| !c.done) {
            let fired = HITS.count(c.port) > seen[i];
            seen[i] = HITS.count(c.port);
            if c.ring.is_none() && fired {
                if let Err(f) = map_ring(c) {
                    test(RING_TESTS[c.index], Err(f));
                    c.done = true;
                    continue;
                }
            }
            let Some((ring, _, _)) = c.ring.as_mut() else { continue };
            let out = backend.process(ring, &mut c.grants, disk);
            c.requests += u64::from(out.requests);
            if out.notify {
                hv::send(c.port);
            }
            match out.state {
                RingState::MoreWork => busy = true,
                RingState::Idle => {}
                RingState::Disconnect(e) => {
                    println!("pv-guest: blkback: {} sent a bad ring index ({e:?}): dropping it", c.name);
                    let _ = unmap_ring(c);
                    c.done = true;
                }
            }
        }
        if busy {
            continue;
        }
        // Idle: a front-end that is gone (port back to unbound) is cleaned up.
        for c in conns.iter_mut().filter(|c| !c.done) {
            if !peer_alive(c.port) {
                let r = unmap_ring(c);
                println!("pv-guest: blkback: {} (d{}) is gone after {} requests; its ring is unmapped", c.name, c.peer, c.requests);
                test(CLEANUP_TESTS[c.index], r);
                c.done = true;
            } else if closing(c) {
                let r = unmap_ring(c).and_then(|_| match hv::close(c.port) {
                    0 => Ok(()),
                    rc => Err(fail(format_args!("closing port {}: {rc}", c.port))),
                });
                println!("pv-guest: blkback: {} (d{}) disconnected after {} requests; ring unmapped, port closed", c.name, c.peer, c.requests);
                test(CLEANUP_TESTS[c.index], r);
                c.done = true;
            }
        }
        if conns.iter().all(|c| c.done) {
            break;
        }
        let mut ports = [0u32; 5];
        let mut n = 0;
        for p in conns.iter().filter(|c| !c.done).map(|c| c.port).chain(wake) {
            ports[n] = p;
            n += 1;
        }
        evtchn::disable();
        let pending = conns.iter().enumerate().any(|(i, c)| !c.done && HITS.count(c.port) > seen[i])
            || wake.is_some_and(|p| HITS.count(p) > wake_seen);
        if !pending {
            hv::poll(&ports[..n], shared::now_ns() + 100_000_000);
        }
        evtchn::enable();
    }
    let stats = backend.stats();
    println!("pv-guest: blkback served {} requests ({:?})", conns.iter().map(|c| c.requests).sum::<u64>(), stats);
    test("blkback_served_every_front_end", Ok(()));
}

// ------------------------------------------------------------------ front-ends

/// Pool pages (mapped back to back from `base`) granted to the back-end as references
/// RING_REF + 1 + index.
struct Pool {
    table: WindowPage,
    base: u64,
    mfns: [u64; POOL],
    backend: u16,
}

/// Enough for a full single-page ring (32 requests) of 11-segment requests; the
/// references stay within the grant table's first frame (512 entries).
const POOL: usize = 32 * 11;
const _: () = assert!(RING_REF as usize + 1 + POOL <= 512);

impl Pool {
    fn page(&self, page: usize) -> Option<WindowPage> {
        (page < POOL).then(|| WindowPage::new(self.base + page as u64 * PAGE as u64))
    }
}

impl FrontGrants for Pool {
    fn page_count(&self) -> usize {
        POOL
    }

    fn grant(&mut self, page: usize, readonly: bool) -> Result<GrantRef, blkfront::GrantError> {
        let mfn = *self.mfns.get(page).ok_or(blkfront::GrantError::Other(-1))?;
        let gref = RING_REF + 1 + page as u32;
        grant_entry(&self.table, gref, mfn, self.backend, readonly);
        Ok(GrantRef(gref))
    }

    fn end_access(&mut self, gref: GrantRef) -> Result<(), blkfront::GrantError> {
        let off = gref.get() as usize * 8;
        let flags = self.table.u16(off).load(Ordering::Acquire);
        if flags & (GTF_reading | GTF_writing) != 0 {
            return Err(blkfront::GrantError::InUse);
        }
        self.table
            .u16(off)
            .compare_exchange(flags, 0, Ordering::AcqRel, Ordering::Acquire)
            .map(|_| ())
            .map_err(|_| blkfront::GrantError::InUse)
    }

    fn write_page(&mut self, page: usize, offset: usize, data: &[u8]) {
        if let Some(p) = self.page(page) {
            write_words(&p, offset, data);
        }
    }

    fn read_page(&mut self, page: usize, offset: usize, buf: &mut [u8]) {
        if let Some(p) = self.page(page) {
            read_words(&p, offset, buf);
        }
    }
}

fn word_pattern(byte_offset: u64, seed: u64) -> u64 {
    (byte_offset / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ seed
}

fn fill(buf: &mut [u8], at: u64, seed: u64) {
    for (i, c) in buf.chunks_exact_mut(8).enumerate() {
        c.copy_from_slice(&word_pattern(at + 8 * i as u64, seed).to_le_bytes());
    }
}

pub(crate) struct Front {
    dev: BlkFront<Pool>,
    chan: Chan,
}

/// The granted ring, the pool and the grant table, before the driver takes them.
pub(crate) struct Parts {
    pub(crate) ring: crate::arch::x86_64::mem::BlkFrontRing,
    pool: Pool,
    pub(crate) chan: Chan,
}

fn connect(port: u32, backend: u16, disk_mib: u64) -> Result<Front, Failure> {
    let p = connect_parts(port, backend)?;
    let info = BackendInfo {
        sectors: disk_mib * 2048,
        info: 0,
        sector_size: 512,
        physical_sector_size: 512,
        flush_cache: false,
        barrier: false,
        discard: false,
        discard_granularity: 0,
        discard_alignment: 0,
        discard_secure: false,
        persistent: false,
        max_indirect_segments: 0,
        max_ring_page_order: 0,
    };
    let f = front(p, info)?;
    f.chan.notify(); // the ring is granted: the back-end may map it
    Ok(f)
}

/// The driver over the parts, for a disk as `info` describes it.
pub(crate) fn front(p: Parts, info: BackendInfo) -> Result<Front, Failure> {
    // Full single-page ring depth of 11-segment requests (the pool's size).
    front_with(p, info, 11)
}

/// As [`front`], with requests of up to `max_segments` segments (above 11: indirect
/// requests, if the back-end offers them; fewer requests in flight, as the pool is
/// shared). Pages stay granted between requests when the back-end offers persistent
/// grants.
pub(crate) fn front_with(p: Parts, info: BackendInfo, max_segments: usize) -> Result<Front, Failure> {
    let cfg = BlkFrontConfig { max_segments, persistent: true };
    let dev = BlkFront::new(p.ring, p.pool, info, cfg).map_err(|e| fail(format_args!("blkfront: {e:?}")))?;
    Ok(Front { dev, chan: p.chan })
}

/// Grants a fresh ring page as `RING_REF` and the data pool to `backend`; `port` is our
/// end of the channel to it.
pub(crate) fn connect_parts(port: u32, backend: u16) -> Result<Parts, Failure> {
    if evtchn::unmask(port) != 0 {
        return Err(fail(format_args!("unmask {port}")));
    }
    let table = grant_table()?;
    let (ring_page, _, ring_mfn) = paging::new_page().map_err(|e| fail(format_args!("ring page: {e}")))?;
    let ring = blk_front_ring(&ring_page).map_err(|e| fail(format_args!("ring: {e:?}")))?;
    let base = paging::alloc_window(POOL as u64).map_err(|e| fail(format_args!("pool window: {e}")))?;
    let mut mfns = [0u64; POOL];
    for (i, m) in mfns.iter_mut().enumerate() {
        let (_, mfn) = paging::alloc_frame().map_err(|e| fail(format_args!("pool frame {i}: {e}")))?;
        paging::map(base + i as u64 * PAGE as u64, mfn, pte::KERNEL_RW).map_err(|e| fail(format_args!("map pool page {i}: {e}")))?;
        *m = mfn;
    }
    grant_entry(&table, RING_REF, ring_mfn, backend, false);
    let pool = Pool { table, base, mfns, backend };
    Ok(Parts { ring, pool, chan: Chan::new(port) })
}

/// `role=blkfront port=P peer=B disk-mib=M mib=N [crash-after-mib=K] [seed=S]`: writes N
/// MiB, reads them back and checks every byte (or crashes on purpose after K MiB).
pub fn frontend(cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    let port = crate::roles::num(cmd, "port", 0) as u32;
    let backend = crate::roles::num(cmd, "peer", 0) as u16;
    let disk_mib = crate::roles::num(cmd, "disk-mib", 16);
    let mib = crate::roles::num(cmd, "mib", disk_mib).min(disk_mib - crate::roles::num(cmd, "base-mib", 0).min(disk_mib));
    let crash_after = crate::roles::arg(cmd, "crash-after-mib").and_then(|v| v.parse::<u64>().ok());
    // This front-end's region of the shared disk starts here.
    let base = crate::roles::num(cmd, "base-mib", 0) << 20;
    let seed = crate::roles::num(cmd, "seed", 0x5eed);
    let mut f = match connect(port, backend, disk_mib) {
        Ok(f) => f,
        Err(e) => return test("blkfront_connect", Err(e)),
    };
    transfer(&mut f, base, mib, seed, crash_after, test);
}

/// Writes `mib` MiB at byte `base`, reads them back checking every byte (or crashes on
/// purpose after `crash_after` MiB), then ends every grant. Keeps the ring full: as many
/// requests in flight as the driver has ids, each as large as it allows, the data
/// generated straight into (and checked straight out of) the shared pages.
pub(crate) fn transfer(f: &mut Front, base: u64, mib: u64, seed: u64, crash_after: Option<u64>, test: &mut dyn FnMut(&str, TestResult)) {
    transfer_data(f, base, mib, seed, crash_after, test);
    teardown(f, test);
}

/// Ends every grant the driver holds (with persistent grants: once the back-end has
/// unmapped them, i.e. after it disconnected).
pub(crate) fn teardown(f: &mut Front, test: &mut dyn FnMut(&str, TestResult)) {
    let torn = f.dev.teardown().map(|_| ()).map_err(|e| fail(format_args!("teardown: {e:?}")));
    test("blkfront_teardown_ends_every_grant", torn.and_then(|_| match f.dev.grants_held() {
        0 => Ok(()),
        n => Err(fail(format_args!("{n} grants still held"))),
    }));
}

/// Persistent grants are in use (both ends offered them).
pub(crate) fn persistent(f: &Front) -> bool {
    f.dev.persistent()
}

/// [`transfer`] without the teardown.
pub(crate) fn transfer_data(f: &mut Front, base: u64, mib: u64, seed: u64, crash_after: Option<u64>, test: &mut dyn FnMut(&str, TestResult)) {
    let total = mib << 20;
    let t0 = shared::now_ns();
    let write = pipeline(f, base, total, |f, at, n| {
        f.dev.submit_write_with(at / 512, n / 512, &mut |off, part| fill(part, at + off as u64, seed))
    }, |f, id, _| f.dev.release(id, None).map_err(|e| fail(format_args!("release: {e:?}"))), |f, done| {
        if crash_after.is_some_and(|k| done >= k << 20) {
            // A front-end dying mid-transfer, with requests and grants outstanding.
            crate::arch::x86_64::hypercall::raw_no_args(xen_abi::hypercall::HYPERVISOR_set_trap_table);
            let _ = f.dev.submit_read(0, 4);
            f.dev.push_requests();
            println!("pv-guest: crashing mid-transfer after {} MiB", done >> 20);
            let v = crate::arch::x86_64::traps::read_u64(crate::mm::VMAP_END - 8);
            return Err(fail(format_args!("still alive after the fault ({v:?})")));
        }
        Ok(())
    });
    let t1 = shared::now_ns();
    test("blkfront_write", write);
    let read = pipeline(f, base, total, |f, at, n| f.dev.submit_read(at / 512, n / 512), |f, id, at| {
        let mut bad = None;
        f.dev
            .release_with(id, &mut |off, part| {
                for (w, c) in part.chunks_exact(8).enumerate() {
                    let o = at + (off + 8 * w) as u64;
                    let v = u64::from_le_bytes(c.try_into().expect("8 bytes"));
                    if v != word_pattern(o, seed) && bad.is_none() {
                        bad = Some((o, v));
                    }
                }
            })
            .map_err(|e| fail(format_args!("release: {e:?}")))?;
        match bad {
            None => Ok(()),
            Some((o, v)) => Err(fail(format_args!("byte offset {o:#x}: {v:#x}, wanted {:#x}", word_pattern(o, seed)))),
        }
    }, |_, _| Ok(()));
    let t2 = shared::now_ns();
    test("blkfront_read_back_every_byte", read);
    let ms = |dt: u64| dt.max(1) / 1_000_000;
    println!("BENCH blkif_write {} MB/s", (total >> 20) * 1000 / ms(t1 - t0).max(1));
    println!("BENCH blkif_read {} MB/s", (total >> 20) * 1000 / ms(t2 - t1).max(1));
    println!("pv-guest: blkfront moved {mib} MiB each way ({:?}, persistent grants: {})", f.dev.stats(), f.dev.persistent());
}

/// Moves `total` bytes from byte `base` in requests as large as the driver allows, with
/// as many in flight as it has ids: `submit(f, at, bytes)` queues one, `done(f, id, at)`
/// takes a successful one's completion (and releases its id), `progress(f, bytes done)`
/// runs after each. Stops at the first failure, after draining what is in flight.
fn pipeline(
    f: &mut Front,
    base: u64,
    total: u64,
    mut submit: impl FnMut(&mut Front, u64, u32) -> Result<u16, blkfront::BlkError>,
    mut done: impl FnMut(&mut Front, u16, u64) -> TestResult,
    mut progress: impl FnMut(&mut Front, u64) -> TestResult,
) -> TestResult {
    let per_req = u64::from(f.dev.max_sectors_per_request()) * 512;
    let (mut next, mut finished) = (0u64, 0u64);
    let mut failed: Option<Failure> = None;
    loop {
        while failed.is_none() && next < total && f.dev.can_submit() {
            let n = (total - next).min(per_req);
            match submit(f, base + next, n as u32) {
                Ok(_) => next += n,
                Err(e) => failed = Some(fail(format_args!("submit at {:#x}: {e:?}", base + next))),
            }
        }
        if f.dev.push_requests() {
            f.chan.notify();
        }
        let mut got = false;
        loop {
            let c = match f.dev.poll() {
                Ok(Some(c)) => c,
                Ok(None) => break,
                Err(e) => return Err(fail(format_args!("poll: {e:?}"))),
            };
            got = true;
            let at = c.sector * 512;
            let r = if c.status == blkfront::RspStatus::Okay {
                done(f, c.id, at)
            } else {
                let _ = f.dev.release(c.id, None);
                Err(fail(format_args!("request at {at:#x} answered {:?}", c.status)))
            };
            finished += u64::from(c.nr_sectors) * 512;
            if let Err(e) = r.and_then(|_| progress(f, finished)) {
                failed.get_or_insert(e);
            }
        }
        if f.dev.in_flight() == 0 && (next == total || failed.is_some()) {
            return failed.map_or(Ok(()), Err);
        }
        if !got {
            f.dev.wait_response(&f.chan).map_err(|e| fail(format_args!("waiting ({finished} of {total} bytes done): {e:?}")))?;
        }
    }
}

/// Reads `count` 4 KiB blocks keeping up to `depth` requests in flight; returns ns.
fn timed_reads(f: &mut Front, count: u64, depth: u64, disk_sectors: u64) -> Result<u64, Failure> {
    let err = |what: &str, e: blkfront::BlkError| fail(format_args!("{what}: {e:?}"));
    let t0 = shared::now_ns();
    let (mut issued, mut done, mut in_flight) = (0u64, 0u64, 0u64);
    let mut buf = [0u8; PAGE];
    while done < count {
        while in_flight < depth && issued < count {
            let sector = (issued * 8) % disk_sectors;
            match f.dev.submit_read(sector, 8) {
                Ok(_) => {}
                // Every request slot or pool page in use: the queue is as deep as it gets.
                Err(blkfront::BlkError::Busy) => break,
                Err(e) => return Err(err("submit", e)),
            }
            issued += 1;
            in_flight += 1;
        }
        if f.dev.push_requests() {
            f.chan.notify();
        }
        let mut got = false;
        while let Some(c) = f.dev.poll().map_err(|e| err("poll", e))? {
            if c.status != blkfront::RspStatus::Okay {
                return Err(fail(format_args!("read {} answered {:?}", c.id, c.status)));
            }
            f.dev.release(c.id, Some(&mut buf)).map_err(|e| err("release", e))?;
            done += 1;
            in_flight -= 1;
            got = true;
        }
        if !got {
            f.dev.wait_response(&f.chan).map_err(|e| fail(format_args!("waiting ({done} of {count} done): {e:?}")))?;
        }
    }
    Ok(shared::now_ns() - t0)
}

/// `role=blkfront-bench port=P peer=B disk-mib=M count=N`: 4 KiB reads at queue depth 1
/// and 32, as requests/s and MB/s.
pub fn bench(cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    let port = crate::roles::num(cmd, "port", 0) as u32;
    let backend = crate::roles::num(cmd, "peer", 0) as u16;
    let disk_mib = crate::roles::num(cmd, "disk-mib", 16);
    let count = crate::roles::num(cmd, "count", 2000);
    let mut f = match connect(port, backend, disk_mib) {
        Ok(f) => f,
        Err(e) => return test("blkfront_bench_connect", Err(e)),
    };
    for (name, depth) in [("blkfront_bench_qd1", 1u64), ("blkfront_bench_qd32", 32)] {
        let r = timed_reads(&mut f, count, depth, disk_mib * 2048).map(|ns| {
            let per_s = count * 1_000_000_000 / ns.max(1);
            println!("BENCH blkif_4k_read_qd{depth} {per_s} req/s");
            println!("BENCH blkif_4k_read_qd{depth}_throughput {} MB/s", per_s * 4096 / 1_000_000);
        });
        test(name, r);
    }
    let torn = f.dev.teardown().map(|_| ()).map_err(|e| fail(format_args!("teardown: {e:?}")));
    test("blkfront_bench_teardown", torn);
}

/// `role=blkfront-hostile port=P peer=B disk-mib=M`: puts garbage on the ring and
/// expects an error for each, then checks the back-end still answers a good read.
pub fn hostile(cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    let port = crate::roles::num(cmd, "port", 0) as u32;
    let backend = crate::roles::num(cmd, "peer", 0) as u16;
    let disk_mib = crate::roles::num(cmd, "disk-mib", 16);
    let mut p = match connect_parts(port, backend) {
        Ok(p) => p,
        Err(e) => return test("blkfront_hostile_connect", Err(e)),
    };
    garbage_requests(&mut p, disk_mib * 2048, test);
}

/// Puts malformed requests on the ring (never-granted refs, too many segments, a sector
/// past the disk's `disk_sectors`, an unknown op, first_sect > last_sect, indirect
/// requests over the limit or with bad pages) and expects an error response for each.
pub(crate) fn garbage_requests(p: &mut Parts, disk_sectors: u64, test: &mut dyn FnMut(&str, TestResult)) {
    let seg = |gref: u32, first: u8, last: u8| BlkifRequestSegment { gref, first_sect: first, last_sect: last, ..Default::default() };
    let mut bad = [BlkifRequest::default(); 7];
    bad[0] = BlkifRequest { operation: BLKIF_OP_READ, nr_segments: 1, id: 900, sector_number: 0, ..Default::default() };
    bad[0].seg[0] = seg(4000, 0, 7); // a reference never granted
    bad[1] = BlkifRequest { operation: BLKIF_OP_READ, nr_segments: 200, id: 901, ..Default::default() };
    bad[2] = BlkifRequest { operation: BLKIF_OP_READ, nr_segments: 1, id: 902, sector_number: disk_sectors, ..Default::default() };
    bad[2].seg[0] = seg(RING_REF + 1, 0, 7); // past the end of the disk
    bad[3] = BlkifRequest { operation: 77, nr_segments: 0, id: 903, ..Default::default() };
    bad[4] = BlkifRequest { operation: BLKIF_OP_READ, nr_segments: 1, id: 904, ..Default::default() };
    bad[4].seg[0] = seg(RING_REF + 1, 7, 2); // first_sect > last_sect
    // Indirect: more segments than the back-end's feature-max-indirect-segments, and an
    // indirect page reference never granted.
    let indirect = |id: u64, nr_segments: u16, gref: u32| {
        let ind = BlkifRequestIndirect {
            operation: BLKIF_OP_INDIRECT,
            indirect_op: BLKIF_OP_READ,
            nr_segments,
            id,
            indirect_grefs: [gref; 8],
            ..Default::default()
        };
        let mut r = BlkifRequest::default();
        r.as_mut_bytes()[..core::mem::size_of::<BlkifRequestIndirect>()].copy_from_slice(ind.as_bytes());
        r
    };
    bad[5] = indirect(905, blkback_core::BLKBACK_MAX_INDIRECT_SEGMENTS + 1, RING_REF + 1);
    bad[6] = indirect(906, 16, 4000);
    for r in bad {
        if let Err(e) = p.ring.write_request(r) {
            return test("blkfront_hostile_send", Err(fail(format_args!("ring: {e:?}"))));
        }
    }
    p.ring.push_requests();
    p.chan.notify(); // ring granted and requests queued
    let mut answered = 0;
    let deadline = shared::now_ns() + WAIT_NS;
    let mut errors = true;
    while answered < bad.len() && shared::now_ns() < deadline {
        match p.ring.read_response() {
            Ok(Some(rsp)) => {
                answered += 1;
                errors &= rsp.status != BLKIF_RSP_OKAY && (900..907).contains(&rsp.id);
            }
            Ok(None) => {
                p.chan.wait();
            }
            Err(e) => return test("blkfront_hostile_answers", Err(fail(format_args!("{e:?}")))),
        }
    }
    test(
        "blkfront_hostile_requests_get_errors",
        if answered == bad.len() && errors { Ok(()) } else { Err(fail(format_args!("{answered} answered, all errors: {errors}"))) },
    );
}

/// A tiny fixed-capacity vector (the static block roles run without a heap).
pub(crate) mod heapless_vec {
    pub struct Vec4<T> {
        items: [Option<T>; 4],
        len: usize,
    }

    impl<T> Vec4<T> {
        pub fn new() -> Self {
            Vec4 { items: [None, None, None, None], len: 0 }
        }

        pub fn push(&mut self, t: T) {
            if self.len < 4 {
                self.items[self.len] = Some(t);
                self.len += 1;
            }
        }

        pub fn iter(&self) -> impl Iterator<Item = &T> {
            self.items[..self.len].iter().flatten()
        }

        pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
            self.items[..self.len].iter_mut().flatten()
        }
    }

}
