//! The switch: ports grouped into networks, and the path of one frame
//! through them. Deterministic over frames and a clock passed in; the only
//! I/O is through the `Port` trait, so memory ports make the whole pipeline
//! testable, fuzzable and benchable without a namespace.
//!
//! The path: sanity checks → port security → learn the source → decide
//! from the destination (gateway / unicast / flood / drop) → deliver, adapting
//! offloads per egress port. Nothing here allocates per frame.

use std::io;
use std::net::IpAddr;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::bridge::{Fdb, FdbCounters, Forward, Learn};
use crate::dns::{Dns, DnsCounters, SharedNames};
use crate::frame::{FrameBuf, MAX_FRAME_LEN};
use crate::gateway::{Gateway, GatewayCounters, Verdict as GatewayVerdict};
use crate::host::{HostIo, PollToken};
use crate::inside::{Emit, Inside};
use crate::nat::{FlowReport, Nat, NatConfig, NatCounters};
use crate::offload::{self, Offloads};
use crate::port::{Port, PortId, PortKind, SendError};
use crate::ratelimit::{Budgets, SourceLimits};
use crate::security::PortPolicy;
use crate::stats::{DropReason, PortCounters, PortCountersReport};
use crate::time::Time;
use crate::wire::ethernet::{self, HEADER_LEN as ETH_LEN};
use crate::wire::MacAddr;

/// Index of a network in the switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct NetworkId(pub u32);

/// What the data path needs to know about a network.
#[derive(Debug, Clone)]
pub struct NetworkSpec {
    pub name: String,
    /// The network's prefix, of either family, and its gateway's address in
    /// it (IPv4 today; a dual-stack network will carry a second prefix).
    pub subnet: IpNet,
    pub gateway_ip: IpAddr,
    pub gateway_mac: MacAddr,
    pub fdb_max_entries: usize,
    pub fdb_max_per_port: u32,
    pub mac_aging: Duration,
    /// Routed traffic leaves through the NAT (false: an internal network).
    pub nat: bool,
    /// A second gateway address that serves only DNS (slirp4netns's .3).
    pub dns_ip: Option<crate::config::DnsAddress>,
    /// The IPv6 side of a dual-stack network.
    pub ipv6: Option<NetworkSpec6>,
}

/// A dual-stack network's IPv6 subnet, its gateway's address there, and
/// the link MTU its Router Advertisements state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkSpec6 {
    pub subnet: ipnet::Ipv6Net,
    pub gateway: std::net::Ipv6Addr,
    /// The gateway's link-local address when not formed from its MAC.
    pub link_local: Option<std::net::Ipv6Addr>,
    pub mtu: u32,
}

/// What the data path needs to know about a port.
#[derive(Debug, Clone)]
pub struct PortSpec {
    pub name: String,
    pub network: NetworkId,
    pub policy: PortPolicy,
    /// Largest L3 packet the port may send (its interface MTU); longer
    /// non-GSO frames are dropped as oversize.
    pub mtu: u32,
    /// Connections to the gateway's address reach the host's loopback.
    pub allow_host_loopback: bool,
    /// When they may not, TCP to them is told "network unreachable" (an
    /// ICMP error), as slirp4netns's `--disable-host-loopback` does,
    /// instead of a reset.
    pub loopback_unreachable: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SwitchError {
    TooManyPorts,
    NoSuchNetwork,
    NetworkHasPorts,
    FdbFull,
    IdInUse,
    CannotPoll,
}

impl std::fmt::Display for SwitchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SwitchError::TooManyPorts => "the switch has reached its port limit (limits.max_ports)",
            SwitchError::NoSuchNetwork => "no such network in the data path",
            SwitchError::NetworkHasPorts => "the network still has ports",
            SwitchError::FdbFull => "the network's MAC table is full (limits.fdb_max_entries)",
            SwitchError::IdInUse => "the id is already in use in the data path",
            SwitchError::CannotPoll => "the data path cannot poll the port's descriptor",
        })
    }
}

impl std::error::Error for SwitchError {}

/// Where one frame goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Drop(DropReason),
    Unicast(PortId),
    /// Every other port of the network; broadcast and multicast also go to
    /// the gateway.
    Flood {
        to_gateway: bool,
    },
    Gateway,
}

struct PortSlot {
    port: Box<dyn Port>,
    spec: PortSpec,
    offloads: Offloads,
    counters: PortCounters,
    /// The port's device is gone (read error); its owner no longer polls
    /// or floods to it (other shards find out by their writes failing), and
    /// it waits for the control plane to remove it.
    dead: bool,
    /// Its id (the records of a capture name the port).
    id: PortId,
    /// Captures running on it (`lanyard capture`, `--pcap`); empty: the
    /// frame path pays one test of an empty list.
    taps: Vec<std::sync::Arc<super::tap::Tap>>,
}

struct NetState {
    spec: NetworkSpec,
    fdb: Fdb,
    gateway: Gateway,
    ports: Vec<PortId>,
}

/// What one turn of a port read ([`Switch::poll_port`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Polled {
    /// Frames read and switched.
    pub frames: usize,
    /// The turn ended before the port's queue did (the batch was full,
    /// its time was up, or a read failed after some frames): frames may be
    /// waiting, and edge-triggered readiness will not say so again.
    pub more: bool,
}

pub struct Switch {
    ports: Vec<Option<PortSlot>>,
    nets: Vec<Option<NetState>>,
    max_ports: usize,
    n_ports: usize,
    /// Segments cut from a GSO frame for a port without offloads.
    scratch: FrameBuf,
    /// The gateway's reply to the frame being handled.
    reply: FrameBuf,
    nat: Nat,
    /// The embedded DNS of every gateway; it borrows the NAT's host side.
    dns: Dns,
    /// What each port may spend of what its neighbours share (floods to
    /// them, the data path's time on new flows, replies and errors, the
    /// control plane's DHCP, the DNS): one budget per port, sized once.
    budgets: Budgets,
    last_fdb_sweep: Time,
    /// Where DHCP messages go (the control plane); `None` drops them.
    events: Option<crossbeam_channel::Sender<super::Event>>,
    /// DHCP messages dropped because the control plane was not keeping up.
    pub events_dropped: u64,
    /// MACs this shard learned, for the other shards (`None`: the only
    /// shard). Bounded: a full outbox drops the news, and the other shards
    /// flood to that MAC until it is announced again.
    learned: Option<Vec<Learned>>,
    pub learned_dropped: u64,
    /// Captures running, for the ports attached while they run.
    taps: Vec<std::sync::Arc<super::tap::Tap>>,
    /// Container → container UDP datagrams gathered into one super-frame
    /// within a port's turn (`coalesce`).
    coalesce: super::coalesce::Coalescer,
}

/// A MAC learned behind a port, as one shard tells the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Learned {
    pub net: NetworkId,
    pub mac: MacAddr,
    pub port: PortId,
}

/// Learned MACs one shard keeps for the others between two rounds.
pub(super) const LEARNED_OUTBOX: usize = 256;

/// Sends NAT-built frames out of ports, through the same offload fallback
/// as switched frames.
struct PortEmitter<'a> {
    ports: &'a mut [Option<PortSlot>],
    scratch: &'a mut FrameBuf,
}

impl Emit for PortEmitter<'_> {
    fn emit(&mut self, port: PortId, frame: &mut FrameBuf) {
        send_to(self.ports, self.scratch, port, frame);
    }
}

impl Switch {
    pub fn new(max_ports: usize) -> Switch {
        Switch::with_nat(max_ports, NatConfig::default())
    }

    pub fn with_nat(max_ports: usize, nat: NatConfig) -> Switch {
        Switch::with_names(max_ports, nat, Vec::new(), crate::dns::shared_names())
    }

    /// A switch whose NAT runs with `nat`, whose embedded DNS forwards to
    /// `dns_upstreams` and answers from `names`, a table shared with the
    /// other shards of the data path.
    pub fn with_names(
        max_ports: usize,
        nat: NatConfig,
        dns_upstreams: impl Into<crate::dns::Upstreams>,
        names: SharedNames,
    ) -> Switch {
        let dns = Dns::new(dns_upstreams, names, max_ports);
        let mut nat = Nat::new(nat);
        // TCP to the gateway's port 53: a NAT flow to the DNS-over-TCP
        // server, which the NAT knows only as a service of that address.
        nat.add_service(53, dns.tcp_service());
        Switch {
            ports: Vec::new(),
            nets: Vec::new(),
            max_ports,
            n_ports: 0,
            scratch: FrameBuf::new(),
            reply: FrameBuf::new(),
            nat,
            dns,
            budgets: Budgets::new(max_ports, SourceLimits::default()),
            last_fdb_sweep: Time::ZERO,
            events: None,
            events_dropped: 0,
            learned: None,
            learned_dropped: 0,
            taps: Vec::new(),
            coalesce: super::coalesce::Coalescer::new(),
        }
    }

    /// Makes this switch one shard of several: what it learns is kept for
    /// [`Switch::take_learned`].
    pub fn enable_learn_sync(&mut self) {
        self.learned = Some(Vec::with_capacity(LEARNED_OUTBOX));
    }

    /// Hands over what was learned since the last call.
    pub fn take_learned(&mut self, into: &mut Vec<Learned>) {
        if let Some(l) = &mut self.learned {
            into.append(l);
        }
    }

    /// Learns what another shard learned. News about a port that is gone,
    /// or is now on another network, is dropped.
    pub fn apply_learned(&mut self, l: Learned, now: Time) {
        if self.slot(l.port).is_none_or(|s| s.spec.network != l.net) {
            return;
        }
        if let Some(Some(net)) = self.nets.get_mut(l.net.0 as usize) {
            net.fdb.learn_synced(l.mac, l.port, now);
        }
    }

    /// The configurable per-source rates (`[nat] new_flows_per_sec`,
    /// `[limits] floods_per_sec`, ...); every port's budget starts full.
    pub fn set_source_limits(&mut self, limits: SourceLimits) {
        self.budgets.set_limits(limits);
    }

    pub fn set_events(&mut self, tx: crossbeam_channel::Sender<super::Event>) {
        self.events = Some(tx);
    }

    /// Sends a frame the control plane built out of a port.
    pub fn send_frame(&mut self, port: PortId, frame: &[u8]) {
        self.reply
            .load(crate::wire::vnet::VnetHdr::default(), frame);
        send_to(&mut self.ports, &mut self.scratch, port, &mut self.reply);
    }

    /// The poll the NAT's host sockets register with.
    pub fn set_registry(&mut self, r: mio::Registry) {
        self.nat.set_registry(r);
    }

    /// Runs the NAT and the DNS over other host sockets than the real
    /// ones: the fuzzer's and tests' `host::FakeIo`.
    pub fn set_host_io(&mut self, io: Box<dyn HostIo>) {
        self.nat.set_io(io);
    }

    pub fn nat_counters(&self) -> NatCounters {
        self.nat.counters()
    }

    pub fn dns_counters(&self) -> DnsCounters {
        self.dns.counters()
    }

    /// NAT flows, and how many are on its retransmission list (never more
    /// than the flows: for tests and the fuzzer).
    pub fn nat_flows(&self) -> (usize, usize) {
        (self.nat.flow_count(), self.nat.busy_len())
    }

    /// DNS queries waiting for an upstream.
    pub fn dns_pending(&self) -> usize {
        self.dns.pending_len()
    }

    /// A poll event for a host socket: a NAT flow's, a DNS query's or a
    /// published port's listener (ports and the waker are the poll loop's).
    pub fn host_event(&mut self, token: PollToken, readable: bool, writable: bool, now: Time) {
        let mut em = PortEmitter {
            ports: &mut self.ports,
            scratch: &mut self.scratch,
        };
        match token {
            PollToken::Flow(id) => self.nat.on_flow_event(id, readable, writable, now, &mut em),
            PollToken::DnsQuery { slot, v6 } => {
                self.dns.on_event(slot, v6, self.nat.host(), &mut em)
            }
            PollToken::Forward(id) => self.nat.on_forward_event(id, now, &mut em),
            PollToken::Waker | PollToken::Port(_) => {}
        }
    }

    /// What the NAT needs to reach an endpoint port.
    /// An endpoint's container ends: IPv4, and IPv6 on a dual-stack network.
    fn endpoint_of(&self, port: PortId) -> Option<(Inside, Option<Inside>)> {
        let s = self.slot(port)?;
        let net = self.nets.get(s.spec.network.0 as usize)?.as_ref()?;
        let v4 = Inside {
            port,
            mac: s.spec.policy.mac?,
            ip: s.spec.policy.ipv4?.into(),
            gateway_mac: net.gateway.mac(),
            gateway_ip: net.gateway.ip(),
            mtu: s.spec.mtu,
            allow_host_loopback: s.spec.allow_host_loopback,
            loopback_unreachable: s.spec.loopback_unreachable,
            internal: !net.spec.nat,
            net: s.spec.network.0,
        };
        let v6 = match (
            s.spec.policy.ipv6.and_then(|p| p.global),
            net.gateway.ipv6(),
        ) {
            (Some(ip), Some(gw)) => Some(Inside {
                ip: ip.into(),
                gateway_ip: gw.into(),
                ..v4
            }),
            _ => None,
        };
        Some((v4, v6))
    }

    /// Publishes ports of an endpoint: each bound listener forwards to its
    /// mapping's container port. All or nothing.
    pub fn add_forwards(
        &mut self,
        port: PortId,
        forwards: Vec<(std::os::fd::OwnedFd, crate::publish::Mapping)>,
    ) -> Result<Vec<u32>, String> {
        let (ep, ep6) = self
            .endpoint_of(port)
            .ok_or_else(|| format!("port {port} is not a container endpoint"))?;
        let mut ids = Vec::new();
        for (fd, m) in forwards {
            match self.nat.add_forward(fd, m, ep, ep6) {
                Ok(id) => ids.push(id),
                Err(e) => {
                    for id in ids {
                        self.nat.remove_forward(id);
                    }
                    return Err(format!("cannot poll the listener for {}: {e}", m.host));
                }
            }
        }
        Ok(ids)
    }

    pub fn remove_forwards(&mut self, ids: &[u32]) {
        for id in ids {
            self.nat.remove_forward(*id);
        }
    }

    /// Clients accepted and refused by a forward.
    pub fn forward_counts(&self, id: u32) -> Option<(u64, u64)> {
        self.nat.forward_counts(id)
    }

    /// The NAT's flows, for `lanyard conntrack`.
    pub fn conntrack(&self, now: Time) -> Vec<FlowReport> {
        self.nat.report(now)
    }

    pub fn add_network(&mut self, spec: NetworkSpec) -> NetworkId {
        let id = NetworkId(
            self.nets
                .iter()
                .position(|n| n.is_none())
                .unwrap_or(self.nets.len()) as u32,
        );
        self.add_network_with_id(id, spec)
            .expect("a free network slot");
        id
    }

    /// Adds a network under an id chosen by the caller (every shard of a
    /// data path uses the same ids). Fails if the id is taken.
    pub fn add_network_with_id(
        &mut self,
        id: NetworkId,
        spec: NetworkSpec,
    ) -> Result<(), SwitchError> {
        if self.nets.get(id.0 as usize).is_some_and(|n| n.is_some()) {
            return Err(SwitchError::IdInUse);
        }
        let (subnet, gateway, internal) = (spec.subnet, spec.gateway_ip, !spec.nat);
        let v6 = spec.ipv6.map(|v| (v.subnet, v.gateway));
        self.add_network_state(id, spec);
        if let (IpNet::V4(subnet), IpAddr::V4(gateway)) = (subnet, gateway) {
            self.dns
                .names()
                .network_added(id.0, subnet, gateway, v6, internal);
        }
        Ok(())
    }

    /// Starts a capture on the ports of its scope (and on those attached
    /// while it runs).
    pub fn add_tap(&mut self, tap: std::sync::Arc<super::tap::Tap>) {
        for slot in self.ports.iter_mut().flatten() {
            if tap.scope.covers(slot.id, slot.spec.network) {
                slot.taps.push(tap.clone());
            }
        }
        self.taps.push(tap);
    }

    /// Ends capture `id` on every port.
    pub fn remove_tap(&mut self, id: u64) {
        for slot in self.ports.iter_mut().flatten() {
            slot.taps.retain(|t| t.id != id);
        }
        self.taps.retain(|t| t.id != id);
    }

    /// Names the embedded DNS answers for an endpoint; `names` empty removes
    /// them.
    pub fn set_names(&mut self, net: NetworkId, ip: IpAddr, container: &str, names: &[String]) {
        if names.is_empty() {
            self.dns.names().remove(net.0, ip);
        } else {
            self.dns.names().add(net.0, ip, container, names);
        }
    }

    /// The resolvers an endpoint's queries are forwarded to (`run
    /// --dns`); empty: the host's. Dropped with its names.
    pub fn set_resolvers(&mut self, net: NetworkId, ip: IpAddr, list: Vec<std::net::SocketAddr>) {
        self.dns.names().set_resolvers(net.0, ip, list);
    }

    fn add_network_state(&mut self, id: NetworkId, spec: NetworkSpec) {
        let state = NetState {
            // Every port of the switch could sit on this network and pin one MAC.
            fdb: Fdb::new(
                spec.fdb_max_entries,
                spec.fdb_max_per_port,
                self.max_ports,
                spec.mac_aging,
            ),
            gateway: {
                let mut g =
                    Gateway::new(spec.gateway_ip, spec.gateway_mac, spec.subnet).with_nat(spec.nat);
                if let Some(dns) = spec.dns_ip {
                    g = g.with_dns_address(dns.ip, dns.serve);
                }
                match spec.ipv6 {
                    Some(v) => {
                        let g = g.with_ipv6(v.gateway, v.subnet, v.mtu);
                        match v.link_local {
                            Some(ll) => g.with_ipv6_link_local(ll),
                            None => g,
                        }
                    }
                    None => g,
                }
            },
            ports: Vec::new(),
            spec,
        };
        let i = id.0 as usize;
        if i >= self.nets.len() {
            self.nets.resize_with(i + 1, || None);
        }
        self.nets[i] = Some(state);
    }

    pub fn remove_network(&mut self, id: NetworkId) -> Result<(), SwitchError> {
        let net = self
            .nets
            .get(id.0 as usize)
            .and_then(|n| n.as_ref())
            .ok_or(SwitchError::NoSuchNetwork)?;
        if !net.ports.is_empty() {
            return Err(SwitchError::NetworkHasPorts);
        }
        self.nets[id.0 as usize] = None;
        self.dns.names().network_removed(id.0);
        Ok(())
    }

    pub fn add_port(&mut self, port: Box<dyn Port>, spec: PortSpec) -> Result<PortId, SwitchError> {
        let id = PortId(
            self.ports
                .iter()
                .position(|p| p.is_none())
                .unwrap_or(self.ports.len()) as u32,
        );
        self.add_port_with_id(id, port, spec)?;
        Ok(id)
    }

    /// Adds a port under an id chosen by the caller (every shard of a data
    /// path knows every port by the same id: its own ports, and the others'
    /// as send-only handles). Fails, changing nothing, if the id is taken.
    pub fn add_port_with_id(
        &mut self,
        id: PortId,
        port: Box<dyn Port>,
        spec: PortSpec,
    ) -> Result<(), SwitchError> {
        if self.n_ports >= self.max_ports || id.index() >= self.max_ports {
            return Err(SwitchError::TooManyPorts);
        }
        if self.slot(id).is_some() {
            return Err(SwitchError::IdInUse);
        }
        let net_id = spec.network;
        let net = self
            .nets
            .get_mut(spec.network.0 as usize)
            .and_then(|n| n.as_mut())
            .ok_or(SwitchError::NoSuchNetwork)?;
        let index = id.index();
        if index >= self.ports.len() {
            self.ports.resize_with(index + 1, || None);
        }
        net.fdb.port_added(id);
        if let Some(mac) = spec.policy.mac {
            if net.fdb.add_static(mac, id).is_err() {
                return Err(SwitchError::FdbFull);
            }
        }
        net.ports.push(id);
        self.budgets.reset(id);
        self.ports[index] = Some(PortSlot {
            offloads: port.offloads(),
            port,
            spec,
            counters: PortCounters::default(),
            dead: false,
            id,
            taps: self
                .taps
                .iter()
                .filter(|t| t.scope.takes_new(net_id))
                .cloned()
                .collect(),
        });
        self.n_ports += 1;
        Ok(())
    }

    /// Detaches a port and hands it back (dropping it closes its fd).
    pub fn remove_port(&mut self, id: PortId) -> Option<Box<dyn Port>> {
        self.ports.get(id.index())?.as_ref()?;
        let mut em = PortEmitter {
            ports: &mut self.ports,
            scratch: &mut self.scratch,
        };
        self.nat.port_removed(id, &mut em);
        self.dns.port_removed(id, self.nat.host());
        let slot = self.ports.get_mut(id.index())?.take()?;
        if let Some(Some(net)) = self.nets.get_mut(slot.spec.network.0 as usize) {
            net.fdb.flush_port(id);
            net.ports.retain(|p| *p != id);
        }
        self.n_ports -= 1;
        Some(slot.port)
    }

    /// Stopping: the NAT resets its flows, the containers' sides through
    /// their ports, which are closed once the switch is dropped.
    pub fn shutdown(&mut self) {
        let mut em = PortEmitter {
            ports: &mut self.ports,
            scratch: &mut self.scratch,
        };
        self.nat.shutdown(&mut em);
    }

    pub fn port_count(&self) -> usize {
        self.n_ports
    }

    /// The fd of a live port, for the poll loop.
    pub fn port_fd(&self, id: PortId) -> Option<std::os::fd::RawFd> {
        self.slot(id)
            .filter(|s| !s.dead)
            .and_then(|s| s.port.raw_fd())
    }

    fn slot(&self, id: PortId) -> Option<&PortSlot> {
        self.ports.get(id.index()).and_then(|s| s.as_ref())
    }

    pub fn counters(&self, id: PortId) -> Option<&PortCounters> {
        self.slot(id).map(|s| &s.counters)
    }

    pub fn is_dead(&self, id: PortId) -> bool {
        self.slot(id).is_some_and(|s| s.dead)
    }

    /// Marks a port whose device went away: no longer read or flooded to.
    pub fn mark_dead(&mut self, id: PortId) {
        if let Some(Some(s)) = self.ports.get_mut(id.index()) {
            s.dead = true;
        }
    }

    pub fn fdb_len(&self, net: NetworkId) -> usize {
        self.nets
            .get(net.0 as usize)
            .and_then(|n| n.as_ref())
            .map_or(0, |n| n.fdb.len())
    }

    /// Gives port `id` a turn: reads frames from it one at a time, up to
    /// `bufs.len()`, and switches each as it comes; after each frame
    /// `go_on()` says whether the turn may continue (the poll loop bounds a
    /// turn's time with it, so that a busy port's turn is short however
    /// costly its frames are). An error before the first frame means the
    /// port is gone; one after it ends the turn and repeats on the next.
    pub fn poll_port(
        &mut self,
        id: PortId,
        bufs: &mut [FrameBuf],
        now: Time,
        mut go_on: impl FnMut() -> bool,
    ) -> io::Result<Polled> {
        let mut polled = Polled {
            frames: 0,
            more: false,
        };
        while polled.frames < bufs.len() {
            let Some(Some(slot)) = self.ports.get_mut(id.index()) else {
                break;
            };
            if slot.dead {
                break;
            }
            let buf = &mut bufs[polled.frames..polled.frames + 1];
            // One frame per read: every port kind reads a frame per
            // syscall anyway, so this costs nothing and lets the turn end
            // after any frame.
            match slot.port.recv_batch(buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if polled.frames == 0 => return Err(e),
                Err(_) => {
                    polled.more = true;
                    break;
                }
            }
            let buf = &mut buf[0];
            let verdict = self.classify(id, buf, now);
            self.execute(id, verdict, buf, now);
            polled.frames += 1;
            if polled.frames == bufs.len() || !go_on() {
                polled.more = true;
                break;
            }
        }
        self.end_turn();
        Ok(polled)
    }

    /// Switches one frame that arrived on `ingress`. The buffer may be
    /// modified (a checksum finished for a port without offloads).
    pub fn handle_frame(&mut self, ingress: PortId, buf: &mut FrameBuf, now: Time) {
        self.handle_frame_in_turn(ingress, buf, now);
        self.end_turn();
    }

    /// [`Switch::handle_frame`] within a port's turn that goes on: what the
    /// NAT defers (acknowledgements, a flow's UDP batch) waits for
    /// [`Switch::end_turn`], as it waits for the end of `poll_port`'s turn.
    /// The fuzzer holds turns open with it.
    #[inline]
    pub fn handle_frame_in_turn(&mut self, ingress: PortId, buf: &mut FrameBuf, now: Time) {
        let verdict = self.classify(ingress, buf, now);
        self.execute(ingress, verdict, buf, now);
    }

    /// Ends a turn of [`Switch::handle_frame_in_turn`] frames.
    #[inline]
    pub fn end_turn(&mut self) {
        self.flush_nat();
    }

    /// What the NAT deferred while frames were handled (acknowledgements,
    /// one per flow per batch; a flow's UDP datagrams, one send).
    #[inline]
    fn flush_nat(&mut self) {
        if self.coalesce.is_holding() {
            self.send_coalesced();
        }
        let mut em = PortEmitter {
            ports: &mut self.ports,
            scratch: &mut self.scratch,
        };
        self.nat.flush(&mut em);
    }

    /// Decides where a frame goes: counts it, checks it, learns from it.
    pub fn classify(&mut self, ingress: PortId, buf: &FrameBuf, now: Time) -> Verdict {
        let Some(Some(slot)) = self.ports.get_mut(ingress.index()) else {
            return Verdict::Drop(DropReason::TxError);
        };
        let frame = buf.frame();
        slot.counters.rx_packets += 1;
        slot.counters.rx_bytes += frame.len() as u64;
        if !slot.taps.is_empty() {
            offer(&slot.taps, ingress, crate::capture::Direction::Inbound, buf);
        }
        if frame.len() < ETH_LEN {
            return Verdict::Drop(DropReason::Truncated);
        }
        if frame.len() >= MAX_FRAME_LEN {
            return Verdict::Drop(DropReason::Oversize);
        }
        let vnet = buf.vnet();
        if vnet.validate(frame.len()).is_err() {
            return Verdict::Drop(DropReason::BadVnetHeader);
        }
        match offload::check_offload(frame, &vnet) {
            Err(_) => return Verdict::Drop(DropReason::BadVnetHeader),
            // The segments a super-frame stands for must fit the MTU too.
            Ok(Some(segment)) if segment > slot.spec.mtu as usize => {
                return Verdict::Drop(DropReason::Oversize)
            }
            // Room for one VLAN tag beyond the Ethernet header.
            Ok(None) if frame.len() > slot.spec.mtu as usize + ETH_LEN + 4 => {
                return Verdict::Drop(DropReason::Oversize)
            }
            Ok(_) => {}
        }
        let src = MacAddr::from_slice(&frame[ethernet::field::SRC]);
        if !src.is_unicast() {
            return Verdict::Drop(DropReason::InvalidSrcMac);
        }
        if let Err(r) = slot.spec.policy.check(frame) {
            return Verdict::Drop(r);
        }
        let Some(Some(net)) = self.nets.get_mut(slot.spec.network.0 as usize) else {
            return Verdict::Drop(DropReason::NoRoute);
        };
        // Nobody speaks with the gateway's MAC but the gateway.
        if src == net.gateway.mac() {
            return Verdict::Drop(DropReason::SpoofedSrcMac);
        }
        match net.fdb.learn(src, ingress, now) {
            Learn::StaticConflict => return Verdict::Drop(DropReason::SpoofedSrcMac),
            Learn::Learned | Learn::Moved | Learn::Renewed => {
                if let Some(out) = &mut self.learned {
                    if out.len() < LEARNED_OUTBOX {
                        out.push(Learned {
                            net: slot.spec.network,
                            mac: src,
                            port: ingress,
                        });
                    } else {
                        self.learned_dropped += 1;
                    }
                }
            }
            Learn::Refreshed | Learn::Full => {}
        }
        let dst = MacAddr::from_slice(&frame[ethernet::field::DST]);
        if dst == net.gateway.mac() {
            return Verdict::Gateway;
        }
        match net.fdb.decide(&dst, ingress, now) {
            Forward::Unicast(p) => Verdict::Unicast(p),
            Forward::Flood => Verdict::Flood {
                to_gateway: dst.is_multicast(),
            },
            Forward::Hairpin => Verdict::Drop(DropReason::DstIsIngress),
        }
    }

    fn execute(&mut self, ingress: PortId, verdict: Verdict, buf: &mut FrameBuf, now: Time) {
        match verdict {
            Verdict::Drop(r) => {
                if let Some(Some(s)) = self.ports.get_mut(ingress.index()) {
                    s.counters.drop(r);
                }
            }
            Verdict::Unicast(p) => {
                if self.coalesce.is_holding() {
                    if self.coalesce.try_join(ingress, p, buf) {
                        return;
                    }
                    self.send_coalesced();
                }
                if self.takes_uso(p) && self.coalesce.start(ingress, p, buf) {
                    return;
                }
                send_to(&mut self.ports, &mut self.scratch, p, buf)
            }
            // Held datagrams leave before anything else does.
            _ if self.coalesce.is_holding() => {
                self.send_coalesced();
                self.execute(ingress, verdict, buf, now)
            }
            Verdict::Flood { to_gateway } => {
                // Storm control: every flooded frame is written to each of
                // the network's ports, so a port's floods are budgeted.
                if !self
                    .budgets
                    .of(ingress)
                    .is_some_and(|b| b.floods.allow(now))
                {
                    if let Some(Some(s)) = self.ports.get_mut(ingress.index()) {
                        s.counters.drop(DropReason::FloodLimited);
                    }
                    return;
                }
                self.flood(ingress, buf);
                if to_gateway {
                    self.deliver_to_gateway(ingress, buf, now);
                }
            }
            Verdict::Gateway => self.deliver_to_gateway(ingress, buf, now),
        }
    }

    /// Whether frames to `p` may be gathered into UDP super-frames: it
    /// takes them (a TAP whose kernel knows USO) and is live.
    fn takes_uso(&self, p: PortId) -> bool {
        self.slot(p).is_some_and(|s| s.offloads.uso && !s.dead)
    }

    /// Writes what the coalescer holds to its port.
    fn send_coalesced(&mut self) {
        if let Some((egress, frame)) = self.coalesce.take() {
            send_to(&mut self.ports, &mut self.scratch, egress, frame);
        }
    }

    fn flood(&mut self, ingress: PortId, buf: &mut FrameBuf) {
        let Some(Some(slot)) = self.ports.get(ingress.index()) else {
            return;
        };
        let Some(Some(net)) = self.nets.get(slot.spec.network.0 as usize) else {
            return;
        };
        let h = buf.vnet();
        let members = &net.ports;
        // Ports that take the frame as it is go first: completing a checksum
        // in place for the others must not reach them.
        let mut any_needs_software = false;
        for &p in members {
            if p == ingress {
                continue;
            }
            let Some(Some(s)) = self.ports.get_mut(p.index()) else {
                continue;
            };
            if s.dead {
                continue;
            }
            if s.offloads.accepts(&h) {
                transmit(s, buf);
            } else {
                any_needs_software = true;
            }
        }
        if !any_needs_software {
            return;
        }
        for &p in members {
            if p == ingress {
                continue;
            }
            let Some(Some(s)) = self.ports.get_mut(p.index()) else {
                continue;
            };
            if s.dead || s.offloads.accepts(&h) {
                continue;
            }
            send_software(s, &mut self.scratch, buf);
        }
    }

    fn deliver_to_gateway(&mut self, ingress: PortId, buf: &FrameBuf, now: Time) {
        let Some(Some(slot)) = self.ports.get(ingress.index()) else {
            return;
        };
        let Some(Some(net)) = self.nets.get_mut(slot.spec.network.0 as usize) else {
            return;
        };
        let allow_host_loopback = slot.spec.allow_host_loopback;
        let loopback_unreachable = slot.spec.loopback_unreachable;
        let (network, mtu) = (slot.spec.network, slot.spec.mtu);
        let (gateway_mac, gateway_ip, gateway_ip6, internal) = (
            net.gateway.mac(),
            net.gateway.ip(),
            net.gateway.ipv6(),
            !net.spec.nat,
        );
        let dns4 = net.gateway.dns_address();
        // The container end of what the gateway hands on: the sender as the
        // frame names it (for an endpoint, port security made sure it is
        // its own; an uplink carries many hosts), and the gateway's address
        // of its family (`via`: the one it asked, for DNS).
        let inside = |src_mac: MacAddr, src: IpAddr, via: Option<IpAddr>| Inside {
            port: ingress,
            mac: src_mac,
            ip: src,
            gateway_mac,
            gateway_ip: via.unwrap_or(match (src, gateway_ip6) {
                (IpAddr::V6(_), Some(g6)) => g6.into(),
                _ => gateway_ip,
            }),
            mtu,
            allow_host_loopback,
            loopback_unreachable,
            internal,
            net: network.0,
        };
        let vnet = buf.vnet();
        // Every port has a budget (the table is sized for the switch's
        // ports).
        let Some(budget) = self.budgets.of(ingress) else {
            return;
        };
        let verdict = net
            .gateway
            .handle_from(buf.frame(), &vnet, budget, now, &mut self.reply);
        let drop = match verdict {
            GatewayVerdict::Dhcp if !budget.dhcp.allow(now) => Some(DropReason::DhcpRateLimited),
            GatewayVerdict::Dhcp => {
                let sent = match (&self.events, super::DhcpFrame::copy_of(buf.frame())) {
                    (Some(tx), Some(frame)) => tx
                        .try_send(super::Event::Dhcp {
                            net: network,
                            port: ingress,
                            frame,
                        })
                        .is_ok(),
                    // Nobody serves DHCP here (tests, benches): not a drop.
                    (None, _) => true,
                    (Some(_), None) => false,
                };
                if !sent {
                    self.events_dropped += 1;
                }
                (!sent).then_some(DropReason::DhcpDropped)
            }
            GatewayVerdict::Dns(q) => {
                let from = inside(q.src_mac, q.src, Some(q.dst));
                let mut em = PortEmitter {
                    ports: &mut self.ports,
                    scratch: &mut self.scratch,
                };
                self.dns.query(
                    &from,
                    q.src_port,
                    q.message,
                    budget,
                    now,
                    self.nat.host(),
                    &mut em,
                )
            }
            GatewayVerdict::Nat(routed) => {
                // To the DNS-only address (DNS over TCP): the flow's gateway is
                // that address, so the NAT serves it and nothing else.
                let via = match (routed.dst, dns4) {
                    (std::net::IpAddr::V4(d), Some(a)) if d == a => Some(routed.dst),
                    _ => None,
                };
                let from = inside(routed.src_mac, routed.src, via);
                let mut em = PortEmitter {
                    ports: &mut self.ports,
                    scratch: &mut self.scratch,
                };
                self.nat
                    .outbound(&from, &routed, &vnet, budget, now, &mut em)
            }
            GatewayVerdict::Reply(drop) => {
                if let Some(Some(s)) = self.ports.get_mut(ingress.index()) {
                    if !s.dead {
                        transmit(s, &self.reply);
                    }
                }
                drop
            }
            GatewayVerdict::Drop(r) => Some(r),
            GatewayVerdict::Ignored => None,
        };
        if let (Some(r), Some(Some(s))) = (drop, self.ports.get_mut(ingress.index())) {
            s.counters.drop(r);
        }
    }

    /// Periodic work: NAT timers (call every few tens of milliseconds) and,
    /// once a second, MAC table aging.
    pub fn tick(&mut self, now: Time) {
        let mut em = PortEmitter {
            ports: &mut self.ports,
            scratch: &mut self.scratch,
        };
        self.nat.tick(now, &mut em);
        self.dns.tick(now, self.nat.host());
        // Unsolicited Router Advertisements, to every container endpoint of
        // each dual-stack network (the first at the network's first tick).
        // Not to uplinks: the hosts behind an attached interface have their
        // own router, and one that takes ours would route through lanyard
        // unasked; a host there that solicits still gets an answer.
        for i in 0..self.nets.len() {
            let Some(Some(net)) = self.nets.get_mut(i) else {
                continue;
            };
            if !net.gateway.advert_due(now, &mut self.reply) {
                continue;
            }
            for &p in &net.ports {
                if let Some(Some(s)) = self.ports.get_mut(p.index()) {
                    if !s.dead && s.spec.policy.mac.is_some() {
                        transmit(s, &self.reply);
                    }
                }
            }
        }
        if now.saturating_sub(self.last_fdb_sweep) >= Duration::from_secs(1)
            || now < self.last_fdb_sweep
        {
            self.last_fdb_sweep = now;
            for net in self.nets.iter_mut().flatten() {
                net.fdb.expire(now);
            }
        }
    }

    /// A copy of everything the control plane reports.
    pub fn snapshot(&self, now: Time) -> Snapshot {
        let mut ports = Vec::new();
        for (i, slot) in self.ports.iter().enumerate() {
            let Some(s) = slot else { continue };
            let net_name = self
                .nets
                .get(s.spec.network.0 as usize)
                .and_then(|n| n.as_ref())
                .map(|n| n.spec.name.clone())
                .unwrap_or_default();
            ports.push(PortReport {
                id: PortId(i as u32),
                name: s.spec.name.clone(),
                kind: s.port.kind(),
                network: net_name,
                mac: s.spec.policy.mac.map(|m| m.to_string()),
                offloads: s.offloads.tso,
                dead: s.dead,
                shard: 0,
                counters: PortCountersReport::from(&s.counters),
            });
        }
        let mut networks = Vec::new();
        for net in self.nets.iter().flatten() {
            let mut fdb: Vec<FdbRow> = net
                .fdb
                .entries(now)
                .map(|(mac, e)| FdbRow {
                    mac: mac.to_string(),
                    port: e.port,
                    port_name: self
                        .slot(e.port)
                        .map(|s| s.spec.name.clone())
                        .unwrap_or_default(),
                    age_secs: if e.is_static {
                        0.0
                    } else {
                        now.saturating_sub(e.last_seen).as_secs_f64()
                    },
                    is_static: e.is_static,
                })
                .collect();
            fdb.sort_by(|a, b| a.mac.cmp(&b.mac));
            networks.push(NetworkReport {
                name: net.spec.name.clone(),
                fdb_max_entries: net.fdb.max_entries(),
                fdb,
                fdb_counters: net.fdb.counters,
                gateway: net.gateway.counters,
            });
        }
        Snapshot {
            ports,
            networks,
            nat: self.nat.counters(),
            dns: self.dns.counters(),
            nat_flows: self.nat.flow_count(),
            fdb_sync_dropped: self.learned_dropped,
            udp_coalesced: self.coalesce.joined,
        }
    }
}

/// Sends to one port, adapting offloads to what it takes.
fn send_to(ports: &mut [Option<PortSlot>], scratch: &mut FrameBuf, p: PortId, buf: &mut FrameBuf) {
    let Some(Some(s)) = ports.get_mut(p.index()) else {
        return;
    };
    if s.dead {
        // Its device is gone: the frame has nowhere to go.
        s.counters.drop(DropReason::TxError);
        return;
    }
    if s.offloads.accepts(&buf.vnet()) {
        transmit(s, buf);
    } else {
        send_software(s, scratch, buf);
    }
}

/// Finishes in software what the port cannot take: cuts GSO frames into
/// segments, or completes the checksum in place.
fn send_software(s: &mut PortSlot, scratch: &mut FrameBuf, buf: &mut FrameBuf) {
    if buf.vnet().is_gso() {
        if offload::segment(buf, scratch, |seg| transmit(s, seg)).is_err() {
            s.counters.drop(DropReason::SegmentationFailed);
        }
        return;
    }
    if offload::finish_checksum(buf).is_err() {
        s.counters.drop(DropReason::SegmentationFailed);
        return;
    }
    transmit(s, buf);
}

/// Offers a frame to the captures on its port: out of line and cold, so
/// that the frame path with no capture keeps only the test of an empty
/// list.
#[cold]
#[inline(never)]
fn offer(
    taps: &[std::sync::Arc<super::tap::Tap>],
    port: PortId,
    dir: crate::capture::Direction,
    frame: &FrameBuf,
) {
    for t in taps {
        t.offer(port, dir, frame);
    }
}

#[inline]
fn transmit(s: &mut PortSlot, frame: &FrameBuf) {
    if !s.taps.is_empty() {
        offer(&s.taps, s.id, crate::capture::Direction::Outbound, frame);
    }
    match s.port.send(frame) {
        Ok(()) => {
            s.counters.tx_packets += 1;
            s.counters.tx_bytes += frame.len() as u64;
        }
        Err(SendError::Full) => s.counters.drop(DropReason::TxQueueFull),
        Err(SendError::Failed(_)) => s.counters.drop(DropReason::TxError),
    }
}

/// One port in a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PortReport {
    pub id: PortId,
    pub name: String,
    pub kind: PortKind,
    pub network: String,
    pub mac: Option<String>,
    /// Takes TSO/checksum offload (vnet header).
    pub offloads: bool,
    pub dead: bool,
    /// The data-path shard (thread) that reads the port.
    #[serde(default)]
    pub shard: usize,
    pub counters: PortCountersReport,
}

/// One MAC table entry in a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FdbRow {
    pub mac: String,
    pub port: PortId,
    pub port_name: String,
    pub age_secs: f64,
    pub is_static: bool,
}

/// One network in a report.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NetworkReport {
    pub name: String,
    pub fdb: Vec<FdbRow>,
    pub fdb_max_entries: usize,
    pub fdb_counters: FdbCounters,
    pub gateway: GatewayCounters,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct Snapshot {
    pub ports: Vec<PortReport>,
    pub networks: Vec<NetworkReport>,
    pub nat: NatCounters,
    #[serde(default)]
    pub dns: DnsCounters,
    pub nat_flows: usize,
    /// Learned MACs one shard could not tell the others (their queue was
    /// full); they flood to those MACs until the next announcement.
    #[serde(default)]
    pub fdb_sync_dropped: u64,
    /// Container → container UDP datagrams written inside another's
    /// super-frame (a TAP write each saved; `dataplane::coalesce`).
    #[serde(default)]
    pub udp_coalesced: u64,
}
