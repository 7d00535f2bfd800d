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

mod common;

use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::frames::{gw_mac, GW};
use common::natrig::*;
use lanyard::stats::DropReason;

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
/// `seed` from offset `i`), switches them in one turn, and returns them as
/// (size, offset) for checking.
fn one_turn(rig: &mut Rig, sport: u16, dst: SocketAddrV4, seed: u64, sizes: &[usize]) {
    rig.queue = true;
    for (i, &n) in sizes.iter().enumerate() {
        rig.udp(sport, dst, n, seed, i as u64);
    }
    rig.queue = false;
    assert_eq!(rig.turn(), sizes.len(), "one turn read them all");
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
    one_turn(&mut rig, 40000, dst, 7, &sizes);
    let got = receive(&srv, sizes.len(), Duration::from_secs(5));
    check(&got, 7, &sizes, "one batch");
    let c1 = rig.sw.nat_counters();
    assert_eq!(c1.udp_flows - c0.udp_flows, 1, "one flow");
    assert_eq!(c1.udp_gso_batches - c0.udp_gso_batches, 1, "one send");
    assert_eq!(c1.udp_send_failed, c0.udp_send_failed);

    // Sizes that change: a shorter datagram ends a batch, a larger one
    // starts the next; a lone datagram is a plain send.
    let sizes = [100, 100, 50, 100, 200, 200, 200];
    one_turn(&mut rig, 40000, dst, 8, &sizes);
    let got = receive(&srv, sizes.len(), Duration::from_secs(5));
    check(&got, 8, &sizes, "changing sizes");
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
    one_turn(&mut rig, 42001, dst, 21, &[100; 5]);
    check(
        &receive(&srv, 5, Duration::from_secs(5)),
        21,
        &[100; 5],
        "small",
    );
    let c0 = rig.sw.nat_counters();
    assert_eq!(c0.udp_gso_batches, 1);

    // 2000-byte datagrams: the batch is refused (EINVAL), and its
    // datagrams go one by one, fragmented by the host as any would be.
    one_turn(&mut rig, 42000, dst, 22, &[2000; 3]);
    check(
        &receive(&srv, 3, Duration::from_secs(5)),
        22,
        &[2000; 3],
        "refused batch",
    );
    let c1 = rig.sw.nat_counters();
    assert_eq!(c1.udp_gso_refused, 1, "the host refused one batch");
    assert_eq!(c1.udp_gso_batches, c0.udp_gso_batches);
    assert_eq!(c1.udp_send_failed, 0);

    // That flow is not batched again; the other one still is.
    one_turn(&mut rig, 42000, dst, 23, &[2000; 3]);
    check(
        &receive(&srv, 3, Duration::from_secs(5)),
        23,
        &[2000; 3],
        "after",
    );
    one_turn(&mut rig, 42001, dst, 24, &[100; 5]);
    check(
        &receive(&srv, 5, Duration::from_secs(5)),
        24,
        &[100; 5],
        "small again",
    );
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
