//! The two rings of a virtual interface: transmit (front-end to back-end) and receive
//! (back-end to front-end).
//!
//! Transmit, per packet, as Linux's `xenvif_tx_build_gops` / `xenvif_count_requests`:
//!
//! | what the front-end did | result |
//! |---|---|
//! | `req_prod` impossible | [`Fatal::Ring`] |
//! | `NETTXF_extra_info` but no published slot for it | [`Fatal::MissingExtra`] |
//! | extra-info type 0 or `>= XEN_NETIF_EXTRA_TYPE_MAX` | [`Fatal::BadExtraType`] |
//! | `NETTXF_more_data` on the last published slot | [`Fatal::MissingSlots`] |
//! | more than [`FATAL_SKB_SLOTS`] fragments | [`Fatal::TooManySlots`] |
//! | a fragment with `offset + size` past its page | [`Fatal::CrossPage`] |
//! | the first slot's own bytes past its page | [`Fatal::CrossPage`] |
//! | GSO extra with size 0 / type not TCPv4 or TCPv6 | [`Fatal::GsoSizeZero`] / [`Fatal::BadGsoType`] |
//! | more than [`LEGACY_SLOTS_MAX`] fragments | `NETIF_RSP_ERROR` on every slot, dropped |
//! | a fragment larger than what is left of the packet's size | `NETIF_RSP_ERROR` on every slot, dropped |
//! | fewer than [`ETH_HLEN`] bytes in the first slot | `NETIF_RSP_ERROR` on every slot, dropped |
//! | a grant that cannot be copied | `NETIF_RSP_ERROR` on every slot, dropped |
//! | multicast add/remove extra | `NETIF_RSP_OKAY`, no packet |
//!
//! Every slot gets one response in ring order: the first slot's (its `id`), then
//! `NETIF_RSP_NULL` for each extra-info slot, then each fragment's (its `id`).
//!
//! Transmit packets are taken off the ring in batches: every slot of up to 64 packets
//! is read and checked first, then one [`GrantAccess::copy`] moves the data of all of
//! them, then every slot is answered and the responses published once
//! (`RING_PUSH_RESPONSES_AND_CHECK_NOTIFY` per batch).
//!
//! Receive: a packet goes into as many posted buffers as it needs, a page each from
//! offset 0 (Linux's "fully coalesced" layout), `NETRXF_more_data` on all but the last,
//! the checksum flags on the first. A GSO packet (for a front-end that wrote
//! `feature-gso-tcpv4`/`-tcpv6`) carries `NETRXF_extra_info` on its first slot and a
//! `XEN_NETIF_EXTRA_TYPE_GSO` extra-info response right after it (which uses up one
//! posted buffer, as in Linux's netback). A buffer whose grant cannot be written gets
//! `NETIF_RSP_ERROR` (the front-end drops the packet). [`Netback::deliver_rx_batch`]
//! places many packets with one copy and one push.

use xen_abi::netif::{
    NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse,
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_csum_blank, NETRXF_data_validated,
    NETRXF_extra_info, NETRXF_more_data, NETTXF_csum_blank, NETTXF_data_validated, NETTXF_extra_info,
    NETTXF_more_data, XEN_NETIF_EXTRA_FLAG_MORE, XEN_NETIF_EXTRA_TYPE_GSO,
    XEN_NETIF_EXTRA_TYPE_MAX, XEN_NETIF_EXTRA_TYPE_MCAST_ADD, XEN_NETIF_EXTRA_TYPE_MCAST_DEL,
    XEN_NETIF_GSO_TYPE_TCPV4, XEN_NETIF_GSO_TYPE_TCPV6,
};
use xen_abi::GrantRef;
use xen_ring::{BackRing, RingError};
use zerocopy::{FromBytes, IntoBytes};

use crate::grant::{CopyDir, CopySeg, GrantAccess};
use crate::{ETH_HLEN, FATAL_SKB_SLOTS, LEGACY_SLOTS_MAX, MAX_PACKET, PAGE_SIZE};

/// The transmit ring's back end.
pub type TxRing = BackRing<NetifTxRequest, NetifTxResponse>;
/// The receive ring's back end.
pub type RxRing = BackRing<NetifRxRequest, NetifRxResponse>;

/// Receive buffers one packet may use: enough for [`MAX_PACKET`] bytes.
pub const MAX_RX_SLOTS: usize = MAX_PACKET.div_ceil(PAGE_SIZE);
/// Largest GSO packet for the receive ring: 64 KiB of IP plus link headers may exceed
/// the transmit slot's 16-bit size; 17 pages, below the 18 data slots every front-end
/// takes (`XEN_NETIF_NR_SLOTS_MIN`).
pub const MAX_RX_GSO_PACKET: usize = 17 * PAGE_SIZE;
/// Packets per receive batch (one copy, one push).
pub const RX_BATCH: usize = 64;
/// Copy segments per receive batch.
const RX_BATCH_SEGS: usize = 64;
/// Packets per transmit batch.
const TX_BATCH: usize = 64;
/// Slots (fragment ids, copy segments) per transmit batch.
const TX_BATCH_SLOTS: usize = 256;
/// Private packet memory of a transmit batch (at least two largest packets).
const TX_BUF: usize = 2 * 65536;

/// How a [`Netback`] treats its interface.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetbackConfig {
    /// Packets taken off the transmit ring by one [`Netback::process_tx`] call at most
    /// (at least 1), so one busy front-end cannot starve the others.
    pub max_tx_packets_per_call: u32,
    /// The front-end accepts packets spread over several receive buffers
    /// (`feature-sg`); without it a packet larger than a page is dropped.
    pub rx_sg: bool,
    /// The front-end accepts `NETRXF_csum_blank` (it did not write
    /// `feature-no-csum-offload = 1`).
    pub rx_csum_offload: bool,
    /// The front-end takes TCPv4 GSO packets on its receive ring (`feature-gso-tcpv4`).
    pub rx_gso_tcpv4: bool,
    /// The front-end takes TCPv6 GSO packets on its receive ring (`feature-gso-tcpv6`).
    pub rx_gso_tcpv6: bool,
}

impl NetbackConfig {
    /// 64 packets per call, single-buffer receive, no receive checksum offload (what a
    /// front-end that published no features gets).
    pub const DEFAULT: Self = Self {
        max_tx_packets_per_call: 64,
        rx_sg: false,
        rx_csum_offload: false,
        rx_gso_tcpv4: false,
        rx_gso_tcpv6: false,
    };
}

impl Default for NetbackConfig {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// Counters, like Linux netback's per-queue statistics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetbackStats {
    /// Packets taken off the transmit ring and handed on.
    pub tx_packets: u64,
    /// Their bytes.
    pub tx_bytes: u64,
    /// Transmitted packets answered with `NETIF_RSP_ERROR` and dropped.
    pub tx_errors: u64,
    /// Multicast extra-info requests answered.
    pub tx_mcast: u64,
    /// Packets put into receive buffers.
    pub rx_packets: u64,
    /// Their bytes.
    pub rx_bytes: u64,
    /// Received packets dropped (too large, a buffer's grant failed).
    pub rx_dropped: u64,
    /// Transmitted packets with a GSO extra.
    pub tx_gso_packets: u64,
    /// Received packets sent with a GSO extra.
    pub rx_gso_packets: u64,
    /// [`GrantAccess::copy`] calls on the transmit side (one per batch).
    pub tx_copy_batches: u64,
    /// [`GrantAccess::copy`] calls on the receive side (one per batch).
    pub rx_copy_batches: u64,
}

/// Why the front-end is cut off: it broke the protocol, not just sent a bad packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fatal {
    /// An impossible ring index.
    Ring(RingError),
    /// `NETTXF_extra_info` with no published slot after it.
    MissingExtra,
    /// An extra-info slot of type 0 or beyond `XEN_NETIF_EXTRA_TYPE_MAX`.
    BadExtraType(u8),
    /// `NETTXF_more_data` with no published slot after it: `needed` slots, `published`.
    MissingSlots { needed: usize, published: usize },
    /// More than [`FATAL_SKB_SLOTS`] fragments (the count read when the next one was
    /// announced: Linux's "malicious front-end using 20 slots").
    TooManySlots(usize),
    /// A slot whose bytes run past its page.
    CrossPage { offset: u16, size: u16 },
    /// A GSO extra with size 0.
    GsoSizeZero,
    /// A GSO extra with a type other than TCPv4/TCPv6.
    BadGsoType(u8),
}

impl core::fmt::Display for Fatal {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Fatal::Ring(e) => write!(f, "{e}"),
            Fatal::MissingExtra => write!(f, "extra info announced but not published"),
            Fatal::BadExtraType(t) => write!(f, "invalid extra-info type {t}"),
            Fatal::MissingSlots { needed, published } => {
                write!(f, "packet needs {needed} more slots, {published} published")
            }
            Fatal::TooManySlots(n) => write!(f, "malicious front-end using {n} slots"),
            Fatal::CrossPage { offset, size } => {
                write!(f, "slot crosses its page (offset {offset}, size {size})")
            }
            Fatal::GsoSizeZero => write!(f, "GSO size 0"),
            Fatal::BadGsoType(t) => write!(f, "bad GSO type {t}"),
        }
    }
}

/// What the caller should do with the transmit ring after [`Netback::process_tx`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxState {
    /// Nothing pending and `req_event` armed: wait for the front-end's next event.
    Idle,
    /// The per-call budget ran out with requests pending: call again without waiting.
    MoreWork,
    /// The front-end broke the protocol: stop serving this interface and disconnect it
    /// (Linux: "fatal error; disabling device"). Never call `process_tx` on it again.
    Disconnect(Fatal),
}

/// The result of one [`Netback::process_tx`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxOutcome {
    /// Packets handed on by this call.
    pub packets: u32,
    /// Packets answered with errors by this call.
    pub errors: u32,
    /// Send an event to the front-end.
    pub notify: bool,
    /// What to do next.
    pub state: TxState,
}

/// The segmentation a packet asks for (the GSO extra-info slot).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GsoKind {
    TcpV4,
    TcpV6,
}

/// A GSO request: split into segments of `size` payload bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gso {
    pub kind: GsoKind,
    pub size: u16,
}

/// A packet the front-end transmitted, in private memory.
#[derive(Debug)]
pub struct TxPacket<'a> {
    /// The Ethernet frame.
    pub data: &'a [u8],
    /// `NETTXF_csum_blank`: the TCP/UDP checksum is not filled in (it holds the
    /// pseudo-header sum at best); it must be completed before the packet leaves.
    pub csum_blank: bool,
    /// `NETTXF_data_validated`: the front-end vouches for the checksum.
    pub data_validated: bool,
    /// A GSO extra-info slot came with the packet.
    pub gso: Option<Gso>,
}

/// Metadata of a packet for the receive ring.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxMeta {
    /// The checksum is not filled in (`CHECKSUM_PARTIAL`): sent as
    /// `NETRXF_csum_blank | NETRXF_data_validated`. Only when
    /// [`NetbackConfig::rx_csum_offload`]; otherwise complete it first
    /// ([`crate::csum::complete_partial`]).
    pub csum_blank: bool,
    /// The checksum is known good: `NETRXF_data_validated`.
    pub data_validated: bool,
    /// A GSO packet (`CHECKSUM_PARTIAL` too, so `csum_blank` should be set): sent with
    /// a GSO extra-info slot, only to a front-end that takes that kind
    /// ([`NetbackConfig::rx_gso_tcpv4`] / [`NetbackConfig::rx_gso_tcpv6`]).
    pub gso: Option<Gso>,
}

/// A packet for [`Netback::deliver_rx_batch`]: `len` bytes at `at` in the batch buffer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxFrameRef {
    pub at: usize,
    pub len: usize,
    pub meta: RxMeta,
}

/// The result of one [`Netback::deliver_rx_batch`] call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RxBatchOutcome {
    /// Packets consumed from the front of the list (delivered or dropped). The others
    /// wait for buffers (`req_event` is armed: the front-end's next buffer raises an
    /// event) unless `fatal`.
    pub taken: usize,
    /// Of those, delivered.
    pub delivered: u32,
    /// Of those, dropped (see [`RxDrop`]).
    pub dropped: u32,
    /// Send an event to the front-end.
    pub notify: bool,
    /// The front-end broke the receive ring: disconnect it.
    pub fatal: Option<Fatal>,
}

/// Why a received packet was dropped (the interface stays up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxDrop {
    /// Empty, larger than [`MAX_PACKET`], or larger than a page for a front-end without
    /// `feature-sg`.
    TooBig(usize),
    /// `csum_blank` for a front-end that did not accept checksum offload.
    CsumOffloadRefused,
    /// GSO of a kind the front-end did not ask for.
    GsoRefused,
    /// A buffer's grant could not be written: its response says `NETIF_RSP_ERROR` (the
    /// buffers were used up).
    GrantFailed,
}

/// The result of one [`Netback::deliver_rx`] call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxOutcome {
    /// The packet is in `slots` buffers; notify the front-end if `notify`.
    Delivered { slots: u32, notify: bool },
    /// Not enough buffers posted; nothing consumed, and the front-end's next request
    /// will raise an event. Keep the packet (or drop it) and try again then.
    NoBuffers,
    /// Not delivered; `notify` as for `Delivered` (used-up buffers were answered).
    Dropped { why: RxDrop, notify: bool },
    /// The front-end broke the receive ring: disconnect it.
    Disconnect(Fatal),
}

/// The netif processor. Holds configuration, counters and private scratch space (the
/// packet memory of a transmit batch and its slots, about 140 KiB: box it), no per-ring
/// state between calls, so one `Netback` can serve several interfaces in turn (with the
/// same configuration).
pub struct Netback {
    cfg: NetbackConfig,
    stats: NetbackStats,
    /// Private copies of the current packet's fragment slots.
    frags: [NetifTxRequest; FATAL_SKB_SLOTS],
    /// The transmit batch: packets read, not yet copied and answered.
    tx: TxBatch,
    /// Receive batch scratch.
    rx: RxScratch,
    /// The transmit batch's bytes (and a single received packet's).
    buf: [u8; TX_BUF],
}

/// A transmit packet whose slots are read, waiting for the batch's copy.
#[derive(Clone, Copy, Debug, Default)]
struct PendTx {
    first_id: u16,
    flags: u16,
    extras: u16,
    frag_at: u16,
    nfrags: u8,
    seg_at: u16,
    nsegs: u8,
    at: u32,
    len: u32,
    drop: Option<Drop>,
    gso: Option<Gso>,
    mcast: bool,
}

struct TxBatch {
    pend: [PendTx; TX_BATCH],
    npend: usize,
    frag_ids: [u16; TX_BATCH_SLOTS],
    nfrag_ids: usize,
    segs: [CopySeg; TX_BATCH_SLOTS],
    nsegs: usize,
    used: usize,
}

impl TxBatch {
    /// Room for one more packet of any shape.
    fn room(&self) -> bool {
        self.npend < TX_BATCH
            && self.nfrag_ids + FATAL_SKB_SLOTS <= TX_BATCH_SLOTS
            && self.nsegs + 1 + FATAL_SKB_SLOTS <= TX_BATCH_SLOTS
            && self.used + MAX_PACKET <= TX_BUF
    }
}

/// How one packet of a receive batch went.
#[derive(Clone, Copy, Debug, Default)]
struct RxPlan {
    seg_at: usize,
    nsegs: usize,
    extra: bool,
    refused: Option<RxDrop>,
    failed: bool,
}

struct RxScratch {
    segs: [CopySeg; RX_BATCH_SEGS],
    ids: [u16; RX_BATCH_SEGS],
    plan: [RxPlan; RX_BATCH],
}

impl core::fmt::Debug for Netback {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Netback")
            .field("cfg", &self.cfg)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Default for Netback {
    fn default() -> Self {
        Self::new(NetbackConfig::DEFAULT)
    }
}

/// The extra-info slots of one packet, by type.
#[derive(Default)]
struct Extras {
    count: usize,
    gso: Option<NetifExtraInfo>,
    mcast: bool,
}

/// Reinterprets a transmit slot as the extra-info it carries (the ring slot is a union).
fn as_extra(req: &NetifTxRequest) -> NetifExtraInfo {
    match NetifExtraInfo::read_from_prefix(req.as_bytes()) {
        Ok((e, _)) => e,
        // A 12-byte slot always holds the 8-byte extra; unreachable, but never panic.
        Err(_) => NetifExtraInfo::default(),
    }
}

/// Why one packet is answered with errors (and dropped).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Drop {
    TooManySlots,
    SizeMismatch,
    Runt,
    Grant,
}

impl Netback {
    /// A back-end with `cfg` (`max_tx_packets_per_call` raised to at least 1).
    pub fn new(mut cfg: NetbackConfig) -> Self {
        cfg.max_tx_packets_per_call = cfg.max_tx_packets_per_call.max(1);
        Self {
            cfg,
            stats: NetbackStats::default(),
            frags: [NetifTxRequest::default(); FATAL_SKB_SLOTS],
            tx: TxBatch {
                pend: [PendTx::default(); TX_BATCH],
                npend: 0,
                frag_ids: [0; TX_BATCH_SLOTS],
                nfrag_ids: 0,
                segs: [CopySeg::default(); TX_BATCH_SLOTS],
                nsegs: 0,
                used: 0,
            },
            rx: RxScratch {
                segs: [CopySeg::default(); RX_BATCH_SEGS],
                ids: [0; RX_BATCH_SEGS],
                plan: [RxPlan::default(); RX_BATCH],
            },
            buf: [0; TX_BUF],
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &NetbackConfig {
        &self.cfg
    }

    /// Changes the configuration (e.g. once the front-end's features are known).
    pub fn set_config(&mut self, mut cfg: NetbackConfig) {
        cfg.max_tx_packets_per_call = cfg.max_tx_packets_per_call.max(1);
        self.cfg = cfg;
    }

    /// Counters since creation.
    pub fn stats(&self) -> &NetbackStats {
        &self.stats
    }

    /// Serves the transmit ring: takes up to `max_tx_packets_per_call` packets off it,
    /// in batches (see the module documentation), answering every slot and publishing
    /// the responses, and hands each good packet to `sink`. When the ring runs dry, arms
    /// `req_event` (`RING_FINAL_CHECK_FOR_REQUESTS`) and goes on if requests arrived
    /// meanwhile.
    ///
    /// Notify the front-end when [`TxOutcome::notify`] is set, whatever the state.
    pub fn process_tx<G, F>(&mut self, ring: &mut TxRing, grants: &mut G, mut sink: F) -> TxOutcome
    where
        G: GrantAccess + ?Sized,
        F: FnMut(&TxPacket<'_>),
    {
        let budget = self.cfg.max_tx_packets_per_call;
        let mut out = TxOutcome {
            packets: 0,
            errors: 0,
            notify: false,
            state: TxState::Idle,
        };
        let fatal = |mut out: TxOutcome, ring: &mut TxRing, f: Fatal| {
            out.notify |= ring.push_responses_and_check_notify();
            out.state = TxState::Disconnect(f);
            out
        };
        loop {
            let mut broke = None;
            while out.packets + out.errors + (self.tx.npend as u32) < budget {
                let published = match ring.unconsumed_requests() {
                    Ok(0) => break,
                    Ok(n) => n as usize,
                    Err(e) => {
                        broke = Some(Fatal::Ring(e));
                        break;
                    }
                };
                if !self.tx.room() {
                    if let Err(f) = self.flush_tx(ring, grants, &mut sink, &mut out) {
                        broke = Some(f);
                        break;
                    }
                }
                if let Err(f) = self.take_tx(ring, published) {
                    broke = Some(f);
                    break;
                }
            }
            // The packets read before a protocol break are still answered and handed on.
            let flushed = self.flush_tx(ring, grants, &mut sink, &mut out);
            if let Some(f) = broke.or(flushed.err()) {
                return fatal(out, ring, f);
            }
            if out.packets + out.errors >= budget {
                match ring.unconsumed_requests() {
                    Ok(0) => {}
                    Ok(_) => {
                        out.state = TxState::MoreWork;
                        return out;
                    }
                    Err(e) => return fatal(out, ring, Fatal::Ring(e)),
                }
            }
            match ring.final_check_for_requests() {
                Ok(true) if out.packets + out.errors < budget => continue,
                Ok(true) => {
                    out.state = TxState::MoreWork;
                    return out;
                }
                Ok(false) => return out,
                Err(e) => return fatal(out, ring, Fatal::Ring(e)),
            }
        }
    }

    /// Reads the next request (one is known to be published).
    fn next(ring: &mut TxRing) -> Result<NetifTxRequest, Fatal> {
        match ring.read_request() {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err(Fatal::MissingSlots {
                needed: 1,
                published: 0,
            }),
            Err(e) => Err(Fatal::Ring(e)),
        }
    }

    fn respond(ring: &mut TxRing, id: u16, status: i16) -> Result<(), Fatal> {
        ring.write_response(NetifTxResponse { id, status })
            .map(|_| ())
            .map_err(Fatal::Ring)
    }

    /// Copies the batch's data (one [`GrantAccess::copy`]), answers every slot of every
    /// packet in ring order, hands the good packets to `sink`, publishes the responses.
    /// The batch is empty afterwards, whatever happens.
    fn flush_tx<G, F>(
        &mut self,
        ring: &mut TxRing,
        grants: &mut G,
        sink: &mut F,
        out: &mut TxOutcome,
    ) -> Result<(), Fatal>
    where
        G: GrantAccess + ?Sized,
        F: FnMut(&TxPacket<'_>),
    {
        let (npend, nsegs, used) = (self.tx.npend, self.tx.nsegs, self.tx.used);
        self.tx.npend = 0;
        self.tx.nsegs = 0;
        self.tx.nfrag_ids = 0;
        self.tx.used = 0;
        if npend == 0 {
            return Ok(());
        }
        if nsegs > 0 {
            grants.copy(CopyDir::FromGrant, &mut self.tx.segs[..nsegs], &mut self.buf[..used]);
            self.stats.tx_copy_batches += 1;
        }
        let mut result = Ok(());
        for p in self.tx.pend[..npend].iter() {
            let mut drop = p.drop;
            let segs = &self.tx.segs[usize::from(p.seg_at)..][..usize::from(p.nsegs)];
            if drop.is_none() && !p.mcast && segs.iter().any(|s| s.status.is_err()) {
                drop = Some(Drop::Grant);
            }
            let status = if drop.is_some() { NETIF_RSP_ERROR } else { NETIF_RSP_OKAY };
            let frag_ids = &self.tx.frag_ids[usize::from(p.frag_at)..][..usize::from(p.nfrags)];
            let answered = (|| {
                Self::respond(ring, p.first_id, status)?;
                for _ in 0..p.extras {
                    Self::respond(ring, 0, NETIF_RSP_NULL)?;
                }
                for &id in frag_ids {
                    Self::respond(ring, id, status)?;
                }
                Ok(())
            })();
            if let Err(f) = answered {
                result = Err(f);
                break;
            }
            if p.mcast {
                self.stats.tx_mcast += 1;
                out.packets += 1;
            } else if drop.is_some() {
                self.stats.tx_errors += 1;
                out.errors += 1;
            } else {
                let (at, len) = (p.at as usize, p.len as usize);
                self.stats.tx_packets += 1;
                self.stats.tx_bytes += len as u64;
                if p.gso.is_some() {
                    self.stats.tx_gso_packets += 1;
                }
                out.packets += 1;
                sink(&TxPacket {
                    data: &self.buf[at..at + len],
                    csum_blank: p.flags & NETTXF_csum_blank != 0,
                    data_validated: p.flags & NETTXF_data_validated != 0,
                    gso: p.gso,
                });
            }
        }
        out.notify |= ring.push_responses_and_check_notify();
        result
    }

    /// Reads one packet's (or multicast request's) slots off the ring, `published` being
    /// available, checks them and adds the packet to the batch (with its copy segments,
    /// or how it is to be answered with errors). The batch has room
    /// ([`TxBatch::room`]). On a protocol break nothing is added.
    fn take_tx(&mut self, ring: &mut TxRing, published: usize) -> Result<(), Fatal> {
        let first = Self::next(ring)?;
        let mut left = published - 1;

        // Extra-info slots.
        let mut ex = Extras::default();
        if first.flags & NETTXF_extra_info != 0 {
            loop {
                if left == 0 {
                    return Err(Fatal::MissingExtra);
                }
                let e = as_extra(&Self::next(ring)?);
                left -= 1;
                ex.count += 1;
                if e.type_ == 0 || e.type_ >= XEN_NETIF_EXTRA_TYPE_MAX {
                    return Err(Fatal::BadExtraType(e.type_));
                }
                match e.type_ {
                    XEN_NETIF_EXTRA_TYPE_GSO => ex.gso = Some(e),
                    XEN_NETIF_EXTRA_TYPE_MCAST_ADD | XEN_NETIF_EXTRA_TYPE_MCAST_DEL => {
                        ex.mcast = true
                    }
                    // Hash: a hint for receive steering; nothing to do with one queue.
                    _ => {}
                }
                if e.flags & XEN_NETIF_EXTRA_FLAG_MORE == 0 {
                    break;
                }
            }
        }
        let b = &mut self.tx;
        let mut p = PendTx {
            first_id: first.id,
            flags: first.flags,
            // At most `published - 1` (< ring size) extras.
            extras: ex.count as u16,
            frag_at: b.nfrag_ids as u16,
            seg_at: b.nsegs as u16,
            at: b.used as u32,
            ..PendTx::default()
        };
        if ex.mcast {
            // We pass every multicast frame on (the TAP joins the bridge in full), so
            // adding or removing a filter address always succeeds. No packet follows.
            p.mcast = true;
            b.pend[b.npend] = p;
            b.npend += 1;
            return Ok(());
        }

        // Fragments (xenvif_count_requests).
        let mut nfrags = 0usize;
        let mut drop = None;
        let mut remaining = first.size;
        if first.flags & NETTXF_more_data != 0 {
            loop {
                if nfrags >= left {
                    return Err(Fatal::MissingSlots {
                        needed: nfrags + 1,
                        published: left,
                    });
                }
                if nfrags >= FATAL_SKB_SLOTS {
                    return Err(Fatal::TooManySlots(nfrags));
                }
                if drop.is_none() && nfrags >= LEGACY_SLOTS_MAX {
                    drop = Some(Drop::TooManySlots);
                }
                let t = Self::next(ring)?;
                if drop.is_none() && t.size > remaining {
                    drop = Some(Drop::SizeMismatch);
                }
                remaining = remaining.wrapping_sub(t.size);
                self.frags[nfrags] = t;
                nfrags += 1;
                if usize::from(t.offset) + usize::from(t.size) > PAGE_SIZE {
                    return Err(Fatal::CrossPage {
                        offset: t.offset,
                        size: t.size,
                    });
                }
                if t.flags & NETTXF_more_data == 0 {
                    break;
                }
            }
        }
        if drop.is_none() && usize::from(remaining) < ETH_HLEN {
            drop = Some(Drop::Runt);
        }
        if drop.is_none() && usize::from(first.offset) + usize::from(remaining) > PAGE_SIZE {
            return Err(Fatal::CrossPage {
                offset: first.offset,
                size: remaining,
            });
        }
        let gso = match (drop, ex.gso) {
            (None, Some(e)) => {
                if e.gso_size() == 0 {
                    return Err(Fatal::GsoSizeZero);
                }
                let kind = match e.gso_type() {
                    XEN_NETIF_GSO_TYPE_TCPV4 => GsoKind::TcpV4,
                    XEN_NETIF_GSO_TYPE_TCPV6 => GsoKind::TcpV6,
                    t => return Err(Fatal::BadGsoType(t)),
                };
                Some(Gso {
                    kind,
                    size: e.gso_size(),
                })
            }
            _ => None,
        };

        // Record the packet; its data is copied with the batch.
        let b = &mut self.tx;
        for (id, f) in b.frag_ids[b.nfrag_ids..].iter_mut().zip(&self.frags[..nfrags]) {
            *id = f.id;
        }
        b.nfrag_ids += nfrags;
        p.nfrags = nfrags as u8;
        p.drop = drop;
        p.gso = gso;
        if drop.is_none() {
            let total = usize::from(first.size);
            let base = b.used;
            b.segs[b.nsegs] = CopySeg::new(GrantRef(first.gref), first.offset, remaining, base);
            let mut at = base + usize::from(remaining);
            for (s, f) in b.segs[b.nsegs + 1..].iter_mut().zip(&self.frags[..nfrags]) {
                *s = CopySeg::new(GrantRef(f.gref), f.offset, f.size, at);
                at += usize::from(f.size);
            }
            // The sizes add up (checked above): `at == base + total`.
            b.nsegs += 1 + nfrags;
            p.nsegs = (1 + nfrags) as u8;
            p.len = total as u32;
            b.used += total;
        }
        b.pend[b.npend] = p;
        b.npend += 1;
        Ok(())
    }

    /// Copies `pkt` into buffers the front-end posted on `ring` and answers them (see
    /// the module documentation for the layout and flags). `Delivered::slots` counts
    /// the ring slots used, a GSO extra-info slot included.
    pub fn deliver_rx<G>(
        &mut self,
        ring: &mut RxRing,
        grants: &mut G,
        pkt: &[u8],
        meta: RxMeta,
    ) -> RxOutcome
    where
        G: GrantAccess + ?Sized,
    {
        let len = pkt.len();
        if let Some(b) = self.buf.get_mut(..len) {
            b.copy_from_slice(pkt);
        }
        // Larger than the buffer: refused as too big without looking at it.
        let frames = [RxFrameRef { at: 0, len, meta }];
        let o = rx_batch(
            &self.cfg,
            &mut self.stats,
            &mut self.rx,
            ring,
            grants,
            &mut self.buf[..],
            &frames,
        );
        if let Some(f) = o.fatal {
            return RxOutcome::Disconnect(f);
        }
        if o.taken == 0 {
            return RxOutcome::NoBuffers;
        }
        let p = self.rx.plan[0];
        match p.refused {
            Some(why) => RxOutcome::Dropped { why, notify: o.notify },
            None if p.failed => RxOutcome::Dropped {
                why: RxDrop::GrantFailed,
                notify: o.notify,
            },
            None => RxOutcome::Delivered {
                slots: (p.nsegs + usize::from(p.extra)) as u32,
                notify: o.notify,
            },
        }
    }

    /// Places `frames` (each `len` bytes at `at` in `buf`) into buffers the front-end
    /// posted, in order, with one [`GrantAccess::copy`] per up to [`RX_BATCH`] packets and
    /// one push at the end. Stops at the first packet the posted buffers cannot hold
    /// (`req_event` armed). `buf` is only read (mutable for the copy trait).
    pub fn deliver_rx_batch<G>(
        &mut self,
        ring: &mut RxRing,
        grants: &mut G,
        buf: &mut [u8],
        frames: &[RxFrameRef],
    ) -> RxBatchOutcome
    where
        G: GrantAccess + ?Sized,
    {
        rx_batch(&self.cfg, &mut self.stats, &mut self.rx, ring, grants, buf, frames)
    }

    /// Arms the receive ring's `req_event` for the front-end's next buffer (call before
    /// sleeping while packets wait for buffers; [`deliver_rx`](Self::deliver_rx) does it
    /// when it returns [`RxOutcome::NoBuffers`]). `Ok(true)`: buffers arrived meanwhile.
    pub fn rx_buffers_available(ring: &mut RxRing, needed: u32) -> Result<bool, Fatal> {
        ring.wait_for_requests(needed).map_err(Fatal::Ring)
    }
}

/// Why `f` cannot go to the front-end at all (before any buffer is used).
fn rx_refusal(cfg: &NetbackConfig, f: &RxFrameRef, buf_len: usize) -> Option<RxDrop> {
    let len = f.len;
    let max = if f.meta.gso.is_some() { MAX_RX_GSO_PACKET } else { MAX_PACKET };
    let slots = len.div_ceil(PAGE_SIZE);
    let in_buf = f.at.checked_add(len).is_some_and(|e| e <= buf_len);
    if len == 0 || len > max || !in_buf || (slots > 1 && !cfg.rx_sg) {
        return Some(RxDrop::TooBig(len));
    }
    if f.meta.csum_blank && !cfg.rx_csum_offload {
        return Some(RxDrop::CsumOffloadRefused);
    }
    match f.meta.gso {
        Some(Gso { kind: GsoKind::TcpV4, size }) if cfg.rx_gso_tcpv4 && size > 0 => None,
        Some(Gso { kind: GsoKind::TcpV6, size }) if cfg.rx_gso_tcpv6 && size > 0 => None,
        Some(_) => Some(RxDrop::GsoRefused),
        None => None,
    }
}

/// [`Netback::deliver_rx_batch`], on the parts of a [`Netback`] (so that a single
/// packet can be staged in its own buffer). Each packet's fate is left in `sc.plan`.
fn rx_batch<G>(
    cfg: &NetbackConfig,
    stats: &mut NetbackStats,
    sc: &mut RxScratch,
    ring: &mut RxRing,
    grants: &mut G,
    buf: &mut [u8],
    frames: &[RxFrameRef],
) -> RxBatchOutcome
where
    G: GrantAccess + ?Sized,
{
    let mut out = RxBatchOutcome::default();
    let mut stop = false;
    while out.taken < frames.len() && !stop {
        // Take buffers for as many packets as fit in one batch.
        let (mut nplan, mut nseg) = (0usize, 0usize);
        while !stop && out.taken + nplan < frames.len() && nplan < RX_BATCH {
            let f = frames[out.taken + nplan];
            if let Some(why) = rx_refusal(cfg, &f, buf.len()) {
                sc.plan[nplan] = RxPlan {
                    refused: Some(why),
                    ..RxPlan::default()
                };
                nplan += 1;
                continue;
            }
            let data = f.len.div_ceil(PAGE_SIZE);
            if nseg + data > RX_BATCH_SEGS {
                break;
            }
            let extra = f.meta.gso.is_some();
            let need = data + usize::from(extra);
            match ring.wait_for_requests(need as u32) {
                Ok(true) => {}
                Ok(false) => {
                    stop = true;
                    break;
                }
                Err(e) => {
                    out.fatal = Some(Fatal::Ring(e));
                    stop = true;
                    break;
                }
            }
            let mut i = 0;
            for k in 0..need {
                let req = match ring.read_request() {
                    Ok(Some(r)) => r,
                    // Checked above that `need` requests are published.
                    Ok(None) => {
                        out.fatal = Some(Fatal::MissingSlots {
                            needed: need - k,
                            published: 0,
                        });
                        break;
                    }
                    Err(e) => {
                        out.fatal = Some(Fatal::Ring(e));
                        break;
                    }
                };
                if extra && k == 1 {
                    // The extra-info slot: its buffer is used up, its id not echoed.
                    continue;
                }
                let at = i * PAGE_SIZE;
                let n = (f.len - at).min(PAGE_SIZE);
                sc.ids[nseg + i] = req.id;
                sc.segs[nseg + i] = CopySeg::new(GrantRef(req.gref), 0, n as u16, f.at + at);
                i += 1;
            }
            if out.fatal.is_some() {
                stop = true;
                break;
            }
            sc.plan[nplan] = RxPlan {
                seg_at: nseg,
                nsegs: data,
                extra,
                refused: None,
                failed: false,
            };
            nseg += data;
            nplan += 1;
        }
        if nplan == 0 {
            break;
        }
        // One copy for the batch, then the responses in ring order.
        if nseg > 0 {
            grants.copy(CopyDir::ToGrant, &mut sc.segs[..nseg], buf);
            stats.rx_copy_batches += 1;
        }
        for (p, f) in sc.plan[..nplan].iter_mut().zip(&frames[out.taken..]) {
            if p.refused.is_some() {
                stats.rx_dropped += 1;
                out.dropped += 1;
                continue;
            }
            let segs = &sc.segs[p.seg_at..p.seg_at + p.nsegs];
            let ids = &sc.ids[p.seg_at..p.seg_at + p.nsegs];
            p.failed = segs.iter().any(|s| s.status.is_err());
            for (i, (seg, &id)) in segs.iter().zip(ids).enumerate() {
                let mut flags = 0;
                if i == 0 && f.meta.csum_blank {
                    flags |= NETRXF_csum_blank | NETRXF_data_validated;
                } else if i == 0 && f.meta.data_validated {
                    flags |= NETRXF_data_validated;
                }
                if i == 0 && p.extra {
                    flags |= NETRXF_extra_info;
                }
                if i + 1 < p.nsegs {
                    flags |= NETRXF_more_data;
                }
                let status = if p.failed {
                    NETIF_RSP_ERROR
                } else {
                    seg.len as i16
                };
                let rsp = NetifRxResponse {
                    id,
                    offset: 0,
                    flags,
                    status,
                };
                if let Err(e) = ring.write_response(rsp) {
                    out.fatal = Some(Fatal::Ring(e));
                    break;
                }
                if i == 0 && p.extra {
                    if let Err(e) = ring.write_response(gso_response(f.meta.gso)) {
                        out.fatal = Some(Fatal::Ring(e));
                        break;
                    }
                }
            }
            if out.fatal.is_some() {
                break;
            }
            if p.failed {
                stats.rx_dropped += 1;
                out.dropped += 1;
            } else {
                stats.rx_packets += 1;
                stats.rx_bytes += f.len as u64;
                if p.extra {
                    stats.rx_gso_packets += 1;
                }
                out.delivered += 1;
            }
        }
        out.taken += nplan;
        if out.fatal.is_some() {
            break;
        }
    }
    out.notify = ring.push_responses_and_check_notify();
    out
}

/// The receive ring's extra-info response for a GSO packet (the ring slot is a union).
fn gso_response(gso: Option<Gso>) -> NetifRxResponse {
    let mut e = NetifExtraInfo {
        type_: XEN_NETIF_EXTRA_TYPE_GSO,
        flags: 0,
        ..Default::default()
    };
    if let Some(g) = gso {
        let t = match g.kind {
            GsoKind::TcpV4 => XEN_NETIF_GSO_TYPE_TCPV4,
            GsoKind::TcpV6 => XEN_NETIF_GSO_TYPE_TCPV6,
        };
        e.set_gso(g.size, t, 0);
    }
    match NetifRxResponse::read_from_prefix(e.as_bytes()) {
        Ok((r, _)) => r,
        // An 8-byte extra always fills the 8-byte response; unreachable, but never panic.
        Err(_) => NetifRxResponse::default(),
    }
}

/// Receive buffers a packet of `len` bytes needs.
pub const fn rx_slots_for(len: usize) -> usize {
    if len == 0 {
        1
    } else {
        len.div_ceil(PAGE_SIZE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_for_lengths() {
        assert_eq!(rx_slots_for(0), 1);
        assert_eq!(rx_slots_for(1), 1);
        assert_eq!(rx_slots_for(4096), 1);
        assert_eq!(rx_slots_for(4097), 2);
        assert_eq!(rx_slots_for(MAX_PACKET), MAX_RX_SLOTS);
    }

    #[test]
    fn extra_view_of_a_slot() {
        let mut e = NetifExtraInfo {
            type_: XEN_NETIF_EXTRA_TYPE_GSO,
            flags: XEN_NETIF_EXTRA_FLAG_MORE,
            ..Default::default()
        };
        e.set_gso(1448, XEN_NETIF_GSO_TYPE_TCPV4, 0);
        let mut slot = NetifTxRequest::default();
        slot.as_mut_bytes()[..8].copy_from_slice(e.as_bytes());
        assert_eq!(as_extra(&slot), e);
    }
}
