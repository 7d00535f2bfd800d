//! IPv6 (RFC 8200): the fixed header, and the walk over the extension
//! header chain to the upper-layer header.
//!
//! The chain is what makes IPv6 policing hard: a Router Advertisement can
//! hide behind Destination Options or a Fragment header (RFC 7113 lists the
//! evasions). [`Ipv6Packet::upper_layer`] walks every header the chain may
//! hold, bounded in count, and says where the upper-layer header starts and
//! whether the packet is a fragment, so a policy sees the ICMPv6 type
//! whatever precedes it, and can refuse a first fragment that does not hold
//! the whole chain (RFC 7112).

use std::net::Ipv6Addr;

use super::MacAddr;

use super::WireError;

pub const HEADER_LEN: usize = 40;

/// Byte ranges of the fixed header.
pub mod field {
    use std::ops::Range;

    pub const VER_TC_FLOW: Range<usize> = 0..4;
    pub const PAYLOAD_LEN: Range<usize> = 4..6;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Range<usize> = 8..24;
    pub const DST: Range<usize> = 24..40;
}

/// Next Header values: the extension headers and the upper layers lanyard
/// names (IANA "Assigned Internet Protocol Numbers").
pub mod next_header {
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const ESP: u8 = 50;
    pub const AUTH: u8 = 51;
    pub const ICMPV6: u8 = 58;
    pub const NONE: u8 = 59;
    pub const DST_OPTS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

/// More extension headers than this is no packet a host sends (RFC 8200
/// recommends each at most once, Destination Options twice): refused, so
/// a crafted chain costs a bounded walk.
pub const MAX_EXTENSION_HEADERS: usize = 8;

/// The Fragment header of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// In 8-byte units; 0 for the first fragment (or an atomic one).
    pub offset: u16,
    pub more: bool,
    pub ident: u32,
}

impl Fragment {
    /// The first fragment carries the headers; later ones only data.
    pub fn is_first(&self) -> bool {
        self.offset == 0
    }
}

/// Where the extension header chain ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// The upper-layer protocol (TCP, UDP, ICMPv6, ESP, No Next Header, or
    /// one lanyard does not know).
    pub protocol: u8,
    /// Offset of its header from the start of the IPv6 header. For a
    /// fragment that is not the first, the data there is the middle of a
    /// packet, not a header.
    pub offset: usize,
    pub fragment: Option<Fragment>,
}

/// A zero-copy view of an IPv6 fixed header.
#[derive(Debug, Clone, Copy)]
pub struct Ipv6Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv6Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(WireError::Malformed);
        }
        Ok(Ipv6Packet { buf })
    }

    #[inline]
    pub fn payload_len(&self) -> usize {
        let b = &self.buf.as_ref()[field::PAYLOAD_LEN];
        u16::from_be_bytes([b[0], b[1]]) as usize
    }

    #[inline]
    pub fn next_header(&self) -> u8 {
        self.buf.as_ref()[field::NEXT_HEADER]
    }

    #[inline]
    pub fn hop_limit(&self) -> u8 {
        self.buf.as_ref()[field::HOP_LIMIT]
    }

    pub fn src(&self) -> Ipv6Addr {
        addr(&self.buf.as_ref()[field::SRC])
    }

    pub fn dst(&self) -> Ipv6Addr {
        addr(&self.buf.as_ref()[field::DST])
    }

    /// The whole buffer the view was made over.
    pub fn as_bytes(&self) -> &T {
        &self.buf
    }

    /// The packet: header and payload, without the Ethernet padding after
    /// it. A payload length of 0 (a jumbogram's, RFC 2675, or none) and one
    /// longer than the buffer both leave the buffer as it is: the walk
    /// below is bounded by what is there either way.
    pub fn packet(&self) -> &[u8] {
        let b = self.buf.as_ref();
        match self.payload_len() {
            0 => b,
            n => &b[..(HEADER_LEN + n).min(b.len())],
        }
    }

    /// Walks the extension headers to the upper-layer header.
    ///
    /// `Truncated` if a header runs past the packet; `Malformed` for a
    /// Hop-by-Hop header that is not first, a second Fragment header, or
    /// more than [`MAX_EXTENSION_HEADERS`]. A fragment that is not the first
    /// ends the walk at its Fragment header: what follows is data.
    pub fn upper_layer(&self) -> Result<UpperLayer, WireError> {
        let b = self.packet();
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = None;
        for n in 0..=MAX_EXTENSION_HEADERS {
            let len = match nh {
                next_header::HOP_BY_HOP if n > 0 => return Err(WireError::Malformed),
                next_header::HOP_BY_HOP
                | next_header::ROUTING
                | next_header::DST_OPTS
                | next_header::MOBILITY
                | next_header::HIP
                | next_header::SHIM6 => {
                    let h = b.get(off..off + 2).ok_or(WireError::Truncated)?;
                    (h[1] as usize + 1) * 8
                }
                // RFC 4302: the length is in 4-byte units, minus 2.
                next_header::AUTH => {
                    let h = b.get(off..off + 2).ok_or(WireError::Truncated)?;
                    (h[1] as usize + 2) * 4
                }
                next_header::FRAGMENT => {
                    if fragment.is_some() {
                        return Err(WireError::Malformed);
                    }
                    let h = b.get(off..off + 8).ok_or(WireError::Truncated)?;
                    let word = u16::from_be_bytes([h[2], h[3]]);
                    let f = Fragment {
                        offset: word >> 3,
                        more: word & 1 == 1,
                        ident: u32::from_be_bytes([h[4], h[5], h[6], h[7]]),
                    };
                    fragment = Some(f);
                    if !f.is_first() {
                        return Ok(UpperLayer {
                            protocol: h[0],
                            offset: off + 8,
                            fragment,
                        });
                    }
                    8
                }
                protocol => {
                    return Ok(UpperLayer {
                        protocol,
                        offset: off,
                        fragment,
                    })
                }
            };
            if off + len > b.len() {
                return Err(WireError::Truncated);
            }
            nh = b[off];
            off += len;
        }
        Err(WireError::Malformed)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv6Packet<T> {
    pub fn set_payload_len(&mut self, len: u16) {
        self.buf.as_mut()[field::PAYLOAD_LEN].copy_from_slice(&len.to_be_bytes());
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    Ipv6Addr::from(a)
}

/// The modified EUI-64 interface identifier of a MAC (RFC 4291 appendix
/// A): the universal/local bit flipped and ff:fe in the middle.
pub fn eui64(mac: MacAddr) -> [u8; 8] {
    let m = mac.0;
    [m[0] ^ 0x02, m[1], m[2], 0xff, 0xfe, m[3], m[4], m[5]]
}

/// The address a kernel forms from `prefix` (its first 64 bits) and a MAC:
/// its link-local with fe80::/64, its SLAAC address with a /64 prefix.
pub fn addr_from_mac(prefix: Ipv6Addr, mac: MacAddr) -> Ipv6Addr {
    let mut a = prefix.octets();
    a[8..].copy_from_slice(&eui64(mac));
    Ipv6Addr::from(a)
}

/// fe80::/64 + the MAC's EUI-64: the link-local address of an interface
/// with that MAC (addr_gen_mode eui64, the kernel's default).
pub fn link_local_from_mac(mac: MacAddr) -> Ipv6Addr {
    addr_from_mac(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0), mac)
}

/// The solicited-node multicast address of `a` (RFC 4291 2.7.1).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | o[13] as u16,
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// The Ethernet multicast address of an IPv6 group (RFC 2464 7).
pub fn multicast_mac(group: Ipv6Addr) -> MacAddr {
    let o = group.octets();
    MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
}

/// Writes a fixed header into `buf` (at least [`HEADER_LEN`] bytes):
/// version 6, traffic class and flow label 0.
pub fn emit_header(
    buf: &mut [u8],
    src: Ipv6Addr,
    dst: Ipv6Addr,
    next: u8,
    payload_len: u16,
    hop_limit: u8,
) {
    buf[field::VER_TC_FLOW].copy_from_slice(&[0x60, 0, 0, 0]);
    buf[field::PAYLOAD_LEN].copy_from_slice(&payload_len.to_be_bytes());
    buf[field::NEXT_HEADER] = next;
    buf[field::HOP_LIMIT] = hop_limit;
    buf[field::SRC].copy_from_slice(&src.octets());
    buf[field::DST].copy_from_slice(&dst.octets());
}

#[cfg(test)]
mod tests {
    use super::*;

    const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2);
    const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

    /// A packet with the given extension headers (each: next header is
    /// filled in, `len` bytes long) in front of `upper` with 8 bytes of it.
    fn packet(exts: &[(u8, usize)], upper: u8) -> Vec<u8> {
        let total: usize = exts.iter().map(|e| e.1).sum::<usize>() + 8;
        let mut b = vec![0u8; HEADER_LEN + total];
        let first = exts.first().map_or(upper, |e| e.0);
        emit_header(&mut b, LL, ALL_NODES, first, total as u16, 255);
        let mut off = HEADER_LEN;
        for (i, &(kind, len)) in exts.iter().enumerate() {
            b[off] = exts.get(i + 1).map_or(upper, |e| e.0);
            match kind {
                next_header::FRAGMENT => {}
                next_header::AUTH => b[off + 1] = (len / 4 - 2) as u8,
                _ => b[off + 1] = (len / 8 - 1) as u8,
            }
            off += len;
        }
        b
    }

    #[test]
    fn fixed_header() {
        let mut b = [0u8; 48];
        b[0] = 0x60;
        b[4..6].copy_from_slice(&8u16.to_be_bytes());
        b[6] = 17;
        b[7] = 64;
        b[8] = 0xfe;
        b[9] = 0x80;
        b[39] = 1;
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload_len(), 8);
        assert_eq!(p.next_header(), 17);
        assert_eq!(p.src(), "fe80::".parse::<Ipv6Addr>().unwrap());
        assert_eq!(p.dst(), "::1".parse::<Ipv6Addr>().unwrap());
        b[0] = 0x40;
        assert_eq!(
            Ipv6Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
        assert_eq!(
            Ipv6Packet::new_checked(&b[..39]).unwrap_err(),
            WireError::Truncated
        );
    }

    #[test]
    fn emit_then_parse() {
        let mut b = [0u8; 40];
        emit_header(&mut b, LL, ALL_NODES, next_header::ICMPV6, 0, 255);
        let p = Ipv6Packet::new_checked(&b[..]).unwrap();
        assert_eq!((p.src(), p.dst(), p.hop_limit()), (LL, ALL_NODES, 255));
        assert_eq!(p.next_header(), next_header::ICMPV6);
    }

    #[test]
    fn the_walk_finds_the_upper_layer_behind_every_extension() {
        let p = packet(&[], next_header::ICMPV6);
        let u = Ipv6Packet::new_checked(&p[..]).unwrap().upper_layer();
        assert_eq!(
            u,
            Ok(UpperLayer {
                protocol: next_header::ICMPV6,
                offset: 40,
                fragment: None
            })
        );
        let p = packet(
            &[
                (next_header::HOP_BY_HOP, 8),
                (next_header::DST_OPTS, 16),
                (next_header::ROUTING, 24),
                (next_header::AUTH, 12),
                (next_header::FRAGMENT, 8),
                (next_header::DST_OPTS, 8),
            ],
            next_header::ICMPV6,
        );
        let u = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.protocol, next_header::ICMPV6);
        assert_eq!(u.offset, 40 + 8 + 16 + 24 + 12 + 8 + 8);
        assert!(u.fragment.unwrap().is_first());
    }

    #[test]
    fn a_later_fragment_ends_the_walk_at_its_header() {
        let mut p = packet(&[(next_header::FRAGMENT, 8)], next_header::ICMPV6);
        // Offset 185 (1480 bytes), more fragments, ident 7.
        p[42..44].copy_from_slice(&((185u16 << 3) | 1).to_be_bytes());
        p[44..48].copy_from_slice(&7u32.to_be_bytes());
        let u = Ipv6Packet::new_checked(&p[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(u.offset, 48);
        assert_eq!(
            u.fragment,
            Some(Fragment {
                offset: 185,
                more: true,
                ident: 7
            })
        );
    }

    #[test]
    fn crafted_chains_are_refused() {
        let walk = |p: &[u8]| Ipv6Packet::new_checked(p).unwrap().upper_layer();
        // Hop-by-Hop anywhere but first.
        let p = packet(
            &[(next_header::DST_OPTS, 8), (next_header::HOP_BY_HOP, 8)],
            next_header::UDP,
        );
        assert_eq!(walk(&p), Err(WireError::Malformed));
        // Two Fragment headers.
        let p = packet(
            &[(next_header::FRAGMENT, 8), (next_header::FRAGMENT, 8)],
            next_header::UDP,
        );
        assert_eq!(walk(&p), Err(WireError::Malformed));
        // One header too many.
        let p = packet(
            &[(next_header::DST_OPTS, 8); MAX_EXTENSION_HEADERS + 1],
            next_header::UDP,
        );
        assert_eq!(walk(&p), Err(WireError::Malformed));
        let p = packet(
            &[(next_header::DST_OPTS, 8); MAX_EXTENSION_HEADERS],
            next_header::UDP,
        );
        assert_eq!(walk(&p).unwrap().protocol, next_header::UDP);
        // A header longer than the packet, by its length or the payload
        // length, and one cut off before its length byte.
        let mut p = packet(&[(next_header::DST_OPTS, 8)], next_header::UDP);
        p[41] = 200;
        assert_eq!(walk(&p), Err(WireError::Truncated));
        let mut p = packet(&[(next_header::DST_OPTS, 16)], next_header::UDP);
        p[4..6].copy_from_slice(&8u16.to_be_bytes());
        assert_eq!(walk(&p), Err(WireError::Truncated));
        let p = packet(&[(next_header::ROUTING, 8)], next_header::UDP);
        assert_eq!(walk(&p[..41]), Err(WireError::Truncated));
        let p = packet(&[(next_header::FRAGMENT, 8)], next_header::UDP);
        assert_eq!(walk(&p[..46]), Err(WireError::Truncated));
    }

    #[test]
    fn padding_after_the_packet_is_not_walked() {
        // 40 + 8 bytes of packet, then Ethernet padding that would read
        // as a Destination Options header.
        let mut p = packet(&[], next_header::DST_OPTS);
        p[4..6].copy_from_slice(&0u16.to_be_bytes());
        let mut padded = p.clone();
        padded[4..6].copy_from_slice(&1u16.to_be_bytes());
        padded.extend_from_slice(&[0u8; 16]);
        let v = Ipv6Packet::new_checked(&padded[..]).unwrap();
        assert_eq!(v.packet().len(), 41);
        assert_eq!(v.upper_layer(), Err(WireError::Truncated));
    }
}
