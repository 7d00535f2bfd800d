//! Published ports (`-p`, `lanyard port add/rm/ls`): parsing the specs,
//! binding their host side, handing the sockets to the data path as
//! forwards of an endpoint's port.

use serde_json::Value;

use super::registry::{Endpoint, Published};
use super::undo::Undo;
use super::{gone, report, ControlError, Daemon, PublishedPort};
use crate::log;
use crate::port::PortId;
use crate::publish::{Mapping, PublishSpec};

/// Parses `-p` specs, each error naming the spec.
pub(super) fn parse_specs(specs: &[String]) -> Result<Vec<PublishSpec>, ControlError> {
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
    use crate::sys::sock;
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

/// Binds and forwards the specs' ports to an endpoint port, through
/// `undo` (which removes the forwards again unless its request commits):
/// all or nothing.
pub(super) fn publish_on(
    undo: &mut Undo<'_>,
    port: PortId,
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
    let ids = undo.add_forwards(port, bound)?;
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

impl Daemon {
    /// `lanyard port add`.
    pub fn port_add(&self, container: &str, spec: &str) -> Result<Value, ControlError> {
        let specs = parse_specs(&[spec.to_string()])?;
        let mut undo = self.undo();
        let ep = undo
            .reg()
            .find_container(container)
            .map_err(ControlError::invalid)?;
        let (id, port, name) = (ep.id.clone(), ep.port, ep.name.clone());
        let added = publish_on(&mut undo, port, &name, &specs)?;
        let out: Vec<PublishedPort> = added.iter().map(|p| report(&name, p)).collect();
        // Found above under the same lock: it cannot have gone since.
        let Some(e) = undo.reg().endpoints.get_mut(&id) else {
            return Err(ControlError::failed(format!(
                "container '{container}' went away"
            )));
        };
        e.published.extend(added);
        undo.commit();
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
        let out = self.published_ports(container)?;
        serde_json::to_value(out).map_err(|e| ControlError::failed(e.to_string()))
    }

    /// The published ports (of `container`, or all), with their counts of
    /// clients accepted and refused.
    pub fn published_ports(
        &self,
        container: Option<&str>,
    ) -> Result<Vec<PublishedPort>, ControlError> {
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
        Ok(out)
    }
}
