//! The classic libpcap file format, for `--format pcap`: for tools that
//! predate pcapng. A global header ([`write_header`]), then a record
//! header and the frame for each packet ([`write_record`]).
//!
//! What it cannot say, compared to pcapng: which interface a frame was on
//! (there is one), its direction, and comments (a GSO super-frame is
//! written, but not flagged). Choices:
//!
//! - **Little-endian** whatever the host, magic `d4 c3 b2 a1` on disk.
//! - **Microsecond timestamps** (magic 0xa1b2c3d4, the one every reader
//!   knows), converted from a [`Record`]'s nanoseconds by truncation.
//!   Seconds are 32 bits: they saturate in 2106.
//! - **Link type 1** (Ethernet), version 2.4, time zone and accuracy 0.

use super::pcapng::{captured, saturate};
use super::Record;

/// The magic of microsecond files, written little-endian.
pub const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
pub const VERSION_MAJOR: u16 = 2;
pub const VERSION_MINOR: u16 = 4;
/// LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u32 = 1;
pub const HEADER_LEN: usize = 24;
pub const RECORD_HEADER_LEN: usize = 16;
/// The snaplen written for "no limit": libpcap's largest, which readers
/// accept for Ethernet (a 0 in the header they may not).
pub const MAX_SNAPLEN: u32 = 262_144;

/// Appends the global header. `snaplen` 0 means no limit (written as
/// [`MAX_SNAPLEN`]); pass the same to [`write_record`].
pub fn write_header(out: &mut Vec<u8>, snaplen: u32) {
    out.extend_from_slice(&MAGIC_MICROS.to_le_bytes());
    out.extend_from_slice(&VERSION_MAJOR.to_le_bytes());
    out.extend_from_slice(&VERSION_MINOR.to_le_bytes());
    out.extend_from_slice(&0i32.to_le_bytes()); // thiszone: UTC
    out.extend_from_slice(&0u32.to_le_bytes()); // sigfigs
    out.extend_from_slice(&effective(snaplen).to_le_bytes());
    out.extend_from_slice(&LINKTYPE_ETHERNET.to_le_bytes());
}

/// Appends a record: timestamp, captured length (at most `snaplen`, 0 for
/// [`MAX_SNAPLEN`]), original length (never less), then the bytes.
/// Direction and comment are dropped: the format has no room for them.
pub fn write_record(out: &mut Vec<u8>, snaplen: u32, rec: &Record<'_>) {
    let data = captured(rec.data, effective(snaplen));
    let secs = rec.timestamp_ns / 1_000_000_000;
    let micros = (rec.timestamp_ns % 1_000_000_000) / 1000;
    out.extend_from_slice(&u32::try_from(secs).unwrap_or(u32::MAX).to_le_bytes());
    out.extend_from_slice(&(micros as u32).to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out.extend_from_slice(&saturate(rec.original_len.max(data.len())).to_le_bytes());
    out.extend_from_slice(data);
}

fn effective(snaplen: u32) -> u32 {
    match snaplen {
        0 => MAX_SNAPLEN,
        n => n,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testing::{self, sample_frames, TS};

    fn u32_at(b: &[u8], at: usize) -> u32 {
        u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
    }

    #[test]
    fn global_header() {
        let mut f = Vec::new();
        write_header(&mut f, 0);
        assert_eq!(f.len(), HEADER_LEN);
        assert_eq!(&f[..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(&f[4..8], &[2, 0, 4, 0]);
        assert_eq!(&f[8..16], &[0; 8]);
        assert_eq!(u32_at(&f, 16), MAX_SNAPLEN);
        assert_eq!(u32_at(&f, 20), 1);
        let mut f = Vec::new();
        write_header(&mut f, 96);
        assert_eq!(u32_at(&f, 16), 96);
    }

    #[test]
    fn records_read_back() {
        let file = testing::pcap_file();
        let mut at = HEADER_LEN;
        for (i, (_, frame)) in sample_frames().iter().enumerate() {
            let ns = TS + i as u64 * 1000;
            assert_eq!(u32_at(&file, at) as u64, ns / 1_000_000_000);
            assert_eq!(u32_at(&file, at + 4) as u64, ns % 1_000_000_000 / 1000);
            assert_eq!(u32_at(&file, at + 8) as usize, frame.len());
            assert_eq!(u32_at(&file, at + 12) as usize, frame.len());
            at += RECORD_HEADER_LEN;
            assert_eq!(&file[at..at + frame.len()], &frame[..]);
            at += frame.len();
        }
        assert_eq!(at, file.len());
    }

    #[test]
    fn snaplen_truncates() {
        let frame = [1u8; 100];
        let mut f = Vec::new();
        write_record(&mut f, 40, &Record::new(5_000_000_123, &frame));
        assert_eq!(f.len(), RECORD_HEADER_LEN + 40);
        assert_eq!((u32_at(&f, 0), u32_at(&f, 4)), (5, 0));
        assert_eq!((u32_at(&f, 8), u32_at(&f, 12)), (40, 100));
        // Seconds past 2106 saturate rather than wrap.
        let mut f = Vec::new();
        write_record(&mut f, 0, &Record::new(u64::MAX, &frame));
        assert_eq!(u32_at(&f, 0), u32::MAX);
        assert_eq!(u32_at(&f, 8), 100);
    }

    #[test]
    fn tcpdump_reads_the_file() {
        let file = testing::pcap_file();
        let Some(out) = testing::run_tool("tcpdump", "pcap", &file, &["-nn", "-tt", "-r"]) else {
            return;
        };
        testing::check_tcpdump_output(&out, 6);
    }
}
