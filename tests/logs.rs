//! The daemon's log: one line per record with an RFC 3339 UTC timestamp,
//! the level and the target; a line when a container starts and one when
//! it stops, with its addresses and ports; `RUST_LOG` honoured beside
//! `LANYARD_LOG` (which wins), and a malformed value falling back to the
//! configured level rather than silencing the daemon.

mod common;

use std::time::Duration;

use common::harness::*;

const T: Duration = Duration::from_secs(60);

/// Whether `line` starts `YYYY-MM-DDTHH:MM:SS.mmmZ LEVEL target: `.
fn well_formed(line: &str) -> bool {
    let b = line.as_bytes();
    if b.len() < 30 {
        return false;
    }
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    let stamp = digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19)
        && b[19] == b'.'
        && digits(20..23)
        && &line[23..25] == "Z ";
    let rest = &line[25..];
    let level = ["ERROR ", "WARN  ", "INFO  ", "DEBUG ", "TRACE "]
        .iter()
        .any(|l| rest.starts_with(l));
    stamp && level && rest[6..].starts_with("lanyard") && rest[6..].contains(": ")
}

#[test]
fn the_log_has_timestamps_levels_targets_and_a_line_per_container_start_and_stop() {
    let env = Env::new(As::Unprivileged);
    let d = env.daemon();
    let o = output_within(
        env.run_in(&["--name", "logged", "-p", "127.0.0.1::80"], &["true"]),
        T,
    );
    assert_ok(&o, "run");
    wait_until(T, "the stop line", || {
        d.output().contains("container stopped: logged")
    });
    let log = d.output();
    for l in log.lines() {
        assert!(well_formed(l), "not a log line: {l:?}\n{log}");
    }
    let started = log
        .lines()
        .find(|l| l.contains("container started: logged"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(
        started.contains(" INFO  lanyard::control::attach: "),
        "{started}"
    );
    assert!(started.contains("on default eth0: 172.17.0.2"), "{started}");
    assert!(started.contains("fd00:172:17::2"), "{started}");
    assert!(started.contains("ports 127.0.0.1:"), "{started}");
    assert!(started.contains("->80/tcp"), "{started}");
    let stopped = log
        .lines()
        .find(|l| l.contains("container stopped: logged"))
        .unwrap();
    assert!(stopped.contains("172.17.0.2"), "{stopped}");
}

#[test]
fn rust_log_is_honoured_and_lanyard_log_wins() {
    let env = Env::new(As::Unprivileged);
    let sock = env.socket.to_str().unwrap().to_string();
    let start = |vars: &[(&str, &str)], name: &str| {
        let log = env.dir.join(format!("{name}.log"));
        let mut c = env.lanyard(&["daemon", "--socket", &sock]);
        c.env_remove("LANYARD_LOG");
        for (k, v) in vars {
            c.env(k, v);
        }
        let mut p = Proc::spawn_logged(&mut c, &log, name);
        wait_until(T, "socket", || env.socket.exists());
        // Every daemon logs at least its listening line at info.
        std::thread::sleep(Duration::from_millis(300));
        p.signal(libc::SIGTERM);
        p.wait(T);
        p.output()
    };
    // RUST_LOG=warn: no info lines.
    let out = start(&[("RUST_LOG", "warn")], "rust-warn");
    assert!(!out.contains("INFO"), "{out}");
    // A target directive: info from the daemon module only.
    let out = start(&[("RUST_LOG", "error,lanyard::daemon=info")], "targets");
    assert!(out.contains("INFO  lanyard::daemon: listening on"), "{out}");
    // LANYARD_LOG wins over RUST_LOG.
    let out = start(&[("RUST_LOG", "info"), ("LANYARD_LOG", "error")], "both");
    assert!(!out.contains("INFO"), "{out}");
    // A malformed value: the configured level (info), not silence.
    let out = start(&[("RUST_LOG", "lanyard=loud")], "bad");
    assert!(out.contains("INFO  lanyard::daemon: listening on"), "{out}");
}
