//! DNS at the gateway address. Names of containers — their names, aliases
//! and short ids — are answered here, from a table the control plane keeps
//! current, and only within the networks the asking container shares with
//! the one it asks about (docker's embedded DNS). `host.lanyard.internal`
//! and `host.docker.internal` are the gateway. Reverse lookups of container
//! addresses answer their names. Unknown single-label names and anything
//! under `lanyard.internal` get NXDOMAIN here; everything else is forwarded
//! to the host's resolvers (from the host's resolv.conf, or `[dns]
//! upstream`) and the answers come back from the gateway. Every forwarded
//! query goes to every upstream at once, with a fresh transaction id; the
//! first answer wins, so a dead upstream costs no timeout. Pending queries
//! are bounded and expire; each client is rate-limited.
//!
//! Only the 12-byte header is looked at (id, QR bit); names and records
//! pass through untouched. Answers must come from the upstream's own
//! address and carry an id we are waiting for, so nothing else can inject
//! one.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hashbrown::HashMap;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

use super::dns_tcp::DnsTcp;
pub use super::dns_tcp::{DnsTcpCounters, Origin};
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

/// The domain the embedded DNS owns.
pub const DOMAIN: &str = "lanyard.internal";
/// TTL of the answers it makes (docker's embedded DNS uses 600 s).
pub const TTL: u32 = 600;
/// Queries per second a client may ask, and its burst.
pub const CLIENT_QPS: u32 = 200;
pub const CLIENT_BURST: u32 = 400;
/// Clients tracked by the rate limiter; the table is cleared when full.
const MAX_CLIENTS: usize = 4096;

#[derive(Debug, Clone)]
struct NameRecord {
    net: u32,
    ip: Ipv4Addr,
}

/// The names the embedded DNS answers: per name, the addresses of the
/// containers that carry it (several for a shared alias), with their
/// network.
#[derive(Debug, Default)]
pub struct NameTable {
    by_name: hashbrown::HashMap<String, Vec<NameRecord>>,
    /// (network, address) → the container's primary name and id.
    by_addr: hashbrown::HashMap<(u32, Ipv4Addr), (String, String)>,
    /// Container id → its (network, address) pairs.
    containers: hashbrown::HashMap<String, Vec<(u32, Ipv4Addr)>>,
    subnets: hashbrown::HashMap<u32, ipnet::Ipv4Net>,
    rotation: usize,
}

/// What a name resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Addresses(Vec<Ipv4Addr>),
    Name(String),
    /// A name the server owns, with no record of the asked type.
    NoData,
    NxDomain,
    Forward,
}

impl NameTable {
    pub fn network_added(&mut self, net: u32, subnet: ipnet::Ipv4Net) {
        self.subnets.insert(net, subnet);
    }

    pub fn network_removed(&mut self, net: u32) {
        self.subnets.remove(&net);
        let gone: Vec<Ipv4Addr> = self
            .by_addr
            .keys()
            .filter(|(n, _)| *n == net)
            .map(|(_, ip)| *ip)
            .collect();
        for ip in gone {
            self.remove(net, ip);
        }
    }

    /// `names[0]` is the primary name (answered for reverse lookups).
    pub fn add(&mut self, net: u32, ip: Ipv4Addr, container: &str, names: &[String]) {
        self.remove(net, ip);
        for n in names {
            let key = n.to_ascii_lowercase();
            let recs = self.by_name.entry(key).or_default();
            if !recs.iter().any(|r| r.net == net && r.ip == ip) {
                recs.push(NameRecord { net, ip });
            }
        }
        if let Some(primary) = names.first() {
            self.by_addr
                .insert((net, ip), (primary.clone(), container.to_string()));
        }
        self.containers
            .entry(container.to_string())
            .or_default()
            .push((net, ip));
    }

    pub fn remove(&mut self, net: u32, ip: Ipv4Addr) {
        let Some((_, container)) = self.by_addr.remove(&(net, ip)) else {
            return;
        };
        self.by_name.retain(|_, recs| {
            recs.retain(|r| !(r.net == net && r.ip == ip));
            !recs.is_empty()
        });
        if let Some(v) = self.containers.get_mut(&container) {
            v.retain(|x| *x != (net, ip));
            if v.is_empty() {
                self.containers.remove(&container);
            }
        }
    }

    /// The networks the asker is on (just the one it asks from when it is
    /// not a known container: a DHCP client, an uplink's host).
    fn networks_of(&self, net: u32, asker: Ipv4Addr) -> smallvec_nets::Nets {
        let mut nets = smallvec_nets::Nets::default();
        nets.push(net);
        if let Some((_, c)) = self.by_addr.get(&(net, asker)) {
            for (n, _) in self.containers.get(c).into_iter().flatten() {
                nets.push(*n);
            }
        }
        nets
    }

    /// Resolves `name` (lower case, no final dot) of type `qtype` for a
    /// container at `asker` on `net`.
    pub fn resolve(
        &mut self,
        net: u32,
        asker: Ipv4Addr,
        gateway: Ipv4Addr,
        name: &str,
        qtype: u16,
    ) -> Resolution {
        use crate::wire::dns::qtype as t;
        let nets = self.networks_of(net, asker);
        if let Some(ip) = crate::wire::dns::reverse_v4(name) {
            if qtype != t::PTR && qtype != t::ANY {
                return Resolution::Forward;
            }
            for n in nets.iter() {
                if let Some((primary, _)) = self.by_addr.get(&(n, ip)) {
                    return Resolution::Name(primary.clone());
                }
            }
            if nets
                .iter()
                .any(|n| self.subnets.get(&n).is_some_and(|s| s.contains(&ip)))
            {
                return Resolution::NxDomain;
            }
            return Resolution::Forward;
        }
        let owned = name == DOMAIN || name.ends_with(&format!(".{DOMAIN}"));
        let short = name.strip_suffix(&format!(".{DOMAIN}")).unwrap_or(name);
        let wants_a = qtype == t::A || qtype == t::ANY;
        if short == "host" && owned || name == "host.docker.internal" {
            return if wants_a {
                Resolution::Addresses(vec![gateway])
            } else {
                Resolution::NoData
            };
        }
        if let Some(recs) = self.by_name.get(short) {
            let mut ips: Vec<Ipv4Addr> = Vec::new();
            // The asker's own network first, then the others it shares.
            for n in nets.iter() {
                for r in recs.iter().filter(|r| r.net == n) {
                    if !ips.contains(&r.ip) {
                        ips.push(r.ip);
                    }
                }
            }
            if !ips.is_empty() {
                if !wants_a {
                    return Resolution::NoData;
                }
                // Round robin among containers sharing an alias.
                self.rotation = self.rotation.wrapping_add(1);
                let k = self.rotation % ips.len();
                ips.rotate_left(k);
                return Resolution::Addresses(ips);
            }
        }
        if owned || !short.contains('.') {
            return Resolution::NxDomain;
        }
        Resolution::Forward
    }

    /// Names in the table (for tests and reports).
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A tiny fixed-size set of network ids (a container is on a handful).
mod smallvec_nets {
    #[derive(Default)]
    pub struct Nets {
        ids: [u32; 16],
        n: usize,
    }

    impl Nets {
        pub fn push(&mut self, id: u32) {
            if self.n < self.ids.len() && !self.ids[..self.n].contains(&id) {
                self.ids[self.n] = id;
                self.n += 1;
            }
        }

        pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
            self.ids[..self.n].iter().copied()
        }
    }
}

/// What the name table makes of a query.
pub enum LocalAnswer {
    /// Not ours: ask the upstream.
    Forward,
    /// A response of this length is in the buffer.
    Answer(usize),
    /// An NXDOMAIN response of this length is in the buffer.
    NxDomain(usize),
}

/// Answers `q` from the name table into `out` (as much of it as a response
/// may use: 512 bytes over UDP, 64 KiB over TCP; what does not fit sets TC).
/// A response of length 0 means `out` could not even hold the question.
pub fn local_answer(
    names: &mut NameTable,
    net: u32,
    client: Ipv4Addr,
    gateway: Ipv4Addr,
    q: &crate::wire::dns::Query<'_>,
    out: &mut [u8],
) -> LocalAnswer {
    use crate::wire::dns as w;
    if q.qclass != w::CLASS_IN {
        return LocalAnswer::Forward;
    }
    let mut buf = [0u8; 256];
    let Ok(name) = w::question_name(q, &mut buf) else {
        // Not a name we could have; the upstream may know better.
        return LocalAnswer::Forward;
    };
    let max = out.len();
    let mut reply = |rc: u8, answers: &mut dyn Iterator<Item = w::Rdata<'_>>| {
        w::build_response(q, rc, answers, TTL, max, out)
    };
    match names.resolve(net, client, gateway, name, q.qtype) {
        Resolution::Forward => LocalAnswer::Forward,
        Resolution::Addresses(ips) => LocalAnswer::Answer(reply(
            w::rcode::NOERROR,
            &mut ips.iter().map(|ip| w::Rdata::A(ip.octets())),
        )),
        Resolution::Name(n) => LocalAnswer::Answer(reply(
            w::rcode::NOERROR,
            &mut std::iter::once(w::Rdata::Name(&n)),
        )),
        Resolution::NoData => {
            LocalAnswer::Answer(reply(w::rcode::NOERROR, &mut w::NO_ANSWERS.into_iter()))
        }
        Resolution::NxDomain => {
            LocalAnswer::NxDomain(reply(w::rcode::NXDOMAIN, &mut w::NO_ANSWERS.into_iter()))
        }
    }
}

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
    /// Shared with the TCP server, which answers from the same table.
    names: Arc<Mutex<NameTable>>,
    tcp: DnsTcp,
    limits: HashMap<Ipv4Addr, crate::gateway::RateLimiter>,
}

/// The name table, shared by the UDP path and the TCP server of every
/// data-path shard; written by the control plane, read per query.
pub type SharedNames = Arc<Mutex<NameTable>>;

/// A new, empty shared name table.
pub fn shared_names() -> SharedNames {
    Arc::new(Mutex::new(NameTable::default()))
}

impl DnsForwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> DnsForwarder {
        DnsForwarder::with_names(upstreams, shared_names())
    }

    pub fn with_names(upstreams: Vec<SocketAddr>, names: SharedNames) -> DnsForwarder {
        let tcp = DnsTcp::new(names.clone(), upstreams.clone());
        let mut seed = [0u8; 2];
        crate::sys::random_bytes(&mut seed);
        DnsForwarder {
            socks: upstreams.iter().map(|_| None).collect(),
            upstreams,
            pending: HashMap::with_capacity(MAX_PENDING * 2),
            next_id: u16::from_ne_bytes(seed),
            tcp,
            names,
            limits: HashMap::with_capacity(MAX_CLIENTS),
        }
    }

    pub fn names(&self) -> MutexGuard<'_, NameTable> {
        // Every mutation of the table is complete-or-nothing: a panic in
        // the other holder leaves it usable.
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where TCP queries to the gateway's port 53 go (the local DNS-over-
    /// TCP server, started on first use), or None if it cannot run.
    pub fn tcp_target(&self) -> Option<SocketAddr> {
        self.tcp.addr()
    }

    /// Says which container a connection to the TCP server, from local
    /// port `port`, is asking for.
    pub fn tcp_origin(&self, port: u16, origin: Origin) {
        self.tcp.expect(port, origin);
    }

    pub fn tcp_counters(&self) -> DnsTcpCounters {
        self.tcp.counters()
    }

    /// Answers from the name table, if the name is ours; true if it did.
    #[allow(clippy::too_many_arguments)]
    fn answer_locally(
        &mut self,
        ep: &Endpoint,
        client: Ipv4Addr,
        client_port: u16,
        query: &[u8],
        tx: &mut FrameBuf,
        emit: &mut dyn Emit,
        counters: &mut NatCounters,
    ) -> Result<bool, DropReason> {
        use crate::wire::dns as w;
        let q = match w::parse_query(query) {
            Ok(q) => q,
            Err(_) => {
                counters.dns_malformed += 1;
                return Err(DropReason::MalformedPacket);
            }
        };
        let space = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + w::MAX_UDP_LEN];
        let answer = local_answer(&mut self.names(), ep.net, client, ep.gateway_ip, &q, space);
        let n = match answer {
            LocalAnswer::Forward => return Ok(false),
            LocalAnswer::NxDomain(n) => {
                counters.dns_nxdomain += 1;
                n
            }
            LocalAnswer::Answer(n) => n,
        };
        if n == 0 {
            return Err(DropReason::MalformedPacket);
        }
        counters.dns_local_answers += 1;
        emit_udp_from_gateway(ep, client, client_port, n, tx);
        emit.emit(ep.port, tx);
        Ok(true)
    }

    /// Spends one query of `client`'s budget; false when it is spent.
    fn allow(&mut self, client: Ipv4Addr, now: Time) -> bool {
        if !self.limits.contains_key(&client) && self.limits.len() >= MAX_CLIENTS {
            self.limits.clear();
        }
        self.limits
            .entry(client)
            .or_insert_with(|| {
                crate::gateway::RateLimiter::new(CLIENT_QPS, CLIENT_BURST).starting_at(now)
            })
            .allow(now)
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
            counters.dns_malformed += 1;
            return Some(DropReason::MalformedPacket);
        }
        counters.dns_queries += 1;
        if !self.allow(client, now) {
            counters.dns_rate_limited += 1;
            return Some(DropReason::RateLimited);
        }
        match self.answer_locally(ep, client, client_port, query, tx, emit, counters) {
            Ok(true) => return None,
            Ok(false) => {}
            Err(r) => return Some(r),
        }
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
    use crate::wire::dns::qtype;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(172, 17, 0, d)
    }

    fn table() -> NameTable {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap());
        t.network_added(1, "10.9.0.0/24".parse().unwrap());
        t.add(0, ip(2), "c2", &["web".into(), "api".into()]);
        t.add(0, ip(3), "c3", &["db".into(), "api".into()]);
        // c4 is on both networks; c5 only on the other.
        t.add(0, ip(4), "c4", &["both".into()]);
        t.add(1, Ipv4Addr::new(10, 9, 0, 4), "c4", &["both".into()]);
        t.add(1, Ipv4Addr::new(10, 9, 0, 5), "c5", &["hidden".into()]);
        t
    }

    const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);

    #[test]
    fn names_and_aliases_resolve_within_shared_networks() {
        let mut t = table();
        assert_eq!(
            t.resolve(0, ip(3), GW, "web", qtype::A),
            Resolution::Addresses(vec![ip(2)])
        );
        assert_eq!(
            t.resolve(0, ip(3), GW, "web.lanyard.internal", qtype::A),
            Resolution::Addresses(vec![ip(2)])
        );
        // Not visible from a network the asker is not on.
        assert_eq!(
            t.resolve(0, ip(2), GW, "hidden", qtype::A),
            Resolution::NxDomain
        );
        // c4 asks from network 1 and sees network 1's names.
        assert_eq!(
            t.resolve(1, Ipv4Addr::new(10, 9, 0, 4), GW, "hidden", qtype::A),
            Resolution::Addresses(vec![Ipv4Addr::new(10, 9, 0, 5)])
        );
        // A container on both networks asking for one on both gets the
        // address on the network it asks from first.
        match t.resolve(1, Ipv4Addr::new(10, 9, 0, 4), GW, "both", qtype::A) {
            Resolution::Addresses(a) => assert!(a.contains(&Ipv4Addr::new(10, 9, 0, 4))),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            t.resolve(0, ip(2), GW, "web", qtype::AAAA),
            Resolution::NoData
        );
        assert_eq!(
            t.resolve(0, ip(2), GW, "nothing", qtype::A),
            Resolution::NxDomain
        );
        assert_eq!(
            t.resolve(0, ip(2), GW, "nothing.lanyard.internal", qtype::A),
            Resolution::NxDomain
        );
        assert_eq!(
            t.resolve(0, ip(2), GW, "example.com", qtype::A),
            Resolution::Forward
        );
        assert_eq!(
            t.resolve(0, ip(2), GW, "host.docker.internal", qtype::A),
            Resolution::Addresses(vec![GW])
        );
        assert_eq!(
            t.resolve(0, ip(2), GW, "host.lanyard.internal", qtype::A),
            Resolution::Addresses(vec![GW])
        );
    }

    #[test]
    fn shared_aliases_rotate() {
        let mut t = table();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..4 {
            match t.resolve(0, ip(4), GW, "api", qtype::A) {
                Resolution::Addresses(a) => {
                    assert_eq!(a.len(), 2);
                    firsts.insert(a[0]);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(firsts.len(), 2, "round robin");
    }

    #[test]
    fn reverse_lookups() {
        let mut t = table();
        assert_eq!(
            t.resolve(0, ip(3), GW, "2.0.17.172.in-addr.arpa", qtype::PTR),
            Resolution::Name("web".into())
        );
        assert_eq!(
            t.resolve(0, ip(3), GW, "99.0.17.172.in-addr.arpa", qtype::PTR),
            Resolution::NxDomain
        );
        assert_eq!(
            t.resolve(0, ip(3), GW, "8.8.8.8.in-addr.arpa", qtype::PTR),
            Resolution::Forward
        );
    }

    #[test]
    fn removals_forget_names() {
        let mut t = table();
        t.remove(0, ip(2));
        assert_eq!(
            t.resolve(0, ip(3), GW, "web", qtype::A),
            Resolution::NxDomain
        );
        assert_eq!(
            t.resolve(0, ip(3), GW, "api", qtype::A),
            Resolution::Addresses(vec![ip(3)])
        );
        t.network_removed(1);
        assert_eq!(
            t.resolve(1, Ipv4Addr::new(10, 9, 0, 4), GW, "hidden", qtype::A),
            Resolution::NxDomain
        );
    }

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
