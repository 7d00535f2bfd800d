//! `dhcp_leases`: the DHCP server's lease logic (`control::dhcp::Leases`)
//! over sequences of client messages, with endpoints attached and detached
//! in between as the control plane does, and the clock moving.
//!
//! One network, "n", whose subnet (and so pool) the first input byte
//! chooses: 10.9.0.0/28 (13 client addresses), 10.9.0.0/29 (5) or
//! 10.9.0.0/24 with the range 10.9.0.128/26. Leases last `lease_time`,
//! `max_leases` addresses at most may be held by DHCP (both from the
//! header). Endpoints are given addresses from the same address manager
//! (`Ipam`), their MAC the docker MAC of the address.
//!
//! Input:
//!
//! ```text
//! subnet:u8  lease:u8  max_leases:u8  then steps: op:u8 fields...
//! ```
//!
//! * `lease % 4`: 0 s, 60 s, 3600 s, 86400 s; `max_leases % 16 + 1`.
//! * `op % 8`:
//!   * 0–4: a client message, DISCOVER, REQUEST, DECLINE, RELEASE,
//!     INFORM: `mac:u8 opts:u8 [requested:u8 [ip:[4]]] [server:u8] xid:u8
//!     clock:u8`. `mac`: `% 16` < 8 one of eight client MACs, < 12 the MAC
//!     of endpoint `% 4` (if attached), else six bytes from the input
//!     (possibly not unicast). `opts` bits: 0 a requested address (the
//!     next byte: `% 4` 0 the address last offered to this MAC, 1 the
//!     `n`-th of the range, 2 an endpoint's, 3 four bytes), 1 a server id
//!     (the next byte: even the gateway, odd another), 2 `ciaddr` set to
//!     the last address given to the MAC, 3 the frame's source MAC differs
//!     from `chaddr`, 4 sent to another network's server, 5 a hostname.
//!     `clock`: the clock moves that many seconds before the message (bit
//!     7: times 60), and `expire` runs.
//!   * 5: attach an endpoint (`sel:u8`: bit 7 a specific address, `% 64`
//!     of the range; else the lowest free), as `lanyard run` does.
//!   * 6: detach an endpoint (`sel % 4`).
//!   * 7: a raw frame, `len:u8` and the bytes.
//!
//! What must hold, after every step:
//!
//! * `held() <= max_leases`;
//! * the address manager's addresses in use are exactly the DHCP-held ones
//!   plus the endpoints' (`in_use == held() + endpoints`);
//! * no address is leased to two MACs, and none that is an endpoint's;
//! * a reply goes only to a message that calls for one (OFFER to
//!   DISCOVER, ACK or NAK to REQUEST, ACK to INFORM; nothing to DECLINE or
//!   RELEASE) and parses (etherparse) as IPv4/UDP from the gateway's port
//!   67 to 255.255.255.255:68 and the client's MAC, valid checksums, a
//!   BOOTREPLY with the client's xid and MAC, the gateway as server id;
//!   an OFFER or ACK (but INFORM's) gives an address of the range that is
//!   not the gateway's, an endpoint's MAC its own address, any other MAC
//!   the address its lease now holds; a NAK gives none;
//! * at the end, past `OFFER_TIMEOUT + QUARANTINE + lease_time` with no
//!   traffic, `expire` leaves nothing held: `held() == 0` and the
//!   endpoints' addresses are the only ones in use.

#![no_main]

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant, SystemTime};

use etherparse::{NetSlice, SlicedPacket, TransportSlice};
use libfuzzer_sys::fuzz_target;

use lanyard::config::NetworkConfig;
use lanyard::control::dhcp::{Leases, OFFER_TIMEOUT, QUARANTINE};
use lanyard::control::registry::{Endpoint, NetworkEntry, Registry};
use lanyard::dataplane::NetworkId;
use lanyard::ipam::Ipam;
use lanyard::port::PortId;
use lanyard::wire::dhcp::msg;
use lanyard::wire::MacAddr;

const NET: &str = "n";
const MAX_STEPS: usize = 128;
const GW: Ipv4Addr = Ipv4Addr::new(10, 9, 0, 1);
const ENDPOINTS: usize = 4;

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

    fn array<const N: usize>(&mut self) -> [u8; N] {
        let mut a = [0u8; N];
        for b in &mut a {
            *b = self.u8();
        }
        a
    }

    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, rest) = self.0.split_at(n.min(self.0.len()));
        self.0 = rest;
        head
    }
}

fn registry(subnet: ipnet::Ipv4Net, range: ipnet::Ipv4Net) -> Registry {
    let mut r = Registry::default();
    r.networks.push(NetworkEntry {
        config: NetworkConfig {
            name: NET.into(),
            subnet,
            gateway: GW,
            ip_range: range,
            mtu: 1500,
            txqueuelen: 1000,
            mac_aging: Duration::from_secs(300),
            internal: false,
            ipv6: None,
            dns: None,
            dhcp_start: None,
        },
        id: "id".into(),
        created: SystemTime::UNIX_EPOCH,
        ipam: Ipam::new(subnet, GW, range),
        ipam6: None,
        dp: NetworkId(0),
        from_config: false,
    });
    r
}

fn client_mac(i: u8) -> MacAddr {
    MacAddr([2, 0xdc, 0, 0, 0, i])
}

/// A client frame: Ethernet broadcast from `src`, IPv4 0.0.0.0 →
/// 255.255.255.255, UDP 68 → 67, a BOOTREQUEST for `chaddr`.
#[allow(clippy::too_many_arguments)]
fn client_frame(
    t: u8,
    src: MacAddr,
    chaddr: MacAddr,
    xid: u32,
    ciaddr: Ipv4Addr,
    requested: Option<Ipv4Addr>,
    server: Option<Ipv4Addr>,
    hostname: bool,
) -> Vec<u8> {
    let mut m = vec![0u8; 240];
    m[0] = 1;
    m[1] = 1;
    m[2] = 6;
    m[4..8].copy_from_slice(&xid.to_be_bytes());
    m[12..16].copy_from_slice(&ciaddr.octets());
    m[28..34].copy_from_slice(&chaddr.0);
    m[236..240].copy_from_slice(&[99, 130, 83, 99]);
    m.extend_from_slice(&[53, 1, t]);
    if let Some(ip) = requested {
        m.extend_from_slice(&[50, 4]);
        m.extend_from_slice(&ip.octets());
    }
    if let Some(ip) = server {
        m.extend_from_slice(&[54, 4]);
        m.extend_from_slice(&ip.octets());
    }
    if hostname {
        m.extend_from_slice(&[12, 2, b'v', b'm']);
    }
    m.push(255);
    let l4 = 8 + m.len();
    let mut f = vec![0u8; 14 + 20 + l4];
    f[0..6].copy_from_slice(&MacAddr::BROADCAST.0);
    f[6..12].copy_from_slice(&src.0);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + l4) as u16).to_be_bytes());
    ip[8] = 64;
    ip[9] = 17;
    ip[16..20].copy_from_slice(&[255; 4]);
    let c = !fold(ones_sum(ip));
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    f[34..36].copy_from_slice(&68u16.to_be_bytes());
    f[36..38].copy_from_slice(&67u16.to_be_bytes());
    f[38..40].copy_from_slice(&(l4 as u16).to_be_bytes());
    f[42..].copy_from_slice(&m);
    f
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
    b.iter().take(64).map(|x| format!("{x:02x}")).collect()
}

/// A parsed reply: type, yiaddr, server id, lease time option.
struct ReplyMsg {
    msg_type: u8,
    yiaddr: Ipv4Addr,
    server: Option<Ipv4Addr>,
    lease: Option<u32>,
}

/// (The reply checks): the frame, and the BOOTREPLY in it.
fn parse_reply(f: &[u8], chaddr: MacAddr, xid: u32) -> ReplyMsg {
    let p = SlicedPacket::from_ethernet(f)
        .unwrap_or_else(|e| panic!("reply does not parse ({e:?}): {}", hex(f)));
    assert_eq!(&f[0..6], &chaddr.0, "reply to the client's MAC");
    assert_eq!(
        &f[6..12],
        &Ipam::mac_for(GW).0,
        "reply from the gateway's MAC"
    );
    let Some(NetSlice::Ipv4(ip)) = &p.net else {
        panic!("reply not IPv4: {}", hex(f));
    };
    let Some(TransportSlice::Udp(u)) = &p.transport else {
        panic!("reply not UDP: {}", hex(f));
    };
    let h = ip.header();
    assert_eq!(fold(ones_sum(h.slice())), 0xffff, "reply IPv4 checksum");
    assert_eq!(h.total_len() as usize + 14, f.len(), "reply IPv4 length");
    assert_eq!(Ipv4Addr::from(h.source()), GW, "reply from the gateway");
    assert_eq!(Ipv4Addr::from(h.destination()), Ipv4Addr::BROADCAST);
    assert_eq!((u.source_port(), u.destination_port()), (67, 68));
    let l4 = u.slice();
    assert_eq!(u.length() as usize, l4.len(), "UDP length");
    let pseudo = ones_sum(&h.source()) + ones_sum(&h.destination()) + 17 + l4.len() as u64;
    assert_eq!(fold(pseudo + ones_sum(l4)), 0xffff, "reply UDP checksum");
    let d = u.payload();
    assert!(d.len() >= 300, "a BOOTP message of {} bytes", d.len());
    assert_eq!(d[0], 2, "BOOTREPLY");
    assert_eq!(&d[4..8], &xid.to_be_bytes(), "the client's xid");
    assert_eq!(&d[28..34], &chaddr.0, "the client's chaddr");
    assert_eq!(&d[236..240], &[99, 130, 83, 99], "magic cookie");
    let mut opts = BTreeMap::new();
    let mut i = 240;
    while i < d.len() && d[i] != 255 {
        if d[i] == 0 {
            i += 1;
            continue;
        }
        let len = d[i + 1] as usize;
        opts.insert(d[i], d[i + 2..i + 2 + len].to_vec());
        i += 2 + len;
    }
    let msg_type = opts.get(&53).expect("a message type")[0];
    let ip4 = |b: &Vec<u8>| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    ReplyMsg {
        msg_type,
        yiaddr: Ipv4Addr::new(d[16], d[17], d[18], d[19]),
        server: opts.get(&54).map(ip4),
        lease: opts
            .get(&51)
            .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
    }
}

struct World {
    reg: Registry,
    leases: Leases,
    lease_time: Duration,
    max_leases: usize,
    now: Instant,
    /// Endpoint slots: the address of an attached one.
    endpoints: [Option<Ipv4Addr>; ENDPOINTS],
    /// The address last given to each MAC (offers and acks), for requests.
    given: BTreeMap<[u8; 6], Ipv4Addr>,
}

impl World {
    fn ipam(&self) -> &Ipam {
        &self.reg.network(NET).expect("the network").ipam
    }

    fn endpoint_ips(&self) -> BTreeSet<Ipv4Addr> {
        self.endpoints.iter().flatten().copied().collect()
    }

    fn attach(&mut self, sel: u8) {
        let Some(slot) = self.endpoints.iter().position(|e| e.is_none()) else {
            return;
        };
        let range = self.ipam().range();
        let want = (sel & 0x80 != 0)
            .then(|| Ipv4Addr::from(u32::from(range.network()) + (sel & 0x3f) as u32));
        let net = self.reg.network_mut(NET).expect("the network");
        let Ok(ip) = net.ipam.allocate(want) else {
            return;
        };
        let id = format!("ep{slot}");
        self.reg.endpoints.insert(
            id.clone(),
            Endpoint {
                id: id.clone(),
                container_id: format!("ctr{slot}"),
                name: format!("c{slot}"),
                network: NET.into(),
                ip,
                ip6: None,
                mac: Ipam::mac_for(ip),
                mtu: 1500,
                port: PortId(slot as u32),
                published: Vec::new(),
                aliases: Vec::new(),
                ifname: "eth0".into(),
                pid: None,
                sole_tenant: false,
                dns: Vec::new(),
            },
        );
        self.endpoints[slot] = Some(ip);
    }

    fn detach(&mut self, slot: usize) {
        if let Some(ip) = self.endpoints[slot].take() {
            self.reg.endpoints.remove(&format!("ep{slot}"));
            self.reg
                .network_mut(NET)
                .expect("the network")
                .ipam
                .release(ip);
        }
    }

    fn message(&mut self, t: u8, r: &mut Reader) {
        let mac_sel = r.u8();
        let chaddr = match mac_sel % 16 {
            k @ 0..=7 => client_mac(k),
            k @ 8..=11 => match self.endpoints[(k - 8) as usize] {
                Some(ip) => Ipam::mac_for(ip),
                None => client_mac(k),
            },
            _ => MacAddr(r.array()),
        };
        let opts = r.u8();
        let range = self.ipam().range();
        let requested = (opts & 1 != 0).then(|| {
            let sel = r.u8();
            match sel % 4 {
                0 => self.given.get(&chaddr.0).copied().unwrap_or(GW),
                1 => Ipv4Addr::from(u32::from(range.network()) + (sel >> 2) as u32),
                2 => self.endpoints[(sel >> 2) as usize % ENDPOINTS].unwrap_or(GW),
                _ => Ipv4Addr::from(r.array::<4>()),
            }
        });
        let server = (opts & 2 != 0).then(|| {
            if r.u8() % 2 == 0 {
                GW
            } else {
                Ipv4Addr::new(10, 9, 0, 254)
            }
        });
        let ciaddr = if opts & 4 != 0 {
            self.given
                .get(&chaddr.0)
                .copied()
                .unwrap_or(Ipv4Addr::UNSPECIFIED)
        } else {
            Ipv4Addr::UNSPECIFIED
        };
        let src = if opts & 8 != 0 {
            client_mac(0xee)
        } else {
            chaddr
        };
        let net = if opts & 16 != 0 { "other" } else { NET };
        let xid = u32::from(r.u8()) << 8 | 0x5a;
        self.advance(r.u8());
        let frame = client_frame(
            t,
            src,
            chaddr,
            xid,
            ciaddr,
            requested,
            server,
            opts & 32 != 0,
        );
        let reply = self.leases.handle(
            &mut self.reg,
            net,
            &frame,
            self.lease_time,
            self.max_leases,
            self.now,
        );
        let accepted = chaddr.is_unicast() && src == chaddr && net == NET;
        let Some(reply) = reply else {
            return;
        };
        assert!(accepted, "a reply to a message that should be refused");
        let m = parse_reply(&reply, chaddr, xid);
        assert_eq!(m.server, Some(GW), "server id");
        let fixed = self
            .endpoints
            .iter()
            .flatten()
            .find(|ip| Ipam::mac_for(**ip) == chaddr)
            .copied();
        let expect = match t {
            msg::DISCOVER => &[msg::OFFER][..],
            msg::REQUEST => &[msg::ACK, msg::NAK][..],
            msg::INFORM => &[msg::ACK][..],
            _ => &[][..],
        };
        assert!(
            expect.contains(&m.msg_type),
            "reply type {} to a message of type {t}",
            m.msg_type
        );
        match (t, m.msg_type) {
            (_, msg::NAK) => {
                assert_eq!(m.yiaddr, Ipv4Addr::UNSPECIFIED, "a NAK gives no address");
                assert!(m.lease.is_none());
            }
            (msg::INFORM, _) => {
                assert_eq!(m.yiaddr, Ipv4Addr::UNSPECIFIED, "INFORM gives no address");
                assert!(m.lease.is_none(), "INFORM gives no lease");
            }
            _ => {
                let ip = m.yiaddr;
                assert!(range.contains(&ip), "{ip} is outside the range {range}");
                assert!(ip != GW, "the gateway's address given out");
                assert_eq!(
                    m.lease,
                    Some(self.lease_time.as_secs().min(u32::MAX as u64) as u32),
                    "lease time"
                );
                match fixed {
                    Some(own) => assert_eq!(ip, own, "an endpoint's MAC gets its own address"),
                    None => {
                        assert!(
                            !self.endpoint_ips().contains(&ip),
                            "{ip}, an endpoint's, given to {chaddr}"
                        );
                        let held = self
                            .leases
                            .list(NET)
                            .into_iter()
                            .find(|(mac, _)| *mac == chaddr)
                            .map(|(_, ip)| ip);
                        assert_eq!(
                            held,
                            Some(ip),
                            "{chaddr} was given {ip}, its lease says {held:?}"
                        );
                    }
                }
                self.given.insert(chaddr.0, ip);
            }
        }
    }

    fn advance(&mut self, clock: u8) {
        let secs = if clock & 0x80 != 0 {
            (clock & 0x7f) as u64 * 60
        } else {
            clock as u64
        };
        if secs > 0 {
            self.now += Duration::from_secs(secs);
            self.leases.expire(&mut self.reg, self.now);
        }
    }

    fn check(&self) {
        let held = self.leases.held();
        assert!(
            held <= self.max_leases,
            "{held} held, max {}",
            self.max_leases
        );
        let eps = self.endpoint_ips();
        assert_eq!(
            self.ipam().in_use(),
            held + eps.len(),
            "in use: {} addresses; DHCP holds {held}, endpoints {}",
            self.ipam().in_use(),
            eps.len()
        );
        let mut seen = BTreeSet::new();
        for (mac, ip) in self.leases.list(NET) {
            assert!(seen.insert(ip), "{ip} leased twice (once to {mac})");
            assert!(!eps.contains(&ip), "{ip} leased to {mac} is an endpoint's");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let mut r = Reader(data);
    let (subnet, range): (ipnet::Ipv4Net, ipnet::Ipv4Net) = match r.u8() % 3 {
        0 => (
            "10.9.0.0/28".parse().unwrap(),
            "10.9.0.0/28".parse().unwrap(),
        ),
        1 => (
            "10.9.0.0/29".parse().unwrap(),
            "10.9.0.0/29".parse().unwrap(),
        ),
        _ => (
            "10.9.0.0/24".parse().unwrap(),
            "10.9.0.128/26".parse().unwrap(),
        ),
    };
    let lease_time = Duration::from_secs([0, 60, 3600, 86400][r.u8() as usize % 4]);
    let max_leases = r.u8() as usize % 16 + 1;
    let mut w = World {
        reg: registry(subnet, range),
        leases: Leases::default(),
        lease_time,
        max_leases,
        now: Instant::now(),
        endpoints: [None; ENDPOINTS],
        given: BTreeMap::new(),
    };
    for _ in 0..MAX_STEPS {
        if r.0.is_empty() {
            break;
        }
        let op = r.u8();
        match op % 8 {
            t @ 0..=4 => {
                let t = [
                    msg::DISCOVER,
                    msg::REQUEST,
                    msg::DECLINE,
                    msg::RELEASE,
                    msg::INFORM,
                ][t as usize];
                w.message(t, &mut r);
            }
            5 => w.attach(r.u8()),
            6 => w.detach(r.u8() as usize % ENDPOINTS),
            _ => {
                let n = r.u8() as usize;
                let f = r.take(n).to_vec();
                let _ = w
                    .leases
                    .handle(&mut w.reg, NET, &f, w.lease_time, w.max_leases, w.now);
            }
        }
        w.check();
        if std::env::var_os("LANYARD_FUZZ_TRACE").is_some() {
            eprintln!(
                "op {op}: held {} in use {} endpoints {:?} leases {:?} counters {:?}",
                w.leases.held(),
                w.ipam().in_use(),
                w.endpoints,
                w.leases.list(NET),
                w.leases.counters
            );
        }
    }
    // No traffic for longer than anything is held.
    let end = w.now + OFFER_TIMEOUT + QUARANTINE + lease_time + Duration::from_secs(1);
    w.leases.expire(&mut w.reg, end);
    w.check();
    assert_eq!(w.leases.held(), 0, "held after everything expired");
    assert_eq!(
        w.ipam().in_use(),
        w.endpoint_ips().len(),
        "in use after everything expired"
    );
});
