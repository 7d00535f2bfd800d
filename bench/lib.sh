# Shared by the benchmark scripts (e2e.sh, hostile.sh, scale.sh): sourced,
# never run. Processes are stopped only by the PIDs a script started (PIDS)
# and inside the namespaces it made (NS); every wait is bounded.
#
# The sourcing script sets, before it calls these:
#   TMP        its scratch directory (removed on exit)
#   NS         the namespaces it made (array; removed on exit)
#   U_ID G_ID  the unprivileged user lanyard and the rootless peers run as
#              (bench_user_setup sets them)
#   TMP/lanyard  the lanyard binary measured (a copy, executable by that user)

log() { echo "[$(date +%T)] $*" >&2; }

# The unprivileged user lanyard and the rootless peers run as (BENCH_USER,
# default lanyard-ci, else nobody): U_ID, G_ID; the TUN device opened to
# it; PY, a python3 it (and its containers) can execute, not a shim under
# /root.
bench_user_setup() {
    BENCH_USER=${BENCH_USER:-$(id -u lanyard-ci >/dev/null 2>&1 && echo lanyard-ci || echo nobody)}
    U_ID=$(id -u "$BENCH_USER"); G_ID=$(id -g "$BENCH_USER")
    chmod 0666 /dev/net/tun
    PY=/usr/bin/python3; [ -x "$PY" ] || PY=$(command -v python3)
}

PIDS=()
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
wait_for() { # tries(0.1 s each) command... -> 0 once the command succeeds
    local n=$1; shift
    for _ in $(seq "$n"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    return 1
}
as_user() { setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$@"; }
# a command's output as one table cell: no newlines or pipes, at most 100 characters
one_line() { tr '\n|' ' /' | sed 's/  */ /g; s/^ //; s/ $//' | cut -c1-100; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

daemon_start() { # netns|- socket log [config] -> DPID, or 1 and DFAIL = why
    # Not through the `ly` function: `$!` must be lanyard's own PID
    # (`ip netns exec` and setpriv exec, they do not fork).
    local pre=() cfg=() rc
    [ "$1" = - ] || pre=(ip netns exec "$1")
    # with a config file, it alone sets the data-path threads (LANYARD_THREADS would override it)
    [ -n "${4:-}" ] && { cfg=(--config "$4"); pre+=(env -u LANYARD_THREADS); }
    rm -f "$2"
    "${pre[@]}" setpriv --reuid="$U_ID" --regid="$G_ID" --clear-groups -- "$TMP/lanyard" daemon "${cfg[@]}" --socket "$2" >"$3" 2>&1 &
    DPID=$!; track "$DPID"
    for _ in $(seq 100); do
        as_user "$TMP/lanyard" network ls --socket "$2" >/dev/null 2>&1 && return 0
        if exited "$DPID"; then
            rc=0; wait "$DPID" || rc=$?
            untrack "$DPID"
            # "lanyard: config error: /tmp/.../x.toml: line 1: unknown field `k`, expected one of ..."
            # -> "config error: line 1: unknown field `k`"
            DFAIL="daemon exited with code $rc: $({ grep -m1 -i error "$3" || tail -1 "$3"; } |
                sed -E 's/^lanyard: //; s#/[^ ]*\.toml: ##; s/, expected one of .*//' | one_line)"
            return 1
        fi
        sleep 0.1
    done
    stop_pid "$DPID"
    DFAIL="daemon did not answer on its socket in 10 s: $(tail -1 "$3" | one_line)"
    return 1
}
