//! The container side of what the data path builds: where a frame toward a
//! container goes ([`Inside`]: its port, MAC, address, its gateway's, its
//! MTU and network), how it leaves ([`Emit`]), and the headers every such
//! frame starts with. The NAT (replies from the far end of a flow) and the
//! embedded DNS (answers from the gateway) both build their frames here, so
//! neither depends on the other.
//!
//! Addresses are of either family: an IPv4 flow's container end holds IPv4
//! addresses, an IPv6 one IPv6 ones, and the header builders pick the
//! header by the container's address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::frame::FrameBuf;
use crate::port::PortId;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::Ipv4Repr;
use crate::wire::vnet::VnetHdr;
use crate::wire::MacAddr;

/// The container end of a flow (or of a DNS exchange): where its frames go
/// and what they look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inside {
    pub port: PortId,
    pub mac: MacAddr,
    pub ip: IpAddr,
    pub gateway_mac: MacAddr,
    pub gateway_ip: IpAddr,
    pub mtu: u32,
    /// Connections to the gateway's address may reach the host's loopback.
    pub allow_host_loopback: bool,
    /// When it may not, TCP to the gateway's address gets "network
    /// unreachable" rather than a reset (the slirp4netns mode).
    pub loopback_unreachable: bool,
    /// Its network has no NAT (docker's `--internal`): only the gateway's
    /// own services (DNS) are served.
    pub internal: bool,
    /// The network it is on (names resolve within networks).
    pub net: u32,
}

impl Inside {
    /// The container's and the gateway's IPv4 addresses, for the IPv4
    /// paths; unspecified for another family.
    pub fn v4(&self) -> (Ipv4Addr, Ipv4Addr) {
        (v4(self.ip), v4(self.gateway_ip))
    }

    /// Where the transport header starts in a frame to this container.
    #[inline]
    pub fn l4_offset(&self) -> usize {
        l4_offset(self.ip)
    }
}

/// Where the transport header starts in a frame of `ip`'s family
/// (Ethernet + the IPv4 header without options, or the IPv6 fixed header).
#[inline]
pub fn l4_offset(ip: IpAddr) -> usize {
    ethernet::HEADER_LEN
        + match ip {
            IpAddr::V4(_) => crate::wire::ipv4::MIN_HEADER_LEN,
            IpAddr::V6(_) => crate::wire::ipv6::HEADER_LEN,
        }
}

/// The transport checksum's pseudo-header sum for either family.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, l4_len: usize) -> u32 {
    use crate::wire::checksum;
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_header_v4(s, d, proto, l4_len as u16),
        (s, d) => checksum::pseudo_header_v6(v6(s), v6(d), proto, l4_len as u32),
    }
}

/// An IPv6 address; an IPv4 one as its IPv4-mapped form (which the IPv6
/// paths never build: their addresses come from IPv6 packets).
pub fn v6(a: IpAddr) -> Ipv6Addr {
    match a {
        IpAddr::V4(a) => a.to_ipv6_mapped(),
        IpAddr::V6(a) => a,
    }
}

/// An IPv4 address, or 0.0.0.0 for one of another family (which the IPv4
/// paths never see: their keys are built from IPv4 packets).
pub fn v4(a: IpAddr) -> Ipv4Addr {
    match a {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

/// Where built frames go: implemented by the switch (a port's send path
/// with its offload fallback) and by tests.
pub trait Emit {
    fn emit(&mut self, port: PortId, frame: &mut FrameBuf);
}

/// Writes Ethernet + IP headers of a frame from `src` (the far end, or
/// the gateway) to the container into `out`, IPv4 or IPv6 as the
/// container's address is; returns the offset of the transport header.
/// `proto` is the IPv4 protocol number (ICMP becomes ICMPv6 in IPv6).
/// `l4_len` must leave the IPv4 total length (IPv6 payload length) within
/// 65535.
pub fn emit_ip_to(out: &mut FrameBuf, to: &Inside, src: IpAddr, proto: u8, l4_len: usize) -> usize {
    let buf = out.read_space();
    match to.ip {
        IpAddr::V4(dst) => {
            let n = ethernet::emit_header(buf, to.mac, to.gateway_mac, ethertype::IPV4);
            n + Ipv4Repr {
                src: v4(src),
                dst,
                protocol: proto,
                payload_len: l4_len,
                ttl: 64,
                ident: 0,
            }
            .emit(&mut buf[n..])
        }
        IpAddr::V6(dst) => {
            let n = ethernet::emit_header(buf, to.mac, to.gateway_mac, ethertype::IPV6);
            let next = match proto {
                crate::wire::ipv4::protocol::ICMP => crate::wire::ipv6::next_header::ICMPV6,
                p => p,
            };
            crate::wire::ipv6::emit_header(&mut buf[n..], v6(src), dst, next, l4_len as u16, 64);
            n + crate::wire::ipv6::HEADER_LEN
        }
    }
}

/// GSO parameters of a built frame: kind, segment size, and the length of
/// the headers in front of the payload.
#[derive(Debug, Clone, Copy)]
pub struct Gso {
    pub kind: u8,
    pub size: u16,
    pub hdr_len: u16,
}

/// Finishes a frame built with `emit_ip_to`: length and a vnet header
/// asking for the transport checksum (`csum_offset` into the L4 header) to
/// be completed, plus GSO when given (its kind made TCPV6 for IPv6).
pub fn finish_frame(out: &mut FrameBuf, len: usize, csum_offset: u16, gso: Option<Gso>) {
    let v6 = out.read_space()[ethernet::field::ETHERTYPE] == ethertype::IPV6.to_be_bytes();
    let csum_start = ethernet::HEADER_LEN
        + if v6 {
            crate::wire::ipv6::HEADER_LEN
        } else {
            crate::wire::ipv4::MIN_HEADER_LEN
        };
    let gso = gso.map(|g| match (v6, g.kind & !crate::wire::vnet::gso::ECN) {
        (true, crate::wire::vnet::gso::TCPV4) => Gso {
            kind: (g.kind & crate::wire::vnet::gso::ECN) | crate::wire::vnet::gso::TCPV6,
            ..g
        },
        _ => g,
    });
    out.set_len(len);
    let g = gso.unwrap_or(Gso {
        kind: 0,
        size: 0,
        hdr_len: 0,
    });
    out.set_vnet(VnetHdr {
        flags: crate::wire::vnet::flags::NEEDS_CSUM,
        gso_type: g.kind,
        hdr_len: g.hdr_len,
        gso_size: g.size,
        csum_start: csum_start as u16,
        csum_offset,
    });
}
