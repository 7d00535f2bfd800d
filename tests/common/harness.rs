//! End-to-end test harness: runs the real `lanyard` binary as the user each
//! test asks for (`As::Me`: whoever runs the tests; `As::Unprivileged`: when
//! the tests run as root, `LANYARD_TEST_USER` via setpriv), every wait
//! bounded, every process it started killed by PID when the test ends, pass
//! or fail.

#![allow(dead_code)]

use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// Who the lanyard processes of a test run as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum As {
    /// Whoever runs the tests (root in CI).
    Me,
    /// An unprivileged user: `LANYARD_TEST_USER` (default `nobody`) when
    /// the tests run as root; the current user otherwise.
    Unprivileged,
}

pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

fn lookup_user(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let out = Command::new("id")
            .arg(flag)
            .arg(name)
            .output()
            .expect("run id(1)");
        assert!(
            out.status.success(),
            "no user named {name} (set LANYARD_TEST_USER)"
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("numeric id")
    };
    (id("-u"), id("-g"))
}

/// A scratch directory and the identity lanyard runs as.
pub struct Env {
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub user: Option<(u32, u32)>,
    pub socket: PathBuf,
}

impl Env {
    pub fn new(who: As) -> Env {
        let user = match who {
            As::Unprivileged if euid() == 0 => {
                let name = std::env::var("LANYARD_TEST_USER").unwrap_or_else(|_| "nobody".into());
                Some(lookup_user(&name))
            }
            _ => None,
        };
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("lanyard-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
        let built = PathBuf::from(env!("CARGO_BIN_EXE_lanyard"));
        // The unprivileged user may not be able to reach the target dir
        // (under /root, say): give it its own copy.
        let bin = if user.is_some() {
            let b = dir.join("lanyard");
            fs::copy(&built, &b).unwrap();
            fs::set_permissions(&b, fs::Permissions::from_mode(0o755)).unwrap();
            wait_until_executable(&b);
            b
        } else {
            built
        };
        let peer = dir.join("peer.py");
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/peer.py"),
            &peer,
        )
        .unwrap();
        fs::set_permissions(&peer, fs::Permissions::from_mode(0o755)).unwrap();
        let run = dir.join("run");
        fs::create_dir(&run).unwrap();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&run, Some(uid), Some(gid)).unwrap();
        }
        fs::set_permissions(&run, fs::Permissions::from_mode(0o700)).unwrap();
        Env {
            socket: run.join("lanyard.sock"),
            dir,
            bin,
            user,
        }
    }

    pub fn peer(&self) -> String {
        self.dir.join("peer.py").display().to_string()
    }

    /// A command running `program` as the env's user (through setpriv
    /// when the tests run as root for an unprivileged one).
    pub fn as_user(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        match self.user {
            Some((uid, gid)) => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={uid}"))
                    .arg(format!("--regid={gid}"))
                    .arg("--clear-groups")
                    .arg("--")
                    .arg(program);
                c
            }
            None => Command::new(program),
        }
    }

    /// A command running `lanyard ARGS` as the env's user.
    pub fn lanyard(&self, args: &[&str]) -> Command {
        let mut c = self.as_user(&self.bin);
        c.args(args);
        c.env_remove("XDG_RUNTIME_DIR");
        // The daemon's kept networks go to the test's own directory, never
        // to the user's real state directory.
        c.env("XDG_STATE_HOME", self.dir.join("run/state"));
        c.env("LANYARD_LOG", "info");
        c.stdin(Stdio::null());
        c
    }

    /// `lanyard ARGS --socket SOCK`, for commands that talk to the daemon.
    pub fn ctl(&self, args: &[&str]) -> Command {
        let mut a: Vec<&str> = args.to_vec();
        let s = self.socket.to_str().unwrap();
        a.push("--socket");
        a.push(s);
        self.lanyard(&a)
    }

    /// `lanyard run --socket SOCK RUN_ARGS -- CMD`.
    pub fn run_in(&self, run_args: &[&str], cmd: &[&str]) -> Command {
        let s = self.socket.to_str().unwrap();
        let mut a = vec!["run", "--socket", s];
        a.extend_from_slice(run_args);
        a.push("--");
        a.extend_from_slice(cmd);
        self.lanyard(&a)
    }

    /// Starts `lanyard daemon` on the env's socket and waits until it serves.
    pub fn daemon(&self) -> Proc {
        self.daemon_with(&[])
    }

    /// [`Env::daemon`] with more arguments (`--metrics ADDR`, ...).
    pub fn daemon_with(&self, extra: &[&str]) -> Proc {
        let log = self.dir.join("daemon.log");
        let mut args = vec!["daemon", "--socket", self.socket.to_str().unwrap()];
        args.extend_from_slice(extra);
        let mut c = self.lanyard(&args);
        let p = Proc::spawn_logged(&mut c, &log, "daemon");
        wait_until(Duration::from_secs(20), "daemon socket", || {
            self.ctl(&["network", "ls"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        });
        // Every end-to-end test's daemon runs confined (the default): the
        // paths they prove are proven under the sandbox.
        let said = fs::read_to_string(&log).unwrap_or_default();
        assert!(
            said.contains("sandbox: ") && said.contains("seccomp allow-list of"),
            "the daemon did not confine itself:\n{said}"
        );
        p
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Ok(log) = fs::read_to_string(self.dir.join("daemon.log")) {
                eprintln!("--- daemon.log ---\n{log}");
            }
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A process this test started; killed by PID and reaped when dropped.
pub struct Proc {
    pub child: Child,
    pub name: String,
    pub log: Option<PathBuf>,
}

impl Proc {
    /// Spawns with stdout and stderr going to `log`.
    pub fn spawn_logged(c: &mut Command, log: &Path, name: &str) -> Proc {
        let f = fs::File::create(log).unwrap();
        let f2 = f.try_clone().unwrap();
        let child = c
            .stdout(Stdio::from(f))
            .stderr(Stdio::from(f2))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name}: {e}"));
        Proc {
            child,
            name: name.into(),
            log: Some(log.to_path_buf()),
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn output(&self) -> String {
        self.log
            .as_ref()
            .and_then(|l| fs::read_to_string(l).ok())
            .unwrap_or_default()
    }

    /// Waits for the process to exit, at most `limit`.
    pub fn wait(&mut self, limit: Duration) -> ExitStatus {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not exit within {limit:?}; output:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the output contains `needle`, at most `limit`.
    pub fn wait_for_output(&mut self, needle: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.output().contains(needle) {
            if let Some(s) = self.child.try_wait().unwrap() {
                panic!(
                    "{} exited ({s}) before printing {needle:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} did not print {needle:?} within {limit:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: kill(2) on a PID we spawned and have not reaped.
        unsafe { libc::kill(self.pid(), sig) };
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.signal(libc::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Runs a command to completion within `limit`, capturing its output;
/// kills it and panics if it takes longer.
pub fn output_within(mut cmd: impl std::borrow::BorrowMut<Command>, limit: Duration) -> Output {
    let c: &mut Command = cmd.borrow_mut();
    let mut child = c
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let t_err = std::thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
            let _ = child.wait();
            let o = t_out.join().unwrap();
            let e = t_err.join().unwrap();
            panic!(
                "{c:?} did not finish within {limit:?}\nstdout:\n{}\nstderr:\n{}",
                String::from_utf8_lossy(&o),
                String::from_utf8_lossy(&e)
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}

/// Polls `f` until it is true, at most `limit`.
pub fn wait_until(limit: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !f() {
        if Instant::now() > deadline {
            panic!("timed out after {limit:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Panics with the output unless the command succeeded.
pub fn assert_ok(o: &Output, what: &str) {
    assert!(
        o.status.success(),
        "{what} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        o.status,
        stdout(o),
        stderr(o)
    );
}

/// `lanyard ... --json` parsed.
pub fn json(o: &Output) -> serde_json::Value {
    assert_ok(o, "lanyard query");
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", stdout(o)))
}

/// Waits until a freshly written binary can be executed. While the copy
/// was open for writing, another test's thread may have forked a child
/// that inherited the fd (close-on-exec closes it only at that child's
/// exec); until it execs, exec of the copy fails with "Text file busy"
/// (CI saw a daemon die of it). One exec that succeeds proves no such fd
/// is left, and no later fork can inherit it.
fn wait_until_executable(bin: &Path) {
    let busy = || {
        matches!(
            Command::new(bin)
                .arg("--version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status(),
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY)
        )
    };
    wait_until(
        Duration::from_secs(10),
        "the binary's copy to be executable",
        || !busy(),
    );
}
