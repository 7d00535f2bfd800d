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

/// Python that stacks Landlock's maximum of 16 layers (each allowing
/// every read, so nothing changes but the count), then execs its
/// arguments: there, the daemon's own Landlock layer cannot be added
/// (E2BIG), a kernel that "cannot apply" the sandbox.
const FULL_LANDLOCK: &str = r#"
import ctypes, os, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
READ_FILE = 1 << 2
assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
for _ in range(16):
    attr = struct.pack("Q", READ_FILE)
    fd = libc.syscall(444, attr, len(attr), 0)
    assert fd >= 0, os.strerror(ctypes.get_errno())
    root = os.open("/", os.O_PATH)
    rule = struct.pack("=Qi", READ_FILE, root)
    assert libc.syscall(445, fd, 1, rule, 0) == 0, os.strerror(ctypes.get_errno())
    assert libc.syscall(446, fd, 0) == 0, os.strerror(ctypes.get_errno())
    os.close(fd); os.close(root)
os.execv(sys.argv[1], sys.argv[1:])
"#;

#[test]
fn a_sandbox_the_kernel_cannot_apply_is_a_warning_or_with_require_an_error() {
    let env = Env::new(As::Unprivileged);
    let script = env.dir.join("full_landlock.py");
    std::fs::write(&script, FULL_LANDLOCK).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    let bin = env.bin.to_str().unwrap().to_string();
    // Debian's python3, which the unprivileged user can run (a python of
    // the developer's own may live under their home).
    let python = if std::path::Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    };
    // As `env.lanyard` runs lanyard (same user, same environment), with
    // the python stacker in front.
    let under_full_landlock = |args: &[&str]| {
        let mut c = env.as_user(python);
        c.arg(&script).arg(&bin).args(args);
        for (k, v) in env.lanyard(&[]).get_envs() {
            match v {
                Some(v) => c.env(k, v),
                None => c.env_remove(k),
            };
        }
        c.stdin(std::process::Stdio::null());
        c
    };
    let sock = env.socket.to_str().unwrap().to_string();
    // require: refused, exit 1, naming the layer.
    let o = output_within(
        under_full_landlock(&["daemon", "--sandbox=require", "--socket", &sock]),
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("sandbox required but not applied: landlock"),
        "{}",
        stderr(&o)
    );
    assert!(!env.socket.exists(), "a refused daemon leaves no socket");
    // The default: a warning, and the daemon serves with the rest applied.
    let log = env.dir.join("daemon-partial.log");
    let mut c = under_full_landlock(&["daemon", "--socket", &sock]);
    let _d = Proc::spawn_logged(&mut c, &log, "daemon under full landlock");
    wait_until(T, "daemon under a full landlock stack", || {
        env.socket.exists()
    });
    let (line, rows) = probes(&env);
    assert!(line.contains("NOT applied: landlock"), "{line}");
    assert!(line.contains("seccomp allow-list of"), "{line}");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("WARN  lanyard::daemon: sandbox: "), "{said}");
    // Seccomp still refuses what it refuses.
    let outcome = |p: &str| rows.iter().find(|r| r.0.contains(p)).unwrap().2.clone();
    assert_eq!(outcome("execveat"), "refused (EPERM)");
}
