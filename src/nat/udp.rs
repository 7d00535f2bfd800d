//! UDP flows: one connected host socket per 5-tuple. Datagrams from the
//! container are sent on it; datagrams it receives (the kernel filters them
//! to the one remote address and port, as port-restricted NAT does) go back
//! to the container as coming from that remote. An ICMP port unreachable
//! the host gets (ECONNREFUSED on the socket) is passed on to the container.
//!
//! ## Batching toward the host
//!
//! A send(2) on a host socket runs the host's whole UDP transmit (and,
//! through a veth, the receiver's stack) in the data path's thread: about
//! a microsecond or more a datagram, which is what bounds a stream of small
//! datagrams (docs/PERFORMANCE.md, the `nat_udp_with_socket` rows). So
//! consecutive datagrams of one flow within a port's turn are gathered in
//! [`UdpBatch`] (one fixed 63 KiB buffer per NAT, the payloads back to back,
//! counted as an `offload::SegmentRun`)
//! and leave in one `UDP_SEGMENT` send (UDP GSO) when something else comes:
//!
//! | the next datagram | what happens |
//! |---|---|
//! | same flow, same size, room left | appended |
//! | same flow, shorter, room left | appended, and the batch takes no more (GSO's last segment may be shorter, no other) |
//! | anything else (another flow, a larger one, no room, not UDP) | the batch is sent, then this one starts the next |
//! | the port's turn ends (`Nat::flush`) | the batch is sent |
//!
//! A batch of one is a plain send(2). The kernel refuses a batch whose
//! segments do not fit the route's MTU (EMSGSIZE) or that it cannot build
//! (EINVAL), or whose device cannot checksum them (EIO); its datagrams then
//! go one by one, and so does that flow's traffic from then on
//! (`udp_gso_refused`). A published port's client is answered the same
//! way, from the port's shared socket to the client's address (the send
//! names it). Datagrams over 32 KiB are never batched. Nothing waits past
//! the turn that read it.
//!
//! ## Batching toward the container
//!
//! The other way, each write(2) into the container's TAP runs its UDP
//! receive and wakes its reader, in our thread. The datagrams one readiness
//! event reads from a flow's socket (up to 64) are gathered the same way —
//! same size, a shorter one last, each segment within the container's MTU,
//! 63 KiB at most — and written as one UDP super-frame (`UDP_L4` in the
//! vnet header), which the container's kernel splits into the datagrams.
//! A port that cannot take one (`Offloads::uso`: not a TAP, or a kernel
//! before 6.2) gets the datagrams cut apart by the switch, as it would a
//! TCP super-frame. One datagram is a plain frame.

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
use crate::offload::{SegmentRun, UDP_MAX_BYTES};
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
/// The largest datagram a super-frame to `ep` may carry as a segment: one
/// that makes an IP packet within the container's MTU.
#[inline]
pub(crate) fn segment_fits(ep: &Inside) -> usize {
    (ep.mtu as usize).saturating_sub(payload_offset(ep) - crate::wire::ethernet::HEADER_LEN)
}

/// Datagrams read from one socket per readiness event (fairness).
const BATCH: usize = 64;

/// Larger datagrams are sent as they come (few per byte already).
const GSO_MAX_DATAGRAM: usize = 32 * 1024;

/// Datagrams of one flow on their way to its host socket as one UDP GSO
/// send (the module's "Batching toward the host").
pub(crate) struct UdpBatch {
    /// The payloads, back to back; allocated once.
    buf: Box<[u8]>,
    run: SegmentRun,
    /// The flow it is for, and that flow's key: a flow that is gone (or
    /// whose slot holds another) by the send is not sent for.
    flow: Option<(FlowId, FlowKey)>,
}

impl UdpBatch {
    pub(crate) fn new() -> UdpBatch {
        UdpBatch {
            buf: vec![0u8; UDP_MAX_BYTES].into_boxed_slice(),
            run: SegmentRun::start(0),
            flow: None,
        }
    }

    /// The flow whose datagrams it holds, if any.
    #[inline]
    pub(crate) fn flow(&self) -> Option<FlowId> {
        self.flow.map(|(id, _)| id)
    }

    /// Appends `payload` for flow `id`; false if it does not fit this
    /// batch (another flow, or not what `SegmentRun::takes`), which the
    /// caller then sends first.
    fn append(&mut self, id: FlowId, key: &FlowKey, payload: &[u8]) -> bool {
        let n = payload.len();
        let at = match self.flow {
            None => {
                self.flow = Some((id, *key));
                self.run = SegmentRun::start(n);
                0
            }
            Some((f, _)) if f == id && self.run.takes(n) => {
                let at = self.run.len;
                self.run.add(n);
                at
            }
            Some(_) => return false,
        };
        self.buf[at..at + n].copy_from_slice(payload);
        true
    }

    /// Empties it: the flow and the run it held.
    fn take(&mut self) -> Option<((FlowId, FlowKey), SegmentRun)> {
        Some((self.flow.take()?, self.run))
    }
}

pub struct UdpFlow {
    /// The remote answered at least once (longer timeout, as conntrack's
    /// ASSURED).
    pub replied: bool,
    /// The host refused a UDP GSO send of this flow's datagrams: they go
    /// one by one.
    pub no_gso: bool,
    /// For a published port's client: the socket is the shared bound one,
    /// and the container's datagrams go to this address.
    pub reply_to: Option<SocketAddr>,
}

impl UdpFlow {
    /// Where the container's datagrams go: a published port's client (the
    /// container answering it makes the flow replied), or `None`, the
    /// socket's connected remote.
    fn answer_to(&mut self) -> Option<SocketAddr> {
        if self.reply_to.is_some() {
            self.replied = true;
        }
        self.reply_to
    }
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
    emit_udp(tx, ep, key, n, None, emit);
}

/// What `run` gathered at the payload offset of `tx`: one datagram as
/// [`emit_datagram`] sends it, several as one UDP super-frame (`UDP_L4`),
/// which the container's kernel splits into them (a port that cannot take
/// one, `Offloads::uso`, gets them cut apart by the switch). True for a
/// super-frame.
pub(crate) fn emit_run(
    tx: &mut FrameBuf,
    ep: &Inside,
    key: &FlowKey,
    run: &SegmentRun,
    emit: &mut dyn Emit,
) -> bool {
    let gso = (run.count > 1).then_some(crate::inside::Gso {
        kind: crate::wire::vnet::gso::UDP_L4,
        size: run.segment as u16,
        hdr_len: 0, // set below, once the header's offset is known
    });
    emit_udp(tx, ep, key, run.len, gso, emit);
    gso.is_some()
}

/// The headers of `n` payload bytes from the flow's outside address to the
/// container: the pseudo-header sum over the whole in the checksum field
/// (the port or the offload fallback completes it; a super-frame's
/// segmentation swaps each datagram's own length into it and into the UDP
/// length), and emits the frame.
fn emit_udp(
    tx: &mut FrameBuf,
    ep: &Inside,
    key: &FlowKey,
    n: usize,
    gso: Option<crate::inside::Gso>,
    emit: &mut dyn Emit,
) {
    let remote = key.outside.ip();
    let l4_len = HEADER_LEN + n;
    let off = emit_ip_to(tx, ep, remote, protocol::UDP, l4_len);
    let pseudo = pseudo_header(remote, ep.ip, protocol::UDP, l4_len);
    udpw::emit_header(
        &mut tx.read_space()[off..],
        key.outside.port(),
        key.inside.port(),
        l4_len as u16,
        checksum::fold(pseudo),
    );
    let gso = gso.map(|g| crate::inside::Gso {
        hdr_len: (off + HEADER_LEN) as u16,
        ..g
    });
    finish_frame(tx, off + l4_len, udpw::CHECKSUM_OFFSET as u16, gso);
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

/// One datagram on a flow's socket: to `to` (a published port's client, on
/// the shared socket), or to the socket's connected remote.
fn send_one(
    io: &mut dyn crate::host::HostIo,
    fd: std::os::fd::RawFd,
    data: &[u8],
    to: Option<SocketAddr>,
) -> io::Result<usize> {
    match to {
        Some(client) => io.send_to(fd, data, client),
        None => io.send(fd, data),
    }
}

/// The host cannot send this batch as one (the route's MTU, the device, a
/// kernel without UDP GSO), though it could send its datagrams.
fn gso_refused(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMSGSIZE | libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
    )
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
        let found = self.udp_lookup(&key, now);
        // Another flow's batch leaves first, before this datagram can make
        // a flow (and so evict one).
        if self.udp_batch.flow().is_some_and(|b| Some(b) != found) {
            self.flush_udp(emit);
        }
        let id = match found {
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
                        no_gso: false,
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
        let batchable = matches!(flow.state, FlowState::Udp(UdpFlow { no_gso: false, .. }))
            && (1..=GSO_MAX_DATAGRAM).contains(&u.payload().len());
        if batchable {
            if !self.udp_batch.append(id, &key, u.payload()) {
                self.flush_udp(emit);
                self.udp_batch.append(id, &key, u.payload());
            }
            return None;
        }
        // Not batched: what this flow has batched goes first, in order.
        if self.udp_batch.flow() == Some(id) {
            self.flush_udp(emit);
        }
        let Some(flow) = self.table.get_mut(id) else {
            return Some(DropReason::TxQueueFull);
        };
        let to = match &mut flow.state {
            FlowState::Udp(u) => u.answer_to(),
            _ => None,
        };
        let sent = send_one(&mut *self.io, flow.sock.as_raw_fd(), u.payload(), to);
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

    /// Sends the batch (the module's "Batching toward the host"): one
    /// UDP GSO send, or one by one where the host refuses that.
    pub(super) fn flush_udp(&mut self, emit: &mut dyn Emit) {
        let Some(((id, key), run)) = self.udp_batch.take() else {
            return;
        };
        let SegmentRun {
            len,
            segment,
            count,
            ..
        } = run;
        if self.table.key(id) != Some(&key) {
            self.counters.udp_send_failed += count as u64;
            return;
        }
        let Some(flow) = self.table.get_mut(id) else {
            return;
        };
        let fd = flow.sock.as_raw_fd();
        let ep = flow.ep;
        let to = match &mut flow.state {
            FlowState::Udp(u) => u.answer_to(),
            _ => None,
        };
        let data = &self.udp_batch.buf[..len];
        let mut refused = false;
        let mut failed = 0usize;
        if count == 1 {
            match send_one(&mut *self.io, fd, data, to) {
                Ok(n) => flow.bytes_out += n as u64,
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => refused = true,
                Err(_) => failed = 1,
            }
        } else {
            match self.io.send_segments(fd, data, segment as u16, to) {
                Ok(n) => {
                    flow.bytes_out += n as u64;
                    self.counters.udp_gso_batches += 1;
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => refused = true,
                Err(e) if gso_refused(&e) => {
                    // The route's MTU or the device: this flow's datagrams
                    // go one by one, now and from now on.
                    self.counters.udp_gso_refused += 1;
                    if let FlowState::Udp(u) = &mut flow.state {
                        u.no_gso = true;
                    }
                    for (i, d) in data.chunks(segment).enumerate() {
                        match send_one(&mut *self.io, fd, d, to) {
                            Ok(n) => flow.bytes_out += n as u64,
                            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                                refused = true;
                                failed = count - i - 1;
                                break;
                            }
                            Err(_) => failed += 1,
                        }
                    }
                }
                Err(_) => failed = count,
            }
        }
        self.counters.udp_send_failed += failed as u64;
        if refused {
            // The remote's port unreachable, once for the batch (a
            // remote's answer, as `udp_event` passes them on).
            super::icmp::send_unreachable(
                &mut self.tx,
                &ep,
                &key,
                protocol::UDP,
                unreachable::PORT,
                &quote(&key),
                emit,
            );
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
        let at = payload_offset(&ep);
        let fits = segment_fits(&ep);
        // What the datagrams read so far make, not yet emitted.
        let mut run: Option<SegmentRun> = None;
        let (mut got, mut bytes, mut super_frames) = (0u64, 0u64, 0u64);
        let mut drained = false;
        for _ in 0..BATCH {
            // The first datagram straight to where it goes; the others to
            // the receive buffer, then after it if they may share its
            // super-frame (copying a datagram costs less than a write).
            let r = match run {
                None => self
                    .io
                    .recv(fd, &mut self.tx.read_space()[at..at + MAX_PAYLOAD], 0),
                Some(_) => self.io.recv(fd, &mut self.udp_rx[..MAX_PAYLOAD], 0),
            };
            match r {
                Ok(n) => {
                    got += 1;
                    bytes += n as u64;
                    run = Some(match run {
                        None => SegmentRun::start(n),
                        Some(mut r) if r.segment <= fits && r.takes(n) => {
                            let end = at + r.len;
                            self.tx.read_space()[end..end + n].copy_from_slice(&self.udp_rx[..n]);
                            r.add(n);
                            r
                        }
                        Some(r) => {
                            super_frames += u64::from(emit_run(&mut self.tx, &ep, key, &r, emit));
                            self.tx.read_space()[at..at + n].copy_from_slice(&self.udp_rx[..n]);
                            SegmentRun::start(n)
                        }
                    });
                    // Emitted as soon as nothing more may join (a shorter
                    // datagram, a full run, a segment too large for the
                    // container's MTU).
                    if let Some(r) = run.filter(|r| r.segment > fits || !r.may_grow()) {
                        super_frames += u64::from(emit_run(&mut self.tx, &ep, key, &r, emit));
                        run = None;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    drained = true;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                    if let Some(r) = run.take() {
                        super_frames += u64::from(emit_run(&mut self.tx, &ep, key, &r, emit));
                    }
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
        if let Some(r) = run {
            super_frames += u64::from(emit_run(&mut self.tx, &ep, key, &r, emit));
        }
        self.counters.udp_super_frames += super_frames;
        let Some(flow) = self.table.get_mut(id) else {
            return Next::Keep;
        };
        if got > 0 {
            flow.bytes_in += bytes;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::offload::{segment, Offloads};
    use crate::port::PortId;
    use crate::wire::ethernet::MacAddr;
    use crate::wire::vnet::gso;
    use std::net::IpAddr;

    struct Keep(Vec<FrameBuf>);
    impl Emit for Keep {
        fn emit(&mut self, _port: PortId, frame: &mut FrameBuf) {
            self.0
                .push(FrameBuf::from_frame(frame.vnet(), frame.frame()));
        }
    }

    fn inside(ip: IpAddr) -> Inside {
        let gw: IpAddr = if ip.is_ipv4() {
            "172.17.0.1".parse().unwrap()
        } else {
            "fd00:172:17::1".parse().unwrap()
        };
        Inside {
            port: PortId(0),
            mac: MacAddr([2, 0x42, 0xac, 0x11, 0, 2]),
            ip,
            gateway_mac: MacAddr([2, 0x42, 0xac, 0x11, 0, 1]),
            gateway_ip: gw,
            mtu: 1500,
            allow_host_loopback: false,
            loopback_unreachable: false,
            internal: false,
            net: 0,
        }
    }

    /// What `emit_run` builds of several datagrams is a UDP super-frame a TAP that knows
    /// USO takes whole, and that `offload::segment` cuts into exactly the
    /// datagrams gathered, each with valid IP and UDP checksums (checked by
    /// etherparse), for both families.
    #[test]
    fn a_super_frame_is_the_datagrams_it_gathered() {
        for (me, remote) in [
            ("172.17.0.2", "203.0.113.10:5201"),
            ("fd00:172:17::2", "[2001:db8::10]:5201"),
        ] {
            let ep = inside(me.parse().unwrap());
            let key = FlowKey {
                proto: Proto::Udp,
                inside: SocketAddr::new(ep.ip, 40000),
                outside: remote.parse().unwrap(),
            };
            let sizes = [100usize, 100, 100, 37];
            let at = payload_offset(&ep);
            let mut tx = FrameBuf::new();
            let mut len = 0;
            for (i, &n) in sizes.iter().enumerate() {
                for b in &mut tx.read_space()[at + len..at + len + n] {
                    *b = i as u8;
                }
                len += n;
            }
            let mut run = SegmentRun::start(sizes[0]);
            for &n in &sizes[1..] {
                run.add(n);
            }
            assert_eq!(run.len, len);
            let mut out = Keep(Vec::new());
            assert!(emit_run(&mut tx, &ep, &key, &run, &mut out));
            let sf = &out.0[0];
            let h = sf.vnet();
            assert_eq!((h.gso_kind(), h.gso_size), (gso::UDP_L4, 100));
            assert!(Offloads {
                uso: true,
                ..Offloads::FULL
            }
            .accepts(&h));
            assert!(
                !Offloads::FULL.accepts(&h),
                "cut apart unless the port says USO"
            );
            assert_eq!(
                crate::offload::check_offload(sf.frame(), &h).unwrap(),
                Some(at - crate::wire::ethernet::HEADER_LEN + 100),
                "the switch's own check of offload headers passes it"
            );
            let mut scratch = FrameBuf::new();
            let mut got = Vec::new();
            segment(sf, &mut scratch, |s| {
                let p = etherparse::SlicedPacket::from_ethernet(s.frame()).unwrap();
                let Some(etherparse::TransportSlice::Udp(u)) = p.transport else {
                    panic!("not UDP");
                };
                assert_eq!(u.source_port(), 5201);
                assert_eq!(u.destination_port(), 40000);
                let ok = match p.net {
                    Some(etherparse::NetSlice::Ipv4(ip)) => {
                        let hdr = ip.header().to_header();
                        assert_eq!(hdr.header_checksum, hdr.calc_header_checksum());
                        u.to_header().calc_checksum_ipv4(&hdr, u.payload()).unwrap() == u.checksum()
                    }
                    Some(etherparse::NetSlice::Ipv6(ip)) => {
                        u.to_header()
                            .calc_checksum_ipv6(&ip.header().to_header(), u.payload())
                            .unwrap()
                            == u.checksum()
                    }
                    _ => panic!("not IP"),
                };
                assert!(ok, "the UDP checksum");
                got.push(u.payload().to_vec());
            })
            .unwrap();
            let want: Vec<Vec<u8>> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| vec![i as u8; n])
                .collect();
            assert_eq!(got, want, "{me}: the datagrams, whole and in order");
        }
    }

    /// A batch takes one flow's datagrams of one size, then one shorter
    /// one; nothing after that, nothing larger, nothing of another flow.
    #[test]
    fn a_batch_keeps_datagram_boundaries() {
        let key = FlowKey {
            proto: Proto::Udp,
            inside: "172.17.0.2:40000".parse().unwrap(),
            outside: "203.0.113.10:53".parse().unwrap(),
        };
        let mut b = UdpBatch::new();
        let (a, other) = (FlowId(1), FlowId(2));
        assert!(b.append(a, &key, &[1; 64]));
        assert!(b.append(a, &key, &[2; 64]));
        assert!(!b.append(a, &key, &[3; 65]), "larger");
        assert!(!b.append(other, &key, &[3; 64]), "another flow");
        assert!(b.append(a, &key, &[4; 10]), "a shorter last one");
        assert!(!b.append(a, &key, &[5; 10]), "nothing after it");
        let ((id, _), run) = b.take().unwrap();
        assert_eq!((id, run.len, run.segment, run.count), (a, 138, 64, 3));
        assert!(b.take().is_none());
        // Bounded in count: UDP_MAX_SEGMENTS datagrams, then no more.
        for _ in 0..crate::offload::UDP_MAX_SEGMENTS {
            assert!(b.append(a, &key, &[0; 8]));
        }
        assert!(!b.append(a, &key, &[0; 8]));
        // And in bytes.
        b.take();
        let big = vec![0u8; GSO_MAX_DATAGRAM];
        assert!(b.append(a, &key, &big));
        assert!(!b.append(a, &key, &big), "past UDP_MAX_BYTES");
    }
}
