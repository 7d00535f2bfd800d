//! `pipeline`: the whole switch, NAT included, frame after frame and poll
//! event after poll event, with invariants checked after every step.
//!
//! Topology (built fresh for every input, so a run is deterministic but for
//! the NAT's random initial sequence numbers and DNS ids):
//!
//! | port | network              | kind     | offloads | MTU   | NAT extras |
//! |------|----------------------|----------|----------|-------|------------|
//! | 0    | A 172.17.0.0/16, NAT | endpoint | FULL     | 65520 | published 8080/tcp → 80, 5353/udp → 53 |
//! | 1    | A                    | endpoint | NONE     | 1500  | `allow_host_loopback` |
//! | 2    | A                    | trusted  | FULL     | 9000  | |
//! | 3    | A                    | trusted  | NONE     | 1500  | |
//! | 4    | B 10.10.0.0/24, internal | endpoint | FULL | 1500  | |
//! | 5    | B                    | endpoint | NONE     | 65520 | |
//! | 6    | B                    | trusted  | NONE     | 1500  | |
//!
//! Both gateways are .1. Network A is dual stack (fd00:172:17::/64, gateway
//! ::1, endpoints ::2 and ::3 beside their IPv4 addresses: the IPv6 gateway
//! and NAT are on this path too); B is IPv4 only. Endpoints own one MAC
//! and IP, and on A their IPv6 addresses (port security);
//! trusted ports stand for uplinks with many hosts behind them. Only trusted
//! ports can make the bridge learn (endpoint MACs are static), so network A
//! has two of them, to exercise MACs moving between ports, and the FDB
//! bounds are small enough that both the per-port and the table bound are
//! reached: A holds 8 entries, 4 per port; B holds 4, 3 per port.
//!
//! Network A has NAT; the NAT and the embedded DNS share one host,
//! `host::FakeIo` (no socket is ever made: every host socket call takes
//! its outcome from a byte script the input feeds); network B has none
//! (docker's `--internal`), so only DNS to its gateway is served (UDP by
//! the DNS, TCP by the NAT's flow to the DNS-over-TCP service), and is
//! never forwarded upstream. The NAT's table is small (16 flows, 8 per
//! container) so that eviction and the per-container bound are within
//! reach of one input; the DNS upstream is 10.200.0.9:53, and the fake
//! answers `recv_from` from it, from 10.200.0.9:5353 or from
//! 10.200.0.66:53 (forgeries). The endpoints have names in the embedded
//! DNS: port 0 `web` and `c0`, port 1 `db`, port 4 `b4`, port 5 `b5`.
//!
//! Input: a sequence of steps, each
//!
//! ```text
//! port:u8  clock:u8  kind:u8  vnet:[u8; 10]  len:u16be  body:[u8; len]
//! ```
//!
//! * `port` (mod 7): the ingress port (frame steps).
//! * `clock`: bit 7 set, the clock moves `clock & 0x7f` seconds and the
//!   switch ticks (MAC tables swept, NAT timers run); clear, it moves
//!   `clock` milliseconds.
//! * `kind & 8` clear: a frame step. `kind & 7`: 0 the body is the frame as
//!   it is; otherwise the frame is built from a template, with the body
//!   supplying its fields (see [`Builder`]): 1 ARP, 2 ICMP/IPv4, 3
//!   TCP/IPv4, 4 UDP/IPv4, 5 TCP/IPv6, 6 UDP/IPv6. Templates start from
//!   the sending port's own MAC and address, so most of them get past port
//!   security. 7: no frame; the port is unplugged (`remove_port`) or, if
//!   it is, plugged back in (`add_port`), as when a container restarts.
//!   Plugging in fails if the MAC table has no room left for an endpoint's
//!   static entry; the port then stays out until a later step plugs it in.
//! * `kind & 0x40`, frame steps: the port's turn goes on after this frame
//!   (`Switch::handle_frame_in_turn`): what the NAT defers (TCP
//!   acknowledgements, a flow's UDP batch) waits for the next frame step
//!   without the bit, or for any host step or tick, which end the turn
//!   first. So consecutive held datagrams of one flow leave as one UDP GSO
//!   send.
//! * `(kind >> 4) & 3`, for templates: the offload state the sender claims.
//!   0 none (checksums complete), 1 partial checksum, 2 GSO super-frame
//!   (`gso_size` taken from `vnet`, 1448 if zero), 3 `vnet` as given.
//!   Raw frames always use `vnet` as given.
//! * `kind & 8` set: a host step (`port` and `vnet` are ignored), `kind & 7`
//!   mod 3:
//!   * 0 **feed**: the body is appended to the script of every shard's
//!     fake host (the next socket calls' outcomes and the data they read:
//!     see `host::FakeIo`; a spent script answers benignly: success,
//!     everything sent, nothing to read).
//!   * 1 **poll event**: body `sel:u8 ev:u8`. `sel & 0x80` clear: the
//!     `sel`-th (mod their number) of the poll tokens registered now, over
//!     all shards in order; set: of every token registered so far in this
//!     run (a stale event, as a poll batch can hold one for a socket closed
//!     while the batch was handled). `ev` bit 0 readable, bit 1 writable,
//!     neither: both. The event goes to the shard whose host registered the
//!     token, through `Switch::host_event`: a `host::PollToken` of a NAT
//!     flow, a DNS query or a published port's listener.
//!   * 2 **tick**: NAT timers (and MAC aging) run now, on every shard.
//!
//! `fuzz/make_seeds.py` writes seeds in this format. To see what an input
//! does, run it with `LANYARD_FUZZ_TRACE=1` set: each step prints the frame
//! or host step, the drops it caused, what each port received, the NAT's
//! flows (conntrack) and the MAC table sizes.
//!
//! Invariants, checked after every step (a panic is what libFuzzer reports):
//!
//! * (a) nothing goes back out of its ingress port except what the gateway
//!   (or the NAT, speaking as the gateway) built (source MAC = gateway MAC);
//! * (b) nothing crosses networks, and a host step forwards nothing: every
//!   frame a port receives in it is the gateway's;
//! * (c) the MAC table never exceeds its bound;
//! * (d) every frame a port receives carries only offloads it accepts: a
//!   port with `Offloads::NONE` sees plain headers only;
//! * (e) every frame the gateway or the NAT sends parses with an
//!   independent parser (etherparse) as ARP or IPv4 carrying ICMP, TCP or
//!   UDP, with valid IPv4 and transport checksums once a partial checksum
//!   is completed (`offload::finish_checksum` on a copy; a GSO super-frame
//!   is checked whole), and an IPv4 length that matches the frame;
//! * (f) an endpoint frame with a source MAC not its own reaches nobody;
//! * (g) a forwarded frame arrives as sent: unchanged where the egress port
//!   takes its offloads, with only the checksum field completed where it
//!   does not;
//! * (h) segments cut from a GSO frame carry IP lengths that match the
//!   segment, and valid IPv4 header and TCP/UDP checksums (verified with the
//!   harness's own checksum code, on headers located by etherparse);
//! * (i) an unplugged port receives nothing;
//! * (j) every host connect the NAT makes obeys the destination policy: it
//!   is made in a frame step, for a packet from network A to exactly the
//!   packet's destination address and port, never to a host-local address
//!   (127/8, 0/8, ::1, ::, mapped forms), a broadcast or multicast address,
//!   or an address of the sender's own subnet; the host's loopback
//!   (127.0.0.1:port) only for a packet to the gateway's address from the
//!   endpoint with `allow_host_loopback` (port 1); the DNS-over-TCP server
//!   (127.0.0.1:`FAKE_SERVICE_PORT`, where the fake says every local
//!   service is) only for TCP to the gateway's port 53 (from either
//!   network);
//! * (k) on every shard, the NAT holds at most `max_flows` flows, and its
//!   busy (retransmission) list is no longer than its flows;
//! * (l) an IPv4 frame the gateway or the NAT sends a port goes to a (MAC,
//!   address) pair that port has sent from — for an endpoint, exactly its
//!   own;
//! * (m) a frame from network B (internal) never makes the DNS forwarder
//!   open an upstream query (no `PollToken::DnsQuery` is registered for
//!   it).
//!
//! Every input runs twice: on one switch, and on two shards as the daemon
//! runs them with `[dataplane] threads = 2` (port `i` read by shard
//! `i % 2`, every shard holding the others' ports as send-only handles,
//! learned MACs passed on after every step, one name table shared by both,
//! each shard with its own NAT, DNS and fake host, published ports on the
//! owner's); the invariants hold for both, and (c) and (k) for every
//! shard.
//!
//! A TCP template can answer the last TCP segment the gateway sent the
//! port (tweak bit 7, see [`Builder`]): the NAT's initial sequence numbers
//! are random, so this is how an input completes a handshake and
//! acknowledges data (`seed-tcp-established` in make_seeds.py drives a
//! flow through connect, SYN-ACK, data both ways, FIN and close).

#![no_main]

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use libfuzzer_sys::fuzz_target;

#[path = "logged_io.rs"]
mod logged_io;
use logged_io::{IoLog, LoggedIo};

use lanyard::dataplane::{NetworkId, NetworkSpec, PortSpec, Switch, SwitchError};
use lanyard::frame::FrameBuf;
use lanyard::host::{FakeLog, PollToken, FAKE_SERVICE_PORT};
use lanyard::nat::policy::is_host_local;
use lanyard::nat::NatConfig;
use lanyard::offload::Offloads;
use lanyard::port::{MemoryHandle, MemoryPort, Port, PortId};
use lanyard::publish::{Mapping, Protocol};
use lanyard::security::PortPolicy;
use lanyard::time::Time;
use lanyard::wire::arp::{self, ArpRepr};
use lanyard::wire::ethernet::ethertype;
use lanyard::wire::ipv4::protocol;
use lanyard::wire::vnet::{flags, gso, VnetHdr, HDR_LEN};
use lanyard::wire::MacAddr;

/// Steps per input: enough for learn / move / age / refill sequences and a
/// TCP flow's whole life, few enough that one input stays fast.
const MAX_STEPS: usize = 64;

/// Frames a memory port queues each way. A GSO frame cut for a port without
/// offloads can make up to `offload::MAX_SEGMENTS` (1024) frames; the
/// queues are drained after every step, so this never drops.
const QUEUE: usize = 4096;

/// The NAT's bounds: small, so that a fresh switch is cheap and eviction
/// (a full table) and the per-container bound are reached within one input.
const MAX_FLOWS: usize = 16;
const MAX_FLOWS_PER_CONTAINER: u32 = 8;

/// `kind` bit of a host step (feed, poll event, tick).
const HOST_STEP: u8 = 0x08;
/// Frame steps: the port's turn goes on after this frame.
const HELD: u8 = 0x40;

/// The endpoint whose connections to the gateway's address reach the host's
/// loopback.
const LOOPBACK_PORT: usize = 1;
/// The endpoint with published ports.
const PUBLISHED_PORT: usize = 0;

fn dns_upstream() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 200, 0, 9), 53))
}

/// Where the fake's `recv_from` answers come from: the upstream, then two
/// forgers (another port of its address, another address).
fn fake_peers() -> Vec<SocketAddr> {
    vec![
        dns_upstream(),
        SocketAddr::from((Ipv4Addr::new(10, 200, 0, 9), 5353)),
        SocketAddr::from((Ipv4Addr::new(10, 200, 0, 66), 53)),
    ]
}

struct NetDef {
    name: &'static str,
    subnet: &'static str,
    gateway: Ipv4Addr,
    broadcast: Ipv4Addr,
    fdb_max_entries: usize,
    fdb_max_per_port: u32,
    mac_aging: Duration,
    nat: bool,
    dns_ip: Option<Ipv4Addr>,
}

const NETS: [NetDef; 2] = [
    NetDef {
        name: "a",
        subnet: "172.17.0.0/16",
        gateway: Ipv4Addr::new(172, 17, 0, 1),
        broadcast: Ipv4Addr::new(172, 17, 255, 255),
        fdb_max_entries: 8,
        fdb_max_per_port: 4,
        mac_aging: Duration::from_secs(5),
        nat: true,
        // slirp4netns's layout: a second gateway address serving DNS.
        dns_ip: Some(Ipv4Addr::new(172, 17, 9, 3)),
    },
    NetDef {
        name: "b",
        subnet: "10.10.0.0/24",
        gateway: Ipv4Addr::new(10, 10, 0, 1),
        broadcast: Ipv4Addr::new(10, 10, 0, 255),
        fdb_max_entries: 4,
        fdb_max_per_port: 3,
        mac_aging: Duration::from_secs(60),
        nat: false,
        dns_ip: None,
    },
];

/// Whether `a` is on network `net`'s subnet.
fn on_subnet(net: usize, a: Ipv4Addr) -> bool {
    let (addr, len) = NETS[net].subnet.split_once('/').expect("a prefix");
    let addr: Ipv4Addr = addr.parse().expect("an address");
    let mask = u32::MAX << (32 - len.parse::<u32>().expect("a length"));
    u32::from(a) & mask == u32::from(addr) & mask
}

struct PortDef {
    net: usize,
    /// The endpoint's address, or for a trusted port the address of the
    /// host behind it that templates use by default.
    ip: Ipv4Addr,
    trusted: bool,
    offloads: Offloads,
    mtu: u32,
    /// Names in the embedded DNS (endpoints).
    names: &'static [&'static str],
}

const NPORTS: usize = 7;

const PORTS: [PortDef; NPORTS] = [
    PortDef {
        net: 0,
        ip: Ipv4Addr::new(172, 17, 0, 2),
        trusted: false,
        offloads: Offloads::FULL,
        mtu: 65520,
        names: &["web", "c0"],
    },
    PortDef {
        net: 0,
        ip: Ipv4Addr::new(172, 17, 0, 3),
        trusted: false,
        offloads: Offloads::NONE,
        mtu: 1500,
        names: &["db"],
    },
    PortDef {
        net: 0,
        ip: Ipv4Addr::new(172, 17, 0, 200),
        trusted: true,
        offloads: Offloads::FULL,
        mtu: 9000,
        names: &[],
    },
    PortDef {
        net: 0,
        ip: Ipv4Addr::new(172, 17, 0, 201),
        trusted: true,
        offloads: Offloads::NONE,
        mtu: 1500,
        names: &[],
    },
    PortDef {
        net: 1,
        ip: Ipv4Addr::new(10, 10, 0, 2),
        trusted: false,
        offloads: Offloads::FULL,
        mtu: 1500,
        names: &["b4"],
    },
    PortDef {
        net: 1,
        ip: Ipv4Addr::new(10, 10, 0, 3),
        trusted: false,
        offloads: Offloads::NONE,
        mtu: 65520,
        names: &["b5"],
    },
    PortDef {
        net: 1,
        ip: Ipv4Addr::new(10, 10, 0, 200),
        trusted: true,
        offloads: Offloads::NONE,
        mtu: 1500,
        names: &[],
    },
];

fn gateway_mac(net: usize) -> MacAddr {
    MacAddr::docker_from_ipv4(NETS[net].gateway)
}

/// A MAC of a host behind a trusted port of `net`. All trusted ports of a
/// network draw from the same 32 addresses, so a host can move between
/// them.
fn uplink_host_mac(net: usize, host: u8) -> MacAddr {
    MacAddr([0x02, 0xee, 0, 0, net as u8, host])
}

/// The MAC a port uses by default: an endpoint's own, a trusted port's
/// first host (a different one per port).
fn port_mac(port: usize) -> MacAddr {
    let p = &PORTS[port];
    if p.trusted {
        uplink_host_mac(p.net, 0x80 + port as u8)
    } else {
        MacAddr::docker_from_ipv4(p.ip)
    }
}

/// The EUI-64 link-local address of a MAC, as a host would configure.
fn link_local(mac: MacAddr) -> Ipv6Addr {
    let m = mac.0.map(u16::from);
    Ipv6Addr::new(
        0xfe80,
        0,
        0,
        0,
        (m[0] ^ 2) << 8 | m[1],
        m[2] << 8 | 0xff,
        0xfe << 8 | m[3],
        m[4] << 8 | m[5],
    )
}

fuzz_target!(|data: &[u8]| {
    // Every input twice: on one switch, and on two shards as the daemon
    // runs them (`[dataplane] threads = 2`).
    for shards in [1, 2] {
        let mut h = Harness::new(shards);
        let mut r = Reader(data);
        for _ in 0..MAX_STEPS {
            if r.0.len() < 3 + HDR_LEN + 2 {
                break;
            }
            let port = r.u8() as usize % NPORTS;
            let clock = r.u8();
            let kind = r.u8();
            let vnet = VnetHdr::parse(&r.array());
            let len = r.u16() as usize;
            let body = r.take(len);
            h.step(port, clock, kind, vnet, body);
        }
    }
});

struct PortState {
    /// `None` while unplugged.
    id: Option<PortId>,
    /// The test's end of the port; kept after detaching, to check (i).
    handle: MemoryHandle,
}

/// The last TCP or UDP header the gateway (the NAT) sent a port, for
/// templates that answer it.
#[derive(Debug, Clone, Copy)]
struct LastSeg {
    /// The far end as the container sees it.
    remote: Ipv4Addr,
    sport: u16,
    dport: u16,
    ack: u32,
    /// seq + payload + SYN + FIN: what acknowledges all of it.
    seq_end: u32,
}

#[derive(Debug, Clone, Copy, Default)]
struct Replies {
    tcp: Option<LastSeg>,
    udp: Option<LastSeg>,
}

/// What a step was, for (j) and (m).
#[derive(Clone, Copy)]
enum StepKind {
    /// A frame from `ingress`; `routed` is its IPv4 destination, transport
    /// destination port (0 for ICMP) and protocol, when it is an untagged
    /// IPv4 packet.
    Frame {
        ingress: usize,
        routed: Option<(IpAddr, u16, u8)>,
    },
    /// Feed, poll event, tick, replug: no packet from a container.
    Host,
}

struct Harness {
    /// One switch, or the shards of a data path: port `i` is owned (read)
    /// by shard `i % shards.len()`; the others hold a send-only handle on
    /// it under the same id, and learned MACs are passed between shards
    /// after every step.
    shards: Vec<Switch>,
    /// Each shard's fake host (its NAT's sockets).
    fakes: Vec<IoLog>,
    nets: [NetworkId; 2],
    ports: Vec<PortState>,
    /// The frame being switched; reused, as the data path reuses its batch.
    buf: FrameBuf,
    /// The frame a template builds.
    frame: Vec<u8>,
    now: Time,
    /// Every (shard, token) registered so far, for stale events.
    tokens_seen: Vec<(usize, PollToken)>,
    /// Connects of each shard's fake already checked against (j).
    connects_checked: Vec<usize>,
    /// (MAC, IPv4 source) pairs each port has sent IPv4 from (l).
    sources: Vec<BTreeSet<([u8; 6], Ipv4Addr)>>,
    /// What the gateway last sent each port, for answering templates.
    replies: Vec<Replies>,
    /// A copy of a gateway frame, its checksum completed (e).
    scratch: FrameBuf,
}

impl Harness {
    fn new(n_shards: usize) -> Harness {
        let nat = NatConfig {
            max_flows: MAX_FLOWS,
            max_flows_per_container: MAX_FLOWS_PER_CONTAINER,
            ..NatConfig::default()
        };
        // One name table for all shards, as the daemon has.
        let names = lanyard::dns::shared_names();
        let mut shards = Vec::new();
        let mut fakes = Vec::new();
        for _ in 0..n_shards {
            let mut sw =
                Switch::with_names(NPORTS, nat.clone(), vec![dns_upstream()], names.clone());
            let (io, handle) = LoggedIo::new().expect("/dev/null");
            handle.fake.set_peers(fake_peers());
            // The NAT's and the DNS's host sockets.
            sw.set_host_io(Box::new(io));
            shards.push(sw);
            fakes.push(handle);
        }
        let mut nets = [NetworkId(0); 2];
        for sw in shards.iter_mut() {
            if n_shards > 1 {
                sw.enable_learn_sync();
            }
            nets = NETS.each_ref().map(|n| {
                sw.add_network(NetworkSpec {
                    name: n.name.into(),
                    subnet: n.subnet.parse().expect("subnet"),
                    gateway_ip: n.gateway.into(),
                    gateway_mac: MacAddr::docker_from_ipv4(n.gateway),
                    fdb_max_entries: n.fdb_max_entries,
                    fdb_max_per_port: n.fdb_max_per_port,
                    mac_aging: n.mac_aging,
                    nat: n.nat,
                    dns_ip: n.dns_ip.map(|ip| lanyard::config::DnsAddress { ip, serve: true }),
                    ipv6: (n.name == "a").then(|| lanyard::dataplane::NetworkSpec6 {
                        subnet: SUBNET6.parse().expect("subnet6"),
                        gateway: GATEWAY6,
                        link_local: None,
                        mtu: 65520,
                    }),
                })
            });
        }
        // The table is shared: one shard writes it (as the daemon's shard 0).
        for (i, p) in PORTS.iter().enumerate() {
            if !p.names.is_empty() {
                let names: Vec<String> = p.names.iter().map(|n| n.to_string()).collect();
                shards[0].set_names(nets[p.net], p.ip.into(), &format!("ctr{i}"), &names);
                if let Some(g) = global6(i) {
                    shards[0].set_names(nets[p.net], g.into(), &format!("ctr{i}"), &names);
                }
            }
        }
        let ports = (0..NPORTS)
            .map(|i| {
                let (id, handle) = attach(&mut shards, nets, i);
                PortState {
                    id: Some(id.expect("an empty MAC table has room")),
                    handle,
                }
            })
            .collect();
        let mut h = Harness {
            connects_checked: vec![0; n_shards],
            shards,
            fakes,
            nets,
            ports,
            buf: FrameBuf::new(),
            frame: Vec::new(),
            now: Time::ZERO,
            tokens_seen: Vec::new(),
            sources: vec![BTreeSet::new(); NPORTS],
            replies: vec![Replies::default(); NPORTS],
            scratch: FrameBuf::new(),
        };
        h.note_tokens();
        h
    }

    fn step(&mut self, port: usize, clock: u8, kind: u8, raw_vnet: VnetHdr, body: &[u8]) {
        if kind & HOST_STEP != 0 || clock & 0x80 != 0 || kind & HELD == 0 {
            self.end_turns();
        }
        if clock & 0x80 != 0 {
            self.now = self
                .now
                .saturating_add(Duration::from_secs((clock & 0x7f) as u64));
            for sw in self.shards.iter_mut() {
                sw.tick(self.now);
            }
            // What the timers sent is checked apart, as a host step's:
            // the frame below is not its cause.
            let sent = self.take_sent();
            if trace_enabled() {
                eprintln!("t={}ms tick (clock)", self.now.0 / 1_000_000);
                self.trace(&sent);
            }
            self.check(None, &sent);
            self.check_host(StepKind::Host, &BTreeSet::new());
        } else {
            self.now = self.now.saturating_add(Duration::from_millis(clock as u64));
        }

        if kind & HOST_STEP != 0 {
            self.host_step(kind & 7, body);
            return;
        }
        let shape = match kind & 7 {
            0 => None,
            1 => Some(Shape::Arp),
            2 => Some(Shape::Icmp4),
            3 => Some(Shape::Tcp4),
            4 => Some(Shape::Udp4),
            5 => Some(Shape::Tcp6),
            6 => Some(Shape::Udp6),
            _ => {
                self.replug(port);
                let sent = self.take_sent();
                self.check(None, &sent);
                self.check_host(StepKind::Host, &BTreeSet::new());
                return;
            }
        };
        let Some(ingress) = self.ports[port].id else {
            return; // unplugged: nothing to send from
        };
        let mut frame = std::mem::take(&mut self.frame);
        let vnet = match shape {
            Some(shape) => {
                let mode = (kind >> 4) & 3;
                Builder::new(port, Reader(body), self.replies[port])
                    .build(shape, mode, raw_vnet, &mut frame)
            }
            None => {
                frame.clear();
                frame.extend_from_slice(body);
                raw_vnet
            }
        };
        let routed = routed_dst(&frame);
        if frame.len() >= 34 && frame[12..14] == ethertype::IPV4.to_be_bytes() {
            let src = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
            let mac: [u8; 6] = frame[6..12].try_into().expect("6 bytes");
            self.sources[port].insert((mac, src));
        }

        if trace_enabled() {
            // Before switching, so a panic inside the switch follows it.
            eprintln!("t={}ms port {port} sends {vnet:?}", self.now.0 / 1_000_000);
            eprintln!("  {}", hex(&frame));
        }
        let dns_before = self.dns_tokens();
        self.buf.load(vnet, &frame);
        let owner = port % self.shards.len();
        if kind & HELD != 0 {
            self.shards[owner].handle_frame_in_turn(ingress, &mut self.buf, self.now);
        } else {
            self.shards[owner].handle_frame(ingress, &mut self.buf, self.now);
        }
        self.sync_learned();
        let sent = self.take_sent();
        if trace_enabled() {
            self.trace(&sent);
        }
        self.check(Some((port, vnet, &frame)), &sent);
        self.check_host(
            StepKind::Frame {
                ingress: port,
                routed,
            },
            &dns_before,
        );
        self.frame = frame;
    }

    /// Ends every shard's held turn (`kind & HELD`), and checks what that
    /// sent apart, as a host step's: the frame that follows is not its
    /// cause.
    fn end_turns(&mut self) {
        for sw in self.shards.iter_mut() {
            sw.end_turn();
        }
        let sent = self.take_sent();
        if trace_enabled() && sent.iter().any(|p| !p.is_empty()) {
            eprintln!("t={}ms the held turn ends", self.now.0 / 1_000_000);
            self.trace(&sent);
        }
        self.check(None, &sent);
        self.check_host(StepKind::Host, &BTreeSet::new());
    }

    fn take_sent(&self) -> Vec<Vec<(VnetHdr, Vec<u8>)>> {
        self.ports.iter().map(|p| p.handle.take_sent()).collect()
    }

    /// Feed, poll event or tick (see the top of the file).
    fn host_step(&mut self, op: u8, body: &[u8]) {
        match op % 3 {
            0 => {
                for f in &self.fakes {
                    f.feed(body);
                }
                if trace_enabled() {
                    eprintln!("t={}ms feed {}", self.now.0 / 1_000_000, hex(body));
                }
            }
            1 => {
                let sel = body.first().copied().unwrap_or(0);
                let ev = body.get(1).copied().unwrap_or(0) & 3;
                let (readable, writable) = match ev {
                    0 => (true, true),
                    e => (e & 1 != 0, e & 2 != 0),
                };
                let pool: Vec<(usize, PollToken)> = if sel & 0x80 != 0 {
                    self.tokens_seen.clone()
                } else {
                    self.fakes
                        .iter()
                        .enumerate()
                        .flat_map(|(s, f)| f.fake.tokens().into_iter().map(move |t| (s, t)))
                        .collect()
                };
                if let Some(&(s, token)) = pool.get((sel & 0x7f) as usize % pool.len().max(1)) {
                    if trace_enabled() {
                        eprintln!(
                            "t={}ms event shard {s} token {token:?} readable={readable} writable={writable}",
                            self.now.0 / 1_000_000
                        );
                    }
                    self.shards[s].host_event(token, readable, writable, self.now);
                } else if trace_enabled() {
                    eprintln!("t={}ms event: no token", self.now.0 / 1_000_000);
                }
            }
            _ => {
                for sw in self.shards.iter_mut() {
                    sw.tick(self.now);
                }
                if trace_enabled() {
                    eprintln!("t={}ms tick", self.now.0 / 1_000_000);
                }
            }
        }
        let sent = self.take_sent();
        if trace_enabled() {
            self.trace(&sent);
        }
        self.check(None, &sent);
        self.check_host(StepKind::Host, &BTreeSet::new());
    }

    /// DNS query tokens registered now, over all shards: (shard, slot,
    /// family).
    fn dns_tokens(&self) -> BTreeSet<(usize, u32, bool)> {
        self.fakes
            .iter()
            .enumerate()
            .flat_map(|(s, f)| {
                f.fake.tokens().into_iter().filter_map(move |t| match t {
                    PollToken::DnsQuery { slot, v6 } => Some((s, slot, v6)),
                    _ => None,
                })
            })
            .collect()
    }

    /// Remembers the tokens registered now (for stale events), at most 64.
    fn note_tokens(&mut self) {
        for (s, f) in self.fakes.iter().enumerate() {
            for t in f.fake.tokens() {
                if self.tokens_seen.len() < 64 && !self.tokens_seen.contains(&(s, t)) {
                    self.tokens_seen.push((s, t));
                }
            }
        }
    }

    /// (j), (k), (m): what the NAT asked of the host, and its table.
    fn check_host(&mut self, step: StepKind, dns_before: &BTreeSet<(usize, u32, bool)>) {
        for (s, f) in self.fakes.iter().enumerate() {
            let log = f.fake.log();
            assert!(
                log.connects.len() < FakeLog::KEEP,
                "the fake's connect log overflowed; (j) would miss some"
            );
            for &to in &log.connects[self.connects_checked[s]..] {
                check_connect(to, step);
            }
            self.connects_checked[s] = log.connects.len();
        }
        for (s, sw) in self.shards.iter().enumerate() {
            let (flows, busy) = sw.nat_flows();
            assert!(
                flows <= MAX_FLOWS,
                "(k) shard {s}'s NAT holds {flows} flows, bound {MAX_FLOWS}"
            );
            assert!(
                busy <= flows,
                "(k) shard {s}'s NAT has {busy} flows on its busy list but only {flows} flows"
            );
        }
        if let StepKind::Frame { ingress, .. } = step {
            if !NETS[PORTS[ingress].net].nat {
                let now = self.dns_tokens();
                let new: Vec<_> = now.difference(dns_before).collect();
                assert!(
                    new.is_empty(),
                    "(m) a frame from port {ingress} (internal network) opened upstream DNS queries (shard, slot, v6) {new:?}"
                );
            }
        }
        self.note_tokens();
    }

    /// What each shard learned, to the others (the data path sends it over
    /// a channel between rounds).
    fn sync_learned(&mut self) {
        if self.shards.len() < 2 {
            return;
        }
        let mut learned = Vec::new();
        for from in 0..self.shards.len() {
            learned.clear();
            self.shards[from].take_learned(&mut learned);
            for (to, sw) in self.shards.iter_mut().enumerate() {
                if to != from {
                    for l in &learned {
                        sw.apply_learned(*l, self.now);
                    }
                }
            }
        }
    }

    /// Unplugs port `i` if it is plugged in, plugs it back in if not.
    fn replug(&mut self, i: usize) {
        if let Some(id) = self.ports[i].id.take() {
            for sw in self.shards.iter_mut() {
                let port = sw.remove_port(id);
                assert!(port.is_some(), "remove_port({id}) found no port");
            }
        } else if let (Some(id), handle) = attach(&mut self.shards, self.nets, i) {
            self.ports[i] = PortState {
                id: Some(id),
                handle,
            };
        }
        if trace_enabled() {
            eprintln!(
                "t={}ms port {i} replugged: {:?}",
                self.now.0 / 1_000_000,
                self.ports[i].id
            );
        }
    }

    /// (a)–(i), (l) on what the ports received in one step; `input` is the
    /// frame switched, for a frame step.
    fn check(&mut self, input: Option<(usize, VnetHdr, &[u8])>, sent: &[Vec<(VnetHdr, Vec<u8>)>]) {
        // (c)
        // Learned MACs are bounded by `fdb_max_entries`; pinned endpoint
        // MACs (one per endpoint port) are counted apart.
        for sw in &self.shards {
            for (i, id) in self.nets.iter().enumerate() {
                let len = sw.fdb_len(*id);
                let pinned = PORTS.iter().filter(|p| p.net == i && !p.trusted).count();
                let bound = NETS[i].fdb_max_entries + pinned;
                assert!(
                    len <= bound,
                    "(c) network {} holds {len} MACs, bound {bound}",
                    NETS[i].name,
                );
            }
        }

        // (f)
        if let Some((ingress, _, frame)) = input {
            let spoofed = !PORTS[ingress].trusted
                && frame
                    .get(6..12)
                    .is_none_or(|src| src != port_mac(ingress).0);
            if spoofed {
                for (j, got) in sent.iter().enumerate() {
                    assert!(
                        got.is_empty(),
                        "(f) port {j} received {} frames from endpoint {ingress}'s frame with a foreign source MAC",
                        got.len()
                    );
                }
            }
        }

        for (j, got) in sent.iter().enumerate() {
            let egress = &PORTS[j];
            // (i)
            assert!(
                self.ports[j].id.is_some() || got.is_empty(),
                "(i) unplugged port {j} received {} frames",
                got.len()
            );
            for (h, f) in got {
                // (d)
                assert!(
                    egress.offloads.accepts(h),
                    "(d) port {j} with {:?} received a frame with {h:?}",
                    egress.offloads
                );
                if f.get(6..12) == Some(&gateway_mac(egress.net).0[..]) {
                    // The gateway's (or the NAT's, as the gateway): (e), (l).
                    self.check_gateway_frame(j, h, f);
                    continue;
                }
                // Forwarded: only in a frame step, and not back.
                let Some((ingress, vnet, frame)) = input else {
                    panic!(
                        "(b) port {j} received a frame not from its gateway in a host step: {}",
                        hex(f)
                    );
                };
                let net = PORTS[ingress].net;
                // (b)
                assert!(
                    egress.net == net,
                    "(b) port {j} (network {}) received a frame from port {ingress} (network {}): {}",
                    NETS[egress.net].name,
                    NETS[net].name,
                    hex(f)
                );
                // (a)
                assert!(
                    j != ingress,
                    "(a) port {j} received its own frame back (or one not from the gateway): {}",
                    hex(f)
                );
                // (g)
                check_forwarded(j, vnet, frame, h, f);
            }
        }
    }

    /// (e) and (l) for a frame from the gateway (or the NAT) to port `j`;
    /// remembers its TCP/UDP header for answering templates.
    fn check_gateway_frame(&mut self, j: usize, h: &VnetHdr, f: &[u8]) {
        let copy = &mut self.scratch;
        copy.load(*h, f);
        if lanyard::offload::finish_checksum(copy).is_err() {
            panic!(
                "(e) port {j} received a gateway frame whose partial checksum cannot be completed ({h:?}): {}",
                hex(f)
            );
        }
        let f = copy.frame();
        let p = SlicedPacket::from_ethernet(f).unwrap_or_else(|e| {
            panic!(
                "(e) gateway frame to port {j} does not parse ({e:?}, {h:?}): {}",
                hex(f)
            )
        });
        let ip = match &p.net {
            Some(NetSlice::Arp(_)) => return,
            Some(NetSlice::Ipv4(ip)) => ip,
            Some(NetSlice::Ipv6(_)) => return check_gateway_frame6(j, f, &p),
            other => panic!(
                "(e) gateway sent port {j} an unexpected packet {other:?}: {}",
                hex(f)
            ),
        };
        let hdr = ip.header();
        assert_eq!(
            fold(ones_sum(hdr.slice())),
            0xffff,
            "(e) gateway frame to port {j} has a bad IPv4 header checksum: {}",
            hex(f)
        );
        let total = hdr.total_len() as usize;
        // Frames shorter than Ethernet's minimum may be padded.
        assert!(
            total + 14 == f.len() || (f.len() == 60 && total + 14 < 60),
            "(e) gateway frame to port {j} of {} bytes says its IPv4 packet is {total}: {}",
            f.len(),
            hex(f)
        );
        let (src, dst) = (
            Ipv4Addr::from(hdr.source()),
            Ipv4Addr::from(hdr.destination()),
        );
        let dst_mac: [u8; 6] = f[0..6].try_into().expect("6 bytes");
        // (l)
        if PORTS[j].trusted {
            assert!(
                self.sources[j].contains(&(dst_mac, dst)),
                "(l) gateway frame to trusted port {j} goes to {} / {dst}, which it never sent from: {}",
                MacAddr(dst_mac),
                hex(f)
            );
        } else {
            assert!(
                dst_mac == port_mac(j).0 && dst == PORTS[j].ip,
                "(l) gateway frame to endpoint {j} goes to {} / {dst}, not the endpoint's {} / {}: {}",
                MacAddr(dst_mac),
                port_mac(j),
                PORTS[j].ip,
                hex(f)
            );
        }
        let l4 = ip.payload().payload;
        let pseudo =
            ones_sum(&hdr.source()) + ones_sum(&hdr.destination()) + (l4.len() & 0xffff) as u64;
        let (ok, what) = match &p.transport {
            Some(TransportSlice::Icmpv4(_)) => (fold(ones_sum(l4)) == 0xffff, "ICMP"),
            Some(TransportSlice::Tcp(t)) => {
                let seg_len = t.payload().len() as u32 + u32::from(t.syn()) + u32::from(t.fin());
                self.replies[j].tcp = Some(LastSeg {
                    remote: src,
                    sport: t.source_port(),
                    dport: t.destination_port(),
                    ack: t.acknowledgment_number(),
                    seq_end: t.sequence_number().wrapping_add(seg_len),
                });
                (
                    fold(pseudo + protocol::TCP as u64 + ones_sum(l4)) == 0xffff,
                    "TCP",
                )
            }
            Some(TransportSlice::Udp(u)) => {
                self.replies[j].udp = Some(LastSeg {
                    remote: src,
                    sport: u.source_port(),
                    dport: u.destination_port(),
                    ack: 0,
                    seq_end: 0,
                });
                let field = u16::from_be_bytes([l4[6], l4[7]]);
                (
                    field != 0 && fold(pseudo + protocol::UDP as u64 + ones_sum(l4)) == 0xffff,
                    "UDP",
                )
            }
            other => panic!(
                "(e) gateway sent port {j} an unexpected transport {other:?}: {}",
                hex(f)
            ),
        };
        assert!(
            ok,
            "(e) gateway frame to port {j} has a bad {what} checksum ({h:?} as sent): {}",
            hex(f)
        );
    }
}

/// (e) and (l) for an IPv6 frame from the gateway (or the NAT) to port `j`:
/// it parses, its length and transport checksum are right, and it goes to
/// the port's own MAC and IPv6 addresses, or to all nodes.
fn check_gateway_frame6(j: usize, f: &[u8], p: &SlicedPacket<'_>) {
    let Some(NetSlice::Ipv6(ip)) = &p.net else {
        unreachable!("called for IPv6")
    };
    let hdr = ip.header();
    let total = hdr.payload_length() as usize + 40;
    assert!(
        total + 14 == f.len() || (f.len() == 60 && total + 14 < 60),
        "(e) gateway frame to port {j} of {} bytes says its IPv6 packet is {total}: {}",
        f.len(),
        hex(f)
    );
    let dst = Ipv6Addr::from(hdr.destination());
    let dst_mac: [u8; 6] = f[0..6].try_into().expect("6 bytes");
    let all_nodes = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
    // (l)
    if dst == all_nodes {
        assert_eq!(
            dst_mac,
            [0x33, 0x33, 0, 0, 0, 1],
            "(l) all-nodes frame to port {j}: {}",
            hex(f)
        );
    } else if !PORTS[j].trusted {
        assert!(
            dst_mac == port_mac(j).0
                && (Some(dst) == global6(j)
                    || dst == link_local(port_mac(j))
                    || dst.segments()[..4] == [0xfd00, 0x172, 0x17, 0]),
            "(l) gateway frame to endpoint {j} goes to {} / {dst}: {}",
            MacAddr(dst_mac),
            hex(f)
        );
    }
    let (next, l4) = (hdr.next_header().0, &f[54..54 + total - 40]);
    let pseudo =
        ones_sum(&hdr.source()) + ones_sum(&hdr.destination()) + l4.len() as u64 + next as u64;
    assert!(
        matches!(next, 6 | 17 | 58),
        "(e) gateway sent port {j} IPv6 with next header {next}: {}",
        hex(f)
    );
    assert_eq!(
        fold(pseudo + ones_sum(l4)),
        0xffff,
        "(e) gateway frame to port {j} has a bad checksum (next header {next}): {}",
        hex(f)
    );
}

/// Network A's IPv6 subnet and gateway.
const SUBNET6: &str = "fd00:172:17::/64";
const GATEWAY6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, 1);

/// An endpoint's IPv6 address on network A (::2, ::3 as IPAM hands out).
fn global6(port: usize) -> Option<Ipv6Addr> {
    let p = &PORTS[port];
    (p.net == 0 && !p.trusted)
        .then(|| Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, port as u16 + 2))
}

/// The destination, transport destination port (0 for ICMP and others)
/// and protocol (IPv6: the upper layer after the extension headers) of an
/// untagged IPv4 or IPv6 frame.
fn routed_dst(f: &[u8]) -> Option<(IpAddr, u16, u8)> {
    if f.len() >= 54 && f[12..14] == ethertype::IPV6.to_be_bytes() {
        let ip = lanyard::wire::ipv6::Ipv6Packet::new_checked(&f[14..]).ok()?;
        let upper = ip.upper_layer().ok()?;
        let l4 = 14 + upper.offset;
        let port = match upper.protocol {
            protocol::TCP | protocol::UDP => f.get(l4 + 2..l4 + 4).map_or(0, |p| be16(p, 0) as u16),
            _ => 0,
        };
        return Some((ip.dst().into(), port, upper.protocol));
    }
    if f.len() < 34 || f[12..14] != ethertype::IPV4.to_be_bytes() {
        return None;
    }
    let dst = Ipv4Addr::new(f[30], f[31], f[32], f[33]);
    let proto = f[23];
    let l4 = 14 + (f[14] & 0x0f) as usize * 4;
    let port = match proto {
        protocol::TCP | protocol::UDP => f.get(l4 + 2..l4 + 4).map_or(0, |p| be16(p, 0) as u16),
        _ => 0,
    };
    Some((dst.into(), port, proto))
}

/// (j): a host connect the NAT made in a step, against the policy.
fn check_connect(to: SocketAddr, step: StepKind) {
    let StepKind::Frame {
        ingress,
        routed: Some((dst, dport, proto)),
    } = step
    else {
        panic!("(j) the NAT connected to {to} in a step without a packet asking for it");
    };
    let net = PORTS[ingress].net;
    let gw: IpAddr = match dst {
        IpAddr::V4(_) => NETS[net].gateway.into(),
        IpAddr::V6(_) => GATEWAY6.into(),
    };
    let lo: IpAddr = match dst {
        IpAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
        IpAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
    };
    let icmp = proto == protocol::ICMP || proto == 58;
    if dst == gw {
        // The gateway's address: DNS over TCP, or the host's loopback for
        // the one endpoint that may reach it.
        let dns_tcp = SocketAddr::from((Ipv4Addr::LOCALHOST, FAKE_SERVICE_PORT));
        if dport == 53 {
            assert!(
                to == dns_tcp && proto == protocol::TCP,
                "(j) a packet (protocol {proto}) from port {ingress} to the gateway's port 53 made the NAT connect to {to}"
            );
            return;
        }
        assert!(
            ingress == LOOPBACK_PORT
                && NETS[net].nat
                && !icmp
                && to == SocketAddr::new(lo, dport),
            "(j) a packet (protocol {proto}) from port {ingress} to the gateway's port {dport} made the NAT connect to {to}"
        );
        return;
    }
    assert!(
        NETS[net].nat,
        "(j) a packet from port {ingress} on internal network {} made the NAT connect to {to}",
        NETS[net].name
    );
    assert!(
        !is_host_local(to.ip()),
        "(j) a packet from port {ingress} to {dst}:{dport} made the NAT connect to host-local {to}"
    );
    assert!(
        to.is_ipv4() == dst.is_ipv4(),
        "(j) the NAT connected to {to} for a packet to {dst}:{dport}"
    );
    assert!(
        to.ip() == dst && (icmp || to.port() == dport),
        "(j) a packet from port {ingress} to {dst}:{dport} (protocol {proto}) made the NAT connect to {to}"
    );
    match to.ip() {
        IpAddr::V4(a) => {
            assert!(
                !a.is_broadcast() && !a.is_multicast(),
                "(j) the NAT connected to group address {to}"
            );
            assert!(
                !on_subnet(net, a),
                "(j) the NAT connected to {to}, on the sender's own subnet"
            );
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            assert!(
                !a.is_multicast() && s[0] & 0xffc0 != 0xfe80,
                "(j) the NAT connected to group or link-local address {to}"
            );
            assert!(
                !(s[..4] == [0xfd00, 0x172, 0x17, 0]),
                "(j) the NAT connected to {to}, on the sender's own subnet"
            );
        }
    }
}

/// A descriptor for a published port's listener: the fake host never reads
/// it, so /dev/null will do.
fn listener() -> Option<OwnedFd> {
    std::fs::File::open("/dev/null").ok().map(OwnedFd::from)
}

/// Attaches port `i` of the topology as a new memory port, under id `i`:
/// to its owner shard, and as a send-only handle to the others. The id is
/// `None` when a shard refuses it (no room for the endpoint's static MAC);
/// then no shard keeps it. Port 0's published ports go to its owner.
fn attach(shards: &mut [Switch], nets: [NetworkId; 2], i: usize) -> (Option<PortId>, MemoryHandle) {
    let p = &PORTS[i];
    let (port, handle) = MemoryPort::with_offloads(QUEUE, p.offloads);
    let policy = if p.trusted {
        PortPolicy::TRUSTED
    } else {
        let policy = PortPolicy::endpoint(port_mac(i), p.ip);
        match global6(i) {
            Some(g) => policy.with_ipv6(Some(g), SUBNET6.parse().ok()),
            None => policy,
        }
    };
    let spec = PortSpec {
        name: format!("p{i}"),
        network: nets[p.net],
        policy,
        mtu: p.mtu,
        allow_host_loopback: i == LOOPBACK_PORT,
        loopback_unreachable: false,
    };
    let id = PortId(i as u32);
    let owner = i % shards.len();
    let mut port: Option<Box<dyn Port>> = Some(Box::new(port));
    let mut added = Vec::new();
    // The others first, as the data path does.
    let order = (0..shards.len()).filter(|s| *s != owner).chain([owner]);
    for s in order {
        let p = if s == owner {
            port.take().expect("the owner goes last")
        } else {
            port.as_ref().expect("still here").share()
        };
        match shards[s].add_port_with_id(id, p, spec.clone()) {
            Ok(()) => added.push(s),
            Err(SwitchError::FdbFull) => {
                for a in added {
                    shards[a].remove_port(id);
                }
                return (None, handle);
            }
            Err(e) => panic!("add_port(p{i}) on shard {s} failed: {e}"),
        }
    }
    if i == PUBLISHED_PORT {
        let maps = [(Protocol::Tcp, 8080, 80), (Protocol::Udp, 5353, 53)];
        let forwards: Vec<(OwnedFd, Mapping)> = maps
            .iter()
            .filter_map(|&(proto, host, container_port)| {
                Some((
                    listener()?,
                    Mapping {
                        proto,
                        host: SocketAddr::from((Ipv4Addr::UNSPECIFIED, host)),
                        container_port,
                    },
                ))
            })
            .collect();
        // Registering can fail when the script says so: then the port has
        // none this time.
        let _ = shards[owner].add_forwards(id, forwards);
    }
    (Some(id), handle)
}

fn trace_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LANYARD_FUZZ_TRACE").is_some())
}

impl Harness {
    /// Prints what one step did, for a person reading what an input does.
    fn trace(&self, sent: &[Vec<(VnetHdr, Vec<u8>)>]) {
        for (j, p) in self.ports.iter().enumerate() {
            let owner = j % self.shards.len();
            if let Some(c) = p.id.and_then(|id| self.shards[owner].counters(id)) {
                if c.total_drops() > 0 {
                    eprintln!("  port {j} drops so far: {:?}", c.drops_by_name());
                }
            }
            for (h, f) in &sent[j] {
                eprintln!("  -> port {j} {h:?}\n     {}", hex(f));
            }
        }
        for (s, sw) in self.shards.iter().enumerate() {
            for fl in sw.conntrack(self.now) {
                eprintln!(
                    "  shard {s} flow {} {} -> {} (host {}) {} out {} in {}",
                    fl.proto,
                    fl.container,
                    fl.remote,
                    fl.target,
                    fl.state,
                    fl.bytes_out,
                    fl.bytes_in
                );
            }
            let tokens: Vec<String> = self.fakes[s]
                .fake
                .tokens()
                .iter()
                .map(|t| format!("{t:?}"))
                .collect();
            eprintln!("  shard {s} tokens {tokens:?}");
        }
        let fdb: Vec<Vec<usize>> = self
            .shards
            .iter()
            .map(|sw| self.nets.iter().map(|n| sw.fdb_len(*n)).collect())
            .collect();
        eprintln!("  fdb sizes {fdb:?}");
    }
}

/// (g): a frame delivered to a port other than the ingress one is the
/// ingress frame, as the egress port's offloads allow.
fn check_forwarded(egress: usize, vnet: VnetHdr, sent: &[u8], h: &VnetHdr, got: &[u8]) {
    let offloads = PORTS[egress].offloads;
    if offloads.accepts(&vnet) {
        assert!(
            *h == vnet && got == sent,
            "(g) port {egress} takes {vnet:?} but received a different frame ({h:?}):\n sent {}\n got  {}",
            hex(sent),
            hex(got)
        );
        return;
    }
    if vnet.is_gso() {
        check_segment(egress, vnet, got);
        return;
    }
    // The partial checksum was completed in place: only those two bytes
    // may differ.
    let field = vnet.csum_start as usize + vnet.csum_offset as usize;
    let same = got.len() == sent.len()
        && got[..field] == sent[..field]
        && got[field + 2..] == sent[field + 2..];
    assert!(
        same,
        "(g) port {egress} received a frame changed beyond its checksum field at {field}:\n sent {}\n got  {}",
        hex(sent),
        hex(got)
    );
}

/// (h): a segment cut from a GSO super-frame checksums correctly.
/// Garbage in may give segments etherparse cannot parse, or whose transport
/// header it finds elsewhere than where the sender's `csum_start` put it;
/// only segments whose layout both agree on are checked.
fn check_segment(egress: usize, vnet: VnetHdr, seg: &[u8]) {
    // Lengths first, read directly: a wrong one can make etherparse refuse
    // the segment, which would hide it from the checksum check below. The
    // segmenter admitted the layout, so these offsets are in the segment.
    let (l3, et) = match u16::from_be_bytes([seg[12], seg[13]]) {
        ethertype::VLAN | ethertype::QINQ => (18, u16::from_be_bytes([seg[16], seg[17]])),
        et => (14, et),
    };
    let (declared, actual) = match et {
        ethertype::IPV4 => (be16(seg, l3 + 2), seg.len() - l3),
        _ => (be16(seg, l3 + 4), seg.len() - l3 - 40),
    };
    assert_eq!(
        declared,
        actual,
        "(h) segment to port {egress} declares an IP length of {declared} for {actual} bytes: {}",
        hex(seg)
    );

    let Ok(p) = SlicedPacket::from_ethernet(seg) else {
        return;
    };
    let l4: &[u8] = match &p.transport {
        Some(TransportSlice::Tcp(t)) => t.slice(),
        Some(TransportSlice::Udp(u)) => u.slice(),
        _ => return,
    };
    let proto = match &p.transport {
        Some(TransportSlice::Tcp(_)) => protocol::TCP,
        _ => protocol::UDP,
    };
    if l4.as_ptr() as usize - seg.as_ptr() as usize != vnet.csum_start as usize {
        return;
    }
    let pseudo = match &p.net {
        Some(NetSlice::Ipv4(ip)) => {
            let h = ip.header();
            assert_eq!(
                fold(ones_sum(h.slice())),
                0xffff,
                "(h) segment to port {egress} has a bad IPv4 header checksum: {}",
                hex(seg)
            );
            ones_sum(&h.source()) + ones_sum(&h.destination()) + (l4.len() & 0xffff) as u64
        }
        Some(NetSlice::Ipv6(ip)) => {
            let h = ip.header();
            ones_sum(&h.source()) + ones_sum(&h.destination()) + l4.len() as u64
        }
        _ => return,
    };
    assert_eq!(
        fold(pseudo + proto as u64 + ones_sum(l4)),
        0xffff,
        "(h) segment to port {egress} has a bad transport checksum: {}",
        hex(seg)
    );
}

fn hex(b: &[u8]) -> String {
    // Frames can be 64 KiB; the head is what tells them apart.
    let mut s: String = b.iter().take(128).map(|x| format!("{x:02x}")).collect();
    if b.len() > 128 {
        s.push_str(&format!("... ({} bytes)", b.len()));
    }
    s
}

fn be16(b: &[u8], at: usize) -> usize {
    u16::from_be_bytes([b[at], b[at + 1]]) as usize
}

/// One's-complement sum of big-endian 16-bit words (RFC 1071), unfolded.
/// The harness has its own rather than lanyard's `wire::checksum`, so a bug
/// there shows up in what lanyard sends, not in the frames built to test it.
fn ones_sum(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)]) as u64)
        .sum()
}

fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

/// Reads fields from fuzz input; past its end every read gives zeros, so a
/// short body still makes a complete frame (with the default choices).
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes(self.array())
    }

    fn u32(&mut self) -> u32 {
        u32::from_be_bytes(self.array())
    }

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for b in &mut a {
            *b = self.u8();
        }
        a
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Arp,
    Icmp4,
    Tcp4,
    Udp4,
    Tcp6,
    Udp6,
}

/// `tweak` bits of IP templates: the ways a sender can get a frame wrong.
mod tweak {
    pub const BAD_IP_CSUM: u8 = 0x01;
    pub const BAD_L4_CSUM: u8 = 0x02;
    /// The IPv4 total length (IPv6 payload length) is read from the body.
    pub const RAW_IP_LEN: u8 = 0x04;
    pub const VLAN: u8 = 0x08;
    /// Bits 4-5: words of IPv4 options (NOPs).
    pub const OPTIONS_SHIFT: u8 = 4;
    pub const MORE_FRAGMENTS: u8 = 0x40;
    /// IPv4 TCP and UDP: answer the last segment (datagram) the gateway
    /// sent this port — its source as destination, its ports swapped, and
    /// for TCP `seq = its ack + seq`, `ack = its end + ack` — so that zero
    /// fields continue the conversation exactly, whatever the NAT's random
    /// initial sequence number was. Without one, the fields are as given.
    pub const REPLY: u8 = 0x80;
}

/// Builds a template frame sent by port `port`, taking its fields from the
/// body in this order:
///
/// ```text
/// dst_mac_sel src_mac_sel [tweak [vlan_tci:u16]]   Ethernet (tweak: not ARP)
/// ARP:   op sender_ip_sel target_ip_sel target_mac:[6]
/// IPv4:  src_ip_sel dst_ip_sel ttl^64 ident:u16 [ip_len:u16]
/// IPv6:  src_sel dst_sel [ip_len:u16]
/// ICMP:  type code rest:u32
/// TCP:   sport:u16 dport:u16 seq:u32 ack:u32 flags^SYN window:u16
/// UDP:   sport:u16 dport:u16
/// then   payload_len:u16, payload filled with the remaining bytes, repeated
/// ```
///
/// Selectors (and the few fields XORed with a default) make an all-zero
/// body a valid frame from the port's own identity to the gateway. With
/// the `REPLY` tweak the IPv4 destination selector is still read but the
/// destination is the last segment's source, and the ports are XORed with
/// its (swapped) ones.
struct Builder<'a> {
    port: usize,
    r: Reader<'a>,
    replies: Replies,
}

impl<'a> Builder<'a> {
    fn new(port: usize, r: Reader<'a>, replies: Replies) -> Self {
        Builder { port, r, replies }
    }

    fn net(&self) -> usize {
        PORTS[self.port].net
    }

    /// 0 the gateway, 1 broadcast, 2 some port's MAC (either network), 3 any.
    fn dst_mac(&mut self) -> MacAddr {
        let sel = self.r.u8();
        match sel % 4 {
            0 => gateway_mac(self.net()),
            1 => MacAddr::BROADCAST,
            2 => port_mac((sel / 4) as usize % NPORTS),
            _ => MacAddr(self.r.array()),
        }
    }

    /// Mostly the port's own MAC (for a trusted port one of the hosts
    /// behind it); sometimes another port's (spoofing) or anything.
    fn src_mac(&mut self) -> MacAddr {
        let sel = self.r.u8();
        match sel % 8 {
            7 => MacAddr(self.r.array()),
            6 => port_mac((sel / 8) as usize % NPORTS),
            _ if PORTS[self.port].trusted && sel != 0 => uplink_host_mac(self.net(), sel >> 3),
            _ => port_mac(self.port),
        }
    }

    /// 0 the port's own address, 1 the gateway, 2 some port's address,
    /// 3 the subnet broadcast, 4 the limited broadcast, 5 unspecified,
    /// 6-7 any (usually off-subnet: routed to the gateway).
    fn ip(&mut self, sel: u8) -> Ipv4Addr {
        let net = self.net();
        match sel % 8 {
            0 => PORTS[self.port].ip,
            1 => NETS[net].gateway,
            2 => PORTS[(sel / 8) as usize % NPORTS].ip,
            3 => NETS[net].broadcast,
            4 => Ipv4Addr::BROADCAST,
            5 => Ipv4Addr::UNSPECIFIED,
            _ => Ipv4Addr::from(self.r.array::<4>()),
        }
    }

    fn build(mut self, shape: Shape, mode: u8, raw_vnet: VnetHdr, out: &mut Vec<u8>) -> VnetHdr {
        out.clear();
        let dst = self.dst_mac();
        let src = self.src_mac();
        out.extend_from_slice(&dst.0);
        out.extend_from_slice(&src.0);
        if shape == Shape::Arp {
            out.extend_from_slice(&ethertype::ARP.to_be_bytes());
            self.arp(src, out);
            return if mode == 3 {
                raw_vnet
            } else {
                VnetHdr::default()
            };
        }

        let tw = self.r.u8();
        if tw & tweak::VLAN != 0 {
            out.extend_from_slice(&ethertype::VLAN.to_be_bytes());
            out.extend_from_slice(&self.r.u16().to_be_bytes());
        }
        let v6 = matches!(shape, Shape::Tcp6 | Shape::Udp6);
        let reply = match shape {
            _ if tw & tweak::REPLY == 0 => None,
            Shape::Tcp4 => self.replies.tcp,
            Shape::Udp4 => self.replies.udp,
            _ => None,
        };
        // Ports swapped, sequence numbers continued (see `tweak::REPLY`).
        let (sport0, dport0, seq0, ack0) =
            reply.map_or((0, 0, 0, 0), |r| (r.dport, r.sport, r.ack, r.seq_end));
        let et = if v6 { ethertype::IPV6 } else { ethertype::IPV4 };
        out.extend_from_slice(&et.to_be_bytes());

        let proto = match shape {
            Shape::Icmp4 => protocol::ICMP,
            Shape::Tcp4 | Shape::Tcp6 => protocol::TCP,
            _ => protocol::UDP,
        };
        let l3 = out.len();
        let mut pseudo_v4 = None;
        let mut pseudo_v6 = None;
        let mut raw_len = None;
        if v6 {
            let src_sel = self.r.u8();
            let dst_sel = self.r.u8();
            // Mostly what gets past port security: its link-local, its
            // global address on network A; else any.
            let src_ip = match src_sel {
                0 => link_local(src),
                1..=0x7f => global6(self.port).unwrap_or_else(|| link_local(src)),
                _ => Ipv6Addr::from(self.r.array::<16>()),
            };
            let dst_ip = match dst_sel % 6 {
                0 => link_local(port_mac((dst_sel / 6) as usize % NPORTS)),
                1 => Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1),
                // The gateway: its services, the host's loopback.
                2 => GATEWAY6,
                // Off the subnet, through the NAT (the fake's peers are
                // any address).
                3 => Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(dst_sel)),
                4 => global6((dst_sel / 6) as usize % NPORTS).unwrap_or(GATEWAY6),
                _ => Ipv6Addr::from(self.r.array::<16>()),
            };
            if tw & tweak::RAW_IP_LEN != 0 {
                raw_len = Some(self.r.u16());
            }
            out.extend_from_slice(&[0x60, 0, 0, 0, 0, 0, proto, 64]);
            out.extend_from_slice(&src_ip.octets());
            out.extend_from_slice(&dst_ip.octets());
            pseudo_v6 = Some((src_ip, dst_ip));
        } else {
            let src_sel = self.r.u8();
            let dst_sel = self.r.u8();
            let src_ip = self.ip(src_sel);
            // XOR 1: a zero selector means the gateway.
            let dst_ip = self.ip(dst_sel ^ 1);
            let dst_ip = reply.map_or(dst_ip, |r| r.remote);
            let ttl = self.r.u8() ^ 64;
            let ident = self.r.u16();
            if tw & tweak::RAW_IP_LEN != 0 {
                raw_len = Some(self.r.u16());
            }
            let opt_words = (tw >> tweak::OPTIONS_SHIFT) & 3;
            let frag: u16 = if tw & tweak::MORE_FRAGMENTS != 0 {
                0x2000
            } else {
                0x4000
            };
            out.push(0x45 + opt_words);
            out.push(0);
            out.extend_from_slice(&[0, 0]); // total length, below
            out.extend_from_slice(&ident.to_be_bytes());
            out.extend_from_slice(&frag.to_be_bytes());
            out.extend_from_slice(&[ttl, proto, 0, 0]);
            out.extend_from_slice(&src_ip.octets());
            out.extend_from_slice(&dst_ip.octets());
            out.resize(out.len() + 4 * opt_words as usize, 1); // NOP options
            pseudo_v4 = Some((src_ip, dst_ip));
        }
        let l4 = out.len();

        let csum_offset = match shape {
            Shape::Icmp4 => {
                let t = self.r.u8();
                // Mostly echo requests, which the gateway answers.
                let ty = if t < 0xc0 { 8 } else { t & 0x3f };
                out.extend_from_slice(&[ty, self.r.u8(), 0, 0]);
                out.extend_from_slice(&self.r.u32().to_be_bytes());
                2
            }
            Shape::Tcp4 | Shape::Tcp6 => {
                out.extend_from_slice(&(self.r.u16() ^ sport0).to_be_bytes());
                out.extend_from_slice(&(self.r.u16() ^ dport0).to_be_bytes());
                out.extend_from_slice(&self.r.u32().wrapping_add(seq0).to_be_bytes());
                out.extend_from_slice(&self.r.u32().wrapping_add(ack0).to_be_bytes());
                out.extend_from_slice(&[5 << 4, self.r.u8() ^ 0x02]); // SYN by default
                out.extend_from_slice(&self.r.u16().to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
                16
            }
            _ => {
                out.extend_from_slice(&(self.r.u16() ^ sport0).to_be_bytes());
                out.extend_from_slice(&(self.r.u16() ^ dport0).to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // length, checksum
                6
            }
        };
        let l4_hdr_len = out.len() - l4;

        let payload_len = self.r.u16() as usize;
        let pattern = self.r.take(usize::MAX);
        // Stay below MAX_FRAME_LEN, which the switch refuses outright.
        let payload_len = payload_len.min(lanyard::frame::MAX_FRAME_LEN - 1 - out.len());
        if pattern.is_empty() {
            out.resize(out.len() + payload_len, 0);
        } else {
            out.extend(pattern.iter().cycle().take(payload_len));
        }
        let l4_len = out.len() - l4;

        // Lengths. Ones that do not fit 16 bits become 0, as a GSO
        // super-frame over 64 KiB carries (BIG TCP).
        let ip_len_field = |n: usize| u16::try_from(n).unwrap_or(0);
        if v6 {
            let n = raw_len.unwrap_or(ip_len_field(l4_len));
            out[l3 + 4..l3 + 6].copy_from_slice(&n.to_be_bytes());
        } else {
            let n = raw_len.unwrap_or(ip_len_field(out.len() - l3));
            out[l3 + 2..l3 + 4].copy_from_slice(&n.to_be_bytes());
            let c = !fold(ones_sum(&out[l3..l4]));
            let c = if tw & tweak::BAD_IP_CSUM != 0 { !c } else { c };
            out[l3 + 10..l3 + 12].copy_from_slice(&c.to_be_bytes());
        }
        if matches!(shape, Shape::Udp4 | Shape::Udp6) {
            let n = ip_len_field(l4_len);
            out[l4 + 4..l4 + 6].copy_from_slice(&n.to_be_bytes());
        }

        // The transport checksum: complete, or (partial checksum and GSO)
        // the pseudo-header sum alone, as the sender's kernel leaves it.
        let pseudo = match (pseudo_v4, pseudo_v6) {
            (Some((s, d)), _) => {
                ones_sum(&s.octets())
                    + ones_sum(&d.octets())
                    + proto as u64
                    + (l4_len & 0xffff) as u64
            }
            (_, Some((s, d))) => {
                ones_sum(&s.octets()) + ones_sum(&d.octets()) + proto as u64 + l4_len as u64
            }
            _ => unreachable!(),
        };
        let pseudo = if shape == Shape::Icmp4 { 0 } else { pseudo };
        let field = l4 + csum_offset;
        let partial = mode == 1 || mode == 2;
        let c = if partial {
            fold(pseudo)
        } else {
            !fold(pseudo + ones_sum(&out[l4..]))
        };
        let c = if tw & tweak::BAD_L4_CSUM != 0 { !c } else { c };
        out[field..field + 2].copy_from_slice(&c.to_be_bytes());

        let needs_csum = VnetHdr {
            flags: flags::NEEDS_CSUM,
            csum_start: l4 as u16,
            csum_offset: csum_offset as u16,
            ..VnetHdr::default()
        };
        match mode {
            0 => VnetHdr::default(),
            1 => needs_csum,
            2 => VnetHdr {
                gso_type: match shape {
                    Shape::Udp4 | Shape::Udp6 => gso::UDP_L4,
                    Shape::Tcp6 => gso::TCPV6,
                    // ICMP claiming TCP GSO: a lie the switch must survive.
                    _ => gso::TCPV4,
                } | (raw_vnet.gso_type & gso::ECN),
                gso_size: if raw_vnet.gso_size == 0 {
                    1448
                } else {
                    raw_vnet.gso_size
                },
                hdr_len: (l4 + l4_hdr_len) as u16,
                ..needs_csum
            },
            _ => raw_vnet,
        }
    }

    fn arp(&mut self, src: MacAddr, out: &mut Vec<u8>) {
        let op = match self.r.u8() % 4 {
            0 | 1 => arp::OP_REQUEST,
            2 => arp::OP_REPLY,
            _ => self.r.u16(),
        };
        let sender_sel = self.r.u8();
        let target_sel = self.r.u8();
        let sender_ip = self.ip(sender_sel);
        // XOR 1: a zero selector asks for the gateway.
        let target_ip = self.ip(target_sel ^ 1);
        let target_mac = MacAddr(self.r.array());
        let start = out.len();
        out.resize(start + arp::PACKET_LEN, 0);
        ArpRepr {
            operation: op,
            sender_mac: src,
            sender_ip,
            target_mac,
            target_ip,
        }
        .emit(&mut out[start..]);
        // Ethernet minimum size, as a real sender pads.
        if out.len() < 60 {
            out.resize(60, 0);
        }
    }
}
