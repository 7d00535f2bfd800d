//! A container's life, as `lanyard run` lives it: [`run`] takes a
//! [`RunSpec`] (what the command line says) and returns the command's exit
//! code, or a [`RunError`] with the code and message `run` exits with.
//!
//! The sequence:
//!
//! 1. check the request (names, hostname, the network mode and the flags
//!    it allows), load the config, find a daemon on the control socket
//!    (else, for networks of the container's own, check what the embedded
//!    switch will be asked); for `container:NAME`, ask the daemon for
//!    NAME's process and nameserver;
//! 2. fork the child while still single-threaded (`helper::spawn`); it
//!    enters its namespaces (`ns`) and sends back one TAP per network;
//! 3. hand each TAP to the switch: over the control socket (`attach`), or
//!    to a `Daemon` embedded in this process, started on first use;
//! 4. write the container's resolv.conf and hosts (`ContainerFiles`) and
//!    send the child its settings (`Container::configure`); it configures
//!    its interfaces, binds the files and execs;
//! 5. supervise it (`supervise`): signals forwarded, its exit status
//!    returned. The endpoints live as long as this process's control
//!    connection (or embedded switch).
//!
//! Errors are values: the library prints nothing but what the child says
//! between fork and exec (a command that cannot run, a TAP that cannot be
//! passed) and log lines.

mod files;
pub mod helper;
pub mod ns;
pub mod pcap;
pub mod reattach;
pub mod spawner;
pub mod supervise;

use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{check_name, Config};
use crate::control::client::Client;
use crate::control::{AttachReply, AttachRequest, ControlError, Daemon, Request};
use crate::daemon::{load_config, socket_path};
use crate::log::{self, Level};
use crate::sys::random_id;

use files::ContainerFiles;
use reattach::Reattach;
use supervise::{block_forwarded_signals, supervise};

pub use files::{hosts_file, resolv_conf, resolv_conf_with, AddHost, ExtraFiles};
pub use helper::{IfConfig, Ipv6Config, Setup};
pub use ns::{ContainerSpec, NetMode};

/// Exit code when lanyard itself fails to set up the container (docker's).
pub const EXIT_SETUP_FAILED: i32 = 125;
/// Exit code when the command cannot be executed (shell convention).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the command is not found (shell convention).
pub const EXIT_NOT_FOUND: i32 = 127;

/// What to run, and on which networks: `lanyard run`'s arguments.
#[derive(Debug, Clone, Default)]
pub struct RunSpec {
    /// Container name (default: the short container id).
    pub name: Option<String>,
    /// One interface per network (eth0, eth1, ...), or one of `none`,
    /// `host`, `container:NAME`; empty: `default`.
    pub networks: Vec<String>,
    /// More names in DNS.
    pub aliases: Vec<String>,
    /// The address on the first network, instead of the next free one.
    pub ip: Option<Ipv4Addr>,
    /// The IPv6 address on the first network (dual stack), instead of the
    /// next free one.
    pub ip6: Option<std::net::Ipv6Addr>,
    /// MTU of the interfaces (default: the network's).
    pub mtu: Option<u32>,
    /// Hostname inside (default: the short container id).
    pub hostname: Option<String>,
    /// May reach the host's loopback through the gateway's address.
    pub allow_host_loopback: bool,
    /// `-p` specs, published on the first network.
    pub publish: Vec<String>,
    /// The command and its arguments.
    pub argv: Vec<String>,
    /// The daemon's control socket, given explicitly (`--socket`): no
    /// daemon there is then an error instead of a reason to embed one.
    pub socket: Option<PathBuf>,
    /// Config file (the embedded switch's, and where `daemon.socket` is);
    /// default: the embedded configs/default.toml.
    pub config: Option<PathBuf>,
    /// The embedded switch's sandbox (`--sandbox`, `--no-sandbox`); `None`:
    /// the config's `[daemon] sandbox`.
    pub sandbox: Option<crate::sandbox::Mode>,
    /// How long the container waits for its daemon to come back once it
    /// is gone (`--reattach-timeout`) before it is stopped.
    pub reattach_timeout: std::time::Duration,
    /// `--dns-search`: search domains instead of the host's (`.`: none).
    pub dns_search: Vec<String>,
    /// `--dns-option`: resolver options instead of the host's.
    pub dns_options: Vec<String>,
    /// `--add-host`: more lines of the container's /etc/hosts.
    pub add_hosts: Vec<AddHost>,
    /// `--pcap FILE`: everything its ports pass, from the start, as
    /// pcapng.
    pub pcap: Option<PathBuf>,
    /// `--dns`: the resolvers the embedded DNS forwards this container's
    /// queries to instead of the host's (its resolv.conf still names the
    /// gateway, which keeps answering container names).
    pub dns: Vec<std::net::IpAddr>,
}

/// Why the container did not run: the exit code `lanyard run` exits with
/// (125 for anything lanyard refused or failed at, as docker's: a bad
/// argument or config, a refused request, a failed setup) and the message
/// it prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunError {
    pub code: i32,
    pub message: String,
}

impl RunError {
    fn new(code: i32, message: impl Into<String>) -> RunError {
        RunError {
            code,
            message: message.into(),
        }
    }

    /// A bad argument: 125, as `docker run` and `podman run` exit for
    /// their own errors of any kind (the other commands exit 2).
    fn usage(message: impl Into<String>) -> RunError {
        RunError::new(EXIT_SETUP_FAILED, message)
    }

    fn setup(message: impl Into<String>) -> RunError {
        RunError::new(EXIT_SETUP_FAILED, message)
    }
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RunError {}

/// The network mode `RunSpec::networks` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Networks,
    None,
    Host,
    Join(String),
}

/// Runs `spec.argv` in a new container and returns its exit code (128 + N
/// when killed by signal N; 126/127 when it cannot be executed or found).
///
/// # Safety
/// The process must be single-threaded: this forks, and the child
/// allocates and takes locks between fork and exec. The embedded switch's
/// threads start after the fork.
pub unsafe fn run(spec: &RunSpec) -> Result<i32, RunError> {
    let (networks, mode) = check(spec)?;
    let config = load_config(spec.config.as_deref()).map_err(RunError::usage)?;
    // Opened now: a sandboxed `run` could not open it later.
    let pcap_file =
        match &spec.pcap {
            Some(p) if mode == Mode::Networks => Some(
                std::fs::File::create(p)
                    .map_err(|e| RunError::usage(format!("--pcap {}: {e}", p.display())))?,
            ),
            Some(_) => return Err(RunError::usage(
                "--pcap needs a network of the container's own (not none, host or container:NAME)",
            )),
            None => None,
        };
    let path = socket_path(spec.socket.as_deref(), Some(&config));
    let mut client = match Client::connect(&path) {
        Ok(c) => Some(c),
        Err(e) if spec.socket.is_some() || e.kind() == std::io::ErrorKind::PermissionDenied => {
            return Err(RunError::setup(format!(
                "no daemon reachable at {}: {e}",
                path.display()
            )));
        }
        Err(_) => None,
    };
    if client.is_none() && mode == Mode::Networks {
        check_embedded(spec, &networks, &config)?;
    }
    // `container:NAME`: the process to join, and its nameserver.
    let join = match &mode {
        Mode::Join(target) => Some(join_target(client.as_mut(), target)?),
        _ => None,
    };
    let container_id = random_id();
    let hostname = spec
        .hostname
        .clone()
        .unwrap_or_else(|| container_id[..12].to_string());
    let ifnames: Vec<String> = (0..networks.len()).map(|i| format!("eth{i}")).collect();
    let child = ContainerSpec {
        argv: spec.argv.clone(),
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
    // SAFETY: the caller guarantees no thread has been started; the client
    // is a plain socket and the embedded switch starts below.
    let mut container = unsafe { helper::spawn(&child) }
        .map_err(|e| RunError::setup(format!("creating the container: {e}")))?;
    block_forwarded_signals();
    // An embedded switch confines this process before its threads start
    // (they inherit it); the container, forked above, is outside.
    if client.is_none() && mode == Mode::Networks {
        if let Err(e) = confine_embedded(spec, &config, container.pid.as_raw()) {
            container.abort();
            return Err(e);
        }
    }
    let taps = container.take_taps();
    let mut replies: Vec<AttachReply> = Vec::new();
    let mut embedded: Option<Arc<Daemon>> = None;
    // What the daemon was given, to give it again after its restart.
    let mut kept: Vec<(AttachRequest, AttachReply, OwnedFd)> = Vec::new();
    for (i, (net, tap)) in networks.iter().zip(taps).enumerate() {
        let req = AttachRequest {
            container_id: container_id.clone(),
            name: spec.name.clone(),
            network: net.clone(),
            ip: if i == 0 { spec.ip } else { None },
            ip6: if i == 0 { spec.ip6 } else { None },
            mtu: spec.mtu,
            allow_host_loopback: spec.allow_host_loopback.then_some(true),
            publish: if i == 0 {
                spec.publish.clone()
            } else {
                Vec::new()
            },
            aliases: spec.aliases.clone(),
            ifname: Some(ifnames[i].clone()),
            pid: Some(container.pid.as_raw() as u32),
            dns: spec.dns.clone(),
            mac: None,
            sole_tenant: false,
        };
        let attached = match client.as_mut() {
            Some(c) => attach_via_daemon(c, req.clone(), tap).map(|(reply, ours)| {
                kept.push((req, reply.clone(), ours));
                reply
            }),
            None => {
                if embedded.is_none() {
                    match start_embedded(&config) {
                        Ok(d) => embedded = Some(d),
                        Err(e) => {
                            container.abort();
                            return Err(e);
                        }
                    }
                }
                attach_embedded(embedded.as_ref().expect("started"), req, tap)
            }
        };
        match attached {
            Ok(r) => replies.push(r),
            Err(e) => {
                container.abort();
                return Err(e);
            }
        }
    }
    // Before the interfaces come up: their first frames are in the file.
    let pcap = match pcap_file {
        Some(f) => {
            let w = match &embedded {
                Some(d) => pcap::PcapWriter::embedded(d, f),
                None => pcap::PcapWriter::via_daemon(&path, &container_id, f),
            };
            match w {
                Ok(w) => Some(w),
                Err(e) => {
                    container.abort();
                    return Err(RunError::setup(e));
                }
            }
        }
        None => None,
    };
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
            ipv6: r.ipv6,
        })
        .collect();
    let files = match (&mode, replies.first(), join) {
        (Mode::Networks, Some(r), _) => {
            let ips: Vec<std::net::IpAddr> = std::iter::once(r.ip.into())
                .chain(r.ipv6.map(|v| v.ip.into()))
                .collect();
            let mut extra = extra_files(spec);
            for a in &spec.add_hosts {
                match a.ip {
                    Some(ip) => extra.hosts.push((a.host.clone(), ip)),
                    None => {
                        extra.hosts.push((a.host.clone(), r.gateway.into()));
                        if let Some(v6) = &r.ipv6 {
                            extra.hosts.push((a.host.clone(), v6.gateway.into()));
                        }
                    }
                }
            }
            ContainerFiles::write(
                &container_id,
                Some(r.nameserver),
                Some((&ips, &r.name)),
                &hostname,
                &extra,
            )
        }
        (Mode::Join(_), _, Some((_, Some(ns)))) => {
            ContainerFiles::write(&container_id, Some(ns), None, &hostname, &extra_files(spec))
        }
        _ => None,
    };
    let setup = Setup {
        interfaces,
        resolv_conf: files.as_ref().map(|f| f.resolv_conf()),
        hosts: files.as_ref().and_then(|f| f.hosts()),
    };
    if let Err(e) = container.configure(&setup) {
        let _ = nix::sys::signal::kill(container.pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(container.pid, None);
        return Err(RunError::setup(format!("configuring the container: {e}")));
    }
    // A container on a daemon's networks outlives the daemon (`reattach`).
    let mut reattach = match (client, mode == Mode::Networks) {
        (Some(c), true) => {
            let mut r = Reattach::new(path.clone(), c, spec.reattach_timeout);
            for (req, reply, ours) in kept {
                r.keep(req, &reply, ours);
            }
            Some(r)
        }
        _ => None,
    };
    let code = supervise(container.pid, reattach.as_mut());
    drop(pcap);
    drop(files);
    drop(reattach);
    drop(embedded);
    Ok(code)
}

/// Checks what needs no config or daemon; returns the networks (`default`
/// when none is given) and the mode they ask for.
fn check(spec: &RunSpec) -> Result<(Vec<String>, Mode), RunError> {
    let usage = |e: crate::config::ConfigError| RunError::usage(e.to_string());
    if let Some(n) = &spec.name {
        check_name("--name", n).map_err(usage)?;
    }
    for al in &spec.aliases {
        check_name("--alias", al).map_err(usage)?;
    }
    for d in &spec.dns_search {
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if d.is_empty() || d.len() > 253 || !d.chars().all(valid) {
            return Err(RunError::usage(format!(
                "--dns-search: '{d}' is not a domain name"
            )));
        }
    }
    for o in &spec.dns_options {
        if o.is_empty() || o.len() > 64 || o.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(RunError::usage(format!(
                "--dns-option: '{o}' is not a resolver option"
            )));
        }
    }
    if let Some(h) = &spec.hostname {
        if h.is_empty() || h.len() > 64 {
            return Err(RunError::usage("--hostname: must be 1-64 characters"));
        }
    }
    let networks: Vec<String> = if spec.networks.is_empty() {
        vec!["default".into()]
    } else {
        spec.networks.clone()
    };
    let special = |n: &str| n == "none" || n == "host" || n.starts_with("container:");
    let mode =
        match networks.as_slice() {
            [n] if n == "none" => Mode::None,
            [n] if n == "host" => Mode::Host,
            [n] if n.starts_with("container:") => Mode::Join(n["container:".len()..].to_string()),
            ns if ns.iter().any(|n| special(n)) => return Err(RunError::usage(
                "--network: none, host and container:NAME cannot be combined with other networks",
            )),
            _ => Mode::Networks,
        };
    if mode != Mode::Networks {
        for (flag, given) in [
            ("-p", !spec.publish.is_empty()),
            ("--ip", spec.ip.is_some()),
            ("--ip6", spec.ip6.is_some()),
            ("--alias", !spec.aliases.is_empty()),
            ("--mtu", spec.mtu.is_some()),
        ] {
            if given {
                return Err(RunError::usage(format!("{flag} needs a network of the container's own (not none, host or container:NAME)")));
            }
        }
    }
    Ok((networks, mode))
}

/// The embedded switch's sandbox: as the daemon's, but it may still wait
/// for and signal its container, and writes only where the container's
/// generated files go.
fn confine_embedded(spec: &RunSpec, config: &Config, container_pid: i32) -> Result<(), RunError> {
    use crate::sandbox::{self, Paths, Role};
    // The embedded switch's level (LANYARD_LOG still overrides it).
    log::set_level(Level::Warn);
    let mode = spec.sandbox.unwrap_or(config.daemon.sandbox);
    let paths = Paths {
        // The host's resolv.conf (followed when rewritten in place; a file
        // renamed over it is a new inode Landlock keeps out).
        read: vec![config.dns.resolv_conf.clone()],
        write: ContainerFiles::base_dir().into_iter().collect(),
    };
    match sandbox::apply(mode, Role::Run { container_pid }, &paths) {
        Ok(r) if r.missing().is_empty() => log::debug!("{r}"),
        Ok(r) => log::warn!("{r}"),
        Err(e) => return Err(RunError::setup(e)),
    }
    Ok(())
}

/// The embedded switch: checks what the daemon would check, before
/// anything is created.
fn check_embedded(spec: &RunSpec, networks: &[String], config: &Config) -> Result<(), RunError> {
    for n in networks {
        if config.network(n).is_none() {
            return Err(RunError::usage(format!(
                "--network: no network named '{n}'"
            )));
        }
    }
    if let Some(ip) = spec.ip {
        let net = config.network(&networks[0]).expect("checked");
        if !net.subnet.contains(&ip) {
            return Err(RunError::usage(format!(
                "--ip: {ip} is outside the network's subnet {}",
                net.subnet
            )));
        }
    }
    if let Some(ip) = spec.ip6 {
        let net = config.network(&networks[0]).expect("checked");
        match &net.ipv6 {
            None => {
                return Err(RunError::usage(format!(
                    "--ip6: network '{}' has no IPv6 subnet",
                    net.name
                )))
            }
            Some(v) if !v.subnet.contains(&ip) => {
                return Err(RunError::usage(format!(
                    "--ip6: {ip} is outside the network's subnet {}",
                    v.subnet
                )))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// `container:NAME`: asks the daemon for NAME's process and nameserver.
fn join_target(
    client: Option<&mut Client>,
    target: &str,
) -> Result<(u32, Option<Ipv4Addr>), RunError> {
    let Some(c) = client else {
        return Err(RunError::usage(format!(
            "--network container:{target} needs a running daemon"
        )));
    };
    match c.request(
        &Request::ContainerInfo {
            container: target.to_string(),
        },
        &[],
    ) {
        Ok(v) => {
            let pid = v["pid"].as_u64().unwrap_or(0) as u32;
            let ns = v["nameserver"].as_str().and_then(|s| s.parse().ok());
            Ok((pid, ns))
        }
        Err(e) => {
            // Whoever is at fault, `run`'s own failure (docker's 125).
            Err(RunError::setup(e.to_string()))
        }
    }
}

/// The resolver settings of `spec` for the container's files.
fn extra_files(spec: &RunSpec) -> ExtraFiles {
    ExtraFiles {
        dns_search: spec.dns_search.clone(),
        dns_options: spec.dns_options.clone(),
        hosts: Vec::new(),
    }
}

/// The switch inside this process, for a `run` that found no daemon.
fn start_embedded(config: &Config) -> Result<Arc<Daemon>, RunError> {
    log::set_level(Level::Warn);
    // One container's ports all live on one shard: more threads would
    // only idle.
    let mut config = config.clone();
    config.dataplane.threads = 1;
    Daemon::start(&config)
        .map_err(|e| RunError::setup(format!("starting the embedded switch: {e}")))
}

/// Hands the TAP to a running daemon; the connection must then stay open
/// for the container's life.
fn attach_via_daemon(
    c: &mut Client,
    req: AttachRequest,
    tap: OwnedFd,
) -> Result<(AttachReply, OwnedFd), RunError> {
    let r = c.request(&Request::Attach(req), &[tap.as_raw_fd()]);
    // Our copy keeps the interface while the daemon is gone (a restart:
    // `reattach`); it is dropped when the daemon detaches the endpoint
    // (an event) or refuses it (here).
    match r {
        Ok(v) => serde_json::from_value(v)
            .map(|reply| (reply, tap))
            .map_err(|e| RunError::setup(format!("unexpected reply from the daemon: {e}"))),
        Err(e) => Err(RunError::setup(e.to_string())),
    }
}

/// Attaches the TAP to the switch inside this process.
fn attach_embedded(d: &Daemon, req: AttachRequest, tap: OwnedFd) -> Result<AttachReply, RunError> {
    d.attach_tap(req, tap).map_err(|e| {
        let ControlError { message, .. } = &e;
        RunError::setup(message.clone())
    })
}
