//! Thin, documented wrappers over the Linux system interfaces lanyard uses
//! that neither `libc` nor `nix` wrap the way we need: TUN/TAP and
//! interface ioctls, AF_PACKET options, and fd passing. Every `unsafe`
//! block in the crate lives here or next to a single syscall with its
//! invariant stated.

pub mod fdpass;
pub mod ifreq;
pub mod rtnl;
pub mod sock;

use std::io;
use std::os::fd::RawFd;

/// Retries a syscall returning -1/errno on EINTR.
pub fn cvt_retry<F: FnMut() -> isize>(mut f: F) -> io::Result<usize> {
    loop {
        let r = f();
        if r >= 0 {
            return Ok(r as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Sets `O_NONBLOCK` on a descriptor.
pub fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: as above.
    if unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Fills `buf` from the kernel's random source (ids, not keys).
pub fn random_bytes(buf: &mut [u8]) {
    let mut filled = 0;
    while filled < buf.len() {
        // SAFETY: getrandom writes at most the given length into the buffer.
        let r =
            unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), buf.len() - filled, 0) };
        if r <= 0 {
            // getrandom only fails on EINTR/EAGAIN at boot; fall back to the
            // clock rather than fail an id.
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            for (i, b) in buf[filled..].iter_mut().enumerate() {
                *b = (t >> ((i % 16) * 8)) as u8 ^ (i as u8);
            }
            return;
        }
        filled += r as usize;
    }
}

/// A 64-hex-digit random id, as docker uses for networks and containers.
pub fn random_id() -> String {
    let mut b = [0u8; 32];
    random_bytes(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Raises the soft limit on open files to the hard limit (each container
/// costs the daemon a TAP fd and a control connection); returns the new
/// soft limit.
pub fn raise_fd_limit() -> u64 {
    // SAFETY: getrlimit/setrlimit with a valid rlimit struct.
    unsafe {
        let mut r: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 0;
        }
        if r.rlim_cur < r.rlim_max {
            let want = libc::rlimit {
                rlim_cur: r.rlim_max,
                rlim_max: r.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
        r.rlim_cur
    }
}

/// A signal taken by [`wait_signal`].
#[derive(Debug, Clone, Copy)]
pub struct Caught {
    pub signal: i32,
    /// How it was sent (`si_code`): `SI_KERNEL` from the terminal, say.
    pub code: i32,
}

/// Waits up to `timeout` for one of the (blocked) signals in `set`; `None`
/// when none came.
pub fn wait_signal(set: &nix::sys::signal::SigSet, timeout: std::time::Duration) -> Option<Caught> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs() as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: siginfo_t is plain data; sigtimedwait fills it.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    // SAFETY: valid set, info and timeout pointers for the call.
    let sig = unsafe { libc::sigtimedwait(set.as_ref(), &mut info, &ts) };
    (sig > 0).then_some(Caught {
        signal: sig,
        code: info.si_code,
    })
}
