//! The DHCP server of every network's gateway. The data path hands it the
//! client messages that reach a gateway (an event, not a socket: DHCP is a
//! handful of packets per client); it answers from the same address manager
//! `lanyard run` uses, so static and dynamic addresses never collide, and a
//! client whose MAC is an endpoint's gets exactly that endpoint's address,
//! gateway, DNS and MTU.
//!
//! Dynamic addresses, and what holds each (RFC 2131 4.3):
//!
//! | state       | entered by                  | held until                     |
//! |-------------|-----------------------------|--------------------------------|
//! | offered     | DISCOVER                    | `OFFER_TIMEOUT` (then freed)   |
//! | bound       | REQUEST of the offer/lease  | the lease time, renewed by REQUEST; RELEASE frees it |
//! | quarantined | DECLINE of the bound/offered address | `QUARANTINE` (someone else uses it), then freed |
//!
//! All three count against `max_leases`, so a client that loops DISCOVER
//! and DECLINE with fresh MACs holds at most that many addresses, each for
//! a bounded time, and the pool `lanyard run` draws from is never drained
//! for good.

use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::registry::Registry;
use crate::ipam::Ipam;
use crate::wire::checksum;
use crate::wire::dhcp::{self, msg, ClientMessage, Reply};
use crate::wire::ethernet::{self, ethertype, EthernetFrame};
use crate::wire::ipv4::{protocol, Ipv4Packet, Ipv4Repr};
use crate::wire::udp::{self, UdpPacket};
use crate::wire::MacAddr;

/// An offer nobody requested is withdrawn after this.
pub const OFFER_TIMEOUT: Duration = Duration::from_secs(60);
/// A declined address (the client found it in use) is kept out of the pool
/// this long, as dnsmasq does.
pub const QUARANTINE: Duration = Duration::from_secs(600);

crate::stats::counters! {
    /// What the server did, for `lanyard stats`.
    pub struct DhcpCounters {
        /// DHCPOFFERs sent (to a DISCOVER).
        offers,
        /// DHCPACKs sent: a lease granted or renewed, or an INFORM answered.
        acks,
        /// DHCPNAKs sent: a REQUEST for an address the client may not have.
        naks,
        /// DHCPRELEASEs taken: a lease given back by its client.
        releases,
        /// DHCPDECLINEs taken: an address the client found in use, held
        /// out of the pool for a quarantine.
        declines,
        /// DHCP messages that do not parse.
        malformed,
        /// DISCOVERs left unanswered: no free address, or the bound of
        /// leases reached.
        refused_full,
        /// Leases that ran out unrenewed (their address back in the pool).
        leases_expired,
        /// Offers never taken up by a REQUEST in time (their address back
        /// in the pool).
        #[serde(default)]
        offers_expired,
        /// Declined addresses back in the pool after their quarantine.
        #[serde(default)]
        quarantine_ended,
    }
}

#[derive(Debug, Clone)]
struct Lease {
    ip: Ipv4Addr,
    expires: Instant,
    /// Requested and acknowledged; false while only offered.
    bound: bool,
}

/// Dynamic leases, per network name and client MAC, and the addresses
/// held back after a DECLINE.
#[derive(Debug, Default)]
pub struct Leases {
    by_net: HashMap<String, HashMap<MacAddr, Lease>>,
    /// Declined addresses per network, oldest first, with when they return.
    quarantine: HashMap<String, VecDeque<(Ipv4Addr, Instant)>>,
    /// Offered, bound and quarantined addresses, all networks together.
    total: usize,
    pub counters: DhcpCounters,
}

/// A reply frame to send out of the port the request came in on.
pub type Frame = Vec<u8>;

impl Leases {
    fn lease_of(&self, net: &str, mac: &MacAddr) -> Option<&Lease> {
        self.by_net.get(net)?.get(mac)
    }

    /// Addresses held (offered, bound, quarantined), for tests and reports.
    pub fn held(&self) -> usize {
        self.total
    }

    /// Releases leases and offers past their time, and quarantined
    /// addresses past theirs, back to the address pools.
    pub fn expire(&mut self, reg: &mut Registry, now: Instant) {
        for (net, leases) in &mut self.by_net {
            let mut freed = Vec::new();
            let (mut leases_gone, mut offers_gone) = (0, 0);
            leases.retain(|_, l| {
                let keep = l.expires > now;
                if !keep {
                    freed.push(l.ip);
                    if l.bound {
                        leases_gone += 1;
                    } else {
                        offers_gone += 1;
                    }
                }
                keep
            });
            if let Some(q) = self.quarantine.get_mut(net) {
                while q.front().is_some_and(|(_, until)| *until <= now) {
                    let (ip, _) = q.pop_front().expect("checked");
                    freed.push(ip);
                    self.counters.quarantine_ended += 1;
                }
            }
            self.total -= freed.len();
            if let Some(n) = reg.network_mut(net) {
                for ip in freed {
                    n.ipam.release(ip);
                }
            }
            self.counters.leases_expired += leases_gone;
            self.counters.offers_expired += offers_gone;
        }
    }

    /// Forgets a network's leases (it was removed).
    pub fn network_removed(&mut self, net: &str) {
        if let Some(l) = self.by_net.remove(net) {
            self.total -= l.len();
        }
        if let Some(q) = self.quarantine.remove(net) {
            self.total -= q.len();
        }
    }

    /// Handles one client frame that reached the gateway of network
    /// `net_name`; returns the reply frame, if any.
    pub fn handle(
        &mut self,
        reg: &mut Registry,
        net_name: &str,
        frame: &[u8],
        lease_time: Duration,
        max_leases: usize,
        now: Instant,
    ) -> Option<Frame> {
        let Some(m) = parse_frame(frame) else {
            self.counters.malformed += 1;
            return None;
        };
        let net = reg.network(net_name)?;
        let (gw, subnet, mtu) = (net.config.gateway, net.config.subnet, net.config.mtu);
        let dns = match net.config.dns {
            Some(d) if d.serve => Some(d.ip),
            Some(_) => None,
            None => Some(gw),
        };
        // An endpoint's own MAC: its address, always.
        let fixed = reg
            .endpoints
            .values()
            .find(|e| e.network == net_name && e.mac == m.chaddr && !e.sole_tenant)
            .map(|e| e.ip);
        let reply = |t: u8, ip: Ipv4Addr, lease: Option<u32>| Reply {
            msg_type: t,
            yiaddr: ip,
            server: gw,
            prefix_len: subnet.prefix_len(),
            router: Some(gw),
            dns,
            mtu: Some(mtu.min(u16::MAX as u32) as u16),
            lease_secs: lease,
        };
        let lease_secs = lease_time.as_secs().min(u32::MAX as u64) as u32;
        let r = match m.msg_type {
            msg::DISCOVER => {
                let ip = match fixed {
                    Some(ip) => ip,
                    None => self.offer(reg, net_name, &m, max_leases, now)?,
                };
                self.counters.offers += 1;
                reply(msg::OFFER, ip, Some(lease_secs))
            }
            msg::REQUEST => {
                if m.server_id.is_some_and(|s| s != gw) {
                    // The client took another server's offer: let ours go.
                    self.release(reg, net_name, &m.chaddr);
                    return None;
                }
                let asked = m
                    .requested_ip
                    .or((!m.ciaddr.is_unspecified()).then_some(m.ciaddr));
                let ours = fixed.or_else(|| self.lease_of(net_name, &m.chaddr).map(|l| l.ip));
                match (asked, ours) {
                    (Some(a), Some(o)) if a != o => {
                        self.counters.naks += 1;
                        reply(msg::NAK, Ipv4Addr::UNSPECIFIED, None)
                    }
                    (_, Some(o)) => {
                        if fixed.is_none() {
                            // Bound (or renewed) for the lease time.
                            if let Some(l) = self
                                .by_net
                                .get_mut(net_name)
                                .and_then(|l| l.get_mut(&m.chaddr))
                            {
                                l.bound = true;
                                l.expires = now + lease_time;
                            }
                        }
                        self.counters.acks += 1;
                        reply(msg::ACK, o, Some(lease_secs))
                    }
                    (_, None) => {
                        self.counters.naks += 1;
                        reply(msg::NAK, Ipv4Addr::UNSPECIFIED, None)
                    }
                }
            }
            msg::RELEASE => {
                self.release(reg, net_name, &m.chaddr);
                self.counters.releases += 1;
                return None;
            }
            msg::DECLINE => {
                self.decline(net_name, &m, now);
                self.counters.declines += 1;
                return None;
            }
            msg::INFORM => {
                self.counters.acks += 1;
                reply(msg::ACK, Ipv4Addr::UNSPECIFIED, None)
            }
            _ => return None,
        };
        let gw_mac = Ipam::mac_for(gw);
        Some(build_frame(&m, &r, gw, gw_mac))
    }

    /// The address to offer a client: its lease (or offer), the one it asks
    /// for if free, or the lowest free one; a new one is held for
    /// `OFFER_TIMEOUT` only.
    fn offer(
        &mut self,
        reg: &mut Registry,
        net_name: &str,
        m: &ClientMessage,
        max_leases: usize,
        now: Instant,
    ) -> Option<Ipv4Addr> {
        if let Some(l) = self
            .by_net
            .get_mut(net_name)
            .and_then(|l| l.get_mut(&m.chaddr))
        {
            if !l.bound {
                l.expires = now + OFFER_TIMEOUT;
            }
            return Some(l.ip);
        }
        if self.total >= max_leases {
            self.counters.refused_full += 1;
            return None;
        }
        let net = reg.network_mut(net_name)?;
        let ip = m
            .requested_ip
            .filter(|ip| net.ipam.range().contains(ip))
            .and_then(|ip| net.ipam.allocate(Some(ip)).ok())
            .or_else(|| net.ipam.allocate_dynamic().ok());
        let Some(ip) = ip else {
            self.counters.refused_full += 1;
            return None;
        };
        self.by_net.entry(net_name.to_string()).or_default().insert(
            m.chaddr,
            Lease {
                ip,
                expires: now + OFFER_TIMEOUT,
                bound: false,
            },
        );
        self.total += 1;
        Some(ip)
    }

    /// A DECLINE: the client found its address in use by someone we do
    /// not know. The lease goes; the address stays out of the pool for
    /// `QUARANTINE`, then returns. A DECLINE naming another address than
    /// the client's is ignored.
    fn decline(&mut self, net_name: &str, m: &ClientMessage, now: Instant) {
        let Some(leases) = self.by_net.get_mut(net_name) else {
            return;
        };
        let Some(l) = leases.get(&m.chaddr) else {
            return;
        };
        if m.requested_ip.is_some_and(|ip| ip != l.ip) {
            return;
        }
        let ip = l.ip;
        leases.remove(&m.chaddr);
        // Still counted in `total`: from lease to quarantine.
        self.quarantine
            .entry(net_name.to_string())
            .or_default()
            .push_back((ip, now + QUARANTINE));
    }

    fn release(&mut self, reg: &mut Registry, net_name: &str, mac: &MacAddr) {
        if let Some(l) = self.by_net.get_mut(net_name).and_then(|l| l.remove(mac)) {
            self.total -= 1;
            if let Some(n) = reg.network_mut(net_name) {
                n.ipam.release(l.ip);
            }
        }
    }

    /// Leases of a network, for `network inspect`.
    pub fn list(&self, net: &str) -> Vec<(MacAddr, Ipv4Addr)> {
        self.by_net
            .get(net)
            .map(|l| l.iter().map(|(m, l)| (*m, l.ip)).collect())
            .unwrap_or_default()
    }
}

/// The DHCP message inside an Ethernet/IPv4/UDP frame.
fn parse_frame(frame: &[u8]) -> Option<ClientMessage> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.ethertype() != ethertype::IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(eth.payload()).ok()?;
    if ip.protocol() != protocol::UDP || ip.is_fragment() {
        return None;
    }
    let udp = UdpPacket::new_checked(ip.payload()).ok()?;
    if udp.dst_port() != dhcp::SERVER_PORT {
        return None;
    }
    let m = dhcp::parse_client(udp.payload()).ok()?;
    // The message's hardware address must be the frame's sender.
    (m.chaddr == eth.src()).then_some(m)
}

/// The reply as a frame: from the gateway's port 67 to the client's MAC,
/// broadcast at the IP level (the client has no address yet).
fn build_frame(m: &ClientMessage, r: &Reply, gw: Ipv4Addr, gw_mac: MacAddr) -> Frame {
    let mut payload = [0u8; dhcp::MIN_LEN + 128];
    let n = dhcp::emit_reply(m, r, &mut payload);
    let l4_len = 8 + n;
    let mut f = vec![0u8; 14 + 20 + l4_len];
    ethernet::emit_header(&mut f, m.chaddr, gw_mac, ethertype::IPV4);
    Ipv4Repr {
        src: gw,
        dst: Ipv4Addr::BROADCAST,
        protocol: protocol::UDP,
        payload_len: l4_len,
        ttl: 64,
        ident: 0,
    }
    .emit(&mut f[14..]);
    let at = ethernet::HEADER_LEN + crate::wire::ipv4::MIN_HEADER_LEN;
    let u = &mut f[at..];
    udp::emit_header(u, dhcp::SERVER_PORT, dhcp::CLIENT_PORT, l4_len as u16, 0);
    u[udp::HEADER_LEN..].copy_from_slice(&payload[..n]);
    let pseudo = checksum::pseudo_header_v4(gw, Ipv4Addr::BROADCAST, protocol::UDP, l4_len as u16);
    let c = checksum::finish(checksum::sum(pseudo, u));
    udp::emit_header(u, dhcp::SERVER_PORT, dhcp::CLIENT_PORT, l4_len as u16, c);
    f
}

#[cfg(test)]
mod tests {
    use super::*;
    const LEASE: Duration = Duration::from_secs(3600);

    /// A registry with one network "n", 10.9.0.0/28: 13 addresses for
    /// clients (.2 to .14).
    fn registry() -> Registry {
        Registry::for_tests()
    }

    /// A client frame of message type `t` from `mac`, with options.
    fn client(t: u8, mac: MacAddr, requested: Option<Ipv4Addr>) -> Vec<u8> {
        let mut m = vec![0u8; dhcp::FIXED_LEN];
        m[0] = 1;
        m[1] = 1;
        m[2] = 6;
        m[4..8].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        m[28..34].copy_from_slice(&mac.0);
        m[236..240].copy_from_slice(&[99, 130, 83, 99]);
        m.extend_from_slice(&[53, 1, t]);
        if let Some(ip) = requested {
            m.extend_from_slice(&[50, 4]);
            m.extend_from_slice(&ip.octets());
        }
        m.push(255);
        let l4 = 8 + m.len();
        let mut f = vec![0u8; 14 + 20 + l4];
        ethernet::emit_header(&mut f, MacAddr::BROADCAST, mac, ethertype::IPV4);
        Ipv4Repr {
            src: Ipv4Addr::UNSPECIFIED,
            dst: Ipv4Addr::BROADCAST,
            protocol: protocol::UDP,
            payload_len: l4,
            ttl: 64,
            ident: 0,
        }
        .emit(&mut f[14..]);
        f[34..36].copy_from_slice(&68u16.to_be_bytes());
        f[36..38].copy_from_slice(&67u16.to_be_bytes());
        f[38..40].copy_from_slice(&(l4 as u16).to_be_bytes());
        f[42..].copy_from_slice(&m);
        f
    }

    fn mac(i: u32) -> MacAddr {
        let b = i.to_be_bytes();
        MacAddr([2, 0xdc, b[0], b[1], b[2], b[3]])
    }

    /// The type and offered address of a reply frame.
    fn answer(f: &[u8]) -> (u8, Ipv4Addr) {
        let d = &f[42..];
        let yi = Ipv4Addr::new(d[16], d[17], d[18], d[19]);
        let t = d[240..]
            .windows(3)
            .find(|w| w[0] == 53 && w[1] == 1)
            .map(|w| w[2])
            .unwrap();
        (t, yi)
    }

    fn ask(
        l: &mut Leases,
        r: &mut Registry,
        frame: &[u8],
        max: usize,
        now: Instant,
    ) -> Option<(u8, Ipv4Addr)> {
        l.handle(r, "n", frame, LEASE, max, now).map(|f| answer(&f))
    }

    #[test]
    fn discover_request_release() {
        let (mut r, mut l, t0) = (registry(), Leases::default(), Instant::now());
        let (t, ip) = ask(
            &mut l,
            &mut r,
            &client(msg::DISCOVER, mac(1), None),
            100,
            t0,
        )
        .unwrap();
        assert_eq!((t, ip), (msg::OFFER, Ipv4Addr::new(10, 9, 0, 2)));
        let (t, got) = ask(
            &mut l,
            &mut r,
            &client(msg::REQUEST, mac(1), Some(ip)),
            100,
            t0,
        )
        .unwrap();
        assert_eq!((t, got), (msg::ACK, ip));
        // A request for another address is refused.
        let other = Ipv4Addr::new(10, 9, 0, 9);
        assert_eq!(
            ask(
                &mut l,
                &mut r,
                &client(msg::REQUEST, mac(1), Some(other)),
                100,
                t0
            )
            .unwrap()
            .0,
            msg::NAK
        );
        // Bound: it outlives the offer timeout, up to the lease time.
        l.expire(&mut r, t0 + OFFER_TIMEOUT * 2);
        assert_eq!(l.held(), 1);
        ask(&mut l, &mut r, &client(msg::RELEASE, mac(1), None), 100, t0);
        assert_eq!((l.held(), r.network("n").unwrap().ipam.in_use()), (0, 0));
    }

    #[test]
    fn offers_nobody_requested_expire_fast() {
        let (mut r, mut l, t0) = (registry(), Leases::default(), Instant::now());
        for i in 0..13 {
            assert!(ask(
                &mut l,
                &mut r,
                &client(msg::DISCOVER, mac(i), None),
                100,
                t0
            )
            .is_some());
        }
        // The pool (13 addresses) is all offered: the next client gets none...
        assert!(ask(
            &mut l,
            &mut r,
            &client(msg::DISCOVER, mac(99), None),
            100,
            t0
        )
        .is_none());
        // ...but only until the offers time out, long before a lease would.
        l.expire(&mut r, t0 + OFFER_TIMEOUT - Duration::from_secs(1));
        assert_eq!(l.held(), 13);
        l.expire(&mut r, t0 + OFFER_TIMEOUT + Duration::from_secs(1));
        assert_eq!((l.held(), r.network("n").unwrap().ipam.in_use()), (0, 0));
        assert_eq!(l.counters.offers_expired, 13);
        let later = t0 + OFFER_TIMEOUT * 2;
        assert!(ask(
            &mut l,
            &mut r,
            &client(msg::DISCOVER, mac(99), None),
            100,
            later
        )
        .is_some());
    }

    #[test]
    fn declined_addresses_are_quarantined_then_come_back() {
        let (mut r, mut l, t0) = (registry(), Leases::default(), Instant::now());
        // DISCOVER/DECLINE with fresh MACs, as a hostile uplink would, far
        // more often than the pool has addresses.
        let mut offers = 0;
        for i in 0..200 {
            if let Some((_, ip)) = ask(&mut l, &mut r, &client(msg::DISCOVER, mac(i), None), 8, t0)
            {
                offers += 1;
                ask(
                    &mut l,
                    &mut r,
                    &client(msg::DECLINE, mac(i), Some(ip)),
                    8,
                    t0,
                );
            }
        }
        // At most max_leases (8) addresses are held; the others stay free
        // for containers.
        assert_eq!(offers, 8);
        assert_eq!(l.held(), 8);
        let ipam = &mut r.network_mut("n").unwrap().ipam;
        assert_eq!(ipam.in_use(), 8);
        let free = ipam.allocate(None).unwrap();
        ipam.release(free);
        // A declined address is not offered again while quarantined...
        l.expire(&mut r, t0 + QUARANTINE - Duration::from_secs(1));
        assert_eq!(l.held(), 8);
        // ...and comes back after.
        l.expire(&mut r, t0 + QUARANTINE + Duration::from_secs(1));
        assert_eq!((l.held(), r.network("n").unwrap().ipam.in_use()), (0, 0));
        assert_eq!(l.counters.quarantine_ended, 8);
    }

    #[test]
    fn a_decline_of_someone_elses_address_changes_nothing() {
        let (mut r, mut l, t0) = (registry(), Leases::default(), Instant::now());
        let (_, ip) = ask(
            &mut l,
            &mut r,
            &client(msg::DISCOVER, mac(1), None),
            100,
            t0,
        )
        .unwrap();
        let other = Ipv4Addr::new(10, 9, 0, 9);
        ask(
            &mut l,
            &mut r,
            &client(msg::DECLINE, mac(1), Some(other)),
            100,
            t0,
        );
        // The lease is still the client's.
        let (t, got) = ask(
            &mut l,
            &mut r,
            &client(msg::REQUEST, mac(1), Some(ip)),
            100,
            t0,
        )
        .unwrap();
        assert_eq!((t, got), (msg::ACK, ip));
    }
}
