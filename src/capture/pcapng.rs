//! A pcapng writer (draft-ietf-opsawg-pcapng): the three blocks a capture
//! needs, each appended whole to a `Vec<u8>` by a pure function, so the
//! caller decides when and where the bytes go.
//!
//! A file is one Section Header Block ([`write_section_header`]), one
//! Interface Description Block per captured port ([`write_interface`];
//! the first is interface 0, the next 1, ...), then one Enhanced Packet
//! Block per frame ([`write_packet`]) naming its interface.
//!
//! Choices, all allowed by the format and read by tcpdump and Wireshark:
//!
//! - **Little-endian**, whatever the host: the Byte-Order Magic is written
//!   as `4d 3c 2b 1a`, and readers byte-swap on a big-endian machine. One
//!   byte order makes the output the same everywhere (and testable).
//! - **Nanosecond timestamps**: every interface carries `if_tsresol` = 9,
//!   and a [`Record`]'s `timestamp_ns` (since the Unix epoch) is written as
//!   it is, split into its high and low 32 bits.
//! - **Link type 1** (Ethernet): frames are written from their Ethernet
//!   header, without the virtio-net header the ports carry.
//! - A section of unknown length (-1): the file is written as a stream.
//!
//! Every block is padded to 32 bits and carries its total length at both
//! ends; so does every option, and an option list ends with
//! `opt_endofopt`.

use super::{Direction, Record};

/// Block types.
pub mod block {
    pub const SECTION_HEADER: u32 = 0x0a0d_0d0a;
    pub const INTERFACE_DESCRIPTION: u32 = 0x0000_0001;
    pub const ENHANCED_PACKET: u32 = 0x0000_0006;
}

/// Option codes, by the block they belong to.
pub mod option {
    pub const END_OF_OPT: u16 = 0;
    /// Any block: a UTF-8 comment.
    pub const COMMENT: u16 = 1;
    /// Section Header: the application that wrote the file.
    pub const SHB_USERAPPL: u16 = 4;
    /// Interface Description: its name.
    pub const IF_NAME: u16 = 2;
    /// Interface Description: timestamp resolution (one byte).
    pub const IF_TSRESOL: u16 = 9;
    /// Enhanced Packet: a 32-bit flags word (direction in bits 0-1).
    pub const EPB_FLAGS: u16 = 2;
}

pub const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
pub const VERSION_MAJOR: u16 = 1;
pub const VERSION_MINOR: u16 = 0;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// `if_tsresol` 9: timestamps count 10^-9 s.
pub const TSRESOL_NANOS: u8 = 9;

/// `epb_flags` bits 0-1.
pub mod flags {
    pub const INBOUND: u32 = 1;
    pub const OUTBOUND: u32 = 2;
}

/// An option's value is at most this long (its length field is 16 bits).
const MAX_OPTION_LEN: usize = u16::MAX as usize;

/// Appends a Section Header Block: byte-order magic, version 1.0, unknown
/// section length, and `shb_userappl` naming lanyard and its version.
pub fn write_section_header(out: &mut Vec<u8>) {
    write_block(out, block::SECTION_HEADER, |b| {
        put_u32(b, BYTE_ORDER_MAGIC);
        put_u16(b, VERSION_MAJOR);
        put_u16(b, VERSION_MINOR);
        b.extend_from_slice(&(-1i64).to_le_bytes());
        put_option(
            b,
            option::SHB_USERAPPL,
            concat!("lanyard ", env!("CARGO_PKG_VERSION")).as_bytes(),
        );
        put_end_of_options(b);
    });
}

/// Appends an Interface Description Block for an Ethernet interface named
/// `name` (`if_name`; cut at 65535 bytes) with nanosecond timestamps.
/// `snaplen` is the most bytes of a frame kept, 0 for no limit; pass the
/// same to [`write_packet`] for this interface.
pub fn write_interface(out: &mut Vec<u8>, name: &str, snaplen: u32) {
    write_block(out, block::INTERFACE_DESCRIPTION, |b| {
        put_u16(b, LINKTYPE_ETHERNET);
        put_u16(b, 0); // reserved
        put_u32(b, snaplen);
        put_option(b, option::IF_NAME, clip(name).as_bytes());
        put_option(b, option::IF_TSRESOL, &[TSRESOL_NANOS]);
        put_end_of_options(b);
    });
}

/// Appends an Enhanced Packet Block for `rec` on interface `interface_id`:
/// at most `snaplen` bytes of its data (0: all of them), its original
/// length (never less than what is written), and as options its direction
/// (`epb_flags`) and comment (`opt_comment`, cut at 65535 bytes) when it
/// has them.
pub fn write_packet(out: &mut Vec<u8>, interface_id: u32, snaplen: u32, rec: &Record<'_>) {
    let data = captured(rec.data, snaplen);
    write_block(out, block::ENHANCED_PACKET, |b| {
        put_u32(b, interface_id);
        put_u32(b, (rec.timestamp_ns >> 32) as u32);
        put_u32(b, rec.timestamp_ns as u32);
        put_u32(b, data.len() as u32);
        put_u32(b, saturate(rec.original_len.max(data.len())));
        b.extend_from_slice(data);
        pad(b, data.len());
        let mut any = false;
        if let Some(d) = rec.direction {
            let f = match d {
                Direction::Inbound => flags::INBOUND,
                Direction::Outbound => flags::OUTBOUND,
            };
            put_option(b, option::EPB_FLAGS, &f.to_le_bytes());
            any = true;
        }
        if let Some(c) = rec.comment {
            put_option(b, option::COMMENT, clip(c).as_bytes());
            any = true;
        }
        if any {
            put_end_of_options(b);
        }
    });
}

/// The bytes of `data` a `snaplen` keeps (0: all). Shared with the classic
/// pcap writer.
pub(super) fn captured(data: &[u8], snaplen: u32) -> &[u8] {
    match snaplen {
        0 => data,
        n => &data[..data.len().min(n as usize)],
    }
}

pub(super) fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Type, a length to be filled, the body, the length again.
fn write_block(out: &mut Vec<u8>, kind: u32, body: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    put_u32(out, kind);
    put_u32(out, 0);
    body(out);
    let len = (out.len() - start + 4) as u32;
    debug_assert_eq!(len % 4, 0, "a block body must be padded");
    put_u32(out, len);
    out[start + 4..start + 8].copy_from_slice(&len.to_le_bytes());
}

fn put_option(out: &mut Vec<u8>, code: u16, value: &[u8]) {
    debug_assert!(value.len() <= MAX_OPTION_LEN);
    put_u16(out, code);
    put_u16(out, value.len() as u16);
    out.extend_from_slice(value);
    pad(out, value.len());
}

fn put_end_of_options(out: &mut Vec<u8>) {
    put_u16(out, option::END_OF_OPT);
    put_u16(out, 0);
}

/// Zeroes to the next multiple of 4 after a field of `len` bytes.
fn pad(out: &mut Vec<u8>, len: usize) {
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

/// `s` cut to what an option can hold, at a character boundary.
fn clip(s: &str) -> &str {
    let mut n = s.len().min(MAX_OPTION_LEN);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testing::{self, sample_frames, TS};

    fn u16_at(b: &[u8], at: usize) -> u16 {
        u16::from_le_bytes([b[at], b[at + 1]])
    }

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    /// Splits a file into (block type, body) and checks the framing of
    /// each block: 32-bit aligned, total length at both ends.
    fn blocks(file: &[u8]) -> Vec<(u32, &[u8])> {
        let mut out = Vec::new();
        let mut at = 0;
        while at < file.len() {
            let kind = u32_at(file, at);
            let len = u32_at(file, at + 4) as usize;
            assert_eq!(len % 4, 0, "block at {at} is not padded");
            assert!(
                len >= 12 && at + len <= file.len(),
                "block at {at} runs over"
            );
            assert_eq!(u32_at(file, at + len - 4) as usize, len, "trailing length");
            out.push((kind, &file[at + 8..at + len - 4]));
            at += len;
        }
        out
    }

    /// The options of a body from `at`, up to `opt_endofopt` (which must
    /// end the body).
    fn options(body: &[u8], mut at: usize) -> Vec<(u16, &[u8])> {
        let mut out = Vec::new();
        while at < body.len() {
            let (code, len) = (u16_at(body, at), u16_at(body, at + 2) as usize);
            if code == option::END_OF_OPT {
                assert_eq!(len, 0);
                assert_eq!(at + 4, body.len(), "bytes after opt_endofopt");
                return out;
            }
            out.push((code, &body[at + 4..at + 4 + len]));
            at += 4 + len.div_ceil(4) * 4;
        }
        assert!(out.is_empty(), "options without opt_endofopt");
        out
    }

    #[test]
    fn section_header_block() {
        let mut f = Vec::new();
        write_section_header(&mut f);
        assert_eq!(&f[..4], &[0x0a, 0x0d, 0x0d, 0x0a]);
        assert_eq!(&f[8..12], &[0x4d, 0x3c, 0x2b, 0x1a], "little-endian magic");
        let b = blocks(&f);
        assert_eq!(b.len(), 1);
        let (kind, body) = b[0];
        assert_eq!(kind, block::SECTION_HEADER);
        assert_eq!(u32_at(body, 0), BYTE_ORDER_MAGIC);
        assert_eq!((u16_at(body, 4), u16_at(body, 6)), (1, 0));
        assert_eq!(&body[8..16], &[0xff; 8], "section length -1");
        let opts = options(body, 16);
        assert_eq!(opts.len(), 1);
        assert_eq!(opts[0].0, option::SHB_USERAPPL);
        assert!(opts[0].1.starts_with(b"lanyard "));
    }

    #[test]
    fn interface_description_block() {
        let mut f = Vec::new();
        write_interface(&mut f, "web/eth0", 1518);
        let b = blocks(&f);
        let (kind, body) = b[0];
        assert_eq!(kind, block::INTERFACE_DESCRIPTION);
        assert_eq!(u16_at(body, 0), LINKTYPE_ETHERNET);
        assert_eq!(u16_at(body, 2), 0);
        assert_eq!(u32_at(body, 4), 1518);
        assert_eq!(
            options(body, 8),
            [
                (option::IF_NAME, &b"web/eth0"[..]),
                (option::IF_TSRESOL, &[9u8][..])
            ]
        );
        // A name of a length that is not a multiple of 4 is padded.
        let mut f = Vec::new();
        write_interface(&mut f, "a", 0);
        let b = blocks(&f);
        assert_eq!(options(b[0].1, 8)[0], (option::IF_NAME, &b"a"[..]));
        assert_eq!(u32_at(b[0].1, 4), 0);
    }

    #[test]
    fn enhanced_packet_block_fields_and_options() {
        let frame: Vec<u8> = (0..61u8).collect();
        let rec = Record {
            timestamp_ns: 0x1234_5678_9abc_def0,
            data: &frame,
            original_len: frame.len(),
            direction: Some(Direction::Outbound),
            comment: Some("gso tcpv4 gso_size 1448"),
        };
        let mut f = Vec::new();
        write_packet(&mut f, 3, 0, &rec);
        let b = blocks(&f);
        let (kind, body) = b[0];
        assert_eq!(kind, block::ENHANCED_PACKET);
        assert_eq!(u32_at(body, 0), 3);
        assert_eq!(u32_at(body, 4), 0x1234_5678);
        assert_eq!(u32_at(body, 8), 0x9abc_def0);
        assert_eq!(u32_at(body, 12), 61);
        assert_eq!(u32_at(body, 16), 61);
        assert_eq!(&body[20..81], &frame[..]);
        assert_eq!(&body[81..84], &[0, 0, 0], "data padded to 64");
        let opts = options(body, 84);
        assert_eq!(opts.len(), 2);
        assert_eq!(opts[0], (option::EPB_FLAGS, &2u32.to_le_bytes()[..]));
        assert_eq!(opts[1], (option::COMMENT, &b"gso tcpv4 gso_size 1448"[..]));

        // Inbound, no comment.
        let mut f = Vec::new();
        write_packet(
            &mut f,
            0,
            0,
            &Record {
                direction: Some(Direction::Inbound),
                comment: None,
                ..rec
            },
        );
        let b = blocks(&f);
        assert_eq!(
            options(b[0].1, 84),
            [(option::EPB_FLAGS, &1u32.to_le_bytes()[..])]
        );

        // Neither: no options at all, not even opt_endofopt.
        let mut f = Vec::new();
        write_packet(&mut f, 0, 0, &Record::new(1, &frame));
        assert_eq!(blocks(&f)[0].1.len(), 84);
    }

    #[test]
    fn snaplen_truncates_and_keeps_the_original_length() {
        let frame = [7u8; 100];
        let mut f = Vec::new();
        write_packet(&mut f, 0, 64, &Record::new(0, &frame));
        let body = blocks(&f)[0].1;
        assert_eq!((u32_at(body, 12), u32_at(body, 16)), (64, 100));
        assert_eq!(body.len(), 20 + 64);
        // Data cut before it came here: the original length says so.
        let mut f = Vec::new();
        let rec = Record {
            original_len: 65000,
            ..Record::new(0, &frame[..10])
        };
        write_packet(&mut f, 0, 64, &rec);
        let body = blocks(&f)[0].1;
        assert_eq!((u32_at(body, 12), u32_at(body, 16)), (10, 65000));
        // An original length below the data is raised to it.
        let mut f = Vec::new();
        let rec = Record {
            original_len: 1,
            ..Record::new(0, &frame)
        };
        write_packet(&mut f, 0, 0, &rec);
        let body = blocks(&f)[0].1;
        assert_eq!((u32_at(body, 12), u32_at(body, 16)), (100, 100));
    }

    #[test]
    fn long_strings_are_cut_at_a_char_boundary() {
        let s = "é".repeat(40000); // 80000 bytes
        assert_eq!(clip(&s).len(), 65534);
        let mut f = Vec::new();
        write_packet(
            &mut f,
            0,
            0,
            &Record {
                comment: Some(&s),
                ..Record::new(0, &[])
            },
        );
        let body = blocks(&f)[0].1;
        let opts = options(body, 20);
        assert_eq!(opts[0].1.len(), 65534);
        assert!(std::str::from_utf8(opts[0].1).is_ok());
    }

    #[test]
    fn a_whole_file_reads_back() {
        let file = testing::pcapng_file();
        let b = blocks(&file);
        let kinds: Vec<u32> = b.iter().map(|b| b.0).collect();
        assert_eq!(
            kinds,
            [
                block::SECTION_HEADER,
                block::INTERFACE_DESCRIPTION,
                block::INTERFACE_DESCRIPTION,
                block::ENHANCED_PACKET,
                block::ENHANCED_PACKET,
                block::ENHANCED_PACKET,
            ]
        );
        for (i, (_, frame)) in sample_frames().iter().enumerate() {
            let body = b[3 + i].1;
            assert_eq!(u32_at(body, 0), (i % 2) as u32);
            let ts = ((u32_at(body, 4) as u64) << 32) | u32_at(body, 8) as u64;
            assert_eq!(ts, TS + i as u64 * 1000);
            assert_eq!(&body[20..20 + frame.len()], &frame[..]);
        }
    }

    #[test]
    fn tcpdump_reads_the_file() {
        let file = testing::pcapng_file();
        let Some(out) = testing::run_tool(
            "tcpdump",
            "pcapng",
            &file,
            &["-nn", "-tt", "--time-stamp-precision=nano", "-r"],
        ) else {
            return;
        };
        testing::check_tcpdump_output(&out, 9);
    }

    #[test]
    fn tshark_sees_directions_comments_and_interfaces() {
        let file = testing::pcapng_file();
        let Some(out) = testing::run_tool(
            "tshark",
            "pcapng-tshark",
            &file,
            &[
                "-T",
                "fields",
                "-E",
                "separator=|",
                "-e",
                "frame.interface_name",
                "-e",
                "frame.packet_flags_direction",
                "-e",
                "frame.comment",
                "-r",
            ],
        ) else {
            return;
        };
        // Versions print the direction word in hex (4.0: 0x00000001) or in
        // decimal; both are read.
        let number = |s: &str| match s.strip_prefix("0x") {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        };
        let rows: Vec<(&str, Option<u32>, &str)> = out
            .lines()
            .map(|l| {
                let mut f = l.split('|');
                let (name, dir) = (f.next().unwrap_or(""), f.next().unwrap_or(""));
                (name, number(dir), f.next().unwrap_or(""))
            })
            .collect();
        assert_eq!(
            rows,
            [
                ("web", Some(flags::INBOUND), ""),
                ("db", Some(flags::OUTBOUND), "gso tcpv4 gso_size 1448"),
                ("web", Some(flags::INBOUND), ""),
            ],
            "{out}"
        );
    }
}
