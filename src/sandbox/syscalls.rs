//! The seccomp allow-list: the system calls a switch makes after set-up,
//! grouped by who makes them, with argument checks where a call has a
//! mode the switch never uses and an attacker would want. Everything else
//! fails with `EPERM` (see the module above for why not kill).
//!
//! How the list was made: every end-to-end test runs its lanyards under
//! it (one and two data-path threads in CI); `LANYARD_SECCOMP_LOG=1`
//! makes unlisted calls succeed and be logged by the kernel instead
//! (`dmesg`: `type=1326 ... syscall=N`), which is how a missing call is
//! found. The BPF is compiled by `seccompiler` (rust-vmm's, Firecracker's).
//!
//! Argument checks:
//! - `clone` only with `CLONE_THREAD` (threads, never a process), and
//!   `clone3` answers `ENOSYS`, which makes glibc fall back to `clone`:
//!   seccomp cannot read `clone3`'s flags, which sit in memory. That
//!   answer is a filter of its own, installed first: the allow-list
//!   (installed last, and refusing `seccomp` itself) lets `clone3`
//!   through, and of two filters the kernel takes the stricter answer.
//! - `mmap` and `mprotect` never with `PROT_EXEC`: no new code.
//! - `socket` only of the families the switch uses: Unix (control),
//!   IPv4 and IPv6 (NAT, DNS, published ports), packet (uplinks); no
//!   netlink, so no changing the host's interfaces or routes;
//!   `socketpair` only of Unix sockets.
//! - `ioctl` only the requests it makes: non-blocking and close-on-exec,
//!   queue lengths, the TAP's offload settings, reading an interface's
//!   index, MTU and address.
//! - `prctl` only to name and read a thread's name.
//! - `tgkill` only within this process (glibc's `abort`); `kill` only to
//!   `run`'s own container.
//!
//! Not on the list, among others: `execve`, `execveat`, `fork`, `ptrace`,
//! `process_vm_*`, `mount`, `setns`, `unshare`, `bpf`, `perf_event_open`,
//! `keyctl`, `io_uring_*`, `userfaultfd`, module and reboot calls.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

use super::Role;

#[cfg(target_arch = "x86_64")]
const ARCH: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const ARCH: TargetArch = TargetArch::aarch64;

/// Calls allowed whatever their arguments.
const PLAIN: &[i64] = &[
    // Memory (mmap and mprotect have rules below).
    libc::SYS_brk,
    libc::SYS_munmap,
    libc::SYS_mremap,
    libc::SYS_madvise,
    // Threads and locks: Rust's std, glibc's pthreads, crossbeam, mio.
    libc::SYS_futex,
    libc::SYS_set_robust_list,
    libc::SYS_rseq,
    libc::SYS_sched_yield,
    libc::SYS_sched_getaffinity,
    libc::SYS_gettid,
    libc::SYS_getpid,
    libc::SYS_exit,
    libc::SYS_exit_group,
    // Signals: the main thread waits for SIGTERM/SIGINT/SIGHUP (and, in
    // `run`, SIGCHLD) synchronously.
    libc::SYS_rt_sigaction,
    libc::SYS_rt_sigprocmask,
    libc::SYS_rt_sigreturn,
    libc::SYS_rt_sigtimedwait,
    libc::SYS_sigaltstack,
    libc::SYS_restart_syscall,
    // Time and randomness (flow timers, DNS ids and source ports).
    libc::SYS_clock_gettime,
    libc::SYS_clock_getres,
    libc::SYS_gettimeofday,
    libc::SYS_clock_nanosleep,
    libc::SYS_getrandom,
    // Descriptors: frames, sockets, logs, and files in the runtime
    // directory (Landlock decides which paths).
    libc::SYS_read,
    libc::SYS_write,
    libc::SYS_readv,
    libc::SYS_writev,
    libc::SYS_pread64,
    libc::SYS_pwrite64,
    libc::SYS_close,
    libc::SYS_fcntl,
    libc::SYS_dup,
    libc::SYS_dup3,
    libc::SYS_lseek,
    libc::SYS_fstat,
    libc::SYS_newfstatat,
    libc::SYS_statx,
    libc::SYS_openat,
    libc::SYS_unlinkat,
    libc::SYS_mkdirat,
    libc::SYS_renameat,
    libc::SYS_renameat2,
    libc::SYS_getdents64,
    libc::SYS_ftruncate,
    libc::SYS_fsync,
    libc::SYS_fdatasync,
    libc::SYS_fchmod,
    // The poll loops and their wake-ups.
    libc::SYS_epoll_create1,
    libc::SYS_epoll_ctl,
    libc::SYS_epoll_pwait,
    libc::SYS_epoll_pwait2,
    libc::SYS_eventfd2,
    libc::SYS_pipe2,
    libc::SYS_ppoll,
    // Sockets (socket has a rule below): the control socket and its fd
    // passing, NAT flows, DNS, published ports, AF_PACKET uplinks.
    libc::SYS_bind,
    libc::SYS_listen,
    libc::SYS_accept,
    libc::SYS_accept4,
    libc::SYS_connect,
    libc::SYS_getsockname,
    libc::SYS_getpeername,
    libc::SYS_setsockopt,
    libc::SYS_getsockopt,
    libc::SYS_sendto,
    libc::SYS_recvfrom,
    libc::SYS_sendmsg,
    libc::SYS_recvmsg,
    libc::SYS_sendmmsg,
    libc::SYS_recvmmsg,
    libc::SYS_shutdown,
    // Who we are (the control socket checks its peer's uid).
    libc::SYS_getuid,
    libc::SYS_geteuid,
    libc::SYS_getgid,
    libc::SYS_getegid,
    libc::SYS_uname,
    libc::SYS_prlimit64,
];

/// The x86_64 forms glibc and std still use where aarch64 has only the
/// `*at` and `p*` forms.
#[cfg(target_arch = "x86_64")]
const PLAIN_X86: &[i64] = &[
    libc::SYS_open,
    libc::SYS_stat,
    libc::SYS_lstat,
    libc::SYS_mkdir,
    libc::SYS_rmdir,
    libc::SYS_unlink,
    libc::SYS_rename,
    libc::SYS_access,
    libc::SYS_readlink,
    libc::SYS_getdents,
    libc::SYS_poll,
    libc::SYS_epoll_wait,
    libc::SYS_pipe,
    libc::SYS_dup2,
    libc::SYS_nanosleep,
    libc::SYS_getrlimit,
];
#[cfg(not(target_arch = "x86_64"))]
const PLAIN_X86: &[i64] = &[];

/// What `run` adds: it waits for its container.
const RUN_ONLY: &[i64] = &[libc::SYS_wait4, libc::SYS_waitid];

/// The ioctl requests made after set-up. (Their type is `c_ulong` on glibc
/// and `c_int` elsewhere, hence the casts.)
#[allow(clippy::unnecessary_cast)]
const IOCTLS: &[u64] = &[
    libc::FIONBIO as u64,
    libc::FIOCLEX as u64,
    libc::FIONCLEX as u64,
    libc::FIONREAD as u64,
    libc::TIOCOUTQ as u64,
    libc::TCGETS as u64,
    libc::TUNSETOFFLOAD as u64,
    libc::TUNGETIFF as u64,
    libc::TUNGETFEATURES as u64,
    libc::TUNGETVNETHDRSZ as u64,
    libc::TUNSETVNETHDRSZ as u64,
    libc::SIOCGIFINDEX as u64,
    libc::SIOCGIFMTU as u64,
    libc::SIOCGIFHWADDR as u64,
    libc::SIOCGIFFLAGS as u64,
    libc::SIOCGIFNAME as u64,
];

const SOCKET_FAMILIES: &[i32] = &[
    libc::AF_UNIX,
    libc::AF_INET,
    libc::AF_INET6,
    libc::AF_PACKET,
];

fn cond(arg: u8, len: Len, op: Op, value: u64) -> SeccompCondition {
    SeccompCondition::new(arg, len, op, value).expect("argument index below 6")
}

fn rule(conds: Vec<SeccompCondition>) -> SeccompRule {
    SeccompRule::new(conds).expect("a rule with conditions")
}

/// One rule per allowed value of argument `arg`.
fn any_of(arg: u8, len: Len, values: impl IntoIterator<Item = u64>) -> Vec<SeccompRule> {
    values
        .into_iter()
        .map(|v| rule(vec![cond(arg, len.clone(), Op::Eq, v)]))
        .collect()
}

/// The rules of `role`: syscall number → the argument rules of which one
/// must match (empty: any arguments).
fn rules(role: Role) -> BTreeMap<i64, Vec<SeccompRule>> {
    let mut m: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    for &nr in PLAIN.iter().chain(PLAIN_X86) {
        m.insert(nr, Vec::new());
    }
    let no_exec = || {
        vec![rule(vec![cond(
            2,
            Len::Dword,
            Op::MaskedEq(libc::PROT_EXEC as u64),
            0,
        )])]
    };
    // Answered ENOSYS by the filter installed before this one.
    m.insert(libc::SYS_clone3, Vec::new());
    m.insert(libc::SYS_mmap, no_exec());
    m.insert(libc::SYS_mprotect, no_exec());
    m.insert(
        libc::SYS_clone,
        vec![rule(vec![cond(
            0,
            Len::Qword,
            Op::MaskedEq(libc::CLONE_THREAD as u64),
            libc::CLONE_THREAD as u64,
        )])],
    );
    m.insert(
        libc::SYS_socket,
        any_of(0, Len::Dword, SOCKET_FAMILIES.iter().map(|&f| f as u64)),
    );
    // `lanyard connect`: the socket to the helper the spawner starts.
    m.insert(
        libc::SYS_socketpair,
        any_of(0, Len::Dword, [libc::AF_UNIX as u64]),
    );
    m.insert(
        libc::SYS_ioctl,
        any_of(1, Len::Dword, IOCTLS.iter().copied()),
    );
    m.insert(
        libc::SYS_prctl,
        any_of(
            0,
            Len::Dword,
            [libc::PR_SET_NAME as u64, libc::PR_GET_NAME as u64],
        ),
    );
    // SAFETY: getpid cannot fail.
    let me = unsafe { libc::getpid() } as u64;
    m.insert(libc::SYS_tgkill, any_of(0, Len::Dword, [me]));
    if let Role::Run { container_pid } = role {
        for &nr in RUN_ONLY {
            m.insert(nr, Vec::new());
        }
        m.insert(
            libc::SYS_kill,
            any_of(0, Len::Dword, [container_pid as u32 as u64]),
        );
    }
    m
}

/// The allow-list, and the `clone3` → `ENOSYS` filter installed before
/// it.
fn programs(role: Role, log_only: bool) -> Result<(BpfProgram, BpfProgram, usize), String> {
    let why = |e: seccompiler::BackendError| format!("seccomp: {e}");
    let rules = rules(role);
    let n = rules.len();
    let refuse = if log_only {
        SeccompAction::Log
    } else {
        SeccompAction::Errno(libc::EPERM as u32)
    };
    let main: BpfProgram = SeccompFilter::new(rules, refuse, SeccompAction::Allow, ARCH)
        .map_err(why)?
        .try_into()
        .map_err(why)?;
    let mut c3 = BTreeMap::new();
    c3.insert(libc::SYS_clone3, Vec::new());
    let clone3: BpfProgram = SeccompFilter::new(
        c3,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        ARCH,
    )
    .map_err(why)?
    .try_into()
    .map_err(why)?;
    Ok((main, clone3, n))
}

/// Installs the allow-list on the calling thread (and those it starts).
pub fn install(role: Role) -> Result<String, String> {
    // A development aid, not a setting: find what the list misses.
    let log_only = std::env::var_os("LANYARD_SECCOMP_LOG").is_some_and(|v| v == "1");
    let (main, clone3, n) = programs(role, log_only)?;
    seccompiler::apply_filter(&clone3).map_err(|e| format!("seccomp: {e}"))?;
    seccompiler::apply_filter(&main).map_err(|e| format!("seccomp: {e}"))?;
    Ok(if log_only {
        format!("seccomp allow-list of {n} system calls, LOGGING ONLY (LANYARD_SECCOMP_LOG=1)")
    } else {
        format!("seccomp allow-list of {n} system calls (others fail with EPERM)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_roles_compile_and_run_adds_only_what_supervising_needs() {
        let (_, _, daemon) = programs(Role::Daemon, false).unwrap();
        let (_, _, run) = programs(Role::Run { container_pid: 42 }, false).unwrap();
        assert_eq!(run, daemon + RUN_ONLY.len() + 1, "wait4, waitid and kill");
        let d = rules(Role::Daemon);
        for forbidden in [
            libc::SYS_execve,
            libc::SYS_execveat,
            libc::SYS_ptrace,
            libc::SYS_mount,
            libc::SYS_setns,
            libc::SYS_unshare,
            libc::SYS_kill,
            libc::SYS_seccomp,
            libc::SYS_bpf,
        ] {
            assert!(
                !d.contains_key(&forbidden),
                "{forbidden} must not be allowed"
            );
        }
    }
}
