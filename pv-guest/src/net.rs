//! `role=netfront-xenbus ip=A peer=B count=N [serve=S] [linger-s=T]`: the network
//! front-end over xenbus, on `frontend_drivers::netfront` and `netproto`.
//!
//! Finds its back-end in `device/vif/0`, waits for `InitWait`, grants a transmit and a
//! receive ring and a page pool, allocates an unbound channel, publishes the keys and
//! goes `Connected` (as Linux's netfront does: Linux's netback connects on that); once
//! the back-end is `Connected` it answers ARP for its address and ICMP echo requests
//! from anyone, resolves `peer` by ARP, sends `count` echo requests and checks every
//! reply, then keeps answering until it has answered `serve` echo requests in all (or
//! `linger-s` seconds passed), and closes (`Closing`, the back-end's `Closing`/`Closed`,
//! every grant ended, `Closed`).
#![allow(clippy::result_large_err)]

use crate::arch::x86_64::mem::{front_ring, scratch_addr, scratch_fill, scratch_get, WindowPage};
use crate::evtchn::{self, Sleep, HITS};
use crate::mm::pte;
use crate::roles::{arg, num};
use crate::selftest::{fail, Failure};
use crate::xenbus::{self as xb, CLOSING, CONNECTED, INIT_WAIT};
use crate::{hv, paging, println, shared};
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{fence, Ordering};
use frontend_drivers::netfront::{self, CsumFlags, FrontGrants, NetError, NetFront, NetFrontConfig};
use frontend_drivers::netproto::{self as np, Echo, Ipv4, Mac, Packet};
use xen_abi::grant_table::*;
use xen_abi::xen::{StartInfo, DOMID_SELF};
use xen_abi::{EvtchnPort, GrantRef};

type TestResult = Result<(), Failure>;

/// Grant references: the two rings, then the pool (clear of blk's 8..45).
const TX_RING_REF: u32 = 64;
const RX_RING_REF: u32 = 65;
const POOL_REF: u32 = 66;
const DEVICE: &str = "device/vif/0";
const ICMP_IDENT: u16 = 0x7076; // "pv"

/// The pool pages and the grant table, as netfront's `FrontGrants`.
struct Pool {
    table: WindowPage,
    pages: Vec<(WindowPage, u64)>,
    backend: u16,
}

pub(crate) fn grant_entry(table: &WindowPage, gref: u32, mfn: u64, domid: u16, readonly: bool) {
    let off = gref as usize * 8;
    table.u32(off + 4).store(mfn as u32, Ordering::Relaxed);
    table.u16(off + 2).store(domid, Ordering::Relaxed);
    fence(Ordering::Release); // frame and domid visible before the entry is valid
    let flags = GTF_permit_access | if readonly { GTF_readonly } else { 0 };
    table.u16(off).store(flags, Ordering::Release);
}

pub(crate) fn end_entry(table: &WindowPage, gref: u32) -> Result<(), netfront::GrantError> {
    let off = gref as usize * 8;
    let flags = table.u16(off).load(Ordering::Acquire);
    if flags & (GTF_reading | GTF_writing) != 0 {
        return Err(netfront::GrantError::InUse);
    }
    table.u16(off).compare_exchange(flags, 0, Ordering::AcqRel, Ordering::Acquire).map(|_| ()).map_err(|_| netfront::GrantError::InUse)
}

impl FrontGrants for Pool {
    fn page_count(&self) -> usize {
        self.pages.len()
    }
    fn grant(&mut self, page: usize, readonly: bool) -> Result<GrantRef, netfront::GrantError> {
        let (_, mfn) = self.pages.get(page).ok_or(netfront::GrantError::Other(-1))?;
        let gref = POOL_REF + page as u32;
        grant_entry(&self.table, gref, *mfn, self.backend, readonly);
        Ok(GrantRef(gref))
    }
    fn end_access(&mut self, gref: GrantRef) -> Result<(), netfront::GrantError> {
        end_entry(&self.table, gref.0)
    }
    fn write_page(&mut self, page: usize, offset: usize, data: &[u8]) {
        if let Some((p, _)) = self.pages.get(page) {
            p.write_bytes(offset, data);
        }
    }
    fn read_page(&mut self, page: usize, offset: usize, buf: &mut [u8]) {
        if let Some((p, _)) = self.pages.get(page) {
            p.read_bytes(offset, buf);
        }
    }
}

/// Grant-table frame 0 (references 0..512), mapped.
pub(crate) fn grant_table() -> Result<WindowPage, Failure> {
    scratch_fill(hv::AUX, 8, 0);
    let mut s = GnttabSetupTable { dom: DOMID_SELF.0, nr_frames: 1, frame_list: scratch_addr(hv::AUX), ..Default::default() };
    let rc = hv::grant(GNTTABOP_setup_table, &mut s);
    if rc != 0 || s.status != GNTST_okay {
        return Err(fail(format_args!("setup_table: {rc}, status {}", s.status)));
    }
    let frame: u64 = scratch_get(hv::AUX);
    paging::map_frame(frame, pte::KERNEL_RW).map_err(|e| fail(format_args!("map grant frame: {e}")))
}

/// The interface: driver, addresses, event channel and what has been seen.
struct Nic {
    dev: NetFront<Pool>,
    port: u32,
    seen: u32,
    mac: Mac,
    ip: Ipv4,
    peer_ip: Ipv4,
    peer_mac: Option<Mac>,
    /// Echo replies to our requests: (seq, arrival ns).
    replies: Vec<(u16, u64)>,
    /// Echo requests answered.
    answered: u32,
    ip_id: u16,
    rx: Vec<u8>,
    tx: Vec<u8>,
}

fn net_err(what: &str, e: NetError) -> Failure {
    fail(format_args!("{what}: {e:?}"))
}

impl Nic {
    fn kick(&self, notify: bool) {
        if notify {
            hv::send(self.port);
        }
    }

    fn send(&mut self, len: usize) -> TestResult {
        let deadline = shared::now_ns() + 2_000_000_000;
        loop {
            match self.dev.send(&self.tx[..len], CsumFlags::default()) {
                Ok(n) => {
                    self.kick(n);
                    return Ok(());
                }
                Err(NetError::Busy) if shared::now_ns() < deadline => self.wait(deadline)?,
                Err(e) => return Err(net_err("send", e)),
            }
        }
    }

    /// Receives and handles every complete frame; reaps transmit responses.
    fn pump(&mut self) -> TestResult {
        self.dev.reap_tx().map_err(|e| net_err("transmit responses", e))?;
        let mut rx = core::mem::take(&mut self.rx);
        let r = self.pump_rx(&mut rx);
        self.rx = rx;
        r?;
        let n = self.dev.post_rx().map_err(|e| net_err("posting buffers", e))?;
        self.kick(n);
        Ok(())
    }

    fn pump_rx(&mut self, rx: &mut [u8]) -> TestResult {
        while let Some(f) = self.dev.recv(rx).map_err(|e| net_err("receive", e))? {
            let now = shared::now_ns();
            let pkt = match np::parse(&rx[..f.len]) {
                Ok(p) => p,
                Err(_) => continue,
            };
            let mut tx = core::mem::take(&mut self.tx);
            let out = match pkt {
                Packet::Arp { arp, .. } => {
                    if arp.sender_ip == self.peer_ip && arp.sender_mac != [0; 6] {
                        self.peer_mac = Some(arp.sender_mac);
                    }
                    np::arp_reply_to(&mut tx, &arp, self.mac, self.ip)
                }
                Packet::Echo { echo, .. } if echo.kind == np::ICMP_ECHO_REPLY => {
                    if echo.dst_ip == self.ip && echo.src_ip == self.peer_ip && echo.ident == ICMP_IDENT && payload_ok(echo.seq, echo.payload) {
                        self.replies.push((echo.seq, now));
                    }
                    None
                }
                Packet::Echo { echo, .. } => {
                    self.ip_id = self.ip_id.wrapping_add(1);
                    let r = np::echo_reply_to(&mut tx, &echo, self.mac, self.ip, self.ip_id);
                    if matches!(r, Some(Ok(_))) {
                        self.answered += 1;
                    }
                    r
                }
                _ => None,
            };
            self.tx = tx;
            if let Some(Ok(len)) = out {
                // An answer: dropped when no buffer is free (the asker retries), so that
                // answering never waits inside the receive loop.
                match self.dev.send(&self.tx[..len], CsumFlags::default()) {
                    Ok(n) => self.kick(n),
                    Err(NetError::Busy) => {}
                    Err(e) => return Err(net_err("send", e)),
                }
            }
        }
        Ok(())
    }

    /// Sleeps until the back-end signals or `deadline`.
    fn wait(&mut self, deadline: u64) -> TestResult {
        if !self.dev.final_check().map_err(|e| net_err("ring", e))? {
            evtchn::wait_for(self.port, self.seen, deadline.min(shared::now_ns() + 50_000_000), Sleep::Poll);
        }
        self.seen = HITS.count(self.port);
        self.pump()
    }

    /// Pumps until `done` or `ns` pass; returns whether `done`.
    fn until(&mut self, ns: u64, mut done: impl FnMut(&Nic) -> bool) -> Result<bool, Failure> {
        let deadline = shared::now_ns() + ns;
        self.pump()?;
        while !done(self) {
            if shared::now_ns() >= deadline {
                return Ok(false);
            }
            self.wait(deadline)?;
        }
        Ok(true)
    }
}

fn payload(seq: u16) -> [u8; 56] {
    core::array::from_fn(|i| (i as u16 ^ seq.wrapping_mul(31)) as u8)
}

fn payload_ok(seq: u16, p: &[u8]) -> bool {
    p == payload(seq)
}

/// A vif device's back-end, from the front-end's directory.
pub(crate) struct Found {
    /// The back-end's directory.
    pub bp: String,
    pub be: u16,
    pub mac: Mac,
}

/// Reads `backend`, `backend-id` and `mac` of the device directory `dev`.
pub(crate) fn find_backend(xs: &mut xb::Xs, dev: &str) -> Result<Found, Failure> {
    let bp = xb::read_string(xs, &format!("{dev}/backend"))?;
    let be = xb::read_num(xs, &format!("{dev}/backend-id"))?;
    let be = u16::try_from(be).map_err(|_| fail(format_args!("backend-id {be}")))?;
    let mac = xb::read_string(xs, &format!("{dev}/mac"))?;
    let mac = np::parse_mac(&mac).ok_or_else(|| fail(format_args!("{dev}/mac = {mac:?}")))?;
    println!("pv-guest: netfront: {dev}: back-end d{be} at {bp}, mac {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    Ok(Found { bp, be, mac })
}

/// The front-end's half of a device before `Connected`: both rings granted, a channel
/// allocated for the back-end, the back-end's features.
pub(crate) struct Link {
    pub port: u32,
    pub tx: netfront::TxFront,
    pub rx: netfront::RxFront,
    pub info: netfront::BackendNetInfo,
}

/// Watches the back-end's state and waits for `InitWait`, reads its features, allocates
/// a channel for it and grants two fresh ring pages as `tx_ref` and `rx_ref` in `table`.
pub(crate) fn prepare(xs: &mut xb::Xs, f: &Found, table: &WindowPage, tx_ref: u32, rx_ref: u32) -> Result<Link, Failure> {
    let be_state = format!("{}/state", f.bp);
    xs.watch(&be_state, "be").map_err(|e| xb::xs_err("watch", &be_state, e))?;
    let s = xb::wait_state(xs, &be_state, |s| s >= INIT_WAIT)?;
    if s != INIT_WAIT {
        return Err(fail(format_args!("back-end state {s}, wanted InitWait")));
    }
    let info = netfront::read_backend(&mut |k: &str, b: &mut [u8]| xb::read_key(xs, &f.bp, k, b)).map_err(|e| fail(format_args!("back-end keys: {e:?}")))?;
    let port = hv::alloc_unbound(DOMID_SELF.0, f.be).map_err(|r| fail(format_args!("alloc_unbound(remote d{}): {r}", f.be)))?;
    if evtchn::unmask(port) != 0 {
        return Err(fail(format_args!("unmask {port}")));
    }
    let page = || paging::new_page().map_err(|e| fail(format_args!("page: {e}")));
    let (txp, _, tx_mfn) = page()?;
    let (rxp, _, rx_mfn) = page()?;
    let tx = front_ring(&txp).map_err(|e| fail(format_args!("tx ring: {e:?}")))?;
    let rx = front_ring(&rxp).map_err(|e| fail(format_args!("rx ring: {e:?}")))?;
    grant_entry(table, tx_ref, tx_mfn, f.be, false);
    grant_entry(table, rx_ref, rx_mfn, f.be, false);
    Ok(Link { port, tx, rx, info })
}

/// Publishes the front-end's keys in `dev`, goes `Connected` and waits for the
/// back-end's `Connected`.
pub(crate) fn connect(xs: &mut xb::Xs, dev: &str, f: &Found, tx_ref: u32, rx_ref: u32, port: u32) -> TestResult {
    let mut r = Ok(());
    netfront::publish_frontend(GrantRef(tx_ref), GrantRef(rx_ref), EvtchnPort(port), &mut |k: &str, v: &str| xb::write_key(xs, dev, k, v, &mut r));
    r?;
    xb::set_state(xs, dev, CONNECTED)?;
    println!("pv-guest: netfront: {dev}: tx-ring-ref {tx_ref}, rx-ring-ref {rx_ref}, event-channel {port}");
    let s = xb::wait_state(xs, &format!("{}/state", f.bp), |s| s >= CONNECTED)?;
    if s != CONNECTED {
        return Err(fail(format_args!("back-end state {s}, wanted Connected")));
    }
    Ok(())
}

pub fn frontend(si: &StartInfo, cmd: &str, test: &mut dyn FnMut(&str, TestResult)) {
    let ip = arg(cmd, "ip").and_then(np::parse_ipv4);
    let peer = arg(cmd, "peer").and_then(np::parse_ipv4);
    let (Some(ip), Some(peer_ip)) = (ip, peer) else {
        return test("netfront_args", Err(fail(format_args!("need ip=A.B.C.D peer=A.B.C.D"))));
    };
    let count = num(cmd, "count", 20) as u16;
    let serve = num(cmd, "serve", 0) as u32;
    let linger = num(cmd, "linger-s", 60);
    if let Err(e) = crate::heap::ensure(1) {
        return test("netfront_heap", Err(fail(format_args!("{e}"))));
    }
    let mut xs = match xb::open(si) {
        Ok(x) => x,
        Err(f) => return test("netfront_store", Err(f)),
    };
    let found = match find_backend(&mut xs, DEVICE) {
        Ok(v) => v,
        Err(f) => return test("netfront_finds_backend", Err(f)),
    };
    let (be, mac) = (found.be, found.mac);
    let be_state = format!("{}/state", found.bp);
    let connected = (|| -> Result<Nic, Failure> {
        let table = grant_table()?;
        let link = prepare(&mut xs, &found, &table, TX_RING_REF, RX_RING_REF)?;
        let cfg = NetFrontConfig { tx_buffers: 16, rx_buffers: 32, backend_sg: link.info.sg };
        let mut pages = Vec::new();
        for _ in 0..cfg.tx_buffers + cfg.rx_buffers {
            let (p, _, mfn) = paging::new_page().map_err(|e| fail(format_args!("page: {e}")))?;
            pages.push((p, mfn));
        }
        let port = link.port;
        let dev = NetFront::new(link.tx, link.rx, Pool { table, pages, backend: be }, cfg).map_err(|e| net_err("netfront", e))?;
        println!("pv-guest: netfront: back-end sg {}", link.info.sg);
        connect(&mut xs, DEVICE, &found, TX_RING_REF, RX_RING_REF, port)?;
        Ok(Nic {
            dev,
            port,
            seen: HITS.count(port),
            mac,
            ip,
            peer_ip,
            peer_mac: None,
            replies: Vec::new(),
            answered: 0,
            ip_id: 0,
            rx: vec![0u8; netfront::MAX_FRAME],
            tx: vec![0u8; 2048],
        })
    })();
    let mut nic = match connected {
        Ok(n) => n,
        Err(f) => return test("netfront_xenbus_connected", Err(f)),
    };
    test("netfront_xenbus_connected", Ok(()));

    // ARP for the peer, once a second, for up to 60 s (the host side may come up late).
    let arp = (|| -> TestResult {
        for _ in 0..60 {
            let n = np::arp_request(&mut nic.tx, nic.mac, nic.ip, nic.peer_ip).map_err(|e| fail(format_args!("{e:?}")))?;
            nic.send(n)?;
            if nic.until(1_000_000_000, |n| n.peer_mac.is_some())? {
                return Ok(());
            }
        }
        Err(fail(format_args!("no ARP reply from the peer in 60 s")))
    })();
    let resolved = arp.is_ok();
    if let Some(m) = nic.peer_mac {
        println!("pv-guest: netfront: peer is at {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", m[0], m[1], m[2], m[3], m[4], m[5]);
    }
    test("netfront_arp_resolved", arp);

    if resolved {
        let pings = (|| -> TestResult {
            let peer_mac = nic.peer_mac.unwrap_or(np::BROADCAST);
            let mut total_ns = 0u64;
            let mut got = 0u32;
            for seq in 1..=count {
                let p = payload(seq);
                let req = Echo { kind: np::ICMP_ECHO_REQUEST, src_mac: nic.mac, src_ip: nic.ip, dst_ip: nic.peer_ip, ident: ICMP_IDENT, seq, payload: &p };
                // Like ping, a request or reply may be dropped (a back-end with no free
                // receive slot drops, as Linux's netback does under load): up to three
                // tries per sequence number; a link that carries nothing still fails.
                for _try in 0..3 {
                    // Built each time: answering the peer's pings meanwhile reuses `tx`.
                    nic.ip_id = nic.ip_id.wrapping_add(1);
                    let n = np::build_echo(&mut nic.tx, peer_mac, &req, nic.ip_id).map_err(|e| fail(format_args!("{e:?}")))?;
                    let t0 = shared::now_ns();
                    nic.send(n)?;
                    if nic.until(2_000_000_000, |n| n.replies.iter().any(|r| r.0 == seq))? {
                        let t1 = nic.replies.iter().find(|r| r.0 == seq).map_or(t0, |r| r.1);
                        total_ns += t1.saturating_sub(t0);
                        got += 1;
                        break;
                    }
                    println!("pv-guest: netfront: no echo reply to seq {seq} in 2 s, sending again");
                }
            }
            println!("pv-guest: netfront: {got}/{count} echo replies from the peer");
            if got > 0 {
                println!("BENCH netfront_ping_rtt_avg {} us", total_ns / u64::from(got) / 1000);
            }
            if got == u32::from(count) {
                Ok(())
            } else {
                Err(fail(format_args!("({got}/{count}) replies")))
            }
        })();
        test("netfront_ping_replies", pings);
    }

    if serve > 0 {
        let served = nic.until(linger * 1_000_000_000, |n| n.answered >= serve);
        println!("pv-guest: netfront: answered {} echo requests", nic.answered);
        test(
            "netfront_answered_echo_requests",
            served.and_then(|ok| if ok { Ok(()) } else { Err(fail(format_args!("({}/{serve}) in {linger} s", nic.answered))) }),
        );
    }
    println!("pv-guest: netfront: {:?}", nic.dev.stats());

    let closed = (|| -> TestResult {
        xb::set_state(&mut xs, DEVICE, CLOSING)?;
        xb::wait_state(&mut xs, &be_state, |s| s >= CLOSING)?;
        // The back-end has unmapped the rings and stopped copying: take everything back.
        let deadline = shared::now_ns() + 5_000_000_000;
        loop {
            let pool = nic.dev.teardown();
            let rings = end_entry(&nic_table(&nic), TX_RING_REF).and_then(|_| end_entry(&nic_table(&nic), RX_RING_REF));
            match (pool, rings) {
                (Ok(()), Ok(())) => break,
                (p, r) if shared::now_ns() >= deadline => return Err(fail(format_args!("grants still in use: pool {p:?}, rings {r:?}"))),
                _ => {
                    evtchn::wait_for(nic.port, nic.seen, shared::now_ns() + 50_000_000, Sleep::Poll);
                }
            }
        }
        let _ = hv::close(nic.port);
        xb::set_state(&mut xs, DEVICE, xb::CLOSED)
    })();
    test("netfront_closed", closed);
}

/// The grant table page the pool uses (rings live in the same table).
fn nic_table(nic: &Nic) -> WindowPage {
    nic.dev.grants().table
}
