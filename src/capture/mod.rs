//! Packet capture (`lanyard capture`): the pure half. A filter language
//! ([`Filter`]) and the two file formats ([`pcapng`], [`pcap`]); no I/O,
//! no threads, no state. The tap on the data path and the control-socket
//! stream that carry frames to these pieces live with the switch.
//!
//! # Theory of operation
//!
//! **What a capture sees.** Frames as they pass a port of the switch, in
//! one of two [`Direction`]s relative to the switch: `Inbound`, read from
//! the port (what the container or uplink sent), and `Outbound`, written
//! to it. A frame is an Ethernet frame from its destination MAC on:
//! the virtio-net header the ports carry in front of it is not part of
//! the file. Its offload state shows in what the frame holds instead: a
//! checksum left partial (`NEEDS_CSUM`) is written as it is, wrong, as
//! tcpdump shows it on a host with checksum offload.
//!
//! **GSO super-frames are written whole.** A TAP hands the switch TCP (or
//! UDP) super-frames of up to 64 KiB that the kernel, or lanyard's
//! software fallback, cuts into wire-sized segments later. A capture
//! records the super-frame as it passed — one record, longer than the
//! MTU, whose IPv4 total length may be 0 — rather than segments that
//! never existed at that point, and flags it with an `opt_comment` made
//! by [`OffloadComment`] ("gso tcpv4 gso_size 1448") so that a reader
//! knows why the frame is bigger than the link. Classic pcap has no
//! comments: there the frame is written unflagged.
//!
//! **Filters run on the data-path thread.** A filter is parsed once, when
//! the capture starts (that allocates, and is bounded: see
//! [`filter::MAX_LEN`]); [`Filter::matches`] then runs for every frame
//! the tap sees, on the shard's thread, before anything is copied. It
//! never allocates, never panics on any bytes, and does bounded work: one
//! decoding pass through the frame's headers with `wire`'s checked views
//! (at most two VLAN tags and eight IPv6 extension headers) and a walk of
//! at most [`filter::MAX_TERMS`] primitives.
//!
//! **Writers are pure functions** appending whole blocks to a
//! `Vec<u8>`; whoever owns the file (or the socket to the CLI) writes the
//! bytes when it likes. Both formats take a [`Record`] whose timestamp is
//! nanoseconds since the Unix epoch: pcapng keeps all nine digits
//! (`if_tsresol` 9), classic pcap keeps microseconds. Both write
//! little-endian whatever the host; readers swap by the magic. A `snaplen`
//! cuts the frame's bytes, never its original length. [`Format`] picks
//! one of the two at run time (`--format`).

pub mod filter;
pub mod pcap;
pub mod pcapng;

#[cfg(test)]
mod testing;

pub use filter::{Filter, FilterError, FilterErrorKind};

use std::fmt;
use std::str::FromStr;

use crate::wire::vnet::{gso, VnetHdr};

/// Which way a frame passed a port, as the switch sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Read from the port: sent by what is behind it.
    Inbound,
    /// Written to the port.
    Outbound,
}

/// One captured frame, for either writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    /// Nanoseconds since the Unix epoch.
    pub timestamp_ns: u64,
    /// The frame from its Ethernet header, possibly already cut short by
    /// the tap; the writer cuts it further to its snaplen.
    pub data: &'a [u8],
    /// The frame's whole length; a value below `data.len()` is written as
    /// `data.len()`.
    pub original_len: usize,
    pub direction: Option<Direction>,
    /// A note for the reader (pcapng's `opt_comment`; dropped by pcap).
    pub comment: Option<&'a str>,
}

impl<'a> Record<'a> {
    /// A record of the whole of `frame`, with no direction or comment.
    pub fn new(timestamp_ns: u64, frame: &'a [u8]) -> Record<'a> {
        Record {
            timestamp_ns,
            data: frame,
            original_len: frame.len(),
            direction: None,
            comment: None,
        }
    }
}

/// What a frame's virtio-net header says the file cannot show, as a
/// comment: "gso tcpv4 gso_size 1448" (with " ecn" when the ECN bit is
/// set) for a GSO super-frame, "partial checksum" for a frame whose
/// checksum is still to be finished. Formatting it (`to_string`) is for
/// the writer's side; making it is free.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffloadComment(VnetHdr);

impl OffloadComment {
    /// `None` for a plain frame: nothing to say.
    pub fn of(h: &VnetHdr) -> Option<OffloadComment> {
        (h.is_gso() || h.needs_csum()).then_some(OffloadComment(*h))
    }
}

impl fmt::Display for OffloadComment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = &self.0;
        if !h.is_gso() {
            return f.write_str("partial checksum");
        }
        match h.gso_kind() {
            gso::TCPV4 => f.write_str("gso tcpv4")?,
            gso::TCPV6 => f.write_str("gso tcpv6")?,
            gso::UDP => f.write_str("gso udp")?,
            gso::UDP_L4 => f.write_str("gso udp_l4")?,
            k => write!(f, "gso type {k}")?,
        }
        write!(f, " gso_size {}", h.gso_size)?;
        if h.gso_type & gso::ECN != 0 {
            f.write_str(" ecn")?;
        }
        Ok(())
    }
}

/// A capture file format, as `--format` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Pcapng,
    Pcap,
}

impl Format {
    /// Appends what starts a file. pcapng: the section header, then one
    /// interface per name (interface `i` is `interfaces[i]`). pcap: the
    /// global header; it has no interfaces, so the names are not written.
    pub fn write_header(self, out: &mut Vec<u8>, snaplen: u32, interfaces: &[&str]) {
        match self {
            Format::Pcapng => {
                pcapng::write_section_header(out);
                for name in interfaces {
                    pcapng::write_interface(out, name, snaplen);
                }
            }
            Format::Pcap => pcap::write_header(out, snaplen),
        }
    }

    /// Appends one frame. `interface` indexes the names given to
    /// [`Format::write_header`] (pcapng only).
    pub fn write_record(self, out: &mut Vec<u8>, snaplen: u32, interface: u32, rec: &Record<'_>) {
        match self {
            Format::Pcapng => pcapng::write_packet(out, interface, snaplen, rec),
            Format::Pcap => pcap::write_record(out, snaplen, rec),
        }
    }

    /// The usual file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Pcapng => "pcapng",
            Format::Pcap => "pcap",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.extension())
    }
}

impl FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Format, String> {
        match s.to_ascii_lowercase().as_str() {
            "pcapng" => Ok(Format::Pcapng),
            "pcap" => Ok(Format::Pcap),
            _ => Err(format!(
                "'{s}' is not a capture format (expected pcapng or pcap)"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::vnet::flags;

    #[test]
    fn offload_comments() {
        let plain = VnetHdr::default();
        assert_eq!(OffloadComment::of(&plain), None);
        let tcp4 = VnetHdr {
            flags: flags::NEEDS_CSUM,
            gso_type: gso::TCPV4,
            gso_size: 1448,
            ..plain
        };
        let c = OffloadComment::of(&tcp4).unwrap();
        assert_eq!(c.to_string(), "gso tcpv4 gso_size 1448");
        let tcp6 = VnetHdr {
            gso_type: gso::TCPV6 | gso::ECN,
            gso_size: 1428,
            ..tcp4
        };
        assert_eq!(
            OffloadComment::of(&tcp6).unwrap().to_string(),
            "gso tcpv6 gso_size 1428 ecn"
        );
        let udp = VnetHdr {
            gso_type: gso::UDP_L4,
            gso_size: 1200,
            ..tcp4
        };
        assert_eq!(
            OffloadComment::of(&udp).unwrap().to_string(),
            "gso udp_l4 gso_size 1200"
        );
        let odd = VnetHdr {
            gso_type: 9,
            ..tcp4
        };
        assert_eq!(
            OffloadComment::of(&odd).unwrap().to_string(),
            "gso type 9 gso_size 1448"
        );
        let csum = VnetHdr {
            flags: flags::NEEDS_CSUM,
            ..plain
        };
        assert_eq!(
            OffloadComment::of(&csum).unwrap().to_string(),
            "partial checksum"
        );
    }

    #[test]
    fn formats_by_name_and_their_headers() {
        assert_eq!("pcapng".parse(), Ok(Format::Pcapng));
        assert_eq!("PCAP".parse(), Ok(Format::Pcap));
        assert!("pcap-ng".parse::<Format>().is_err());
        assert_eq!(Format::default().to_string(), "pcapng");

        let frame = testing::arp_request(testing::A1, testing::A2);
        let rec = Record::new(testing::TS, &frame);

        let mut a = Vec::new();
        Format::Pcapng.write_header(&mut a, 0, &["web", "db"]);
        Format::Pcapng.write_record(&mut a, 0, 1, &rec);
        let mut b = Vec::new();
        pcapng::write_section_header(&mut b);
        pcapng::write_interface(&mut b, "web", 0);
        pcapng::write_interface(&mut b, "db", 0);
        pcapng::write_packet(&mut b, 1, 0, &rec);
        assert_eq!(a, b);

        let mut a = Vec::new();
        Format::Pcap.write_header(&mut a, 128, &["web"]);
        Format::Pcap.write_record(&mut a, 128, 0, &rec);
        let mut b = Vec::new();
        pcap::write_header(&mut b, 128);
        pcap::write_record(&mut b, 128, &rec);
        assert_eq!(a, b);
    }
}
