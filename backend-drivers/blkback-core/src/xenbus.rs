//! The xenbus side of a block back-end, as data: the keys it publishes in its own
//! directory (`/local/domain/<be>/backend/vbd/<fe>/<devid>`) and the keys it reads from
//! the front-end's (`/local/domain/<fe>/device/vbd/<devid>`), with their validation.
//! No xenstore client: reading goes through [`KeyRead`], writing through [`KeyWrite`],
//! both with keys relative to the respective directory.
//!
//! Order of the handshake (`io/xenbus.h`, Linux blkback): publish [`publish_features`],
//! switch to `InitWait`; once the front-end is `Initialised` (or `Connected`), call
//! [`read_frontend`], map the ring and bind the event channel, publish
//! [`publish_disk`], switch to `Connected`.

use xenstore_wire::Decimal;
use xen_abi::blkif::VDISK_READONLY;
use xen_abi::{EvtchnPort, GrantRef};

use crate::backend::BackendConfig;
use crate::store::BlockStore;

pub use xenstore_wire::keys::{KeyRead, KeyWrite};

/// Key names.
pub mod keys {
    /// Back-end: disk size in 512-byte sectors.
    pub const SECTORS: &str = "sectors";
    /// Back-end: `VDISK_*` bits.
    pub const INFO: &str = "info";
    /// Back-end: logical sector size in bytes.
    pub const SECTOR_SIZE: &str = "sector-size";
    /// Back-end: physical sector size in bytes.
    pub const PHYSICAL_SECTOR_SIZE: &str = "physical-sector-size";
    /// Back-end: `BLKIF_OP_FLUSH_DISKCACHE` is supported.
    pub const FEATURE_FLUSH_CACHE: &str = "feature-flush-cache";
    /// Back-end: `BLKIF_OP_WRITE_BARRIER` is supported.
    pub const FEATURE_BARRIER: &str = "feature-barrier";
    /// Back-end: `BLKIF_OP_DISCARD` is supported.
    pub const FEATURE_DISCARD: &str = "feature-discard";
    /// Back-end: discard granularity in bytes.
    pub const DISCARD_GRANULARITY: &str = "discard-granularity";
    /// Back-end: discard alignment in bytes.
    pub const DISCARD_ALIGNMENT: &str = "discard-alignment";
    /// Back-end: `BLKIF_DISCARD_SECURE` is honoured.
    pub const DISCARD_SECURE: &str = "discard-secure";
    /// Both ends: persistent grants.
    pub const FEATURE_PERSISTENT: &str = "feature-persistent";
    /// Back-end: most segments in a `BLKIF_OP_INDIRECT` request.
    pub const FEATURE_MAX_INDIRECT_SEGMENTS: &str = "feature-max-indirect-segments";
    /// Back-end: largest ring the front-end may use (log2 of pages).
    pub const MAX_RING_PAGE_ORDER: &str = "max-ring-page-order";
    /// Front-end: grant reference of a single-page ring.
    pub const RING_REF: &str = "ring-ref";
    /// Front-end: log2 of the ring's pages (then `ring-ref0..N-1`).
    pub const RING_PAGE_ORDER: &str = "ring-page-order";
    /// Front-end: event channel port.
    pub const EVENT_CHANNEL: &str = "event-channel";
    /// Front-end: request layout (`XEN_IO_PROTO_ABI_*`).
    pub const PROTOCOL: &str = "protocol";
    /// Front-end: number of rings (multi-queue; then `queue-N/ring-ref`,
    /// `queue-N/event-channel`).
    pub const MULTI_QUEUE_NUM_QUEUES: &str = "multi-queue-num-queues";
    /// Back-end: most rings a front-end may use.
    pub const MULTI_QUEUE_MAX_QUEUES: &str = "multi-queue-max-queues";
    /// `ring-ref0` .. `ring-ref15` (order up to [`super::MAX_RING_PAGE_ORDER`]).
    pub const RING_REF_N: [&str; super::MAX_RING_PAGES] = [
        "ring-ref0",
        "ring-ref1",
        "ring-ref2",
        "ring-ref3",
        "ring-ref4",
        "ring-ref5",
        "ring-ref6",
        "ring-ref7",
        "ring-ref8",
        "ring-ref9",
        "ring-ref10",
        "ring-ref11",
        "ring-ref12",
        "ring-ref13",
        "ring-ref14",
        "ring-ref15",
    ];
}

/// `XEN_IO_PROTO_ABI_X86_64`: the only request layout served here.
pub const PROTOCOL_X86_64: &str = "x86_64-abi";
/// `XEN_IO_PROTO_ABI_X86_32` (refused: different layout).
pub const PROTOCOL_X86_32: &str = "x86_32-abi";
/// Largest ring order a front-end may ask for (Linux's `XENBUS_MAX_RING_GRANT_ORDER`).
pub const MAX_RING_PAGE_ORDER: u8 = 4;
/// Pages in the largest ring.
pub const MAX_RING_PAGES: usize = 1 << MAX_RING_PAGE_ORDER;
/// Most rings (queues) per device served here (Linux blkback: `xenblk_max_queues`,
/// the number of CPUs by default).
pub const MAX_QUEUES: usize = 8;

/// Device properties published before `Connected` (Linux blkfront requires `sectors`,
/// `info` and `sector-size`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiskInfo {
    /// Size in 512-byte sectors.
    pub sectors: u64,
    /// `VDISK_*` bits.
    pub info: u32,
    /// Logical sector size in bytes.
    pub sector_size: u32,
    /// Physical sector size in bytes.
    pub physical_sector_size: u32,
}

impl DiskInfo {
    /// The properties of `store` served with `cfg` (`VDISK_READONLY` when read-only),
    /// plus `extra_info` bits (`VDISK_CDROM`, `VDISK_REMOVABLE`).
    pub fn of<S: BlockStore + ?Sized>(store: &S, cfg: &BackendConfig, extra_info: u32) -> Self {
        let ro = if cfg.readonly { VDISK_READONLY } else { 0 };
        Self {
            sectors: store.sector_count(),
            info: extra_info | ro,
            sector_size: store.sector_size(),
            physical_sector_size: store.physical_sector_size(),
        }
    }
}

/// Discard parameters (`feature-discard` and friends).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DiscardInfo {
    /// `discard-granularity` in bytes.
    pub granularity: u32,
    /// `discard-alignment` in bytes.
    pub alignment: u32,
    /// `discard-secure`.
    pub secure: bool,
}

/// Features published before `InitWait`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendFeatures {
    /// `feature-flush-cache`.
    pub flush_cache: bool,
    /// `feature-barrier`.
    pub barrier: bool,
    /// `feature-discard` = 1 with these parameters, or 0.
    pub discard: Option<DiscardInfo>,
    /// `feature-persistent`. A copying back-end can always say yes: the front-end then
    /// keeps its pages granted, which costs the back-end nothing.
    pub persistent: bool,
    /// `feature-max-indirect-segments` (not published when 0).
    pub max_indirect_segments: u16,
    /// `max-ring-page-order` (not published when 0: single-page rings only, `ring-ref`).
    pub max_ring_page_order: u8,
    /// `multi-queue-max-queues` (not published when 1 or less: one ring only).
    pub max_queues: u32,
}

impl BackendFeatures {
    /// The features of a back-end with `cfg` over a store that supports flushing and
    /// discarding (`discard_granularity` = 0 means the logical sector size).
    pub fn of<S: BlockStore + ?Sized>(
        store: &S,
        cfg: &BackendConfig,
        discard_granularity: u32,
    ) -> Self {
        let gran = if discard_granularity == 0 {
            store.sector_size()
        } else {
            discard_granularity
        };
        Self {
            flush_cache: true,
            barrier: true,
            discard: Some(DiscardInfo {
                granularity: gran,
                alignment: 0,
                secure: cfg.discard_secure,
            }),
            persistent: true,
            max_indirect_segments: cfg.max_indirect_segments,
            max_ring_page_order: 0,
            max_queues: 1,
        }
    }
}

/// Writes `v` in decimal as `key`.
fn put(out: &mut (impl KeyWrite + ?Sized), key: &str, v: u64) {
    out.write_key(key, Decimal::new(v).as_str());
}

/// Publishes the back-end's features (before switching to `InitWait`).
pub fn publish_features(f: &BackendFeatures, out: &mut (impl KeyWrite + ?Sized)) {
    put(out, keys::FEATURE_FLUSH_CACHE, f.flush_cache.into());
    put(out, keys::FEATURE_BARRIER, f.barrier.into());
    match f.discard {
        Some(d) => {
            put(out, keys::DISCARD_GRANULARITY, d.granularity.into());
            put(out, keys::DISCARD_ALIGNMENT, d.alignment.into());
            put(out, keys::DISCARD_SECURE, d.secure.into());
            put(out, keys::FEATURE_DISCARD, 1);
        }
        None => put(out, keys::FEATURE_DISCARD, 0),
    }
    put(out, keys::FEATURE_PERSISTENT, f.persistent.into());
    if f.max_indirect_segments != 0 {
        put(
            out,
            keys::FEATURE_MAX_INDIRECT_SEGMENTS,
            f.max_indirect_segments.into(),
        );
    }
    if f.max_ring_page_order != 0 {
        put(out, keys::MAX_RING_PAGE_ORDER, f.max_ring_page_order.into());
    }
    if f.max_queues > 1 {
        put(out, keys::MULTI_QUEUE_MAX_QUEUES, f.max_queues.into());
    }
}

/// Publishes the disk's properties (before switching to `Connected`).
pub fn publish_disk(d: &DiskInfo, out: &mut (impl KeyWrite + ?Sized)) {
    put(out, keys::SECTORS, d.sectors);
    put(out, keys::INFO, d.info.into());
    put(out, keys::SECTOR_SIZE, d.sector_size.into());
    put(
        out,
        keys::PHYSICAL_SECTOR_SIZE,
        d.physical_sector_size.into(),
    );
}

/// The request layout the front-end declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// `x86_64-abi` (also assumed when `protocol` is absent: blkif.h's default is the
    /// native layout).
    X86_64,
}

/// What the front-end published for its ring.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendRing {
    /// log2 of the ring's pages (0: a single page from `ring-ref`).
    pub ring_page_order: u8,
    refs: [GrantRef; MAX_RING_PAGES],
    /// Event channel port in the front-end's domain (bind it as an interdomain channel).
    pub event_channel: EvtchnPort,
    /// Request layout.
    pub protocol: Protocol,
    /// The front-end asked for persistent grants (`feature-persistent` = 1).
    pub persistent: bool,
}

impl FrontendRing {
    /// Grant references of the ring pages, in order (map them contiguously).
    pub fn ring_refs(&self) -> &[GrantRef] {
        &self.refs[..1 << self.ring_page_order]
    }

    /// Bytes of the ring (pass to `BackRing::init` with the mapping).
    pub fn ring_bytes(&self) -> usize {
        crate::PAGE_SIZE << self.ring_page_order
    }
}

/// Why the front-end's keys are unusable (Linux blkback: `xenbus_dev_fatal`, the device
/// goes to `Closing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendKeyError {
    /// A required key is absent.
    Missing(&'static str),
    /// A key's value is not what it must be (not a number, out of range, too long).
    Invalid(&'static str),
    /// `ring-page-order` above what we advertised.
    RingPageOrderTooLarge {
        /// What the front-end asked for.
        order: u32,
        /// What we allow.
        max: u8,
    },
    /// `protocol` is not `x86_64-abi` (e.g. `x86_32-abi`).
    UnsupportedProtocol,
    /// `multi-queue-num-queues` of 0, or above what we advertised
    /// (`multi-queue-max-queues`, 1 when not advertised).
    UnsupportedQueues(u32),
    /// A key of queue `queue`'s directory (`queue-N/...`) is absent (`missing`) or
    /// invalid.
    Queue {
        queue: u8,
        key: &'static str,
        missing: bool,
    },
}

impl core::fmt::Display for FrontendKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing(k) => write!(f, "front-end key {k} missing"),
            Self::Invalid(k) => write!(f, "front-end key {k} invalid"),
            Self::RingPageOrderTooLarge { order, max } => {
                write!(f, "ring-page-order {order} exceeds max {max}")
            }
            Self::UnsupportedProtocol => write!(f, "unsupported front-end protocol"),
            Self::UnsupportedQueues(n) => write!(f, "{n} queues requested: unsupported"),
            Self::Queue {
                queue,
                key,
                missing: true,
            } => {
                write!(f, "front-end key queue-{queue}/{key} missing")
            }
            Self::Queue {
                queue,
                key,
                missing: false,
            } => {
                write!(f, "front-end key queue-{queue}/{key} invalid")
            }
        }
    }
}

/// Longest value we read (a u64 in decimal is 20 digits; protocol names are shorter).
const VALUE_MAX: usize = 32;

/// Strips a trailing NUL and surrounding ASCII whitespace.
fn trim(v: &[u8]) -> &[u8] {
    let v = match v.split_last() {
        Some((0, rest)) => rest,
        _ => v,
    };
    v.trim_ascii()
}

/// Reads `key` into `buf`: `Ok(None)` if absent, `Invalid` if too long.
fn read_raw<'b>(
    kv: &mut (impl KeyRead + ?Sized),
    key: &'static str,
    buf: &'b mut [u8; VALUE_MAX],
) -> Result<Option<&'b [u8]>, FrontendKeyError> {
    match kv.read_key(key, buf) {
        None => Ok(None),
        Some(n) if n > buf.len() => Err(FrontendKeyError::Invalid(key)),
        Some(n) => Ok(Some(trim(&buf[..n]))),
    }
}

/// Parses a key's number as xenbus does (see [`xenstore_wire::keys::parse_number`]).
pub use xenstore_wire::keys::parse_number as parse_decimal;

fn read_u32(
    kv: &mut (impl KeyRead + ?Sized),
    key: &'static str,
) -> Result<Option<u32>, FrontendKeyError> {
    let mut b = [0u8; VALUE_MAX];
    match read_raw(kv, key, &mut b)? {
        None => Ok(None),
        Some(v) => parse_decimal(v)
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or(FrontendKeyError::Invalid(key)),
    }
}

fn require_u32(
    kv: &mut (impl KeyRead + ?Sized),
    key: &'static str,
) -> Result<u32, FrontendKeyError> {
    read_u32(kv, key)?.ok_or(FrontendKeyError::Missing(key))
}

/// Reads and checks the front-end's ring description: `ring-ref` (or `ring-page-order`
/// up to `max_ring_page_order` and `ring-ref0..N-1`), `event-channel` (non-zero),
/// `protocol` (absent or `x86_64-abi`), optional `feature-persistent` and
/// `multi-queue-num-queues` (absent or 1: see [`read_frontend_queues`] for more).
pub fn read_frontend(
    kv: &mut (impl KeyRead + ?Sized),
    max_ring_page_order: u8,
) -> Result<FrontendRing, FrontendKeyError> {
    read_frontend_queues(kv, max_ring_page_order, 1).map(|q| q.rings[0])
}

/// The rings of a (possibly multi-queue) front-end, in queue order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendQueues {
    rings: [FrontendRing; MAX_QUEUES],
    nr: usize,
}

impl FrontendQueues {
    /// One ring per queue (at least one).
    pub fn rings(&self) -> &[FrontendRing] {
        &self.rings[..self.nr]
    }
}

/// Reads `key` of queue `q`'s directory through `kv` (`queue-<q>/<key>`).
struct InQueue<'a, K: ?Sized> {
    kv: &'a mut K,
    queue: u8,
}

impl<K: KeyRead + ?Sized> KeyRead for InQueue<'_, K> {
    fn read_key(&mut self, key: &str, buf: &mut [u8]) -> Option<usize> {
        let mut path = [0u8; 48];
        let mut n = 0;
        for part in ["queue-", Decimal::new(self.queue.into()).as_str(), "/", key] {
            let end = n + part.len();
            // Our own key names: never longer than the buffer.
            path.get_mut(n..end)?.copy_from_slice(part.as_bytes());
            n = end;
        }
        self.kv
            .read_key(core::str::from_utf8(&path[..n]).ok()?, buf)
    }
}

/// Reads the keys of one ring (`ring-ref` or `ring-ref0..N-1` for `order`, and
/// `event-channel`) from `kv`.
fn read_ring(
    kv: &mut (impl KeyRead + ?Sized),
    order: Option<u32>,
) -> Result<([GrantRef; MAX_RING_PAGES], EvtchnPort), FrontendKeyError> {
    let mut refs = [GrantRef(0); MAX_RING_PAGES];
    match order {
        None => refs[0] = GrantRef(require_u32(kv, keys::RING_REF)?),
        Some(order) => {
            for (i, r) in refs.iter_mut().take(1 << order).enumerate() {
                *r = GrantRef(require_u32(kv, keys::RING_REF_N[i])?);
            }
        }
    }
    let port = require_u32(kv, keys::EVENT_CHANNEL)?;
    if port == 0 {
        return Err(FrontendKeyError::Invalid(keys::EVENT_CHANNEL));
    }
    Ok((refs, EvtchnPort(port)))
}

/// As [`read_frontend`], for a front-end that may use up to `max_queues` rings
/// (clamped to 1..=[`MAX_QUEUES`]; what we advertised as `multi-queue-max-queues`).
/// With `multi-queue-num-queues` = N > 1 each ring's `ring-ref`(`N`) and
/// `event-channel` are in `queue-0/` .. `queue-<N-1>/`, while `ring-page-order`,
/// `protocol` and `feature-persistent` stay at the top (Linux's layout); otherwise the
/// one ring's keys are at the top.
pub fn read_frontend_queues(
    kv: &mut (impl KeyRead + ?Sized),
    max_ring_page_order: u8,
    max_queues: u32,
) -> Result<FrontendQueues, FrontendKeyError> {
    let max_order = max_ring_page_order.min(MAX_RING_PAGE_ORDER);
    let max_queues = max_queues.clamp(1, MAX_QUEUES as u32);
    let nr = match read_u32(kv, keys::MULTI_QUEUE_NUM_QUEUES)? {
        None => 1,
        Some(n) if n == 0 || n > max_queues => return Err(FrontendKeyError::UnsupportedQueues(n)),
        Some(n) => n as usize,
    };
    let order = match read_u32(kv, keys::RING_PAGE_ORDER)? {
        Some(order) if order > u32::from(max_order) => {
            return Err(FrontendKeyError::RingPageOrderTooLarge {
                order,
                max: max_order,
            })
        }
        o => o,
    };
    let mut b = [0u8; VALUE_MAX];
    let protocol = match read_raw(kv, keys::PROTOCOL, &mut b) {
        Ok(None) => Protocol::X86_64,
        Ok(Some(v)) if v == PROTOCOL_X86_64.as_bytes() => Protocol::X86_64,
        Ok(Some(_)) | Err(_) => return Err(FrontendKeyError::UnsupportedProtocol),
    };
    // Optional flag: like Linux's xenbus_read_unsigned, anything unreadable means 0.
    let persistent = matches!(read_u32(kv, keys::FEATURE_PERSISTENT), Ok(Some(n)) if n != 0);
    let blank = FrontendRing {
        ring_page_order: order.unwrap_or(0) as u8,
        refs: [GrantRef(0); MAX_RING_PAGES],
        event_channel: EvtchnPort(0),
        protocol,
        persistent,
    };
    let mut out = FrontendQueues {
        rings: [blank; MAX_QUEUES],
        nr,
    };
    if nr == 1 {
        let (refs, port) = read_ring(kv, order)?;
        out.rings[0].refs = refs;
        out.rings[0].event_channel = port;
    } else {
        for (q, ring) in out.rings.iter_mut().take(nr).enumerate() {
            let queue = q as u8;
            let (refs, port) = read_ring(
                &mut InQueue {
                    kv: &mut *kv,
                    queue,
                },
                order,
            )
            .map_err(|e| match e {
                FrontendKeyError::Missing(key) => FrontendKeyError::Queue {
                    queue,
                    key,
                    missing: true,
                },
                FrontendKeyError::Invalid(key) => FrontendKeyError::Queue {
                    queue,
                    key,
                    missing: false,
                },
                other => other,
            })?;
            ring.refs = refs;
            ring.event_channel = port;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use std::string::{String, ToString};

    fn reader(m: &BTreeMap<String, String>) -> impl FnMut(&str, &mut [u8]) -> Option<usize> + '_ {
        |k: &str, buf: &mut [u8]| {
            let v = m.get(k)?.as_bytes();
            let n = v.len().min(buf.len());
            buf[..n].copy_from_slice(&v[..n]);
            Some(v.len())
        }
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn single_page_ring() {
        let m = map(&[
            ("ring-ref", "8"),
            ("event-channel", "5"),
            ("protocol", "x86_64-abi"),
        ]);
        let r = read_frontend(&mut reader(&m), 0).unwrap();
        assert_eq!(r.ring_refs(), &[GrantRef(8)]);
        assert_eq!(r.event_channel, EvtchnPort(5));
        assert_eq!(r.ring_bytes(), 4096);
        assert!(!r.persistent);
        // protocol absent: native; trailing NUL and newline tolerated.
        let m = map(&[
            ("ring-ref", "9\0"),
            ("event-channel", " 7\n"),
            ("feature-persistent", "1"),
        ]);
        let r = read_frontend(&mut reader(&m), 0).unwrap();
        assert_eq!(r.ring_refs(), &[GrantRef(9)]);
        assert!(r.persistent);
    }

    #[test]
    fn multi_page_ring() {
        let m = map(&[
            ("ring-page-order", "2"),
            ("ring-ref0", "10"),
            ("ring-ref1", "11"),
            ("ring-ref2", "12"),
            ("ring-ref3", "13"),
            ("event-channel", "3"),
        ]);
        let r = read_frontend(&mut reader(&m), 2).unwrap();
        assert_eq!(
            r.ring_refs(),
            &[GrantRef(10), GrantRef(11), GrantRef(12), GrantRef(13)]
        );
        assert_eq!(r.ring_bytes(), 4 * 4096);
        assert_eq!(
            read_frontend(&mut reader(&m), 1),
            Err(FrontendKeyError::RingPageOrderTooLarge { order: 2, max: 1 })
        );
        let mut m2 = m.clone();
        m2.remove("ring-ref3");
        assert_eq!(
            read_frontend(&mut reader(&m2), 4),
            Err(FrontendKeyError::Missing("ring-ref3"))
        );
    }

    #[test]
    fn bad_keys() {
        let ok = map(&[("ring-ref", "8"), ("event-channel", "5")]);
        let with = |k: &str, v: &str| {
            let mut m = ok.clone();
            m.insert(k.to_string(), v.to_string());
            m
        };
        let without = |k: &str| {
            let mut m = ok.clone();
            m.remove(k);
            m
        };
        use FrontendKeyError::*;
        for (m, e) in [
            (with("ring-ref", "x"), Invalid("ring-ref")),
            (with("ring-ref", "-1"), Invalid("ring-ref")),
            (with("ring-ref", ""), Invalid("ring-ref")),
            (with("ring-ref", "4294967296"), Invalid("ring-ref")),
            (
                with("ring-ref", "123456789012345678901234567890123456"),
                Invalid("ring-ref"),
            ),
            (without("ring-ref"), Missing("ring-ref")),
            (without("event-channel"), Missing("event-channel")),
            (with("event-channel", "0"), Invalid("event-channel")),
            (with("protocol", "x86_32-abi"), UnsupportedProtocol),
            (with("protocol", "arm-abi"), UnsupportedProtocol),
            (
                with("ring-page-order", "1"),
                RingPageOrderTooLarge { order: 1, max: 0 },
            ),
            (with("ring-page-order", "z"), Invalid("ring-page-order")),
            (with("multi-queue-num-queues", "4"), UnsupportedQueues(4)),
        ] {
            assert_eq!(read_frontend(&mut reader(&m), 0), Err(e), "{m:?}");
        }
        assert!(read_frontend(&mut reader(&with("multi-queue-num-queues", "1")), 0).is_ok());
        assert!(read_frontend(&mut reader(&with("feature-persistent", "garbage")), 0).is_ok());
    }

    #[test]
    fn multi_queue_rings() {
        let m = map(&[
            ("multi-queue-num-queues", "3"),
            ("ring-page-order", "1"),
            ("queue-0/ring-ref0", "10"),
            ("queue-0/ring-ref1", "11"),
            ("queue-0/event-channel", "5"),
            ("queue-1/ring-ref0", "20"),
            ("queue-1/ring-ref1", "21"),
            ("queue-1/event-channel", "6"),
            ("queue-2/ring-ref0", "30"),
            ("queue-2/ring-ref1", "31"),
            ("queue-2/event-channel", "7"),
            ("feature-persistent", "1"),
        ]);
        let q = read_frontend_queues(&mut reader(&m), 1, 4).unwrap();
        assert_eq!(q.rings().len(), 3);
        for (i, r) in q.rings().iter().enumerate() {
            let base = 10 * (i as u32 + 1);
            assert_eq!(r.ring_refs(), &[GrantRef(base), GrantRef(base + 1)]);
            assert_eq!(r.event_channel, EvtchnPort(5 + i as u32));
            assert_eq!(r.ring_bytes(), 8192);
            assert!(r.persistent);
        }
        use FrontendKeyError::*;
        // More queues than advertised, zero queues, and the single-ring reader.
        assert_eq!(
            read_frontend_queues(&mut reader(&m), 1, 2),
            Err(UnsupportedQueues(3))
        );
        assert_eq!(read_frontend(&mut reader(&m), 1), Err(UnsupportedQueues(3)));
        let mut z = m.clone();
        z.insert("multi-queue-num-queues".to_string(), "0".to_string());
        assert_eq!(
            read_frontend_queues(&mut reader(&z), 1, 4),
            Err(UnsupportedQueues(0))
        );
        // A key missing or bad in one queue's directory names the queue.
        let mut z = m.clone();
        z.remove("queue-2/ring-ref1");
        assert_eq!(
            read_frontend_queues(&mut reader(&z), 1, 4),
            Err(Queue {
                queue: 2,
                key: "ring-ref1",
                missing: true
            })
        );
        let mut z = m.clone();
        z.insert("queue-1/event-channel".to_string(), "0".to_string());
        assert_eq!(
            read_frontend_queues(&mut reader(&z), 1, 4),
            Err(Queue {
                queue: 1,
                key: "event-channel",
                missing: false
            })
        );
        // One queue: keys at the top, as before.
        let one = map(&[
            ("multi-queue-num-queues", "1"),
            ("ring-ref", "8"),
            ("event-channel", "5"),
        ]);
        let q = read_frontend_queues(&mut reader(&one), 0, 4).unwrap();
        assert_eq!(q.rings().len(), 1);
        assert_eq!(q.rings()[0].ring_refs(), &[GrantRef(8)]);
        // max_queues above MAX_QUEUES is clamped.
        let mut big = m.clone();
        big.insert("multi-queue-num-queues".to_string(), "9".to_string());
        assert_eq!(
            read_frontend_queues(&mut reader(&big), 1, 1000),
            Err(UnsupportedQueues(9))
        );
        // Advertised.
        let mut out = BTreeMap::new();
        let f = BackendFeatures {
            max_queues: 4,
            ..BackendFeatures::of(
                &crate::RamDisk::new(&mut [0u8; 512]),
                &BackendConfig::DEFAULT,
                0,
            )
        };
        publish_features(&f, &mut |k: &str, v: &str| {
            out.insert(k.to_string(), v.to_string());
        });
        assert_eq!(
            out.get("multi-queue-max-queues").map(String::as_str),
            Some("4")
        );
    }

    use proptest::prelude::*;

    proptest! {
        /// Any front-end keys: a typed error or rings that match the keys, never a panic.
        #[test]
        fn hostile_queue_keys(
            n in proptest::option::of(proptest::prop_oneof![0u32..10, proptest::num::u32::ANY]),
            order in proptest::option::of(0u32..6),
            vals in proptest::collection::vec((0usize..10, 0usize..18, proptest::prop_oneof![
                (0u32..100).prop_map(|v| v.to_string()),
                ".{0,40}".prop_map(String::from)
            ]), 0..40),
            max_queues in 0u32..12,
        ) {
            let mut m = BTreeMap::new();
            if let Some(n) = n {
                m.insert("multi-queue-num-queues".to_string(), n.to_string());
            }
            if let Some(o) = order {
                m.insert("ring-page-order".to_string(), o.to_string());
            }
            for (q, k, v) in vals {
                let key = match k {
                    16 => "event-channel".to_string(),
                    17 => "ring-ref".to_string(),
                    k => std::format!("ring-ref{k}"),
                };
                m.insert(std::format!("queue-{q}/{key}"), v.clone());
                m.insert(key, v);
            }
            let res = read_frontend_queues(&mut reader(&m), 2, max_queues);
            if let Ok(q) = res {
                let nr = n.unwrap_or(1) as usize;
                prop_assert_eq!(q.rings().len(), nr);
                prop_assert!(nr <= max_queues.clamp(1, MAX_QUEUES as u32) as usize);
                for (i, r) in q.rings().iter().enumerate() {
                    prop_assert!(r.event_channel.0 != 0);
                    prop_assert!(r.ring_page_order <= 2);
                    let dir = if nr > 1 { std::format!("queue-{i}/") } else { String::new() };
                    let ev = m.get(&std::format!("{dir}event-channel")).unwrap();
                    prop_assert_eq!(parse_decimal(ev.as_bytes()), Some(u64::from(r.event_channel.0)));
                }
            }
        }
    }

    #[test]
    fn published_keys() {
        let mut mem = [0u8; 512 * 100];
        let disk = crate::RamDisk::new(&mut mem);
        let cfg = BackendConfig {
            readonly: true,
            ..BackendConfig::DEFAULT
        };
        let mut out = BTreeMap::new();
        let mut w = |k: &str, v: &str| {
            out.insert(k.to_string(), v.to_string());
        };
        publish_features(&BackendFeatures::of(&disk, &cfg, 0), &mut w);
        publish_disk(&DiskInfo::of(&disk, &cfg, 0), &mut w);
        let expect = map(&[
            ("discard-alignment", "0"),
            ("discard-granularity", "512"),
            ("discard-secure", "0"),
            ("feature-barrier", "1"),
            ("feature-discard", "1"),
            ("feature-flush-cache", "1"),
            ("feature-max-indirect-segments", "256"),
            ("feature-persistent", "1"),
            ("info", "4"),
            ("physical-sector-size", "512"),
            ("sector-size", "512"),
            ("sectors", "100"),
        ]);
        assert_eq!(out, expect);
        assert_eq!(Decimal::new(u64::MAX).as_str(), "18446744073709551615");
        assert_eq!(Decimal::new(0).as_str(), "0");
    }
}
