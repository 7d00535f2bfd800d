//! slirp4netns's API socket (`--api-socket PATH`): JSON requests that
//! publish ports while the helper runs, which podman's
//! `port_handler=slirp4netns` and rootlesskit's slirp4netns port driver
//! send.
//!
//! The wire is slirp4netns 1.2's, byte for byte where callers look:
//! - one request per connection, at most [`MAX_REQUEST`] bytes; the reply
//!   is written in one write, with no trailing newline, and the
//!   connection is closed (podman reads the first chunk, rootlesskit
//!   reads to EOF);
//! - `{"execute":"add_hostfwd","arguments":{"proto":"tcp"|"udp",
//!   "host_addr":A,"host_port":N,"guest_addr":A,"guest_port":N}}` →
//!   `{"return":{"id":N}}`; `list_hostfwd` → `{"return":{"entries":[...]}}`;
//!   `remove_hostfwd` with `{"id":N}` → `{"return":{}}`;
//! - errors are `{"error":{"desc":"bad request: ..."}}` with slirp4netns's
//!   texts, which engines show their users.
//!
//! Beyond slirp4netns: `host_addr` may be IPv6 (`::1`, `::`), and
//! `get_info` describes the network. What a request *does* is the
//! [`Forwards`] implementation's (the helper's published ports); this file
//! parses and answers.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use serde::Serialize;
use serde_json::Value;

/// The largest request read; a request this long or longer is refused as
/// "too large" (slirp4netns's buffer is 4096 bytes with its terminator).
pub const MAX_REQUEST: usize = 4096;

/// One published port as the API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostFwd {
    pub id: u32,
    pub proto: &'static str,
    pub host_addr: IpAddr,
    pub host_port: u16,
    pub guest_addr: Ipv4Addr,
    pub guest_port: u16,
}

impl HostFwd {
    /// The `-p` spec lanyard publishes it with.
    pub fn spec(&self) -> String {
        let host = match self.host_addr {
            IpAddr::V4(a) => a.to_string(),
            IpAddr::V6(a) => format!("[{a}]"),
        };
        format!(
            "{host}:{}:{}/{}",
            self.host_port, self.guest_port, self.proto
        )
    }
}

/// What the API asks of the helper.
pub trait Forwards {
    /// Publishes `f`'s host port to the guest; `Err` says why not (logged;
    /// the caller gets slirp4netns's generic text).
    fn add(&mut self, f: &HostFwd) -> Result<(), String>;
    fn remove(&mut self, f: &HostFwd) -> Result<(), String>;
    /// `get_info`'s answer.
    fn info(&self) -> Value;
}

/// The helper's forwards, by id, and the ids' counter (from 1, never
/// reused: slirp4netns's).
#[derive(Debug)]
pub struct Api {
    guest: Ipv4Addr,
    next_id: u32,
    entries: BTreeMap<u32, HostFwd>,
}

fn error(desc: &str) -> String {
    serde_json::json!({ "error": { "desc": desc } }).to_string()
}

impl Api {
    /// `guest` is the address a request without `guest_addr` means.
    pub fn new(guest: Ipv4Addr) -> Api {
        Api {
            guest,
            next_id: 1,
            entries: BTreeMap::new(),
        }
    }

    /// Answers one request (the bytes read from a connection; `full` when
    /// they filled [`MAX_REQUEST`]). Returns the reply and, for the log,
    /// why a request failed beyond what the reply says.
    pub fn handle(
        &mut self,
        req: &[u8],
        full: bool,
        fw: &mut dyn Forwards,
    ) -> (String, Option<String>) {
        if full {
            return (error("bad request: too large message"), None);
        }
        let Ok(v) = serde_json::from_slice::<Value>(req) else {
            return (error("bad request: cannot parse JSON"), None);
        };
        let Some(obj) = v.as_object() else {
            return (error("bad request: json_object() failed"), None);
        };
        let Some(execute) = obj.get("execute").and_then(Value::as_str) else {
            return (error("bad request: no execute found"), None);
        };
        let args = obj.get("arguments").cloned().unwrap_or(Value::Null);
        match execute {
            "add_hostfwd" => self.add(&args, fw),
            "list_hostfwd" => {
                // Structs, not `json!`: its map sorts keys, and the
                // entries' fields go in slirp4netns's order.
                #[derive(Serialize)]
                struct Listed<'a> {
                    #[serde(rename = "return")]
                    ret: Entries<'a>,
                }
                #[derive(Serialize)]
                struct Entries<'a> {
                    entries: Vec<&'a HostFwd>,
                }
                let listed = Listed {
                    ret: Entries {
                        entries: self.entries.values().collect(),
                    },
                };
                (serde_json::to_string(&listed).unwrap_or_default(), None)
            }
            "remove_hostfwd" => self.remove(&args, fw),
            "get_info" => (serde_json::json!({ "return": fw.info() }).to_string(), None),
            _ => (error("bad request: unknown execute"), None),
        }
    }

    fn add(&mut self, args: &Value, fw: &mut dyn Forwards) -> (String, Option<String>) {
        let bad = |field: &str| {
            (
                error(&format!("bad request: add_hostfwd: bad arguments.{field}")),
                None,
            )
        };
        let proto = match args.get("proto").and_then(Value::as_str) {
            Some("tcp") => "tcp",
            Some("udp") => "udp",
            _ => return bad("proto"),
        };
        let host_addr = match args.get("host_addr").and_then(Value::as_str) {
            None | Some("") => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            Some(s) => match s.parse::<IpAddr>() {
                Ok(a) => a,
                Err(_) => return bad("host_addr"),
            },
        };
        let Some(host_port) = port_of(args.get("host_port")) else {
            return bad("host_port");
        };
        let guest_addr = match args.get("guest_addr").and_then(Value::as_str) {
            None | Some("") => self.guest,
            // The guest's own address only: lanyard forwards to the
            // endpoint, not to whatever address a request names.
            Some(s) => match s.parse::<Ipv4Addr>() {
                Ok(a) if a == self.guest => a,
                _ => return bad("guest_addr"),
            },
        };
        let Some(guest_port) = port_of(args.get("guest_port")) else {
            return bad("guest_port");
        };
        let f = HostFwd {
            id: self.next_id,
            proto,
            host_addr,
            host_port,
            guest_addr,
            guest_port,
        };
        if let Err(e) = fw.add(&f) {
            return (
                error("bad request: add_hostfwd: slirp_add_hostfwd failed"),
                Some(e),
            );
        }
        self.next_id += 1;
        let id = f.id;
        self.entries.insert(id, f);
        (
            serde_json::json!({ "return": { "id": id } }).to_string(),
            None,
        )
    }

    fn remove(&mut self, args: &Value, fw: &mut dyn Forwards) -> (String, Option<String>) {
        let id = args.get("id").and_then(Value::as_f64).map(|n| n as i64);
        let Some(f) = id
            .and_then(|id| u32::try_from(id).ok())
            .and_then(|id| self.entries.get(&id))
        else {
            return (error("bad request: remove_hostfwd: bad arguments.id"), None);
        };
        if let Err(e) = fw.remove(f) {
            return (
                error("bad request: remove_hostfwd: slirp_remove_hostfwd failed"),
                Some(e),
            );
        }
        let id = f.id;
        self.entries.remove(&id);
        (r#"{"return":{}}"#.to_string(), None)
    }
}

/// A port number as slirp4netns reads it: a JSON number, truncated to an
/// integer; 0, missing or out of range is refused.
fn port_of(v: Option<&Value>) -> Option<u16> {
    let n = v?.as_f64()? as i64;
    u16::try_from(n).ok().filter(|p| *p != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        added: Vec<String>,
        removed: Vec<String>,
        refuse: bool,
    }

    impl Forwards for Fake {
        fn add(&mut self, f: &HostFwd) -> Result<(), String> {
            if self.refuse {
                return Err("busy".into());
            }
            self.added.push(f.spec());
            Ok(())
        }
        fn remove(&mut self, f: &HostFwd) -> Result<(), String> {
            self.removed.push(f.spec());
            Ok(())
        }
        fn info(&self) -> Value {
            serde_json::json!({ "mtu": 1500 })
        }
    }

    fn ask(api: &mut Api, fw: &mut Fake, req: &str) -> String {
        api.handle(req.as_bytes(), false, fw).0
    }

    #[test]
    fn podman_and_rootlesskit_requests_get_slirp4netns_replies() {
        let mut api = Api::new(Ipv4Addr::new(10, 0, 2, 100));
        let mut fw = Fake::default();
        // podman: guest_addr "".
        let r = ask(
            &mut api,
            &mut fw,
            r#"{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"127.0.0.1","host_port":18080,"guest_addr":"","guest_port":80}}"#,
        );
        assert_eq!(r, r#"{"return":{"id":1}}"#);
        // rootlesskit: the guest's address.
        let r = ask(
            &mut api,
            &mut fw,
            r#"{"execute":"add_hostfwd","arguments":{"proto":"udp","host_addr":"127.0.0.1","host_port":18082,"guest_addr":"10.0.2.100","guest_port":80}}"#,
        );
        assert_eq!(r, r#"{"return":{"id":2}}"#);
        // Beyond slirp4netns: an IPv6 host address.
        let r = ask(
            &mut api,
            &mut fw,
            r#"{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_addr":"::1","host_port":18086,"guest_addr":"","guest_port":80}}"#,
        );
        assert_eq!(r, r#"{"return":{"id":3}}"#);
        assert_eq!(
            fw.added,
            [
                "127.0.0.1:18080:80/tcp",
                "127.0.0.1:18082:80/udp",
                "[::1]:18086:80/tcp"
            ]
        );
        let r = ask(&mut api, &mut fw, r#"{"execute":"list_hostfwd"}"#);
        let v: Value = serde_json::from_str(&r).unwrap();
        let e = &v["return"]["entries"];
        assert_eq!(e.as_array().unwrap().len(), 3);
        assert_eq!(e[0]["id"], 1);
        assert_eq!(e[0]["proto"], "tcp");
        assert_eq!(e[0]["host_addr"], "127.0.0.1");
        assert_eq!(e[0]["host_port"], 18080);
        assert_eq!(e[0]["guest_addr"], "10.0.2.100");
        assert_eq!(e[0]["guest_port"], 80);
        // The field order is slirp4netns's.
        assert!(r.starts_with(r#"{"return":{"entries":[{"id":1,"proto":"tcp","host_addr":"127.0.0.1","host_port":18080,"guest_addr":"10.0.2.100","guest_port":80}"#), "{r}");
        let r = ask(
            &mut api,
            &mut fw,
            r#"{"execute":"remove_hostfwd","arguments":{"id":1}}"#,
        );
        assert_eq!(r, r#"{"return":{}}"#);
        assert_eq!(fw.removed, ["127.0.0.1:18080:80/tcp"]);
        // Ids are never reused.
        let r = ask(
            &mut api,
            &mut fw,
            r#"{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":8080,"guest_port":80}}"#,
        );
        assert_eq!(r, r#"{"return":{"id":4}}"#);
        assert_eq!(fw.added.last().unwrap(), "0.0.0.0:8080:80/tcp");
    }

    #[test]
    fn bad_requests_get_slirp4netns_errors_and_change_nothing() {
        let mut api = Api::new(Ipv4Addr::new(10, 0, 2, 100));
        let mut fw = Fake::default();
        let desc = |r: String| -> String {
            let v: Value = serde_json::from_str(&r).unwrap();
            v["error"]["desc"].as_str().unwrap().to_string()
        };
        let cases = [
            ("badjson\n", "bad request: cannot parse JSON"),
            ("[1,2]", "bad request: json_object() failed"),
            (r#"{"unexpectedjson": 42}"#, "bad request: no execute found"),
            (r#"{"execute": "bad"}"#, "bad request: unknown execute"),
            (
                r#"{"execute": "add_hostfwd", "arguments":{"proto": "bad"}}"#,
                "bad request: add_hostfwd: bad arguments.proto",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments":{"proto": "tcp", "host_addr": "nope", "host_port": 1, "guest_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.host_addr",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments":{"proto": "tcp", "host_port": 0, "guest_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.host_port",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments":{"proto": "tcp", "host_port": 70000, "guest_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.host_port",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments":{"proto": "tcp", "host_port": 1, "guest_addr": "10.0.2.7", "guest_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.guest_addr",
            ),
            (
                r#"{"execute": "add_hostfwd", "arguments":{"proto": "tcp", "host_port": 1}}"#,
                "bad request: add_hostfwd: bad arguments.guest_port",
            ),
            (
                r#"{"execute": "remove_hostfwd", "arguments":{"id": 9}}"#,
                "bad request: remove_hostfwd: bad arguments.id",
            ),
        ];
        for (req, want) in cases {
            assert_eq!(desc(ask(&mut api, &mut fw, req)), want, "{req}");
        }
        assert_eq!(
            desc(api.handle(&[0; MAX_REQUEST], true, &mut fw).0),
            "bad request: too large message"
        );
        // A port the host refuses: slirp4netns's text, the reason for the log.
        fw.refuse = true;
        let (r, why) = api.handle(
            br#"{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_port":1}}"#,
            false,
            &mut fw,
        );
        assert_eq!(
            desc(r),
            "bad request: add_hostfwd: slirp_add_hostfwd failed"
        );
        assert_eq!(why.as_deref(), Some("busy"));
        assert!(fw.added.is_empty());
        let r = ask(&mut api, &mut fw, r#"{"execute":"list_hostfwd"}"#);
        assert_eq!(r, r#"{"return":{"entries":[]}}"#);
        // The id the refused request would have had is still free.
        fw.refuse = false;
        let r = ask(
            &mut api,
            &mut fw,
            r#"{"execute":"add_hostfwd","arguments":{"proto":"tcp","host_port":1,"guest_port":1}}"#,
        );
        assert_eq!(r, r#"{"return":{"id":1}}"#);
    }
}
