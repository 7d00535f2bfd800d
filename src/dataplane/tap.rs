//! The capture tap: how frames leave the data path for `lanyard capture`
//! and `--pcap` without costing it when nobody captures, and without
//! allocating or blocking when somebody does.
//!
//! Theory of operation. A capture is a [`Tap`], shared (an `Arc`) by every
//! shard, and installed on the ports it covers (its [`Scope`]): each port
//! slot holds the taps on it, so a port nobody captures pays one test of
//! an empty list per frame. A frame read from a port is offered as
//! `Inbound` before it is checked (what the container sent, dropped or
//! not, as tcpdump on a veth sees it); a frame written to a port is
//! offered as `Outbound` as it is written (after software segmentation,
//! so what the port was given). The tap runs its filter on the frame; a
//! match takes a buffer from the tap's fixed pool (made when the capture
//! starts), copies up to `snaplen` bytes into it and passes it to the
//! writer over a bounded channel. No free buffer — the writer is behind —
//! drops the record and counts it (`dropped`), as a kernel ring does; the
//! frame itself is never delayed. A count limit (`-c`) is taken from an
//! atomic, so shards together hand over exactly that many records.
//!
//! The writer (the control plane's, `control::capture`) formats records
//! with `capture::pcapng`/`pcap` and gives the buffers back to the pool.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};

use super::NetworkId;
use crate::capture::{Direction, Filter};
use crate::frame::FrameBuf;
use crate::port::PortId;
use crate::wire::vnet::VnetHdr;

/// Buffers of one capture: records in flight between the shards and the
/// writer, at most. 128 × 65 KiB at the default snaplen: 8.3 MiB.
pub const POOL: usize = 128;
/// The largest frame a buffer holds: the largest a port hands over.
pub const MAX_CAPTURED: usize = crate::frame::MAX_FRAME_LEN;

/// Which ports a capture covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every port, and every port attached while it runs (`--pcap`).
    All,
    /// The ports of a network, and those attached to it while it runs.
    Network(NetworkId),
    /// These ports only (`--port CONTAINER|IFNAME`).
    Ports(Vec<PortId>),
}

impl Scope {
    /// Whether a port of network `net` attached now joins the capture.
    pub fn takes_new(&self, net: NetworkId) -> bool {
        match self {
            Scope::All => true,
            Scope::Network(n) => *n == net,
            Scope::Ports(_) => false,
        }
    }

    /// Whether the port `id` of network `net` is covered.
    pub fn covers(&self, id: PortId, net: NetworkId) -> bool {
        match self {
            Scope::Ports(p) => p.contains(&id),
            _ => self.takes_new(net),
        }
    }
}

/// One record on its way to the writer.
#[derive(Debug)]
pub struct Captured {
    /// The frame's first `snaplen` bytes (from its Ethernet header).
    pub data: Vec<u8>,
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    pub port: PortId,
    pub direction: Direction,
    /// The frame's whole length.
    pub original_len: usize,
    /// Its virtio-net header: a GSO super-frame or a partial checksum is
    /// flagged in the file.
    pub vnet: VnetHdr,
}

/// A running capture, as the shards see it.
pub struct Tap {
    pub id: u64,
    pub scope: Scope,
    filter: Filter,
    snaplen: usize,
    pool: Receiver<Vec<u8>>,
    out: Sender<Captured>,
    /// Records still to hand over (`-c`; `u64::MAX`: no limit).
    remaining: AtomicU64,
    /// Matching frames not handed over: no free buffer (the writer is
    /// behind).
    pub dropped: AtomicU64,
}

/// The writer's end of a capture: records to write, and where the
/// buffers go back.
pub struct TapReader {
    pub records: Receiver<Captured>,
    pub give_back: Sender<Vec<u8>>,
}

impl Tap {
    /// A capture of `scope` through `filter`, `snaplen` bytes of each
    /// frame (0: whole frames), at most `count` records; its pool is made
    /// here, once.
    pub fn new(
        id: u64,
        scope: Scope,
        filter: Filter,
        snaplen: usize,
        count: Option<u64>,
    ) -> (Tap, TapReader) {
        let snaplen = if snaplen == 0 {
            MAX_CAPTURED
        } else {
            snaplen.min(MAX_CAPTURED)
        };
        let (give_back, pool) = crossbeam_channel::bounded(POOL);
        for _ in 0..POOL {
            let _ = give_back.send(Vec::with_capacity(snaplen));
        }
        let (out, records) = crossbeam_channel::bounded(POOL);
        (
            Tap {
                id,
                scope,
                filter,
                snaplen,
                pool,
                out,
                remaining: AtomicU64::new(count.unwrap_or(u64::MAX)),
                dropped: AtomicU64::new(0),
            },
            TapReader { records, give_back },
        )
    }

    /// Offers a frame that passed port `port` in `direction`; copies it
    /// if the filter takes it. Never allocates, never blocks.
    pub fn offer(&self, port: PortId, direction: Direction, buf: &FrameBuf) {
        let frame = buf.frame();
        if !self.filter.matches(frame) {
            return;
        }
        if self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_err()
        {
            return;
        }
        let Ok(mut data) = self.pool.try_recv() else {
            // Not handed over, so not counted against `-c`.
            self.remaining.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        };
        data.clear();
        // Within the capacity it was made with: no allocation.
        data.extend_from_slice(&frame[..frame.len().min(self.snaplen)]);
        let timestamp_ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let rec = Captured {
            data,
            timestamp_ns,
            port,
            direction,
            original_len: frame.len(),
            vnet: buf.vnet(),
        };
        if self.out.try_send(rec).is_err() {
            // The writer is gone: the capture is ending.
            self.remaining.fetch_add(1, Ordering::Relaxed);
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The snaplen in force (what the file's header states).
    pub fn snaplen(&self) -> usize {
        self.snaplen
    }

    /// Whether every record of a `-c` limit was handed over.
    pub fn exhausted(&self) -> bool {
        self.remaining.load(Ordering::Relaxed) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(ethertype: u16) -> FrameBuf {
        let mut f = vec![0u8; 60];
        f[0..6].copy_from_slice(&[0xff; 6]);
        f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
        f[12..14].copy_from_slice(&ethertype.to_be_bytes());
        FrameBuf::from_frame(VnetHdr::default(), &f)
    }

    #[test]
    fn a_tap_copies_what_its_filter_takes_up_to_its_count_and_pool() {
        let (tap, r) = Tap::new(1, Scope::All, Filter::parse("arp").unwrap(), 20, Some(3));
        tap.offer(PortId(0), Direction::Inbound, &frame(0x0800));
        assert!(r.records.is_empty(), "IPv4 is not arp");
        for _ in 0..5 {
            tap.offer(PortId(2), Direction::Outbound, &frame(0x0806));
        }
        let got: Vec<Captured> = r.records.try_iter().collect();
        assert_eq!(got.len(), 3, "-c 3");
        assert!(tap.exhausted());
        assert_eq!(got[0].data.len(), 20, "snaplen");
        assert_eq!(got[0].original_len, 60);
        assert_eq!(got[0].port, PortId(2));
        assert_eq!(got[0].direction, Direction::Outbound);
        // With the writer not giving buffers back, the pool runs out and
        // the rest is counted, not queued.
        let (tap, r) = Tap::new(2, Scope::All, Filter::default(), 0, None);
        for _ in 0..POOL + 10 {
            tap.offer(PortId(0), Direction::Inbound, &frame(0x0806));
        }
        assert_eq!(r.records.len(), POOL);
        assert_eq!(tap.dropped.load(Ordering::Relaxed), 10);
        // A frame that found no buffer does not spend the count: `-c 2`
        // with the pool empty, then a buffer back, still hands over 2.
        let (tap, r) = Tap::new(3, Scope::All, Filter::default(), 0, Some(2));
        let held: Vec<Vec<u8>> = (0..POOL).map(|_| tap.pool.try_recv().unwrap()).collect();
        tap.offer(PortId(0), Direction::Inbound, &frame(0x0806));
        assert!(r.records.is_empty() && !tap.exhausted());
        for b in held {
            r.give_back.send(b).unwrap();
        }
        for _ in 0..3 {
            tap.offer(PortId(0), Direction::Inbound, &frame(0x0806));
        }
        assert_eq!(r.records.len(), 2);
        assert!(tap.exhausted());
    }

    #[test]
    fn scopes_cover_their_ports_and_take_new_ones_of_their_network() {
        let n = NetworkId(1);
        assert!(Scope::All.takes_new(NetworkId(7)));
        assert!(Scope::Network(n).takes_new(n));
        assert!(!Scope::Network(n).takes_new(NetworkId(2)));
        let p = Scope::Ports(vec![PortId(3)]);
        assert!(p.covers(PortId(3), NetworkId(9)));
        assert!(!p.covers(PortId(4), n));
        assert!(!p.takes_new(n));
    }
}
