//! The files `lanyard run` writes for a container: a resolv.conf naming the
//! gateway's DNS and an /etc/hosts with the container's own name, in a
//! private directory of the user's that lives as long as the `run`; the
//! child bind-mounts them over its /etc in its own mount namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::control::server::{self, default_socket_path};
use crate::log;

/// The container's generated resolv.conf and hosts, in a directory of the
/// user's removed when dropped (when `run` ends).
pub struct ContainerFiles {
    dir: PathBuf,
    hosts: bool,
}

impl ContainerFiles {
    /// Where the containers' directories go: `containers` in the per-user
    /// runtime dir, made (0700) if need be; `None` when that is not ours.
    /// A sandboxed `run` may write only here.
    pub fn base_dir() -> Option<PathBuf> {
        let rt = default_socket_path().parent()?.to_path_buf();
        server::prepare_dir(&rt).ok()?;
        let c = rt.join("containers");
        server::prepare_dir(&c).ok()?;
        Some(c)
    }

    /// A private directory for them: under [`Self::base_dir`] when there
    /// is one, else a fresh one in /tmp (never a directory someone else
    /// could have made for us; a sandboxed `run` cannot write there, and
    /// the container then keeps the host's files, with a warning).
    fn private_dir(id: &str) -> std::io::Result<PathBuf> {
        use std::os::unix::fs::DirBuilderExt;
        if let Some(c) = Self::base_dir() {
            return Ok(c.join(id));
        }
        let dir = std::env::temp_dir().join(format!(
            "lanyard-{}-{}",
            nix::unistd::geteuid().as_raw(),
            &id[..16.min(id.len())]
        ));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        Ok(dir)
    }

    /// Writes resolv.conf (with `nameserver`) and hosts (with `own`, the
    /// container's addresses and name) for container `id`; `None`, with a
    /// warning logged, when they cannot be written: the container then
    /// keeps the host's files.
    pub fn write(
        id: &str,
        nameserver: Option<Ipv4Addr>,
        own: Option<(&[IpAddr], &str)>,
        hostname: &str,
        extra: &ExtraFiles,
    ) -> Option<ContainerFiles> {
        let base = match Self::private_dir(id) {
            Ok(b) => b,
            Err(e) => {
                log::warn!("no private directory for the container's resolv.conf and hosts: {e}");
                return None;
            }
        };
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&base)?;
            let host = std::fs::read_to_string(crate::dns::HOST_RESOLV_CONF).unwrap_or_default();
            if let Some(ns) = nameserver {
                std::fs::write(base.join("resolv.conf"), resolv_conf_with(ns, &host, extra))?;
            }
            if let Some((ips, name)) = own {
                let mut hosts = hosts_file(ips, hostname, name);
                for (h, ip) in &extra.hosts {
                    hosts.push_str(&format!("{ip}\t{h}\n"));
                }
                std::fs::write(base.join("hosts"), hosts)?;
            }
            Ok(())
        };
        match write() {
            Ok(()) => Some(ContainerFiles {
                dir: base,
                hosts: own.is_some(),
            }),
            Err(e) => {
                log::warn!(
                    "cannot write the container's resolv.conf and hosts in {}: {e}",
                    base.display()
                );
                let _ = std::fs::remove_dir_all(&base);
                None
            }
        }
    }

    /// The resolv.conf to bind over the container's.
    pub fn resolv_conf(&self) -> PathBuf {
        self.dir.join("resolv.conf")
    }

    /// The hosts file to bind over the container's, if one was written.
    pub fn hosts(&self) -> Option<PathBuf> {
        self.hosts.then(|| self.dir.join("hosts"))
    }
}

impl Drop for ContainerFiles {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What `run`'s `--dns-search`, `--dns-option` and `--add-host` put in
/// the container's files.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtraFiles {
    /// `--dns-search`: the search domains instead of the host's; `["."]`
    /// for none, as docker.
    pub dns_search: Vec<String>,
    /// `--dns-option`: the options instead of the host's.
    pub dns_options: Vec<String>,
    /// `--add-host`: more lines of /etc/hosts, after the container's own.
    pub hosts: Vec<(String, IpAddr)>,
}

/// An `--add-host` entry: `HOST:IP` (or `HOST=IP`), the IP bracketed or
/// not when it is IPv6, or `host-gateway` for the gateway's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddHost {
    pub host: String,
    /// `None`: `host-gateway`, the gateway of the container's first network
    /// (the host, for lanyard), its IPv4 and, on a dual-stack network, its
    /// IPv6 address.
    pub ip: Option<IpAddr>,
}

impl std::str::FromStr for AddHost {
    type Err = String;

    fn from_str(s: &str) -> Result<AddHost, String> {
        // At the first `=` if there is one (docker 25+), else the first `:`
        // (an IPv6 address has more of them, a host name none).
        let (host, ip) = s
            .split_once('=')
            .or_else(|| s.split_once(':'))
            .ok_or_else(|| format!("'{s}' is not HOST:IP"))?;
        let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
        if host.is_empty() || host.len() > 253 || !host.chars().all(valid) {
            return Err(format!("'{host}' is not a host name"));
        }
        let ip = if ip == "host-gateway" {
            None
        } else {
            let bare = ip
                .strip_prefix('[')
                .and_then(|i| i.strip_suffix(']'))
                .unwrap_or(ip);
            Some(
                bare.parse::<IpAddr>()
                    .map_err(|_| format!("'{ip}' is not an IP address or host-gateway"))?,
            )
        };
        Ok(AddHost {
            host: host.to_string(),
            ip,
        })
    }
}

/// The contents of a container's resolv.conf: the gateway as nameserver,
/// with the host's search domains and options, as docker writes it.
pub fn resolv_conf(nameserver: Ipv4Addr, host: &str) -> String {
    resolv_conf_with(nameserver, host, &ExtraFiles::default())
}

/// [`resolv_conf`], where `--dns-search` and `--dns-option` replace the
/// host's search domains (`domain` too, which `search` overrides in the C
/// library) and options, as docker's do.
pub fn resolv_conf_with(nameserver: Ipv4Addr, host: &str, extra: &ExtraFiles) -> String {
    let mut out = format!("# Generated by lanyard.\nnameserver {nameserver}\n");
    for line in host.lines() {
        let l = line.trim_start();
        let search = l.starts_with("search ") || l.starts_with("domain ");
        let options = l.starts_with("options ");
        if (search && extra.dns_search.is_empty()) || (options && extra.dns_options.is_empty()) {
            out.push_str(l);
            out.push('\n');
        }
    }
    let search: Vec<&str> = extra
        .dns_search
        .iter()
        .map(String::as_str)
        .filter(|d| *d != ".")
        .collect();
    if !search.is_empty() {
        out.push_str(&format!("search {}\n", search.join(" ")));
    }
    if !extra.dns_options.is_empty() {
        out.push_str(&format!("options {}\n", extra.dns_options.join(" ")));
    }
    out
}

/// The contents of a container's /etc/hosts.
/// Docker's /etc/hosts: loopback and the IPv6 groups, then a line per
/// address of the container (IPv4, and IPv6 on a dual-stack network).
pub fn hosts_file(ips: &[IpAddr], hostname: &str, name: &str) -> String {
    let mut out = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         fe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\n\
         ff02::2\tip6-allrouters\n",
    );
    for ip in ips {
        out.push_str(&format!("{ip}\t{hostname}"));
        if name != hostname {
            out.push_str(&format!(" {name}"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_host_takes_docker_forms_and_names_what_is_wrong() {
        let a = |s: &str| s.parse::<AddHost>();
        assert_eq!(
            a("db:10.0.0.5").unwrap(),
            AddHost {
                host: "db".into(),
                ip: Some("10.0.0.5".parse().unwrap())
            }
        );
        assert_eq!(a("db=::1").unwrap().ip, Some("::1".parse().unwrap()));
        assert_eq!(
            a("db:[fd00::1]").unwrap().ip,
            Some("fd00::1".parse().unwrap())
        );
        assert_eq!(
            a("v6:fd00::1").unwrap().ip,
            Some("fd00::1".parse().unwrap())
        );
        assert_eq!(a("host.docker.internal:host-gateway").unwrap().ip, None);
        assert!(a("db").unwrap_err().contains("HOST:IP"));
        assert!(a(":1.2.3.4").unwrap_err().contains("host name"));
        assert!(a("a b:1.2.3.4").unwrap_err().contains("host name"));
        assert!(a("db:1.2.3").unwrap_err().contains("'1.2.3'"));
    }

    #[test]
    fn dns_search_and_options_replace_the_hosts() {
        let host = "nameserver 10.0.0.1\nsearch corp.example\noptions ndots:2\n";
        let ns = Ipv4Addr::new(172, 17, 0, 1);
        assert_eq!(
            resolv_conf(ns, host),
            "# Generated by lanyard.\nnameserver 172.17.0.1\nsearch corp.example\noptions ndots:2\n"
        );
        let extra = ExtraFiles {
            dns_search: vec!["a.test".into(), "b.test".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_with(ns, host, &extra),
            "# Generated by lanyard.\nnameserver 172.17.0.1\noptions ndots:2\nsearch a.test b.test\n"
        );
        let extra = ExtraFiles {
            dns_search: vec![".".into()],
            dns_options: vec!["ndots:5".into(), "timeout:1".into()],
            ..Default::default()
        };
        assert_eq!(
            resolv_conf_with(ns, host, &extra),
            "# Generated by lanyard.\nnameserver 172.17.0.1\noptions ndots:5 timeout:1\n"
        );
    }

    #[test]
    fn hosts_lists_every_address_of_the_container() {
        let ips: [IpAddr; 2] = [
            "172.17.0.2".parse().unwrap(),
            "fd00:172:17::2".parse().unwrap(),
        ];
        let h = hosts_file(&ips, "abc123", "web");
        let lines: Vec<&str> = h.lines().collect();
        assert_eq!(lines[0], "127.0.0.1\tlocalhost");
        assert!(lines.contains(&"ff02::2\tip6-allrouters"), "{h}");
        assert_eq!(
            &lines[lines.len() - 2..],
            ["172.17.0.2\tabc123 web", "fd00:172:17::2\tabc123 web"]
        );
        // The name is not repeated when it is the hostname.
        assert!(hosts_file(&ips[..1], "web", "web").ends_with("172.17.0.2\tweb\n"));
    }
}
