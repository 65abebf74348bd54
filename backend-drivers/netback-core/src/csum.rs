//! Internet checksums of the frames a back-end moves, and the `virtio_net_hdr` that a
//! TAP device opened with `IFF_VNET_HDR` puts before each frame.
//!
//! A front-end sending with `NETTXF_csum_blank` leaves the TCP/UDP checksum to someone
//! else (Linux's `CHECKSUM_PARTIAL`): [`locate`] finds it (Ethernet, up to two VLAN
//! tags, IPv4 without fragmentation or IPv6 with its extension headers, then TCP or
//! UDP), [`set_pseudo`] puts the pseudo-header sum in the field as Linux expects of a
//! partial checksum (as netback's `checksum_setup` does when it recalculates), and
//! [`vnet_for_tx`] describes it to the TAP (`VIRTIO_NET_HDR_F_NEEDS_CSUM`, `csum_start`,
//! `csum_offset`, and the GSO type and size). [`fill`] computes a checksum in software
//! instead, and [`complete_partial`] finishes one the kernel left partial, for a
//! front-end that refused receive checksum offload.
//!
//! Every function takes the frame as bytes and checks every length first: a truncated
//! or lying header is an error, never an out-of-bounds access.

use crate::backend::{Gso, GsoKind, NetbackConfig, RxMeta, TxPacket};

/// `ETH_P_IP`
pub const ETH_P_IP: u16 = 0x0800;
/// `ETH_P_IPV6`
pub const ETH_P_IPV6: u16 = 0x86dd;
/// `ETH_P_8021Q`
pub const ETH_P_8021Q: u16 = 0x8100;
/// `ETH_P_8021AD`
pub const ETH_P_8021AD: u16 = 0x88a8;
/// `IPPROTO_TCP`
pub const IPPROTO_TCP: u8 = 6;
/// `IPPROTO_UDP`
pub const IPPROTO_UDP: u8 = 17;

/// Why a frame's checksum cannot be located or completed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsumError {
    /// A header runs past the end of the frame, or a length field lies.
    Truncated,
    /// Not IPv4 or IPv6 (the EtherType).
    NotIp(u16),
    /// A malformed IP header (version, header length).
    BadHeader,
    /// An IP fragment: its transport header is not (all) here.
    Fragment,
    /// A transport protocol other than TCP or UDP.
    Unsupported(u8),
    /// GSO on something other than TCP over the IP version it names.
    BadGso,
    /// The TAP handed over a GSO frame (not enabled on our TAPs).
    UnexpectedGso(u8),
    /// `csum_start`/`csum_offset` outside the frame.
    BadOffsets,
}

impl core::fmt::Display for CsumError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            CsumError::Truncated => write!(f, "truncated header"),
            CsumError::NotIp(t) => write!(f, "EtherType {t:#06x} is not IP"),
            CsumError::BadHeader => write!(f, "malformed IP header"),
            CsumError::Fragment => write!(f, "IP fragment"),
            CsumError::Unsupported(p) => write!(f, "transport protocol {p}"),
            CsumError::BadGso => write!(f, "GSO type does not match the frame"),
            CsumError::UnexpectedGso(t) => write!(f, "unexpected GSO type {t} from the TAP"),
            CsumError::BadOffsets => write!(f, "checksum offsets outside the frame"),
        }
    }
}

/// Where a frame's transport checksum is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct L4 {
    /// IP version (4 or 6).
    pub ip_version: u8,
    /// `IPPROTO_TCP` or `IPPROTO_UDP`.
    pub proto: u8,
    /// Offset of the transport header (`csum_start`).
    pub start: usize,
    /// Offset of the checksum within it (`csum_offset`: 16 for TCP, 6 for UDP).
    pub csum_offset: usize,
    /// Transport bytes as the IP header counts them.
    pub len: usize,
    /// Bytes of all headers up to the end of the transport header (`hdr_len`).
    pub hdr_len: usize,
    /// The pseudo-header's one's-complement sum, unfolded.
    pseudo: u64,
}

fn be16(b: &[u8], at: usize) -> Result<u16, CsumError> {
    match b.get(at..at + 2) {
        Some(s) => Ok(u16::from_be_bytes([s[0], s[1]])),
        None => Err(CsumError::Truncated),
    }
}

/// The one's-complement sum of `data` as big-endian 16-bit words (an odd last byte is
/// padded with zero), added to `acc`, unfolded.
pub fn sum(data: &[u8], acc: u64) -> u64 {
    let mut s = acc;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        s += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        s += u64::from(*last) << 8;
    }
    s
}

/// Folds a sum to 16 bits (end-around carry).
pub fn fold(mut s: u64) -> u16 {
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The IP header checksum of an IPv4 header (`hdr` with its checksum field as it is:
/// 0 when computing, the stored value when verifying, which then gives 0).
pub fn ipv4_header_checksum(hdr: &[u8]) -> u16 {
    !fold(sum(hdr, 0))
}

/// Finds the TCP or UDP checksum of an Ethernet frame.
pub fn locate(frame: &[u8]) -> Result<L4, CsumError> {
    let mut l3 = 14;
    let mut ethertype = be16(frame, 12)?;
    for _ in 0..2 {
        if ethertype == ETH_P_8021Q || ethertype == ETH_P_8021AD {
            ethertype = be16(frame, l3 + 2)?;
            l3 += 4;
        }
    }
    let (ip_version, proto, start, len, pseudo) = match ethertype {
        ETH_P_IP => {
            let h = frame.get(l3..l3 + 20).ok_or(CsumError::Truncated)?;
            if h[0] >> 4 != 4 {
                return Err(CsumError::BadHeader);
            }
            let ihl = usize::from(h[0] & 0xf) * 4;
            let total = usize::from(u16::from_be_bytes([h[2], h[3]]));
            if ihl < 20 || total < ihl {
                return Err(CsumError::BadHeader);
            }
            if l3 + total > frame.len() {
                return Err(CsumError::Truncated);
            }
            if u16::from_be_bytes([h[6], h[7]]) & 0x3fff != 0 {
                return Err(CsumError::Fragment);
            }
            let proto = h[9];
            let l4len = total - ihl;
            let pseudo = sum(&h[12..20], 0) + u64::from(proto) + l4len as u64;
            (4, proto, l3 + ihl, l4len, pseudo)
        }
        ETH_P_IPV6 => {
            let h = frame.get(l3..l3 + 40).ok_or(CsumError::Truncated)?;
            if h[0] >> 4 != 6 {
                return Err(CsumError::BadHeader);
            }
            let payload = usize::from(u16::from_be_bytes([h[4], h[5]]));
            let end = l3 + 40 + payload;
            if end > frame.len() {
                return Err(CsumError::Truncated);
            }
            let mut next = h[6];
            let mut at = l3 + 40;
            // Hop-by-hop, routing, destination options, AH; at most 8 of them.
            for _ in 0..8 {
                let ext_len = match next {
                    0 | 43 | 60 => {
                        usize::from(*frame.get(at + 1).ok_or(CsumError::Truncated)?) * 8 + 8
                    }
                    51 => usize::from(*frame.get(at + 1).ok_or(CsumError::Truncated)?) * 4 + 8,
                    44 => return Err(CsumError::Fragment),
                    _ => break,
                };
                next = *frame.get(at).ok_or(CsumError::Truncated)?;
                at += ext_len;
                if at > end {
                    return Err(CsumError::Truncated);
                }
            }
            let l4len = end - at;
            let pseudo = sum(&h[8..40], 0) + u64::from(next) + l4len as u64;
            (6, next, at, l4len, pseudo)
        }
        t => return Err(CsumError::NotIp(t)),
    };
    let (csum_offset, hlen) = match proto {
        IPPROTO_TCP => {
            if len < 20 {
                return Err(CsumError::Truncated);
            }
            let doff = usize::from(frame[start + 12] >> 4) * 4;
            if doff < 20 || doff > len {
                return Err(CsumError::BadHeader);
            }
            (16, doff)
        }
        IPPROTO_UDP => {
            if len < 8 {
                return Err(CsumError::Truncated);
            }
            (6, 8)
        }
        p => return Err(CsumError::Unsupported(p)),
    };
    Ok(L4 {
        ip_version,
        proto,
        start,
        csum_offset,
        len,
        hdr_len: start + hlen,
        pseudo,
    })
}

/// Writes the folded pseudo-header sum into the checksum field: what Linux expects in
/// a `CHECKSUM_PARTIAL` packet (the device sums from `start` to the end and stores the
/// complement).
pub fn set_pseudo(frame: &mut [u8], l4: &L4) {
    let v = fold(l4.pseudo).to_be_bytes();
    let at = l4.start + l4.csum_offset;
    frame[at..at + 2].copy_from_slice(&v);
}

/// Computes the transport checksum in software, whatever the field held.
pub fn fill(frame: &mut [u8], l4: &L4) {
    let at = l4.start + l4.csum_offset;
    frame[at..at + 2].copy_from_slice(&[0, 0]);
    let mut c = !fold(sum(&frame[l4.start..l4.start + l4.len], l4.pseudo));
    if c == 0 && l4.proto == IPPROTO_UDP {
        c = 0xffff; // RFC 768: a computed 0 is sent as all ones
    }
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// Is the frame's transport checksum right? (For tests and diagnostics.)
pub fn verify(frame: &[u8]) -> Result<bool, CsumError> {
    let l4 = locate(frame)?;
    Ok(fold(sum(&frame[l4.start..l4.start + l4.len], l4.pseudo)) == 0xffff)
}

/// Finishes a partial checksum as `skb_checksum_help` does: the field at
/// `start + offset` holds the pseudo-header sum; sum from `start` to the end of the
/// frame and store the complement there.
pub fn complete_partial(frame: &mut [u8], start: usize, offset: usize) -> Result<(), CsumError> {
    let at = start.checked_add(offset).ok_or(CsumError::BadOffsets)?;
    if start > frame.len() || at.checked_add(2).is_none_or(|e| e > frame.len()) {
        return Err(CsumError::BadOffsets);
    }
    let c = !fold(sum(&frame[start..], 0));
    frame[at..at + 2].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Bytes of `struct virtio_net_hdr`.
pub const VNET_HDR_LEN: usize = 10;
/// `VIRTIO_NET_HDR_F_NEEDS_CSUM`
pub const VIRTIO_NET_HDR_F_NEEDS_CSUM: u8 = 1;
/// `VIRTIO_NET_HDR_F_DATA_VALID`
pub const VIRTIO_NET_HDR_F_DATA_VALID: u8 = 2;
/// `VIRTIO_NET_HDR_GSO_NONE`
pub const VIRTIO_NET_HDR_GSO_NONE: u8 = 0;
/// `VIRTIO_NET_HDR_GSO_TCPV4`
pub const VIRTIO_NET_HDR_GSO_TCPV4: u8 = 1;
/// `VIRTIO_NET_HDR_GSO_TCPV6`
pub const VIRTIO_NET_HDR_GSO_TCPV6: u8 = 4;

/// `struct virtio_net_hdr` (little-endian fields, as a TAP on x86 uses them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn to_bytes(&self) -> [u8; VNET_HDR_LEN] {
        let mut b = [0; VNET_HDR_LEN];
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_le_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_le_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_le_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_le_bytes());
        b
    }

    /// Parses the header at the start of `b` (`None` if shorter).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let b = b.get(..VNET_HDR_LEN)?;
        let u = |i: usize| u16::from_le_bytes([b[i], b[i + 1]]);
        Some(Self {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u(2),
            gso_size: u(4),
            csum_start: u(6),
            csum_offset: u(8),
        })
    }
}

/// The virtio-net header for a packet the front-end transmitted, fixing up `frame`
/// (a private copy of `pkt.data`) where needed: a blank checksum (or any GSO packet,
/// which Linux requires to be partial) gets the pseudo-header sum and
/// `NEEDS_CSUM`; a validated one `DATA_VALID`. A blank checksum that cannot be located
/// is an error: drop the packet, as Linux's netback does when `checksum_setup` fails.
pub fn vnet_for_tx(frame: &mut [u8], pkt: &TxPacket<'_>) -> Result<VnetHdr, CsumError> {
    let mut h = VnetHdr::default();
    if pkt.csum_blank || pkt.gso.is_some() {
        let l4 = locate(frame)?;
        let to16 = |v: usize| u16::try_from(v).map_err(|_| CsumError::Truncated);
        set_pseudo(frame, &l4);
        h.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM;
        h.csum_start = to16(l4.start)?;
        h.csum_offset = to16(l4.csum_offset)?;
        if let Some(Gso { kind, size }) = pkt.gso {
            h.gso_type = match (kind, l4.ip_version, l4.proto) {
                (GsoKind::TcpV4, 4, IPPROTO_TCP) => VIRTIO_NET_HDR_GSO_TCPV4,
                (GsoKind::TcpV6, 6, IPPROTO_TCP) => VIRTIO_NET_HDR_GSO_TCPV6,
                _ => return Err(CsumError::BadGso),
            };
            h.gso_size = size;
            h.hdr_len = to16(l4.hdr_len)?;
        }
    } else if pkt.data_validated {
        h.flags = VIRTIO_NET_HDR_F_DATA_VALID;
    }
    Ok(h)
}

/// The receive metadata for a frame the TAP handed over with `hdr`. A partial checksum
/// is passed on as `csum_blank` when the front-end accepts that (`offload`), otherwise
/// completed here. A GSO frame is an error ([`rx_meta`] takes those).
pub fn rx_meta_from_vnet(hdr: &VnetHdr, frame: &mut [u8], offload: bool) -> Result<RxMeta, CsumError> {
    let cfg = NetbackConfig {
        rx_csum_offload: offload,
        ..NetbackConfig::DEFAULT
    };
    rx_meta(hdr, frame, &cfg)
}

/// The receive metadata for a frame the TAP handed over with `hdr`, for a front-end
/// configured as `cfg`: a partial checksum is passed on as `csum_blank` when the
/// front-end accepts that, otherwise completed here; a TCP GSO frame (a TAP with
/// `TUN_F_TSO4`/`TUN_F_TSO6` hands over up to 64 KiB) becomes [`RxMeta::gso`] when the
/// front-end takes that kind, and must be partial and really TCP of that IP version.
/// Anything else with GSO (UDP, ECN, a kind the front-end did not ask for) is an error:
/// drop the frame (the TAP only hands over the kinds enabled with `TUNSETOFFLOAD`).
pub fn rx_meta(hdr: &VnetHdr, frame: &mut [u8], cfg: &NetbackConfig) -> Result<RxMeta, CsumError> {
    let gso = match hdr.gso_type {
        VIRTIO_NET_HDR_GSO_NONE => None,
        VIRTIO_NET_HDR_GSO_TCPV4 if cfg.rx_gso_tcpv4 => Some(GsoKind::TcpV4),
        VIRTIO_NET_HDR_GSO_TCPV6 if cfg.rx_gso_tcpv6 => Some(GsoKind::TcpV6),
        t => return Err(CsumError::UnexpectedGso(t)),
    };
    if let Some(kind) = gso {
        if hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM == 0 || !cfg.rx_csum_offload || hdr.gso_size == 0 {
            return Err(CsumError::BadGso);
        }
        let l4 = locate(frame)?;
        let ok = match kind {
            GsoKind::TcpV4 => l4.ip_version == 4,
            GsoKind::TcpV6 => l4.ip_version == 6,
        };
        if !ok || l4.proto != IPPROTO_TCP || usize::from(hdr.csum_start) != l4.start || usize::from(hdr.csum_offset) != l4.csum_offset {
            return Err(CsumError::BadGso);
        }
        return Ok(RxMeta {
            csum_blank: true,
            data_validated: true,
            gso: Some(Gso { kind, size: hdr.gso_size }),
        });
    }
    if hdr.flags & VIRTIO_NET_HDR_F_NEEDS_CSUM != 0 {
        if cfg.rx_csum_offload {
            let end = usize::from(hdr.csum_start) + usize::from(hdr.csum_offset) + 2;
            if end > frame.len() {
                return Err(CsumError::BadOffsets);
            }
            return Ok(RxMeta {
                csum_blank: true,
                data_validated: true,
                gso: None,
            });
        }
        complete_partial(frame, hdr.csum_start.into(), hdr.csum_offset.into())?;
        return Ok(RxMeta {
            csum_blank: false,
            data_validated: true,
            gso: None,
        });
    }
    Ok(RxMeta {
        csum_blank: false,
        data_validated: hdr.flags & VIRTIO_NET_HDR_F_DATA_VALID != 0,
        gso: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// An Ethernet + IPv4 + UDP frame with `payload`, IP checksum right, UDP checksum 0.
    pub(crate) fn udp4(payload: &[u8]) -> Vec<u8> {
        let mut f = Vec::new();
        f.extend_from_slice(&[0x00, 0x16, 0x3e, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0xff, 0xff]);
        f.extend_from_slice(&ETH_P_IP.to_be_bytes());
        let total = (20 + 8 + payload.len()) as u16;
        let mut ip = [0u8; 20];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&total.to_be_bytes());
        ip[8] = 64;
        ip[9] = IPPROTO_UDP;
        ip[12..16].copy_from_slice(&[10, 0, 0, 2]);
        ip[16..20].copy_from_slice(&[10, 0, 0, 1]);
        let c = ipv4_header_checksum(&ip);
        ip[10..12].copy_from_slice(&c.to_be_bytes());
        f.extend_from_slice(&ip);
        f.extend_from_slice(&5000u16.to_be_bytes());
        f.extend_from_slice(&7u16.to_be_bytes());
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
        f.extend_from_slice(payload);
        f
    }

    /// Ethernet + IPv6 (with a hop-by-hop header) + TCP.
    fn tcp6(payload: &[u8]) -> Vec<u8> {
        let mut f = std::vec![0u8; 12];
        f.extend_from_slice(&ETH_P_IPV6.to_be_bytes());
        let plen = (8 + 20 + payload.len()) as u16;
        let mut ip = [0u8; 40];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&plen.to_be_bytes());
        ip[6] = 0; // hop-by-hop
        ip[7] = 64;
        ip[8] = 0xfe;
        ip[9] = 0x80;
        ip[23] = 2;
        ip[24] = 0xfe;
        ip[25] = 0x80;
        ip[39] = 1;
        f.extend_from_slice(&ip);
        f.extend_from_slice(&[IPPROTO_TCP, 0, 1, 4, 0, 0, 0, 0]);
        let mut tcp = [0u8; 20];
        tcp[12] = 5 << 4;
        f.extend_from_slice(&tcp);
        f.extend_from_slice(payload);
        f
    }

    #[test]
    fn known_ipv4_header_checksum() {
        // The classic example (RFC 1071 style): 4500 0073 0000 4000 4011 ... -> b861.
        let h = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(ipv4_header_checksum(&h), 0xb861);
        let mut h2 = h;
        h2[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
        assert_eq!(ipv4_header_checksum(&h2), 0);
    }

    #[test]
    fn fill_and_partial_agree() {
        for payload in [&b""[..], b"x", b"hello, world", &[0xffu8; 301]] {
            let mut a = udp4(payload);
            let l4 = locate(&a).unwrap();
            assert_eq!((l4.proto, l4.csum_offset, l4.start), (IPPROTO_UDP, 6, 34));
            fill(&mut a, &l4);
            assert!(verify(&a).unwrap());
            // The partial route: pseudo sum in the field, then completed.
            let mut b = udp4(payload);
            set_pseudo(&mut b, &l4);
            complete_partial(&mut b, l4.start, l4.csum_offset).unwrap();
            assert!(verify(&b).unwrap());
            a[l4.start + 6] ^= 1;
            assert!(!verify(&a).unwrap());
        }
        let mut t = tcp6(b"some tcp payload");
        let l4 = locate(&t).unwrap();
        assert_eq!((l4.ip_version, l4.proto, l4.start, l4.hdr_len), (6, IPPROTO_TCP, 14 + 48, 14 + 48 + 20));
        fill(&mut t, &l4);
        assert!(verify(&t).unwrap());
    }

    #[test]
    fn vlan_tagged() {
        let f = udp4(b"abc");
        let mut v = f[..12].to_vec();
        v.extend_from_slice(&ETH_P_8021Q.to_be_bytes());
        v.extend_from_slice(&[0, 5]);
        v.extend_from_slice(&f[12..]);
        assert_eq!(locate(&v).unwrap().start, 38);
    }

    #[test]
    fn bad_frames() {
        let f = udp4(b"abcdef");
        assert_eq!(locate(&f[..20]), Err(CsumError::Truncated));
        assert_eq!(locate(&f[..f.len() - 1]), Err(CsumError::Truncated));
        let mut g = f.clone();
        g[12] = 0x08;
        g[13] = 0x06; // ARP
        assert_eq!(locate(&g), Err(CsumError::NotIp(0x0806)));
        let mut g = f.clone();
        g[14 + 6] = 0x20; // MF
        assert_eq!(locate(&g), Err(CsumError::Fragment));
        let mut g = f.clone();
        g[14 + 9] = 1; // ICMP
        assert_eq!(locate(&g), Err(CsumError::Unsupported(1)));
        let mut g = f.clone();
        g[14] = 0x44; // IHL 4
        assert_eq!(locate(&g), Err(CsumError::BadHeader));
        assert_eq!(complete_partial(&mut g.clone(), 60, 0), Err(CsumError::BadOffsets));
        assert_eq!(complete_partial(&mut g, usize::MAX, 2), Err(CsumError::BadOffsets));
    }

    #[test]
    fn vnet_headers() {
        let mut f = udp4(b"payload");
        let pkt = TxPacket {
            data: &[],
            csum_blank: true,
            data_validated: false,
            gso: None,
        };
        let h = vnet_for_tx(&mut f, &pkt).unwrap();
        assert_eq!((h.flags, h.csum_start, h.csum_offset), (VIRTIO_NET_HDR_F_NEEDS_CSUM, 34, 6));
        assert_eq!(VnetHdr::from_bytes(&h.to_bytes()), Some(h));
        // What the kernel would do with it.
        complete_partial(&mut f, 34, 6).unwrap();
        assert!(verify(&f).unwrap());
        let gso = TxPacket {
            gso: Some(Gso { kind: GsoKind::TcpV4, size: 1448 }),
            ..pkt
        };
        assert_eq!(vnet_for_tx(&mut f, &gso), Err(CsumError::BadGso));
        let mut t = tcp6(&[7u8; 3000]);
        let gso6 = TxPacket {
            gso: Some(Gso { kind: GsoKind::TcpV6, size: 1440 }),
            ..pkt
        };
        let h = vnet_for_tx(&mut t, &gso6).unwrap();
        assert_eq!((h.gso_type, h.gso_size, h.hdr_len), (VIRTIO_NET_HDR_GSO_TCPV6, 1440, 82));
        let v = TxPacket {
            csum_blank: false,
            data_validated: true,
            ..pkt
        };
        assert_eq!(vnet_for_tx(&mut t, &v).unwrap().flags, VIRTIO_NET_HDR_F_DATA_VALID);

        // Receive side.
        let mut f = udp4(b"from the tap");
        let l4 = locate(&f).unwrap();
        set_pseudo(&mut f, &l4);
        let h = VnetHdr {
            flags: VIRTIO_NET_HDR_F_NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..Default::default()
        };
        let m = rx_meta_from_vnet(&h, &mut f.clone(), true).unwrap();
        assert!(m.csum_blank && m.data_validated);
        let m = rx_meta_from_vnet(&h, &mut f, false).unwrap();
        assert!(!m.csum_blank && m.data_validated);
        assert!(verify(&f).unwrap());
        let bad = VnetHdr { csum_start: 4000, ..h };
        assert_eq!(rx_meta_from_vnet(&bad, &mut f, true), Err(CsumError::BadOffsets));
        let g = VnetHdr { gso_type: 1, ..h };
        assert_eq!(rx_meta_from_vnet(&g, &mut f, true), Err(CsumError::UnexpectedGso(1)));
    }
}
