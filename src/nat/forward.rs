//! Published ports: docker's DNAT + userland proxy, without root. A host
//! listener (TCP) or bound socket (UDP) per forwarded port sits on the data
//! path's poll; each client becomes an ordinary NAT flow whose container
//! side is the published port:
//!
//! * TCP: the accepted socket is the flow's host socket; lanyard opens the
//!   connection toward the container with a SYN *from the client's own
//!   address and port*, so the container sees the real client (docker's
//!   userland proxy and slirp4netns show their own address instead). The
//!   container's replies go to its default route, the gateway, where the
//!   flow's key catches them: from then on it is the same translation as
//!   egress, with the roles of the handshake reversed.
//! * UDP: a flow per client address on the shared bound socket; replies
//!   leave through it (to the client's address, a run of them as one UDP
//!   GSO send), so they come from the published port. A client's
//!   consecutive datagrams reach the container as one super-frame.
//!
//! An IPv6 client reaches a dual-stack container over IPv6, as itself. A
//! client the container cannot answer directly — one on the host's
//! loopback, or over IPv6 while the container has only IPv4 — is shown as
//! coming from the gateway's address of the family the container is
//! reached over (as docker does for loopback clients), with its own port.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsRawFd, OwnedFd};

use mio::Interest;

use super::table::FlowKey;
use super::{Flow, FlowState, Nat, Proto};
use crate::host::PollToken;
use crate::inside::{Emit, Inside};
use crate::log;
use crate::offload::SegmentRun;
use crate::port::PortId;
use crate::publish::{Mapping, Protocol};
use crate::time::Time;

/// Connections (or datagrams) taken from one listener per readiness event.
const ACCEPT_BATCH: usize = 64;

pub struct Forward {
    pub mapping: Mapping,
    pub listener: OwnedFd,
    pub ep: Inside,
    /// The container's IPv6 end, on a dual-stack network.
    pub ep6: Option<Inside>,
    pub accepted: u64,
    pub refused: u64,
    /// New TCP clients it takes per second (`[nat] published_clients_*`):
    /// each costs a SYN to the container and a flow on the data path's
    /// thread, which every container of the shard shares. Past it the
    /// listener is left alone until the next tick; the clients wait in the
    /// host's backlog (and past that the host's SYN queue), as behind any
    /// busy server, and are neither refused nor reset.
    clients: crate::ratelimit::RateLimiter,
    /// Out of budget: re-armed by the next tick.
    throttled: bool,
}

impl Forward {
    fn port(&self) -> PortId {
        self.ep.port
    }
}

/// A published UDP port's datagrams from one client, gathered in the NAT's
/// frame buffer at their payload offset, not yet written to the container.
struct Pending {
    fid: super::FlowId,
    key: FlowKey,
    ep: Inside,
    /// Where the payloads start in the frame buffer.
    at: usize,
    run: SegmentRun,
}

impl Pending {
    fn start(fid: super::FlowId, key: FlowKey, ep: Inside, n: usize) -> Pending {
        Pending {
            fid,
            key,
            ep,
            at: super::udp::payload_offset(&ep),
            run: SegmentRun::start(n),
        }
    }

    /// Nothing more may join: a shorter datagram came, the run is at its
    /// bounds, or its segments would not fit the container's MTU.
    fn full(&self) -> bool {
        !self.run.may_grow() || self.run.segment > super::udp::segment_fits(&self.ep)
    }
}

/// The ports a client shown as the gateway may be given, in order: its
/// own, then the next 63 (above the privileged range).
fn alias_ports(first: u16) -> impl Iterator<Item = u16> {
    std::iter::successors(Some(first), |p| Some(p.wrapping_add(1).max(1024))).take(64)
}

/// Moves `key`'s outside port to the first of `alias_ports` no flow holds
/// (a client shown as the gateway shares its address with others); false
/// if all are taken.
pub(super) fn free_alias_port(table: &super::table::FlowTable<Flow>, key: &mut FlowKey) -> bool {
    for port in alias_ports(key.outside.port()) {
        key.outside.set_port(port);
        if table.lookup(key).is_none() {
            return true;
        }
    }
    false
}

/// The container end a client is forwarded to (IPv6 for an IPv6 client of
/// a dual-stack container), and the address it appears from there.
fn seen_from(ep: &Inside, ep6: Option<&Inside>, client: SocketAddr) -> (Inside, SocketAddr) {
    let as_gateway = |e: &Inside| (*e, SocketAddr::new(e.gateway_ip, client.port()));
    match (client.ip(), ep6) {
        (IpAddr::V4(ip), _) if !ip.is_loopback() && !ip.is_unspecified() => (*ep, client),
        (IpAddr::V6(ip), Some(e6)) if super::policy::valid_source(ip, e6.gateway_ip) => {
            (*e6, client)
        }
        // The host's [::1] (or a link-local client): the gateway's IPv6
        // address, with its port.
        (IpAddr::V6(_), Some(e6)) => as_gateway(e6),
        _ => as_gateway(ep),
    }
}

impl Nat {
    /// Starts forwarding `listener` (already bound) to the endpoint's
    /// `mapping.container_port`; returns the forward's id.
    pub fn add_forward(
        &mut self,
        listener: OwnedFd,
        mapping: Mapping,
        ep: Inside,
        ep6: Option<Inside>,
    ) -> io::Result<u32> {
        let fd = listener.as_raw_fd();
        let id = match self.forwards.iter().position(|f| f.is_none()) {
            Some(i) => i,
            None => {
                self.forwards.push(None);
                self.forwards.len() - 1
            }
        };
        self.io
            .register(fd, PollToken::Forward(id as u32), Interest::READABLE)?;
        self.forwards[id] = Some(Forward {
            mapping,
            listener,
            ep,
            ep6,
            accepted: 0,
            refused: 0,
            clients: crate::ratelimit::RateLimiter::new(
                self.cfg.published_clients.per_sec,
                self.cfg.published_clients.burst,
            ),
            throttled: false,
        });
        Ok(id as u32)
    }

    /// Stops a forward at once: the listener closes (new clients are
    /// refused by the host), flows already made carry on.
    pub fn remove_forward(&mut self, id: u32) -> bool {
        let Some(slot) = self.forwards.get_mut(id as usize) else {
            return false;
        };
        let Some(f) = slot.take() else {
            return false;
        };
        self.io.deregister(f.listener.as_raw_fd());
        true
    }

    /// Forwards of a port that left: closed, so the host ports are free.
    pub(super) fn remove_forwards_of(&mut self, port: PortId) {
        let ids: Vec<u32> = self
            .forwards
            .iter()
            .enumerate()
            .filter(|(_, f)| f.as_ref().is_some_and(|f| f.port() == port))
            .map(|(i, _)| i as u32)
            .collect();
        for id in ids {
            self.remove_forward(id);
        }
    }

    /// A published port's listener is readable.
    pub fn on_forward_event(&mut self, forward: u32, now: Time, emit: &mut dyn Emit) {
        let id = forward as usize;
        let Some(Some(f)) = self.forwards.get(id) else {
            return;
        };
        match f.mapping.proto {
            Protocol::Tcp => self.accept_clients(id, now, emit),
            Protocol::Udp => self.forward_datagrams(id, now, emit),
        }
    }

    /// The listener of forward `id` is polled edge-triggered: after a full
    /// batch (the backlog not yet drained) nothing would report it again
    /// until a new client arrives — and with the backlog full no new
    /// client can arrive, so the port would be stuck for good (a flood of
    /// clients did that). Re-arming it reports it again on the next poll,
    /// after the other ready ports and sockets had their turn.
    fn rearm(&mut self, id: usize) {
        if let Some(Some(f)) = self.forwards.get(id) {
            let fd = f.listener.as_raw_fd();
            self.io
                .reregister(fd, PollToken::Forward(id as u32), Interest::READABLE);
        }
    }

    /// Forwards left alone for their budget: their listeners are re-armed,
    /// so those with clients waiting are reported again (every tick).
    pub(super) fn rearm_throttled(&mut self) {
        for id in 0..self.forwards.len() {
            if let Some(Some(f)) = self.forwards.get_mut(id) {
                if f.throttled {
                    f.throttled = false;
                    self.rearm(id);
                }
            }
        }
    }

    /// Accepts up to `ACCEPT_BATCH` clients within the forward's budget;
    /// re-arms the listener if the batch was full, or leaves it to the next
    /// tick when the budget is spent.
    fn accept_clients(&mut self, id: usize, now: Time, emit: &mut dyn Emit) {
        for _ in 0..ACCEPT_BATCH {
            let Some(Some(f)) = self.forwards.get_mut(id) else {
                return;
            };
            // A token is spent on a client taken, not on the accept that
            // finds none (which ends every batch): sequential clients got
            // half the budget that way.
            if !f.clients.ready(now) {
                f.throttled = true;
                self.throttled_any = true;
                self.counters.published_clients_limited += 1;
                return;
            }
            let (ep4, ep6, cport) = (f.ep, f.ep6, f.mapping.container_port);
            let (client, peer) = match self.io.accept(f.listener.as_raw_fd()) {
                Ok(c) => {
                    f.clients.spend();
                    c
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    // EMFILE and the like: leave the rest queued for later.
                    log::warn!("accepting on {}: {e}", f.mapping.host);
                    return;
                }
            };
            let (ep, seen) = seen_from(&ep4, ep6.as_ref(), peer);
            let mut key = FlowKey {
                proto: Proto::Tcp,
                inside: SocketAddr::new(ep.ip, cport),
                outside: seen,
            };
            // Two clients shown as the gateway with one port (127.0.0.1 and
            // 127.0.0.2, or ::1) would look alike from inside: move the
            // later one.
            let refuse = !free_alias_port(&self.table, &mut key)
                || self.table.flows_of(key.inside.ip()) >= self.cfg.max_flows_per_container;
            if refuse {
                self.io.set_linger_zero(client.as_raw_fd());
                self.counters.flows_refused_limit += 1;
                if let Some(Some(f)) = self.forwards.get_mut(id) {
                    f.refused += 1;
                }
                continue;
            }
            let isn = self.next_isn(&key, now);
            let peek_off = self.io.set_peek_off(client.as_raw_fd(), 0);
            let conn = super::tcp::TcpConn::new_inbound(isn, now, peek_off);
            let mut flow = Flow::new(ep, client, peer, now, FlowState::Tcp(conn));
            // An IPv6 client of a dual-stack container: IPv4 is the way in
            // if its service listens there only.
            if ep.ip.is_ipv6() {
                flow.fallback_v4 = Some(ep4.v4());
            }
            match self.add_flow(key, flow, Interest::READABLE, now, emit) {
                Ok(fid) => {
                    if let Some(Some(f)) = self.forwards.get_mut(id) {
                        f.accepted += 1;
                    }
                    self.send_syn_to_container(fid, &key, emit);
                    self.mark_busy(fid);
                }
                Err(_) => {
                    if let Some(Some(f)) = self.forwards.get_mut(id) {
                        f.refused += 1;
                    }
                }
            }
        }
        // A full batch: more may be waiting.
        self.rearm(id);
    }

    /// Reads a published UDP port's datagrams (up to `ACCEPT_BATCH`) and
    /// hands each to its client's flow, making one for a new client.
    /// Consecutive datagrams of one client that `SegmentRun` lets share a
    /// super-frame are written to the container as one, as
    /// `Nat::udp_event` does for an egress flow's replies.
    fn forward_datagrams(&mut self, id: usize, now: Time, emit: &mut dyn Emit) {
        let mut pending: Option<Pending> = None;
        let mut drained = false;
        for _ in 0..ACCEPT_BATCH {
            let Some(Some(f)) = self.forwards.get(id) else {
                break;
            };
            let (ep4, ep6, cport, lfd) = (
                f.ep,
                f.ep6,
                f.mapping.container_port,
                f.listener.as_raw_fd(),
            );
            // With nothing pending, the datagram is received where an IPv4
            // frame's payload goes (the common case: no copy); otherwise
            // into the receive buffer, copied after the run if it joins.
            let at = super::udp::PAYLOAD_OFFSET;
            let got = match &pending {
                None => self.io.recv_from(
                    lfd,
                    &mut self.tx.read_space()[at..at + super::udp::MAX_PAYLOAD],
                ),
                Some(_) => self
                    .io
                    .recv_from(lfd, &mut self.udp_rx[..super::udp::MAX_PAYLOAD]),
            };
            let (n, peer) = match got {
                Ok(r) => r,
                Err(_) => {
                    // WouldBlock, or an error the next event reports again.
                    drained = true;
                    break;
                }
            };
            let in_tx = pending.is_none();
            let (ep, seen) = seen_from(&ep4, ep6.as_ref(), peer);
            let Some((key, existing)) = self.udp_client_key(&ep, cport, peer, seen) else {
                self.counters.flows_refused_limit += 1;
                continue;
            };
            if let (Some(p), Some(fid)) = (&mut pending, existing) {
                if p.fid == fid && p.run.takes(n) {
                    let end = p.at + p.run.len;
                    self.tx.read_space()[end..end + n].copy_from_slice(&self.udp_rx[..n]);
                    p.run.add(n);
                    self.client_datagram(fid, n, now);
                    if p.full() {
                        self.emit_pending(pending.take(), emit);
                    }
                    continue;
                }
            }
            // It starts a run of its own: what was pending goes first, so
            // that nothing below (a new flow may evict one, and an evicted
            // connection's reset is built in the same buffer) touches it.
            self.emit_pending(pending.take(), emit);
            // Where the datagram is now: the receive buffer, or the frame
            // buffer at an IPv4 payload's offset.
            let mut in_rx = !in_tx;
            let fid = match existing {
                Some(fid) => fid,
                None => {
                    if self.table.flows_of(key.inside.ip()) >= self.cfg.max_flows_per_container {
                        self.counters.flows_refused_limit += 1;
                        continue;
                    }
                    // The flow answers through a duplicate of the shared
                    // socket; only the original is polled.
                    let Ok(dup) = self.io.dup(lfd) else {
                        self.counters.host_socket_failed += 1;
                        continue;
                    };
                    let flow = Flow::new(
                        ep,
                        dup,
                        peer,
                        now,
                        FlowState::Udp(super::udp::UdpFlow {
                            replied: false,
                            no_gso: false,
                            reply_to: Some(peer),
                        }),
                    );
                    // The datagram is kept aside while the flow is made:
                    // an eviction's reset is written to the frame buffer.
                    if !in_rx {
                        self.udp_rx[..n].copy_from_slice(&self.tx.read_space()[at..at + n]);
                        in_rx = true;
                    }
                    match self.add_unpolled_flow(key, flow, now, emit) {
                        Some(fid) => fid,
                        None => continue,
                    }
                }
            };
            let to = super::udp::payload_offset(&ep);
            if in_rx {
                self.tx.read_space()[to..to + n].copy_from_slice(&self.udp_rx[..n]);
            } else if to != at {
                // Moved 20 bytes on for a client forwarded over IPv6.
                self.tx.read_space().copy_within(at..at + n, to);
            }
            let p = Pending::start(fid, key, ep, n);
            self.client_datagram(fid, n, now);
            if p.full() {
                self.emit_pending(Some(p), emit);
            } else {
                pending = Some(p);
            }
        }
        self.emit_pending(pending, emit);
        // A full batch: more may be waiting (see `rearm`).
        if !drained {
            self.rearm(id);
        }
    }

    /// A client's datagram counted to its flow, which it keeps alive.
    fn client_datagram(&mut self, fid: super::FlowId, n: usize, now: Time) {
        self.table.touch(fid, now);
        if let Some(f) = self.table.get_mut(fid) {
            f.bytes_in += n as u64;
        }
    }

    /// Writes what a published port's client sent that waits in the frame
    /// buffer: one datagram, or a super-frame of several.
    fn emit_pending(&mut self, pending: Option<Pending>, emit: &mut dyn Emit) {
        if let Some(p) = pending {
            if super::udp::emit_run(&mut self.tx, &p.ep, &p.key, &p.run, emit) {
                self.counters.udp_super_frames += 1;
            }
        }
    }

    /// The flow key of a UDP client of a published port, and its flow if it
    /// has one; `None` if it cannot be told apart from others. A client the
    /// container sees as itself keys by its own address; one shown as the
    /// gateway (loopback, IPv6) may share the port it is shown with with
    /// another such client, so each gets the first of `alias_ports` no
    /// other client holds, and keeps it: the container's replies to that
    /// port reach that client only.
    fn udp_client_key(
        &self,
        ep: &Inside,
        cport: u16,
        peer: SocketAddr,
        seen: SocketAddr,
    ) -> Option<(FlowKey, Option<super::FlowId>)> {
        let mut key = FlowKey {
            proto: Proto::Udp,
            inside: SocketAddr::new(ep.ip, cport),
            outside: seen,
        };
        if key.outside == peer {
            return Some((key, self.table.lookup(&key)));
        }
        let mut free = None;
        for port in alias_ports(key.outside.port()) {
            key.outside.set_port(port);
            match self.table.lookup(&key) {
                Some(id) if self.table.get(id).is_some_and(|f| f.target == peer) => {
                    return Some((key, Some(id)));
                }
                Some(_) => {}
                None => {
                    free.get_or_insert(port);
                }
            }
        }
        // A new client: the first free port; none left, it is refused.
        let port = free?;
        key.outside.set_port(port);
        Some((key, None))
    }

    /// Forwards for `lanyard port ls`: host address, container port,
    /// clients accepted and refused.
    pub fn forward_counts(&self, id: u32) -> Option<(u64, u64)> {
        self.forwards
            .get(id as usize)?
            .as_ref()
            .map(|f| (f.accepted, f.refused))
    }
}
