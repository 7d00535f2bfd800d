//! The fuzz targets' host for the NAT and the DNS: `host::FakeIo`, which makes
//! every decision (from the script the input feeds it), hands out every
//! descriptor and logs every connect and registration, wrapped to keep
//! also what was sent with `send_to` (the DNS forwarder's upstream
//! queries) and what `recv_from` returned (datagram and source), for the
//! `dns` target to answer and to check answers against.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use lanyard::host::{FakeHandle, FakeIo, HostIo, LocalService, PollToken};
use mio::Interest;

/// Datagrams kept each way, at most.
pub const KEEP: usize = 64;

#[derive(Default)]
struct Shared {
    sent_to: Vec<(Vec<u8>, SocketAddr)>,
    send_to_ok: u64,
    send_to_calls: u64,
    received: Vec<(Vec<u8>, SocketAddr)>,
}

pub struct LoggedIo {
    inner: FakeIo,
    shared: Arc<Mutex<Shared>>,
}

/// The harness's end of a [`LoggedIo`].
#[derive(Clone)]
pub struct IoLog {
    pub fake: FakeHandle,
    shared: Arc<Mutex<Shared>>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn keep(log: &mut Vec<(Vec<u8>, SocketAddr)>, d: &[u8], addr: SocketAddr) {
    if log.len() >= KEEP {
        log.remove(0);
    }
    log.push((d.to_vec(), addr));
}

impl LoggedIo {
    pub fn new() -> io::Result<(LoggedIo, IoLog)> {
        let (inner, fake) = FakeIo::new()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        Ok((
            LoggedIo {
                inner,
                shared: shared.clone(),
            },
            IoLog { fake, shared },
        ))
    }
}

impl IoLog {
    /// Bytes for the next socket calls' decisions, after those fed before.
    pub fn feed(&self, bytes: &[u8]) {
        self.fake.feed(bytes);
    }

    /// How many datagrams `send_to` sent, and how many calls there were
    /// (failed ones too).
    #[allow(dead_code)] // the dns target's
    pub fn sent_to_counts(&self) -> (u64, u64) {
        let s = lock(&self.shared);
        (s.send_to_ok, s.send_to_calls)
    }

    /// The last `n` datagrams `send_to` sent (at most `KEEP`), with where
    /// they went.
    #[allow(dead_code)] // the dns target's
    pub fn last_sent(&self, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let s = lock(&self.shared);
        s.sent_to[s.sent_to.len().saturating_sub(n)..].to_vec()
    }

    /// The datagrams `recv_from` returned since the last call (the last
    /// `KEEP`), with their sources.
    #[allow(dead_code)] // the dns target's
    pub fn take_received(&self) -> Vec<(Vec<u8>, SocketAddr)> {
        std::mem::take(&mut lock(&self.shared).received)
    }
}

impl HostIo for LoggedIo {
    fn tcp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        self.inner.tcp_connect(to)
    }

    fn udp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        self.inner.udp_connect(to)
    }

    fn ping_socket(&mut self, v6: bool) -> io::Result<OwnedFd> {
        self.inner.ping_socket(v6)
    }

    fn connect(&mut self, fd: RawFd, to: SocketAddr) -> io::Result<()> {
        self.inner.connect(fd, to)
    }

    fn udp_socket(&mut self, v6: bool) -> io::Result<OwnedFd> {
        self.inner.udp_socket(v6)
    }

    fn accept(&mut self, listener: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
        self.inner.accept(listener)
    }

    fn dup(&mut self, fd: RawFd) -> io::Result<OwnedFd> {
        self.inner.dup(fd)
    }

    fn send(&mut self, fd: RawFd, buf: &[u8]) -> io::Result<usize> {
        self.inner.send(fd, buf)
    }

    fn send_segments(
        &mut self,
        fd: RawFd,
        buf: &[u8],
        segment: u16,
        to: Option<SocketAddr>,
    ) -> io::Result<usize> {
        self.inner.send_segments(fd, buf, segment, to)
    }

    fn send_to(&mut self, fd: RawFd, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        let r = self.inner.send_to(fd, buf, to);
        let mut s = lock(&self.shared);
        s.send_to_calls += 1;
        if r.is_ok() {
            s.send_to_ok += 1;
            keep(&mut s.sent_to, buf, to);
        }
        r
    }

    fn recv(&mut self, fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        self.inner.recv(fd, buf, flags)
    }

    fn recv_from(&mut self, fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let r = self.inner.recv_from(fd, buf);
        if let Ok((n, from)) = &r {
            keep(&mut lock(&self.shared).received, &buf[..*n], *from);
        }
        r
    }

    fn take_error(&mut self, fd: RawFd) -> io::Result<Option<io::Error>> {
        self.inner.take_error(fd)
    }

    fn set_peek_off(&mut self, fd: RawFd, off: u32) -> bool {
        self.inner.set_peek_off(fd, off)
    }

    fn send_buffer(&mut self, fd: RawFd) -> (usize, usize) {
        self.inner.send_buffer(fd)
    }

    fn shutdown_write(&mut self, fd: RawFd) {
        self.inner.shutdown_write(fd)
    }

    fn set_linger_zero(&mut self, fd: RawFd) {
        self.inner.set_linger_zero(fd)
    }

    fn local_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        self.inner.local_addr(fd)
    }

    fn register(&mut self, fd: RawFd, token: PollToken, interest: Interest) -> io::Result<()> {
        self.inner.register(fd, token, interest)
    }

    fn reregister(&mut self, fd: RawFd, token: PollToken, interest: Interest) {
        self.inner.reregister(fd, token, interest)
    }

    fn deregister(&mut self, fd: RawFd) {
        self.inner.deregister(fd)
    }

    /// The fake's address: the real service (the DNS-over-TCP server's
    /// listener thread) is never started.
    fn service_addr(&mut self, service: &dyn LocalService) -> Option<SocketAddr> {
        self.inner.service_addr(service)
    }
}
