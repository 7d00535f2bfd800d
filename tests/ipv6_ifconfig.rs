//! A container interface's static IPv6 settings, applied for real:
//! `configure_interface` runs in a forked child that made a network
//! namespace of its own (inside a user namespace of its own when
//! unprivileged, as `lanyard run` does) and two TAPs in it; the test looks
//! at the result from outside with `ip` and `grep` through `nsenter`. As
//! the current user and, when that is root, as `LANYARD_TEST_USER`
//! (default `nobody`): the rootless path. Nothing is sent anywhere: the
//! TAPs' other ends are the child's fds, which it never reads.
//!
//! The child is forked from the multi-threaded test harness. That is sound
//! here because the harness's other thread only waits for this test (the
//! one test of this binary) while it forks, so no lock can be held by a
//! thread that no longer exists; glibc's malloc is reset in the child by
//! its own fork handlers. The child leaves only through `_exit`.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::Command;
use std::time::{Duration, Instant};

use common::harness::{euid, output_within};
use lanyard::container::ns::configure_interface;
use lanyard::container::{IfConfig, Ipv6Config};
use lanyard::sys::rtnl;

/// The longest any one step may take: a child's reply, a command, an exit.
const STEP: Duration = Duration::from_secs(20);

const V6_GW: &str = "2001:db8:6::1";
const V6_IP: &str = "2001:db8:6::2";

/// eth6 carries the default routes; eth7 is a second network without them.
fn good(ifname: &str) -> IfConfig {
    let (n, default_route) = match ifname {
        "eth6" => (6u8, true),
        _ => (7u8, false),
    };
    IfConfig {
        ifname: ifname.into(),
        ip: Ipv4Addr::new(10, 66, n, 2),
        prefix_len: 24,
        gateway: Ipv4Addr::new(10, 66, n, 1),
        mac: format!("02:42:0a:42:{n:02x}:02"),
        mtu: 1400,
        txqueuelen: 777,
        default_route,
        ipv6: Some(Ipv6Config {
            ip: format!("2001:db8:{n}::2").parse().unwrap(),
            prefix_len: 64,
            gateway: format!("2001:db8:{n}::1").parse().unwrap(),
        }),
    }
}

/// Settings `configure_interface` must refuse, and the field it must name.
fn bad() -> Vec<(&'static str, IfConfig, &'static str)> {
    let with = |f: &dyn Fn(&mut Ipv6Config)| {
        let mut c = good("eth6");
        f(c.ipv6.as_mut().unwrap());
        c
    };
    vec![
        ("prefix 0", with(&|v| v.prefix_len = 0), "ipv6.prefix_len"),
        (
            "prefix 200",
            with(&|v| v.prefix_len = 200),
            "ipv6.prefix_len",
        ),
        (
            "multicast address",
            with(&|v| v.ip = "ff02::1".parse().unwrap()),
            "ipv6.ip",
        ),
        (
            "loopback address",
            with(&|v| v.ip = Ipv6Addr::LOCALHOST),
            "ipv6.ip",
        ),
        (
            "unspecified address",
            with(&|v| v.ip = Ipv6Addr::UNSPECIFIED),
            "ipv6.ip",
        ),
        (
            "multicast gateway",
            with(&|v| v.gateway = "ff02::2".parse().unwrap()),
            "ipv6.gateway",
        ),
        (
            "off-link gateway",
            with(&|v| v.gateway = "2001:db8:99::1".parse().unwrap()),
            "ipv6.gateway",
        ),
        (
            "gateway is the address",
            with(&|v| v.gateway = v.ip),
            "ipv6.gateway",
        ),
    ]
}

// ---------------------------------------------------------------------------
// The child: syscalls and `configure_interface`, one line per result on
// its pipe, one byte from the parent before each phase.

fn send(fd: i32, line: &str) {
    let line = format!("{}\n", line.replace('\n', " "));
    let mut b = line.as_bytes();
    while !b.is_empty() {
        // SAFETY: write(2) from a live buffer, bounded by its length.
        let n = unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
        if n <= 0 {
            // The parent is gone.
            // SAFETY: leaving the forked child without running anything of
            // the parent's (atexit handlers, stdio).
            unsafe { libc::_exit(3) };
        }
        b = &b[n as usize..];
    }
}

/// The parent's next command byte; its death (EOF) ends the child.
fn wait_for(fd: i32, want: u8) {
    let mut c = 0u8;
    // SAFETY: read(2) of one byte into a local.
    let n = unsafe { libc::read(fd, (&mut c as *mut u8).cast(), 1) };
    if n != 1 || c != want {
        // SAFETY: as in `send`.
        unsafe { libc::_exit(4) };
    }
}

fn result(r: Result<(), String>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => format!("err {e}"),
    }
}

/// Into a network namespace of our own: as root, just that; otherwise in a
/// user namespace of our own, mapped to root in it (as `lanyard run`).
fn own_namespaces(drop_to: Option<(u32, u32)>) -> Result<(), String> {
    use nix::sched::{unshare, CloneFlags};
    use nix::unistd::{setgroups, setresgid, setresuid, Gid, Uid};
    if let Some((uid, gid)) = drop_to {
        setgroups(&[]).map_err(|e| format!("setgroups: {e}"))?;
        let (u, g) = (Uid::from_raw(uid), Gid::from_raw(gid));
        setresgid(g, g, g).map_err(|e| format!("setresgid: {e}"))?;
        setresuid(u, u, u).map_err(|e| format!("setresuid: {e}"))?;
        // Changing uid made us undumpable, which makes /proc/self root's
        // and uid_map unwritable to us; an exec would have reset it.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) };
    }
    let uid = nix::unistd::geteuid().as_raw();
    let gid = nix::unistd::getegid().as_raw();
    if uid == 0 {
        return unshare(CloneFlags::CLONE_NEWNET).map_err(|e| format!("unshare(net): {e}"));
    }
    unshare(CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET)
        .map_err(|e| format!("unshare(user, net): {e}"))?;
    for (file, text) in [
        ("/proc/self/setgroups", "deny".to_string()),
        ("/proc/self/uid_map", format!("0 {uid} 1")),
        ("/proc/self/gid_map", format!("0 {gid} 1")),
    ] {
        std::fs::write(file, text).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(())
}

fn child(to_parent: i32, from_parent: i32, drop_to: Option<(u32, u32)>) {
    if let Err(e) = own_namespaces(drop_to) {
        send(to_parent, &format!("err {e}"));
        return;
    }
    // Held until the child exits: the TAPs live (with carrier) as long.
    let mut taps = Vec::new();
    for name in ["eth6", "eth7"] {
        match lanyard::port::tap::create(name) {
            Ok(t) => taps.push(t),
            Err(e) => {
                send(to_parent, &format!("err {e}"));
                return;
            }
        }
    }
    send(to_parent, "ready");

    wait_for(from_parent, b'b');
    for (what, cfg, _) in bad() {
        send(
            to_parent,
            &format!("{what}\t{}", result(configure_interface(&cfg))),
        );
    }

    wait_for(from_parent, b'g');
    let r = configure_interface(&good("eth6")).and_then(|()| configure_interface(&good("eth7")));
    let ok = r.is_ok();
    send(to_parent, &result(r));
    if !ok {
        return;
    }
    // Usable at once: a tentative address cannot be bound (EADDRNOTAVAIL).
    let bound = std::net::UdpSocket::bind((V6_IP.parse::<Ipv6Addr>().unwrap(), 0))
        .map(drop)
        .map_err(|e| e.to_string());
    send(to_parent, &result(bound));
    // The second time, the kernel says EEXIST and the caller hears of it.
    let index = lanyard::sys::ifreq::if_index("eth6").unwrap_or(0);
    let ip: Ipv6Addr = V6_IP.parse().unwrap();
    let gw: Ipv6Addr = V6_GW.parse().unwrap();
    for r in [
        rtnl::add_address_v6(index, ip, 64),
        rtnl::add_default_route_v6(index, gw),
    ] {
        send(
            to_parent,
            &match r {
                Ok(()) => "ok".into(),
                Err(e) => format!("err {:?} {e}", e.kind()),
            },
        );
    }
    send(to_parent, &result(configure_interface(&good("eth6"))));

    wait_for(from_parent, b'q');
    drop(taps);
}

// ---------------------------------------------------------------------------
// The parent.

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills the two-int array.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: two fresh descriptors, each owned once.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}

/// The forked child, killed and reaped if the test fails.
struct Kid {
    pid: i32,
    rootless: bool,
    rx: std::fs::File,
    tx: Option<std::fs::File>,
    pending: Vec<u8>,
}

impl Kid {
    fn spawn(drop_to: Option<(u32, u32)>) -> Kid {
        let (rx, child_tx) = pipe();
        let (child_rx, tx) = pipe();
        // SAFETY: see the module comment: the child makes syscalls and
        // calls `configure_interface`, then leaves through _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid == 0 {
            drop((rx, tx));
            let (w, r) = (child_tx.as_raw_fd(), child_rx.as_raw_fd());
            let code = match std::panic::catch_unwind(|| child(w, r, drop_to)) {
                Ok(()) => 0,
                Err(_) => 101,
            };
            // SAFETY: as in `send`.
            unsafe { libc::_exit(code) };
        }
        drop((child_tx, child_rx));
        Kid {
            pid,
            rootless: drop_to.is_some() || euid() != 0,
            rx: rx.into(),
            tx: Some(tx.into()),
            pending: Vec::new(),
        }
    }

    /// The child's next line, within `STEP`.
    fn line(&mut self) -> String {
        let deadline = Instant::now() + STEP;
        loop {
            if let Some(i) = self.pending.iter().position(|&b| b == b'\n') {
                let l: Vec<u8> = self.pending.drain(..=i).collect();
                return String::from_utf8_lossy(&l[..i]).into_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "the child said nothing for {STEP:?}");
            let mut p = libc::pollfd {
                fd: self.rx.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one pollfd of ours.
            let r = unsafe { libc::poll(&mut p, 1, left.as_millis().max(1) as i32) };
            if r <= 0 {
                continue;
            }
            let mut buf = [0u8; 4096];
            let n = self.rx.read(&mut buf).expect("read the child's pipe");
            assert!(
                n > 0,
                "the child exited; it had said: {:?}",
                String::from_utf8_lossy(&self.pending)
            );
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    fn go(&mut self, c: u8) {
        self.tx.as_mut().unwrap().write_all(&[c]).unwrap();
    }

    /// `args` run in the child's network namespace.
    fn ns(&self, args: &[&str]) -> String {
        let mut c = Command::new("nsenter");
        c.arg(format!("--target={}", self.pid));
        if self.rootless {
            // Its network namespace belongs to its user namespace.
            c.args(["--user", "--preserve-credentials"]);
        }
        c.arg("--net").arg("--").args(args);
        let o = output_within(c, STEP);
        assert!(
            o.status.success(),
            "{args:?} in the child's namespace: {}\n{}",
            o.status,
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    fn sysctl(&self, ifname: &str, key: &str) -> String {
        self.ns(&["cat", &format!("/proc/sys/net/ipv6/conf/{ifname}/{key}")])
            .trim()
            .to_string()
    }

    /// What `configure_interface` could change, as `ip` and /proc show it.
    fn snapshot(&self) -> String {
        let mut s = self.ns(&["ip", "-d", "addr", "show"]);
        s += &self.ns(&["ip", "-6", "route", "show", "table", "all"]);
        s += &self.ns(&["ip", "-4", "route", "show", "table", "all"]);
        for ifname in ["eth6", "eth7"] {
            for key in ["accept_ra", "autoconf", "disable_ipv6"] {
                s += &format!("{ifname} {key} {}\n", self.sysctl(ifname, key));
            }
        }
        s
    }

    /// Tells the child to exit and checks it did so cleanly, within STEP.
    fn finish(mut self) {
        self.go(b'q');
        self.tx = None;
        let status = reap(self.pid, STEP).expect("the child did not exit");
        self.pid = 0;
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "the child's wait status: {status:#x}"
        );
    }
}

/// waitpid without hanging: `None` if `pid` has not exited within `limit`.
fn reap(pid: i32, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on our own child, WNOHANG.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if r == pid {
            return Some(status);
        }
        if r < 0 || Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Kid {
    fn drop(&mut self) {
        if self.pid > 0 {
            // SAFETY: kill(2) on our own unreaped child.
            unsafe { libc::kill(self.pid, libc::SIGKILL) };
            let _ = reap(self.pid, STEP);
        }
    }
}

fn lookup_user(name: &str) -> (u32, u32) {
    let id = |flag: &str| -> u32 {
        let o = Command::new("id")
            .args([flag, name])
            .output()
            .expect("id(1)");
        assert!(o.status.success(), "no user {name} (set LANYARD_TEST_USER)");
        String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

fn the_line<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in:\n{text}"))
}

/// One run of the whole check as `drop_to` (None: as we are).
fn check(drop_to: Option<(u32, u32)>) {
    let who = match drop_to {
        Some((uid, _)) => format!("uid {uid}"),
        None => format!("uid {} (as we are)", euid()),
    };
    let mut kid = Kid::spawn(drop_to);
    let l = kid.line();
    assert_eq!(l, "ready", "{who}: the child's setup");

    // Refused settings: the field named, nothing changed.
    let before = kid.snapshot();
    kid.go(b'b');
    for (what, _, field) in bad() {
        let l = kid.line();
        let (said, r) = l.split_once('\t').unwrap();
        assert_eq!(said, what);
        assert!(
            r.starts_with("err ") && r.contains(field) && r.contains("eth6"),
            "{who}: {what}: wanted an error naming {field} and eth6, got {r:?}"
        );
    }
    let after = kid.snapshot();
    assert_eq!(before, after, "{who}: refused settings changed something");
    assert!(before.contains("state DOWN"), "{before}");

    kid.go(b'g');
    let r = kid.line();
    if !std::path::Path::new("/proc/sys/net/ipv6").exists() {
        assert!(
            std::env::var("LANYARD_REQUIRE_IPV6").is_err(),
            "LANYARD_REQUIRE_IPV6 is set but this kernel has no IPv6"
        );
        assert!(r.contains("eth6") && r.contains("no IPv6"), "{who}: {r}");
        eprintln!("this kernel has no IPv6: only its error was checked");
        return;
    }
    assert_eq!(r, "ok", "{who}: configure_interface");
    assert_eq!(kid.line(), "ok", "{who}: binding the address at once");
    for what in ["address", "default route"] {
        let r = kid.line();
        assert!(
            r.starts_with("err AlreadyExists") && r.contains("exists"),
            "{who}: adding the {what} again: {r}"
        );
    }
    let r = kid.line();
    assert!(
        r.contains(&format!("adding {V6_IP}/64 to eth6")) && r.contains("exists"),
        "{who}: configuring eth6 again: {r}"
    );

    // The address: static, usable, not tentative.
    let addr = kid.ns(&["ip", "-6", "addr", "show", "dev", "eth6"]);
    let a = the_line(&addr, &format!("inet6 {V6_IP}/64 scope global"));
    assert!(!a.contains("tentative"), "{who}: {addr}");
    assert!(a.contains("nodad"), "{who}: {addr}");
    let addr7 = kid.ns(&["ip", "-6", "addr", "show", "dev", "eth7"]);
    the_line(&addr7, "inet6 2001:db8:7::2/64 scope global");
    // The default route, via eth6 only; the on-link prefix routes.
    let default = kid.ns(&["ip", "-6", "route", "show", "default"]);
    let d: Vec<&str> = default.lines().collect();
    assert_eq!(d.len(), 1, "{who}: {default}");
    assert!(
        d[0].starts_with(&format!("default via {V6_GW} dev eth6 ")) && !d[0].contains("linkdown"),
        "{who}: {default}"
    );
    let routes = kid.ns(&["ip", "-6", "route", "show"]);
    the_line(&routes, "2001:db8:6::/64 dev eth6 proto kernel");
    the_line(&routes, "2001:db8:7::/64 dev eth7 proto kernel");
    // The sysctls.
    for ifname in ["eth6", "eth7"] {
        for (key, want) in [("accept_ra", "0"), ("autoconf", "0"), ("disable_ipv6", "0")] {
            assert_eq!(kid.sysctl(ifname, key), want, "{who}: {ifname} {key}");
        }
    }
    // And IPv4 as before.
    let v4 = kid.ns(&["ip", "-4", "addr", "show", "dev", "eth6"]);
    the_line(&v4, "inet 10.66.6.2/24");
    let default4 = kid.ns(&["ip", "-4", "route", "show", "default"]);
    the_line(&default4, "default via 10.66.6.1 dev eth6");
    let link = kid.ns(&["ip", "link", "show", "dev", "eth6"]);
    the_line(&link, "mtu 1400");
    the_line(&link, "qlen 777");
    the_line(&link, "link/ether 02:42:0a:42:06:02");
    kid.finish();
}

#[test]
fn static_ipv6_settings_apply_in_a_namespace_of_its_own() {
    check(None);
    if euid() == 0 {
        let name = std::env::var("LANYARD_TEST_USER").unwrap_or_else(|_| "nobody".into());
        check(Some(lookup_user(&name)));
    }
}
