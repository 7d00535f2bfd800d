//! The connection-tracking table: flows by 5-tuple, in a slab (a flow's
//! index is also its socket's poll token), with an intrusive LRU list of
//! activity so the oldest idle flow is found in O(1), a global bound, and a
//! per-endpoint bound. Sized once; nothing grows on the data path.
//!
//! A full table makes room as Linux's conntrack does (its "early drop"):
//! by closing the least recently active flow among the oldest
//! [`EVICT_SCAN`] that the caller says may go (the NAT: one nobody
//! answered), never an established connection; when none of them may, the
//! new flow is refused. So containers that flood together (each at its own
//! bound) churn each other's unanswered flows, not a neighbour's idle
//! connections.

use hashbrown::HashMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use crate::port::PortId;
use crate::time::Time;

/// The transport protocol of a flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Proto {
    Tcp,
    Udp,
    /// ICMP echo; the "port" is the echo identifier.
    Icmp,
}

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
            Proto::Icmp => "icmp",
        })
    }
}

/// A flow as the container sees it: its own address and port, and the
/// address and port it talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub proto: Proto,
    pub inside: SocketAddr,
    pub outside: SocketAddr,
}

/// Index of a flow in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowId(pub u32);

const NIL: u32 = u32::MAX;

struct Slot<T> {
    key: FlowKey,
    owner: PortId,
    last_active: Time,
    prev: u32,
    next: u32,
    value: T,
}

/// Why a flow could not be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The endpoint has as many flows as it may.
    EndpointLimit,
    /// The table is full and none of its oldest flows may be closed.
    Full,
}

/// Flows looked at, from the least recently active, for one that may be
/// closed to make room: bounded work per new flow.
pub const EVICT_SCAN: usize = 64;

pub struct FlowTable<T> {
    slots: Vec<Option<Slot<T>>>,
    free: Vec<u32>,
    index: HashMap<FlowKey, u32>,
    /// Least recently active first.
    head: u32,
    tail: u32,
    len: usize,
    max: usize,
    max_per_endpoint: u32,
    per_endpoint: HashMap<IpAddr, u32>,
}

impl<T> FlowTable<T> {
    pub fn new(max: usize, max_per_endpoint: u32) -> FlowTable<T> {
        let mut slots = Vec::with_capacity(max);
        slots.resize_with(max, || None);
        FlowTable {
            slots,
            free: (0..max as u32).rev().collect(),
            index: HashMap::with_capacity(max * 2),
            head: NIL,
            tail: NIL,
            len: 0,
            max,
            max_per_endpoint,
            // Every endpoint with a flow has an entry: sized for one flow
            // each, it never grows on the data path.
            per_endpoint: HashMap::with_capacity(max),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.max
    }

    pub fn lookup(&self, key: &FlowKey) -> Option<FlowId> {
        self.index.get(key).map(|i| FlowId(*i))
    }

    pub fn get(&self, id: FlowId) -> Option<&T> {
        self.slots.get(id.0 as usize)?.as_ref().map(|s| &s.value)
    }

    pub fn get_mut(&mut self, id: FlowId) -> Option<&mut T> {
        self.slots
            .get_mut(id.0 as usize)?
            .as_mut()
            .map(|s| &mut s.value)
    }

    pub fn key(&self, id: FlowId) -> Option<&FlowKey> {
        self.slots.get(id.0 as usize)?.as_ref().map(|s| &s.key)
    }

    pub fn owner(&self, id: FlowId) -> Option<PortId> {
        self.slots.get(id.0 as usize)?.as_ref().map(|s| s.owner)
    }

    pub fn last_active(&self, id: FlowId) -> Option<Time> {
        self.slots
            .get(id.0 as usize)?
            .as_ref()
            .map(|s| s.last_active)
    }

    pub fn flows_of(&self, inside: IpAddr) -> u32 {
        self.per_endpoint.get(&inside).copied().unwrap_or(0)
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let s = self.slots[i as usize].as_ref().expect("linked slot");
            (s.prev, s.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.slots[p as usize].as_mut().expect("prev").next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.slots[n as usize].as_mut().expect("next").prev = prev,
        }
    }

    fn push_back(&mut self, i: u32) {
        {
            let s = self.slots[i as usize].as_mut().expect("slot");
            s.prev = self.tail;
            s.next = NIL;
        }
        match self.tail {
            NIL => self.head = i,
            t => self.slots[t as usize].as_mut().expect("tail").next = i,
        }
        self.tail = i;
    }

    /// Marks a flow active now: it becomes the last to be evicted.
    pub fn touch(&mut self, id: FlowId, now: Time) {
        let i = id.0;
        let Some(Some(s)) = self.slots.get_mut(i as usize) else {
            return;
        };
        s.last_active = now;
        if self.tail != i {
            self.unlink(i);
            self.push_back(i);
        }
    }

    /// The least recently active flow.
    pub fn oldest(&self) -> Option<FlowId> {
        (self.head != NIL).then_some(FlowId(self.head))
    }

    /// The least recently active of the oldest [`EVICT_SCAN`] flows that
    /// `may_evict` lets go.
    fn evictable(&self, may_evict: impl Fn(&T) -> bool) -> Option<FlowId> {
        let mut cur = self.head;
        for _ in 0..EVICT_SCAN {
            let s = self.slots.get(cur as usize)?.as_ref()?;
            if may_evict(&s.value) {
                return Some(FlowId(cur));
            }
            cur = s.next;
        }
        None
    }

    /// Adds a flow. When the table is full, the least recently active of
    /// its oldest [`EVICT_SCAN`] flows for which `may_evict` holds is
    /// removed first and handed back, for the caller to close; if none may
    /// go, the new flow is refused.
    #[allow(clippy::type_complexity)]
    pub fn insert(
        &mut self,
        key: FlowKey,
        owner: PortId,
        value: T,
        now: Time,
        may_evict: impl Fn(&T) -> bool,
    ) -> Result<(FlowId, Option<(FlowKey, T)>), (Refused, T)> {
        let inside = key.inside.ip();
        if self.flows_of(inside) >= self.max_per_endpoint {
            return Err((Refused::EndpointLimit, value));
        }
        let mut evicted = None;
        if self.free.is_empty() {
            let Some(old) = self.evictable(may_evict) else {
                return Err((Refused::Full, value));
            };
            evicted = self.remove(old);
        }
        let i = self.free.pop().expect("a free slot after eviction");
        self.slots[i as usize] = Some(Slot {
            key,
            owner,
            last_active: now,
            prev: NIL,
            next: NIL,
            value,
        });
        self.push_back(i);
        self.index.insert(key, i);
        *self.per_endpoint.entry(inside).or_insert(0) += 1;
        self.len += 1;
        Ok((FlowId(i), evicted))
    }

    pub fn remove(&mut self, id: FlowId) -> Option<(FlowKey, T)> {
        let i = id.0;
        self.slots.get(i as usize)?.as_ref()?;
        self.unlink(i);
        let s = self.slots[i as usize].take().expect("present");
        self.index.remove(&s.key);
        let inside = s.key.inside.ip();
        if let Some(c) = self.per_endpoint.get_mut(&inside) {
            *c -= 1;
            if *c == 0 {
                self.per_endpoint.remove(&inside);
            }
        }
        self.free.push(i);
        self.len -= 1;
        Some((s.key, s.value))
    }

    /// Flows from least to most recently active.
    pub fn iter(&self) -> impl Iterator<Item = (FlowId, &FlowKey, &T)> + '_ {
        let mut cur = self.head;
        std::iter::from_fn(move || {
            if cur == NIL {
                return None;
            }
            let s = self.slots[cur as usize].as_ref()?;
            let item = (FlowId(cur), &s.key, &s.value);
            cur = s.next;
            Some(item)
        })
    }

    /// Ids of the flows owned by `port`.
    pub fn owned_by(&self, port: PortId) -> Vec<FlowId> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                Some(s) if s.owner == port => Some(FlowId(i as u32)),
                _ => None,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u16, inside: [u8; 4]) -> FlowKey {
        FlowKey {
            proto: Proto::Tcp,
            inside: SocketAddr::from((inside, 40000 + n)),
            outside: SocketAddr::from(([10, 0, 0, 1], 80)),
        }
    }

    #[test]
    fn insert_lookup_remove() {
        let mut t: FlowTable<u32> = FlowTable::new(4, 4);
        let (id, ev) = t
            .insert(key(1, [172, 17, 0, 2]), PortId(0), 7, Time::ZERO, |_| true)
            .unwrap();
        assert!(ev.is_none());
        assert_eq!(t.lookup(&key(1, [172, 17, 0, 2])), Some(id));
        assert_eq!(t.get(id), Some(&7));
        assert_eq!(t.remove(id).map(|(_, v)| v), Some(7));
        assert!(t.lookup(&key(1, [172, 17, 0, 2])).is_none());
        assert!(t.remove(id).is_none());
        assert_eq!(t.len(), 0);
    }

    #[test]
    fn full_table_evicts_the_least_recently_active() {
        let mut t: FlowTable<u32> = FlowTable::new(3, 10);
        let ids: Vec<_> = (0..3)
            .map(|n| {
                t.insert(
                    key(n, [172, 17, 0, 2]),
                    PortId(0),
                    n as u32,
                    Time(n as u64),
                    |_| true,
                )
                .unwrap()
                .0
            })
            .collect();
        t.touch(ids[0], Time(10));
        let (_, evicted) = t
            .insert(key(9, [172, 17, 0, 2]), PortId(0), 9, Time(11), |_| true)
            .unwrap();
        assert_eq!(evicted.map(|(_, v)| v), Some(1), "flow 1 was idle longest");
        assert_eq!(t.len(), 3);
        let order: Vec<u32> = t.iter().map(|(_, _, v)| *v).collect();
        assert_eq!(order, vec![2, 0, 9]);
    }

    /// A full table closes the oldest flow that may go (the NAT: one
    /// nobody answered), skipping those that may not; none among the
    /// oldest `EVICT_SCAN`, the new flow is refused.
    #[test]
    fn a_full_table_evicts_only_what_may_go() {
        // Values: even = established (may not go), odd = unanswered.
        let may_go = |v: &u32| v % 2 == 1;
        let mut t: FlowTable<u32> = FlowTable::new(3, 10);
        for n in [0u32, 1, 2] {
            t.insert(
                key(n as u16, [172, 17, 0, 2]),
                PortId(0),
                n,
                Time(n as u64),
                may_go,
            )
            .unwrap();
        }
        // Flow 0 is the oldest but established: flow 1 goes.
        let (_, evicted) = t
            .insert(key(9, [172, 17, 0, 3]), PortId(1), 8, Time(10), may_go)
            .unwrap();
        assert_eq!(evicted.map(|(_, v)| v), Some(1));
        // 0, 2 and 8 are all established: refused, nothing closed.
        assert!(matches!(
            t.insert(key(10, [172, 17, 0, 3]), PortId(1), 11, Time(11), may_go),
            Err((Refused::Full, 11))
        ));
        assert_eq!(t.len(), 3);
        let order: Vec<u32> = t.iter().map(|(_, _, v)| *v).collect();
        assert_eq!(order, vec![0, 2, 8]);
    }

    /// The scan is bounded: an evictable flow behind `EVICT_SCAN` flows
    /// that may not go is not found.
    #[test]
    fn the_eviction_scan_is_bounded() {
        let n = EVICT_SCAN as u32 + 1;
        let mut t: FlowTable<u32> = FlowTable::new(n as usize, n);
        for i in 0..n {
            // The last (newest) one alone may go.
            let v = if i == n - 1 { 1 } else { 0 };
            t.insert(
                key(i as u16, [172, 17, 0, 2]),
                PortId(0),
                v,
                Time(i as u64),
                |_| false,
            )
            .unwrap();
        }
        assert!(matches!(
            t.insert(
                key(999, [172, 17, 0, 3]),
                PortId(1),
                5,
                Time(999),
                |v: &u32| *v == 1
            ),
            Err((Refused::Full, 5))
        ));
    }

    #[test]
    fn per_endpoint_bound() {
        let mut t: FlowTable<u32> = FlowTable::new(10, 2);
        t.insert(key(1, [172, 17, 0, 2]), PortId(0), 1, Time::ZERO, |_| true)
            .unwrap();
        let (b, _) = t
            .insert(key(2, [172, 17, 0, 2]), PortId(0), 2, Time::ZERO, |_| true)
            .unwrap();
        assert!(matches!(
            t.insert(key(3, [172, 17, 0, 2]), PortId(0), 3, Time::ZERO, |_| true),
            Err((Refused::EndpointLimit, 3))
        ));
        // Another endpoint is not affected.
        assert!(t
            .insert(key(3, [172, 17, 0, 3]), PortId(1), 3, Time::ZERO, |_| true)
            .is_ok());
        t.remove(b);
        assert!(t
            .insert(key(4, [172, 17, 0, 2]), PortId(0), 4, Time::ZERO, |_| true)
            .is_ok());
        assert_eq!(t.owned_by(PortId(0)).len(), 2);
    }
}
