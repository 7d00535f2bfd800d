//! Scenarios with an "outside" world: a user + network namespace made for
//! the test (`unshare -Urn`; for an `As::Unprivileged` scenario run as root,
//! as `LANYARD_TEST_USER`) plays the host and runs lanyard's daemon; a second namespace behind
//! a veth (10.200.0.2) plays the outside. Traffic stays between them and on
//! their loopback.

#![allow(dead_code)]

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use super::harness::*;

/// The topology and a daemon, as a shell prelude; the test's body follows.
pub fn prelude(env: &Env, config: &str) -> String {
    format!(
        r#"
set -eu
B={bin}; P={peer}; S=$PWD/lanyard.sock
PIDS=""
cleanup() {{ for p in $PIDS; do kill $p 2>/dev/null || true; done; }}
trap cleanup EXIT
ip link set lo up
# behind_veth HERE THERE: a new veth whose end THERE is in a network
# namespace of its own (held by a sleep), lo up there; NS is the command
# prefix that runs in it.
behind_veth() {{
  ip link add $1 type veth peer name $2
  unshare -n sleep 600 & NSPID=$!; PIDS="$PIDS $NSPID"
  i=0; until [ "$(readlink /proc/$NSPID/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do i=$((i+1)); [ $i -lt 200 ]; sleep 0.02; done
  ip link set $2 netns $NSPID
  NS="nsenter -t $NSPID -n"
  $NS ip link set lo up
}}
behind_veth h0 o0
O=$NS
$O ip addr add 10.200.0.2/24 dev o0
$O ip link set o0 up
ip addr add 10.200.0.1/24 dev h0
ip link set h0 up
echo "0 0" > /proc/sys/net/ipv4/ping_group_range
cat > cfg.toml <<'EOF'
{config}
EOF
$B daemon --socket $S --config cfg.toml > daemon.log 2>&1 & D=$!; PIDS="$PIDS $D"
i=0; until $B network ls --socket $S >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 100 ] || {{ cat daemon.log; exit 1; }}; sleep 0.1; done
run() {{ timeout 90 $B run --socket $S "$@"; }}
waitfor() {{ i=0; until grep -q ready "$1" 2>/dev/null; do i=$((i+1)); [ $i -lt 150 ] || {{ echo "not ready: $1"; cat "$1"; exit 1; }}; sleep 0.1; done; }}
# server NAME ARGS...: a netpeer server in the outside namespace.
# LAST is its PID (kill it to make the remote vanish).
server() {{ n=$1; shift; $O timeout 150 python3 $P "$@" > $n.out 2>&1 & LAST=$!; PIDS="$PIDS $LAST"; waitfor $n.out; }}
# local_server NAME ARGS...: a netpeer server in the host namespace.
local_server() {{ n=$1; shift; timeout 150 python3 $P "$@" > $n.out 2>&1 & PIDS="$PIDS $!"; waitfor $n.out; }}
"#,
        bin = env.bin.display(),
        peer = env.dir.join("netpeer.py").display(),
        config = config,
    )
}

/// Runs `body` after the prelude; returns stdout, panics with everything
/// on failure.
pub fn scenario(who: As, config: &str, body: &str) -> String {
    scenario_within(who, config, body, Duration::from_secs(240))
}

/// [`scenario`] with a time limit of the caller's (the soak's is longer).
pub fn scenario_within(who: As, config: &str, body: &str, limit: Duration) -> String {
    let env = Env::new(who);
    let peer = env.dir.join("netpeer.py");
    std::fs::copy(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/netpeer.py"),
        &peer,
    )
    .unwrap();
    std::fs::set_permissions(&peer, std::fs::Permissions::from_mode(0o644)).unwrap();
    let script = format!("{}\n{}\necho scenario-done\n", prelude(&env, config), body);
    let mut c = env.as_user("unshare");
    c.args(["-Urn", "--", "sh", "-c", &script])
        .current_dir(env.dir.join("run"))
        .env_remove("XDG_RUNTIME_DIR")
        .env("XDG_STATE_HOME", env.dir.join("run/state"))
        .env("LANYARD_LOG", "warn");
    let o = output_within(&mut c, limit);
    let out = stdout(&o);
    if !o.status.success() || !out.contains("scenario-done") {
        let log = std::fs::read_to_string(env.dir.join("run/daemon.log")).unwrap_or_default();
        panic!(
            "scenario failed ({}):\nstdout:\n{out}\nstderr:\n{}\ndaemon.log:\n{log}",
            o.status,
            stderr(&o)
        );
    }
    out
}

/// The first line starting with `prefix`.
pub fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

/// `hostile.py` (raw frames from inside a container) written next to the
/// daemon as `$H`, and the helpers hostile scenarios use: `until_ok CMD`
/// (retries for 15 s) and `bg_run ARGS` (a container in the background,
/// ended with the scenario).
pub fn hostile_prelude() -> String {
    const HOSTILE: &str = include_str!("../data/hostile.py");
    format!(
        "cat > hostile.py <<'HOSTILE_EOF'\n{HOSTILE}\nHOSTILE_EOF\nH=$PWD/hostile.py\n\
         until_ok() {{ i=0; until \"$@\" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 150 ] || {{ echo \"never: $*\"; return 1; }}; sleep 0.1; done; }}\n\
         bg_run() {{ timeout 120 $B run --socket $S \"$@\" & CPID=$!; PIDS=\"$PIDS $CPID\"; }}\n"
    )
}

/// Prints the port counters' drops of every port, summed by reason, as
/// `drops REASON=N ...`, and the NAT's refusals as `nat KEY=N ...` (a
/// container's port is gone once it exits, so a body prints this while it
/// runs).
pub const DROPS: &str = r#"$B stats --socket $S --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
drops = {}
for p in d["ports"]:
    for k, v in p["counters"]["drops"].items():
        drops[k] = drops.get(k, 0) + v
print("drops", " ".join(f"{k}={v}" for k, v in sorted(drops.items())))
nat = d["nat"]
print("nat", " ".join(f"{k}={nat[k]}" for k in ("loopback_refused", "bad_source_refused")))
'"#;

/// The number after `KEY=` on the line starting with `prefix` (0 if the
/// key is not there).
pub fn count(out: &str, prefix: &str, key: &str) -> u64 {
    line(out, prefix)
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{key}=")))
        .map_or(0, |v| v.parse().unwrap())
}

/// `streams.py` (named, time-bounded TCP streams with hashes, counted UDP)
/// written next to the daemon as `$ST`, and the helpers the fault and soak
/// scenarios share:
/// - `st_server NAME ARGS...`: a streams.py server in the outside
///   namespace, output in NAME.out; `LAST` is the PID to signal to make it
///   die (a `timeout`, which passes SIGTERM on);
/// - `wait_line FILE PATTERN SECS`: waits until FILE has a line matching
///   the grep pattern, at most SECS seconds; prints FILE and fails if not;
/// - `alive PID`: true while PID exists and is not a zombie (a zombie has
///   ended; its parent may be an init that never reaps);
/// - `wait_gone PID SECS`: waits until PID is not alive, at most SECS;
/// - `now_ms`: a monotonic-enough clock in milliseconds, for elapsed times.
pub fn streams_prelude() -> String {
    const STREAMS: &str = include_str!("../data/streams.py");
    format!(
        "cat > streams.py <<'STREAMS_EOF'\n{STREAMS}\nSTREAMS_EOF\nST=$PWD/streams.py\n{}",
        r#"
st_server() { n=$1; shift; $O timeout ${STT:-150} python3 $ST "$@" > $n.out 2>&1 & LAST=$!; PIDS="$PIDS $LAST"; waitfor $n.out; }
wait_line() { i=0; until grep -q "$2" "$1" 2>/dev/null; do i=$((i+1)); [ $i -lt $(($3 * 20)) ] || { echo "no line '$2' in $1 within $3 s:"; cat "$1"; return 1; }; sleep 0.05; done; }
alive() { st=$(sed -n 's/^State:[[:space:]]*\(.\).*/\1/p' /proc/$1/status 2>/dev/null); [ -n "$st" ] && [ "$st" != Z ]; }
wait_gone() { i=0; while alive $1; do i=$((i+1)); [ $i -lt $(($2 * 20)) ] || return 1; sleep 0.05; done; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
"#
    )
}
