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
            let meta = RxMeta { csum_blank: delivered % 2 == 1, data_validated: delivered.is_multiple_of(4), gso: None };
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
        nb.deliver_rx(&mut rxb, &mut g, &small, RxMeta { csum_blank: true, data_validated: true, gso: None }),
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

/// Large TCP-like frames (up to 17 pages) with a GSO extra, batched with plain frames,
/// into netfront: every byte, the checksum flags, the GSO type and size checked; the
/// copies go in batches.
#[test]
fn gso_frames_to_netfront_in_batches() {
    use frontend_drivers::netfront::RxGso;
    use netback_core::{Gso, GsoKind, RxFrameRef, MAX_RX_GSO_PACKET};
    use xen_abi::netif::{XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_GSO_TYPE_TCPV6};
    let cfg = NetFrontConfig { tx_buffers: 2, rx_buffers: 64, backend_sg: true };
    let (mut nf, _txb, mut rxb, mut g) = netfront(cfg);
    let mut nb = Box::new(Netback::new(NetbackConfig {
        rx_sg: true,
        rx_csum_offload: true,
        rx_gso_tcpv4: true,
        rx_gso_tcpv6: true,
        ..NetbackConfig::DEFAULT
    }));
    nf.post_rx().unwrap();
    let len_of = |i: u64| match i % 5 {
        0 => 65_535,
        1 => MAX_RX_GSO_PACKET,
        2 => 1514,
        3 => 4096 * 3 + 17,
        _ => 8000 + (i as usize * 7919) % 50_000,
    };
    let gso_of = |i: u64| match i % 5 {
        2 => None,
        4 => Some(Gso { kind: GsoKind::TcpV6, size: 1440 }),
        _ => Some(Gso { kind: GsoKind::TcpV4, size: 1448 + i as u16 % 7 }),
    };
    let total = 200u64;
    let (mut queued, mut received) = (0u64, 0u64);
    let mut batch: Vec<(u64, RxFrameRef)> = Vec::new();
    let mut buf = vec![0u8; 4 * MAX_RX_GSO_PACKET];
    let mut rbuf = vec![0u8; MAX_RX_GSO_PACKET];
    let mut rounds = 0;
    while received < total {
        rounds += 1;
        assert!(rounds < 10_000, "stuck at {received}");
        if batch.is_empty() {
            // Up to four frames back to back in one buffer.
            let mut at = 0;
            while queued < total && batch.len() < 4 {
                let f = frame(len_of(queued), queued + 7);
                buf[at..at + f.len()].copy_from_slice(&f);
                let gso = gso_of(queued);
                let meta = RxMeta { csum_blank: gso.is_some(), data_validated: true, gso };
                batch.push((queued, RxFrameRef { at, len: f.len(), meta }));
                at += f.len();
                queued += 1;
            }
        }
        let refs: Vec<RxFrameRef> = batch.iter().map(|b| b.1).collect();
        let o = nb.deliver_rx_batch(&mut rxb, &mut g, &mut buf, &refs);
        assert_eq!((o.fatal, o.dropped), (None, 0), "{o:?}");
        assert_eq!(o.delivered as usize, o.taken);
        batch.drain(..o.taken);
        // The rest (if any) wait for buffers, where they are in `buf`.
        while let Some(r) = nf.recv(&mut rbuf).unwrap() {
            let i = received;
            let want = frame(len_of(i), i + 7);
            assert_eq!(r.len, want.len(), "frame {i}");
            assert!(rbuf[..r.len] == want[..], "frame {i}: bytes differ");
            let gso = gso_of(i);
            assert_eq!(r.csum.blank, gso.is_some(), "frame {i}");
            assert!(r.csum.validated, "frame {i}");
            let want_gso = gso.map(|g| RxGso {
                gso_type: match g.kind {
                    GsoKind::TcpV4 => XEN_NETIF_GSO_TYPE_TCPV4,
                    GsoKind::TcpV6 => XEN_NETIF_GSO_TYPE_TCPV6,
                },
                size: g.size,
            });
            assert_eq!(r.gso, want_gso, "frame {i}");
            assert_eq!(r.slots as usize, want.len().div_ceil(4096), "frame {i}");
            received += 1;
        }
        nf.post_rx().unwrap();
    }
    let s = *nb.stats();
    assert_eq!((s.rx_packets, s.rx_dropped), (total, 0));
    assert_eq!(s.rx_gso_packets, (0..total).filter(|&i| gso_of(i).is_some()).count() as u64);
    assert!(s.rx_copy_batches < total, "copies are batched: {s:?}");
    assert_eq!(nf.stats().rx_errors, 0);
    nf.teardown().unwrap();
    assert_eq!(g.live(), 0);
}

/// GSO only for the kinds the front-end asked for; never without scatter-gather.
#[test]
fn gso_refused_unless_asked_for() {
    use netback_core::{Gso, GsoKind, RxDrop};
    let cfg = NetFrontConfig { tx_buffers: 2, rx_buffers: 40, backend_sg: true };
    let (mut nf, _txb, mut rxb, mut g) = netfront(cfg);
    nf.post_rx().unwrap();
    let f = frame(20_000, 3);
    let v6 = RxMeta { csum_blank: true, data_validated: true, gso: Some(Gso { kind: GsoKind::TcpV6, size: 1440 }) };
    let v4 = RxMeta { gso: Some(Gso { kind: GsoKind::TcpV4, size: 1448 }), ..v6 };
    let mut nb = Netback::new(NetbackConfig { rx_sg: true, rx_csum_offload: true, rx_gso_tcpv4: true, ..NetbackConfig::DEFAULT });
    assert!(matches!(nb.deliver_rx(&mut rxb, &mut g, &f, v6), RxOutcome::Dropped { why: RxDrop::GsoRefused, .. }));
    assert!(matches!(nb.deliver_rx(&mut rxb, &mut g, &f, v4), RxOutcome::Delivered { slots: 6, .. }));
    let mut plain = Netback::new(NetbackConfig { rx_sg: true, rx_csum_offload: true, ..NetbackConfig::DEFAULT });
    assert!(matches!(plain.deliver_rx(&mut rxb, &mut g, &f, v4), RxOutcome::Dropped { why: RxDrop::GsoRefused, .. }));
    // Larger than 64 KiB: only as GSO.
    let big = frame(66_000, 4);
    assert!(matches!(nb.deliver_rx(&mut rxb, &mut g, &big, RxMeta { gso: None, ..v4 }), RxOutcome::Dropped { why: RxDrop::TooBig(66_000), .. }));
    let mut rbuf = vec![0u8; 70_000];
    let r = nf.recv(&mut rbuf).unwrap().unwrap();
    assert_eq!(&rbuf[..r.len], &f[..]);
    assert_eq!(r.gso.map(|g| g.size), Some(1448));
}

/// Many small packets from the front-end: one grant copy per batch, not per packet.
#[test]
fn tx_copies_are_batched() {
    let cfg = NetFrontConfig { tx_buffers: 64, rx_buffers: 2, backend_sg: true };
    let (mut nf, mut txb, _rxb, mut g) = netfront(cfg);
    let mut nb = Box::new(Netback::default());
    for i in 0..40u64 {
        nf.send(&frame(60 + i as usize * 100, i), CsumFlags::default()).unwrap();
    }
    let mut got = Vec::new();
    let out = nb.process_tx(&mut txb, &mut g, |p| got.push(p.data.to_vec()));
    assert_eq!((out.packets, out.errors, out.state), (40, 0, TxState::Idle));
    for (i, d) in got.iter().enumerate() {
        assert_eq!(d, &frame(60 + i * 100, i as u64));
    }
    // 80 KB in all: two batches (a batch keeps room for a 64 KiB packet).
    assert!(nb.stats().tx_copy_batches <= 2, "{:?}", nb.stats());
    assert_eq!(nf.reap_tx().unwrap(), 40);
}
