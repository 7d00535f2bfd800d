//! Probes: what `lanyard sandbox` asks a running daemon to try, so that a
//! user (and the tests) can see the sandbox refuse, in the daemon's own
//! threads, what it is meant to refuse — and allow what it must allow.
//!
//! Every probe is harmless whichever way it goes: a file opened is closed
//! (and one created removed), a socket or mapping made is closed, and the
//! calls that would start or replace a process are made with arguments
//! the kernel rejects (`clone` with `CLONE_SIGHAND` but not `CLONE_VM` is
//! `EINVAL`; `execveat` of an empty path is `ENOENT`), so only the
//! sandbox can answer them `EPERM`. `unshare(0)` changes nothing.

use std::ffi::CString;
use std::io;
use std::path::Path;

use serde::Serialize;

/// One probe's outcome.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Probe {
    pub probe: String,
    /// What the sandbox is meant to do with it.
    pub when_sandboxed: &'static str,
    /// `allowed`, or `refused (ERRNO)`.
    pub outcome: String,
}

/// The errno of the last failed call, as its name.
fn errno_name(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(libc::EPERM) => "EPERM".into(),
        Some(libc::EACCES) => "EACCES".into(),
        Some(n) => format!("errno {n}"),
        None => e.to_string(),
    }
}

/// A call the sandbox refuses with `refused_by` (EPERM: seccomp; EACCES:
/// Landlock); any other result means it let the call through.
fn outcome(rc: i64, refused_by: &[i32]) -> String {
    if rc >= 0 {
        return "allowed".into();
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(n) if refused_by.contains(&n) => format!("refused ({})", errno_name(&e)),
        // The kernel itself answered (EINVAL, ENOENT): the sandbox let it by.
        _ => format!("allowed (the kernel answered {})", errno_name(&e)),
    }
}

fn open(path: &Path, flags: i32) -> i64 {
    let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) else {
        return -1;
    };
    // SAFETY: open with a NUL-terminated path; the fd is closed at once.
    let fd = unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o600) };
    if fd >= 0 {
        // SAFETY: the fd was just opened here.
        unsafe { libc::close(fd) };
        if flags & libc::O_CREAT != 0 {
            // SAFETY: unlink of the probe file made just now.
            unsafe { libc::unlink(c.as_ptr()) };
        }
    }
    fd as i64
}

/// Runs every probe; `write_dir` is the directory the daemon may write in.
pub fn run(write_dir: Option<&Path>) -> Vec<Probe> {
    let mut out = Vec::new();
    let mut probe = |what: String, when_sandboxed: &'static str, o: String| {
        out.push(Probe {
            probe: what,
            when_sandboxed,
            outcome: o,
        })
    };
    let fs_refusal = &[libc::EACCES, libc::EPERM];
    let seccomp = &[libc::EPERM];
    let pid = std::process::id();
    probe(
        "read /etc/passwd".into(),
        "refused",
        outcome(open(Path::new("/etc/passwd"), libc::O_RDONLY), fs_refusal),
    );
    let tmp = std::env::temp_dir();
    let outside = tmp.join(format!(".lanyard-probe-{pid}"));
    probe(
        format!("create a file in {}", tmp.display()),
        "refused",
        outcome(
            open(&outside, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY),
            fs_refusal,
        ),
    );
    if let Some(dir) = write_dir {
        probe(
            format!("create a file in {}", dir.display()),
            "allowed",
            outcome(
                open(
                    &dir.join(format!(".probe-{pid}")),
                    libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY,
                ),
                fs_refusal,
            ),
        );
    }
    // SAFETY: socket(2); the fd is closed at once.
    let s = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if s >= 0 {
        // SAFETY: just opened.
        unsafe { libc::close(s) };
    }
    probe(
        "open a netlink socket".into(),
        "refused",
        outcome(s as i64, seccomp),
    );
    // SAFETY: an invalid flag set (CLONE_SIGHAND needs CLONE_VM): the
    // kernel refuses it (EINVAL) before making anything.
    let rc = unsafe { libc::syscall(libc::SYS_clone, libc::CLONE_SIGHAND, 0, 0, 0, 0) };
    probe(
        "start a process (clone without CLONE_THREAD)".into(),
        "refused",
        outcome(rc, seccomp),
    );
    // SAFETY: an empty path without AT_EMPTY_PATH: ENOENT, nothing runs.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_execveat,
            -1,
            c"".as_ptr(),
            std::ptr::null::<*const libc::c_char>(),
            std::ptr::null::<*const libc::c_char>(),
            0,
        )
    };
    probe(
        "execute a program (execveat)".into(),
        "refused",
        outcome(rc, seccomp),
    );
    // SAFETY: unshare of nothing changes nothing.
    let rc = unsafe { libc::unshare(0) };
    probe(
        "enter new namespaces (unshare)".into(),
        "refused",
        outcome(rc as i64, seccomp),
    );
    // SAFETY: an anonymous mapping, unmapped at once.
    let m = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            4096,
            libc::PROT_READ | libc::PROT_EXEC,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    let rc = if m == libc::MAP_FAILED {
        -1
    } else {
        // SAFETY: the mapping made just above.
        unsafe { libc::munmap(m, 4096) };
        0
    };
    probe(
        "map executable memory".into(),
        "refused",
        outcome(rc, seccomp),
    );
    // SAFETY: getpid cannot fail; the probe is of the call itself.
    let rc = unsafe { libc::getpid() };
    probe(
        "read its own pid (getpid)".into(),
        "allowed",
        outcome(rc as i64, seccomp),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unconfined_everything_is_let_through() {
        // The test process has no sandbox: every probe must say so.
        let dir = std::env::temp_dir();
        for p in run(Some(&dir)) {
            assert!(p.outcome.starts_with("allowed"), "{p:?}");
        }
    }
}
