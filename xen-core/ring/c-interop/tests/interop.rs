//! Interop: the real io/ring.h macros (C, in a separate `ring-c-peer` process) on one
//! end of a blkif ring, `xen-ring` on the other, sharing a memfd page; eventfds stand in
//! for the event channel. Both directions, 1,000,000 requests and 1,000,000 responses
//! each, every payload field checked. Notification hold-off as in ring.h: notify only when
//! CHECK_NOTIFY says so, sleep only after FINAL_CHECK finds nothing. Every wait is bounded;
//! a timeout (a lost wakeup) fails the test and kills the peer.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xen_abi::blkif::{BlkifRequest, BlkifResponse};
use xen_ring::{BackRing, FrontRing};
use xen_ring_c_interop::payload::{check_request, check_response, make_request, make_response};
use xen_ring_c_interop::sys::{EventFd, SharedPage};
use xen_ring_c_interop::{C_PEER, PAGE_SIZE};

const COUNT: u64 = 1_000_000;
const WAIT_TIMEOUT: Duration = Duration::from_secs(10);
const DEADLINE: Duration = Duration::from_secs(120);

/// The two directions run one at a time (the machine may have only two cores).
static SERIAL: Mutex<()> = Mutex::new(());

/// Kills the peer if the test fails half way.
struct Peer(Option<Child>);

impl Drop for Peer {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Peer {
    fn spawn(mode: &str, page: &SharedPage, to_rust: &EventFd, to_c: &EventFd) -> Peer {
        let child = Command::new(C_PEER)
            .arg(mode)
            .arg(page.fd().to_string())
            .arg(to_rust.fd().to_string())
            .arg(to_c.fd().to_string())
            .arg(COUNT.to_string())
            .arg(WAIT_TIMEOUT.as_millis().to_string())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn ring-c-peer");
        Peer(Some(child))
    }

    /// Waits (bounded) for a successful exit; returns the peer's notification count.
    fn finish(mut self, start: Instant) -> u64 {
        let mut child = self.0.take().unwrap();
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("ring-c-peer did not finish within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let mut out = String::new();
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        assert!(
            status.success(),
            "ring-c-peer failed: {status}; stdout: {out}"
        );
        let n = out
            .split_whitespace()
            .find_map(|w| w.strip_prefix("notifications="))
            .unwrap_or_else(|| panic!("unexpected peer output: {out}"));
        n.parse().unwrap()
    }
}

fn wait(evt: &EventFd, who: &str, start: Instant) {
    assert!(
        start.elapsed() < DEADLINE,
        "{who}: over the {DEADLINE:?} deadline"
    );
    assert!(
        evt.wait(WAIT_TIMEOUT).unwrap(),
        "{who}: no notification from the C peer within {WAIT_TIMEOUT:?} (lost wakeup?)"
    );
}

#[test]
fn c_front_end_rust_back_end() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let page = SharedPage::new(PAGE_SIZE).unwrap();
    let (to_rust, to_c) = (EventFd::new().unwrap(), EventFd::new().unwrap());
    let start = Instant::now();
    let peer = Peer::spawn("front", &page, &to_rust, &to_c);

    // The C front end initialises the ring, then says "connected".
    wait(&to_rust, "rust back (connect)", start);
    // SAFETY: the memfd page stays mapped until `page` drops at the end of this test, after
    // the ring is gone; it is used only as this ring by us and the peer.
    let mut back =
        unsafe { BackRing::<BlkifRequest, BlkifResponse>::init(page.as_ptr(), PAGE_SIZE) }.unwrap();
    let (mut expected, mut batch, mut notifications, mut waits) = (0u64, 0u32, 0u64, 0u64);
    while expected < COUNT {
        while let Some(req) = back.read_request().unwrap() {
            assert!(check_request(expected, &req), "request {expected}: {req:?}");
            back.write_response(make_response(req.id)).unwrap();
            expected += 1;
            batch += 1;
            if batch > (expected % 8) as u32 {
                batch = 0;
                if back.push_responses_and_check_notify() {
                    to_c.notify().unwrap();
                    notifications += 1;
                }
            }
        }
        if back.push_responses_and_check_notify() {
            to_c.notify().unwrap();
            notifications += 1;
        }
        if expected < COUNT && !back.final_check_for_requests().unwrap() {
            waits += 1;
            wait(&to_rust, "rust back", start);
        }
    }
    let c_notifications = peer.finish(start);
    println!(
        "C front + Rust back: {COUNT} requests, {COUNT} responses in {:?}; notifications C->Rust {c_notifications}, Rust->C {notifications}; Rust waits {waits}",
        start.elapsed()
    );
}

#[test]
fn rust_front_end_c_back_end() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let page = SharedPage::new(PAGE_SIZE).unwrap();
    let (to_rust, to_c) = (EventFd::new().unwrap(), EventFd::new().unwrap());
    // SAFETY: as in the other test: the page outlives the ring and is used only as a ring.
    let mut front =
        unsafe { FrontRing::<BlkifRequest, BlkifResponse>::init(page.as_ptr(), PAGE_SIZE) }
            .unwrap();
    let start = Instant::now();
    let peer = Peer::spawn("back", &page, &to_rust, &to_c);
    // "Connected": the ring is initialised (not counted as a ring notification).
    to_c.notify().unwrap();

    let (mut sent, mut received, mut notifications, mut waits) = (0u64, 0u64, 0u64, 0u64);
    while received < COUNT {
        let want = (sent % 32) + 1;
        let mut n = 0;
        while sent < COUNT && n < want && !front.is_full() {
            front.write_request(make_request(sent)).unwrap();
            sent += 1;
            n += 1;
        }
        if front.push_requests_and_check_notify() {
            to_c.notify().unwrap();
            notifications += 1;
        }
        while let Some(rsp) = front.read_response().unwrap() {
            assert!(
                check_response(received, &rsp),
                "response {received}: {rsp:?}"
            );
            received += 1;
        }
        let blocked = sent == COUNT || front.is_full();
        if received < COUNT && blocked && !front.final_check_for_responses().unwrap() {
            waits += 1;
            wait(&to_rust, "rust front", start);
        }
    }
    let c_notifications = peer.finish(start);
    println!(
        "Rust front + C back: {COUNT} requests, {COUNT} responses in {:?}; notifications Rust->C {notifications}, C->Rust {c_notifications}; Rust waits {waits}",
        start.elapsed()
    );
}
