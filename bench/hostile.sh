#!/usr/bin/env bash
# Under attack (issue 18): a neighbour container's TCP throughput to the
# outside and its ping RTT to another container, without and during each
# attack, side by side in one run, with the ratio (target >= 0.5x). One
# attacker at a time, each bounded in count and time.
#
#   sudo bench/hostile.sh                      # DUR=5 seconds of iperf3 per cell, REPS=1
#   sudo DUR=3 ATTACKS="syn dns" bench/hostile.sh
#   sudo EXTRA_CONFIG=$'[nat]\npublished_clients_per_sec = 500' ATTACKS=ports bench/hostile.sh
#                                              # EXTRA_CONFIG: appended to the daemon's config
#   sudo VICTIM=echo-ev ATTACKS=ports bench/hostile.sh
#                                              # the "ports" row's victim: echo
#                                              # (default: a thread per client)
#                                              # or echo-ev (an event loop)
#   sudo LANYARD=/tmp/lanyard-copy LANYARD_REV=abc1234 bench/hostile.sh
#                                              # measure that binary (default
#                                              # target/release/lanyard)
#
# Topology (namespaces made here, removed on exit):
#
#   lyh-out   "outside": 10.200.0.2/24 on eth0; iperf3 -s, and the attacker
#     |                  of the "ports" row (outside clients)
#     | veth
#   lyh-host  "the host": up0 10.200.0.1/24, default route via 10.200.0.2,
#             ping_group_range open; a `lanyard daemon` as $BENCH_USER
#             (default config but [dns] upstream = 127.0.0.1:5353, where a
#             mute upstream answers every name but those a DNS flood asks,
#             which it never answers: the worst case for pending queries)
#             and its containers on the default network:
#               nb  172.17.0.10  the neighbour: iperf3 -c 10.200.0.2 -t DUR,
#                                then ping -c 20 -i 0.05 172.17.0.20
#               peer 172.17.0.20 the container nb pings (sleep)
#               att 172.17.0.30  the attacker (tests/data/hostile.py)
#               srv 172.17.0.40  the "ports" row's victim: an echo server
#                                published on 10.200.0.1:18080
#
# Each row, REPS times (medians printed; the rows alternate within each
# repetition, so drift hits them alike): the neighbour's cell without an
# attack, then the attacker starts (hostile.py, unpaced: as fast as python's raw socket goes, at
# most FLOOD_COUNT frames and DUR + 6 s), and once it floods the same cell
# again; the attacker is stopped after it. Ratios: throughput during /
# without, and RTT without / during (both 1.0 = unaffected, 0.5 = halved
# throughput or doubled RTT). The daemon's peak VmRSS during the attack,
# and the counters that moved (lanyard stats --json, before and after the
# attack, of the last repetition: drops by reason, NAT and DNS refusals),
# are printed beside.
#
# Attacks (ATTACKS, default all):
#   syn     SYNs to 10.200.0.2:9 (nothing listens: a RST each), a new source
#           port each: a new NAT flow (socket + connect) per frame
#   udp     datagrams to 10.200.0.2:9, a new source port each: a new UDP
#           flow per frame, unanswered (they live 30 s)
#   dns     queries for new names to the gateway's port 53 (forwarded to the
#           mute upstream)
#   arp     broadcast ARP requests for the gateway (flooded to every port)
#   arp-gw  the same unicast to the gateway's MAC
#   icmp    echo requests to the gateway
#   dhcp    DHCP DISCOVERs (to the control plane)
#   ports   outside clients: TCP connections to a published port, 4000
#           held at once, oldest closed first
#   dnstcp  64 DNS-over-TCP connections to the gateway trickling a byte a
#           second
#
# Needs root (namespaces); lanyard runs as $BENCH_USER (default lanyard-ci,
# else nobody). Installs iperf3 from Debian if missing. Traffic stays in the
# namespaces made here; everything started here is stopped on exit (by PID,
# and what runs inside the namespaces made here).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

DUR=${DUR:-5}
REPS=${REPS:-1}
FLOOD_COUNT=${FLOOD_COUNT:-20000000}
ATTACKS=${ATTACKS:-syn udp dns arp arp-gw icmp dhcp ports dnstcp}
VICTIM=${VICTIM:-echo}
case $VICTIM in echo | echo-ev) ;; *) echo "hostile.sh: VICTIM must be echo or echo-ev, not $VICTIM" >&2; exit 2 ;; esac
for a in $ATTACKS; do
    case $a in syn | udp | dns | arp | arp-gw | icmp | dhcp | ports | dnstcp) ;;
        *) echo "ATTACKS: unknown attack '$a'" >&2; exit 2 ;; esac
done
LANYARD=${LANYARD:-$PWD/target/release/lanyard}
[ "$(id -u)" = 0 ] || { echo "bench/hostile.sh needs root (namespaces)" >&2; exit 2; }
if ! command -v iperf3 >/dev/null; then
    log "installing iperf3 from Debian"
    { DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q iperf3; } >/tmp/lanyard-hostile-apt.log 2>&1 || true
fi
command -v iperf3 >/dev/null || { echo "iperf3 is missing and could not be installed" >&2; exit 1; }
[ -x "$LANYARD" ] || cargo build --release
bench_user_setup

TMP=$(mktemp -d /tmp/lanyard-hostile.XXXXXX)
chmod 755 "$TMP"
cp "$LANYARD" "$TMP/lanyard"; chmod 755 "$TMP/lanyard"
cp tests/data/hostile.py tests/data/netpeer.py "$TMP/"; chmod 644 "$TMP"/*.py
mkdir "$TMP/run" "$TMP/out"; chown "$U_ID:$G_ID" "$TMP/run" "$TMP/out"; chmod 700 "$TMP/run"
SOCK="$TMP/run/lanyard.sock"
NS=(lyh-host lyh-out)
trap cleanup EXIT
trap 'exit 130' INT TERM
ly() { ip netns exec lyh-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" "$@"; }
ctr() { ly run --socket "$SOCK" "$@"; } # lanyard run options... -- command

# --- the topology and the daemon ---
for n in "${NS[@]}"; do ip netns del "$n" 2>/dev/null || true; ip netns add "$n"; done
ip -n lyh-host link add up0 type veth peer name eth0 netns lyh-out
ip -n lyh-host link set lo up
ip -n lyh-out link set lo up
ip -n lyh-host addr add 10.200.0.1/24 dev up0
ip -n lyh-out addr add 10.200.0.2/24 dev eth0
ip -n lyh-host link set up0 up
ip -n lyh-out link set eth0 up
ip -n lyh-host route add default via 10.200.0.2
ip netns exec lyh-host sysctl -qw net.ipv4.ping_group_range="0 2147483647"
printf '[dns]\nupstream = ["127.0.0.1:5353"]\n%s\n' "${EXTRA_CONFIG:-}" >"$TMP/cfg.toml"; chmod 644 "$TMP/cfg.toml"
ip netns exec lyh-host timeout 36000 "$PY" "$TMP/hostile.py" mute-upstream 5353 >"$TMP/mute.out" 2>&1 &
track "$!"
ip netns exec lyh-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
    "$TMP/lanyard" daemon --config "$TMP/cfg.toml" --socket "$SOCK" >"$TMP/daemon.log" 2>&1 &
DPID=$!; track "$DPID"
wait_for 100 ly network ls --socket "$SOCK" || { cat "$TMP/daemon.log" >&2; exit 1; }
ip netns exec lyh-out timeout 36000 iperf3 -s -p 5201 >/dev/null 2>&1 &
track "$!"
wait_for 50 sh -c "ip netns exec lyh-out ss -Hltn 'sport = :5201' | grep -q ."
ctr --name peer --ip 172.17.0.20 -- sleep 36000 >/dev/null 2>&1 &
PEER=$!; track "$PEER"
ctr --name srv --ip 172.17.0.40 -p 10.200.0.1:18080:8080 -- "$PY" "$TMP/netpeer.py" "$VICTIM" 8080 >"$TMP/srv.out" 2>&1 &
track "$!"
wait_for 100 grep -q ready "$TMP/srv.out" || { log "the published echo server did not start"; cat "$TMP/srv.out" >&2; exit 1; }
wait_for 100 sh -c "$TMP/lanyard network inspect --socket $SOCK default 2>/dev/null | grep -q '\"peer\"'" || true

rss() { rss_kib "$DPID"; }
stats() { ly stats --socket "$SOCK" --json >"$1" 2>/dev/null || echo '{}' >"$1"; }

cell() { # -> R = "Gbit/s rtt_us" of the neighbour (or "fail:why")
    local out=$TMP/out/nb.json rc=0
    timeout -k 3 $((DUR + 40)) ip netns exec lyh-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
        "$TMP/lanyard" run --socket "$SOCK" --name nb --ip 172.17.0.10 -- sh -c \
        "iperf3 -c 10.200.0.2 -p 5201 -t $DUR --connect-timeout 5000 -J > $out 2>&1; ping -c 1 -W 2 172.17.0.20 >/dev/null 2>&1; ping -q -c 20 -i 0.05 -w 10 172.17.0.20" \
        >"$TMP/out/ping.txt" 2>&1 || rc=$?
    R=$(python3 - "$out" "$TMP/out/ping.txt" "$rc" <<'PY2'
import json, re, sys
try:
    d = json.load(open(sys.argv[1]))
    gbit = d["end"]["sum_received"]["bits_per_second"] / 1e9 if not d.get("error") else None
except (OSError, ValueError, KeyError):
    gbit = None
m = re.search(r"= [\d.]+/([\d.]+)/", open(sys.argv[2]).read())
rtt = float(m.group(1)) * 1000 if m else None
if gbit is None:
    print("fail:no iperf3 result (exit %s)" % sys.argv[3])
elif rtt is None:
    print("%.2f nan" % gbit)
else:
    print("%.2f %.0f" % (gbit, rtt))
PY2
)
}

attack_start() { # attack -> APID; waits for "flooding"
    local secs=$((DUR + 6)) a=$1
    rm -f "$TMP/out/stop" "$TMP/out/att.out"
    case $a in
        syn) set -- flood syn "$FLOOD_COUNT" "$secs" 0 10.200.0.2 9 ;;
        udp) set -- flood udp "$FLOOD_COUNT" "$secs" 0 10.200.0.2 9 ;;
        dns | arp | arp-gw | icmp | dhcp) set -- flood "$a" "$FLOOD_COUNT" "$secs" 0 ;;
        dnstcp) set -- dns-tcp-hold 64 "$secs" ;;
        ports) set -- connect-flood 10.200.0.1 18080 4000 "$FLOOD_COUNT" "$secs" ;;
    esac
    if [ "$a" = ports ]; then
        # outside clients, many descriptors
        ip netns exec lyh-out sh -c 'ulimit -n 16384; exec env FLOOD_STOP="$0" timeout '$((secs + 10))' "$@"' \
            "$TMP/out/stop" "$PY" "$TMP/hostile.py" "$@" >"$TMP/out/att.out" 2>&1 &
    else
        ip netns exec lyh-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- env FLOOD_STOP="$TMP/out/stop" \
            timeout $((secs + 10)) "$TMP/lanyard" run --socket "$SOCK" --name att --ip 172.17.0.30 -- \
            "$PY" "$TMP/hostile.py" "$@" >"$TMP/out/att.out" 2>&1 &
    fi
    APID=$!; track "$APID"
    if [ "$a" = dnstcp ]; then sleep 2; return 0; fi # it prints only at its end
    wait_for 300 grep -q flooding "$TMP/out/att.out" || log "  $a: the attacker did not start: $(one_line <"$TMP/out/att.out")"
    sleep 0.5
}

attack_end() { # -> ASENT: what the attacker said
    touch "$TMP/out/stop"
    local i
    for i in $(seq 150); do exited "$APID" && break; sleep 0.1; done
    stop_pid "$APID"
    ASENT=$(grep -E "^(flood|connect-flood|held)" "$TMP/out/att.out" | tail -1 | sed -E 's/^flood [a-z-]+ //' | one_line)
}

moved() { # before.json after.json -> the counters that moved, refusals first
    python3 - "$1" "$2" <<'PY2'
import json, sys
def load(f):
    try:
        return json.load(open(f))
    except (OSError, ValueError):
        return {}
def flat(d):
    out = {}
    for p in d.get("ports", []):
        for k, v in p["counters"]["drops"].items():
            out["drop." + k] = out.get("drop." + k, 0) + v
    for sect in ("nat", "dns", "dhcp"):
        for k, v in (d.get(sect) or {}).items():
            if isinstance(v, int):
                out[sect + "." + k] = v
    for n in d.get("networks", []):
        for k, v in n["gateway"].items():
            out["gw." + k] = out.get("gw." + k, 0) + v
    return out
a, b = flat(load(sys.argv[1])), flat(load(sys.argv[2]))
ordinary = {"rx_packets", "replies", "queries", "local_answers"}
d = {k: b[k] - a.get(k, 0) for k in b if b[k] - a.get(k, 0) > 0 and k.split(".")[-1] not in ordinary}
print(", ".join(f"{k} {v}" for k, v in sorted(d.items(), key=lambda kv: -kv[1])[:5]) or "-")
PY2
}

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "-" }'; }

T0=$(date +%s)
REV=${LANYARD_REV:-$(git rev-parse --short HEAD 2>/dev/null || echo "?")}
# per attack, one value per repetition: the neighbour's Gbit/s and RTT
# without and during, the daemon's peak RSS (KiB); the attacker's line and
# the counters that moved, of the last repetition
declare -A BG=() BR=() DG=() DR=() PK=() ASAY=() MOVED=() FAILS=()
for rep in $(seq "$REPS"); do
    for a in $ATTACKS; do
        log "rep $rep: $a"
        cell; base=$R
        stats "$TMP/out/pre.json"
        r0=$(rss)
        attack_start "$a"
        ( m=0; while [ ! -e "$TMP/out/stop" ] && [ -e "/proc/$DPID" ]; do
              r=$(awk '/^VmRSS/ {print $2}' "/proc/$DPID/status"); [ "$r" -gt "$m" ] && { m=$r; echo "$m" >"$TMP/out/rss"; }
              sleep 0.1; done ) &
        RW=$!; track "$RW"
        cell; during=$R
        stats "$TMP/out/post.json"
        attack_end
        wait "$RW" 2>/dev/null || true; untrack "$RW"
        PK[$a]+="$(cat "$TMP/out/rss" 2>/dev/null || echo "$r0") "; rm -f "$TMP/out/rss"
        MOVED[$a]=$(moved "$TMP/out/pre.json" "$TMP/out/post.json")
        ASAY[$a]=$ASENT
        if [ "${base#fail:}" != "$base" ] || [ "${during#fail:}" != "$during" ]; then
            FAILS[$a]+="rep $rep: ${base#fail:} / ${during#fail:}; "
            continue
        fi
        read -r bg brtt <<<"$base"; read -r dg drtt <<<"$during"
        BG[$a]+="$bg "; BR[$a]+="$brtt "; DG[$a]+="$dg "; DR[$a]+="$drtt "
    done
done
med() { python3 -c 'import statistics, sys; v = [float(x) for x in sys.argv[1:] if x != "nan"]; print("%g" % statistics.median(v) if v else "-")' $1; }
ROWS=()
for a in $ATTACKS; do
    bg=$(med "${BG[$a]:-}"); dg=$(med "${DG[$a]:-}"); br=$(med "${BR[$a]:-}"); dr=$(med "${DR[$a]:-}")
    pk=$(med "${PK[$a]:-}"); [ "$pk" = - ] || pk=$(awk -v k="$pk" 'BEGIN { printf "%.0f", k / 1024 }')
    f=${FAILS[$a]:-}; [ -n "$f" ] && f=" (failed: $f)"
    ROWS+=("| $a | ${ASAY[$a]:-} | $bg | $dg | $(ratio "$dg" "$bg") | $br | $dr | $(ratio "$br" "$dr") | $pk | ${MOVED[$a]:-}$f |")
done

echo
echo "### Under attack: the neighbour's TCP to the outside and ping to another container"
echo
echo "lanyard $REV, $(nproc) CPUs, DUR=$DUR s per cell, REPS=$REPS (medians), $(date -u +%F); one attacker at a time (hostile.py, unpaced, at most $FLOOD_COUNT frames and DUR + 6 s); $(( $(date +%s) - T0 )) s."
echo
echo "| attack | attacker | TCP Gbit/s without | during | ratio | ping µs without | during | ratio | daemon peak RSS MiB | counters that moved |"
echo "|---|---|---|---|---|---|---|---|---|---|"
printf '%s\n' "${ROWS[@]}"
echo
echo "Ratios: TCP during / without; ping without / during (1.0: unaffected; target >= 0.5)."
