//! The `lanyard` command line: argument parsing and output formatting
//! only; every operation lives in the library.

use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use lanyard::config::{check_name, Config, MAX_MTU, MIN_MTU};
use lanyard::control::client::{Client, ClientError};
use lanyard::control::server::{self, default_socket_path};
use lanyard::control::{AttachReply, AttachRequest, ControlError, Daemon, Request};
use lanyard::log::{self, Level};
use lanyard::netns::{self, ContainerSpec, IfConfig, NetMode, Setup, EXIT_SETUP_FAILED};
use lanyard::sys::random_id;

/// `println!` that ends the command quietly, exit 0, when stdout is a
/// closed pipe (`lanyard conntrack | head -1`), as `ls | head` does;
/// `println!` would panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            stdout_failed(e);
        }
    }};
}

fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("lanyard: writing the output: {e}");
    std::process::exit(EXIT_FAILED as i32);
}

/// Exit code for a bad argument or config (clap uses it too).
const EXIT_USAGE: u8 = 2;
/// Exit code for a management command that failed.
const EXIT_FAILED: u8 = 1;

#[derive(Parser)]
#[command(
    name = "lanyard",
    version,
    about = "A userspace switch for rootless containers: a learning bridge, a gateway, NAT and published ports in one unprivileged process"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a command in a new container attached to a lanyard network.
    Run(RunArgs),
    /// Run the switch in the foreground, serving the control socket.
    Daemon(DaemonArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Show the MAC table (forwarding database) of a network.
    Fdb(FdbArgs),
    /// Show per-port counters and drops by reason.
    Stats(StatsArgs),
    /// List NAT flows: protocol, container side, remote side, state, bytes, age.
    Conntrack(StatsArgs),
    /// Attach an existing interface (e.g. a veth's host end) to a network through AF_PACKET.
    Attach(AttachArgs),
    /// Detach an interface attached with `lanyard attach`.
    Detach(DetachArgs),
    /// Connect a running container to a network (a new interface).
    Connect {
        network: String,
        container: String,
        #[arg(long)]
        ip: Option<Ipv4Addr>,
        #[arg(long = "alias", value_name = "NAME")]
        alias: Vec<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Disconnect a running container from a network.
    Disconnect {
        network: String,
        container: String,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// (internal) `lanyard connect`'s helper: creates a TAP inside a container.
    #[command(name = "__container-tap", hide = true)]
    ContainerTap { pid: u32, ifname: String },
    /// Manage published ports of running containers.
    #[command(subcommand)]
    Port(PortCommand),
}

#[derive(Subcommand)]
enum PortCommand {
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
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
struct SocketArg {
    /// Control socket of the daemon [default: $XDG_RUNTIME_DIR/lanyard/lanyard.sock or /tmp/lanyard-$UID/lanyard.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

#[derive(Args)]
struct RunArgs {
    /// Container name (unique; default: the short container id).
    #[arg(long)]
    name: Option<String>,
    /// Network to attach to (repeatable: one interface per network, eth0,
    /// eth1, ...); or `none`, `host`, `container:NAME` [default: default].
    #[arg(long)]
    network: Vec<String>,
    /// Another name the container answers to in DNS (repeatable).
    #[arg(long = "alias", value_name = "NAME")]
    alias: Vec<String>,
    /// IPv4 address (on the first network) to use instead of the next free one.
    #[arg(long)]
    ip: Option<Ipv4Addr>,
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
    /// Config for the embedded switch when no daemon is running.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    socket: SocketArg,
    /// The command and its arguments.
    #[arg(last = true, required = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Args)]
struct DaemonArgs {
    /// Config file (default: the embedded configs/default.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data-path threads (overrides `[dataplane] threads`; 0: one per CPU, at most 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=lanyard::dataplane::MAX_SHARDS as i64))]
    threads: Option<u16>,
    #[command(flatten)]
    socket: SocketArg,
}

#[derive(Subcommand)]
enum NetworkCommand {
    /// List networks.
    Ls {
        #[command(flatten)]
        socket: SocketArg,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Create a network.
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
    /// Show networks in the JSON shape of `docker network inspect`.
    Inspect {
        /// Network name (default: all).
        network: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
}

#[derive(Args)]
struct FdbArgs {
    /// Network name (default: all).
    network: Option<String>,
    #[command(flatten)]
    socket: SocketArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct StatsArgs {
    #[command(flatten)]
    socket: SocketArg,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct AttachArgs {
    /// Network to attach to.
    #[arg(long, default_value = "default")]
    network: String,
    /// Interface name in the daemon's network namespace.
    ifname: String,
    #[command(flatten)]
    socket: SocketArg,
}

#[derive(Args)]
struct DetachArgs {
    ifname: String,
    #[command(flatten)]
    socket: SocketArg,
}

fn parse_publish(s: &str) -> Result<String, String> {
    s.parse::<lanyard::publish::PublishSpec>()
        .map(|_| s.to_string())
}

fn parse_mtu(s: &str) -> Result<u32, String> {
    let v: u32 = s.parse().map_err(|_| format!("'{s}' is not a number"))?;
    if !(MIN_MTU..=MAX_MTU).contains(&v) {
        return Err(format!(
            "{v} is out of range (allowed {MIN_MTU}..={MAX_MTU})"
        ));
    }
    Ok(v)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Run(a) => return run(a),
        Command::Daemon(a) => daemon(a),
        Command::Network(NetworkCommand::Ls { socket, json }) => network_ls(&socket, json),
        Command::Network(NetworkCommand::Create {
            name,
            subnet,
            gateway,
            ip_range,
            mtu,
            internal,
            socket,
        }) => query(
            &socket,
            &Request::NetworkCreate(lanyard::config::NetworkRequest {
                name,
                subnet,
                gateway,
                ip_range,
                mtu,
                internal,
            }),
            |v| outln!("{}", v["Id"].as_str().unwrap_or("")),
        ),
        Command::Network(NetworkCommand::Rm {
            names,
            force,
            socket,
        }) => {
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
        Command::Network(NetworkCommand::Prune { socket }) => {
            query(&socket, &Request::NetworkPrune {}, |v| {
                for n in v["removed"].as_array().into_iter().flatten() {
                    outln!("{}", n.as_str().unwrap_or(""));
                }
            })
        }
        Command::Network(NetworkCommand::Inspect { network, socket }) => {
            query(&socket, &Request::NetworkInspect { name: network }, |v| {
                outln!("{}", pretty(v));
            })
        }
        Command::Fdb(a) => fdb(a),
        Command::Stats(a) => stats(a),
        Command::Conntrack(a) => conntrack(a),
        Command::Attach(a) => query(
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
        ),
        Command::Port(PortCommand::Add {
            container,
            spec,
            socket,
        }) => query(&socket, &Request::PortAdd { container, spec }, |v| {
            print_ports(v, false)
        }),
        Command::Port(PortCommand::Rm {
            container,
            spec,
            socket,
        }) => query(
            &socket,
            &Request::PortRm {
                container: container.clone(),
                spec: spec.clone(),
            },
            |_| outln!("{container}: stopped publishing {spec}"),
        ),
        Command::Port(PortCommand::Ls {
            container,
            socket,
            json,
        }) => query(&socket, &Request::PortLs { container }, |v| {
            print_ports(v, json)
        }),
        Command::Connect {
            network,
            container,
            ip,
            alias,
            socket,
        } => query(
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
        ),
        Command::Disconnect {
            network,
            container,
            socket,
        } => query(
            &socket,
            &Request::Disconnect {
                network: network.clone(),
                container: container.clone(),
            },
            |_| outln!("{container} disconnected from {network}"),
        ),
        Command::ContainerTap { pid, ifname } => {
            use std::os::fd::FromRawFd;
            // SAFETY: the daemon started us with one end of a socketpair as
            // stdin; nothing else owns fd 0 here.
            let sock = unsafe { std::os::unix::net::UnixStream::from_raw_fd(0) };
            return ExitCode::from(netns::container_tap_helper(pid, &ifname, sock) as u8);
        }
        Command::Detach(a) => query(
            &a.socket,
            &Request::DetachInterface {
                ifname: a.ifname.clone(),
            },
            |_| outln!("detached {}", a.ifname),
        ),
    };
    ExitCode::from(code)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn load_config(path: Option<&Path>) -> Result<Config, u8> {
    let mut config = match path {
        Some(p) => Config::load(p).map_err(|e| {
            eprintln!("lanyard: config error: {e}");
            EXIT_USAGE
        })?,
        None => Config::embedded(),
    };
    // As LANYARD_LOG does for the log level: one knob for every lanyard a
    // script (or a test run) starts, daemons and embedded switches alike.
    if let Ok(v) = std::env::var("LANYARD_THREADS") {
        match v.parse::<usize>() {
            Ok(n) if n <= lanyard::dataplane::MAX_SHARDS => config.dataplane.threads = n,
            _ => {
                eprintln!(
                    "lanyard: LANYARD_THREADS: '{v}' is not a thread count (0..={}; 0: one per CPU, at most 8)",
                    lanyard::dataplane::MAX_SHARDS
                );
                return Err(EXIT_USAGE);
            }
        }
    }
    Ok(config)
}

fn socket_path(arg: &SocketArg, config: Option<&Config>) -> PathBuf {
    arg.socket
        .clone()
        .or_else(|| config.and_then(|c| c.daemon.socket.clone()))
        .unwrap_or_else(default_socket_path)
}

fn connect(arg: &SocketArg) -> Result<Client, u8> {
    let path = socket_path(arg, None);
    Client::connect(&path).map_err(|e| {
        eprintln!(
            "lanyard: no daemon reachable at {}: {e} (start one with `lanyard daemon`)",
            path.display()
        );
        EXIT_FAILED
    })
}

fn report_client_error(e: ClientError) -> u8 {
    eprintln!("lanyard: {e}");
    match e {
        ClientError::Control(c) if c.exit_code() == 2 => EXIT_USAGE,
        _ => EXIT_FAILED,
    }
}

/// Sends one request to the daemon and prints the answer with `show`.
fn query(arg: &SocketArg, req: &Request, show: impl FnOnce(&Value)) -> u8 {
    let mut c = match connect(arg) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match c.request(req, &[]) {
        Ok(v) => {
            show(&v);
            0
        }
        Err(e) => report_client_error(e),
    }
}

fn daemon(a: DaemonArgs) -> u8 {
    let mut config = match load_config(a.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(t) = a.threads {
        config.dataplane.threads = t as usize;
    }
    log::set_level(config.daemon.log_level);
    let path = socket_path(&a.socket, Some(&config));
    // Threads started from here on inherit the mask; the main thread waits
    // for the signals synchronously.
    let mut signals = nix::sys::signal::SigSet::empty();
    for s in [
        nix::sys::signal::Signal::SIGINT,
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        signals.add(s);
    }
    let _ = signals.thread_block();
    let fds = lanyard::sys::raise_fd_limit();
    let needed = (config.limits.max_ports + config.limits.max_control_connections + 64) as u64;
    if fds < needed {
        log::warn!(
            "open-file limit {fds} is below what limits.max_ports and limits.max_control_connections need ({needed})"
        );
    }
    let listener = match server::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            // Name where the path came from, as for any bad argument.
            let field = if a.socket.socket.is_some() {
                "--socket"
            } else if config.daemon.socket.is_some() {
                "daemon.socket"
            } else {
                "the default control socket"
            };
            eprintln!("lanyard: {field} {}: {e}", path.display());
            return EXIT_USAGE;
        }
    };
    let d = match Daemon::start(&config) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("lanyard: starting the switch: {e}");
            let _ = std::fs::remove_file(&path);
            return EXIT_FAILED;
        }
    };
    let serving = d.clone();
    if let Err(e) = std::thread::Builder::new()
        .name("lanyard-accept".into())
        .spawn(move || server::serve(serving, listener))
    {
        eprintln!("lanyard: {e}");
        return EXIT_FAILED;
    }
    log::info!(
        "listening on {} with {} network(s): {}",
        path.display(),
        config.networks.len(),
        config
            .networks
            .iter()
            .map(|n| format!("{} {} gw {}", n.name, n.subnet, n.gateway))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // A data path with a dead thread has ports nobody reads: stop serving
    // rather than accept containers onto it.
    let sig = loop {
        if let Some(c) = lanyard::sys::wait_signal(&signals, std::time::Duration::from_secs(1)) {
            break c.signal;
        }
        if !d.dataplane_running() {
            log::error!("a data-path thread has stopped; shutting down");
            let _ = std::fs::remove_file(&path);
            d.shutdown();
            return EXIT_FAILED;
        }
    };
    log::info!(
        "{}: shutting down",
        nix::sys::signal::Signal::try_from(sig)
            .map(|s| s.as_str())
            .unwrap_or("signal")
    );
    let _ = std::fs::remove_file(&path);
    d.shutdown();
    0
}

fn run(a: RunArgs) -> ExitCode {
    ExitCode::from(run_inner(a).unwrap_or_else(|c| c) as u8)
}

fn usage(msg: String) -> i32 {
    eprintln!("lanyard: {msg}");
    EXIT_USAGE as i32
}

fn run_inner(a: RunArgs) -> Result<i32, i32> {
    if let Some(n) = &a.name {
        check_name("--name", n).map_err(|e| usage(e.to_string()))?;
    }
    for al in &a.alias {
        check_name("--alias", al).map_err(|e| usage(e.to_string()))?;
    }
    if let Some(h) = &a.hostname {
        if h.is_empty() || h.len() > 64 {
            return Err(usage("--hostname: must be 1-64 characters".into()));
        }
    }
    let networks: Vec<String> = if a.network.is_empty() {
        vec!["default".into()]
    } else {
        a.network.clone()
    };
    let special = |n: &str| n == "none" || n == "host" || n.starts_with("container:");
    let mode =
        match networks.as_slice() {
            [n] if n == "none" => Mode::None,
            [n] if n == "host" => Mode::Host,
            [n] if n.starts_with("container:") => Mode::Join(n["container:".len()..].to_string()),
            ns if ns.iter().any(|n| special(n)) => return Err(usage(
                "--network: none, host and container:NAME cannot be combined with other networks"
                    .into(),
            )),
            _ => Mode::Networks,
        };
    if mode != Mode::Networks {
        for (flag, given) in [
            ("-p", !a.publish.is_empty()),
            ("--ip", a.ip.is_some()),
            ("--alias", !a.alias.is_empty()),
            ("--mtu", a.mtu.is_some()),
        ] {
            if given {
                return Err(usage(format!("{flag} needs a network of the container's own (not none, host or container:NAME)")));
            }
        }
    }
    let explicit_socket = a.socket.socket.is_some();
    let config = load_config(a.config.as_deref()).map_err(|c| c as i32)?;
    let path = socket_path(&a.socket, Some(&config));
    let mut client = match Client::connect(&path) {
        Ok(c) => Some(c),
        Err(e) if explicit_socket || e.kind() == std::io::ErrorKind::PermissionDenied => {
            eprintln!("lanyard: no daemon reachable at {}: {e}", path.display());
            return Err(EXIT_SETUP_FAILED);
        }
        Err(_) => None,
    };
    if client.is_none() && mode == Mode::Networks {
        // The embedded switch: check what the daemon would check, before
        // anything is created.
        for n in &networks {
            if config.network(n).is_none() {
                return Err(usage(format!("--network: no network named '{n}'")));
            }
        }
        if let Some(ip) = a.ip {
            let net = config.network(&networks[0]).expect("checked");
            if !net.subnet.contains(&ip) {
                return Err(usage(format!(
                    "--ip: {ip} is outside the network's subnet {}",
                    net.subnet
                )));
            }
        }
    }
    // `container:NAME`: the process to join, and its nameserver.
    let mut join: Option<(u32, Option<std::net::Ipv4Addr>)> = None;
    if let Mode::Join(target) = &mode {
        let Some(c) = client.as_mut() else {
            return Err(usage(format!(
                "--network container:{target} needs a running daemon"
            )));
        };
        match c.request(
            &Request::ContainerInfo {
                container: target.clone(),
            },
            &[],
        ) {
            Ok(v) => {
                let pid = v["pid"].as_u64().unwrap_or(0) as u32;
                let ns = v["nameserver"].as_str().and_then(|s| s.parse().ok());
                join = Some((pid, ns));
            }
            Err(e) => return Err(report_client_error(e) as i32),
        }
    }
    let container_id = random_id();
    let hostname = a
        .hostname
        .clone()
        .unwrap_or_else(|| container_id[..12].to_string());
    let ifnames: Vec<String> = (0..networks.len()).map(|i| format!("eth{i}")).collect();
    let spec = ContainerSpec {
        argv: a.command.clone(),
        hostname: hostname.clone(),
        net: match &mode {
            Mode::Networks => NetMode::Isolated {
                ifnames: ifnames.clone(),
            },
            Mode::None => NetMode::None,
            Mode::Host => NetMode::Host,
            Mode::Join(_) => NetMode::Join {
                pid: join.map(|j| j.0).unwrap_or(0),
            },
        },
    };
    // Fork before any thread exists (the embedded switch starts threads).
    // SAFETY: no thread has been started yet: the client is a plain socket
    // and the embedded switch starts below.
    let mut container = unsafe { netns::spawn(&spec) }.map_err(|e| {
        eprintln!("lanyard: creating the container: {e}");
        EXIT_SETUP_FAILED
    })?;
    netns::block_forwarded_signals();
    let taps = container.take_taps();
    let mut replies: Vec<AttachReply> = Vec::new();
    let mut embedded: Option<std::sync::Arc<Daemon>> = None;
    for (i, (net, tap)) in networks.iter().zip(taps).enumerate() {
        let req = AttachRequest {
            container_id: container_id.clone(),
            name: a.name.clone(),
            network: net.clone(),
            ip: if i == 0 { a.ip } else { None },
            mtu: a.mtu,
            allow_host_loopback: a.allow_host_loopback.then_some(true),
            publish: if i == 0 {
                a.publish.clone()
            } else {
                Vec::new()
            },
            aliases: a.alias.clone(),
            ifname: Some(ifnames[i].clone()),
            pid: Some(container.pid.as_raw() as u32),
        };
        let attached = match client.as_mut() {
            Some(c) => attach_via_daemon(c, req, tap),
            None => {
                if embedded.is_none() {
                    log::set_level(Level::Warn);
                    // One container's ports all live on one shard: more
                    // threads would only idle.
                    let mut config = config.clone();
                    config.dataplane.threads = 1;
                    match Daemon::start(&config) {
                        Ok(d) => embedded = Some(d),
                        Err(e) => {
                            eprintln!("lanyard: starting the embedded switch: {e}");
                            container.abort();
                            return Err(EXIT_SETUP_FAILED);
                        }
                    }
                }
                attach_embedded(embedded.as_ref().expect("started"), req, tap)
            }
        };
        match attached {
            Ok(r) => replies.push(r),
            Err(code) => {
                container.abort();
                return Err(code);
            }
        }
    }
    let interfaces: Vec<IfConfig> = replies
        .iter()
        .enumerate()
        .map(|(i, r)| IfConfig {
            ifname: ifnames[i].clone(),
            ip: r.ip,
            prefix_len: r.prefix_len,
            gateway: r.gateway,
            mac: r.mac.clone(),
            mtu: r.mtu,
            txqueuelen: r.txqueuelen,
            default_route: i == 0,
        })
        .collect();
    let files = match (&mode, replies.first(), join) {
        (Mode::Networks, Some(r), _) => ContainerFiles::write(
            &container_id,
            Some(r.nameserver),
            Some((r.ip, &r.name)),
            &hostname,
        ),
        (Mode::Join(_), _, Some((_, Some(ns)))) => {
            ContainerFiles::write(&container_id, Some(ns), None, &hostname)
        }
        _ => None,
    };
    let setup = Setup {
        interfaces,
        resolv_conf: files.as_ref().map(|f| f.dir.join("resolv.conf")),
        hosts: files
            .as_ref()
            .and_then(|f| f.hosts.then(|| f.dir.join("hosts"))),
    };
    if let Err(e) = container.configure(&setup) {
        eprintln!("lanyard: configuring the container: {e}");
        let _ = nix::sys::signal::kill(container.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(container.pid, None);
        return Err(EXIT_SETUP_FAILED);
    }
    let code = netns::supervise(container.pid);
    drop(files);
    drop(client);
    drop(embedded);
    Ok(code)
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Networks,
    None,
    Host,
    Join(String),
}

/// The container's generated resolv.conf and hosts, in a directory of the
/// user's removed when `run` ends.
struct ContainerFiles {
    dir: PathBuf,
    hosts: bool,
}

impl ContainerFiles {
    /// A private directory for them: under the per-user runtime dir when
    /// that is ours, else a fresh one in /tmp (never a directory someone
    /// else could have made for us).
    fn private_dir(id: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(rt) = default_socket_path().parent() {
            if server::prepare_dir(rt).is_ok() {
                let c = rt.join("containers");
                if server::prepare_dir(&c).is_ok() {
                    return Ok(c.join(id));
                }
            }
        }
        let dir = std::env::temp_dir().join(format!(
            "lanyard-{}-{}",
            nix::unistd::geteuid().as_raw(),
            &id[..16.min(id.len())]
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(dir)
    }

    fn write(
        id: &str,
        nameserver: Option<std::net::Ipv4Addr>,
        own: Option<(std::net::Ipv4Addr, &str)>,
        hostname: &str,
    ) -> Option<ContainerFiles> {
        let base = match Self::private_dir(id) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("no private directory for the container's resolv.conf and hosts: {e}");
                return None;
            }
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&base)?;
            let host = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
            if let Some(ns) = nameserver {
                std::fs::write(base.join("resolv.conf"), netns::resolv_conf(ns, &host))?;
            }
            if let Some((ip, name)) = own {
                std::fs::write(base.join("hosts"), netns::hosts_file(ip, hostname, name))?;
            }
            Ok(())
        };
        match write() {
            Ok(()) => Some(ContainerFiles {
                dir: base,
                hosts: own.is_some(),
            }),
            Err(e) => {
                log::warn!(
                    "cannot write the container's resolv.conf and hosts in {}: {e}",
                    base.display()
                );
                let _ = std::fs::remove_dir_all(&base);
                None
            }
        }
    }
}

impl Drop for ContainerFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Hands the TAP to a running daemon; the connection must then stay open
/// for the container's life.
fn attach_via_daemon(
    c: &mut Client,
    req: AttachRequest,
    tap: std::os::fd::OwnedFd,
) -> Result<AttachReply, i32> {
    let r = c.request(&Request::Attach(req), &[tap.as_raw_fd()]);
    // The daemon holds the device now. Keeping our copy would keep eth0
    // alive after the daemon let go of it (or died).
    drop(tap);
    match r {
        Ok(v) => match serde_json::from_value(v) {
            Ok(reply) => Ok(reply),
            Err(e) => {
                eprintln!("lanyard: unexpected reply from the daemon: {e}");
                Err(EXIT_SETUP_FAILED)
            }
        },
        Err(e) => {
            eprintln!("lanyard: {e}");
            Err(match &e {
                ClientError::Control(c) => c.exit_code(),
                ClientError::Io(_) => EXIT_SETUP_FAILED,
            })
        }
    }
}

/// Attaches the TAP to the switch inside this process.
fn attach_embedded(
    d: &Daemon,
    req: AttachRequest,
    tap: std::os::fd::OwnedFd,
) -> Result<AttachReply, i32> {
    match d.attach_tap(req, tap) {
        Ok(r) => Ok(r),
        Err(e) => {
            let ControlError { message, .. } = &e;
            eprintln!("lanyard: {message}");
            Err(e.exit_code())
        }
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

fn network_ls(socket: &SocketArg, json: bool) -> u8 {
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

fn fdb(a: FdbArgs) -> u8 {
    query(
        &a.socket,
        &Request::Fdb {
            network: a.network.clone(),
        },
        |v| {
            if a.json {
                outln!("{}", pretty(v));
                return;
            }
            outln!(
                "{:<12} {:<19} {:<6} {:<16} {:<8} AGE",
                "NETWORK",
                "MAC",
                "PORT",
                "PORT NAME",
                "TYPE"
            );
            for n in v.as_array().into_iter().flatten() {
                for e in n["fdb"].as_array().into_iter().flatten() {
                    let is_static = e["is_static"].as_bool().unwrap_or(false);
                    outln!(
                        "{:<12} {:<19} {:<6} {:<16} {:<8} {}",
                        n["name"].as_str().unwrap_or(""),
                        e["mac"].as_str().unwrap_or(""),
                        e["port"],
                        e["port_name"].as_str().unwrap_or(""),
                        if is_static { "static" } else { "learned" },
                        if is_static {
                            "-".to_string()
                        } else {
                            format!("{:.1}s", e["age_secs"].as_f64().unwrap_or(0.0))
                        }
                    );
                }
            }
        },
    )
}

fn conntrack(a: StatsArgs) -> u8 {
    query(&a.socket, &Request::Conntrack {}, |v| {
        if a.json {
            outln!("{}", pretty(v));
            return;
        }
        outln!(
            "{:<5} {:<22} {:<22} {:<22} {:<12} {:>12} {:>12} {:>8}",
            "PROTO",
            "CONTAINER",
            "REMOTE",
            "TARGET",
            "STATE",
            "BYTES OUT",
            "BYTES IN",
            "AGE"
        );
        for f in v.as_array().into_iter().flatten() {
            outln!(
                "{:<5} {:<22} {:<22} {:<22} {:<12} {:>12} {:>12} {:>7.1}s",
                f["proto"].as_str().unwrap_or(""),
                f["container"].as_str().unwrap_or(""),
                f["remote"].as_str().unwrap_or(""),
                f["target"].as_str().unwrap_or(""),
                f["state"].as_str().unwrap_or(""),
                f["bytes_out"],
                f["bytes_in"],
                f["age_secs"].as_f64().unwrap_or(0.0)
            );
        }
    })
}

fn stats(a: StatsArgs) -> u8 {
    query(&a.socket, &Request::Stats {}, |v| {
        if a.json {
            outln!("{}", pretty(v));
            return;
        }
        // Which thread reads a port matters only when there are several.
        let threaded = v["dataplane_threads"].as_u64().unwrap_or(1) > 1;
        outln!(
            "{:<5} {:<16} {:<9} {:<12} {:>12} {:>14} {:>12} {:>14} {:>9}{}",
            "PORT",
            "NAME",
            "KIND",
            "NETWORK",
            "RX PKTS",
            "RX BYTES",
            "TX PKTS",
            "TX BYTES",
            "DROPS",
            if threaded { " SHARD" } else { "" }
        );
        let ports = v["ports"].as_array().cloned().unwrap_or_default();
        for p in &ports {
            let c = &p["counters"];
            let drops: u64 = c["drops"]
                .as_object()
                .map(|m| m.values().filter_map(|x| x.as_u64()).sum())
                .unwrap_or(0);
            let shard = if threaded {
                format!(" {:>5}", p["shard"])
            } else {
                String::new()
            };
            outln!(
                "{:<5} {:<16} {:<9} {:<12} {:>12} {:>14} {:>12} {:>14} {:>9}{shard}{}",
                p["id"],
                p["name"].as_str().unwrap_or(""),
                p["kind"].as_str().unwrap_or(""),
                p["network"].as_str().unwrap_or(""),
                c["rx_packets"],
                c["rx_bytes"],
                c["tx_packets"],
                c["tx_bytes"],
                drops,
                if p["dead"].as_bool() == Some(true) {
                    "  (gone)"
                } else {
                    ""
                }
            );
        }
        let mut any = false;
        for p in &ports {
            for (reason, n) in p["counters"]["drops"].as_object().into_iter().flatten() {
                if !any {
                    outln!("\nDROPS BY REASON");
                    any = true;
                }
                outln!(
                    "  port {:<5} {:<16} {:<24} {}",
                    p["id"],
                    p["name"].as_str().unwrap_or(""),
                    reason,
                    n
                );
            }
        }
        if let Some(nat) = v["nat"].as_object() {
            let items: Vec<String> = nat.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!("\nnat: flows={} {}", v["nat_flows"], items.join(" "));
        }
        if let Some(dns) = v["dns"].as_object() {
            let items: Vec<String> = dns.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!("dns: {}", items.join(" "));
        }
        for n in v["networks"].as_array().into_iter().flatten() {
            let g = &n["gateway"];
            let f = &n["fdb_counters"];
            outln!(
                "\nnetwork {}: gateway arp_replies={} echo_replies={} unreachables_sent={} resets_sent={}; fdb entries={}/{} learned={} moved={} refused_full={} aged_out={}",
                n["name"].as_str().unwrap_or(""),
                g["arp_replies"], g["echo_replies"], g["unreachables_sent"], g["resets_sent"],
                n["fdb"].as_array().map_or(0, |a| a.len()), n["fdb_max_entries"],
                f["learned"], f["moved"], f["refused_full"], f["aged_out"]
            );
        }
    })
}
