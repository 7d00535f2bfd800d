//! A daemon's restart: networks made with `network create` come back with
//! their ids and settings (a state file in the user's state directory,
//! written atomically); a corrupt or foreign state file, or a kept network
//! that no longer fits the config, is reported with its path and moved
//! aside, never a crash.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::Duration;

use common::harness::*;

const T: Duration = Duration::from_secs(60);

fn state_file(env: &Env) -> PathBuf {
    env.dir.join("run/state/lanyard/networks.json")
}

fn inspect(env: &Env, name: &str) -> serde_json::Value {
    let o = output_within(env.ctl(&["network", "inspect", name]), T);
    assert_ok(&o, &format!("network inspect {name}"));
    json(&o)[0].clone()
}

fn names(env: &Env) -> Vec<String> {
    let o = output_within(env.ctl(&["network", "ls", "--json"]), T);
    assert_ok(&o, "network ls");
    let mut v: Vec<String> = json(&o)
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["Name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// SIGTERM, and the daemon exits 0 in time.
fn stop(mut d: Proc) {
    d.signal(libc::SIGTERM);
    let s = d.wait(Duration::from_secs(20));
    assert!(s.success(), "daemon exited {s}:\n{}", d.output());
}

#[test]
fn networks_made_with_network_create_come_back_after_a_restart() {
    let env = Env::new(As::Unprivileged);
    let d = env.daemon();
    assert_ok(
        &output_within(
            env.ctl(&[
                "network",
                "create",
                "--subnet",
                "10.77.0.0/24",
                "--internal",
                "kept",
            ]),
            T,
        ),
        "network create kept",
    );
    assert_ok(
        &output_within(env.ctl(&["network", "create", "--ipv6=false", "other"]), T),
        "network create other",
    );
    let kept = inspect(&env, "kept");
    let other = inspect(&env, "other");
    let file = state_file(&env);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the state file is the user's alone");
    stop(d);

    let d = env.daemon();
    assert_eq!(names(&env), vec!["default", "kept", "other"]);
    for (before, name) in [(&kept, "kept"), (&other, "other")] {
        let after = inspect(&env, name);
        for key in ["Id", "Created", "IPAM", "Internal", "EnableIPv6"] {
            assert_eq!(after[key], before[key], "{name}.{key} after the restart");
        }
    }
    assert!(
        d.output().contains("restored network kept 10.77.0.0/24"),
        "{}",
        d.output()
    );
    // A container on a restored network works as on a new one.
    let o = output_within(
        env.run_in(
            &["--network", "kept"],
            &["ping", "-c", "1", "-W", "5", "10.77.0.1"],
        ),
        T,
    );
    assert_ok(&o, "run on the restored network");
    // A removal is kept too.
    assert_ok(
        &output_within(env.ctl(&["network", "rm", "other"]), T),
        "network rm other",
    );
    stop(d);
    let d = env.daemon();
    assert_eq!(names(&env), vec!["default", "kept"]);
    drop(d);
}

#[test]
fn a_corrupt_state_file_is_reported_moved_aside_and_the_daemon_serves() {
    let env = Env::new(As::Unprivileged);
    let dir = env.dir.join("run/state/lanyard");
    std::fs::create_dir_all(&dir).unwrap();
    let file = state_file(&env);
    std::fs::write(
        &file,
        b"{\"version\": 1, \"networks\": [{\"request\": \x00 garbage",
    )
    .unwrap();
    if let Some((uid, gid)) = env.user {
        for p in [env.dir.join("run/state"), dir.clone(), file.clone()] {
            std::os::unix::fs::chown(&p, Some(uid), Some(gid)).unwrap();
        }
    }
    let d = env.daemon();
    let log = d.output();
    assert!(
        log.contains(&format!("state file {}", file.display())) && log.contains("moved aside"),
        "{log}"
    );
    assert_eq!(names(&env), vec!["default"]);
    let aside: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("networks.json.bad-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    // The daemon goes on keeping networks in a fresh file.
    assert_ok(
        &output_within(env.ctl(&["network", "create", "fresh"]), T),
        "create",
    );
    stop(d);
    let d = env.daemon();
    assert_eq!(names(&env), vec!["default", "fresh"]);
    drop(d);
}

#[test]
fn a_kept_network_the_config_now_claims_is_not_restored_and_the_file_is_set_aside() {
    let env = Env::new(As::Unprivileged);
    let d = env.daemon();
    for (name, subnet) in [("a", "10.78.0.0/24"), ("b", "10.79.0.0/24")] {
        assert_ok(
            &output_within(env.ctl(&["network", "create", "--subnet", subnet, name]), T),
            "create",
        );
    }
    stop(d);
    // The config now declares a network over a's subnet.
    let cfg = env.dir.join("cfg.toml");
    std::fs::write(
        &cfg,
        "[[network]]\nname = \"default\"\nsubnet = \"172.17.0.0/16\"\n[[network]]\nname = \"cfgnet\"\nsubnet = \"10.78.0.0/16\"\n",
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let log = env.dir.join("daemon2.log");
    let mut c = env.lanyard(&[
        "daemon",
        "--config",
        cfg.to_str().unwrap(),
        "--socket",
        env.socket.to_str().unwrap(),
    ]);
    let d = Proc::spawn_logged(&mut c, &log, "daemon");
    wait_until(T, "daemon", || {
        env.socket.exists() && !names(&env).is_empty()
    });
    assert_eq!(names(&env), vec!["b", "cfgnet", "default"]);
    let out = d.output();
    assert!(
        out.contains("not restored: a:") && out.contains("moved aside"),
        "{out}"
    );
    stop(d);
    // What was restored was written anew: b comes back, a does not.
    let d = env.daemon();
    assert_eq!(names(&env), vec!["b", "default"]);
    drop(d);
}

/// Containers outlive a daemon restart: their interfaces stay, they are
/// attached again with the same addresses, names and published ports;
/// container-to-container traffic and the published port work again, and
/// a TCP flow to the outside that was open across the restart is reset
/// (by the stopping daemon, `Nat::shutdown`; after a crash the new daemon,
/// which has no flow for it, would) instead of hanging.
#[test]
fn containers_survive_a_daemon_restart_and_are_attached_again() {
    let out = common::scenario::scenario(
        As::Unprivileged,
        "[dns]\nupstream = [\"127.0.0.1:5353\"]\n",
        &format!(
            r#"{hp}
$B network create --socket $S --subnet 10.88.0.0/24 kn >/dev/null
bg_run --network kn --name srv -p 127.0.0.1:18080:8000 -- python3 $P whoami 8000
until_ok run --network kn -- python3 $P ask srv 8000
echo "c2c before: $(run --network kn -- python3 $P ask srv 8000)"
echo "published before: $(python3 $P ask 127.0.0.1 18080)"
server sink sink 9000
# Its re-attachment is an info line (the scenario runs at warn).
LANYARD_LOG=info timeout 100 $B run --socket $S --network kn --name streamer -- sh -c "python3 $P send 10.200.0.2 9000 400000000000 2>&1 | tail -1; echo send-done; sleep 60" > stream.out 2>&1 & SPID=$!; PIDS="$PIDS $SPID"
sleep 1
who() {{ $B network inspect kn --socket $S | python3 -c 'import json,sys; [print("who", c["Name"], k, c["IPv4Address"], c["IPv6Address"]) for k,c in sorted(json.load(sys.stdin)[0]["Containers"].items(), key=lambda x: x[1]["Name"])]'; }}
who | sed 's/^/before: /'
kill $D; wait $D || true
echo "daemon stopped"
sleep 1
$B daemon --socket $S --config cfg.toml > daemon2.log 2>&1 & D=$!; PIDS="$PIDS $D"
until_ok run --network kn -- python3 $P ask srv 8000
who | sed 's/^/after: /'
echo "c2c after: $(run --network kn -- python3 $P ask srv 8000)"
echo "published after: $(python3 $P ask 127.0.0.1 18080)"
# The streamer lives on after its reset (the sleep), to be attached again.
i=0; until grep -q re-attached stream.out || [ $i -gt 100 ]; do i=$((i+1)); sleep 0.1; done
kill $SPID; wait $SPID || true
echo "stream: $(tr '\n' ' ' < stream.out)"
sleep 0.5
echo "sink: $(cat sink.out | tr '\n' ' ')"
"#,
            hp = common::scenario::hostile_prelude()
        ),
    );
    let c2c_before = line(&out, "c2c before: ");
    assert!(c2c_before.contains("peer 10.88.0."), "{out}");
    assert!(line(&out, "c2c after: ").contains("peer 10.88.0."), "{out}");
    assert!(line(&out, "published before: ").contains("peer "), "{out}");
    assert!(line(&out, "published after: ").contains("peer "), "{out}");
    // The same container, address and name as before, although another
    // container started on the network before srv was back (its `until_ok`
    // probes): the new daemon held them.
    let srv_before = line(&out, "before: who srv ");
    assert_eq!(
        srv_before.trim_start_matches("before: "),
        line(&out, "after: who srv ").trim_start_matches("after: "),
        "{out}"
    );
    let streamer_ip = line(&out, "before: who streamer ")
        .split_whitespace()
        .nth(4)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    assert!(
        line(&out, "stream: ").contains(&format!("re-attached eth0 to kn as {streamer_ip}")),
        "{out}"
    );
    // The streamer's connection was reset, not left hanging: its send
    // ended (an error) long before the 400 GB or the timeout.
    let stream = line(&out, "stream: ");
    assert!(stream.contains("send-done"), "{out}");
    assert!(!stream.contains("sent 400000000000"), "{out}");
    assert!(
        stream.to_lowercase().contains("reset") || stream.contains("Errno"),
        "{out}"
    );
    // The outside server saw its connection end with the old daemon.
    assert!(line(&out, "sink: ").contains("sink "), "{out}");
}

use common::scenario::line;

/// When no daemon comes back within `--reattach-timeout`, `run` says so,
/// stops its container and exits 125.
#[test]
fn run_stops_its_container_and_exits_125_when_no_daemon_comes_back() {
    let out = common::scenario::scenario(
        As::Unprivileged,
        "",
        r#"
timeout 60 $B run --socket $S --reattach-timeout 2 -- sleep 61.25 > run.out 2>&1 & R=$!; PIDS="$PIDS $R"
i=0; until $B conntrack --socket $S >/dev/null 2>&1 && grep -q . /dev/null || [ $i -gt 20 ]; do i=$((i+1)); sleep 0.1; done
sleep 1
kill $D; wait $D || true
t0=$(date +%s)
rc=0; wait $R || rc=$?
t1=$(date +%s)
echo "run rc=$rc after $((t1 - t0)) s"
echo "run said: $(tr '\n' ' ' < run.out)"
left=0; for p in /proc/[0-9]*; do [ "$(tr '\0' ' ' < $p/cmdline 2>/dev/null)" = "sleep 61.25 " ] && left=$((left+1)); done
echo "left=$left"
"#,
    );
    assert!(line(&out, "run rc=").starts_with("run rc=125 "), "{out}");
    let secs: u64 = line(&out, "run rc=")
        .split_whitespace()
        .nth(3)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (1..=10).contains(&secs),
        "gave up after {secs} s, asked 2:\n{out}"
    );
    let said = line(&out, "run said: ");
    assert!(
        said.contains("lost the daemon") && said.contains("no daemon came back"),
        "{out}"
    );
    assert_eq!(
        line(&out, "left="),
        "left=0",
        "the container was stopped:\n{out}"
    );
}

/// `lanyard disconnect` of an interface `run` attached removes it from
/// the container (run lets go of its copy of the TAP when told), as
/// docker's disconnect does; the other interface stays.
#[test]
fn a_disconnected_interface_goes_from_the_container() {
    let out = common::scenario::scenario(
        As::Unprivileged,
        "",
        r#"
$B network create --socket $S --subnet 10.89.0.0/24 second >/dev/null
timeout 60 $B run --socket $S --name dc --network default --network second -- sh -c 'sleep 2; echo "before: $(ls /sys/class/net | tr "\n" " ")"; sleep 3; echo "after: $(ls /sys/class/net | tr "\n" " ")"' > run.out 2>&1 & R=$!; PIDS="$PIDS $R"
sleep 3.5
$B disconnect --socket $S second dc
wait $R
cat run.out
"#,
    );
    assert!(line(&out, "before: ").contains("eth1"), "{out}");
    let after = line(&out, "after: ");
    assert!(after.contains("eth0") && !after.contains("eth1"), "{out}");
}
