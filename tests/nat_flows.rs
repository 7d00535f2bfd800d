//! NAT TCP flows over long stretches of virtual time, driven through
//! `tests/common/natrig.rs`: a container that stops reading (a zero window
//! held for minutes while it answers every probe), one that goes silent
//! behind a zero window, and a port removed while thousands of its flows
//! have data in flight. No namespaces: the container reaches a std
//! listener on the host's 127.0.0.1 through the gateway's address (host
//! loopback allowed), the only traffic these tests make.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddrV4, TcpListener, TcpStream};
use std::time::Duration;

use common::frames::GW;
use common::natrig::*;
use lanyard::nat::NatConfig;
use lanyard::wire::tcp::flags;

const SHORT: Duration = Duration::from_millis(2);

fn listener() -> (TcpListener, SocketAddrV4) {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback listener");
    l.set_nonblocking(true).unwrap();
    let port = l.local_addr().unwrap().port();
    // The container reaches the host's loopback through the gateway.
    (l, SocketAddrV4::new(GW, port))
}

/// Pumps and follows `c` until the NAT's SYN-ACK came and the host
/// accepted; acknowledges it. Returns the host's end.
fn handshake(rig: &mut Rig, c: &mut CTcp, l: &TcpListener) -> TcpStream {
    rig.connect(c);
    rig.until("the NAT's SYN-ACK", Duration::from_secs(10), |r| {
        r.pump(SHORT);
        r.drain(|s, p| {
            c.on_frame(s, p);
        });
        c.rst_received || c.established()
    });
    assert!(!c.rst_received, "the host refused the connect");
    assert_eq!(c.syn_acks, 1);
    rig.ack(c);
    let mut host = None;
    rig.until("the host's accept", Duration::from_secs(10), |r| {
        r.pump(SHORT);
        match l.accept() {
            Ok((s, _)) => {
                host = Some(s);
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept: {e}"),
        }
    });
    let s = host.unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// The host's side of a connection: writes `total` bytes of the stream the
/// container expects, as fast as the socket takes them, then shuts down.
struct HostWriter {
    s: TcpStream,
    seed: u64,
    written: u64,
    total: u64,
    chunk: Vec<u8>,
    shut: bool,
}

impl HostWriter {
    fn new(s: TcpStream, seed: u64, total: u64) -> HostWriter {
        HostWriter {
            s,
            seed,
            written: 0,
            total,
            chunk: vec![0; 64 * 1024],
            shut: false,
        }
    }

    /// Writes what the socket takes now; true once everything is written
    /// (and the write side shut down).
    fn push(&mut self) -> bool {
        while self.written < self.total {
            let n = (self.total - self.written).min(self.chunk.len() as u64) as usize;
            fill_pattern(self.seed, self.written, &mut self.chunk[..n]);
            match self.s.write(&self.chunk[..n]) {
                Ok(k) => self.written += k as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => return false,
                Err(e) => panic!("host write: {e}"),
            }
        }
        if !self.shut {
            self.s.shutdown(Shutdown::Write).unwrap();
            self.shut = true;
        }
        true
    }
}

/// One round: pump, follow, acknowledge if anything asked for it.
fn round(rig: &mut Rig, c: &mut CTcp) {
    rig.pump(SHORT);
    rig.drain(|s, p| {
        c.on_frame(s, p);
    });
    if c.owe_ack {
        rig.ack(c);
    }
}

/// The flow's state as `lanyard conntrack` shows it.
fn conntrack_state(rig: &Rig, c: &CTcp) -> Option<String> {
    let inside = format!("{}:{}", rig.ip, c.sport);
    rig.sw
        .conntrack(rig.now)
        .into_iter()
        .find(|f| f.proto == "tcp" && f.container == inside)
        .map(|f| f.state)
}

/// A connection whose container has taken exactly its window of host data
/// and acknowledged it with a zero window; the host has more to send.
fn stalled_reader(total: u64) -> (Rig, CTcp, HostWriter) {
    let mut rig = Rig::new(Opts::default());
    let (l, dst) = listener();
    let mut c = CTcp::new(40001, dst);
    c.window = 65535;
    let host = handshake(&mut rig, &mut c, &l);
    let mut w = HostWriter::new(host, c.rx_seed, total);
    // The NAT sends until our window is full; then nothing more.
    rig.until(
        "the container's window filled",
        Duration::from_secs(10),
        |r| {
            w.push();
            r.pump(SHORT);
            r.drain(|s, p| {
                c.on_frame(s, p);
            });
            c.window_left() == 0
        },
    );
    assert_eq!(c.received, 65535, "a full window of host data");
    assert!(
        c.gso_frames >= 1,
        "host data larger than the MSS came as a super-frame"
    );
    assert_eq!((c.mismatches, c.beyond_window), (0, 0));
    // It stops reading: everything acknowledged, the window shut.
    c.window = 0;
    rig.ack(&mut c);
    assert_eq!(conntrack_state(&rig, &c).as_deref(), Some("established"));
    (rig, c, w)
}

#[test]
fn a_zero_window_the_container_answers_probes_for_stays_open_for_minutes() {
    const TOTAL: u64 = 4 << 20;
    let (mut rig, mut c, mut w) = stalled_reader(TOTAL);
    let start = rig.now;
    let step = Duration::from_millis(100);
    let mut checked = 0;
    // 150 s of virtual time behind a zero window, every probe answered
    // (with the zero window: the reader is still not reading).
    for i in 1..=1500u32 {
        rig.advance(step);
        rig.tick();
        w.push();
        round(&mut rig, &mut c);
        assert!(
            !c.rst_received,
            "the NAT reset a connection whose container answered every probe ({:?} into the pause, {} probes answered)",
            rig.now.saturating_sub(start),
            c.probes
        );
        assert_eq!(c.received, 65535, "no data past a zero window");
        assert_eq!(c.beyond_window, 0);
        assert_eq!(
            rig.sw.nat_flows(),
            (1, 1),
            "the flow, on the busy list for its persist timer"
        );
        if i % 100 == 0 {
            assert_eq!(
                conntrack_state(&rig, &c).as_deref(),
                Some("established"),
                "{:?} into the pause",
                rig.now.saturating_sub(start)
            );
            checked += 1;
        }
    }
    assert!(rig.now.saturating_sub(start) >= Duration::from_secs(120));
    assert_eq!(checked, 15);
    // Probes kept coming at the backed-off rate (every 3 s at most), and
    // every one was answered.
    assert!(
        c.probes >= 40,
        "the NAT probed the zero window ({} probes in 150 s)",
        c.probes
    );
    assert!(
        w.written > 65535,
        "the host had more to send during the pause"
    );
    // The reader reads again: everything the host sent arrives, in order,
    // byte for byte, then the host's FIN.
    c.window = 65535;
    rig.ack(&mut c);
    rig.until(
        "all the host's data after the pause",
        Duration::from_secs(60),
        |r| {
            w.push();
            r.advance(Duration::from_millis(1));
            round(r, &mut c);
            c.fin_received
        },
    );
    assert_eq!(c.received, TOTAL);
    assert_eq!(w.written, TOTAL);
    assert_eq!(c.mismatches, 0, "every byte as the host wrote it");
    assert_eq!((c.beyond_window, c.out_of_order), (0, 0));
    // The container closes too; the flow goes.
    rig.tcp(&mut c, flags::FIN | flags::ACK, 0);
    rig.until("the flow closed", Duration::from_secs(10), |r| {
        round(r, &mut c);
        r.flows() == 0
    });
    assert_eq!(
        rig.sw.nat_flows(),
        (0, 0),
        "gone from the table and the busy list"
    );
    let mut b = [0u8; 16];
    assert_eq!(
        w.s.read(&mut b).unwrap(),
        0,
        "the host saw the container's FIN"
    );
}

#[test]
fn a_zero_window_nobody_answers_probes_for_is_reset() {
    let (mut rig, mut c, mut w) = stalled_reader(1 << 20);
    let resets_before = rig.sw.nat_counters().tcp_resets_to_container;
    let start = rig.now;
    let step = Duration::from_millis(100);
    let mut reset_at = None;
    // The container is gone silent: it follows what arrives but answers
    // nothing, for up to 60 s of virtual time.
    for _ in 0..600 {
        rig.advance(step);
        rig.tick();
        w.push();
        rig.pump(SHORT);
        rig.drain(|s, p| {
            c.on_frame(s, p);
        });
        if c.rst_received {
            reset_at = Some(rig.now.saturating_sub(start));
            break;
        }
    }
    let after = reset_at.expect("the NAT resets a flow whose zero window nobody answers");
    assert!(
        c.probes >= 5,
        "probes went unanswered first ({} probes)",
        c.probes
    );
    assert!(
        after >= Duration::from_secs(20),
        "not reset before ~30 s of silence (after {after:?})"
    );
    assert_eq!(
        rig.sw.nat_counters().tcp_resets_to_container,
        resets_before + 1
    );
    assert_eq!(
        rig.sw.nat_flows(),
        (0, 0),
        "the flow is gone, busy list too"
    );
    assert!(conntrack_state(&rig, &c).is_none());
    // The host side was reset too.
    let mut b = [0u8; 4096];
    rig.until("the host's reset", Duration::from_secs(10), |_| {
        match w.s.read(&mut b) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => true,
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            // The container never sent data: anything readable, or a clean
            // EOF, would not be the abort it must be.
            Ok(n) => panic!("the host read {n} bytes instead of a reset"),
            Err(e) => panic!("host read: {e}"),
        }
    });
}

/// Drains the ring into per-connection state: connections are indexed by
/// their container port from `base`.
fn follow_all(rig: &mut Rig, conns: &mut [CTcp], base: u16) {
    rig.drain(|s, p| {
        let i = s.dst_port.wrapping_sub(base) as usize;
        if let Some(c) = conns.get_mut(i) {
            c.on_frame(s, p);
        }
    });
}

#[test]
fn removing_a_port_with_thousands_of_busy_flows_removes_every_flow() {
    const N: usize = 2000;
    const BASE: u16 = 20000;
    const DATA: u64 = 1000;
    let fd_limit = lanyard::sys::raise_fd_limit();
    assert!(
        fd_limit >= 2 * N as u64 + 64,
        "this test needs {} descriptors, the limit is {fd_limit}",
        2 * N + 64
    );
    let mut rig = Rig::new(Opts {
        nat: NatConfig {
            max_flows: 4096,
            max_flows_per_container: 4096,
            ..NatConfig::default()
        },
        // One tick retransmits for every flow at once.
        ring_slots: 2 * N,
        ..Opts::default()
    });
    // A backlog for a batch of connects at once (std's is 128).
    let l: TcpListener = lanyard::sys::sock::bind_listener(true, "127.0.0.1:0".parse().unwrap())
        .expect("a loopback listener")
        .into();
    l.set_nonblocking(true).unwrap();
    let dst = SocketAddrV4::new(GW, l.local_addr().unwrap().port());
    let mut conns: Vec<CTcp> = (0..N).map(|i| CTcp::new(BASE + i as u16, dst)).collect();
    let mut hosts: Vec<TcpStream> = Vec::with_capacity(N);
    // Open them in batches of 200: SYNs, SYN-ACKs, ACKs, accepts.
    for batch in (0..N).step_by(200) {
        let end = (batch + 200).min(N);
        for c in &mut conns[batch..end] {
            rig.connect(c);
        }
        rig.until("a batch of SYN-ACKs", Duration::from_secs(20), |r| {
            r.pump(SHORT);
            follow_all(r, &mut conns, BASE);
            conns[batch..end].iter().all(|c| c.established())
        });
        for c in &mut conns[batch..end] {
            rig.ack(c);
        }
        rig.until("a batch of accepts", Duration::from_secs(20), |r| {
            r.pump(SHORT);
            loop {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(true).unwrap();
                        hosts.push(s);
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("accept: {e}"),
                }
            }
            hosts.len() == end
        });
    }
    assert_eq!(rig.flows(), N);
    assert!(conns.iter().all(|c| !c.rst_received));
    // Every host end sends data the container never acknowledges.
    let chunk = vec![7u8; DATA as usize];
    for h in &mut hosts {
        h.write_all(&chunk).unwrap();
    }
    rig.until(
        "every flow's data at the container",
        Duration::from_secs(30),
        |r| {
            r.pump(SHORT);
            follow_all(r, &mut conns, BASE);
            conns.iter().all(|c| c.received == DATA)
        },
    );
    assert_eq!(rig.ring.overflowed(), 0);
    // Unacknowledged: each flow is on the busy list, and its timer
    // retransmits after the RTO (200 ms).
    let retransmits = rig.sw.nat_counters().tcp_retransmits;
    for _ in 0..6 {
        rig.advance(Duration::from_millis(50));
        rig.tick();
        rig.pump(SHORT);
        follow_all(&mut rig, &mut conns, BASE);
    }
    assert_eq!(rig.ring.overflowed(), 0);
    let retransmitted = rig.sw.nat_counters().tcp_retransmits - retransmits;
    assert!(
        retransmitted >= N as u64,
        "every flow's timer ran: {retransmitted} retransmissions for {N} flows"
    );
    assert!(
        conns.iter().all(|c| c.duplicates >= 1),
        "each container saw its data again"
    );
    let states = rig.sw.conntrack(rig.now);
    assert_eq!(states.len(), N);
    assert!(states.iter().all(|f| f.state == "established"));
    assert_eq!(
        rig.sw.nat_flows(),
        (N, N),
        "every flow has data in flight: all on the busy list, once"
    );
    // The port goes with all its flows.
    let removed = rig.sw.remove_port(rig.port);
    assert!(removed.is_some());
    assert_eq!(
        rig.sw.nat_flows(),
        (0, 0),
        "every flow left with its port, and left the busy list"
    );
    assert!(rig.sw.conntrack(rig.now).is_empty());
    // Every host end is reset (closed with SO_LINGER 0).
    let mut b = [0u8; 64];
    let mut reset = 0;
    for h in &mut hosts {
        match h.read(&mut b) {
            Err(e) if e.kind() == ErrorKind::ConnectionReset => reset += 1,
            other => panic!("a host end was not reset: {other:?}"),
        }
    }
    assert_eq!(reset, N);
    // The timers have nothing left: ticking far on sends nothing anywhere
    // and keeps nothing (a stale busy entry would be looked at here).
    let tx_before = rig.frames_seen;
    let counters = rig.sw.nat_counters();
    for _ in 0..100 {
        rig.advance(Duration::from_millis(500));
        rig.tick();
        rig.pump(Duration::ZERO);
    }
    rig.drain(|_, _| {});
    assert_eq!(rig.frames_seen, tx_before);
    assert_eq!(
        rig.sw.nat_counters().tcp_retransmits,
        counters.tcp_retransmits
    );
    // A new endpoint's flow takes a freed slot; its timer works as any.
    let (p, ring) = lanyard::port::MemoryPort::recording(64, 0, lanyard::offload::Offloads::FULL);
    let ip = Ipv4Addr::new(172, 17, 0, 3);
    let port = rig
        .sw
        .add_port(
            Box::new(p),
            lanyard::dataplane::PortSpec {
                name: "c1".into(),
                network: rig.net,
                policy: lanyard::security::PortPolicy::endpoint(common::frames::mac_of(ip), ip),
                mtu: 1500,
                allow_host_loopback: true,
                loopback_unreachable: false,
            },
        )
        .unwrap();
    rig.port = port;
    rig.ring = ring;
    rig.ip = ip;
    rig.mac = common::frames::mac_of(ip);
    let mut c = CTcp::new(30000, dst);
    let h = handshake(&mut rig, &mut c, &l);
    let mut w = HostWriter::new(h, c.rx_seed, 500);
    w.push();
    rig.until("the new flow's data", Duration::from_secs(10), |r| {
        r.pump(SHORT);
        r.drain(|s, p| {
            c.on_frame(s, p);
        });
        c.received == 500 || c.fin_received
    });
    let before = rig.sw.nat_counters().tcp_retransmits;
    rig.advance(Duration::from_millis(250));
    rig.tick();
    rig.drain(|s, p| {
        c.on_frame(s, p);
    });
    assert_eq!(rig.sw.nat_counters().tcp_retransmits, before + 1);
    assert!(c.duplicates >= 1, "the new flow's data was retransmitted");
    assert_eq!(rig.sw.nat_flows(), (1, 1));
}

/// A container's new flows come out of its own budget (`[nat]
/// new_flows_per_sec`, `new_flows_burst`): past it the datagram that
/// would open a flow is dropped before any socket is made, and counted;
/// the budget refills at its rate. The ICMP errors the NAT sends it about
/// refused flows come out of its budget of errors: past it the refusal
/// stands, unsaid, and is counted.
#[test]
fn new_flows_and_the_nat_icmp_errors_are_budgeted_per_container() {
    use lanyard::ratelimit::{Rate, SourceLimits};
    use lanyard::stats::DropReason;
    use std::net::UdpSocket;
    let mut rig = Rig::new(Opts::default());
    rig.sw.set_source_limits(SourceLimits {
        new_flows: Rate::new(100, 20),
        ..SourceLimits::default()
    });
    let host = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    host.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let dst = SocketAddrV4::new(GW, host.local_addr().unwrap().port());
    // 50 new flows at one instant: the burst of 20 opens, 30 are dropped.
    for i in 0..50 {
        rig.udp(30000 + i, dst, 16, 1, 0);
    }
    assert_eq!(rig.flows(), 20);
    let dropped = |rig: &Rig, r| rig.sw.counters(rig.port).unwrap().dropped(r);
    assert_eq!(dropped(&rig, DropReason::FlowRateLimited), 30);
    assert_eq!(rig.sw.nat_counters().flows_refused_rate, 30);
    let mut got = 0;
    let mut buf = [0u8; 64];
    while got < 50 && host.recv_from(&mut buf).is_ok() {
        got += 1;
    }
    assert_eq!(got, 20, "only the flows made carried their datagram");
    // An existing flow is not a new one: it still carries.
    rig.udp(30000, dst, 16, 1, 0);
    assert!(host.recv_from(&mut buf).is_ok());
    // 100 ms later, 10 more.
    rig.advance(Duration::from_millis(100));
    for i in 100..150 {
        rig.udp(30000 + i, dst, 16, 1, 0);
    }
    assert_eq!(rig.flows(), 30);

    // Refusals by policy (the host's loopback as given) are answered with
    // "administratively prohibited", 10 at once at most.
    rig.sw.set_source_limits(SourceLimits::default());
    rig.drain(|_, _| {});
    for i in 0..30 {
        rig.udp(
            40000 + i,
            SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9),
            8,
            1,
            0,
        );
    }
    let mut errors = 0;
    rig.drain(|s, _| {
        if s.is_icmp() && (s.icmp_type, s.icmp_code) == (3, 13) {
            errors += 1;
        }
    });
    assert_eq!(errors, lanyard::ratelimit::ICMP_ERRORS.burst);
    assert_eq!(dropped(&rig, DropReason::HostLoopback), 30);
    assert_eq!(rig.sw.nat_counters().icmp_errors_limited, 20);
}

/// A published port's SYN to the container, answered by what a TIME_WAIT
/// of an earlier connection on the same 4-tuple sends (an ACK of the old
/// connection's numbers: a loopback client reuses its ports within
/// seconds). The NAT answers it with a RST at that ACK's number (which ends
/// the TIME_WAIT) and sends its SYN again at once — once: a second such ACK
/// gets its RST and no SYN, so a container cannot make it send SYNs at its
/// pace. The right SYN-ACK then completes the connection, and the client's
/// bytes reach the container.
#[test]
fn a_syn_answered_by_an_old_connections_ack_resets_it_and_goes_again() {
    use lanyard::publish::Protocol;
    let mut rig = Rig::new(Opts::default());
    let (addr, _) = rig.publish(Protocol::Tcp, 8080);
    let mut client = TcpStream::connect(addr).unwrap();
    client.write_all(b"hello").unwrap();
    let mut c = CTcp::new(8080, SocketAddrV4::new(GW, 0));
    let mut syns = Vec::new();
    rig.until("the NAT's SYN", Duration::from_secs(5), |r| {
        r.pump(SHORT);
        r.drain(|s, p| {
            if s.is_tcp() && s.has(flags::SYN) && syns.is_empty() {
                syns.push((SocketAddrV4::new(s.src_ip, s.src_port), s.seq));
                c.dst = SocketAddrV4::new(s.src_ip, s.src_port);
                // The container's side learns the SYN (its answer waits).
                c.on_frame(s, p);
            }
        });
        !syns.is_empty()
    });
    let isn = syns[0].1;
    // The old connection's ACK, twice over.
    let mut replies = Vec::new();
    for old_ack in [0x5000_0000u32, 0x5000_0100] {
        rig.tcp_raw(&c, 0x7000_0000, old_ack, flags::ACK, 1000, &[], 0, |_| {});
        rig.until("the RST", Duration::from_secs(5), |r| {
            r.pump(SHORT);
            r.drain(|s, _| {
                if s.is_tcp() && s.dst_port == 8080 {
                    replies.push((s.flags, s.seq));
                }
            });
            replies
                .iter()
                .any(|&(f, seq)| f & flags::RST != 0 && seq == old_ack)
        });
    }
    let rst_only = flags::RST;
    assert_eq!(
        replies,
        [
            (rst_only, 0x5000_0000),
            (flags::SYN, isn),
            (rst_only, 0x5000_0100)
        ],
        "a RST at each ACK's number; the SYN again after the first only"
    );
    // Now the container answers as a listener.
    rig.syn_ack(&mut c);
    rig.until("the client's bytes", Duration::from_secs(5), |r| {
        r.pump(SHORT);
        r.drain(|s, p| {
            c.on_frame(s, p);
        });
        c.received >= 5
    });
    assert!(c.established());
    drop(client.shutdown(Shutdown::Both));
}

/// A published port's client budget is spent on clients, not on looking
/// for them: ten clients one after the other (each batch of accepts ends
/// with one that finds nobody) all get through a burst of ten at once,
/// none deferred, and the eleventh, past the burst with no time passing,
/// is deferred (counted) and not taken until time refills the bucket.
#[test]
fn sequential_clients_get_the_whole_burst_and_the_next_one_waits() {
    use lanyard::publish::Protocol;
    use lanyard::ratelimit::Rate;
    let mut rig = Rig::new(Opts {
        nat: NatConfig {
            published_clients: Rate::new(1, 10),
            ..Opts::default().nat
        },
        ..Opts::default()
    });
    let (addr, _) = rig.publish(Protocol::Tcp, 8080);
    let syns_after = |rig: &mut Rig, limit: Duration| {
        let mut n = 0;
        let end = std::time::Instant::now() + limit;
        while n == 0 && std::time::Instant::now() < end {
            rig.pump(SHORT);
            rig.drain(|s, _| n += usize::from(s.is_tcp() && s.has(flags::SYN)));
        }
        n
    };
    let mut clients = Vec::new();
    for i in 0..10 {
        clients.push(TcpStream::connect(addr).unwrap());
        assert_eq!(
            syns_after(&mut rig, Duration::from_secs(5)),
            1,
            "client {i} taken at once"
        );
    }
    // At most the look after the tenth, which found the bucket empty.
    assert!(rig.sw.nat_counters().published_clients_limited <= 1);
    let limited = rig.sw.nat_counters().published_clients_limited;
    clients.push(TcpStream::connect(addr).unwrap());
    assert_eq!(
        syns_after(&mut rig, Duration::from_millis(300)),
        0,
        "the eleventh waits"
    );
    assert!(rig.sw.nat_counters().published_clients_limited > limited);
    // A second later the bucket has a token; the next tick looks again.
    rig.advance(Duration::from_secs(1));
    rig.tick();
    assert_eq!(
        syns_after(&mut rig, Duration::from_secs(5)),
        1,
        "and is taken then"
    );
}
