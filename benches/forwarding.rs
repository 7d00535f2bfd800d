//! Data-path micro benchmarks over memory sink ports: frames/s for each
//! stage a frame can take through the switch on one core. The goal for the
//! forwarding path is 10 M frames/s of 64-byte learned unicast.
//!
//! `cargo bench --bench forwarding` (criterion reports elements/s).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};

use lanyard::dataplane::{NetworkSpec, PortSpec, Switch};
use lanyard::frame::FrameBuf;
use lanyard::offload::Offloads;
use lanyard::port::{MemoryPort, PortId};
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

/// A switch with `n` endpoint ports (172.17.0.2 ..), all sinks.
fn switch(n: u8, offloads: Offloads) -> (Switch, Vec<PortId>) {
    let mut sw = Switch::new(1024);
    let net = sw.add_network(NetworkSpec {
        name: "bench".into(),
        subnet: "172.17.0.0/16".parse().unwrap(),
        gateway_ip: GW,
        gateway_mac: mac(GW),
        fdb_max_entries: 8192,
        fdb_max_per_port: 1024,
        mac_aging: Duration::from_secs(300),
        nat: false,
    });
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
        gateway_ip: GW,
        gateway_mac: mac(GW),
        fdb_max_entries: 64,
        fdb_max_per_port: 8,
        mac_aging: Duration::from_secs(300),
        nat: false,
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

criterion_group!(benches, forwarding, offload);
criterion_main!(benches);
