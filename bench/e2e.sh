#!/usr/bin/env bash
# End-to-end benchmark: lanyard against the kernel bridge, side by side in
# one run on the same machine, printed as a markdown table with ratios.
# Absolute figures drift between runs on shared VMs; the ratios are what to
# compare.
#
#   sudo bench/e2e.sh            # DUR=5 seconds per iperf3 run, REPS=3
#
# Needs root (the kernel bridge and its namespaces); lanyard itself runs as
# the unprivileged user $BENCH_USER (default: lanyard-ci, else nobody).
# Installs iperf3 from Debian if it is missing. All traffic stays inside
# namespaces made here; everything is removed on exit.
#
# Rows so far: container <-> container on one network (TCP single stream and
# 4 streams, MTU 1500 and 65520; ping RTT) and lanyard's CPU cost per GB.
# The egress and published-port rows (slirp4netns, pasta) come with those
# issues.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-5}
REPS=${REPS:-3}
LANYARD=${LANYARD:-$PWD/target/release/lanyard}
[ "$(id -u)" = 0 ] || { echo "bench/e2e.sh needs root (kernel bridge baseline)" >&2; exit 2; }
command -v iperf3 >/dev/null || { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q iperf3; }
[ -x "$LANYARD" ] || cargo build --release
BENCH_USER=${BENCH_USER:-$(id -u lanyard-ci >/dev/null 2>&1 && echo lanyard-ci || echo nobody)}
U_ID=$(id -u "$BENCH_USER"); G_ID=$(id -g "$BENCH_USER")
chmod 0666 /dev/net/tun

TMP=$(mktemp -d /tmp/lanyard-bench.XXXXXX)
chmod 755 "$TMP"
cp "$LANYARD" "$TMP/lanyard"; chmod 755 "$TMP/lanyard"
mkdir "$TMP/run"; chown "$U_ID:$G_ID" "$TMP/run"; chmod 700 "$TMP/run"
SOCK="$TMP/run/lanyard.sock"
PIDS=()
NS=(lyb-br lyb-a lyb-b)
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    sleep 0.2
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; done
    rm -rf "$TMP"
}
trap cleanup EXIT

as_user() { setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$@"; }
ly() { as_user "$TMP/lanyard" "$@"; }

# iperf3 JSON -> Gbit/s received
gbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))'; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print("%.2f" % statistics.median(v))' "$@"; }
rtt() { python3 -c 'import re,sys; m=re.search(r"= [\d.]+/([\d.]+)/", sys.stdin.read()); print(int(float(m.group(1))*1000) if m else "nan")'; }

# --- kernel bridge: two namespaces, veth pairs into a bridge in a third ---
bridge_setup() {
    local mtu=$1
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
    ip -n lyb-br link add br0 type bridge
    ip -n lyb-br link set br0 up
    local i=2
    for x in a b; do
        ip -n lyb-br link add "v$x" type veth peer name eth0 netns "lyb-$x"
        ip -n lyb-br link set "v$x" mtu "$mtu" master br0 up
        ip -n "lyb-$x" link set lo up
        ip -n "lyb-$x" link set eth0 mtu "$mtu" up
        ip -n "lyb-$x" addr add "10.99.0.$i/24" dev eth0
        i=$((i + 1))
    done
}

bridge_tcp() { # mtu streams -> Gbit/s
    bridge_setup "$1"
    ip netns exec lyb-b iperf3 -s -1 >/dev/null 2>&1 &
    local srv=$!; sleep 0.3
    ip netns exec lyb-a iperf3 -c 10.99.0.3 -t "$DUR" -P "$2" -J | gbps
    wait "$srv" || true
}

bridge_rtt() {
    bridge_setup 1500
    ip netns exec lyb-a ping -q -c 20 -i 0.05 10.99.0.3 | rtt
}

# --- lanyard: a daemon, two `lanyard run` containers ---
daemon_start() {
    # Not through the `ly` function: `$!` must be lanyard's own PID.
    setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" daemon --socket "$SOCK" >"$TMP/daemon.log" 2>&1 &
    DPID=$!; PIDS+=("$DPID")
    for _ in $(seq 100); do ly network ls --socket "$SOCK" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "daemon did not start" >&2; cat "$TMP/daemon.log" >&2; exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$DPID/stat"; }

lanyard_tcp() { # mtu streams -> Gbit/s, and accumulates CPU per GB
    ly run --socket "$SOCK" --mtu "$1" --name srv -- iperf3 -s -1 >/dev/null 2>&1 &
    local srv=$!; sleep 0.5
    local t0; t0=$(cpu_ticks)
    local out; out=$(ly run --socket "$SOCK" --mtu "$1" --name cli -- iperf3 -c 172.17.0.2 -t "$DUR" -P "$2" -J)
    local t1; t1=$(cpu_ticks)
    wait "$srv" || true
    local bytes; bytes=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bytes"])')
    echo "$(( t1 - t0 )) $bytes" >>"$TMP/cpu"
    echo "$out" | gbps
}

lanyard_rtt() {
    ly run --socket "$SOCK" --mtu 1500 --name srv -- sleep 30 >/dev/null 2>&1 &
    local srv=$!; sleep 0.5
    ly run --socket "$SOCK" --mtu 1500 --name cli -- ping -q -c 20 -i 0.05 172.17.0.2 | rtt
    kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
}

echo "lanyard e2e benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), ${DUR}s x ${REPS} runs (medians)" >&2
daemon_start
echo
echo "| path | kernel bridge | lanyard | ratio |"
echo "|---|---|---|---|"
for mtu in 1500 65520; do
    for streams in 1 4; do
        k=(); l=()
        for _ in $(seq "$REPS"); do
            k+=("$(bridge_tcp "$mtu" "$streams")")
            l+=("$(lanyard_tcp "$mtu" "$streams")")
        done
        km=$(median "${k[@]}"); lm=$(median "${l[@]}")
        echo "| container -> container TCP, MTU $mtu, $streams stream(s), Gbit/s | $km | $lm | $(python3 -c "print('%.2f' % ($lm/$km))") |"
    done
done
kr=$(bridge_rtt); lr=$(lanyard_rtt)
echo "| ping RTT container -> container, us | $kr | $lr | $(python3 -c "print('%.2f' % ($lr/$kr))") |"
hz=$(getconf CLK_TCK)
python3 - "$TMP/cpu" "$hz" <<'PY'
import sys
ticks = bytes_ = 0
for line in open(sys.argv[1]):
    t, b = line.split()
    ticks += int(t); bytes_ += int(b)
hz = int(sys.argv[2])
print(f"\nlanyard daemon CPU (user+sys) over the TCP runs: {ticks/hz/(bytes_/1e9):.3f} s per GB moved")
PY
