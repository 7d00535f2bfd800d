//! Software fallback for offloads a port cannot take.
//!
//! Frames from a TAP with `IFF_VNET_HDR` usually carry a partial checksum
//! (`NEEDS_CSUM`) and are often GSO super-frames of up to 64 KiB. Between two
//! vnet-capable ports they pass untouched; that is what makes a userspace
//! switch fast. A port that cannot take them (a memory port, an AF_PACKET
//! socket without `PACKET_VNET_HDR`, the gateway, later VXLAN and NAT
//! rewrites) gets them finished here: the checksum completed, or the
//! super-frame cut into MSS-sized segments with their own headers and
//! checksums, written one by one into a caller-owned scratch buffer.

use crate::frame::FrameBuf;
use crate::wire::checksum;
use crate::wire::ethernet::{ethertype, HEADER_LEN as ETH_LEN};
use crate::wire::ipv4::{protocol, Ipv4Packet};
use crate::wire::ipv6::{Ipv6Packet, HEADER_LEN as IPV6_LEN};
use crate::wire::tcp::{flags as tcpf, TcpPacket};
use crate::wire::udp;
use crate::wire::vnet::{flags, gso, VnetHdr};
use crate::wire::WireError;

/// What a port accepts from the virtio-net header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Offloads {
    /// The port reads and writes a virtio-net header at all.
    pub vnet_hdr: bool,
    /// Frames with a partial checksum (`NEEDS_CSUM`).
    pub csum: bool,
    /// TCP GSO super-frames (TSO4/TSO6, with ECN).
    pub tso: bool,
    /// UDP GSO super-frames (`UDP_L4`) may be written to it: the receiving
    /// kernel splits them into their datagrams (a TAP, where the kernel
    /// knows USO, Linux 6.2). Only ever written: a TAP is never asked to
    /// hand such frames to us.
    pub uso: bool,
}

impl Offloads {
    pub const NONE: Offloads = Offloads {
        vnet_hdr: false,
        csum: false,
        tso: false,
        uso: false,
    };
    /// Checksums and TCP super-frames; UDP super-frames are cut up.
    pub const FULL: Offloads = Offloads {
        vnet_hdr: true,
        csum: true,
        tso: true,
        uso: false,
    };

    /// Whether a frame with header `h` can go to this port unchanged.
    #[inline]
    pub fn accepts(&self, h: &VnetHdr) -> bool {
        if h.is_gso() {
            return match h.gso_kind() {
                gso::TCPV4 | gso::TCPV6 => self.tso,
                gso::UDP_L4 => self.uso,
                _ => false,
            };
        }
        !h.needs_csum() || self.csum
    }
}

/// Most segments one super-frame may be cut into. A 64 KiB frame with a
/// 64-byte MSS stays within it; a container asking for more is refusing to
/// be cheap to serve and gets the frame dropped.
pub const MAX_SEGMENTS: usize = 1024;

/// Most datagrams in one UDP super-frame or UDP GSO send lanyard builds:
/// the kernel's `UDP_MAX_SEGMENTS` (64 since Linux 4.18, 128 since 5.x; the
/// lower one holds everywhere).
pub const UDP_MAX_SEGMENTS: usize = 64;
/// Most payload bytes in one: within a UDP length and an IPv4 packet's
/// (65535 less the headers), with room to spare.
pub const UDP_MAX_BYTES: usize = 63 * 1024;

/// Datagrams gathered for one UDP super-frame (`UDP_L4`) or one UDP GSO
/// send, as GSO has them: every one `segment` bytes but the last, which may
/// be shorter, within [`UDP_MAX_SEGMENTS`] and [`UDP_MAX_BYTES`]. The NAT's
/// batches both ways and the switch's coalescer count their datagrams with
/// it; where the bytes are is theirs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentRun {
    /// Every datagram's size but the last one's.
    pub segment: usize,
    pub count: usize,
    /// Payload bytes.
    pub len: usize,
    /// The last datagram was shorter than `segment`: nothing may follow.
    closed: bool,
}

impl SegmentRun {
    /// A run of one datagram of `n` bytes.
    pub fn start(n: usize) -> SegmentRun {
        SegmentRun {
            segment: n,
            count: 1,
            len: n,
            closed: false,
        }
    }

    /// Whether a datagram of `n` bytes may join.
    #[inline]
    pub fn takes(&self, n: usize) -> bool {
        !self.closed
            && n > 0
            && n <= self.segment
            && self.count < UDP_MAX_SEGMENTS
            && self.len + n <= UDP_MAX_BYTES
    }

    /// Whether any datagram still may (one of `segment` bytes would).
    #[inline]
    pub fn may_grow(&self) -> bool {
        self.takes(self.segment)
    }

    /// Counts a datagram of `n` bytes that [`SegmentRun::takes`] allowed.
    #[inline]
    pub fn add(&mut self, n: usize) {
        debug_assert!(self.takes(n));
        self.len += n;
        self.count += 1;
        self.closed = n < self.segment;
    }
}

/// Completes a partial checksum in place and clears `NEEDS_CSUM`.
/// The field at `csum_start + csum_offset` holds the pseudo-header sum; the
/// final value is the complement of the sum from `csum_start` to the end.
pub fn finish_checksum(buf: &mut FrameBuf) -> Result<(), WireError> {
    let mut h = buf.vnet();
    if !h.needs_csum() {
        return Ok(());
    }
    h.validate(buf.len())?;
    let start = h.csum_start as usize;
    let field = start + h.csum_offset as usize;
    let frame = buf.frame_mut();
    let mut c = checksum::finish(checksum::sum(0, &frame[start..]));
    // A UDP checksum that computes to zero is sent as all ones (RFC 768).
    if c == 0 && h.csum_offset as usize == udp::CHECKSUM_OFFSET {
        c = 0xffff;
    }
    frame[field..field + 2].copy_from_slice(&c.to_be_bytes());
    h.flags &= !flags::NEEDS_CSUM;
    h.flags |= flags::DATA_VALID;
    buf.set_vnet(h);
    Ok(())
}

/// Where the network header of a frame begins, past one optional VLAN tag.
fn l3_offset(frame: &[u8]) -> Result<(usize, u16), WireError> {
    if frame.len() < ETH_LEN {
        return Err(WireError::Truncated);
    }
    let et = u16::from_be_bytes([frame[12], frame[13]]);
    if et == ethertype::VLAN || et == ethertype::QINQ {
        if frame.len() < ETH_LEN + 4 {
            return Err(WireError::Truncated);
        }
        return Ok((ETH_LEN + 4, u16::from_be_bytes([frame[16], frame[17]])));
    }
    Ok((ETH_LEN, et))
}

/// Where the headers of a GSO super-frame are, once checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct GsoLayout {
    l3: usize,
    l4: usize,
    /// End of the transport header: where the payload to cut begins.
    hdrs: usize,
    is_v4: bool,
    is_tcp: bool,
}

/// Checks that a GSO frame's header agrees with the frame it describes
/// (EtherType, IP version, transport protocol, where the transport header
/// and its checksum field are) and returns the layout.
fn gso_layout(frame: &[u8], h: &VnetHdr) -> Result<GsoLayout, WireError> {
    h.validate(frame.len())?;
    let (l3, et) = l3_offset(frame)?;
    let l4 = h.csum_start as usize;
    let kind = h.gso_kind();
    let is_v4 = match (kind, et) {
        (gso::TCPV4, ethertype::IPV4) => true,
        (gso::TCPV6, ethertype::IPV6) => false,
        (gso::UDP_L4, ethertype::IPV4) => true,
        (gso::UDP_L4, ethertype::IPV6) => false,
        _ => return Err(WireError::Malformed),
    };
    let is_tcp = kind != gso::UDP_L4;
    let expected_csum = if is_tcp {
        crate::wire::tcp::CHECKSUM_OFFSET
    } else {
        udp::CHECKSUM_OFFSET
    };
    if h.csum_offset as usize != expected_csum {
        return Err(WireError::Malformed);
    }
    if is_v4 {
        let ip = Ipv4Packet::new_checked_gso(&frame[l3..])?;
        let expected = if is_tcp { protocol::TCP } else { protocol::UDP };
        if ip.protocol() != expected || l3 + ip.header_len() != l4 {
            return Err(WireError::Malformed);
        }
    } else {
        Ipv6Packet::new_checked(&frame[l3..])?;
        if l4 < l3 + IPV6_LEN {
            return Err(WireError::Malformed);
        }
    }
    let l4_hdr_len = if is_tcp {
        TcpPacket::new_checked(&frame[l4..])?.header_len()
    } else {
        if frame.len() < l4 + udp::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        udp::HEADER_LEN
    };
    Ok(GsoLayout {
        l3,
        l4,
        hdrs: l4 + l4_hdr_len,
        is_v4,
        is_tcp,
    })
}

/// Checks that a frame's offload header tells the truth about the frame,
/// before it is switched anywhere: a partial checksum must point at the TCP
/// or UDP checksum field of the packet (else completing it in software
/// would write 16 sender-chosen bits anywhere in the frame — into the
/// source address, after port security passed it), and a GSO frame's
/// EtherType, protocol and header offsets must match its kind, with
/// segments no longer than an IP packet can be. Plain frames pass.
///
/// Returns, for a GSO frame, the size of the IP packets its segments make
/// (headers + `gso_size`), for the caller to hold against the MTU.
pub fn check_offload(frame: &[u8], h: &VnetHdr) -> Result<Option<usize>, WireError> {
    if h.is_gso() {
        let l = gso_layout(frame, h)?;
        let segment = l.hdrs - l.l3 + h.gso_size as usize;
        if segment > u16::MAX as usize {
            return Err(WireError::Malformed);
        }
        return Ok(Some(segment));
    }
    if !h.needs_csum() {
        return Ok(None);
    }
    h.validate(frame.len())?;
    let (l3, et) = l3_offset(frame)?;
    let start = h.csum_start as usize;
    let offset = h.csum_offset as usize;
    let field_ok = |proto: u8| match proto {
        protocol::TCP => offset == crate::wire::tcp::CHECKSUM_OFFSET,
        protocol::UDP => offset == udp::CHECKSUM_OFFSET,
        _ => false,
    };
    match et {
        ethertype::IPV4 => {
            let ip = Ipv4Packet::new_checked(&frame[l3..])?;
            if start != l3 + ip.header_len() || !field_ok(ip.protocol()) {
                return Err(WireError::Malformed);
            }
        }
        ethertype::IPV6 => {
            let ip = Ipv6Packet::new_checked(&frame[l3..])?;
            // Past the fixed header, where no address lives. Extension
            // headers are not walked (the IPv6 issue's job); without them
            // the next header must be the protocol the offset names.
            let direct = start == l3 + IPV6_LEN && field_ok(ip.next_header());
            let beyond = start > l3 + IPV6_LEN
                && (offset == crate::wire::tcp::CHECKSUM_OFFSET || offset == udp::CHECKSUM_OFFSET);
            if !direct && !beyond {
                return Err(WireError::Malformed);
            }
        }
        _ => return Err(WireError::Malformed),
    }
    Ok(None)
}

/// Cuts the GSO super-frame in `src` into segments of at most `gso_size`
/// payload bytes, each complete (lengths, IPv4 identification, TCP sequence
/// numbers and flags, checksums), written in turn into `scratch` and handed
/// to `emit`. Returns the number of segments.
pub fn segment(
    src: &FrameBuf,
    scratch: &mut FrameBuf,
    mut emit: impl FnMut(&FrameBuf),
) -> Result<usize, WireError> {
    let h = src.vnet();
    let frame = src.frame();
    let GsoLayout {
        l3,
        l4,
        hdrs,
        is_v4,
        is_tcp,
    } = gso_layout(frame, &h)?;
    let l4_hdr_len = hdrs - l4;
    let payload = &frame[hdrs..];
    let mss = h.gso_size as usize;
    let count = payload.len().div_ceil(mss).max(1);
    if count > MAX_SEGMENTS {
        return Err(WireError::Unsupported);
    }

    let (ip_id, src4, dst4) = if is_v4 {
        let ip = Ipv4Packet::new_checked_gso(&frame[l3..])?;
        (ip.ident(), Some(ip.src()), Some(ip.dst()))
    } else {
        (0, None, None)
    };
    let (src6, dst6) = if is_v4 {
        (None, None)
    } else {
        let ip = Ipv6Packet::new_checked(&frame[l3..])?;
        (Some(ip.src()), Some(ip.dst()))
    };
    let (seq, orig_flags) = if is_tcp {
        let t = TcpPacket::new_checked(&frame[l4..])?;
        (t.seq(), t.flags())
    } else {
        (0, 0)
    };

    for i in 0..count {
        let start = i * mss;
        let end = (start + mss).min(payload.len());
        let chunk = &payload[start..end];
        let seg_len = hdrs + chunk.len();
        {
            let out = scratch.read_space();
            out[..hdrs].copy_from_slice(&frame[..hdrs]);
            out[hdrs..seg_len].copy_from_slice(chunk);
        }
        scratch.set_len(seg_len);
        scratch.set_vnet(VnetHdr::default());
        let out = scratch.frame_mut();
        let l4_len = l4_hdr_len + chunk.len();
        if is_v4 {
            let mut ip = Ipv4Packet::new_checked_gso(&mut out[l3..])?;
            ip.set_total_len((l4 - l3 + l4_len) as u16);
            ip.set_ident(ip_id.wrapping_add(i as u16));
            ip.fill_checksum();
        } else {
            let mut ip = Ipv6Packet::new_checked(&mut out[l3..])?;
            ip.set_payload_len((l4 - l3 - IPV6_LEN + l4_len) as u16);
        }
        let pseudo = if is_v4 {
            let p = if is_tcp { protocol::TCP } else { protocol::UDP };
            checksum::pseudo_header_v4(src4.unwrap(), dst4.unwrap(), p, l4_len as u16)
        } else {
            let p = if is_tcp { protocol::TCP } else { protocol::UDP };
            checksum::pseudo_header_v6(src6.unwrap(), dst6.unwrap(), p, l4_len as u32)
        };
        if is_tcp {
            let last = i + 1 == count;
            let mut f = orig_flags;
            if !last {
                f &= !(tcpf::FIN | tcpf::PSH);
            }
            if i != 0 {
                f &= !tcpf::CWR;
            }
            let mut t = TcpPacket::new_checked(&mut out[l4..])?;
            t.set_seq(seq.wrapping_add(start as u32));
            t.set_flags(f);
            t.set_checksum(0);
            let c = checksum::finish(checksum::sum(pseudo, &out[l4..seg_len]));
            out[l4 + 16..l4 + 18].copy_from_slice(&c.to_be_bytes());
        } else {
            out[l4 + 4..l4 + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
            out[l4 + 6..l4 + 8].copy_from_slice(&[0, 0]);
            let mut c = checksum::finish(checksum::sum(pseudo, &out[l4..seg_len]));
            if c == 0 {
                c = 0xffff;
            }
            out[l4 + 6..l4 + 8].copy_from_slice(&c.to_be_bytes());
        }
        emit(scratch);
    }
    Ok(count)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::wire::ethernet::{emit_header, MacAddr};
    use crate::wire::ipv4::Ipv4Repr;
    use std::net::Ipv4Addr;

    /// A TCP/IPv4 GSO super-frame as a TAP hands it over: full-length IP
    /// header, TCP checksum field holding the pseudo-header sum only.
    pub(crate) fn tcp4_gso_frame(payload_len: usize, mss: u16, tcp_flags: u8) -> FrameBuf {
        let mut f = vec![0u8; ETH_LEN + 20 + 20 + payload_len];
        emit_header(
            &mut f,
            MacAddr([2, 0x42, 172, 17, 0, 3]),
            MacAddr([2, 0x42, 172, 17, 0, 2]),
            ethertype::IPV4,
        );
        let src = Ipv4Addr::new(172, 17, 0, 2);
        let dst = Ipv4Addr::new(172, 17, 0, 3);
        Ipv4Repr {
            src,
            dst,
            protocol: protocol::TCP,
            payload_len: 20 + payload_len,
            ttl: 64,
            ident: 100,
        }
        .emit(&mut f[ETH_LEN..]);
        crate::wire::tcp::emit_header(&mut f[34..], 40000, 5201, 1_000_000, 77, tcp_flags, 502);
        for (i, b) in f[54..].iter_mut().enumerate() {
            *b = (i * 7 % 251) as u8;
        }
        let pseudo = checksum::pseudo_header_v4(src, dst, protocol::TCP, (20 + payload_len) as u16);
        f[50..52].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        let gso_type = if payload_len > mss as usize {
            gso::TCPV4
        } else {
            gso::NONE
        };
        FrameBuf::from_frame(
            VnetHdr {
                flags: flags::NEEDS_CSUM,
                gso_type,
                hdr_len: 54,
                gso_size: if gso_type == gso::NONE { 0 } else { mss },
                csum_start: 34,
                csum_offset: 16,
            },
            &f,
        )
    }

    fn check_tcp4(frame: &[u8]) -> (u32, u8, usize) {
        let p = etherparse::SlicedPacket::from_ethernet(frame).unwrap();
        let ip = match p.net.unwrap() {
            etherparse::NetSlice::Ipv4(ip) => ip,
            _ => panic!("not ipv4"),
        };
        let hdr = ip.header().to_header();
        assert_eq!(
            hdr.calc_header_checksum(),
            hdr.header_checksum,
            "ip checksum"
        );
        let tcp = match p.transport.unwrap() {
            etherparse::TransportSlice::Tcp(t) => t,
            _ => panic!("not tcp"),
        };
        let want = tcp
            .to_header()
            .calc_checksum_ipv4(&hdr, tcp.payload())
            .unwrap();
        assert_eq!(tcp.checksum(), want, "tcp checksum");
        (tcp.sequence_number(), frame[47], tcp.payload().len())
    }

    #[test]
    fn finish_checksum_matches_independent_computation() {
        let mut f = tcp4_gso_frame(1000, 1448, tcpf::ACK | tcpf::PSH);
        finish_checksum(&mut f).unwrap();
        assert!(!f.vnet().needs_csum());
        check_tcp4(f.frame());
    }

    #[test]
    fn segments_cover_payload_with_valid_headers() {
        let payload = 10_000;
        let mss = 1448u16;
        let src = tcp4_gso_frame(payload, mss, tcpf::ACK | tcpf::PSH | tcpf::FIN | tcpf::CWR);
        let mut scratch = FrameBuf::new();
        let mut got = Vec::new();
        let n = segment(&src, &mut scratch, |s| got.push(s.frame().to_vec())).unwrap();
        assert_eq!(n, payload.div_ceil(mss as usize));
        let mut expected_seq = 1_000_000u32;
        let mut reassembled = Vec::new();
        for (i, s) in got.iter().enumerate() {
            let (seq, fl, len) = check_tcp4(s);
            assert_eq!(seq, expected_seq);
            expected_seq += len as u32;
            let last = i + 1 == got.len();
            assert_eq!(fl & tcpf::FIN != 0, last);
            assert_eq!(fl & tcpf::PSH != 0, last);
            assert_eq!(fl & tcpf::CWR != 0, i == 0);
            assert!(len <= mss as usize);
            reassembled.extend_from_slice(&s[54..]);
            let id = u16::from_be_bytes([s[18], s[19]]);
            assert_eq!(id, 100 + i as u16);
        }
        assert_eq!(reassembled, src.frame()[54..].to_vec());
    }

    #[test]
    fn malformed_headers_are_refused_not_panicking() {
        let mut src = tcp4_gso_frame(5000, 1000, tcpf::ACK);
        let mut h = src.vnet();
        h.csum_start = 30; // not where the TCP header is
        src.set_vnet(h);
        let mut scratch = FrameBuf::new();
        assert!(segment(&src, &mut scratch, |_| {}).is_err());
        h.csum_start = 34;
        h.gso_size = 1;
        src.set_vnet(h);
        assert_eq!(
            segment(&src, &mut scratch, |_| {}).unwrap_err(),
            WireError::Unsupported
        );
    }

    #[test]
    fn offload_acceptance() {
        let plain = VnetHdr::default();
        let csum = VnetHdr {
            flags: flags::NEEDS_CSUM,
            ..plain
        };
        let tso = VnetHdr {
            gso_type: gso::TCPV4,
            ..csum
        };
        assert!(Offloads::NONE.accepts(&plain));
        assert!(!Offloads::NONE.accepts(&csum));
        assert!(!Offloads::NONE.accepts(&tso));
        assert!(Offloads::FULL.accepts(&tso));
        let udp = VnetHdr {
            gso_type: gso::UDP_L4,
            ..csum
        };
        assert!(!Offloads::FULL.accepts(&udp));
    }

    /// A GSO super-frame over IPv6 (TCP or UDP), as a TAP would deliver it.
    fn v6_gso_frame(tcp: bool, payload_len: usize, mss: u16) -> FrameBuf {
        use std::net::Ipv6Addr;
        // Addresses whose sum overflowed an unfolded 32-bit accumulator.
        let src: Ipv6Addr = "fe80::1:2ff:fdfc".parse().unwrap();
        let dst: Ipv6Addr = "fe80::1".parse().unwrap();
        let l4_hdr = if tcp { 20 } else { 8 };
        let mut f = vec![0u8; ETH_LEN + IPV6_LEN + l4_hdr + payload_len];
        emit_header(
            &mut f,
            MacAddr([2, 0, 0, 0, 0, 2]),
            MacAddr([2, 0, 0, 0, 0, 1]),
            ethertype::IPV6,
        );
        let ip = &mut f[ETH_LEN..];
        ip[0] = 0x60;
        ip[4..6].copy_from_slice(&((l4_hdr + payload_len) as u16).to_be_bytes());
        ip[6] = if tcp { protocol::TCP } else { protocol::UDP };
        ip[7] = 64;
        ip[8..24].copy_from_slice(&src.octets());
        ip[24..40].copy_from_slice(&dst.octets());
        let l4 = ETH_LEN + IPV6_LEN;
        if tcp {
            crate::wire::tcp::emit_header(&mut f[l4..], 443, 50000, 42, 1, tcpf::ACK, 100);
        } else {
            f[l4..l4 + 2].copy_from_slice(&443u16.to_be_bytes());
            f[l4 + 2..l4 + 4].copy_from_slice(&50000u16.to_be_bytes());
            f[l4 + 4..l4 + 6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
        }
        for (i, b) in f[l4 + l4_hdr..].iter_mut().enumerate() {
            *b = (i % 241) as u8;
        }
        let proto = if tcp { protocol::TCP } else { protocol::UDP };
        let pseudo = checksum::pseudo_header_v6(src, dst, proto, (l4_hdr + payload_len) as u32);
        let field = l4 + if tcp { 16 } else { 6 };
        f[field..field + 2].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        FrameBuf::from_frame(
            VnetHdr {
                flags: flags::NEEDS_CSUM,
                gso_type: if tcp { gso::TCPV6 } else { gso::UDP_L4 },
                hdr_len: (l4 + l4_hdr) as u16,
                gso_size: mss,
                csum_start: l4 as u16,
                csum_offset: if tcp { 16 } else { 6 },
            },
            &f,
        )
    }

    #[test]
    fn ipv6_tcp_and_udp_segments_are_valid() {
        for tcp in [true, false] {
            let src = v6_gso_frame(tcp, 9000, 1400);
            let mut scratch = FrameBuf::new();
            let mut payload = Vec::new();
            let n = segment(&src, &mut scratch, |s| {
                let p = etherparse::SlicedPacket::from_ethernet(s.frame()).unwrap();
                let Some(etherparse::NetSlice::Ipv6(ip)) = &p.net else {
                    panic!("not ipv6")
                };
                let h = ip.header().to_header();
                match &p.transport {
                    Some(etherparse::TransportSlice::Tcp(t)) => {
                        let want = t.to_header().calc_checksum_ipv6(&h, t.payload()).unwrap();
                        assert_eq!(t.checksum(), want, "TCPv6 checksum");
                        payload.extend_from_slice(t.payload());
                    }
                    Some(etherparse::TransportSlice::Udp(u)) => {
                        let want = u.to_header().calc_checksum_ipv6(&h, u.payload()).unwrap();
                        assert_eq!(u.checksum(), want, "UDPv6 checksum");
                        payload.extend_from_slice(u.payload());
                    }
                    other => panic!("unexpected transport {other:?}"),
                }
            })
            .unwrap();
            assert_eq!(n, 9000usize.div_ceil(1400));
            let hdrs = ETH_LEN + IPV6_LEN + if tcp { 20 } else { 8 };
            assert_eq!(payload, src.frame()[hdrs..].to_vec());
        }
    }

    #[test]
    fn partial_checksums_must_point_at_the_transport_checksum() {
        let good = tcp4_gso_frame(500, 1448, tcpf::ACK);
        let h = good.vnet();
        assert_eq!(check_offload(good.frame(), &h), Ok(None));
        // Pointing the checksum write at the IPv4 source address.
        for (start, offset) in [(20u16, 8u16), (34, 6), (30, 4), (14, 16)] {
            let bad = VnetHdr {
                csum_start: start,
                csum_offset: offset,
                ..h
            };
            assert!(
                check_offload(good.frame(), &bad).is_err(),
                "{start}/{offset}"
            );
        }
        // Not IP at all.
        let mut arp = good.frame().to_vec();
        arp[12..14].copy_from_slice(&ethertype::ARP.to_be_bytes());
        assert!(check_offload(&arp, &h).is_err());
        // A GSO frame reports its segment size.
        let gso = tcp4_gso_frame(5000, 1000, tcpf::ACK);
        assert_eq!(
            check_offload(gso.frame(), &gso.vnet()),
            Ok(Some(20 + 20 + 1000))
        );
        let mut huge = gso.vnet();
        huge.gso_size = 65_535;
        assert!(check_offload(gso.frame(), &huge).is_err());
    }
}
