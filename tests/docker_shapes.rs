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

/// Compares `ours` with docker 28's `theirs` key by key: the same keys in
/// the same order at every level, `null`, `{}` and omitted alike, the
/// same types; values are compared only where docker's are fixed (the
/// caller checks those). `Containers` is keyed by ids: its first entries
/// are compared. Arrays: element by element, as far as both go (lanyard's
/// default network is dual stack: one Config entry more).
fn same_shape(ours: &serde_json::Value, theirs: &serde_json::Value, path: &str) {
    use serde_json::Value as V;
    match (ours, theirs) {
        (V::Object(a), V::Object(b)) if path.ends_with(".Containers") => {
            assert_eq!(a.len(), b.len(), "{path}: {ours} vs {theirs}");
            if let (Some((_, x)), Some((_, y))) = (a.iter().next(), b.iter().next()) {
                same_shape(x, y, &format!("{path}[0]"));
            }
        }
        (V::Object(a), V::Object(b)) => {
            let ka: Vec<&String> = a.keys().collect();
            let kb: Vec<&String> = b.keys().collect();
            assert_eq!(ka, kb, "{path}: keys (and their order) differ");
            for (k, v) in a {
                same_shape(v, &b[k], &format!("{path}.{k}"));
            }
        }
        (V::Array(a), V::Array(b)) => {
            assert!(!a.is_empty() && !b.is_empty(), "{path}: {ours} vs {theirs}");
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                same_shape(x, y, &format!("{path}[{i}]"));
            }
        }
        (V::Null, V::Null) | (V::Bool(_), V::Bool(_)) | (V::String(_), V::String(_)) => {}
        (V::Number(_), V::Number(_)) => {}
        _ => panic!("{path}: {ours} where docker 28 has {theirs}"),
    }
}

fn docker28(file: &str) -> serde_json::Value {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/docker28")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

#[test]
fn network_inspect_is_docker_28s_key_by_key() {
    let env = Env::new(As::Unprivileged);
    let _daemon = env.daemon();
    let mut web = Proc::spawn_logged(
        &mut env.run_in(&["--name", "web"], &["sh", "-c", "echo up; sleep 30"]),
        &env.dir.join("web.log"),
        "web",
    );
    web.wait_for_output("up", T);
    // The default network: docker's default bridge.
    let o = output_within(env.ctl(&["network", "inspect", "bridge"]), T);
    assert_ok(&o, "inspect bridge");
    // Printed as docker's CLI prints it: 4-space indentation.
    assert!(
        stdout(&o).starts_with("[\n    {\n        \"Name\": "),
        "{}",
        stdout(&o)
    );
    let ours = json(&o);
    let theirs = docker28("inspect-bridge.json");
    same_shape(&ours, &theirs, "bridge");
    let (a, b) = (&ours[0], &theirs[0]);
    for k in [
        "Scope",
        "Driver",
        "EnableIPv4",
        "Internal",
        "Attachable",
        "Ingress",
        "ConfigFrom",
        "ConfigOnly",
        "Labels",
    ] {
        assert_eq!(a[k], b[k], "{k}");
    }
    assert_eq!(a["IPAM"]["Driver"], b["IPAM"]["Driver"]);
    assert!(a["IPAM"]["Options"].is_null());
    assert_eq!(
        a["IPAM"]["Config"][0], b["IPAM"]["Config"][0],
        "172.17.0.0/16 via .1, no IPRange"
    );
    for k in [
        "com.docker.network.bridge.default_bridge",
        "com.docker.network.bridge.enable_icc",
        "com.docker.network.bridge.enable_ip_masquerade",
        "com.docker.network.bridge.host_binding_ipv4",
    ] {
        assert_eq!(a["Options"][k], b["Options"][k], "{k}");
    }
    let c = a["Containers"]
        .as_object()
        .unwrap()
        .values()
        .next()
        .unwrap();
    assert_eq!(c["Name"], "web");
    assert_eq!(c["IPv4Address"], "172.17.0.2/16");
    // Created: RFC 3339, UTC here, no trailing zeros in the fraction.
    let created = a["Created"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() >= 20, "{created}");
    if let Some((_, frac)) = created.trim_end_matches('Z').split_once('.') {
        assert!(!frac.ends_with('0') && frac.len() <= 9, "{created}");
    }
    // A plain user network (docker's defaults: IPv4 only, MTU 1500).
    for (args, file) in [
        (
            vec![
                "network",
                "create",
                "--ipv6=false",
                "--mtu",
                "1500",
                "mynet",
            ],
            "inspect-user.json",
        ),
        (
            vec![
                "network",
                "create",
                "--ipv6=false",
                "--mtu",
                "1500",
                "--subnet",
                "10.5.0.0/16",
                "--ip-range",
                "10.5.1.0/24",
                "--gateway",
                "10.5.0.1",
                "mynet-range",
            ],
            "inspect-user-subnet-iprange.json",
        ),
        (
            vec!["network", "create", "--ipv6", "--mtu", "1500", "mynet6"],
            "inspect-user-ipv6.json",
        ),
    ] {
        let name = *args.last().unwrap();
        let o = output_within(env.ctl(&args), T);
        assert_ok(&o, name);
        if name == "mynet6" {
            let o = output_within(env.ctl(&["connect", "mynet6", "web"]), T);
            assert_ok(&o, "connect web to mynet6");
        }
        let ours = json(&output_within(env.ctl(&["network", "inspect", name]), T));
        let theirs = docker28(file);
        same_shape(&ours, &theirs, name);
        assert_eq!(ours[0]["Options"], theirs[0]["Options"], "{name}: Options");
        assert_eq!(
            ours[0]["IPAM"]["Options"], theirs[0]["IPAM"]["Options"],
            "{name}"
        );
        assert_eq!(ours[0]["EnableIPv6"], theirs[0]["EnableIPv6"], "{name}");
    }
    let r = json(&output_within(
        env.ctl(&["network", "inspect", "mynet-range"]),
        T,
    ));
    assert_eq!(
        r[0]["IPAM"]["Config"],
        docker28("inspect-user-subnet-iprange.json")[0]["IPAM"]["Config"]
    );
    // An MTU other than docker's 1500 is stated, as `-o ...driver.mtu` is.
    let o = output_within(env.ctl(&["network", "create", "--ipv6=false", "big"]), T);
    assert_ok(&o, "big");
    let v = json(&output_within(env.ctl(&["network", "inspect", "big"]), T));
    assert_eq!(
        v[0]["Options"]["com.docker.network.driver.mtu"], "65520",
        "{v}"
    );
    web.signal(libc::SIGTERM);
    web.wait(T);
}
