//! `lanyard connect|disconnect` (a running container's interfaces),
//! `attach|detach` (an interface of the daemon's namespace, through
//! AF_PACKET), and `lanyard connect`'s hidden helper.

use std::net::Ipv4Addr;
use std::process::ExitCode;

use clap::Args;

use lanyard::container::helper;
use lanyard::control::Request;

use super::{query, SocketArg};

#[derive(Args)]
pub(super) struct ConnectArgs {
    /// Network to connect to.
    network: String,
    /// Container name or id.
    container: String,
    /// IPv4 address on the network instead of the next free one.
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// Another name the container answers to in DNS on this network (repeatable).
    #[arg(long = "alias", visible_alias = "network-alias", value_name = "NAME")]
    alias: Vec<String>,
    #[command(flatten)]
    socket: SocketArg,
}

#[derive(Args)]
pub(super) struct DisconnectArgs {
    /// Network to disconnect from.
    network: String,
    /// Container name or id.
    container: String,
    #[command(flatten)]
    socket: SocketArg,
}

#[derive(Args)]
pub(super) struct AttachArgs {
    /// Network to attach to.
    #[arg(long, default_value = "default")]
    network: String,
    /// Interface name in the daemon's network namespace.
    ifname: String,
    #[command(flatten)]
    socket: SocketArg,
}

#[derive(Args)]
pub(super) struct DetachArgs {
    ifname: String,
    #[command(flatten)]
    socket: SocketArg,
}

#[derive(Args)]
pub(super) struct ContainerTapArgs {
    pid: u32,
    ifname: String,
}

pub(super) fn connect(a: ConnectArgs) -> u8 {
    let ConnectArgs {
        network,
        container,
        ip,
        alias,
        socket,
    } = a;
    query(
        &socket,
        &Request::Connect {
            network: network.clone(),
            container: container.clone(),
            ip,
            aliases: alias,
        },
        |v| {
            outln!(
                "{container} connected to {network} as {}",
                v["ip"].as_str().unwrap_or("")
            )
        },
    )
}

pub(super) fn disconnect(a: DisconnectArgs) -> u8 {
    query(
        &a.socket,
        &Request::Disconnect {
            network: a.network.clone(),
            container: a.container.clone(),
        },
        |_| outln!("{} disconnected from {}", a.container, a.network),
    )
}

pub(super) fn attach(a: AttachArgs) -> u8 {
    query(
        &a.socket,
        &Request::AttachInterface {
            network: a.network.clone(),
            ifname: a.ifname.clone(),
        },
        |v| {
            outln!(
                "attached {} to {} (port {})",
                a.ifname,
                a.network,
                v["port"]
            )
        },
    )
}

pub(super) fn detach(a: DetachArgs) -> u8 {
    query(
        &a.socket,
        &Request::DetachInterface {
            ifname: a.ifname.clone(),
        },
        |_| outln!("detached {}", a.ifname),
    )
}

/// `lanyard __container-tap PID IFNAME`, started by the daemon.
pub(super) fn container_tap(a: ContainerTapArgs) -> ExitCode {
    ExitCode::from(helper::tap_helper_main(a.pid, &a.ifname) as u8)
}
