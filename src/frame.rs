//! `FrameBuf`: one preallocated buffer holding a frame behind room for its
//! virtio-net header, so a vnet-capable port reads or writes header and
//! frame with a single syscall and a plain port uses the same buffer from
//! byte [`HDR_LEN`] on. Buffers are made once (batches, scratch space) and
//! reused: nothing on the forwarding path allocates.

use crate::wire::vnet::{VnetHdr, HDR_LEN};

/// The largest frame a port may hand us: a 64 KiB GSO super-frame plus
/// link headers, with slack so a read that fills the buffer is recognisably
/// too long rather than silently truncated.
pub const MAX_FRAME_LEN: usize = 65536 + 1024;

/// Bytes in front of the frame for its virtio-net header.
pub const HEADROOM: usize = HDR_LEN;

pub struct FrameBuf {
    buf: Box<[u8]>,
    len: usize,
}

impl Default for FrameBuf {
    fn default() -> Self {
        FrameBuf::new()
    }
}

impl std::fmt::Debug for FrameBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrameBuf")
            .field("vnet", &self.vnet())
            .field("len", &self.len)
            .finish()
    }
}

impl FrameBuf {
    pub fn new() -> FrameBuf {
        FrameBuf {
            buf: vec![0u8; HEADROOM + MAX_FRAME_LEN].into_boxed_slice(),
            len: 0,
        }
    }

    /// A buffer holding a copy of `frame` with the given header (tests,
    /// benches, fuzzing).
    pub fn from_frame(vnet: VnetHdr, frame: &[u8]) -> FrameBuf {
        let mut f = FrameBuf::new();
        f.load(vnet, frame);
        f
    }

    /// Replaces the content with a copy of `frame`; frames longer than
    /// [`MAX_FRAME_LEN`] are cut (callers bound their input first).
    pub fn load(&mut self, vnet: VnetHdr, frame: &[u8]) {
        let n = frame.len().min(MAX_FRAME_LEN);
        self.buf[HEADROOM..HEADROOM + n].copy_from_slice(&frame[..n]);
        self.len = n;
        self.set_vnet(vnet);
    }

    #[inline]
    pub fn vnet(&self) -> VnetHdr {
        let mut h = [0u8; HDR_LEN];
        h.copy_from_slice(&self.buf[..HDR_LEN]);
        VnetHdr::parse(&h)
    }

    #[inline]
    pub fn set_vnet(&mut self, h: VnetHdr) {
        let mut b = [0u8; HDR_LEN];
        h.emit(&mut b);
        self.buf[..HDR_LEN].copy_from_slice(&b);
    }

    /// Frame length, without the header.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    #[inline]
    pub fn frame(&self) -> &[u8] {
        &self.buf[HEADROOM..HEADROOM + self.len]
    }

    #[inline]
    pub fn frame_mut(&mut self) -> &mut [u8] {
        &mut self.buf[HEADROOM..HEADROOM + self.len]
    }

    /// Header followed by frame, as a vnet-capable port writes it.
    #[inline]
    pub fn with_header(&self) -> &[u8] {
        &self.buf[..HEADROOM + self.len]
    }

    /// The whole buffer, header room included, for a vnet-capable port to
    /// read into; follow with [`FrameBuf::set_len_with_header`].
    #[inline]
    pub fn read_space_with_header(&mut self) -> &mut [u8] {
        &mut self.buf[..]
    }

    /// After reading `n` bytes of header + frame.
    #[inline]
    pub fn set_len_with_header(&mut self, n: usize) {
        self.len = n.saturating_sub(HEADROOM).min(MAX_FRAME_LEN);
    }

    /// The frame area, for a plain port to read into; follow with
    /// [`FrameBuf::set_plain_len`].
    #[inline]
    pub fn read_space(&mut self) -> &mut [u8] {
        &mut self.buf[HEADROOM..]
    }

    /// After reading an `n`-byte frame with no header: the header is cleared.
    #[inline]
    pub fn set_plain_len(&mut self, n: usize) {
        self.len = n.min(MAX_FRAME_LEN);
        self.buf[..HDR_LEN].fill(0);
    }

    /// Sets the frame length directly (builders that wrote into
    /// [`FrameBuf::read_space`]).
    #[inline]
    pub fn set_len(&mut self, n: usize) {
        self.len = n.min(MAX_FRAME_LEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vnet::flags;

    #[test]
    fn header_and_frame_share_one_buffer() {
        let h = VnetHdr {
            flags: flags::NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..Default::default()
        };
        let f = FrameBuf::from_frame(h, &[1, 2, 3]);
        assert_eq!(f.frame(), &[1, 2, 3]);
        assert_eq!(f.vnet(), h);
        assert_eq!(f.with_header().len(), HDR_LEN + 3);
        let mut g = FrameBuf::new();
        g.read_space_with_header()[..13].copy_from_slice(f.with_header());
        g.set_len_with_header(13);
        assert_eq!(g.frame(), &[1, 2, 3]);
        assert_eq!(g.vnet(), h);
        g.read_space()[..2].copy_from_slice(&[9, 9]);
        g.set_plain_len(2);
        assert!(g.vnet().is_plain());
        assert_eq!(g.frame(), &[9, 9]);
    }
}
