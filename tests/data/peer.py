#!/usr/bin/env python3
"""Test peer for lanyard's end-to-end tests.

server: a TCP sink on 5000 that prints the byte count and sha256 of what it
received, a UDP echo on 5001, and a listener on 5002 that prints broadcasts.
It exits once it has seen one TCP transfer and one broadcast (or after 60 s).

client HOST NBYTES BCAST: sends NBYTES random bytes over TCP to HOST:5000,
prints their sha256, checks a UDP round trip to HOST:5001, and sends a
broadcast to BCAST:5002.
"""
import hashlib
import os
import socket
import sys
import threading
import time


def serve():
    tcp = socket.socket()
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("0.0.0.0", 5000))
    tcp.listen(4)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("0.0.0.0", 5001))
    bc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    bc.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    bc.bind(("0.0.0.0", 5002))
    done_tcp = threading.Event()
    done_bc = threading.Event()

    def tcp_loop():
        conn, addr = tcp.accept()
        h = hashlib.sha256()
        n = 0
        while True:
            d = conn.recv(1 << 20)
            if not d:
                break
            h.update(d)
            n += len(d)
        conn.close()
        print(f"tcp {n} {h.hexdigest()} from {addr[0]}", flush=True)
        done_tcp.set()

    def udp_loop():
        while True:
            d, addr = udp.recvfrom(65535)
            udp.sendto(d, addr)

    def bc_loop():
        d, addr = bc.recvfrom(65535)
        print(f"bcast {d.decode()} from {addr[0]}", flush=True)
        done_bc.set()

    for f in (tcp_loop, udp_loop, bc_loop):
        threading.Thread(target=f, daemon=True).start()
    print("ready", flush=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (done_tcp.is_set() and done_bc.is_set()):
        time.sleep(0.05)


def client(host, nbytes, bcast):
    data = os.urandom(nbytes)
    s = socket.create_connection((host, 5000), timeout=20)
    s.sendall(data)
    s.close()
    print(f"tcp {len(data)} {hashlib.sha256(data).hexdigest()}", flush=True)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.settimeout(2)
    for _ in range(5):
        u.sendto(b"ping-udp", (host, 5001))
        try:
            d, _ = u.recvfrom(100)
            if d == b"ping-udp":
                print("udp ok", flush=True)
                break
        except socket.timeout:
            continue
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    for _ in range(3):
        b.sendto(b"hello-bcast", (bcast, 5002))
        time.sleep(0.1)
    print("bcast sent", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "server":
        serve()
    else:
        client(sys.argv[2], int(sys.argv[3]), sys.argv[4])
