//! "No per-packet heap allocation on the forwarding path", checked: a
//! counting global allocator wraps the system one, and switching thousands
//! of frames (learned unicast, flooding, the software offload fallback,
//! gateway ARP and echo replies, IPv6 Neighbor and Router Solicitations and
//! echo to the gateway, its Router Advertisements) must not allocate once
//! the switch is set up.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use common::frames::*;
use lanyard::dataplane::{Learned, NetworkSpec, PortSpec, Switch};
use lanyard::frame::FrameBuf;
use lanyard::offload::Offloads;
use lanyard::port::{MemoryPort, Port};
use lanyard::security::PortPolicy;
use lanyard::time::Time;
use lanyard::wire::vnet::VnetHdr;
use lanyard::wire::{icmpv6, ipv6, MacAddr};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Only the test's own thread is counted: the test harness allocates on
    // its threads whenever it likes.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count_one() {
    if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const GW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, 1);

/// An ICMPv6 message `m` (checksum filled in) in a frame.
fn icmp6(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop: u8,
    m: &[u8],
) -> Vec<u8> {
    let mut f = vec![0u8; 54 + m.len()];
    lanyard::wire::ethernet::emit_header(
        &mut f,
        dst_mac,
        src_mac,
        lanyard::wire::ethernet::ethertype::IPV6,
    );
    ipv6::emit_header(
        &mut f[14..],
        src,
        dst,
        ipv6::next_header::ICMPV6,
        m.len() as u16,
        hop,
    );
    f[54..].copy_from_slice(m);
    icmpv6::Icmpv6Packet::new_checked(&mut f[54..])
        .unwrap()
        .fill_checksum(src, dst);
    f
}

#[test]
fn switching_frames_does_not_allocate() {
    const A: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);
    const B: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 3);
    const C: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 4);
    // `sw` is one shard of two: what it learns goes to `peer`, which holds
    // send-only handles on the same ports.
    let mut sw = Switch::new(16);
    let mut peer = Switch::new(16);
    sw.enable_learn_sync();
    peer.enable_learn_sync();
    let spec = NetworkSpec {
        name: "n".into(),
        subnet: "172.17.0.0/16".parse().unwrap(),
        gateway_ip: GW.into(),
        gateway_mac: gw_mac(),
        fdb_max_entries: 1024,
        fdb_max_per_port: 256,
        mac_aging: Duration::from_secs(300),
        nat: false,
        dns_ip: None,
        ipv6: Some(lanyard::dataplane::NetworkSpec6 {
            subnet: "fd00:172:17::/64".parse().unwrap(),
            gateway: GW6,
            link_local: None,
            mtu: 1500,
        }),
    };
    let net = sw.add_network(spec.clone());
    peer.add_network(spec);
    let mut add = |ip: Option<Ipv4Addr>, port: MemoryPort| {
        let spec = PortSpec {
            name: "p".into(),
            network: net,
            policy: ip.map_or(PortPolicy::TRUSTED, |ip| {
                let g = Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, ip.octets()[3].into());
                PortPolicy::endpoint(mac_of(ip), ip)
                    .with_ipv6(Some(g), "fd00:172:17::/64".parse().ok())
            }),
            mtu: 1500,
            allow_host_loopback: false,
            loopback_unreachable: false,
        };
        let share = port.share();
        let id = sw.add_port(Box::new(port), spec.clone()).unwrap();
        peer.add_port_with_id(id, share, spec).unwrap();
        id
    };
    let pa = add(Some(A), MemoryPort::sink_with_offloads(Offloads::FULL));
    let _pb = add(Some(B), MemoryPort::sink_with_offloads(Offloads::FULL));
    let _pc = add(Some(C), MemoryPort::sink());
    let pu = add(None, MemoryPort::sink());
    const D: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 5);
    let _pd = add(
        Some(D),
        MemoryPort::sink_with_offloads(Offloads {
            uso: true,
            ..Offloads::FULL
        }),
    );

    let (gso_h, gso) = tcp_gso(A, C, 30_000, 1448);
    let frames: Vec<(u32, VnetHdr, Vec<u8>)> = vec![
        (
            pa.0,
            VnetHdr::default(),
            udp_frame(mac_of(B), A, B, &[7; 64]),
        ),
        (
            pa.0,
            VnetHdr::default(),
            udp_frame(MacAddr::BROADCAST, A, Ipv4Addr::BROADCAST, b"b"),
        ),
        (pa.0, gso_h, gso),
        (pa.0, VnetHdr::default(), arp_request(A, GW)),
        (pa.0, VnetHdr::default(), echo_request(A, GW, &[1; 56])),
        (
            pu.0,
            VnetHdr::default(),
            eth(mac_of(A), MacAddr([2, 7, 7, 7, 7, 7]), 60),
        ),
        (
            pa.0,
            VnetHdr::default(),
            eth(MacAddr([2, 7, 7, 7, 7, 7]), mac_of(A), 60),
        ),
        (pa.0, VnetHdr::default(), vec![1, 2, 3]),
    ];
    let mut frames = frames;
    // To the IPv6 gateway: a Neighbor Solicitation, an echo request and a
    // Router Solicitation from A's global address.
    let a6 = Ipv6Addr::new(0xfd00, 0x172, 0x17, 0, 0, 0, 0, 2);
    let snm = ipv6::solicited_node(GW6);
    let mut ns = vec![icmpv6::kind::NEIGHBOR_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    ns.extend_from_slice(&GW6.octets());
    frames.push((
        pa.0,
        VnetHdr::default(),
        icmp6(mac_of(A), ipv6::multicast_mac(snm), a6, snm, 255, &ns),
    ));
    let echo = [icmpv6::kind::ECHO_REQUEST, 0, 0, 0, 0, 7, 0, 1, 1, 2, 3, 4];
    frames.push((
        pa.0,
        VnetHdr::default(),
        icmp6(mac_of(A), gw_mac(), a6, GW6, 64, &echo),
    ));
    let all_routers = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 2);
    let rs = [icmpv6::kind::ROUTER_SOLICIT, 0, 0, 0, 0, 0, 0, 0];
    frames.push((
        pa.0,
        VnetHdr::default(),
        icmp6(
            mac_of(A),
            ipv6::multicast_mac(all_routers),
            a6,
            all_routers,
            255,
            &rs,
        ),
    ));
    // IPv6 TCP and UDP super-frames, cut in software for the plain port C.
    for tcp in [true, false] {
        let (h, f) = gso6(tcp, mac_of(A), mac_of(C), 20_000, 1400);
        frames.push((pa.0, h, f));
    }
    let mut bufs: Vec<FrameBuf> = frames
        .iter()
        .map(|(_, h, f)| FrameBuf::from_frame(*h, f))
        .collect();
    // Warm up: the FDB learns, per-port state exists.
    for ((p, _, _), b) in frames.iter().zip(bufs.iter_mut()) {
        sw.handle_frame(lanyard::port::PortId(*p), b, Time::ZERO);
    }
    // MAC churn on the uplink: new MACs learned, refused at the bound,
    // aged out and learned again as time runs far past the aging time.
    let mut churn = FrameBuf::from_frame(
        VnetHdr::default(),
        &eth(MacAddr::BROADCAST, MacAddr([2, 9, 0, 0, 0, 0]), 60),
    );
    let mut learned: Vec<Learned> = Vec::with_capacity(256);
    COUNTING.with(|c| c.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for round in 0..2000u64 {
        let now = Time::from_secs(round);
        for ((p, h, f), b) in frames.iter().zip(bufs.iter_mut()) {
            b.load(*h, f);
            sw.handle_frame(lanyard::port::PortId(*p), b, now);
        }
        for i in 0..300u16 {
            let m = (round as u16)
                .wrapping_mul(300)
                .wrapping_add(i)
                .to_be_bytes();
            churn.frame_mut()[8..10].copy_from_slice(&m);
            sw.handle_frame(pu, &mut churn, now);
            if i % 50 == 0 {
                learned.clear();
                sw.take_learned(&mut learned);
                for l in &learned {
                    peer.apply_learned(*l, now);
                }
            }
        }
        if round % 100 == 0 {
            sw.tick(now);
        }
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(false));
    assert_eq!(after - before, 0, "allocations while switching frames");
    // The IPv6 gateway answered (NA, echo, RA per round; RAs on ticks too).
    let g = sw.snapshot(Time::ZERO).networks[0].gateway;
    assert!(
        g.neighbor_adverts >= 2000 && g.router_adverts >= 2000,
        "{g:?}"
    );
    // And the frames really went somewhere.
    let c = sw.counters(pa).unwrap();
    assert!(c.rx_packets > 10_000);
    assert!(
        peer.fdb_len(net) > 4,
        "the peer shard learned the uplink's MACs"
    );

    // The same frames with a capture running (`lanyard capture`): the tap
    // filters, copies into its pool and hands records to a writer (another
    // thread, not counted, giving the buffers back) without allocating.
    use lanyard::dataplane::tap::{Scope, Tap};
    let filter = lanyard::capture::Filter::parse("not (udp port 9 or host 10.9.9.9)").unwrap();
    let (tap, reader) = Tap::new(7, Scope::All, filter, 0, None);
    let tap = std::sync::Arc::new(tap);
    sw.add_tap(tap.clone());
    let written = std::sync::Arc::new(AtomicU64::new(0));
    let w = written.clone();
    let writer = std::thread::spawn(move || {
        while let Ok(r) = reader.records.recv_timeout(Duration::from_secs(2)) {
            w.fetch_add(1, Ordering::Relaxed);
            let _ = reader.give_back.send(r.data);
        }
    });
    COUNTING.with(|c| c.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for round in 0..500u64 {
        let now = Time::from_secs(3000 + round);
        for ((p, h, f), b) in frames.iter().zip(bufs.iter_mut()) {
            b.load(*h, f);
            sw.handle_frame(lanyard::port::PortId(*p), b, now);
        }
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(false));
    assert_eq!(after - before, 0, "allocations while capturing");
    sw.remove_tap(7);
    drop(tap);
    writer.join().unwrap();
    let got = written.load(Ordering::Relaxed);
    assert!(got > 5000, "the capture saw the frames: {got}");

    // Container → container UDP coalescing (`dataplane::coalesce`): a
    // turn's datagrams of one flow to a port that takes UDP super-frames,
    // gathered and written as one.
    let mut d = udp_frame(mac_of(D), A, D, &[3; 64]);
    let pseudo =
        lanyard::wire::checksum::pseudo_header_v4(A, D, lanyard::wire::ipv4::protocol::UDP, 72);
    d[40..42].copy_from_slice(&lanyard::wire::checksum::fold(pseudo).to_be_bytes());
    let dh = VnetHdr {
        flags: lanyard::wire::vnet::flags::NEEDS_CSUM,
        csum_start: 34,
        csum_offset: 6,
        ..VnetHdr::default()
    };
    let mut b = FrameBuf::new();
    let joined0 = sw.snapshot(Time::ZERO).udp_coalesced;
    COUNTING.with(|c| c.set(true));
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for round in 0..2000u64 {
        let now = Time::from_secs(4000 + round);
        for _ in 0..32 {
            b.load(dh, &d);
            sw.handle_frame_in_turn(pa, &mut b, now);
        }
        sw.end_turn();
    }
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(false));
    assert_eq!(after - before, 0, "allocations while coalescing");
    let joined = sw.snapshot(Time::ZERO).udp_coalesced - joined0;
    assert_eq!(joined, 2000 * 31, "each turn one super-frame of 32");
}
