//! Forwarding what the name table does not answer to the host's resolvers
//! (from the host's resolv.conf, or `[dns] upstream`, IPv4 or IPv6); the
//! answers come back from the gateway. A container that is only on
//! internal networks is not forwarded for (it gets SERVFAIL at once): its
//! queries would leave the host from the daemon's namespace, which is
//! egress an internal network must not have (docker's CVE-2024-29018).
//!
//! Against answer forgery (RFC 5452): every forwarded query gets a socket
//! of its own — so a source port the kernel picks at random — and a random
//! transaction id; it goes to every upstream at once and the first answer
//! wins, so a dead upstream costs no timeout. An answer is taken only from
//! an upstream's own address, on that query's socket, with that query's id
//! and the question it asked (name, type, class). Pending queries live in a
//! slab of fixed size (a query's slot is its sockets' poll token), are
//! bounded and expire; each client is rate-limited and holds at most an
//! eighth of the slab.
//!
//! Answers are built in the DNS's own frame buffer; nothing here allocates
//! per query (`tests/no_alloc_nat.rs`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use mio::Interest;

use super::DnsCounters;
use crate::frame::FrameBuf;
use crate::host::{HostIo, PollToken};
use crate::inside::{emit_ip_to, finish_frame, pseudo_header, Emit, Inside};
use crate::port::PortId;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::checksum;
use crate::wire::dns as w;
use crate::wire::ipv4::protocol;
use crate::wire::udp::{self, HEADER_LEN};

/// Queries waiting for an answer, at most.
pub const MAX_PENDING: usize = 1024;
/// Queries of one source (a port) waiting at once, at most: an eighth of
/// the slab, so that one container asking for names no upstream answers
/// (at its query budget, 200/s × the 5 s timeout is all of the slab) leaves
/// the rest to its neighbours.
pub const MAX_PENDING_PER_SOURCE: u16 = (MAX_PENDING / 8) as u16;
/// How long a query waits for any upstream.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const DNS_HEADER_LEN: usize = 12;
/// Where a DNS message sits in a frame to `to`: after its Ethernet, IP
/// (20 bytes more in IPv6) and UDP headers.
pub(super) fn payload_offset(to: &Inside) -> usize {
    to.l4_offset() + HEADER_LEN
}

/// The longest question kept to check answers against: a name of 255
/// octets on the wire, type and class.
const MAX_QUESTION: usize = 255 + 4;

/// One forwarded query: who asked, what, and the sockets it went out on.
struct Pending {
    /// The asker: its answer goes back to `to.ip`:`client_port`.
    to: Inside,
    client_port: u16,
    orig_id: u16,
    /// The random id the upstreams were sent.
    id: u16,
    sent: Time,
    /// The question as sent (name, type, class), which an answer must echo.
    question: [u8; MAX_QUESTION],
    question_len: u16,
    /// The query's own sockets, one per address family in use.
    sock4: Option<OwnedFd>,
    sock6: Option<OwnedFd>,
    /// The upstreams it was sent to: an answer comes from one of them.
    upstreams: std::sync::Arc<[SocketAddr]>,
}

impl Pending {
    fn question(&self) -> &[u8] {
        &self.question[..self.question_len as usize]
    }

    fn sock(&self, v6: bool) -> Option<RawFd> {
        if v6 { &self.sock6 } else { &self.sock4 }
            .as_ref()
            .map(|s| s.as_raw_fd())
    }
}

/// Whether `answer` is a response to `p`: QR set, its id, one question
/// equal to the one asked (case aside).
fn answers(p: &Pending, answer: &[u8]) -> bool {
    let q = p.question();
    answer.len() >= w::header::QUESTION + q.len()
        && w::header::is_response(answer)
        && w::header::id(answer) == p.id
        && w::header::qdcount(answer) == 1
        && answer[w::header::QUESTION..w::header::QUESTION + q.len()].eq_ignore_ascii_case(q)
}

/// The queries sent upstream and waiting for their answers.
pub struct DnsForwarder {
    upstreams: super::Upstreams,
    /// Pending queries by slot; the slot is in the sockets' poll tokens.
    pending: Vec<Option<Pending>>,
    free: Vec<u16>,
    /// Pending queries by asking port, sized for the switch's ports.
    per_port: Vec<u16>,
}

/// A random transaction id (from the kernel's generator: ids must not be
/// guessable from earlier ones).
fn random_id() -> u16 {
    let mut b = [0u8; 2];
    crate::sys::random_bytes(&mut b);
    u16::from_ne_bytes(b)
}

impl DnsForwarder {
    /// A forwarder for a switch of `max_ports` ports.
    pub fn new(upstreams: impl Into<super::Upstreams>, max_ports: usize) -> DnsForwarder {
        let mut pending = Vec::with_capacity(MAX_PENDING);
        pending.resize_with(MAX_PENDING, || None);
        DnsForwarder {
            upstreams: upstreams.into(),
            pending,
            free: (0..MAX_PENDING as u16).rev().collect(),
            per_port: vec![0; max_ports],
        }
    }

    /// Queries of `port` waiting for an upstream.
    pub fn pending_of(&self, port: PortId) -> u16 {
        self.per_port.get(port.index()).copied().unwrap_or(0)
    }

    /// Ends pending query `slot`: its sockets close, its slot and its
    /// asker's share are free again.
    fn finish(&mut self, slot: usize, io: &mut dyn HostIo) {
        let Some(p) = self.pending[slot].take() else {
            return;
        };
        if let Some(n) = self.per_port.get_mut(p.to.port.index()) {
            *n = n.saturating_sub(1);
        }
        close(p, io);
        self.free.push(slot as u16);
    }

    /// Queries waiting for an upstream.
    pub fn pending_len(&self) -> usize {
        MAX_PENDING - self.free.len()
    }

    /// A fresh socket of the family, on the poll under `token`.
    fn query_socket(v6: bool, token: PollToken, io: &mut dyn HostIo) -> io::Result<OwnedFd> {
        let s = io.udp_socket(v6)?;
        io.register(s.as_raw_fd(), token, Interest::READABLE)?;
        Ok(s)
    }

    /// Sends `query` (parsed as `q`), from `to`'s port `client_port`, to
    /// every upstream (the asker's `own`, `run --dns`, else the host's)
    /// with a socket and an id of its own; SERVFAIL at once when no
    /// upstream can be asked.
    #[allow(clippy::too_many_arguments)]
    pub fn forward(
        &mut self,
        to: &Inside,
        client_port: u16,
        query: &[u8],
        q: &w::Query<'_>,
        own: Option<std::sync::Arc<[SocketAddr]>>,
        now: Time,
        io: &mut dyn HostIo,
        tx: &mut FrameBuf,
        emit: &mut dyn Emit,
        counters: &mut DnsCounters,
    ) -> Option<DropReason> {
        let upstreams = own.unwrap_or_else(|| self.upstreams.get());
        if upstreams.is_empty() {
            // No resolver known: say so at once (SERVFAIL) rather than let
            // the client wait out its timeout.
            reply_servfail(to, client_port, q, tx, emit);
            return None;
        }
        // The asker's share of the slab first (a port beyond the table has
        // none: the switch never makes one).
        let share = self.per_port.get(to.port.index()).copied();
        if share.is_none_or(|n| n >= MAX_PENDING_PER_SOURCE) {
            counters.refused_per_client += 1;
            return Some(DropReason::DnsPendingLimit);
        }
        let Some(slot) = self.free.pop() else {
            counters.refused += 1;
            return Some(DropReason::FlowLimit);
        };
        let mut p = Pending {
            to: *to,
            client_port,
            orig_id: q.id,
            id: random_id(),
            sent: now,
            question: [0; MAX_QUESTION],
            question_len: q.question.len().min(MAX_QUESTION) as u16,
            sock4: None,
            sock6: None,
            upstreams: upstreams.clone(),
        };
        p.question[..p.question_len as usize]
            .copy_from_slice(&q.question[..p.question_len as usize]);
        // The query, with our id, goes out from the tx buffer's payload
        // area (no allocation).
        let at = payload_offset(to);
        let buf = &mut tx.read_space()[at..at + query.len()];
        buf.copy_from_slice(query);
        w::header::set_id(buf, p.id);
        let mut sent = false;
        for to in upstreams.iter() {
            let v6 = to.is_ipv6();
            let have = if v6 { &mut p.sock6 } else { &mut p.sock4 };
            if have.is_none() {
                let token = PollToken::DnsQuery {
                    slot: slot as u32,
                    v6,
                };
                match Self::query_socket(v6, token, io) {
                    Ok(s) => *have = Some(s),
                    Err(_) => {
                        counters.upstream_socket_failed += 1;
                        continue;
                    }
                }
            }
            let fd = have.as_ref().expect("just made").as_raw_fd();
            let buf = &tx.read_space()[at..at + query.len()];
            if io.send_to(fd, buf, *to).is_ok() {
                sent = true;
            }
        }
        if !sent {
            close(p, io);
            self.free.push(slot);
            reply_servfail(to, client_port, q, tx, emit);
            return None;
        }
        self.pending[slot as usize] = Some(p);
        self.per_port[to.port.index()] += 1;
        None
    }

    /// Answers arriving on the socket of pending query `slot` (of family
    /// `v6`).
    pub fn on_readable(
        &mut self,
        slot: u32,
        v6: bool,
        io: &mut dyn HostIo,
        tx: &mut FrameBuf,
        emit: &mut dyn Emit,
        counters: &mut DnsCounters,
    ) {
        let slot = slot as usize;
        let Some(Some(p)) = self.pending.get(slot) else {
            return;
        };
        let Some(fd) = p.sock(v6) else {
            return;
        };
        let at = payload_offset(&p.to);
        loop {
            let space = &mut tx.read_space()[at..at + 65535 - 48];
            let (n, from) = match io.recv_from(fd, space) {
                Ok(r) => r,
                Err(_) => break,
            };
            if !p.upstreams.contains(&from) {
                counters.answers_refused += 1;
                continue;
            }
            if !answers(p, &space[..n]) {
                // Not this query's answer: someone guessing, or an upstream
                // answering something else. Keep waiting for the real one.
                counters.answers_refused += 1;
                continue;
            }
            w::header::set_id(space, p.orig_id);
            let (to, client_port) = (p.to, p.client_port);
            emit_udp_from_gateway(&to, client_port, n, tx);
            emit.emit(to.port, tx);
            counters.replies += 1;
            // The first answer wins; later ones die with the sockets.
            self.finish(slot, io);
            return;
        }
    }

    /// Forgets queries nobody answered in time.
    pub fn tick(&mut self, now: Time, io: &mut dyn HostIo, counters: &mut DnsCounters) {
        if self.free.len() == MAX_PENDING {
            return;
        }
        for slot in 0..MAX_PENDING {
            let expired = self.pending[slot]
                .as_ref()
                .is_some_and(|p| now.saturating_sub(p.sent) >= QUERY_TIMEOUT);
            if expired {
                self.finish(slot, io);
                counters.timeouts += 1;
            }
        }
    }

    /// A port left: its queries' answers have nowhere to go (and its id may
    /// be reused by another container).
    pub fn port_removed(&mut self, port: PortId, io: &mut dyn HostIo) {
        for slot in 0..MAX_PENDING {
            if self.pending[slot]
                .as_ref()
                .is_some_and(|p| p.to.port == port)
            {
                self.finish(slot, io);
            }
        }
    }
}

/// Closes a query's sockets (taking them off the poll first).
fn close(p: Pending, io: &mut dyn HostIo) {
    for s in [&p.sock4, &p.sock6].into_iter().flatten() {
        io.deregister(s.as_raw_fd());
    }
    drop(p);
}

/// Wraps the `n` payload bytes already at the payload offset of `tx` in a
/// UDP datagram from the gateway's port 53 to `to`'s `client_port`.
pub(super) fn emit_udp_from_gateway(to: &Inside, client_port: u16, n: usize, tx: &mut FrameBuf) {
    let l4_len = HEADER_LEN + n;
    let off = emit_ip_to(tx, to, to.gateway_ip, protocol::UDP, l4_len);
    let pseudo = pseudo_header(to.gateway_ip, to.ip, protocol::UDP, l4_len);
    udp::emit_header(
        &mut tx.read_space()[off..],
        53,
        client_port,
        l4_len as u16,
        checksum::fold(pseudo),
    );
    finish_frame(tx, off + l4_len, udp::CHECKSUM_OFFSET as u16, None);
}

/// Answers a query with SERVFAIL (header flags QR, RD copied, RA, RCODE 2):
/// the header and the question, nothing after it (an EDNS record the
/// query carried is not echoed: the counts say there is none).
pub(super) fn reply_servfail(
    to: &Inside,
    client_port: u16,
    q: &w::Query<'_>,
    tx: &mut FrameBuf,
    emit: &mut dyn Emit,
) {
    let n = DNS_HEADER_LEN + q.question.len();
    let at = payload_offset(to);
    let buf = &mut tx.read_space()[at..at + n];
    buf[0..2].copy_from_slice(&q.id.to_be_bytes());
    buf[2] = 0x80 | u8::from(q.rd);
    buf[3] = 0x80 | w::rcode::SERVFAIL;
    buf[4..6].copy_from_slice(&1u16.to_be_bytes());
    buf[6..12].fill(0);
    buf[DNS_HEADER_LEN..].copy_from_slice(q.question);
    emit_udp_from_gateway(to, client_port, n, tx);
    emit.emit(to.port, tx);
}

/// The nameservers of a resolv.conf, IPv4 and IPv6, on port 53. Scoped
/// IPv6 addresses (`fe80::1%eth0`) are skipped: the scope names an
/// interface of the host, which the daemon's sockets cannot rely on.
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then(|| w.next())?
        })
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::net::Ipv4Addr;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(172, 17, 0, d)
    }

    const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# comment\nnameserver 10.0.0.2\nsearch example.com\nnameserver  127.0.0.53 \nnameserver ::1\nnameserver bogus\n";
        assert_eq!(
            parse_resolv_conf(t),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.53:53".parse().unwrap(),
                "[::1]:53".parse().unwrap(),
            ]
        );
        // A scoped address names an interface: skipped.
        assert!(parse_resolv_conf("nameserver fe80::1%eth0\n").is_empty());
    }

    fn pending(id: u16, question: &[u8]) -> Pending {
        let mut p = Pending {
            to: Inside {
                port: PortId(0),
                mac: crate::wire::MacAddr::ZERO,
                ip: ip(2).into(),
                gateway_mac: crate::wire::MacAddr::ZERO,
                gateway_ip: GW.into(),
                mtu: 1500,
                allow_host_loopback: false,
                loopback_unreachable: false,
                internal: false,
                net: 0,
            },
            client_port: 5000,
            orig_id: 1,
            id,
            sent: Time::ZERO,
            question: [0; MAX_QUESTION],
            question_len: question.len() as u16,
            sock4: None,
            sock6: None,
            upstreams: Vec::new().into(),
        };
        p.question[..question.len()].copy_from_slice(question);
        p
    }

    #[test]
    fn answers_must_echo_the_id_and_the_question() {
        let q = b"\x03web\x07example\x00\x00\x01\x00\x01";
        let p = pending(0xbeef, q);
        let answer = |id: u16, qd: u16, question: &[u8]| {
            let mut a = vec![0u8; 12];
            a[0..2].copy_from_slice(&id.to_be_bytes());
            a[2] = 0x81;
            a[3] = 0x80;
            a[4..6].copy_from_slice(&qd.to_be_bytes());
            a.extend_from_slice(question);
            a
        };
        assert!(answers(&p, &answer(0xbeef, 1, q)));
        // Case differs: still the question.
        assert!(answers(
            &p,
            &answer(0xbeef, 1, b"\x03WEB\x07example\x00\x00\x01\x00\x01")
        ));
        // Wrong id, another name, another type, no question, a query.
        assert!(!answers(&p, &answer(0xbeee, 1, q)));
        assert!(!answers(
            &p,
            &answer(0xbeef, 1, b"\x03wex\x07example\x00\x00\x01\x00\x01")
        ));
        assert!(!answers(
            &p,
            &answer(0xbeef, 1, b"\x03web\x07example\x00\x00\x1c\x00\x01")
        ));
        assert!(!answers(&p, &answer(0xbeef, 0, b"")));
        let mut query = answer(0xbeef, 1, q);
        query[2] = 0x01;
        assert!(!answers(&p, &query));
    }
}
