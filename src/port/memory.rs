//! In-memory ports for tests, benches and fuzzing: frames are injected and
//! collected through a [`MemoryHandle`]; a sink port just counts. They take
//! no offloads, so every frame bound for them goes through the software
//! fallback exactly as it would for a port that cannot take offloads.
//!
//! The queued variant copies each frame into a `Vec` of its own: it is a
//! test double, not part of the forwarding path. The sink allocates nothing.

use std::collections::VecDeque;
use std::io;
use std::os::fd::RawFd;
use std::sync::{Arc, Mutex};

use super::{Port, PortKind, SendError};
use crate::frame::{FrameBuf, MAX_FRAME_LEN};
use crate::offload::Offloads;
use crate::wire::vnet::VnetHdr;

#[derive(Debug, Default)]
struct Queues {
    inbound: VecDeque<(VnetHdr, Vec<u8>)>,
    outbound: VecDeque<(VnetHdr, Vec<u8>)>,
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
        let q = Arc::new(Mutex::new(Queues {
            capacity,
            ..Default::default()
        }));
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
    /// Queues a frame for the switch to receive; false if the queue is full.
    pub fn inject(&self, vnet: VnetHdr, frame: &[u8]) -> bool {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        if q.inbound.len() >= q.capacity {
            return false;
        }
        let n = frame.len().min(MAX_FRAME_LEN);
        q.inbound.push_back((vnet, frame[..n].to_vec()));
        true
    }

    /// Takes every frame the switch sent to this port.
    pub fn take_sent(&self) -> Vec<(VnetHdr, Vec<u8>)> {
        let mut q = self.queues.lock().unwrap_or_else(|p| p.into_inner());
        q.outbound.drain(..).collect()
    }

    /// Frames sent to this port over its life.
    pub fn sent_count(&self) -> u64 {
        self.queues.lock().unwrap_or_else(|p| p.into_inner()).sent
    }

    pub fn pending_inbound(&self) -> usize {
        self.queues
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .inbound
            .len()
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
