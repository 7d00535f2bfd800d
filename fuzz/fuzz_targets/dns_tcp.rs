//! `dns_tcp`: one DNS-over-TCP connection (RFC 7766, RFC 1035 4.2.2
//! framing) served by `dns::tcp::DnsTcp::serve_stream` over a fake stream.
//!
//! The server has no upstreams (nothing goes to the network: what is not
//! ours is answered SERVFAIL) and answers from a name table with two
//! networks: 1 (172.17.0.0/16, NAT) holding `web` (172.17.0.2), `db` and
//! 100 containers sharing the alias `many` (an answer far over 512 bytes),
//! and 2 (10.9.0.0/24, internal) holding `inside`. The real server (its
//! listener thread) is never started.
//!
//! Input:
//!
//! ```text
//! origin:u8  sched_len:u8  sched:[u8; sched_len]  data:[u8]
//! ```
//!
//! * `origin % 4`: who the connection speaks for — 0 the container
//!   172.17.0.2 on network 1 (by its IPv6 address fd00:17::2 if bit 2 is
//!   set), 1 an unknown address on network 1, 2 an unknown address on
//!   internal network 2, 3 a network the table does not know.
//! * `data`: the bytes the client sends (length-prefixed queries, or
//!   anything), then end of stream.
//! * `sched`: how each read and write call goes, one byte per call in the
//!   order the server makes them (spent: reads take what is asked, writes
//!   take everything). Read: 0 times out (`WouldBlock`), 1 `Interrupted`,
//!   2 an error (connection reset), `s` otherwise at most `s - 2` bytes.
//!   Write: 0 times out, 1 `Interrupted`, 2 broken pipe, 3 `Ok(0)`, `s`
//!   otherwise at most `s - 3` bytes.
//!
//! What must hold:
//!
//! * `serve_stream` returns (the input is finite and every call bounded);
//! * every read happens under a read timeout of at most the idle timeout,
//!   every write under a write timeout;
//! * what is written is a sequence of length-prefixed messages (a partial
//!   last one only after a failed write); message `i` answers query `i` of
//!   the client's stream: a response (QR) with its id and its question as
//!   sent, well-formed records (A data inside the networks, PTR data a
//!   valid name);
//! * nothing is answered after a query that does not parse, and with no
//!   error or timeout injected every query up to the first unparsable one
//!   (or the end) is answered;
//! * the counters add up: queries read = local answers + upstream failures
//!   (SERVFAIL: no upstreams) + malformed.

#![no_main]

use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;

use lanyard::dns::tcp::{DnsStream, DnsTcp, Limits, Origin};
use lanyard::dns::NameTable;
use lanyard::wire::dns as w;

struct FuzzStream<'a> {
    data: &'a [u8],
    sched: &'a [u8],
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    idle: Duration,
    written: Vec<u8>,
    /// An error, timeout or short write was injected.
    injected: bool,
    write_failed: bool,
}

impl FuzzStream<'_> {
    fn next(&mut self) -> Option<u8> {
        let (b, rest) = self.sched.split_first()?;
        self.sched = rest;
        Some(*b)
    }
}

impl Read for FuzzStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let t = self.read_timeout.expect("a read without a read timeout");
        assert!(
            !t.is_zero() && t <= self.idle,
            "read timeout {t:?} (idle {:?})",
            self.idle
        );
        let max = match self.next() {
            Some(0) => {
                self.injected = true;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Some(1) => {
                self.injected = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            Some(2) => {
                self.injected = true;
                return Err(io::ErrorKind::ConnectionReset.into());
            }
            Some(s) => (s - 2) as usize,
            None => usize::MAX,
        };
        let n = max.min(buf.len()).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

impl Write for FuzzStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        assert!(
            self.write_timeout.is_some_and(|t| !t.is_zero()),
            "a write without a write timeout"
        );
        let max = match self.next() {
            Some(0) => {
                self.injected = true;
                self.write_failed = true;
                return Err(io::ErrorKind::WouldBlock.into());
            }
            Some(1) => {
                self.injected = true;
                return Err(io::ErrorKind::Interrupted.into());
            }
            Some(2) => {
                self.injected = true;
                self.write_failed = true;
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            Some(3) => {
                self.injected = true;
                self.write_failed = true;
                return Ok(0);
            }
            Some(s) => (s - 3) as usize,
            None => usize::MAX,
        };
        let n = max.min(buf.len());
        self.written.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl DnsStream for FuzzStream<'_> {
    fn set_read_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.read_timeout = t;
        Ok(())
    }

    fn set_write_timeout(&mut self, t: Option<Duration>) -> io::Result<()> {
        self.write_timeout = t;
        Ok(())
    }
}

/// The table, built once: answers only read it (but for the rotation of
/// shared aliases, which no check depends on).
fn names() -> Arc<Mutex<NameTable>> {
    static NAMES: std::sync::OnceLock<Arc<Mutex<NameTable>>> = std::sync::OnceLock::new();
    NAMES.get_or_init(build_names).clone()
}

fn build_names() -> Arc<Mutex<NameTable>> {
    let mut t = NameTable::default();
    t.network_added(
        1,
        "172.17.0.0/16".parse().expect("subnet"),
        Ipv4Addr::new(172, 17, 0, 1),
        Some((
            "fd00:17::/64".parse().expect("subnet"),
            "fd00:17::1".parse().expect("gateway"),
        )),
        false,
    );
    t.network_added(
        2,
        "10.9.0.0/24".parse().expect("subnet"),
        Ipv4Addr::new(10, 9, 0, 1),
        None,
        true,
    );
    t.add(
        1,
        Ipv4Addr::new(172, 17, 0, 2).into(),
        "ctr-web",
        &["web".into()],
    );
    t.add(
        1,
        "fd00:17::2".parse().expect("address"),
        "ctr-web",
        &["web".into()],
    );
    t.add(
        1,
        Ipv4Addr::new(172, 17, 0, 3).into(),
        "ctr-db",
        &["db".into()],
    );
    for i in 0..100u8 {
        let ip = Ipv4Addr::new(172, 17, 1, i);
        t.add(
            1,
            ip.into(),
            &format!("c{i}"),
            &[format!("c{i}"), "many".into()],
        );
        let ip6 = Ipv6Addr::new(0xfd00, 0x17, 0, 0, 0, 0, 1, i.into());
        t.add(
            1,
            ip6.into(),
            &format!("c{i}"),
            &[format!("c{i}"), "many".into()],
        );
    }
    t.add(
        2,
        Ipv4Addr::new(10, 9, 0, 2).into(),
        "ctr-in",
        &["inside".into()],
    );
    Arc::new(Mutex::new(t))
}

/// The length-prefixed messages of a stream; the rest (a partial one).
fn frames(mut b: &[u8]) -> (Vec<&[u8]>, usize) {
    let mut out = Vec::new();
    while b.len() >= 2 {
        let n = u16::from_be_bytes([b[0], b[1]]) as usize;
        if b.len() < 2 + n {
            break;
        }
        out.push(&b[2..2 + n]);
        b = &b[2 + n..];
    }
    (out, b.len())
}

/// Checks the records of a response `m` to query `q` (owner a pointer to
/// the question, as the server writes them).
fn check_records(m: &[u8], q: &w::Query<'_>) {
    let an = u16::from_be_bytes([m[6], m[7]]);
    let mut i = 12 + q.question.len();
    for _ in 0..an {
        let h = m.get(i..i + 12).expect("a whole record header");
        assert_eq!(&h[0..2], &[0xc0, 0x0c], "owner is the question's name");
        let ty = u16::from_be_bytes([h[2], h[3]]);
        let rdlen = u16::from_be_bytes([h[10], h[11]]) as usize;
        let rd = m.get(i + 12..i + 12 + rdlen).expect("whole record data");
        match ty {
            w::qtype::A => {
                assert_eq!(rdlen, 4);
                let ip = Ipv4Addr::new(rd[0], rd[1], rd[2], rd[3]);
                let ours = ip.octets()[..2] == [172, 17] || ip.octets()[..3] == [10, 9, 0];
                assert!(ours, "A {ip} is on no network");
            }
            w::qtype::AAAA => {
                assert_eq!(rdlen, 16);
                let ip = Ipv6Addr::from(<[u8; 16]>::try_from(rd).expect("16 bytes"));
                assert_eq!(
                    ip.segments()[..4],
                    [0xfd00, 0x17, 0, 0],
                    "AAAA {ip} is on no network"
                );
            }
            w::qtype::PTR => {
                let mut j = 0;
                while rd[j] != 0 {
                    assert!(rd[j] <= 63, "PTR label of {}", rd[j]);
                    j += 1 + rd[j] as usize;
                }
                assert_eq!(j + 1, rdlen, "PTR data is one name");
                assert!(rdlen <= 255, "PTR name of {rdlen} bytes");
            }
            t => panic!("a record of type {t}"),
        }
        i += 12 + rdlen;
    }
    assert_eq!(i, m.len(), "bytes after the last record");
}

fuzz_target!(|data: &[u8]| {
    let Some((&origin_sel, rest)) = data.split_first() else {
        return;
    };
    let Some((&sched_len, rest)) = rest.split_first() else {
        return;
    };
    let (sched, client_data) = rest.split_at((sched_len as usize).min(rest.len()));
    let origin = match origin_sel % 4 {
        0 => Origin {
            net: 1,
            client: if origin_sel & 4 != 0 {
                "fd00:17::2".parse().expect("address")
            } else {
                Ipv4Addr::new(172, 17, 0, 2).into()
            },
        },
        1 => Origin {
            net: 1,
            client: Ipv4Addr::new(172, 17, 9, 9).into(),
        },
        2 => Origin {
            net: 2,
            client: Ipv4Addr::new(10, 9, 0, 77).into(),
        },
        _ => Origin {
            net: 9,
            client: Ipv4Addr::new(192, 168, 1, 2).into(),
        },
    };
    let limits = Limits::default();
    let srv = DnsTcp::with_limits(names(), Vec::new(), limits);
    let mut s = FuzzStream {
        data: client_data,
        sched,
        read_timeout: None,
        write_timeout: None,
        idle: limits.idle,
        written: Vec::new(),
        injected: false,
        write_failed: false,
    };
    srv.serve_stream(&mut s, origin);

    let (queries, _) = frames(client_data);
    let (answers, partial) = frames(&s.written);
    assert!(
        partial == 0 || s.write_failed,
        "{partial} bytes of a partial message written without a failed write"
    );
    assert!(
        answers.len() <= queries.len(),
        "{} answers to {} queries",
        answers.len(),
        queries.len()
    );
    for (i, (a, q)) in answers.iter().zip(&queries).enumerate() {
        let q = w::parse_query(q)
            .unwrap_or_else(|e| panic!("answer {i} to query {i}, which does not parse ({e:?})"));
        assert!(a.len() >= 12 + q.question.len(), "answer {i} too short");
        assert_eq!(&a[0..2], &q.id.to_be_bytes(), "answer {i}'s id");
        assert!(a[2] & 0x80 != 0, "answer {i} is not a response");
        assert_eq!(
            &a[12..12 + q.question.len()],
            q.question,
            "answer {i}'s question"
        );
        assert_eq!(&a[4..6], &[0, 1], "answer {i}'s question count");
        let rcode = a[3] & 0x0f;
        assert!(
            [w::rcode::NOERROR, w::rcode::NXDOMAIN, w::rcode::SERVFAIL].contains(&rcode),
            "answer {i}'s rcode {rcode}"
        );
        check_records(a, &q);
    }
    if !s.injected {
        // Everything up to the first query that does not parse.
        let answerable = queries
            .iter()
            .take_while(|q| w::parse_query(q).is_ok())
            .count();
        assert_eq!(
            answers.len(),
            answerable,
            "{} of {answerable} queries answered, with nothing going wrong",
            answers.len()
        );
    }
    let c = srv.counters();
    if std::env::var_os("LANYARD_FUZZ_TRACE").is_some() {
        eprintln!(
            "{} queries, {} answers ({} bytes written), injected {}, counters {c:?}",
            queries.len(),
            answers.len(),
            s.written.len(),
            s.injected
        );
    }
    assert_eq!(
        c.queries,
        c.local_answers + c.upstream_failures + c.malformed + c.forwarded,
        "counters {c:?}"
    );
    assert_eq!(c.forwarded, 0, "forwarded with no upstreams: {c:?}");
});
