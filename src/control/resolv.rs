//! Following the host's resolv.conf: when `[dns] upstream` names no
//! resolvers, the embedded DNS forwards to the nameservers of the host's
//! resolv.conf, and those change under a running daemon — a VPN comes up,
//! a laptop joins another network, NetworkManager or systemd-resolved
//! rewrites the file. A thread of the control plane looks at the file
//! every [`POLL`] (its identity and mtime, following symlinks: these tools
//! replace the file by renaming a new one over it, or repoint a link) and,
//! when it changed, reads it again and gives the data path the new list
//! ([`Upstreams::set`]); nothing is restarted, and flows are untouched.
//! A rewrite caught half-done, or a file with no nameserver left, keeps
//! the list in use (with a warning) rather than leave containers with no
//! resolver at all; the next change is taken as usual.

use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::{Duration, SystemTime};

use super::Daemon;
use crate::dns::{parse_resolv_conf, Upstreams};
use crate::log;

/// How often the file is looked at: a change is in use within this.
pub const POLL: Duration = Duration::from_secs(2);

/// What tells one version of the file from another.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: Option<SystemTime>,
}

fn seen(path: &Path) -> Option<Seen> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some(Seen {
        dev: m.dev(),
        ino: m.ino(),
        len: m.len(),
        mtime: m.modified().ok(),
    })
}

/// The directories the watcher reads in, for the sandbox: the file's own
/// and, when it is a link, its target's. Landlock rules hold inodes, and
/// a file replaced by a rename is a new inode, so the rule is on the
/// directory (its other files were readable to the user anyway).
pub fn read_dirs(path: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = path.parent().map(Path::to_path_buf).into_iter().collect();
    if let Ok(real) = std::fs::canonicalize(path) {
        if let Some(d) = real.parent() {
            if !dirs.iter().any(|x| x == d) {
                dirs.push(d.to_path_buf());
            }
        }
    }
    dirs
}

/// Starts the watcher of `path` for `upstreams`; it ends with the daemon.
pub fn watch(daemon: Weak<Daemon>, path: PathBuf, upstreams: Upstreams) -> std::io::Result<()> {
    let mut last = seen(&path);
    std::thread::Builder::new()
        .name("lanyard-resolv".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            match daemon.upgrade() {
                Some(d) if !d.stopping.load(std::sync::atomic::Ordering::Relaxed) => {}
                _ => return,
            }
            let now = seen(&path);
            if now == last {
                continue;
            }
            last = now;
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let list = parse_resolv_conf(&text);
            if list.is_empty() {
                log::warn!(
                    "{} changed and names no nameserver: the embedded DNS keeps forwarding to {}",
                    path.display(),
                    show(&upstreams.get())
                );
                continue;
            }
            if upstreams.set(list.clone()) {
                log::info!(
                    "{} changed: the embedded DNS now forwards to {}",
                    path.display(),
                    show(&list)
                );
            }
        })?;
    Ok(())
}

fn show(list: &[std::net::SocketAddr]) -> String {
    if list.is_empty() {
        return "nothing".into();
    }
    list.iter()
        .map(|a| a.ip().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
