//! `lanyard network ls|create|rm|prune|inspect`.

use clap::Subcommand;

use lanyard::config::NetworkRequest;
use lanyard::control::Request;

use super::{parse_mtu, pretty, query, FormatArg, SocketArg};

#[derive(Subcommand)]
pub(super) enum NetworkCommand {
    /// List networks.
    Ls {
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        format: FormatArg,
    },
    /// Create a network.
    #[command(after_help = "Examples:
  lanyard network create backend
  lanyard network create --subnet 10.5.0.0/16 --ip-range 10.5.1.0/24 --gateway 10.5.0.1 backend
  lanyard network create --ipv6=false --internal --mtu 9000 isolated")]
    Create {
        name: String,
        /// Subnet in CIDR form (default: the next free of docker's pools).
        #[arg(long)]
        subnet: Option<String>,
        /// Gateway address (default: the subnet's first host).
        #[arg(long)]
        gateway: Option<String>,
        /// Range dynamic addresses come from (default: the whole subnet).
        #[arg(long)]
        ip_range: Option<String>,
        /// MTU of the containers' interfaces on it.
        #[arg(long, value_parser = parse_mtu)]
        mtu: Option<u32>,
        /// No NAT out of the network (docker's --internal).
        #[arg(long)]
        internal: bool,
        /// Dual stack (the default): an IPv6 subnet beside the IPv4 one;
        /// `--ipv6=false` for IPv4 only.
        #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
        ipv6: Option<bool>,
        /// IPv6 subnet in CIDR form (default: fd00:A:B:C::/64 for the IPv4 subnet A.B.C.0).
        #[arg(long)]
        subnet6: Option<String>,
        /// IPv6 gateway address (default: the IPv6 subnet's first host).
        #[arg(long)]
        gateway6: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Remove networks (refused while containers are on them, unless --force).
    Rm {
        #[arg(required = true)]
        names: Vec<String>,
        /// Disconnect the containers on them first.
        #[arg(long, short)]
        force: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Remove every network (not declared in the config) with nothing on it.
    Prune {
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Connect a running container to a network (as `lanyard connect`).
    Connect(super::container::ConnectArgs),
    /// Disconnect a running container from a network (as `lanyard disconnect`).
    Disconnect(super::container::DisconnectArgs),
    /// Show networks in the JSON shape of `docker network inspect`.
    Inspect {
        /// Network name (default: all).
        network: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
}

pub(super) fn network(c: NetworkCommand) -> u8 {
    match c {
        NetworkCommand::Ls { socket, format } => ls(&socket, format.json()),
        NetworkCommand::Connect(a) => super::container::connect(a),
        NetworkCommand::Disconnect(a) => super::container::disconnect(a),
        NetworkCommand::Create {
            name,
            subnet,
            gateway,
            ip_range,
            mtu,
            internal,
            ipv6,
            subnet6,
            gateway6,
            socket,
        } => query(
            &socket,
            &Request::NetworkCreate(NetworkRequest {
                name,
                subnet,
                gateway,
                ip_range,
                mtu,
                internal,
                ipv6,
                subnet6,
                gateway6,
            }),
            |v| outln!("{}", v["Id"].as_str().unwrap_or("")),
        ),
        NetworkCommand::Rm {
            names,
            force,
            socket,
        } => {
            let mut code = 0;
            for name in names {
                let c = query(
                    &socket,
                    &Request::NetworkRm {
                        name: name.clone(),
                        force,
                    },
                    |_| outln!("{name}"),
                );
                code = code.max(c);
            }
            code
        }
        NetworkCommand::Prune { socket } => query(&socket, &Request::NetworkPrune {}, |v| {
            for n in v["removed"].as_array().into_iter().flatten() {
                outln!("{}", n.as_str().unwrap_or(""));
            }
        }),
        NetworkCommand::Inspect { network, socket } => {
            query(&socket, &Request::NetworkInspect { name: network }, |v| {
                outln!("{}", pretty4(v));
            })
        }
    }
}

/// JSON as docker's CLI prints `inspect`: four spaces of indentation.
fn pretty4(v: &serde_json::Value) -> String {
    use serde::Serialize as _;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    if v.serialize(&mut ser).is_err() {
        return pretty(v);
    }
    String::from_utf8(out).unwrap_or_default()
}

fn ls(socket: &SocketArg, json: bool) -> u8 {
    query(socket, &Request::NetworkLs {}, |v| {
        if json {
            outln!("{}", pretty(v));
            return;
        }
        outln!(
            "{:<14} {:<16} {:<8} {:<6} {:<18} CONTAINERS",
            "NETWORK ID",
            "NAME",
            "DRIVER",
            "SCOPE",
            "SUBNET"
        );
        for n in v.as_array().into_iter().flatten() {
            let id = n["Id"].as_str().unwrap_or("");
            outln!(
                "{:<14} {:<16} {:<8} {:<6} {:<18} {}",
                &id[..id.len().min(12)],
                n["Name"].as_str().unwrap_or(""),
                n["Driver"].as_str().unwrap_or(""),
                n["Scope"].as_str().unwrap_or(""),
                n["Subnet"].as_str().unwrap_or(""),
                n["Containers"]
            );
        }
    })
}
