//! A rig around one `Switch` with its NAT on, driven by hand: one container
//! endpoint on a recording memory port (nothing allocated per frame), a mio
//! poll whose registry the NAT registers its host sockets on, an injected
//! clock the test advances, and a tiny "container TCP" that builds the
//! container's segments and follows what the NAT sends back.
//!
//! Events are dispatched exactly as `dataplane::poll_loop` does (flow,
//! DNS and forward tokens); timers run only when the test calls
//! [`Rig::tick`], with the rig's virtual time. Every wait is bounded: a
//! deadline in real time, then a panic that says what was seen.
//!
//! Nothing on the rig's per-frame path allocates either (frames are built
//! in one preallocated `FrameBuf`, read back through the ring's closure and
//! parsed by etherparse's slicing), so `tests/no_alloc_nat.rs` can count
//! the NAT's allocations through it.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::{Duration, Instant};

use lanyard::dataplane::{Event, NetworkId, NetworkSpec, PortSpec, Switch};
use lanyard::frame::FrameBuf;
use lanyard::host::PollToken;
use lanyard::nat::NatConfig;
use lanyard::offload::Offloads;
use lanyard::port::{MemoryHandle, MemoryPort, PortId};
use lanyard::security::PortPolicy;
use lanyard::time::Time;
use lanyard::wire::checksum;
use lanyard::wire::ethernet::{emit_header, ethertype};
use lanyard::wire::ipv4::{protocol, Ipv4Repr};
use lanyard::wire::tcp::{self, flags};
use lanyard::wire::vnet::VnetHdr;
use lanyard::wire::MacAddr;

use super::frames::{gw_mac, mac_of, GW};

/// The container's address on the rig's network.
pub const CONTAINER: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);

/// How a rig is made.
#[derive(Debug, Clone)]
pub struct Opts {
    pub ip: Ipv4Addr,
    pub mtu: u32,
    pub allow_host_loopback: bool,
    pub nat: NatConfig,
    /// Where the embedded DNS forwards.
    pub dns_upstreams: Vec<std::net::SocketAddr>,
    /// Slots of the endpoint's recording ring.
    pub ring_slots: usize,
    /// What the endpoint takes (FULL: GSO super-frames arrive whole).
    pub offloads: Offloads,
    /// A DHCP event channel of this capacity (`Switch::set_events`).
    pub events: Option<usize>,
    /// Poll events taken per `pump`.
    pub poll_events: usize,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            ip: CONTAINER,
            mtu: 1500,
            allow_host_loopback: true,
            nat: NatConfig {
                max_flows: 4096,
                max_flows_per_container: 4096,
                ..NatConfig::default()
            },
            dns_upstreams: Vec::new(),
            ring_slots: 1024,
            offloads: Offloads::FULL,
            events: None,
            poll_events: 256,
        }
    }
}

/// One frame the NAT (or the gateway) sent the container, as parsed.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    pub proto: u8,
    pub eth_src: MacAddr,
    pub eth_dst: MacAddr,
    pub src_ip: Ipv4Addr,
    pub dst_ip: Ipv4Addr,
    /// Transport ports (0 for ICMP).
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: u8,
    pub window: u16,
    pub mss: Option<u16>,
    pub wscale: Option<u8>,
    /// Transport payload length.
    pub len: usize,
    /// The vnet header's segment size (0: not a super-frame).
    pub gso_size: u16,
    pub icmp_type: u8,
    pub icmp_code: u8,
    /// ICMP echo identifier and sequence number.
    pub icmp_ident: u16,
    pub icmp_seq: u16,
}

impl Seen {
    fn blank(vnet: &VnetHdr, eth_src: MacAddr, eth_dst: MacAddr) -> Seen {
        Seen {
            proto: 0,
            eth_src,
            eth_dst,
            src_ip: Ipv4Addr::UNSPECIFIED,
            dst_ip: Ipv4Addr::UNSPECIFIED,
            src_port: 0,
            dst_port: 0,
            seq: 0,
            ack: 0,
            flags: 0,
            window: 0,
            mss: None,
            wscale: None,
            len: 0,
            gso_size: if vnet.is_gso() { vnet.gso_size } else { 0 },
            icmp_type: 0,
            icmp_code: 0,
            icmp_ident: 0,
            icmp_seq: 0,
        }
    }

    pub fn is_tcp(&self) -> bool {
        self.proto == protocol::TCP
    }

    pub fn is_udp(&self) -> bool {
        self.proto == protocol::UDP
    }

    pub fn is_icmp(&self) -> bool {
        self.proto == protocol::ICMP
    }

    pub fn has(&self, f: u8) -> bool {
        self.flags & f != 0
    }
}

/// Parses one recorded frame: its summary and its transport payload.
/// `None` for anything that is not IPv4 TCP, UDP or ICMP.
pub fn parse<'a>(vnet: &VnetHdr, frame: &'a [u8]) -> Option<(Seen, &'a [u8])> {
    use etherparse::{NetSlice, SlicedPacket, TcpOptionElement, TransportSlice};
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let (eth_src, eth_dst) = match frame.get(..12) {
        Some(h) => (MacAddr::from_slice(&h[6..12]), MacAddr::from_slice(&h[..6])),
        None => return None,
    };
    let mut s = Seen::blank(vnet, eth_src, eth_dst);
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        return None;
    };
    s.src_ip = ip.header().source_addr();
    s.dst_ip = ip.header().destination_addr();
    s.proto = ip.header().protocol().0;
    let payload = match p.transport? {
        TransportSlice::Tcp(t) => {
            s.src_port = t.source_port();
            s.dst_port = t.destination_port();
            s.seq = t.sequence_number();
            s.ack = t.acknowledgment_number();
            s.window = t.window_size();
            let bits = [
                (t.fin(), flags::FIN),
                (t.syn(), flags::SYN),
                (t.rst(), flags::RST),
                (t.psh(), flags::PSH),
                (t.ack(), flags::ACK),
                (t.urg(), flags::URG),
                (t.ece(), flags::ECE),
                (t.cwr(), flags::CWR),
            ];
            s.flags = bits.iter().filter(|b| b.0).fold(0, |a, b| a | b.1);
            for o in t.options_iterator().flatten() {
                match o {
                    TcpOptionElement::MaximumSegmentSize(m) => s.mss = Some(m),
                    TcpOptionElement::WindowScale(w) => s.wscale = Some(w),
                    _ => {}
                }
            }
            t.payload()
        }
        TransportSlice::Udp(u) => {
            s.src_port = u.source_port();
            s.dst_port = u.destination_port();
            u.payload()
        }
        TransportSlice::Icmpv4(i) => {
            s.icmp_type = i.type_u8();
            s.icmp_code = i.code_u8();
            let b = i.bytes5to8();
            s.icmp_ident = u16::from_be_bytes([b[0], b[1]]);
            s.icmp_seq = u16::from_be_bytes([b[2], b[3]]);
            i.payload()
        }
        _ => return None,
    };
    s.len = payload.len();
    Some((s, payload))
}

/// A byte of the test data stream `seed` at `offset`: not periodic over
/// any length a test sends, so a byte out of place is a mismatch.
#[inline]
pub fn pattern(seed: u64, offset: u64) -> u8 {
    ((offset ^ seed)
        .wrapping_add(1)
        .wrapping_mul(0x9E37_79B9_7F4A_7C15)
        >> 56) as u8
}

/// Fills `buf` with stream `seed` from `offset`.
pub fn fill_pattern(seed: u64, offset: u64, buf: &mut [u8]) {
    for (i, b) in buf.iter_mut().enumerate() {
        *b = pattern(seed, offset + i as u64);
    }
}

/// Bytes of `buf` that are not stream `seed` from `offset`.
pub fn pattern_mismatches(seed: u64, offset: u64, buf: &[u8]) -> u64 {
    buf.iter()
        .enumerate()
        .filter(|(i, b)| **b != pattern(seed, offset + *i as u64))
        .count() as u64
}

#[inline]
pub fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

#[inline]
pub fn seq_gt(a: u32, b: u32) -> bool {
    seq_lt(b, a)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TcpState {
    Closed,
    /// Our SYN is out (egress).
    SynSent,
    /// The NAT's SYN came (a published port's client); our SYN-ACK is due.
    SynReceived,
    Established,
}

/// The container's end of one TCP connection: what it sent, what it
/// received (checked byte for byte against a pattern stream), and what the
/// NAT did (probes, super-frames, resets).
#[derive(Debug, Clone)]
pub struct CTcp {
    pub sport: u16,
    /// The remote as the container sees it.
    pub dst: SocketAddrV4,
    pub state: TcpState,
    pub iss: u32,
    pub snd_nxt: u32,
    /// The NAT acknowledged everything before this.
    pub snd_una: u32,
    pub irs: u32,
    pub rcv_nxt: u32,
    /// The window we advertise, in bytes (the field carries it shifted by
    /// `wscale` once scaling is in use; a SYN's is at most 65535).
    pub window: u32,
    /// The window scale we offer in our SYN (None: no option).
    pub wscale: Option<u8>,
    /// Scaling is in use (both sides sent the option).
    pub scaling: bool,
    pub mss: u16,
    /// The NAT's window (bytes) and MSS.
    pub peer_window: u32,
    pub peer_wscale: u8,
    pub peer_mss: u16,
    /// The right edge of the window we last advertised.
    pub edge: u32,
    /// Stream seeds: what we send, and what we expect to receive.
    pub tx_seed: u64,
    pub rx_seed: u64,
    /// In-order payload bytes received and checked.
    pub received: u64,
    pub mismatches: u64,
    pub frames: u64,
    pub data_frames: u64,
    pub gso_frames: u64,
    /// Zero-length segments at `rcv_nxt - 1`: the NAT's window probes.
    pub probes: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Payload that arrived beyond the window we advertised.
    pub beyond_window: u64,
    pub syn_acks: u64,
    pub syns: u64,
    pub fin_received: bool,
    pub rst_received: bool,
    pub fin_sent: bool,
    /// Something arrived that wants an acknowledgement.
    pub owe_ack: bool,
}

impl CTcp {
    /// A connection from the container's `sport` to `dst`.
    pub fn new(sport: u16, dst: SocketAddrV4) -> CTcp {
        let iss = 0x1000_0000u32.wrapping_add((sport as u32) << 12);
        CTcp {
            sport,
            dst,
            state: TcpState::Closed,
            iss,
            snd_nxt: iss,
            snd_una: iss,
            irs: 0,
            rcv_nxt: 0,
            window: 65535,
            wscale: None,
            scaling: false,
            mss: 1460,
            peer_window: 0,
            peer_wscale: 0,
            peer_mss: 536,
            edge: 0,
            tx_seed: 0x5eed_0000 + sport as u64,
            rx_seed: 0xfeed_0000 + sport as u64,
            received: 0,
            mismatches: 0,
            frames: 0,
            data_frames: 0,
            gso_frames: 0,
            probes: 0,
            duplicates: 0,
            out_of_order: 0,
            beyond_window: 0,
            syn_acks: 0,
            syns: 0,
            fin_received: false,
            rst_received: false,
            fin_sent: false,
            owe_ack: false,
        }
    }

    pub fn established(&self) -> bool {
        self.state == TcpState::Established
    }

    /// Payload bytes we sent (SYN and FIN aside).
    pub fn sent_bytes(&self) -> u64 {
        let all = self.snd_nxt.wrapping_sub(self.iss) as u64;
        all.saturating_sub(1 + u64::from(self.fin_sent))
    }

    /// Payload bytes the NAT acknowledged.
    pub fn acked_bytes(&self) -> u64 {
        let all = self.snd_una.wrapping_sub(self.iss) as u64;
        let fin = u64::from(self.fin_sent && self.snd_una == self.snd_nxt);
        all.saturating_sub(1 + fin)
    }

    /// Room left in the window we advertised.
    pub fn window_left(&self) -> u32 {
        let left = self.edge.wrapping_sub(self.rcv_nxt);
        if (left as i32) < 0 {
            0
        } else {
            left
        }
    }

    /// What we may send now: the NAT's window minus what is in flight.
    pub fn send_room(&self) -> u32 {
        let in_flight = self.snd_nxt.wrapping_sub(self.snd_una);
        self.peer_window.saturating_sub(in_flight)
    }

    fn take(&mut self, seg_seq: u32, payload: &[u8]) {
        // The part of the segment at or after rcv_nxt, within the window.
        let skip = self.rcv_nxt.wrapping_sub(seg_seq) as usize;
        let new = &payload[skip.min(payload.len())..];
        let room = self.window_left() as usize;
        let take = new.len().min(room);
        if take < new.len() {
            self.beyond_window += 1;
        }
        let off = self.rcv_nxt.wrapping_sub(self.irs).wrapping_sub(1) as u64;
        self.mismatches += pattern_mismatches(self.rx_seed, off, &new[..take]);
        self.rcv_nxt = self.rcv_nxt.wrapping_add(take as u32);
        self.received += take as u64;
    }

    /// Follows one frame from the NAT; false if it is not this
    /// connection's.
    pub fn on_frame(&mut self, s: &Seen, payload: &[u8]) -> bool {
        if !s.is_tcp()
            || s.dst_port != self.sport
            || s.src_port != self.dst.port()
            || s.src_ip != *self.dst.ip()
        {
            return false;
        }
        self.frames += 1;
        if s.has(flags::RST) {
            self.rst_received = true;
            return true;
        }
        if s.has(flags::SYN) {
            self.irs = s.seq;
            self.rcv_nxt = s.seq.wrapping_add(1);
            self.peer_mss = s.mss.unwrap_or(536);
            // A SYN's window is never scaled.
            self.peer_window = s.window as u32;
            self.owe_ack = true;
            if s.has(flags::ACK) {
                self.syn_acks += 1;
                self.scaling = self.wscale.is_some() && s.wscale.is_some();
                self.peer_wscale = if self.scaling {
                    s.wscale.unwrap_or(0)
                } else {
                    0
                };
                if s.ack == self.iss.wrapping_add(1) {
                    self.snd_una = s.ack;
                    self.state = TcpState::Established;
                }
            } else {
                // A published port's client: the NAT opens toward us.
                self.syns += 1;
                self.scaling = self.wscale.is_some() && s.wscale.is_some();
                self.peer_wscale = if self.scaling {
                    s.wscale.unwrap_or(0)
                } else {
                    0
                };
                self.state = TcpState::SynReceived;
            }
            self.edge = self.rcv_nxt.wrapping_add(self.window.min(65535));
            return true;
        }
        if s.has(flags::ACK) {
            if seq_gt(s.ack, self.snd_una) && !seq_gt(s.ack, self.snd_nxt) {
                self.snd_una = s.ack;
            }
            self.peer_window = (s.window as u32) << self.peer_wscale;
            if self.state == TcpState::SynReceived && s.ack == self.iss.wrapping_add(1) {
                self.state = TcpState::Established;
            }
        }
        let len = s.len as u32;
        if s.gso_size > 0 {
            self.gso_frames += 1;
        }
        if len > 0 {
            self.data_frames += 1;
        }
        if len == 0 && !s.has(flags::FIN) && s.seq == self.rcv_nxt.wrapping_sub(1) {
            self.probes += 1;
            self.owe_ack = true;
            return true;
        }
        if len > 0 {
            let end = s.seq.wrapping_add(len);
            if seq_gt(s.seq, self.rcv_nxt) {
                self.out_of_order += 1;
            } else if seq_gt(end, self.rcv_nxt) {
                self.take(s.seq, payload);
            } else {
                self.duplicates += 1;
            }
            self.owe_ack = true;
        }
        if s.has(flags::FIN) {
            if !self.fin_received && s.seq.wrapping_add(len) == self.rcv_nxt {
                self.fin_received = true;
                self.rcv_nxt = self.rcv_nxt.wrapping_add(1);
            }
            self.owe_ack = true;
        }
        true
    }

    fn shift(&self) -> u8 {
        if self.scaling {
            self.wscale.unwrap_or(0)
        } else {
            0
        }
    }

    /// The window field to send, as scaling requires.
    pub fn window_field(&self) -> u16 {
        (self.window >> self.shift()).min(u16::MAX as u32) as u16
    }
}

/// What one drain saw: frames, and those that did not parse.
#[derive(Debug, Default, Clone, Copy)]
pub struct Drained {
    pub frames: usize,
    pub unparsed: usize,
}

pub struct Rig {
    pub sw: Switch,
    /// The switch's name table (what the control plane writes).
    pub names: lanyard::dns::SharedNames,
    pub poll: mio::Poll,
    events: mio::Events,
    pub now: Time,
    pub net: NetworkId,
    pub port: PortId,
    pub ring: MemoryHandle,
    pub ip: Ipv4Addr,
    pub mac: MacAddr,
    pub mtu: u32,
    /// The container's next frame is built here.
    pub tx: FrameBuf,
    pub dhcp: Option<crossbeam_channel::Receiver<Event>>,
    /// Poll events dispatched, by kind.
    pub flow_events: u64,
    pub dns_events: u64,
    pub forward_events: u64,
    /// Recorded frames the rig could not parse.
    pub unparsed: u64,
    pub frames_seen: u64,
    /// Frames built while this is set wait on the container's port, and
    /// [`Rig::turn`] switches them as one port turn (as the poll loop
    /// does); otherwise each is switched as it is built.
    pub queue: bool,
    /// A port turn's buffers, made once (a turn allocates nothing).
    turn_bufs: Vec<FrameBuf>,
}

/// The rig's network: docker's default bridge, 172.17.0.0/16 with NAT.
pub fn default_network() -> NetworkSpec {
    NetworkSpec {
        name: "default".into(),
        subnet: "172.17.0.0/16".parse().unwrap(),
        gateway_ip: GW.into(),
        gateway_mac: gw_mac(),
        fdb_max_entries: 1024,
        fdb_max_per_port: 64,
        mac_aging: Duration::from_secs(300),
        nat: true,
        dns_ip: None,
        ipv6: None,
    }
}

impl Rig {
    pub fn new(o: Opts) -> Rig {
        let names = lanyard::dns::shared_names();
        let mut sw = Switch::with_names(16, o.nat.clone(), o.dns_upstreams.clone(), names.clone());
        let net = sw.add_network(default_network());
        let poll = mio::Poll::new().expect("a mio poll");
        sw.set_registry(poll.registry().try_clone().expect("a registry handle"));
        let dhcp = o.events.map(|cap| {
            let (tx, rx) = crossbeam_channel::bounded(cap);
            sw.set_events(tx);
            rx
        });
        let (p, ring) = MemoryPort::recording(o.ring_slots, 256, o.offloads);
        let mac = mac_of(o.ip);
        let port = sw
            .add_port(
                Box::new(p),
                PortSpec {
                    name: "c0".into(),
                    network: net,
                    policy: PortPolicy::endpoint(mac, o.ip),
                    mtu: o.mtu,
                    allow_host_loopback: o.allow_host_loopback,
                    loopback_unreachable: false,
                },
            )
            .expect("the endpoint port");
        Rig {
            sw,
            names,
            poll,
            events: mio::Events::with_capacity(o.poll_events),
            now: Time::from_secs(1),
            net,
            port,
            ring,
            ip: o.ip,
            mac,
            mtu: o.mtu,
            tx: FrameBuf::new(),
            dhcp,
            flow_events: 0,
            dns_events: 0,
            forward_events: 0,
            unparsed: 0,
            frames_seen: 0,
            queue: false,
            turn_bufs: (0..64).map(|_| FrameBuf::new()).collect(),
        }
    }

    /// Publishes the endpoint's `container_port` on a free port of the
    /// host's 127.0.0.1 (`-p 127.0.0.1::PORT`, TCP or UDP). Returns the
    /// address clients use and the forward's id.
    pub fn publish(
        &mut self,
        proto: lanyard::publish::Protocol,
        container_port: u16,
    ) -> (std::net::SocketAddr, u32) {
        let tcp = proto == lanyard::publish::Protocol::Tcp;
        let fd = lanyard::sys::sock::bind_listener(tcp, "127.0.0.1:0".parse().unwrap())
            .expect("a loopback listener");
        let host = lanyard::sys::sock::local_addr(std::os::fd::AsRawFd::as_raw_fd(&fd)).unwrap();
        let ids = self
            .sw
            .add_forwards(
                self.port,
                vec![(
                    fd,
                    lanyard::publish::Mapping {
                        proto,
                        host,
                        container_port,
                    },
                )],
            )
            .expect("the forward");
        (host, ids[0])
    }

    /// One turn of the container's port, as the poll loop gives it: up to
    /// 64 queued frames read and switched, then what the NAT deferred.
    /// Returns how many frames it read.
    pub fn turn(&mut self) -> usize {
        match self
            .sw
            .poll_port(self.port, &mut self.turn_bufs, self.now, || true)
        {
            Ok(p) => p.frames,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => 0,
            Err(e) => panic!("the container's port failed: {e}"),
        }
    }

    /// Moves the virtual clock on.
    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }

    /// The NAT's timers at the current virtual time.
    pub fn tick(&mut self) {
        self.sw.tick(self.now);
    }

    /// Polls the NAT's sockets once, waiting at most `timeout`, and
    /// dispatches every event as the data path's poll loop does. Returns
    /// how many events there were.
    pub fn pump(&mut self, timeout: Duration) -> usize {
        if let Err(e) = self.poll.poll(&mut self.events, Some(timeout)) {
            assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "poll failed");
            return 0;
        }
        let now = self.now;
        let mut n = 0;
        for ev in self.events.iter() {
            n += 1;
            let err = ev.is_error();
            let token = PollToken::decode(ev.token());
            match token {
                PollToken::Flow(_) => self.flow_events += 1,
                PollToken::DnsQuery { .. } => self.dns_events += 1,
                PollToken::Forward(_) => self.forward_events += 1,
                other => panic!("a poll token the NAT does not use: {other:?}"),
            }
            // As the data path's poll loop hands them on.
            self.sw.host_event(
                token,
                ev.is_readable() || ev.is_read_closed() || err,
                ev.is_writable() || err,
                now,
            );
        }
        n
    }

    /// Hands every frame the container was sent to `f`, parsed, oldest
    /// first; frames that are not IPv4 TCP/UDP/ICMP are counted in
    /// `unparsed`. `f` cannot reach the rig (the ring is read under its
    /// lock): collect, then act.
    pub fn drain(&mut self, mut f: impl FnMut(&Seen, &[u8])) -> Drained {
        let mut d = Drained::default();
        self.ring.for_each_sent(|h, b| {
            d.frames += 1;
            match parse(h, b) {
                Some((s, p)) => f(&s, p),
                None => d.unparsed += 1,
            }
        });
        self.unparsed += d.unparsed as u64;
        self.frames_seen += d.frames as u64;
        d
    }

    /// Runs `step` until it returns true; panics after `limit` of real
    /// time, saying `what` and what the rig saw.
    pub fn until(&mut self, what: &str, limit: Duration, mut step: impl FnMut(&mut Rig) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if step(self) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "{what}: not done within {limit:?} (frames seen {}, unparsed {}, ring overflow {}, events flow/dns/forward {}/{}/{}, flows {}, nat {:?})",
                    self.frames_seen,
                    self.unparsed,
                    self.ring.overflowed(),
                    self.flow_events,
                    self.dns_events,
                    self.forward_events,
                    self.flows(),
                    self.sw.nat_counters()
                );
            }
        }
    }

    /// Flows in the NAT's table (allocates nothing).
    pub fn flows(&self) -> usize {
        self.sw.nat_flows().0
    }

    /// Flows on the NAT's retransmission (busy) list.
    pub fn busy(&self) -> usize {
        self.sw.nat_flows().1
    }

    /// The endpoint port's counters (tx: frames the switch delivered to
    /// the container).
    pub fn port_tx(&self) -> u64 {
        self.sw.counters(self.port).map_or(0, |c| c.tx_packets)
    }

    fn send_built(&mut self, len: usize) {
        self.tx.set_len(len);
        self.tx.set_vnet(VnetHdr::default());
        if self.queue {
            assert!(
                self.ring.inject(VnetHdr::default(), self.tx.frame()),
                "the container's port queue is full"
            );
            return;
        }
        self.sw.handle_frame(self.port, &mut self.tx, self.now);
    }

    /// Writes Ethernet + IPv4 headers from the container to the gateway's
    /// MAC; returns the transport offset.
    fn ip_header(
        &mut self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        eth_dst: MacAddr,
        proto: u8,
        l4_len: usize,
    ) -> usize {
        let mac = self.mac;
        let buf = self.tx.read_space();
        let n = emit_header(buf, eth_dst, mac, ethertype::IPV4);
        n + Ipv4Repr {
            src,
            dst,
            protocol: proto,
            payload_len: l4_len,
            ttl: 64,
            ident: 0,
        }
        .emit(&mut buf[n..])
    }

    /// Sends a TCP segment of `c` with `fl` and `len` payload bytes written
    /// by `fill`; `opts` are TCP options (a multiple of 4 bytes).
    #[allow(clippy::too_many_arguments)]
    pub fn tcp_raw(
        &mut self,
        c: &CTcp,
        seq: u32,
        ack: u32,
        fl: u8,
        window: u16,
        opts: &[u8],
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) {
        let (src, dst) = (self.ip, *c.dst.ip());
        let hl = tcp::MIN_HEADER_LEN + opts.len();
        let l4_len = hl + len;
        let t = self.ip_header(src, dst, gw_mac(), protocol::TCP, l4_len);
        let buf = self.tx.read_space();
        tcp::emit_header(&mut buf[t..], c.sport, c.dst.port(), seq, ack, fl, window);
        buf[t + 12] = ((hl / 4) as u8) << 4;
        buf[t + tcp::MIN_HEADER_LEN..t + hl].copy_from_slice(opts);
        fill(&mut buf[t + hl..t + l4_len]);
        let pseudo = checksum::pseudo_header_v4(src, dst, protocol::TCP, l4_len as u16);
        let sum = checksum::finish(checksum::sum(pseudo, &buf[t..t + l4_len]));
        buf[t + tcp::CHECKSUM_OFFSET..t + tcp::CHECKSUM_OFFSET + 2]
            .copy_from_slice(&sum.to_be_bytes());
        self.send_built(t + l4_len);
    }

    /// The container's SYN (MSS, and window scale if `c.wscale`).
    pub fn connect(&mut self, c: &mut CTcp) {
        let mut opts = [0u8; 8];
        opts[..4].copy_from_slice(&[2, 4, (c.mss >> 8) as u8, c.mss as u8]);
        let n = match c.wscale {
            Some(w) => {
                opts[4..].copy_from_slice(&[1, 3, 3, w]);
                8
            }
            None => 4,
        };
        c.snd_nxt = c.iss;
        c.snd_una = c.iss;
        let w = c.window.min(65535) as u16;
        self.tcp_raw(c, c.iss, 0, flags::SYN, w, &opts[..n], 0, |_| {});
        c.snd_nxt = c.iss.wrapping_add(1);
        c.state = TcpState::SynSent;
    }

    /// The container's SYN-ACK to a published port's SYN.
    pub fn syn_ack(&mut self, c: &mut CTcp) {
        let mut opts = [0u8; 8];
        opts[..4].copy_from_slice(&[2, 4, (c.mss >> 8) as u8, c.mss as u8]);
        let n = match c.wscale {
            Some(w) => {
                opts[4..].copy_from_slice(&[1, 3, 3, w]);
                8
            }
            None => 4,
        };
        c.snd_nxt = c.iss;
        c.snd_una = c.iss;
        let (seq, ack) = (c.iss, c.rcv_nxt);
        let w = c.window.min(65535) as u16;
        self.tcp_raw(
            c,
            seq,
            ack,
            flags::SYN | flags::ACK,
            w,
            &opts[..n],
            0,
            |_| {},
        );
        c.snd_nxt = c.iss.wrapping_add(1);
        c.edge = c.rcv_nxt.wrapping_add(w as u32);
        c.owe_ack = false;
    }

    /// A segment of `c` at `snd_nxt` acknowledging `rcv_nxt`, with `len`
    /// bytes of its transmit stream; SYN/FIN advance `snd_nxt` too.
    pub fn tcp(&mut self, c: &mut CTcp, fl: u8, len: usize) {
        let (seq, ack) = (c.snd_nxt, c.rcv_nxt);
        let window = c.window_field();
        let bytes = (window as u32) << c.shift();
        let off = c.sent_bytes();
        let seed = c.tx_seed;
        self.tcp_raw(c, seq, ack, fl, window, &[], len, |b| {
            fill_pattern(seed, off, b)
        });
        c.snd_nxt = c
            .snd_nxt
            .wrapping_add(len as u32 + u32::from(fl & flags::FIN != 0));
        if fl & flags::FIN != 0 {
            c.fin_sent = true;
        }
        if fl & flags::ACK != 0 {
            c.edge = c.rcv_nxt.wrapping_add(bytes);
            c.owe_ack = false;
        }
    }

    /// A bare ACK with the current window.
    pub fn ack(&mut self, c: &mut CTcp) {
        self.tcp(c, flags::ACK, 0);
    }

    /// Sends up to `max` bytes of `c`'s stream in MSS-sized segments within
    /// the NAT's window; returns how many went.
    pub fn send_data(&mut self, c: &mut CTcp, max: u64) -> u64 {
        let seg_max = (self.mtu as usize - 40).min(c.peer_mss as usize).max(1);
        let mut sent = 0u64;
        while sent < max {
            let room = c.send_room() as u64;
            let n = (max - sent).min(room).min(seg_max as u64) as usize;
            if n == 0 {
                break;
            }
            self.tcp(c, flags::ACK | flags::PSH, n);
            sent += n as u64;
        }
        sent
    }

    /// A datagram from the container's `sport` to `dst` with `len` bytes of
    /// stream `seed` (from `offset`).
    pub fn udp(&mut self, sport: u16, dst: SocketAddrV4, len: usize, seed: u64, offset: u64) {
        let src = self.ip;
        self.udp_with(src, sport, *dst.ip(), dst.port(), gw_mac(), len, |b| {
            fill_pattern(seed, offset, b)
        });
    }

    /// A datagram with explicit addresses (DHCP's 0.0.0.0 → broadcast) and
    /// a payload written by `fill`.
    #[allow(clippy::too_many_arguments)]
    pub fn udp_with(
        &mut self,
        src: Ipv4Addr,
        sport: u16,
        dst: Ipv4Addr,
        dport: u16,
        eth_dst: MacAddr,
        len: usize,
        fill: impl FnOnce(&mut [u8]),
    ) {
        let l4_len = 8 + len;
        let t = self.ip_header(src, dst, eth_dst, protocol::UDP, l4_len);
        let buf = self.tx.read_space();
        buf[t..t + 2].copy_from_slice(&sport.to_be_bytes());
        buf[t + 2..t + 4].copy_from_slice(&dport.to_be_bytes());
        buf[t + 4..t + 6].copy_from_slice(&(l4_len as u16).to_be_bytes());
        buf[t + 6..t + 8].copy_from_slice(&[0, 0]);
        fill(&mut buf[t + 8..t + l4_len]);
        let pseudo = checksum::pseudo_header_v4(src, dst, protocol::UDP, l4_len as u16);
        let mut sum = checksum::finish(checksum::sum(pseudo, &buf[t..t + l4_len]));
        if sum == 0 {
            sum = 0xffff;
        }
        buf[t + 6..t + 8].copy_from_slice(&sum.to_be_bytes());
        self.send_built(t + l4_len);
    }

    /// An ICMP echo request to `dst` with `len` bytes of data.
    pub fn ping(&mut self, dst: Ipv4Addr, ident: u16, seq: u16, len: usize) {
        let l4_len = 8 + len;
        let src = self.ip;
        let t = self.ip_header(src, dst, gw_mac(), protocol::ICMP, l4_len);
        let buf = self.tx.read_space();
        buf[t] = 8;
        buf[t + 1] = 0;
        buf[t + 2..t + 4].copy_from_slice(&[0, 0]);
        buf[t + 4..t + 6].copy_from_slice(&ident.to_be_bytes());
        buf[t + 6..t + 8].copy_from_slice(&seq.to_be_bytes());
        fill_pattern(seq as u64, 0, &mut buf[t + 8..t + l4_len]);
        let sum = checksum::checksum(&buf[t..t + l4_len]);
        buf[t + 2..t + 4].copy_from_slice(&sum.to_be_bytes());
        self.send_built(t + l4_len);
    }

    /// A DNS query (recursion desired) for `name`, type `qtype`, class IN,
    /// from the container's `sport` to the gateway's port 53.
    pub fn dns_query(&mut self, sport: u16, id: u16, name: &str, qtype: u16) {
        let qlen = dns_question_len(name);
        let src = self.ip;
        self.udp_with(src, sport, GW, 53, gw_mac(), 12 + qlen, |b| {
            write_dns_query(b, id, name, qtype)
        });
    }

    /// A DHCPDISCOVER from the endpoint's own MAC, as an address-less
    /// client sends it: 0.0.0.0:68 → 255.255.255.255:67, broadcast.
    pub fn dhcp_discover(&mut self, xid: u32) {
        let mac = self.mac;
        self.udp_with(
            Ipv4Addr::UNSPECIFIED,
            68,
            Ipv4Addr::BROADCAST,
            67,
            MacAddr::BROADCAST,
            300,
            |b| write_dhcp_discover(b, xid, mac),
        );
    }
}

/// Bytes of a question for `name`: labels, root, type and class.
pub fn dns_question_len(name: &str) -> usize {
    name.split('.').map(|l| 1 + l.len()).sum::<usize>() + 1 + 4
}

/// Writes a one-question query into `b` (`12 + dns_question_len` bytes).
pub fn write_dns_query(b: &mut [u8], id: u16, name: &str, qtype: u16) {
    b[0..2].copy_from_slice(&id.to_be_bytes());
    b[2..4].copy_from_slice(&0x0100u16.to_be_bytes());
    b[4..6].copy_from_slice(&1u16.to_be_bytes());
    b[6..12].fill(0);
    let mut i = 12;
    for l in name.split('.') {
        b[i] = l.len() as u8;
        b[i + 1..i + 1 + l.len()].copy_from_slice(l.as_bytes());
        i += 1 + l.len();
    }
    b[i] = 0;
    b[i + 1..i + 3].copy_from_slice(&qtype.to_be_bytes());
    b[i + 3..i + 5].copy_from_slice(&1u16.to_be_bytes());
}

/// A BOOTREQUEST carrying DHCPDISCOVER, padded to 300 bytes.
pub fn write_dhcp_discover(b: &mut [u8], xid: u32, mac: MacAddr) {
    b.fill(0);
    b[0] = 1; // BOOTREQUEST
    b[1] = 1; // Ethernet
    b[2] = 6;
    b[4..8].copy_from_slice(&xid.to_be_bytes());
    b[10..12].copy_from_slice(&0x8000u16.to_be_bytes()); // broadcast reply
    b[28..34].copy_from_slice(&mac.0);
    b[236..240].copy_from_slice(&[99, 130, 83, 99]);
    b[240..243].copy_from_slice(&[53, 1, 1]);
    b[243] = 255;
}

/// A DNS response's id, rcode and answer count, and its last four bytes
/// (the address of a single A answer).
pub fn dns_answer(payload: &[u8]) -> Option<(u16, u8, u16, [u8; 4])> {
    if payload.len() < 16 || payload[2] & 0x80 == 0 {
        return None;
    }
    let id = u16::from_be_bytes([payload[0], payload[1]]);
    let rcode = payload[3] & 0x0f;
    let an = u16::from_be_bytes([payload[6], payload[7]]);
    let mut last = [0u8; 4];
    last.copy_from_slice(&payload[payload.len() - 4..]);
    Some((id, rcode, an, last))
}
