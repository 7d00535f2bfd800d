//! What the NAT may do on a container's behalf: the one place that decides,
//! from a packet's addresses alone, whether a host socket may be opened and
//! where it connects. Validation apart from application: `tcp`, `udp` and
//! `icmp` ask here first and only then touch a socket.
//!
//! The rule a docker container lives by, and why each part matters:
//!
//! * **The host's loopback is never a destination as given.** The host
//!   socket lives in the daemon's network namespace, so `connect()` to
//!   127.0.0.1, to anything in 127.0.0.0/8, or to 0.0.0.0 (which Linux
//!   treats as "this host") would reach services that bound themselves to
//!   loopback precisely so that nothing outside the host could. A container
//!   is root in its own namespaces and can put any destination in a frame
//!   it sends to the gateway's MAC, so the check is on the packet, not on
//!   the container's routing table. The host's loopback is reached only
//!   through the gateway's own address, and only for an endpoint that may
//!   (`allow_host_loopback`, slirp4netns's and pasta's opt-in).
//! * **Broadcast and multicast are never routed.** The gateway already
//!   drops them; this is the same rule again where a socket would be made.
//! * **The host's other addresses stay reachable**, as they are from a
//!   docker container (its bridge's address, the host's LAN address): that
//!   is how a container reaches a service the host publishes.
//! * **Sources must be a host's.** An endpoint's source is pinned by port
//!   security; a trusted uplink's is not, and 0.0.0.0, loopback, broadcast,
//!   multicast or the gateway's own address as a source would share flow
//!   keys and limits that are not theirs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::inside::Inside;
use crate::stats::DropReason;

/// True for an address the host treats as itself on its loopback: IPv4
/// 127.0.0.0/8 and 0.0.0.0/8, IPv6 `::1` and `::`, and the IPv4-mapped
/// forms of those (`::ffff:127.0.0.1` reaches 127.0.0.1 on a dual-stack
/// socket).
pub fn is_host_local(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(a) => is_host_local_v4(a),
        IpAddr::V6(a) => is_host_local_v6(a),
    }
}

fn is_host_local_v4(a: Ipv4Addr) -> bool {
    a.is_loopback() || a.octets()[0] == 0
}

fn is_host_local_v6(a: Ipv6Addr) -> bool {
    if a.is_loopback() || a.is_unspecified() {
        return true;
    }
    // IPv4-mapped (::ffff:a.b.c.d) and the deprecated IPv4-compatible
    // (::a.b.c.d) forms.
    let s = a.segments();
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let compat = s[..6] == [0; 6];
    (mapped || compat)
        && is_host_local_v4(Ipv4Addr::new(
            (s[6] >> 8) as u8,
            s[6] as u8,
            (s[7] >> 8) as u8,
            s[7] as u8,
        ))
}

/// The gateway's DNS port: the embedded DNS's (UDP before the NAT, TCP as
/// a local service), never a way to the host's own port 53.
pub const DNS_PORT: u16 = 53;

/// Where a routed packet may go, if anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// Open a host socket to this address.
    Connect(SocketAddr),
    /// A service of the gateway's own address (the DNS-over-TCP server):
    /// the caller connects to where it listens.
    Service,
    /// Refused: answer with a RST (TCP) or an ICMP error, count `reason`.
    Refuse(Refusal),
}

/// Why a destination is refused, and how the container is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The host's loopback addressed directly (never allowed), or 0.0.0.0.
    HostLoopback,
    /// The gateway's own address on a port nobody serves there (host
    /// loopback off, or a network without NAT).
    NotServed,
    /// The gateway's own address, meaning the host's loopback, for an
    /// endpoint that may not reach it: told as `NotServed` is, but TCP to
    /// an endpoint with `loopback_unreachable` gets "network unreachable"
    /// (slirp4netns's answer) instead of a reset.
    LoopbackOff,
    /// Broadcast or multicast: never routed.
    NotRoutable,
}

impl Refusal {
    pub fn reason(self) -> DropReason {
        match self {
            Refusal::HostLoopback => DropReason::HostLoopback,
            Refusal::NotServed | Refusal::LoopbackOff => DropReason::NotServed,
            Refusal::NotRoutable => DropReason::NotServed,
        }
    }

    /// The ICMP destination-unreachable code for UDP and ICMP echo (TCP
    /// gets a RST): administratively prohibited for what policy refuses,
    /// port unreachable for a port nobody serves.
    pub fn icmp_code(self) -> u8 {
        use crate::wire::icmpv4::unreachable;
        match self {
            Refusal::HostLoopback | Refusal::NotRoutable => unreachable::ADMIN_PROHIBITED,
            Refusal::NotServed | Refusal::LoopbackOff => unreachable::PORT,
        }
    }
}

/// Where a packet from `ep` to `dst`:`port` may go. On the gateway's
/// address a port with a local service (`service`: the DNS-over-TCP server
/// on 53) is that service; any other port means the host's loopback, where
/// the endpoint may reach it; any other destination is connected to as
/// given, unless it is the host's loopback, broadcast or multicast.
pub fn destination(ep: &Inside, dst: impl Into<IpAddr>, port: u16, service: bool) -> Target {
    let dst = dst.into();
    if dst == ep.gateway_ip {
        if service {
            return Target::Service;
        }
        if port == DNS_PORT {
            // The gateway's DNS, whatever the protocol: never the host's
            // loopback resolver, which the container did not ask for.
            return Target::Refuse(Refusal::NotServed);
        }
        if ep.allow_host_loopback && !ep.internal {
            let lo: IpAddr = match dst {
                IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            };
            return Target::Connect(SocketAddr::new(lo, port));
        }
        if ep.internal {
            return Target::Refuse(Refusal::NotServed);
        }
        return Target::Refuse(Refusal::LoopbackOff);
    }
    if ep.internal {
        // No NAT on this network: only the gateway's services. (The
        // gateway answers routed traffic itself; this is the same rule
        // where a socket would be opened.)
        return Target::Refuse(Refusal::NotServed);
    }
    if is_host_local(dst) {
        return Target::Refuse(Refusal::HostLoopback);
    }
    if !is_routable(dst) {
        return Target::Refuse(Refusal::NotRoutable);
    }
    Target::Connect(SocketAddr::new(dst, port))
}

/// Not broadcast or multicast; in IPv6 also not link-local (it names a
/// link, and the host's links are not the container's) and not an
/// IPv4-mapped or -compatible address (an IPv6 packet that would leave as
/// IPv4 on the host's dual-stack socket).
fn is_routable(dst: IpAddr) -> bool {
    match dst {
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast()),
        IpAddr::V6(a) => {
            let s = a.segments();
            !(a.is_multicast()
                || s[0] & 0xffc0 == 0xfe80
                || s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0))
        }
    }
}

/// Whether `src` may be the source of a flow from an endpoint with
/// gateway `gateway`: a unicast host that is not the gateway itself.
pub fn valid_source(src: impl Into<IpAddr>, gateway: impl Into<IpAddr>) -> bool {
    let (src, gateway) = (src.into(), gateway.into());
    if is_host_local(src) || src == gateway {
        return false;
    }
    match src {
        // 240.0.0.0/4, reserved; 255.255.255.255 is in it too.
        IpAddr::V4(a) => !(a.is_broadcast() || a.is_multicast() || a.octets()[0] >= 240),
        // A link-local source is a host of the link, but the NAT's flows
        // leave it: only global and unique-local sources are translated.
        IpAddr::V6(_) => is_routable(src),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::PortId;
    use crate::wire::MacAddr;

    const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);

    fn ep(allow: bool, internal: bool) -> Inside {
        Inside {
            port: PortId(0),
            mac: MacAddr([2, 0x42, 172, 17, 0, 2]),
            ip: Ipv4Addr::new(172, 17, 0, 2).into(),
            gateway_mac: MacAddr::docker_from_ipv4(GW),
            gateway_ip: GW.into(),
            mtu: 1500,
            allow_host_loopback: allow,
            loopback_unreachable: false,
            internal,
            net: 0,
        }
    }

    #[test]
    fn host_local_addresses() {
        for a in ["127.0.0.1", "127.1.2.3", "0.0.0.0", "0.1.2.3", "::1", "::"] {
            assert!(is_host_local(a.parse().unwrap()), "{a}");
        }
        for a in ["::ffff:127.0.0.1", "::ffff:0.0.0.0", "::127.0.0.1"] {
            assert!(is_host_local(a.parse().unwrap()), "{a}");
        }
        for a in [
            "10.0.0.1",
            "172.17.0.1",
            "::ffff:10.0.0.1",
            "fd00::1",
            "1.0.0.0",
        ] {
            assert!(!is_host_local(a.parse().unwrap()), "{a}");
        }
    }

    #[test]
    fn loopback_is_refused_as_given_and_reached_only_through_the_gateway() {
        for dst in [
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::new(127, 9, 9, 9),
            Ipv4Addr::UNSPECIFIED,
        ] {
            for allow in [false, true] {
                assert_eq!(
                    destination(&ep(allow, false), dst, 22, false),
                    Target::Refuse(Refusal::HostLoopback),
                    "{dst} allow={allow}"
                );
            }
        }
        // The host's loopback through the gateway, refused: counted and
        // told as a port nobody serves (a reset for TCP, unless the
        // endpoint is the slirp4netns mode's, which says "unreachable").
        assert_eq!(
            destination(&ep(false, false), GW, 22, false),
            Target::Refuse(Refusal::LoopbackOff)
        );
        assert_eq!(Refusal::LoopbackOff.reason(), Refusal::NotServed.reason());
        assert_eq!(
            Refusal::LoopbackOff.icmp_code(),
            Refusal::NotServed.icmp_code()
        );
        assert_eq!(
            destination(&ep(true, false), GW, 22, false),
            Target::Connect("127.0.0.1:22".parse().unwrap())
        );
        assert_eq!(
            destination(&ep(false, false), GW, 53, true),
            Target::Service
        );
    }

    #[test]
    fn other_destinations_and_group_addresses() {
        assert_eq!(
            destination(&ep(false, false), Ipv4Addr::new(10, 200, 0, 1), 80, false),
            Target::Connect("10.200.0.1:80".parse().unwrap())
        );
        for dst in [Ipv4Addr::BROADCAST, Ipv4Addr::new(224, 0, 0, 251)] {
            assert_eq!(
                destination(&ep(false, false), dst, 5353, false),
                Target::Refuse(Refusal::NotRoutable)
            );
        }
    }

    #[test]
    fn ipv6_destinations() {
        let gw6: Ipv6Addr = "fd00:172:17::1".parse().unwrap();
        let ep6 = |allow| Inside {
            ip: "fd00:172:17::2".parse::<Ipv6Addr>().unwrap().into(),
            gateway_ip: gw6.into(),
            ..ep(allow, false)
        };
        // The host's loopback as given, in every spelling, with or without
        // the allowance; through the gateway's address only when allowed.
        for dst in ["::1", "::", "::ffff:127.0.0.1", "::127.0.0.1"] {
            for allow in [false, true] {
                assert_eq!(
                    destination(&ep6(allow), dst.parse::<Ipv6Addr>().unwrap(), 22, false),
                    Target::Refuse(Refusal::HostLoopback),
                    "{dst}"
                );
            }
        }
        assert_eq!(
            destination(&ep6(true), gw6, 22, false),
            Target::Connect("[::1]:22".parse().unwrap())
        );
        assert_eq!(
            destination(&ep6(false), gw6, 22, false),
            Target::Refuse(Refusal::LoopbackOff)
        );
        assert_eq!(
            destination(
                &ep6(false),
                "2001:db8::5".parse::<Ipv6Addr>().unwrap(),
                443,
                false
            ),
            Target::Connect("[2001:db8::5]:443".parse().unwrap())
        );
        // Groups, link-local and IPv4 dressed as IPv6 are not routed.
        for dst in [
            "ff02::1",
            "ff05::2",
            "fe80::1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
        ] {
            assert_eq!(
                destination(&ep6(false), dst.parse::<Ipv6Addr>().unwrap(), 80, false),
                Target::Refuse(Refusal::NotRoutable),
                "{dst}"
            );
        }
        // Sources: a host's global or unique-local address only.
        assert!(valid_source(
            "fd00:172:17::2".parse::<Ipv6Addr>().unwrap(),
            gw6
        ));
        for src in ["::1", "::", "fe80::1", "ff02::1", "fd00:172:17::1"] {
            assert!(
                !valid_source(src.parse::<Ipv6Addr>().unwrap(), gw6),
                "{src}"
            );
        }
    }

    #[test]
    fn the_gateways_port_53_is_never_the_hosts() {
        // With host loopback allowed, no service on the port (UDP, whose
        // DNS runs before the NAT): refused, not 127.0.0.1:53.
        assert_eq!(
            destination(&ep(true, false), GW, 53, false),
            Target::Refuse(Refusal::NotServed)
        );
        assert_eq!(destination(&ep(true, false), GW, 53, true), Target::Service);
    }

    #[test]
    fn internal_networks_serve_only_dns() {
        assert_eq!(destination(&ep(true, true), GW, 53, true), Target::Service);
        assert_eq!(
            destination(&ep(true, true), GW, 22, false),
            Target::Refuse(Refusal::NotServed)
        );
        assert_eq!(
            destination(&ep(false, true), Ipv4Addr::new(10, 0, 0, 1), 80, false),
            Target::Refuse(Refusal::NotServed)
        );
    }

    #[test]
    fn sources() {
        assert!(valid_source(Ipv4Addr::new(172, 17, 0, 2), GW));
        for s in [
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::LOCALHOST,
            Ipv4Addr::BROADCAST,
            Ipv4Addr::new(224, 0, 0, 1),
            Ipv4Addr::new(240, 0, 0, 1),
            GW,
        ] {
            assert!(!valid_source(s, GW), "{s}");
        }
    }
}
