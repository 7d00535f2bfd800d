#!/usr/bin/env python3
"""Writes the seed corpus: fuzz/corpus/<target>/seed-<name>.

Seeds are small, valid (or deliberately broken) inputs that start each
target off past its first parsing checks; the fuzzer mutates from there.
Only files named seed-* are kept in git (see .gitignore), so run.sh copies
them to a scratch directory before fuzzing.

Run from anywhere: python3 fuzz/make_seeds.py. It replaces every seed-*
file it owns and leaves other files alone.

Virtio-net headers are in the host's byte order (lanyard reads them with
from_ne_bytes); these seeds assume a little-endian host, as x86-64 and
aarch64 Linux are.
"""

import pathlib
import struct

HERE = pathlib.Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
REPO = HERE.parent

# --- frames -----------------------------------------------------------------

NEEDS_CSUM = 1
GSO_TCPV4 = 1
GSO_TCPV6 = 4
GSO_UDP_L4 = 5


def vnet(flags=0, gso_type=0, hdr_len=0, gso_size=0, csum_start=0, csum_offset=0):
    return struct.pack("<BBHHHH", flags, gso_type, hdr_len, gso_size, csum_start, csum_offset)


PLAIN = vnet()


def docker_mac(ip):
    return bytes([0x02, 0x42]) + bytes(ip)


def ip4(s):
    return bytes(int(x) for x in s.split("."))


BROADCAST = b"\xff" * 6
GW_A, C1, C2 = ip4("172.17.0.1"), ip4("172.17.0.2"), ip4("172.17.0.3")


def csum_sum(data, acc=0):
    if len(data) % 2:
        data += b"\0"
    for i in range(0, len(data), 2):
        acc += (data[i] << 8) | data[i + 1]
    return acc


def fold(acc):
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


def checksum(data, acc=0):
    return ~fold(csum_sum(data, acc)) & 0xFFFF


def eth(dst, src, ethertype):
    return dst + src + struct.pack(">H", ethertype)


def arp_request(sender_mac, sender_ip, target_ip):
    body = struct.pack(">HHBBH", 1, 0x0800, 6, 4, 1) + sender_mac + sender_ip + b"\0" * 6 + target_ip
    f = eth(BROADCAST, sender_mac, 0x0806) + body
    return f + b"\0" * (60 - len(f))


def ipv4(src, dst, proto, payload, ident=1):
    h = struct.pack(">BBHHHBBH", 0x45, 0, 20 + len(payload), ident, 0x4000, 64, proto, 0) + src + dst
    h = h[:10] + struct.pack(">H", checksum(h)) + h[12:]
    return h + payload


def pseudo4(src, dst, proto, length):
    return csum_sum(src + dst + struct.pack(">BBH", 0, proto, length))


def tcp(src, dst, sport, dport, seq, ack, flags, payload=b"", partial=False, pseudo=pseudo4):
    h = struct.pack(">HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 64240, 0, 0)
    seg = h + payload
    p = pseudo(src, dst, 6, len(seg))
    c = fold(p) if partial else checksum(seg, p)
    return seg[:16] + struct.pack(">H", c) + seg[18:]


def udp(src, dst, sport, dport, payload, partial=False):
    seg = struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload
    p = pseudo4(src, dst, 17, len(seg))
    c = fold(p) if partial else (checksum(seg, p) or 0xFFFF)
    return seg[:6] + struct.pack(">H", c) + seg[8:]


def icmp_echo(ident, seq, data):
    m = struct.pack(">BBHHH", 8, 0, 0, ident, seq) + data
    return m[:2] + struct.pack(">H", checksum(m)) + m[4:]


def pattern(n):
    return bytes((i * 7) % 251 for i in range(n))


def ipv6(src, dst, nh, payload):
    return struct.pack(">IHBB", 0x60000000, len(payload), nh, 64) + src + dst + payload


def link_local(mac):
    return b"\xfe\x80" + b"\0" * 6 + bytes([mac[0] ^ 2, mac[1], mac[2], 0xFF, 0xFE, mac[3], mac[4], mac[5]])


def pseudo6(src, dst, proto, length):
    return csum_sum(src + dst + struct.pack(">IxxxB", length, proto))


C1_MAC, C2_MAC, GW_A_MAC = docker_mac(C1), docker_mac(C2), docker_mac(GW_A)

ARP_GW = arp_request(C1_MAC, C1, GW_A)
ICMP_ECHO_GW = eth(GW_A_MAC, C1_MAC, 0x0800) + ipv4(C1, GW_A, 1, icmp_echo(0x1234, 1, b"lanyard!" * 7))
TCP_SYN = eth(C2_MAC, C1_MAC, 0x0800) + ipv4(C1, C2, 6, tcp(C1, C2, 40000, 80, 1000, 0, 0x02))
TCP_SYN_GW = eth(GW_A_MAC, C1_MAC, 0x0800) + ipv4(C1, GW_A, 6, tcp(C1, GW_A, 40000, 80, 1000, 0, 0x02))
UDP_OFF_SUBNET = eth(GW_A_MAC, C1_MAC, 0x0800) + ipv4(
    C1, ip4("8.8.8.8"), 17, udp(C1, ip4("8.8.8.8"), 5353, 53, b"query")
)
# A TCP/IPv4 GSO super-frame as a TAP hands it over: 4000 bytes of payload
# for segments of 1448, checksum field holding the pseudo-header sum.
GSO_PAYLOAD = pattern(4000)
TCP_GSO = eth(C2_MAC, C1_MAC, 0x0800) + ipv4(
    C1, C2, 6, tcp(C1, C2, 40000, 5201, 1_000_000, 77, 0x18, GSO_PAYLOAD, partial=True)
)
TCP_GSO_VNET = vnet(NEEDS_CSUM, GSO_TCPV4, 54, 1448, 34, 16)
UDP_PARTIAL = eth(BROADCAST, C1_MAC, 0x0800) + ipv4(
    C1, ip4("172.17.255.255"), 17, udp(C1, ip4("172.17.255.255"), 68, 67, pattern(300), partial=True)
)
UDP_PARTIAL_VNET = vnet(NEEDS_CSUM, 0, 0, 0, 34, 6)
V6_SRC, V6_DST = link_local(C1_MAC), link_local(C2_MAC)
TCP6_GSO = eth(C2_MAC, C1_MAC, 0x86DD) + ipv6(
    V6_SRC, V6_DST, 6, tcp(V6_SRC, V6_DST, 40000, 5201, 5, 0, 0x18, pattern(3000), partial=True, pseudo=pseudo6)
)
TCP6_GSO_VNET = vnet(NEEDS_CSUM, GSO_TCPV6, 74, 1000, 54, 16)
TRUNCATED = TCP_SYN[:20]

# --- pipeline steps (format documented in fuzz_targets/pipeline.rs) ----------

RAW, ARP, ICMP4, TCP4, UDP4, TCP6, UDP6, REPLUG = range(8)
M_PLAIN, M_CSUM, M_GSO, M_RAW = (m << 4 for m in range(4))


def step(port, kind, body=b"", clock=0, hdr=PLAIN):
    assert len(body) < 65536
    return bytes([port, clock, kind]) + hdr + struct.pack(">H", len(body)) + body


def seconds(n):
    return 0x80 | n


# Template bodies. Selector values (see Builder in pipeline.rs):
#   dst MAC: 0 gateway, 1 broadcast, 2 + 4*k port k's MAC, 3 + 6 bytes
#   src MAC: 0 own; for a trusted port 8*x (x > 0) host x behind it
#   IPv4 (src as given, dst XOR 1): 0 own, 1 gateway, 2 + 8*k port k's, 6 + 4 bytes
def port_mac_sel(k):
    return 2 + 4 * k


def ip_sel_port(k):
    return 2 + 8 * k


def tmpl_arp(dst_sel=1, src_sel=0, op=0, sender=0, target=0):
    return bytes([dst_sel, src_sel, op, sender, target]) + b"\0" * 6


def tmpl_ip_head(dst_sel=0, src_sel=0, tweak=0, src_ip=0, dst_ip=0, ttl=0, ident=0, dst_mac=b"", vlan=b""):
    """The Ethernet and IPv4 fields of a template body. dst_mac: the six
    bytes a dst_sel of 3 reads; vlan: the TCI a VLAN tweak reads."""
    return (
        bytes([dst_sel]) + dst_mac + bytes([src_sel, tweak]) + vlan + bytes([src_ip, dst_ip, ttl]) + struct.pack(">H", ident)
    )


def tmpl_payload(n, fill=b"lanyard"):
    return struct.pack(">H", n) + fill


def tmpl_icmp(head, n=56):
    return head + bytes([0, 0]) + struct.pack(">I", 0x12340001) + tmpl_payload(n)


def tmpl_tcp(head, sport=40000, dport=80, seq=1000, ack=0, flags=0x02, n=0):
    # The flags byte is XORed with SYN by the builder.
    return head + struct.pack(">HHIIBH", sport, dport, seq, ack, flags ^ 0x02, 64240) + tmpl_payload(n)


def tmpl_udp(head, sport=5353, dport=53, n=16):
    return head + struct.pack(">HH", sport, dport) + tmpl_payload(n)


def tmpl_v6_head(dst_sel=0, src_sel=0, tweak=0, v6_src=0, v6_dst=0):
    return bytes([dst_sel, src_sel, tweak, v6_src, v6_dst])


def pipeline_seeds():
    to_c2 = tmpl_ip_head(dst_sel=port_mac_sel(1), dst_ip=ip_sel_port(1) ^ 1)
    gso_hdr = vnet(gso_size=1448)
    s = {}
    s["arp-request-gateway"] = step(0, ARP, tmpl_arp())
    s["icmp-echo-gateway"] = step(0, ICMP4, tmpl_icmp(tmpl_ip_head()))
    s["tcp-syn-to-endpoint"] = step(0, TCP4, tmpl_tcp(to_c2))
    s["tcp-syn-to-gateway"] = step(1, TCP4, tmpl_tcp(tmpl_ip_head()))
    # From the FULL endpoint to the NONE one: cut into segments.
    s["tcp-gso-superframe"] = step(0, TCP4 | M_GSO, tmpl_tcp(to_c2, flags=0x18, n=10000), hdr=gso_hdr)
    s["udp-partial-csum-broadcast"] = step(0, UDP4 | M_CSUM, tmpl_udp(tmpl_ip_head(dst_sel=1, dst_ip=3 ^ 1)))
    s["udp-off-subnet"] = step(4, UDP4, tmpl_udp_off_subnet())
    s["tcp6-gso"] = step(4, TCP6 | M_GSO, tmpl_tcp(tmpl_v6_head(dst_sel=port_mac_sel(5), v6_dst=3 * 5), flags=0x18, n=3000), hdr=vnet(gso_size=1000))
    s["truncated"] = step(0, RAW, TRUNCATED)
    # Raw frames, for the mutator to work on bytes directly.
    s["raw-arp-request"] = step(0, RAW, ARP_GW)
    s["raw-tcp-gso"] = step(0, RAW, TCP_GSO, hdr=TCP_GSO_VNET)
    s["raw-udp-partial"] = step(0, RAW, UDP_PARTIAL, hdr=UDP_PARTIAL_VNET)
    # The MAC table at work: hosts behind the uplinks of network A appear,
    # overflow port 2's share, move to port 3, age out; endpoint 0 talks
    # to one of them in between.
    learn = b""
    for host in range(1, 7):
        learn += step(2, UDP4, tmpl_udp(tmpl_ip_head(dst_sel=1, src_sel=8 * host, dst_ip=3 ^ 1)), clock=10)
    learn += step(3, UDP4, tmpl_udp(tmpl_ip_head(dst_sel=1, src_sel=8 * 2, dst_ip=3 ^ 1)), clock=10)
    learn += step(0, ARP, tmpl_arp(), clock=50)
    host2 = bytes([0x02, 0xEE, 0, 0, 0, 2])
    learn += step(0, UDP4, tmpl_udp(tmpl_ip_head(dst_sel=3, dst_mac=host2)), clock=10)
    learn += step(2, ICMP4, tmpl_icmp(tmpl_ip_head()), clock=seconds(6))
    learn += step(0, TCP4, tmpl_tcp(tmpl_ip_head()), clock=seconds(70))
    s["fdb-learn-move-age"] = learn
    # Network B's table (4 entries) filled by its uplink while endpoint 4 is
    # unplugged: plugging it back in fails until the learned MACs age out.
    bcast_b = tmpl_ip_head(dst_sel=1, dst_ip=3 ^ 1)
    replug = step(6, UDP4, tmpl_udp(tmpl_ip_head(dst_sel=1, src_sel=8 * 1, dst_ip=3 ^ 1)))
    replug += step(6, UDP4, tmpl_udp(tmpl_ip_head(dst_sel=1, src_sel=8 * 2, dst_ip=3 ^ 1)))
    replug += step(4, REPLUG)
    replug += step(6, UDP4, tmpl_udp(tmpl_ip_head(dst_sel=1, src_sel=8 * 3, dst_ip=3 ^ 1)))
    replug += step(4, REPLUG)
    replug += step(5, UDP4, tmpl_udp(bcast_b))
    replug += step(4, REPLUG, clock=seconds(61))
    replug += step(5, TCP4, tmpl_tcp(tmpl_ip_head(dst_sel=port_mac_sel(4), dst_ip=ip_sel_port(4) ^ 1)))
    s["replug-fdb-full"] = replug
    # The gateway's ICMP error budget (a burst of 50): 52 datagrams to an
    # off-subnet address, then a second later one more, once it refilled.
    off = step(4, UDP4, tmpl_udp_off_subnet())
    s["icmp-error-rate-limit"] = off * 52 + step(4, UDP4, tmpl_udp_off_subnet(), clock=seconds(1))
    return s


def tmpl_udp_off_subnet():
    # Endpoint 4 (network B) to 8.8.8.8 through its gateway: an ICMP
    # network unreachable comes back. dst IP selector 6 XOR 1 = 7, then the
    # four address bytes.
    head = bytes([0, 0, 0]) + bytes([0, 6 ^ 1]) + b"\x08\x08\x08\x08" + bytes([0]) + struct.pack(">H", 7)
    return head + struct.pack(">HH", 5353, 53) + tmpl_payload(16)


# --- the other targets ----------------------------------------------------------


def wire_seeds():
    return {
        "arp-request": PLAIN + ARP_GW,
        "icmp-echo": PLAIN + ICMP_ECHO_GW,
        "tcp-syn": PLAIN + TCP_SYN,
        "tcp-gso-superframe": TCP_GSO_VNET + TCP_GSO,
        "udp-partial-csum": UDP_PARTIAL_VNET + UDP_PARTIAL,
        "tcp6-gso": TCP6_GSO_VNET + TCP6_GSO,
        "udp-off-subnet": PLAIN + UDP_OFF_SUBNET,
        "truncated": PLAIN + TRUNCATED,
    }


def config_seeds():
    default = (REPO / "configs" / "default.toml").read_bytes()
    return {
        "default": default,
        "two-networks": b"""[daemon]
log_level = "debug"

[limits]
max_ports = 16
fdb_max_entries = 64
fdb_max_per_port = 8

[[network]]
name = "default"
subnet = "172.17.0.0/16"

[[network]]
name = "lab"
subnet = "10.10.0.0/24"
gateway = "10.10.0.254"
ip_range = "10.10.0.128/25"
mtu = 1500
mac_aging_secs = 30
""",
        "broken": b"""[limits]
max_ports = -1
fdb_max_per_port = 99999999999999999999

[[network]]
name = "-bad"
subnet = "10.0.0.1/33"
gateway = "11.0.0.1"
unknown = true
[[network
""",
    }


def control_seeds():
    return {
        "stats": b'{"op":"stats"}\n',
        "network-inspect": b'{"op":"network_inspect","name":"default"}\n',
        "network-ls": b'{"op":"network_ls"}',
        "fdb": b'{"op":"fdb","network":null}',
        "attach": b'{"op":"attach","container_id":"c0ffee","name":"web","network":"default","ip":"172.17.0.5","mtu":1500}',
        "attach-interface": b'{"op":"attach_interface","network":"default","ifname":"veth0"}',
        "detach-interface": b'{"op":"detach_interface","ifname":"veth0"}',
        "junk": b'{"op":"stats","x":[1,2,{"y":"\\ud800"}]',
        "port-add": b'{"op":"port_add","container":"web","spec":"8080:80/udp"}',
        "conntrack": b'{"op":"conntrack"}',
    }


def publish_seeds():
    """`-p` specs: every documented form, and a few refusals."""
    specs = ["8080:80", "127.0.0.1:8080:80/udp", "[::1]:8080:80", "8000-8010:8000-8010",
             "80", "127.0.0.1::80/tcp", "0:80", "8000-8001:80"]
    return {f"spec-{i}": s.encode() for i, s in enumerate(specs)}


def dns_dhcp_seeds():
    """A DNS query for web (with EDNS), a PTR query, and a DHCPDISCOVER."""
    def q(name, qtype):
        b = bytes([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1])
        for label in name.split("."):
            b += bytes([len(label)]) + label.encode()
        b += b"\x00" + struct.pack("!HH", qtype, 1)
        return b + b"\x00\x00\x29\x10\x00\x00\x00\x00\x00\x00\x00"
    discover = bytearray(240)
    discover[0:3] = b"\x01\x01\x06"
    discover[4:8] = b"\xde\xad\xbe\xef"
    discover[28:34] = b"\x02\x42\x0a\x00\x00\x09"
    discover[236:240] = b"\x63\x82\x53\x63"
    discover += b"\x35\x01\x01\x32\x04\x0a\x00\x00\x09\x0c\x02vm\xff"
    return {
        "dns-a": q("web.lanyard.internal", 1),
        "dns-ptr": q("2.0.17.172.in-addr.arpa", 12),
        "dhcp-discover": bytes(discover),
    }


def main():
    targets = {
        "wire": wire_seeds(),
        "pipeline": pipeline_seeds(),
        "config": config_seeds(),
        "control_request": control_seeds(),
        "publish_spec": publish_seeds(),
        "dns_dhcp": dns_dhcp_seeds(),
    }
    for target, seeds in targets.items():
        d = CORPUS / target
        d.mkdir(parents=True, exist_ok=True)
        for old in d.glob("seed-*"):
            old.unlink()
        for name, data in seeds.items():
            (d / f"seed-{name}").write_bytes(data)
        print(f"{target}: {len(seeds)} seeds")


if __name__ == "__main__":
    main()
