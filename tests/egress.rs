//! Egress NAT end to end: containers reach an "outside" host through
//! lanyard's host sockets. Each scenario runs inside a user + network
//! namespace made for it (`unshare -Urn`; for the `As::Unprivileged` ones
//! run as root, as `LANYARD_TEST_USER`): that namespace plays the host, a
//! second one behind a veth plays the outside world (10.200.0.2), and
//! lanyard's daemon runs in the first. Traffic goes only between them and
//! to their loopback.

mod common;

use common::harness::*;
use common::scenario::*;

const DEFAULT: &str = "[dns]\nupstream = [\"127.0.0.1:5353\"]\n";

/// The hash field of "WORD N SHA ..." lines.
fn sha(l: &str) -> (&str, &str) {
    let mut w = l.split_whitespace().skip(1);
    (w.next().unwrap(), w.next().unwrap())
}

#[test]
fn tcp_100_mib_each_way_arrives_byte_identical() {
    let out = scenario(
        As::Me,
        DEFAULT,
        r#"
server sink sink 9000
server source source 9001 104857600
run -- python3 $P send 10.200.0.2 9000 104857600
run -- python3 $P recv 10.200.0.2 9001
sleep 0.5
cat sink.out source.out
$B conntrack --socket $S
"#,
    );
    let sent = sha(line(&out, "sent "));
    let sunk = sha(line(&out, "sink "));
    assert_eq!(sent, sunk, "container → outside:\n{out}");
    assert_eq!(sent.0, "104857600");
    // The server sees the host (lanyard's socket), not the container.
    assert!(line(&out, "sink ").ends_with("from 10.200.0.1"), "{out}");
    assert_eq!(
        sha(line(&out, "recv ")),
        sha(line(&out, "source ")),
        "outside → container:\n{out}"
    );
    assert_eq!(sha(line(&out, "recv ")).0, "104857600");
}

#[test]
fn tcp_both_ways_at_docker_mtu_as_unprivileged_user() {
    let out = scenario(
        As::Unprivileged,
        DEFAULT,
        r#"
server sink sink 9000
server source source 9001 20971520
run --mtu 1500 -- python3 $P send 10.200.0.2 9000 20971520
run --mtu 1500 -- python3 $P recv 10.200.0.2 9001
sleep 0.5
cat sink.out source.out
"#,
    );
    assert_eq!(sha(line(&out, "sent ")), sha(line(&out, "sink ")), "{out}");
    assert_eq!(
        sha(line(&out, "recv ")),
        sha(line(&out, "source ")),
        "{out}"
    );
}

#[test]
fn two_hundred_concurrent_connections() {
    let out = scenario(
        As::Me,
        DEFAULT,
        r#"
server echo echo 9002
run -- python3 $P many 10.200.0.2 9002 200
"#,
    );
    assert!(out.contains("many 200/200"), "{out}");
}

#[test]
fn udp_icmp_and_unreachable_ports() {
    let out = scenario(
        As::Unprivileged,
        DEFAULT,
        r#"
server udp udp-echo 7000
run --mtu 1500 -- sh -c 'python3 $0 udp 10.200.0.2 7000; ping -c 2 -W 5 10.200.0.2' $P
"#,
    );
    assert!(out.contains("udp echo hello"), "{out}");
    // An 8000-byte datagram reaches a container whose MTU is 1500.
    assert!(out.contains("udp big 8000"), "{out}");
    // The outside host's port unreachable reaches the container.
    assert!(out.contains("udp closed port refused"), "{out}");
    assert!(out.contains("2 received"), "{out}");
}

/// Three UDP bursts, each asked for by a new container (MTU 1500) of the
/// `udp-burst` server at `target` ("HOST PORT") that `setup` starts: 40
/// datagrams of 100 bytes, then `middle`, then 20 of 1400. Asserts that
/// every burst arrived datagram for datagram (each whole, in order, with
/// its own size) and returns `counter` (a Python expression over `d`, the
/// daemon's `stats --json`) read after them.
fn three_udp_bursts(middle: &[&str], setup: &str, target: &str, counter: &str) -> u64 {
    let sizes: Vec<&str> = std::iter::repeat_n("100", 40)
        .chain(middle.iter().copied())
        .chain(std::iter::repeat_n("1400", 20))
        .collect();
    let n = sizes.len();
    let sizes = sizes.join(",");
    let out = scenario(
        As::Unprivileged,
        DEFAULT,
        &format!(
            r#"
{setup}
for i in 1 2 3; do run --mtu 1500 -- python3 $P udp-burst-client {target} {sizes}; done
$B stats --socket $S --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("counter", {counter})'
"#
        ),
    );
    assert_eq!(
        out.matches(&format!("burst {n}/{n} got {n}")).count(),
        3,
        "{out}"
    );
    out.lines()
        .find_map(|l| l.strip_prefix("counter "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no counter: {out}"))
}

/// The NAT writes a burst from the outside toward the container as UDP
/// super-frames (nat::udp, "Batching toward the container"), which the
/// container's kernel splits: every datagram arrives whole, in order, with
/// its own size — a shorter one, one larger than the container's MTU (never
/// a segment) and one of zero bytes among them — and the daemon's counters
/// say super-frames were written. The server sends each run of equal sizes
/// in one GSO send, so that the datagrams arrive together as a fast
/// sender's do (python's one `sendto` at a time is slower than lanyard
/// reads, and each readiness event would find one).
#[test]
fn a_udp_burst_from_outside_arrives_datagram_for_datagram() {
    let frames = three_udp_bursts(
        &["37", "100", "100", "3000", "100", "0", "100"],
        "server burst udp-burst 7100",
        "10.200.0.2 7100",
        r#"d["nat"]["udp_super_frames"]"#,
    );
    assert!(frames >= 1, "the bursts went as super-frames: {frames}");
}

/// Container to container through real TAPs: a burst one container sends
/// another is written as UDP super-frames (`dataplane::coalesce`), and the
/// receiving container gets every datagram whole, in order, with its own
/// size (a shorter one and an empty one among them). The sender's GSO
/// sends are cut up by its own kernel (a TAP takes no UDP super-frames from
/// a container), so they reach the TAP's queue together.
#[test]
fn a_udp_burst_between_containers_arrives_datagram_for_datagram() {
    let joined = three_udp_bursts(
        &["37", "100", "100", "0", "100"],
        "run --mtu 1500 --ip 172.17.0.50 -- python3 $P udp-burst 7100 > srv.out 2>&1 & PIDS=\"$PIDS $!\"\nwaitfor srv.out",
        "172.17.0.50 7100",
        r#"d["udp_coalesced"]"#,
    );
    assert!(joined >= 1, "the bursts went as super-frames: {joined}");
}

/// A container's own UDP GSO sends reach lanyard cut into their datagrams:
/// the TAP is never left asking its kernel for UDP super-frames (`TapPort`
/// asks once whether the kernel knows USO, then sets that back), so the NAT
/// never sends a run of datagrams as one. The container serves a burst,
/// each run of equal sizes one GSO send, through a published UDP port, and
/// the outside client sees every datagram with its own size.
#[test]
fn a_containers_own_udp_gso_sends_leave_it_datagram_for_datagram() {
    let sizes: Vec<&str> = std::iter::repeat_n("100", 40)
        .chain(["37", "1400", "1400", "1400"])
        .collect();
    let n = sizes.len();
    let sizes = sizes.join(",");
    let out = scenario(
        As::Unprivileged,
        DEFAULT,
        &format!(
            r#"
run --mtu 1500 -p 7100:7100/udp -- python3 $P udp-burst 7100 > srv.out 2>&1 & PIDS="$PIDS $!"
waitfor srv.out
for i in 1 2 3; do $O timeout 20 python3 $P udp-burst-client 10.200.0.1 7100 {sizes}; done
"#
        ),
    );
    assert_eq!(
        out.matches(&format!("burst {n}/{n} got {n}")).count(),
        3,
        "{out}"
    );
}

#[test]
fn refused_and_unreachable_connects_fail_at_once() {
    let out = scenario(
        As::Me,
        DEFAULT,
        r#"
server echo echo 9002
run -- python3 -c '
import socket, time
for host, port in (("10.200.0.2", 9002), ("10.200.0.2", 9999), ("10.201.0.9", 80)):
    t = time.time()
    try:
        socket.create_connection((host, port), timeout=10)
        print(host, port, "connected")
    except OSError as e:
        print(host, port, "errno", e.errno, "fast" if time.time() - t < 3 else "slow")
'
"#,
    );
    // The same container reaches a listening port on the same host, so
    // the refusal next to it is the remote's closed port, not a broken path.
    assert!(out.contains("10.200.0.2 9002 connected"), "{out}");
    // Refused: a RST, at once.
    assert!(out.contains("10.200.0.2 9999 errno 111 fast"), "{out}");
    // No route on the host: an ICMP unreachable, at once, not a hang.
    assert!(
        out.contains("10.201.0.9 80 errno 113 fast")
            || out.contains("10.201.0.9 80 errno 101 fast"),
        "{out}"
    );
}

#[test]
fn half_close_carries_data_after_the_container_finishes_sending() {
    let out = scenario(
        As::Me,
        DEFAULT,
        r#"
server hc halfclose 9003
run -- python3 $P halfclose-client 10.200.0.2 9003 3000000
"#,
    );
    assert!(out.contains("reply got 3000000"), "{out}");
}

#[test]
fn a_container_over_its_flow_limit_gets_resets_and_others_keep_working() {
    let out = scenario(
        As::Me,
        "[nat]\nmax_flows_per_container = 20\n[dns]\nupstream = [\"127.0.0.1:5353\"]\n",
        r#"
server echo echo 9002
run --name greedy -- python3 $P hold 10.200.0.2 9002 30 &
G=$!
sleep 1
run --name polite -- python3 $P many 10.200.0.2 9002 5
wait $G
$B stats --socket $S --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print("flow_limit_refusals", d["nat"]["flows_refused_limit"])'
"#,
    );
    assert!(out.contains("hold opened 20 refused 10"), "{out}");
    assert!(out.contains("many 5/5"), "{out}");
    assert!(out.contains("flow_limit_refusals 10"), "{out}");
}

#[test]
fn dns_through_the_gateway_reaches_the_configured_upstream() {
    let out = scenario(
        As::Unprivileged,
        DEFAULT,
        r#"
local_server dns dns 5353 127.0.0.1
run -- sh -c 'cat /etc/resolv.conf; python3 -c "
import socket
print(\"resolved\", socket.gethostbyname(\"some.example.test\"))
try:
    socket.gethostbyname(\"nothing.invalid\")
except socket.gaierror as e:
    print(\"nxdomain\", e.errno)
"'
"#,
    );
    assert!(out.contains("nameserver 172.17.0.1"), "{out}");
    assert!(out.contains("resolved 192.0.2.7"), "{out}");
    assert!(out.contains("nxdomain"), "{out}");
}

#[test]
fn host_loopback_is_reachable_only_when_allowed() {
    let out = scenario(
        As::Me,
        DEFAULT,
        r#"
local_server lo echo 9004 127.0.0.1
run -- python3 -c '
import socket
try:
    socket.create_connection(("172.17.0.1", 9004), timeout=5)
    print("default: connected")
except OSError as e:
    print("default: refused", e.errno)
'
run --allow-host-loopback -- python3 $P many 172.17.0.1 9004 3
"#,
    );
    assert!(out.contains("default: refused 111"), "{out}");
    assert!(out.contains("many 3/3"), "{out}");
}

#[test]
fn flows_end_when_either_side_vanishes_mid_transfer() {
    let out = scenario(
        As::Me,
        DEFAULT,
        r#"
flows() { $B conntrack --socket $S --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# The remote dies while the container downloads: the container sees the
# connection end (a reset or EOF), not a hang.
server source source 9001 2000000000
SRC=$LAST
run -- python3 -c '
import socket
s = socket.create_connection(("10.200.0.2", 9001), timeout=20)
n = 0
try:
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        n += len(d)
    print("download ended with EOF after", n)
except socket.timeout:
    print("download hung after", n)
except OSError as e:
    print("download ended with", e, "after", n)
' > download.out 2>&1 &
C=$!
sleep 1.5
kill $SRC
wait $C
cat download.out
# The container dies mid-upload (`lanyard run` killed outright, its
# command with it): the flow goes and the remote sees the connection end.
server sink sink 9000
timeout -s KILL 2 $B run --socket $S --name doomed -- python3 $P send 10.200.0.2 9000 4000000000 > upload.out 2>&1 || true
i=0; while [ "$(flows)" != 0 ] && [ $i -lt 100 ]; do i=$((i+1)); sleep 0.1; done
echo "flows left $(flows)"
sleep 0.5
cat sink.out
"#,
    );
    // It got data before the remote went, and then an end (EOF or reset),
    // not the 20 s timeout.
    let download = line(&out, "download ");
    assert!(download.starts_with("download ended with"), "{out}");
    let got: u64 = download
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("{out}"));
    assert!(got > 0, "{out}");
    assert!(out.contains("flows left 0"), "{out}");
    assert!(out.contains("sink error") || out.contains("sink "), "{out}");
}

#[test]
fn conntrack_lists_open_flows() {
    let out = scenario(
        As::Me,
        DEFAULT,
        r#"
server echo echo 9002
run --name lister -- sh -c 'python3 -c "
import socket, subprocess, time
s = socket.create_connection((\"10.200.0.2\", 9002), timeout=5)
s.sendall(b\"x\"); s.recv(1)
print(\"open\", flush=True)
time.sleep(2)
"' &
C=$!
sleep 1
$B conntrack --socket $S
$B conntrack --socket $S --json
wait $C
"#,
    );
    assert!(out.contains("PROTO"), "{out}");
    let table = out
        .lines()
        .find(|l| l.starts_with("tcp "))
        .expect("a tcp row");
    assert!(table.contains("172.17.0.2:"), "{table}");
    assert!(table.contains("10.200.0.2:9002"), "{table}");
    assert!(table.contains("established"), "{table}");
}

#[test]
fn garbage_tcp_is_dropped_and_counted() {
    let out = scenario(
        As::Unprivileged,
        DEFAULT,
        r#"
server echo echo 9002
run --name rogue -- python3 -c '
import socket, struct
def csum(b):
    if len(b) % 2: b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
def seg(flags, good=True):
    h = struct.pack("!HHIIBBHHH", 40000, 9002, 1, 0, 5 << 4, flags, 1000, 0, 0)
    pseudo = socket.inet_aton("172.17.0.2") + socket.inet_aton("10.200.0.2") + struct.pack("!BBH", 0, 6, len(h))
    c = csum(pseudo + h) ^ (0 if good else 0x1234)
    return h[:16] + struct.pack("!H", c) + h[18:]
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
r.settimeout(5)
# The lone good ACK goes last: the RST it earns proves the switch read
# every segment before it. Without that wait this container could exit
# (taking its namespace and what its kernel still queued, behind ARP or
# in the TAP) before lanyard saw a byte.
for flags, good in ((0x03, True), (0x10, False), (0x00, True), (0x10, True)):
    r.sendto(seg(flags, good), ("10.200.0.2", 0))
while True:
    pkt = r.recv(2048)
    ihl = (pkt[0] & 15) * 4
    sport, dport = struct.unpack("!HH", pkt[ihl:ihl + 4])
    if (sport, dport) == (9002, 40000) and pkt[ihl + 13] & 0x04:
        break
print("sent garbage")
'
# Still fine after that: a real connection.
run -- python3 $P many 10.200.0.2 9002 3
$B stats --socket $S --json > stats.json
python3 -c '
import json
d = json.load(open("stats.json"))
drops = {}
for p in d["ports"]:
    for k, v in p["counters"]["drops"].items():
        drops[k] = drops.get(k, 0) + v
print("drops", json.dumps(drops, sort_keys=True))
print("bad_segments", d["nat"]["tcp_bad_segments"])
' 2>/dev/null || true
"#,
    );
    assert!(out.contains("sent garbage"), "{out}");
    assert!(out.contains("many 3/3"), "{out}");
    // The rogue container's port is gone from the stats by now (it
    // exited), so check the NAT's own counter: SYN+FIN, the bad checksum
    // and the flagless segment; the lone ACK got the RST the rogue waited
    // for, as no_flow.
    let bad: u64 = line(&out, "bad_segments ")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(bad >= 3, "{out}");
}
