//! The xenstore client on the store ring (a domU only: the initial domain booted by Xen
//! has no xenstore, `store_mfn` is 0, and this test does not run).

// Test failures carry their message in a fixed buffer (no allocator): a large `Err`
// is the point.
#![allow(clippy::result_large_err)]

use crate::console::Shared;
use crate::evtchn::{self, Sleep, HITS};
use crate::mm::pte;
use crate::selftest::{fail, Env, TestResult};
use core::mem::offset_of;
use core::sync::atomic::Ordering;
use xen_abi::xen::StartInfo;
use xenstore_wire::XenstoreDomainInterface as Iface;
use crate::{paging, println, shared};
use frontend_drivers::xenstore::{entries, XenStore, NO_TX};
use frontend_drivers::Notify;

/// The store event channel: notify with a send, wait by polling it (bounded).
#[derive(Debug)]
struct StorePort {
    port: u32,
    deadline_ns: u64,
}

impl Notify for StorePort {
    fn notify(&self) {
        crate::hv::send(self.port);
    }
    fn wait(&self) -> bool {
        let seen = HITS.count(self.port);
        let now = shared::now_ns();
        if now >= self.deadline_ns {
            return false;
        }
        evtchn::wait_for(self.port, seen, (now + 100_000_000).min(self.deadline_ns), Sleep::Poll);
        true
    }
}

/// This domain's id, from xenstore's `domid` key (a domU's grant entries must name
/// domains by id; DOMID_SELF is not valid there). None without a xenstore ring.
pub fn own_domid(si: &StartInfo) -> Option<u16> {
    if si.store_mfn == 0 {
        return None;
    }
    let page = paging::map_frame(si.store_mfn, pte::KERNEL_RW).ok()?;
    evtchn::unmask(si.store_evtchn);
    let port = StorePort { port: si.store_evtchn, deadline_ns: shared::now_ns() + 5_000_000_000 };
    let mut xs = XenStore::new(Shared(page), port);
    let mut buf = [0u8; 16];
    let n = xs.read(NO_TX, "domid", &mut buf).ok()?;
    core::str::from_utf8(&buf[..n]).ok()?.parse().ok()
}

pub fn selftest(env: &Env<'_>) -> TestResult {
    let si = env.start_info;
    let page = paging::map_frame(si.store_mfn, pte::KERNEL_RW).map_err(|r| fail(format_args!("mapping store ring: {r}")))?;
    evtchn::unmask(si.store_evtchn);
    let port = StorePort { port: si.store_evtchn, deadline_ns: shared::now_ns() + 10_000_000_000 };
    let mut xs = XenStore::new(Shared(page), port);
    let mut buf = [0u8; 256];
    let n = xs.read(NO_TX, "domid", &mut buf).map_err(|e| fail(format_args!("read domid: {e:?}")))?;
    let domid = core::str::from_utf8(&buf[..n]).unwrap_or("?");
    println!("pv-guest: xenstore: domid {domid}");
    xs.write(NO_TX, "data/pv-guest", b"hello").map_err(|e| fail(format_args!("write: {e:?}")))?;
    let n = xs.read(NO_TX, "data/pv-guest", &mut buf).map_err(|e| fail(format_args!("read back: {e:?}")))?;
    if &buf[..n] != b"hello" {
        return Err(fail(format_args!("read back {:?}", &buf[..n])));
    }
    let n = xs.directory(NO_TX, "data", &mut buf).map_err(|e| fail(format_args!("directory: {e:?}")))?;
    if !entries(&buf[..n]).any(|e| e == b"pv-guest") {
        return Err(fail(format_args!("directory data lacks pv-guest")));
    }
    let tx = xs.transaction_start().map_err(|e| fail(format_args!("transaction_start: {e:?}")))?;
    xs.write(tx, "data/pv-guest-tx", b"1").map_err(|e| fail(format_args!("write in tx: {e:?}")))?;
    xs.transaction_end(tx, true).map_err(|e| fail(format_args!("transaction_end: {e:?}")))?;
    xs.watch("data/pv-guest", "t").map_err(|e| fail(format_args!("watch: {e:?}")))?;
    let ev = xs.next_event().map_err(|e| fail(format_args!("first watch event: {e:?}")))?;
    if ev.token() != b"t" {
        return Err(fail(format_args!("watch token {:?}", ev.token())));
    }
    xs.unwatch("data/pv-guest", "t").map_err(|e| fail(format_args!("unwatch: {e:?}")))?;
    Ok(())
}

/// `role=xenstore-hostile`: a client that is served, then publishes a request index
/// 5000 bytes past what it consumed (more than the 1 KiB ring holds). xenstored must drop
/// it, without reading outside the ring or hurting its other clients.
pub fn hostile(si: &StartInfo, test: &mut dyn FnMut(&str, TestResult)) {
    let page = match paging::map_frame(si.store_mfn, pte::KERNEL_RW) {
        Ok(p) => p,
        Err(r) => return test("xenstore_hostile_served_first", Err(fail(format_args!("mapping store ring: {r}")))),
    };
    evtchn::unmask(si.store_evtchn);
    let client = |secs: u64| XenStore::new(Shared(page), StorePort { port: si.store_evtchn, deadline_ns: shared::now_ns() + secs * 1_000_000_000 });
    let mut buf = [0u8; 16];
    let first = client(10).read(NO_TX, "domid", &mut buf).map(|_| ()).map_err(|e| fail(format_args!("read domid: {e:?}")));
    test("xenstore_hostile_served_first", first);
    let cons = page.u32(offset_of!(Iface, req_cons)).load(Ordering::Acquire);
    page.u32(offset_of!(Iface, req_prod)).store(cons.wrapping_add(5000), Ordering::Release);
    crate::hv::send(si.store_evtchn);
    // Give xenstored time to look, then put the index back and ask again: no answer.
    let t = shared::now_ns() + 500_000_000;
    while shared::now_ns() < t {
        crate::hv::sched_yield();
    }
    page.u32(offset_of!(Iface, req_prod)).store(page.u32(offset_of!(Iface, req_cons)).load(Ordering::Acquire), Ordering::Release);
    let again = client(1).read(NO_TX, "domid", &mut buf);
    test(
        "xenstore_hostile_index_gets_client_dropped",
        match again {
            Err(frontend_drivers::xenstore::Error::Timeout) => Ok(()),
            other => Err(fail(format_args!("still answered after a hostile index: {other:?}"))),
        },
    );
}
