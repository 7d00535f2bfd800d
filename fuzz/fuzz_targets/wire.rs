//! `wire`: untrusted bytes through every frame view, the offload header
//! check the switch admits frames with, and the software offload fallback.
//! The contract under test is the one `src/wire/mod.rs` states: once
//! `new_checked` accepts a buffer, no accessor of the view may index outside
//! it. Nothing here may panic, and what `check_offload` admits the fallback
//! must be able to finish.
//!
//! Input layout: the first 10 bytes are a virtio-net header (as a TAP puts
//! in front of a frame), the rest is the frame. Every view is tried both on
//! the raw frame and at the offset where it sits in a real packet, so the
//! fuzzer reaches each parser with plausible prefixes in front of it.

#![no_main]

use std::cell::RefCell;
use std::hint::black_box;

use libfuzzer_sys::fuzz_target;

use lanyard::frame::FrameBuf;
use lanyard::offload;
use lanyard::wire::arp::{ArpPacket, ArpRepr, PACKET_LEN as ARP_LEN};
use lanyard::wire::checksum;
use lanyard::wire::ethernet::{ethertype, EthernetFrame};
use lanyard::wire::icmpv4::Icmpv4Packet;
use lanyard::wire::icmpv6::Icmpv6Packet;
use lanyard::wire::ipv4::Ipv4Packet;
use lanyard::wire::ipv6::{next_header, Ipv6Packet};
use lanyard::wire::tcp::TcpPacket;
use lanyard::wire::udp::UdpPacket;
use lanyard::wire::vnet::{VnetHdr, HDR_LEN};
use lanyard::wire::WireError;

thread_local! {
    // FrameBufs are 66 KiB each; making two per input would dominate the
    // run time, so one pair is reused. `load` resets length and header, and
    // nothing reads past the length, so reuse cannot leak state between
    // inputs.
    static BUFS: RefCell<(FrameBuf, FrameBuf)> = RefCell::new((FrameBuf::new(), FrameBuf::new()));
}

fuzz_target!(|data: &[u8]| {
    let Some((hdr, frame)) = data.split_first_chunk::<HDR_LEN>() else {
        return;
    };
    let vnet = VnetHdr::parse(hdr);
    vnet_header(hdr, &vnet, frame.len());

    // Each view over the raw bytes...
    ethernet(frame);
    arp(frame);
    ipv4(frame);
    ipv6(frame);
    transport(frame);
    checksums(frame);
    // ...and over the layer below it, as the switch and gateway reach them.
    if let Ok(eth) = EthernetFrame::new_checked(frame) {
        let l3 = eth.payload();
        match eth.ethertype() {
            ethertype::ARP => arp(l3),
            ethertype::IPV6 => {
                ipv6(l3);
                // The transport header right after the fixed header, as
                // the segmenter finds it.
                if let Some(l4) = l3.get(40..) {
                    transport(l4);
                }
            }
            _ => {
                if let Some(l4) = ipv4(l3) {
                    transport(l4);
                }
                // A GSO super-frame's transport header follows the IPv4
                // header whatever its length field says.
                if let Ok(ip) = Ipv4Packet::new_checked_gso(l3) {
                    transport(&l3[ip.header_len()..]);
                }
            }
        }
    }

    BUFS.with(|bufs| {
        let (buf, scratch) = &mut *bufs.borrow_mut();
        offloads(buf, scratch, vnet, frame);
    });
});

fn vnet_header(raw: &[u8; HDR_LEN], h: &VnetHdr, frame_len: usize) {
    black_box((h.needs_csum(), h.gso_kind(), h.is_gso(), h.is_plain()));
    let _ = black_box(h.validate(frame_len));
    let mut out = [0u8; HDR_LEN];
    h.emit(&mut out);
    assert_eq!(&out, raw, "vnet header does not round-trip");
}

fn ethernet(b: &[u8]) {
    let Ok(eth) = EthernetFrame::new_checked(b) else {
        return;
    };
    black_box((eth.dst(), eth.src(), eth.ethertype(), eth.payload()));
    let (dst, src) = (eth.dst(), eth.src());
    black_box((dst.is_multicast(), dst.is_broadcast(), src.is_unicast()));
    // Setters on a copy: writing back what was read changes nothing.
    let mut copy = b.to_vec();
    let mut m = EthernetFrame::new_checked(&mut copy[..]).expect("same length");
    m.set_dst(dst);
    m.set_src(src);
    m.set_ethertype(eth.ethertype());
    black_box(m.payload_mut());
    assert_eq!(copy, b, "ethernet setters changed the frame");
}

fn arp(b: &[u8]) {
    let Ok(p) = ArpPacket::new_checked(b) else {
        return;
    };
    black_box((p.operation(), p.sender_mac(), p.sender_ip()));
    black_box((p.target_mac(), p.target_ip()));
    // parse → emit gives back the packet's bytes.
    let repr = ArpRepr::parse(&p);
    let mut out = [0u8; ARP_LEN];
    assert_eq!(repr.emit(&mut out), ARP_LEN);
    assert_eq!(&out[..], &b[..ARP_LEN], "ARP does not round-trip");
}

/// Both IPv4 constructors; returns the checked view's payload.
fn ipv4(b: &[u8]) -> Option<&[u8]> {
    if let Ok(ip) = Ipv4Packet::new_checked_gso(b) {
        ipv4_accessors(&ip);
    }
    let ip = Ipv4Packet::new_checked(b).ok()?;
    ipv4_accessors(&ip);
    // Filling the checksum must make it verify.
    let mut copy = b.to_vec();
    let mut m = Ipv4Packet::new_checked(&mut copy[..]).expect("same bytes");
    m.set_total_len(ip.total_len() as u16);
    m.set_ident(ip.ident());
    m.fill_checksum();
    assert!(m.verify_checksum(), "fill_checksum did not verify");
    // The view borrows `b` through itself; hand back the same range of `b`.
    Some(&b[ip.header_len()..ip.total_len()])
}

fn ipv4_accessors(ip: &Ipv4Packet<&[u8]>) {
    black_box((ip.header_len(), ip.dscp_ecn(), ip.total_len(), ip.ident()));
    black_box((ip.is_fragment(), ip.is_later_fragment(), ip.ttl()));
    black_box((ip.protocol(), ip.checksum_field(), ip.src(), ip.dst()));
    black_box((ip.verify_checksum(), ip.header(), ip.payload()));
}

fn ipv6(b: &[u8]) {
    let Ok(ip) = Ipv6Packet::new_checked(b) else {
        return;
    };
    black_box((ip.payload_len(), ip.next_header(), ip.hop_limit()));
    black_box((ip.src(), ip.dst()));
    let mut copy = b.to_vec();
    let mut m = Ipv6Packet::new_checked(&mut copy[..]).expect("same bytes");
    m.set_payload_len(ip.payload_len() as u16);
    assert_eq!(copy, b, "ipv6 setter changed the packet");
    // The extension-header walk ends inside the packet, and what it finds
    // there is what port security reads: ICMPv6 and NDP included.
    let packet = ip.packet();
    assert!(packet.len() <= b.len());
    if let Ok(u) = ip.upper_layer() {
        assert!(u.offset <= packet.len(), "upper layer past the packet");
        let l4 = &packet[u.offset..];
        if u.protocol == next_header::ICMPV6 {
            icmpv6(l4, ip.src(), ip.dst());
        }
        transport(l4);
    }
}

/// ICMPv6 and its NDP options: the option walk ends, and every option
/// lies inside the message.
fn icmpv6(b: &[u8], src: std::net::Ipv6Addr, dst: std::net::Ipv6Addr) {
    let Ok(icmp) = Icmpv6Packet::new_checked(b) else {
        return;
    };
    black_box((icmp.msg_type(), icmp.code(), icmp.checksum(), icmp.target()));
    black_box(icmp.verify_checksum(src, dst));
    if let Some(Ok(opts)) = icmp.ndp_options() {
        let mut total = 0;
        for o in opts {
            let Ok(o) = o else { break };
            total += o.bytes.len();
            assert!(total <= b.len(), "NDP options past the message");
            black_box(o.link_layer_addr());
        }
    }
    let mut copy = b.to_vec();
    let mut m = Icmpv6Packet::new_checked(&mut copy[..]).expect("same bytes");
    m.fill_checksum(src, dst);
    assert!(
        Icmpv6Packet::new_checked(&copy[..])
            .unwrap()
            .verify_checksum(src, dst),
        "a filled checksum does not verify"
    );
}

/// ICMPv4, TCP and UDP over the same bytes: which one applies depends on
/// the IPv4 protocol, but each must be safe on anything.
fn transport(b: &[u8]) {
    if let Ok(icmp) = Icmpv4Packet::new_checked(b) {
        black_box((icmp.msg_type(), icmp.code(), icmp.is_error()));
        black_box((icmp.verify_checksum(), icmp.echo_body()));
    }
    if let Ok(tcp) = TcpPacket::new_checked(b) {
        black_box((tcp.src_port(), tcp.dst_port(), tcp.seq(), tcp.ack()));
        black_box((tcp.header_len(), tcp.flags(), tcp.seq_len()));
        let mut copy = b.to_vec();
        let mut m = TcpPacket::new_checked(&mut copy[..]).expect("same bytes");
        m.set_seq(tcp.seq());
        m.set_flags(tcp.flags());
        m.set_checksum(u16::from_be_bytes([b[16], b[17]]));
        assert_eq!(copy, b, "tcp setters changed the segment");
    }
    if let Ok(udp) = UdpPacket::new_checked(b) {
        black_box((udp.src_port(), udp.dst_port(), udp.len(), udp.is_empty()));
        black_box(udp.payload());
    }
    // The NAT's TCP header and option parser (MSS, window scale).
    if let Some(seg) = lanyard::nat::tcp::Seg::parse(b) {
        assert!(
            TcpPacket::new_checked(b).is_ok(),
            "Seg::parse accepted what TcpPacket refuses"
        );
        black_box((seg.seq, seg.ack, seg.flags, seg.window, seg.mss, seg.wscale));
        assert!(seg.wscale.is_none_or(|w| w <= 14));
        assert!(seg.payload.len() <= b.len());
    }
}

/// The Internet checksum is summed in 32-bit chunks with a 16-bit tail; a
/// sum split at any even offset must equal the whole sum.
fn checksums(b: &[u8]) {
    let whole = checksum::fold(checksum::sum(0, b));
    let mid = (b.len() / 2) & !1;
    let split = checksum::fold(checksum::sum(checksum::sum(0, &b[..mid]), &b[mid..]));
    assert_eq!(whole, split, "checksum sum is not associative at {mid}");
    black_box(checksum::verify(b));
}

/// The software fallback a port without offloads gets: complete a partial
/// checksum, or cut a GSO super-frame into segments.
fn offloads(buf: &mut FrameBuf, scratch: &mut FrameBuf, vnet: VnetHdr, frame: &[u8]) {
    if frame.len() > lanyard::frame::MAX_FRAME_LEN {
        return;
    }
    buf.load(vnet, frame);
    let mut emitted = 0usize;
    let res = offload::segment(buf, scratch, |seg| {
        emitted += 1;
        assert!(seg.vnet().is_plain(), "segment still carries offloads");
        assert!(
            seg.len() <= frame.len(),
            "segment longer than its super-frame"
        );
    });
    if let Ok(n) = res {
        assert_eq!(n, emitted, "segment() miscounted its segments");
        assert!(n <= offload::MAX_SEGMENTS);
    }
    // The switch admits a frame only if `check_offload` passes its header;
    // whatever it admits, the software fallback must then be able to
    // finish: cut a GSO frame (or refuse it as too many segments), complete
    // a partial checksum.
    let admitted = offload::check_offload(frame, &vnet).is_ok();
    if admitted && vnet.is_gso() {
        assert!(
            matches!(res, Ok(_) | Err(WireError::Unsupported)),
            "check_offload() admits a GSO frame segment() refuses: {res:?}"
        );
    }

    buf.load(vnet, frame);
    let finished = offload::finish_checksum(buf);
    if admitted && !vnet.is_gso() {
        assert_eq!(
            finished,
            Ok(()),
            "check_offload() admits a frame finish_checksum() refuses"
        );
    }
    if finished.is_ok() {
        assert!(!buf.vnet().needs_csum(), "NEEDS_CSUM left after finish");
        assert_eq!(buf.len(), frame.len(), "finish_checksum changed the length");
    }
}
