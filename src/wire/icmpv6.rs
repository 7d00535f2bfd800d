//! ICMPv6 (RFC 4443) and the Neighbor Discovery messages it carries
//! (RFC 4861): a view over the message, the NDP target address, and the
//! NDP options as an iterator that refuses a zero-length option (which
//! RFC 4861 says to discard the packet for) instead of looping on it.

use std::net::Ipv6Addr;

use super::checksum;
use super::ipv6::next_header;
use super::{MacAddr, WireError};

pub const HEADER_LEN: usize = 4;

/// Message types.
pub mod kind {
    pub const DST_UNREACHABLE: u8 = 1;
    pub const PACKET_TOO_BIG: u8 = 2;
    pub const TIME_EXCEEDED: u8 = 3;
    pub const PARAM_PROBLEM: u8 = 4;
    pub const ECHO_REQUEST: u8 = 128;
    pub const ECHO_REPLY: u8 = 129;
    pub const MLD_QUERY: u8 = 130;
    pub const MLD_REPORT: u8 = 131;
    pub const MLD_DONE: u8 = 132;
    pub const MLD2_REPORT: u8 = 143;
    pub const ROUTER_SOLICIT: u8 = 133;
    pub const ROUTER_ADVERT: u8 = 134;
    pub const NEIGHBOR_SOLICIT: u8 = 135;
    pub const NEIGHBOR_ADVERT: u8 = 136;
    pub const REDIRECT: u8 = 137;
}

/// NDP option types.
pub mod option {
    pub const SOURCE_LL_ADDR: u8 = 1;
    pub const TARGET_LL_ADDR: u8 = 2;
    pub const PREFIX_INFO: u8 = 3;
    pub const REDIRECTED_HEADER: u8 = 4;
    pub const MTU: u8 = 5;
    pub const RDNSS: u8 = 25;
}

/// Byte ranges of the header, and of the NDP bodies that follow it.
pub mod field {
    use std::ops::Range;

    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Neighbor Solicitation / Advertisement and Redirect: the target.
    pub const TARGET: Range<usize> = 8..24;
}

/// Where a message's NDP options start, by type (RFC 4861 section 4);
/// `None` for a message that has none.
pub fn ndp_options_offset(msg_type: u8) -> Option<usize> {
    match msg_type {
        kind::ROUTER_SOLICIT => Some(8),
        kind::ROUTER_ADVERT => Some(16),
        kind::NEIGHBOR_SOLICIT | kind::NEIGHBOR_ADVERT => Some(24),
        kind::REDIRECT => Some(40),
        _ => None,
    }
}

/// A zero-copy view of an ICMPv6 message (header and body).
#[derive(Debug, Clone, Copy)]
pub struct Icmpv6Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv6Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv6Packet { buf })
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buf.as_ref()[field::TYPE]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buf.as_ref()[field::CODE]
    }

    pub fn checksum(&self) -> u16 {
        let b = &self.buf.as_ref()[field::CHECKSUM];
        u16::from_be_bytes([b[0], b[1]])
    }

    /// The whole message.
    pub fn message(&self) -> &[u8] {
        self.buf.as_ref()
    }

    /// Whether the checksum over the IPv6 pseudo-header and the message is
    /// right.
    pub fn verify_checksum(&self, src: Ipv6Addr, dst: Ipv6Addr) -> bool {
        let m = self.buf.as_ref();
        let acc = checksum::pseudo_header_v6(src, dst, next_header::ICMPV6, m.len() as u32);
        checksum::finish(checksum::sum(acc, m)) == 0
    }

    /// The target address of a Neighbor Solicitation, Advertisement or
    /// Redirect; `None` for another type or a message too short for one.
    pub fn target(&self) -> Option<Ipv6Addr> {
        match self.msg_type() {
            kind::NEIGHBOR_SOLICIT | kind::NEIGHBOR_ADVERT | kind::REDIRECT => {
                let t = self.buf.as_ref().get(field::TARGET)?;
                let mut a = [0u8; 16];
                a.copy_from_slice(t);
                Some(Ipv6Addr::from(a))
            }
            _ => None,
        }
    }

    /// The NDP options of an NDP message; `None` for another type, and
    /// `Truncated` for an NDP message shorter than its fixed part.
    pub fn ndp_options(&self) -> Option<Result<NdpOptions<'_>, WireError>> {
        let off = ndp_options_offset(self.msg_type())?;
        Some(match self.buf.as_ref().get(off..) {
            Some(rest) => Ok(NdpOptions { rest }),
            None => Err(WireError::Truncated),
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv6Packet<T> {
    /// Computes and writes the checksum of the message for `src` → `dst`.
    pub fn fill_checksum(&mut self, src: Ipv6Addr, dst: Ipv6Addr) {
        let m = self.buf.as_mut();
        m[field::CHECKSUM].copy_from_slice(&[0, 0]);
        let acc = checksum::pseudo_header_v6(src, dst, next_header::ICMPV6, m.len() as u32);
        let c = checksum::finish(checksum::sum(acc, m));
        m[field::CHECKSUM].copy_from_slice(&c.to_be_bytes());
    }
}

/// Flags of a Neighbor Advertisement (RFC 4861 4.4), in its first word.
pub mod na_flags {
    pub const ROUTER: u32 = 1 << 31;
    pub const SOLICITED: u32 = 1 << 30;
    pub const OVERRIDE: u32 = 1 << 29;
}

/// Codes of Destination Unreachable (RFC 4443 3.1).
pub mod unreachable {
    pub const NO_ROUTE: u8 = 0;
    pub const ADMIN_PROHIBITED: u8 = 1;
    pub const ADDRESS: u8 = 3;
    pub const PORT: u8 = 4;
}

/// The most of an offending packet an error quotes: what fits in the
/// minimum IPv6 MTU with the IPv6 and ICMPv6 headers (RFC 4443 2.4 (c)).
pub const MAX_ERROR_QUOTE: usize = 1280 - 40 - 8;

/// Writes an echo reply carrying `body` (identifier, sequence, data) into
/// `buf`; the checksum is left 0 for [`Icmpv6Packet::fill_checksum`].
pub fn emit_echo_reply(buf: &mut [u8], body: &[u8]) -> usize {
    buf[..HEADER_LEN].copy_from_slice(&[kind::ECHO_REPLY, 0, 0, 0]);
    buf[HEADER_LEN..HEADER_LEN + body.len()].copy_from_slice(body);
    HEADER_LEN + body.len()
}

/// Writes an error message (`msg_type`, `code`, the 32-bit field after the
/// checksum: the MTU or a pointer, else 0) quoting `quote`; checksum 0.
pub fn emit_error(buf: &mut [u8], msg_type: u8, code: u8, param: u32, quote: &[u8]) -> usize {
    buf[..HEADER_LEN].copy_from_slice(&[msg_type, code, 0, 0]);
    buf[4..8].copy_from_slice(&param.to_be_bytes());
    buf[8..8 + quote.len()].copy_from_slice(quote);
    8 + quote.len()
}

/// Writes a Neighbor Advertisement for `target` with `flags` and a Target
/// Link-Layer Address option naming `mac`; checksum 0.
pub fn emit_neighbor_advert(buf: &mut [u8], flags: u32, target: Ipv6Addr, mac: MacAddr) -> usize {
    buf[..4].copy_from_slice(&[kind::NEIGHBOR_ADVERT, 0, 0, 0]);
    buf[4..8].copy_from_slice(&flags.to_be_bytes());
    buf[field::TARGET].copy_from_slice(&target.octets());
    buf[24..26].copy_from_slice(&[option::TARGET_LL_ADDR, 1]);
    buf[26..32].copy_from_slice(&mac.0);
    32
}

/// A Router Advertisement (RFC 4861 4.2) with the options a host needs to
/// configure itself: the router's link-layer address, the link MTU, the
/// on-link prefix (autonomous for SLAAC when it is a /64), and the DNS
/// server (RFC 8106 RDNSS).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterAdvertRepr {
    pub hop_limit: u8,
    pub router_lifetime: u16,
    pub mac: MacAddr,
    pub mtu: u32,
    pub prefix: Ipv6Addr,
    pub prefix_len: u8,
    pub valid_lifetime: u32,
    pub preferred_lifetime: u32,
    pub dns: Option<(Ipv6Addr, u32)>,
}

impl RouterAdvertRepr {
    /// Its length on the wire.
    pub fn wire_len(&self) -> usize {
        16 + 8 + 8 + 32 + if self.dns.is_some() { 24 } else { 0 }
    }

    /// Writes it into `buf` (at least [`RouterAdvertRepr::wire_len`] bytes);
    /// checksum 0.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let b = &mut buf[..self.wire_len()];
        b.fill(0);
        b[0] = kind::ROUTER_ADVERT;
        b[4] = self.hop_limit;
        // Flags (M, O) 0: addresses by SLAAC, no DHCPv6.
        b[6..8].copy_from_slice(&self.router_lifetime.to_be_bytes());
        // Reachable time and retransmission timer: unspecified (0).
        b[16..18].copy_from_slice(&[option::SOURCE_LL_ADDR, 1]);
        b[18..24].copy_from_slice(&self.mac.0);
        b[24..26].copy_from_slice(&[option::MTU, 1]);
        b[28..32].copy_from_slice(&self.mtu.to_be_bytes());
        b[32..34].copy_from_slice(&[option::PREFIX_INFO, 4]);
        b[34] = self.prefix_len;
        // L (on-link), and A (autonomous) where SLAAC can use it.
        b[35] = 0x80 | if self.prefix_len == 64 { 0x40 } else { 0 };
        b[36..40].copy_from_slice(&self.valid_lifetime.to_be_bytes());
        b[40..44].copy_from_slice(&self.preferred_lifetime.to_be_bytes());
        b[48..64].copy_from_slice(&self.prefix.octets());
        if let Some((dns, lifetime)) = self.dns {
            b[64..66].copy_from_slice(&[option::RDNSS, 3]);
            b[68..72].copy_from_slice(&lifetime.to_be_bytes());
            b[72..88].copy_from_slice(&dns.octets());
        }
        self.wire_len()
    }
}

/// One NDP option: its type and its bytes (type and length included).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NdpOption<'a> {
    pub kind: u8,
    pub bytes: &'a [u8],
}

impl NdpOption<'_> {
    /// The link-layer address of a Source/Target Link-Layer Address option
    /// on Ethernet (8 bytes: type, length 1, the MAC).
    pub fn link_layer_addr(&self) -> Option<MacAddr> {
        match self.kind {
            option::SOURCE_LL_ADDR | option::TARGET_LL_ADDR => {
                self.bytes.get(2..8).map(MacAddr::from_slice)
            }
            _ => None,
        }
    }
}

/// The options of an NDP message, in order. Yields `Err` once, and then
/// nothing, for an option of length 0 or one that runs past the message.
#[derive(Debug, Clone)]
pub struct NdpOptions<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for NdpOptions<'a> {
    type Item = Result<NdpOption<'a>, WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (kind, units) = match self.rest {
            [k, l, ..] => (*k, *l as usize),
            _ => {
                self.rest = &[];
                return Some(Err(WireError::Truncated));
            }
        };
        let len = units * 8;
        if len == 0 || len > self.rest.len() {
            self.rest = &[];
            return Some(Err(if len == 0 {
                WireError::Malformed
            } else {
                WireError::Truncated
            }));
        }
        let (bytes, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(Ok(NdpOption { kind, bytes }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0x42, 0xac, 0x11, 0, 2]);
    const SRC: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x42, 0xacff, 0xfe11, 2);
    const DST: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 1, 0xff11, 3);

    /// A Neighbor Solicitation for `target` with the options given.
    fn ns(target: Ipv6Addr, opts: &[u8]) -> Vec<u8> {
        let mut m = vec![0u8; 24];
        m[0] = kind::NEIGHBOR_SOLICIT;
        m[8..24].copy_from_slice(&target.octets());
        m.extend_from_slice(opts);
        m
    }

    fn sllao(mac: MacAddr) -> [u8; 8] {
        let mut o = [option::SOURCE_LL_ADDR, 1, 0, 0, 0, 0, 0, 0];
        o[2..].copy_from_slice(&mac.0);
        o
    }

    #[test]
    fn neighbor_solicitation_target_and_options() {
        let target: Ipv6Addr = "fd00::3".parse().unwrap();
        let mut opts = sllao(MAC).to_vec();
        opts.extend_from_slice(&[option::MTU, 1, 0, 0, 0, 0, 5, 0xdc]);
        let m = ns(target, &opts);
        let p = Icmpv6Packet::new_checked(&m[..]).unwrap();
        assert_eq!(p.msg_type(), kind::NEIGHBOR_SOLICIT);
        assert_eq!(p.target(), Some(target));
        let o: Vec<_> = p.ndp_options().unwrap().unwrap().collect();
        assert_eq!(o.len(), 2);
        let first = o[0].unwrap();
        assert_eq!(first.kind, option::SOURCE_LL_ADDR);
        assert_eq!(first.link_layer_addr(), Some(MAC));
        assert_eq!(o[1].unwrap().kind, option::MTU);
        assert_eq!(o[1].unwrap().link_layer_addr(), None);
    }

    #[test]
    fn bad_options_end_the_walk_with_an_error() {
        let t: Ipv6Addr = "fd00::3".parse().unwrap();
        for (opts, e) in [
            (
                &[option::SOURCE_LL_ADDR, 0, 1, 2, 3, 4, 5, 6][..],
                WireError::Malformed,
            ),
            (
                &[option::SOURCE_LL_ADDR, 2, 1, 2, 3, 4, 5, 6][..],
                WireError::Truncated,
            ),
            (&[option::SOURCE_LL_ADDR][..], WireError::Truncated),
        ] {
            let m = ns(t, opts);
            let p = Icmpv6Packet::new_checked(&m[..]).unwrap();
            let o: Vec<_> = p.ndp_options().unwrap().unwrap().collect();
            assert_eq!(o, [Err(e)], "{opts:?}");
        }
        // Shorter than an NS's fixed part.
        let m = &ns(t, &[])[..20];
        let p = Icmpv6Packet::new_checked(m).unwrap();
        assert_eq!(p.target(), None);
        assert!(p.ndp_options().unwrap().is_err());
        // Not NDP.
        let p = Icmpv6Packet::new_checked(&[kind::ECHO_REQUEST, 0, 0, 0][..]).unwrap();
        assert!(p.ndp_options().is_none());
        assert_eq!(p.target(), None);
        assert!(Icmpv6Packet::new_checked(&[0u8; 3][..]).is_err());
    }

    #[test]
    fn checksum_round_trip() {
        let mut m = ns("fd00::3".parse().unwrap(), &sllao(MAC));
        let mut p = Icmpv6Packet::new_checked(&mut m[..]).unwrap();
        p.fill_checksum(SRC, DST);
        assert!(p.verify_checksum(SRC, DST));
        // Another destination changes the pseudo-header's sum.
        assert!(!p.verify_checksum(SRC, "ff02::1".parse().unwrap()));
        m[30] ^= 1;
        assert!(!Icmpv6Packet::new_checked(&m[..])
            .unwrap()
            .verify_checksum(SRC, DST));
    }

    #[test]
    fn built_messages_parse_back() {
        let mut b = [0u8; 128];
        let t: Ipv6Addr = "fd00::1".parse().unwrap();
        let n = emit_neighbor_advert(&mut b, na_flags::ROUTER | na_flags::SOLICITED, t, MAC);
        let p = Icmpv6Packet::new_checked(&b[..n]).unwrap();
        assert_eq!(p.msg_type(), kind::NEIGHBOR_ADVERT);
        assert_eq!(p.target(), Some(t));
        assert_eq!(b[4], 0xc0);
        let o: Vec<_> = p.ndp_options().unwrap().unwrap().collect();
        assert_eq!(o.len(), 1);
        assert_eq!(o[0].unwrap().link_layer_addr(), Some(MAC));

        let ra = RouterAdvertRepr {
            hop_limit: 64,
            router_lifetime: 1800,
            mac: MAC,
            mtu: 1500,
            prefix: "fd00:172:17::".parse().unwrap(),
            prefix_len: 64,
            valid_lifetime: 86400,
            preferred_lifetime: 14400,
            dns: Some((t, 1800)),
        };
        let n = ra.emit(&mut b);
        assert_eq!(n, 88);
        let p = Icmpv6Packet::new_checked(&b[..n]).unwrap();
        let kinds: Vec<u8> = p
            .ndp_options()
            .unwrap()
            .unwrap()
            .map(|o| o.unwrap().kind)
            .collect();
        assert_eq!(
            kinds,
            [
                option::SOURCE_LL_ADDR,
                option::MTU,
                option::PREFIX_INFO,
                option::RDNSS
            ]
        );
        assert_eq!(b[35], 0xc0, "on-link and autonomous for a /64");
        let n = RouterAdvertRepr {
            prefix_len: 80,
            dns: None,
            ..ra
        }
        .emit(&mut b);
        assert_eq!((n, b[35]), (64, 0x80), "no SLAAC on a /80");
    }

    #[test]
    fn options_offsets_by_type() {
        assert_eq!(ndp_options_offset(kind::ROUTER_SOLICIT), Some(8));
        assert_eq!(ndp_options_offset(kind::ROUTER_ADVERT), Some(16));
        assert_eq!(ndp_options_offset(kind::NEIGHBOR_ADVERT), Some(24));
        assert_eq!(ndp_options_offset(kind::REDIRECT), Some(40));
        assert_eq!(ndp_options_offset(kind::ECHO_REPLY), None);
    }
}
