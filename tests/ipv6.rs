//! IPv6 end to end, on the default network (dual stack: 172.17.0.0/16 and
//! fd00:172:17::/64). Same topology as the egress tests, with IPv6 on the
//! veth too: the daemon's namespace is fd99::1, the outside fd99::2.
//! Real peers: the containers' kernels (static addresses, SLAAC from the
//! gateway's Router Advertisement), ping -6, python sockets over AF_INET6;
//! and a hostile container that spoofs a neighbour's IPv6 address.

mod common;

use common::harness::*;
use common::scenario::*;

/// The body after the hostile prelude (`$H`, `until_ok`, `bg_run`) and
/// IPv6 on the veth.
fn run(who: As, body: &str) -> String {
    let v6 = "ip -6 addr add fd99::1/64 dev h0 nodad\n\
              $O ip -6 addr add fd99::2/64 dev o0 nodad\n\
              until_ok $O ping -6 -c1 -W1 fd99::1\n";
    scenario(
        who,
        "[dns]\nupstream = [\"127.0.0.1:5353\"]\n",
        &format!("{}{v6}\n{body}", hostile_prelude()),
    )
}

#[test]
fn containers_speak_ipv6_to_each_other_the_gateway_and_the_outside() {
    let out = run(
        As::Unprivileged,
        r#"
server src source 9001 8000000 ::
server half halfclose 9002 ::
server uecho udp-echo 7000 ::
local_server lo6 halfclose 9004 ::1
bg_run --name a -- sh -c 'echo "a-addr: $(ip -6 -o addr show dev eth0 scope global | awk "{print \$4}")"; sleep 60' > a.out 2>&1
until_ok grep -q a-addr a.out
run --name b -- sh -c '
echo "b-addr: $(ip -6 -o addr show dev eth0 scope global | awk "{print \$4}")"
echo "b-route: $(ip -6 route show default | cut -d" " -f1-5)"
ping -6 -c1 -W3 fd00:172:17::1 >/dev/null && echo "b-ping-gw: ok" || echo "b-ping-gw: failed"
ping -6 -c1 -W3 fd00:172:17::2 >/dev/null && echo "b-ping-a: ok" || echo "b-ping-a: failed"
ping -6 -c1 -W3 fe80::42:acff:fe11:2%eth0 >/dev/null && echo "b-ping-a-ll: ok" || echo "b-ping-a-ll: failed"
ping -6 -c1 -W3 fd99::2 >/dev/null && echo "b-ping-out: ok" || echo "b-ping-out: failed"
python3 $0 recv fd99::2 9001
python3 $0 halfclose-client fd99::2 9002 3000000
python3 $0 udp fd99::2 7000
python3 $0 halfclose-client fd00:172:17::1 9004 10 2>&1 | tail -1 | sed "s/^/b-loopback: /"
# Nowhere to go (the host has no route to 2001:db8::/32): told at once.
python3 -c "
import socket, time
t = time.time()
try:
    socket.create_connection((\"2001:db8::1\", 80), timeout=10)
    r = \"connected?!\"
except OSError as e:
    r = type(e).__name__
print(\"b-no-route:\", r, \"fast\" if time.time() - t < 3 else \"slow\")
"
' $P
run --allow-host-loopback -- sh -c 'python3 $0 halfclose-client fd00:172:17::1 9004 10 | sed "s/^/allowed-loopback: /"' $P
$B network inspect default --socket $S | python3 -c '
import json, sys
n = json.load(sys.stdin)[0]
print("inspect", n["EnableIPv6"], [c["Subnet"] for c in n["IPAM"]["Config"]], sorted(c["IPv6Address"] for c in n["Containers"].values()))
'
cat a.out src.out
"#,
    );
    assert_eq!(line(&out, "a-addr:"), "a-addr: fd00:172:17::2/64", "{out}");
    assert_eq!(line(&out, "b-addr:"), "b-addr: fd00:172:17::3/64", "{out}");
    assert_eq!(
        line(&out, "b-route:"),
        "b-route: default via fd00:172:17::1 dev eth0",
        "{out}"
    );
    for what in ["gw", "a", "a-ll", "out"] {
        assert_eq!(
            line(&out, &format!("b-ping-{what}:")),
            format!("b-ping-{what}: ok"),
            "{out}"
        );
    }
    // 8 MB from the outside (GSO super-frames toward the container) and 3 MB
    // to it, byte for byte; the server saw the container's NATed source.
    let source = line(&out, "source 8000000");
    let recv = line(&out, "recv 8000000");
    assert_eq!(
        source.split_whitespace().nth(2),
        recv.split_whitespace().nth(2),
        "{out}"
    );
    assert_eq!(line(&out, "reply got"), "reply got 3000000", "{out}");
    assert_eq!(line(&out, "udp echo"), "udp echo hello", "{out}");
    assert_eq!(line(&out, "udp big"), "udp big 8000", "{out}");
    assert_eq!(
        line(&out, "udp closed port"),
        "udp closed port refused",
        "{out}"
    );
    // The host's [::1] through the gateway's IPv6 address: refused without
    // the allowance, reached with it.
    assert!(
        line(&out, "b-loopback:").contains("Connection refused"),
        "{out}"
    );
    assert_eq!(
        line(&out, "allowed-loopback:"),
        "allowed-loopback: reply got 10",
        "{out}"
    );
    assert_eq!(
        line(&out, "b-no-route:"),
        "b-no-route: OSError fast",
        "{out}"
    );
    assert_eq!(
        line(&out, "inspect"),
        "inspect True ['172.17.0.0/16', 'fd00:172:17::/64'] ['fd00:172:17::2/64']",
        "{out}"
    );
}

#[test]
fn slaac_clients_configure_themselves_and_no_container_takes_anothers_address() {
    let out = run(
        As::Unprivileged,
        &format!(
            r#"
bg_run --name a -- sh -c 'echo a-up; sleep 60' > a.out 2>&1
until_ok grep -q a-up a.out
# A stock SLAAC client: the kernel's own autoconfiguration, asked for by
# Router Solicitation when the link comes up.
run --name slaac -- sh -c '
sysctl -qw net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.autoconf=1
ip link set eth0 down; ip link set eth0 up
i=0; until ip -6 addr show dev eth0 scope global | grep -q "inet6 fd00:172:17:0:" && ip -6 route show default | grep -q fe80; do
  i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done
echo "slaac-addr: $(ip -6 -o addr show dev eth0 scope global | awk "{{print \$4}}")"
echo "slaac-route: $(ip -6 route show default | cut -d" " -f1-5)"
echo "slaac-mtu: $(cat /proc/sys/net/ipv6/conf/eth0/mtu)"
ping -6 -c1 -W3 fd00:172:17::1 >/dev/null && echo "slaac-ping-gw: ok" || echo "slaac-ping-gw: failed"
'
# A hostile container: echo requests from its own address and from a's,
# and a Neighbor Advertisement claiming a's address.
bg_run --name rogue -- sh -c '
i=0; until ip -6 addr show dev eth0 scope link | grep -q fe80 && ! ip -6 addr show dev eth0 | grep -q tentative; do
  i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done
python3 $0 spoof6 $(ip -6 -o addr show dev eth0 scope global | awk "{{print \$4}}" | cut -d/ -f1) fd00:172:17::2 fd00:172:17::1
echo rogue-done; sleep 30' $H > rogue.out 2>&1
until_ok grep -q rogue-done rogue.out
cat rogue.out
# While the rogue's port is still there.
{DROPS}
"#
        ),
    );
    // The network's /64 and the MAC's EUI-64 (02:42:ac:11:00:03, so
    // 0042:acff:fe11:0003), the gateway's link-local as default router, the
    // advertised MTU (the network's).
    assert_eq!(
        line(&out, "slaac-addr:"),
        "slaac-addr: fd00:172:17:0:42:acff:fe11:3/64",
        "{out}"
    );
    assert_eq!(
        line(&out, "slaac-route:"),
        "slaac-route: default via fe80::42:acff:fe11:1 dev eth0",
        "{out}"
    );
    assert_eq!(line(&out, "slaac-mtu:"), "slaac-mtu: 65520", "{out}");
    assert_eq!(line(&out, "slaac-ping-gw:"), "slaac-ping-gw: ok", "{out}");
    // The gateway answers the rogue's own address, never a's.
    assert_eq!(line(&out, "spoof6"), "spoof6 own=1 other=0", "{out}");
    assert!(count(&out, "drops", "spoofed_src_ip") >= 1, "{out}");
    assert!(count(&out, "drops", "spoofed_nd") >= 1, "{out}");
}

#[test]
fn ipv4_only_networks_assign_no_ipv6() {
    let out = run(
        As::Unprivileged,
        r#"
$B network create v4only --ipv6=false --socket $S >/dev/null
$B network create dual --socket $S >/dev/null
$B network create bad --subnet6 fd00::/200 --socket $S 2>&1 | sed "s/^/bad: /" || true
run --network v4only -- sh -c 'echo "v4only: $(ip -6 -o addr show dev eth0 scope global | wc -l)"'
run --network dual -- sh -c 'echo "dual: $(ip -6 -o addr show dev eth0 scope global | awk "{print \$4}")"'
# The address went back with the container: the next one gets it again.
run --network dual -- sh -c 'echo "dual-again: $(ip -6 -o addr show dev eth0 scope global | awk "{print \$4}")"'
run --network dual --ip6 fd00:172:19::99 -- sh -c 'echo "dual-static: $(ip -6 -o addr show dev eth0 scope global | awk "{print \$4}")"'
run --network v4only --ip6 fd00:172:18::9 -- true 2>&1 | sed "s/^/ip6-on-v4only: /" || true
"#,
    );
    assert_eq!(line(&out, "v4only:"), "v4only: 0", "{out}");
    // The second network from the pools: 172.18.0.0/16 and fd00:172:18::/64
    // (v4only took 172.18 — so dual is 172.19 and fd00:172:19::/64).
    assert_eq!(line(&out, "dual:"), "dual: fd00:172:19::2/64", "{out}");
    assert_eq!(
        line(&out, "dual-again:"),
        "dual-again: fd00:172:19::2/64",
        "{out}"
    );
    assert_eq!(
        line(&out, "dual-static:"),
        "dual-static: fd00:172:19::99/64",
        "{out}"
    );
    assert!(line(&out, "bad:").contains("--subnet6"), "{out}");
    assert!(line(&out, "ip6-on-v4only:").contains("--ip6"), "{out}");
}

#[test]
fn published_ports_take_ipv6_clients_as_themselves() {
    let out = run(
        As::Unprivileged,
        r#"
bg_run --name web -p 8080:9000 -p 8081:9001/udp -p '[::1]:8082:9000' -- sh -c 'python3 $0 whoami 9000 :: & python3 $0 udp-whoami 9001 :: & sleep 60' $P > web.out 2>&1
until_ok sh -c 'test "$(grep -o ready web.out | wc -l)" -ge 2' || cat web.out
# A service that listens on IPv4 only, in a dual-stack container.
bg_run --name old -p 8090:9000 -- python3 $P whoami 9000 > old.out 2>&1
until_ok grep -q ready old.out
ask() { python3 $P ask "$@" 2>&1 | tail -1; }
echo "outside-v6: $($O python3 $P ask fd99::1 8080 2>&1 | tail -1)"
echo "outside-v4: $($O python3 $P ask 10.200.0.1 8080 2>&1 | tail -1)"
echo "host-lo6: $(ask ::1 8080)"
echo "host-lo4: $(ask 127.0.0.1 8080)"
echo "udp-outside-v6: $($O python3 $P udp-ask fd99::1 8081 2>&1 | tail -1)"
echo "lo-only-lo6: $(ask ::1 8082)"
echo "lo-only-outside: $($O python3 $P ask fd99::1 8082 2>&1 | tail -1)"
echo "v4-only-service-outside-v6: $($O python3 $P ask fd99::1 8090 2>&1 | tail -1)"
echo "v4-only-service-outside-v4: $($O python3 $P ask 10.200.0.1 8090 2>&1 | tail -1)"
"#,
    );
    let peer = |k: &str| {
        let l = line(&out, k);
        let a = l.split_whitespace().nth(2).unwrap_or("");
        a[..a.rfind(':').unwrap_or(0)].to_string()
    };
    // An IPv6 client over IPv6, as itself; an IPv4 one as itself (the
    // container's dual-stack socket shows it IPv4-mapped).
    assert_eq!(peer("outside-v6:"), "fd99::2", "{out}");
    assert_eq!(peer("outside-v4:"), "::ffff:10.200.0.2", "{out}");
    // The host's loopback, either family, as the gateway of that family.
    assert_eq!(peer("host-lo6:"), "fd00:172:17::1", "{out}");
    assert_eq!(peer("host-lo4:"), "::ffff:172.17.0.1", "{out}");
    assert_eq!(peer("udp-outside-v6:"), "fd99::2", "{out}");
    // -p [::1]:8082:80 listens on the host's IPv6 loopback only.
    assert_eq!(peer("lo-only-lo6:"), "fd00:172:17::1", "{out}");
    assert!(line(&out, "lo-only-outside:").contains("refused"), "{out}");
    // An IPv4-only service is still reached by an IPv6 client: refused over
    // IPv6, the connection is opened again over IPv4 with the client shown
    // as the gateway; IPv4 clients as themselves.
    assert_eq!(peer("v4-only-service-outside-v6:"), "172.17.0.1", "{out}");
    assert_eq!(peer("v4-only-service-outside-v4:"), "10.200.0.2", "{out}");
}

#[test]
fn the_hosts_ipv6_loopback_is_never_reached_as_given() {
    let out = run(
        As::Unprivileged,
        r#"
# What the host keeps to itself, on [::1] and 127.0.0.1; what a container
# may reach: the outside, and the host's own address.
local_server lo6 sink 9004 ::1
local_server lo4 sink 9004 127.0.0.1
local_server lou6 udp-echo 7001 ::1
local_server own6 sink 9005 fd99::1
server echo6 echo 9002 fd99::2
server uecho6 udp-echo 7000 fd99::2
bg_run --name rogue -- sh -c '
i=0; until ip -6 addr show dev eth0 scope link | grep -q fe80 && ! ip -6 addr show dev eth0 | grep -q tentative; do
  i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done
me=$(ip -6 -o addr show dev eth0 scope global | awk "{print \$4}" | cut -d/ -f1)
for d in ::1 :: ::ffff:127.0.0.1 ::127.0.0.1 fd99::2 fd99::1; do
  for p in 9004 9002 9005; do python3 $0 tcp6 $me $d $p; done
done
python3 $0 udp6 $me ::1 7001
python3 $0 udp6 $me ::ffff:127.0.0.1 7001
python3 $0 udp6 $me fd99::2 7000
echo rogue-done
sleep 30' $H > rogue.out 2>&1
i=0; until grep -q rogue-done rogue.out; do i=$((i+1)); [ $i -lt 600 ] || { cat rogue.out; exit 1; }; sleep 0.1; done
cat rogue.out
$B stats --socket $S --json | python3 -c 'import json,sys; print("nat loopback_refused=%d" % json.load(sys.stdin)["nat"]["loopback_refused"])'
"#,
    );
    // Nothing of the host's loopback, in any spelling, on any port: reset at
    // once (TCP) or administratively prohibited (UDP, ICMPv6 1/1).
    for d in ["::1", "::", "::ffff:127.0.0.1", "::127.0.0.1"] {
        for p in [9004, 9002, 9005] {
            assert_eq!(
                line(&out, &format!("tcp6 [{d}]:{p} ")),
                format!("tcp6 [{d}]:{p} rst"),
                "{out}"
            );
        }
    }
    assert_eq!(
        line(&out, "udp6 [::1]:7001"),
        "udp6 [::1]:7001 icmp6 1/1",
        "{out}"
    );
    assert_eq!(
        line(&out, "udp6 [::ffff:127.0.0.1]:7001"),
        "udp6 [::ffff:127.0.0.1]:7001 icmp6 1/1",
        "{out}"
    );
    // ...while the outside and the host's own address are reached.
    assert_eq!(
        line(&out, "tcp6 [fd99::2]:9002"),
        "tcp6 [fd99::2]:9002 synack",
        "{out}"
    );
    assert_eq!(
        line(&out, "tcp6 [fd99::1]:9005"),
        "tcp6 [fd99::1]:9005 synack",
        "{out}"
    );
    assert_eq!(
        line(&out, "udp6 [fd99::2]:7000"),
        "udp6 [fd99::2]:7000 reply",
        "{out}"
    );
    assert!(count(&out, "nat", "loopback_refused") >= 14, "{out}");
}

#[test]
fn the_embedded_dns_answers_aaaa_and_over_ipv6() {
    // The scenario's config forwards to 127.0.0.1:5353: a fake upstream on
    // the host's loopback that answers A 192.0.2.7 for every name.
    let out = run(
        As::Unprivileged,
        r#"
local_server up dns 5353 127.0.0.1
bg_run --name web --alias www -- sh -c 'echo up; sleep 60' > web.out 2>&1
until_ok grep -q up web.out
run --name client -- sh -c '
d() { dig +short +tries=1 +time=3 "$@" | tr "\n" " "; }
echo "aaaa-v4: $(d AAAA web @172.17.0.1)"
echo "aaaa-v6: $(d AAAA web @fd00:172:17::1)"
echo "a-v6: $(d A www @fd00:172:17::1)"
echo "ptr6: $(d -x fd00:172:17::2 @fd00:172:17::1)"
echo "gw6: $(d AAAA host.docker.internal @fd00:172:17::1)"
echo "tcp-v6: $(d +tcp AAAA web @fd00:172:17::1)"
echo "forwarded-v6: $(d A example.org @fd00:172:17::1)"
echo "hosts: $(grep -c fd00:172:17 /etc/hosts)"
'
"#,
    );
    assert_eq!(
        line(&out, "aaaa-v4:").trim(),
        "aaaa-v4: fd00:172:17::2",
        "{out}"
    );
    assert_eq!(
        line(&out, "aaaa-v6:").trim(),
        "aaaa-v6: fd00:172:17::2",
        "{out}"
    );
    assert_eq!(line(&out, "a-v6:").trim(), "a-v6: 172.17.0.2", "{out}");
    assert_eq!(line(&out, "ptr6:").trim(), "ptr6: web.", "{out}");
    assert_eq!(line(&out, "gw6:").trim(), "gw6: fd00:172:17::1", "{out}");
    assert_eq!(
        line(&out, "tcp-v6:").trim(),
        "tcp-v6: fd00:172:17::2",
        "{out}"
    );
    assert_eq!(
        line(&out, "forwarded-v6:").trim(),
        "forwarded-v6: 192.0.2.7",
        "{out}"
    );
    assert_eq!(line(&out, "hosts:"), "hosts: 1", "{out}");
}
