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
    fn options_offsets_by_type() {
        assert_eq!(ndp_options_offset(kind::ROUTER_SOLICIT), Some(8));
        assert_eq!(ndp_options_offset(kind::ROUTER_ADVERT), Some(16));
        assert_eq!(ndp_options_offset(kind::NEIGHBOR_ADVERT), Some(24));
        assert_eq!(ndp_options_offset(kind::REDIRECT), Some(40));
        assert_eq!(ndp_options_offset(kind::ECHO_REPLY), None);
    }
}
