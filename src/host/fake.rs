//! [`FakeIo`]: host sockets that exist only as decisions, for the fuzzer
//! and tests (see the module above for why).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex};

use mio::Interest;

use super::{HostIo, LocalService, PollToken};
use crate::sys::sock;

/// What a [`FakeIo`] was asked, for invariants and tests.
#[derive(Debug, Default, Clone)]
pub struct FakeLog {
    /// Every address a socket was connected to (TCP, UDP, ICMP), in order;
    /// bounded (the oldest go past `FakeLog::KEEP`).
    pub connects: Vec<SocketAddr>,
    pub sends: u64,
    pub bytes_sent: u64,
    /// Registered descriptors and their tokens.
    pub registered: Vec<(RawFd, PollToken)>,
}

impl FakeLog {
    pub const KEEP: usize = 4096;
}

struct FakeState {
    script: Vec<u8>,
    pos: usize,
    log: FakeLog,
    /// Peers `recv_from` answers from (the DNS upstreams).
    peers: Vec<SocketAddr>,
}

impl FakeState {
    /// The next decision byte; 0xff (the benign choice) once the script is
    /// spent.
    fn byte(&mut self) -> u8 {
        // Once spent, the position stays at the end: bytes fed later are
        // the next decisions, none skipped.
        match self.script.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                b
            }
            None => 0xff,
        }
    }
}

/// Host sockets that exist only as decisions: each call takes the next
/// byte of a script (fed by a fuzzer or a test) to choose success, an
/// error, how many bytes a send takes or a receive returns, and what it
/// contains. Poll events are the caller's to deliver (the tokens are in the
/// log).
pub struct FakeIo {
    state: Arc<Mutex<FakeState>>,
    devnull: OwnedFd,
}

/// The test's end of a [`FakeIo`].
#[derive(Clone)]
pub struct FakeHandle {
    state: Arc<Mutex<FakeState>>,
}

fn lock(m: &Mutex<FakeState>) -> std::sync::MutexGuard<'_, FakeState> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl FakeIo {
    pub fn new() -> io::Result<(FakeIo, FakeHandle)> {
        let devnull: OwnedFd = std::fs::File::open("/dev/null")?.into();
        let state = Arc::new(Mutex::new(FakeState {
            script: Vec::new(),
            pos: 0,
            log: FakeLog::default(),
            peers: Vec::new(),
        }));
        Ok((
            FakeIo {
                state: state.clone(),
                devnull,
            },
            FakeHandle { state },
        ))
    }

    fn fd(&self) -> io::Result<OwnedFd> {
        sock::dup(self.devnull.as_raw_fd())
    }

    fn socket(&mut self, to: Option<SocketAddr>) -> io::Result<OwnedFd> {
        let b = {
            let mut s = lock(&self.state);
            if let Some(to) = to {
                if s.log.connects.len() >= FakeLog::KEEP {
                    s.log.connects.remove(0);
                }
                s.log.connects.push(to);
            }
            s.byte()
        };
        match b % 16 {
            0 => Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            1 => Err(io::Error::from_raw_os_error(libc::ENETUNREACH)),
            2 => Err(io::Error::from_raw_os_error(libc::EHOSTUNREACH)),
            3 => Err(io::Error::from_raw_os_error(libc::EACCES)),
            4 => Err(io::Error::from_raw_os_error(libc::EMFILE)),
            _ => self.fd(),
        }
    }
}

impl FakeHandle {
    /// Appends decisions to the script.
    pub fn feed(&self, bytes: &[u8]) {
        lock(&self.state).script.extend_from_slice(bytes);
    }

    /// The addresses answers come from in `recv_from` (DNS upstreams).
    pub fn set_peers(&self, peers: Vec<SocketAddr>) {
        lock(&self.state).peers = peers;
    }

    pub fn log(&self) -> FakeLog {
        lock(&self.state).log.clone()
    }

    /// Tokens of the descriptors registered now.
    pub fn tokens(&self) -> Vec<PollToken> {
        lock(&self.state)
            .log
            .registered
            .iter()
            .map(|r| r.1)
            .collect()
    }
}

fn would_block() -> io::Error {
    io::Error::from(io::ErrorKind::WouldBlock)
}

impl HostIo for FakeIo {
    fn tcp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        self.socket(Some(to))
    }

    fn udp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        self.socket(Some(to))
    }

    fn ping_socket(&mut self, _v6: bool) -> io::Result<OwnedFd> {
        self.socket(None)
    }

    fn connect(&mut self, _fd: RawFd, to: SocketAddr) -> io::Result<()> {
        self.socket(Some(to)).map(drop)
    }

    fn udp_socket(&mut self, _v6: bool) -> io::Result<OwnedFd> {
        self.socket(None)
    }

    fn accept(&mut self, _listener: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
        let (b, port) = {
            let mut s = lock(&self.state);
            let b = s.byte();
            (b, u16::from_be_bytes([s.byte(), s.byte()]))
        };
        let ip: IpAddr = match b % 4 {
            0 => return Err(would_block()),
            1 => Ipv4Addr::LOCALHOST.into(),
            2 => std::net::Ipv6Addr::LOCALHOST.into(),
            _ => Ipv4Addr::new(10, 200, 0, b).into(),
        };
        Ok((self.fd()?, SocketAddr::new(ip, port)))
    }

    fn dup(&mut self, _fd: RawFd) -> io::Result<OwnedFd> {
        self.fd()
    }

    fn send(&mut self, _fd: RawFd, buf: &[u8]) -> io::Result<usize> {
        let mut s = lock(&self.state);
        let b = s.byte();
        let n = match b % 8 {
            0 => return Err(would_block()),
            1 => return Err(io::Error::from_raw_os_error(libc::ECONNRESET)),
            2 => return Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            3 => buf.len() / 2,
            _ => buf.len(),
        };
        s.log.sends += 1;
        s.log.bytes_sent += n as u64;
        Ok(n)
    }

    fn send_to(&mut self, fd: RawFd, buf: &[u8], _to: SocketAddr) -> io::Result<usize> {
        self.send(fd, buf)
    }

    fn send_segments(
        &mut self,
        fd: RawFd,
        buf: &[u8],
        _segment: u16,
        _to: Option<SocketAddr>,
    ) -> io::Result<usize> {
        // A kernel or route that cannot take the batch, now and then, so
        // that the one-by-one fallback runs under the fuzzer too.
        if lock(&self.state).byte() % 8 == 0 {
            return Err(io::Error::from_raw_os_error(libc::EMSGSIZE));
        }
        self.send(fd, buf)
    }

    fn recv(&mut self, _fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        let mut s = lock(&self.state);
        let b = s.byte();
        if flags & libc::MSG_TRUNC != 0 {
            // A discard of acknowledged bytes: they are there.
            return if b % 16 == 0 {
                Err(io::Error::from_raw_os_error(libc::ECONNRESET))
            } else {
                Ok(buf.len())
            };
        }
        // 0xff, the spent script's byte, is "nothing more to read".
        match b % 8 {
            7 => Err(would_block()),
            6 => Ok(0),
            5 => Err(io::Error::from_raw_os_error(libc::ECONNRESET)),
            4 => Err(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            _ => {
                let n = (u16::from_be_bytes([s.byte(), s.byte()]) as usize).min(buf.len());
                // The data is the script itself, so a fuzzer controls it.
                for x in buf[..n].iter_mut() {
                    *x = s.byte();
                }
                Ok(n)
            }
        }
    }

    fn recv_from(&mut self, fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let n = self.recv(fd, buf, 0)?;
        let mut s = lock(&self.state);
        let b = s.byte() as usize;
        let from = match s.peers.get(b % (s.peers.len() + 1)) {
            Some(p) => *p,
            None => SocketAddr::from((Ipv4Addr::new(10, 200, 0, 9), 53)),
        };
        Ok((n, from))
    }

    fn take_error(&mut self, _fd: RawFd) -> io::Result<Option<io::Error>> {
        Ok(match lock(&self.state).byte() % 8 {
            0 => Some(io::Error::from_raw_os_error(libc::ECONNREFUSED)),
            1 => Some(io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            _ => None,
        })
    }

    fn set_peek_off(&mut self, _fd: RawFd, _off: u32) -> bool {
        lock(&self.state).byte() % 4 != 0
    }

    fn send_buffer(&mut self, _fd: RawFd) -> (usize, usize) {
        let mut s = lock(&self.state);
        let size = (s.byte() as usize + 1) * 4096;
        let queued = (s.byte() as usize * 4096).min(size);
        (size, queued)
    }

    fn shutdown_write(&mut self, _fd: RawFd) {}

    fn set_linger_zero(&mut self, _fd: RawFd) {}

    fn local_addr(&mut self, _fd: RawFd) -> io::Result<SocketAddr> {
        let p = {
            let mut s = lock(&self.state);
            u16::from_be_bytes([s.byte(), s.byte()])
        };
        Ok(SocketAddr::from((Ipv4Addr::LOCALHOST, p)))
    }

    fn register(&mut self, fd: RawFd, token: PollToken, _interest: Interest) -> io::Result<()> {
        let mut s = lock(&self.state);
        if s.byte() % 32 == 0 {
            return Err(io::Error::from_raw_os_error(libc::ENOMEM));
        }
        s.log.registered.retain(|r| r.0 != fd);
        s.log.registered.push((fd, token));
        Ok(())
    }

    fn reregister(&mut self, _fd: RawFd, _token: PollToken, _interest: Interest) {}

    fn deregister(&mut self, fd: RawFd) {
        lock(&self.state).log.registered.retain(|r| r.0 != fd);
    }

    /// An address no service is behind: the fake never starts threads.
    fn service_addr(&mut self, _service: &dyn LocalService) -> Option<SocketAddr> {
        Some(SocketAddr::from((Ipv4Addr::LOCALHOST, FAKE_SERVICE_PORT)))
    }
}

/// The loopback port [`FakeIo`] says every local service (the
/// DNS-over-TCP server) is on.
pub const FAKE_SERVICE_PORT: u16 = 5300;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fake_follows_its_script_and_logs_connects() {
        let (mut io, h) = FakeIo::new().unwrap();
        let to: SocketAddr = "10.0.0.1:80".parse().unwrap();
        h.feed(&[0, 5]);
        assert_eq!(
            io.tcp_connect(to).unwrap_err().raw_os_error(),
            Some(libc::ECONNREFUSED)
        );
        let fd = io.tcp_connect(to).unwrap();
        io.register(fd.as_raw_fd(), PollToken::Flow(7), Interest::READABLE)
            .unwrap();
        assert_eq!(h.tokens(), vec![PollToken::Flow(7)]);
        io.deregister(fd.as_raw_fd());
        assert!(h.tokens().is_empty());
        assert_eq!(h.log().connects, vec![to, to]);
        // Spent script: benign answers.
        let mut buf = [0u8; 16];
        assert_eq!(io.send(fd.as_raw_fd(), b"abc").unwrap(), 3);
        assert_eq!(
            io.recv(fd.as_raw_fd(), &mut buf, 0).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
    }
}
