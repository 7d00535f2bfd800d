//! `lanyard capture`, `daemon --pcap` and `run --pcap`: files that tcpdump
//! and tshark read, holding the frames the test sent (counted, addresses
//! compared), in both directions of a port, with GSO super-frames flagged;
//! what a filter excludes absent; `-c` ending a capture by itself and an
//! interrupted one ending on a whole record; a spoofed frame seen as the
//! container sent it although the switch dropped it; bad requests refused
//! with the field named and the running captures unharmed. Real
//! containers on a real daemon; traffic only between them.

mod common;

use std::process::Command;
use std::time::Duration;

use common::harness::*;

const T: Duration = Duration::from_secs(60);

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .is_ok_and(|o| o.status.success())
}

/// tcpdump's reading of a file, one line per frame.
fn tcpdump(file: &std::path::Path, filter: &str) -> Vec<String> {
    let o = output_within(
        Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(file)
            .args(filter.split_whitespace()),
        T,
    );
    assert_ok(&o, &format!("tcpdump -r {}", file.display()));
    stdout(&o).lines().map(str::to_string).collect()
}

fn count(lines: &[String], needles: &[&str]) -> usize {
    lines
        .iter()
        .filter(|l| needles.iter().all(|n| l.contains(n)))
        .count()
}

/// Starts `lanyard capture ARGS` writing to `file`, and waits until its
/// file has its header (the capture is installed).
fn start_capture(env: &Env, args: &[&str], file: &std::path::Path, name: &str) -> Proc {
    let mut a = vec!["capture"];
    a.extend_from_slice(args);
    let mut c = env.ctl(&a);
    let p = Proc::spawn_logged(&mut c, &env.dir.join(format!("{name}.log")), name);
    wait_until(T, "the capture's header", || {
        std::fs::metadata(file).is_ok_and(|m| m.len() > 0)
    });
    p
}

#[test]
fn captures_hold_what_crossed_the_switch_and_nothing_the_filter_excluded() {
    assert!(
        have("tcpdump"),
        "tcpdump is needed (scripts/test.sh installs it)"
    );
    let env = Env::new(As::Unprivileged);
    let d = env.daemon();
    let dir = env.dir.display().to_string();
    // b serves TCP on 8000 (1 MiB to whoever connects); a waits for the
    // captures, then pings b (allowed), pings it from an address not its
    // own (spoofed: the switch drops it), and fetches the 1 MiB.
    let mut b = Proc::spawn_logged(
        &mut env.run_in(
            &["--name", "b", "--ip", "172.17.0.2"],
            &[
                "python3",
                "-c",
                "import socket\ns=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('0.0.0.0', 8000)); s.listen(4); print('ready', flush=True)\nwhile True:\n    c,_=s.accept(); c.sendall(b'x'*1048576); c.close()",
            ],
        ),
        &env.dir.join("b.log"),
        "b",
    );
    b.wait_for_output("ready", T);
    let go = env.dir.join("go");
    let script = format!(
        "echo up; i=0; until [ -e {dir}/go ]; do i=$((i+1)); [ $i -lt 300 ] || exit 9; sleep 0.1; done; \
         ping -c 4 -i 0.2 -W 2 172.17.0.2; ip addr add 172.17.0.99/16 dev eth0; \
         ping -c 2 -i 0.2 -W 1 -I 172.17.0.99 172.17.0.2; ip addr del 172.17.0.99/16 dev eth0; \
         python3 -c \"import socket; s=socket.create_connection(('172.17.0.2', 8000), 5); n=0\nwhile True:\n    d=s.recv(65536)\n    if not d: break\n    n+=len(d)\nprint('got', n)\"; echo done"
    );
    let mut a = Proc::spawn_logged(
        &mut env.run_in(
            &["--name", "a", "--ip", "172.17.0.3"],
            &["sh", "-c", &script],
        ),
        &env.dir.join("a.log"),
        "a",
    );
    a.wait_for_output("up", T);
    // c, a neighbour on the same network, pings the gateway while the
    // captures run: none of it may show in a capture of a's port.
    let mut c = Proc::spawn_logged(
        &mut env.run_in(
            &["--name", "c", "--ip", "172.17.0.4"],
            &[
                "sh",
                "-c",
                &format!("echo up; i=0; until [ -e {dir}/go ]; do i=$((i+1)); [ $i -lt 300 ] || exit 9; sleep 0.1; done; ping -c 3 -i 0.2 -W 2 172.17.0.1"),
            ],
        ),
        &env.dir.join("c.log"),
        "c",
    );
    c.wait_for_output("up", T);
    let cap1 = env.dir.join("run/a.pcapng");
    let mut c1 = start_capture(
        &env,
        &[
            "--port",
            "a",
            "-w",
            cap1.to_str().unwrap(),
            "icmp",
            "or",
            "arp",
        ],
        &cap1,
        "cap1",
    );
    let cap2 = env.dir.join("run/b3.pcapng");
    let mut c2 = start_capture(
        &env,
        &[
            "--port",
            "b",
            "-c",
            "3",
            "-w",
            cap2.to_str().unwrap(),
            "tcp",
        ],
        &cap2,
        "cap2",
    );
    let cap3 = env.dir.join("run/all.pcap");
    let mut c3 = start_capture(
        &env,
        &[
            "--network",
            "bridge",
            "--format",
            "pcap",
            "-w",
            cap3.to_str().unwrap(),
            "tcp port 8000",
        ],
        &cap3,
        "cap3",
    );
    let cap4 = env.dir.join("run/a-tcp.pcapng");
    let mut c4 = start_capture(
        &env,
        &["--port", "a", "-w", cap4.to_str().unwrap(), "tcp"],
        &cap4,
        "cap4",
    );
    // A fifth capture at once is refused; the four go on.
    let o = output_within(
        env.ctl(&["capture", "-w", env.dir.join("run/x").to_str().unwrap()]),
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("4 captures are running"),
        "{}",
        stderr(&o)
    );
    std::fs::write(&go, "").unwrap();
    a.wait_for_output("done", T);
    assert!(a.output().contains("got 1048576"), "{}", a.output());
    // -c 3: that capture ended by itself.
    let st = c2.wait(T);
    assert!(st.success(), "{}", c2.output());
    let st = c.wait(T);
    assert!(
        st.success() && c.output().contains("3 received"),
        "{}",
        c.output()
    );
    // a exits: the captures of its port end by themselves, as tcpdump on
    // a vanished interface; the network's runs until interrupted.
    let st = a.wait(T);
    assert!(st.success(), "{}", a.output());
    for c in [&mut c1, &mut c4] {
        let st = c.wait(T);
        assert!(st.success(), "{}", c.output());
    }
    c3.signal(libc::SIGINT);
    let st = c3.wait(T);
    assert!(st.success(), "{}", c3.output());

    // cap1, a's port, icmp or arp: the 4 requests it sent (in) and the 4
    // replies it got (out); the 2 spoofed requests as it sent them, no
    // reply to them; its ARP; no TCP at all.
    let l = tcpdump(&cap1, "");
    assert_eq!(
        count(&l, &["172.17.0.3 > 172.17.0.2: ICMP echo request"]),
        4,
        "{l:#?}"
    );
    assert_eq!(
        count(&l, &["172.17.0.2 > 172.17.0.3: ICMP echo reply"]),
        4,
        "{l:#?}"
    );
    assert_eq!(
        count(&l, &["172.17.0.99 > 172.17.0.2: ICMP echo request"]),
        2,
        "{l:#?}"
    );
    assert_eq!(count(&l, &["> 172.17.0.99: ICMP"]), 0, "{l:#?}");
    assert!(
        count(&l, &["ARP, Request who-has 172.17.0.2"]) >= 1,
        "{l:#?}"
    );
    assert_eq!(count(&l, &["Flags ["]), 0, "the filter let TCP in: {l:#?}");
    // c's broadcast ARP was flooded to a's port, so it is there (the capture
    // was live while c spoke); c's unicast with the gateway never crossed
    // a's port, so it is not.
    assert!(
        count(&l, &["who-has 172.17.0.1 tell 172.17.0.4"]) >= 1,
        "{l:#?}"
    );
    assert_eq!(
        count(&l, &["172.17.0.4 > 172.17.0.1"]),
        0,
        "c's unicast in a's capture: {l:#?}"
    );
    assert_eq!(count(&l, &["172.17.0.1 > 172.17.0.4"]), 0, "{l:#?}");
    assert_eq!(count(&l, &["Reply 172.17.0.1 is-at"]), 0, "{l:#?}");
    assert_eq!(count(&l, &["UDP"]), 0, "{l:#?}");
    // The 'in'/'out' of each frame, and the interface's name (tshark).
    if have("tshark") {
        let o = output_within(
            Command::new("tshark")
                .arg("-r")
                .arg(&cap1)
                .args(["-Y", "icmp.type == 8 && ip.src == 172.17.0.3"])
                .args([
                    "-T",
                    "fields",
                    "-e",
                    "frame.interface_name",
                    "-e",
                    "frame.packet_flags_direction",
                ]),
            T,
        );
        assert_ok(&o, "tshark");
        let rows: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
        assert_eq!(rows.len(), 4, "{rows:?}");
        assert!(rows.iter().all(|r| r == "a/eth0\t0x00000001"), "{rows:?}");
        let o = output_within(
            Command::new("tshark")
                .arg("-r")
                .arg(&cap1)
                .args(["-Y", "icmp.type == 0"])
                .args(["-T", "fields", "-e", "frame.packet_flags_direction"]),
            T,
        );
        assert!(
            stdout(&o).lines().all(|r| r == "0x00000002"),
            "{}",
            stdout(&o)
        );
        // GSO super-frames a's stack handed over are flagged.
        let o = output_within(
            Command::new("tshark").arg("-r").arg(&cap4).args([
                "-T",
                "fields",
                "-e",
                "frame.comment",
                "-e",
                "frame.len",
            ]),
            T,
        );
        let text = stdout(&o);
        let gso: Vec<&str> = text.lines().filter(|r| r.contains("gso tcpv4")).collect();
        assert!(!gso.is_empty(), "no flagged super-frame:\n{}", stdout(&o));
    } else {
        eprintln!("tshark not installed: direction and comments unchecked");
    }
    // cap2: -c 3 tcp on b: the handshake, exactly.
    let l = tcpdump(&cap2, "");
    assert_eq!(l.len(), 3, "{l:#?}");
    // The daemon says how each capture ended: -c 3 wrote 3, lost none.
    wait_until(T, "the capture's end logged", || {
        d.output().contains("ended: 3 records written, 0 dropped")
    });
    assert!(
        l[0].contains("172.17.0.3.") && l[0].contains("Flags [S]"),
        "{l:#?}"
    );
    assert!(l[1].contains("Flags [S.]"), "{l:#?}");
    // cap3: classic pcap, the whole network, tcp port 8000 only: the MiB
    // (at least once in each direction of the switch: in at b, out at a).
    let o = output_within(
        Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(&cap3)
            .arg("-c")
            .arg("1"),
        T,
    );
    assert!(stderr(&o).contains("link-type EN10MB"), "{}", stderr(&o));
    let l = tcpdump(&cap3, "");
    let bytes: u64 = l
        .iter()
        .filter(|x| x.contains("172.17.0.2.8000 > 172.17.0.3."))
        .filter_map(|x| x.rsplit("length ").next()?.trim().parse::<u64>().ok())
        .sum();
    assert!(bytes >= 2 * 1_048_576, "{bytes} bytes of payload");
    assert_eq!(count(&l, &["ICMP"]), 0, "{l:#?}");
    b.signal(libc::SIGTERM);
    b.wait(T);
    // The daemon serves on.
    assert_ok(&output_within(env.ctl(&["stats"]), T), "stats");
}

#[test]
fn bad_capture_requests_name_what_is_wrong() {
    let env = Env::new(As::Unprivileged);
    let _d = env.daemon();
    let w = env.dir.join("run/never.pcapng");
    let ws = w.to_str().unwrap();
    for (args, needle) in [
        (vec!["capture", "-w", ws, "tcp", "port"], "filter:"),
        (vec!["capture", "-w", ws, "host", "999.1.1.1"], "filter:"),
        (vec!["capture", "-w", ws, "--port", "nobody"], "--port"),
        (vec!["capture", "-w", ws, "--network", "nope"], "--network"),
        (
            vec!["capture", "-w", ws, "--snaplen", "300000"],
            "--snaplen",
        ),
        (vec!["capture", "-w", ws, "-c", "0"], "--count"),
        (vec!["capture", "-w", ws, "--format", "erf"], "--format"),
        (
            vec!["capture", "-w", "/nonexistent/dir/x.pcapng"],
            "/nonexistent/dir",
        ),
    ] {
        let o = output_within(env.ctl(&args), T);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    // A filter error says where.
    let o = output_within(env.ctl(&["capture", "-w", ws, "tcp", "and", "(", "udp"]), T);
    assert!(stderr(&o).contains("filter:"), "{}", stderr(&o));
    // Nothing was left running: four captures may still start.
    let mut ps = Vec::new();
    for i in 0..4 {
        let f = env.dir.join(format!("run/c{i}.pcapng"));
        ps.push(start_capture(
            &env,
            &["-w", f.to_str().unwrap()],
            &f,
            &format!("c{i}"),
        ));
    }
    for p in &ps {
        p.signal(libc::SIGINT);
    }
    for p in &mut ps {
        assert!(p.wait(T).success());
    }
}

#[test]
fn daemon_and_run_pcap_write_everything_from_the_start() {
    assert!(
        have("tcpdump"),
        "tcpdump is needed (scripts/test.sh installs it)"
    );
    let env = Env::new(As::Unprivileged);
    let dpcap = env.dir.join("run/daemon.pcapng");
    let mut d = env.daemon_with(&["--pcap", dpcap.to_str().unwrap()]);
    let rpcap = env.dir.join("run/run.pcapng");
    let o = output_within(
        env.run_in(
            &["--pcap", rpcap.to_str().unwrap()],
            &["ping", "-c", "3", "-i", "0.2", "-W", "2", "172.17.0.1"],
        ),
        T,
    );
    assert_ok(&o, "run --pcap");
    // The embedded switch's too (no daemon on this runtime dir).
    let epcap = env.dir.join("run/embedded.pcapng");
    let mut c = env.lanyard(&[
        "run",
        "--pcap",
        epcap.to_str().unwrap(),
        "--",
        "ping",
        "-c",
        "2",
        "-i",
        "0.2",
        "-W",
        "2",
        "172.17.0.1",
    ]);
    c.env("XDG_RUNTIME_DIR", env.dir.join("run/embedded"));
    std::fs::create_dir_all(env.dir.join("run/embedded")).unwrap();
    if let Some((uid, gid)) = env.user {
        std::os::unix::fs::chown(env.dir.join("run/embedded"), Some(uid), Some(gid)).unwrap();
    }
    let o = output_within(c, T);
    assert_ok(&o, "embedded run --pcap");
    d.signal(libc::SIGTERM);
    d.wait(T);
    for (file, n) in [(&rpcap, 3), (&dpcap, 3), (&epcap, 2)] {
        let l = tcpdump(file, "icmp");
        assert_eq!(
            count(&l, &["> 172.17.0.1: ICMP echo request"]),
            n,
            "{}: {l:#?}",
            file.display()
        );
        assert_eq!(
            count(&l, &["172.17.0.1 > ", "ICMP echo reply"]),
            n,
            "{}: {l:#?}",
            file.display()
        );
    }
    // From the start: the container's first frames (its IPv6 router
    // solicitation or neighbour discovery as eth0 came up, or its first
    // ARP) are in the file, before the first echo request.
    let all = tcpdump(&rpcap, "");
    let first_echo = all.iter().position(|l| l.contains("echo request")).unwrap();
    assert!(first_echo > 0, "nothing before the first ping: {all:#?}");
    // Bad: --pcap where it cannot be written, and for a container with no
    // network of its own.
    let o = output_within(
        env.run_in(&["--pcap", "/nonexistent/x.pcapng"], &["true"]),
        T,
    );
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--pcap /nonexistent/x.pcapng"),
        "{}",
        stderr(&o)
    );
    let o = output_within(
        env.lanyard(&[
            "daemon",
            "--pcap",
            "/nonexistent/x.pcapng",
            "--socket",
            env.socket.to_str().unwrap(),
        ]),
        T,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--pcap /nonexistent/x.pcapng"),
        "{}",
        stderr(&o)
    );
}
