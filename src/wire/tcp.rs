//! TCP headers (RFC 9293): enough to segment a GSO super-frame, answer with
//! a reset, and (later) translate a flow.

use super::WireError;

pub const MIN_HEADER_LEN: usize = 20;

pub mod flags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ECE: u8 = 0x40;
    pub const CWR: u8 = 0x80;
}

/// Offset of the checksum field inside the TCP header.
pub const CHECKSUM_OFFSET: usize = 16;

/// A zero-copy view of a TCP segment; `new_checked` guarantees the header,
/// options included, is in the buffer.
#[derive(Debug, Clone, Copy)]
pub struct TcpPacket<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        let b = buf.as_ref();
        if b.len() < MIN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let hl = ((b[12] >> 4) as usize) * 4;
        if hl < MIN_HEADER_LEN {
            return Err(WireError::Malformed);
        }
        if hl > b.len() {
            return Err(WireError::Truncated);
        }
        Ok(TcpPacket { buf })
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

    /// The window field, unscaled.
    #[inline]
    pub fn window(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[14], b[15]])
    }

    /// The options: everything between the fixed header and the data.
    #[inline]
    pub fn options(&self) -> &[u8] {
        &self.buf.as_ref()[MIN_HEADER_LEN..self.header_len()]
    }

    #[inline]
    pub fn seq(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[4], b[5], b[6], b[7]])
    }

    #[inline]
    pub fn ack(&self) -> u32 {
        let b = self.buf.as_ref();
        u32::from_be_bytes([b[8], b[9], b[10], b[11]])
    }

    #[inline]
    pub fn header_len(&self) -> usize {
        ((self.buf.as_ref()[12] >> 4) as usize) * 4
    }

    #[inline]
    pub fn flags(&self) -> u8 {
        self.buf.as_ref()[13]
    }

    /// Sequence space the segment occupies: its data plus one for SYN and FIN.
    pub fn seq_len(&self) -> u32 {
        let f = self.flags();
        let data = (self.buf.as_ref().len() - self.header_len()) as u32;
        data + u32::from(f & flags::SYN != 0) + u32::from(f & flags::FIN != 0)
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    pub fn set_seq(&mut self, seq: u32) {
        self.buf.as_mut()[4..8].copy_from_slice(&seq.to_be_bytes());
    }

    pub fn set_flags(&mut self, f: u8) {
        self.buf.as_mut()[13] = f;
    }

    pub fn set_checksum(&mut self, c: u16) {
        self.buf.as_mut()[16..18].copy_from_slice(&c.to_be_bytes());
    }
}

/// Writes a bare 20-byte TCP header (no options, zero checksum, zero urgent
/// pointer); the caller fills the checksum over its pseudo-header.
pub fn emit_header(
    buf: &mut [u8],
    src_port: u16,
    dst_port: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
) -> usize {
    buf[0..2].copy_from_slice(&src_port.to_be_bytes());
    buf[2..4].copy_from_slice(&dst_port.to_be_bytes());
    buf[4..8].copy_from_slice(&seq.to_be_bytes());
    buf[8..12].copy_from_slice(&ack.to_be_bytes());
    buf[12] = 5 << 4;
    buf[13] = flags;
    buf[14..16].copy_from_slice(&window.to_be_bytes());
    buf[16..20].copy_from_slice(&[0; 4]);
    MIN_HEADER_LEN
}

/// Writes the options of a SYN we send: MSS, and window scale when given
/// (a NOP first, so the header stays a multiple of 4 bytes); returns their
/// length (4 or 8).
pub fn emit_syn_options(buf: &mut [u8], mss: u16, wscale: Option<u8>) -> usize {
    buf[0..4].copy_from_slice(&[2, 4, (mss >> 8) as u8, mss as u8]);
    match wscale {
        Some(w) => {
            buf[4..8].copy_from_slice(&[1, 3, 3, w]);
            8
        }
        None => 4,
    }
}

/// Sets the data offset of a header written by [`emit_header`] whose
/// options (already written after the fixed 20 bytes) make it `len` long.
pub fn set_header_len(buf: &mut [u8], len: usize) {
    buf[12] = ((len / 4) as u8) << 4;
}

/// The first 8 bytes of a TCP header (ports and sequence number), as an
/// ICMP error quotes the packet it is about.
pub fn quote(src_port: u16, dst_port: u16, seq: u32) -> [u8; 8] {
    let mut q = [0u8; 8];
    q[0..2].copy_from_slice(&src_port.to_be_bytes());
    q[2..4].copy_from_slice(&dst_port.to_be_bytes());
    q[4..8].copy_from_slice(&seq.to_be_bytes());
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_fields() {
        let mut b = [0u8; 24];
        emit_header(&mut b, 1234, 80, 1000, 2000, flags::SYN | flags::ACK, 512);
        let t = TcpPacket::new_checked(&b[..]).unwrap();
        assert_eq!(t.src_port(), 1234);
        assert_eq!(t.dst_port(), 80);
        assert_eq!(t.seq(), 1000);
        assert_eq!(t.ack(), 2000);
        assert_eq!(t.header_len(), 20);
        assert_eq!(t.seq_len(), 4 + 1);
    }

    #[test]
    fn rejects_bad_offsets() {
        let mut b = [0u8; 20];
        b[12] = 4 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Malformed
        );
        b[12] = 15 << 4;
        assert_eq!(
            TcpPacket::new_checked(&b[..]).unwrap_err(),
            WireError::Truncated
        );
    }
}
