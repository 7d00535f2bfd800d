//! Two shards of one data path, driven by hand (as `dataplane::poll_loop`
//! drives them): what one learns, the other knows; news about a port that
//! left, or whose id now belongs to a port on another network, is dropped.

mod common;

use std::time::Duration;

use common::frames::*;
use lanyard::dataplane::{Learned, NetworkId, NetworkSpec, PortSpec, Switch};
use lanyard::frame::FrameBuf;
use lanyard::offload::Offloads;
use lanyard::port::{MemoryHandle, MemoryPort, Port, PortId};
use lanyard::security::PortPolicy;
use lanyard::time::Time;
use lanyard::wire::vnet::VnetHdr;
use lanyard::wire::MacAddr;

const HOST: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xc8]);

fn net(name: &str, subnet: &str) -> NetworkSpec {
    NetworkSpec {
        name: name.into(),
        subnet: subnet.parse().unwrap(),
        gateway_ip: "10.0.0.1".parse().unwrap(),
        gateway_mac: gw_mac(),
        fdb_max_entries: 64,
        fdb_max_per_port: 16,
        mac_aging: Duration::from_secs(300),
        nat: false,
        dns_ip: None,
        ipv6: None,
    }
}

/// An uplink (trusted) port on `net`, owned by `shards[owner]`, known to
/// the other as a send-only handle, under `id`.
fn uplink(shards: &mut [Switch], owner: usize, id: PortId, net: NetworkId) -> MemoryHandle {
    let (port, handle) = MemoryPort::with_offloads(64, Offloads::FULL);
    let spec = PortSpec {
        name: format!("up{}", id.0),
        network: net,
        policy: PortPolicy::TRUSTED,
        mtu: 1500,
        allow_host_loopback: false,
        loopback_unreachable: false,
    };
    let share = port.share();
    shards[1 - owner]
        .add_port_with_id(id, share, spec.clone())
        .unwrap();
    shards[owner]
        .add_port_with_id(id, Box::new(port), spec)
        .unwrap();
    handle
}

#[test]
fn learned_macs_cross_shards_and_stale_news_is_dropped() {
    let mut shards = [Switch::new(8), Switch::new(8)];
    let (n1, n2) = (NetworkId(0), NetworkId(1));
    for sw in shards.iter_mut() {
        sw.enable_learn_sync();
        sw.add_network_with_id(n1, net("one", "10.0.0.0/24"))
            .unwrap();
        sw.add_network_with_id(n2, net("two", "10.0.1.0/24"))
            .unwrap();
    }
    let p = PortId(0);
    let _up = uplink(&mut shards, 0, p, n1);
    // A host behind the uplink speaks: shard 0 learns it.
    let mut buf = FrameBuf::from_frame(VnetHdr::default(), &eth(MacAddr::BROADCAST, HOST, 60));
    shards[0].handle_frame(p, &mut buf, Time::ZERO);
    let mut news: Vec<Learned> = Vec::new();
    shards[0].take_learned(&mut news);
    assert_eq!(news.len(), 1, "one MAC learned: {news:?}");
    assert_eq!(news[0].mac, HOST);
    shards[1].apply_learned(news[0], Time::ZERO);
    assert_eq!(shards[1].fdb_len(n1), 1, "shard 1 knows the host");

    // The same news again, after the port left both shards and its id went
    // to an uplink on the other network: dropped, not learned on network two.
    for sw in shards.iter_mut() {
        assert!(sw.remove_port(p).is_some());
        assert_eq!(sw.fdb_len(n1), 0, "flushed with its port");
    }
    let _other = uplink(&mut shards, 0, p, n2);
    shards[1].apply_learned(news[0], Time::ZERO);
    assert_eq!(shards[1].fdb_len(n1), 0);
    assert_eq!(shards[1].fdb_len(n2), 0, "stale news crossed networks");
    // And about a port id nobody has: dropped too.
    let ghost = Learned {
        net: n1,
        mac: HOST,
        port: PortId(5),
    };
    shards[1].apply_learned(ghost, Time::ZERO);
    assert_eq!(shards[1].fdb_len(n1), 0);
}
