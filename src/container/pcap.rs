//! `lanyard run --pcap FILE`: everything the container's ports pass,
//! from their first frame, written to FILE as pcapng (pasta's `--pcap`).
//! With an embedded switch the capture is this process's own; with a
//! daemon it is one asked for on a second connection, for the container's
//! ports. Either way a thread writes the file, message by message, and is
//! stopped (and waited for, briefly) when `run` ends.

use std::fs::File;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::control::capture::{receive, CaptureRequest};
use crate::control::client::Client;
use crate::control::{Daemon, Request};

/// The writing thread; stopped when dropped.
pub struct PcapWriter {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl PcapWriter {
    /// Captures everything of the embedded switch `d` into `file`.
    pub fn embedded(d: &Arc<Daemon>, mut file: File) -> Result<PcapWriter, String> {
        let capture = d
            .capture_start(&CaptureRequest::default())
            .map_err(|e| format!("--pcap: {}", e.message))?;
        let stop = Arc::new(AtomicBool::new(false));
        let (s, d) = (stop.clone(), d.clone());
        let thread = std::thread::Builder::new()
            .name("lanyard-pcap".into())
            .spawn(move || {
                let _ = capture.run(&d, &mut file, false, || s.load(Ordering::Relaxed));
            })
            .map_err(|e| format!("--pcap: {e}"))?;
        Ok(PcapWriter {
            stop,
            thread: Some(thread),
        })
    }

    /// Asks the daemon at `socket` for the ports of `container` into
    /// `file`.
    pub fn via_daemon(
        socket: &std::path::Path,
        container: &str,
        mut file: File,
    ) -> Result<PcapWriter, String> {
        let mut c = Client::connect(socket).map_err(|e| format!("--pcap: {e}"))?;
        c.request(
            &Request::Capture(CaptureRequest {
                port: Some(container.to_string()),
                ..CaptureRequest::default()
            }),
            &[],
        )
        .map_err(|e| format!("--pcap: {e}"))?;
        let (mut stream, pending) = c.into_stream();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("lanyard-pcap".into())
            .spawn(move || {
                let _ = receive(&mut stream, pending, &mut file, &s);
            })
            .map_err(|e| format!("--pcap: {e}"))?;
        Ok(PcapWriter {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for PcapWriter {
    fn drop(&mut self) {
        // What the last 200 ms brought is written first.
        std::thread::sleep(Duration::from_millis(250));
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let until = Instant::now() + Duration::from_secs(1);
            while !t.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                let _ = t.join();
            }
        }
    }
}
