//! The slirp4netns mode's API socket (`lanyard::slirp::api`): any bytes a
//! client sends get one JSON reply, `return` or `error`, never a panic; an
//! accepted `add_hostfwd` names a port lanyard's own `-p` parser takes,
//! and the list holds exactly what was added and not removed. The input is
//! split at NUL bytes into several requests to one API, so that adds,
//! lists and removes meet.

#![no_main]

use libfuzzer_sys::fuzz_target;

use lanyard::publish::PublishSpec;
use lanyard::slirp::api::{Api, Forwards, HostFwd, MAX_REQUEST};

#[derive(Default)]
struct Count {
    live: Vec<String>,
}

impl Forwards for Count {
    fn add(&mut self, f: &HostFwd) -> Result<(), String> {
        let spec = f.spec();
        let parsed: PublishSpec = spec
            .parse()
            .unwrap_or_else(|e| panic!("accepted {spec}, which -p refuses: {e}"));
        assert_eq!(parsed.to_string().is_empty(), false);
        // A port already published is refused, as a busy host port is.
        if self.live.contains(&spec) {
            return Err("busy".into());
        }
        self.live.push(spec);
        Ok(())
    }
    fn remove(&mut self, f: &HostFwd) -> Result<(), String> {
        let spec = f.spec();
        let at = self
            .live
            .iter()
            .position(|s| *s == spec)
            .unwrap_or_else(|| panic!("removed {spec}, which was never added"));
        self.live.remove(at);
        Ok(())
    }
    fn info(&self) -> serde_json::Value {
        serde_json::json!({})
    }
}

fuzz_target!(|data: &[u8]| {
    let mut api = Api::new(std::net::Ipv4Addr::new(10, 0, 2, 100));
    let mut fw = Count::default();
    for req in data.split(|b| *b == 0).take(16) {
        let req = &req[..req.len().min(MAX_REQUEST)];
        let (reply, _) = api.handle(req, req.len() == MAX_REQUEST, &mut fw);
        let v: serde_json::Value =
            serde_json::from_str(&reply).unwrap_or_else(|e| panic!("reply {reply}: {e}"));
        assert!(
            v.get("return").is_some() != v.get("error").is_some(),
            "{reply}"
        );
        assert!(!reply.ends_with('\n'));
    }
    let (list, _) = api.handle(br#"{"execute":"list_hostfwd"}"#, false, &mut fw);
    let v: serde_json::Value = serde_json::from_str(&list).unwrap();
    let n = v["return"]["entries"].as_array().map(Vec::len).unwrap_or(0);
    assert_eq!(n, fw.live.len(), "{list}");
});
