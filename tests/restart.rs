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
