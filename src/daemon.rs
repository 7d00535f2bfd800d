//! The `lanyard daemon` process: the config a lanyard runs on (a file or
//! the embedded default, with `LANYARD_THREADS`), where its control socket
//! is, and the daemon's life: signals blocked before any thread starts, the
//! open-file limit raised, the socket bound, the switch started, the accept
//! thread, then waiting for SIGINT/SIGTERM/SIGHUP or a dead data-path
//! thread. The switch itself is `control::Daemon`; the socket's protocol is
//! `control::server`.

use std::fmt;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};

use crate::config::Config;
use crate::control::server::{self, default_socket_path};
use crate::control::Daemon;
use crate::dataplane::MAX_SHARDS;
use crate::log;

/// Exit code of a bad argument or config (clap's too).
pub const EXIT_USAGE: u8 = 2;
/// Exit code of a daemon (or management command) that failed.
pub const EXIT_FAILED: u8 = 1;

/// Loads the config file at `path`, or the embedded default, and applies
/// `LANYARD_THREADS`. The error is a usage error's message (exit 2).
pub fn load_config(path: Option<&Path>) -> Result<Config, String> {
    let mut config = match path {
        Some(p) => Config::load(p).map_err(|e| format!("config error: {e}"))?,
        None => Config::embedded(),
    };
    // As LANYARD_LOG does for the log level: one knob for every lanyard a
    // script (or a test run) starts, daemons and embedded switches alike.
    if let Ok(v) = std::env::var("LANYARD_THREADS") {
        match v.parse::<usize>() {
            Ok(n) if n <= MAX_SHARDS => config.dataplane.threads = n,
            _ => {
                return Err(format!(
                    "LANYARD_THREADS: '{v}' is not a thread count (0..={MAX_SHARDS}; 0: one per CPU, at most 8)"
                ));
            }
        }
    }
    Ok(config)
}

/// The control socket's path: the one given (`--socket`), else the
/// config's `daemon.socket`, else the per-user default.
pub fn socket_path(given: Option<&Path>, config: Option<&Config>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .or_else(|| config.and_then(|c| c.daemon.socket.clone()))
        .unwrap_or_else(default_socket_path)
}

/// Why the daemon stopped, or did not start.
#[derive(Debug)]
pub enum DaemonError {
    /// The control socket could not be bound; `field` names where its path
    /// came from (`--socket`, `daemon.socket`, or the default).
    Bind {
        field: &'static str,
        path: PathBuf,
        error: io::Error,
    },
    /// The metrics address (`--metrics`, `[daemon] metrics`) could not be
    /// bound.
    Metrics { addr: String, error: io::Error },
    /// `--pcap FILE` could not be made.
    Pcap { path: PathBuf, error: io::Error },
    /// The switch did not start.
    Start(io::Error),
    /// The accept thread could not be started.
    Serve(io::Error),
    /// A data-path thread died; the daemon logged it and shut down.
    DataPathStopped,
    /// `sandbox = "require"` and the kernel could not apply all of it.
    Sandbox(String),
}

impl DaemonError {
    /// The process's exit code: a bad socket path is a bad argument (2),
    /// the rest failures (1).
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Bind { .. } | DaemonError::Metrics { .. } | DaemonError::Pcap { .. } => {
                EXIT_USAGE
            }
            _ => EXIT_FAILED,
        }
    }
}

impl fmt::Display for DaemonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DaemonError::Bind { field, path, error } => {
                write!(f, "{field} {}: {error}", path.display())
            }
            DaemonError::Metrics { addr, error } => write!(f, "--metrics {addr}: {error}"),
            DaemonError::Pcap { path, error } => write!(f, "--pcap {}: {error}", path.display()),
            DaemonError::Start(e) => write!(f, "starting the switch: {e}"),
            DaemonError::Serve(e) => write!(f, "{e}"),
            DaemonError::DataPathStopped => write!(f, "a data-path thread has stopped"),
            DaemonError::Sandbox(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// Runs the daemon on `config` until a signal (Ok) or a dead data-path
/// thread, serving the control socket at `socket` (`--socket`) or where
/// `socket_path` puts it. Call from the main thread before any other
/// thread starts: the signals it waits for are blocked here, and the
/// threads it starts inherit the mask.
pub fn run(config: &Config, socket: Option<&Path>, pcap: Option<&Path>) -> Result<(), DaemonError> {
    log::set_level(config.daemon.log_level);
    let path = socket_path(socket, Some(config));
    // Threads started from here on inherit the mask; the main thread waits
    // for the signals synchronously.
    let mut signals = SigSet::empty();
    for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        signals.add(s);
    }
    let _ = signals.thread_block();
    let fds = crate::sys::raise_fd_limit();
    let mut fitted = config.clone();
    if let Some(warning) = fitted.fit_open_files(fds) {
        log::warn!("{warning}");
    }
    let config = &fitted;
    let needed = (config.limits.max_ports + config.limits.max_control_connections + 64) as u64;
    if fds < needed {
        log::warn!(
            "open-file limit {fds} is below what limits.max_ports and limits.max_control_connections need ({needed})"
        );
    }
    let listener = server::bind(&path).map_err(|error| DaemonError::Bind {
        // Name where the path came from, as for any bad argument.
        field: if socket.is_some() {
            "--socket"
        } else if config.daemon.socket.is_some() {
            "daemon.socket"
        } else {
            "the default control socket"
        },
        path: path.clone(),
        error,
    })?;
    // The metrics listener, bound before the sandbox as the socket is.
    let metrics = match &config.daemon.metrics {
        Some(addr) => match crate::metrics::MetricsListener::bind(addr) {
            Ok(l) => {
                // The port bound, when 0 asked the kernel for one.
                let shown = l
                    .local_addr()
                    .map_or_else(|| addr.clone(), crate::metrics::MetricsAddr::Tcp);
                Some((l, shown))
            }
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                return Err(DaemonError::Metrics {
                    addr: addr.to_string(),
                    error,
                });
            }
        },
        None => None,
    };
    // `--pcap FILE`, opened before the sandbox would refuse it.
    let pcap = match pcap {
        Some(p) => match std::fs::File::create(p) {
            Ok(f) => Some(f),
            Err(error) => {
                let _ = std::fs::remove_file(&path);
                return Err(DaemonError::Pcap {
                    path: p.to_path_buf(),
                    error,
                });
            }
        },
        None => None,
    };
    // Where `network create`'s networks are kept. Opened (made) before
    // the sandbox, which then lets the daemon write there.
    let state = match config
        .daemon
        .state_dir
        .clone()
        .or_else(crate::control::state::default_dir)
    {
        Some(dir) => match crate::control::state::StateFile::open(&dir) {
            Ok(s) => Some(s),
            Err(e) => {
                log::warn!(
                    "networks made with `network create` will not be kept across restarts: {e}"
                );
                None
            }
        },
        None => {
            log::warn!("no state directory (set [daemon] state_dir, XDG_STATE_HOME or HOME): networks made with `network create` will not be kept across restarts");
            None
        }
    };
    // `lanyard connect`'s helpers are started by a process forked now,
    // unconfined and single-threaded, that keeps none of the daemon's
    // descriptors but its own socket.
    // SAFETY: no thread has been started yet.
    unsafe { crate::container::spawner::start(&[listener.as_raw_fd()], &config.dns.resolv_conf) }
        .map_err(DaemonError::Start)?;
    // Confined before the switch's threads start (they inherit it), after
    // the socket is bound.
    let paths = crate::sandbox::Paths {
        // The host's resolv.conf, read at start (the spawner reads it
        // again when it changes: `control::resolv`).
        read: vec![config.dns.resolv_conf.clone()],
        write: path
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .chain(state.as_ref().map(|s| s.dir().to_path_buf()))
            .collect(),
    };
    let confined =
        match crate::sandbox::apply(config.daemon.sandbox, crate::sandbox::Role::Daemon, &paths) {
            Ok(r) => {
                if r.missing().is_empty() {
                    log::info!("{r}");
                } else {
                    log::warn!("{r}");
                }
                r.to_string()
            }
            Err(e) => {
                let _ = std::fs::remove_file(&path);
                return Err(DaemonError::Sandbox(e));
            }
        };
    let d = match Daemon::start(config) {
        Ok(d) => d,
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            return Err(DaemonError::Start(e));
        }
    };
    d.set_sandbox(confined, paths.write.first().cloned());
    if let Some(state) = state {
        for w in d.restore_networks(state) {
            log::warn!("{w}");
        }
    }
    if let Some(mut file) = pcap {
        let capture = d
            .capture_start(&crate::control::capture::CaptureRequest::default())
            .map_err(|e| DaemonError::Start(io::Error::other(e.message)))?;
        let c = d.clone();
        std::thread::Builder::new()
            .name("lanyard-pcap".into())
            .spawn(move || {
                let _ = capture.run(&c, &mut file, false, || c.is_stopping());
            })
            .map_err(DaemonError::Serve)?;
    }
    if let Some((listener, addr)) = metrics {
        let scraped = d.clone();
        std::thread::Builder::new()
            .name("lanyard-metrics".into())
            .spawn(move || listener.serve(|| scraped.metrics_text().map_err(|e| e.message)))
            .map_err(DaemonError::Serve)?;
        log::info!("metrics at {addr}");
    }
    let serving = d.clone();
    std::thread::Builder::new()
        .name("lanyard-accept".into())
        .spawn(move || server::serve(serving, listener))
        .map_err(DaemonError::Serve)?;
    log::info!(
        "listening on {} with {} network(s): {}",
        path.display(),
        config.networks.len(),
        config
            .networks
            .iter()
            .map(|n| format!("{} {} gw {}", n.name, n.subnet, n.gateway))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // A data path with a dead thread has ports nobody reads: stop serving
    // rather than accept containers onto it.
    let sig = loop {
        if let Some(c) = crate::sys::wait_signal(&signals, Duration::from_secs(1)) {
            break c.signal;
        }
        if !d.dataplane_running() {
            log::error!("a data-path thread has stopped; shutting down");
            let _ = std::fs::remove_file(&path);
            d.shutdown();
            return Err(DaemonError::DataPathStopped);
        }
    };
    log::info!(
        "{}: shutting down",
        Signal::try_from(sig)
            .map(|s| s.as_str())
            .unwrap_or("signal")
    );
    let _ = std::fs::remove_file(&path);
    d.shutdown();
    Ok(())
}
