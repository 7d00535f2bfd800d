//! Containers' namespaces: `lanyard run` forks a child that unshares a user
//! (when not root), network, mount and UTS namespace, creates its TAPs
//! (`eth0`, `eth1`, ... one per network) there, passes the fds back to the
//! parent (SCM_RIGHTS over a socketpair), waits for its addresses,
//! configures `lo` and the interfaces, and execs the command. The parent
//! hands the TAPs to the switch and then supervises the child: signals
//! forwarded, exit code returned. Docker's other modes: `none` (only `lo`),
//! `host` (no network namespace of its own), `container:NAME` (join NAME's
//! network and UTS namespaces, and its user namespace when rootless).
//!
//! Why a forked child: the kernel refuses `unshare(CLONE_NEWUSER)` (and
//! `setns` into a user namespace) to a multi-threaded process, and the
//! switch runs threads. The fork happens before any thread starts.

pub mod supervise;

use std::io::{BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sched::{unshare, CloneFlags};
use nix::unistd::{fork, ForkResult, Pid};
use serde::{Deserialize, Serialize};

use crate::port::tap;
use crate::sys::fdpass::{recv_with_fds, send_with_fds};
use crate::sys::ifreq::{add_default_route, control_socket, Interface};
use crate::wire::MacAddr;

pub use supervise::{block_forwarded_signals, supervise};

/// Exit code when lanyard itself fails to set up the container (docker's).
pub const EXIT_SETUP_FAILED: i32 = 125;
/// Exit code when the command cannot be executed (shell convention).
pub const EXIT_NOT_EXECUTABLE: i32 = 126;
/// Exit code when the command is not found (shell convention).
pub const EXIT_NOT_FOUND: i32 = 127;

/// How long the parent waits for each step of the child's setup.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);

/// How the container is networked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetMode {
    /// A network namespace of its own with one TAP per name.
    Isolated { ifnames: Vec<String> },
    /// A network namespace with only `lo`.
    None,
    /// The host's (the caller's) network namespace.
    Host,
    /// The network (and UTS) namespace of the process with this PID.
    Join { pid: u32 },
}

#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub argv: Vec<String>,
    pub hostname: String,
    pub net: NetMode,
}

/// The settings of one interface.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IfConfig {
    pub ifname: String,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mac: MacAddrString,
    pub mtu: u32,
    pub txqueuelen: u32,
    /// The default route goes via this interface's gateway.
    pub default_route: bool,
}

/// Everything the child applies before exec.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
pub struct Setup {
    pub interfaces: Vec<IfConfig>,
    /// Files bind-mounted over the container's /etc/resolv.conf and
    /// /etc/hosts (in its own mount namespace).
    #[serde(default)]
    pub resolv_conf: Option<std::path::PathBuf>,
    #[serde(default)]
    pub hosts: Option<std::path::PathBuf>,
}

/// A MAC address carried as text in the setup protocol.
pub type MacAddrString = String;

/// A forked container, stopped before exec until it is configured.
pub struct Container {
    pub pid: Pid,
    sock: BufReader<UnixStream>,
    taps: Vec<OwnedFd>,
}

impl Container {
    /// The TAPs the child created, in the order of its interface names;
    /// taken once, to hand to the switch.
    pub fn take_taps(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.taps)
    }

    /// Sends the settings, waits until the child has applied them; the
    /// child then execs the command.
    pub fn configure(&mut self, cfg: &Setup) -> Result<(), String> {
        let mut line = serde_json::to_vec(cfg).map_err(|e| e.to_string())?;
        line.push(b'\n');
        self.sock
            .get_mut()
            .write_all(&line)
            .map_err(|e| format!("container setup: {e}"))?;
        let mut resp = String::new();
        match self.sock.read_line(&mut resp) {
            Ok(0) => Err("the container exited during setup".into()),
            Ok(_) if resp.trim_end() == "ok" => Ok(()),
            Ok(_) => Err(resp.trim_end().trim_start_matches("error: ").to_string()),
            Err(e) => Err(format!("container setup: {e}")),
        }
    }

    /// Tells the child to give up (the switch refused it) and reaps it.
    pub fn abort(mut self) {
        let _ = self.sock.get_mut().write_all(b"abort\n");
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Forks the container child and returns once its TAP exists.
///
/// # Safety
/// The process must be single-threaded: the child allocates and takes locks
/// between fork and exec, which is only sound when no other thread could
/// have held them at the fork.
pub unsafe fn spawn(spec: &ContainerSpec) -> Result<Container, String> {
    let (parent_sock, child_sock) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    let uid = nix::unistd::geteuid();
    let gid = nix::unistd::getegid();
    let parent_pid = nix::unistd::getpid();
    // SAFETY: the caller guarantees no other thread exists, so the child
    // may allocate and take locks freely; it leaves through exec or _exit.
    match unsafe { fork() }.map_err(|e| format!("fork: {e}"))? {
        ForkResult::Child => {
            drop(parent_sock);
            let code = child_main(spec, child_sock, uid.as_raw(), gid.as_raw(), parent_pid);
            // SAFETY: _exit skips atexit handlers and stdio flushing that
            // belong to the parent's state.
            unsafe { libc::_exit(code) }
        }
        ForkResult::Parent { child } => {
            drop(child_sock);
            let _ = parent_sock.set_read_timeout(Some(SETUP_TIMEOUT));
            let mut buf = [0u8; 4096];
            let reap = || {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
            };
            let (n, mut fds) = match recv_with_fds(parent_sock.as_raw_fd(), &mut buf) {
                Ok(r) => r,
                Err(e) => {
                    reap();
                    return Err(format!("waiting for the container's TAP: {e}"));
                }
            };
            let msg = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
            let want = match &spec.net {
                NetMode::Isolated { ifnames } => ifnames.len(),
                _ => 0,
            };
            if msg != "taps" || fds.len() != want {
                reap();
                return Err(if msg.is_empty() {
                    "the container setup process died".to_string()
                } else {
                    msg.trim_start_matches("error: ").to_string()
                });
            }
            Ok(Container {
                pid: child,
                sock: BufReader::new(parent_sock),
                taps: std::mem::take(&mut fds),
            })
        }
    }
}

fn child_main(spec: &ContainerSpec, sock: UnixStream, uid: u32, gid: u32, parent: Pid) -> i32 {
    let mut sock = BufReader::new(sock);
    let report = |sock: &mut BufReader<UnixStream>, e: &str| {
        let _ = sock.get_mut().write_all(format!("error: {e}\n").as_bytes());
    };
    let taps = match enter_namespaces(spec, uid, gid, parent) {
        Ok(t) => t,
        Err(e) => {
            report(&mut sock, &e);
            return EXIT_SETUP_FAILED;
        }
    };
    let raw: Vec<std::os::fd::RawFd> = taps.iter().map(|t| t.as_raw_fd()).collect();
    if let Err(e) = send_with_fds(sock.get_ref().as_raw_fd(), b"taps\n", &raw) {
        eprintln!("lanyard: passing the TAPs to the switch: {e}");
        return EXIT_SETUP_FAILED;
    }
    // The switch holds the devices from now on; keeping our copies would
    // keep them alive after the switch lets go.
    drop(taps);
    let mut line = String::new();
    match sock.read_line(&mut line) {
        Ok(n) if n > 0 => {}
        _ => return EXIT_SETUP_FAILED,
    }
    if line.trim_end() == "abort" {
        return EXIT_SETUP_FAILED;
    }
    let cfg: Setup = match serde_json::from_str(&line) {
        Ok(c) => c,
        Err(e) => {
            report(&mut sock, &format!("bad interface config: {e}"));
            return EXIT_SETUP_FAILED;
        }
    };
    let own_netns = matches!(spec.net, NetMode::Isolated { .. } | NetMode::None);
    if own_netns {
        if let Err(e) = bring_up_lo() {
            report(&mut sock, &e);
            return EXIT_SETUP_FAILED;
        }
    }
    for i in &cfg.interfaces {
        if let Err(e) = configure_interface(i) {
            report(&mut sock, &e);
            return EXIT_SETUP_FAILED;
        }
    }
    for (src, dst) in [
        (&cfg.resolv_conf, "/etc/resolv.conf"),
        (&cfg.hosts, "/etc/hosts"),
    ] {
        if let Some(src) = src {
            if let Err(e) = bind_file(src, dst) {
                report(&mut sock, &e);
                return EXIT_SETUP_FAILED;
            }
        }
    }
    if sock.get_mut().write_all(b"ok\n").is_err() {
        return EXIT_SETUP_FAILED;
    }
    drop(sock);
    exec(&spec.argv)
}

fn write_file(path: &str, data: &str) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("writing {path}: {e}"))
}

/// Joins (setns) the namespace of kind `ns` of process `pid`, unless we are
/// in it already.
fn join_ns(pid: u32, ns: &str, kind: CloneFlags) -> Result<(), String> {
    let theirs = format!("/proc/{pid}/ns/{ns}");
    let ours = format!("/proc/self/ns/{ns}");
    if std::fs::read_link(&theirs).ok() == std::fs::read_link(&ours).ok() {
        return Ok(());
    }
    let f = std::fs::File::open(&theirs).map_err(|e| format!("{theirs}: {e}"))?;
    nix::sched::setns(f, kind).map_err(|e| format!("joining {theirs}: {e}"))
}

/// Enters the namespaces of the container's network mode and creates its
/// TAPs inside them.
fn enter_namespaces(
    spec: &ContainerSpec,
    uid: u32,
    gid: u32,
    parent: Pid,
) -> Result<Vec<OwnedFd>, String> {
    let rootless = uid != 0;
    if let NetMode::Join { pid } = spec.net {
        // The other container's user namespace first (its network
        // namespace belongs to it), then its network and UTS namespaces.
        if rootless {
            join_ns(pid, "user", CloneFlags::CLONE_NEWUSER)?;
        }
        join_ns(pid, "net", CloneFlags::CLONE_NEWNET)?;
        join_ns(pid, "uts", CloneFlags::CLONE_NEWUTS)?;
        unshare(CloneFlags::CLONE_NEWNS).map_err(|e| format!("unshare(mount namespace): {e}"))?;
    } else {
        let mut flags = CloneFlags::CLONE_NEWNS;
        if spec.net != NetMode::Host {
            flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
        }
        if rootless {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        unshare(flags).map_err(|e| {
            if rootless {
                format!("unshare(user, net, mount, uts namespaces): {e} (are unprivileged user namespaces enabled? see /proc/sys/user/max_user_namespaces)")
            } else {
                format!("unshare(net, mount, uts namespaces): {e}")
            }
        })?;
        if rootless {
            // Map ourselves to root inside: the container's root is the user.
            write_file("/proc/self/setgroups", "deny")?;
            write_file("/proc/self/uid_map", &format!("0 {uid} 1"))?;
            write_file("/proc/self/gid_map", &format!("0 {gid} 1"))?;
        }
    }
    // Die with the supervising parent. Set after unshare: gaining
    // capabilities in a new user namespace clears the parent-death signal.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    if nix::unistd::getppid() != parent {
        return Err("the parent exited during setup".into());
    }
    // Our mounts (resolv.conf, hosts) must not leak back to the host.
    nix::mount::mount(
        None::<&str>,
        "/",
        None::<&str>,
        nix::mount::MsFlags::MS_REC | nix::mount::MsFlags::MS_PRIVATE,
        None::<&str>,
    )
    .map_err(|e| format!("making the mount namespace private: {e}"))?;
    if spec.net != NetMode::Host {
        mount_own_sysfs();
    }
    match &spec.net {
        NetMode::Isolated { ifnames } => {
            nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
            ifnames
                .iter()
                .map(|n| tap::create(n).map_err(|e| e.to_string()))
                .collect()
        }
        NetMode::None => {
            nix::unistd::sethostname(&spec.hostname).map_err(|e| format!("sethostname: {e}"))?;
            Ok(Vec::new())
        }
        NetMode::Host | NetMode::Join { .. } => Ok(Vec::new()),
    }
}

/// Mounts a sysfs of the container's own network namespace over /sys, as
/// docker does: the inherited one shows the host's interfaces under
/// /sys/class/net (tools that read a MAC or an MTU there would see the
/// host's). The host's cgroup tree is bound back under /sys/fs/cgroup, as
/// docker mounts one there too. Where the kernel refuses (a sandbox that
/// masks parts of /sys), the host's stays, with a warning.
fn mount_own_sysfs() {
    use nix::mount::{mount, MsFlags};
    // The old cgroup mount stays reachable through this descriptor once the
    // new sysfs covers it.
    let cgroup = std::fs::File::open("/sys/fs/cgroup").ok();
    if let Err(e) = mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        eprintln!("lanyard: warning: /sys stays the host's (mounting the container's sysfs: {e})");
        return;
    }
    if let Some(c) = cgroup {
        let old = format!("/proc/self/fd/{}", c.as_raw_fd());
        let _ = mount(
            Some(old.as_str()),
            "/sys/fs/cgroup",
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        );
    }
}

fn bring_up_lo() -> Result<(), String> {
    let sock = control_socket().map_err(|e| format!("interface config socket: {e}"))?;
    Interface::new(&sock, "lo")
        .set_up()
        .map_err(|e| e.to_string())
}

/// Configures one interface (in the calling process's namespace).
pub fn configure_interface(cfg: &IfConfig) -> Result<(), String> {
    let mac: MacAddr = cfg.mac.parse()?;
    if cfg.prefix_len > 32 || !(crate::config::MIN_MTU..=crate::config::MAX_MTU).contains(&cfg.mtu)
    {
        return Err(format!(
            "refusing interface settings: prefix /{} mtu {}",
            cfg.prefix_len, cfg.mtu
        ));
    }
    let sock = control_socket().map_err(|e| format!("interface config socket: {e}"))?;
    let eth = Interface::new(&sock, &cfg.ifname);
    eth.set_mac(mac).map_err(|e| e.to_string())?;
    eth.set_mtu(cfg.mtu).map_err(|e| e.to_string())?;
    eth.set_txqueuelen(cfg.txqueuelen)
        .map_err(|e| e.to_string())?;
    eth.set_ipv4(cfg.ip, cfg.prefix_len)
        .map_err(|e| e.to_string())?;
    eth.set_up().map_err(|e| e.to_string())?;
    if cfg.default_route {
        add_default_route(&sock, cfg.gateway).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// `lanyard connect`'s helper, run as a process of its own (single-threaded,
/// so it may join a user namespace): joins the namespaces of container
/// process `pid`, creates TAP `ifname` there, passes its fd over `sock`,
/// then applies the interface settings it is sent back.
pub fn container_tap_helper(pid: u32, ifname: &str, sock: UnixStream) -> i32 {
    let mut sock = BufReader::new(sock);
    let report = |sock: &mut BufReader<UnixStream>, e: &str| {
        let _ = sock.get_mut().write_all(format!("error: {e}\n").as_bytes());
    };
    let rootless = nix::unistd::geteuid().as_raw() != 0;
    let joined = (|| {
        if rootless {
            join_ns(pid, "user", CloneFlags::CLONE_NEWUSER)?;
        }
        join_ns(pid, "net", CloneFlags::CLONE_NEWNET)?;
        tap::create(ifname).map_err(|e| e.to_string())
    })();
    let tap = match joined {
        Ok(t) => t,
        Err(e) => {
            report(&mut sock, &e);
            return EXIT_SETUP_FAILED;
        }
    };
    if send_with_fds(sock.get_ref().as_raw_fd(), b"taps\n", &[tap.as_raw_fd()]).is_err() {
        return EXIT_SETUP_FAILED;
    }
    drop(tap);
    let mut line = String::new();
    if sock.read_line(&mut line).unwrap_or(0) == 0 || line.trim_end() == "abort" {
        return EXIT_SETUP_FAILED;
    }
    let cfg: IfConfig = match serde_json::from_str(&line) {
        Ok(c) => c,
        Err(e) => {
            report(&mut sock, &format!("bad interface config: {e}"));
            return EXIT_SETUP_FAILED;
        }
    };
    match configure_interface(&cfg) {
        Ok(()) => {
            let _ = sock.get_mut().write_all(b"ok\n");
            0
        }
        Err(e) => {
            report(&mut sock, &e);
            EXIT_SETUP_FAILED
        }
    }
}

/// Bind-mounts `src` over `dst` in the container's mount namespace (private
/// since setup, so the host never sees it). A missing `dst` is skipped: there
/// is nothing to shadow.
fn bind_file(src: &std::path::Path, dst: &str) -> Result<(), String> {
    if std::fs::symlink_metadata(dst).is_err() {
        return Ok(());
    }
    nix::mount::mount(
        Some(src),
        dst,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| format!("bind-mounting {} over {dst}: {e}", src.display()))
}

/// The contents of a container's resolv.conf: the gateway as nameserver,
/// with the host's search domains and options, as docker writes it.
pub fn resolv_conf(nameserver: Ipv4Addr, host: &str) -> String {
    let mut out = format!("# Generated by lanyard.\nnameserver {nameserver}\n");
    for line in host.lines() {
        let l = line.trim_start();
        if l.starts_with("search ") || l.starts_with("domain ") || l.starts_with("options ") {
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// The contents of a container's /etc/hosts.
pub fn hosts_file(ip: Ipv4Addr, hostname: &str, name: &str) -> String {
    let mut out = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    out.push_str(&format!("{ip}\t{hostname}"));
    if name != hostname {
        out.push_str(&format!(" {name}"));
    }
    out.push('\n');
    out
}

/// Replaces the process with the command; returns only on failure.
fn exec(argv: &[String]) -> i32 {
    // Rust ignores SIGPIPE in its own processes; the command must start
    // with the default disposition, as it would from a shell.
    // SAFETY: resetting a disposition to SIG_DFL has no handler to race.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cargs: Result<Vec<std::ffi::CString>, _> = argv
        .iter()
        .map(|a| std::ffi::CString::new(a.as_bytes()))
        .collect();
    let Ok(cargs) = cargs else {
        eprintln!("lanyard: a command argument contains a NUL byte");
        return EXIT_SETUP_FAILED;
    };
    let Some(prog) = cargs.first() else {
        eprintln!("lanyard: no command given");
        return EXIT_SETUP_FAILED;
    };
    let e = nix::unistd::execvp(prog, &cargs).unwrap_err();
    match e {
        nix::errno::Errno::ENOENT => {
            eprintln!("lanyard: {}: executable file not found in $PATH", argv[0]);
            EXIT_NOT_FOUND
        }
        _ => {
            eprintln!("lanyard: {}: cannot execute: {e}", argv[0]);
            EXIT_NOT_EXECUTABLE
        }
    }
}

/// Result of waiting on a child, as a shell exit code.
pub fn exit_code(status: nix::sys::wait::WaitStatus) -> Option<i32> {
    use nix::sys::wait::WaitStatus;
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}
