//! DNS at the gateway address: queries a container sends to the gateway's
//! port 53 are forwarded to the host's resolvers (from the host's
//! resolv.conf, or `[dns] upstream` in the config) and the answers come
//! back from the gateway. Every query goes to every upstream at once, with a
//! fresh transaction id; the first answer wins, so a dead upstream costs no
//! timeout. Pending queries are bounded and expire.
//!
//! Only the 12-byte header is looked at (id, QR bit); names and records
//! pass through untouched. Answers must come from the upstream's own
//! address and carry an id we are waiting for, so nothing else can inject
//! one.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

use hashbrown::HashMap;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::{emit_ipv4_to, finish_frame, sock, Emit, Endpoint, NatCounters, DNS_TOKEN_BASE};
use crate::frame::FrameBuf;
use crate::log;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::checksum;
use crate::wire::ipv4::protocol;
use crate::wire::udp::HEADER_LEN;

/// Queries waiting for an answer, at most.
pub const MAX_PENDING: usize = 1024;
/// How long a query waits for any upstream.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);
const DNS_HEADER_LEN: usize = 12;
const PAYLOAD_OFFSET: usize = 14 + 20 + HEADER_LEN;

struct Pending {
    ep: Endpoint,
    client: Ipv4Addr,
    client_port: u16,
    orig_id: u16,
    sent: Time,
}

pub struct DnsForwarder {
    upstreams: Vec<SocketAddr>,
    socks: Vec<Option<OwnedFd>>,
    pending: HashMap<u16, Pending>,
    next_id: u16,
}

impl DnsForwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> DnsForwarder {
        let mut seed = [0u8; 2];
        crate::sys::random_bytes(&mut seed);
        DnsForwarder {
            socks: upstreams.iter().map(|_| None).collect(),
            upstreams,
            pending: HashMap::with_capacity(MAX_PENDING * 2),
            next_id: u16::from_ne_bytes(seed),
        }
    }

    /// The resolver TCP queries to the gateway go to.
    pub fn upstream(&self) -> Option<SocketAddr> {
        self.upstreams.first().copied()
    }

    fn socket(&mut self, i: usize, registry: Option<&Registry>) -> io::Result<&OwnedFd> {
        if self.socks[i].is_none() {
            let s = sock::udp_socket()?;
            if let Some(r) = registry {
                r.register(
                    &mut SourceFd(&s.as_raw_fd()),
                    Token(DNS_TOKEN_BASE + i),
                    Interest::READABLE,
                )?;
            }
            self.socks[i] = Some(s);
        }
        Ok(self.socks[i].as_ref().expect("just made"))
    }

    /// A query from a container to the gateway's port 53.
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &mut self,
        ep: &Endpoint,
        client: Ipv4Addr,
        client_port: u16,
        query: &[u8],
        now: Time,
        registry: Option<&Registry>,
        tx: &mut FrameBuf,
        emit: &mut dyn Emit,
        counters: &mut NatCounters,
    ) -> Option<DropReason> {
        if query.len() < DNS_HEADER_LEN || query[2] & 0x80 != 0 {
            return Some(DropReason::MalformedPacket);
        }
        counters.dns_queries += 1;
        let orig_id = u16::from_be_bytes([query[0], query[1]]);
        if self.upstreams.is_empty() {
            // No resolver known: say so at once (SERVFAIL) rather than let
            // the client wait out its timeout.
            reply_servfail(ep, client, client_port, query, tx, emit);
            return None;
        }
        if self.pending.len() >= MAX_PENDING {
            counters.dns_refused += 1;
            return Some(DropReason::FlowLimit);
        }
        let mut id = self.next_id;
        while self.pending.contains_key(&id) {
            id = id.wrapping_add(1);
        }
        self.next_id = id.wrapping_add(0x9e37);
        // The query, with our id, goes out from the tx buffer's payload
        // area (no allocation).
        let buf = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + query.len()];
        buf.copy_from_slice(query);
        buf[0..2].copy_from_slice(&id.to_be_bytes());
        let mut sent = false;
        for i in 0..self.upstreams.len() {
            let SocketAddr::V4(to) = self.upstreams[i] else {
                continue;
            };
            let fd = match self.socket(i, registry) {
                Ok(s) => s.as_raw_fd(),
                Err(e) => {
                    log::warn!("DNS upstream socket: {e}");
                    continue;
                }
            };
            let buf = &tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + query.len()];
            if send_to(fd, buf, to).is_ok() {
                sent = true;
            }
        }
        if !sent {
            reply_servfail(ep, client, client_port, query, tx, emit);
            return None;
        }
        self.pending.insert(
            id,
            Pending {
                ep: *ep,
                client,
                client_port,
                orig_id,
                sent: now,
            },
        );
        None
    }

    /// Answers arriving on upstream socket `i`.
    pub fn on_readable(
        &mut self,
        i: usize,
        _now: Time,
        tx: &mut FrameBuf,
        emit: &mut dyn Emit,
        counters: &mut NatCounters,
    ) {
        let Some(Some(s)) = self.socks.get(i) else {
            return;
        };
        let fd = s.as_raw_fd();
        let expected = self.upstreams[i];
        loop {
            let space = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 65535 - 28];
            let (n, from) = match sock::recv_from(fd, space) {
                Ok(r) => r,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            };
            if SocketAddr::V4(from) != expected || n < DNS_HEADER_LEN || space[2] & 0x80 == 0 {
                continue;
            }
            let id = u16::from_be_bytes([space[0], space[1]]);
            let Some(p) = self.pending.remove(&id) else {
                continue; // late, or answered by another upstream first
            };
            space[0..2].copy_from_slice(&p.orig_id.to_be_bytes());
            emit_udp_from_gateway(&p.ep, p.client, p.client_port, n, tx);
            emit.emit(p.ep.port, tx);
            counters.dns_replies += 1;
        }
    }

    /// Forgets queries nobody answered in time.
    pub fn tick(&mut self, now: Time, counters: &mut NatCounters) {
        let before = self.pending.len();
        self.pending
            .retain(|_, p| now.saturating_sub(p.sent) < QUERY_TIMEOUT);
        counters.dns_timeouts += (before - self.pending.len()) as u64;
    }
}

fn send_to(fd: std::os::fd::RawFd, buf: &[u8], to: SocketAddrV4) -> io::Result<usize> {
    // A resolver listens on its port, not 0: use sendto with the port.
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: to.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(to.ip().octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sendto from our buffer with a sockaddr_in of its exact size.
    crate::sys::cvt_retry(|| unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            (&sa as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) as isize
    })
}

/// Wraps the `n` payload bytes already at the payload offset of `tx` in a
/// UDP datagram from the gateway's port 53 to the client.
fn emit_udp_from_gateway(
    ep: &Endpoint,
    client: Ipv4Addr,
    client_port: u16,
    n: usize,
    tx: &mut FrameBuf,
) {
    let l4_len = HEADER_LEN + n;
    let mut to = *ep;
    to.ip = client;
    let off = emit_ipv4_to(tx, &to, ep.gateway_ip, protocol::UDP, l4_len);
    let buf = tx.read_space();
    buf[off..off + 2].copy_from_slice(&53u16.to_be_bytes());
    buf[off + 2..off + 4].copy_from_slice(&client_port.to_be_bytes());
    buf[off + 4..off + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    let pseudo = checksum::pseudo_header_v4(ep.gateway_ip, client, protocol::UDP, l4_len as u16);
    buf[off + 6..off + 8].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    finish_frame(tx, off + l4_len, 6, None);
}

/// Answers a query with SERVFAIL (header flags QR, RD copied, RA, RCODE 2),
/// echoing the question.
fn reply_servfail(
    ep: &Endpoint,
    client: Ipv4Addr,
    client_port: u16,
    query: &[u8],
    tx: &mut FrameBuf,
    emit: &mut dyn Emit,
) {
    let n = query.len().min(512);
    let buf = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + n];
    buf.copy_from_slice(&query[..n]);
    buf[2] = 0x80 | (query[2] & 0x01);
    buf[3] = 0x80 | 2;
    // Keep the question count, drop any answer/authority/additional.
    buf[6..12].fill(0);
    emit_udp_from_gateway(ep, client, client_port, n, tx);
    emit.emit(ep.port, tx);
}

/// The IPv4 nameservers of a resolv.conf (others are skipped for now).
pub fn parse_resolv_conf(text: &str) -> Vec<SocketAddr> {
    text.lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            (w.next()? == "nameserver").then(|| w.next())?
        })
        .filter_map(|a| a.parse::<IpAddr>().ok())
        .filter(|a| a.is_ipv4())
        .map(|a| SocketAddr::new(a, 53))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolv_conf_nameservers() {
        let t = "# comment\nnameserver 10.0.0.2\nsearch example.com\nnameserver  127.0.0.53 \nnameserver ::1\nnameserver bogus\n";
        assert_eq!(
            parse_resolv_conf(t),
            vec![
                "10.0.0.2:53".parse::<SocketAddr>().unwrap(),
                "127.0.0.53:53".parse().unwrap()
            ]
        );
    }
}
