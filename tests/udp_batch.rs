//! The NAT's UDP batching toward the host (`nat::udp`, "Batching toward the
//! host"): a flow's datagrams within one port turn leave in one UDP GSO
//! send, and arrive as the datagrams the container sent — each whole, in
//! order, with its own length — while what may not go (the host's loopback
//! as given, a spoofed source) is still refused in the middle of a batch.
//! Where the host refuses the batch (a route whose MTU the segments do not
//! fit) the datagrams go one by one. Driven through `tests/common/natrig.rs`
//! (one memory port, the real NAT on real sockets); the container reaches a
//! UDP socket on the host's 127.0.0.1 through the gateway's address, and
//! the fallback runs in a network namespace of its own (`unshare -Urn`).
//! A published UDP port batches both ways too: a client's datagrams reach
//! the container as one super-frame, the container's answers to it leave
//! in one send, and each client still gets only its own.

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::frames::{assert_checksums_valid, gw_mac, mac_of, udp_frame, GW};
use common::natrig::*;
use lanyard::dataplane::{PortSpec, Switch};
use lanyard::frame::FrameBuf;
use lanyard::offload::{finish_checksum, segment, Offloads};
use lanyard::port::MemoryPort;
use lanyard::publish::Protocol;
use lanyard::security::PortPolicy;
use lanyard::stats::DropReason;
use lanyard::time::Time;
use lanyard::wire::checksum;
use lanyard::wire::ipv4::protocol;
use lanyard::wire::vnet::{flags, gso, VnetHdr};

/// A UDP server on the host's loopback, and the address the container
/// reaches it at (the gateway's, host loopback allowed).
fn server() -> (UdpSocket, SocketAddrV4) {
    let s = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).expect("a loopback UDP socket");
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = s.local_addr().unwrap().port();
    (s, SocketAddrV4::new(GW, port))
}

/// Every datagram the server gets within `limit` (stops early once `want`
/// have come and a further 200 ms brought nothing).
fn receive(s: &UdpSocket, want: usize, limit: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + limit;
    let mut got = Vec::new();
    let mut buf = vec![0u8; 65536];
    while Instant::now() < deadline {
        match s.recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(_) if got.len() >= want => break,
            Err(_) => {}
        }
    }
    got
}

/// Queues datagrams of `sizes` from `sport` to `dst` (payload `i` is stream
/// `seed` from offset `i`) and switches them in one turn.
fn one_turn(rig: &mut Rig, sport: u16, dst: SocketAddrV4, seed: u64, sizes: &[usize]) {
    rig.queue = true;
    for (i, &n) in sizes.iter().enumerate() {
        rig.udp(sport, dst, n, seed, i as u64);
    }
    rig.queue = false;
    assert_eq!(rig.turn(), sizes.len(), "one turn read them all");
}

/// [`one_turn`], and what `srv` then receives is exactly those datagrams.
fn turn_arrives(
    rig: &mut Rig,
    srv: &UdpSocket,
    sport: u16,
    dst: SocketAddrV4,
    seed: u64,
    sizes: &[usize],
    what: &str,
) {
    one_turn(rig, sport, dst, seed, sizes);
    check(
        &receive(srv, sizes.len(), Duration::from_secs(5)),
        seed,
        sizes,
        what,
    );
}

/// The datagrams `got` are exactly `sizes` of stream `seed`, in order.
fn check(got: &[Vec<u8>], seed: u64, sizes: &[usize], what: &str) {
    let lens: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(lens, sizes, "{what}: the datagrams' lengths, in order");
    for (i, d) in got.iter().enumerate() {
        assert_eq!(
            pattern_mismatches(seed, i as u64, d),
            0,
            "{what}: datagram {i} arrived as sent"
        );
    }
}

#[test]
fn one_flows_datagrams_in_a_turn_leave_in_one_send_and_arrive_as_sent() {
    let mut rig = Rig::new(Opts::default());
    let (srv, dst) = server();
    let c0 = rig.sw.nat_counters();

    // 40 datagrams of 100 bytes and a shorter last one: one batch.
    let mut sizes = vec![100; 40];
    sizes.push(37);
    turn_arrives(&mut rig, &srv, 40000, dst, 7, &sizes, "one batch");
    let c1 = rig.sw.nat_counters();
    assert_eq!(c1.udp_flows - c0.udp_flows, 1, "one flow");
    assert_eq!(c1.udp_gso_batches - c0.udp_gso_batches, 1, "one send");
    assert_eq!(c1.udp_send_failed, c0.udp_send_failed);

    // Sizes that change: a shorter datagram ends a batch, a larger one
    // starts the next; a lone datagram is a plain send.
    let sizes = [100, 100, 50, 100, 200, 200, 200];
    turn_arrives(&mut rig, &srv, 40000, dst, 8, &sizes, "changing sizes");
    let c2 = rig.sw.nat_counters();
    // [100 100 50] [100] [200 200 200]
    assert_eq!(c2.udp_gso_batches - c1.udp_gso_batches, 2);

    // Two flows interleaved: nothing to batch, everything arrives.
    let (srv_b, dst_b) = server();
    rig.queue = true;
    for i in 0..10u64 {
        rig.udp(40000, dst, 64, 9, i);
        rig.udp(40001, dst_b, 64, 10, i);
    }
    rig.queue = false;
    assert_eq!(rig.turn(), 20);
    check(
        &receive(&srv, 10, Duration::from_secs(5)),
        9,
        &[64; 10],
        "flow a",
    );
    check(
        &receive(&srv_b, 10, Duration::from_secs(5)),
        10,
        &[64; 10],
        "flow b",
    );
    let c3 = rig.sw.nat_counters();
    assert_eq!(
        c3.udp_gso_batches, c2.udp_gso_batches,
        "interleaved flows are sent as they come"
    );
    assert_eq!(c3.udp_flows - c2.udp_flows, 1, "flow b is new");
}

#[test]
fn what_may_not_go_is_refused_in_the_middle_of_a_batch_and_the_rest_arrives() {
    let mut rig = Rig::new(Opts::default());
    let (srv, dst) = server();
    // The same server as given: the host's loopback is reached only
    // through the gateway's address.
    let as_given = SocketAddrV4::new(Ipv4Addr::LOCALHOST, dst.port());
    let c0 = rig.sw.nat_counters();
    let drops = |rig: &Rig, r| rig.sw.counters(rig.port).unwrap().dropped(r);
    let (spoofed0, loopback0) = (
        drops(&rig, DropReason::SpoofedSrcIp),
        drops(&rig, DropReason::HostLoopback),
    );

    rig.queue = true;
    for i in 0..20u64 {
        rig.udp(41000, dst, 100, 11, i);
    }
    // Forbidden, between the batch's datagrams: to 127.0.0.1 as given, and
    // from a source that is not the container's.
    rig.udp(41000, as_given, 100, 99, 0);
    let own = rig.ip;
    rig.udp_with(
        Ipv4Addr::new(172, 17, 0, 99),
        41000,
        *dst.ip(),
        dst.port(),
        gw_mac(),
        100,
        |b| fill_pattern(98, 0, b),
    );
    assert_eq!(rig.ip, own);
    for i in 20..40u64 {
        rig.udp(41000, dst, 100, 11, i);
    }
    rig.queue = false;
    assert_eq!(rig.turn(), 42);

    let got = receive(&srv, 40, Duration::from_secs(5));
    check(&got, 11, &[100; 40], "the allowed datagrams");
    let c1 = rig.sw.nat_counters();
    assert_eq!(
        c1.loopback_refused - c0.loopback_refused,
        1,
        "127.0.0.1 as given refused"
    );
    // The refused datagram ends the first batch; the rest is a second.
    assert_eq!(c1.udp_gso_batches - c0.udp_gso_batches, 2);
    assert_eq!(
        drops(&rig, DropReason::SpoofedSrcIp) - spoofed0,
        1,
        "the spoofed source dropped"
    );
    assert_eq!(
        drops(&rig, DropReason::HostLoopback) - loopback0,
        1,
        "127.0.0.1 dropped"
    );
}

const CHILD: &str = "LANYARD_UDP_GSO_CHILD";
const FALLBACK: &str = "a_route_whose_mtu_the_segments_do_not_fit_gets_them_one_by_one";

/// Runs in its own network namespace, whose loopback has an MTU of 1500:
/// 2000-byte segments do not fit it, so the host refuses the batch.
fn fallback_in_namespace() {
    let st = Command::new("ip")
        .args(["link", "set", "lo", "mtu", "1500", "up"])
        .status()
        .expect("ip");
    assert!(st.success(), "lo's MTU set");
    let mut rig = Rig::new(Opts {
        mtu: 9000,
        ..Opts::default()
    });
    let (srv, dst) = server();

    // Allowed beside it: small datagrams of another flow batch as ever.
    turn_arrives(&mut rig, &srv, 42001, dst, 21, &[100; 5], "small");
    let c0 = rig.sw.nat_counters();
    assert_eq!(c0.udp_gso_batches, 1);

    // 2000-byte datagrams: the batch is refused (EMSGSIZE), and its
    // datagrams go one by one, fragmented by the host as any would be.
    turn_arrives(&mut rig, &srv, 42000, dst, 22, &[2000; 3], "refused batch");
    let c1 = rig.sw.nat_counters();
    assert_eq!(c1.udp_gso_refused, 1, "the host refused one batch");
    assert_eq!(c1.udp_gso_batches, c0.udp_gso_batches);
    assert_eq!(c1.udp_send_failed, 0);

    // That flow is not batched again; the other one still is.
    turn_arrives(&mut rig, &srv, 42000, dst, 23, &[2000; 3], "after");
    turn_arrives(&mut rig, &srv, 42001, dst, 24, &[100; 5], "small again");
    let c2 = rig.sw.nat_counters();
    assert_eq!(c2.udp_gso_refused, 1, "not tried again for that flow");
    assert_eq!(c2.udp_gso_batches, 2);
    println!("udp-gso-child: checked");
}

#[test]
fn a_route_whose_mtu_the_segments_do_not_fit_gets_them_one_by_one() {
    if std::env::var_os(CHILD).is_some() {
        fallback_in_namespace();
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let mut child = Command::new("unshare")
        .arg("-Urn")
        .arg(exe)
        .args([FALLBACK, "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("unshare -Urn (util-linux)");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the namespace's test ran past 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut out).unwrap();
    assert!(status.success(), "in the namespace: {status}\n{out}");
    // Not merely a run that matched no test.
    assert!(
        out.contains("udp-gso-child: checked"),
        "the scenario ran:\n{out}"
    );
}

/// A container's datagram as its TAP hands it over: the UDP checksum left
/// to offload (the pseudo-header sum in the field, `NEEDS_CSUM`).
fn partial(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> FrameBuf {
    let mut f = udp_frame(mac_of(dst), src, dst, payload);
    let pseudo = checksum::pseudo_header_v4(src, dst, protocol::UDP, (8 + payload.len()) as u16);
    f[40..42].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    FrameBuf::from_frame(
        VnetHdr {
            flags: flags::NEEDS_CSUM,
            csum_start: 34,
            csum_offset: 6,
            ..VnetHdr::default()
        },
        &f,
    )
}

/// The payloads of what a port was sent, super-frames cut apart, every
/// datagram's checksums checked by etherparse.
fn payloads(sent: &[(VnetHdr, Vec<u8>)]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut one = |b: &FrameBuf| {
        let mut b = FrameBuf::from_frame(b.vnet(), b.frame());
        finish_checksum(&mut b).unwrap();
        assert_checksums_valid(b.frame());
        out.push(b.frame()[42..].to_vec());
    };
    for (h, f) in sent {
        let b = FrameBuf::from_frame(*h, f);
        if h.is_gso() {
            let mut scratch = FrameBuf::new();
            segment(&b, &mut scratch, &mut one).unwrap();
        } else {
            one(&b);
        }
    }
    out
}

/// Container → container (`dataplane::coalesce`): one port turn's
/// datagrams of one flow to a port that takes UDP super-frames are
/// written as one, which is exactly those datagrams; to a port that does
/// not, each goes as it came; a spoofed one among them is dropped and
/// counted, and does not get in.
#[test]
fn container_datagrams_in_a_turn_go_to_a_neighbour_as_one_super_frame() {
    let mut sw = Switch::new(8);
    let net = sw.add_network(default_network());
    let uso = Offloads {
        uso: true,
        ..Offloads::FULL
    };
    let ip = |n| Ipv4Addr::new(172, 17, 0, n);
    let mut add = |n: u8, offloads| {
        let (p, h) = MemoryPort::recording(256, 256, offloads);
        let id = sw
            .add_port(
                Box::new(p),
                PortSpec {
                    name: format!("c{n}"),
                    network: net,
                    policy: PortPolicy::endpoint(mac_of(ip(n)), ip(n)),
                    mtu: 1500,
                    allow_host_loopback: false,
                    loopback_unreachable: false,
                },
            )
            .unwrap();
        (id, h)
    };
    let (a, ha) = add(2, uso);
    let (_b, hb) = add(3, uso);
    let (_c, hc) = add(4, Offloads::FULL);

    let want_b: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; 64]).collect();
    let drops0 = sw.counters(a).unwrap().dropped(DropReason::SpoofedSrcIp);

    for (i, d) in want_b.iter().enumerate() {
        let f = partial(ip(2), ip(3), d);
        assert!(ha.inject(f.vnet(), f.frame()));
        if i == 10 {
            // Its own MAC, another container's address: port security.
            let mut f = partial(ip(9), ip(3), &[0xee; 64]);
            f.frame_mut()[6..12].copy_from_slice(&mac_of(ip(2)).0);
            assert!(ha.inject(f.vnet(), f.frame()));
        }
    }
    let want_c: Vec<Vec<u8>> = (0..5u8).map(|i| vec![0x40 + i; 64]).collect();
    for d in &want_c {
        let f = partial(ip(2), ip(4), d);
        assert!(ha.inject(f.vnet(), f.frame()));
    }
    let joined0 = sw.snapshot(Time::ZERO).udp_coalesced;
    let mut bufs: Vec<FrameBuf> = (0..64).map(|_| FrameBuf::new()).collect();
    let polled = sw.poll_port(a, &mut bufs, Time::ZERO, || true).unwrap();
    assert_eq!(polled.frames, 26);

    let sent_b = hb.take_sent();
    assert_eq!(sent_b.len(), 1, "one write to b");
    assert_eq!(sent_b[0].0.gso_kind(), gso::UDP_L4);
    assert_eq!(
        payloads(&sent_b),
        want_b,
        "b: every datagram, in order, none other"
    );
    let sent_c = hc.take_sent();
    assert_eq!(sent_c.len(), 5, "c takes no super-frames: each as it came");
    assert!(sent_c.iter().all(|(h, _)| !h.is_gso()));
    assert_eq!(payloads(&sent_c), want_c);
    assert_eq!(
        sw.counters(a).unwrap().dropped(DropReason::SpoofedSrcIp) - drops0,
        1
    );
    assert_eq!(sw.snapshot(Time::ZERO).udp_coalesced - joined0, 19);
}

/// What the container was sent since the last call: each frame's vnet
/// header and bytes, oldest first.
fn sent_to_container(rig: &mut Rig) -> Vec<(VnetHdr, Vec<u8>)> {
    let mut out = Vec::new();
    rig.ring.for_each_sent(|h, b| out.push((*h, b.to_vec())));
    out
}

/// A frame's UDP source, as the container sees it.
fn udp_source(frame: &[u8]) -> SocketAddrV4 {
    let ip = Ipv4Addr::new(frame[26], frame[27], frame[28], frame[29]);
    SocketAddrV4::new(ip, u16::from_be_bytes([frame[34], frame[35]]))
}

/// Published port 5353/udp on the host's loopback: two clients, A sending
/// a burst, B one in the middle of it, A again. The container gets A's
/// first run as one super-frame, B's datagram, then A's second run, each
/// from the address that client is shown as (the gateway, a port of its
/// own). The container's answers in one turn — a run to A, one datagram to
/// B, and between them what the rule forbids (a port no client holds, a
/// spoofed source) — reach A in one send, exactly and in order, B with
/// its own, and the forbidden two nowhere.
#[test]
fn a_published_ports_clients_are_batched_both_ways_and_each_gets_only_its_own() {
    let mut rig = Rig::new(Opts {
        offloads: Offloads {
            uso: true,
            ..Offloads::FULL
        },
        // The rule under test is the published port's, not loopback's.
        allow_host_loopback: false,
        ..Opts::default()
    });
    let (addr, _) = rig.publish(Protocol::Udp, 5353);
    let client = || {
        let c = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        c.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        c
    };
    let (a, b) = (client(), client());
    let send = |c: &UdpSocket, seed: u64, from: u64, sizes: &[usize]| {
        let mut buf = vec![0u8; 2048];
        for (i, &n) in sizes.iter().enumerate() {
            fill_pattern(seed, from + i as u64, &mut buf[..n]);
            c.send_to(&buf[..n], addr).unwrap();
        }
    };
    let c0 = rig.sw.nat_counters();
    let mut a1 = vec![100; 20];
    a1.push(37);
    send(&a, 1, 0, &a1);
    send(&b, 2, 0, &[100]);
    send(&a, 3, 0, &[64; 10]);

    // One readiness event reads all 32.
    let mut got = Vec::new();
    rig.until(
        "the clients' datagrams at the container",
        Duration::from_secs(5),
        |r| {
            r.pump(Duration::from_millis(50));
            got.extend(sent_to_container(r));
            payloads(&got).len() >= 32
        },
    );
    assert_eq!(got.len(), 3, "three writes: A's run, B's datagram, A's run");
    assert!(got[0].0.is_gso() && got[2].0.is_gso() && !got[1].0.is_gso());
    assert_eq!(got[0].0.gso_kind(), gso::UDP_L4);
    let (seen_a, seen_b) = (udp_source(&got[0].1), udp_source(&got[1].1));
    assert_eq!(udp_source(&got[2].1), seen_a, "A is shown as one address");
    assert_eq!(
        *seen_a.ip(),
        GW,
        "a loopback client is shown as the gateway"
    );
    assert_ne!(seen_a, seen_b, "each client its own port");
    let all = payloads(&got);
    check(&all[..21], 1, &a1, "A's first run");
    check(&all[21..22], 2, &[100], "B's datagram");
    check(&all[22..], 3, &[64; 10], "A's second run");
    let c1 = rig.sw.nat_counters();
    assert_eq!(c1.udp_flows - c0.udp_flows, 2, "a flow per client");
    assert_eq!(c1.udp_super_frames - c0.udp_super_frames, 2);

    // The answers, in one turn.
    let refused0 = rig
        .sw
        .counters(rig.port)
        .unwrap()
        .dropped(DropReason::SpoofedSrcIp);
    let not_served0 = rig
        .sw
        .counters(rig.port)
        .unwrap()
        .dropped(DropReason::NotServed);
    rig.queue = true;
    let answers = [200usize; 30];
    for i in 0..15u64 {
        rig.udp(5353, seen_a, 200, 4, i);
    }
    // A port of the gateway that no client holds: the host's loopback,
    // which this container may not reach (and a new flow's attempt, which
    // ends A's first run).
    rig.udp(
        5353,
        SocketAddrV4::new(GW, seen_a.port().wrapping_add(7)),
        200,
        9,
        0,
    );
    // Another container's address as the source.
    rig.udp_with(
        Ipv4Addr::new(172, 17, 0, 99),
        5353,
        GW,
        seen_a.port(),
        gw_mac(),
        200,
        |p| fill_pattern(9, 1, p),
    );
    for i in 15..30u64 {
        rig.udp(5353, seen_a, 200, 4, i);
    }
    rig.udp(5353, seen_b, 100, 5, 0);
    rig.queue = false;
    assert_eq!(rig.turn(), 33);
    let c2 = rig.sw.nat_counters();
    check(
        &receive(&a, 30, Duration::from_secs(5)),
        4,
        &answers,
        "A's answers",
    );
    check(
        &receive(&b, 1, Duration::from_secs(5)),
        5,
        &[100],
        "B's answer",
    );
    assert_eq!(
        c2.udp_gso_batches - c1.udp_gso_batches,
        2,
        "A's two runs, one send each (the refused ones between them end the first)"
    );
    assert_eq!(c2.udp_send_failed, c1.udp_send_failed);
    assert_eq!(
        rig.sw
            .counters(rig.port)
            .unwrap()
            .dropped(DropReason::SpoofedSrcIp)
            - refused0,
        1,
        "the spoofed source"
    );
    assert_eq!(
        rig.sw
            .counters(rig.port)
            .unwrap()
            .dropped(DropReason::NotServed)
            - not_served0,
        1,
        "the unheld port: the host's loopback, which this container may not reach"
    );
    let icmp: Vec<_> = sent_to_container(&mut rig)
        .into_iter()
        .filter(|(_, f)| f[23] == protocol::ICMP)
        .map(|(_, f)| (f[34], f[35]))
        .collect();
    assert_eq!(icmp, [(3, 3)], "and is told so: port unreachable");
    // Nothing else reached either client.
    assert!(receive(&a, 0, Duration::from_millis(300)).is_empty());
    assert!(receive(&b, 0, Duration::from_millis(300)).is_empty());
}

/// A regression: a published port's new UDP client whose flow evicts a
/// connection the container is closing (the table full, conntrack's early
/// drop) must still reach the container as it sent it. The eviction resets
/// that connection toward the container, a frame built in the NAT's frame
/// buffer, where the client's datagram was received; it came out with the
/// reset's TCP header over its first 12 bytes. Next to it, the connection
/// it took the place of is reset, and the client after it (no room, nothing
/// evictable: its first client answered) is refused and counted.
#[test]
fn a_new_published_client_that_evicts_a_connection_arrives_intact() {
    use lanyard::nat::NatConfig;
    use lanyard::wire::tcp::flags;
    use std::net::TcpListener;

    let mut rig = Rig::new(Opts {
        nat: NatConfig {
            max_flows: 1,
            max_flows_per_container: 16,
            ..NatConfig::default()
        },
        ..Opts::default()
    });
    // The connection: to the host's loopback through the gateway,
    // established, then the container's FIN (synchronized, no longer
    // established both ways: a full table may take it).
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    l.set_nonblocking(true).unwrap();
    let mut c = CTcp::new(41000, SocketAddrV4::new(GW, l.local_addr().unwrap().port()));
    rig.connect(&mut c);
    rig.until("the NAT's SYN-ACK", Duration::from_secs(10), |r| {
        r.pump(Duration::from_millis(2));
        r.drain(|s, p| {
            c.on_frame(s, p);
        });
        c.rst_received || c.established()
    });
    assert!(c.established(), "the connection is up");
    rig.ack(&mut c);
    let mut host = None;
    rig.until("the host's accept", Duration::from_secs(10), |r| {
        r.pump(Duration::from_millis(2));
        host = l.accept().ok();
        host.is_some()
    });
    rig.tcp(&mut c, flags::FIN | flags::ACK, 0);
    rig.until("the FIN's acknowledgement", Duration::from_secs(10), |r| {
        r.pump(Duration::from_millis(2));
        r.drain(|s, p| {
            c.on_frame(s, p);
        });
        c.snd_una == c.snd_nxt
    });
    assert_eq!(rig.flows(), 1, "the table is full");

    let (addr, _) = rig.publish(Protocol::Udp, 5353);
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let mut d = [0u8; 100];
    fill_pattern(11, 0, &mut d);
    client.send_to(&d, addr).unwrap();
    let c0 = rig.sw.nat_counters();
    let mut datagram = None;
    rig.until("the client's datagram", Duration::from_secs(5), |r| {
        r.pump(Duration::from_millis(20));
        r.drain(|s, p| {
            if s.is_udp() && s.dst_port == 5353 {
                datagram = Some((SocketAddrV4::new(s.src_ip, s.src_port), p.to_vec()));
            } else {
                c.on_frame(s, p);
            }
        });
        datagram.is_some()
    });
    let c1 = rig.sw.nat_counters();
    assert_eq!(
        c1.flows_evicted - c0.flows_evicted,
        1,
        "the closing connection made room"
    );
    assert!(c.rst_received, "and was reset toward the container");
    let (seen, got) = datagram.unwrap();
    assert_eq!(got.len(), 100);
    assert_eq!(
        pattern_mismatches(11, 0, &got),
        0,
        "the datagram arrived as sent"
    );

    // The container answers (so that flow may not be evicted); a second
    // client then finds no room, and is refused and counted.
    client
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    rig.udp(5353, seen, 10, 12, 0);
    check(
        &receive(&client, 1, Duration::from_secs(5)),
        12,
        &[10],
        "the answer",
    );
    let other = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    other.send_to(&d, addr).unwrap();
    rig.until("the second client refused", Duration::from_secs(5), |r| {
        r.pump(Duration::from_millis(20));
        r.sw.nat_counters().flows_refused_full > c1.flows_refused_full
    });
    let mut more = 0;
    rig.drain(|s, _| more += usize::from(s.is_udp()));
    assert_eq!(
        more, 0,
        "nothing of the refused client's reached the container"
    );
}
