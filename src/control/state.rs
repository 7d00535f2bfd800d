//! What a daemon keeps across its restarts: the networks made with
//! `lanyard network create`, as docker keeps its networks, and the
//! addresses and names of the containers `lanyard run` attached. Networks
//! of the config file come from the config each time. The containers
//! themselves are kept by their `run` processes, which attach them again
//! (`container::reattach`); the new daemon holds their addresses and names
//! for them meanwhile (`Registry::reserved`), so another container cannot
//! take them first.
//!
//! One JSON file, `networks.json` in the user's state directory
//! (`[daemon] state_dir`, else `$XDG_STATE_HOME/lanyard`, else
//! `~/.local/state/lanyard`), written atomically: a temporary file in the
//! same directory, fsync, rename over the old one, fsync of the directory
//! — so a crash leaves the old file or the new one, never half of one.
//!
//! A file that is not ours (bad JSON, another version, a network that no
//! longer validates against the config) is reported with its path and
//! moved aside (`networks.json.bad-UNIXTIME`), never a crash: the daemon
//! starts with what it can restore.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::config::{NetworkConfig, NetworkRequest};

/// The format's version; another is foreign.
const VERSION: u32 = 1;
const FILE: &str = "networks.json";
/// Larger than any real state: a bound on what is read.
const MAX_BYTES: u64 = 4 << 20;

/// One kept network: the request that makes it again (every default
/// resolved, so a changed default does not change the network), its id
/// and its creation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedNetwork {
    pub request: NetworkRequest,
    pub id: String,
    /// Nanoseconds since the epoch (as `network inspect` shows it).
    pub created_ns: u64,
}

impl SavedNetwork {
    pub fn new(c: &NetworkConfig, id: &str, created: SystemTime) -> SavedNetwork {
        SavedNetwork {
            request: NetworkRequest {
                name: c.name.clone(),
                subnet: Some(c.subnet.to_string()),
                gateway: Some(c.gateway.to_string()),
                ip_range: Some(c.ip_range.to_string()),
                mtu: Some(c.mtu),
                internal: c.internal,
                ipv6: Some(c.ipv6.is_some()),
                subnet6: c.ipv6.map(|v| v.subnet.to_string()),
                gateway6: c.ipv6.map(|v| v.gateway.to_string()),
            },
            id: id.to_string(),
            created_ns: created
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        }
    }

    pub fn created(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.created_ns)
    }
}

/// A container endpoint `run` attached: what to hold for it until it is
/// attached again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedEndpoint {
    pub container_id: String,
    pub name: String,
    pub network: String,
    pub ip: std::net::Ipv4Addr,
    #[serde(default)]
    pub ip6: Option<std::net::Ipv6Addr>,
}

/// Everything the file keeps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Saved {
    pub networks: Vec<SavedNetwork>,
    pub endpoints: Vec<SavedEndpoint>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    version: u32,
    networks: Vec<SavedNetwork>,
    #[serde(default)]
    endpoints: Vec<SavedEndpoint>,
}

/// The default state directory of this user.
pub fn default_dir() -> Option<PathBuf> {
    let from = |v: &str| {
        std::env::var_os(v)
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
    };
    from("XDG_STATE_HOME")
        .map(|d| d.join("lanyard"))
        .or_else(|| from("HOME").map(|h| h.join(".local/state/lanyard")))
}

/// The state file of a daemon.
#[derive(Debug, Clone)]
pub struct StateFile {
    dir: PathBuf,
}

/// Why a state file was set aside.
#[derive(Debug)]
pub struct Foreign {
    pub path: PathBuf,
    pub reason: String,
    /// Where it went (`None`: it could not be moved).
    pub moved_to: Option<PathBuf>,
}

impl std::fmt::Display for Foreign {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "state file {}: {}; ", self.path.display(), self.reason)?;
        match &self.moved_to {
            Some(p) => write!(f, "moved aside to {}", p.display()),
            None => write!(f, "ignored"),
        }
    }
}

impl StateFile {
    /// The state in `dir`, made (0700) if need be.
    pub fn open(dir: &Path) -> io::Result<StateFile> {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
        Ok(StateFile {
            dir: dir.to_path_buf(),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(FILE)
    }

    /// What was kept: nothing when there is no file; a file that is not
    /// ours is moved aside and reported (`Err`), and nothing is restored
    /// from it.
    pub fn load(&self) -> Result<Saved, Foreign> {
        let path = self.path();
        let text = match read_bounded(&path) {
            Ok(Some(t)) => t,
            Ok(None) => return Ok(Saved::default()),
            Err(e) => return Err(self.set_aside(e)),
        };
        match serde_json::from_str::<Contents>(&text) {
            Ok(c) if c.version == VERSION => Ok(Saved {
                networks: c.networks,
                endpoints: c.endpoints,
            }),
            Ok(c) => Err(self.set_aside(format!(
                "version {} is not this lanyard's ({VERSION})",
                c.version
            ))),
            Err(e) => Err(self.set_aside(format!("not a lanyard state file: {e}"))),
        }
    }

    /// Moves the file aside, for its owner to look at.
    pub fn set_aside(&self, reason: String) -> Foreign {
        let path = self.path();
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let to = self.dir.join(format!("{FILE}.bad-{now}"));
        let moved_to = std::fs::rename(&path, &to).ok().map(|_| to);
        Foreign {
            path,
            reason,
            moved_to,
        }
    }

    /// Replaces the file with `saved`, atomically.
    pub fn save(&self, saved: &Saved) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let body = serde_json::to_vec_pretty(&Contents {
            version: VERSION,
            networks: saved.networks.clone(),
            endpoints: saved.endpoints.clone(),
        })
        .map_err(io::Error::other)?;
        let tmp = self.dir.join(format!(".{FILE}.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&body)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, self.path())?;
        // The rename itself is durable once the directory is.
        std::fs::File::open(&self.dir)?.sync_all()
    }
}

/// The file's text; `None` when there is none.
fn read_bounded(path: &Path) -> Result<Option<String>, String> {
    use std::io::Read;
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("cannot be read: {e}")),
    };
    let mut text = String::new();
    let n = f
        .take(MAX_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot be read: {e}"))?;
    if n as u64 > MAX_BYTES {
        return Err(format!("larger than {MAX_BYTES} bytes"));
    }
    Ok(Some(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("lanyard-state-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn net(name: &str) -> SavedNetwork {
        SavedNetwork {
            request: NetworkRequest {
                name: name.into(),
                subnet: Some("10.9.0.0/24".into()),
                ..NetworkRequest::default()
            },
            id: "ab".repeat(32),
            created_ns: 1_700_000_000_123_456_789,
        }
    }

    #[test]
    fn saved_networks_come_back_and_nothing_is_left_half_written() {
        let d = scratch("roundtrip");
        let s = StateFile::open(&d).unwrap();
        assert_eq!(s.load().unwrap(), Saved::default(), "no file: nothing");
        let ep = SavedEndpoint {
            container_id: "c0ffee".into(),
            name: "web".into(),
            network: "a".into(),
            ip: "10.9.0.2".parse().unwrap(),
            ip6: None,
        };
        let two = Saved {
            networks: vec![net("a"), net("b")],
            endpoints: vec![ep],
        };
        s.save(&two).unwrap();
        assert_eq!(s.load().unwrap(), two);
        let one = Saved {
            networks: vec![net("b")],
            endpoints: Vec::new(),
        };
        s.save(&one).unwrap();
        assert_eq!(s.load().unwrap(), one);
        let names: Vec<_> = std::fs::read_dir(&d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![FILE.to_string()], "no temporary file left");
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn a_foreign_or_corrupt_file_is_moved_aside_with_its_path() {
        for (name, text) in [
            ("garbage", "\u{0}\u{1}not json"),
            ("version", "{\"version\": 99, \"networks\": []}"),
            ("shape", "{\"version\": 1, \"networks\": [{\"bogus\": 1}]}"),
            ("truncated", "{\"version\": 1, \"networks\": ["),
        ] {
            let d = scratch(name);
            let s = StateFile::open(&d).unwrap();
            std::fs::write(s.path(), text).unwrap();
            let e = s.load().unwrap_err();
            assert_eq!(e.path, s.path());
            let moved = e.moved_to.clone().expect("moved");
            assert!(moved.exists() && !s.path().exists(), "{name}: {e}");
            assert!(e.to_string().contains(&s.path().display().to_string()));
            // Once moved, the next start finds nothing and saves anew.
            assert_eq!(s.load().unwrap(), Saved::default());
            let _ = std::fs::remove_dir_all(&d);
        }
    }
}
