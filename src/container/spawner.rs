//! The helper spawner: the one part of a sandboxed daemon that may still
//! start a process.
//!
//! `lanyard connect` needs a process that joins a running container's
//! user and network namespaces and makes a TAP there (`helper`'s
//! `__container-tap`), and a multi-threaded daemon may not join a user
//! namespace itself. Once the daemon is sandboxed it cannot fork or exec
//! either. So, before it confines itself and while it is still
//! single-threaded, the daemon forks this spawner, which keeps only one
//! end of a socketpair and does one thing on request: start
//! `lanyard __container-tap PID IFNAME` with a given socket as its stdin,
//! and reap it; and one more: read the host's resolv.conf, the one path
//! fixed when it was forked, for the daemon that follows it
//! (`control::resolv`). Landlock holds a file's inode, and the tools that
//! rewrite resolv.conf rename a new file over the old, which a sandboxed
//! daemon could then not open. It answers nothing else; a daemon
//! compromised by a container can ask it for no more than `lanyard
//! connect` does, and for the contents of that one file.
//!
//! The protocol, on a `SOCK_SEQPACKET` pair (one message each):
//!
//! ```text
//!   daemon                                   spawner
//!   "PID IFNAME" + the helper's socket  ──▶  fork, exec the helper
//!                                      ◀──  "ok" or "error: MESSAGE"
//!   "resolv"                            ──▶  read the fixed path
//!                                      ◀──  "resolv " + its first 60 KiB,
//!                                           or "error: MESSAGE"
//! ```
//!
//! The spawner ends when the daemon does (its end closes: EOF), and with
//! `PR_SET_PDEATHSIG` should the daemon be killed. A helper still running
//! after `HELPER_LIMIT` is killed: its daemon-side timeout has long passed.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::helper::TAP_HELPER_COMMAND;
use crate::sys::fdpass::{recv_with_fds, send_with_fds};

/// The most of resolv.conf passed on (one message).
const RESOLV_MAX: usize = 60 * 1024;

/// How long a helper may live: well past the daemon's wait for it.
const HELPER_LIMIT: Duration = Duration::from_secs(60);

/// The daemon's end, set once by [`start`].
static SPAWNER: Mutex<Option<OwnedFd>> = Mutex::new(None);

/// Forks the spawner. Call while single-threaded, before the sandbox;
/// `close` are descriptors the spawner must not keep (the control
/// socket's listener); `resolv_conf` is the one file it reads on request.
///
/// # Safety
/// The process must be single-threaded (the child allocates).
pub unsafe fn start(close: &[RawFd], resolv_conf: &std::path::Path) -> io::Result<()> {
    let (ours, theirs) = nix::sys::socket::socketpair(
        nix::sys::socket::AddressFamily::Unix,
        nix::sys::socket::SockType::SeqPacket,
        None,
        nix::sys::socket::SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io::Error::from)?;
    let exe = std::env::current_exe()?;
    // SAFETY: the caller guarantees a single thread.
    match unsafe { fork() }.map_err(io::Error::from)? {
        ForkResult::Parent { .. } => {
            drop(theirs);
            *SPAWNER.lock().unwrap_or_else(|p| p.into_inner()) = Some(ours);
            Ok(())
        }
        ForkResult::Child => {
            drop(ours);
            for &fd in close {
                // SAFETY: closing inherited descriptors the spawner must
                // not hold; nothing else in this process owns them.
                unsafe { libc::close(fd) };
            }
            // SAFETY: prctl with integer arguments only.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            serve(theirs, &exe, resolv_conf);
            std::process::exit(0)
        }
    }
}

/// Starts a TAP helper for container process `pid` and interface
/// `ifname`, with `stdin` (its end of the daemon's socketpair) as its
/// standard input.
pub fn spawn_tap_helper(pid: u32, ifname: &str, stdin: OwnedFd) -> Result<(), String> {
    let guard = SPAWNER.lock().unwrap_or_else(|p| p.into_inner());
    let sock = guard
        .as_ref()
        .ok_or("no helper spawner in this process (only `lanyard daemon` has one)")?;
    let msg = format!("{pid} {ifname}");
    send_with_fds(sock.as_raw_fd(), msg.as_bytes(), &[stdin.as_raw_fd()])
        .map_err(|e| format!("helper spawner: {e}"))?;
    drop(stdin);
    let mut buf = [0u8; 512];
    // SAFETY: recv into a buffer we own.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 {
        return Err("helper spawner: gone".into());
    }
    let reply = String::from_utf8_lossy(&buf[..n as usize]);
    match reply.strip_prefix("error: ") {
        None if reply == "ok" => Ok(()),
        Some(e) => Err(format!("starting the interface helper: {e}")),
        None => Err(format!("helper spawner: unexpected reply '{reply}'")),
    }
}

/// The host's resolv.conf as the spawner reads it (unconfined), or
/// `None` when this process has no spawner (`run`'s embedded switch, the
/// slirp4netns mode: they read it themselves).
pub fn read_resolv_conf() -> Option<io::Result<String>> {
    let guard = SPAWNER.lock().unwrap_or_else(|p| p.into_inner());
    let sock = guard.as_ref()?;
    if let Err(e) = send_with_fds(sock.as_raw_fd(), b"resolv", &[]) {
        return Some(Err(e));
    }
    let mut buf = vec![0u8; RESOLV_MAX + 64];
    // SAFETY: recv into a buffer we own.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n <= 0 {
        return Some(Err(io::Error::other("helper spawner: gone")));
    }
    let reply = String::from_utf8_lossy(&buf[..n as usize]).into_owned();
    Some(match reply.strip_prefix("resolv ") {
        Some(text) => Ok(text.to_string()),
        None => Err(io::Error::other(
            reply.strip_prefix("error: ").unwrap_or(&reply).to_string(),
        )),
    })
}

/// The spawner's loop: one request at a time, reaping helpers between.
fn serve(sock: OwnedFd, exe: &std::path::Path, resolv_conf: &std::path::Path) {
    let mut helpers: Vec<(Pid, Instant)> = Vec::new();
    loop {
        let mut pfd = libc::pollfd {
            fd: sock.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one pollfd we own.
        let ready = unsafe { libc::poll(&mut pfd, 1, 1000) };
        helpers.retain(
            |&(pid, since)| match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) if since.elapsed() > HELPER_LIMIT => {
                    let _ = kill(pid, Signal::SIGKILL);
                    let _ = waitpid(pid, None);
                    false
                }
                Ok(WaitStatus::StillAlive) => true,
                _ => false,
            },
        );
        if ready <= 0 {
            continue;
        }
        let mut buf = [0u8; 256];
        let (n, mut fds) = match recv_with_fds(sock.as_raw_fd(), &mut buf) {
            Ok((0, _)) | Err(_) => return,
            Ok(r) => r,
        };
        if &buf[..n] == b"resolv" && fds.is_empty() {
            let reply = match read_bounded(resolv_conf) {
                Ok(text) => format!("resolv {text}"),
                Err(e) => format!("error: {}: {e}", resolv_conf.display()),
            };
            if send_with_fds(sock.as_raw_fd(), reply.as_bytes(), &[]).is_err() {
                return;
            }
            continue;
        }
        let reply = match (parse(&buf[..n]), fds.pop()) {
            (Some((pid, ifname)), Some(stdin)) if fds.is_empty() => {
                match exec_helper(exe, pid, &ifname, stdin) {
                    Ok(child) => {
                        helpers.push((child, Instant::now()));
                        "ok".to_string()
                    }
                    Err(e) => format!("error: {e}"),
                }
            }
            _ => "error: bad request".to_string(),
        };
        if send_with_fds(sock.as_raw_fd(), reply.as_bytes(), &[]).is_err() {
            return;
        }
    }
}

/// The first `RESOLV_MAX` bytes of a file, as text.
fn read_bounded(path: &std::path::Path) -> io::Result<String> {
    use std::io::Read;
    let mut b = Vec::new();
    std::fs::File::open(path)?
        .take(RESOLV_MAX as u64)
        .read_to_end(&mut b)?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

/// "PID IFNAME", with an interface name the kernel could take.
fn parse(msg: &[u8]) -> Option<(u32, String)> {
    let s = std::str::from_utf8(msg).ok()?;
    let (pid, ifname) = s.split_once(' ')?;
    let pid: u32 = pid.parse().ok().filter(|&p| p > 0)?;
    let ok = !ifname.is_empty()
        && ifname.len() < libc::IFNAMSIZ
        && ifname
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| (pid, ifname.to_string()))
}

fn exec_helper(exe: &std::path::Path, pid: u32, ifname: &str, stdin: OwnedFd) -> io::Result<Pid> {
    let child = std::process::Command::new(exe)
        .arg(TAP_HELPER_COMMAND)
        .arg(pid.to_string())
        .arg(ifname)
        .stdin(std::process::Stdio::from(stdin))
        .spawn()?;
    let pid = Pid::from_raw(child.id() as i32);
    // Reaped by the loop, not by `Child` (dropping a Child neither waits
    // nor kills).
    drop(child);
    Ok(pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_a_process_and_an_interface_name_only() {
        assert_eq!(parse(b"42 eth1"), Some((42, "eth1".into())));
        assert_eq!(parse(b"0 eth1"), None);
        assert_eq!(parse(b"42"), None);
        assert_eq!(parse(b"42 "), None);
        assert_eq!(parse(b"42 eth1/../x"), None);
        assert_eq!(parse(b"42 a-very-long-interface-name"), None);
        assert_eq!(parse(b"x eth1"), None);
    }
}
