#!/usr/bin/env bash
# End-to-end benchmark: lanyard against the kernel and the rootless peers,
# side by side in one run on the same machine, printed as markdown tables
# with ratios. Absolute figures drift between runs on shared VMs; the ratios
# are what to compare.
#
#   sudo bench/e2e.sh                 # DUR=5 seconds per iperf3 run, REPS=3
#   sudo DUR=3 REPS=1 bench/e2e.sh    # quicker
#   sudo TABLES=ports DUR=10 bench/e2e.sh   # only some tables (any of
#                                     # "containers scaling egress ports ipv6 engines",
#                                     # default all)
#   sudo LANYARD=/tmp/lanyard-copy LANYARD_REV=abc1234 bench/e2e.sh
#                                     # measure that binary (default
#                                     # target/release/lanyard; it is copied
#                                     # before the first run either way),
#                                     # LANYARD_REV: what it was built from
#
# Run time on a 2-vCPU VM: the containers table is 12 iperf3 runs of DUR
# (+ ~0.4 s setup each) and 2 pings per repetition, scaling 6 runs of DUR
# (+ ~0.8 s, a daemon start included), egress 16 runs of DUR (32 since its
# UDP rows: DUR=3 REPS=3 took 338 s) plus
# connections and pings, ports 36 runs of DUR (+ ~0.5 s; 52 since its UDP
# rows). DUR=3 REPS=2 took
# 85 s for containers and 45 s for scaling; DUR=5 REPS=3 took 270 s for
# egress and 590 s for ports, so all four tables take about 1,170 s at
# DUR=5 REPS=3 (containers ~200 s, scaling ~105 s, estimated) and about
# 270 s at DUR=3 REPS=1. The ipv6 table is 56 runs of DUR per repetition
# (+ ~0.9 s each; the kernel's [::1] DNAT costs one 5 s connect timeout)
# and 12 pings: DUR=1 REPS=1 took 105 s, DUR=3 REPS=3 580 s; DUR=5 REPS=3
# would take about 950 s. The engines table (bench/engines.sh: podman with
# slirp4netns and with lanyard, 2 x N=10 starts and 8 iperf3 runs of DUR per
# repetition) took 80 s at DUR=3 REPS=2.
#
# Needs root (namespaces, the kernel baselines); lanyard, slirp4netns and
# pasta run as the unprivileged user $BENCH_USER (default: lanyard-ci, else
# nobody). Installs iperf3, slirp4netns, passt (pasta), nftables (for the
# kernel's MASQUERADE and DNAT), socat (docker-proxy's stand-in) and sockperf from
# Debian when missing; a peer that is still
# missing, or fails, is printed as "missing (reason)". All traffic stays on
# loopback and in namespaces made here; everything started here is removed
# on exit (only the PIDs this script started, and processes inside its own
# namespaces).
#
# Tables 1 and 2, container <-> container on one network. Endpoints a, b
# (and c, d in table 2); a pair is an iperf3 client in a (c) sending to a
# server in b (d), one iperf3 -s -1 per run:
#
#   kernel:  namespaces lyb-a..lyb-d (eth0 10.99.0.2-5/24), each a veth into
#            bridge br0 in namespace lyb-br, every link at the row's MTU;
#            made afresh for each run
#   lanyard: `lanyard run --name ly-a..ly-d --ip 172.17.0.2-5 --mtu MTU`
#            containers on a lanyard daemon's default network
#
# Table 1, one pair (lanyard: one daemon, default config, for the table):
# TCP 1 and 4 streams at MTU 1500/65520; UDP with 64-byte payloads
# (iperf3 -u -l 64 -b 0, one stream, at both MTUs): datagrams/s received
# (iperf3 3.12's receiver counts: end.sum_received packets - lost_packets,
# over its seconds), the sender's datagrams/s (end.sum_sent), and where the
# lost ones went: the sender's eth0 tx drops (its queue into the switch was
# full: the switch did not keep up), the receiver's UDP RcvbufErrors in
# /proc/net/snmp (its socket was full: the receiving iperf3 did not keep
# up), the rest; ping RTT; TCP request/response (sockperf ping-pong --tcp,
# 14-byte messages, DUR s: the median round trip); lanyard's CPU per GB over
# the TCP runs, and its CPU-seconds per second during the UDP runs.
#
# Table 2, "scaling", more than one core: two pairs at once (a -> b and
# c -> d, TCP, one stream each, DUR s, started together), aggregate Gbit/s
# (and each pair's) at MTU 1500/65520 for the kernel bridge and for lanyard
# daemons with `[dataplane] threads = 1` and `threads = 2` in their config
# files (a daemon of its own for every run); ratios threads=2 / threads=1
# and each / kernel; lanyard's CPU per GB for each thread count. A daemon
# that rejects its config (exit code 2, as a lanyard without that key does)
# makes its cells "missing (its error)". LANYARD_THREADS, which would
# override the file, is removed from these daemons' environment (the other
# tables' daemons keep it); the data-path thread (shard) each container's
# port got, from `lanyard stats --json` mid-run, is logged and printed.
#
# Table 3, egress (the topology of the team's PEERS.md notes):
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
# uplink MTU both), the same with UDP 64-byte datagrams (-u -l 64 -b 0;
# datagrams received, with the loss split into the sender's queue, the
# receiver's socket and elsewhere), bench/conn_rate.py (1,000 sequential connect / 32-byte
# request / 32-byte response / close), ping, and TCP request/response (sockperf
# ping-pong to a sockperf server on 203.0.113.10, as in table 1), all at MTU 65520. The peers
# run in turn within each repetition, so drift hits them alike.
#
# Table 4, published ports, in the same lyb-host / lyb-out topology: a
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
# MTU both, as in table 3); $CONNS sequential connections from loopback at
# MTU 65520; UDP with 64-byte datagrams (iperf3 -u -l 64 -b 0, the same host
# port forwarded for UDP too: iperf3 sends its data there) both ways, from
# loopback at MTU 65520 and from outside at MTU 1500, datagrams/s received
# (the loss is not split here: socat has no UDP column, a forking socat per
# datagram being nothing like docker-proxy's UDP proxy); and the client
# address the container sees (conn_rate.py whoami), for a loopback and for
# an outside client.
#
# Table 5, "ipv6" (issue 17: lanyard over IPv6 against itself over IPv4 and
# against the kernel over IPv6). Four columns run in turn in every
# repetition: lanyard IPv6, lanyard IPv4, kernel IPv6, kernel IPv4, each
# over the same endpoints and links, dual stack:
#
#   container <-> container (iperf3 -c from a to b, 1 stream, MTU 1500 and
#     65520), the table-1 topologies: lanyard `run --ip 172.17.0.N --ip6
#     fd00:172:17::N` on a daemon of its own (default config, dual-stack
#     default network), the kernel's lyb-a/lyb-b with fd10::N/64 (nodad) as
#     well; ping RTT container -> container and container -> gateway
#     (lanyard's fd00:172:17::1 / 172.17.0.1; for the kernel, br0's own
#     fd10::1 / 10.99.0.1)
#   egress, iperf3 -c and -R (MTU 1500 and 65520), ping at MTU 65520: table
#     3's lyb-host / lyb-out plus 2001:db8:203::10/128 on lyb-out's lo,
#     fd20::1/64 on up0 and fd20::2/64 on lyb-out's eth0 (nodad), lyb-host's
#     IPv6 default route via fd20::2 and net.ipv6.conf.all.forwarding=1; the
#     kernel container lyb-kc also fd18::2/64 on kbr0's fd18::1/64, with nft
#     `ip6` MASQUERADE for fd18::/64; lanyard's containers get ::2 and the
#     route via fd00:172:17::1 from `lanyard run`
#   published ports, iperf3 -c and -R (MTU 1500 and 65520) from the host's
#     loopback (::1 / 127.0.0.1) and from outside (lyb-out to fd20::1 /
#     10.200.0.1): lanyard -p 18005:5201 (it listens on 0.0.0.0 and [::]),
#     the kernel's nft DNAT on 18001 (IPv4, table 4's rules) and 18021
#     (`ip6 nat` prerouting from up0 and, tried all the same, an OUTPUT rule
#     for [::1]: IPv6 has no route_localnet, so once a run shows it fails the
#     kernel's IPv6 loopback cells are "missing (why)"); the client address
#     the container's iperf3 server saw
#
# Ratios: lanyard IPv6 / IPv4 (the issue's target, >= 0.9 on every path,
# is checked and the cells below it listed), lanyard IPv6 / kernel IPv6,
# kernel IPv6 / IPv4. For lanyard's runs it also prints the daemon's CPU per
# GB for each family and the counters that moved in `lanyard stats --json`
# (before each run and DUR - 0.5 s into it, as a container's port is gone
# once its command exits): port drops, NAT, gateway and shard counters.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

DUR=${DUR:-5}
REPS=${REPS:-3}
CONNS=${CONNS:-1000}
TABLES=${TABLES:-containers scaling egress ports ipv6 engines}
for t in $TABLES; do
    case $t in containers | scaling | egress | ports | ipv6 | engines) ;; *) echo "TABLES: unknown table '$t' (containers, scaling, egress, ports, ipv6, engines)" >&2; exit 2 ;; esac
done
want_table() { [[ " $TABLES " == *" $1 "* ]]; }
LANYARD=${LANYARD:-$PWD/target/release/lanyard}
[ "$(id -u)" = 0 ] || { echo "bench/e2e.sh needs root (namespaces, kernel baselines)" >&2; exit 2; }
export DEBIAN_FRONTEND=noninteractive
T_START=$(date +%s)

# --- peers from Debian (command:package) ---
declare -A MISS=()  # peer -> why it is missing for the whole run
want=()
for cp in iperf3:iperf3 slirp4netns:slirp4netns pasta:passt nft:nftables socat:socat sockperf:sockperf; do
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
command -v sockperf >/dev/null || MISS[sockperf]="not installed: apt-get install sockperf failed"
[ -x "$LANYARD" ] || cargo build --release
if [ -d src ] && [ -n "$(find src Cargo.toml -newer "$LANYARD" -print -quit 2>/dev/null)" ]; then
    log "warning: $LANYARD is older than src/ (measuring it as it is; cargo build --release to refresh)"
fi
bench_user_setup

TMP=$(mktemp -d /tmp/lanyard-bench.XXXXXX)
chmod 755 "$TMP"
cp "$LANYARD" "$TMP/lanyard"; chmod 755 "$TMP/lanyard"
cp bench/conn_rate.py "$TMP/conn_rate.py"; chmod 644 "$TMP/conn_rate.py"
mkdir "$TMP/run"; chown "$U_ID:$G_ID" "$TMP/run"; chmod 700 "$TMP/run"
SOCK="$TMP/run/lanyard.sock"
ESOCK="$TMP/run/egress.sock"
NS=(lyb-br lyb-a lyb-b lyb-c lyb-d lyb-kc lyb-host lyb-out)
trap cleanup EXIT
trap 'exit 130' INT TERM

ly() { as_user "$TMP/lanyard" "$@"; }

rtt() { python3 -c 'import re,sys; m=re.search(r"= [\d.]+/([\d.]+)/", sys.stdin.read()); print(int(float(m.group(1))*1000) if m else "nan")'; }

# --- container <-> container (tables 1 and 2), on the kernel bridge or on lanyard ---
# Endpoints a, b, c, d; pair p runs a client on a (c) and a server on b (d).
# Kernel: one namespace lyb-X each (10.99.0.2-5), veths into br0 in lyb-br.
# lanyard: `lanyard run --name ly-X --ip 172.17.0.2-5` on the daemon at
# $LSOCK (PID $LDPID).
EPS=(a b c d)
declare -A EPN=([a]=2 [b]=3 [c]=4 [d]=5)

bridge_setup() { # mtu endpoints (2 or 4)
    local mtu=$1 x
    for x in br "${EPS[@]:0:$2}"; do ip netns del "lyb-$x" 2>/dev/null || true; ip netns add "lyb-$x"; done
    ip -n lyb-br link add br0 type bridge
    ip -n lyb-br link set br0 up
    for x in "${EPS[@]:0:$2}"; do
        ip -n lyb-br link add "v$x" type veth peer name eth0 netns "lyb-$x"
        ip -n lyb-br link set "v$x" mtu "$mtu" master br0 up
        ip -n "lyb-$x" link set lo up
        ip -n "lyb-$x" link set eth0 mtu "$mtu" up
        ip -n "lyb-$x" addr add "10.99.0.${EPN[$x]}/24" dev eth0
        # the ipv6 table: fd10::N as well (nodad: no 1 s duplicate address detection)
        [ "$C2C6" = 1 ] && ip -n "lyb-$x" -6 addr add "fd10::${EPN[$x]}/64" dev eth0 nodad
    done
    if [ "$C2C6" = 1 ]; then # the ipv6 table's "gateway": the bridge's own addresses
        ip -n lyb-br addr add 10.99.0.1/24 dev br0
        ip -n lyb-br -6 addr add fd10::1/64 dev br0 nodad
    fi
    return 0
}

bridge_teardown() { local x; for x in br "${EPS[@]}"; do ip netns del "lyb-$x" 2>/dev/null || true; done; }

# C2C6=1 (the ipv6 table): endpoints get IPv6 addresses too (kernel fd10::N, lanyard
# --ip6 fd00:172:17::N) and FAM (4 or 6) says which of the two EPIP is
C2C6=0
FAM=4
ep() { # kernel|lanyard x mtu -> EP: the command prefix that runs in endpoint x; EPIP: its address
    local ip6=()
    if [ "$1" = kernel ]; then
        EP=(ip netns exec "lyb-$2"); EPIP=10.99.0.${EPN[$2]}
        if [ "$FAM" = 6 ]; then EPIP=fd10::${EPN[$2]}; fi
    else
        [ "$C2C6" = 1 ] && ip6=(--ip6 "fd00:172:17::${EPN[$2]}")
        EP=(setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" run --socket "$LSOCK" --mtu "$3"
            --name "ly-$2" --ip "172.17.0.${EPN[$2]}" "${ip6[@]}" --)
        EPIP=172.17.0.${EPN[$2]}
        if [ "$FAM" = 6 ]; then EPIP=fd00:172:17::${EPN[$2]}; fi
    fi
}

c2c_run() { # kind mtu pairs iperf3-client-options... -> all pairs' iperf3 at once: PRC[p] (client's
    # exit code), $TMP/c2c-p.{json,err,srv}; TICKS (lanyard's CPU over the run); with lanyard and
    # several pairs, $TMP/c2c-stats.json (lanyard stats --json, mid-run); or 1 and R="fail:why"
    local kind=$1 mtu=$2 np=$3 p rc t0=0 srv=() cli=() sip=()
    shift 3
    [ "$kind" = kernel ] && bridge_setup "$mtu" $((np * 2))
    for p in $(seq "$np"); do
        ep "$kind" "${EPS[2 * p - 1]}" "$mtu"; sip+=("$EPIP")
        # the server's UDP counters (RcvbufErrors: datagrams its socket dropped) after it ends
        "${EP[@]}" timeout -k 2 $((DUR + 40)) sh -c 'iperf3 -s -1 --forceflush; grep "^Udp:" /proc/net/snmp' \
            >"$TMP/c2c-$p.srv" 2>&1 &
        srv+=("$!"); track "$!"
    done
    for p in $(seq "$np"); do
        if ! wait_for 100 grep -q "Server listening" "$TMP/c2c-$p.srv"; then
            R="fail:iperf3 server in ${EPS[2 * p - 1]} did not listen in 10 s: $(one_line <"$TMP/c2c-$p.srv")"
            for p in "${srv[@]}"; do stop_pid "$p"; done
            return 1
        fi
    done
    [ "$kind" = lanyard ] && { snap_start "$LSOCK"; t0=$(cpu_ticks "$LDPID"); }
    for p in $(seq "$np"); do
        ep "$kind" "${EPS[2 * p - 2]}" "$mtu"
        # after its JSON, the client's eth0 counters (tx drop: its queue into the switch overflowed)
        timeout -k 3 $((DUR + 20)) "${EP[@]}" sh -c 'iperf3 "$@"; rc=$?; grep "eth0:" /proc/net/dev; exit $rc' sh \
            -c "${sip[p - 1]}" -t "$DUR" --connect-timeout 5000 -J "$@" >"$TMP/c2c-$p.json" 2>"$TMP/c2c-$p.err" &
        cli+=("$!"); track "$!"
    done
    rm -f "$TMP/c2c-stats.json"
    if [ "$kind" = lanyard ] && [ "$np" -gt 1 ]; then
        # mid-run: which data-path thread (shard) owns each container's port
        sleep 0.5
        as_user timeout -k 1 5 "$TMP/lanyard" stats --json --socket "$LSOCK" >"$TMP/c2c-stats.json" 2>/dev/null || true
    fi
    for p in $(seq "$np"); do
        rc=0; wait "${cli[p - 1]}" || rc=$?
        untrack "${cli[p - 1]}"; PRC[$p]=$rc
    done
    [ "$kind" = lanyard ] && TICKS=$(($(cpu_ticks "$LDPID") - t0))
    [ "$kind" = lanyard ] && snap_end
    for p in "${srv[@]}"; do finish_pid "$p"; done
    return 0
}
declare -A PRC=()

c2c_tcp() { # kind mtu pairs streams -> R = "aggregate pair1 pair2..." Gbit/s, or "fail:why";
    # lanyard's CPU and bytes appended to $CPUF
    local kind=$1 np=$3 p g=() bytes=0 stalls=""
    c2c_run "$kind" "$2" "$np" -P "$4" || return 0
    for p in $(seq "$np"); do
        iperf_result "${PRC[$p]}" "$TMP/c2c-$p.json" "$TMP/c2c-$p.err"
        if [ "${R#fail:}" != "$R" ]; then
            [ "$np" = 1 ] || R="fail:pair $p: ${R#fail:}"
            log "  $kind MTU $2 pair $p failed; its server said: $(tail -3 "$TMP/c2c-$p.srv" | one_line)"
            return 0
        fi
        g+=("$R"); bytes=$((bytes + IBYTES))
        [ -n "$STALL" ] && stalls+=" pair $p: $STALL s"
    done
    [ -n "$stalls" ] && log "  $kind MTU $2 stalled (one-second intervals below a tenth of the mean or 0.1 Gbit/s):$stalls"
    R="$(echo "${g[@]}" | awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i; printf "%.2f", s }') ${g[*]}"
    [ "$kind" = lanyard ] && echo "$TICKS $bytes" >>"$CPUF"
    return 0
}

c2c_udp() { # kind mtu -> R = "received/s sent/s lost% socket% queue%" (64-byte datagrams), or "fail:why";
    # lanyard's CPU and the run's seconds appended to $TMP/ucpu
    c2c_run "$1" "$2" 1 -u -l 64 -b 0 || return 0
    iperf_result "${PRC[1]}" "$TMP/c2c-1.json" "$TMP/c2c-1.err" "$TMP/c2c-1.srv"
    if [ "$1" = lanyard ] && [ "${R#fail:}" = "$R" ]; then echo "$TICKS $DUR" >>"$TMP/ucpu"; fi
    return 0
}

# TCP request/response: sockperf ping-pong over TCP (14-byte messages, its smallest; it waits in
# epoll, it does not spin), DUR s; the median round trip, in us. A C client and server, so that
# what each round trip costs is the path's, not an interpreter's.
RRPORT=11111
rr_client() { # addr; RRCMD: the prefix that runs the client where it belongs -> R = median RTT in us
    # or "fail:why" (the server may still be starting: ten tries)
    [ -n "${MISS[sockperf]:-}" ] && { R="fail:${MISS[sockperf]}"; return; }
    R=$(timeout -k 3 $((DUR + 30)) "${RRCMD[@]}" sh -c "for i in 1 2 3 4 5 6 7 8 9 10; do
            sockperf ping-pong --tcp -i $1 -p $RRPORT -m 14 -t $DUR --full-rtt 2>&1 && exit 0; sleep 0.3; done; exit 1" 2>&1 |
        python3 -c 'import re, sys
t = sys.stdin.read()
m = re.search(r"percentile 50\.000 =\s*([\d.]+)", t)
print(m.group(1) if m else "fail:" + ((t.strip().splitlines() or ["no output"])[-1])[:160])') || true
    [ -n "$R" ] || R="fail:no output"
}

c2c_rr() { # kind -> R = median TCP request/response RTT a -> b, in us, or "fail:why"
    [ -n "${MISS[sockperf]:-}" ] && { R="fail:${MISS[sockperf]}"; return; }
    [ "$1" = kernel ] && bridge_setup 1500 2
    ep "$1" b 1500
    local ip=$EPIP
    "${EP[@]}" sockperf server --tcp -i 0.0.0.0 -p "$RRPORT" >"$TMP/rr.srv" 2>&1 &
    local bpid=$!; track "$bpid"
    ep "$1" a 1500
    RRCMD=("${EP[@]}")
    rr_client "$ip"
    stop_pid "$bpid"
}

c2c_rtt() { # kind [gw] -> R = average RTT in us, or "fail:why"; a -> b, or with "gw" a -> the
    # gateway (lanyard's 172.17.0.1 / fd00:172:17::1; the kernel bridge's own address, with C2C6=1)
    local bpid="" ip
    [ "$1" = kernel ] && bridge_setup 1500 2
    if [ "${2:-}" = gw ]; then
        case $1$FAM in kernel4) ip=10.99.0.1 ;; kernel6) ip=fd10::1 ;; lanyard4) ip=172.17.0.1 ;; lanyard6) ip=fd00:172:17::1 ;; esac
    else
        ep "$1" b 1500; ip=$EPIP
        "${EP[@]}" sh -c 'echo up; exec sleep 30' >"$TMP/c2c-1.srv" 2>&1 &
        bpid=$!; track "$bpid"
    fi
    if [ -n "$bpid" ] && ! wait_for 100 grep -q up "$TMP/c2c-1.srv"; then
        R="fail:endpoint b did not start in 10 s: $(one_line <"$TMP/c2c-1.srv")"
    else
        ep "$1" a 1500
        # one echo first, so that the average holds no ARP (or neighbour discovery) resolution
        R=$(timeout -k 3 30 "${EP[@]}" sh -c "ping -c 1 -W 2 $ip >/dev/null 2>&1; exec ping -q -c 20 -i 0.05 -w 10 $ip" 2>&1 | rtt) || true
        if [ "$R" = nan ] || [ -z "$R" ]; then R="fail:no echo reply"; fi
    fi
    [ -z "$bpid" ] || stop_pid "$bpid"
}

# --- lanyard's counters during a run (the ipv6 table) ---
SNAPF=""      # set: every lanyard run appends "$SNAPK<TAB>its counters" to it
SNAPK=""
SNAPPID=""
snap_start() { # socket -> with SNAPF set: lanyard stats now, and in the background at DUR - 0.5 s
    # (a container's port, and its counters, are gone once its command exits)
    SNAPPID=""
    [ -n "$SNAPF" ] || return 0
    rm -f "$TMP/snap-mid.json"
    as_user timeout -k 1 5 "$TMP/lanyard" stats --json --socket "$1" >"$TMP/snap-pre.json" 2>/dev/null || true
    (sleep "$(awk -v d="$DUR" 'BEGIN { print (d > 1 ? d - 0.5 : d / 2) }')"
     as_user timeout -k 1 5 "$TMP/lanyard" stats --json --socket "$1" >"$TMP/snap-mid.json" 2>/dev/null) &
    SNAPPID=$!; track "$SNAPPID"
}
snap_end() { # -> appends the counters that moved between the two snapshots to SNAPF: every port
    # drop, and the NAT's, the gateways' and the shards' counters but the ordinary ones (flows
    # made, echo replies, neighbour and router adverts, ARP replies)
    [ -n "$SNAPPID" ] || return 0
    finish_pid "$SNAPPID"; SNAPPID=""
    printf '%s\t%s\n' "$SNAPK" "$(python3 - "$TMP/snap-pre.json" "$TMP/snap-mid.json" <<'PY2'
import json, sys
def load(f):
    try:
        return json.load(open(f))
    except (OSError, ValueError):
        return None
pre, mid = load(sys.argv[1]) or {}, load(sys.argv[2])
if mid is None:
    print("no mid-run snapshot"); sys.exit()
ordinary = {"tcp_flows", "udp_flows", "icmp_flows", "echo_replies", "neighbor_adverts", "router_adverts", "arp_replies"}
out = {}
def add(k, v):
    if v and k.split(".")[-1] not in ordinary:
        out[k] = out.get(k, 0) + v
was = {(p["id"], k): v for p in pre.get("ports", []) for k, v in p["counters"]["drops"].items()}
for p in mid.get("ports", []):
    for k, v in p["counters"]["drops"].items():
        add("drop." + k, v - was.get((p["id"], k), 0))
for k, v in mid.get("nat", {}).items():
    add("nat." + k, v - pre.get("nat", {}).get(k, 0))
gw0 = {n["name"]: n.get("gateway", {}) for n in pre.get("networks", [])}
for n in mid.get("networks", []):
    for k, v in n.get("gateway", {}).items():
        add("gateway." + k, v - gw0.get(n["name"], {}).get(k, 0))
add("fdb_sync_dropped", mid.get("fdb_sync_dropped", 0) - pre.get("fdb_sync_dropped", 0))
print(" ".join("%s=%d" % kv for kv in sorted(out.items())) or "-")
PY2
)" >>"$SNAPF"
}

# --- lanyard daemons (daemon_start: bench/lib.sh) ---
daemon_must() { daemon_start "$@" || { echo "lanyard $DFAIL" >&2; cat "$3" >&2; exit 1; }; }


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

shard_map() { # lanyard stats JSON -> "threads port:shard..." ("?" for what it does not say)
    python3 - "$1" <<'PY2'
import json, sys
try:
    v = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    print("?"); sys.exit()
ps = sorted((str(p.get("name") or p.get("id")), p["shard"]) for p in v.get("ports", []) if "shard" in p)
print(v.get("dataplane_threads", "?"), " ".join("%s:%s" % p for p in ps))
PY2
}

cpu_busy() { # file of "ticks seconds" -> CPU-seconds per second
    python3 - "$1" "$(getconf CLK_TCK)" <<'PY2'
import sys
ticks = secs = 0
for line in open(sys.argv[1]):
    t, s = line.split()
    ticks += int(t); secs += float(s)
print("%.2f" % (ticks / int(sys.argv[2]) / secs) if secs else "n/a")
PY2
}

# ======================================================================
# Egress: "the host" (lyb-host) whose only uplink is a veth to "outside"
# (lyb-out); see the comment at the top.
# ======================================================================
OUT_IP=203.0.113.10
OUT_IP6=2001:db8:203::10  # the ipv6 table: the outside's IPv6 address (lyb-out's lo)
IPORT=5201
CPORT=8080
PEERS=(kernel slirp4netns pasta lanyard)
# Published ports (table 4): each peer's host ports, iperf3's and HP + CONN_OFF
# for the connection server
declare -A HP=([dnat]=18001 [socat]=18002 [slirp4netns]=18003 [pasta]=18004 [lanyard]=18005 [dnat6]=18021)
CONN_OFF=10
UP_IP=10.200.0.1
UP_IP6=fd20::1  # lyb-out's eth0 is fd20::2
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
    want_table ipv6 && egress6_setup
    daemon_must lyb-host "$ESOCK" "$TMP/egress-daemon.log"; EDPID=$DPID
}

egress6_setup() { # the ipv6 table: the same topology, dual stack (before the daemon starts)
    ip -n lyb-out -6 addr add "$OUT_IP6/128" dev lo
    ip -n lyb-host -6 addr add "$UP_IP6/64" dev up0 nodad
    ip -n lyb-out -6 addr add fd20::2/64 dev eth0 nodad
    ip -n lyb-host -6 route add default via fd20::2
    ip netns exec lyb-host sysctl -qw net.ipv6.conf.all.forwarding=1
    if [ -z "${MISS[kernel]:-}" ]; then
        ip -n lyb-host -6 addr add fd18::1/64 dev kbr0 nodad
        ip -n lyb-kc -6 addr add fd18::2/64 dev eth0 nodad
        ip -n lyb-kc -6 route add default via fd18::1
        ip netns exec lyb-host nft -f - <<'NFT' 2>"$TMP/nft6.err" || MISS[kernel6]="nft ip6 MASQUERADE rule failed: $(grep -m1 Error "$TMP/nft6.err" | one_line)"
table ip6 lyb_bench6 {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip6 saddr fd18::/64 oifname != "kbr0" masquerade
    }
}
NFT
    else
        MISS[kernel6]=${MISS[kernel]}
    fi
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
        local ufwd=none
        [ -n "$ports" ] && { tfwd="${HP[pasta]}:$IPORT,$((HP[pasta] + CONN_OFF)):$CPORT"; ufwd="${HP[pasta]}:$IPORT"; }
        ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- \
            pasta -f -q -4 -D none --config-net -I eth0 -m "$mtu" -t "$tfwd" -u "$ufwd" -T none -U none "${SH[$peer]}" >"$log" 2>&1 &
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
        if ! err=$(slirp_hostfwd "$api" "$hp" "$IPORT") || ! err=$(slirp_hostfwd "$api" "$((hp + CONN_OFF))" "$CPORT") \
            || ! err=$(slirp_hostfwd "$api" "$hp" "$IPORT" udp); then
            FAIL[$peer]="slirp4netns add_hostfwd failed: $(echo "$err" | one_line)"; return
        fi
    fi
    if ! wait_for 50 host_listening "$hp" || ! wait_for 50 host_listening "$((hp + CONN_OFF))"; then
        FAIL[$peer]="$peer did not listen on host ports $hp/$((hp + CONN_OFF)) in 5 s: $(one_line <"$log")"
    fi
}

host_listening() { ip netns exec lyb-host ss -Hltn "sport = :$1" | grep -q .; }

slirp_hostfwd() { # api-socket host_port guest_port [tcp|udp] -> 0, or prints slirp4netns's answer
    timeout -k 1 10 python3 - "$@" <<'PY2'
import json, socket, sys
proto = sys.argv[4] if len(sys.argv) > 4 else "tcp"
req = {"execute": "add_hostfwd", "arguments": {"proto": proto, "host_addr": "0.0.0.0",
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
        kernel | dnat | dnat6 | socat) CTR=(ip netns exec lyb-kc) ;;
        slirp4netns | pasta) CTR=(setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- nsenter -t "${SH[$1]}" -U -n --preserve-credentials) ;;
        lanyard) CTR=(ip netns exec lyb-host setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" run --socket "$ESOCK" --mtu "$2" "${@:3}" --) ;;
    esac
}

unusable() { # peer -> prints why it cannot be measured now, if so
    local why=${MISS[$1]:-${FAIL[$1]:-}}
    [ -n "$why" ] && echo "$why"
}


ECPUF='' # lanyard's CPU and bytes of each egress run go to it (default $TMP/ecpu)
egress_tcp() { # peer mtu tx|rx [outside address, default $OUT_IP] -> R = Gbit/s or "fail:why"; STALL
    local peer=$1 mtu=$2 dir=$3 dst=${4:-$OUT_IP} rflag=() rc=0 t0=0 t1=0 why
    STALL=""
    if why=$(unusable "$peer"); then R="fail:$why"; return; fi
    if [ "$dst" = "$OUT_IP6" ] && [ "$peer" = kernel ] && [ -n "${MISS[kernel6]:-}" ]; then R="fail:${MISS[kernel6]}"; return; fi
    [ "$dir" = rx ] && rflag=(-R)
    ip netns exec lyb-out timeout -k 2 $((DUR + 40)) iperf3 -s -1 -B "$dst" -p "$IPORT" >/dev/null 2>&1 &
    local srv=$!; track "$srv"
    if ! wait_for 50 listening "$IPORT"; then stop_pid "$srv"; R="fail:iperf3 server did not listen"; return; fi
    ctr_cmd "$peer" "$mtu"
    [ "$peer" = lanyard ] && { snap_start "$ESOCK"; t0=$(cpu_ticks "$EDPID"); }
    timeout -k 3 $((DUR + 20)) "${CTR[@]}" iperf3 -c "$dst" -p "$IPORT" -t "$DUR" --connect-timeout 5000 -J "${rflag[@]}" \
        >"$TMP/iperf.json" 2>"$TMP/iperf.err" || rc=$?
    [ "$peer" = lanyard ] && { t1=$(cpu_ticks "$EDPID"); snap_end; }
    stop_pid "$srv"
    iperf_result "$rc"
    if [ "$peer" = lanyard ] && [ -n "$IBYTES" ]; then echo "$((t1 - t0)) $IBYTES" >>"${ECPUF:-$TMP/ecpu}"; fi
}

egress_udp() { # peer mtu tx|rx -> R = "received/s sent/s lost% socket% queue%" (64-byte datagrams,
    # iperf3 -u -l 64 -b 0) or "fail:why". tx: container -> outside, the receiving socket is the
    # outside server's, the sender's queue the container's eth0 (slirp4netns: tap0); rx (-R):
    # outside -> container, the container's socket, lyb-out's eth0. Counters are this run's
    # (namespaces that outlive a run are read before it too).
    local peer=$1 mtu=$2 dir=$3 rflag=() rc=0 why
    STALL=""
    if why=$(unusable "$peer"); then R="fail:$why"; return; fi
    [ "$dir" = rx ] && rflag=(-R)
    local counters='grep -E "(eth0|tap0):" /proc/net/dev | sed "s/tap0:/eth0:/"; grep "^Udp:" /proc/net/snmp'
    ip netns exec lyb-out sh -c "$counters" >"$TMP/eudp.out0"
    ip netns exec lyb-out timeout -k 2 $((DUR + 40)) iperf3 -s -1 -B "$OUT_IP" -p "$IPORT" >/dev/null 2>&1 &
    local srv=$!; track "$srv"
    if ! wait_for 50 listening "$IPORT"; then stop_pid "$srv"; R="fail:iperf3 server did not listen"; return; fi
    ctr_cmd "$peer" "$mtu"
    : >"$TMP/eudp.ctr0"
    # a lanyard container's namespace is new for every run: its counters start at 0
    [ "$peer" = lanyard ] || "${CTR[@]}" sh -c "$counters" >"$TMP/eudp.ctr0" 2>/dev/null || true
    local script="iperf3 \"\$@\"; rc=\$?; $counters; exit \$rc"
    timeout -k 3 $((DUR + 20)) "${CTR[@]}" sh -c "$script" sh \
        -c "$OUT_IP" -p "$IPORT" -u -l 64 -b 0 -t "$DUR" --connect-timeout 5000 -J "${rflag[@]}" \
        >"$TMP/eudp.json" 2>"$TMP/iperf.err" || rc=$?
    finish_pid "$srv"
    ip netns exec lyb-out sh -c "$counters" >"$TMP/eudp.out1"
    # the JSON, then the sender's eth0 and the receiver's Udp counters of this run, as
    # iperf_result reads them
    python3 - "$dir" "$TMP/eudp" <<'PY2' || true
import json, sys
d, base = sys.argv[1], sys.argv[2]
def counters(text):
    dev = [l.split(":", 1)[1].split() for l in text.splitlines() if l.strip().startswith("eth0:")]
    udp = [l.split()[1:] for l in text.splitlines() if l.startswith("Udp:")]
    return (dev[0] if dev else None), (udp if len(udp) >= 2 else None)
def delta(a, b):
    return [str(int(y) - int(x)) for x, y in zip(a, b)]
text = open(base + ".json").read().lstrip()
j, end = json.JSONDecoder().raw_decode(text)
ctr1 = counters(text[end:])
ctr0 = counters(open(base + ".ctr0").read())
out0, out1 = counters(open(base + ".out0").read()), counters(open(base + ".out1").read())
zero_dev = ["0"] * 16
c_dev = delta(ctr0[0] or zero_dev, ctr1[0]) if ctr1[0] else None
o_dev = delta(out0[0], out1[0]) if out0[0] and out1[0] else None
c_udp = [ctr1[1][0], delta(ctr0[1][1] if ctr0[1] else ["0"] * len(ctr1[1][1]), ctr1[1][1])] if ctr1[1] else None
o_udp = [out1[1][0], delta(out0[1][1], out1[1][1])] if out0[1] and out1[1] else None
dev, udp = (c_dev, o_udp) if d == "tx" else (o_dev, c_udp)
with open(base + ".json", "w") as f:
    f.write(json.dumps(j) + "\n")
    if dev:
        f.write("eth0: " + " ".join(dev) + "\n")
with open(base + ".udp", "w") as f:
    if udp:
        f.write("Udp: " + " ".join(udp[0]) + "\nUdp: " + " ".join(udp[1]) + "\n")
PY2
    iperf_result "$rc" "$TMP/eudp.json" "$TMP/iperf.err" "$TMP/eudp.udp"
}

iperf_result() { # rc [json err [server-output]]: the client's exit code and output files (default
    # $TMP/iperf.json, .err; the JSON may be followed by the client's eth0 line of /proc/net/dev);
    # for UDP, the server's output ending in its /proc/net/snmp Udp lines
    # -> R = "Gbit/s" (TCP), "received/s sent/s lost% socket% queue%" (UDP: datagrams; lost, dropped
    # by the receiving socket, dropped at the sender's eth0 queue, each % of sent), or "fail:why";
    # IBYTES = bytes received (or ""); STALL
    local f
    STALL=""; IBYTES=""
    R=$(python3 - "$1" "${2:-$TMP/iperf.json}" "${3:-$TMP/iperf.err}" "${ILIMIT:-$((DUR + 20))}" "${4:-}" <<'PY2'
import json, sys
rc, out, err, limit, srv = sys.argv[1], open(sys.argv[2]).read(), open(sys.argv[3]).read(), sys.argv[4], sys.argv[5]
if rc in ("124", "137"):
    print(f"fail:iperf3 killed after {limit} s (stalled)"); sys.exit()
try:
    d, end = json.JSONDecoder().raw_decode(out.lstrip())
    rest = out.lstrip()[end:]
except ValueError:
    last = (err.strip().splitlines() or [f"exit {rc}, no output"])[-1]
    print("fail:" + last); sys.exit()
if d.get("error"):
    print("fail:iperf3: " + d["error"]); sys.exit()
s = d["end"]["sum_received"]
if not s.get("bytes"):
    print("fail:no bytes received"); sys.exit()
if d["start"]["test_start"]["protocol"] == "UDP":
    # iperf3 3.12: sum_received holds the server's count (packets: the
    # highest sequence number it saw, lost_packets: the gaps), sum_sent the
    # client's. Loss here is of all sent, so datagrams lost after the last
    # one received count too.
    ss = d["end"]["sum_sent"]
    got = s["packets"] - s["lost_packets"]
    sent = ss["packets"]
    sock = queue = float("nan")
    udp = [l.split()[1:] for l in (open(srv).read().splitlines() if srv else []) if l.startswith("Udp:")]
    if len(udp) >= 2 and "RcvbufErrors" in udp[0]:
        sock = 100 * int(udp[1][udp[0].index("RcvbufErrors")]) / sent
    dev = [l.split(":", 1)[1].split() for l in rest.splitlines() if l.strip().startswith("eth0:")]
    if dev and len(dev[0]) >= 12:
        queue = 100 * int(dev[0][11]) / sent  # transmit drop
    print("%d 0/0 %.0f %.0f %.2f %.2f %.2f" % (s["bytes"], got / s["seconds"], sent / ss["seconds"],
                                              100 * (sent - got) / sent, sock, queue))
    sys.exit()
# stalls: one-second intervals below a tenth of the run's mean rate, or
# below 0.1 Gbit/s (a run that crawls from start to end has no dips)
iv = [i["sum"]["bits_per_second"] for i in d.get("intervals", [])]
low = sum(1 for b in iv if b < s["bits_per_second"] / 10 or b < 1e8)
print("%d %d/%d %.2f" % (s["bytes"], low, len(iv), s["bits_per_second"] / 1e9))
PY2
)
    R=$(echo "$R" | one_line)
    [ -n "$R" ] || R="fail:iperf3's output not understood"
    if [ "${R#fail:}" = "$R" ]; then # "bytes stalled/intervals value..."
        read -r -a f <<<"$R"
        IBYTES=${f[0]}; R=${f[*]:2}
        [ "${f[1]%/*}" = 0 ] || STALL=${f[1]}
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

egress_rr() { # peer -> R = median TCP request/response RTT container -> outside, in us, or "fail:why"
    local why
    if why=$(unusable "$1"); then R="fail:$why"; return; fi
    ctr_cmd "$1" 65520
    RRCMD=("${CTR[@]}")
    rr_client "$OUT_IP"
}

egress_rtt() { # peer [outside address, default $OUT_IP] -> R = average RTT in us or "fail:why"
    local why dst=${2:-$OUT_IP}
    if why=$(unusable "$1"); then R="fail:$why"; return; fi
    if [ "$dst" = "$OUT_IP6" ] && [ "$1" = kernel ] && [ -n "${MISS[kernel6]:-}" ]; then R="fail:${MISS[kernel6]}"; return; fi
    ctr_cmd "$1" 65520
    R=$(timeout -k 3 30 "${CTR[@]}" sh -c "ping -c 1 -W 2 $dst >/dev/null 2>&1; exec ping -q -c 20 -i 0.05 -w 10 $dst" 2>&1 | rtt) || true
    if [ "$R" = nan ] || [ -z "$R" ]; then R="fail:no echo reply"; fi
}

# ======================================================================
# Published ports (table 4); see the comment at the top. Same namespaces
# as the egress table; the server runs in each peer's container, the client
# on the host's loopback (lyb-host) or outside (lyb-out).
# ======================================================================
PPEERS=(dnat socat slirp4netns pasta lanyard)
SOCATS=()
declare -A WHO=()  # lo|peer, out|peer -> the client address the container saw

pbase() { case $1 in dnat | dnat6 | socat) echo kernel ;; *) echo "$1" ;; esac; }
port_unusable() { # peer -> prints why it cannot be measured now, if so
    local b; b=$(pbase "$1")
    local why=${MISS[$b]:-${MISS[$1]:-${FAIL[$1]:-}}}
    [ -n "$why" ] && echo "$why"
}

ports_setup() { # docker's DNAT rules and the socat proxies, for the whole table
    [ -n "${MISS[kernel]:-}" ] && return
    local s=${HP[socat]} pair
    dnat_setup
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

dnat_setup() { # docker's IPv4 DNAT (port HP[dnat]): from up0, and from 127.0.0.1 with route_localnet
    local d=${HP[dnat]}
    ip netns exec lyb-host sysctl -qw net.ipv4.conf.all.route_localnet=1
    ip netns exec lyb-host nft -f - <<NFT 2>"$TMP/nft-ports.err" || MISS[dnat]="nft DNAT rules failed: $(grep -m1 Error "$TMP/nft-ports.err" | one_line)"
table ip lyb_ports {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "up0" ip daddr $UP_IP tcp dport $d dnat to 172.18.0.2:$IPORT
        iifname "up0" ip daddr $UP_IP tcp dport $((d + CONN_OFF)) dnat to 172.18.0.2:$CPORT
        iifname "up0" ip daddr $UP_IP udp dport $d dnat to 172.18.0.2:$IPORT
    }
    chain output {
        type nat hook output priority -100; policy accept;
        ip daddr 127.0.0.1 tcp dport $d dnat to 172.18.0.2:$IPORT
        ip daddr 127.0.0.1 tcp dport $((d + CONN_OFF)) dnat to 172.18.0.2:$CPORT
        ip daddr 127.0.0.1 udp dport $d dnat to 172.18.0.2:$IPORT
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip saddr 127.0.0.0/8 oifname "kbr0" masquerade
    }
}
NFT
}

dnat6_setup() { # the ipv6 table: the IPv6 DNAT, port HP[dnat6]; IPv6 has no route_localnet, the
    # OUTPUT rule for [::1] is tried all the same (a failure is printed as it is)
    [ -n "${MISS[kernel6]:-}" ] && { MISS[dnat6]=${MISS[kernel6]}; return; }
    local d=${HP[dnat6]}
    ip netns exec lyb-host nft -f - <<NFT 2>"$TMP/nft-ports6.err" || MISS[dnat6]="nft ip6 DNAT rules failed: $(grep -m1 Error "$TMP/nft-ports6.err" | one_line)"
table ip6 lyb_ports6 {
    chain prerouting {
        type nat hook prerouting priority dstnat; policy accept;
        iifname "up0" ip6 daddr $UP_IP6 tcp dport $d dnat to [fd18::2]:$IPORT
    }
    chain output {
        type nat hook output priority -100; policy accept;
        ip6 daddr ::1 tcp dport $d dnat to [fd18::2]:$IPORT
    }
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        ip6 saddr ::1 oifname "kbr0" masquerade
    }
}
NFT
}

ports_teardown() {
    local p
    for p in "${SOCATS[@]:-}"; do [ -n "$p" ] && stop_pid "$p"; done
    SOCATS=()
    ip netns exec lyb-host nft delete table ip lyb_ports 2>/dev/null || true
    ip netns exec lyb-host nft delete table ip6 lyb_ports6 2>/dev/null || true
}

port_serve() { # peer mtu iperf|iperf-udp|conn -> PSRV (server PID), PORT (host port); or 1 and
    # R="fail:why"; iperf-udp: lanyard publishes the port for UDP too (iperf3's data; the others
    # forward both protocols throughout)
    local peer=$1 mtu=$2 cport ready cmd opts=()
    if [ "$3" != conn ]; then
        PORT=${HP[$peer]}; cport=$IPORT; ready="Server listening"
        cmd=(timeout -k 2 $((DUR + 40)) iperf3 -s -1 -p "$IPORT" --forceflush)
    else
        PORT=$((HP[$peer] + CONN_OFF)); cport=$CPORT; ready=listening
        cmd=(timeout -k 2 120 "$PY" "$TMP/conn_rate.py" serve 0.0.0.0 "$CPORT" --lifetime 110)
    fi
    [ "$peer" = lanyard ] && opts=(-p "$PORT:$cport")
    [ "$peer" = lanyard ] && [ "$3" = iperf-udp ] && opts+=(-p "$PORT:$cport/udp")
    ctr_cmd "$peer" "$mtu" "${opts[@]}"
    "${CTR[@]}" "${cmd[@]}" >"$TMP/srv.out" 2>&1 &
    PSRV=$!; track "$PSRV"
    if ! wait_for 100 grep -q "$ready" "$TMP/srv.out"; then
        R="fail:server in the container did not listen in 10 s: $(one_line <"$TMP/srv.out")"
        stop_pid "$PSRV"
        return 1
    fi
}

PCPUF='' # lanyard's CPU and bytes of each published-port run go to it (default $TMP/pcpu)
port_tcp() { # peer mtu lo|out tx|rx [4|6: the client's family, default 4] -> R = Gbit/s or "fail:why"; STALL
    local peer=$1 mtu=$2 from=$3 dir=$4 fam=${5:-4} rflag=() cli rc=0 t0=0 t1=0 why
    STALL=""
    if why=$(port_unusable "$peer"); then R="fail:$why"; return; fi
    [ "$dir" = rx ] && rflag=(-R)
    port_serve "$peer" "$mtu" iperf || return 0
    case $from$fam in
        lo4) cli=(ip netns exec lyb-host iperf3 -c 127.0.0.1) ;;
        lo6) cli=(ip netns exec lyb-host iperf3 -c ::1) ;;
        out4) cli=(ip netns exec lyb-out iperf3 -c "$UP_IP") ;;
        out6) cli=(ip netns exec lyb-out iperf3 -c "$UP_IP6") ;;
    esac
    [ "$peer" = lanyard ] && { snap_start "$ESOCK"; t0=$(cpu_ticks "$EDPID"); }
    timeout -k 3 $((DUR + 20)) "${cli[@]}" -p "$PORT" -t "$DUR" --connect-timeout 5000 -J "${rflag[@]}" \
        >"$TMP/iperf.json" 2>"$TMP/iperf.err" || rc=$?
    [ "$peer" = lanyard ] && { t1=$(cpu_ticks "$EDPID"); snap_end; }
    finish_pid "$PSRV"
    iperf_result "$rc"
    if [ "${R#fail:}" != "$R" ]; then log "  $peer $from $dir MTU $mtu IPv$fam failed; server in the container said: $(tail -3 "$TMP/srv.out" | one_line)"; fi
    if [ "$peer" = lanyard ] && [ -n "$IBYTES" ]; then echo "$((t1 - t0)) $IBYTES" >>"${PCPUF:-$TMP/pcpu}"; fi
}

port_udp() { # peer mtu lo|out tx|rx -> R = "received/s sent/s lost% nan nan" (64-byte datagrams,
    # iperf3 -u -l 64 -b 0, through the published port; the loss is not split, see the table's
    # notes) or "fail:why"
    local peer=$1 mtu=$2 from=$3 dir=$4 rflag=() cli rc=0 why
    STALL=""
    if why=$(port_unusable "$peer"); then R="fail:$why"; return; fi
    [ "$dir" = rx ] && rflag=(-R)
    port_serve "$peer" "$mtu" iperf-udp || return 0
    case $from in
        lo) cli=(ip netns exec lyb-host iperf3 -c 127.0.0.1) ;;
        out) cli=(ip netns exec lyb-out iperf3 -c "$UP_IP") ;;
    esac
    # a client whose UDP never got through hangs until killed (pasta 2023-03's -u here): not
    # the TCP rows' 20 s of grace
    local ILIMIT=$((DUR + 8))  # what iperf_result says it was killed after
    timeout -k 3 "$ILIMIT" "${cli[@]}" -p "$PORT" -u -l 64 -b 0 -t "$DUR" --connect-timeout 5000 -J "${rflag[@]}" \
        >"$TMP/iperf.json" 2>"$TMP/iperf.err" || rc=$?
    finish_pid "$PSRV"
    iperf_result "$rc"
    if [ "${R#fail:}" != "$R" ]; then log "  $peer UDP $from $dir MTU $mtu failed; server in the container said: $(tail -3 "$TMP/srv.out" | one_line)"; fi
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
# A value is "fail:why" or numbers: gbps and int take the first; pairs
# ("total pair1 pair2...") and udp ("received/s sent/s lost% socket% queue%")
# show the median of each.
cell() {
    python3 - "$@" <<'PY2'
import math, statistics, sys
kind, vals = sys.argv[1], sys.argv[2:]
ok = [[float(x) for x in v.split()] for v in vals if not v.startswith("fail:")]
bad = [v[5:] for v in vals if v.startswith("fail:")]
fmt = {"gbps": "%.2f", "int": "%.0f", "pairs": "%.2f", "udp": "%.0f", "us": "%.1f"}[kind]
if not ok:
    print("missing (%s)" % (bad[0] if bad else "not run"))
else:
    med = [statistics.median(r[i] for r in ok) for i in range(min(len(r) for r in ok))]
    out = fmt % med[0]
    if kind == "pairs" and len(med) > 2:
        out += " (" + " + ".join("%.2f" % m for m in med[1:]) + ")"
    if kind == "udp" and any(math.isnan(r[3]) for r in ok):
        # no split measured (the published-port rows)
        out += " (sent %.0f; lost %.1f%%)" % (med[1], med[2])
    elif kind == "udp":
        rest = statistics.median(r[2] - r[3] - r[4] for r in ok)
        rest = 0.0 if abs(rest) < 0.05 else rest  # no "-0.0"
        out += " (sent %.0f; lost %.1f%%: sender's queue %.1f%%, receiver's socket %.1f%%, elsewhere %.1f%%)" % (
            med[1], med[2], med[4], med[3], rest)
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

SEP=$'\x1f'  # separates the values of a cell (reasons hold spaces)
rcell() { # kind "value${SEP}value${SEP}..." -> cell kind value...
    local v=()
    [ -n "$2" ] && IFS=$SEP read -r -a v <<<"${2%"$SEP"}"
    cell "$1" "${v[@]}"
}

# ---------------- table 1: container <-> container ----------------
clabel() {
    local m=${1##*-}
    case $1 in
        tcp1-*) echo "container -> container TCP, MTU $m, 1 stream, Gbit/s" ;;
        tcp4-*) echo "container -> container TCP, MTU $m, 4 streams, Gbit/s" ;;
        udp-*) echo "container -> container UDP 64-byte payloads (iperf3 -u -l 64 -b 0), MTU $m, 1 stream, datagrams/s received" ;;
        rtt) echo "ping RTT container -> container, us" ;;
        rr) echo "TCP request/response RTT container -> container (sockperf ping-pong --tcp, 14-byte messages, median), MTU 1500, us" ;;
    esac
}

if want_table containers; then
T0=$(date +%s)
daemon_must - "$SOCK" "$TMP/daemon.log"; LSOCK=$SOCK; LDPID=$DPID; CPUF=$TMP/cpu
as_user timeout -k 1 5 "$TMP/lanyard" stats --json --socket "$LSOCK" >"$TMP/c2c-stats.json" 2>/dev/null || true
read -r CTHREADS _ < <(shard_map "$TMP/c2c-stats.json")
: >"$TMP/cpu"; : >"$TMP/ucpu"
declare -A CRES=()  # row|kind -> values, each ended by $SEP
CROWS=()
for mtu in 1500 65520; do
    for t in tcp1 tcp4 udp; do
        row=$t-$mtu; CROWS+=("$row")
        for rep in $(seq "$REPS"); do
            line=""
            for kind in kernel lanyard; do
                case $t in
                    tcp1) c2c_tcp "$kind" "$mtu" 1 1 ;;
                    tcp4) c2c_tcp "$kind" "$mtu" 1 4 ;;
                    udp) c2c_udp "$kind" "$mtu" ;;
                esac
                CRES[$row|$kind]+="$R$SEP"; line+=" $kind=$R"
            done
            log "containers $row run $rep:$line"
        done
    done
done
# ping RTT, then TCP request/response
for row in rtt rr; do
    CROWS+=("$row")
    for rep in $(seq "$REPS"); do
        line=""
        for kind in kernel lanyard; do
            "c2c_$row" "$kind"
            CRES[$row|$kind]+="$R$SEP"; line+=" $kind=$R"
        done
        log "containers $row run $rep:$line"
    done
done
bridge_teardown
stop_pid "$LDPID"

echo
echo "| container <-> container, one network | kernel bridge | lanyard | lanyard/kernel |"
echo "|---|---|---|---|"
for row in "${CROWS[@]}"; do
    kind=gbps; case $row in udp-*) kind=udp ;; rtt) kind=int ;; rr) kind=us ;; esac
    k=$(rcell "$kind" "${CRES[$row|kernel]:-}"); l=$(rcell "$kind" "${CRES[$row|lanyard]:-}")
    echo "| $(clabel "$row") | $k | $l | $(ratio "$l" "$k") |"
done
echo
echo "Ratios are lanyard / kernel bridge: for Gbit/s and datagrams/s higher is better, for RTT lower. UDP cells: datagrams/s received (sent: the sender's datagrams/s; lost: % of those sent that never arrived, split into the sender's queue: dropped because the sender's eth0 queue into the switch was full (its tx drops: lanyard's TAP queue, the kernel's veth backlog), the receiver's socket: dropped at its full socket buffer (its RcvbufErrors), and elsewhere: the rest, in the switch or its output to the receiver). Little loss means the sender set the rate; loss in the sender's queue means the switch did not keep up with it; loss at the receiver's socket means the receiving iperf3 did not."
[ "$CTHREADS" = "?" ] && CTHREADS="its data-path threads not in its stats" || CTHREADS="$CTHREADS data-path thread(s)"
echo "lanyard daemon ($CTHREADS: the default config${LANYARD_THREADS:+, LANYARD_THREADS=$LANYARD_THREADS}) CPU (user+sys) over the TCP runs: $(cpu_per_gb "$TMP/cpu"); during the UDP 64-byte runs: $(cpu_busy "$TMP/ucpu") CPU-seconds per second (1.00: one core busy)."
log "containers table: $(( $(date +%s) - T0 )) s"
fi

# ---------------- table 2: more than one core ----------------
SCALE_THREADS=(1 2)
declare -A LFAIL=()   # threads -> why its daemon cannot run (its config rejected)
declare -A STASKS=()  # threads -> OS threads the daemon ran at the end of its last run
declare -A SPLACE=()  # threads -> "port:shard ..." in its last run

scale_lanyard() { # threads mtu -> R as c2c_tcp's for two pairs, on a daemon of its own with [dataplane] threads = N
    local t=$1 ssock=$TMP/run/scale.sock
    if [ -n "${LFAIL[$t]:-}" ]; then R="fail:${LFAIL[$t]}"; return; fi
    if ! daemon_start - "$ssock" "$TMP/scale-$t.log" "$TMP/threads-$t.toml"; then
        R="fail:$DFAIL"
        log "  lanyard threads=$t: $DFAIL"
        # exit code 2 is a rejected config (an unknown key, a bad value): it stays rejected
        [[ $DFAIL == "daemon exited with code 2:"* ]] && LFAIL[$t]=$DFAIL
        return
    fi
    LSOCK=$ssock; LDPID=$DPID; CPUF=$TMP/scpu-$t
    c2c_tcp lanyard "$2" 2 1
    STASKS[$t]=$(find "/proc/$LDPID/task" -mindepth 1 -maxdepth 1 | wc -l)
    stop_pid "$LDPID"
    local shards place
    read -r shards place < <(shard_map "$TMP/c2c-stats.json")
    if [ "$shards" != "?" ] && [ "$shards" != "$t" ]; then R="fail:the daemon ran $shards data-path threads, not $t"; fi
    SPLACE[$t]="${place:-?}"
    log "  lanyard threads=$t: ${STASKS[$t]} OS threads, ${shards} data-path threads; ports' shards: ${place:-?}"
}

if want_table scaling; then
T0=$(date +%s)
declare -A SRES=()  # mtu|kernel, mtu|threads -> values, each ended by $SEP
for t in "${SCALE_THREADS[@]}"; do
    printf '[dataplane]\nthreads = %s\n' "$t" >"$TMP/threads-$t.toml"; chmod 644 "$TMP/threads-$t.toml"
    : >"$TMP/scpu-$t"
done
for mtu in 1500 65520; do
    for rep in $(seq "$REPS"); do
        c2c_tcp kernel "$mtu" 2 1
        SRES[$mtu|kernel]+="$R$SEP"; line=" kernel=$R"
        for t in "${SCALE_THREADS[@]}"; do
            scale_lanyard "$t" "$mtu"
            SRES[$mtu|$t]+="$R$SEP"; line+=" threads=$t=$R"
        done
        log "scaling MTU $mtu run $rep:$line"
    done
done
bridge_teardown

echo
echo "| two pairs at once (a -> b, c -> d), TCP, 1 stream each | kernel bridge | lanyard threads=1 | lanyard threads=2 | threads=2 / threads=1 | threads=1 / kernel | threads=2 / kernel |"
echo "|---|---|---|---|---|---|---|"
for mtu in 1500 65520; do
    k=$(rcell pairs "${SRES[$mtu|kernel]:-}"); l1=$(rcell pairs "${SRES[$mtu|1]:-}"); l2=$(rcell pairs "${SRES[$mtu|2]:-}")
    echo "| aggregate Gbit/s (pair 1 + pair 2), MTU $mtu | $k | $l1 | $l2 | $(ratio "$l2" "$l1") | $(ratio "$l1" "$k") | $(ratio "$l2" "$k") |"
done
declare -A C=()
for t in "${SCALE_THREADS[@]}"; do
    if [ -s "$TMP/scpu-$t" ]; then C[$t]=$(cpu_per_gb "$TMP/scpu-$t"); else C[$t]="missing (${LFAIL[$t]:-no successful run})"; fi
done
echo "| lanyard daemon CPU (user+sys), both MTUs | n/a (the kernel's work runs in the iperf3 processes' system calls and softirqs) | ${C[1]} | ${C[2]} | $(ratio "${C[2]}" "${C[1]}") | - | - |"
tnote=""
for t in "${SCALE_THREADS[@]}"; do
    [ -n "${STASKS[$t]:-}" ] && tnote+="${tnote:+; }threads=$t: ${STASKS[$t]} OS threads, ports' data-path threads (shards) ${SPLACE[$t]}"
done
[ -n "$tnote" ] && tnote=" The daemons, in their last run (OS threads include the control and other threads; shards from lanyard stats mid-run): $tnote."
echo
echo "Both pairs' iperf3 -c start together and run ${DUR} s; the aggregate is the sum of the two receivers' rates. lanyard runs as a daemon of its own for each thread count ([dataplane] threads = N in its config), restarted for every run. Ratios: higher is better for Gbit/s; for CPU per GB, threads=2 / threads=1 above 1 is the cost of the second thread.$tnote On this $(nproc)-CPU machine the four iperf3 processes (and the kernel's work for them) share the cores with lanyard's threads."
log "scaling table: $(( $(date +%s) - T0 )) s"
fi

if want_table egress || want_table ports || want_table ipv6; then
    log "setting up lyb-host / lyb-out"
    egress_setup
fi

# ---------------- table 3: egress ----------------
label() {
    case $1 in
        tcp-tx-*) echo "egress TCP container -> outside, MTU ${1##*-}, Gbit/s" ;;
        tcp-rx-*) echo "egress TCP outside -> container (iperf3 -R), MTU ${1##*-}, Gbit/s" ;;
        udp-tx-*) echo "egress UDP 64-byte payloads container -> outside (iperf3 -u -l 64 -b 0), MTU ${1##*-}, datagrams/s received" ;;
        udp-rx-*) echo "egress UDP 64-byte payloads outside -> container (iperf3 -u -l 64 -b 0 -R), MTU ${1##*-}, datagrams/s received" ;;
        conn) echo "egress TCP connections/s, $CONNS sequential, container -> outside, MTU 65520" ;;
        rtt) echo "ping RTT container -> outside, MTU 65520, us" ;;
        rr) echo "TCP request/response RTT container -> outside (sockperf ping-pong --tcp, 14-byte messages, median), MTU 65520, us" ;;
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
    # egress_tcp and egress_udp (64-byte datagrams; it reports no stalls)
    for proto in tcp udp; do
        for dir in tx rx; do
            row="$proto-$dir-$mtu"; ROWS+=("$row")
            for rep in $(seq "$REPS"); do
                line=""
                for peer in "${PEERS[@]}"; do
                    "egress_$proto" "$peer" "$mtu" "$dir"
                    RES[$row|$peer]+="$R$SEP"
                    line+=" $peer=$R"
                    if [ -n "$STALL" ]; then
                        line+="[$STALL s stalled]"
                        STALLS+="; $peer $(label "$row" | sed 's/, Gbit.s//; s/^egress TCP //') run $rep: $STALL s"
                        STL[$row|$peer]=$((${STL[$row|$peer]:-0} + 1))
                    fi
                done
                log "MTU $mtu $proto $dir run $rep:$line"
            done
        done
    done
    if [ "$mtu" = 65520 ]; then
        ip netns exec lyb-out timeout -k 2 $((REPS * 4 * 100 + 60)) "$PY" "$TMP/conn_rate.py" serve "$OUT_IP" "$CPORT" \
            --lifetime $((REPS * 4 * 100 + 30)) >"$TMP/conn-server.log" 2>&1 &
        csrv=$!; track "$csrv"
        if ! wait_for 50 listening "$CPORT"; then
            MISS_CONN="connection server did not listen: $(one_line <"$TMP/conn-server.log")"
        fi
        ip netns exec lyb-out timeout -k 2 $((REPS * 4 * (DUR + 40) + 60)) sockperf server --tcp -i "$OUT_IP" -p "$RRPORT" \
            >"$TMP/rr-server.log" 2>&1 &
        rsrv=$!; track "$rsrv"
        ROWS+=(conn rtt rr)
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
            line=""
            for peer in "${PEERS[@]}"; do
                egress_rr "$peer"
                RES[rr|$peer]+="$R$SEP"; line+=" $peer=$R"
            done
            log "TCP request/response run $rep:$line"
        done
        stop_pid "$csrv"; stop_pid "$rsrv"
    fi
    rootless_stop
done


echo
echo "| egress path | kernel MASQUERADE | slirp4netns | pasta | lanyard | lanyard/slirp4netns | lanyard/pasta | lanyard/kernel |"
echo "|---|---|---|---|---|---|---|---|"
for row in "${ROWS[@]}"; do
    kind=gbps; case $row in conn | rtt) kind=int ;; udp-*) kind=udp ;; rr) kind=us ;; esac
    declare -A C=()
    for peer in "${PEERS[@]}"; do
        C[$peer]=$(rcell "$kind" "${RES[$row|$peer]:-}")
        [ -n "${STL[$row|$peer]:-}" ] && C[$peer]+=" (stalled in ${STL[$row|$peer]}/$REPS runs)"
    done
    echo "| $(label "$row") | ${C[kernel]} | ${C[slirp4netns]} | ${C[pasta]} | ${C[lanyard]} | $(ratio "${C[lanyard]}" "${C[slirp4netns]}") | $(ratio "${C[lanyard]}" "${C[pasta]}") | $(ratio "${C[lanyard]}" "${C[kernel]}") |"
done
echo
echo "Ratios are lanyard / peer: for Gbit/s, datagrams/s and connections/s higher is better (targets: TCP >= 3x slirp4netns, >= 1x pasta; issue 21: >= 0.9x the kernel); for RTT lower is better."
echo "UDP cells: datagrams/s received (sent: the sender's datagrams/s; lost: % of those sent that never arrived, split into the sender's queue (container -> outside: the container's eth0 into the switch or helper; outside -> container: the outside's eth0), the receiver's socket (its RcvbufErrors) and elsewhere: in the switch, the helper or the NAT)."
if [ -n "$STALLS" ]; then
    echo "One-second iperf3 intervals below a tenth of the run's mean rate or below 0.1 Gbit/s (stalls):${STALLS#;}."
fi
if [ -s "$TMP/ecpu" ]; then
    echo "lanyard daemon CPU (user+sys) over the egress TCP runs: $(cpu_per_gb "$TMP/ecpu")"
fi
log "egress table: $(( $(date +%s) - T0 )) s"
fi

# ---------------- table 4: published ports ----------------
plabel() {
    local m=${1##*-}
    case $1 in
        lo-tx-*) echo "host loopback -> container (iperf3 -c 127.0.0.1 -p HOSTPORT), MTU $m, Gbit/s" ;;
        lo-rx-*) echo "container -> host loopback client (iperf3 -R), MTU $m, Gbit/s" ;;
        out-tx-*) echo "outside -> container (lyb-out to $UP_IP:HOSTPORT), MTU $m, Gbit/s" ;;
        out-rx-*) echo "container -> outside client (iperf3 -R), MTU $m, Gbit/s" ;;
        conn) echo "TCP connections/s, $CONNS sequential, host loopback -> container, MTU 65520" ;;
        udp-lo-tx-*) echo "UDP 64-byte datagrams (iperf3 -u -l 64 -b 0), host loopback -> container, MTU $m, datagrams/s received" ;;
        udp-lo-rx-*) echo "UDP 64-byte datagrams, container -> host loopback client (-R), MTU $m, datagrams/s received" ;;
        udp-out-tx-*) echo "UDP 64-byte datagrams, outside -> container, MTU $m, datagrams/s received" ;;
        udp-out-rx-*) echo "UDP 64-byte datagrams, container -> outside client (-R), MTU $m, datagrams/s received" ;;
        who-lo) echo "client address the container sees, client on host loopback" ;;
        who-out) echo "client address the container sees, outside client 10.200.0.2" ;;
    esac
}
met() { # ratio target peer -> "1.23x peer (met)" / "(missed)" / "peer not measured"
    python3 -c "import sys; r, t, p = sys.argv[1:]; print(p + ' not measured' if r == '-' else '%sx %s (%s)' % (r, p, 'met' if float(r) >= float(t) else 'missed'))" "$@"
}
NA_SOCAT="n/a (docker DNATs outside clients; its proxy serves loopback)"
NA_SOCAT_UDP="n/a (socat forks a process per datagram; docker-proxy's UDP proxy does not)"

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
    # UDP: the loopback client at podman's MTU, the outside one at an uplink's
    ufrom=out; [ "$mtu" = 65520 ] && ufrom=lo
    for dir in tx rx; do
        row="udp-$ufrom-$dir-$mtu"
        for rep in $(seq "$REPS"); do
            line=""
            for peer in "${PPEERS[@]}"; do
                [ "$peer" = socat ] && continue
                port_udp "$peer" "$mtu" "$ufrom" "$dir"
                PRES[$row|$peer]+="$R$SEP"
                line+=" $peer=$R"
            done
            log "ports UDP MTU $mtu $ufrom $dir run $rep:$line"
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
for row in lo-tx-65520 lo-tx-1500 lo-rx-65520 lo-rx-1500 out-tx-65520 out-tx-1500 out-rx-65520 out-rx-1500 conn \
    udp-lo-tx-65520 udp-lo-rx-65520 udp-out-tx-1500 udp-out-rx-1500 who-lo who-out; do
    declare -A C=()
    for peer in "${PPEERS[@]}"; do
        if [ "$peer" = socat ] && [[ $row == out-* || $row == who-out ]]; then C[$peer]=$NA_SOCAT; continue; fi
        if [ "$peer" = socat ] && [[ $row == udp-* ]]; then C[$peer]=$NA_SOCAT_UDP; continue; fi
        if [[ $row == who-* ]]; then
            v=${WHO[${row#who-}|$peer]:-}
            if [ -z "$v" ]; then C[$peer]="missing ($(port_unusable "$peer" || echo "not run"))"
            elif [ "${v#fail:}" != "$v" ]; then C[$peer]="missing (${v#fail:})"
            else C[$peer]=$v; fi
            continue
        fi
        kind=gbps; [ "$row" = conn ] && kind=int; [[ $row == udp-* ]] && kind=udp
        C[$peer]=$(rcell "$kind" "${PRES[$row|$peer]:-}")
        [ -n "${STL[$row|$peer]:-}" ] && C[$peer]+=" (stalled in ${STL[$row|$peer]}/$REPS runs)"
    done
    if [[ $row == who-* ]]; then
        rs="- | - | - | -"
    else
        rs="$(ratio "${C[lanyard]}" "${C[slirp4netns]}") | $(ratio "${C[lanyard]}" "${C[pasta]}") | $(ratio "${C[lanyard]}" "${C[dnat]}") | $(ratio "${C[lanyard]}" "${C[socat]}")"
    fi
    echo "| $(plabel "$row") | ${C[dnat]} | ${C[socat]} | ${C[slirp4netns]} | ${C[pasta]} | ${C[lanyard]} | $rs |"
    if [[ $row == *-tx-* && $row != udp-* ]]; then
        rp=$(ratio "${C[lanyard]}" "${C[pasta]}"); rsl=$(ratio "${C[lanyard]}" "${C[slirp4netns]}")
        TARGETS+="; ${row%%-*} MTU ${row##*-}: $(met "$rp" 1.0 pasta), $(met "$rsl" 3.0 slirp4netns)"
    fi
done
echo
echo "Ratios are lanyard / peer, higher is better. Targets, host -> container (lo: client on the host's loopback, out: outside client): lanyard >= 1.0x pasta and >= 3x slirp4netns (the issue asks for 10 s runs; this run: ${DUR} s)${TARGETS}."
echo "Host ports per peer: DNAT ${HP[dnat]}, socat ${HP[socat]}, slirp4netns ${HP[slirp4netns]}, pasta ${HP[pasta]}, lanyard ${HP[lanyard]} (connection server: +$CONN_OFF); loopback clients take pasta's splice path, outside clients its tap path; socat runs with its default 8 KiB buffer, as in the team's peer notes (PEERS.md, beside the repository) (docker-proxy itself copies with Go's io.Copy, which splices on Linux, and may be faster)."
if [ -n "$PSTALLS" ]; then
    echo "One-second iperf3 intervals below a tenth of the run's mean rate or below 0.1 Gbit/s (stalls):${PSTALLS#;}."
fi
if [ -s "$TMP/pcpu" ]; then
    echo "lanyard daemon CPU (user+sys) over the published-port TCP runs: $(cpu_per_gb "$TMP/pcpu")"
fi
log "ports table: $(( $(date +%s) - T0 )) s"
fi

# ---------------- table 5: IPv6 ----------------
# Columns: lanyard over IPv6 and over IPv4, the kernel over IPv6 and over IPv4 (its bridge, its
# MASQUERADE, its DNAT: the row says which), the same endpoints for both families.
V6COLS=(l6 l4 k6 k4)
v6label() {
    local m=${1##*-}
    case $1 in
        c2c-*) echo "container -> container TCP (a -> fd00:172:17::3 / 172.17.0.3; kernel bridge: fd10::3 / 10.99.0.3), MTU $m, 1 stream, Gbit/s" ;;
        etx-*) echo "egress TCP container -> outside ([$OUT_IP6] / $OUT_IP; kernel MASQUERADE), MTU $m, Gbit/s" ;;
        erx-*) echo "egress TCP outside -> container (iperf3 -R), MTU $m, Gbit/s" ;;
        lotx-*) echo "published port, host loopback -> container (iperf3 -c ::1 / 127.0.0.1 -p HOSTPORT; kernel DNAT), MTU $m, Gbit/s" ;;
        lorx-*) echo "published port, container -> host loopback client (iperf3 -R), MTU $m, Gbit/s" ;;
        outtx-*) echo "published port, outside -> container (lyb-out to [$UP_IP6] / $UP_IP:HOSTPORT; kernel DNAT), MTU $m, Gbit/s" ;;
        outrx-*) echo "published port, container -> outside client (iperf3 -R), MTU $m, Gbit/s" ;;
        rtt-gw) echo "ping RTT container -> gateway (fd00:172:17::1 / 172.17.0.1; kernel: the bridge's fd10::1 / 10.99.0.1), MTU 1500, us" ;;
        rtt-c2c) echo "ping RTT container -> container, MTU 1500, us" ;;
        rtt-out) echo "ping RTT container -> outside, MTU 65520, us" ;;
        who-lo) echo "client address the container sees, client on host loopback" ;;
        who-out) echo "client address the container sees, outside client (fd20::2 / 10.200.0.2)" ;;
    esac
}
DNAT6_LO=""  # why the kernel has no IPv6 DNAT from [::1], once a run has shown it
declare -A WHO6=()  # lo|col, out|col -> the client address the container's iperf3 server saw

v6_one() { # column row -> R (and STALL) for one run
    local col=$1 row=$2 mtu=${2##*-} kind=lanyard fam=${1#?} peer from dst
    [ "${col:0:1}" = k ] && kind=kernel
    STALL=""
    SNAPK="$row|$col"
    case $row in
        c2c-*) FAM=$fam; CPUF=$TMP/v6cpu-c2c-$fam; c2c_tcp "$kind" "$mtu" 1 1; FAM=4 ;;
        rtt-gw) FAM=$fam; c2c_rtt "$kind" gw; FAM=4 ;;
        rtt-c2c) FAM=$fam; c2c_rtt "$kind"; FAM=4 ;;
        etx-* | erx-* | rtt-out)
            dst=$OUT_IP; [ "$fam" = 6 ] && dst=$OUT_IP6
            ECPUF=$TMP/v6cpu-egress-$fam
            case $row in
                etx-*) egress_tcp "$kind" "$mtu" tx "$dst" ;;
                erx-*) egress_tcp "$kind" "$mtu" rx "$dst" ;;
                rtt-out) egress_rtt "$kind" "$dst" ;;
            esac ;;
        *)
            from=${row%%tx-*}; from=${from%%rx-*}
            peer=lanyard; [ "$kind" = kernel ] && { peer=dnat; [ "$fam" = 6 ] && peer=dnat6; }
            if [ "$peer$from" = dnat6lo ] && [ -n "$DNAT6_LO" ]; then R="fail:$DNAT6_LO"; STALL=""; return; fi
            PCPUF=$TMP/v6cpu-ports-$fam
            case $row in *tx-*) port_tcp "$peer" "$mtu" "$from" tx "$fam" ;; *) port_tcp "$peer" "$mtu" "$from" rx "$fam" ;; esac
            if [ "$peer$from" = dnat6lo ] && [ "${R#fail:}" != "$R" ]; then
                DNAT6_LO="no IPv6 DNAT from [::1]: IPv6 has no route_localnet; nft ip6 OUTPUT dnat of [::1] to [fd18::2] gave: ${R#fail:}"
                R="fail:$DNAT6_LO"
            fi
            if [ -z "${WHO6[$from|$col]:-}" ] && [ "${R#fail:}" = "$R" ]; then
                WHO6[$from|$col]=$(sed -n 's/^Accepted connection from \([^,]*\),.*/\1/p' "$TMP/srv.out" | head -1)
            fi ;;
    esac
}

v6_rows() { # row... -> REPS repetitions, each running every column in turn
    local row rep col line
    for row in "$@"; do
        V6ROWS+=("$row")
        for rep in $(seq "$REPS"); do
            line=""
            for col in "${V6COLS[@]}"; do
                v6_one "$col" "$row"
                V6RES[$row|$col]+="$R$SEP"; line+=" $col=$R"
                if [ -n "${STALL:-}" ]; then
                    line+="[$STALL s stalled]"
                    V6STL[$row|$col]=$((${V6STL[$row|$col]:-0} + 1))
                fi
            done
            log "ipv6 $row run $rep:$line"
        done
    done
}

if want_table ipv6; then
T0=$(date +%s)
declare -A V6RES=()  # row|col -> values, each ended by $SEP
declare -A V6STL=()  # row|col -> runs with stalls
V6ROWS=()
SNAPF=$TMP/v6-counters
: >"$SNAPF"
for f in c2c egress ports; do : >"$TMP/v6cpu-$f-6"; : >"$TMP/v6cpu-$f-4"; done
# container <-> container: the table-1 topologies, dual stack
C2C6=1
daemon_must - "$TMP/run/v6.sock" "$TMP/v6-daemon.log"; LSOCK=$TMP/run/v6.sock; LDPID=$DPID
for mtu in 1500 65520; do v6_rows "c2c-$mtu"; done
v6_rows rtt-gw rtt-c2c
stop_pid "$LDPID"
bridge_teardown
C2C6=0
# egress and published ports: lyb-host / lyb-out, dual stack (egress6_setup)
for mtu in 1500 65520; do
    egress_mtu "$mtu"
    v6_rows "etx-$mtu" "erx-$mtu"
done
v6_rows rtt-out
log "ipv6: published ports (nft DNAT, ip and ip6)"
if [ -z "${MISS[kernel]:-}" ]; then dnat_setup; dnat6_setup; fi
for mtu in 1500 65520; do
    egress_mtu "$mtu"
    v6_rows "lotx-$mtu" "lorx-$mtu" "outtx-$mtu" "outrx-$mtu"
done
ports_teardown
SNAPF=""

echo
echo "| IPv6 (issue 17) | lanyard IPv6 | lanyard IPv4 | kernel IPv6 | kernel IPv4 | lanyard v6/v4 | lanyard v6 / kernel v6 | kernel v6/v4 |"
echo "|---|---|---|---|---|---|---|---|"
V6BELOW=""; V6MET=0; V6ALL=0
for row in c2c-1500 c2c-65520 etx-1500 erx-1500 etx-65520 erx-65520 lotx-1500 lorx-1500 outtx-1500 outrx-1500 \
    lotx-65520 lorx-65520 outtx-65520 outrx-65520 rtt-gw rtt-c2c rtt-out who-lo who-out; do
    declare -A C=()
    for col in "${V6COLS[@]}"; do
        if [[ $row == who-* ]]; then
            v=${WHO6[${row#who-}|$col]:-}
            if [ -n "$v" ]; then C[$col]=$v
            elif [ "$row$col" = who-lok6 ] && [ -n "$DNAT6_LO" ]; then C[$col]="missing ($DNAT6_LO)"
            else C[$col]="missing (no run from there succeeded)"; fi
            continue
        fi
        kind=gbps; [[ $row == rtt-* ]] && kind=int
        C[$col]=$(rcell "$kind" "${V6RES[$row|$col]:-}")
        [ -n "${V6STL[$row|$col]:-}" ] && C[$col]+=" (stalled in ${V6STL[$row|$col]}/$REPS runs)"
    done
    if [[ $row == who-* ]]; then
        rs="- | - | -"
    else
        r=$(ratio "${C[l6]}" "${C[l4]}")
        rs="$r | $(ratio "${C[l6]}" "${C[k6]}") | $(ratio "${C[k6]}" "${C[k4]}")"
        if [[ $row != rtt-* ]] && [ "$r" != - ]; then
            V6ALL=$((V6ALL + 1))
            if python3 -c "import sys; sys.exit(float(sys.argv[1]) < 0.9)" "$r"; then V6MET=$((V6MET + 1)); else V6BELOW+="; $(v6label "$row" | sed 's/ (.*)//; s/, Gbit.s//'): ${r}x"; fi
        fi
    fi
    echo "| $(v6label "$row") | ${C[l6]} | ${C[l4]} | ${C[k6]} | ${C[k4]} | $rs |"
done
echo
echo "Ratios: lanyard IPv6 / lanyard IPv4 (the issue's target: >= 0.9 on every path), lanyard IPv6 / the kernel's IPv6, and the kernel's IPv6 / its IPv4 (what the family itself costs the kernel); for Gbit/s higher is better, for RTT lower. Both families use the same containers, daemons and links; the kernel columns are its bridge (container <-> container), its nft MASQUERADE (egress) and its nft DNAT (published ports: host port ${HP[dnat6]} for IPv6, ${HP[dnat]} for IPv4; lanyard's -p ${HP[lanyard]}:$IPORT listens on 0.0.0.0 and [::])."
echo "lanyard IPv6 / IPv4 >= 0.9: $V6MET of $V6ALL throughput cells${V6BELOW:+; below:${V6BELOW#;}}."
cpu6=""
for f in c2c egress ports; do
    a=n/a; b=n/a
    [ -s "$TMP/v6cpu-$f-6" ] && a=$(cpu_per_gb "$TMP/v6cpu-$f-6")
    [ -s "$TMP/v6cpu-$f-4" ] && b=$(cpu_per_gb "$TMP/v6cpu-$f-4")
    cpu6+="; $f: IPv6 $a, IPv4 $b"
done
echo "lanyard daemon CPU (user+sys) over these TCP runs:${cpu6#;}."
echo "lanyard's counters that moved during these runs (lanyard stats --json before each run and DUR - 0.5 s into it: every port drop, and the NAT's, the gateways' and the shards' counters but flows made and ordinary replies; summed over the runs): $(python3 - "$TMP/v6-counters" <<'PY2'
import sys
agg = {}
for line in open(sys.argv[1]):
    key, _, rest = line.rstrip("\n").partition("\t")
    d = agg.setdefault(key, {})
    if "=" not in rest:  # "-" (nothing moved) or "no mid-run snapshot"
        if rest != "-":
            d[rest] = d.get(rest, 0) + 1
        continue
    for kv in rest.split():
        k, _, v = kv.partition("=")
        d[k] = d.get(k, 0) + int(v)
out = ["%s lanyard IPv%s: %s" % (k.split("|")[0], k.split("|")[1][1:], " ".join("%s=%d" % kv for kv in sorted(d.items())))
       for k, d in agg.items() if d]
print("; ".join(out) if out else "none")
PY2
)."
log "ipv6 table: $(( $(date +%s) - T0 )) s"
fi

if want_table engines; then
    # The engines table: podman with the real slirp4netns and with lanyard
    # in its place (pasta where podman has it), from bench/engines.sh, which
    # has its own namespaces and prints its own table.
    T0=$(date +%s)
    echo
    echo "### Engines: rootless podman with slirp4netns, and with lanyard in its place"
    echo
    LANYARD="$LANYARD" DUR="$DUR" REPS="$REPS" "$(dirname "${BASH_SOURCE[0]}")/engines.sh" 2>&1 |
        sed -n '/^podman /,$p' || echo "engines: bench/engines.sh failed"
    log "engines table: $(( $(date +%s) - T0 )) s"
fi

echo
vers() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo "?"; }
echo "Peers: slirp4netns $(vers slirp4netns), passt/pasta $(vers passt), iperf3 $(vers iperf3), nftables $(vers nftables), socat $(vers socat); lanyard binary of $(date -r "$LANYARD" '+%F %T') ($([ -n "${LANYARD_REV:-}" ] && echo "built at $LANYARD_REV" || { echo "HEAD $(git rev-parse --short HEAD 2>/dev/null || echo '?')"; [ -n "$(git status --porcelain -- src Cargo.toml Cargo.lock 2>/dev/null)" ] && echo ", src/ modified"; }))${LANYARD_THREADS:+, LANYARD_THREADS=$LANYARD_THREADS (for every daemon but those of table 2)}; ${DUR}s x ${REPS} runs, $(nproc) CPUs, kernel $(uname -r), run as $BENCH_USER."
log "done in $(( $(date +%s) - T_START )) s"
