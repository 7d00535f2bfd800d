//! The embedded DNS at every gateway address: what a container's resolver
//! (its resolv.conf names the gateway) talks to. Three parts, below nothing
//! of the NAT's:
//!
//! * `names`: the table of container names, aliases and short ids per
//!   network, and the answers built from it (docker's embedded DNS);
//! * `forward`: what the table does not answer goes to the host's
//!   resolvers over UDP, against forgery (a socket and a random id per
//!   query, answers checked);
//! * `tcp`: DNS over TCP, a small server on the host's loopback that the
//!   NAT connects containers' TCP to the gateway's port 53 to (a
//!   `host::LocalService`).
//!
//! [`Dns`] is what the switch holds: it takes UDP queries to the gateway's
//! port 53 (the gateway hands them over), answers or forwards them, takes
//! the upstreams' answers from the poll, and counts ([`DnsCounters`]).
//! Each client (a port: what a container cannot change) has a budget of
//! queries (`ratelimit::DNS_QUERIES`) and a share of the pending slots.
//! Nothing allocates per query.

pub mod forward;
pub mod names;
pub mod tcp;
pub mod upstreams;

use std::sync::{Arc, MutexGuard};

use crate::frame::FrameBuf;
use crate::host::{HostIo, LocalService};
use crate::inside::{Emit, Inside};
use crate::port::PortId;
use crate::ratelimit::SourceBudget;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::dns as w;

pub use forward::{
    parse_resolv_conf, DnsForwarder, MAX_PENDING, MAX_PENDING_PER_SOURCE, QUERY_TIMEOUT,
};
pub use names::{
    local_answer, shared_names, LocalAnswer, NameTable, Resolution, SharedNames, DOMAIN, TTL,
};
pub use tcp::{DnsTcp, DnsTcpCounters, Origin};
pub use upstreams::Upstreams;

/// The host's resolver list: where the upstreams come from when the
/// config names none, and what a container's resolv.conf copies options from.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

crate::stats::counters! {
    /// What the embedded DNS counts (`lanyard stats`, `dns`).
    pub struct DnsCounters {
        /// UDP messages to the embedded DNS (port 53) with a whole header and not a
        /// response, counted before the rate limit.
        queries,
        /// Upstream answers relayed to the asking container over UDP (the first valid
        /// answer to a forwarded query).
        replies,
        /// Forwarded UDP queries that no upstream answered within `QUERY_TIMEOUT` (5 s),
        /// then forgotten.
        timeouts,
        /// Queries refused because `MAX_PENDING` were waiting.
        refused,
        /// UDP queries answered by the gateway itself, not forwarded: records, NODATA,
        /// NXDOMAIN, or SERVFAIL where forwarding is not allowed.
        local_answers,
        /// UDP queries answered NXDOMAIN by the gateway: an unknown name of its domain, a
        /// single-label name, or an unknown address of its subnets (also in local_answers).
        nxdomain,
        /// UDP queries dropped because their container's budget of DNS queries was spent.
        rate_limited,
        /// UDP DNS messages dropped: shorter than a header, a response, or a query that
        /// does not parse.
        malformed,
        /// A query's own socket could not be made for an upstream.
        upstream_socket_failed,
        /// Datagrams on a query's socket that were not its answer (another
        /// source, id or question): forgery attempts, or late junk.
        answers_refused,
        /// Connections accepted by the DNS-over-TCP server (refused ones included).
        tcp_connections,
        /// DNS-over-TCP connections closed at accept: too many at once, no thread for
        /// them, or not announced by the NAT.
        tcp_refused,
        /// DNS-over-TCP connections closed because their asker already held
        /// `MAX_PER_CLIENT` of them.
        tcp_refused_per_client,
        /// DNS-over-TCP connections closed at the idle timeout or the whole-connection
        /// deadline.
        tcp_timed_out,
        /// Whole length-prefixed messages read on DNS-over-TCP connections.
        tcp_queries,
        /// DNS-over-TCP queries answered from the name table (records, NODATA, NXDOMAIN
        /// or SERVFAIL where forwarding is not allowed), not relayed.
        tcp_local_answers,
        /// DNS-over-TCP queries relayed to an upstream over TCP and answered by it.
        tcp_forwarded,
        /// DNS-over-TCP queries no upstream answered: the client got SERVFAIL.
        tcp_upstream_failures,
        /// DNS-over-TCP messages that do not parse as a query (or whose local answer could
        /// not be built); the connection is closed.
        tcp_malformed,
        /// Queries to forward refused because their asker already had its
        /// share of the pending slots waiting (`MAX_PENDING_PER_SOURCE`).
        refused_per_client,
    }
}

/// The embedded DNS of one data-path shard.
pub struct Dns {
    names: SharedNames,
    forwarder: DnsForwarder,
    tcp: Arc<DnsTcp>,
    /// Answers are built here, one at a time.
    tx: FrameBuf,
    counters: DnsCounters,
}

impl Dns {
    /// A DNS answering from `names` (shared with the other shards and the
    /// control plane) and forwarding to `upstreams`, for a switch of
    /// `max_ports` ports.
    pub fn new(upstreams: impl Into<Upstreams>, names: SharedNames, max_ports: usize) -> Dns {
        let upstreams = upstreams.into();
        Dns {
            tcp: Arc::new(DnsTcp::new(names.clone(), upstreams.clone())),
            forwarder: DnsForwarder::new(upstreams, max_ports),
            names,
            tx: FrameBuf::new(),
            counters: DnsCounters::default(),
        }
    }

    /// The name table (control plane).
    pub fn names(&self) -> MutexGuard<'_, NameTable> {
        // Every mutation of the table is complete-or-nothing: a panic in
        // the other holder leaves it usable.
        self.names.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The DNS-over-TCP server, as the NAT sees it: a service of the
    /// gateway's port 53.
    pub fn tcp_service(&self) -> Arc<dyn LocalService> {
        self.tcp.clone()
    }

    /// The counters, with those of the TCP server (kept on its threads).
    pub fn counters(&self) -> DnsCounters {
        let mut c = self.counters;
        let t = self.tcp.counters();
        c.tcp_connections = t.connections;
        c.tcp_refused = t.refused;
        c.tcp_refused_per_client = t.refused_per_client;
        c.tcp_timed_out = t.timed_out;
        c.tcp_queries = t.queries;
        c.tcp_local_answers = t.local_answers;
        c.tcp_forwarded = t.forwarded;
        c.tcp_upstream_failures = t.upstream_failures;
        c.tcp_malformed = t.malformed;
        c
    }

    /// Queries waiting for an upstream.
    pub fn pending_len(&self) -> usize {
        self.forwarder.pending_len()
    }

    /// Queries of `port` waiting for an upstream.
    pub fn pending_of(&self, port: PortId) -> u16 {
        self.forwarder.pending_of(port)
    }

    /// A UDP query from `from` (its address, port `client_port`) to the
    /// gateway's port 53: answered from the names, forwarded upstream, or
    /// refused (the reason returned). `budget` is the sending port's: the
    /// query is charged to it.
    #[allow(clippy::too_many_arguments)]
    pub fn query(
        &mut self,
        from: &Inside,
        client_port: u16,
        query: &[u8],
        budget: &mut SourceBudget,
        now: Time,
        io: &mut dyn HostIo,
        emit: &mut dyn Emit,
    ) -> Option<DropReason> {
        let c = &mut self.counters;
        if query.len() < w::HEADER_LEN || query[2] & 0x80 != 0 {
            c.malformed += 1;
            return Some(DropReason::MalformedPacket);
        }
        c.queries += 1;
        if !budget.dns_queries.allow(now) {
            self.counters.rate_limited += 1;
            return Some(DropReason::RateLimited);
        }
        let q = match w::parse_query(query) {
            Ok(q) => q,
            Err(_) => {
                self.counters.malformed += 1;
                return Some(DropReason::MalformedPacket);
            }
        };
        let at = forward::payload_offset(from);
        let space = &mut self.tx.read_space()[at..at + w::MAX_UDP_LEN];
        let (answer, own) = {
            let mut names = self.names.lock().unwrap_or_else(|p| p.into_inner());
            let answer = local_answer(&mut names, from.net, from.ip, &q, space);
            let own = match answer {
                LocalAnswer::Forward => names.resolvers_of(from.net, from.ip),
                _ => None,
            };
            (answer, own)
        };
        let n = match answer {
            LocalAnswer::Forward => {
                return self.forwarder.forward(
                    from,
                    client_port,
                    query,
                    &q,
                    own,
                    now,
                    io,
                    &mut self.tx,
                    emit,
                    &mut self.counters,
                );
            }
            LocalAnswer::NxDomain(n) => {
                self.counters.nxdomain += 1;
                n
            }
            LocalAnswer::Answer(n) => n,
        };
        if n == 0 {
            return Some(DropReason::MalformedPacket);
        }
        self.counters.local_answers += 1;
        forward::emit_udp_from_gateway(from, client_port, n, &mut self.tx);
        emit.emit(from.port, &mut self.tx);
        None
    }

    /// A poll event on a pending query's socket.
    pub fn on_event(&mut self, slot: u32, v6: bool, io: &mut dyn HostIo, emit: &mut dyn Emit) {
        self.forwarder
            .on_readable(slot, v6, io, &mut self.tx, emit, &mut self.counters);
    }

    /// Timers: queries nobody answered.
    pub fn tick(&mut self, now: Time, io: &mut dyn HostIo) {
        self.forwarder.tick(now, io, &mut self.counters);
    }

    /// A port left: its pending queries go.
    pub fn port_removed(&mut self, port: PortId, io: &mut dyn HostIo) {
        self.forwarder.port_removed(port, io);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::FakeIo;
    use crate::ratelimit::{SourceBudget, SourceLimits};
    use crate::wire::MacAddr;
    use std::net::Ipv4Addr;

    struct Sink;
    impl Emit for Sink {
        fn emit(&mut self, _port: PortId, _frame: &mut FrameBuf) {}
    }

    fn asker(port: u32) -> Inside {
        let ip = Ipv4Addr::new(172, 17, 0, 2 + port as u8);
        Inside {
            port: PortId(port),
            mac: MacAddr::docker_from_ipv4(ip),
            ip: ip.into(),
            gateway_mac: MacAddr::docker_from_ipv4(Ipv4Addr::new(172, 17, 0, 1)),
            gateway_ip: Ipv4Addr::new(172, 17, 0, 1).into(),
            mtu: 1500,
            allow_host_loopback: false,
            loopback_unreachable: false,
            internal: false,
            net: 0,
        }
    }

    fn query(i: u32) -> Vec<u8> {
        let mut q = vec![0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0];
        let label = format!("n{i}");
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
        q.extend_from_slice(b"\x07example\x00\x00\x01\x00\x01");
        q
    }

    /// One asker whose queries no upstream answers holds at most its share
    /// of the pending slots; another asker's query is still forwarded.
    #[test]
    fn one_asker_holds_at_most_its_share_of_the_pending_queries() {
        let upstream: std::net::SocketAddr = "127.0.0.1:5353".parse().unwrap();
        let mut dns = Dns::new(vec![upstream], shared_names(), 4);
        dns.names().network_added(
            0,
            "172.17.0.0/16".parse().unwrap(),
            Ipv4Addr::new(172, 17, 0, 1),
            None,
            false,
        );
        let (mut io, _handle) = FakeIo::new().unwrap();
        // Its query budget aside (unlimited here): the share is the bound.
        let mut flooder = SourceBudget::unlimited();
        let refused = (0..300)
            .filter_map(|i| {
                dns.query(
                    &asker(0),
                    1000,
                    &query(i),
                    &mut flooder,
                    Time::ZERO,
                    &mut io,
                    &mut Sink,
                )
            })
            .collect::<Vec<_>>();
        assert_eq!(dns.pending_of(PortId(0)), MAX_PENDING_PER_SOURCE);
        assert_eq!(refused.len(), 300 - MAX_PENDING_PER_SOURCE as usize);
        assert!(refused.iter().all(|r| *r == DropReason::DnsPendingLimit));
        assert_eq!(dns.counters().refused_per_client, refused.len() as u64);
        let mut polite = SourceBudget::new(&SourceLimits::default());
        assert_eq!(
            dns.query(
                &asker(1),
                1000,
                &query(999),
                &mut polite,
                Time::ZERO,
                &mut io,
                &mut Sink
            ),
            None
        );
        assert_eq!(dns.pending_of(PortId(1)), 1);
        // Expired, they give their share back.
        dns.tick(Time::ZERO.saturating_add(QUERY_TIMEOUT), &mut io);
        assert_eq!(dns.pending_of(PortId(0)), 0);
        assert_eq!(dns.pending_len(), 0);
    }

    /// The query budget is the asking port's, whatever address it asks
    /// from.
    #[test]
    fn the_query_budget_is_the_ports() {
        let mut dns = Dns::new(Vec::new(), shared_names(), 4);
        let (mut io, _handle) = FakeIo::new().unwrap();
        let mut budget = SourceBudget::new(&SourceLimits::default());
        let burst = crate::ratelimit::DNS_QUERIES.burst;
        let mut limited = 0;
        for i in 0..burst + 10 {
            // Each from another address: the budget is the same.
            let mut from = asker(0);
            from.ip = Ipv4Addr::new(10, 0, (i >> 8) as u8, i as u8).into();
            if dns.query(
                &from,
                1000,
                &query(i),
                &mut budget,
                Time::ZERO,
                &mut io,
                &mut Sink,
            ) == Some(DropReason::RateLimited)
            {
                limited += 1;
            }
        }
        assert_eq!(limited, 10);
        assert_eq!(dns.counters().rate_limited, 10);
    }
}
