//! Attaching to networks: a container's TAP (`lanyard run`, `connect`), a
//! host interface (`lanyard attach`), and taking them off again. What an
//! attach takes (an address, a data-path port, forwards) it takes through
//! an [`Undo`](super::undo::Undo) guard, so a failed one leaves everything
//! as it was.

use std::os::fd::OwnedFd;

use serde_json::{json, Value};

use super::ports::{parse_specs, publish_on};
use super::registry::{Endpoint, Interface, Registry};
use super::{gone, report, AttachReply, AttachRequest, ControlError, Daemon, PublishedPort};
use crate::config::{check_name, MAX_MTU, MIN_MTU};
use crate::dataplane::{DataplaneHandle, PortSpec};
use crate::ipam::Ipam;
use crate::log;
use crate::port::{self, PortSource};
use crate::security::PortPolicy;
use crate::sys::random_id;

/// The data path keeps the ports of one container on one shard.
fn container_group(container_id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    container_id.hash(&mut h);
    h.finish()
}

/// Takes an endpoint off its network: its port, its address, its DNS
/// names; false if unknown. `Daemon::detach_endpoint`, and the undo of a
/// `connect` whose interface could not be configured.
pub(super) fn detach(reg: &mut Registry, dp: &DataplaneHandle, endpoint_id: &str) -> bool {
    let Some(ep) = reg.endpoints.remove(endpoint_id) else {
        return false;
    };
    if let Some(n) = reg.notify.remove(endpoint_id) {
        n.send(&super::proto::Event::Detached {
            ifname: ep.ifname.clone(),
            network: ep.network.clone(),
        });
    }
    if let Err(e) = dp.remove_port(ep.port) {
        log::warn!("detaching {}: {e}", ep.name);
    }
    if let Some(n) = reg.network_mut(&ep.network) {
        n.ipam.release(ep.ip);
        if let (Some(ip6), Some(ipam6)) = (ep.ip6, n.ipam6.as_mut()) {
            ipam6.release(ip6);
        }
        for ip in std::iter::once(ep.ip.into()).chain(ep.ip6.map(Into::into)) {
            let _ = dp.set_names(n.dp, ip, ep.container_id.clone(), Vec::new());
        }
    }
    log::info!("container stopped: {}", ep.summary());
    true
}

impl Daemon {
    /// Attaches a container's TAP. On any error nothing is changed (the
    /// address is released, the port removed, the fd closed).
    pub fn attach_tap(
        &self,
        mut req: AttachRequest,
        tap: OwnedFd,
    ) -> Result<AttachReply, ControlError> {
        req.network = self.network_name(&req.network);
        if let Some(name) = &req.name {
            check_name("--name", name).map_err(|e| ControlError::invalid(e.to_string()))?;
        }
        if let Some(mtu) = req.mtu {
            if !(MIN_MTU..=MAX_MTU).contains(&mtu) {
                return Err(ControlError::invalid(format!(
                    "--mtu: {mtu} is out of range (allowed {MIN_MTU}..={MAX_MTU})"
                )));
            }
        }
        if req.dns.len() > super::proto::MAX_DNS_SERVERS {
            return Err(ControlError::invalid(format!(
                "--dns: at most {} servers",
                super::proto::MAX_DNS_SERVERS
            )));
        }
        if let Some(bad) = req
            .dns
            .iter()
            .find(|a| a.is_unspecified() || a.is_multicast())
        {
            return Err(ControlError::invalid(format!(
                "--dns: {bad} is not a resolver's address"
            )));
        }
        let specs = parse_specs(&req.publish)?;
        if req.container_id.is_empty()
            || req.container_id.len() > 64
            || !req.container_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ControlError::invalid(
                "container_id must be 1-64 alphanumerics",
            ));
        }
        let mut undo = self.undo();
        let reg = undo.reg();
        // After a restart: this container's held address is its own again;
        // others' lapse when their time is up.
        reg.settle_reservations(
            std::time::Instant::now(),
            Some((&req.container_id, &req.network)),
        );
        let name = req
            .name
            .clone()
            .unwrap_or_else(|| req.container_id.chars().take(12).collect());
        for a in &req.aliases {
            check_name("--alias", a).map_err(|e| ControlError::invalid(e.to_string()))?;
        }
        if reg.name_in_use(&name, &req.container_id) {
            return Err(ControlError::invalid(format!(
                "--name: the name '{name}' is already in use by another container"
            )));
        }
        if reg
            .endpoints_of(&req.container_id)
            .iter()
            .any(|e| e.network == req.network)
        {
            return Err(ControlError::invalid(format!(
                "the container is already on network '{}'",
                req.network
            )));
        }
        let no_network =
            || ControlError::invalid(format!("--network: no network named '{}'", req.network));
        let net = reg.network(&req.network).ok_or_else(no_network)?;
        let sole = crate::security::SubnetSources {
            subnet: net.config.subnet,
            gateway: [Some(net.config.gateway), net.config.dns.map(|d| d.ip)],
        };
        let (dp_net, prefix_len, gateway, txqueuelen, network_mtu) = (
            net.dp,
            net.config.subnet.prefix_len(),
            net.config.gateway,
            net.config.txqueuelen,
            net.config.mtu,
        );
        let ip = undo
            .allocate(&req.network, req.ip)
            .ok_or_else(no_network)?
            .map_err(|e| match req.ip {
                Some(_) => ControlError::invalid(format!("--ip: {e}")),
                None => ControlError::failed(format!("network '{}': {e}", req.network)),
            })?;
        let ip6 = undo
            .allocate6(&req.network, req.ip6)
            .map_err(|e| match req.ip6 {
                Some(_) => ControlError::invalid(format!("--ip6: {e}")),
                None => ControlError::failed(format!("network '{}': {e}", req.network)),
            })?;
        let net6 = undo.reg().network(&req.network).and_then(|n| n.config.ipv6);
        let ipv6 = match (ip6, net6) {
            (Some(ip), Some(v)) => Some(crate::container::Ipv6Config {
                ip,
                prefix_len: v.subnet.prefix_len(),
                gateway: v.gateway,
            }),
            _ => None,
        };
        let mac = req.mac.unwrap_or_else(|| Ipam::mac_for(ip));
        let mtu = req.mtu.unwrap_or(network_mtu);
        let allow_host_loopback = req
            .allow_host_loopback
            .unwrap_or(self.nat_defaults.allow_host_loopback);
        let port = port::open(PortSource::Tap(tap))
            .map_err(|e| ControlError::invalid(format!("the fd sent is not usable: {e}")))?;
        let spec = PortSpec {
            name: name.clone(),
            network: dp_net,
            policy: {
                let p = PortPolicy::endpoint(mac, ip).with_ipv6(ip6, net6.map(|v| v.subnet));
                if req.sole_tenant {
                    // Any IPv4 source of its own network's: there is no
                    // neighbour to impersonate, and it may take DHCP's
                    // address as well as the one it was configured with.
                    PortPolicy {
                        ipv4_subnet: Some(sole),
                        ..p
                    }
                } else {
                    p
                }
            },
            mtu,
            allow_host_loopback,
            // slirp4netns's answer for its tenant (see `PortSpec`).
            loopback_unreachable: req.sole_tenant,
        };
        let group = Some(container_group(&req.container_id));
        let port_id = undo.add_port(port, spec, group)?;
        let published = publish_on(&mut undo, port_id, &name, &specs)?;
        let published_report: Vec<PublishedPort> =
            published.iter().map(|p| report(&name, p)).collect();
        // DNS: the name, the aliases, and the short container id.
        let mut names = vec![name.clone()];
        names.extend(req.aliases.iter().cloned());
        let short: String = req.container_id.chars().take(12).collect();
        if !names.contains(&short) {
            names.push(short);
        }
        let resolvers: Vec<std::net::SocketAddr> = req
            .dns
            .iter()
            .map(|a| std::net::SocketAddr::new(*a, 53))
            .collect();
        for addr in std::iter::once(ip.into()).chain(ip6.map(Into::into)) {
            if let Err(e) = self
                .dp
                .set_names(dp_net, addr, req.container_id.clone(), names.clone())
            {
                log::warn!("DNS names for {name}: {e}");
            }
            if !resolvers.is_empty() {
                if let Err(e) = self.dp.set_resolvers(dp_net, addr, resolvers.clone()) {
                    log::warn!("--dns for {name}: {e}");
                }
            }
        }
        let endpoint_id = random_id();
        undo.reg().endpoints.insert(
            endpoint_id.clone(),
            Endpoint {
                id: endpoint_id.clone(),
                container_id: req.container_id.clone(),
                name: name.clone(),
                network: req.network.clone(),
                ip,
                ip6,
                mac,
                mtu,
                port: port_id,
                published,
                aliases: req.aliases.clone(),
                ifname: req.ifname.clone().unwrap_or_else(|| "eth0".into()),
                pid: req.pid,
                sole_tenant: req.sole_tenant,
                dns: req.dns.clone(),
            },
        );
        let line = undo.reg().endpoints.get(&endpoint_id).map(|e| e.summary());
        undo.commit();
        if let Some(line) = line {
            log::info!("container started: {line}, switch port {port_id}");
        }
        Ok(AttachReply {
            endpoint_id,
            container_id: req.container_id,
            name,
            network: req.network,
            ip,
            prefix_len,
            gateway,
            mac: mac.to_string(),
            mtu,
            txqueuelen,
            nameserver: gateway,
            ipv6,
            published: published_report,
        })
    }

    /// Detaches every endpoint of a container (its `run` went away).
    pub fn detach_container(&self, container_id: &str) {
        let ids: Vec<String> = self
            .reg()
            .endpoints_of(container_id)
            .iter()
            .map(|e| e.id.clone())
            .collect();
        for id in ids {
            self.detach_endpoint(&id);
        }
    }

    /// `--network container:NAME`: the process to join and where its DNS is.
    pub fn container_info(&self, container: &str) -> Result<Value, ControlError> {
        let reg = self.reg();
        let ep = reg
            .find_container(container)
            .map_err(ControlError::invalid)?;
        let Some(pid) = ep.pid else {
            return Err(ControlError::invalid(format!(
                "container '{container}' has no known process"
            )));
        };
        let nameserver = reg
            .network(&ep.network)
            .map(|n| n.config.gateway.to_string());
        Ok(
            json!({ "pid": pid, "name": ep.name, "container_id": ep.container_id, "nameserver": nameserver }),
        )
    }

    /// `lanyard connect NET CONTAINER`: a new interface in the running
    /// container, made by a helper process that joins its namespaces.
    pub fn connect(
        &self,
        network: &str,
        container: &str,
        ip: Option<std::net::Ipv4Addr>,
        aliases: &[String],
    ) -> Result<Value, ControlError> {
        let (container_id, name, pid, n, dns) = {
            let reg = self.reg();
            let ep = reg
                .find_container(container)
                .map_err(ControlError::invalid)?;
            let pid = ep.pid.ok_or_else(|| {
                ControlError::invalid(format!("container '{container}' has no known process"))
            })?;
            if reg.network(network).is_none() {
                return Err(ControlError::invalid(format!(
                    "no network named '{network}'"
                )));
            }
            let eps = reg.endpoints_of(&ep.container_id);
            if eps.iter().any(|e| e.network == network) {
                return Err(ControlError::invalid(format!(
                    "container '{container}' is already on network '{network}'"
                )));
            }
            let used: Vec<&str> = eps.iter().map(|e| e.ifname.as_str()).collect();
            let n = (0..)
                .find(|i| !used.contains(&format!("eth{i}").as_str()))
                .unwrap_or(0);
            (
                ep.container_id.clone(),
                ep.name.clone(),
                pid,
                n,
                ep.dns.clone(),
            )
        };
        let ifname = format!("eth{n}");
        let (mut helper, tap) = crate::container::helper::start_tap_helper(pid, &ifname)
            .map_err(ControlError::failed)?;
        let req = AttachRequest {
            container_id: container_id.clone(),
            name: Some(name.clone()),
            network: network.to_string(),
            ip,
            ip6: None,
            mtu: None,
            allow_host_loopback: None,
            publish: Vec::new(),
            aliases: aliases.to_vec(),
            ifname: Some(ifname.clone()),
            pid: Some(pid),
            dns,
            mac: None,
            sole_tenant: false,
        };
        let reply = match self.attach_tap(req, tap) {
            Ok(r) => r,
            Err(e) => {
                helper.abort();
                return Err(e);
            }
        };
        // Until the container has configured its interface, the endpoint
        // is taken back on error. The registry stays unlocked meanwhile
        // (the helper may take seconds).
        let mut undo = self.undo();
        undo.took_endpoint(reply.endpoint_id.clone());
        let cfg = crate::container::IfConfig {
            ifname: ifname.clone(),
            ip: reply.ip,
            prefix_len: reply.prefix_len,
            gateway: reply.gateway,
            mac: reply.mac.clone(),
            mtu: reply.mtu,
            txqueuelen: reply.txqueuelen,
            default_route: false,
            ipv6: reply.ipv6,
        };
        if let Err(e) = helper.configure(&cfg) {
            return Err(ControlError::failed(format!(
                "configuring {ifname} in '{name}': {e}"
            )));
        }
        undo.commit();
        log::info!("connected {name} to {network} as {ifname} {}", reply.ip);
        serde_json::to_value(reply).map_err(|e| ControlError::failed(e.to_string()))
    }

    /// `lanyard disconnect NET CONTAINER`.
    pub fn disconnect(&self, network: &str, container: &str) -> Result<Value, ControlError> {
        let id = {
            let reg = self.reg();
            let ep = reg
                .find_container(container)
                .map_err(ControlError::invalid)?;
            let cid = ep.container_id.clone();
            reg.endpoints_of(&cid)
                .iter()
                .find(|e| e.network == network)
                .map(|e| e.id.clone())
                .ok_or_else(|| {
                    ControlError::invalid(format!(
                        "container '{container}' is not on network '{network}'"
                    ))
                })?
        };
        self.detach_endpoint(&id);
        Ok(json!({ "disconnected": network }))
    }

    /// Tells `notifier` when endpoint `endpoint_id` is detached by anyone
    /// else (the connection that attached it is `notifier`).
    pub fn notify_on_detach(&self, endpoint_id: &str, notifier: super::registry::Notifier) {
        let mut reg = self.reg();
        if reg.endpoints.contains_key(endpoint_id) {
            reg.notify.insert(endpoint_id.to_string(), notifier);
            // Kept: a restarted daemon holds its address for its `run`.
            self.persist_registry(&reg);
        }
    }

    /// Detaches an endpoint and releases its address; false if unknown.
    pub fn detach_endpoint(&self, endpoint_id: &str) -> bool {
        let mut reg = self.reg();
        let kept = reg.notify.contains_key(endpoint_id);
        let gone = detach(&mut reg, &self.dp, endpoint_id);
        if gone && kept {
            self.persist_registry(&reg);
        }
        gone
    }

    pub fn attach_interface(&self, network: &str, ifname: &str) -> Result<Value, ControlError> {
        let mut undo = self.undo();
        let reg = undo.reg();
        if reg.interfaces.contains_key(ifname) {
            return Err(ControlError::invalid(format!(
                "interface '{ifname}' is already attached"
            )));
        }
        let net = reg.network(network).ok_or_else(|| {
            ControlError::invalid(format!("--network: no network named '{network}'"))
        })?;
        let (dp_net, mtu) = (net.dp, net.config.mtu);
        let port = port::open(PortSource::Packet(ifname.to_string()))
            .map_err(|e| ControlError::invalid(format!("cannot attach '{ifname}': {e}")))?;
        let spec = PortSpec {
            name: ifname.to_string(),
            network: dp_net,
            policy: PortPolicy::TRUSTED,
            mtu,
            allow_host_loopback: false,
            loopback_unreachable: false,
        };
        let id = undo.add_port(port, spec, None)?;
        undo.reg().interfaces.insert(
            ifname.to_string(),
            Interface {
                ifname: ifname.to_string(),
                network: network.to_string(),
                port: id,
            },
        );
        undo.commit();
        log::info!("attached interface {ifname} to {network}, port {id}");
        Ok(json!({ "ifname": ifname, "network": network, "port": id }))
    }

    pub fn detach_interface(&self, ifname: &str) -> Result<Value, ControlError> {
        let mut reg = self.reg();
        let Some(i) = reg.interfaces.remove(ifname) else {
            return Err(ControlError::invalid(format!(
                "interface '{ifname}' is not attached"
            )));
        };
        self.dp.remove_port(i.port).map_err(gone)?;
        log::info!("detached interface {ifname} from {}", i.network);
        Ok(json!({ "ifname": ifname }))
    }
}
