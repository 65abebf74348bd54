//! The xenbus side of a network back-end, as data: the keys it publishes in its own
//! directory (`/local/domain/<be>/backend/vif/<fe>/<devid>`) and the keys it reads from
//! the front-end's (`/local/domain/<fe>/device/vif/<devid>`), with their validation.
//! No xenstore client: reading goes through [`KeyRead`], writing through [`KeyWrite`].
//!
//! Order (Linux netback): publish [`publish_features`], `InitWait`; when the front-end
//! is `Connected` (Linux's netfront goes there directly; `Initialised` is accepted too),
//! [`read_frontend`], map both rings, bind the channel(s), `hotplug-status` =
//! `connected` once the host side of the interface is set up, then `Connected`.

use xen_abi::{EvtchnPort, GrantRef};

use crate::NetbackConfig;

pub use xenstore_wire::keys::{KeyRead, KeyWrite};

/// Key names.
pub mod keys {
    /// Back-end: scatter-gather (multi-slot packets) both ways.
    pub const FEATURE_SG: &str = "feature-sg";
    /// Back-end: TCPv4 segmentation offload on transmit.
    pub const FEATURE_GSO_TCPV4: &str = "feature-gso-tcpv4";
    /// Back-end: TCPv6 segmentation offload on transmit.
    pub const FEATURE_GSO_TCPV6: &str = "feature-gso-tcpv6";
    /// Back-end: `NETTXF_csum_blank` on IPv6 packets.
    pub const FEATURE_IPV6_CSUM_OFFLOAD: &str = "feature-ipv6-csum-offload";
    /// Back-end: receive by copy.
    pub const FEATURE_RX_COPY: &str = "feature-rx-copy";
    /// Back-end: receive by page flipping (never).
    pub const FEATURE_RX_FLIP: &str = "feature-rx-flip";
    /// Back-end: separate transmit and receive event channels.
    pub const FEATURE_SPLIT_EVENT_CHANNELS: &str = "feature-split-event-channels";
    /// Back-end: written once the host side of the interface exists (the hotplug
    /// script's job in Xen's toolstack).
    pub const HOTPLUG_STATUS: &str = "hotplug-status";
    /// Front-end: grant reference of the transmit ring.
    pub const TX_RING_REF: &str = "tx-ring-ref";
    /// Front-end: grant reference of the receive ring.
    pub const RX_RING_REF: &str = "rx-ring-ref";
    /// Front-end: one event channel for both rings.
    pub const EVENT_CHANNEL: &str = "event-channel";
    /// Front-end: split event channels.
    pub const EVENT_CHANNEL_TX: &str = "event-channel-tx";
    /// Front-end: split event channels.
    pub const EVENT_CHANNEL_RX: &str = "event-channel-rx";
    /// Front-end: wants receive by copy (must be 1).
    pub const REQUEST_RX_COPY: &str = "request-rx-copy";
    /// Front-end: notifies when it posts receive buffers (mandatory in Linux).
    pub const FEATURE_RX_NOTIFY: &str = "feature-rx-notify";
    /// Front-end: takes no `NETRXF_csum_blank` packets.
    pub const FEATURE_NO_CSUM_OFFLOAD: &str = "feature-no-csum-offload";
    /// Front-end: number of queues (absent or 1 here).
    pub const MULTI_QUEUE_NUM_QUEUES: &str = "multi-queue-num-queues";
    /// Both: the interface's MAC address (in the toolstack's back-end directory and the
    /// front-end's).
    pub const MAC: &str = "mac";
    /// Back-end directory: the bridge the toolstack wants the interface on.
    pub const BRIDGE: &str = "bridge";
}

/// What the back-end offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackendFeatures {
    pub sg: bool,
    pub gso_tcpv4: bool,
    pub gso_tcpv6: bool,
    pub ipv6_csum_offload: bool,
    pub split_event_channels: bool,
}

impl BackendFeatures {
    /// A TAP back-end with a virtio-net header: everything `netback-core` handles.
    pub const TAP: Self = Self {
        sg: true,
        gso_tcpv4: true,
        gso_tcpv6: true,
        ipv6_csum_offload: true,
        split_event_channels: true,
    };
}

fn flag(out: &mut (impl KeyWrite + ?Sized), key: &str, v: bool) {
    out.write_key(key, if v { "1" } else { "0" });
}

/// Publishes the back-end's features (before switching to `InitWait`).
pub fn publish_features(f: &BackendFeatures, out: &mut (impl KeyWrite + ?Sized)) {
    flag(out, keys::FEATURE_SG, f.sg);
    flag(out, keys::FEATURE_GSO_TCPV4, f.gso_tcpv4);
    flag(out, keys::FEATURE_GSO_TCPV6, f.gso_tcpv6);
    flag(out, keys::FEATURE_IPV6_CSUM_OFFLOAD, f.ipv6_csum_offload);
    flag(out, keys::FEATURE_RX_COPY, true);
    flag(out, keys::FEATURE_RX_FLIP, false);
    flag(out, keys::FEATURE_SPLIT_EVENT_CHANNELS, f.split_event_channels);
}

/// The front-end's event channel(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventChannels {
    /// `event-channel`: one port for both rings.
    Shared(EvtchnPort),
    /// `event-channel-tx` and `event-channel-rx`.
    Split { tx: EvtchnPort, rx: EvtchnPort },
}

/// What the front-end published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrontendConfig {
    pub tx_ring_ref: GrantRef,
    pub rx_ring_ref: GrantRef,
    pub event_channels: EventChannels,
    /// `feature-sg`: it takes multi-slot receive packets.
    pub sg: bool,
    /// Not `feature-no-csum-offload`: it takes `NETRXF_csum_blank`.
    pub csum_offload: bool,
    /// `feature-gso-tcpv4`: it takes TCPv4 GSO packets on its receive ring.
    pub gso_tcpv4: bool,
    /// `feature-gso-tcpv6`: it takes TCPv6 GSO packets on its receive ring.
    pub gso_tcpv6: bool,
}

impl FrontendConfig {
    /// The processing configuration for this front-end. GSO on receive needs
    /// scatter-gather and checksum offload too (a GSO packet spans pages and is partial),
    /// as Linux's netback's `xenvif_fix_features` drops TSO without them.
    pub fn netback_config(&self) -> NetbackConfig {
        let gso = self.sg && self.csum_offload;
        NetbackConfig {
            rx_sg: self.sg,
            rx_csum_offload: self.csum_offload,
            rx_gso_tcpv4: gso && self.gso_tcpv4,
            rx_gso_tcpv6: gso && self.gso_tcpv6,
            ..NetbackConfig::DEFAULT
        }
    }
}

/// Why the front-end's keys are unusable (Linux: `xenbus_dev_fatal`, `Closing`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FrontendKeyError {
    /// A required key is absent.
    Missing(&'static str),
    /// A value is not a number, out of range, or too long.
    Invalid(&'static str),
    /// `request-rx-copy` absent or 0: page flipping, which nobody implements any more.
    RxCopyRequired,
    /// `feature-rx-notify` absent or 0 (mandatory, as in Linux).
    RxNotifyRequired,
    /// Only one of `event-channel-tx` / `event-channel-rx`.
    HalfSplitChannels,
    /// `multi-queue-num-queues` other than 1 (we advertise no `multi-queue-max-queues`).
    UnsupportedQueues(u32),
}

impl core::fmt::Display for FrontendKeyError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Missing(k) => write!(f, "front-end key {k} missing"),
            Self::Invalid(k) => write!(f, "front-end key {k} invalid"),
            Self::RxCopyRequired => write!(f, "front-end does not request rx-copy"),
            Self::RxNotifyRequired => write!(f, "feature-rx-notify is mandatory"),
            Self::HalfSplitChannels => write!(f, "only one of event-channel-tx/-rx"),
            Self::UnsupportedQueues(n) => write!(f, "{n} queues requested, 1 supported"),
        }
    }
}

const VALUE_MAX: usize = 32;

/// Reads a number: `Ok(None)` absent, `Invalid` if not a u32 in decimal.
fn read_u32(kv: &mut (impl KeyRead + ?Sized), key: &'static str) -> Result<Option<u32>, FrontendKeyError> {
    let mut b = [0u8; VALUE_MAX];
    match kv.read_key(key, &mut b) {
        None => Ok(None),
        Some(n) if n > b.len() => Err(FrontendKeyError::Invalid(key)),
        Some(n) => {
            let v = match b[..n].split_last() {
                Some((0, rest)) => rest,
                _ => &b[..n],
            };
            xenstore_wire::parse_decimal(v.trim_ascii())
                .and_then(|v| u32::try_from(v).ok())
                .map(Some)
                .ok_or(FrontendKeyError::Invalid(key))
        }
    }
}

fn require(kv: &mut (impl KeyRead + ?Sized), key: &'static str) -> Result<u32, FrontendKeyError> {
    read_u32(kv, key)?.ok_or(FrontendKeyError::Missing(key))
}

/// An optional flag: like Linux's `xenbus_read_unsigned(.., 0)`, unreadable means 0.
fn optional_flag(kv: &mut (impl KeyRead + ?Sized), key: &'static str) -> bool {
    matches!(read_u32(kv, key), Ok(Some(n)) if n != 0)
}

fn port(kv: &mut (impl KeyRead + ?Sized), key: &'static str) -> Result<Option<EvtchnPort>, FrontendKeyError> {
    match read_u32(kv, key)? {
        Some(0) => Err(FrontendKeyError::Invalid(key)),
        p => Ok(p.map(EvtchnPort)),
    }
}

/// Reads and checks the front-end's keys (single queue).
pub fn read_frontend(kv: &mut (impl KeyRead + ?Sized)) -> Result<FrontendConfig, FrontendKeyError> {
    if let Some(n) = read_u32(kv, keys::MULTI_QUEUE_NUM_QUEUES)? {
        if n != 1 {
            return Err(FrontendKeyError::UnsupportedQueues(n));
        }
    }
    let tx_ring_ref = GrantRef(require(kv, keys::TX_RING_REF)?);
    let rx_ring_ref = GrantRef(require(kv, keys::RX_RING_REF)?);
    let event_channels = match (port(kv, keys::EVENT_CHANNEL_TX)?, port(kv, keys::EVENT_CHANNEL_RX)?) {
        (Some(tx), Some(rx)) => EventChannels::Split { tx, rx },
        (None, None) => match port(kv, keys::EVENT_CHANNEL)? {
            Some(p) => EventChannels::Shared(p),
            None => return Err(FrontendKeyError::Missing(keys::EVENT_CHANNEL)),
        },
        _ => return Err(FrontendKeyError::HalfSplitChannels),
    };
    match read_u32(kv, keys::REQUEST_RX_COPY) {
        Ok(Some(n)) if n != 0 => {}
        Err(e) => return Err(e),
        _ => return Err(FrontendKeyError::RxCopyRequired),
    }
    if !optional_flag(kv, keys::FEATURE_RX_NOTIFY) {
        return Err(FrontendKeyError::RxNotifyRequired);
    }
    Ok(FrontendConfig {
        tx_ring_ref,
        rx_ring_ref,
        event_channels,
        sg: optional_flag(kv, keys::FEATURE_SG),
        csum_offload: !optional_flag(kv, keys::FEATURE_NO_CSUM_OFFLOAD),
        gso_tcpv4: optional_flag(kv, keys::FEATURE_GSO_TCPV4),
        gso_tcpv6: optional_flag(kv, keys::FEATURE_GSO_TCPV6),
    })
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff` (hex, either case).
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().split(':');
    for b in mac.iter_mut() {
        let p = parts.next()?;
        if p.len() != 2 {
            return None;
        }
        *b = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(mac)
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
        kv.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn linux_netfront() -> BTreeMap<String, String> {
        map(&[
            ("tx-ring-ref", "9"),
            ("rx-ring-ref", "10"),
            ("event-channel", "7"),
            ("request-rx-copy", "1"),
            ("feature-rx-notify", "1"),
            ("feature-sg", "1"),
            ("feature-gso-tcpv4", "1"),
            ("feature-gso-tcpv6", "1"),
            ("feature-ipv6-csum-offload", "1"),
        ])
    }

    #[test]
    fn reads_a_linux_frontend() {
        let m = linux_netfront();
        let f = read_frontend(&mut reader(&m)).unwrap();
        assert_eq!(f.tx_ring_ref, GrantRef(9));
        assert_eq!(f.rx_ring_ref, GrantRef(10));
        assert_eq!(f.event_channels, EventChannels::Shared(EvtchnPort(7)));
        assert!(f.sg && f.csum_offload && f.gso_tcpv4);
        let c = f.netback_config();
        assert!(c.rx_sg && c.rx_csum_offload && c.rx_gso_tcpv4 && c.rx_gso_tcpv6);

        let mut m2 = m.clone();
        m2.insert("feature-no-csum-offload".into(), "1".into());
        m2.insert("event-channel-tx".into(), "11".into());
        m2.insert("event-channel-rx".into(), "12\0".into());
        m2.remove("feature-sg");
        let f = read_frontend(&mut reader(&m2)).unwrap();
        assert!(!f.sg && !f.csum_offload);
        let c = f.netback_config();
        assert!(!c.rx_gso_tcpv4 && !c.rx_gso_tcpv6, "no GSO without sg and csum offload");
        assert_eq!(f.event_channels, EventChannels::Split { tx: EvtchnPort(11), rx: EvtchnPort(12) });
    }

    #[test]
    fn bad_frontends() {
        let ok = linux_netfront();
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
            (without("tx-ring-ref"), Missing("tx-ring-ref")),
            (without("rx-ring-ref"), Missing("rx-ring-ref")),
            (without("event-channel"), Missing("event-channel")),
            (with("tx-ring-ref", "nine"), Invalid("tx-ring-ref")),
            (with("rx-ring-ref", "4294967296"), Invalid("rx-ring-ref")),
            (with("rx-ring-ref", "123456789012345678901234567890123456789"), Invalid("rx-ring-ref")),
            (with("event-channel", "0"), Invalid("event-channel")),
            (with("event-channel-tx", "3"), HalfSplitChannels),
            (without("request-rx-copy"), RxCopyRequired),
            (with("request-rx-copy", "0"), RxCopyRequired),
            (with("request-rx-copy", "x"), Invalid("request-rx-copy")),
            (without("feature-rx-notify"), RxNotifyRequired),
            (with("multi-queue-num-queues", "2"), UnsupportedQueues(2)),
        ] {
            assert_eq!(read_frontend(&mut reader(&m)), Err(e), "{m:?}");
        }
        assert!(read_frontend(&mut reader(&with("multi-queue-num-queues", "1"))).is_ok());
        assert!(read_frontend(&mut reader(&with("feature-sg", "garbage"))).is_ok());
    }

    #[test]
    fn published_features() {
        let mut out = BTreeMap::new();
        publish_features(&BackendFeatures::TAP, &mut |k: &str, v: &str| {
            out.insert(k.to_string(), v.to_string());
        });
        assert_eq!(
            out,
            map(&[
                ("feature-gso-tcpv4", "1"),
                ("feature-gso-tcpv6", "1"),
                ("feature-ipv6-csum-offload", "1"),
                ("feature-rx-copy", "1"),
                ("feature-rx-flip", "0"),
                ("feature-sg", "1"),
                ("feature-split-event-channels", "1"),
            ])
        );
    }

    #[test]
    fn macs() {
        assert_eq!(parse_mac("00:16:3e:00:00:10"), Some([0, 0x16, 0x3e, 0, 0, 0x10]));
        assert_eq!(parse_mac(" FE:ff:ff:ff:ff:ff\n"), Some([0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]));
        for bad in ["", "00:16:3e:00:00", "00:16:3e:00:00:10:11", "0:16:3e:00:00:10", "zz:16:3e:00:00:10"] {
            assert_eq!(parse_mac(bad), None, "{bad}");
        }
    }
}
