//! In-memory ports for tests, benches and fuzzing: frames are injected and
//! collected through a [`MemoryHandle`]; a sink port just counts. They take
//! no offloads unless asked to, so every frame bound for them goes through
//! the software fallback exactly as it would for a port that cannot take
//! offloads.
//!
//! Three kinds of outbound side:
//!
//! * **queued** ([`MemoryPort::new`]): each sent frame is copied into a
//!   `Vec` of its own. A test double, not part of the forwarding path: it
//!   allocates per frame.
//! * **recording** ([`MemoryPort::recording`]): a ring of buffers made once
//!   (each with room for the largest frame), reused for every frame, so a
//!   port can record what the switch sends while the switch runs under a
//!   counting allocator. The test reads the ring through its handle with a
//!   closure ([`MemoryHandle::for_each_sent`]) or into a buffer of its own
//!   ([`MemoryHandle::take_sent_into`]), neither of which allocates. A frame
//!   sent to a full ring is refused (`SendError::Full`, as a full TAP queue
//!   is) and counted ([`MemoryHandle::overflowed`]), never silently lost.
//! * **sink** ([`MemoryPort::sink`]): discards and counts; allocates
//!   nothing.
//!
//! The inbound side (injected frames) is a queue that copies each frame
//! into a `Vec`; a test that must not allocate hands frames to
//! `Switch::handle_frame` in a preallocated `FrameBuf` instead.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Port, PortKind, PortType, SendError};
use crate::frame::{FrameBuf, MAX_FRAME_LEN};
use crate::offload::Offloads;
use crate::wire::vnet::VnetHdr;

/// The recording ring: `slots` buffers of `MAX_FRAME_LEN` capacity each,
/// used oldest first. Nothing is allocated after it is made.
#[derive(Debug)]
struct Ring {
    slots: Vec<(VnetHdr, Vec<u8>)>,
    /// The oldest recorded frame.
    head: usize,
    /// Recorded frames not yet taken.
    len: usize,
    /// Frames refused because every slot was taken.
    overflowed: u64,
}

impl Ring {
    fn new(slots: usize) -> Ring {
        Ring {
            slots: (0..slots.max(1))
                .map(|_| (VnetHdr::default(), Vec::with_capacity(MAX_FRAME_LEN)))
                .collect(),
            head: 0,
            len: 0,
            overflowed: 0,
        }
    }

    /// Copies a frame into the next free slot; false if there is none.
    fn record(&mut self, vnet: VnetHdr, frame: &[u8]) -> bool {
        if self.len == self.slots.len() {
            self.overflowed += 1;
            return false;
        }
        let i = (self.head + self.len) % self.slots.len();
        let (h, b) = &mut self.slots[i];
        *h = vnet;
        b.clear();
        // Within the capacity the slot was made with: no reallocation.
        b.extend_from_slice(&frame[..frame.len().min(MAX_FRAME_LEN)]);
        self.len += 1;
        true
    }

    /// The oldest recorded frame, if any, still in its slot.
    fn oldest(&self) -> Option<&(VnetHdr, Vec<u8>)> {
        (self.len > 0).then(|| &self.slots[self.head])
    }

    fn pop(&mut self) {
        if self.len > 0 {
            self.head = (self.head + 1) % self.slots.len();
            self.len -= 1;
        }
    }
}

#[derive(Debug, Default)]
struct Queues {
    inbound: VecDeque<(VnetHdr, Vec<u8>)>,
    outbound: VecDeque<(VnetHdr, Vec<u8>)>,
    /// Set for a recording port: the outbound side is this ring instead of
    /// `outbound`.
    ring: Option<Ring>,
    capacity: usize,
    sent: u64,
}

pub struct MemoryPort {
    queues: Option<Arc<Mutex<Queues>>>,
    offloads: Offloads,
    sent: u64,
}

/// The test's end of a memory port.
#[derive(Clone)]
pub struct MemoryHandle {
    queues: Arc<Mutex<Queues>>,
}

impl MemoryPort {
    /// A port whose queues hold up to `capacity` frames each way.
    pub fn new(capacity: usize) -> (MemoryPort, MemoryHandle) {
        MemoryPort::with_offloads(capacity, Offloads::NONE)
    }

    /// As [`MemoryPort::new`], but declaring offloads as a TAP would, to
    /// test the pass-through path.
    pub fn with_offloads(capacity: usize, offloads: Offloads) -> (MemoryPort, MemoryHandle) {
        MemoryPort::from_queues(
            Queues {
                capacity,
                ..Default::default()
            },
            offloads,
        )
    }

    /// A port that records what it is sent in a ring of `slots` buffers
    /// made now (each with room for a 64 KiB super-frame), without
    /// allocating per frame; `inbound` frames may be queued for it to
    /// receive. `offloads` as for [`MemoryPort::with_offloads`]
    /// (`Offloads::FULL` to receive GSO super-frames whole, as a TAP does).
    pub fn recording(
        slots: usize,
        inbound: usize,
        offloads: Offloads,
    ) -> (MemoryPort, MemoryHandle) {
        MemoryPort::from_queues(
            Queues {
                capacity: inbound,
                ring: Some(Ring::new(slots)),
                ..Default::default()
            },
            offloads,
        )
    }

    fn from_queues(q: Queues, offloads: Offloads) -> (MemoryPort, MemoryHandle) {
        let q = Arc::new(Mutex::new(q));
        (
            MemoryPort {
                queues: Some(q.clone()),
                offloads,
                sent: 0,
            },
            MemoryHandle { queues: q },
        )
    }

    /// A port that discards what it is sent and never receives.
    pub fn sink() -> MemoryPort {
        MemoryPort {
            queues: None,
            offloads: Offloads::NONE,
            sent: 0,
        }
    }

    /// As [`MemoryPort::sink`], declaring offloads.
    pub fn sink_with_offloads(offloads: Offloads) -> MemoryPort {
        MemoryPort {
            queues: None,
            offloads,
            sent: 0,
        }
    }

    /// Frames sent to a sink.
    pub fn sent(&self) -> u64 {
        self.sent
    }
}

impl MemoryHandle {
    fn lock(&self) -> MutexGuard<'_, Queues> {
        self.queues.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues a frame for the switch to receive; false if the queue is full.
    pub fn inject(&self, vnet: VnetHdr, frame: &[u8]) -> bool {
        let mut q = self.lock();
        if q.inbound.len() >= q.capacity {
            return false;
        }
        let n = frame.len().min(MAX_FRAME_LEN);
        q.inbound.push_back((vnet, frame[..n].to_vec()));
        true
    }

    /// Takes every frame the switch sent to this port, each copied into a
    /// `Vec` (allocates; a recording port's ring is emptied too).
    pub fn take_sent(&self) -> Vec<(VnetHdr, Vec<u8>)> {
        let mut q = self.lock();
        let mut out: Vec<(VnetHdr, Vec<u8>)> = q.outbound.drain(..).collect();
        if let Some(r) = &mut q.ring {
            while let Some((h, b)) = r.oldest() {
                out.push((*h, b.clone()));
                r.pop();
            }
        }
        out
    }

    /// Hands every frame a recording port recorded to `f`, oldest first,
    /// and frees their slots; returns how many there were. Allocates
    /// nothing. The port's lock is held meanwhile: `f` must not make the
    /// switch send to this port. A queued port's frames are not visited
    /// (use [`MemoryHandle::take_sent`]).
    pub fn for_each_sent(&self, mut f: impl FnMut(&VnetHdr, &[u8])) -> usize {
        let mut q = self.lock();
        let Some(r) = &mut q.ring else {
            return 0;
        };
        let mut n = 0;
        while let Some((h, b)) = r.oldest() {
            f(h, b);
            r.pop();
            n += 1;
        }
        n
    }

    /// Moves the oldest recorded frame into `buf` (header and bytes) and
    /// frees its slot; false if there is none. Allocates nothing.
    pub fn take_sent_into(&self, buf: &mut FrameBuf) -> bool {
        let mut q = self.lock();
        let Some(r) = &mut q.ring else {
            return false;
        };
        let Some((h, b)) = r.oldest() else {
            return false;
        };
        buf.load(*h, b);
        r.pop();
        true
    }

    /// Frames recorded and not yet taken (a recording port), or queued
    /// (a queued port).
    pub fn pending_sent(&self) -> usize {
        let q = self.lock();
        q.ring.as_ref().map_or(q.outbound.len(), |r| r.len)
    }

    /// Frames a recording port refused because every slot of its ring was
    /// taken (0 for the other kinds).
    pub fn overflowed(&self) -> u64 {
        let q = self.lock();
        q.ring.as_ref().map_or(0, |r| r.overflowed)
    }

    /// Frames sent to this port over its life (recorded or queued; not
    /// those refused).
    pub fn sent_count(&self) -> u64 {
        self.lock().sent
    }

    pub fn pending_inbound(&self) -> usize {
        self.lock().inbound.len()
    }
}

impl PortType for MemoryPort {
    /// The port itself: it is made with its handle ([`MemoryPort::new`] and
    /// its siblings), which the test keeps.
    type Source = MemoryPort;

    /// Whatever it was made to declare, up to everything a TAP takes.
    const OFFERS: Offloads = Offloads::FULL;

    fn open(port: MemoryPort) -> io::Result<MemoryPort> {
        Ok(port)
    }
}

impl Port for MemoryPort {
    fn kind(&self) -> PortKind {
        PortKind::Memory
    }

    fn offloads(&self) -> Offloads {
        self.offloads
    }

    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    fn recv_batch(&mut self, bufs: &mut [FrameBuf]) -> io::Result<usize> {
        let Some(q) = &self.queues else {
            return Ok(0);
        };
        let mut q = q.lock().unwrap_or_else(|p| p.into_inner());
        let mut n = 0;
        while n < bufs.len() {
            let Some((h, f)) = q.inbound.pop_front() else {
                break;
            };
            bufs[n].load(h, &f);
            n += 1;
        }
        Ok(n)
    }

    fn send(&mut self, frame: &FrameBuf) -> Result<(), SendError> {
        self.sent += 1;
        let Some(q) = &self.queues else {
            return Ok(());
        };
        let mut q = q.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = &mut q.ring {
            if !r.record(frame.vnet(), frame.frame()) {
                return Err(SendError::Full);
            }
            q.sent += 1;
            return Ok(());
        }
        if q.outbound.len() >= q.capacity {
            return Err(SendError::Full);
        }
        q.sent += 1;
        q.outbound.push_back((frame.vnet(), frame.frame().to_vec()));
        Ok(())
    }

    fn share(&self) -> Box<dyn Port> {
        Box::new(super::SendOnly(MemoryPort {
            queues: self.queues.clone(),
            offloads: self.offloads,
            sent: 0,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vnet::{flags, gso};

    fn frame(tag: u8, len: usize) -> FrameBuf {
        FrameBuf::from_frame(VnetHdr::default(), &vec![tag; len])
    }

    #[test]
    fn the_ring_records_in_order_and_reuses_its_buffers() {
        let (mut p, h) = MemoryPort::recording(4, 0, Offloads::NONE);
        // The buffers the ring made up front, by address.
        let mut first: Vec<usize> = Vec::new();
        for i in 0..4u8 {
            p.send(&frame(i, 60 + i as usize)).unwrap();
        }
        assert_eq!(h.pending_sent(), 4);
        let mut seen = Vec::new();
        let n = h.for_each_sent(|_, b| {
            seen.push((b[0], b.len()));
            first.push(b.as_ptr() as usize);
        });
        assert_eq!(n, 4);
        assert_eq!(seen, vec![(0, 60), (1, 61), (2, 62), (3, 63)]);
        assert_eq!(h.pending_sent(), 0);
        // Many more frames, of every size up to a super-frame: always the
        // same four buffers, none grown or replaced.
        let big = FrameBuf::from_frame(VnetHdr::default(), &vec![9u8; MAX_FRAME_LEN]);
        for round in 0..50u8 {
            p.send(&frame(round, 100)).unwrap();
            p.send(&big).unwrap();
            let mut ptrs = Vec::new();
            h.for_each_sent(|_, b| ptrs.push(b.as_ptr() as usize));
            assert_eq!(ptrs.len(), 2);
            for q in ptrs {
                assert!(first.contains(&q), "a slot buffer was replaced");
            }
        }
        assert_eq!(h.sent_count(), 104);
        assert_eq!(h.overflowed(), 0);
    }

    #[test]
    fn a_full_ring_refuses_and_counts() {
        let (mut p, h) = MemoryPort::recording(2, 0, Offloads::NONE);
        p.send(&frame(1, 60)).unwrap();
        p.send(&frame(2, 60)).unwrap();
        assert!(matches!(p.send(&frame(3, 60)), Err(SendError::Full)));
        assert!(matches!(p.send(&frame(4, 60)), Err(SendError::Full)));
        assert_eq!(h.overflowed(), 2);
        assert_eq!(h.sent_count(), 2);
        // The refused frames are not there; the recorded ones are intact.
        let mut tags = Vec::new();
        h.for_each_sent(|_, b| tags.push(b[0]));
        assert_eq!(tags, vec![1, 2]);
        // Room again after reading.
        p.send(&frame(5, 60)).unwrap();
        assert_eq!(h.pending_sent(), 1);
    }

    #[test]
    fn take_sent_into_moves_header_and_bytes_across_the_wrap() {
        let (mut p, h) = MemoryPort::recording(3, 0, Offloads::FULL);
        let hdr = VnetHdr {
            flags: flags::NEEDS_CSUM,
            gso_type: gso::TCPV4,
            hdr_len: 54,
            gso_size: 1448,
            csum_start: 34,
            csum_offset: 16,
        };
        let mut out = FrameBuf::new();
        for i in 0..10u8 {
            let mut f = frame(i, 200 + i as usize);
            f.set_vnet(hdr);
            p.send(&f).unwrap();
            assert!(h.take_sent_into(&mut out));
            assert_eq!(out.vnet(), hdr);
            assert_eq!(out.len(), 200 + i as usize);
            assert_eq!(out.frame()[0], i);
        }
        assert!(!h.take_sent_into(&mut out), "nothing left");
    }

    #[test]
    fn shared_handles_record_into_the_same_ring_and_take_sent_still_works() {
        let (mut p, h) = MemoryPort::recording(8, 4, Offloads::NONE);
        let mut s = p.share();
        p.send(&frame(1, 60)).unwrap();
        s.send(&frame(2, 60)).unwrap();
        let got = h.take_sent();
        assert_eq!(
            got.iter().map(|(_, b)| b[0]).collect::<Vec<_>>(),
            vec![1, 2]
        );
        // The inbound side is the ordinary queue.
        assert!(h.inject(VnetHdr::default(), &[7; 60]));
        let mut bufs = [FrameBuf::new()];
        assert_eq!(p.recv_batch(&mut bufs).unwrap(), 1);
        assert_eq!(bufs[0].frame()[0], 7);
        // A queued port is not a ring: for_each_sent sees nothing there.
        let (mut q, qh) = MemoryPort::new(4);
        q.send(&frame(3, 60)).unwrap();
        assert_eq!(qh.for_each_sent(|_, _| {}), 0);
        assert_eq!(qh.pending_sent(), 1);
        assert_eq!(qh.take_sent().len(), 1);
    }
}
