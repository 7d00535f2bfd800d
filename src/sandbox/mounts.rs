//! An empty root: the process moves into a mount namespace of its own
//! whose root is an empty, read-only tmpfs holding only `/etc` and `/run`
//! (read-only binds of the host's: the resolver configuration and the
//! runtime directories), so that `/proc/PID/root` — and any path a bug
//! could be made to open — shows nothing else of the host: no home, no
//! `/var`, no `/tmp`.
//!
//! Used by the slirp4netns mode's `--enable-sandbox`, where engines and
//! slirp4netns's own tests expect exactly this view. The daemon does not
//! use it: its state directory lives under the user's home.
//!
//! It needs `CAP_SYS_ADMIN` in the process's user namespace (root, or
//! podman's helper, which runs as root of podman's namespace). Without it
//! the process first makes a user namespace of its own that maps only
//! itself (its uid and gid to the same ids), which any user may; the
//! sockets and the TAP it holds are unaffected. Either way nothing
//! propagates back: the new namespace's mounts are made private first.
//! Must run while the process has one thread (`unshare` of a user
//! namespace requires it).

use std::io;

fn err(what: &str) -> impl Fn(nix::errno::Errno) -> String + '_ {
    move |e| format!("empty root: {what}: {e}")
}

/// Moves the calling process into its empty root.
pub fn empty_root() -> Result<String, String> {
    use nix::mount::{mount, umount2, MntFlags, MsFlags};
    use nix::sched::{unshare, CloneFlags};
    let mut own_userns = false;
    if let Err(e) = unshare(CloneFlags::CLONE_NEWNS) {
        if e != nix::errno::Errno::EPERM {
            return Err(err("unshare(CLONE_NEWNS)")(e));
        }
        own_user_namespace()?;
        unshare(CloneFlags::CLONE_NEWNS).map_err(err("unshare(CLONE_NEWNS)"))?;
        own_userns = true;
    }
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(err("making / private"))?;
    let base = "/tmp";
    let hardened = MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC;
    mount(
        Some("tmpfs"),
        base,
        Some("tmpfs"),
        hardened,
        Some("size=64k,mode=0755"),
    )
    .map_err(err("mounting a tmpfs"))?;
    for d in ["etc", "run", "old"] {
        std::fs::create_dir(format!("{base}/{d}"))
            .map_err(|e| format!("empty root: mkdir {d}: {e}"))?;
    }
    for d in ["etc", "run"] {
        let (from, to) = (format!("/{d}"), format!("{base}/{d}"));
        mount(
            Some(from.as_str()),
            to.as_str(),
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )
        .map_err(err("binding /etc, /run"))?;
        mount(
            none,
            to.as_str(),
            none,
            MsFlags::MS_REMOUNT | MsFlags::MS_BIND | MsFlags::MS_RDONLY | hardened,
            none,
        )
        .map_err(err("making /etc, /run read-only"))?;
    }
    std::env::set_current_dir(base).map_err(|e| format!("empty root: chdir: {e}"))?;
    nix::unistd::pivot_root(".", "old").map_err(err("pivot_root"))?;
    std::env::set_current_dir("/").map_err(|e| format!("empty root: chdir /: {e}"))?;
    umount2("/old", MntFlags::MNT_DETACH).map_err(err("detaching the old root"))?;
    std::fs::remove_dir("/old").map_err(|e| format!("empty root: rmdir /old: {e}"))?;
    mount(
        none,
        "/",
        none,
        MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | hardened,
        none,
    )
    .map_err(err("making the root read-only"))?;
    Ok(format!(
        "an empty read-only root with /etc and /run{}",
        if own_userns {
            " (in a user namespace of its own)"
        } else {
            ""
        }
    ))
}

/// A user namespace mapping only the caller's own uid and gid, so that an
/// unprivileged process may make a mount namespace.
fn own_user_namespace() -> Result<(), String> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
        .map_err(err("unshare(CLONE_NEWUSER)"))?;
    let write = |path: &str, data: String| -> Result<(), String> {
        std::fs::write(path, data).map_err(|e: io::Error| format!("empty root: {path}: {e}"))
    };
    write("/proc/self/setgroups", "deny".into())?;
    write("/proc/self/uid_map", format!("{uid} {uid} 1"))?;
    write("/proc/self/gid_map", format!("{gid} {gid} 1"))?;
    Ok(())
}
