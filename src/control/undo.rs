//! The undo guard of the control plane. A request that takes several
//! things in turn (an address in a network's IPAM, a data-path network or
//! port, forwards of published ports) takes each through an [`Undo`]; if
//! it returns early (an error, a panic) the guard gives back everything it
//! took, newest first, and the registry and the data path are as they were.
//! Only `commit` keeps them. So no request writes its undo paths by hand.
//!
//! The guard locks the registry at its first use and holds it until it
//! goes: a request's checks and its changes see one state. A guard that
//! never looks at the registry (`connect`, while its helper configures the
//! interface) locks it only to give back what needs it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::OwnedFd;
use std::sync::{Mutex, MutexGuard};

use super::registry::Registry;
use super::{gone, ControlError};
use crate::dataplane::{DataplaneHandle, NetworkId, NetworkSpec, PortSpec};
use crate::ipam::IpamError;
use crate::port::{Port, PortId};
use crate::publish::Mapping;

/// One thing taken, and so one thing to give back.
#[derive(Debug)]
enum Taken {
    /// An address of a network's IPAM: released.
    Address { network: String, ip: Ipv4Addr },
    /// An address of a network's IPv6 IPAM: released.
    Address6 { network: String, ip: Ipv6Addr },
    /// A network of the data path: removed.
    Network(NetworkId),
    /// A port of the data path: removed (its forwards and flows with it).
    Port(PortId),
    /// Forwards of published ports: removed (their sockets closed).
    Forwards(Vec<u32>),
    /// An endpoint an attach made and committed: detached (its port,
    /// address and DNS names).
    Endpoint(String),
}

/// What a request has taken so far; given back on drop unless committed.
pub(super) struct Undo<'a> {
    registry: &'a Mutex<Registry>,
    /// Locked from the first use on, until the guard goes.
    locked: Option<MutexGuard<'a, Registry>>,
    dp: &'a DataplaneHandle,
    /// Oldest first.
    taken: Vec<Taken>,
}

fn lock(registry: &Mutex<Registry>) -> MutexGuard<'_, Registry> {
    // As `Daemon::reg`: every change is complete-or-nothing, so a
    // poisoned lock still holds consistent data.
    registry.lock().unwrap_or_else(|p| p.into_inner())
}

impl<'a> Undo<'a> {
    /// A guard that has taken nothing yet; the registry is not locked.
    pub fn new(registry: &'a Mutex<Registry>, dp: &'a DataplaneHandle) -> Undo<'a> {
        Undo {
            registry,
            locked: None,
            dp,
            taken: Vec::new(),
        }
    }

    /// The registry, locked now if it was not (and then until the guard
    /// goes).
    pub fn reg(&mut self) -> &mut Registry {
        self.locked.get_or_insert_with(|| lock(self.registry))
    }

    /// Takes an address of `network`: `requested`, or the lowest free.
    /// `None` if there is no such network.
    pub fn allocate(
        &mut self,
        network: &str,
        requested: Option<Ipv4Addr>,
    ) -> Option<Result<Ipv4Addr, IpamError>> {
        let net = self.reg().network_mut(network)?;
        let ip = match net.ipam.allocate(requested) {
            Ok(ip) => ip,
            Err(e) => return Some(Err(e)),
        };
        self.taken.push(Taken::Address {
            network: network.to_string(),
            ip,
        });
        Some(Ok(ip))
    }

    /// Takes an IPv6 address of `network` if it is dual stack: `requested`,
    /// or the lowest free. `Ok(None)` for a network without IPv6 (a
    /// requested address is then refused).
    pub fn allocate6(
        &mut self,
        network: &str,
        requested: Option<Ipv6Addr>,
    ) -> Result<Option<Ipv6Addr>, String> {
        let Some(net) = self.reg().network_mut(network) else {
            return Err(format!("no network named '{network}'"));
        };
        let Some(ipam) = net.ipam6.as_mut() else {
            return match requested {
                Some(_) => Err(format!("network '{network}' has no IPv6 subnet")),
                None => Ok(None),
            };
        };
        let ip = ipam.allocate(requested).map_err(|e| e.to_string())?;
        self.taken.push(Taken::Address6 {
            network: network.to_string(),
            ip,
        });
        Ok(Some(ip))
    }

    /// Adds a network to the data path.
    pub fn add_network(&mut self, spec: NetworkSpec) -> Result<NetworkId, ControlError> {
        let id = self.dp.add_network(spec).map_err(gone)?;
        self.taken.push(Taken::Network(id));
        Ok(id)
    }

    /// Adds a port to the data path, in `group`'s shard.
    pub fn add_port(
        &mut self,
        port: Box<dyn Port>,
        spec: PortSpec,
        group: Option<u64>,
    ) -> Result<PortId, ControlError> {
        let id = match self.dp.add_port_in_group(port, spec, group) {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => return Err(ControlError::failed(e.to_string())),
            Err(e) => return Err(gone(e)),
        };
        self.taken.push(Taken::Port(id));
        Ok(id)
    }

    /// Hands bound sockets to the data path as forwards to `port` (all or
    /// none); their ids, in order.
    pub fn add_forwards(
        &mut self,
        port: PortId,
        forwards: Vec<(OwnedFd, Mapping)>,
    ) -> Result<Vec<u32>, ControlError> {
        let ids = match self.dp.add_forwards(port, forwards) {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => return Err(ControlError::failed(e)),
            Err(e) => return Err(gone(e)),
        };
        self.taken.push(Taken::Forwards(ids.clone()));
        Ok(ids)
    }

    /// An endpoint already attached (and committed) by an earlier step,
    /// to detach if this request does not commit.
    pub fn took_endpoint(&mut self, endpoint_id: String) {
        self.taken.push(Taken::Endpoint(endpoint_id));
    }

    /// Keeps everything taken; the registry is unlocked.
    pub fn commit(mut self) {
        self.taken.clear();
    }
}

impl Drop for Undo<'_> {
    fn drop(&mut self) {
        if self.taken.is_empty() {
            return;
        }
        let dp = self.dp;
        let mut taken = std::mem::take(&mut self.taken);
        let reg = self.reg();
        while let Some(t) = taken.pop() {
            match t {
                Taken::Address { network, ip } => {
                    if let Some(n) = reg.network_mut(&network) {
                        n.ipam.release(ip);
                    }
                }
                Taken::Address6 { network, ip } => {
                    if let Some(i) = reg.network_mut(&network).and_then(|n| n.ipam6.as_mut()) {
                        i.release(ip);
                    }
                }
                Taken::Network(id) => {
                    let _ = dp.remove_network(id);
                }
                Taken::Port(id) => {
                    let _ = dp.remove_port(id);
                }
                Taken::Forwards(ids) => {
                    let _ = dp.remove_forwards(ids);
                }
                Taken::Endpoint(id) => {
                    super::attach::detach(reg, dp, &id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::control::Daemon;
    use crate::port::MemoryPort;
    use crate::publish::Protocol;
    use crate::security::PortPolicy;
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;
    use std::sync::Arc;

    fn daemon() -> Arc<Daemon> {
        Daemon::start(&Config::embedded()).expect("the daemon starts")
    }

    /// The guard holds the registry's lock: it is read through the guard.
    fn port_spec(undo: &mut Undo<'_>, ip: Ipv4Addr) -> PortSpec {
        PortSpec {
            name: "undo-test".into(),
            network: undo.reg().network("default").unwrap().dp,
            policy: PortPolicy::endpoint(crate::ipam::Ipam::mac_for(ip), ip),
            mtu: 1500,
            allow_host_loopback: false,
            loopback_unreachable: false,
        }
    }

    /// A bound TCP listener on a free loopback port, as `bind_spec` makes.
    fn listener() -> (OwnedFd, Mapping) {
        let any = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        let fd = crate::sys::sock::bind_listener(true, any).unwrap();
        let host = crate::sys::sock::local_addr(fd.as_raw_fd()).unwrap();
        let m = Mapping {
            proto: Protocol::Tcp,
            host,
            container_port: 80,
        };
        (fd, m)
    }

    fn in_use(d: &Daemon) -> usize {
        d.reg().network("default").unwrap().ipam.in_use()
    }

    fn networks(d: &Daemon) -> usize {
        d.dp.snapshot().unwrap().networks.len()
    }

    fn spec_for(name: &str) -> NetworkSpec {
        let mut cfg = Config::embedded().networks[0].clone();
        cfg.name = name.into();
        cfg.subnet = "10.99.0.0/24".parse().unwrap();
        cfg.ip_range = cfg.subnet;
        cfg.gateway = "10.99.0.1".parse().unwrap();
        super::super::networks::network_spec(&cfg, &Config::embedded().limits)
    }

    /// Takes one of everything; returns what was taken.
    fn take_all(undo: &mut Undo<'_>) -> (Ipv4Addr, NetworkId, PortId, u32, SocketAddr) {
        let ip = undo.allocate("default", None).unwrap().unwrap();
        let net = undo.add_network(spec_for("undo-net")).unwrap();
        let spec = port_spec(undo, ip);
        let port = undo
            .add_port(Box::new(MemoryPort::sink()), spec, None)
            .unwrap();
        let (fd, m) = listener();
        let ids = undo.add_forwards(port, vec![(fd, m)]).unwrap();
        (ip, net, port, ids[0], m.host)
    }

    #[test]
    fn what_was_taken_is_given_back_unless_committed() {
        let d = daemon();
        let nets = networks(&d);
        let (ip, _, port, forward, host) = {
            let mut undo = d.undo();
            take_all(&mut undo)
            // Dropped without commit: as if the request had failed here.
        };
        assert_eq!(in_use(&d), 0, "{ip} is released");
        assert_eq!(networks(&d), nets, "the network is removed");
        assert_eq!(d.dp.forward_counts(vec![forward]).unwrap(), vec![None]);
        assert!(!d.dp.remove_port(port).unwrap(), "the port is removed");
        // The forward's socket is closed: its host port can be bound again.
        crate::sys::sock::bind_listener(true, host).expect("the host port is free");

        let (ip2, net, port, forward, _) = {
            let mut undo = d.undo();
            let taken = take_all(&mut undo);
            undo.commit();
            taken
        };
        assert_eq!(ip2, ip, "the same lowest free address again");
        assert_eq!(in_use(&d), 1);
        assert_eq!(networks(&d), nets + 1);
        assert!(d.dp.forward_counts(vec![forward]).unwrap()[0].is_some());
        assert!(d.dp.remove_port(port).unwrap(), "the port stayed");
        assert!(d.dp.remove_network(net).unwrap().is_ok());
    }

    #[test]
    fn a_refused_take_is_not_given_back() {
        let d = daemon();
        let mut undo = d.undo();
        let ip = undo.allocate("default", None).unwrap().unwrap();
        assert!(undo.allocate("nowhere", None).is_none());
        // Refused: the address is someone else's (here, this guard's).
        assert!(matches!(
            undo.allocate("default", Some(ip)),
            Some(Err(IpamError::InUse { .. }))
        ));
        drop(undo);
        assert_eq!(in_use(&d), 0);
    }

    #[test]
    fn an_endpoint_taken_is_detached() {
        let d = daemon();
        let (fd, m) = listener();
        let (ip, port, forward) = {
            let mut undo = d.undo();
            let ip = undo.allocate("default", None).unwrap().unwrap();
            let spec = port_spec(&mut undo, ip);
            let port = undo
                .add_port(Box::new(MemoryPort::sink()), spec, None)
                .unwrap();
            let forward = undo.add_forwards(port, vec![(fd, m)]).unwrap()[0];
            undo.reg().endpoints.insert(
                "ep".into(),
                super::super::registry::Endpoint {
                    id: "ep".into(),
                    container_id: "c0ffee".into(),
                    name: "undone".into(),
                    network: "default".into(),
                    ip,
                    ip6: None,
                    mac: crate::ipam::Ipam::mac_for(ip),
                    mtu: 1500,
                    port,
                    published: Vec::new(),
                    aliases: Vec::new(),
                    ifname: "eth0".into(),
                    pid: None,
                    sole_tenant: false,
                    dns: Vec::new(),
                },
            );
            undo.commit();
            (ip, port, forward)
        };
        assert_eq!(d.endpoint_ip("undone"), Some(ip));
        {
            // The registry is not locked while the guard has not used it.
            let mut undo = d.undo();
            undo.took_endpoint("ep".into());
            assert_eq!(d.endpoint_ip("undone"), Some(ip));
        }
        assert_eq!(d.endpoint_ip("undone"), None);
        assert_eq!(in_use(&d), 0);
        assert_eq!(d.dp.forward_counts(vec![forward]).unwrap(), vec![None]);
        assert!(!d.dp.remove_port(port).unwrap());
    }
}
