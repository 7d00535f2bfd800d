#!/usr/bin/env python3
"""Peers for lanyard's egress tests: servers that run in the test's "outside"
namespace (or on the host's loopback) and clients that run in containers.
Every blocking call has a timeout; data is pseudo-random and hashed so
transfers are checked byte for byte.

  sink PORT [ADDR]              TCP: each connection's bytes -> "sink N SHA from IP"
  source PORT NBYTES [ADDR]     TCP: each connection gets NBYTES -> "source N SHA"
  echo PORT [ADDR]              TCP echo, one thread per connection
  echo-ev PORT [ADDR]           TCP echo, one thread for all (an event loop)
  halfclose PORT [ADDR]         TCP: read to EOF, then answer "got N" and close
  udp-echo PORT [ADDR]          UDP echo ("big" asks for an 8000-byte answer)
  udp-burst PORT [ADDR]         UDP: answers "burst S1,S2,..." with datagrams of
                                those sizes at once, datagram i starting "i:"
  dns PORT [ADDR]               DNS over UDP and TCP: A 192.0.2.7 for every name,
                                NXDOMAIN for *.invalid
  send HOST PORT NBYTES         client: send NBYTES -> "sent N SHA"
  recv HOST PORT                client: read to EOF -> "recv N SHA"
  many HOST PORT N              client: N concurrent echo connections -> "many OK/N"
  hold HOST PORT N              client: open N connections, report how many
                                 opened and how many were reset, hold 2 s
  halfclose-client HOST PORT NBYTES   -> "reply got N"
  udp HOST PORT                 client: echo, big answer, closed port -> lines
  udp-burst-client HOST PORT SIZES   client: ask for a burst, check every
                                datagram's size, order and bytes -> "burst OK/N"
  whoami PORT                   TCP: tell each client "peer IP:PORT", then echo
  udp-whoami PORT               UDP: answer each datagram with "peer IP:PORT"
  ask HOST PORT                 client: print the server's first line
  udp-ask HOST PORT             client: print the answer to one datagram
  hold-ask HOST PORT N          client: N concurrent connections held 3 s ->
                                 "held OK/N"
"""
import hashlib
import struct
import os
import socket
import sys
import threading
import time

T = 20  # seconds, for every blocking call


def data_stream(n, seed=7):
    """n pseudo-random bytes, produced in 1 MiB chunks."""
    chunk = hashlib.sha256(str(seed).encode()).digest() * (1 << 15)  # 1 MiB
    out = 0
    while out < n:
        piece = chunk[: min(len(chunk), n - out)]
        out += len(piece)
        yield piece


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listen(port, addr="0.0.0.0"):
    s = socket.socket(family(addr))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(512)
    print("ready", flush=True)
    return s


def serve(s, handler):
    while True:
        c, a = s.accept()
        c.settimeout(T)
        threading.Thread(target=handler, args=(c, a), daemon=True).start()


def sink(port, addr="0.0.0.0"):
    def h(c, a):
        sha, n = hashlib.sha256(), 0
        try:
            while True:
                d = c.recv(1 << 20)
                if not d:
                    break
                sha.update(d)
                n += len(d)
            print(f"sink {n} {sha.hexdigest()} from {a[0]}", flush=True)
        except OSError as e:
            print(f"sink error {e} after {n}", flush=True)
        c.close()

    serve(listen(port, addr), h)


def source(port, nbytes, addr="0.0.0.0"):
    def h(c, a):
        sha = hashlib.sha256()
        try:
            for piece in data_stream(nbytes):
                sha.update(piece)
                c.sendall(piece)
            c.shutdown(socket.SHUT_WR)
            print(f"source {nbytes} {sha.hexdigest()}", flush=True)
            c.recv(1)
        except OSError as e:
            print(f"source error {e}", flush=True)
        c.close()

    serve(listen(port, addr), h)


def echo(port, addr="0.0.0.0"):
    def h(c, a):
        try:
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        c.close()

    serve(listen(port, addr), h)


def echo_ev(port, addr="0.0.0.0"):
    # What a server whose cost per client is not a thread does: one
    # selector, non-blocking sockets, a client dropped on error or EOF.
    import selectors

    sel = selectors.DefaultSelector()
    s = listen(port, addr)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            if key.fileobj is s:
                try:
                    c, _ = s.accept()
                except OSError:
                    continue
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ)
                continue
            c = key.fileobj
            try:
                d = c.recv(65536)
                if d:
                    c.send(d)  # echo what fits; a test client sends little
                    continue
            except BlockingIOError:
                continue
            except OSError:
                pass
            sel.unregister(c)
            c.close()


def halfclose(port, addr="0.0.0.0"):
    def h(c, a):
        n = 0
        while True:
            d = c.recv(65536)
            if not d:
                break
            n += len(d)
        # The client has shut down its side; ours still carries the answer.
        c.sendall(f"got {n}".encode())
        c.close()

    serve(listen(port, addr), h)


def udp_echo(port, addr="0.0.0.0"):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(b"B" * 8000 if d == b"big" else d, a)


def dns_answer(q):
    """A for every name (192.0.2.7), NXDOMAIN under .invalid; None if junk."""
    if len(q) < 12:
        return None
    # The question: labels up to the zero byte, then type and class.
    i = 12
    labels = []
    while i < len(q) and q[i] != 0:
        labels.append(q[i + 1 : i + 1 + q[i]].decode(errors="replace"))
        i += 1 + q[i]
    question = q[12 : i + 5]
    name = ".".join(labels)
    nx = name.endswith(".invalid")
    flags = b"\x81\x83" if nx else b"\x81\x80"
    an = b"\x00\x00" if nx else b"\x00\x01"
    hdr = q[:2] + flags + b"\x00\x01" + an + b"\x00\x00\x00\x00"
    ans = b"" if nx else b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, 7])
    return hdr + question + ans


def dns_tcp_conn(c):
    c.settimeout(T)
    try:
        while True:
            n = c.recv(2, socket.MSG_WAITALL)
            if len(n) < 2:
                return
            q = c.recv(int.from_bytes(n, "big"), socket.MSG_WAITALL)
            a = dns_answer(q)
            if a is None:
                return
            c.sendall(len(a).to_bytes(2, "big") + a)
    except OSError:
        pass
    finally:
        c.close()


def dns(port, addr="0.0.0.0"):
    """The same answers over UDP and TCP on one port."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, port))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, port))
    t.listen(16)

    def accept():
        while True:
            c, _ = t.accept()
            threading.Thread(target=dns_tcp_conn, args=(c,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    print("ready", flush=True)
    while True:
        q, a = s.recvfrom(4096)
        r = dns_answer(q)
        if r is not None:
            s.sendto(r, a)


def send(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=T)
    sha = hashlib.sha256()
    for piece in data_stream(nbytes, seed=11):
        sha.update(piece)
        s.sendall(piece)
    s.shutdown(socket.SHUT_WR)
    s.recv(1)
    s.close()
    print(f"sent {nbytes} {sha.hexdigest()}", flush=True)


def recv(host, port):
    s = socket.create_connection((host, port), timeout=T)
    sha, n = hashlib.sha256(), 0
    while True:
        d = s.recv(1 << 20)
        if not d:
            break
        sha.update(d)
        n += len(d)
    s.close()
    print(f"recv {n} {sha.hexdigest()}", flush=True)


def many(host, port, n):
    ok = []
    lock = threading.Lock()

    def one(i):
        try:
            s = socket.create_connection((host, port), timeout=T)
            msg = f"hello {i} ".encode() * 50
            s.sendall(msg)
            got = b""
            while len(got) < len(msg):
                d = s.recv(65536)
                if not d:
                    break
                got += d
            s.close()
            if got == msg:
                with lock:
                    ok.append(i)
        except OSError as e:
            print(f"conn {i}: {e}", flush=True)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(T + 5)
    print(f"many {len(ok)}/{n}", flush=True)


def hold(host, port, n):
    socks, refused = [], 0
    for i in range(n):
        try:
            s = socket.create_connection((host, port), timeout=5)
            s.sendall(b"x")
            if s.recv(1) != b"x":
                raise OSError("no echo")
            socks.append(s)
        except OSError:
            refused += 1
    print(f"hold opened {len(socks)} refused {refused}", flush=True)
    time.sleep(2)
    for s in socks:
        s.close()


def halfclose_client(host, port, nbytes):
    s = socket.create_connection((host, port), timeout=T)
    for piece in data_stream(nbytes):
        s.sendall(piece)
    s.shutdown(socket.SHUT_WR)
    reply = b""
    while True:
        d = s.recv(100)
        if not d:
            break
        reply += d
    print(f"reply {reply.decode()}", flush=True)


def udp(host, port):
    u = socket.socket(family(host), socket.SOCK_DGRAM)
    u.settimeout(3)
    for attempt in range(3):
        try:
            u.sendto(b"hello", (host, port))
            print(f"udp echo {u.recv(100).decode()}", flush=True)
            break
        except socket.timeout:
            continue
    u.sendto(b"big", (host, port))
    print(f"udp big {len(u.recv(65535))}", flush=True)
    c = socket.socket(family(host), socket.SOCK_DGRAM)
    c.settimeout(3)
    c.connect((host, port + 1))
    c.send(b"anyone?")
    try:
        c.recv(10)
        print("udp closed port answered?!", flush=True)
    except ConnectionRefusedError:
        print("udp closed port refused", flush=True)
    except socket.timeout:
        print("udp closed port timeout", flush=True)


def whoami(port, addr="0.0.0.0"):
    def h(c, a):
        try:
            c.sendall(f"peer {a[0]}:{a[1]}\n".encode())
            while True:
                d = c.recv(65536)
                if not d:
                    break
                c.sendall(d)
        except OSError:
            pass
        c.close()

    serve(listen(port, addr), h)


def burst_datagram(i, size):
    head = f"{i}:".encode()
    body = hashlib.sha256(head).digest() * (size // 32 + 1)
    return (head + body)[:size]


UDP_SEGMENT = 103


def udp_burst(port, addr="0.0.0.0"):
    """Each run of equal sizes goes in one UDP GSO send (so the datagrams
    reach the far socket, or the TAP's queue, together, as a fast sender's
    would), one by one where the kernel refuses that."""
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        d, a = s.recvfrom(65535)
        if not d.startswith(b"burst "):
            continue
        sizes = [int(x) for x in d[6:].split(b",")]
        i = 0
        while i < len(sizes):
            j = i
            while j + 1 < len(sizes) and sizes[j + 1] == sizes[i] and j + 1 - i < 60:
                j += 1
            run = [burst_datagram(k, sizes[k]) for k in range(i, j + 1)]
            sent = False
            if len(run) > 1 and sizes[i] > 0:
                try:
                    s.sendmsg([b"".join(run)], [(socket.SOL_UDP, UDP_SEGMENT, struct.pack("H", sizes[i]))], 0, a)
                    sent = True
                except OSError:
                    pass
            if not sent:
                for dgram in run:
                    s.sendto(dgram, a)
            i = j + 1


def udp_burst_client(host, port, sizes):
    want = [int(x) for x in sizes.split(",")]
    u = socket.socket(family(host), socket.SOCK_DGRAM)
    u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    u.settimeout(3)
    u.connect((host, port))
    u.send(b"burst " + sizes.encode())
    got = []
    try:
        while len(got) < len(want):
            got.append(u.recv(65535))
    except socket.timeout:
        pass
    ok = sum(1 for i, d in enumerate(got) if i < len(want) and d == burst_datagram(i, want[i]))
    print(f"burst {ok}/{len(want)} got {len(got)}", flush=True)
    if ok != len(want):
        bad = [(i, len(d), d[:8]) for i, d in enumerate(got) if i >= len(want) or d != burst_datagram(i, want[i])]
        print(f"burst mismatches {bad[:5]}", flush=True)


def udp_whoami(port, addr="0.0.0.0"):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.bind((addr, port))
    print("ready", flush=True)
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(f"peer {a[0]}:{a[1]}".encode(), a)


def ask(host, port):
    s = socket.create_connection((host, port), timeout=5)
    line = b""
    while not line.endswith(b"\n"):
        d = s.recv(100)
        if not d:
            break
        line += d
    s.close()
    print(line.decode().strip(), flush=True)


def udp_ask(host, port):
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    u = socket.socket(fam, socket.SOCK_DGRAM)
    u.settimeout(2)
    for _ in range(3):
        u.sendto(b"who?", (host, port))
        try:
            print(u.recv(100).decode(), flush=True)
            return
        except socket.timeout:
            continue
    print("no answer", flush=True)


def hold_ask(host, port, n):
    socks, ok = [], 0
    for _ in range(n):
        try:
            s = socket.create_connection((host, port), timeout=3)
            s.settimeout(3)
            if s.recv(100).startswith(b"peer"):
                ok += 1
                socks.append(s)
        except OSError:
            pass
    print(f"held {ok}/{n}", flush=True)
    time.sleep(3)
    for s in socks:
        s.close()


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "sink":
        sink(int(args[0]), *args[1:])
    elif cmd == "source":
        source(int(args[0]), int(args[1]), *args[2:])
    elif cmd == "echo":
        echo(int(args[0]), *args[1:])
    elif cmd == "echo-ev":
        echo_ev(int(args[0]), *args[1:])
    elif cmd == "halfclose":
        halfclose(int(args[0]), *args[1:])
    elif cmd == "udp-echo":
        udp_echo(int(args[0]), *args[1:])
    elif cmd == "dns":
        dns(int(args[0]), *args[1:])
    elif cmd == "send":
        send(args[0], int(args[1]), int(args[2]))
    elif cmd == "recv":
        recv(args[0], int(args[1]))
    elif cmd == "many":
        many(args[0], int(args[1]), int(args[2]))
    elif cmd == "hold":
        hold(args[0], int(args[1]), int(args[2]))
    elif cmd == "halfclose-client":
        halfclose_client(args[0], int(args[1]), int(args[2]))
    elif cmd == "udp":
        udp(args[0], int(args[1]))
    elif cmd == "whoami":
        whoami(int(args[0]), *args[1:])
    elif cmd == "udp-burst":
        udp_burst(int(args[0]), *args[1:])
    elif cmd == "udp-burst-client":
        udp_burst_client(args[0], int(args[1]), args[2])
    elif cmd == "udp-whoami":
        udp_whoami(int(args[0]), *args[1:])
    elif cmd == "ask":
        ask(args[0], int(args[1]))
    elif cmd == "udp-ask":
        udp_ask(args[0], int(args[1]))
    elif cmd == "hold-ask":
        hold_ask(args[0], int(args[1]), int(args[2]))
    else:
        sys.exit(f"unknown command {cmd}")
