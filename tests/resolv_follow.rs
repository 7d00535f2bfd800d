//! The host's resolv.conf followed without a restart: the embedded DNS
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
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
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
printf 'search example.test\nnameserver 127.0.0.1\n' > resolv.conf
cat > cfg2.toml <<TOML
[dns]
resolv_conf = "$PWD/resolv.conf"
TOML
S2=$PWD/l2.sock
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
grep -c "now forwards to" d2.log | sed 's/^/changes: /'
"#,
    );
    assert_eq!(line(&out, "before:"), "before: 192.0.2.11", "{out}");
    assert_eq!(line(&out, "renamed:"), "renamed: 192.0.2.22", "{out}");
    assert_eq!(line(&out, "emptied:"), "emptied: 192.0.2.22", "{out}");
    assert_eq!(line(&out, "rewritten:"), "rewritten: 192.0.2.11", "{out}");
    assert_eq!(line(&out, "changes:"), "changes: 2", "{out}");
}
