//! The `lanyard` command line: argument parsing and output formatting
//! only; every operation lives in the library. One file per command group:
//! `run`, `daemon`, `network`, `port`, `show` (fdb, stats, conntrack) and
//! `container` (connect, disconnect, attach, detach, and `lanyard
//! connect`'s hidden helper). Here: the command tree, the dispatch, and
//! what the management commands share (the socket, one query, stdout).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use serde_json::Value;

use lanyard::config::{MAX_MTU, MIN_MTU};
use lanyard::container::helper::TAP_HELPER_COMMAND;
use lanyard::control::client::{Client, ClientError};
use lanyard::control::Request;
use lanyard::daemon::{EXIT_FAILED, EXIT_USAGE};

/// `println!` that ends the command quietly, exit 0, when stdout is a
/// closed pipe (`lanyard conntrack | head -1`), as `ls | head` does;
/// `println!` would panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if let Err(e) = writeln!(std::io::stdout().lock(), $($t)*) {
            $crate::cli::stdout_failed(e);
        }
    }};
}

mod capture;
mod container;
mod daemon;
mod generate;
mod network;
mod port;
mod run;
mod show;
mod slirp4netns;

fn stdout_failed(e: std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("lanyard: writing the output: {e}");
    std::process::exit(EXIT_FAILED as i32);
}

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
    #[command(after_help = "Examples:
  lanyard run -- ping -c 1 172.17.0.1
  lanyard run --name web -p 8080:80 -- python3 -m http.server 80
  lanyard run --network bridge --network-alias db --add-host gw:host-gateway -- sh
  lanyard run --network backend --ip 10.5.0.9 --dns-search corp.test -- sh
Exit codes: the command's own; 125 when lanyard refused or failed (bad argument, no such network, setup); 126 not executable; 127 not found.")]
    Run(run::RunArgs),
    /// Run the switch in the foreground, serving the control socket.
    #[command(after_help = "Examples:
  lanyard daemon
  lanyard daemon --threads 2 --metrics 127.0.0.1:9184
  lanyard daemon --config /etc/lanyard.toml --socket /run/user/1000/lanyard.sock")]
    Daemon(daemon::DaemonArgs),
    /// Manage networks.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Show the MAC table (forwarding database) of a network.
    Fdb(show::FdbArgs),
    /// Show per-port counters and drops by reason.
    Stats(show::StatsArgs),
    /// List NAT flows: protocol, container side, remote side, state, bytes, age.
    Conntrack(show::StatsArgs),
    /// Capture frames as they cross the switch, as pcapng or pcap (for tcpdump, tshark, Wireshark).
    #[command(after_help = "Examples:
  lanyard capture -w - | tcpdump -nn -r -
  lanyard capture --port web -c 100 -w web.pcapng tcp port 80
  lanyard capture --network backend --format pcap -w backend.pcap 'arp or icmp'")]
    Capture(capture::CaptureArgs),
    /// Show the daemon's sandbox, and probe it: what it refuses and allows, tried in the daemon.
    Sandbox(show::StatsArgs),
    /// Attach an existing interface (e.g. a veth's host end) to a network through AF_PACKET.
    Attach(container::AttachArgs),
    /// Detach an interface attached with `lanyard attach`.
    Detach(container::DetachArgs),
    /// Connect a running container to a network (a new interface).
    Connect(container::ConnectArgs),
    /// Disconnect a running container from a network.
    Disconnect(container::DisconnectArgs),
    /// (internal) `lanyard connect`'s helper: creates a TAP inside a container.
    #[command(name = TAP_HELPER_COMMAND, hide = true)]
    ContainerTap(container::ContainerTapArgs),
    /// Manage published ports of running containers.
    #[command(subcommand)]
    Port(port::PortCommand),
    /// Print a shell completion script (bash: `source <(lanyard completions bash)`).
    Completions(generate::CompletionsArgs),
    /// Print the manual page lanyard(1), or write every page into a directory.
    Man(generate::ManArgs),
    /// Be a slirp4netns for podman or rootlesskit (slirp4netns 1.2's arguments; also as a link named `slirp4netns`).
    Slirp4netns(Slirp4netnsArgs),
}

#[derive(Args)]
struct Slirp4netnsArgs {
    /// slirp4netns's arguments (`lanyard slirp4netns --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

#[derive(Args)]
struct SocketArg {
    /// Control socket of the daemon [default: $XDG_RUNTIME_DIR/lanyard/lanyard.sock or /tmp/lanyard-$UID/lanyard.sock]
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// `--json`, or docker's `--format json`: how a listing is printed.
#[derive(Args)]
struct FormatArg {
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Output format: table or json (docker's `--format json`).
    #[arg(long, value_name = "table|json", value_parser = ["table", "json"], conflicts_with = "json")]
    format: Option<String>,
}

impl FormatArg {
    fn json(&self) -> bool {
        self.json || self.format.as_deref() == Some("json")
    }
}

#[derive(Args)]
struct SandboxArg {
    /// Confine the switch after set-up (docs/SECURITY.md): on (what the kernel offers), require (all of it, or fail), off [default: `[daemon] sandbox`, on]
    #[arg(long, value_name = "on|off|require", value_parser = parse_sandbox)]
    sandbox: Option<lanyard::sandbox::Mode>,
    /// No sandbox (--sandbox=off)
    #[arg(long, conflicts_with = "sandbox")]
    no_sandbox: bool,
}

impl SandboxArg {
    /// The mode asked for on the command line, if any.
    fn mode(&self) -> Option<lanyard::sandbox::Mode> {
        if self.no_sandbox {
            Some(lanyard::sandbox::Mode::Off)
        } else {
            self.sandbox
        }
    }
}

fn parse_sandbox(s: &str) -> Result<lanyard::sandbox::Mode, String> {
    lanyard::sandbox::Mode::parse(s).ok_or_else(|| format!("'{s}' is not one of on, off, require"))
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

pub fn main() -> ExitCode {
    // Every command logs (run's re-attachment, the helper's errors) at
    // info unless LANYARD_LOG or RUST_LOG say otherwise; the daemon and the
    // embedded switch set their own level later.
    lanyard::log::set_level(lanyard::log::Level::Info);
    // slirp4netns's command line, not clap's: as `slirp4netns` (a link
    // named so) or as `lanyard slirp4netns`.
    let argv: Vec<String> = std::env::args().collect();
    let called = argv
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("");
    if called == "slirp4netns" {
        let code = slirp4netns::main(&argv[0], &argv[1..]);
        return ExitCode::from(code as u8);
    }
    if argv.get(1).map(String::as_str) == Some("slirp4netns") {
        let code = slirp4netns::main("lanyard slirp4netns", &argv[2..]);
        return ExitCode::from(code as u8);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        // `run`'s bad arguments exit 125, as docker's and podman's do; the
        // other commands keep clap's 2, and --help and --version 0.
        Err(e) if e.use_stderr() && argv.get(1).map(String::as_str) == Some("run") => {
            let _ = e.print();
            return ExitCode::from(lanyard::container::EXIT_SETUP_FAILED as u8);
        }
        Err(e) => e.exit(),
    };
    let code = match cli.command {
        Command::Run(a) => return run::run(a),
        Command::Daemon(a) => daemon::daemon(a),
        Command::Network(c) => network::network(c),
        Command::Fdb(a) => show::fdb(a),
        Command::Stats(a) => show::stats(a),
        Command::Conntrack(a) => show::conntrack(a),
        Command::Sandbox(a) => show::sandbox(a),
        Command::Capture(a) => capture::capture(a),
        Command::Attach(a) => container::attach(a),
        Command::Detach(a) => container::detach(a),
        Command::Connect(a) => container::connect(a),
        Command::Disconnect(a) => container::disconnect(a),
        Command::ContainerTap(a) => return container::container_tap(a),
        Command::Port(c) => port::port(c),
        Command::Completions(a) => generate::completions(a),
        Command::Man(a) => generate::man(a),
        // Handled above, before clap; here for `lanyard --help`.
        Command::Slirp4netns(a) => slirp4netns::main("lanyard slirp4netns", &a.args) as u8,
    };
    ExitCode::from(code)
}

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn connect(arg: &SocketArg) -> Result<Client, u8> {
    let path = lanyard::daemon::socket_path(arg.socket.as_deref(), None);
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
