//! The data path on several threads (`[dataplane] threads = 2`): containers
//! land on different shards and still reach each other (frames switched by
//! the shard that read them, straight to the other shard's TAP), the
//! gateway, the outside through NAT, published ports and DNS names; a MAC
//! learned behind an uplink on one shard is known to the other; ports
//! leave every shard. Same topology as the egress tests.

mod common;

use common::harness::*;
use common::scenario::*;

const CONFIG: &str = "[dataplane]\nthreads = 2\n";

const HELPERS: &str = r#"
until_ok() { i=0; until "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 150 ] || { echo "never: $*"; return 1; }; sleep 0.1; done; }
bg_run() { timeout 120 $B run --socket $S "$@" & CPID=$!; PIDS="$PIDS $CPID"; }
on_network() { until_ok sh -c "$B network inspect --socket $S default | grep -q '\"Name\": \"$1\"'"; }
# shard_of NAME: the shard that reads NAME's port.
shard_of() { $B stats --socket $S --json | python3 -c 'import json,sys; print([p["shard"] for p in json.load(sys.stdin)["ports"] if p["name"]==sys.argv[1]][0])' "$1"; }
"#;

fn run(who: As, body: &str) -> String {
    scenario(who, CONFIG, &format!("{HELPERS}\n{body}"))
}

fn sha(l: &str) -> (&str, &str) {
    let w: Vec<&str> = l.split_whitespace().collect();
    (w[1], w[2])
}

#[test]
fn containers_on_two_shards_reach_each_other_the_gateway_and_the_outside() {
    let out = run(
        As::Unprivileged,
        r#"
server sink sink 9000
bg_run --name a -p 8080:80 -- python3 $P whoami 80
on_network a
bg_run --name b -- python3 $P sink 7000
on_network b
echo "shards: $(shard_of a) $(shard_of b)"
until_ok python3 $P ask 127.0.0.1 8080
run --name c -- sh -c '
ping -c 2 -W 5 172.17.0.1 >/dev/null && echo "gw ok"
ping -c 2 -W 5 a >/dev/null && echo "a ok"
ping -c 2 -W 5 b >/dev/null && echo "b ok"
echo "ask a: $(python3 '$P' ask a 80)"
python3 '$P' send b 7000 20000000
python3 '$P' send 10.200.0.2 9000 20000000
'
echo "host asks a: $(python3 $P ask 127.0.0.1 8080)"
sleep 0.5
cat sink.out
$B stats --socket $S --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
print("threads", v["dataplane_threads"])
for p in v["ports"]:
    c = p["counters"]
    print("port", p["name"], "rx", c["rx_packets"], "tx", c["tx_packets"])
'
"#,
    );
    let shards: Vec<&str> = line(&out, "shards:").split_whitespace().collect();
    assert_ne!(shards[1], shards[2], "a and b on different shards: {out}");
    assert!(out.contains("gw ok"), "{out}");
    assert!(out.contains("a ok"), "{out}");
    assert!(out.contains("b ok"), "{out}");
    assert!(line(&out, "ask a:").contains("peer 172.17.0.4:"), "{out}");
    assert!(
        line(&out, "host asks a:").contains("peer 172.17.0.1:"),
        "{out}"
    );
    let sent: Vec<&str> = out.lines().filter(|l| l.starts_with("sent ")).collect();
    assert_eq!(sent.len(), 2, "{out}");
    let sinks: Vec<&str> = out.lines().filter(|l| l.starts_with("sink ")).collect();
    // The container-to-container transfer, then the one through NAT.
    let to_b = sinks
        .iter()
        .find(|l| l.ends_with("from 172.17.0.4"))
        .unwrap_or_else(|| panic!("b's sink line: {out}"));
    assert_eq!(sha(sent[0]), sha(to_b), "{out}");
    let outside = sinks
        .iter()
        .find(|l| l.ends_with("from 10.200.0.1"))
        .unwrap_or_else(|| panic!("outside sink line: {out}"));
    assert_eq!(sha(sent[1]), sha(outside), "{out}");
    assert_eq!(line(&out, "threads").trim(), "threads 2", "{out}");
    for name in ["a", "b"] {
        let l = line(&out, &format!("port {name} "));
        let n: Vec<u64> = l
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(n[0] > 0 && n[1] > 0, "counters merged: {l}");
    }
}

#[test]
fn a_mac_learned_on_one_shard_is_known_to_the_other() {
    // An uplink (a veth's end, over AF_PACKET) with a host behind it: its
    // MAC is learned by the shard that reads the uplink. A container on the
    // other shard sends it 300 datagrams: they must go to the uplink alone
    // (unicast), not be flooded to the idle containers a and b.
    let out = run(
        As::Unprivileged,
        r#"
behind_veth vh vc
V=$NS
$V ip link set vc address 02:00:00:00:00:c8
$V ip addr add 172.17.0.200/16 dev vc
$V ip link set vc up
ip link set vh up
$B attach --socket $S --network default vh
$V ping -c 1 -W 5 172.17.0.1 > /dev/null
bg_run --name a -- sleep 60
on_network a
bg_run --name b -- sleep 60
on_network b
GO=$PWD/go
# c resolves the host's MAC first (a burst to an unresolved neighbour is
# mostly dropped by c's own kernel), then sends, paced so the uplink's
# packet socket (no qdisc: PACKET_QDISC_BYPASS) never runs out of buffer.
bg_run --name c -- sh -c 'while [ ! -e '$GO' ]; do sleep 0.1; done; ping -c 1 -W 5 172.17.0.200 > /dev/null; python3 -c "
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(300):
    s.sendto(b\"x\" * 100, (\"172.17.0.200\", 9))
    if i % 10 == 9:
        time.sleep(0.002)
"; echo c-sent > '$GO'.done'
on_network c
echo "shards: $(shard_of vh) $(shard_of c)"
tx() { $B stats --socket $S --json | python3 -c 'import json,sys; print(" ".join(str(p["counters"]["tx_packets"]) for p in json.load(sys.stdin)["ports"] if p["name"] in ("a","b")))'; }
BEFORE=$(tx)
touch $GO
until_ok test -e $GO.done
sleep 0.3
echo "tx a b: $BEFORE / $(tx)"
$B fdb --socket $S --json | python3 -c 'import json,sys; v=json.load(sys.stdin); print("fdb vc:", [r["port_name"] for n in v for r in n["fdb"] if r["mac"]=="02:00:00:00:00:c8"])'
$B stats --socket $S --json | python3 -c 'import json,sys; print("sync dropped", json.load(sys.stdin)["fdb_sync_dropped"])'
$B stats --socket $S --json | python3 -c 'import json,sys; print("uplink tx", [p["counters"]["tx_packets"] for p in json.load(sys.stdin)["ports"] if p["name"]=="vh"][0])'
$B detach --socket $S vh
$B stats --socket $S --json | python3 -c 'import json,sys; print("after detach", [p["name"] for p in json.load(sys.stdin)["ports"]])'
"#,
    );
    let shards: Vec<&str> = line(&out, "shards:").split_whitespace().collect();
    assert_ne!(shards[1], shards[2], "uplink and sender apart: {out}");
    let counts: Vec<i64> = line(&out, "tx a b:")
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert_eq!(counts.len(), 4, "{out}");
    for (before, after) in [(counts[0], counts[2]), (counts[1], counts[3])] {
        assert!(
            after - before < 50,
            "datagrams flooded to idle containers: {out}"
        );
    }
    let uplink: u64 = line(&out, "uplink tx")
        .split_whitespace()
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert!(uplink >= 300, "{out}");
    assert_eq!(line(&out, "fdb vc:").trim(), "fdb vc: ['vh']", "{out}");
    assert_eq!(line(&out, "sync dropped").trim(), "sync dropped 0", "{out}");
    // The listing still shows the containers: vh is gone, not the list.
    let after = line(&out, "after detach");
    assert!(
        !after.contains("'vh'") && after.contains("'a'") && after.contains("'b'"),
        "{out}"
    );
}
