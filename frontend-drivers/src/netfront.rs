//! The netif front-end (`io/netif.h`): Ethernet frames over a transmit and a receive
//! `xen_ring::FrontRing`, receiving by copy (`request-rx-copy`).
//!
//! Buffers come from the page pool of [`FrontGrants`] (the same trait blkfront uses):
//! pages `0..tx_buffers` carry transmitted frames (granted read-only), the next
//! `rx_buffers` pages are receive buffers (granted writable). Every page is granted
//! once, when the driver is made, and stays granted until [`NetFront::teardown`] (the
//! back-end only copies, so nothing is gained by granting per packet).
//!
//! Transmit: a frame goes into as many pages as it needs (one without the back-end's
//! `feature-sg`), the first request carrying the whole size and the checksum flags,
//! `NETTXF_more_data` on all but the last. The request id is the page. Responses free
//! the pages; `NETIF_RSP_NULL` ones (extra-info slots) are skipped.
//!
//! Receive: each posted buffer's ring slot is remembered, so every response (an
//! extra-info slot has no id) frees the right buffer; a response must also echo the
//! id posted in its slot. A packet is reassembled from its `NETRXF_more_data` chain;
//! one with an error status or an impossible offset/size is dropped (counted), as
//! Linux's netfront does. A back-end that breaks the ring itself gets a [`NetError`],
//! never a panic.
//!
//! [`publish_frontend`] and [`read_backend`] are the xenbus keys, as data.

use xenstore_wire::Decimal;
use xen_abi::netif::{
    NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse,
    NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_csum_blank, NETRXF_data_validated, NETRXF_extra_info,
    NETRXF_more_data, NETTXF_csum_blank, NETTXF_data_validated, NETTXF_more_data,
    XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO, XEN_NETIF_NR_SLOTS_MIN,
};
use xen_abi::{EvtchnPort, GrantRef};
use xen_ring::{FrontRing, RingError};
use zerocopy::{FromBytes, IntoBytes};

pub use crate::blkfront::{FrontGrants, GrantError, KeyRead, KeyWrite};

const PAGE_SIZE: usize = 4096;
/// Most transmit buffers (pages).
pub const MAX_TX_BUFFERS: usize = 64;
/// Most receive buffers (pages).
pub const MAX_RX_BUFFERS: usize = 64;
/// Largest frame: the first slot's 16-bit size.
pub const MAX_FRAME: usize = 0xffff;
/// Largest received GSO frame (64 KiB of IP plus headers may exceed [`MAX_FRAME`]).
pub const MAX_RX_GSO_FRAME: usize = 17 * PAGE_SIZE;
/// Most slots one transmitted frame may use (`XEN_NETIF_NR_SLOTS_MIN`: every back-end
/// takes at least this many).
pub const MAX_TX_SLOTS: usize = XEN_NETIF_NR_SLOTS_MIN as usize;
/// Slots of a single-page receive ring (8-byte entries): the slot table's size.
const RX_RING_SLOTS: usize = 256;

/// The transmit ring's front end.
pub type TxFront = FrontRing<NetifTxRequest, NetifTxResponse>;
/// The receive ring's front end.
pub type RxFront = FrontRing<NetifRxRequest, NetifRxResponse>;

/// How the driver is set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetFrontConfig {
    /// Transmit buffers (pool pages `0..tx_buffers`), 1..=[`MAX_TX_BUFFERS`].
    pub tx_buffers: usize,
    /// Receive buffers (the next pool pages), 1..=[`MAX_RX_BUFFERS`].
    pub rx_buffers: usize,
    /// The back-end takes multi-slot frames (`feature-sg`).
    pub backend_sg: bool,
}

impl Default for NetFrontConfig {
    fn default() -> Self {
        Self {
            tx_buffers: 16,
            rx_buffers: 32,
            backend_sg: false,
        }
    }
}

/// Errors of the front-end: the back-end broke the protocol, or the caller asked for
/// something impossible.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// An impossible ring index.
    Ring(RingError),
    /// A transmit response names no frame in flight.
    BadTxResponseId(u16),
    /// A receive response's id is not the buffer posted in its slot.
    BadRxResponseId { expected: u16, got: u16 },
    /// A grant could not be made or ended.
    Grant(GrantError),
    /// The frame is empty, too large, or needs more slots than the back-end takes.
    FrameSize(usize),
    /// No free transmit buffer or ring slot: reap responses and try again.
    Busy,
    /// The configuration or the page pool does not fit.
    BadConfig,
    /// The caller's buffer is smaller than the received packet (it was dropped).
    BufferTooSmall(usize),
}

impl From<RingError> for NetError {
    fn from(e: RingError) -> Self {
        Self::Ring(e)
    }
}

/// Checksum flags of a frame.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CsumFlags {
    /// The transport checksum is blank (partial): `NETTXF_csum_blank` /
    /// `NETRXF_csum_blank`.
    pub blank: bool,
    /// The checksum is known good: `NETTXF_data_validated` / `NETRXF_data_validated`.
    pub validated: bool,
}

/// A received frame: its length in the caller's buffer and its flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxFrame {
    pub len: usize,
    pub csum: CsumFlags,
    /// Receive slots it arrived in (data slots; extra-info slots not counted).
    pub slots: u32,
    /// A GSO extra-info slot came with it (only from a back-end the front-end told
    /// `feature-gso-tcpv4`/`-tcpv6`, which [`publish_frontend`] does not).
    pub gso: Option<RxGso>,
}

/// The GSO extra-info of a received frame: segments of `size` payload bytes, `gso_type`
/// `XEN_NETIF_GSO_TYPE_TCPV4` or `_TCPV6` (as the back-end wrote it, unchecked).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxGso {
    pub gso_type: u8,
    pub size: u16,
}

/// Counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetFrontStats {
    pub tx_frames: u64,
    pub tx_bytes: u64,
    /// Transmit responses other than `NETIF_RSP_OKAY`.
    pub tx_errors: u64,
    pub rx_frames: u64,
    pub rx_bytes: u64,
    /// Received frames dropped (error status, bad offset/size, too big).
    pub rx_errors: u64,
}

/// The frame being reassembled from a `more_data` chain.
#[derive(Clone, Copy, Debug, Default)]
struct Partial {
    active: bool,
    len: usize,
    slots: u32,
    csum: CsumFlags,
    bad: bool,
    too_small: bool,
    /// The next response slot is extra-info.
    extras: bool,
    /// More data slots follow.
    more: bool,
    gso: Option<RxGso>,
}

/// The front-end driver.
pub struct NetFront<G: FrontGrants> {
    tx: TxFront,
    rx: RxFront,
    grants: G,
    cfg: NetFrontConfig,
    tx_refs: [GrantRef; MAX_TX_BUFFERS],
    tx_busy: [bool; MAX_TX_BUFFERS],
    rx_refs: [GrantRef; MAX_RX_BUFFERS],
    rx_posted: [bool; MAX_RX_BUFFERS],
    /// Receive buffer posted in each ring slot (index & (size - 1)).
    rx_slot_buf: [u16; RX_RING_SLOTS],
    partial: Partial,
    granted: u32,
    stats: NetFrontStats,
}

impl<G: FrontGrants> core::fmt::Debug for NetFront<G> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("NetFront")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<G: FrontGrants> NetFront<G> {
    /// Takes the two rings (freshly initialised, granted by the caller) and grants every
    /// pool page to the back-end.
    pub fn new(tx: TxFront, rx: RxFront, mut grants: G, cfg: NetFrontConfig) -> Result<Self, NetError> {
        let (ntx, nrx) = (cfg.tx_buffers, cfg.rx_buffers);
        if !(1..=MAX_TX_BUFFERS).contains(&ntx)
            || !(1..=MAX_RX_BUFFERS).contains(&nrx)
            || grants.page_count() < ntx + nrx
            || rx.size() as usize > RX_RING_SLOTS
        {
            return Err(NetError::BadConfig);
        }
        let mut tx_refs = [GrantRef(0); MAX_TX_BUFFERS];
        let mut rx_refs = [GrantRef(0); MAX_RX_BUFFERS];
        let mut granted = 0;
        for (i, r) in tx_refs.iter_mut().take(ntx).enumerate() {
            *r = grants.grant(i, true).map_err(NetError::Grant)?;
            granted += 1;
        }
        for (j, r) in rx_refs.iter_mut().take(nrx).enumerate() {
            *r = grants.grant(ntx + j, false).map_err(NetError::Grant)?;
            granted += 1;
        }
        Ok(Self {
            tx,
            rx,
            grants,
            cfg,
            tx_refs,
            tx_busy: [false; MAX_TX_BUFFERS],
            rx_refs,
            rx_posted: [false; MAX_RX_BUFFERS],
            rx_slot_buf: [0; RX_RING_SLOTS],
            partial: Partial::default(),
            granted,
            stats: NetFrontStats::default(),
        })
    }

    pub fn stats(&self) -> &NetFrontStats {
        &self.stats
    }

    /// The page pool and grant table.
    pub fn grants(&self) -> &G {
        &self.grants
    }

    /// Grants still held (0 after a successful [`teardown`](Self::teardown)).
    pub fn grants_held(&self) -> u32 {
        self.granted
    }

    /// Posts every free receive buffer. Returns whether to notify the back-end.
    pub fn post_rx(&mut self) -> Result<bool, NetError> {
        let mask = self.rx.size() as usize - 1;
        for j in 0..self.cfg.rx_buffers {
            if self.rx_posted[j] || self.rx.is_full() {
                continue;
            }
            let slot = self.rx.req_prod_pvt() as usize & mask;
            self.rx.write_request(NetifRxRequest {
                id: j as u16,
                pad: 0,
                gref: self.rx_refs[j].0,
            })?;
            self.rx_slot_buf[slot] = j as u16;
            self.rx_posted[j] = true;
        }
        Ok(self.rx.push_requests_and_check_notify())
    }

    /// Receive buffers currently posted.
    pub fn rx_posted(&self) -> usize {
        self.rx_posted.iter().filter(|&&p| p).count()
    }

    /// Frees transmit buffers whose responses arrived.
    pub fn reap_tx(&mut self) -> Result<u32, NetError> {
        let mut n = 0;
        while let Some(rsp) = self.tx.read_response()? {
            if rsp.status == NETIF_RSP_NULL {
                continue;
            }
            let id = usize::from(rsp.id);
            if id >= self.cfg.tx_buffers || !self.tx_busy[id] {
                return Err(NetError::BadTxResponseId(rsp.id));
            }
            self.tx_busy[id] = false;
            if rsp.status != NETIF_RSP_OKAY {
                self.stats.tx_errors += 1;
            }
            n += 1;
        }
        Ok(n)
    }

    /// Transmit buffers in flight.
    pub fn tx_in_flight(&self) -> usize {
        self.tx_busy.iter().filter(|&&b| b).count()
    }

    /// Queues `frame` for transmission and publishes it. Returns whether to notify the
    /// back-end. [`NetError::Busy`] when buffers or slots are short even after reaping.
    pub fn send(&mut self, frame: &[u8], csum: CsumFlags) -> Result<bool, NetError> {
        let len = frame.len();
        let slots = len.div_ceil(PAGE_SIZE);
        let max_slots = if self.cfg.backend_sg { MAX_TX_SLOTS } else { 1 };
        if len == 0 || len > MAX_FRAME || slots > max_slots {
            return Err(NetError::FrameSize(len));
        }
        let mut free = [0usize; MAX_TX_SLOTS];
        let mut nfree = self.collect_free(&mut free[..slots]);
        if nfree < slots || (self.tx.free_requests() as usize) < slots {
            self.reap_tx()?;
            nfree = self.collect_free(&mut free[..slots]);
        }
        if nfree < slots || (self.tx.free_requests() as usize) < slots {
            return Err(NetError::Busy);
        }
        let mut flags = 0;
        if csum.blank {
            flags |= NETTXF_csum_blank;
        }
        if csum.validated {
            flags |= NETTXF_data_validated;
        }
        for (k, &page) in free[..slots].iter().enumerate() {
            let chunk = &frame[k * PAGE_SIZE..len.min((k + 1) * PAGE_SIZE)];
            self.grants.write_page(page, 0, chunk);
            let mut f = if k == 0 { flags } else { 0 };
            if k + 1 < slots {
                f |= NETTXF_more_data;
            }
            self.tx.write_request(NetifTxRequest {
                gref: self.tx_refs[page].0,
                offset: 0,
                flags: f,
                id: page as u16,
                size: if k == 0 { len as u16 } else { chunk.len() as u16 },
            })?;
            self.tx_busy[page] = true;
        }
        self.stats.tx_frames += 1;
        self.stats.tx_bytes += len as u64;
        Ok(self.tx.push_requests_and_check_notify())
    }

    fn collect_free(&self, out: &mut [usize]) -> usize {
        let mut n = 0;
        for i in 0..self.cfg.tx_buffers {
            if n == out.len() {
                break;
            }
            if !self.tx_busy[i] {
                out[n] = i;
                n += 1;
            }
        }
        n
    }

    /// Takes the next complete received frame into `buf`, or `None` if none is
    /// complete yet. Buffers used are freed: call [`post_rx`](Self::post_rx) to post
    /// them again. Frames with errors are dropped and counted, and the search goes on.
    pub fn recv(&mut self, buf: &mut [u8]) -> Result<Option<RxFrame>, NetError> {
        let mask = self.rx.size() as usize - 1;
        loop {
            let slot = self.rx.rsp_cons() as usize & mask;
            let Some(rsp) = self.rx.read_response()? else { return Ok(None) };
            let j = usize::from(self.rx_slot_buf[slot]);
            self.rx_posted[j] = false;
            let p = &mut self.partial;
            if p.extras {
                // An extra-info slot: GSO is recorded, any other type skipped.
                let e = NetifExtraInfo::read_from_prefix(rsp.as_bytes()).map(|(e, _)| e).unwrap_or_default();
                if e.type_ == XEN_NETIF_EXTRA_TYPE_GSO {
                    p.gso = Some(RxGso { gso_type: e.gso_type(), size: e.gso_size() });
                }
                p.extras = e.flags & XEN_NETIF_EXTRA_FLAG_MORE != 0;
            } else {
                if rsp.id as usize != j {
                    return Err(NetError::BadRxResponseId { expected: j as u16, got: rsp.id });
                }
                if !p.active {
                    *p = Partial {
                        active: true,
                        csum: CsumFlags {
                            blank: rsp.flags & NETRXF_csum_blank != 0,
                            validated: rsp.flags & NETRXF_data_validated != 0,
                        },
                        ..Partial::default()
                    };
                }
                p.slots += 1;
                let off = usize::from(rsp.offset);
                match usize::try_from(rsp.status) {
                    Ok(n) if off + n <= PAGE_SIZE => {
                        if p.len + n <= buf.len() {
                            self.grants.read_page(self.cfg.tx_buffers + j, off, &mut buf[p.len..p.len + n]);
                        } else {
                            p.too_small = true;
                        }
                        p.len += n;
                    }
                    _ => p.bad = true,
                }
                p.extras = rsp.flags & NETRXF_extra_info != 0;
                p.more = rsp.flags & NETRXF_more_data != 0;
            }
            if p.extras || p.more {
                continue;
            }
            let done = *p;
            self.partial = Partial::default();
            let max = if done.gso.is_some() { MAX_RX_GSO_FRAME } else { MAX_FRAME };
            if done.bad || done.too_small || done.len > max {
                self.stats.rx_errors += 1;
                if done.too_small && !done.bad {
                    return Err(NetError::BufferTooSmall(done.len));
                }
                continue;
            }
            self.stats.rx_frames += 1;
            self.stats.rx_bytes += done.len as u64;
            return Ok(Some(RxFrame { len: done.len, csum: done.csum, slots: done.slots, gso: done.gso }));
        }
    }

    /// Arms both rings' `rsp_event` and reports whether responses are pending (sleep
    /// only on `Ok(false)`).
    pub fn final_check(&mut self) -> Result<bool, NetError> {
        let tx = self.tx.final_check_for_responses()?;
        let rx = self.rx.final_check_for_responses()?;
        Ok(tx || rx)
    }

    /// Ends the back-end's access to every page (after it disconnected). Returns the
    /// grants that could not be ended (still mapped by the back-end).
    pub fn teardown(&mut self) -> Result<(), NetError> {
        let mut first = Ok(());
        let refs = self.tx_refs[..self.cfg.tx_buffers].iter().chain(&self.rx_refs[..self.cfg.rx_buffers]);
        for &r in refs {
            match self.grants.end_access(r) {
                Ok(()) => self.granted = self.granted.saturating_sub(1),
                Err(e) => {
                    if first.is_ok() {
                        first = Err(NetError::Grant(e));
                    }
                }
            }
        }
        first
    }
}


/// Publishes the front-end's keys (then switch to `Connected`, as Linux's netfront
/// does: Linux's netback connects on the front-end's `Connected`): the two ring
/// references, one event channel, `request-rx-copy`, `feature-rx-notify`, `feature-sg`
/// (multi-slot receive is handled) and `feature-no-csum-offload` (this driver's users
/// do not complete partial checksums).
pub fn publish_frontend(
    tx_ring_ref: GrantRef,
    rx_ring_ref: GrantRef,
    event_channel: EvtchnPort,
    out: &mut (impl KeyWrite + ?Sized),
) {
    out.write_key("tx-ring-ref", Decimal::new(tx_ring_ref.0.into()).as_str());
    out.write_key("rx-ring-ref", Decimal::new(rx_ring_ref.0.into()).as_str());
    out.write_key("event-channel", Decimal::new(event_channel.0.into()).as_str());
    out.write_key("request-rx-copy", "1");
    out.write_key("feature-rx-notify", "1");
    out.write_key("feature-sg", "1");
    out.write_key("feature-no-csum-offload", "1");
}

/// What the back-end offers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BackendNetInfo {
    /// `feature-sg`.
    pub sg: bool,
    /// `feature-gso-tcpv4`.
    pub gso_tcpv4: bool,
    /// `feature-split-event-channels`.
    pub split_event_channels: bool,
}

/// Why the back-end cannot be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKeyError {
    /// No `feature-rx-copy = 1`: this driver only receives by copy.
    NoRxCopy,
}

fn flag(kv: &mut (impl KeyRead + ?Sized), key: &str) -> bool {
    let mut b = [0u8; 8];
    match kv.read_key(key, &mut b) {
        Some(n) if n <= b.len() => {
            let v = match b[..n].split_last() {
                Some((0, rest)) => rest,
                _ => &b[..n],
            };
            matches!(xenstore_wire::parse_decimal(v.trim_ascii()), Some(x) if x != 0)
        }
        _ => false,
    }
}

/// Reads the back-end's features (flags read as 0 when absent or unreadable).
pub fn read_backend(kv: &mut (impl KeyRead + ?Sized)) -> Result<BackendNetInfo, BackendKeyError> {
    if !flag(kv, "feature-rx-copy") {
        return Err(BackendKeyError::NoRxCopy);
    }
    Ok(BackendNetInfo {
        sg: flag(kv, "feature-sg"),
        gso_tcpv4: flag(kv, "feature-gso-tcpv4"),
        split_event_channels: flag(kv, "feature-split-event-channels"),
    })
}
