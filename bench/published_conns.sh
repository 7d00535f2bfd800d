#!/bin/bash
# Sequential TCP connections through a published port, from the host's
# loopback: `lanyard run -p 18015:8080` serving bench/conn_rate.py, N
# connections (connect, 32-byte request and response, close), one daemon in a
# namespace of its own. Prints conn_rate.py's connections/s (or the
# connection that failed) and the NAT counters that say why. With
# BUDGET=unlimited the published-clients budget is raised out of the way, so
# what is measured is the path (and, past a few thousand connections, the
# client's reuse of ports the container still holds in TIME_WAIT).
#
#   sudo bench/published_conns.sh [LANYARD_BINARY] [N]    (defaults:
#                                 target/release/lanyard, 3000)
#   env: BUDGET=default|unlimited (default: default, 500/s burst 1000)
#
# Needs root (a namespace). Everything stays in namespace lyc-host, removed
# on exit with the processes started here.
set -euo pipefail
B=${1:-$PWD/target/release/lanyard} N=${2:-3000} BUDGET=${BUDGET:-default}
[ "$(id -u)" = 0 ] || { echo "bench/published_conns.sh needs root" >&2; exit 2; }
[ -x "$B" ] || { echo "bench/published_conns.sh: no lanyard binary at $B" >&2; exit 2; }
HERE=$(cd "$(dirname "$0")" && pwd)
D=$(mktemp -d)
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    ip netns del lyc-host 2>/dev/null || true
    rm -rf "$D"
}
trap cleanup EXIT
ip netns del lyc-host 2>/dev/null || true
ip netns add lyc-host
ip -n lyc-host link set lo up
printf '[daemon]\nstate_dir = "%s/state"\n' "$D" >"$D/config.toml"
if [ "$BUDGET" = unlimited ]; then
    printf '[nat]\npublished_clients_per_sec = 1000000\npublished_clients_burst = 1000000\n' >>"$D/config.toml"
fi
ip netns exec lyc-host "$B" daemon --socket "$D/sock" --config "$D/config.toml" >"$D/daemon.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do [ -S "$D/sock" ] && break; sleep 0.1; done
[ -S "$D/sock" ] || { echo "the daemon did not start: $(tail -1 "$D/daemon.log")" >&2; exit 1; }
ip netns exec lyc-host timeout 200 "$B" run --socket "$D/sock" -p 18015:8080 -- \
    python3 "$HERE/conn_rate.py" serve 0.0.0.0 8080 --lifetime 180 >"$D/srv.out" 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do grep -q listening "$D/srv.out" 2>/dev/null && break; sleep 0.1; done
echo "connections/s ($N sequential, budget $BUDGET): $(ip netns exec lyc-host timeout 170 python3 "$HERE/conn_rate.py" client 127.0.0.1 18015 "$N" --deadline 160 || true)"
ip netns exec lyc-host "$B" stats --socket "$D/sock" |
    grep -o 'published_clients_limited=[0-9]*\|tcp_bad_segments=[0-9]*\| flows=[0-9]*' | tr '\n' ' '
echo
