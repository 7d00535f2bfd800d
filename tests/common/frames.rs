//! Frame builders shared by the pipeline tests: small, explicit, and built
//! with lanyard's own wire builders so that the checks on the way out can
//! use an independent parser (etherparse).

#![allow(dead_code)]

use std::net::Ipv4Addr;

use lanyard::wire::arp::{ArpRepr, OP_REQUEST};
use lanyard::wire::checksum;
use lanyard::wire::ethernet::{emit_header, ethertype};
use lanyard::wire::ipv4::{protocol, Ipv4Repr};
use lanyard::wire::tcp;
use lanyard::wire::vnet::{flags, gso, VnetHdr};
use lanyard::wire::MacAddr;

pub const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);

pub fn mac_of(ip: Ipv4Addr) -> MacAddr {
    MacAddr::docker_from_ipv4(ip)
}

pub fn gw_mac() -> MacAddr {
    mac_of(GW)
}

/// A frame of `len` bytes from `src` to `dst`, EtherType IPv4, zeroes
/// after the header except for the IPv4 source address: the address a
/// docker MAC (02:42 + IPv4) stands for, so an endpoint's port security
/// lets it pass (0.0.0.0 may only ask DHCP).
pub fn eth(dst: MacAddr, src: MacAddr, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(14)];
    emit_header(&mut f, dst, src, ethertype::IPV4);
    if src.0[..2] == [0x02, 0x42] && f.len() >= 30 {
        f[14] = 0x45;
        f[26..30].copy_from_slice(&src.0[2..6]);
    }
    f
}

pub fn udp_frame(dst_mac: MacAddr, src_ip: Ipv4Addr, dst_ip: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 14 + 20 + 8 + payload.len()];
    emit_header(&mut f, dst_mac, mac_of(src_ip), ethertype::IPV4);
    Ipv4Repr {
        src: src_ip,
        dst: dst_ip,
        protocol: protocol::UDP,
        payload_len: 8 + payload.len(),
        ttl: 64,
        ident: 1,
    }
    .emit(&mut f[14..]);
    let u = &mut f[34..];
    u[0..2].copy_from_slice(&4000u16.to_be_bytes());
    u[2..4].copy_from_slice(&5000u16.to_be_bytes());
    u[4..6].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    u[8..].copy_from_slice(payload);
    let pseudo =
        checksum::pseudo_header_v4(src_ip, dst_ip, protocol::UDP, (8 + payload.len()) as u16);
    let c = checksum::finish(checksum::sum(pseudo, &f[34..]));
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}

pub fn arp_request(src_ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut f = vec![0u8; 42];
    emit_header(&mut f, MacAddr::BROADCAST, mac_of(src_ip), ethertype::ARP);
    ArpRepr {
        operation: OP_REQUEST,
        sender_mac: mac_of(src_ip),
        sender_ip: src_ip,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    }
    .emit(&mut f[14..]);
    f
}

pub fn echo_request(src_ip: Ipv4Addr, dst_ip: Ipv4Addr, data: &[u8]) -> Vec<u8> {
    let mut m = vec![8u8, 0, 0, 0, 0xbe, 0xef, 0, 1];
    m.extend_from_slice(data);
    let c = checksum::checksum(&m);
    m[2..4].copy_from_slice(&c.to_be_bytes());
    let mut f = vec![0u8; 34 + m.len()];
    emit_header(&mut f, gw_mac(), mac_of(src_ip), ethertype::IPV4);
    Ipv4Repr {
        src: src_ip,
        dst: dst_ip,
        protocol: protocol::ICMP,
        payload_len: m.len(),
        ttl: 64,
        ident: 2,
    }
    .emit(&mut f[14..]);
    f[34..].copy_from_slice(&m);
    f
}

/// A TCP/IPv4 GSO super-frame as a vnet TAP delivers it: partial checksum
/// (pseudo-header sum only) and `gso_size` segments of payload.
pub fn tcp_gso(
    src_ip: Ipv4Addr,
    dst_ip: Ipv4Addr,
    payload_len: usize,
    mss: u16,
) -> (VnetHdr, Vec<u8>) {
    let mut f = vec![0u8; 54 + payload_len];
    emit_header(&mut f, mac_of(dst_ip), mac_of(src_ip), ethertype::IPV4);
    Ipv4Repr {
        src: src_ip,
        dst: dst_ip,
        protocol: protocol::TCP,
        payload_len: 20 + payload_len,
        ttl: 64,
        ident: 3,
    }
    .emit(&mut f[14..]);
    tcp::emit_header(
        &mut f[34..],
        33000,
        5201,
        7,
        9,
        tcp::flags::ACK | tcp::flags::PSH,
        500,
    );
    for (i, b) in f[54..].iter_mut().enumerate() {
        *b = (i % 253) as u8;
    }
    let pseudo =
        checksum::pseudo_header_v4(src_ip, dst_ip, protocol::TCP, (20 + payload_len) as u16);
    f[50..52].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    let h = VnetHdr {
        flags: flags::NEEDS_CSUM,
        gso_type: if payload_len > mss as usize {
            gso::TCPV4
        } else {
            gso::NONE
        },
        hdr_len: 54,
        gso_size: if payload_len > mss as usize { mss } else { 0 },
        csum_start: 34,
        csum_offset: 16,
    };
    (h, f)
}

/// Checks IPv4 and transport checksums with etherparse; panics otherwise.
pub fn assert_checksums_valid(frame: &[u8]) {
    let p = etherparse::SlicedPacket::from_ethernet(frame).expect("frame parses");
    let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
        return;
    };
    let h = ip.header().to_header();
    assert_eq!(
        h.calc_header_checksum(),
        h.header_checksum,
        "IPv4 header checksum"
    );
    match &p.transport {
        Some(etherparse::TransportSlice::Tcp(t)) => {
            let want = t.to_header().calc_checksum_ipv4(&h, t.payload()).unwrap();
            assert_eq!(t.checksum(), want, "TCP checksum");
        }
        Some(etherparse::TransportSlice::Udp(u)) => {
            let want = u.to_header().calc_checksum_ipv4(&h, u.payload()).unwrap();
            assert_eq!(u.checksum(), want, "UDP checksum");
        }
        Some(etherparse::TransportSlice::Icmpv4(i)) => {
            assert_eq!(
                i.checksum(),
                i.header().icmp_type.calc_checksum(i.payload()),
                "ICMP checksum"
            );
        }
        _ => {}
    }
}

/// A TCP or UDP GSO super-frame over IPv6 from `src_mac` to `dst_mac`.
pub fn gso6(
    tcp: bool,
    src_mac: MacAddr,
    dst_mac: MacAddr,
    payload_len: usize,
    mss: u16,
) -> (VnetHdr, Vec<u8>) {
    // The sender's own link-local, which port security lets through.
    let src = lanyard::wire::ipv6::link_local_from_mac(src_mac);
    let dst: std::net::Ipv6Addr = "fe80::1".parse().unwrap();
    let l4_hdr = if tcp { 20 } else { 8 };
    let mut f = vec![0u8; 14 + 40 + l4_hdr + payload_len];
    emit_header(&mut f, dst_mac, src_mac, ethertype::IPV6);
    let proto = if tcp { protocol::TCP } else { protocol::UDP };
    f[14] = 0x60;
    f[18..20].copy_from_slice(&((l4_hdr + payload_len) as u16).to_be_bytes());
    f[20] = proto;
    f[21] = 64;
    f[22..38].copy_from_slice(&src.octets());
    f[38..54].copy_from_slice(&dst.octets());
    if tcp {
        tcp::emit_header(&mut f[54..], 443, 50000, 1, 1, tcp::flags::ACK, 100);
    } else {
        f[54..56].copy_from_slice(&443u16.to_be_bytes());
        f[56..58].copy_from_slice(&50000u16.to_be_bytes());
        f[58..60].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
    }
    let pseudo = checksum::pseudo_header_v6(src, dst, proto, (l4_hdr + payload_len) as u32);
    let field = 54 + if tcp { 16 } else { 6 };
    f[field..field + 2].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    let h = VnetHdr {
        flags: flags::NEEDS_CSUM,
        gso_type: if tcp { gso::TCPV6 } else { gso::UDP_L4 },
        hdr_len: (54 + l4_hdr) as u16,
        gso_size: mss,
        csum_start: 54,
        csum_offset: if tcp { 16 } else { 6 },
    };
    (h, f)
}
