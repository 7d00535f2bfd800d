//! UDP flows: one connected host socket per 5-tuple. Datagrams from the
//! container are sent on it; datagrams it receives (the kernel filters them
//! to the one remote address and port, as port-restricted NAT does) go back
//! to the container as coming from that remote. An ICMP port unreachable
//! the host gets (ECONNREFUSED on the socket) is passed on to the container.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::Interest;

use super::policy::Target;
use super::table::{FlowId, FlowKey};
use super::{Flow, FlowState, Nat, Next, Proto};
use crate::frame::FrameBuf;
use crate::gateway::Routed;
use crate::host::PollToken;
use crate::inside::{emit_ip_to, finish_frame, pseudo_header, Emit, Inside};
use crate::ratelimit::SourceBudget;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::checksum;
use crate::wire::icmpv4::unreachable;
use crate::wire::ipv4::protocol;
use crate::wire::udp::{self as udpw, UdpPacket, HEADER_LEN};

/// Largest UDP payload in an IPv4 packet.
pub(crate) const MAX_PAYLOAD: usize = 65535 - 20 - HEADER_LEN;
/// Where the payload sits in IPv4 frames we build.
pub(crate) const PAYLOAD_OFFSET: usize = 14 + 20 + HEADER_LEN;

/// Where the payload sits in frames we build to `ep` (20 bytes further in
/// IPv6).
#[inline]
pub(crate) fn payload_offset(ep: &Inside) -> usize {
    ep.l4_offset() + HEADER_LEN
}
/// Datagrams read from one socket per readiness event (fairness).
const BATCH: usize = 64;

pub struct UdpFlow {
    /// The remote answered at least once (longer timeout, as conntrack's
    /// ASSURED).
    pub replied: bool,
    /// For a published port's client: the socket is the shared bound one,
    /// and the container's datagrams go to this address.
    pub reply_to: Option<SocketAddr>,
}

/// Wraps the `n` payload bytes at [`PAYLOAD_OFFSET`] of `tx` in a datagram
/// from the flow's outside address to the container, and emits it.
pub(crate) fn emit_datagram(
    tx: &mut crate::frame::FrameBuf,
    ep: &Inside,
    key: &FlowKey,
    n: usize,
    emit: &mut dyn Emit,
) {
    let remote = key.outside.ip();
    let l4_len = HEADER_LEN + n;
    let off = emit_ip_to(tx, ep, remote, protocol::UDP, l4_len);
    let pseudo = pseudo_header(remote, ep.ip, protocol::UDP, l4_len);
    // The pseudo-header sum in the checksum field; the port (or the
    // offload fallback) completes it.
    udpw::emit_header(
        &mut tx.read_space()[off..],
        key.outside.port(),
        key.inside.port(),
        l4_len as u16,
        checksum::fold(pseudo),
    );
    finish_frame(tx, off + l4_len, udpw::CHECKSUM_OFFSET as u16, None);
    emit.emit(ep.port, tx);
}

/// The first 8 bytes of a UDP header from the container's view, to quote in
/// an ICMP error.
fn quote(key: &FlowKey) -> [u8; 8] {
    let mut q = [0u8; 8];
    udpw::emit_header(
        &mut q,
        key.inside.port(),
        key.outside.port(),
        HEADER_LEN as u16,
        0,
    );
    q
}

/// A container's datagram's flow key.
#[inline]
fn udp_key(ip: &Routed<'_>, u: &UdpPacket<&[u8]>) -> FlowKey {
    FlowKey {
        proto: Proto::Udp,
        inside: SocketAddr::new(ip.src, u.src_port()),
        outside: SocketAddr::new(ip.dst, u.dst_port()),
    }
}

impl Nat {
    /// The flow of `key`, marked active (conntrack lookup and LRU touch).
    #[inline]
    fn udp_lookup(&mut self, key: &FlowKey, now: Time) -> Option<FlowId> {
        let id = self.table.lookup(key)?;
        self.table.touch(id, now);
        Some(id)
    }

    /// The per-datagram work of an established UDP flow toward the host,
    /// without the `send(2)` that follows it: IPv4 checks, UDP parse,
    /// conntrack lookup, LRU touch. Returns the flow and the payload its
    /// socket would be given. [`Nat::outbound`] runs these same steps; this
    /// entry exists so the criterion bench can measure them apart from the
    /// socket call, which costs more than all of them.
    pub fn udp_established<'a>(
        &mut self,
        buf: &'a FrameBuf,
        now: Time,
    ) -> Option<(FlowId, &'a [u8])> {
        let pkt = crate::gateway::routed(buf.frame(), &buf.vnet()).ok()?;
        if pkt.proto != protocol::UDP {
            return None;
        }
        let u = UdpPacket::new_checked(pkt.l4).ok()?;
        let id = self.udp_lookup(&udp_key(&pkt, &u), now)?;
        // The payload as a slice of `buf` (the view's borrow ends here).
        Some((id, &pkt.l4[HEADER_LEN..HEADER_LEN + u.payload().len()]))
    }

    /// The per-datagram work of an established UDP flow toward its
    /// container, after the `recv(2)` that put `n` payload bytes at
    /// [`PAYLOAD_OFFSET`] of the NAT's frame buffer: the headers from the
    /// remote to the container (addresses, ports, lengths, checksum) and
    /// the emit. False if there is no such flow.
    pub fn udp_deliver(&mut self, id: FlowId, n: usize, emit: &mut dyn Emit) -> bool {
        let (Some(key), Some(flow)) = (self.table.key(id).copied(), self.table.get(id)) else {
            return false;
        };
        let ep = flow.ep;
        emit_datagram(&mut self.tx, &ep, &key, n, emit);
        true
    }

    pub(super) fn udp_outbound(
        &mut self,
        ep: &Inside,
        ip: &Routed<'_>,
        l4: &[u8],
        budget: &mut SourceBudget,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Option<DropReason> {
        let Ok(u) = UdpPacket::new_checked(l4) else {
            return Some(DropReason::MalformedPacket);
        };
        let (dst, dport) = (ip.dst, u.dst_port());
        let key = udp_key(ip, &u);
        let id = match self.udp_lookup(&key, now) {
            Some(id) => id,
            None => {
                // A new flow: a socket and a connect on this thread, so
                // the container's budget of them first.
                if !budget.new_flows.allow(now) {
                    self.counters.flows_refused_rate += 1;
                    return Some(DropReason::FlowRateLimited);
                }
                let target = match self.target_for(ep, dst, dport, false) {
                    Target::Connect(t) => t,
                    // UDP to the gateway's port 53 is the DNS's, handed to it
                    // before the NAT; no other UDP service exists.
                    Target::Service => return Some(DropReason::NotServed),
                    Target::Refuse(r) => {
                        self.icmp_error_to(
                            budget,
                            now,
                            ep,
                            &key,
                            protocol::UDP,
                            r.icmp_code(),
                            &quote(&key),
                            emit,
                        );
                        return Some(r.reason());
                    }
                };
                if self.table.flows_of(key.inside.ip()) >= self.cfg.max_flows_per_container {
                    self.counters.flows_refused_limit += 1;
                    self.icmp_error_to(
                        budget,
                        now,
                        ep,
                        &key,
                        protocol::UDP,
                        unreachable::ADMIN_PROHIBITED,
                        &quote(&key),
                        emit,
                    );
                    return Some(DropReason::FlowLimit);
                }
                let sock = match self.io.udp_connect(target) {
                    Ok(s) => s,
                    Err(e) => {
                        self.counters.host_socket_failed += 1;
                        let code = match e.raw_os_error() {
                            Some(libc::ENETUNREACH) => unreachable::NET,
                            Some(libc::EACCES) | Some(libc::EPERM) => unreachable::ADMIN_PROHIBITED,
                            _ => unreachable::HOST,
                        };
                        self.icmp_error_to(
                            budget,
                            now,
                            ep,
                            &key,
                            protocol::UDP,
                            code,
                            &quote(&key),
                            emit,
                        );
                        return Some(DropReason::HostSocketFailed);
                    }
                };
                let flow = Flow::new(
                    *ep,
                    sock,
                    target,
                    now,
                    FlowState::Udp(UdpFlow {
                        replied: false,
                        reply_to: None,
                    }),
                );
                match self.add_flow(key, flow, Interest::READABLE, now, emit) {
                    Ok(id) => id,
                    Err(r) => return Some(r),
                }
            }
        };
        let flow = self.table.get_mut(id)?;
        let sent = match &mut flow.state {
            FlowState::Udp(UdpFlow {
                reply_to: Some(client),
                replied,
            }) => {
                *replied = true;
                self.io.send_to(flow.sock.as_raw_fd(), u.payload(), *client)
            }
            _ => self.io.send(flow.sock.as_raw_fd(), u.payload()),
        };
        match sent {
            Ok(n) => {
                flow.bytes_out += n as u64;
                None
            }
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                self.icmp_error_to(
                    budget,
                    now,
                    ep,
                    &key,
                    protocol::UDP,
                    unreachable::PORT,
                    &quote(&key),
                    emit,
                );
                None
            }
            Err(_) => {
                self.counters.udp_send_failed += 1;
                Some(DropReason::TxQueueFull)
            }
        }
    }

    pub(super) fn udp_event(
        &mut self,
        id: FlowId,
        key: &FlowKey,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Next {
        let Some(flow) = self.table.get_mut(id) else {
            return Next::Keep;
        };
        let fd = flow.sock.as_raw_fd();
        let ep = flow.ep;
        let mut got_any = false;
        let mut drained = false;
        for _ in 0..BATCH {
            let at = payload_offset(&ep);
            let space = &mut self.tx.read_space()[at..at + MAX_PAYLOAD];
            match self.io.recv(fd, space, 0) {
                Ok(n) => {
                    emit_datagram(&mut self.tx, &ep, key, n, emit);
                    flow.bytes_in += n as u64;
                    got_any = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    super::icmp::send_unreachable(
                        &mut self.tx,
                        &ep,
                        key,
                        protocol::UDP,
                        unreachable::PORT,
                        &quote(key),
                        emit,
                    );
                }
                Err(_) => {
                    drained = true;
                    break;
                }
            }
        }
        if got_any {
            if let FlowState::Udp(u) = &mut flow.state {
                u.replied = true;
            }
            self.table.touch(id, now);
        }
        // A full batch read: the socket is polled edge-triggered, so what
        // is left would wait for the next datagram to arrive (for ever, if
        // the remote sent its last). Re-arming reports it again on the next
        // poll, after the others had their turn.
        if !drained {
            self.io
                .reregister(fd, PollToken::Flow(id.0), Interest::READABLE);
        }
        Next::Keep
    }
}
