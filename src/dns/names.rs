//! The names the embedded DNS answers itself: container names, aliases
//! and short ids, per network, as the control plane keeps them current,
//! and only within the networks the asking container shares with the one
//! it asks about (docker's embedded DNS). A container's addresses may be of
//! either family (A answers the IPv4 ones, AAAA the IPv6 ones; a name with
//! only the other family's is NODATA). `host.lanyard.internal` and
//! `host.docker.internal` are the gateway of the asker's network (of each
//! family it has); reverse lookups of container addresses (`in-addr.arpa`,
//! `ip6.arpa`) answer their names; unknown single-label names and anything
//! under `lanyard.internal` get NXDOMAIN. Everything else is the
//! forwarder's (`forward`), unless the asker may not be forwarded for.
//!
//! A resolution borrows from the table and an answer is built in the
//! caller's buffer: nothing here allocates per query.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use ipnet::{Ipv4Net, Ipv6Net};

use crate::wire::dns as w;

/// The domain the embedded DNS owns.
pub const DOMAIN: &str = "lanyard.internal";
const DOT_DOMAIN: &str = ".lanyard.internal";
/// TTL of the answers it makes (docker's embedded DNS uses 600 s).
pub const TTL: u32 = 600;

#[derive(Debug, Clone, Copy)]
struct NameRecord {
    net: u32,
    ip: IpAddr,
}

/// A network as the name table knows it.
#[derive(Debug, Clone, Copy)]
struct NetInfo {
    subnet4: Ipv4Net,
    /// Its IPv4 gateway (`host.lanyard.internal`'s A record).
    gateway4: Ipv4Addr,
    /// A dual-stack network's IPv6 prefix and gateway (AAAA).
    v6: Option<(Ipv6Net, Ipv6Addr)>,
    /// No NAT: queries from it are not forwarded upstream.
    internal: bool,
}

/// The names the embedded DNS answers: per name, the addresses (of either
/// family) of the containers that carry it (several for a shared alias),
/// with their network. A (network, address) pair is unique: networks'
/// subnets never overlap (config and `network create` refuse it).
#[derive(Debug, Default)]
pub struct NameTable {
    by_name: hashbrown::HashMap<String, Vec<NameRecord>>,
    /// (network, address) → the container's primary name and id.
    by_addr: hashbrown::HashMap<(u32, IpAddr), (String, String)>,
    /// Container id → its (network, address) pairs, of both families.
    containers: hashbrown::HashMap<String, Vec<(u32, IpAddr)>>,
    nets: hashbrown::HashMap<u32, NetInfo>,
    /// (network, address) → the container's own resolvers (`run --dns`),
    /// which what the table does not answer is forwarded to instead of
    /// the host's, as docker's embedded DNS does with a container's
    /// `--dns` on a user-defined network.
    resolvers: hashbrown::HashMap<(u32, IpAddr), std::sync::Arc<[std::net::SocketAddr]>>,
    /// Round robin of A answers, and apart from it of AAAA answers (a
    /// resolver asking both for every lookup must not move A's by two).
    rotation4: usize,
    rotation6: usize,
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

/// The addresses of a name as the asker sees them: the IPv4 ones (for A
/// and ANY), then the IPv6 ones (AAAA and ANY). Each family's list is
/// those on the network it asks from first, then on the others it is on,
/// rotated by one more place per query of that family (round robin among
/// containers sharing an alias).
#[derive(Debug, Clone)]
pub struct Addresses<'a> {
    /// The gateway's addresses (`host.docker.internal`) instead of records.
    gateway: [Option<IpAddr>; 2],
    recs: &'a [NameRecord],
    nets: smallvec_nets::Nets,
    v4: Cursor,
    v6: Cursor,
}

/// Where one family's rotated walk over the records is.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    /// Rotation: the list starts at this index of the unrotated order.
    start: u32,
    /// 0: yielding indices `start..`, 1: indices `..start`, 2: done.
    pass: u8,
    net_i: u8,
    rec_i: u32,
    index: u32,
}

impl Cursor {
    /// Nothing to yield.
    const DONE: Cursor = Cursor {
        start: 0,
        pass: 2,
        net_i: 0,
        rec_i: 0,
        index: 0,
    };

    /// A walk over `total` addresses starting at `rotation % total`.
    fn new(total: usize, rotation: usize) -> Cursor {
        if total == 0 {
            return Cursor::DONE;
        }
        Cursor {
            // Below `total`, itself at most the records' count.
            start: (rotation % total) as u32,
            pass: 0,
            ..Cursor::DONE
        }
    }

    fn is_done(&self) -> bool {
        self.pass == 2
    }

    /// The next address of the family (`v6`) in rotated order.
    fn next(
        &mut self,
        recs: &[NameRecord],
        nets: &smallvec_nets::Nets,
        v6: bool,
    ) -> Option<IpAddr> {
        while self.pass < 2 {
            // The unrotated order: network by network, records in order.
            while let Some(net) = nets.get(self.net_i as usize) {
                while let Some(r) = recs.get(self.rec_i as usize) {
                    self.rec_i += 1;
                    if r.net != net || r.ip.is_ipv6() != v6 {
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

/// How many of `recs` of the family (`v6`) are on `nets`.
fn count(recs: &[NameRecord], nets: &smallvec_nets::Nets, v6: bool) -> usize {
    nets.iter()
        .map(|n| {
            recs.iter()
                .filter(|r| r.net == n && r.ip.is_ipv6() == v6)
                .count()
        })
        .sum()
}

impl Addresses<'_> {
    fn gateway(v4: Option<Ipv4Addr>, v6: Option<Ipv6Addr>) -> Self {
        Addresses {
            gateway: [v4.map(IpAddr::V4), v6.map(IpAddr::V6)],
            recs: &[],
            nets: smallvec_nets::Nets::default(),
            v4: Cursor::DONE,
            v6: Cursor::DONE,
        }
    }
}

impl Iterator for Addresses<'_> {
    type Item = IpAddr;

    fn next(&mut self) -> Option<IpAddr> {
        if let Some(ip) = self.gateway.iter_mut().find_map(Option::take) {
            return Some(ip);
        }
        let (recs, nets) = (self.recs, &self.nets);
        self.v4
            .next(recs, nets, false)
            .or_else(|| self.v6.next(recs, nets, true))
    }
}

impl NameTable {
    /// A network the names may be on: its IPv4 prefix and gateway, and on
    /// a dual-stack network its IPv6 prefix and gateway. Registered again,
    /// it is replaced (its containers' names stay).
    pub fn network_added(
        &mut self,
        net: u32,
        subnet4: Ipv4Net,
        gateway4: Ipv4Addr,
        v6: Option<(Ipv6Net, Ipv6Addr)>,
        internal: bool,
    ) {
        self.nets.insert(
            net,
            NetInfo {
                subnet4,
                gateway4,
                v6,
                internal,
            },
        );
    }

    /// A network goes, and with it every address (of both families) named
    /// on it.
    pub fn network_removed(&mut self, net: u32) {
        self.nets.remove(&net);
        let gone: Vec<IpAddr> = self
            .by_addr
            .keys()
            .filter(|(n, _)| *n == net)
            .map(|(_, ip)| *ip)
            .collect();
        for ip in gone {
            self.remove(net, ip);
        }
    }

    /// Names `container`'s address `ip` (of either family) on `net`; a
    /// container with both an IPv4 and an IPv6 address on a network is
    /// added once for each (the same names). `names[0]` is the primary
    /// name (answered for reverse lookups). Adding an address again
    /// replaces its names.
    pub fn add(&mut self, net: u32, ip: IpAddr, container: &str, names: &[String]) {
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

    /// Forgets the names of address `ip` on `net` (that address only: a
    /// container's address of the other family keeps its names until it
    /// is removed too; the container is forgotten with its last address).
    /// Sets the resolvers of the container at `ip` on `net` (`run --dns`);
    /// an empty list: the host's again.
    pub fn set_resolvers(&mut self, net: u32, ip: IpAddr, list: Vec<std::net::SocketAddr>) {
        if list.is_empty() {
            self.resolvers.remove(&(net, ip));
        } else {
            self.resolvers.insert((net, ip), list.into());
        }
    }

    /// The container's own resolvers, if it has any (a reference count
    /// taken, nothing allocated).
    pub fn resolvers_of(
        &self,
        net: u32,
        ip: IpAddr,
    ) -> Option<std::sync::Arc<[std::net::SocketAddr]>> {
        self.resolvers.get(&(net, ip)).cloned()
    }

    pub fn remove(&mut self, net: u32, ip: IpAddr) {
        self.resolvers.remove(&(net, ip));
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

    /// The networks the asker (by its address of either family) is on:
    /// just the one it asks from when it is not a known container (a DHCP
    /// client, an uplink's host).
    fn networks_of(&self, net: u32, asker: IpAddr) -> smallvec_nets::Nets {
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
    pub fn may_forward(&self, net: u32, asker: IpAddr) -> bool {
        self.networks_of(net, asker)
            .iter()
            .any(|n| self.nets.get(&n).is_none_or(|i| !i.internal))
    }

    /// Resolves `name` (lower case, no final dot) of type `qtype` for a
    /// container at `asker` (either family) on `net`. The gateway's
    /// addresses are those `net` was registered with.
    pub fn resolve(&mut self, net: u32, asker: IpAddr, name: &str, qtype: u16) -> Resolution<'_> {
        use crate::wire::dns::qtype as t;
        let nets = self.networks_of(net, asker);
        let reverse = w::reverse_v4(name)
            .map(IpAddr::V4)
            .or_else(|| w::reverse_v6(name).map(IpAddr::V6));
        if let Some(ip) = reverse {
            if qtype != t::PTR && qtype != t::ANY {
                return Resolution::Forward;
            }
            for n in nets.iter() {
                if let Some((primary, _)) = self.by_addr.get(&(n, ip)) {
                    return Resolution::Name(primary);
                }
            }
            let on_ours = |i: &NetInfo| match ip {
                IpAddr::V4(a) => i.subnet4.contains(&a),
                IpAddr::V6(a) => i.v6.is_some_and(|(s, _)| s.contains(&a)),
            };
            if nets.iter().any(|n| self.nets.get(&n).is_some_and(on_ours)) {
                return Resolution::NxDomain;
            }
            return Resolution::Forward;
        }
        let owned = name == DOMAIN || name.ends_with(DOT_DOMAIN);
        let short = name.strip_suffix(DOT_DOMAIN).unwrap_or(name);
        let (wants4, wants6) = match qtype {
            t::A => (true, false),
            t::AAAA => (false, true),
            t::ANY => (true, true),
            _ => (false, false),
        };
        if short == "host" && owned || name == "host.docker.internal" {
            let info = self.nets.get(&net);
            let v4 = info.map(|i| i.gateway4).filter(|_| wants4);
            let v6 = info.and_then(|i| i.v6).map(|(_, g)| g).filter(|_| wants6);
            return if v4.is_none() && v6.is_none() {
                Resolution::NoData
            } else {
                Resolution::Addresses(Addresses::gateway(v4, v6))
            };
        }
        // Fields apart: the records stay borrowed while the rotations move.
        if let Some(recs) = self.by_name.get(short) {
            if recs.iter().any(|r| nets.iter().any(|n| n == r.net)) {
                let family = |wanted: bool, v6: bool, rotation: &mut usize| {
                    let total = if wanted { count(recs, &nets, v6) } else { 0 };
                    let c = Cursor::new(total, *rotation);
                    if total > 0 {
                        *rotation = rotation.wrapping_add(1);
                    }
                    c
                };
                let v4 = family(wants4, false, &mut self.rotation4);
                let v6 = family(wants6, true, &mut self.rotation6);
                if v4.is_done() && v6.is_done() {
                    // The name is the asker's to see, not of this type.
                    return Resolution::NoData;
                }
                return Resolution::Addresses(Addresses {
                    gateway: [None; 2],
                    recs,
                    nets,
                    v4,
                    v6,
                });
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
        n: u8,
    }

    impl Nets {
        pub fn push(&mut self, id: u32) {
            let n = self.n as usize;
            if n < self.ids.len() && !self.ids[..n].contains(&id) {
                self.ids[n] = id;
                self.n += 1;
            }
        }

        pub fn get(&self, i: usize) -> Option<u32> {
            self.ids[..self.n as usize].get(i).copied()
        }

        pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
            self.ids[..self.n as usize].iter().copied()
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
/// `client` is the asker's address, of the family the query came over.
/// A response of length 0 means `out` could not even hold the question.
/// A name that is not ours and may not be forwarded (an asker only on
/// internal networks) is answered SERVFAIL here.
pub fn local_answer(
    names: &mut NameTable,
    net: u32,
    client: IpAddr,
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
    match names.resolve(net, client, name, q.qtype) {
        Resolution::Forward if forward => LocalAnswer::Forward,
        Resolution::Forward => servfail(out),
        Resolution::Addresses(ips) => LocalAnswer::Answer(w::build_response(
            q,
            w::rcode::NOERROR,
            ips.map(|ip| match ip {
                IpAddr::V4(a) => w::Rdata::A(a.octets()),
                IpAddr::V6(a) => w::Rdata::Aaaa(a.octets()),
            }),
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

    fn ip(d: u8) -> IpAddr {
        Ipv4Addr::new(172, 17, 0, d).into()
    }

    fn ip1(d: u8) -> IpAddr {
        Ipv4Addr::new(10, 9, 0, d).into()
    }

    /// fd00:17::d, on network 0 of `dual()`.
    fn ip6(d: u16) -> IpAddr {
        Ipv6Addr::new(0xfd00, 0x17, 0, 0, 0, 0, 0, d).into()
    }

    /// fd00:9::d, on network 1 of `dual()`.
    fn ip6_1(d: u16) -> IpAddr {
        Ipv6Addr::new(0xfd00, 0x9, 0, 0, 0, 0, 0, d).into()
    }

    /// What a resolution comes to, owned, for comparisons.
    #[derive(Debug, PartialEq, Eq)]
    enum R {
        A(Vec<IpAddr>),
        Name(String),
        NoData,
        NxDomain,
        Forward,
    }

    fn res(t: &mut NameTable, net: u32, asker: IpAddr, name: &str, qt: u16) -> R {
        match t.resolve(net, asker, name, qt) {
            Resolution::Addresses(a) => R::A(a.collect()),
            Resolution::Name(n) => R::Name(n.to_string()),
            Resolution::NoData => R::NoData,
            Resolution::NxDomain => R::NxDomain,
            Resolution::Forward => R::Forward,
        }
    }

    fn table() -> NameTable {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), GW, None, false);
        t.network_added(1, "10.9.0.0/24".parse().unwrap(), GW1, None, false);
        t.add(0, ip(2), "c2", &["web".into(), "api".into()]);
        t.add(0, ip(3), "c3", &["db".into(), "api".into()]);
        // c4 is on both networks; c5 only on the other.
        t.add(0, ip(4), "c4", &["both".into()]);
        t.add(1, ip1(4), "c4", &["both".into()]);
        t.add(1, ip1(5), "c5", &["hidden".into()]);
        t
    }

    const GW: Ipv4Addr = Ipv4Addr::new(172, 17, 0, 1);
    const GW1: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
    const GW2: Ipv4Addr = Ipv4Addr::new(192, 168, 5, 1);
    const GW6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x17, 0, 0, 0, 0, 0, 1);
    const GW6_1: Ipv6Addr = Ipv6Addr::new(0xfd00, 0x9, 0, 0, 0, 0, 0, 1);

    /// Dual-stack networks 0 (172.17.0.0/16, fd00:17::/64) and 1
    /// (10.9.0.0/24, fd00:9::/64), IPv4-only network 2 (192.168.5.0/24):
    ///
    /// * c2 (web, api) and c3 (db, api) on 0, both families;
    /// * c4 (old) on 0 by IPv4 only, c6 (new) on 0 by IPv6 only;
    /// * c5 (both) on 0 and 1, both families on each;
    /// * c7 (hidden) on 1 by IPv6 only;
    /// * c8 (legacy) on 2.
    fn dual() -> NameTable {
        let mut t = NameTable::default();
        t.network_added(
            0,
            "172.17.0.0/16".parse().unwrap(),
            GW,
            Some(("fd00:17::/64".parse().unwrap(), GW6)),
            false,
        );
        t.network_added(
            1,
            "10.9.0.0/24".parse().unwrap(),
            GW1,
            Some(("fd00:9::/64".parse().unwrap(), GW6_1)),
            false,
        );
        t.network_added(2, "192.168.5.0/24".parse().unwrap(), GW2, None, false);
        let names = |n: &[&str]| n.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        for (c, d, n) in [("c2", 2, ["web", "api"]), ("c3", 3, ["db", "api"])] {
            let short = format!("{c}0ffee1234");
            let mut all = names(&n);
            all.push(short);
            t.add(0, ip(d), c, &all);
            t.add(0, ip6(d.into()), c, &all);
        }
        t.add(0, ip(4), "c4", &names(&["old"]));
        t.add(0, ip6(6), "c6", &names(&["new"]));
        for a in [ip(5), ip6(5), ip1(5), ip6_1(5)] {
            let net = if a == ip(5) || a == ip6(5) { 0 } else { 1 };
            t.add(net, a, "c5", &names(&["both"]));
        }
        t.add(1, ip6_1(7), "c7", &names(&["hidden"]));
        t.add(
            2,
            Ipv4Addr::new(192, 168, 5, 8).into(),
            "c8",
            &names(&["legacy"]),
        );
        t
    }

    /// The reverse name of an IPv6 address, 32 nibbles (RFC 3596 2.5).
    fn arpa6(a: IpAddr) -> String {
        let IpAddr::V6(a) = a else { panic!("{a}") };
        let mut s: String = a
            .octets()
            .iter()
            .rev()
            .map(|o| format!("{:x}.{:x}.", o & 0xf, o >> 4))
            .collect();
        s.push_str("ip6.arpa");
        s
    }

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
            res(&mut t, 1, ip1(4), "hidden", qtype::A),
            R::A(vec![ip1(5)])
        );
        // A container on both networks asking for one on both gets the
        // address on the network it asks from first.
        match res(&mut t, 1, ip1(4), "both", qtype::A) {
            R::A(a) => assert!(a.contains(&ip1(4))),
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
            R::A(vec![GW.into()])
        );
        assert_eq!(
            res(&mut t, 0, ip(2), "host.lanyard.internal", qtype::A),
            R::A(vec![GW.into()])
        );
        // The gateway of the network asked from.
        assert_eq!(
            res(&mut t, 1, ip1(4), "host.docker.internal", qtype::A),
            R::A(vec![GW1.into()])
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
        assert_eq!(res(&mut t, 1, ip1(4), "hidden", qtype::A), R::NxDomain);
    }

    #[test]
    fn rotation_keeps_the_askers_network_order_and_visits_every_start() {
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), GW, None, false);
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
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), GW, None, false);
        t.network_added(1, "10.9.0.0/24".parse().unwrap(), GW1, None, true);
        let inside = ip1(2);
        t.add(1, inside, "c1", &["c1".into()]);
        assert!(!t.may_forward(1, inside));
        // Its own names still resolve.
        assert_eq!(res(&mut t, 1, inside, "c1", qtype::A), R::A(vec![inside]));
        // On a network with NAT as well: forwarded, as docker does.
        t.add(0, ip(9), "c1", &["c1".into()]);
        assert!(t.may_forward(1, inside));
        assert!(t.may_forward(0, ip(2)));
    }

    // --- dual stack -----------------------------------------------------

    #[test]
    fn aaaa_answers_ipv6_addresses_and_a_the_ipv4_ones() {
        let mut t = dual();
        // Name, alias and short id, asked by an IPv4 and an IPv6 asker.
        for asker in [ip(3), ip6(3)] {
            for name in ["web", "web.lanyard.internal", "c20ffee1234", "WEB"] {
                let name = name.to_ascii_lowercase();
                assert_eq!(
                    res(&mut t, 0, asker, &name, qtype::AAAA),
                    R::A(vec![ip6(2)]),
                    "{name}"
                );
                assert_eq!(
                    res(&mut t, 0, asker, &name, qtype::A),
                    R::A(vec![ip(2)]),
                    "{name}"
                );
            }
        }
        // ANY: the IPv4 addresses, then the IPv6 ones.
        assert_eq!(
            res(&mut t, 0, ip(3), "web", qtype::ANY),
            R::A(vec![ip(2), ip6(2)])
        );
    }

    #[test]
    fn aaaa_lists_the_askers_network_first() {
        // Fresh tables: no rotation yet, so the order is the unrotated one.
        let mut t = dual();
        assert_eq!(
            res(&mut t, 1, ip6_1(5), "both", qtype::AAAA),
            R::A(vec![ip6_1(5), ip6(5)])
        );
        let mut t = dual();
        assert_eq!(
            res(&mut t, 0, ip(5), "both", qtype::AAAA),
            R::A(vec![ip6(5), ip6_1(5)])
        );
        // A's rotation does not move AAAA's: after two A queries the first
        // AAAA answer still leads with the asker's network.
        let mut t = dual();
        assert_eq!(
            res(&mut t, 1, ip1(5), "both", qtype::A),
            R::A(vec![ip1(5), ip(5)])
        );
        let _ = res(&mut t, 1, ip1(5), "both", qtype::A);
        let _ = res(&mut t, 1, ip1(5), "both", qtype::A);
        assert_eq!(
            res(&mut t, 1, ip1(5), "both", qtype::AAAA),
            R::A(vec![ip6_1(5), ip6(5)])
        );
    }

    #[test]
    fn aaaa_and_a_rotate_apart() {
        let mut t = dual();
        let (mut firsts4, mut firsts6) = (Vec::new(), Vec::new());
        // A resolver asking A and AAAA for every lookup, as glibc does.
        for _ in 0..4 {
            let R::A(a) = res(&mut t, 0, ip(5), "api", qtype::A) else {
                panic!()
            };
            assert_eq!(a.len(), 2);
            assert!(a.iter().all(IpAddr::is_ipv4));
            firsts4.push(a[0]);
            let R::A(a) = res(&mut t, 0, ip(5), "api", qtype::AAAA) else {
                panic!()
            };
            assert_eq!(a.len(), 2);
            assert!(a.iter().all(IpAddr::is_ipv6));
            firsts6.push(a[0]);
        }
        assert_eq!(firsts4, vec![ip(2), ip(3), ip(2), ip(3)], "A round robin");
        assert_eq!(
            firsts6,
            vec![ip6(2), ip6(3), ip6(2), ip6(3)],
            "AAAA round robin"
        );
    }

    #[test]
    fn aaaa_rotation_keeps_the_askers_network_order_and_visits_every_start() {
        let mut t = dual();
        for d in 10..15u16 {
            t.add(
                0,
                ip6(d),
                &format!("m{d}"),
                &[format!("m{d}"), "many".into()],
            );
        }
        // An IPv4-only member does not count in AAAA's rotation.
        t.add(0, ip(10), "m10", &["m10".into(), "many".into()]);
        let mut starts = std::collections::BTreeSet::new();
        for _ in 0..5 {
            let R::A(a) = res(&mut t, 0, ip6(2), "many", qtype::AAAA) else {
                panic!()
            };
            assert_eq!(a.len(), 5);
            let k = a.iter().position(|x| *x == ip6(10)).unwrap();
            let mut unrotated = a.clone();
            unrotated.rotate_left(k);
            assert_eq!(unrotated, (10..15).map(ip6).collect::<Vec<_>>());
            starts.insert(a[0]);
        }
        assert_eq!(starts.len(), 5, "each address leads once in five queries");
    }

    #[test]
    fn the_other_familys_address_only_is_nodata() {
        let mut t = dual();
        for asker in [ip(2), ip6(2)] {
            // c4 has only an IPv4 address, c6 only an IPv6 one.
            assert_eq!(res(&mut t, 0, asker, "old", qtype::AAAA), R::NoData);
            assert_eq!(res(&mut t, 0, asker, "old", qtype::A), R::A(vec![ip(4)]));
            assert_eq!(res(&mut t, 0, asker, "new", qtype::A), R::NoData);
            assert_eq!(
                res(&mut t, 0, asker, "new.lanyard.internal", qtype::A),
                R::NoData
            );
            assert_eq!(
                res(&mut t, 0, asker, "new", qtype::AAAA),
                R::A(vec![ip6(6)])
            );
            assert_eq!(res(&mut t, 0, asker, "new", qtype::ANY), R::A(vec![ip6(6)]));
            // Another type of a name we own.
            assert_eq!(res(&mut t, 0, asker, "new", 15), R::NoData);
            // Only on a network the asker is not on: not its to see.
            assert_eq!(res(&mut t, 0, asker, "hidden", qtype::AAAA), R::NxDomain);
            assert_eq!(res(&mut t, 0, asker, "hidden", qtype::A), R::NxDomain);
        }
    }

    #[test]
    fn ip6_arpa_answers_the_primary_name() {
        let mut t = dual();
        assert_eq!(
            res(&mut t, 0, ip(3), &arpa6(ip6(2)), qtype::PTR),
            R::Name("web".into())
        );
        assert_eq!(
            res(&mut t, 0, ip6(3), &arpa6(ip6(6)), qtype::ANY),
            R::Name("new".into())
        );
        // Of a container on another network the asker shares.
        assert_eq!(
            res(&mut t, 0, ip(5), &arpa6(ip6_1(7)), qtype::PTR),
            R::Name("hidden".into())
        );
        // Upper case (resolve is given lower case, but the parse takes both).
        assert_eq!(
            res(
                &mut t,
                0,
                ip(3),
                &arpa6(ip6(2)).to_ascii_uppercase(),
                qtype::PTR
            ),
            R::Name("web".into())
        );
        // In our prefix, nobody's: NXDOMAIN, as in-addr.arpa.
        assert_eq!(
            res(&mut t, 0, ip(3), &arpa6(ip6(0x99)), qtype::PTR),
            R::NxDomain
        );
        // Not in a prefix of the asker's networks: the upstream's.
        let outside: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(
            res(&mut t, 0, ip(3), &arpa6(outside), qtype::PTR),
            R::Forward
        );
        assert_eq!(
            res(&mut t, 0, ip(3), &arpa6(ip6_1(7)), qtype::PTR),
            R::Forward,
            "network 1's, which c3 is not on"
        );
        // A network without IPv6 has no IPv6 prefix of its own.
        assert_eq!(
            res(
                &mut t,
                2,
                Ipv4Addr::new(192, 168, 5, 8).into(),
                &arpa6(ip6(2)),
                qtype::PTR
            ),
            R::Forward
        );
        // Another type of a reverse name: the upstream's.
        assert_eq!(res(&mut t, 0, ip(3), &arpa6(ip6(2)), qtype::A), R::Forward);
    }

    #[test]
    fn malformed_ip6_arpa_names_are_not_ours() {
        let mut t = dual();
        let good = arpa6(ip6(2));
        let malformed = [
            // 31 labels, 33 labels.
            good[2..].to_string(),
            format!("0.{good}"),
            // A label of two digits, a non-hex digit.
            format!("20.{}", &good[2..]),
            format!("g.{}", &good[2..]),
            // A zone, not an address.
            "7.1.0.0.0.0.d.f.ip6.arpa".to_string(),
            "ip6.arpa".to_string(),
        ];
        for name in &malformed {
            assert_eq!(
                res(&mut t, 0, ip(3), name, qtype::PTR),
                R::Forward,
                "{name}"
            );
        }
        // An empty label (no query can carry one, but `resolve` is public).
        let empty = format!(".{}", &good[1..]);
        assert_eq!(res(&mut t, 0, ip(3), &empty, qtype::PTR), R::Forward);
        // Where the asker may not be forwarded for: SERVFAIL, as for a
        // malformed in-addr.arpa name.
        let mut t = NameTable::default();
        t.network_added(
            0,
            "10.9.0.0/24".parse().unwrap(),
            GW1,
            Some(("fd00:9::/64".parse().unwrap(), GW6_1)),
            true,
        );
        t.add(0, ip6_1(2), "c", &["c".into()]);
        for name in malformed
            .iter()
            .chain(["0.9.10.in-addr.arpa".to_string()].iter())
        {
            let b = query(name, qtype::PTR);
            let q = w::parse_query(&b).unwrap();
            let mut out = [0u8; 512];
            let LocalAnswer::Answer(n) = local_answer(&mut t, 0, ip6_1(2), &q, &mut out) else {
                panic!("{name}: not answered");
            };
            assert_eq!(rcode(&out[..n]), w::rcode::SERVFAIL, "{name}");
        }
    }

    #[test]
    fn the_gateways_aaaa_is_its_networks_ipv6_gateway() {
        let mut t = dual();
        for name in ["host.docker.internal", "host.lanyard.internal"] {
            for asker in [ip(2), ip6(2)] {
                assert_eq!(
                    res(&mut t, 0, asker, name, qtype::AAAA),
                    R::A(vec![GW6.into()])
                );
                assert_eq!(res(&mut t, 0, asker, name, qtype::A), R::A(vec![GW.into()]));
                assert_eq!(
                    res(&mut t, 0, asker, name, qtype::ANY),
                    R::A(vec![GW.into(), GW6.into()])
                );
                assert_eq!(res(&mut t, 0, asker, name, 15), R::NoData);
            }
            // Network 1's own.
            assert_eq!(
                res(&mut t, 1, ip6_1(7), name, qtype::AAAA),
                R::A(vec![GW6_1.into()])
            );
            // No IPv6 on network 2: NODATA, and A as before.
            let c8 = Ipv4Addr::new(192, 168, 5, 8).into();
            assert_eq!(res(&mut t, 2, c8, name, qtype::AAAA), R::NoData);
            assert_eq!(res(&mut t, 2, c8, name, qtype::A), R::A(vec![GW2.into()]));
            assert_eq!(res(&mut t, 2, c8, name, qtype::ANY), R::A(vec![GW2.into()]));
            // A network the table was never told of has no gateway.
            assert_eq!(res(&mut t, 9, ip(2), name, qtype::A), R::NoData);
        }
    }

    #[test]
    fn an_ipv6_asker_finds_its_networks() {
        let mut t = dual();
        // c5 asks from network 0 by its IPv6 address: network 1 is its too.
        assert_eq!(
            res(&mut t, 0, ip6(5), "hidden", qtype::AAAA),
            R::A(vec![ip6_1(7)])
        );
        // An address the table does not know: only the network asked from.
        assert_eq!(
            res(&mut t, 0, ip6(0x99), "hidden", qtype::AAAA),
            R::NxDomain
        );
        assert_eq!(
            res(&mut t, 0, ip6(0x99), "web", qtype::AAAA),
            R::A(vec![ip6(2)])
        );
        // c7 is on network 1 by IPv6 only; once on network 0 by IPv4 only,
        // it sees network 0's names asking by either address.
        t.add(0, ip(7), "c7", &["hidden".into()]);
        assert_eq!(res(&mut t, 1, ip6_1(7), "old", qtype::A), R::A(vec![ip(4)]));
        assert_eq!(
            res(&mut t, 0, ip(7), "hidden", qtype::AAAA),
            R::A(vec![ip6_1(7)])
        );
        // Forwarding follows the networks found by the IPv6 address.
        let mut t = NameTable::default();
        t.network_added(0, "172.17.0.0/16".parse().unwrap(), GW, None, false);
        t.network_added(
            1,
            "10.9.0.0/24".parse().unwrap(),
            GW1,
            Some(("fd00:9::/64".parse().unwrap(), GW6_1)),
            true,
        );
        t.add(1, ip6_1(2), "ci", &["ci".into()]);
        assert!(!t.may_forward(1, ip6_1(2)), "only on the internal network");
        t.add(0, ip(9), "ci", &["ci".into()]);
        assert!(t.may_forward(1, ip6_1(2)), "and on one with NAT");
    }

    #[test]
    fn removing_both_addresses_forgets_the_container() {
        let mut t = dual();
        // One family goes: the other still answers.
        t.remove(0, ip(2));
        assert_eq!(res(&mut t, 0, ip(3), "web", qtype::A), R::NoData);
        assert_eq!(
            res(&mut t, 0, ip(3), "web", qtype::AAAA),
            R::A(vec![ip6(2)])
        );
        assert_eq!(
            res(&mut t, 0, ip(3), "2.0.17.172.in-addr.arpa", qtype::PTR),
            R::NxDomain
        );
        assert_eq!(
            res(&mut t, 0, ip(3), &arpa6(ip6(2)), qtype::PTR),
            R::Name("web".into())
        );
        assert_eq!(t.containers["c2"], vec![(0, ip6(2))]);
        // Then the other.
        t.remove(0, ip6(2));
        assert_eq!(res(&mut t, 0, ip(3), "web", qtype::AAAA), R::NxDomain);
        assert_eq!(res(&mut t, 0, ip(3), "web", qtype::A), R::NxDomain);
        assert_eq!(
            res(&mut t, 0, ip(3), "api", qtype::AAAA),
            R::A(vec![ip6(3)])
        );
        assert!(!t.containers.contains_key("c2"), "c2 forgotten");
        assert!(t.by_addr.values().all(|(_, c)| c != "c2"));
        // c5 leaves network 1 (both families): from network 0, network 1's
        // names are no longer its to see.
        t.remove(1, ip1(5));
        assert_eq!(
            res(&mut t, 0, ip6(5), "hidden", qtype::AAAA),
            R::A(vec![ip6_1(7)]),
            "still on network 1 by IPv6"
        );
        t.remove(1, ip6_1(5));
        assert_eq!(res(&mut t, 0, ip6(5), "hidden", qtype::AAAA), R::NxDomain);
        assert_eq!(t.containers["c5"], vec![(0, ip(5)), (0, ip6(5))]);
        // A network going takes the addresses of both families on it.
        t.network_removed(0);
        assert!(t.by_addr.keys().all(|(n, _)| *n != 0));
        assert!(t.containers.values().flatten().all(|(n, _)| *n != 0));
        assert!(!t.containers.contains_key("c5") && !t.containers.contains_key("c6"));
        assert_eq!(res(&mut t, 0, ip6(3), "db", qtype::AAAA), R::NxDomain);
        assert_eq!(
            res(&mut t, 0, ip6(3), &arpa6(ip6(3)), qtype::PTR),
            R::Forward
        );
        assert_eq!(
            res(&mut t, 1, ip6_1(7), "hidden", qtype::AAAA),
            R::A(vec![ip6_1(7)])
        );
    }

    #[test]
    fn re_adding_one_family_keeps_the_other() {
        let mut t = dual();
        // New names for the IPv4 address (as `set_names` does on update).
        t.add(0, ip(2), "c2", &["web".into(), "www".into()]);
        assert_eq!(res(&mut t, 0, ip(3), "www", qtype::A), R::A(vec![ip(2)]));
        assert_eq!(res(&mut t, 0, ip(3), "www", qtype::AAAA), R::NoData);
        assert_eq!(
            res(&mut t, 0, ip(3), "web", qtype::AAAA),
            R::A(vec![ip6(2)])
        );
        let c2 = &t.containers["c2"];
        assert_eq!(c2.len(), 2);
        assert!(c2.contains(&(0, ip(2))) && c2.contains(&(0, ip6(2))));
    }

    // --- answers on the wire --------------------------------------------

    fn query(name: &str, ty: u16) -> Vec<u8> {
        w::test_query(0xabcd, name, ty)
    }

    fn rcode(m: &[u8]) -> u8 {
        m[3] & 0x0f
    }

    /// The answers of a response, read from its bytes by hand: each
    /// record's type and data, after checking the header and that the
    /// question is echoed.
    fn answers(m: &[u8], asked: &[u8]) -> Vec<(u16, Vec<u8>)> {
        assert_eq!(&m[0..2], &asked[0..2], "id");
        assert_eq!(m[2] & 0x80, 0x80, "QR");
        assert_eq!(m[2] & 0x04, 0x04, "AA");
        assert_eq!(u16::from_be_bytes([m[4], m[5]]), 1, "QDCOUNT");
        assert_eq!(&m[12..asked.len()], &asked[12..], "the question echoed");
        let an = u16::from_be_bytes([m[6], m[7]]);
        let mut i = asked.len();
        let mut out = Vec::new();
        for _ in 0..an {
            assert_eq!(&m[i..i + 2], &[0xc0, 0x0c], "owner: the question's name");
            let ty = u16::from_be_bytes([m[i + 2], m[i + 3]]);
            assert_eq!(u16::from_be_bytes([m[i + 4], m[i + 5]]), w::CLASS_IN);
            assert_eq!(
                u32::from_be_bytes([m[i + 6], m[i + 7], m[i + 8], m[i + 9]]),
                TTL
            );
            let len = u16::from_be_bytes([m[i + 10], m[i + 11]]) as usize;
            out.push((ty, m[i + 12..i + 12 + len].to_vec()));
            i += 12 + len;
        }
        assert_eq!(i, m.len(), "nothing after the answers");
        out
    }

    fn ask(
        t: &mut NameTable,
        net: u32,
        client: IpAddr,
        name: &str,
        ty: u16,
    ) -> (u8, Vec<(u16, Vec<u8>)>) {
        let b = query(name, ty);
        let q = w::parse_query(&b).unwrap();
        let mut out = [0u8; 512];
        let n = match local_answer(t, net, client, &q, &mut out) {
            LocalAnswer::Answer(n) | LocalAnswer::NxDomain(n) => n,
            LocalAnswer::Forward => panic!("{name} forwarded"),
        };
        (rcode(&out[..n]), answers(&out[..n], &b))
    }

    fn octets(a: IpAddr) -> Vec<u8> {
        match a {
            IpAddr::V4(a) => a.octets().to_vec(),
            IpAddr::V6(a) => a.octets().to_vec(),
        }
    }

    #[test]
    fn local_answers_parse() {
        let mut t = dual();
        // AAAA from an IPv6 client, name in the case it was asked.
        assert_eq!(
            ask(&mut t, 0, ip6(3), "Web", qtype::AAAA),
            (w::rcode::NOERROR, vec![(qtype::AAAA, octets(ip6(2)))])
        );
        assert_eq!(
            ask(&mut t, 0, ip6(3), "web", qtype::A),
            (w::rcode::NOERROR, vec![(qtype::A, octets(ip(2)))])
        );
        assert_eq!(
            ask(&mut t, 0, ip6(3), "web", qtype::ANY),
            (
                w::rcode::NOERROR,
                vec![(qtype::A, octets(ip(2))), (qtype::AAAA, octets(ip6(2)))]
            )
        );
        // NODATA: NOERROR and no records; NXDOMAIN apart from it.
        assert_eq!(
            ask(&mut t, 0, ip(3), "old", qtype::AAAA),
            (w::rcode::NOERROR, vec![])
        );
        assert_eq!(
            ask(&mut t, 0, ip(3), "new", qtype::A),
            (w::rcode::NOERROR, vec![])
        );
        assert_eq!(
            ask(&mut t, 0, ip(3), "hidden", qtype::AAAA),
            (w::rcode::NXDOMAIN, vec![])
        );
        assert_eq!(
            ask(&mut t, 0, ip6(3), "host.docker.internal", qtype::AAAA),
            (w::rcode::NOERROR, vec![(qtype::AAAA, octets(GW6.into()))])
        );
        let c8 = Ipv4Addr::new(192, 168, 5, 8).into();
        assert_eq!(
            ask(&mut t, 2, c8, "host.lanyard.internal", qtype::AAAA),
            (w::rcode::NOERROR, vec![])
        );
        // PTR under ip6.arpa, asked in upper case.
        let web = b"\x03web\x00".to_vec();
        assert_eq!(
            ask(
                &mut t,
                0,
                ip6(3),
                &arpa6(ip6(2)).to_ascii_uppercase(),
                qtype::PTR
            ),
            (w::rcode::NOERROR, vec![(qtype::PTR, web.clone())])
        );
        assert_eq!(
            ask(&mut t, 0, ip6(3), &arpa6(ip6(2)), qtype::PTR),
            (w::rcode::NOERROR, vec![(qtype::PTR, web)])
        );
        assert_eq!(
            ask(&mut t, 0, ip6(3), &arpa6(ip6(0x99)), qtype::PTR),
            (w::rcode::NXDOMAIN, vec![])
        );
        // Too many AAAA records for 512 bytes: TC, whole records only.
        for d in 100..140u16 {
            t.add(0, ip6(d), &format!("m{d}"), &["many".into()]);
        }
        let b = query("many", qtype::AAAA);
        let q = w::parse_query(&b).unwrap();
        let mut out = [0u8; 512];
        let LocalAnswer::Answer(n) = local_answer(&mut t, 0, ip6(3), &q, &mut out) else {
            panic!()
        };
        assert_eq!(out[2] & 0x02, 0x02, "TC");
        let recs = answers(&out[..n], &b);
        assert_eq!(recs.len(), (512 - b.len()) / 28);
        assert!(recs
            .iter()
            .all(|(ty, d)| *ty == qtype::AAAA && d.len() == 16));
    }
}
