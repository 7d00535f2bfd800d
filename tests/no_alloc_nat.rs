//! "No per-packet heap allocation on the data path", checked for the NAT:
//! a counting global allocator (only this thread counts) wraps the system
//! one, and once each path is set up and warmed up, hundreds to thousands
//! of packets through it must not allocate once. Each check also proves
//! that its path ran (NAT counters, port counters, frames the container's
//! recording port saw, bytes checked at both ends).
//!
//! Paths: an established TCP egress flow (data both ways, super-frames to
//! the container, ACKs), a UDP egress flow, ICMP echo through a ping
//! socket, DNS answered locally and forwarded to a fake upstream, DHCP
//! DISCOVERs handed to the control plane's channel, and published TCP and
//! UDP ports with a loopback client (UDP also in bursts, batched both
//! ways).
//!
//! A test binary of its own (`harness = false`): it first enters a network
//! namespace of its own while still single-threaded (as root a new network
//! namespace; as a user a user + network namespace mapping the user to
//! root), brings `lo` up, adds 10.77.0.1/32 on it as a non-loopback
//! destination and allows ping sockets. All traffic stays inside that
//! namespace: its loopback and 10.77.0.1, which is on its `lo` (checked
//! before anything is sent; the namespace has no other interface, so no
//! route leads out of it).
//!
//! Opening flows is part of the warm-up; what it allocates is measured and
//! printed (`open ...` lines), not asserted. `LANYARD_ALLOC_TRACE=1`
//! prints a backtrace of the first allocations of each counting window.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::frames::GW;
use common::natrig::*;
use lanyard::dataplane::Event;
use lanyard::publish::Protocol;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static TRACE: AtomicBool = AtomicBool::new(false);
static TRACED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    // Only this thread is counted: the DNS-over-TCP server and the like
    // allocate on their own threads whenever they like.
    static COUNTING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn counting(on: bool) {
    let _ = COUNTING.try_with(|c| c.set(on));
}

fn count_one() {
    if COUNTING.try_with(|c| c.get()).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        if TRACE.load(Ordering::Relaxed) && TRACED.fetch_add(1, Ordering::Relaxed) < 4 {
            // Not counted: the trace allocates for itself.
            counting(false);
            let bt = std::backtrace::Backtrace::force_capture();
            eprintln!("allocation in a counting window:\n{bt}");
            counting(true);
        }
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` with this thread's allocations counted; returns how many.
fn counted<R>(f: impl FnOnce() -> R) -> (R, u64) {
    TRACED.store(0, Ordering::Relaxed);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    counting(true);
    let r = f();
    counting(false);
    (r, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

/// The non-loopback address inside the test's namespace.
const INSIDE: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const SHORT: Duration = Duration::from_millis(2);
const WAIT: Duration = Duration::from_secs(20);

fn write_file(path: &str, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("writing {path}: {e}"))
}

/// Enters a network namespace of this process's own (and, as a user, a
/// user namespace mapping the user to root) and sets it up. Must run while
/// the process has one thread.
fn enter_namespace() -> Result<String, String> {
    let before = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
    // SAFETY: plain id getters.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let flags = if uid == 0 {
        libc::CLONE_NEWNET
    } else {
        libc::CLONE_NEWUSER | libc::CLONE_NEWNET
    };
    // SAFETY: unshare(2) on a single-threaded process; no memory involved.
    if unsafe { libc::unshare(flags) } != 0 {
        return Err(format!(
            "unshare({}): {} (as uid {uid}: are unprivileged user namespaces allowed?)",
            if uid == 0 { "net" } else { "user, net" },
            std::io::Error::last_os_error()
        ));
    }
    if uid != 0 {
        write_file("/proc/self/setgroups", "deny")?;
        write_file("/proc/self/uid_map", &format!("0 {uid} 1"))?;
        write_file("/proc/self/gid_map", &format!("0 {gid} 1"))?;
    }
    let after = std::fs::read_link("/proc/self/ns/net").map_err(|e| e.to_string())?;
    if after == before {
        return Err("still in the original network namespace".into());
    }
    // Only lo here: nothing this test sends can leave the namespace.
    let devs = std::fs::read_to_string("/proc/net/dev").map_err(|e| e.to_string())?;
    let names: Vec<&str> = devs
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    if names != ["lo"] {
        return Err(format!("the new namespace has interfaces {names:?}"));
    }
    let sock = lanyard::sys::ifreq::control_socket().map_err(|e| e.to_string())?;
    lanyard::sys::ifreq::Interface::new(&sock, "lo")
        .set_up()
        .map_err(|e| e.to_string())?;
    lanyard::sys::ifreq::Interface::new(&sock, "lo:1")
        .set_ipv4(INSIDE, 32)
        .map_err(|e| e.to_string())?;
    // 10.77.0.1 must be one of ours before anything goes to it.
    UdpSocket::bind((INSIDE, 0))
        .map_err(|e| format!("{INSIDE} is not an address of the namespace: {e}"))?;
    // Ping sockets for everyone; in a user namespace only the mapped group
    // (0) can be named.
    let range = "/proc/sys/net/ipv4/ping_group_range";
    let ping = match write_file(range, "0 2147483647") {
        Ok(()) => "0 2147483647",
        Err(_) => {
            write_file(range, "0 0")?;
            "0 0"
        }
    };
    Ok(format!(
        "uid {uid}: {} namespace, lo up, {INSIDE}/32 on lo, ping_group_range {ping}",
        if uid == 0 {
            "network"
        } else {
            "user + network"
        }
    ))
}

/// A check: runs its path, asserts what proves it ran.
type Check = fn() -> Outcome;

/// One check's outcome.
struct Outcome {
    name: &'static str,
    packets: u64,
    allocations: u64,
    /// What proves the path ran (checked before the outcome is made).
    proof: String,
    /// Allocations while opening the flow (warm-up; reported only).
    open: Option<u64>,
    /// A measurement of flow set-up and tear-down, reported but not held
    /// to zero (opening flows may allocate); its proofs are asserted.
    report_only: bool,
}

/// Waits for the host's accept of one connection.
fn accept(rig: &mut Rig, l: &TcpListener) -> TcpStream {
    let mut got = None;
    rig.until("the host's accept", WAIT, |r| {
        r.pump(SHORT);
        match l.accept() {
            Ok((s, _)) => {
                got = Some(s);
                true
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => false,
            Err(e) => panic!("accept: {e}"),
        }
    });
    let s = got.unwrap();
    s.set_nonblocking(true).unwrap();
    s
}

/// A host end that echoes the container's stream back as its own: checks
/// what it reads against `rx_seed`, writes as many bytes of `tx_seed`.
struct Echo {
    s: TcpStream,
    rx_seed: u64,
    tx_seed: u64,
    read: u64,
    written: u64,
    mismatches: u64,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
}

impl Echo {
    fn new(s: TcpStream, rx_seed: u64, tx_seed: u64) -> Echo {
        Echo {
            s,
            rx_seed,
            tx_seed,
            read: 0,
            written: 0,
            mismatches: 0,
            rbuf: vec![0; 256 * 1024],
            wbuf: vec![0; 64 * 1024],
        }
    }

    /// Reads what is there, then writes back what it owes (as much as the
    /// socket takes). Allocates nothing.
    fn step(&mut self) {
        loop {
            match self.s.read(&mut self.rbuf) {
                Ok(0) => break,
                Ok(n) => {
                    self.mismatches += pattern_mismatches(self.rx_seed, self.read, &self.rbuf[..n]);
                    self.read += n as u64;
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("host read: {e}"),
            }
        }
        while self.written < self.read {
            let n = (self.read - self.written).min(self.wbuf.len() as u64) as usize;
            fill_pattern(self.tx_seed, self.written, &mut self.wbuf[..n]);
            match self.s.write(&self.wbuf[..n]) {
                Ok(k) => self.written += k as u64,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("host write: {e}"),
            }
        }
    }
}

/// `rounds` rounds of `chunk` bytes each way over an established flow:
/// the container sends, the host reads and answers as much, the container
/// reads and acknowledges. Returns when both ends have everything.
fn exchange(rig: &mut Rig, c: &mut CTcp, host: &mut Echo, rounds: u32, chunk: u64) {
    for i in 0..rounds {
        let target = c.sent_bytes() + chunk;
        rig.until("a round of data both ways", WAIT, |r| {
            if c.sent_bytes() < target {
                let want = target - c.sent_bytes();
                r.send_data(c, want);
            }
            host.step();
            r.pump(SHORT);
            r.drain(|s, p| {
                c.on_frame(s, p);
            });
            if c.owe_ack {
                r.ack(c);
            }
            c.sent_bytes() == target
                && c.acked_bytes() == target
                && host.read == target
                && c.received == target
        });
        step_clock(rig, i);
    }
}

/// Virtual time moves 1 ms a round; the NAT's timers run every 50.
fn step_clock(rig: &mut Rig, i: u32) {
    rig.advance(Duration::from_millis(1));
    if i % 50 == 0 {
        rig.tick();
    }
}

fn tcp_egress() -> Outcome {
    const ROUNDS: u32 = 200;
    const CHUNK: u64 = 32 * 1024;
    let mut rig = Rig::new(Opts::default());
    let l = TcpListener::bind((INSIDE, 0)).unwrap();
    l.set_nonblocking(true).unwrap();
    let dst = SocketAddrV4::new(INSIDE, l.local_addr().unwrap().port());
    let mut c = CTcp::new(41000, dst);
    c.wscale = Some(7);
    c.window = 1 << 20;
    let (host, open) = counted(|| {
        rig.connect(&mut c);
        rig.until("the SYN-ACK", WAIT, |r| {
            r.pump(SHORT);
            r.drain(|s, p| {
                c.on_frame(s, p);
            });
            c.established() || c.rst_received
        });
        rig.ack(&mut c);
        accept(&mut rig, &l)
    });
    assert!(c.established(), "the egress connection opened");
    let mut host = Echo::new(host, c.tx_seed, c.rx_seed);
    exchange(&mut rig, &mut c, &mut host, 2, CHUNK);
    let flows = rig.sw.nat_counters().tcp_flows;
    let (tx0, gso0) = (rig.port_tx(), c.gso_frames);
    let ((), allocations) = counted(|| exchange(&mut rig, &mut c, &mut host, ROUNDS, CHUNK));
    let total = (ROUNDS as u64 + 2) * CHUNK;
    assert_eq!(rig.sw.nat_counters().tcp_flows, flows, "no new flow");
    assert_eq!(
        (c.received, host.read, c.acked_bytes()),
        (total, total, total)
    );
    assert_eq!((c.mismatches, host.mismatches), (0, 0), "every byte intact");
    let gso = c.gso_frames - gso0;
    assert!(gso > 0, "host data reached the container as super-frames");
    let frames = rig.port_tx() - tx0;
    Outcome {
        name: "tcp egress (container ↔ 10.77.0.1 server)",
        packets: frames + c.sent_bytes().div_ceil(1460),
        allocations,
        proof: format!(
            "{} KiB each way checked byte for byte, {frames} frames to the container ({gso} super-frames), all container data ACKed, flows {flows}",
            ROUNDS as u64 * CHUNK / 1024
        ),
        open: Some(open),
        report_only: false,
    }
}

fn udp_egress() -> Outcome {
    const ROUNDS: u64 = 1000;
    let mut rig = Rig::new(Opts::default());
    let server = UdpSocket::bind((INSIDE, 0)).unwrap();
    server.set_nonblocking(true).unwrap();
    let dst = SocketAddrV4::new(INSIDE, server.local_addr().unwrap().port());
    let mut buf = vec![0u8; 2048];
    let mut replies = 0u64;
    let mut bad = 0u64;
    let mut one = |rig: &mut Rig, i: u64, replies: &mut u64, bad: &mut u64| {
        let len = 200 + (i % 800) as usize;
        rig.udp(42000, dst, len, 0xabc, i);
        let want = *replies + 1;
        rig.until("a UDP echo", WAIT, |r| {
            r.pump(SHORT);
            if let Ok((n, from)) = server.recv_from(&mut buf) {
                server.send_to(&buf[..n], from).unwrap();
            }
            r.drain(|s, p| {
                if s.is_udp() && s.dst_port == 42000 && s.src_ip == INSIDE {
                    *replies += 1;
                    if p.len() != len || pattern_mismatches(0xabc, i, p) != 0 {
                        *bad += 1;
                    }
                }
            });
            *replies >= want
        });
        step_clock(rig, i as u32);
    };
    let ((), open) = counted(|| one(&mut rig, 0, &mut replies, &mut bad));
    let flows = rig.sw.nat_counters().udp_flows;
    let ((), allocations) = counted(|| {
        for i in 1..=ROUNDS {
            one(&mut rig, i, &mut replies, &mut bad);
        }
    });
    assert_eq!(flows, 1);
    assert_eq!(rig.sw.nat_counters().udp_flows, flows, "no new flow");
    assert_eq!((replies, bad), (ROUNDS + 1, 0));
    Outcome {
        name: "udp egress (container ↔ 10.77.0.1 echo)",
        packets: 2 * ROUNDS,
        allocations,
        proof: format!("{ROUNDS} datagrams out and their echoes back, payloads checked, one flow"),
        open: Some(open),
        report_only: false,
    }
}

/// A port turn of one flow's datagrams: one UDP GSO send (`nat::udp`,
/// "Batching toward the host"). Queuing the frames on the memory port
/// allocates (the test's side), so only the turns are counted.
fn udp_egress_batched() -> Outcome {
    const ROUNDS: u64 = 200;
    const PER_TURN: u64 = 32;
    let mut rig = Rig::new(Opts::default());
    let server = UdpSocket::bind((INSIDE, 0)).unwrap();
    server.set_nonblocking(true).unwrap();
    let dst = SocketAddrV4::new(INSIDE, server.local_addr().unwrap().port());
    let mut buf = vec![0u8; 2048];
    let mut got = 0u64;
    let mut bad = 0u64;
    let mut allocations = 0u64;
    let mut open = 0u64;
    for r in 0..=ROUNDS {
        rig.queue = true;
        for i in 0..PER_TURN {
            rig.udp(43000, dst, 64, 0xbee, r * PER_TURN + i);
        }
        rig.queue = false;
        let (n, a) = counted(|| rig.turn());
        assert_eq!(n as u64, PER_TURN);
        if r == 0 {
            open = a;
        } else {
            allocations += a;
        }
        let deadline = std::time::Instant::now() + WAIT;
        let mut this = 0;
        let mut peer = None;
        while this < PER_TURN && std::time::Instant::now() < deadline {
            match server.recv_from(&mut buf) {
                Ok((n, from)) => {
                    peer = Some(from);
                    if n != 64 || pattern_mismatches(0xbee, r * PER_TURN + this, &buf[..n]) != 0 {
                        bad += 1;
                    }
                    this += 1;
                }
                Err(_) => std::thread::sleep(SHORT),
            }
        }
        got += this;
        // And back at once: one readiness event reads them all, and one
        // super-frame carries them (cut apart for this memory port).
        let peer = peer.expect("the turn's datagrams came");
        for i in 0..PER_TURN {
            let mut d = [0u8; 64];
            fill_pattern(0xbef, r * PER_TURN + i, &mut d);
            server.send_to(&d, peer).unwrap();
        }
        let mut back = 0u64;
        let ((), a) = counted(|| {
            rig.until("the burst back", WAIT, |rig| {
                rig.pump(SHORT);
                rig.drain(|s, p| {
                    if s.is_udp() && s.dst_port == 43000 {
                        if p.len() != 64 || pattern_mismatches(0xbef, r * PER_TURN + back, p) != 0 {
                            bad += 1;
                        }
                        back += 1;
                    }
                });
                back >= PER_TURN
            })
        });
        if r > 0 {
            allocations += a;
        }
        step_clock(&mut rig, r as u32);
    }
    let c = rig.sw.nat_counters();
    assert_eq!(
        (got, bad),
        ((ROUNDS + 1) * PER_TURN, 0),
        "every datagram, in order, both ways"
    );
    assert_eq!(c.udp_gso_batches, ROUNDS + 1, "one send per turn");
    assert!(
        c.udp_super_frames > ROUNDS / 2,
        "bursts back as super-frames: {}",
        c.udp_super_frames
    );
    Outcome {
        name: "udp egress batched (a turn of one flow's datagrams to 10.77.0.1)",
        packets: 2 * ROUNDS * PER_TURN,
        allocations,
        proof: format!(
            "{ROUNDS} turns of {PER_TURN} datagrams, each turn one UDP GSO send, and {PER_TURN} back at once ({} super-frames), every datagram received in order and checked",
            c.udp_super_frames
        ),
        open: Some(open),
        report_only: false,
    }
}

fn icmp_echo() -> Outcome {
    const ROUNDS: u16 = 1000;
    let mut rig = Rig::new(Opts::default());
    let mut replies = 0u64;
    let mut bad = 0u64;
    let one = |rig: &mut Rig, seq: u16, replies: &mut u64, bad: &mut u64| {
        rig.ping(INSIDE, 0x4242, seq, 56);
        let want = *replies + 1;
        rig.until("an echo reply", WAIT, |r| {
            r.pump(SHORT);
            r.drain(|s, p| {
                if s.is_icmp() && s.icmp_type == 0 && s.src_ip == INSIDE {
                    *replies += 1;
                    let intact = s.icmp_ident == 0x4242
                        && s.icmp_seq == seq
                        && p.len() == 56
                        && pattern_mismatches(seq as u64, 0, p) == 0;
                    if !intact {
                        *bad += 1;
                    }
                } else if s.is_icmp() {
                    panic!(
                        "ICMP {} code {} instead of an echo reply (ping sockets refused?)",
                        s.icmp_type, s.icmp_code
                    );
                }
            });
            *replies >= want
        });
        step_clock(rig, seq as u32);
    };
    let ((), open) = counted(|| one(&mut rig, 0, &mut replies, &mut bad));
    let n = rig.sw.nat_counters();
    assert_eq!(
        (n.icmp_flows, n.icmp_unavailable),
        (1, 0),
        "a ping socket flow"
    );
    let ((), allocations) = counted(|| {
        for seq in 1..=ROUNDS {
            one(&mut rig, seq, &mut replies, &mut bad);
        }
    });
    assert_eq!(rig.sw.nat_counters().icmp_flows, 1, "no new flow");
    assert_eq!((replies, bad), (ROUNDS as u64 + 1, 0));
    Outcome {
        name: "icmp echo (ping socket to 10.77.0.1)",
        packets: 2 * ROUNDS as u64,
        allocations,
        proof: format!("{ROUNDS} echo replies, identifier restored, data intact, one flow"),
        open: Some(open),
        report_only: false,
    }
}

fn dns_local() -> Outcome {
    const ROUNDS: u64 = 1500;
    let mut rig = Rig::new(Opts::default());
    let web = Ipv4Addr::new(172, 17, 0, 3);
    rig.sw.set_names(
        rig.net,
        web.into(),
        "c0ffee",
        &["web".to_string(), "db".to_string()],
    );
    rig.sw.set_names(
        rig.net,
        Ipv4Addr::new(172, 17, 0, 4).into(),
        "0ld",
        &["old".into()],
    );
    // The network dual stack, web with an IPv6 address too, registered in
    // the name table directly (the rig's network is IPv4 only).
    let gw6 = Ipv6Addr::new(0xfd00, 0x17, 0, 0, 0, 0, 0, 1);
    let web6 = Ipv6Addr::new(0xfd00, 0x17, 0, 0, 0, 0, 0, 3);
    {
        let mut t = rig.names.lock().unwrap();
        t.network_added(
            rig.net.0,
            "172.17.0.0/16".parse().unwrap(),
            GW,
            Some(("fd00:17::/64".parse().unwrap(), gw6)),
            false,
        );
        t.add(
            rig.net.0,
            web6.into(),
            "c0ffee",
            &["web".into(), "db".into()],
        );
    }
    let arpa6: String = web6
        .octets()
        .iter()
        .rev()
        .map(|o| format!("{:x}.{:x}.", o & 0xf, o >> 4))
        .collect::<String>()
        + "ip6.arpa";
    let (web4, gw4, web6, gw6) = (web.octets(), GW.octets(), web6.octets(), gw6.octets());
    // Name, type, answer count, the answer's data (the message's end).
    let names: [(&str, u16, u16, &[u8]); 8] = [
        ("web", 1, 1, &web4),
        ("db.lanyard.internal", 1, 1, &web4),
        ("host.docker.internal", 1, 1, &gw4),
        ("host.lanyard.internal", 1, 1, &gw4),
        ("web", 28, 1, &web6),
        ("host.docker.internal", 28, 1, &gw6),
        (&arpa6, 12, 1, b"\x03web\x00"),
        // NODATA: a name with only an IPv4 address, asked AAAA.
        ("old", 28, 0, &[]),
    ];
    let mut good = 0u64;
    let one = |rig: &mut Rig, i: u64, good: &mut u64| {
        let (name, qtype, want_an, want) = names[(i % 8) as usize];
        let id = i as u16;
        // 100 queries a second: within the per-client rate.
        rig.advance(Duration::from_millis(10));
        rig.dns_query(5300, id, name, qtype);
        rig.drain(|s, p| {
            if s.is_udp() && s.src_ip == GW && s.src_port == 53 && s.dst_port == 5300 {
                if let Some((aid, rcode, an, _)) = dns_answer(p) {
                    if aid == id && rcode == 0 && an == want_an && p.ends_with(want) {
                        *good += 1;
                    }
                }
            }
        });
        if i % 50 == 0 {
            rig.tick();
        }
    };
    one(&mut rig, 0, &mut good);
    let local0 = rig.sw.dns_counters().local_answers;
    let ((), allocations) = counted(|| {
        for i in 1..=ROUNDS {
            one(&mut rig, i, &mut good);
        }
    });
    let n = rig.sw.dns_counters();
    assert_eq!(n.local_answers - local0, ROUNDS, "answered locally");
    assert_eq!(good, ROUNDS + 1, "every answer right");
    assert_eq!(rig.flows(), 0);
    Outcome {
        name: "dns local answers (names, host.docker.internal; A, AAAA, ip6.arpa PTR, NODATA)",
        packets: 2 * ROUNDS,
        allocations,
        proof: format!(
            "{ROUNDS} queries answered from the name table with the right A, AAAA or PTR record, or none"
        ),
        open: None,
        report_only: false,
    }
}

fn dns_forwarded() -> Outcome {
    const ROUNDS: u64 = 1000;
    let upstream = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    upstream.set_nonblocking(true).unwrap();
    let mut rig = Rig::new(Opts {
        dns_upstreams: vec![upstream.local_addr().unwrap()],
        ..Opts::default()
    });
    let mut buf = vec![0u8; 1024];
    let mut good = 0u64;
    let mut asked = 0u64;
    let mut one = |rig: &mut Rig, i: u64, good: &mut u64, asked: &mut u64| {
        let id = i as u16;
        rig.advance(Duration::from_millis(10));
        rig.dns_query(5301, id, "www.example.test", 1);
        let want = *good + 1;
        rig.until("a forwarded answer", WAIT, |r| {
            r.pump(SHORT);
            if let Ok((n, from)) = upstream.recv_from(&mut buf) {
                // The fake upstream: the question echoed with its id, one A
                // answer (documentation address: data, never a
                // destination).
                *asked += 1;
                let q = n;
                buf[2] |= 0x80;
                buf[3] |= 0x80;
                buf[6..8].copy_from_slice(&1u16.to_be_bytes());
                let answer = [
                    0xc0,
                    12,
                    0,
                    1,
                    0,
                    1,
                    0,
                    0,
                    0,
                    60,
                    0,
                    4,
                    192,
                    0,
                    2,
                    (i % 256) as u8,
                ];
                buf[q..q + answer.len()].copy_from_slice(&answer);
                upstream.send_to(&buf[..q + answer.len()], from).unwrap();
            }
            r.drain(|s, p| {
                if s.is_udp() && s.src_ip == GW && s.src_port == 53 && s.dst_port == 5301 {
                    if let Some((aid, rcode, an, addr)) = dns_answer(p) {
                        if aid == id
                            && rcode == 0
                            && an == 1
                            && addr == [192, 0, 2, (i % 256) as u8]
                        {
                            *good += 1;
                        }
                    }
                }
            });
            *good >= want
        });
        if i % 50 == 0 {
            rig.tick();
        }
    };
    let ((), open) = counted(|| one(&mut rig, 0, &mut good, &mut asked));
    let n0 = rig.sw.dns_counters();
    let ((), allocations) = counted(|| {
        for i in 1..=ROUNDS {
            one(&mut rig, i, &mut good, &mut asked);
        }
    });
    let n = rig.sw.dns_counters();
    assert_eq!(n.replies - n0.replies, ROUNDS, "answers relayed");
    assert_eq!(n.queries - n0.queries, ROUNDS);
    assert_eq!((n.answers_refused, n.timeouts), (0, 0));
    assert_eq!((good, asked), (ROUNDS + 1, ROUNDS + 1));
    Outcome {
        name: "dns forwarded (fake upstream on 127.0.0.1)",
        packets: 4 * ROUNDS,
        allocations,
        proof: format!("{ROUNDS} queries forwarded, each answer relayed with the container's id"),
        open: Some(open),
        report_only: false,
    }
}

fn dhcp() -> Outcome {
    const ROUNDS: u32 = 2000;
    let mut rig = Rig::new(Opts {
        events: Some(64),
        ..Opts::default()
    });
    let rx = rig.dhcp.take().unwrap();
    let mut good = 0u64;
    let one = |rig: &mut Rig, xid: u32, good: &mut u64| {
        // At the port's budget of DHCP messages (ratelimit::DHCP_MESSAGES,
        // 100/s): each one is an event, none dropped.
        rig.advance(std::time::Duration::from_millis(10));
        rig.dhcp_discover(xid);
        match rx.try_recv() {
            Ok(Event::Dhcp { net, port, frame }) => {
                let b = frame.bytes();
                let at = 14 + 20 + 8 + 4;
                if net == rig.net
                    && port == rig.port
                    && b.len() == 14 + 20 + 8 + 300
                    && b[at..at + 4] == xid.to_be_bytes()
                {
                    *good += 1;
                }
            }
            Err(e) => panic!("no DHCP event: {e:?}"),
        }
    };
    one(&mut rig, 0, &mut good);
    let ((), allocations) = counted(|| {
        for xid in 1..=ROUNDS {
            one(&mut rig, xid, &mut good);
        }
    });
    assert_eq!(good, ROUNDS as u64 + 1, "every DISCOVER became its event");
    assert_eq!(rig.sw.events_dropped, 0);
    let c = rig.sw.counters(rig.port).unwrap();
    assert_eq!(c.total_drops(), 0);
    Outcome {
        name: "dhcp discover → control-plane event",
        packets: ROUNDS as u64,
        allocations,
        proof: format!("{ROUNDS} DISCOVERs on the bounded channel with their xid, none dropped"),
        open: None,
        report_only: false,
    }
}

/// What one source sends past its budgets (`lanyard::ratelimit`), at one
/// instant so the budgets stay spent: a new flow each (dropped before any
/// socket), a broadcast (not flooded), an echo request to the gateway, a
/// DHCP DISCOVER, a DNS query, and a refused flow whose ICMP error is not
/// sent: every refusal is counted, none allocates.
fn budgets() -> Outcome {
    use lanyard::ratelimit::{Rate, SourceLimits};
    use lanyard::stats::DropReason;
    use lanyard::wire::MacAddr;
    const ROUNDS: u32 = 500;
    let mut rig = Rig::new(Opts {
        events: Some(4096),
        ..Opts::default()
    });
    let tight = SourceLimits {
        new_flows: Rate::new(1, 1),
        floods: Rate::new(1, 1),
    };
    rig.sw.set_source_limits(tight);
    let dst = SocketAddrV4::new(INSIDE, 9);
    let bcast = Ipv4Addr::new(172, 17, 255, 255);
    let ip = rig.ip;
    // Each budget spent first (the flow this makes is an ordinary open).
    let spend = |rig: &mut Rig, i: u32| {
        rig.udp(20000 + (i % 30000) as u16, dst, 8, 1, 0);
        rig.udp_with(ip, 5000, bcast, 5000, MacAddr::BROADCAST, 8, |b| b.fill(0));
        rig.ping(GW, 7, i as u16, 8);
        rig.dhcp_discover(i);
        rig.dns_query(30000, i as u16, "nobody.example", 1);
    };
    let ((), open) = counted(|| {
        for i in 0..1000 {
            spend(&mut rig, i);
        }
    });
    let before = rig.sw.counters(rig.port).unwrap().clone();
    let ((), allocations) = counted(|| {
        for i in 1000..1000 + ROUNDS {
            spend(&mut rig, i);
        }
    });
    let c = rig.sw.counters(rig.port).unwrap().clone();
    let moved = |r| c.dropped(r) - before.dropped(r);
    let n = ROUNDS as u64;
    assert_eq!(moved(DropReason::FlowRateLimited), n, "new flows");
    // The broadcast datagram and the DISCOVER are both floods.
    assert_eq!(moved(DropReason::FloodLimited), 2 * n, "floods");
    assert_eq!(moved(DropReason::ReplyRateLimited), n, "echo replies");
    assert_eq!(moved(DropReason::RateLimited), n, "DNS queries");
    // DHCP past its own budget: DISCOVERs sent as unicast to the gateway
    // are not floods.
    rig.sw.set_source_limits(SourceLimits {
        new_flows: Rate::new(10_000_000, 10_000_000),
        ..tight
    });
    let mac = rig.mac;
    let dhcp_unicast = |rig: &mut Rig, xid: u32| {
        rig.udp_with(
            Ipv4Addr::UNSPECIFIED,
            68,
            GW,
            67,
            common::frames::gw_mac(),
            300,
            |b| write_dhcp_discover(b, xid, mac),
        );
        // A refused flow (the host's loopback as given): its error only
        // while the budget of errors lasts.
        rig.udp(40000, SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9), 8, 1, 0);
    };
    for xid in 0..300 {
        dhcp_unicast(&mut rig, xid);
    }
    let before = rig.sw.counters(rig.port).unwrap().clone();
    let limited0 = rig.sw.nat_counters().icmp_errors_limited;
    let ((), allocations2) = counted(|| {
        for xid in 300..300 + ROUNDS {
            dhcp_unicast(&mut rig, xid);
        }
    });
    let c = rig.sw.counters(rig.port).unwrap().clone();
    assert_eq!(
        c.dropped(DropReason::DhcpRateLimited) - before.dropped(DropReason::DhcpRateLimited),
        n,
        "DHCP messages"
    );
    assert_eq!(
        rig.sw.nat_counters().icmp_errors_limited - limited0,
        n,
        "ICMP errors"
    );
    Outcome {
        name: "past the budgets (new flows, floods, echo, DHCP, DNS, ICMP errors)",
        packets: 7 * n,
        allocations: allocations + allocations2,
        proof: format!("{ROUNDS} of each refused and counted at its budget"),
        open: Some(open),
        report_only: false,
    }
}

fn published_tcp() -> Outcome {
    const ROUNDS: u32 = 150;
    const CHUNK: u64 = 16 * 1024;
    let mut rig = Rig::new(Opts::default());
    let (addr, id) = rig.publish(Protocol::Tcp, 8080);
    let mut c = CTcp::new(8080, SocketAddrV4::new(GW, 0));
    c.wscale = Some(7);
    c.window = 1 << 20;
    let (client, open) = counted(|| {
        let client = TcpStream::connect(addr).unwrap();
        rig.until("the NAT's SYN from the client", WAIT, |r| {
            r.pump(SHORT);
            r.drain(|s, p| {
                if s.is_tcp() && s.dst_port == 8080 && s.has(lanyard::wire::tcp::flags::SYN) {
                    c.dst = SocketAddrV4::new(s.src_ip, s.src_port);
                    c.on_frame(s, p);
                }
            });
            c.state == TcpState::SynReceived
        });
        rig.syn_ack(&mut c);
        rig.until("the NAT's ACK", WAIT, |r| {
            r.pump(SHORT);
            r.drain(|s, p| {
                c.on_frame(s, p);
            });
            c.established()
        });
        client
    });
    assert_eq!(*c.dst.ip(), GW, "a loopback client is shown as the gateway");
    client.set_nonblocking(true).unwrap();
    // The client is the echoing end here: it speaks first each round.
    let mut host = Echo::new(client, c.tx_seed, c.rx_seed);
    let round = |rig: &mut Rig, c: &mut CTcp, host: &mut Echo, i: u32| {
        // The client sends CHUNK of its stream; the container answers with
        // as much of its own.
        let target = host.written + CHUNK;
        rig.until("a published round both ways", WAIT, |r| {
            while host.written < target {
                let n = (target - host.written).min(host.wbuf.len() as u64) as usize;
                fill_pattern(host.tx_seed, host.written, &mut host.wbuf[..n]);
                match host.s.write(&host.wbuf[..n]) {
                    Ok(k) => host.written += k as u64,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("client write: {e}"),
                }
            }
            r.pump(SHORT);
            r.drain(|s, p| {
                c.on_frame(s, p);
            });
            if c.received > c.sent_bytes() {
                let want = c.received - c.sent_bytes();
                r.send_data(c, want);
            }
            if c.owe_ack {
                r.ack(c);
            }
            loop {
                match host.s.read(&mut host.rbuf) {
                    Ok(0) => panic!("the client's connection closed"),
                    Ok(n) => {
                        host.mismatches +=
                            pattern_mismatches(host.rx_seed, host.read, &host.rbuf[..n]);
                        host.read += n as u64;
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) => panic!("client read: {e}"),
                }
            }
            c.received == target && host.read == target && c.acked_bytes() == target
        });
        step_clock(rig, i);
    };
    round(&mut rig, &mut c, &mut host, 0);
    let n0 = rig.sw.nat_counters();
    let (tx0, gso0) = (rig.port_tx(), c.gso_frames);
    let ((), allocations) = counted(|| {
        for i in 1..=ROUNDS {
            round(&mut rig, &mut c, &mut host, i);
        }
    });
    let total = (ROUNDS as u64 + 1) * CHUNK;
    assert_eq!(rig.sw.nat_counters().tcp_flows, n0.tcp_flows, "no new flow");
    assert_eq!((c.received, host.read), (total, total));
    assert_eq!((c.mismatches, host.mismatches), (0, 0));
    assert_eq!(
        rig.sw.forward_counts(id),
        Some((1, 0)),
        "one client accepted"
    );
    let gso = c.gso_frames - gso0;
    let frames = rig.port_tx() - tx0;
    Outcome {
        name: "published tcp (loopback client ↔ container:8080)",
        packets: frames + (ROUNDS as u64 * CHUNK).div_ceil(1460),
        allocations,
        proof: format!(
            "{} KiB each way checked, {frames} frames to the container ({gso} super-frames)",
            ROUNDS as u64 * CHUNK / 1024
        ),
        open: Some(open),
        report_only: false,
    }
}

fn published_udp() -> Outcome {
    const ROUNDS: u64 = 1000;
    let mut rig = Rig::new(Opts::default());
    let (addr, _) = rig.publish(Protocol::Udp, 5353);
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut payload = vec![0u8; 1200];
    let mut rbuf = vec![0u8; 2048];
    let mut good = 0u64;
    let mut one = |rig: &mut Rig, i: u64, good: &mut u64| {
        let len = 100 + (i % 1000) as usize;
        fill_pattern(0x77, i, &mut payload[..len]);
        client.send_to(&payload[..len], addr).unwrap();
        let mut from: Option<SocketAddrV4> = None;
        rig.until("the client's datagram at the container", WAIT, |r| {
            r.pump(SHORT);
            r.drain(|s, p| {
                if s.is_udp()
                    && s.dst_port == 5353
                    && p.len() == len
                    && pattern_mismatches(0x77, i, p) == 0
                {
                    from = Some(SocketAddrV4::new(s.src_ip, s.src_port));
                }
            });
            from.is_some()
        });
        let seen = from.unwrap();
        assert_eq!(*seen.ip(), GW, "a loopback client is shown as the gateway");
        // The container answers the address it sees.
        rig.udp(5353, seen, len, 0x78, i);
        rig.until("the container's answer at the client", WAIT, |r| {
            r.pump(SHORT);
            match client.recv_from(&mut rbuf) {
                Ok((n, src)) => {
                    if src == addr && n == len && pattern_mismatches(0x78, i, &rbuf[..n]) == 0 {
                        *good += 1;
                    }
                    true
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => false,
                Err(e) => panic!("client recv: {e}"),
            }
        });
        step_clock(rig, i as u32);
    };
    let ((), open) = counted(|| one(&mut rig, 0, &mut good));
    let n0 = rig.sw.nat_counters();
    let ((), allocations) = counted(|| {
        for i in 1..=ROUNDS {
            one(&mut rig, i, &mut good);
        }
    });
    assert_eq!(rig.sw.nat_counters().udp_flows, n0.udp_flows, "no new flow");
    assert_eq!(n0.udp_flows, 1);
    assert_eq!(good, ROUNDS + 1, "every answer from the published port");
    Outcome {
        name: "published udp (loopback client ↔ container:5353)",
        packets: 2 * ROUNDS,
        allocations,
        proof: format!("{ROUNDS} datagrams each way through the published port, checked"),
        open: Some(open),
        report_only: false,
    }
}

/// A published UDP port's client sending bursts: each burst reaches the
/// container as one super-frame (one readiness event of the shared
/// socket), and the container's answers to it, one port turn, leave in one
/// UDP GSO send to the client's address.
fn published_udp_batched() -> Outcome {
    const ROUNDS: u64 = 200;
    const PER_TURN: u64 = 32;
    let mut rig = Rig::new(Opts::default());
    let (addr, _) = rig.publish(Protocol::Udp, 5353);
    let client = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    client.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 2048];
    let (mut bad, mut got, mut back_total) = (0u64, 0u64, 0u64);
    let (mut allocations, mut open) = (0u64, 0u64);
    let mut seen: Option<SocketAddrV4> = None;
    for r in 0..=ROUNDS {
        for i in 0..PER_TURN {
            let mut d = [0u8; 64];
            fill_pattern(0x5ee, r * PER_TURN + i, &mut d);
            client.send_to(&d, addr).unwrap();
        }
        let mut this = 0u64;
        let ((), a) = counted(|| {
            rig.until("the client's burst at the container", WAIT, |rig| {
                rig.pump(SHORT);
                rig.drain(|s, p| {
                    if s.is_udp() && s.dst_port == 5353 {
                        seen = Some(SocketAddrV4::new(s.src_ip, s.src_port));
                        if p.len() != 64 || pattern_mismatches(0x5ee, r * PER_TURN + this, p) != 0 {
                            bad += 1;
                        }
                        this += 1;
                    }
                });
                this >= PER_TURN
            })
        });
        got += this;
        let to = seen.expect("the burst came");
        rig.queue = true;
        for i in 0..PER_TURN {
            rig.udp(5353, to, 64, 0x5ef, r * PER_TURN + i);
        }
        rig.queue = false;
        let (n, b) = counted(|| rig.turn());
        assert_eq!(n as u64, PER_TURN);
        if r == 0 {
            open = a + b;
        } else {
            allocations += a + b;
        }
        let deadline = std::time::Instant::now() + WAIT;
        let mut back = 0u64;
        while back < PER_TURN && std::time::Instant::now() < deadline {
            match client.recv_from(&mut buf) {
                Ok((n, from)) => {
                    if from != addr
                        || n != 64
                        || pattern_mismatches(0x5ef, r * PER_TURN + back, &buf[..n]) != 0
                    {
                        bad += 1;
                    }
                    back += 1;
                }
                Err(_) => std::thread::sleep(SHORT),
            }
        }
        back_total += back;
        step_clock(&mut rig, r as u32);
    }
    let c = rig.sw.nat_counters();
    assert_eq!(
        (got, back_total, bad),
        ((ROUNDS + 1) * PER_TURN, (ROUNDS + 1) * PER_TURN, 0),
        "every datagram, in order, both ways"
    );
    assert_eq!(c.udp_gso_batches, ROUNDS + 1, "one send per turn");
    assert!(
        c.udp_super_frames > ROUNDS / 2,
        "bursts in as super-frames: {}",
        c.udp_super_frames
    );
    Outcome {
        name: "published udp batched (bursts of a loopback client ↔ container:5353)",
        packets: 2 * ROUNDS * PER_TURN,
        allocations,
        proof: format!(
            "{ROUNDS} bursts of {PER_TURN} datagrams in ({} super-frames) and {PER_TURN} answers each in one UDP GSO send, every datagram in order and checked",
            c.udp_super_frames
        ),
        open: Some(open),
        report_only: false,
    }
}

/// Flows coming and going: TCP connections opened, used and closed from
/// both sides, and UDP flows left to expire. Not per-packet work, so what
/// it allocates is reported rather than held to zero.
fn flow_churn() -> Outcome {
    const CONNS: u16 = 200;
    let mut rig = Rig::new(Opts::default());
    let l = TcpListener::bind((INSIDE, 0)).unwrap();
    l.set_nonblocking(true).unwrap();
    let dst = SocketAddrV4::new(INSIDE, l.local_addr().unwrap().port());
    let server = UdpSocket::bind((INSIDE, 0)).unwrap();
    let udp_dst = SocketAddrV4::new(INSIDE, server.local_addr().unwrap().port());
    let mut buf = [0u8; 256];
    let mut one = |rig: &mut Rig, i: u16| {
        let mut c = CTcp::new(43000 + i, dst);
        rig.connect(&mut c);
        rig.until("a churn SYN-ACK", WAIT, |r| {
            r.pump(SHORT);
            r.drain(|s, p| {
                c.on_frame(s, p);
            });
            c.established()
        });
        rig.ack(&mut c);
        let mut host = accept(rig, &l);
        host.write_all(&[7u8; 100]).unwrap();
        // The container closes after the data; the host closes after EOF.
        rig.until("a churn close", WAIT, |r| {
            r.pump(SHORT);
            r.drain(|s, p| {
                c.on_frame(s, p);
            });
            if c.received == 100 && !c.fin_sent {
                r.tcp(
                    &mut c,
                    lanyard::wire::tcp::flags::FIN | lanyard::wire::tcp::flags::ACK,
                    0,
                );
            }
            if c.owe_ack {
                r.ack(&mut c);
            }
            if c.fin_sent {
                match host.read(&mut buf) {
                    Ok(0) => host.shutdown(std::net::Shutdown::Write).unwrap_or(()),
                    Ok(_) => {}
                    Err(_) => {}
                }
            }
            // Our FIN acknowledged and theirs answered: the NAT removes the
            // flow as it takes that last ACK.
            c.fin_received && c.snd_una == c.snd_nxt && !c.owe_ack && r.flows() == 0
        });
        drop(host);
        // A UDP flow that is used once and expires.
        rig.udp(44000 + i, udp_dst, 32, 1, 0);
        rig.pump(SHORT);
        let _ = server.recv_from(&mut buf);
        rig.advance(Duration::from_secs(31));
        for _ in 0..8 {
            rig.tick();
        }
        rig.drain(|_, _| {});
    };
    one(&mut rig, 0);
    let n0 = rig.sw.nat_counters();
    let ((), allocations) = counted(|| {
        for i in 1..=CONNS {
            one(&mut rig, i);
        }
    });
    let n = rig.sw.nat_counters();
    assert_eq!(
        n.tcp_flows - n0.tcp_flows,
        CONNS as u64,
        "connections opened"
    );
    assert_eq!(n.udp_flows - n0.udp_flows, CONNS as u64, "UDP flows opened");
    assert_eq!(
        n.flows_expired - n0.flows_expired,
        CONNS as u64,
        "UDP flows expired"
    );
    assert_eq!(
        rig.sw.nat_flows(),
        (0, 0),
        "every flow gone, none left busy"
    );
    Outcome {
        name: "flow churn (TCP open/data/close, UDP open/expire)",
        packets: CONNS as u64 * 10,
        allocations,
        proof: format!(
            "{CONNS} TCP connections opened and closed both ways, {CONNS} UDP flows expired"
        ),
        open: None,
        report_only: true,
    }
}

fn main() {
    // The namespace comes first, while this process has one thread.
    let ns = match enter_namespace() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("no_alloc_nat: cannot make the test's namespace: {e}");
            println!("0 passed, 1 failed");
            std::process::exit(1);
        }
    };
    println!("no_alloc_nat: {ns}");
    // The counter counts this thread: one allocation must show as one,
    // or every zero below would prove nothing.
    let (v, canary) = counted(|| std::hint::black_box(Vec::<u8>::with_capacity(64)));
    drop(v);
    if canary != 1 {
        eprintln!("no_alloc_nat: the counting allocator saw {canary} allocations for one");
        println!("0 passed, 1 failed");
        std::process::exit(1);
    }
    TRACE.store(
        std::env::var_os("LANYARD_ALLOC_TRACE").is_some_and(|v| v == "1"),
        Ordering::Relaxed,
    );
    // `cargo test NAME` hands every test binary its filter: run only the
    // checks whose name holds one (all of them without a filter).
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let checks: [(&str, Check); 12] = [
        ("tcp egress", tcp_egress),
        ("udp egress", udp_egress),
        ("udp batched", udp_egress_batched),
        ("icmp echo", icmp_echo),
        ("dns local", dns_local),
        ("dns forwarded", dns_forwarded),
        ("dhcp", dhcp),
        ("published tcp", published_tcp),
        ("published udp", published_udp),
        ("published udp batched", published_udp_batched),
        ("flow churn", flow_churn),
        ("budgets", budgets),
    ];
    let (mut passed, mut failed) = (0, 0);
    for (name, check) in checks {
        if !filters.is_empty() && !filters.iter().any(|f| name.contains(f.as_str())) {
            continue;
        }
        let r = catch_unwind(AssertUnwindSafe(check));
        counting(false);
        match &r {
            Ok(o) if o.report_only => {
                passed += 1;
                println!(
                    "ok   {}: {} allocations (reported, not asserted); {}",
                    o.name, o.allocations, o.proof
                );
            }
            Ok(o) if o.allocations == 0 => {
                passed += 1;
                println!(
                    "ok   {}: {} packets, 0 allocations; {}",
                    o.name, o.packets, o.proof
                );
            }
            Ok(o) => {
                failed += 1;
                println!(
                    "FAIL {}: {} allocations over {} packets after warm-up (a per-packet allocation on the data path; LANYARD_ALLOC_TRACE=1 shows where); {}",
                    o.name, o.allocations, o.packets, o.proof
                );
            }
            Err(_) => {
                failed += 1;
                println!("FAIL {name}: the check panicked (see above)");
            }
        }
        if let Ok(Outcome {
            open: Some(n),
            name,
            ..
        }) = &r
        {
            println!(
                "     open {name}: {n} allocations while opening the flow (warm-up, not asserted)"
            );
        }
    }
    println!("{passed} passed, {failed} failed");
    if failed > 0 {
        std::process::exit(1);
    }
}
