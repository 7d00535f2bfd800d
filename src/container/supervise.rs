//! Supervising the container process: the signals a user sends to
//! `lanyard run` reach the command, and the command's exit status becomes
//! ours (128 + N when killed by signal N, as shells and docker report it).

use std::time::Duration;

use nix::sys::signal::{kill, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

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
        let Some(caught) = crate::sys::wait_signal(&set, Duration::from_millis(200)) else {
            continue;
        };
        if caught.signal == libc::SIGCHLD {
            continue;
        }
        // A signal from the terminal (Ctrl-C) already went to the whole
        // foreground process group, the command included: passing it on
        // would deliver it twice. Signals sent with kill(2) are passed on.
        if caught.code == libc::SI_KERNEL {
            continue;
        }
        if let Ok(s) = Signal::try_from(caught.signal) {
            let _ = kill(pid, s);
        }
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
