//! Just enough of Ethernet, ARP, IPv4 and ICMP for a PV guest to be pinged and to
//! ping: parsing (every length and checksum checked) and building frames into a
//! caller's buffer. No allocation.

/// A MAC address.
pub type Mac = [u8; 6];
/// An IPv4 address.
pub type Ipv4 = [u8; 4];

pub const BROADCAST: Mac = [0xff; 6];
pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETH_HLEN: usize = 14;
pub const ARP_REQUEST: u16 = 1;
pub const ARP_REPLY: u16 = 2;
pub const IPPROTO_ICMP: u8 = 1;
pub const ICMP_ECHO_REPLY: u8 = 0;
pub const ICMP_ECHO_REQUEST: u8 = 8;
/// Bytes of an ARP frame (Ethernet + 28-byte IPv4 ARP body).
pub const ARP_FRAME_LEN: usize = ETH_HLEN + 28;
/// Bytes before an ICMP echo payload (Ethernet, IPv4 without options, ICMP header).
pub const ICMP_ECHO_OVERHEAD: usize = ETH_HLEN + 20 + 8;

/// Why a frame was not understood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParseError {
    /// Shorter than its headers say.
    Truncated,
    /// ARP for something other than Ethernet/IPv4.
    BadArp,
    /// Not IPv4, or a header length below 20.
    BadIp,
    /// The IPv4 header checksum is wrong.
    IpChecksum,
    /// The ICMP checksum is wrong.
    IcmpChecksum,
    /// The caller's buffer is too small for the frame to build.
    NoRoom,
}

/// The one's-complement sum of `data` (big-endian 16-bit words) added to `acc`.
pub fn sum(data: &[u8], acc: u32) -> u32 {
    let mut s = acc;
    let mut c = data.chunks_exact(2);
    for w in &mut c {
        s = s.wrapping_add(u32::from(u16::from_be_bytes([w[0], w[1]])));
        // Fold early so that any length is safe.
        s = (s & 0xffff) + (s >> 16);
    }
    if let [b] = c.remainder() {
        s = s.wrapping_add(u32::from(*b) << 8);
    }
    s
}

/// The internet checksum (RFC 1071) of `data`: complement of the folded sum.
pub fn checksum(data: &[u8]) -> u16 {
    let mut s = sum(data, 0);
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An ARP message (Ethernet/IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub op: u16,
    pub sender_mac: Mac,
    pub sender_ip: Ipv4,
    pub target_mac: Mac,
    pub target_ip: Ipv4,
}

/// An ICMP echo request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo<'a> {
    /// `ICMP_ECHO_REQUEST` or `ICMP_ECHO_REPLY`.
    pub kind: u8,
    pub src_mac: Mac,
    pub src_ip: Ipv4,
    pub dst_ip: Ipv4,
    pub ident: u16,
    pub seq: u16,
    pub payload: &'a [u8],
}

/// What a frame is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Packet<'a> {
    Arp { dst_mac: Mac, arp: Arp },
    Echo { dst_mac: Mac, echo: Echo<'a> },
    /// IPv4 that is not an ICMP echo (protocol number).
    OtherIp(u8),
    /// Any other EtherType.
    Other(u16),
}

fn mac_at(b: &[u8], at: usize) -> Mac {
    let mut m = [0; 6];
    m.copy_from_slice(&b[at..at + 6]);
    m
}

fn ip_at(b: &[u8], at: usize) -> Ipv4 {
    let mut m = [0; 4];
    m.copy_from_slice(&b[at..at + 4]);
    m
}

/// Parses an Ethernet frame.
pub fn parse(frame: &[u8]) -> Result<Packet<'_>, ParseError> {
    if frame.len() < ETH_HLEN {
        return Err(ParseError::Truncated);
    }
    let dst_mac = mac_at(frame, 0);
    let src_mac = mac_at(frame, 6);
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    let body = &frame[ETH_HLEN..];
    match ethertype {
        ETHERTYPE_ARP => {
            if body.len() < 28 {
                return Err(ParseError::Truncated);
            }
            // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4.
            if body[0..6] != [0, 1, 0x08, 0x00, 6, 4] {
                return Err(ParseError::BadArp);
            }
            Ok(Packet::Arp {
                dst_mac,
                arp: Arp {
                    op: u16::from_be_bytes([body[6], body[7]]),
                    sender_mac: mac_at(body, 8),
                    sender_ip: ip_at(body, 14),
                    target_mac: mac_at(body, 18),
                    target_ip: ip_at(body, 24),
                },
            })
        }
        ETHERTYPE_IPV4 => {
            if body.len() < 20 {
                return Err(ParseError::Truncated);
            }
            let ihl = usize::from(body[0] & 0xf) * 4;
            if body[0] >> 4 != 4 || ihl < 20 {
                return Err(ParseError::BadIp);
            }
            let total = usize::from(u16::from_be_bytes([body[2], body[3]]));
            if total < ihl || total > body.len() {
                return Err(ParseError::Truncated);
            }
            if checksum(&body[..ihl]) != 0 {
                return Err(ParseError::IpChecksum);
            }
            let proto = body[9];
            let icmp = &body[ihl..total];
            if proto != IPPROTO_ICMP || icmp.len() < 8 || !matches!(icmp[0], ICMP_ECHO_REQUEST | ICMP_ECHO_REPLY) || icmp[1] != 0 {
                return Ok(Packet::OtherIp(proto));
            }
            if checksum(icmp) != 0 {
                return Err(ParseError::IcmpChecksum);
            }
            Ok(Packet::Echo {
                dst_mac,
                echo: Echo {
                    kind: icmp[0],
                    src_mac,
                    src_ip: ip_at(body, 12),
                    dst_ip: ip_at(body, 16),
                    ident: u16::from_be_bytes([icmp[4], icmp[5]]),
                    seq: u16::from_be_bytes([icmp[6], icmp[7]]),
                    payload: &icmp[8..],
                },
            })
        }
        t => Ok(Packet::Other(t)),
    }
}

fn eth(buf: &mut [u8], dst: Mac, src: Mac, ethertype: u16) {
    buf[0..6].copy_from_slice(&dst);
    buf[6..12].copy_from_slice(&src);
    buf[12..14].copy_from_slice(&ethertype.to_be_bytes());
}

/// Builds an ARP frame into `buf`; returns its length. Requests go to the broadcast
/// address with a zero target MAC.
pub fn build_arp(buf: &mut [u8], src_mac: Mac, arp: &Arp) -> Result<usize, ParseError> {
    if buf.len() < ARP_FRAME_LEN {
        return Err(ParseError::NoRoom);
    }
    let dst = if arp.op == ARP_REQUEST { BROADCAST } else { arp.target_mac };
    eth(buf, dst, src_mac, ETHERTYPE_ARP);
    let b = &mut buf[ETH_HLEN..ARP_FRAME_LEN];
    b[0..6].copy_from_slice(&[0, 1, 0x08, 0x00, 6, 4]);
    b[6..8].copy_from_slice(&arp.op.to_be_bytes());
    b[8..14].copy_from_slice(&arp.sender_mac);
    b[14..18].copy_from_slice(&arp.sender_ip);
    b[18..24].copy_from_slice(&arp.target_mac);
    b[24..28].copy_from_slice(&arp.target_ip);
    Ok(ARP_FRAME_LEN)
}

/// An ARP request from `mac`/`ip` for `target`.
pub fn arp_request(buf: &mut [u8], mac: Mac, ip: Ipv4, target: Ipv4) -> Result<usize, ParseError> {
    build_arp(
        buf,
        mac,
        &Arp { op: ARP_REQUEST, sender_mac: mac, sender_ip: ip, target_mac: [0; 6], target_ip: target },
    )
}

/// The reply to `req` (an ARP request for our `ip`) from `mac`, or `None` if `req` is
/// not a request for `ip`.
pub fn arp_reply_to(buf: &mut [u8], req: &Arp, mac: Mac, ip: Ipv4) -> Option<Result<usize, ParseError>> {
    if req.op != ARP_REQUEST || req.target_ip != ip {
        return None;
    }
    let reply = Arp { op: ARP_REPLY, sender_mac: mac, sender_ip: ip, target_mac: req.sender_mac, target_ip: req.sender_ip };
    Some(build_arp(buf, mac, &reply))
}

/// Builds an IPv4 ICMP echo frame; returns its length. `id` is the IP identification.
pub fn build_echo(buf: &mut [u8], dst_mac: Mac, echo: &Echo<'_>, ip_id: u16) -> Result<usize, ParseError> {
    let len = ICMP_ECHO_OVERHEAD + echo.payload.len();
    if buf.len() < len || len - ETH_HLEN > usize::from(u16::MAX) {
        return Err(ParseError::NoRoom);
    }
    eth(buf, dst_mac, echo.src_mac, ETHERTYPE_IPV4);
    let ip = &mut buf[ETH_HLEN..ETH_HLEN + 20];
    ip.fill(0);
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - ETH_HLEN) as u16).to_be_bytes());
    ip[4..6].copy_from_slice(&ip_id.to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = IPPROTO_ICMP;
    ip[12..16].copy_from_slice(&echo.src_ip);
    ip[16..20].copy_from_slice(&echo.dst_ip);
    let c = checksum(ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let icmp = &mut buf[ETH_HLEN + 20..len];
    icmp[0] = echo.kind;
    icmp[1] = 0;
    icmp[2..4].copy_from_slice(&[0, 0]);
    icmp[4..6].copy_from_slice(&echo.ident.to_be_bytes());
    icmp[6..8].copy_from_slice(&echo.seq.to_be_bytes());
    icmp[8..].copy_from_slice(echo.payload);
    let c = checksum(icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    Ok(len)
}

/// The reply to an echo request addressed to `ip`, from `mac`; `None` if `req` is not
/// a request for `ip`.
pub fn echo_reply_to(buf: &mut [u8], req: &Echo<'_>, mac: Mac, ip: Ipv4, ip_id: u16) -> Option<Result<usize, ParseError>> {
    if req.kind != ICMP_ECHO_REQUEST || req.dst_ip != ip {
        return None;
    }
    let reply = Echo { kind: ICMP_ECHO_REPLY, src_mac: mac, src_ip: ip, dst_ip: req.src_ip, ..*req };
    Some(build_echo(buf, req.src_mac, &reply, ip_id))
}

/// Parses a dotted-quad IPv4 address.
pub fn parse_ipv4(s: &str) -> Option<Ipv4> {
    let mut ip = [0u8; 4];
    let mut parts = s.trim().split('.');
    for b in ip.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        *b = p.parse().ok()?;
    }
    parts.next().is_none().then_some(ip)
}

/// Parses a MAC address `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<Mac> {
    let mut mac = [0u8; 6];
    let mut parts = s.trim().trim_end_matches('\0').split(':');
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

    const A_MAC: Mac = [0x00, 0x16, 0x3e, 0, 0, 0x10];
    const B_MAC: Mac = [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff];
    const A: Ipv4 = [10, 0, 0, 2];
    const B: Ipv4 = [10, 0, 0, 1];

    #[test]
    fn rfc1071_checksum() {
        // RFC 1071's example words sum to ddf2 (folded); the checksum is its complement.
        let d = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(checksum(&d), !0xddf2);
        assert_eq!(checksum(&[]), 0xffff);
        assert_eq!(checksum(&[0xab]), !0xab00);
    }

    #[test]
    fn arp_round_trip() {
        let mut buf = [0u8; 64];
        let n = arp_request(&mut buf, B_MAC, B, A).unwrap();
        let Ok(Packet::Arp { dst_mac, arp }) = parse(&buf[..n]) else { panic!("not ARP") };
        assert_eq!(dst_mac, BROADCAST);
        assert_eq!((arp.op, arp.sender_ip, arp.target_ip), (ARP_REQUEST, B, A));
        let mut out = [0u8; 64];
        assert!(arp_reply_to(&mut out, &arp, A_MAC, B).is_none(), "not for that IP");
        let m = arp_reply_to(&mut out, &arp, A_MAC, A).unwrap().unwrap();
        let Ok(Packet::Arp { dst_mac, arp: r }) = parse(&out[..m]) else { panic!("not ARP") };
        assert_eq!(dst_mac, B_MAC);
        assert_eq!(r, Arp { op: ARP_REPLY, sender_mac: A_MAC, sender_ip: A, target_mac: B_MAC, target_ip: B });
        assert!(arp_reply_to(&mut out, &r, A_MAC, A).is_none(), "replies are not answered");
        assert_eq!(build_arp(&mut [0u8; 41], A_MAC, &r), Err(ParseError::NoRoom));
    }

    #[test]
    fn echo_round_trip_and_checksums() {
        let mut buf = [0u8; 128];
        let req = Echo { kind: ICMP_ECHO_REQUEST, src_mac: B_MAC, src_ip: B, dst_ip: A, ident: 0x1234, seq: 7, payload: b"abcdefgh0123456789" };
        let n = build_echo(&mut buf, A_MAC, &req, 1).unwrap();
        assert_eq!(n, ICMP_ECHO_OVERHEAD + 18);
        let Ok(Packet::Echo { dst_mac, echo }) = parse(&buf[..n]) else { panic!("not echo") };
        assert_eq!((dst_mac, echo), (A_MAC, req));
        let mut out = [0u8; 128];
        let m = echo_reply_to(&mut out, &echo, A_MAC, A, 9).unwrap().unwrap();
        let Ok(Packet::Echo { dst_mac, echo: r }) = parse(&out[..m]) else { panic!("not echo") };
        assert_eq!(dst_mac, B_MAC);
        assert_eq!((r.kind, r.src_ip, r.dst_ip, r.ident, r.seq, r.payload), (ICMP_ECHO_REPLY, A, B, 0x1234, 7, &b"abcdefgh0123456789"[..]));
        assert!(echo_reply_to(&mut [0u8; 128], &r, A_MAC, A, 9).is_none());
        // Corruption is caught.
        let mut bad = buf;
        bad[ETH_HLEN + 8] ^= 1; // TTL: IP header checksum
        assert_eq!(parse(&bad[..n]), Err(ParseError::IpChecksum));
        let mut bad = buf;
        bad[n - 1] ^= 1; // payload: ICMP checksum
        assert_eq!(parse(&bad[..n]), Err(ParseError::IcmpChecksum));
        assert_eq!(parse(&buf[..n - 1]), Err(ParseError::Truncated));
        assert_eq!(parse(&buf[..10]), Err(ParseError::Truncated));
        let mut udp = buf;
        udp[ETH_HLEN + 9] = 17;
        udp[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&[0, 0]);
        let c = checksum(&udp[ETH_HLEN..ETH_HLEN + 20]);
        udp[ETH_HLEN + 10..ETH_HLEN + 12].copy_from_slice(&c.to_be_bytes());
        assert_eq!(parse(&udp[..n]), Ok(Packet::OtherIp(17)));
        let mut v6 = buf;
        v6[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
        assert_eq!(parse(&v6[..n]), Ok(Packet::Other(0x86dd)));
    }

    #[test]
    fn linux_ping_request_parses() {
        // A frame as Linux's ping sends it: 56-byte payload, DF set, ident/seq.
        let payload: [u8; 56] = core::array::from_fn(|i| i as u8);
        let req = Echo { kind: ICMP_ECHO_REQUEST, src_mac: B_MAC, src_ip: B, dst_ip: A, ident: 77, seq: 1, payload: &payload };
        let mut buf = [0u8; 128];
        let n = build_echo(&mut buf, A_MAC, &req, 0xbeef).unwrap();
        assert_eq!(n, 98); // what tcpdump shows for a default ping
        assert!(matches!(parse(&buf[..n]), Ok(Packet::Echo { .. })));
    }

    #[test]
    fn addresses() {
        assert_eq!(parse_ipv4("10.0.0.2"), Some([10, 0, 0, 2]));
        for bad in ["10.0.0", "10.0.0.256", "a.b.c.d", "1.2.3.4.5", "", "1..2.3"] {
            assert_eq!(parse_ipv4(bad), None, "{bad}");
        }
        assert_eq!(parse_mac("00:16:3e:00:00:10\0"), Some(A_MAC));
        assert_eq!(parse_mac("00:16:3e:00:00"), None);
    }
}
