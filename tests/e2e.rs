//! End-to-end: real `lanyard run` containers in namespaces the tests make,
//! real peers (ping, python sockets, ip), a real daemon over its control
//! socket; each test as the current user (root in CI) or as an unprivileged
//! user (`As::Unprivileged`), the embedded-switch ping test as both.
//! Traffic only between namespaces these tests created.

mod common;

use std::time::Duration;

use common::harness::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn embedded_switch_answers_ping_with_no_daemon_and_no_config() {
    let whos: &[As] = if euid() == 0 {
        &[As::Me, As::Unprivileged]
    } else {
        &[As::Me]
    };
    for &who in whos {
        let env = Env::new(who);
        // The default socket path, in a runtime dir of our own where no
        // daemon runs: `run` must embed the switch.
        let mut c = env.lanyard(&["run", "--", "ping", "-c", "2", "-W", "5", "172.17.0.1"]);
        c.env("XDG_RUNTIME_DIR", env.dir.join("run"));
        let o = output_within(c, T);
        assert_ok(&o, "lanyard run -- ping 172.17.0.1");
        assert!(stdout(&o).contains("2 received"), "{}", stdout(&o));
    }
}

#[test]
fn exit_codes_and_setup_of_the_container() {
    let env = Env::new(As::Unprivileged);
    let o = output_within(env.lanyard(&["run", "--", "sh", "-c", "exit 7"]), T);
    assert_eq!(o.status.code(), Some(7));
    let o = output_within(env.lanyard(&["run", "--", "/nonexistent/cmd"]), T);
    assert_eq!(o.status.code(), Some(127), "{}", stderr(&o));
    let o = output_within(env.lanyard(&["run", "--", "sh", "-c", "kill -9 $$"]), T);
    assert_eq!(o.status.code(), Some(128 + 9));
    // What the container sees: its address, docker's MAC, the route, the
    // MTU, lo up, the hostname, root inside.
    let o = output_within(
        env.lanyard(&[
            "run",
            "--mtu",
            "1500",
            "--hostname",
            "box1",
            "--",
            "sh",
            "-c",
            "ip -o addr show eth0; ip -o link show eth0; ip route; ip -o link show lo; hostname; id -u",
        ]),
        T,
    );
    assert_ok(&o, "inspecting the container");
    let s = stdout(&o);
    assert!(s.contains("inet 172.17.0.2/16"), "{s}");
    assert!(s.contains("link/ether 02:42:ac:11:00:02"), "{s}");
    assert!(s.contains("mtu 1500"), "{s}");
    assert!(s.contains("qlen 5000"), "{s}");
    assert!(s.contains("default via 172.17.0.1 dev eth0"), "{s}");
    assert!(s.contains("lo: <LOOPBACK,UP"), "{s}");
    assert!(s.contains("box1"), "{s}");
    assert!(s.trim_end().ends_with('0'), "root inside: {s}");
}

/// Two containers on one daemon: ping each other and the gateway, a TCP
/// transfer arrives byte-identical, UDP and broadcast work, the neighbour
/// table holds the gateway's MAC, and the daemon reports it all.
fn two_containers(who: As, mtu: &str) {
    let env = Env::new(who);
    let _daemon = env.daemon();
    let peer = env.peer();
    let mut server = Proc::spawn_logged(
        &mut env.run_in(
            &["--name", "srv", "--mtu", mtu],
            &["python3", &peer, "server"],
        ),
        &env.dir.join("srv.log"),
        "server container",
    );
    server.wait_for_output("ready", T);

    let inspect = json(&output_within(
        &mut env.ctl(&["network", "inspect", "default"]),
        T,
    ));
    let containers = inspect[0]["Containers"].as_object().expect("Containers");
    assert_eq!(containers.len(), 1);
    let srv = containers.values().next().unwrap();
    assert_eq!(srv["Name"], "srv");
    assert_eq!(srv["IPv4Address"], "172.17.0.2/16");
    assert_eq!(srv["MacAddress"], "02:42:ac:11:00:02");
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Subnet"], "172.17.0.0/16");
    assert_eq!(inspect[0]["IPAM"]["Config"][0]["Gateway"], "172.17.0.1");

    let script = format!(
        "set -e; ping -c 2 -W 5 172.17.0.2; ping -c 2 -W 5 172.17.0.1; \
         python3 {peer} client 172.17.0.2 {} 172.17.255.255; ip neigh show 172.17.0.1",
        6 * 1024 * 1024 + 12345
    );
    let o = output_within(
        &mut env.run_in(&["--name", "cli", "--mtu", mtu], &["sh", "-c", &script]),
        T,
    );
    assert_ok(&o, "client container");
    let client_out = stdout(&o);
    assert!(client_out.contains("udp ok"), "{client_out}");
    assert!(
        client_out.contains("lladdr 02:42:ac:11:00:01"),
        "the gateway's MAC in the neighbour table: {client_out}"
    );
    let sent = client_out
        .lines()
        .find(|l| l.starts_with("tcp "))
        .expect("client reported its transfer")
        .to_string();
    assert!(server.wait(T).success(), "server: {}", server.output());
    let received = server.output();
    assert!(
        received.contains(&format!("{sent} from 172.17.0.3")),
        "sent {sent}, server saw:\n{received}"
    );
    assert!(
        received.contains("bcast hello-bcast from 172.17.0.3"),
        "{received}"
    );

    // Both containers are gone: their addresses are released (the daemon
    // notices each `run` leaving when its control connection closes).
    wait_until(T, "both endpoints detached", || {
        let v = json(&output_within(&mut env.ctl(&["network", "inspect"]), T));
        v[0]["Containers"].as_object().unwrap().is_empty()
    });
    let stats = json(&output_within(&mut env.ctl(&["stats", "--json"]), T));
    assert_eq!(stats["ports"].as_array().unwrap().len(), 0);
    let gw = &stats["networks"][0]["gateway"];
    assert!(gw["arp_replies"].as_u64().unwrap() >= 1, "{gw}");
    assert!(gw["echo_replies"].as_u64().unwrap() >= 2, "{gw}");
}

#[test]
fn two_containers_as_root_or_current_user() {
    two_containers(As::Me, "65520");
}

#[test]
fn two_containers_as_unprivileged_user() {
    two_containers(As::Unprivileged, "65520");
}

#[test]
fn two_containers_at_docker_mtu() {
    two_containers(As::Unprivileged, "1500");
}

#[test]
fn fdb_and_stats_show_live_ports() {
    let env = Env::new(As::Unprivileged);
    let _daemon = env.daemon();
    let mut a = Proc::spawn_logged(
        &mut env.run_in(
            &["--name", "a"],
            &[
                "sh",
                "-c",
                "ping -c 1 -W 5 172.17.0.1 && echo up && sleep 30",
            ],
        ),
        &env.dir.join("a.log"),
        "container a",
    );
    a.wait_for_output("up", T);
    let fdb = json(&output_within(
        &mut env.ctl(&["fdb", "default", "--json"]),
        T,
    ));
    let rows = fdb[0]["fdb"].as_array().unwrap();
    assert!(
        rows.iter()
            .any(|r| r["mac"] == "02:42:ac:11:00:02" && r["port_name"] == "a"),
        "{fdb}"
    );
    let table = stdout(&output_within(&mut env.ctl(&["fdb"]), T));
    assert!(table.contains("02:42:ac:11:00:02"), "{table}");
    let stats = json(&output_within(&mut env.ctl(&["stats", "--json"]), T));
    let port = &stats["ports"][0];
    assert_eq!(port["name"], "a");
    assert_eq!(port["kind"], "tap");
    assert_eq!(port["offloads"], true);
    assert!(port["counters"]["rx_packets"].as_u64().unwrap() >= 2);
    assert!(port["counters"]["tx_packets"].as_u64().unwrap() >= 2);
    let table = stdout(&output_within(&mut env.ctl(&["stats"]), T));
    assert!(table.contains("RX PKTS"), "{table}");
    let ls = stdout(&output_within(&mut env.ctl(&["network", "ls"]), T));
    assert!(
        ls.contains("default") && ls.contains("172.17.0.0/16"),
        "{ls}"
    );

    // Killing `lanyard run` outright still detaches the endpoint.
    a.signal(libc::SIGKILL);
    a.wait(T);
    wait_until(T, "endpoint detached", || {
        let v = json(&output_within(
            &mut env.ctl(&["network", "inspect", "default"]),
            T,
        ));
        v[0]["Containers"].as_object().unwrap().is_empty()
    });
}

#[test]
fn signals_reach_the_command() {
    let env = Env::new(As::Unprivileged);
    let mut p = Proc::spawn_logged(
        &mut env.lanyard(&[
            "run",
            "--",
            "sh",
            "-c",
            "trap 'echo got-term; exit 42' TERM; echo armed; while :; do sleep 0.1; done",
        ]),
        &env.dir.join("sig.log"),
        "trap container",
    );
    p.wait_for_output("armed", T);
    p.signal(libc::SIGTERM);
    let st = p.wait(T);
    assert_eq!(st.code(), Some(42), "{}", p.output());
    assert!(p.output().contains("got-term"));
}

#[test]
fn names_are_unique_and_bad_arguments_exit_125_from_run_and_2_from_the_rest() {
    let env = Env::new(As::Unprivileged);
    let _daemon = env.daemon();
    let mut a = Proc::spawn_logged(
        &mut env.run_in(&["--name", "dup"], &["sh", "-c", "echo up; sleep 30"]),
        &env.dir.join("a.log"),
        "first",
    );
    a.wait_for_output("up", T);
    let o = output_within(&mut env.run_in(&["--name", "dup"], &["true"]), T);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("the name 'dup' is already in use"),
        "{}",
        stderr(&o)
    );
    let o = output_within(&mut env.run_in(&["--ip", "172.17.0.2"], &["true"]), T);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--ip: 172.17.0.2 is already in use"),
        "{}",
        stderr(&o)
    );
    let o = output_within(&mut env.run_in(&["--ip", "10.1.1.1"], &["true"]), T);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("outside the network's subnet"),
        "{}",
        stderr(&o)
    );
    let o = output_within(&mut env.run_in(&["--network", "nope"], &["true"]), T);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("--network"), "{}", stderr(&o));
    // The failed attempts changed nothing: one container, one address.
    let v = json(&output_within(
        &mut env.ctl(&["network", "inspect", "default"]),
        T,
    ));
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 1);
    // A requested free address is honoured.
    let o = output_within(
        &mut env.run_in(
            &["--ip", "172.17.0.77"],
            &["sh", "-c", "ip -o addr show eth0"],
        ),
        T,
    );
    assert_ok(&o, "--ip");
    assert!(stdout(&o).contains("172.17.0.77/16"));

    for (args, needle) in [
        (vec!["run", "--mtu", "100", "--", "true"], "--mtu"),
        (vec!["run", "--name", "bad name", "--", "true"], "--name"),
        (vec!["run", "--ip", "999.1.1.1", "--", "true"], "--ip"),
        (vec!["run"], "CMD"),
        (vec!["frobnicate"], "frobnicate"),
    ] {
        let o = output_within(&mut env.lanyard(&args), T);
        // `run` exits 125 on bad arguments, as docker's; the rest 2.
        let want = if args.first() == Some(&"run") { 125 } else { 2 };
        assert_eq!(o.status.code(), Some(want), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
}

#[test]
fn config_errors_name_the_field_and_exit_125_from_run_and_2_from_the_rest() {
    let env = Env::new(As::Me);
    for (text, needle) in [
        ("[limits]\nmax_portz = 1\n", "max_portz"),
        (
            "[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/16\"\n[[network]]\nname = \"b\"\nsubnet = \"10.0.5.0/24\"\n",
            "network[1].subnet",
        ),
        (
            "[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/16\"\ngateway = \"10.1.0.1\"\n",
            "network[0].gateway",
        ),
        ("[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/33\"\n", "network[0].subnet"),
        ("[[network]]\nname = \"a\"\nsubnet = \"10.0.0.0/16\"\nmtu = 70000\n", "network[0].mtu"),
        ("not toml at all [", "line 1"),
        ("[dataplane]\nthreads = 65\n", "dataplane.threads"),
        ("[dataplane]\nthreads = \"many\"\n", "line 2"),
    ] {
        let path = env.dir.join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.to_str().unwrap();
        for args in [
            vec!["daemon", "--config", p, "--socket", env.socket.to_str().unwrap()],
            vec!["run", "--config", p, "--", "true"],
        ] {
            let o = output_within(&mut env.lanyard(&args), T);
            let want = if args[0] == "run" { 125 } else { 2 };
            assert_eq!(o.status.code(), Some(want), "{text}: {}", stderr(&o));
            assert!(stderr(&o).contains(needle), "{text}: {}", stderr(&o));
        }
    }
    for args in [
        vec!["daemon", "--socket", env.socket.to_str().unwrap()],
        vec!["run", "--", "true"],
    ] {
        let o = output_within(env.lanyard(&args).env("LANYARD_THREADS", "lots"), T);
        let want = if args[0] == "run" { 125 } else { 2 };
        assert_eq!(o.status.code(), Some(want), "{}", stderr(&o));
        assert!(stderr(&o).contains("LANYARD_THREADS"), "{}", stderr(&o));
    }
    let o = output_within(
        &mut env.lanyard(&[
            "daemon",
            "--threads",
            "65",
            "--socket",
            env.socket.to_str().unwrap(),
        ]),
        T,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--threads"), "{}", stderr(&o));
    assert!(!env.socket.exists(), "no daemon started on a bad config");
}

#[test]
fn control_socket_is_private_and_single() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(As::Unprivileged);
    let _daemon = env.daemon();
    let mode = std::fs::metadata(&env.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let dir_mode = std::fs::metadata(env.socket.parent().unwrap())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(dir_mode & 0o077, 0);
    let o = output_within(
        &mut env.lanyard(&["daemon", "--socket", env.socket.to_str().unwrap()]),
        T,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("already listening"), "{}", stderr(&o));
}

#[test]
fn daemon_stops_cleanly_on_sigterm() {
    let env = Env::new(As::Unprivileged);
    let mut d = env.daemon();
    d.signal(libc::SIGTERM);
    assert!(d.wait(T).success(), "{}", d.output());
    assert!(!env.socket.exists(), "socket removed");
}

/// An existing veth attached through AF_PACKET: a namespace on the other
/// end talks to a container and the gateway, including a TCP transfer with
/// offloads on both sides. Everything runs inside a user+network namespace
/// made for the test (`unshare -Urn`), so it needs no root.
#[test]
fn veth_attached_through_af_packet() {
    let env = Env::new(As::Unprivileged);
    let peer = env.peer();
    let bin = env.bin.display().to_string();
    let sock = env.dir.join("run/veth.sock").display().to_string();
    let script = format!(
        r#"
set -eu
B={bin}; S={sock}; D=""
ip link set lo up
ip link add vh type veth peer name vc
unshare -n sleep 120 &
HOLD=$!
trap 'kill $HOLD $D 2>/dev/null || true' EXIT
sleep 0.2
ip link set vc netns $HOLD
NS="nsenter -t $HOLD -n"
$NS ip link set lo up
$NS ip addr add 172.17.0.200/16 dev vc
$NS ip link set vc up
ip link set vh up
$B daemon --socket $S &
D=$!
for i in $(seq 100); do $B network ls --socket $S >/dev/null 2>&1 && break; sleep 0.1; done
$B attach --socket $S --network default vh
$NS ping -c 2 -W 5 172.17.0.1
$NS ip neigh show 172.17.0.1
$NS timeout 50 python3 {peer} server > srv.out 2>&1 &
SRV=$!
sleep 0.5
$B run --socket $S --name c -- sh -c 'ping -c 2 -W 5 172.17.0.200 && python3 {peer} client 172.17.0.200 5000000 172.17.255.255'
wait $SRV
cat srv.out
$B stats --socket $S --json | grep -q '"af_packet"'
$B detach --socket $S vh
echo veth-test-done
"#
    );
    let mut c = match env.user {
        Some((uid, gid)) => {
            let mut c = std::process::Command::new("setpriv");
            c.arg(format!("--reuid={uid}"))
                .arg(format!("--regid={gid}"))
                .arg("--clear-groups")
                .arg("--")
                .arg("unshare");
            c
        }
        None => std::process::Command::new("unshare"),
    };
    c.args(["-Urn", "--", "sh", "-c", &script])
        .current_dir(env.dir.join("run"))
        .env_remove("XDG_RUNTIME_DIR");
    let o = output_within(&mut c, Duration::from_secs(90));
    assert_ok(&o, "veth scenario");
    let s = stdout(&o);
    assert!(s.contains("lladdr 02:42:ac:11:00:01"), "{s}");
    let sent = s
        .lines()
        .find(|l| l.starts_with("tcp 5000000 "))
        .expect("client line");
    assert!(s.contains(&format!("{sent} from 172.17.0.2")), "{s}");
    assert!(s.contains("udp ok"), "{s}");
    assert!(s.contains("bcast hello-bcast from 172.17.0.2"), "{s}");
    assert!(s.contains("veth-test-done"), "{s}");
}

/// A failed attach (here: an fd that is not a TAP) must leave nothing
/// behind: the next container still gets the first address.
#[test]
fn a_failed_attach_changes_nothing() {
    use lanyard::control::client::{Client, ClientError};
    use lanyard::control::{AttachRequest, Request};
    use std::os::fd::AsRawFd;
    let env = Env::new(As::Me);
    let _daemon = env.daemon();
    let mut c = Client::connect(&env.socket).unwrap();
    let not_a_tap = std::fs::File::open("/dev/null").unwrap();
    for i in 0..3 {
        let r = c.request(
            &Request::Attach(AttachRequest {
                container_id: format!("abc{i}"),
                name: Some(format!("ghost{i}")),
                network: "default".into(),
                ip: None,
                ip6: None,
                mtu: None,
                allow_host_loopback: None,
                publish: Vec::new(),
                aliases: Vec::new(),
                ifname: None,
                pid: None,
                mac: None,
                sole_tenant: false,
                dns: Vec::new(),
            }),
            &[not_a_tap.as_raw_fd()],
        );
        match r {
            Err(ClientError::Control(e)) => assert!(e.message.contains("not usable"), "{e}"),
            other => panic!("attach with /dev/null: {other:?}"),
        }
    }
    // An attach without any fd is refused too.
    let r = c.request(
        &Request::Attach(AttachRequest {
            container_id: "nofd".into(),
            name: None,
            network: "default".into(),
            ip: None,
            ip6: None,
            mtu: None,
            allow_host_loopback: None,
            publish: Vec::new(),
            aliases: Vec::new(),
            ifname: None,
            pid: None,
            mac: None,
            sole_tenant: false,
            dns: Vec::new(),
        }),
        &[],
    );
    match r {
        Err(ClientError::Control(e)) => assert!(e.message.contains("must carry a TAP fd"), "{e}"),
        other => panic!("attach without an fd: {other:?}"),
    }
    let o = output_within(
        &mut env.run_in(&["--name", "ghost0"], &["sh", "-c", "ip -o addr show eth0"]),
        T,
    );
    assert_ok(&o, "run after failed attaches");
    assert!(
        stdout(&o).contains("172.17.0.2/16"),
        "address leaked: {}",
        stdout(&o)
    );
}

/// `lanyard run` hands a container's TAP only to a daemon of its own user
/// (or root): another user's socket is refused, whatever its path.
#[test]
fn run_refuses_a_daemon_of_another_user() {
    if euid() != 0 {
        eprintln!("skipped: needs root to run a daemon as another user");
        return;
    }
    let theirs = Env::new(As::Unprivileged);
    let _daemon = theirs.daemon();
    let me = Env::new(As::Me);
    let s = theirs.socket.to_str().unwrap();
    let o = output_within(&mut me.lanyard(&["run", "--socket", s, "--", "true"]), T);
    assert_eq!(o.status.code(), Some(125), "{}", stderr(&o));
    assert!(stderr(&o).contains("refusing"), "{}", stderr(&o));
    let v = json(&output_within(
        &mut theirs.ctl(&["network", "inspect", "default"]),
        T,
    ));
    assert!(v[0]["Containers"].as_object().unwrap().is_empty());
    // The daemon's own user runs on the same socket: it was the user that
    // was refused, not a daemon that takes no one.
    let o = output_within(
        &mut theirs.run_in(&[], &["sh", "-c", "ip -o addr show eth0"]),
        T,
    );
    assert_ok(&o, "run as the daemon's own user");
    assert!(stdout(&o).contains("172.17.0.2/16"), "{}", stdout(&o));
}

/// Logging to a closed pipe (`lanyard daemon 2>&1 | head -1`, a dead log
/// collector) must not take the switch down.
#[test]
fn a_broken_stderr_does_not_stop_the_daemon() {
    let env = Env::new(As::Me);
    let mut c = env.lanyard(&["daemon", "--socket", env.socket.to_str().unwrap()]);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stderr.take()); // the reader goes away
    let mut d = Proc {
        child,
        name: "daemon".into(),
        log: None,
    };
    wait_until(T, "daemon socket", || {
        env.ctl(&["network", "ls"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    });
    // Attaching and detaching a container makes the daemon log both.
    let o = output_within(
        &mut env.run_in(&[], &["ping", "-c", "1", "-W", "5", "172.17.0.1"]),
        T,
    );
    assert_ok(&o, "container on a daemon with a broken stderr");
    let o = output_within(
        &mut env.run_in(&[], &["ping", "-c", "1", "-W", "5", "172.17.0.1"]),
        T,
    );
    assert_ok(&o, "second container");
    assert!(d.child.try_wait().unwrap().is_none(), "the daemon died");
}

/// A socket path the user chose is used as it is: its directory (shared,
/// like /tmp) keeps its permissions.
#[test]
fn a_chosen_socket_path_leaves_its_directory_alone() {
    use std::os::unix::fs::PermissionsExt;
    let env = Env::new(As::Me);
    let shared = env.dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let sock = shared.join("my.sock");
    let mut d = Proc::spawn_logged(
        &mut env.lanyard(&["daemon", "--socket", sock.to_str().unwrap()]),
        &env.dir.join("d.log"),
        "daemon",
    );
    wait_until(T, "socket", || sock.exists());
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o1777, "the shared directory was changed");
    let smode = std::fs::metadata(&sock).unwrap().permissions().mode() & 0o777;
    assert_eq!(smode, 0o600);
    d.signal(libc::SIGTERM);
    d.wait(T);
}
