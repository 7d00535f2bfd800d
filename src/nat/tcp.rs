//! TCP translation between a container's TCP and a host stream socket,
//! without a TCP stack of our own and without buffering.
//!
//! The container talks TCP to what it thinks is the remote host; lanyard
//! answers as that host, and the host kernel's socket carries the bytes:
//!
//! * **Handshake.** A SYN starts a non-blocking `connect()`; the SYN-ACK
//!   goes to the container only once the host connect succeeded, so a
//!   refused connect is a RST and an unreachable one an ICMP error, never a
//!   connection that opens and then dies.
//! * **Container → host.** In-order payload is written to the socket at
//!   once and acknowledged for exactly what the socket took. The window we
//!   advertise is the free space of the socket's send buffer, so the
//!   container never sends what the host cannot take; when that space is
//!   low we ask for EPOLLOUT and send a window update when it grows.
//! * **Host → container.** Data is *peeked* (`MSG_PEEK` with
//!   `SO_PEEK_OFF` at the in-flight offset) and sent as one GSO super-frame
//!   of up to 64 KiB; it stays in the kernel's receive buffer until the
//!   container acknowledges it, when it is discarded with `MSG_TRUNC`.
//!   The kernel buffer is the retransmission buffer, and a slow container
//!   reader closes the window toward the remote server: flow control end to
//!   end, with no byte buffered by lanyard.
//! * **Loss** (rare on a TAP): three duplicate ACKs or a timer rewind the
//!   peek offset to the first unacknowledged byte.
//! * **Close.** A container FIN is `shutdown(SHUT_WR)`; EOF on the socket
//!   is a FIN to the container; RSTs travel both ways (`SO_LINGER` 0).
//!
//! No timestamps, no SACK: the container falls back to plain TCP on its
//! loss-free link to us, and the host socket does the real TCP.
//!
//! # States
//!
//! A connection is a [`Phase`] (the handshake) and, once established, the
//! state of each direction: [`ToHost`] (the container's data, onto the
//! socket) and [`ToContainer`] (the socket's data, peeked and sent). What
//! an event does in each:
//!
//! | state | event | action | next |
//! |---|---|---|---|
//! | — | container SYN | `connect()` (non-blocking) | `Connecting` |
//! | — | published port's client accepted | SYN to the container, from the client | `SynSent` |
//! | `Connecting` | socket writable, no error | SYN-ACK to the container | `SynAckSent` |
//! | `Connecting` | socket error | RST (refused) or ICMP unreachable; flow goes | — |
//! | `SynSent` | container SYN-ACK for our ISN | ACK; host data may flow | `Established` |
//! | `SynSent` | an ACK of other numbers (a TIME_WAIT of an earlier connection on the 4-tuple) | RST at its ACK number; the SYN again, the first time | |
//! | `SynSent` | no answer, 5 retries | flow goes (client reset) | — |
//! | `SynAckSent` | container ACK of our SYN | | `Established` |
//! | any | container RST at `rcv_nxt` (RFC 5961) | host side reset; flow goes | — |
//! | `Established` | container data in order | `send()`; ACK what the socket took (deferred to the batch's flush) | |
//! | `Established` | container data past a gap | ACK for what is missing | |
//! | `ToHost::Open` | container FIN in order | `shutdown(SHUT_WR)`; ACK | `ToHost::Shut` |
//! | `ToContainer::Open` | socket readable | peek at the in-flight offset; data as super-frames within the container's window | |
//! | `ToContainer::Open` | peek returns 0 (EOF) | FIN to the container | `ToContainer::FinSent` |
//! | `ToContainer::FinSent` | container ACK of the FIN | | `ToContainer::FinAcked` |
//! | any direction | container ACK of new data | discard it from the socket (deferred to the flush) | |
//! | data in flight | 3 duplicate ACKs, or the timer | rewind the peek to `snd_una` (a FIN in flight is taken back) | `FinSent` → `Eof` |
//! | `ToContainer::Eof` | the peek finds EOF again | FIN again | `ToContainer::FinSent` |
//! | window 0, nothing in flight | timer | window probe (`snd_una - 1`); the container's answer resets the count | |
//! | data in flight or probing | 12 timeouts without an answer | both sides reset; flow goes | — |
//! | `ToHost::Shut` and `ToContainer::FinAcked` | — | socket closed cleanly; flow goes | — |
//! | socket send buffer low | EPOLLOUT | window update (three times if data was dropped) | |

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use mio::Interest;

use super::policy::{Refusal, Target};
use super::table::{FlowId, FlowKey};
use super::{Flow, FlowState, Nat, Next, Proto};
use crate::frame::FrameBuf;
use crate::gateway::Routed;
use crate::host::{HostIo, PollToken};
use crate::inside::{emit_ip_to, finish_frame, pseudo_header, Emit, Gso, Inside};
use crate::ratelimit::SourceBudget;
use crate::stats::DropReason;
use crate::time::Time;
use crate::wire::checksum;
use crate::wire::ipv4::protocol;
use crate::wire::tcp::{self as tcpw, flags, TcpPacket};
use crate::wire::vnet::{gso, VnetHdr};

/// Our window scale: windows up to 8 MiB.
const OUR_WSCALE: u8 = 7;
/// Payload of one super-frame: the IPv4 total length (16 bits) minus the
/// IP and TCP headers (an IPv6 payload length, which leaves out the fixed
/// header, holds it too). In the frames we build it starts after the
/// transport header (`Inside::l4_offset` + 20).
const MAX_SEG_PAYLOAD: usize = 65535 - 40;
const RTO_MIN: Duration = Duration::from_millis(200);
const RTO_MAX: Duration = Duration::from_secs(3);
/// Retransmissions (or window probes) the container leaves unanswered
/// before the flow is reset (~30 s of silence).
const MAX_RETRIES: u8 = 12;

#[inline]
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The host connect is in progress; the container waits for SYN-ACK.
    Connecting,
    /// A published port's client: we sent the container a SYN and wait for
    /// its SYN-ACK.
    SynSent,
    /// SYN-ACK sent; waiting for the container's ACK.
    SynAckSent,
    Established,
}

/// The container → host direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToHost {
    Open,
    /// The container sent FIN: the socket is shut down for writing.
    Shut,
}

/// The host → container direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ToContainer {
    /// No EOF read from the socket yet.
    Open,
    /// EOF read, and a FIN sent (it is the last sequence number in flight).
    FinSent,
    /// EOF read, the FIN to be sent again (a rewind took it back).
    Eof,
    /// The container acknowledged our FIN.
    FinAcked,
}

impl ToContainer {
    fn eof(self) -> bool {
        self != ToContainer::Open
    }

    fn fin_sent(self) -> bool {
        matches!(self, ToContainer::FinSent | ToContainer::FinAcked)
    }
}

/// Waiting for the socket's send buffer to drain.
#[derive(Debug, Clone, Copy, Default)]
struct WriteWait {
    /// EPOLLOUT is registered.
    armed: bool,
    /// In-order data was dropped because the socket was full: the next
    /// window update goes out three times, so the container retransmits at
    /// once (fast retransmit) instead of after its RTO.
    dropped: bool,
}

/// Work deferred to the end of a batch of frames (`Nat::flush`).
#[derive(Debug, Clone, Copy, Default)]
struct Deferred {
    /// The flow is on the NAT's list for the next flush.
    queued: bool,
    /// An acknowledgement of in-order data is owed to the container; it
    /// goes out at the flush, after the rest of the batch (one ACK for
    /// several super-frames read in one round).
    ack: bool,
    /// The acknowledgement owed went out on a data segment: the flush sends
    /// none, but still arms EPOLLOUT if the window it gave is low.
    ack_carried: bool,
    /// Bytes the container acknowledged that are still in the socket's
    /// receive buffer: discarded at the flush, once for the batch (each
    /// discard may send the remote a window update, run in our thread).
    discard: u32,
}

pub struct TcpConn {
    phase: Phase,
    to_host: ToHost,
    to_container: ToContainer,
    write_wait: WriteWait,
    deferred: Deferred,
    /// The container's initial sequence number.
    c_isn: u32,
    /// Next sequence number expected from the container.
    rcv_nxt: u32,
    /// Our initial sequence number toward the container.
    isn: u32,
    /// Oldest byte sent to the container and not yet acknowledged.
    snd_una: u32,
    /// Next byte to send to the container.
    snd_nxt: u32,
    /// The container's receive window, in bytes.
    c_wnd: u32,
    c_wscale: u8,
    our_wscale: u8,
    c_mss: u16,
    dup_acks: u8,
    last_progress: Time,
    rto: Duration,
    retries: u8,
    /// SO_PEEK_OFF works (Linux ≥ 6.9); without it one super-frame is in
    /// flight at a time.
    peek_off: bool,
    /// The window last advertised, and the send buffer it came from.
    last_window: u32,
    last_sndbuf: u32,
    /// The last peek found the host socket empty (EAGAIN): nothing to send
    /// the container until its next readable event (or a rewind), so the
    /// container's segments need not peek again.
    host_drained: bool,
}

/// A TCP segment from the container.
pub struct Seg<'a> {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub payload: &'a [u8],
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
}

impl Seg<'_> {
    /// Parses a TCP header, options included (MSS and window scale are
    /// kept); `None` for anything malformed.
    pub fn parse(l4: &[u8]) -> Option<Seg<'_>> {
        let t = TcpPacket::new_checked(l4).ok()?;
        let hl = t.header_len();
        let mut mss = None;
        let mut wscale = None;
        let mut opts = t.options();
        while let Some(&kind) = opts.first() {
            match kind {
                0 => break,
                1 => opts = &opts[1..],
                _ => {
                    let len = *opts.get(1)? as usize;
                    if len < 2 || len > opts.len() {
                        return None;
                    }
                    match (kind, len) {
                        (2, 4) => mss = Some(u16::from_be_bytes([opts[2], opts[3]])),
                        (3, 3) => wscale = Some(opts[2].min(14)),
                        _ => {}
                    }
                    opts = &opts[len..];
                }
            }
        }
        Some(Seg {
            src_port: t.src_port(),
            dst_port: t.dst_port(),
            seq: t.seq(),
            ack: t.ack(),
            flags: t.flags(),
            window: t.window(),
            payload: &l4[hl..],
            mss,
            wscale,
        })
    }

    fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

impl TcpConn {
    fn new(syn: &Seg<'_>, isn: u32, now: Time, peek_off: bool) -> TcpConn {
        let (c_wscale, our_wscale) = match syn.wscale {
            Some(s) => (s, OUR_WSCALE),
            None => (0, 0),
        };
        TcpConn {
            phase: Phase::Connecting,
            c_isn: syn.seq,
            rcv_nxt: syn.seq.wrapping_add(1),
            isn,
            snd_una: isn,
            snd_nxt: isn.wrapping_add(1),
            // A SYN's window is never scaled.
            c_wnd: syn.window as u32,
            c_wscale,
            our_wscale,
            c_mss: syn.mss.unwrap_or(536).max(64),
            to_host: ToHost::Open,
            to_container: ToContainer::Open,
            write_wait: WriteWait::default(),
            deferred: Deferred::default(),
            dup_acks: 0,
            last_progress: now,
            rto: RTO_MIN,
            retries: 0,
            peek_off,
            last_window: 0,
            last_sndbuf: 0,
            host_drained: false,
        }
    }

    /// A connection a published port's client opened: we are the one
    /// sending SYN, from the client's address.
    pub fn new_inbound(isn: u32, now: Time, peek_off: bool) -> TcpConn {
        TcpConn {
            phase: Phase::SynSent,
            c_isn: 0,
            rcv_nxt: 0,
            isn,
            snd_una: isn,
            snd_nxt: isn.wrapping_add(1),
            c_wnd: 0,
            c_wscale: 0,
            our_wscale: OUR_WSCALE,
            c_mss: 536,
            to_host: ToHost::Open,
            to_container: ToContainer::Open,
            write_wait: WriteWait::default(),
            deferred: Deferred::default(),
            dup_acks: 0,
            last_progress: now,
            rto: Duration::from_secs(1),
            retries: 0,
            peek_off,
            last_window: 0,
            last_sndbuf: 0,
            host_drained: false,
        }
    }

    /// The container and we agree on sequence numbers (a RST would be
    /// accepted).
    pub fn is_synchronized(&self) -> bool {
        !matches!(self.phase, Phase::Connecting | Phase::SynSent)
    }

    /// Both FINs are through: the container's taken, ours acknowledged.
    fn closed_both_ways(&self) -> bool {
        self.to_host == ToHost::Shut && self.to_container == ToContainer::FinAcked
    }

    pub fn is_established_both_ways(&self) -> bool {
        self.phase == Phase::Established && self.to_host == ToHost::Open && !self.to_container.eof()
    }

    pub fn state_name(&self) -> &'static str {
        match self.phase {
            Phase::Connecting => "syn_sent",
            Phase::SynSent => "syn_sent",
            Phase::SynAckSent => "syn_recv",
            Phase::Established => match (self.to_host == ToHost::Shut, self.to_container.eof()) {
                (false, false) => "established",
                (true, false) => "fin_wait",
                (false, true) => "close_wait",
                (true, true) => "closing",
            },
        }
    }

    fn in_flight_data(&self) -> u32 {
        let all = self.snd_nxt.wrapping_sub(self.snd_una);
        all - u32::from(self.to_container == ToContainer::FinSent).min(all)
    }

    /// Bytes in flight (data and FIN), a closed window toward the
    /// container, or a low window toward us: the timer has work.
    fn busy(&self) -> bool {
        self.phase == Phase::Established
            && (self.snd_nxt != self.snd_una || self.c_wnd == 0 || self.write_wait.armed)
    }

    /// The window we advertised is low: the socket's buffer must tell us
    /// when it drains. The kernel wakes a writer only once its queue is
    /// below two thirds of the buffer, and only a writer that found it full
    /// (SOCK_NOSPACE, which re-arming EPOLLOUT on a full socket sets; the
    /// buffer's autotuning also waits for that flag).
    fn window_is_low(&self) -> bool {
        self.to_host == ToHost::Open && self.last_window < self.last_sndbuf / 3
    }
}

/// The socket's free send-buffer space and its size: our receive window
/// toward the container is the free space, so the container never sends
/// more than the host socket can take.
fn socket_window(io: &mut dyn HostIo, fd: RawFd) -> (u32, u32) {
    let (buf, queued) = io.send_buffer(fd);
    // The kernel counts buffer overhead against the limit as well (a few
    // per cent for large writes): keep a margin so a write of a full window
    // is taken whole.
    let free = buf.saturating_sub(queued) / 16 * 15;
    let clamp = |v: usize| v.min(u32::MAX as usize) as u32;
    (clamp(free), clamp(buf))
}

/// Puts the pseudo-header sum in the checksum field of the TCP header at
/// the start of `tcp` (the port, or the offload fallback, completes it).
fn set_pseudo_checksum(tcp: &mut [u8], pseudo: u32) {
    if let Ok(mut t) = TcpPacket::new_checked(tcp) {
        t.set_checksum(checksum::fold(pseudo));
    }
}

/// Builds a segment to the container whose payload (if any) is already in
/// `tx` after the headers (`Inside::l4_offset` + 20), and emits it.
#[allow(clippy::too_many_arguments)]
fn emit_segment(
    tx: &mut FrameBuf,
    ep: &Inside,
    key: &FlowKey,
    seq: u32,
    ack: u32,
    fl: u8,
    window: u16,
    payload_len: usize,
    mss: u16,
    emit: &mut dyn Emit,
) {
    let remote = key.outside.ip();
    let l4_len = tcpw::MIN_HEADER_LEN + payload_len;
    let off = emit_ip_to(tx, ep, remote, protocol::TCP, l4_len);
    let buf = tx.read_space();
    tcpw::emit_header(
        &mut buf[off..],
        key.outside.port(),
        key.inside.port(),
        seq,
        ack,
        fl,
        window,
    );
    let pseudo = pseudo_header(remote, ep.ip, protocol::TCP, l4_len);
    set_pseudo_checksum(&mut buf[off..], pseudo);
    // finish_frame makes the kind TCPV6 for an IPv6 frame.
    let gso = (payload_len > mss as usize).then_some(Gso {
        kind: gso::TCPV4,
        size: mss,
        hdr_len: (off + tcpw::MIN_HEADER_LEN) as u16,
    });
    finish_frame(tx, off + l4_len, tcpw::CHECKSUM_OFFSET as u16, gso);
    emit.emit(ep.port, tx);
}

/// A RST to the container for a synchronized connection.
pub fn send_reset(c: &TcpConn, key: &FlowKey, ep: &Inside, tx: &mut FrameBuf, emit: &mut dyn Emit) {
    emit_segment(
        tx,
        ep,
        key,
        c.snd_nxt,
        c.rcv_nxt,
        flags::RST | flags::ACK,
        0,
        0,
        c.c_mss,
        emit,
    );
}

/// A RST answering a segment that belongs to no connection (RFC 9293
/// 3.10.7.1), e.g. a refused connect or a flow over its limit.
fn reset_for(seg: &Seg<'_>, key: &FlowKey, ep: &Inside, tx: &mut FrameBuf, emit: &mut dyn Emit) {
    if seg.has(flags::RST) {
        return;
    }
    let seg_len =
        seg.payload.len() as u32 + u32::from(seg.has(flags::SYN)) + u32::from(seg.has(flags::FIN));
    if seg.has(flags::ACK) {
        emit_segment(tx, ep, key, seg.ack, 0, flags::RST, 0, 0, 536, emit);
    } else {
        emit_segment(
            tx,
            ep,
            key,
            0,
            seg.seq.wrapping_add(seg_len),
            flags::RST | flags::ACK,
            0,
            0,
            536,
            emit,
        );
    }
}

fn window_field(c: &mut TcpConn, io: &mut dyn HostIo, fd: RawFd) -> u16 {
    let (free, size) = if c.to_host == ToHost::Shut {
        (0, 0)
    } else {
        socket_window(io, fd)
    };
    c.last_window = free;
    c.last_sndbuf = size;
    (free >> c.our_wscale).min(u16::MAX as u32) as u16
}

/// Arms or disarms EPOLLOUT on the flow's socket as its window requires.
fn arm_write(c: &mut TcpConn, want: bool, io: &mut dyn HostIo, fd: RawFd, token: PollToken) {
    // Re-arming while still low is what sets SOCK_NOSPACE again after a
    // wake-up cleared it, so it is done even when `want` did not change.
    if want || want != c.write_wait.armed {
        c.write_wait.armed = want;
        let interest = if want {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        io.reregister(fd, token, interest);
    }
}

fn send_ack(
    c: &mut TcpConn,
    io: &mut dyn HostIo,
    fd: RawFd,
    key: &FlowKey,
    ep: &Inside,
    tx: &mut FrameBuf,
    emit: &mut dyn Emit,
) {
    let w = window_field(c, io, fd);
    emit_segment(
        tx,
        ep,
        key,
        c.snd_nxt,
        c.rcv_nxt,
        flags::ACK,
        w,
        0,
        c.c_mss,
        emit,
    );
}

/// Puts a flow on the NAT's list for the next flush, once; false if the
/// list (sized for the whole table) has no room, and the work must be done
/// at once.
fn queue_for_flush(pending: &mut Vec<FlowId>, c: &mut TcpConn, id: FlowId) -> bool {
    if !c.deferred.queued {
        if pending.len() == pending.capacity() {
            return false;
        }
        c.deferred.queued = true;
        pending.push(id);
    }
    true
}

/// EPOLLOUT after an acknowledgement: armed while the window is low.
fn arm_after_ack(c: &mut TcpConn, io: &mut dyn HostIo, fd: RawFd, token: PollToken) {
    let low = c.to_host == ToHost::Open && c.window_is_low();
    if low != c.write_wait.armed || low {
        arm_write(c, low, io, fd, token);
    }
}

fn send_syn_ack(c: &TcpConn, key: &FlowKey, ep: &Inside, tx: &mut FrameBuf, emit: &mut dyn Emit) {
    send_syn(c, key, ep, tx, emit, true);
}

/// A SYN (or SYN-ACK) with our MSS and, when scaling is on, window scale.
fn send_syn(
    c: &TcpConn,
    key: &FlowKey,
    ep: &Inside,
    tx: &mut FrameBuf,
    emit: &mut dyn Emit,
    ack: bool,
) {
    let remote = key.outside.ip();
    // The MTU less the IP and TCP headers (20 more in IPv6).
    let ip_tcp = (ep.l4_offset() - crate::wire::ethernet::HEADER_LEN + tcpw::MIN_HEADER_LEN) as u32;
    let our_mss = (ep.mtu.saturating_sub(ip_tcp)).min(u16::MAX as u32) as u16;
    let mut opts = [0u8; 8];
    let opt_len = tcpw::emit_syn_options(
        &mut opts,
        our_mss,
        (c.our_wscale > 0).then_some(c.our_wscale),
    );
    let l4_len = tcpw::MIN_HEADER_LEN + opt_len;
    let off = emit_ip_to(tx, ep, remote, protocol::TCP, l4_len);
    let buf = tx.read_space();
    let (fl, ack_no) = if ack {
        (flags::SYN | flags::ACK, c.rcv_nxt)
    } else {
        (flags::SYN, 0)
    };
    tcpw::emit_header(
        &mut buf[off..],
        key.outside.port(),
        key.inside.port(),
        c.isn,
        ack_no,
        fl,
        u16::MAX,
    );
    let opts_at = off + tcpw::MIN_HEADER_LEN;
    buf[opts_at..opts_at + opt_len].copy_from_slice(&opts[..opt_len]);
    tcpw::set_header_len(&mut buf[off..], l4_len);
    let pseudo = pseudo_header(remote, ep.ip, protocol::TCP, l4_len);
    set_pseudo_checksum(&mut buf[off..], pseudo);
    finish_frame(tx, off + l4_len, tcpw::CHECKSUM_OFFSET as u16, None);
    emit.emit(ep.port, tx);
}

/// Discards `n` acknowledged bytes from the socket's receive buffer.
fn discard(io: &mut dyn HostIo, fd: RawFd, mut n: usize, tx: &mut FrameBuf) -> io::Result<()> {
    while n > 0 {
        // With MSG_TRUNC the kernel drops the bytes without copying them;
        // the buffer only bounds the request.
        let space = tx.read_space();
        let want = n.min(space.len());
        let got = io.recv(fd, &mut space[..want], libc::MSG_TRUNC)?;
        if got == 0 {
            break;
        }
        n -= got.min(n);
    }
    Ok(())
}

/// Before a flow's socket is closed: acknowledged bytes still waiting for
/// the flush leave the receive buffer, or the close would reset the
/// connection (unread data) and lose what was just written to it.
pub(super) fn discard_before_close(
    c: &mut TcpConn,
    fd: RawFd,
    io: &mut dyn HostIo,
    tx: &mut FrameBuf,
) {
    let _ = discard(io, fd, std::mem::take(&mut c.deferred.discard) as usize, tx);
}

/// Rewinds to the first unacknowledged byte: the next send starts there.
/// Acknowledged bytes still waiting for the flush go first, so the peek
/// restarts at the first unacknowledged one.
fn rewind(c: &mut TcpConn, io: &mut dyn HostIo, fd: RawFd, tx: &mut FrameBuf) -> io::Result<()> {
    discard(io, fd, std::mem::take(&mut c.deferred.discard) as usize, tx)?;
    c.snd_nxt = c.snd_una;
    c.host_drained = false;
    if c.to_container == ToContainer::FinSent {
        // The FIN in flight is taken back with the data: sent again after.
        c.to_container = ToContainer::Eof;
    }
    if c.peek_off {
        io.set_peek_off(fd, 0);
    }
    Ok(())
}

/// Sends what the host has and the container's window allows.
#[allow(clippy::too_many_arguments)]
fn send_host_data(
    c: &mut TcpConn,
    f_bytes_in: &mut u64,
    io: &mut dyn HostIo,
    fd: RawFd,
    key: &FlowKey,
    ep: &Inside,
    tx: &mut FrameBuf,
    emit: &mut dyn Emit,
) -> Next {
    if c.phase != Phase::Established || c.to_container.fin_sent() {
        return Next::Keep;
    }
    loop {
        let in_flight = c.snd_nxt.wrapping_sub(c.snd_una);
        if !c.peek_off && in_flight > 0 {
            break;
        }
        if c.c_wnd <= in_flight {
            break;
        }
        let max = ((c.c_wnd - in_flight) as usize).min(MAX_SEG_PAYLOAD);
        let at = ep.l4_offset() + tcpw::MIN_HEADER_LEN;
        let space = &mut tx.read_space()[at..at + max];
        match io.recv(fd, space, libc::MSG_PEEK) {
            Ok(0) => {
                let w = window_field(c, io, fd);
                emit_segment(
                    tx,
                    ep,
                    key,
                    c.snd_nxt,
                    c.rcv_nxt,
                    flags::FIN | flags::ACK,
                    w,
                    0,
                    c.c_mss,
                    emit,
                );
                c.snd_nxt = c.snd_nxt.wrapping_add(1);
                c.to_container = ToContainer::FinSent;
                break;
            }
            Ok(n) => {
                let w = window_field(c, io, fd);
                // This segment carries the acknowledgement owed, if any; the
                // flush only checks the window then.
                c.deferred.ack_carried = c.deferred.ack;
                emit_segment(
                    tx,
                    ep,
                    key,
                    c.snd_nxt,
                    c.rcv_nxt,
                    flags::ACK | flags::PSH,
                    w,
                    n,
                    c.c_mss,
                    emit,
                );
                c.snd_nxt = c.snd_nxt.wrapping_add(n as u32);
                *f_bytes_in += n as u64;
                if n < max {
                    // The socket is drained; the next readable event brings
                    // more. Not marked drained: an EOF that came with this
                    // data raises no new event, so the next peek (after the
                    // container's ACK) must still look for it.
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                c.host_drained = true;
                break;
            }
            Err(_) => return Next::Abort,
        }
    }
    Next::Keep
}

impl Nat {
    /// Opens a published port's connection toward the container.
    /// A published port's IPv6 client whose SYN the container refused: the
    /// same host connection, opened again toward the container's IPv4 end
    /// with the client shown as the gateway (what an IPv4-only listener
    /// can answer), under a new key; the client never sees the refusal.
    fn retry_over_v4(&mut self, id: FlowId, now: Time, emit: &mut dyn Emit) {
        let Some((old, mut flow)) = self.table.remove(id) else {
            return;
        };
        self.unbusy(&mut flow);
        self.io.deregister(flow.sock.as_raw_fd());
        let Some((ip, gateway_ip)) = flow.fallback_v4.take() else {
            return;
        };
        let ep4 = Inside {
            ip: ip.into(),
            gateway_ip: gateway_ip.into(),
            ..flow.ep
        };
        let mut key = FlowKey {
            proto: Proto::Tcp,
            inside: SocketAddr::new(ep4.ip, old.inside.port()),
            outside: SocketAddr::new(ep4.gateway_ip, old.outside.port()),
        };
        if !super::forward::free_alias_port(&self.table, &mut key) {
            self.io.set_linger_zero(flow.sock.as_raw_fd());
            return;
        }
        flow.ep = ep4;
        let isn = self.next_isn(&key, now);
        let peek_off = self.io.set_peek_off(flow.sock.as_raw_fd(), 0);
        flow.state = FlowState::Tcp(TcpConn::new_inbound(isn, now, peek_off));
        if let Ok(fid) = self.add_flow(key, flow, mio::Interest::READABLE, now, emit) {
            self.send_syn_to_container(fid, &key, emit);
            self.mark_busy(fid);
        }
    }

    pub(super) fn send_syn_to_container(&mut self, id: FlowId, key: &FlowKey, emit: &mut dyn Emit) {
        if let Some(Flow {
            ep,
            state: FlowState::Tcp(c),
            ..
        }) = self.table.get(id)
        {
            send_syn(c, key, ep, &mut self.tx, emit, false);
        }
    }

    /// A TCP segment from a container.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn tcp_outbound(
        &mut self,
        ep: &Inside,
        ip: &Routed<'_>,
        l4: &[u8],
        vnet: &VnetHdr,
        budget: &mut SourceBudget,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Option<DropReason> {
        let Some(seg) = Seg::parse(l4) else {
            self.counters.tcp_bad_segments += 1;
            return Some(DropReason::MalformedPacket);
        };
        if !vnet.needs_csum() {
            let pseudo = pseudo_header(ip.src, ip.dst, protocol::TCP, l4.len());
            if checksum::fold(checksum::sum(pseudo, l4)) != 0xffff {
                self.counters.tcp_bad_segments += 1;
                return Some(DropReason::BadChecksum);
            }
        }
        let f = seg.flags;
        let impossible = (f & flags::SYN != 0 && f & (flags::FIN | flags::RST) != 0)
            || f & (flags::SYN | flags::ACK | flags::RST) == 0;
        if impossible {
            self.counters.tcp_bad_segments += 1;
            return Some(DropReason::BadSegment);
        }
        let key = FlowKey {
            proto: Proto::Tcp,
            inside: SocketAddr::new(ip.src, seg.src_port),
            outside: SocketAddr::new(ip.dst, seg.dst_port),
        };
        if let Some(id) = self.table.lookup(&key) {
            // A new SYN on a tuple whose old connection is still here: the
            // container reused the port; the old flow goes.
            let fresh_syn = seg.has(flags::SYN)
                && !seg.has(flags::ACK)
                && matches!(self.table.get(id), Some(Flow { state: FlowState::Tcp(c), .. }) if c.c_isn != seg.seq);
            if !fresh_syn {
                self.table.touch(id, now);
                match self.tcp_segment(id, &key, &seg, now, emit) {
                    Next::Keep => {}
                    Next::RetryV4 => self.retry_over_v4(id, now, emit),
                    next => self.remove_flow(id, next, emit),
                }
                return None;
            }
            self.remove_flow(id, Next::Abort, emit);
        }
        if seg.has(flags::RST) {
            return Some(DropReason::NoFlow);
        }
        if !seg.has(flags::SYN) || seg.has(flags::ACK) {
            reset_for(&seg, &key, ep, &mut self.tx, emit);
            return Some(DropReason::NoFlow);
        }
        // A new connection costs a socket and a connect on this thread:
        // past the container's budget the SYN is dropped, as a full SYN
        // queue drops it (its stack retries), before anything is made or
        // answered.
        if !budget.new_flows.allow(now) {
            self.counters.flows_refused_rate += 1;
            return Some(DropReason::FlowRateLimited);
        }
        let dport = key.outside.port();
        let service = match self.target_for(ep, ip.dst, dport, true) {
            Target::Connect(t) => Err(t),
            Target::Service => Ok(self.service(dport).cloned()),
            Target::Refuse(Refusal::LoopbackOff) if ep.loopback_unreachable => {
                let mut quote = [0u8; 8];
                quote[0..2].copy_from_slice(&seg.src_port.to_be_bytes());
                quote[2..4].copy_from_slice(&seg.dst_port.to_be_bytes());
                quote[4..8].copy_from_slice(&seg.seq.to_be_bytes());
                self.icmp_error_to(
                    budget,
                    now,
                    ep,
                    &key,
                    crate::wire::ipv4::protocol::TCP,
                    crate::wire::icmpv4::unreachable::NET,
                    &quote,
                    emit,
                );
                return Some(Refusal::LoopbackOff.reason());
            }
            Target::Refuse(r) => {
                // The destination says no: a refused connect, at once.
                reset_for(&seg, &key, ep, &mut self.tx, emit);
                return Some(r.reason());
            }
        };
        if self.table.flows_of(key.inside.ip()) >= self.cfg.max_flows_per_container {
            self.counters.flows_refused_limit += 1;
            reset_for(&seg, &key, ep, &mut self.tx, emit);
            return Some(DropReason::FlowLimit);
        }
        let target = match &service {
            Err(t) => *t,
            // A service of the gateway's address (the DNS-over-TCP server),
            // on the host's loopback; started on first use.
            Ok(s) => match s.as_deref().and_then(|s| self.io.service_addr(s)) {
                Some(t) => t,
                None => {
                    reset_for(&seg, &key, ep, &mut self.tx, emit);
                    return Some(DropReason::NotServed);
                }
            },
        };
        let sock = match self.io.tcp_connect(target) {
            Ok(s) => s,
            Err(e) => {
                self.counters.tcp_connect_failed += 1;
                self.connect_failed(&key, ep, seg.seq, &e, emit);
                return None;
            }
        };
        // A service hears who the connection speaks for once the flow
        // exists (still before the container can have sent on it).
        let announce = match &service {
            Ok(Some(s)) => self
                .io
                .local_addr(sock.as_raw_fd())
                .ok()
                .map(|local| (s.clone(), local.port())),
            _ => None,
        };
        let peek_off = self.io.set_peek_off(sock.as_raw_fd(), 0);
        let isn = self.next_isn(&key, now);
        let conn = TcpConn::new(&seg, isn, now, peek_off);
        let flow = Flow::new(*ep, sock, target, now, FlowState::Tcp(conn));
        match self.add_flow(
            key,
            flow,
            Interest::READABLE | Interest::WRITABLE,
            now,
            emit,
        ) {
            Ok(_) => {
                if let Some((s, local_port)) = announce {
                    s.connected(local_port, ep);
                }
                None
            }
            Err(r) => {
                reset_for(&seg, &key, ep, &mut self.tx, emit);
                Some(r)
            }
        }
    }

    /// Tells the container its connect failed: RST for refused, ICMP
    /// unreachable for unreachable.
    fn connect_failed(
        &mut self,
        key: &FlowKey,
        ep: &Inside,
        c_isn: u32,
        e: &io::Error,
        emit: &mut dyn Emit,
    ) {
        use crate::wire::icmpv4::unreachable;
        let code = match e.raw_os_error() {
            Some(libc::ECONNREFUSED) | None => None,
            Some(libc::ENETUNREACH) => Some(unreachable::NET),
            Some(libc::EHOSTUNREACH) | Some(libc::ETIMEDOUT) | Some(libc::EHOSTDOWN) => {
                Some(unreachable::HOST)
            }
            Some(libc::EACCES) | Some(libc::EPERM) => Some(unreachable::ADMIN_PROHIBITED),
            Some(_) => None,
        };
        match code {
            Some(code) => {
                let l4 = tcpw::quote(key.inside.port(), key.outside.port(), c_isn);
                super::icmp::send_unreachable(
                    &mut self.tx,
                    ep,
                    key,
                    protocol::TCP,
                    code,
                    &l4,
                    emit,
                );
            }
            None => {
                let seg = Seg {
                    src_port: key.inside.port(),
                    dst_port: key.outside.port(),
                    seq: c_isn,
                    ack: 0,
                    flags: flags::SYN,
                    window: 0,
                    payload: &[],
                    mss: None,
                    wscale: None,
                };
                reset_for(&seg, key, ep, &mut self.tx, emit);
                self.counters.tcp_resets_to_container += 1;
            }
        }
    }

    /// A segment of a known connection.
    fn tcp_segment(
        &mut self,
        id: FlowId,
        key: &FlowKey,
        seg: &Seg<'_>,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Next {
        let Some(flow) = self.table.get_mut(id) else {
            return Next::Keep;
        };
        let fd = flow.sock.as_raw_fd();
        let ep = flow.ep;
        let FlowState::Tcp(c) = &mut flow.state else {
            return Next::Keep;
        };
        let tx = &mut self.tx;
        let io = &mut *self.io;
        if seg.has(flags::RST) {
            // RFC 5961 3.2: only a RST at exactly the expected sequence
            // number resets (others could be blind injection); before the
            // handshake, one that acknowledges our SYN.
            let answers_syn = c.phase == Phase::SynSent
                && seg.has(flags::ACK)
                && seg.ack == c.isn.wrapping_add(1);
            if answers_syn && flow.fallback_v4.is_some() {
                return Next::RetryV4;
            }
            if c.phase == Phase::Connecting
                || answers_syn
                || (c.is_synchronized() && seg.seq == c.rcv_nxt)
            {
                io.set_linger_zero(fd);
                return Next::Close;
            }
            return Next::Keep;
        }
        match c.phase {
            Phase::Connecting => return Next::Keep,
            Phase::SynSent => {
                // The container's answer to a published port's SYN.
                if !(seg.has(flags::SYN) && seg.has(flags::ACK)) || seg.ack != c.isn.wrapping_add(1)
                {
                    self.counters.tcp_bad_segments += 1;
                    // RFC 9293 3.10.7.3: an ACK of something else is
                    // answered with a RST at its acknowledgement number.
                    // It is what the container's TIME_WAIT of an earlier
                    // connection on this 4-tuple answers our SYN with (a
                    // loopback client reuses its ports within seconds,
                    // tcp_tw_reuse); the RST ends that TIME_WAIT, and the
                    // SYN goes again now, once, not a second later.
                    if seg.has(flags::ACK) {
                        reset_for(seg, key, &ep, tx, emit);
                        if c.retries == 0 {
                            c.retries = 1;
                            send_syn(c, key, &ep, tx, emit, false);
                        }
                    }
                    return Next::Keep;
                }
                c.c_isn = seg.seq;
                c.rcv_nxt = seg.seq.wrapping_add(1);
                c.c_mss = seg.mss.unwrap_or(536).max(64);
                match seg.wscale {
                    Some(w) => c.c_wscale = w,
                    None => {
                        c.c_wscale = 0;
                        c.our_wscale = 0;
                    }
                }
                // A SYN-ACK's window is never scaled.
                c.c_wnd = seg.window as u32;
                c.snd_una = seg.ack;
                c.phase = Phase::Established;
                c.last_progress = now;
                c.rto = RTO_MIN;
                c.retries = 0;
                send_ack(c, io, fd, key, &ep, tx, emit);
                return send_host_data(c, &mut flow.bytes_in, io, fd, key, &ep, tx, emit);
            }
            Phase::SynAckSent => {
                if seg.has(flags::SYN) {
                    if seg.seq == c.c_isn {
                        send_syn_ack(c, key, &ep, tx, emit);
                    }
                    return Next::Keep;
                }
                if !seg.has(flags::ACK) || seg.ack != c.isn.wrapping_add(1) {
                    self.counters.tcp_bad_segments += 1;
                    return Next::Keep;
                }
                c.phase = Phase::Established;
                c.snd_una = seg.ack;
                c.last_progress = now;
            }
            Phase::Established => {}
        }
        // Acknowledgements of what we sent.
        if seg.has(flags::ACK) {
            if seq_gt(seg.ack, c.snd_nxt) {
                // Acknowledges data never sent: out of window.
                self.counters.tcp_bad_segments += 1;
                send_ack(c, io, fd, key, &ep, tx, emit);
                return Next::Keep;
            }
            let new_wnd = (seg.window as u32) << c.c_wscale;
            if seq_gt(seg.ack, c.snd_una) {
                let acked = seg.ack.wrapping_sub(c.snd_una);
                let data = acked.min(c.in_flight_data());
                if c.peek_off && queue_for_flush(&mut self.pending, c, id) {
                    // Peeks go on from the peek offset; the bytes go at the
                    // flush, with those of the batch's other ACKs.
                    c.deferred.discard += data;
                } else if discard(io, fd, data as usize, tx).is_err() {
                    return Next::Abort;
                }
                if c.to_container == ToContainer::FinSent && seg.ack == c.snd_nxt {
                    c.to_container = ToContainer::FinAcked;
                }
                c.snd_una = seg.ack;
                c.last_progress = now;
                c.dup_acks = 0;
                c.rto = RTO_MIN;
                c.retries = 0;
            } else if c.snd_nxt == c.snd_una {
                // Nothing in flight: an answer to a window probe (or any
                // segment of a live peer). A zero window held for minutes
                // is a slow reader, not a dead one (RFC 9293 3.8.6.1: the
                // sender keeps probing as long as the receiver answers).
                c.retries = 0;
            } else if seg.ack == c.snd_una
                && seg.payload.is_empty()
                && !seg.has(flags::FIN)
                && new_wnd == c.c_wnd
            {
                c.dup_acks += 1;
                if c.dup_acks == 3 {
                    if rewind(c, io, fd, tx).is_err() {
                        return Next::Abort;
                    }
                    self.counters.tcp_retransmits += 1;
                }
            }
            c.c_wnd = new_wnd;
        }
        // Data from the container.
        let mut need_ack = false;
        let mut all_taken = true;
        if !seg.payload.is_empty() && c.to_host == ToHost::Open {
            let len = seg.payload.len() as u32;
            if seq_gt(seg.seq, c.rcv_nxt) {
                need_ack = true; // a gap: ask for what is missing
                all_taken = false;
            } else {
                let skip = c.rcv_nxt.wrapping_sub(seg.seq);
                if skip < len {
                    let data = &seg.payload[skip as usize..];
                    match io.send(fd, data) {
                        Ok(n) => {
                            c.rcv_nxt = c.rcv_nxt.wrapping_add(n as u32);
                            flow.bytes_out += n as u64;
                            all_taken = n == data.len();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => all_taken = false,
                        Err(_) => return Next::Abort,
                    }
                }
                need_ack = true;
            }
        }
        if !all_taken {
            c.write_wait.dropped = true;
        }
        if seg.has(flags::FIN) && all_taken {
            let fin_seq = seg.seq.wrapping_add(seg.payload.len() as u32);
            if c.to_host == ToHost::Open && fin_seq == c.rcv_nxt {
                c.to_host = ToHost::Shut;
                c.rcv_nxt = c.rcv_nxt.wrapping_add(1);
                io.shutdown_write(fd);
                need_ack = true;
            } else if c.to_host == ToHost::Shut && fin_seq.wrapping_add(1) == c.rcv_nxt {
                need_ack = true; // a retransmitted FIN
            }
        }
        let token = PollToken::Flow(id.0);
        // In-order data taken whole (a gap leaves `all_taken` false) is
        // acknowledged at the flush, once for the whole batch; anything else
        // (a gap, a FIN, a full socket) at once.
        let defer = need_ack && all_taken && !seg.has(flags::FIN);
        if defer {
            if queue_for_flush(&mut self.pending, c, id) {
                c.deferred.ack = true;
            } else {
                send_ack(c, io, fd, key, &ep, tx, emit);
                arm_after_ack(c, io, fd, token);
            }
        } else {
            if need_ack {
                c.deferred.ack = false;
                send_ack(c, io, fd, key, &ep, tx, emit);
            }
            let low = c.to_host == ToHost::Open && (!all_taken || c.window_is_low());
            if low != c.write_wait.armed || (low && need_ack) {
                arm_write(c, low, io, fd, token);
            }
        }
        if !c.host_drained {
            let next = send_host_data(c, &mut flow.bytes_in, io, fd, key, &ep, tx, emit);
            if next != Next::Keep {
                return next;
            }
        }
        let done = c.closed_both_ways();
        let busy = c.busy();
        if done {
            return Next::Close;
        }
        if busy {
            self.mark_busy(id);
        }
        Next::Keep
    }

    /// Does what was deferred while a batch of frames was handled: discards
    /// what the container acknowledged, then acknowledges what it sent
    /// (one each per flow, with the window as it is now).
    pub(super) fn flush_tcp(&mut self, emit: &mut dyn Emit) {
        let mut pending = std::mem::take(&mut self.pending);
        for id in pending.drain(..) {
            let Some(key) = self.table.key(id).copied() else {
                continue;
            };
            let Some(flow) = self.table.get_mut(id) else {
                continue;
            };
            let fd = flow.sock.as_raw_fd();
            let ep = flow.ep;
            let FlowState::Tcp(c) = &mut flow.state else {
                continue;
            };
            if !std::mem::take(&mut c.deferred.queued) {
                // A flow that took this slot after the queued one left.
                continue;
            }
            let io = &mut *self.io;
            let n = std::mem::take(&mut c.deferred.discard) as usize;
            if discard(io, fd, n, &mut self.tx).is_err() {
                self.remove_flow(id, Next::Abort, emit);
                continue;
            }
            let carried = std::mem::take(&mut c.deferred.ack_carried);
            if std::mem::take(&mut c.deferred.ack) {
                if !carried {
                    send_ack(c, io, fd, &key, &ep, &mut self.tx, emit);
                }
                let token = PollToken::Flow(id.0);
                arm_after_ack(c, io, fd, token);
            }
        }
        self.pending = pending;
    }

    /// A poll event on a connection's socket.
    pub(super) fn tcp_event(
        &mut self,
        id: FlowId,
        key: &FlowKey,
        readable: bool,
        writable: bool,
        now: Time,
        emit: &mut dyn Emit,
    ) -> Next {
        let Some(flow) = self.table.get_mut(id) else {
            return Next::Keep;
        };
        let fd = flow.sock.as_raw_fd();
        let ep = flow.ep;
        let FlowState::Tcp(c) = &mut flow.state else {
            return Next::Keep;
        };
        let token = PollToken::Flow(id.0);
        if c.phase == Phase::SynSent {
            // A published port's client that left (EOF or reset) before
            // the container answered our SYN: nobody will use the flow, and
            // it would hold a slot of the container's flow bound until the
            // SYN's retries ran out (~30 s) — a flood of clients that give
            // up held hundreds that way. Data it sent waits in the kernel.
            if readable {
                let mut probe = [0u8; 1];
                match self.io.recv(fd, &mut probe, libc::MSG_PEEK) {
                    Ok(0) => return Next::Abort,
                    // The peek moved SO_PEEK_OFF on: nothing is in flight
                    // yet, so the container's data starts at 0 again.
                    Ok(_) if c.peek_off => {
                        self.io.set_peek_off(fd, 0);
                    }
                    Err(e) if e.kind() != io::ErrorKind::WouldBlock => return Next::Abort,
                    _ => {}
                }
            }
            return Next::Keep;
        }
        if c.phase == Phase::Connecting {
            if !writable && !readable {
                return Next::Keep;
            }
            match self.io.take_error(fd) {
                Ok(None) if writable => {
                    c.phase = Phase::SynAckSent;
                    c.last_progress = now;
                    send_syn_ack(c, key, &ep, &mut self.tx, emit);
                    self.io.reregister(fd, token, Interest::READABLE);
                    Next::Keep
                }
                Ok(None) => Next::Keep,
                Ok(Some(e)) | Err(e) => {
                    let isn = c.c_isn;
                    self.counters.tcp_connect_failed += 1;
                    self.connect_failed(key, &ep, isn, &e, emit);
                    Next::Close
                }
            }
        } else {
            let tx = &mut self.tx;
            let io = &mut *self.io;
            if writable && c.write_wait.armed {
                // Buffer space came back: tell the container (three times
                // if it has data to send again).
                send_ack(c, io, fd, key, &ep, tx, emit);
                if std::mem::take(&mut c.write_wait.dropped) {
                    send_ack(c, io, fd, key, &ep, tx, emit);
                    send_ack(c, io, fd, key, &ep, tx, emit);
                }
                let low = c.window_is_low();
                arm_write(c, low, io, fd, token);
            }
            let mut next = Next::Keep;
            if readable {
                c.host_drained = false;
                next = send_host_data(c, &mut flow.bytes_in, io, fd, key, &ep, tx, emit);
            }
            let busy = c.busy();
            if next == Next::Keep && c.closed_both_ways() {
                next = Next::Close;
            }
            if next == Next::Keep {
                self.table.touch(id, now);
                if busy {
                    self.mark_busy(id);
                }
            }
            next
        }
    }

    /// The retransmission / persist timer of a connection. `None` when it
    /// has nothing in flight any more.
    pub(super) fn tcp_timer(&mut self, id: FlowId, now: Time, emit: &mut dyn Emit) -> Option<Next> {
        let key = *self.table.key(id)?;
        let flow = self.table.get_mut(id)?;
        let fd = flow.sock.as_raw_fd();
        let ep = flow.ep;
        let FlowState::Tcp(c) = &mut flow.state else {
            return None;
        };
        if !c.busy() {
            return None;
        }
        let io = &mut *self.io;
        if c.write_wait.armed {
            // A safety net for the EPOLLOUT wake-up: if the buffer drained
            // without one, the container still hears of the new window.
            let before = c.last_window;
            let (free, _) = socket_window(io, fd);
            if free > before.saturating_mul(2).max(before + 65536) {
                send_ack(c, io, fd, &key, &ep, &mut self.tx, emit);
                if !c.window_is_low() {
                    let token = PollToken::Flow(id.0);
                    arm_write(c, false, io, fd, token);
                }
            }
        }
        if c.snd_nxt == c.snd_una && c.c_wnd != 0 {
            return Some(Next::Keep);
        }
        if now.saturating_sub(c.last_progress) < c.rto {
            return Some(Next::Keep);
        }
        c.retries += 1;
        if c.phase == Phase::SynSent {
            // The container does not answer the SYN: give up after ~30 s,
            // as a host's own connect would.
            if c.retries > 5 {
                io.set_linger_zero(fd);
                return Some(Next::Close);
            }
            c.rto *= 2;
            c.last_progress = now;
            send_syn(c, &key, &ep, &mut self.tx, emit, false);
            return Some(Next::Keep);
        }
        if c.retries > MAX_RETRIES {
            return Some(Next::Abort);
        }
        c.rto = (c.rto * 2).min(RTO_MAX);
        c.last_progress = now;
        let tx = &mut self.tx;
        if c.snd_nxt == c.snd_una {
            // Zero window: probe with an old sequence number, which the
            // container answers with an ACK carrying its current window.
            let w = window_field(c, io, fd);
            emit_segment(
                tx,
                &ep,
                &key,
                c.snd_una.wrapping_sub(1),
                c.rcv_nxt,
                flags::ACK,
                w,
                0,
                c.c_mss,
                emit,
            );
            return Some(Next::Keep);
        }
        self.counters.tcp_retransmits += 1;
        if rewind(c, io, fd, tx).is_err() {
            return Some(Next::Abort);
        }
        let next = send_host_data(c, &mut flow.bytes_in, io, fd, &key, &ep, tx, emit);
        Some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opts: &[u8]) -> Vec<u8> {
        let mut h = vec![0u8; 20];
        tcpw::emit_header(&mut h, 1000, 80, 7, 0, flags::SYN, 29200);
        h.extend_from_slice(opts);
        while h.len() % 4 != 0 {
            h.push(0);
        }
        h[12] = ((h.len() / 4) as u8) << 4;
        h
    }

    #[test]
    fn parses_mss_and_window_scale() {
        // MSS 1460, SACK permitted, NOP, window scale 7.
        let h = header(&[2, 4, 0x05, 0xb4, 4, 2, 1, 3, 3, 7]);
        let s = Seg::parse(&h).unwrap();
        assert_eq!(s.mss, Some(1460));
        assert_eq!(s.wscale, Some(7));
        assert_eq!(s.window, 29200);
        assert!(s.payload.is_empty());
        // Window scale is capped at 14 (RFC 7323).
        let s2 = header(&[3, 3, 200]);
        assert_eq!(Seg::parse(&s2).unwrap().wscale, Some(14));
    }

    #[test]
    fn malformed_options_are_refused() {
        assert!(Seg::parse(&header(&[2, 0])).is_none(), "length 0");
        assert!(Seg::parse(&header(&[2, 1])).is_none(), "length 1");
        assert!(
            Seg::parse(&header(&[2, 40, 0, 0])).is_none(),
            "past the header"
        );
        assert!(Seg::parse(&[0u8; 19]).is_none());
        // An end-of-options byte stops parsing.
        assert_eq!(Seg::parse(&header(&[0, 2, 4, 5, 5])).unwrap().mss, None);
    }

    #[test]
    fn sequence_comparisons_wrap() {
        assert!(seq_lt(u32::MAX, 0));
        assert!(seq_gt(0, u32::MAX));
        assert!(seq_lt(5, 6) && !seq_lt(6, 5));
    }
}
