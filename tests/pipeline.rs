//! The whole switch over memory ports: learning, aging with an injected
//! clock, flooding, hairpin and isolation rules, table bounds, port
//! security, gateway replies and the software offload fallback. No
//! namespaces, no root.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::frames::*;
use lanyard::dataplane::{NetworkId, NetworkSpec, PortSpec, Switch};
use lanyard::frame::FrameBuf;
use lanyard::offload::Offloads;
use lanyard::port::{MemoryHandle, MemoryPort, PortId};
use lanyard::security::PortPolicy;
use lanyard::stats::DropReason;
use lanyard::time::Time;
use lanyard::wire::vnet::VnetHdr;
use lanyard::wire::MacAddr;

const A: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);
const B: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 3);
const C: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 4);

fn spec(name: &str, subnet: &str, gw: Ipv4Addr, fdb_max: usize, per_port: u32) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        subnet: subnet.parse().unwrap(),
        gateway_ip: gw.into(),
        gateway_mac: mac_of(gw),
        fdb_max_entries: fdb_max,
        fdb_max_per_port: per_port,
        mac_aging: Duration::from_secs(300),
        nat: false,
        dns_ip: None,
        ipv6: None,
    }
}

struct Rig {
    sw: Switch,
    net: NetworkId,
}

impl Rig {
    fn new() -> Rig {
        let mut sw = Switch::new(64);
        let net = sw.add_network(spec("default", "172.17.0.0/16", GW, 64, 8));
        Rig { sw, net }
    }

    fn endpoint(&mut self, ip: Ipv4Addr, offloads: Offloads) -> (PortId, MemoryHandle) {
        let (p, h) = MemoryPort::with_offloads(1024, offloads);
        let id = self
            .sw
            .add_port(
                Box::new(p),
                PortSpec {
                    name: ip.to_string(),
                    network: self.net,
                    policy: PortPolicy::endpoint(mac_of(ip), ip),
                    mtu: 1500,
                    allow_host_loopback: false,
                    loopback_unreachable: false,
                },
            )
            .unwrap();
        (id, h)
    }

    fn trusted(&mut self, net: NetworkId) -> (PortId, MemoryHandle) {
        let (p, h) = MemoryPort::new(1 << 16);
        let id = self
            .sw
            .add_port(
                Box::new(p),
                PortSpec {
                    name: "uplink".into(),
                    network: net,
                    policy: PortPolicy::TRUSTED,
                    mtu: 1500,
                    allow_host_loopback: false,
                    loopback_unreachable: false,
                },
            )
            .unwrap();
        (id, h)
    }

    fn send(&mut self, port: PortId, vnet: VnetHdr, frame: &[u8], now: Time) {
        let mut b = FrameBuf::from_frame(vnet, frame);
        self.sw.handle_frame(port, &mut b, now);
    }

    fn send_plain(&mut self, port: PortId, frame: &[u8]) {
        self.send(port, VnetHdr::default(), frame, Time::from_secs(1));
    }

    fn drops(&self, port: PortId, r: DropReason) -> u64 {
        self.sw.counters(port).unwrap().dropped(r)
    }
}

fn count(h: &MemoryHandle) -> usize {
    h.take_sent().len()
}

#[test]
fn endpoints_reach_each_other_by_unicast_without_flooding() {
    let mut r = Rig::new();
    let (pa, ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    let (_pc, hc) = r.endpoint(C, Offloads::NONE);
    // Endpoint MACs are pinned when they attach: A→B is unicast at once.
    r.send_plain(pa, &udp_frame(mac_of(B), A, B, b"hello"));
    let got = hb.take_sent();
    assert_eq!(got.len(), 1);
    assert_eq!(&got[0].1[42..], b"hello");
    assert_eq!(count(&hc), 0, "unicast must not flood");
    assert_eq!(count(&ha), 0, "never back out the ingress port");
    let ca = r.sw.counters(pa).unwrap();
    assert_eq!((ca.rx_packets, ca.total_drops()), (1, 0));
}

#[test]
fn broadcast_floods_to_all_but_ingress() {
    let mut r = Rig::new();
    let (pa, ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    let (_pc, hc) = r.endpoint(C, Offloads::NONE);
    r.send_plain(
        pa,
        &udp_frame(
            MacAddr::BROADCAST,
            A,
            Ipv4Addr::new(172, 17, 255, 255),
            b"x",
        ),
    );
    assert_eq!((count(&ha), count(&hb), count(&hc)), (0, 1, 1));
    // Multicast too.
    r.send_plain(
        pa,
        &udp_frame(
            MacAddr([0x01, 0, 0x5e, 0, 0, 0xfb]),
            A,
            Ipv4Addr::new(224, 0, 0, 251),
            b"m",
        ),
    );
    assert_eq!((count(&ha), count(&hb), count(&hc)), (0, 1, 1));
}

#[test]
fn unknown_unicast_floods_then_learning_makes_it_unicast() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (pu, hu) = r.trusted(r.net);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    let behind = MacAddr([2, 0xaa, 0, 0, 0, 1]);
    r.send_plain(pa, &eth(behind, mac_of(A), 60));
    assert_eq!((count(&hu), count(&hb)), (1, 1), "unknown unicast floods");
    // The host behind the uplink speaks: learned on the uplink.
    r.send_plain(pu, &eth(mac_of(A), behind, 60));
    r.send_plain(pa, &eth(behind, mac_of(A), 60));
    assert_eq!((count(&hu), count(&hb)), (1, 0), "learned: unicast only");
}

#[test]
fn learned_entries_age_out_with_the_injected_clock() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (pu, hu) = r.trusted(r.net);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    let behind = MacAddr([2, 0xaa, 0, 0, 0, 1]);
    r.send(
        pu,
        VnetHdr::default(),
        &eth(mac_of(A), behind, 60),
        Time::from_secs(10),
    );
    r.send(
        pa,
        VnetHdr::default(),
        &eth(behind, mac_of(A), 60),
        Time::from_secs(309),
    );
    assert_eq!((count(&hu), count(&hb)), (1, 0));
    // 300 s of silence from `behind`: its entry is gone and frames flood.
    r.send(
        pa,
        VnetHdr::default(),
        &eth(behind, mac_of(A), 60),
        Time::from_secs(311),
    );
    assert_eq!((count(&hu), count(&hb)), (1, 1));
    // The periodic sweep removes entries as well.
    r.send(
        pu,
        VnetHdr::default(),
        &eth(mac_of(A), behind, 60),
        Time::from_secs(400),
    );
    assert_eq!(r.sw.fdb_len(r.net), 3);
    r.sw.tick(Time::from_secs(701));
    assert_eq!(
        r.sw.fdb_len(r.net),
        2,
        "only the static endpoint entries remain"
    );
}

#[test]
fn never_hairpins_to_a_destination_behind_the_ingress_port() {
    let mut r = Rig::new();
    let (pu, hu) = r.trusted(r.net);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    let h1 = MacAddr([2, 0xaa, 0, 0, 0, 1]);
    let h2 = MacAddr([2, 0xaa, 0, 0, 0, 2]);
    r.send_plain(pu, &eth(MacAddr::BROADCAST, h1, 60));
    r.send_plain(pu, &eth(h1, h2, 60));
    assert_eq!(count(&hu), 0);
    assert_eq!(count(&hb), 1, "only the broadcast");
    assert_eq!(r.drops(pu, DropReason::DstIsIngress), 1);
}

#[test]
fn mac_flood_stays_within_bounds_and_others_keep_working() {
    let mut r = Rig::new();
    let (pu, _hu) = r.trusted(r.net);
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    for i in 0..10_000u32 {
        let b = i.to_be_bytes();
        r.send_plain(
            pu,
            &eth(
                MacAddr::BROADCAST,
                MacAddr([2, 0xbb, b[0], b[1], b[2], b[3]]),
                60,
            ),
        );
    }
    // 8 learned on the uplink (per-port bound) + 3 static endpoint entries.
    assert_eq!(r.sw.fdb_len(r.net), 8 + 2);
    let _ = count(&hb);
    r.send_plain(pa, &udp_frame(mac_of(B), A, B, b"still here"));
    assert_eq!(count(&hb), 1);
}

#[test]
fn global_bound_holds_across_many_ports() {
    let mut sw = Switch::new(64);
    let net = sw.add_network(spec("n", "10.0.0.0/24", Ipv4Addr::new(10, 0, 0, 1), 16, 8));
    let mut ports = Vec::new();
    for _ in 0..8 {
        let (p, _h) = MemoryPort::new(16);
        ports.push(
            sw.add_port(
                Box::new(p),
                PortSpec {
                    name: "t".into(),
                    network: net,
                    policy: PortPolicy::TRUSTED,
                    mtu: 1500,
                    allow_host_loopback: false,
                    loopback_unreachable: false,
                },
            )
            .unwrap(),
        );
    }
    for i in 0..1000u32 {
        let b = i.to_be_bytes();
        let mut f = FrameBuf::from_frame(
            VnetHdr::default(),
            &eth(
                MacAddr::BROADCAST,
                MacAddr([2, 1, b[0], b[1], b[2], b[3]]),
                60,
            ),
        );
        sw.handle_frame(ports[i as usize % 8], &mut f, Time::ZERO);
    }
    assert_eq!(sw.fdb_len(net), 16);
}

#[test]
fn spoofed_frames_are_dropped_and_counted() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    // B's MAC from A's port.
    let mut f = udp_frame(mac_of(B), A, B, b"x");
    f[6..12].copy_from_slice(&mac_of(C).0);
    r.send_plain(pa, &f);
    // The gateway's address as source.
    let mut g = udp_frame(mac_of(B), A, B, b"x");
    g[26..30].copy_from_slice(&GW.octets());
    r.send_plain(pa, &g);
    // An ARP claiming the gateway's address (ARP spoofing).
    let mut arp = arp_request(A, B);
    arp[28..32].copy_from_slice(&GW.octets());
    r.send_plain(pa, &arp);
    assert_eq!(count(&hb), 0);
    assert_eq!(r.drops(pa, DropReason::SpoofedSrcMac), 1);
    assert_eq!(r.drops(pa, DropReason::SpoofedSrcIp), 1);
    assert_eq!(r.drops(pa, DropReason::SpoofedArp), 1);
    // A trusted port may not take over an endpoint's pinned MAC either.
    let (pu, _hu) = r.trusted(r.net);
    r.send_plain(pu, &eth(MacAddr::BROADCAST, mac_of(B), 60));
    assert_eq!(r.drops(pu, DropReason::SpoofedSrcMac), 1);
}

#[test]
fn malformed_frames_are_counted_by_reason() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (pu, _hu) = r.trusted(r.net);
    r.send_plain(pa, &[1, 2, 3]);
    r.send_plain(pu, &eth(MacAddr::BROADCAST, MacAddr::BROADCAST, 60));
    r.send_plain(pu, &eth(MacAddr::BROADCAST, MacAddr::ZERO, 60));
    r.send_plain(pa, &eth(MacAddr::BROADCAST, mac_of(A), 1600)); // > MTU 1500
    let bad = VnetHdr {
        flags: 1,
        csum_start: 5000,
        csum_offset: 6,
        ..Default::default()
    };
    r.send(pa, bad, &udp_frame(mac_of(B), A, B, b"x"), Time::ZERO);
    assert_eq!(r.drops(pa, DropReason::Truncated), 1);
    assert_eq!(r.drops(pu, DropReason::InvalidSrcMac), 2);
    assert_eq!(r.drops(pa, DropReason::Oversize), 1);
    assert_eq!(r.drops(pa, DropReason::BadVnetHeader), 1);
}

#[test]
fn networks_are_isolated() {
    let mut r = Rig::new();
    let other = r.sw.add_network(spec(
        "other",
        "10.9.0.0/24",
        Ipv4Addr::new(10, 9, 0, 1),
        64,
        8,
    ));
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    let (po, ho) = r.trusted(other);
    r.send_plain(
        pa,
        &udp_frame(MacAddr::BROADCAST, A, Ipv4Addr::BROADCAST, b"b"),
    );
    assert_eq!((count(&hb), count(&ho)), (1, 0));
    // Even unicast to a MAC that lives on the other network floods only
    // inside the sender's network.
    r.send_plain(
        po,
        &eth(MacAddr::BROADCAST, MacAddr([2, 9, 9, 9, 9, 9]), 60),
    );
    let _ = count(&hb);
    r.send_plain(pa, &eth(MacAddr([2, 9, 9, 9, 9, 9]), mac_of(A), 60));
    assert_eq!(count(&ho), 0);
    assert_eq!(count(&hb), 1);
}

#[test]
fn gateway_answers_arp_and_echo_with_valid_replies() {
    let mut r = Rig::new();
    let (pa, ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    r.send_plain(pa, &arp_request(A, GW));
    // The request is a broadcast: B sees it too, as on any bridge.
    assert_eq!(count(&hb), 1);
    let got = ha.take_sent();
    assert_eq!(got.len(), 1);
    let p = etherparse::SlicedPacket::from_ethernet(&got[0].1).unwrap();
    let Some(etherparse::NetSlice::Arp(arp)) = &p.net else {
        panic!("not ARP: {p:?}")
    };
    assert_eq!(arp.operation(), etherparse::ArpOperation::REPLY);
    assert_eq!(arp.sender_hw_addr(), &gw_mac().0);
    assert_eq!(arp.sender_protocol_addr(), &GW.octets());
    assert_eq!(arp.target_hw_addr(), &mac_of(A).0);

    r.send_plain(pa, &echo_request(A, GW, b"0123456789abcdef"));
    let got = ha.take_sent();
    assert_eq!(got.len(), 1);
    assert_checksums_valid(&got[0].1);
    let p = etherparse::SlicedPacket::from_ethernet(&got[0].1).unwrap();
    let Some(etherparse::TransportSlice::Icmpv4(icmp)) = &p.transport else {
        panic!()
    };
    assert_eq!(icmp.type_u8(), 0);
    assert_eq!(icmp.payload(), b"0123456789abcdef");
    assert_eq!(count(&hb), 0, "the echo is for the gateway only");
}

#[test]
fn gso_frames_pass_to_offload_ports_and_are_segmented_for_others() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::FULL);
    let (_pb, hb) = r.endpoint(B, Offloads::FULL);
    let (_pc, hc) = r.endpoint(C, Offloads::NONE);
    let (h, f) = tcp_gso(A, B, 20_000, 1448);
    r.send(pa, h, &f, Time::ZERO);
    let got = hb.take_sent();
    assert_eq!(got.len(), 1, "a vnet port takes the super-frame whole");
    assert_eq!(got[0].0, h);
    assert_eq!(got[0].1, f);

    let (h, f) = tcp_gso(A, C, 20_000, 1448);
    r.send(pa, h, &f, Time::ZERO);
    let segs = hc.take_sent();
    assert_eq!(segs.len(), 20_000usize.div_ceil(1448));
    let mut payload = Vec::new();
    for (vh, s) in &segs {
        assert!(vh.is_plain());
        assert!(s.len() <= 14 + 1500);
        assert_checksums_valid(s);
        payload.extend_from_slice(&s[54..]);
    }
    assert_eq!(payload, f[54..].to_vec());

    // A partial checksum alone is completed in place.
    let (h, f) = tcp_gso(A, C, 500, 1448);
    r.send(pa, h, &f, Time::ZERO);
    let got = hc.take_sent();
    assert_eq!(got.len(), 1);
    assert!(got[0].0.is_plain());
    assert_checksums_valid(&got[0].1);
}

#[test]
fn flooding_a_gso_frame_serves_both_kinds_of_port() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::FULL);
    let (_pb, hb) = r.endpoint(B, Offloads::FULL);
    let (_pc, hc) = r.endpoint(C, Offloads::NONE);
    let (h, mut f) = tcp_gso(A, B, 4000, 1000);
    f[0..6].copy_from_slice(&[2, 0x42, 1, 1, 1, 1]); // unknown unicast: flooded
    r.send(pa, h, &f, Time::ZERO);
    let b = hb.take_sent();
    assert_eq!(b.len(), 1);
    assert_eq!(b[0].0, h, "the offload port got the untouched header");
    assert_eq!(b[0].1, f);
    let c = hc.take_sent();
    assert_eq!(c.len(), 4);
    for (_, s) in &c {
        assert_checksums_valid(s);
    }
}

#[test]
fn off_subnet_traffic_gets_a_prompt_unreachable_until_nat_exists() {
    let mut r = Rig::new();
    let (pa, ha) = r.endpoint(A, Offloads::NONE);
    let mut f = udp_frame(gw_mac(), A, Ipv4Addr::new(10, 1, 2, 3), b"q");
    f[0..6].copy_from_slice(&gw_mac().0);
    r.send_plain(pa, &f);
    let got = ha.take_sent();
    assert_eq!(got.len(), 1);
    assert_checksums_valid(&got[0].1);
    assert_eq!(r.drops(pa, DropReason::NoRoute), 1);
}

#[test]
fn frames_are_read_from_ports_in_batches() {
    let mut r = Rig::new();
    let (pa, ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    for i in 0..10u8 {
        assert!(ha.inject(VnetHdr::default(), &udp_frame(mac_of(B), A, B, &[i])));
    }
    let mut bufs: Vec<FrameBuf> = (0..4).map(|_| FrameBuf::new()).collect();
    let mut total = 0;
    loop {
        let p = r.sw.poll_port(pa, &mut bufs, Time::ZERO, || true).unwrap();
        let n = p.frames;
        assert!(n <= 4);
        assert_eq!(p.more, n == 4, "a full batch says more may wait");
        if n == 0 {
            break;
        }
        total += n;
    }
    assert_eq!(total, 10);
    let got = hb.take_sent();
    assert_eq!(
        got.iter().map(|(_, f)| f[42]).collect::<Vec<_>>(),
        (0..10).collect::<Vec<u8>>()
    );
}

#[test]
fn a_turn_ends_when_its_time_is_up_and_says_frames_wait() {
    // The poll loop bounds a port's turn in time through `go_on`: a turn
    // told to stop after its first frame reads one, says more may wait,
    // and leaves the rest, in order, for the next turns.
    let mut r = Rig::new();
    let (pa, ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    for i in 0..3u8 {
        assert!(ha.inject(VnetHdr::default(), &udp_frame(mac_of(B), A, B, &[i])));
    }
    let mut bufs: Vec<FrameBuf> = (0..64).map(|_| FrameBuf::new()).collect();
    let mut asked = 0;
    let p =
        r.sw.poll_port(pa, &mut bufs, Time::ZERO, || {
            asked += 1;
            false
        })
        .unwrap();
    assert_eq!((p.frames, p.more, asked), (1, true, 1));
    assert_eq!(hb.take_sent().len(), 1, "the one frame read was switched");
    let p = r.sw.poll_port(pa, &mut bufs, Time::ZERO, || true).unwrap();
    assert_eq!((p.frames, p.more), (2, false), "the queue ran dry first");
    let got = hb.take_sent();
    assert_eq!(got.iter().map(|(_, f)| f[42]).collect::<Vec<_>>(), [1, 2]);
}

#[test]
fn removed_ports_are_forgotten() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (pb, hb) = r.endpoint(B, Offloads::NONE);
    let (_pc, hc) = r.endpoint(C, Offloads::NONE);
    assert!(r.sw.remove_port(pb).is_some());
    r.send_plain(pa, &udp_frame(mac_of(B), A, B, b"x"));
    // B's pinned entry went with it: the frame floods to who is left.
    assert_eq!((count(&hb), count(&hc)), (0, 1));
    assert_eq!(r.sw.port_count(), 2);
    assert!(r.sw.remove_port(pb).is_none());
}

#[test]
fn the_port_limit_holds() {
    let mut sw = Switch::new(2);
    let net = sw.add_network(spec("n", "10.0.0.0/24", Ipv4Addr::new(10, 0, 0, 1), 16, 8));
    let add = |sw: &mut Switch| {
        sw.add_port(
            Box::new(MemoryPort::sink()),
            PortSpec {
                name: "s".into(),
                network: net,
                policy: PortPolicy::TRUSTED,
                mtu: 1500,
                allow_host_loopback: false,
                loopback_unreachable: false,
            },
        )
    };
    assert!(add(&mut sw).is_ok());
    assert!(add(&mut sw).is_ok());
    assert!(add(&mut sw).is_err());
}

#[test]
fn gso_headers_that_lie_about_the_frame_are_dropped() {
    let mut r = Rig::new();
    let (pa, _ha) = r.endpoint(A, Offloads::FULL);
    let (_pb, hb) = r.endpoint(B, Offloads::FULL);
    let (h, f) = tcp_gso(A, B, 10_000, 1448);
    // TCPv6 GSO on an IPv4 frame.
    let mut wrong_kind = h;
    wrong_kind.gso_type = lanyard::wire::vnet::gso::TCPV6;
    // The checksum field announced somewhere other than TCP's.
    let mut wrong_offset = h;
    wrong_offset.csum_offset = 6;
    // The transport header announced inside the IP header.
    let mut wrong_start = h;
    wrong_start.csum_start = 20;
    for bad in [wrong_kind, wrong_offset, wrong_start] {
        r.send(pa, bad, &f, Time::ZERO);
    }
    assert_eq!(count(&hb), 0, "a lying header reaches no other kernel");
    assert_eq!(r.drops(pa, DropReason::BadVnetHeader), 3);
    r.send(pa, h, &f, Time::ZERO);
    assert_eq!(count(&hb), 1);
}

#[test]
fn nobody_may_send_from_the_gateway_mac() {
    let mut r = Rig::new();
    let (pu, _hu) = r.trusted(r.net);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    r.send_plain(pu, &eth(MacAddr::BROADCAST, gw_mac(), 60));
    assert_eq!(count(&hb), 0);
    assert_eq!(r.drops(pu, DropReason::SpoofedSrcMac), 1);
    // And the gateway's MAC was not learned on the uplink.
    let (pa, ha) = r.endpoint(A, Offloads::NONE);
    r.send_plain(pa, &arp_request(A, GW));
    assert_eq!(count(&ha), 1, "the gateway still answers");
}

#[test]
fn router_advertisements_go_to_endpoints_not_uplinks() {
    let mut sw = Switch::new(8);
    let mut s = spec("dual", "172.17.0.0/16", GW, 64, 8);
    s.ipv6 = Some(lanyard::dataplane::NetworkSpec6 {
        subnet: "fd00:172:17::/64".parse().unwrap(),
        gateway: "fd00:172:17::1".parse().unwrap(),
        link_local: None,
        mtu: 1500,
    });
    let net = sw.add_network(s);
    let mut rig = Rig { sw, net };
    let (_a, ha) = rig.endpoint(A, Offloads::NONE);
    let (_u, hu) = rig.trusted(net);
    rig.sw.tick(Time::from_secs(1));
    let to_a = ha.take_sent();
    assert_eq!(to_a.len(), 1, "one unsolicited RA to the endpoint");
    let f = &to_a[0].1;
    assert_eq!(&f[0..6], &[0x33, 0x33, 0, 0, 0, 1], "to all nodes");
    assert_eq!(f[54], lanyard::wire::icmpv6::kind::ROUTER_ADVERT);
    // The hosts behind an uplink have a router of their own.
    assert!(hu.take_sent().is_empty(), "no RA out of the uplink");
    // Not again before the interval.
    rig.sw.tick(Time::from_secs(30));
    assert!(ha.take_sent().is_empty());
}

/// Storm control: each port's floods (broadcast here) come out of its own
/// budget (`[limits] floods_per_sec`, `floods_burst`): past it a frame is
/// dropped, not written to every neighbour, and counted; another port's
/// floods at the same instant still go out; the budget refills.
#[test]
fn one_ports_broadcast_storm_is_cut_off_at_its_budget() {
    use lanyard::ratelimit::{Rate, SourceLimits};
    let mut r = Rig::new();
    r.sw.set_source_limits(SourceLimits {
        floods: Rate::new(100, 50),
        ..SourceLimits::default()
    });
    let (pa, _ha) = r.endpoint(A, Offloads::NONE);
    let (_pb, hb) = r.endpoint(B, Offloads::NONE);
    let (pc, _hc) = r.endpoint(C, Offloads::NONE);
    let t = Time::from_secs(1);
    let storm = arp_request(A, Ipv4Addr::new(172, 17, 9, 9));
    for _ in 0..500 {
        r.send(pa, VnetHdr::default(), &storm, t);
    }
    assert_eq!(count(&hb), 50, "the burst reached the neighbour, no more");
    assert_eq!(r.drops(pa, DropReason::FloodLimited), 450);
    // C's broadcast at the same instant is its own.
    r.send(pc, VnetHdr::default(), &arp_request(C, B), t);
    assert_eq!(count(&hb), 1);
    assert_eq!(r.drops(pc, DropReason::FloodLimited), 0);
    // Unicast from the flooder still flows.
    r.send(pa, VnetHdr::default(), &udp_frame(mac_of(B), A, B, b"x"), t);
    assert_eq!(count(&hb), 1);
    // 100 ms later: ten more.
    let later = Time(t.0 + 100_000_000);
    for _ in 0..500 {
        r.send(pa, VnetHdr::default(), &storm, later);
    }
    assert_eq!(count(&hb), 10);
}

/// DHCP messages reach the control plane at most at their port's budget
/// (`ratelimit::DHCP_MESSAGES`); past it they are dropped and counted, and
/// the event queue the control plane shares with every port is left to
/// the others.
#[test]
fn one_ports_dhcp_flood_is_cut_off_at_its_budget() {
    use common::natrig::{Opts, Rig as NatRig};
    use lanyard::ratelimit::DHCP_MESSAGES;
    let mut rig = NatRig::new(Opts {
        events: Some(4096),
        ..Opts::default()
    });
    for xid in 0..1000 {
        rig.dhcp_discover(xid);
    }
    let events = rig.dhcp.as_ref().unwrap().try_iter().count();
    assert_eq!(events, DHCP_MESSAGES.burst as usize);
    let c = rig.sw.counters(rig.port).unwrap();
    assert_eq!(
        c.dropped(DropReason::DhcpRateLimited),
        1000 - DHCP_MESSAGES.burst as u64
    );
}
