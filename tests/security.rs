//! What a hostile container must not reach, next to what it may, in the same
//! run. A container is root in its own namespaces: `hostile.py` writes
//! frames straight onto its eth0 (the gateway's MAC as destination, any
//! addresses inside) and reports what came back. Same topology as the egress
//! tests: the daemon in a host namespace made for the test, an outside host
//! (10.200.0.2) behind a veth; servers on the host's loopback stand for what
//! the host keeps to itself.

mod common;

use common::harness::*;
use common::scenario::*;

/// The body, with `hostile.py` written next to the daemon as `$H`.
fn run(who: As, config: &str, body: &str) -> String {
    scenario(who, config, &format!("{}\n{body}", hostile_prelude()))
}

const CONFIG: &str = "[dns]\nupstream = [\"127.0.0.1:5353\"]\n";

#[test]
fn the_hosts_loopback_is_never_reached_as_given() {
    let out = run(
        As::Unprivileged,
        CONFIG,
        &format!(
            r#"
# What the host keeps to itself: TCP and UDP servers on its loopback.
local_server lo sink 9004 127.0.0.1
local_server lou udp-echo 7001 127.0.0.1
# What a container may reach: the outside, and the host's own address.
server echo echo 9002
server uecho udp-echo 7000
local_server hostip echo 9005 10.200.0.1
bg_run --name rogue -- sh -c '
for d in 127.0.0.1 127.0.0.2 0.0.0.0 10.200.0.2 10.200.0.1; do
  for p in 9004 9002 9005; do python3 $0 tcp own $d $p; done
done
python3 $0 udp own 127.0.0.1 7001
python3 $0 udp own 0.0.0.0 7001
python3 $0 udp own 10.200.0.2 7000
python3 $0 icmp own 127.0.0.1
python3 $0 icmp own 10.200.0.2
echo rogue-done
sleep 30' $H > rogue.out 2>&1
until_ok grep -q rogue-done rogue.out
cat rogue.out
{DROPS}
# Allowed to reach the host's loopback: through the gateway's address
# only, never as given.
run --allow-host-loopback -- sh -c 'python3 $0 tcp own 172.17.0.1 9004; python3 $0 tcp own 127.0.0.1 9004; python3 $0 udp own 127.0.0.1 7001' $H
sleep 0.5
echo "loopback sink saw: $(grep -c '^sink' lo.out)"
"#
        ),
    );
    // Refused, as a refused connect: a RST from the address asked for.
    for d in ["127.0.0.1", "127.0.0.2", "0.0.0.0"] {
        assert_eq!(
            line(&out, &format!("tcp {d}:9004 ")),
            format!("tcp {d}:9004 rst"),
            "{out}"
        );
    }
    // Next to it, the same frames to what may be reached are answered.
    assert_eq!(
        line(&out, "tcp 10.200.0.2:9002 "),
        "tcp 10.200.0.2:9002 synack",
        "{out}"
    );
    assert_eq!(
        line(&out, "tcp 10.200.0.1:9005 "),
        "tcp 10.200.0.1:9005 synack",
        "the host's own address stays reachable: {out}"
    );
    // UDP and ICMP: administratively prohibited, while the outside answers.
    assert_eq!(
        line(&out, "udp 127.0.0.1:7001 "),
        "udp 127.0.0.1:7001 icmp 3/13",
        "{out}"
    );
    assert_eq!(
        line(&out, "udp 0.0.0.0:7001 "),
        "udp 0.0.0.0:7001 icmp 3/13",
        "{out}"
    );
    assert!(
        line(&out, "udp 10.200.0.2:7000 ").contains("reply hello"),
        "{out}"
    );
    assert_eq!(
        line(&out, "icmp 127.0.0.1 "),
        "icmp 127.0.0.1 icmp 3/13",
        "{out}"
    );
    assert_eq!(
        line(&out, "icmp 10.200.0.2 "),
        "icmp 10.200.0.2 reply",
        "{out}"
    );
    // Counted: three TCP destinations (each also tried on two other ports),
    // two UDP, one ICMP.
    assert!(count(&out, "drops ", "host_loopback") >= 12, "{out}");
    assert!(count(&out, "nat ", "loopback_refused") >= 12, "{out}");
    // With host loopback allowed: the gateway's address reaches the host's
    // loopback; 127.0.0.1 as given still does not.
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("tcp ")).collect();
    assert!(
        lines.contains(&"tcp 172.17.0.1:9004 synack"),
        "through the gateway: {out}"
    );
    assert_eq!(
        lines
            .iter()
            .filter(|l| **l == "tcp 127.0.0.1:9004 rst")
            .count(),
        2,
        "refused as given, with host loopback allowed too: {out}"
    );
    assert!(
        out.lines()
            .filter(|l| l.starts_with("udp 127.0.0.1:7001 "))
            .all(|l| l.ends_with("icmp 3/13")),
        "{out}"
    );
    // The loopback server saw exactly the one connection made through the
    // gateway's address.
    assert_eq!(
        line(&out, "loopback sink saw:"),
        "loopback sink saw: 1",
        "{out}"
    );
}

#[test]
fn an_address_less_source_may_only_ask_dhcp() {
    let out = run(
        As::Me,
        CONFIG,
        &format!(
            r#"
server echo echo 9002
server uecho udp-echo 7000
bg_run --name rogue -- sh -c '
python3 $0 tcp 0.0.0.0 10.200.0.2 9002
python3 $0 udp 0.0.0.0 10.200.0.2 7000
python3 $0 tcp own 10.200.0.2 9002
python3 $0 udp own 10.200.0.2 7000
echo rogue-done
sleep 30' $H > rogue.out 2>&1
until_ok grep -q rogue-done rogue.out
cat rogue.out
{DROPS}
"#
        ),
    );
    // From 0.0.0.0: dropped at the port, nothing comes back...
    assert_eq!(
        line(&out, "tcp 10.200.0.2:9002 "),
        "tcp 10.200.0.2:9002 nothing",
        "{out}"
    );
    assert_eq!(
        line(&out, "udp 10.200.0.2:7000 "),
        "udp 10.200.0.2:7000 nothing",
        "{out}"
    );
    // ...while the same packets from the container's own address are
    // answered (the second line of each).
    let tcp: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("tcp 10.200.0.2:9002 "))
        .collect();
    assert_eq!(
        tcp,
        ["tcp 10.200.0.2:9002 nothing", "tcp 10.200.0.2:9002 synack"],
        "{out}"
    );
    let udp: Vec<&str> = out
        .lines()
        .filter(|l| l.starts_with("udp 10.200.0.2:7000 "))
        .collect();
    assert_eq!(udp.len(), 2, "{out}");
    assert!(udp[1].contains("reply hello"), "{out}");
    assert_eq!(count(&out, "drops ", "spoofed_src_ip"), 2, "{out}");
}

#[test]
fn dns_answers_cannot_be_forged() {
    let out = run(
        As::Unprivileged,
        CONFIG,
        r#"
timeout 150 python3 $H forger 5353 > forger.out 2>&1 & PIDS="$PIDS $!"
waitfor forger.out
run -- python3 -c '
import socket, struct
ok = 0
for i in range(20):
    try:
        a = socket.gethostbyname(f"n{i}.example.test")
    except OSError as e:
        a = f"error {e}"
    print("answer", a)
'
cat forger.out
$B stats --socket $S --json | python3 -c 'import json,sys; n=json.load(sys.stdin)["dns"]; print("refused", n["answers_refused"], "replies", n["replies"])'
"#,
    );
    let answers: Vec<&str> = out.lines().filter(|l| l.starts_with("answer ")).collect();
    assert_eq!(answers.len(), 20, "{out}");
    // Every forged answer (a wrong id, another question, another port) was
    // refused; only the real one got through.
    assert!(answers.iter().all(|a| *a == "answer 192.0.2.7"), "{out}");
    let queries: Vec<(u16, u16)> = out
        .lines()
        .filter_map(|l| l.strip_prefix("query "))
        .map(|l| {
            let mut w = l.split_whitespace();
            (
                w.next().unwrap().parse().unwrap(),
                w.next().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert!(queries.len() >= 20, "{out}");
    // A source port per query (the kernel picks them at random), and ids
    // that do not step by a constant.
    let ports: std::collections::BTreeSet<u16> = queries.iter().map(|q| q.0).collect();
    assert!(
        ports.len() >= queries.len() - 1,
        "ports reused: {queries:?}"
    );
    let steps: std::collections::BTreeSet<u16> = queries
        .windows(2)
        .map(|w| w[1].1.wrapping_sub(w[0].1))
        .collect();
    assert!(steps.len() > queries.len() / 2, "ids step: {queries:?}");
    let refused: u64 = line(&out, "refused ")
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    // Three forgeries per query; one of them (from the liar's port) comes
    // from an address that is no upstream.
    assert!(refused >= 3 * 20, "{out}");
}

#[test]
fn one_container_cannot_hold_every_dns_over_tcp_slot() {
    let out = run(
        As::Me,
        CONFIG,
        r#"
local_server dns dns 5353 127.0.0.1
bg_run --name web -- sleep 60
until_ok sh -c "$B network inspect --socket $S default | grep -q '\"web\"'"
bg_run --name hog -- python3 $H dns-tcp-hold 64 40
HOG=$CPID
sleep 3
run --name polite -- sh -c 'echo "polite: $(dig +tcp +short +tries=1 +time=5 web @172.17.0.1) $(dig +tcp +short +tries=1 +time=5 some.example.test @172.17.0.1)"'
wait $HOG
$B stats --socket $S --json | python3 -c 'import json,sys; n=json.load(sys.stdin)["dns"]; print("tcp", "per_client", n["tcp_refused_per_client"], "timed_out", n["tcp_timed_out"])'
"#,
    );
    // Another container is served while the hog trickles.
    assert_eq!(
        line(&out, "polite:").trim(),
        "polite: 172.17.0.2 192.0.2.7",
        "{out}"
    );
    // The hog got 8 slots at most; the rest were closed at once, and the
    // ones it held were cut at the deadline, long before its 40 s.
    let held = line(&out, "held ");
    assert!(held.ends_with("closed 64"), "every trickler closed: {out}");
    let w: Vec<&str> = line(&out, "tcp per_client").split_whitespace().collect();
    let per_client: u64 = w[2].parse().unwrap();
    let timed_out: u64 = w[4].parse().unwrap();
    assert!(per_client >= 56, "{out}");
    assert!(timed_out >= 1, "{out}");
}

#[test]
fn a_dhcp_discover_decline_loop_cannot_drain_the_pool() {
    let out = run(
        As::Me,
        "[dhcp]\nmax_leases = 16\n[dns]\nupstream = [\"127.0.0.1:5353\"]\n",
        r#"
$B network create --socket $S small --subnet 10.60.0.0/27 > /dev/null
# A "VM" behind a veth attached to the network, with fresh MACs each time.
behind_veth vh vc
V=$NS
$V ip link set vc up
ip link set vh up
$B attach --socket $S --network small vh > /dev/null
$V timeout 200 python3 $H dhcp-churn vc 40
$B stats --socket $S --json | python3 -c 'import json,sys; d=json.load(sys.stdin)["dhcp"]; print("dhcp offers", d["offers"], "declines", d["declines"], "refused", d["refused_full"])'
# A container still gets an address on the network.
run --network small -- ip -br addr show eth0
"#,
    );
    // 16 offers (max_leases), each declined; the other 24 refused. (The
    // network has 29 addresses: without the bound the loop takes them all.)
    assert_eq!(line(&out, "churn "), "churn offers 16 declined 16", "{out}");
    let w: Vec<&str> = line(&out, "dhcp offers").split_whitespace().collect();
    assert_eq!((w[2], w[4]), ("16", "16"), "{out}");
    assert_eq!(w[6], "24", "{out}");
    // The pool was not drained: run got the next free address.
    assert!(line(&out, "eth0").contains("10.60.0.18/27"), "{out}");
}

/// RA guard: a container announcing itself as a router (RA, behind
/// extension headers or as a fragment, a Redirect) or claiming another MAC
/// in Neighbor Discovery is dropped at its port, so a neighbour whose
/// kernel takes RAs (`accept_ra = 1`, the default in a container) gets
/// no address from it; next to that, the same two containers
/// reach each other over link-local IPv6 (NDP and echo with their own MACs
/// pass).
#[test]
fn a_container_cannot_be_its_neighbours_router() {
    let out = run(
        As::Unprivileged,
        CONFIG,
        &format!(
            r#"
rm -f victim.ll ra-sent
bg_run --name victim -- sh -c '
# A SLAAC client (lanyard run configures a static address and turns RAs
# off; a stock client takes them): it solicits when the link comes up.
sysctl -qw net.ipv6.conf.eth0.accept_ra=1 net.ipv6.conf.eth0.autoconf=1
ip link set eth0 down; ip link set eth0 up
sysctl -n net.ipv6.conf.eth0.accept_ra net.ipv6.conf.eth0.forwarding | tr "\n" " " | sed "s/^/victim-sysctl: /"; echo
i=0; until ip -6 addr show dev eth0 scope link | grep -q "inet6 fe80" && ! ip -6 addr show dev eth0 | grep -q tentative; do
  i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done
ip -6 addr show dev eth0 scope link | sed -n "s/.*inet6 \(fe80[^/]*\).*/\1/p" > victim.ll.tmp && mv victim.ll.tmp victim.ll
i=0; until [ -e ra-sent ]; do i=$((i+1)); [ $i -lt 300 ] || break; sleep 0.1; done
sleep 2
echo "victim-global: $(ip -6 addr show dev eth0 scope global | grep -c "inet6 2001:db8")"
echo "victim-gateway-slaac: $(ip -6 addr show dev eth0 scope global | grep -c "inet6 fd00:172:17:0:42:acff:fe11:")"
echo victim-done
sleep 30' > victim.out 2>&1
until_ok test -s victim.ll
bg_run --name rogue -- sh -c '
i=0; until ip -6 addr show dev eth0 scope link | grep -q "inet6 fe80" && ! ip -6 addr show dev eth0 | grep -q tentative; do
  i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done
ping -6 -c 2 -W 2 $(cat victim.ll)%eth0 >/dev/null 2>&1 && echo "rogue-ping6: ok" || echo "rogue-ping6: failed"
python3 $0 rogue-router $(cat victim.ll)
touch ra-sent
sleep 30' $H > rogue.out 2>&1
until_ok grep -q victim-done victim.out
cat victim.out rogue.out
{DROPS}
"#
        ),
    );
    // The victim would take an RA: its kernel accepts them...
    assert_eq!(
        line(&out, "victim-sysctl:").trim(),
        "victim-sysctl: 1 0",
        "{out}"
    );
    // ...and the two reach each other over link-local IPv6...
    assert_eq!(line(&out, "rogue-ping6:"), "rogue-ping6: ok", "{out}");
    assert_eq!(
        line(&out, "rogue-router sent"),
        "rogue-router sent 5",
        "{out}"
    );
    // ...but none of the rogue's RAs reached it: no SLAAC address from
    // 2001:db8:1-3::/64 (without the guard it takes two: the plain RA's
    // and the one behind Destination Options; its kernel ignores the
    // fragmented one itself).
    assert_eq!(line(&out, "victim-global:"), "victim-global: 0", "{out}");
    // ...while the gateway's own RA, answering the victim's solicitation,
    // configured its SLAAC address: it does take RAs, just not these.
    assert_eq!(
        line(&out, "victim-gateway-slaac:"),
        "victim-gateway-slaac: 1",
        "{out}"
    );
    // Three RAs and the Redirect, then the NA naming another MAC.
    assert_eq!(count(&out, "drops ", "rogue_router"), 4, "{out}");
    assert_eq!(count(&out, "drops ", "spoofed_nd"), 1, "{out}");
}
