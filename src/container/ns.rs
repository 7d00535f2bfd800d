//! A container's namespaces, as its child process sees them: unsharing a
//! user (when not root), network, mount and UTS namespace, or joining
//! another container's (`container:NAME`); the user mapped to root inside;
//! private mounts and a sysfs of its own; the hostname; the TAPs (`eth0`,
//! `eth1`, ... one per network); then, once the switch has chosen the
//! addresses, `lo` and the interfaces configured, resolv.conf and hosts
//! bind-mounted, and the command exec'd. Docker's modes: a network of its
//! own, `none` (only `lo`), `host` (no network namespace of its own),
//! `container:NAME` (NAME's network and UTS namespaces, and its user
//! namespace when rootless).
//!
//! Everything here runs in a single-threaded process: the child `lanyard
//! run` forks before any thread starts, or `lanyard connect`'s helper
//! process. The kernel refuses `unshare(CLONE_NEWUSER)` (and `setns` into a
//! user namespace) to a multi-threaded one. The order of the steps, and the
//! messages between that process and the switch, are in `helper`.

use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::{unshare, CloneFlags};
use nix::unistd::Pid;

use super::helper::IfConfig;
use super::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED};
use crate::port::tap;
use crate::sys::ifreq::{add_default_route, control_socket, Interface};
use crate::wire::MacAddr;

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

/// What the forked child makes: its network mode, its hostname (a
/// namespace of its own only), the command it execs.
#[derive(Debug, Clone)]
pub struct ContainerSpec {
    pub argv: Vec<String>,
    pub hostname: String,
    pub net: NetMode,
}

fn write_file(path: &str, data: &str) -> Result<(), String> {
    std::fs::write(path, data).map_err(|e| format!("writing {path}: {e}"))
}

/// Joins (setns) the namespace of kind `ns` of process `pid`, unless we are
/// in it already.
pub(super) fn join_ns(pid: u32, ns: &str, kind: CloneFlags) -> Result<(), String> {
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
pub(super) fn enter_namespaces(
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

pub(super) fn bring_up_lo() -> Result<(), String> {
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

/// Bind-mounts `src` over `dst` in the container's mount namespace (private
/// since setup, so the host never sees it). A missing `dst` is skipped: there
/// is nothing to shadow.
pub(super) fn bind_file(src: &std::path::Path, dst: &str) -> Result<(), String> {
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

/// Replaces the process with the command; returns only on failure.
pub(super) fn exec(argv: &[String]) -> i32 {
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
