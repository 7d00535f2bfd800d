//! `slirp4netns ARGS...` (lanyard installed or linked as `slirp4netns`)
//! and `lanyard slirp4netns ARGS...`: slirp4netns 1.2's command line,
//! parsed as its getopt_long parses it — `--opt=value` and `--opt value`,
//! clustered short options (`-c6`, `-e3`), unambiguous prefixes of long
//! options, options after the operands — with its messages and exit codes
//! (1 for every error, 0 for `--help` and `--version`). What the helper
//! does is `lanyard::slirp`'s.

use std::path::PathBuf;

use lanyard::slirp::{self, Options, Target, EXIT_FAILURE};

/// An option: its long name, its short letter, whether it takes a value.
struct Opt {
    long: &'static str,
    short: Option<char>,
    value: bool,
}

const fn opt(long: &'static str, short: Option<char>, value: bool) -> Opt {
    Opt { long, short, value }
}

/// Every option slirp4netns 1.2 has (`--target-type` too, so that `bess`
/// is refused with a reason rather than as an unknown option).
const OPTS: &[Opt] = &[
    opt("configure", Some('c'), false),
    opt("exit-fd", Some('e'), true),
    opt("ready-fd", Some('r'), true),
    opt("mtu", Some('m'), true),
    opt("cidr", None, true),
    opt("disable-host-loopback", None, false),
    opt("no-host-loopback", None, false),
    opt("netns-type", None, true),
    opt("userns-path", None, true),
    opt("api-socket", Some('a'), true),
    opt("enable-ipv6", Some('6'), false),
    opt("enable-sandbox", None, false),
    opt("create-sandbox", None, false),
    opt("enable-seccomp", None, false),
    opt("help", Some('h'), false),
    opt("version", Some('v'), false),
    opt("outbound-addr", None, true),
    opt("outbound-addr6", None, true),
    opt("disable-dns", None, false),
    opt("macaddress", None, true),
    opt("target-type", None, true),
];

/// The help text: lanyard's words, with every option word the engines
/// look for in it (podman drops an option whose word is missing;
/// rootlesskit refuses to start).
fn usage(argv0: &str) -> String {
    format!(
        "Usage: {argv0} [OPTION]... PID|PATH [TAPNAME]
User-mode networking for a network namespace, slirp4netns-compatible: lanyard's
switch, gateway, DNS, DHCP, NAT and published ports serve the namespace's TAP.

-c, --configure          create the TAP and configure it (lo and TAP up, MTU, address, default route)
-e, --exit-fd=FD         exit when FD hangs up (its writers have all closed it)
-r, --ready-fd=FD        write \"1\" to FD and close it once the network and API are ready
-m, --mtu=MTU            MTU of the TAP and the network (default={default_mtu}, max={max_mtu}, min={min_mtu})
-6, --enable-ipv6        IPv6 too: fd00::/64, router fd00::2 (fe80::2) advertising it
-a, --api-socket=PATH    serve slirp4netns's JSON API (add_hostfwd, list_hostfwd, remove_hostfwd, get_info) at PATH
--cidr=CIDR              IPv4 network (default={cidr}): gateway .2, DNS .3, DHCP from .15, guest .100
--disable-host-loopback  refuse connections to the gateway's address that would reach the host's 127.0.0.1
--netns-type=TYPE        what PID|PATH names: pid (default; its user and network namespaces) or path (a netns file)
--userns-path=PATH       join this user namespace before the network namespace
--enable-sandbox         require the sandbox: an empty read-only root with /etc and /run, capabilities dropped, Landlock
--enable-seccomp         require the system-call allow-list (seccomp)
--outbound-addr=IPv4     leave from this IPv4 address (or an interface's)
--outbound-addr6=IPv6    leave from this IPv6 address (or an interface's)
--disable-dns            no DNS at the network's .3
--macaddress=MAC         the TAP's MAC address (only with -c)
--target-type=TYPE       netns (the only type lanyard serves)
-h, --help               show this help and exit
-v, --version            show the version and exit

Without --enable-sandbox and --enable-seccomp lanyard still confines itself as far as
the kernel allows ([daemon] sandbox of LANYARD_CONFIG's file, on by default).
LANYARD_CONFIG=FILE takes limits, NAT, DNS and sandbox settings from a lanyard config;
LANYARD_DNS_UPSTREAM=IP:PORT[,...] sets the DNS upstreams.
",
        default_mtu = slirp::DEFAULT_MTU,
        max_mtu = slirp::MAX_MTU,
        min_mtu = lanyard::config::MIN_MTU,
        cidr = slirp::DEFAULT_CIDR,
    )
}

fn version() -> String {
    format!(
        "slirp4netns version {} (lanyard {})
commit: {}
libslirp: none (lanyard's own data path)
SLIRP_CONFIG_VERSION_MAX: {}
libseccomp: none (seccompiler)
",
        slirp::SLIRP4NETNS_VERSION,
        env!("CARGO_PKG_VERSION"),
        option_env!("LANYARD_COMMIT").unwrap_or("unknown"),
        slirp::SLIRP_CONFIG_VERSION,
    )
}

/// What parsing ended with.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    Run(Box<Options>),
    Help,
    Version,
    /// An error: the message (empty when getopt's only answer is the
    /// usage) for stderr.
    Error(String),
}

/// Finds a long option by its name or an unambiguous prefix of it.
fn find_long(name: &str) -> Result<&'static Opt, String> {
    if let Some(o) = OPTS.iter().find(|o| o.long == name) {
        return Ok(o);
    }
    let matches: Vec<&Opt> = OPTS.iter().filter(|o| o.long.starts_with(name)).collect();
    match matches.as_slice() {
        [o] => Ok(o),
        [] => Err(format!("unrecognized option '--{name}'")),
        _ => Err(format!("option '--{name}' is ambiguous")),
    }
}

/// Parses the arguments after argv[0].
pub fn parse(args: &[String]) -> Parsed {
    let mut given: Vec<(&'static str, Option<String>)> = Vec::new();
    let mut operands: Vec<String> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        i += 1;
        if a == "--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(body) = a.strip_prefix("--") {
            let (name, inline) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (body, None),
            };
            let o = match find_long(name) {
                Ok(o) => o,
                Err(e) => return Parsed::Error(e),
            };
            let value = match (o.value, inline) {
                (true, Some(v)) => Some(v),
                (true, None) => match args.get(i) {
                    Some(v) => {
                        i += 1;
                        Some(v.clone())
                    }
                    None => {
                        return Parsed::Error(format!("option '--{}' requires an argument", o.long))
                    }
                },
                (false, Some(_)) => {
                    return Parsed::Error(format!(
                        "option '--{}' doesn't allow an argument",
                        o.long
                    ))
                }
                (false, None) => None,
            };
            given.push((o.long, value));
            continue;
        }
        if a.len() > 1 && a.starts_with('-') {
            let chars: Vec<char> = a[1..].chars().collect();
            let mut j = 0;
            while j < chars.len() {
                let c = chars[j];
                j += 1;
                let Some(o) = OPTS.iter().find(|o| o.short == Some(c)) else {
                    return Parsed::Error(format!("invalid option -- '{c}'"));
                };
                if !o.value {
                    given.push((o.long, None));
                    continue;
                }
                let rest: String = chars[j..].iter().collect();
                let value = if !rest.is_empty() {
                    rest
                } else if let Some(v) = args.get(i) {
                    i += 1;
                    v.clone()
                } else {
                    return Parsed::Error(format!("option requires an argument -- '{c}'"));
                };
                given.push((o.long, Some(value)));
                break;
            }
            continue;
        }
        operands.push(a.clone());
    }
    interpret(given, operands)
}

fn interpret(given: Vec<(&'static str, Option<String>)>, operands: Vec<String>) -> Parsed {
    let mut o = Options {
        configure: false,
        exit_fd: None,
        ready_fd: None,
        mtu: slirp::DEFAULT_MTU,
        enable_ipv6: false,
        api_socket: None,
        cidr: None,
        disable_host_loopback: false,
        target: Target::Pid(0),
        userns_path: None,
        enable_sandbox: false,
        enable_seccomp: false,
        outbound_addr: None,
        outbound_addr6: None,
        disable_dns: false,
        macaddress: None,
        tapname: "tap0".into(),
    };
    let mut netns_type: Option<String> = None;
    let mut target_type: Option<String> = None;
    let fd = |v: &str, what: &str| -> Result<i32, String> {
        v.parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| format!("{what} must be a non-negative integer"))
    };
    // In the order given, as getopt hands them over: --help or --version
    // ends parsing where it stands.
    for (name, value) in given {
        let v = value.unwrap_or_default();
        let step: Result<(), String> = match name {
            "configure" => {
                o.configure = true;
                Ok(())
            }
            "exit-fd" => fd(&v, "exit-fd").map(|n| o.exit_fd = Some(n)),
            "ready-fd" => fd(&v, "ready-fd").map(|n| o.ready_fd = Some(n)),
            "mtu" => v
                .parse::<u32>()
                .ok()
                .filter(|m| (1..=slirp::MAX_MTU).contains(m))
                .map(|m| o.mtu = m)
                .ok_or_else(|| "MTU must be a positive integer (< 65522)".to_string()),
            "cidr" => {
                o.cidr = Some(v);
                Ok(())
            }
            "disable-host-loopback" | "no-host-loopback" => {
                o.disable_host_loopback = true;
                Ok(())
            }
            "netns-type" => {
                netns_type = Some(v);
                Ok(())
            }
            "userns-path" => {
                if std::path::Path::new(&v).exists() {
                    o.userns_path = Some(PathBuf::from(v));
                    Ok(())
                } else {
                    Err(format!("userns path doesn't exist: {v}"))
                }
            }
            "api-socket" => {
                o.api_socket = Some(PathBuf::from(v));
                Ok(())
            }
            "enable-ipv6" => {
                o.enable_ipv6 = true;
                Ok(())
            }
            "enable-sandbox" | "create-sandbox" => {
                o.enable_sandbox = true;
                Ok(())
            }
            "enable-seccomp" => {
                o.enable_seccomp = true;
                Ok(())
            }
            "help" => return Parsed::Help,
            "version" => return Parsed::Version,
            "outbound-addr" => {
                o.outbound_addr = Some(v);
                Ok(())
            }
            "outbound-addr6" => {
                o.outbound_addr6 = Some(v);
                Ok(())
            }
            "disable-dns" => {
                o.disable_dns = true;
                Ok(())
            }
            "macaddress" => {
                o.macaddress = Some(v);
                Ok(())
            }
            "target-type" => {
                target_type = Some(v);
                Ok(())
            }
            _ => Err(format!("unrecognized option '--{name}'")),
        };
        if let Err(e) = step {
            return Parsed::Error(e);
        }
    }
    if o.macaddress.is_some() && !o.configure {
        return Parsed::Error(
            "--macaddr cannot be specified when --configure or -c is not specified".into(),
        );
    }
    match target_type.as_deref() {
        None | Some("netns") => {}
        Some("bess") => {
            return Parsed::Error(
                "--target-type=bess is not supported: lanyard serves network namespaces only (--target-type=netns)"
                    .into(),
            )
        }
        Some(_) => {
            return Parsed::Error("--target-type must be either \"netns\" or \"bess\"".into())
        }
    }
    let Some(first) = operands.first() else {
        return Parsed::Error(String::new());
    };
    if let Some(t) = operands.get(1) {
        o.tapname = t.clone();
    }
    if operands.len() > 2 {
        // slirp4netns warns and goes on (for compatibility), and so do we.
        println!("WARNING: too many arguments");
    }
    o.target = match netns_type.as_deref() {
        None | Some("pid") => match first.parse::<u32>() {
            Ok(p) if p > 0 => Target::Pid(p),
            _ => return Parsed::Error("PID must be a positive integer".into()),
        },
        Some("path") => {
            if !std::path::Path::new(first).exists() {
                return Parsed::Error(format!(
                    "existing path expected when --netns-type=path: {first}: No such file or directory"
                ));
            }
            Target::Path(PathBuf::from(first))
        }
        Some(other) => {
            return Parsed::Error(format!(
                "--netns-type must be either \"pid\" or \"path\", not \"{other}\""
            ))
        }
    };
    if o.tapname.is_empty() || o.tapname.len() >= 16 {
        return Parsed::Error(format!("TAPNAME '{}' must be 1-15 bytes", o.tapname));
    }
    Parsed::Run(Box::new(o))
}

/// Runs `slirp4netns ARGS...`; `argv0` is what the usage names.
pub fn main(argv0: &str, args: &[String]) -> i32 {
    match parse(args) {
        Parsed::Help => {
            print!("{}", usage(argv0));
            0
        }
        Parsed::Version => {
            print!("{}", version());
            0
        }
        Parsed::Error(e) => {
            if !e.is_empty() {
                eprintln!("{argv0}: {e}");
            }
            print!("{}", usage(argv0));
            EXIT_FAILURE
        }
        Parsed::Run(o) => slirp::run(&o),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn run(s: &str) -> Options {
        match parse(&args(s)) {
            Parsed::Run(o) => *o,
            other => panic!("{s}: {other:?}"),
        }
    }

    fn error(s: &str) -> String {
        match parse(&args(s)) {
            Parsed::Error(e) => e,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn podmans_and_rootlesskits_argv_parse_alike() {
        // podman: --opt=value, -e 3 -r 4 as separate words, a path.
        let p = run("--disable-host-loopback --mtu=65520 --enable-sandbox --enable-seccomp --enable-ipv6 -c -e 3 -r 4 --api-socket /run/x.net --netns-type=path /proc/self/ns/net tap0");
        assert!(p.configure && p.disable_host_loopback && p.enable_ipv6);
        assert!(p.enable_sandbox && p.enable_seccomp);
        assert_eq!((p.exit_fd, p.ready_fd, p.mtu), (Some(3), Some(4), 65520));
        assert_eq!(p.api_socket, Some(PathBuf::from("/run/x.net")));
        assert_eq!(p.target, Target::Path("/proc/self/ns/net".into()));
        assert_eq!(p.tapname, "tap0");
        // rootlesskit: --opt value, a PID, no -c.
        let r = run("--mtu 1500 -r 3 --disable-host-loopback --cidr 10.6.0.0/24 --api-socket /tmp/s --enable-ipv6 4242 eth7");
        assert!(!r.configure);
        assert_eq!((r.mtu, r.ready_fd), (1500, Some(3)));
        assert_eq!(r.cidr.as_deref(), Some("10.6.0.0/24"));
        assert_eq!(r.target, Target::Pid(4242));
        assert_eq!(r.tapname, "eth7");
    }

    #[test]
    fn getopt_forms() {
        // Clustered and attached short options, options after operands,
        // prefixes of long options, "--".
        let o = run("-c6 -e10 42 --cidr 10.0.135.128/25 tap11 --macaddr=0e:d4:18:d9:38:fb");
        assert!(o.configure && o.enable_ipv6);
        assert_eq!(o.exit_fd, Some(10));
        assert_eq!(o.target, Target::Pid(42));
        assert_eq!(o.tapname, "tap11");
        assert_eq!(o.macaddress.as_deref(), Some("0e:d4:18:d9:38:fb"));
        assert_eq!(run("-m1280 -- 7").mtu, 1280);
        assert_eq!(run("7").tapname, "tap0");
        assert!(matches!(parse(&args("--help")), Parsed::Help));
        assert!(matches!(parse(&args("-v")), Parsed::Version));
        assert!(matches!(parse(&args("-c -h 1 tap0")), Parsed::Help));
    }

    #[test]
    fn bad_arguments_are_named_as_slirp4netns_names_them() {
        assert_eq!(error("--bogus 1 tap0"), "unrecognized option '--bogus'");
        assert_eq!(error("-x 1 tap0"), "invalid option -- 'x'");
        assert_eq!(error("--dis 1 tap0"), "option '--dis' is ambiguous");
        assert_eq!(error("-e"), "option requires an argument -- 'e'");
        assert_eq!(error("--mtu"), "option '--mtu' requires an argument");
        assert_eq!(
            error("--configure=yes 1 tap0"),
            "option '--configure' doesn't allow an argument"
        );
        assert_eq!(
            error("-e x 1 tap0"),
            "exit-fd must be a non-negative integer"
        );
        assert_eq!(
            error("-r -1 1 tap0"),
            "ready-fd must be a non-negative integer"
        );
        assert_eq!(
            error("-m 0 1 tap0"),
            "MTU must be a positive integer (< 65522)"
        );
        assert_eq!(
            error("-m 65522 1 tap0"),
            "MTU must be a positive integer (< 65522)"
        );
        assert_eq!(error("0 tap0"), "PID must be a positive integer");
        assert_eq!(error("abc tap0"), "PID must be a positive integer");
        assert!(error("--netns-type=path /nonexistent tap0").starts_with("existing path expected"));
        assert_eq!(
            error("--userns-path=/nonexistent 1 tap0"),
            "userns path doesn't exist: /nonexistent"
        );
        assert_eq!(
            error("--macaddress 0e:d4:18:d9:38:fb 1 tap0"),
            "--macaddr cannot be specified when --configure or -c is not specified"
        );
        assert!(error("--target-type=bess /tmp/s").contains("not supported"));
        assert_eq!(error(""), "");
        assert_eq!(
            error("1 tap-name-far-too-long"),
            "TAPNAME 'tap-name-far-too-long' must be 1-15 bytes"
        );
    }

    #[test]
    fn the_help_has_every_word_the_engines_look_for() {
        let h = usage("slirp4netns");
        for w in [
            "--enable-ipv6",
            "--cidr",
            "--outbound-addr",
            "--mtu",
            "--disable-host-loopback",
            "--enable-sandbox",
            "--enable-seccomp",
            "--netns-type",
            "--api-socket",
            "--userns-path",
            "--disable-dns",
            "--macaddress",
        ] {
            assert!(h.contains(w), "{w}");
        }
        assert!(version().contains("SLIRP_CONFIG_VERSION_MAX: 4"));
        assert!(version().starts_with("slirp4netns version 1.2.0"));
    }
}
