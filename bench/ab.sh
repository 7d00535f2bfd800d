#!/bin/bash
# A/B of two lanyard binaries on two small end-to-end paths, alternating
# runs so that a shared machine's drift falls on both alike:
#
#   udp64  one iperf3 pair, container -> container, UDP 64-byte payloads,
#          -b 0, DUR s, on a daemon: datagrams/s received
#   conn   N sequential TCP connections, container -> the host's loopback
#          (through the gateway's address, --allow-host-loopback), on the
#          embedded switch: seconds for all N
#
# Each run lives in a namespace of its own (`unshare -Urn`: no root needed;
# its loopback is "the host's"), so nothing leaves it. Prints every run and
# the medians.
#
#   bench/ab.sh OLD_BINARY NEW_BINARY [udp64|conn] [RUNS]
#   env: DUR (udp64 seconds, 3), N (conn count, 3000)
set -euo pipefail

OLD=${1:?old binary} NEW=${2:?new binary} WHAT=${3:-udp64} RUNS=${4:-5}
DUR=${DUR:-3} N=${N:-3000}
command -v iperf3 >/dev/null || { echo "ab.sh: needs iperf3 (apt-get install iperf3)" >&2; exit 1; }

# One udp64 run of binary $1: datagrams/s received.
udp64() {
    unshare -Urn bash -c '
        set -e
        B=$1 DUR=$2
        ip link set lo up
        D=$(mktemp -d)
        trap "kill \$DP 2>/dev/null; rm -rf \$D" EXIT
        "$B" daemon --socket "$D/sock" >"$D/d.log" 2>&1 & DP=$!
        for _ in $(seq 100); do [ -S "$D/sock" ] && break; sleep 0.1; done
        timeout $((DUR + 20)) "$B" run --socket "$D/sock" --name a --ip 172.17.0.2 \
            -- iperf3 -s -1 >"$D/s.log" 2>&1 & SP=$!
        sleep 1
        timeout $((DUR + 20)) "$B" run --socket "$D/sock" --name b --ip 172.17.0.3 \
            -- iperf3 -c 172.17.0.2 -u -l 64 -b 0 -t "$DUR" -J >"$D/c.json"
        wait $SP || true
        python3 -c "
import json, sys
s = json.load(open(sys.argv[1]))[\"end\"][\"sum\"]
print(round(s[\"packets\"] * (1 - s[\"lost_percent\"] / 100) / s[\"seconds\"]))
" "$D/c.json"
    ' _ "$1" "$DUR"
}

# One conn run of binary $1: seconds for N connections.
conn() {
    unshare -Urn bash -c '
        set -e
        B=$1 N=$2
        ip link set lo up
        D=$(mktemp -d)
        python3 -c "
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((\"127.0.0.1\", 18999)); s.listen(512)
open(sys.argv[1], \"w\").close()
while True:
    s.accept()[0].close()
" "$D/ready" & LP=$!
        trap "kill \$LP 2>/dev/null; rm -rf \$D" EXIT
        for _ in $(seq 50); do [ -e "$D/ready" ] && break; sleep 0.1; done
        timeout 120 "$B" run --allow-host-loopback -- bash -c "
            s=\$(date +%s%N)
            for _ in \$(seq $N); do exec 3<>/dev/tcp/172.17.0.1/18999 || exit 1; exec 3>&-; done
            e=\$(date +%s%N)
            python3 -c \"print((\$e - \$s) / 1e9)\"
        "
    ' _ "$1" "$N"
}

median() { sort -g | awk '{v[NR]=$1} END {print (NR % 2) ? v[(NR+1)/2] : (v[NR/2] + v[NR/2+1]) / 2}'; }

o=() n=()
for r in $(seq "$RUNS"); do
    o+=("$($WHAT "$OLD")")
    n+=("$($WHAT "$NEW")")
    echo "run $r: old ${o[-1]} new ${n[-1]}"
done
mo=$(printf '%s\n' "${o[@]}" | median)
mn=$(printf '%s\n' "${n[@]}" | median)
unit=$([ "$WHAT" = udp64 ] && echo "datagrams/s (higher is better)" || echo "s for $N connections (lower is better)")
echo "$WHAT medians: old $mo new $mn $unit; new/old $(python3 -c "print(round($mn / $mo, 3))")"
