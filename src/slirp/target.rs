//! The target's TAP: entering the namespaces slirp4netns is pointed at
//! and opening the TAP there, in a forked child, since a process can only
//! join another user namespace while it has one thread, and the TAP fd is
//! all the switch needs from inside.
//!
//! The two ways engines call a slirp4netns:
//! - podman: `-c --netns-type=path PATH tap0` — the helper already runs in
//!   the container's user namespace; it joins the network namespace at
//!   PATH, *creates* `tap0` and configures it (`-c`): lo and tap0 up, the
//!   MTU, the guest's address and the default route via the gateway.
//! - rootlesskit: `PID tap0` — the helper runs as the user in the initial
//!   user namespace; it joins PID's user namespace, then its network
//!   namespace, and *adopts* the persistent `tap0` rootlesskit made and
//!   configured itself.
//!
//! Either way the child sends the TAP fd and its MAC back over a
//! socketpair and exits; a failure is printed by the child, which exits 1.

use std::io::Write;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;

use nix::sched::CloneFlags;

use crate::container::ns::join_path;
use crate::port::tap;
use crate::sys::fdpass;
use crate::sys::ifreq::{add_default_route, control_socket, Interface};
use crate::wire::MacAddr;

/// What slirp4netns is pointed at: `PID` (`--netns-type=pid`, the default)
/// or a network namespace file (`--netns-type=path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pid(u32),
    Path(PathBuf),
}

/// `-c`: how the child configures the TAP.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Configure {
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    pub mtu: u32,
    /// `--macaddress`; else the kernel's random one stays.
    pub mac: Option<MacAddr>,
}

#[derive(Debug, Clone)]
pub struct TapRequest {
    pub target: Target,
    /// `--userns-path`: the user namespace to join first.
    pub userns: Option<PathBuf>,
    pub tapname: String,
    pub configure: Option<Configure>,
}

/// The TAP, from inside.
#[derive(Debug)]
pub struct Tap {
    pub fd: OwnedFd,
    pub mac: MacAddr,
}

/// Forks a child that enters the target's namespaces and opens the TAP.
///
/// # Safety
/// The process must be single-threaded (the child runs Rust code after
/// `fork`, which is sound only then).
pub unsafe fn open(req: &TapRequest) -> Result<Tap, String> {
    let (ours, theirs) = UnixStream::pair().map_err(|e| format!("socketpair: {e}"))?;
    // SAFETY: single-threaded (the caller's promise), so the child may
    // allocate and run ordinary code before it exits.
    match unsafe { nix::unistd::fork() }.map_err(|e| format!("fork: {e}"))? {
        nix::unistd::ForkResult::Child => {
            drop(ours);
            let code = match child(req) {
                Ok(t) => {
                    let msg = t.mac.to_string();
                    match fdpass::send_with_fds(
                        theirs.as_raw_fd(),
                        msg.as_bytes(),
                        &[t.fd.as_raw_fd()],
                    ) {
                        Ok(()) => {
                            eprintln!("sent tapfd={} for {}", t.fd.as_raw_fd(), req.tapname);
                            0
                        }
                        Err(e) => {
                            eprintln!("sendmsg: {e}");
                            1
                        }
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            };
            let _ = std::io::stderr().flush();
            // SAFETY: _exit ends the child without running the parent's
            // exit handlers or destructors twice.
            unsafe { libc::_exit(code) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(theirs);
            let mut buf = [0u8; 64];
            let got = fdpass::recv_with_fds(ours.as_raw_fd(), &mut buf);
            let status = loop {
                match nix::sys::wait::waitpid(child, None) {
                    Err(nix::errno::Errno::EINTR) => continue,
                    other => break other,
                }
            };
            match status {
                Ok(nix::sys::wait::WaitStatus::Exited(_, 0)) => {}
                Ok(nix::sys::wait::WaitStatus::Exited(_, c)) => {
                    return Err(format!("child failed({c})"));
                }
                other => return Err(format!("child failed({other:?}, !WIFEXITED)")),
            }
            let (n, mut fds) = got.map_err(|e| format!("receiving the tap fd: {e}"))?;
            let (Some(fd), true) = (fds.pop(), n > 0) else {
                return Err("the message does not contain fd".into());
            };
            let mac = std::str::from_utf8(&buf[..n])
                .ok()
                .and_then(|s| s.parse::<MacAddr>().ok())
                .ok_or("the tap's MAC did not arrive")?;
            eprintln!("received tapfd={}", fd.as_raw_fd());
            Ok(Tap { fd, mac })
        }
    }
}

fn child(req: &TapRequest) -> Result<Tap, String> {
    // The user namespace first, as slirp4netns does: the target's
    // (rootlesskit's child) or `--userns-path`. A failure is tolerated —
    // the helper may already be in it, or not need it — and the network
    // namespace's setns below says whether it mattered.
    let userns = match (&req.userns, &req.target) {
        (Some(p), _) => Some(p.display().to_string()),
        (None, Target::Pid(pid)) => Some(format!("/proc/{pid}/ns/user")),
        (None, Target::Path(_)) => None,
    };
    if let Some(u) = userns {
        let r = join_path(&u, "user", CloneFlags::CLONE_NEWUSER);
        if req.userns.is_some() {
            r?;
        }
    }
    let netns = match &req.target {
        Target::Pid(pid) => format!("/proc/{pid}/ns/net"),
        Target::Path(p) => p.display().to_string(),
    };
    join_path(&netns, "net", CloneFlags::CLONE_NEWNET)?;
    let fd = tap::create(&req.tapname).map_err(|e| format!("ioctl(TUNSETIFF): {e}"))?;
    let sock = control_socket().map_err(|e| format!("cannot create socket: {e}"))?;
    let tapif = Interface::new(&sock, &req.tapname);
    if let Some(c) = &req.configure {
        Interface::new(&sock, "lo")
            .set_up()
            .map_err(|e| format!("cannot set device up: {e}"))?;
        if let Some(mac) = c.mac {
            tapif
                .set_mac(mac)
                .map_err(|e| format!("cannot set MAC address: {e}"))?;
        }
        tapif
            .set_mtu(c.mtu)
            .map_err(|e| format!("cannot set MTU: {e}"))?;
        tapif
            .set_ipv4(c.ip, c.prefix_len)
            .map_err(|e| format!("cannot set device address: {e}"))?;
        tapif
            .set_up()
            .map_err(|e| format!("cannot set device up: {e}"))?;
        add_default_route(&sock, c.gateway).map_err(|e| format!("set route: {e}"))?;
    }
    let mac = tapif
        .mac()
        .map_err(|e| format!("reading the MAC of {}: {e}", req.tapname))?;
    Ok(Tap { fd, mac })
}
