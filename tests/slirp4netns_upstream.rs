//! slirp4netns's own test suite against lanyard's slirp4netns mode: the
//! unmodified scripts of slirp4netns's tag v1.2.0 (tests/slirp4netns-upstream/,
//! see its README.md), run by tests/slirp4netns-upstream/run.sh with the
//! lanyard binary reached as `slirp4netns` (a symlink first in PATH, so the
//! argv[0] mode), as the current user (root in CI) and, when that is root
//! and LANYARD_TEST_USER is set, as that unprivileged user too: slirp4netns
//! is used rootless. Every script named in expected-pass (those the real
//! slirp4netns 1.2.0 passes, as root and rootless) must pass. As root the
//! runner gives each script network, mount and PID namespaces of its own
//! whose only way out is a TUN device nobody reads: no traffic of the suite
//! leaves the machine, and nothing a script started outlives it.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::harness::euid;

/// One pass of the suite at most (the real slirp4netns passes it in about
/// 40 s; run.sh gives each script 60 s of its own).
const PASS_LIMIT: Duration = Duration::from_secs(600);

/// The passes share the machine's two cores, and the scripts wait on
/// timers: one pass at a time.
static ONE_PASS: Mutex<()> = Mutex::new(());

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/slirp4netns-upstream")
}

/// Runs `run.sh ARGS... LANYARD` within PASS_LIMIT; panics with the
/// runner's output (one line per script, a failed script's log tail)
/// unless it exits 0.
fn run_suite(args: &[&str], who: &str) {
    let _one = ONE_PASS.lock().unwrap_or_else(|e| e.into_inner());
    let log_path = std::env::temp_dir().join(format!(
        "lanyard-slirp4netns-upstream-{}-{}.log",
        std::process::id(),
        who.replace(' ', "-")
    ));
    let log = fs::File::create(&log_path).unwrap();
    let mut child = Command::new("bash")
        .arg(suite_dir().join("run.sh"))
        .args(args)
        .arg(env!("CARGO_BIN_EXE_lanyard"))
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .expect("spawn tests/slirp4netns-upstream/run.sh");
    let deadline = Instant::now() + PASS_LIMIT;
    let status: Option<ExitStatus> = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if Instant::now() > deadline {
            // SIGTERM first: the runner's trap kills what it started, by
            // PID, and removes its temp dir.
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
            let grace = Instant::now() + Duration::from_secs(15);
            while child.try_wait().unwrap().is_none() && Instant::now() < grace {
                std::thread::sleep(Duration::from_millis(100));
            }
            if child.try_wait().unwrap().is_none() {
                // SAFETY: as above; the child has not been reaped.
                unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
                let _ = child.wait();
            }
            break None;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = fs::read_to_string(&log_path).unwrap_or_default();
    let _ = fs::remove_file(&log_path);
    match status {
        Some(s) if s.success() => println!("{out}"),
        Some(s) => panic!("slirp4netns's upstream suite as {who} failed ({s}):\n{out}"),
        None => panic!(
            "slirp4netns's upstream suite as {who} did not finish within {PASS_LIMIT:?}:\n{out}"
        ),
    }
}

/// Every expected-pass script of slirp4netns 1.2.0's suite passes against
/// `lanyard slirp4netns` run by whoever runs the tests (root in CI: the
/// scripts' `unshare -r` namespaces, TAP, ready and exit fds, API socket,
/// DHCP, sandbox and seccomp options as root).
#[test]
fn upstream_suite_passes_as_the_current_user() {
    run_suite(&[], "the current user");
}

/// The same suite as LANYARD_TEST_USER, an unprivileged user with no
/// capabilities (setpriv), as slirp4netns is used by rootless containers.
/// Runs only when the tests run as root with LANYARD_TEST_USER set
/// (scripts/test.sh sets it); otherwise the first test already ran the
/// suite unprivileged.
#[test]
fn upstream_suite_passes_as_the_unprivileged_test_user() {
    let user = match std::env::var("LANYARD_TEST_USER") {
        Ok(u) if euid() == 0 && !u.is_empty() => u,
        _ => {
            eprintln!("not root with LANYARD_TEST_USER set: the rootless pass is the first test's");
            return;
        }
    };
    run_suite(&["--as-user", &user], &user);
}
