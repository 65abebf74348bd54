//! Property tests with hostile peers: garbage requests and ring indices get error
//! responses or a disconnect, and the same back-end keeps serving an honest front-end on
//! another ring; garbage responses give the front-end errors, never a panic.

mod common;

use blkback_core::{Backend, BackendConfig, RamDisk, RingState};
use common::*;
use frontend_drivers::blkfront::{BlkError, BlkFront, BlkFrontConfig, RspStatus};
use proptest::prelude::*;
use xen_abi::blkif::*;
use zerocopy::{FromBytes, FromZeros, IntoBytes};

const DISK_SECTORS: u64 = 512;

/// Which grant a segment names.
#[derive(Clone, Copy, Debug)]
enum G {
    /// Granted read-write.
    Rw,
    /// Granted read-only.
    Ro,
    /// Never granted.
    Bogus(u32),
}

#[derive(Clone, Debug)]
enum Req {
    Rw {
        op: u8,
        nseg: u8,
        sector: u64,
        segs: Vec<(G, u8, u8)>,
        id: u64,
    },
    Indirect {
        op: u8,
        nseg: u16,
        sector: u64,
        ind: G,
        segs: Vec<(G, u8, u8)>,
        id: u64,
    },
    Discard {
        sector: u64,
        n: u64,
        flag: u8,
        id: u64,
    },
    Raw(Vec<u8>),
}

fn g() -> impl Strategy<Value = G> {
    prop_oneof![4 => Just(G::Rw), 2 => Just(G::Ro), 1 => (1000u32..).prop_map(G::Bogus)]
}

fn sector() -> impl Strategy<Value = u64> {
    prop_oneof![4 => 0..DISK_SECTORS, 1 => DISK_SECTORS - 300..DISK_SECTORS + 10, 1 => any::<u64>()]
}

fn seg() -> impl Strategy<Value = (G, u8, u8)> {
    (
        g(),
        prop_oneof![4 => 0u8..8, 1 => 0u8..=255],
        prop_oneof![4 => 0u8..8, 1 => 0u8..=255],
    )
}

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![
        4 => (prop_oneof![4 => 0u8..4, 1 => any::<u8>()], prop_oneof![4 => 0u8..=11, 1 => any::<u8>()], sector(),
              prop::collection::vec(seg(), 11), any::<u64>())
            .prop_map(|(op, nseg, sector, segs, id)| Req::Rw { op, nseg, sector, segs, id }),
        2 => (prop_oneof![4 => 0u8..2, 1 => any::<u8>()], prop_oneof![4 => 0u16..=64, 1 => any::<u16>()], sector(), g(),
              prop::collection::vec(seg(), 64), any::<u64>())
            .prop_map(|(op, nseg, sector, ind, segs, id)| Req::Indirect { op, nseg, sector, ind, segs, id }),
        1 => (sector(), prop_oneof![0u64..64, any::<u64>()], any::<u8>(), any::<u64>())
            .prop_map(|(sector, n, flag, id)| Req::Discard { sector, n, flag, id }),
        1 => prop::collection::vec(any::<u8>(), 112).prop_map(Req::Raw),
    ]
}

#[derive(Debug, PartialEq, Eq)]
enum Expect {
    Okay,
    Fail,
    Exactly(i16),
    Any,
}

struct Env {
    table: SharedTable,
    rw: u32,
    ro: u32,
    /// Indirect pages: 0 is granted read-only, written per request.
    ind: u32,
}

impl Env {
    fn gref(&self, g: G) -> u32 {
        match g {
            G::Rw => self.rw,
            G::Ro => self.ro,
            G::Bogus(r) => r,
        }
    }

    fn segs_ok(&self, segs: &[(G, u8, u8)], read: bool) -> Option<u64> {
        let mut n = 0;
        for &(g, f, l) in segs {
            if l >= 8 || l < f || matches!(g, G::Bogus(_)) || (read && matches!(g, G::Ro)) {
                return None;
            }
            n += u64::from(l - f) + 1;
        }
        Some(n)
    }

    fn in_range(sector: u64, n: u64) -> bool {
        n == 0 || sector.checked_add(n).is_some_and(|e| e <= DISK_SECTORS)
    }

    /// Builds the wire request (writing indirect segment lists into the indirect page)
    /// and what the answer must be.
    fn build(&self, r: &Req) -> (BlkifRequest, u8, Expect) {
        let mut w = BlkifRequest::new_zeroed();
        match r {
            Req::Rw {
                op,
                nseg,
                sector,
                segs,
                id,
            } => {
                w.operation = *op;
                w.nr_segments = *nseg;
                w.sector_number = *sector;
                w.id = *id;
                for (s, &(g, f, l)) in w.seg.iter_mut().zip(segs) {
                    *s = BlkifRequestSegment {
                        gref: self.gref(g),
                        first_sect: f,
                        last_sect: l,
                        _pad: [0; 2],
                    };
                }
                let n = usize::from(*nseg);
                let expect = match *op {
                    BLKIF_OP_READ
                    | BLKIF_OP_WRITE
                    | BLKIF_OP_FLUSH_DISKCACHE
                    | BLKIF_OP_WRITE_BARRIER => {
                        let flush = *op >= BLKIF_OP_WRITE_BARRIER;
                        if (n == 0 && !flush) || n > 11 {
                            Expect::Fail
                        } else {
                            match self.segs_ok(&segs[..n], *op == BLKIF_OP_READ) {
                                Some(secs) if Self::in_range(*sector, secs) => Expect::Okay,
                                _ => Expect::Fail,
                            }
                        }
                    }
                    BLKIF_OP_INDIRECT => Expect::Any, // the rest of the slot is someone else's layout
                    BLKIF_OP_DISCARD => Expect::Any,
                    _ => Expect::Exactly(BLKIF_RSP_EOPNOTSUPP),
                };
                (w, *op, expect)
            }
            Req::Indirect {
                op,
                nseg,
                sector,
                ind,
                segs,
                id,
            } => {
                let mut list = Vec::new();
                for &(g, f, l) in segs {
                    list.extend_from_slice(
                        BlkifRequestSegment {
                            gref: self.gref(g),
                            first_sect: f,
                            last_sect: l,
                            _pad: [0; 2],
                        }
                        .as_bytes(),
                    );
                }
                let t = &mut *self.table.lock().unwrap();
                t.page_mut(2).fill(0);
                t.page_mut(2)[..list.len()].copy_from_slice(&list);
                let mut i = BlkifRequestIndirect {
                    operation: BLKIF_OP_INDIRECT,
                    indirect_op: *op,
                    nr_segments: *nseg,
                    id: *id,
                    sector_number: *sector,
                    ..Default::default()
                };
                i.indirect_grefs[0] = match ind {
                    G::Bogus(r) => *r,
                    _ => self.ind,
                };
                w.as_mut_bytes()[..64].copy_from_slice(i.as_bytes());
                let n = usize::from(*nseg);
                // Segments past the 64 we wrote read as zeros: gref 0, sector 0..0.
                let expect = if *op > BLKIF_OP_WRITE
                    || n == 0
                    || n > 256
                    || matches!(ind, G::Bogus(_))
                    || n > 64
                {
                    Expect::Fail
                } else {
                    match self.segs_ok(&segs[..n], *op == BLKIF_OP_READ) {
                        Some(secs) if Self::in_range(*sector, secs) => Expect::Okay,
                        _ => Expect::Fail,
                    }
                };
                (w, *op, expect)
            }
            Req::Discard {
                sector,
                n,
                flag,
                id,
            } => {
                let d = BlkifRequestDiscard {
                    operation: BLKIF_OP_DISCARD,
                    flag: *flag,
                    id: *id,
                    sector_number: *sector,
                    nr_sectors: *n,
                    ..Default::default()
                };
                w.as_mut_bytes()[..32].copy_from_slice(d.as_bytes());
                let expect = if Self::in_range(*sector, *n) {
                    Expect::Okay
                } else {
                    Expect::Fail
                };
                (w, BLKIF_OP_DISCARD, expect)
            }
            Req::Raw(bytes) => {
                let w = BlkifRequest::read_from_bytes(bytes).unwrap();
                let op = w.operation;
                let echoed = if op == BLKIF_OP_INDIRECT {
                    w.nr_segments
                } else {
                    op
                };
                (w, echoed, Expect::Any)
            }
        }
    }
}

/// An honest front-end on a fresh ring, served by `backend`: writes and reads back
/// 256 KiB at `sector` and leaks nothing.
fn honest_round_trip(backend: Backend, disk: &mut [u8], sector: u64, seed: u64) -> Backend {
    let cfg = *backend.config();
    let info = negotiate(&RamDisk::new(disk), &cfg);
    let (front_ring, back_ring) = ring_pair();
    let t = table(4 * 65);
    let peer = InlinePeer::new(back_ring, backend, BackSide(t.clone()), RamDisk::new(disk));
    let mut front = BlkFront::new(
        front_ring,
        FrontSide(t.clone()),
        info,
        BlkFrontConfig::default(),
    )
    .unwrap();
    let data = pattern(seed, 0, 256 * 1024);
    front.write(sector, &data, &peer).unwrap();
    let mut back = vec![0u8; data.len()];
    front.read(sector, &mut back, &peer).unwrap();
    assert!(back == data);
    assert_eq!(front.in_flight(), 0);
    assert_eq!(t.lock().unwrap().active(), 0);
    peer.backend.into_inner()
}

fn env() -> Env {
    let table = table(4);
    let (rw, ro, ind) = {
        let mut t = table.lock().unwrap();
        (t.grant(0, false).0, t.grant(1, true).0, t.grant(2, true).0)
    };
    Env { table, rw, ro, ind }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn garbage_requests_get_error_responses(reqs in prop::collection::vec(req(), 1..=40), budget in 1u32..40) {
        let env = env();
        let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
        let mut backend = Backend::new(BackendConfig { max_requests_per_call: budget, ..BackendConfig::DEFAULT });
        let (mut front, mut back) = ring_pair();
        for chunk in reqs.chunks(32) {
            let mut expected = Vec::new();
            // One request at a time so each indirect list is in place when it is read.
            for r in chunk {
                let (w, op, expect) = env.build(r);
                front.write_request(w).unwrap();
                front.push_requests();
                let mut calls = 0;
                loop {
                    let out = backend.process(&mut back, &mut BackSide(env.table.clone()), &mut RamDisk::new(&mut disk));
                    calls += 1;
                    prop_assert!(out.requests <= budget);
                    match out.state {
                        RingState::Idle => break,
                        RingState::MoreWork => prop_assert!(calls < 100),
                        RingState::Disconnect(e) => prop_assert!(false, "honest indices disconnected: {e}"),
                    }
                }
                expected.push((w.id, op, expect));
            }
            for (id, op, expect) in expected {
                let rsp = front.read_response().unwrap().expect("every request answered");
                prop_assert_eq!(rsp.id, id);
                prop_assert!([BLKIF_RSP_OKAY, BLKIF_RSP_ERROR, BLKIF_RSP_EOPNOTSUPP].contains(&rsp.status));
                if expect != Expect::Any {
                    prop_assert_eq!(rsp.operation, op);
                }
                match expect {
                    Expect::Okay => prop_assert_eq!(rsp.status, BLKIF_RSP_OKAY),
                    Expect::Fail => prop_assert_ne!(rsp.status, BLKIF_RSP_OKAY),
                    Expect::Exactly(s) => prop_assert_eq!(rsp.status, s),
                    Expect::Any => {}
                }
            }
            prop_assert!(front.read_response().unwrap().is_none());
        }
        // The same back-end serves an honest front-end on another ring.
        honest_round_trip(backend, &mut disk, 0, 3);
    }

    /// Batching changes nothing a front-end can rely on: the same hostile requests served
    /// by a one-segment-at-a-time back-end (default copies) and by a batching one (native
    /// batched copies with per-segment status) get the same responses (so a failing
    /// segment is charged to its own request) and, when every request succeeds, leave the
    /// same disk contents and front-end pages (a failed request's data is undefined in
    /// blkif); every batch of the batching one stays within its size.
    #[test]
    fn batched_copies_answer_like_single_ones(reqs in prop::collection::vec(req(), 1..=32), limit in 0usize..4) {
        let envs = [env(), env(), env()];
        let mut disks = [0, 1, 2].map(|_| pattern(5, 0, DISK_SECTORS as usize * 512));
        let mut single = Backend::new(BackendConfig::DEFAULT);
        let mut batched = Backend::<3>::with_batch(BackendConfig::DEFAULT);
        let mut batched2 = Backend::<3>::with_batch(BackendConfig::DEFAULT);
        let batch_side = BatchSide::new(envs[1].table.clone());
        // Persistent mappings (a few, then copies; read-only grants never map).
        let mut persistent: blkback_core::PersistentGrants<_, _, 4> = blkback_core::PersistentGrants::new(
            FakeMapper(envs[2].table.clone()),
            BatchSide::new(envs[2].table.clone()),
            limit,
        );
        let mut rsps: [Vec<BlkifResponse>; 3] = [Vec::new(), Vec::new(), Vec::new()];
        for (k, env) in envs.iter().enumerate() {
            let (mut front, mut back) = ring_pair();
            for r in &reqs {
                let (w, _, _) = env.build(r);
                front.write_request(w).unwrap();
                front.push_requests();
                let disk = &mut RamDisk::new(&mut disks[k]);
                let out = match k {
                    0 => single.process(&mut back, &mut BackSide(env.table.clone()), disk),
                    1 => batched.process(&mut back, &mut batch_side.clone(), disk),
                    _ => batched2.process(&mut back, &mut persistent, disk),
                };
                prop_assert_eq!(out.state, RingState::Idle);
                while let Some(rsp) = front.read_response().unwrap() {
                    rsps[k].push(rsp);
                }
            }
        }
        prop_assert_eq!(&rsps[0], &rsps[1]);
        prop_assert_eq!(&rsps[0], &rsps[2]);
        if rsps[0].iter().all(|r| r.status == BLKIF_RSP_OKAY) {
            let pages = |e: &Env| (0..4).map(|p| e.table.lock().unwrap().page_mut(p).to_vec()).collect::<Vec<_>>();
            for k in 1..3 {
                prop_assert!(disks[0] == disks[k]);
                prop_assert!(pages(&envs[0]) == pages(&envs[k]));
            }
        }
        prop_assert!(batch_side.batches().iter().all(|&n| (1..=3).contains(&n)));
        prop_assert_eq!(single.stats(), batched.stats());
        prop_assert_eq!(single.stats(), batched2.stats());
        prop_assert!(persistent.len() <= limit);
        persistent.clear();
        prop_assert!(envs[2].table.lock().unwrap().mapped_refs.is_empty());
    }

    #[test]
    fn random_ring_indices_disconnect_or_answer(
        idx in prop_oneof![any::<u32>(), (0u32..64), (u32::MAX - 64..=u32::MAX)],
        k in 1usize..=32,
        garbage in prop::collection::vec(any::<u8>(), 112),
        rounds in 1usize..4,
    ) {
        let mut backend = Backend::default();
        let mut disk = vec![0u8; DISK_SECTORS as usize * 512];
        let env = env();
        let (mut front, mut back) = ring_pair_at(idx);
        let w = BlkifRequest::read_from_bytes(&garbage).unwrap();
        let mut disconnected = false;
        for _ in 0..rounds {
            for _ in 0..k {
                if front.write_request(w).is_err() {
                    break;
                }
            }
            front.push_requests();
            // Every call returns; the ring is either served to idle or dropped.
            let mut calls = 0;
            loop {
                let out = backend.process(&mut back, &mut BackSide(env.table.clone()), &mut RamDisk::new(&mut disk));
                calls += 1;
                prop_assert!(calls <= 10);
                match out.state {
                    RingState::Idle => break,
                    RingState::MoreWork => {}
                    RingState::Disconnect(_) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if disconnected {
                break;
            }
            // The hostile front-end never consumes responses: its ring fills and stays.
            let _ = front.read_response();
        }
        let in_window = idx.wrapping_add(k as u32) <= 32;
        if !in_window {
            prop_assert!(disconnected || idx == 0);
        }
        honest_round_trip(backend, &mut disk, 0, 9);
    }

    #[test]
    fn garbage_responses_give_front_end_errors(
        n in 1usize..=16,
        rsps in prop::collection::vec((0u8..4, any::<u64>(), any::<u8>(), any::<i16>()), 16),
        back_idx in prop_oneof![Just(0u32), any::<u32>()],
    ) {
        let mut disk = vec![0u8; 256 * 512];
        let info = negotiate(&RamDisk::new(&mut disk), &BackendConfig::DEFAULT);
        let (front_ring, mut back) = ring_pair_back_at(back_idx);
        let t = table(16 * 11);
        let mut front = BlkFront::new(front_ring, FrontSide(t.clone()), info, BlkFrontConfig { max_segments: 11, persistent: false }).unwrap();
        let mut ids = Vec::new();
        for i in 0..n {
            ids.push(front.submit_read(i as u64 * 8, 8).unwrap());
        }
        front.push_requests();
        // A hostile back-end: reads what it can, answers with mutated responses.
        let mut expect = Vec::new();
        for &(kind, rid, rop, status) in rsps.iter().take(n) {
            let Ok(Some(req)) = back.read_request() else { break };
            let mut rsp = BlkifResponse { id: req.id, operation: req.operation, status: BLKIF_RSP_OKAY, ..Default::default() };
            match kind {
                0 => rsp.status = status,
                1 => rsp.id = rid,
                2 => rsp.operation = rop,
                _ => {}
            }
            if back.write_response(rsp).is_err() {
                break;
            }
            expect.push((kind, rsp, req.operation));
        }
        back.push_responses();
        let mut results = Vec::new();
        loop {
            match front.poll() {
                Ok(None) => break,
                Ok(Some(c)) => {
                    prop_assert!(ids.contains(&c.id));
                    front.release(c.id, None).unwrap();
                    results.push(Ok(c));
                }
                Err(e) => {
                    prop_assert!(matches!(e, BlkError::Ring(_) | BlkError::BadResponseId(_) | BlkError::BadResponseOp { .. }), "{e:?}");
                    let ring_err = matches!(e, BlkError::Ring(_));
                    results.push(Err(e));
                    if ring_err {
                        break;
                    }
                }
            }
            prop_assert!(results.len() <= 64);
        }
        if back_idx == 0 {
            // Coherent indices: one result per response, each the one its mutation calls for.
            prop_assert_eq!(results.len(), expect.len());
            for (r, (kind, rsp, op)) in results.iter().zip(&expect) {
                match (kind, r) {
                    (0, Ok(c)) => prop_assert_eq!(
                        c.status,
                        match rsp.status { 0 => RspStatus::Okay, -2 => RspStatus::NotSupported, _ => RspStatus::Error }
                    ),
                    (1, Err(BlkError::BadResponseId(id))) => prop_assert_eq!(*id, rsp.id),
                    (1, Ok(c)) => prop_assert_eq!(u64::from(c.id), rsp.id), // the random id hit a request in flight
                    (2, Err(BlkError::BadResponseOp { got, .. })) => prop_assert_eq!(*got, rsp.operation),
                    (2, Ok(_)) => prop_assert_eq!(rsp.operation, *op),
                    (_, Ok(c)) => prop_assert_eq!(c.status, RspStatus::Okay),
                    (k, r) => prop_assert!(false, "kind {} gave {:?}", k, r),
                }
            }
        }
        // Released or still waiting: never more than were submitted.
        prop_assert!(front.in_flight() <= n);
        prop_assert_eq!(front.dead_ids(), 0);
    }
}
