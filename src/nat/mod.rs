//! Rootless NAT: docker's MASQUERADE done with ordinary host sockets.
//!
//! A container's routed packet reaches the gateway; the gateway hands it
//! here. Each 5-tuple becomes a flow in a bounded conntrack table with one
//! host socket: TCP is translated segment by segment onto a stream socket
//! (`tcp`), UDP datagrams onto a connected datagram socket (`udp`), ICMP
//! echo onto an unprivileged ping socket (`icmp`); DNS to the gateway is
//! forwarded to the host's resolvers (`dns`). Replies come back as frames
//! from the original destination. The sockets live on the data path's mio
//! poll; a flow's index in the table is its poll token.
//!
//! Nothing here parses more of a frame than it needs, and every byte that
//! reaches a socket has passed the switch's port security.

pub mod dns;
pub mod dns_tcp;
pub mod forward;
pub mod host;
pub mod icmp;
pub mod policy;
pub mod sock;
pub mod table;
pub mod tcp;
pub mod udp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use mio::{Interest, Registry};
use serde::{Deserialize, Serialize};

use crate::frame::FrameBuf;
use crate::log;
use crate::port::PortId;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::ethernet::{self, ethertype};
use crate::wire::ipv4::{protocol, Ipv4Packet, Ipv4Repr};
use crate::wire::vnet::VnetHdr;
use crate::wire::MacAddr;

pub use forward::FORWARD_TOKEN_BASE;
pub use table::{FlowId, FlowKey, Proto};
use table::{FlowTable, Refused};

/// Poll tokens at and above this belong to NAT flows (token - base = flow).
pub const FLOW_TOKEN_BASE: usize = 1 << 24;
/// Poll tokens for the DNS forwarder's upstream sockets.
pub const DNS_TOKEN_BASE: usize = 1 << 23;

/// Limits and timeouts (config `[nat]` and `[dns]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    pub max_flows: usize,
    pub max_flows_per_container: u32,
    pub tcp_established_timeout: Duration,
    pub tcp_transitory_timeout: Duration,
    pub udp_timeout: Duration,
    pub udp_stream_timeout: Duration,
    pub icmp_timeout: Duration,
    pub dns_upstreams: Vec<SocketAddr>,
}

impl Default for NatConfig {
    fn default() -> Self {
        NatConfig {
            max_flows: 65536,
            max_flows_per_container: 4096,
            tcp_established_timeout: Duration::from_secs(7440),
            tcp_transitory_timeout: Duration::from_secs(240),
            udp_timeout: Duration::from_secs(30),
            udp_stream_timeout: Duration::from_secs(180),
            icmp_timeout: Duration::from_secs(30),
            dns_upstreams: Vec::new(),
        }
    }
}

/// The container end of a flow: where its frames go and what they look
/// like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoint {
    pub port: PortId,
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub gateway_mac: MacAddr,
    pub gateway_ip: Ipv4Addr,
    pub mtu: u32,
    pub allow_host_loopback: bool,
    /// Its network has no NAT (docker's `--internal`): only the gateway's
    /// DNS is served.
    pub internal: bool,
    /// The network it is on (for DNS: names resolve within networks).
    pub net: u32,
}

/// Where NAT-built frames go: implemented by the switch (a port's send
/// path with its offload fallback) and by tests.
pub trait Emit {
    fn emit(&mut self, port: PortId, frame: &mut FrameBuf);
}

crate::stats::counters! {
    /// What the NAT counts, besides per-port drops.
    pub struct NatCounters {
        tcp_flows,
        udp_flows,
        icmp_flows,
        flows_evicted,
        flows_expired,
        flows_refused_limit,
        tcp_connect_failed,
        tcp_resets_to_container,
        tcp_retransmits,
        tcp_bad_segments,
        udp_send_failed,
        icmp_unavailable,
        host_socket_failed,
        /// Packets to the host's loopback as given (127.0.0.0/8, 0.0.0.0/8)
        /// refused (policy::destination).
        loopback_refused,
        /// Packets from a source no host has (0.0.0.0, loopback, group
        /// addresses, the gateway's own) refused.
        bad_source_refused,
        dns_queries,
        dns_replies,
        dns_timeouts,
        dns_refused,
        dns_local_answers,
        dns_nxdomain,
        dns_rate_limited,
        dns_malformed,
        /// A query's own socket could not be made for an upstream.
        dns_upstream_socket_failed,
        /// Datagrams on a query's socket that were not its answer (another
        /// source, id or question): forgery attempts, or late junk.
        dns_answers_refused,
        dns_tcp_connections,
        dns_tcp_refused,
        dns_tcp_refused_per_client,
        dns_tcp_timed_out,
        dns_tcp_queries,
        dns_tcp_local_answers,
        dns_tcp_forwarded,
        dns_tcp_upstream_failures,
        dns_tcp_malformed,
    }
}

/// One flow, as `lanyard conntrack` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FlowReport {
    pub proto: String,
    pub container: String,
    pub remote: String,
    /// Where the host socket actually goes (differs for host loopback
    /// and DNS).
    pub target: String,
    pub state: String,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub age_secs: f64,
    pub idle_secs: f64,
}

pub enum FlowState {
    Tcp(tcp::TcpConn),
    Udp(udp::UdpFlow),
    Icmp(icmp::IcmpFlow),
}

pub struct Flow {
    pub ep: Endpoint,
    pub sock: OwnedFd,
    pub target: SocketAddr,
    pub created: Time,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub state: FlowState,
    /// Its index in the NAT's busy list, or `NOT_BUSY`: kept so that a
    /// flow leaves the list in O(1) however long it is.
    busy_at: u32,
}

const NOT_BUSY: u32 = u32::MAX;

impl Flow {
    pub fn new(
        ep: Endpoint,
        sock: OwnedFd,
        target: SocketAddr,
        now: Time,
        state: FlowState,
    ) -> Flow {
        Flow {
            ep,
            sock,
            target,
            created: now,
            bytes_out: 0,
            bytes_in: 0,
            state,
            busy_at: NOT_BUSY,
        }
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

/// What to do with a flow after handling an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    Keep,
    /// Remove the flow; its socket closes normally.
    Close,
    /// Remove the flow and reset the host side (close with SO_LINGER 0).
    Abort,
}

pub struct Nat {
    cfg: NatConfig,
    table: FlowTable<Flow>,
    /// Host sockets and their poll: real ones, or a fake (fuzzing).
    io: Box<dyn host::HostIo>,
    /// Frames the NAT builds, one at a time.
    tx: FrameBuf,
    /// Flows with data in flight toward their container (retransmission
    /// timers), checked every tick. Each flow is on it at most once (its
    /// `busy_at` says where), so it never outgrows the table.
    busy: Vec<FlowId>,
    /// Next flow index the incremental idle sweep looks at.
    sweep: usize,
    dns: dns::DnsForwarder,
    /// Published ports, by forward id.
    forwards: Vec<Option<forward::Forward>>,
    icmp_warned: bool,
    /// TCP flows with deferred work (an acknowledgement, a discard) for the
    /// next flush: at most one entry each, sized once for the whole table.
    pending: Vec<FlowId>,
    isn_state: u64,
    pub counters: NatCounters,
}

impl Nat {
    pub fn new(cfg: NatConfig) -> Nat {
        Nat::with_names(cfg, dns::shared_names())
    }

    /// A NAT whose embedded DNS answers from `names` (shared between the
    /// shards of a data path).
    pub fn with_names(cfg: NatConfig, names: dns::SharedNames) -> Nat {
        let max_flows = cfg.max_flows;
        let mut seed = [0u8; 8];
        crate::sys::random_bytes(&mut seed);
        Nat {
            table: FlowTable::new(cfg.max_flows, cfg.max_flows_per_container),
            dns: dns::DnsForwarder::with_names(cfg.dns_upstreams.clone(), names),
            forwards: Vec::new(),
            cfg,
            io: Box::new(host::RealIo::default()),
            tx: FrameBuf::new(),
            busy: Vec::with_capacity(max_flows),
            sweep: 0,
            icmp_warned: false,
            pending: Vec::with_capacity(max_flows),
            isn_state: u64::from_ne_bytes(seed) | 1,
            counters: NatCounters::default(),
        }
    }

    /// Host sockets are registered here; without a registry (unit tests)
    /// no flow can be opened.
    pub fn set_registry(&mut self, r: Registry) {
        self.io.set_registry(r);
    }

    /// Runs the NAT over `io` instead of real sockets (the fuzzer's fake).
    pub fn set_io(&mut self, io: Box<dyn host::HostIo>) {
        self.io = io;
    }

    pub fn config(&self) -> &NatConfig {
        &self.cfg
    }

    pub fn flow_count(&self) -> usize {
        self.table.len()
    }

    /// A fresh initial sequence number (xorshift; unpredictable enough for
    /// a link between us and the container's own kernel).
    fn next_isn(&mut self) -> u32 {
        let mut x = self.isn_state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.isn_state = x;
        (x >> 16) as u32
    }

    /// Adds a flow with its socket registered for `interest`; on a full
    /// table the least recently active flow is dropped first.
    fn add_flow(
        &mut self,
        key: FlowKey,
        flow: Flow,
        interest: Interest,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Result<FlowId, DropReason> {
        let fd = flow.fd();
        let port = flow.ep.port;
        let (id, evicted) = match self.table.insert(key, port, flow, now) {
            Ok(r) => r,
            Err((Refused::EndpointLimit, _flow)) => {
                self.counters.flows_refused_limit += 1;
                return Err(DropReason::FlowLimit);
            }
        };
        if let Some((k, old)) = evicted {
            self.counters.flows_evicted += 1;
            self.finish_flow(&k, old, Next::Abort, emit);
        }
        if let Err(e) = self
            .io
            .register(fd, FLOW_TOKEN_BASE + id.0 as usize, interest)
        {
            log::warn!("cannot poll a NAT socket: {e}");
            self.table.remove(id);
            self.counters.host_socket_failed += 1;
            return Err(DropReason::HostSocketFailed);
        }
        match key.proto {
            Proto::Tcp => self.counters.tcp_flows += 1,
            Proto::Udp => self.counters.udp_flows += 1,
            Proto::Icmp => self.counters.icmp_flows += 1,
        }
        Ok(id)
    }

    /// Adds a flow whose socket is not polled on its own (it shares a
    /// published UDP port's socket, which is).
    fn add_unpolled_flow(
        &mut self,
        key: FlowKey,
        flow: Flow,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Option<FlowId> {
        let port = flow.ep.port;
        match self.table.insert(key, port, flow, now) {
            Ok((id, evicted)) => {
                if let Some((k, old)) = evicted {
                    self.counters.flows_evicted += 1;
                    self.finish_flow(&k, old, Next::Abort, emit);
                }
                self.counters.udp_flows += 1;
                Some(id)
            }
            Err(_) => {
                self.counters.flows_refused_limit += 1;
                None
            }
        }
    }

    /// Removes a flow and closes its socket; `Abort` also resets both
    /// sides (the container gets a RST for a TCP flow).
    fn remove_flow(&mut self, id: FlowId, how: Next, emit: &mut dyn Emit) {
        if let Some((k, f)) = self.table.remove(id) {
            self.finish_flow(&k, f, how, emit);
        }
    }

    /// Takes the entry at `pos` off the busy list; the last entry moves
    /// into its place (and is told so).
    fn busy_remove_at(&mut self, pos: u32) {
        let pos = pos as usize;
        if pos >= self.busy.len() {
            return;
        }
        self.busy.swap_remove(pos);
        if let Some(&moved) = self.busy.get(pos) {
            if let Some(f) = self.table.get_mut(moved) {
                f.busy_at = pos as u32;
            }
        }
    }

    /// A flow (already out of the table, or about to be) leaves the busy
    /// list.
    fn unbusy(&mut self, f: &mut Flow) {
        let pos = std::mem::replace(&mut f.busy_at, NOT_BUSY);
        if pos != NOT_BUSY {
            self.busy_remove_at(pos);
        }
    }

    fn finish_flow(&mut self, key: &FlowKey, mut f: Flow, how: Next, emit: &mut dyn Emit) {
        self.unbusy(&mut f);
        if let (Next::Close, FlowState::Tcp(c)) = (how, &mut f.state) {
            tcp::discard_before_close(c, f.sock.as_raw_fd(), &mut *self.io, &mut self.tx);
        }
        if how == Next::Abort {
            self.io.set_linger_zero(f.fd());
            if let FlowState::Tcp(c) = &mut f.state {
                if c.is_synchronized() {
                    tcp::send_reset(c, key, &f.ep, &mut self.tx, emit);
                    self.counters.tcp_resets_to_container += 1;
                }
            }
        }
        self.io.deregister(f.fd());
        drop(f);
    }

    /// A routed (or gateway-addressed, for DNS and host loopback) IPv4
    /// packet from a container. Returns why it was dropped, if it was.
    pub fn outbound(
        &mut self,
        ep: &Endpoint,
        buf: &FrameBuf,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Option<DropReason> {
        let vnet = buf.vnet();
        let (ip, l4) = match routed_packet(buf) {
            Ok(p) => p,
            Err(r) => return Some(r),
        };
        if !policy::valid_source(ip.src(), ep.gateway_ip) {
            self.counters.bad_source_refused += 1;
            return Some(DropReason::SpoofedSrcIp);
        }
        match ip.protocol() {
            protocol::TCP => self.tcp_outbound(ep, &ip, l4, &vnet, now, emit),
            protocol::UDP => self.udp_outbound(ep, &ip, l4, now, emit),
            protocol::ICMP => self.icmp_outbound(ep, &ip, l4, &vnet, now, emit),
            _ => Some(DropReason::NotServed),
        }
    }

    /// Where a new flow's host socket may connect: `policy::destination`,
    /// with refusals counted. `Dns` is for the caller to resolve (UDP to
    /// the forwarder, TCP to the DNS-over-TCP server).
    fn target_for(&mut self, ep: &Endpoint, dst: Ipv4Addr, port: u16) -> policy::Target {
        let t = policy::destination(ep, dst, port);
        if let policy::Target::Refuse(policy::Refusal::HostLoopback) = t {
            self.counters.loopback_refused += 1;
        }
        t
    }

    /// Ends a batch of frames from the containers: what was deferred while
    /// handling it (TCP acknowledgements and discards) is done now.
    pub fn flush(&mut self, emit: &mut dyn Emit) {
        if !self.pending.is_empty() {
            self.flush_tcp(emit);
        }
    }

    /// A poll event on a flow's socket.
    pub fn on_flow_event(
        &mut self,
        token: usize,
        readable: bool,
        writable: bool,
        now: Time,
        emit: &mut dyn Emit,
    ) {
        let id = FlowId((token - FLOW_TOKEN_BASE) as u32);
        let Some(key) = self.table.key(id).copied() else {
            return;
        };
        let next = match self
            .table
            .get(id)
            .map(|f| matches!(f.state, FlowState::Tcp(_)))
        {
            Some(true) => self.tcp_event(id, &key, readable, writable, now, emit),
            Some(false) => match key.proto {
                Proto::Udp => self.udp_event(id, &key, now, emit),
                Proto::Icmp => self.icmp_event(id, &key, now, emit),
                Proto::Tcp => Next::Keep,
            },
            None => return,
        };
        if next != Next::Keep {
            self.remove_flow(id, next, emit);
        }
    }

    /// The names the embedded DNS answers (control plane).
    pub fn names(&mut self) -> std::sync::MutexGuard<'_, dns::NameTable> {
        self.dns.names()
    }

    /// The counters, with those of the DNS-over-TCP server (kept apart,
    /// on its own threads).
    pub fn counters_snapshot(&self) -> NatCounters {
        let mut c = self.counters;
        let t = self.dns.tcp_counters();
        c.dns_tcp_connections = t.connections;
        c.dns_tcp_refused = t.refused;
        c.dns_tcp_refused_per_client = t.refused_per_client;
        c.dns_tcp_timed_out = t.timed_out;
        c.dns_tcp_queries = t.queries;
        c.dns_tcp_local_answers = t.local_answers;
        c.dns_tcp_forwarded = t.forwarded;
        c.dns_tcp_upstream_failures = t.upstream_failures;
        c.dns_tcp_malformed = t.malformed;
        c
    }

    /// A poll event on a DNS upstream socket.
    pub fn on_dns_event(&mut self, token: usize, _now: Time, emit: &mut dyn Emit) {
        let i = token - DNS_TOKEN_BASE;
        self.dns
            .on_readable(i, &mut *self.io, &mut self.tx, emit, &mut self.counters);
    }

    /// Timers: retransmissions toward containers, idle flows, DNS queries.
    pub fn tick(&mut self, now: Time, emit: &mut dyn Emit) {
        let mut i = 0;
        while i < self.busy.len() {
            let id = self.busy[i];
            match self.tcp_timer(id, now, emit) {
                Some(Next::Keep) => i += 1,
                // Nothing in flight any more: off the list (the last entry
                // moves to `i`, looked at next).
                None => {
                    if let Some(f) = self.table.get_mut(id) {
                        f.busy_at = NOT_BUSY;
                    }
                    self.busy_remove_at(i as u32);
                }
                // Removing the flow takes it off the list.
                Some(next) => self.remove_flow(id, next, emit),
            }
        }
        // Idle flows: a slice of the table per tick, so a large table costs
        // little per tick and every flow is looked at within seconds.
        let cap = self.table.capacity();
        for _ in 0..cap.min(1024) {
            self.sweep = (self.sweep + 1) % cap.max(1);
            let id = FlowId(self.sweep as u32);
            let (Some(flow), Some(last)) = (self.table.get(id), self.table.last_active(id)) else {
                continue;
            };
            let timeout = match &flow.state {
                FlowState::Tcp(c) => {
                    if c.is_established_both_ways() {
                        self.cfg.tcp_established_timeout
                    } else {
                        self.cfg.tcp_transitory_timeout
                    }
                }
                FlowState::Udp(u) => {
                    if u.replied {
                        self.cfg.udp_stream_timeout
                    } else {
                        self.cfg.udp_timeout
                    }
                }
                FlowState::Icmp(_) => self.cfg.icmp_timeout,
            };
            if now.saturating_sub(last) > timeout {
                self.counters.flows_expired += 1;
                self.remove_flow(id, Next::Abort, emit);
            }
        }
        self.dns.tick(now, &mut *self.io, &mut self.counters);
    }

    /// A port left: its published ports close (freeing the host ports)
    /// and its flows go, host sides reset.
    pub fn port_removed(&mut self, port: PortId, emit: &mut dyn Emit) {
        self.remove_forwards_of(port);
        self.dns.port_removed(port, &mut *self.io);
        for id in self.table.owned_by(port) {
            // No frame can reach the container any more: close quietly.
            if let Some((_, mut f)) = self.table.remove(id) {
                self.unbusy(&mut f);
                self.io.set_linger_zero(f.fd());
                self.io.deregister(f.fd());
            }
        }
        let _ = emit;
    }

    pub fn report(&self, now: Time) -> Vec<FlowReport> {
        self.table
            .iter()
            .map(|(id, k, f)| FlowReport {
                proto: k.proto.to_string(),
                container: k.inside.to_string(),
                remote: k.outside.to_string(),
                target: f.target.to_string(),
                state: match &f.state {
                    FlowState::Tcp(c) => c.state_name().to_string(),
                    FlowState::Udp(u) => {
                        if u.replied { "replied" } else { "unreplied" }.to_string()
                    }
                    FlowState::Icmp(_) => "echo".to_string(),
                },
                bytes_out: f.bytes_out,
                bytes_in: f.bytes_in,
                age_secs: now.saturating_sub(f.created).as_secs_f64(),
                idle_secs: self
                    .table
                    .last_active(id)
                    .map_or(0.0, |t| now.saturating_sub(t).as_secs_f64()),
            })
            .collect()
    }

    fn mark_busy(&mut self, id: FlowId) {
        let pos = self.busy.len() as u32;
        if let Some(f) = self.table.get_mut(id) {
            if f.busy_at == NOT_BUSY {
                f.busy_at = pos;
                self.busy.push(id);
            }
        }
    }

    /// Flows on the busy list (for tests: never more than the table).
    pub fn busy_len(&self) -> usize {
        self.busy.len()
    }
}

/// The IPv4 packet a container routed to the gateway, and its transport
/// bytes (for a GSO super-frame: everything after the IP header).
fn routed_packet(buf: &FrameBuf) -> Result<(Ipv4Packet<&[u8]>, &[u8]), DropReason> {
    let frame = buf.frame();
    let vnet = buf.vnet();
    let l3 = frame
        .get(ethernet::HEADER_LEN..)
        .ok_or(DropReason::Truncated)?;
    let ip = if vnet.is_gso() {
        Ipv4Packet::new_checked_gso(l3)
    } else {
        Ipv4Packet::new_checked(l3)
    }
    .map_err(|_| DropReason::MalformedPacket)?;
    if ip.is_fragment() {
        // Flows are keyed by ports, which only the first fragment carries;
        // the container's PMTU discovery avoids fragments.
        return Err(DropReason::Fragment);
    }
    if ip.ttl() <= 1 {
        return Err(DropReason::NoRoute);
    }
    let hl = ip.header_len();
    let l4 = if vnet.is_gso() {
        &l3[hl..]
    } else {
        // The payload as declared by the total length (checked above to fit).
        &l3[hl..ip.total_len().clamp(hl, l3.len())]
    };
    Ok((ip, l4))
}

/// Writes Ethernet + IPv4 headers of a frame from `src` (the far end, or the
/// gateway) to the endpoint into `out`; returns the offset of the transport
/// header. `l4_len` must leave the IPv4 total length within 65535.
pub(crate) fn emit_ipv4_to(
    out: &mut FrameBuf,
    ep: &Endpoint,
    src: Ipv4Addr,
    proto: u8,
    l4_len: usize,
) -> usize {
    let buf = out.read_space();
    let n = ethernet::emit_header(buf, ep.mac, ep.gateway_mac, ethertype::IPV4);
    n + Ipv4Repr {
        src,
        dst: ep.ip,
        protocol: proto,
        payload_len: l4_len,
        ttl: 64,
        ident: 0,
    }
    .emit(&mut buf[n..])
}

/// GSO parameters of a frame the NAT builds: kind, segment size, and the
/// length of the headers in front of the payload.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gso {
    pub kind: u8,
    pub size: u16,
    pub hdr_len: u16,
}

/// Finishes a frame built with `emit_ipv4_to`: length and a vnet header
/// asking for the transport checksum (`csum_offset` into the L4 header) to
/// be completed, plus GSO when given.
pub(crate) fn finish_frame(out: &mut FrameBuf, len: usize, csum_offset: u16, gso: Option<Gso>) {
    out.set_len(len);
    let g = gso.unwrap_or(Gso {
        kind: 0,
        size: 0,
        hdr_len: 0,
    });
    out.set_vnet(VnetHdr {
        flags: crate::wire::vnet::flags::NEEDS_CSUM,
        gso_type: g.kind,
        hdr_len: g.hdr_len,
        gso_size: g.size,
        csum_start: (ethernet::HEADER_LEN + 20) as u16,
        csum_offset,
    });
}

/// The inside address of a flow key (an IPv4 container address).
pub(crate) fn inside_v4(k: &FlowKey) -> Ipv4Addr {
    match k.inside.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}

pub(crate) fn outside_v4(k: &FlowKey) -> Ipv4Addr {
    match k.outside.ip() {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    }
}
