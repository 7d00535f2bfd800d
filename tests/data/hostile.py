#!/usr/bin/env python3
"""Hostile peers for lanyard's security tests. A container is root in its own
namespaces: these craft what a well-behaved stack never sends, straight onto
eth0 with an AF_PACKET socket, and report what came back. Every wait is
bounded.

In a container (frames to the gateway's MAC, 02:42 + the gateway's IPv4):
  tcp SRC DST PORT      a SYN from SRC ("own": eth0's address) to DST:PORT
                        -> "tcp DST:PORT synack|rst|icmp T/C|nothing"
  udp SRC DST PORT      a datagram "hello" -> "udp DST:PORT reply DATA|icmp T/C|nothing"
  icmp SRC DST          an echo request -> "icmp DST reply|icmp T/C|nothing"
  dns-tcp-hold N SECS   N TCP connections to the gateway's port 53, each
                        trickling one byte of a query every second for SECS
                        -> "held OPEN/N closed CLOSED"
  dhcp-churn IFACE N    N DHCP DISCOVER + DECLINE exchanges, each from a fresh
                        MAC (for an uplink's "VM") -> "churn offers O declined D"
  rogue-router VICTIM_LL  what a container claiming to be a router sends, to
                        all nodes (Router Advertisements of 2001:db8:N::/64:
                        plain, behind Destination Options, as an atomic
                        fragment), to VICTIM_LL (a Redirect), and a Neighbor
                        Advertisement for our own address naming another MAC
                        -> "rogue-router sent 5"

  flood KIND COUNT SECS PPS [ARGS]
                        a flood from our own MAC and address, one frame
                        after another until COUNT frames or SECS seconds
                        (or the file named by $FLOOD_STOP appears), paced
                        at PPS frames/s (0: as fast as the socket takes
                        them). Prints "flooding" once the frames are made,
                        then "flood KIND sent N in T s". KIND:
                          syn DST PORT   SYNs, a new source port each (new
                                         TCP flows to DST:PORT)
                          udp DST PORT   datagrams, a new source port each
                                         (new UDP flows)
                          dns            queries to the gateway's port 53,
                                         a new name each (fNNNN.flood.test:
                                         forwarded upstream)
                          arp            ARP requests for the gateway's
                                         address, broadcast
                          arp-gw         the same, unicast to the gateway's MAC
                          arp-both       the two in turn
                          icmp           echo requests to the gateway
                          dhcp           DHCP DISCOVERs (our MAC; broadcast)
  unreachable DST PORT N
                        N datagrams, each on a connected UDP socket of its
                        own (the kernel's, not crafted, with IP_RECVERR),
                        each waiting up to 1 s for the ICMP error the
                        gateway owes us
                        -> "unreachable told T/N"

Outside (a client of a published port):
  connect-flood HOST PORT HOLD COUNT SECS
                        TCP connections to HOST:PORT, up to HOLD open at once
                        (the oldest closed to make room), until COUNT were
                        tried or SECS passed (or $FLOOD_STOP appears); prints
                        "flooding" at the start
                        -> "connect-flood tried N established E reset R held H"

On the host's loopback:
  forger PORT           a DNS "upstream" that, for each query, first sends
                        forged answers (a wrong id; the right id with another
                        question; the right id from another port), then the
                        real one (A 192.0.2.7); logs each query's source port
                        and id -> lines "query PORT ID"
  mute-upstream PORT    a DNS upstream (UDP) that answers A 192.0.2.7 for every
                        name but those under flood.test, which it never
                        answers (they wait out the forwarder's timeout)
                        -> "ready", then "mute N answered M" every second
"""
import os
import random
import socket
import struct
import sys
import threading
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


def eth0():
    """The AF_PACKET socket on eth0, our MAC and IPv4 address, the gateway."""
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind(("eth0", 0))
    mac = s.getsockname()[4][:6]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    import fcntl

    ifreq = struct.pack("256s", b"eth0")
    ip = socket.inet_ntoa(fcntl.ioctl(u.fileno(), 0x8915, ifreq)[20:24])  # SIOCGIFADDR
    gw = ".".join(ip.split(".")[:3] + ["1"])
    return s, mac, ip, gw


def gw_mac(gw):
    return bytes([2, 0x42]) + socket.inet_aton(gw)


def ipv4(src, dst, proto, payload):
    h = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(payload), random.randint(0, 65535), 0, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    h = h[:10] + struct.pack("!H", csum(h)) + h[12:]
    return h + payload


def l4_csum(src, dst, proto, seg):
    pseudo = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!BBH", 0, proto, len(seg))
    return csum(pseudo + seg)


def send_frame(s, mac, gw, packet):
    s.send(gw_mac(gw) + mac + struct.pack("!H", ETH_P_IP) + packet)


def replies(s, want, secs=2.0):
    """Incoming IPv4 packets until `want(ip_packet)` says what it is."""
    end = time.time() + secs
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            f, addr = s.recvfrom(65535)
        except socket.timeout:
            break
        if addr[2] == socket.PACKET_OUTGOING or len(f) < 34:
            continue
        if struct.unpack("!H", f[12:14])[0] != ETH_P_IP:
            continue
        r = want(f[14:])
        if r:
            return r
    return "nothing"


def icmp_error(p, proto, sport):
    """'icmp T/C' if `p` is an ICMP error about our packet of `proto`."""
    if p[9] != 1:
        return None
    ihl = (p[0] & 15) * 4
    t, c = p[ihl], p[ihl + 1]
    if t in (3, 11) and len(p) >= ihl + 8 + 28:
        inner = p[ihl + 8 :]
        iihl = (inner[0] & 15) * 4
        if inner[9] == proto and (sport is None or struct.unpack("!H", inner[iihl : iihl + 2])[0] == sport):
            return f"icmp {t}/{c}"
    return None


def tcp(src, dst, port):
    s, mac, own, gw = eth0()
    src = own if src == "own" else src
    sport = random.randint(20000, 60000)
    seq = random.randint(0, 2**32 - 1)
    seg = struct.pack("!HHIIBBHHH", sport, port, seq, 0, 5 << 4, 0x02, 65535, 0, 0)
    seg = seg[:16] + struct.pack("!H", l4_csum(src, dst, 6, seg)) + seg[18:]
    send_frame(s, mac, gw, ipv4(src, dst, 6, seg))

    def want(p):
        ihl = (p[0] & 15) * 4
        if p[9] == 6 and socket.inet_ntoa(p[12:16]) == dst:
            sp, dp = struct.unpack("!HH", p[ihl : ihl + 4])
            if (sp, dp) == (port, sport):
                flags = p[ihl + 13]
                if flags & 0x04:
                    return "rst"
                if flags & 0x12 == 0x12:
                    return "synack"
        return icmp_error(p, 6, sport)

    print(f"tcp {dst}:{port} {replies(s, want)}", flush=True)


def udp(src, dst, port):
    s, mac, own, gw = eth0()
    src = own if src == "own" else src
    sport = random.randint(20000, 60000)
    data = b"hello"
    seg = struct.pack("!HHHH", sport, port, 8 + len(data), 0) + data
    seg = seg[:6] + struct.pack("!H", l4_csum(src, dst, 17, seg) or 0xFFFF) + seg[8:]
    send_frame(s, mac, gw, ipv4(src, dst, 17, seg))

    def want(p):
        ihl = (p[0] & 15) * 4
        if p[9] == 17 and socket.inet_ntoa(p[12:16]) == dst:
            sp, dp = struct.unpack("!HH", p[ihl : ihl + 4])
            if (sp, dp) == (port, sport):
                return "reply " + p[ihl + 8 :].decode(errors="replace")
        return icmp_error(p, 17, sport)

    print(f"udp {dst}:{port} {replies(s, want)}", flush=True)


def icmp(src, dst):
    s, mac, own, gw = eth0()
    src = own if src == "own" else src
    ident = random.randint(1, 65535)
    m = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"lanyard"
    m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
    send_frame(s, mac, gw, ipv4(src, dst, 1, m))

    def want(p):
        ihl = (p[0] & 15) * 4
        if p[9] != 1:
            return None
        if p[ihl] == 0 and socket.inet_ntoa(p[12:16]) == dst:
            if struct.unpack("!H", p[ihl + 4 : ihl + 6])[0] == ident:
                return "reply"
        return icmp_error(p, 1, None)

    print(f"icmp {dst} {replies(s, want)}", flush=True)


def dns_query(name, qid=0x1234):
    q = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\0\0\1\0\1"


def dns_tcp_hold(n, secs):
    _, _, _, gw = eth0()
    conns = []
    for _ in range(n):
        try:
            conns.append(socket.create_connection((gw, 53), timeout=5))
        except OSError:
            pass
    q = dns_query("trickle.example.test")
    msg = struct.pack("!H", len(q)) + q
    closed = set()
    end = time.time() + secs
    i = 0
    while time.time() < end and len(closed) < len(conns):
        for k, c in enumerate(conns):
            if k in closed:
                continue
            try:
                c.send(msg[i % len(msg) : i % len(msg) + 1])
            except OSError:
                closed.add(k)
        i += 1
        time.sleep(1)
    # Whatever is still open: has the server closed it (EOF or reset)?
    for k, c in enumerate(conns):
        if k in closed:
            continue
        c.settimeout(0.2)
        try:
            if c.recv(1) == b"":
                closed.add(k)
        except socket.timeout:
            pass
        except OSError:
            closed.add(k)
    print(f"held {len(conns)}/{n} closed {len(closed)}", flush=True)


def dhcp_churn(iface, n):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.bind((iface, 0))
    offers = declined = 0
    for i in range(n):
        mac = bytes([2, 0xDC]) + struct.pack("!I", random.getrandbits(32))
        xid = random.getrandbits(32)

        def message(kind, extra=b""):
            m = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                            b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, mac, b"", b"")
            m += b"\x63\x82\x53\x63" + bytes([53, 1, kind]) + extra + b"\xff"
            udp = struct.pack("!HHHH", 68, 67, 8 + len(m), 0) + m
            ip = ipv4("0.0.0.0", "255.255.255.255", 17, udp)
            return b"\xff" * 6 + mac + struct.pack("!H", ETH_P_IP) + ip

        s.send(message(1))
        offered = None
        end = time.time() + 0.3
        while time.time() < end and offered is None:
            s.settimeout(max(0.01, end - time.time()))
            try:
                f, addr = s.recvfrom(65535)
            except socket.timeout:
                break
            if addr[2] == socket.PACKET_OUTGOING or len(f) < 14 + 20 + 8 + 240:
                continue
            b = f[42:]
            if struct.unpack("!I", b[4:8])[0] == xid and b[236:240] == b"\x63\x82\x53\x63":
                offered = b[16:20]
        if offered is None:
            continue
        offers += 1
        # DECLINE: "the address is in use by someone else".
        s.send(message(4, bytes([50, 4]) + offered + bytes([54, 4]) + f[26:30]))
        declined += 1
    print(f"churn offers {offers} declined {declined}", flush=True)


def forger(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    liar = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    liar.bind(("127.0.0.1", 0))
    print("ready", flush=True)

    def answer(q, qid, question, ip):
        h = struct.pack("!HHHHHH", qid, 0x8180, 1, 1, 0, 0)
        rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton(ip)
        return h + question + rr

    while True:
        q, client = s.recvfrom(4096)
        qid = struct.unpack("!H", q[:2])[0]
        question = q[12:]
        print(f"query {client[1]} {qid}", flush=True)
        other = b"\x06forged\x07example\x00\x00\x01\x00\x01"
        s.sendto(answer(q, qid ^ 0x5A5A, question, "6.6.6.1"), client)
        s.sendto(answer(q, qid, other, "6.6.6.2"), client)
        liar.sendto(answer(q, qid, question, "6.6.6.3"), client)
        time.sleep(0.05)
        s.sendto(answer(q, qid, question, "192.0.2.7"), client)


ETH_P_IPV6 = 0x86DD
ICMPV6 = 58
ALL_NODES = socket.inet_pton(socket.AF_INET6, "ff02::1")


def link_local(iface="eth0", secs=5.0):
    """Our link-local address once DAD has passed (not tentative)."""
    end = time.time() + secs
    while time.time() < end:
        for line in open("/proc/net/if_inet6"):
            addr, _idx, _plen, scope, flags, name = line.split()
            if name == iface and scope == "20" and not int(flags, 16) & 0x40:
                return bytes.fromhex(addr)
        time.sleep(0.1)
    sys.exit(f"no link-local address on {iface}")


def icmp6(src, dst, body):
    """`body` (checksum field zero) with its checksum filled in."""
    pseudo = src + dst + struct.pack("!I3xB", len(body), ICMPV6)
    return body[:2] + struct.pack("!H", csum(pseudo + body)) + body[4:]


def send6(s, mac, dst_mac, src, dst, exts, body):
    """An IPv6 frame: `exts` (a list of (type, bytes) extension headers whose
    first byte, their next header, is filled in) in front of ICMPv6 `body`."""
    chain = b""
    for i, (_kind, h) in enumerate(exts):
        nxt = exts[i + 1][0] if i + 1 < len(exts) else ICMPV6
        chain += bytes([nxt]) + h[1:]
    first = exts[0][0] if exts else ICMPV6
    payload = chain + icmp6(src, dst, body)
    ip = struct.pack("!IHBB", 0x60000000, len(payload), first, 255) + src + dst
    s.send(dst_mac + mac + struct.pack("!H", ETH_P_IPV6) + ip + payload)


def router_advert(mac, n):
    """An RA: router lifetime 1800 s, our MAC, prefix 2001:db8:N::/64 for
    SLAAC (on-link and autonomous flags)."""
    prefix = socket.inet_pton(socket.AF_INET6, f"2001:db8:{n}::")
    body = struct.pack("!BBHBBHII", 134, 0, 0, 64, 0, 1800, 0, 0)
    body += bytes([1, 1]) + mac
    body += struct.pack("!BBBBIII", 3, 4, 64, 0xC0, 86400, 14400, 0) + prefix
    return body


def rogue_router(victim):
    s, mac, _ip, _gw = eth0()
    ll = link_local()
    victim = socket.inet_pton(socket.AF_INET6, victim)
    all_nodes_mac = bytes([0x33, 0x33, 0, 0, 0, 1])
    dst_opts = (60, bytes([0, 0, 1, 4, 0, 0, 0, 0]))  # PadN
    frag = (44, bytes([0, 0, 0, 0]) + struct.pack("!I", random.getrandbits(32)))
    sent = 0
    for exts, n in (([], 1), ([dst_opts], 2), ([frag], 3)):
        send6(s, mac, all_nodes_mac, ll, ALL_NODES, exts, router_advert(mac, n))
        sent += 1
    # A Redirect: "reach 2001:db8:99::1 through me".
    body = struct.pack("!BBHI", 137, 0, 0, 0) + ll
    body += socket.inet_pton(socket.AF_INET6, "2001:db8:99::1") + bytes([2, 1]) + mac
    send6(s, mac, all_nodes_mac, ll, victim, [], body)
    sent += 1
    # An unsolicited NA (override) for our own address with another MAC.
    other = bytes([2, 0x42, 0xAC, 0x11, 0, 0x99])
    body = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + ll + bytes([2, 1]) + other
    send6(s, mac, all_nodes_mac, ll, ALL_NODES, [], body)
    sent += 1
    print(f"rogue-router sent {sent}", flush=True)


def spoof6(own, other, gw):
    """Echo requests to the gateway `gw` from our own address `own` and from
    `other` (a neighbour's), and a Neighbor Advertisement claiming `other`;
    counts the echo replies that come back to each."""
    s, mac, _ip, _gw = eth0()
    own, other, gw = (socket.inet_pton(socket.AF_INET6, a) for a in (own, other, gw))
    gw_mac = gw_mac6(s, mac, own, gw)
    got = {}
    for name, src in (("own", own), ("other", other)):
        body = struct.pack("!BBHHH", 128, 0, 0, 0x4242, 1) + b"lanyard"
        send6(s, mac, gw_mac, src, gw, [], body)

        def want(p, src=src):
            return (
                len(p) >= 62
                and p[12:14] == b"\x86\xdd"
                and p[20] == ICMPV6
                and p[38:54] == src
                and p[54] == 129
                and p[58:60] == b"\x42\x42"
            )

        got[name] = len(replies6(s, want, 1.5))
    # "other is at my MAC": an override NA for a neighbour's address.
    all_nodes_mac = bytes([0x33, 0x33, 0, 0, 0, 1])
    body = struct.pack("!BBHI", 136, 0, 0, 0x20000000) + other + bytes([2, 1]) + mac
    send6(s, mac, all_nodes_mac, own, ALL_NODES, [], body)
    print(f"spoof6 own={got['own']} other={got['other']}", flush=True)


def replies6(s, want, secs):
    """Incoming IPv6 frames for which `want(frame)` holds, for `secs`."""
    got, end = [], time.time() + secs
    while time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            f, addr = s.recvfrom(65535)
        except socket.timeout:
            break
        if addr[2] != socket.PACKET_OUTGOING and want(f):
            got.append(f)
    return got


def probe6(proto, own, dst, port):
    """A TCP SYN or a UDP datagram from our address `own` to `dst`:`port`,
    written straight to the gateway's MAC: what comes back first — synack,
    rst, reply, an ICMPv6 error (`icmp6 T/C`) — or nothing in 2 s."""
    s, mac, _ip, gw4 = eth0()
    own_b = socket.inet_pton(socket.AF_INET6, own)
    dst_b = socket.inet_pton(socket.AF_INET6, dst)
    gmac = gw_mac(gw4)
    sport = random.randint(20000, 60000)
    if proto == "tcp":
        nh, seg = 6, struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, 0x02, 65535, 0, 0)
        at = 16
    else:
        nh, seg = 17, struct.pack("!HHHH", sport, port, 13, 0) + b"hello"
        at = 6
    pseudo = own_b + dst_b + struct.pack("!I3xB", len(seg), nh)
    seg = seg[:at] + struct.pack("!H", csum(pseudo + seg) or 0xFFFF) + seg[at + 2 :]
    ip = struct.pack("!IHBB", 0x60000000, len(seg), nh, 64) + own_b + dst_b
    s.send(gmac + mac + struct.pack("!H", ETH_P_IPV6) + ip + seg)

    def what(f):
        if len(f) < 62 or f[12:14] != b"\x86\xdd" or f[38:54] != own_b:
            return None
        p = f[14:]
        if p[6] == nh and p[8:24] == dst_b and struct.unpack("!HH", p[40:44]) == (port, sport):
            if nh == 17:
                return "reply"
            if p[53] & 0x04:
                return "rst"
            if p[53] & 0x12 == 0x12:
                return "synack"
        if p[6] == ICMPV6 and p[40] < 128 and len(p) >= 48 + 44 and p[48 + 24 : 48 + 40] == dst_b:
            return f"icmp6 {p[40]}/{p[41]}"
        return None

    got, end = "nothing", time.time() + 2.0
    while got == "nothing" and time.time() < end:
        s.settimeout(max(0.01, end - time.time()))
        try:
            f, addr = s.recvfrom(65535)
        except socket.timeout:
            break
        if addr[2] != socket.PACKET_OUTGOING:
            got = what(f) or got
    print(f"{proto}6 [{dst}]:{port} {got}", flush=True)


def gw_mac6(s, mac, own, gw):
    """The gateway's MAC, by Neighbor Solicitation from `own`."""
    snm = bytes.fromhex("ff0200000000000000000001ff") + gw[13:]
    snm_mac = bytes([0x33, 0x33]) + snm[12:]
    body = struct.pack("!BBHI", 135, 0, 0, 0) + gw + bytes([1, 1]) + mac
    send6(s, mac, snm_mac, own, snm, [], body)

    def want(p):
        return len(p) >= 78 and p[12:14] == b"\x86\xdd" and p[54] == 136 and p[62:78] == gw

    got = replies6(s, want, 1.0)
    if not got:
        sys.exit("no Neighbor Advertisement from the gateway")
    return got[0][6:12]


def flood_frames(kind, args):
    """The frames of a flood (cycled through when COUNT is larger)."""
    s, mac, own, gw = eth0()
    gmac = gw_mac(gw)
    eth_ip = gmac + mac + struct.pack("!H", ETH_P_IP)
    frames = []
    if kind in ("syn", "udp"):
        dst, port = args[0], int(args[1])
        # Every source port but the privileged ones: each frame a new flow.
        for sport in range(1024, 65536):
            if kind == "syn":
                seg = struct.pack("!HHIIBBHHH", sport, port, random.getrandbits(32), 0, 5 << 4, 0x02, 65535, 0, 0)
                seg = seg[:16] + struct.pack("!H", l4_csum(own, dst, 6, seg)) + seg[18:]
                frames.append(eth_ip + ipv4(own, dst, 6, seg))
            else:
                seg = struct.pack("!HHHH", sport, port, 8 + 5, 0) + b"flood"
                seg = seg[:6] + struct.pack("!H", l4_csum(own, gw if dst == "gw" else dst, 17, seg) or 0xFFFF) + seg[8:]
                frames.append(eth_ip + ipv4(own, gw if dst == "gw" else dst, 17, seg))
    elif kind == "dns":
        for i in range(65536):
            q = dns_query(f"f{i}.flood.test", qid=i)
            sport = 1024 + i % 64000
            seg = struct.pack("!HHHH", sport, 53, 8 + len(q), 0) + q
            seg = seg[:6] + struct.pack("!H", l4_csum(own, gw, 17, seg) or 0xFFFF) + seg[8:]
            frames.append(eth_ip + ipv4(own, gw, 17, seg))
    elif kind in ("arp", "arp-gw", "arp-both"):
        arp = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac, socket.inet_aton(own), b"\0" * 6, socket.inet_aton(gw))
        if kind != "arp-gw":
            frames.append(b"\xff" * 6 + mac + struct.pack("!H", 0x0806) + arp + b"\0" * 18)
        if kind != "arp":
            frames.append(gmac + mac + struct.pack("!H", 0x0806) + arp + b"\0" * 18)
    elif kind == "icmp":
        for seq in range(4096):
            m = struct.pack("!BBHHH", 8, 0, 0, 0x4242, seq) + b"lanyard-flood" * 4
            m = m[:2] + struct.pack("!H", csum(m)) + m[4:]
            frames.append(eth_ip + ipv4(own, gw, 1, m))
    elif kind == "dhcp":
        for _ in range(256):
            xid = random.getrandbits(32)
            m = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", 1, 1, 6, 0, xid, 0, 0x8000,
                            b"\0" * 4, b"\0" * 4, b"\0" * 4, b"\0" * 4, mac, b"", b"")
            m += b"\x63\x82\x53\x63" + bytes([53, 1, 1]) + b"\xff"
            udp = struct.pack("!HHHH", 68, 67, 8 + len(m), 0) + m
            frames.append(b"\xff" * 6 + mac + struct.pack("!H", ETH_P_IP) + ipv4("0.0.0.0", "255.255.255.255", 17, udp))
    else:
        sys.exit(f"unknown flood {kind}")
    return s, frames


def flood(kind, count, secs, pps, args):
    s, frames = flood_frames(kind, args)
    # A full queue into the switch drops (the TAP's), it does not block:
    # the socket must not either.
    s.setblocking(False)
    stop = os.environ.get("FLOOD_STOP")
    print("flooding", flush=True)
    start = time.time()
    end = start + secs
    sent = tried = 0
    n = len(frames)
    while tried < count:
        f = frames[tried % n]
        tried += 1
        try:
            s.send(f)
            sent += 1
        except (BlockingIOError, OSError):
            pass
        # Paced in small steps, so that the flood is as even as its rate
        # (a burst then a pause would leave the victim's budgets room).
        if tried % 16 == 0:
            now = time.time()
            if now > end or (stop and os.path.exists(stop)):
                break
            if pps:
                ahead = start + tried / pps - now
                if ahead > 0:
                    time.sleep(ahead)
    print(f"flood {kind} sent {sent} in {time.time() - start:.1f} s", flush=True)


def unreachable(dst, port, n):
    """How many of N datagrams were answered by an ICMP error within 1 s
    (the kernel reports it on the connected socket as an error)."""
    told = 0
    for _ in range(n):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Without IP_RECVERR Linux reports only "hard" errors (port and
        # protocol unreachable) on a UDP socket; net and host unreachable too.
        u.setsockopt(socket.IPPROTO_IP, 11, 1)  # IP_RECVERR
        u.settimeout(1.0)
        u.connect((dst, port))
        try:
            u.send(b"anyone?")
            u.recv(100)
        except socket.timeout:
            pass
        except OSError:
            told += 1
        u.close()
    print(f"unreachable told {told}/{n}", flush=True)


def mute_upstream(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    s.settimeout(1.0)
    print("ready", flush=True)
    muted = answered = 0
    last = time.time()
    while True:
        try:
            q, client = s.recvfrom(4096)
        except socket.timeout:
            q = None
        if q is not None and len(q) > 12:
            # The question alone (labels, root, type, class): a query may
            # carry more after it (dig's EDNS record).
            i = 12
            while i < len(q) and q[i] != 0:
                i += 1 + q[i]
            question = q[12 : i + 5]
            if b"\x05flood\x04test\x00" in question:
                muted += 1
            else:
                h = struct.pack("!HHHHHH", struct.unpack("!H", q[:2])[0], 0x8180, 1, 1, 0, 0)
                rr = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + socket.inet_aton("192.0.2.7")
                s.sendto(h + question + rr, client)
                answered += 1
        if time.time() - last >= 1:
            last = time.time()
            print(f"mute {muted} answered {answered}", flush=True)


def connect_flood(host, port, hold, count, secs):
    import collections
    import selectors

    stop = os.environ.get("FLOOD_STOP")
    sel = selectors.DefaultSelector()
    pending = {}
    held = collections.deque()
    tried = established = reset = 0
    print("flooding", flush=True)
    end = time.time() + secs
    while time.time() < end and not (stop and os.path.exists(stop)):
        while tried < count and len(pending) + len(held) < hold and len(pending) < 256:
            c = socket.socket()
            c.setblocking(False)
            try:
                c.connect_ex((host, port))
            except OSError:
                c.close()
                reset += 1
                tried += 1
                continue
            sel.register(c, selectors.EVENT_WRITE)
            pending[c.fileno()] = c
            tried += 1
        for key, _ in sel.select(timeout=0.05):
            c = pending.pop(key.fd)
            sel.unregister(c)
            if c.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established += 1
                held.append(c)
            else:
                reset += 1
                c.close()
        # Room for the next: the oldest held connections go.
        while len(held) > hold - 64 and tried < count:
            held.popleft().close()
        if tried >= count and not pending:
            break
    n = len(held)
    for c in held:
        c.close()
    for c in pending.values():
        c.close()
    print(f"connect-flood tried {tried} established {established} reset {reset} held {n}", flush=True)


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "tcp":
        tcp(args[0], args[1], int(args[2]))
    elif cmd == "udp":
        udp(args[0], args[1], int(args[2]))
    elif cmd == "icmp":
        icmp(args[0], args[1])
    elif cmd == "dns-tcp-hold":
        dns_tcp_hold(int(args[0]), int(args[1]))
    elif cmd == "dhcp-churn":
        dhcp_churn(args[0], int(args[1]))
    elif cmd == "rogue-router":
        rogue_router(args[0])
    elif cmd == "spoof6":
        spoof6(args[0], args[1], args[2])
    elif cmd in ("tcp6", "udp6"):
        probe6(cmd[:3], args[0], args[1], int(args[2]))
    elif cmd == "flood":
        flood(args[0], int(args[1]), float(args[2]), int(args[3]), args[4:])
    elif cmd == "unreachable":
        unreachable(args[0], int(args[1]), int(args[2]))
    elif cmd == "connect-flood":
        connect_flood(args[0], int(args[1]), int(args[2]), int(args[3]), float(args[4]))
    elif cmd == "mute-upstream":
        mute_upstream(int(args[0]))
    elif cmd == "forger":
        forger(int(args[0]))
    else:
        sys.exit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
