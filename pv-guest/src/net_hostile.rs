//! `role=netfront-hostile-xenbus`: a network front-end that puts garbage on its transmit
//! rings, for testing a netif back-end (Linux's `xen-netback` rules, which
//! `netback_core` follows).
//!
//! The domain needs six vifs (`device/vif/0..5`), all served by the same back-end; each
//! does the xenbus handshake of `role=netfront-xenbus` (`net::prepare`/`net::connect`)
//! and then:
//!
//! - vif 0: a good frame (`NETIF_RSP_OKAY`); packets the back-end must answer with
//!   `NETIF_RSP_ERROR` on every slot and drop, the device staying up: a reference never
//!   granted (in the grant table and past it), 19 and 20 fragments (more than
//!   `XEN_NETBK_LEGACY_SLOTS_MAX`, not more than the fatal 20), a fragment larger than
//!   what the first slot's size leaves, a runt; 18 fragments are accepted; a good frame
//!   still gets `NETIF_RSP_OKAY`. Then a `req_prod` far beyond the ring: the back-end must
//!   drop the device (its state goes `Closing`/`Closed`); requests published and
//!   signalled after that must get no answer.
//! - vifs 1..4, one protocol break each, after a good frame: a fragment crossing its
//!   page, a first slot crossing its page, an extra-info slot of an unknown type, and 21
//!   fragments. Each must make the back-end drop that device.
//! - vifs 0..4 are then closed (`Closing`, every ring grant taken back, which only works
//!   once the back-end unmapped them, `Closed`, the back-end's `Closed`).
//! - vif 5, untouched so far, must still be served (a good frame gets `NETIF_RSP_OKAY`)
//!   and is left connected: the toolstack's `xl destroy` must clean it up.
#![allow(clippy::result_large_err)]

use crate::evtchn::{self, Sleep, HITS};
use crate::net::{self, end_entry, grant_entry, Found};
use crate::selftest::{fail, Failure};
use crate::xenbus::{self as xb, CLOSED, CLOSING};
use crate::{hv, paging, println, shared};
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use frontend_drivers::netfront::{RxFront, TxFront};
use xen_abi::netif::{
    NetifExtraInfo, NetifTxRequest, NetifTxResponse, NETIF_RSP_ERROR, NETIF_RSP_OKAY, NETTXF_extra_info, NETTXF_more_data,
    XEN_NETIF_EXTRA_TYPE_MAX,
};
use xen_abi::xen::StartInfo;
use zerocopy::IntoBytes;

type TestResult = Result<(), Failure>;

/// vifs the role drives.
const DEVICES: usize = 6;
/// Ring grant references of device `k`: `RING_REF + 2k` (transmit) and `+ 1` (receive).
const RING_REF: u32 = 64;
/// The page frames are sent from, granted read-only.
const DATA_REF: u32 = 100;
/// A reference inside the grant table that is never granted.
const UNGRANTED_REF: u32 = 300;
/// A reference past the one grant-table frame this domain set up.
const BEYOND_TABLE_REF: u32 = 4000;
/// A good frame's length (the minimum Ethernet frame without its FCS).
const FRAME: u16 = 60;
/// Fragments: `FRAG` bytes each, from offset `FRAG_AT` of the data page.
const FRAG: u16 = 10;
const FRAG_AT: u16 = 64;
/// How long an answer or a state change may take (TCG is slow).
const WAIT_NS: u64 = 10_000_000_000;

/// One vif.
struct Dev {
    name: String,
    found: Found,
    port: u32,
    seen: u32,
    tx: TxFront,
    /// Kept for the back-end (no buffers are ever posted).
    _rx: RxFront,
    tx_ref: u32,
    rx_ref: u32,
}

fn slot(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> NetifTxRequest {
    NetifTxRequest { gref, offset, flags, id, size }
}

/// A packet: a first slot of `FRAME` bytes of its own from the data page, then `frags`
/// fragments of `FRAG` bytes (ids `id + 1..`); the first slot's size is the total.
fn packet(id: u16, frags: u16) -> Vec<NetifTxRequest> {
    let more = if frags > 0 { NETTXF_more_data } else { 0 };
    let mut v = Vec::new();
    v.push(slot(DATA_REF, 0, more, id, FRAME + frags * FRAG));
    for i in 1..=frags {
        let flags = if i < frags { NETTXF_more_data } else { 0 };
        v.push(slot(DATA_REF, FRAG_AT + i * FRAG, flags, id + i, FRAG));
    }
    v
}

/// Every slot of `p` answered with `status`, in ring order.
fn answers(p: &[NetifTxRequest], status: i16) -> Vec<(u16, i16)> {
    p.iter().map(|s| (s.id, status)).collect()
}

impl Dev {
    fn state(&self, xs: &mut xb::Xs) -> Result<u64, Failure> {
        xb::read_num(xs, &format!("{}/state", self.found.bp))
    }

    /// Writes `reqs`, publishes them and signals the back-end (always: a hostile front-end
    /// does not care for `req_event`).
    fn send(&mut self, reqs: &[NetifTxRequest]) -> TestResult {
        for r in reqs {
            self.tx.write_request(*r).map_err(|e| fail(format_args!("{}: ring: {e:?}", self.name)))?;
        }
        self.tx.push_requests();
        hv::send(self.port);
        Ok(())
    }

    /// Collects responses until `n` arrived or `ns` passed.
    fn responses(&mut self, n: usize, ns: u64) -> Result<Vec<NetifTxResponse>, Failure> {
        let deadline = shared::now_ns() + ns;
        let mut got = Vec::new();
        loop {
            while got.len() < n {
                match self.tx.read_response() {
                    Ok(Some(r)) => got.push(r),
                    Ok(None) => break,
                    Err(e) => return Err(fail(format_args!("{}: responses: {e:?}", self.name))),
                }
            }
            let pending = self.tx.final_check_for_responses().map_err(|e| fail(format_args!("{}: responses: {e:?}", self.name)))?;
            let now = shared::now_ns();
            if got.len() >= n || now >= deadline {
                return Ok(got);
            }
            if !pending {
                evtchn::wait_for(self.port, self.seen, deadline.min(now + 50_000_000), Sleep::Poll);
                self.seen = HITS.count(self.port);
            }
        }
    }

    /// Sends `reqs` and expects exactly the answers `want` (id, status), in order.
    fn exchange(&mut self, reqs: &[NetifTxRequest], want: &[(u16, i16)]) -> TestResult {
        self.send(reqs)?;
        let got = self.responses(want.len(), WAIT_NS)?;
        let got: Vec<(u16, i16)> = got.iter().map(|r| (r.id, r.status)).collect();
        if got != want {
            return Err(fail(format_args!("{}: answers {got:?}, wanted {want:?}", self.name)));
        }
        // Nothing more: every slot has exactly one answer.
        match self.tx.read_response() {
            Ok(None) => Ok(()),
            Ok(Some(r)) => Err(fail(format_args!("{}: an extra answer {r:?}", self.name))),
            Err(e) => Err(fail(format_args!("{}: responses: {e:?}", self.name))),
        }
    }

    /// A good frame: `NETIF_RSP_OKAY`.
    fn good(&mut self, id: u16) -> TestResult {
        self.exchange(&[slot(DATA_REF, 0, 0, id, FRAME)], &[(id, NETIF_RSP_OKAY)])
    }

    /// Sends a protocol break: the back-end must drop the device (state `Closing` or
    /// `Closed`) without answering it.
    fn fatal(&mut self, xs: &mut xb::Xs, reqs: &[NetifTxRequest]) -> TestResult {
        self.send(reqs)?;
        self.dropped(xs)?;
        match self.tx.read_response() {
            Ok(None) => Ok(()),
            Ok(Some(r)) => Err(fail(format_args!("{}: the protocol break was answered: {r:?}", self.name))),
            Err(e) => Err(fail(format_args!("{}: responses: {e:?}", self.name))),
        }
    }

    /// Waits until the back-end's state is `Closing` or `Closed`.
    fn dropped(&mut self, xs: &mut xb::Xs) -> TestResult {
        let deadline = shared::now_ns() + WAIT_NS;
        loop {
            let s = self.state(xs)?;
            if s == CLOSING || s == CLOSED {
                return Ok(());
            }
            if shared::now_ns() >= deadline {
                return Err(fail(format_args!("{}: back-end state still {s} after 10 s", self.name)));
            }
            evtchn::wait_for(self.port, self.seen, shared::now_ns() + 100_000_000, Sleep::Poll);
            self.seen = HITS.count(self.port);
        }
    }

    /// `Closing`, every ring grant taken back (the back-end unmapped them), `Closed`,
    /// and the back-end's `Closed`.
    fn close(&mut self, xs: &mut xb::Xs, table: &crate::arch::x86_64::mem::WindowPage) -> TestResult {
        xb::set_state(xs, &self.name, CLOSING)?;
        let deadline = shared::now_ns() + WAIT_NS;
        loop {
            let r = end_entry(table, self.tx_ref).and_then(|_| end_entry(table, self.rx_ref));
            match r {
                Ok(()) => break,
                Err(e) if shared::now_ns() >= deadline => {
                    return Err(fail(format_args!("{}: ring grants still in use after 10 s: {e:?}", self.name)))
                }
                Err(_) => {
                    evtchn::wait_for(self.port, self.seen, shared::now_ns() + 100_000_000, Sleep::Poll);
                    self.seen = HITS.count(self.port);
                }
            }
        }
        let _ = hv::close(self.port);
        xb::set_state(xs, &self.name, CLOSED)?;
        let s = xb::wait_state(xs, &format!("{}/state", self.found.bp), |s| s >= CLOSED)?;
        if s != CLOSED {
            return Err(fail(format_args!("{}: back-end state {s}, wanted Closed", self.name)));
        }
        Ok(())
    }
}

pub fn frontend(si: &StartInfo, test: &mut dyn FnMut(&str, TestResult)) {
    if let Err(e) = crate::heap::ensure(1) {
        return test("netfront_hostile_heap", Err(fail(format_args!("{e}"))));
    }
    let mut xs = match xb::open(si) {
        Ok(x) => x,
        Err(f) => return test("netfront_hostile_store", Err(f)),
    };
    let table = match net::grant_table() {
        Ok(t) => t,
        Err(f) => return test("netfront_hostile_grant_table", Err(f)),
    };
    // The data page: a frame to nobody (a locally administered unicast address, an
    // experimental EtherType), then a byte pattern the fragments take their bytes from.
    let data = (|| -> Result<u64, Failure> {
        let (page, _, mfn) = paging::new_page().map_err(|e| fail(format_args!("page: {e}")))?;
        let mut bytes = [0u8; 4096];
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = i as u8;
        }
        bytes[..6].copy_from_slice(&[0x02, 0, 0, 0, 0, 0x99]);
        bytes[12..14].copy_from_slice(&[0x88, 0xb5]);
        page.write_bytes(0, &bytes);
        Ok(mfn)
    })();
    let data_mfn = match data {
        Ok(m) => m,
        Err(f) => return test("netfront_hostile_data_page", Err(f)),
    };

    // Every device connected (and its back-end id learned) before anything hostile.
    let mut devs: Vec<Dev> = Vec::new();
    let connected = (|| -> TestResult {
        for k in 0..DEVICES {
            let name = format!("device/vif/{k}");
            let found = net::find_backend(&mut xs, &name)?;
            let (tx_ref, rx_ref) = (RING_REF + 2 * k as u32, RING_REF + 2 * k as u32 + 1);
            let link = net::prepare(&mut xs, &found, &table, tx_ref, rx_ref)?;
            net::connect(&mut xs, &name, &found, tx_ref, rx_ref, link.port)?;
            let port = link.port;
            devs.push(Dev { name, found, port, seen: HITS.count(port), tx: link.tx, _rx: link.rx, tx_ref, rx_ref });
        }
        Ok(())
    })();
    if let Err(f) = connected {
        return test("netfront_hostile_devices_connected", Err(f));
    }
    test("netfront_hostile_devices_connected", Ok(()));
    // All devices share one back-end (one domain id in the grant entry).
    let be = devs[0].found.be;
    if let Some(d) = devs.iter().find(|d| d.found.be != be) {
        return test("netfront_hostile_one_backend", Err(fail(format_args!("{} is served by d{}, vif 0 by d{be}", d.name, d.found.be))));
    }
    grant_entry(&table, DATA_REF, data_mfn, be, true);
    let xs = &mut xs;
    let [d0, d1, d2, d3, d4, d5] = &mut devs[..] else {
        return test("netfront_hostile_devices_connected", Err(fail(format_args!("{} devices", DEVICES))));
    };

    // ---- vif 0: bad packets the device survives
    test("netfront_hostile_good_frame_okay", d0.good(1));
    test(
        "netfront_hostile_ungranted_ref_error",
        d0.exchange(&[slot(UNGRANTED_REF, 0, 0, 2, FRAME)], &[(2, NETIF_RSP_ERROR)])
            .and_then(|_| d0.exchange(&[slot(BEYOND_TABLE_REF, 0, 0, 3, FRAME)], &[(3, NETIF_RSP_ERROR)])),
    );
    let p18 = packet(10, 18);
    test("netfront_hostile_18_fragments_okay", d0.exchange(&p18, &answers(&p18, NETIF_RSP_OKAY)));
    let p19 = packet(30, 19);
    test("netfront_hostile_19_fragments_error", d0.exchange(&p19, &answers(&p19, NETIF_RSP_ERROR)));
    let p20 = packet(60, 20);
    test("netfront_hostile_20_fragments_error", d0.exchange(&p20, &answers(&p20, NETIF_RSP_ERROR)));
    // The first slot says 100 bytes in all, its fragment alone has 200.
    let mismatch = [slot(DATA_REF, 0, NETTXF_more_data, 90, 100), slot(DATA_REF, 1000, 0, 91, 200)];
    test("netfront_hostile_sizes_not_adding_up_error", d0.exchange(&mismatch, &answers(&mismatch, NETIF_RSP_ERROR)));
    test("netfront_hostile_runt_error", d0.exchange(&[slot(DATA_REF, 0, 0, 92, 10)], &[(92, NETIF_RSP_ERROR)]));
    test("netfront_hostile_still_served_after_errors", d0.good(93));

    // A producer index far beyond the ring: the device must be dropped.
    let sane = d0.tx.req_prod_pvt();
    d0.tx.publish_req_prod_unchecked(sane.wrapping_add(100_000));
    hv::send(d0.port);
    test("netfront_hostile_ring_index_dropped", d0.dropped(xs));
    // Requests after that (a sane index again, signalled): nobody may answer them.
    d0.tx.publish_req_prod_unchecked(sane);
    let ignored = d0.send(&[slot(DATA_REF, 0, 0, 94, FRAME)]).and_then(|_| {
        let got = d0.responses(1, 2_000_000_000)?;
        let s = d0.state(xs)?;
        match (got.as_slice(), s) {
            ([], CLOSING | CLOSED) => Ok(()),
            (g, s) => Err(fail(format_args!("answers {g:?}, back-end state {s}"))),
        }
    });
    test("netfront_hostile_ignored_after_drop", ignored);

    // ---- vifs 1..4: one protocol break each
    let cross_frag = [slot(DATA_REF, 0, NETTXF_more_data, 200, FRAME + 200), slot(DATA_REF, 4000, 0, 201, 200)];
    test("netfront_hostile_fragment_crossing_page_dropped", d1.good(199).and_then(|_| d1.fatal(xs, &cross_frag)));
    test("netfront_hostile_first_slot_crossing_page_dropped", d2.good(299).and_then(|_| d2.fatal(xs, &[slot(DATA_REF, 4090, 0, 300, FRAME)])));
    let mut extra = slot(0, 0, 0, 0, 0);
    let bad_extra = NetifExtraInfo { type_: XEN_NETIF_EXTRA_TYPE_MAX + 2, flags: 0, u: [0; 3] };
    extra.as_mut_bytes()[..8].copy_from_slice(bad_extra.as_bytes());
    test(
        "netfront_hostile_bad_extra_type_dropped",
        d3.good(399).and_then(|_| d3.fatal(xs, &[slot(DATA_REF, 0, NETTXF_extra_info, 400, FRAME), extra])),
    );
    test("netfront_hostile_21_fragments_dropped", d4.good(499).and_then(|_| d4.fatal(xs, &packet(500, 21))));

    // ---- the dropped devices close cleanly: the back-end let go of their rings
    let closed = [&mut *d0, &mut *d1, &mut *d2, &mut *d3, &mut *d4].into_iter().try_for_each(|d| d.close(xs, &table));
    test("netfront_hostile_dropped_devices_closed", closed);

    // ---- vif 5 was never hostile: still served; left connected for `xl destroy`
    test("netfront_hostile_other_device_still_served", d5.good(600));
    test(
        "netfront_hostile_data_grant_released",
        end_entry(&table, DATA_REF).map_err(|e| fail(format_args!("grant {DATA_REF}: {e:?}"))),
    );
    println!("pv-guest: netfront-hostile: {} left connected", d5.name);
}
