//! Frame views and builders: typed, zero-copy windows over byte buffers, one
//! file per protocol, each with its tests. Nothing here does I/O or keeps
//! state; every `new_checked` guarantees that the accessors of the view it
//! returns stay inside the buffer, so untrusted bytes cannot make them panic.

pub mod arp;
pub mod checksum;
pub mod dhcp;
pub mod dns;
pub mod ethernet;
pub mod icmpv4;
pub mod icmpv6;
pub mod ipv4;
pub mod ipv6;
pub mod tcp;
pub mod udp;
pub mod vnet;

pub use ethernet::{EthernetFrame, MacAddr};

use std::fmt;

/// Why a view could not be made over some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireError {
    /// Fewer bytes than the header (or the length it declares) needs.
    Truncated,
    /// A field holds a value the protocol forbids (bad version, length
    /// smaller than the header, ...).
    Malformed,
    /// Well-formed but of a kind lanyard does not handle.
    Unsupported,
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WireError::Truncated => "truncated",
            WireError::Malformed => "malformed",
            WireError::Unsupported => "unsupported",
        })
    }
}

impl std::error::Error for WireError {}
