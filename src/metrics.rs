//! `lanyard daemon --metrics ADDR`: every counter of `lanyard stats` in the
//! Prometheus text exposition format (version 0.0.4), served over HTTP on
//! a loopback address or a Unix socket.
//!
//! Theory of operation. A scrape is a control-plane read: the same
//! snapshot `lanyard stats` takes (the data-path threads copy their
//! counters, nothing on the frame path changes), rendered here, written to
//! the scraper, the connection closed. One thread serves, one scrape at a
//! time, each bounded in size (a request line and headers of at most
//! [`MAX_REQUEST`] bytes) and in time ([`IO_TIMEOUT`] per read and write),
//! so a client that trickles or never reads costs one connection's wait,
//! never the switch.
//!
//! Names follow Prometheus's conventions: a `lanyard_` prefix, the
//! subsystem (`port`, `nat`, `dns`, `dhcp`, `gateway`, `fdb`, `published`),
//! counters ending in `_total`, bytes in `_bytes`; the labels say which
//! port (`port`, `name`, `kind`, `network`), network, drop `reason` or
//! published port. Every drop reason of every port is exported, zero
//! included, so a rate over a reason that starts counting has a series
//! from the start. The help text of a counter is its field's doc comment.
//! Who may read: anyone who can connect; hence loopback or a Unix socket
//! (made 0600) only, never another address (docs/SECURITY.md).

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::time::Duration;

use crate::control::dhcp::DhcpCounters;
use crate::control::PublishedPort;
use crate::dataplane::Snapshot;
use crate::stats::{doc_text, Counters, DropReason};

/// The longest request (line and headers) read before answering.
pub const MAX_REQUEST: usize = 8 * 1024;
/// How long a read or a write to a scraper may wait.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Where metrics are served: `--metrics` / `[daemon] metrics`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetricsAddr {
    /// A loopback TCP address (127.0.0.0/8 or ::1).
    Tcp(SocketAddr),
    /// A Unix socket path (`unix:PATH`, or any value with a `/`).
    Unix(PathBuf),
}

impl std::str::FromStr for MetricsAddr {
    type Err = String;

    fn from_str(s: &str) -> Result<MetricsAddr, String> {
        if let Some(p) = s.strip_prefix("unix:") {
            if p.is_empty() {
                return Err("unix: needs a path".into());
            }
            return Ok(MetricsAddr::Unix(PathBuf::from(p)));
        }
        if let Ok(a) = s.parse::<SocketAddr>() {
            if !a.ip().is_loopback() {
                return Err(format!(
                    "{a} is not a loopback address: metrics name every container, so they are served on 127.0.0.0/8, [::1] or a Unix socket only"
                ));
            }
            return Ok(MetricsAddr::Tcp(a));
        }
        if s.contains('/') {
            return Ok(MetricsAddr::Unix(PathBuf::from(s)));
        }
        Err(format!(
            "'{s}' is not HOST:PORT on loopback (127.0.0.1:9184, [::1]:9184) or a Unix socket path (unix:PATH)"
        ))
    }
}

impl std::fmt::Display for MetricsAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MetricsAddr::Tcp(a) => write!(f, "http://{a}/metrics"),
            MetricsAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// A bound metrics listener (bound before the sandbox, served after).
pub enum MetricsListener {
    Tcp(std::net::TcpListener),
    Unix(UnixListener, PathBuf),
}

impl MetricsListener {
    /// Binds `addr`; a Unix socket is made 0600 (only its user scrapes).
    pub fn bind(addr: &MetricsAddr) -> io::Result<MetricsListener> {
        match addr {
            MetricsAddr::Tcp(a) => Ok(MetricsListener::Tcp(std::net::TcpListener::bind(a)?)),
            MetricsAddr::Unix(p) => {
                use std::os::unix::fs::PermissionsExt;
                let l = UnixListener::bind(p)?;
                std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))?;
                Ok(MetricsListener::Unix(l, p.clone()))
            }
        }
    }

    /// The TCP address actually bound (port 0 picks one), for tests.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        match self {
            MetricsListener::Tcp(l) => l.local_addr().ok(),
            MetricsListener::Unix(..) => None,
        }
    }

    /// Serves scrapes until the process ends, one at a time; `render`
    /// makes the body of each.
    pub fn serve(self, render: impl Fn() -> Result<String, String>) {
        loop {
            let conn: io::Result<Box<dyn Conn>> = match &self {
                MetricsListener::Tcp(l) => l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>),
                MetricsListener::Unix(l, _) => {
                    l.accept().map(|(s, _)| Box::new(s) as Box<dyn Conn>)
                }
            };
            match conn {
                Ok(mut c) => {
                    if c.timeouts(IO_TIMEOUT).is_ok() {
                        let _ = answer(&mut *c, &render);
                    }
                }
                Err(e) => {
                    crate::log::warn!("metrics accept: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

impl Drop for MetricsListener {
    fn drop(&mut self) {
        if let MetricsListener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// A scraper's connection, TCP or Unix.
trait Conn: Read + Write {
    fn timeouts(&self, t: Duration) -> io::Result<()>;
}

impl Conn for std::net::TcpStream {
    fn timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

impl Conn for std::os::unix::net::UnixStream {
    fn timeouts(&self, t: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(t))?;
        self.set_write_timeout(Some(t))
    }
}

/// Reads one HTTP request (up to the end of its headers, at most
/// [`MAX_REQUEST`] bytes) and writes [`respond_to`]'s answer.
fn answer(c: &mut dyn Conn, render: &dyn Fn() -> Result<String, String>) -> io::Result<()> {
    let mut buf = [0u8; MAX_REQUEST];
    let mut n = 0;
    while n < buf.len() && !head_complete(&buf[..n]) {
        let got = c.read(&mut buf[n..])?;
        if got == 0 {
            break;
        }
        n += got;
    }
    let out = respond_to(
        &buf[..n],
        n == buf.len() && !head_complete(&buf[..n]),
        render,
    );
    c.write_all(&out)?;
    c.flush()
}

/// Whether `b` holds a whole request head (a blank line ends it).
fn head_complete(b: &[u8]) -> bool {
    b.windows(4).any(|w| w == b"\r\n\r\n") || b.windows(2).any(|w| w == b"\n\n")
}

/// The whole response to a request head (the bytes a client sent, cut at
/// `MAX_REQUEST`; `too_long` when it went on): `GET /metrics` (or `/`) the
/// text from `render`, `HEAD` its headers, another path 404, another
/// method 405, anything that is not an HTTP request line or too long 400.
/// Pure: the fuzz target `metrics_request` drives it with any bytes.
pub fn respond_to(
    request: &[u8],
    too_long: bool,
    render: &dyn Fn() -> Result<String, String>,
) -> Vec<u8> {
    if too_long {
        return response("400 Bad Request", "text/plain", "request too long\n", true);
    }
    let head = String::from_utf8_lossy(request);
    let mut words = head.lines().next().unwrap_or("").split_whitespace();
    let (method, path, version) = (words.next(), words.next(), words.next());
    if !version.is_some_and(|v| v.starts_with("HTTP/")) {
        return response(
            "400 Bad Request",
            "text/plain",
            "not an HTTP request\n",
            true,
        );
    }
    let path = path.unwrap_or("").split('?').next().unwrap_or("");
    let with_body = match method {
        Some("GET") => true,
        Some("HEAD") => false,
        _ => {
            return response(
                "405 Method Not Allowed",
                "text/plain",
                "GET /metrics\n",
                true,
            )
        }
    };
    if path != "/metrics" && path != "/" {
        return response("404 Not Found", "text/plain", "GET /metrics\n", with_body);
    }
    match render() {
        Ok(body) => response(
            "200 OK",
            "text/plain; version=0.0.4; charset=utf-8",
            &body,
            with_body,
        ),
        Err(e) => response(
            "503 Service Unavailable",
            "text/plain",
            &format!("{e}\n"),
            with_body,
        ),
    }
}

fn response(status: &str, ctype: &str, body: &str, with_body: bool) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    if with_body {
        out.extend_from_slice(body.as_bytes());
    }
    out
}

/// What one scrape reports: the switch's snapshot, the DHCP server's
/// counters, the published ports and the thread count.
pub struct Scrape<'a> {
    pub snapshot: &'a Snapshot,
    pub dhcp: &'a DhcpCounters,
    pub published: &'a [PublishedPort],
    pub threads: usize,
}

/// Escapes a label value (backslash, double quote, line feed).
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Help text on one line, escaped as the format wants (backslash, line
/// feed).
fn help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', " ")
}

/// Writes a family's HELP and TYPE lines.
fn family(out: &mut String, name: &str, kind: &str, text: &str) {
    let _ = writeln!(out, "# HELP {name} {}", help(text));
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The counters of a `counters!` struct, one family each, with `labels`
/// on each instance's sample (`` or `{network="x"}`).
fn counter_families<C: Counters>(
    out: &mut String,
    subsystem: &str,
    what: &str,
    samples: &[(String, &C)],
) {
    let Some((_, first)) = samples.first() else {
        return;
    };
    let mut fields: Vec<(&'static str, String)> = Vec::new();
    first.each(|name, _, attrs| {
        let doc = doc_text(attrs);
        fields.push((
            name,
            format!("{what}: {}", if doc.is_empty() { name } else { &doc }),
        ));
    });
    // Each instance's values once, in the fields' order.
    let values: Vec<(&String, Vec<u64>)> = samples
        .iter()
        .map(|(labels, c)| {
            let mut v = Vec::with_capacity(fields.len());
            c.each(|_, x, _| v.push(x));
            (labels, v)
        })
        .collect();
    for (i, (field, text)) in fields.iter().enumerate() {
        let name = format!("lanyard_{subsystem}_{field}_total");
        family(out, &name, "counter", text);
        for (labels, v) in &values {
            let _ = writeln!(out, "{name}{labels} {}", v[i]);
        }
    }
}

/// The Prometheus text of one scrape.
pub fn render(s: &Scrape<'_>) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let snap = s.snapshot;
    family(
        &mut out,
        "lanyard_dataplane_threads",
        "gauge",
        "Data-path threads (shards) of the switch.",
    );
    let _ = writeln!(out, "lanyard_dataplane_threads {}", s.threads);
    family(
        &mut out,
        "lanyard_ports",
        "gauge",
        "Ports on the switch (container endpoints, attached interfaces, uplinks).",
    );
    let _ = writeln!(out, "lanyard_ports {}", snap.ports.len());

    // Per port.
    let port_labels = |p: &crate::dataplane::PortReport| {
        format!(
            "port=\"{}\",name=\"{}\",kind=\"{}\",network=\"{}\"",
            p.id,
            label(&p.name),
            p.kind.name(),
            label(&p.network)
        )
    };
    for (name, text, get) in [
        (
            "lanyard_port_received_packets_total",
            "Frames the switch read from the port (a GSO super-frame counts once).",
            (|c| c.rx_packets) as fn(&crate::stats::PortCountersReport) -> u64,
        ),
        (
            "lanyard_port_received_bytes_total",
            "Bytes of the frames read from the port.",
            |c| c.rx_bytes,
        ),
        (
            "lanyard_port_sent_packets_total",
            "Frames the switch wrote to the port.",
            |c| c.tx_packets,
        ),
        (
            "lanyard_port_sent_bytes_total",
            "Bytes of the frames written to the port.",
            |c| c.tx_bytes,
        ),
    ] {
        family(&mut out, name, "counter", text);
        for p in &snap.ports {
            let _ = writeln!(out, "{name}{{{}}} {}", port_labels(p), get(&p.counters));
        }
    }
    family(
        &mut out,
        "lanyard_port_dropped_frames_total",
        "counter",
        "Frames dropped, by port and reason (each drop has one reason; `lanyard stats` and docs/SECURITY.md name them). Egress failures count on the egress port.",
    );
    for p in &snap.ports {
        let l = port_labels(p);
        for r in DropReason::ALL {
            let n = p.counters.drops.get(r.name()).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "lanyard_port_dropped_frames_total{{{l},reason=\"{}\"}} {n}",
                r.name()
            );
        }
    }
    family(
        &mut out,
        "lanyard_port_dead",
        "gauge",
        "1 while a port failed (its device went away) and awaits removal.",
    );
    for p in &snap.ports {
        let _ = writeln!(
            out,
            "lanyard_port_dead{{{}}} {}",
            port_labels(p),
            u8::from(p.dead)
        );
    }

    // Per network.
    let nets: Vec<(String, &crate::gateway::GatewayCounters)> = snap
        .networks
        .iter()
        .map(|n| (format!("{{network=\"{}\"}}", label(&n.name)), &n.gateway))
        .collect();
    counter_families(&mut out, "gateway", "Gateway", &nets);
    let fdbs: Vec<(String, &crate::bridge::FdbCounters)> = snap
        .networks
        .iter()
        .map(|n| {
            (
                format!("{{network=\"{}\"}}", label(&n.name)),
                &n.fdb_counters,
            )
        })
        .collect();
    counter_families(&mut out, "fdb", "MAC table", &fdbs);
    family(
        &mut out,
        "lanyard_fdb_entries",
        "gauge",
        "MAC table entries of a network (learned and static).",
    );
    for n in &snap.networks {
        let _ = writeln!(
            out,
            "lanyard_fdb_entries{{network=\"{}\"}} {}",
            label(&n.name),
            n.fdb.len()
        );
    }
    family(
        &mut out,
        "lanyard_fdb_max_entries",
        "gauge",
        "The bound of a network's MAC table ([limits] fdb_max_entries).",
    );
    for n in &snap.networks {
        let _ = writeln!(
            out,
            "lanyard_fdb_max_entries{{network=\"{}\"}} {}",
            label(&n.name),
            n.fdb_max_entries
        );
    }

    // The switch's services.
    family(
        &mut out,
        "lanyard_nat_flows",
        "gauge",
        "NAT flows in the conntrack table now (`lanyard conntrack`).",
    );
    let _ = writeln!(out, "lanyard_nat_flows {}", snap.nat_flows);
    counter_families(&mut out, "nat", "NAT", &[(String::new(), &snap.nat)]);
    counter_families(
        &mut out,
        "dns",
        "Embedded DNS",
        &[(String::new(), &snap.dns)],
    );
    counter_families(&mut out, "dhcp", "DHCP server", &[(String::new(), s.dhcp)]);
    family(
        &mut out,
        "lanyard_fdb_sync_dropped_total",
        "counter",
        "Learned MACs one data-path thread could not tell the others (their queue was full).",
    );
    let _ = writeln!(
        out,
        "lanyard_fdb_sync_dropped_total {}",
        snap.fdb_sync_dropped
    );
    family(
        &mut out,
        "lanyard_udp_coalesced_total",
        "counter",
        "Container-to-container UDP datagrams written inside another's super-frame (a write each saved).",
    );
    let _ = writeln!(out, "lanyard_udp_coalesced_total {}", snap.udp_coalesced);

    // Published ports.
    let pub_labels = |p: &PublishedPort| {
        format!(
            "container=\"{}\",proto=\"{}\",host=\"{}\",container_port=\"{}\"",
            label(&p.container),
            p.proto,
            p.host,
            p.container_port
        )
    };
    for (name, text, get) in [
        (
            "lanyard_published_accepted_total",
            "Clients (TCP connections, UDP peers) a published port let in.",
            (|p| p.accepted) as fn(&PublishedPort) -> u64,
        ),
        (
            "lanyard_published_refused_total",
            "Clients a published port turned away (its bound of clients, [nat] published_clients).",
            |p| p.refused,
        ),
    ] {
        family(&mut out, name, "counter", text);
        for p in s.published {
            let _ = writeln!(out, "{name}{{{}}} {}", pub_labels(p), get(p));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_loopback_or_unix_only() {
        assert_eq!(
            "127.0.0.1:9184".parse::<MetricsAddr>().unwrap(),
            MetricsAddr::Tcp("127.0.0.1:9184".parse().unwrap())
        );
        assert!(matches!(
            "[::1]:9184".parse::<MetricsAddr>(),
            Ok(MetricsAddr::Tcp(_))
        ));
        assert_eq!(
            "unix:/run/x.sock".parse::<MetricsAddr>().unwrap(),
            MetricsAddr::Unix("/run/x.sock".into())
        );
        assert_eq!(
            "/run/x.sock".parse::<MetricsAddr>().unwrap(),
            MetricsAddr::Unix("/run/x.sock".into())
        );
        for bad in [
            "0.0.0.0:9184",
            "[::]:9184",
            "10.0.0.1:80",
            "localhost",
            "unix:",
            "9184",
        ] {
            assert!(bad.parse::<MetricsAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_by_method_path_and_length() {
        let ok = || Ok::<_, String>("x 1\n".to_string());
        let text = |r: &[u8], long: bool| String::from_utf8(respond_to(r, long, &ok)).unwrap();
        let get = text(b"GET /metrics HTTP/1.1\r\n\r\n", false);
        assert!(
            get.starts_with("HTTP/1.1 200 OK\r\n") && get.ends_with("\r\n\r\nx 1\n"),
            "{get}"
        );
        assert!(get.contains("Content-Length: 4\r\n"));
        // HEAD: the headers only, whatever whitespace splits the line (a
        // fuzzer's find: `HEAD\r`).
        let head = text(b"HEAD\r \xff/ HTTP/1/0\r\n\r\n", false);
        assert!(
            head.starts_with("HTTP/1.1 404") && head.ends_with("\r\n\r\n"),
            "{head}"
        );
        assert!(text(b"HEAD / HTTP/1.0\n\n", false).ends_with("\r\n\r\n"));
        assert!(text(b"PUT / HTTP/1.1\r\n\r\n", false).starts_with("HTTP/1.1 405"));
        assert!(text(b"GET /metrics\r\n\r\n", false).starts_with("HTTP/1.1 400"));
        assert!(text(b"GET /metrics HTTP/1.1\r\nX: y", true).starts_with("HTTP/1.1 400"));
        let down = String::from_utf8(respond_to(b"GET / HTTP/1.1\r\n\r\n", false, &|| {
            Err("gone".into())
        }))
        .unwrap();
        assert!(
            down.starts_with("HTTP/1.1 503") && down.ends_with("gone\n"),
            "{down}"
        );
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn every_family_has_help_and_type_and_counters_end_in_total() {
        let snap = Snapshot::default();
        let text = render(&Scrape {
            snapshot: &snap,
            dhcp: &DhcpCounters::default(),
            published: &[],
            threads: 1,
        });
        let mut helped = std::collections::BTreeSet::new();
        for l in text.lines() {
            if let Some(r) = l.strip_prefix("# HELP ") {
                let (name, text) = r.split_once(' ').unwrap();
                assert!(!text.is_empty(), "{l}");
                helped.insert(name.to_string());
            } else if let Some(r) = l.strip_prefix("# TYPE ") {
                let (name, kind) = r.split_once(' ').unwrap();
                assert!(helped.contains(name), "TYPE before HELP: {l}");
                assert_eq!(kind == "counter", name.ends_with("_total"), "{l}");
            } else {
                let name = l.split(['{', ' ']).next().unwrap();
                assert!(helped.contains(name), "a sample without HELP: {l}");
            }
        }
        assert!(helped.contains("lanyard_nat_tcp_flows_total"), "{text}");
        assert!(helped.contains("lanyard_dhcp_offers_total"), "{text}");
    }
}
