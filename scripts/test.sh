#!/usr/bin/env bash
# The README's test command: sets up what the tests need, then runs
# `cargo test "$@"` (so `scripts/test.sh --test networks dhcp` works).
#
# As root (on Debian) it installs those of the tests' peers that are
# missing, opens /dev/net/tun to all, creates the unprivileged user the
# rootless tests run as (LANYARD_TEST_USER, lanyard-ci unless set), allows
# unprivileged ICMP sockets and makes sure new network namespaces get IPv6
# loopback; when they do, it sets LANYARD_REQUIRE_IPV6=1 so the IPv6 test
# fails rather than skips.
# It also sets up the real-engine tests (tests/engines.rs: podman and
# rootlesskit with lanyard in slirp4netns's place): it installs the engines
# and creates their user (LANYARD_ENGINE_USER, lanyard-engines unless set: a
# normal user with a home and subuid/subgid ranges, as rootless podman
# needs, and /run/user/UID); once they are all there it sets
# LANYARD_REQUIRE_ENGINES=1 so those tests fail rather than skip.
# As any other user it changes nothing: if a tool is missing it names the
# tool and its package on one line and exits 1.
set -euo pipefail
cd "$(dirname "$0")/.."

# udhcpc (and on some systems ip) live in sbin, which a normal user's PATH
# lacks; the tests call them by name.
for d in /usr/sbin /sbin; do
    case ":$PATH:" in *":$d:"*) ;; *) PATH="$PATH:$d" ;; esac
done
export PATH

# What the tests run, and the Debian package each comes from (ncat, jq,
# getpcaps and findmnt: slirp4netns's upstream scripts, through
# tests/slirp4netns-upstream/run.sh).
TOOLS="ping:iputils-ping ip:iproute2 unshare:util-linux nsenter:util-linux
setpriv:util-linux python3:python3 dig:dnsutils udhcpc:udhcpc
ncat:ncat jq:jq getpcaps:libcap2-bin findmnt:util-linux
podman:podman runc:runc slirp4netns:slirp4netns rootlesskit:rootlesskit
rootlessctl:rootlesskit newuidmap:uidmap busybox:busybox-static
catatonit:catatonit curl:curl socat:socat tcpdump:tcpdump tshark:tshark"
# slirp4netns's own tests (tests/slirp4netns-upstream) call ncat, jq,
# getpcaps and findmnt, and the real slirp4netns is what they are checked
# against. The engines (tests/engines/run.sh): runc, not crun, which fails
# on hybrid cgroup hosts; the tests' image is busybox-static plus socat
# (the UDP echo). tcpdump and tshark read what `lanyard capture` writes
# (tests/capture.rs, and the capture module's own tests).
PACKAGES="iputils-ping iproute2 util-linux python3 ca-certificates dnsutils udhcpc
ncat jq libcap2-bin
podman runc slirp4netns rootlesskit uidmap busybox-static catatonit curl socat
tcpdump tshark"

note() { printf 'test.sh: %s\n' "$*" >&2; }

if [ "$(id -u)" = 0 ]; then
    if command -v apt-get >/dev/null 2>&1; then
        # Installed already (a second run, or a CI pass after the first)?
        # Then nothing to fetch.
        absent=""
        for p in $PACKAGES; do
            status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
            [ "$status" = "install ok installed" ] || absent="$absent $p"
        done
        if [ -n "$absent" ]; then
            note "installing the test peers (not installed:$absent)"
            export DEBIAN_FRONTEND=noninteractive
            apt-get update -q
            # util-linux (unshare, nsenter, setpriv) and iproute2 are on
            # every Debian but are named so a slimmer image fails here
            # rather than in a test.
            # shellcheck disable=SC2086 # one word per package
            apt-get install -y -q --no-install-recommends $PACKAGES
        fi
    fi
    # Rootless TAP creation needs the device open to all, as on most hosts.
    if [ ! -e /dev/net/tun ]; then
        mkdir -p /dev/net
        mknod /dev/net/tun c 10 200
    fi
    chmod 0666 /dev/net/tun
    # The unprivileged user the rootless tests run as.
    export LANYARD_TEST_USER="${LANYARD_TEST_USER:-lanyard-ci}"
    if ! id "$LANYARD_TEST_USER" >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin "$LANYARD_TEST_USER"
    fi
    # The user the real engines run as: rootless podman wants a normal user
    # with subordinate uid/gid ranges (Debian's useradd -m writes them to
    # /etc/subuid and /etc/subgid), a home and a runtime directory.
    export LANYARD_ENGINE_USER="${LANYARD_ENGINE_USER:-lanyard-engines}"
    if ! id "$LANYARD_ENGINE_USER" >/dev/null 2>&1; then
        useradd -m -s /bin/bash "$LANYARD_ENGINE_USER"
    fi
    for f in /etc/subuid /etc/subgid; do
        grep -q "^$LANYARD_ENGINE_USER:" "$f" 2>/dev/null ||
            note "$LANYARD_ENGINE_USER has no range in $f: the engine tests will fail"
    done
    engine_uid=$(id -u "$LANYARD_ENGINE_USER")
    install -d -m 700 -o "$engine_uid" -g "$(id -g "$LANYARD_ENGINE_USER")" "/run/user/$engine_uid"
    # Unprivileged ICMP sockets (ping without raw sockets).
    sysctl -qw net.ipv4.ping_group_range="0 2147483647" || note "could not set net.ipv4.ping_group_range"
    # IPv6 loopback in new network namespaces, for the [::1] published-port
    # test. (No /proc/sys/net/ipv6 at all means IPv6 is off at boot.)
    sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.default.disable_ipv6=0 2>/dev/null ||
        note "could not enable IPv6 (booted with ipv6.disable=1?)"
fi

missing=""
for t in $TOOLS; do
    command -v "${t%%:*}" >/dev/null 2>&1 ||
        missing="${missing:+$missing, }${t%%:*} (apt-get install ${t#*:})"
done
if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "missing: $missing; install them and run this script again" >&2
    else
        echo "missing: $missing; run this script as root to install them" >&2
    fi
    exit 1
fi

if [ "$(id -u)" = 0 ]; then
    lo6=$(unshare -n sh -c 'ip link set lo up; ip -6 addr show dev lo' 2>/dev/null || true)
    case "$lo6" in
    *::1*) export LANYARD_REQUIRE_IPV6=1 ;;
    *) note "new network namespaces have no IPv6 loopback: the IPv6 test will skip" ;;
    esac
    # Every engine tool is there (the check above): the engine tests must
    # run, not skip.
    export LANYARD_REQUIRE_ENGINES=1
elif [ ! -r /dev/net/tun ] || [ ! -w /dev/net/tun ]; then
    note "/dev/net/tun is not open to you: the rootless tests will fail (run this script as root to fix it)"
fi

exec cargo test "$@"
