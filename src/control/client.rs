//! The client side of the control socket, used by the CLI and by
//! `lanyard run` to hand its container's TAP to a running daemon.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::Path;

use serde_json::Value;

use super::proto::{ControlError, Event, Request, Response, MAX_REQUEST_LEN};
use crate::sys::fdpass::{peer_uid, send_with_fds};

pub struct Client {
    stream: UnixStream,
    pending: Vec<u8>,
    /// Events that came while a response was awaited.
    events: std::collections::VecDeque<Event>,
}

/// Why a request did not get an answer.
#[derive(Debug)]
pub enum ClientError {
    /// The connection failed or the daemon went away.
    Io(io::Error),
    /// The daemon answered with an error.
    Control(ControlError),
}

impl std::fmt::Display for ClientError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClientError::Io(e) => write!(f, "control socket: {e}"),
            ClientError::Control(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<io::Error> for ClientError {
    fn from(e: io::Error) -> Self {
        ClientError::Io(e)
    }
}

impl Client {
    /// Connects, and checks that the daemon at the other end runs as us (or
    /// root): `lanyard run` hands it a container's TAP, and a socket under
    /// /tmp could have been planted by another user to collect them.
    pub fn connect(path: &Path) -> io::Result<Client> {
        let stream = UnixStream::connect(path)?;
        let me = nix::unistd::geteuid().as_raw();
        let peer = peer_uid(&stream)?;
        if peer != me && peer != 0 {
            return Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!(
                    "the socket {} is served by uid {peer}, not by us (uid {me}); refusing to use it",
                    path.display()
                ),
            ));
        }
        Ok(Client {
            stream,
            pending: Vec::new(),
            events: std::collections::VecDeque::new(),
        })
    }

    /// The connection, and what was read past the last response: a
    /// capture's stream continues on it after its answer.
    pub fn into_stream(self) -> (UnixStream, Vec<u8>) {
        (self.stream, self.pending)
    }

    /// Sends a request (with `fds` attached) and waits for its response.
    pub fn request(&mut self, req: &Request, fds: &[RawFd]) -> Result<Value, ClientError> {
        let mut line = serde_json::to_vec(req).map_err(io::Error::other)?;
        if line.len() > MAX_REQUEST_LEN {
            // The daemon would close the connection; say why instead.
            return Err(ClientError::Control(ControlError::invalid(format!(
                "the request is {} bytes, more than the {MAX_REQUEST_LEN} a daemon takes (too many arguments)",
                line.len()
            ))));
        }
        line.push(b'\n');
        send_with_fds(self.stream.as_raw_fd(), &line, fds)?;
        let line = loop {
            let line = self.read_line()?;
            // An event, unasked, may come before the response.
            match serde_json::from_slice::<Event>(&line) {
                Ok(ev) => self.events.push_back(ev),
                Err(_) => break line,
            }
        };
        match serde_json::from_slice::<Response>(&line) {
            Ok(Response::Ok(v)) => Ok(v),
            Ok(Response::Error(e)) => Err(ClientError::Control(ControlError {
                kind: e.kind,
                message: e.message,
            })),
            Err(e) => Err(ClientError::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("malformed response: {e}"),
            ))),
        }
    }

    /// The next event the daemon sent, without waiting: `Ok(None)` when
    /// there is none yet; an error when the daemon closed the connection
    /// (it stopped, or was killed).
    pub fn poll_event(&mut self) -> io::Result<Option<Event>> {
        loop {
            if let Some(ev) = self.events.pop_front() {
                return Ok(Some(ev));
            }
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=pos).collect();
                if let Ok(ev) = serde_json::from_slice::<Event>(&line[..line.len() - 1]) {
                    self.events.push_back(ev);
                }
                continue;
            }
            let mut buf = [0u8; 4096];
            match crate::sys::sock::recv(self.stream.as_raw_fd(), &mut buf, 0) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the daemon closed the connection",
                    ))
                }
                Ok(n) => {
                    if self.pending.len() > MAX_REQUEST_LEN {
                        return Err(io::Error::new(io::ErrorKind::InvalidData, "event too long"));
                    }
                    self.pending.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) => return Err(e),
            }
        }
    }

    fn read_line(&mut self) -> io::Result<Vec<u8>> {
        let mut buf = [0u8; 16 * 1024];
        loop {
            if let Some(pos) = self.pending.iter().position(|b| *b == b'\n') {
                let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
                line.pop();
                return Ok(line);
            }
            // Responses (inspect of a large network) may be long, but not
            // without bound.
            if self.pending.len() > 256 * MAX_REQUEST_LEN {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "response too long",
                ));
            }
            let n = self.stream.read(&mut buf)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the daemon closed the connection",
                ));
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    /// Blocks until the daemon closes the connection (it stopped).
    pub fn raw_fd(&self) -> RawFd {
        self.stream.as_raw_fd()
    }
}
