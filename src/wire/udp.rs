//! UDP headers (RFC 768).

use super::WireError;

pub const HEADER_LEN: usize = 8;

/// A zero-copy view of a UDP datagram; `new_checked` guarantees the header
/// and the length it declares fit in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct UdpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len = u16::from_be_bytes([b[4], b[5]]) as usize;
        if len < HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if len > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(UdpPacket { buf })
    }

    #[inline]
    pub fn src_port(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[0], b[1]])
    }

    #[inline]
    pub fn dst_port(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[2], b[3]])
    }

    #[inline]
    pub fn len(&self) -> usize {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[4], b[5]]) as usize
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == HEADER_LEN
    }

    pub fn payload(&self) -> &[u8] {
        &self.buf.as_ref()[HEADER_LEN..self.len()]
    }
}

impl<'a> UdpPacket<&'a [u8]> {
    /// The payload, borrowed for as long as the datagram is (not the view).
    pub fn into_payload(self) -> &'a [u8] {
        let len = self.len();
        &self.buf[HEADER_LEN..len]
    }
}

/// The ports of a UDP header at the start of `b` (source, destination),
/// read leniently: only they must be there.
pub fn peek_ports(b: &[u8]) -> Option<(u16, u16)> {
    let p = b.get(..4)?;
    Some((
        u16::from_be_bytes([p[0], p[1]]),
        u16::from_be_bytes([p[2], p[3]]),
    ))
}

/// Writes a UDP header (8 bytes) into `buf`: ports, the length of header
/// and payload, and the checksum field as given.
pub fn emit_header(buf: &mut [u8], src_port: u16, dst_port: u16, len: u16, checksum: u16) {
    buf[0..2].copy_from_slice(&src_port.to_be_bytes());
    buf[2..4].copy_from_slice(&dst_port.to_be_bytes());
    buf[4..6].copy_from_slice(&len.to_be_bytes());
    buf[6..8].copy_from_slice(&checksum.to_be_bytes());
}

/// Offset of the checksum field inside the UDP header.
pub const CHECKSUM_OFFSET: usize = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_bounds() {
        let mut b = [0u8; 12];
        b[0..2].copy_from_slice(&53u16.to_be_bytes());
        b[2..4].copy_from_slice(&4000u16.to_be_bytes());
        b[4..6].copy_from_slice(&10u16.to_be_bytes());
        let u = UdpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(
            (u.src_port(), u.dst_port(), u.payload().len()),
            (53, 4000, 2)
        );
        b[4..6].copy_from_slice(&13u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
        b[4..6].copy_from_slice(&7u16.to_be_bytes());
        assert_eq!(
            UdpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
    }
}
