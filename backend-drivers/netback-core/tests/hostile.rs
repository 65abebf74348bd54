//! A hostile front-end writing raw requests: every malformed packet gets
//! `NETIF_RSP_ERROR` on each slot (and the interface keeps working) or a typed
//! disconnect, never a panic; and a hostile back-end against netfront.

mod common;

use common::*;
use frontend_drivers::netfront::{FrontGrants, NetError, NetFrontConfig};
use netback_core::{Fatal, Gso, GsoKind, Netback, RxMeta, RxOutcome, TxState};
use proptest::prelude::*;
use xen_abi::netif::*;
use zerocopy::IntoBytes;

/// A front-end's grant table with `n` pages granted read-only (refs 8..8+n), page i
/// filled with byte i+1.
fn granted(n: usize) -> (Grants, Vec<u32>) {
    let mut g = Grants::new(n);
    let refs = (0..n)
        .map(|i| {
            g.write_page(i, 0, &[i as u8 + 1; PAGE]);
            g.grant(i, true).unwrap().0
        })
        .collect();
    (g, refs)
}

fn req(gref: u32, offset: u16, flags: u16, id: u16, size: u16) -> NetifTxRequest {
    NetifTxRequest { gref, offset, flags, id, size }
}

fn extra(type_: u8, flags: u8, gso: Option<(u16, u8)>) -> NetifTxRequest {
    let mut e = NetifExtraInfo { type_, flags, ..Default::default() };
    if let Some((size, t)) = gso {
        e.set_gso(size, t, 0);
    }
    let mut r = NetifTxRequest::default();
    r.as_mut_bytes()[..8].copy_from_slice(e.as_bytes());
    r
}

struct Run {
    state: TxState,
    packets: Vec<(Vec<u8>, Option<Gso>)>,
    responses: Vec<NetifTxResponse>,
}

/// Publishes `reqs` and lets a fresh back-end process them.
fn run(reqs: &[NetifTxRequest], g: &mut Grants) -> Run {
    let (mut f, mut b) = pair::<NetifTxRequest, NetifTxResponse>(0);
    for r in reqs {
        f.write_request(*r).unwrap();
    }
    f.push_requests();
    let mut nb = Box::new(Netback::default());
    let mut packets = Vec::new();
    let out = nb.process_tx(&mut b, g, |p| packets.push((p.data.to_vec(), p.gso)));
    let mut responses = Vec::new();
    while let Ok(Some(r)) = f.read_response() {
        responses.push(r);
    }
    Run { state: out.state, packets, responses }
}

fn statuses(r: &Run) -> Vec<(u16, i16)> {
    r.responses.iter().map(|r| (r.id, r.status)).collect()
}

#[test]
fn good_packet_with_gso_and_fragments() {
    let (mut g, refs) = granted(3);
    let m = NETTXF_more_data;
    let reqs = [
        req(refs[0], 100, m | NETTXF_extra_info | NETTXF_csum_blank, 1, 3000),
        extra(XEN_NETIF_EXTRA_TYPE_GSO, 0, Some((1448, XEN_NETIF_GSO_TYPE_TCPV4))),
        req(refs[1], 0, m, 2, 2000),
        req(refs[2], 4000, 0, 3, 96),
    ];
    let r = run(&reqs, &mut g);
    assert_eq!(r.state, TxState::Idle);
    assert_eq!(statuses(&r), [(1, NETIF_RSP_OKAY), (0, NETIF_RSP_NULL), (2, NETIF_RSP_OKAY), (3, NETIF_RSP_OKAY)]);
    assert_eq!(r.packets.len(), 1);
    let (data, gso) = &r.packets[0];
    assert_eq!(data.len(), 3000);
    assert!(data[..904].iter().all(|&b| b == 1) && data[904..2904].iter().all(|&b| b == 2) && data[2904..].iter().all(|&b| b == 3));
    assert_eq!(*gso, Some(Gso { kind: GsoKind::TcpV4, size: 1448 }));
}

#[test]
fn malformed_packets_get_errors_and_the_ring_goes_on() {
    let (mut g, refs) = granted(2);
    let m = NETTXF_more_data;
    let good = req(refs[0], 0, 0, 99, 60);
    type Case = (&'static str, Vec<NetifTxRequest>, Vec<(u16, i16)>);
    let cases: Vec<Case> = vec![
        ("bad gref", vec![req(4000, 0, 0, 1, 60)], vec![(1, NETIF_RSP_ERROR)]),
        ("bad gref in a fragment", vec![req(refs[0], 0, m, 1, 100), req(77, 0, 0, 2, 40)], vec![(1, NETIF_RSP_ERROR), (2, NETIF_RSP_ERROR)]),
        ("runt", vec![req(refs[0], 0, 0, 1, 13)], vec![(1, NETIF_RSP_ERROR)]),
        ("first slot runt after fragments", vec![req(refs[0], 0, m, 1, 100), req(refs[1], 0, 0, 2, 90)], vec![(1, NETIF_RSP_ERROR), (2, NETIF_RSP_ERROR)]),
        ("fragment bigger than the rest", vec![req(refs[0], 0, m, 1, 100), req(refs[1], 0, 0, 2, 101)], vec![(1, NETIF_RSP_ERROR), (2, NETIF_RSP_ERROR)]),
        ("multicast add", vec![req(refs[0], 0, NETTXF_extra_info, 1, 0), extra(XEN_NETIF_EXTRA_TYPE_MCAST_ADD, 0, None)], vec![(1, NETIF_RSP_OKAY), (0, NETIF_RSP_NULL)]),
    ];
    for (name, mut reqs, mut want) in cases {
        reqs.push(good);
        want.push((99, NETIF_RSP_OKAY));
        let r = run(&reqs, &mut g);
        assert_eq!(r.state, TxState::Idle, "{name}");
        assert_eq!(statuses(&r), want, "{name}");
        assert_eq!(r.packets.len(), 1, "{name}: only the good packet");
        assert_eq!(r.packets[0].0, vec![1u8; 60], "{name}");
    }
    // 18 fragments pass; 19 and 20 (not yet the fatal threshold) are dropped with an
    // error on each slot.
    for (frags, ok) in [(18usize, true), (19, false), (20, false)] {
        let mut reqs = vec![req(refs[0], 0, m, 0, 100 + frags as u16)];
        for i in 0..frags {
            reqs.push(req(refs[1], 0, if i + 1 < frags { m } else { 0 }, 1 + i as u16, 1));
        }
        reqs.push(good);
        let r = run(&reqs, &mut g);
        assert_eq!(r.state, TxState::Idle);
        let st = if ok { NETIF_RSP_OKAY } else { NETIF_RSP_ERROR };
        let mut want: Vec<(u16, i16)> = (0..=frags as u16).map(|i| (i, st)).collect();
        want.push((99, NETIF_RSP_OKAY));
        assert_eq!(statuses(&r), want, "{frags} fragments");
        assert_eq!(r.packets.len(), if ok { 2 } else { 1 });
    }
}

#[test]
fn protocol_violations_disconnect() {
    let (mut g, refs) = granted(2);
    let m = NETTXF_more_data;
    let x = NETTXF_extra_info;
    let many = |n: usize| {
        let mut v = vec![req(refs[0], 0, m, 0, 5000)];
        v.extend((0..n).map(|i| req(refs[1], 0, m, 1 + i as u16, 1)));
        v
    };
    let cases: Vec<(&str, Vec<NetifTxRequest>, Fatal)> = vec![
        ("more_data on the last slot", vec![req(refs[0], 0, m, 1, 100)], Fatal::MissingSlots { needed: 1, published: 0 }),
        ("extra info missing", vec![req(refs[0], 0, x, 1, 100)], Fatal::MissingExtra),
        ("extra type 0", vec![req(refs[0], 0, x, 1, 100), extra(0, 0, None)], Fatal::BadExtraType(0)),
        ("extra type past max", vec![req(refs[0], 0, x, 1, 100), extra(XEN_NETIF_EXTRA_TYPE_MAX, 0, None)], Fatal::BadExtraType(XEN_NETIF_EXTRA_TYPE_MAX)),
        ("extra chain runs off", vec![req(refs[0], 0, x, 1, 100), extra(XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_EXTRA_FLAG_MORE, Some((1, 1)))], Fatal::MissingExtra),
        ("gso size 0", vec![req(refs[0], 0, x, 1, 100), extra(XEN_NETIF_EXTRA_TYPE_GSO, 0, Some((0, XEN_NETIF_GSO_TYPE_TCPV4)))], Fatal::GsoSizeZero),
        ("gso type 9", vec![req(refs[0], 0, x, 1, 100), extra(XEN_NETIF_EXTRA_TYPE_GSO, 0, Some((1448, 9)))], Fatal::BadGsoType(9)),
        ("fragment crosses its page", vec![req(refs[0], 0, m, 1, 200), req(refs[1], 4000, 0, 2, 100)], Fatal::CrossPage { offset: 4000, size: 100 }),
        ("first slot crosses its page", vec![req(refs[0], 4090, 0, 1, 100)], Fatal::CrossPage { offset: 4090, size: 100 }),
        ("more than 20 fragments", many(21), Fatal::TooManySlots(20)),
    ];
    for (name, reqs, fatal) in cases {
        let r = run(&reqs, &mut g);
        assert_eq!(r.state, TxState::Disconnect(fatal), "{name}");
        assert!(r.packets.is_empty(), "{name}");
    }
    // An impossible req_prod (2^31 requests ahead); an empty ring is just idle.
    let (_f, mut b) = pair::<NetifTxRequest, NetifTxResponse>(0);
    let (mut hf, mut hb) = pair::<NetifTxRequest, NetifTxResponse>(0x8000_0000);
    hf.write_request(req(refs[0], 0, 0, 1, 60)).unwrap();
    hf.push_requests();
    let out = Netback::default().process_tx(&mut hb, &mut g, |_| panic!("no packet"));
    assert!(matches!(out.state, TxState::Disconnect(Fatal::Ring(_))), "{out:?}");
    let out = Netback::default().process_tx(&mut b, &mut g, |_| panic!("no packet"));
    assert_eq!(out.state, TxState::Idle);
}

#[test]
fn rx_buffer_with_a_bad_grant_gets_an_error() {
    let (mut f, mut b) = pair::<NetifRxRequest, NetifRxResponse>(0);
    let mut g = Grants::new(1);
    let good = g.grant(0, false).unwrap().0;
    let ro = g.grant(0, true).unwrap().0;
    for (id, gref) in [(5u16, 9999u32), (6, ro), (7, good)] {
        f.write_request(NetifRxRequest { id, pad: 0, gref }).unwrap();
    }
    f.push_requests();
    let mut nb = Netback::default();
    let pkt = frame(300, 9);
    for _ in 0..2 {
        assert!(matches!(nb.deliver_rx(&mut b, &mut g, &pkt, RxMeta::default()), RxOutcome::Dropped { .. }));
    }
    assert!(matches!(nb.deliver_rx(&mut b, &mut g, &pkt, RxMeta::default()), RxOutcome::Delivered { slots: 1, .. }));
    let rs: Vec<_> = std::iter::from_fn(|| f.read_response().unwrap()).map(|r| (r.id, r.status)).collect();
    assert_eq!(rs, [(5, NETIF_RSP_ERROR), (6, NETIF_RSP_ERROR), (7, 300)]);
}

#[test]
fn hostile_backend_against_netfront() {
    let cfg = NetFrontConfig { tx_buffers: 4, rx_buffers: 4, backend_sg: true };
    let (mut nf, mut txb, mut rxb, _g) = netfront(cfg);
    nf.post_rx().unwrap();
    // A response whose offset + size runs off the page: dropped, counted.
    let r = rxb.read_request().unwrap().unwrap();
    rxb.write_response(NetifRxResponse { id: r.id, offset: 4000, flags: 0, status: 200 }).unwrap();
    // An error status: dropped.
    let r = rxb.read_request().unwrap().unwrap();
    rxb.write_response(NetifRxResponse { id: r.id, offset: 0, flags: 0, status: NETIF_RSP_ERROR }).unwrap();
    rxb.push_responses();
    let mut buf = [0u8; 8192];
    assert_eq!(nf.recv(&mut buf), Ok(None));
    assert_eq!(nf.stats().rx_errors, 2);
    // A response with someone else's id: the back-end is broken.
    let r = rxb.read_request().unwrap().unwrap();
    rxb.write_response(NetifRxResponse { id: r.id + 1, offset: 0, flags: 0, status: 10 }).unwrap();
    rxb.push_responses();
    assert!(matches!(nf.recv(&mut buf), Err(NetError::BadRxResponseId { .. })));
    // A transmit response for nothing in flight.
    nf.send(&frame(60, 1), Default::default()).unwrap();
    let t = txb.read_request().unwrap().unwrap();
    txb.write_response(NetifTxResponse { id: t.id + 2, status: 0 }).unwrap();
    txb.push_responses();
    assert_eq!(nf.reap_tx(), Err(NetError::BadTxResponseId(t.id + 2)));
}

fn arb_req() -> impl Strategy<Value = NetifTxRequest> {
    (prop_oneof![Just(8u32), Just(9), Just(10), any::<u32>()], 0u16..4200, 0u16..16, any::<u16>(), prop_oneof![0u16..100, 0u16..5000, any::<u16>()])
        .prop_map(|(gref, offset, flags, id, size)| req(gref, offset, flags, id, size))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Any sequence of slots: no panic; unless disconnected, every consumed slot is
    /// answered exactly once (responses == requests), and every packet handed on is
    /// between ETH_HLEN and 65535 bytes and matches the first slot's size.
    #[test]
    fn hostile_tx_never_panics(reqs in proptest::collection::vec(arb_req(), 1..40)) {
        let (mut g, _) = granted(3);
        let r = run(&reqs, &mut g);
        if !matches!(r.state, TxState::Disconnect(_)) {
            prop_assert_eq!(r.responses.len(), reqs.len());
        }
        for (p, _) in &r.packets {
            prop_assert!(p.len() >= netback_core::ETH_HLEN);
        }
    }

    /// Receive buffers with arbitrary grants, packets of arbitrary sizes: no panic, one
    /// response per consumed buffer.
    #[test]
    fn hostile_rx_never_panics(grefs in proptest::collection::vec(prop_oneof![Just(8u32), any::<u32>()], 1..40), lens in proptest::collection::vec(0usize..70_000, 1..10), sg in any::<bool>()) {
        let (mut f, mut b) = pair::<NetifRxRequest, NetifRxResponse>(0);
        let mut g = Grants::new(1);
        g.grant(0, false).unwrap();
        for (i, &gref) in grefs.iter().enumerate() {
            f.write_request(NetifRxRequest { id: i as u16, pad: 0, gref }).unwrap();
        }
        f.push_requests();
        let mut nb = Netback::new(netback_core::NetbackConfig { rx_sg: sg, ..Default::default() });
        let mut consumed = 0;
        for len in lens {
            let pkt = vec![0xa5u8; len];
            match nb.deliver_rx(&mut b, &mut g, &pkt, RxMeta::default()) {
                RxOutcome::Delivered { slots, .. } => consumed += slots as usize,
                RxOutcome::Dropped { why: netback_core::RxDrop::GrantFailed, .. } => consumed += len.div_ceil(4096),
                RxOutcome::Disconnect(e) => prop_assert!(false, "disconnect {:?}", e),
                _ => {}
            }
        }
        let mut n = 0;
        while let Ok(Some(_)) = f.read_response() { n += 1; }
        prop_assert_eq!(n, consumed);
    }

    /// Receive buffers with arbitrary ids and grants, GSO and plain packets of
    /// arbitrary sizes and flags, for any configuration, one at a time and in batches:
    /// no panic, never a disconnect on a sane ring, one response per consumed buffer
    /// (a GSO extra-info slot uses one up).
    #[test]
    fn hostile_rx_buffers_with_gso_never_panic(
        bufs in proptest::collection::vec((any::<u16>(), prop_oneof![Just(8u32), Just(9), any::<u32>()]), 1..60),
        pkts in proptest::collection::vec((0usize..75_000, any::<bool>(), 0u8..4, any::<u16>()), 1..12),
        cfg in (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
        batch in any::<bool>(),
    ) {
        use netback_core::{Gso, GsoKind, NetbackConfig, RxDrop, RxFrameRef};
        let (mut f, mut b) = pair::<NetifRxRequest, NetifRxResponse>(0);
        let mut g = Grants::new(2);
        g.grant(0, false).unwrap();
        g.grant(1, true).unwrap();
        for &(id, gref) in &bufs {
            f.write_request(NetifRxRequest { id, pad: 0, gref }).unwrap();
        }
        f.push_requests();
        let (rx_sg, rx_csum_offload, rx_gso_tcpv4, rx_gso_tcpv6) = cfg;
        let mut nb = Box::new(Netback::new(NetbackConfig { rx_sg, rx_csum_offload, rx_gso_tcpv4, rx_gso_tcpv6, ..NetbackConfig::DEFAULT }));
        let metas: Vec<(usize, RxMeta)> = pkts.iter().map(|&(len, blank, k, size)| {
            let gso = match k {
                1 => Some(Gso { kind: GsoKind::TcpV4, size }),
                2 => Some(Gso { kind: GsoKind::TcpV6, size }),
                _ => None,
            };
            (len, RxMeta { csum_blank: blank, data_validated: !blank, gso })
        }).collect();
        let mut consumed = 0usize;
        if batch {
            let mut buf = vec![0x5au8; metas.iter().map(|m| m.0).sum::<usize>() + 8];
            let mut at = 0;
            let frames: Vec<RxFrameRef> = metas.iter().map(|&(len, meta)| {
                let r = RxFrameRef { at, len, meta };
                at += len;
                r
            }).collect();
            // A frame claiming bytes past the buffer: refused, not a panic.
            let mut frames = frames;
            frames.push(RxFrameRef { at: buf.len() - 4, len: 100, meta: RxMeta::default() });
            let o = nb.deliver_rx_batch(&mut b, &mut g, &mut buf, &frames);
            prop_assert!(o.fatal.is_none(), "{:?}", o);
            prop_assert!(o.taken <= frames.len());
            prop_assert_eq!(o.delivered + o.dropped, o.taken as u32);
            let mut n = 0;
            while let Ok(Some(_)) = f.read_response() { n += 1; }
            prop_assert!(n <= bufs.len());
        } else {
            for &(len, meta) in &metas {
                let pkt = vec![0xa5u8; len];
                let slots = len.div_ceil(4096) + usize::from(meta.gso.is_some());
                match nb.deliver_rx(&mut b, &mut g, &pkt, meta) {
                    RxOutcome::Delivered { slots: s, .. } => {
                        prop_assert_eq!(s as usize, slots);
                        consumed += slots;
                    }
                    RxOutcome::Dropped { why: RxDrop::GrantFailed, .. } => consumed += slots,
                    RxOutcome::Disconnect(e) => prop_assert!(false, "disconnect {:?}", e),
                    _ => {}
                }
            }
            let mut n = 0;
            while let Ok(Some(_)) = f.read_response() { n += 1; }
            prop_assert_eq!(n, consumed);
        }
    }

    /// Checksum location on arbitrary bytes: no panic, and any location found is in
    /// the frame.
    #[test]
    fn csum_locate_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200), ip6 in any::<bool>()) {
        let mut f = bytes;
        if f.len() > 14 {
            f[12] = if ip6 { 0x86 } else { 0x08 };
            f[13] = if ip6 { 0xdd } else { 0x00 };
            f[14] = (f[14] & 0x0f) | if ip6 { 0x60 } else { 0x40 };
        }
        if let Ok(l4) = netback_core::csum::locate(&f) {
            prop_assert!(l4.start + l4.csum_offset + 2 <= f.len());
            prop_assert!(l4.start + l4.len <= f.len());
            let mut g = f.clone();
            netback_core::csum::fill(&mut g, &l4);
            prop_assert_eq!(netback_core::csum::verify(&g), Ok(true));
        }
    }

    /// netfront's protocol parser on arbitrary bytes: no panic.
    #[test]
    fn netproto_parse_any_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = frontend_drivers::netproto::parse(&bytes);
    }
}
