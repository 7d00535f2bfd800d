//! The gateway's IPv6 side, on a dual-stack network: the router of the
//! network's IPv6 subnet, with its global address (fd00:172:17::1 on the
//! default network) and a link-local one formed from its MAC, the address
//! Router Advertisements come from and hosts' default routes learn.
//!
//! What it answers, and what it hands on:
//!
//! | packet (to the gateway's MAC, or multicast)      | verdict                                  |
//! |--------------------------------------------------|------------------------------------------|
//! | Neighbor Solicitation for one of its addresses   | Neighbor Advertisement (router flag)     |
//! | Router Solicitation                              | Router Advertisement to the asker        |
//! | echo request to one of its addresses             | echo reply                               |
//! | UDP to its port 53                               | `Dns`                                    |
//! | TCP to its port 53; TCP/UDP to it with NAT on    | `Nat` (DNS over TCP, host loopback)      |
//! | other TCP / UDP / protocols to it                | RST / port unreachable / parameter problem |
//! | to an address of its subnet, or link-local       | dropped (on-link: never through it)      |
//! | routed, NAT on                                   | `Nat`                                    |
//! | routed, hop limit spent                          | time exceeded                            |
//! | routed, no NAT (`--internal`)                    | unreachable, no route                    |
//!
//! Neighbor Discovery is accepted only as RFC 4861 validates it: hop limit
//! 255 (it cannot have been routed), code 0, a good checksum. Errors are
//! never sent about an error, to a source that is not a unicast host, or
//! beyond the rate limit the IPv4 errors share (RFC 4443 2.4).
//!
//! Router Advertisements carry the prefix (autonomous when it is a /64, so a
//! SLAAC client forms its address), the link MTU and the gateway as DNS
//! server (RDNSS, RFC 8106); the switch sends one unsolicited to every port
//! every [`ADVERT_INTERVAL`], and one answers each solicitation.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::Ipv6Net;

use super::{DnsQuery, Gateway, Routed, Verdict, REPLY_TTL};
use crate::frame::FrameBuf;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::checksum;
use crate::wire::ethernet::{self, ethertype, EthernetFrame, MacAddr};
use crate::wire::icmpv6::{self, kind, na_flags, Icmpv6Packet, RouterAdvertRepr};
use crate::wire::ipv6::{self as w, next_header, Ipv6Packet, UpperLayer};
use crate::wire::tcp::{self, flags as tcpf, TcpPacket};
use crate::wire::udp::UdpPacket;
use crate::wire::vnet::VnetHdr;

/// Unsolicited Router Advertisements, this often (RFC 4861's
/// MaxRtrAdvInterval may be 4..1800 s; a third of the router lifetime
/// keeps hosts' default routes alive through two lost ones).
pub const ADVERT_INTERVAL: Duration = Duration::from_secs(600);
/// How long hosts keep the gateway as default router (RFC 4861's default:
/// 3 × MaxRtrAdvInterval).
const ROUTER_LIFETIME: u16 = 1800;
/// Prefix lifetimes: radvd's defaults (a day, four hours).
const VALID_LIFETIME: u32 = 86_400;
const PREFERRED_LIFETIME: u32 = 14_400;
/// NDP messages travel one link: sent, and required, with hop limit 255.
const NDP_HOP_LIMIT: u8 = 255;
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

/// The gateway's IPv6 state.
#[derive(Debug, Clone)]
pub(super) struct V6 {
    ip: Ipv6Addr,
    subnet: Ipv6Net,
    link_local: Ipv6Addr,
    /// The link MTU advertised.
    mtu: u32,
    /// When the next unsolicited Router Advertisement is due.
    next_advert: Time,
}

/// A host a reply may go to: not `::`, not a group.
fn is_unicast_host(a: Ipv6Addr) -> bool {
    !(a.is_unspecified() || a.is_multicast() || a.is_loopback())
}

fn is_link_local(a: Ipv6Addr) -> bool {
    a.segments()[0] & 0xffc0 == 0xfe80
}

/// A routed IPv6 packet, checked as [`super::routed`] checks IPv4: the
/// header chain walked to the transport, no fragment.
pub(super) fn routed_from<'a>(
    src_mac: MacAddr,
    ip: Ipv6Packet<&'a [u8]>,
) -> Result<Routed<'a>, DropReason> {
    let upper = ip.upper_layer().map_err(|_| DropReason::MalformedPacket)?;
    routed_parts(src_mac, &ip, &upper)
}

fn routed_parts<'a>(
    src_mac: MacAddr,
    ip: &Ipv6Packet<&'a [u8]>,
    upper: &UpperLayer,
) -> Result<Routed<'a>, DropReason> {
    if upper.fragment.is_some() {
        // As for IPv4: flows are keyed by ports, which later fragments lack.
        return Err(DropReason::Fragment);
    }
    if ip.hop_limit() <= 1 {
        return Err(DropReason::NoRoute);
    }
    let packet: &'a [u8] = packet_of(ip);
    Ok(Routed {
        src_mac,
        src: ip.src().into(),
        dst: ip.dst().into(),
        proto: upper.protocol,
        l4: packet.get(upper.offset..).unwrap_or(&[]),
    })
}

/// The packet's bytes with the view's lifetime (`Ipv6Packet::packet`
/// borrows the view).
fn packet_of<'a>(ip: &Ipv6Packet<&'a [u8]>) -> &'a [u8] {
    let whole: &'a [u8] = ip.as_bytes();
    &whole[..ip.packet().len()]
}

impl Gateway {
    /// Makes the gateway the IPv6 router of `subnet` too, at `ip`,
    /// advertising `mtu` as the link's.
    pub fn with_ipv6(mut self, ip: Ipv6Addr, subnet: Ipv6Net, mtu: u32) -> Gateway {
        self.v6 = Some(V6 {
            ip,
            subnet,
            link_local: w::link_local_from_mac(self.mac),
            mtu,
            next_advert: Time::ZERO,
        });
        self
    }

    /// The gateway's IPv6 address, on a dual-stack network.
    pub fn ipv6(&self) -> Option<Ipv6Addr> {
        self.v6.as_ref().map(|v| v.ip)
    }

    /// Its link-local address (where its Router Advertisements come from).
    pub fn ipv6_link_local(&self) -> Option<Ipv6Addr> {
        self.v6.as_ref().map(|v| v.link_local)
    }

    /// Writes an unsolicited Router Advertisement to all nodes into `out`
    /// when one is due; the switch sends it to every port of the network.
    pub fn advert_due(&mut self, now: Time, out: &mut FrameBuf) -> bool {
        let Some(v) = &mut self.v6 else {
            return false;
        };
        if now < v.next_advert {
            return false;
        }
        v.next_advert = now.saturating_add(ADVERT_INTERVAL);
        self.router_advert(w::multicast_mac(ALL_NODES), ALL_NODES, out);
        true
    }

    pub(super) fn handle_ipv6<'a>(
        &mut self,
        eth: EthernetFrame<&'a [u8]>,
        to_us: bool,
        vnet: &VnetHdr,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let Some(v) = &self.v6 else {
            return Verdict::Ignored;
        };
        let (gw, link_local, subnet) = (v.ip, v.link_local, v.subnet);
        let src_mac = eth.src();
        let bad = |to_us: bool| {
            if to_us {
                Verdict::Drop(DropReason::MalformedPacket)
            } else {
                Verdict::Ignored
            }
        };
        let Ok(ip) = Ipv6Packet::new_checked(eth.into_payload()) else {
            return bad(to_us);
        };
        let Ok(upper) = ip.upper_layer() else {
            return bad(to_us);
        };
        let (src, dst) = (ip.src(), ip.dst());
        let packet = packet_of(&ip);
        let l4: &'a [u8] = packet.get(upper.offset..).unwrap_or(&[]);
        let icmp = (upper.protocol == next_header::ICMPV6 && upper.fragment.is_none())
            .then(|| Icmpv6Packet::new_checked(l4).ok())
            .flatten();
        if dst.is_multicast() {
            // Solicitations for the gateway come to groups (its
            // solicited-node group, all-routers); anything else multicast
            // is the containers' own business, flooded by the switch.
            return match icmp.map(|m| m.msg_type()) {
                Some(kind::NEIGHBOR_SOLICIT) => self.neighbor_solicit(src_mac, &ip, l4, out),
                Some(kind::ROUTER_SOLICIT) => self.router_solicit(src_mac, &ip, l4, out),
                _ => Verdict::Ignored,
            };
        }
        if !to_us {
            return Verdict::Ignored;
        }
        if !is_unicast_host(src) {
            return Verdict::Drop(DropReason::NotServed);
        }
        if dst == gw || dst == link_local {
            if upper.fragment.is_some() {
                return Verdict::Drop(DropReason::Fragment);
            }
            return self.deliver_local_v6(src_mac, &ip, &upper, l4, vnet, now, out);
        }
        if is_link_local(dst) || subnet.contains(&dst) {
            // On-link destinations are reached directly, never through us.
            return Verdict::Drop(DropReason::NoRoute);
        }
        match routed_parts(src_mac, &ip, &upper) {
            Ok(r) if self.nat => Verdict::Nat(r),
            Ok(_) => self.icmp6_error(
                src_mac,
                &ip,
                &upper,
                kind::DST_UNREACHABLE,
                icmpv6::unreachable::NO_ROUTE,
                0,
                now,
                out,
                DropReason::NoRoute,
            ),
            // Hop limit spent: say so, as a router does (traceroute6).
            Err(DropReason::NoRoute) => self.icmp6_error(
                src_mac,
                &ip,
                &upper,
                kind::TIME_EXCEEDED,
                0,
                0,
                now,
                out,
                DropReason::NoRoute,
            ),
            Err(r) => Verdict::Drop(r),
        }
    }

    /// What is addressed to one of the gateway's own IPv6 addresses.
    #[allow(clippy::too_many_arguments)]
    fn deliver_local_v6<'a>(
        &mut self,
        src_mac: MacAddr,
        ip: &Ipv6Packet<&'a [u8]>,
        upper: &UpperLayer,
        l4: &'a [u8],
        vnet: &VnetHdr,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let dport = l4.get(2..4).map(|p| u16::from_be_bytes([p[0], p[1]]));
        match upper.protocol {
            next_header::ICMPV6 => {
                let Ok(m) = Icmpv6Packet::new_checked(l4) else {
                    return Verdict::Drop(DropReason::MalformedPacket);
                };
                // A partial checksum is the sender's kernel deferring the
                // work to us; there is nothing to verify yet.
                if !vnet.needs_csum() && !m.verify_checksum(ip.src(), ip.dst()) {
                    return Verdict::Drop(DropReason::BadChecksum);
                }
                match m.msg_type() {
                    kind::ECHO_REQUEST => {
                        self.echo_reply_v6(src_mac, ip, &l4[icmpv6::HEADER_LEN..], out);
                        Verdict::Reply(None)
                    }
                    kind::NEIGHBOR_SOLICIT => self.neighbor_solicit(src_mac, ip, l4, out),
                    kind::ROUTER_SOLICIT => self.router_solicit(src_mac, ip, l4, out),
                    _ => Verdict::Drop(DropReason::NotServed),
                }
            }
            next_header::UDP if dport == Some(53) => {
                let Ok(u) = UdpPacket::new_checked(l4) else {
                    return Verdict::Drop(DropReason::MalformedPacket);
                };
                Verdict::Dns(DnsQuery {
                    src_mac,
                    src: ip.src().into(),
                    dst: ip.dst().into(),
                    src_port: u.src_port(),
                    message: u.into_payload(),
                })
            }
            // As for IPv4: TCP and UDP to the gateway are the NAT's (DNS
            // over TCP everywhere; the host's loopback where NAT is on).
            next_header::TCP | next_header::UDP
                if self.nat || (upper.protocol == next_header::TCP && dport == Some(53)) =>
            {
                match routed_parts(src_mac, ip, upper) {
                    Ok(r) => Verdict::Nat(r),
                    Err(r) => Verdict::Drop(r),
                }
            }
            next_header::TCP => {
                let Ok(seg) = TcpPacket::new_checked(l4) else {
                    return Verdict::Drop(DropReason::MalformedPacket);
                };
                if seg.flags() & tcpf::RST != 0 {
                    return Verdict::Drop(DropReason::NotServed);
                }
                self.tcp_reset_v6(src_mac, ip, &seg, out);
                Verdict::Reply(Some(DropReason::NotServed))
            }
            next_header::UDP => self.icmp6_error(
                src_mac,
                ip,
                upper,
                kind::DST_UNREACHABLE,
                icmpv6::unreachable::PORT,
                0,
                now,
                out,
                DropReason::NotServed,
            ),
            // Parameter problem, unrecognized next header (code 1), pointing
            // at the fixed header's next-header field when nothing came
            // between; behind extension headers, just dropped.
            _ if upper.offset == w::HEADER_LEN => self.icmp6_error(
                src_mac,
                ip,
                upper,
                kind::PARAM_PROBLEM,
                1,
                w::field::NEXT_HEADER as u32,
                now,
                out,
                DropReason::NotServed,
            ),
            _ => Verdict::Drop(DropReason::NotServed),
        }
    }

    /// A Neighbor Solicitation: answered when it asks for one of the
    /// gateway's addresses and passes RFC 4861 7.1.1's checks.
    fn neighbor_solicit<'a>(
        &mut self,
        src_mac: MacAddr,
        ip: &Ipv6Packet<&[u8]>,
        l4: &[u8],
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let Some(v) = &self.v6 else {
            return Verdict::Ignored;
        };
        let (gw, ll) = (v.ip, v.link_local);
        let Ok(m) = Icmpv6Packet::new_checked(l4) else {
            return Verdict::Ignored;
        };
        let Some(target) = m.target() else {
            return Verdict::Drop(DropReason::MalformedPacket);
        };
        if target != gw && target != ll {
            // Another host's address: its owner answers (flooded).
            return Verdict::Ignored;
        }
        if !ndp_valid(ip, &m) {
            return Verdict::Drop(DropReason::MalformedPacket);
        }
        let src = ip.src();
        // DAD for our address (from ::) is answered to all nodes, and
        // unsolicited: the prober must learn the address is taken.
        let (dst_ip, dst_mac, solicited) = if src.is_unspecified() {
            (ALL_NODES, w::multicast_mac(ALL_NODES), 0)
        } else {
            (src, src_mac, na_flags::SOLICITED)
        };
        let buf = out.read_space();
        let off = self.emit_v6_headers(
            buf,
            dst_mac,
            target,
            dst_ip,
            next_header::ICMPV6,
            32,
            NDP_HOP_LIMIT,
        );
        let flags = na_flags::ROUTER | na_flags::OVERRIDE | solicited;
        let n = icmpv6::emit_neighbor_advert(&mut buf[off..], flags, target, self.mac);
        if let Ok(mut p) = Icmpv6Packet::new_checked(&mut buf[off..off + n]) {
            p.fill_checksum(target, dst_ip);
        }
        self.finish_reply(out, off + n);
        self.counters.neighbor_adverts += 1;
        Verdict::Reply(None)
    }

    /// A Router Solicitation: a Router Advertisement back to the asker (or
    /// to all nodes, for one that has no address yet).
    fn router_solicit<'a>(
        &mut self,
        src_mac: MacAddr,
        ip: &Ipv6Packet<&[u8]>,
        l4: &[u8],
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let Ok(m) = Icmpv6Packet::new_checked(l4) else {
            return Verdict::Ignored;
        };
        if !ndp_valid(ip, &m) {
            return Verdict::Drop(DropReason::MalformedPacket);
        }
        let src = ip.src();
        let dst = if src.is_unspecified() { ALL_NODES } else { src };
        // The reply goes out of the asker's port only, so the unicast MAC
        // serves either way.
        self.router_advert(src_mac, dst, out);
        Verdict::Reply(None)
    }

    fn router_advert(&mut self, dst_mac: MacAddr, dst: Ipv6Addr, out: &mut FrameBuf) {
        let Some(v) = &self.v6 else {
            return;
        };
        let ra = RouterAdvertRepr {
            hop_limit: REPLY_TTL,
            router_lifetime: ROUTER_LIFETIME,
            mac: self.mac,
            mtu: v.mtu,
            prefix: v.subnet.network(),
            prefix_len: v.subnet.prefix_len(),
            valid_lifetime: VALID_LIFETIME,
            preferred_lifetime: PREFERRED_LIFETIME,
            dns: Some((v.ip, u32::from(ROUTER_LIFETIME))),
        };
        let src = v.link_local;
        let len = ra.len();
        let buf = out.read_space();
        let off = self.emit_v6_headers(
            buf,
            dst_mac,
            src,
            dst,
            next_header::ICMPV6,
            len,
            NDP_HOP_LIMIT,
        );
        let n = ra.emit(&mut buf[off..]);
        if let Ok(mut p) = Icmpv6Packet::new_checked(&mut buf[off..off + n]) {
            p.fill_checksum(src, dst);
        }
        self.finish_reply(out, off + n);
        self.counters.router_adverts += 1;
    }

    fn echo_reply_v6(
        &mut self,
        src_mac: MacAddr,
        ip: &Ipv6Packet<&[u8]>,
        body: &[u8],
        out: &mut FrameBuf,
    ) {
        let (from, to) = (ip.dst(), ip.src());
        let len = icmpv6::HEADER_LEN + body.len();
        let buf = out.read_space();
        if w::HEADER_LEN + ethernet::HEADER_LEN + len > buf.len() {
            return;
        }
        let off = self.emit_v6_headers(buf, src_mac, from, to, next_header::ICMPV6, len, REPLY_TTL);
        let n = icmpv6::emit_echo_reply(&mut buf[off..], body);
        if let Ok(mut p) = Icmpv6Packet::new_checked(&mut buf[off..off + n]) {
            p.fill_checksum(from, to);
        }
        self.finish_reply(out, off + n);
        self.counters.echo_replies += 1;
    }

    fn tcp_reset_v6(
        &mut self,
        src_mac: MacAddr,
        ip: &Ipv6Packet<&[u8]>,
        seg: &TcpPacket<&[u8]>,
        out: &mut FrameBuf,
    ) {
        let (from, to) = (ip.dst(), ip.src());
        // RFC 9293 3.10.7.1, as for IPv4.
        let (seq, ack, flags) = if seg.flags() & tcpf::ACK != 0 {
            (seg.ack(), 0, tcpf::RST)
        } else {
            (
                0,
                seg.seq().wrapping_add(seg.seq_len()),
                tcpf::RST | tcpf::ACK,
            )
        };
        let buf = out.read_space();
        let off = self.emit_v6_headers(
            buf,
            src_mac,
            from,
            to,
            next_header::TCP,
            tcp::MIN_HEADER_LEN,
            REPLY_TTL,
        );
        let n = tcp::emit_header(
            &mut buf[off..],
            seg.dst_port(),
            seg.src_port(),
            seq,
            ack,
            flags,
            0,
        );
        let pseudo = checksum::pseudo_header_v6(from, to, next_header::TCP, n as u32);
        let c = checksum::finish(checksum::sum(pseudo, &buf[off..off + n]));
        buf[off + tcp::CHECKSUM_OFFSET..off + tcp::CHECKSUM_OFFSET + 2]
            .copy_from_slice(&c.to_be_bytes());
        self.finish_reply(out, off + n);
        self.counters.resets_sent += 1;
    }

    /// Drops `ip` (counted as `reason`) and tells its sender with an
    /// ICMPv6 error, unless RFC 4443 2.4 (e) forbids one (about an error,
    /// to a group or `::`) or the shared rate limit is spent
    /// (`IcmpRateLimited`).
    #[allow(clippy::too_many_arguments)]
    fn icmp6_error(
        &mut self,
        src_mac: MacAddr,
        ip: &Ipv6Packet<&[u8]>,
        upper: &UpperLayer,
        msg_type: u8,
        code: u8,
        param: u32,
        now: Time,
        out: &mut FrameBuf,
        reason: DropReason,
    ) -> Verdict<'static> {
        let src = ip.src();
        if !is_unicast_host(src) || ip.dst().is_multicast() {
            return Verdict::Drop(reason);
        }
        if upper.protocol == next_header::ICMPV6 {
            let packet = ip.packet();
            match packet.get(upper.offset) {
                // Informational messages (128 and up) may be answered.
                Some(t) if *t >= 128 && upper.fragment.is_none_or(|f| f.is_first()) => {}
                _ => return Verdict::Drop(reason),
            }
        }
        if !self.icmp_errors.allow(now) {
            return Verdict::Drop(DropReason::IcmpRateLimited);
        }
        let Some(v) = &self.v6 else {
            return Verdict::Drop(reason);
        };
        // From the address the packet reached us at: the global one (a
        // routed packet names someone else), the link-local for a packet
        // to it.
        let from = if ip.dst() == v.link_local {
            v.link_local
        } else {
            v.ip
        };
        let packet = ip.packet();
        let quote = &packet[..packet.len().min(icmpv6::MAX_ERROR_QUOTE)];
        let len = 8 + quote.len();
        let buf = out.read_space();
        let off =
            self.emit_v6_headers(buf, src_mac, from, src, next_header::ICMPV6, len, REPLY_TTL);
        let n = icmpv6::emit_error(&mut buf[off..], msg_type, code, param, quote);
        if let Ok(mut p) = Icmpv6Packet::new_checked(&mut buf[off..off + n]) {
            p.fill_checksum(from, src);
        }
        self.finish_reply(out, off + n);
        self.counters.unreachables_sent += 1;
        Verdict::Reply(Some(reason))
    }

    /// Ethernet + IPv6 headers from the gateway; returns the payload offset.
    #[allow(clippy::too_many_arguments)]
    fn emit_v6_headers(
        &self,
        buf: &mut [u8],
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next: u8,
        payload_len: usize,
        hop_limit: u8,
    ) -> usize {
        let n = ethernet::emit_header(buf, dst_mac, self.mac, ethertype::IPV6);
        w::emit_header(&mut buf[n..], src, dst, next, payload_len as u16, hop_limit);
        n + w::HEADER_LEN
    }
}

/// RFC 4861 7.1.1 / 6.1.1: NDP that may have been routed (hop limit below
/// 255), with a code, or with a bad checksum is not Neighbor Discovery.
fn ndp_valid(ip: &Ipv6Packet<&[u8]>, m: &Icmpv6Packet<&[u8]>) -> bool {
    ip.hop_limit() == NDP_HOP_LIMIT && m.code() == 0 && m.verify_checksum(ip.src(), ip.dst())
}
