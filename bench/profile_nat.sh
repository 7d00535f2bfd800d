#!/usr/bin/env bash
# A quick rig for one NAT flow, to compare two lanyard binaries side by side
# or to profile the data-path thread. Smaller than bench/e2e.sh: a "host"
# namespace running the daemon (as root) and an "outside" namespace behind a
# veth running iperf3 -s; one container runs iperf3 -c through the NAT.
#
#   sudo bench/profile_nat.sh                       # container -> outside, MTU 65520
#   sudo DIR=-R MTU=1500 bench/profile_nat.sh       # outside -> container
#   sudo LANYARD=/tmp/old/lanyard bench/profile_nat.sh   # another binary
#   sudo ARGS="-u -l 64 -b 0" bench/profile_nat.sh # other iperf3 options (UDP)
#   sudo FAM=6 bench/profile_nat.sh                 # over IPv6 (the container's
#                                                   # fd00:172:17::/64 address to fd20::2)
#   sudo KERNEL=1 bench/profile_nat.sh              # the kernel's path instead:
#                                                   # a veth container, nft MASQUERADE
#   sudo PERF=1 bench/profile_nat.sh                # perf record -g of the
#                                                   # data-path thread, 4 s,
#                                                   # into /tmp/lanyard-prof/perf.data
#
# Prints iperf3's receiver line and the daemon's CPU ticks (1/100 s) over
# the run. Traffic stays in the two namespaces made here; both are removed
# on exit, and only the processes started here are stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "needs root (ip netns)" >&2; exit 2; }
B=${LANYARD:-$PWD/target/release/lanyard}
MTU=${MTU:-65520}
DIR=${DIR:-}
SECS=${SECS:-8}
OUT=/tmp/lanyard-prof
mkdir -p "$OUT"
H=lyp-host-$$
O=lyp-out-$$
D=""
PERFPID=""
cleanup() {
    [ -n "$PERFPID" ] && kill "$PERFPID" 2>/dev/null || true
    [ -n "$D" ] && kill "$D" 2>/dev/null && wait "$D" 2>/dev/null || true
    ip netns pids "$O" 2>/dev/null | xargs -r kill 2>/dev/null || true
    ip netns del "$H" 2>/dev/null || true
    ip netns del "$O" 2>/dev/null || true
}
trap cleanup EXIT
ip netns add "$H"
ip netns add "$O"
ip -n "$H" link add up0 mtu "$MTU" type veth peer name o0 mtu "$MTU" netns "$O"
ip -n "$H" link set lo up
ip -n "$O" link set lo up
ip -n "$H" addr add 10.200.0.1/24 dev up0
ip -n "$H" link set up0 up
ip -n "$O" addr add 10.200.0.2/24 dev o0
ip -n "$O" link set o0 up
FAM=${FAM:-4}
DST=10.200.0.2
if [ "$FAM" = 6 ]; then
    ip -n "$H" -6 addr add fd20::1/64 dev up0 nodad
    ip -n "$O" -6 addr add fd20::2/64 dev o0 nodad
    DST=fd20::2
fi
ip netns exec "$O" timeout $((SECS + 30)) iperf3 -s -1 >/dev/null 2>&1 &
if [ "${KERNEL:-0}" = 1 ]; then
    # the reference: a container namespace on a veth, routed and masqueraded
    C=lyp-ctr-$$
    ip netns add "$C"
    trap 'cleanup; ip netns del "$C" 2>/dev/null || true' EXIT
    ip -n "$H" link add kv0 mtu "$MTU" type veth peer name eth0 mtu "$MTU" netns "$C"
    ip -n "$H" addr add 172.18.0.1/16 dev kv0
    ip -n "$H" link set kv0 up
    ip -n "$C" link set lo up
    ip -n "$C" addr add 172.18.0.2/16 dev eth0
    ip -n "$C" link set eth0 up
    ip -n "$C" route add default via 172.18.0.1
    ip netns exec "$H" sysctl -qw net.ipv4.ip_forward=1
    if [ "$FAM" = 6 ]; then
        ip -n "$H" -6 addr add fd18::1/64 dev kv0 nodad
        ip -n "$C" -6 addr add fd18::2/64 dev eth0 nodad
        ip -n "$C" -6 route add default via fd18::1
        ip netns exec "$H" sysctl -qw net.ipv6.conf.all.forwarding=1
        ip netns exec "$H" nft -f - <<'NFT'
table ip6 lyp6 {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        ip6 saddr fd18::/64 oifname "up0" masquerade
    }
}
NFT
    fi
    ip netns exec "$H" nft -f - <<'NFT'
table ip lyp {
    chain post {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 172.18.0.0/16 oifname "up0" masquerade
    }
}
NFT
    sleep 0.3
    timeout $((SECS + 20)) ip netns exec "$C" iperf3 -c "$DST" -t "$SECS" $DIR ${ARGS:-} 2>&1 | grep receiver || echo "iperf3 failed"
    exit 0
fi
cat >"$OUT/cfg.toml" <<EOF
[[network]]
name = "default"
subnet = "172.17.0.0/16"
mtu = $MTU
ipv6 = true
subnet6 = "fd00:172:17::/64"
EOF
ip netns exec "$H" "$B" daemon --socket "$OUT/s.sock" --config "$OUT/cfg.toml" >"$OUT/daemon.log" 2>&1 &
D=$!
for _ in $(seq 100); do "$B" network ls --socket "$OUT/s.sock" >/dev/null 2>&1 && break; sleep 0.1; done
DP=$(ps -L -p "$D" -o tid=,comm= | awk '/datap|dp0/{print $1; exit}')
if [ "${PERF:-0}" = 1 ]; then
    (sleep 2; exec perf record -F 2000 -g -t "$DP" -o "$OUT/perf.data" -- sleep 4) >/dev/null 2>&1 &
    PERFPID=$!
fi
t0=$(awk '{print $14 + $15}' "/proc/$D/stat")
ip netns exec "$H" timeout $((SECS + 20)) "$B" run --socket "$OUT/s.sock" -- \
    iperf3 -c "$DST" -t "$SECS" $DIR ${ARGS:-} 2>&1 | grep receiver || echo "iperf3 failed"
t1=$(awk '{print $14 + $15}' "/proc/$D/stat")
echo "daemon CPU ticks: $((t1 - t0))"
if [ -n "$PERFPID" ]; then
    wait "$PERFPID" 2>/dev/null || true
    PERFPID=""
    echo "profile: perf report -i $OUT/perf.data --children --stdio -g none"
fi
