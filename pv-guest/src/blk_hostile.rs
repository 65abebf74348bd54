//! `role=blkfront-hostile-xenbus`: a block front-end that does the xenbus handshake
//! properly and then breaks every rule a back-end must survive: malformed requests
//! (each must get an error response), a request producer far past the ring (the
//! back-end must drop the device: `Closing`), and requests after that (ignored). The
//! dom0 tier runs it beside an honest front-end and checks the back-end keeps serving
//! that one and leaks nothing.

#![allow(clippy::result_large_err)]

use crate::blk;
use crate::selftest::{fail, Failure};
use crate::xenbus::{self, XenbusFront, CLOSED, CLOSING, CONNECTED};
use crate::{println, shared};
use alloc::format;
use frontend_drivers::Notify;
use xen_abi::xen::StartInfo;

type TestResult = Result<(), Failure>;

/// How far past the ring the hostile producer index points (the ring holds 32).
const PAST_THE_RING: u32 = 1000;

pub fn frontend(si: &StartInfo, test: &mut dyn FnMut(&str, TestResult)) {
    let Some(XenbusFront { mut xs, dev, bp, mut parts, info }) = xenbus::handshake(si, test) else { return };
    let be_state = format!("{bp}/state");
    if let Err(e) = xenbus::set_state(&mut xs, &dev, CONNECTED) {
        return test("blkfront_hostile_xenbus_connected", Err(e));
    }
    test("blkfront_hostile_xenbus_connected", Ok(()));
    println!("pv-guest: blkfront-hostile: connected to {bp} ({} sectors); sending garbage", info.sectors);

    blk::garbage_requests(&mut parts, info.sectors, test);

    // A producer index the ring cannot hold: the back-end must stop trusting the ring.
    let bogus = parts.ring.req_prod_pvt().wrapping_add(PAST_THE_RING);
    parts.ring.publish_req_prod_unchecked(bogus);
    parts.chan.notify();
    let t0 = shared::now_ns();
    let dropped = xenbus::wait_state(&mut xs, &be_state, |s| s >= CLOSING).and_then(|s| {
        println!("pv-guest: blkfront-hostile: req_prod {bogus:#x}: back-end state {s} after {} ms", (shared::now_ns() - t0) / 1_000_000);
        if s == CLOSING || s == CLOSED {
            Ok(())
        } else {
            Err(fail(format_args!("back-end state {s}, wanted Closing")))
        }
    });
    test("blkfront_hostile_ring_index_drops_device", dropped);

    // Requests after the close: more garbage and a kick; the back-end must ignore them.
    parts.ring.publish_req_prod_unchecked(bogus.wrapping_add(PAST_THE_RING));
    parts.chan.notify();
    let closed = xenbus::set_state(&mut xs, &dev, CLOSED).and_then(|_| xenbus::wait_state(&mut xs, &be_state, |s| s >= CLOSED)).and_then(|_| {
        parts.ring.publish_req_prod_unchecked(bogus.wrapping_add(2 * PAST_THE_RING));
        parts.chan.notify();
        // Still Closed after the late kick (a back-end that reconnected or fell over
        // would show another state or none).
        let s = xenbus::read_num(&mut xs, &be_state)?;
        if s == CLOSED {
            Ok(())
        } else {
            Err(fail(format_args!("back-end state {s} after requests past the close")))
        }
    });
    test("blkfront_hostile_requests_after_close_ignored", closed);
}
