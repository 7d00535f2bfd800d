//! Helpers of the flood tests (`tests/floods.rs`): one attacker container
//! floods (with `hostile.py flood`, bounded in count and time) while a
//! neighbour container works, and the daemon's peak memory is sampled.
//! Shell functions for the scenario body, and parsers for what they print.

#![allow(dead_code)]

/// Shell functions a flood scenario's body uses, after the prelude and
/// `hostile_prelude()`:
///
/// * `rss_watch`: samples the daemon's VmRSS (kB, /proc/$D/status) every
///   50 ms into `rss.max` (the peak) until `rss.stop` exists (at most
///   60 s); `rss_report` stops it and prints `rss peak=KB start=KB`.
/// * `attack NAME ARGS...`: a container `NAME` that runs `hostile.py flood
///   ARGS` (output in NAME.out), stopped early by `touch flood.stop`;
///   returns once it says "flooding". `attack_end NAME` stops it and waits
///   (at most 30 s) for its "flood ... sent" line.
/// * `neighbour IP PEER`: a container at IP that sends 8 MB to the outside
///   sink (`server sink sink 9100`, started by the caller) and pings the
///   container at PEER 10 times: prints `neighbour sent N SHA`, the sink's
///   `sink N SHA from 10.200.0.1` line, and `neighbour ping R/10`.
/// * `snapshot`: `lanyard stats --json` summed (see [`SNAPSHOT_PY`]).
pub const FLOOD_HELPERS: &str = r#"
rss_now() { awk '/^VmRSS/ {print $2}' /proc/$D/status; }
rss_watch() {
  rm -f rss.stop; rss_now > rss.start; rss_now > rss.max
  ( i=0; m=$(cat rss.max)
    while [ $i -lt 1200 ] && [ ! -e rss.stop ]; do
      r=$(rss_now); [ -n "$r" ] && [ "$r" -gt "$m" ] && { m=$r; echo $m > rss.max; }
      i=$((i+1)); sleep 0.05
    done ) & RSSW=$!; PIDS="$PIDS $RSSW"
}
rss_report() { touch rss.stop; wait $RSSW 2>/dev/null || true; echo "rss peak=$(cat rss.max) start=$(cat rss.start) now=$(rss_now)"; }
attack() {
  n=$1; shift; rm -f flood.stop
  FLOOD_STOP=$PWD/flood.stop timeout 120 $B run --socket $S --name $n "$@" > $n.out 2>&1 & APID=$!; PIDS="$PIDS $APID"
  i=0; until grep -q flooding $n.out 2>/dev/null; do i=$((i+1)); [ $i -lt 300 ] || { echo "attacker never flooded"; cat $n.out; exit 1; }; sleep 0.1; done
}
attack_end() {
  touch flood.stop
  i=0; until grep -q "^flood .* sent" $1.out 2>/dev/null; do i=$((i+1)); [ $i -lt 300 ] || { echo "attacker never ended"; cat $1.out; exit 1; }; sleep 0.1; done
  grep "^flood " $1.out
}
neighbour() {
  run --name nb --ip $1 -- sh -c "python3 $P send 10.200.0.2 9100 8000000 | sed 's/^/neighbour /'; echo \"neighbour ping \$(ping -c 10 -i 0.2 -W 2 $2 | sed -n 's/.* \([0-9]*\) received.*/\1/p')/10\""
  i=0; until grep -q "^sink " sink.out; do i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done
  grep "^sink " sink.out
}
# on_net NAME [NET]: until NAME shows up on network NET (default).
on_net() { until_ok sh -c "$B network inspect --socket $S ${2:-default} | grep -q '\"$1\"'"; }
snapshot() { $B stats --socket $S --json | python3 -c "$SNAPSHOT_PY"; }
# conntrack_count: the NAT's flows by container address, as `conntrack A=N ...`.
conntrack_count() { $B conntrack --socket $S --json | python3 -c 'import json, sys, collections; c = collections.Counter(f["container"].rsplit(":", 1)[0] for f in json.load(sys.stdin)); print("conntrack", " ".join(f"{k}={v}" for k, v in sorted(c.items())))'; }
"#;

/// Prints `lanyard stats --json` (on stdin) as lines of `KEY=N` words:
/// `drops` (every port's drops, summed by reason), `nat`, `dns` and `gw`
/// (the gateways' counters, summed), and `flows N` (the NAT's table).
pub const SNAPSHOT_PY: &str = r#"
import json, sys
d = json.load(sys.stdin)
drops = {}
for p in d["ports"]:
    for k, v in p["counters"]["drops"].items():
        drops[k] = drops.get(k, 0) + v
gw = {}
for n in d["networks"]:
    for k, v in n["gateway"].items():
        gw[k] = gw.get(k, 0) + v
line = lambda name, m: print(name, " ".join(f"{k}={v}" for k, v in sorted(m.items())))
line("drops", drops)
line("nat", d["nat"])
line("dns", d["dns"])
line("gw", gw)
print("flows", d["nat_flows"])
"#;

/// The prelude of a flood scenario's body: the helpers above and the
/// snapshot script as `$SNAPSHOT_PY`.
pub fn flood_prelude() -> String {
    format!("SNAPSHOT_PY='{SNAPSHOT_PY}'\n{FLOOD_HELPERS}")
}

/// The most the daemon may hold (VmRSS) under any one flood, with the
/// default config, one or two data-path threads: docs/SECURITY.md's bound.
/// Its tables are sized once (the NAT's for 65536 flows are about 40 MiB
/// when every slot and bucket has been touched), so nothing an attacker
/// sends can grow it past them.
pub const RSS_BOUND_KB: u64 = 128 * 1024;
/// What a flood may add to the daemon's VmRSS at start (tables touched for
/// the first time, but nothing that grows per frame or per flow).
pub const RSS_GROWTH_KB: u64 = 64 * 1024;

/// Checks `rss_report`'s line against [`RSS_BOUND_KB`] and
/// [`RSS_GROWTH_KB`].
pub fn assert_memory_bounded(out: &str) {
    let (peak, start) = rss(out);
    assert!(
        peak < RSS_BOUND_KB,
        "the daemon's VmRSS peaked at {peak} kB, over {RSS_BOUND_KB} kB: {out}"
    );
    assert!(
        peak.saturating_sub(start) < RSS_GROWTH_KB,
        "the daemon's VmRSS grew from {start} to {peak} kB: {out}"
    );
}

/// The daemon's peak and starting VmRSS in kB, from `rss_report`'s line.
pub fn rss(out: &str) -> (u64, u64) {
    let l = super::scenario::line(out, "rss peak=");
    let kv = |k: &str| -> u64 {
        l.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {k} in {l:?}"))
    };
    (kv("peak="), kv("start="))
}

/// Checks the neighbour's work during the attack: its 8 MB reached the
/// outside byte for byte, and its pings to another container were
/// answered (at least `min_pings` of 10).
pub fn assert_neighbour_worked(out: &str, min_pings: u32) {
    let sent = super::scenario::line(out, "neighbour sent ");
    let w: Vec<&str> = sent.split_whitespace().collect();
    assert_eq!(w.len(), 4, "{sent}");
    assert_eq!(w[2], "8000000", "{out}");
    let sink = super::scenario::line(out, "sink ");
    assert_eq!(
        sink,
        // The outside sees the host's address (the NAT's).
        format!("sink 8000000 {} from 10.200.0.1", w[3]),
        "the neighbour's bytes did not arrive intact: {out}"
    );
    let ping = super::scenario::line(out, "neighbour ping ");
    let got: u32 = ping
        .trim_start_matches("neighbour ping ")
        .split('/')
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(
        got >= min_pings,
        "the neighbour's pings to another container: {ping} (want {min_pings}/10): {out}"
    );
}

/// How many frames the attacker says it sent.
pub fn flood_sent(out: &str) -> u64 {
    let l = super::scenario::line(out, "flood ");
    l.split_whitespace()
        .nth(3)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {l:?}"))
}
