//! ICMPv4 (RFC 792): echo, and the error messages the gateway originates.

use super::checksum;
use super::WireError;

pub const HEADER_LEN: usize = 8;

pub mod msg_type {
    pub const ECHO_REPLY: u8 = 0;
    pub const DEST_UNREACHABLE: u8 = 3;
    pub const ECHO_REQUEST: u8 = 8;
    pub const TIME_EXCEEDED: u8 = 11;
}

pub mod unreachable {
    pub const NET: u8 = 0;
    pub const HOST: u8 = 1;
    pub const PROTOCOL: u8 = 2;
    pub const PORT: u8 = 3;
    pub const ADMIN_PROHIBITED: u8 = 13;
}

/// A zero-copy view of an ICMPv4 message.
#[derive(Debug, Clone, Copy)]
pub struct Icmpv4Packet<T> {
    buf: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    pub fn new_checked(buf: T) -> Result<Self, WireError> {
        if buf.as_ref().len() < HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(Icmpv4Packet { buf })
    }

    #[inline]
    pub fn msg_type(&self) -> u8 {
        self.buf.as_ref()[0]
    }

    #[inline]
    pub fn code(&self) -> u8 {
        self.buf.as_ref()[1]
    }

    /// True for the messages an ICMP error must never answer (RFC 1122
    /// 3.2.2): errors themselves, and anything we do not recognise as a query.
    pub fn is_error(&self) -> bool {
        !matches!(
            self.msg_type(),
            msg_type::ECHO_REQUEST | msg_type::ECHO_REPLY | 13 | 14 | 15 | 16 | 17 | 18
        )
    }

    pub fn verify_checksum(&self) -> bool {
        checksum::verify(self.buf.as_ref())
    }

    /// Identifier, sequence number and data of an echo message.
    pub fn echo_body(&self) -> &[u8] {
        &self.buf.as_ref()[4..]
    }

    /// The identifier of an echo message.
    pub fn echo_ident(&self) -> u16 {
        let b = self.buf.as_ref();
        u16::from_be_bytes([b[4], b[5]])
    }

    /// The first 8 bytes, as an ICMP error quotes the message it is about.
    pub fn quote(&self) -> [u8; 8] {
        let mut q = [0u8; 8];
        q.copy_from_slice(&self.buf.as_ref()[..HEADER_LEN]);
        q
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets an echo message's identifier.
    pub fn set_echo_ident(&mut self, ident: u16) {
        self.buf.as_mut()[4..6].copy_from_slice(&ident.to_be_bytes());
    }

    /// Computes and sets the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        let b = self.buf.as_mut();
        b[2..4].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(b);
        b[2..4].copy_from_slice(&c.to_be_bytes());
    }
}

/// Writes an echo reply for the echo request body `body` (identifier,
/// sequence and data, as from [`Icmpv4Packet::echo_body`]) into `buf`;
/// returns its length. `buf` must hold `HEADER_LEN - 4 + body.len()` bytes.
pub fn emit_echo_reply(buf: &mut [u8], body: &[u8]) -> usize {
    let len = 4 + body.len();
    buf[0] = msg_type::ECHO_REPLY;
    buf[1] = 0;
    buf[2..4].copy_from_slice(&[0, 0]);
    buf[4..len].copy_from_slice(body);
    let c = checksum::checksum(&buf[..len]);
    buf[2..4].copy_from_slice(&c.to_be_bytes());
    len
}

/// The number of bytes of the offending datagram quoted in an ICMP error:
/// the IP header plus 8 bytes as RFC 792 requires, and no more, so an error
/// is never larger than the packet that caused it by more than 28 bytes.
pub fn error_quote_len(ip_header_len: usize, available: usize) -> usize {
    (ip_header_len + 8).min(available)
}

/// Writes an ICMP error (`msg_type`/`code`) quoting `original` into `buf`;
/// returns its length. `buf` must hold `HEADER_LEN + original.len()` bytes.
pub fn emit_error(buf: &mut [u8], msg_type: u8, code: u8, original: &[u8]) -> usize {
    let len = HEADER_LEN + original.len();
    buf[0] = msg_type;
    buf[1] = code;
    buf[2..8].copy_from_slice(&[0; 6]);
    buf[HEADER_LEN..len].copy_from_slice(original);
    let c = checksum::checksum(&buf[..len]);
    buf[2..4].copy_from_slice(&c.to_be_bytes());
    len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn echo_reply_has_valid_checksum_and_same_body() {
        let body = [0x12, 0x34, 0x00, 0x01, b'h', b'i', b'!'];
        let mut buf = [0u8; 64];
        let n = emit_echo_reply(&mut buf, &body);
        let p = Icmpv4Packet::new_checked(&buf[..n]).unwrap();
        assert_eq!(p.msg_type(), msg_type::ECHO_REPLY);
        assert!(p.verify_checksum());
        assert_eq!(p.echo_body(), &body);
        assert!(!p.is_error());
    }

    #[test]
    fn error_message_quotes_original() {
        let orig = [0x45u8; 28];
        let mut buf = [0u8; 64];
        let n = emit_error(
            &mut buf,
            msg_type::DEST_UNREACHABLE,
            unreachable::PORT,
            &orig,
        );
        let p = Icmpv4Packet::new_checked(&buf[..n]).unwrap();
        assert!(p.is_error());
        assert!(p.verify_checksum());
        assert_eq!(&buf[8..n], &orig);
        assert_eq!(error_quote_len(20, 1000), 28);
        assert_eq!(error_quote_len(20, 22), 22);
    }
}
