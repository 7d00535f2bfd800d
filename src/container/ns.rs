//! A container's namespaces, as its child process sees them: unsharing a
//! user (when not root), network, mount, UTS and PID namespace, or joining
//! another container's (`container:NAME`); the user mapped to root inside;
//! private mounts and a sysfs of its own; the hostname; the TAPs (`eth0`,
//! `eth1`, ... one per network); then, once the switch has chosen the
//! addresses, `lo` and the interfaces configured, resolv.conf and hosts
//! bind-mounted, and the command exec'd (by the PID namespace's init,
//! `supervise::run_in_pid_namespace`). Docker's modes: a network of its
//! own, `none` (only `lo`), `host` (no network namespace of its own),
//! `container:NAME` (NAME's network and UTS namespaces, and its user
//! namespace when rootless). Every mode has a PID namespace of its own.
//!
//! Everything here runs in a single-threaded process: the child `lanyard
//! run` forks before any thread starts, or `lanyard connect`'s helper
//! process. The kernel refuses `unshare(CLONE_NEWUSER)` (and `setns` into a
//! user namespace) to a multi-threaded one. The order of the steps, and the
//! messages between that process and the switch, are in `helper`.

use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, OwnedFd};

use nix::sched::{unshare, CloneFlags};
use nix::unistd::Pid;

use super::helper::{IfConfig, Ipv6Config};
use super::{EXIT_NOT_EXECUTABLE, EXIT_NOT_FOUND, EXIT_SETUP_FAILED};
use crate::port::tap;
use crate::sys::ifreq::{add_default_route, control_socket, if_index, Interface};
use crate::sys::rtnl;
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
    join_path(&format!("/proc/{pid}/ns/{ns}"), ns, kind)
}

/// Joins the namespace of kind `ns` (`net`, `user`, ...) that the file at
/// `path` names (a `/proc/PID/ns/` entry or a bind-mounted nsfs file),
/// unless we are in it already (joining one's own user namespace fails).
pub fn join_path(path: &str, ns: &str, kind: CloneFlags) -> Result<(), String> {
    let ours = std::fs::read_link(format!("/proc/self/ns/{ns}")).ok();
    if ours.is_some() && std::fs::read_link(path).ok() == ours {
        return Ok(());
    }
    let f = std::fs::File::open(path).map_err(|e| format!("{path}: {e}"))?;
    nix::sched::setns(f, kind).map_err(|e| format!("joining {path}: {e}"))
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
        // A PID namespace of its own, as for every container (docker's
        // container:NAME shares the network only).
        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID)
            .map_err(|e| format!("unshare(mount, pid namespaces): {e}"))?;
    } else {
        // CLONE_NEWPID makes the namespace of our children, not ours: the
        // init `supervise::run_in_pid_namespace` forks is its PID 1.
        let mut flags = CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID;
        if spec.net != NetMode::Host {
            flags |= CloneFlags::CLONE_NEWNET | CloneFlags::CLONE_NEWUTS;
        }
        if rootless {
            flags |= CloneFlags::CLONE_NEWUSER;
        }
        unshare(flags).map_err(|e| {
            if rootless {
                format!("unshare(user, net, mount, uts, pid namespaces): {e} (are unprivileged user namespaces enabled? see /proc/sys/user/max_user_namespaces)")
            } else {
                format!("unshare(net, mount, uts, pid namespaces): {e}")
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

/// Configures one interface (in the calling process's namespace): MAC,
/// MTU, queue length, IPv4 address; with `ipv6`, docker's static IPv6 setup
/// (below); up; then the default routes when `default_route`.
///
/// Everything is checked before anything is changed, so refused settings
/// leave the interface as it was. A failure after that (the kernel refusing
/// a step) leaves it half configured: the caller then fails the container's
/// setup, and the namespace goes with it.
pub fn configure_interface(cfg: &IfConfig) -> Result<(), String> {
    let mac: MacAddr = cfg.mac.parse()?;
    // MIN_MTU is IPv6's minimum, 1280, and must stay at least that: under
    // it the kernel drops the interface's IPv6 altogether (addresses,
    // routes and its /proc/sys/net/ipv6/conf directory), and a later MTU
    // of 1280 or more brings IPv6 back with default sysctls and no address.
    if cfg.prefix_len > 32 || !(crate::config::MIN_MTU..=crate::config::MAX_MTU).contains(&cfg.mtu)
    {
        return Err(format!(
            "refusing interface settings: prefix /{} mtu {}",
            cfg.prefix_len, cfg.mtu
        ));
    }
    if let Some(v6) = &cfg.ipv6 {
        check_ipv6(&cfg.ifname, v6)?;
        if !std::path::Path::new(IPV6_SYSCTLS).is_dir() {
            return Err(format!(
                "cannot give {} its IPv6 address: the kernel has no IPv6 (no {IPV6_SYSCTLS}; booted with ipv6.disable=1?)",
                cfg.ifname
            ));
        }
    }
    let sock = control_socket().map_err(|e| format!("interface config socket: {e}"))?;
    let eth = Interface::new(&sock, &cfg.ifname);
    eth.set_mac(mac).map_err(|e| e.to_string())?;
    eth.set_mtu(cfg.mtu).map_err(|e| e.to_string())?;
    eth.set_txqueuelen(cfg.txqueuelen)
        .map_err(|e| e.to_string())?;
    eth.set_ipv4(cfg.ip, cfg.prefix_len)
        .map_err(|e| e.to_string())?;
    let v6_index = match &cfg.ipv6 {
        Some(v6) => Some(add_static_ipv6(&cfg.ifname, v6)?),
        None => None,
    };
    eth.set_up().map_err(|e| e.to_string())?;
    if cfg.default_route {
        add_default_route(&sock, cfg.gateway).map_err(|e| e.to_string())?;
        if let (Some(v6), Some(index)) = (&cfg.ipv6, v6_index) {
            // Only now: the kernel adds the address's prefix route when
            // the interface comes up (an address added to a down interface
            // gets only its local route), and refuses a gateway it has no
            // on-link route to with EHOSTUNREACH, which is what a route
            // added before up gets.
            rtnl::add_default_route_v6(index, v6.gateway).map_err(|e| {
                format!(
                    "adding the IPv6 default route via {} on {}: {e}",
                    v6.gateway, cfg.ifname
                )
            })?;
        }
    }
    Ok(())
}

/// Where the kernel keeps the IPv6 sysctls of the opening process's
/// network namespace; absent when the kernel has no IPv6.
const IPV6_SYSCTLS: &str = "/proc/sys/net/ipv6";

/// Refuses IPv6 settings that are no static address and on-link gateway,
/// naming the field, before anything is changed (`configure_interface`).
fn check_ipv6(ifname: &str, v6: &Ipv6Config) -> Result<(), String> {
    let refuse = |field: &str, why: String| {
        Err(format!(
            "refusing interface settings for {ifname}: ipv6.{field} {why}"
        ))
    };
    if !(1..=128).contains(&v6.prefix_len) {
        return refuse("prefix_len", format!("/{} is not 1-128", v6.prefix_len));
    }
    let not_unicast = |a: Ipv6Addr| a.is_unspecified() || a.is_multicast() || a.is_loopback();
    if not_unicast(v6.ip) {
        return refuse("ip", format!("{} is not a unicast address", v6.ip));
    }
    if not_unicast(v6.gateway) {
        return refuse(
            "gateway",
            format!("{} is not a unicast address", v6.gateway),
        );
    }
    if v6.gateway == v6.ip {
        return refuse(
            "gateway",
            format!("{} is the interface's own address", v6.gateway),
        );
    }
    // The kernel takes a gateway it has an on-link route to: the prefix
    // route of this address, or (with the route's RTA_OIF) link-local.
    let net = ipnet::Ipv6Net::new(v6.ip, v6.prefix_len)
        .expect("prefix length checked")
        .trunc();
    if !net.contains(&v6.gateway) && !v6.gateway.is_unicast_link_local() {
        return refuse(
            "gateway",
            format!(
                "{} is not on the link (outside {net}, not link-local)",
                v6.gateway
            ),
        );
    }
    Ok(())
}

/// Docker's static IPv6 on a dual-stack network, before the interface is
/// up: router advertisements ignored and no SLAAC address (`accept_ra`,
/// `autoconf` 0; a container that wants them can turn them back on, it is
/// root in its namespace), IPv6 on (`disable_ipv6` 0, else the address is
/// refused), then the address, with NODAD. Returns the interface's index.
///
/// Before up, because the kernel acts on them at up: with accept_ra it
/// sends router solicitations once its link-local address is ready, and
/// takes routes and (with autoconf) addresses from whatever RAs come.
/// The sysctls are those of the calling process's network namespace
/// (/proc/sys/net follows the opener, whatever /proc is mounted).
fn add_static_ipv6(ifname: &str, v6: &Ipv6Config) -> Result<u32, String> {
    let dir = format!("{IPV6_SYSCTLS}/conf/{ifname}");
    if !std::path::Path::new(&dir).is_dir() {
        return Err(format!("{ifname} has no IPv6 (no {dir})"));
    }
    // disable_ipv6 first: the address is refused (EACCES) while it is 1.
    // addr_gen_mode 0 (EUI-64): the link-local address is the one port
    // security allows for this MAC, whatever the namespace's default.
    for (key, value) in [
        ("disable_ipv6", "0"),
        ("accept_ra", "0"),
        ("autoconf", "0"),
        ("addr_gen_mode", "0"),
    ] {
        write_file(&format!("{dir}/{key}"), value)?;
    }
    let index = if_index(ifname).map_err(|e| e.to_string())?;
    rtnl::add_address_v6(index, v6.ip, v6.prefix_len)
        .map_err(|e| format!("adding {}/{} to {ifname}: {e}", v6.ip, v6.prefix_len))?;
    Ok(index)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(ip: &str, prefix_len: u8, gateway: &str) -> Ipv6Config {
        Ipv6Config {
            ip: ip.parse().unwrap(),
            prefix_len,
            gateway: gateway.parse().unwrap(),
        }
    }

    #[test]
    fn ipv6_settings_are_checked_field_by_field() {
        let ok = |c: Ipv6Config| check_ipv6("eth0", &c);
        assert!(ok(v6("2001:db8::2", 64, "2001:db8::1")).is_ok());
        assert!(ok(v6("fd00:1:2:3::9", 127, "fd00:1:2:3::8")).is_ok());
        assert!(
            ok(v6("2001:db8::2", 64, "fe80::1")).is_ok(),
            "link-local gateway"
        );
        assert!(ok(v6("2001:db8::2", 1, "2001:db8:ffff::1")).is_ok());
        for (c, field) in [
            (v6("2001:db8::2", 0, "2001:db8::1"), "ipv6.prefix_len /0"),
            (
                v6("2001:db8::2", 129, "2001:db8::1"),
                "ipv6.prefix_len /129",
            ),
            (
                v6("2001:db8::2", 200, "2001:db8::1"),
                "ipv6.prefix_len /200",
            ),
            (v6("::", 64, "2001:db8::1"), "ipv6.ip ::"),
            (v6("::1", 64, "2001:db8::1"), "ipv6.ip ::1"),
            (v6("ff02::1", 64, "2001:db8::1"), "ipv6.ip ff02::1"),
            (v6("ff05::2", 16, "ff05::1"), "ipv6.ip ff05::2"),
            (v6("2001:db8::2", 64, "::"), "ipv6.gateway ::"),
            (v6("2001:db8::2", 64, "ff02::2"), "ipv6.gateway ff02::2"),
            (v6("2001:db8::2", 64, "::1"), "ipv6.gateway ::1"),
            (
                v6("2001:db8::2", 64, "2001:db8::2"),
                "ipv6.gateway 2001:db8::2 is the interface's own",
            ),
            (
                v6("2001:db8::2", 64, "2001:db8:1::1"),
                "ipv6.gateway 2001:db8:1::1 is not on the link (outside 2001:db8::/64",
            ),
            (
                v6("2001:db8::2", 128, "2001:db8::1"),
                "ipv6.gateway 2001:db8::1 is not on the link",
            ),
        ] {
            let e = ok(c).unwrap_err();
            assert!(e.contains(field), "{c:?}: {e}");
            assert!(e.contains("eth0"), "{e}");
        }
    }

    #[test]
    fn refused_ipv6_settings_fail_before_any_syscall() {
        // No such interface: had anything been tried on it, the error
        // would be about the interface, not the field.
        let cfg = IfConfig {
            ifname: "nonexistent0".into(),
            ip: "10.0.0.2".parse().unwrap(),
            prefix_len: 24,
            gateway: "10.0.0.1".parse().unwrap(),
            mac: "02:42:0a:00:00:02".into(),
            mtu: 1500,
            txqueuelen: 1000,
            default_route: true,
            ipv6: Some(v6("ff02::1", 64, "2001:db8::1")),
        };
        let e = configure_interface(&cfg).unwrap_err();
        assert!(e.contains("ipv6.ip ff02::1"), "{e}");
    }
}
