#!/usr/bin/env bash
# Runs slirp4netns's own test suite (the unmodified scripts of tag v1.2.0
# beside this file, see README.md) against BINARY, which the tests find as
# `slirp4netns` first in PATH (a symlink to it, so argv[0] is "slirp4netns").
#
#   run.sh [--as-user USER] [--timeout SECS] [--logs DIR] BINARY [TEST...]
#
# TEST is a script name (test-slirp4netns-cidr.sh), or that name without
# ".sh" or without "test-slirp4netns-"; all test-*.sh when none is given.
# Prints one line per test, PASS, FAIL or SKIP (a test's exit 77, or a test
# this runner may not run here), the tail of each failed test's log, and a
# closing count. Exits 1 if a test named in expected-pass did not pass
# (a skip of such a test counts: the real slirp4netns 1.2.0 passes it), 2 on
# a usage or set-up error, 0 otherwise.
#
#   --as-user USER  run the tests as USER (root only; setpriv --reuid
#                   --regid --init-groups): slirp4netns is used rootless.
#   --timeout SECS  each test's limit (default 60, or SLIRP4NETNS_TEST_TIMEOUT).
#   --logs DIR      keep every test's log in DIR (else they go with the
#                   temp dir; a failed test's tail is printed either way).
#
# As root each test runs in network, mount and PID namespaces of its own
# (made here, under the test's timeout): the "host" side of the test has
# only lo and a TUN device with no reader as its default route, so nothing
# a test or the binary under test sends can leave the machine, its mounts
# cannot touch the host's, and every process it left behind dies with its
# PID namespace; a test's line says how many packets went to the blackhole.
# Tests in isolated-only are run only that way (as any other
# user they are reported as SKIP, not run). In every mode the processes of
# a test are killed by PID when it ends: its process group, and any process
# carrying this run's marker in its environment.
set -euo pipefail

self=$(readlink -f "$0")
here=$(dirname "$self")

# The inside of a test's namespaces (as root): PID 1 of the new PID
# namespace. Brings up lo, makes the blackhole default route, runs the test
# in the foreground and exits with its status; the kernel then kills
# whatever the test left in the namespace.
if [ "${1:-}" = __isolated ]; then
    shift
    ip link set lo up
    ip tuntap add dev s4n-void mode tun
    # An address for tests that look for the host's first non-loopback
    # IPv4 (test-slirp4netns-outbound-addr.sh): this namespace's own.
    ip addr add 198.18.0.1/15 dev s4n-void
    ip link set s4n-void up
    ip route add default dev s4n-void
    # PID 1 ignores signals it has no handler for.
    trap 'exit 143' TERM
    trap 'exit 130' INT
    rc=0
    "$@" || rc=$?
    # What went to the blackhole (a TUN with no reader drops all it gets):
    # anything a script or the binary sent off the machine's loopback and
    # the script's own namespaces. The runner shows it on the test's line.
    # (/proc/net/dev: this namespace's; /sys is the host's.) Its transmit
    # packets and drops.
    n=$(awk '{ sub(/^ +/, ""); split($0, f, /[: ]+/) }
        f[1] == "s4n-void" { print f[11] + f[13] }' /proc/net/dev || true)
    echo "run.sh: blackhole: ${n:-?} packets" >&2
    exit "$rc"
fi

usage() {
    echo "usage: run.sh [--as-user USER] [--timeout SECS] [--logs DIR] BINARY [TEST...]" >&2
    exit 2
}
die() {
    printf 'run.sh: %s\n' "$*" >&2
    exit 2
}

as_user=""
limit="${SLIRP4NETNS_TEST_TIMEOUT:-60}"
keep_logs=""
while [ $# -gt 0 ]; do
    case "$1" in
    --as-user) [ $# -ge 2 ] || usage; as_user=$2; shift 2 ;;
    --as-user=*) as_user=${1#*=}; shift ;;
    --timeout) [ $# -ge 2 ] || usage; limit=$2; shift 2 ;;
    --timeout=*) limit=${1#*=}; shift ;;
    --logs) [ $# -ge 2 ] || usage; keep_logs=$2; shift 2 ;;
    --logs=*) keep_logs=${1#*=}; shift ;;
    -h | --help) sed -n '2,31s/^# \{0,1\}//p' "$self"; exit 0 ;;
    --) shift; break ;;
    -*) usage ;;
    *) break ;;
    esac
done
[ $# -ge 1 ] || usage
case "$limit" in '' | *[!0-9]*) die "--timeout wants whole seconds, not '$limit'" ;; esac

binary=$(readlink -f "$1") || die "no such binary: $1"
shift
if [ ! -f "$binary" ] || [ ! -x "$binary" ]; then die "not an executable file: $binary"; fi

# udhcpc, ip and getpcaps are in sbin, which a normal user's PATH lacks.
sys_path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
PATH="$PATH:/usr/sbin:/sbin"

# What the scripts (and this runner) call, and the Debian package of each.
missing=""
for t in timeout:coreutils unshare:util-linux nsenter:util-linux setpriv:util-linux \
    findmnt:util-linux mount:mount ip:iproute2 ping:iputils-ping ncat:ncat \
    jq:jq getpcaps:libcap2-bin udhcpc:udhcpc; do
    command -v "${t%%:*}" >/dev/null 2>&1 ||
        missing="${missing:+$missing, }${t%%:*} (apt-get install ${t#*:})"
done
[ -z "$missing" ] || die "missing: $missing"

isolate=""
user_ids=()
if [ "$(id -u)" = 0 ]; then
    isolate=1
    if [ -n "$as_user" ]; then
        uid=$(id -u "$as_user" 2>/dev/null) || die "no user named '$as_user'"
        gid=$(id -g "$as_user")
        [ "$uid" != 0 ] || die "--as-user wants an unprivileged user, not '$as_user'"
        user_ids=(setpriv "--reuid=$uid" "--regid=$gid" --init-groups --)
    fi
elif [ -n "$as_user" ] && [ "$as_user" != "$(id -un)" ]; then
    die "--as-user needs root"
fi

# The tests to run.
all=()
for f in "$here"/test-*.sh; do all+=("$(basename "$f")"); done
tests=()
if [ $# -eq 0 ]; then
    tests=("${all[@]}")
else
    for a in "$@"; do
        found=""
        for c in "$a" "$a.sh" "test-slirp4netns-$a" "test-slirp4netns-$a.sh"; do
            if [ -f "$here/$c" ] && [[ $c == test-*.sh ]]; then found=$c; break; fi
        done
        [ -n "$found" ] || die "no test named '$a' in $here"
        tests+=("$found")
    done
fi

# Names listed in a file of ours: one a line, '#' starts a comment.
listed() {
    local name=$1 file=$2 line
    [ -f "$file" ] || return 1
    while IFS= read -r line || [ -n "$line" ]; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [ "$line" = "$name" ] && return 0
    done <"$file"
    return 1
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/slirp4netns-upstream.XXXXXXXX")
chmod 0755 "$tmp"
mark="slirp4netns-upstream-$$-$RANDOM$RANDOM"
tpid=""

# Kills, by PID, the processes of the test that ran (or runs) as $tpid:
# its process group (timeout made one, led by itself), and any process
# whose environment carries this run's marker (one that left the group).
sweep() {
    local sig=$1 p
    if [ -n "$tpid" ]; then
        kill "-$sig" -- "-$tpid" 2>/dev/null || true
    fi
    for p in /proc/[0-9]*; do
        p=${p#/proc/}
        [ "$p" = $$ ] && continue
        if grep -qszxF "SLIRP4NETNS_UPSTREAM_MARK=$mark" "/proc/$p/environ"; then
            kill "-$sig" "$p" 2>/dev/null || true
        fi
    done
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    if [ -n "$tpid" ]; then
        sweep TERM
        sleep 0.5
        sweep KILL
        wait "$tpid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The binary as `slirp4netns`, first in PATH. Another user may not reach
# BINARY where it was built (under /root, say): that user gets a copy.
mkdir "$tmp/bin"
if [ ${#user_ids[@]} -gt 0 ]; then
    cp "$binary" "$tmp/bin/under-test"
    chmod 0755 "$tmp/bin/under-test"
    ln -s "$tmp/bin/under-test" "$tmp/bin/slirp4netns"
else
    ln -s "$binary" "$tmp/bin/slirp4netns"
fi
chmod 0755 "$tmp/bin"

# The scripts, copied so that every user can read them and laid out as
# upstream's tests/ directory (test-slirp4netns-disable-host-loopback.sh
# sources $(dirname $0)/../tests/common.sh).
mkdir -p "$tmp/suite/tests"
cp "$here"/common.sh "$here"/test-*.sh "$tmp/suite/tests/"
chmod -R a+rX "$tmp/suite"

if [ -n "$keep_logs" ]; then
    mkdir -p "$keep_logs"
    logs=$(readlink -f "$keep_logs")
else
    logs="$tmp/logs"
    mkdir "$logs"
fi
mkdir "$tmp/work"
chmod 0755 "$tmp/work"

# The tests' environment: nothing of the caller's but LANYARD_* and RUST_*
# (the binary's own knobs), so MTU, CHILD and the like cannot leak in.
passenv=()
while IFS='=' read -r k _; do
    case "$k" in LANYARD_* | RUST_*) passenv+=("$k=${!k}") ;; esac
done < <(env)

who="$(id -un)"
[ -z "$as_user" ] || who=$as_user
printf 'slirp4netns upstream suite (v1.2.0) against %s, as %s%s, %ss per test\n' \
    "$binary" "$who" "${isolate:+, in namespaces of its own}" "$limit"

passed=0 failed=0 skipped=0
bad=()
for t in "${tests[@]}"; do
    name=${t%.sh}
    log="$logs/$name.log"
    expected=""
    listed "$t" "$here/expected-pass" && expected=1

    if [ -z "$isolate" ] && listed "$t" "$here/isolated-only"; then
        printf 'SKIP %s (not run: it may only run in the namespaces run.sh makes as root; see isolated-only)\n' "$t"
        skipped=$((skipped + 1))
        continue
    fi

    work="$tmp/work/$name"
    mkdir "$work"
    if [ ${#user_ids[@]} -gt 0 ]; then
        chown "$uid:$gid" "$work"
    fi
    cmd=(env -i "PATH=$tmp/bin:$sys_path" "HOME=$work" LC_ALL=C LANG=C
        "SLIRP4NETNS_UPSTREAM_MARK=$mark" ${passenv[@]+"${passenv[@]}"}
        "$tmp/suite/tests/$t")
    if [ -n "$isolate" ]; then
        cmd=(unshare --net --mount --pid --fork --kill-child --mount-proc --
            bash "$self" __isolated ${user_ids[@]+"${user_ids[@]}"} "${cmd[@]}")
    fi

    start=$SECONDS
    (cd "$work" && exec timeout -k 5 "$limit" "${cmd[@]}") </dev/null >"$log" 2>&1 &
    tpid=$!
    rc=0
    wait "$tpid" || rc=$?
    sweep KILL
    tpid=""
    took=$((SECONDS - start))

    note="${took}s"
    case "$rc" in
    0) verdict=PASS ;;
    77) verdict=SKIP ;;
    124 | 137) verdict=FAIL note="timed out after ${limit}s" ;;
    *) verdict=FAIL note="exit $rc, ${took}s" ;;
    esac
    bh=$(sed -n 's/^run\.sh: blackhole: \([0-9]*\) packets$/\1/p' "$log" | tail -n 1)
    [ -z "$bh" ] || [ "$bh" = 0 ] || note="$note, $bh packets to outside addresses, blackholed"
    [ -n "$expected" ] || note="$note, not expected to pass"
    printf '%s %s (%s)\n' "$verdict" "$t" "$note"
    case "$verdict" in
    PASS) passed=$((passed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;;
    FAIL) failed=$((failed + 1)) ;;
    esac
    if [ "$verdict" != PASS ]; then
        [ -z "$expected" ] || bad+=("$t")
        if [ "$verdict" = FAIL ]; then
            echo "    --- last lines of $log"
            tail -n 40 "$log" | sed 's/^/    | /'
        fi
    fi
done

printf 'slirp4netns-upstream: %d passed, %d failed, %d skipped\n' "$passed" "$failed" "$skipped"
if [ ${#bad[@]} -gt 0 ]; then
    printf 'expected to pass but did not: %s\n' "${bad[*]}"
    exit 1
fi
exit 0
