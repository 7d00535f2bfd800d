//! `lanyard port add|rm|ls`: published ports of running containers.

use clap::Subcommand;
use serde_json::Value;

use lanyard::control::Request;

use super::{parse_publish, pretty, query, FormatArg, SocketArg};

#[derive(Subcommand)]
pub(super) enum PortCommand {
    #[command(after_help = "Examples:
  lanyard port add web 8080:80
  lanyard port add web 127.0.0.1:5353:53/udp
  lanyard port add web [::1]:8443-8444:443-444")]
    /// Publish a port of a running container.
    Add {
        /// Container name or id.
        container: String,
        /// [ip:][host[-end]:]container[-end][/tcp|udp]
        #[arg(value_parser = parse_publish)]
        spec: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Stop publishing a port (established connections finish).
    Rm {
        container: String,
        #[arg(value_parser = parse_publish)]
        spec: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// List published ports.
    Ls {
        container: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
        #[command(flatten)]
        format: FormatArg,
    },
}

pub(super) fn port(c: PortCommand) -> u8 {
    match c {
        PortCommand::Add {
            container,
            spec,
            socket,
        } => query(&socket, &Request::PortAdd { container, spec }, |v| {
            print_ports(v, false)
        }),
        PortCommand::Rm {
            container,
            spec,
            socket,
        } => query(
            &socket,
            &Request::PortRm {
                container: container.clone(),
                spec: spec.clone(),
            },
            |_| outln!("{container}: stopped publishing {spec}"),
        ),
        PortCommand::Ls {
            container,
            socket,
            format,
        } => query(&socket, &Request::PortLs { container }, |v| {
            print_ports(v, format.json())
        }),
    }
}

/// Published ports as `docker port` prints them.
fn print_ports(v: &Value, json: bool) {
    if json {
        outln!("{}", pretty(v));
        return;
    }
    for p in v.as_array().into_iter().flatten() {
        outln!(
            "{}\t{}/{} -> {}",
            p["container"].as_str().unwrap_or(""),
            p["container_port"],
            p["proto"].as_str().unwrap_or(""),
            p["host"].as_str().unwrap_or("")
        );
    }
}
