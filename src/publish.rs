//! Published ports: docker's `-p` syntax, parsed and expanded.
//!
//! `[ip:][host[-end]]:container[-end][/tcp|/udp]`, or just
//! `container[-end][/proto]` for random host ports. An IPv6 address is
//! written in brackets (`[::1]:8080:80`). Ranges on both sides must have the
//! same length; ports are 1..=65535; a missing host port means "any free
//! port". Parsing is strict: anything else is an error saying what is wrong.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        })
    }
}

/// One `-p` argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PublishSpec {
    /// None: every address (0.0.0.0).
    pub host_ip: Option<IpAddr>,
    /// None: a free port chosen by the kernel for each container port.
    pub host_ports: Option<(u16, u16)>,
    pub container_ports: (u16, u16),
    pub proto: Protocol,
}

/// One forwarded port: a host address and a container port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Mapping {
    pub proto: Protocol,
    /// Port 0: any free port.
    pub host: SocketAddr,
    pub container_port: u16,
}

fn parse_port(what: &str, s: &str) -> Result<u16, String> {
    let v: u32 = s
        .parse()
        .map_err(|_| format!("{what} '{s}' is not a port number"))?;
    if v == 0 || v > 65535 {
        return Err(format!("{what} {v} is out of range (1-65535)"));
    }
    Ok(v as u16)
}

fn parse_range(what: &str, s: &str) -> Result<(u16, u16), String> {
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse_port(what, a)?, parse_port(what, b)?);
            if b < a {
                return Err(format!("{what} range {s} ends before it starts"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse_port(what, s)?;
            Ok((p, p))
        }
    }
}

impl FromStr for PublishSpec {
    type Err = String;

    fn from_str(spec: &str) -> Result<Self, Self::Err> {
        let fail = |why: String| format!("'{spec}': {why}");
        if spec.is_empty() {
            return Err(fail("empty".into()));
        }
        let (rest, proto) = match spec.rsplit_once('/') {
            Some((r, "tcp")) => (r, Protocol::Tcp),
            Some((r, "udp")) => (r, Protocol::Udp),
            Some((_, p)) => return Err(fail(format!("unknown protocol '{p}' (tcp or udp)"))),
            None => (spec, Protocol::Tcp),
        };
        // An IPv6 host address in brackets comes first.
        let (host_ip, rest): (Option<IpAddr>, &str) = if let Some(r) = rest.strip_prefix('[') {
            let (ip, r) = r
                .split_once(']')
                .ok_or_else(|| fail("missing ']' after the IPv6 address".into()))?;
            let ip: IpAddr = ip
                .parse()
                .map_err(|_| fail(format!("'{ip}' is not an IP address")))?;
            let r = r
                .strip_prefix(':')
                .ok_or_else(|| fail("expected ':' after the address".into()))?;
            (Some(ip), r)
        } else {
            (None, rest)
        };
        let parts: Vec<&str> = rest.split(':').collect();
        let (host_ip, host, container) = match (host_ip, parts.as_slice()) {
            (None, [c]) => (None, None, *c),
            (None, [h, c]) => (None, Some(*h), *c),
            (None, [ip, h, c]) => {
                let ip: IpAddr = ip
                    .parse()
                    .map_err(|_| fail(format!("'{ip}' is not an IP address")))?;
                (Some(ip), Some(*h), *c)
            }
            (Some(ip), [h, c]) => (Some(ip), Some(*h), *c),
            _ => {
                return Err(fail(
                    "expected [ip:][host-port:]container-port[/tcp|udp]".into(),
                ))
            }
        };
        let container_ports = parse_range("container port", container).map_err(fail)?;
        let host_ports = match host {
            None | Some("") => None,
            Some(h) => Some(parse_range("host port", h).map_err(fail)?),
        };
        if let Some((a, b)) = host_ports {
            if b - a != container_ports.1 - container_ports.0 {
                return Err(fail(format!(
                    "the host range has {} ports and the container range {}",
                    b - a + 1,
                    container_ports.1 - container_ports.0 + 1
                )));
            }
        }
        Ok(PublishSpec {
            host_ip,
            host_ports,
            container_ports,
            proto,
        })
    }
}

impl fmt::Display for PublishSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_ip {
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]:")?,
            Some(IpAddr::V4(ip)) => write!(f, "{ip}:")?,
            None => {}
        }
        let range = |(a, b): (u16, u16)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        };
        match self.host_ports {
            Some(h) => write!(f, "{}:", range(h))?,
            None if self.host_ip.is_some() => f.write_str(":")?,
            None => {}
        }
        write!(f, "{}/{}", range(self.container_ports), self.proto)
    }
}

impl PublishSpec {
    /// One mapping per container port.
    pub fn mappings(&self) -> Vec<Mapping> {
        let ip = self.host_ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        (self.container_ports.0..=self.container_ports.1)
            .enumerate()
            .map(|(i, c)| Mapping {
                proto: self.proto,
                host: SocketAddr::new(ip, self.host_ports.map_or(0, |(a, _)| a + i as u16)),
                container_port: c,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> PublishSpec {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn docker_forms() {
        let s = p("8080:80");
        assert_eq!(
            (s.host_ip, s.host_ports, s.container_ports, s.proto),
            (None, Some((8080, 8080)), (80, 80), Protocol::Tcp)
        );
        let s = p("127.0.0.1:8080:80");
        assert_eq!(s.host_ip, Some("127.0.0.1".parse().unwrap()));
        assert_eq!(p("8080:80/udp").proto, Protocol::Udp);
        let s = p("8000-8010:8000-8010");
        assert_eq!(s.mappings().len(), 11);
        assert_eq!(s.mappings()[10].host.port(), 8010);
        assert_eq!(s.mappings()[10].container_port, 8010);
        let s = p("[::1]:8080:80");
        assert_eq!(s.host_ip, Some("::1".parse().unwrap()));
        let s = p("80");
        assert_eq!((s.host_ports, s.container_ports), (None, (80, 80)));
        assert_eq!(s.mappings()[0].host, "0.0.0.0:0".parse().unwrap());
        let s = p("127.0.0.1::80/udp");
        assert_eq!((s.host_ports, s.proto), (None, Protocol::Udp));
        assert_eq!(p("9000-9001:80-81").mappings()[1].host.port(), 9001);
    }

    #[test]
    fn round_trips_through_display() {
        for s in [
            "8080:80/tcp",
            "127.0.0.1:8080:80/udp",
            "[::1]:8080:80/tcp",
            "80/tcp",
            "8000-8010:8000-8010/tcp",
            "127.0.0.1::80/tcp",
        ] {
            assert_eq!(p(s).to_string(), s);
            assert_eq!(p(&p(s).to_string()), p(s));
        }
    }

    #[test]
    fn bad_specs_say_why() {
        for (s, why) in [
            ("", "empty"),
            ("8080:0", "out of range"),
            ("8080:65536", "out of range"),
            ("0:80", "out of range"),
            ("8000-8010:80-81", "11 ports"),
            ("8010-8000:80", "ends before"),
            ("8080:80/sctp", "unknown protocol"),
            ("banana", "not a port"),
            ("1.2.3:8080:80", "not an IP"),
            ("[::1:8080:80", "missing ']'"),
            ("a:b:c:d", "expected"),
            ("8080:", "not a port"),
        ] {
            let e = s.parse::<PublishSpec>().unwrap_err();
            assert!(e.contains(why), "{s}: {e}");
        }
    }
}
