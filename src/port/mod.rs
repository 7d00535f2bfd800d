//! Ports: where frames enter and leave the switch. One trait, three kinds:
//! a TAP device (a container's `eth0`, handed over as an fd), an AF_PACKET
//! socket bound to a named interface (a veth's host end), and an in-memory
//! port for tests, benches and fuzzing. A port moves bytes and declares the
//! offloads it accepts; it knows nothing of MACs, networks or NAT.

pub mod memory;
pub mod packet;
pub mod tap;

use std::fmt;
use std::io;
use std::os::fd::RawFd;

use serde::{Deserialize, Serialize};

use crate::frame::FrameBuf;
use crate::offload::Offloads;

pub use memory::{MemoryHandle, MemoryPort};
pub use packet::PacketPort;
pub use tap::TapPort;

/// Index of a port in the switch. Stable while the port is attached; reused
/// after it leaves (its FDB entries are flushed first, in every shard, once
/// each has applied what the port's owner had announced about it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PortId(pub u32);

impl PortId {
    #[inline]
    pub fn index(self) -> usize {
        self.0 as usize
    }
}

impl fmt::Display for PortId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PortKind {
    Tap,
    #[serde(rename = "af_packet")]
    Packet,
    Memory,
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PortKind::Tap => "tap",
            PortKind::Packet => "af_packet",
            PortKind::Memory => "memory",
        })
    }
}

/// Why a send did not happen.
#[derive(Debug)]
pub enum SendError {
    /// The port's queue is full right now; the frame is dropped.
    Full,
    /// The port refused or failed this frame; the port itself lives on.
    Failed(io::Error),
}

pub trait Port: Send {
    fn kind(&self) -> PortKind;

    /// The offloads frames sent to this port may carry.
    fn offloads(&self) -> Offloads;

    /// The descriptor to watch for readability, if the port has one.
    fn raw_fd(&self) -> Option<RawFd>;

    /// Reads up to `bufs.len()` frames into `bufs[..n]` and returns `n`;
    /// `Ok(0)` when nothing is waiting. An error means the port is gone
    /// (its device was destroyed) and must be removed.
    fn recv_batch(&mut self, bufs: &mut [FrameBuf]) -> io::Result<usize>;

    /// Sends one frame. The caller has already made the frame fit
    /// [`Port::offloads`]; a port without a vnet header ignores it.
    fn send(&mut self, frame: &FrameBuf) -> Result<(), SendError>;

    /// A send-only handle on the same device ([`SendOnly`]), for the other
    /// data-path shards: they write to the port directly (a write to a TAP
    /// or a packet socket is one atomic frame whoever makes it), while only
    /// the owning shard reads it. The device stays open until the port and
    /// every handle are dropped.
    fn share(&self) -> Box<dyn Port>;
}

/// A port that only sends: what [`Port::share`] hands out. It sends as the
/// port it wraps (a second handle on the same device), never receives, and
/// has no descriptor to poll.
pub struct SendOnly<P>(pub P);

impl<P: Port> Port for SendOnly<P> {
    fn kind(&self) -> PortKind {
        self.0.kind()
    }

    fn offloads(&self) -> Offloads {
        self.0.offloads()
    }

    fn raw_fd(&self) -> Option<RawFd> {
        None
    }

    fn recv_batch(&mut self, _bufs: &mut [FrameBuf]) -> io::Result<usize> {
        Ok(0)
    }

    fn send(&mut self, frame: &FrameBuf) -> Result<(), SendError> {
        self.0.send(frame)
    }

    fn share(&self) -> Box<dyn Port> {
        self.0.share()
    }
}
