#!/usr/bin/env python3
"""Many established TCP connections held at once, for bench/scale.sh.

    flow_hold.py serve ADDR PORT NPORTS [--lifetime S]
    flow_hold.py hold ADDR PORT NPORTS N --go FILE [--window W] [--probes K]
                 [--deadline S]

The server listens on NPORTS consecutive ports from PORT (one source
address reaches a port from at most ~28,000 source ports, so 100,000
connections need several), accepts every connection, echoes what it reads
and closes when the client does. One epoll loop, no thread per connection.
It prints "listening" (flushed) once all ports listen, and exits after
--lifetime seconds.

The client opens N connections spread over the server's ports, at most W
connects outstanding at a time (non-blocking, one epoll loop), and prints

    held N SECONDS RATE

once all N are established: RATE is new connections per second. It then
waits (bounded by --deadline) for FILE to exist, so that the caller can
measure whatever holds the flows (the NAT's memory, its table) with all of
them open. Then K probes, one after another, each a new connection while
the N are held: connect, 1 byte written, its echo read, close; it prints

    probe MEDIAN_US P90_US

the time of that exchange. Then it resets every connection (SO_LINGER 0:
no TIME_WAIT left behind to exhaust the next run's ports) and exits. On any
failure: "fail:REASON" and exit code 1. N may be 0 (the probes alone, with
an empty table). Every wait is bounded by --deadline.
"""
import argparse
import errno
import os
import resource
import select
import socket
import struct
import sys
import time

LINGER0 = struct.pack("ii", 1, 0)


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if want and soft < want:
        raise OSError("RLIMIT_NOFILE is %d, %d needed" % (soft, want))


def serve(args):
    raise_nofile(0)
    ep = select.epoll()
    listeners = {}
    for p in range(args.port, args.port + args.nports):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((args.addr, p))
        s.listen(4096)
        s.setblocking(False)
        listeners[s.fileno()] = s
        ep.register(s.fileno(), select.EPOLLIN)
    conns = {}
    print("listening", flush=True)
    end = time.monotonic() + args.lifetime
    while time.monotonic() < end:
        for fd, ev in ep.poll(1.0, 1024):
            if fd in listeners:
                for _ in range(256):
                    try:
                        c, _ = listeners[fd].accept()
                    except (BlockingIOError, InterruptedError):
                        break
                    except OSError as e:
                        if e.errno in (errno.EMFILE, errno.ENFILE):
                            print("fail:accept: %s" % e, flush=True)
                            time.sleep(0.1)
                        break
                    c.setblocking(False)
                    conns[c.fileno()] = c
                    ep.register(c.fileno(), select.EPOLLIN)
                continue
            c = conns.get(fd)
            if c is None:
                continue
            try:
                data = c.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                try:
                    c.send(data)
                except OSError:
                    pass
            else:
                ep.unregister(fd)
                del conns[fd]
                c.close()


def probe(args, deadline):
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("deadline passed")
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(min(5.0, left))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        t0 = time.perf_counter()
        s.connect((args.addr, args.port))
        s.sendall(b"x")
        if s.recv(1) != b"x":
            raise ConnectionError("no echo")
        dt = time.perf_counter() - t0
    finally:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
        s.close()
    return dt


def open_all(args, deadline):
    """N connections, W outstanding at a time; returns the sockets."""
    ep = select.epoll()
    pending = {}
    held = []
    started = 0
    while len(held) < args.n:
        while started < args.n and len(pending) < args.window:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            port = args.port + started % args.nports
            err = s.connect_ex((args.addr, port))
            if err not in (0, errno.EINPROGRESS):
                raise OSError(err, "connect %d: %s" % (started, os.strerror(err)))
            pending[s.fileno()] = s
            ep.register(s.fileno(), select.EPOLLOUT)
            started += 1
        if time.monotonic() > deadline:
            raise TimeoutError("%d of %d established by the deadline" % (len(held), args.n))
        for fd, _ in ep.poll(1.0, 1024):
            s = pending.pop(fd)
            ep.unregister(fd)
            err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, "connect %d: %s" % (len(held), os.strerror(err)))
            held.append(s)
    ep.close()
    return held


def hold(args):
    deadline = time.monotonic() + args.deadline
    held = []
    try:
        raise_nofile(args.n + args.window + 64)
        probe(args, deadline)  # warm-up: ARP, the path's first flow
        t0 = time.monotonic()
        held = open_all(args, deadline)
        secs = time.monotonic() - t0
        rate = args.n / secs if args.n else 0.0
        print("held %d %.3f %.0f" % (args.n, secs, rate), flush=True)
        while not os.path.exists(args.go):
            if time.monotonic() > deadline:
                raise TimeoutError("no go file by the deadline")
            time.sleep(0.05)
        times = sorted(probe(args, deadline) for _ in range(args.probes))
        med = times[len(times) // 2]
        p90 = times[min(len(times) - 1, (len(times) * 9) // 10)]
        print("probe %.0f %.0f" % (med * 1e6, p90 * 1e6), flush=True)
    except (OSError, TimeoutError, ConnectionError) as e:
        print("fail:%s after %d connections" % (str(e) or type(e).__name__, len(held)), flush=True)
        return 1
    finally:
        for s in held:
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            except OSError:
                pass
            s.close()
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("serve")
    s.add_argument("addr")
    s.add_argument("port", type=int)
    s.add_argument("nports", type=int)
    s.add_argument("--lifetime", type=float, default=600.0)
    h = sub.add_parser("hold")
    h.add_argument("addr")
    h.add_argument("port", type=int)
    h.add_argument("nports", type=int)
    h.add_argument("n", type=int)
    h.add_argument("--go", required=True)
    h.add_argument("--window", type=int, default=256)
    h.add_argument("--probes", type=int, default=50)
    h.add_argument("--deadline", type=float, default=300.0)
    args = p.parse_args()
    if args.mode == "serve":
        serve(args)
        return 0
    return hold(args)


if __name__ == "__main__":
    sys.exit(main())
