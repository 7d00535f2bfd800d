//! DNS messages (RFC 1035), as much as the embedded name server needs: the
//! header, one question (name, type, class), and answers it builds. Names
//! are decoded into a caller's stack buffer, lower-cased; compression
//! pointers are refused in questions (no client sends them there), so a
//! question cannot loop.

use super::WireError;

pub const HEADER_LEN: usize = 12;
/// Largest UDP answer without EDNS (RFC 1035 4.2.1).
pub const MAX_UDP_LEN: usize = 512;
/// Longest name in presentation form (RFC 1035 2.3.4: 255 octets on the
/// wire, so fewer characters).
pub const MAX_NAME_LEN: usize = 253;

pub mod qtype {
    pub const A: u16 = 1;
    pub const PTR: u16 = 12;
    pub const AAAA: u16 = 28;
    pub const ANY: u16 = 255;
}

pub mod rcode {
    pub const NOERROR: u8 = 0;
    pub const FORMERR: u8 = 1;
    pub const SERVFAIL: u8 = 2;
    pub const NXDOMAIN: u8 = 3;
    pub const REFUSED: u8 = 5;
}

pub const CLASS_IN: u16 = 1;

/// The header's fields a forwarder looks at, on a whole message.
pub mod header {
    /// The transaction id.
    pub fn id(m: &[u8]) -> u16 {
        u16::from_be_bytes([m[0], m[1]])
    }

    pub fn set_id(m: &mut [u8], id: u16) {
        m[0..2].copy_from_slice(&id.to_be_bytes());
    }

    /// QR: a response, not a query.
    pub fn is_response(m: &[u8]) -> bool {
        m[2] & 0x80 != 0
    }

    /// How many questions it carries.
    pub fn qdcount(m: &[u8]) -> u16 {
        u16::from_be_bytes([m[4], m[5]])
    }

    /// The question section starts here.
    pub const QUESTION: usize = super::HEADER_LEN;
}

/// A parsed standard query with one question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Query<'a> {
    pub id: u16,
    /// Recursion desired (copied into the answer).
    pub rd: bool,
    /// The question as it was sent: name, type and class.
    pub question: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
}

/// Parses a query; `Unsupported` for valid messages that are not a plain
/// one-question query (responses, other opcodes).
pub fn parse_query(b: &[u8]) -> Result<Query<'_>, WireError> {
    if b.len() < HEADER_LEN {
        return Err(WireError::Truncated);
    }
    let flags = u16::from_be_bytes([b[2], b[3]]);
    if flags & 0x8000 != 0 || (flags >> 11) & 0xf != 0 {
        return Err(WireError::Unsupported);
    }
    if u16::from_be_bytes([b[4], b[5]]) != 1 {
        return Err(WireError::Unsupported);
    }
    let mut i = HEADER_LEN;
    let mut total = 0usize;
    loop {
        let len = *b.get(i).ok_or(WireError::Truncated)? as usize;
        if len == 0 {
            i += 1;
            break;
        }
        if len > 63 {
            // 0xc0..: a compression pointer; 0x40..0xbf: reserved types.
            return Err(WireError::Malformed);
        }
        total += len + 1;
        if total > 255 {
            return Err(WireError::Malformed);
        }
        i += 1 + len;
    }
    let tail = b.get(i..i + 4).ok_or(WireError::Truncated)?;
    Ok(Query {
        id: u16::from_be_bytes([b[0], b[1]]),
        rd: flags & 0x0100 != 0,
        question: &b[HEADER_LEN..i + 4],
        qtype: u16::from_be_bytes([tail[0], tail[1]]),
        qclass: u16::from_be_bytes([tail[2], tail[3]]),
    })
}

/// Decodes the question's name, lower-cased and dot-separated without the
/// final dot, into `out`; returns it. Labels with dots or bytes outside
/// printable ASCII are refused (no name lanyard serves has them).
pub fn question_name<'o>(q: &Query<'_>, out: &'o mut [u8; 256]) -> Result<&'o str, WireError> {
    let b = q.question;
    let mut i = 0;
    let mut n = 0;
    while let Some(&len) = b.get(i) {
        let len = len as usize;
        if len == 0 {
            break;
        }
        if n > 0 {
            out[n] = b'.';
            n += 1;
        }
        let label = b.get(i + 1..i + 1 + len).ok_or(WireError::Truncated)?;
        for &c in label {
            if !(c.is_ascii_graphic()) || c == b'.' || n >= MAX_NAME_LEN {
                return Err(WireError::Malformed);
            }
            out[n] = c.to_ascii_lowercase();
            n += 1;
        }
        i += 1 + len;
    }
    std::str::from_utf8(&out[..n]).map_err(|_| WireError::Malformed)
}

/// No answer records, for [`build_response`].
pub const NO_ANSWERS: [Rdata<'static>; 0] = [];

/// The data of one answer record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rdata<'a> {
    A([u8; 4]),
    /// An IPv6 address (type 28, RFC 3596).
    Aaaa([u8; 16]),
    /// A name in presentation form (dots), for PTR.
    Name(&'a str),
}

/// Writes a response to `q` into `out`: header, the question as sent, then
/// `answers` (all owned by the question's name, TTL `ttl`) while they fit
/// in `max_len`; sets TC when some did not. Returns the length.
pub fn build_response<'a>(
    q: &Query<'_>,
    rc: u8,
    answers: impl IntoIterator<Item = Rdata<'a>>,
    ttl: u32,
    max_len: usize,
    out: &mut [u8],
) -> usize {
    let max = max_len.min(out.len());
    let qlen = q.question.len();
    if HEADER_LEN + qlen > max {
        return 0;
    }
    out[0..2].copy_from_slice(&q.id.to_be_bytes());
    // QR, AA, RD as asked, RA.
    out[2] = 0x80 | 0x04 | u8::from(q.rd);
    out[3] = 0x80 | (rc & 0x0f);
    out[4..6].copy_from_slice(&1u16.to_be_bytes());
    out[6..12].fill(0);
    out[HEADER_LEN..HEADER_LEN + qlen].copy_from_slice(q.question);
    let mut n = HEADER_LEN + qlen;
    let mut count = 0u16;
    for a in answers {
        let (ty, rdlen) = match &a {
            Rdata::A(_) => (qtype::A, 4),
            Rdata::Aaaa(_) => (qtype::AAAA, 16),
            Rdata::Name(name) => (qtype::PTR, encoded_len(name)),
        };
        if n + 12 + rdlen > max {
            out[2] |= 0x02; // TC
            break;
        }
        // The owner is the question's name: a pointer to offset 12.
        out[n..n + 2].copy_from_slice(&0xc00cu16.to_be_bytes());
        out[n + 2..n + 4].copy_from_slice(&ty.to_be_bytes());
        out[n + 4..n + 6].copy_from_slice(&CLASS_IN.to_be_bytes());
        out[n + 6..n + 10].copy_from_slice(&ttl.to_be_bytes());
        out[n + 10..n + 12].copy_from_slice(&(rdlen as u16).to_be_bytes());
        n += 12;
        match a {
            Rdata::A(ip) => out[n..n + 4].copy_from_slice(&ip),
            Rdata::Aaaa(ip) => out[n..n + 16].copy_from_slice(&ip),
            Rdata::Name(name) => {
                encode_name(name, &mut out[n..n + rdlen]);
            }
        }
        n += rdlen;
        count += 1;
    }
    out[6..8].copy_from_slice(&count.to_be_bytes());
    n
}

fn encoded_len(name: &str) -> usize {
    name.split('.')
        .filter(|l| !l.is_empty())
        .map(|l| l.len().min(63) + 1)
        .sum::<usize>()
        + 1
}

fn encode_name(name: &str, out: &mut [u8]) {
    let mut i = 0;
    for l in name.split('.').filter(|l| !l.is_empty()) {
        let l = &l.as_bytes()[..l.len().min(63)];
        out[i] = l.len() as u8;
        out[i + 1..i + 1 + l.len()].copy_from_slice(l);
        i += 1 + l.len();
    }
    out[i] = 0;
}

/// The IPv4 address of a reverse name (`d.c.b.a.in-addr.arpa`).
pub fn reverse_v4(name: &str) -> Option<std::net::Ipv4Addr> {
    let rest = name.strip_suffix(".in-addr.arpa")?;
    let mut o = [0u8; 4];
    let mut parts = rest.split('.');
    for i in (0..4).rev() {
        o[i] = parts.next()?.parse().ok()?;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(std::net::Ipv4Addr::from(o))
}

/// The IPv6 address of a reverse name (RFC 3596 2.5): exactly 32 labels of
/// one hex digit each (either case), least significant nibble first, then
/// `ip6.arpa`. Anything else (a shorter zone name, two-digit labels) is
/// `None`.
pub fn reverse_v6(name: &str) -> Option<std::net::Ipv6Addr> {
    const SUFFIX: &[u8] = b"ip6.arpa";
    let b = name.as_bytes();
    // 32 nibbles, each followed by its dot, then the suffix.
    if b.len() != 64 + SUFFIX.len() || !b[64..].eq_ignore_ascii_case(SUFFIX) {
        return None;
    }
    let mut v = 0u128;
    for (i, pair) in b[..64].chunks_exact(2).enumerate() {
        if pair[1] != b'.' {
            return None;
        }
        let d = (pair[0] as char).to_digit(16)?;
        v |= u128::from(d) << (4 * i);
    }
    Some(std::net::Ipv6Addr::from(v))
}

/// A query (RD set) for `name` of type `ty`, class IN, with `id`: what the
/// tests of this module and of the name table ask.
#[cfg(test)]
pub(crate) fn test_query(id: u16, name: &str, ty: u16) -> Vec<u8> {
    let mut q = id.to_be_bytes().to_vec();
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for l in name.split('.') {
        q.push(l.len() as u8);
        q.extend_from_slice(l.as_bytes());
    }
    q.push(0);
    q.extend_from_slice(&ty.to_be_bytes());
    q.extend_from_slice(&CLASS_IN.to_be_bytes());
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(name: &str, ty: u16) -> Vec<u8> {
        test_query(0x1234, name, ty)
    }

    #[test]
    fn parses_a_query_and_its_name() {
        let b = query("Web.Lanyard.Internal", qtype::A);
        let q = parse_query(&b).unwrap();
        assert_eq!(
            (q.id, q.rd, q.qtype, q.qclass),
            (0x1234, true, qtype::A, CLASS_IN)
        );
        let mut buf = [0u8; 256];
        assert_eq!(question_name(&q, &mut buf).unwrap(), "web.lanyard.internal");
    }

    #[test]
    fn refuses_malformed_questions() {
        let mut b = query("web", qtype::A);
        b[12] = 0xc0; // compression pointer in the question
        assert_eq!(parse_query(&b), Err(WireError::Malformed));
        let b = query("web", qtype::A);
        assert_eq!(parse_query(&b[..b.len() - 1]), Err(WireError::Truncated));
        let mut r = query("web", qtype::A);
        r[2] |= 0x80; // a response
        assert_eq!(parse_query(&r), Err(WireError::Unsupported));
        let mut two = query("web", qtype::A);
        two[5] = 2;
        assert_eq!(parse_query(&two), Err(WireError::Unsupported));
        let long = format!(
            "{}.{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(63),
            "e"
        );
        assert_eq!(parse_query(&query(&long, 1)), Err(WireError::Malformed));
        let mut dot = query("we.b", 1);
        dot[13] = b'.';
        let q = parse_query(&dot).unwrap();
        assert_eq!(
            question_name(&q, &mut [0u8; 256]),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn builds_answers_an_independent_parser_reads() {
        let b = query("web", qtype::A);
        let q = parse_query(&b).unwrap();
        let mut out = [0u8; 512];
        let n = build_response(
            &q,
            rcode::NOERROR,
            [Rdata::A([172, 17, 0, 2]), Rdata::A([172, 17, 0, 3])],
            600,
            512,
            &mut out,
        );
        let h = &out[..n];
        assert_eq!(&h[0..2], &[0x12, 0x34]);
        assert_eq!(h[2] & 0x80, 0x80, "QR");
        assert_eq!(h[3] & 0x0f, 0);
        assert_eq!(u16::from_be_bytes([h[6], h[7]]), 2);
        assert_eq!(&h[n - 4..], &[172, 17, 0, 3]);
        let ptr = query("2.0.17.172.in-addr.arpa", qtype::PTR);
        let q = parse_query(&ptr).unwrap();
        let n = build_response(&q, rcode::NOERROR, [Rdata::Name("web")], 600, 512, &mut out);
        assert_eq!(&out[n - 5..n], &[3, b'w', b'e', b'b', 0]);
        // Too many answers for 512 bytes: truncated, TC set.
        let many: Vec<Rdata> = (0..100).map(|i| Rdata::A([10, 0, 0, i])).collect();
        let q = parse_query(&b).unwrap();
        let n = build_response(&q, rcode::NOERROR, many.iter().copied(), 600, 512, &mut out);
        assert!(n <= 512);
        assert_eq!(out[2] & 0x02, 0x02);
    }

    /// The answer records of a response, read field by field from the
    /// bytes (RFC 1035 4.1), independently of `build_response`: owner
    /// (a pointer or labels), type, class, TTL and data.
    fn records(m: &[u8]) -> Vec<(u16, u16, u32, Vec<u8>)> {
        fn skip_name(m: &[u8], mut i: usize) -> usize {
            loop {
                match m[i] {
                    0 => return i + 1,
                    l if l & 0xc0 == 0xc0 => return i + 2,
                    l => i += 1 + l as usize,
                }
            }
        }
        let qd = u16::from_be_bytes([m[4], m[5]]);
        let an = u16::from_be_bytes([m[6], m[7]]);
        let mut i = HEADER_LEN;
        for _ in 0..qd {
            i = skip_name(m, i) + 4;
        }
        let mut out = Vec::new();
        for _ in 0..an {
            i = skip_name(m, i);
            let f = |k: usize| u16::from_be_bytes([m[i + k], m[i + k + 1]]);
            let ttl = u32::from_be_bytes([m[i + 4], m[i + 5], m[i + 6], m[i + 7]]);
            let rdlen = f(8) as usize;
            out.push((f(0), f(2), ttl, m[i + 10..i + 10 + rdlen].to_vec()));
            i += 10 + rdlen;
        }
        assert_eq!(i, m.len(), "nothing after the last record");
        out
    }

    #[test]
    fn builds_aaaa_records_a_hand_decoder_reads() {
        let b = query("web", qtype::AAAA);
        let q = parse_query(&b).unwrap();
        let a: std::net::Ipv6Addr = "fd00:17::2".parse().unwrap();
        let c: std::net::Ipv6Addr = "fd00:17::3".parse().unwrap();
        let mut out = [0u8; 512];
        let n = build_response(
            &q,
            rcode::NOERROR,
            [Rdata::Aaaa(a.octets()), Rdata::Aaaa(c.octets())],
            600,
            512,
            &mut out,
        );
        let m = &out[..n];
        assert_eq!(u16::from_be_bytes([m[6], m[7]]), 2, "ANCOUNT");
        assert_eq!(m[2] & 0x02, 0, "not truncated");
        let recs = records(m);
        assert_eq!(
            recs,
            vec![
                (qtype::AAAA, CLASS_IN, 600, a.octets().to_vec()),
                (qtype::AAAA, CLASS_IN, 600, c.octets().to_vec()),
            ]
        );
        // The first record's bytes, spelled out: owner pointer to the
        // question, type 28, class IN, TTL 600, RDLENGTH 16, the address.
        let r = &m[HEADER_LEN + q.question.len()..];
        assert_eq!(
            &r[..12],
            &[0xc0, 0x0c, 0, 28, 0, 1, 0, 0, 0x02, 0x58, 0, 16]
        );
        assert_eq!(
            &r[12..28],
            &[0xfd, 0, 0, 0x17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]
        );
        // Mixed with A (an ANY answer), and truncated at 512 bytes.
        let n = build_response(
            &q,
            rcode::NOERROR,
            [Rdata::A([172, 17, 0, 2]), Rdata::Aaaa(a.octets())],
            600,
            512,
            &mut out,
        );
        let recs = records(&out[..n]);
        assert_eq!(recs[0].0, qtype::A);
        assert_eq!(recs[1].0, qtype::AAAA);
        let many = (0..40).map(|_| Rdata::Aaaa(a.octets()));
        let n = build_response(&q, rcode::NOERROR, many, 600, 512, &mut out);
        assert!(n <= 512);
        assert_eq!(out[2] & 0x02, 0x02, "TC");
        // 12 + 9 (question) + k * 28 <= 512: 17 records.
        assert_eq!(records(&out[..n]).len(), 17);
    }

    #[test]
    fn reverse_v6_names() {
        let fwd = "4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.1.0.0.0.0.d.f.ip6.arpa";
        let want: std::net::Ipv6Addr = "fd00:17::1234".parse().unwrap();
        assert_eq!(reverse_v6(fwd), Some(want));
        // Either case, digits and suffix.
        let upper = "4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.1.0.0.0.0.D.F.IP6.ARPA";
        assert_eq!(reverse_v6(upper), Some(want));
        let all: std::net::Ipv6Addr = "2001:db8:abcd:ef01:2345:6789:abcd:ef01".parse().unwrap();
        let name: String = all
            .octets()
            .iter()
            .rev()
            .map(|o| format!("{:x}.{:x}.", o & 0xf, o >> 4))
            .collect::<String>()
            + "ip6.arpa";
        assert_eq!(reverse_v6(&name), Some(all));
        // 31 labels, 33 labels, a two-digit label, a non-hex one, an empty
        // one, another suffix.
        assert_eq!(reverse_v6(&fwd[2..]), None);
        assert_eq!(reverse_v6(&format!("0.{fwd}")), None);
        assert_eq!(
            reverse_v6("43.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.1.0.0.0.0.d.f.ip6.arpa"),
            None
        );
        assert_eq!(
            reverse_v6("g.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.1.0.0.0.0.d.f.ip6.arpa"),
            None
        );
        assert_eq!(
            reverse_v6("..3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.1.0.0.0.0.d.f.ip6.arpa"),
            None
        );
        assert_eq!(
            reverse_v6("4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.7.1.0.0.0.0.d.f.ip6.arpb"),
            None
        );
        assert_eq!(reverse_v6("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.ip6.arpa"), None);
        assert_eq!(reverse_v6("ip6.arpa"), None);
        // Not ASCII, of the right length: refused, no panic.
        let odd = format!("é{}", &fwd[2..]);
        assert_eq!(reverse_v6(&odd), None);
    }

    #[test]
    fn reverse_names() {
        assert_eq!(
            reverse_v4("2.0.17.172.in-addr.arpa"),
            Some([172, 17, 0, 2].into())
        );
        assert_eq!(reverse_v4("0.17.172.in-addr.arpa"), None);
        assert_eq!(reverse_v4("x.0.17.172.in-addr.arpa"), None);
        assert_eq!(reverse_v4("example.com"), None);
    }
}
