#!/usr/bin/env bash
# Cost as work grows (issue 21): what lanyard's daemon spends as the number
# of containers and of NAT flows grows, beside the kernel doing the same
# work, printed as markdown tables a reader can plot (one row per point of
# the curve). The MAC table at its bound is criterion's `fdb_at_bound`
# group (`cargo bench --bench forwarding -- fdb_at_bound`), not this script.
#
#   sudo bench/scale.sh                        # both tables, DUR=5
#   sudo TABLES=flows FLOWS="1000 10000" bench/scale.sh
#   sudo TABLES=containers COUNTS="2 16" DUR=3 bench/scale.sh
#   sudo LANYARD=/tmp/lanyard-copy bench/scale.sh   # measure that binary
#   sudo PERF=/tmp/prof TABLES=containers bench/scale.sh
#                                              # and write a perf profile of the
#                                              # daemon mid-run per row
#                                              # (PERF/scale-N-tT.data; perf -e cpu-clock)
#
# Table "containers": COUNTS (default 2 16 64 128) containers on one
# network, in pairs; every pair runs one iperf3 TCP stream (client in the
# odd container, server in the even one, MTU $MTU, default 1500, docker's),
# all pairs started together for DUR seconds.
#   kernel:  namespaces lys-k1..N (10.98.0.2.. /24), each a veth into
#            bridge br0 in namespace lys-br
#   lanyard: a daemon of its own per row (the default config, but for
#            [dataplane] threads: one row per count in THREADS, default
#            "1 2"), and N `lanyard run --name lys-cI --ip 172.17.0.(I+1)`
#            containers
# Columns: aggregate Gbit/s (the receivers' sum) for each and the ratio;
# lanyard's daemon RSS with no container, with the N attached and idle,
# and its peak (VmHWM) after the run; its CPU (user+sys) per GB moved.
# Every container waits for a go file before its client starts, so all N
# are attached when the idle RSS is read and the pairs start together.
#
# Table "flows": FLOWS (default 1000 10000 19000 100000; 19,000: about the most
# a 20,000 open-file limit holds, which this machine sets) established NAT'd TCP
# connections held at once by one container (bench/flow_hold.py), to a
# server in namespace lys-out (10.200.0.2, ports 7001-7008: one source
# address reaches one port from ~28,000 source ports only), the topology of
# e2e.sh's egress table:
#   lys-out   10.200.0.2/24 on eth0; flow_hold.py serve
#     | veth
#   lys-host  up0 10.200.0.1/24, default route via 10.200.0.2, ip_forward;
#             the kernel: bridge kbr0 172.18.0.1/16 and namespace lys-kc
#             (172.18.0.2) behind nft MASQUERADE; lanyard: a daemon of its
#             own per row, as $BENCH_USER, with [nat] max_flows = 131072 and
#             the per-container bound and new-flow budget raised to match
#             (the defaults: 65,536, 4,096 per container, 2,000/s), and
#             [limits] of 64 ports and control connections, so that the
#             open-file limit leaves it the most flows (it fits max_flows to
#             what the limit leaves, and says so: printed under the table)
# Rows: 0 (the probes alone: an empty table) and each count. Columns: the
# rate at which the N were opened (connections/s, 256 connects
# outstanding), for the kernel's MASQUERADE and for lanyard; the latency of
# one more flow while the N are held (connect + 1-byte echo + close, median
# and 90th percentile of 50); lanyard's daemon RSS before and with the N,
# and the RSS per flow; the flows its table reports (`lanyard stats`) and
# the kernel's conntrack count, as checks that the N are really held.
#
# Needs root (namespaces, the kernel's reference; the open-file limit:
# 100,000 flows are 300,000 sockets, the client's, the NAT's and the
# server's, so a row above what the hard limit allows one process, where
# root cannot raise it, is printed as not measurable). lanyard runs as $BENCH_USER (default lanyard-ci, else nobody).
# Installs iperf3 and nftables from Debian when missing. Traffic stays in
# the namespaces made here; everything started here is stopped on exit (by
# PID, and what runs inside the namespaces made here). Run time on a 2-vCPU
# VM: see docs/PERFORMANCE.md ("Cost as work grows").
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh
T_START=$(date +%s)

DUR=${DUR:-5}
MTU=${MTU:-1500}
PERF=${PERF:-}
COUNTS=${COUNTS:-2 16 64 128}
THREADS=${THREADS:-1 2}
FLOWS=${FLOWS:-1000 10000 19000 100000}
TABLES=${TABLES:-containers flows}
for t in $TABLES; do
    case $t in containers | flows) ;; *) echo "TABLES: unknown table '$t' (containers, flows)" >&2; exit 2 ;; esac
done
for n in $COUNTS; do
    case $n in *[!0-9]* | "") echo "COUNTS: '$n' is not a count" >&2; exit 2 ;; esac
    [ $((n % 2)) = 0 ] && [ "$n" -ge 2 ] && [ "$n" -le 200 ] || { echo "COUNTS: $n must be even, 2..200" >&2; exit 2; }
done
for t in $THREADS; do
    case $t in [1-8]) ;; *) echo "THREADS: '$t' is not a thread count, 1..8" >&2; exit 2 ;; esac
done
for n in $FLOWS; do
    case $n in *[!0-9]* | "") echo "FLOWS: '$n' is not a count" >&2; exit 2 ;; esac
    [ "$n" -le 120000 ] || { echo "FLOWS: $n is above the 120,000 this script bounds it to" >&2; exit 2; }
done
want_table() { [[ " $TABLES " == *" $1 "* ]]; }
LANYARD=${LANYARD:-$PWD/target/release/lanyard}
[ "$(id -u)" = 0 ] || { echo "bench/scale.sh needs root (namespaces, the kernel's reference)" >&2; exit 2; }
want=()
for cp in iperf3:iperf3 nft:nftables; do command -v "${cp%%:*}" >/dev/null || want+=("${cp#*:}"); done
if [ ${#want[@]} -gt 0 ]; then
    log "installing ${want[*]} from Debian"
    { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q "${want[@]}"; } >/tmp/lanyard-scale-apt.log 2>&1 || true
fi
command -v iperf3 >/dev/null || { echo "iperf3 is missing and could not be installed" >&2; exit 1; }
[ -x "$LANYARD" ] || cargo build --release
bench_user_setup
# Every flow is a socket in each of three processes (the client, the NAT,
# the server), so the open-file limit bounds the flows a row can hold.
# Raised to 262,144 where the machine lets root (CAP_SYS_RESOURCE), else
# the hard limit as it is; a row above what it leaves is printed as not
# measurable, with the limit.
ulimit -Hn 262144 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)"
FD_LIMIT=$(ulimit -Hn)

TMP=$(mktemp -d /tmp/lanyard-scale.XXXXXX)
chmod 755 "$TMP"
cp "$LANYARD" "$TMP/lanyard"; chmod 755 "$TMP/lanyard"
cp bench/flow_hold.py "$TMP/"; chmod 644 "$TMP/flow_hold.py"
mkdir "$TMP/run" "$TMP/out"; chown "$U_ID:$G_ID" "$TMP/run" "$TMP/out"; chmod 700 "$TMP/run"; chmod 755 "$TMP/out"
SOCK="$TMP/run/lanyard.sock"
NS=(lys-br lys-host lys-out lys-kc)
MAXN=0
for n in $COUNTS; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
for i in $(seq "$MAXN"); do NS+=("lys-k$i"); done
trap cleanup EXIT
trap 'exit 130' INT TERM

hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }
iperf_sum() { # json files... -> "Gbit/s bytes pairs-that-reported"
    python3 - "$@" <<'PY2'
import json, sys
bps = byt = ok = 0
for f in sys.argv[1:]:
    try:
        d = json.load(open(f))
        r = d["end"]["sum_received"]
        bps += r["bits_per_second"]; byt += r["bytes"]; ok += 1
    except (OSError, ValueError, KeyError):
        pass
print("%.2f %d %d" % (bps / 1e9, byt, ok))
PY2
}

frames_between() { # stats-a.json stats-b.json seconds -> "mean-bytes frames/s": the frames the
    # senders' ports gave the switch (the ports that took in more than they got) between the two
    python3 - "$@" <<'PY2'
import json, sys
def load(f):
    try:
        return json.load(open(f))
    except (OSError, ValueError):
        return {}
ja, jb = load(sys.argv[1]), load(sys.argv[2])
def ports(j):
    return {p["id"]: p["counters"] for p in j.get("ports", [])}
a, b = ports(ja), ports(jb)
pk = by = 0
for i, c in b.items():
    c0 = a.get(i)
    if c0 is None:
        continue
    rx, tx = c["rx_bytes"] - c0["rx_bytes"], c["tx_bytes"] - c0["tx_bytes"]
    if rx > tx:
        pk += c["rx_packets"] - c0["rx_packets"]; by += rx
secs = float(sys.argv[3])
print("%.0f %.0f" % (by / pk, pk / secs) if pk else "- -")
PY2
}

# --- table "containers" ---
kernel_setup() { # n
    local i
    for x in lys-br $(seq -f 'lys-k%g' "$1"); do ip netns del "$x" 2>/dev/null || true; ip netns add "$x"; done
    ip -n lys-br link add br0 type bridge
    ip -n lys-br link set br0 up
    for i in $(seq "$1"); do
        ip -n lys-br link add "v$i" type veth peer name eth0 netns "lys-k$i"
        ip -n lys-br link set "v$i" mtu "$MTU" master br0 up
        ip -n "lys-k$i" link set lo up
        ip -n "lys-k$i" link set eth0 mtu "$MTU" up
        ip -n "lys-k$i" addr add "10.98.0.$((i + 1))/24" dev eth0
    done
}
kernel_teardown() { for x in lys-br $(seq -f 'lys-k%g' "$1"); do ip netns del "$x" 2>/dev/null || true; done; }

ctr_prefix() { # kind i -> C: the command prefix that runs in container i; CIP: its address
    if [ "$1" = kernel ]; then
        C=(ip netns exec "lys-k$2" setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups --); CIP=10.98.0.$(($2 + 1))
    else
        C=(setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" run --socket "$SOCK"
            --mtu "$MTU" --name "lys-c$2" --ip "172.17.0.$(($2 + 1))" --)
        CIP=172.17.0.$(($2 + 1))
    fi
}

containers_run() { # kind n -> R = "Gbit/s pairs-reported"; for lanyard also RSS0 RSS1 HWM CPUGB; or R=fail:why
    local kind=$1 n=$2 i p go=$TMP/out/go pids=() t0 ticks sum
    rm -f "$go" "$TMP"/out/c-*
    if [ "$kind" = kernel ]; then
        kernel_setup "$n"
    else
        daemon_start - "$SOCK" "$TMP/daemon-c$n-t$THR.log" "$TMP/threads-$THR.toml" || { R="fail:$DFAIL"; return 0; }
        sleep 0.5; RSS0=$(rss_kib "$DPID")
    fi
    # servers in the even containers, clients (waiting for the go file) in the odd ones
    for p in $(seq $((n / 2))); do
        ctr_prefix "$kind" $((2 * p)); local sip=$CIP
        "${C[@]}" timeout -k 2 $((DUR + 120)) iperf3 -s -1 --forceflush >"$TMP/out/c-$p.srv" 2>&1 &
        pids+=("$!"); track "$!"
        ctr_prefix "$kind" $((2 * p - 1))
        "${C[@]}" timeout -k 2 $((DUR + 120)) sh -c \
            'i=0; until [ -e "$1" ]; do i=$((i + 1)); [ $i -lt 1800 ] || exit 3; sleep 0.05; done; shift; exec iperf3 "$@"' \
            sh "$go" -c "$sip" -t "$DUR" --connect-timeout 10000 -J >"$TMP/out/c-$p.json" 2>"$TMP/out/c-$p.err" &
        pids+=("$!"); track "$!"
    done
    local ready=1
    for p in $(seq $((n / 2))); do
        wait_for 600 grep -q "Server listening" "$TMP/out/c-$p.srv" || { ready=0; break; }
    done
    if [ "$kind" = lanyard ] && [ "$ready" = 1 ]; then
        # every client's container attached too: the default network lists all N
        wait_for 600 sh -c "[ \$(setpriv --reuid=$U_ID --regid=$G_ID --clear-groups -- $TMP/lanyard network inspect --socket $SOCK default 2>/dev/null | grep -c '\"lys-c') -ge $n ]" ||
            log "  not all $n containers were listed on the default network in 60 s"
        sleep 0.5; RSS1=$(rss_kib "$DPID"); t0=$(cpu_ticks "$DPID")
    fi
    if [ "$ready" = 0 ]; then
        R="fail:server $p did not listen in 60 s: $(one_line <"$TMP/out/c-$p.srv")"
        for i in "${pids[@]}"; do stop_pid "$i"; done
    else
        touch "$go"
        if [ "$kind" = lanyard ]; then
            # the frames the switch moved over the middle of the run (every
            # port's counters, 1 s in and 1 s before the end), and a profile
            local mid
            mid=$(awk -v d="$DUR" 'BEGIN { print (d > 2 ? d - 2 : 1) }')
            sleep 1
            as_user timeout -k 1 5 "$TMP/lanyard" stats --json --socket "$SOCK" >"$TMP/out/stats-a.json" 2>/dev/null || true
            if [ -n "$PERF" ]; then
                timeout 30 perf record -q -e cpu-clock -F 999 -g -p "$DPID" -o "$PERF/scale-$n-t$THR.data" -- sleep "$mid" >/dev/null 2>&1 || log "  perf record failed"
            else
                sleep "$mid"
            fi
            as_user timeout -k 1 5 "$TMP/lanyard" stats --json --socket "$SOCK" >"$TMP/out/stats-b.json" 2>/dev/null || true
            FRAMES=$(frames_between "$TMP/out/stats-a.json" "$TMP/out/stats-b.json" "$mid")
        fi
        for i in "${pids[@]}"; do
            wait "$i" 2>/dev/null || true
            untrack "$i"
        done
        sum=$(iperf_sum "$TMP"/out/c-*.json)
        R="${sum%% *} $(echo "$sum" | cut -d' ' -f3)"
        if [ "$kind" = lanyard ]; then
            ticks=$(($(cpu_ticks "$DPID") - t0))
            HWM=$(hwm_kib "$DPID")
            CPUGB=$(awk -v t="$ticks" -v b="$(echo "$sum" | cut -d' ' -f2)" -v hz="$(getconf CLK_TCK)" \
                'BEGIN { if (b > 0) printf "%.3f", t / hz / (b / 1e9); else print "-" }')
        fi
    fi
    if [ "$kind" = kernel ]; then kernel_teardown "$n"; else stop_pid "$DPID"; fi
}

if want_table containers; then
    log "table containers: COUNTS=$COUNTS, THREADS=$THREADS, MTU $MTU, DUR=$DUR"
    for t in $THREADS; do
        printf '[dataplane]\nthreads = %s\n' "$t" >"$TMP/threads-$t.toml"; chmod 644 "$TMP/threads-$t.toml"
    done
    echo
    echo "| containers on one network (pairs, 1 TCP stream each, MTU $MTU) | lanyard data-path threads | kernel bridge Gbit/s | lanyard Gbit/s | lanyard/kernel | lanyard RSS, no container (MiB) | lanyard RSS, N attached (MiB) | RSS per container (KiB) | lanyard peak RSS (MiB) | lanyard CPU per GB (s) | senders' frames into lanyard: mean bytes, frames/s |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    for n in $COUNTS; do
        log "  $n containers: kernel"
        containers_run kernel "$n"; K=$R
        kc=${K%% *}
        [ "${K#fail:}" != "$K" ] && kc=$K
        # a pair that reported nothing makes the sum short: say so in the cell
        [ "${K#fail:}" = "$K" ] && [ "${K#* }" != $((n / 2)) ] && kc="$kc (${K#* } of $((n / 2)) pairs reported)"
        for THR in $THREADS; do
            log "  $n containers: lanyard, $THR thread(s)"
            RSS0=0 RSS1=0 HWM=0 CPUGB=- FRAMES="- -"
            containers_run lanyard "$n"; L=$R
            lc=${L%% *}
            [ "${L#fail:}" != "$L" ] && lc=$L
            [ "${L#fail:}" = "$L" ] && [ "${L#* }" != $((n / 2)) ] && lc="$lc (${L#* } of $((n / 2)) pairs reported)"
            per=$(awk -v a="$RSS0" -v b="$RSS1" -v n="$n" 'BEGIN { if (b > 0) printf "%.0f", (b - a) / n; else print "-" }')
            echo "| $n | $THR | $kc | $lc | $(ratio "${L%% *}" "${K%% *}") | $(mib "$RSS0") | $(mib "$RSS1") | $per | $(mib "$HWM") | $CPUGB | $(echo "$FRAMES" | awk '{ print $1 " B, " $2 "/s" }') |"
        done
    done
    echo
    echo "Aggregate: the sum of the pairs' receivers over DUR=$DUR s, all pairs started together; ratio higher is better. RSS: the daemon's VmRSS before any container, with all N attached and idle (per container: the difference over N), and its VmHWM after the run. CPU per GB: the daemon's user+sys over the run per GB the receivers got. Senders' frames: what the clients' ports handed the switch over the middle DUR - 2 s (lanyard stats, every port's counters): their mean size (a TCP super-frame carries up to 64 KiB) and how many a second. lanyard: the default config but [dataplane] threads (1 is the default); a daemon of its own per row. $(nproc) CPUs: the iperf3 processes share them with lanyard's threads."
fi

# --- table "flows" ---
flows_setup() {
    local n
    for n in lys-host lys-out lys-kc; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
    ip -n lys-host link add up0 type veth peer name eth0 netns lys-out
    ip -n lys-host link set lo up; ip -n lys-out link set lo up
    ip -n lys-host addr add 10.200.0.1/24 dev up0
    ip -n lys-out addr add 10.200.0.2/24 dev eth0
    ip -n lys-host link set up0 up; ip -n lys-out link set eth0 up
    ip -n lys-host route add default via 10.200.0.2
    ip netns exec lys-host sysctl -qw net.ipv4.ip_forward=1
    # the NAT's (and MASQUERADE's) source ports: the whole range, 8 server ports x ~64,000
    ip netns exec lys-host sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
    ip netns exec lys-host sysctl -qw net.ipv4.ping_group_range="0 2147483647"
    ip -n lys-host link add kbr0 type bridge
    ip -n lys-host addr add 172.18.0.1/16 dev kbr0
    ip -n lys-host link set kbr0 up
    ip -n lys-host link add vkc type veth peer name eth0 netns lys-kc
    ip -n lys-host link set vkc master kbr0 up
    ip -n lys-kc link set lo up; ip -n lys-kc link set eth0 up
    ip -n lys-kc addr add 172.18.0.2/16 dev eth0
    ip -n lys-kc route add default via 172.18.0.1
    ip netns exec lys-host nft -f - <<'NFT'
table ip lys {
    chain post {
        type nat hook postrouting priority 100;
        ip saddr 172.18.0.0/16 oifname "up0" masquerade
    }
}
NFT
    ip netns exec lys-out setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
        timeout 36000 "$PY" "$TMP/flow_hold.py" serve 10.200.0.2 7001 8 --lifetime 36000 >"$TMP/out/serve.out" 2>&1 &
    track "$!"
    wait_for 100 grep -q listening "$TMP/out/serve.out" || { log "the flow server did not start: $(one_line <"$TMP/out/serve.out")"; exit 1; }
    # Few ports and control connections: the most of the open-file limit
    # for flows (the daemon fits max_flows to what is left, and says so).
    printf '[limits]\nmax_ports = 64\nmax_control_connections = 64\n[nat]\nmax_flows = 131072\nmax_flows_per_container = 131072\nnew_flows_per_sec = 1000000\nnew_flows_burst = 1000000\n' >"$TMP/flows.toml"
    chmod 644 "$TMP/flows.toml"
}

hold_run() { # kind n -> HELD ("n secs rate"), PROBE ("median p90"), FLOWCOUNT; lanyard: RSS0 RSS1; or R=fail:why
    local kind=$1 n=$2 go out pid pre
    go=$TMP/out/go-$kind-$n; out=$TMP/out/hold-$kind-$n.out
    R=""; HELD=""; PROBE=""; FLOWCOUNT=-
    rm -f "$go"
    if [ "$kind" = kernel ]; then
        pre=(ip netns exec lys-kc setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups --)
    else
        daemon_start lys-host "$SOCK" "$TMP/daemon-f$n.log" "$TMP/flows.toml" || { R="fail:$DFAIL"; return 0; }
        sleep 0.5; RSS0=$(rss_kib "$DPID")
        pre=(setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" run --socket "$SOCK" --name lys-hold --)
    fi
    "${pre[@]}" timeout -k 2 400 "$PY" "$TMP/flow_hold.py" hold 10.200.0.2 7001 8 "$n" --go "$go" --deadline 300 >"$out" 2>&1 &
    pid=$!; track "$pid"
    if wait_for 3000 grep -q '^held\|^fail' "$out" && grep -q '^held' "$out"; then
        HELD=$(grep '^held' "$out" | cut -d' ' -f2-)
        if [ "$kind" = kernel ]; then
            FLOWCOUNT=$(ip netns exec lys-host cat /proc/sys/net/netfilter/nf_conntrack_count 2>/dev/null || echo -)
        else
            RSS1=$(rss_kib "$DPID")
            FLOWCOUNT=$(as_user "$TMP/lanyard" stats --json --socket "$SOCK" 2>/dev/null |
                python3 -c 'import json,sys; print(json.load(sys.stdin).get("nat_flows", "-"))' 2>/dev/null || echo -)
        fi
        touch "$go"
        wait_for 600 grep -q '^probe\|^fail' "$out" || true
        PROBE=$(grep '^probe' "$out" | cut -d' ' -f2- || true)
    fi
    [ -n "$PROBE" ] || R="fail:$(grep -m1 '^fail' "$out" | cut -c6- | one_line)"
    [ "$R" = "fail:" ] && R="fail:no answer from flow_hold.py: $(one_line <"$out")"
    finish_pid "$pid"
    [ "$kind" = kernel ] || stop_pid "$DPID"
    # the reset connections leave no TIME_WAIT; conntrack's entries of the closed ones go on their own
}

if want_table flows; then
    log "table flows: FLOWS=$FLOWS, open-file limit $FD_LIMIT"
    flows_setup
    FITTED=""
    echo
    echo "| established NAT flows held | opened, kernel MASQUERADE (conn/s) | opened, lanyard (conn/s) | lanyard/kernel | one more flow, kernel: median / p90 (us) | one more flow, lanyard: median / p90 (us) | lanyard/kernel (median) | lanyard RSS before (MiB) | lanyard RSS with the flows (MiB) | RSS per flow (bytes) | flows in the table: kernel conntrack / lanyard |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    # what a row needs: the flows, the client's window and the probes' in
    # each process; the daemon keeps 448 of its own (its 64 ports, 64
    # connections and 320: lanyard's config::RESERVED_FDS)
    fits=$((FD_LIMIT - 448 - 512))
    for n in 0 $FLOWS; do
        if [ "$n" -gt "$fits" ]; then
            echo "| $n | not measured: the open-file limit here is $FD_LIMIT (hard; this machine does not let root raise it), and every flow is a socket in the client, the NAT and the server: at most $fits flows | | | | | | | | | |"
            continue
        fi
        log "  $n flows: kernel"
        RSS0=0 RSS1=0
        hold_run kernel "$n"; KH=$HELD KP=$PROBE KR=$R KF=$FLOWCOUNT
        log "  $n flows: lanyard"
        hold_run lanyard "$n"; LH=$HELD LP=$PROBE LR=$R LF=$FLOWCOUNT
        [ -n "$FITTED" ] || FITTED=$(grep -o "nat.max_flows.*" "$TMP/daemon-f$n.log" | head -1 || true)
        krate=-; lrate=-
        [ "$n" -gt 0 ] && [ -n "$KH" ] && krate=$(echo "$KH" | cut -d' ' -f3)
        [ "$n" -gt 0 ] && [ -n "$LH" ] && lrate=$(echo "$LH" | cut -d' ' -f3)
        kp=${KR:-${KP/ / / }}; lp=${LR:-${LP/ / / }}
        per=$(awk -v a="$RSS0" -v b="$RSS1" -v n="$n" 'BEGIN { if (n > 0 && b > 0) printf "%.0f", (b - a) * 1024 / n; else print "-" }')
        echo "| $n | $krate | $lrate | $(ratio "$lrate" "$krate") | $kp | $lp | $(ratio "${KP%% *}" "${LP%% *}" | awk '{ if ($1 == "-") print "-"; else printf "%.2f", 1 / $1 }') | $(mib "$RSS0") | $(mib "$RSS1") | $per | $KF / $LF |"
    done
    echo
    echo "Opened: N connections from one container to 10.200.0.2:7001-7008, 256 connects outstanding (bench/flow_hold.py in python: it bounds both columns alike); higher is better. One more flow: while the N are held, 50 new connections one after another (connect, 1-byte echo, close), lower is better. RSS: lanyard's daemon (flow bound, per-container bound and budget raised: see below), its VmRSS before the container and with the N held; per flow: the difference over N (kernel memory for the sockets is not in it: the NAT's host socket per flow costs the kernel what MASQUERADE's conntrack entry does not). Flows in the table: the kernel's nf_conntrack_count in lys-host and lanyard's nat_flows (lanyard stats), read with the N held: the N plus the probes' and warm-up's that have not yet timed out."
    [ -z "$FITTED" ] || echo "The daemon, at start: $FITTED"
fi

echo
echo "lanyard binary $(stat -c %y "$LANYARD" | cut -d. -f1)$(git rev-parse --short HEAD 2>/dev/null | sed 's/^/ (HEAD /; s/$/)/'); $(nproc) CPUs, kernel $(uname -r), run as $BENCH_USER; $(($(date +%s) - T_START)) s."
