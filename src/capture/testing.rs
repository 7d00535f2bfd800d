//! Test helpers shared by the capture tests: frames built with `wire`'s
//! builders, small files in both formats, and running tcpdump or tshark
//! on them when they are installed.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::Command;

use super::{pcap, pcapng, Direction, Record};
use crate::wire::arp::{ArpRepr, OP_REQUEST};
use crate::wire::ethernet::{self, ethertype, MacAddr};
use crate::wire::ipv4::{protocol, Ipv4Repr};
use crate::wire::ipv6::{self, next_header};
use crate::wire::{icmpv4, icmpv6, tcp, udp};

pub const MAC1: MacAddr = MacAddr([0x02, 0x42, 172, 17, 0, 2]);
pub const MAC2: MacAddr = MacAddr([0x02, 0x42, 172, 17, 0, 3]);
pub const A1: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 2);
pub const A2: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 3);
pub const B1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 2);
pub const B2: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 3);

/// 2023-11-14T22:13:20.123456789Z: every digit of the fraction shows
/// whether a reader got the resolution right.
pub const TS: u64 = 1_700_000_000_123_456_789;

pub fn eth(dst: MacAddr, src: MacAddr, kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; ethernet::HEADER_LEN + payload.len()];
    let n = ethernet::emit_header(&mut f, dst, src, kind);
    f[n..].copy_from_slice(payload);
    f
}

/// MAC1 asks who has `target`, padded to the 60-byte Ethernet minimum.
pub fn arp_request(sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut p = [0u8; 46];
    ArpRepr {
        operation: OP_REQUEST,
        sender_mac: MAC1,
        sender_ip: sender,
        target_mac: MacAddr::ZERO,
        target_ip: target,
    }
    .emit(&mut p);
    eth(MacAddr::BROADCAST, MAC1, ethertype::ARP, &p)
}

/// MAC1 → MAC2, IPv4 with a valid header checksum.
pub fn ip4(src: Ipv4Addr, dst: Ipv4Addr, proto: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; 20 + payload.len()];
    Ipv4Repr {
        src,
        dst,
        protocol: proto,
        payload_len: payload.len(),
        ttl: 64,
        ident: 1,
    }
    .emit(&mut p);
    p[20..].copy_from_slice(payload);
    eth(MAC2, MAC1, ethertype::IPV4, &p)
}

/// MAC1 → MAC2, IPv6.
pub fn ip6(src: Ipv6Addr, dst: Ipv6Addr, nh: u8, payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0u8; ipv6::HEADER_LEN + payload.len()];
    ipv6::emit_header(&mut p, src, dst, nh, payload.len() as u16, 64);
    p[ipv6::HEADER_LEN..].copy_from_slice(payload);
    eth(MAC2, MAC1, ethertype::IPV6, &p)
}

/// A bare SYN (checksum left 0: nothing here verifies it).
pub fn tcp_seg(sport: u16, dport: u16) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    tcp::emit_header(&mut t, sport, dport, 1, 0, tcp::flags::SYN, 1024);
    t
}

/// A datagram with 4 bytes of payload and no checksum.
pub fn udp_dgram(sport: u16, dport: u16) -> Vec<u8> {
    let mut u = vec![0u8; 12];
    udp::emit_header(&mut u, sport, dport, 12, 0);
    u
}

pub fn echo4() -> Vec<u8> {
    let mut m = [0u8; 12];
    icmpv4::emit_echo_reply(&mut m, &[0, 1, 0, 1, 1, 2, 3, 4]);
    m[0] = icmpv4::msg_type::ECHO_REQUEST;
    ip4(A1, A2, protocol::ICMP, &m)
}

pub fn echo6() -> Vec<u8> {
    let mut m = [0u8; 12];
    icmpv6::emit_echo_reply(&mut m, &[0, 1, 0, 1, 1, 2, 3, 4]);
    m[0] = icmpv6::kind::ECHO_REQUEST;
    ip6(B1, B2, next_header::ICMPV6, &m)
}

/// UDP 5353 → 53 behind an 8-byte Hop-by-Hop header (Next Header UDP,
/// length 0 meaning 8 bytes, a PadN option filling them).
pub fn udp6_hop_by_hop() -> Vec<u8> {
    let mut p = vec![next_header::UDP, 0, 1, 4, 0, 0, 0, 0];
    p.extend(udp_dgram(5353, 53));
    ip6(B1, B2, next_header::HOP_BY_HOP, &p)
}

/// `frame` with a tag (`tpid`, `tci`) inserted after its addresses.
pub fn tagged(frame: &[u8], tpid: u16, tci: u16) -> Vec<u8> {
    let mut f = frame[..12].to_vec();
    f.extend(tpid.to_be_bytes());
    f.extend(tci.to_be_bytes());
    f.extend(&frame[12..]);
    f
}

/// One frame of every kind the filter tests use, named.
pub fn zoo() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("arp", arp_request(A1, A2)),
        ("icmp", echo4()),
        ("icmp6", echo6()),
        ("tcp4", ip4(A1, A2, protocol::TCP, &tcp_seg(40000, 80))),
        ("tcp6", ip6(B1, B2, next_header::TCP, &tcp_seg(40000, 443))),
        ("udp4", ip4(A1, A2, protocol::UDP, &udp_dgram(5353, 53))),
        ("udp6", ip6(B1, B2, next_header::UDP, &udp_dgram(5353, 53))),
        ("udp6-hbh", udp6_hop_by_hop()),
    ]
}

/// The frames of the format tests: (interface, frame). Frame `i` is
/// stamped `TS + i` µs, inbound on even `i`, outbound on odd; frame 1 is
/// flagged as a GSO super-frame.
pub fn sample_frames() -> Vec<(u32, Vec<u8>)> {
    vec![
        (0, arp_request(A1, A2)),
        (1, ip4(A1, A2, protocol::TCP, &tcp_seg(40000, 80))),
        (0, ip6(B1, B2, next_header::UDP, &udp_dgram(5353, 53))),
    ]
}

fn sample_record(i: usize, frame: &[u8]) -> Record<'_> {
    Record {
        timestamp_ns: TS + i as u64 * 1000,
        data: frame,
        original_len: frame.len(),
        direction: Some(if i % 2 == 0 {
            Direction::Inbound
        } else {
            Direction::Outbound
        }),
        comment: (i == 1).then_some("gso tcpv4 gso_size 1448"),
    }
}

/// The sample frames as pcapng, on interfaces "web" (0) and "db" (1).
pub fn pcapng_file() -> Vec<u8> {
    let mut f = Vec::new();
    pcapng::write_section_header(&mut f);
    pcapng::write_interface(&mut f, "web", 0);
    pcapng::write_interface(&mut f, "db", 0);
    for (i, (iface, frame)) in sample_frames().iter().enumerate() {
        pcapng::write_packet(&mut f, *iface, 0, &sample_record(i, frame));
    }
    f
}

/// The sample frames as classic pcap.
pub fn pcap_file() -> Vec<u8> {
    let mut f = Vec::new();
    pcap::write_header(&mut f, 0);
    for (i, (_, frame)) in sample_frames().iter().enumerate() {
        pcap::write_record(&mut f, 0, &sample_record(i, frame));
    }
    f
}

/// `frames` as a classic pcap file, frame `i` stamped `TS + i` µs.
pub fn pcap_of(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut f = Vec::new();
    pcap::write_header(&mut f, 0);
    for (i, frame) in frames.iter().enumerate() {
        pcap::write_record(&mut f, 0, &Record::new(TS + i as u64 * 1000, frame));
    }
    f
}

/// Writes `file` to a scratch path named after `name` and runs `tool`
/// with `args` followed by that path (and then `extra`). `None`, with
/// the reason printed, when the tool is not installed: the test is then
/// skipped, not failed. A tool that runs and fails fails the test.
pub fn run_tool(tool: &str, name: &str, file: &[u8], args: &[&str]) -> Option<String> {
    run_tool_with(tool, name, file, args, &[])
}

pub fn run_tool_with(
    tool: &str,
    name: &str,
    file: &[u8],
    args: &[&str],
    extra: &[&str],
) -> Option<String> {
    let path = scratch(name);
    std::fs::write(&path, file).expect("write the capture file");
    let out = Command::new(tool)
        .args(args)
        .arg(&path)
        .args(extra)
        .output();
    let _ = std::fs::remove_file(&path);
    match out {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("skipped: {tool} is not installed");
            None
        }
        Err(e) => panic!("running {tool}: {e}"),
        Ok(o) => {
            let stderr = String::from_utf8_lossy(&o.stderr);
            assert!(o.status.success(), "{tool} {args:?} failed: {stderr}");
            Some(String::from_utf8_lossy(&o.stdout).into_owned())
        }
    }
}

fn scratch(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("lanyard-capture-{}-{name}", std::process::id()))
}

/// What `tcpdump -nn -tt -r` must print for the sample frames, with
/// `digits` of the fraction (6 for µs, 9 for ns).
pub fn check_tcpdump_output(out: &str, digits: usize) {
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let stamp = |i: u64| {
        let ns = TS + i * 1000;
        let frac = format!("{:09}", ns % 1_000_000_000);
        format!("{}.{} ", ns / 1_000_000_000, &frac[..digits])
    };
    for (i, (line, want)) in lines
        .iter()
        .zip([
            "ARP, Request who-has 172.17.0.3 tell 172.17.0.2",
            "IP 172.17.0.2.40000 > 172.17.0.3.80: Flags [S]",
            "IP6 fd00::2.5353 > fd00::3.53:",
        ])
        .enumerate()
    {
        assert!(line.starts_with(&stamp(i as u64)), "{line}");
        assert!(line.contains(want), "{line} lacks {want}");
    }
}
