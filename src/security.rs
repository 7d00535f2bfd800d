//! Port security: what an endpoint port may send. An endpoint (a container's
//! TAP) owns one MAC, one IPv4 address given by the address manager, and
//! its IPv6 addresses: the static one on a dual-stack network and the two
//! its kernel forms from its MAC (link-local, SLAAC on the network's /64);
//! a frame claiming any other source identity — another container's, or
//! the gateway's — is dropped before the bridge can learn from it. Trusted
//! ports (an attached uplink) carry many hosts and are not checked.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::stats::DropReason;
use crate::wire::arp::ArpPacket;
use crate::wire::ethernet::{self, ethertype, HEADER_LEN};
use crate::wire::icmpv6::{self, Icmpv6Packet};
use crate::wire::ipv4::{self, protocol};
use crate::wire::ipv6::{self, next_header, Ipv6Packet};
use crate::wire::MacAddr;
use crate::wire::{dhcp, udp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortPolicy {
    /// The only source MAC the port may use.
    pub mac: Option<MacAddr>,
    /// The only source IPv4 address the port may use (0.0.0.0 is also
    /// allowed, for DHCP requests — UDP 68 to 67 — and ARP probes).
    pub ipv4: Option<Ipv4Addr>,
    /// A sole tenant's network (the slirp4netns mode's): any host address
    /// of this subnet passes besides `ipv4`, which stays the endpoint's own
    /// address (where its published ports go).
    pub ipv4_subnet: Option<SubnetSources>,
    /// The IPv6 source addresses the port may use (`::` is also allowed
    /// for Duplicate Address Detection and MLD reports, which are sent
    /// before an address is usable).
    pub ipv6: Option<Ipv6Sources>,
    /// Only IPv4, ARP and IPv6 frames: no VLAN tags (which would smuggle
    /// frames past these checks), no other protocols.
    pub restrict_ethertypes: bool,
}

/// The IPv4 sources a sole tenant may use: the host addresses of its
/// subnet, but for the network and broadcast addresses and the gateway's
/// own (its address and its DNS address), which are no host's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetSources {
    pub subnet: ipnet::Ipv4Net,
    pub gateway: [Option<Ipv4Addr>; 2],
}

impl SubnetSources {
    #[inline]
    pub fn allows(&self, ip: Ipv4Addr) -> bool {
        let n = self.subnet;
        n.contains(&ip)
            && ip != n.network()
            && ip != n.broadcast()
            && !self.gateway.contains(&Some(ip))
    }
}

/// An endpoint's own IPv6 addresses. The link-local and SLAAC ones are
/// formed from its MAC (modified EUI-64, the kernel's default
/// `addr_gen_mode`), which port security already pins, so no other
/// endpoint can have them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Sources {
    pub link_local: Ipv6Addr,
    /// The static address from the network's IPv6 subnet.
    pub global: Option<Ipv6Addr>,
    /// The network's /64 + the MAC's EUI-64 (what a SLAAC client forms
    /// from the gateway's Router Advertisement).
    pub slaac: Option<Ipv6Addr>,
}

impl Ipv6Sources {
    #[inline]
    pub fn owns(&self, a: Ipv6Addr) -> bool {
        a == self.link_local || Some(a) == self.global || Some(a) == self.slaac
    }
}

impl PortPolicy {
    /// No checks: an uplink with many hosts behind it.
    pub const TRUSTED: PortPolicy = PortPolicy {
        mac: None,
        ipv4: None,
        ipv4_subnet: None,
        ipv6: None,
        restrict_ethertypes: false,
    };

    /// The policy of a container endpoint: its MAC, its IPv4 address, and
    /// in IPv6 its link-local address (until [`PortPolicy::with_ipv6`]
    /// gives it more).
    pub fn endpoint(mac: MacAddr, ipv4: Ipv4Addr) -> PortPolicy {
        PortPolicy {
            mac: Some(mac),
            ipv4: Some(ipv4),
            ipv4_subnet: None,
            ipv6: Some(Ipv6Sources {
                link_local: ipv6::link_local_from_mac(mac),
                global: None,
                slaac: None,
            }),
            restrict_ethertypes: true,
        }
    }

    /// On a dual-stack network: the static address, and the SLAAC address
    /// the endpoint may form on the network's subnet when it is a /64.
    pub fn with_ipv6(mut self, global: Option<Ipv6Addr>, subnet: Option<ipnet::Ipv6Net>) -> Self {
        if let (Some(s), Some(mac)) = (&mut self.ipv6, self.mac) {
            s.global = global;
            s.slaac = subnet
                .filter(|n| n.prefix_len() == 64)
                .map(|n| ipv6::addr_from_mac(n.network(), mac));
        }
        self
    }

    /// Checks a frame (at least an Ethernet header long) against the policy.
    #[inline]
    pub fn check(&self, frame: &[u8]) -> Result<(), DropReason> {
        if let Some(mac) = self.mac {
            if frame[ethernet::field::SRC] != mac.0 {
                return Err(DropReason::SpoofedSrcMac);
            }
        }
        if *self == PortPolicy::TRUSTED {
            return Ok(());
        }
        let et = &frame[ethernet::field::ETHERTYPE];
        match u16::from_be_bytes([et[0], et[1]]) {
            ethertype::IPV4 => {
                let l3 = &frame[HEADER_LEN..];
                let Some(ip) = ipv4::peek(l3) else {
                    return Err(DropReason::MalformedPacket);
                };
                let udp_ports = (ip.protocol == protocol::UDP)
                    .then(|| l3.get(ip.header_len..).and_then(udp::peek_ports))
                    .flatten();
                if let Some(own) = self.ipv4 {
                    if ip.src.is_unspecified() {
                        // 0.0.0.0 is a client that has no address yet: it
                        // may ask a DHCP server and nothing else. Routed
                        // anywhere else it would share flow keys and
                        // limits with every other address-less sender.
                        if udp_ports != Some((dhcp::CLIENT_PORT, dhcp::SERVER_PORT)) {
                            return Err(DropReason::SpoofedSrcIp);
                        }
                    } else if ip.src != own && !self.ipv4_subnet.is_some_and(|n| n.allows(ip.src)) {
                        return Err(DropReason::SpoofedSrcIp);
                    }
                }
                // Only the gateway serves DHCP: a container answering from
                // port 67 would hand out leases on the others' behalf.
                if udp_ports.is_some_and(|(sport, _)| sport == dhcp::SERVER_PORT) {
                    return Err(DropReason::RogueDhcpServer);
                }
                Ok(())
            }
            ethertype::ARP => {
                let Ok(arp) = ArpPacket::new_checked(&frame[HEADER_LEN..]) else {
                    return Err(DropReason::MalformedPacket);
                };
                if let Some(mac) = self.mac {
                    if arp.sender_mac() != mac {
                        return Err(DropReason::SpoofedArp);
                    }
                }
                if let Some(ip) = self.ipv4 {
                    let s = arp.sender_ip();
                    let in_subnet = self.ipv4_subnet.is_some_and(|n| n.allows(s));
                    if s != ip && !s.is_unspecified() && !in_subnet {
                        return Err(DropReason::SpoofedArp);
                    }
                }
                Ok(())
            }
            ethertype::IPV6 => self.check_ipv6(&frame[HEADER_LEN..]),
            _ if self.restrict_ethertypes => Err(DropReason::EtherTypeNotAllowed),
            _ => Ok(()),
        }
    }
}

impl PortPolicy {
    /// IPv6 from an endpoint. Whatever the extension headers in front of
    /// it: no Router Advertisement or Redirect (RA guard, RFC 6105: only
    /// the gateway routes), no Neighbor Discovery naming another MAC as
    /// the sender's or the target's link-layer address (what ARP spoofing
    /// is to IPv4), no NDP in fragments (RFC 6980), no DHCPv6 server
    /// messages (UDP from port 547), and no first fragment that does not
    /// hold the whole header chain (RFC 7112), since that is how the rules
    /// above would be evaded. Later fragments pass: without their first
    /// they reassemble into nothing.
    ///
    /// The source must be one of the endpoint's own addresses; `::` only
    /// for a Neighbor Solicitation to a solicited-node group (Duplicate
    /// Address Detection) and MLD reports (RFC 4862 5.4.2, RFC 3810 5.2.13),
    /// and a Neighbor Advertisement may only name one of its own addresses
    /// as its target (it cannot claim another's).
    fn check_ipv6(&self, l3: &[u8]) -> Result<(), DropReason> {
        let Ok(ip) = Ipv6Packet::new_checked(l3) else {
            return Err(DropReason::MalformedPacket);
        };
        let src = ip.src();
        let unspecified_src = src.is_unspecified();
        if let Some(own) = &self.ipv6 {
            if !unspecified_src && !own.owns(src) {
                return Err(DropReason::SpoofedSrcIp);
            }
        }
        let Ok(upper) = ip.upper_layer() else {
            return Err(DropReason::MalformedPacket);
        };
        if upper.fragment.is_some_and(|f| !f.is_first()) {
            return if unspecified_src && self.ipv6.is_some() {
                Err(DropReason::SpoofedSrcIp)
            } else {
                Ok(())
            };
        }
        let l4 = &ip.packet()[upper.offset..];
        if unspecified_src && self.ipv6.is_some() {
            let dad_or_mld = upper.protocol == next_header::ICMPV6
                && upper.fragment.is_none()
                && match l4.first().copied() {
                    Some(icmpv6::kind::NEIGHBOR_SOLICIT) => is_solicited_node(ip.dst()),
                    Some(icmpv6::kind::MLD_REPORT | icmpv6::kind::MLD2_REPORT) => true,
                    _ => false,
                };
            if !dad_or_mld {
                return Err(DropReason::SpoofedSrcIp);
            }
        }
        match upper.protocol {
            next_header::ICMPV6 => {
                let Ok(icmp) = Icmpv6Packet::new_checked(l4) else {
                    return Err(DropReason::MalformedPacket);
                };
                match icmp.msg_type() {
                    icmpv6::kind::ROUTER_ADVERT | icmpv6::kind::REDIRECT => {
                        return Err(DropReason::RogueRouter)
                    }
                    icmpv6::kind::ROUTER_SOLICIT
                    | icmpv6::kind::NEIGHBOR_SOLICIT
                    | icmpv6::kind::NEIGHBOR_ADVERT => {}
                    _ => return Ok(()),
                }
                if upper.fragment.is_some() {
                    return Err(DropReason::SpoofedNd);
                }
                if icmp.msg_type() == icmpv6::kind::NEIGHBOR_ADVERT {
                    match (&self.ipv6, icmp.target()) {
                        (_, None) => return Err(DropReason::MalformedPacket),
                        (Some(own), Some(t)) if !own.owns(t) => return Err(DropReason::SpoofedNd),
                        _ => {}
                    }
                }
                let Some(Ok(options)) = icmp.ndp_options() else {
                    return Err(DropReason::MalformedPacket);
                };
                for o in options {
                    let Ok(o) = o else {
                        return Err(DropReason::MalformedPacket);
                    };
                    if let (Some(own), Some(claimed)) = (self.mac, o.link_layer_addr()) {
                        if claimed != own {
                            return Err(DropReason::SpoofedNd);
                        }
                    }
                }
                Ok(())
            }
            next_header::UDP => match udp::peek_ports(l4) {
                None => Err(DropReason::MalformedPacket),
                Some((sport, _)) if sport == DHCPV6_SERVER_PORT => Err(DropReason::RogueDhcpServer),
                Some(_) => Ok(()),
            },
            // The headers a first fragment must hold, as the UDP case
            // asks for its ports.
            next_header::TCP if l4.len() < 4 => Err(DropReason::MalformedPacket),
            _ => Ok(()),
        }
    }
}

/// ff02::1:ffXX:XXXX, where Neighbor Solicitations for an address go.
fn is_solicited_node(a: Ipv6Addr) -> bool {
    let s = a.segments();
    s[..6] == [0xff02, 0, 0, 0, 0, 1] && s[6] >> 8 == 0xff
}

/// DHCPv6 servers and relays send from this port (RFC 8415); clients
/// from 546.
const DHCPV6_SERVER_PORT: u16 = 547;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::arp::{ArpRepr, OP_REPLY};
    use crate::wire::ethernet::emit_header;

    const IP: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);

    fn policy() -> PortPolicy {
        PortPolicy::endpoint(MacAddr::docker_from_ipv4(IP), IP)
    }

    fn ipv4_frame(src_mac: MacAddr, src_ip: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 34];
        emit_header(&mut f, MacAddr::BROADCAST, src_mac, ethertype::IPV4);
        f[14] = 0x45;
        f[26..30].copy_from_slice(&src_ip.octets());
        f
    }

    fn arp_frame(sender_mac: MacAddr, sender_ip: Ipv4Addr) -> Vec<u8> {
        let mut f = vec![0u8; 42];
        emit_header(
            &mut f,
            MacAddr::BROADCAST,
            MacAddr::docker_from_ipv4(IP),
            ethertype::ARP,
        );
        ArpRepr {
            operation: OP_REPLY,
            sender_mac,
            sender_ip,
            target_mac: MacAddr::ZERO,
            target_ip: Ipv4Addr::new(172, 17, 0, 3),
        }
        .emit(&mut f[14..]);
        f
    }

    #[test]
    fn own_identity_passes() {
        let own = MacAddr::docker_from_ipv4(IP);
        assert_eq!(policy().check(&ipv4_frame(own, IP)), Ok(()));
        assert_eq!(policy().check(&arp_frame(own, IP)), Ok(()));
        assert_eq!(
            policy().check(&arp_frame(own, Ipv4Addr::UNSPECIFIED)),
            Ok(()),
            "an ARP probe"
        );
    }

    /// A UDP datagram from `src`, ports `sport` -> `dport`.
    fn udp_frame(src: Ipv4Addr, sport: u16, dport: u16) -> Vec<u8> {
        let own = MacAddr::docker_from_ipv4(IP);
        let mut f = vec![0u8; 42];
        emit_header(&mut f, MacAddr::BROADCAST, own, ethertype::IPV4);
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&src.octets());
        f[34..36].copy_from_slice(&sport.to_be_bytes());
        f[36..38].copy_from_slice(&dport.to_be_bytes());
        f
    }

    #[test]
    fn the_unspecified_source_may_only_ask_dhcp() {
        let any = Ipv4Addr::UNSPECIFIED;
        // A DHCP client without an address yet.
        assert_eq!(policy().check(&udp_frame(any, 68, 67)), Ok(()));
        // The same source for anything else is refused: other UDP, TCP,
        // ICMP, or a truncated header that hides its ports.
        assert_eq!(
            policy().check(&udp_frame(any, 68, 53)),
            Err(DropReason::SpoofedSrcIp)
        );
        assert_eq!(
            policy().check(&udp_frame(any, 5000, 67)),
            Err(DropReason::SpoofedSrcIp)
        );
        let mut tcp = udp_frame(any, 68, 67);
        tcp[23] = 6;
        assert_eq!(policy().check(&tcp), Err(DropReason::SpoofedSrcIp));
        assert_eq!(
            policy().check(&ipv4_frame(MacAddr::docker_from_ipv4(IP), any)),
            Err(DropReason::SpoofedSrcIp)
        );
        // The endpoint's own address is not limited to DHCP.
        assert_eq!(policy().check(&udp_frame(IP, 5000, 53)), Ok(()));
    }

    #[test]
    fn a_sole_tenant_sends_from_its_subnet_only() {
        // The slirp4netns mode's tenant: its own address, or any other of
        // its network's (DHCP's .15, an alias); nothing outside it, and
        // still only from its own MAC.
        let own = MacAddr::docker_from_ipv4(IP);
        let sole = PortPolicy {
            ipv4_subnet: Some(SubnetSources {
                subnet: "172.17.0.0/16".parse().unwrap(),
                gateway: [
                    Some(Ipv4Addr::new(172, 17, 0, 1)),
                    Some(Ipv4Addr::new(172, 17, 0, 3)),
                ],
            }),
            ..policy()
        };
        let other_in_subnet = Ipv4Addr::new(172, 17, 3, 15);
        for ok in [IP, other_in_subnet] {
            assert_eq!(sole.check(&ipv4_frame(own, ok)), Ok(()), "{ok}");
            assert_eq!(sole.check(&arp_frame(own, ok)), Ok(()), "{ok}");
        }
        for bad in [
            Ipv4Addr::new(192, 168, 77, 7),
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::new(172, 18, 0, 2),
            // The network's reserved addresses: no host's.
            Ipv4Addr::new(172, 17, 0, 0),
            Ipv4Addr::new(172, 17, 255, 255),
            Ipv4Addr::new(172, 17, 0, 1),
            Ipv4Addr::new(172, 17, 0, 3),
        ] {
            assert_eq!(
                sole.check(&ipv4_frame(own, bad)),
                Err(DropReason::SpoofedSrcIp),
                "{bad}"
            );
            assert_eq!(
                sole.check(&arp_frame(own, bad)),
                Err(DropReason::SpoofedArp),
                "{bad}"
            );
        }
        let stranger = MacAddr::docker_from_ipv4(Ipv4Addr::new(172, 17, 0, 3));
        assert_eq!(
            sole.check(&ipv4_frame(stranger, IP)),
            Err(DropReason::SpoofedSrcMac)
        );
        // An ordinary endpoint keeps its one address.
        assert_eq!(
            policy().check(&ipv4_frame(own, other_in_subnet)),
            Err(DropReason::SpoofedSrcIp)
        );
    }

    #[test]
    fn spoofs_are_refused() {
        let own = MacAddr::docker_from_ipv4(IP);
        let other = MacAddr::docker_from_ipv4(Ipv4Addr::new(172, 17, 0, 3));
        let gw = Ipv4Addr::new(172, 17, 0, 1);
        assert_eq!(
            policy().check(&ipv4_frame(other, IP)),
            Err(DropReason::SpoofedSrcMac)
        );
        assert_eq!(
            policy().check(&ipv4_frame(own, gw)),
            Err(DropReason::SpoofedSrcIp)
        );
        // Claiming the gateway's address in ARP (ARP spoofing).
        assert_eq!(
            policy().check(&arp_frame(own, gw)),
            Err(DropReason::SpoofedArp)
        );
        assert_eq!(
            policy().check(&arp_frame(other, IP)),
            Err(DropReason::SpoofedArp)
        );
        let mut vlan = ipv4_frame(own, IP);
        vlan[12..14].copy_from_slice(&ethertype::VLAN.to_be_bytes());
        assert_eq!(policy().check(&vlan), Err(DropReason::EtherTypeNotAllowed));
        assert_eq!(
            policy().check(&ipv4_frame(own, IP)[..20]),
            Err(DropReason::MalformedPacket)
        );
    }

    #[test]
    fn endpoints_cannot_serve_dhcp() {
        let own = MacAddr::docker_from_ipv4(IP);
        let mut f = vec![0u8; 42];
        emit_header(&mut f, MacAddr::BROADCAST, own, ethertype::IPV4);
        f[14] = 0x45;
        f[23] = 17;
        f[26..30].copy_from_slice(&IP.octets());
        f[34..36].copy_from_slice(&67u16.to_be_bytes());
        assert_eq!(policy().check(&f), Err(DropReason::RogueDhcpServer));
        f[34..36].copy_from_slice(&68u16.to_be_bytes());
        assert_eq!(policy().check(&f), Ok(()));
    }

    #[test]
    fn trusted_ports_pass_anything() {
        let other = MacAddr([2, 9, 9, 9, 9, 9]);
        let mut f = ipv4_frame(other, Ipv4Addr::new(8, 8, 8, 8));
        f[12..14].copy_from_slice(&0x88ccu16.to_be_bytes());
        assert_eq!(PortPolicy::TRUSTED.check(&f), Ok(()));
    }

    mod v6 {
        use super::*;
        use crate::wire::icmpv6::{kind, option};
        use crate::wire::ipv6::{emit_header as emit_ipv6, next_header as nh};
        use std::net::Ipv6Addr;

        const LL: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0x42, 0xacff, 0xfe11, 2);
        const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

        fn own() -> MacAddr {
            MacAddr::docker_from_ipv4(IP)
        }

        /// An IPv6 frame from the endpoint's MAC: `exts` extension headers
        /// (type, length) in front of an upper layer of type `upper` whose
        /// bytes are `l4`.
        fn frame(exts: &[(u8, usize)], upper: u8, l4: &[u8]) -> Vec<u8> {
            let ext_len: usize = exts.iter().map(|e| e.1).sum();
            let mut f = vec![0u8; 14 + 40 + ext_len];
            emit_header(&mut f, MacAddr::BROADCAST, own(), ethertype::IPV6);
            let first = exts.first().map_or(upper, |e| e.0);
            emit_ipv6(
                &mut f[14..],
                LL,
                ALL_NODES,
                first,
                (ext_len + l4.len()) as u16,
                255,
            );
            let mut off = 54;
            for (i, &(k, len)) in exts.iter().enumerate() {
                f[off] = exts.get(i + 1).map_or(upper, |e| e.0);
                if k != nh::FRAGMENT {
                    f[off + 1] = (len / 8 - 1) as u8;
                }
                off += len;
            }
            f.extend_from_slice(l4);
            f
        }

        /// An NDP message of `msg_type` with one link-layer option naming
        /// `mac` (and the sender's own link-local as the target of an NS or
        /// NA).
        fn ndp(msg_type: u8, mac: MacAddr) -> Vec<u8> {
            let off = crate::wire::icmpv6::ndp_options_offset(msg_type).unwrap();
            let mut m = vec![0u8; off + 8];
            m[0] = msg_type;
            if off >= 24 {
                m[8..24].copy_from_slice(&LL.octets());
            }
            m[off] = if msg_type == kind::NEIGHBOR_ADVERT {
                option::TARGET_LL_ADDR
            } else {
                option::SOURCE_LL_ADDR
            };
            m[off + 1] = 1;
            m[off + 2..off + 8].copy_from_slice(&mac.0);
            m
        }

        #[test]
        fn a_containers_own_ipv6_passes() {
            let echo = [kind::ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1];
            assert_eq!(policy().check(&frame(&[], nh::ICMPV6, &echo)), Ok(()));
            for t in [
                kind::ROUTER_SOLICIT,
                kind::NEIGHBOR_SOLICIT,
                kind::NEIGHBOR_ADVERT,
            ] {
                assert_eq!(
                    policy().check(&frame(&[], nh::ICMPV6, &ndp(t, own()))),
                    Ok(()),
                    "{t}"
                );
            }
            // MLD reports come behind Hop-by-Hop (router alert).
            let mld = [143, 0, 0, 0, 0, 0, 0, 0];
            assert_eq!(
                policy().check(&frame(&[(nh::HOP_BY_HOP, 8)], nh::ICMPV6, &mld)),
                Ok(())
            );
            // A DHCPv6 client, TCP, and a later fragment of anything.
            assert_eq!(
                policy().check(&frame(&[], nh::UDP, &[2, 34, 2, 35, 0, 8, 0, 0])),
                Ok(())
            );
            assert_eq!(policy().check(&frame(&[], nh::TCP, &[0u8; 20])), Ok(()));
            let mut later = frame(
                &[(nh::FRAGMENT, 8)],
                nh::ICMPV6,
                &[kind::ROUTER_ADVERT, 0, 0, 0],
            );
            later[54 + 2..54 + 4].copy_from_slice(&(100u16 << 3).to_be_bytes());
            assert_eq!(policy().check(&later), Ok(()));
        }

        #[test]
        fn router_advertisements_and_redirects_are_refused_behind_any_header() {
            for t in [kind::ROUTER_ADVERT, kind::REDIRECT] {
                let m = ndp(t, own());
                for exts in [
                    &[][..],
                    &[(nh::DST_OPTS, 8)][..],
                    &[(nh::HOP_BY_HOP, 8), (nh::DST_OPTS, 16)][..],
                    &[(nh::FRAGMENT, 8)][..],
                    &[(nh::DST_OPTS, 8), (nh::FRAGMENT, 8), (nh::DST_OPTS, 8)][..],
                ] {
                    assert_eq!(
                        policy().check(&frame(exts, nh::ICMPV6, &m)),
                        Err(DropReason::RogueRouter),
                        "type {t} behind {exts:?}"
                    );
                }
            }
            // Uplinks carry the network's routers.
            let ra = frame(&[], nh::ICMPV6, &ndp(kind::ROUTER_ADVERT, own()));
            assert_eq!(PortPolicy::TRUSTED.check(&ra), Ok(()));
        }

        #[test]
        fn neighbor_discovery_for_another_mac_is_refused() {
            let other = MacAddr::docker_from_ipv4(Ipv4Addr::new(172, 17, 0, 3));
            for t in [
                kind::ROUTER_SOLICIT,
                kind::NEIGHBOR_SOLICIT,
                kind::NEIGHBOR_ADVERT,
            ] {
                assert_eq!(
                    policy().check(&frame(&[], nh::ICMPV6, &ndp(t, other))),
                    Err(DropReason::SpoofedNd),
                    "{t}"
                );
                // NDP in a fragment, even naming its own MAC (RFC 6980).
                assert_eq!(
                    policy().check(&frame(&[(nh::FRAGMENT, 8)], nh::ICMPV6, &ndp(t, own()))),
                    Err(DropReason::SpoofedNd),
                    "{t}"
                );
            }
            // A zero-length option, and an NS too short for its target.
            let mut bad = ndp(kind::NEIGHBOR_SOLICIT, own());
            bad[25] = 0;
            assert_eq!(
                policy().check(&frame(&[], nh::ICMPV6, &bad)),
                Err(DropReason::MalformedPacket)
            );
            assert_eq!(
                policy().check(&frame(&[], nh::ICMPV6, &bad[..20])),
                Err(DropReason::MalformedPacket)
            );
        }

        /// `frame` with another source address and destination.
        fn from(src: Ipv6Addr, dst: Ipv6Addr, upper: u8, l4: &[u8]) -> Vec<u8> {
            let mut f = frame(&[], upper, l4);
            f[22..38].copy_from_slice(&src.octets());
            f[38..54].copy_from_slice(&dst.octets());
            f
        }

        fn dual_stack() -> PortPolicy {
            policy().with_ipv6(
                Some("fd00:172:17::2".parse().unwrap()),
                Some("fd00:172:17::/64".parse().unwrap()),
            )
        }

        #[test]
        fn only_its_own_ipv6_sources_pass() {
            let echo = [kind::ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1];
            let gw: Ipv6Addr = "fd00:172:17::1".parse().unwrap();
            let p = dual_stack();
            // Its static address, its SLAAC address (the /64 + its MAC's
            // EUI-64) and its link-local.
            for src in [
                "fd00:172:17::2",
                "fd00:172:17:0:42:acff:fe11:2",
                &LL.to_string(),
            ] {
                let f = from(src.parse().unwrap(), gw, nh::ICMPV6, &echo);
                assert_eq!(p.check(&f), Ok(()), "{src}");
            }
            // Another container's static, SLAAC and link-local addresses,
            // the gateway's, and an address off the subnet.
            for src in [
                "fd00:172:17::3",
                "fd00:172:17:0:42:acff:fe11:3",
                "fe80::42:acff:fe11:3",
                "fd00:172:17::1",
                "2001:db8::2",
            ] {
                let f = from(src.parse().unwrap(), gw, nh::ICMPV6, &echo);
                assert_eq!(p.check(&f), Err(DropReason::SpoofedSrcIp), "{src}");
            }
            // A later fragment is checked too: the source is in the fixed
            // header.
            let mut later = frame(&[(nh::FRAGMENT, 8)], nh::UDP, &[0u8; 8]);
            later[54 + 2..54 + 4].copy_from_slice(&(100u16 << 3).to_be_bytes());
            later[22..38].copy_from_slice(&"fd00:172:17::3".parse::<Ipv6Addr>().unwrap().octets());
            assert_eq!(p.check(&later), Err(DropReason::SpoofedSrcIp));
            // Without a dual-stack network only the link-local is its own.
            let f = from("fd00:172:17::2".parse().unwrap(), gw, nh::ICMPV6, &echo);
            assert_eq!(policy().check(&f), Err(DropReason::SpoofedSrcIp));
            // An uplink carries many hosts.
            assert_eq!(PortPolicy::TRUSTED.check(&f), Ok(()));
        }

        #[test]
        fn the_unspecified_source_is_for_dad_and_mld_only() {
            let p = dual_stack();
            let me: Ipv6Addr = "fd00:172:17::2".parse().unwrap();
            let mut dad = ndp(kind::NEIGHBOR_SOLICIT, own());
            dad.truncate(24); // DAD carries no link-layer option
            dad[8..24].copy_from_slice(&me.octets());
            let snm = crate::wire::ipv6::solicited_node(me);
            let un = Ipv6Addr::UNSPECIFIED;
            assert_eq!(p.check(&from(un, snm, nh::ICMPV6, &dad)), Ok(()));
            let mld = [kind::MLD2_REPORT, 0, 0, 0, 0, 0, 0, 0];
            let all_mld: Ipv6Addr = "ff02::16".parse().unwrap();
            assert_eq!(p.check(&from(un, all_mld, nh::ICMPV6, &mld)), Ok(()));
            // An NS from :: to a unicast address is no DAD; echo, UDP and an
            // RS from :: pass nothing.
            let gw: Ipv6Addr = "fd00:172:17::1".parse().unwrap();
            assert_eq!(
                p.check(&from(un, gw, nh::ICMPV6, &dad)),
                Err(DropReason::SpoofedSrcIp)
            );
            let echo = [kind::ECHO_REQUEST, 0, 0, 0, 0, 1, 0, 1];
            assert_eq!(
                p.check(&from(un, gw, nh::ICMPV6, &echo)),
                Err(DropReason::SpoofedSrcIp)
            );
            assert_eq!(
                p.check(&from(un, gw, nh::UDP, &[0, 53, 0, 53, 0, 8, 0, 0])),
                Err(DropReason::SpoofedSrcIp)
            );
            // Nor a later fragment from ::, whatever it continues.
            let mut later = from(un, snm, nh::FRAGMENT, &[nh::ICMPV6, 0, 0, 0, 0, 0, 0, 1]);
            later[54 + 2..54 + 4].copy_from_slice(&(100u16 << 3).to_be_bytes());
            assert_eq!(p.check(&later), Err(DropReason::SpoofedSrcIp));
            // An MLD report from its own link-local passes too.
            assert_eq!(p.check(&from(LL, all_mld, nh::ICMPV6, &mld)), Ok(()));
        }

        #[test]
        fn a_neighbor_advertisement_may_only_claim_its_own_addresses() {
            let p = dual_stack();
            for (target, ok) in [
                ("fd00:172:17::2", true),
                ("fd00:172:17:0:42:acff:fe11:2", true),
                ("fd00:172:17::3", false),
                ("fd00:172:17::1", false),
                ("fe80::42:acff:fe11:3", false),
            ] {
                let mut na = ndp(kind::NEIGHBOR_ADVERT, own());
                na[8..24].copy_from_slice(&target.parse::<Ipv6Addr>().unwrap().octets());
                let got = p.check(&frame(&[], nh::ICMPV6, &na));
                let want = if ok {
                    Ok(())
                } else {
                    Err(DropReason::SpoofedNd)
                };
                assert_eq!(got, want, "{target}");
            }
            // An NS may ask about anyone.
            let mut ns = ndp(kind::NEIGHBOR_SOLICIT, own());
            ns[8..24].copy_from_slice(&"fd00:172:17::3".parse::<Ipv6Addr>().unwrap().octets());
            assert_eq!(p.check(&frame(&[], nh::ICMPV6, &ns)), Ok(()));
        }

        #[test]
        fn dhcpv6_servers_and_incomplete_chains_are_refused() {
            assert_eq!(
                policy().check(&frame(&[], nh::UDP, &[2, 35, 2, 34, 0, 8, 0, 0])),
                Err(DropReason::RogueDhcpServer)
            );
            // A first fragment whose chain stops before the upper layer's
            // header: the RA guard could not see what it is.
            for upper in [nh::ICMPV6, nh::UDP, nh::TCP] {
                assert_eq!(
                    policy().check(&frame(&[(nh::FRAGMENT, 8)], upper, &[])),
                    Err(DropReason::MalformedPacket),
                    "{upper}"
                );
            }
            // A chain that runs past the packet, and no fixed header.
            let mut f = frame(&[(nh::DST_OPTS, 8)], nh::UDP, &[0u8; 8]);
            f[55] = 40;
            assert_eq!(policy().check(&f), Err(DropReason::MalformedPacket));
            assert_eq!(policy().check(&f[..40]), Err(DropReason::MalformedPacket));
        }
    }
}
