//! Configuration: TOML, with every default stated in `configs/default.toml`
//! (embedded in the binary). A user's file may leave out any key; unknown
//! keys and invalid values are errors naming the field and the reason.

use crate::ratelimit::Rate;
use std::collections::HashSet;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::{Ipv4Net, Ipv6Net};
use serde::Deserialize;

use crate::log::Level;

/// The embedded default configuration.
pub const DEFAULT_TOML: &str = include_str!("../configs/default.toml");

pub const MIN_MTU: u32 = 1280;
pub const MAX_MTU: u32 = 65520;

/// A configuration problem: which field, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub field: String,
    pub reason: String,
}

impl ConfigError {
    fn new(field: impl Into<String>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DaemonConfig {
    /// `None`: the per-user default path.
    pub socket: Option<PathBuf>,
    pub log_level: Level,
    /// `[daemon] sandbox`: the switch's self-confinement (`sandbox`).
    pub sandbox: crate::sandbox::Mode,
    /// `[daemon] state_dir`: where `network create`'s networks are kept;
    /// `None`: the per-user default (`control::state::default_dir`).
    pub state_dir: Option<PathBuf>,
    /// `[daemon] metrics`: where the Prometheus text is served; `None`:
    /// nowhere (the default).
    pub metrics: Option<crate::metrics::MetricsAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_ports: usize,
    pub fdb_max_entries: usize,
    pub fdb_max_per_port: u32,
    pub batch_size: usize,
    pub max_control_connections: usize,
    /// Frames one port may have flooded to its network's other ports.
    pub floods: Rate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataplaneSettings {
    /// Shards (threads) of the data path; 0: one per CPU lanyard may run
    /// on, at most [`AUTO_THREADS_MAX`].
    pub threads: usize,
}

/// The most shards `threads = 0` picks.
pub const AUTO_THREADS_MAX: usize = 8;

impl DataplaneSettings {
    /// The number of shards to start.
    pub fn shards(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, AUTO_THREADS_MAX)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatSettings {
    pub max_flows: usize,
    pub max_flows_per_container: u32,
    pub tcp_established_timeout: Duration,
    pub tcp_transitory_timeout: Duration,
    pub udp_timeout: Duration,
    pub udp_stream_timeout: Duration,
    pub icmp_timeout: Duration,
    pub allow_host_loopback: bool,
    /// New flows one container may open.
    pub new_flows: Rate,
    /// New TCP clients one published port takes per second, and its burst.
    pub published_clients: Rate,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpSettings {
    pub lease: Duration,
    pub max_leases: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsSettings {
    /// Empty: the host's resolv.conf.
    pub upstream: Vec<SocketAddr>,
    /// `[dns] resolv_conf`: the host's resolver list, read at start and
    /// again whenever it changes (when `upstream` is empty).
    pub resolv_conf: PathBuf,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    pub name: String,
    pub subnet: Ipv4Net,
    pub gateway: Ipv4Addr,
    pub ip_range: Ipv4Net,
    pub mtu: u32,
    pub txqueuelen: u32,
    pub mac_aging: Duration,
    pub internal: bool,
    /// The IPv6 side of a dual-stack network.
    pub ipv6: Option<Ipv6Settings>,
    /// A second address of the gateway for DNS (slirp4netns's layout: the
    /// gateway is .2 and the DNS .3); `None`: DNS is served at the
    /// gateway's own address, as docker does. Set by the slirp4netns mode,
    /// not in the config file.
    pub dns: Option<DnsAddress>,
    /// Where DHCP's dynamic addresses start (slirp4netns: .15); `None`: the
    /// lowest free address of `ip_range`.
    pub dhcp_start: Option<Ipv4Addr>,
}

/// The gateway's DNS-only address. With `serve` off (slirp4netns's
/// `--disable-dns`) the address stays reserved and answers ARP, and what
/// is sent to it is dropped, so a client times out as with slirp4netns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DnsAddress {
    pub ip: Ipv4Addr,
    pub serve: bool,
}

/// A network's IPv6 subnet and gateway address in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv6Settings {
    pub subnet: Ipv6Net,
    pub gateway: Ipv6Addr,
    /// The gateway's link-local address, when not the one its MAC forms
    /// (slirp4netns's router is fe80::2).
    pub link_local: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub daemon: DaemonConfig,
    pub limits: Limits,
    pub dataplane: DataplaneSettings,
    pub nat: NatSettings,
    pub dns: DnsSettings,
    pub dhcp: DhcpSettings,
    pub networks: Vec<NetworkConfig>,
}

// The raw, as-written form. Defaults here must equal configs/default.toml;
// a test holds them together.

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    daemon: RawDaemon,
    #[serde(default)]
    limits: RawLimits,
    #[serde(default)]
    dataplane: RawDataplane,
    #[serde(default)]
    nat: RawNat,
    #[serde(default)]
    dns: RawDns,
    #[serde(default)]
    dhcp: RawDhcp,
    #[serde(default, rename = "network")]
    networks: Option<Vec<RawNetwork>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDaemon {
    socket: String,
    log_level: String,
    sandbox: RawSandbox,
    state_dir: String,
    metrics: String,
}

/// `sandbox = true | false | "require"`.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum RawSandbox {
    Flag(bool),
    Word(String),
}

impl Default for RawDaemon {
    fn default() -> Self {
        RawDaemon {
            socket: String::new(),
            log_level: "info".into(),
            sandbox: RawSandbox::Flag(true),
            state_dir: String::new(),
            metrics: String::new(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawLimits {
    max_ports: i64,
    fdb_max_entries: i64,
    fdb_max_per_port: i64,
    batch_size: i64,
    max_control_connections: i64,
    floods_per_sec: i64,
    floods_burst: i64,
}

impl Default for RawLimits {
    fn default() -> Self {
        RawLimits {
            max_ports: 1024,
            fdb_max_entries: 8192,
            fdb_max_per_port: 1024,
            batch_size: 64,
            max_control_connections: 1024,
            floods_per_sec: 1000,
            floods_burst: 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDataplane {
    threads: i64,
}

impl Default for RawDataplane {
    fn default() -> Self {
        RawDataplane { threads: 1 }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawNat {
    max_flows: i64,
    max_flows_per_container: i64,
    tcp_established_timeout_secs: i64,
    tcp_transitory_timeout_secs: i64,
    udp_timeout_secs: i64,
    udp_stream_timeout_secs: i64,
    icmp_timeout_secs: i64,
    allow_host_loopback: bool,
    new_flows_per_sec: i64,
    new_flows_burst: i64,
    published_clients_per_sec: i64,
    published_clients_burst: i64,
}

impl Default for RawNat {
    fn default() -> Self {
        RawNat {
            max_flows: 65536,
            max_flows_per_container: 4096,
            tcp_established_timeout_secs: 7440,
            tcp_transitory_timeout_secs: 240,
            udp_timeout_secs: 30,
            udp_stream_timeout_secs: 180,
            icmp_timeout_secs: 30,
            allow_host_loopback: false,
            new_flows_per_sec: 2000,
            new_flows_burst: 4096,
            published_clients_per_sec: 500,
            published_clients_burst: 1000,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDhcp {
    lease_secs: i64,
    max_leases: i64,
}

impl Default for RawDhcp {
    fn default() -> Self {
        RawDhcp {
            lease_secs: 3600,
            max_leases: 4096,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawDns {
    upstream: Vec<String>,
    resolv_conf: String,
}

impl Default for RawDns {
    fn default() -> Self {
        RawDns {
            upstream: Vec::new(),
            resolv_conf: crate::dns::HOST_RESOLV_CONF.into(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    name: Option<String>,
    subnet: Option<String>,
    gateway: Option<String>,
    ip_range: Option<String>,
    #[serde(default = "default_mtu")]
    mtu: i64,
    #[serde(default = "default_txqueuelen")]
    txqueuelen: i64,
    #[serde(default = "default_mac_aging")]
    mac_aging_secs: i64,
    #[serde(default)]
    internal: bool,
    #[serde(default = "default_ipv6")]
    ipv6: bool,
    subnet6: Option<String>,
    gateway6: Option<String>,
}

fn default_ipv6() -> bool {
    true
}

fn default_mtu() -> i64 {
    65520
}
fn default_txqueuelen() -> i64 {
    5000
}
fn default_mac_aging() -> i64 {
    300
}

fn default_network() -> RawNetwork {
    RawNetwork {
        name: Some("default".into()),
        subnet: Some("172.17.0.0/16".into()),
        gateway: None,
        ip_range: None,
        mtu: default_mtu(),
        txqueuelen: default_txqueuelen(),
        mac_aging_secs: default_mac_aging(),
        internal: false,
        ipv6: default_ipv6(),
        subnet6: None,
        gateway6: None,
    }
}

fn in_range(field: &str, v: i64, lo: i64, hi: i64) -> Result<i64, ConfigError> {
    if v < lo || v > hi {
        return Err(ConfigError::new(
            field,
            format!("{v} is out of range (allowed {lo}..={hi})"),
        ));
    }
    Ok(v)
}

/// Docker's rule for network and container names.
/// A per-source budget: `{prefix}_per_sec` in 1..=10,000,000 and
/// `{prefix}_burst` in 1..=10,000,000 (a budget cannot be turned off; a
/// rate above anything a port can send is the same).
fn rate(prefix: &str, per_sec: i64, burst: i64) -> Result<Rate, ConfigError> {
    const MAX: i64 = 10_000_000;
    Ok(Rate::new(
        in_range(&format!("{prefix}_per_sec"), per_sec, 1, MAX)? as u32,
        in_range(&format!("{prefix}_burst"), burst, 1, MAX)? as u32,
    ))
}

pub fn check_name(field: &str, name: &str) -> Result<(), ConfigError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.as_bytes()[0].is_ascii_alphanumeric()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-');
    if !ok {
        return Err(ConfigError::new(
            field,
            format!(
                "'{name}' is not a valid name ([a-zA-Z0-9][a-zA-Z0-9_.-]*, at most 64 characters)"
            ),
        ));
    }
    Ok(())
}

/// Parses an IPv4 network in CIDR form with no host bits set.
pub fn parse_subnet(field: &str, s: &str) -> Result<Ipv4Net, ConfigError> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        ConfigError::new(
            field,
            format!("'{s}' is not an IPv4 network in CIDR form (like 172.17.0.0/16)"),
        )
    })?;
    if net.trunc() != net {
        return Err(ConfigError::new(
            field,
            format!("'{s}' has host bits set (did you mean {}?)", net.trunc()),
        ));
    }
    Ok(net)
}

/// An IPv6 subnet in CIDR form, without host bits, that a network of
/// containers may use: not multicast, link-local or loopback, /120 or
/// shorter (SLAAC clients need a /64; static addresses work on any).
pub fn parse_subnet6(field: &str, s: &str) -> Result<Ipv6Net, ConfigError> {
    let net: Ipv6Net = s.parse().map_err(|_| {
        ConfigError::new(
            field,
            format!("'{s}' is not an IPv6 network in CIDR form (like fd00:172:17::/64)"),
        )
    })?;
    if net.trunc() != net {
        return Err(ConfigError::new(
            field,
            format!("'{s}' has host bits set (did you mean {}?)", net.trunc()),
        ));
    }
    let a = net.network();
    if a.is_multicast()
        || a.is_loopback()
        || a.is_unspecified()
        || a.segments()[0] & 0xffc0 == 0xfe80
    {
        return Err(ConfigError::new(
            field,
            format!("{net} is not a unicast prefix a network may use"),
        ));
    }
    if net.prefix_len() > 120 || net.prefix_len() < 8 {
        return Err(ConfigError::new(
            field,
            format!("{net}: a network needs a prefix between /8 and /120 (/64 for SLAAC)"),
        ));
    }
    Ok(net)
}

/// The IPv6 subnet a network gets when none is given: fd00:A:B:C::/64 for
/// the IPv4 subnet A.B.C.x, the octets written as they read in decimal
/// (172.17.0.0/16 → fd00:172:17::/64), so the pairing is obvious. Two IPv4
/// subnets smaller than /24 may share one; the overlap check then asks
/// for `subnet6`.
pub fn derived_subnet6(v4: Ipv4Net) -> Ipv6Net {
    let o = v4.network().octets();
    let hex = |b: u8| u16::from_str_radix(&b.to_string(), 16).unwrap_or(0);
    let a = Ipv6Addr::new(0xfd00, hex(o[0]), hex(o[1]), hex(o[2]), 0, 0, 0, 0);
    Ipv6Net::new(a, 64).expect("a /64 is valid")
}

fn parse_ipv4(field: &str, s: &str) -> Result<Ipv4Addr, ConfigError> {
    s.parse()
        .map_err(|_| ConfigError::new(field, format!("'{s}' is not an IPv4 address")))
}

/// Checks and completes a network definition; `field` prefixes error names
/// (`network[0]`).
fn network_from_raw(field: &str, raw: RawNetwork) -> Result<NetworkConfig, ConfigError> {
    let name = raw
        .name
        .ok_or_else(|| ConfigError::new(format!("{field}.name"), "is required"))?;
    check_name(&format!("{field}.name"), &name)?;
    let subnet_s = raw
        .subnet
        .ok_or_else(|| ConfigError::new(format!("{field}.subnet"), "is required"))?;
    let subnet = parse_subnet(&format!("{field}.subnet"), &subnet_s)?;
    let ipv6 = ipv6_from_raw(field, raw.ipv6, &raw.subnet6, &raw.gateway6, subnet)?;
    if subnet.prefix_len() > 30 {
        return Err(ConfigError::new(
            format!("{field}.subnet"),
            format!("{subnet} is too small: a network needs a prefix of /30 or shorter"),
        ));
    }
    let gateway = match raw.gateway {
        Some(g) => parse_ipv4(&format!("{field}.gateway"), &g)?,
        None => Ipv4Addr::from(u32::from(subnet.network()) + 1),
    };
    if !subnet.contains(&gateway) {
        return Err(ConfigError::new(
            format!("{field}.gateway"),
            format!("{gateway} is outside the subnet {subnet}"),
        ));
    }
    if gateway == subnet.network() || gateway == subnet.broadcast() {
        return Err(ConfigError::new(
            format!("{field}.gateway"),
            format!("{gateway} is the network or broadcast address of {subnet}"),
        ));
    }
    let ip_range = match raw.ip_range {
        Some(r) => parse_subnet(&format!("{field}.ip_range"), &r)?,
        None => subnet,
    };
    if !subnet.contains(&ip_range) {
        return Err(ConfigError::new(
            format!("{field}.ip_range"),
            format!("{ip_range} is not inside the subnet {subnet}"),
        ));
    }
    let mtu = in_range(
        &format!("{field}.mtu"),
        raw.mtu,
        MIN_MTU as i64,
        MAX_MTU as i64,
    )? as u32;
    let txqueuelen = in_range(&format!("{field}.txqueuelen"), raw.txqueuelen, 1, 1_000_000)? as u32;
    let aging = in_range(
        &format!("{field}.mac_aging_secs"),
        raw.mac_aging_secs,
        1,
        1_000_000,
    )?;
    Ok(NetworkConfig {
        name,
        subnet,
        gateway,
        ip_range,
        mtu,
        txqueuelen,
        mac_aging: Duration::from_secs(aging as u64),
        internal: raw.internal,
        ipv6,
        dns: None,
        dhcp_start: None,
    })
}

fn ipv6_from_raw(
    field: &str,
    enabled: bool,
    subnet6: &Option<String>,
    gateway6: &Option<String>,
    subnet: Ipv4Net,
) -> Result<Option<Ipv6Settings>, ConfigError> {
    if !enabled {
        for (k, v) in [("subnet6", subnet6), ("gateway6", gateway6)] {
            if v.is_some() {
                return Err(ConfigError::new(
                    format!("{field}.{k}"),
                    "is given, but ipv6 is false",
                ));
            }
        }
        return Ok(None);
    }
    let subnet6 = match subnet6 {
        Some(s) => parse_subnet6(&format!("{field}.subnet6"), s)?,
        None => derived_subnet6(subnet),
    };
    let gateway6 = match gateway6 {
        Some(g) => g.parse::<Ipv6Addr>().map_err(|_| {
            ConfigError::new(
                format!("{field}.gateway6"),
                format!("'{g}' is not an IPv6 address"),
            )
        })?,
        None => Ipv6Addr::from(u128::from(subnet6.network()) + 1),
    };
    if !subnet6.contains(&gateway6) || gateway6 == subnet6.network() {
        return Err(ConfigError::new(
            format!("{field}.gateway6"),
            format!("{gateway6} is not a host address of the subnet {subnet6}"),
        ));
    }
    Ok(Some(Ipv6Settings {
        subnet: subnet6,
        gateway: gateway6,
        link_local: None,
    }))
}

/// Two networks' IPv6 subnets overlap.
fn overlaps6(a: &NetworkConfig, b: &NetworkConfig) -> Option<(Ipv6Net, Ipv6Net)> {
    let (x, y) = (a.ipv6?.subnet, b.ipv6?.subnet);
    (x.contains(&y.network()) || y.contains(&x.network())).then_some((x, y))
}

/// What `lanyard network create` is given; `None` takes the default.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkRequest {
    pub name: String,
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub ip_range: Option<String>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub internal: bool,
    /// `--ipv6`: `None` is the default (dual stack).
    #[serde(default)]
    pub ipv6: Option<bool>,
    #[serde(default)]
    pub subnet6: Option<String>,
    #[serde(default)]
    pub gateway6: Option<String>,
}

/// Docker's default address pools: 172.17-31.0.0/16, then the /20 blocks
/// of 192.168.0.0/16.
pub fn default_pools() -> impl Iterator<Item = Ipv4Net> {
    let b16 = (17u8..=31).map(|b| Ipv4Net::new(Ipv4Addr::new(172, b, 0, 0), 16).expect("valid"));
    let c20 =
        (0u8..16).map(|i| Ipv4Net::new(Ipv4Addr::new(192, 168, i * 16, 0), 20).expect("valid"));
    b16.chain(c20)
}

fn overlaps(a: &Ipv4Net, b: &Ipv4Net) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// The name of the network a container joins when none is named.
pub const DEFAULT_NETWORK: &str = "default";

/// The name docker gives its default network. lanyard's is `default`;
/// `bridge` names it too wherever a network is named (unless a network of
/// the config is itself called `bridge`), so that what a docker user types
/// (`--network bridge`, `network inspect bridge`) works unchanged.
pub const DOCKER_DEFAULT_NETWORK: &str = "bridge";

/// Names `network create` refuses, as docker does.
pub const RESERVED_NETWORK_NAMES: [&str; 3] = [DOCKER_DEFAULT_NETWORK, "host", "none"];

/// The network a name given by a user means: `bridge` is the default
/// network when no network is called `bridge` (`exists` says whether one
/// is); any other name is itself.
pub fn resolve_network_name(name: &str, exists: impl Fn(&str) -> bool) -> &str {
    if name == DOCKER_DEFAULT_NETWORK && !exists(name) && exists(DEFAULT_NETWORK) {
        DEFAULT_NETWORK
    } else {
        name
    }
}

impl NetworkRequest {
    /// Checks a network to create against the ones that exist; errors name
    /// the command-line flag.
    pub fn validate(&self, existing: &[NetworkConfig]) -> Result<NetworkConfig, ConfigError> {
        // docker refuses these: `bridge` is what its users call the
        // default network (and lanyard's answers to it), `host` and
        // `none` are `--network` modes, not networks.
        if RESERVED_NETWORK_NAMES.contains(&self.name.as_str()) {
            return Err(ConfigError::new(
                "NAME",
                format!(
                    "'{}' is a pre-defined network name (docker's); choose another",
                    self.name
                ),
            ));
        }
        if existing.iter().any(|n| n.name == self.name) {
            return Err(ConfigError::new(
                "NAME",
                format!("a network named '{}' already exists", self.name),
            ));
        }
        let subnet = match &self.subnet {
            Some(s) => Some(s.clone()),
            None => Some(
                default_pools()
                    .find(|p| !existing.iter().any(|n| overlaps(p, &n.subnet)))
                    .ok_or_else(|| {
                        ConfigError::new(
                            "--subnet",
                            "every default address pool is in use; give one",
                        )
                    })?
                    .to_string(),
            ),
        };
        let raw = RawNetwork {
            name: Some(self.name.clone()),
            subnet,
            gateway: self.gateway.clone(),
            ip_range: self.ip_range.clone(),
            mtu: self.mtu.map_or(default_mtu(), i64::from),
            txqueuelen: default_txqueuelen(),
            mac_aging_secs: default_mac_aging(),
            internal: self.internal,
            ipv6: self.ipv6.unwrap_or(true),
            subnet6: self.subnet6.clone(),
            gateway6: self.gateway6.clone(),
        };
        let n = network_from_raw("create", raw).map_err(|e| ConfigError {
            field: match e.field.trim_start_matches("create.") {
                "name" => "NAME".to_string(),
                f => format!("--{}", f.replace('_', "-")),
            },
            // "given, but ipv6 is false", in the flags' words.
            reason: e.reason.replace("ipv6 is false", "--ipv6=false"),
        })?;
        if let Some(o) = existing.iter().find(|o| overlaps(&o.subnet, &n.subnet)) {
            return Err(ConfigError::new(
                "--subnet",
                format!("{} overlaps {} of network '{}'", n.subnet, o.subnet, o.name),
            ));
        }
        if let Some((o, (mine, theirs))) = existing
            .iter()
            .find_map(|o| overlaps6(&n, o).map(|p| (o, p)))
        {
            return Err(ConfigError::new(
                if self.subnet6.is_some() {
                    "--subnet6"
                } else {
                    "--ipv6"
                },
                format!(
                    "{mine} overlaps {theirs} of network '{}'{}",
                    o.name,
                    if self.subnet6.is_some() {
                        ""
                    } else {
                        " (give --subnet6)"
                    }
                ),
            ));
        }
        Ok(n)
    }
}

/// A resolver address: "IP" (port 53) or "IP:PORT".
pub fn parse_upstream(field: &str, s: &str) -> Result<SocketAddr, ConfigError> {
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    Err(ConfigError::new(
        field,
        format!("'{s}' is not an address (IP or IP:PORT)"),
    ))
}

/// Open files a lanyard keeps beyond one per port and one per control
/// connection: its epoll and event fds, the control and metrics listeners,
/// the DNS forwarder's upstream sockets, published ports' listeners, the
/// state file. What the open-file limit leaves past these and the ports'
/// and connections' is what the NAT's flows may hold.
pub const RESERVED_FDS: u64 = 320;

impl Config {
    /// The embedded defaults.
    pub fn embedded() -> Config {
        Config::parse(DEFAULT_TOML).expect("the embedded default config is valid")
    }

    /// Fits the NAT's flow bound to the open-file limit `fds`. Every NAT
    /// flow holds a host socket: a bound above what the limit leaves would
    /// let containers' flows take the descriptors that attaching a
    /// container, a control connection or a published port's client needs
    /// (each then fails with EMFILE), so the table is made no larger than
    /// what is left after the ports, the control connections and
    /// [`RESERVED_FDS`]. Returns the warning to log when it lowered
    /// `nat.max_flows` (and `nat.max_flows_per_container` with it).
    pub fn fit_open_files(&mut self, fds: u64) -> Option<String> {
        let kept =
            (self.limits.max_ports + self.limits.max_control_connections) as u64 + RESERVED_FDS;
        // At least a few flows, so that a limit too low for everything
        // still has a working (if small) NAT; the daemon warns about the
        // limit itself when it is below the ports' and connections' share.
        let budget = fds.saturating_sub(kept).max(64) as usize;
        let n = &mut self.nat;
        if n.max_flows <= budget {
            return None;
        }
        let was = n.max_flows;
        n.max_flows = budget;
        n.max_flows_per_container = n.max_flows_per_container.min(budget as u32);
        Some(format!(
            "nat.max_flows {was} is more than the open-file limit {fds} leaves for NAT flows \
             (each holds a socket; {kept} are kept for limits.max_ports, \
             limits.max_control_connections and the daemon's own): using {budget} \
             (raise the limit, ulimit -n, to keep {was})"
        ))
    }

    /// Reads and checks a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::new(path.display().to_string(), format!("cannot read: {e}"))
        })?;
        Config::parse(&text).map_err(|e| ConfigError {
            field: format!("{}: {}", path.display(), e.field),
            reason: e.reason,
        })
    }

    /// Parses and checks config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let msg = e.message().to_string();
            let at = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "config".into());
            ConfigError::new(at, msg)
        })?;
        let log_level = Level::parse(&raw.daemon.log_level).ok_or_else(|| {
            ConfigError::new(
                "daemon.log_level",
                format!(
                    "'{}' is not one of error, warn, info, debug",
                    raw.daemon.log_level
                ),
            )
        })?;
        let metrics = if raw.daemon.metrics.is_empty() {
            None
        } else {
            Some(
                raw.daemon
                    .metrics
                    .parse()
                    .map_err(|e| ConfigError::new("daemon.metrics", e))?,
            )
        };
        let sandbox = match &raw.daemon.sandbox {
            RawSandbox::Flag(true) => crate::sandbox::Mode::On,
            RawSandbox::Flag(false) => crate::sandbox::Mode::Off,
            RawSandbox::Word(w) if w == "require" => crate::sandbox::Mode::Require,
            RawSandbox::Word(w) => {
                return Err(ConfigError::new(
                    "daemon.sandbox",
                    format!("'{w}' is not one of true, false, \"require\""),
                ))
            }
        };
        let socket = if raw.daemon.socket.is_empty() {
            None
        } else {
            Some(PathBuf::from(&raw.daemon.socket))
        };
        let l = raw.limits;
        let fdb_max_entries = in_range("limits.fdb_max_entries", l.fdb_max_entries, 1, 1_000_000)?;
        let limits = Limits {
            max_ports: in_range("limits.max_ports", l.max_ports, 1, 65_535)? as usize,
            fdb_max_entries: fdb_max_entries as usize,
            fdb_max_per_port: in_range(
                "limits.fdb_max_per_port",
                l.fdb_max_per_port,
                1,
                fdb_max_entries,
            )? as u32,
            batch_size: in_range("limits.batch_size", l.batch_size, 1, 1024)? as usize,
            max_control_connections: in_range(
                "limits.max_control_connections",
                l.max_control_connections,
                1,
                65_536,
            )? as usize,
            floods: rate("limits.floods", l.floods_per_sec, l.floods_burst)?,
        };
        let dataplane = DataplaneSettings {
            threads: in_range(
                "dataplane.threads",
                raw.dataplane.threads,
                0,
                crate::dataplane::MAX_SHARDS as i64,
            )? as usize,
        };
        let n = raw.nat;
        let secs = |field: &str, v: i64| -> Result<Duration, ConfigError> {
            Ok(Duration::from_secs(
                in_range(&format!("nat.{field}"), v, 1, 30 * 86_400)? as u64,
            ))
        };
        let max_flows = in_range("nat.max_flows", n.max_flows, 1, 1 << 20)?;
        let nat = NatSettings {
            max_flows: max_flows as usize,
            max_flows_per_container: in_range(
                "nat.max_flows_per_container",
                n.max_flows_per_container,
                1,
                max_flows,
            )? as u32,
            tcp_established_timeout: secs(
                "tcp_established_timeout_secs",
                n.tcp_established_timeout_secs,
            )?,
            tcp_transitory_timeout: secs(
                "tcp_transitory_timeout_secs",
                n.tcp_transitory_timeout_secs,
            )?,
            udp_timeout: secs("udp_timeout_secs", n.udp_timeout_secs)?,
            udp_stream_timeout: secs("udp_stream_timeout_secs", n.udp_stream_timeout_secs)?,
            icmp_timeout: secs("icmp_timeout_secs", n.icmp_timeout_secs)?,
            allow_host_loopback: n.allow_host_loopback,
            new_flows: rate("nat.new_flows", n.new_flows_per_sec, n.new_flows_burst)?,
            published_clients: rate(
                "nat.published_clients",
                n.published_clients_per_sec,
                n.published_clients_burst,
            )?,
        };
        let mut upstream = Vec::new();
        for (i, u) in raw.dns.upstream.iter().enumerate() {
            upstream.push(parse_upstream(&format!("dns.upstream[{i}]"), u)?);
        }
        if !raw.dns.resolv_conf.starts_with('/') {
            return Err(ConfigError::new(
                "dns.resolv_conf",
                format!("'{}' is not an absolute path", raw.dns.resolv_conf),
            ));
        }
        let dns = DnsSettings {
            upstream,
            resolv_conf: PathBuf::from(&raw.dns.resolv_conf),
        };
        let dhcp = DhcpSettings {
            lease: Duration::from_secs(in_range(
                "dhcp.lease_secs",
                raw.dhcp.lease_secs,
                60,
                30 * 86_400,
            )? as u64),
            max_leases: in_range("dhcp.max_leases", raw.dhcp.max_leases, 1, 1 << 20)? as usize,
        };
        let raw_nets = raw.networks.unwrap_or_else(|| vec![default_network()]);
        let mut networks: Vec<NetworkConfig> = Vec::new();
        let mut names = HashSet::new();
        for (i, rn) in raw_nets.into_iter().enumerate() {
            let field = format!("network[{i}]");
            let n = network_from_raw(&field, rn)?;
            if !names.insert(n.name.clone()) {
                return Err(ConfigError::new(
                    format!("{field}.name"),
                    format!("'{}' is defined twice", n.name),
                ));
            }
            if let Some(o) = networks.iter().find(|o| {
                o.subnet.contains(&n.subnet.network()) || n.subnet.contains(&o.subnet.network())
            }) {
                return Err(ConfigError::new(
                    format!("{field}.subnet"),
                    format!("{} overlaps {} of network '{}'", n.subnet, o.subnet, o.name),
                ));
            }
            if let Some((o, (mine, theirs))) = networks
                .iter()
                .find_map(|o| overlaps6(&n, o).map(|p| (o, p)))
            {
                return Err(ConfigError::new(
                    format!("{field}.subnet6"),
                    format!("{mine} overlaps {theirs} of network '{}'", o.name),
                ));
            }
            networks.push(n);
        }
        Ok(Config {
            daemon: DaemonConfig {
                socket,
                log_level,
                sandbox,
                state_dir: (!raw.daemon.state_dir.is_empty())
                    .then(|| PathBuf::from(&raw.daemon.state_dir)),
                metrics,
            },
            limits,
            dataplane,
            nat,
            dns,
            dhcp,
            networks,
        })
    }

    pub fn network(&self, name: &str) -> Option<&NetworkConfig> {
        self.networks.iter().find(|n| n.name == name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_states_exactly_the_built_in_defaults() {
        // A config that sets nothing must equal the embedded file: every
        // default in code is written in configs/default.toml and vice versa.
        let empty = Config::parse("").unwrap();
        assert_eq!(empty, Config::embedded());
        let minimal =
            Config::parse("[[network]]\nname = \"default\"\nsubnet = \"172.17.0.0/16\"\n").unwrap();
        assert_eq!(minimal, Config::embedded());
    }

    #[test]
    fn embedded_defaults_are_dockers() {
        let c = Config::embedded();
        let n = c.network("default").unwrap();
        assert_eq!(n.subnet.to_string(), "172.17.0.0/16");
        assert_eq!(n.gateway, Ipv4Addr::new(172, 17, 0, 1));
        assert_eq!(n.mtu, 65520);
        assert_eq!(n.mac_aging, Duration::from_secs(300));
    }

    fn err(text: &str) -> ConfigError {
        Config::parse(text).unwrap_err()
    }

    #[test]
    fn errors_name_the_field() {
        let e = err("[limits]\nmax_portz = 3\n");
        assert!(e.reason.contains("unknown field `max_portz`"), "{e}");
        assert_eq!(e.field, "line 2");

        let e = err("[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/8\"\ngateway = \"11.0.0.1\"\n");
        assert_eq!(e.field, "network[0].gateway");
        assert!(e.reason.contains("outside the subnet"), "{e}");

        let e = err("[[network]]\nname = \"a\"\nsubnet = \"10.0.0.1/8\"\n");
        assert_eq!(e.field, "network[0].subnet");
        assert!(e.reason.contains("host bits"), "{e}");

        let e = err("[[network]]\nname = \"a\"\nsubnet = \"banana\"\n");
        assert_eq!(e.field, "network[0].subnet");

        let e = err(
            "[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/8\"\n[[network]]\nname = \"b\"\nsubnet = \"10.1.0.0/16\"\n",
        );
        assert_eq!(e.field, "network[1].subnet");
        assert!(e.reason.contains("overlaps"), "{e}");

        let e = err("[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/8\"\nmtu = 100\n");
        assert_eq!(e.field, "network[0].mtu");

        let e = err(
            "[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/24\"\nip_range = \"10.0.1.0/28\"\n",
        );
        assert_eq!(e.field, "network[0].ip_range");

        let e =
            err("[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/24\"\ngateway = \"10.0.0.255\"\n");
        assert_eq!(e.field, "network[0].gateway");

        let e = err("[[network]]\nname = \"-bad\"\nsubnet = \"10.0.0.0/24\"\n");
        assert_eq!(e.field, "network[0].name");

        let e = err("[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/24\"\n[[network]]\nname = \"a\"\nsubnet = \"10.1.0.0/24\"\n");
        assert_eq!(e.field, "network[1].name");

        let e = err("[daemon]\nlog_level = \"loud\"\n");
        assert_eq!(e.field, "daemon.log_level");
        let e = err("[daemon]\nmetrics = \"0.0.0.0:9184\"\n");
        assert_eq!(e.field, "daemon.metrics");
        assert!(e.reason.contains("not a loopback address"), "{e}");
        let e = err("[daemon]\nsandbox = \"maybe\"\n");
        assert_eq!(e.field, "daemon.sandbox");
        assert!(e.reason.contains("require"), "{e}");

        let e = err("[limits]\nfdb_max_entries = 0\n");
        assert_eq!(e.field, "limits.fdb_max_entries");

        let e = err("[dns]\nupstream = [\"nonsense\"]\n");
        assert_eq!(e.field, "dns.upstream[0]");
        let e = err("[nat]\nmax_flows_per_container = 0\n");
        assert_eq!(e.field, "nat.max_flows_per_container");

        let e = err("[limits]\nbatch_size = \"many\"\n");
        assert!(e.reason.contains("invalid type"), "{e}");
    }

    #[test]
    fn per_source_budgets_are_read_and_checked() {
        let c = Config::embedded();
        assert_eq!(c.nat.new_flows, Rate::new(2000, 4096));
        assert_eq!(c.limits.floods, Rate::new(1000, 1000));
        let c = Config::parse(
            "[nat]\nnew_flows_per_sec = 50\nnew_flows_burst = 10\n[limits]\nfloods_per_sec = 7\nfloods_burst = 3\n",
        )
        .unwrap();
        assert_eq!(c.nat.new_flows, Rate::new(50, 10));
        assert_eq!(c.limits.floods, Rate::new(7, 3));
        // A budget cannot be switched off (0) or be negative.
        for (text, field) in [
            ("[nat]\nnew_flows_per_sec = 0\n", "nat.new_flows_per_sec"),
            ("[nat]\nnew_flows_burst = -1\n", "nat.new_flows_burst"),
            ("[limits]\nfloods_per_sec = 0\n", "limits.floods_per_sec"),
            ("[limits]\nfloods_burst = 20000000\n", "limits.floods_burst"),
        ] {
            let e = err(text);
            assert_eq!(e.field, field, "{text}");
            assert!(e.reason.contains("out of range"), "{e}");
        }
    }

    #[test]
    fn network_requests_take_the_next_free_pool_and_name_their_flags() {
        let existing = Config::embedded().networks;
        let req = |name: &str| NetworkRequest {
            name: name.into(),
            ..Default::default()
        };
        let n = req("a").validate(&existing).unwrap();
        assert_eq!(n.subnet.to_string(), "172.18.0.0/16");
        assert_eq!(n.gateway, Ipv4Addr::new(172, 18, 0, 1));
        let mut all = existing.clone();
        all.push(n);
        assert_eq!(
            req("b").validate(&all).unwrap().subnet.to_string(),
            "172.19.0.0/16"
        );
        let e = req("default").validate(&all).unwrap_err();
        assert_eq!(e.field, "NAME");
        let e = NetworkRequest {
            name: "c".into(),
            subnet: Some("172.17.5.0/24".into()),
            ..Default::default()
        }
        .validate(&all)
        .unwrap_err();
        assert_eq!(e.field, "--subnet");
        assert!(e.reason.contains("overlaps"), "{e}");
        let e = NetworkRequest {
            name: "c".into(),
            subnet: Some("10.9.0.0/24".into()),
            gateway: Some("10.9.1.1".into()),
            ..Default::default()
        }
        .validate(&all)
        .unwrap_err();
        assert_eq!(e.field, "--gateway");
        let e = NetworkRequest {
            name: "c".into(),
            subnet: Some("10.9.0.0/24".into()),
            ip_range: Some("10.9.1.0/28".into()),
            ..Default::default()
        }
        .validate(&all)
        .unwrap_err();
        assert_eq!(e.field, "--ip-range");
        let e = NetworkRequest {
            name: "-x".into(),
            ..Default::default()
        }
        .validate(&all)
        .unwrap_err();
        assert_eq!(e.field, "NAME");
        // When every pool is taken, the error says to give a subnet.
        let mut full = all.clone();
        for (i, p) in default_pools().enumerate() {
            let mut n = full[0].clone();
            n.name = format!("p{i}");
            n.subnet = p;
            full.push(n);
        }
        assert_eq!(req("z").validate(&full).unwrap_err().field, "--subnet");
    }

    #[test]
    fn gateway_defaults_to_first_host() {
        let c = Config::parse("[[network]]\nname = \"n\"\nsubnet = \"10.88.0.0/16\"\n").unwrap();
        assert_eq!(c.networks[0].gateway, Ipv4Addr::new(10, 88, 0, 1));
        assert_eq!(c.networks[0].ip_range, c.networks[0].subnet);
    }

    #[test]
    fn the_flow_bound_fits_the_open_file_limit() {
        let mut c = Config::embedded();
        // The defaults: 1024 ports, 1024 connections, 65,536 flows.
        assert_eq!(
            c.fit_open_files(1 << 20),
            None,
            "a high limit changes nothing"
        );
        assert_eq!(c.nat.max_flows, 65536);
        let w = c.fit_open_files(20000).expect("a warning");
        let budget = 20000 - 2048 - RESERVED_FDS as usize;
        assert_eq!(c.nat.max_flows, budget);
        assert_eq!(
            c.nat.max_flows_per_container, 4096,
            "below the budget: kept"
        );
        assert!(
            w.contains("nat.max_flows 65536") && w.contains(&format!("using {budget}")),
            "{w}"
        );
        // A limit below the kept share: a small NAT still, never 0.
        let mut c = Config::embedded();
        c.fit_open_files(1024).expect("a warning");
        assert_eq!((c.nat.max_flows, c.nat.max_flows_per_container), (64, 64));
        // Already within it: untouched.
        assert_eq!(c.fit_open_files(1024), None);
    }
}
