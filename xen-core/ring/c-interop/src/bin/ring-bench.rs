//! ring-bench: request/response throughput and round-trip latency of three shared-ring
//! implementations on the same workload, front and back threads pinned to two different
//! CPUs, beside two measurements of what the machine itself can move between those CPUs:
//!
//! 1. `xen-ring` (this project),
//! 2. `ringbuf` (two SPSC queues, requests and responses, each as deep as the Xen ring),
//! 3. the C `io/ring.h` macros (csrc/bench.c, called over FFI from the two threads),
//! 4. machine limits: one cache line bounced between the two CPUs (ping-pong round
//!    trips), and 64-byte lines streamed one way through a 512-line buffer (each side's
//!    position published every 32 lines on a line of its own).
//!
//! Workload: the front end waits for `batch` free slots, writes `batch` requests and
//! publishes them once, then consumes every available response (checking its id); the
//! back end consumes up to `batch` requests, answers each with a response (blkif: a fold
//! of every request word, so the whole request is read; 64-byte entries: an echo) and
//! publishes them once. Busy-polling throughout (no notifications). A message is one
//! completed request + response; MB/s counts request payload bytes. Batches 1, 4, 8, 16
//! and 32 run on a one-page ring (32 slots for both entry kinds); the last batch is the
//! whole of a 16-page ring (ring-page-order 4, Linux's XENBUS_MAX_RING_GRANT_ORDER: 512
//! slots), the largest batch a multi-page ring allows.
//!
//! Round-trip latency: the front reads the TSC once before writing each batch and once
//! per pass that finds responses; a message's round trip is the difference (so it
//! includes waiting behind the rest of its batch). Percentiles come from a log-linear
//! histogram (≤ 3% bucket width) over all rounds.
//!
//! Every cell runs `--rounds` times for `--seconds` each, the cells in alternating order
//! (forward, then backward), so a burst of load from elsewhere hits every implementation
//! alike; the table gives the median rate and the range over the rounds.
//!
//! Usage: ring-bench [--seconds S] [--rounds N] [--only NAME[,NAME]] [--batches B[,B]]
//!                   [--markdown]   (build with --release)

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use ringbuf::traits::{Consumer, Producer, Split};
use ringbuf::HeapRb;
use xen_abi::blkif::{BlkifRequest, BlkifRequestSegment, BlkifResponse, BLKIF_OP_READ};
use xen_ring::{ring_size_for, BackRing, FrontRing};
use xen_ring_c_interop::cbench::{self, Entry, HIST_BUCKETS};
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
    const C: Entry;
    fn request(id: u64) -> Self::Req;
    fn answer(req: &Self::Req) -> Self::Rsp;
    fn rsp_id(rsp: &Self::Rsp) -> u64;
}

struct Blkif;
impl Kind for Blkif {
    type Req = BlkifRequest;
    type Rsp = BlkifResponse;
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
const BACK_CPU: usize = 1;
/// Batches on the one-page ring; the multi-page ring runs one batch of all its slots.
const PAGE_BATCHES: [u32; 5] = [1, 4, 8, 16, 32];
/// Pages of the multi-page ring (ring-page-order 4).
const MULTI_PAGES: usize = 16;

// ---------------------------------------------------------------------------------------
// Time and latency histograms

#[inline(always)]
fn tsc() -> u64 {
    // SAFETY: RDTSC has no memory effects; every x86_64 CPU has it.
    unsafe { core::arch::x86_64::_rdtsc() }
}

type Hist = Box<[u64; HIST_BUCKETS]>;

fn new_hist() -> Hist {
    Box::new([0; HIST_BUCKETS])
}

/// The histogram bucket of `v` ticks: exact below 64, then 32 buckets per power of two
/// (the same function as `lat_bucket` in csrc/bench.c).
#[inline(always)]
fn bucket(v: u64) -> usize {
    if v < 64 {
        return v as usize;
    }
    let e = 63 - v.leading_zeros() as usize;
    64 + (e - 6) * 32 + ((v >> (e - 5)) & 31) as usize
}

/// The middle of bucket `i`, in ticks.
fn bucket_mid(i: usize) -> f64 {
    if i < 64 {
        return i as f64;
    }
    let (e, m) = ((i - 64) / 32 + 6, (i - 64) % 32);
    let width = (1u64 << (e - 5)) as f64;
    (32 + m) as f64 * width + width / 2.0
}

/// The `p`-quantile (0..1) of `h`, in ticks.
fn quantile(h: &[u64], p: f64) -> f64 {
    let total: u64 = h.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = ((total as f64) * p).ceil().max(1.0) as u64;
    let mut acc = 0;
    for (i, &c) in h.iter().enumerate() {
        acc += c;
        if acc >= rank {
            return bucket_mid(i);
        }
    }
    bucket_mid(h.len() - 1)
}

/// TSC ticks per nanosecond, measured against the monotonic clock.
fn tsc_per_ns() -> f64 {
    let (t0, c0) = (Instant::now(), tsc());
    std::thread::sleep(Duration::from_millis(100));
    let (c1, dt) = (tsc(), t0.elapsed());
    (c1 - c0) as f64 / dt.as_nanos() as f64
}

// ---------------------------------------------------------------------------------------
// Running a pair of pinned threads

/// One measurement: messages (or round trips, or lines), the front's elapsed time, and
/// the front's latency histogram.
struct Sample {
    msgs: u64,
    elapsed: Duration,
    hist: Hist,
}

/// Runs `front` and `back` on two pinned threads for `secs`.
fn run_pair<F, B>(secs: f64, front: F, back: B) -> Sample
where
    F: FnOnce(&AtomicU32, &AtomicU32, &mut [u64; HIST_BUCKETS]) -> u64 + Send + 'static,
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
            let mut hist = new_hist();
            barrier.wait();
            let t = Instant::now();
            let n = front(&stop, &done, &mut hist);
            (n, t.elapsed(), hist)
        })
    };
    barrier.wait();
    std::thread::sleep(Duration::from_secs_f64(secs));
    stop.store(1, Ordering::Release);
    let (msgs, elapsed, hist) = front_thread.join().expect("front thread");
    back_thread.join().expect("back thread");
    Sample {
        msgs,
        elapsed,
        hist,
    }
}

struct PagePtr(*mut u8);
// SAFETY: the page is owned by `bench_xen`/`bench_c`, which join both threads before
// dropping it; the threads access it only as a ring.
unsafe impl Send for PagePtr {}

// ---------------------------------------------------------------------------------------
// The three rings

fn bench_xen<K: Kind>(secs: f64, batch: u32, bytes: usize) -> Sample {
    let page = SharedPage::new(bytes).expect("shared page");
    // SAFETY: the page stays mapped until the end of this function, after both threads
    // are joined; it is used only as this ring.
    unsafe { FrontRing::<K::Req, K::Rsp>::init(page.as_ptr(), bytes) }.unwrap();
    let (fp, bp) = (PagePtr(page.as_ptr()), PagePtr(page.as_ptr()));
    let r = run_pair(
        secs,
        move |stop, done, hist| {
            let fp = fp;
            // SAFETY: as above (initialised page; the only front end).
            let mut f = unsafe { FrontRing::<K::Req, K::Rsp>::attach(fp.0, bytes, 0) }.unwrap();
            let mask = f.size() - 1;
            let mut stamp = vec![0u64; f.size() as usize];
            let (mut sent, mut recv) = (0u64, 0u64);
            loop {
                let stopping = stop.load(Ordering::Relaxed) != 0;
                if !stopping && f.free_requests() >= batch {
                    let t = tsc();
                    for _ in 0..batch {
                        let idx = f.write_request(K::request(sent)).unwrap();
                        stamp[(idx & mask) as usize] = t;
                        sent += 1;
                    }
                    f.push_requests();
                }
                // One read of rsp_prod per pass; the reads below use the cached value.
                let n = f.unconsumed_responses().unwrap();
                if n > 0 {
                    let now = tsc();
                    for _ in 0..n {
                        let idx = f.rsp_cons();
                        let rsp = f.read_response().unwrap().unwrap();
                        assert_eq!(K::rsp_id(&rsp), recv);
                        hist[bucket(now - stamp[(idx & mask) as usize])] += 1;
                        recv += 1;
                    }
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
            let mut b = unsafe { BackRing::<K::Req, K::Rsp>::init(bp.0, bytes) }.unwrap();
            while done.load(Ordering::Relaxed) == 0 {
                // Like blkback (and the C loop): `read_request` re-reads req_prod only once
                // the requests seen last time are used up.
                for _ in 0..batch {
                    let Some(req) = b.read_request().unwrap() else {
                        break;
                    };
                    b.write_response(K::answer(&req)).unwrap();
                }
                b.push_responses();
            }
        },
    );
    drop(page);
    r
}

fn bench_ringbuf<K: Kind>(secs: f64, batch: u32, bytes: usize) -> Sample {
    let cap = ring_size_for::<K::Req, K::Rsp>(bytes) as usize;
    let (mut req_p, mut req_c) = HeapRb::<K::Req>::new(cap).split();
    let (mut rsp_p, mut rsp_c) = HeapRb::<K::Rsp>::new(cap).split();
    let batch = batch as usize;
    run_pair(
        secs,
        move |stop, done, hist| {
            let (mut sent, mut recv) = (0u64, 0u64);
            let mask = cap as u64 - 1;
            let mut stamp = vec![0u64; cap];
            let mut buf = vec![K::Rsp::default(); cap];
            loop {
                let stopping = stop.load(Ordering::Relaxed) != 0;
                // Same flow control as the Xen ring: at most `cap` requests outstanding.
                if !stopping && cap - (sent - recv) as usize >= batch {
                    let base = sent;
                    let t = tsc();
                    for i in 0..batch as u64 {
                        stamp[((base + i) & mask) as usize] = t;
                    }
                    let n = req_p.push_iter((0..batch as u64).map(|i| K::request(base + i)));
                    assert_eq!(n, batch);
                    sent += batch as u64;
                }
                let n = rsp_c.pop_slice(&mut buf);
                if n > 0 {
                    let now = tsc();
                    for rsp in &buf[..n] {
                        assert_eq!(K::rsp_id(rsp), recv);
                        hist[bucket(now - stamp[(recv & mask) as usize])] += 1;
                        recv += 1;
                    }
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

fn bench_c<K: Kind>(secs: f64, batch: u32, bytes: usize) -> Sample {
    let page = SharedPage::new(bytes).expect("shared page");
    // SAFETY: fresh, valid page not used by any ring yet.
    unsafe { cbench::init(K::C, page.as_ptr()) };
    let (fp, bp) = (PagePtr(page.as_ptr()), PagePtr(page.as_ptr()));
    let r = run_pair(
        secs,
        move |stop, done, hist| {
            let fp = fp;
            // SAFETY: the page is initialised, outlives both threads (joined before it is
            // dropped) and has exactly one front and one back end.
            unsafe { cbench::front(K::C, fp.0, bytes, batch, stop, done, hist) }
        },
        move |done| {
            let bp = bp;
            // SAFETY: as above.
            unsafe { cbench::back(K::C, bp.0, bytes, batch, done) }
        },
    );
    drop(page);
    r
}

// ---------------------------------------------------------------------------------------
// Single-threaded runs for instruction counts (`--instr`, under callgrind)

/// `rounds` times: the front writes and publishes `batch` requests, the back answers all,
/// the front consumes the responses. The same calls as the threaded loops, one thread.
#[inline(never)]
fn steps_xen<K: Kind>(batch: u32, bytes: usize, rounds: u64) -> u64 {
    let page = SharedPage::new(bytes).expect("shared page");
    // SAFETY: the page outlives both rings (dropped at the end of this function) and is
    // used only as this ring, by this one front and one back end.
    let mut f = unsafe { FrontRing::<K::Req, K::Rsp>::init(page.as_ptr(), bytes) }.unwrap();
    // SAFETY: as above.
    let mut b = unsafe { BackRing::<K::Req, K::Rsp>::init(page.as_ptr(), bytes) }.unwrap();
    let (mut sent, mut recv) = (0u64, 0u64);
    for _ in 0..rounds {
        for _ in 0..batch {
            f.write_request(K::request(sent)).unwrap();
            sent += 1;
        }
        f.push_requests();
        let n = b.unconsumed_requests().unwrap();
        for _ in 0..n {
            let req = b.read_request().unwrap().unwrap();
            b.write_response(K::answer(&req)).unwrap();
        }
        b.push_responses();
        let n = f.unconsumed_responses().unwrap();
        for _ in 0..n {
            let rsp = f.read_response().unwrap().unwrap();
            assert_eq!(K::rsp_id(&rsp), recv);
            recv += 1;
        }
    }
    recv
}

#[inline(never)]
fn steps_ringbuf<K: Kind>(batch: u32, bytes: usize, rounds: u64) -> u64 {
    let cap = ring_size_for::<K::Req, K::Rsp>(bytes) as usize;
    let (mut req_p, mut req_c) = HeapRb::<K::Req>::new(cap).split();
    let (mut rsp_p, mut rsp_c) = HeapRb::<K::Rsp>::new(cap).split();
    let batch = batch as usize;
    let mut reqs = vec![K::Req::default(); batch];
    let mut rsps = vec![K::Rsp::default(); batch];
    let mut buf = vec![K::Rsp::default(); cap];
    let (mut sent, mut recv) = (0u64, 0u64);
    for _ in 0..rounds {
        let base = sent;
        let n = req_p.push_iter((0..batch as u64).map(|i| K::request(base + i)));
        assert_eq!(n, batch);
        sent += batch as u64;
        let n = req_c.pop_slice(&mut reqs);
        for (req, rsp) in reqs[..n].iter().zip(rsps.iter_mut()) {
            *rsp = K::answer(req);
        }
        assert_eq!(rsp_p.push_slice(&rsps[..n]), n);
        let n = rsp_c.pop_slice(&mut buf);
        for rsp in &buf[..n] {
            assert_eq!(K::rsp_id(rsp), recv);
            recv += 1;
        }
    }
    recv
}

#[inline(never)]
fn steps_c<K: Kind>(batch: u32, bytes: usize, rounds: u64) -> u64 {
    let page = SharedPage::new(bytes).expect("shared page");
    // SAFETY: a fresh page of `bytes` bytes used by nothing else; batch <= slots (checked
    // by the caller).
    unsafe { cbench::steps(K::C, page.as_ptr(), bytes, batch, rounds) }
}

/// `--instr IMPL KIND PAGES BATCH ROUNDS`: one single-threaded run, for callgrind.
fn instr(args: &[String]) {
    let [imp, kind, pages, batch, rounds] = args else {
        panic!("--instr xen|ringbuf|c e64|blkif PAGES BATCH ROUNDS");
    };
    let bytes = pages.parse::<usize>().expect("PAGES") * PAGE_SIZE;
    let batch: u32 = batch.parse().expect("BATCH");
    let rounds: u64 = rounds.parse().expect("ROUNDS");
    assert!(batch <= Kinds::E64.slots(bytes) && batch <= Kinds::Blkif.slots(bytes));
    let n = match (imp.as_str(), kind.as_str()) {
        ("xen", "e64") => steps_xen::<Bytes64>(batch, bytes, rounds),
        ("xen", "blkif") => steps_xen::<Blkif>(batch, bytes, rounds),
        ("ringbuf", "e64") => steps_ringbuf::<Bytes64>(batch, bytes, rounds),
        ("ringbuf", "blkif") => steps_ringbuf::<Blkif>(batch, bytes, rounds),
        ("c", "e64") => steps_c::<Bytes64>(batch, bytes, rounds),
        ("c", "blkif") => steps_c::<Blkif>(batch, bytes, rounds),
        _ => panic!("--instr xen|ringbuf|c e64|blkif PAGES BATCH ROUNDS"),
    };
    assert_eq!(n, rounds * batch as u64);
    println!("{n} messages");
}

// ---------------------------------------------------------------------------------------
// The machine's own limits

#[repr(C, align(64))]
struct Line([AtomicU64; 8]);

impl Line {
    fn new() -> Self {
        Line(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

/// One cache line bounced between the two CPUs: the front writes an odd value and waits
/// for the back's even answer in the same word. One sample = one round trip (the line
/// crosses twice).
fn bench_pingpong(secs: f64) -> Sample {
    let line = Arc::new(Line::new());
    let back_line = line.clone();
    run_pair(
        secs,
        move |stop, done, hist| {
            let w = &line.0[0];
            let mut v = 0u64;
            loop {
                if v & 0xff == 0 && stop.load(Ordering::Relaxed) != 0 {
                    break;
                }
                let t = tsc();
                w.store(v + 1, Ordering::Release);
                while w.load(Ordering::Acquire) != v + 2 {}
                hist[bucket(tsc() - t)] += 1;
                v += 2;
            }
            done.store(1, Ordering::Release);
            v / 2
        },
        move |done| {
            let w = &back_line.0[0];
            let mut v = 1u64;
            loop {
                while w.load(Ordering::Acquire) != v {
                    if done.load(Ordering::Relaxed) != 0 {
                        return;
                    }
                }
                w.store(v + 1, Ordering::Release);
                v += 2;
            }
        },
    )
}

/// Lines in the streaming buffer (32 KiB).
const STREAM_LINES: u64 = 512;
/// Each side publishes its position every this many lines.
const STREAM_BATCH: u64 = 32;

/// 64-byte lines streamed one way, as fast as the two cores can move them: the front
/// fills 32 lines (eight words each) and then publishes its position on its own line; the
/// back reads the lines up to that position (every word) and publishes its own position
/// on another line every 32 lines. Nobody polls a line that is being written, so each
/// line crosses once per lap (plus the invalidation when the front rewrites it). One
/// sample = one line delivered. No latency histogram.
fn bench_stream(secs: f64) -> Sample {
    let buf: Arc<Vec<Line>> = Arc::new((0..STREAM_LINES).map(|_| Line::new()).collect());
    let prod = Arc::new(Line::new());
    let cons = Arc::new(Line::new());
    let (back_buf, back_prod, back_cons) = (buf.clone(), prod.clone(), cons.clone());
    run_pair(
        secs,
        move |stop, done, _hist| {
            let (mut i, mut seen) = (0u64, 0u64);
            while stop.load(Ordering::Relaxed) == 0 {
                if i + STREAM_BATCH - seen > STREAM_LINES {
                    seen = cons.0[0].load(Ordering::Acquire);
                    continue;
                }
                for _ in 0..STREAM_BATCH {
                    let l = &buf[(i % STREAM_LINES) as usize].0;
                    for (k, w) in l.iter().enumerate() {
                        w.store(i + k as u64, Ordering::Relaxed);
                    }
                    i += 1;
                }
                prod.0[0].store(i, Ordering::Release);
            }
            done.store(1, Ordering::Release);
            i
        },
        move |done| {
            let (mut i, mut acc) = (0u64, 0u64);
            loop {
                let avail = back_prod.0[0].load(Ordering::Acquire);
                if avail == i {
                    if done.load(Ordering::Relaxed) != 0 {
                        std::hint::black_box(acc);
                        return;
                    }
                    continue;
                }
                while i != avail {
                    for w in &back_buf[(i % STREAM_LINES) as usize].0 {
                        acc = acc.wrapping_add(w.load(Ordering::Relaxed));
                    }
                    i += 1;
                    if i.is_multiple_of(STREAM_BATCH) {
                        back_cons.0[0].store(i, Ordering::Release);
                    }
                }
            }
        },
    )
}

// ---------------------------------------------------------------------------------------
// The table

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Imp {
    Xen,
    Ringbuf,
    C,
}

impl Imp {
    fn name(self) -> &'static str {
        match self {
            Imp::Xen => "xen-ring",
            Imp::Ringbuf => "ringbuf",
            Imp::C => "C ring.h",
        }
    }
    fn key(self) -> &'static str {
        match self {
            Imp::Xen => "xen",
            Imp::Ringbuf => "ringbuf",
            Imp::C => "c",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kinds {
    E64,
    Blkif,
}

impl Kinds {
    fn name(self) -> &'static str {
        match self {
            Kinds::E64 => "64 B",
            Kinds::Blkif => "blkif 112/16 B",
        }
    }
    fn req_bytes(self) -> usize {
        match self {
            Kinds::E64 => 64,
            Kinds::Blkif => 112,
        }
    }
    fn slots(self, bytes: usize) -> u32 {
        match self {
            Kinds::E64 => ring_size_for::<E64, E64>(bytes),
            Kinds::Blkif => ring_size_for::<BlkifRequest, BlkifResponse>(bytes),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Job {
    Ring {
        imp: Imp,
        kind: Kinds,
        pages: usize,
        batch: u32,
    },
    PingPong,
    Stream,
}

fn run_job(job: Job, secs: f64) -> Sample {
    match job {
        Job::Ring {
            imp,
            kind,
            pages,
            batch,
        } => {
            let bytes = pages * PAGE_SIZE;
            match (imp, kind) {
                (Imp::Xen, Kinds::E64) => bench_xen::<Bytes64>(secs, batch, bytes),
                (Imp::Xen, Kinds::Blkif) => bench_xen::<Blkif>(secs, batch, bytes),
                (Imp::Ringbuf, Kinds::E64) => bench_ringbuf::<Bytes64>(secs, batch, bytes),
                (Imp::Ringbuf, Kinds::Blkif) => bench_ringbuf::<Blkif>(secs, batch, bytes),
                (Imp::C, Kinds::E64) => bench_c::<Bytes64>(secs, batch, bytes),
                (Imp::C, Kinds::Blkif) => bench_c::<Blkif>(secs, batch, bytes),
            }
        }
        Job::PingPong => bench_pingpong(secs),
        Job::Stream => bench_stream(secs),
    }
}

struct Result {
    job: Job,
    rates: Vec<f64>,
    hist: Hist,
}

impl Result {
    fn median(&self) -> f64 {
        let mut r = self.rates.clone();
        r.sort_by(f64::total_cmp);
        let n = r.len();
        if n % 2 == 1 {
            r[n / 2]
        } else {
            (r[n / 2 - 1] + r[n / 2]) / 2.0
        }
    }
    fn min(&self) -> f64 {
        self.rates.iter().copied().fold(f64::INFINITY, f64::min)
    }
    fn max(&self) -> f64 {
        self.rates.iter().copied().fold(0.0, f64::max)
    }
}

/// "12.3" for a rate in millions.
fn m(rate: f64) -> String {
    format!("{:.1}", rate / 1e6)
}

/// Nanoseconds from ticks, as an integer string (or "–").
fn ns(ticks: f64, tpn: f64) -> String {
    if ticks.is_nan() {
        "–".into()
    } else {
        format!("{:.0}", ticks / tpn)
    }
}

/// The load average and whether a qemu-system process is running (the machine's other
/// big CPU user), for the record.
fn conditions() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let mut qemu = 0;
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            if let Ok(comm) = std::fs::read_to_string(e.path().join("comm")) {
                if comm.starts_with("qemu-system") {
                    qemu += 1;
                }
            }
        }
    }
    format!(
        "load average {}, {} qemu-system process{}",
        load.join(" "),
        if qemu == 0 { "no".into() } else { qemu.to_string() },
        if qemu == 1 { "" } else { "es" }
    )
}

fn main() {
    let mut secs = 0.25f64;
    let mut rounds = 5usize;
    let mut markdown = false;
    let mut only: Option<Vec<String>> = None;
    let mut batches: Option<Vec<u32>> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = |what: &str| args.next().unwrap_or_else(|| panic!("{a} needs {what}"));
        match a.as_str() {
            "--seconds" => secs = val("seconds").parse().expect("--seconds S"),
            "--rounds" => rounds = val("a count").parse().expect("--rounds N"),
            "--only" => only = Some(val("names").split(',').map(str::to_string).collect()),
            "--batches" => {
                batches = Some(
                    val("batches")
                        .split(',')
                        .map(|b| b.parse().expect("--batches B,B"))
                        .collect(),
                )
            }
            "--markdown" => markdown = true,
            "--instr" => return instr(&args.collect::<Vec<_>>()),
            "-h" | "--help" => {
                println!(
                    "usage: ring-bench [--seconds S] [--rounds N] [--only xen,ringbuf,c,limit] [--batches 1,32,512] [--markdown]"
                );
                return;
            }
            other => panic!("unknown argument {other}"),
        }
    }
    let wanted = |key: &str| only.as_ref().is_none_or(|o| o.iter().any(|k| k == key));

    // The jobs, in table order.
    let mut jobs = Vec::new();
    let multi = Kinds::E64.slots(MULTI_PAGES * PAGE_SIZE);
    assert_eq!(multi, Kinds::Blkif.slots(MULTI_PAGES * PAGE_SIZE));
    let shapes: Vec<(usize, u32)> = PAGE_BATCHES
        .iter()
        .map(|&b| (1, b))
        .chain([(MULTI_PAGES, multi)])
        .filter(|(_, b)| batches.as_ref().is_none_or(|l| l.contains(b)))
        .collect();
    for kind in [Kinds::E64, Kinds::Blkif] {
        for &(pages, batch) in &shapes {
            for imp in [Imp::Xen, Imp::Ringbuf, Imp::C] {
                if wanted(imp.key()) {
                    jobs.push(Job::Ring {
                        imp,
                        kind,
                        pages,
                        batch,
                    });
                }
            }
        }
    }
    if wanted("limit") {
        jobs.push(Job::PingPong);
        jobs.push(Job::Stream);
    }

    let tpn = tsc_per_ns();
    let before = conditions();
    if !markdown {
        let cpus = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0);
        println!(
            "ring-bench: {rounds} rounds x {secs} s per cell, front on CPU {FRONT_CPU}, back on CPU {BACK_CPU} ({cpus} CPUs), busy-polling, TSC {tpn:.3} GHz; {before}"
        );
        if cfg!(debug_assertions) {
            println!("warning: debug build; use --release");
        }
    }

    let mut results: Vec<Result> = jobs
        .iter()
        .map(|&job| Result {
            job,
            rates: Vec::new(),
            hist: new_hist(),
        })
        .collect();
    let started = Instant::now();
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..jobs.len()).collect()
        } else {
            (0..jobs.len()).rev().collect()
        };
        for i in order {
            let s = run_job(results[i].job, secs);
            let r = &mut results[i];
            r.rates.push(s.msgs as f64 / s.elapsed.as_secs_f64());
            for (a, b) in r.hist.iter_mut().zip(s.hist.iter()) {
                *a += b;
            }
        }
        if !markdown {
            eprintln!("round {}/{rounds} done", round + 1);
        }
    }
    let after = conditions();
    let wall = started.elapsed().as_secs_f64();

    let find = |imp: Imp, kind: Kinds, pages: usize, batch: u32| {
        results.iter().find(|r| {
            r.job
                == Job::Ring {
                    imp,
                    kind,
                    pages,
                    batch,
                }
        })
    };
    let stream = results.iter().find(|r| r.job == Job::Stream).map(Result::median);
    let pingpong = results
        .iter()
        .find(|r| r.job == Job::PingPong)
        .map(Result::median);

    println!(
        "Run: {rounds} rounds of {secs} s per cell in alternating order ({wall:.0} s), TSC {tpn:.2} GHz. Conditions: before, {before}; after, {after}.\n"
    );
    println!(
        "| impl | entry | ring slots | batch | Mmsgs/s median (min–max) | MB/s | RTT p50 ns | RTT p99 ns | × ringbuf | × C ring.h | of line limit |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &results {
        let Job::Ring {
            imp,
            kind,
            pages,
            batch,
        } = r.job
        else {
            continue;
        };
        let med = r.median();
        let ratio = |other: Imp| {
            if other == imp {
                return "".to_string();
            }
            find(other, kind, pages, batch)
                .map(|o| format!("{:.2}", med / o.median()))
                .unwrap_or_default()
        };
        // A message needs at least two lines to cross (request there, response back).
        let of_limit = stream
            .map(|s| format!("{:.0}%", 100.0 * 2.0 * med / s))
            .unwrap_or_default();
        println!(
            "| {} | {} | {} | {batch} | {} ({}–{}) | {:.0} | {} | {} | {} | {} | {of_limit} |",
            imp.name(),
            kind.name(),
            kind.slots(pages * PAGE_SIZE),
            m(med),
            m(r.min()),
            m(r.max()),
            med * kind.req_bytes() as f64 / 1e6,
            ns(quantile(&r.hist[..], 0.5), tpn),
            ns(quantile(&r.hist[..], 0.99), tpn),
            ratio(Imp::Ringbuf),
            ratio(Imp::C),
        );
    }
    if wanted("limit") {
        println!();
        println!("| machine limit (same run, same two CPUs) | M/s median (min–max) | round trip p50 ns | p99 ns |");
        println!("|---|---:|---:|---:|");
        for r in &results {
            let what = match r.job {
                Job::PingPong => "one cache line bounced between the CPUs: round trips",
                Job::Stream => {
                    "64-byte lines streamed one way (512-line buffer, positions published every 32 lines on their own lines): lines"
                }
                Job::Ring { .. } => continue,
            };
            println!(
                "| {what} | {} ({}–{}) | {} | {} |",
                m(r.median()),
                m(r.min()),
                m(r.max()),
                ns(quantile(&r.hist[..], 0.5), tpn),
                ns(quantile(&r.hist[..], 0.99), tpn),
            );
        }
    }
    if wanted("xen") && wanted("ringbuf") && wanted("c") {
        target_table(&results, &shapes, pingpong, stream);
    }
}

/// The target per cell (xen-ring at least 1.5x ringbuf and 1.0x C ring.h), and
/// for each cell how xen-ring's rate relates to the machine-limit rows: messages per
/// round trip of one line between the cores (the ping-pong row: what bounds a small
/// batch, whose every publication moves the shared index line), and the share of the
/// streaming row's lines/s taken by two slot lines per message (what bounds a large one).
fn target_table(
    results: &[Result],
    shapes: &[(usize, u32)],
    pingpong: Option<f64>,
    stream: Option<f64>,
) {
    let median = |imp: Imp, kind: Kinds, pages: usize, batch: u32| {
        results
            .iter()
            .find(|r| {
                r.job
                    == Job::Ring {
                        imp,
                        kind,
                        pages,
                        batch,
                    }
            })
            .map(Result::median)
    };
    println!();
    println!(
        "| entry | batch | xen-ring × ringbuf | xen-ring × C ring.h | target (≥ 1.5×, ≥ 1.0×) | xen-ring ns/msg | at 1.5× ringbuf ns/msg | xen-ring msgs per line round trip | 1.5× ringbuf needs | of line limit |"
    );
    println!("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|");
    for kind in [Kinds::E64, Kinds::Blkif] {
        for &(pages, batch) in shapes {
            let (Some(x), Some(rb), Some(c)) = (
                median(Imp::Xen, kind, pages, batch),
                median(Imp::Ringbuf, kind, pages, batch),
                median(Imp::C, kind, pages, batch),
            ) else {
                continue;
            };
            let met = match (x / rb >= 1.5, x / c >= 1.0) {
                (true, true) => "met",
                (false, true) => "**not met** (ringbuf)",
                (true, false) => "**not met** (C)",
                (false, false) => "**not met** (both)",
            };
            let per_rt = |rate: f64| {
                pingpong
                    .map(|p| format!("{:.2}", rate / p))
                    .unwrap_or_else(|| "–".into())
            };
            let of_limit = stream
                .map(|s| format!("{:.0}%", 100.0 * 2.0 * x / s))
                .unwrap_or_else(|| "–".into());
            println!(
                "| {} | {batch} | {:.2} | {:.2} | {met} | {:.0} | {:.0} | {} | {} | {of_limit} |",
                kind.name(),
                x / rb,
                x / c,
                1e9 / x,
                1e9 / (1.5 * rb),
                per_rt(x),
                per_rt(1.5 * rb),
            );
        }
    }
}
