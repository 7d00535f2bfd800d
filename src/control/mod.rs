//! The control plane: the registry of networks and endpoints, the
//! operations on it (attach a container's TAP, attach an interface, report),
//! and the control socket that serves them. It never touches packets: it
//! tells the data path thread what to attach, through `DataplaneHandle`.

pub mod client;
pub mod dhcp;
pub mod proto;
pub mod registry;
pub mod server;

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::config::{check_name, Config, Limits, NatSettings, MAX_MTU, MIN_MTU};
use crate::dataplane::{Dataplane, DataplaneConfig, DataplaneHandle, NetworkSpec, PortSpec};
use crate::ipam::Ipam;
use crate::log;
use crate::port::{PacketPort, TapPort};
use crate::security::PortPolicy;
use crate::sys::random_id;

pub use proto::{AttachReply, AttachRequest, ControlError, PublishedPort, Request, Response};
use registry::{Endpoint, Interface, NetworkEntry, Published, Registry};

use crate::publish::{Mapping, PublishSpec};

/// Parses `-p` specs, each error naming the spec.
fn parse_specs(specs: &[String]) -> Result<Vec<PublishSpec>, ControlError> {
    specs
        .iter()
        .map(|s| {
            s.parse::<PublishSpec>()
                .map_err(|e| ControlError::invalid(format!("-p {e}")))
        })
        .collect()
}

/// Binds the host side of one spec: a listener per port (and, for the
/// wildcard address, one on `[::]` too when the host has IPv6, as docker
/// does). Either every socket of the spec is bound or none.
fn bind_spec(spec: &PublishSpec) -> Result<Vec<(std::os::fd::OwnedFd, Mapping)>, ControlError> {
    use crate::nat::sock;
    use std::os::fd::AsRawFd;
    let mut out = Vec::new();
    for m in spec.mappings() {
        let tcp = m.proto == crate::publish::Protocol::Tcp;
        let fd = sock::bind_listener(tcp, m.host).map_err(|e| {
            let why = match e.raw_os_error() {
                Some(libc::EADDRINUSE) => "is already in use".to_string(),
                Some(libc::EACCES) => {
                    "needs privileges (ports below net.ipv4.ip_unprivileged_port_start)".to_string()
                }
                Some(libc::EADDRNOTAVAIL) => "is not an address of this host".to_string(),
                _ => format!("cannot be bound: {e}"),
            };
            ControlError::invalid(format!(
                "-p {spec}: host address {}/{} {why}",
                m.host, m.proto
            ))
        })?;
        let bound = sock::local_addr(fd.as_raw_fd())
            .map_err(|e| ControlError::failed(format!("-p {spec}: {e}")))?;
        let mapping = Mapping { host: bound, ..m };
        if m.host.ip().is_unspecified() && m.host.is_ipv4() {
            let v6 = std::net::SocketAddr::from((std::net::Ipv6Addr::UNSPECIFIED, bound.port()));
            if let Ok(fd6) = sock::bind_listener(tcp, v6) {
                out.push((fd6, Mapping { host: v6, ..m }));
            }
        }
        out.push((fd, mapping));
    }
    Ok(out)
}

/// The switch and its control plane, in one process: what `lanyard daemon`
/// serves on its socket and what `lanyard run` embeds when no daemon runs.
pub struct Daemon {
    registry: Mutex<Registry>,
    leases: Mutex<dhcp::Leases>,
    dhcp_settings: crate::config::DhcpSettings,
    dp: DataplaneHandle,
    limits: Limits,
    nat_defaults: NatSettings,
    dataplane: Mutex<Option<Dataplane>>,
}

/// The data path's NAT settings: the config's, with the DNS upstreams from
/// the host's resolv.conf when the config names none.
fn nat_config(config: &Config) -> crate::nat::NatConfig {
    let n = &config.nat;
    let mut upstreams = config.dns.upstream.clone();
    if upstreams.is_empty() {
        let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
        upstreams = crate::nat::dns::parse_resolv_conf(&text);
        if upstreams.is_empty() {
            log::warn!("no IPv4 nameserver in /etc/resolv.conf: containers' DNS queries will fail (set [dns] upstream)");
        }
    }
    crate::nat::NatConfig {
        max_flows: n.max_flows,
        max_flows_per_container: n.max_flows_per_container,
        tcp_established_timeout: n.tcp_established_timeout,
        tcp_transitory_timeout: n.tcp_transitory_timeout,
        udp_timeout: n.udp_timeout,
        udp_stream_timeout: n.udp_stream_timeout,
        icmp_timeout: n.icmp_timeout,
        dns_upstreams: upstreams,
    }
}

fn events_loop(
    daemon: std::sync::Weak<Daemon>,
    rx: crossbeam_channel::Receiver<crate::dataplane::Event>,
) {
    // Leases expire on time whether or not DHCP messages keep coming (a
    // flood must not hold its offers past their timeout).
    const EXPIRY_EVERY: std::time::Duration = std::time::Duration::from_secs(5);
    let mut last_expiry = std::time::Instant::now();
    loop {
        let r = rx.recv_timeout(EXPIRY_EVERY);
        let Some(d) = daemon.upgrade() else { return };
        match r {
            Ok(crate::dataplane::Event::Dhcp { net, port, frame }) => {
                d.dhcp(net, port, frame.bytes());
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
        if last_expiry.elapsed() >= EXPIRY_EVERY {
            last_expiry = std::time::Instant::now();
            d.expire_leases();
        }
    }
}

fn network_spec(n: &crate::config::NetworkConfig, limits: &Limits) -> NetworkSpec {
    NetworkSpec {
        name: n.name.clone(),
        subnet: n.subnet,
        gateway_ip: n.gateway,
        gateway_mac: Ipam::mac_for(n.gateway),
        fdb_max_entries: limits.fdb_max_entries,
        fdb_max_per_port: limits.fdb_max_per_port,
        mac_aging: n.mac_aging,
        nat: !n.internal,
    }
}

/// The data path keeps the ports of one container on one shard.
fn container_group(container_id: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    container_id.hash(&mut h);
    h.finish()
}

fn gone(e: impl std::fmt::Display) -> ControlError {
    ControlError::failed(format!("data path unavailable: {e}"))
}

impl Daemon {
    /// Starts the data path thread and creates the configured networks.
    pub fn start(config: &Config) -> std::io::Result<Arc<Daemon>> {
        let (events_tx, events_rx) = crossbeam_channel::bounded(1024);
        let dataplane = Dataplane::start(
            DataplaneConfig {
                threads: config.dataplane.shards(),
                max_ports: config.limits.max_ports,
                batch_size: config.limits.batch_size,
                nat: nat_config(config),
            },
            Some(events_tx),
        )?;
        let dp = dataplane.handle();
        let mut reg = Registry::default();
        for n in &config.networks {
            let id = dp
                .add_network(network_spec(n, &config.limits))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            reg.networks.push(NetworkEntry {
                config: n.clone(),
                id: random_id(),
                created: SystemTime::now(),
                ipam: Ipam::new(n.subnet, n.gateway, n.ip_range),
                dp: id,
                from_config: true,
            });
        }
        let daemon = Arc::new(Daemon {
            registry: Mutex::new(reg),
            leases: Mutex::new(dhcp::Leases::default()),
            dhcp_settings: config.dhcp.clone(),
            dp,
            limits: config.limits.clone(),
            nat_defaults: config.nat.clone(),
            dataplane: Mutex::new(Some(dataplane)),
        });
        // The data path's events (DHCP) are handled on a thread of their
        // own; it holds the daemon weakly and ends with the data path.
        let weak = Arc::downgrade(&daemon);
        std::thread::Builder::new()
            .name("lanyard-events".into())
            .spawn(move || events_loop(weak, events_rx))?;
        Ok(daemon)
    }

    /// One DHCP message from the data path.
    fn dhcp(&self, net: crate::dataplane::NetworkId, port: crate::port::PortId, frame: &[u8]) {
        let mut reg = self.reg();
        let Some(name) = reg
            .networks
            .iter()
            .find(|n| n.dp == net)
            .map(|n| n.config.name.clone())
        else {
            return;
        };
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let s = &self.dhcp_settings;
        if let Some(reply) = leases.handle(
            &mut reg,
            &name,
            frame,
            s.lease,
            s.max_leases,
            std::time::Instant::now(),
        ) {
            self.dp.send_frame(port, reply);
        }
    }

    fn expire_leases(&self) {
        let mut reg = self.reg();
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .expire(&mut reg, std::time::Instant::now());
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn reg(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves consistent data (every
        // mutation below is complete-or-nothing), so poisoning is ignored.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the data path thread is alive; a daemon whose switch died
    /// must not go on accepting containers.
    pub fn dataplane_running(&self) -> bool {
        self.dataplane
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|d| d.is_running())
    }

    /// Stops the data path; every port is closed.
    pub fn shutdown(&self) {
        if let Some(dp) = self
            .dataplane
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            dp.stop();
        }
    }

    /// Attaches a container's TAP. On any error nothing is changed (the
    /// address is released, the fd closed).
    pub fn attach_tap(
        &self,
        req: AttachRequest,
        tap: OwnedFd,
    ) -> Result<AttachReply, ControlError> {
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
        let specs = parse_specs(&req.publish)?;
        if req.container_id.is_empty()
            || req.container_id.len() > 64
            || !req.container_id.bytes().all(|b| b.is_ascii_alphanumeric())
        {
            return Err(ControlError::invalid(
                "container_id must be 1-64 alphanumerics",
            ));
        }
        let mut reg = self.reg();
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
        let net = reg.network_mut(&req.network).ok_or_else(|| {
            ControlError::invalid(format!("--network: no network named '{}'", req.network))
        })?;
        let ip = net.ipam.allocate(req.ip).map_err(|e| match req.ip {
            Some(_) => ControlError::invalid(format!("--ip: {e}")),
            None => ControlError::failed(format!("network '{}': {e}", req.network)),
        })?;
        let mac = Ipam::mac_for(ip);
        let mtu = req.mtu.unwrap_or(net.config.mtu);
        let allow_host_loopback = req
            .allow_host_loopback
            .unwrap_or(self.nat_defaults.allow_host_loopback);
        let (dp_net, prefix_len, gateway, txqueuelen) = (
            net.dp,
            net.config.subnet.prefix_len(),
            net.config.gateway,
            net.config.txqueuelen,
        );
        let release = |reg: &mut Registry| {
            if let Some(n) = reg.network_mut(&req.network) {
                n.ipam.release(ip);
            }
        };
        let port = match TapPort::from_fd(tap) {
            Ok(p) => p,
            Err(e) => {
                release(&mut reg);
                return Err(ControlError::invalid(format!(
                    "the fd sent is not usable: {e}"
                )));
            }
        };
        let spec = PortSpec {
            name: name.clone(),
            network: dp_net,
            policy: PortPolicy::endpoint(mac, ip),
            mtu,
            allow_host_loopback,
        };
        let group = Some(container_group(&req.container_id));
        let port_id = match self.dp.add_port_in_group(Box::new(port), spec, group) {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => {
                release(&mut reg);
                return Err(ControlError::failed(e.to_string()));
            }
            Err(e) => {
                release(&mut reg);
                return Err(gone(e));
            }
        };
        let published = match self.publish_on(port_id, &name, &specs) {
            Ok(p) => p,
            Err(e) => {
                let _ = self.dp.remove_port(port_id);
                release(&mut reg);
                return Err(e);
            }
        };
        let published_report: Vec<PublishedPort> =
            published.iter().map(|p| report(&name, p)).collect();
        // DNS: the name, the aliases, and the short container id.
        let mut names = vec![name.clone()];
        names.extend(req.aliases.iter().cloned());
        let short: String = req.container_id.chars().take(12).collect();
        if !names.contains(&short) {
            names.push(short);
        }
        if let Err(e) = self
            .dp
            .set_names(dp_net, ip, req.container_id.clone(), names)
        {
            log::warn!("DNS names for {name}: {e}");
        }
        let endpoint_id = random_id();
        reg.endpoints.insert(
            endpoint_id.clone(),
            Endpoint {
                id: endpoint_id.clone(),
                container_id: req.container_id.clone(),
                name: name.clone(),
                network: req.network.clone(),
                ip,
                mac,
                mtu,
                port: port_id,
                published,
                aliases: req.aliases.clone(),
                ifname: req.ifname.clone().unwrap_or_else(|| "eth0".into()),
                pid: req.pid,
            },
        );
        log::info!(
            "attached {name} ({}) to {} as {ip} {mac}, port {port_id}",
            &req.container_id[..req.container_id.len().min(12)],
            req.network
        );
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
            published: published_report,
        })
    }

    /// Binds and forwards the specs' ports to an endpoint port: all or
    /// nothing.
    fn publish_on(
        &self,
        port: crate::port::PortId,
        name: &str,
        specs: &[PublishSpec],
    ) -> Result<Vec<Published>, ControlError> {
        let mut bound = Vec::new();
        let mut spec_of = Vec::new();
        for spec in specs {
            // Dropping what was bound so far closes it again on error.
            for (fd, m) in bind_spec(spec)? {
                bound.push((fd, m));
                spec_of.push(spec.to_string());
            }
        }
        if bound.is_empty() {
            return Ok(Vec::new());
        }
        let mappings: Vec<Mapping> = bound.iter().map(|(_, m)| *m).collect();
        let ids = match self.dp.add_forwards(port, bound) {
            Ok(Ok(ids)) => ids,
            Ok(Err(e)) => return Err(ControlError::failed(e)),
            Err(e) => return Err(gone(e)),
        };
        let published: Vec<Published> = ids
            .into_iter()
            .zip(mappings)
            .zip(spec_of)
            .map(|((forward, mapping), spec)| Published {
                spec,
                mapping,
                forward,
            })
            .collect();
        for p in &published {
            log::info!(
                "published {} {} -> {name}:{}",
                p.mapping.proto,
                p.mapping.host,
                p.mapping.container_port
            );
        }
        Ok(published)
    }

    /// `lanyard port add`.
    pub fn port_add(&self, container: &str, spec: &str) -> Result<Value, ControlError> {
        let specs = parse_specs(&[spec.to_string()])?;
        let mut reg = self.reg();
        let ep = reg
            .find_container(container)
            .map_err(ControlError::invalid)?;
        let (id, port, name) = (ep.id.clone(), ep.port, ep.name.clone());
        let added = self.publish_on(port, &name, &specs)?;
        let out: Vec<PublishedPort> = added.iter().map(|p| report(&name, p)).collect();
        if let Some(e) = reg.endpoints.get_mut(&id) {
            e.published.extend(added);
        }
        serde_json::to_value(out).map_err(|e| ControlError::failed(e.to_string()))
    }

    /// `lanyard port rm`: the forwards made from `spec` stop accepting at
    /// once; connections already made finish.
    pub fn port_rm(&self, container: &str, spec: &str) -> Result<Value, ControlError> {
        let normal = parse_specs(&[spec.to_string()])?[0].to_string();
        let mut reg = self.reg();
        let ep = reg
            .find_container(container)
            .map_err(ControlError::invalid)?;
        let id = ep.id.clone();
        let (gone_now, kept): (Vec<Published>, Vec<Published>) =
            ep.published.iter().cloned().partition(|p| p.spec == normal);
        if gone_now.is_empty() {
            return Err(ControlError::invalid(format!(
                "container '{container}' does not publish {normal}"
            )));
        }
        self.dp
            .remove_forwards(gone_now.iter().map(|p| p.forward).collect())
            .map_err(gone)?;
        if let Some(e) = reg.endpoints.get_mut(&id) {
            e.published = kept;
        }
        Ok(serde_json::json!({ "removed": gone_now.len() }))
    }

    /// `lanyard port ls`.
    pub fn port_ls(&self, container: Option<&str>) -> Result<Value, ControlError> {
        let reg = self.reg();
        let eps: Vec<&Endpoint> = match container {
            Some(c) => vec![reg.find_container(c).map_err(ControlError::invalid)?],
            None => reg.endpoints.values().collect(),
        };
        let mut out: Vec<PublishedPort> = Vec::new();
        let mut ids = Vec::new();
        for e in eps {
            for p in &e.published {
                out.push(report(&e.name, p));
                ids.push(p.forward);
            }
        }
        if let Ok(counts) = self.dp.forward_counts(ids) {
            for (o, c) in out.iter_mut().zip(counts) {
                if let Some((a, r)) = c {
                    o.accepted = a;
                    o.refused = r;
                }
            }
        }
        serde_json::to_value(out).map_err(|e| ControlError::failed(e.to_string()))
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
        let (container_id, name, pid, n) = {
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
            (ep.container_id.clone(), ep.name.clone(), pid, n)
        };
        let ifname = format!("eth{n}");
        let (mut helper, tap) = crate::container::helper::start_tap_helper(pid, &ifname)
            .map_err(ControlError::failed)?;
        let req = AttachRequest {
            container_id: container_id.clone(),
            name: Some(name.clone()),
            network: network.to_string(),
            ip,
            mtu: None,
            allow_host_loopback: None,
            publish: Vec::new(),
            aliases: aliases.to_vec(),
            ifname: Some(ifname.clone()),
            pid: Some(pid),
        };
        let reply = match self.attach_tap(req, tap) {
            Ok(r) => r,
            Err(e) => {
                helper.abort();
                return Err(e);
            }
        };
        let cfg = crate::container::IfConfig {
            ifname: ifname.clone(),
            ip: reply.ip,
            prefix_len: reply.prefix_len,
            gateway: reply.gateway,
            mac: reply.mac.clone(),
            mtu: reply.mtu,
            txqueuelen: reply.txqueuelen,
            default_route: false,
        };
        if let Err(e) = helper.configure(&cfg) {
            self.detach_endpoint(&reply.endpoint_id);
            return Err(ControlError::failed(format!(
                "configuring {ifname} in '{name}': {e}"
            )));
        }
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

    /// Detaches an endpoint and releases its address; false if unknown.
    pub fn detach_endpoint(&self, endpoint_id: &str) -> bool {
        let mut reg = self.reg();
        let Some(ep) = reg.endpoints.remove(endpoint_id) else {
            return false;
        };
        if let Err(e) = self.dp.remove_port(ep.port) {
            log::warn!("detaching {}: {e}", ep.name);
        }
        if let Some(n) = reg.network_mut(&ep.network) {
            n.ipam.release(ep.ip);
            let _ = self
                .dp
                .set_names(n.dp, ep.ip, ep.container_id.clone(), Vec::new());
        }
        log::info!("detached {} ({}) from {}", ep.name, ep.ip, ep.network);
        true
    }

    pub fn attach_interface(&self, network: &str, ifname: &str) -> Result<Value, ControlError> {
        let mut reg = self.reg();
        if reg.interfaces.contains_key(ifname) {
            return Err(ControlError::invalid(format!(
                "interface '{ifname}' is already attached"
            )));
        }
        let net = reg.network(network).ok_or_else(|| {
            ControlError::invalid(format!("--network: no network named '{network}'"))
        })?;
        let (dp_net, mtu) = (net.dp, net.config.mtu);
        let port = PacketPort::open(ifname)
            .map_err(|e| ControlError::invalid(format!("cannot attach '{ifname}': {e}")))?;
        let spec = PortSpec {
            name: ifname.to_string(),
            network: dp_net,
            policy: PortPolicy::TRUSTED,
            mtu,
            allow_host_loopback: false,
        };
        let id = match self.dp.add_port(Box::new(port), spec) {
            Ok(Ok(id)) => id,
            Ok(Err(e)) => return Err(ControlError::failed(e.to_string())),
            Err(e) => return Err(gone(e)),
        };
        reg.interfaces.insert(
            ifname.to_string(),
            Interface {
                ifname: ifname.to_string(),
                network: network.to_string(),
                port: id,
            },
        );
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

    /// `lanyard network create`.
    pub fn network_create(
        &self,
        req: &crate::config::NetworkRequest,
    ) -> Result<Value, ControlError> {
        let mut reg = self.reg();
        let existing: Vec<_> = reg.networks.iter().map(|n| n.config.clone()).collect();
        let cfg = req
            .validate(&existing)
            .map_err(|e| ControlError::invalid(e.to_string()))?;
        let dp = self
            .dp
            .add_network(network_spec(&cfg, &self.limits))
            .map_err(gone)?;
        let entry = NetworkEntry {
            ipam: Ipam::new(cfg.subnet, cfg.gateway, cfg.ip_range),
            config: cfg,
            id: random_id(),
            created: SystemTime::now(),
            dp,
            from_config: false,
        };
        let out = json!({ "Id": entry.id, "Name": entry.config.name, "Subnet": entry.config.subnet.to_string(), "Gateway": entry.config.gateway.to_string() });
        log::info!(
            "created network {} {} gw {}",
            entry.config.name,
            entry.config.subnet,
            entry.config.gateway
        );
        reg.networks.push(entry);
        Ok(out)
    }

    /// `lanyard network rm`: refused while containers are attached, unless
    /// forced (they are disconnected first).
    pub fn network_rm(&self, name: &str, force: bool) -> Result<Value, ControlError> {
        let mut reg = self.reg();
        let Some(i) = reg.networks.iter().position(|n| n.config.name == name) else {
            return Err(ControlError::invalid(format!("no network named '{name}'")));
        };
        if reg.networks[i].from_config {
            return Err(ControlError::invalid(format!(
                "'{name}' is declared in the config file and cannot be removed"
            )));
        }
        let eps: Vec<String> = reg
            .endpoints
            .values()
            .filter(|e| e.network == name)
            .map(|e| e.id.clone())
            .collect();
        let ifs: Vec<String> = reg
            .interfaces
            .values()
            .filter(|i| i.network == name)
            .map(|i| i.ifname.clone())
            .collect();
        if (!eps.is_empty() || !ifs.is_empty()) && !force {
            return Err(ControlError::invalid(format!(
                "network '{name}' has {} container(s) and {} interface(s) attached (use --force to disconnect them)",
                eps.len(),
                ifs.len()
            )));
        }
        for id in eps {
            if let Some(ep) = reg.endpoints.remove(&id) {
                let _ = self.dp.remove_port(ep.port);
                log::info!("disconnected {} from {name} (network removed)", ep.name);
            }
        }
        for ifname in ifs {
            if let Some(i) = reg.interfaces.remove(&ifname) {
                let _ = self.dp.remove_port(i.port);
            }
        }
        let entry = reg.networks.remove(i);
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .network_removed(name);
        match self.dp.remove_network(entry.dp) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => log::warn!("removing network {name} from the data path: {e}"),
            Err(e) => return Err(gone(e)),
        }
        log::info!("removed network {name}");
        Ok(json!({ "removed": name }))
    }

    /// `lanyard network prune`: every runtime network with nothing on it.
    pub fn network_prune(&self) -> Result<Value, ControlError> {
        let names: Vec<String> = {
            let reg = self.reg();
            reg.networks
                .iter()
                .filter(|n| !n.from_config)
                .filter(|n| !reg.endpoints.values().any(|e| e.network == n.config.name))
                .filter(|n| !reg.interfaces.values().any(|i| i.network == n.config.name))
                .map(|n| n.config.name.clone())
                .collect()
        };
        for n in &names {
            self.network_rm(n, false)?;
        }
        Ok(json!({ "removed": names }))
    }

    pub fn network_ls(&self) -> Value {
        let reg = self.reg();
        Value::Array(
            reg.networks
                .iter()
                .map(|n| {
                    json!({
                        "Name": n.config.name,
                        "Id": n.id,
                        "Driver": "bridge",
                        "Scope": "local",
                        "Subnet": n.config.subnet.to_string(),
                        "Gateway": n.config.gateway.to_string(),
                        "Containers": reg.endpoints.values().filter(|e| e.network == n.config.name).count(),
                    })
                })
                .collect(),
        )
    }

    pub fn network_inspect(&self, name: Option<&str>) -> Result<Value, ControlError> {
        let reg = self.reg();
        match name {
            Some(n) => {
                let net = reg
                    .network(n)
                    .ok_or_else(|| ControlError::invalid(format!("no network named '{n}'")))?;
                Ok(Value::Array(vec![reg.inspect(net)]))
            }
            None => Ok(Value::Array(
                reg.networks.iter().map(|n| reg.inspect(n)).collect(),
            )),
        }
    }

    pub fn fdb(&self, network: Option<&str>) -> Result<Value, ControlError> {
        if let Some(n) = network {
            if self.reg().network(n).is_none() {
                return Err(ControlError::invalid(format!("no network named '{n}'")));
            }
        }
        let snap = self.dp.snapshot().map_err(gone)?;
        let nets: Vec<_> = snap
            .networks
            .into_iter()
            .filter(|n| network.is_none_or(|want| n.name == want))
            .collect();
        serde_json::to_value(nets).map_err(|e| ControlError::failed(e.to_string()))
    }

    pub fn stats(&self) -> Result<Value, ControlError> {
        let snap = self.dp.snapshot().map_err(gone)?;
        let mut v = serde_json::to_value(snap).map_err(|e| ControlError::failed(e.to_string()))?;
        let dhcp = self
            .leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counters;
        v["dhcp"] = serde_json::to_value(dhcp).unwrap_or_default();
        v["dataplane_threads"] = self.dp.shards().into();
        Ok(v)
    }

    /// Serves one request that came without an fd (or whose fds are
    /// consumed by `fds`); attach requests are handled by the connection,
    /// which ties the endpoint to its lifetime.
    pub fn handle(&self, req: &Request) -> Result<Value, ControlError> {
        match req {
            Request::Attach(_) => Err(ControlError::invalid(
                "attach must carry a TAP fd (SCM_RIGHTS)",
            )),
            Request::AttachInterface { network, ifname } => self.attach_interface(network, ifname),
            Request::DetachInterface { ifname } => self.detach_interface(ifname),
            Request::NetworkLs {} => Ok(self.network_ls()),
            Request::NetworkCreate(r) => self.network_create(r),
            Request::NetworkRm { name, force } => self.network_rm(name, *force),
            Request::NetworkPrune {} => self.network_prune(),
            Request::NetworkInspect { name } => self.network_inspect(name.as_deref()),
            Request::Fdb { network } => self.fdb(network.as_deref()),
            Request::Stats {} => self.stats(),
            Request::ContainerInfo { container } => self.container_info(container),
            Request::Connect {
                network,
                container,
                ip,
                aliases,
            } => self.connect(network, container, *ip, aliases),
            Request::Disconnect { network, container } => self.disconnect(network, container),
            Request::PortAdd { container, spec } => self.port_add(container, spec),
            Request::PortRm { container, spec } => self.port_rm(container, spec),
            Request::PortLs { container } => self.port_ls(container.as_deref()),
            Request::Conntrack {} => {
                let flows = self.dp.conntrack().map_err(gone)?;
                serde_json::to_value(flows).map_err(|e| ControlError::failed(e.to_string()))
            }
        }
    }

    /// The address of an endpoint, for tests and diagnostics.
    pub fn endpoint_ip(&self, name: &str) -> Option<Ipv4Addr> {
        self.reg()
            .endpoints
            .values()
            .find(|e| e.name == name)
            .map(|e| e.ip)
    }
}

fn report(container: &str, p: &Published) -> PublishedPort {
    PublishedPort {
        container: container.to_string(),
        spec: p.spec.clone(),
        proto: p.mapping.proto,
        host: p.mapping.host,
        container_port: p.mapping.container_port,
        accepted: 0,
        refused: 0,
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.shutdown();
    }
}
