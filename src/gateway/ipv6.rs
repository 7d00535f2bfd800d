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
//! server (RDNSS, RFC 8106); the switch sends one unsolicited to every
//! container endpoint (not to uplinks) every [`ADVERT_INTERVAL`], and one
//! answers each solicitation.

use std::net::Ipv6Addr;
use std::time::Duration;

use ipnet::Ipv6Net;

use super::{DnsQuery, Gateway, Routed, Verdict, REPLY_TTL};
use crate::frame::FrameBuf;
use crate::ratelimit::SourceBudget;
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

    /// Gives the gateway's IPv6 side a link-local address other than the
    /// one its MAC forms (slirp4netns's router is fe80::2). A no-op on an
    /// IPv4-only gateway.
    pub fn with_ipv6_link_local(mut self, link_local: Ipv6Addr) -> Gateway {
        if let Some(v) = &mut self.v6 {
            v.link_local = link_local;
        }
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
        budget: &mut SourceBudget,
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
                Some(kind::NEIGHBOR_SOLICIT) => {
                    self.neighbor_solicit(src_mac, &ip, l4, budget, now, out)
                }
                Some(kind::ROUTER_SOLICIT) => {
                    self.router_solicit(src_mac, &ip, l4, budget, now, out)
                }
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
            return self.deliver_local_v6(src_mac, &ip, &upper, l4, vnet, budget, now, out);
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
                budget,
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
                budget,
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
        budget: &mut SourceBudget,
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
                        if !budget.replies.allow(now) {
                            return Verdict::Drop(DropReason::ReplyRateLimited);
                        }
                        self.echo_reply_v6(src_mac, ip, &l4[icmpv6::HEADER_LEN..], out);
                        Verdict::Reply(None)
                    }
                    kind::NEIGHBOR_SOLICIT => {
                        self.neighbor_solicit(src_mac, ip, l4, budget, now, out)
                    }
                    kind::ROUTER_SOLICIT => self.router_solicit(src_mac, ip, l4, budget, now, out),
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
                if !budget.replies.allow(now) {
                    return Verdict::Drop(DropReason::ReplyRateLimited);
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
                budget,
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
                budget,
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
        budget: &mut SourceBudget,
        now: Time,
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
        if !budget.replies.allow(now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
        }
        let src = ip.src();
        // DAD for our address (from ::) is answered to all nodes, and
        // unsolicited: the prober must learn the address is taken.
        let (dst_ip, dst_mac, solicited) = if src.is_unspecified() {
            (ALL_NODES, w::multicast_mac(ALL_NODES), 0)
        } else {
            (src, src_mac, na_flags::SOLICITED)
        };
        let flags = na_flags::ROUTER | na_flags::OVERRIDE | solicited;
        let mac = self.mac;
        self.icmp6_reply(out, dst_mac, target, dst_ip, NDP_HOP_LIMIT, 32, |b| {
            icmpv6::emit_neighbor_advert(b, flags, target, mac)
        });
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
        budget: &mut SourceBudget,
        now: Time,
        out: &mut FrameBuf,
    ) -> Verdict<'a> {
        let Ok(m) = Icmpv6Packet::new_checked(l4) else {
            return Verdict::Ignored;
        };
        if !ndp_valid(ip, &m) {
            return Verdict::Drop(DropReason::MalformedPacket);
        }
        if !budget.replies.allow(now) {
            return Verdict::Drop(DropReason::ReplyRateLimited);
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
        self.icmp6_reply(out, dst_mac, src, dst, NDP_HOP_LIMIT, ra.wire_len(), |b| {
            ra.emit(b)
        });
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
        if w::HEADER_LEN + ethernet::HEADER_LEN + len > out.read_space().len() {
            return;
        }
        self.icmp6_reply(out, src_mac, from, to, REPLY_TTL, len, |b| {
            icmpv6::emit_echo_reply(b, body)
        });
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
        let len = tcp::MIN_HEADER_LEN;
        let buf = out.read_space();
        let off = self.emit_v6_headers(buf, src_mac, from, to, next_header::TCP, len, REPLY_TTL);
        let pseudo = checksum::pseudo_header_v6(from, to, next_header::TCP, len as u32);
        let n = super::emit_reset(&mut buf[off..], seg, pseudo);
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
        budget: &mut SourceBudget,
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
        if !budget.icmp_errors.allow(now) || !self.icmp_errors.allow(now) {
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
        self.icmp6_reply(out, src_mac, from, src, REPLY_TTL, len, |b| {
            icmpv6::emit_error(b, msg_type, code, param, quote)
        });
        self.counters.unreachables_sent += 1;
        Verdict::Reply(Some(reason))
    }

    /// An ICMPv6 message from the gateway (`src`) to `dst` in `out`, ready
    /// to send: the headers, the message `write` puts at the payload
    /// (`len` bytes at most) and returns the length of, its checksum.
    #[allow(clippy::too_many_arguments)]
    fn icmp6_reply(
        &self,
        out: &mut FrameBuf,
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        hop_limit: u8,
        len: usize,
        write: impl FnOnce(&mut [u8]) -> usize,
    ) {
        let buf = out.read_space();
        let off = self.emit_v6_headers(buf, dst_mac, src, dst, next_header::ICMPV6, len, hop_limit);
        let n = write(&mut buf[off..]);
        if let Ok(mut p) = Icmpv6Packet::new_checked(&mut buf[off..off + n]) {
            p.fill_checksum(src, dst);
        }
        self.finish_reply(out, off + n);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::icmpv6::option;
    use etherparse::{NetSlice, SlicedPacket, TransportSlice};

    const GW4: std::net::Ipv4Addr = std::net::Ipv4Addr::new(172, 17, 0, 1);
    const GW: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, 1);
    const C1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, 2);

    fn gw(nat: bool) -> Gateway {
        Gateway::new(
            GW4,
            MacAddr::docker_from_ipv4(GW4),
            "172.17.0.0/16".parse().unwrap(),
        )
        .with_nat(nat)
        .with_ipv6(GW, "fd00:172:17::/64".parse().unwrap(), 1500)
    }

    fn c1_mac() -> MacAddr {
        MacAddr([2, 0x42, 0xac, 0x11, 0, 2])
    }

    /// A frame from C1 (`src`) to `dst` carrying `next`/`l4` (an ICMPv6
    /// message gets its checksum), to `dst_mac`.
    fn frame(
        dst_mac: MacAddr,
        src: Ipv6Addr,
        dst: Ipv6Addr,
        next: u8,
        hop: u8,
        l4: &[u8],
    ) -> Vec<u8> {
        let mut f = vec![0u8; 54 + l4.len()];
        ethernet::emit_header(&mut f, dst_mac, c1_mac(), ethertype::IPV6);
        w::emit_header(&mut f[14..], src, dst, next, l4.len() as u16, hop);
        f[54..].copy_from_slice(l4);
        if next == next_header::ICMPV6 {
            let mut m = Icmpv6Packet::new_checked(&mut f[54..]).unwrap();
            m.fill_checksum(src, dst);
        }
        f
    }

    fn to_gw(dst: Ipv6Addr, next: u8, l4: &[u8]) -> Vec<u8> {
        frame(MacAddr::docker_from_ipv4(GW4), C1, dst, next, 64, l4)
    }

    fn ns(target: Ipv6Addr) -> Vec<u8> {
        let mut m = vec![kind::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&target.octets());
        m.extend_from_slice(&[option::SOURCE_LL_ADDR, 1]);
        m.extend_from_slice(&c1_mac().0);
        m
    }

    fn handle(g: &mut Gateway, f: &[u8], out: &mut FrameBuf) -> String {
        match g.handle(f, &VnetHdr::default(), Time::ZERO, out) {
            Verdict::Nat(r) => format!("nat {} {} {}", r.src, r.dst, r.proto),
            Verdict::Dns(q) => format!("dns {} {}", q.src, q.dst),
            other => format!("{other:?}"),
        }
    }

    /// The reply's ICMPv6 type, its IPv6 source and destination and hop
    /// limit, checked by etherparse (checksum included).
    fn reply(out: &FrameBuf) -> (u8, Ipv6Addr, Ipv6Addr, u8) {
        let p = SlicedPacket::from_ethernet(out.frame()).expect("reply parses");
        let Some(NetSlice::Ipv6(ip)) = p.net else {
            panic!("not IPv6")
        };
        let h = ip.header();
        let Some(TransportSlice::Icmpv6(m)) = p.transport else {
            panic!("not ICMPv6")
        };
        let payload = &out.frame()[54..];
        let src = h.source_addr();
        let dst = h.destination_addr();
        assert_eq!(
            m.icmp_type()
                .calc_checksum(src.octets(), dst.octets(), m.payload())
                .unwrap(),
            m.checksum(),
            "checksum"
        );
        (payload[0], src, dst, h.hop_limit())
    }

    #[test]
    fn neighbor_solicitations_for_its_addresses_are_answered() {
        let mut g = gw(true);
        let mut out = FrameBuf::new();
        let ll = g.ipv6_link_local().unwrap();
        for target in [GW, ll] {
            let snm = w::solicited_node(target);
            let f = frame(
                w::multicast_mac(snm),
                C1,
                snm,
                next_header::ICMPV6,
                255,
                &ns(target),
            );
            assert_eq!(handle(&mut g, &f, &mut out), "Reply(None)");
            assert_eq!(reply(&out), (kind::NEIGHBOR_ADVERT, target, C1, 255));
            let m = Icmpv6Packet::new_checked(&out.frame()[54..]).unwrap();
            assert_eq!(m.target(), Some(target));
            // Router, solicited, override; its own MAC as target address.
            assert_eq!(out.frame()[58], 0xe0);
            let o: Vec<_> = m.ndp_options().unwrap().unwrap().collect();
            assert_eq!(o[0].unwrap().link_layer_addr(), Some(g.mac()));
            assert_eq!(
                EthernetFrame::new_checked(out.frame()).unwrap().dst(),
                c1_mac()
            );
        }
        // Another host's address: not ours to answer.
        let other = Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, 3);
        let snm = w::solicited_node(other);
        let f = frame(
            w::multicast_mac(snm),
            C1,
            snm,
            next_header::ICMPV6,
            255,
            &ns(other),
        );
        assert_eq!(handle(&mut g, &f, &mut out), "Ignored");
        // Routed (hop limit below 255): not Neighbor Discovery.
        let snm = w::solicited_node(GW);
        let f = frame(
            w::multicast_mac(snm),
            C1,
            snm,
            next_header::ICMPV6,
            64,
            &ns(GW),
        );
        assert_eq!(handle(&mut g, &f, &mut out), "Drop(MalformedPacket)");
        // Duplicate Address Detection of the gateway's address: the answer
        // goes to all nodes, not solicited.
        let f = frame(
            w::multicast_mac(snm),
            Ipv6Addr::UNSPECIFIED,
            snm,
            next_header::ICMPV6,
            255,
            &ns(GW)[..24],
        );
        assert_eq!(handle(&mut g, &f, &mut out), "Reply(None)");
        assert_eq!(reply(&out), (kind::NEIGHBOR_ADVERT, GW, ALL_NODES, 255));
        assert_eq!(out.frame()[58], 0xa0);
        assert_eq!(g.counters.neighbor_adverts, 3);
    }

    #[test]
    fn router_solicitations_and_the_timer_get_advertisements() {
        let mut g = gw(true);
        let mut out = FrameBuf::new();
        let ll = g.ipv6_link_local().unwrap();
        let all_routers = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
        let rs = [kind::ROUTER_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
        let f = frame(
            w::multicast_mac(all_routers),
            C1,
            all_routers,
            next_header::ICMPV6,
            255,
            &rs,
        );
        assert_eq!(handle(&mut g, &f, &mut out), "Reply(None)");
        assert_eq!(reply(&out), (kind::ROUTER_ADVERT, ll, C1, 255));
        let m = Icmpv6Packet::new_checked(&out.frame()[54..]).unwrap();
        let opts: Vec<_> = m
            .ndp_options()
            .unwrap()
            .unwrap()
            .map(|o| o.unwrap())
            .collect();
        let kinds: Vec<u8> = opts.iter().map(|o| o.kind).collect();
        assert_eq!(
            kinds,
            [
                option::SOURCE_LL_ADDR,
                option::MTU,
                option::PREFIX_INFO,
                option::RDNSS
            ]
        );
        assert_eq!(
            &opts[2].bytes[16..32],
            &"fd00:172:17::".parse::<Ipv6Addr>().unwrap().octets()
        );
        assert_eq!(&opts[3].bytes[8..24], &GW.octets());
        assert_eq!(&opts[1].bytes[4..8], &1500u32.to_be_bytes());
        // Unsolicited: at once, then not again before the interval.
        assert!(g.advert_due(Time::ZERO, &mut out));
        assert_eq!(reply(&out), (kind::ROUTER_ADVERT, ll, ALL_NODES, 255));
        assert!(!g.advert_due(Time::from_secs(10), &mut out));
        assert!(g.advert_due(Time::from_secs(601), &mut out));
        // An IPv4-only gateway has nothing to advertise.
        let mut v4 = Gateway::new(
            GW4,
            MacAddr::docker_from_ipv4(GW4),
            "172.17.0.0/16".parse().unwrap(),
        );
        assert!(!v4.advert_due(Time::ZERO, &mut out));
        assert_eq!(handle(&mut v4, &f, &mut out), "Ignored");
    }

    #[test]
    fn echo_dns_and_what_it_does_not_serve() {
        let mut g = gw(false);
        let mut out = FrameBuf::new();
        let echo = [kind::ECHO_REQUEST, 0, 0, 0, 0x12, 0x34, 0, 1, b'h', b'i'];
        assert_eq!(
            handle(&mut g, &to_gw(GW, next_header::ICMPV6, &echo), &mut out),
            "Reply(None)"
        );
        assert_eq!(reply(&out), (kind::ECHO_REPLY, GW, C1, 64));
        assert_eq!(&out.frame()[58..], &echo[4..]);
        // A bad checksum is dropped.
        let mut bad = to_gw(GW, next_header::ICMPV6, &echo);
        bad[60] ^= 1;
        assert_eq!(handle(&mut g, &bad, &mut out), "Drop(BadChecksum)");
        // UDP 53 is the DNS's; other UDP a port unreachable; TCP a RST.
        let udp = [
            0x30, 0x39, 0, 53, 0, 20, 0, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            handle(&mut g, &to_gw(GW, next_header::UDP, &udp), &mut out),
            format!("dns {C1} {GW}")
        );
        let mut udp9 = udp;
        udp9[3] = 9;
        assert_eq!(
            handle(&mut g, &to_gw(GW, next_header::UDP, &udp9), &mut out),
            "Reply(Some(NotServed))"
        );
        assert_eq!(reply(&out), (kind::DST_UNREACHABLE, GW, C1, 64));
        assert_eq!(out.frame()[55], icmpv6::unreachable::PORT);
        let mut syn = [0u8; 20];
        syn[..4].copy_from_slice(&[0x30, 0x39, 0, 22]);
        syn[12] = 5 << 4;
        syn[13] = tcpf::SYN;
        assert_eq!(
            handle(&mut g, &to_gw(GW, next_header::TCP, &syn), &mut out),
            "Reply(Some(NotServed))"
        );
        {
            let p = SlicedPacket::from_ethernet(out.frame()).unwrap();
            let Some(TransportSlice::Tcp(t)) = p.transport else {
                panic!("not TCP")
            };
            assert!(t.rst() && t.ack());
        }
        // TCP to port 53 is DNS over TCP, a NAT flow even without NAT.
        syn[3] = 53;
        assert_eq!(
            handle(&mut g, &to_gw(GW, next_header::TCP, &syn), &mut out),
            format!("nat {C1} {GW} 6")
        );
    }

    #[test]
    fn routed_traffic_goes_to_the_nat_or_gets_an_unreachable() {
        let out_addr: Ipv6Addr = "2001:db8::5".parse().unwrap();
        let syn = {
            let mut s = [0u8; 20];
            s[12] = 5 << 4;
            s[13] = tcpf::SYN;
            s
        };
        let mut out = FrameBuf::new();
        let mut nat = gw(true);
        assert_eq!(
            handle(&mut nat, &to_gw(out_addr, next_header::TCP, &syn), &mut out),
            format!("nat {C1} {out_addr} 6")
        );
        let mut internal = gw(false);
        assert_eq!(
            handle(
                &mut internal,
                &to_gw(out_addr, next_header::TCP, &syn),
                &mut out
            ),
            "Reply(Some(NoRoute))"
        );
        assert_eq!(reply(&out), (kind::DST_UNREACHABLE, GW, C1, 64));
        assert_eq!(out.frame()[55], icmpv6::unreachable::NO_ROUTE);
        // The quote is the offending packet.
        assert_eq!(
            &out.frame()[62..62 + 40 + 20],
            &to_gw(out_addr, next_header::TCP, &syn)[14..]
        );
        // Hop limit spent: time exceeded.
        let f = frame(
            MacAddr::docker_from_ipv4(GW4),
            C1,
            out_addr,
            next_header::TCP,
            1,
            &syn,
        );
        assert_eq!(handle(&mut nat, &f, &mut out), "Reply(Some(NoRoute))");
        assert_eq!(reply(&out).0, kind::TIME_EXCEEDED);
        // On-link and link-local destinations are never routed.
        let on_link: Ipv6Addr = "fd00:172:17::9".parse().unwrap();
        assert_eq!(
            handle(&mut nat, &to_gw(on_link, next_header::TCP, &syn), &mut out),
            "Drop(NoRoute)"
        );
        let ll: Ipv6Addr = "fe80::9".parse().unwrap();
        assert_eq!(
            handle(&mut nat, &to_gw(ll, next_header::TCP, &syn), &mut out),
            "Drop(NoRoute)"
        );
        // No error about an error, nor to the unspecified address.
        let err = [kind::DST_UNREACHABLE, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            handle(
                &mut internal,
                &to_gw(out_addr, next_header::ICMPV6, &err),
                &mut out
            ),
            "Drop(NoRoute)"
        );
        let f = frame(
            MacAddr::docker_from_ipv4(GW4),
            Ipv6Addr::UNSPECIFIED,
            out_addr,
            next_header::TCP,
            64,
            &syn,
        );
        assert_eq!(handle(&mut internal, &f, &mut out), "Drop(NotServed)");
    }

    #[test]
    fn malformed_ipv6_never_panics() {
        let mut g = gw(true);
        let mut out = FrameBuf::new();
        let good = to_gw(
            GW,
            next_header::ICMPV6,
            &[kind::ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1],
        );
        for n in 0..good.len() {
            let _ = handle(&mut g, &good[..n], &mut out);
        }
        // Every byte of the header and the message flipped in turn.
        for i in 14..good.len() {
            let mut f = good.clone();
            f[i] ^= 0xff;
            let _ = handle(&mut g, &f, &mut out);
        }
    }
}
