//! Two threads, one page: the front end and the back end exchange millions of blkif
//! requests and responses with Xen's notification hold-off emulated by a pair of
//! "event channels". Each side sleeps only after its FINAL_CHECK says there is nothing
//! to do, and is woken only when the peer's CHECK_NOTIFY says so, so a lost wakeup would
//! hang: every wait is bounded and a timeout fails the test.

mod common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use common::{make_request, make_response, Page, PAGE_SIZE};
use xen_abi::blkif::{BlkifRequest, BlkifResponse};
use xen_ring::{BackRing, FrontRing};

const MESSAGES: u64 = 2_000_000;
const WAIT_TIMEOUT: Duration = Duration::from_secs(20);

/// An emulated event channel: a pending bit, set by `notify`, consumed by `wait`.
#[derive(Default)]
struct EventChannel {
    pending: Mutex<bool>,
    cv: Condvar,
    sent: AtomicU64,
}

impl EventChannel {
    fn notify(&self) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        *self.pending.lock().unwrap() = true;
        self.cv.notify_one();
    }

    /// Waits for a notification; panics (failing the test) after `WAIT_TIMEOUT`.
    fn wait(&self, who: &str, failed: &AtomicBool) {
        let guard = self.pending.lock().unwrap();
        let (mut guard, res) = self
            .cv
            .wait_timeout_while(guard, WAIT_TIMEOUT, |p| {
                !*p && !failed.load(Ordering::Relaxed)
            })
            .unwrap();
        if res.timed_out() {
            failed.store(true, Ordering::Relaxed);
            panic!("{who}: no notification within {WAIT_TIMEOUT:?}: lost wakeup");
        }
        *guard = false;
    }
}

struct SendPtr(*mut u8);
// SAFETY: the pointer refers to the page owned by the test's main thread, which joins both
// threads before dropping it; the rings only access it through atomics/volatile copies.
unsafe impl Send for SendPtr {}

#[test]
fn two_threads_millions_of_messages_with_notifications() {
    let mut page = Page::new();
    let p = page.ptr();
    // SAFETY: the page outlives both threads (joined below) and is used only via the rings.
    let mut front =
        unsafe { FrontRing::<BlkifRequest, BlkifResponse>::init(p, PAGE_SIZE) }.unwrap();
    let to_back = Arc::new(EventChannel::default());
    let to_front = Arc::new(EventChannel::default());
    let failed = Arc::new(AtomicBool::new(false));
    let start = Instant::now();

    let back_thread = {
        let (to_back, to_front, failed) = (to_back.clone(), to_front.clone(), failed.clone());
        let ptr = SendPtr(p);
        std::thread::spawn(move || {
            let ptr = ptr;
            // SAFETY: as above; the front end initialised the page before this thread started.
            let mut back =
                unsafe { BackRing::<BlkifRequest, BlkifResponse>::init(ptr.0, PAGE_SIZE) }.unwrap();
            let mut expected = 0u64;
            let mut batch = 0u32;
            while expected < MESSAGES {
                while let Some(req) = back.read_request().unwrap() {
                    assert_eq!(req, make_request(expected), "request payload");
                    expected += 1;
                    back.write_response(make_response(&req)).unwrap();
                    // Vary batch sizes: publish every 1..8 responses.
                    batch += 1;
                    if batch > (expected % 8) as u32 {
                        batch = 0;
                        if back.push_responses_and_check_notify() {
                            to_front.notify();
                        }
                    }
                }
                if back.push_responses_and_check_notify() {
                    to_front.notify();
                }
                if expected < MESSAGES && !back.final_check_for_requests().unwrap() {
                    to_back.wait("back", &failed);
                }
            }
        })
    };

    let mut sent = 0u64;
    let mut received = 0u64;
    while received < MESSAGES {
        // Fill a varying batch of free slots, publishing once per batch.
        let want = ((sent % 32) + 1) as u32;
        let mut n = 0;
        while sent < MESSAGES && n < want && !front.is_full() {
            front.write_request(make_request(sent)).unwrap();
            sent += 1;
            n += 1;
        }
        if front.push_requests_and_check_notify() {
            to_back.notify();
        }
        while let Some(rsp) = front.read_response().unwrap() {
            assert_eq!(
                rsp,
                make_response(&make_request(received)),
                "response payload"
            );
            received += 1;
        }
        let blocked = sent == MESSAGES || front.is_full();
        if received < MESSAGES && blocked && !front.final_check_for_responses().unwrap() {
            to_front.wait("front", &failed);
        }
    }
    back_thread.join().expect("back thread");
    let elapsed = start.elapsed();
    println!(
        "{MESSAGES} requests + {MESSAGES} responses in {elapsed:?}; notifications front->back {}, back->front {}",
        to_back.sent.load(Ordering::Relaxed),
        to_front.sent.load(Ordering::Relaxed)
    );
    assert_eq!(sent, MESSAGES);
    drop(page);
}
