//! The gateway: the router address of a network (docker0's 172.17.0.1).
//! It answers ARP for its address and ICMP echo to it, resets TCP and
//! returns ICMP unreachables for what it does not serve, and is where
//! routed (off-subnet) traffic arrives: on a network with NAT it goes to
//! the NAT; on an internal network (no NAT) it gets an ICMP "network
//! unreachable", so a container's connect fails at once instead of
//! hanging. DNS to the gateway's address is served on both: UDP goes to
//! the embedded DNS, TCP to the NAT (a flow to the DNS-over-TCP server).
//!
//! It owns no sockets and does no I/O: each call takes one frame and writes
//! at most one reply into a caller-owned buffer, which the switch sends back
//! out of the ingress port.
//!
//! On a dual-stack network the same gateway (one MAC) is also the IPv6
//! router: Neighbor Discovery, Router Advertisements, ICMPv6 echo and
//! errors, and the same hand-offs to the DNS and the NAT (`ipv6`).

mod ipv6;

use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net};

use crate::frame::FrameBuf;
use crate::ratelimit::{RateLimiter, SourceBudget};
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::arp::{self, ArpPacket, ArpRepr};
use crate::wire::checksum;
use crate::wire::dhcp;
use crate::wire::ethernet::{self, ethertype, EthernetFrame, MacAddr};
use crate::wire::icmpv4::{self, msg_type, unreachable, Icmpv4Packet};
use crate::wire::ipv4::{protocol, Ipv4Packet, Ipv4Repr};
use crate::wire::tcp::{self, flags as tcpf, TcpPacket};
use crate::wire::udp::UdpPacket;
use crate::wire::vnet::VnetHdr;

/// Smallest Ethernet frame (without FCS); shorter replies are padded.
const MIN_FRAME_LEN: usize = 60;
const REPLY_TTL: u8 = 64;

/// A host that may be answered: not 0.0.0.0, broadcast, multicast or
/// loopback.
fn is_unicast_host(a: Ipv4Addr) -> bool {
    !(a.is_unspecified() || a.is_broadcast() || a.is_multicast() || a.is_loopback())
}

/// An IPv4 datagram from a DHCP client (UDP 68 → 67), unfragmented.
fn is_dhcp_request(ip: &[u8]) -> bool {
    let Ok(p) = Ipv4Packet::new_checked(ip) else {
        return false;
    };
    p.protocol() == protocol::UDP
        && !p.is_fragment()
        && UdpPacket::new_checked(p.payload())
            .is_ok_and(|u| (u.src_port(), u.dst_port()) == (dhcp::CLIENT_PORT, dhcp::SERVER_PORT))
}

crate::stats::counters! {
    /// What the gateway did, counted per network.
    pub struct GatewayCounters {
        /// ARP replies sent: answers to a request for the gateway's (or the DNS's) IPv4 address.
        arp_replies,
        /// Echo replies sent to pings (ICMP or ICMPv6) of the gateway's own addresses.
        echo_replies,
        /// ICMP and ICMPv6 errors sent: destination unreachable (no route, port, protocol),
        /// and for IPv6 also time exceeded and parameter problem.
        unreachables_sent,
        /// TCP RSTs sent for a segment to one of the gateway's addresses that nothing serves.
        resets_sent,
        /// Neighbor Advertisements sent: answers to a Neighbor Solicitation for one of the
        /// gateway's IPv6 addresses (to all nodes for duplicate address detection).
        neighbor_adverts,
        /// Router Advertisements sent: answers to a Router Solicitation, and the periodic
        /// unsolicited ones to all nodes (one per period, however many ports).
        router_adverts,
    }
}

/// What the gateway made of a frame: a reply it wrote, a drop, or where
/// the frame goes next — with what was parsed on the way, so the frame is
/// parsed once.
#[derive(Debug, Clone, Copy)]
pub enum Verdict<'a> {
    /// Not the gateway's business (a broadcast it plays no part in).
    Ignored,
    /// A reply is in the output buffer (ARP, echo, RST, ICMP error), for
    /// the ingress port; `Some` also counts the frame as dropped.
    Reply(Option<DropReason>),
    Drop(DropReason),
    /// A DHCP client message (UDP to port 67), for the DHCP server.
    Dhcp,
    /// A UDP query to the gateway's port 53, for the embedded DNS.
    Dns(DnsQuery<'a>),
    /// For the NAT: routed off the subnet, or TCP/UDP to the gateway's own
    /// address (its services, the host's loopback).
    Nat(Routed<'a>),
}

/// A routed packet of either family, parsed and checked: not a fragment,
/// TTL (hop limit) left.
#[derive(Debug, Clone, Copy)]
pub struct Routed<'a> {
    pub src_mac: MacAddr,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// The transport protocol: IPv4's protocol field, or in IPv6 the upper
    /// layer after the extension headers (ICMPv6 is 58, not ICMP's 1).
    pub proto: u8,
    /// The transport header and payload: as the IP length says, or for a
    /// GSO super-frame everything after the IP headers.
    pub l4: &'a [u8],
}

/// A DNS query over UDP to the gateway.
#[derive(Debug, Clone, Copy)]
pub struct DnsQuery<'a> {
    pub src_mac: MacAddr,
    pub src: IpAddr,
    /// The gateway's address it was sent to (the answer comes from it).
    pub dst: IpAddr,
    pub src_port: u16,
    /// The DNS message.
    pub message: &'a [u8],
}

impl Verdict<'_> {
    /// A reply was written.
    pub fn is_reply(&self) -> bool {
        matches!(self, Verdict::Reply(_))
    }

    /// The drop it counts, if any.
    pub fn drop_reason(&self) -> Option<DropReason> {
        match self {
            Verdict::Reply(r) => *r,
            Verdict::Drop(r) => Some(*r),
            _ => None,
        }
    }
}

/// Parses a frame's IP packet as routed traffic (for the NAT, and for
/// benches and tests that hand it frames): its addresses, its transport
/// bytes, and the checks every routed packet passes.
pub fn routed<'a>(frame: &'a [u8], vnet: &VnetHdr) -> Result<Routed<'a>, DropReason> {
    let eth = EthernetFrame::new_checked(frame).map_err(|_| DropReason::Truncated)?;
    let src_mac = eth.src();
    if eth.ethertype() == ethertype::IPV6 {
        let ip = crate::wire::ipv6::Ipv6Packet::new_checked(eth.into_payload())
            .map_err(|_| DropReason::MalformedPacket)?;
        return ipv6::routed_from(src_mac, ip);
    }
    let l3 = eth.into_payload();
    let ip = if vnet.is_gso() {
        Ipv4Packet::new_checked_gso(l3)
    } else {
        Ipv4Packet::new_checked(l3)
    }
    .map_err(|_| DropReason::MalformedPacket)?;
    routed_from(src_mac, ip, l3, vnet)
}

fn routed_from<'a>(
    src_mac: MacAddr,
    ip: Ipv4Packet<&'a [u8]>,
    l3: &'a [u8],
    vnet: &VnetHdr,
) -> Result<Routed<'a>, DropReason> {
    if ip.is_fragment() {
        // Flows are keyed by ports, which only the first fragment carries;
        // the container's PMTU discovery avoids fragments.
        return Err(DropReason::Fragment);
    }
    if ip.ttl() <= 1 {
        return Err(DropReason::NoRoute);
    }
    let hl = ip.header_len();
    let l4 = if vnet.is_gso() {
        &l3[hl..]
    } else {
        // The payload as declared by the total length (checked to fit).
        &l3[hl..ip.total_len().clamp(hl, l3.len())]
    };
    Ok(Routed {
        src_mac,
        src: ip.src().into(),
        dst: ip.dst().into(),
        proto: ip.protocol(),
        l4,
    })
}

/// Writes the RST that answers `seg` on a port nobody serves (RFC 9293
/// 3.10.7.1), its checksum completed from `pseudo` (the pseudo-header sum
/// for a 20-byte segment, of either family); returns its length.
fn emit_reset(buf: &mut [u8], seg: &TcpPacket<&[u8]>, pseudo: u32) -> usize {
    let (seq, ack, flags) = if seg.flags() & tcpf::ACK != 0 {
        (seg.ack(), 0, tcpf::RST)
    } else {
        (
            0,
            seg.seq().wrapping_add(seg.seq_len()),
            tcpf::RST | tcpf::ACK,
        )
    };
    let n = tcp::emit_header(buf, seg.dst_port(), seg.src_port(), seq, ack, flags, 0);
    let c = checksum::finish(checksum::sum(pseudo, &buf[..n]));
    buf[tcp::CHECKSUM_OFFSET..tcp::CHECKSUM_OFFSET + 2].copy_from_slice(&c.to_be_bytes());
    n
}

/// The gateway of a network: its address and prefix (IPv4, the paths in
/// this file), and on a dual-stack network its IPv6 side (`ipv6.rs`).
#[derive(Debug, Clone)]
pub struct Gateway {
    addr: IpAddr,
    prefix: IpNet,
    /// The IPv4 address and subnet, when the gateway is IPv4 (what its IPv4
    /// paths compare with, per packet).
    ip: Ipv4Addr,
    subnet: Ipv4Net,
    mac: MacAddr,
    /// Routed traffic goes to the NAT (false: an internal network).
    nat: bool,
    icmp_errors: RateLimiter,
    ident: u16,
    v6: Option<ipv6::V6>,
    /// A second address that serves only DNS (and answers ARP and echo):
    /// slirp4netns's layout, gateway .2 and DNS .3.
    dns_ip: Option<Ipv4Addr>,
    /// Whether DNS is served at `dns_ip` (else it only answers ARP).
    dns_serve: bool,
    pub counters: GatewayCounters,
}

impl Gateway {
    /// ICMP errors: Linux's defaults (icmp_msgs_per_sec, icmp_msgs_burst).
    pub const ICMP_ERRORS_PER_SEC: u32 = 1000;
    pub const ICMP_ERRORS_BURST: u32 = 50;

    pub fn new(ip: impl Into<IpAddr>, mac: MacAddr, prefix: IpNet) -> Gateway {
        let addr = ip.into();
        let (ip, subnet) = match (addr, prefix) {
            (IpAddr::V4(a), IpNet::V4(n)) => (a, n),
            // Not IPv4: its IPv4 paths match nothing.
            _ => (Ipv4Addr::UNSPECIFIED, Ipv4Net::default()),
        };
        Gateway {
            addr,
            prefix,
            ip,
            subnet,
            mac,
            nat: false,
            icmp_errors: RateLimiter::new(Self::ICMP_ERRORS_PER_SEC, Self::ICMP_ERRORS_BURST),
            ident: 1,
            v6: None,
            dns_ip: None,
            dns_serve: false,
            counters: GatewayCounters::default(),
        }
    }

    /// Hands routed traffic to the NAT instead of answering unreachable.
    pub fn with_nat(mut self, nat: bool) -> Gateway {
        self.nat = nat;
        self
    }

    /// Serves DNS at `ip` as well as at the gateway's own address; `ip`
    /// answers ARP and echo, and nothing else (no NAT, no host loopback).
    /// Without `serve`, `ip` answers ARP only and drops the rest.
    pub fn with_dns_address(mut self, ip: Ipv4Addr, serve: bool) -> Gateway {
        self.dns_ip = Some(ip);
        self.dns_serve = serve;
        self
    }

    pub fn ip(&self) -> IpAddr {
        self.addr
    }

    /// The DNS-only address, when the network has one.
    pub fn dns_address(&self) -> Option<Ipv4Addr> {
        self.dns_ip
    }

    /// Where a reply to `ip` comes from: the address it was sent to when
    /// that is the DNS-only one, else the gateway's.
    fn reply_src(&self, ip: &Ipv4Packet<&[u8]>) -> Ipv4Addr {
        match self.dns_ip {
            Some(d) if ip.dst() == d => d,
            _ => self.ip,
        }
    }

    pub fn prefix(&self) -> IpNet {
        self.prefix
    }

    pub fn mac(&self) -> MacAddr {
        self.mac
    }

    /// [`Gateway::handle_from`] for a sender with no budget of its own
    /// (tests): only the network's shared limits apply.
    pub fn handle<'a>(
        &mut self,
        frame: &'a [u8],
        vnet: &VnetHdr,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        self.handle_from(frame, vnet, &mut SourceBudget::unlimited(), now, out)
    }

    /// Handles a frame addressed to the gateway's MAC, or a broadcast or
    /// multicast frame (which the switch also floods). `frame` is at least
    /// an Ethernet header long. `budget` is its sender's (the ingress
    /// port's): the echo replies and ICMP errors it is sent are charged to
    /// it, so that one sender cannot spend what the network shares.
    pub fn handle_from<'a>(
        &mut self,
        frame: &'a [u8],
        vnet: &VnetHdr,
        budget: &mut SourceBudget,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return Verdict::Drop(DropReason::Truncated);
        };
        let to_us = eth.dst() == self.mac;
        match eth.ethertype() {
            ethertype::ARP => self.handle_arp(&eth, to_us, budget, now, out),
            ethertype::IPV4 if to_us => self.handle_ipv4(eth, vnet, budget, now, out),
            ethertype::IPV4 if eth.dst().is_broadcast() && is_dhcp_request(eth.payload()) => {
                Verdict::Dhcp
            }
            ethertype::IPV6 if self.v6.is_some() => {
                self.handle_ipv6(eth, to_us, vnet, budget, now, out)
            }
            _ if to_us => Verdict::Drop(DropReason::NotServed),
            _ => Verdict::Ignored,
        }
    }

    fn handle_arp<'a>(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        to_us: bool,
        budget: &mut SourceBudget,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let arp = match ArpPacket::new_checked(eth.payload()) {
            Ok(a) => a,
            Err(_) if to_us => return Verdict::Drop(DropReason::MalformedPacket),
            Err(_) => return Verdict::Ignored,
        };
        let target = arp.target_ip();
        if arp.operation() != arp::OP_REQUEST || (target != self.ip && Some(target) != self.dns_ip)
        {
            return Verdict::Ignored;
        }
        let requester = arp.sender_mac();
        if !requester.is_unicast() {
            return Verdict::Drop(DropReason::MalformedPacket);
        }
        if !budget.replies.allow(now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let buf = out.read_space();
        let mut n = ethernet::emit_header(buf, requester, self.mac, ethertype::ARP);
        n += ArpRepr {
            operation: arp::OP_REPLY,
            sender_mac: self.mac,
            sender_ip: target,
            target_mac: requester,
            target_ip: arp.sender_ip(),
        }
        .emit(&mut buf[n..]);
        self.finish_reply(out, n);
        self.counters.arp_replies += 1;
        Verdict::Reply(None)
    }

    fn handle_ipv4<'a>(
        &mut self,
        eth: EthernetFrame<&'a [u8]>,
        vnet: &VnetHdr,
        budget: &mut SourceBudget,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let payload: &'a [u8] = eth.into_payload();
        let src_mac = eth.src();
        let parsed = if vnet.is_gso() {
            Ipv4Packet::new_checked_gso(payload)
        } else {
            Ipv4Packet::new_checked(payload)
        };
        let Ok(ip) = parsed else {
            return Verdict::Drop(DropReason::MalformedPacket);
        };
        if !ip.verify_checksum() {
            return Verdict::Drop(DropReason::BadChecksum);
        }
        // A renewal, unicast to us.
        if is_dhcp_request(payload) {
            return Verdict::Dhcp;
        }
        let routed = |vnet: &VnetHdr| match routed_from(src_mac, ip, payload, vnet) {
            Ok(r) => Verdict::Nat(r),
            Err(reason) => Verdict::Drop(reason),
        };
        let dst = ip.dst();
        if Some(dst) == self.dns_ip {
            if !is_unicast_host(ip.src()) || !self.dns_serve {
                return Verdict::Drop(DropReason::NotServed);
            }
            let l4 = &payload[ip.header_len().min(payload.len())..];
            let to53 = !ip.is_fragment() && l4.get(2..4) == Some(&[0, 53][..]);
            // DNS over TCP: the NAT's flow to the DNS-over-TCP service, as
            // at the gateway's own address (the switch names this address
            // as the flow's gateway, so nothing else is reached).
            if to53 && ip.protocol() == protocol::TCP {
                return routed(vnet);
            }
            if to53 && ip.protocol() == protocol::UDP {
                let Ok(u) = UdpPacket::new_checked(ip.into_payload()) else {
                    return Verdict::Drop(DropReason::MalformedPacket);
                };
                return Verdict::Dns(DnsQuery {
                    src_mac,
                    src: ip.src().into(),
                    dst: ip.dst().into(),
                    src_port: u.src_port(),
                    message: u.into_payload(),
                });
            }
            return self.deliver_local(&eth, &ip, vnet, budget, now, out);
        }
        if dst == self.ip {
            // Nothing is ever sent to a source that is not a unicast host
            // (RFC 1122 3.2.1.3): 0.0.0.0 is allowed through port security
            // for DHCP, but is no one to answer.
            if !is_unicast_host(ip.src()) {
                return Verdict::Drop(DropReason::NotServed);
            }
            let proto = ip.protocol();
            let l4 = &payload[ip.header_len().min(payload.len())..];
            let dport = (!ip.is_fragment())
                .then(|| l4.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]])))
                .flatten();
            // UDP to port 53 is the embedded DNS's, on every network.
            if proto == protocol::UDP && dport == Some(53) {
                let Ok(u) = UdpPacket::new_checked(ip.into_payload()) else {
                    return Verdict::Drop(DropReason::MalformedPacket);
                };
                return Verdict::Dns(DnsQuery {
                    src_mac,
                    src: ip.src().into(),
                    dst: ip.dst().into(),
                    src_port: u.src_port(),
                    message: u.into_payload(),
                });
            }
            // TCP and UDP to the gateway's address are the NAT's: DNS over
            // TCP, replies to published-port clients shown as the gateway,
            // and (when the endpoint may) the host's loopback. It answers
            // what it does not serve with a RST or port unreachable. On a
            // network without NAT (`--internal`) only DNS over TCP is.
            let tcp_dns = proto == protocol::TCP && dport == Some(53);
            if (self.nat && (proto == protocol::TCP || proto == protocol::UDP)) || tcp_dns {
                return routed(vnet);
            }
            return self.deliver_local(&eth, &ip, vnet, budget, now, out);
        }
        if dst.is_broadcast() || dst.is_multicast() || dst == self.subnet.broadcast() {
            return Verdict::Drop(DropReason::NotServed);
        }
        if self.subnet.contains(&dst) {
            // On-link destinations are reached directly, never through us.
            return Verdict::Drop(DropReason::NoRoute);
        }
        // Routed traffic: the NAT's. On a network without NAT there is no
        // route: say so rather than let the sender hang.
        if self.nat {
            return routed(vnet);
        }
        self.icmp_error(
            &eth,
            &ip,
            msg_type::DEST_UNREACHABLE,
            unreachable::NET,
            budget,
            now,
            out,
            DropReason::NoRoute,
        )
    }

    fn deliver_local(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        ip: &Ipv4Packet<&[u8]>,
        vnet: &VnetHdr,
        budget: &mut SourceBudget,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'static> {
        if ip.is_fragment() {
            return Verdict::Drop(DropReason::Fragment);
        }
        // A GSO super-frame's IPv4 length may not describe the whole frame;
        // the transport header and data run to the end of it.
        let l4 = if vnet.is_gso() {
            &eth.payload()[ip.header_len()..]
        } else {
            ip.payload()
        };
        match ip.protocol() {
            protocol::ICMP => {
                let Ok(icmp) = Icmpv4Packet::new_checked(l4) else {
                    return Verdict::Drop(DropReason::MalformedPacket);
                };
                // A partial checksum is the sender's kernel deferring the
                // work to us; there is nothing to verify yet.
                if !vnet.needs_csum() && !icmp.verify_checksum() {
                    return Verdict::Drop(DropReason::BadChecksum);
                }
                if icmp.msg_type() != msg_type::ECHO_REQUEST {
                    return Verdict::Drop(DropReason::NotServed);
                }
                if !budget.replies.allow(now) {
                    return Verdict::Drop(DropReason::ReplyRateLimited);
                }
                self.echo_reply(eth, ip, icmp.echo_body(), out);
                Verdict::Reply(None)
            }
            protocol::TCP => {
                let Ok(seg) = TcpPacket::new_checked(l4) else {
                    return Verdict::Drop(DropReason::MalformedPacket);
                };
                if seg.flags() & tcpf::RST != 0 {
                    return Verdict::Drop(DropReason::NotServed);
                }
                if !budget.replies.allow(now) {
                    return Verdict::Drop(DropReason::ReplyRateLimited);
                }
                self.tcp_reset(eth, ip, &seg, out);
                Verdict::Reply(Some(DropReason::NotServed))
            }
            protocol::UDP => self.icmp_error(
                eth,
                ip,
                msg_type::DEST_UNREACHABLE,
                unreachable::PORT,
                budget,
                now,
                out,
                DropReason::NotServed,
            ),
            _ => self.icmp_error(
                eth,
                ip,
                msg_type::DEST_UNREACHABLE,
                unreachable::PROTOCOL,
                budget,
                now,
                out,
                DropReason::NotServed,
            ),
        }
    }

    fn next_ident(&mut self) -> u16 {
        self.ident = self.ident.wrapping_add(1);
        self.ident
    }

    /// Writes Ethernet + IPv4 headers from the gateway to the sender of
    /// `eth`/`ip`; returns the offset of the IPv4 payload.
    fn emit_headers_to_sender(
        &mut self,
        buf: &mut [u8],
        eth: &EthernetFrame<&[u8]>,
        ip: &Ipv4Packet<&[u8]>,
        proto: u8,
        payload_len: usize,
    ) -> usize {
        let n = ethernet::emit_header(buf, eth.src(), self.mac, ethertype::IPV4);
        let ident = self.next_ident();
        let src = self.reply_src(ip);
        n + Ipv4Repr {
            src,
            dst: ip.src(),
            protocol: proto,
            payload_len,
            ttl: REPLY_TTL,
            ident,
        }
        .emit(&mut buf[n..])
    }

    fn echo_reply(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        ip: &Ipv4Packet<&[u8]>,
        body: &[u8],
        out: &mut FrameBuf,
    ) {
        let icmp_len = 4 + body.len();
        let buf = out.read_space();
        let off = self.emit_headers_to_sender(buf, eth, ip, protocol::ICMP, icmp_len);
        let n = icmpv4::emit_echo_reply(&mut buf[off..], body);
        self.finish_reply(out, off + n);
        self.counters.echo_replies += 1;
    }

    fn tcp_reset(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        ip: &Ipv4Packet<&[u8]>,
        seg: &TcpPacket<&[u8]>,
        out: &mut FrameBuf,
    ) {
        let buf = out.read_space();
        let off = self.emit_headers_to_sender(buf, eth, ip, protocol::TCP, tcp::MIN_HEADER_LEN);
        let pseudo = checksum::pseudo_header_v4(
            self.reply_src(ip),
            ip.src(),
            protocol::TCP,
            tcp::MIN_HEADER_LEN as u16,
        );
        let n = emit_reset(&mut buf[off..], seg, pseudo);
        self.finish_reply(out, off + n);
        self.counters.resets_sent += 1;
    }

    /// Drops the packet `ip` (counted as `reason`) and tells its sender with
    /// an ICMP error, unless RFC 1122 3.2.2 forbids one; when its sender's
    /// budget or the network's shared rate limit is spent the drop is
    /// counted as `IcmpRateLimited` instead.
    #[allow(clippy::too_many_arguments)]
    fn icmp_error(
        &mut self,
        eth: &EthernetFrame<&[u8]>,
        ip: &Ipv4Packet<&[u8]>,
        kind: u8,
        code: u8,
        budget: &mut SourceBudget,
        now: Time,
        out: &mut FrameBuf,
        reason: DropReason,
    ) -> Verdict<'static> {
        if !is_unicast_host(ip.src()) || ip.is_later_fragment() {
            return Verdict::Drop(reason);
        }
        if ip.protocol() == protocol::ICMP {
            match Icmpv4Packet::new_checked(ip.payload()) {
                Ok(m) if !m.is_error() => {}
                _ => return Verdict::Drop(reason),
            }
        }
        // The sender's own budget first: what it spends of the shared one
        // is then at most its own rate.
        if !budget.icmp_errors.allow(now) || !self.icmp_errors.allow(now) {
            return Verdict::Drop(DropReason::IcmpRateLimited);
        }
        // Quote the header plus 8 bytes of what follows (RFC 792).
        let packet = eth.payload();
        let quote_len = icmpv4::error_quote_len(
            ip.header_len(),
            packet.len().min(ip.total_len().max(ip.header_len())),
        );
        let quote = &packet[..quote_len];
        let icmp_len = icmpv4::HEADER_LEN + quote.len();
        let buf = out.read_space();
        let off = self.emit_headers_to_sender(buf, eth, ip, protocol::ICMP, icmp_len);
        let n = icmpv4::emit_error(&mut buf[off..], kind, code, quote);
        self.finish_reply(out, off + n);
        self.counters.unreachables_sent += 1;
        Verdict::Reply(Some(reason))
    }

    /// Pads to the Ethernet minimum and marks the reply as fully checksummed.
    fn finish_reply(&self, out: &mut FrameBuf, len: usize) {
        let len = if len < MIN_FRAME_LEN {
            out.read_space()[len..MIN_FRAME_LEN].fill(0);
            MIN_FRAME_LEN
        } else {
            len
        };
        out.set_len(len);
        out.set_vnet(VnetHdr::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A verdict as text, to compare.
    fn v(v: Verdict<'_>) -> String {
        match v {
            Verdict::Nat(_) => "nat".into(),
            Verdict::Dns(_) => "dns".into(),
            other => format!("{other:?}"),
        }
    }
    use crate::wire::icmpv4::HEADER_LEN as ICMP_HDR;

    const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
    const C1: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);

    fn gw() -> Gateway {
        Gateway::new(
            GW,
            MacAddr::docker_from_ipv4(GW),
            "172.17.0.0/16".parse().unwrap(),
        )
    }

    fn c1_mac() -> MacAddr {
        MacAddr::docker_from_ipv4(C1)
    }

    fn arp_request(target: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        ethernet::emit_header(&mut f, MacAddr::BROADCAST, c1_mac(), ethertype::ARP);
        ArpRepr {
            operation: arp::OP_REQUEST,
            sender_mac: c1_mac(),
            sender_ip: C1,
            target_mac: MacAddr::ZERO,
            target_ip: target,
        }
        .emit(&mut f[14..]);
        f
    }

    fn ip_frame(dst: Ipv4Addr, proto: u8, l4: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 34 + l4.len()];
        ethernet::emit_header(
            &mut f,
            MacAddr::docker_from_ipv4(GW),
            c1_mac(),
            ethertype::IPV4,
        );
        Ipv4Repr {
            src: C1,
            dst,
            protocol: proto,
            payload_len: l4.len(),
            ttl: 64,
            ident: 9,
        }
        .emit(&mut f[14..]);
        f[34..].copy_from_slice(l4);
        f
    }

    fn echo_request(data: &[u8]) -> Vec<u8> {
        let mut m = vec![8u8, 0, 0, 0, 0x12, 0x34, 0, 7];
        m.extend_from_slice(data);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        m
    }

    fn parse_reply(out: &FrameBuf) -> etherparse::SlicedPacket<'_> {
        etherparse::SlicedPacket::from_ethernet(out.frame()).expect("reply parses")
    }

    fn reply_source(out: &FrameBuf) -> [u8; 4] {
        match &parse_reply(out).net {
            Some(etherparse::NetSlice::Ipv4(ip)) => ip.header().source(),
            _ => panic!("not ipv4"),
        }
    }

    #[test]
    fn answers_arp_for_its_address_only() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let o = v(g.handle(&arp_request(GW), &VnetHdr::default(), Time::ZERO, &mut out));
        assert_eq!(o, v(Verdict::Reply(None)));
        let f = out.frame();
        assert_eq!(f.len(), 60);
        let eth = EthernetFrame::new_checked(f).unwrap();
        assert_eq!(eth.dst(), c1_mac());
        assert_eq!(eth.src(), g.mac());
        let a = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap());
        assert_eq!(a.operation, arp::OP_REPLY);
        assert_eq!((a.sender_mac, a.sender_ip), (g.mac(), GW));
        assert_eq!((a.target_mac, a.target_ip), (c1_mac(), C1));
        let o = v(g.handle(
            &arp_request(Ipv4Addr::new(172, 17, 0, 9)),
            &VnetHdr::default(),
            Time::ZERO,
            &mut out,
        ));
        assert_eq!(o, v(Verdict::Ignored));
        assert_eq!(g.counters.arp_replies, 1);
    }

    #[test]
    fn a_dns_address_answers_arp_echo_and_dns_and_routes_nothing_else() {
        // slirp4netns's layout: DNS at .3 beside the gateway's .1 (here).
        const DNS: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 3);
        let mut g = gw().with_nat(true).with_dns_address(DNS, true);
        let mut out = FrameBuf::new();
        let none = VnetHdr::default();
        let o = v(g.handle(&arp_request(DNS), &none, Time::ZERO, &mut out));
        assert_eq!(o, v(Verdict::Reply(None)));
        let eth = EthernetFrame::new_checked(out.frame()).unwrap();
        let a = ArpRepr::parse(&ArpPacket::new_checked(eth.payload()).unwrap());
        assert_eq!((a.sender_mac, a.sender_ip), (g.mac(), DNS));
        // Echo: answered from the address asked.
        let f = ip_frame(DNS, protocol::ICMP, &echo_request(b"dns"));
        assert_eq!(
            v(g.handle(&f, &none, Time::ZERO, &mut out)),
            v(Verdict::Reply(None))
        );
        assert_eq!(reply_source(&out), DNS.octets());
        // UDP 53: the DNS's.
        let mut q = [0u8; 8 + 12];
        crate::wire::udp::emit_header(&mut q, 5353, 53, 20, 0);
        assert_eq!(
            v(g.handle(
                &ip_frame(DNS, protocol::UDP, &q),
                &none,
                Time::ZERO,
                &mut out
            )),
            "dns"
        );
        // TCP elsewhere: a reset from .3, never the NAT (not the host's
        // loopback, as the gateway's own address may be).
        let mut syn = [0u8; 20];
        tcp::emit_header(&mut syn, 40000, 80, 5000, 0, tcpf::SYN, 1000);
        assert_eq!(
            v(g.handle(
                &ip_frame(DNS, protocol::TCP, &syn),
                &none,
                Time::ZERO,
                &mut out
            )),
            v(Verdict::Reply(Some(DropReason::NotServed)))
        );
        assert_eq!(reply_source(&out), DNS.octets());
        assert_eq!(
            v(g.handle(
                &ip_frame(GW, protocol::TCP, &syn),
                &none,
                Time::ZERO,
                &mut out
            )),
            "nat"
        );
        // DNS over TCP: the NAT's flow to the DNS-over-TCP service.
        let mut syn53 = [0u8; 20];
        tcp::emit_header(&mut syn53, 40000, 53, 5000, 0, tcpf::SYN, 1000);
        assert_eq!(
            v(g.handle(
                &ip_frame(DNS, protocol::TCP, &syn53),
                &none,
                Time::ZERO,
                &mut out
            )),
            "nat"
        );
        // Not serving (--disable-dns): ARP still answered, the rest dropped
        // without a word, so a client times out.
        let mut g = gw().with_nat(true).with_dns_address(DNS, false);
        assert_eq!(
            v(g.handle(&arp_request(DNS), &none, Time::ZERO, &mut out)),
            v(Verdict::Reply(None))
        );
        for f in [
            ip_frame(DNS, protocol::UDP, &q),
            ip_frame(DNS, protocol::TCP, &syn),
            ip_frame(DNS, protocol::ICMP, &echo_request(b"dns")),
        ] {
            assert_eq!(
                v(g.handle(&f, &none, Time::ZERO, &mut out)),
                v(Verdict::Drop(DropReason::NotServed))
            );
        }
    }

    #[test]
    fn echo_reply_is_valid_and_mirrors_payload() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let data: Vec<u8> = (0..100u8).collect();
        let f = ip_frame(GW, protocol::ICMP, &echo_request(&data));
        let o = v(g.handle(&f, &VnetHdr::default(), Time::ZERO, &mut out));
        assert_eq!(o, v(Verdict::Reply(None)));
        let p = parse_reply(&out);
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!("not ipv4")
        };
        let h = ip.header().to_header();
        assert_eq!(h.calc_header_checksum(), h.header_checksum);
        assert_eq!(h.source, GW.octets());
        assert_eq!(h.destination, C1.octets());
        let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else {
            panic!("not icmp")
        };
        assert_eq!(icmp.type_u8(), 0);
        assert_eq!(
            icmp.checksum(),
            icmp.header().icmp_type.calc_checksum(icmp.payload())
        );
        assert_eq!(icmp.payload(), &data[..]);
        assert_eq!(&out.frame()[38..42], &[0x12, 0x34, 0, 7]);
    }

    #[test]
    fn bad_icmp_checksum_is_dropped() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let mut m = echo_request(b"x");
        m[2] ^= 0xff;
        let o = v(g.handle(
            &ip_frame(GW, protocol::ICMP, &m),
            &VnetHdr::default(),
            Time::ZERO,
            &mut out,
        ));
        assert_eq!(o, v(Verdict::Drop(DropReason::BadChecksum)));
    }

    #[test]
    fn tcp_to_gateway_gets_reset() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let mut syn = [0u8; 20];
        tcp::emit_header(&mut syn, 40000, 80, 5000, 0, tcpf::SYN, 1000);
        let o = v(g.handle(
            &ip_frame(GW, protocol::TCP, &syn),
            &VnetHdr::default(),
            Time::ZERO,
            &mut out,
        ));
        assert_eq!(o, v(Verdict::Reply(Some(DropReason::NotServed))));
        let p = parse_reply(&out);
        let Some(etherparse::NetSlice::Ipv4(ip)) = &p.net else {
            panic!()
        };
        let Some(etherparse::TransportSlice::Tcp(t)) = &p.transport else {
            panic!()
        };
        assert!(t.rst() && t.ack());
        assert_eq!(t.acknowledgment_number(), 5001);
        assert_eq!((t.source_port(), t.destination_port()), (80, 40000));
        let want = t
            .to_header()
            .calc_checksum_ipv4(&ip.header().to_header(), t.payload())
            .unwrap();
        assert_eq!(t.checksum(), want);
    }

    #[test]
    fn off_subnet_gets_net_unreachable_rate_limited() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let f = ip_frame(
            Ipv4Addr::new(10, 9, 8, 7),
            protocol::UDP,
            &[0, 1, 0, 2, 0, 8, 0, 0],
        );
        let o = v(g.handle(&f, &VnetHdr::default(), Time::ZERO, &mut out));
        assert_eq!(o, v(Verdict::Reply(Some(DropReason::NoRoute))));
        {
            let p = parse_reply(&out);
            let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else {
                panic!()
            };
            assert_eq!((icmp.type_u8(), icmp.code_u8()), (3, 0));
            assert_eq!(
                icmp.checksum(),
                icmp.header().icmp_type.calc_checksum(icmp.payload())
            );
        }
        // The quote is the original IP header plus 8 bytes.
        assert_eq!(out.frame().len(), 14 + 20 + ICMP_HDR + 28);
        let mut sent = 1;
        for _ in 0..200 {
            if g.handle(&f, &VnetHdr::default(), Time::ZERO, &mut out)
                .is_reply()
            {
                sent += 1;
            }
        }
        assert_eq!(sent, Gateway::ICMP_ERRORS_BURST);
        // Refills with time.
        assert!(g
            .handle(&f, &VnetHdr::default(), Time::from_secs(1), &mut out)
            .is_reply());
    }

    /// A sender's errors come from its own budget (a tenth of the
    /// network's rate, a fifth of its burst) before the shared one: one
    /// flooding sender leaves its neighbours theirs.
    #[test]
    fn one_sender_cannot_spend_its_neighbours_icmp_errors() {
        use crate::ratelimit::{SourceLimits, ICMP_ERRORS};
        let mut g = gw();
        let mut out = FrameBuf::new();
        let h = VnetHdr::default();
        let f = ip_frame(
            Ipv4Addr::new(10, 9, 8, 7),
            protocol::UDP,
            &[0, 1, 0, 2, 0, 8, 0, 0],
        );
        let limits = SourceLimits::default();
        let (mut flooder, mut polite) = (SourceBudget::new(&limits), SourceBudget::new(&limits));
        let burst = (0..200)
            .filter(|_| {
                g.handle_from(&f, &h, &mut flooder, Time::ZERO, &mut out)
                    .is_reply()
            })
            .count();
        assert_eq!(burst, ICMP_ERRORS.burst as usize);
        let o = g.handle_from(&f, &h, &mut flooder, Time::ZERO, &mut out);
        assert_eq!(o.drop_reason(), Some(DropReason::IcmpRateLimited));
        // The same instant, the neighbour is told.
        assert!(g
            .handle_from(&f, &h, &mut polite, Time::ZERO, &mut out)
            .is_reply());
        // For a second: the flooder sends 20 a millisecond, the neighbour
        // one every 20 ms; every one of the neighbour's is answered, the
        // flooder's at its own rate.
        let (mut flooder_told, mut polite_told) = (0, 0);
        for ms in 1..=1000u64 {
            let now = Time(ms * 1_000_000);
            for _ in 0..20 {
                if g.handle_from(&f, &h, &mut flooder, now, &mut out)
                    .is_reply()
                {
                    flooder_told += 1;
                }
            }
            if ms % 20 == 0 && g.handle_from(&f, &h, &mut polite, now, &mut out).is_reply() {
                polite_told += 1;
            }
        }
        assert_eq!(polite_told, 50);
        assert!(
            flooder_told <= ICMP_ERRORS.per_sec + ICMP_ERRORS.burst,
            "{flooder_told}"
        );
    }

    /// Echo replies are charged to the asker: past its budget the request
    /// is dropped (counted), and another asker is still answered.
    #[test]
    fn echo_replies_are_budgeted_per_sender() {
        use crate::ratelimit::{SourceLimits, GATEWAY_REPLIES};
        let mut g = gw();
        let mut out = FrameBuf::new();
        let h = VnetHdr::default();
        let f = ip_frame(GW, protocol::ICMP, &echo_request(b"ping"));
        let limits = SourceLimits::default();
        let (mut flooder, mut polite) = (SourceBudget::new(&limits), SourceBudget::new(&limits));
        let answered = (0..5000)
            .filter(|_| {
                g.handle_from(&f, &h, &mut flooder, Time::ZERO, &mut out)
                    .is_reply()
            })
            .count();
        assert_eq!(answered, GATEWAY_REPLIES.burst as usize);
        let o = g.handle_from(&f, &h, &mut flooder, Time::ZERO, &mut out);
        assert_eq!(o.drop_reason(), Some(DropReason::ReplyRateLimited));
        assert!(g
            .handle_from(&f, &h, &mut polite, Time::ZERO, &mut out)
            .is_reply());
        // Refilled at its rate.
        assert!(g
            .handle_from(&f, &h, &mut flooder, Time::from_secs(1), &mut out)
            .is_reply());
    }

    #[test]
    fn never_answers_icmp_errors_with_errors() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let mut m = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0x45; 28]);
        let c = checksum::checksum(&m);
        m[2..4].copy_from_slice(&c.to_be_bytes());
        let f = ip_frame(Ipv4Addr::new(10, 0, 0, 1), protocol::ICMP, &m);
        let o = v(g.handle(&f, &VnetHdr::default(), Time::ZERO, &mut out));
        assert_eq!(o, v(Verdict::Drop(DropReason::NoRoute)));
    }

    #[test]
    fn never_answers_an_unspecified_source() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let mut f = ip_frame(GW, protocol::ICMP, &echo_request(b"x"));
        f[26..30].copy_from_slice(&[0, 0, 0, 0]);
        f[24..26].copy_from_slice(&[0, 0]);
        let c = checksum::checksum(&f[14..34]);
        f[24..26].copy_from_slice(&c.to_be_bytes());
        let o = v(g.handle(&f, &VnetHdr::default(), Time::ZERO, &mut out));
        assert_eq!(o, v(Verdict::Drop(DropReason::NotServed)));
    }

    #[test]
    fn malformed_input_is_dropped_not_panicking() {
        let mut g = gw();
        let mut out = FrameBuf::new();
        let mut f = ip_frame(GW, protocol::ICMP, &echo_request(b"abc"));
        f[16..18].copy_from_slice(&2000u16.to_be_bytes()); // total length > frame
        assert_eq!(
            v(g.handle(&f, &VnetHdr::default(), Time::ZERO, &mut out)),
            v(Verdict::Drop(DropReason::MalformedPacket))
        );
        for n in 0..f.len() {
            let _ = g.handle(&f[..n], &VnetHdr::default(), Time::ZERO, &mut out);
        }
    }
}
