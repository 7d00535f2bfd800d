//! The DHCP server of every network's gateway. The data path hands it the
//! client messages that reach a gateway (an event, not a socket: DHCP is a
//! handful of packets per client); it answers from the same address manager
//! `lanyard run` uses, so static and dynamic addresses never collide, and a
//! client whose MAC is an endpoint's gets exactly that endpoint's address,
//! gateway, DNS and MTU. Dynamic leases are bounded, expire, and are
//! released on DHCPRELEASE.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::registry::Registry;
use crate::ipam::Ipam;
use crate::wire::checksum;
use crate::wire::dhcp::{self, msg, ClientMessage, Reply};
use crate::wire::ethernet::{self, ethertype, EthernetFrame};
use crate::wire::ipv4::{protocol, Ipv4Packet, Ipv4Repr};
use crate::wire::udp::UdpPacket;
use crate::wire::MacAddr;

/// What the server did, for `lanyard stats`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpCounters {
    pub offers: u64,
    pub acks: u64,
    pub naks: u64,
    pub releases: u64,
    pub declines: u64,
    pub malformed: u64,
    pub refused_full: u64,
    pub leases_expired: u64,
}

#[derive(Debug, Clone)]
struct Lease {
    ip: Ipv4Addr,
    expires: Instant,
}

/// Dynamic leases, per network name and client MAC.
#[derive(Debug, Default)]
pub struct Leases {
    by_net: HashMap<String, HashMap<MacAddr, Lease>>,
    total: usize,
    pub counters: DhcpCounters,
}

/// A reply frame to send out of the port the request came in on.
pub type Frame = Vec<u8>;

impl Leases {
    fn lease_of(&self, net: &str, mac: &MacAddr) -> Option<&Lease> {
        self.by_net.get(net)?.get(mac)
    }

    /// Releases leases past their time back to the address pools.
    pub fn expire(&mut self, reg: &mut Registry, now: Instant) {
        for (net, leases) in &mut self.by_net {
            let before = leases.len();
            let mut freed = Vec::new();
            leases.retain(|_, l| {
                let keep = l.expires > now;
                if !keep {
                    freed.push(l.ip);
                }
                keep
            });
            if let Some(n) = reg.network_mut(net) {
                for ip in freed {
                    n.ipam.release(ip);
                }
            }
            let gone = before - leases.len();
            self.total -= gone;
            self.counters.leases_expired += gone as u64;
        }
    }

    /// Forgets a network's leases (it was removed).
    pub fn network_removed(&mut self, net: &str) {
        if let Some(l) = self.by_net.remove(net) {
            self.total -= l.len();
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
        // An endpoint's own MAC: its address, always.
        let fixed = reg
            .endpoints
            .values()
            .find(|e| e.network == net_name && e.mac == m.chaddr)
            .map(|e| e.ip);
        let reply = |t: u8, ip: Ipv4Addr, lease: Option<u32>| Reply {
            msg_type: t,
            yiaddr: ip,
            server: gw,
            prefix_len: subnet.prefix_len(),
            router: Some(gw),
            dns: Some(gw),
            mtu: Some(mtu.min(u16::MAX as u32) as u16),
            lease_secs: lease,
        };
        let lease_secs = lease_time.as_secs().min(u32::MAX as u64) as u32;
        let r = match m.msg_type {
            msg::DISCOVER => {
                let ip = match fixed {
                    Some(ip) => ip,
                    None => self.dynamic(reg, net_name, &m, lease_time, max_leases, now)?,
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
                    (Some(a), Some(o)) if a == o => {
                        if fixed.is_none() {
                            if let Some(l) = self
                                .by_net
                                .get_mut(net_name)
                                .and_then(|l| l.get_mut(&m.chaddr))
                            {
                                l.expires = now + lease_time;
                            }
                        }
                        self.counters.acks += 1;
                        reply(msg::ACK, o, Some(lease_secs))
                    }
                    (None, Some(o)) => {
                        self.counters.acks += 1;
                        reply(msg::ACK, o, Some(lease_secs))
                    }
                    _ => {
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
                // The address is in use by someone we do not know: the
                // lease goes, the address stays taken in the pool.
                if let Some(l) = self
                    .by_net
                    .get_mut(net_name)
                    .and_then(|l| l.remove(&m.chaddr))
                {
                    let _ = l;
                    self.total -= 1;
                }
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

    /// A dynamic address for a client: its lease, the one it asks for if
    /// free, or the lowest free one.
    fn dynamic(
        &mut self,
        reg: &mut Registry,
        net_name: &str,
        m: &ClientMessage,
        lease_time: Duration,
        max_leases: usize,
        now: Instant,
    ) -> Option<Ipv4Addr> {
        if let Some(l) = self.lease_of(net_name, &m.chaddr) {
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
            .or_else(|| net.ipam.allocate(None).ok());
        let Some(ip) = ip else {
            self.counters.refused_full += 1;
            return None;
        };
        self.by_net.entry(net_name.to_string()).or_default().insert(
            m.chaddr,
            Lease {
                ip,
                expires: now + lease_time,
            },
        );
        self.total += 1;
        Some(ip)
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
    let u = &mut f[34..];
    u[0..2].copy_from_slice(&dhcp::SERVER_PORT.to_be_bytes());
    u[2..4].copy_from_slice(&dhcp::CLIENT_PORT.to_be_bytes());
    u[4..6].copy_from_slice(&(l4_len as u16).to_be_bytes());
    u[8..].copy_from_slice(&payload[..n]);
    let pseudo = checksum::pseudo_header_v4(gw, Ipv4Addr::BROADCAST, protocol::UDP, l4_len as u16);
    let c = checksum::finish(checksum::sum(pseudo, &f[34..]));
    f[40..42].copy_from_slice(&c.to_be_bytes());
    f
}
