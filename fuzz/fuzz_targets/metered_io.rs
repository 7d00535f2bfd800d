//! The fuzz targets' host for the NAT: `nat::host::FakeIo`, with its
//! script handed over one socket call at a time.
//!
//! `FakeIo` takes one script byte per decision, and 0xff once the script is
//! spent — but its read position moves on past the end while spent, so
//! bytes fed after a spell of benign answers would be skipped (as many as
//! the decisions taken while spent) and a seed's script would land on the
//! wrong calls. `MeteredIo` keeps the bytes fed in its own queue and, just
//! before each call, gives the fake exactly the bytes that call takes
//! (padded with 0xff when the queue runs out), so the fake never reads
//! past its end and every fed byte reaches the next calls in order. The
//! fake still makes every decision, hands out every descriptor and logs
//! every connect and registration.
//!
//! It also keeps what was sent with `send_to` (the DNS forwarder's
//! upstream queries) and what `recv_from` returned (datagram and source),
//! for the `dns` target to answer and to check answers against.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use lanyard::nat::host::{FakeHandle, FakeIo, HostIo};
use mio::Interest;

/// Datagrams kept from `send_to`, at most.
pub const KEEP_SENT: usize = 64;

#[derive(Default)]
struct Shared {
    queue: VecDeque<u8>,
    sent_to: Vec<(Vec<u8>, SocketAddr)>,
    send_to_ok: u64,
    send_to_calls: u64,
    received: Vec<(Vec<u8>, SocketAddr)>,
}

pub struct MeteredIo {
    inner: FakeIo,
    fake: FakeHandle,
    shared: Arc<Mutex<Shared>>,
}

/// The harness's end of a [`MeteredIo`].
#[derive(Clone)]
pub struct Meter {
    pub fake: FakeHandle,
    shared: Arc<Mutex<Shared>>,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MeteredIo {
    pub fn new() -> io::Result<(MeteredIo, Meter)> {
        let (inner, fake) = FakeIo::new()?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        Ok((
            MeteredIo {
                inner,
                fake: fake.clone(),
                shared: shared.clone(),
            },
            Meter { fake, shared },
        ))
    }

    /// Hands the fake the next `n` bytes of the queue (0xff past its end).
    fn give(&self, n: usize) {
        let bytes: Vec<u8> = {
            let mut s = lock(&self.shared);
            (0..n)
                .map(|_| s.queue.pop_front().unwrap_or(0xff))
                .collect()
        };
        self.fake.feed(&bytes);
    }

    /// The `i`-th byte the next call would read.
    fn peek(&self, i: usize) -> u8 {
        lock(&self.shared).queue.get(i).copied().unwrap_or(0xff)
    }

    /// What `FakeIo::recv` reads without MSG_TRUNC: a decision byte, and
    /// for data a length (2 bytes) and that many bytes, up to the buffer.
    fn recv_len(&self, buf_len: usize) -> usize {
        if self.peek(0) % 8 < 4 {
            let n = u16::from_be_bytes([self.peek(1), self.peek(2)]) as usize;
            3 + n.min(buf_len)
        } else {
            1
        }
    }
}

impl Meter {
    /// Bytes for the next socket calls, after those fed before.
    pub fn feed(&self, bytes: &[u8]) {
        lock(&self.shared).queue.extend(bytes.iter().copied());
    }

    /// How many datagrams `send_to` sent, and how many calls there were
    /// (failed ones too).
    #[allow(dead_code)] // the dns target's
    pub fn sent_to_counts(&self) -> (u64, u64) {
        let s = lock(&self.shared);
        (s.send_to_ok, s.send_to_calls)
    }

    /// The last `n` datagrams `send_to` sent (at most `KEEP_SENT`), with
    /// where they went.
    #[allow(dead_code)] // the dns target's
    pub fn last_sent(&self, n: usize) -> Vec<(Vec<u8>, SocketAddr)> {
        let s = lock(&self.shared);
        s.sent_to[s.sent_to.len().saturating_sub(n)..].to_vec()
    }

    /// The datagrams `recv_from` returned since the last call (the last
    /// `KEEP_SENT`), with their sources.
    #[allow(dead_code)] // the dns target's
    pub fn take_received(&self) -> Vec<(Vec<u8>, SocketAddr)> {
        std::mem::take(&mut lock(&self.shared).received)
    }
}

impl HostIo for MeteredIo {
    fn tcp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        self.give(1);
        self.inner.tcp_connect(to)
    }

    fn udp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        self.give(1);
        self.inner.udp_connect(to)
    }

    fn ping_socket(&mut self) -> io::Result<OwnedFd> {
        self.give(1);
        self.inner.ping_socket()
    }

    fn connect(&mut self, fd: RawFd, to: SocketAddr) -> io::Result<()> {
        self.give(1);
        self.inner.connect(fd, to)
    }

    fn udp_socket(&mut self, v6: bool) -> io::Result<OwnedFd> {
        self.give(1);
        self.inner.udp_socket(v6)
    }

    fn accept(&mut self, listener: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
        self.give(3);
        self.inner.accept(listener)
    }

    fn dup(&mut self, fd: RawFd) -> io::Result<OwnedFd> {
        self.inner.dup(fd)
    }

    fn send(&mut self, fd: RawFd, buf: &[u8]) -> io::Result<usize> {
        self.give(1);
        self.inner.send(fd, buf)
    }

    fn send_to(&mut self, fd: RawFd, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.give(1);
        let r = self.inner.send_to(fd, buf, to);
        let mut s = lock(&self.shared);
        s.send_to_calls += 1;
        if r.is_ok() {
            s.send_to_ok += 1;
            if s.sent_to.len() >= KEEP_SENT {
                s.sent_to.remove(0);
            }
            s.sent_to.push((buf.to_vec(), to));
        }
        r
    }

    fn recv(&mut self, fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        let n = if flags & libc::MSG_TRUNC != 0 {
            1
        } else {
            self.recv_len(buf.len())
        };
        self.give(n);
        self.inner.recv(fd, buf, flags)
    }

    fn recv_from(&mut self, fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        // The fake reads the peer's byte only after a datagram.
        let data = self.peek(0) % 8 < 4;
        let n = self.recv_len(buf.len()) + usize::from(data);
        self.give(n);
        let r = self.inner.recv_from(fd, buf);
        if let Ok((n, from)) = &r {
            let mut s = lock(&self.shared);
            if s.received.len() >= KEEP_SENT {
                s.received.remove(0);
            }
            s.received.push((buf[..*n].to_vec(), *from));
        }
        r
    }

    fn take_error(&mut self, fd: RawFd) -> io::Result<Option<io::Error>> {
        self.give(1);
        self.inner.take_error(fd)
    }

    fn set_peek_off(&mut self, fd: RawFd, off: u32) -> bool {
        self.give(1);
        self.inner.set_peek_off(fd, off)
    }

    fn send_buffer(&mut self, fd: RawFd) -> (usize, usize) {
        self.give(2);
        self.inner.send_buffer(fd)
    }

    fn shutdown_write(&mut self, fd: RawFd) {
        self.inner.shutdown_write(fd)
    }

    fn set_linger_zero(&mut self, fd: RawFd) {
        self.inner.set_linger_zero(fd)
    }

    fn local_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        self.give(2);
        self.inner.local_addr(fd)
    }

    fn register(&mut self, fd: RawFd, token: usize, interest: Interest) -> io::Result<()> {
        self.give(1);
        self.inner.register(fd, token, interest)
    }

    fn reregister(&mut self, fd: RawFd, token: usize, interest: Interest) {
        self.inner.reregister(fd, token, interest)
    }

    fn deregister(&mut self, fd: RawFd) {
        self.inner.deregister(fd)
    }

    /// The fake's address: the real server (a listener thread) is never
    /// started.
    fn dns_tcp_addr(&mut self, server: &lanyard::nat::dns_tcp::DnsTcp) -> Option<SocketAddr> {
        self.inner.dns_tcp_addr(server)
    }
}
