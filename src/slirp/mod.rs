//! The slirp4netns-compatible mode: lanyard as the network helper that
//! podman 4 and rootlesskit (rootless Docker, nerdctl, k3s) start for each
//! container, with slirp4netns 1.2's command line, network, protocol and
//! API, and lanyard's own switch, gateway and NAT behind them.
//!
//! # Theory of operation
//!
//! One helper process per call, as with slirp4netns: an engine starts it
//! for one network namespace and ends it with the container. The steps,
//! in the order the callers need them:
//!
//! | step | what | why here |
//! |---|---|---|
//! | 1 | check the options (`Options::layout`): CIDR, MTU, MAC, outbound addresses | errors must come before anything exists, with slirp4netns's texts and exit 1 |
//! | 2 | fork a child that joins the target's namespaces and opens the TAP ([`target`]) | only a single-threaded process may join a user namespace |
//! | 3 | bind the API socket | engines call it as soon as the ready byte arrives |
//! | 4 | confine ([`crate::sandbox`]) | before any thread exists, as the daemon does |
//! | 5 | start an embedded switch with one network, slirp4netns's, and attach the TAP as its sole tenant | the one data path lanyard has |
//! | 6 | serve the API on a thread; write `1` to the ready fd and close it | podman and rootlesskit wait for this byte |
//! | 7 | wait for the exit fd's hang-up (podman), a signal, or a dead data path; then stop, reset flows, exit 0 | rootlesskit ends it with SIGKILL, which needs nothing |
//!
//! The network is slirp4netns's: the CIDR (10.0.2.0/24 by default) with
//! the gateway and host at .2, DNS at .3 (the gateway's second address,
//! `--disable-dns` drops it), DHCP from .15, the guest's recommended
//! address .100 (what `-c` configures, and what a request without
//! `guest_addr` publishes to); with `-6`, fd00::/64 with the router at
//! fd00::2 and fe80::2, advertised so that the guest configures itself
//! (SLAAC). The host's loopback is reached at the gateway's address unless
//! `--disable-host-loopback`.
//!
//! Why one switch per helper and not the daemon's: every slirp4netns
//! network has the same addresses (each container is 10.0.2.100), so two
//! containers can never share one L2 network, and the engines tie the
//! helper's life to the container's (the exit fd, SIGKILL). A per-container
//! process keeps those semantics exactly, and a fault or a flood in one
//! container's helper reaches no other container.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use nix::sys::signal::{SigSet, Signal};

use crate::config::{Config, Ipv6Settings, NetworkConfig};
use crate::control::{AttachRequest, Daemon};
use crate::log;
use crate::wire::MacAddr;

pub mod api;
pub mod target;

pub use target::Target;

/// What `slirp4netns --version` reports as its own version: the one whose
/// command line, network and API this mode follows.
pub const SLIRP4NETNS_VERSION: &str = "1.2.0";

/// slirp4netns's feature level (`SLIRP_CONFIG_VERSION_MAX`), which its
/// tests and tools read from `--version`: 4 covers `--outbound-addr`,
/// `--disable-dns` and the rest of what this mode implements.
pub const SLIRP_CONFIG_VERSION: u32 = 4;

/// The exit status of every failure, as slirp4netns's (`EXIT_FAILURE`).
pub const EXIT_FAILURE: i32 = 1;

/// The command line, as parsed (`cli::slirp4netns`); checked by
/// [`Options::layout`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    pub configure: bool,
    pub exit_fd: Option<RawFd>,
    pub ready_fd: Option<RawFd>,
    pub mtu: u32,
    pub enable_ipv6: bool,
    pub api_socket: Option<PathBuf>,
    pub cidr: Option<String>,
    pub disable_host_loopback: bool,
    pub target: Target,
    pub userns_path: Option<PathBuf>,
    pub enable_sandbox: bool,
    pub enable_seccomp: bool,
    pub outbound_addr: Option<String>,
    pub outbound_addr6: Option<String>,
    pub disable_dns: bool,
    pub macaddress: Option<String>,
    pub tapname: String,
}

/// The network a helper serves, from its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    /// The DNS address (.3), and whether it serves (`--disable-dns`: no).
    pub dns: crate::config::DnsAddress,
    pub dhcp_start: Ipv4Addr,
    pub guest: Ipv4Addr,
    pub mtu: u32,
    pub ipv6: Option<Ipv6Settings>,
    pub mac: Option<MacAddr>,
    pub outbound: (Option<Ipv4Addr>, Option<Ipv6Addr>),
}

/// Offsets in the CIDR, slirp4netns's.
const GATEWAY_OFFSET: u32 = 2;
const DNS_OFFSET: u32 = 3;
const DHCP_START_OFFSET: u32 = 15;
const GUEST_OFFSET: u32 = 100;
/// The prefix lengths allowed: the guest is the network's address + 100.
const PREFIX_MIN: u8 = 1;
const PREFIX_MAX: u8 = 25;
pub const DEFAULT_CIDR: &str = "10.0.2.0/24";
pub const DEFAULT_MTU: u32 = 1500;
/// slirp4netns's largest MTU (libslirp's).
pub const MAX_MTU: u32 = 65521;

/// Parses `--cidr` with slirp4netns's checks and messages.
pub fn parse_cidr(cidr: &str) -> Result<Ipv4Net, String> {
    let invalid = || format!("invalid CIDR: {cidr}");
    let (addr, prefix) = cidr.split_once('/').ok_or_else(invalid)?;
    let dotted = addr.split('.').count() == 4
        && addr
            .split('.')
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()));
    if !dotted || !(1..=2).contains(&prefix.len()) || !prefix.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let network: Ipv4Addr = addr
        .parse()
        .map_err(|_| format!("invalid network address: {addr}"))?;
    let prefix: u8 = prefix.parse().map_err(|_| invalid())?;
    if !(PREFIX_MIN..=PREFIX_MAX).contains(&prefix) {
        return Err(format!(
            "prefix length needs to be {PREFIX_MIN}-{PREFIX_MAX}"
        ));
    }
    let net = Ipv4Net::new(network, prefix).map_err(|_| invalid())?;
    if net.network() != network {
        return Err(
            "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24".into(),
        );
    }
    Ok(net)
}

/// The IPv4 (or, for `--outbound-addr6`, IPv6) address of an interface, as
/// slirp4netns resolves an interface name given for an outbound address.
fn interface_addr(name: &str, v6: bool) -> Option<IpAddr> {
    let addrs = nix::ifaddrs::getifaddrs().ok()?;
    for a in addrs {
        if a.interface_name != name {
            continue;
        }
        let Some(sa) = a.address else { continue };
        if let (false, Some(s)) = (v6, sa.as_sockaddr_in()) {
            return Some(IpAddr::V4(s.ip()));
        }
        if let (true, Some(s)) = (v6, sa.as_sockaddr_in6()) {
            return Some(IpAddr::V6(s.ip()));
        }
    }
    None
}

impl Options {
    /// Checks the options and derives the network, with slirp4netns's
    /// messages where it has one.
    pub fn layout(&self) -> Result<Layout, String> {
        let subnet = parse_cidr(self.cidr.as_deref().unwrap_or(DEFAULT_CIDR))?;
        let at = |off: u32| Ipv4Addr::from(u32::from(subnet.network()) + off);
        if self.mtu < crate::config::MIN_MTU {
            return Err(format!(
                "MTU {} is below {}, the smallest lanyard serves (IPv6's minimum link MTU)",
                self.mtu,
                crate::config::MIN_MTU
            ));
        }
        let mac = match &self.macaddress {
            None => None,
            Some(m) => Some(m.parse::<MacAddr>().map_err(|_| {
                "macaddress has to be a valid MAC address (hex string, 6 bytes, each byte separated by a ':')."
                    .to_string()
            })?),
        };
        if mac.is_some_and(|m| !m.is_unicast()) {
            return Err(format!(
                "\"{}\" is an invalid MAC address: it is a group address",
                self.macaddress.as_deref().unwrap_or("")
            ));
        }
        let outbound4 = match &self.outbound_addr {
            None => None,
            Some(s) => Some(match s.parse::<Ipv4Addr>() {
                Ok(a) => a,
                Err(_) => match interface_addr(s, false) {
                    Some(IpAddr::V4(a)) => a,
                    _ => {
                        return Err(
                            "outbound-addr has to be valid ipv4 address or interface name.".into(),
                        )
                    }
                },
            }),
        };
        let outbound6 = match &self.outbound_addr6 {
            None => None,
            Some(s) => Some(match s.parse::<Ipv6Addr>() {
                Ok(a) => a,
                Err(_) => match interface_addr(s, true) {
                    Some(IpAddr::V6(a)) => a,
                    _ => {
                        return Err(
                            "outbound-addr6 has to be valid ipv6 address or interface name.".into(),
                        )
                    }
                },
            }),
        };
        let ipv6 = self.enable_ipv6.then(|| Ipv6Settings {
            subnet: Ipv6Net::new(Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0), 64).expect("/64"),
            gateway: Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2),
            link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 2)),
        });
        Ok(Layout {
            subnet,
            gateway: at(GATEWAY_OFFSET),
            dns: crate::config::DnsAddress {
                ip: at(DNS_OFFSET),
                serve: !self.disable_dns,
            },
            dhcp_start: at(DHCP_START_OFFSET),
            guest: at(GUEST_OFFSET),
            mtu: self.mtu,
            ipv6,
            mac,
            outbound: (outbound4, outbound6),
        })
    }
}

/// Ports of a helper's switch: its one TAP, with room to spare.
const HELPER_MAX_PORTS: usize = 4;
/// MACs its network may learn: the tenant's own is pinned; what else it
/// sends from is refused, so a handful is plenty.
const HELPER_FDB_ENTRIES: usize = 64;

/// The name of the helper's one network (what its logs say).
pub const NETWORK: &str = "slirp4netns";

impl Layout {
    /// The embedded switch's config: `base` (the embedded default, or
    /// `LANYARD_CONFIG`'s file) with this one network instead of its own.
    pub fn config(&self, base: &Config) -> Config {
        let mut c = base.clone();
        c.dataplane.threads = c.dataplane.threads.max(1);
        // One container's switch: tables sized for it, not for a daemon's
        // thousand ports. They are made (and their memory touched) at
        // start, which podman waits for on every `run`.
        c.limits.max_ports = c.limits.max_ports.min(HELPER_MAX_PORTS);
        c.limits.fdb_max_entries = c.limits.fdb_max_entries.min(HELPER_FDB_ENTRIES);
        c.limits.fdb_max_per_port = c.limits.fdb_max_per_port.min(HELPER_FDB_ENTRIES as u32);
        c.nat.max_flows = c.nat.max_flows.min(c.nat.max_flows_per_container as usize);
        c.networks = vec![NetworkConfig {
            name: NETWORK.into(),
            subnet: self.subnet,
            gateway: self.gateway,
            ip_range: self.subnet,
            mtu: self.mtu,
            txqueuelen: 1000,
            mac_aging: Duration::from_secs(300),
            internal: false,
            ipv6: self.ipv6,
            dns: Some(self.dns),
            dhcp_start: Some(self.dhcp_start),
        }];
        c
    }
}

/// The config the helper starts from: `LANYARD_CONFIG`'s file (its
/// limits, NAT, DNS and sandbox settings; its networks are replaced), else
/// the embedded default; `LANYARD_DNS_UPSTREAM` (comma-separated
/// `IP:PORT`s) overrides the upstream resolvers.
fn base_config() -> Result<Config, String> {
    let path = std::env::var_os("LANYARD_CONFIG").map(PathBuf::from);
    let mut c = crate::daemon::load_config(path.as_deref())?;
    if let Ok(v) = std::env::var("LANYARD_DNS_UPSTREAM") {
        let ups: Result<Vec<std::net::SocketAddr>, _> =
            v.split(',').map(|s| s.trim().parse()).collect();
        c.dns.upstream = ups.map_err(|_| {
            format!("LANYARD_DNS_UPSTREAM: '{v}' is not a list of IP:PORT upstreams")
        })?;
    }
    Ok(c)
}

/// Runs the helper until the exit fd hangs up or a signal ends it; returns
/// the exit status. Call from the main thread of a single-threaded process.
pub fn run(opts: &Options) -> i32 {
    match run_inner(opts) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{e}");
            EXIT_FAILURE
        }
    }
}

fn run_inner(opts: &Options) -> Result<(), String> {
    let layout = opts.layout()?;
    let mut base = base_config()?;
    if std::env::var_os("LANYARD_CONFIG").is_none() {
        // The published ports' client budget protects a port's neighbours
        // on the data path's thread; a helper's switch has none.
        base.nat.published_clients = crate::ratelimit::Rate::new(1_000_000, 1_000_000);
    }
    let mut config = layout.config(&base);
    log::set_level(config.daemon.log_level);
    // The exit and ready fds are the caller's; check they are open before
    // anything is made, as a bad fd is a bad argument.
    for (name, fd) in [("exit-fd", opts.exit_fd), ("ready-fd", opts.ready_fd)] {
        if let Some(fd) = fd {
            // SAFETY: F_GETFD only reads the descriptor's flags.
            if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
                return Err(format!("{name} {fd}: {}", std::io::Error::last_os_error()));
            }
        }
    }
    let configure = opts.configure.then(|| target::Configure {
        ip: layout.guest,
        prefix_len: layout.subnet.prefix_len(),
        gateway: layout.gateway,
        mtu: layout.mtu,
        mac: layout.mac,
    });
    let req = target::TapRequest {
        target: opts.target.clone(),
        userns: opts.userns_path.clone(),
        tapname: opts.tapname.clone(),
        configure,
    };
    // SAFETY: nothing has started a thread yet (`cli::main` hands over
    // before any, and this function starts the first below).
    let tap = unsafe { target::open(&req) }?;
    let listener = match &opts.api_socket {
        Some(p) => Some(bind_api(p)?),
        None => None,
    };
    // Signals are waited for by the main thread; the threads started from
    // here on inherit the mask.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    let _ = signals.thread_block();
    let fds = crate::sys::raise_fd_limit();
    if let Some(warning) = config.fit_open_files(fds) {
        log::warn!("{warning}");
    }
    crate::sys::sock::set_outbound(layout.outbound.0, layout.outbound.1);
    confine(opts, &config)?;
    let d = Daemon::start(&config).map_err(|e| format!("starting the switch: {e}"))?;
    let result = serve(opts, &layout, &d, tap, listener, &signals);
    d.shutdown();
    if let Some(p) = &opts.api_socket {
        // Fails inside an empty root (read-only), as slirp4netns's does;
        // the engines expect the file may stay.
        let _ = std::fs::remove_file(p);
    }
    result
}

/// `--enable-sandbox` requires an empty root, the capabilities dropped and
/// Landlock; `--enable-seccomp` requires the system-call filter. Without
/// them lanyard still applies what it applies everywhere (`[daemon]
/// sandbox`, on by default: every layer the kernel offers but the empty
/// root), as a warning when some layer is missing.
fn confine(opts: &Options, config: &Config) -> Result<(), String> {
    use crate::sandbox::{apply_layers, Layers, Mode, Paths, Role};
    let base = config.daemon.sandbox;
    let layers = Layers {
        empty_root: if opts.enable_sandbox {
            Mode::Require
        } else {
            Mode::Off
        },
        files: if opts.enable_sandbox {
            Mode::Require
        } else {
            base
        },
        syscalls: if opts.enable_seccomp {
            Mode::Require
        } else {
            base
        },
    };
    let paths = Paths {
        // The host's resolv.conf (followed when rewritten in place; a file
        // renamed over it is a new inode Landlock keeps out).
        read: vec![config.dns.resolv_conf.clone()],
        write: opts
            .api_socket
            .as_ref()
            .and_then(|p| p.parent().map(|d| d.to_path_buf()))
            .into_iter()
            .collect(),
    };
    let r = apply_layers(layers, Role::Daemon, &paths)?;
    if r.missing().is_empty() {
        log::info!("{r}");
    } else {
        log::warn!("{r}");
    }
    Ok(())
}

fn bind_api(path: &std::path::Path) -> Result<UnixListener, String> {
    // sockaddr_un's sun_path is 108 bytes with its terminator.
    if path.as_os_str().len() >= 108 {
        return Err(format!(
            "the specified API socket path is too long (>= 108): {}",
            path.display()
        ));
    }
    // slirp4netns replaces whatever is there; the socket is its owner's
    // only (it publishes host ports), as the daemon's control socket is.
    let _ = std::fs::remove_file(path);
    crate::control::server::bind_private(path)
        .map_err(|e| format!("api_bindlisten: {}: {e}", path.display()))
}

/// The helper's published ports, on the embedded switch.
struct Published {
    d: Arc<Daemon>,
    endpoint: String,
    layout: Layout,
}

impl api::Forwards for Published {
    fn add(&mut self, f: &api::HostFwd) -> Result<(), String> {
        self.d
            .port_add(&self.endpoint, &f.spec())
            .map(|_| ())
            .map_err(|e| e.message)
    }

    fn remove(&mut self, f: &api::HostFwd) -> Result<(), String> {
        self.d
            .port_rm(&self.endpoint, &f.spec())
            .map(|_| ())
            .map_err(|e| e.message)
    }

    fn info(&self) -> serde_json::Value {
        let l = &self.layout;
        serde_json::json!({
            "implementation": format!("lanyard {}", env!("CARGO_PKG_VERSION")),
            "slirp4netns": SLIRP4NETNS_VERSION,
            "cidr": l.subnet.to_string(),
            "gateway": l.gateway.to_string(),
            "dns": l.dns.serve.then(|| l.dns.ip.to_string()),
            "dhcp_start": l.dhcp_start.to_string(),
            "guest": l.guest.to_string(),
            "mtu": l.mtu,
            "ipv6": l.ipv6.map(|v| v.subnet.to_string()),
        })
    }
}

fn serve(
    opts: &Options,
    layout: &Layout,
    d: &Arc<Daemon>,
    tap: target::Tap,
    listener: Option<UnixListener>,
    signals: &SigSet,
) -> Result<(), String> {
    let container_id = crate::sys::random_id();
    let endpoint = NETWORK.to_string();
    let req = AttachRequest {
        container_id: container_id.clone(),
        name: Some(endpoint.clone()),
        network: NETWORK.into(),
        ip: Some(layout.guest),
        // The address the guest forms itself from the Router
        // Advertisement (SLAAC, modified EUI-64: the kernel's default),
        // which is where its IPv6 clients and names must point.
        ip6: layout
            .ipv6
            .map(|v| crate::wire::ipv6::addr_from_mac(v.subnet.network(), tap.mac)),
        mtu: Some(layout.mtu),
        allow_host_loopback: Some(!opts.disable_host_loopback),
        publish: Vec::new(),
        aliases: Vec::new(),
        ifname: Some(opts.tapname.clone()),
        pid: match opts.target {
            Target::Pid(p) => Some(p),
            Target::Path(_) => None,
        },
        dns: Vec::new(),
        mac: Some(tap.mac),
        sole_tenant: true,
    };
    d.attach_tap(req, tap.fd)
        .map_err(|e| format!("attaching the tap: {}", e.message))?;
    if let Some(l) = listener {
        let fw = Published {
            d: d.clone(),
            endpoint,
            layout: layout.clone(),
        };
        let guest = layout.guest;
        std::thread::Builder::new()
            .name("lanyard-api".into())
            .spawn(move || serve_api(l, api::Api::new(guest), fw))
            .map_err(|e| format!("starting the API thread: {e}"))?;
    }
    banner(opts, layout);
    if let Some(fd) = opts.ready_fd {
        // SAFETY: the caller gave us this descriptor to write and close
        // (`-r FD`); nothing else in the process uses it.
        let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
        f.write_all(b"1")
            .map_err(|e| format!("writing the ready fd {fd}: {e}"))?;
    }
    // SAFETY: likewise the exit fd (`-e FD`), which is only polled.
    let exit_fd = opts.exit_fd.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) });
    loop {
        if let Some(fd) = &exit_fd {
            let mut p = libc::pollfd {
                fd: fd.as_raw_fd(),
                events: 0,
                revents: 0,
            };
            // SAFETY: one valid pollfd for the call's duration.
            let n = unsafe { libc::poll(&mut p, 1, 250) };
            if n > 0 && p.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
                eprintln!("exitfd event");
                return Ok(());
            }
            if crate::sys::wait_signal(signals, Duration::ZERO).is_some() {
                return Ok(());
            }
        } else if crate::sys::wait_signal(signals, Duration::from_millis(250)).is_some() {
            return Ok(());
        }
        if !d.dataplane_running() {
            return Err("the data path stopped".into());
        }
    }
}

/// What slirp4netns prints at start (its log, which podman shows on a
/// failure), in lanyard's words.
fn banner(opts: &Options, l: &Layout) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "lanyard {} serving as slirp4netns {SLIRP4NETNS_VERSION}",
        env!("CARGO_PKG_VERSION")
    );
    let _ = writeln!(out, "* MTU: {}", l.mtu);
    let _ = writeln!(out, "* Network: {}", l.subnet.network());
    let _ = writeln!(out, "* Netmask: {}", l.subnet.netmask());
    let _ = writeln!(out, "* Gateway: {}", l.gateway);
    if l.dns.serve {
        let _ = writeln!(out, "* DNS: {}", l.dns.ip);
    } else {
        let _ = writeln!(out, "* DNS: off");
    }
    let _ = writeln!(out, "* DHCP begin: {}", l.dhcp_start);
    let _ = writeln!(out, "* Recommended IP: {}", l.guest);
    if let Some(v) = &l.ipv6 {
        let _ = writeln!(out, "* IPv6: {} via {}", v.subnet, v.gateway);
    }
    if let Some(p) = &opts.api_socket {
        let _ = writeln!(out, "* API Socket: {}", p.display());
    }
    let _ = out.flush();
}

/// How long one API client may take to send its request, all of it: the
/// API serves one connection at a time (as slirp4netns does), so this is
/// the longest a client that sends nothing, or trickles, holds it; podman's
/// and rootlesskit's requests come in one write and take microseconds.
const API_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// The API socket: one connection at a time, one request each.
fn serve_api(l: UnixListener, mut api: api::Api, mut fw: Published) {
    for conn in l.incoming() {
        let Ok(mut c) = conn else { continue };
        let (req, full) = read_request(&mut c);
        let (reply, why) = api.handle(&req, full, &mut fw);
        eprintln!(
            "api_handler: got request: {}",
            String::from_utf8_lossy(&req[..req.len().min(512)]).trim_end()
        );
        if let Some(w) = why {
            eprintln!("api_handler: {w}");
        }
        let _ = c.write_all(reply.as_bytes());
        let _ = c.shutdown(std::net::Shutdown::Both);
    }
}

/// Reads one request: until the client half-closes, the bytes read parse
/// as JSON, [`api::MAX_REQUEST`] are read (`full`), the client goes quiet
/// (100 ms after its last bytes), or [`API_READ_TIMEOUT`] has passed since
/// it was accepted, whatever it sends. slirp4netns takes the first read
/// whole; this is as fast for every caller seen, also right when a request
/// arrives in pieces, and bounded when it never ends.
fn read_request(c: &mut UnixStream) -> (Vec<u8>, bool) {
    let mut buf = vec![0u8; api::MAX_REQUEST];
    let mut n = 0;
    let deadline = std::time::Instant::now() + API_READ_TIMEOUT;
    let mut quiet = API_READ_TIMEOUT;
    while n < buf.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            break;
        }
        let _ = c.set_read_timeout(Some(quiet.min(left)));
        match c.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => {
                n += k;
                if n < buf.len() && serde_json::from_slice::<serde_json::Value>(&buf[..n]).is_ok() {
                    break;
                }
                // More may follow; not long.
                quiet = Duration::from_millis(100);
            }
            Err(_) => break,
        }
    }
    let full = n == buf.len();
    buf.truncate(n);
    (buf, full)
}
