//! The control protocol: one JSON object per line over a Unix stream
//! socket. A request that hands over a TAP carries its fd in the same
//! message (SCM_RIGHTS). Every request gets exactly one response line:
//! `{"ok": RESULT}` or `{"error": {"kind": ..., "message": ...}}`.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The most `--dns` servers a container has (the C library's MAXNS).
pub const MAX_DNS_SERVERS: usize = 3;

/// The longest request line accepted; longer ones close the connection.
pub const MAX_REQUEST_LEN: usize = 64 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Attach the TAP whose fd comes with this message as a container's
    /// endpoint. The endpoint lives as long as this connection.
    Attach(AttachRequest),
    /// Attach an interface of the daemon's namespace through AF_PACKET.
    AttachInterface {
        network: String,
        ifname: String,
    },
    DetachInterface {
        ifname: String,
    },
    NetworkLs {},
    NetworkCreate(crate::config::NetworkRequest),
    NetworkRm {
        name: String,
        #[serde(default)]
        force: bool,
    },
    NetworkPrune {},
    NetworkInspect {
        #[serde(default)]
        name: Option<String>,
    },
    Fdb {
        #[serde(default)]
        network: Option<String>,
    },
    Stats {},
    Conntrack {},
    /// What the daemon's sandbox applied, and the probes run in it.
    Sandbox {},
    /// Publish a port of a running container (`lanyard port add`).
    PortAdd {
        container: String,
        spec: String,
    },
    /// Stop publishing it (`lanyard port rm`).
    PortRm {
        container: String,
        spec: String,
    },
    PortLs {
        #[serde(default)]
        container: Option<String>,
    },
    /// A running container's process and networking, for
    /// `--network container:NAME`.
    ContainerInfo {
        container: String,
    },
    /// Add a network interface to a running container.
    Connect {
        network: String,
        container: String,
        #[serde(default)]
        ip: Option<Ipv4Addr>,
        #[serde(default)]
        aliases: Vec<String>,
    },
    /// Remove a running container's interface on a network.
    Disconnect {
        network: String,
        container: String,
    },
    /// Start a packet capture; after the answer the connection carries
    /// the file (`control::capture`) until the capture ends or the client
    /// closes it.
    Capture(super::capture::CaptureRequest),
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AttachRequest {
    pub container_id: String,
    #[serde(default)]
    pub name: Option<String>,
    pub network: String,
    #[serde(default)]
    pub ip: Option<Ipv4Addr>,
    /// `--ip6`: a static IPv6 address on a dual-stack network.
    #[serde(default)]
    pub ip6: Option<std::net::Ipv6Addr>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Reach the host's loopback through the gateway (default: config).
    #[serde(default)]
    pub allow_host_loopback: Option<bool>,
    /// `-p` specs to publish.
    #[serde(default)]
    pub publish: Vec<String>,
    /// Extra names the container answers to on this network (`--alias`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Resolvers the embedded DNS forwards this container's queries to
    /// instead of the host's (`--dns`), at most [`MAX_DNS_SERVERS`].
    #[serde(default)]
    pub dns: Vec<std::net::IpAddr>,
    /// The container's interface name (eth0, eth1, ...).
    #[serde(default)]
    pub ifname: Option<String>,
    /// The container's process, for `--network container:NAME` and
    /// `lanyard connect`.
    #[serde(default)]
    pub pid: Option<u32>,
    /// The endpoint's MAC, when it keeps its own (the slirp4netns mode's
    /// TAP); else docker's, from its address. In-process callers only:
    /// never read from the control socket.
    #[serde(skip)]
    pub mac: Option<crate::wire::MacAddr>,
    /// The endpoint is its network's only tenant (the slirp4netns mode,
    /// whose network is the container's alone): it may send from any
    /// address of the subnet, and DHCP gives it a dynamic address from the
    /// network's pool, as slirp4netns does. In-process callers only.
    #[serde(skip)]
    pub sole_tenant: bool,
}

/// What the container's `eth0` must be configured with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AttachReply {
    pub endpoint_id: String,
    pub container_id: String,
    pub name: String,
    pub network: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: String,
    pub mtu: u32,
    pub txqueuelen: u32,
    /// Where the container's resolv.conf points (the gateway).
    pub nameserver: Ipv4Addr,
    /// The IPv6 address and gateway, on a dual-stack network.
    #[serde(default)]
    pub ipv6: Option<crate::container::Ipv6Config>,
    /// The ports published, with the host ports actually bound.
    pub published: Vec<PublishedPort>,
}

/// One published port, as `lanyard port ls` shows it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PublishedPort {
    pub container: String,
    /// The `-p` spec it came from, normalised.
    pub spec: String,
    pub proto: crate::publish::Protocol,
    /// The host address and port actually bound.
    pub host: std::net::SocketAddr,
    pub container_port: u16,
    #[serde(default)]
    pub accepted: u64,
    #[serde(default)]
    pub refused: u64,
}

/// Whether a failure is the caller's (bad argument: exit code 2) or the
/// daemon's (could not do it: exit code 125, as `docker run` uses).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    Invalid,
    Failed,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ErrorBody {
    pub kind: ErrorKind,
    pub message: String,
}

/// What the daemon tells the connection that attached an endpoint, unasked,
/// between responses: one JSON line each, told apart from responses by
/// their `event` key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The endpoint was taken off the switch (`lanyard disconnect`,
    /// `network rm --force`): the TAP is no longer the switch's, and
    /// `run` lets go of its copy, so the interface goes from the
    /// container as docker's does.
    Detached { ifname: String, network: String },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum Response {
    Ok(serde_json::Value),
    Error(ErrorBody),
}

/// A failed control operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlError {
    pub kind: ErrorKind,
    pub message: String,
}

impl ControlError {
    pub fn invalid(message: impl Into<String>) -> ControlError {
        ControlError {
            kind: ErrorKind::Invalid,
            message: message.into(),
        }
    }

    pub fn failed(message: impl Into<String>) -> ControlError {
        ControlError {
            kind: ErrorKind::Failed,
            message: message.into(),
        }
    }

    /// The process exit code this error maps to.
    pub fn exit_code(&self) -> i32 {
        match self.kind {
            ErrorKind::Invalid => 2,
            ErrorKind::Failed => 125,
        }
    }
}

impl std::fmt::Display for ControlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ControlError {}

impl From<ControlError> for Response {
    fn from(e: ControlError) -> Response {
        Response::Error(ErrorBody {
            kind: e.kind,
            message: e.message,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_shape() {
        let r: Request =
            serde_json::from_str(r#"{"op":"network_inspect","name":"default"}"#).unwrap();
        assert_eq!(
            r,
            Request::NetworkInspect {
                name: Some("default".into())
            }
        );
        let r: Request = serde_json::from_str(r#"{"op":"stats"}"#).unwrap();
        assert_eq!(r, Request::Stats {});
        let a = Request::Attach(AttachRequest {
            container_id: "c".into(),
            name: Some("web".into()),
            network: "default".into(),
            ip: None,
            ip6: None,
            mtu: Some(1500),
            allow_host_loopback: None,
            publish: vec!["8080:80".into()],
            aliases: vec![],
            ifname: None,
            pid: None,
            dns: Vec::new(),
            mac: None,
            sole_tenant: false,
        });
        let s = serde_json::to_string(&a).unwrap();
        assert!(s.starts_with(r#"{"op":"attach""#), "{s}");
        assert_eq!(serde_json::from_str::<Request>(&s).unwrap(), a);
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert!(serde_json::from_str::<Request>(r#"{"op":"reboot"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"stats","x":1}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"op":"attach"}"#).is_err());
        assert!(serde_json::from_str::<Request>(r#"["op"]"#).is_err());
    }

    #[test]
    fn response_wire_shape() {
        let r: Response = ControlError::invalid("no").into();
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"error":{"kind":"invalid","message":"no"}}"#
        );
        let ok = Response::Ok(serde_json::json!([1]));
        assert_eq!(serde_json::to_string(&ok).unwrap(), r#"{"ok":[1]}"#);
    }
}
