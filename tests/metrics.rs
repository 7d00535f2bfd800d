//! `lanyard daemon --metrics`: the Prometheus text, read by a parser of
//! the format (the prometheus-parse crate), with the counters moving under
//! real traffic from real containers — an allowed ping and a spoofed one,
//! counted apart — and the bad scrapers (a stalled client, a POST, an
//! oversized request) answered without stopping the next scrape; a
//! non-loopback address refused. Traffic only to loopback and to the
//! test's own namespaces.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::harness::*;

const T: Duration = Duration::from_secs(60);

/// The metrics address the daemon logged.
fn metrics_addr(log: &str) -> SocketAddr {
    let at = log
        .split("metrics at http://")
        .nth(1)
        .unwrap_or_else(|| panic!("no metrics address logged:\n{log}"));
    at.split('/').next().unwrap().parse().unwrap()
}

/// One HTTP exchange: status line and body.
fn http(addr: SocketAddr, request: &[u8]) -> (String, String) {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    let text = String::from_utf8_lossy(&out).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (
        head.lines().next().unwrap_or("").to_string(),
        body.to_string(),
    )
}

fn scrape(addr: SocketAddr) -> prometheus_parse::Scrape {
    let (status, body) = http(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK", "{body}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text format")
}

/// The value of `name` whose labels include every pair of `labels`.
fn value(s: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    let found: Vec<f64> = s
        .samples
        .iter()
        .filter(|x| x.metric == name)
        .filter(|x| labels.iter().all(|(k, v)| x.labels.get(k) == Some(*v)))
        .map(|x| match x.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name}: not a plain value"),
        })
        .collect();
    assert_eq!(found.len(), 1, "{name}{labels:?}: {} samples", found.len());
    found[0]
}

#[test]
fn metrics_are_prometheus_text_and_count_what_containers_did() {
    let env = Env::new(As::Unprivileged);
    let _d = env.daemon_with(&["--metrics", "127.0.0.1:0"]);
    let addr = metrics_addr(&std::fs::read_to_string(env.dir.join("daemon.log")).unwrap());
    let before = scrape(addr);
    // Help on every family, counters typed as such.
    assert!(before
        .docs
        .get("lanyard_port_dropped_frames_total")
        .is_some_and(|d| !d.is_empty()));
    // One thread, or what LANYARD_THREADS asks (CI's second pass: 2).
    let threads = std::env::var("LANYARD_THREADS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(1.0);
    if threads > 0.0 {
        assert_eq!(value(&before, "lanyard_dataplane_threads", &[]), threads);
    }
    assert_eq!(
        value(
            &before,
            "lanyard_gateway_echo_replies_total",
            &[("network", "default")]
        ),
        0.0
    );
    // A container pings its gateway 5 times (allowed), then from an address
    // that is not its own (port security drops it, spoofed_src_ip).
    let o = output_within(
        env.run_in(
            &["--name", "pinger"],
            &[
                "sh",
                "-c",
                "ping -c 5 -i 0.2 -W 2 172.17.0.1 && ip addr add 172.17.0.99/16 dev eth0 && \
                 ping -c 3 -i 0.2 -W 1 -I 172.17.0.99 172.17.0.1; \
                 echo; echo STATS; cat /sys/class/net/eth0/statistics/tx_packets",
            ],
        ),
        T,
    );
    let out = stdout(&o);
    assert!(out.contains("5 received"), "{out}{}", stderr(&o));
    assert!(
        out.contains("0 received"),
        "the spoofed pings were answered: {out}"
    );
    // The container is gone, its port with it: the network's counters
    // and the totals remember.
    let after = scrape(addr);
    assert!(
        value(
            &after,
            "lanyard_gateway_echo_replies_total",
            &[("network", "default")]
        ) >= 5.0,
        "echo replies"
    );
    assert!(
        value(
            &after,
            "lanyard_gateway_arp_replies_total",
            &[("network", "default")]
        ) >= 1.0
    );
    // Per port and reason while a container is attached: one that stays.
    let mut c = Proc::spawn_logged(
        &mut env.run_in(
            &["--name", "stays", "-p", "127.0.0.1::80"],
            &[
                "sh",
                "-c",
                "ping -c 4 -i 0.2 -W 2 172.17.0.1; ip addr add 172.17.0.98/16 dev eth0; \
                 ping -c 2 -i 0.2 -W 1 -I 172.17.0.98 172.17.0.1; echo done; sleep 30",
            ],
        ),
        &env.dir.join("stays.log"),
        "stays",
    );
    c.wait_for_output("done", T);
    let s = scrape(addr);
    let port = [("name", "stays"), ("network", "default"), ("kind", "tap")];
    assert!(value(&s, "lanyard_port_received_packets_total", &port) >= 4.0);
    assert!(value(&s, "lanyard_port_sent_packets_total", &port) >= 4.0);
    assert!(value(&s, "lanyard_port_received_bytes_total", &port) >= 4.0 * 98.0);
    let spoofed = [
        ("name", "stays"),
        ("network", "default"),
        ("reason", "spoofed_src_ip"),
    ];
    assert!(
        value(&s, "lanyard_port_dropped_frames_total", &spoofed) >= 2.0,
        "the spoofed pings were counted"
    );
    // Every reason is there, zero included.
    let zero = [("name", "stays"), ("reason", "flow_table_full")];
    assert_eq!(value(&s, "lanyard_port_dropped_frames_total", &zero), 0.0);
    assert_eq!(
        value(
            &s,
            "lanyard_published_accepted_total",
            &[("container", "stays")]
        ),
        0.0
    );
    assert_eq!(value(&s, "lanyard_ports", &[]), 1.0);
    // Its MAC is pinned in the network's table (a static entry).
    assert_eq!(
        value(&s, "lanyard_fdb_entries", &[("network", "default")]),
        1.0
    );

    // Bad scrapers. One that connects and sends nothing holds the server
    // at most its timeout; the next scrape is served.
    let stalled = TcpStream::connect(addr).unwrap();
    let t0 = Instant::now();
    let (status, _) = http(addr, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(t0.elapsed() < Duration::from_secs(12), "{:?}", t0.elapsed());
    drop(stalled);
    let (status, _) = http(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
    assert!(status.contains("405"), "{status}");
    let (status, _) = http(addr, b"GET /secrets HTTP/1.1\r\n\r\n");
    assert!(status.contains("404"), "{status}");
    let (status, _) = http(addr, b"\x16\x03\x01garbage\r\n\r\n");
    assert!(status.contains("400"), "{status}");
    let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
    big.resize(20 * 1024, b'a');
    let (status, _) = http(addr, &big);
    assert!(status.contains("400"), "{status}");
    let (status, _) = http(addr, b"HEAD /metrics HTTP/1.1\r\n\r\n");
    assert_eq!(status, "HTTP/1.1 200 OK");
    // Still serving, and the daemon too.
    let _ = scrape(addr);
    assert_ok(&output_within(env.ctl(&["stats"]), T), "stats");
    c.signal(libc::SIGTERM);
    c.wait(T);
}

#[test]
fn metrics_on_a_unix_socket_are_its_users_only_and_other_addresses_are_refused() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(As::Unprivileged);
    let sock = env.dir.join("run/metrics.sock");
    let arg = format!("unix:{}", sock.display());
    let _d = env.daemon_with(&["--metrics", &arg]);
    let mode = std::fs::metadata(&sock).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let mut s = std::os::unix::net::UnixStream::connect(&sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    assert!(out.starts_with("HTTP/1.1 200 OK"), "{out}");
    assert!(out.contains("lanyard_nat_flows 0"), "{out}");
    // Anything but loopback or a Unix socket: refused, exit 2, no daemon.
    let other = Env::new(As::Unprivileged);
    for (bad, needle) in [
        ("0.0.0.0:9184", "not a loopback address"),
        ("[::]:9184", "not a loopback address"),
        ("nonsense", "--metrics"),
    ] {
        let o = output_within(other.ctl(&["daemon", "--metrics", bad]), T);
        assert_eq!(o.status.code(), Some(2), "{bad}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{bad}: {}", stderr(&o));
    }
    // A busy address: exit 2, naming it, and the control socket not left.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let a = taken.local_addr().unwrap().to_string();
    let o = output_within(
        other.lanyard(&[
            "daemon",
            "--socket",
            other.socket.to_str().unwrap(),
            "--metrics",
            &a,
        ]),
        T,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("--metrics http://{a}")),
        "{}",
        stderr(&o)
    );
    assert!(!other.socket.exists());
}
