//! User-defined networks end to end: create/rm/ls/inspect/prune and their
//! bad input, isolation between networks, a container on several networks,
//! live connect/disconnect, docker's none/host/container:NAME modes, the
//! embedded DNS (dig against names, aliases, PTR, NXDOMAIN, forwarding to a
//! fake upstream on loopback) and the DHCP server (udhcpc). Same topology as
//! the egress tests (a host namespace with the daemon, made per test).

mod common;

use common::harness::*;
use common::scenario::*;

/// DNS upstream: a fake resolver the tests run on the host's loopback.
const CONFIG: &str = "[dns]\nupstream = [\"127.0.0.1:5353\"]\n";

const HELPERS: &str = r#"
until_ok() { i=0; until "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 150 ] || { echo "never: $*"; return 1; }; sleep 0.1; done; }
bg_run() { timeout 120 $B run --socket $S "$@" & CPID=$!; PIDS="$PIDS $CPID"; }
# on_network NAME NET: until NAME shows up in `network inspect NET`.
on_network() { until_ok sh -c "$B network inspect --socket $S $2 | grep -q '\"Name\": \"$1\"'"; }
"#;

fn run(who: As, body: &str) -> String {
    scenario(who, CONFIG, &format!("{HELPERS}\n{body}"))
}

#[test]
fn create_inspect_rm_prune_and_bad_input() {
    let out = run(
        As::Unprivileged,
        r#"
$B network create --socket $S front > /dev/null
$B network create --socket $S back --subnet 10.50.0.0/24 --gateway 10.50.0.254 --ip-range 10.50.0.128/25 --mtu 9000 --internal > /dev/null
$B network ls --socket $S
$B network inspect --socket $S back > back.json
python3 -c '
import json
n = json.load(open("back.json"))[0]
c = n["IPAM"]["Config"][0]
print("inspect", n["Name"], c["Subnet"], c["Gateway"], c["IPRange"], n["Internal"], n["Options"]["com.docker.network.driver.mtu"], n["Driver"])
'
set +e
for args in "front" "x --subnet 172.18.5.0/24" "x --subnet 10.60.0.0/24 --gateway 10.61.0.1" "x --subnet 10.60.0.0/24 --gateway 10.60.0.0" "x --subnet 10.60.0.0/24 --gateway 10.60.0.255" "x --subnet 10.60.0.0/24 --ip-range 10.61.0.0/28" "x --subnet 10.60.0.7/24" "-bad"; do
  $B network create --socket $S $args 2> err >/dev/null; echo "create [$args] rc=$? $(head -1 err)"
done
bg_run --name c --network back -- sleep 60
on_network c back
$B network rm --socket $S back 2> err; echo "rm with container rc=$? $(cat err)"
$B network rm --socket $S default 2> err; echo "rm default rc=$? $(cat err)"
$B network rm --socket $S --force back; echo "rm force rc=$?"
$B network create --socket $S spare > /dev/null
$B network prune --socket $S
echo "left: $($B network ls --socket $S | awk 'NR>1 {print $2}' | tr '\n' ' ')"
set -e
"#,
    );
    assert!(
        out.contains("front") && out.contains("172.18.0.0/16"),
        "{out}"
    );
    assert!(
        out.contains("inspect back 10.50.0.0/24 10.50.0.254 10.50.0.128/25 True 9000 bridge"),
        "{out}"
    );
    for (args, needle) in [
        ("front", "already exists"),
        ("x --subnet 172.18.5.0/24", "overlaps"),
        ("x --subnet 10.60.0.0/24 --gateway 10.61.0.1", "--gateway"),
        ("x --subnet 10.60.0.0/24 --gateway 10.60.0.0", "--gateway"),
        ("x --subnet 10.60.0.0/24 --gateway 10.60.0.255", "--gateway"),
        (
            "x --subnet 10.60.0.0/24 --ip-range 10.61.0.0/28",
            "--ip-range",
        ),
        ("x --subnet 10.60.0.7/24", "host bits"),
        ("-bad", "unexpected argument '-b'"),
    ] {
        let l = line(&out, &format!("create [{args}] rc="));
        assert!(l.contains("rc=2"), "{l}");
        assert!(l.contains(needle), "{l}");
    }
    assert!(
        line(&out, "rm with container rc=2").contains("--force"),
        "{out}"
    );
    assert!(line(&out, "rm default rc=2").contains("config"), "{out}");
    assert!(out.contains("rm force rc=0"), "{out}");
    assert!(
        out.contains("spare") && out.contains("front"),
        "pruned: {out}"
    );
    assert_eq!(line(&out, "left:").trim(), "left: default", "{out}");
}

#[test]
fn networks_are_isolated_and_a_container_on_both_reaches_both() {
    let out = run(
        As::Me,
        r#"
$B network create --socket $S red --subnet 10.70.0.0/24 > /dev/null
$B network create --socket $S blue --subnet 10.80.0.0/24 > /dev/null
bg_run --name r --network red -- sleep 60
bg_run --name b --network blue -- sleep 60
on_network r red
on_network b blue
run --name both --network red --network blue -- sh -c 'ip -br addr; ip route | head -1; ping -c1 -W2 10.70.0.2 >/dev/null && echo "both->red ok"; ping -c1 -W2 10.80.0.2 >/dev/null && echo "both->blue ok"'
# The same container reaches red (its ping works) right before blue: ping
# succeeds or fails for isolation's sake alone.
run --network red -- sh -c 'ping -c1 -W2 10.70.0.2 >/dev/null && echo "red->red ok"; ping -c1 -W2 10.80.0.2 >/dev/null && echo "red->blue LEAK" || echo "red->blue blocked"'
$B stats --socket $S --json > stats.json
"#,
    );
    assert!(out.contains("eth0") && out.contains("10.70.0."), "{out}");
    assert!(out.contains("eth1") && out.contains("10.80.0."), "{out}");
    assert!(out.contains("default via 10.70.0.1 dev eth0"), "{out}");
    assert!(
        out.contains("both->red ok") && out.contains("both->blue ok"),
        "{out}"
    );
    assert!(out.contains("red->red ok"), "ping works in red: {out}");
    assert!(out.contains("red->blue blocked"), "{out}");
    assert!(!out.contains("LEAK"), "{out}");
}

#[test]
fn connect_and_disconnect_a_running_container() {
    let out = run(
        As::Unprivileged,
        r#"
$B network create --socket $S side --subnet 10.90.0.0/24 > /dev/null
bg_run --name peer --network side -- sleep 60
bg_run --name live -- sleep 60
on_network peer side
on_network live default
$B connect --socket $S side live
run --network container:live -- sh -c 'ip -br addr show eth1; ping -c1 -W2 10.90.0.2 >/dev/null && echo "live->side ok"'
$B disconnect --socket $S side live
echo "after disconnect: $(run --network container:live -- sh -c 'ip -br addr | awk "{print \$1}" | sort | tr "\n" " "')"
set +e
$B disconnect --socket $S side live 2>err; echo "again rc=$? $(cat err)"
$B connect --socket $S nowhere live 2>err; echo "bad net rc=$? $(cat err)"
set -e
"#,
    );
    assert!(out.contains("eth1") && out.contains("10.90.0."), "{out}");
    assert!(out.contains("live->side ok"), "{out}");
    // eth1 gone, eth0 still there.
    assert_eq!(
        line(&out, "after disconnect:").trim(),
        "after disconnect: eth0 lo",
        "{out}"
    );
    let again = line(&out, "again rc=");
    assert!(again.contains("rc=2"), "{out}");
    assert!(
        again.contains("container 'live' is not on network 'side'"),
        "{out}"
    );
    let bad_net = line(&out, "bad net rc=");
    assert!(bad_net.contains("rc=2"), "{out}");
    assert!(bad_net.contains("nowhere"), "{out}");
}

#[test]
fn docker_network_modes() {
    let out = run(
        As::Unprivileged,
        r#"
bg_run --name base --hostname basebox -- sh -c 'python3 -c "
import socket, time
s = socket.socket(); s.bind((\"127.0.0.1\", 7777)); s.listen(); print(\"ready\", flush=True)
c, _ = s.accept(); c.sendall(b\"shared localhost\"); time.sleep(1)
"'
on_network base default
echo "none: $(run --network none -- sh -c 'ip -br addr | awk "{print \$1}" | tr "\n" " "')"
echo "host: $(run --network host -- sh -c 'ip -br addr | awk "{print \$1}" | sort | tr "\n" " "')"
echo "join: $(run --network container:base -- sh -c 'hostname; ip -br addr show eth0 | awk "{print \$3}"; python3 -c "
import socket; print(socket.create_connection((\"127.0.0.1\", 7777), timeout=5).recv(100).decode())
"' | tr '\n' ' ')"
set +e
run --network none -p 80:80 -- true 2>err; echo "none -p rc=$? $(cat err)"
run --network host --network default -- true 2>err; echo "mixed rc=$? $(cat err)"
run --network container:nobody -- true 2>err; echo "unknown rc=$? $(cat err)"
set -e
"#,
    );
    assert_eq!(line(&out, "none:").trim(), "none: lo", "{out}");
    // The host namespace of the scenario has lo, h0 (and nothing else).
    assert!(line(&out, "host:").contains("h0"), "{out}");
    let join = line(&out, "join:");
    assert!(join.contains("basebox"), "{join}");
    assert!(join.contains("172.17.0.2/16"), "{join}");
    assert!(join.contains("shared localhost"), "{join}");
    for (prefix, why) in [
        ("none -p rc=", "-p needs a network of the container's own"),
        ("mixed rc=", "cannot be combined with other networks"),
        ("unknown rc=", "no container named 'nobody'"),
    ] {
        let l = line(&out, prefix);
        // `run` exits 125 for what it refuses, as docker.
        assert!(l.contains("rc=125") && l.contains(why), "{l}\n{out}");
    }
}

#[test]
fn embedded_dns_answers_names_aliases_ptr_and_forwards_the_rest() {
    let out = run(
        As::Unprivileged,
        r#"
local_server dns dns 5353 127.0.0.1
$B network create --socket $S --ipv6=false other > /dev/null
# One after the other, so that web is .2 and web2 is .3.
bg_run --name web --alias api -- sleep 60
on_network web default
bg_run --name web2 --alias api -- sleep 60
bg_run --name hidden --network other -- sleep 60
on_network web2 default
on_network hidden other
run --name asker -- sh -c '
d() { dig +short +tries=1 +time=3 "$@" @172.17.0.1 | tr "\n" " "; }
echo "web: $(d web)"
echo "web.lanyard.internal: $(d web.lanyard.internal)"
for i in 1 2 3 4 5 6; do echo "api: $(d api)"; done
echo "ptr: $(d -x 172.17.0.2)"
echo "host: $(d host.docker.internal) $(d host.lanyard.internal)"
echo "upstream: $(d some.example.test)"
echo "nx: $(dig +tries=1 +time=3 nothing @172.17.0.1 | grep -o "status: [A-Z]*")"
echo "nx-own: $(dig +tries=1 +time=3 nothing.lanyard.internal @172.17.0.1 | grep -o "status: [A-Z]*")"
echo "upstream-nx: $(dig +tries=1 +time=3 gone.invalid @172.17.0.1 | grep -o "status: [A-Z]*")"
echo "other-net: $(dig +tries=1 +time=3 hidden @172.17.0.1 | grep -o "status: [A-Z]*")"
echo "aaaa: $(dig +tries=1 +time=3 AAAA web @172.17.0.1 | grep -o "status: [A-Z]*") $(d AAAA web)"
echo "getent: $(getent hosts web)"
'
# hidden has a name: on its own network it resolves.
run --network other -- sh -c 'echo "same-net: $(dig +short +tries=1 +time=3 hidden @172.18.0.1)"
echo "aaaa-v4only: $(dig +tries=1 +time=3 AAAA hidden @172.18.0.1 | grep -o "status: [A-Z]*") $(dig +short +tries=1 +time=3 AAAA hidden @172.18.0.1)"'
"#,
    );
    assert_eq!(line(&out, "web:").trim(), "web: 172.17.0.2", "{out}");
    assert_eq!(
        line(&out, "web.lanyard.internal:").trim(),
        "web.lanyard.internal: 172.17.0.2",
        "{out}"
    );
    let firsts: std::collections::HashSet<&str> = out
        .lines()
        .filter(|l| l.starts_with("api: "))
        .map(|l| l.split_whitespace().nth(1).unwrap_or(""))
        .collect();
    assert_eq!(firsts.len(), 2, "round robin across the alias: {out}");
    assert!(line(&out, "ptr:").contains("web."), "{out}");
    let host: Vec<&str> = line(&out, "host:").split_whitespace().collect();
    assert_eq!(host, ["host:", "172.17.0.1", "172.17.0.1"], "{out}");
    assert_eq!(
        line(&out, "upstream:").trim(),
        "upstream: 192.0.2.7",
        "{out}"
    );
    assert!(line(&out, "nx:").contains("NXDOMAIN"), "{out}");
    assert!(line(&out, "nx-own:").contains("NXDOMAIN"), "{out}");
    assert!(line(&out, "upstream-nx:").contains("NXDOMAIN"), "{out}");
    assert!(
        line(&out, "other-net:").contains("NXDOMAIN"),
        "names stay in their network: {out}"
    );
    assert_eq!(
        line(&out, "same-net:").trim(),
        "same-net: 172.18.0.2",
        "{out}"
    );
    // On the dual-stack default network a name has its IPv6 address too...
    assert_eq!(
        line(&out, "aaaa:").trim(),
        "aaaa: status: NOERROR fd00:172:17::2",
        "{out}"
    );
    assert!(line(&out, "getent:").contains("fd00:172:17::2"), "{out}");
    // ...and on an IPv4-only network a name with no IPv6 address gets no
    // error and no answer.
    assert_eq!(
        line(&out, "aaaa-v4only:").trim(),
        "aaaa-v4only: status: NOERROR",
        "{out}"
    );
}

#[test]
fn dns_over_tcp_answers_names_and_what_udp_truncates() {
    // 36 containers share an alias: 36 A records do not fit in 512 bytes, so
    // the UDP answer is truncated and dig retries over TCP by itself.
    let out = run(
        As::Unprivileged,
        r#"
local_server dns dns 5353 127.0.0.1
for i in $(seq 1 36); do bg_run --name m$i --alias many -- sleep 90; done
on_network m36 default
i=0; until [ "$($B network inspect --socket $S default | grep -c '"Name": "m')" -ge 36 ]; do i=$((i+1)); [ $i -lt 300 ]; sleep 0.1; done
run --name asker -- sh -c '
echo "tcp-name: $(dig +tcp +short +tries=1 +time=3 m1 @172.17.0.1)"
echo "tcp-upstream: $(dig +tcp +short +tries=1 +time=3 some.example.test @172.17.0.1)"
echo "tcp-nx: $(dig +tcp +tries=1 +time=3 nothing @172.17.0.1 | grep -o "status: [A-Z]*")"
echo "udp-only: $(dig +notcp +ignore +tries=1 +time=3 many @172.17.0.1 | grep -o "flags: [a-z ]*")"
echo "fallback: $(dig +short +tries=1 +time=3 many @172.17.0.1 | wc -l)"
'
$B stats --socket $S --json | python3 -c 'import json,sys; n=json.load(sys.stdin)["dns"]; print("tcp-queries", n["tcp_queries"], "local", n["tcp_local_answers"], "forwarded", n["tcp_forwarded"])'
"#,
    );
    assert!(
        line(&out, "tcp-name:").starts_with("tcp-name: 172.17.0."),
        "{out}"
    );
    assert_eq!(
        line(&out, "tcp-upstream:").trim(),
        "tcp-upstream: 192.0.2.7",
        "{out}"
    );
    assert!(line(&out, "tcp-nx:").contains("NXDOMAIN"), "{out}");
    assert!(
        line(&out, "udp-only:").contains(" tc"),
        "UDP answer truncated: {out}"
    );
    assert_eq!(line(&out, "fallback:").trim(), "fallback: 36", "{out}");
    let l: Vec<u64> = line(&out, "tcp-queries")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    // m1, nothing and the fallback locally; some.example.test upstream.
    assert_eq!(l, [4, 3, 1], "{out}");
}

#[test]
fn dns_floods_and_garbage_are_counted_not_fatal() {
    let out = run(
        As::Me,
        r#"
bg_run --name web -- sleep 60
on_network web default
run --name flooder -- python3 -c '
import socket, struct, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
q = b"\x00\x01\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x03web\x00\x00\x01\x00\x01"
for i in range(3000):
    s.sendto(q, ("172.17.0.1", 53))
for junk in (b"", b"\xff" * 5, b"\x00\x01\x01\x00\x00\x01" + b"\x00" * 6 + b"\xc0\x0c", b"\x00" * 12 + b"\x3f" + b"a" * 10):
    s.sendto(junk, ("172.17.0.1", 53))
time.sleep(0.5)
print("flood sent")
'
run -- sh -c 'echo "after: $(dig +short +tries=2 +time=3 web @172.17.0.1)"'
$B stats --socket $S --json | python3 -c 'import json,sys; n=json.load(sys.stdin)["dns"]; print("limited", n["rate_limited"], "malformed", n["malformed"])'
"#,
    );
    assert!(out.contains("flood sent"), "{out}");
    assert_eq!(line(&out, "after:").trim(), "after: 172.17.0.2", "{out}");
    let l = line(&out, "limited ");
    let limited: u64 = l.split_whitespace().nth(1).unwrap().parse().unwrap();
    let malformed: u64 = l.split_whitespace().nth(3).unwrap().parse().unwrap();
    assert!(limited > 1000, "{l}");
    assert!(malformed >= 1, "{l}");
}

#[test]
fn dhcp_clients_get_leases_consistent_with_run() {
    let out = run(
        As::Me,
        r#"
# A "VM" behind a veth attached to the default network asks by DHCP.
behind_veth vh vc
V=$NS
$V ip link set vc up
ip link set vh up
$B attach --socket $S --network default vh > /dev/null
bg_run --name static -- sleep 60
on_network static default
cat > hook.sh <<'EOF'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev $interface
    ip addr add $ip/$mask dev $interface
    echo "lease $interface $ip/$mask router=$router dns=$dns mtu=$mtu";;
  deconfig) ip addr flush dev $interface;;
esac
EOF
chmod +x hook.sh
# It stays bound (no -q) so that SIGTERM makes it release (-R).
$V timeout 60 udhcpc -f -n -R -i vc -s $PWD/hook.sh > vm.out 2>/dev/null & VMC=$!; PIDS="$PIDS $VMC"
until_ok grep -q lease vm.out
grep lease vm.out
# The leased address works: the VM reaches its gateway. (This also puts
# the gateway in its ARP cache: udhcpc sends the release unicast and then
# flushes the address, which drops a release still waiting for ARP.)
$V ping -c 1 -W 5 172.17.0.1 > /dev/null && echo "vm reaches gateway"
# A container with an address from run asks too: it must be leased the
# address IPAM gave it (eth0's address before udhcpc touches it, and what
# `network inspect` says).
bg_run --name asker -- sh -c "echo \"asker eth0 from run: \$(ip -o -4 addr show eth0 | awk '{print \$4}')\"; while [ ! -e $PWD/ask ]; do sleep 0.1; done; timeout 20 udhcpc -f -q -n -i eth0 -s $PWD/hook.sh 2>/dev/null | grep lease; ip -br addr show eth0" > asker.out
on_network asker default
$B network inspect --socket $S default | python3 -c 'import json,sys; print("asker in inspect:", [c["IPv4Address"] for c in json.load(sys.stdin)[0]["Containers"].values() if c["Name"] == "asker"][0])'
touch ask
wait $CPID
cat asker.out
# The VM releases its lease; its address goes back to the pool.
kill $VMC
until_ok sh -c "$B stats --socket $S --json | grep -q '\"releases\": 1'"
run --name next -- ip -br addr show eth0
$B stats --socket $S --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["dhcp"]; print("dhcp", d["offers"], d["acks"], d["releases"])'
"#,
    );
    assert!(out.contains("vm reaches gateway"), "{out}");
    // static took .2 first, the VM gets the next free one.
    let vm = out
        .lines()
        .find(|l| l.starts_with("lease vc "))
        .expect("VM lease");
    assert!(
        vm.contains("172.17.0.3/16 router=172.17.0.1 dns=172.17.0.1 mtu=65520"),
        "{vm}"
    );
    // The container's lease is the address IPAM gave it: the one eth0 had
    // from run before udhcpc, and the one `network inspect` shows.
    let leased = line(&out, "lease eth0 ").split_whitespace().nth(2).unwrap();
    let from_run = line(&out, "asker eth0 from run: ")
        .trim_start_matches("asker eth0 from run: ")
        .trim();
    let inspected = line(&out, "asker in inspect: ")
        .trim_start_matches("asker in inspect: ")
        .trim();
    assert_eq!(from_run, inspected, "{out}");
    assert_eq!(leased, inspected, "the lease is IPAM's address: {out}");
    // static .2, the VM .3: the asker is .4.
    assert_eq!(inspected, "172.17.0.4/16", "{out}");
    // After the release, .3 is free again for the next container.
    let next = out.lines().rfind(|l| l.starts_with("eth0")).unwrap();
    assert!(next.contains("172.17.0.3/16"), "{out}");
    let counts = line(&out, "dhcp ");
    assert!(counts.ends_with(" 1"), "one release: {counts}");
}
