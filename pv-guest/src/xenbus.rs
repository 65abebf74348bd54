//! The block pair finding each other through xenstore (`io/xenbus.h`), on the data path
//! of `blk`:
//!
//! - `role=blkback-xenbus disk-mib=M`: watches its `backend/vbd` directory; for the
//!   device the toolstack created, publishes its features and goes `InitWait` (2); once
//!   the front-end is `Initialised` (3) reads `ring-ref`/`event-channel`/`protocol`,
//!   maps the ring, binds the channel, publishes the disk and goes `Connected` (4);
//!   serves until the front-end is `Closing` (5), disconnects, `Closing`, and `Closed`
//!   (6) once the front-end is.
//! - `role=blkfront-xenbus mib=N [segs=S]`: reads `backend` of `device/vbd/51712`, waits for
//!   `InitWait`, grants its ring, allocates an unbound channel for the back-end,
//!   publishes them, `Initialised`; at the back-end's `Connected` reads the disk,
//!   `Connected`; moves N MiB each way checking every byte; `Closing`, then `Closed`
//!   after the back-end.
#![allow(clippy::result_large_err)]

use crate::blk::{self, heapless_vec::Vec4, Conn, PagedDisk, RING_REF};
use crate::console::Shared;
use crate::evtchn::{self, Sleep, HITS};
use crate::mm::pte;
use crate::roles::num;
use crate::selftest::{fail, Failure};
use crate::xsd::VBD_DEVID;
use crate::{hv, paging, println, shared};
use alloc::format;
use alloc::string::String;
use blkback_core::xenbus::{self as be_keys, BackendFeatures, DiskInfo};
use blkback_core::BackendConfig;
use core::cell::Cell;
use frontend_drivers::blkfront;
use frontend_drivers::xenstore::{self, entries, XenStore, NO_TX};
use frontend_drivers::Notify;
use xen_abi::xen::{StartInfo, DOMID_SELF};
use xen_abi::{EvtchnPort, GrantRef};

type TestResult = Result<(), Failure>;

/// `XenbusState*`.
pub(crate) const INIT_WAIT: u64 = 2;
pub(crate) const INITIALISED: u64 = 3;
pub(crate) const CONNECTED: u64 = 4;
pub(crate) const CLOSING: u64 = 5;
pub(crate) const CLOSED: u64 = 6;

/// The store's event channel: each wait polls up to 100 ms; 30 s without any event from
/// xenstored ends the operation (`Timeout`).
pub(crate) struct StoreChan {
    port: u32,
    seen: Cell<u32>,
    idle: Cell<u32>,
}

impl Notify for StoreChan {
    fn notify(&self) {
        hv::send(self.port);
    }
    fn wait(&self) -> bool {
        let fired = evtchn::wait_for(self.port, self.seen.get(), shared::now_ns() + 100_000_000, Sleep::Poll);
        self.seen.set(HITS.count(self.port));
        if fired {
            self.idle.set(0);
            true
        } else {
            self.idle.set(self.idle.get() + 1);
            self.idle.get() < 300
        }
    }
}

pub(crate) type Xs = XenStore<Shared, StoreChan>;

pub(crate) fn open(si: &StartInfo) -> Result<Xs, Failure> {
    if si.store_mfn == 0 {
        return Err(fail(format_args!("no xenstore ring (store_mfn 0)")));
    }
    let page = paging::map_frame(si.store_mfn, pte::KERNEL_RW).map_err(|r| fail(format_args!("mapping the store ring: {r}")))?;
    evtchn::unmask(si.store_evtchn);
    let port = si.store_evtchn;
    Ok(XenStore::new(Shared(page), StoreChan { port, seen: Cell::new(HITS.count(port)), idle: Cell::new(0) }))
}

pub(crate) fn xs_err(what: &str, path: &str, e: xenstore::Error) -> Failure {
    fail(format_args!("{what} {path}: {e:?}"))
}

pub(crate) fn read_string(xs: &mut Xs, path: &str) -> Result<String, Failure> {
    let mut buf = [0u8; 256];
    let n = xs.read(NO_TX, path, &mut buf).map_err(|e| xs_err("read", path, e))?;
    core::str::from_utf8(&buf[..n]).map(String::from).map_err(|_| fail(format_args!("{path} is not text")))
}

pub(crate) fn read_num(xs: &mut Xs, path: &str) -> Result<u64, Failure> {
    let v = read_string(xs, path)?;
    xenstore_wire::parse_decimal(v.as_bytes()).ok_or_else(|| fail(format_args!("{path} = {v:?} is not a number")))
}

pub(crate) fn write(xs: &mut Xs, path: &str, value: &str) -> TestResult {
    xs.write(NO_TX, path, value.as_bytes()).map_err(|e| xs_err("write", path, e))
}

/// Reads `dir/key` for the drivers' key readers (full length when it doesn't fit).
pub(crate) fn read_key(xs: &mut Xs, dir: &str, key: &str, buf: &mut [u8]) -> Option<usize> {
    match xs.read(NO_TX, &format!("{dir}/{key}"), buf) {
        Ok(n) => Some(n),
        Err(xenstore::Error::TooBig(n)) => Some(n),
        Err(_) => None,
    }
}

/// Writes `dir/key` for the drivers' key writers, keeping the first failure.
pub(crate) fn write_key(xs: &mut Xs, dir: &str, key: &str, value: &str, first: &mut TestResult) {
    let r = write(xs, &format!("{dir}/{key}"), value);
    if first.is_ok() {
        *first = r;
    }
}

/// Waits (on a watch the caller set) until the number at `path` satisfies `done`.
pub(crate) fn wait_state(xs: &mut Xs, path: &str, done: impl Fn(u64) -> bool) -> Result<u64, Failure> {
    loop {
        let s = read_num(xs, path)?;
        if done(s) {
            return Ok(s);
        }
        xs.next_event().map_err(|e| xs_err("waiting for a change of", path, e))?;
    }
}

pub(crate) fn set_state(xs: &mut Xs, dir: &str, state: u64) -> TestResult {
    write(xs, &format!("{dir}/state"), &format!("{state}"))
}

// ------------------------------------------------------------------ back-end

/// The first device the toolstack created below `backend/vbd`: (front-end id, devid).
fn find_device(xs: &mut Xs) -> Result<(u16, u32), Failure> {
    xs.watch("backend/vbd", "vbd").map_err(|e| xs_err("watch", "backend/vbd", e))?;
    loop {
        let mut fronts = [0u8; 256];
        if let Ok(n) = xs.directory(NO_TX, "backend/vbd", &mut fronts) {
            for fe in entries(&fronts[..n]) {
                let Some(fe_id) = core::str::from_utf8(fe).ok().and_then(|s| s.parse::<u16>().ok()) else { continue };
                let mut devs = [0u8; 256];
                let dir = format!("backend/vbd/{fe_id}");
                if let Ok(m) = xs.directory(NO_TX, &dir, &mut devs) {
                    if let Some(dev) = entries(&devs[..m]).find_map(|d| core::str::from_utf8(d).ok()?.parse::<u32>().ok()) {
                        return Ok((fe_id, dev));
                    }
                }
            }
        }
        xs.next_event().map_err(|e| xs_err("waiting for a device in", "backend/vbd", e))?;
    }
}

pub fn backend(si: &StartInfo, cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    if let Err(e) = crate::heap::ensure(1) {
        return test("blkback_xenbus_heap", Err(fail(format_args!("{e}"))));
    }
    let mut disk = match PagedDisk::new(num(cmd, "disk-mib", 16)) {
        Ok(d) => d,
        Err(f) => return test("blkback_disk", Err(f)),
    };
    let mut xs = match open(si) {
        Ok(x) => x,
        Err(f) => return test("blkback_xenbus_store", Err(f)),
    };
    let found = find_device(&mut xs).and_then(|(fe, dev)| {
        let bp = format!("backend/vbd/{fe}/{dev}");
        let fp = read_string(&mut xs, &format!("{bp}/frontend"))?;
        let fe_id = read_num(&mut xs, &format!("{bp}/frontend-id"))?;
        if fe_id != u64::from(fe) {
            return Err(fail(format_args!("frontend-id {fe_id} under backend/vbd/{fe}")));
        }
        println!("pv-guest: blkback: device {bp} of d{fe}, front-end at {fp}");
        Ok((fe, bp, fp))
    });
    let (fe, bp, fp) = match found {
        Ok(v) => v,
        Err(f) => return test("blkback_xenbus_finds_device", Err(f)),
    };
    test("blkback_xenbus_finds_device", Ok(()));

    let cfg = BackendConfig::DEFAULT;
    let mut r = Ok(());
    be_keys::publish_features(&BackendFeatures::of(&disk, &cfg, 0), &mut |k: &str, v: &str| write_key(&mut xs, &bp, k, v, &mut r));
    let initwait = r.and_then(|_| set_state(&mut xs, &bp, INIT_WAIT));
    let ok = initwait.is_ok();
    test("blkback_xenbus_initwait", initwait);
    if !ok {
        return;
    }

    let fe_state = format!("{fp}/state");
    let keys = xs
        .watch(&fe_state, "fe")
        .map_err(|e| xs_err("watch", &fe_state, e))
        .and_then(|_| wait_state(&mut xs, &fe_state, |s| s == INITIALISED || s == CONNECTED))
        .and_then(|_| {
            be_keys::read_frontend(&mut |k: &str, b: &mut [u8]| read_key(&mut xs, &fp, k, b), 0)
                .map_err(|e| fail(format_args!("{e}")))
        });
    let ring = match keys {
        Ok(r) => r,
        Err(f) => return test("blkback_xenbus_reads_frontend_keys", Err(f)),
    };
    println!("pv-guest: blkback: d{fe} is Initialised: ring-ref {}, event-channel {}", ring.ring_refs()[0].0, ring.event_channel.0);
    test("blkback_xenbus_reads_frontend_keys", Ok(()));

    let mut conns: Vec4<Conn> = Vec4::new();
    let connect = (|| -> TestResult {
        let port = hv::bind_interdomain(fe, ring.event_channel.0).map_err(|r| fail(format_args!("bind_interdomain(d{fe}): {r}")))?;
        let mut c = Conn::new(0, port, fe, ring.ring_refs()[0].0)?;
        blk::map_ring(&mut c)?;
        conns.push(c);
        let mut r = Ok(());
        be_keys::publish_disk(&DiskInfo::of(&disk, &cfg, 0), &mut |k: &str, v: &str| write_key(&mut xs, &bp, k, v, &mut r));
        r?;
        set_state(&mut xs, &bp, CONNECTED)
    })();
    let ok = connect.is_ok();
    test("blkback_xenbus_connected", connect);
    if !ok {
        return;
    }

    // Serve until the front-end says Closing (looked up when the store's port fired).
    let store_port = si.store_evtchn;
    let mut seen = HITS.count(store_port);
    let mut closing = |_: &Conn| -> bool {
        if HITS.count(store_port) == seen {
            return false;
        }
        let s = read_num(&mut xs, &fe_state).unwrap_or(CLOSED);
        seen = HITS.count(store_port);
        s >= CLOSING
    };
    blk::serve(&mut conns, &mut disk, Some(store_port), &mut closing, test);

    let closed = set_state(&mut xs, &bp, CLOSING)
        .and_then(|_| wait_state(&mut xs, &fe_state, |s| s == CLOSED))
        .and_then(|_| set_state(&mut xs, &bp, CLOSED));
    test("blkback_xenbus_closed", closed);
}

// ------------------------------------------------------------------ front-end

/// A front-end that did the handshake as far as the back-end's `Connected`: the store,
/// our device directory, the back-end's, the granted parts and the disk.
pub(crate) struct XenbusFront {
    pub(crate) xs: Xs,
    pub(crate) dev: String,
    pub(crate) bp: String,
    pub(crate) parts: blk::Parts,
    pub(crate) info: frontend_drivers::blkfront::BackendInfo,
}

/// The front-end's handshake up to the back-end's `Connected` (TEST lines for each
/// step; None after a failed one).
pub(crate) fn handshake(si: &StartInfo, test: &mut dyn FnMut(&str, TestResult)) -> Option<XenbusFront> {
    if let Err(e) = crate::heap::ensure(1) {
        test("blkfront_xenbus_heap", Err(fail(format_args!("{e}"))));
        return None;
    }
    let mut xs = match open(si) {
        Ok(x) => x,
        Err(f) => {
            test("blkfront_xenbus_store", Err(f));
            return None;
        }
    };
    let dev = format!("device/vbd/{VBD_DEVID}");
    let found = read_string(&mut xs, &format!("{dev}/backend")).and_then(|bp| {
        let be = read_num(&mut xs, &format!("{dev}/backend-id"))?;
        let be = u16::try_from(be).map_err(|_| fail(format_args!("backend-id {be}")))?;
        Ok((bp, be))
    });
    let (bp, be) = match found {
        Ok(v) => v,
        Err(f) => {
            test("blkfront_xenbus_finds_backend", Err(f));
            return None;
        }
    };
    println!("pv-guest: blkfront: {dev}: back-end d{be} at {bp}");
    test("blkfront_xenbus_finds_backend", Ok(()));

    let be_state = format!("{bp}/state");
    let initwait = xs
        .watch(&be_state, "be")
        .map_err(|e| xs_err("watch", &be_state, e))
        .and_then(|_| wait_state(&mut xs, &be_state, |s| s >= INIT_WAIT))
        .and_then(|s| if s == INIT_WAIT { Ok(()) } else { Err(fail(format_args!("back-end state {s}, wanted InitWait"))) });
    let ok = initwait.is_ok();
    test("blkfront_xenbus_backend_initwait", initwait);
    if !ok {
        return None;
    }

    let parts = (|| {
        let port = hv::alloc_unbound(DOMID_SELF.0, be).map_err(|r| fail(format_args!("alloc_unbound(remote d{be}): {r}")))?;
        let parts = blk::connect_parts(port, be)?;
        let mut r = Ok(());
        blkfront::publish_frontend(GrantRef(RING_REF), EvtchnPort(port), true, &mut |k: &str, v: &str| {
            write_key(&mut xs, &dev, k, v, &mut r)
        });
        r?;
        set_state(&mut xs, &dev, INITIALISED)?;
        println!("pv-guest: blkfront: Initialised: ring-ref {RING_REF}, event-channel {port}");
        Ok(parts)
    })();
    let parts = match parts {
        Ok(p) => p,
        Err(f) => {
            test("blkfront_xenbus_initialised", Err(f));
            return None;
        }
    };
    test("blkfront_xenbus_initialised", Ok(()));
    let info = wait_state(&mut xs, &be_state, |s| s >= CONNECTED).and_then(|s| {
        if s != CONNECTED {
            return Err(fail(format_args!("back-end state {s}, wanted Connected")));
        }
        blkfront::read_backend(&mut |k: &str, b: &mut [u8]| read_key(&mut xs, &bp, k, b)).map_err(|e| fail(format_args!("back-end keys: {e:?}")))
    });
    match info {
        Ok(info) => Some(XenbusFront { xs, dev, bp, parts, info }),
        Err(e) => {
            test("blkfront_xenbus_connected", Err(e));
            None
        }
    }
}

pub fn frontend(si: &StartInfo, cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    let Some(XenbusFront { mut xs, dev, bp, parts, info }) = handshake(si, test) else { return };
    let be_state = format!("{bp}/state");
    let connected = (|| -> Result<_, Failure> {
        let f = blk::front_with(parts, info, num(cmd, "segs", 11) as usize)?;
        set_state(&mut xs, &dev, CONNECTED)?;
        println!("pv-guest: blkfront: Connected: {} sectors of {} bytes", info.sectors, info.sector_size);
        Ok((f, info))
    })();
    let (mut f, info) = match connected {
        Ok(v) => v,
        Err(e) => return test("blkfront_xenbus_connected", Err(e)),
    };
    test("blkfront_xenbus_connected", Ok(()));

    let mib = num(cmd, "mib", 64).min(info.sectors / 2048);
    let t0 = shared::now_ns();
    blk::transfer_data(&mut f, 0, mib, num(cmd, "seed", 0x5eed), None, test);
    println!("pv-guest: blkfront: {mib} MiB written and read back over xenbus in {} ms", (shared::now_ns() - t0) / 1_000_000);

    // With persistent grants the back-end may keep our pages mapped until it
    // disconnects (Linux's blkback: once we are Closed): end the grants after it is
    // Closed (or gone).
    let persistent = blk::persistent(&f);
    if !persistent {
        blk::teardown(&mut f, test);
    }
    let closed = set_state(&mut xs, &dev, CLOSING)
        .and_then(|_| wait_state(&mut xs, &be_state, |s| s >= CLOSING))
        .and_then(|_| set_state(&mut xs, &dev, CLOSED));
    if persistent {
        let _ = wait_state(&mut xs, &be_state, |s| s >= CLOSED);
        blk::teardown(&mut f, test);
    }
    test("blkfront_xenbus_closed", closed);
}
