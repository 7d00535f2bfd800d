//! The control socket: a Unix stream socket, mode 0600 in a 0700 directory
//! of the user's, serving only its owner (peer credentials are checked on
//! every connection). One thread per client: clients are few (one per
//! running container plus CLI queries) and bounded by
//! `limits.max_control_connections`.

use std::io::{self, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::proto::{ControlError, Request, Response, MAX_REQUEST_LEN};
use super::Daemon;
use crate::log;
use crate::sys::fdpass::{peer_uid, recv_with_fds};

/// The per-user default socket path: `$XDG_RUNTIME_DIR/lanyard/lanyard.sock`
/// when that directory belongs to us, else `/tmp/lanyard-$UID/lanyard.sock`.
pub fn default_socket_path() -> PathBuf {
    let uid = nix::unistd::geteuid().as_raw();
    if let Some(dir) = std::env::var_os("XDG_RUNTIME_DIR") {
        let dir = PathBuf::from(dir);
        if std::fs::metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid) {
            return dir.join("lanyard").join("lanyard.sock");
        }
    }
    PathBuf::from(format!("/tmp/lanyard-{uid}")).join("lanyard.sock")
}

/// Makes lanyard's per-user directory (0700), or checks that an existing
/// one is ours and closed to others, so nobody else can plant or read what
/// is in it. An existing directory is never chmod-ed: if it is open to
/// others, that is an error for its owner to fix.
pub fn prepare_dir(dir: &Path) -> io::Result<()> {
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create {}: {e}", dir.display()),
            ))
        }
    }
    let m = std::fs::symlink_metadata(dir)?;
    let uid = nix::unistd::geteuid().as_raw();
    if !m.is_dir() || m.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} exists but is not a directory owned by uid {uid}",
                dir.display()
            ),
        ));
    }
    if m.mode() & 0o077 != 0 {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is open to other users (mode {:o}); make it private with chmod 700",
                dir.display(),
                m.mode() & 0o777
            ),
        ));
    }
    Ok(())
}

/// Binds the control socket. A live daemon on the path is an error; a stale
/// socket file (no one listening) is replaced. The default path's directory
/// is made private; a path the user chose is used as it is (the socket
/// itself is 0600 either way).
pub fn bind(path: &Path) -> io::Result<UnixListener> {
    if path == default_socket_path() {
        if let Some(dir) = path.parent() {
            prepare_dir(dir)?;
        }
    }
    let why = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    if path.exists() {
        if UnixStream::connect(path).is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "a lanyard daemon is already listening on it",
            ));
        }
        std::fs::remove_file(path).map_err(|e| why("cannot remove the stale socket", e))?;
    }
    bind_private(path)
}

/// Binds a Unix socket only its owner may connect to: created 0600 from
/// the start (no window where it is open), and made 0600 again in case
/// the umask could not be relied on. The daemon's control socket and the
/// slirp4netns mode's API socket, which both change what the host exposes.
pub fn bind_private(path: &Path) -> io::Result<UnixListener> {
    let why = |what: &str, e: io::Error| io::Error::new(e.kind(), format!("{what}: {e}"));
    let old = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o177));
    let r = UnixListener::bind(path);
    nix::sys::stat::umask(old);
    let l = r.map_err(|e| why("cannot bind", e))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| why("cannot make it private", e))?;
    Ok(l)
}

/// Accepts clients until the listener fails; each gets a thread.
pub fn serve(daemon: Arc<Daemon>, listener: UnixListener) {
    let active = Arc::new(AtomicUsize::new(0));
    let me = nix::unistd::geteuid().as_raw();
    for conn in listener.incoming() {
        let mut stream = match conn {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends repeat at once: back off instead of
                // spinning (and flooding the log).
                log::warn!("control socket accept: {e}");
                std::thread::sleep(std::time::Duration::from_millis(100));
                continue;
            }
        };
        match peer_uid(&stream) {
            Ok(uid) if uid == me || uid == 0 => {}
            Ok(uid) => {
                log::warn!("refused control connection from uid {uid}");
                let _ = reply(
                    &mut stream,
                    ControlError::failed("permission denied").into(),
                );
                continue;
            }
            Err(e) => {
                log::warn!("control connection without credentials: {e}");
                continue;
            }
        }
        if active.load(Ordering::Relaxed) >= daemon.limits().max_control_connections {
            let _ = reply(
                &mut stream,
                ControlError::failed(
                    "too many control connections (limits.max_control_connections)",
                )
                .into(),
            );
            continue;
        }
        active.fetch_add(1, Ordering::Relaxed);
        let d = daemon.clone();
        let a = active.clone();
        let spawned = std::thread::Builder::new()
            .name("lanyard-control".into())
            .spawn(move || {
                // The slot is given back and the endpoints detached by
                // `Drop`, so even a panic in a handler cannot leak them.
                let mut c = Connection::new(d, stream, a);
                c.run();
            });
        if let Err(e) = spawned {
            active.fetch_sub(1, Ordering::Relaxed);
            log::warn!("cannot start a control thread: {e}");
        }
    }
}

fn reply(stream: &mut UnixStream, r: Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(&r).map_err(io::Error::other)?;
    line.push(b'\n');
    stream.write_all(&line)
}

/// One client. Endpoints it attached live as long as it stays connected:
/// when `lanyard run` exits (or is killed) the container's port is removed
/// and its address released.
struct Connection {
    daemon: Arc<Daemon>,
    stream: UnixStream,
    pending: Vec<u8>,
    fds: Vec<OwnedFd>,
    /// Containers attached through this connection: when it closes (their
    /// `run` exited or was killed), all their endpoints go, including those
    /// `lanyard connect` added later.
    containers: Vec<String>,
    active: Arc<AtomicUsize>,
    /// A capture this connection asked for: once answered, the connection
    /// carries its file.
    capture: Option<super::capture::Capture>,
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.cleanup();
        self.active.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Connection {
    fn new(daemon: Arc<Daemon>, stream: UnixStream, active: Arc<AtomicUsize>) -> Connection {
        Connection {
            daemon,
            stream,
            pending: Vec::new(),
            fds: Vec::new(),
            containers: Vec::new(),
            active,
            capture: None,
        }
    }

    fn run(&mut self) {
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            let (n, fds) = match recv_with_fds(self.stream.as_raw_fd(), &mut buf) {
                Ok(r) => r,
                Err(e) => {
                    log::debug!("control connection: {e}");
                    break;
                }
            };
            // Descriptors come with the request they belong to (clients
            // send one request and wait for its answer), and stay here
            // until that request's line is complete: a request longer than
            // one read keeps its TAP.
            self.fds.extend(fds);
            if self.fds.len() > crate::sys::fdpass::MAX_FDS {
                let _ = reply(
                    &mut self.stream,
                    ControlError::invalid("too many descriptors for one request").into(),
                );
                break;
            }
            if n == 0 {
                break;
            }
            self.pending.extend_from_slice(&buf[..n]);
            while let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                let resp = self.request(&line[..line.len() - 1]);
                // Descriptors the request did not claim are not kept.
                self.fds.clear();
                if reply(&mut self.stream, resp).is_err() {
                    return;
                }
                if let Some(c) = self.capture.take() {
                    self.stream_capture(c);
                    return;
                }
            }
            if self.pending.len() > MAX_REQUEST_LEN {
                let _ = reply(
                    &mut self.stream,
                    ControlError::invalid(format!("request longer than {MAX_REQUEST_LEN} bytes"))
                        .into(),
                );
                break;
            }
        }
    }

    fn request(&mut self, line: &[u8]) -> Response {
        let req: Request = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => return ControlError::invalid(format!("malformed request: {e}")).into(),
        };
        match req {
            Request::Attach(a) => {
                if self.fds.is_empty() {
                    return ControlError::invalid("attach must carry a TAP fd (SCM_RIGHTS)").into();
                }
                let fd = self.fds.remove(0);
                match self.daemon.attach_tap(a, fd) {
                    Ok(r) => {
                        if let Ok(w) = self.stream.try_clone() {
                            self.daemon.notify_on_detach(
                                &r.endpoint_id,
                                super::registry::Notifier(std::sync::Arc::new(w)),
                            );
                        }
                        if !self.containers.contains(&r.container_id) {
                            self.containers.push(r.container_id.clone());
                        }
                        match serde_json::to_value(r) {
                            Ok(v) => Response::Ok(v),
                            Err(e) => ControlError::failed(e.to_string()).into(),
                        }
                    }
                    Err(e) => e.into(),
                }
            }
            Request::Capture(c) => match self.daemon.capture_start(&c) {
                Ok(cap) => {
                    let v = serde_json::json!({ "snaplen": cap.snaplen });
                    self.capture = Some(cap);
                    Response::Ok(v)
                }
                Err(e) => e.into(),
            },
            other => match self.daemon.handle(&other) {
                Ok(v) => Response::Ok(v),
                Err(e) => e.into(),
            },
        }
    }

    /// Writes the capture's file to the client until it ends, the client
    /// goes away (a closed socket, seen between records), or the daemon
    /// stops.
    fn stream_capture(&mut self, c: super::capture::Capture) {
        let fd = self.stream.as_raw_fd();
        let daemon = self.daemon.clone();
        let Ok(mut out) = self.stream.try_clone() else {
            return;
        };
        let gone = move || daemon.is_stopping() || crate::sys::sock::peer_closed(fd);
        let d = self.daemon.clone();
        let _ = c.run(&d, &mut out, true, gone);
    }

    fn cleanup(&mut self) {
        for id in self.containers.drain(..) {
            self.daemon.detach_container(&id);
        }
    }
}
