//! What a docker user types, working unchanged: the default network's
//! docker name (`bridge`), `--network-alias`, `network connect` and
//! `disconnect`, `--format json`, `run`'s resolver and hosts flags
//! (`--dns-search`, `--dns-option`, `--add-host` with `host-gateway`), and
//! `run`'s exit code 125 for what it refuses — each next to what must be
//! refused, in the same run. Real `lanyard run` containers in namespaces
//! the tests make; no traffic leaves them.

mod common;

use std::time::Duration;

use common::harness::*;

const T: Duration = Duration::from_secs(60);

#[test]
fn the_default_network_answers_to_bridge_and_bridge_host_none_cannot_be_made() {
    let env = Env::new(As::Unprivileged);
    let _daemon = env.daemon();
    // `bridge` is the default network wherever a network is named.
    let bridge = json(&output_within(
        env.ctl(&["network", "inspect", "bridge"]),
        T,
    ));
    let default = json(&output_within(
        env.ctl(&["network", "inspect", "default"]),
        T,
    ));
    assert_eq!(bridge[0]["Id"], default[0]["Id"], "{bridge}");
    let mut c = Proc::spawn_logged(
        &mut env.run_in(
            &[
                "--name",
                "web",
                "--network",
                "bridge",
                "--network-alias",
                "www",
            ],
            &["sh", "-c", "ip -o -4 addr show eth0; echo up; sleep 30"],
        ),
        &env.dir.join("web.log"),
        "web",
    );
    c.wait_for_output("up", T);
    assert!(c.output().contains("172.17.0."), "{}", c.output());
    let v = json(&output_within(
        env.ctl(&["network", "inspect", "bridge"]),
        T,
    ));
    let names: Vec<&str> = v[0]["Containers"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web"], "{v}");
    // The alias resolves from a neighbour, on the network named either way.
    let o = output_within(
        env.run_in(&["--network", "default"], &["getent", "ahostsv4", "www"]),
        T,
    );
    assert_ok(&o, "getent hosts www");
    assert!(stdout(&o).starts_with("172.17.0.2 "), "{}", stdout(&o));
    // `network connect` / `disconnect` beside the top-level verbs, with
    // `--network-alias`.
    let o = output_within(env.ctl(&["network", "create", "side"]), T);
    assert_ok(&o, "network create side");
    let o = output_within(
        env.ctl(&["network", "connect", "--network-alias", "w2", "side", "web"]),
        T,
    );
    assert_ok(&o, "network connect side web");
    let v = json(&output_within(env.ctl(&["network", "inspect", "side"]), T));
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 1, "{v}");
    let o = output_within(
        env.run_in(&["--network", "side"], &["getent", "ahostsv4", "w2"]),
        T,
    );
    assert_ok(&o, "getent hosts w2 on side");
    let o = output_within(env.ctl(&["network", "disconnect", "side", "web"]), T);
    assert_ok(&o, "network disconnect side web");
    let v = json(&output_within(env.ctl(&["network", "inspect", "side"]), T));
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 0, "{v}");
    // Disconnecting again is refused (exit 2), state unchanged.
    let o = output_within(env.ctl(&["network", "disconnect", "side", "web"]), T);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    // docker's reserved names cannot be made; nothing was made.
    for name in ["bridge", "host", "none"] {
        let o = output_within(env.ctl(&["network", "create", name]), T);
        assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(&o));
        assert!(stderr(&o).contains("pre-defined"), "{name}: {}", stderr(&o));
    }
    // `--format json` is `--json`; `--format` of anything else is refused.
    let a = json(&output_within(
        env.ctl(&["network", "ls", "--format", "json"]),
        T,
    ));
    let b = json(&output_within(env.ctl(&["network", "ls", "--json"]), T));
    assert_eq!(
        a.as_array().unwrap().len(),
        b.as_array().unwrap().len(),
        "{a} vs {b}"
    );
    assert_eq!(a.as_array().unwrap().len(), 2, "{a}");
    for args in [
        vec!["stats", "--format", "json"],
        vec!["conntrack", "--format", "json"],
        vec!["fdb", "--format", "json"],
        vec!["port", "ls", "--format", "json"],
    ] {
        let o = output_within(env.ctl(&args), T);
        assert_ok(&o, &format!("{args:?}"));
        let _ = json(&o);
    }
    let o = output_within(env.ctl(&["network", "ls", "--format", "{{.Name}}"]), T);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--format"), "{}", stderr(&o));
    c.signal(libc::SIGTERM);
    c.wait(T);
}

#[test]
fn run_writes_dns_search_options_and_add_host_and_refuses_bad_ones_with_125() {
    let env = Env::new(As::Unprivileged);
    let _daemon = env.daemon();
    let o = output_within(
        env.run_in(
            &[
                "--dns-search",
                "a.test",
                "--dns-search",
                "b.test",
                "--dns-option",
                "ndots:3",
                "--add-host",
                "db:10.9.9.9",
                "--add-host",
                "v6=fd00::99",
                "--add-host",
                "host.docker.internal:host-gateway",
            ],
            &[
                "sh",
                "-c",
                "cat /etc/resolv.conf; echo ---; cat /etc/hosts; echo ---; getent hosts db v6",
            ],
        ),
        T,
    );
    assert_ok(&o, "run with --dns-search, --dns-option, --add-host");
    let out = stdout(&o);
    let mut parts = out.split("---\n");
    let resolv = parts.next().unwrap();
    let hosts = parts.next().unwrap();
    let got = parts.next().unwrap_or("");
    assert!(resolv.contains("nameserver 172.17.0.1\n"), "{resolv}");
    assert!(resolv.contains("search a.test b.test\n"), "{resolv}");
    assert!(resolv.contains("options ndots:3\n"), "{resolv}");
    assert_eq!(resolv.matches("search ").count(), 1, "{resolv}");
    assert!(hosts.contains("10.9.9.9\tdb\n"), "{hosts}");
    assert!(hosts.contains("fd00::99\tv6\n"), "{hosts}");
    // host-gateway: the gateway, which is the host for lanyard (both
    // families on the dual-stack default network).
    assert!(
        hosts.contains("172.17.0.1\thost.docker.internal\n"),
        "{hosts}"
    );
    assert!(
        got.contains("10.9.9.9") && got.contains("fd00::99"),
        "{got}"
    );
    // `.` as the search domain: none, not even the host's.
    let o = output_within(
        env.run_in(&["--dns-search", "."], &["cat", "/etc/resolv.conf"]),
        T,
    );
    assert_ok(&o, "--dns-search .");
    assert!(!stdout(&o).contains("search"), "{}", stdout(&o));
    // What is refused: exit 125, naming the flag, and no container left.
    for (args, needle) in [
        (vec!["--add-host", "db"], "--add-host"),
        (vec!["--add-host", "db:1.2.3"], "--add-host"),
        (vec!["--add-host", "bad host:1.2.3.4"], "--add-host"),
        (vec!["--dns-search", "a b"], "--dns-search"),
        (vec!["--dns-option", "nd ots"], "--dns-option"),
        (vec!["--network", "nope"], "--network"),
        (vec!["--frobnicate"], "--frobnicate"),
    ] {
        let o = output_within(env.run_in(&args, &["true"]), T);
        assert_eq!(o.status.code(), Some(125), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(needle), "{args:?}: {}", stderr(&o));
    }
    let v = json(&output_within(
        env.ctl(&["network", "inspect", "bridge"]),
        T,
    ));
    assert_eq!(v[0]["Containers"].as_object().unwrap().len(), 0, "{v}");
    // `run --help` is not an error.
    let o = output_within(env.lanyard(&["run", "--help"]), T);
    assert_ok(&o, "run --help");
    assert!(stdout(&o).contains("--add-host"), "{}", stdout(&o));
}
