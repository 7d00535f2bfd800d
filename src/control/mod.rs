//! The control plane: the registry of networks and endpoints, the
//! operations on it, and the control socket that serves them. It never
//! touches packets: it tells the data path what to attach, through
//! `DataplaneHandle`.
//!
//! By concern:
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | the `Daemon`: start, shutdown, the request dispatch (`handle`), limits, snapshots (FDB, stats, conntrack) |
//! | `attach.rs` | containers' TAPs and host interfaces: attach, detach, `connect`/`disconnect` |
//! | `networks.rs` | `network create/rm/prune/ls/inspect` |
//! | `ports.rs` | published ports: `-p` specs, binding them, `port add/rm/ls` |
//! | `events.rs` | the data path's events (DHCP messages) and lease expiry, for `dhcp.rs` |
//! | `undo.rs` | the guard a request takes things through: given back unless it commits |
//! | `registry.rs`, `dhcp.rs` | the state, the DHCP server |
//! | `server.rs`, `client.rs`, `proto.rs` | the control socket |

pub mod capture;
pub mod client;
pub mod dhcp;
pub mod proto;
pub mod registry;
pub mod server;
pub mod state;

mod attach;
mod events;
mod networks;
mod ports;
pub mod resolv;
mod undo;

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use serde_json::Value;

use crate::config::{Config, Limits, NatSettings};
use crate::dataplane::{Dataplane, DataplaneConfig, DataplaneHandle};
use crate::ipam::{Ipam, Ipam6};
use crate::log;
use crate::sys::random_id;

pub use proto::{AttachReply, AttachRequest, ControlError, PublishedPort, Request, Response};
use registry::{NetworkEntry, Published, Registry};
use undo::Undo;

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
    /// The sandbox's report line and the directory it may write in, set
    /// once by whoever confined the process (`lanyard daemon`).
    sandbox: std::sync::OnceLock<(String, Option<std::path::PathBuf>)>,
    /// Where the runtime networks are kept (`lanyard daemon` only; an
    /// embedded switch keeps nothing).
    state: std::sync::OnceLock<state::StateFile>,
    /// Set by `shutdown`: from then on nothing is written to the state
    /// file (the containers are still attached, as a restart must find).
    stopping: std::sync::atomic::AtomicBool,
    /// Captures running (`capture::MAX_CAPTURES` at most).
    captures: Arc<std::sync::atomic::AtomicUsize>,
}

/// The data path's NAT settings, from the config.
fn nat_config(config: &Config) -> crate::nat::NatConfig {
    let n = &config.nat;
    crate::nat::NatConfig {
        max_flows: n.max_flows,
        max_flows_per_container: n.max_flows_per_container,
        tcp_established_timeout: n.tcp_established_timeout,
        tcp_transitory_timeout: n.tcp_transitory_timeout,
        udp_timeout: n.udp_timeout,
        udp_stream_timeout: n.udp_stream_timeout,
        icmp_timeout: n.icmp_timeout,
        published_clients: n.published_clients,
    }
}

/// Where the embedded DNS forwards: the config's upstreams, else the
/// nameservers of the host's resolv.conf (followed: `resolv`).
fn dns_upstreams(config: &Config) -> Vec<std::net::SocketAddr> {
    let mut upstreams = config.dns.upstream.clone();
    if upstreams.is_empty() {
        let path = &config.dns.resolv_conf;
        let text = std::fs::read_to_string(path).unwrap_or_default();
        upstreams = crate::dns::parse_resolv_conf(&text);
        if upstreams.is_empty() {
            log::warn!(
                "no nameserver in {}: containers' DNS queries fail until it has one (or set [dns] upstream)",
                path.display()
            );
        }
    }
    upstreams
}

fn gone(e: impl std::fmt::Display) -> ControlError {
    ControlError::failed(format!("data path unavailable: {e}"))
}

impl Daemon {
    /// Starts the data path thread and creates the configured networks.
    pub fn start(config: &Config) -> std::io::Result<Arc<Daemon>> {
        let (events_tx, events_rx) = crossbeam_channel::bounded(1024);
        let upstreams = crate::dns::Upstreams::new(dns_upstreams(config));
        let dataplane = Dataplane::start(
            DataplaneConfig {
                threads: config.dataplane.shards(),
                max_ports: config.limits.max_ports,
                batch_size: config.limits.batch_size,
                nat: nat_config(config),
                dns_upstreams: upstreams.clone(),
                source_limits: crate::ratelimit::SourceLimits {
                    new_flows: config.nat.new_flows,
                    floods: config.limits.floods,
                },
            },
            Some(events_tx),
        )?;
        let dp = dataplane.handle();
        let mut reg = Registry::default();
        for n in &config.networks {
            let id = dp
                .add_network(networks::network_spec(n, &config.limits))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            reg.networks.push(NetworkEntry {
                config: n.clone(),
                id: random_id(),
                created: SystemTime::now(),
                ipam: Ipam::for_network(n),
                ipam6: n.ipv6.map(|v| Ipam6::new(v.subnet, v.gateway)),
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
            sandbox: std::sync::OnceLock::new(),
            state: std::sync::OnceLock::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            captures: Arc::new(std::sync::atomic::AtomicUsize::new(0)),
        });
        // The data path's events (DHCP) are handled on a thread of their
        // own; it holds the daemon weakly and ends with the data path.
        let weak = Arc::downgrade(&daemon);
        std::thread::Builder::new()
            .name("lanyard-events".into())
            .spawn(move || events::events_loop(weak, events_rx))?;
        if config.dns.upstream.is_empty() {
            resolv::watch(
                Arc::downgrade(&daemon),
                config.dns.resolv_conf.clone(),
                upstreams,
            )?;
        }
        Ok(daemon)
    }

    /// Records what the sandbox applied (the line logged at start) and
    /// where it lets the daemon write, for `lanyard sandbox`.
    pub fn set_sandbox(&self, report: String, write_dir: Option<std::path::PathBuf>) {
        let _ = self.sandbox.set((report, write_dir));
    }

    /// `lanyard sandbox`: the report, and the probes run now, in this
    /// thread of the daemon.
    fn sandbox(&self) -> Value {
        let (report, dir) = self
            .sandbox
            .get()
            .cloned()
            .unwrap_or_else(|| ("sandbox: not recorded".into(), None));
        let probes = crate::sandbox::probe::run(dir.as_deref());
        serde_json::json!({ "sandbox": report, "probes": probes })
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    fn reg(&self) -> MutexGuard<'_, Registry> {
        // A panic while holding the lock leaves consistent data (every
        // mutation below is complete-or-nothing), so poisoning is ignored.
        self.registry.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A guard to take things through (addresses, ports, forwards): given
    /// back when it drops, unless committed. The registry is locked from
    /// its first use on.
    fn undo(&self) -> Undo<'_> {
        Undo::new(&self.registry, &self.dp)
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
        self.stopping
            .store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(dp) = self
            .dataplane
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            dp.stop();
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
        v["dhcp"] = serde_json::to_value(self.dhcp_counters()).unwrap_or_default();
        v["dataplane_threads"] = self.dp.shards().into();
        Ok(v)
    }

    /// What the DHCP server counted.
    fn dhcp_counters(&self) -> dhcp::DhcpCounters {
        self.leases
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .counters
    }

    /// Every counter of [`Self::stats`] and of the published ports, as
    /// Prometheus text (`--metrics`).
    pub fn metrics_text(&self) -> Result<String, ControlError> {
        let snapshot = self.dp.snapshot().map_err(gone)?;
        let dhcp = self.dhcp_counters();
        let published = self.published_ports(None)?;
        Ok(crate::metrics::render(&crate::metrics::Scrape {
            snapshot: &snapshot,
            dhcp: &dhcp,
            published: &published,
            threads: self.dp.shards(),
        }))
    }

    /// Serves one request that came without an fd (or whose fds are
    /// consumed by `fds`); attach requests are handled by the connection,
    /// which ties the endpoint to its lifetime.
    pub fn handle(&self, req: &Request) -> Result<Value, ControlError> {
        let req = &self.resolve_names(req.clone());
        match req {
            Request::Attach(_) => Err(ControlError::invalid(
                "attach must carry a TAP fd (SCM_RIGHTS)",
            )),
            Request::Capture(_) => Err(ControlError::invalid(
                "a capture is streamed on its own control connection",
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
            Request::Sandbox {} => Ok(self.sandbox()),
            Request::Conntrack {} => {
                let flows = self.dp.conntrack().map_err(gone)?;
                serde_json::to_value(flows).map_err(|e| ControlError::failed(e.to_string()))
            }
        }
    }

    /// Whether the daemon is shutting down.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The network name `name` means (`bridge`: the default network, as
    /// docker calls it; see [`crate::config::resolve_network_name`]).
    pub fn network_name(&self, name: &str) -> String {
        let reg = self.reg();
        crate::config::resolve_network_name(name, |n| reg.network(n).is_some()).to_string()
    }

    /// The request with every network it names as the registry knows it.
    fn resolve_names(&self, mut req: Request) -> Request {
        match &mut req {
            Request::AttachInterface { network, .. }
            | Request::Connect { network, .. }
            | Request::Disconnect { network, .. } => *network = self.network_name(network),
            Request::NetworkRm { name, .. } => *name = self.network_name(name),
            Request::NetworkInspect { name: Some(name) }
            | Request::Fdb {
                network: Some(name),
            } => *name = self.network_name(name),
            _ => {}
        }
        req
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
