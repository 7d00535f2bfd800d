#!/usr/bin/env bash
# The real-engine checks: rootless podman 4.3 and rootlesskit 1.1 (Debian
# 12) with HELPER in slirp4netns's place, as the engines call it
# (/work/shared/ENGINES.md has the calls). Proven against the real
# slirp4netns first:
#
#   sudo tests/engines/run.sh /usr/bin/slirp4netns
#   sudo EXPECT_IPV6_HOSTFWD=1 ENGINES_DNS=1 tests/engines/run.sh target/debug/lanyard
#
# (tests/engines.rs runs the second.) Runs as root; every engine runs as
# LANYARD_ENGINE_USER (default lanyard-engines: a normal user with
# subuid/subgid ranges, which scripts/test.sh creates) with a HOME,
# XDG_RUNTIME_DIR, containers.conf (runc, network_cmd_path = the helper)
# and storage (vfs) of this run's own, under one temporary directory: runs
# share no state with each other or with the user's own podman.
#
# HELPER is copied to TMP/bin/slirp4netns (so it is reachable by the user,
# is called by that name, and its processes are told apart from any other
# slirp4netns by the copy's inode).
#
# Environment:
#   LANYARD_ENGINE_USER   the user (default lanyard-engines)
#   EXPECT_IPV6_HOSTFWD   1: `-p [::1]:H:C` with port_handler=slirp4netns must
#                         work (lanyard); 0 (default): it must be refused,
#                         podman rc 126, as slirp4netns 1.2 does
#   EXPECT_UDP_LOOPBACK_REPLY  1: with port_handler=slirp4netns, a UDP
#                         container's reply to a client on the host's
#                         127.0.0.1 must come back (lanyard); 0 (default): it
#                         must not, as slirp4netns 1.2 addresses it to
#                         10.0.2.2, which --disable-host-loopback forbids
#   ENGINES_DNS           1: check DNS through 10.0.2.3, with the upstream a
#                         fake on 127.0.0.1 (tests/data/netpeer.py dns) given
#                         to the helper as LANYARD_DNS_UPSTREAM; answers
#                         probe.test -> 192.0.2.7, and host.lanyard.internal
#                         must be answered by the helper itself (10.0.2.2).
#                         0 (default): skipped. Never set it for the real
#                         slirp4netns: it would forward the queries to the
#                         host's real resolver.
#   ENGINES_ONLY          a regular expression: run only the checks whose
#                         names match (the names are printed)
#   ENGINES_TIMEOUT       seconds any one engine command may take (60)
#   ENGINES_KEEP          1: keep the temporary directory (logs) on exit
#
# Prints one PASS/FAIL/SKIP line per check with what it compared, then
# "N passed, N failed, N skipped"; exits 1 if any failed, 2 on bad usage or
# a missing tool. Traffic: only the host's loopback and the namespaces the
# engines make here.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)

usage() {
    echo "usage: $0 HELPER_BINARY   (as root; see the comment at the top)" >&2
    exit 2
}
[ $# -eq 1 ] || usage
[ -x "$1" ] || { echo "$1: not an executable" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "$0 must run as root (it runs the engines as LANYARD_ENGINE_USER)" >&2; exit 2; }

ENGINE_USER=${LANYARD_ENGINE_USER:-lanyard-engines}
EXPECT_IPV6_HOSTFWD=${EXPECT_IPV6_HOSTFWD:-0}
EXPECT_UDP_LOOPBACK_REPLY=${EXPECT_UDP_LOOPBACK_REPLY:-0}
ENGINES_DNS=${ENGINES_DNS:-0}
ONLY=${ENGINES_ONLY:-}
T=${ENGINES_TIMEOUT:-60}
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

missing=""
for t in podman runc conmon catatonit rootlesskit rootlessctl newuidmap newgidmap busybox \
    curl socat python3 setpriv ss timeout ldd; do
    command -v "$t" >/dev/null 2>&1 || missing="$missing $t"
done
[ -z "$missing" ] || { echo "missing:$missing (scripts/test.sh as root installs them)" >&2; exit 2; }
id "$ENGINE_USER" >/dev/null 2>&1 || { echo "no user $ENGINE_USER (scripts/test.sh as root creates it)" >&2; exit 2; }
grep -q "^$ENGINE_USER:" /etc/subuid || { echo "$ENGINE_USER has no range in /etc/subuid" >&2; exit 2; }
U_ID=$(id -u "$ENGINE_USER")
G_ID=$(id -g "$ENGINE_USER")
chmod 0666 /dev/net/tun 2>/dev/null || true

T0=$(date +%s.%N)
TMP=$(mktemp -d /tmp/lanyard-engines.XXXXXX)
chmod 755 "$TMP"
mkdir "$TMP/bin"
install -m 755 "$1" "$TMP/bin/slirp4netns"
HELPER=$TMP/bin/slirp4netns
HELPER_ID=$(stat -L -c %d:%i "$HELPER")
# What the user writes: its home, runtime dir, podman storage, rootlesskit
# state dirs.
U=$TMP/u
install -d -m 755 -o "$U_ID" -g "$G_ID" "$U" "$U/home" "$U/storage" "$U/rk"
# The runtime dir apart, with a short path: podman puts the API socket at
# $XDG_RUNTIME_DIR/libpod/tmp/<64 hex>.net, and a socket path must stay under
# 108 bytes (slirp4netns: "the specified API socket path is too long").
RUN=$(mktemp -d /tmp/lye.XXXXXX)
chown "$U_ID:$G_ID" "$RUN"
chmod 700 "$RUN"
install -d -m 755 "$TMP/www" "$TMP/log"
MARKER="lanyard-engines-$$-$RANDOM"
echo "$MARKER" >"$TMP/www/index.html"
cat >"$TMP/containers.conf" <<EOF
[engine]
runtime = "runc"
network_cmd_path = "$HELPER"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
cat >"$TMP/storage.conf" <<EOF
[storage]
driver = "vfs"
graphroot = "$U/storage"
runroot = "$RUN/containers"
EOF
chmod 644 "$TMP/containers.conf" "$TMP/storage.conf"

BG_PIDS=()        # processes this script started in the background
USER_ENV=()       # extra environment for the engines (the DNS upstream)

log() { printf '[%s] %s\n' "$(date +%T.%3N)" "$*" >&2; }

# Every live process running the helper copy, one "PID" a line (zombies have
# no exe and are left out: PID 1 here reaps slowly, ENGINES.md 7.10).
helper_pids() {
    local p id
    for p in /proc/[0-9]*; do
        id=$(stat -L -c %d:%i "$p/exe" 2>/dev/null) || continue
        [ "$id" = "$HELPER_ID" ] || continue
        case $(awk '{ print $3 }' "$p/stat" 2>/dev/null) in Z | X | "") continue ;; esac
        echo "${p#/proc/}"
    done
}
helper_zombies() {
    local p n=0
    for p in /proc/[0-9]*; do
        [ "$(awk '{ print $2 $3 }' "$p/stat" 2>/dev/null)" = "(slirp4netns)Z" ] && n=$((n + 1))
    done
    echo "$n"
}

cleanup() {
    local rc=$? p pause
    set +e
    trap - EXIT INT TERM
    [ "$rc" = 0 ] || log "cleaning up (exit status $rc)"
    # podman's own: everything in this run's storage is this run's.
    if [ -d "$U/storage" ]; then
        as_user timeout 30 podman rm -a -f -t 0 >/dev/null 2>&1
    fi
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        poll 3 exited "$p"
    done
    # The pause process podman left for this run's user namespace.
    for pause in "$RUN"/libpod/tmp/pause.pid "$RUN"/libpod/pause.pid; do
        [ -s "$pause" ] && kill -KILL "$(cat "$pause")" 2>/dev/null
    done
    for p in ${BG_PIDS[@]+"${BG_PIDS[@]}"}; do
        kill -KILL "$p" 2>/dev/null
    done
    # Any helper still alive is this run's (the copy's inode).
    for p in $(helper_pids); do
        log "cleanup: killing helper $p left alive"
        kill -KILL "$p" 2>/dev/null
    done
    if [ "${ENGINES_KEEP:-0}" = 1 ]; then
        log "kept $TMP and $RUN"
    else
        rm -rf "$TMP" "$RUN" 2>/dev/null || { sleep 1; rm -rf "$TMP" "$RUN"; }
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A command as the engine user, with this run's environment only: "${AS[@]}"
# CMD... (a simple command, so `"${AS[@]}" CMD &` gives CMD's own PID: setpriv
# and env exec).
set_as() {
    AS=(setpriv --reuid="$U_ID" --regid="$G_ID" --init-groups --
        env -i -C "$U/home" HOME="$U/home" USER="$ENGINE_USER" LOGNAME="$ENGINE_USER" PATH="$PATH"
        XDG_RUNTIME_DIR="$RUN" XDG_CONFIG_HOME="$U/home/.config"
        XDG_DATA_HOME="$U/home/.local/share"
        CONTAINERS_CONF="$TMP/containers.conf" CONTAINERS_STORAGE_CONF="$TMP/storage.conf"
        ${USER_ENV[@]+"${USER_ENV[@]}"})
}
set_as
as_user() { "${AS[@]}" "$@"; }
pod() { as_user timeout "$T" podman "$@"; }

NPASS=0 NFAIL=0 NSKIP=0
CUR=""
# want NAME: is this check selected?
want() {
    CUR=$1
    [ -z "$ONLY" ] || [[ $1 =~ $ONLY ]]
}
pass() { NPASS=$((NPASS + 1)); printf 'PASS %s: %s\n' "$CUR" "$*"; }
skip() { NSKIP=$((NSKIP + 1)); printf 'SKIP %s: %s\n' "$CUR" "$*"; }
# fail WHAT [OUTPUT]: the output, indented, follows.
fail() {
    NFAIL=$((NFAIL + 1))
    printf 'FAIL %s: %s\n' "$CUR" "$1"
    [ $# -lt 2 ] || printf '%s\n' "$2" | sed 's/^/    | /'
}
# The lines of OUT that match ERE, joined by " / ".
grab() { printf '%s\n' "$1" | grep -E -- "$2" | sed 's/^ *//' | paste -sd '|' | sed 's/|/ \/ /g'; }
# expect OUT ERE...: PASS with the matched lines if every ERE matches a line.
expect() {
    local out=$1 e got="" m
    shift
    for e in "$@"; do
        m=$(grab "$out" "$e")
        if [ -z "$m" ]; then
            fail "no line matches /$e/" "$out"
            return 1
        fi
        got="${got:+$got; }/$e/ -> $m"
    done
    pass "$got"
}

# Polls CMD (a function or command) until it succeeds, every 0.1 s, at most
# SECONDS_LIMIT.
poll() {
    local limit=$1 end
    shift
    end=$(($(date +%s%N) + limit * 1000000000))
    until "$@"; do
        [ "$(date +%s%N)" -lt "$end" ] || return 1
        sleep 0.1
    done
}
# exited PID: gone or a zombie.
exited() {
    local s
    s=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 0
    [ -z "$s" ] || [ "$s" = Z ]
}
no_helper() { [ -z "$(helper_pids)" ]; }
port_closed() { [ -z "$(ss -Hln "( sport = :$1 )" 2>/dev/null)" ]; }
# gone WHAT PORT...: within 10 s no live helper is left and no PORT listens.
gone() {
    local what=$1 p left
    shift
    if ! poll 10 no_helper; then
        left=$(helper_pids | paste -sd ' ')
        fail "$what: helper still running after 10 s (pids $left)" \
            "$(for p in $left; do tr '\0' ' ' <"/proc/$p/cmdline"; echo; done)"
        return 1
    fi
    for p in "$@"; do
        if ! poll 10 port_closed "$p"; then
            fail "$what: port $p still listening after 10 s" "$(ss -Hlnp "( sport = :$p )" 2>/dev/null)"
            return 1
        fi
    done
    pass "$what: no live helper (zombies named slirp4netns on the host: $(helper_zombies)), ports ${*:-none} not listening"
}

# Free ports, well away from lanyard's and the other tests' fixed ones.
PORTS=()
pick_ports() {
    local n=$1 p
    p=$((20000 + RANDOM % 20000))
    while [ ${#PORTS[@]} -lt "$n" ]; do
        p=$((p + 1))
        [ -z "$(ss -Hln "( sport = :$p )" 2>/dev/null)" ] && PORTS+=("$p")
    done
}
pick_ports 16

# curl_is URL: the marker comes back within 10 s (the server may still be
# starting).
curl_once() { [ "$(curl -gs --max-time 2 "$1" 2>/dev/null)" = "$MARKER" ]; }
curl_is() { poll 10 curl_once "$1"; }
# refused URL: curl exits 7 (connection refused), within 10 s.
refused_once() {
    local rc=0
    curl -gs --max-time 2 "$1" >/dev/null 2>&1 || rc=$?
    [ "$rc" = 7 ]
}
# udp_echo PORT SECONDS: a datagram to 127.0.0.1:PORT comes back (socat echo
# in the container), retried for SECONDS.
udp_echo() {
    timeout $(($2 + 5)) python3 - "$1" "$2" <<'EOF'
import socket, sys, time
port = int(sys.argv[1])
msg = b"udp-probe-%d" % port
end = time.time() + int(sys.argv[2])
while time.time() < end:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(0.5)
    s.sendto(msg, ("127.0.0.1", port))
    try:
        d, _ = s.recvfrom(2048)
        if d == msg:
            print("echoed", d.decode())
            sys.exit(0)
    except OSError:
        pass
    s.close()
    time.sleep(0.1)
sys.exit(1)
EOF
}

# --- the image: busybox, the marker page, socat for the UDP echo -------------
"$HERE/make-image.sh" "$MARKER" "$(command -v socat)" >"$TMP/image.tar"
chmod 644 "$TMP/image.tar"
if ! out=$(as_user timeout "$T" podman import "$TMP/image.tar" localhost/bb 2>&1); then
    echo "podman import failed:" >&2
    printf '%s\n' "$out" >&2
    exit 1
fi
log "image imported; helper $1 as $HELPER; user $ENGINE_USER ($U_ID); ports ${PORTS[*]}"
RUNI=(run --pull=never)

# --- podman: what the container sees ---------------------------------------
INSPECT='ip addr; ip route'
v4_default() {
    expect "$1" 'tap0: .* mtu 65520' 'inet 10\.0\.2\.100/24' '^default via 10\.0\.2\.2 dev tap0'
}
if want podman-default-network; then
    # No --network: the rootless default, slirp4netns in podman 4.3.
    if out=$(pod "${RUNI[@]}" --rm localhost/bb sh -c "$INSPECT" 2>&1); then
        v4_default "$out" || true
    else fail "podman run failed" "$out"; fi
fi
if want podman-slirp4netns; then
    if out=$(pod "${RUNI[@]}" --rm --network slirp4netns localhost/bb sh -c "$INSPECT" 2>&1); then
        v4_default "$out" || true
    else fail "podman run failed" "$out"; fi
fi
if want podman-cidr; then
    if out=$(pod "${RUNI[@]}" --rm --network slirp4netns:cidr=10.5.0.0/24 localhost/bb sh -c "$INSPECT" 2>&1); then
        expect "$out" 'inet 10\.5\.0\.100/24' '^default via 10\.5\.0\.2 dev tap0' || true
    else fail "podman run failed" "$out"; fi
fi
if want podman-mtu; then
    if out=$(pod "${RUNI[@]}" --rm --network slirp4netns:mtu=1500 localhost/bb sh -c "$INSPECT" 2>&1); then
        expect "$out" 'tap0: .* mtu 1500 ' 'inet 10\.0\.2\.100/24' || true
    else fail "podman run failed" "$out"; fi
fi
if want podman-ipv6; then
    # The address comes from the helper's router advertisement: wait for it
    # (at most 10 s).
    # shellcheck disable=SC2016 # expanded in the container
    v6='i=0; while [ $i -lt 100 ]; do
          ip -6 addr show dev tap0 | grep -q "inet6 fd00:" && ip -6 route | grep -q "^default via fe80::2" && break
          i=$((i + 1)); sleep 0.1; done; ip -6 addr show dev tap0; ip -6 route'
    if out=$(pod "${RUNI[@]}" --rm --network slirp4netns:enable_ipv6=true localhost/bb sh -c "$v6" 2>&1); then
        expect "$out" 'inet6 fd00::[0-9a-f:]+/64 scope global' '^default via fe80::2 dev tap0' || true
    else fail "podman run failed" "$out"; fi
fi

# --- podman: published ports, both port handlers ---------------------------
# One container per handler: TCP on 127.0.0.1:H and on H (all addresses),
# UDP on 127.0.0.1:H. port_handler=slirp4netns goes through the helper's API
# socket; the default (rootlessport, and the default network) through
# podman's own rootlessport process.
HOST_V6=$(ip -6 addr show dev lo 2>/dev/null | grep -o 'inet6 ::1/' || true)
SERVE='httpd -p 80 -h /www && exec socat UDP4-RECVFROM:8080,fork EXEC:cat'
i=0
for handler in slirp4netns rootlessport; do
    p_lo=${PORTS[i]} p_any=${PORTS[i + 1]} p_udp=${PORTS[i + 2]}
    i=$((i + 3))
    v6p=()
    if [ "$handler" = slirp4netns ]; then
        net=(--network slirp4netns:port_handler=slirp4netns)
    else
        net=()
        # rootlessport listens on [::1] itself (the container is reached
        # from inside its namespace): with any helper.
        [ -z "$HOST_V6" ] || v6p=(-p "[::1]:${PORTS[13]}:80")
    fi
    name=eng-ports-$handler
    want "podman-ports-$handler" || continue
    if ! out=$(pod "${RUNI[@]}" -d --name "$name" "${net[@]}" -p "127.0.0.1:$p_lo:80" -p "$p_any:80" \
        -p "127.0.0.1:$p_udp:8080/udp" ${v6p[@]+"${v6p[@]}"} localhost/bb sh -c "$SERVE" 2>&1); then
        fail "podman run -d -p failed" "$out"
        pod rm -f -t 0 "$name" >/dev/null 2>&1 || true
        continue
    fi
    CUR="podman-ports-$handler-tcp-127.0.0.1"
    if curl_is "http://127.0.0.1:$p_lo/index.html"; then pass "curl 127.0.0.1:$p_lo (-p 127.0.0.1:$p_lo:80) = the page"
    else fail "curl 127.0.0.1:$p_lo did not return the page" "$(pod logs "$name" 2>&1)"; fi
    CUR="podman-ports-$handler-tcp-any"
    if curl_is "http://127.0.0.1:$p_any/index.html"; then pass "curl 127.0.0.1:$p_any (-p $p_any:80) = the page"
    else fail "curl 127.0.0.1:$p_any did not return the page"; fi
    if [ ${#v6p[@]} -gt 0 ]; then
        CUR="podman-ports-$handler-tcp-ipv6"
        if curl_is "http://[::1]:${PORTS[13]}/index.html"; then pass "curl [::1]:${PORTS[13]} (${v6p[*]}) = the page"
        else fail "curl [::1]:${PORTS[13]} did not return the page"; fi
    fi
    CUR="podman-ports-$handler-udp"
    if [ "$handler" = slirp4netns ] && [ "$EXPECT_UDP_LOOPBACK_REPLY" != 1 ]; then
        # slirp4netns 1.2 sends the container's reply to 10.0.2.2:PORT, which
        # --disable-host-loopback (podman's default) forbids: it is dropped.
        if got=$(udp_echo "$p_udp" 3); then
            fail "a reply came back from 127.0.0.1:$p_udp/udp ($got): slirp4netns 1.2 drops it (EXPECT_UDP_LOOPBACK_REPLY=1?)"
        else
            pass "a datagram to 127.0.0.1:$p_udp (-p 127.0.0.1:$p_udp:8080/udp): no reply in 3 s, as slirp4netns 1.2 with --disable-host-loopback"
        fi
    elif got=$(udp_echo "$p_udp" 10); then pass "a datagram to 127.0.0.1:$p_udp (-p 127.0.0.1:$p_udp:8080/udp) $got"
    else fail "no echo from 127.0.0.1:$p_udp/udp" "$(pod logs "$name" 2>&1)"; fi
    CUR="podman-ports-$handler-rm"
    if out=$(pod rm -f -t 0 "$name" 2>&1); then
        gone "after podman rm -f" "$p_lo" "$p_any" || true
    else fail "podman rm -f failed" "$out"; fi
done

# The UDP reply with port_handler=slirp4netns when the host's loopback is
# allowed: it comes back (with the real slirp4netns too).
if want podman-ports-slirp4netns-udp-allow-host-loopback; then
    pu=${PORTS[12]}
    name=eng-udp-lo
    if out=$(pod "${RUNI[@]}" -d --name "$name" --network slirp4netns:port_handler=slirp4netns,allow_host_loopback=true \
        -p "127.0.0.1:$pu:8080/udp" localhost/bb socat UDP4-RECVFROM:8080,fork EXEC:cat 2>&1); then
        if got=$(udp_echo "$pu" 10); then pass "a datagram to 127.0.0.1:$pu (-p 127.0.0.1:$pu:8080/udp, allow_host_loopback=true) $got"
        else fail "no echo from 127.0.0.1:$pu/udp" "$(pod logs "$name" 2>&1)"; fi
    else fail "podman run -d failed" "$out"; fi
    CUR=podman-ports-slirp4netns-udp-allow-host-loopback-rm
    pod rm -f -t 0 "$name" >/dev/null 2>&1 || true
    gone "after podman rm -f" || true
fi

# --- podman: -p [::1] with port_handler=slirp4netns ------------------------
# slirp4netns 1.2 refuses IPv6 host addresses ("bad arguments.host_addr",
# podman rc 126, the container not started); lanyard must take them.
if want podman-ports-ipv6-hostfwd && [ -z "$HOST_V6" ]; then
    skip "the host's lo has no ::1"
elif want podman-ports-ipv6-hostfwd; then
    p6=${PORTS[6]}
    name=eng-v6
    rc=0
    out=$(pod "${RUNI[@]}" -d --name "$name" --network slirp4netns:port_handler=slirp4netns \
        -p "[::1]:$p6:80" localhost/bb httpd -f -p 80 -h /www 2>&1) || rc=$?
    if [ "$EXPECT_IPV6_HOSTFWD" = 1 ]; then
        if [ "$rc" != 0 ]; then
            fail "podman run -p [::1]:$p6:80 failed (rc $rc), expected it to work" "$out"
        elif curl_is "http://[::1]:$p6/index.html"; then
            pass "-p [::1]:$p6:80 accepted (rc 0), curl [::1]:$p6 = the page"
        else
            fail "-p [::1]:$p6:80 accepted but curl [::1]:$p6 did not return the page"
        fi
    else
        if [ "$rc" = 126 ] && grep -q 'host_addr' <<<"$out"; then
            pass "-p [::1]:$p6:80 refused: rc 126, $(grab "$out" 'host_addr')"
        else
            fail "-p [::1]:$p6:80: expected rc 126 and a host_addr error, got rc $rc" "$out"
        fi
    fi
    CUR=podman-ports-ipv6-hostfwd-rm
    pod rm -f -t 0 "$name" >/dev/null 2>&1 || true
    gone "after the [::1] container (rc $rc) was removed" "$p6" || true
fi

# --- podman: DNS through 10.0.2.3 ------------------------------------------
if want podman-dns; then
    if [ "$ENGINES_DNS" != 1 ]; then
        skip "ENGINES_DNS is not 1 (the real slirp4netns would ask the host's real resolver)"
    else
        pdns=${PORTS[7]}
        timeout $((T * 4)) python3 "$REPO/tests/data/netpeer.py" dns "$pdns" 127.0.0.1 >"$TMP/log/dns.log" 2>&1 &
        BG_PIDS+=($!)
        poll 10 grep -q ready "$TMP/log/dns.log" || { fail "the fake DNS upstream did not start" "$(cat "$TMP/log/dns.log")"; }
        USER_ENV=("LANYARD_DNS_UPSTREAM=127.0.0.1:$pdns")
        set_as
        q='nslookup probe.test 10.0.2.3; echo ===; nslookup host.lanyard.internal 10.0.2.3'
        if out=$(pod "${RUNI[@]}" --rm --network slirp4netns localhost/bb sh -c "$q" 2>&1); then
            fwd=${out%%===*} local=${out#*===}
            if grep -q 'Address: *192\.0\.2\.7' <<<"$fwd" && grep -q 'Address: *10\.0\.2\.2' <<<"$local"; then
                pass "nslookup probe.test 10.0.2.3 -> $(grab "$fwd" 'Address: *192')" \
                    "(the fake upstream on 127.0.0.1:$pdns); host.lanyard.internal -> $(grab "$local" 'Address: *10\.')"
            else
                fail "expected probe.test -> 192.0.2.7 and host.lanyard.internal -> 10.0.2.2" "$out"
            fi
        else fail "nslookup in the container failed" "$out"; fi
        USER_ENV=()
        set_as
    fi
fi

# --- podman: teardown -------------------------------------------------------
if want podman-run-rm; then
    if out=$(pod "${RUNI[@]}" --rm --network slirp4netns localhost/bb true 2>&1); then
        gone "after podman run --rm ... true" || true
    else fail "podman run --rm failed" "$out"; fi
fi
if want podman-stop; then
    ps_=${PORTS[8]}
    name=eng-stop
    if out=$(pod "${RUNI[@]}" -d --name "$name" --network slirp4netns:port_handler=slirp4netns \
        -p "127.0.0.1:$ps_:80" localhost/bb httpd -f -p 80 -h /www 2>&1); then
        n=$(helper_pids | wc -l)
        if [ "$n" = 1 ] && curl_is "http://127.0.0.1:$ps_/index.html"; then
            pass "running: 1 live helper, curl 127.0.0.1:$ps_ = the page"
            CUR=podman-stop-stopped
            if out=$(pod stop -t 0 "$name" 2>&1); then
                gone "after podman stop" "$ps_" && CUR=podman-stop-refused && if refused_once "http://127.0.0.1:$ps_/"; then
                    pass "curl 127.0.0.1:$ps_ refused after stop"
                else fail "curl 127.0.0.1:$ps_ not refused after stop"; fi
            else fail "podman stop failed" "$out"; fi
            CUR=podman-stop-rm
            if out=$(pod rm "$name" 2>&1); then gone "after podman rm" || true
            else fail "podman rm failed" "$out"; fi
        else
            fail "running: $n live helpers (want 1) or no page from 127.0.0.1:$ps_" "$(pod logs "$name" 2>&1)"
        fi
    else fail "podman run -d failed" "$out"; fi
    pod rm -f -t 0 "$name" >/dev/null 2>&1 || true
fi

# --- rootlesskit -------------------------------------------------------------
RK=(rootlesskit --net=slirp4netns --slirp4netns-binary="$HELPER" --copy-up=/etc --disable-host-loopback)
if want rootlesskit-inside; then
    s='ip addr show tap0; ip route; ping -c 1 -W 5 10.0.2.2'
    if [ "$ENGINES_DNS" = 1 ]; then
        pdns=${PORTS[7]}
        [ -n "$(ss -Hlnu "( sport = :$pdns )" 2>/dev/null)" ] || {
            timeout $((T * 2)) python3 "$REPO/tests/data/netpeer.py" dns "$pdns" 127.0.0.1 >"$TMP/log/dns2.log" 2>&1 &
            BG_PIDS+=($!)
            poll 10 grep -q ready "$TMP/log/dns2.log" || true
        }
        USER_ENV=("LANYARD_DNS_UPSTREAM=127.0.0.1:$pdns")
        set_as
        s="$s; busybox nslookup probe.test 10.0.2.3"
    fi
    if out=$(as_user timeout "$T" "${RK[@]}" --state-dir="$U/rk/inside" sh -c "$s" 2>&1); then
        checks=('tap0: .* mtu 65520' 'inet 10\.0\.2\.100/24' '^default via 10\.0\.2\.2 dev tap0' '1 (packets )?received')
        [ "$ENGINES_DNS" != 1 ] || checks+=('Address: *192\.0\.2\.7')
        expect "$out" "${checks[@]}" || true
        CUR=rootlesskit-inside-exit
        gone "after rootlesskit exited" || true
    else fail "rootlesskit failed" "$out"; fi
    USER_ENV=()
    set_as
fi
i=9
for driver in slirp4netns builtin; do
    want "rootlesskit-ports-$driver" || continue
    pr=${PORTS[i]}
    i=$((i + 1))
    st=$U/rk/$driver
    "${AS[@]}" timeout $((T * 2)) "${RK[@]}" --state-dir="$st" --port-driver="$driver" \
        busybox httpd -f -p 80 -h "$TMP/www" >"$TMP/log/rk-$driver.log" 2>&1 &
    rkpid=$!
    BG_PIDS+=("$rkpid")
    if ! poll 20 test -S "$st/api.sock" || ! poll 10 test -n "$(helper_pids)"; then
        fail "rootlesskit did not come up (no $st/api.sock or no helper)" "$(cat "$TMP/log/rk-$driver.log")"
        kill -TERM "$rkpid" 2>/dev/null || true
        continue
    fi
    if ! out=$(as_user timeout "$T" rootlessctl --socket "$st/api.sock" add-ports "127.0.0.1:$pr:80/tcp" 2>&1); then
        fail "rootlessctl add-ports 127.0.0.1:$pr:80/tcp failed" "$out"$'\n'"$(cat "$TMP/log/rk-$driver.log")"
    else
        id=$(printf '%s\n' "$out" | tail -1)
        if curl_is "http://127.0.0.1:$pr/index.html"; then
            pass "add-ports 127.0.0.1:$pr:80/tcp (id $id), curl 127.0.0.1:$pr = the page"
            CUR="rootlesskit-ports-$driver-remove"
            if out=$(as_user timeout "$T" rootlessctl --socket "$st/api.sock" remove-ports "$id" 2>&1) &&
                poll 10 refused_once "http://127.0.0.1:$pr/"; then
                pass "remove-ports $id, then curl 127.0.0.1:$pr refused"
            else
                fail "remove-ports $id: still served or failed" "$out"
            fi
        else
            fail "curl 127.0.0.1:$pr did not return the page" "$(cat "$TMP/log/rk-$driver.log")"
        fi
    fi
    CUR="rootlesskit-ports-$driver-exit"
    kill -TERM "$rkpid" 2>/dev/null || true
    if poll 15 exited "$rkpid"; then gone "after rootlesskit got SIGTERM and exited" "$pr" || true
    else fail "rootlesskit did not exit within 15 s of SIGTERM" "$(cat "$TMP/log/rk-$driver.log")"; fi
done

elapsed=$(awk -v a="$T0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo "engines: ${elapsed} s with helper $1"
echo "engines: $NPASS passed, $NFAIL failed, $NSKIP skipped"
[ "$NFAIL" = 0 ]
