//! The sandbox: what a lanyard switch takes away from itself once it is set
//! up, so that a bug a hostile container or client finds in the data path
//! or the control plane gives it as little as possible of the user's
//! account.
//!
//! # Theory of operation
//!
//! A lanyard that runs a switch (`lanyard daemon`, or `lanyard run` with its
//! embedded switch) confines itself once, from its main thread, after it has
//! what it cannot get later (the control socket bound, the open-file limit
//! raised, the container forked) and before its first thread starts. Four
//! layers, in this order, each for a reason (and, for the slirp4netns
//! mode's `--enable-sandbox` only, an empty root before them: step 0):
//!
//! | step | what | why here |
//! |---|---|---|
//! | 0 | an empty read-only root with only /etc and /run ([`mounts`]) | first: it needs `CAP_SYS_ADMIN` (or a user namespace of its own) and mount calls the later steps take away |
//! | 1 | capabilities ([`caps`]): keep only `CAP_NET_BIND_SERVICE` and `CAP_NET_RAW`, and only if held | capset is not on the allow-list below; the two kept are what it still uses (published ports below 1024, uplinks attached at run time) |
//! | 2 | `no_new_privs` | nothing it could exec gains privileges; seccomp needs it unprivileged |
//! | 3 | Landlock ([`fs`]): read the files it still reads, write only in its own runtime directory; the daemon also may not signal or reach abstract sockets outside itself | Landlock (ABI < 8) restricts the calling thread only: threads started later inherit it |
//! | 4 | seccomp ([`syscalls`]): an allow-list, with argument checks where a call has a dangerous mode | last, because the earlier steps use calls the list refuses |
//!
//! Unlisted system calls fail with `EPERM`; they do not kill. The choice
//! is deliberate: the allow-list is built from what the daemon's paths use
//! (and every end-to-end test runs under it), but a call only a rare error
//! path makes and the list missed then fails like any other error — the
//! frame or request is refused and counted — instead of taking every
//! container's network down. A compromised process gains nothing from
//! `EPERM` that it would from the call.
//!
//! `Mode::On` (the default) applies what the kernel offers and says what
//! it could not; `Mode::Require` makes any missing layer an error (by
//! layer with [`apply_layers`]);
//! `Mode::Off` (`--no-sandbox`, `[daemon] sandbox = false`) applies
//! nothing. The one line [`Report`] prints says which.

use std::fmt;
use std::path::PathBuf;

pub mod caps;
pub mod fs;
pub mod mounts;
pub mod probe;
pub mod syscalls;

/// How hard to try.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Nothing applied.
    Off,
    /// Every layer the kernel offers; a missing one is a warning.
    #[default]
    On,
    /// Every layer, or an error.
    Require,
}

impl Mode {
    /// `on`/`true`, `off`/`false`, `require`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "on" | "true" => Some(Mode::On),
            "off" | "false" => Some(Mode::Off),
            "require" => Some(Mode::Require),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::On => "on",
            Mode::Require => "require",
        }
    }
}

/// Which process is being confined: the two differ in what they still do
/// after set-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `lanyard daemon`: serves its socket; signals nobody.
    Daemon,
    /// `lanyard run` with its embedded switch: also supervises its
    /// container (`wait4`, and `kill` to pass signals on to it).
    Run { container_pid: i32 },
}

/// What the confined process still needs of the filesystem.
#[derive(Debug, Clone, Default)]
pub struct Paths {
    /// Files it still reads (the host's resolv.conf).
    pub read: Vec<PathBuf>,
    /// Directories it still writes in (its runtime directory: the control
    /// socket is removed at shutdown; a container's generated files).
    pub write: Vec<PathBuf>,
}

/// What was applied, for the line at start.
#[derive(Debug, Default)]
pub struct Report {
    applied: Vec<String>,
    missing: Vec<String>,
    off: bool,
}

impl Report {
    /// The layers the kernel could not apply (empty when all were).
    pub fn missing(&self) -> &[String] {
        &self.missing
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.off {
            return write!(f, "sandbox: off");
        }
        write!(f, "sandbox: {}", self.applied.join("; "))?;
        if !self.missing.is_empty() {
            write!(f, "; NOT applied: {}", self.missing.join("; "))?;
        }
        Ok(())
    }
}

/// Confines the calling process. Call from the main thread before any
/// other thread exists (Landlock binds the calling thread and what it
/// starts afterwards). With `Mode::Require`, a layer the kernel cannot
/// apply is an error (and the process is left partly confined: the caller
/// exits).
pub fn apply(mode: Mode, role: Role, paths: &Paths) -> Result<Report, String> {
    apply_layers(
        Layers {
            empty_root: Mode::Off,
            files: mode,
            syscalls: mode,
        },
        role,
        paths,
    )
}

/// How hard to try, by layer: the slirp4netns mode's `--enable-sandbox`
/// and `--enable-seccomp` ask for them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layers {
    /// An empty root with only /etc and /run ([`mounts`]), first.
    pub empty_root: Mode,
    /// Capabilities, `no_new_privs` and Landlock.
    pub files: Mode,
    /// The seccomp allow-list (with `no_new_privs`, which it needs).
    pub syscalls: Mode,
}

/// [`apply`], layer by layer: a layer that is `Require`d and cannot be
/// applied is an error.
pub fn apply_layers(layers: Layers, role: Role, paths: &Paths) -> Result<Report, String> {
    let mut r = Report::default();
    if layers.empty_root == Mode::Off && layers.files == Mode::Off && layers.syscalls == Mode::Off {
        r.off = true;
        return Ok(r);
    }
    let mut required = Vec::new();
    let mut layer = |mode: Mode, what: &dyn Fn() -> Result<String, String>| {
        if mode == Mode::Off {
            return;
        }
        match what() {
            Ok(s) => r.applied.push(s),
            Err(e) => {
                if mode == Mode::Require {
                    required.push(e.clone());
                }
                r.missing.push(e)
            }
        }
    };
    layer(layers.empty_root, &mounts::empty_root);
    // Paths that no longer exist (outside an empty root) cannot be ruled.
    let paths = Paths {
        read: paths.read.iter().filter(|p| p.exists()).cloned().collect(),
        write: paths.write.iter().filter(|p| p.exists()).cloned().collect(),
    };
    layer(layers.files, &caps::drop_all_but_used);
    let nnp = if layers.syscalls == Mode::Require {
        Mode::Require
    } else {
        layers.files.max_with(layers.syscalls)
    };
    layer(nnp, &no_new_privs);
    layer(layers.files, &|| fs::restrict(role, &paths));
    layer(layers.syscalls, &|| syscalls::install(role));
    if !required.is_empty() {
        return Err(format!(
            "sandbox required but not applied: {}",
            required.join("; ")
        ));
    }
    Ok(r)
}

impl Mode {
    /// The stronger of two.
    fn max_with(self, other: Mode) -> Mode {
        match (self, other) {
            (Mode::Require, _) | (_, Mode::Require) => Mode::Require,
            (Mode::On, _) | (_, Mode::On) => Mode::On,
            _ => Mode::Off,
        }
    }
}

fn no_new_privs() -> Result<String, String> {
    // SAFETY: prctl with integer arguments only.
    let rc = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) };
    if rc != 0 {
        return Err(format!("no_new_privs: {}", std::io::Error::last_os_error()));
    }
    Ok("no new privileges".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_as_the_config_and_flags_spell_them() {
        assert_eq!(Mode::parse("on"), Some(Mode::On));
        assert_eq!(Mode::parse("true"), Some(Mode::On));
        assert_eq!(Mode::parse("off"), Some(Mode::Off));
        assert_eq!(Mode::parse("false"), Some(Mode::Off));
        assert_eq!(Mode::parse("require"), Some(Mode::Require));
        assert_eq!(Mode::parse("yes"), None);
        assert_eq!(Mode::default(), Mode::On);
    }

    #[test]
    fn the_report_says_what_is_missing() {
        let r = Report {
            applied: vec!["a".into(), "b".into()],
            missing: vec!["landlock: not in this kernel".into()],
            off: false,
        };
        assert_eq!(
            r.to_string(),
            "sandbox: a; b; NOT applied: landlock: not in this kernel"
        );
        let off = Report {
            off: true,
            ..Report::default()
        };
        assert_eq!(off.to_string(), "sandbox: off");
    }
}
