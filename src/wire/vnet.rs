//! The virtio-net header (`struct virtio_net_hdr`, virtio 1.x section 5.1.6)
//! that TAP devices with `IFF_VNET_HDR` and AF_PACKET sockets with
//! `PACKET_VNET_HDR` put in front of every frame. It carries the offload
//! state of the frame: a checksum still to be finished (`NEEDS_CSUM`) and,
//! for a GSO super-frame, how to cut it into wire-sized segments.
//!
//! lanyard uses the 10-byte form on every port (TAP's `TUNSETVNETHDRSZ` is
//! set to 10) so the header passes between TAP and AF_PACKET ports unchanged.

use super::WireError;

pub const HDR_LEN: usize = 10;

pub mod flags {
    /// The checksum at `csum_start + csum_offset` holds only the
    /// pseudo-header sum; the rest is still to be added.
    pub const NEEDS_CSUM: u8 = 1;
    /// The checksum was verified by the sender (receive side).
    pub const DATA_VALID: u8 = 2;
}

pub mod gso {
    pub const NONE: u8 = 0;
    pub const TCPV4: u8 = 1;
    pub const UDP: u8 = 3;
    pub const TCPV6: u8 = 4;
    pub const UDP_L4: u8 = 5;
    /// Flag bit: the segments carry ECN (CWR must go on the first only).
    pub const ECN: u8 = 0x80;
}

/// A decoded virtio-net header. Fields are in the host's byte order, as the
/// Linux TUN and AF_PACKET drivers use for legacy (non-`VNET_LE`) headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct VnetHdr {
    pub flags: u8,
    pub gso_type: u8,
    pub hdr_len: u16,
    pub gso_size: u16,
    pub csum_start: u16,
    pub csum_offset: u16,
}

impl VnetHdr {
    pub fn parse(b: &[u8; HDR_LEN]) -> VnetHdr {
        VnetHdr {
            flags: b[0],
            gso_type: b[1],
            hdr_len: u16::from_ne_bytes([b[2], b[3]]),
            gso_size: u16::from_ne_bytes([b[4], b[5]]),
            csum_start: u16::from_ne_bytes([b[6], b[7]]),
            csum_offset: u16::from_ne_bytes([b[8], b[9]]),
        }
    }

    pub fn emit(&self, b: &mut [u8; HDR_LEN]) {
        b[0] = self.flags;
        b[1] = self.gso_type;
        b[2..4].copy_from_slice(&self.hdr_len.to_ne_bytes());
        b[4..6].copy_from_slice(&self.gso_size.to_ne_bytes());
        b[6..8].copy_from_slice(&self.csum_start.to_ne_bytes());
        b[8..10].copy_from_slice(&self.csum_offset.to_ne_bytes());
    }

    #[inline]
    pub fn needs_csum(&self) -> bool {
        self.flags & flags::NEEDS_CSUM != 0
    }

    /// The GSO kind without the ECN bit.
    #[inline]
    pub fn gso_kind(&self) -> u8 {
        self.gso_type & !gso::ECN
    }

    #[inline]
    pub fn is_gso(&self) -> bool {
        self.gso_kind() != gso::NONE
    }

    /// True when the frame can go as it is to a port with no offloads.
    #[inline]
    pub fn is_plain(&self) -> bool {
        !self.needs_csum() && !self.is_gso()
    }

    /// Checks the header against the frame it describes, so that later
    /// software offload code never indexes outside the frame.
    pub fn validate(&self, frame_len: usize) -> Result<(), WireError> {
        if self.needs_csum() {
            let start = self.csum_start as usize;
            let field = start + self.csum_offset as usize;
            if start >= frame_len || field + 2 > frame_len {
                return Err(WireError::Malformed);
            }
        }
        match self.gso_kind() {
            gso::NONE => Ok(()),
            gso::TCPV4 | gso::TCPV6 | gso::UDP_L4 => {
                if self.gso_size == 0 || !self.needs_csum() {
                    return Err(WireError::Malformed);
                }
                Ok(())
            }
            // UFO (IP fragmentation of UDP) is never enabled on our ports.
            _ => Err(WireError::Unsupported),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let h = VnetHdr {
            flags: flags::NEEDS_CSUM,
            gso_type: gso::TCPV4 | gso::ECN,
            hdr_len: 66,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut b = [0u8; HDR_LEN];
        h.emit(&mut b);
        assert_eq!(VnetHdr::parse(&b), h);
        assert!(h.is_gso());
        assert_eq!(h.gso_kind(), gso::TCPV4);
    }

    #[test]
    fn validate_bounds() {
        let mut h = VnetHdr {
            flags: flags::NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 16,
            ..Default::default()
        };
        assert!(h.validate(54).is_ok());
        assert!(h.validate(51).is_err());
        h.csum_offset = 0xffff;
        assert!(h.validate(65000).is_err());
        let g = VnetHdr {
            gso_type: gso::TCPV4,
            gso_size: 0,
            ..Default::default()
        };
        assert!(g.validate(1000).is_err());
        let u = VnetHdr {
            gso_type: gso::UDP,
            ..Default::default()
        };
        assert_eq!(u.validate(1000), Err(WireError::Unsupported));
        assert!(VnetHdr::default().is_plain());
    }
}
