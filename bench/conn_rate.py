#!/usr/bin/env python3
"""Sequential short TCP connections, for bench/e2e.sh.

    conn_rate.py serve ADDR PORT [--lifetime S]
    conn_rate.py client ADDR PORT N [--deadline S] [--timeout S]
    conn_rate.py whoami ADDR PORT [--timeout S]

The server answers each connection: it reads the 32-byte request, writes the
32-byte response and closes (so TIME_WAIT stays on the server's side, as with
an HTTP/1.0 server). It prints "listening ADDR PORT" (flushed) once it
listens, so a caller can wait for that instead of probing the port, and it
exits after --lifetime seconds. It runs wherever the benchmark puts it: in
the outside namespace for the egress rows, inside each peer's container for
the published-port rows (the client then connects to the host's port).

`whoami` sends another 32-byte request, to which the server answers with the
client's address as it sees it; it prints that address. It shows whether a
published port keeps the client's real address.

The client opens one warm-up connection (flow setup, ARP), then N
connections one after another: connect, send the request, read the response
until the server closes, close. It prints the connections per second over
the N timed connections, or "fail:REASON" and exits 1. Every socket
operation is bounded by --timeout and the whole run by --deadline.
"""
import argparse
import socket
import sys
import threading
import time

REQUEST = b"GET /bench HTTP/1.0\r\nX: 123456\r\n"  # 32 bytes
RESPONSE = b"HTTP/1.0 200 OK\r\nX: 1234567890\r\n"  # 32 bytes
WHOAMI = b"GET /whoami HTTP/1.0\r\nX: 12345\r\n"  # 32 bytes
assert len(REQUEST) == 32 and len(RESPONSE) == 32 and len(WHOAMI) == 32


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            break
        buf += chunk
    return buf


def serve(args):
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((args.addr, args.port))
    srv.listen(512)
    srv.settimeout(1.0)
    print("listening %s %d" % (args.addr, args.port), flush=True)
    end = time.monotonic() + args.lifetime

    def handle(conn, peer):
        try:
            conn.settimeout(5.0)
            req = recv_exact(conn, len(REQUEST))
            if req == REQUEST:
                conn.sendall(RESPONSE)
            elif req == WHOAMI:
                conn.sendall(peer[0].encode() + b"\n")
        except OSError:
            pass
        finally:
            conn.close()

    while time.monotonic() < end:
        try:
            conn, peer = srv.accept()
        except socket.timeout:
            continue
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=handle, args=(conn, peer), daemon=True).start()


def one(args, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(min(args.timeout, left))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.connect((args.addr, args.port))
        s.sendall(REQUEST)
        got = recv_exact(s, len(RESPONSE) + 1)  # + 1: read until EOF
        if got != RESPONSE:
            raise ConnectionError("bad response (%d bytes)" % len(got))
    finally:
        s.close()


def client(args):
    deadline = time.monotonic() + args.deadline
    done = 0
    try:
        one(args, deadline)  # warm-up, not timed
        t0 = time.monotonic()
        for _ in range(args.n):
            one(args, deadline)
            done += 1
        elapsed = time.monotonic() - t0
    except (OSError, TimeoutError, ConnectionError) as e:
        reason = str(e) or type(e).__name__
        print("fail:%s after %d connections" % (reason, done))
        return 1
    print("%.1f" % (args.n / elapsed))
    return 0


def whoami(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(args.timeout)
        s.connect((args.addr, args.port))
        s.sendall(WHOAMI)
        got = recv_exact(s, 64)  # until EOF
    except OSError as e:
        print("fail:%s" % (str(e) or type(e).__name__))
        return 1
    finally:
        s.close()
    addr = got.decode("ascii", "replace").strip()
    if not addr:
        print("fail:empty answer")
        return 1
    print(addr)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("addr")
    s.add_argument("port", type=int)
    s.add_argument("--lifetime", type=float, default=600.0)
    c = sub.add_parser("client")
    c.add_argument("addr")
    c.add_argument("port", type=int)
    c.add_argument("n", type=int)
    c.add_argument("--deadline", type=float, default=60.0)
    c.add_argument("--timeout", type=float, default=5.0)
    w = sub.add_parser("whoami")
    w.add_argument("addr")
    w.add_argument("port", type=int)
    w.add_argument("--timeout", type=float, default=5.0)
    args = p.parse_args()
    if args.mode == "serve":
        serve(args)
        return 0
    if args.mode == "whoami":
        return whoami(args)
    return client(args)


if __name__ == "__main__":
    sys.exit(main())
