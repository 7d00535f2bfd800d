//! `dns`: the embedded DNS — the name table under mutation, its
//! resolutions and local answers against a model, and the UDP forwarder
//! over a fake host with forged and real upstream answers.
//!
//! Four networks (ids 0–3: 172.17.0.0/16, 10.9.0.0/24, 192.168.5.0/24,
//! 10.77.0.0/16, gateways at .1; networks 0 and 1 may be dual stack with
//! fd00:17::/64 and fd00:9::/64, gateways at ::1), each with one endpoint
//! at .2 (port `k` for network `k`). The table starts empty: networks are
//! added (with or without NAT, i.e. internal; with or without IPv6),
//! removed, and containers named on them by addresses of either family,
//! as the control plane does (a container's names replaced by `add`, gone
//! with an empty list). Queries go to `dns::Dns` (what the switch holds:
//! the rate limit, the local answers and the forwarder together) over the
//! same table, its upstreams chosen by the first input byte (bit 0
//! 10.200.0.9:53, bit 1 [fd00::9]:53, neither: none), on
//! `fuzz_targets/logged_io.rs` (`host::FakeIo`, its script fed by the
//! input) whose `recv_from` answers from the upstreams or from forgers
//! (10.200.0.9:5353, 10.200.0.66:53, [fd00::9]:5353).
//!
//! Input: `upstreams:u8`, then operations, each `op:u8` and its fields
//! (read as zeros past the end), at most `MAX_OPS`. The operation is
//! `(op & 0x3f) % 12`; bits 6 and 7 are flags of some:
//!
//! | op | what | fields |
//! |---------|------|--------|
//! | 0 | `network_added` | net, flags (bit 0 internal, bit 1 no IPv6) |
//! | 1 | `add` (names: count % 4; 0 removes, as `Switch::set_names`; skipped for an address another network has) | net, ip, container (% 6), names |
//! | 2 | `remove` | net, ip |
//! | 3 | `network_removed` | net |
//! | 4 | `resolve`, against the model | net, asker ip, name, qtype |
//! | 5 | `local_answer`, against the model | net, client ip, query, out len |
//! | 6 | `Dns::query` from an endpoint's port (op bit 7: a burst of `1 << (count % 9)`, the id counting up) | endpoint, client ip, client port, query, [count:u8] |
//! | 7 | feed the fake's script | len:u8, bytes |
//! | 8 | an answer to a pending query, then `Dns::on_event` on its token | pending, kind, tail |
//! | 9 | `Dns::on_event` on a registered token (the script as it is) | token |
//! | 10 | `Dns::tick` | ms:u16 (bit 15: seconds) |
//! | 11 | `Dns::port_removed` | port |
//!
//! A token is a `host::PollToken::DnsQuery { slot, v6 }`; where the input
//! names one that is not registered, `sel` stands for slot `sel / 2`,
//! family `sel % 2`.
//!
//! An address (`ip` fields) is IPv4 or, with bit 6 of its selector, IPv6
//! (the `Dns::query` client is always IPv4: the forwarder's frames are).
//! A name is one of a vocabulary (with and without `.lanyard.internal`),
//! `host.docker.internal`, the reverse name of an address (`in-addr.arpa`
//! or `ip6.arpa`, a record's or any, or an `ip6.arpa` name made malformed),
//! or bytes from the input; a query is built from a name, id, type and
//! class, or (op bit 6) taken raw from the input.
//!
//! What must hold:
//!
//! * `resolve` and `local_answer` agree with a model of the table (a list
//!   of records): the addresses of a name are exactly those of the
//!   containers carrying it on the networks the asker shares, of the
//!   family asked (no duplicates; a name visible only with the other
//!   family's is NODATA), reverse names (the model parses `ip6.arpa` on
//!   its own) give a primary name of the address on those networks,
//!   `host.docker.internal` the gateway of each family its network has,
//!   unknown single labels and `lanyard.internal` names NXDOMAIN, and
//!   nothing an asker only on internal networks asks is forwarded
//!   (SERVFAIL instead);
//! * a local answer fits its buffer and parses as a response to the query:
//!   its id, the question as asked, the rcode the resolution calls for,
//!   well-formed records (A and AAAA data from the model's set, A before
//!   AAAA, PTR data a valid name), TC set when records were left out;
//! * every frame the forwarder emits goes to the asking endpoint's port and
//!   parses (etherparse) as IPv4/UDP from the gateway's port 53 to the
//!   client (its MAC, address and port), with valid IPv4 and UDP checksums
//!   once the partial checksum is completed, carrying a DNS response (QR)
//!   with the id and question of a query that client sent from that port;
//! * an upstream's answer reaches the client only if a datagram came from
//!   an upstream's own address with the id the forwarder sent and the
//!   question asked (case aside), and is then relayed unchanged but for
//!   the id; conversely such a datagram is always relayed;
//! * a query from an asker only on internal networks makes no `send_to`;
//! * `pending_len()` never exceeds `dns::MAX_PENDING` and equals the
//!   number of queries with a socket on the poll.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use libfuzzer_sys::fuzz_target;

use lanyard::dns::{self, local_answer, Dns, LocalAnswer, NameTable, Resolution};
use lanyard::frame::FrameBuf;
use lanyard::host::PollToken;
use lanyard::inside::{Emit, Inside};
use lanyard::port::PortId;
use lanyard::ratelimit::{Budgets, SourceLimits};
use lanyard::time::Time;
use lanyard::wire::dns as w;
use lanyard::wire::vnet::VnetHdr;
use lanyard::wire::MacAddr;

#[path = "logged_io.rs"]
mod logged_io;
use logged_io::{IoLog, LoggedIo};

const MAX_OPS: usize = 96;
const NETS: usize = 4;
/// The ports queries come from (an endpoint of each network, and one more).
const PORTS: usize = NETS + 1;
/// Network bases and prefix lengths (never overlapping, as the config
/// guarantees).
const SUBNETS: [([u8; 4], u8); NETS] = [
    ([172, 17, 0, 0], 16),
    ([10, 9, 0, 0], 24),
    ([192, 168, 5, 0], 24),
    ([10, 77, 0, 0], 16),
];
const CONTAINERS: usize = 6;
const VOCAB: [&str; 10] = [
    "web",
    "db",
    "api",
    "many",
    "Web",
    "host",
    "c0ffee123456",
    "x.y",
    "a-b_c",
    "lanyard.internal",
];

/// The /64 of each network's IPv6 side; only networks 0 and 1 may have
/// one (the others' are addresses of no registered prefix).
const SUBNETS6: [[u16; 4]; NETS] = [
    [0xfd00, 0x17, 0, 0],
    [0xfd00, 0x9, 0, 0],
    [0xfd00, 0xff02, 0, 0],
    [0xfd00, 0xff03, 0, 0],
];
const HAS_V6: [bool; NETS] = [true, true, false, false];

fn offset6(net: usize, n: u16) -> Ipv6Addr {
    let [a, b, c, d] = SUBNETS6[net];
    Ipv6Addr::new(a, b, c, d, 0, 0, 0, n)
}

fn gateway6(net: usize) -> Ipv6Addr {
    offset6(net, 1)
}

fn on_subnet6(net: usize, a: Ipv6Addr) -> bool {
    a.segments()[..4] == SUBNETS6[net]
}

fn base(net: usize) -> Ipv4Addr {
    Ipv4Addr::from(SUBNETS[net].0)
}

fn on_subnet(net: usize, a: Ipv4Addr) -> bool {
    let mask = u32::MAX << (32 - SUBNETS[net].1 as u32);
    u32::from(a) & mask == u32::from(base(net))
}

fn offset(net: usize, n: u32) -> Ipv4Addr {
    Ipv4Addr::from(u32::from(base(net)) + n)
}

fn gateway(net: usize) -> Ipv4Addr {
    offset(net, 1)
}

fn endpoint(k: usize) -> Inside {
    let ip = offset(k, 2);
    Inside {
        port: PortId(k as u32),
        mac: MacAddr::docker_from_ipv4(ip),
        ip: ip.into(),
        gateway_mac: MacAddr::docker_from_ipv4(gateway(k)),
        gateway_ip: gateway(k).into(),
        mtu: 1500,
        allow_host_loopback: false,
        loopback_unreachable: false,
        internal: false,
        net: k as u32,
    }
}

fn upstream4() -> SocketAddr {
    SocketAddr::from((Ipv4Addr::new(10, 200, 0, 9), 53))
}

fn upstream6() -> SocketAddr {
    SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9), 53))
}

/// Reads fields from fuzz input; zeros past its end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u16(&mut self) -> u16 {
        u16::from_be_bytes([self.u8(), self.u8()])
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

// --- the model of the name table --------------------------------------------

#[derive(Debug, Clone)]
struct Rec {
    net: u32,
    ip: IpAddr,
    container: String,
    /// As given (the first is the primary, answered for reverse lookups).
    names: Vec<String>,
}

/// A known network: internal or not, registered with its IPv6 side or not.
#[derive(Debug, Clone, Copy)]
struct NetModel {
    internal: bool,
    v6: bool,
}

#[derive(Default)]
struct Model {
    nets: BTreeMap<u32, NetModel>,
    recs: Vec<Rec>,
}

/// What a resolution should come to.
#[derive(Debug)]
enum Want {
    Addrs(BTreeSet<IpAddr>),
    /// One of these names; `first` if it is set (the asking network's).
    Name {
        any_of: BTreeSet<String>,
        first: Option<String>,
    },
    NoData,
    NxDomain,
    Forward,
}

impl Model {
    fn add(&mut self, net: u32, ip: IpAddr, container: &str, names: &[String]) {
        self.remove(net, ip);
        if !names.is_empty() {
            self.recs.push(Rec {
                net,
                ip,
                container: container.to_string(),
                names: names.to_vec(),
            });
        }
    }

    fn remove(&mut self, net: u32, ip: IpAddr) {
        self.recs.retain(|r| !(r.net == net && r.ip == ip));
    }

    fn network_removed(&mut self, net: u32) {
        self.nets.remove(&net);
        self.recs.retain(|r| r.net != net);
    }

    fn networks_of(&self, net: u32, asker: IpAddr) -> BTreeSet<u32> {
        let mut n = BTreeSet::from([net]);
        if let Some(r) = self.recs.iter().find(|r| r.net == net && r.ip == asker) {
            for o in self.recs.iter().filter(|o| o.container == r.container) {
                n.insert(o.net);
            }
        }
        n
    }

    fn may_forward(&self, net: u32, asker: IpAddr) -> bool {
        self.networks_of(net, asker)
            .iter()
            .any(|n| self.nets.get(n).is_none_or(|m| !m.internal))
    }

    fn resolve(&self, net: u32, asker: IpAddr, name: &str, qtype: u16) -> Want {
        use w::qtype as t;
        let nets = self.networks_of(net, asker);
        let reverse = w::reverse_v4(name)
            .map(IpAddr::V4)
            .or_else(|| model_reverse_v6(name).map(IpAddr::V6));
        if let Some(ip) = reverse {
            if qtype != t::PTR && qtype != t::ANY {
                return Want::Forward;
            }
            let on: Vec<&Rec> = self
                .recs
                .iter()
                .filter(|r| r.ip == ip && nets.contains(&r.net))
                .collect();
            if !on.is_empty() {
                return Want::Name {
                    any_of: on.iter().map(|r| r.names[0].clone()).collect(),
                    first: on.iter().find(|r| r.net == net).map(|r| r.names[0].clone()),
                };
            }
            let known = nets.iter().any(|n| {
                let k = *n as usize;
                self.nets.get(n).is_some_and(|m| match ip {
                    IpAddr::V4(a) => on_subnet(k, a),
                    IpAddr::V6(a) => m.v6 && on_subnet6(k, a),
                })
            });
            return if known { Want::NxDomain } else { Want::Forward };
        }
        let owned = name == dns::DOMAIN || name.ends_with(".lanyard.internal");
        let short = name.strip_suffix(".lanyard.internal").unwrap_or(name);
        let wants = |ip: &IpAddr| match qtype {
            t::A => ip.is_ipv4(),
            t::AAAA => ip.is_ipv6(),
            t::ANY => true,
            _ => false,
        };
        if short == "host" && owned || name == "host.docker.internal" {
            // The gateways `net` was registered with.
            let mut gws = BTreeSet::new();
            if let Some(m) = self.nets.get(&net) {
                gws.insert(IpAddr::V4(gateway(net as usize)));
                if m.v6 {
                    gws.insert(IpAddr::V6(gateway6(net as usize)));
                }
            }
            gws.retain(wants);
            return if gws.is_empty() {
                Want::NoData
            } else {
                Want::Addrs(gws)
            };
        }
        let visible: BTreeSet<IpAddr> = self
            .recs
            .iter()
            .filter(|r| {
                nets.contains(&r.net) && r.names.iter().any(|n| n.to_ascii_lowercase() == short)
            })
            .map(|r| r.ip)
            .collect();
        if !visible.is_empty() {
            let ips: BTreeSet<IpAddr> = visible.into_iter().filter(wants).collect();
            return if ips.is_empty() {
                Want::NoData
            } else {
                Want::Addrs(ips)
            };
        }
        if owned || !short.contains('.') {
            return Want::NxDomain;
        }
        Want::Forward
    }
}

/// The model's own reading of an `ip6.arpa` name (RFC 3596 2.5): 32
/// one-hex-digit labels, least significant first, either case.
fn model_reverse_v6(name: &str) -> Option<Ipv6Addr> {
    let labels: Vec<&str> = name.split('.').collect();
    if labels.len() != 34
        || !labels[32].eq_ignore_ascii_case("ip6")
        || !labels[33].eq_ignore_ascii_case("arpa")
    {
        return None;
    }
    let mut hex = String::new();
    for l in labels[..32].iter().rev() {
        if l.len() != 1 || !l.chars().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        hex.push_str(l);
    }
    u128::from_str_radix(&hex, 16).ok().map(Ipv6Addr::from)
}

/// The reverse name of an address, `in-addr.arpa` or `ip6.arpa`.
fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(a) => {
            let o = a.octets();
            format!("{}.{}.{}.{}.in-addr.arpa", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(a) => {
            let mut s: String = a
                .octets()
                .iter()
                .rev()
                .map(|o| format!("{:x}.{:x}.", o & 0xf, o >> 4))
                .collect();
            s.push_str("ip6.arpa");
            s
        }
    }
}

// --- queries and names ------------------------------------------------------

/// A name for a lookup: lower case, no final dot (what `resolve` takes);
/// `raw` keeps the input's case for queries.
fn pick_name(r: &mut Reader, model: &Model) -> String {
    let sel = r.u8();
    let v = VOCAB[(sel as usize / 8) % VOCAB.len()];
    match sel % 8 {
        0 | 1 => v.to_string(),
        2 => format!("{v}.lanyard.internal"),
        3 => "host.docker.internal".to_string(),
        4 => "host.lanyard.internal".to_string(),
        5 => {
            // The reverse name of an address: a container's, or any (IPv4,
            // IPv6, in a network's prefix), or an ip6.arpa name spoilt.
            let ip = match model.recs.get(sel as usize / 8) {
                Some(rec) if r.u8() & 1 == 0 => return reverse_name(rec.ip),
                _ => {
                    let f = r.u8();
                    let net = (f >> 3) as usize % NETS;
                    match f & 7 {
                        0 | 1 => IpAddr::from([r.u8(), r.u8(), r.u8(), r.u8()]),
                        2 => IpAddr::from(<[u8; 16]>::try_from(r.take(16)).unwrap_or([0; 16])),
                        3 => offset6(net, r.u16()).into(),
                        4 => offset(net, r.u16() as u32).into(),
                        m => {
                            let ip = match model.recs.get(f as usize >> 3) {
                                Some(rec) => rec.ip,
                                None => offset6(net, 2).into(),
                            };
                            let IpAddr::V6(a) = ip else {
                                return reverse_name(ip);
                            };
                            let good = reverse_name(a.into());
                            return match (m, r.u8() % 4) {
                                // 31 labels, 33 labels.
                                (5, _) => good[2..].to_string(),
                                (6, 0) => format!("0.{good}"),
                                // A two-digit label, a non-hex one.
                                (6, 1) => format!("0{good}"),
                                (6, _) => format!("g{}", &good[1..]),
                                // Upper case (the table takes it).
                                _ => good.to_ascii_uppercase(),
                            };
                        }
                    }
                }
            };
            reverse_name(ip)
        }
        6 => "example.com".to_string(),
        _ => {
            let n = r.u8() as usize % 40;
            String::from_utf8_lossy(r.take(n)).into_owned()
        }
    }
}

fn pick_qtype(r: &mut Reader) -> u16 {
    match r.u8() % 6 {
        0 | 1 => w::qtype::A,
        2 => w::qtype::AAAA,
        3 => w::qtype::PTR,
        4 => w::qtype::ANY,
        _ => r.u16(),
    }
}

/// A query for `name` (labels over 63 bytes are cut, empty ones skipped).
fn build_query(id: u16, rd: bool, name: &str, qtype: u16, qclass: u16) -> Vec<u8> {
    let mut q = vec![0u8; 12];
    q[0..2].copy_from_slice(&id.to_be_bytes());
    q[2] = u8::from(rd);
    q[5] = 1;
    for l in name.split('.').filter(|l| !l.is_empty()) {
        let l = &l.as_bytes()[..l.len().min(63)];
        q.push(l.len() as u8);
        q.extend_from_slice(l);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&qclass.to_be_bytes());
    q
}

/// A query from the input: built (op bit 6 clear) or raw.
fn pick_query(r: &mut Reader, model: &Model, raw: bool) -> Vec<u8> {
    if raw {
        let n = r.u8() as usize;
        return r.take(n).to_vec();
    }
    let name = pick_name(r, model);
    let qtype = pick_qtype(r);
    let qclass = match r.u8() % 8 {
        7 => r.u16(),
        6 => 3, // CH
        _ => w::CLASS_IN,
    };
    let id = r.u16();
    // Case from the input: the answer must echo it.
    let name = if r.u8() & 1 == 1 {
        name.to_ascii_uppercase()
    } else {
        name
    };
    build_query(id, true, &name, qtype, qclass)
}

fn pick_ip4(r: &mut Reader, net: usize, sel: u8) -> Ipv4Addr {
    match sel % 4 {
        0 => offset(net, 2),
        1 => offset(net, 3),
        2 => offset(net, 2 + (sel >> 2) as u32),
        _ => Ipv4Addr::from([r.u8(), r.u8(), r.u8(), r.u8()]),
    }
}

/// An address on `net`, IPv6 when bit 6 of the selector is set.
fn pick_ip(r: &mut Reader, net: usize) -> IpAddr {
    let sel = r.u8();
    if sel & 0x40 == 0 {
        return pick_ip4(r, net, sel).into();
    }
    match sel % 4 {
        0 => offset6(net, 2).into(),
        1 => offset6(net, 3).into(),
        2 => offset6(net, 2 + (sel >> 2) as u16).into(),
        _ => IpAddr::from(<[u8; 16]>::try_from(r.take(16)).unwrap_or([0; 16])),
    }
}

/// A container name as the control plane accepts them (`check_name`).
fn pick_names(r: &mut Reader, container: &str) -> Vec<String> {
    let count = r.u8() % 4;
    let mut names = Vec::new();
    for _ in 0..count {
        let sel = r.u8();
        let n = if sel & 0x80 == 0 {
            VOCAB[sel as usize % VOCAB.len()].to_string()
        } else {
            let len = r.u8() as usize % 70;
            String::from_utf8_lossy(r.take(len)).into_owned()
        };
        if lanyard::config::check_name("--alias", &n).is_ok() {
            names.push(n);
        }
    }
    if count > 0 && names.is_empty() {
        // As the control plane does, the container's own name goes first.
        names.push(container.to_string());
    }
    names
}

// --- parsing what comes back ---------------------------------------------------

/// A response parsed as far as the checks need.
struct Response {
    id: u16,
    flags: u16,
    rcode: u8,
    question: Vec<u8>,
    answers: Vec<(u16, Vec<u8>)>,
}

/// Parses `m` as a response whose question is `qlen` bytes long; records
/// are expected as `build_response` writes them (owner a pointer to the
/// question).
fn parse_local_response(m: &[u8], qlen: usize) -> Response {
    assert!(m.len() >= 12 + qlen, "response shorter than its question");
    let flags = u16::from_be_bytes([m[2], m[3]]);
    let an = u16::from_be_bytes([m[6], m[7]]);
    let mut i = 12 + qlen;
    let mut answers = Vec::new();
    for _ in 0..an {
        let h = m.get(i..i + 12).expect("a whole record header");
        assert_eq!(&h[0..2], &[0xc0, 0x0c], "owner is the question's name");
        let ty = u16::from_be_bytes([h[2], h[3]]);
        let rdlen = u16::from_be_bytes([h[10], h[11]]) as usize;
        let rd = m.get(i + 12..i + 12 + rdlen).expect("whole record data");
        answers.push((ty, rd.to_vec()));
        i += 12 + rdlen;
    }
    assert_eq!(i, m.len(), "bytes after the last record");
    Response {
        id: u16::from_be_bytes([m[0], m[1]]),
        flags,
        rcode: (flags & 0xf) as u8,
        question: m[12..12 + qlen].to_vec(),
        answers,
    }
}

/// A DNS name in wire form: labels of 1 to 63 bytes, at most 255 in all.
fn decode_name(b: &[u8]) -> Option<String> {
    let mut i = 0;
    let mut out = Vec::new();
    loop {
        let l = *b.get(i)? as usize;
        if l == 0 {
            break;
        }
        if l > 63 {
            return None;
        }
        if !out.is_empty() {
            out.push(b'.');
        }
        out.extend_from_slice(b.get(i + 1..i + 1 + l)?);
        i += 1 + l;
    }
    (i + 1 == b.len() && b.len() <= 255).then(|| String::from_utf8_lossy(&out).into_owned())
}

/// The length of a message's (first) question: its name's labels, then
/// type and class.
fn question_len(m: &[u8]) -> Option<usize> {
    let mut i = 12;
    loop {
        let l = *m.get(i)? as usize;
        if l == 0 {
            break;
        }
        if l > 63 {
            return None;
        }
        i += 1 + l;
    }
    let end = i + 1 + 4;
    (end <= m.len()).then_some(end - 12)
}

/// The name a PTR answer for `primary` should carry (labels cut at 63).
fn encoded(primary: &str) -> String {
    primary
        .split('.')
        .filter(|l| !l.is_empty())
        .map(|l| &l[..l.len().min(63)])
        .collect::<Vec<_>>()
        .join(".")
}

/// Checks a local answer against the model's resolution.
fn check_local(
    model: &Model,
    net: u32,
    client: IpAddr,
    q: &w::Query<'_>,
    out: &[u8],
    answer: LocalAnswer,
) {
    let forward = model.may_forward(net, client);
    let mut buf = [0u8; 256];
    let name = if q.qclass == w::CLASS_IN {
        w::question_name(q, &mut buf).ok().map(|n| n.to_string())
    } else {
        None
    };
    let want = match &name {
        Some(n) => model.resolve(net, client, n, q.qtype),
        None => Want::Forward,
    };
    let n = match (&want, answer) {
        (Want::Forward, LocalAnswer::Forward) => {
            assert!(
                forward,
                "forwarded for {client} on {net}, which may not forward"
            );
            return;
        }
        (_, LocalAnswer::Forward) => panic!("local_answer forwarded; the model says {want:?}"),
        (Want::NxDomain, LocalAnswer::NxDomain(n)) => n,
        (_, LocalAnswer::NxDomain(_)) => panic!("NXDOMAIN; the model says {want:?}"),
        (_, LocalAnswer::Answer(n)) => n,
    };
    assert!(
        n <= out.len(),
        "answer of {n} bytes in a buffer of {}",
        out.len()
    );
    if n == 0 {
        assert!(
            12 + q.question.len() > out.len(),
            "an empty answer although the question fits"
        );
        return;
    }
    let resp = parse_local_response(&out[..n], q.question.len());
    assert_eq!(resp.id, q.id, "answer id");
    assert_eq!(resp.question, q.question, "answer question");
    assert!(resp.flags & 0x8000 != 0, "QR");
    assert_eq!(resp.flags & 0x0100 != 0, q.rd, "RD copied");
    let tc = resp.flags & 0x0200 != 0;
    match want {
        Want::Forward => {
            assert!(!forward, "SERVFAIL'd what may be forwarded");
            assert_eq!(resp.rcode, w::rcode::SERVFAIL);
            assert!(resp.answers.is_empty());
        }
        Want::NxDomain | Want::NoData => {
            let rc = if matches!(want, Want::NxDomain) {
                w::rcode::NXDOMAIN
            } else {
                w::rcode::NOERROR
            };
            assert_eq!(resp.rcode, rc, "rcode for {want:?}");
            assert!(resp.answers.is_empty(), "records for {want:?}");
        }
        Want::Addrs(ips) => {
            assert_eq!(resp.rcode, w::rcode::NOERROR);
            let mut seen = BTreeSet::new();
            let mut aaaa_seen = false;
            for (ty, rd) in &resp.answers {
                let ip = match *ty {
                    w::qtype::A => {
                        assert!(!aaaa_seen, "an A record after an AAAA record");
                        IpAddr::from(<[u8; 4]>::try_from(&rd[..]).expect("A data of 4 bytes"))
                    }
                    w::qtype::AAAA => {
                        aaaa_seen = true;
                        IpAddr::from(<[u8; 16]>::try_from(&rd[..]).expect("AAAA data of 16 bytes"))
                    }
                    t => panic!("a record of type {t} for addresses"),
                };
                assert!(ips.contains(&ip), "{ip} not among {ips:?}");
                assert!(seen.insert(ip), "{ip} twice");
            }
            assert_eq!(
                tc,
                seen.len() < ips.len(),
                "TC set wrongly: {} of {} addresses",
                seen.len(),
                ips.len()
            );
        }
        Want::Name { any_of, first } => {
            assert_eq!(resp.rcode, w::rcode::NOERROR);
            assert_eq!(resp.answers.len(), usize::from(!tc), "one PTR or TC");
            if let Some((ty, rd)) = resp.answers.first() {
                assert_eq!(*ty, w::qtype::PTR);
                let got = decode_name(rd).expect("PTR data is a valid name");
                let want_any: BTreeSet<String> = any_of.iter().map(|n| encoded(n)).collect();
                assert!(want_any.contains(&got), "PTR {got} not among {want_any:?}");
                if let Some(f) = first {
                    assert_eq!(got, encoded(&f), "the asking network's name first");
                }
            }
        }
    }
}

// --- the forwarder's world ---------------------------------------------------

#[derive(Default)]
struct Sink(Vec<(PortId, VnetHdr, Vec<u8>)>);

impl Emit for Sink {
    fn emit(&mut self, port: PortId, frame: &mut FrameBuf) {
        self.0.push((port, frame.vnet(), frame.frame().to_vec()));
    }
}

/// A pending query's socket, as its poll token names it: slot and family.
type Token = (u32, bool);

fn token_of(t: PollToken) -> Option<Token> {
    match t {
        PollToken::DnsQuery { slot, v6 } => Some((slot, v6)),
        _ => None,
    }
}

/// The token the input names by `sel` when no registered one is chosen.
fn token_from(sel: usize) -> Token {
    ((sel / 2) as u32, sel % 2 == 1)
}

/// A query the forwarder sent upstream and has not answered yet.
#[derive(Debug, Clone)]
struct Pending {
    ep: usize,
    client: Ipv4Addr,
    client_port: u16,
    orig_id: u16,
    up_id: u16,
    question: Vec<u8>,
}

struct World {
    model: Model,
    dns: Dns,
    io: LoggedIo,
    log: IoLog,
    upstreams: Vec<SocketAddr>,
    now: Time,
    /// Queries clients asked (client, port, id, question in lower case),
    /// for answers.
    asked: BTreeSet<(Ipv4Addr, u16, u16, Vec<u8>)>,
    /// Pending queries by poll token.
    pending: BTreeMap<Token, Pending>,
    scratch: FrameBuf,
    /// Each asking port's budget, as the switch keeps them.
    budgets: Budgets,
}

fn ones_sum(data: &[u8]) -> u64 {
    data.chunks(2)
        .map(|w| u16::from_be_bytes([w[0], w.get(1).copied().unwrap_or(0)]) as u64)
        .sum()
}

fn fold(mut sum: u64) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

fn hex(b: &[u8]) -> String {
    b.iter().take(96).map(|x| format!("{x:02x}")).collect()
}

impl World {
    fn new(sel: u8) -> World {
        let mut upstreams = Vec::new();
        if sel & 1 != 0 {
            upstreams.push(upstream4());
        }
        if sel & 2 != 0 {
            upstreams.push(upstream6());
        }
        let names = dns::shared_names();
        let (io, log) = LoggedIo::new().expect("/dev/null");
        let mut peers = upstreams.clone();
        peers.extend([
            SocketAddr::from((Ipv4Addr::new(10, 200, 0, 9), 5353)),
            SocketAddr::from((Ipv4Addr::new(10, 200, 0, 66), 53)),
            SocketAddr::from((Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 9), 5353)),
        ]);
        log.fake.set_peers(peers);
        World {
            model: Model::default(),
            dns: Dns::new(upstreams.clone(), names, PORTS),
            io,
            log,
            upstreams,
            now: Time::ZERO,
            asked: BTreeSet::new(),
            pending: BTreeMap::new(),
            scratch: FrameBuf::new(),
            budgets: Budgets::new(PORTS, SourceLimits::default()),
        }
    }

    /// The table the DNS answers from.
    fn table(&self) -> std::sync::MutexGuard<'_, NameTable> {
        self.dns.names()
    }

    fn dns_tokens(&self) -> BTreeSet<Token> {
        self.log
            .fake
            .tokens()
            .into_iter()
            .filter_map(token_of)
            .collect()
    }

    fn op(&mut self, op: u8, r: &mut Reader) {
        match (op & 0x3f) % 12 {
            0 => {
                let net = r.u8() as usize % NETS;
                let flags = r.u8();
                let internal = flags & 1 == 1;
                let v6 = HAS_V6[net] && flags & 2 == 0;
                let (b, len) = SUBNETS[net];
                let subnet = ipnet::Ipv4Net::new(Ipv4Addr::from(b), len).expect("prefix");
                let subnet6 = ipnet::Ipv6Net::new(offset6(net, 0), 64).expect("prefix");
                self.table().network_added(
                    net as u32,
                    subnet,
                    gateway(net),
                    v6.then_some((subnet6, gateway6(net))),
                    internal,
                );
                self.model
                    .nets
                    .insert(net as u32, NetModel { internal, v6 });
            }
            1 => {
                let net = r.u8() as usize % NETS;
                let ip = pick_ip(r, net);
                let c = format!("ctr{}", r.u8() as usize % CONTAINERS);
                let names = pick_names(r, &c);
                // The table's precondition: an address is on one network
                // (subnets never overlap, and the control plane names only
                // addresses of the endpoint's subnet). A random address may
                // be another network's already: not added.
                let elsewhere = self
                    .model
                    .recs
                    .iter()
                    .any(|o| o.ip == ip && o.net != net as u32);
                if !elsewhere {
                    // As `Switch::set_names`: no names is a removal.
                    if names.is_empty() {
                        self.table().remove(net as u32, ip);
                    } else {
                        self.table().add(net as u32, ip, &c, &names);
                    }
                    self.model.add(net as u32, ip, &c, &names);
                }
            }
            2 => {
                let net = r.u8() as usize % NETS;
                let ip = pick_ip(r, net);
                self.table().remove(net as u32, ip);
                self.model.remove(net as u32, ip);
            }
            3 => {
                let net = r.u8() as usize % NETS;
                self.table().network_removed(net as u32);
                self.model.network_removed(net as u32);
            }
            4 => self.resolve(r),
            5 => self.local(op, r),
            6 => self.query(op, r),
            7 => {
                let n = r.u8() as usize;
                self.log.feed(r.take(n));
            }
            8 => self.answer(r),
            9 => {
                let tokens: Vec<Token> = self.dns_tokens().into_iter().collect();
                let sel = r.u8() as usize;
                let t = tokens
                    .get(sel % tokens.len().max(1))
                    .copied()
                    .unwrap_or(token_from(sel));
                self.readable(t);
            }
            10 => {
                let v = r.u16();
                let d = if v & 0x8000 != 0 {
                    Duration::from_secs((v & 0x7fff) as u64)
                } else {
                    Duration::from_millis(v as u64)
                };
                self.now = self.now.saturating_add(d);
                self.dns.tick(self.now, &mut self.io);
            }
            _ => {
                let port = PortId(r.u8() as u32 % (NETS as u32 + 1));
                self.dns.port_removed(port, &mut self.io);
            }
        }
        self.check_pending();
    }

    fn resolve(&mut self, r: &mut Reader) {
        let net = r.u8() as usize % NETS;
        let asker = pick_ip(r, net);
        let mut name = pick_name(r, &self.model).to_ascii_lowercase();
        if name.ends_with('.') {
            name.pop();
        }
        let qtype = pick_qtype(r);
        let want = self.model.resolve(net as u32, asker, &name, qtype);
        if trace_enabled() {
            eprintln!("resolve({net}, {asker}, {name:?}, {qtype}): the model says {want:?}");
        }
        let mut t = self.table();
        let got = t.resolve(net as u32, asker, &name, qtype);
        let ok = match (&want, got) {
            (Want::Addrs(ips), Resolution::Addresses(a)) => {
                let a: Vec<IpAddr> = a.collect();
                let set: BTreeSet<IpAddr> = a.iter().copied().collect();
                assert_eq!(set.len(), a.len(), "resolve({name}) gave duplicates: {a:?}");
                set == *ips
            }
            (Want::Name { any_of, first }, Resolution::Name(n)) => {
                any_of.contains(n) && first.as_ref().is_none_or(|f| f == n)
            }
            (Want::NoData, Resolution::NoData)
            | (Want::NxDomain, Resolution::NxDomain)
            | (Want::Forward, Resolution::Forward) => true,
            (_, got) => panic!(
                "resolve({net}, {asker}, {name:?}, {qtype}) gave {got:?}; the model says {want:?}"
            ),
        };
        assert!(
            ok,
            "resolve({net}, {asker}, {name:?}, {qtype}) disagrees with the model's {want:?}"
        );
        assert_eq!(
            t.may_forward(net as u32, asker),
            self.model.may_forward(net as u32, asker),
            "may_forward({net}, {asker})"
        );
    }

    fn local(&mut self, op: u8, r: &mut Reader) {
        let net = r.u8() as usize % NETS;
        let client = pick_ip(r, net);
        let query = pick_query(r, &self.model, op & 0x40 != 0);
        let len = match r.u8() % 5 {
            0 => 12,
            1 => 64,
            2 => w::MAX_UDP_LEN,
            3 => 4096,
            _ => 65535,
        };
        let Ok(q) = w::parse_query(&query) else {
            return;
        };
        let mut out = vec![0u8; len];
        let a = local_answer(&mut self.table(), net as u32, client, &q, &mut out);
        check_local(&self.model, net as u32, client, &q, &out, a);
    }

    fn query(&mut self, op: u8, r: &mut Reader) {
        let k = r.u8() as usize % NETS;
        let ep = endpoint(k);
        let client = if r.u8() % 4 == 3 {
            let sel = r.u8();
            pick_ip4(r, k, sel)
        } else {
            ep.v4().0
        };
        let client_port = r.u16();
        let mut query = pick_query(r, &self.model, op & 0x40 != 0);
        // Bursts of 1 to 256, most of them short: one client's burst (400
        // before its rate limit) fills its share of the pending slots
        // (dns::MAX_PENDING_PER_SOURCE).
        let count = if op & 0x80 != 0 {
            1usize << (r.u8() % 9)
        } else {
            1
        };
        for i in 0..count {
            if query.len() >= 2 && i > 0 {
                let id = u16::from_be_bytes([query[0], query[1]]).wrapping_add(1);
                query[0..2].copy_from_slice(&id.to_be_bytes());
            }
            self.query_one(k, &ep, client, client_port, &query);
        }
    }

    fn query_one(
        &mut self,
        k: usize,
        ep: &Inside,
        client: Ipv4Addr,
        client_port: u16,
        query: &[u8],
    ) {
        let parsed = w::parse_query(query).ok();
        if let Some(q) = &parsed {
            self.asked
                .insert((client, client_port, q.id, q.question.to_ascii_lowercase()));
        }
        // Sockets registered by this query come after those registered
        // before (none of which it closes).
        let before_tokens = self.log.fake.tokens().len();
        let (ok_before, calls_before) = self.log.sent_to_counts();
        let mut sink = Sink::default();
        // The asker as the switch hands it over: the endpoint's port and
        // MAC, the frame's source address.
        let from = Inside {
            ip: client.into(),
            ..*ep
        };
        let budget = self.budgets.of(ep.port).expect("every port has a budget");
        self.dns.query(
            &from,
            client_port,
            query,
            budget,
            self.now,
            &mut self.io,
            &mut sink,
        );
        let (ok, calls) = self.log.sent_to_counts();
        if !self.model.may_forward(ep.net, client.into()) {
            assert_eq!(
                calls, calls_before,
                "a query from {client}, only on internal networks, was sent upstream"
            );
        }
        // What went upstream (at most one datagram per upstream): the
        // query, with an id of the forwarder's.
        let new_sent = self.log.last_sent((ok - ok_before) as usize);
        for (d, to) in &new_sent {
            assert!(
                self.upstreams.contains(to),
                "a query went to {to}, not an upstream"
            );
            assert_eq!(d.len(), query.len(), "the query is relayed whole");
            assert_eq!(
                &d[2..],
                &query[2..],
                "the query is relayed unchanged but for the id"
            );
        }
        let new_tokens: Vec<PollToken> = self
            .log
            .fake
            .tokens()
            .get(before_tokens..)
            .unwrap_or_default()
            .to_vec();
        if !new_tokens.is_empty() {
            let q = parsed.as_ref().expect("only a parsed query goes upstream");
            let (d, _) = new_sent.last().expect("a pending query was sent");
            let p = Pending {
                ep: k,
                client,
                client_port,
                orig_id: q.id,
                up_id: u16::from_be_bytes([d[0], d[1]]),
                question: q.question.to_vec(),
            };
            for t in new_tokens {
                let t = token_of(t).unwrap_or_else(|| panic!("a query registered {t:?}"));
                self.pending.insert(t, p.clone());
            }
            assert!(sink.0.is_empty(), "a forwarded query was also answered");
        }
        self.check_emitted(&sink, None);
    }

    /// Op 8: datagrams on a pending query's socket — forged and real as
    /// the input says — then the readable event.
    fn answer(&mut self, r: &mut Reader) {
        let toks: Vec<(Token, Pending)> =
            self.pending.iter().map(|(t, p)| (*t, p.clone())).collect();
        let sel = r.u8() as usize;
        // With no query pending the datagrams are still read (the input
        // stays aligned) and arrive on a socket nobody asked on.
        let (token, p) = toks.get(sel % toks.len().max(1)).cloned().unwrap_or((
            token_from(sel),
            Pending {
                ep: 0,
                client: Ipv4Addr::UNSPECIFIED,
                client_port: 0,
                orig_id: 0,
                up_id: 0,
                question: Vec::new(),
            },
        ));
        let n = (r.u8() % 4) as usize + 1;
        let mut script = Vec::new();
        for _ in 0..n {
            let kind = r.u8();
            let mut a = Vec::new();
            let id = if kind & 1 != 0 {
                p.up_id ^ (r.u16() | 1)
            } else {
                p.up_id
            };
            a.extend_from_slice(&id.to_be_bytes());
            // QR (unless told not), opcode/flags from the input.
            let flags = r.u16() ^ 0x8180;
            a.extend_from_slice(&flags.to_be_bytes());
            let qd: u16 = if kind & 2 != 0 { r.u8() as u16 } else { 1 };
            a.extend_from_slice(&qd.to_be_bytes());
            a.extend_from_slice(&[0, 1, 0, 0, 0, 0]);
            let mut question = p.question.clone();
            if kind & 4 != 0 {
                question.make_ascii_uppercase();
            }
            if kind & 8 != 0 && !question.is_empty() {
                let i = r.u8() as usize % question.len();
                question[i] ^= r.u8() | 1;
            }
            if kind & 16 != 0 {
                let cut = r.u8() as usize % (question.len() + 1);
                question.truncate(cut);
            }
            a.extend_from_slice(&question);
            let tail = r.u8() as usize % 32;
            a.extend_from_slice(r.take(tail));
            // The datagram, then where it comes from (peers in order: the
            // upstreams, then the forgers).
            script.push(0);
            script.extend_from_slice(&(a.len() as u16).to_be_bytes());
            script.extend_from_slice(&a);
            script.push((kind >> 5) % 4);
        }
        // Then nothing more to read.
        script.push(7);
        self.log.feed(&script);
        self.readable(token);
    }

    fn readable(&mut self, token: Token) {
        let pend = self.pending.get(&token).cloned();
        let _ = self.log.take_received();
        let mut sink = Sink::default();
        let (slot, v6) = token;
        self.dns.on_event(slot, v6, &mut self.io, &mut sink);
        let got = self.log.take_received();
        let Some(p) = pend else {
            assert!(
                sink.0.is_empty(),
                "an answer for token {token:?}, which has no query"
            );
            return;
        };
        // The datagram an answer may come from: an upstream's, with the
        // id sent and the question asked.
        let genuine = |d: &[u8], from: &SocketAddr| {
            self.upstreams.contains(from)
                && d.len() >= 12 + p.question.len()
                && d[0..2] == p.up_id.to_be_bytes()
                && d[2] & 0x80 != 0
                && d[4..6] == [0, 1]
                && d[12..12 + p.question.len()].eq_ignore_ascii_case(&p.question)
        };
        let first_genuine = got.iter().find(|(d, from)| genuine(d, from));
        match (first_genuine, sink.0.len()) {
            (None, 0) => {}
            (Some((d, from)), 0) => {
                panic!("a genuine answer from {from} was not relayed: {}", hex(d))
            }
            (None, _) => panic!(
                "an answer was relayed though no datagram was genuine: {:?}",
                got.iter().map(|(d, f)| (hex(d), *f)).collect::<Vec<_>>()
            ),
            (Some((d, _)), 1) => {
                let payload = self.check_emitted(&sink, Some(&p)).expect("one frame");
                assert_eq!(
                    &payload[0..2],
                    &p.orig_id.to_be_bytes(),
                    "the client's id restored"
                );
                assert_eq!(&payload[2..], &d[2..], "the answer relayed unchanged");
            }
            (Some(_), n) => panic!("{n} frames for one answer"),
        }
    }

    /// Every frame emitted: to the endpoint's port, IPv4/UDP from the
    /// gateway's port 53 to the client, checksums valid, a response to a
    /// query the client asked. Returns the last frame's DNS payload.
    fn check_emitted(&mut self, sink: &Sink, pending: Option<&Pending>) -> Option<Vec<u8>> {
        let mut last = None;
        for (port, h, f) in &sink.0 {
            let k = port.0 as usize;
            assert!(k < NETS, "emitted to port {port}");
            let ep = endpoint(k);
            if let Some(p) = pending {
                assert_eq!(k, p.ep, "an answer to another port than the asker's");
            }
            self.scratch.load(*h, f);
            lanyard::offload::finish_checksum(&mut self.scratch).unwrap_or_else(|e| {
                panic!(
                    "the partial checksum cannot be completed ({e:?}): {}",
                    hex(f)
                )
            });
            let f = self.scratch.frame();
            let pkt = SlicedPacket::from_ethernet(f)
                .unwrap_or_else(|e| panic!("an emitted frame does not parse ({e:?}): {}", hex(f)));
            let Some(NetSlice::Ipv4(ip)) = &pkt.net else {
                panic!("not IPv4: {}", hex(f));
            };
            let Some(TransportSlice::Udp(u)) = &pkt.transport else {
                panic!("not UDP: {}", hex(f));
            };
            let hdr = ip.header();
            assert_eq!(
                fold(ones_sum(hdr.slice())),
                0xffff,
                "IPv4 header checksum: {}",
                hex(f)
            );
            assert_eq!(
                hdr.total_len() as usize + 14,
                f.len(),
                "IPv4 length: {}",
                hex(f)
            );
            let src = Ipv4Addr::from(hdr.source());
            let dst = Ipv4Addr::from(hdr.destination());
            assert_eq!(&f[6..12], &ep.gateway_mac.0, "from the gateway's MAC");
            assert_eq!(src, ep.v4().1, "from the gateway's address");
            assert_eq!(u.source_port(), 53, "from port 53");
            let l4 = u.slice();
            assert_eq!(u.length() as usize, l4.len(), "UDP length");
            let pseudo =
                ones_sum(&hdr.source()) + ones_sum(&hdr.destination()) + 17 + l4.len() as u64;
            assert!(
                u.checksum() != 0 && fold(pseudo + ones_sum(l4)) == 0xffff,
                "UDP checksum: {}",
                hex(f)
            );
            let m = u.payload();
            assert!(
                m.len() >= 12 && m[2] & 0x80 != 0,
                "a DNS response: {}",
                hex(m)
            );
            let id = u16::from_be_bytes([m[0], m[1]]);
            let (client, cport) = (dst, u.destination_port());
            assert_eq!(&f[0..6], &ep.mac.0, "to the endpoint's MAC");
            if let Some(p) = pending {
                assert_eq!((client, cport), (p.client, p.client_port), "to the asker");
            }
            let asked = question_len(m).is_some_and(|qlen| {
                self.asked
                    .contains(&(client, cport, id, m[12..12 + qlen].to_ascii_lowercase()))
            });
            assert!(
                asked,
                "a response to {client}:{cport} (id {id:#x}) that it never asked: {}",
                hex(m)
            );
            last = Some(m.to_vec());
        }
        last
    }

    /// Pending queries: bounded, and those the harness knows of are those
    /// with a socket on the poll.
    fn check_pending(&mut self) {
        let n = self.dns.pending_len();
        assert!(n <= dns::MAX_PENDING, "{n} queries pending");
        let live = self.dns_tokens();
        self.pending.retain(|t, _| live.contains(t));
        let slots: BTreeSet<u32> = live.iter().map(|t| t.0).collect();
        assert_eq!(
            slots.len(),
            n,
            "pending_len() is {n}, but {} queries have sockets on the poll",
            slots.len()
        );
    }
}

fn trace_enabled() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| std::env::var_os("LANYARD_FUZZ_TRACE").is_some())
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let mut world = World::new(r.u8());
    for _ in 0..MAX_OPS {
        if r.0.is_empty() {
            break;
        }
        let op = r.u8();
        world.op(op, &mut r);
        if trace_enabled() {
            eprintln!(
                "op {op:#04x} ({}): pending {}, {} names, counters {:?}",
                (op & 0x3f) % 12,
                world.dns.pending_len(),
                world.table().len(),
                world.dns.counters()
            );
        }
    }
    // What is left pending expires.
    world.now = world.now.saturating_add(dns::QUERY_TIMEOUT);
    world.dns.tick(world.now, &mut world.io);
    world.check_pending();
    assert_eq!(world.dns.pending_len(), 0, "queries outlived their timeout");
});
