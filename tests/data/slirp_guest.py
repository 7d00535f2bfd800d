#!/usr/bin/env python3
"""Peers for the slirp4netns mode's tests (tests/slirp4netns.rs). Every
blocking call has a timeout.

In the target namespace, as its root (raw frames on IFACE, addressed to the
gateway's MAC, read from the neighbour table: ping the gateway first):
  spoof-udp IFACE GW PORT SRC [SRCMAC] [DST]
                  a datagram "probe SRC SRCMAC" to DST:PORT (DST defaults to
                  GW) from SRC ("own": IFACE's address) and SRCMAC (IFACE's
                  own MAC if not given or "-"), sent up to 3 times, each waiting
                  0.4 s for the answer to SRC
                  -> "udp SRC SRCMAC DST reply|nothing"
  junk IFACE GW PORT
                  a burst of malformed frames from IFACE's own MAC and
                  address: truncated and inconsistent IPv4, UDP, TCP, ICMP,
                  ARP and IPv6 headers, bad fragments, DNS and DHCP junk,
                  VLAN tags and garbage ethertypes, random frames, and one
                  frame of IFACE's MTU + 14 bytes (raise the MTU first for
                  a 64 KiB one); UDP goes to GW:PORT
                  -> "junk sent N failed F biggest B"

On the host:
  udp-log PORT [ADDR]
                  UDP echo that prints "got PAYLOAD" for each datagram
"""
import fcntl
import os
import random
import socket
import struct
import sys
import time

ETH_P_ALL = 0x0003
ETH_P_IP = 0x0800


def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def iface(name):
    """The AF_PACKET socket on NAME, its MAC, its IPv4 address, its MTU."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((name, 0))
    mac = s.getsockname()[4][:6]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ifreq = struct.pack("256s", name.encode())
    ip = socket.inet_ntoa(fcntl.ioctl(u.fileno(), 0x8915, ifreq)[20:24])  # SIOCGIFADDR
    mtu = struct.unpack("I", fcntl.ioctl(u.fileno(), 0x8921, ifreq)[16:20])[0]  # SIOCGIFMTU
    return s, mac, ip, mtu


def neighbour_mac(ip):
    with open("/proc/net/arp") as f:
        for line in f.readlines()[1:]:
            w = line.split()
            if w[0] == ip and w[3] != "00:00:00:00:00:00":
                return bytes.fromhex(w[3].replace(":", ""))
    sys.exit(f"no neighbour entry for {ip}: ping it first")


def parse_mac(s):
    return bytes.fromhex(s.replace(":", ""))


def fmt_mac(b):
    return ":".join(f"{x:02x}" for x in b)


def ipv4(src, dst, proto, payload, ident=None, frag=0, total=None, ihl=5, version=4):
    h = struct.pack(
        "!BBHHHBBH4s4s",
        (version << 4) | ihl,
        0,
        (20 + len(payload)) if total is None else total,
        random.randint(0, 65535) if ident is None else ident,
        frag,
        64,
        proto,
        0,
        socket.inet_aton(src),
        socket.inet_aton(dst),
    )
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def udp_seg(src, dst, sport, dport, data, length=None):
    seg = struct.pack("!HHHH", sport, dport, (8 + len(data)) if length is None else length, 0) + data
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, 17, len(seg))
    return seg[:6] + struct.pack("!H", csum(pseudo + seg) or 0xFFFF) + seg[8:]


def spoof_udp(name, gw, port, src, srcmac=None, dst=None):
    s, mac, own, _ = iface(name)
    src = own if src == "own" else src
    dst = dst or gw
    smac = parse_mac(srcmac) if srcmac and srcmac != "-" else mac
    sport = random.randint(20000, 60000)
    data = f"probe {src} {fmt_mac(smac)} {dst}".encode()
    frame = neighbour_mac(gw) + smac + struct.pack("!H", ETH_P_IP)
    frame += ipv4(src, dst, 17, udp_seg(src, dst, sport, port, data))
    result = "nothing"
    for _ in range(3):
        s.send(frame)
        end = time.time() + 0.4
        while time.time() < end and result == "nothing":
            s.settimeout(max(0.01, end - time.time()))
            try:
                f, addr = s.recvfrom(65535)
            except socket.timeout:
                break
            if addr[2] == socket.PACKET_OUTGOING or len(f) < 42:
                continue
            if struct.unpack("!H", f[12:14])[0] != ETH_P_IP:
                continue
            p = f[14:]
            ihl = (p[0] & 15) * 4
            if p[9] != 17 or socket.inet_ntoa(p[16:20]) != src:
                continue
            if struct.unpack("!HH", p[ihl : ihl + 4]) == (port, sport):
                result = "reply"
        if result != "nothing":
            break
    # One write(2): probes run side by side on one pipe.
    os.write(1, f"udp {src} {fmt_mac(smac)} {dst} {result}\n".encode())


def junk_frames(mac, gwmac, own, gw, port, mtu):
    rnd = random.Random(4242)
    eth = lambda et, dst=gwmac: dst + mac + struct.pack("!H", et)
    good_udp = udp_seg(own, gw, 40000, port, b"junk")
    good = ipv4(own, gw, 17, good_udp)
    out = []
    # Truncated IPv4 headers, and the Ethernet header alone.
    for n in range(0, 20):
        out.append(eth(ETH_P_IP) + good[:n])
    # Header lengths below the minimum and beyond the packet; versions not 4.
    for ihl in (0, 1, 4, 6, 15):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, good_udp, ihl=ihl))
    for v in (0, 6, 15):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, good_udp, version=v))
    # Total lengths that disagree with the frame.
    for total in (0, 1, 19, 20, 21, 27, 29, 65535):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, good_udp, total=total))
    # UDP lengths that disagree with the packet.
    for length in (0, 1, 7, 13, 100, 65535):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, udp_seg(own, gw, 40001, port, b"junk", length)))
    # A UDP header cut short; TCP with bad data offsets; cut-short TCP and ICMP.
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, good_udp[:5]))
    for off in (0, 1, 4, 15):
        tcp = struct.pack("!HHIIBBHHH", 40002, 80, 1, 0, off << 4, 0x02, 65535, 0, 0)
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 6, tcp))
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 6, b"\x9c\x42\x00"))
    for flags in (0xFF, 0x00, 0x03, 0x06, 0x11):  # SYN+FIN, none, SYN+RST, ...
        tcp = struct.pack("!HHIIBBHHH", 40003, 80, 1, 0, 5 << 4, flags, 0, 0, 0)
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 6, tcp))
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 1, b"\x08"))
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 1, b"\x08\x00\x00\x00"))
    # ICMP errors quoting nothing, or junk, or a packet "we" never got.
    for quoted in (b"", b"\x45", good[:28], os.urandom(60)):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 1, b"\x03\x03\x00\x00\x00\x00\x00\x00" + quoted))
    # Unknown IP protocols.
    for proto in (0, 2, 41, 47, 132, 255):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, proto, os.urandom(40)))
    # Fragments: a lone first one, a lone last one at the largest offset,
    # overlapping ones, a fragment past 64 KiB, and a tiny-fragment train.
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, good_udp[:8], ident=7, frag=0x2000))
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, b"x" * 8, ident=7, frag=0x1FFF))
    for off in (0, 1, 0, 1, 2):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, b"y" * 16, ident=8, frag=0x2000 | off))
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, b"z" * 1000, ident=9, frag=0x2000 | 0x1FF0))
    for i in range(64):
        out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, b"t" * 8, ident=10, frag=0x2000 | i))
    # DNS junk to .3: cut-short headers, a name with a compression loop, a
    # label running past the end, a huge question count.
    dns = gw.rsplit(".", 1)[0] + ".3"
    for q in (
        b"",
        b"\x12",
        b"\x12\x34\x01\x00\x00\x01",
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x3fabc",
        b"\x12\x34\x01\x00\xff\xff\x00\x00\x00\x00\x00\x00" + b"\x01a" * 100,
        os.urandom(512),
    ):
        out.append(eth(ETH_P_IP) + ipv4(own, dns, 17, udp_seg(own, dns, 40004, 53, q)))
    # DHCP junk: from 0.0.0.0 and from our address, to the broadcast.
    bcast = b"\xff" * 6
    for src in ("0.0.0.0", own):
        for body in (b"", b"\x01\x01\x06\x00", os.urandom(240), b"\x01\x01\x06\x00" + b"\x00" * 232 + b"\x63\x82\x53\x63\x35\xff"):
            out.append(eth(ETH_P_IP, bcast) + ipv4(src, "255.255.255.255", 17, udp_seg(src, "255.255.255.255", 68, 67, body)))
    # ARP: cut short, wrong sizes, an unknown operation.
    arp_ok = struct.pack("!HHBBH6s4s6s4s", 1, ETH_P_IP, 6, 4, 1, mac, socket.inet_aton(own), b"\0" * 6, socket.inet_aton(gw))
    for a in (arp_ok[:7], arp_ok[:27], arp_ok[:6] + b"\x10\x10" + arp_ok[8:], arp_ok[:6] + b"\x00\x09" + arp_ok[8:]):
        out.append(eth(0x0806, bcast) + a)
    # IPv6 junk, VLAN tags (one and two), LLDP, 802.3 lengths, odd ethertypes.
    out.append(eth(0x86DD) + b"\x60")
    out.append(eth(0x86DD) + b"\x60\x00\x00\x00\xff\xff\x3a\x40" + os.urandom(32))
    out.append(eth(0x86DD) + b"\x60\x00\x00\x00\x00\x08\x00\x40" + os.urandom(32) + b"\x3a\x00" + os.urandom(6))
    out.append(eth(0x8100) + b"\x00\x05\x08\x00" + good)
    out.append(eth(0x88A8) + b"\x00\x05\x81\x00\x00\x06\x08\x00" + good)
    out.append(eth(0x8100) + b"\x00")
    for et in (0x0000, 0x0001, 0x05DC, 0x0600, 0x1234, 0x88CC, 0x8863, 0x8864, 0x88E5, 0x9000, 0xFFFF):
        out.append(eth(et) + os.urandom(46))
    # Random frames, to the gateway, broadcast and multicast MACs.
    for _ in range(300):
        dst = rnd.choice([gwmac, bcast, b"\x01\x00\x5e\x00\x00\x01", b"\x33\x33\x00\x00\x00\x01"])
        et = rnd.choice([ETH_P_IP, 0x0806, 0x86DD, rnd.randint(0, 0xFFFF)])
        out.append(eth(et, dst) + bytes(rnd.getrandbits(8) for _ in range(rnd.randint(0, 1500))))
    # The largest frame the interface takes: random bytes, then an IPv4
    # header claiming it all.
    big = mtu + 14
    out.append(eth(0x1234) + os.urandom(big - 14))
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, udp_seg(own, gw, 40005, port, os.urandom(big - 14 - 28))[:big - 14 - 20], total=65535)[: big - 14])
    out.append(eth(ETH_P_IP) + ipv4(own, gw, 17, os.urandom(big - 14 - 20)))
    return out


def junk(name, gw, port):
    s, mac, own, mtu = iface(name)
    frames = junk_frames(mac, neighbour_mac(gw), own, gw, port, mtu)
    sent = failed = biggest = 0
    for f in frames:
        try:
            s.send(f)
            sent += 1
            biggest = max(biggest, len(f))
        except OSError:
            failed += 1
    print(f"junk sent {sent} failed {failed} biggest {biggest}", flush=True)


def udp_log(port, addr="127.0.0.1"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        d, a = s.recvfrom(65535)
        print("got " + d.decode(errors="replace"), flush=True)
        s.sendto(d, a)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "spoof-udp":
        spoof_udp(args[0], args[1], int(args[2]), *args[3:])
    elif cmd == "junk":
        junk(args[0], args[1], int(args[2]))
    elif cmd == "udp-log":
        udp_log(int(args[0]), *args[1:])
    else:
        sys.exit(f"unknown command {cmd}")
