//! The slirp4netns-compatible mode (`lanyard slirp4netns ARGS`) end to end,
//! for what slirp4netns's own suite (tests/slirp4netns_upstream.rs) and the
//! podman/rootlesskit checks leave out: the ready and exit fds as podman
//! hands them over (stray fds included), the ways an engine ends the helper,
//! the client's real address on published ports, port security of the
//! helper's sole tenant against a hostile guest, DNS at .3 and its
//! `--disable-dns`, the API socket under abuse, and bad invocations.
//!
//! Each test makes its own target (`unshare -r -n sleep 60`: a network
//! namespace owned by a user namespace, as a rootless container's), runs the
//! helper against it as the current user (root in CI) and, when that is
//! root, as `LANYARD_TEST_USER` too (`As::Unprivileged`), except the
//! published-address test, which needs `ip netns` and runs as root only.
//! Every wait is bounded, every process is killed by PID when its test ends
//! (pass or fail), the namespaces go with their processes (`ip netns` ones
//! are deleted). Traffic goes only to the machine's loopback or into the
//! namespaces a test made; the helper's DNS upstream is always a fake one on
//! 127.0.0.1 (`LANYARD_DNS_UPSTREAM`), never the machine's resolver.
//!
//! Three tests failed when this file was written, each a gap in the mode
//! that its comment describes: reserved addresses of the subnet as
//! sources, DNS over TCP at 10.0.2.3, and an API client that trickles.

mod common;

use std::fs;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use common::harness::*;

/// A command inside a test: ip, ping, dig, a python peer.
const T: Duration = Duration::from_secs(20);
/// The helper's start, up to its banner or ready byte (a loaded 2-core
/// machine; it takes well under a second).
const START: Duration = Duration::from_secs(20);
/// What the helper gets as its DNS upstream when a test asks no DNS of it:
/// the discard port on the loopback, so that nothing can ever go to the
/// machine's resolver.
const NO_UPSTREAM: &str = "127.0.0.1:9";

static SEQ: AtomicU32 = AtomicU32::new(0);

fn seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

/// The users a rootless-capable test runs as: the current one, and the
/// unprivileged test user as well when the tests run as root.
fn whos() -> Vec<As> {
    if euid() == 0 {
        vec![As::Me, As::Unprivileged]
    } else {
        vec![As::Me]
    }
}

/// tests/data/NAME copied into the env's directory, readable by its user.
fn data(env: &Env, name: &str) -> String {
    let dst = env.dir.join(name);
    if !dst.exists() {
        fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data")
                .join(name),
            &dst,
        )
        .unwrap();
        fs::set_permissions(&dst, fs::Permissions::from_mode(0o644)).unwrap();
    }
    dst.display().to_string()
}

/// A port of 127.0.0.1 free for TCP and UDP both when picked.
fn free_port() -> u16 {
    loop {
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = u.local_addr().unwrap().port();
        if TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
}

/// A process's network namespace (its nsfs link), if it still exists.
fn netns_of(pid: &str) -> Option<PathBuf> {
    fs::read_link(format!("/proc/{pid}/ns/net")).ok()
}

/// The target: `unshare -r -n sleep 60` as the env's user, killed with
/// the test.
struct Target {
    p: Proc,
}

impl Target {
    fn new(env: &Env) -> Target {
        let mut c = env.as_user("unshare");
        c.args(["-r", "-n", "sleep", "60"]).stdin(Stdio::null());
        let log = env.dir.join(format!("target-{}.log", seq()));
        let p = Proc::spawn_logged(&mut c, &log, "target");
        let pid = p.pid().to_string();
        let ours = netns_of("self");
        // Exec'd into sleep: the maps are written and the namespaces exist.
        wait_until(Duration::from_secs(10), "the target's namespaces", || {
            fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim() == "sleep")
                && netns_of(&pid).is_some_and(|n| Some(n) != ours)
        });
        Target { p }
    }

    fn pid(&self) -> String {
        self.p.pid().to_string()
    }

    /// `sh -c SCRIPT` inside the target, as its root.
    fn sh(&self, env: &Env, script: &str) -> Command {
        let mut c = env.as_user("nsenter");
        c.args(["--preserve-credentials", "-U", "-n", "-t", &self.pid()])
            .args(["sh", "-c", script])
            .stdin(Stdio::null());
        c
    }

    /// Runs SCRIPT inside to completion; its stdout (stderr appended).
    fn run(&self, env: &Env, script: &str) -> String {
        let o = output_within(self.sh(env, script), T);
        assert_ok(&o, script);
        format!("{}{}", stdout(&o), stderr(&o))
    }
}

/// The environment every helper gets: lanyard's (`Env::lanyard`'s) and a
/// DNS upstream on the loopback.
fn helper_env(env: &Env, c: &mut Command, upstream: &str) {
    c.env_remove("XDG_RUNTIME_DIR")
        .env("XDG_STATE_HOME", env.dir.join("run/state"))
        .env("LANYARD_LOG", "info")
        .env("LANYARD_DNS_UPSTREAM", upstream)
        .stdin(Stdio::null());
}

/// `lanyard slirp4netns ARGS` as the env's user.
fn helper_cmd(env: &Env, args: &[&str], upstream: &str) -> Command {
    let mut c = env.as_user(&env.bin);
    c.arg("slirp4netns").args(args);
    helper_env(env, &mut c, upstream);
    c
}

/// Starts the helper and waits for its banner (printed once the TAP is
/// attached and the API serves).
fn start_helper(env: &Env, args: &[&str], upstream: &str) -> Proc {
    let log = env.dir.join(format!("helper-{}.log", seq()));
    let mut p = Proc::spawn_logged(&mut helper_cmd(env, args, upstream), &log, "helper");
    p.wait_for_output("* Recommended IP:", START);
    p
}

/// The API socket's path for a helper of this env (the user's own 0700
/// directory, as podman's and rootlesskit's are).
fn api_path(env: &Env, name: &str) -> PathBuf {
    env.dir.join("run").join(name)
}

/// The reply to what was written on `s`: everything up to EOF. A reset
/// after the reply (the helper closed with our unread request in its
/// buffer) ends it too.
fn read_reply(s: &mut UnixStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if e.kind() == ErrorKind::ConnectionReset && !got.is_empty() => break,
            Err(e) => panic!(
                "reading the API's reply: {e} (after {:?})",
                String::from_utf8_lossy(&got)
            ),
        }
    }
    String::from_utf8(got).expect("a UTF-8 reply")
}

/// One API request as podman sends it: the JSON and a newline in one
/// write, a half-close, then the reply (read to EOF, as rootlesskit does).
fn api(sock: &Path, req: &str) -> String {
    let mut s = UnixStream::connect(sock)
        .unwrap_or_else(|e| panic!("connecting to {}: {e}", sock.display()));
    s.set_read_timeout(Some(T)).unwrap();
    s.set_write_timeout(Some(T)).unwrap();
    s.write_all(format!("{req}\n").as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    read_reply(&mut s)
}

fn add_hostfwd(proto: &str, host_addr: &str, host_port: u16, guest_port: u16) -> String {
    format!(
        r#"{{"execute":"add_hostfwd","arguments":{{"proto":"{proto}","host_addr":"{host_addr}","host_port":{host_port},"guest_addr":"","guest_port":{guest_port}}}}}"#
    )
}

/// Whether something listens for TCP at `addr`: true when a connection is
/// made, or made and at once reset (a published port whose guest port has
/// no server: the helper passes the guest's refusal on as a reset); false
/// when refused (no listener).
fn tcp_listening(addr: SocketAddr) -> bool {
    match TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
        Ok(_) => true,
        Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
        Err(e) if e.kind() == ErrorKind::ConnectionRefused => false,
        Err(e) => panic!("connecting to {addr}: {e}"),
    }
}

/// Processes still running (zombies are gone: they have ended) whose
/// command line contains `token`; "PID STATE CMDLINE" each.
fn live_with(token: &str) -> Vec<String> {
    let me = std::process::id().to_string();
    let mut found = Vec::new();
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == me {
            continue;
        }
        let Ok(cmd) = fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
        if !cmd.contains(token) {
            continue;
        }
        let state = fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next().map(String::from))
            })
            .unwrap_or_default();
        if !state.is_empty() && state != "Z" {
            found.push(format!("{pid} {state} {}", cmd.trim_end()));
        }
    }
    found
}

/// A pipe, both ends close-on-exec and numbered from 300 up (clear of the
/// numbers the tests hand a child).
fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 fills the two-element array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    (high(fds[0]), high(fds[1]))
}

/// `fd` moved to a number from 300 up, close-on-exec.
fn high(fd: RawFd) -> OwnedFd {
    // SAFETY: fd is ours and open; the duplicate is owned by the result
    // and the original closed.
    unsafe {
        let n = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 300);
        assert!(
            n >= 300,
            "F_DUPFD_CLOEXEC: {}",
            std::io::Error::last_os_error()
        );
        libc::close(fd);
        OwnedFd::from_raw_fd(n)
    }
}

/// Gives the child `to` as a duplicate of each `from` (not close-on-exec),
/// as podman's and rootlesskit's children inherit their fds.
fn hand_over(c: &mut Command, fds: Vec<(RawFd, RawFd)>) {
    // SAFETY: only dup2, async-signal-safe, between fork and exec; the
    // sources (from 300 up) are never among the targets.
    unsafe {
        c.pre_exec(move || {
            for &(from, to) in &fds {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}

/// What arrives on `fd` within `limit`: until the first data when
/// `first_only`, else until EOF. Returns the bytes and whether EOF came.
fn read_fd(fd: &OwnedFd, limit: Duration, first_only: bool) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, false);
        }
        let mut p = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the call.
        let n = unsafe { libc::poll(&mut p, 1, left.as_millis().max(1) as i32) };
        if n <= 0 {
            continue;
        }
        let mut buf = [0u8; 64];
        // SAFETY: reads into our buffer from our fd.
        let k = unsafe { libc::read(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
        match k {
            0 => return (got, true),
            k if k > 0 => {
                got.extend_from_slice(&buf[..k as usize]);
                if first_only {
                    return (got, false);
                }
            }
            _ => {
                let e = std::io::Error::last_os_error();
                assert_eq!(e.kind(), ErrorKind::Interrupted, "read: {e}");
            }
        }
    }
}

/// Waits until `p` exits, at most `limit`, and says how long it took.
fn exit_within(p: &mut Proc, limit: Duration) -> (std::process::ExitStatus, Duration) {
    let t0 = Instant::now();
    let s = p.wait(limit);
    (s, t0.elapsed())
}

// ---------------------------------------------------------------------
// 1. The ready and exit fds, and how the helper is ended.
// ---------------------------------------------------------------------

/// podman's way (ENGINES.md §2): the helper runs in the container's user
/// namespace (`nsenter -U`) with podman's exact options, `-e 3` the read
/// end of a pipe whose write end the test holds, `-r 4` the write end of a
/// pipe the test reads, and stray inherited fds open as podman leaks them
/// (10 on /dev/null, 251 a pipe's write end).
///
/// Proves: the ready pipe carries exactly "1" and then EOF; right after
/// the byte the API socket already answers `list_hostfwd` (podman calls it
/// at once); by then the TAP child has exited (the helper is the only
/// process left) and `tap0` is configured inside (10.0.2.100/24, default
/// via 10.0.2.2, podman's MTU) and carries traffic; closing the exit fd's
/// write end ends the helper with status 0 within 2 s, after which no
/// process of it remains (nobody holds the leaked pipe either), its
/// published port no longer listens and the TAP is gone. Before the close
/// the same port listens: the allowed case next to the forbidden one.
#[test]
fn ready_and_exit_fds_podmans_way() {
    for who in whos() {
        podmans_way(who);
    }
}

fn podmans_way(who: As) {
    let env = Env::new(who);
    let target = Target::new(&env);
    let pid = target.pid();
    let sock = api_path(&env, "podman.net");
    let token = sock.display().to_string();
    let port = free_port();
    let published: SocketAddr = ([127, 0, 0, 1], port).into();
    let (exit_r, exit_w) = pipe();
    let (ready_r, ready_w) = pipe();
    let (stray_r, stray_w) = pipe();
    let devnull = high(fs::File::open("/dev/null").unwrap().into_raw_fd());
    let netns = format!("/proc/{pid}/ns/net");
    let mut c = env.as_user("nsenter");
    c.args(["--preserve-credentials", "-U", "-t", &pid])
        .arg(&env.bin)
        .arg("slirp4netns")
        .args([
            "--disable-host-loopback",
            "--mtu=65520",
            "--enable-sandbox",
            "--enable-seccomp",
            "--enable-ipv6",
            "-c",
            "-e",
            "3",
            "-r",
            "4",
            "--api-socket",
            &token,
            "--netns-type=path",
            &netns,
            "tap0",
        ]);
    helper_env(&env, &mut c, NO_UPSTREAM);
    hand_over(
        &mut c,
        vec![
            (exit_r.as_raw_fd(), 3),
            (ready_w.as_raw_fd(), 4),
            (devnull.as_raw_fd(), 10),
            (stray_w.as_raw_fd(), 251),
        ],
    );
    let log = env.dir.join("podman-helper.log");
    let mut helper = Proc::spawn_logged(&mut c, &log, "helper (podman's way)");
    // The child has its copies; the test keeps only its own ends.
    drop((exit_r, ready_w, stray_w, devnull));

    let (first, _) = read_fd(&ready_r, START, true);
    assert_eq!(
        first,
        b"1",
        "the ready fd's first read:\n{}",
        helper.output()
    );
    // Right after the byte: the API serves.
    assert_eq!(
        api(&sock, r#"{"execute":"list_hostfwd"}"#),
        r#"{"return":{"entries":[]}}"#
    );
    let (rest, eof) = read_fd(&ready_r, Duration::from_secs(2), false);
    assert!(
        rest.is_empty() && eof,
        "after \"1\" the ready fd must close: got {rest:?}, eof {eof}"
    );
    // The TAP child has exited by then: the helper alone remains.
    let live = live_with(&token);
    assert_eq!(
        live.len(),
        1,
        "only the helper should run once ready: {live:#?}"
    );
    assert!(
        live[0].starts_with(&format!("{} ", helper.pid())),
        "{live:#?}"
    );

    let inside = target.run(
        &env,
        "ip -o -4 addr show tap0; ip -o link show tap0; ip route; ping -c 1 -W 5 10.0.2.2",
    );
    assert!(inside.contains("inet 10.0.2.100/24"), "{inside}");
    assert!(inside.contains("mtu 65520"), "{inside}");
    assert!(inside.contains("default via 10.0.2.2 dev tap0"), "{inside}");
    assert!(inside.contains("1 received"), "{inside}");

    assert_eq!(
        api(&sock, &add_hostfwd("tcp", "127.0.0.1", port, 80)),
        r#"{"return":{"id":1}}"#
    );
    assert!(tcp_listening(published), "the published port listens");

    // podman's teardown: conmon, the last holder of the write end, exits.
    drop(exit_w);
    let (status, took) = exit_within(&mut helper, Duration::from_secs(2));
    eprintln!("{who:?}: exit fd closed -> helper exited ({status}) in {took:?}");
    assert_eq!(status.code(), Some(0), "{}", helper.output());
    assert!(
        helper.output().contains("exitfd event"),
        "{}",
        helper.output()
    );
    let live = live_with(&token);
    assert!(live.is_empty(), "left behind: {live:#?}");
    let (leak, eof) = read_fd(&stray_r, Duration::from_secs(1), false);
    assert!(
        leak.is_empty() && eof,
        "someone still holds the stray fd 251: {leak:?} eof {eof}"
    );
    assert!(!tcp_listening(published), "the published port must close");
    let tap = target.run(&env, "ip -o link show tap0 2>&1 || echo no-tap");
    assert!(tap.contains("no-tap"), "the TAP outlived the helper: {tap}");
}

/// SIGTERM (what an operator or a supervisor sends): the helper in its
/// plainest form (`-c --api-socket S PID tap0`, the upstream scripts')
/// ends with status 0 within 2 s, like the exit fd's hang-up, and leaves
/// no process, no published port and no TAP; before the signal the port
/// listened.
#[test]
fn sigterm_ends_the_helper_cleanly() {
    for who in whos() {
        let env = Env::new(who);
        let target = Target::new(&env);
        let sock = api_path(&env, "term.sock");
        let token = sock.display().to_string();
        let port = free_port();
        let published: SocketAddr = ([127, 0, 0, 1], port).into();
        let mut helper = start_helper(
            &env,
            &["-c", "--api-socket", &token, &target.pid(), "tap0"],
            NO_UPSTREAM,
        );
        assert_eq!(
            api(&sock, &add_hostfwd("tcp", "127.0.0.1", port, 80)),
            r#"{"return":{"id":1}}"#
        );
        assert!(tcp_listening(published));
        assert_eq!(live_with(&token).len(), 1, "{:#?}", live_with(&token));
        helper.signal(libc::SIGTERM);
        let (status, took) = exit_within(&mut helper, Duration::from_secs(2));
        eprintln!("{who:?}: SIGTERM -> helper exited ({status}) in {took:?}");
        assert_eq!(status.code(), Some(0), "{}", helper.output());
        let live = live_with(&token);
        assert!(live.is_empty(), "left behind: {live:#?}");
        assert!(!tcp_listening(published), "the published port must close");
        let tap = target.run(&env, "ip -o link show tap0 2>&1 || echo no-tap");
        assert!(tap.contains("no-tap"), "{tap}");
    }
}

/// rootlesskit's way (ENGINES.md §3): rootlesskit makes and configures a
/// persistent `tap0` itself, starts the helper as the user in the initial
/// user namespace with `--mtu 65520 -r 3 --api-socket S PID tap0`, and
/// ends it with SIGKILL. Proves: the helper adopts the TAP (ready "1",
/// traffic to the gateway, a published port); after SIGKILL no process of
/// it remains (the child it forked had exited long before), the published
/// port is closed, and the TAP it adopted is still rootlesskit's.
#[test]
fn sigkill_rootlesskits_way_leaves_nothing_behind() {
    for who in whos() {
        let env = Env::new(who);
        let target = Target::new(&env);
        target.run(
            &env,
            "ip link set lo up; ip tuntap add dev tap0 mode tap; ip link set tap0 mtu 65520; \
             ip addr add 10.0.2.100/24 dev tap0; ip link set tap0 up; \
             ip route add default via 10.0.2.2",
        );
        let sock = api_path(&env, "s4nn.sock");
        let token = sock.display().to_string();
        let port = free_port();
        let published: SocketAddr = ([127, 0, 0, 1], port).into();
        let (ready_r, ready_w) = pipe();
        let mut c = helper_cmd(
            &env,
            &[
                "--mtu",
                "65520",
                "-r",
                "3",
                "--api-socket",
                &token,
                &target.pid(),
                "tap0",
            ],
            NO_UPSTREAM,
        );
        hand_over(&mut c, vec![(ready_w.as_raw_fd(), 3)]);
        let log = env.dir.join("rootlesskit-helper.log");
        let mut helper = Proc::spawn_logged(&mut c, &log, "helper (rootlesskit's way)");
        drop(ready_w);
        let (all, eof) = read_fd(&ready_r, START, false);
        assert!(
            all == b"1" && eof,
            "ready fd: {all:?} eof {eof}\n{}",
            helper.output()
        );
        let inside = target.run(&env, "ping -c 1 -W 5 10.0.2.2");
        assert!(inside.contains("1 received"), "{inside}");
        assert_eq!(
            api(
                &sock,
                &format!(
                    r#"{{"execute":"add_hostfwd","arguments":{{"proto":"tcp","host_addr":"127.0.0.1","host_port":{port},"guest_addr":"10.0.2.100","guest_port":80}}}}"#
                )
            ),
            r#"{"return":{"id":1}}"#
        );
        assert!(tcp_listening(published));
        let live = live_with(&token);
        assert_eq!(live.len(), 1, "the forked child must be gone: {live:#?}");
        helper.signal(libc::SIGKILL);
        let (status, _) = exit_within(&mut helper, Duration::from_secs(2));
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL));
        let live = live_with(&token);
        assert!(live.is_empty(), "left behind after SIGKILL: {live:#?}");
        assert!(!tcp_listening(published), "the published port must close");
        let tap = target.run(&env, "ip -o link show tap0");
        assert!(tap.contains("tap0"), "rootlesskit's TAP must stay: {tap}");
    }
}

// ---------------------------------------------------------------------
// 2. Published ports keep the client's address.
// ---------------------------------------------------------------------

/// A network namespace of `ip netns add`, deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(role: &str) -> Netns {
        let name = format!("lys4n-{role}-{}-{}", std::process::id(), seq());
        let o = output_within(Command::new("ip").args(["netns", "add", &name]), T);
        assert_ok(&o, "ip netns add");
        let ns = Netns(name);
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// `ip -n NAME ARGS`, which must succeed.
    fn ip(&self, args: &[&str]) {
        let o = output_within(Command::new("ip").arg("-n").arg(&self.0).args(args), T);
        assert_ok(&o, &format!("ip -n {} {args:?}", self.0));
    }

    /// `ip netns exec NAME PROGRAM`.
    fn exec(&self, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, program])
            .stdin(Stdio::null());
        c
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.0])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// PIDs a test started without a `Proc` of their own (a target started by
/// a shell inside `ip netns exec`), killed when dropped.
struct KillOnDrop(Vec<i32>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        for &p in &self.0 {
            if p > 0 {
                // SAFETY: kill(2) on a PID this test started.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
        }
    }
}

/// Beyond slirp4netns (whose published ports show every client as the
/// gateway, 10.0.2.2): a client elsewhere keeps its own address. A "host"
/// network namespace runs the target and the helper (as root, as a rootful
/// user would); a "client" namespace is joined to it by a veth
/// (10.99.7.1/24 on the host, .2 on the client). TCP and UDP ports are
/// published on 0.0.0.0 through the API, and servers inside the target
/// answer with the peer address they saw. Proves: connections and
/// datagrams from the client show 10.99.7.2 inside (the real client); next
/// to it, a client on the host's own loopback is shown as 10.0.2.2
/// (documented: the container cannot reach the host's loopback, so that
/// address could not be answered).
#[test]
fn published_ports_keep_the_clients_address() {
    if euid() != 0 {
        eprintln!("skipped: needs root (ip netns, a veth)");
        return;
    }
    let env = Env::new(As::Me);
    let peer = data(&env, "netpeer.py");
    let host = Netns::new("host");
    let client = Netns::new("client");
    // Both ends made straight into their namespaces: no name is ever taken
    // in the test's own.
    let o = output_within(
        Command::new("ip").args([
            "link", "add", "h0", "netns", &host.0, "type", "veth", "peer", "name", "c0", "netns",
            &client.0,
        ]),
        T,
    );
    assert_ok(&o, "ip link add veth");
    host.ip(&["addr", "add", "10.99.7.1/24", "dev", "h0"]);
    host.ip(&["link", "set", "h0", "up"]);
    client.ip(&["addr", "add", "10.99.7.2/24", "dev", "c0"]);
    client.ip(&["link", "set", "c0", "up"]);

    // Inside the host namespace: the target (`unshare -n`, root's own
    // user namespace) in the background, its PID in a file, then the
    // helper in the shell's place, so that the Proc is the helper.
    let sock = api_path(&env, "host.sock");
    let tpid_file = env.dir.join("tpid");
    let script = format!(
        r#"unshare -n sleep 60 & T=$!; echo $T > {tpid}
i=0; until [ "$(readlink /proc/$T/ns/net)" != "$(readlink /proc/self/ns/net)" ]; do i=$((i+1)); [ $i -lt 200 ] || exit 1; sleep 0.02; done
exec {bin} slirp4netns -c --api-socket {sock} $T tap0"#,
        tpid = tpid_file.display(),
        bin = env.bin.display(),
        sock = sock.display(),
    );
    let mut c = host.exec("sh");
    c.args(["-c", &script]);
    helper_env(&env, &mut c, NO_UPSTREAM);
    let log = env.dir.join("host-helper.log");
    let mut helper = Proc::spawn_logged(&mut c, &log, "helper in the host namespace");
    wait_until(T, "the target's PID", || {
        fs::read_to_string(&tpid_file).is_ok_and(|s| s.ends_with('\n'))
    });
    let tpid: i32 = fs::read_to_string(&tpid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _target = KillOnDrop(vec![tpid]);
    helper.wait_for_output("* Recommended IP:", START);

    let inside = |args: &[&str]| -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-n", "-t", &tpid.to_string()])
            .args(args)
            .stdin(Stdio::null());
        c
    };
    let mut tcp_srv = Proc::spawn_logged(
        &mut inside(&["python3", &peer, "whoami", "80"]),
        &env.dir.join("whoami.log"),
        "TCP whoami in the target",
    );
    let mut udp_srv = Proc::spawn_logged(
        &mut inside(&["python3", &peer, "udp-whoami", "53"]),
        &env.dir.join("udp-whoami.log"),
        "UDP whoami in the target",
    );
    tcp_srv.wait_for_output("ready", T);
    udp_srv.wait_for_output("ready", T);
    assert_eq!(
        api(&sock, &add_hostfwd("tcp", "0.0.0.0", 8080, 80)),
        r#"{"return":{"id":1}}"#
    );
    assert_eq!(
        api(&sock, &add_hostfwd("udp", "0.0.0.0", 5353, 53)),
        r#"{"return":{"id":2}}"#
    );

    let ask = |ns: &Netns, what: &str, addr: &str, port: &str| -> String {
        let mut c = ns.exec("python3");
        c.args([&peer, what, addr, port]);
        let o = output_within(c, T);
        assert_ok(&o, &format!("{what} {addr}:{port}"));
        stdout(&o).trim().to_string()
    };
    let tcp_out = ask(&client, "ask", "10.99.7.1", "8080");
    let udp_out = ask(&client, "udp-ask", "10.99.7.1", "5353");
    let tcp_lo = ask(&host, "ask", "127.0.0.1", "8080");
    let udp_lo = ask(&host, "udp-ask", "127.0.0.1", "5353");
    eprintln!("tcp from the client: {tcp_out}\nudp from the client: {udp_out}\ntcp from the host's loopback: {tcp_lo}\nudp from the host's loopback: {udp_lo}");
    assert!(tcp_out.starts_with("peer 10.99.7.2:"), "{tcp_out}");
    assert!(udp_out.starts_with("peer 10.99.7.2:"), "{udp_out}");
    assert!(tcp_lo.starts_with("peer 10.0.2.2:"), "{tcp_lo}");
    assert!(udp_lo.starts_with("peer 10.0.2.2:"), "{udp_lo}");
}

// ---------------------------------------------------------------------
// 3. Port security of the sole tenant: a hostile guest.
// ---------------------------------------------------------------------

/// A hostile guest's rig: a UDP echo on the host's loopback that logs
/// each datagram's payload (which names the source it was sent from), a
/// target, and a helper serving it with the host's loopback reachable
/// through 10.0.2.2 (no `--disable-host-loopback`).
struct Hostile {
    env: Env,
    guest_py: String,
    port: u16,
    echo: Proc,
    target: Target,
    sock: PathBuf,
    helper: Proc,
}

impl Hostile {
    fn new(who: As) -> Hostile {
        let env = Env::new(who);
        let guest_py = data(&env, "slirp_guest.py");
        let port = free_port();
        let mut echo = Proc::spawn_logged(
            Command::new("python3")
                .args([&guest_py, "udp-log", &port.to_string(), "127.0.0.1"])
                .stdin(Stdio::null()),
            &env.dir.join("echo.log"),
            "UDP echo on the host's loopback",
        );
        echo.wait_for_output("ready", T);
        let target = Target::new(&env);
        let sock = api_path(&env, "hostile.sock");
        let helper = start_helper(
            &env,
            &[
                "-c",
                "--api-socket",
                sock.to_str().unwrap(),
                &target.pid(),
                "tap0",
            ],
            NO_UPSTREAM,
        );
        let h = Hostile {
            env,
            guest_py,
            port,
            echo,
            target,
            sock,
            helper,
        };
        // The gateway's MAC in the neighbour table, for the raw frames.
        h.target.run(&h.env, "ping -c 1 -W 5 10.0.2.2 > /dev/null");
        h
    }

    /// Sends every probe at once from raw frames on tap0 (each waits for
    /// its own answer, up to 3 tries in 1.2 s), then checks each: an
    /// allowed one (`true`) must reach the echo server and its echo come
    /// back; a forbidden one must do neither. A case is (source address,
    /// source MAC or "-" for the TAP's, destination, allowed), all to the
    /// echo's port; `prep` runs inside first.
    fn probe(&self, who: As, prep: &str, cases: &[(&str, &str, &str, bool)]) {
        let mut script = format!(
            "set -e\n{prep}\nprobe() {{ python3 {} spoof-udp tap0 10.0.2.2 {} \"$@\" & }}\n",
            self.guest_py, self.port
        );
        for (src, mac, dst, _) in cases {
            script.push_str(&format!("probe {src} {mac} {dst}\n"));
        }
        script.push_str("wait\n");
        let out = self.target.run(&self.env, &script);
        let link = self.target.run(&self.env, "ip -o link show tap0");
        let mac = link
            .split_whitespace()
            .skip_while(|w| *w != "link/ether")
            .nth(1)
            .unwrap_or_else(|| panic!("no MAC for tap0: {link}"));
        // Give a late datagram time to reach the log before it is read.
        std::thread::sleep(Duration::from_millis(300));
        let received = self.echo.output();
        let mut wrong = Vec::new();
        for &(src, smac, dst, allowed) in cases {
            let src = if src == "own" { "10.0.2.100" } else { src };
            let smac = if smac == "-" { mac } else { smac };
            let l = out
                .lines()
                .find(|l| l.starts_with(&format!("udp {src} {smac} {dst} ")))
                .unwrap_or_else(|| panic!("no probe {src} {smac} {dst}:\n{out}"));
            let v = l.rsplit(' ').next().unwrap();
            let n = received
                .lines()
                .filter(|l| *l == format!("got probe {src} {smac} {dst}"))
                .count();
            let (ok, must) = if allowed {
                (v == "reply" && n >= 1, "pass")
            } else {
                (v == "nothing" && n == 0, "be dropped")
            };
            if !ok {
                wrong.push(format!(
                    "from {src} {smac} to {dst} must {must}: {v}, the echo server got it {n} times"
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{who:?}:\n{}\nthe probes:\n{out}\nthe echo server:\n{received}",
            wrong.join("\n")
        );
    }
}

/// The guest is root in its namespaces and writes raw frames onto tap0
/// (slirp_guest.py, AF_PACKET, to the gateway's MAC) at the UDP echo on
/// the host's loopback, reached through 10.0.2.2. Proves, in one run, by
/// what the echo server received and what came back:
/// - allowed: from the guest's own 10.0.2.100, and from 10.0.2.15, another
///   address of the subnet that the guest also holds (slirp4netns's DHCP
///   address);
/// - forbidden: from 192.168.77.7 and 127.0.0.1 (outside the subnet), from
///   the gateway's own 10.0.2.2, from the guest's own address with a MAC
///   that is not the TAP's, and to 127.0.0.1 as given (the host's loopback
///   only through the gateway's address).
///
/// Then a burst of malformed frames (truncated and inconsistent IPv4, UDP,
/// TCP, ICMP, ARP and IPv6 headers, bad fragments, DNS and DHCP junk, VLAN
/// tags, garbage ethertypes, random frames, 64 KiB frames after the guest
/// raised its MTU past the network's 1500) does not bring the helper
/// down: it still runs, the gateway still answers ping, the API still
/// answers, and the guest's own datagrams still reach the echo server.
#[test]
fn a_hostile_guest_cannot_spoof_and_cannot_crash_the_helper() {
    for who in whos() {
        hostile_guest(who);
    }
}

fn hostile_guest(who: As) {
    let mut h = Hostile::new(who);
    h.probe(
        who,
        "ip addr add 10.0.2.15/24 dev tap0",
        &[
            ("own", "-", "10.0.2.2", true),
            ("10.0.2.15", "-", "10.0.2.2", true),
            ("192.168.77.7", "-", "10.0.2.2", false),
            ("127.0.0.1", "-", "10.0.2.2", false),
            ("10.0.2.2", "-", "10.0.2.2", false),
            ("own", "02:00:5e:10:00:99", "10.0.2.2", false),
            ("own", "-", "127.0.0.1", false),
        ],
    );

    let junk_port = free_port();
    let burst = format!(
        r#"set -e
ip link set tap0 mtu 65520
python3 {g} junk tap0 10.0.2.2 {junk_port}
ping -c 1 -W 5 10.0.2.2
"#,
        g = h.guest_py
    );
    let after = h.target.run(&h.env, &burst);
    let junk = line_of(&after, "junk sent");
    eprintln!("{who:?}: {junk}");
    assert!(
        junk.ends_with("failed 0 biggest 65534"),
        "every junk frame, the 64 KiB ones too, must have been sent: {junk}"
    );
    assert!(
        h.helper.child.try_wait().unwrap().is_none(),
        "the helper died:\n{}",
        h.helper.output()
    );
    assert!(
        after.contains("1 received"),
        "ping after the burst:\n{after}"
    );
    let info: serde_json::Value =
        serde_json::from_str(&api(&h.sock, r#"{"execute":"get_info"}"#)).unwrap();
    assert_eq!(info["return"]["cidr"], "10.0.2.0/24", "{info}");
    // The guest's own datagrams still pass, the forbidden ones still not.
    h.probe(
        who,
        "true",
        &[
            ("10.0.2.100", "-", "10.0.2.2", true),
            ("192.168.77.8", "-", "10.0.2.2", false),
        ],
    );
    assert!(
        !h.helper.output().contains("panicked"),
        "{}",
        h.helper.output()
    );
}

/// Sources in the subnet that no guest can hold: the network's address
/// 10.0.2.0, its broadcast 10.0.2.255, and 10.0.2.3, the gateway's second
/// (DNS) address. The NAT's own rule (`nat::policy::valid_source`, "a
/// unicast host that is not the gateway itself") already refuses the
/// gateway's 10.0.2.2 (proven above); these three fall under the same
/// words. Proves, in one run: from them the echo server receives nothing
/// and nothing comes back, next to the guest's own address, which passes.
///
/// Fails when written: all three pass port security (the sole tenant's
/// rule is "any address of the subnet") and the NAT; the echo server logs
/// each and the echo comes back to the forged address.
#[test]
fn a_guest_cannot_send_from_the_networks_reserved_addresses() {
    for who in whos() {
        let h = Hostile::new(who);
        h.probe(
            who,
            "true",
            &[
                ("own", "-", "10.0.2.2", true),
                ("10.0.2.0", "-", "10.0.2.2", false),
                ("10.0.2.255", "-", "10.0.2.2", false),
                ("10.0.2.3", "-", "10.0.2.2", false),
            ],
        );
    }
}

/// The first line of `out` starting with `prefix`.
fn line_of<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting {prefix:?} in:\n{out}"))
}

// ---------------------------------------------------------------------
// 4. DNS at 10.0.2.3, and --disable-dns.
// ---------------------------------------------------------------------

/// Two helpers, one with DNS and one with `--disable-dns`, with a fake
/// upstream on the loopback (netpeer.py `dns`: A 192.0.2.7 for every name)
/// as `LANYARD_DNS_UPSTREAM`. Proves:
/// - with DNS, `dig @10.0.2.3` gets the upstream's answer, while
///   `host.lanyard.internal` is answered by the helper itself (10.0.2.2,
///   not the upstream's 192.0.2.7); DNS over TCP at the gateway, 10.0.2.2,
///   gets the upstream's answer too (for TCP at .3, see
///   `dns_over_tcp_at_dot_3`);
/// - with `--disable-dns`, 10.0.2.3 answers nothing (dig times out within
///   its 2 s) while the gateway, 10.0.2.2:53, still answers both kinds of
///   names.
#[test]
fn dns_at_dot_3_and_disable_dns() {
    for who in whos() {
        dns(who);
    }
}

fn dns(who: As) {
    let env = Env::new(who);
    let peer = data(&env, "netpeer.py");
    let port = free_port();
    let mut upstream = Proc::spawn_logged(
        Command::new("python3")
            .args([&peer, "dns", &port.to_string(), "127.0.0.1"])
            .stdin(Stdio::null()),
        &env.dir.join("upstream.log"),
        "fake DNS upstream",
    );
    upstream.wait_for_output("ready", T);
    let upstream_addr = format!("127.0.0.1:{port}");
    let on = Target::new(&env);
    let off = Target::new(&env);
    let _h_on = start_helper(&env, &["-c", &on.pid(), "tap0"], &upstream_addr);
    let _h_off = start_helper(
        &env,
        &["-c", "--disable-dns", &off.pid(), "tap0"],
        &upstream_addr,
    );
    let q = "dig +short +time=2 +tries=1";
    let with = on.run(
        &env,
        &format!(
            "echo \"udp: $({q} @10.0.2.3 name.example.test A)\"; \
             echo \"gw tcp: $({q} +tcp @10.0.2.2 other.example.test A)\"; \
             echo \"local: $({q} @10.0.2.3 host.lanyard.internal A)\""
        ),
    );
    assert_eq!(line_of(&with, "udp:"), "udp: 192.0.2.7", "{with}");
    assert_eq!(line_of(&with, "gw tcp:"), "gw tcp: 192.0.2.7", "{with}");
    assert_eq!(line_of(&with, "local:"), "local: 10.0.2.2", "{with}");

    let t0 = Instant::now();
    let without = off.run(
        &env,
        &format!(
            "{q} @10.0.2.3 name.example.test A; echo \"dot3 rc=$?\"; \
             echo \"gw: $({q} @10.0.2.2 name.example.test A)\"; \
             echo \"gw local: $({q} @10.0.2.2 host.lanyard.internal A)\""
        ),
    );
    eprintln!(
        "{who:?}: --disable-dns run took {:?}:\n{without}",
        t0.elapsed()
    );
    // dig's status 9: no reply from the server.
    assert!(without.contains("dot3 rc=9"), "{without}");
    assert!(
        !without
            .split("dot3 rc=")
            .next()
            .unwrap()
            .contains("192.0.2.7"),
        "{without}"
    );
    assert_eq!(line_of(&without, "gw:"), "gw: 192.0.2.7", "{without}");
    assert_eq!(
        line_of(&without, "gw local:"),
        "gw local: 10.0.2.2",
        "{without}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(6),
        "the unanswered query must be bounded by dig's 2 s"
    );
}

/// DNS over TCP at 10.0.2.3. slirp4netns (libslirp's `sotranslate_out`)
/// passes TCP to the DNS address on to the host's resolver as it does UDP;
/// a resolver needs it when an answer is too large for UDP (the TC bit:
/// glibc and musl retry over TCP at the same server), and podman's
/// resolv.conf names 10.0.2.3 first. Proves, with the fake upstream:
/// `dig +tcp @10.0.2.3` gets the upstream's answer, as `dig +tcp
/// @10.0.2.2` does in the same run; with `--disable-dns`, TCP at .3 gets
/// no answer while TCP at the gateway still does.
///
/// Fails when written: `dig +tcp @10.0.2.3` gets "connection refused" (the
/// DNS-only address serves UDP port 53 only and resets TCP), while `dig
/// +tcp @10.0.2.2` in the same run gets 192.0.2.7.
#[test]
fn dns_over_tcp_at_dot_3() {
    for who in whos() {
        let env = Env::new(who);
        let peer = data(&env, "netpeer.py");
        let port = free_port();
        let mut upstream = Proc::spawn_logged(
            Command::new("python3")
                .args([&peer, "dns", &port.to_string(), "127.0.0.1"])
                .stdin(Stdio::null()),
            &env.dir.join("upstream.log"),
            "fake DNS upstream",
        );
        upstream.wait_for_output("ready", T);
        let upstream_addr = format!("127.0.0.1:{port}");
        let on = Target::new(&env);
        let off = Target::new(&env);
        let _h_on = start_helper(&env, &["-c", &on.pid(), "tap0"], &upstream_addr);
        let _h_off = start_helper(
            &env,
            &["-c", "--disable-dns", &off.pid(), "tap0"],
            &upstream_addr,
        );
        let q = "dig +short +tcp +time=2 +tries=1";
        let script = format!(
            "echo \"gw: $({q} @10.0.2.2 tcp.example.test A 2>&1 | tr '\\n' ' ')\"; \
             echo \"dot3: $({q} @10.0.2.3 tcp.example.test A 2>&1 | tr '\\n' ' ')\""
        );
        let with = on.run(&env, &script);
        let without = off.run(&env, &script);
        eprintln!("{who:?}: with DNS:\n{with}with --disable-dns:\n{without}");
        assert_eq!(line_of(&with, "gw:").trim(), "gw: 192.0.2.7", "{with}");
        assert_eq!(
            line_of(&without, "gw:").trim(),
            "gw: 192.0.2.7",
            "{without}"
        );
        assert!(
            !line_of(&without, "dot3:").contains("192.0.2.7"),
            "--disable-dns: {without}"
        );
        assert_eq!(
            line_of(&with, "dot3:").trim(),
            "dot3: 192.0.2.7",
            "DNS over TCP at 10.0.2.3 must reach the upstream, as slirp4netns's does"
        );
    }
}

// ---------------------------------------------------------------------
// 5. The API socket under abuse.
// ---------------------------------------------------------------------

/// Through one running helper (`--cidr 10.0.5.0/24 --mtu 1400`, so that
/// `get_info` must say so), in this order:
/// - a TCP and a UDP port already in use on 127.0.0.1 (bound by the test)
///   get exactly slirp4netns's `slirp_add_hostfwd failed`, and are not
///   listed;
/// - a client that connects, sends nothing and stays open does not keep
///   the next client from being answered within 3 s (the helper gives an
///   idle client 2 s);
/// - a 1 MiB request gets "bad request: too large message";
/// - after all that, `list_hostfwd` still answers (empty), a good add gets
///   id 1 (the refused ones took no id) and reaches a server inside, and
///   `remove_hostfwd` makes the port refuse connections again (listening
///   before, refused after); `get_info` gives the CIDR and the MTU.
#[test]
fn the_api_survives_busy_ports_idle_clients_and_huge_requests() {
    for who in whos() {
        api_abuse(who);
    }
}

fn api_abuse(who: As) {
    let env = Env::new(who);
    let peer = data(&env, "netpeer.py");
    let target = Target::new(&env);
    let sock = api_path(&env, "abuse.sock");
    let _helper = start_helper(
        &env,
        &[
            "-c",
            "--cidr",
            "10.0.5.0/24",
            "--mtu",
            "1400",
            "--api-socket",
            sock.to_str().unwrap(),
            &target.pid(),
            "tap0",
        ],
        NO_UPSTREAM,
    );
    // The socket publishes host ports: its owner's only (0600), while its
    // owner's requests below are served.
    let t0 = std::time::Instant::now();
    while !sock.exists() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mode = std::fs::metadata(&sock)
        .expect("API socket")
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600, "API socket mode {mode:o}");
    let failed = r#"{"error":{"desc":"bad request: add_hostfwd: slirp_add_hostfwd failed"}}"#;
    let busy_tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let tcp_port = busy_tcp.local_addr().unwrap().port();
    let udp_port = busy_udp.local_addr().unwrap().port();
    assert_eq!(
        api(&sock, &add_hostfwd("tcp", "127.0.0.1", tcp_port, 80)),
        failed
    );
    assert_eq!(
        api(&sock, &add_hostfwd("udp", "127.0.0.1", udp_port, 53)),
        failed
    );
    assert_eq!(
        api(&sock, r#"{"execute":"list_hostfwd"}"#),
        r#"{"return":{"entries":[]}}"#
    );

    // An idle client, then a real one.
    let idle = UnixStream::connect(&sock).unwrap();
    let t0 = Instant::now();
    let listed = api(&sock, r#"{"execute":"list_hostfwd"}"#);
    let waited = t0.elapsed();
    eprintln!("{who:?}: behind an idle client, answered in {waited:?}");
    assert_eq!(listed, r#"{"return":{"entries":[]}}"#);
    assert!(
        waited < Duration::from_secs(3),
        "an idle client held the API for {waited:?}"
    );
    drop(idle);

    // 1 MiB in one request: the helper reads its 4 KiB, answers and
    // closes; the writer's remaining bytes then fail, as they may.
    let mut big = UnixStream::connect(&sock).unwrap();
    big.set_read_timeout(Some(T)).unwrap();
    big.set_write_timeout(Some(T)).unwrap();
    let mut w = big.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        let mut req = br#"{"execute":"list_hostfwd","arguments":{"pad":""#.to_vec();
        req.resize(1 << 20, b'A');
        let _ = w.write_all(&req);
        let _ = w.shutdown(std::net::Shutdown::Write);
    });
    assert_eq!(
        read_reply(&mut big),
        r#"{"error":{"desc":"bad request: too large message"}}"#
    );
    writer.join().unwrap();

    assert_eq!(
        api(&sock, r#"{"execute":"list_hostfwd"}"#),
        r#"{"return":{"entries":[]}}"#
    );
    let mut srv = Proc::spawn_logged(
        &mut target.sh(&env, &format!("exec python3 {peer} whoami 80")),
        &env.dir.join("whoami.log"),
        "TCP whoami in the target",
    );
    srv.wait_for_output("ready", T);
    let port = free_port();
    let published: SocketAddr = ([127, 0, 0, 1], port).into();
    assert_eq!(
        api(&sock, &add_hostfwd("tcp", "127.0.0.1", port, 80)),
        r#"{"return":{"id":1}}"#
    );
    let listed: serde_json::Value =
        serde_json::from_str(&api(&sock, r#"{"execute":"list_hostfwd"}"#)).unwrap();
    assert_eq!(
        listed["return"]["entries"][0]["host_port"], port,
        "{listed}"
    );
    assert_eq!(
        listed["return"]["entries"][0]["guest_addr"], "10.0.5.100",
        "{listed}"
    );
    let mut c = TcpStream::connect_timeout(&published, Duration::from_secs(5)).unwrap();
    c.set_read_timeout(Some(T)).unwrap();
    let mut hello = [0u8; 64];
    let n = c.read(&mut hello).unwrap();
    let hello = String::from_utf8_lossy(&hello[..n]).into_owned();
    assert!(hello.starts_with("peer 10.0.5.2:"), "{hello}");
    drop(c);
    assert_eq!(
        api(
            &sock,
            r#"{"execute":"remove_hostfwd","arguments":{"id":1}}"#
        ),
        r#"{"return":{}}"#
    );
    assert!(!tcp_listening(published), "removed, yet still listening");
    assert_eq!(
        api(&sock, r#"{"execute":"list_hostfwd"}"#),
        r#"{"return":{"entries":[]}}"#
    );
    let info: serde_json::Value =
        serde_json::from_str(&api(&sock, r#"{"execute":"get_info"}"#)).unwrap();
    assert_eq!(info["return"]["cidr"], "10.0.5.0/24", "{info}");
    assert_eq!(info["return"]["mtu"], 1400, "{info}");
    drop((busy_tcp, busy_udp));
}

/// A client that trickles its request (a byte every 30 ms, never a whole
/// JSON value) must not hold the API longer than an idle one does: the
/// helper serves one connection at a time, so whoever holds it keeps
/// podman's and rootlesskit's requests waiting. Proves: the next client is
/// answered within 3 s while the trickler is still sending (it sends for
/// up to 10 s, until that answer), next to the idle client's case above
/// (answered after 2 s).
///
/// Fails when written: the read loop re-arms a 100 ms timeout after every
/// chunk and has no overall deadline, so the next client waits until the
/// trickler stops (about 9.8 s here; a 4096-byte trickle at 30 ms would
/// hold it about 2 minutes, and a new trickler can start right after).
#[test]
fn a_trickling_api_client_does_not_hold_the_api() {
    for who in whos() {
        let env = Env::new(who);
        let target = Target::new(&env);
        let sock = api_path(&env, "trickle.sock");
        let _helper = start_helper(
            &env,
            &[
                "-c",
                "--api-socket",
                sock.to_str().unwrap(),
                &target.pid(),
                "tap0",
            ],
            NO_UPSTREAM,
        );
        let mut tr = UnixStream::connect(&sock).unwrap();
        tr.set_write_timeout(Some(T)).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let trickler = std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut sent = 0;
            while t0.elapsed() < Duration::from_secs(10) && !stop2.load(Ordering::Relaxed) {
                if tr.write_all(b" ").is_err() {
                    break;
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
            (sent, t0.elapsed())
        });
        std::thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        let listed = api(&sock, r#"{"execute":"list_hostfwd"}"#);
        let waited = t0.elapsed();
        stop.store(true, Ordering::Relaxed);
        let (sent, for_how_long) = trickler.join().unwrap();
        eprintln!(
            "{who:?}: behind a trickler ({sent} bytes in {for_how_long:?}), answered in {waited:?}"
        );
        assert_eq!(listed, r#"{"return":{"entries":[]}}"#);
        assert!(
            waited < Duration::from_secs(3),
            "a client trickling a byte every 30 ms held the API for {waited:?} \
             ({sent} bytes sent in {for_how_long:?})"
        );
    }
}

// ---------------------------------------------------------------------
// 6. Bad invocations.
// ---------------------------------------------------------------------

/// Each bad invocation exits with status 1 and a message naming the
/// problem (slirp4netns's text where it has one), before anything exists:
/// no TAP in the target (each is given `-c`, which would make one) and no
/// API socket. Next to them, in the same run, `--help` and `--version`
/// exit 0 with what the engines look for, also through a `slirp4netns`
/// symlink (argv[0] mode), and a good invocation of the same target
/// starts (the target was usable all along).
#[test]
fn bad_invocations_fail_with_a_reason_before_anything_exists() {
    for who in whos() {
        bad_invocations(who);
    }
}

fn bad_invocations(who: As) {
    let env = Env::new(who);
    let target = Target::new(&env);
    let pid = target.pid();
    let sock = api_path(&env, "never.sock");
    let s = sock.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--target-type=bess", "-c", "--api-socket", s, &pid, "tap0"],
            "--target-type=bess is not supported",
        ),
        (
            &["-c", "-r", "77", "--api-socket", s, &pid, "tap0"],
            "ready-fd 77: Bad file descriptor",
        ),
        (
            &["-c", "-e", "78", "--api-socket", s, &pid, "tap0"],
            "exit-fd 78: Bad file descriptor",
        ),
        (
            &[
                "-c",
                "--cidr",
                "10.0.2.100/24",
                "--api-socket",
                s,
                &pid,
                "tap0",
            ],
            "CIDR needs to be a network address like 10.0.2.0/24, not like 10.0.2.100/24",
        ),
        (
            &["-c", "-m", "65522", "--api-socket", s, &pid, "tap0"],
            "MTU must be a positive integer (< 65522)",
        ),
        (
            &["-c", "--mtu", "576", "--api-socket", s, &pid, "tap0"],
            "MTU 576 is below 1280",
        ),
        (
            &["--no-such-option", "-c", "--api-socket", s, &pid, "tap0"],
            "unrecognized option '--no-such-option'",
        ),
        (
            &[
                "-c",
                "--macaddress",
                "02:zz:00:00:00:01",
                "--api-socket",
                s,
                &pid,
                "tap0",
            ],
            "macaddress has to be a valid MAC address",
        ),
    ];
    for (args, want) in cases {
        let o = output_within(helper_cmd(&env, args, NO_UPSTREAM), T);
        let err = stderr(&o);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{who:?} {args:?}: {}\nstderr:\n{err}",
            o.status
        );
        assert!(
            err.contains(want),
            "{who:?} {args:?}: stderr must say {want:?}:\n{err}"
        );
        assert!(!sock.exists(), "{args:?} made the API socket");
        let tap = target.run(&env, "ip -o link show tap0 2>&1 || echo no-tap");
        assert!(tap.contains("no-tap"), "{args:?} made a TAP: {tap}");
    }

    // argv[0] mode: the binary reached as `slirp4netns`.
    let link = env.dir.join("slirp4netns");
    if !link.exists() {
        std::os::unix::fs::symlink(&env.bin, &link).unwrap();
    }
    for prog in [None, Some(&link)] {
        let run = |arg: &str| {
            let mut c = match prog {
                Some(l) => env.as_user(l),
                None => {
                    let mut c = env.as_user(&env.bin);
                    c.arg("slirp4netns");
                    c
                }
            };
            c.arg(arg).stdin(Stdio::null());
            output_within(c, T)
        };
        let help = run("--help");
        assert_eq!(help.status.code(), Some(0), "{prog:?} --help");
        let h = stdout(&help);
        for w in ["--enable-ipv6", "--netns-type", "--api-socket"] {
            assert!(h.contains(w), "{prog:?} --help lacks {w}:\n{h}");
        }
        let version = run("--version");
        assert_eq!(version.status.code(), Some(0), "{prog:?} --version");
        let v = stdout(&version);
        assert!(v.starts_with("slirp4netns version "), "{prog:?}: {v}");
        let bad = run("--target-type=bess");
        assert_eq!(bad.status.code(), Some(1), "{prog:?} --target-type=bess");
    }

    // The same target, a good invocation: it starts.
    let mut ok = start_helper(&env, &["-c", "--api-socket", s, &pid, "tap0"], NO_UPSTREAM);
    assert!(sock.exists());
    ok.signal(libc::SIGTERM);
    assert_eq!(ok.wait(Duration::from_secs(5)).code(), Some(0));
}
