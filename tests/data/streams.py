#!/usr/bin/env python3
"""Named, time-bounded streams for the fault and soak tests: TCP streams
that run for a given time (not a given size) and report their byte count
and sha256 on both ends, or how they ended; UDP sent as fast as the sender
can, with a sequence number in every datagram, counted at the other end.
Every blocking call has a timeout, every loop a time bound. NAME labels a
stream's lines, so many can share one output.

  tcp-sink NAME PORT [ADDR]      each connection read to its end ->
                                   "NAME sunk N SHA" (EOF) or
                                   "NAME sink-error ERR after N"
  tcp-source NAME PORT SECS [ADDR]  each connection gets SECS seconds of data,
                                   then FIN -> "NAME sourced N SHA" or
                                   "NAME source-error ERR after N"
  tcp-send NAME HOST PORT SECS [STOP]  client: send for SECS seconds (or
                                   until the file STOP exists), then FIN ->
                                   "NAME sent N SHA" or "NAME send-error ERR after N"
  tcp-recv NAME HOST PORT        client: read to EOF -> "NAME received N SHA"
                                   or "NAME recv-error ERR after N"
  udp-sink NAME PORT [ADDR]      count datagrams until the sender's END ->
                                   "NAME udp got G of S corrupt C dup D"
  udp-blast NAME HOST PORT SECS  client: datagrams for SECS seconds, then END ->
                                   "NAME udp sent S"

Servers print "ready" once listening. Clients print "NAME started" once
connected, so a test knows a stream is in flight. ERR is the exception's
class name (ConnectionResetError, BrokenPipeError, TimeoutError, ...): a test
tells a reset from a hang by it.

The TCP data is slices of a 16 MiB random buffer at offsets that never
line up with segment or chunk sizes, so a lost, duplicated or reordered
piece changes the hash (a short repeating pattern would hide a swap of
two equal-sized pieces).
"""
import hashlib
import os
import random
import socket
import struct
import sys
import threading
import time

T = 20  # seconds, for every blocking call
CHUNK = 1 << 20
BUF = random.Random(1).randbytes(16 << 20)
STEP = 1000003  # a prime: consecutive chunks start at unrelated offsets


def chunks(seconds, stop=None):
    """1 MiB views of BUF, until `seconds` have passed or the file `stop`
    exists."""
    view = memoryview(BUF)
    off = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (stop and os.path.exists(stop)):
        yield view[off : off + CHUNK]
        off = (off + STEP) % (len(BUF) - CHUNK)


def say(*words):
    print(*words, flush=True)


def family(addr):
    return socket.AF_INET6 if ":" in addr else socket.AF_INET


def listen(port, addr="0.0.0.0"):
    s = socket.socket(family(addr))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port))
    s.listen(64)
    say("ready")
    return s


def serve(s, handler):
    while True:
        c, _ = s.accept()
        c.settimeout(T)
        threading.Thread(target=handler, args=(c,), daemon=True).start()


def read_all(name, s, ok_word, err_word):
    sha, n = hashlib.sha256(), 0
    try:
        while True:
            d = s.recv(CHUNK)
            if not d:
                break
            sha.update(d)
            n += len(d)
        say(name, ok_word, n, sha.hexdigest())
    except OSError as e:
        say(name, err_word, type(e).__name__, "after", n)
    s.close()


def write_for(name, s, seconds, ok_word, err_word, stop=None):
    sha, n = hashlib.sha256(), 0
    try:
        for piece in chunks(seconds, stop):
            s.sendall(piece)
            sha.update(piece)
            n += len(piece)
        s.shutdown(socket.SHUT_WR)
        # Until the other end has read everything and closed.
        s.recv(1)
        say(name, ok_word, n, sha.hexdigest())
    except OSError as e:
        say(name, err_word, type(e).__name__, "after", n)
    s.close()


def tcp_sink(name, port, addr="0.0.0.0"):
    serve(listen(int(port), addr), lambda c: read_all(name, c, "sunk", "sink-error"))


def tcp_source(name, port, seconds, addr="0.0.0.0"):
    serve(
        listen(int(port), addr),
        lambda c: write_for(name, c, float(seconds), "sourced", "source-error"),
    )


def connect(host, port):
    s = socket.create_connection((host, int(port)), timeout=T)
    return s


def tcp_send(name, host, port, seconds, stop=None):
    s = connect(host, port)
    say(name, "started")
    write_for(name, s, float(seconds), "sent", "send-error", stop)


def tcp_recv(name, host, port):
    s = connect(host, port)
    say(name, "started")
    read_all(name, s, "received", "recv-error")


# A datagram: its sequence number, then 1192 bytes of BUF from an offset
# the number gives; the sink checks both.
DGRAM = 1200


def dgram(seq):
    off = (seq * 7) % 65536
    return struct.pack("!Q", seq) + BUF[off : off + DGRAM - 8]


def udp_sink(name, port, addr="0.0.0.0"):
    s = socket.socket(family(addr), socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, int(port)))
    s.settimeout(T)
    say("ready")
    seen = bytearray(1 << 20)  # a bitmap of sequence numbers, grown as needed
    got = corrupt = dup = 0
    sent = "?"
    try:
        while True:
            d = s.recv(65535)
            if d.startswith(b"END "):
                sent = d[4:].decode()
                break
            if len(d) != DGRAM:
                corrupt += 1
                continue
            (seq,) = struct.unpack("!Q", d[:8])
            if d != dgram(seq) or seq >= (1 << 40):
                corrupt += 1
                continue
            byte, bit = seq >> 3, 1 << (seq & 7)
            while byte >= len(seen):
                seen.extend(bytearray(len(seen)))
            if seen[byte] & bit:
                dup += 1
                continue
            seen[byte] |= bit
            got += 1
    except socket.timeout:
        pass  # the sender went quiet without its END: report what came
    say(name, "udp got", got, "of", sent, "corrupt", corrupt, "dup", dup)


def udp_blast(name, host, port, seconds):
    s = socket.socket(family(host), socket.SOCK_DGRAM)
    s.connect((host, int(port)))
    say(name, "started")
    seq = 0
    errors = 0
    tries = 0
    end = time.monotonic() + float(seconds)
    while True:
        # The clock is read once per 64 tries: it costs more than a send.
        tries += 1
        if tries % 64 == 0 and time.monotonic() >= end:
            break
        try:
            s.send(dgram(seq))
            seq += 1
        except OSError:
            # ENOBUFS, or ECONNREFUSED from an ICMP error: not sent, and a
            # breath before the next try.
            errors += 1
            time.sleep(0.001)
    # The END, several times: it may be lost like any datagram.
    for _ in range(20):
        try:
            s.send(f"END {seq}".encode())
        except OSError:
            pass
        time.sleep(0.05)
    say(name, "udp sent", seq, "errors", errors)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    fns = {
        "tcp-sink": tcp_sink,
        "tcp-source": tcp_source,
        "tcp-send": tcp_send,
        "tcp-recv": tcp_recv,
        "udp-sink": udp_sink,
        "udp-blast": udp_blast,
    }
    if cmd not in fns:
        sys.exit(f"unknown command {cmd}")
    fns[cmd](*args)
