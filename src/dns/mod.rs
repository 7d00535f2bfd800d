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
//! Each client has a token bucket. Nothing allocates per query.

pub mod forward;
pub mod names;
pub mod tcp;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, MutexGuard};

use hashbrown::HashMap;

use crate::frame::FrameBuf;
use crate::host::{HostIo, LocalService};
use crate::inside::{Emit, Inside};
use crate::port::PortId;
use crate::ratelimit::RateLimiter;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::dns as w;

pub use forward::{parse_resolv_conf, DnsForwarder, MAX_PENDING, QUERY_TIMEOUT};
pub use names::{
    local_answer, shared_names, LocalAnswer, NameTable, Resolution, SharedNames, DOMAIN, TTL,
};
pub use tcp::{DnsTcp, DnsTcpCounters, Origin};

/// Queries per second a client may ask, and its burst.
/// The host's resolver list: where the upstreams come from when the
/// config names none, and what a container's resolv.conf copies options from.
pub const HOST_RESOLV_CONF: &str = "/etc/resolv.conf";

pub const CLIENT_QPS: u32 = 200;
pub const CLIENT_BURST: u32 = 400;
/// Clients tracked by the rate limiter; the table is cleared when full.
const MAX_CLIENTS: usize = 4096;

crate::stats::counters! {
    /// What the embedded DNS counts (`lanyard stats`, `dns`).
    pub struct DnsCounters {
        queries,
        replies,
        timeouts,
        /// Queries refused because `MAX_PENDING` were waiting.
        refused,
        local_answers,
        nxdomain,
        rate_limited,
        malformed,
        /// A query's own socket could not be made for an upstream.
        upstream_socket_failed,
        /// Datagrams on a query's socket that were not its answer (another
        /// source, id or question): forgery attempts, or late junk.
        answers_refused,
        tcp_connections,
        tcp_refused,
        tcp_refused_per_client,
        tcp_timed_out,
        tcp_queries,
        tcp_local_answers,
        tcp_forwarded,
        tcp_upstream_failures,
        tcp_malformed,
    }
}

/// The embedded DNS of one data-path shard.
pub struct Dns {
    names: SharedNames,
    forwarder: DnsForwarder,
    tcp: Arc<DnsTcp>,
    /// Per-client budgets, by the client's address (of either family).
    limits: HashMap<IpAddr, RateLimiter>,
    /// Answers are built here, one at a time.
    tx: FrameBuf,
    counters: DnsCounters,
}

impl Dns {
    /// A DNS answering from `names` (shared with the other shards and the
    /// control plane) and forwarding to `upstreams`.
    pub fn new(upstreams: Vec<SocketAddr>, names: SharedNames) -> Dns {
        Dns {
            tcp: Arc::new(DnsTcp::new(names.clone(), upstreams.clone())),
            forwarder: DnsForwarder::new(upstreams),
            names,
            limits: HashMap::with_capacity(MAX_CLIENTS),
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

    /// Spends one query of `client`'s budget; false when it is spent.
    fn allow(&mut self, client: IpAddr, now: Time) -> bool {
        if !self.limits.contains_key(&client) && self.limits.len() >= MAX_CLIENTS {
            self.limits.clear();
        }
        self.limits
            .entry(client)
            .or_insert_with(|| RateLimiter::new(CLIENT_QPS, CLIENT_BURST).starting_at(now))
            .allow(now)
    }

    /// A UDP query from `from` (its address, port `client_port`) to the
    /// gateway's port 53: answered from the names, forwarded upstream, or
    /// refused (the reason returned).
    pub fn query(
        &mut self,
        from: &Inside,
        client_port: u16,
        query: &[u8],
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
        if !self.allow(from.ip, now) {
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
        let answer = local_answer(
            &mut self.names.lock().unwrap_or_else(|p| p.into_inner()),
            from.net,
            from.ip,
            &q,
            space,
        );
        let n = match answer {
            LocalAnswer::Forward => {
                return self.forwarder.forward(
                    from,
                    client_port,
                    query,
                    &q,
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
