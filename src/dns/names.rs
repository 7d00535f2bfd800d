//! The names the embedded DNS answers itself: container names, aliases
//! and short ids, per network, as the control plane keeps them current,
//! and only within the networks the asking container shares with the one
//! it asks about (docker's embedded DNS). `host.lanyard.internal` and
//! `host.docker.internal` are the gateway; reverse lookups of container
//! addresses answer their names; unknown single-label names and anything
//! under `lanyard.internal` get NXDOMAIN. Everything else is the
//! forwarder's (`forward`), unless the asker may not be forwarded for.
//!
//! A resolution borrows from the table and an answer is built in the
//! caller's buffer: nothing here allocates per query.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use crate::wire::dns as w;

/// The domain the embedded DNS owns.
pub const DOMAIN: &str = "lanyard.internal";
const DOT_DOMAIN: &str = ".lanyard.internal";
/// TTL of the answers it makes (docker's embedded DNS uses 600 s).
pub const TTL: u32 = 600;

#[derive(Debug, Clone, Copy)]
struct NameRecord {
    net: u32,
    ip: Ipv4Addr,
}

/// A network as the name table knows it.
#[derive(Debug, Clone, Copy)]
struct NetInfo {
    subnet: ipnet::Ipv4Net,
    /// No NAT: queries from it are not forwarded upstream.
    internal: bool,
}

/// The names the embedded DNS answers: per name, the addresses of the
/// containers that carry it (several for a shared alias), with their
/// network. A (network, address) pair is unique: networks' subnets never
/// overlap (config and `network create` refuse it).
#[derive(Debug, Default)]
pub struct NameTable {
    by_name: hashbrown::HashMap<String, Vec<NameRecord>>,
    /// (network, address) → the container's primary name and id.
    by_addr: hashbrown::HashMap<(u32, Ipv4Addr), (String, String)>,
    /// Container id → its (network, address) pairs.
    containers: hashbrown::HashMap<String, Vec<(u32, Ipv4Addr)>>,
    nets: hashbrown::HashMap<u32, NetInfo>,
    rotation: usize,
}

/// What a name resolves to; borrowed from the table (no allocation per
/// query).
#[derive(Debug, Clone)]
pub enum Resolution<'a> {
    Addresses(Addresses<'a>),
    Name(&'a str),
    /// A name the server owns, with no record of the asked type.
    NoData,
    NxDomain,
    Forward,
}

/// The addresses of a name as the asker sees them: those on the network it
/// asks from first, then on the others it is on, the whole list rotated by
/// one more place per query (round robin among containers sharing an
/// alias).
#[derive(Debug, Clone)]
pub struct Addresses<'a> {
    /// The gateway (`host.docker.internal`) instead of records.
    single: Option<Ipv4Addr>,
    recs: &'a [NameRecord],
    nets: smallvec_nets::Nets,
    /// Rotation: the list starts at this index of the unrotated order.
    start: usize,
    /// 0: yielding indices `start..`, 1: indices `..start`, 2: done.
    pass: u8,
    net_i: usize,
    rec_i: usize,
    index: usize,
}

impl<'a> Addresses<'a> {
    fn new(recs: &'a [NameRecord], nets: smallvec_nets::Nets, rotation: usize) -> Self {
        let total = nets
            .iter()
            .map(|n| recs.iter().filter(|r| r.net == n).count())
            .sum::<usize>();
        Addresses {
            single: None,
            recs,
            nets,
            start: if total == 0 { 0 } else { rotation % total },
            pass: 0,
            net_i: 0,
            rec_i: 0,
            index: 0,
        }
    }

    fn gateway(ip: Ipv4Addr) -> Self {
        Addresses {
            single: Some(ip),
            recs: &[],
            nets: smallvec_nets::Nets::default(),
            start: 0,
            pass: 0,
            net_i: 0,
            rec_i: 0,
            index: 0,
        }
    }

    fn is_empty(&self) -> bool {
        self.single.is_none() && self.clone().next().is_none()
    }
}

impl Iterator for Addresses<'_> {
    type Item = Ipv4Addr;

    fn next(&mut self) -> Option<Ipv4Addr> {
        if let Some(ip) = self.single.take() {
            return Some(ip);
        }
        while self.pass < 2 {
            // The unrotated order: network by network, records in order.
            while let Some(net) = self.nets.get(self.net_i) {
                while let Some(r) = self.recs.get(self.rec_i) {
                    self.rec_i += 1;
                    if r.net != net {
                        continue;
                    }
                    let i = self.index;
                    self.index += 1;
                    let wanted = if self.pass == 0 {
                        i >= self.start
                    } else {
                        i < self.start
                    };
                    if wanted {
                        return Some(r.ip);
                    }
                }
                self.net_i += 1;
                self.rec_i = 0;
            }
            self.pass += 1;
            self.net_i = 0;
            self.rec_i = 0;
            self.index = 0;
            if self.start == 0 {
                // Nothing comes before the start.
                self.pass = 2;
            }
        }
        None
    }
}

impl NameTable {
    pub fn network_added(&mut self, net: u32, subnet: ipnet::Ipv4Net, internal: bool) {
        self.nets.insert(net, NetInfo { subnet, internal });
    }

    pub fn network_removed(&mut self, net: u32) {
        self.nets.remove(&net);
        let gone: Vec<Ipv4Addr> = self
            .by_addr
            .keys()
            .filter(|(n, _)| *n == net)
            .map(|(_, ip)| *ip)
            .collect();
        for ip in gone {
            self.remove(net, ip);
        }
    }

    /// `names[0]` is the primary name (answered for reverse lookups).
    pub fn add(&mut self, net: u32, ip: Ipv4Addr, container: &str, names: &[String]) {
        self.remove(net, ip);
        if names.is_empty() {
            // Nothing to answer for: the address is not the container's on
            // this network as far as names go (and `remove`, keyed by the
            // primary name's record, could never clear it again).
            return;
        }
        for n in names {
            let key = n.to_ascii_lowercase();
            let recs = self.by_name.entry(key).or_default();
            if !recs.iter().any(|r| r.net == net && r.ip == ip) {
                recs.push(NameRecord { net, ip });
            }
        }
        if let Some(primary) = names.first() {
            self.by_addr
                .insert((net, ip), (primary.clone(), container.to_string()));
        }
        self.containers
            .entry(container.to_string())
            .or_default()
            .push((net, ip));
    }

    pub fn remove(&mut self, net: u32, ip: Ipv4Addr) {
        let Some((_, container)) = self.by_addr.remove(&(net, ip)) else {
            return;
        };
        self.by_name.retain(|_, recs| {
            recs.retain(|r| !(r.net == net && r.ip == ip));
            !recs.is_empty()
        });
        if let Some(v) = self.containers.get_mut(&container) {
            v.retain(|x| *x != (net, ip));
            if v.is_empty() {
                self.containers.remove(&container);
            }
        }
    }

    /// The networks the asker is on (just the one it asks from when it is
    /// not a known container: a DHCP client, an uplink's host).
    fn networks_of(&self, net: u32, asker: Ipv4Addr) -> smallvec_nets::Nets {
        let mut nets = smallvec_nets::Nets::default();
        nets.push(net);
        if let Some((_, c)) = self.by_addr.get(&(net, asker)) {
            for (n, _) in self.containers.get(c).into_iter().flatten() {
                nets.push(*n);
            }
        }
        nets
    }

    /// Whether a query from `asker` on `net` may go upstream: the asker is
    /// on at least one network with NAT (docker's rule for internal
    /// networks). An unknown network forwards (the table only learns of
    /// networks the switch has).
    pub fn may_forward(&self, net: u32, asker: Ipv4Addr) -> bool {
        self.networks_of(net, asker)
            .iter()
            .any(|n| self.nets.get(&n).is_none_or(|i| !i.internal))
    }

    /// Resolves `name` (lower case, no final dot) of type `qtype` for a
    /// container at `asker` on `net`.
    pub fn resolve(
        &mut self,
        net: u32,
        asker: Ipv4Addr,
        gateway: Ipv4Addr,
        name: &str,
        qtype: u16,
    ) -> Resolution<'_> {
        use crate::wire::dns::qtype as t;
        let nets = self.networks_of(net, asker);
        if let Some(ip) = crate::wire::dns::reverse_v4(name) {
            if qtype != t::PTR && qtype != t::ANY {
                return Resolution::Forward;
            }
            for n in nets.iter() {
                if let Some((primary, _)) = self.by_addr.get(&(n, ip)) {
                    return Resolution::Name(primary);
                }
            }
            if nets
                .iter()
                .any(|n| self.nets.get(&n).is_some_and(|i| i.subnet.contains(&ip)))
            {
                return Resolution::NxDomain;
            }
            return Resolution::Forward;
        }
        let owned = name == DOMAIN || name.ends_with(DOT_DOMAIN);
        let short = name.strip_suffix(DOT_DOMAIN).unwrap_or(name);
        let wants_a = qtype == t::A || qtype == t::ANY;
        if short == "host" && owned || name == "host.docker.internal" {
            return if wants_a {
                Resolution::Addresses(Addresses::gateway(gateway))
            } else {
                Resolution::NoData
            };
        }
        let rotation = self.rotation;
        if let Some(recs) = self.by_name.get(short) {
            let ips = Addresses::new(recs, nets, rotation);
            if !ips.is_empty() {
                if !wants_a {
                    return Resolution::NoData;
                }
                self.rotation = self.rotation.wrapping_add(1);
                // Borrowed again after the rotation counter moved.
                let recs = self.by_name.get(short).expect("just found");
                return Resolution::Addresses(Addresses::new(recs, nets, rotation));
            }
        }
        if owned || !short.contains('.') {
            return Resolution::NxDomain;
        }
        Resolution::Forward
    }

    /// Names in the table (for tests and reports).
    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// A tiny fixed-size set of network ids (a container is on a handful).
mod smallvec_nets {
    #[derive(Debug, Clone, Copy, Default)]
    pub struct Nets {
        ids: [u32; 16],
        n: usize,
    }

    impl Nets {
        pub fn push(&mut self, id: u32) {
            if self.n < self.ids.len() && !self.ids[..self.n].contains(&id) {
                self.ids[self.n] = id;
                self.n += 1;
            }
        }

        pub fn get(&self, i: usize) -> Option<u32> {
            self.ids[..self.n].get(i).copied()
        }

        pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
            self.ids[..self.n].iter().copied()
        }
    }
}

/// What the name table makes of a query.
pub enum LocalAnswer {
    /// Not ours: ask the upstream.
    Forward,
    /// A response of this length is in the buffer.
    Answer(usize),
    /// An NXDOMAIN response of this length is in the buffer.
    NxDomain(usize),
}

/// Answers `q` from the name table into `out` (as much of it as a response
/// may use: 512 bytes over UDP, 64 KiB over TCP; what does not fit sets TC).
/// A response of length 0 means `out` could not even hold the question.
/// A name that is not ours and may not be forwarded (an asker only on
/// internal networks) is answered SERVFAIL here.
pub fn local_answer(
    names: &mut NameTable,
    net: u32,
    client: Ipv4Addr,
    gateway: Ipv4Addr,
    q: &w::Query<'_>,
    out: &mut [u8],
) -> LocalAnswer {
    let forward = names.may_forward(net, client);
    let max = out.len();
    let servfail = |out: &mut [u8]| {
        LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::SERVFAIL,
            w::NO_ANSWERS,
            0,
            max,
            out,
        ))
    };
    if q.qclass != w::CLASS_IN {
        return if forward {
            LocalAnswer::Forward
        } else {
            servfail(out)
        };
    }
    let mut buf = [0u8; 256];
    let Ok(name) = w::question_name(q, &mut buf) else {
        // Not a name we could have; the upstream may know better.
        return if forward {
            LocalAnswer::Forward
        } else {
            servfail(out)
        };
    };
    match names.resolve(net, client, gateway, name, q.qtype) {
        Resolution::Forward if forward => LocalAnswer::Forward,
        Resolution::Forward => servfail(out),
        Resolution::Addresses(ips) => LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::NOERROR,
            ips.map(|ip| w::Rdata::A(ip.octets())),
            TTL,
            max,
            out,
        )),
        Resolution::Name(n) => LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::NOERROR,
            std::iter::once(w::Rdata::Name(n)),
            TTL,
            max,
            out,
        )),
        Resolution::NoData => LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::NOERROR,
            w::NO_ANSWERS,
            TTL,
            max,
            out,
        )),
        Resolution::NxDomain => LocalAnswer::NxDomain(w::build_response(
            q,
            w::rcode::NXDOMAIN,
            w::NO_ANSWERS,
            TTL,
            max,
            out,
        )),
    }
}

/// The name table, shared by the UDP path and the TCP server of every
/// data-path shard; written by the control plane, read per query.
pub type SharedNames = Arc<Mutex<NameTable>>;

/// A new, empty shared name table.
pub fn shared_names() -> SharedNames {
    Arc::new(Mutex::new(NameTable::default()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::dns::qtype;

    fn ip(d: u8) -> Ipv4Addr {
        Ipv4Addr::new(172, 17, 0, d)
    }

    /// What a resolution comes to, owned, for comparisons.
    #[derive(Debug, PartialEq, Eq)]
    enum R {
        A(Vec<Ipv4Addr>),
        Name(String),
        NoData,
        NxDomain,
        Forward,
    }

    fn res(t: &mut NameTable, net: u32, asker: Ipv4Addr, name: &str, qt: u16) -> R {
        match t.resolve(net, asker, GW, name, qt) {
            Resolution::Addresses(a) => R::A(a.collect()),
            Resolution::Name(n) => R::Name(n.to_string()),
            Resolution::NoData => R::NoData,
            Resolution::NxDomain => R::NxDomain,
            Resolution::Forward => R::Forward,
        }
    }

    fn table() -> NameTable {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), false);
        t.network_added(1, "10.9.0.0/24".parse().unwrap(), false);
        t.add(0, ip(2), "c2", &["web".into(), "api".into()]);
        t.add(0, ip(3), "c3", &["db".into(), "api".into()]);
        // c4 is on both networks; c5 only on the other.
        t.add(0, ip(4), "c4", &["both".into()]);
        t.add(1, Ipv4Addr::new(10, 9, 0, 4), "c4", &["both".into()]);
        t.add(1, Ipv4Addr::new(10, 9, 0, 5), "c5", &["hidden".into()]);
        t
    }

    const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);

    #[test]
    fn names_and_aliases_resolve_within_shared_networks() {
        let mut t = table();
        assert_eq!(res(&mut t, 0, ip(3), "web", qtype::A), R::A(vec![ip(2)]));
        assert_eq!(
            res(&mut t, 0, ip(3), "web.lanyard.internal", qtype::A),
            R::A(vec![ip(2)])
        );
        // Not visible from a network the asker is not on.
        assert_eq!(res(&mut t, 0, ip(2), "hidden", qtype::A), R::NxDomain);
        // c4 asks from network 1 and sees network 1's names.
        assert_eq!(
            res(&mut t, 1, Ipv4Addr::new(10, 9, 0, 4), "hidden", qtype::A),
            R::A(vec![Ipv4Addr::new(10, 9, 0, 5)])
        );
        // A container on both networks asking for one on both gets the
        // address on the network it asks from first.
        match res(&mut t, 1, Ipv4Addr::new(10, 9, 0, 4), "both", qtype::A) {
            R::A(a) => assert!(a.contains(&Ipv4Addr::new(10, 9, 0, 4))),
            other => panic!("{other:?}"),
        }
        assert_eq!(res(&mut t, 0, ip(2), "web", qtype::AAAA), R::NoData);
        assert_eq!(res(&mut t, 0, ip(2), "nothing", qtype::A), R::NxDomain);
        assert_eq!(
            res(&mut t, 0, ip(2), "nothing.lanyard.internal", qtype::A),
            R::NxDomain
        );
        assert_eq!(res(&mut t, 0, ip(2), "example.com", qtype::A), R::Forward);
        assert_eq!(
            res(&mut t, 0, ip(2), "host.docker.internal", qtype::A),
            R::A(vec![GW])
        );
        assert_eq!(
            res(&mut t, 0, ip(2), "host.lanyard.internal", qtype::A),
            R::A(vec![GW])
        );
    }

    #[test]
    fn shared_aliases_rotate() {
        let mut t = table();
        let mut firsts = std::collections::HashSet::new();
        for _ in 0..4 {
            match res(&mut t, 0, ip(4), "api", qtype::A) {
                R::A(a) => {
                    assert_eq!(a.len(), 2);
                    firsts.insert(a[0]);
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(firsts.len(), 2, "round robin");
    }

    #[test]
    fn reverse_lookups() {
        let mut t = table();
        assert_eq!(
            res(&mut t, 0, ip(3), "2.0.17.172.in-addr.arpa", qtype::PTR),
            R::Name("web".into())
        );
        assert_eq!(
            res(&mut t, 0, ip(3), "99.0.17.172.in-addr.arpa", qtype::PTR),
            R::NxDomain
        );
        assert_eq!(
            res(&mut t, 0, ip(3), "8.8.8.8.in-addr.arpa", qtype::PTR),
            R::Forward
        );
    }

    #[test]
    fn removals_forget_names() {
        let mut t = table();
        t.remove(0, ip(2));
        assert_eq!(res(&mut t, 0, ip(3), "web", qtype::A), R::NxDomain);
        assert_eq!(res(&mut t, 0, ip(3), "api", qtype::A), R::A(vec![ip(3)]));
        t.network_removed(1);
        assert_eq!(
            res(&mut t, 1, Ipv4Addr::new(10, 9, 0, 4), "hidden", qtype::A),
            R::NxDomain
        );
    }

    #[test]
    fn rotation_keeps_the_askers_network_order_and_visits_every_start() {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), false);
        for d in 2..7 {
            t.add(
                0,
                ip(d),
                &format!("c{d}"),
                &[format!("c{d}"), "many".into()],
            );
        }
        let mut starts = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let R::A(a) = res(&mut t, 0, ip(2), "many", qtype::A) else {
                panic!()
            };
            // A rotation of 2..7: every address once, in cyclic order.
            assert_eq!(a.len(), 5);
            let k = a.iter().position(|x| *x == ip(2)).unwrap();
            let mut unrotated = a.clone();
            unrotated.rotate_left(k);
            assert_eq!(unrotated, (2..7).map(ip).collect::<Vec<_>>());
            starts.insert(a[0]);
        }
        assert_eq!(starts.len(), 5, "each address leads once in five queries");
    }

    #[test]
    fn internal_only_askers_are_not_forwarded_for() {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), false);
        t.network_added(1, "10.9.0.0/24".parse().unwrap(), true);
        let inside = Ipv4Addr::new(10, 9, 0, 2);
        t.add(1, inside, "c1", &["c1".into()]);
        assert!(!t.may_forward(1, inside));
        // Its own names still resolve.
        assert_eq!(res(&mut t, 1, inside, "c1", qtype::A), R::A(vec![inside]));
        // On a network with NAT as well: forwarded, as docker does.
        t.add(0, ip(9), "c1", &["c1".into()]);
        assert!(t.may_forward(1, inside));
        assert!(t.may_forward(0, ip(2)));
    }
}
