//! Container → container UDP coalescing: the switch's own small GRO.
//!
//! # Theory of operation
//!
//! A stream of small UDP datagrams between two containers costs the switch
//! a read and a write per datagram, and the write runs the receiving
//! container's whole UDP receive (and its reader's wake-up) in the data
//! path's thread. The read cannot be batched (a TAP hands over one frame per
//! read), but the writes can: consecutive datagrams of one flow that one
//! port's turn sends to one port that takes UDP super-frames
//! (`Offloads::uso`: a TAP on Linux 6.2 or later) are gathered here and
//! written as one `UDP_L4` super-frame, which the receiving kernel splits
//! back into the datagrams, as it would after GRO on a real NIC.
//!
//! What may join, each rule a check in [`layout`] or [`Coalescer::try_join`]:
//!
//! | the frame | why |
//! |---|---|
//! | Ethernet II, IPv4 without options or fragmentation, or IPv6 whose next header is UDP | the segments are rebuilt from the first frame's headers |
//! | a partial checksum (`NEEDS_CSUM`) at the UDP checksum, not GSO | the sender's kernel left the checksum to us: nothing to verify, and the receiving kernel computes each segment's |
//! | the same Ethernet, IP (but length, id and checksum) and UDP ports as the first | one flow: the segments differ only in payload |
//! | from the same port's turn, to the same port | nothing waits past the turn that read it |
//! | no larger than the first, and nothing after a shorter one | a super-frame's segments are all `gso_size` but the last |
//! | at most 64 datagrams and 63 KiB | within one IP packet's length (`offload::SegmentRun`, which the NAT's batches count with too) |
//!
//! The switch sends what is held before any frame that does not join, and
//! at the end of every turn. A super-frame of one datagram is the frame as
//! it came. Port security, learning and the verdict ran on every frame
//! before it was offered here.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::frame::FrameBuf;
use crate::offload::SegmentRun;
use crate::port::PortId;
use crate::wire::checksum;
use crate::wire::ethernet::{ethertype, HEADER_LEN as ETH_LEN};
use crate::wire::ipv4::{self, protocol, Ipv4Packet};
use crate::wire::ipv6::HEADER_LEN as IPV6_LEN;
use crate::wire::udp::{CHECKSUM_OFFSET, HEADER_LEN as UDP_LEN};
use crate::wire::vnet::{flags, gso, VnetHdr};

/// Where a coalescable frame's headers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// The UDP header's offset (the IP header starts at `ETH_LEN`).
    l4: usize,
    v6: bool,
}

impl Layout {
    fn payload_len(&self, frame: &[u8]) -> usize {
        frame.len() - self.l4 - UDP_LEN
    }
}

/// The layout of `frame` if it may start or join a super-frame (the table
/// in the module's comment), else `None`.
fn layout(frame: &[u8], h: &VnetHdr) -> Option<Layout> {
    if h.is_gso() || h.flags != flags::NEEDS_CSUM || h.csum_offset as usize != CHECKSUM_OFFSET {
        return None;
    }
    if frame.len() < ETH_LEN {
        return None;
    }
    let ip = &frame[ETH_LEN..];
    let et = u16::from_be_bytes([frame[12], frame[13]]);
    let (l4, v6, l4_len) = if et == ethertype::IPV4 {
        let p = Ipv4Packet::new_checked(ip).ok()?;
        if p.header_len() != ipv4::MIN_HEADER_LEN
            || p.is_fragment()
            || p.protocol() != protocol::UDP
            || p.total_len() != ip.len()
        {
            return None;
        }
        (
            ETH_LEN + ipv4::MIN_HEADER_LEN,
            false,
            ip.len() - ipv4::MIN_HEADER_LEN,
        )
    } else if et == ethertype::IPV6 {
        if ip.len() < IPV6_LEN || ip[0] >> 4 != 6 || ip[6] != protocol::UDP {
            return None;
        }
        let payload = u16::from_be_bytes([ip[4], ip[5]]) as usize;
        if payload != ip.len() - IPV6_LEN {
            return None;
        }
        (ETH_LEN + IPV6_LEN, true, payload)
    } else {
        return None;
    };
    if h.csum_start as usize != l4 || l4_len <= UDP_LEN {
        return None;
    }
    let udp_len = u16::from_be_bytes([frame[l4 + 4], frame[l4 + 5]]) as usize;
    (udp_len == l4_len).then_some(Layout { l4, v6 })
}

/// Whether `b` is of the flow whose first frame is `a` (both of layout
/// `l`): every header byte alike but the lengths, the IPv4 id and the
/// checksums.
fn same_flow(a: &[u8], b: &[u8], l: Layout) -> bool {
    let ip = ETH_LEN;
    let same = |r: std::ops::Range<usize>| a.get(r.clone()) == b.get(r);
    same(0..ETH_LEN)
        && if l.v6 {
            // version, class, flow label; next header, hop limit, addresses
            same(ip..ip + 4) && same(ip + 6..ip + IPV6_LEN)
        } else {
            // version, IHL, DSCP/ECN; flags and fragment offset; TTL,
            // protocol; addresses
            same(ip..ip + 2) && same(ip + 6..ip + 10) && same(ip + 12..ip + 20)
        }
        && same(l.l4..l.l4 + 4)
}

/// The datagrams held for one super-frame, and where it goes.
pub struct Coalescer {
    /// The first frame as it came, then the others' payloads after it.
    buf: FrameBuf,
    /// (ingress, egress, layout) while something is held.
    held: Option<(PortId, PortId, Layout)>,
    /// The datagrams held (their payload bytes follow the first frame's).
    run: SegmentRun,
    /// Datagrams that joined another's super-frame (each a write saved).
    pub joined: u64,
    /// Super-frames written.
    pub super_frames: u64,
}

impl Default for Coalescer {
    fn default() -> Self {
        Coalescer::new()
    }
}

impl Coalescer {
    pub fn new() -> Coalescer {
        Coalescer {
            buf: FrameBuf::new(),
            held: None,
            run: SegmentRun::start(0),
            joined: 0,
            super_frames: 0,
        }
    }

    #[inline]
    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }

    /// Holds `buf` (from `ingress`, for `egress`) as the first datagram of
    /// a super-frame; false if it may not be one (the caller sends it as
    /// it is). Only while nothing is held.
    pub fn start(&mut self, ingress: PortId, egress: PortId, buf: &FrameBuf) -> bool {
        debug_assert!(self.held.is_none());
        let frame = buf.frame();
        let vnet = buf.vnet();
        let Some(l) = layout(frame, &vnet) else {
            return false;
        };
        let n = l.payload_len(frame);
        self.buf.load(vnet, frame);
        self.held = Some((ingress, egress, l));
        self.run = SegmentRun::start(n);
        true
    }

    /// Adds `buf` to what is held if it may join (the module's table);
    /// false if it may not, and the caller sends what is held first.
    pub fn try_join(&mut self, ingress: PortId, egress: PortId, buf: &FrameBuf) -> bool {
        let Some((i, e, l)) = self.held else {
            return false;
        };
        if i != ingress || e != egress || !self.run.may_grow() {
            return false;
        }
        let frame = buf.frame();
        if layout(frame, &buf.vnet()) != Some(l) || !same_flow(self.buf.frame(), frame, l) {
            return false;
        }
        let n = l.payload_len(frame);
        if !self.run.takes(n) {
            return false;
        }
        let at = l.l4 + UDP_LEN + self.run.len;
        self.buf.read_space()[at..at + n].copy_from_slice(&frame[l.l4 + UDP_LEN..]);
        self.run.add(n);
        self.joined += 1;
        true
    }

    /// What is held, as one frame for its egress port (the headers made
    /// those of a super-frame when it holds more than one datagram); empty
    /// afterwards.
    pub fn take(&mut self) -> Option<(PortId, &mut FrameBuf)> {
        let (_, egress, l) = self.held.take()?;
        if self.run.count > 1 {
            self.finish(l);
            self.super_frames += 1;
        }
        Some((egress, &mut self.buf))
    }

    /// Lengths, the IPv4 checksum, the UDP checksum's pseudo-header seed
    /// and the vnet header of a super-frame of the run's payload bytes.
    fn finish(&mut self, l: Layout) {
        let udp_len = UDP_LEN + self.run.len;
        self.buf.set_len(l.l4 + udp_len);
        let f = self.buf.frame_mut();
        let ip = &mut f[ETH_LEN..];
        let pseudo = if l.v6 {
            ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            let src = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[8..24]).expect("16 bytes"));
            let dst = Ipv6Addr::from(<[u8; 16]>::try_from(&ip[24..40]).expect("16 bytes"));
            checksum::pseudo_header_v6(src, dst, protocol::UDP, udp_len as u32)
        } else {
            ip[2..4].copy_from_slice(&((ipv4::MIN_HEADER_LEN + udp_len) as u16).to_be_bytes());
            let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
            let dst = Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]);
            if let Ok(mut p) = Ipv4Packet::new_checked(&mut ip[..]) {
                p.fill_checksum();
            }
            checksum::pseudo_header_v4(src, dst, protocol::UDP, udp_len as u16)
        };
        let u = &mut f[l.l4..];
        u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        u[CHECKSUM_OFFSET..CHECKSUM_OFFSET + 2]
            .copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        self.buf.set_vnet(VnetHdr {
            flags: flags::NEEDS_CSUM,
            gso_type: gso::UDP_L4,
            hdr_len: (l.l4 + UDP_LEN) as u16,
            gso_size: self.run.segment as u16,
            csum_start: l.l4 as u16,
            csum_offset: CHECKSUM_OFFSET as u16,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::segment;
    use crate::wire::ethernet::{emit_header, MacAddr};

    const A: PortId = PortId(1);
    const B: PortId = PortId(2);

    /// A UDP datagram as a TAP hands it over: partial checksum (the
    /// pseudo-header sum in the field), `n` payload bytes of `fill`.
    fn datagram(v6: bool, sport: u16, n: usize, fill: u8) -> FrameBuf {
        let ip_len = if v6 { IPV6_LEN } else { 20 };
        let l4 = ETH_LEN + ip_len;
        let mut f = vec![0u8; l4 + UDP_LEN + n];
        let et = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
        emit_header(
            &mut f,
            MacAddr([2, 0, 0, 0, 0, 3]),
            MacAddr([2, 0, 0, 0, 0, 2]),
            et,
        );
        let udp_len = UDP_LEN + n;
        let pseudo = if v6 {
            let ip = &mut f[ETH_LEN..];
            ip[0] = 0x60;
            ip[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
            ip[6] = protocol::UDP;
            ip[7] = 64;
            let src: Ipv6Addr = "fd00:172:17::2".parse().unwrap();
            let dst: Ipv6Addr = "fd00:172:17::3".parse().unwrap();
            ip[8..24].copy_from_slice(&src.octets());
            ip[24..40].copy_from_slice(&dst.octets());
            checksum::pseudo_header_v6(src, dst, protocol::UDP, udp_len as u32)
        } else {
            let ip = &mut f[ETH_LEN..];
            ip[0] = 0x45;
            ip[2..4].copy_from_slice(&((20 + udp_len) as u16).to_be_bytes());
            ip[4..6].copy_from_slice(&(fill as u16).to_be_bytes());
            ip[6] = 0x40; // DF
            ip[8] = 64;
            ip[9] = protocol::UDP;
            ip[12..16].copy_from_slice(&[172, 17, 0, 2]);
            ip[16..20].copy_from_slice(&[172, 17, 0, 3]);
            Ipv4Packet::new_checked(&mut ip[..])
                .unwrap()
                .fill_checksum();
            checksum::pseudo_header_v4(
                Ipv4Addr::new(172, 17, 0, 2),
                Ipv4Addr::new(172, 17, 0, 3),
                protocol::UDP,
                udp_len as u16,
            )
        };
        let u = &mut f[l4..];
        u[0..2].copy_from_slice(&sport.to_be_bytes());
        u[2..4].copy_from_slice(&7000u16.to_be_bytes());
        u[4..6].copy_from_slice(&(udp_len as u16).to_be_bytes());
        u[6..8].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
        for b in &mut u[UDP_LEN..] {
            *b = fill;
        }
        FrameBuf::from_frame(
            VnetHdr {
                flags: flags::NEEDS_CSUM,
                csum_start: l4 as u16,
                csum_offset: CHECKSUM_OFFSET as u16,
                ..VnetHdr::default()
            },
            &f,
        )
    }

    /// The datagrams a frame stands for, each checked by etherparse
    /// (lengths, the IPv4 header checksum, the UDP checksum).
    fn datagrams(frame: &FrameBuf) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut check = |s: &FrameBuf| {
            let mut s = FrameBuf::from_frame(s.vnet(), s.frame());
            crate::offload::finish_checksum(&mut s).unwrap();
            let p = etherparse::SlicedPacket::from_ethernet(s.frame()).unwrap();
            let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
                panic!("not UDP");
            };
            let sum = match p.net {
                Some(etherparse::NetSlice::Ipv4(ip)) => {
                    let h = ip.header().to_header();
                    assert_eq!(h.header_checksum, h.calc_header_checksum());
                    u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap()
                }
                Some(etherparse::NetSlice::Ipv6(ip)) => u
                    .to_header()
                    .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
                    .unwrap(),
                _ => panic!("not IP"),
            };
            assert_eq!(sum, u.checksum(), "the UDP checksum");
            out.push(u.payload().to_vec());
        };
        if frame.vnet().is_gso() {
            let mut scratch = FrameBuf::new();
            segment(frame, &mut scratch, |s| check(s)).unwrap();
        } else {
            check(frame);
        }
        out
    }

    #[test]
    fn one_flows_datagrams_become_one_super_frame_of_exactly_them() {
        for v6 in [false, true] {
            let mut c = Coalescer::new();
            let sizes = [64usize, 64, 64, 20];
            assert!(c.start(A, B, &datagram(v6, 5000, sizes[0], 0)));
            for (i, &n) in sizes.iter().enumerate().skip(1) {
                assert!(c.try_join(A, B, &datagram(v6, 5000, n, i as u8)));
            }
            // Nothing after the shorter one.
            assert!(!c.try_join(A, B, &datagram(v6, 5000, 20, 9)));
            let (egress, f) = c.take().unwrap();
            assert_eq!(egress, B);
            assert_eq!((f.vnet().gso_kind(), f.vnet().gso_size), (gso::UDP_L4, 64));
            assert_eq!(
                crate::offload::check_offload(f.frame(), &f.vnet()).unwrap(),
                Some(if v6 { IPV6_LEN } else { 20 } + UDP_LEN + 64)
            );
            let want: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| vec![i as u8; n])
                .collect();
            assert_eq!(datagrams(f), want, "v6={v6}");
            assert!(!c.is_holding());
            assert_eq!((c.joined, c.super_frames), (3, 1));
        }
    }

    #[test]
    fn a_lone_datagram_goes_as_it_came() {
        let d = datagram(false, 5000, 64, 7);
        let mut c = Coalescer::new();
        assert!(c.start(A, B, &d));
        let (_, f) = c.take().unwrap();
        assert_eq!((f.frame(), f.vnet()), (d.frame(), d.vnet()));
        assert_eq!(c.super_frames, 0);
    }

    /// What must not join: another flow, another port or turn's, a larger
    /// datagram, one with a complete checksum, a fragment, IPv4 options,
    /// a GSO frame, a frame whose lengths disagree, a non-UDP packet.
    #[test]
    fn what_is_not_the_same_flow_or_not_plain_udp_does_not_join() {
        let first = datagram(false, 5000, 64, 0);
        let fresh = || {
            let mut c = Coalescer::new();
            assert!(c.start(A, B, &first));
            c
        };
        let mut c = fresh();
        assert!(
            !c.try_join(A, B, &datagram(false, 5001, 64, 1)),
            "another source port"
        );
        assert!(
            !c.try_join(B, B, &datagram(false, 5000, 64, 1)),
            "another ingress"
        );
        assert!(
            !c.try_join(A, PortId(3), &datagram(false, 5000, 64, 1)),
            "another egress"
        );
        assert!(!c.try_join(A, B, &datagram(false, 5000, 65, 1)), "larger");
        assert!(
            !c.try_join(A, B, &datagram(true, 5000, 64, 1)),
            "another family"
        );

        let edit = |f: &mut dyn FnMut(&mut Vec<u8>, &mut VnetHdr)| {
            let d = datagram(false, 5000, 64, 1);
            let (mut frame, mut h) = (d.frame().to_vec(), d.vnet());
            f(&mut frame, &mut h);
            FrameBuf::from_frame(h, &frame)
        };
        let cases: Vec<(&str, FrameBuf)> = vec![
            ("complete checksum", edit(&mut |_, h| h.flags = 0)),
            ("a fragment", edit(&mut |f, _| f[ETH_LEN + 6] = 0x20)),
            ("another TTL", edit(&mut |f, _| f[ETH_LEN + 8] = 63)),
            ("another destination MAC", edit(&mut |f, _| f[5] = 9)),
            (
                "GSO",
                edit(&mut |_, h| {
                    h.gso_type = gso::UDP_L4;
                    h.gso_size = 16;
                }),
            ),
            (
                "UDP length wrong",
                edit(&mut |f, _| f[ETH_LEN + 20 + 5] ^= 1),
            ),
            ("padding after the IP packet", edit(&mut |f, _| f.push(0))),
            ("TCP", edit(&mut |f, _| f[ETH_LEN + 9] = protocol::TCP)),
        ];
        for (what, d) in cases {
            assert!(!c.try_join(A, B, &d), "{what}");
        }
        let (_, f) = c.take().unwrap();
        assert_eq!(datagrams(f), vec![vec![0u8; 64]], "only the first");

        // IPv4 options: not even a start.
        let d = edit(&mut |f, h| {
            f[ETH_LEN] = 0x46;
            f.splice(ETH_LEN + 20..ETH_LEN + 20, [1, 1, 1, 1]);
            h.csum_start += 4;
        });
        assert!(!Coalescer::new().start(A, B, &d));
        // Bounded in count.
        let mut c = fresh();
        for _ in 1..crate::offload::UDP_MAX_SEGMENTS {
            assert!(c.try_join(A, B, &datagram(false, 5000, 64, 1)));
        }
        assert!(!c.try_join(A, B, &datagram(false, 5000, 64, 1)));
    }
}
