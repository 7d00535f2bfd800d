//! Port security: what an endpoint port may send. An endpoint (a container's
//! TAP) owns one MAC and one IPv4 address, given by the address manager; a
//! frame claiming any other source identity — another container's, or the
//! gateway's — is dropped before the bridge can learn from it. Trusted
//! ports (an attached uplink) carry many hosts and are not checked.

use std::net::Ipv4Addr;

use crate::stats::DropReason;
use crate::wire::arp::ArpPacket;
use crate::wire::ethernet::{self, ethertype, HEADER_LEN};
use crate::wire::ipv4::{self, protocol};
use crate::wire::MacAddr;
use crate::wire::{dhcp, udp};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortPolicy {
    /// The only source MAC the port may use.
    pub mac: Option<MacAddr>,
    /// The only source IPv4 address the port may use (0.0.0.0 is also
    /// allowed, for DHCP requests — UDP 68 to 67 — and ARP probes).
    pub ipv4: Option<Ipv4Addr>,
    /// Only IPv4, ARP and IPv6 frames: no VLAN tags (which would smuggle
    /// frames past these checks), no other protocols.
    pub restrict_ethertypes: bool,
}

impl PortPolicy {
    /// No checks: an uplink with many hosts behind it.
    pub const TRUSTED: PortPolicy = PortPolicy {
        mac: None,
        ipv4: None,
        restrict_ethertypes: false,
    };

    /// The policy of a container endpoint.
    pub fn endpoint(mac: MacAddr, ipv4: Ipv4Addr) -> PortPolicy {
        PortPolicy {
            mac: Some(mac),
            ipv4: Some(ipv4),
            restrict_ethertypes: true,
        }
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
                    } else if ip.src != own {
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
                    if s != ip && !s.is_unspecified() {
                        return Err(DropReason::SpoofedArp);
                    }
                }
                Ok(())
            }
            // IPv6 addresses are not assigned yet; the IPv6 issue adds
            // source checks and RA guard here.
            ethertype::IPV6 => Ok(()),
            _ if self.restrict_ethertypes => Err(DropReason::EtherTypeNotAllowed),
            _ => Ok(()),
        }
    }
}

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
}
