//! Data-path micro benchmarks over memory sink ports: frames/s for each
//! stage a frame can take through the switch on one core. The goal for the
//! forwarding path is 10 M frames/s of 64-byte learned unicast.
//!
//! `cargo bench --bench forwarding` (criterion reports elements/s).

use std::hint::black_box;
use std::net::{Ipv4Addr, UdpSocket};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use mio::Poll;

use lanyard::dataplane::{NetworkSpec, PortSpec, Switch};
use lanyard::frame::FrameBuf;
use lanyard::nat::{Emit, Inside, Nat, NatConfig};
use lanyard::offload::Offloads;
use lanyard::port::{MemoryPort, Port, PortId};
use lanyard::security::PortPolicy;
use lanyard::time::Time;
use lanyard::wire::arp::{ArpRepr, OP_REQUEST};
use lanyard::wire::checksum;
use lanyard::wire::ethernet::{emit_header, ethertype};
use lanyard::wire::ipv4::{protocol, Ipv4Repr};
use lanyard::wire::tcp;
use lanyard::wire::vnet::{flags, gso, VnetHdr};
use lanyard::wire::MacAddr;

const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
const BATCH: u64 = 1024;

fn ip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(172, 17, 0, n)
}

fn mac(a: Ipv4Addr) -> MacAddr {
    MacAddr::docker_from_ipv4(a)
}

/// The network every bench switches on: docker's default, no NAT.
fn bench_network() -> NetworkSpec {
    NetworkSpec {
        name: "bench".into(),
        subnet: "172.17.0.0/16".parse().unwrap(),
        gateway_ip: GW.into(),
        gateway_mac: mac(GW),
        fdb_max_entries: 8192,
        fdb_max_per_port: 1024,
        mac_aging: Duration::from_secs(300),
        nat: false,
        dns_ip: None,
        ipv6: None,
    }
}

/// A switch with `n` endpoint ports (172.17.0.2 ..), all sinks.
fn switch(n: u8, offloads: Offloads) -> (Switch, Vec<PortId>) {
    let mut sw = Switch::new(1024);
    let net = sw.add_network(bench_network());
    let ports = (0..n)
        .map(|i| {
            let a = ip(2 + i);
            sw.add_port(
                Box::new(MemoryPort::sink_with_offloads(offloads)),
                PortSpec {
                    name: a.to_string(),
                    network: net,
                    policy: PortPolicy::endpoint(mac(a), a),
                    mtu: 65520,
                    allow_host_loopback: false,
                    loopback_unreachable: false,
                },
            )
            .unwrap()
        })
        .collect();
    (sw, ports)
}

fn ipv4_frame(dst_mac: MacAddr, src: Ipv4Addr, dst: Ipv4Addr, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len];
    emit_header(&mut f, dst_mac, mac(src), ethertype::IPV4);
    Ipv4Repr {
        src,
        dst,
        protocol: protocol::UDP,
        payload_len: len - 34,
        ttl: 64,
        ident: 1,
    }
    .emit(&mut f[14..]);
    f
}

fn run_batch(sw: &mut Switch, port: PortId, buf: &mut FrameBuf) {
    for i in 0..BATCH {
        sw.handle_frame(port, buf, Time(i));
    }
}

fn forwarding(c: &mut Criterion) {
    let mut g = c.benchmark_group("forwarding");
    g.throughput(Throughput::Elements(BATCH));

    let (mut sw, ports) = switch(2, Offloads::FULL);
    let mut buf = FrameBuf::from_frame(
        VnetHdr::default(),
        &ipv4_frame(mac(ip(3)), ip(2), ip(3), 64),
    );
    g.bench_function("learned_unicast_64B", |b| {
        b.iter(|| run_batch(&mut sw, ports[0], black_box(&mut buf)))
    });

    for n in [4u8, 16] {
        let (mut sw, ports) = switch(n, Offloads::FULL);
        let mut buf = FrameBuf::from_frame(
            VnetHdr::default(),
            &ipv4_frame(MacAddr::BROADCAST, ip(2), Ipv4Addr::BROADCAST, 64),
        );
        g.bench_function(format!("flood_64B_{n}_ports"), |b| {
            b.iter(|| run_batch(&mut sw, ports[0], black_box(&mut buf)))
        });
    }

    let (mut sw, ports) = switch(2, Offloads::FULL);
    let mut arp = vec![0u8; 42];
    emit_header(&mut arp, MacAddr::BROADCAST, mac(ip(2)), ethertype::ARP);
    ArpRepr {
        operation: OP_REQUEST,
        sender_mac: mac(ip(2)),
        sender_ip: ip(2),
        target_mac: MacAddr::ZERO,
        target_ip: GW,
    }
    .emit(&mut arp[14..]);
    let mut buf = FrameBuf::from_frame(VnetHdr::default(), &arp);
    g.bench_function("gateway_arp_reply", |b| {
        b.iter(|| run_batch(&mut sw, ports[0], black_box(&mut buf)))
    });

    let mut echo = ipv4_frame(mac(GW), ip(2), GW, 98);
    echo[23] = protocol::ICMP;
    echo[24..26].copy_from_slice(&[0, 0]);
    let c_ip = checksum::checksum(&echo[14..34]);
    echo[24..26].copy_from_slice(&c_ip.to_be_bytes());
    echo[34] = 8;
    let c_icmp = checksum::checksum(&echo[34..]);
    echo[36..38].copy_from_slice(&c_icmp.to_be_bytes());
    let mut buf = FrameBuf::from_frame(VnetHdr::default(), &echo);
    g.bench_function("gateway_echo_reply", |b| {
        b.iter(|| run_batch(&mut sw, ports[0], black_box(&mut buf)))
    });
    g.finish();
}

/// A 64 KiB TCP super-frame to a vnet port (passes whole) and to a port
/// without offloads (cut into 45 segments, checksums computed).
fn offload(c: &mut Criterion) {
    let payload = 65_000usize;
    let mut f = vec![0u8; 54 + payload];
    emit_header(&mut f, mac(ip(3)), mac(ip(2)), ethertype::IPV4);
    Ipv4Repr {
        src: ip(2),
        dst: ip(3),
        protocol: protocol::TCP,
        payload_len: 20 + payload,
        ttl: 64,
        ident: 1,
    }
    .emit(&mut f[14..]);
    tcp::emit_header(&mut f[34..], 1, 2, 3, 4, tcp::flags::ACK, 100);
    let pseudo = checksum::pseudo_header_v4(ip(2), ip(3), protocol::TCP, (20 + payload) as u16);
    f[50..52].copy_from_slice(&checksum::fold(pseudo).to_be_bytes());
    let h = VnetHdr {
        flags: flags::NEEDS_CSUM,
        gso_type: gso::TCPV4,
        hdr_len: 54,
        gso_size: 1448,
        csum_start: 34,
        csum_offset: 16,
    };
    let mut g = c.benchmark_group("gso_64KiB");
    g.throughput(Throughput::Bytes(f.len() as u64));
    let (mut sw, ports) = switch(2, Offloads::FULL);
    let mut buf = FrameBuf::from_frame(h, &f);
    g.bench_function("to_offload_port", |b| {
        b.iter(|| sw.handle_frame(ports[0], black_box(&mut buf), Time::ZERO))
    });
    let mut sw = Switch::new(4);
    let net = sw.add_network(NetworkSpec {
        name: "b".into(),
        subnet: "172.17.0.0/16".parse().unwrap(),
        gateway_ip: GW.into(),
        gateway_mac: mac(GW),
        fdb_max_entries: 64,
        fdb_max_per_port: 8,
        mac_aging: Duration::from_secs(300),
        nat: false,
        dns_ip: None,
        ipv6: None,
    });
    let mut add = |a: Ipv4Addr, o: Offloads| {
        sw.add_port(
            Box::new(MemoryPort::sink_with_offloads(o)),
            PortSpec {
                name: "p".into(),
                network: net,
                policy: PortPolicy::endpoint(mac(a), a),
                mtu: 1500,
                allow_host_loopback: false,
                loopback_unreachable: false,
            },
        )
        .unwrap()
    };
    let pa = add(ip(2), Offloads::FULL);
    let _pb = add(ip(3), Offloads::NONE);
    g.bench_function("segmented_for_plain_port", |b| {
        b.iter_batched_ref(
            || FrameBuf::from_frame(h, &f),
            |buf| sw.handle_frame(pa, buf, Time::ZERO),
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

/// Counts what the NAT emits toward containers (the switch's port path is
/// measured by the `forwarding` group).
struct CountEmit(u64);

impl Emit for CountEmit {
    fn emit(&mut self, _port: PortId, frame: &mut FrameBuf) {
        self.0 += frame.len() as u64;
    }
}

/// A container's UDP datagram (64-byte payload) to `dst`:`dport`, as the
/// gateway hands it to the NAT.
fn udp_frame(src_port: u16, dst: Ipv4Addr, dport: u16) -> Vec<u8> {
    let payload = 64;
    let mut f = vec![0u8; 42 + payload];
    emit_header(&mut f, mac(GW), mac(ip(2)), ethertype::IPV4);
    Ipv4Repr {
        src: ip(2),
        dst,
        protocol: protocol::UDP,
        payload_len: 8 + payload,
        ttl: 64,
        ident: 1,
    }
    .emit(&mut f[14..]);
    f[34..36].copy_from_slice(&src_port.to_be_bytes());
    f[36..38].copy_from_slice(&dport.to_be_bytes());
    f[38..40].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
    f
}

/// Established NAT flows: the per-packet work (checks, conntrack lookup,
/// LRU touch; headers built for the way back) apart from the socket call,
/// for 1 and for 4,096 flows in the table; and, for scale, the whole
/// outbound path with its `send(2)` on a loopback socket.
fn nat(c: &mut Criterion) {
    const FLOWS: u16 = 4096;
    let _ = lanyard::sys::raise_fd_limit();
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_nonblocking(true).unwrap();
    let port = sink.local_addr().unwrap().port();
    let poll = Poll::new().unwrap();
    let mut nat = Nat::new(NatConfig {
        max_flows: 8192,
        max_flows_per_container: 8192,
        ..NatConfig::default()
    });
    nat.set_registry(poll.registry().try_clone().unwrap());
    let ep = Inside {
        port: PortId(0),
        mac: mac(ip(2)),
        ip: ip(2).into(),
        gateway_mac: mac(GW),
        gateway_ip: GW.into(),
        mtu: 65520,
        // The host's loopback is reached through the gateway's address
        // only (never as given): the sink is on 127.0.0.1.
        allow_host_loopback: true,
        loopback_unreachable: false,
        internal: false,
        net: 0,
    };
    let mut emit = CountEmit(0);
    // One real flow (a connected host socket) per source port.
    let frames: Vec<FrameBuf> = (0..FLOWS)
        .map(|i| {
            let buf = FrameBuf::from_frame(VnetHdr::default(), &udp_frame(10_000 + i, GW, port));
            assert_eq!(nat.outbound_frame(&ep, &buf, Time::ZERO, &mut emit), None);
            buf
        })
        .collect();
    assert_eq!(nat.flow_count(), FLOWS as usize);
    let mut drain = [0u8; 2048];
    while sink.recv(&mut drain).is_ok() {}

    let mut g = c.benchmark_group("nat_established_udp");
    g.throughput(Throughput::Elements(BATCH));
    g.bench_function("outbound_lookup_1_flow", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                black_box(nat.udp_established(black_box(&frames[0]), Time(i)));
            }
        })
    });
    let mut next = 0usize;
    g.bench_function("outbound_lookup_4096_flows", |b| {
        b.iter(|| {
            for i in 0..BATCH {
                next = (next + 1) % frames.len();
                black_box(nat.udp_established(black_box(&frames[next]), Time(i)));
            }
        })
    });
    let ids: Vec<_> = frames
        .iter()
        .map(|f| nat.udp_established(f, Time::ZERO).unwrap().0)
        .collect();
    g.bench_function("inbound_rewrite_64B_4096_flows", |b| {
        b.iter(|| {
            for _ in 0..BATCH {
                next = (next + 1) % ids.len();
                black_box(nat.udp_deliver(ids[next], 64, &mut emit));
            }
        })
    });
    g.finish();

    // The same datagrams through the whole outbound path, send(2)
    // included: what one core moves through host sockets.
    let mut g = c.benchmark_group("nat_udp_with_socket");
    g.throughput(Throughput::Elements(BATCH));
    // 64 flows in turn: every datagram its own send(2).
    g.bench_function("outbound_send_64B", |b| {
        b.iter(|| {
            for i in 0..BATCH as usize {
                black_box(nat.outbound_frame(&ep, &frames[i % 64], Time(i as u64), &mut emit));
            }
            nat.flush(&mut emit);
            while sink.recv(&mut drain).is_ok() {}
        })
    });
    // One flow, a port's turn (64 datagrams) at a time: one UDP GSO send
    // per turn (nat::udp, "Batching toward the host").
    g.bench_function("outbound_send_64B_one_flow_turns", |b| {
        b.iter(|| {
            for i in 0..BATCH as usize {
                black_box(nat.outbound_frame(&ep, &frames[0], Time(i as u64), &mut emit));
                if i % 64 == 63 {
                    nat.flush(&mut emit);
                }
            }
            nat.flush(&mut emit);
            while sink.recv(&mut drain).is_ok() {}
        })
    });
    g.finish();
}

/// The data path on 1 and on 2 threads, as the daemon shards it: each
/// shard owns two sink ports and knows the other shard's two as send-only
/// handles; every frame is learned unicast from a port of its own shard to
/// a port of the other (with one shard: between its own). Wall time of all
/// shards together, so the ratio of the two is the scaling.
fn shards(c: &mut Criterion) {
    let mut g = c.benchmark_group("sharded_unicast_64B");
    for n in [1usize, 2] {
        let ports_per = 2usize;
        let total = n * ports_per;
        // Every shard's switch: all networks, all ports by the same ids.
        let mut shards: Vec<Switch> = (0..n).map(|_| Switch::new(1024)).collect();
        for sw in shards.iter_mut() {
            sw.enable_learn_sync();
            sw.add_network(bench_network());
        }
        for p in 0..total {
            let a = ip(2 + p as u8);
            let spec = PortSpec {
                name: a.to_string(),
                network: lanyard::dataplane::NetworkId(0),
                policy: PortPolicy::endpoint(mac(a), a),
                mtu: 65520,
                allow_host_loopback: false,
                loopback_unreachable: false,
            };
            let owner = p / ports_per;
            let port = MemoryPort::sink_with_offloads(Offloads::FULL);
            for (s, sw) in shards.iter_mut().enumerate() {
                if s != owner {
                    sw.add_port_with_id(PortId(p as u32), port.share(), spec.clone())
                        .unwrap();
                }
            }
            shards[owner]
                .add_port_with_id(PortId(p as u32), Box::new(port), spec)
                .unwrap();
        }
        // Shard k sends from its first port to the first port of shard k+1.
        let mut work: Vec<(Switch, PortId, FrameBuf)> = shards
            .into_iter()
            .enumerate()
            .map(|(k, sw)| {
                let from = k * ports_per;
                let to = ((k + 1) % n) * ports_per + if n == 1 { 1 } else { 0 };
                let (src, dst) = (ip(2 + from as u8), ip(2 + to as u8));
                let buf =
                    FrameBuf::from_frame(VnetHdr::default(), &ipv4_frame(mac(dst), src, dst, 64));
                (sw, PortId(from as u32), buf)
            })
            .collect();
        g.throughput(Throughput::Elements(BATCH * n as u64));
        g.bench_function(format!("{n}_threads"), |b| {
            b.iter_custom(|iters| {
                let start = std::time::Instant::now();
                std::thread::scope(|scope| {
                    for (sw, port, buf) in work.iter_mut() {
                        scope.spawn(move || {
                            for _ in 0..iters {
                                run_batch(sw, *port, black_box(buf));
                            }
                        });
                    }
                });
                start.elapsed()
            })
        });
    }
    g.finish();
}

/// The MAC table at its bound (issue 21: forwarding rate unchanged). Eight
/// trusted uplink ports (each with hosts behind it, as an attached bridge
/// has) have learned their share of the table, 1,024 MACs each: the
/// network's whole `fdb_max_entries` of 8,192, beside the two endpoints'
/// pinned MACs. Then: an endpoint's learned unicast in that full table
/// (the `forwarding` group's `learned_unicast_64B` in an empty one); uplink
/// unicast cycling over 1,024 source and destination MACs of the full table
/// against the same traffic over 64 MACs in a table that holds only them
/// (the cost of a table that no longer sits in cache); and frames from new
/// source MACs the full table refuses (counted, still forwarded), what a
/// MAC-spraying neighbour costs.
fn fdb_at_bound(c: &mut Criterion) {
    const UPLINKS: u8 = 8;
    const PER_UPLINK: u16 = 1024;
    fn host_mac(uplink: u8, n: u16) -> MacAddr {
        let [hi, lo] = n.to_be_bytes();
        MacAddr([0x02, 0x10, 0, uplink, hi, lo])
    }
    fn frame(dst: MacAddr, src: MacAddr) -> FrameBuf {
        let mut f = ipv4_frame(dst, ip(200), ip(201), 64);
        f[6..12].copy_from_slice(&src.0);
        FrameBuf::from_frame(VnetHdr::default(), &f)
    }
    /// Two endpoints and the uplinks, each uplink having learned `per` MACs.
    fn filled(per: u16) -> (Switch, Vec<PortId>, Vec<PortId>) {
        let (mut sw, eps) = switch(2, Offloads::FULL);
        let uplinks: Vec<PortId> = (0..UPLINKS)
            .map(|u| {
                sw.add_port(
                    Box::new(MemoryPort::sink_with_offloads(Offloads::FULL)),
                    PortSpec {
                        name: format!("up{u}"),
                        network: lanyard::dataplane::NetworkId(0),
                        policy: PortPolicy::TRUSTED,
                        mtu: 65520,
                        allow_host_loopback: false,
                        loopback_unreachable: false,
                    },
                )
                .unwrap()
            })
            .collect();
        for (u, &port) in uplinks.iter().enumerate() {
            for n in 0..per {
                let mut f = frame(mac(ip(2)), host_mac(u as u8, n));
                sw.handle_frame(port, &mut f, Time(0));
            }
        }
        let learned = sw.fdb_len(lanyard::dataplane::NetworkId(0));
        assert_eq!(
            learned,
            UPLINKS as usize * per as usize + 2,
            "the table is not filled"
        );
        (sw, eps, uplinks)
    }
    /// BATCH frames from uplink 0: sources cycling over its own `per` MACs,
    /// destinations over the other uplinks' (all learned: unicast).
    fn cycling(per: u16) -> Vec<FrameBuf> {
        (0..BATCH as u16)
            .map(|k| {
                let dst_uplink = 1 + (k % (UPLINKS as u16 - 1)) as u8;
                frame(host_mac(dst_uplink, (k * 37) % per), host_mac(0, k % per))
            })
            .collect()
    }
    fn run_each(sw: &mut Switch, port: PortId, frames: &mut [FrameBuf]) {
        for (i, f) in frames.iter_mut().enumerate() {
            sw.handle_frame(port, f, Time(i as u64));
        }
    }

    let mut g = c.benchmark_group("fdb_at_bound");
    g.throughput(Throughput::Elements(BATCH));

    let (mut sw, eps, _) = filled(PER_UPLINK);
    let mut buf = FrameBuf::from_frame(
        VnetHdr::default(),
        &ipv4_frame(mac(ip(3)), ip(2), ip(3), 64),
    );
    g.bench_function("endpoint_unicast_64B_table_full", |b| {
        b.iter(|| run_batch(&mut sw, eps[0], black_box(&mut buf)))
    });

    for (per, name) in [
        (8u16, "uplink_unicast_64B_64_macs"),
        (PER_UPLINK, "uplink_unicast_64B_8192_macs_full"),
    ] {
        let (mut sw, _, uplinks) = filled(per);
        let mut frames = cycling(per);
        g.bench_function(name, |b| {
            b.iter(|| run_each(&mut sw, uplinks[0], black_box(&mut frames)))
        });
    }

    // Uplink 0 holds its whole share: every one of these sources is refused.
    let (mut sw, _, uplinks) = filled(PER_UPLINK);
    let mut frames: Vec<FrameBuf> = (0..BATCH as u16)
        .map(|k| frame(host_mac(1, k % PER_UPLINK), host_mac(0x80, k)))
        .collect();
    g.bench_function("new_src_mac_refused_table_full", |b| {
        b.iter(|| run_each(&mut sw, uplinks[0], black_box(&mut frames)))
    });
    g.finish();
}

/// The NAT's flow table as it fills (issue 21's flows curve, for the
/// table's share of it: bench/scale.sh measures the whole path, whose
/// sockets cap it at the open-file limit). A table bounded at 131,072
/// holding 1,000, 10,000 and 100,000 flows: an established flow's lookup
/// and LRU touch, cycling over all of them in a scattered order (what a
/// busy table's cache sees), and a new flow's insert with the oldest's
/// removal (the churn of a full table). Each slot carries 256 bytes, about
/// the real flow's state.
fn nat_table(c: &mut Criterion) {
    use lanyard::nat::table::{FlowKey, FlowTable, Proto};
    use std::net::SocketAddr;
    fn key(i: u32) -> FlowKey {
        // 64 containers, each with ports from 1024: as many flows as asked.
        let inside = Ipv4Addr::new(172, 17, (i % 64) as u8, 2 + (i / 64 / 60_000) as u8);
        FlowKey {
            proto: Proto::Tcp,
            inside: SocketAddr::new(inside.into(), 1024 + (i / 64 % 60_000) as u16),
            outside: SocketAddr::new(Ipv4Addr::new(10, 200, 0, 2).into(), 443),
        }
    }
    let mut g = c.benchmark_group("nat_table");
    g.throughput(Throughput::Elements(BATCH));
    for n in [1_000u32, 10_000, 100_000] {
        let mut t: FlowTable<[u64; 32]> = FlowTable::new(131_072, 131_072);
        for i in 0..n {
            t.insert(key(i), PortId(i % 64), [0; 32], Time(0), |_| true)
                .unwrap_or_else(|_| panic!("flow {i} refused"));
        }
        // A scattered order over every flow: a stride coprime to n.
        let stride = (n / 2 + 1) | 1;
        let mut at = 0u32;
        let mut now = 1u64;
        g.bench_function(format!("lookup_touch_{n}_flows"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    at = (at + stride) % n;
                    let id = t.lookup(black_box(&key(at))).expect("held");
                    t.touch(id, Time(now));
                    now += 1;
                }
            })
        });
        let mut next = n;
        g.bench_function(format!("new_flow_oldest_out_{n}_flows"), |b| {
            b.iter(|| {
                for _ in 0..BATCH {
                    let old = t.oldest().expect("a flow");
                    let (k, _) = t.remove(old).expect("held");
                    black_box(k);
                    t.insert(key(next), PortId(next % 64), [0; 32], Time(now), |_| true)
                        .unwrap_or_else(|_| panic!("flow {next} refused"));
                    next = next.wrapping_add(1) % 3_800_000;
                    now += 1;
                }
            })
        });
    }
    g.finish();
}

criterion_group!(
    benches,
    forwarding,
    fdb_at_bound,
    offload,
    nat,
    nat_table,
    shards
);
criterion_main!(benches);
