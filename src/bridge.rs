//! The learning bridge: a bounded forwarding database (MAC → port, with
//! aging) and the forwarding decision made from it. It never looks past the
//! Ethernet header.
//!
//! Bounds: the table holds at most `max_entries` learned MACs and at most
//! `max_per_port` learned on one port, so a container (or an uplink) that
//! sprays random source MACs cannot grow memory or evict everyone else's
//! entries; a refused MAC is counted and its frames are still forwarded
//! (flooded in the other direction), as a hardware switch with a full CAM
//! does. Endpoints' pinned MACs are counted apart (at most one per port), so
//! a table filled by learning never keeps a container from attaching. The
//! hash table is sized at creation to twice both bounds, so it never
//! reallocates on the data path.

use hashbrown::HashMap;
use std::time::Duration;

use crate::port::PortId;
use crate::time::Time;
use crate::wire::MacAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdbEntry {
    pub port: PortId,
    pub last_seen: Time,
    /// Installed by the control plane for an endpoint's own MAC; never ages,
    /// never moves by learning.
    pub is_static: bool,
    /// When the entry was last announced to the other data-path shards.
    pub announced: Time,
    /// Learned by another shard and told to this one: its aging is
    /// counted where it was learned.
    pub synced: bool,
}

/// What learning a source MAC did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Learn {
    /// Known on this port; its age was refreshed.
    Refreshed,
    /// As `Refreshed`, and the last announcement to the other shards is
    /// over a quarter of the aging time old: announce it again, so their
    /// copies do not age out while the MAC is in use.
    Renewed,
    /// New entry.
    Learned,
    /// Known on another port; moved here.
    Moved,
    /// Not learned: the table or the port's share of it is full.
    Full,
    /// The MAC is pinned to another port (an endpoint's own address): the
    /// frame claims someone else's identity.
    StaticConflict,
}

crate::stats::counters! {
    /// Counters of one FDB.
    pub struct FdbCounters {
        /// Source MACs learned anew by this table (entries synced from another shard not
        /// counted).
        learned,
        /// Learned MACs moved to another port: seen as a source on a port other than
        /// their entry's.
        moved,
        /// Source MACs not learned or moved because the table or the port's share of it
        /// was full.
        refused_full,
        /// Learned entries removed for going unseen longer than the aging time (those
        /// another shard learned are counted there).
        aged_out,
    }
}

/// Where a frame goes, decided from its destination MAC alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forward {
    Unicast(PortId),
    /// Broadcast, multicast or unknown unicast: every port of the network
    /// but the ingress one.
    Flood,
    /// The destination sits behind the ingress port: sending it back would
    /// hairpin, so the frame is dropped.
    Hairpin,
}

#[derive(Debug)]
pub struct Fdb {
    table: HashMap<MacAddr, FdbEntry>,
    /// Learned (non-static) entries per port, indexed by `PortId`.
    per_port: Vec<u32>,
    max_entries: usize,
    max_per_port: u32,
    max_static: usize,
    learned_total: usize,
    static_total: usize,
    aging: Duration,
    pub counters: FdbCounters,
}

impl Fdb {
    /// `max_entries` learned MACs, `max_per_port` of them per port, and up
    /// to `max_static` pinned ones.
    pub fn new(max_entries: usize, max_per_port: u32, max_static: usize, aging: Duration) -> Fdb {
        Fdb {
            table: HashMap::with_capacity(max_entries.saturating_add(max_static).saturating_mul(2)),
            per_port: Vec::new(),
            max_entries,
            max_per_port,
            max_static,
            learned_total: 0,
            static_total: 0,
            aging,
            counters: FdbCounters::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn max_entries(&self) -> usize {
        self.max_entries
    }

    pub fn aging(&self) -> Duration {
        self.aging
    }

    /// Learned entries currently attributed to `port`.
    pub fn learned_on(&self, port: PortId) -> u32 {
        self.per_port.get(port.index()).copied().unwrap_or(0)
    }

    fn port_count(&mut self, port: PortId) -> &mut u32 {
        let i = port.index();
        if i >= self.per_port.len() {
            // Control-plane growth only: called first from `add_static` or
            // `port_added`, which the control plane runs when it adds a port.
            self.per_port.resize(i + 1, 0);
        }
        &mut self.per_port[i]
    }

    /// Prepares per-port state for a new port (control plane).
    pub fn port_added(&mut self, port: PortId) {
        *self.port_count(port) = 0;
    }

    fn expired(&self, e: &FdbEntry, now: Time) -> bool {
        !e.is_static && now.saturating_sub(e.last_seen) > self.aging
    }

    /// Learns `mac` as living behind `port`.
    #[inline]
    pub fn learn(&mut self, mac: MacAddr, port: PortId, now: Time) -> Learn {
        let aging = self.aging;
        if let Some(e) = self.table.get_mut(&mac) {
            if e.port == port {
                e.last_seen = now;
                if !e.is_static && now.saturating_sub(e.announced) > aging / 4 {
                    e.announced = now;
                    return Learn::Renewed;
                }
                return Learn::Refreshed;
            }
            if e.is_static {
                return Learn::StaticConflict;
            }
            let expired = now.saturating_sub(e.last_seen) > aging;
            let old = e.port;
            // Moving counts against the new port's share.
            if self.learned_on(port) >= self.max_per_port {
                self.counters.refused_full += 1;
                if expired {
                    self.table.remove(&mac);
                    self.per_port[old.index()] -= 1;
                    self.learned_total -= 1;
                    self.counters.aged_out += 1;
                }
                return Learn::Full;
            }
            let e = self.table.get_mut(&mac).expect("entry present");
            e.port = port;
            e.last_seen = now;
            e.announced = now;
            e.synced = false;
            self.per_port[old.index()] -= 1;
            *self.port_count(port) += 1;
            self.counters.moved += 1;
            return Learn::Moved;
        }
        if self.learned_total >= self.max_entries || self.learned_on(port) >= self.max_per_port {
            self.counters.refused_full += 1;
            return Learn::Full;
        }
        self.table.insert(
            mac,
            FdbEntry {
                port,
                last_seen: now,
                is_static: false,
                announced: now,
                synced: false,
            },
        );
        *self.port_count(port) += 1;
        self.learned_total += 1;
        self.counters.learned += 1;
        Learn::Learned
    }

    /// Learns what another shard learned (`mac` behind `port`, seen at
    /// `now`; the caller checks `port` is one of this table's). Counted
    /// where it was learned, not again here.
    pub fn learn_synced(&mut self, mac: MacAddr, port: PortId, now: Time) {
        let counters = self.counters;
        if self.learn(mac, port, now) != Learn::StaticConflict {
            if let Some(e) = self.table.get_mut(&mac).filter(|e| e.port == port) {
                e.synced = true;
            }
        }
        self.counters = counters;
    }

    /// Pins an endpoint's own MAC to its port (control plane). Replaces a
    /// learned entry for the same MAC. Pinned entries have a bound of their
    /// own, apart from the learned ones.
    pub fn add_static(&mut self, mac: MacAddr, port: PortId) -> Result<(), FdbFull> {
        self.port_count(port);
        match self.table.get(&mac).copied() {
            Some(e) if !e.is_static => {
                if self.static_total >= self.max_static {
                    return Err(FdbFull);
                }
                self.per_port[e.port.index()] -= 1;
                self.learned_total -= 1;
                self.static_total += 1;
            }
            Some(_) => {}
            None if self.static_total >= self.max_static => return Err(FdbFull),
            None => self.static_total += 1,
        }
        self.table.insert(
            mac,
            FdbEntry {
                port,
                last_seen: Time::ZERO,
                is_static: true,
                announced: Time::ZERO,
                synced: false,
            },
        );
        Ok(())
    }

    /// The port `mac` was last seen on, if the entry has not aged out.
    #[inline]
    pub fn lookup(&mut self, mac: &MacAddr, now: Time) -> Option<PortId> {
        let e = *self.table.get(mac)?;
        if self.expired(&e, now) {
            self.table.remove(mac);
            self.per_port[e.port.index()] -= 1;
            self.learned_total -= 1;
            self.counters.aged_out += u64::from(!e.synced);
            return None;
        }
        Some(e.port)
    }

    /// Where a frame to `dst` that came in on `ingress` goes.
    #[inline]
    pub fn decide(&mut self, dst: &MacAddr, ingress: PortId, now: Time) -> Forward {
        if dst.is_multicast() {
            return Forward::Flood;
        }
        match self.lookup(dst, now) {
            Some(p) if p == ingress => Forward::Hairpin,
            Some(p) => Forward::Unicast(p),
            None => Forward::Flood,
        }
    }

    /// Removes aged-out entries; returns how many.
    pub fn expire(&mut self, now: Time) -> usize {
        let aging = self.aging;
        let per_port = &mut self.per_port;
        let before = self.table.len();
        let mut own = 0u64;
        self.table.retain(|_, e| {
            let keep = e.is_static || now.saturating_sub(e.last_seen) <= aging;
            if !keep {
                per_port[e.port.index()] -= 1;
                own += u64::from(!e.synced);
            }
            keep
        });
        let n = before - self.table.len();
        self.learned_total -= n;
        self.counters.aged_out += own;
        n
    }

    /// Forgets everything learned or pinned on `port` (the port left).
    pub fn flush_port(&mut self, port: PortId) {
        let (mut learned, mut pinned) = (0, 0);
        self.table.retain(|_, e| {
            if e.port != port {
                return true;
            }
            if e.is_static {
                pinned += 1;
            } else {
                learned += 1;
            }
            false
        });
        self.learned_total -= learned;
        self.static_total -= pinned;
        if let Some(c) = self.per_port.get_mut(port.index()) {
            *c = 0;
        }
    }

    /// Live entries, for listing.
    pub fn entries(&self, now: Time) -> impl Iterator<Item = (MacAddr, FdbEntry)> + '_ {
        self.table
            .iter()
            .filter(move |(_, e)| !self.expired(e, now))
            .map(|(m, e)| (*m, *e))
    }
}

/// The table is full; the static entry was not added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdbFull;

#[cfg(test)]
mod tests {
    use super::*;

    fn mac(n: u32) -> MacAddr {
        let b = n.to_be_bytes();
        MacAddr([2, 0, b[0], b[1], b[2], b[3]])
    }

    fn fdb() -> Fdb {
        let mut f = Fdb::new(8, 4, 4, Duration::from_secs(300));
        for p in 0..4 {
            f.port_added(PortId(p));
        }
        f
    }

    #[test]
    fn learns_and_forwards() {
        let mut f = fdb();
        let t = Time::from_secs(1);
        assert_eq!(f.learn(mac(1), PortId(0), t), Learn::Learned);
        assert_eq!(f.learn(mac(1), PortId(0), t), Learn::Refreshed);
        assert_eq!(f.decide(&mac(1), PortId(1), t), Forward::Unicast(PortId(0)));
        assert_eq!(f.decide(&mac(1), PortId(0), t), Forward::Hairpin);
        assert_eq!(f.decide(&mac(2), PortId(1), t), Forward::Flood);
        assert_eq!(f.decide(&MacAddr::BROADCAST, PortId(1), t), Forward::Flood);
    }

    #[test]
    fn ages_out_with_injected_clock() {
        let mut f = fdb();
        f.learn(mac(1), PortId(0), Time::from_secs(10));
        assert_eq!(f.lookup(&mac(1), Time::from_secs(310)), Some(PortId(0)));
        assert_eq!(f.lookup(&mac(1), Time::from_secs(311)), None);
        assert_eq!(f.learned_on(PortId(0)), 0);
        f.learn(mac(2), PortId(1), Time::from_secs(10));
        f.learn(mac(3), PortId(1), Time::from_secs(200));
        assert_eq!(f.expire(Time::from_secs(400)), 1);
        assert_eq!(f.len(), 1);
        assert_eq!(f.learned_on(PortId(1)), 1);
        assert_eq!(f.counters.aged_out, 2);
    }

    #[test]
    fn per_port_bound_holds() {
        let mut f = fdb();
        let t = Time::ZERO;
        for i in 0..4 {
            assert_eq!(f.learn(mac(i), PortId(0), t), Learn::Learned);
        }
        assert_eq!(f.learn(mac(99), PortId(0), t), Learn::Full);
        assert_eq!(f.learned_on(PortId(0)), 4);
        // Other ports still learn.
        assert_eq!(f.learn(mac(100), PortId(1), t), Learn::Learned);
    }

    #[test]
    fn global_bound_holds_under_flood() {
        let mut f = fdb();
        let t = Time::ZERO;
        for i in 0..1000 {
            f.learn(mac(i), PortId(i % 4), t);
        }
        assert!(f.len() <= 8);
        assert!(f.counters.refused_full > 0);
    }

    #[test]
    fn moves_between_ports_and_keeps_counts() {
        let mut f = fdb();
        let t = Time::ZERO;
        f.learn(mac(1), PortId(0), t);
        assert_eq!(f.learn(mac(1), PortId(2), t), Learn::Moved);
        assert_eq!(f.learned_on(PortId(0)), 0);
        assert_eq!(f.learned_on(PortId(2)), 1);
        assert_eq!(f.decide(&mac(1), PortId(0), t), Forward::Unicast(PortId(2)));
    }

    #[test]
    fn static_entries_never_move_or_age() {
        let mut f = fdb();
        f.add_static(mac(7), PortId(3)).unwrap();
        assert_eq!(
            f.learn(mac(7), PortId(1), Time::ZERO),
            Learn::StaticConflict
        );
        assert_eq!(
            f.lookup(&mac(7), Time::from_secs(1_000_000)),
            Some(PortId(3))
        );
        assert_eq!(f.expire(Time::from_secs(1_000_000)), 0);
        f.flush_port(PortId(3));
        assert_eq!(f.lookup(&mac(7), Time::ZERO), None);
    }

    #[test]
    fn a_table_full_of_learned_macs_still_takes_pinned_ones() {
        let mut f = fdb();
        for i in 0..100 {
            f.learn(mac(i), PortId(i % 2), Time::ZERO);
        }
        assert_eq!(f.len(), 8);
        f.add_static(mac(1000), PortId(3)).unwrap();
        assert_eq!(f.lookup(&mac(1000), Time::ZERO), Some(PortId(3)));
        // The pinned bound holds on its own.
        for i in 0..3 {
            f.add_static(mac(2000 + i), PortId(3)).unwrap();
        }
        assert_eq!(f.add_static(mac(3000), PortId(3)), Err(FdbFull));
        // Learning still stops at its bounds: port 0's share is freed, port
        // 1's is full, port 2 takes up the rest of the learned total.
        f.flush_port(PortId(0));
        for i in 200..300 {
            f.learn(mac(i), PortId(1), Time::ZERO);
            f.learn(mac(i + 1000), PortId(2), Time::ZERO);
        }
        assert_eq!(f.learned_on(PortId(1)), 4);
        assert_eq!(f.learned_on(PortId(2)), 4);
        assert_eq!(f.len(), 8 + 4);
    }

    #[test]
    fn flush_port_forgets_learned_entries() {
        let mut f = fdb();
        f.learn(mac(1), PortId(0), Time::ZERO);
        f.learn(mac(2), PortId(0), Time::ZERO);
        f.learn(mac(3), PortId(1), Time::ZERO);
        f.flush_port(PortId(0));
        assert_eq!(f.len(), 1);
        assert_eq!(f.learned_on(PortId(0)), 0);
        assert_eq!(f.learn(mac(4), PortId(0), Time::ZERO), Learn::Learned);
    }
}
