//! ring-bench: request/response throughput of three shared-ring implementations on the
//! same workload, producer and consumer threads pinned to two different CPUs:
//!
//! 1. `xen-ring` (this project),
//! 2. `ringbuf` (two SPSC queues, requests and responses, each as deep as the Xen ring),
//! 3. the C `io/ring.h` macros (csrc/bench.c, called over FFI from the two threads).
//!
//! Workload: the front end waits for `batch` free slots, writes `batch` requests and
//! publishes them once, then consumes every available response (checking its id); the
//! back end consumes up to `batch` requests, answers each with a response (blkif: a fold
//! of every request word, so the whole request is read; 64-byte entries: an echo) and
//! publishes them once. Busy-polling throughout (no notifications). A message is one completed
//! request + response; MB/s counts request payload bytes.
//!
//! Each cell runs for `--seconds` in total, as 3 interleaved runs whose median is shown.
//!
//! Usage: ring-bench [--seconds N] [--markdown]   (build with --release)

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::HeapRb;
use xen_abi::blkif::{BlkifRequest, BlkifRequestSegment, BlkifResponse, BLKIF_OP_READ};
use xen_ring::{ring_size_for, BackRing, FrontRing};
use xen_ring_c_interop::cbench::{self, Entry};
use xen_ring_c_interop::sys::{pin_to_cpu, SharedPage};
use xen_ring_c_interop::PAGE_SIZE;
use zerocopy::{FromBytes, Immutable, IntoBytes};

/// A 64-byte request or response (the same layout as `struct e64_request` in C).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, FromBytes, IntoBytes, Immutable)]
struct E64 {
    id: u64,
    data: [u64; 7],
}

/// What a benchmark entry kind needs: how to build a request, answer it, and check it.
trait Kind: 'static {
    type Req: FromBytes + IntoBytes + Immutable + Copy + Default + Send;
    type Rsp: FromBytes + IntoBytes + Immutable + Copy + Default + Send;
    const NAME: &'static str;
    const C: Entry;
    fn request(id: u64) -> Self::Req;
    fn answer(req: &Self::Req) -> Self::Rsp;
    fn rsp_id(rsp: &Self::Rsp) -> u64;
}

struct Blkif;
impl Kind for Blkif {
    type Req = BlkifRequest;
    type Rsp = BlkifResponse;
    const NAME: &'static str = "blkif 112/16 B";
    const C: Entry = Entry::Blkif;
    #[inline(always)]
    fn request(id: u64) -> BlkifRequest {
        let mut seg = [BlkifRequestSegment::default(); 11];
        for (k, s) in seg.iter_mut().enumerate() {
            s.gref = (id as u32).wrapping_add(k as u32);
            s.last_sect = 7;
        }
        BlkifRequest {
            operation: BLKIF_OP_READ,
            nr_segments: 11,
            handle: 0,
            _pad: [0; 4],
            id,
            sector_number: id,
            seg,
        }
    }
    /// Answers with a 16-bit fold of all 14 request words (as csrc/bench.c), so the back
    /// end really reads the whole request in every implementation.
    #[inline(always)]
    fn answer(req: &BlkifRequest) -> BlkifResponse {
        let mut acc = 0u64;
        for w in req.as_bytes().chunks_exact(8) {
            acc ^= u64::from_ne_bytes(w.try_into().unwrap());
        }
        acc ^= acc >> 32;
        acc ^= acc >> 16;
        BlkifResponse {
            id: req.id,
            operation: req.operation,
            _pad0: 0,
            status: acc as i16,
            _pad1: [0; 4],
        }
    }
    #[inline(always)]
    fn rsp_id(rsp: &BlkifResponse) -> u64 {
        rsp.id
    }
}

struct Bytes64;
impl Kind for Bytes64 {
    type Req = E64;
    type Rsp = E64;
    const NAME: &'static str = "64 B";
    const C: Entry = Entry::E64;
    #[inline(always)]
    fn request(id: u64) -> E64 {
        let mut data = [0u64; 7];
        for (k, d) in data.iter_mut().enumerate() {
            *d = id.wrapping_add(k as u64);
        }
        E64 { id, data }
    }
    #[inline(always)]
    fn answer(req: &E64) -> E64 {
        *req
    }
    #[inline(always)]
    fn rsp_id(rsp: &E64) -> u64 {
        rsp.id
    }
}

const FRONT_CPU: usize = 0;
const REPS: usize = 3;
const BATCHES: [u32; 2] = [1, 32];
const BACK_CPU: usize = 1;

/// Runs `front` and `back` on two pinned threads for `secs`; returns (messages, elapsed).
fn run_pair<F, B>(secs: f64, front: F, back: B) -> (u64, Duration)
where
    F: FnOnce(&AtomicU32, &AtomicU32) -> u64 + Send + 'static,
    B: FnOnce(&AtomicU32) + Send + 'static,
{
    let stop = Arc::new(AtomicU32::new(0));
    let done = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(Barrier::new(3));
    let back_thread = {
        let (done, barrier) = (done.clone(), barrier.clone());
        std::thread::spawn(move || {
            let _ = pin_to_cpu(BACK_CPU);
            barrier.wait();
            back(&done);
        })
    };
    let front_thread = {
        let (stop, done, barrier) = (stop.clone(), done.clone(), barrier.clone());
        std::thread::spawn(move || {
            let _ = pin_to_cpu(FRONT_CPU);
            barrier.wait();
            let t = Instant::now();
            let n = front(&stop, &done);
            (n, t.elapsed())
        })
    };
    barrier.wait();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(1, Ordering::Release);
    let r = front_thread.join().expect("front thread");
    back_thread.join().expect("back thread");
    r
}

struct PagePtr(*mut u8);
// SAFETY: the page is owned by `bench_xen`/`bench_c`, which join both threads before
// dropping it; the threads access it only as a ring.
unsafe impl Send for PagePtr {}

fn bench_xen<K: Kind>(secs: f64, batch: u32) -> (u64, Duration) {
    let page = SharedPage::new(PAGE_SIZE).expect("shared page");
    // SAFETY: the page stays mapped until the end of this function, after both threads
    // are joined; it is used only as this ring.
    unsafe { FrontRing::<K::Req, K::Rsp>::init(page.as_ptr(), PAGE_SIZE) }.unwrap();
    let (fp, bp) = (PagePtr(page.as_ptr()), PagePtr(page.as_ptr()));
    let r = run_pair(
        secs,
        move |stop, done| {
            let fp = fp;
            // SAFETY: as above (initialised page; the only front end).
            let mut f = unsafe { FrontRing::<K::Req, K::Rsp>::attach(fp.0, PAGE_SIZE, 0) }.unwrap();
            let (mut sent, mut recv) = (0u64, 0u64);
            loop {
                let stopping = stop.load(Ordering::Relaxed) != 0;
                if !stopping && f.free_requests() >= batch {
                    for _ in 0..batch {
                        f.write_request(K::request(sent)).unwrap();
                        sent += 1;
                    }
                    f.push_requests();
                }
                // One read of rsp_prod per pass; the reads below use the cached value.
                let n = f.unconsumed_responses().unwrap();
                for _ in 0..n {
                    let rsp = f.read_response().unwrap().unwrap();
                    assert_eq!(K::rsp_id(&rsp), recv);
                    recv += 1;
                }
                if stopping && recv == sent {
                    break;
                }
            }
            done.store(1, Ordering::Release);
            recv
        },
        move |done| {
            let bp = bp;
            // SAFETY: as above (the only back end).
            let mut b = unsafe { BackRing::<K::Req, K::Rsp>::init(bp.0, PAGE_SIZE) }.unwrap();
            while done.load(Ordering::Relaxed) == 0 {
                let n = b.unconsumed_requests().unwrap().min(batch);
                for _ in 0..n {
                    let req = b.read_request().unwrap().unwrap();
                    b.write_response(K::answer(&req)).unwrap();
                }
                b.push_responses();
            }
        },
    );
    drop(page);
    r
}

fn bench_ringbuf<K: Kind>(secs: f64, batch: u32) -> (u64, Duration) {
    let cap = ring_size_for::<K::Req, K::Rsp>(PAGE_SIZE) as usize;
    let (mut req_p, mut req_c) = HeapRb::<K::Req>::new(cap).split();
    let (mut rsp_p, mut rsp_c) = HeapRb::<K::Rsp>::new(cap).split();
    let batch = batch as usize;
    run_pair(
        secs,
        move |stop, done| {
            let (mut sent, mut recv) = (0u64, 0u64);
            let mut buf = vec![K::Rsp::default(); cap];
            loop {
                let stopping = stop.load(Ordering::Relaxed) != 0;
                // Same flow control as the Xen ring: at most `cap` requests outstanding.
                if !stopping && cap - (sent - recv) as usize >= batch {
                    let base = sent;
                    let n = req_p.push_iter((0..batch as u64).map(|i| K::request(base + i)));
                    assert_eq!(n, batch);
                    sent += batch as u64;
                }
                let n = rsp_c.pop_slice(&mut buf);
                for rsp in &buf[..n] {
                    assert_eq!(K::rsp_id(rsp), recv);
                    recv += 1;
                }
                if stopping && recv == sent {
                    break;
                }
            }
            done.store(1, Ordering::Release);
            recv
        },
        move |done| {
            let mut reqs = vec![K::Req::default(); batch];
            let mut rsps = vec![K::Rsp::default(); batch];
            while done.load(Ordering::Relaxed) == 0 {
                let n = req_c.pop_slice(&mut reqs);
                for (req, rsp) in reqs[..n].iter().zip(rsps.iter_mut()) {
                    *rsp = K::answer(req);
                }
                if n > 0 {
                    let pushed = rsp_p.push_slice(&rsps[..n]);
                    assert_eq!(pushed, n);
                }
            }
        },
    )
}

fn bench_c<K: Kind>(secs: f64, batch: u32) -> (u64, Duration) {
    let page = SharedPage::new(PAGE_SIZE).expect("shared page");
    // SAFETY: fresh, valid page not used by any ring yet.
    unsafe { cbench::init(K::C, page.as_ptr()) };
    let (fp, bp) = (PagePtr(page.as_ptr()), PagePtr(page.as_ptr()));
    let r = run_pair(
        secs,
        move |stop, done| {
            let fp = fp;
            // SAFETY: the page is initialised, outlives both threads (joined before it is
            // dropped) and has exactly one front and one back end.
            unsafe { cbench::front(K::C, fp.0, batch, stop, done) }
        },
        move |done| {
            let bp = bp;
            // SAFETY: as above.
            unsafe { cbench::back(K::C, bp.0, batch, done) }
        },
    );
    drop(page);
    r
}

fn main() {
    let mut secs = 1.5f64;
    let mut markdown = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--seconds" => {
                secs = args
                    .next()
                    .and_then(|s| s.parse().ok())
                    .expect("--seconds N")
            }
            "--markdown" => markdown = true,
            "-h" | "--help" => {
                println!("usage: ring-bench [--seconds N] [--markdown]");
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    if !markdown {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        println!(
            "ring-bench: {secs} s per cell (median of {REPS} interleaved runs), front on CPU {FRONT_CPU}, back on CPU {BACK_CPU} ({cpus} CPUs), busy-polling, ring of {} slots",
            ring_size_for::<BlkifRequest, BlkifResponse>(PAGE_SIZE)
        );
        if cfg!(debug_assertions) {
            println!("warning: debug build; use --release");
        }
        println!();
    }
    println!("| impl | entry | batch | msgs/s | MB/s |");
    println!("|---|---|---|---:|---:|");
    type Bench = fn(f64, u32) -> (u64, Duration);
    let cells: [(&str, &str, usize, Bench); 6] = [
        ("xen-ring", Bytes64::NAME, 64, bench_xen::<Bytes64>),
        ("ringbuf", Bytes64::NAME, 64, bench_ringbuf::<Bytes64>),
        ("C ring.h", Bytes64::NAME, 64, bench_c::<Bytes64>),
        ("xen-ring", Blkif::NAME, 112, bench_xen::<Blkif>),
        ("ringbuf", Blkif::NAME, 112, bench_ringbuf::<Blkif>),
        ("C ring.h", Blkif::NAME, 112, bench_c::<Blkif>),
    ];
    // Each cell runs `REPS` times, interleaved with the other cells (so a burst of load
    // from elsewhere on the machine hits every implementation alike); the median rate is
    // reported.
    let rep_secs = secs / REPS as f64;
    let mut rates = vec![Vec::with_capacity(REPS); 2 * cells.len()];
    for _ in 0..REPS {
        for (b, batch) in BATCHES.iter().enumerate() {
            for (c, (_, _, _, f)) in cells.iter().enumerate() {
                let (msgs, elapsed) = f(rep_secs, *batch);
                rates[b * cells.len() + c].push(msgs as f64 / elapsed.as_secs_f64());
            }
        }
    }
    for (b, batch) in BATCHES.iter().enumerate() {
        for (c, (name, entry, req_bytes, _)) in cells.iter().enumerate() {
            let r = &mut rates[b * cells.len() + c];
            r.sort_by(f64::total_cmp);
            let rate = r[REPS / 2];
            println!(
                "| {name} | {entry} | {batch} | {:.2} M | {:.0} |",
                rate / 1e6,
                rate * *req_bytes as f64 / 1e6
            );
        }
    }
}
