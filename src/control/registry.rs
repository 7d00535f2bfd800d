//! The control plane's state: networks (config, id, address manager, data
//! path id), container endpoints and attached interfaces. Mutated only
//! under the daemon's lock; the data path learns of changes through
//! commands. Every operation either completes or leaves the state as it was.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::config::NetworkConfig;
use crate::dataplane::NetworkId;
use crate::ipam::{Ipam, Ipam6};
use crate::port::PortId;
use crate::wire::MacAddr;

pub struct NetworkEntry {
    pub config: NetworkConfig,
    pub id: String,
    pub created: SystemTime,
    pub ipam: Ipam,
    /// The IPv6 subnet's addresses, on a dual-stack network.
    pub ipam6: Option<Ipam6>,
    pub dp: NetworkId,
    /// Declared in the config file: not removable at runtime (as docker's
    /// predefined networks).
    pub from_config: bool,
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub id: String,
    pub container_id: String,
    pub name: String,
    pub network: String,
    pub ip: Ipv4Addr,
    /// Its IPv6 address, on a dual-stack network.
    pub ip6: Option<Ipv6Addr>,
    pub mac: MacAddr,
    pub mtu: u32,
    pub port: PortId,
    pub published: Vec<Published>,
    pub aliases: Vec<String>,
    pub ifname: String,
    pub pid: Option<u32>,
    /// Its network's only tenant (`AttachRequest::sole_tenant`): DHCP
    /// gives it a dynamic address, not its own.
    pub sole_tenant: bool,
    /// Its container's own resolvers (`run --dns`), kept for the networks
    /// it is connected to later.
    pub dns: Vec<std::net::IpAddr>,
}

impl Endpoint {
    /// What a capture calls its port: `NAME/IFNAME`.
    pub fn label(&self) -> String {
        format!("{}/{}", self.name, self.ifname)
    }

    /// The endpoint in one line, for the log's start and stop lines: name,
    /// short container id, network and interface, addresses, and ports as
    /// `docker ps` shows them (`127.0.0.1:8080->80/tcp`).
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} ({}) on {} {}: {}",
            self.name,
            &self.container_id[..self.container_id.len().min(12)],
            self.network,
            self.ifname,
            self.ip
        );
        if let Some(ip6) = self.ip6 {
            s.push_str(&format!(", {ip6}"));
        }
        s.push_str(&format!(" {}", self.mac));
        if self.published.is_empty() {
            s.push_str("; no ports");
        } else {
            let ports: Vec<String> = self
                .published
                .iter()
                .map(|p| {
                    format!(
                        "{}->{}/{}",
                        p.mapping.host, p.mapping.container_port, p.mapping.proto
                    )
                })
                .collect();
            s.push_str(&format!("; ports {}", ports.join(", ")));
        }
        s
    }
}

/// A published port of an endpoint: its spec, what was bound, and the data
/// path's forward.
#[derive(Debug, Clone)]
pub struct Published {
    pub spec: String,
    pub mapping: crate::publish::Mapping,
    pub forward: u32,
}

#[derive(Debug, Clone)]
pub struct Interface {
    pub ifname: String,
    pub network: String,
    pub port: PortId,
}

#[derive(Default)]
pub struct Registry {
    pub networks: Vec<NetworkEntry>,
    /// By endpoint id.
    pub endpoints: BTreeMap<String, Endpoint>,
    /// By interface name.
    pub interfaces: BTreeMap<String, Interface>,
    /// By endpoint id: the connection that attached it, told when it is
    /// detached from elsewhere.
    pub notify: BTreeMap<String, Notifier>,
    /// Addresses and names held, after a restart, for the containers that
    /// were attached before it (`networks::reserve_endpoints`).
    pub reserved: Vec<Reservation>,
}

/// An address and name held for a container until it attaches again.
#[derive(Debug, Clone)]
pub struct Reservation {
    pub ep: super::state::SavedEndpoint,
    pub until: std::time::Instant,
}

/// A write end of an attaching connection, for [`super::proto::Event`]s.
#[derive(Debug, Clone)]
pub struct Notifier(pub std::sync::Arc<std::os::unix::net::UnixStream>);

impl Notifier {
    /// Sends without blocking: a client that does not read loses the
    /// event, never stalls the daemon.
    pub fn send(&self, ev: &super::proto::Event) {
        use std::os::fd::AsRawFd;
        let Ok(mut line) = serde_json::to_vec(ev) else {
            return;
        };
        line.push(b'\n');
        let _ = crate::sys::sock::send(self.0.as_raw_fd(), &line);
    }
}

impl Registry {
    /// What a capture calls port `id`: its endpoint's label, or the
    /// attached interface's name.
    pub fn port_label(&self, id: crate::port::PortId) -> Option<String> {
        if let Some(e) = self.endpoints.values().find(|e| e.port == id) {
            return Some(e.label());
        }
        self.interfaces
            .iter()
            .find(|(_, i)| i.port == id)
            .map(|(n, _)| n.clone())
    }

    pub fn network(&self, name: &str) -> Option<&NetworkEntry> {
        self.networks.iter().find(|n| n.config.name == name)
    }

    pub fn network_mut(&mut self, name: &str) -> Option<&mut NetworkEntry> {
        self.networks.iter_mut().find(|n| n.config.name == name)
    }

    /// The name belongs to another container (one container keeps its name
    /// on every network it is on).
    pub fn name_in_use(&self, name: &str, container_id: &str) -> bool {
        self.endpoints
            .values()
            .any(|e| e.name == name && e.container_id != container_id)
            || self
                .reserved
                .iter()
                .any(|r| r.ep.name == name && r.ep.container_id != container_id)
    }

    /// Gives back what lapsed reservations held; then, if `container_id`
    /// has one on `network`, takes it off (its address is free for it to
    /// ask for again).
    pub fn settle_reservations(&mut self, now: std::time::Instant, claim: Option<(&str, &str)>) {
        let mut gone = Vec::new();
        self.reserved.retain(|r| {
            let claimed = claim.is_some_and(|(c, n)| r.ep.container_id == c && r.ep.network == n);
            if claimed || r.until <= now {
                gone.push(r.ep.clone());
                return false;
            }
            true
        });
        for ep in gone {
            if let Some(n) = self.network_mut(&ep.network) {
                n.ipam.release(ep.ip);
                if let (Some(ip6), Some(ipam6)) = (ep.ip6, n.ipam6.as_mut()) {
                    ipam6.release(ip6);
                }
            }
        }
    }

    /// Every endpoint of one container.
    pub fn endpoints_of(&self, container_id: &str) -> Vec<&Endpoint> {
        self.endpoints
            .values()
            .filter(|e| e.container_id == container_id)
            .collect()
    }

    /// An endpoint by container name, or by (a unique prefix of) its
    /// container id.
    pub fn find_container(&self, what: &str) -> Result<&Endpoint, String> {
        if let Some(e) = self.endpoints.values().find(|e| e.name == what) {
            return Ok(e);
        }
        let mut by_id = self
            .endpoints
            .values()
            .filter(|e| !what.is_empty() && e.container_id.starts_with(what));
        match (by_id.next(), by_id.next()) {
            (Some(e), None) => Ok(e),
            (Some(_), Some(_)) => Err(format!("'{what}' matches more than one container")),
            (None, _) => Err(format!("no container named '{what}'")),
        }
    }

    /// A network as `docker network inspect` (docker 28) prints it: its
    /// keys in docker's order (serde_json keeps insertion order), `null`,
    /// `{}` and omitted where docker has them (`tests/data/docker28`).
    /// Where lanyard differs on purpose: dual stack by default (a second
    /// `IPAM.Config` entry), docker 27's MACs from the address, and the
    /// default network's real name, `default` (it answers to `bridge`).
    pub fn inspect(&self, net: &NetworkEntry) -> Value {
        let c = &net.config;
        // Docker's map keys come out sorted (Go's encoder): by container id.
        let by_container: std::collections::BTreeMap<&str, &Endpoint> = self
            .endpoints
            .values()
            .filter(|e| e.network == c.name)
            .map(|e| (e.container_id.as_str(), e))
            .collect();
        let mut containers = serde_json::Map::new();
        for (id, e) in by_container {
            containers.insert(
                id.to_string(),
                json!({
                    "Name": e.name,
                    "EndpointID": e.id,
                    "MacAddress": e.mac.to_string(),
                    "IPv4Address": format!("{}/{}", e.ip, c.subnet.prefix_len()),
                    "IPv6Address": match (e.ip6, &c.ipv6) {
                        (Some(a), Some(v)) => format!("{a}/{}", v.subnet.prefix_len()),
                        _ => String::new(),
                    },
                }),
            );
        }
        let mut v4 = serde_json::Map::new();
        v4.insert("Subnet".into(), c.subnet.to_string().into());
        // Docker prints IPRange only when one was given; lanyard's
        // range is the subnet when none was.
        if c.ip_range != c.subnet {
            v4.insert("IPRange".into(), c.ip_range.to_string().into());
        }
        v4.insert("Gateway".into(), c.gateway.to_string().into());
        let mut ipam_config = vec![Value::Object(v4)];
        if let Some(v) = &c.ipv6 {
            ipam_config.push(json!({
                "Subnet": v.subnet.to_string(),
                "Gateway": v.gateway.to_string(),
            }));
        }
        let default = c.name == crate::config::DEFAULT_NETWORK;
        // The default network is docker's default bridge: its options;
        // another network has only what was set, and an MTU other than
        // docker's 1500 is set (its absence would say 1500).
        let mut options = std::collections::BTreeMap::new();
        if default {
            options.insert(
                "com.docker.network.bridge.default_bridge",
                "true".to_string(),
            );
            options.insert("com.docker.network.bridge.enable_icc", "true".to_string());
            options.insert(
                "com.docker.network.bridge.enable_ip_masquerade",
                (!c.internal).to_string(),
            );
            options.insert(
                "com.docker.network.bridge.host_binding_ipv4",
                "0.0.0.0".to_string(),
            );
            options.insert("com.docker.network.bridge.name", c.name.clone());
            options.insert("com.docker.network.driver.mtu", c.mtu.to_string());
        } else if c.mtu != 1500 {
            options.insert("com.docker.network.driver.mtu", c.mtu.to_string());
        }
        json!({
            "Name": c.name,
            "Id": net.id,
            "Created": rfc3339(net.created),
            "Scope": "local",
            "Driver": "bridge",
            "EnableIPv4": true,
            "EnableIPv6": c.ipv6.is_some(),
            "IPAM": {
                "Driver": "default",
                "Options": if default { Value::Null } else { json!({}) },
                "Config": ipam_config,
            },
            "Internal": c.internal,
            "Attachable": false,
            "Ingress": false,
            "ConfigFrom": { "Network": "" },
            "ConfigOnly": false,
            "Containers": containers,
            "Options": options,
            "Labels": {},
        })
    }
}

/// RFC 3339 UTC timestamp as docker prints `Created` (Go's RFC3339Nano:
/// nanoseconds with trailing zeros dropped, no fraction when whole).
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (year, month, day) = crate::time::civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    );
    if d.subsec_nanos() != 0 {
        let frac = format!("{:09}", d.subsec_nanos());
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

#[cfg(test)]
impl Registry {
    /// The control plane's unit tests' registry: one network "n",
    /// 10.9.0.0/28 (13 addresses for clients, .2 to .14), IPv4 only.
    pub(crate) fn for_tests() -> Registry {
        let subnet: ipnet::Ipv4Net = "10.9.0.0/28".parse().unwrap();
        let gw: Ipv4Addr = "10.9.0.1".parse().unwrap();
        let mut r = Registry::default();
        r.networks.push(NetworkEntry {
            config: crate::config::NetworkConfig {
                name: "n".into(),
                subnet,
                gateway: gw,
                ip_range: subnet,
                mtu: 1500,
                txqueuelen: 1000,
                mac_aging: std::time::Duration::from_secs(300),
                internal: false,
                ipv6: None,
                dns: None,
                dhcp_start: None,
            },
            id: "id".into(),
            created: SystemTime::now(),
            ipam: Ipam::new(subnet, gw, subnet),
            ipam6: None,
            dp: crate::dataplane::NetworkId(0),
            from_config: false,
        });
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn rfc3339_known_dates() {
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_483_877, 5);
        assert_eq!(rfc3339(t), "2026-11-24T01:31:17.000000005Z");
        let leap = SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
        // Go's RFC3339Nano drops the fraction's trailing zeros.
        let t = SystemTime::UNIX_EPOCH + Duration::new(1_795_483_877, 643_829_150);
        assert_eq!(rfc3339(t), "2026-11-24T01:31:17.64382915Z");
    }

    #[test]
    fn a_held_address_and_name_are_the_owners_alone_until_claimed_or_lapsed() {
        let mut r = Registry::for_tests();
        let held: Ipv4Addr = "10.9.0.2".parse().unwrap();
        let now = std::time::Instant::now();
        let hold = |r: &mut Registry, who: &str, until| {
            r.network_mut("n")
                .unwrap()
                .ipam
                .allocate(Some(held))
                .unwrap();
            r.reserved.push(Reservation {
                ep: crate::control::state::SavedEndpoint {
                    container_id: who.into(),
                    name: "web".into(),
                    network: "n".into(),
                    ip: held,
                    ip6: None,
                },
                until,
            });
        };
        hold(&mut r, "owner", now + Duration::from_secs(60));
        // Another container: neither the name nor the address.
        assert!(r.name_in_use("web", "other"));
        assert!(!r.name_in_use("web", "owner"));
        r.settle_reservations(now, Some(("other", "n")));
        let next = r.network_mut("n").unwrap().ipam.allocate(None).unwrap();
        assert_ne!(next, held);
        // The owner claims it: free for it to ask for.
        r.settle_reservations(now, Some(("owner", "n")));
        assert!(r.reserved.is_empty() && !r.name_in_use("web", "other"));
        assert_eq!(
            r.network_mut("n").unwrap().ipam.allocate(Some(held)),
            Ok(held)
        );
        r.network_mut("n").unwrap().ipam.release(held);
        // Lapsed: given back to everyone.
        hold(&mut r, "owner", now);
        r.settle_reservations(now, None);
        assert!(r.reserved.is_empty());
        assert_eq!(
            r.network_mut("n").unwrap().ipam.allocate(Some(held)),
            Ok(held)
        );
    }
}
