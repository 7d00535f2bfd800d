//! Networks at runtime (`lanyard network create/rm/prune/ls/inspect`), and
//! what the data path is told of one.

use std::time::SystemTime;

use serde_json::{json, Value};

use super::registry::NetworkEntry;
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
        ipv6: n.ipv6.map(|v| crate::dataplane::NetworkSpec6 {
            subnet: v.subnet,
            gateway: v.gateway,
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
            ipam: Ipam::new(cfg.subnet, cfg.gateway, cfg.ip_range),
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
        undo.reg().networks.push(entry);
        undo.commit();
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
}
