//! Networks at runtime (`lanyard network create/rm/prune/ls/inspect`), and
//! what the data path is told of one.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::registry::{NetworkEntry, Registry, Reservation};
use super::state::{Saved, SavedEndpoint, SavedNetwork, StateFile};

/// How long a restarted daemon holds a container's address and name for
/// its `run` to attach it again (`run --reattach-timeout` is 60 s by
/// default).
pub const RESERVE_FOR: std::time::Duration = std::time::Duration::from_secs(120);

/// The endpoints to hold across a restart: those a `run` attached (they
/// have a connection to tell, `notify`), but those on network `without`.
fn saved_endpoints(reg: &Registry, without: Option<&str>) -> Vec<SavedEndpoint> {
    reg.endpoints
        .values()
        .filter(|e| reg.notify.contains_key(&e.id) && Some(e.network.as_str()) != without)
        .map(|e| SavedEndpoint {
            container_id: e.container_id.clone(),
            name: e.name.clone(),
            network: e.network.clone(),
            ip: e.ip,
            ip6: e.ip6,
        })
        .chain(
            // Still held for a container not yet back: kept held.
            reg.reserved
                .iter()
                .filter(|r| Some(r.ep.network.as_str()) != without)
                .map(|r| r.ep.clone()),
        )
        .collect()
}
use super::{gone, ControlError, Daemon};
use crate::config::Limits;
use crate::dataplane::NetworkSpec;
use crate::ipam::{Ipam, Ipam6};
use crate::log;
use crate::sys::random_id;

pub(super) fn network_spec(n: &crate::config::NetworkConfig, limits: &Limits) -> NetworkSpec {
    NetworkSpec {
        name: n.name.clone(),
        subnet: n.subnet.into(),
        gateway_ip: n.gateway.into(),
        gateway_mac: Ipam::mac_for(n.gateway),
        fdb_max_entries: limits.fdb_max_entries,
        fdb_max_per_port: limits.fdb_max_per_port,
        mac_aging: n.mac_aging,
        nat: !n.internal,
        dns_ip: n.dns,
        ipv6: n.ipv6.map(|v| crate::dataplane::NetworkSpec6 {
            subnet: v.subnet,
            gateway: v.gateway,
            link_local: v.link_local,
            mtu: n.mtu,
        }),
    }
}

impl Daemon {
    /// `lanyard network create`.
    pub fn network_create(
        &self,
        req: &crate::config::NetworkRequest,
    ) -> Result<Value, ControlError> {
        let mut undo = self.undo();
        let reg = undo.reg();
        let existing: Vec<_> = reg.networks.iter().map(|n| n.config.clone()).collect();
        let cfg = req
            .validate(&existing)
            .map_err(|e| ControlError::invalid(e.to_string()))?;
        let dp = undo.add_network(network_spec(&cfg, &self.limits))?;
        let entry = NetworkEntry {
            ipam: Ipam::for_network(&cfg),
            ipam6: cfg.ipv6.map(|v| Ipam6::new(v.subnet, v.gateway)),
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
        // Kept before it is committed: a network that cannot be written
        // down is not made (the undo takes it off the data path).
        let mut networks = self.saved_networks(&undo.reg().networks, None);
        networks.push(SavedNetwork::new(&entry.config, &entry.id, entry.created));
        let endpoints = saved_endpoints(undo.reg(), None);
        self.persist(&Saved {
            networks,
            endpoints,
        })?;
        undo.reg().networks.push(entry);
        undo.commit();
        Ok(out)
    }

    /// The runtime networks of `nets` as the state file keeps them, but
    /// `without`.
    fn saved_networks(&self, nets: &[NetworkEntry], without: Option<&str>) -> Vec<SavedNetwork> {
        nets.iter()
            .filter(|n| !n.from_config && Some(n.config.name.as_str()) != without)
            .map(|n| SavedNetwork::new(&n.config, &n.id, n.created))
            .collect()
    }

    /// Writes the state file, when this daemon keeps one (and is not
    /// stopping: what it holds then is what a restart must find).
    fn persist(&self, kept: &Saved) -> Result<(), ControlError> {
        if self.stopping.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(());
        }
        match self.state.get() {
            Some(state) => state.save(kept).map_err(|e| {
                ControlError::failed(format!(
                    "cannot keep the networks in {}: {e}",
                    state.path().display()
                ))
            }),
            None => Ok(()),
        }
    }

    /// Writes the state file after an endpoint came or went; a failure is
    /// logged (the container is attached or gone either way).
    pub(super) fn persist_registry(&self, reg: &Registry) {
        let saved = Saved {
            networks: self.saved_networks(&reg.networks, None),
            endpoints: saved_endpoints(reg, None),
        };
        if let Err(e) = self.persist(&saved) {
            log::warn!("{e}");
        }
    }

    /// At start: the networks the state file kept, made again with their
    /// ids. One that no longer fits (the config now has its name or
    /// subnet) is not restored; the file is then moved aside for its owner
    /// and written anew with what was. Returns what to warn about.
    pub fn restore_networks(&self, state: StateFile) -> Vec<String> {
        let mut warnings = Vec::new();
        let saved = match state.load() {
            Ok(s) => s,
            Err(foreign) => {
                warnings.push(foreign.to_string());
                Saved::default()
            }
        };
        let mut refused = Vec::new();
        for s in &saved.networks {
            if let Err(e) = self.restore_network(s) {
                refused.push(format!("{}: {e}", s.request.name));
            }
        }
        self.reserve_endpoints(&saved.endpoints);
        let _ = self.state.set(state);
        if !refused.is_empty() {
            let state = self.state.get().expect("set above");
            let why = format!("network(s) not restored: {}", refused.join("; "));
            warnings.push(state.set_aside(why).to_string());
            let reg = self.reg();
            let kept = Saved {
                networks: self.saved_networks(&reg.networks, None),
                endpoints: saved_endpoints(&reg, None),
            };
            if let Err(e) = self.persist(&kept) {
                warnings.push(e.to_string());
            }
        }
        warnings
    }

    /// Holds the addresses and names of the containers attached before
    /// the restart, for [`RESERVE_FOR`], until their `run` attaches them
    /// again (`reattach`). One whose address is no longer free is dropped.
    fn reserve_endpoints(&self, eps: &[SavedEndpoint]) {
        let mut reg = self.reg();
        let until = std::time::Instant::now() + RESERVE_FOR;
        for ep in eps {
            let Some(n) = reg.network_mut(&ep.network) else {
                continue;
            };
            if n.ipam.allocate(Some(ep.ip)).is_err() {
                continue;
            }
            let ip6 = match (ep.ip6, n.ipam6.as_mut()) {
                (Some(ip6), Some(ipam6)) => ipam6.allocate(Some(ip6)).ok(),
                _ => None,
            };
            reg.reserved.push(Reservation {
                ep: SavedEndpoint { ip6, ..ep.clone() },
                until,
            });
        }
        if !reg.reserved.is_empty() {
            log::info!(
                "holding the addresses of {} container endpoint(s) for {:?}, until their `run` attaches them again",
                reg.reserved.len(),
                RESERVE_FOR
            );
        }
    }

    fn restore_network(&self, s: &SavedNetwork) -> Result<(), String> {
        let mut undo = self.undo();
        let reg = undo.reg();
        let existing: Vec<_> = reg.networks.iter().map(|n| n.config.clone()).collect();
        let cfg = s.request.validate(&existing).map_err(|e| e.to_string())?;
        let dp = undo
            .add_network(network_spec(&cfg, &self.limits))
            .map_err(|e| e.to_string())?;
        log::info!(
            "restored network {} {} gw {}",
            cfg.name,
            cfg.subnet,
            cfg.gateway
        );
        undo.reg().networks.push(NetworkEntry {
            ipam: Ipam::for_network(&cfg),
            ipam6: cfg.ipv6.map(|v| Ipam6::new(v.subnet, v.gateway)),
            config: cfg,
            id: s.id.clone(),
            created: s.created(),
            dp,
            from_config: false,
        });
        undo.commit();
        Ok(())
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
        // Written down first: a removal that cannot be kept changes nothing.
        self.persist(&Saved {
            networks: self.saved_networks(&reg.networks, Some(name)),
            endpoints: saved_endpoints(&reg, Some(name)),
        })?;
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
}
