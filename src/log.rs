//! Minimal leveled logging to stderr. The daemon logs endpoint and port
//! events; `lanyard run` with its embedded switch stays quiet (warnings
//! only) so the container's own output is not interleaved with ours.
//! `LANYARD_LOG=debug|info|warn|error` overrides the configured level.

use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

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

    fn name(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
        }
    }
}

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);

/// Sets the level, unless `LANYARD_LOG` names one.
pub fn set_level(level: Level) {
    let l = std::env::var("LANYARD_LOG")
        .ok()
        .and_then(|v| Level::parse(&v))
        .unwrap_or(level);
    LEVEL.store(l as u8, Ordering::Relaxed);
}

pub fn enabled(level: Level) -> bool {
    level as u8 <= LEVEL.load(Ordering::Relaxed)
}

/// Writes one line; a broken stderr (a closed pipe) is ignored rather than
/// allowed to panic the thread that logs.
pub fn write(level: Level, args: fmt::Arguments<'_>) {
    if enabled(level) {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr().lock(),
            "lanyard {}: {}",
            level.name(),
            args
        );
    }
}

#[doc(hidden)]
#[macro_export]
macro_rules! __log_error {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Error, format_args!($($t)*)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __log_warn {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Warn, format_args!($($t)*)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __log_info {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Info, format_args!($($t)*)) };
}
#[doc(hidden)]
#[macro_export]
macro_rules! __log_debug {
    ($($t:tt)*) => { $crate::log::write($crate::log::Level::Debug, format_args!($($t)*)) };
}

pub use crate::__log_debug as debug;
pub use crate::__log_error as error;
pub use crate::__log_info as info;
pub use crate::__log_warn as warn;
