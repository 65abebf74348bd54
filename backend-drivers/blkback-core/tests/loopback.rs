//! blkfront (frontend-drivers) and blkback-core on one shared ring page, a fake grant
//! table and a RAM disk: bulk transfers with every byte checked.

mod common;

use std::time::{Duration, Instant};

use blkback_core::{Backend, BackendConfig, BlockStore, RamDisk, RingState};
use common::*;
use frontend_drivers::blkfront::{BlkError, BlkFront, BlkFrontConfig, RspStatus};
use frontend_drivers::Notify;

const MIB: usize = 1 << 20;

struct Run {
    persistent: bool,
    max_segments: usize,
    pool_pages: usize,
    /// Sizes (in sectors) of the successive write calls, cycled; same for reads.
    write_chunks: &'static [usize],
    read_chunks: &'static [usize],
}

/// Writes `total` bytes of pattern data through the front-end, checks the RAM disk
/// directly, reads everything back through the front-end and checks it, then checks that
/// no grant, id or request is left behind.
fn round_trip(total: usize, run: Run) -> (f64, f64) {
    let mut disk_mem = vec![0u8; total + 64 * 1024];
    let cfg = BackendConfig::DEFAULT;
    let info = negotiate(&RamDisk::new(&mut disk_mem), &cfg);
    let (front_ring, back_ring) = ring_pair();
    let table = table(run.pool_pages);
    let peer = InlinePeer::new(
        back_ring,
        Backend::new(cfg),
        BackSide(table.clone()),
        RamDisk::new(&mut disk_mem),
    );
    let mut front = BlkFront::new(
        front_ring,
        FrontSide(table.clone()),
        info,
        BlkFrontConfig {
            max_segments: run.max_segments,
            persistent: run.persistent,
        },
    )
    .unwrap();
    assert_eq!(front.persistent(), run.persistent);

    let data = pattern(7, 0, total);
    let t0 = Instant::now();
    let mut off = 0;
    for &n in run.write_chunks.iter().cycle() {
        if off == total {
            break;
        }
        let len = (n * 512).min(total - off);
        front
            .write((off / 512) as u64, &data[off..off + len], &peer)
            .unwrap();
        off += len;
    }
    let write_s = t0.elapsed().as_secs_f64();
    assert!(
        peer.store.borrow().bytes()[..total] == data[..],
        "disk contents differ after writes"
    );
    assert!(
        peer.store.borrow().bytes()[total..].iter().all(|&b| b == 0),
        "write beyond the range"
    );

    let mut back = vec![0u8; total];
    let t1 = Instant::now();
    let mut off = 0;
    for &n in run.read_chunks.iter().cycle() {
        if off == total {
            break;
        }
        let len = (n * 512).min(total - off);
        front
            .read((off / 512) as u64, &mut back[off..off + len], &peer)
            .unwrap();
        off += len;
    }
    let read_s = t1.elapsed().as_secs_f64();
    assert!(back == data, "data read back differs");

    // Nothing leaked.
    assert_eq!(front.in_flight(), 0);
    assert_eq!(front.dead_ids(), 0);
    if run.persistent {
        assert!(front.grants_held() > 0);
        assert_eq!(table.lock().unwrap().active() as u32, front.grants_held());
        front.teardown().unwrap();
    }
    assert_eq!(front.grants_held(), 0);
    assert_eq!(table.lock().unwrap().active(), 0, "grants leaked");
    let st = *front.stats();
    assert_eq!(st.grants, st.grants_ended);
    assert_eq!(st.sectors_written, (total / 512) as u64);
    assert_eq!(st.sectors_read, (total / 512) as u64);
    let bs = *peer.backend.borrow().stats();
    assert_eq!(bs.errors + bs.unsupported, 0);
    assert_eq!(bs.wr_sect + bs.rd_sect, 2 * (total / 512) as u64);
    if run.max_segments > 11 {
        assert!(st.indirect_requests > 0);
    } else {
        assert_eq!(st.indirect_requests, 0);
    }
    eprintln!(
        "{} MiB each way, persistent={} max_segments={}: write {:.1} MiB/s, read {:.1} MiB/s; {} requests ({} indirect), max {} in flight, {} kicks, {} wake-ups, {} back-end calls, {} grants",
        total / MIB,
        run.persistent,
        front.max_segments(),
        total as f64 / MIB as f64 / write_s,
        total as f64 / MIB as f64 / read_s,
        st.requests,
        st.indirect_requests,
        st.max_in_flight,
        peer.kicks.get(),
        peer.wakeups.get(),
        peer.calls.get(),
        st.grants,
    );
    (write_s, read_s)
}

#[test]
fn eight_mib_indirect() {
    round_trip(
        8 * MIB,
        Run {
            persistent: false,
            max_segments: 64,
            pool_pages: 16 * 65,
            write_chunks: &[16384],
            read_chunks: &[16384],
        },
    );
}

#[test]
fn eight_mib_direct_only() {
    round_trip(
        8 * MIB,
        Run {
            persistent: false,
            max_segments: 11,
            pool_pages: 32 * 11,
            write_chunks: &[16384],
            read_chunks: &[16384],
        },
    );
}

#[test]
fn eight_mib_persistent_odd_sizes() {
    // Write and read calls of awkward sizes: partial last segments, requests that are
    // direct (<= 11 pages) and indirect, ring wrap-around many times.
    round_trip(
        8 * MIB,
        Run {
            persistent: true,
            max_segments: 64,
            pool_pages: 8 * 65,
            write_chunks: &[1, 7, 9, 88, 89, 511, 513, 1000, 4097, 3],
            read_chunks: &[3, 4096, 17, 600, 1, 8, 2049],
        },
    );
}

#[test]
fn small_pool_one_id() {
    // Only one request id fits in the pool: everything serialises, still correct.
    round_trip(
        256 * 1024,
        Run {
            persistent: false,
            max_segments: 64,
            pool_pages: 65,
            write_chunks: &[100],
            read_chunks: &[512],
        },
    );
}

#[test]
fn flush_discard_and_errors_through_the_front_end() {
    let mut disk_mem = vec![0u8; 1 << 20];
    let cfg = BackendConfig::DEFAULT;
    let info = negotiate(&RamDisk::new(&mut disk_mem), &cfg);
    let sectors = info.sectors;
    let (front_ring, back_ring) = ring_pair();
    let table = table(130);
    let store = TestStore::new(RamDisk::new(&mut disk_mem));
    let peer = InlinePeer::new(back_ring, Backend::new(cfg), BackSide(table.clone()), store);
    let mut front = BlkFront::new(
        front_ring,
        FrontSide(table.clone()),
        info,
        BlkFrontConfig::default(),
    )
    .unwrap();

    let data = pattern(1, 0, 64 * 1024);
    front.write(10, &data, &peer).unwrap();
    front.flush(&peer).unwrap();
    assert_eq!(peer.store.borrow().flushes, 1);
    front.discard(10, 8, &peer).unwrap();
    let mut back = vec![1u8; 64 * 1024];
    front.read(10, &mut back, &peer).unwrap();
    assert!(back[..4096].iter().all(|&b| b == 0));
    assert_eq!(back[4096..], data[4096..]);

    // Flush/discard refused by the store: EOPNOTSUPP reaches the caller.
    peer.store.borrow_mut().flush = Err(blkback_core::StoreError::Unsupported);
    assert_eq!(
        front.flush(&peer),
        Err(BlkError::Status {
            sector: 0,
            status: RspStatus::NotSupported
        })
    );
    peer.store.borrow_mut().discard = Err(blkback_core::StoreError::Unsupported);
    assert_eq!(
        front.discard(0, 8, &peer),
        Err(BlkError::Status {
            sector: 0,
            status: RspStatus::NotSupported
        })
    );
    peer.store.borrow_mut().discard = Err(blkback_core::StoreError::Io);
    assert_eq!(
        front.discard(0, 8, &peer),
        Err(BlkError::Status {
            sector: 0,
            status: RspStatus::Error
        })
    );

    // Checked by the front-end before anything is sent.
    assert_eq!(
        front.read(sectors - 1, &mut [0u8; 1024], &peer),
        Err(BlkError::OutOfRange)
    );
    assert_eq!(front.write(0, &[0u8; 100], &peer), Err(BlkError::Unaligned));
    assert_eq!(front.discard(sectors, 1, &peer), Err(BlkError::OutOfRange));
    front.read(sectors - 2, &mut [0u8; 1024], &peer).unwrap();
    front.write(0, &[], &peer).unwrap();

    // The back-end's own range check: a front-end that believes the disk is bigger.
    let mut lying = *front.info();
    lying.sectors += 1000;
    let (ring, table2) = {
        let (f, b) = ring_pair();
        *peer.back.borrow_mut() = b;
        (f, table.clone())
    };
    drop(front);
    let mut front =
        BlkFront::new(ring, FrontSide(table2), lying, BlkFrontConfig::default()).unwrap();
    let r = front.write(sectors - 8, &vec![5u8; 8192], &peer);
    assert_eq!(
        r,
        Err(BlkError::Status {
            sector: sectors - 8,
            status: RspStatus::Error
        })
    );
    assert_eq!(front.in_flight(), 0);
    assert_eq!(table.lock().unwrap().active(), 0);
}

#[test]
fn read_only_disk() {
    let mut disk_mem = pattern(3, 0, 256 * 1024);
    let cfg = BackendConfig {
        readonly: true,
        ..BackendConfig::DEFAULT
    };
    let info = negotiate(&RamDisk::new(&mut disk_mem), &cfg);
    assert!(info.readonly());
    let expect = disk_mem.clone();
    let (front_ring, back_ring) = ring_pair();
    let table = table(65 * 4);
    let peer = InlinePeer::new(
        back_ring,
        Backend::new(cfg),
        BackSide(table.clone()),
        RamDisk::new(&mut disk_mem),
    );
    let mut front = BlkFront::new(
        front_ring,
        FrontSide(table.clone()),
        info,
        BlkFrontConfig::default(),
    )
    .unwrap();
    assert_eq!(front.write(0, &[0u8; 512], &peer), Err(BlkError::ReadOnly));
    assert_eq!(front.discard(0, 1, &peer), Err(BlkError::ReadOnly));
    let mut back = vec![0u8; expect.len()];
    front.read(0, &mut back, &peer).unwrap();
    assert!(back == expect);
    assert_eq!(table.lock().unwrap().active(), 0);
}

#[test]
fn two_threads_eight_mib() {
    let total = 8 * MIB;
    let mut disk_mem = vec![0u8; total];
    let cfg = BackendConfig {
        max_requests_per_call: 8,
        ..BackendConfig::DEFAULT
    };
    let info = negotiate(&RamDisk::new(&mut disk_mem), &cfg);
    let (front_ring, mut back_ring) = ring_pair();
    let table = table(16 * 65);
    let to_back = Event::default();
    let to_front = Event::default();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let data = pattern(11, 0, total);

    let (backend_stats, calls, disk_ok) = std::thread::scope(|s| {
        let back_table = table.clone();
        let (to_back, to_front, stop, data) = (&to_back, &to_front, &stop, &data);
        let disk_mem = &mut disk_mem;
        let backend = s.spawn(move || {
            let mut backend = Backend::new(cfg);
            let mut grants = BackSide(back_table);
            let mut disk = RamDisk::new(disk_mem);
            let mut calls = 0u64;
            loop {
                let out = backend.process(&mut back_ring, &mut grants, &mut disk);
                calls += 1;
                if out.notify {
                    to_front.signal();
                }
                match out.state {
                    RingState::MoreWork => continue,
                    RingState::Disconnect(e) => panic!("honest front-end disconnected: {e}"),
                    RingState::Idle => {
                        // Sleep until an event; the stop flag is checked after each one.
                        while !to_back.wait(Duration::from_millis(200)) {
                            if stop.load(std::sync::atomic::Ordering::Acquire) {
                                break;
                            }
                        }
                        if stop.load(std::sync::atomic::Ordering::Acquire) {
                            break;
                        }
                    }
                }
            }
            (*backend.stats(), calls, disk.bytes() == &data[..])
        });

        // Stops the back-end thread however this side ends (a failed assertion included),
        // so the scope never waits forever.
        struct Stop<'a>(&'a std::sync::atomic::AtomicBool, &'a Event);
        impl Drop for Stop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Release);
                self.1.signal();
            }
        }
        let stopper = Stop(stop, to_back);
        let notify = ThreadNotify {
            to_back,
            to_front,
            timeout: Duration::from_secs(20),
        };
        let mut front = BlkFront::new(
            front_ring,
            FrontSide(table.clone()),
            info,
            BlkFrontConfig::default(),
        )
        .unwrap();
        let t0 = Instant::now();
        // 512 KiB per call: two indirect requests each.
        for off in (0..total).step_by(512 * 1024) {
            front
                .write((off / 512) as u64, &data[off..off + 512 * 1024], &notify)
                .unwrap();
        }
        // And one big call that fills the ring.
        front.write(0, &data[..4 * MIB], &notify).unwrap();
        let w = t0.elapsed().as_secs_f64();
        front.flush(&notify).unwrap();
        let mut back = vec![0u8; total];
        let t1 = Instant::now();
        front.read(0, &mut back, &notify).unwrap();
        let r = t1.elapsed().as_secs_f64();
        assert!(back == *data, "data read back differs");
        assert_eq!(front.in_flight(), 0);
        assert_eq!(table.lock().unwrap().active(), 0, "grants leaked");
        let st = *front.stats();
        eprintln!(
            "two threads: wrote 12 MiB at {:.1} MiB/s, read 8 MiB at {:.1} MiB/s; {} requests, max {} in flight, {} notifies",
            12.0 / w,
            8.0 / r,
            st.requests,
            st.max_in_flight,
            st.notifies
        );
        drop(stopper);
        backend.join().unwrap()
    });
    assert!(disk_ok);
    assert_eq!(backend_stats.errors, 0);
    assert_eq!(backend_stats.wr_sect, (12 * MIB / 512) as u64);
    eprintln!("two threads: back-end made {calls} process calls");
}

#[test]
fn sector_size_4096() {
    let mut disk_mem = vec![0u8; 1 << 20];
    let cfg = BackendConfig::DEFAULT;
    let mut store = TestStore::new(RamDisk::new(&mut disk_mem));
    store.sector_size = 4096;
    let info = negotiate(&store, &cfg);
    assert_eq!(info.sector_size, 4096);
    let (front_ring, back_ring) = ring_pair();
    let table = table(65 * 2);
    let peer = InlinePeer::new(back_ring, Backend::new(cfg), BackSide(table.clone()), store);
    let mut front = BlkFront::new(
        front_ring,
        FrontSide(table.clone()),
        info,
        BlkFrontConfig::default(),
    )
    .unwrap();
    assert_eq!(
        front.write(1, &[0u8; 4096], &peer),
        Err(BlkError::Unaligned)
    );
    assert_eq!(front.write(8, &[0u8; 512], &peer), Err(BlkError::Unaligned));
    let data = pattern(5, 0, 300 * 1024);
    front.write(8, &data, &peer).unwrap();
    let mut back = vec![0u8; data.len()];
    front.read(8, &mut back, &peer).unwrap();
    assert!(back == data);
    // A misaligned request sent anyway (low-level API) is refused by the back-end.
    let id = front.submit_read(9, 8).unwrap();
    front.push_requests();
    peer.run_backend();
    let c = front.poll().unwrap().unwrap();
    assert_eq!((c.id, c.status), (id, RspStatus::Error));
    front.release(c.id, None).unwrap();
    assert_eq!(peer.store.borrow().sector_count(), 2048);
}

/// A batching back-end (a whole indirect request per batch, native batched copies): every
/// data request is one batched grant copy, and the data round-trips.
#[test]
fn batched_copies_one_per_request() {
    let mut disk_mem = vec![0u8; 4 << 20];
    let cfg = BackendConfig::DEFAULT;
    let info = negotiate(&RamDisk::new(&mut disk_mem), &cfg);
    for (max_segments, pool) in [(11usize, 32 * 11), (64, 8 * 65)] {
        let (front_ring, back_ring) = ring_pair();
        let table = table(pool);
        let side = BatchSide::new(table.clone());
        let backend = Backend::<64>::with_batch(cfg);
        let peer = InlinePeer::new(
            back_ring,
            backend,
            side.clone(),
            RamDisk::new(&mut disk_mem),
        );
        let mut front = BlkFront::new(
            front_ring,
            FrontSide(table.clone()),
            info,
            BlkFrontConfig {
                max_segments,
                persistent: false,
            },
        )
        .unwrap();
        let data = pattern(max_segments as u64, 0, 2 << 20);
        front.write(8, &data, &peer).unwrap();
        let mut back = vec![0u8; data.len()];
        front.read(8, &mut back, &peer).unwrap();
        assert!(back == data);
        let batches = side.batches();
        let requests = front.stats().requests as usize;
        assert_eq!(batches.len(), requests, "one batch per request");
        assert!(batches.iter().all(|&n| n <= max_segments));
        assert_eq!(batches.iter().sum::<usize>(), 2 * (2 << 20) / 4096);
        assert!(front.stats().max_in_flight > 1);
    }
}

/// The page-by-page submit/release calls (as pv-guest's transfer uses them): the ring is
/// kept full of 11-segment requests whose data is produced and checked in the shared
/// pages, no request-sized buffer anywhere.
#[test]
fn page_by_page_pipeline_keeps_the_ring_full() {
    let mut disk_mem = vec![0u8; 4 << 20];
    let cfg = BackendConfig::DEFAULT;
    let info = negotiate(&RamDisk::new(&mut disk_mem), &cfg);
    let (front_ring, back_ring) = ring_pair();
    let table = table(32 * 11);
    let peer = InlinePeer::new(
        back_ring,
        Backend::new(cfg),
        BackSide(table.clone()),
        RamDisk::new(&mut disk_mem),
    );
    let mut front = BlkFront::new(
        front_ring,
        FrontSide(table.clone()),
        info,
        BlkFrontConfig {
            max_segments: 11,
            persistent: true,
        },
    )
    .unwrap();
    assert_eq!(front.nr_ids(), 32);
    let total = 3usize << 20;
    let reference = pattern(42, 0, total);
    let per = front.max_sectors_per_request() as usize * 512;
    for write in [true, false] {
        let (mut next, mut done) = (0usize, 0usize);
        while done < total {
            while next < total && front.can_submit() {
                let n = (total - next).min(per);
                let at = next;
                if write {
                    front
                        .submit_write_with((at / 512) as u64, (n / 512) as u32, &mut |off, part| {
                            part.copy_from_slice(&reference[at + off..at + off + part.len()])
                        })
                        .unwrap();
                } else {
                    front
                        .submit_read((at / 512) as u64, (n / 512) as u32)
                        .unwrap();
                }
                next += n;
            }
            if front.push_requests() {
                peer.notify();
            }
            let mut got = false;
            while let Some(c) = front.poll().unwrap() {
                got = true;
                assert_eq!(c.status, RspStatus::Okay);
                let at = c.sector as usize * 512;
                let mut seen = 0;
                front
                    .release_with(c.id, &mut |off, part| {
                        assert_eq!(part, &reference[at + off..at + off + part.len()]);
                        seen += part.len();
                    })
                    .unwrap();
                assert_eq!(
                    seen,
                    if write {
                        0
                    } else {
                        c.nr_sectors as usize * 512
                    }
                );
                done += c.nr_sectors as usize * 512;
            }
            if !got {
                front.wait_response(&peer).unwrap();
            }
        }
    }
    assert!(disk_mem[..total] == reference[..]);
    assert_eq!(front.stats().max_in_flight, 32);
    assert_eq!(
        front.release_with(0, &mut |_, _| {}),
        Err(BlkError::NotCompleted)
    );
}

/// Persistent grants: the front-end reuses its granted pool, the back-end maps each page
/// once and then moves data by memory copy; with a small limit the rest is copied; the
/// front-end can end its grants only after the back-end dropped its mappings.
#[test]
fn persistent_grants_map_once_and_round_trip() {
    use blkback_core::PersistentGrants;
    let mut disk_mem = vec![0u8; 4 << 20];
    let cfg = BackendConfig::DEFAULT;
    let info = negotiate(&RamDisk::new(&mut disk_mem), &cfg);
    assert!(info.persistent);
    for (limit, max_segments, pool) in [
        (1056usize, 11usize, 8 * 11),
        (5, 11, 8 * 11),
        (1056, 64, 4 * 65),
    ] {
        let (front_ring, back_ring) = ring_pair();
        let table = table(pool);
        let grants: PersistentGrants<_, _, 1056> = PersistentGrants::new(
            FakeMapper(table.clone()),
            BatchSide::new(table.clone()),
            limit,
        );
        let peer = InlinePeer::new(
            back_ring,
            Backend::<16>::with_batch(cfg),
            grants,
            RamDisk::new(&mut disk_mem),
        );
        let mut front = BlkFront::new(
            front_ring,
            FrontSide(table.clone()),
            info,
            BlkFrontConfig {
                max_segments,
                persistent: true,
            },
        )
        .unwrap();
        assert!(front.persistent());
        let data = pattern(limit as u64, 0, 2 << 20);
        front.write(16, &data, &peer).unwrap();
        let mut back = vec![0u8; data.len()];
        front.read(16, &mut back, &peer).unwrap();
        assert!(back == data, "limit {limit}, {max_segments} segments");
        let st = *peer.grants.borrow().stats();
        let mapped = table.lock().unwrap().mapped_refs.len();
        assert_eq!(mapped, peer.grants.borrow().len());
        assert!(mapped <= limit.min(pool));
        assert_eq!(st.maps as usize, mapped, "each grant mapped once");
        assert_eq!(st.map_failures, 0);
        if limit >= pool {
            // Everything through mappings: not one grant copy.
            assert_eq!(st.copies, 0);
            assert!(peer.grants.borrow_mut().copier().batches().is_empty());
            assert!(st.hits > st.maps);
        } else {
            assert!(st.copies > 0);
        }
        // The back-end holds mappings: the front-end cannot end those grants yet...
        use frontend_drivers::blkfront::{FrontGrants, GrantError};
        let held = table.lock().unwrap().mapped_refs[0];
        assert_eq!(
            FrontSide(table.clone()).end_access(xen_abi::GrantRef(held)),
            Err(GrantError::InUse)
        );
        // A teardown now fails (and retires the ids holding those grants)...
        assert_eq!(front.teardown(), Err(BlkError::GrantStillInUse));
        assert!(front.dead_ids() > 0);
        // ...and succeeds once the back-end unmapped them (disconnect), freeing the ids.
        peer.grants.borrow_mut().clear();
        assert_eq!(table.lock().unwrap().mapped_refs.len(), 0);
        front.teardown().unwrap();
        assert_eq!(front.dead_ids(), 0);
        assert_eq!(front.grants_held(), 0);
        assert_eq!(table.lock().unwrap().active(), 0);
    }
}
