//! A container's own resolvers (`run --dns`), over UDP and TCP, beside
//! its neighbour's host resolvers, container names still answered, and
//! never for a container on an internal network. And the host's
//! resolv.conf followed without a restart: the embedded DNS
//! forwards to the nameserver the file names now — after the file is
//! replaced by a rename (as NetworkManager and resolvconf write it) and
//! after an in-place rewrite — while a file left with no nameserver (a
//! rewrite caught half-done) keeps the last list instead of leaving
//! containers with none. Real `dig` in real containers; the upstreams are
//! two fake resolvers on the test namespace's loopback (127.0.0.1:53 and
//! 127.0.0.2:53) that answer differently, so the answer says which one
//! was asked.

mod common;

use common::harness::*;
use common::scenario::*;

#[test]
fn a_changed_resolv_conf_takes_effect_without_a_restart() {
    let out = scenario(
        As::Unprivileged,
        "",
        r#"
until_ok() { i=0; until "$@" >/dev/null 2>&1; do i=$((i+1)); [ $i -lt 150 ] || { echo "never: $*"; return 1; }; sleep 0.1; done; }
logged() { i=0; until grep -q "$1" d2.log; do i=$((i+1)); [ $i -lt 150 ] || { echo "never logged: $1"; cat d2.log; exit 1; }; sleep 0.1; done; }
cat > dnsa.py <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 53))
print("ready", flush=True)
while True:
    q, a = s.recvfrom(4096)
    end = 12
    while q[end]:
        end += q[end] + 1
    h = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    rr = b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, int(sys.argv[2])])
    s.sendto(h + q[12:end + 5] + rr, a)
PY
timeout 150 python3 dnsa.py 127.0.0.1 11 > a.out 2>&1 & PIDS="$PIDS $!"; waitfor a.out
timeout 150 python3 dnsa.py 127.0.0.2 22 > b.out 2>&1 & PIDS="$PIDS $!"; waitfor b.out
# The file lives where the sandboxed daemon may not read (Landlock): a
# renamed-over file is a new inode, read through the daemon's unconfined
# helper spawner.
RD=$(mktemp -d /tmp/lanyard-resolv-XXXXXX); chmod 755 $RD
trap 'cleanup; rm -rf "$RD"' EXIT
cp dnsa.py "$RD"/
cd $RD
printf 'search example.test\nnameserver 127.0.0.1\n' > resolv.conf
cat > cfg2.toml <<TOML
[dns]
resolv_conf = "$RD/resolv.conf"
TOML
S2=$OLDPWD/l2.sock
LANYARD_LOG=info $B daemon --socket $S2 --config cfg2.toml > d2.log 2>&1 & PIDS="$PIDS $!"
until_ok $B network ls --socket $S2
ask() { timeout 60 $B run --socket $S2 -- dig +short +tries=1 +time=3 x.example.test @172.17.0.1; }
echo "before: $(ask)"
# Replaced by a rename: a new file (a new inode) in the old one's place.
printf '# a VPN came up\nnameserver 127.0.0.2\n' > resolv.new && mv resolv.new resolv.conf
logged "now forwards to 127.0.0.2"
echo "renamed: $(ask)"
# Emptied: the last list is kept.
: > resolv.conf
logged "names no nameserver"
echo "emptied: $(ask)"
# Rewritten in place.
printf 'nameserver 127.0.0.1\n' > resolv.conf
logged "now forwards to 127.0.0.1"
echo "rewritten: $(ask)"
# An IPv6 nameserver, as a VPN or an IPv6-only network gives.
if ip -6 addr show dev lo 2>/dev/null | grep -q '::1'; then
  timeout 150 python3 dnsa.py ::1 44 > c.out 2>&1 & PIDS="$PIDS $!"; waitfor c.out
  printf 'nameserver ::1\n' > resolv.conf
  logged "now forwards to ::1"
  echo "v6: $(ask)"
else
  echo "v6: no ipv6 loopback"
fi
grep -c "now forwards to" d2.log | sed 's/^/changes: /'
"#,
    );
    assert_eq!(line(&out, "before:"), "before: 192.0.2.11", "{out}");
    assert_eq!(line(&out, "renamed:"), "renamed: 192.0.2.22", "{out}");
    assert_eq!(line(&out, "emptied:"), "emptied: 192.0.2.22", "{out}");
    assert_eq!(line(&out, "rewritten:"), "rewritten: 192.0.2.11", "{out}");
    if line(&out, "v6:") == "v6: no ipv6 loopback" {
        assert!(
            std::env::var("LANYARD_REQUIRE_IPV6").is_err(),
            "IPv6 is required here (LANYARD_REQUIRE_IPV6) but the test namespace has no ::1"
        );
        assert_eq!(line(&out, "changes:"), "changes: 2", "{out}");
    } else {
        assert_eq!(line(&out, "v6:"), "v6: 192.0.2.44", "{out}");
        assert_eq!(line(&out, "changes:"), "changes: 3", "{out}");
    }
}

/// A fake resolver on UDP and TCP port 53 of ADDR answering every A query
/// with 192.0.2.N.
const DNS_BOTH: &str = r#"import socket, sys, threading
addr, n = sys.argv[1], int(sys.argv[2])
def answer(q):
    end = 12
    while q[end]:
        end += q[end] + 1
    h = q[:2] + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00"
    return h + q[12:end + 5] + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + bytes([192, 0, 2, n])
def tcp():
    t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, 53)); t.listen(8)
    while True:
        c, _ = t.accept()
        c.settimeout(5)
        try:
            while True:
                l = c.recv(2)
                if len(l) < 2:
                    break
                q = c.recv(int.from_bytes(l, "big"))
                a = answer(q)
                c.sendall(len(a).to_bytes(2, "big") + a)
        except OSError:
            pass
        c.close()
threading.Thread(target=tcp, daemon=True).start()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind((addr, 53))
print("ready", flush=True)
while True:
    q, a = u.recvfrom(4096)
    u.sendto(answer(q), a)
"#;

#[test]
fn run_dns_forwards_a_containers_queries_to_its_own_resolvers() {
    let out = scenario(
        As::Unprivileged,
        "[dns]\nupstream = [\"127.0.0.1:53\"]\n",
        &format!(
            r#"
cat > dnsb.py <<'PY'
{DNS_BOTH}
PY
timeout 150 python3 dnsb.py 127.0.0.1 11 > a.out 2>&1 & PIDS="$PIDS $!"; waitfor a.out
timeout 150 python3 dnsb.py 127.0.0.2 22 > b.out 2>&1 & PIDS="$PIDS $!"; waitfor b.out
timeout 150 python3 dnsb.py 127.0.0.3 33 > c.out 2>&1 & PIDS="$PIDS $!"; waitfor c.out
$B network create --socket $S --internal closed > /dev/null
timeout 120 $B run --socket $S --name named -- sleep 60 & PIDS="$PIDS $!"
i=0; until $B network inspect --socket $S default | grep -q '"named"'; do i=$((i+1)); [ $i -lt 150 ]; sleep 0.1; done
q() {{ dig +short +tries=1 +time=3 "$@" @172.17.0.1; }}
run --dns 127.0.0.2 --dns 127.0.0.3 -- sh -c "echo own: \$(dig +short +tries=1 +time=3 x.example.test @172.17.0.1); echo own-tcp: \$(dig +tcp +short +tries=1 +time=3 x.example.test @172.17.0.1); echo own-name: \$(dig +short +tries=1 +time=3 named @172.17.0.1)"
run -- sh -c "echo host: \$(dig +short +tries=1 +time=3 x.example.test @172.17.0.1); echo host-tcp: \$(dig +tcp +short +tries=1 +time=3 x.example.test @172.17.0.1)"
run --network closed --dns 127.0.0.2 -- sh -c "echo internal: \$(dig +tries=1 +time=3 x.example.test @\$(ip -4 route | awk '/default/ {{print \$3}}') | grep -o 'status: [A-Z]*')"
set +e
run --dns 0.0.0.0 -- true 2> bad1.err; echo "unspecified rc=$?"
run --dns 127.0.0.2 --dns 127.0.0.3 --dns 127.0.0.4 --dns 127.0.0.5 -- true 2> bad2.err; echo "four rc=$?"
run --dns not-an-ip -- true 2> bad3.err; echo "not-ip rc=$?"
set -e
echo "errs: $(cat bad1.err bad2.err bad3.err | tr '\n' ' ')"
"#
        ),
    );
    // One of the container's own two answered (both are asked at once).
    let own = line(&out, "own:");
    assert!(
        own == "own: 192.0.2.22" || own == "own: 192.0.2.33",
        "{out}"
    );
    let own_tcp = line(&out, "own-tcp:");
    assert!(
        own_tcp == "own-tcp: 192.0.2.22" || own_tcp == "own-tcp: 192.0.2.33",
        "{out}"
    );
    assert_eq!(line(&out, "own-name:"), "own-name: 172.17.0.2", "{out}");
    assert_eq!(line(&out, "host:"), "host: 192.0.2.11", "{out}");
    assert_eq!(line(&out, "host-tcp:"), "host-tcp: 192.0.2.11", "{out}");
    // An internal network never forwards, --dns or not.
    assert_eq!(
        line(&out, "internal:"),
        "internal: status: SERVFAIL",
        "{out}"
    );
    assert_eq!(line(&out, "unspecified rc="), "unspecified rc=125", "{out}");
    assert_eq!(line(&out, "four rc="), "four rc=125", "{out}");
    assert_eq!(line(&out, "not-ip rc="), "not-ip rc=125", "{out}");
    let errs = line(&out, "errs:");
    assert!(errs.contains("--dns: 0.0.0.0"), "{errs}");
    assert!(errs.contains("at most 3"), "{errs}");
    assert!(errs.contains("--dns"), "{errs}");
}
