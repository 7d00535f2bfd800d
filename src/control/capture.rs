//! Captures (`lanyard capture`, `daemon --pcap`, `run --pcap`): the
//! control plane's half. A request is checked (filter, format, scope,
//! bounds) and becomes a [`Capture`]: a [`Tap`] installed on every shard
//! and the writer that drains it into pcapng or pcap, to the client's
//! connection or to a file. The capture ends when its count is reached,
//! its reader goes away, or the daemon stops; dropping the `Capture`
//! takes the tap off the data path, so a capture never outlives its
//! reader.
//!
//! On the control socket, after the `ok` line, the connection carries the
//! file as messages: a 4-byte little-endian length, then that many bytes
//! of whole pcapng blocks (or pcap records), so a client stopped by a
//! signal ends its file on a whole record.

use std::collections::HashMap;
use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{ControlError, Daemon};
use crate::capture::{Filter, Format, OffloadComment, Record};
use crate::dataplane::tap::{Scope, Tap, TapReader};
use crate::dataplane::DataplaneHandle;
use crate::port::PortId;

/// Captures running at once, at most (each holds a pool of buffers).
pub const MAX_CAPTURES: usize = 4;
/// The largest snaplen asked for (tcpdump's default, 262144, is taken).
pub const MAX_SNAPLEN: u32 = 262_144;
/// Records written to the reader in one message, at most.
const BATCH: usize = 64;

/// What `lanyard capture` asks for.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(deny_unknown_fields)]
pub struct CaptureRequest {
    /// Only this network's ports (and those attached to it meanwhile).
    #[serde(default)]
    pub network: Option<String>,
    /// Only this container's ports (name or id prefix), or this attached
    /// interface's.
    #[serde(default)]
    pub port: Option<String>,
    /// A filter expression (`capture::filter`); empty: every frame.
    #[serde(default)]
    pub filter: String,
    /// Bytes kept of each frame; 0: all of it.
    #[serde(default)]
    pub snaplen: u32,
    /// Stop after this many records.
    #[serde(default)]
    pub count: Option<u64>,
    /// `pcapng` (the default) or `pcap`.
    #[serde(default)]
    pub format: Option<String>,
}

/// What a `--port` capture covers, to end it when all of it is gone.
enum Owner {
    Endpoint(String),
    Interface(String),
}

/// What a request covers: the tap's scope, the names its records give the
/// ports known now, and what a `--port` capture ends without.
struct Covered {
    scope: Scope,
    names: HashMap<PortId, String>,
    owners: Vec<Owner>,
}

/// A running capture: its tap on the data path and the writer's end.
pub struct Capture {
    tap: Arc<Tap>,
    reader: TapReader,
    format: Format,
    dp: DataplaneHandle,
    running: Arc<AtomicUsize>,
    /// Port → pcapng interface id, in the order they were first seen.
    interfaces: HashMap<PortId, u32>,
    names: HashMap<PortId, String>,
    /// `--port`'s endpoints or interface; empty: a capture of networks.
    owners: Vec<Owner>,
    /// Records written so far.
    written: u64,
    pub snaplen: u32,
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.dp.remove_tap(self.tap.id);
        // What it lost is said once, at its end (a record per frame dropped
        // would only add to what the writer could not keep up with).
        crate::log::info!(
            "capture {:016x} ended: {} records written, {} dropped (no free buffer: the reader was behind)",
            self.tap.id,
            self.written,
            self.tap.dropped.load(Ordering::Relaxed)
        );
        self.running.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Daemon {
    /// Starts a capture as `req` asks; nothing is started when it is
    /// refused.
    pub fn capture_start(&self, req: &CaptureRequest) -> Result<Capture, ControlError> {
        let filter = Filter::parse(&req.filter)
            .map_err(|e| ControlError::invalid(format!("filter: {e}")))?;
        let format: Format = match &req.format {
            Some(f) => f
                .parse()
                .map_err(|e| ControlError::invalid(format!("--format: {e}")))?,
            None => Format::Pcapng,
        };
        if req.snaplen > MAX_SNAPLEN {
            return Err(ControlError::invalid(format!(
                "--snaplen: {} is over {MAX_SNAPLEN}",
                req.snaplen
            )));
        }
        if req.count == Some(0) {
            return Err(ControlError::invalid("--count: must be at least 1"));
        }
        let Covered {
            scope,
            names,
            owners,
        } = self.capture_scope(req)?;
        let running = self.captures.clone();
        if running.fetch_add(1, Ordering::Relaxed) >= MAX_CAPTURES {
            running.fetch_sub(1, Ordering::Relaxed);
            return Err(ControlError::failed(format!(
                "{MAX_CAPTURES} captures are running already"
            )));
        }
        let mut id = [0u8; 8];
        crate::sys::random_bytes(&mut id);
        let (tap, reader) = Tap::new(
            u64::from_ne_bytes(id),
            scope,
            filter,
            req.snaplen as usize,
            req.count,
        );
        let tap = Arc::new(tap);
        let capture = Capture {
            snaplen: tap.snaplen() as u32,
            tap: tap.clone(),
            reader,
            format,
            dp: self.dp.clone(),
            running,
            interfaces: HashMap::new(),
            names,
            owners,
            written: 0,
        };
        // From here `capture`'s drop takes the tap off again.
        self.dp
            .add_tap(tap)
            .map_err(|e| ControlError::failed(format!("data path unavailable: {e}")))?;
        Ok(capture)
    }

    /// The ports a request covers, and the names its records will carry.
    fn capture_scope(&self, req: &CaptureRequest) -> Result<Covered, ControlError> {
        let reg = self.reg();
        let net = match &req.network {
            Some(n) => {
                let name = crate::config::resolve_network_name(n, |x| reg.network(x).is_some());
                Some(reg.network(name).ok_or_else(|| {
                    ControlError::invalid(format!("--network: no network named '{n}'"))
                })?)
            }
            None => None,
        };
        // Named now: a port gone before its first record is written keeps
        // its name in the file.
        let mut names: HashMap<PortId, String> = reg
            .endpoints
            .values()
            .map(|e| (e.port, e.label()))
            .collect();
        names.extend(reg.interfaces.iter().map(|(n, i)| (i.port, n.clone())));
        let mut owners = Vec::new();
        let scope = match &req.port {
            Some(p) => {
                let ports: Vec<PortId> = if let Some(i) = reg.interfaces.get(p) {
                    owners.push(Owner::Interface(p.clone()));
                    vec![i.port]
                } else {
                    let e = reg
                        .find_container(p)
                        .map_err(|e| ControlError::invalid(format!("--port: {e}")))?;
                    let eps: Vec<_> = reg
                        .endpoints_of(&e.container_id.clone())
                        .into_iter()
                        .filter(|x| net.is_none_or(|n| n.config.name == x.network))
                        .collect();
                    owners.extend(eps.iter().map(|x| Owner::Endpoint(x.id.clone())));
                    eps.iter().map(|x| x.port).collect()
                };
                if ports.is_empty() {
                    return Err(ControlError::invalid(format!(
                        "--port: '{p}' has no port on that network"
                    )));
                }
                Scope::Ports(ports)
            }
            None => match net {
                Some(n) => Scope::Network(n.dp),
                None => Scope::All,
            },
        };
        Ok(Covered {
            scope,
            names,
            owners,
        })
    }

    /// Whether what a `--port` capture covers is still attached: an
    /// endpoint (by its id: a port id may be reused) or an interface.
    fn still_attached(&self, owner: &Owner) -> bool {
        let reg = self.reg();
        match owner {
            Owner::Endpoint(id) => reg.endpoints.contains_key(id),
            Owner::Interface(name) => reg.interfaces.contains_key(name),
        }
    }

    /// The name a capture's records give port `id` (for ports attached
    /// after it started).
    fn port_label(&self, id: PortId) -> String {
        self.reg()
            .port_label(id)
            .unwrap_or_else(|| format!("port{}", id.0))
    }
}

impl Capture {
    /// The file's header.
    fn header(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.format.write_header(&mut out, self.snaplen, &[]);
        out
    }

    /// Writes records to `out` (the file's header first) until the count
    /// is reached, `out` fails (the reader went away: `Ok`), or `stop()`
    /// says so. `framed`: each write is a length-prefixed message (the
    /// control socket's stream); else the bytes as they are (a file).
    pub fn run(
        mut self,
        daemon: &Daemon,
        out: &mut dyn Write,
        framed: bool,
        mut stop: impl FnMut() -> bool,
    ) -> io::Result<()> {
        let mut buf = self.header();
        loop {
            if !buf.is_empty() {
                if send(out, &buf, framed).is_err() {
                    return Ok(());
                }
                buf.clear();
            }
            if self.tap.exhausted() && self.reader.records.is_empty() {
                return Ok(());
            }
            if stop() {
                return Ok(());
            }
            let first = match self.reader.records.recv_timeout(Duration::from_millis(200)) {
                Ok(r) => r,
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    // A capture of some ports ends when they are all gone
                    // (their containers exited), as tcpdump on a vanished
                    // interface does.
                    if !self.owners.is_empty()
                        && !self.owners.iter().any(|o| daemon.still_attached(o))
                    {
                        return Ok(());
                    }
                    continue;
                }
                Err(_) => return Ok(()),
            };
            let more: Vec<_> = self.reader.records.try_iter().take(BATCH - 1).collect();
            for rec in std::iter::once(first).chain(more) {
                self.write_record(daemon, &mut buf, &rec);
                let _ = self.reader.give_back.try_send(rec.data);
            }
        }
    }

    fn write_record(
        &mut self,
        daemon: &Daemon,
        buf: &mut Vec<u8>,
        rec: &crate::dataplane::tap::Captured,
    ) {
        let iface = match self.interfaces.get(&rec.port) {
            Some(i) => *i,
            None => {
                let i = self.interfaces.len() as u32;
                self.interfaces.insert(rec.port, i);
                let name = self
                    .names
                    .get(&rec.port)
                    .cloned()
                    .unwrap_or_else(|| daemon.port_label(rec.port));
                if self.format == Format::Pcapng {
                    crate::capture::pcapng::write_interface(buf, &name, self.snaplen);
                }
                i
            }
        };
        let comment = OffloadComment::of(&rec.vnet).map(|c| c.to_string());
        let r = Record {
            timestamp_ns: rec.timestamp_ns,
            data: &rec.data,
            original_len: rec.original_len,
            direction: Some(rec.direction),
            comment: comment.as_deref(),
        };
        self.format.write_record(buf, self.snaplen, iface, &r);
        self.written += 1;
    }
}

/// The client's end: copies a capture's messages from `stream` (after
/// `pending`, what was read with the answer) to `out`, each whole, until
/// the daemon ends the stream or `stop` is set (checked every 200 ms);
/// the bytes written.
pub fn receive(
    stream: &mut std::os::unix::net::UnixStream,
    mut pending: Vec<u8>,
    out: &mut dyn Write,
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<u64> {
    use std::io::Read;
    stream.set_read_timeout(Some(Duration::from_millis(200)))?;
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        while pending.len() >= 4 {
            let len = u32::from_le_bytes([pending[0], pending[1], pending[2], pending[3]]) as usize;
            if pending.len() < 4 + len {
                break;
            }
            out.write_all(&pending[4..4 + len])?;
            out.flush()?;
            bytes += len as u64;
            pending.drain(..4 + len);
        }
        if stop.load(Ordering::Relaxed) {
            return Ok(bytes);
        }
        match stream.read(&mut buf) {
            Ok(0) => return Ok(bytes),
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
}

fn send(out: &mut dyn Write, bytes: &[u8], framed: bool) -> io::Result<()> {
    if framed {
        out.write_all(&(bytes.len() as u32).to_le_bytes())?;
    }
    out.write_all(bytes)?;
    out.flush()
}
