//! Following the host's resolv.conf: when `[dns] upstream` names no
//! resolvers, the embedded DNS forwards to the nameservers of the host's
//! resolv.conf, and those change under a running daemon — a VPN comes up,
//! a laptop joins another network, NetworkManager, dhclient or
//! systemd-resolved rewrites the file. A thread of the control plane reads
//! the file every [`POLL`] and, when its text changed, gives the data path
//! the new list ([`Upstreams::set`]); nothing is restarted, and flows are
//! untouched. A rewrite caught half-done, or a file with no nameserver
//! left, keeps the list in use (with a warning) rather than leave
//! containers with no resolver at all; the next change is taken as usual.
//!
//! Who reads: a sandboxed daemon's Landlock rule holds the file's inode,
//! and those tools rename a new file over the old one, so the daemon asks
//! its unconfined helper spawner, which reads that one path and nothing
//! else (`container::spawner`). A process without a spawner (`run`'s
//! embedded switch, the slirp4netns mode) reads the file itself: it
//! follows a file rewritten in place, and says so when it cannot open a
//! replaced one.

use std::path::{Path, PathBuf};
use std::sync::Weak;
use std::time::Duration;

use super::Daemon;
use crate::dns::{parse_resolv_conf, Upstreams};
use crate::log;

/// How often the file is looked at: a change is in use within this.
pub const POLL: Duration = Duration::from_secs(2);

/// The file's text now: through the spawner when this process has one.
fn read(path: &Path) -> std::io::Result<String> {
    match crate::container::spawner::read_resolv_conf() {
        Some(r) => r,
        None => std::fs::read_to_string(path),
    }
}

/// Starts the watcher of `path` for `upstreams`; it ends with the daemon.
pub fn watch(daemon: Weak<Daemon>, path: PathBuf, upstreams: Upstreams) -> std::io::Result<()> {
    let mut last = read(&path).ok();
    let mut warned = false;
    std::thread::Builder::new()
        .name("lanyard-resolv".into())
        .spawn(move || loop {
            std::thread::sleep(POLL);
            match daemon.upgrade() {
                Some(d) if !d.stopping.load(std::sync::atomic::Ordering::Relaxed) => {}
                _ => return,
            }
            let text = match read(&path) {
                Ok(t) => t,
                Err(e) => {
                    if !warned {
                        log::warn!(
                            "{}: {e}: the embedded DNS keeps forwarding to {}",
                            path.display(),
                            show(&upstreams.get())
                        );
                        warned = true;
                    }
                    continue;
                }
            };
            warned = false;
            if last.as_deref() == Some(text.as_str()) {
                continue;
            }
            last = Some(text.clone());
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
