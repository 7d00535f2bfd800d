//! The container side of what the data path builds: where a frame toward a
//! container goes ([`Inside`]: its port, MAC, address, its gateway's, its
//! MTU and network), how it leaves ([`Emit`]), and the headers every such
//! frame starts with. The NAT (replies from the far end of a flow) and the
//! embedded DNS (answers from the gateway) both build their frames here, so
//! neither depends on the other.
//!
//! Addresses are of either family: an IPv4 flow's container end holds IPv4
//! addresses, an IPv6 one (to come) IPv6 ones, and the header builders pick
//! the header by the addresses they are given.

use std::net::{IpAddr, Ipv4Addr};

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
    /// Its network has no NAT (docker's `--internal`): only the gateway's
    /// own services (DNS) are served.
    pub internal: bool,
    /// The network it is on (names resolve within networks).
    pub net: u32,
}

impl Inside {
    /// The container's and the gateway's IPv4 addresses, for the IPv4
    /// paths (every flow today); unspecified for another family.
    pub fn v4(&self) -> (Ipv4Addr, Ipv4Addr) {
        (v4(self.ip), v4(self.gateway_ip))
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

/// Writes Ethernet + IPv4 headers of a frame from `src` (the far end, or
/// the gateway) to the container into `out`; returns the offset of the
/// transport header. `l4_len` must leave the IPv4 total length within
/// 65535.
pub fn emit_ipv4_to(
    out: &mut FrameBuf,
    to: &Inside,
    src: Ipv4Addr,
    proto: u8,
    l4_len: usize,
) -> usize {
    let buf = out.read_space();
    let n = ethernet::emit_header(buf, to.mac, to.gateway_mac, ethertype::IPV4);
    n + Ipv4Repr {
        src,
        dst: v4(to.ip),
        protocol: proto,
        payload_len: l4_len,
        ttl: 64,
        ident: 0,
    }
    .emit(&mut buf[n..])
}

/// GSO parameters of a built frame: kind, segment size, and the length of
/// the headers in front of the payload.
#[derive(Debug, Clone, Copy)]
pub struct Gso {
    pub kind: u8,
    pub size: u16,
    pub hdr_len: u16,
}

/// Finishes a frame built with `emit_ipv4_to`: length and a vnet header
/// asking for the transport checksum (`csum_offset` into the L4 header) to
/// be completed, plus GSO when given.
pub fn finish_frame(out: &mut FrameBuf, len: usize, csum_offset: u16, gso: Option<Gso>) {
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
        csum_start: (ethernet::HEADER_LEN + crate::wire::ipv4::MIN_HEADER_LEN) as u16,
        csum_offset,
    });
}
