//! `netback`: the netif back-end as a dom0 daemon. Each virtual interface becomes a TAP
//! device `vif<domid>.<devid>` (the name Linux's netback gives its interface), added to
//! the bridge the toolstack named, and frames are shuttled between it and the
//! front-end's rings.
//!
//! Ring processing, checksum and virtio-net header handling and the xenbus key checks
//! are `netback_core`'s; this module wires them to Linux: the xenstore socket ([`Xs`]),
//! `/dev/xen/evtchn` ([`crate::sys::Evtchn`]), and `/dev/xen/gntdev` and
//! `/dev/net/tun` ([`crate::netsys`]).
//!
//! For each `/local/domain/0/backend/vif/<domid>/<devid>`: publish the features,
//! `InitWait`; when the front-end is `Connected` (or `Initialised`) read its keys, map
//! both rings, bind the event channel(s), create the TAP (MAC `fe:ff:ff:ff:ff:ff` as
//! Linux's netback gives its side, checksum offload towards the front-end when it takes
//! it), bring it up, join the bridge, `hotplug-status` = `connected`, `Connected`. When
//! the front-end goes `Closing`/`Closed` (or its directory disappears): unmap, unbind,
//! delete the TAP, `Closing`, then `Closed`. When the toolstack removes the back-end
//! directory (`xl destroy`) the interface is dropped without writing anything; every
//! write under the back-end directory is a transaction that first checks the directory
//! still exists, so a removal racing with a state change cannot leave a stale entry.
//! A front-end that breaks the protocol (`netback_core`'s `TxState::Disconnect`) loses
//! its interface (unmapped, unbound, TAP deleted, `Closing`); its bad packets are
//! answered with errors, the first one logged and the rest counted.

use crate::netsys::{self, MappedNetRings, NetGntdev, Tap};
use crate::sys::{self, Evtchn};
use crate::xs::Xs;
use netback_core::csum::{self, VnetHdr, VNET_HDR_LEN};
use netback_core::xenbus::{self as keys, BackendFeatures, EventChannels, FrontendConfig};
use netback_core::{CopyDir, CopySeg, GrantAccess, Netback as Core, NetbackConfig, RxFrameRef, TxState, MAX_RX_GSO_PACKET, RX_BATCH};
use std::collections::BTreeMap;

/// Where the toolstack creates our interfaces.
pub const VIF_ROOT: &str = "/local/domain/0/backend/vif";
/// The MAC of the host side of every interface (as Linux's netback: never chosen by a
/// bridge as its own address).
const HOST_MAC: [u8; 6] = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff];
/// Frames read from one TAP per round at most.
const RX_BUDGET: usize = 128;
/// Room one TAP read needs: a virtio-net header and the largest (GSO) frame.
const TAP_FRAME_MAX: usize = VNET_HDR_LEN + MAX_RX_GSO_PACKET;
/// Frames read from the TAP are queued here, back to back, and placed into the
/// front-end's buffers a batch at a time (one grant-copy ioctl, one push, one event).
const RX_QUEUE_BYTES: usize = 256 * 1024;

use crate::daemon::{self, may_close, next_step, state_of, Phase, Step, CLOSED, CLOSING, CONNECTED, INIT_WAIT};
pub use crate::daemon::{Error, Result};

/// Grant copies for the core, through gntdev.
struct Copier<'a>(&'a NetGntdev);

impl GrantAccess for Copier<'_> {
    fn copy(&mut self, dir: CopyDir, segs: &mut [CopySeg], local: &mut [u8]) {
        self.0.copy(dir, segs, local)
    }
}

/// A connected interface.
#[derive(Debug)]
struct Conn {
    rings: MappedNetRings,
    gnt: NetGntdev,
    tap: Tap,
    /// Our ports: transmit and receive (the same for a shared channel).
    tx_port: u32,
    rx_port: u32,
    cfg: NetbackConfig,
    /// Frames read from the TAP (at `RxFrameRef::at` in `rx_buf`); those from
    /// `rx_head` on wait for receive buffers.
    rx_buf: Vec<u8>,
    rx_queue: Vec<RxFrameRef>,
    rx_head: usize,
    /// A transmitted packet with its virtio-net header, for the TAP write.
    tx_frame: Vec<u8>,
    /// Serve the transmit ring again without waiting for an event.
    more_tx: bool,
    /// Try the receive side (buffers may have been posted).
    more_rx: bool,
    tx_frames: u64,
    rx_frames: u64,
    dropped: u64,
    /// Packets from the front-end answered with `NETIF_RSP_ERROR` (the first is logged,
    /// the rest counted: a hostile front-end must not flood the log).
    tx_errors: u64,
    /// Counters for the disconnect line (where the time goes).
    n: Counters,
}

/// Per-interface work counters, logged at disconnect.
#[derive(Debug, Default)]
struct Counters {
    /// `serve_tx` / `serve_rx` rounds that did something.
    tx_rounds: u64,
    rx_rounds: u64,
    /// Packets with a GSO extra from the front-end; frames with GSO to it.
    tx_gso: u64,
    rx_gso: u64,
    /// TAP writes and reads (frames).
    tap_writes: u64,
    tap_reads: u64,
    /// Events sent to the front-end.
    tx_notifies: u64,
    rx_notifies: u64,
    /// Receive rounds that stopped for want of buffers.
    rx_no_buffers: u64,
}

impl Conn {
    /// Frames from the TAP still wait for receive buffers.
    fn rx_waiting(&self) -> bool {
        self.rx_head < self.rx_queue.len()
    }
}

#[derive(Debug)]
struct Device {
    be: String,
    fe: String,
    fe_id: u16,
    devid: u32,
    phase: Phase,
    bridge: Option<String>,
    conn: Option<Conn>,
}

/// The daemon: one xenstore connection, one event-channel handle, every interface.
#[derive(Debug)]
pub struct Netback {
    xs: Xs,
    evtchn: Evtchn,
    core: Box<Core>,
    devices: BTreeMap<(u16, u32), Device>,
}

impl Netback {
    pub fn new() -> Result<Netback> {
        let mut xs = Xs::open()?;
        xs.watch(VIF_ROOT, "vif")?;
        Ok(Netback { xs, evtchn: Evtchn::open()?, core: Box::default(), devices: BTreeMap::new() })
    }

    /// Serves until an unrecoverable error.
    pub fn run(&mut self) -> Result<()> {
        self.rescan()?;
        loop {
            let busy = self.devices.values().filter_map(|d| d.conn.as_ref()).any(|c| c.more_tx);
            let mut fds = vec![self.xs.fd(), self.evtchn.fd()];
            let taps: Vec<(u16, u32)> = self
                .devices
                .iter()
                .filter_map(|(k, d)| d.conn.as_ref().filter(|c| !c.rx_waiting()).map(|c| (*k, c.tap.fd())))
                .map(|(k, fd)| {
                    fds.push(fd);
                    k
                })
                .collect();
            let timeout = if busy || !self.xs.events.is_empty() { 0 } else { 1000 };
            let ready = sys::poll_readable(&fds, timeout)?;
            let mut store_changed = !self.xs.events.is_empty();
            self.xs.events.clear();
            if ready[0] && self.xs.read_event()?.is_some() {
                store_changed = true;
            }
            if ready[1] {
                for p in self.evtchn.pending()? {
                    for c in self.devices.values_mut().filter_map(|d| d.conn.as_mut()) {
                        if c.tx_port == p {
                            c.more_tx = true;
                        }
                        if c.rx_port == p {
                            c.more_rx = true;
                        }
                    }
                }
            }
            for (k, r) in taps.iter().zip(&ready[2..]) {
                if *r {
                    if let Some(c) = self.devices.get_mut(k).and_then(|d| d.conn.as_mut()) {
                        c.more_rx = true;
                    }
                }
            }
            self.serve();
            if store_changed {
                self.rescan()?;
            }
        }
    }

    fn serve(&mut self) {
        let mut failed = Vec::new();
        for (key, d) in self.devices.iter_mut() {
            let Some(c) = d.conn.as_mut() else { continue };
            self.core.set_config(c.cfg);
            let broke = serve_tx(&mut self.core, &self.evtchn, c, &d.be)
                .and_then(|_| serve_rx(&mut self.core, &self.evtchn, c));
            if let Err(why) = broke {
                eprintln!("netback: {}: {why}; disconnecting", d.be);
                failed.push(*key);
            }
        }
        for k in failed {
            if let Some(d) = self.devices.get_mut(&k) {
                disconnect(&self.evtchn, d);
                d.phase = Phase::Closing;
                let _ = set_state(&mut self.xs, d, CLOSING);
            }
        }
    }

    /// Picks up new interfaces, drops removed ones, and moves each along the handshake.
    fn rescan(&mut self) -> Result<()> {
        let present = daemon::list_devices(&mut self.xs, VIF_ROOT);
        for k in daemon::removed(&self.devices, &present) {
            if let Some(mut d) = self.devices.remove(&k) {
                disconnect(&self.evtchn, &mut d);
                let _ = self.xs.unwatch(&format!("{}/state", d.fe), "fe");
                eprintln!("netback: {}: removed by the toolstack", d.be);
            }
        }
        for k in present {
            let d = self.devices.entry(k).or_insert_with(|| Device {
                be: format!("{VIF_ROOT}/{}/{}", k.0, k.1),
                fe: String::new(),
                fe_id: k.0,
                devid: k.1,
                phase: Phase::New,
                bridge: None,
                conn: None,
            });
            if let Err(e) = step(&mut self.xs, &self.evtchn, d) {
                eprintln!("netback: {e}");
                disconnect(&self.evtchn, d);
                d.phase = Phase::Failed;
                let _ = set_state(&mut self.xs, d, CLOSING);
            }
        }
        Ok(())
    }
}

/// Front-end to TAP: the core takes packets off the ring in batches (one grant-copy
/// ioctl each); each packet is one TAP write (a GSO packet stays one frame, the
/// virtio-net header carrying its segmentation).
fn serve_tx(core: &mut Core, evtchn: &Evtchn, c: &mut Conn, be: &str) -> std::result::Result<(), String> {
    if !c.more_tx {
        return Ok(());
    }
    c.n.tx_rounds += 1;
    let (tap, gnt, frame) = (&c.tap, &c.gnt, &mut c.tx_frame);
    let (mut sent, mut dropped, mut gso) = (0u64, 0u64, 0u64);
    let out = core.process_tx(&mut c.rings.tx, &mut Copier(gnt), |p| {
        frame.clear();
        frame.extend_from_slice(&[0; VNET_HDR_LEN]);
        frame.extend_from_slice(p.data);
        match csum::vnet_for_tx(&mut frame[VNET_HDR_LEN..], p) {
            Ok(h) => {
                frame[..VNET_HDR_LEN].copy_from_slice(&h.to_bytes());
                gso += u64::from(p.gso.is_some());
                match tap.write(frame) {
                    Ok(()) => sent += 1,
                    Err(_) => dropped += 1,
                }
            }
            // A blank checksum nobody can fill in: dropped, as Linux's netback does.
            Err(_) => dropped += 1,
        }
    });
    c.tx_frames += sent;
    c.dropped += dropped;
    c.n.tx_gso += gso;
    c.n.tap_writes += sent + dropped;
    if out.errors > 0 && c.tx_errors == 0 {
        eprintln!("netback: {be}: bad packet from the front-end answered with errors (more are counted)");
    }
    c.tx_errors += u64::from(out.errors);
    if out.notify {
        c.n.tx_notifies += 1;
        let _ = evtchn.notify(c.tx_port);
    }
    match out.state {
        TxState::Idle => c.more_tx = false,
        TxState::MoreWork => c.more_tx = true,
        TxState::Disconnect(f) => return Err(format!("front-end broke the transmit ring ({f})")),
    }
    Ok(())
}

/// TAP to front-end: frames are read into the interface's queue (up to a batch, or
/// until the TAP is empty) and placed into the front-end's buffers a batch at a time
/// (one grant-copy ioctl, one push, at most one event per round). Frames that find no
/// buffers wait in the queue (the TAP is not read meanwhile) until the front-end posts
/// more.
fn serve_rx(core: &mut Core, evtchn: &Evtchn, c: &mut Conn) -> std::result::Result<(), String> {
    if !c.more_rx {
        return Ok(());
    }
    c.more_rx = false;
    c.n.rx_rounds += 1;
    let mut notify = false;
    let mut result = Ok(());
    let mut reads = 0;
    let mut drained = false;
    loop {
        if c.rx_waiting() {
            let o = core.deliver_rx_batch(&mut c.rings.rx, &mut Copier(&c.gnt), &mut c.rx_buf, &c.rx_queue[c.rx_head..]);
            notify |= o.notify;
            c.n.rx_gso += c.rx_queue[c.rx_head..c.rx_head + o.taken].iter().filter(|f| f.meta.gso.is_some()).count() as u64;
            c.rx_frames += u64::from(o.delivered);
            c.dropped += u64::from(o.dropped);
            c.rx_head += o.taken;
            if let Some(f) = o.fatal {
                result = Err(format!("front-end broke the receive ring ({f})"));
                break;
            }
            if c.rx_waiting() {
                c.n.rx_no_buffers += 1;
                break;
            }
        }
        c.rx_queue.clear();
        c.rx_head = 0;
        if drained {
            break;
        }
        if reads >= RX_BUDGET {
            // More frames may be queued on the TAP: come back without waiting for poll.
            c.more_rx = true;
            break;
        }
        let mut at = 0;
        while c.rx_queue.len() < RX_BATCH && at + TAP_FRAME_MAX <= c.rx_buf.len() {
            let len = match c.tap.read(&mut c.rx_buf[at..at + TAP_FRAME_MAX]) {
                Ok(Some(len)) => len,
                Ok(None) => {
                    drained = true;
                    break;
                }
                Err(e) => {
                    result = Err(format!("reading {}: {e}", c.tap.name()));
                    break;
                }
            };
            reads += 1;
            c.n.tap_reads += 1;
            let Some(h) = VnetHdr::from_bytes(&c.rx_buf[at..at + len]) else { continue };
            let frame = &mut c.rx_buf[at + VNET_HDR_LEN..at + len];
            match csum::rx_meta(&h, frame, &c.cfg) {
                Ok(meta) => {
                    c.rx_queue.push(RxFrameRef { at: at + VNET_HDR_LEN, len: frame.len(), meta });
                    at += len;
                }
                Err(_) => c.dropped += 1,
            }
        }
        if result.is_err() || c.rx_queue.is_empty() {
            break;
        }
    }
    if notify {
        c.n.rx_notifies += 1;
        let _ = evtchn.notify(c.rx_port);
    }
    result
}

/// Unmaps the rings, unbinds the channels and deletes the TAP (idempotent).
fn disconnect(evtchn: &Evtchn, d: &mut Device) {
    if let Some(c) = d.conn.take() {
        let _ = evtchn.unbind(c.tx_port);
        if c.rx_port != c.tx_port {
            let _ = evtchn.unbind(c.rx_port);
        }
        eprintln!(
            "netback: {}: disconnected ({} frames from the front-end, {} to it, {} dropped, {} bad packets answered with errors); {} deleted",
            d.be,
            c.tx_frames,
            c.rx_frames,
            c.dropped,
            c.tx_errors,
            c.tap.name()
        );
        let n = &c.n;
        eprintln!(
            "netback: {}: work: tx {} rounds, {} GSO packets, {} TAP writes, {} events; rx {} rounds, {} TAP reads, {} GSO frames, {} events, {} waits for buffers; {} grant-copy ioctls",
            d.be, n.tx_rounds, n.tx_gso, n.tap_writes, n.tx_notifies, n.rx_rounds, n.tap_reads, n.rx_gso, n.rx_notifies, n.rx_no_buffers, c.gnt.copy_ioctls()
        );
        // `c` drops here: the TAP closes (and goes away), the rings, then the mappings.
    }
}

fn dev_err(d: &Device, what: impl std::fmt::Display) -> Error {
    Error::Device(d.be.clone(), what.to_string())
}

fn set_state(xs: &mut Xs, d: &Device, s: u32) -> Result<()> {
    daemon::write_backend_keys(xs, &d.be, &[("state", s.to_string())])
}

/// One step of the xenbus handshake for `d`, as far as the front-end's state allows.
fn step(xs: &mut Xs, evtchn: &Evtchn, d: &mut Device) -> Result<()> {
    if d.phase == Phase::New {
        let be = d.be.clone();
        let rd = |xs: &mut Xs, k: &str| xs.read_string(0, &format!("{be}/{k}"));
        let fe = rd(xs, "frontend").map_err(|e| dev_err(d, format!("frontend: {e}")))?;
        let fe_id: u16 = rd(xs, "frontend-id").ok().and_then(|v| v.trim().parse().ok()).ok_or_else(|| dev_err(d, "frontend-id"))?;
        if fe_id != d.fe_id {
            return Err(dev_err(d, format!("frontend-id {fe_id} under backend/vif/{}", d.fe_id)));
        }
        d.fe = fe;
        d.bridge = rd(xs, keys::keys::BRIDGE).ok().map(|b| b.trim().to_string()).filter(|b| !b.is_empty());
        let mut features: Vec<(String, String)> = Vec::new();
        keys::publish_features(&BackendFeatures::TAP, &mut |k: &str, v: &str| features.push((k.to_string(), v.to_string())));
        daemon::write_backend_keys(xs, &be, &features)?;
        xs.watch(&format!("{}/state", d.fe), "fe")?;
        set_state(xs, d, INIT_WAIT)?;
        d.phase = Phase::InitWait;
        eprintln!("netback: {be}: d{fe_id} at {}: InitWait", d.fe);
    }
    let fe_state = state_of(xs, &d.fe);
    match next_step(d.phase, fe_state) {
        Step::Connect => connect(xs, evtchn, d)?,
        Step::Close { disconnect: connected } => {
            if connected {
                disconnect(evtchn, d);
            }
            set_state(xs, d, CLOSING)?;
            d.phase = Phase::Closing;
        }
        Step::Stay => {}
    }
    if may_close(d.phase, fe_state) {
        set_state(xs, d, CLOSED)?;
        d.phase = Phase::Closed;
        eprintln!("netback: {}: Closed", d.be);
    }
    Ok(())
}

fn connect(xs: &mut Xs, evtchn: &Evtchn, d: &mut Device) -> Result<()> {
    let fe = d.fe.clone();
    let cfg: FrontendConfig = keys::read_frontend(&mut |k: &str, buf: &mut [u8]| {
        let v = xs.read(0, &format!("{fe}/{k}")).ok()?;
        let n = v.len().min(buf.len());
        buf[..n].copy_from_slice(&v[..n]);
        Some(v.len())
    })
    .map_err(|e| dev_err(d, e))?;
    let gnt = NetGntdev::open(d.fe_id)?;
    let map = |r: u32| gnt.map(r).map_err(|e| dev_err(d, format!("mapping ring {r}: {e}")));
    let (txm, rxm) = (map(cfg.tx_ring_ref.0)?, map(cfg.rx_ring_ref.0)?);
    let rings = MappedNetRings::new(txm, rxm).map_err(|e| dev_err(d, format!("rings: {e}")))?;
    let bind = |p: u32| evtchn.bind_interdomain(u32::from(d.fe_id), p).map_err(|e| dev_err(d, format!("binding event channel {p}: {e}")));
    let (tx_port, rx_port) = match cfg.event_channels {
        EventChannels::Shared(p) => {
            let l = bind(p.0)?;
            (l, l)
        }
        EventChannels::Split { tx, rx } => {
            let t = bind(tx.0)?;
            match bind(rx.0) {
                Ok(r) => (t, r),
                Err(e) => {
                    let _ = evtchn.unbind(t);
                    return Err(e);
                }
            }
        }
    };
    let unbind = |e: Error| {
        let _ = evtchn.unbind(tx_port);
        if rx_port != tx_port {
            let _ = evtchn.unbind(rx_port);
        }
        e
    };
    let name = format!("vif{}.{}", d.fe_id, d.devid);
    let tap = Tap::create(&name).map_err(|e| unbind(dev_err(d, e)))?;
    // What the TAP may hand over: partial checksums when the front-end takes them, and
    // TCP segments of up to 64 KiB when it takes GSO on receive (then the bridge and
    // dom0's stack send 64 KiB TSO frames instead of MTU-sized ones).
    let nbcfg = cfg.netback_config();
    let mut offload = if cfg.csum_offload { netsys::TUN_F_CSUM } else { 0 };
    if nbcfg.rx_gso_tcpv4 {
        offload |= netsys::TUN_F_TSO4;
    }
    if nbcfg.rx_gso_tcpv6 {
        offload |= netsys::TUN_F_TSO6;
    }
    tap.set_offload(offload)
        .and_then(|_| netsys::set_mac(&name, HOST_MAC))
        .and_then(|_| netsys::link_up(&name))
        .map_err(|e| unbind(dev_err(d, format!("{name}: {e}"))))?;
    match &d.bridge {
        Some(b) if netsys::bridge_exists(b) => {
            netsys::bridge_add(b, &name).map_err(|e| unbind(dev_err(d, format!("adding {name} to {b}: {e}"))))?;
            eprintln!("netback: {}: {name} added to bridge {b}", d.be);
        }
        Some(b) => eprintln!("netback: {}: no bridge {b}; {name} stays alone", d.be),
        None => {}
    }
    d.conn = Some(Conn {
        rings,
        gnt,
        tap,
        tx_port,
        rx_port,
        cfg: nbcfg,
        rx_buf: vec![0; RX_QUEUE_BYTES],
        rx_queue: Vec::with_capacity(RX_BATCH),
        rx_head: 0,
        tx_frame: Vec::with_capacity(VNET_HDR_LEN + 65536),
        more_tx: true,
        more_rx: true,
        tx_frames: 0,
        rx_frames: 0,
        dropped: 0,
        tx_errors: 0,
        n: Counters::default(),
    });
    daemon::write_backend_keys(xs, &d.be, &[(keys::keys::HOTPLUG_STATUS, "connected".to_string())])?;
    set_state(xs, d, CONNECTED)?;
    d.phase = Phase::Connected;
    eprintln!(
        "netback: {}: Connected: {name} (tx-ring-ref {}, rx-ring-ref {}, channels {:?} -> local {tx_port}/{rx_port}, sg {}, csum offload {}, rx gso v4 {} v6 {})",
        d.be, cfg.tx_ring_ref.0, cfg.rx_ring_ref.0, cfg.event_channels, cfg.sg, cfg.csum_offload, nbcfg.rx_gso_tcpv4, nbcfg.rx_gso_tcpv6
    );
    Ok(())
}
