//! Defects found in review, each with the case it broke next to the case
//! that always worked, in the same run: published UDP clients that look
//! alike from inside, the embedded DNS on internal networks, IPv6 DNS
//! upstreams, attach requests longer than one read, a closed stdout, the
//! daemon's bind failure, the container's sysfs. Same topology as the
//! egress tests (a host namespace made for the test, an outside host
//! behind a veth).

mod common;

use common::harness::*;
use common::scenario::*;

const CONFIG: &str = "[dns]\nupstream = [\"127.0.0.1:5353\"]\n";

const HELPERS: &str = r#"
until_ok() { i=0; until "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 150 ] || { echo "never: $*"; return 1; }; sleep 0.1; done; }
bg_run() { timeout 120 $B run --socket $S "$@" & CPID=$!; PIDS="$PIDS $CPID"; }
on_network() { until_ok sh -c "$B network inspect --socket $S $2 | grep -q '\"Name\": \"$1\"'"; }
"#;

fn run(who: As, config: &str, body: &str) -> String {
    scenario(who, config, &format!("{HELPERS}\n{body}"))
}

/// A UDP server for the container: answers each datagram with
/// "peer IP:PORT DATA".
const UDP_ECHO: &str = r#"import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", 53))
print("ready", flush=True)
while True:
    d, a = s.recvfrom(2048)
    s.sendto(b"peer %s:%d " % (a[0].encode(), a[1]) + d, a)
"#;

#[test]
fn udp_clients_shown_as_the_gateway_get_their_own_replies() {
    let out = run(
        As::Unprivileged,
        CONFIG,
        &format!(
            r#"
cat > uecho.py <<'EOF'
{UDP_ECHO}
EOF
bg_run --name u -p 5300:53/udp -- python3 $PWD/uecho.py
until_ok sh -c "$B network inspect --socket $S default | grep -q '\"u\"'"
until_ok python3 $P udp-ask 127.0.0.1 5300
python3 -c '
import socket
# Two loopback clients with the same source port: both are shown to the
# container as the gateway, so they must be told apart by port.
socks = []
for ip in ("127.0.0.1", "127.0.0.2"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((ip, 40000))
    s.settimeout(5)
    socks.append((ip, s))
for round in range(3):
    for ip, s in socks:
        s.sendto(("from " + ip).encode(), ("127.0.0.1" if ip == "127.0.0.1" else "127.0.0.2", 5300))
    for ip, s in socks:
        try:
            d = s.recv(2048).decode()
        except OSError as e:
            d = "nothing (%s)" % e
        print("client", ip, "got:", d, flush=True)
'
"#
        ),
    );
    let got: Vec<&str> = out.lines().filter(|l| l.starts_with("client ")).collect();
    assert_eq!(got.len(), 6, "{out}");
    let mut ports = std::collections::BTreeSet::new();
    for l in &got {
        // Each client gets the answer to its own datagram, from the
        // container that saw it as the gateway with a port of its own.
        let ip = l.split_whitespace().nth(1).unwrap();
        assert!(l.ends_with(&format!("from {ip}")), "{out}");
        assert!(l.contains("got: peer 172.17.0.1:"), "{out}");
        let port = l
            .split("172.17.0.1:")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap();
        ports.insert((ip.to_string(), port.to_string()));
    }
    // Two clients, two ports, each kept across rounds.
    assert_eq!(ports.len(), 2, "{out}");
    assert!(ports.iter().any(|(_, p)| p == "40000"), "{out}");
}

#[test]
fn the_embedded_dns_answers_on_internal_networks_and_forwards_only_for_nat() {
    let out = run(
        As::Unprivileged,
        CONFIG,
        r#"
local_server dns dns 5353 127.0.0.1
$B network create --socket $S inner --internal --subnet 10.66.0.0/24 > /dev/null
bg_run --name webby --network inner -- sleep 60
on_network webby inner
run --name inside --network inner -- sh -c '
d() { dig +tries=1 +time=3 "$@" @10.66.0.1; }
echo "inside name: $(d +short webby)"
echo "inside name tcp: $(d +tcp +short webby)"
echo "inside external: $(d some.example.test | grep -o "status: [A-Z]*")"
cat /etc/resolv.conf | grep nameserver
'
run --name outside -- sh -c 'echo "outside external: $(dig +short +tries=1 +time=3 some.example.test @172.17.0.1)"'
"#,
    );
    // Names on an internal network resolve, over UDP and TCP...
    assert_eq!(
        line(&out, "inside name:").trim(),
        "inside name: 10.66.0.2",
        "{out}"
    );
    assert_eq!(
        line(&out, "inside name tcp:").trim(),
        "inside name tcp: 10.66.0.2",
        "{out}"
    );
    assert!(out.contains("nameserver 10.66.0.1"), "{out}");
    // ...but nothing leaves for the upstream from it (no egress there),
    // while a container with NAT is forwarded for in the same run.
    assert!(line(&out, "inside external:").contains("SERVFAIL"), "{out}");
    assert_eq!(
        line(&out, "outside external:").trim(),
        "outside external: 192.0.2.7",
        "{out}"
    );
}

#[test]
fn ipv6_dns_upstreams_are_used() {
    let out = run(
        As::Me,
        "[dns]\nupstream = [\"[::1]:5354\", \"127.0.0.1:5355\"]\n",
        r#"
if ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
python3 -c '
import socket, struct
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind(("::1", 5354))
print("ready", flush=True)
while True:
    q, a = s.recvfrom(4096)
    h = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    end = 12
    while q[end]:
        end += q[end] + 1
    question = q[12:end + 5]
    s.sendto(h + question + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 66]), a)
' > v6dns.out 2>&1 & PIDS="$PIDS $!"
waitfor v6dns.out
run -- sh -c 'echo "v6 upstream: $(dig +short +tries=1 +time=3 some.example.test @172.17.0.1)"'
else
echo "no ipv6 loopback"
fi
"#,
    );
    if out.contains("no ipv6 loopback") {
        assert!(
            std::env::var("LANYARD_REQUIRE_IPV6").is_err(),
            "IPv6 is required here (LANYARD_REQUIRE_IPV6) but the test namespace has no ::1"
        );
        eprintln!("skipped: the test namespace has no IPv6 loopback");
        return;
    }
    // Only the IPv6 upstream answers (nobody listens on 127.0.0.1:5355).
    assert_eq!(
        line(&out, "v6 upstream:").trim(),
        "v6 upstream: 192.0.2.66",
        "{out}"
    );
}

#[test]
fn an_attach_request_longer_than_one_read_keeps_its_tap() {
    // 400 aliases of 40 characters: a request of ~20 KiB, beyond the
    // control server's 16 KiB read.
    let aliases: Vec<String> = (0..400)
        .map(|i| format!("--alias a{i:03}{}", "x".repeat(36)))
        .collect();
    let out = run(
        As::Unprivileged,
        CONFIG,
        &format!(
            r#"
run --name long {aliases} -p 127.0.0.1:8300:80 -p 127.0.0.1:8301:81 -- sh -c 'ip -br addr show eth0; echo "alias: $(dig +short +tries=1 +time=3 a399{x} @172.17.0.1)"'
echo "long rc=$?"
run --name short -- ip -br addr show eth0
"#,
            aliases = aliases.join(" "),
            x = "x".repeat(36),
        ),
    );
    assert_eq!(line(&out, "long rc="), "long rc=0", "{out}");
    let eth0: Vec<&str> = out.lines().filter(|l| l.starts_with("eth0")).collect();
    assert_eq!(eth0.len(), 2, "{out}");
    assert!(eth0[0].contains("172.17.0.2/16"), "{out}");
    assert_eq!(line(&out, "alias:").trim(), "alias: 172.17.0.2", "{out}");
    assert!(
        eth0[1].contains("172.17.0.2/16"),
        "released and reused: {out}"
    );
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let out = run(
        As::Me,
        CONFIG,
        r#"
server echo echo 9002
bg_run --name holder -- python3 $P hold 10.200.0.2 9002 40
until_ok sh -c "[ \$($B conntrack --socket $S | wc -l) -gt 30 ]"
# The reader goes away before (or while) the command writes.
( $B conntrack --socket $S 2> conntrack.err; echo "conntrack rc=$?" > conntrack.rc ) | head -1 > /dev/null
( $B network ls --socket $S 2> ls.err; echo "ls rc=$?" > ls.rc ) | true
cat conntrack.rc ls.rc
echo "stderr: [$(cat conntrack.err ls.err)]"
# The same commands into a reader that stays: all their output.
echo "lines: $($B conntrack --socket $S | wc -l) $($B network ls --socket $S | head -1)"
"#,
    );
    assert_eq!(line(&out, "conntrack rc="), "conntrack rc=0", "{out}");
    assert_eq!(line(&out, "ls rc="), "ls rc=0", "{out}");
    assert_eq!(
        line(&out, "stderr:"),
        "stderr: []",
        "no panic message: {out}"
    );
    let lines: u32 = line(&out, "lines:")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(lines > 30, "{out}");
    assert!(line(&out, "lines:").contains("NETWORK ID"), "{out}");
}

#[test]
fn the_daemons_bind_failure_names_the_socket_and_exits_2() {
    let env = Env::new(As::Unprivileged);
    let missing = env.dir.join("no/such/dir/lanyard.sock");
    let o = output_within(
        env.lanyard(&["daemon", "--socket", missing.to_str().unwrap()]),
        std::time::Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("--socket {}", missing.display())),
        "{err}"
    );
    assert!(err.contains("No such file or directory"), "{err}");
    // On a path that works a daemon starts; a second one on it is refused
    // the same way, naming the path.
    let _d = env.daemon();
    let o = output_within(
        env.lanyard(&["daemon", "--socket", env.socket.to_str().unwrap()]),
        std::time::Duration::from_secs(20),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!("--socket {}", env.socket.display())),
        "{}",
        stderr(&o)
    );
    assert!(stderr(&o).contains("already listening"), "{}", stderr(&o));
}

#[test]
fn the_container_sees_its_own_interfaces_in_sysfs() {
    let out = run(
        As::Unprivileged,
        CONFIG,
        r#"
echo "host: $(ls /sys/class/net | tr '\n' ' ')"
run -- sh -c 'echo "sysfs: $(ls /sys/class/net | tr "\n" " ")"; echo "mac: $(cat /sys/class/net/eth0/address) $(cat /sys/class/net/eth0/mtu)"; echo "ip: $(ip -br link show eth0 | awk "{print \$3}")"; echo "cgroup: $(ls /sys/fs/cgroup | head -1)"'
"#,
    );
    assert_eq!(line(&out, "sysfs:").trim(), "sysfs: eth0 lo", "{out}");
    // What sysfs says matches what the kernel says through netlink.
    assert_eq!(
        line(&out, "mac:").trim(),
        "mac: 02:42:ac:11:00:02 65520",
        "{out}"
    );
    assert_eq!(line(&out, "ip:").trim(), "ip: 02:42:ac:11:00:02", "{out}");
    // The cgroup tree is still there, as under docker.
    assert!(
        line(&out, "cgroup:").trim().len() > "cgroup:".len(),
        "{out}"
    );
}
