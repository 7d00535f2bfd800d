//! Address management for one network: which addresses exist (subnet,
//! gateway, ip-range), which are taken, and the MAC that goes with each.
//! Docker's conventions: addresses handed out in order from the start of
//! the range (lowest free first), never the network, broadcast or gateway
//! address; MAC 02:42 + the four bytes of the address. An IPv6 subnet
//! (`Ipam6`) hands out its addresses the same way, from ::2 (docker 27's
//! order), never the subnet-router anycast address (the prefix itself) or
//! the gateway.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::wire::MacAddr;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpamError {
    /// Every address of the range is taken.
    Exhausted { range: IpNet },
    /// A requested address is outside the subnet.
    OutsideSubnet { ip: IpAddr, subnet: IpNet },
    /// A requested address is the network, broadcast or gateway address.
    Reserved { ip: IpAddr, what: &'static str },
    /// A requested address is already taken.
    InUse { ip: IpAddr },
}

impl fmt::Display for IpamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IpamError::Exhausted { range } => write!(f, "no free address left in {range}"),
            IpamError::OutsideSubnet { ip, subnet } => {
                write!(f, "{ip} is outside the network's subnet {subnet}")
            }
            IpamError::Reserved { ip, what } => write!(f, "{ip} is the network's {what} address"),
            IpamError::InUse { ip } => write!(f, "{ip} is already in use"),
        }
    }
}

impl std::error::Error for IpamError {}

#[derive(Debug, Clone)]
pub struct Ipam {
    subnet: Ipv4Net,
    gateway: Ipv4Addr,
    range: Ipv4Net,
    /// The gateway's DNS-only address, when it has one: reserved like the
    /// gateway's own.
    dns: Option<Ipv4Addr>,
    /// Where addresses given without a request ([`Ipam::allocate_dynamic`],
    /// DHCP's) start, when not at the start of the range.
    pool_start: Option<Ipv4Addr>,
    taken: BTreeSet<Ipv4Addr>,
}

impl Ipam {
    /// The caller (config validation) guarantees the gateway and range lie
    /// inside the subnet.
    pub fn new(subnet: Ipv4Net, gateway: Ipv4Addr, range: Ipv4Net) -> Ipam {
        Ipam {
            subnet,
            gateway,
            range,
            dns: None,
            pool_start: None,
            taken: BTreeSet::new(),
        }
    }

    /// The address manager of a network as configured: its subnet,
    /// gateway and range, its DNS-only address reserved, DHCP's pool
    /// starting where the network says.
    pub fn for_network(n: &crate::config::NetworkConfig) -> Ipam {
        let mut a = Ipam::new(n.subnet, n.gateway, n.ip_range);
        a.dns = n.dns.map(|d| d.ip);
        a.pool_start = n.dhcp_start;
        a
    }

    pub fn subnet(&self) -> Ipv4Net {
        self.subnet
    }

    pub fn gateway(&self) -> Ipv4Addr {
        self.gateway
    }

    pub fn range(&self) -> Ipv4Net {
        self.range
    }

    pub fn in_use(&self) -> usize {
        self.taken.len()
    }

    /// Takes `requested`, or the lowest free address of the range.
    pub fn allocate(&mut self, requested: Option<Ipv4Addr>) -> Result<Ipv4Addr, IpamError> {
        self.allocate_from(requested, self.range.network())
    }

    /// Takes the lowest free address of the range from the pool's start
    /// (DHCP's dynamic addresses).
    pub fn allocate_dynamic(&mut self) -> Result<Ipv4Addr, IpamError> {
        let start = self
            .pool_start
            .filter(|s| self.range.contains(s))
            .unwrap_or(self.range.network());
        self.allocate_from(None, start)
    }

    fn allocate_from(
        &mut self,
        requested: Option<Ipv4Addr>,
        start: Ipv4Addr,
    ) -> Result<Ipv4Addr, IpamError> {
        let (subnet, range, gateway, dns) = (self.subnet, self.range, self.gateway, self.dns);
        let candidates = (u32::from(start)..=u32::from(range.broadcast())).map(Ipv4Addr::from);
        take(
            &mut self.taken,
            requested,
            |ip| subnet.contains(ip),
            subnet.into(),
            range.into(),
            |ip| {
                if Some(ip) == dns {
                    Some("DNS")
                } else {
                    reserved4(subnet, gateway, ip)
                }
            },
            candidates,
        )
    }

    pub fn release(&mut self, ip: Ipv4Addr) -> bool {
        self.taken.remove(&ip)
    }

    /// Docker's MAC for an address.
    pub fn mac_for(ip: Ipv4Addr) -> MacAddr {
        MacAddr::docker_from_ipv4(ip)
    }
}

/// The addresses of a network's IPv6 subnet.
#[derive(Debug, Clone)]
pub struct Ipam6 {
    subnet: Ipv6Net,
    gateway: Ipv6Addr,
    taken: BTreeSet<Ipv6Addr>,
}

impl Ipam6 {
    /// The caller (config validation) guarantees the gateway lies inside
    /// the subnet.
    pub fn new(subnet: Ipv6Net, gateway: Ipv6Addr) -> Ipam6 {
        Ipam6 {
            subnet,
            gateway,
            taken: BTreeSet::new(),
        }
    }

    /// Takes `requested`, or the lowest free address of the subnet.
    pub fn allocate(&mut self, requested: Option<Ipv6Addr>) -> Result<Ipv6Addr, IpamError> {
        let (subnet, gateway) = (self.subnet, self.gateway);
        let candidates =
            (u128::from(subnet.network())..=u128::from(subnet.broadcast())).map(Ipv6Addr::from);
        take(
            &mut self.taken,
            requested,
            |ip| subnet.contains(ip),
            subnet.into(),
            subnet.into(),
            |ip| reserved6(subnet, gateway, ip),
            candidates,
        )
    }

    pub fn release(&mut self, ip: Ipv6Addr) -> bool {
        self.taken.remove(&ip)
    }
}

/// The IPv4 addresses no one may have: the gateway's, and the network and
/// broadcast addresses of a subnet larger than /31.
fn reserved4(subnet: Ipv4Net, gateway: Ipv4Addr, ip: Ipv4Addr) -> Option<&'static str> {
    if ip == gateway {
        Some("gateway")
    } else if ip == subnet.network() && subnet.prefix_len() < 31 {
        Some("network")
    } else if ip == subnet.broadcast() && subnet.prefix_len() < 31 {
        Some("broadcast")
    } else {
        None
    }
}

/// The IPv6 addresses no one may have: the gateway's and the
/// subnet-router anycast address (the prefix itself, RFC 4291 2.6.1).
fn reserved6(subnet: Ipv6Net, gateway: Ipv6Addr, ip: Ipv6Addr) -> Option<&'static str> {
    if ip == gateway {
        Some("gateway")
    } else if ip == subnet.network() {
        Some("subnet-router anycast")
    } else {
        None
    }
}

/// Takes `requested` (checked against the subnet and what is reserved), or
/// the first of `candidates` that is neither reserved nor taken. Every
/// candidate skipped is taken or reserved, so the walk costs O(taken), not
/// O(range).
fn take<A: Copy + Ord + Into<IpAddr>>(
    taken: &mut BTreeSet<A>,
    requested: Option<A>,
    in_subnet: impl Fn(&A) -> bool,
    subnet: IpNet,
    range: IpNet,
    reserved: impl Fn(A) -> Option<&'static str>,
    mut candidates: impl Iterator<Item = A>,
) -> Result<A, IpamError> {
    if let Some(ip) = requested {
        if !in_subnet(&ip) {
            return Err(IpamError::OutsideSubnet {
                ip: ip.into(),
                subnet,
            });
        }
        if let Some(what) = reserved(ip) {
            return Err(IpamError::Reserved {
                ip: ip.into(),
                what,
            });
        }
        if !taken.insert(ip) {
            return Err(IpamError::InUse { ip: ip.into() });
        }
        return Ok(ip);
    }
    candidates
        .find(|ip| reserved(*ip).is_none() && taken.insert(*ip))
        .ok_or(IpamError::Exhausted { range })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipam() -> Ipam {
        Ipam::new(
            "172.17.0.0/16".parse().unwrap(),
            Ipv4Addr::new(172, 17, 0, 1),
            "172.17.0.0/16".parse().unwrap(),
        )
    }

    #[test]
    fn sequential_from_two_like_docker() {
        let mut a = ipam();
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(172, 17, 0, 3));
        assert!(a.release(Ipv4Addr::new(172, 17, 0, 2)));
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(172, 17, 0, 2));
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(172, 17, 0, 4));
    }

    #[test]
    fn requested_addresses_are_checked() {
        let mut a = ipam();
        assert_eq!(
            a.allocate(Some(Ipv4Addr::new(172, 17, 0, 1))),
            Err(IpamError::Reserved {
                ip: Ipv4Addr::new(172, 17, 0, 1).into(),
                what: "gateway"
            })
        );
        assert!(matches!(
            a.allocate(Some(Ipv4Addr::new(172, 17, 255, 255))),
            Err(IpamError::Reserved {
                what: "broadcast",
                ..
            })
        ));
        assert!(matches!(
            a.allocate(Some(Ipv4Addr::new(10, 0, 0, 1))),
            Err(IpamError::OutsideSubnet { .. })
        ));
        assert_eq!(
            a.allocate(Some(Ipv4Addr::new(172, 17, 0, 9))).unwrap(),
            Ipv4Addr::new(172, 17, 0, 9)
        );
        assert_eq!(
            a.allocate(Some(Ipv4Addr::new(172, 17, 0, 9))),
            Err(IpamError::InUse {
                ip: Ipv4Addr::new(172, 17, 0, 9).into()
            })
        );
        // Sequential allocation skips it.
        for i in 2..9 {
            assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(172, 17, 0, i));
        }
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(172, 17, 0, 10));
    }

    #[test]
    fn ip_range_limits_dynamic_allocation_and_exhausts() {
        let mut a = Ipam::new(
            "10.5.0.0/24".parse().unwrap(),
            Ipv4Addr::new(10, 5, 0, 1),
            "10.5.0.0/30".parse().unwrap(),
        );
        // .0 network, .1 gateway: .2 and .3 remain in the /30.
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(10, 5, 0, 2));
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(10, 5, 0, 3));
        assert!(matches!(a.allocate(None), Err(IpamError::Exhausted { .. })));
        // Static addresses outside the range but inside the subnet are fine.
        assert!(a.allocate(Some(Ipv4Addr::new(10, 5, 0, 200))).is_ok());
    }

    #[test]
    fn ipv6_sequential_from_two_and_checked() {
        let net: Ipv6Net = "fd00:172:17::/64".parse().unwrap();
        let gw: Ipv6Addr = "fd00:172:17::1".parse().unwrap();
        let mut a = Ipam6::new(net, gw);
        let at = |s: &str| s.parse::<Ipv6Addr>().unwrap();
        assert_eq!(a.allocate(None).unwrap(), at("fd00:172:17::2"));
        assert_eq!(a.allocate(None).unwrap(), at("fd00:172:17::3"));
        assert!(matches!(
            a.allocate(Some(gw)),
            Err(IpamError::Reserved {
                what: "gateway",
                ..
            })
        ));
        assert!(matches!(
            a.allocate(Some(at("fd00:172:17::"))),
            Err(IpamError::Reserved { .. })
        ));
        assert!(matches!(
            a.allocate(Some(at("fd00:172:18::5"))),
            Err(IpamError::OutsideSubnet { .. })
        ));
        assert!(matches!(
            a.allocate(Some(at("fd00:172:17::3"))),
            Err(IpamError::InUse { .. })
        ));
        assert!(a.release(at("fd00:172:17::2")));
        assert_eq!(a.allocate(None).unwrap(), at("fd00:172:17::2"));
        // A /126 holds ::1 (gateway), ::2, ::3 beside the prefix itself.
        let mut small = Ipam6::new("fd00::/126".parse().unwrap(), at("fd00::1"));
        assert_eq!(small.allocate(None).unwrap(), at("fd00::2"));
        assert_eq!(small.allocate(None).unwrap(), at("fd00::3"));
        assert!(matches!(
            small.allocate(None),
            Err(IpamError::Exhausted { .. })
        ));
    }

    #[test]
    fn docker_mac() {
        assert_eq!(
            Ipam::mac_for(Ipv4Addr::new(172, 17, 0, 2)).to_string(),
            "02:42:ac:11:00:02"
        );
    }

    #[test]
    fn a_pool_start_and_a_dns_address_shape_dynamic_addresses() {
        // slirp4netns's: 10.0.2.0/24, gateway .2, DNS .3, DHCP from .15.
        let mut n = crate::config::Config::embedded().networks[0].clone();
        n.subnet = "10.0.2.0/24".parse().unwrap();
        n.ip_range = n.subnet;
        n.gateway = Ipv4Addr::new(10, 0, 2, 2);
        n.dns = Some(crate::config::DnsAddress {
            ip: Ipv4Addr::new(10, 0, 2, 3),
            serve: true,
        });
        n.dhcp_start = Some(Ipv4Addr::new(10, 0, 2, 15));
        let mut a = Ipam::for_network(&n);
        assert_eq!(
            a.allocate(Some(Ipv4Addr::new(10, 0, 2, 100))).unwrap(),
            Ipv4Addr::new(10, 0, 2, 100)
        );
        assert_eq!(a.allocate_dynamic().unwrap(), Ipv4Addr::new(10, 0, 2, 15));
        assert_eq!(a.allocate_dynamic().unwrap(), Ipv4Addr::new(10, 0, 2, 16));
        // The DNS address is nobody's; requests below the pool still work.
        assert!(a.allocate(Some(Ipv4Addr::new(10, 0, 2, 3))).is_err());
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(10, 0, 2, 1));
        assert_eq!(a.allocate(None).unwrap(), Ipv4Addr::new(10, 0, 2, 4));
    }
}
