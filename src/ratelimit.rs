//! Token buckets: how many of something a sender may have per second, with
//! a burst. The gateway's ICMP errors (Linux's defaults, shared by all of a
//! network's senders) count with one; so does everything a single source
//! may spend of what its neighbours share — the data path's time and the
//! shared tables — in [`SourceBudget`], one per port in a table sized once
//! ([`Budgets`]).
//!
//! Why per port and not per address: a port is what a container cannot
//! change. Port security pins an endpoint's IPv4 address, but a dual-stack
//! endpoint has several IPv6 ones, and an uplink carries any number of
//! hosts; a table keyed by address would grow with what the sender makes
//! up (or, bounded, be cleared by it). An uplink is one source: the hosts
//! behind it share its budget.

use crate::port::PortId;
use crate::time::Time;

/// A token bucket: `rate` per second, bursts of up to `burst`.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    rate: u32,
    burst: u32,
    tokens: u32,
    last: Time,
}

impl RateLimiter {
    pub fn new(rate: u32, burst: u32) -> RateLimiter {
        RateLimiter {
            rate,
            burst,
            tokens: burst,
            last: Time::ZERO,
        }
    }

    /// A bucket that never runs dry (tests, benches, and callers with no
    /// source to charge).
    pub fn unlimited() -> RateLimiter {
        RateLimiter::new(u32::MAX, u32::MAX)
    }

    /// A bucket whose refills count from `now` (not from time zero).
    pub fn starting_at(mut self, now: Time) -> RateLimiter {
        self.last = now;
        self
    }

    /// Takes a token if there is one.
    pub fn allow(&mut self, now: Time) -> bool {
        if !self.ready(now) {
            return false;
        }
        self.spend();
        true
    }

    /// Whether a token is there (refilled to `now`), taking none: for a
    /// caller that learns only afterwards whether it had anything to spend
    /// it on, and then calls [`RateLimiter::spend`].
    pub fn ready(&mut self, now: Time) -> bool {
        let elapsed = now.saturating_sub(self.last);
        let add = (elapsed.as_nanos() * self.rate as u128 / 1_000_000_000) as u64;
        if add > 0 {
            self.tokens = (self.tokens as u64 + add).min(self.burst as u64) as u32;
            self.last = now;
        }
        self.tokens > 0
    }

    /// Takes a token that [`RateLimiter::ready`] found.
    pub fn spend(&mut self) {
        self.tokens = self.tokens.saturating_sub(1);
    }
}

/// A rate and a burst, as the config states them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    pub per_sec: u32,
    pub burst: u32,
}

impl Rate {
    pub const fn new(per_sec: u32, burst: u32) -> Rate {
        Rate { per_sec, burst }
    }

    fn bucket(self) -> RateLimiter {
        RateLimiter::new(self.per_sec, self.burst)
    }
}

/// The configurable per-source rates (`[nat] new_flows_per_sec`,
/// `new_flows_burst`; `[limits] floods_per_sec`, `floods_burst`); the
/// others are constants below.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimits {
    /// New NAT flows a container may open (TCP SYNs, UDP and ICMP echo to
    /// new destinations): each costs a socket and a connect on the data
    /// path's thread, tens of microseconds.
    pub new_flows: Rate,
    /// Frames a port may have flooded to every other port of its network
    /// (broadcast, multicast, unknown unicast): each is written once per
    /// port, so one port's storm costs every neighbour.
    pub floods: Rate,
}

impl Default for SourceLimits {
    fn default() -> Self {
        SourceLimits {
            new_flows: Rate::new(2000, 4096),
            floods: Rate::new(1000, 1000),
        }
    }
}

/// ICMP errors the gateway and the NAT send one source, together: a tenth
/// of the network's shared rate (`Gateway::ICMP_ERRORS_PER_SEC`) and a
/// fifth of its burst, so one sender cannot spend what its neighbours'
/// failing connects need to fail fast, in a burst or over time. (Linux
/// keeps a per-destination limit beside the global one too: 1/s, burst 6.)
pub const ICMP_ERRORS: Rate = Rate::new(100, 10);
/// Replies the gateway writes back to one source: ARP replies, echo
/// replies, Neighbor Advertisements, solicited Router Advertisements, the
/// RSTs for TCP to a port it does not serve (ping -i 0.001 still gets every
/// answer; a stack asks for its gateway's address a few times a minute).
pub const GATEWAY_REPLIES: Rate = Rate::new(1000, 1000);
/// DHCP messages a port may hand the control plane: a client needs a
/// handful per lease; each costs the event thread and a command back to
/// the data path.
pub const DHCP_MESSAGES: Rate = Rate::new(100, 200);
/// DNS queries to the gateway (UDP) a source may ask.
pub const DNS_QUERIES: Rate = Rate::new(200, 400);

/// What one source (a port) may still spend.
#[derive(Debug, Clone)]
pub struct SourceBudget {
    /// ICMP errors sent to it, by the gateway and by the NAT.
    pub icmp_errors: RateLimiter,
    /// The gateway's replies to it (`GATEWAY_REPLIES`).
    pub replies: RateLimiter,
    /// Its frames flooded to the network's other ports.
    pub floods: RateLimiter,
    /// Its DHCP messages to the control plane.
    pub dhcp: RateLimiter,
    /// New NAT flows it opens.
    pub new_flows: RateLimiter,
    /// Its UDP DNS queries to the gateway.
    pub dns_queries: RateLimiter,
}

impl SourceBudget {
    pub fn new(limits: &SourceLimits) -> SourceBudget {
        SourceBudget {
            icmp_errors: ICMP_ERRORS.bucket(),
            replies: GATEWAY_REPLIES.bucket(),
            floods: limits.floods.bucket(),
            dhcp: DHCP_MESSAGES.bucket(),
            new_flows: limits.new_flows.bucket(),
            dns_queries: DNS_QUERIES.bucket(),
        }
    }

    /// A budget that never runs dry (callers with no source to charge:
    /// tests, benches).
    pub fn unlimited() -> SourceBudget {
        SourceBudget {
            icmp_errors: RateLimiter::unlimited(),
            replies: RateLimiter::unlimited(),
            floods: RateLimiter::unlimited(),
            dhcp: RateLimiter::unlimited(),
            new_flows: RateLimiter::unlimited(),
            dns_queries: RateLimiter::unlimited(),
        }
    }
}

/// Every port's budget, indexed by port: sized once for the switch's
/// ports, so nothing a sender does grows it.
pub struct Budgets {
    limits: SourceLimits,
    table: Vec<SourceBudget>,
}

impl Budgets {
    pub fn new(max_ports: usize, limits: SourceLimits) -> Budgets {
        Budgets {
            table: vec![SourceBudget::new(&limits); max_ports],
            limits,
        }
    }

    pub fn limits(&self) -> SourceLimits {
        self.limits
    }

    /// New limits for every port, all buckets full.
    pub fn set_limits(&mut self, limits: SourceLimits) {
        self.limits = limits;
        let fresh = SourceBudget::new(&limits);
        self.table.iter_mut().for_each(|b| *b = fresh.clone());
    }

    /// A port (re)joins: its budget starts full, whatever the port that had
    /// its id spent.
    pub fn reset(&mut self, port: PortId) {
        if let Some(b) = self.table.get_mut(port.index()) {
            *b = SourceBudget::new(&self.limits);
        }
    }

    /// The budget of `port` (every port the switch has fits the table).
    pub fn of(&mut self, port: PortId) -> Option<&mut SourceBudget> {
        self.table.get_mut(port.index())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let mut r = RateLimiter::new(10, 3).starting_at(Time::from_secs(1));
        let t = Time::from_secs(1);
        assert!((0..3).all(|_| r.allow(t)));
        assert!(!r.allow(t), "the burst is spent");
        // 10 per second: one more every 100 ms, never above the burst.
        assert!(r.allow(Time(t.0 + 100_000_000)));
        assert!(!r.allow(Time(t.0 + 100_000_000)));
        let later = Time::from_secs(100);
        assert_eq!((0..10).filter(|_| r.allow(later)).count(), 3);
    }

    #[test]
    fn looking_takes_no_token() {
        let mut r = RateLimiter::new(10, 2).starting_at(Time::from_secs(1));
        let t = Time::from_secs(1);
        // Asked a thousand times with nothing to spend it on: still full.
        assert!((0..1000).all(|_| r.ready(t)));
        r.spend();
        assert!(r.ready(t));
        r.spend();
        assert!(!r.ready(t), "two spent: the burst");
        assert!(!r.allow(t));
    }

    #[test]
    fn unlimited_never_runs_dry() {
        let mut r = RateLimiter::unlimited();
        assert!((0..100_000).all(|_| r.allow(Time::ZERO)));
    }

    #[test]
    fn each_port_spends_its_own_budget() {
        let limits = SourceLimits {
            new_flows: Rate::new(10, 5),
            floods: Rate::new(1, 1),
        };
        let mut b = Budgets::new(4, limits);
        let t = Time::from_secs(1);
        let spent = (0..100)
            .filter(|_| b.of(PortId(1)).unwrap().new_flows.allow(t))
            .count();
        assert_eq!(spent, 5, "port 1's burst");
        // Port 2 is untouched by what port 1 spent.
        assert!(b.of(PortId(2)).unwrap().new_flows.allow(t));
        // A port beyond the table has none (the switch never makes one).
        assert!(b.of(PortId(4)).is_none());
        // A reused id starts full.
        b.reset(PortId(1));
        assert!(b.of(PortId(1)).unwrap().new_flows.allow(t));
    }
}
