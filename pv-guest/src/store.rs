//! The xenstore client on the store ring (a domU only: the initial domain booted by Xen
//! has no xenstore, `store_mfn` is 0, and this test does not run).

// Test failures carry their message in a fixed buffer (no allocator): a large `Err`
// is the point.
#![allow(clippy::result_large_err)]

use crate::console::Shared;
use crate::evtchn::{self, Sleep, HITS};
use crate::mm::pte;
use crate::selftest::{fail, Env, TestResult};
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
