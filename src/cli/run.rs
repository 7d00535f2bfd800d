//! `lanyard run`: the arguments, then `container::run`.

use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use lanyard::container::{self, RunSpec};

use super::{parse_mtu, parse_publish, SandboxArg, SocketArg};

#[derive(Args)]
pub(super) struct RunArgs {
    /// Container name (unique; default: the short container id).
    #[arg(long)]
    name: Option<String>,
    /// Network to attach to (repeatable: one interface per network, eth0,
    /// eth1, ...); or `none`, `host`, `container:NAME` [default: default].
    #[arg(long)]
    network: Vec<String>,
    /// Another name the container answers to in DNS (repeatable).
    #[arg(long = "alias", visible_alias = "network-alias", value_name = "NAME")]
    alias: Vec<String>,
    /// IPv4 address (on the first network) to use instead of the next free one.
    #[arg(long)]
    ip: Option<Ipv4Addr>,
    /// IPv6 address (on the first network, if it is dual stack) to use instead of the next free one.
    #[arg(long)]
    ip6: Option<std::net::Ipv6Addr>,
    /// MTU of eth0 (default: the network's).
    #[arg(long, value_parser = parse_mtu)]
    mtu: Option<u32>,
    /// Hostname inside the container (default: the short container id).
    #[arg(long)]
    hostname: Option<String>,
    /// Let the container reach the host's 127.0.0.1 through the gateway's address.
    #[arg(long)]
    allow_host_loopback: bool,
    /// Publish a container port on the host: [ip:][host[-end]:]container[-end][/tcp|udp] (repeatable).
    #[arg(short = 'p', long = "publish", value_name = "SPEC", value_parser = parse_publish)]
    publish: Vec<String>,
    /// A resolver the gateway's DNS forwards this container's queries to, instead of the host's (repeatable, at most 3; container names still resolve)
    #[arg(long, value_name = "IP")]
    dns: Vec<std::net::IpAddr>,
    /// Search domain of the container's resolver, instead of the host's (repeatable; `.` for none).
    #[arg(long, value_name = "DOMAIN")]
    dns_search: Vec<String>,
    /// Option of the container's resolver (resolv.conf `options`), instead of the host's (repeatable).
    #[arg(long, value_name = "OPTION")]
    dns_option: Vec<String>,
    /// A line of the container's /etc/hosts: HOST:IP, or HOST:host-gateway for the gateway (the host) (repeatable).
    #[arg(long, value_name = "HOST:IP")]
    add_host: Vec<lanyard::container::AddHost>,
    /// Write every frame the container's interfaces pass, from the first, to FILE (pcapng)
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    /// Config for the embedded switch when no daemon is running.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    sandbox: SandboxArg,
    /// Seconds the container waits for its daemon to come back (a restart) before it is stopped; run then exits 125
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    reattach_timeout: u64,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

pub(super) fn run(a: RunArgs) -> ExitCode {
    let spec = RunSpec {
        name: a.name,
        networks: a.network,
        aliases: a.alias,
        ip: a.ip,
        ip6: a.ip6,
        mtu: a.mtu,
        hostname: a.hostname,
        allow_host_loopback: a.allow_host_loopback,
        publish: a.publish,
        argv: a.command,
        socket: a.socket.socket,
        config: a.config,
        sandbox: a.sandbox.mode(),
        reattach_timeout: std::time::Duration::from_secs(a.reattach_timeout),
        dns_search: a.dns_search,
        dns_options: a.dns_option,
        add_hosts: a.add_host,
        dns: a.dns,
        pcap: a.pcap,
    };
    // SAFETY: nothing has started a thread: `main` only parsed the
    // arguments.
    match unsafe { container::run(&spec) } {
        Ok(code) => ExitCode::from(code as u8),
        Err(e) => {
            eprintln!("lanyard: {}", e.message);
            ExitCode::from(e.code as u8)
        }
    }
}
