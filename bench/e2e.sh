#!/usr/bin/env bash
# End-to-end benchmark: lanyard against the kernel and the rootless peers,
# side by side in one run on the same machine, printed as markdown tables
# with ratios. Absolute figures drift between runs on shared VMs; the ratios
# are what to compare.
#
#   sudo bench/e2e.sh                 # DUR=5 seconds per iperf3 run, REPS=3
#   sudo DUR=3 REPS=1 bench/e2e.sh    # quicker
#   sudo TABLES=ports DUR=10 bench/e2e.sh   # only some tables (any of
#                                     # "containers egress ports", default all)
#
# Run time: DUR=5 REPS=3 took 997 s on a 2-vCPU VM (containers 137 s, egress
# 270 s, ports 590 s); DUR=3 REPS=1 took 225 s. The ports table is 36 iperf3
# runs of DUR (+ ~0.5 s setup each) per repetition.
#
# Needs root (namespaces, the kernel baselines); lanyard, slirp4netns and
# pasta run as the unprivileged user $BENCH_USER (default: lanyard-ci, else
# nobody). Installs iperf3, slirp4netns, passt (pasta), nftables (for the
# kernel's MASQUERADE and DNAT) and socat (docker-proxy's stand-in) from
# Debian when missing; a peer that is still
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
#
# Table 3, published ports, in the same lyb-host / lyb-out topology: a
# server inside each peer's container (iperf3 -s, or conn_rate.py serve on
# 8080) is published on a host port of lyb-host, and the client runs on the
# host's loopback (127.0.0.1:HOSTPORT, in lyb-host) or outside (lyb-out ->
# up0's 10.200.0.1:HOSTPORT). Host ports, one set per peer:
#
#   kernel DNAT   18001/18011  nft DNAT in PREROUTING (from up0) and OUTPUT
#                              (to 127.0.0.1, with route_localnet=1 and
#                              MASQUERADE of 127/8 onto kbr0), to lyb-kc
#   socat proxy   18002/18012  socat TCP-LISTEN:...,bind=127.0.0.1,fork to
#                              lyb-kc: docker-proxy's stand-in; docker DNATs
#                              outside clients, so it has no outside rows
#   slirp4netns   18003/18013  add_hostfwd on 0.0.0.0 through --api-socket
#   pasta         18004/18014  -t HOST:CONTAINER (loopback clients take its
#                              splice path, outside clients its tap path)
#   lanyard       18005/18015  lanyard run -p HOST:CONTAINER
#
# Rows: iperf3 -c (host -> container) and -R (container -> host client), from
# loopback and from outside, at MTU 1500 and 65520 (container MTU and uplink
# MTU both, as in table 2); $CONNS sequential connections from loopback at
# MTU 65520; and the client address the container sees (conn_rate.py whoami),
# for a loopback and for an outside client.
set -euo pipefail
cd "$(dirname "$0")/.."

DUR=${DUR:-5}
REPS=${REPS:-3}
CONNS=${CONNS:-1000}
TABLES=${TABLES:-containers egress ports}
for t in $TABLES; do
    case $t in containers | egress | ports) ;; *) echo "TABLES: unknown table '$t' (containers, egress, ports)" >&2; exit 2 ;; esac
done
want_table() { [[ " $TABLES " == *" $1 "* ]]; }
LANYARD=${LANYARD:-$PWD/target/release/lanyard}
[ "$(id -u)" = 0 ] || { echo "bench/e2e.sh needs root (namespaces, kernel baselines)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
log() { echo "[$(date +%T)] $*" >&2; }
T_START=$(date +%s)

# --- peers from Debian (command:package) ---
declare -A MISS=()  # peer -> why it is missing for the whole run
want=()
for cp in iperf3:iperf3 slirp4netns:slirp4netns pasta:passt nft:nftables socat:socat; do
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
command -v socat >/dev/null || MISS[socat]="not installed: apt-get install socat failed"
[ -x "$LANYARD" ] || cargo build --release
if [ -d src ] && [ -n "$(find src Cargo.toml -newer "$LANYARD" -print -quit 2>/dev/null)" ]; then
    log "warning: $LANYARD is older than src/ (measuring it as it is; cargo build --release to refresh)"
fi
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
# exited (or a zombie not yet reaped)
exited() { [ ! -e "/proc/$1" ] || [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" = Z ]; }
stop_pid() { # TERM, then KILL after 5 s: the wait is bounded
    kill "$1" 2>/dev/null || true
    local i
    for i in $(seq 50); do exited "$1" && break; sleep 0.1; done
    exited "$1" || kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
    untrack "$1"
}
finish_pid() { # let it exit on its own for 3 s, then stop it
    local i
    for i in $(seq 30); do exited "$1" && break; sleep 0.1; done
    stop_pid "$1"
}
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
# Published ports (table 3): each peer's host ports, iperf3's and HP + CONN_OFF
# for the connection server
declare -A HP=([dnat]=18001 [socat]=18002 [slirp4netns]=18003 [pasta]=18004 [lanyard]=18005)
CONN_OFF=10
UP_IP=10.200.0.1
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
        ip netns exec lyb-host nft -f - <<'NFT' 2>"$TMP/nft.err" || MISS[kernel]="nft MASQUERADE rule failed: $(grep -m1 Error "$TMP/nft.err" | one_line)"
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

rootless_start() { # peer mtu [ports] -> SH, SP or FAIL[peer]; "ports": publish HP[peer] (+ CONN_OFF)
    local peer=$1 mtu=$2 ports=${3:-} log="$TMP/$1-$2${3:+-ports}.log" api="$TMP/run/slirp-$2.sock"
    [ -n "${MISS[$peer]:-}" ] && return
    ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- unshare -Urn sleep 3600 &
    SH[$peer]=$!; track "${SH[$peer]}"
    if ! wait_for 50 holder_ready "${SH[$peer]}"; then FAIL[$peer]="unshare -Urn did not make a namespace in 5 s"; return; fi
    local dev ip
    if [ "$peer" = slirp4netns ]; then
        dev=tap0; ip=10.0.2.100
        local apiopt=()
        [ -n "$ports" ] && { rm -f "$api"; apiopt=(--api-socket "$api"); }
        ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
            slirp4netns --configure --mtu="$mtu" "${apiopt[@]}" "${SH[$peer]}" tap0 >"$log" 2>&1 &
    else
        dev=eth0; ip=10.200.0.1
        local tfwd=none
        [ -n "$ports" ] && tfwd="${HP[pasta]}:$IPORT,$((HP[pasta] + CONN_OFF)):$CPORT"
        ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
            pasta -f -q -4 -D none --config-net -I eth0 -m "$mtu" -t "$tfwd" -u none -T none -U none "${SH[$peer]}" >"$log" 2>&1 &
    fi
    SP[$peer]=$!; track "${SP[$peer]}"
    if ! wait_for 100 addr_up "$peer" "$dev" "$ip"; then
        local why; why=$(one_line <"$log")
        kill -0 "${SP[$peer]}" 2>/dev/null && why="no address on $dev after 10 s${why:+: $why}" || why="exited${why:+: $why}"
        FAIL[$peer]="$peer $why"
        return
    fi
    [ -n "$ports" ] || return 0
    local hp=${HP[$peer]} err
    if [ "$peer" = slirp4netns ]; then
        if ! wait_for 50 test -S "$api"; then FAIL[$peer]="slirp4netns made no API socket in 5 s"; return; fi
        if ! err=$(slirp_hostfwd "$api" "$hp" "$IPORT") || ! err=$(slirp_hostfwd "$api" "$((hp + CONN_OFF))" "$CPORT"); then
            FAIL[$peer]="slirp4netns add_hostfwd failed: $(echo "$err" | one_line)"; return
        fi
    fi
    if ! wait_for 50 host_listening "$hp" || ! wait_for 50 host_listening "$((hp + CONN_OFF))"; then
        FAIL[$peer]="$peer did not listen on host ports $hp/$((hp + CONN_OFF)) in 5 s: $(one_line <"$log")"
    fi
}

host_listening() { ip netns exec lyb-host ss -Hltn "sport = :$1" | grep -q .; }

slirp_hostfwd() { # api-socket host_port guest_port -> 0, or prints slirp4netns's answer
    timeout -k 1 10 python3 - "$@" <<'PY2'
import json, socket, sys
req = {"execute": "add_hostfwd", "arguments": {"proto": "tcp", "host_addr": "0.0.0.0",
       "host_port": int(sys.argv[2]), "guest_port": int(sys.argv[3])}}
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
try:
    s.connect(sys.argv[1])
    s.sendall(json.dumps(req).encode())
    got = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        got += chunk
        try:
            ans = json.loads(got)
            break
        except ValueError:
            continue
except OSError as e:
    print("API socket: %s" % e); sys.exit(1)
try:
    ans = json.loads(got)
except ValueError:
    print("unreadable answer: %r" % got[:200]); sys.exit(1)
if "return" not in ans:
    print(json.dumps(ans)); sys.exit(1)
PY2
}

rootless_stop() {
    local peer
    for peer in slirp4netns pasta; do
        [ -n "${SP[$peer]:-}" ] && stop_pid "${SP[$peer]}"
        [ -n "${SH[$peer]:-}" ] && stop_pid "${SH[$peer]}"
        SP[$peer]=""; SH[$peer]=""; FAIL[$peer]=""
    done
}

ctr_cmd() { # peer mtu [lanyard run options...] -> CTR: the command prefix that runs in the peer's container
    case $1 in
        kernel | dnat | socat) CTR=(ip netns exec lyb-kc) ;;
        slirp4netns | pasta) CTR=(setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- nsenter -t "${SH[$1]}" -U -n --preserve-credentials) ;;
        lanyard) CTR=(ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" run --socket "$ESOCK" --mtu "$2" "${@:3}" --) ;;
    esac
}

unusable() { # peer -> prints why it cannot be measured now, if so
    local why=${MISS[$1]:-${FAIL[$1]:-}}
    [ -n "$why" ] && echo "$why"
}

one_line() { tr '\n|' ' /' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-100; }

egress_tcp() { # peer mtu tx|rx -> R = Gbit/s or "fail:why"; STALL
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
    iperf_result "$rc"
    if [ "$peer" = lanyard ] && [ -n "$IBYTES" ]; then echo "$((t1 - t0)) $IBYTES" >>"$TMP/ecpu"; fi
}

iperf_result() { # rc (of the client, whose output is in $TMP/iperf.json and .err)
    # -> R = "Gbit/s" or "fail:why"; IBYTES = bytes received (or ""); STALL
    local f
    STALL=""; IBYTES=""
    R=$(python3 - "$1" "$TMP/iperf.json" "$TMP/iperf.err" "$((DUR + 20))" <<'PY2'
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
# stalls: one-second intervals below a tenth of the run's mean rate, or
# below 0.1 Gbit/s (a run that crawls from start to end has no dips)
iv = [i["sum"]["bits_per_second"] for i in d.get("intervals", [])]
low = sum(1 for b in iv if b < s["bits_per_second"] / 10 or b < 1e8)
print("%.2f %d %d/%d" % (s["bits_per_second"] / 1e9, s["bytes"], low, len(iv)))
PY2
)
    R=$(echo "$R" | one_line)
    if [ "${R#fail:}" = "$R" ]; then # "Gbit/s bytes stalled/intervals"
        read -r -a f <<<"$R"
        R=${f[0]}; IBYTES=${f[1]}
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

# ======================================================================
# Published ports (table 3); see the comment at the top. Same namespaces
# as the egress table; the server runs in each peer's container, the client
# on the host's loopback (lyb-host) or outside (lyb-out).
# ======================================================================
PPEERS=(dnat socat slirp4netns pasta lanyard)
SOCATS=()
declare -A WHO=()  # lo|peer, out|peer -> the client address the container saw

pbase() { case $1 in dnat | socat) echo kernel ;; *) echo "$1" ;; esac; }
port_unusable() { # peer -> prints why it cannot be measured now, if so
    local b; b=$(pbase "$1")
    local why=${MISS[$b]:-${MISS[$1]:-${FAIL[$1]:-}}}
    [ -n "$why" ] && echo "$why"
}

ports_setup() { # docker's DNAT rules and the socat proxies, for the whole table
    [ -n "${MISS[kernel]:-}" ] && return
    local d=${HP[dnat]} s=${HP[socat]} pair
    ip netns exec lyb-host sysctl -qw net.ipv4.conf.all.route_localnet=1
    ip netns exec lyb-host nft -f - <<NFT 2>"$TMP/nft-ports.err" || MISS[dnat]="nft DNAT rules failed: $(grep -m1 Error "$TMP/nft-ports.err" | one_line)"
table ip lyb_ports {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "up0" ip daddr $UP_IP tcp dport $d dnat to 172.18.0.2:$IPORT
        iifname "up0" ip daddr $UP_IP tcp dport $((d + CONN_OFF)) dnat to 172.18.0.2:$CPORT
    }
    chain output {
        type nat hook output priority -100; policy accept;
        ip daddr 127.0.0.1 tcp dport $d dnat to 172.18.0.2:$IPORT
        ip daddr 127.0.0.1 tcp dport $((d + CONN_OFF)) dnat to 172.18.0.2:$CPORT
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 127.0.0.0/8 oifname "kbr0" masquerade
    }
}
NFT
    [ -n "${MISS[socat]:-}" ] && return
    for pair in "$s:$IPORT" "$((s + CONN_OFF)):$CPORT"; do
        # docker-proxy runs as root and listens where DNAT does not reach
        ip netns exec lyb-host socat "TCP-LISTEN:${pair%%:*},bind=127.0.0.1,fork,reuseaddr" "TCP:172.18.0.2:${pair#*:}" \
            2>>"$TMP/socat.log" &
        SOCATS+=("$!"); track "$!"
    done
    if ! wait_for 50 host_listening "$s" || ! wait_for 50 host_listening "$((s + CONN_OFF))"; then
        MISS[socat]="socat did not listen: $(one_line <"$TMP/socat.log")"
    fi
}

ports_teardown() {
    local p
    for p in "${SOCATS[@]:-}"; do [ -n "$p" ] && stop_pid "$p"; done
    SOCATS=()
    ip netns exec lyb-host nft delete table ip lyb_ports 2>/dev/null || true
}

port_serve() { # peer mtu iperf|conn -> PSRV (server PID), PORT (host port); or 1 and R="fail:why"
    local peer=$1 mtu=$2 cport ready cmd opts=()
    if [ "$3" = iperf ]; then
        PORT=${HP[$peer]}; cport=$IPORT; ready="Server listening"
        cmd=(timeout -k 2 $((DUR + 40)) iperf3 -s -1 -p "$IPORT" --forceflush)
    else
        PORT=$((HP[$peer] + CONN_OFF)); cport=$CPORT; ready=listening
        cmd=(timeout -k 2 120 "$PY" "$TMP/conn_rate.py" serve 0.0.0.0 "$CPORT" --lifetime 110)
    fi
    [ "$peer" = lanyard ] && opts=(-p "$PORT:$cport")
    ctr_cmd "$peer" "$mtu" "${opts[@]}"
    "${CTR[@]}" "${cmd[@]}" >"$TMP/srv.out" 2>&1 &
    PSRV=$!; track "$PSRV"
    if ! wait_for 100 grep -q "$ready" "$TMP/srv.out"; then
        R="fail:server in the container did not listen in 10 s: $(one_line <"$TMP/srv.out")"
        stop_pid "$PSRV"
        return 1
    fi
}

port_tcp() { # peer mtu lo|out tx|rx -> R = Gbit/s or "fail:why"; STALL
    local peer=$1 mtu=$2 from=$3 dir=$4 rflag=() cli rc=0 t0=0 t1=0 why
    STALL=""
    if why=$(port_unusable "$peer"); then R="fail:$why"; return; fi
    [ "$dir" = rx ] && rflag=(-R)
    port_serve "$peer" "$mtu" iperf || return 0
    if [ "$from" = lo ]; then cli=(ip netns exec lyb-host iperf3 -c 127.0.0.1); else cli=(ip netns exec lyb-out iperf3 -c "$UP_IP"); fi
    [ "$peer" = lanyard ] && t0=$(cpu_ticks "$EDPID")
    timeout -k 3 $((DUR + 20)) "${cli[@]}" -p "$PORT" -t "$DUR" --connect-timeout 5000 -J "${rflag[@]}" \
        >"$TMP/iperf.json" 2>"$TMP/iperf.err" || rc=$?
    [ "$peer" = lanyard ] && t1=$(cpu_ticks "$EDPID")
    finish_pid "$PSRV"
    iperf_result "$rc"
    if [ "${R#fail:}" != "$R" ]; then log "  $peer $from $dir MTU $mtu failed; server in the container said: $(tail -3 "$TMP/srv.out" | one_line)"; fi
    if [ "$peer" = lanyard ] && [ -n "$IBYTES" ]; then echo "$((t1 - t0)) $IBYTES" >>"$TMP/pcpu"; fi
}

whoami_from() { # netns addr -> the client address the server saw, or "fail:why" (port: $PORT)
    local a
    a=$(timeout -k 2 15 ip netns exec "$1" "$PY" "$TMP/conn_rate.py" whoami "$2" "$PORT" --timeout 5 2>&1 | tail -1 | one_line) || true
    echo "${a:-fail:no answer}"
}

port_conn() { # peer rep -> R = connections/s or "fail:why"; on rep 1 also WHO[lo|peer], WHO[out|peer]
    local peer=$1 rc=0 why
    if why=$(port_unusable "$peer"); then R="fail:$why"; return; fi
    port_serve "$peer" 65520 conn || return 0
    R=$(timeout -k 3 90 ip netns exec lyb-host "$PY" "$TMP/conn_rate.py" client 127.0.0.1 "$PORT" "$CONNS" --deadline 60 \
        2>"$TMP/conn.err") || rc=$?
    if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
        R="fail:client killed after 90 s"
    elif [ -z "$R" ]; then
        R="fail:exit $rc: $(tail -1 "$TMP/conn.err" | one_line)"
    fi
    R=$(echo "$R" | tail -1 | one_line)
    if [ "$2" = 1 ]; then
        WHO[lo|$peer]=$(whoami_from lyb-host 127.0.0.1)
        [ "$peer" = socat ] || WHO[out|$peer]=$(whoami_from lyb-out "$UP_IP")
    fi
    stop_pid "$PSRV"
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

log "lanyard e2e benchmark: $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), ${DUR}s x ${REPS} runs (medians), user $BENCH_USER, tables: $TABLES"

# ---------------- table 1: container <-> container ----------------
if want_table containers; then
T0=$(date +%s)
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
log "containers table: $(( $(date +%s) - T0 )) s"
fi

SEP=$'\x1f'  # separates the values of a cell (reasons hold spaces)
if want_table egress || want_table ports; then
    log "setting up lyb-host / lyb-out"
    egress_setup
fi

# ---------------- table 2: egress ----------------
label() {
    case $1 in
        tcp-tx-*) echo "egress TCP container -> outside, MTU ${1##*-}, Gbit/s" ;;
        tcp-rx-*) echo "egress TCP outside -> container (iperf3 -R), MTU ${1##*-}, Gbit/s" ;;
        conn) echo "egress TCP connections/s, $CONNS sequential, container -> outside, MTU 65520" ;;
        rtt) echo "ping RTT container -> outside, MTU 65520, us" ;;
    esac
}

if want_table egress; then
T0=$(date +%s)
: >"$TMP/ecpu"
declare -A RES=()  # row|peer -> values, each ended by $SEP
declare -A STL=()  # row|peer -> runs with stalls
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
                    STL[$row|$peer]=$((${STL[$row|$peer]:-0} + 1))
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
        [ -n "${STL[$row|$peer]:-}" ] && C[$peer]+=" (stalled in ${STL[$row|$peer]}/$REPS runs)"
    done
    echo "| $(label "$row") | ${C[kernel]} | ${C[slirp4netns]} | ${C[pasta]} | ${C[lanyard]} | $(ratio "${C[lanyard]}" "${C[slirp4netns]}") | $(ratio "${C[lanyard]}" "${C[pasta]}") | $(ratio "${C[lanyard]}" "${C[kernel]}") |"
done
echo
echo "Ratios are lanyard / peer: for Gbit/s and connections/s higher is better (targets: TCP >= 3x slirp4netns, >= 1x pasta); for RTT lower is better."
if [ -n "$STALLS" ]; then
    echo "One-second iperf3 intervals below a tenth of the run's mean rate or below 0.1 Gbit/s (stalls):${STALLS#;}."
fi
if [ -s "$TMP/ecpu" ]; then
    echo "lanyard daemon CPU (user+sys) over the egress TCP runs: $(cpu_per_gb "$TMP/ecpu")"
fi
log "egress table: $(( $(date +%s) - T0 )) s"
fi

# ---------------- table 3: published ports ----------------
plabel() {
    local m=${1##*-}
    case $1 in
        lo-tx-*) echo "host loopback -> container (iperf3 -c 127.0.0.1 -p HOSTPORT), MTU $m, Gbit/s" ;;
        lo-rx-*) echo "container -> host loopback client (iperf3 -R), MTU $m, Gbit/s" ;;
        out-tx-*) echo "outside -> container (lyb-out to $UP_IP:HOSTPORT), MTU $m, Gbit/s" ;;
        out-rx-*) echo "container -> outside client (iperf3 -R), MTU $m, Gbit/s" ;;
        conn) echo "TCP connections/s, $CONNS sequential, host loopback -> container, MTU 65520" ;;
        who-lo) echo "client address the container sees, client on host loopback" ;;
        who-out) echo "client address the container sees, outside client 10.200.0.2" ;;
    esac
}
met() { # ratio target peer -> "1.23x peer (met)" / "(missed)" / "peer not measured"
    python3 -c "import sys; r, t, p = sys.argv[1:]; print(p + ' not measured' if r == '-' else '%sx %s (%s)' % (r, p, 'met' if float(r) >= float(t) else 'missed'))" "$@"
}
NA_SOCAT="n/a (docker DNATs outside clients; its proxy serves loopback)"

if want_table ports; then
T0=$(date +%s)
log "published ports: DNAT rules, socat proxies"
ports_setup
: >"$TMP/pcpu"
declare -A PRES=()  # row|peer -> values, each ended by $SEP
declare -A STL=()   # row|peer -> runs with stalls
PSTALLS=""
for mtu in 1500 65520; do
    egress_mtu "$mtu"
    for peer in slirp4netns pasta; do rootless_start "$peer" "$mtu" ports; done
    for peer in "${PPEERS[@]}"; do
        if w=$(port_unusable "$peer"); then log "ports MTU $mtu: $peer unusable: $w"; fi
    done
    for from in lo out; do
        for dir in tx rx; do
            row="$from-$dir-$mtu"
            for rep in $(seq "$REPS"); do
                line=""
                for peer in "${PPEERS[@]}"; do
                    [ "$from" = out ] && [ "$peer" = socat ] && continue
                    port_tcp "$peer" "$mtu" "$from" "$dir"
                    PRES[$row|$peer]+="$R$SEP"
                    line+=" $peer=$R"
                    if [ -n "$STALL" ]; then
                        line+="[$STALL s stalled]"
                        PSTALLS+="; $peer $(plabel "$row" | sed 's/ (.*)//; s/, Gbit.s//') run $rep: $STALL s"
                        STL[$row|$peer]=$((${STL[$row|$peer]:-0} + 1))
                    fi
                done
                log "ports MTU $mtu $from $dir run $rep:$line"
            done
        done
    done
    if [ "$mtu" = 65520 ]; then
        for rep in $(seq "$REPS"); do
            line=""
            for peer in "${PPEERS[@]}"; do
                port_conn "$peer" "$rep"
                PRES[conn|$peer]+="$R$SEP"; line+=" $peer=$R"
            done
            log "ports connections/s run $rep:$line"
        done
    fi
    rootless_stop
done
ports_teardown

echo
echo "| published port | kernel DNAT | socat proxy | slirp4netns | pasta | lanyard | lanyard/slirp4netns | lanyard/pasta | lanyard/DNAT | lanyard/socat |"
echo "|---|---|---|---|---|---|---|---|---|---|"
TARGETS=""
for row in lo-tx-65520 lo-tx-1500 lo-rx-65520 lo-rx-1500 out-tx-65520 out-tx-1500 out-rx-65520 out-rx-1500 conn who-lo who-out; do
    declare -A C=()
    for peer in "${PPEERS[@]}"; do
        if [ "$peer" = socat ] && [[ $row == out-* || $row == who-out ]]; then C[$peer]=$NA_SOCAT; continue; fi
        if [[ $row == who-* ]]; then
            v=${WHO[${row#who-}|$peer]:-}
            if [ -z "$v" ]; then C[$peer]="missing ($(port_unusable "$peer" || echo "not run"))"
            elif [ "${v#fail:}" != "$v" ]; then C[$peer]="missing (${v#fail:})"
            else C[$peer]=$v; fi
            continue
        fi
        kind=gbps; [ "$row" = conn ] && kind=int
        vals=()
        [ -n "${PRES[$row|$peer]:-}" ] && IFS=$SEP read -r -a vals <<<"${PRES[$row|$peer]%"$SEP"}"
        C[$peer]=$(cell "$kind" "${vals[@]}")
        [ -n "${STL[$row|$peer]:-}" ] && C[$peer]+=" (stalled in ${STL[$row|$peer]}/$REPS runs)"
    done
    if [[ $row == who-* ]]; then
        rs="- | - | - | -"
    else
        rs="$(ratio "${C[lanyard]}" "${C[slirp4netns]}") | $(ratio "${C[lanyard]}" "${C[pasta]}") | $(ratio "${C[lanyard]}" "${C[dnat]}") | $(ratio "${C[lanyard]}" "${C[socat]}")"
    fi
    echo "| $(plabel "$row") | ${C[dnat]} | ${C[socat]} | ${C[slirp4netns]} | ${C[pasta]} | ${C[lanyard]} | $rs |"
    if [[ $row == *-tx-* ]]; then
        rp=$(ratio "${C[lanyard]}" "${C[pasta]}"); rsl=$(ratio "${C[lanyard]}" "${C[slirp4netns]}")
        TARGETS+="; ${row%%-*} MTU ${row##*-}: $(met "$rp" 1.0 pasta), $(met "$rsl" 3.0 slirp4netns)"
    fi
done
echo
echo "Ratios are lanyard / peer, higher is better. Targets, host -> container (lo: client on the host's loopback, out: outside client): lanyard >= 1.0x pasta and >= 3x slirp4netns (the issue asks for 10 s runs; this run: ${DUR} s)${TARGETS}."
echo "Host ports per peer: DNAT ${HP[dnat]}, socat ${HP[socat]}, slirp4netns ${HP[slirp4netns]}, pasta ${HP[pasta]}, lanyard ${HP[lanyard]} (connection server: +$CONN_OFF); loopback clients take pasta's splice path, outside clients its tap path; socat runs with its default 8 KiB buffer, as in shared/PEERS.md (docker-proxy itself copies with Go's io.Copy, which splices on Linux, and may be faster)."
if [ -n "$PSTALLS" ]; then
    echo "One-second iperf3 intervals below a tenth of the run's mean rate or below 0.1 Gbit/s (stalls):${PSTALLS#;}."
fi
if [ -s "$TMP/pcpu" ]; then
    echo "lanyard daemon CPU (user+sys) over the published-port TCP runs: $(cpu_per_gb "$TMP/pcpu")"
fi
log "ports table: $(( $(date +%s) - T0 )) s"
fi

echo
vers() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
echo "Peers: slirp4netns $(vers slirp4netns), passt/pasta $(vers passt), iperf3 $(vers iperf3), nftables $(vers nftables), socat $(vers socat); lanyard binary of $(date -r "$LANYARD" '+%F %T') (HEAD $(git rev-parse --short HEAD 2>/dev/null || echo '?')); ${DUR}s x ${REPS} runs, $(nproc) CPUs, kernel $(uname -r), run as $BENCH_USER."
log "done in $(( $(date +%s) - T_START )) s"
