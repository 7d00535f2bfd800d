//! `lanyard fdb`, `stats` and `conntrack`: the switch's tables and
//! counters, as tables or JSON.

use clap::Args;

use lanyard::control::Request;

use super::{pretty, query, FormatArg, SocketArg};

#[derive(Args)]
pub(super) struct FdbArgs {
    /// Network name (default: all).
    network: Option<String>,
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    format: FormatArg,
}

#[derive(Args)]
pub(super) struct StatsArgs {
    #[command(flatten)]
    socket: SocketArg,
    #[command(flatten)]
    format: FormatArg,
}

pub(super) fn fdb(a: FdbArgs) -> u8 {
    query(
        &a.socket,
        &Request::Fdb {
            network: a.network.clone(),
        },
        |v| {
            if a.format.json() {
                outln!("{}", pretty(v));
                return;
            }
            outln!(
                "{:<12} {:<19} {:<6} {:<16} {:<8} AGE",
                "NETWORK",
                "MAC",
                "PORT",
                "PORT NAME",
                "TYPE"
            );
            for n in v.as_array().into_iter().flatten() {
                for e in n["fdb"].as_array().into_iter().flatten() {
                    let is_static = e["is_static"].as_bool().unwrap_or(false);
                    outln!(
                        "{:<12} {:<19} {:<6} {:<16} {:<8} {}",
                        n["name"].as_str().unwrap_or(""),
                        e["mac"].as_str().unwrap_or(""),
                        e["port"],
                        e["port_name"].as_str().unwrap_or(""),
                        if is_static { "static" } else { "learned" },
                        if is_static {
                            "-".to_string()
                        } else {
                            format!("{:.1}s", e["age_secs"].as_f64().unwrap_or(0.0))
                        }
                    );
                }
            }
        },
    )
}

pub(super) fn conntrack(a: StatsArgs) -> u8 {
    query(&a.socket, &Request::Conntrack {}, |v| {
        if a.format.json() {
            outln!("{}", pretty(v));
            return;
        }
        outln!(
            "{:<5} {:<22} {:<22} {:<22} {:<12} {:>12} {:>12} {:>8}",
            "PROTO",
            "CONTAINER",
            "REMOTE",
            "TARGET",
            "STATE",
            "BYTES OUT",
            "BYTES IN",
            "AGE"
        );
        for f in v.as_array().into_iter().flatten() {
            outln!(
                "{:<5} {:<22} {:<22} {:<22} {:<12} {:>12} {:>12} {:>7.1}s",
                f["proto"].as_str().unwrap_or(""),
                f["container"].as_str().unwrap_or(""),
                f["remote"].as_str().unwrap_or(""),
                f["target"].as_str().unwrap_or(""),
                f["state"].as_str().unwrap_or(""),
                f["bytes_out"],
                f["bytes_in"],
                f["age_secs"].as_f64().unwrap_or(0.0)
            );
        }
    })
}

pub(super) fn sandbox(a: StatsArgs) -> u8 {
    query(&a.socket, &Request::Sandbox {}, |v| {
        if a.format.json() {
            outln!("{}", pretty(v));
            return;
        }
        outln!("{}", v["sandbox"].as_str().unwrap_or(""));
        outln!("{:<48} {:<10} OUTCOME", "PROBE", "SANDBOXED");
        for p in v["probes"].as_array().into_iter().flatten() {
            outln!(
                "{:<48} {:<10} {}",
                p["probe"].as_str().unwrap_or(""),
                p["when_sandboxed"].as_str().unwrap_or(""),
                p["outcome"].as_str().unwrap_or("")
            );
        }
    })
}

pub(super) fn stats(a: StatsArgs) -> u8 {
    query(&a.socket, &Request::Stats {}, |v| {
        if a.format.json() {
            outln!("{}", pretty(v));
            return;
        }
        // Which thread reads a port matters only when there are several.
        let threaded = v["dataplane_threads"].as_u64().unwrap_or(1) > 1;
        outln!(
            "{:<5} {:<16} {:<9} {:<12} {:>12} {:>14} {:>12} {:>14} {:>9}{}",
            "PORT",
            "NAME",
            "KIND",
            "NETWORK",
            "RX PKTS",
            "RX BYTES",
            "TX PKTS",
            "TX BYTES",
            "DROPS",
            if threaded { " SHARD" } else { "" }
        );
        let ports = v["ports"].as_array().cloned().unwrap_or_default();
        for p in &ports {
            let c = &p["counters"];
            let drops: u64 = c["drops"]
                .as_object()
                .map(|m| m.values().filter_map(|x| x.as_u64()).sum())
                .unwrap_or(0);
            let shard = if threaded {
                format!(" {:>5}", p["shard"])
            } else {
                String::new()
            };
            outln!(
                "{:<5} {:<16} {:<9} {:<12} {:>12} {:>14} {:>12} {:>14} {:>9}{shard}{}",
                p["id"],
                p["name"].as_str().unwrap_or(""),
                p["kind"].as_str().unwrap_or(""),
                p["network"].as_str().unwrap_or(""),
                c["rx_packets"],
                c["rx_bytes"],
                c["tx_packets"],
                c["tx_bytes"],
                drops,
                if p["dead"].as_bool() == Some(true) {
                    "  (gone)"
                } else {
                    ""
                }
            );
        }
        let mut any = false;
        for p in &ports {
            for (reason, n) in p["counters"]["drops"].as_object().into_iter().flatten() {
                if !any {
                    outln!("\nDROPS BY REASON");
                    any = true;
                }
                outln!(
                    "  port {:<5} {:<16} {:<24} {}",
                    p["id"],
                    p["name"].as_str().unwrap_or(""),
                    reason,
                    n
                );
            }
        }
        if let Some(nat) = v["nat"].as_object() {
            let items: Vec<String> = nat.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!("\nnat: flows={} {}", v["nat_flows"], items.join(" "));
        }
        if let Some(dns) = v["dns"].as_object() {
            let items: Vec<String> = dns.iter().map(|(k, v)| format!("{k}={v}")).collect();
            outln!("dns: {}", items.join(" "));
        }
        for n in v["networks"].as_array().into_iter().flatten() {
            let g = &n["gateway"];
            let f = &n["fdb_counters"];
            outln!(
                "\nnetwork {}: gateway arp_replies={} echo_replies={} unreachables_sent={} resets_sent={}; fdb entries={}/{} learned={} moved={} refused_full={} aged_out={}",
                n["name"].as_str().unwrap_or(""),
                g["arp_replies"], g["echo_replies"], g["unreachables_sent"], g["resets_sent"],
                n["fdb"].as_array().map_or(0, |a| a.len()), n["fdb_max_entries"],
                f["learned"], f["moved"], f["refused_full"], f["aged_out"]
            );
        }
    })
}
