#!/bin/bash
# Ping RTT container -> container on a lanyard daemon and on a kernel bridge,
# side by side: first with the CPUs idle between echoes, then with two
# nice-19 busy loops keeping every vCPU from idling, then idle again. What
# the busy loops take off both columns is the cost of waking a CPU from
# idle; what stays between the columns is lanyard's own (two TAP hops and
# the data-path thread's wake-up). docs/PERFORMANCE.md, "TCP
# request/response, beside ping".
#
#   sudo bench/ping_idle.sh [LANYARD_BINARY]     (default target/release/lanyard)
#   env: COUNT (echoes per cell, 100), INTERVAL (s between them, 0.02)
#
# Needs root (namespaces). Everything stays in the namespaces made here:
# lyp-host (the daemon and its containers), lyp-a, lyp-b and lyp-br (the
# kernel's); all are removed on exit, with the processes started here.
set -euo pipefail
B=${1:-$PWD/target/release/lanyard}
COUNT=${COUNT:-100} INTERVAL=${INTERVAL:-0.02}
[ "$(id -u)" = 0 ] || { echo "bench/ping_idle.sh needs root" >&2; exit 2; }
[ -x "$B" ] || { echo "bench/ping_idle.sh: no lanyard binary at $B" >&2; exit 2; }
D=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    for n in lyp-host lyp-a lyp-b lyp-br; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$D"
}
trap cleanup EXIT
for n in lyp-host lyp-a lyp-b lyp-br; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
ip -n lyp-host link set lo up

# lanyard: a daemon with a state directory of its own, and container b
printf '[daemon]\nstate_dir = "%s/state"\n' "$D" >"$D/config.toml"
ip netns exec lyp-host "$B" daemon --socket "$D/sock" --config "$D/config.toml" >"$D/daemon.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$D/sock" ] && break; sleep 0.1; done
[ -S "$D/sock" ] || { echo "the daemon did not start: $(tail -1 "$D/daemon.log")" >&2; exit 1; }
ip netns exec lyp-host timeout 300 "$B" run --socket "$D/sock" --name b --ip 172.17.0.3 -- sleep 280 >"$D/b.log" 2>&1 &
PIDS+=($!)

# the kernel: two namespaces on a bridge
ip -n lyp-br link add br0 type bridge
ip -n lyp-br link set br0 up
for n in a b; do
    ip -n lyp-br link add "v$n" type veth peer name eth0 netns "lyp-$n"
    ip -n lyp-br link set "v$n" master br0 up
    ip -n "lyp-$n" link set lo up
    ip -n "lyp-$n" link set eth0 up
done
ip -n lyp-a addr add 10.98.0.2/24 dev eth0
ip -n lyp-b addr add 10.98.0.3/24 dev eth0

avg() { grep -o '= [0-9.]*/[0-9.]*' | cut -d/ -f2 | awk '{printf "%.0f", $1 * 1000}'; }
n=0
cell() { # label
    local k l
    n=$((n + 1))
    k=$(ip netns exec lyp-a sh -c "ping -c 1 -W 2 10.98.0.3 >/dev/null; ping -q -c $COUNT -i $INTERVAL 10.98.0.3" | avg)
    l=$(ip netns exec lyp-host timeout 60 "$B" run --socket "$D/sock" --name "a$n" --ip "172.17.0.$((9 + n))" -- \
        sh -c "ping -c 1 -W 2 172.17.0.3 >/dev/null; ping -q -c $COUNT -i $INTERVAL 172.17.0.3" | avg)
    echo "| $1 | ${k:-?} | ${l:-?} | $(( ${l:-0} - ${k:-0} )) |"
}
echo "| ping -q -c $COUNT -i $INTERVAL, average RTT | kernel bridge, us | lanyard, us | lanyard - kernel, us |"
echo "|---|---|---|---|"
cell "idle"
for _ in $(seq "$(nproc)"); do nice -n 19 sh -c 'while :; do :; done' & PIDS+=($!); done
cell "CPUs kept busy ($(nproc) nice-19 loops)"
for p in "${PIDS[@]:2}"; do kill "$p" 2>/dev/null || true; done
cell "idle again"
