# Shared by the benchmark scripts (e2e.sh, hostile.sh, scale.sh): sourced,
# never run. Processes are stopped only by the PIDs a script started (PIDS)
# and inside the namespaces it made (NS); every wait is bounded.
#
# The sourcing script sets, before it calls these:
#   TMP        its scratch directory (removed on exit)
#   NS         the namespaces it made (array; removed on exit)
#   U_ID G_ID  the unprivileged user lanyard and the rootless peers run as

log() { echo "[$(date +%T)] $*" >&2; }

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
