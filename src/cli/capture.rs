//! `lanyard capture`: the arguments, the request, and the file the daemon
//! streams back, written to `-w FILE` or stdout message by message (so an
//! interrupted capture ends on a whole record).

use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::Args;

use lanyard::control::capture::CaptureRequest;
use lanyard::control::Request;
use lanyard::daemon::{EXIT_FAILED, EXIT_USAGE};

use super::{connect, report_client_error, SocketArg};

#[derive(Args)]
pub(super) struct CaptureArgs {
    /// Only this network's ports (and those attached to it while the capture runs).
    #[arg(long)]
    network: Option<String>,
    /// Only this container's ports (name or id), or this attached interface's.
    #[arg(long, value_name = "CONTAINER|IFNAME")]
    port: Option<String>,
    /// Where the file goes: a path, or - for stdout (pipe it: `| tcpdump -r -`).
    #[arg(
        short = 'w',
        long = "write",
        value_name = "FILE|-",
        default_value = "-"
    )]
    write: String,
    /// Stop after COUNT frames.
    #[arg(short = 'c', long = "count", value_name = "COUNT", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,
    /// Bytes kept of each frame (0: all of it, the default).
    #[arg(short = 's', long, value_name = "N", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=262_144))]
    snaplen: u32,
    /// File format: pcapng (direction, interface names, GSO notes) or pcap.
    #[arg(long, value_name = "pcapng|pcap", default_value = "pcapng", value_parser = ["pcapng", "pcap"])]
    format: String,
    #[command(flatten)]
    socket: SocketArg,
    /// A filter, tcpdump-like: `arp`, `icmp`, `tcp port 80`, `host 172.17.0.2 and not udp`, ...
    #[arg(value_name = "FILTER")]
    filter: Vec<String>,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

pub(super) fn capture(a: CaptureArgs) -> u8 {
    use std::io::IsTerminal;
    let to_stdout = a.write == "-";
    if to_stdout && std::io::stdout().is_terminal() {
        eprintln!("lanyard: -w: stdout is a terminal; write to a file (-w FILE) or pipe it (-w - | tcpdump -r -)");
        return EXIT_USAGE;
    }
    let mut out: Box<dyn Write> = if to_stdout {
        Box::new(std::io::stdout().lock())
    } else {
        match std::fs::File::create(PathBuf::from(&a.write)) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("lanyard: -w {}: {e}", a.write);
                return EXIT_USAGE;
            }
        }
    };
    let req = Request::Capture(CaptureRequest {
        network: a.network,
        port: a.port,
        filter: a.filter.join(" "),
        snaplen: a.snaplen,
        count: a.count,
        format: Some(a.format),
    });
    let mut client = match connect(&a.socket) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(e) = client.request(&req, &[]) {
        return report_client_error(e);
    }
    // Interrupted (Ctrl-C, kill): the file ends after the last whole
    // message, and the daemon sees the connection close.
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
    let (mut stream, pending) = client.into_stream();
    let bytes = match lanyard::control::capture::receive(&mut stream, pending, &mut out, &STOP) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return 0,
        Err(e) => {
            eprintln!("lanyard: the capture stream: {e}");
            return EXIT_FAILED;
        }
    };
    if !to_stdout {
        eprintln!("lanyard: {bytes} bytes written to {}", a.write);
    }
    0
}
