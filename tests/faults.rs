//! Faults end to end (issue 18): a container killed mid-transfer (and one
//! disconnected mid-transfer, the same end without the race of a dying
//! kernel's FIN), a remote server dying (killed, or silent behind a dead
//! link), `lanyard run` SIGKILLed, what a command leaves running when its
//! container ends, the daemon SIGTERMed with containers running. After
//! each, what the fault took must be given back (flows, addresses, names,
//! published host ports, processes) and the counters must say so; and each
//! fault happens while a neighbour container's transfer runs, which must
//! finish byte-identical (the fault is one container's, not everyone's).
//!
//! Same topology as the egress tests (`common::scenario`): a user + network
//! namespace plays the host and runs the daemon, a second one behind a veth
//! plays the outside (10.200.0.2). The streams are `tests/data/streams.py`'s:
//! they run for a time rather than a size, so a transfer is surely in
//! flight when the fault strikes, and they report how they ended (a hash at
//! EOF, or the exception's class name), so a reset tells from a hang.

mod common;

use common::harness::*;
use common::scenario::*;

const CONFIG: &str = "[dns]\nupstream = [\"127.0.0.1:5353\"]\n";

/// Shell helpers of these scenarios (after `streams_prelude`).
const HELPERS: &str = r#"
# children PID: the PIDs whose parent is PID (from /proc: ps may not be
# installed).
children() { python3 -c '
import os, sys
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        if s[s.rindex(")") + 2 :].split()[1] == sys.argv[1]:
            print(d)
' $1; }
# descendants PID: every process under PID, as "PID DEPTH" lines (a child
# of PID is at depth 1), in one look at /proc.
descendants() { python3 -c '
import os, sys
kids = {}
for d in os.listdir("/proc"):
    if d.isdigit():
        try:
            s = open(f"/proc/{d}/stat").read()
        except OSError:
            continue
        kids.setdefault(s[s.rindex(")") + 2 :].split()[1], []).append(d)
todo = [(sys.argv[1], 0)]
while todo:
    p, depth = todo.pop()
    for c in kids.get(p, []):
        print(c, depth + 1)
        todo.append((c, depth + 1))
' $1; }
# pids_with WORD: the live processes whose command line has WORD.
pids_with() { python3 -c '
import os, sys
for d in os.listdir("/proc"):
    if d.isdigit() and d != str(os.getpid()):
        try:
            cmd = open(f"/proc/{d}/cmdline", "rb").read().split(b"\0")
            state = open(f"/proc/{d}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if sys.argv[1].encode() in cmd and state != "Z":
            print(d)
' $1; }
# bg_run ARGS...: `lanyard run` in the background, bounded by timeout(1);
# T is timeout's PID (wait for it to get run's exit code).
bg_run() { timeout 150 $B run --socket $S "$@" & T=$!; PIDS="$PIDS $T"; }
# procs_of T: sets RUN (the `lanyard run` under timeout T), C (run's
# child: the container's first process, outside its PID namespace, the PID
# the daemon knows it by), CMD (the command: the child of C's child, the
# namespace's init) and TREE (RUN and everything under it); call once the
# command has started.
procs_of() {
  DESC=$(descendants $1)
  RUN=$(echo "$DESC" | while read -r p d; do [ $d != 1 ] || echo $p; done)
  C=$(echo "$DESC" | while read -r p d; do [ $d != 2 ] || echo $p; done)
  CMD=$(echo "$DESC" | while read -r p d; do [ $d != 4 ] || echo $p; done)
  TREE=$(echo "$DESC" | while read -r p d; do echo $p; done)
  [ -n "$RUN" ] && [ -n "$C" ] && [ -n "$CMD" ] || { echo "no run/container/command under $1"; return 1; }
}
# all_gone PIDS...: waits (5 s at most for each) until none is alive;
# prints those that are.
all_gone() { for p in "$@"; do wait_gone $p 5 || echo "left behind: $p $(tr '\0' ' ' < /proc/$p/cmdline)"; done; }
# flows_of IP: how many conntrack flows have IP as their container end.
flows_of() { $B conntrack --socket $S --json | python3 -c '
import json, sys
print(sum(1 for f in json.load(sys.stdin) if f["container"].rsplit(":", 1)[0] == sys.argv[1]))
' $1; }
# bytes_of IP: the bytes (both ways) of IP's flows.
bytes_of() { $B conntrack --socket $S --json | python3 -c '
import json, sys
print(sum(f["bytes_out"] + f["bytes_in"] for f in json.load(sys.stdin) if f["container"].rsplit(":", 1)[0] == sys.argv[1]))
' $1; }
# until_moving IP: waits (15 s at most) until IP's flows have carried 1 MB.
until_moving() { i=0; until [ "$(bytes_of $1)" -gt 1000000 ]; do i=$((i+1)); [ $i -lt 150 ] || { echo "no data from $1"; $B conntrack --socket $S; return 1; }; sleep 0.1; done; }
# until_no_flows IP: waits (10 s at most) until IP has no flow (what is
# left then is printed and asserted by the caller).
until_no_flows() { i=0; until [ "$(flows_of $1)" = 0 ]; do i=$((i+1)); [ $i -lt 100 ] || return 0; sleep 0.1; done; }
# stats_line LABEL: the counters these tests read, as "LABEL key=value ...".
stats_line() { $B stats --socket $S --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
n = d["nat"]
keys = ("tcp_flows", "flows_port_removed", "tcp_resets_to_container", "flows_expired", "flows_evicted")
counts = [("ports", len(d["ports"])), ("nat_flows", d["nat_flows"])] + [(k, n.get(k, "absent")) for k in keys]
print(sys.argv[1], " ".join(f"{k}={v}" for k, v in counts))
' $1; }
# inspect_names: the containers the daemon has, as "name@ip ...".
inspect_names() { $B network inspect --socket $S | python3 -c '
import json, sys
print(" ".join(sorted(c["Name"] + "@" + c["IPv4Address"].split("/")[0] for n in json.load(sys.stdin) for c in n["Containers"].values())))
'; }
"#;

fn faults(who: As, body: &str) -> String {
    scenario(
        who,
        CONFIG,
        &format!("{}\n{HELPERS}\n{body}", streams_prelude()),
    )
}

/// The "N SHA" of the line starting with `prefix`.
fn hash_of<'a>(out: &'a str, prefix: &str) -> (&'a str, &'a str) {
    let l = line(out, prefix);
    let mut w = l[prefix.len()..].split_whitespace();
    (w.next().unwrap(), w.next().unwrap())
}

/// A neighbour's transfer, run across the fault, arrived whole: both ends
/// saw the same bytes, and there were some.
fn assert_neighbour_whole(out: &str, sent: &str, got: &str) {
    let a = hash_of(out, sent);
    let b = hash_of(out, got);
    assert_eq!(a, b, "the neighbour's stream was damaged:\n{out}");
    assert!(a.0.parse::<u64>().unwrap() > 0, "{out}");
}

#[test]
fn a_container_killed_mid_transfer_frees_its_flow_and_address() {
    let out = faults(
        As::Me,
        r#"
st_server up tcp-sink victim 9000
st_server nb tcp-sink neighbour 9010
# The victim uploads for as long as it lives; the neighbour, on the same
# path to another server, across the kill until the checks are done
# (the file stop ends it).
bg_run --name victim --ip 172.17.0.5 -- python3 $ST tcp-send victim 10.200.0.2 9000 120 > victim.out 2>&1
VT=$T
bg_run --name neighbour --ip 172.17.0.3 -- python3 $ST tcp-send neighbour 10.200.0.2 9010 60 $PWD/stop > neighbour.out 2>&1
NT=$T
wait_line victim.out "victim started" 20
wait_line neighbour.out "neighbour started" 20
until_moving 172.17.0.5
until_moving 172.17.0.3
procs_of $VT
stats_line before
echo "neighbour flows at the kill: $(flows_of 172.17.0.3)"
# The command dies (as if the OOM killer took it).
kill -KILL $CMD
K=$(now_ms)
# The outside server sees the connection end (an EOF or a reset, below),
# well before its own 20 s timeout.
wait_line up.out "^victim " 10
echo "server saw the end after $(($(now_ms) - K)) ms: $(grep '^victim ' up.out)"
set +e; wait $VT; echo "victim run rc=$?"; set -e
all_gone $TREE
echo "container processes checked"
until_no_flows 172.17.0.5
echo "victim flows after: $(flows_of 172.17.0.5)"
stats_line after
echo "containers after: $(inspect_names)"
# Its address and name are free: a new container takes both.
run --name victim --ip 172.17.0.5 -- sh -c 'ip -4 -o addr show eth0' > again.out 2>&1; echo "again rc=$?"
cat again.out
touch stop
set +e; wait $NT; echo "neighbour run rc=$?"; set -e
cat up.out nb.out neighbour.out
"#,
    );
    // The remote saw the connection end, at once: as an EOF when the
    // container's kernel, closing the dead process's socket as any kernel
    // does (a FIN after what it still had to send), got its FIN through
    // before the daemon detached the port; else as the reset of the
    // detach. (A clean EOF for a cut upload is what a host gives too when
    // its uploader is killed: only the application can tell.)
    let end = line(&out, "server saw the end after ");
    eprintln!("{end}");
    let reset = end.contains(": victim sink-error ConnectionResetError");
    assert!(reset || end.contains(": victim sunk "), "{out}");
    // `lanyard run` reports its container's death as docker does: 128 + 9.
    assert!(out.contains("victim run rc=137"), "{out}");
    assert!(out.contains("container processes checked"), "{out}");
    assert!(!out.contains("left behind"), "{out}");
    assert!(out.contains("victim flows after: 0"), "{out}");
    assert!(out.contains("neighbour flows at the kill: 1"), "{out}");
    // The counters: before, two containers and two flows; after, the
    // neighbour's alone.
    assert_eq!(count(&out, "before ", "ports"), 2, "{out}");
    assert_eq!(count(&out, "before ", "nat_flows"), 2, "{out}");
    assert_eq!(count(&out, "after ", "ports"), 1, "{out}");
    assert_eq!(count(&out, "after ", "nat_flows"), 1, "{out}");
    // The victim's flow went with its port (and was counted so) unless
    // its FIN and the remote's closed it first; a reset can only have
    // come from the port's removal (the victim had nothing unread, so its
    // kernel sent no reset).
    let removed =
        count(&out, "after ", "flows_port_removed") - count(&out, "before ", "flows_port_removed");
    assert!(removed <= 1, "{out}");
    assert!(!reset || removed == 1, "{out}");
    assert!(
        line(&out, "containers after: ").ends_with("neighbour@172.17.0.3"),
        "{out}"
    );
    assert!(out.contains("again rc=0"), "{out}");
    assert!(out.contains("inet 172.17.0.5/16"), "{out}");
    assert!(out.contains("neighbour run rc=0"), "{out}");
    assert_neighbour_whole(&out, "neighbour sent ", "neighbour sunk ");
}

#[test]
fn a_container_disconnected_mid_transfer_has_its_flow_reset_and_counted() {
    // The deterministic side of the test above: a container taken off its
    // network while it lives (`lanyard disconnect`) sends no FIN of its
    // own, so its flow can only end by the port's removal: reset toward
    // the remote, and counted.
    let out = faults(
        As::Unprivileged,
        r#"
st_server up tcp-sink detached 9000
st_server nb tcp-sink neighbour 9010
bg_run --name detached --ip 172.17.0.5 -- python3 $ST tcp-send detached 10.200.0.2 9000 120 > detached.out 2>&1
DT=$T
bg_run --name neighbour --ip 172.17.0.3 -- python3 $ST tcp-send neighbour 10.200.0.2 9010 60 $PWD/stop > neighbour.out 2>&1
NT=$T
wait_line detached.out "detached started" 20
wait_line neighbour.out "neighbour started" 20
until_moving 172.17.0.5
until_moving 172.17.0.3
stats_line before
$B disconnect --socket $S default detached
K=$(now_ms)
wait_line up.out "^detached " 10
echo "server saw the end after $(($(now_ms) - K)) ms: $(grep '^detached ' up.out)"
until_no_flows 172.17.0.5
echo "detached flows after: $(flows_of 172.17.0.5)"
stats_line after
echo "containers after: $(inspect_names)"
run --ip 172.17.0.5 -- true; echo "address again rc=$?"
# The disconnected container lives on without an interface (its run
# still supervises it); end it.
kill $DT
touch stop
set +e; wait $DT; echo "detached run rc=$?"; wait $NT; echo "neighbour run rc=$?"; set -e
cat nb.out neighbour.out
"#,
    );
    let end = line(&out, "server saw the end after ");
    eprintln!("{end}");
    assert!(
        end.contains(": detached sink-error ConnectionResetError"),
        "{out}"
    );
    assert!(out.contains("detached flows after: 0"), "{out}");
    assert_eq!(count(&out, "before ", "ports"), 2, "{out}");
    assert_eq!(count(&out, "before ", "nat_flows"), 2, "{out}");
    assert_eq!(count(&out, "after ", "ports"), 1, "{out}");
    assert_eq!(count(&out, "after ", "nat_flows"), 1, "{out}");
    assert_eq!(
        count(&out, "after ", "flows_port_removed") - count(&out, "before ", "flows_port_removed"),
        1,
        "{out}"
    );
    assert_eq!(
        line(&out, "containers after: "),
        "containers after: neighbour@172.17.0.3",
        "{out}"
    );
    assert!(out.contains("address again rc=0"), "{out}");
    // SIGTERM through timeout(1) and run to the command: 128 + 15.
    assert!(out.contains("detached run rc=143"), "{out}");
    assert!(out.contains("neighbour run rc=0"), "{out}");
    assert_neighbour_whole(&out, "neighbour sent ", "neighbour sunk ");
}

#[test]
fn a_remote_server_dying_mid_transfer_ends_the_containers_connections() {
    let out = faults(
        As::Unprivileged,
        r#"
st_server up tcp-sink up 9000
UPS=$LAST
st_server down tcp-source down 9001 120
DOWNS=$LAST
st_server nb tcp-sink neighbour 9010
# One container uploads to a server and another downloads from one, for
# longer than the test; a neighbour uploads to a third server until the
# checks are done.
bg_run --name uploader --ip 172.17.0.5 -- python3 $ST tcp-send up 10.200.0.2 9000 120 > upc.out 2>&1
UT=$T
bg_run --name downloader --ip 172.17.0.6 -- python3 $ST tcp-recv down 10.200.0.2 9001 > downc.out 2>&1
DT=$T
bg_run --name neighbour --ip 172.17.0.3 -- python3 $ST tcp-send neighbour 10.200.0.2 9010 60 $PWD/stop > neighbour.out 2>&1
NT=$T
wait_line upc.out "up started" 20
wait_line downc.out "down started" 20
wait_line neighbour.out "neighbour started" 20
until_moving 172.17.0.5
until_moving 172.17.0.6
until_moving 172.17.0.3
stats_line before
# Both servers die (SIGTERM through timeout(1), as a crash or an operator's
# kill would end them): the kernel closes their sockets, the sink's with
# unread data in it (a reset), the source's with a FIN.
kill $UPS $DOWNS
K=$(now_ms)
wait_line upc.out "^up send-error\|^up sent" 10
echo "upload ended after $(($(now_ms) - K)) ms: $(grep '^up send-error\|^up sent ' upc.out)"
wait_line downc.out "^down recv-error\|^down received" 10
echo "download ended after $(($(now_ms) - K)) ms: $(grep '^down recv-error\|^down received ' downc.out)"
until_no_flows 172.17.0.5
until_no_flows 172.17.0.6
echo "flows after: up $(flows_of 172.17.0.5) down $(flows_of 172.17.0.6) neighbour $(flows_of 172.17.0.3)"
stats_line after
touch stop
set +e
wait $UT; echo "uploader rc=$?"
wait $DT; echo "downloader rc=$?"
wait $NT; echo "neighbour rc=$?"
set -e
cat nb.out neighbour.out
"#,
    );
    // The upload fails: the remote's reset reached the container as one
    // (or as a broken pipe, if its next write came after it), not as a
    // hang until the sender's 20 s timeout.
    let up = line(&out, "upload ended after ");
    eprintln!("{up}");
    assert!(
        up.contains(": up send-error ConnectionResetError")
            || up.contains(": up send-error BrokenPipeError"),
        "{out}"
    );
    // The download ends: the source's FIN comes through as an EOF (what
    // a host's own connection sees when its peer process dies), a reset
    // as an error; either way, before the 120 s it was sent for.
    let down = line(&out, "download ended after ");
    eprintln!("{down}");
    assert!(
        down.contains(": down received ")
            || down.contains(": down recv-error ConnectionResetError"),
        "{out}"
    );
    assert!(
        out.contains("flows after: up 0 down 0 neighbour 1"),
        "{out}"
    );
    // The reset the container got was lanyard's translation of the
    // remote's.
    assert!(
        count(&out, "after ", "tcp_resets_to_container")
            > count(&out, "before ", "tcp_resets_to_container"),
        "{out}"
    );
    // The containers handled their errors and exited on their own.
    assert!(out.contains("uploader rc=0"), "{out}");
    assert!(out.contains("downloader rc=0"), "{out}");
    assert!(out.contains("neighbour rc=0"), "{out}");
    assert_neighbour_whole(&out, "neighbour sent ", "neighbour sunk ");
}

#[test]
fn a_remote_that_vanishes_without_a_word_ends_in_a_reset_not_a_hang() {
    // A remote host that goes silent (its link down: no FIN, no reset)
    // leaves lanyard's host socket retransmitting until the host's TCP
    // gives up (net.ipv4.tcp_retries2, ~15 min by default; made ~3 s here,
    // in the scenario's own namespace). Then the container must hear of
    // it as a reset: lanyard acknowledges the container's data itself, so
    // the container's own TCP can never time out on its own.
    let out = faults(
        As::Me,
        r#"
echo 3 > /proc/sys/net/ipv4/tcp_retries2
# A second outside host, 10.201.0.2, behind its own veth.
behind_veth h1 o1
O2=$NS
$O2 ip addr add 10.201.0.2/24 dev o1
$O2 ip link set o1 up
ip addr add 10.201.0.1/24 dev h1
ip link set h1 up
$O2 timeout 150 python3 $ST tcp-sink lost 9000 > lost.out 2>&1 & PIDS="$PIDS $!"
waitfor lost.out
st_server nb tcp-sink neighbour 9010
bg_run --name uploader --ip 172.17.0.5 -- python3 $ST tcp-send lost 10.201.0.2 9000 120 > upc.out 2>&1
UT=$T
bg_run --name neighbour --ip 172.17.0.3 -- python3 $ST tcp-send neighbour 10.200.0.2 9010 60 $PWD/stop > neighbour.out 2>&1
NT=$T
wait_line upc.out "lost started" 20
wait_line neighbour.out "neighbour started" 20
until_moving 172.17.0.5
stats_line before
$O2 ip link set o1 down
K=$(now_ms)
wait_line upc.out "^lost send-error\|^lost sent " 30
echo "upload ended after $(($(now_ms) - K)) ms: $(grep '^lost send-error\|^lost sent ' upc.out)"
until_no_flows 172.17.0.5
echo "flows after: $(flows_of 172.17.0.5)"
stats_line after
touch stop
set +e
wait $UT; echo "uploader rc=$?"
wait $NT; echo "neighbour rc=$?"
set -e
cat nb.out neighbour.out
"#,
    );
    let up = line(&out, "upload ended after ");
    eprintln!("{up}");
    assert!(
        up.contains(": lost send-error ConnectionResetError"),
        "{out}"
    );
    assert!(out.contains("flows after: 0"), "{out}");
    assert!(
        count(&out, "after ", "tcp_resets_to_container")
            > count(&out, "before ", "tcp_resets_to_container"),
        "{out}"
    );
    assert!(out.contains("uploader rc=0"), "{out}");
    assert!(out.contains("neighbour rc=0"), "{out}");
    assert_neighbour_whole(&out, "neighbour sent ", "neighbour sunk ");
}

#[test]
fn lanyard_run_sigkilled_takes_its_container_and_gives_back_address_name_and_port() {
    let out = faults(
        As::Unprivileged,
        r#"
# svc publishes 8080 and takes a stream from outside through it; the
# neighbour does the same on 8090, across the kill until the checks are
# done.
bg_run --name svc --ip 172.17.0.7 -p 8080:80 -- python3 $ST tcp-sink pub 80 > svc.out 2>&1
ST_T=$T
bg_run --name neighbour --ip 172.17.0.3 -p 8090:90 -- python3 $ST tcp-sink neighbour 90 > neighbour.out 2>&1
NT=$T
waitfor svc.out
waitfor neighbour.out
$O timeout 60 python3 $ST tcp-send pub 10.200.0.1 8080 120 > pubc.out 2>&1 & PIDS="$PIDS $!"
$O timeout 60 python3 $ST tcp-send neighbour 10.200.0.1 8090 60 $PWD/stop > nbc.out 2>&1 & NBC=$!; PIDS="$PIDS $NBC"
wait_line pubc.out "pub started" 20
wait_line nbc.out "neighbour started" 20
until_moving 172.17.0.7
until_moving 172.17.0.3
procs_of $ST_T
stats_line before
# `lanyard run` itself dies, not its command: nothing runs its cleanup.
kill -KILL $RUN
K=$(now_ms)
# Its container dies with it (the parent-death signal), and the daemon,
# seeing run's control connection close, detaches the endpoint: the
# client from outside gets a reset.
all_gone $TREE
echo "container processes gone after $(($(now_ms) - K)) ms"
wait_line pubc.out "^pub send-error\|^pub sent " 10
echo "client ended after $(($(now_ms) - K)) ms: $(grep '^pub send-error\|^pub sent ' pubc.out)"
set +e; wait $ST_T; echo "timeout rc=$?"; set -e
until_no_flows 172.17.0.7
echo "svc flows after: $(flows_of 172.17.0.7)"
i=0; until [ "$(inspect_names)" = "neighbour@172.17.0.3" ]; do i=$((i+1)); [ $i -lt 100 ] || break; sleep 0.1; done
echo "containers after: $(inspect_names)"
stats_line after
# The host port is free at once: bound here without SO_REUSEADDR (the
# reset left no TIME_WAIT), then by a new container with the same name,
# address and port, which serves through it.
python3 -c 'import socket; s = socket.socket(); s.bind(("0.0.0.0", 8080)); s.listen(); print("8080 bindable")'
bg_run --name svc --ip 172.17.0.7 -p 8080:80 -- python3 $ST tcp-sink again 80 > again.out 2>&1
waitfor again.out
$O timeout 60 python3 $ST tcp-send again 10.200.0.1 8080 1 > againc.out 2>&1
wait_line again.out "^again sunk" 10
touch stop
set +e; wait $NBC; echo "neighbour client rc=$?"; set -e
wait_line neighbour.out "^neighbour sunk\|^neighbour sink-error" 10
cat again.out againc.out neighbour.out nbc.out
"#,
    );
    eprintln!("{}", line(&out, "container processes gone after "));
    assert!(!out.contains("left behind"), "{out}");
    eprintln!("{}", line(&out, "client ended after "));
    // timeout(1) reports its child's SIGKILL as 128 + 9.
    assert!(out.contains("timeout rc=137"), "{out}");
    assert!(
        line(&out, "client ended after ").contains(": pub send-error ConnectionResetError"),
        "{out}"
    );
    assert!(out.contains("svc flows after: 0"), "{out}");
    assert_eq!(
        line(&out, "containers after: "),
        "containers after: neighbour@172.17.0.3",
        "{out}"
    );
    assert_eq!(count(&out, "before ", "ports"), 2, "{out}");
    assert_eq!(count(&out, "after ", "ports"), 1, "{out}");
    // The client's flow went with the port, or just before it with the
    // dying container's own reset (its socket had unread data): run's
    // connection closes, and its container dies, at the same moment.
    let removed =
        count(&out, "after ", "flows_port_removed") - count(&out, "before ", "flows_port_removed");
    assert!(removed <= 1, "{out}");
    assert!(out.contains("8080 bindable"), "{out}");
    assert_eq!(
        hash_of(&out, "again sent "),
        hash_of(&out, "again sunk "),
        "{out}"
    );
    assert!(out.contains("neighbour client rc=0"), "{out}");
    assert_neighbour_whole(&out, "neighbour sent ", "neighbour sunk ");
}

#[test]
fn a_containers_background_processes_end_with_it() {
    // What a command leaves running ends with its container, however the
    // container ends: the command exiting, `lanyard run` SIGTERMed, or
    // SIGKILLed (then no code of lanyard's runs: the parent-death signals
    // and the PID namespace's end do it). Each leftover is a `sleep` with
    // an argument of its own, found by it in /proc, and with its output
    // elsewhere: a leftover holding the scenario's stdout would hold the
    // test until it ends by itself.
    let out = faults(
        As::Unprivileged,
        r#"
# until_none WORD: waits (5 s at most) until no live process has WORD.
until_none() { i=0; while [ -n "$(pids_with $1)" ]; do i=$((i+1)); [ $i -lt 100 ] || return 0; sleep 0.05; done; }
# The command exits, a background job still running.
run -- sh -c 'sleep 59.871 </dev/null >/dev/null 2>&1 & echo "job started"'; echo "exit rc=$?"
until_none 59.871
echo "left after the command exited: [$(pids_with 59.871)]"
# run SIGTERMed (the signal to run itself: timeout(1) would signal the
# whole process group).
bg_run -- sh -c 'sleep 59.872 </dev/null >/dev/null 2>&1 & echo ready; wait' > term.out 2>&1
waitfor term.out
echo "running before the TERM: [$(pids_with 59.872)]"
kill -TERM $(children $T)
set +e; wait $T; echo "term rc=$?"; set -e
until_none 59.872
echo "left after run was SIGTERMed: [$(pids_with 59.872)]"
# run SIGKILLed, a tree under the command.
bg_run -- sh -c 'sleep 59.873 </dev/null >/dev/null 2>&1 & sh -c "sleep 59.873 & wait" </dev/null >/dev/null 2>&1 & echo ready; wait' > kill.out 2>&1
waitfor kill.out
procs_of $T
echo "tree before the KILL: $(echo $TREE | wc -w) processes, $(pids_with 59.873 | wc -l) sleeps"
kill -KILL $RUN
for p in $TREE; do wait_gone $p 5 || echo "left: $p $(tr '\0' ' ' < /proc/$p/cmdline)"; done
echo "left after run was SIGKILLed: [$(pids_with 59.873)]"
"#,
    );
    assert!(out.contains("job started"), "{out}");
    assert!(out.contains("exit rc=0"), "{out}");
    assert!(out.contains("left after the command exited: []"), "{out}");
    assert!(
        !line(&out, "running before the TERM: ").contains("[]"),
        "{out}"
    );
    // sh died of the SIGTERM run passed on (through the init): 128 + 15.
    assert!(out.contains("term rc=143"), "{out}");
    assert!(out.contains("left after run was SIGTERMed: []"), "{out}");
    // run, its child, the init, the command, its two jobs, the inner
    // shell's.
    assert!(
        out.contains("tree before the KILL: 7 processes, 2 sleeps"),
        "{out}"
    );
    assert!(out.contains("left after run was SIGKILLed: []"), "{out}");
    assert!(!out.contains("left: "), "{out}");
}

#[test]
fn the_daemon_sigtermed_with_containers_running_releases_everything() {
    let out = faults(
        As::Me,
        r#"
st_server up tcp-sink up 9000
# web publishes 8080 and takes a stream from outside through it; up
# uploads to the outside.
bg_run --name web -p 8080:80 -- python3 $ST tcp-sink pub 80 > web.out 2>&1
WT=$T
bg_run --name up -- python3 $ST tcp-send up 10.200.0.2 9000 120 > upc.out 2>&1
UT=$T
waitfor web.out
$O timeout 60 python3 $ST tcp-send pub 10.200.0.1 8080 120 > pubc.out 2>&1 & PIDS="$PIDS $!"
wait_line pubc.out "pub started" 20
wait_line upc.out "up started" 20
until_moving 172.17.0.2
until_moving 172.17.0.3
procs_of $WT; WRUN=$RUN; WC=$C; WTREE=$TREE
procs_of $UT; UTREE=$TREE
echo "flows before: $($B conntrack --socket $S --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')"
kill -TERM $D
K=$(now_ms)
set +e; wait $D; echo "daemon rc=$? after $(($(now_ms) - K)) ms"; set -e
alive $D && echo "daemon still alive"
[ -e $S ] && echo "socket file left" || echo "socket file removed"
# The published port is free at once, without SO_REUSEADDR: its listening
# sockets are closed and its connections were reset (no TIME_WAIT).
python3 -c '
import socket
for fam, addr in ((socket.AF_INET, "0.0.0.0"), (socket.AF_INET6, "::")):
    s = socket.socket(fam)
    if fam == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    s.bind((addr, 8080))
    s.listen()
    print("8080 bindable on", addr)
'
# Every flow ended as a reset, on both of its sides: the remote and the
# client outside are not told that a cut stream was complete, and the
# containers hear of it before their interfaces go.
# (Each bounded; what came is asserted below.)
wait_line up.out "^up " 10 || true
wait_line pubc.out "^pub send-error\|^pub sent " 10 || true
wait_line upc.out "^up send-error\|^up sent " 10 || true
wait_line web.out "^pub sink-error\|^pub sunk " 10 || true
echo "remote: $(grep '^up ' up.out)"
echo "client outside: $(grep '^pub send-error\|^pub sent ' pubc.out)"
echo "container up: $(grep '^up send-error\|^up sent ' upc.out)"
echo "container web: $(grep '^pub sink-error\|^pub sunk ' web.out)"
# What `lanyard run` does when its daemon goes: it keeps supervising its
# container, which keeps its interface (run holds a copy of each TAP, to
# attach again to the next daemon: container::reattach; within its
# --reattach-timeout, 60 s); signals still reach the command and its exit
# code is still run's. up's command ended by itself on its reset, and its
# run with it.
sleep 1
alive $WRUN && alive $WC && echo "web run and container alive"
echo "web eth0 after the daemon: $(nsenter -t $WC -n ip -o link show eth0 2>&1 | cut -c1-60)"
set +e; wait $UT; echo "up rc=$?"; set -e
kill -TERM $WRUN
set +e; wait $WT; echo "web rc=$?"; set -e
all_gone $WTREE $UTREE
echo "processes checked"
"#,
    );
    let rc = line(&out, "daemon rc=");
    eprintln!("{rc}");
    assert!(rc.starts_with("daemon rc=0 after "), "{out}");
    let ms: u64 = rc["daemon rc=0 after ".len()..]
        .trim_end_matches(" ms")
        .parse()
        .unwrap();
    assert!(ms < 5000, "the daemon took {ms} ms to stop:\n{out}");
    assert!(!out.contains("daemon still alive"), "{out}");
    assert!(out.contains("socket file removed"), "{out}");
    assert!(out.contains("8080 bindable on 0.0.0.0"), "{out}");
    assert!(out.contains("8080 bindable on ::"), "{out}");
    assert!(out.contains("flows before: 2"), "{out}");
    for (who, what) in [
        ("remote: ", "up sink-error ConnectionResetError"),
        ("client outside: ", "pub send-error ConnectionResetError"),
        ("container up: ", "up send-error ConnectionResetError"),
        ("container web: ", "pub sink-error ConnectionResetError"),
    ] {
        assert!(line(&out, who).contains(what), "{who}{what}?\n{out}");
    }
    assert!(out.contains("web run and container alive"), "{out}");
    let eth0 = line(&out, "web eth0 after the daemon: ");
    eprintln!("{eth0}");
    assert!(eth0.contains(": eth0: <"), "{out}");
    // up's command printed its error and exited 0; web's died of the
    // SIGTERM run passed on: 128 + 15.
    assert!(out.contains("up rc=0"), "{out}");
    assert!(out.contains("web rc=143"), "{out}");
    assert!(!out.contains("left behind"), "{out}");
    assert!(out.contains("processes checked"), "{out}");
}
