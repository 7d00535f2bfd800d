//! The real engines: rootless podman 4.3 and rootlesskit 1.1 (Debian 12)
//! with lanyard in slirp4netns's place, called as they call slirp4netns
//! (/work/shared/ENGINES.md). The checks are tests/engines/run.sh, proven
//! against the real slirp4netns (`sudo tests/engines/run.sh
//! /usr/bin/slirp4netns`); here it runs with lanyard, reached through a
//! symlink named `slirp4netns`, and with what lanyard must do beyond
//! slirp4netns 1.2: `-p [::1]:H:C` through the API socket, UDP replies to a
//! client on the host's loopback, and DNS through a fake upstream on
//! 127.0.0.1 (LANYARD_DNS_UPSTREAM; never the machine's real resolver).
//!
//! Needs root (the script runs the engines as LANYARD_ENGINE_USER) and the
//! engines; skips without them, unless LANYARD_REQUIRE_ENGINES=1
//! (scripts/test.sh sets it as root once it has installed them), then it
//! fails instead.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::harness::*;

/// The whole script: ~15 s on a 2-core VM; bounded well above that.
const LIMIT: Duration = Duration::from_secs(300);

const TOOLS: &[&str] = &[
    "podman",
    "runc",
    "conmon",
    "catatonit",
    "rootlesskit",
    "rootlessctl",
    "newuidmap",
    "busybox",
    "curl",
    "socat",
    "python3",
    "setpriv",
    "ss",
];

fn on_path(tool: &str) -> bool {
    let path = std::env::var("PATH").unwrap_or_default();
    path.split(':')
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].iter().copied())
        .any(|d| Path::new(d).join(tool).is_file())
}

/// Why the engines cannot run here, if they cannot.
fn missing() -> Option<String> {
    if euid() != 0 {
        return Some("not root (tests/engines/run.sh runs the engines as another user)".into());
    }
    let absent: Vec<&str> = TOOLS.iter().copied().filter(|t| !on_path(t)).collect();
    if !absent.is_empty() {
        return Some(format!(
            "not installed: {} (scripts/test.sh as root installs them)",
            absent.join(", ")
        ));
    }
    let user = std::env::var("LANYARD_ENGINE_USER").unwrap_or_else(|_| "lanyard-engines".into());
    let known = Command::new("id")
        .arg(&user)
        .output()
        .is_ok_and(|o| o.status.success());
    if !known {
        return Some(format!(
            "no user {user} (scripts/test.sh as root creates it)"
        ));
    }
    None
}

#[test]
fn podman_and_rootlesskit_with_lanyard_as_slirp4netns() {
    if let Some(why) = missing() {
        assert_ne!(
            std::env::var("LANYARD_REQUIRE_ENGINES").as_deref(),
            Ok("1"),
            "LANYARD_REQUIRE_ENGINES=1 but the engine tests cannot run: {why}"
        );
        eprintln!("skipped: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("lanyard-engines-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // podman and rootlesskit may look at the helper's name; lanyard picks
    // its slirp4netns mode from argv[0]. (The script copies it, by that
    // name, to where the engine user can run it.)
    let helper: PathBuf = dir.join("slirp4netns");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_lanyard"), &helper).unwrap();

    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines/run.sh");
    let mut c = Command::new(&script);
    c.arg(&helper)
        .env("EXPECT_IPV6_HOSTFWD", "1")
        .env("EXPECT_UDP_LOOPBACK_REPLY", "1")
        .env("ENGINES_DNS", "1")
        .env_remove("ENGINES_ONLY")
        .env_remove("ENGINES_KEEP");
    let o = output_within(c, LIMIT);
    let _ = std::fs::remove_dir_all(&dir);
    let out = stdout(&o);
    println!("{out}");
    assert_ok(&o, "tests/engines/run.sh with lanyard as slirp4netns");
    assert!(
        out.lines().any(|l| l.ends_with(" 0 failed, 0 skipped")),
        "every check ran and passed:\n{out}"
    );
}
