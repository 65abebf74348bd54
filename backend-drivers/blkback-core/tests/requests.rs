//! Crafted requests on a raw ring: each answered with the status (and echoed operation)
//! Linux's blkback gives; the budget, the final check and a hostile ring index.

mod common;

use blkback_core::{Backend, BackendConfig, BlockStore, RamDisk, RingState, StoreError};
use common::*;
use xen_abi::blkif::*;
use xen_ring::RingError;
use zerocopy::{FromZeros, IntoBytes};

const DISK_SECTORS: u64 = 256;

struct Harness {
    front: Front,
    back: Back,
    backend: Backend,
    table: SharedTable,
    store: TestStore<RamDisk<'static>>,
}

impl Harness {
    fn new(cfg: BackendConfig) -> Self {
        let (front, back) = ring_pair();
        let mem: &'static mut [u8] =
            Box::leak(pattern(99, 0, DISK_SECTORS as usize * 512).into_boxed_slice());
        Self {
            front,
            back,
            backend: Backend::new(cfg),
            table: table(16),
            store: TestStore::new(RamDisk::new(mem)),
        }
    }
    fn grant(&self, page: usize, readonly: bool) -> u32 {
        self.table.lock().unwrap().grant(page, readonly).0
    }
    /// Sends one request, runs the back-end, returns (operation, status) of the response.
    fn send(&mut self, req: BlkifRequest) -> (u8, i16) {
        self.front.write_request(req).unwrap();
        self.front.push_requests();
        let out = self.backend.process(
            &mut self.back,
            &mut BackSide(self.table.clone()),
            &mut self.store,
        );
        assert_eq!(out.state, RingState::Idle);
        assert_eq!(out.requests, 1);
        let rsp = self.front.read_response().unwrap().unwrap();
        assert_eq!(rsp.id, req.id, "id echoed");
        assert!(self.front.read_response().unwrap().is_none());
        (rsp.operation, rsp.status)
    }
    fn disk(&self) -> Vec<u8> {
        self.store.inner.bytes().to_vec()
    }
}

fn rw(op: u8, sector: u64, segs: &[(u32, u8, u8)]) -> BlkifRequest {
    let mut r = BlkifRequest::new_zeroed();
    r.operation = op;
    r.nr_segments = segs.len() as u8;
    r.id = 0xdead_beef_0000_0000 | u64::from(op);
    r.sector_number = sector;
    for (s, &(gref, first, last)) in r.seg.iter_mut().zip(segs) {
        *s = BlkifRequestSegment {
            gref,
            first_sect: first,
            last_sect: last,
            _pad: [0; 2],
        };
    }
    r
}

fn indirect(op: u8, nseg: u16, sector: u64, grefs: &[u32]) -> BlkifRequest {
    let mut ind = BlkifRequestIndirect {
        operation: BLKIF_OP_INDIRECT,
        indirect_op: op,
        nr_segments: nseg,
        id: 77,
        sector_number: sector,
        ..Default::default()
    };
    ind.indirect_grefs[..grefs.len()].copy_from_slice(grefs);
    let mut r = BlkifRequest::new_zeroed();
    r.as_mut_bytes()[..64].copy_from_slice(ind.as_bytes());
    r
}

fn discard(sector: u64, n: u64, flag: u8) -> BlkifRequest {
    let d = BlkifRequestDiscard {
        operation: BLKIF_OP_DISCARD,
        flag,
        id: 5,
        sector_number: sector,
        nr_sectors: n,
        ..Default::default()
    };
    let mut r = BlkifRequest::new_zeroed();
    r.as_mut_bytes()[..32].copy_from_slice(d.as_bytes());
    r
}

const R: u8 = BLKIF_OP_READ;
const W: u8 = BLKIF_OP_WRITE;
const F: u8 = BLKIF_OP_FLUSH_DISKCACHE;
const B: u8 = BLKIF_OP_WRITE_BARRIER;
const D: u8 = BLKIF_OP_DISCARD;
const OK: i16 = BLKIF_RSP_OKAY;
const ERR: i16 = BLKIF_RSP_ERROR;
const NOTSUP: i16 = BLKIF_RSP_EOPNOTSUPP;

#[test]
fn read_write_statuses() {
    let mut h = Harness::new(BackendConfig::DEFAULT);
    let rw_ = h.grant(0, false);
    let ro = h.grant(1, true);
    let before = h.disk();
    for (req, expect) in [
        (rw(R, 0, &[]), (R, ERR)), // zero segments
        (rw(W, 0, &[]), (W, ERR)),
        (rw(R, 0, &[(rw_, 0, 7); 12]), (R, ERR)), // > 11 segments
        (rw(W, 0, &[(rw_, 3, 2)]), (W, ERR)),     // first > last
        (rw(R, 0, &[(rw_, 0, 8)]), (R, ERR)),     // last >= 8
        (rw(W, 0, &[(rw_, 9, 9)]), (W, ERR)),
        (rw(R, DISK_SECTORS - 7, &[(rw_, 0, 7)]), (R, ERR)), // past the end
        (rw(W, DISK_SECTORS, &[(rw_, 0, 0)]), (W, ERR)),
        (rw(R, u64::MAX - 2, &[(rw_, 0, 7)]), (R, ERR)), // overflow
        (rw(R, 0, &[(12345, 0, 7)]), (R, ERR)),          // bad gref
        (rw(W, 0, &[(rw_, 0, 7), (54321, 0, 7)]), (W, ERR)),
        (rw(R, 0, &[(ro, 0, 7)]), (R, ERR)), // read into a read-only grant
    ] {
        assert_eq!(h.send(req), expect, "{req:?}");
    }
    // Invalid writes changed nothing except the one whose second grant was bad: Linux
    // would not have written either; we copy segment by segment (documented).
    let mut after = h.disk();
    after[..4096].copy_from_slice(&before[..4096]);
    assert!(after == before);

    // Valid: write from a read-only grant, partial segments land at the right place.
    h.table
        .lock()
        .unwrap()
        .page_mut(1)
        .copy_from_slice(&pattern(1, 0, 4096));
    assert_eq!(h.send(rw(W, 100, &[(ro, 2, 5)])), (W, OK));
    assert_eq!(
        h.disk()[100 * 512..104 * 512],
        pattern(1, 2 * 512, 4 * 512)[..]
    );
    h.table.lock().unwrap().page_mut(0).fill(0xaa);
    assert_eq!(h.send(rw(R, 101, &[(rw_, 6, 6), (rw_, 0, 0)])), (R, OK));
    let page = *h.table.lock().unwrap().page_mut(0);
    assert_eq!(page[6 * 512..7 * 512], pattern(1, 3 * 512, 512)[..]); // sector 101
    assert_eq!(page[..512], pattern(1, 4 * 512, 512)[..]); // sector 102
    assert!(page[512..6 * 512]
        .iter()
        .chain(&page[7 * 512..])
        .all(|&b| b == 0xaa));
    // 11 segments, last sector of the disk.
    assert_eq!(
        h.send(rw(R, DISK_SECTORS - 11, &[(rw_, 7, 7); 11])),
        (R, OK)
    );
}

#[test]
fn flush_barrier_discard_unknown() {
    let mut h = Harness::new(BackendConfig::DEFAULT);
    let g = h.grant(0, true);
    assert_eq!(h.send(rw(F, 0, &[])), (F, OK));
    assert_eq!(h.send(rw(B, 0, &[])), (B, OK));
    // A flush with data: flush then write.
    h.table.lock().unwrap().page_mut(0).fill(0x5c);
    assert_eq!(h.send(rw(F, 10, &[(g, 0, 1)])), (F, OK));
    assert!(h.disk()[10 * 512..12 * 512].iter().all(|&b| b == 0x5c));
    assert_eq!(h.store.flushes, 3);
    h.store.flush = Err(StoreError::Unsupported);
    assert_eq!(h.send(rw(F, 0, &[])), (F, NOTSUP));
    assert_eq!(h.send(rw(B, 0, &[])), (B, NOTSUP));
    h.store.flush = Err(StoreError::Io);
    assert_eq!(h.send(rw(F, 0, &[])), (F, ERR));
    h.store.flush = Ok(());
    assert_eq!(h.send(rw(F, 0, &[(g, 0, 8)])), (F, ERR));

    assert_eq!(h.send(discard(8, 8, 0)), (D, OK));
    assert!(h.disk()[8 * 512..16 * 512].iter().all(|&b| b == 0));
    assert_eq!(h.send(discard(0, 0, 0)), (D, OK));
    assert_eq!(h.send(discard(DISK_SECTORS - 1, 2, 0)), (D, ERR));
    assert_eq!(h.send(discard(u64::MAX, 2, BLKIF_DISCARD_SECURE)), (D, ERR));
    h.store.discard = Err(StoreError::Unsupported);
    assert_eq!(h.send(discard(0, 1, 0)), (D, NOTSUP));

    for op in [BLKIF_OP_RESERVED_1, 7, 8, 0x80, 0xff] {
        assert_eq!(h.send(rw(op, 0, &[(g, 0, 7)])), (op, NOTSUP));
    }
    let s = *h.backend.stats();
    assert_eq!(s.unsupported, 8);
    assert_eq!(s.ds_req, 5);
}

#[test]
fn indirect_statuses() {
    let cfg = BackendConfig {
        max_indirect_segments: 32,
        ..BackendConfig::DEFAULT
    };
    let mut h = Harness::new(cfg);
    let ind = h.grant(0, true);
    let data = h.grant(1, false);
    let write_segs = |h: &mut Harness, segs: &[(u32, u8, u8)]| {
        let mut bytes = Vec::new();
        for &(gref, f, l) in segs {
            bytes.extend_from_slice(
                BlkifRequestSegment {
                    gref,
                    first_sect: f,
                    last_sect: l,
                    _pad: [0; 2],
                }
                .as_bytes(),
            );
        }
        h.table.lock().unwrap().page_mut(0)[..bytes.len()].copy_from_slice(&bytes);
    };
    // 20 segments, each one sector of the data page.
    let segs: Vec<_> = (0..20)
        .map(|i| (data, (i % 8) as u8, (i % 8) as u8))
        .collect();
    write_segs(&mut h, &segs);
    h.table
        .lock()
        .unwrap()
        .page_mut(1)
        .copy_from_slice(&pattern(4, 0, 4096));
    assert_eq!(h.send(indirect(W, 20, 50, &[ind])), (W, OK));
    for i in 0..20usize {
        let s = (50 + i) * 512;
        assert_eq!(
            h.disk()[s..s + 512],
            pattern(4, (i % 8) * 512, 512)[..],
            "sector {i}"
        );
    }
    h.table.lock().unwrap().page_mut(1).fill(0);
    assert_eq!(h.send(indirect(R, 8, 50, &[ind])), (R, OK));
    assert_eq!(
        h.table.lock().unwrap().page_mut(1)[..],
        pattern(4, 0, 4096)[..]
    );

    let before = h.disk();
    for (req, expect) in [
        (
            indirect(BLKIF_OP_FLUSH_DISKCACHE, 1, 0, &[ind]),
            (BLKIF_OP_FLUSH_DISKCACHE, ERR),
        ),
        (indirect(99, 1, 0, &[ind]), (99, ERR)),
        (
            indirect(BLKIF_OP_INDIRECT, 1, 0, &[ind]),
            (BLKIF_OP_INDIRECT, ERR),
        ),
        (indirect(R, 0, 0, &[ind]), (R, ERR)),
        (indirect(W, 33, 0, &[ind]), (W, ERR)), // above the configured max
        (indirect(W, 257, 0, &[ind]), (W, ERR)), // above blkback's max
        (indirect(W, 9000, 0, &[ind]), (W, ERR)),
        (indirect(W, 20, 0, &[4242]), (W, ERR)), // bad indirect gref
        (indirect(W, 20, DISK_SECTORS - 19, &[ind]), (W, ERR)), // past the end
    ] {
        assert_eq!(h.send(req), expect, "{req:?}");
    }
    // A bad segment deep in the list: nothing written.
    let mut bad = segs.clone();
    bad[17] = (data, 4, 3);
    write_segs(&mut h, &bad);
    assert_eq!(h.send(indirect(W, 20, 0, &[ind])), (W, ERR));
    bad[17] = (data, 0, 8);
    write_segs(&mut h, &bad);
    assert_eq!(h.send(indirect(W, 20, 0, &[ind])), (W, ERR));
    assert!(h.disk() == before);
    // Indirect is refused entirely when configured off.
    let mut h2 = Harness::new(BackendConfig {
        max_indirect_segments: 0,
        ..BackendConfig::DEFAULT
    });
    let g = h2.grant(0, true);
    assert_eq!(h2.send(indirect(R, 1, 0, &[g])), (R, ERR));
}

#[test]
fn read_only_config() {
    let mut h = Harness::new(BackendConfig {
        readonly: true,
        ..BackendConfig::DEFAULT
    });
    let g = h.grant(0, false);
    let before = h.disk();
    assert_eq!(
        h.send(rw(BLKIF_OP_WRITE, 0, &[(g, 0, 7)])),
        (BLKIF_OP_WRITE, ERR)
    );
    assert_eq!(
        h.send(rw(BLKIF_OP_FLUSH_DISKCACHE, 0, &[])),
        (BLKIF_OP_FLUSH_DISKCACHE, ERR)
    );
    assert_eq!(
        h.send(rw(BLKIF_OP_WRITE_BARRIER, 0, &[])),
        (BLKIF_OP_WRITE_BARRIER, ERR)
    );
    assert_eq!(h.send(discard(0, 1, 0)), (BLKIF_OP_DISCARD, ERR));
    assert_eq!(
        h.send(rw(BLKIF_OP_READ, 0, &[(g, 0, 7)])),
        (BLKIF_OP_READ, OK)
    );
    assert!(h.disk() == before);
    assert_eq!(h.store.sector_count(), DISK_SECTORS);
}

#[test]
fn budget_and_final_check() {
    let cfg = BackendConfig {
        max_requests_per_call: 5,
        ..BackendConfig::DEFAULT
    };
    let mut h = Harness::new(cfg);
    let g = h.grant(0, false);
    for i in 0..32u64 {
        let mut r = rw(BLKIF_OP_READ, i, &[(g, 0, 0)]);
        r.id = i;
        h.front.write_request(r).unwrap();
    }
    assert!(
        h.front.push_requests_and_check_notify(),
        "back-end armed req_event at init"
    );
    let mut states = Vec::new();
    let mut answered = 0;
    loop {
        let out = h
            .backend
            .process(&mut h.back, &mut BackSide(h.table.clone()), &mut h.store);
        assert!(out.requests <= 5);
        answered += out.requests;
        states.push(out.state);
        if out.state == RingState::Idle {
            break;
        }
        assert_eq!(out.state, RingState::MoreWork);
    }
    assert_eq!(answered, 32);
    assert_eq!(states.len(), 7); // 6 x 5 + 2
    for i in 0..32 {
        let rsp = h.front.read_response().unwrap().unwrap();
        assert_eq!((rsp.id, rsp.status), (i, OK));
    }
    // Idle: req_event armed at req_cons + 1, so the next request asks for a notification.
    h.front
        .write_request(rw(BLKIF_OP_READ, 0, &[(g, 0, 0)]))
        .unwrap();
    assert!(h.front.push_requests_and_check_notify());
    // Idle with nothing to do: repeated calls are cheap and answer nothing extra.
    let out = h
        .backend
        .process(&mut h.back, &mut BackSide(h.table.clone()), &mut h.store);
    assert_eq!((out.requests, out.state), (1, RingState::Idle));
    let out = h
        .backend
        .process(&mut h.back, &mut BackSide(h.table.clone()), &mut h.store);
    assert_eq!(
        (out.requests, out.notify, out.state),
        (0, false, RingState::Idle)
    );
}

#[test]
fn notify_only_when_front_end_asked() {
    let mut h = Harness::new(BackendConfig::DEFAULT);
    let g = h.grant(0, false);
    h.front
        .write_request(rw(BLKIF_OP_READ, 0, &[(g, 0, 0)]))
        .unwrap();
    h.front.push_requests();
    // rsp_event is 1 after init: the first response needs a notification.
    let out = h
        .backend
        .process(&mut h.back, &mut BackSide(h.table.clone()), &mut h.store);
    assert!(out.notify);
    // The front-end consumes without re-arming: no notification for the next one.
    h.front.read_response().unwrap().unwrap();
    h.front
        .write_request(rw(BLKIF_OP_READ, 0, &[(g, 0, 0)]))
        .unwrap();
    h.front.push_requests();
    let out = h
        .backend
        .process(&mut h.back, &mut BackSide(h.table.clone()), &mut h.store);
    assert!(!out.notify);
    // Re-armed (final check): notified again.
    h.front.read_response().unwrap().unwrap();
    assert!(!h.front.final_check_for_responses().unwrap());
    h.front
        .write_request(rw(BLKIF_OP_READ, 0, &[(g, 0, 0)]))
        .unwrap();
    h.front.push_requests();
    let out = h
        .backend
        .process(&mut h.back, &mut BackSide(h.table.clone()), &mut h.store);
    assert!(out.notify);
}

#[test]
fn hostile_index_disconnects() {
    let mut backend = Backend::default();
    let t = table(4);
    let mut mem = vec![0u8; 64 * 512];
    let mut disk = RamDisk::new(&mut mem);
    // req_prod 1001 while nothing was consumed: more requests than slots.
    let (mut front, mut back) = ring_pair_at(1000);
    front.write_request(BlkifRequest::new_zeroed()).unwrap();
    front.push_requests();
    let out = backend.process(&mut back, &mut BackSide(t.clone()), &mut disk);
    assert_eq!(out.requests, 0);
    assert!(matches!(
        out.state,
        RingState::Disconnect(RingError::RequestProdOverflow { req_prod: 1001, .. })
    ));
    // Calling again is harmless.
    let out = backend.process(&mut back, &mut BackSide(t.clone()), &mut disk);
    assert!(matches!(out.state, RingState::Disconnect(_)));

    // An index that moves backwards after requests were consumed.
    let (mut front, mut back) = ring_pair_at(u32::MAX - 1);
    for _ in 0..3 {
        front.write_request(BlkifRequest::new_zeroed()).unwrap();
    }
    front.push_requests();
    // req_prod = 1 (wrapped): 1 - 0 = 1 request visible (slot 0); answered ERROR.
    let out = backend.process(&mut back, &mut BackSide(t.clone()), &mut disk);
    assert_eq!((out.requests, out.state), (1, RingState::Idle));
    assert_eq!(backend.stats().errors, 1); // slot 0 held zeros: a READ of 0 segments
}

/// A [`DirectIo`](blkback_core::DirectIo) path (here: the store read or written segment
/// by segment, straight to or from each grant) is taken for every batch it accepts, with
/// the same statuses as the bounce buffer; one that declines leaves the batch to it.
#[test]
fn direct_path_and_request_shapes() {
    use blkback_core::{DirectIo, GrantAccess, GrantError, GrantSeg};
    use xen_abi::GrantRef;

    struct Direct {
        inner: BackSide,
        accept: bool,
        taken: u32,
    }
    impl GrantAccess for Direct {
        fn copy_from_grant(&mut self, g: GrantRef, o: usize, b: &mut [u8]) -> Result<(), GrantError> {
            self.inner.copy_from_grant(g, o, b)
        }
        fn copy_to_grant(&mut self, g: GrantRef, o: usize, d: &[u8]) -> Result<(), GrantError> {
            self.inner.copy_to_grant(g, o, d)
        }
    }
    impl<S: BlockStore> DirectIo<S> for Direct {
        fn read_direct(&mut self, store: &mut S, mut sector: u64, segs: &mut [GrantSeg]) -> Option<Result<(), StoreError>> {
            if !self.accept {
                return None;
            }
            self.taken += 1;
            for s in segs {
                let mut b = vec![0u8; usize::from(s.len)];
                if let Err(e) = store.read(sector, &mut b) {
                    return Some(Err(e));
                }
                s.status = self.inner.copy_to_grant(s.gref, usize::from(s.offset), &b);
                sector += b.len() as u64 / 512;
            }
            Some(Ok(()))
        }
        fn write_direct(&mut self, store: &mut S, mut sector: u64, segs: &mut [GrantSeg]) -> Option<Result<(), StoreError>> {
            if !self.accept {
                return None;
            }
            self.taken += 1;
            for s in segs {
                let mut b = vec![0u8; usize::from(s.len)];
                s.status = self.inner.copy_from_grant(s.gref, usize::from(s.offset), &mut b);
                if s.status.is_ok() {
                    if let Err(e) = store.write(sector, &b) {
                        return Some(Err(e));
                    }
                }
                sector += b.len() as u64 / 512;
            }
            Some(Ok(()))
        }
    }

    for accept in [true, false] {
        let mut h = Harness::new(BackendConfig::DEFAULT);
        let g = h.grant(0, false);
        let ro = h.grant(1, true);
        let mut d = Direct { inner: BackSide(h.table.clone()), accept, taken: 0 };
        let send = |h: &mut Harness, d: &mut Direct, req| {
            let rsp = h.backend.handle_direct(&req, d, &mut h.store);
            (rsp.operation, rsp.status)
        };
        h.table.lock().unwrap().page_mut(0).copy_from_slice(&pattern(5, 0, 4096));
        assert_eq!(send(&mut h, &mut d, rw(W, 8, &[(g, 0, 7), (g, 2, 3)])), (W, OK));
        assert_eq!(h.disk()[8 * 512..16 * 512], pattern(5, 0, 4096)[..]);
        assert_eq!(h.disk()[16 * 512..18 * 512], pattern(5, 1024, 1024)[..]);
        h.table.lock().unwrap().page_mut(0).fill(0);
        assert_eq!(send(&mut h, &mut d, rw(R, 9, &[(g, 1, 7)])), (R, OK));
        assert_eq!(h.table.lock().unwrap().page_mut(0)[512..], pattern(5, 512, 3584)[..]);
        // Errors: a read into a read-only grant, a bad reference; the checks before any
        // data moves are the same either way.
        assert_eq!(send(&mut h, &mut d, rw(R, 0, &[(ro, 0, 7)])), (R, ERR));
        assert_eq!(send(&mut h, &mut d, rw(W, 0, &[(999, 0, 7)])), (W, ERR));
        assert_eq!(send(&mut h, &mut d, rw(R, DISK_SECTORS, &[(g, 0, 0)])), (R, ERR));
        assert_eq!(d.taken, if accept { 5 } else { 0 });

        // Shapes: 2, 1, 1, 1 direct segments and 1 out of range (counted: it was a read).
        let st = *h.backend.stats();
        assert_eq!(st.rw_segs[..3], [4, 1, 0]);
        assert_eq!(st.indirect_req, 0);
    }
    assert_eq!(
        [1, 2, 3, 4, 5, 8, 9, 32, 33, 256].map(blkback_core::BackendStats::segs_bucket),
        [0, 1, 2, 2, 3, 3, 4, 5, 6, 8]
    );
}

/// `set_config` switches a `Backend` to read-only (a daemon reusing one per device).
#[test]
fn set_config_read_only() {
    let mut h = Harness::new(BackendConfig::DEFAULT);
    let g = h.grant(0, false);
    assert_eq!(h.send(rw(W, 0, &[(g, 0, 7)])), (W, OK));
    h.backend.set_config(BackendConfig { readonly: true, max_requests_per_call: 0, ..BackendConfig::DEFAULT });
    assert_eq!(h.backend.config().max_requests_per_call, 1, "clamped");
    assert_eq!(h.send(rw(W, 0, &[(g, 0, 7)])), (W, ERR));
    assert_eq!(h.send(discard(0, 1, 0)), (D, ERR));
    assert_eq!(h.send(rw(F, 0, &[])), (F, ERR));
}
