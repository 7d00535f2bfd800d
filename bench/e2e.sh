#!/usr/bin/env bash
# End-to-end benchmark: lanyard against the kernel and the rootless peers,
# side by side in one run on the same machine, printed as markdown tables
# with ratios. Absolute figures drift between runs on shared VMs; the ratios
# are what to compare.
#
#   sudo bench/e2e.sh                 # DUR=5 seconds per iperf3 run, REPS=3
#   sudo DUR=3 REPS=1 bench/e2e.sh    # quicker
#
# Needs root (namespaces, the kernel baselines); lanyard, slirp4netns and
# pasta run as the unprivileged user $BENCH_USER (default: lanyard-ci, else
# nobody). Installs iperf3, slirp4netns, passt (pasta) and nftables (for the
# kernel's MASQUERADE) from Debian when missing; a peer that is still
# missing, or fails, is printed as "missing (reason)". All traffic stays on
# loopback and in namespaces made here; everything started here is removed
# on exit (only the PIDs this script started, and processes inside its own
# namespaces).
#
# Table 1, container <-> container on one network: two namespaces on a
# kernel bridge (lyb-a, lyb-b, bridge in lyb-br) against two `lanyard run`
# containers on a lanyard daemon (TCP 1 and 4 streams at MTU 1500/65520,
# ping RTT, lanyard's CPU per GB).
#
# Table 2, egress (the topology of shared/PEERS.md):
#
#   lyb-out  "outside": iperf3 -s and the connection server on 203.0.113.10/32
#     |                 (on its lo), 10.200.0.2/24 on eth0
#     | veth, the only uplink; its MTU = the row's MTU
#     |
#   lyb-host "the host": up0 10.200.0.1/24, default route via 10.200.0.2,
#     |                  ping_group_range open, ip_forward=1. In it run:
#     |- kernel (rootful reference): bridge kbr0 172.18.0.1/16, a veth to
#     |    namespace lyb-kc (172.18.0.2), nft MASQUERADE for 172.18.0.0/16
#     |- as $BENCH_USER: `unshare -Urn sleep` holds a user+net namespace;
#     |    slirp4netns --configure (10.0.2.100, gw 10.0.2.2) attaches to one,
#     |    pasta --config-net (copies up0's address and route) to another
#     '- as $BENCH_USER: a `lanyard daemon`; `lanyard run` containers
#          (172.17.0.2/16, gw 172.17.0.1) reach outside through its NAT
#
# Each peer's container runs: iperf3 -c 203.0.113.10 (container -> outside)
# and -R (outside -> container) at MTU 1500 and 65520 (container MTU and
# uplink MTU both), bench/conn_rate.py (1,000 sequential connect / 32-byte
# request / 32-byte response / close) and ping, both at MTU 65520. The peers
# run in turn within each repetition, so drift hits them alike.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-5}
REPS=${REPS:-3}
CONNS=${CONNS:-1000}
LANYARD=${LANYARD:-$PWD/target/release/lanyard}
[ "$(id -u)" = 0 ] || { echo "bench/e2e.sh needs root (namespaces, kernel baselines)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
log() { echo "[$(date +%T)] $*" >&2; }
T_START=$(date +%s)

# --- peers from Debian (command:package) ---
declare -A MISS=()  # peer -> why it is missing for the whole run
want=()
for cp in iperf3:iperf3 slirp4netns:slirp4netns pasta:passt nft:nftables; do
    command -v "${cp%%:*}" >/dev/null || want+=("${cp#*:}")
done
if [ ${#want[@]} -gt 0 ]; then
    log "installing ${want[*]} from Debian"
    { timeout 300 apt-get update -q && timeout 600 apt-get install -y -q "${want[@]}"; } >"/tmp/lanyard-bench-apt.log" 2>&1 ||
        log "apt-get failed (see /tmp/lanyard-bench-apt.log)"
fi
command -v iperf3 >/dev/null || { echo "iperf3 is missing and could not be installed" >&2; exit 1; }
command -v slirp4netns >/dev/null || MISS[slirp4netns]="not installed: apt-get install slirp4netns failed"
command -v pasta >/dev/null || MISS[pasta]="not installed: apt-get install passt failed"
command -v nft >/dev/null || MISS[kernel]="nft not installed: apt-get install nftables failed"
[ -x "$LANYARD" ] || cargo build --release
BENCH_USER=${BENCH_USER:-$(id -u lanyard-ci >/dev/null 2>&1 && echo lanyard-ci || echo nobody)}
U_ID=$(id -u "$BENCH_USER"); G_ID=$(id -g "$BENCH_USER")
chmod 0666 /dev/net/tun
# Processes run as the user (and inside containers) need a python3 they can
# execute: not a shim under /root.
PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)

TMP=$(mktemp -d /tmp/lanyard-bench.XXXXXX)
chmod 755 "$TMP"
cp "$LANYARD" "$TMP/lanyard"; chmod 755 "$TMP/lanyard"
cp bench/conn_rate.py "$TMP/conn_rate.py"; chmod 644 "$TMP/conn_rate.py"
mkdir "$TMP/run"; chown "$U_ID:$G_ID" "$TMP/run"; chmod 700 "$TMP/run"
SOCK="$TMP/run/lanyard.sock"
ESOCK="$TMP/run/egress.sock"
PIDS=()
NS=(lyb-br lyb-a lyb-b lyb-kc lyb-host lyb-out)
track() { PIDS+=("$1"); }
untrack() { # forget an exited PID, so cleanup never signals a reused one
    local p keep=()
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && [ "$p" != "$1" ] && keep+=("$p"); done
    PIDS=("${keep[@]:-}")
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; untrack "$1"; }
cleanup() {
    set +e
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    # Whatever still runs inside the namespaces made here was started here.
    for n in "${NS[@]}"; do ip netns pids "$n" 2>/dev/null | xargs -r kill 2>/dev/null; done
    sleep 0.3
    for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null; done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

as_user() { setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$@"; }
ly() { as_user "$TMP/lanyard" "$@"; }

# iperf3 JSON -> Gbit/s received
gbps() { python3 -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d["end"]["sum_received"]["bits_per_second"]/1e9))'; }
median() { python3 -c 'import sys,statistics; v=[float(x) for x in sys.argv[1:]]; print("%.2f" % statistics.median(v))' "$@"; }
rtt() { python3 -c 'import re,sys; m=re.search(r"= [\d.]+/([\d.]+)/", sys.stdin.read()); print(int(float(m.group(1))*1000) if m else "nan")'; }

# --- kernel bridge: two namespaces, veth pairs into a bridge in a third ---
bridge_setup() {
    local mtu=$1
    for n in lyb-br lyb-a lyb-b; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
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
    ip netns exec lyb-b timeout $((DUR + 30)) iperf3 -s -1 >/dev/null 2>&1 &
    local srv=$!; sleep 0.3
    timeout -k 3 $((DUR + 20)) ip netns exec lyb-a iperf3 -c 10.99.0.3 -t "$DUR" -P "$2" -J | gbps
    wait "$srv" || true
}

bridge_rtt() {
    bridge_setup 1500
    ip netns exec lyb-a ping -q -c 20 -i 0.05 -w 10 10.99.0.3 | rtt
}

# --- lanyard: a daemon, two `lanyard run` containers ---
daemon_start() { # [netns] socket log -> DPID
    # Not through the `ly` function: `$!` must be lanyard's own PID
    # (`ip netns exec` and setpriv exec, they do not fork).
    local pre=()
    [ $# = 3 ] && { pre=(ip netns exec "$1"); shift; }
    "${pre[@]}" setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" daemon --socket "$1" >"$2" 2>&1 &
    DPID=$!; track "$DPID"
    for _ in $(seq 100); do ly network ls --socket "$1" >/dev/null 2>&1 && return; sleep 0.1; done
    echo "daemon did not start" >&2; cat "$2" >&2; exit 1
}

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

lanyard_tcp() { # mtu streams -> Gbit/s, and accumulates CPU per GB
    ly run --socket "$SOCK" --mtu "$1" --name srv -- timeout $((DUR + 30)) iperf3 -s -1 >/dev/null 2>&1 &
    local srv=$!; sleep 0.5
    local t0; t0=$(cpu_ticks "$CDPID")
    local out; out=$(timeout -k 3 $((DUR + 20)) setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
        "$TMP/lanyard" run --socket "$SOCK" --mtu "$1" --name cli -- iperf3 -c 172.17.0.2 -t "$DUR" -P "$2" -J)
    local t1; t1=$(cpu_ticks "$CDPID")
    wait "$srv" || true
    local bytes; bytes=$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["end"]["sum_received"]["bytes"])')
    echo "$(( t1 - t0 )) $bytes" >>"$TMP/cpu"
    echo "$out" | gbps
}

lanyard_rtt() {
    ly run --socket "$SOCK" --mtu 1500 --name srv -- sleep 30 >/dev/null 2>&1 &
    local srv=$!; sleep 0.5
    ly run --socket "$SOCK" --mtu 1500 --name cli -- ping -q -c 20 -i 0.05 -w 10 172.17.0.2 | rtt
    kill "$srv" 2>/dev/null || true; wait "$srv" 2>/dev/null || true
}

cpu_per_gb() { # file -> "N.NNN s per GB"
    python3 - "$1" "$(getconf CLK_TCK)" <<'PY2'
import sys
ticks = bytes_ = 0
for line in open(sys.argv[1]):
    t, b = line.split()
    ticks += int(t); bytes_ += int(b)
hz = int(sys.argv[2])
print(f"{ticks/hz/(bytes_/1e9):.3f} s per GB" if bytes_ else "n/a (no bytes moved)")
PY2
}

# ======================================================================
# Egress: "the host" (lyb-host) whose only uplink is a veth to "outside"
# (lyb-out); see the comment at the top.
# ======================================================================
OUT_IP=203.0.113.10
IPORT=5201
CPORT=8080
PEERS=(kernel slirp4netns pasta lanyard)
declare -A FAIL=()  # peer -> why it is unusable at the current MTU
declare -A SH=()    # peer -> PID of the `unshare -Urn sleep` holding its namespace
declare -A SP=()    # peer -> PID of slirp4netns / pasta

egress_setup() {
    for n in lyb-host lyb-out lyb-kc; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
    ip -n lyb-host link add up0 type veth peer name eth0 netns lyb-out
    ip -n lyb-host link set lo up
    ip -n lyb-out link set lo up
    ip -n lyb-out addr add "$OUT_IP/32" dev lo
    ip -n lyb-host addr add 10.200.0.1/24 dev up0
    ip -n lyb-out addr add 10.200.0.2/24 dev eth0
    ip -n lyb-host link set up0 up
    ip -n lyb-out link set eth0 up
    ip -n lyb-host route add default via 10.200.0.2
    ip netns exec lyb-host sysctl -qw net.ipv4.ping_group_range="0 2147483647"
    ip netns exec lyb-host sysctl -qw net.ipv4.ip_forward=1
    # kernel reference: docker's bridge and MASQUERADE, in the host namespace
    if [ -z "${MISS[kernel]:-}" ]; then
        ip -n lyb-host link add kbr0 type bridge
        ip -n lyb-host addr add 172.18.0.1/16 dev kbr0
        ip -n lyb-host link set kbr0 up
        ip -n lyb-host link add kv0 type veth peer name eth0 netns lyb-kc
        ip -n lyb-host link set kv0 master kbr0 up
        ip -n lyb-kc link set lo up
        ip -n lyb-kc addr add 172.18.0.2/16 dev eth0
        ip -n lyb-kc link set eth0 up
        ip -n lyb-kc route add default via 172.18.0.1
        ip netns exec lyb-host nft -f - <<'NFT' 2>"$TMP/nft.err" || MISS[kernel]="nft MASQUERADE rule failed: $(tail -1 "$TMP/nft.err")"
table ip lyb_bench {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 172.18.0.0/16 oifname != "kbr0" masquerade
    }
}
NFT
    fi
    daemon_start lyb-host "$ESOCK" "$TMP/egress-daemon.log"; EDPID=$DPID
}

egress_mtu() { # the row's MTU on every link of the path
    local m=$1
    ip -n lyb-host link set up0 mtu "$m"
    ip -n lyb-out link set eth0 mtu "$m"
    if [ -z "${MISS[kernel]:-}" ]; then
        ip -n lyb-host link set kv0 mtu "$m"
        ip -n lyb-kc link set eth0 mtu "$m"
        ip -n lyb-host link set kbr0 mtu "$m"
    fi
}

wait_for() { # tries(0.1 s each) command... -> 0 once the command succeeds
    local n=$1; shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
in_holder() { as_user nsenter -t "${SH[$1]}" -U -n --preserve-credentials "${@:2}"; }
# unshare has made its namespaces, written the ID maps and exec'd sleep
holder_ready() { [ "$(cat "/proc/$1/comm")" = sleep ]; }
addr_up() { in_holder "$1" ip -4 -o addr show dev "$2" | grep -q "inet $3/"; }

rootless_start() { # peer mtu -> SH, SP or FAIL[peer]
    local peer=$1 mtu=$2 log="$TMP/$1-$2.log"
    [ -n "${MISS[$peer]:-}" ] && return
    ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- unshare -Urn sleep 3600 &
    SH[$peer]=$!; track "${SH[$peer]}"
    if ! wait_for 50 holder_ready "${SH[$peer]}"; then FAIL[$peer]="unshare -Urn did not make a namespace in 5 s"; return; fi
    local dev ip
    if [ "$peer" = slirp4netns ]; then
        dev=tap0; ip=10.0.2.100
        ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
            slirp4netns --configure --mtu="$mtu" "${SH[$peer]}" tap0 >"$log" 2>&1 &
    else
        dev=eth0; ip=10.200.0.1
        ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
            pasta -f -q -4 -D none --config-net -I eth0 -m "$mtu" -t none -u none -T none -U none "${SH[$peer]}" >"$log" 2>&1 &
    fi
    SP[$peer]=$!; track "${SP[$peer]}"
    if ! wait_for 100 addr_up "$peer" "$dev" "$ip"; then
        local why; why=$(one_line <"$log")
        kill -0 "${SP[$peer]}" 2>/dev/null && why="no address on $dev after 10 s${why:+: $why}" || why="exited${why:+: $why}"
        FAIL[$peer]="$peer $why"
    fi
}

rootless_stop() {
    local peer
    for peer in slirp4netns pasta; do
        [ -n "${SP[$peer]:-}" ] && stop_pid "${SP[$peer]}"
        [ -n "${SH[$peer]:-}" ] && stop_pid "${SH[$peer]}"
        SP[$peer]=""; SH[$peer]=""; FAIL[$peer]=""
    done
}

ctr_cmd() { # peer mtu -> CTR: the command prefix that runs in the peer's container
    case $1 in
        kernel) CTR=(ip netns exec lyb-kc) ;;
        slirp4netns | pasta) CTR=(setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- nsenter -t "${SH[$1]}" -U -n --preserve-credentials) ;;
        lanyard) CTR=(ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" run --socket "$ESOCK" --mtu "$2" --) ;;
    esac
}

unusable() { # peer -> prints why it cannot be measured now, if so
    local why=${MISS[$1]:-${FAIL[$1]:-}}
    [ -n "$why" ] && echo "$why"
}

one_line() { tr '\n|' ' /' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-100; }

egress_tcp() { # peer mtu tx|rx -> R = "Gbit/s bytes" or "fail:why"
    local peer=$1 mtu=$2 dir=$3 rflag=() rc=0 t0=0 t1=0 why
    STALL=""
    if why=$(unusable "$peer"); then R="fail:$why"; return; fi
    [ "$dir" = rx ] && rflag=(-R)
    ip netns exec lyb-out timeout -k 2 $((DUR + 40)) iperf3 -s -1 -B "$OUT_IP" -p "$IPORT" >/dev/null 2>&1 &
    local srv=$!; track "$srv"
    if ! wait_for 50 listening "$IPORT"; then stop_pid "$srv"; R="fail:iperf3 server did not listen"; return; fi
    ctr_cmd "$peer" "$mtu"
    [ "$peer" = lanyard ] && t0=$(cpu_ticks "$EDPID")
    timeout -k 3 $((DUR + 20)) "${CTR[@]}" iperf3 -c "$OUT_IP" -p "$IPORT" -t "$DUR" --connect-timeout 5000 -J "${rflag[@]}" \
        >"$TMP/iperf.json" 2>"$TMP/iperf.err" || rc=$?
    [ "$peer" = lanyard ] && t1=$(cpu_ticks "$EDPID")
    stop_pid "$srv"
    R=$(python3 - "$rc" "$TMP/iperf.json" "$TMP/iperf.err" "$((DUR + 20))" <<'PY2'
import json, sys
rc, out, err, limit = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read(), sys.argv[4]
if rc in ("124", "137"):
    print(f"fail:iperf3 killed after {limit} s (stalled)"); sys.exit()
try:
    d = json.loads(out)
except ValueError:
    last = (err.strip().splitlines() or [f"exit {rc}, no output"])[-1]
    print("fail:" + last); sys.exit()
if d.get("error"):
    print("fail:iperf3: " + d["error"]); sys.exit()
s = d["end"]["sum_received"]
if not s.get("bytes"):
    print("fail:no bytes received"); sys.exit()
# stalls: one-second intervals below a tenth of the run's mean rate
iv = [i["sum"]["bits_per_second"] for i in d.get("intervals", [])]
low = sum(1 for b in iv if b < s["bits_per_second"] / 10)
print("%.2f %d %d/%d" % (s["bits_per_second"] / 1e9, s["bytes"], low, len(iv)))
PY2
)
    R=$(echo "$R" | one_line)
    if [ "${R#fail:}" = "$R" ]; then # "Gbit/s bytes stalled/intervals"
        local f; read -r -a f <<<"$R"
        if [ "$peer" = lanyard ]; then echo "$((t1 - t0)) ${f[1]}" >>"$TMP/ecpu"; fi
        R=${f[0]}
        [ "${f[2]%/*}" = 0 ] || STALL=${f[2]}
    fi
}

listening() { ip netns exec lyb-out ss -Hltn "sport = :$1" | grep -q .; }

egress_conn() { # peer -> R = connections/s or "fail:why"
    local why rc=0
    if why=$(unusable "$1"); then R="fail:$why"; return; fi
    ctr_cmd "$1" 65520
    R=$(timeout -k 3 90 "${CTR[@]}" "$PY" "$TMP/conn_rate.py" client "$OUT_IP" "$CPORT" "$CONNS" --deadline 60 2>"$TMP/conn.err") || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        R="fail:client killed after 90 s"
    elif [ -z "$R" ]; then
        R="fail:exit $rc: $(tail -1 "$TMP/conn.err" | one_line)"
    fi
    R=$(echo "$R" | tail -1 | one_line)
}

egress_rtt() { # peer -> R = average RTT in us or "fail:why"
    local why
    if why=$(unusable "$1"); then R="fail:$why"; return; fi
    ctr_cmd "$1" 65520
    R=$(timeout -k 3 30 "${CTR[@]}" sh -c "ping -c 1 -W 2 $OUT_IP >/dev/null 2>&1; exec ping -q -c 20 -i 0.05 -w 10 $OUT_IP" 2>&1 | rtt) || true
    if [ "$R" = nan ] || [ -z "$R" ]; then R="fail:no echo reply"; fi
}

# cell KIND value... -> "median" | "median (k/n runs failed: why)" | "missing (why)"
cell() {
    python3 - "$@" <<'PY2'
import statistics, sys
kind, vals = sys.argv[1], sys.argv[2:]
ok = [float(v) for v in vals if not v.startswith("fail:")]
bad = [v[5:] for v in vals if v.startswith("fail:")]
fmt = {"gbps": "%.2f", "int": "%.0f"}[kind]
if not ok:
    print("missing (%s)" % (bad[0] if bad else "not run"))
else:
    out = fmt % statistics.median(ok)
    if bad:
        out += " (%d/%d runs failed: %s)" % (len(bad), len(vals), bad[0])
    print(out)
PY2
}

ratio() { # lanyard_cell peer_cell -> lanyard / peer, or "-"
    python3 - "$1" "$2" <<'PY2'
import sys
def num(c):
    try:
        return float(c.split()[0])
    except (ValueError, IndexError):
        return None
a, b = num(sys.argv[1]), num(sys.argv[2])
print("%.2f" % (a / b) if a is not None and b else "-")
PY2
}

log "lanyard e2e benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), ${DUR}s x ${REPS} runs (medians), user $BENCH_USER"

# ---------------- table 1: container <-> container ----------------
daemon_start "$SOCK" "$TMP/daemon.log"; CDPID=$DPID
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
echo
echo "lanyard daemon CPU (user+sys) over the container <-> container TCP runs: $(cpu_per_gb "$TMP/cpu")"
for n in lyb-br lyb-a lyb-b; do ip netns del "$n" 2>/dev/null || true; done
stop_pid "$CDPID"

# ---------------- table 2: egress ----------------
label() {
    case $1 in
        tcp-tx-*) echo "egress TCP container -> outside, MTU ${1##*-}, Gbit/s" ;;
        tcp-rx-*) echo "egress TCP outside -> container (iperf3 -R), MTU ${1##*-}, Gbit/s" ;;
        conn) echo "egress TCP connections/s, $CONNS sequential, container -> outside, MTU 65520" ;;
        rtt) echo "ping RTT container -> outside, MTU 65520, us" ;;
    esac
}

log "egress: setting up lyb-host / lyb-out"
egress_setup
: >"$TMP/ecpu"
declare -A RES=()  # row|peer -> values, each ended by $SEP
SEP=$'\x1f'  # (reasons hold spaces)
STALLS=""
ROWS=()
for mtu in 1500 65520; do
    egress_mtu "$mtu"
    for peer in slirp4netns pasta; do rootless_start "$peer" "$mtu"; done
    for peer in "${PEERS[@]}"; do
        if w=$(unusable "$peer"); then log "MTU $mtu: $peer unusable: $w"; fi
    done
    for dir in tx rx; do
        row="tcp-$dir-$mtu"; ROWS+=("$row")
        for rep in $(seq "$REPS"); do
            line=""
            for peer in "${PEERS[@]}"; do
                egress_tcp "$peer" "$mtu" "$dir"
                RES[$row|$peer]+="$R$SEP"
                line+=" $peer=$R"
                if [ -n "$STALL" ]; then
                    line+="[$STALL s stalled]"
                    STALLS+="; $peer $(label "$row" | sed 's/, Gbit.s//; s/^egress TCP //') run $rep: $STALL s"
                fi
            done
            log "MTU $mtu $dir run $rep:$line"
        done
    done
    if [ "$mtu" = 65520 ]; then
        ip netns exec lyb-out timeout -k 2 $((REPS * 4 * 100 + 60)) "$PY" "$TMP/conn_rate.py" serve "$OUT_IP" "$CPORT" \
            --lifetime $((REPS * 4 * 100 + 30)) >"$TMP/conn-server.log" 2>&1 &
        csrv=$!; track "$csrv"
        if ! wait_for 50 listening "$CPORT"; then
            MISS_CONN="connection server did not listen: $(one_line <"$TMP/conn-server.log")"
        fi
        ROWS+=(conn rtt)
        for rep in $(seq "$REPS"); do
            line=""
            for peer in "${PEERS[@]}"; do
                if [ -n "${MISS_CONN:-}" ]; then R="fail:$MISS_CONN"; else egress_conn "$peer"; fi
                RES[conn|$peer]+="$R$SEP"; line+=" $peer=$R"
            done
            log "connections/s run $rep:$line"
            line=""
            for peer in "${PEERS[@]}"; do
                egress_rtt "$peer"
                RES[rtt|$peer]+="$R$SEP"; line+=" $peer=$R"
            done
            log "ping RTT run $rep:$line"
        done
        stop_pid "$csrv"
    fi
    rootless_stop
done


echo
echo "| egress path | kernel MASQUERADE | slirp4netns | pasta | lanyard | lanyard/slirp4netns | lanyard/pasta | lanyard/kernel |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    kind=gbps; case $row in conn | rtt) kind=int ;; esac
    declare -A C=()
    for peer in "${PEERS[@]}"; do
        vals=()
        [ -n "${RES[$row|$peer]:-}" ] && IFS=$SEP read -r -a vals <<<"${RES[$row|$peer]%"$SEP"}"
        C[$peer]=$(cell "$kind" "${vals[@]}")
    done
    echo "| $(label "$row") | ${C[kernel]} | ${C[slirp4netns]} | ${C[pasta]} | ${C[lanyard]} | $(ratio "${C[lanyard]}" "${C[slirp4netns]}") | $(ratio "${C[lanyard]}" "${C[pasta]}") | $(ratio "${C[lanyard]}" "${C[kernel]}") |"
done
echo
echo "Ratios are lanyard / peer: for Gbit/s and connections/s higher is better (targets: TCP >= 3x slirp4netns, >= 1x pasta); for RTT lower is better."
if [ -n "$STALLS" ]; then
    echo "One-second iperf3 intervals below a tenth of the run's mean rate (stalls):${STALLS#;}."
fi
if [ -s "$TMP/ecpu" ]; then
    echo "lanyard daemon CPU (user+sys) over the egress TCP runs: $(cpu_per_gb "$TMP/ecpu")"
fi
vers() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
echo "Peers: slirp4netns $(vers slirp4netns), passt/pasta $(vers passt), iperf3 $(vers iperf3), nftables $(vers nftables); lanyard $(git rev-parse --short HEAD 2>/dev/null || echo '?'); ${DUR}s x ${REPS} runs, $(nproc) CPUs, kernel $(uname -r), run as $BENCH_USER."
log "done in $(( $(date +%s) - T_START )) s"
