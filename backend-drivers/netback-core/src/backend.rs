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
//! Receive: a packet goes into as many posted buffers as it needs, a page each from
//! offset 0 (Linux's "fully coalesced" layout), `NETRXF_more_data` on all but the last,
//! the checksum flags on the first. A buffer whose grant cannot be written gets
//! `NETIF_RSP_ERROR` (the front-end drops the packet).

use xen_abi::netif::{
    NetifExtraInfo, NetifRxRequest, NetifRxResponse, NetifTxRequest, NetifTxResponse,
    NETIF_RSP_ERROR, NETIF_RSP_NULL, NETIF_RSP_OKAY, NETRXF_csum_blank, NETRXF_data_validated,
    NETRXF_more_data, NETTXF_csum_blank, NETTXF_data_validated, NETTXF_extra_info,
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
}

impl NetbackConfig {
    /// 64 packets per call, single-buffer receive, no receive checksum offload (what a
    /// front-end that published no features gets).
    pub const DEFAULT: Self = Self {
        max_tx_packets_per_call: 64,
        rx_sg: false,
        rx_csum_offload: false,
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
}

/// Why a received packet was dropped (the interface stays up).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RxDrop {
    /// Empty, larger than [`MAX_PACKET`], or larger than a page for a front-end without
    /// `feature-sg`.
    TooBig(usize),
    /// `csum_blank` for a front-end that did not accept checksum offload.
    CsumOffloadRefused,
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

/// The netif processor. Holds configuration, counters and private scratch space (a
/// packet buffer and the copied slots, about 66 KiB: box it), no per-ring state, so one
/// `Netback` can serve several interfaces in turn (with the same configuration).
pub struct Netback {
    cfg: NetbackConfig,
    stats: NetbackStats,
    /// Private copies of the current packet's fragment slots.
    frags: [NetifTxRequest; FATAL_SKB_SLOTS],
    /// Copy segments of the current packet.
    segs: [CopySeg; 1 + FATAL_SKB_SLOTS],
    /// The current packet's bytes.
    buf: [u8; MAX_PACKET],
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
            segs: [CopySeg::default(); 1 + FATAL_SKB_SLOTS],
            buf: [0; MAX_PACKET],
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
    /// answering every slot and publishing the responses, and hands each good packet to
    /// `sink`. When the ring runs dry, arms `req_event` (`RING_FINAL_CHECK_FOR_REQUESTS`)
    /// and goes on if requests arrived meanwhile.
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
            while out.packets + out.errors < budget {
                let published = match ring.unconsumed_requests() {
                    Ok(0) => break,
                    Ok(n) => n as usize,
                    Err(e) => return fatal(out, ring, Fatal::Ring(e)),
                };
                match self.one_tx(ring, grants, published, &mut sink) {
                    Ok(true) => out.packets += 1,
                    Ok(false) => out.errors += 1,
                    Err(f) => return fatal(out, ring, f),
                }
                // Publish at once so the front-end can reuse the slots.
                out.notify |= ring.push_responses_and_check_notify();
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

    /// Answers a packet's slots: the first, its extras (NULL), its `nfrags` fragments.
    fn respond_all(
        &self,
        ring: &mut TxRing,
        first: &NetifTxRequest,
        extras: usize,
        nfrags: usize,
        status: i16,
    ) -> Result<(), Fatal> {
        Self::respond(ring, first.id, status)?;
        for _ in 0..extras {
            Self::respond(ring, 0, NETIF_RSP_NULL)?;
        }
        for f in &self.frags[..nfrags] {
            Self::respond(ring, f.id, status)?;
        }
        Ok(())
    }

    /// Takes one packet (or multicast request) off the ring, `published` slots being
    /// available. `Ok(true)`: handed on (or a multicast request answered); `Ok(false)`:
    /// answered with errors.
    fn one_tx<G, F>(
        &mut self,
        ring: &mut TxRing,
        grants: &mut G,
        published: usize,
        sink: &mut F,
    ) -> Result<bool, Fatal>
    where
        G: GrantAccess + ?Sized,
        F: FnMut(&TxPacket<'_>),
    {
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
        if ex.mcast {
            // We pass every multicast frame on (the TAP joins the bridge in full), so
            // adding or removing a filter address always succeeds. No packet follows.
            self.respond_all(ring, &first, ex.count, 0, NETIF_RSP_OKAY)?;
            self.stats.tx_mcast += 1;
            return Ok(true);
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

        // Copy the data (all slots in one batch).
        let total = usize::from(first.size);
        if drop.is_none() {
            self.segs[0] = CopySeg::new(GrantRef(first.gref), first.offset, remaining, 0);
            let mut at = usize::from(remaining);
            for (s, f) in self.segs[1..].iter_mut().zip(&self.frags[..nfrags]) {
                *s = CopySeg::new(GrantRef(f.gref), f.offset, f.size, at);
                at += usize::from(f.size);
            }
            // The sizes add up (checked above): `at == total`.
            let segs = &mut self.segs[..1 + nfrags];
            grants.copy(CopyDir::FromGrant, segs, &mut self.buf[..total]);
            if segs.iter().any(|s| s.status.is_err()) {
                drop = Some(Drop::Grant);
            }
        }
        if drop.is_some() {
            self.respond_all(ring, &first, ex.count, nfrags, NETIF_RSP_ERROR)?;
            self.stats.tx_errors += 1;
            return Ok(false);
        }
        self.respond_all(ring, &first, ex.count, nfrags, NETIF_RSP_OKAY)?;
        self.stats.tx_packets += 1;
        self.stats.tx_bytes += total as u64;
        sink(&TxPacket {
            data: &self.buf[..total],
            csum_blank: first.flags & NETTXF_csum_blank != 0,
            data_validated: first.flags & NETTXF_data_validated != 0,
            gso,
        });
        Ok(true)
    }

    /// Copies `pkt` into buffers the front-end posted on `ring` and answers them (see
    /// the module documentation for the layout and flags).
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
        let slots = len.div_ceil(PAGE_SIZE);
        let too_big = len == 0 || len > MAX_PACKET || (slots > 1 && !self.cfg.rx_sg);
        let refuse = if too_big {
            Some(RxDrop::TooBig(len))
        } else if meta.csum_blank && !self.cfg.rx_csum_offload {
            Some(RxDrop::CsumOffloadRefused)
        } else {
            None
        };
        if let Some(why) = refuse {
            self.stats.rx_dropped += 1;
            return RxOutcome::Dropped { why, notify: false };
        }
        match ring.wait_for_requests(slots as u32) {
            Ok(true) => {}
            Ok(false) => return RxOutcome::NoBuffers,
            Err(e) => return RxOutcome::Disconnect(Fatal::Ring(e)),
        }
        let mut ids = [0u16; MAX_RX_SLOTS];
        let mut segs = [CopySeg::default(); MAX_RX_SLOTS];
        for (i, (id, seg)) in ids.iter_mut().zip(segs.iter_mut()).take(slots).enumerate() {
            let req = match ring.read_request() {
                Ok(Some(r)) => r,
                // Checked above that `slots` requests are published.
                Ok(None) => {
                    return RxOutcome::Disconnect(Fatal::MissingSlots {
                        needed: slots - i,
                        published: 0,
                    })
                }
                Err(e) => return RxOutcome::Disconnect(Fatal::Ring(e)),
            };
            let at = i * PAGE_SIZE;
            let n = (len - at).min(PAGE_SIZE);
            *id = req.id;
            *seg = CopySeg::new(GrantRef(req.gref), 0, n as u16, at);
        }
        let segs = &mut segs[..slots];
        // `copy` wants a mutable local buffer for either direction; stage the packet.
        self.buf[..len].copy_from_slice(pkt);
        grants.copy(CopyDir::ToGrant, segs, &mut self.buf[..len]);
        let failed = segs.iter().any(|s| s.status.is_err());
        for (i, (seg, &id)) in segs.iter().zip(&ids).enumerate() {
            let mut flags = 0;
            if i == 0 && meta.csum_blank {
                flags |= NETRXF_csum_blank | NETRXF_data_validated;
            } else if i == 0 && meta.data_validated {
                flags |= NETRXF_data_validated;
            }
            if i + 1 < slots {
                flags |= NETRXF_more_data;
            }
            let status = if failed {
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
                return RxOutcome::Disconnect(Fatal::Ring(e));
            }
        }
        let notify = ring.push_responses_and_check_notify();
        if failed {
            self.stats.rx_dropped += 1;
            return RxOutcome::Dropped {
                why: RxDrop::GrantFailed,
                notify,
            };
        }
        self.stats.rx_packets += 1;
        self.stats.rx_bytes += len as u64;
        RxOutcome::Delivered {
            slots: slots as u32,
            notify,
        }
    }

    /// Arms the receive ring's `req_event` for the front-end's next buffer (call before
    /// sleeping while packets wait for buffers; [`deliver_rx`](Self::deliver_rx) does it
    /// when it returns [`RxOutcome::NoBuffers`]). `Ok(true)`: buffers arrived meanwhile.
    pub fn rx_buffers_available(ring: &mut RxRing, needed: u32) -> Result<bool, Fatal> {
        ring.wait_for_requests(needed).map_err(Fatal::Ring)
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
