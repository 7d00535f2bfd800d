//! Supervising the container process: the signals a user sends to
//! `lanyard run` reach the command, and the command's exit status becomes
//! ours (128 + N when killed by signal N, as shells and docker report it).
//!
//! The container's processes live in a PID namespace of their own, and end
//! with it: [`run_in_pid_namespace`] is the container child's last step,
//! in place of a plain exec. The chain of processes:
//!
//! ```text
//!   lanyard run ─ supervise(child)
//!     └ the container child: its namespaces and interfaces set up; outside
//!       the new PID namespace (unshare makes only its children's); dies
//!       with run (parent-death signal); supervise(init)
//!         └ init: PID 1 of the namespace; dies with the child (its own
//!           parent-death signal); mounts the namespace's /proc; reaps
//!           orphans; passes signals on (reap_until)
//!             └ the command: PID 2
//! ```
//!
//! When the init exits (its command did, or it was killed), the kernel
//! kills every other process of the namespace, as docker's containers end
//! with their main process. Without this, what a command leaves running (a
//! shell's background jobs, a daemonized server) outlived the container:
//! orphaned to the host's init when the command exited, and when `lanyard
//! run` was SIGKILLed (a parent-death signal reaches only the direct
//! child). The command is not PID 1 itself because the kernel drops a
//! signal to a PID 1 that has no handler for it: `lanyard run -- sleep 100`
//! would ignore the SIGTERM run passes on.

use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{fork, ForkResult, Pid};

use super::reattach::{Gone, Reattach, EXIT_DAEMON_GONE};
use super::EXIT_SETUP_FAILED;
use crate::log;

/// Signals passed on to the container.
const FORWARDED: [Signal; 7] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

fn forwarded_set() -> SigSet {
    let mut s = SigSet::empty();
    for sig in FORWARDED {
        s.add(sig);
    }
    s.add(Signal::SIGCHLD);
    s
}

/// Blocks the forwarded signals (and SIGCHLD) in the calling thread, so
/// that threads started afterwards inherit the mask and only `supervise`
/// consumes them. Call before starting any thread.
pub fn block_forwarded_signals() {
    let _ = nix::sys::signal::pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&forwarded_set()), None);
}

/// Waits for `pid` to exit, forwarding signals to it; returns its exit code.
/// `reattach` (a `run` served by a daemon) is looked at between waits: when
/// it gives up on its daemon, the container is stopped and `run` exits
/// `EXIT_DAEMON_GONE`.
pub fn supervise(pid: Pid, mut reattach: Option<&mut Reattach>) -> i32 {
    let set = forwarded_set();
    loop {
        if let Some(r) = reattach.as_deref_mut() {
            if let Err(Gone(why)) = r.tick() {
                log::error!("{why}");
                let _ = kill(pid, Signal::SIGKILL);
                let _ = waitpid(pid, None);
                return EXIT_DAEMON_GONE;
            }
        }
        match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(st) => {
                if let Some(code) = exit_code(st) {
                    return code;
                }
            }
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => return EXIT_SETUP_FAILED,
        }
        forward_one(&set, pid);
    }
}

/// Waits (up to 200 ms) for one signal of `set` and passes it on to `pid`.
fn forward_one(set: &SigSet, pid: Pid) {
    let Some(caught) = crate::sys::wait_signal(set, Duration::from_millis(200)) else {
        return;
    };
    if caught.signal == libc::SIGCHLD {
        return;
    }
    // A signal from the terminal (Ctrl-C) already went to the whole
    // foreground process group, the command included: passing it on
    // would deliver it twice. Signals sent with kill(2) are passed on.
    if caught.code == libc::SI_KERNEL {
        return;
    }
    if let Ok(s) = Signal::try_from(caught.signal) {
        let _ = kill(pid, s);
    }
}

/// The container child's last step (see the module's top): forks the
/// init of the PID namespace it unshared, and supervises it; returns its
/// exit code, which is the command's. The caller must be single-threaded
/// and have unshared `CLONE_NEWPID`.
pub fn run_in_pid_namespace(argv: &[String]) -> i32 {
    block_forwarded_signals();
    // Only this process holds the write end: the init reads EOF on the
    // other once we are gone, its way to see that we died before its
    // parent-death signal was armed.
    let (alive_r, alive_w) = match nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("lanyard: pipe: {e}");
            return EXIT_SETUP_FAILED;
        }
    };
    // SAFETY: single-threaded (the caller's guarantee); the child makes
    // syscalls and leaves through exec or _exit.
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("lanyard: starting the container's init: {e}");
            EXIT_SETUP_FAILED
        }
        Ok(ForkResult::Child) => {
            drop(alive_w);
            let code = init(argv, alive_r);
            // SAFETY: _exit skips the atexit handlers and stdio flushing
            // that belong to the parent's state.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => {
            drop(alive_r);
            let code = supervise(child, None);
            drop(alive_w);
            code
        }
    }
}

/// PID 1 of the container's PID namespace: dies with its parent, mounts the
/// namespace's /proc, starts the command and reaps until it has exited.
fn init(argv: &[String], parent_alive: OwnedFd) -> i32 {
    // Our death ends the namespace; our parent's must end us.
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
    let mut pfd = libc::pollfd {
        fd: parent_alive.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, no wait. Readable means EOF: the parent
    // (the only writer) died before the parent-death signal was set.
    if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 {
        return EXIT_SETUP_FAILED;
    }
    drop(parent_alive);
    mount_own_proc();
    // SAFETY: single-threaded; the child execs or _exits.
    match unsafe { fork() } {
        Err(e) => {
            eprintln!("lanyard: starting the command: {e}");
            EXIT_SETUP_FAILED
        }
        Ok(ForkResult::Child) => {
            // The command starts with no signal blocked, as from a shell.
            let _ = nix::sys::signal::pthread_sigmask(
                SigmaskHow::SIG_SETMASK,
                Some(&SigSet::empty()),
                None,
            );
            let code = super::ns::exec(argv);
            // SAFETY: as above.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => reap_until(child),
    }
}

/// A /proc of the namespace's own, over the inherited one (the mount
/// namespace is the container's, private): there the command's PIDs mean
/// its own processes (`/proc/$$` is its shell, not the host's PID 2), as
/// in docker. Where the kernel refuses (a /proc partly masked by an outer
/// sandbox cannot be mounted afresh from a user namespace), the host's
/// stays, with a warning.
fn mount_own_proc() {
    use nix::mount::{mount, MsFlags};
    if let Err(e) = mount(
        Some("proc"),
        "/proc",
        Some("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        None::<&str>,
    ) {
        eprintln!("lanyard: warning: /proc stays the host's (mounting the container's: {e})");
    }
}

/// The init's loop: reaps every child (the command, and the orphans the
/// namespace's processes leave to PID 1), passes signals on to the
/// command, and returns the command's exit code once it has exited.
fn reap_until(command: Pid) -> i32 {
    let set = forwarded_set();
    loop {
        loop {
            match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => break,
                Ok(st) if st.pid() == Some(command) => {
                    if let Some(code) = exit_code(st) {
                        return code;
                    }
                }
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                // No child at all: the command is gone unseen (it cannot
                // be: it is ours until reaped here).
                Err(_) => return EXIT_SETUP_FAILED,
            }
        }
        forward_one(&set, command);
    }
}

/// Result of waiting on a child, as a shell exit code.
pub fn exit_code(status: WaitStatus) -> Option<i32> {
    match status {
        WaitStatus::Exited(_, code) => Some(code),
        WaitStatus::Signaled(_, sig, _) => Some(128 + sig as i32),
        _ => None,
    }
}
