//! DNS at the gateway address. Names of containers — their names, aliases
//! and short ids — are answered here, from a table the control plane keeps
//! current, and only within the networks the asking container shares with
//! the one it asks about (docker's embedded DNS). `host.lanyard.internal`
//! and `host.docker.internal` are the gateway. Reverse lookups of container
//! addresses answer their names. Unknown single-label names and anything
//! under `lanyard.internal` get NXDOMAIN here; everything else is forwarded
//! to the host's resolvers (from the host's resolv.conf, or `[dns]
//! upstream`, IPv4 or IPv6) and the answers come back from the gateway. A
//! container that is only on internal networks is not forwarded for (it
//! gets SERVFAIL at once): its queries would leave the host from the
//! daemon's namespace, which is egress an internal network must not have
//! (docker's CVE-2024-29018).
//!
//! Forwarding, against answer forgery (RFC 5452): every forwarded query
//! gets a socket of its own — so a source port the kernel picks at random —
//! and a random transaction id; it goes to every upstream at once and the
//! first answer wins, so a dead upstream costs no timeout. An answer is
//! taken only from an upstream's own address, on that query's socket, with
//! that query's id and the question it asked (name, type, class). Pending
//! queries live in a slab of fixed size (a query's slot is its sockets'
//! poll token), are bounded and expire; each client is rate-limited.
//!
//! Answers are built in the NAT's frame buffer; nothing here allocates per
//! query (`tests/no_alloc.rs`).

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use hashbrown::HashMap;
use mio::Interest;

use super::dns_tcp::DnsTcp;
pub use super::dns_tcp::{DnsTcpCounters, Origin};
use super::host::HostIo;
use super::{emit_ipv4_to, finish_frame, Emit, Endpoint, NatCounters, DNS_TOKEN_BASE};
use crate::frame::FrameBuf;
use crate::port::PortId;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::checksum;
use crate::wire::dns as w;
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
const DOT_DOMAIN: &str = ".lanyard.internal";
/// TTL of the answers it makes (docker's embedded DNS uses 600 s).
pub const TTL: u32 = 600;
/// Queries per second a client may ask, and its burst.
pub const CLIENT_QPS: u32 = 200;
pub const CLIENT_BURST: u32 = 400;
/// Clients tracked by the rate limiter; the table is cleared when full.
const MAX_CLIENTS: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct NameRecord {
    net: u32,
    ip: Ipv4Addr,
}

/// A network as the name table knows it.
#[derive(Debug, Clone, Copy)]
struct NetInfo {
    subnet: ipnet::Ipv4Net,
    /// No NAT: queries from it are not forwarded upstream.
    internal: bool,
}

/// The names the embedded DNS answers: per name, the addresses of the
/// containers that carry it (several for a shared alias), with their
/// network. A (network, address) pair is unique: networks' subnets never
/// overlap (config and `network create` refuse it).
#[derive(Debug, Default)]
pub struct NameTable {
    by_name: hashbrown::HashMap<String, Vec<NameRecord>>,
    /// (network, address) → the container's primary name and id.
    by_addr: hashbrown::HashMap<(u32, Ipv4Addr), (String, String)>,
    /// Container id → its (network, address) pairs.
    containers: hashbrown::HashMap<String, Vec<(u32, Ipv4Addr)>>,
    nets: hashbrown::HashMap<u32, NetInfo>,
    rotation: usize,
}

/// What a name resolves to; borrowed from the table (no allocation per
/// query).
#[derive(Debug, Clone)]
pub enum Resolution<'a> {
    Addresses(Addresses<'a>),
    Name(&'a str),
    /// A name the server owns, with no record of the asked type.
    NoData,
    NxDomain,
    Forward,
}

/// The addresses of a name as the asker sees them: those on the network it
/// asks from first, then on the others it is on, the whole list rotated by
/// one more place per query (round robin among containers sharing an
/// alias).
#[derive(Debug, Clone)]
pub struct Addresses<'a> {
    /// The gateway (`host.docker.internal`) instead of records.
    single: Option<Ipv4Addr>,
    recs: &'a [NameRecord],
    nets: smallvec_nets::Nets,
    /// Rotation: the list starts at this index of the unrotated order.
    start: usize,
    /// 0: yielding indices `start..`, 1: indices `..start`, 2: done.
    pass: u8,
    net_i: usize,
    rec_i: usize,
    index: usize,
}

impl<'a> Addresses<'a> {
    fn new(recs: &'a [NameRecord], nets: smallvec_nets::Nets, rotation: usize) -> Self {
        let total = nets
            .iter()
            .map(|n| recs.iter().filter(|r| r.net == n).count())
            .sum::<usize>();
        Addresses {
            single: None,
            recs,
            nets,
            start: if total == 0 { 0 } else { rotation % total },
            pass: 0,
            net_i: 0,
            rec_i: 0,
            index: 0,
        }
    }

    fn gateway(ip: Ipv4Addr) -> Self {
        Addresses {
            single: Some(ip),
            recs: &[],
            nets: smallvec_nets::Nets::default(),
            start: 0,
            pass: 0,
            net_i: 0,
            rec_i: 0,
            index: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.single.is_none() && self.clone().next().is_none()
    }
}

impl Iterator for Addresses<'_> {
    type Item = Ipv4Addr;

    fn next(&mut self) -> Option<Ipv4Addr> {
        if let Some(ip) = self.single.take() {
            return Some(ip);
        }
        while self.pass < 2 {
            // The unrotated order: network by network, records in order.
            while let Some(net) = self.nets.get(self.net_i) {
                while let Some(r) = self.recs.get(self.rec_i) {
                    self.rec_i += 1;
                    if r.net != net {
                        continue;
                    }
                    let i = self.index;
                    self.index += 1;
                    let wanted = if self.pass == 0 {
                        i >= self.start
                    } else {
                        i < self.start
                    };
                    if wanted {
                        return Some(r.ip);
                    }
                }
                self.net_i += 1;
                self.rec_i = 0;
            }
            self.pass += 1;
            self.net_i = 0;
            self.rec_i = 0;
            self.index = 0;
            if self.start == 0 {
                // Nothing comes before the start.
                self.pass = 2;
            }
        }
        None
    }
}

impl NameTable {
    pub fn network_added(&mut self, net: u32, subnet: ipnet::Ipv4Net, internal: bool) {
        self.nets.insert(net, NetInfo { subnet, internal });
    }

    pub fn network_removed(&mut self, net: u32) {
        self.nets.remove(&net);
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
        if names.is_empty() {
            // Nothing to answer for: the address is not the container's on
            // this network as far as names go (and `remove`, keyed by the
            // primary name's record, could never clear it again).
            return;
        }
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

    /// Whether a query from `asker` on `net` may go upstream: the asker is
    /// on at least one network with NAT (docker's rule for internal
    /// networks). An unknown network forwards (the table only learns of
    /// networks the switch has).
    pub fn may_forward(&self, net: u32, asker: Ipv4Addr) -> bool {
        self.networks_of(net, asker)
            .iter()
            .any(|n| self.nets.get(&n).is_none_or(|i| !i.internal))
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
    ) -> Resolution<'_> {
        use crate::wire::dns::qtype as t;
        let nets = self.networks_of(net, asker);
        if let Some(ip) = crate::wire::dns::reverse_v4(name) {
            if qtype != t::PTR && qtype != t::ANY {
                return Resolution::Forward;
            }
            for n in nets.iter() {
                if let Some((primary, _)) = self.by_addr.get(&(n, ip)) {
                    return Resolution::Name(primary);
                }
            }
            if nets
                .iter()
                .any(|n| self.nets.get(&n).is_some_and(|i| i.subnet.contains(&ip)))
            {
                return Resolution::NxDomain;
            }
            return Resolution::Forward;
        }
        let owned = name == DOMAIN || name.ends_with(DOT_DOMAIN);
        let short = name.strip_suffix(DOT_DOMAIN).unwrap_or(name);
        let wants_a = qtype == t::A || qtype == t::ANY;
        if short == "host" && owned || name == "host.docker.internal" {
            return if wants_a {
                Resolution::Addresses(Addresses::gateway(gateway))
            } else {
                Resolution::NoData
            };
        }
        let rotation = self.rotation;
        if let Some(recs) = self.by_name.get(short) {
            let ips = Addresses::new(recs, nets, rotation);
            if !ips.is_empty() {
                if !wants_a {
                    return Resolution::NoData;
                }
                self.rotation = self.rotation.wrapping_add(1);
                // Borrowed again after the rotation counter moved.
                let recs = self.by_name.get(short).expect("just found");
                return Resolution::Addresses(Addresses::new(recs, nets, rotation));
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
    #[derive(Debug, Clone, Copy, Default)]
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

        pub fn get(&self, i: usize) -> Option<u32> {
            self.ids[..self.n].get(i).copied()
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
/// A name that is not ours and may not be forwarded (an asker only on
/// internal networks) is answered SERVFAIL here.
pub fn local_answer(
    names: &mut NameTable,
    net: u32,
    client: Ipv4Addr,
    gateway: Ipv4Addr,
    q: &w::Query<'_>,
    out: &mut [u8],
) -> LocalAnswer {
    let forward = names.may_forward(net, client);
    let max = out.len();
    let servfail = |out: &mut [u8]| {
        LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::SERVFAIL,
            w::NO_ANSWERS,
            0,
            max,
            out,
        ))
    };
    if q.qclass != w::CLASS_IN {
        return if forward {
            LocalAnswer::Forward
        } else {
            servfail(out)
        };
    }
    let mut buf = [0u8; 256];
    let Ok(name) = w::question_name(q, &mut buf) else {
        // Not a name we could have; the upstream may know better.
        return if forward {
            LocalAnswer::Forward
        } else {
            servfail(out)
        };
    };
    match names.resolve(net, client, gateway, name, q.qtype) {
        Resolution::Forward if forward => LocalAnswer::Forward,
        Resolution::Forward => servfail(out),
        Resolution::Addresses(ips) => LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::NOERROR,
            ips.map(|ip| w::Rdata::A(ip.octets())),
            TTL,
            max,
            out,
        )),
        Resolution::Name(n) => LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::NOERROR,
            std::iter::once(w::Rdata::Name(n)),
            TTL,
            max,
            out,
        )),
        Resolution::NoData => LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::NOERROR,
            w::NO_ANSWERS,
            TTL,
            max,
            out,
        )),
        Resolution::NxDomain => LocalAnswer::NxDomain(w::build_response(
            q,
            w::rcode::NXDOMAIN,
            w::NO_ANSWERS,
            TTL,
            max,
            out,
        )),
    }
}

/// The longest question kept to check answers against: a name of 255
/// octets on the wire, type and class.
const MAX_QUESTION: usize = 255 + 4;

/// One forwarded query: who asked, what, and the sockets it went out on.
struct Pending {
    ep: Endpoint,
    client: Ipv4Addr,
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

/// The poll token of a pending query's socket: slot and family.
fn token(slot: usize, v6: bool) -> usize {
    DNS_TOKEN_BASE + slot * 2 + usize::from(v6)
}

/// Whether `answer` is a response to `p`: QR set, its id, one question
/// equal to the one asked (case aside).
fn answers(p: &Pending, answer: &[u8]) -> bool {
    let q = p.question();
    answer.len() >= DNS_HEADER_LEN + q.len()
        && answer[2] & 0x80 != 0
        && answer[0..2] == p.id.to_be_bytes()
        && answer[4..6] == [0, 1]
        && answer[DNS_HEADER_LEN..DNS_HEADER_LEN + q.len()].eq_ignore_ascii_case(q)
}

pub struct DnsForwarder {
    upstreams: Vec<SocketAddr>,
    /// Pending queries by slot; the slot is in the sockets' poll tokens.
    pending: Vec<Option<Pending>>,
    free: Vec<u16>,
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

/// A random transaction id (from the kernel's generator: ids must not be
/// guessable from earlier ones).
fn random_id() -> u16 {
    let mut b = [0u8; 2];
    crate::sys::random_bytes(&mut b);
    u16::from_ne_bytes(b)
}

impl DnsForwarder {
    pub fn new(upstreams: Vec<SocketAddr>) -> DnsForwarder {
        DnsForwarder::with_names(upstreams, shared_names())
    }

    pub fn with_names(upstreams: Vec<SocketAddr>, names: SharedNames) -> DnsForwarder {
        let tcp = DnsTcp::new(names.clone(), upstreams.clone());
        let mut pending = Vec::with_capacity(MAX_PENDING);
        pending.resize_with(MAX_PENDING, || None);
        DnsForwarder {
            upstreams,
            pending,
            free: (0..MAX_PENDING as u16).rev().collect(),
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
    pub fn tcp_target(&self, io: &mut dyn HostIo) -> Option<SocketAddr> {
        io.dns_tcp_addr(&self.tcp)
    }

    /// Says which container a connection to the TCP server, from local
    /// port `port`, is asking for.
    pub fn tcp_origin(&self, port: u16, origin: Origin) {
        self.tcp.expect(port, origin);
    }

    pub fn tcp_counters(&self) -> DnsTcpCounters {
        self.tcp.counters()
    }

    /// Queries waiting for an upstream.
    pub fn pending_len(&self) -> usize {
        MAX_PENDING - self.free.len()
    }

    /// Answers from the name table, if the name is ours; true if it did.
    #[allow(clippy::too_many_arguments)]
    fn answer_locally(
        &mut self,
        ep: &Endpoint,
        client: Ipv4Addr,
        client_port: u16,
        q: &w::Query<'_>,
        tx: &mut FrameBuf,
        emit: &mut dyn Emit,
        counters: &mut NatCounters,
    ) -> Result<bool, DropReason> {
        let space = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + w::MAX_UDP_LEN];
        let answer = local_answer(&mut self.names(), ep.net, client, ep.gateway_ip, q, space);
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

    /// A fresh socket of the family, on the poll under `token`.
    fn query_socket(v6: bool, token: usize, io: &mut dyn HostIo) -> io::Result<OwnedFd> {
        let s = io.udp_socket(v6)?;
        io.register(s.as_raw_fd(), token, Interest::READABLE)?;
        Ok(s)
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
        io: &mut dyn HostIo,
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
        let q = match w::parse_query(query) {
            Ok(q) => q,
            Err(_) => {
                counters.dns_malformed += 1;
                return Some(DropReason::MalformedPacket);
            }
        };
        match self.answer_locally(ep, client, client_port, &q, tx, emit, counters) {
            Ok(true) => return None,
            Ok(false) => {}
            Err(r) => return Some(r),
        }
        if self.upstreams.is_empty() {
            // No resolver known: say so at once (SERVFAIL) rather than let
            // the client wait out its timeout.
            reply_servfail(ep, client, client_port, &q, tx, emit);
            return None;
        }
        let Some(slot) = self.free.pop() else {
            counters.dns_refused += 1;
            return Some(DropReason::FlowLimit);
        };
        let slot = slot as usize;
        let mut p = Pending {
            ep: *ep,
            client,
            client_port,
            orig_id: q.id,
            id: random_id(),
            sent: now,
            question: [0; MAX_QUESTION],
            question_len: q.question.len().min(MAX_QUESTION) as u16,
            sock4: None,
            sock6: None,
        };
        p.question[..p.question_len as usize]
            .copy_from_slice(&q.question[..p.question_len as usize]);
        // The query, with our id, goes out from the tx buffer's payload
        // area (no allocation).
        let buf = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + query.len()];
        buf.copy_from_slice(query);
        buf[0..2].copy_from_slice(&p.id.to_be_bytes());
        let mut sent = false;
        for to in &self.upstreams {
            let v6 = to.is_ipv6();
            let have = if v6 { &mut p.sock6 } else { &mut p.sock4 };
            if have.is_none() {
                match Self::query_socket(v6, token(slot, v6), io) {
                    Ok(s) => *have = Some(s),
                    Err(_) => {
                        counters.dns_upstream_socket_failed += 1;
                        continue;
                    }
                }
            }
            let fd = have.as_ref().expect("just made").as_raw_fd();
            let buf = &tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + query.len()];
            if io.send_to(fd, buf, *to).is_ok() {
                sent = true;
            }
        }
        if !sent {
            close(p, io);
            self.free.push(slot as u16);
            reply_servfail(ep, client, client_port, &q, tx, emit);
            return None;
        }
        self.pending[slot] = Some(p);
        None
    }

    /// A poll event under `token` (relative to `DNS_TOKEN_BASE`): answers
    /// arriving on a pending query's socket.
    pub fn on_readable(
        &mut self,
        token: usize,
        io: &mut dyn HostIo,
        tx: &mut FrameBuf,
        emit: &mut dyn Emit,
        counters: &mut NatCounters,
    ) {
        let (slot, v6) = (token / 2, token % 2 == 1);
        let Some(Some(p)) = self.pending.get(slot) else {
            return;
        };
        let Some(fd) = p.sock(v6) else {
            return;
        };
        loop {
            let space = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + 65535 - 28];
            let (n, from) = match io.recv_from(fd, space) {
                Ok(r) => r,
                Err(_) => break,
            };
            if !self.upstreams.contains(&from) {
                counters.dns_answers_refused += 1;
                continue;
            }
            if !answers(p, &space[..n]) {
                // Not this query's answer: someone guessing, or an upstream
                // answering something else. Keep waiting for the real one.
                counters.dns_answers_refused += 1;
                continue;
            }
            space[0..2].copy_from_slice(&p.orig_id.to_be_bytes());
            let (ep, client, client_port) = (p.ep, p.client, p.client_port);
            emit_udp_from_gateway(&ep, client, client_port, n, tx);
            emit.emit(ep.port, tx);
            counters.dns_replies += 1;
            // The first answer wins; later ones die with the sockets.
            let p = self.pending[slot].take().expect("checked above");
            close(p, io);
            self.free.push(slot as u16);
            return;
        }
    }

    /// Forgets queries nobody answered in time.
    pub fn tick(&mut self, now: Time, io: &mut dyn HostIo, counters: &mut NatCounters) {
        if self.free.len() == MAX_PENDING {
            return;
        }
        for slot in 0..MAX_PENDING {
            let expired = self.pending[slot]
                .as_ref()
                .is_some_and(|p| now.saturating_sub(p.sent) >= QUERY_TIMEOUT);
            if expired {
                let p = self.pending[slot].take().expect("checked");
                close(p, io);
                self.free.push(slot as u16);
                counters.dns_timeouts += 1;
            }
        }
    }

    /// A port left: its queries' answers have nowhere to go (and its id may
    /// be reused by another container).
    pub fn port_removed(&mut self, port: PortId, io: &mut dyn HostIo) {
        for slot in 0..MAX_PENDING {
            if self.pending[slot]
                .as_ref()
                .is_some_and(|p| p.ep.port == port)
            {
                let p = self.pending[slot].take().expect("checked");
                close(p, io);
                self.free.push(slot as u16);
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

/// Answers a query with SERVFAIL (header flags QR, RD copied, RA, RCODE 2):
/// the header and the question, nothing after it (an EDNS record the
/// query carried is not echoed: the counts say there is none).
fn reply_servfail(
    ep: &Endpoint,
    client: Ipv4Addr,
    client_port: u16,
    q: &w::Query<'_>,
    tx: &mut FrameBuf,
    emit: &mut dyn Emit,
) {
    let n = DNS_HEADER_LEN + q.question.len();
    let buf = &mut tx.read_space()[PAYLOAD_OFFSET..PAYLOAD_OFFSET + n];
    buf[0..2].copy_from_slice(&q.id.to_be_bytes());
    buf[2] = 0x80 | u8::from(q.rd);
    buf[3] = 0x80 | w::rcode::SERVFAIL;
    buf[4..6].copy_from_slice(&1u16.to_be_bytes());
    buf[6..12].fill(0);
    buf[DNS_HEADER_LEN..].copy_from_slice(q.question);
    emit_udp_from_gateway(ep, client, client_port, n, tx);
    emit.emit(ep.port, tx);
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
    use crate::wire::dns::qtype;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(172, 17, 0, d)
    }

    /// What a resolution comes to, owned, for comparisons.
    #[derive(Debug, PartialEq, Eq)]
    enum R {
        A(Vec<Ipv4Addr>),
        Name(String),
        NoData,
        NxDomain,
        Forward,
    }

    fn res(t: &mut NameTable, net: u32, asker: Ipv4Addr, name: &str, qt: u16) -> R {
        match t.resolve(net, asker, GW, name, qt) {
            Resolution::Addresses(a) => R::A(a.collect()),
            Resolution::Name(n) => R::Name(n.to_string()),
            Resolution::NoData => R::NoData,
            Resolution::NxDomain => R::NxDomain,
            Resolution::Forward => R::Forward,
        }
    }

    fn table() -> NameTable {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), false);
        t.network_added(1, "10.9.0.0/24".parse().unwrap(), false);
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
        assert_eq!(res(&mut t, 0, ip(3), "web", qtype::A), R::A(vec![ip(2)]));
        assert_eq!(
            res(&mut t, 0, ip(3), "web.lanyard.internal", qtype::A),
            R::A(vec![ip(2)])
        );
        // Not visible from a network the asker is not on.
        assert_eq!(res(&mut t, 0, ip(2), "hidden", qtype::A), R::NxDomain);
        // c4 asks from network 1 and sees network 1's names.
        assert_eq!(
            res(&mut t, 1, Ipv4Addr::new(10, 9, 0, 4), "hidden", qtype::A),
            R::A(vec![Ipv4Addr::new(10, 9, 0, 5)])
        );
        // A container on both networks asking for one on both gets the
        // address on the network it asks from first.
        match res(&mut t, 1, Ipv4Addr::new(10, 9, 0, 4), "both", qtype::A) {
            R::A(a) => assert!(a.contains(&Ipv4Addr::new(10, 9, 0, 4))),
            other => panic!("{other:?}"),
        }
        assert_eq!(res(&mut t, 0, ip(2), "web", qtype::AAAA), R::NoData);
        assert_eq!(res(&mut t, 0, ip(2), "nothing", qtype::A), R::NxDomain);
        assert_eq!(
            res(&mut t, 0, ip(2), "nothing.lanyard.internal", qtype::A),
            R::NxDomain
        );
        assert_eq!(res(&mut t, 0, ip(2), "example.com", qtype::A), R::Forward);
        assert_eq!(
            res(&mut t, 0, ip(2), "host.docker.internal", qtype::A),
            R::A(vec![GW])
        );
        assert_eq!(
            res(&mut t, 0, ip(2), "host.lanyard.internal", qtype::A),
            R::A(vec![GW])
        );
    }

    #[test]
    fn shared_aliases_rotate() {
        let mut t = table();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..4 {
            match res(&mut t, 0, ip(4), "api", qtype::A) {
                R::A(a) => {
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
            res(&mut t, 0, ip(3), "2.0.17.172.in-addr.arpa", qtype::PTR),
            R::Name("web".into())
        );
        assert_eq!(
            res(&mut t, 0, ip(3), "99.0.17.172.in-addr.arpa", qtype::PTR),
            R::NxDomain
        );
        assert_eq!(
            res(&mut t, 0, ip(3), "8.8.8.8.in-addr.arpa", qtype::PTR),
            R::Forward
        );
    }

    #[test]
    fn removals_forget_names() {
        let mut t = table();
        t.remove(0, ip(2));
        assert_eq!(res(&mut t, 0, ip(3), "web", qtype::A), R::NxDomain);
        assert_eq!(res(&mut t, 0, ip(3), "api", qtype::A), R::A(vec![ip(3)]));
        t.network_removed(1);
        assert_eq!(
            res(&mut t, 1, Ipv4Addr::new(10, 9, 0, 4), "hidden", qtype::A),
            R::NxDomain
        );
    }

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

    #[test]
    fn rotation_keeps_the_askers_network_order_and_visits_every_start() {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), false);
        for d in 2..7 {
            t.add(
                0,
                ip(d),
                &format!("c{d}"),
                &[format!("c{d}"), "many".into()],
            );
        }
        let mut starts = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let R::A(a) = res(&mut t, 0, ip(2), "many", qtype::A) else {
                panic!()
            };
            // A rotation of 2..7: every address once, in cyclic order.
            assert_eq!(a.len(), 5);
            let k = a.iter().position(|x| *x == ip(2)).unwrap();
            let mut unrotated = a.clone();
            unrotated.rotate_left(k);
            assert_eq!(unrotated, (2..7).map(ip).collect::<Vec<_>>());
            starts.insert(a[0]);
        }
        assert_eq!(starts.len(), 5, "each address leads once in five queries");
    }

    #[test]
    fn internal_only_askers_are_not_forwarded_for() {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), false);
        t.network_added(1, "10.9.0.0/24".parse().unwrap(), true);
        let inside = Ipv4Addr::new(10, 9, 0, 2);
        t.add(1, inside, "c1", &["c1".into()]);
        assert!(!t.may_forward(1, inside));
        // Its own names still resolve.
        assert_eq!(res(&mut t, 1, inside, "c1", qtype::A), R::A(vec![inside]));
        // On a network with NAT as well: forwarded, as docker does.
        t.add(0, ip(9), "c1", &["c1".into()]);
        assert!(t.may_forward(1, inside));
        assert!(t.may_forward(0, ip(2)));
    }

    fn pending(id: u16, question: &[u8]) -> Pending {
        let mut p = Pending {
            ep: Endpoint {
                port: PortId(0),
                mac: crate::wire::MacAddr::ZERO,
                ip: ip(2),
                gateway_mac: crate::wire::MacAddr::ZERO,
                gateway_ip: GW,
                mtu: 1500,
                allow_host_loopback: false,
                internal: false,
                net: 0,
            },
            client: ip(2),
            client_port: 5000,
            orig_id: 1,
            id,
            sent: Time::ZERO,
            question: [0; MAX_QUESTION],
            question_len: question.len() as u16,
            sock4: None,
            sock6: None,
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
