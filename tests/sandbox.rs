//! The sandbox in a running daemon: what `lanyard sandbox` probes in the
//! daemon's own threads (a file outside its runtime directory, a netlink
//! socket, a new process, exec, namespaces, executable memory) is refused
//! when it is on and let through with `--no-sandbox`, side by side in one
//! run; what it must still do (write in its runtime directory) is allowed
//! in both; the kernel's view (/proc/PID/status) agrees; and the bad
//! settings are refused with the field named. That every path (c2c,
//! egress, published ports, DNS, DHCP, connect, control) works under the
//! sandbox is proven by the other end-to-end tests: their daemons run
//! confined, and the harness checks that they say so.

mod common;

use std::time::Duration;

use common::harness::*;

/// Every wait: generous, as the machine may be busy.
const T: Duration = Duration::from_secs(60);

/// A field of /proc/PID/status.
fn status(pid: i32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .unwrap_or_else(|| panic!("no {field} in status"))
        .trim()
        .to_string()
}

/// The probes of a running daemon: (probe, when_sandboxed, outcome).
fn probes(env: &Env) -> (String, Vec<(String, String, String)>) {
    let o = output_within(env.ctl(&["sandbox", "--json"]), T);
    assert_ok(&o, "lanyard sandbox");
    let v = json(&o);
    let rows = v["probes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["probe"].as_str().unwrap().to_string(),
                p["when_sandboxed"].as_str().unwrap().to_string(),
                p["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    (v["sandbox"].as_str().unwrap().to_string(), rows)
}

fn confined_and_unconfined(who: As) {
    // Confined (the default).
    let on = Env::new(who);
    let d = on.daemon();
    let (line, rows) = probes(&on);
    assert!(line.contains("seccomp allow-list of"), "{line}");
    assert!(line.contains("no new privileges"), "{line}");
    assert!(line.contains("landlock ABI"), "{line}");
    assert!(!line.contains("NOT applied"), "{line}");
    assert!(rows.len() >= 9, "{rows:?}");
    for (probe, want, got) in &rows {
        assert!(
            got.starts_with(want.as_str()),
            "sandboxed daemon: {probe}: want {want}, got {got}"
        );
    }
    // The refusals are the sandbox's, not the kernel's own answers.
    let outcome = |p: &str| &rows.iter().find(|r| r.0.contains(p)).unwrap().2;
    assert_eq!(outcome("/etc/passwd"), "refused (EACCES)");
    assert_eq!(outcome("netlink"), "refused (EPERM)");
    assert_eq!(outcome("execveat"), "refused (EPERM)");
    assert_eq!(outcome("start a process"), "refused (EPERM)");
    assert_eq!(status(d.pid(), "Seccomp"), "2");
    assert_eq!(status(d.pid(), "NoNewPrivs"), "1");
    // At most net_bind_service (10) and net_raw (13) are left.
    let eff = u64::from_str_radix(&status(d.pid(), "CapEff"), 16).unwrap();
    assert_eq!(eff & !(1 << 10 | 1 << 13), 0, "CapEff {eff:x}");
    if who == As::Unprivileged || euid() != 0 {
        assert_eq!(eff, 0, "an unprivileged daemon holds nothing");
    }

    // Unconfined, in the same run: the same probes go through.
    let off = Env::new(who);
    let log = off.dir.join("daemon-off.log");
    let mut c = off.lanyard(&[
        "daemon",
        "--no-sandbox",
        "--socket",
        off.socket.to_str().unwrap(),
    ]);
    let d2 = Proc::spawn_logged(&mut c, &log, "daemon --no-sandbox");
    wait_until(T, "unsandboxed daemon", || off.socket.exists());
    let (line, rows) = probes(&off);
    assert_eq!(line, "sandbox: off");
    for (probe, _, got) in &rows {
        assert!(
            got.starts_with("allowed"),
            "unsandboxed daemon: {probe}: {got}"
        );
    }
    assert_eq!(status(d2.pid(), "Seccomp"), "0");
    assert_eq!(status(d2.pid(), "NoNewPrivs"), "0");
}

#[test]
fn a_running_daemon_refuses_what_its_sandbox_forbids_as_unprivileged_user() {
    confined_and_unconfined(As::Unprivileged);
}

#[test]
fn a_running_daemon_refuses_what_its_sandbox_forbids_as_root_or_current_user() {
    confined_and_unconfined(As::Me);
}

#[test]
fn sandbox_settings_are_checked_and_require_is_honoured() {
    let env = Env::new(As::Unprivileged);
    // A bad flag value: exit 2, the flag named.
    let o = output_within(
        env.lanyard(&[
            "daemon",
            "--sandbox",
            "maybe",
            "--socket",
            env.socket.to_str().unwrap(),
        ]),
        T,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--sandbox"), "{}", stderr(&o));
    let o = output_within(
        env.lanyard(&["daemon", "--sandbox", "off", "--no-sandbox"]),
        T,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // A bad config value: exit 2, the field named.
    let cfg = env.dir.join("bad.toml");
    std::fs::write(&cfg, "[daemon]\nsandbox = \"maybe\"\n").unwrap();
    let o = output_within(
        env.lanyard(&["daemon", "--config", cfg.to_str().unwrap()]),
        T,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("daemon.sandbox"), "{}", stderr(&o));
    // `require` on a kernel that has every layer: the daemon serves.
    let log = env.dir.join("daemon-require.log");
    let mut c = env.lanyard(&[
        "daemon",
        "--sandbox=require",
        "--socket",
        env.socket.to_str().unwrap(),
    ]);
    let _d = Proc::spawn_logged(&mut c, &log, "daemon --sandbox=require");
    wait_until(T, "daemon with require", || env.socket.exists());
    let (line, rows) = probes(&env);
    assert!(!line.contains("NOT applied"), "{line}");
    assert!(
        rows.iter().all(|(_, w, g)| g.starts_with(w.as_str())),
        "{rows:?}"
    );
}

#[test]
fn the_embedded_switch_of_run_is_confined_too() {
    let env = Env::new(As::Unprivileged);
    // No daemon: `run` embeds the switch and confines itself (its log
    // says what it applied); its container still reaches the gateway, and
    // `--no-sandbox` beside it proves the flag reaches the switch.
    for (flag, want) in [
        ("--sandbox=on", "seccomp allow-list of"),
        ("--no-sandbox", "sandbox: off"),
    ] {
        let mut c = env.lanyard(&[
            "run",
            flag,
            "--",
            "ping",
            "-c",
            "1",
            "-W",
            "5",
            "172.17.0.1",
        ]);
        c.env("LANYARD_LOG", "debug");
        let o = output_within(c, Duration::from_secs(60));
        assert_ok(&o, &format!("run {flag} ping"));
        assert!(stderr(&o).contains(want), "{flag}: {}", stderr(&o));
    }
}
