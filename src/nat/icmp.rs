//! ICMP and ICMPv6: echo requests to the world through unprivileged ping
//! sockets (`socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP)`, and
//! `AF_INET6`/`IPPROTO_ICMPV6`), one per container echo identifier and
//! destination, and the ICMP errors the NAT sends to containers on behalf
//! of the host (unreachable, refused by policy), of the flow's family.
//!
//! Ping sockets exist only for groups in `net.ipv4.ping_group_range` (which
//! governs both families); when the host does not allow them, echo
//! requests are answered with "administratively prohibited", logged once
//! and counted.

use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;

use mio::Interest;

use super::policy::Target;
use super::table::{FlowId, FlowKey};
use super::{inside_v4, outside_v4, Flow, FlowState, Nat, Next, Proto};
use crate::frame::FrameBuf;
use crate::gateway::Routed;
use crate::inside::{emit_ip_to, v6, Emit, Inside};
use crate::log;
use crate::ratelimit::SourceBudget;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::icmpv4::{self, msg_type, unreachable, Icmpv4Packet};
use crate::wire::icmpv6::{self, Icmpv6Packet};
use crate::wire::ipv4::{protocol, Ipv4Repr};
use crate::wire::ipv6::{self as ip6, next_header};
use crate::wire::vnet::VnetHdr;

pub struct IcmpFlow {
    /// The container's echo identifier (the ping socket's is another).
    pub ident: u16,
}

/// The ICMPv6 Destination Unreachable code for an ICMP one (RFC 4443 3.1).
fn v6_code(code: u8) -> u8 {
    match code {
        unreachable::NET => icmpv6::unreachable::NO_ROUTE,
        unreachable::PORT => icmpv6::unreachable::PORT,
        unreachable::ADMIN_PROHIBITED => icmpv6::unreachable::ADMIN_PROHIBITED,
        _ => icmpv6::unreachable::ADDRESS,
    }
}

/// Sends an ICMP destination unreachable to the endpoint, from the gateway,
/// about a packet of `proto` from the container to `key.outside`, quoting
/// a reconstructed IP header and the first 8 transport bytes `l4`; ICMPv6
/// (with the code translated) for an IPv6 flow.
pub(crate) fn send_unreachable(
    tx: &mut FrameBuf,
    ep: &Inside,
    key: &FlowKey,
    proto: u8,
    code: u8,
    l4: &[u8; 8],
    emit: &mut dyn Emit,
) {
    if let (std::net::IpAddr::V6(from), std::net::IpAddr::V6(to)) = (ep.gateway_ip, ep.ip) {
        let mut quote = [0u8; ip6::HEADER_LEN + 8];
        let next = if proto == protocol::ICMP {
            next_header::ICMPV6
        } else {
            proto
        };
        ip6::emit_header(
            &mut quote,
            v6(key.inside.ip()),
            v6(key.outside.ip()),
            next,
            8,
            64,
        );
        quote[ip6::HEADER_LEN..].copy_from_slice(l4);
        let len = 8 + quote.len();
        let off = emit_ip_to(tx, ep, ep.gateway_ip, protocol::ICMP, len);
        let buf = &mut tx.read_space()[off..off + len];
        icmpv6::emit_error(buf, icmpv6::kind::DST_UNREACHABLE, v6_code(code), 0, &quote);
        if let Ok(mut m) = Icmpv6Packet::new_checked(buf) {
            m.fill_checksum(from, to);
        }
        tx.set_len(off + len);
        tx.set_vnet(VnetHdr::default());
        emit.emit(ep.port, tx);
        return;
    }
    let mut quote = [0u8; 28];
    Ipv4Repr {
        src: inside_v4(key),
        dst: outside_v4(key),
        protocol: proto,
        payload_len: 8,
        ttl: 64,
        ident: 0,
    }
    .emit(&mut quote);
    quote[20..].copy_from_slice(l4);
    let len = icmpv4::HEADER_LEN + quote.len();
    let off = emit_ip_to(tx, ep, ep.gateway_ip, protocol::ICMP, len);
    let n = icmpv4::emit_error(
        &mut tx.read_space()[off..],
        msg_type::DEST_UNREACHABLE,
        code,
        &quote,
    );
    tx.set_len(off + n);
    tx.set_vnet(VnetHdr::default());
    emit.emit(ep.port, tx);
}

impl Nat {
    /// An ICMP error about a container's own packet (a refused or failed
    /// new flow), charged to the container's budget of ICMP errors: past
    /// it the error is not sent (counted), the refusal stands.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn icmp_error_to(
        &mut self,
        budget: &mut SourceBudget,
        now: Time,
        ep: &Inside,
        key: &FlowKey,
        proto: u8,
        code: u8,
        l4: &[u8; 8],
        emit: &mut dyn Emit,
    ) {
        if budget.icmp_errors.allow(now) {
            send_unreachable(&mut self.tx, ep, key, proto, code, l4, emit);
        } else {
            self.counters.icmp_errors_limited += 1;
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn icmp_outbound(
        &mut self,
        ep: &Inside,
        ip: &Routed<'_>,
        l4: &[u8],
        vnet: &VnetHdr,
        budget: &mut SourceBudget,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Option<DropReason> {
        let is_v6 = ip.src.is_ipv6();
        let Ok(icmp) = Icmpv4Packet::new_checked(l4) else {
            return Some(DropReason::MalformedPacket);
        };
        // The echo layout (type, code, checksum, identifier, sequence) is
        // the same in both; the checksum and the type numbers are not.
        let (checksum_ok, echo_request) = if is_v6 {
            let ok = Icmpv6Packet::new_checked(l4)
                .is_ok_and(|m| m.verify_checksum(v6(ip.src), v6(ip.dst)));
            (ok, icmpv6::kind::ECHO_REQUEST)
        } else {
            (icmp.verify_checksum(), msg_type::ECHO_REQUEST)
        };
        if !vnet.needs_csum() && !checksum_ok {
            return Some(DropReason::BadChecksum);
        }
        if icmp.msg_type() != echo_request || l4.len() < 8 {
            return Some(DropReason::NotServed);
        }
        let ident = icmp.echo_ident();
        let key = FlowKey {
            proto: Proto::Icmp,
            inside: SocketAddr::new(ip.src, ident),
            outside: SocketAddr::new(ip.dst, 0),
        };
        let q = icmp.quote();
        let id = match self.table.lookup(&key) {
            Some(id) => id,
            None => {
                if !budget.new_flows.allow(now) {
                    self.counters.flows_refused_rate += 1;
                    return Some(DropReason::FlowRateLimited);
                }
                // Echo to the gateway is answered by the gateway itself;
                // what reaches here is routed, and the same destination
                // rule as for TCP and UDP holds (port 0: no service).
                if let Target::Refuse(r) = self.target_for(ep, ip.dst, 0, false) {
                    self.icmp_error_to(
                        budget,
                        now,
                        ep,
                        &key,
                        protocol::ICMP,
                        r.icmp_code(),
                        &q,
                        emit,
                    );
                    return Some(r.reason());
                }
                if self.table.flows_of(key.inside.ip()) >= self.cfg.max_flows_per_container {
                    self.counters.flows_refused_limit += 1;
                    self.icmp_error_to(
                        budget,
                        now,
                        ep,
                        &key,
                        protocol::ICMP,
                        unreachable::ADMIN_PROHIBITED,
                        &q,
                        emit,
                    );
                    return Some(DropReason::FlowLimit);
                }
                let sock = match self.io.ping_socket(is_v6) {
                    Ok(s) => s,
                    Err(e) => {
                        self.counters.icmp_unavailable += 1;
                        if !self.icmp_warned {
                            self.icmp_warned = true;
                            log::warn!(
                                "ICMP echo from containers cannot be forwarded: the host refuses ping sockets ({e}); \
                                 allow them with sysctl net.ipv4.ping_group_range=\"0 2147483647\" (or a range holding gid {})",
                                nix::unistd::getegid()
                            );
                        }
                        self.icmp_error_to(
                            budget,
                            now,
                            ep,
                            &key,
                            protocol::ICMP,
                            unreachable::ADMIN_PROHIBITED,
                            &q,
                            emit,
                        );
                        return Some(DropReason::IcmpUnavailable);
                    }
                };
                if let Err(e) = self
                    .io
                    .connect(sock.as_raw_fd(), SocketAddr::new(ip.dst, 0))
                {
                    self.counters.host_socket_failed += 1;
                    let code = if e.raw_os_error() == Some(libc::ENETUNREACH) {
                        unreachable::NET
                    } else {
                        unreachable::HOST
                    };
                    self.icmp_error_to(budget, now, ep, &key, protocol::ICMP, code, &q, emit);
                    return Some(DropReason::HostSocketFailed);
                }
                let flow = Flow::new(
                    *ep,
                    sock,
                    key.outside,
                    now,
                    FlowState::Icmp(IcmpFlow { ident }),
                );
                match self.add_flow(key, flow, Interest::READABLE, now, emit) {
                    Ok(id) => id,
                    Err(r) => return Some(r),
                }
            }
        };
        self.table.touch(id, now);
        let flow = self.table.get_mut(id)?;
        // The kernel replaces the identifier with the socket's own and
        // computes the checksum.
        match self.io.send(flow.sock.as_raw_fd(), l4) {
            Ok(n) => {
                flow.bytes_out += n as u64;
                None
            }
            Err(_) => Some(DropReason::TxQueueFull),
        }
    }

    pub(super) fn icmp_event(
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
        let FlowState::Icmp(IcmpFlow { ident }) = flow.state else {
            return Next::Keep;
        };
        let at = ep.l4_offset();
        loop {
            let space = &mut self.tx.read_space()[at..at + 65535 - 40];
            match self.io.recv(fd, space, 0) {
                Ok(n) if n >= icmpv4::HEADER_LEN => {
                    if let Ok(mut m) = Icmpv4Packet::new_checked(&mut space[..n]) {
                        // The container's identifier back in place of the
                        // ping socket's.
                        m.set_echo_ident(ident);
                        if !ep.ip.is_ipv6() {
                            m.fill_checksum();
                        }
                    }
                    if ep.ip.is_ipv6() {
                        if let Ok(mut m) = Icmpv6Packet::new_checked(&mut space[..n]) {
                            m.fill_checksum(v6(key.outside.ip()), v6(ep.ip));
                        }
                    }
                    let off = emit_ip_to(&mut self.tx, &ep, key.outside.ip(), protocol::ICMP, n);
                    self.tx.set_len(off + n);
                    self.tx.set_vnet(VnetHdr::default());
                    emit.emit(ep.port, &mut self.tx);
                    flow.bytes_in += n as u64;
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(_) => break,
            }
        }
        self.table.touch(id, now);
        Next::Keep
    }
}
