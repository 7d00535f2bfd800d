//! Ports: where frames enter and leave the switch. One trait, three kinds:
//! a TAP device (a container's `eth0`, handed over as an fd), an AF_PACKET
//! socket bound to a named interface (a veth's host end), and an in-memory
//! port for tests, benches and fuzzing. A port moves bytes and declares the
//! offloads it accepts; it knows nothing of MACs, networks or NAT.
//!
//! The kinds are one table (`port_kinds!` below): each line names a kind,
//! its name in reports, and the type that implements it. The type says, as
//! a [`PortType`], what a port of its kind is opened from, how, and the most
//! it offers; the table makes of that [`PortKind`], [`PortSource`] (one
//! variant per kind) and [`open`], the one place the control plane turns a
//! TAP's fd or an interface's name into a port.
//!
//! Adding a kind (a VXLAN tunnel, a multi-queue TAP):
//!
//! 1. a new file here, say `vxlan.rs`, with `pub struct VxlanPort`, its
//!    [`Port`] impl (`kind()` returns `PortKind::Vxlan`) and its
//!    [`PortType`] impl (`type Source = VxlanConfig;`, `const OFFERS`,
//!    `fn open`), declared below with `pub mod vxlan;`;
//! 2. one line in the table: `Vxlan = "vxlan" => vxlan::VxlanPort,`.
//!
//! The control plane then opens one with
//! `port::open(PortSource::Vxlan(config))`; the data path needs nothing new
//! (it sees a `Box<dyn Port>`, its `raw_fd` to poll and its `offloads`).

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

/// A type of port, one per [`PortKind`]: what a port of the kind is
/// opened from, how, and the most it offers.
pub trait PortType: Port + Sized + 'static {
    /// What the port is opened from (a TAP's fd, an interface's name).
    type Source;

    /// The most a port of this kind accepts; `vnet_hdr` says whether its
    /// frames cross with a virtio-net header (GSO super-frames, partial
    /// checksums). One port may accept less ([`Port::offloads`]): a TAP
    /// made without `IFF_VNET_HDR` takes none.
    const OFFERS: Offloads;

    /// Opens the port, or adopts what `source` hands over.
    fn open(source: Self::Source) -> io::Result<Self>;
}

/// Makes, from the table of kinds, [`PortKind`], [`PortSource`] and
/// [`open`]. A line: docs, `Kind = "name in reports" => Type,`.
macro_rules! port_kinds {
    ($( $(#[doc = $doc:literal])* $kind:ident = $name:literal => $ty:ty, )*) => {
        /// The kind of a port, as reports (`lanyard stats`) name it.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        pub enum PortKind {
            $( $(#[doc = $doc])* #[serde(rename = $name)] $kind, )*
        }

        /// What a port is opened from: per kind, its [`PortType::Source`].
        pub enum PortSource {
            $( $(#[doc = $doc])* $kind(<$ty as PortType>::Source), )*
        }

        impl PortKind {
            /// Every kind, in the table's order.
            pub const ALL: &'static [PortKind] = &[$(PortKind::$kind),*];

            /// Its name in reports.
            pub fn name(self) -> &'static str {
                match self {
                    $(PortKind::$kind => $name,)*
                }
            }

            /// The most a port of this kind accepts ([`PortType::OFFERS`]).
            pub fn offers(self) -> Offloads {
                match self {
                    $(PortKind::$kind => <$ty as PortType>::OFFERS,)*
                }
            }
        }

        impl PortSource {
            /// The kind of port this opens.
            pub fn kind(&self) -> PortKind {
                match self {
                    $(PortSource::$kind(_) => PortKind::$kind,)*
                }
            }
        }

        /// Opens a port of the source's kind.
        pub fn open(source: PortSource) -> io::Result<Box<dyn Port>> {
            match source {
                $(PortSource::$kind(s) => Ok(Box::new(<$ty as PortType>::open(s)?)),)*
            }
        }
    };
}

port_kinds! {
    /// A TAP device (a container's `eth0`), adopted from its fd.
    Tap = "tap" => TapPort,
    /// An interface of the switch's own namespace, by name, through an
    /// AF_PACKET socket.
    Packet = "af_packet" => PacketPort,
    /// An in-memory port (tests, benches, fuzzing), made with its handle by
    /// `MemoryPort::new` and its siblings and opened as it is.
    Memory = "memory" => MemoryPort,
}

impl fmt::Display for PortKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_keep_their_names() {
        let names: Vec<&str> = PortKind::ALL.iter().map(|k| k.name()).collect();
        assert_eq!(names, ["tap", "af_packet", "memory"]);
        for k in PortKind::ALL {
            assert_eq!(k.to_string(), k.name());
            let json = serde_json::to_string(k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
            assert_eq!(serde_json::from_str::<PortKind>(&json).unwrap(), *k);
        }
    }

    #[test]
    fn what_each_kind_offers() {
        assert_eq!(PortKind::Tap.offers(), Offloads::FULL);
        assert_eq!(PortKind::Packet.offers(), Offloads::FULL);
        assert_eq!(PortKind::Memory.offers(), Offloads::FULL);
    }

    #[test]
    fn open_makes_the_sources_kind() {
        let src = PortSource::Memory(MemoryPort::sink_with_offloads(Offloads::FULL));
        assert_eq!(src.kind(), PortKind::Memory);
        let p = open(src).unwrap();
        assert_eq!(p.kind(), PortKind::Memory);
        assert_eq!(p.offloads(), Offloads::FULL);
        assert!(p.raw_fd().is_none());
    }

    #[test]
    fn open_refuses_what_is_not_a_tap() {
        let fd = std::os::fd::OwnedFd::from(std::fs::File::open("/dev/null").unwrap());
        let src = PortSource::Tap(fd);
        assert_eq!(src.kind(), PortKind::Tap);
        let e = open(src).err().expect("/dev/null is no TAP");
        assert!(e.to_string().contains("not a TUN/TAP fd"), "{e}");
    }

    #[test]
    fn open_refuses_an_unknown_interface() {
        let src = PortSource::Packet("lanyard-none0".to_string());
        assert_eq!(src.kind(), PortKind::Packet);
        assert!(open(src).is_err());
    }
}
