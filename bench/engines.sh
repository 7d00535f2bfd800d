#!/usr/bin/env bash
# podman 4.3 (Debian 12, rootless) with its network helper swapped: the real
# slirp4netns against lanyard in slirp4netns's place, side by side in one
# run, printed as a markdown table with ratios. Not run in CI.
#
#   sudo bench/engines.sh                           # N=10 starts, DUR=3 s iperf3 runs, REPS=2
#   sudo LANYARD=/path/lanyard N=20 DUR=5 REPS=3 bench/engines.sh
#
# LANYARD defaults to target/release/lanyard, else target/debug/lanyard (a
# debug build's throughput says little; the table says which was measured).
# Run time: about REPS x (2 x N podman starts of ~0.3 s + 2 x 4 iperf3 runs
# of DUR + ~1 s each) plus setup: ~70 s at the defaults.
#
# pasta: Debian 12 has it (package passt, 0.0~git20230309), but podman 4.3.1
# has no `--network pasta` (podman gained it in 4.4; this one answers
# "unable to find network with name or ID pasta"), so its column is printed
# as missing when that is so. bench/e2e.sh measures pasta standalone.
#
# Topology (all traffic stays in namespaces made here, and their loopback):
#
#   lye-out  "outside": iperf3 -s on 203.0.113.10/32 (its lo), 10.201.0.2/24 on eth0
#     | veth
#   lye-host "the host": up0 10.201.0.1/24, default route via 10.201.0.2. podman
#            runs in it (nsenter --net), as the user $ENGINE_USER, so the helper
#            (and its host-side sockets) does too; published-port clients run on
#            its loopback
#
# Rows, each the median over REPS (starts: over REPS x N), peers alternating
# within each repetition so drift hits them alike:
#   start        podman run --rm --network slirp4netns localhost/bb true (s)
#   start, none  the same with --network none: podman's own cost, for scale
#   start minus none  each start minus the none-start run right after it: the
#                helper's own cost, less noisy than either row
#   egress       iperf3 -c 203.0.113.10 in the container (container -> outside)
#                and -R (outside -> container), Gbit/s at the receiver
#   published    -p 127.0.0.1:H:5201 with port_handler=slirp4netns (the
#                helper's own forwarding; rootlessport would bypass the helper),
#                iperf3 -c 127.0.0.1 -p H from lye-host (host -> container) and -R
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-10}
DUR=${DUR:-3}
REPS=${REPS:-2}
ENGINE_USER=${LANYARD_ENGINE_USER:-lanyard-engines}
if [ -z "${LANYARD:-}" ]; then
    LANYARD=$PWD/target/release/lanyard
    [ -x "$LANYARD" ] || LANYARD=$PWD/target/debug/lanyard
fi
[ "$(id -u)" = 0 ] || { echo "bench/engines.sh needs root" >&2; exit 2; }
log() { echo "[$(date +%T)] $*" >&2; }
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

want=()
for cp in podman:podman runc:runc slirp4netns:slirp4netns iperf3:iperf3 busybox:busybox-static \
    catatonit:catatonit newuidmap:uidmap pasta:passt; do
    command -v "${cp%%:*}" >/dev/null || want+=("${cp#*:}")
done
if [ ${#want[@]} -gt 0 ]; then
    log "installing ${want[*]} from Debian"
    { timeout 300 apt-get update -q && DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q "${want[@]}"; } \
        >/tmp/lanyard-bench-engines-apt.log 2>&1 || log "apt-get failed (see /tmp/lanyard-bench-engines-apt.log)"
fi
for t in podman runc slirp4netns iperf3 busybox newuidmap; do
    command -v "$t" >/dev/null || { echo "$t is missing" >&2; exit 1; }
done
[ -x "$LANYARD" ] || { echo "no lanyard binary at $LANYARD (cargo build --release, or LANYARD=...)" >&2; exit 1; }
"$LANYARD" slirp4netns --help 2>/dev/null | grep -q -- --enable-ipv6 ||
    { echo "$LANYARD has no slirp4netns mode (lanyard slirp4netns --help)" >&2; exit 1; }
if ! id "$ENGINE_USER" >/dev/null 2>&1; then
    useradd -m -s /bin/bash "$ENGINE_USER"
fi
U_ID=$(id -u "$ENGINE_USER")
G_ID=$(id -g "$ENGINE_USER")
chmod 0666 /dev/net/tun

TMP=$(mktemp -d /tmp/lanyard-bench-engines.XXXXXX)
RUN=$(mktemp -d /tmp/lyb.XXXXXX) # short: podman's API socket path must stay < 108 bytes
chmod 755 "$TMP"
chown "$U_ID:$G_ID" "$RUN"
chmod 700 "$RUN"
install -d -m 755 -o "$U_ID" -g "$G_ID" "$TMP/home" "$TMP/storage"
declare -A BIN=([slirp4netns]=$TMP/bin/slirp4netns/slirp4netns [lanyard]=$TMP/bin/lanyard/slirp4netns)
install -D -m 755 "$(command -v slirp4netns)" "${BIN[slirp4netns]}"
install -D -m 755 "$LANYARD" "${BIN[lanyard]}"
chmod 755 "$TMP/bin" "$TMP/bin"/*
cat >"$TMP/containers.conf" <<EOF
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$TMP/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$TMP/storage"
runroot = "$RUN/containers"
EOF
chmod 644 "$TMP/containers.conf" "$TMP/storage.conf"
NS=(lye-host lye-out)
BG=()

cleanup() {
    local p n
    set +e
    trap - EXIT INT TERM
    pod rm -a -f -t 0 >/dev/null 2>&1
    for p in ${BG[@]+"${BG[@]}"}; do kill "$p" 2>/dev/null; done
    [ -s "$RUN/libpod/tmp/pause.pid" ] && kill -KILL "$(cat "$RUN/libpod/tmp/pause.pid")" 2>/dev/null
    # What still runs in the namespaces made here was started here.
    for n in "${NS[@]}"; do ip netns pids "$n" 2>/dev/null | xargs -r kill -KILL 2>/dev/null; done
    sleep 0.3
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$TMP" "$RUN" 2>/dev/null || { sleep 1; rm -rf "$TMP" "$RUN"; }
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
ip -n lye-host link add up0 type veth peer name eth0 netns lye-out
ip -n lye-host link set lo up
ip -n lye-host link set up0 up
ip -n lye-host addr add 10.201.0.1/24 dev up0
ip -n lye-host route add default via 10.201.0.2
ip -n lye-out link set lo up
ip -n lye-out link set eth0 up
ip -n lye-out addr add 10.201.0.2/24 dev eth0
ip -n lye-out addr add 203.0.113.10/32 dev lo
ip -n lye-out route add 10.201.0.0/24 dev eth0 2>/dev/null || true
ip netns exec lye-out timeout $((REPS * 8 * (DUR + 30) + 300)) iperf3 -s >"$TMP/iperf3-out.log" 2>&1 &
BG+=($!)

# podman, as the user, in lye-host.
pod() {
    nsenter --net=/run/netns/lye-host setpriv --reuid="$U_ID" --regid="$G_ID" --init-groups -- \
        env -i -C "$TMP/home" HOME="$TMP/home" USER="$ENGINE_USER" PATH="$PATH" XDG_RUNTIME_DIR="$RUN" \
        CONTAINERS_CONF="$TMP/containers.conf" CONTAINERS_STORAGE_CONF="$TMP/storage.conf" \
        timeout 120 podman "$@"
}
in_host() { nsenter --net=/run/netns/lye-host "$@"; }

tests/engines/make-image.sh bench "$(command -v iperf3)" >"$TMP/image.tar"
chmod 644 "$TMP/image.tar"
pod import "$TMP/image.tar" localhost/bb >/dev/null
# The first run starts podman's pause process: not measured.
pod run --rm --pull=never --network none localhost/bb true

PEERS=(slirp4netns lanyard)
declare -A MISS=()
if ! pod run --rm --pull=never --network pasta localhost/bb true >"$TMP/pasta.log" 2>&1; then
    MISS[pasta]="missing"
    PASTA_WHY=$(grep -v 'is not a shared mount' "$TMP/pasta.log" | tail -1 | cut -c1-150)
else
    PEERS+=(pasta)
fi
declare -A VAL=() # "row peer" -> space-separated samples

# net_args PEER [OPTS]: the --network arguments for that peer.
net_args() {
    case $1 in
    pasta) NET=(--network pasta) ;;
    *) NET=(--network-cmd-path="${BIN[$1]}" --network "slirp4netns${2:+:$2}") ;;
    esac
}
now() { date +%s%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }
gbit() { python3 -c 'import json,sys
try: print("%.2f" % (json.load(sys.stdin)["end"]["sum_received"]["bits_per_second"] / 1e9))
except Exception: print("nan")'; }
add() { VAL["$1 $2"]="${VAL["$1 $2"]:-} $3"; }

start_times() { # peer
    local t0
    net_args "$1"
    local a b
    for _ in $(seq "$N"); do
        a="" b=""
        t0=$(now)
        if pod run --rm --pull=never "${NET[@]}" localhost/bb true >/dev/null 2>>"$TMP/err.log"; then
            a=$(secs "$t0" "$(now)")
            add start "$1" "$a"
        fi
        t0=$(now)
        if pod run --rm --pull=never --network none localhost/bb true >/dev/null 2>>"$TMP/err.log"; then
            b=$(secs "$t0" "$(now)")
            add start-none "$1" "$b"
        fi
        # The helper's own cost, from a pair run back to back (less noisy
        # than either alone on a busy machine).
        [ -z "$a" ] || [ -z "$b" ] || add start-diff "$1" "$(awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f", a - b }')"
    done
}
egress() { # peer
    local r
    net_args "$1"
    for r in "" -R; do
        add "egress$r" "$1" "$(pod run --rm --pull=never "${NET[@]}" localhost/bb \
            iperf3 -c 203.0.113.10 -t "$DUR" --connect-timeout 5000 -J $r 2>>"$TMP/err.log" | gbit)"
    done
}
published() { # peer port
    local r name=bench-pub-$1 v
    if [ "$1" = pasta ]; then net_args pasta; else net_args "$1" port_handler=slirp4netns; fi
    if ! pod run -d --pull=never --name "$name" "${NET[@]}" -p "127.0.0.1:$2:5201" localhost/bb iperf3 -s \
        >/dev/null 2>>"$TMP/err.log"; then
        pod rm -f -t 0 "$name" >/dev/null 2>&1 || true # created, not started
        add published "$1" nan
        add published-R "$1" nan
        return
    fi
    for r in "" -R; do
        # The server may still be starting: one retry after a second.
        for _ in 1 2; do
            v=$(in_host timeout $((DUR + 30)) iperf3 -c 127.0.0.1 -p "$2" -t "$DUR" --connect-timeout 5000 -J $r \
                2>>"$TMP/err.log" | gbit)
            [ "$v" != nan ] && break
            sleep 1
        done
        add "published$r" "$1" "$v"
    done
    pod rm -f -t 0 "$name" >/dev/null 2>&1 || true
}

T0=$(date +%s)
port=25301
for rep in $(seq "$REPS"); do
    for peer in "${PEERS[@]}"; do
        log "rep $rep/$REPS: $peer"
        start_times "$peer"
        egress "$peer"
        published "$peer" "$port"
        port=$((port + 1))
    done
done

median() { tr ' ' '\n' | grep -E '^-?[0-9.]+$' | sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) print "nan"; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
cell() { local m; m=$(median <<<"${VAL["$1 $2"]:-}"); echo "$m"; }

case $LANYARD in
*/debug/*) build="a debug build" ;;
*/release/*) build="a release build" ;;
*) build="build profile unknown" ;;
esac
echo
echo "podman $(podman --version | awk '{ print $3 }'), $(slirp4netns --version | head -1), lanyard $LANYARD ($build, $("$LANYARD" --version 2>/dev/null | head -1))"
echo "N=$N starts per peer per repetition, DUR=$DUR s, REPS=$REPS, $(nproc) cores; medians"
echo
echo "| row | slirp4netns | lanyard | pasta | lanyard / slirp4netns | lanyard / pasta |"
echo "|---|---|---|---|---|---|"
for row in "start:start (s)" "start-none:start, --network none (s)" \
    "start-diff:start minus --network none, pairwise (s)" "egress:egress container -> outside (Gbit/s)" \
    "egress-R:egress outside -> container (Gbit/s)" "published:published 127.0.0.1 -> container (Gbit/s)" \
    "published-R:published container -> 127.0.0.1 (Gbit/s)"; do
    k=${row%%:*}
    s=$(cell "$k" slirp4netns)
    l=$(cell "$k" lanyard)
    if [ -n "${MISS[pasta]:-}" ]; then p=${MISS[pasta]}; lp="-"; else p=$(cell "$k" pasta); lp=$(ratio "$l" "$p"); fi
    echo "| ${row#*:} | $s | $l | $p | $(ratio "$l" "$s") | $lp |"
done
echo
echo "(for start rows a ratio < 1 is better for lanyard; for Gbit/s rows > 1; $(($(date +%s) - T0)) s measuring)"
[ -z "${MISS[pasta]:-}" ] || echo "pasta: podman --network pasta failed: ${PASTA_WHY:-?}"
if [ -s "$TMP/err.log" ] && grep -qv 'is not a shared mount' "$TMP/err.log"; then
    echo
    echo "errors (first 10 lines that are not podman's shared-mount warning):"
    grep -v 'is not a shared mount' "$TMP/err.log" | head -10 | sed 's/^/    /'
fi
