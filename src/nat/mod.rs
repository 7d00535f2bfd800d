//! Rootless NAT: docker's MASQUERADE done with ordinary host sockets.
//!
//! A container's routed packet reaches the gateway; the gateway hands it
//! here. Each 5-tuple becomes a flow in a bounded conntrack table with one
//! host socket: TCP is translated segment by segment onto a stream socket
//! (`tcp`), UDP datagrams onto a connected datagram socket (`udp`), ICMP
//! echo onto an unprivileged ping socket (`icmp`); a container's TCP to a
//! service of the gateway's own address (the DNS-over-TCP server) is a flow
//! to that service on the host's loopback (`host::LocalService`). Replies
//! come back as frames from the original destination. The sockets live on
//! the data path's mio poll; a flow's index in the table is its poll token.
//!
//! Nothing here parses more of a frame than it needs, and every byte that
//! reaches a socket has passed the switch's port security.

pub mod forward;
pub mod icmp;
pub mod policy;
pub mod table;
pub mod tcp;
pub mod udp;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::time::Duration;

use mio::{Interest, Registry};
use serde::{Deserialize, Serialize};

use crate::frame::FrameBuf;
use crate::gateway::Routed;
use crate::host::{HostIo, LocalService, PollToken, RealIo};
use crate::log;
use crate::port::PortId;
use crate::ratelimit::SourceBudget;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::ipv4::protocol;
use crate::wire::vnet::VnetHdr;

pub use crate::inside::{Emit, Inside};
pub use table::{FlowId, FlowKey, Proto};
use table::{FlowTable, Refused};

/// Limits and timeouts (config `[nat]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatConfig {
    pub max_flows: usize,
    pub max_flows_per_container: u32,
    pub tcp_established_timeout: Duration,
    pub tcp_transitory_timeout: Duration,
    pub udp_timeout: Duration,
    pub udp_stream_timeout: Duration,
    pub icmp_timeout: Duration,
    /// New TCP clients one published port takes per second, and its burst
    /// (`[nat] published_clients_per_sec`, `_burst`).
    pub published_clients: crate::ratelimit::Rate,
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
            published_clients: crate::ratelimit::Rate::new(500, 1000),
        }
    }
}

crate::stats::counters! {
    /// What the NAT counts, besides per-port drops.
    pub struct NatCounters {
        /// TCP flows opened: a container's SYN given a host socket, a published port's client
        /// accepted, or an IPv6 client's flow reopened toward the container over IPv4.
        tcp_flows,
        /// UDP flows opened: a container's datagram to a new destination given a host socket,
        /// or a new client of a published UDP port.
        udp_flows,
        /// ICMP echo flows opened: a container's echo request with a new identifier and
        /// destination given a host ping socket.
        icmp_flows,
        /// Flows aborted to make room for a new one in a full table (the least recently
        /// active of the oldest flows nobody answered).
        flows_evicted,
        /// Flows closed for idling past their timeout (by protocol and state: TCP
        /// established or not, UDP answered or not, ICMP).
        flows_expired,
        /// Flows closed because their container's port left (the container
        /// exited or was killed, its `run` died, or it was disconnected):
        /// the host side was reset, so the remote sees the end at once.
        flows_port_removed,
        /// New flows refused because their container already had `max_flows_per_container`
        /// flows (or a published port's client found no free alias port).
        flows_refused_limit,
        /// TCP connects to a host destination that failed, at once or later; the container
        /// got a RST or an ICMP unreachable.
        tcp_connect_failed,
        /// RSTs sent to a container for a flow: a TCP flow aborted once synchronized
        /// (SYN-ACK sent or established), or a connect the host refused.
        tcp_resets_to_container,
        /// Times host data to a container was sent again: after three duplicate ACKs, or
        /// on a retransmission timeout (zero-window probes and SYNs not counted).
        tcp_retransmits,
        /// TCP segments from a container dropped or ignored as invalid: unparsable, bad
        /// checksum, impossible flags, a wrong handshake answer, or an ACK of unsent data.
        tcp_bad_segments,
        /// Datagrams from a container dropped because the send on their host socket failed
        /// (a refused port aside, which gets a port unreachable).
        udp_send_failed,
        /// Sends that carried two or more of a flow's datagrams at once (UDP GSO: the
        /// datagrams of one flow in one port's turn, nat::udp).
        udp_gso_batches,
        /// UDP GSO sends the host refused (a route MTU below the datagrams', a device that
        /// cannot checksum them): their datagrams went one by one, and so does that flow's
        /// traffic from then on.
        udp_gso_refused,
        /// UDP super-frames written toward containers: several of one flow's datagrams from
        /// the host in one frame, which the container's kernel (or the switch, for a port
        /// that cannot take one) splits into them (nat::udp).
        udp_super_frames,
        /// ICMP echo requests from a container refused because the host would not open a
        /// ping socket (see net.ipv4.ping_group_range).
        icmp_unavailable,
        /// New flows dropped because a host socket could not be made, connected, duplicated
        /// or polled (a failed TCP connect counts in tcp_connect_failed).
        host_socket_failed,
        /// Packets to the host's loopback as given (127.0.0.0/8, 0.0.0.0/8)
        /// refused (policy::destination).
        loopback_refused,
        /// Packets from a source no host has (0.0.0.0, loopback, group
        /// addresses, the gateway's own) refused.
        bad_source_refused,
        /// New flows refused because their container's new-flows-per-second
        /// budget was spent.
        flows_refused_rate,
        /// New flows refused because the table was full and none of its
        /// oldest flows was one nobody answered.
        flows_refused_full,
        /// ICMP errors about refused or failed new flows not sent because
        /// their container's budget of ICMP errors was spent.
        icmp_errors_limited,
        /// Times a published port's listener was left for the next tick
        /// because its budget of new clients per second was spent (the
        /// clients wait in the host's backlog).
        published_clients_limited,
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
    pub ep: Inside,
    pub sock: OwnedFd,
    pub target: SocketAddr,
    pub created: Time,
    pub bytes_out: u64,
    pub bytes_in: u64,
    pub state: FlowState,
    /// Its index in the NAT's busy list, or `NOT_BUSY`: kept so that a
    /// flow leaves the list in O(1) however long it is.
    busy_at: u32,
    /// For a published port's IPv6 client of a dual-stack container: the
    /// container's and the gateway's IPv4 addresses, tried if the container
    /// refuses the IPv6 SYN (a service listening on IPv4 only), with the
    /// client shown as the gateway. The rest of that end is `ep`'s.
    pub fallback_v4: Option<(Ipv4Addr, Ipv4Addr)>,
}

const NOT_BUSY: u32 = u32::MAX;

impl Flow {
    pub fn new(ep: Inside, sock: OwnedFd, target: SocketAddr, now: Time, state: FlowState) -> Flow {
        Flow {
            ep,
            sock,
            target,
            created: now,
            bytes_out: 0,
            bytes_in: 0,
            state,
            busy_at: NOT_BUSY,
            fallback_v4: None,
        }
    }

    fn fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }

    /// A flow a full table may close to make room (conntrack's early drop
    /// takes the same): nobody answered it — a TCP connection not yet
    /// established both ways (or closing), UDP with no reply, ICMP echo.
    /// An established connection or an answered UDP flow is never closed
    /// for someone else's new one.
    fn may_evict(&self) -> bool {
        match &self.state {
            FlowState::Tcp(c) => !c.is_established_both_ways(),
            FlowState::Udp(u) => !u.replied,
            FlowState::Icmp(_) => true,
        }
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
    /// The container refused a published port's IPv6 SYN: open the flow
    /// again toward its IPv4 end (`Flow::fallback_v4`).
    RetryV4,
}

pub struct Nat {
    cfg: NatConfig,
    table: FlowTable<Flow>,
    /// Host sockets and their poll: real ones, or a fake (fuzzing).
    io: Box<dyn HostIo>,
    /// Services of the gateway's own address on the host's loopback, by
    /// TCP port (the DNS-over-TCP server on 53).
    services: Vec<(u16, Arc<dyn LocalService>)>,
    /// Frames the NAT builds, one at a time.
    tx: FrameBuf,
    /// Flows with data in flight toward their container (retransmission
    /// timers), checked every tick. Each flow is on it at most once (its
    /// `busy_at` says where), so it never outgrows the table.
    busy: Vec<FlowId>,
    /// Next flow index the incremental idle sweep looks at.
    sweep: usize,
    /// Published ports, by forward id.
    forwards: Vec<Option<forward::Forward>>,
    /// Some forward is out of its client budget (`forward::Forward`).
    throttled_any: bool,
    icmp_warned: bool,
    /// TCP flows with deferred work (an acknowledgement, a discard) for the
    /// next flush: at most one entry each, sized once for the whole table.
    pending: Vec<FlowId>,
    /// A UDP flow's datagrams gathered for one send (`udp::UdpBatch`).
    udp_batch: udp::UdpBatch,
    /// Where a flow's datagrams past the first are received before they
    /// join a super-frame (`udp::udp_event`); allocated once.
    udp_rx: Box<[u8]>,
    /// The key of `next_isn`'s hash.
    isn_secret: u64,
    pub counters: NatCounters,
}

impl Nat {
    pub fn new(cfg: NatConfig) -> Nat {
        let max_flows = cfg.max_flows;
        let mut seed = [0u8; 8];
        crate::sys::random_bytes(&mut seed);
        Nat {
            table: FlowTable::new(cfg.max_flows, cfg.max_flows_per_container),
            forwards: Vec::new(),
            throttled_any: false,
            cfg,
            io: Box::new(RealIo::default()),
            services: Vec::new(),
            tx: FrameBuf::new(),
            busy: Vec::with_capacity(max_flows),
            sweep: 0,
            icmp_warned: false,
            pending: Vec::with_capacity(max_flows),
            udp_batch: udp::UdpBatch::new(),
            udp_rx: vec![0u8; udp::MAX_PAYLOAD].into_boxed_slice(),
            isn_secret: u64::from_ne_bytes(seed),
            counters: NatCounters::default(),
        }
    }

    /// Host sockets are registered here; without a registry (unit tests)
    /// no flow can be opened.
    pub fn set_registry(&mut self, r: Registry) {
        self.io.set_registry(r);
    }

    /// Runs the NAT over `io` instead of real sockets (the fuzzer's fake).
    pub fn set_io(&mut self, io: Box<dyn HostIo>) {
        self.io = io;
    }

    /// The host side, lent to the embedded DNS by the switch (one host,
    /// one poll, per shard).
    pub fn host(&mut self) -> &mut dyn HostIo {
        &mut *self.io
    }

    /// Serves TCP to the gateway's `port` with `service` (on the host's
    /// loopback): the DNS-over-TCP server on 53.
    pub fn add_service(&mut self, port: u16, service: Arc<dyn LocalService>) {
        self.services.retain(|(p, _)| *p != port);
        self.services.push((port, service));
    }

    fn service(&self, port: u16) -> Option<&Arc<dyn LocalService>> {
        self.services
            .iter()
            .find(|(p, _)| *p == port)
            .map(|(_, s)| s)
    }

    pub fn config(&self) -> &NatConfig {
        &self.cfg
    }

    pub fn flow_count(&self) -> usize {
        self.table.len()
    }

    /// The initial sequence number of our side of `key`'s connection, as
    /// RFC 6528 makes them: a clock that ticks every 4 µs plus a keyed
    /// hash of the 4-tuple (the secret drawn when the NAT is made), so a
    /// new connection on a 4-tuple starts after an earlier one's numbers.
    /// That is what lets a TIME_WAIT the container still holds for the
    /// earlier one take our SYN as a new connection (Linux compares the
    /// sequence number when there are no timestamps), as a loopback client
    /// that reuses its ports within seconds needs; random numbers were
    /// refused half the time, and that client waited out the SYN's retries.
    fn next_isn(&self, key: &FlowKey, now: Time) -> u32 {
        use std::hash::{Hash, Hasher};
        let mut h = std::hash::DefaultHasher::new();
        self.isn_secret.hash(&mut h);
        key.hash(&mut h);
        ((now.0 / 4_000) as u32).wrapping_add(h.finish() as u32)
    }

    /// Adds a flow with its socket registered for `interest`; on a full
    /// table the least recently active flow nobody answered is dropped
    /// first (`Flow::may_evict`), or, if there is none, the new flow is
    /// refused.
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
        let (id, evicted) = match self.table.insert(key, port, flow, now, Flow::may_evict) {
            Ok(r) => r,
            Err((Refused::EndpointLimit, _flow)) => {
                self.counters.flows_refused_limit += 1;
                return Err(DropReason::FlowLimit);
            }
            Err((Refused::Full, _flow)) => {
                self.counters.flows_refused_full += 1;
                return Err(DropReason::FlowTableFull);
            }
        };
        if let Some((k, old)) = evicted {
            self.counters.flows_evicted += 1;
            self.finish_flow(&k, old, Next::Abort, emit);
        }
        if let Err(e) = self.io.register(fd, PollToken::Flow(id.0), interest) {
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
        match self.table.insert(key, port, flow, now, Flow::may_evict) {
            Ok((id, evicted)) => {
                if let Some((k, old)) = evicted {
                    self.counters.flows_evicted += 1;
                    self.finish_flow(&k, old, Next::Abort, emit);
                }
                self.counters.udp_flows += 1;
                Some(id)
            }
            Err((Refused::EndpointLimit, _)) => {
                self.counters.flows_refused_limit += 1;
                None
            }
            Err((Refused::Full, _)) => {
                self.counters.flows_refused_full += 1;
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
    /// `budget` is the sending port's: new flows and the ICMP errors
    /// about them are charged to it.
    pub fn outbound(
        &mut self,
        ep: &Inside,
        pkt: &Routed<'_>,
        vnet: &VnetHdr,
        budget: &mut SourceBudget,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Option<DropReason> {
        let l4 = pkt.l4;
        // The container end must be of the packet's family: the switch
        // hands the gateway's address of the sender's family.
        if !policy::valid_source(pkt.src, ep.gateway_ip)
            || pkt.src.is_ipv4() != ep.gateway_ip.is_ipv4()
        {
            self.counters.bad_source_refused += 1;
            return Some(DropReason::SpoofedSrcIp);
        }
        // A UDP batch leaves before anything else can make (or evict) a
        // flow; UDP decides for itself.
        if pkt.proto != protocol::UDP && self.udp_batch.flow().is_some() {
            self.flush_udp(emit);
        }
        match (pkt.proto, pkt.src) {
            (protocol::TCP, _) => self.tcp_outbound(ep, pkt, l4, vnet, budget, now, emit),
            (protocol::UDP, _) => self.udp_outbound(ep, pkt, l4, budget, now, emit),
            (protocol::ICMP, IpAddr::V4(_)) => {
                self.icmp_outbound(ep, pkt, l4, vnet, budget, now, emit)
            }
            (crate::wire::ipv6::next_header::ICMPV6, IpAddr::V6(_)) => {
                self.icmp_outbound(ep, pkt, l4, vnet, budget, now, emit)
            }
            _ => Some(DropReason::NotServed),
        }
    }

    /// [`Nat::outbound`] for a whole frame (benches and tests): parsed as
    /// the gateway parses routed traffic, from a sender with no budget.
    pub fn outbound_frame(
        &mut self,
        ep: &Inside,
        buf: &FrameBuf,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Option<DropReason> {
        let vnet = buf.vnet();
        match crate::gateway::routed(buf.frame(), &vnet) {
            Ok(pkt) => self.outbound(ep, &pkt, &vnet, &mut SourceBudget::unlimited(), now, emit),
            Err(r) => Some(r),
        }
    }

    /// Where a new flow's host socket may connect: `policy::destination`,
    /// with refusals counted. A `Service` is for the caller to resolve
    /// (only TCP has them).
    fn target_for(&mut self, ep: &Inside, dst: IpAddr, port: u16, tcp: bool) -> policy::Target {
        let service = tcp && dst == ep.gateway_ip && self.service(port).is_some();
        let t = policy::destination(ep, dst, port, service);
        if let policy::Target::Refuse(policy::Refusal::HostLoopback) = t {
            self.counters.loopback_refused += 1;
        }
        t
    }

    /// Ends a batch of frames from the containers: what was deferred while
    /// handling it (TCP acknowledgements and discards) is done now.
    #[inline]
    pub fn flush(&mut self, emit: &mut dyn Emit) {
        // Both tested here, so that a turn with nothing deferred (every
        // switched frame's) costs two tests.
        if self.udp_batch.flow().is_some() {
            self.flush_udp(emit);
        }
        if !self.pending.is_empty() {
            self.flush_tcp(emit);
        }
    }

    /// A poll event on a flow's socket.
    pub fn on_flow_event(
        &mut self,
        flow: u32,
        readable: bool,
        writable: bool,
        now: Time,
        emit: &mut dyn Emit,
    ) {
        let id = FlowId(flow);
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

    pub fn counters(&self) -> NatCounters {
        self.counters
    }

    /// Timers: retransmissions toward containers, idle flows.
    pub fn tick(&mut self, now: Time, emit: &mut dyn Emit) {
        if std::mem::take(&mut self.throttled_any) {
            self.rearm_throttled();
        }
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
    }

    /// A port left: its published ports close (freeing the host ports)
    /// and its flows go, host sides reset.
    pub fn port_removed(&mut self, port: PortId, emit: &mut dyn Emit) {
        self.remove_forwards_of(port);
        for id in self.table.owned_by(port) {
            // No frame can reach the container any more: close quietly.
            if let Some((_, mut f)) = self.table.remove(id) {
                self.counters.flows_port_removed += 1;
                self.unbusy(&mut f);
                self.io.set_linger_zero(f.fd());
                self.io.deregister(f.fd());
            }
        }
        let _ = emit;
    }

    /// The switch is stopping (the daemon's shutdown): every flow is reset
    /// on both sides while the ports can still carry the containers'
    /// resets. Left to the process's exit, a host socket with nothing
    /// unread would send a FIN, and the remote would take a cut upload for
    /// a complete one; and the container, its interface gone, would wait
    /// for more until its own timeout.
    pub fn shutdown(&mut self, emit: &mut dyn Emit) {
        let ids: Vec<FlowId> = self.table.iter().map(|(id, _, _)| id).collect();
        for id in ids {
            self.remove_flow(id, Next::Abort, emit);
        }
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

#[cfg(test)]
mod isn_tests {
    use super::*;

    #[test]
    fn a_later_connection_on_a_4_tuple_starts_after_the_earlier_ones_numbers() {
        let nat = Nat::new(NatConfig {
            max_flows: 16,
            max_flows_per_container: 16,
            ..NatConfig::default()
        });
        let key = |port| FlowKey {
            proto: Proto::Tcp,
            inside: "172.17.0.2:8080".parse().unwrap(),
            outside: SocketAddr::new("172.17.0.1".parse().unwrap(), port),
        };
        let t = Time::from_secs(10);
        let first = nat.next_isn(&key(40000), t);
        // A second on: 250,000 further (a 4 µs clock), whatever the hash.
        let later = nat.next_isn(&key(40000), Time(t.0 + 1_000_000_000));
        assert_eq!(later.wrapping_sub(first), 250_000);
        // Another tuple, or another NAT's secret: another offset (the
        // numbers cannot be told from a neighbour's connection).
        assert_ne!(nat.next_isn(&key(40001), t), first);
        let other = Nat::new(NatConfig {
            max_flows: 16,
            max_flows_per_container: 16,
            ..NatConfig::default()
        });
        assert_ne!(other.next_isn(&key(40000), t), first);
    }
}
