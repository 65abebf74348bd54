//! netfront and netback over in-memory rings and one fake grant table: many frames each
//! way, every byte and flag checked, single- and multi-slot.

mod common;

use common::*;
use frontend_drivers::netfront::{CsumFlags, NetFrontConfig};
use netback_core::{Netback, NetbackConfig, RxMeta, RxOutcome, TxState};

fn sizes(i: u64, sg: bool) -> usize {
    let max = if sg { 20_000 } else { 4096 };
    match i % 7 {
        0 => 14,
        1 => 60,
        2 => 1514,
        3 => 4096,
        _ => 14 + ((i * 7919) as usize % (max - 14)),
    }
}

fn run(sg: bool, frames: u64) {
    let cfg = NetFrontConfig { tx_buffers: 24, rx_buffers: 40, backend_sg: sg };
    let (mut nf, mut txb, mut rxb, mut g) = netfront(cfg);
    let mut nb = Box::new(Netback::new(NetbackConfig { rx_sg: sg, rx_csum_offload: true, ..NetbackConfig::DEFAULT }));
    nf.post_rx().unwrap();
    let mut got: Vec<(Vec<u8>, bool, bool)> = Vec::new();
    let mut buf = vec![0u8; 70_000];
    let (mut sent, mut delivered, mut received) = (0u64, 0u64, 0u64);
    let mut pending: Option<Vec<u8>> = None;
    while received < frames || got.len() < frames as usize {
        // Front-end transmits while it can.
        while sent < frames {
            let f = frame(sizes(sent, sg), sent);
            let csum = CsumFlags { blank: sent % 3 == 1, validated: !sent.is_multiple_of(3) };
            match nf.send(&f, csum) {
                Ok(_) => sent += 1,
                Err(frontend_drivers::netfront::NetError::Busy) => break,
                Err(e) => panic!("send {sent}: {e:?}"),
            }
        }
        let out = nb.process_tx(&mut txb, &mut g, |p| got.push((p.data.to_vec(), p.csum_blank, p.data_validated)));
        assert!(matches!(out.state, TxState::Idle | TxState::MoreWork), "{out:?}");
        assert_eq!(out.errors, 0);
        // Back-end delivers while the front-end has buffers.
        while delivered < frames {
            let f = pending.take().unwrap_or_else(|| frame(sizes(delivered + 1000, sg), delivered + 1000));
            let meta = RxMeta { csum_blank: delivered % 2 == 1, data_validated: delivered.is_multiple_of(4) };
            match nb.deliver_rx(&mut rxb, &mut g, &f, meta) {
                RxOutcome::Delivered { slots, .. } => {
                    assert_eq!(slots as usize, f.len().div_ceil(4096));
                    delivered += 1;
                }
                RxOutcome::NoBuffers => {
                    pending = Some(f);
                    break;
                }
                other => panic!("deliver {delivered}: {other:?}"),
            }
        }
        while let Some(r) = nf.recv(&mut buf).unwrap() {
            let want = frame(sizes(received + 1000, sg), received + 1000);
            assert_eq!(&buf[..r.len], &want[..], "received frame {received}");
            assert_eq!(r.csum.blank, received % 2 == 1, "frame {received}");
            assert_eq!(r.csum.validated, received % 2 == 1 || received.is_multiple_of(4), "frame {received}");
            received += 1;
        }
        nf.post_rx().unwrap();
        nf.reap_tx().unwrap();
    }
    for (i, (data, blank, validated)) in got.iter().enumerate() {
        let i = i as u64;
        assert_eq!(data, &frame(sizes(i, sg), i), "transmitted frame {i}");
        assert_eq!((*blank, *validated), (i % 3 == 1, !i.is_multiple_of(3)), "frame {i}");
    }
    assert_eq!(nf.tx_in_flight(), 0);
    let s = *nb.stats();
    assert_eq!((s.tx_packets, s.rx_packets, s.tx_errors, s.rx_dropped), (frames, frames, 0, 0));
    assert_eq!(nf.stats().rx_errors, 0);
    assert_eq!(nf.stats().tx_errors, 0);
    nf.teardown().unwrap();
    assert_eq!(nf.grants_held(), 0);
    assert_eq!(g.live(), 0);
}

#[test]
fn many_single_slot_frames_each_way() {
    run(false, 3000);
}

#[test]
fn many_multi_slot_frames_each_way() {
    run(true, 1500);
}

#[test]
fn frame_too_big_for_a_non_sg_peer() {
    let (mut nf, _txb, mut rxb, mut g) = netfront(NetFrontConfig::default());
    nf.post_rx().unwrap();
    let mut nb = Netback::default();
    let f = frame(5000, 1);
    assert!(matches!(nb.deliver_rx(&mut rxb, &mut g, &f, RxMeta::default()), RxOutcome::Dropped { .. }));
    assert_eq!(nf.send(&f, CsumFlags::default()), Err(frontend_drivers::netfront::NetError::FrameSize(5000)));
    // csum_blank for a front-end that refused the offload is refused too.
    let small = frame(100, 2);
    assert!(matches!(
        nb.deliver_rx(&mut rxb, &mut g, &small, RxMeta { csum_blank: true, data_validated: true }),
        RxOutcome::Dropped { why: netback_core::RxDrop::CsumOffloadRefused, .. }
    ));
}

#[test]
fn no_buffers_then_notified_when_posted() {
    let cfg = NetFrontConfig { tx_buffers: 2, rx_buffers: 2, backend_sg: false };
    let (mut nf, _txb, mut rxb, mut g) = netfront(cfg);
    let mut nb = Netback::default();
    let f = frame(200, 3);
    assert_eq!(nb.deliver_rx(&mut rxb, &mut g, &f, RxMeta::default()), RxOutcome::NoBuffers);
    // The back-end asked for an event on the next buffer: posting raises one.
    assert!(nf.post_rx().unwrap());
    assert!(matches!(nb.deliver_rx(&mut rxb, &mut g, &f, RxMeta::default()), RxOutcome::Delivered { slots: 1, .. }));
    let mut buf = [0u8; 4096];
    let r = nf.recv(&mut buf).unwrap().unwrap();
    assert_eq!(&buf[..r.len], &f[..]);
}
