//! Hostile containers and clients, end to end (issue 18): one attacker at a
//! time floods, bounded in count and time, while a neighbour container
//! works. For each attack: the neighbour's TCP transfer to the outside
//! arrives byte for byte and its pings to another container are answered,
//! the daemon's memory stays under the bound docs/SECURITY.md states, and
//! `lanyard stats` counts what was refused. (How fast the neighbour goes
//! meanwhile is `bench/hostile.sh`'s to measure.)

mod common;

use common::floods::*;
use common::harness::*;
use common::scenario::*;

const CONFIG: &str = "[dns]\nupstream = [\"127.0.0.1:5353\"]\n";

/// The body after the prelude, the hostile helpers and the flood helpers.
fn run(who: As, config: &str, body: &str) -> String {
    let out = scenario(
        who,
        config,
        &format!("{}\n{}\n{body}", hostile_prelude(), flood_prelude()),
    );
    eprintln!("{out}");
    out
}

#[test]
fn a_syn_flood_to_the_outside() {
    let out = run(
        As::Unprivileged,
        CONFIG,
        r#"
server sink sink 9100
bg_run --name peer --ip 172.17.0.20 -- sleep 100
until_ok sh -c "$B network inspect --socket $S default | grep -q '\"peer\"'"
rss_watch
attack att --ip 172.17.0.30 -- python3 $H flood syn 2000000 15 0 10.200.0.2 9101
neighbour 172.17.0.10 172.17.0.20
snapshot
attack_end att
rss_report
"#,
    );
    assert_neighbour_worked(&out, 5);
}
