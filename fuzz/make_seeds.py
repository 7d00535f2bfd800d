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

import json
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
HELD = 0x40  # the port's turn goes on after this frame


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


def tmpl_tcp(head, sport=40000, dport=80, seq=1000, ack=0, flags=0x02, n=0, fill=b"lanyard"):
    # The flags byte is XORed with SYN by the builder.
    return head + struct.pack(">HHIIBH", sport, dport, seq, ack, flags ^ 0x02, 64240) + tmpl_payload(n, fill)


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
    # IPv6 destinations (dst selector mod 6): 0 + 6*k port k's link-local,
    # 1 all nodes, 2 the gateway, 3 off the subnet (2001:db8::sel), 4 + 6*k
    # port k's global; sources: 0 link-local, 1..0x7f the port's global.
    s["tcp6-gso"] = step(4, TCP6 | M_GSO, tmpl_tcp(tmpl_v6_head(dst_sel=port_mac_sel(5), v6_dst=6 * 5), flags=0x18, n=3000), hdr=vnet(gso_size=1000))
    gw6 = tmpl_v6_head(v6_src=1, v6_dst=2)
    s["tcp6-syn-gateway-dns"] = step(0, TCP6, tmpl_tcp(gw6, dport=53))
    s["tcp6-syn-gateway-loopback"] = step(1, TCP6, tmpl_tcp(gw6, dport=22))
    s["tcp6-syn-off-link"] = step(0, TCP6, tmpl_tcp(tmpl_v6_head(v6_src=1, v6_dst=3), dport=443))
    s["udp6-gateway-dns"] = step(0, UDP6, tmpl_udp(gw6, sport=40000, dport=53))
    s["udp6-off-link"] = step(0, UDP6 | M_CSUM, tmpl_udp(tmpl_v6_head(v6_src=1, v6_dst=9), sport=40001, dport=7000))
    s["tcp6-to-neighbour-global"] = step(0, TCP6, tmpl_tcp(tmpl_v6_head(dst_sel=port_mac_sel(1), v6_src=1, v6_dst=4 + 6 * 1)))
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
    s.update(pipeline_nat_seeds())
    return s


# --- pipeline: the NAT over the fake host -------------------------------------

# Host steps (kind bit 3): feed the fakes' scripts, deliver a poll event,
# run the NAT's timers.
FEED, EVENT, TICK = 0x08, 0x09, 0x0A
READABLE, WRITABLE = 1, 2
# The REPLY tweak: a TCP/UDP template answering the last segment the
# gateway sent the port (destination, ports, seq/ack continued).
REPLY = 0x80
# Flags as the TCP template takes them (XORed with SYN by the builder).
SYN, ACK, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04

# Poll tokens in registration order. Port 0's two published ports register
# first (on its owner, shard 0), so the first flow's token is the third;
# the same index holds in the two-shard run (shard 0's tokens come first).
TOK_FWD_TCP, TOK_FWD_UDP, TOK_FIRST = 0, 1, 2


def feed(script):
    return step(0, FEED, script)


def event(sel, ev=0, clock=0):
    return step(0, EVENT, bytes([sel, ev]), clock=clock)


def tick(clock):
    return step(0, TICK, clock=clock)


def ip_head(dst=None, src=None, dst_sel=0, src_sel=0, dst_mac_sel=0, src_mac_sel=0, tweak=0, ident=0):
    """Ethernet + IPv4 fields of a template body, with a literal
    destination (and source) address when given: selector 6 (7 for the
    destination, which the builder XORs with 1) reads four bytes."""
    b = bytes([dst_mac_sel, src_mac_sel, tweak])
    if src is not None:
        src_sel = 6
    if dst is not None:
        dst_sel = 7 ^ 1
    b += bytes([src_sel, dst_sel])
    if src is not None:
        b += ip4(src)
    if dst is not None:
        b += ip4(dst)
    return b + bytes([0]) + struct.pack(">H", ident)


def reply_head():
    # Destination selector 0 (the gateway, no address bytes): REPLY puts
    # the last segment's source there.
    return ip_head(tweak=REPLY)


def recv_data(data):
    """Script bytes for one recv() that returns `data`."""
    return bytes([0]) + struct.pack(">H", len(data)) + data


def dns_query(name, qtype=1, ident=0x4242):
    b = struct.pack(">HHHHHH", ident, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        b += bytes([len(label)]) + label.encode()
    return b + b"\0" + struct.pack(">HH", qtype, 1)


def dns_answer(query, addr=b"\x0a\x00\x00\x01"):
    """An answer to `query` (same id and question) with one A record."""
    a = query[:2] + b"\x81\x80" + query[4:6] + b"\x00\x01\x00\x00\x00\x00" + query[12:]
    return a + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + addr


def udp_with(head, sport, dport, payload):
    """A UDP template carrying exactly `payload` (its length, then the
    bytes, which the builder repeats only past their end)."""
    return head + struct.pack(">HHH", sport, dport, len(payload)) + payload


def pipeline_nat_seeds():
    s = {}
    remote = "10.200.0.1"
    syn = step(0, TCP4, tmpl_tcp(ip_head(dst=remote), sport=40000, dport=80, seq=1000))
    http = b"GET / HTTP/1.0\r\n\r\n"
    # A TCP flow's whole life: connect, SYN-ACK (writable), the container's
    # ACK with a request, the host's answer (readable), a 3000-byte answer
    # (a GSO super-frame to the FULL port), EOF (FIN to the container),
    # the container's FIN, close.
    est = syn
    est += event(TOK_FIRST, WRITABLE)
    est += step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=ACK | PSH, n=len(http), fill=http))
    # recv(MSG_PEEK) gives 64 bytes; send_buffer (size, queued) 4 KiB, empty.
    est += feed(recv_data(pattern(64)) + b"\x00\x00")
    est += event(TOK_FIRST, READABLE)
    est += step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=ACK))
    est += feed(recv_data(pattern(3000)) + b"\x0f\x00")
    est += event(TOK_FIRST, READABLE)
    est += step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=ACK))
    # EOF: recv gives 0 (script byte 6).
    est += feed(b"\x06")
    est += event(TOK_FIRST, READABLE)
    est += step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=FIN | ACK))
    s["tcp-established"] = est
    # Data toward the container that it never acknowledges: retransmission
    # timers (200 ms doubling to 3 s), then the flow is given up (RST).
    rtx = syn + event(TOK_FIRST, WRITABLE)
    rtx += step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=ACK))
    rtx += feed(recv_data(pattern(200)) + b"\x00\x00")
    rtx += event(TOK_FIRST, READABLE)
    # The fake forgets what it gave; the kernel would still hold the bytes,
    # so each timer that fires is given them again: set_peek_off (rewind),
    # the peek, send_buffer.
    rtx += tick(120)
    for i in range(14):
        rtx += feed(b"\xff" + recv_data(pattern(200)) + b"\x00\x00")
        rtx += tick(seconds(3))
    s["tcp-retransmit-give-up"] = rtx
    # Connects that fail: refused at once (script byte 0), refused later
    # (take_error), unreachable (script byte 1: ICMP net unreachable).
    s["tcp-connect-refused"] = feed(b"\x00") + syn
    s["tcp-connect-fails-later"] = syn + feed(b"\x00") + event(TOK_FIRST, WRITABLE)
    s["tcp-connect-unreachable"] = feed(b"\x01") + syn
    # The container resets its connection; a stale event for the flow.
    s["tcp-reset-stale-event"] = (
        syn + event(TOK_FIRST, WRITABLE)
        + step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=RST))
        + event(0x80 | TOK_FIRST, READABLE | WRITABLE)
    )
    # Destination policy: the host's loopback through the gateway for the
    # endpoint that may (port 1), refused for the one that may not (port 0)
    # and as given (127.0.0.1, 0.0.0.0); group addresses.
    pol = step(1, TCP4, tmpl_tcp(ip_head(), dport=22))
    pol += step(0, TCP4, tmpl_tcp(ip_head(), dport=22))
    pol += step(0, TCP4, tmpl_tcp(ip_head(dst="127.0.0.1"), dport=22))
    pol += step(1, TCP4, tmpl_tcp(ip_head(dst="127.0.0.1"), dport=22))
    pol += step(0, TCP4, tmpl_tcp(ip_head(dst="0.0.0.0"), dport=22))
    pol += step(1, UDP4, tmpl_udp(ip_head(dst="127.0.0.53"), dport=53))
    pol += step(0, UDP4, tmpl_udp(ip_head(dst="224.0.0.251"), dport=5353))
    pol += step(0, ICMP4, tmpl_icmp(ip_head(dst="127.0.0.1")))
    pol += step(1, UDP4, tmpl_udp(ip_head(), dport=9999))
    s["policy-loopback"] = pol
    # UDP: a flow, an answer from the host (readable), the flow expires.
    udp = step(1, UDP4, tmpl_udp(ip_head(dst=remote), sport=5000, dport=7000))
    udp += feed(recv_data(b"pong" * 4))
    udp += event(TOK_FIRST, READABLE)
    udp += step(1, UDP4, tmpl_udp(reply_head(), sport=0, dport=0))
    udp += tick(seconds(100)) + tick(seconds(100))
    s["udp-flow"] = udp
    # A held turn (kind & 0x40): one flow's datagrams gathered into one UDP
    # GSO send, a shorter one closing the batch, another flow's ending it,
    # then a send the fake refuses (EMSGSIZE: one by one) and a tick.
    held = b""
    for n in (64, 64, 64, 30, 64):
        held += step(1, UDP4 | HELD, tmpl_udp(ip_head(dst=remote), sport=5100, dport=7100, n=n))
    held += step(1, UDP4 | HELD, tmpl_udp(ip_head(dst=remote), sport=5101, dport=7100, n=64))
    held += step(1, UDP4, tmpl_udp(ip_head(dst=remote), sport=5101, dport=7100, n=64))
    held += feed(b"\x00")
    for _ in range(3):
        held += step(1, UDP4 | HELD, tmpl_udp(ip_head(dst=remote), sport=5100, dport=7100, n=100))
    held += tick(seconds(1))
    s["udp-held-batch"] = held
    # The per-container bound (8): nine destinations, the ninth refused.
    lim = b""
    for i in range(9):
        lim += step(1, UDP4, tmpl_udp(ip_head(dst=remote), sport=5000, dport=7000 + i))
    s["udp-per-container-limit"] = lim
    # A full table (16): hosts behind uplink port 2 open TCP connections
    # from 17 addresses; the oldest (synchronized) flows are evicted, reset.
    full = b""
    for i in range(17):
        full += step(2, TCP4, tmpl_tcp(ip_head(src=f"172.17.5.{i + 1}", dst=remote), dport=443))
        if i < 16:
            full += event(TOK_FIRST + i, WRITABLE)
    s["tcp-table-full"] = full
    # A published port's listener with clients waiting (the spent script
    # accepts every time): the container's bound (8) holds, the rest are
    # refused; all look alike (10.200.0.255:65535), so each gets an alias
    # port.
    s["published-tcp-accept-flood"] = event(TOK_FWD_TCP, READABLE) + step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=9, ack=0, flags=SYN | ACK))
    # ICMP echo to the world: a ping socket, an answer (readable).
    echo = step(0, ICMP4, tmpl_icmp(ip_head(dst="8.8.8.8")))
    echo += feed(recv_data(struct.pack(">BBHHH", 0, 0, 0, 99, 1) + b"lanyard!"))
    echo += event(TOK_FIRST, READABLE)
    s["icmp-echo-routed"] = echo
    # DNS at the gateway: local names, reverse, the host, NXDOMAIN, and a
    # forwarded name whose answers are forged (wrong id, wrong source).
    q = dns_query("example.com")
    dns = b""
    for name, qt in (("web", 1), ("db.lanyard.internal", 1), ("host.docker.internal", 1),
                     ("2.0.17.172.in-addr.arpa", 12), ("nothing.lanyard.internal", 1), ("web", 28)):
        dns += step(1, UDP4, udp_with(ip_head(), 33000, 53, dns_query(name, qt)))
    dns += step(1, UDP4, udp_with(ip_head(), 33001, 53, q))
    # Three datagrams on the query's socket: from the upstream (id wrong),
    # from another port of its address, from another address.
    dns += feed(recv_data(dns_answer(q)) + b"\x00" + recv_data(dns_answer(q)) + b"\x01"
                + recv_data(dns_answer(q)) + b"\x02")
    dns += event(TOK_FIRST, READABLE)
    dns += tick(seconds(6))
    s["dns-udp"] = dns
    # Network B is internal: a name not ours gets SERVFAIL, never goes out.
    s["dns-internal"] = step(4, UDP4, udp_with(ip_head(), 33000, 53, q)) + \
        step(6, UDP4, udp_with(ip_head(src="10.10.0.77"), 33000, 53, q))
    # DNS over TCP to the gateway: the NAT connects to the (fake) server on
    # loopback and says who asks (local_addr: two script bytes).
    qtcp = struct.pack(">H", len(q)) + q
    dt = step(4, TCP4, tmpl_tcp(ip_head(), dport=53))
    dt += event(TOK_FIRST, WRITABLE)
    dt += step(4, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=ACK | PSH, n=len(qtcp), fill=qtcp))
    s["dns-tcp"] = dt
    # A published TCP port: a client (10.200.0.3:8080) is accepted, the
    # NAT's SYN goes to the container, which answers; data both ways.
    pub = feed(b"\x03\x1f\x90\xff\xff" + b"\x00\x00\x00")
    pub += event(TOK_FWD_TCP, READABLE)
    pub += step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=7000, ack=0, flags=SYN | ACK))
    pub += step(0, TCP4, tmpl_tcp(reply_head(), sport=0, dport=0, seq=0, ack=0, flags=ACK | PSH, n=32))
    pub += feed(recv_data(b"hello from the client\n") + b"\x00\x00")
    pub += event(TOK_FIRST, READABLE)
    s["published-tcp"] = pub
    # A published UDP port: a datagram from 10.200.0.9:53, the container's
    # answer goes back through the shared socket.
    pu = feed(recv_data(b"ping") + b"\x00" + b"\x07")
    pu += event(TOK_FWD_UDP, READABLE)
    pu += step(0, UDP4, tmpl_udp(reply_head(), sport=0, dport=0))
    s["published-udp"] = pu
    # A flow whose container restarts: its flows go; events for the old
    # token find nothing.
    rp = syn + event(TOK_FIRST, WRITABLE) + step(0, REPLUG) + event(0x80 | TOK_FIRST) + step(0, REPLUG) + syn
    s["replug-with-flows"] = rp
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
        "capture": b'{"op":"capture","network":"bridge","port":"web","filter":"tcp port 80 and not arp","snaplen":96,"count":10,"format":"pcap"}',
        "attach-dns": b'{"op":"attach","container_id":"c1","network":"bridge","dns":["127.0.0.1","::1"]}',
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


# --- dns (format documented in fuzz_targets/dns.rs) --------------------------

D_NET_ADD, D_ADD, D_REMOVE, D_NET_REMOVE, D_RESOLVE, D_LOCAL, D_QUERY, D_FEED, D_ANSWER, D_READABLE, D_TICK, D_PORT_REMOVED = range(12)
D_BURST, D_RAW = 0x80, 0x40
VOCAB = ["web", "db", "api", "many", "Web", "host", "c0ffee123456", "x.y", "a-b_c", "lanyard.internal"]


def d_name(kind, word="web"):
    """A name selector (pick_name): kind 0 a word, 2 word.lanyard.internal,
    3 host.docker.internal, 4 host.lanyard.internal, 6 example.com."""
    return bytes([kind + 8 * VOCAB.index(word)])


def d_reverse(rec=0):
    # Kind 5: the reverse name of record `rec`'s address.
    return bytes([5 + 8 * rec, 0])


def d_query(name_sel, qtype_sel=0, qclass_sel=0, ident=0x1234, upper=0):
    return name_sel + bytes([qtype_sel, qclass_sel]) + struct.pack(">H", ident) + bytes([upper])


def d_add(net, ip_sel, container, words):
    return bytes([D_ADD, net, ip_sel, container, len(words)]) + bytes(VOCAB.index(w) for w in words)


def d_query_op(ep, query, client_port=33000, op=D_QUERY, count=None):
    """A query op; `count` (a power of two up to 256) makes it a burst."""
    b = bytes([op, ep, 0]) + struct.pack(">H", client_port) + query
    if count is not None:
        assert count & (count - 1) == 0 and count <= 256
        b += bytes([count.bit_length() - 1])
    return b


def d_answer(datagrams, pending=0):
    """Datagrams for a pending query: each (kind, fields) as the answer op
    reads them; kind 0 is the genuine answer from the first upstream."""
    b = bytes([D_ANSWER, pending, len(datagrams) - 1])
    for kind, fields in datagrams:
        b += bytes([kind]) + fields
    return b


GENUINE = (0, struct.pack(">H", 0) + b"\x00")            # right id, flags as sent, no tail
FORGED_ID = (1, struct.pack(">H", 0x0101) + struct.pack(">H", 0) + b"\x00")
FORGED_PEER = (2 << 5, struct.pack(">H", 0) + b"\x00")   # from 10.200.0.9:5353 (one upstream)
OTHER_NAME = (8, struct.pack(">H", 0) + bytes([2, 0x20]) + b"\x00")
UPPER = (4, struct.pack(">H", 0) + b"\x03ttl")


def dns_seeds():
    nets = bytes([D_NET_ADD, 0, 0, D_NET_ADD, 1, 1, D_NET_ADD, 2, 0])
    names = (
        d_add(0, 0, 0, ["web", "api"])
        + d_add(0, 1, 1, ["db", "api", "many"])
        + d_add(1, 0, 0, ["web"])      # container 0 on network 1 too
        + d_add(1, 1, 2, ["many"])
        + d_add(2, 0, 3, ["many", "x.y"])
    )
    lookups = b""
    for asker in (0, 1):
        for n in (d_name(0, "web"), d_name(0, "api"), d_name(0, "many"), d_name(2, "db"), d_name(3), d_name(4),
                  d_reverse(0), d_reverse(1), d_name(6), d_name(0, "x.y"), d_name(2, "lanyard.internal")):
            lookups += bytes([D_RESOLVE, asker, 0]) + n + bytes([0])
            lookups += bytes([D_LOCAL, asker, 0]) + d_query(n) + bytes([2])
    lookups += bytes([D_RESOLVE, 0, 0]) + d_name(0, "web") + bytes([2])   # AAAA: no data
    lookups += bytes([D_LOCAL, 0, 0]) + d_query(d_name(0, "many"), upper=1) + bytes([0])  # 12 bytes: too short
    lookups += bytes([D_LOCAL, 0, 0]) + d_query(d_name(0, "many"), qclass_sel=6) + bytes([4])  # CH
    changes = bytes([D_REMOVE, 0, 1, D_NET_REMOVE, 2]) + d_add(0, 0, 4, ["db"])
    changes += bytes([D_RESOLVE, 0, 1]) + d_name(0, "db") + bytes([0])
    ex = d_query(d_name(6), ident=0x4242)
    s = {
        "names-and-lookups": b"\x01" + nets + names + lookups + changes,
        "dual-stack-lookups": b"\x01" + dual_stack_lookups(),
        "dual-stack-reverse-and-removal": b"\x01" + dual_stack_reverse_and_removal(),
        "forward-genuine": b"\x01" + nets + d_query_op(0, ex) + d_answer([GENUINE]),
        "forward-forged-then-genuine": b"\x01" + nets + d_query_op(0, ex)
        + d_answer([FORGED_ID, FORGED_PEER, OTHER_NAME, UPPER]),
        "forward-v4-and-v6": b"\x03" + nets + d_query_op(0, ex) + d_answer([(1 << 5, struct.pack(">H", 0) + b"\x00")]),
        # Network 1 is internal: its endpoint gets SERVFAIL for a name not
        # ours, and its names; once it is a container that is also on
        # network 0, its queries are forwarded (docker's rule).
        "internal-servfail": b"\x01" + nets + d_query_op(1, ex) + d_query_op(1, d_query(d_name(0, "web")))
        + names + d_query_op(1, ex) + d_query_op(1, d_query(d_name(0, "web"))),
        "no-upstream": b"\x00" + nets + d_query_op(0, ex),
        "timeout-and-late-answer": b"\x01" + nets + d_query_op(0, ex) + bytes([D_TICK]) + struct.pack(">H", 0x8006)
        + d_answer([GENUINE]) + bytes([D_READABLE, 0]),
        "port-removed": b"\x01" + nets + d_query_op(0, ex) + d_query_op(2, ex) + bytes([D_PORT_REMOVED, 0])
        + d_answer([GENUINE]),
        "burst-rate-limit": b"\x01" + nets + d_query_op(0, ex, op=D_QUERY | D_BURST, count=256)
        + d_query_op(0, ex, op=D_QUERY | D_BURST, count=256),
        # Three clients up to their burst (400 each): the pending table
        # (1024) fills, the rest are refused.
        "pending-full": b"\x01" + nets + b"".join(
            d_query_op(ep, ex, op=D_QUERY | D_BURST, count=c) for ep in (0, 2, 3) for c in (256, 128, 16)),
        "raw-query": b"\x01" + nets + bytes([D_QUERY | D_RAW, 0, 0]) + struct.pack(">H", 5353)
        + bytes([len(dns_query("example.org"))]) + dns_query("example.org"),
        "script-fed": b"\x01" + nets + d_query_op(0, ex) + bytes([D_FEED, 4, 0, 0, 12, 0]) + bytes([D_READABLE, 0]),
    }
    return s


D_V6 = 0x40  # an ip selector's IPv6 bit: 0x40 is fd00:<net>::2, 0x41 ::3
Q_A, Q_AAAA, Q_PTR, Q_ANY = 0, 2, 3, 4  # qtype selectors


def d_spoilt_reverse(rec, mode, sub=0):
    """Kind 5 past every record, then an ip6.arpa name of record `rec`
    spoilt: mode 5 (31 labels), 6 with sub 0 (33 labels), 1 (a two-digit
    label), 2 (a non-hex one), 7 (upper case)."""
    return bytes([5 + 8 * 31, mode + 8 * rec, sub])


def dual_stack_table():
    # Networks 0 and 1 dual stack, 2 IPv4 only.
    nets = bytes([D_NET_ADD, 0, 0, D_NET_ADD, 1, 0, D_NET_ADD, 2, 2])
    names = (
        d_add(0, 0, 0, ["web", "api"])             # rec 0: ctr0 172.17.0.2
        + d_add(0, D_V6, 0, ["web", "api"])        # rec 1: ctr0 fd00:17::2
        + d_add(0, D_V6 | 1, 1, ["db", "api"])     # rec 2: ctr1 fd00:17::3, IPv6 only
        + d_add(1, D_V6, 2, ["many"])              # rec 3: ctr2 fd00:9::2
        + d_add(1, 1, 0, ["web"])                  # rec 4: ctr0 on network 1 by IPv4
        + d_add(2, 0, 3, ["many"])                 # rec 5: ctr3 192.168.5.2
    )
    return nets + names  # 9 ops


def dual_stack_lookups():
    """A, AAAA and PTR lookups by IPv4 and IPv6 askers (at most MAX_OPS = 96
    operations, as every input)."""
    lookups = b""
    for net, asker in ((0, 0), (0, D_V6), (1, D_V6)):
        for n in (d_name(0, "web"), d_name(0, "api"), d_name(0, "db"), d_name(0, "many"), d_name(3),
                  d_reverse(1), d_reverse(2), d_reverse(3)):
            qt = Q_PTR if n[0] % 8 == 5 else Q_A
            lookups += bytes([D_RESOLVE, net, asker]) + n + bytes([Q_AAAA])
            lookups += bytes([D_RESOLVE, net, asker]) + n + bytes([qt])
            lookups += bytes([D_LOCAL, net, asker]) + d_query(n, Q_AAAA if qt == Q_A else qt, upper=1) + bytes([2])
    # Network 2 has no IPv6: the gateway's AAAA is NODATA; ANY on network 0.
    lookups += bytes([D_RESOLVE, 2, 0]) + d_name(3) + bytes([Q_AAAA])
    lookups += bytes([D_LOCAL, 0, 0]) + d_query(d_name(0, "web"), Q_ANY) + bytes([2])
    lookups += bytes([D_LOCAL, 0, D_V6]) + d_query(d_name(4), Q_ANY) + bytes([2])
    return dual_stack_table() + lookups


def dual_stack_reverse_and_removal():
    # An address in fd00:17::/64 nobody has: NXDOMAIN; spoilt names: not ours.
    unknown = bytes([5 + 8 * 31, 3 + 8 * 0]) + struct.pack(">H", 0x99)
    lookups = b""
    for n in (unknown, d_spoilt_reverse(1, 5), d_spoilt_reverse(1, 6, 0), d_spoilt_reverse(1, 6, 1),
              d_spoilt_reverse(1, 6, 2), d_spoilt_reverse(1, 7)):
        lookups += bytes([D_RESOLVE, 0, D_V6]) + n + bytes([Q_PTR])
        lookups += bytes([D_LOCAL, 0, D_V6]) + d_query(n, Q_PTR) + bytes([2])
    # Many AAAA records for 512 bytes (TC), then both families of ctr0 go.
    many = b"".join(d_add(0, D_V6 | 2 | (k << 2), 4, ["many"]) for k in range(1, 16))
    many += bytes([D_LOCAL, 0, 0]) + d_query(d_name(0, "many"), Q_AAAA) + bytes([2])
    gone = bytes([D_REMOVE, 0, 0]) + bytes([D_RESOLVE, 0, 1]) + d_name(0, "web") + bytes([Q_AAAA])
    gone += bytes([D_REMOVE, 0, D_V6]) + bytes([D_RESOLVE, 0, 1]) + d_name(0, "web") + bytes([Q_AAAA])
    gone += bytes([D_RESOLVE, 1, 1]) + d_name(0, "db") + bytes([Q_AAAA])
    return dual_stack_table() + lookups + many + gone


# --- dns_tcp (format documented in fuzz_targets/dns_tcp.rs) ------------------


def tcp_msg(m):
    return struct.pack(">H", len(m)) + m


def dns_tcp_seeds():
    def conn(origin, data, sched=b""):
        return bytes([origin, len(sched)]) + sched + data

    web, many = dns_query("web", ident=1), dns_query("many", ident=2)
    ptr = dns_query("2.0.17.172.in-addr.arpa", qtype=12, ident=3)
    ex = dns_query("example.com", ident=4)
    nx = dns_query("nothing.lanyard.internal", ident=5)
    inside = dns_query("inside", ident=6)
    several = tcp_msg(web) + tcp_msg(many) + tcp_msg(ptr) + tcp_msg(ex) + tcp_msg(nx)
    return {
        # One query, answered.
        "one-query": conn(0, tcp_msg(web)),
        # Several on one connection: a name, 100 addresses (over 512
        # bytes, not truncated over TCP), a reverse name, one not ours
        # (SERVFAIL: no upstream), NXDOMAIN.
        "pipelined": conn(0, several),
        # The same a byte at a time for the first query, its answer
        # written whole, an interrupted read, then reads and writes of 7
        # and 6 bytes.
        "trickle": conn(1, several, sched=b"\x03" * len(tcp_msg(web)) + b"\xff" + b"\x01" + b"\x09" * 200),
        # A read that times out mid-query: closed, nothing more answered.
        "timeout-mid-query": conn(0, several, sched=b"\x08\x00"),
        # The peer stops reading: the write fails.
        "write-fails": conn(0, several, sched=b"\xff\xff\x02"),
        # An internal network's client: its own names, SERVFAIL for the rest.
        "internal": conn(2, tcp_msg(inside) + tcp_msg(ex) + tcp_msg(web)),
        # Framing: a zero-length message, then one that is not a query.
        "empty-message": conn(3, tcp_msg(b"") + tcp_msg(web)),
        "not-a-query": conn(0, tcp_msg(web) + tcp_msg(b"\x00\x01\x81\x80" + b"\x00" * 8) + tcp_msg(web)),
        # A length prefix promising more than ever comes.
        "short-message": conn(0, tcp_msg(web) + b"\x01\x00" + web),
    }


# --- dhcp_leases (format documented in fuzz_targets/dhcp_leases.rs) ---------

DISCOVER, REQUEST, DECLINE, RELEASE, INFORM, ATTACH, DETACH, RAW_FRAME = range(8)
O_REQUESTED, O_SERVER, O_CIADDR, O_SPOOF, O_OTHER_NET, O_HOSTNAME = (1 << i for i in range(6))
SUBNET_28, SUBNET_29, SUBNET_24 = range(3)
LEASE_0, LEASE_60, LEASE_HOUR, LEASE_DAY = range(4)


def dhcp(t, mac=0, opts=0, requested=b"", server=b"", xid=1, clock=0):
    """A client message: `requested` the requested-address selector bytes
    (with O_REQUESTED), `server` the server-id selector (with O_SERVER)."""
    return bytes([t, mac, opts]) + requested + server + bytes([xid, clock])


def minutes(n):
    return 0x80 | n


def dhcp_seeds():
    last = b"\x00"        # the address last offered to this MAC
    gw = b"\x00"          # server id: the gateway
    s = {}
    s["discover-request-release"] = bytes([SUBNET_28, LEASE_HOUR, 15]) + (
        dhcp(DISCOVER) + dhcp(REQUEST, opts=O_REQUESTED | O_SERVER, requested=last, server=gw)
        + dhcp(REQUEST, opts=O_CIADDR, clock=minutes(30))             # renewal
        + dhcp(REQUEST, opts=O_REQUESTED, requested=b"\x05")          # another address: NAK
        + dhcp(RELEASE)
    )
    # A hostile uplink: DISCOVER and DECLINE with fresh MACs, more often
    # than the pool (5) or max_leases (4) allows; quarantine ends later.
    loop = b""
    for i in range(8):
        loop += dhcp(DISCOVER, mac=i) + dhcp(DECLINE, mac=i, opts=O_REQUESTED, requested=last)
    s["decline-loop"] = bytes([SUBNET_29, LEASE_HOUR, 3]) + loop + dhcp(DISCOVER, mac=7, clock=minutes(11))
    # Offers nobody requests: the pool (13) runs out, then offers time out.
    offers = b"".join(dhcp(DISCOVER, mac=i % 8, xid=i) for i in range(8))
    # MAC selector 12: six bytes of MAC follow it.
    offers += bytes([DISCOVER, 12]) + b"\x02\xaa\xbb\xcc\xdd\xee" + bytes([0, 9, 0])
    s["offers-expire"] = bytes([SUBNET_28, LEASE_DAY, 15]) + offers + dhcp(DISCOVER, mac=3, clock=61)
    # Endpoints: their own addresses, always; another requested is NAK'd.
    eps = bytes([ATTACH, 0, ATTACH, 0x80 | 9]) + dhcp(DISCOVER, mac=8) + dhcp(REQUEST, mac=8)
    eps += dhcp(REQUEST, mac=8, opts=O_REQUESTED, requested=b"\x0d") + dhcp(INFORM, mac=9)
    eps += dhcp(DISCOVER, mac=0, opts=O_REQUESTED, requested=b"\x02")   # asks for an endpoint's
    eps += bytes([DETACH, 0]) + dhcp(DISCOVER, mac=1) + dhcp(DECLINE, mac=8)
    s["endpoints"] = bytes([SUBNET_24, LEASE_HOUR, 8]) + eps
    # A lease of 0 s, a REQUEST for another server (its offer let go),
    # frames refused (spoofed source, another network), a raw frame.
    misc = dhcp(DISCOVER) + dhcp(REQUEST) + dhcp(DISCOVER, clock=1)
    misc += dhcp(DISCOVER, mac=1) + dhcp(REQUEST, mac=1, opts=O_SERVER, server=b"\x01")
    misc += dhcp(DISCOVER, mac=2, opts=O_SPOOF) + dhcp(DISCOVER, mac=2, opts=O_OTHER_NET | O_HOSTNAME)
    misc += bytes([RAW_FRAME, 20]) + b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01\x08\x00" + b"\x45" + b"\x00" * 5
    s["misc"] = bytes([SUBNET_28, LEASE_0, 15]) + misc
    return s


# --- resolv_conf: the nameserver (4 bytes), then the host's text -----------


def resolv_conf_seeds():
    gw = bytes([172, 17, 0, 1])
    return {
        "systemd-resolved": gw + b"# This is /run/systemd/resolve/stub-resolv.conf\nnameserver 127.0.0.53\noptions edns0 trust-ad\nsearch lan\n",
        "many": gw + b"nameserver 10.0.0.2\nnameserver  fd00::1 \nnameserver fe80::1%eth0\nnameserver bogus\n"
        + b"domain example.com\n  search a.example b.example\noptions ndots:2 timeout:1\nsortlist 10.0.0.0/8\n",
        "crlf-and-tabs": gw + b"nameserver\t10.0.0.3\r\nsearch\tx\r\nsearch y\r\n\toptions rotate\r\n;comment\r\nnameserver 10.0.0.4",
        "empty": gw,
        "no-final-newline": bytes([10, 9, 0, 1]) + b"search corp",
    }


def slirp_api_seeds():
    """The slirp4netns mode's API: the requests podman and rootlesskit send
    (ENGINES.md), NUL-separated where one seed is a conversation."""
    add = lambda proto, host, port, guest: json.dumps({"execute": "add_hostfwd", "arguments": {
        "proto": proto, "host_addr": host, "host_port": port, "guest_addr": guest, "guest_port": 80}},
        separators=(",", ":")).encode()
    return {
        "podman": add("tcp", "127.0.0.1", 18080, ""),
        "rootlesskit": b"\0".join([add("udp", "127.0.0.1", 18082, "10.0.2.100"),
                                    b'{"execute":"list_hostfwd"}',
                                    b'{"execute":"remove_hostfwd","arguments":{"id":1}}']),
        "ipv6": add("tcp", "::1", 18086, ""),
        "bad": b"\0".join([b"badjson\n", b'{"execute":"get_info"}', b"[1]", b'{"execute":1}']),
    }


def capture_filter_seeds():
    """Capture filters, each followed by a 0 byte and the frame it runs on:
    every kind of primitive, precedence, the IPv6 extension-header walk,
    a VLAN tag, a GSO super-frame, a cut-off frame, and two refusals."""
    hbh_udp = eth(C2_MAC, C1_MAC, 0x86DD) + ipv6(
        V6_SRC, V6_DST, 0, bytes([17, 0, 1, 4, 0, 0, 0, 0]) + struct.pack(">HHHH", 5353, 53, 12, 0) + b"dns!"
    )
    tagged = TCP_SYN[:12] + struct.pack(">HH", 0x8100, 100) + TCP_SYN[12:]
    cases = {
        "empty": ("", TCP_SYN),
        "arp-host": ("arp and host 172.17.0.1", ARP_GW),
        "icmp": ("icmp or icmp6 or ip6 proto 58", ICMP_ECHO_GW),
        "tcp-port": ("tcp dst port 80 and src host 172.17.0.2", TCP_SYN),
        "precedence": ("not arp and (udp or tcp portrange 5000-5300) || ether broadcast", TCP_GSO),
        "ipv6-hbh": ("ip6 proto 0 && udp port 53 and net fe80::/64", hbh_udp),
        "tcp6-gso": ("greater 1500 and ip6 and src net fe80::/10 and not less 100", TCP6_GSO),
        "vlan": ("vlan 100 and ether src 02:42:ac:11:00:02 and ip proto \\tcp", tagged),
        "ether": ("ether multicast or ether proto 0x88cc or ether dst host ff:ff:ff:ff:ff:ff", UDP_PARTIAL),
        "truncated": ("host 172.17.0.3 or port 80", TRUNCATED),
        "broken": ("(tcp and prot 80", b""),
        "deep": ("(" * 16 + "arp" + ")" * 16, ARP_GW),
    }
    return {name: expr.encode() + b"\0" + frame for name, (expr, frame) in cases.items()}


def metrics_request_seeds():
    """What a scraper sends: a flag byte (bit 0: the render fails, bit 1:
    the request went past MAX_REQUEST), then the request's bytes."""
    return {
        "get": b"\x00GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
        "head": b"\x00HEAD / HTTP/1.0\r\n\r\n",
        "post": b"\x00POST /metrics HTTP/1.1\r\n\r\n",
        "unavailable": b"\x01GET /metrics?x=1 HTTP/1.1\n\n",
        "too-long": b"\x02GET /metrics HTTP/1.1\r\nX: aaaa",
        "tls": b"\x00\x16\x03\x01garbage\r\n\r\n",
        # A fuzzer's find (its oracle took `HEAD\r` for another method).
        "head-cr": b'\x00HEAD\r \xff\xff\xff\xff\xff/ HTTP/1/0\r\x9f\r\n',
    }


def coalesce_seeds():
    # Steps: ports byte (bit 0 ingress, bit 1 egress, bit 2 ends the turn),
    # vnet header, length, frame. Frames as a TAP hands them over: UDP with
    # the checksum left to offload.
    src, dst = ip4("172.17.0.2"), ip4("172.17.0.3")
    def dgram(n, fill, sport=5000):
        ip = ipv4(src, dst, 17, udp(src, dst, sport, 7000, bytes([fill]) * n, partial=True))
        return eth(docker_mac(dst), docker_mac(src), 0x0800) + ip
    part = vnet(NEEDS_CSUM, 0, 0, 0, 34, 6)
    def st(frame, ports=0):
        return bytes([ports]) + part + struct.pack(">H", len(frame)) + frame
    s = {}
    s["one-flow"] = b"".join(st(dgram(64, i)) for i in range(8)) + st(dgram(20, 9), 4)
    s["interleaved"] = b"".join(st(dgram(64, i, 5000 + i % 2)) for i in range(6))
    s["ports-and-sizes"] = st(dgram(64, 1)) + st(dgram(64, 2), 2) + st(dgram(100, 3)) + st(dgram(64, 4), 1)
    return s


def main():
    targets = {
        "coalesce": coalesce_seeds(),
        "wire": wire_seeds(),
        "pipeline": pipeline_seeds(),
        "config": config_seeds(),
        "control_request": control_seeds(),
        "publish_spec": publish_seeds(),
        "dns_dhcp": dns_dhcp_seeds(),
        "dns": dns_seeds(),
        "dns_tcp": dns_tcp_seeds(),
        "dhcp_leases": dhcp_seeds(),
        "resolv_conf": resolv_conf_seeds(),
        "slirp_api": slirp_api_seeds(),
        "capture_filter": capture_filter_seeds(),
        "metrics_request": metrics_request_seeds(),
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
