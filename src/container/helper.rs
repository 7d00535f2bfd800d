//! The namespace-helper protocol, both halves: how a TAP made inside a
//! container's namespaces reaches the switch, and how the settings the
//! switch chose for it reach the interface.
//!
//! # Theory of operation
//!
//! The switch runs threads, and the kernel refuses `unshare(CLONE_NEWUSER)`
//! (and `setns` into a user namespace) to a multi-threaded process. So a
//! single-threaded process does the namespace work and passes the TAPs
//! back over a Unix socketpair. Two pairs of processes speak the same
//! protocol:
//!
//! - **`lanyard run`**: the parent ([`spawn`], then [`Container`]) and the
//!   child it forks while still single-threaded ([`child_main`]). The child
//!   unshares the container's namespaces (or joins another container's),
//!   makes one TAP per network and, once configured, starts the command
//!   (under its PID namespace's init: `supervise::run_in_pid_namespace`).
//! - **`lanyard connect`**: the daemon ([`start_tap_helper`], then
//!   [`TapHelper`]) and a helper its spawner starts (`spawner`), its own
//!   binary as
//!   `lanyard __container-tap PID IFNAME` ([`TAP_HELPER_COMMAND`]) with the
//!   socket as stdin ([`tap_helper_main`]). The helper joins the user (when
//!   rootless) and network namespaces of the container's process, makes one
//!   TAP and exits once it is configured.
//!
//! The exchange, one line each way and one back, every line ending in `\n`:
//!
//! ```text
//!   namespace side (child, helper)          switch side (run's parent, daemon)
//!   "taps" + the TAP fds (SCM_RIGHTS)  ───▶  hands the TAPs to the switch
//!     or "error: MESSAGE", or it closes       (run: one per network, maybe none;
//!                                              connect: exactly one)
//!                                      ◀───  the settings as one JSON line
//!                                              (run: `Setup`, connect: `IfConfig`)
//!                                              or "abort" (the switch refused)
//!   applies them
//!   "ok" or "error: MESSAGE"           ───▶  run: the child starts the command;
//!                                            connect: the helper exits 0
//! ```
//!
//! The namespace side never keeps its copies of the TAPs once they are
//! sent: the switch owns the devices, and closing the last fd removes the
//! interface. Anything but "taps" with the expected number of fds, or
//! anything but "ok", fails the container's setup (exit 125), and the
//! switch side then ends the other process (run: SIGKILL; connect:
//! "abort", then the spawner's SIGKILL should it hang). The switch side waits at most `SETUP_TIMEOUT`
//! (run) or `HELPER_TIMEOUT` (connect) for each reply. How the namespaces
//! are entered and the interfaces configured is in `ns`.

use std::io::{self, BufRead, BufReader, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use nix::sched::CloneFlags;
use nix::unistd::{fork, ForkResult, Pid};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::ns::{self, configure_interface, ContainerSpec, NetMode};
use super::EXIT_SETUP_FAILED;
use crate::port::tap;
use crate::sys::fdpass::{recv_with_fds, send_with_fds};

/// The hidden subcommand that runs [`tap_helper_main`].
pub const TAP_HELPER_COMMAND: &str = "__container-tap";

/// The namespace side's first message: its TAPs ride on it (SCM_RIGHTS).
const TAPS: &str = "taps";
/// The namespace side applied the settings.
const OK: &str = "ok";
/// The switch side's "give up": the switch refused the TAPs.
const ABORT: &str = "abort";
/// Starts a failure message, from the namespace side, instead of a reply.
const ERROR: &str = "error: ";

/// How long `lanyard run` waits for each step of the child's setup.
const SETUP_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the daemon waits for each step of `lanyard connect`'s helper.
const HELPER_TIMEOUT: Duration = Duration::from_secs(20);

/// The settings of one interface: run's `Setup` carries one per TAP,
/// connect sends one alone.
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
    /// Its IPv6 address and gateway, on a dual-stack network.
    #[serde(default)]
    pub ipv6: Option<Ipv6Config>,
}

/// An interface's static IPv6 settings (docker's: an address from the
/// network's IPv6 subnet, the default route via its gateway).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Ipv6Config {
    pub ip: std::net::Ipv6Addr,
    pub prefix_len: u8,
    pub gateway: std::net::Ipv6Addr,
}

/// Everything `lanyard run`'s child applies before exec.
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

// ---------------------------------------------------------------------------
// The namespace side's end.

struct NamespaceEnd {
    sock: BufReader<UnixStream>,
}

/// Why no settings came.
#[derive(Debug)]
enum NoSettings {
    /// The switch side closed the socket, failed to write, or sent "abort".
    Gone,
    /// The line is not settings of the expected kind.
    Bad(serde_json::Error),
}

impl NamespaceEnd {
    fn new(sock: UnixStream) -> NamespaceEnd {
        NamespaceEnd {
            sock: BufReader::new(sock),
        }
    }

    /// "error: MESSAGE", best effort: the other side may be gone.
    fn report(&mut self, e: &str) {
        let _ = self
            .sock
            .get_mut()
            .write_all(format!("{ERROR}{e}\n").as_bytes());
    }

    fn send_taps(&self, taps: &[OwnedFd]) -> io::Result<()> {
        let raw: Vec<RawFd> = taps.iter().map(|t| t.as_raw_fd()).collect();
        send_with_fds(
            self.sock.get_ref().as_raw_fd(),
            format!("{TAPS}\n").as_bytes(),
            &raw,
        )
    }

    fn read_settings<T: DeserializeOwned>(&mut self) -> Result<T, NoSettings> {
        let mut line = String::new();
        match self.sock.read_line(&mut line) {
            Ok(n) if n > 0 => {}
            _ => return Err(NoSettings::Gone),
        }
        if line.trim_end() == ABORT {
            return Err(NoSettings::Gone);
        }
        serde_json::from_str(&line).map_err(NoSettings::Bad)
    }

    fn reply_ok(&mut self) -> io::Result<()> {
        self.sock.get_mut().write_all(format!("{OK}\n").as_bytes())
    }
}

// ---------------------------------------------------------------------------
// The switch side's end.

struct SwitchEnd {
    sock: BufReader<UnixStream>,
}

/// Why the TAPs did not come.
#[derive(Debug)]
enum NoTaps {
    Recv(io::Error),
    /// The namespace side's message as it came: "error: MESSAGE", "" when
    /// it closed the socket, "taps" when the number of fds was wrong.
    Refused(String),
}

/// Why the settings were not sent.
#[derive(Debug)]
enum NotSent {
    Encode(serde_json::Error),
    Write(io::Error),
}

/// Why no "ok" came back.
#[derive(Debug)]
enum NotApplied {
    Read(io::Error),
    /// The namespace side closed the socket instead of replying.
    Closed,
    /// Its reply, without "error: ".
    Refused(String),
}

/// A message from the namespace side, without the "error: " it starts with.
fn error_text(msg: &str) -> String {
    msg.trim_start_matches(ERROR).to_string()
}

impl SwitchEnd {
    fn new(sock: UnixStream, timeout: Duration) -> SwitchEnd {
        let _ = sock.set_read_timeout(Some(timeout));
        SwitchEnd {
            sock: BufReader::new(sock),
        }
    }

    /// The namespace side's first message: exactly `want` TAPs, or why not.
    fn recv_taps(&self, want: usize) -> Result<Vec<OwnedFd>, NoTaps> {
        let mut buf = [0u8; 4096];
        let (n, fds) =
            recv_with_fds(self.sock.get_ref().as_raw_fd(), &mut buf).map_err(NoTaps::Recv)?;
        let msg = String::from_utf8_lossy(&buf[..n]).trim_end().to_string();
        if msg != TAPS || fds.len() != want {
            return Err(NoTaps::Refused(msg));
        }
        Ok(fds)
    }

    fn send_settings<T: Serialize>(&mut self, settings: &T) -> Result<(), NotSent> {
        let mut line = serde_json::to_vec(settings).map_err(NotSent::Encode)?;
        line.push(b'\n');
        self.sock.get_mut().write_all(&line).map_err(NotSent::Write)
    }

    fn read_reply(&mut self) -> Result<(), NotApplied> {
        let mut resp = String::new();
        match self.sock.read_line(&mut resp) {
            Ok(0) => Err(NotApplied::Closed),
            Ok(_) if resp.trim_end() == OK => Ok(()),
            Ok(_) => Err(NotApplied::Refused(error_text(resp.trim_end()))),
            Err(e) => Err(NotApplied::Read(e)),
        }
    }

    fn abort(&mut self) {
        let _ = self
            .sock
            .get_mut()
            .write_all(format!("{ABORT}\n").as_bytes());
    }
}

// ---------------------------------------------------------------------------
// `lanyard run`: the parent and the forked child.

/// A forked container, stopped before exec until it is configured.
pub struct Container {
    pub pid: Pid,
    end: SwitchEnd,
    taps: Vec<OwnedFd>,
}

impl Container {
    /// The TAPs the child created, in the order of its interface names;
    /// taken once, to hand to the switch.
    pub fn take_taps(&mut self) -> Vec<OwnedFd> {
        std::mem::take(&mut self.taps)
    }

    /// Sends the settings, waits until the child has applied them; the
    /// child then starts the command.
    pub fn configure(&mut self, cfg: &Setup) -> Result<(), String> {
        self.end.send_settings(cfg).map_err(|e| match e {
            NotSent::Encode(e) => e.to_string(),
            NotSent::Write(e) => format!("container setup: {e}"),
        })?;
        self.end.read_reply().map_err(|e| match e {
            NotApplied::Read(e) => format!("container setup: {e}"),
            NotApplied::Closed => "the container exited during setup".into(),
            NotApplied::Refused(m) => m,
        })
    }

    /// Tells the child to give up (the switch refused it) and reaps it.
    pub fn abort(mut self) {
        self.end.abort();
        let _ = nix::sys::wait::waitpid(self.pid, None);
    }
}

/// Forks the container child and returns once its TAPs exist.
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
    // may allocate and take locks freely; it leaves through _exit (its
    // command is exec'd by a process it forks).
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
            let end = SwitchEnd::new(parent_sock, SETUP_TIMEOUT);
            let reap = || {
                let _ = nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL);
                let _ = nix::sys::wait::waitpid(child, None);
            };
            let want = match &spec.net {
                NetMode::Isolated { ifnames } => ifnames.len(),
                _ => 0,
            };
            match end.recv_taps(want) {
                Ok(taps) => Ok(Container {
                    pid: child,
                    end,
                    taps,
                }),
                Err(NoTaps::Recv(e)) => {
                    reap();
                    Err(format!("waiting for the container's TAP: {e}"))
                }
                Err(NoTaps::Refused(msg)) => {
                    reap();
                    Err(if msg.is_empty() {
                        "the container setup process died".to_string()
                    } else {
                        error_text(&msg)
                    })
                }
            }
        }
    }
}

/// The forked child: namespaces and TAPs, the TAPs to the parent, the
/// settings back, applied; then the command. Returns only on failure
/// (the exit code).
fn child_main(spec: &ContainerSpec, sock: UnixStream, uid: u32, gid: u32, parent: Pid) -> i32 {
    let mut end = NamespaceEnd::new(sock);
    let taps = match ns::enter_namespaces(spec, uid, gid, parent) {
        Ok(t) => t,
        Err(e) => {
            end.report(&e);
            return EXIT_SETUP_FAILED;
        }
    };
    if let Err(e) = end.send_taps(&taps) {
        eprintln!("lanyard: passing the TAPs to the switch: {e}");
        return EXIT_SETUP_FAILED;
    }
    // The switch holds the devices from now on; keeping our copies would
    // keep them alive after the switch lets go.
    drop(taps);
    let cfg: Setup = match end.read_settings() {
        Ok(c) => c,
        Err(NoSettings::Gone) => return EXIT_SETUP_FAILED,
        Err(NoSettings::Bad(e)) => {
            end.report(&format!("bad interface config: {e}"));
            return EXIT_SETUP_FAILED;
        }
    };
    let own_netns = matches!(spec.net, NetMode::Isolated { .. } | NetMode::None);
    if own_netns {
        if let Err(e) = ns::bring_up_lo() {
            end.report(&e);
            return EXIT_SETUP_FAILED;
        }
    }
    for i in &cfg.interfaces {
        if let Err(e) = configure_interface(i) {
            end.report(&e);
            return EXIT_SETUP_FAILED;
        }
    }
    for (src, dst) in [
        (&cfg.resolv_conf, "/etc/resolv.conf"),
        (&cfg.hosts, "/etc/hosts"),
    ] {
        if let Some(src) = src {
            if let Err(e) = ns::bind_file(src, dst) {
                end.report(&e);
                return EXIT_SETUP_FAILED;
            }
        }
    }
    if end.reply_ok().is_err() {
        return EXIT_SETUP_FAILED;
    }
    drop(end);
    super::supervise::run_in_pid_namespace(&spec.argv)
}

// ---------------------------------------------------------------------------
// `lanyard connect`: the daemon and the helper process.

/// The daemon's side of one `lanyard connect` helper process: our own
/// binary, which joins the container's namespaces (a single-threaded
/// process may enter a user namespace; the daemon may not).
pub struct TapHelper {
    end: SwitchEnd,
}

/// Starts the helper for container process `pid` and waits for TAP
/// `ifname`, made in the container's network namespace. The helper is
/// started by the daemon's spawner (`spawner`: the sandboxed daemon
/// cannot fork), which also reaps it. The error is the message for the
/// connect request's failure.
pub fn start_tap_helper(pid: u32, ifname: &str) -> Result<(TapHelper, OwnedFd), String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| e.to_string())?;
    super::spawner::spawn_tap_helper(pid, ifname, OwnedFd::from(theirs))?;
    let mut h = TapHelper {
        end: SwitchEnd::new(ours, HELPER_TIMEOUT),
    };
    match h.end.recv_taps(1) {
        Ok(mut taps) => {
            let tap = taps.pop().expect("one TAP");
            Ok((h, tap))
        }
        Err(NoTaps::Recv(e)) => Err(format!("interface helper: {e}")),
        Err(NoTaps::Refused(msg)) => {
            h.abort();
            Err(format!(
                "creating {ifname} in the container: {}",
                error_text(&msg)
            ))
        }
    }
}

impl TapHelper {
    /// Sends the interface's settings and waits for the helper to apply
    /// them (it exits after its reply).
    pub fn configure(&mut self, cfg: &IfConfig) -> Result<(), String> {
        self.end.send_settings(cfg).map_err(|e| match e {
            NotSent::Encode(e) => e.to_string(),
            NotSent::Write(e) => e.to_string(),
        })?;
        self.end.read_reply().map_err(|e| match e {
            NotApplied::Read(e) => e.to_string(),
            // As an empty reply: the helper says nothing more.
            NotApplied::Closed => String::new(),
            NotApplied::Refused(m) => m,
        })
    }

    /// Tells the helper to give up (the switch refused its TAP); it exits
    /// on "abort" or on the socket closing, and the spawner reaps it (and
    /// kills it should it hang).
    pub fn abort(&mut self) {
        self.end.abort();
    }
}

/// `lanyard __container-tap PID IFNAME`, the helper process itself
/// (single-threaded, so it may join a user namespace): the daemon's socket
/// is its stdin. Joins the namespaces of container process `pid`, creates
/// TAP `ifname` there, passes its fd back, then applies the interface
/// settings it is sent. Returns the process's exit code.
pub fn tap_helper_main(pid: u32, ifname: &str) -> i32 {
    use std::os::fd::FromRawFd;
    // SAFETY: the daemon started us with one end of a socketpair as stdin
    // (`start_tap_helper`); nothing else owns fd 0 here.
    let sock = unsafe { UnixStream::from_raw_fd(0) };
    let mut end = NamespaceEnd::new(sock);
    let rootless = nix::unistd::geteuid().as_raw() != 0;
    let joined = (|| {
        if rootless {
            ns::join_ns(pid, "user", CloneFlags::CLONE_NEWUSER)?;
        }
        ns::join_ns(pid, "net", CloneFlags::CLONE_NEWNET)?;
        tap::create(ifname).map_err(|e| e.to_string())
    })();
    let tap = match joined {
        Ok(t) => t,
        Err(e) => {
            end.report(&e);
            return EXIT_SETUP_FAILED;
        }
    };
    if end.send_taps(std::slice::from_ref(&tap)).is_err() {
        return EXIT_SETUP_FAILED;
    }
    drop(tap);
    let cfg: IfConfig = match end.read_settings() {
        Ok(c) => c,
        Err(NoSettings::Gone) => return EXIT_SETUP_FAILED,
        Err(NoSettings::Bad(e)) => {
            end.report(&format!("bad interface config: {e}"));
            return EXIT_SETUP_FAILED;
        }
    };
    match configure_interface(&cfg) {
        Ok(()) => {
            let _ = end.reply_ok();
            0
        }
        Err(e) => {
            end.report(&e);
            EXIT_SETUP_FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair() -> (SwitchEnd, NamespaceEnd) {
        let (a, b) = UnixStream::pair().unwrap();
        (
            SwitchEnd::new(a, Duration::from_secs(5)),
            NamespaceEnd::new(b),
        )
    }

    fn some_fd() -> OwnedFd {
        std::fs::File::open("/dev/null").unwrap().into()
    }

    fn settings() -> IfConfig {
        IfConfig {
            ifname: "eth1".into(),
            ip: Ipv4Addr::new(172, 17, 0, 2),
            prefix_len: 16,
            gateway: Ipv4Addr::new(172, 17, 0, 1),
            mac: "02:42:ac:11:00:02".into(),
            mtu: 1500,
            txqueuelen: 5000,
            default_route: false,
            ipv6: None,
        }
    }

    #[test]
    fn taps_settings_ok() {
        let (mut sw, mut ns) = pair();
        ns.send_taps(&[some_fd(), some_fd()]).unwrap();
        assert_eq!(sw.recv_taps(2).unwrap().len(), 2);
        sw.send_settings(&settings()).unwrap();
        let got: IfConfig = ns.read_settings().ok().unwrap();
        assert_eq!(got, settings());
        ns.reply_ok().unwrap();
        assert!(sw.read_reply().is_ok());
    }

    #[test]
    fn no_taps_is_a_valid_first_message() {
        let (sw, ns) = pair();
        ns.send_taps(&[]).unwrap();
        assert!(sw.recv_taps(0).unwrap().is_empty());
    }

    #[test]
    fn refusals_carry_the_message() {
        let (mut sw, mut ns) = pair();
        ns.report("unshare: EPERM");
        match sw.recv_taps(1) {
            Err(NoTaps::Refused(m)) => assert_eq!(error_text(&m), "unshare: EPERM"),
            _ => panic!("an error message is no TAP"),
        }
        ns.report("setting the MAC: EINVAL");
        match sw.read_reply() {
            Err(NotApplied::Refused(m)) => assert_eq!(m, "setting the MAC: EINVAL"),
            _ => panic!("an error message is no ok"),
        }
    }

    #[test]
    fn the_wrong_number_of_taps_is_refused() {
        let (sw, ns) = pair();
        ns.send_taps(&[some_fd()]).unwrap();
        match sw.recv_taps(2) {
            Err(NoTaps::Refused(m)) => assert_eq!(m, TAPS),
            _ => panic!("one TAP of two"),
        }
    }

    #[test]
    fn abort_and_bad_settings_end_the_namespace_side() {
        let (mut sw, mut ns) = pair();
        sw.abort();
        assert!(matches!(
            ns.read_settings::<IfConfig>(),
            Err(NoSettings::Gone)
        ));
        sw.send_settings(&settings()).unwrap();
        assert!(matches!(
            ns.read_settings::<Setup>(),
            Err(NoSettings::Bad(_))
        ));
    }

    #[test]
    fn a_closed_socket_is_neither_taps_nor_ok() {
        let (mut sw, ns) = pair();
        drop(ns);
        match sw.recv_taps(0) {
            Err(NoTaps::Refused(m)) => assert!(m.is_empty()),
            _ => panic!("nothing came"),
        }
        assert!(matches!(sw.read_reply(), Err(NotApplied::Closed)));
    }
}
