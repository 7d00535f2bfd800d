//! ARP for IPv4 over Ethernet (RFC 826). Other hardware/protocol pairs are
//! reported as unsupported: nothing on a container network speaks them.

use std::net::Ipv4Addr;

use super::ethernet::MacAddr;
use super::WireError;

pub const PACKET_LEN: usize = 28;

pub const OP_REQUEST: u16 = 1;
pub const OP_REPLY: u16 = 2;

/// A zero-copy view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy)]
pub struct ArpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < PACKET_LEN {
            return Err(WireError::Truncated);
        }
        // htype 1 (Ethernet), ptype 0x0800, hlen 6, plen 4.
        if b[0..2] != [0, 1] || b[2..4] != [0x08, 0x00] || b[4] != 6 || b[5] != 4 {
            return Err(WireError::Unsupported);
        }
        Ok(ArpPacket { buf })
    }

    #[inline]
    pub fn operation(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[6], b[7]])
    }

    #[inline]
    pub fn sender_mac(&self) -> MacAddr {
        MacAddr::from_slice(&self.buf.as_ref()[8..14])
    }

    #[inline]
    pub fn sender_ip(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[14], b[15], b[16], b[17])
    }

    #[inline]
    pub fn target_mac(&self) -> MacAddr {
        MacAddr::from_slice(&self.buf.as_ref()[18..24])
    }

    #[inline]
    pub fn target_ip(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[24], b[25], b[26], b[27])
    }
}

/// The fields of an ARP packet, for building one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArpRepr {
    pub operation: u16,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

impl ArpRepr {
    pub fn parse<T: AsRef<[u8]>>(p: &ArpPacket<T>) -> ArpRepr {
        ArpRepr {
            operation: p.operation(),
            sender_mac: p.sender_mac(),
            sender_ip: p.sender_ip(),
            target_mac: p.target_mac(),
            target_ip: p.target_ip(),
        }
    }

    /// Writes the packet into `buf` (at least [`PACKET_LEN`] bytes); returns its length.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        buf[0..2].copy_from_slice(&1u16.to_be_bytes());
        buf[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        buf[4] = 6;
        buf[5] = 4;
        buf[6..8].copy_from_slice(&self.operation.to_be_bytes());
        buf[8..14].copy_from_slice(&self.sender_mac.0);
        buf[14..18].copy_from_slice(&self.sender_ip.octets());
        buf[18..24].copy_from_slice(&self.target_mac.0);
        buf[24..28].copy_from_slice(&self.target_ip.octets());
        PACKET_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let r = ArpRepr {
            operation: OP_REQUEST,
            sender_mac: MacAddr([2, 0x42, 172, 17, 0, 2]),
            sender_ip: Ipv4Addr::new(172, 17, 0, 2),
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(172, 17, 0, 1),
        };
        let mut buf = [0u8; 28];
        assert_eq!(r.emit(&mut buf), 28);
        let p = ArpPacket::new_checked(&buf[..]).unwrap();
        assert_eq!(ArpRepr::parse(&p), r);
    }

    #[test]
    fn rejects_short_and_foreign() {
        assert_eq!(
            ArpPacket::new_checked(&[0u8; 27][..]).unwrap_err(),
            WireError::Truncated
        );
        let mut buf = [0u8; 28];
        buf[0..6].copy_from_slice(&[0, 6, 8, 0, 6, 4]); // IEEE 802 htype
        assert_eq!(
            ArpPacket::new_checked(&buf[..]).unwrap_err(),
            WireError::Unsupported
        );
    }
}
