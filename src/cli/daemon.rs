//! `lanyard daemon`: the arguments, then `daemon::run`.

use std::path::PathBuf;

use clap::Args;

use lanyard::daemon::{self, DaemonError, EXIT_USAGE};

use super::{SandboxArg, SocketArg};

#[derive(Args)]
pub(super) struct DaemonArgs {
    /// Config file (default: the embedded configs/default.toml).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data-path threads (overrides `[dataplane] threads`; 0: one per CPU, at most 8).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(0..=lanyard::dataplane::MAX_SHARDS as i64))]
    threads: Option<u16>,
    /// Serve every counter in the Prometheus text format at http://ADDR/metrics: a loopback HOST:PORT or unix:PATH (overrides `[daemon] metrics`; default: off)
    #[arg(long, value_name = "ADDR")]
    metrics: Option<lanyard::metrics::MetricsAddr>,
    /// Write every frame the switch passes, from the start, to FILE (pcapng)
    #[arg(long, value_name = "FILE")]
    pcap: Option<PathBuf>,
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    sandbox: SandboxArg,
}

pub(super) fn daemon(a: DaemonArgs) -> u8 {
    let mut config = match daemon::load_config(a.config.as_deref()) {
        Ok(c) => c,
        Err(message) => {
            eprintln!("lanyard: {message}");
            return EXIT_USAGE;
        }
    };
    if let Some(m) = a.sandbox.mode() {
        config.daemon.sandbox = m;
    }
    if let Some(m) = a.metrics {
        config.daemon.metrics = Some(m);
    }
    if let Some(t) = a.threads {
        config.dataplane.threads = t as usize;
    }
    match daemon::run(&config, a.socket.socket.as_deref(), a.pcap.as_deref()) {
        Ok(()) => 0,
        // Logged as the daemon shut down.
        Err(e @ DaemonError::DataPathStopped) => e.exit_code(),
        Err(e) => {
            eprintln!("lanyard: {e}");
            e.exit_code()
        }
    }
}
