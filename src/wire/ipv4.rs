//! IPv4 headers (RFC 791).

use std::net::Ipv4Addr;

use super::checksum;
use super::WireError;

pub const MIN_HEADER_LEN: usize = 20;

pub mod protocol {
    pub const ICMP: u8 = 1;
    pub const TCP: u8 = 6;
    pub const UDP: u8 = 17;
}

/// Where the fixed header's fields are.
pub mod field {
    use std::ops::Range;
    pub const VER_IHL: usize = 0;
    pub const PROTOCOL: usize = 9;
    pub const SRC: Range<usize> = 12..16;
    pub const DST: Range<usize> = 16..20;
}

/// What port security needs of an IPv4 header, read leniently: only the
/// bytes up to the source address must be there (the bridge forwards
/// malformed packets between containers as it finds them; only their
/// source is policed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peek {
    pub src: Ipv4Addr,
    pub protocol: u8,
    /// As the IHL field says (not checked against the buffer).
    pub header_len: usize,
}

/// Reads [`Peek`] from the start of `b`; `None` if it is shorter than
/// that.
pub fn peek(b: &[u8]) -> Option<Peek> {
    let h = b.get(..field::SRC.end)?;
    let s = &h[field::SRC];
    Some(Peek {
        src: Ipv4Addr::new(s[0], s[1], s[2], s[3]),
        protocol: h[field::PROTOCOL],
        header_len: ((h[field::VER_IHL] & 0x0f) as usize) * 4,
    })
}

/// A zero-copy view of an IPv4 packet. `new_checked` guarantees that the
/// header and the `total_length` it declares fit in the buffer, so every
/// accessor below is in bounds. Trailing bytes beyond `total_length`
/// (Ethernet padding) are ignored by [`Ipv4Packet::payload`].
#[derive(Debug, Clone, Copy)]
pub struct Ipv4Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if b[0] >> 4 != 4 {
            return Err(WireError::Malformed);
        }
        let ihl = ((b[0] & 0x0f) as usize) * 4;
        let total = u16::from_be_bytes([b[2], b[3]]) as usize;
        if ihl < MIN_HEADER_LEN || total < ihl {
            return Err(WireError::Malformed);
        }
        if total > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(Ipv4Packet { buf })
    }

    /// Like [`Ipv4Packet::new_checked`], but accepts a `total_length` of zero
    /// or one smaller than the buffer, as a GSO super-frame from a TAP may
    /// carry (its length field describes one segment, or nothing).
    pub fn new_checked_gso(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let ihl = ((b[0] & 0x0f) as usize) * 4;
        if b[0] >> 4 != 4 || ihl < MIN_HEADER_LEN || ihl > b.len() {
            return Err(WireError::Malformed);
        }
        Ok(Ipv4Packet { buf })
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buf.as_ref()[0] & 0x0f) as usize) * 4
    }

    #[inline]
    pub fn dscp_ecn(&self) -> u8 {
        self.buf.as_ref()[1]
    }

    #[inline]
    pub fn total_len(&self) -> usize {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[2], b[3]]) as usize
    }

    #[inline]
    pub fn ident(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    /// More-fragments flag set, or a non-zero fragment offset.
    #[inline]
    pub fn is_fragment(&self) -> bool {
        let b = self.buf.as_ref();
        let f = u16::from_be_bytes([b[6], b[7]]);
        f & 0x3fff != 0
    }

    /// A fragment other than the first (non-zero offset).
    #[inline]
    pub fn is_later_fragment(&self) -> bool {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[6], b[7]]) & 0x1fff != 0
    }

    #[inline]
    pub fn ttl(&self) -> u8 {
        self.buf.as_ref()[8]
    }

    #[inline]
    pub fn protocol(&self) -> u8 {
        self.buf.as_ref()[9]
    }

    #[inline]
    pub fn checksum_field(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[10], b[11]])
    }

    #[inline]
    pub fn src(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[12], b[13], b[14], b[15])
    }

    #[inline]
    pub fn dst(&self) -> Ipv4Addr {
        let b = self.buf.as_ref();
        Ipv4Addr::new(b[16], b[17], b[18], b[19])
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.header())
    }

    /// The header including options.
    pub fn header(&self) -> &[u8] {
        let b = self.buf.as_ref();
        &b[..self.header_len().min(b.len())]
    }

    /// The payload as declared by `total_length`, clamped to the buffer
    /// (a GSO view does not guarantee the length field).
    #[inline]
    pub fn payload(&self) -> &[u8] {
        let b = self.buf.as_ref();
        let hl = self.header_len().min(b.len());
        &b[hl..self.total_len().clamp(hl, b.len())]
    }
}

impl<'a> Ipv4Packet<&'a [u8]> {
    /// [`Ipv4Packet::payload`], borrowed for as long as the packet is (not
    /// the view).
    pub fn into_payload(self) -> &'a [u8] {
        let hl = self.header_len().min(self.buf.len());
        let end = self.total_len().clamp(hl, self.buf.len());
        &self.buf[hl..end]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    pub fn set_total_len(&mut self, len: u16) {
        self.buf.as_mut()[2..4].copy_from_slice(&len.to_be_bytes());
    }

    pub fn set_ident(&mut self, id: u16) {
        self.buf.as_mut()[4..6].copy_from_slice(&id.to_be_bytes());
    }

    pub fn fill_checksum(&mut self) {
        let b = self.buf.as_mut();
        let hl = (((b[0] & 0x0f) as usize) * 4).min(b.len());
        b[10..12].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&b[..hl]);
        b[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// The fields of an option-less IPv4 header, for building one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4Repr {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub protocol: u8,
    pub payload_len: usize,
    pub ttl: u8,
    pub ident: u16,
}

impl Ipv4Repr {
    /// Writes a 20-byte header with its checksum; returns the header length.
    /// `buf` must hold at least [`MIN_HEADER_LEN`] bytes.
    pub fn emit(&self, buf: &mut [u8]) -> usize {
        let total = (MIN_HEADER_LEN + self.payload_len) as u16;
        buf[0] = 0x45;
        buf[1] = 0;
        buf[2..4].copy_from_slice(&total.to_be_bytes());
        buf[4..6].copy_from_slice(&self.ident.to_be_bytes());
        buf[6..8].copy_from_slice(&0x4000u16.to_be_bytes()); // DF
        buf[8] = self.ttl;
        buf[9] = self.protocol;
        buf[10..12].copy_from_slice(&[0, 0]);
        buf[12..16].copy_from_slice(&self.src.octets());
        buf[16..20].copy_from_slice(&self.dst.octets());
        let c = checksum::checksum(&buf[..MIN_HEADER_LEN]);
        buf[10..12].copy_from_slice(&c.to_be_bytes());
        MIN_HEADER_LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> [u8; 28] {
        let mut b = [0u8; 28];
        Ipv4Repr {
            src: Ipv4Addr::new(172, 17, 0, 2),
            dst: Ipv4Addr::new(172, 17, 0, 1),
            protocol: protocol::ICMP,
            payload_len: 8,
            ttl: 64,
            ident: 7,
        }
        .emit(&mut b);
        b
    }

    #[test]
    fn emit_then_parse() {
        let b = sample();
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert!(p.verify_checksum());
        assert_eq!(p.src(), Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(p.dst(), Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(p.protocol(), protocol::ICMP);
        assert_eq!(p.payload().len(), 8);
        assert!(!p.is_fragment());
        // Cross-check with an independent parser.
        let e = etherparse::Ipv4HeaderSlice::from_slice(&b).unwrap();
        assert_eq!(e.header_checksum(), p.checksum_field());
        assert_eq!(e.to_header().calc_header_checksum(), p.checksum_field());
    }

    #[test]
    fn rejects_bad_lengths() {
        let mut b = sample();
        assert_eq!(
            Ipv4Packet::new_checked(&b[..19]).unwrap_err(),
            WireError::Truncated
        );
        b[0] = 0x44; // ihl 16 < 20
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
        let mut b = sample();
        b[2..4].copy_from_slice(&100u16.to_be_bytes()); // longer than buffer
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
        let mut b = sample();
        b[0] = 0x65;
        assert_eq!(
            Ipv4Packet::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
    }

    #[test]
    fn gso_view_accessors_stay_in_bounds() {
        let mut b = sample();
        b[2..4].copy_from_slice(&60000u16.to_be_bytes());
        let p = Ipv4Packet::new_checked_gso(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 8);
        b[2..4].copy_from_slice(&3u16.to_be_bytes());
        let p = Ipv4Packet::new_checked_gso(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 0);
    }

    #[test]
    fn padding_is_not_payload() {
        let mut b = [0u8; 60];
        b[..28].copy_from_slice(&sample());
        let p = Ipv4Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.payload().len(), 8);
    }
}
