//! The host side of the data path as a trait: every socket call and poll
//! registration the NAT and the embedded DNS make goes through
//! [`HostIo`], so the same state machines run over real sockets
//! ([`RealIo`], on the data path's mio poll) or over a fake that records
//! what was asked and answers from a script ([`fake::FakeIo`]): the fuzzer
//! drives the whole pipeline, NAT included, without a socket, and tests
//! can check what the NAT *tried* to do (which addresses it connected to)
//! as well as what it sent.
//!
//! Also here, below both users: the poll tokens of everything on the data
//! path's poll ([`PollToken`], encoded and decoded in one place), and the
//! services that live on the host's loopback behind the gateway's address
//! ([`LocalService`]: the DNS-over-TCP server), which the NAT connects
//! flows to without knowing what they are.
//!
//! Descriptors stay real in both: a fake socket is a duplicate of one
//! `/dev/null` descriptor, so a flow owns and closes an `OwnedFd` as it
//! always does, and nothing the fake hands out can alias a real socket.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{OwnedFd, RawFd};

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use crate::sys::sock;

pub mod fake;
pub use fake::{FakeHandle, FakeIo, FakeLog, FAKE_SERVICE_PORT};

/// The host sockets and poll of a NAT.
pub trait HostIo: Send {
    /// The poll host sockets register with (real sockets only).
    fn set_registry(&mut self, _r: Registry) {}

    /// A non-blocking TCP connect to `to` (in progress is success).
    fn tcp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd>;
    /// A UDP socket connected to `to`.
    fn udp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd>;
    /// An unprivileged ICMP echo socket (EACCES when the host allows none).
    /// An unprivileged ping socket (ICMP, or ICMPv6 for `v6`).
    fn ping_socket(&mut self, v6: bool) -> io::Result<OwnedFd>;
    /// Connects a socket made here (the ping socket) to `to`.
    fn connect(&mut self, fd: RawFd, to: SocketAddr) -> io::Result<()>;
    /// An unbound UDP socket of the family (a DNS query's own).
    fn udp_socket(&mut self, v6: bool) -> io::Result<OwnedFd>;
    /// A connection waiting on a published port's listener, and its peer.
    fn accept(&mut self, listener: RawFd) -> io::Result<(OwnedFd, SocketAddr)>;
    fn dup(&mut self, fd: RawFd) -> io::Result<OwnedFd>;

    fn send(&mut self, fd: RawFd, buf: &[u8]) -> io::Result<usize>;
    fn send_to(&mut self, fd: RawFd, buf: &[u8], to: SocketAddr) -> io::Result<usize>;
    /// One send of `buf` on a UDP socket as datagrams of `segment` bytes
    /// (the last may be shorter), to `to` or to the connected remote: UDP
    /// GSO, [`sock::send_segments`]. EMSGSIZE, EINVAL or EIO: send them one
    /// by one.
    fn send_segments(
        &mut self,
        fd: RawFd,
        buf: &[u8],
        segment: u16,
        to: Option<SocketAddr>,
    ) -> io::Result<usize>;
    /// recv(2) with `flags` (MSG_PEEK, MSG_TRUNC), never blocking.
    fn recv(&mut self, fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize>;
    fn recv_from(&mut self, fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)>;

    /// How a non-blocking connect ended.
    fn take_error(&mut self, fd: RawFd) -> io::Result<Option<io::Error>>;
    /// Sets SO_PEEK_OFF; false if the kernel lacks it.
    fn set_peek_off(&mut self, fd: RawFd, off: u32) -> bool;
    /// The send buffer's size and what is queued in it.
    fn send_buffer(&mut self, fd: RawFd) -> (usize, usize);
    fn shutdown_write(&mut self, fd: RawFd);
    /// Makes close() reset the connection.
    fn set_linger_zero(&mut self, fd: RawFd);
    fn local_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr>;

    fn register(&mut self, fd: RawFd, token: PollToken, interest: Interest) -> io::Result<()>;
    fn reregister(&mut self, fd: RawFd, token: PollToken, interest: Interest);
    fn deregister(&mut self, fd: RawFd);

    /// Where a local service listens, starting it on first use.
    fn service_addr(&mut self, service: &dyn LocalService) -> Option<SocketAddr> {
        service.start()
    }
}

/// A service of the gateway's address that runs on the host's loopback
/// (the DNS-over-TCP server): the NAT connects a container's flow to it and
/// says, right after `connect()`, who the flow speaks for.
pub trait LocalService: Send + Sync {
    /// Its loopback address, starting it on first use; `None` if it cannot
    /// run.
    fn start(&self) -> Option<SocketAddr>;
    /// The host socket bound to local port `local_port` carries `inside`'s
    /// flow.
    fn connected(&self, local_port: u16, inside: &crate::inside::Inside);
}

/// What a poll event is for: every source the data path polls, and the one
/// place tokens are made and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PollToken {
    /// Commands for the shard.
    Waker,
    /// A port to read.
    Port(crate::port::PortId),
    /// A published port's listener (the forward's id).
    Forward(u32),
    /// A pending DNS query's socket (the query's slot and family).
    DnsQuery { slot: u32, v6: bool },
    /// A NAT flow's host socket (the flow's index in the table).
    Flow(u32),
}

/// Token layout: 0 the waker, ports from 1, then one range per kind.
const FORWARD_BASE: usize = 1 << 22;
const DNS_BASE: usize = 1 << 23;
const FLOW_BASE: usize = 1 << 24;

impl PollToken {
    pub fn encode(self) -> Token {
        Token(match self {
            PollToken::Waker => 0,
            PollToken::Port(p) => 1 + p.index(),
            PollToken::Forward(id) => FORWARD_BASE + id as usize,
            PollToken::DnsQuery { slot, v6 } => DNS_BASE + slot as usize * 2 + usize::from(v6),
            PollToken::Flow(id) => FLOW_BASE + id as usize,
        })
    }

    pub fn decode(t: Token) -> PollToken {
        match t.0 {
            0 => PollToken::Waker,
            t if t >= FLOW_BASE => PollToken::Flow((t - FLOW_BASE) as u32),
            t if t >= DNS_BASE => PollToken::DnsQuery {
                slot: ((t - DNS_BASE) / 2) as u32,
                v6: (t - DNS_BASE) % 2 == 1,
            },
            t if t >= FORWARD_BASE => PollToken::Forward((t - FORWARD_BASE) as u32),
            t => PollToken::Port(crate::port::PortId((t - 1) as u32)),
        }
    }
}

/// Real sockets on the data path's poll.
#[derive(Default)]
pub struct RealIo {
    registry: Option<Registry>,
}

impl HostIo for RealIo {
    fn set_registry(&mut self, r: Registry) {
        self.registry = Some(r);
    }

    fn tcp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        sock::tcp_connect(to)
    }

    fn udp_connect(&mut self, to: SocketAddr) -> io::Result<OwnedFd> {
        sock::udp_connect(to)
    }

    fn ping_socket(&mut self, v6: bool) -> io::Result<OwnedFd> {
        sock::ping_socket(v6)
    }

    fn connect(&mut self, fd: RawFd, to: SocketAddr) -> io::Result<()> {
        sock::connect(fd, to)
    }

    fn udp_socket(&mut self, v6: bool) -> io::Result<OwnedFd> {
        sock::udp_socket(v6)
    }

    fn accept(&mut self, listener: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
        sock::accept(listener)
    }

    fn dup(&mut self, fd: RawFd) -> io::Result<OwnedFd> {
        sock::dup(fd)
    }

    fn send(&mut self, fd: RawFd, buf: &[u8]) -> io::Result<usize> {
        sock::send(fd, buf)
    }

    fn send_to(&mut self, fd: RawFd, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        sock::send_to(fd, buf, to)
    }

    fn send_segments(
        &mut self,
        fd: RawFd,
        buf: &[u8],
        segment: u16,
        to: Option<SocketAddr>,
    ) -> io::Result<usize> {
        sock::send_segments(fd, buf, segment, to)
    }

    fn recv(&mut self, fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
        sock::recv(fd, buf, flags)
    }

    fn recv_from(&mut self, fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        sock::recv_from(fd, buf)
    }

    fn take_error(&mut self, fd: RawFd) -> io::Result<Option<io::Error>> {
        sock::take_error(fd)
    }

    fn set_peek_off(&mut self, fd: RawFd, off: u32) -> bool {
        sock::set_peek_off(fd, off)
    }

    fn send_buffer(&mut self, fd: RawFd) -> (usize, usize) {
        sock::send_buffer(fd)
            .unwrap_or_else(|_| (sock::sndbuf(fd).unwrap_or(0), sock::outq(fd).unwrap_or(0)))
    }

    fn shutdown_write(&mut self, fd: RawFd) {
        sock::shutdown_write(fd)
    }

    fn set_linger_zero(&mut self, fd: RawFd) {
        sock::set_linger_zero(fd)
    }

    fn local_addr(&mut self, fd: RawFd) -> io::Result<SocketAddr> {
        sock::local_addr(fd)
    }

    fn register(&mut self, fd: RawFd, token: PollToken, interest: Interest) -> io::Result<()> {
        let Some(r) = &self.registry else {
            return Err(io::Error::other("no poll registry"));
        };
        r.register(&mut SourceFd(&fd), token.encode(), interest)
    }

    fn reregister(&mut self, fd: RawFd, token: PollToken, interest: Interest) {
        if let Some(r) = &self.registry {
            let _ = r.reregister(&mut SourceFd(&fd), token.encode(), interest);
        }
    }

    fn deregister(&mut self, fd: RawFd) {
        if let Some(r) = &self.registry {
            let _ = r.deregister(&mut SourceFd(&fd));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::port::PortId;

    #[test]
    fn tokens_round_trip() {
        for t in [
            PollToken::Waker,
            PollToken::Port(PortId(0)),
            PollToken::Port(PortId(1023)),
            PollToken::Forward(7),
            PollToken::DnsQuery {
                slot: 1023,
                v6: true,
            },
            PollToken::DnsQuery { slot: 0, v6: false },
            PollToken::Flow(0),
            PollToken::Flow(65535),
        ] {
            assert_eq!(PollToken::decode(t.encode()), t, "{t:?}");
        }
    }
}
