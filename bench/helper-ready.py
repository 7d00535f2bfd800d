#!/usr/bin/env python3
"""How long a slirp4netns-compatible helper takes from exec to its ready
byte (what podman and rootlesskit wait for on every container start), for
each binary given, side by side: N starts each against one target
namespace, the median, min and max in ms; and a running helper's VmRSS
(one more start each, read 1 s after its ready byte). Needs unshare (a user and network
namespace); no traffic leaves the machine.

    python3 bench/helper-ready.py target/release/lanyard /usr/bin/slirp4netns
    N=20 EXTRA="--enable-sandbox --enable-seccomp" python3 bench/helper-ready.py ...
"""
import os
import subprocess
import sys
import time

N = int(os.environ.get("N", "10"))
EXTRA = os.environ.get("EXTRA", "").split()


def ready_ms(binary, target, tap, rss=False):
    r, w = os.pipe()
    argv = [binary] + (["slirp4netns"] if "lanyard" in os.path.basename(binary) else [])
    argv += ["-c", "-r", str(w)] + EXTRA + [str(target), tap]
    t0 = time.perf_counter()
    p = subprocess.Popen(argv, pass_fds=[w], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(w)
    got = os.read(r, 16)
    t1 = time.perf_counter()
    if rss:
        time.sleep(1)
        with open(f"/proc/{p.pid}/status") as f:
            kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    p.kill()
    p.wait(timeout=10)
    os.close(r)
    if got != b"1":
        raise SystemExit(f"{binary}: no ready byte (got {got!r})")
    return kib if rss else (t1 - t0) * 1000


def main():
    target = subprocess.Popen(["unshare", "-r", "-n", "sleep", "600"])
    try:
        time.sleep(0.3)
        results = {b: [] for b in sys.argv[1:]}
        # Alternate the binaries so that drift hits them alike.
        for i in range(N):
            for b in results:
                results[b].append(ready_ms(b, target.pid, f"tap{i % 8}"))
        for b, r in results.items():
            r.sort()
            kib = ready_ms(b, target.pid, "tapr", rss=True)
            print(f"{b}: ready after {r[len(r) // 2]:.1f} ms (median of {N}; min {r[0]:.1f}, max {r[-1]:.1f}); VmRSS {kib / 1024:.1f} MiB")
    finally:
        target.kill()
        target.wait()


if __name__ == "__main__":
    main()
