//! Logging: the `log` facade, with a logger of lanyard's own that writes
//! one line per record to stderr — an RFC 3339 UTC timestamp, the level,
//! the target (the module that logged) and the message:
//!
//! ```text
//! 2026-12-03T09:12:01.123Z INFO  lanyard::control::attach: container web (1f2e3d4c5b6a) started on default: 172.17.0.2, fd00:172:17::2; ports 127.0.0.1:8080->80/tcp
//! ```
//!
//! What is written is chosen by directives in env_logger's syntax —
//! `LEVEL`, `TARGET=LEVEL`, comma-separated, the longest matching target
//! prefix winning (`warn,lanyard::nat=debug`) — from `LANYARD_LOG`, else
//! `RUST_LOG`, else the configured level (`[daemon] log_level`). The
//! daemon logs endpoint, port and container events at info; `lanyard
//! run` with its embedded switch stays quiet (warnings only) so the
//! container's own output is not interleaved with ours. A broken stderr
//! (a closed pipe) is ignored rather than allowed to panic the thread that
//! logs. Modules log with `log::info!` and friends, through `crate::log`
//! (these re-exports) or the `log` crate itself: the same records.

use std::io::Write as _;
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub use ::log::{debug, error, info, trace, warn};
use ::log::{LevelFilter, Metadata, Record};

/// The levels a config names (`[daemon] log_level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(u8)]
pub enum Level {
    Error = 0,
    Warn = 1,
    Info = 2,
    Debug = 3,
}

impl Level {
    pub fn parse(s: &str) -> Option<Level> {
        match s.to_ascii_lowercase().as_str() {
            "error" => Some(Level::Error),
            "warn" | "warning" => Some(Level::Warn),
            "info" => Some(Level::Info),
            "debug" => Some(Level::Debug),
            _ => None,
        }
    }

    fn filter(self) -> LevelFilter {
        match self {
            Level::Error => LevelFilter::Error,
            Level::Warn => LevelFilter::Warn,
            Level::Info => LevelFilter::Info,
            Level::Debug => LevelFilter::Debug,
        }
    }
}

/// One directive: records of `target` (a module path prefix; empty: all)
/// at `level` or more severe are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directive {
    pub target: String,
    pub level: LevelFilter,
}

/// Parses env_logger-style directives (`info`, `lanyard::nat=debug,warn`,
/// `off`); `None` when any part is not one, so a typo falls back to the
/// configured level rather than silencing the daemon.
pub fn parse_directives(s: &str) -> Option<Vec<Directive>> {
    let mut out = Vec::new();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (target, level) = match part.split_once('=') {
            Some((t, l)) => (t.trim(), l.trim()),
            // A bare word is a level if it is one, else a target at trace
            // (as env_logger reads `RUST_LOG=lanyard`).
            None => match level_filter(part) {
                Some(_) => ("", part),
                None => (part, "trace"),
            },
        };
        if target.contains(|c: char| c.is_whitespace()) {
            return None;
        }
        out.push(Directive {
            target: target.to_string(),
            level: level_filter(level)?,
        });
    }
    (!out.is_empty()).then_some(out)
}

fn level_filter(s: &str) -> Option<LevelFilter> {
    match s.to_ascii_lowercase().as_str() {
        "off" | "none" => Some(LevelFilter::Off),
        "error" => Some(LevelFilter::Error),
        "warn" | "warning" => Some(LevelFilter::Warn),
        "info" => Some(LevelFilter::Info),
        "debug" => Some(LevelFilter::Debug),
        "trace" => Some(LevelFilter::Trace),
        _ => None,
    }
}

/// The level for `target`: the directive with the longest matching prefix
/// (at a `::` boundary), else the bare level, else off.
fn level_for(directives: &[Directive], target: &str) -> LevelFilter {
    directives
        .iter()
        .filter(|d| {
            d.target.is_empty()
                || target == d.target
                || target
                    .strip_prefix(d.target.as_str())
                    .is_some_and(|r| r.starts_with("::"))
        })
        .max_by_key(|d| d.target.len())
        .map_or(LevelFilter::Off, |d| d.level)
}

struct Logger {
    directives: RwLock<Vec<Directive>>,
}

static LOGGER: Logger = Logger {
    directives: RwLock::new(Vec::new()),
};

impl ::log::Log for Logger {
    fn enabled(&self, m: &Metadata<'_>) -> bool {
        let d = self.directives.read().unwrap_or_else(|p| p.into_inner());
        m.level() <= level_for(&d, m.target())
    }

    fn log(&self, r: &Record<'_>) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let _ = writeln!(
            std::io::stderr().lock(),
            "{} {:<5} {}: {}",
            Rfc3339(now),
            r.level(),
            r.target(),
            r.args()
        );
    }

    fn flush(&self) {}
}

/// Sets what is logged: `LANYARD_LOG`'s directives, else `RUST_LOG`'s,
/// else everything at `level` or more severe. Installs the logger on the
/// first call; later calls (the embedded switch's quieter level) replace
/// the directives.
pub fn set_level(level: Level) {
    let from_env = ["LANYARD_LOG", "RUST_LOG"]
        .iter()
        .find_map(|k| std::env::var(k).ok().and_then(|v| parse_directives(&v)));
    let directives = from_env.unwrap_or_else(|| {
        vec![Directive {
            target: String::new(),
            level: level.filter(),
        }]
    });
    let max = directives
        .iter()
        .map(|d| d.level)
        .max()
        .unwrap_or(LevelFilter::Off);
    *LOGGER.directives.write().unwrap_or_else(|p| p.into_inner()) = directives;
    // Fails only when a logger is set already: ours, from an earlier call.
    let _ = ::log::set_logger(&LOGGER);
    ::log::set_max_level(max);
}

/// A time since the epoch as RFC 3339 UTC with milliseconds.
struct Rfc3339(std::time::Duration);

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secs = self.0.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = crate::time::civil_from_days(days as i64);
        write!(
            f,
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
            rem / 3600,
            rem % 3600 / 60,
            rem % 60,
            self.0.subsec_millis()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let t = |s: u64, ms: u32| Rfc3339(std::time::Duration::new(s, ms * 1_000_000)).to_string();
        assert_eq!(t(0, 0), "1970-01-01T00:00:00.000Z");
        assert_eq!(t(951_782_400, 5), "2000-02-29T00:00:00.005Z");
        assert_eq!(t(1_796_289_121, 123), "2026-12-03T09:12:01.123Z");
    }

    #[test]
    fn directives_parse_and_the_longest_prefix_wins() {
        let d = parse_directives("warn,lanyard::nat=debug").unwrap();
        assert_eq!(level_for(&d, "lanyard::nat::tcp"), LevelFilter::Debug);
        assert_eq!(level_for(&d, "lanyard::natural"), LevelFilter::Warn);
        assert_eq!(level_for(&d, "lanyard::dns"), LevelFilter::Warn);
        let d = parse_directives("lanyard").unwrap();
        assert_eq!(level_for(&d, "lanyard::dns"), LevelFilter::Trace);
        assert_eq!(level_for(&d, "mio::poll"), LevelFilter::Off);
        assert_eq!(
            parse_directives("INFO").unwrap()[0].level,
            LevelFilter::Info
        );
        assert!(parse_directives("lanyard=loud").is_none());
        assert!(parse_directives("").is_none());
        assert!(parse_directives("a b=info").is_none());
    }
}
