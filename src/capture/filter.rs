//! Capture filters: a small tcpdump-style expression language, parsed once
//! when a capture starts and evaluated on the data-path thread for every
//! frame it sees.
//!
//! # Grammar
//!
//! ```text
//! expr      := or                                  (empty: every frame)
//! or        := and  (("or"  | "||") and)*
//! and       := not  (("and" | "&&") not)*
//! not       := ("not" | "!") not | "(" or ")" | primitive
//!
//! primitive := "arp" | "ip" | "ip6" | "icmp" | "icmp6" | "tcp" | "udp"
//!            | "vlan" [ID]
//!            | [l3] [dir] "host" ADDR          l3 := "ip" | "ip6" | "arp"
//!            | [l3] [dir] "net" CIDR           dir := "src" | "dst"
//!            | [l4] [dir] "port" N             l4 := "tcp" | "udp"
//!            | [l4] [dir] "portrange" N-M
//!            | "ether" ("host" | "src" ["host"] | "dst" ["host"]) MAC
//!            | ["ether"] ("broadcast" | "multicast")
//!            | "ether" "proto" N
//!            | ["ip" | "ip6"] "proto" (N | "icmp" | "tcp" | "udp" | "icmp6")
//!            | "less" N | "greater" N
//! ```
//!
//! Keywords are case-insensitive; numbers are decimal or `0x` hex. `not`
//! binds tighter than `and`, which binds tighter than `or`, as in C (and
//! as the `&&`/`||` spelling suggests). Note that this is *not* pcap's
//! rule: pcap-filter(7) gives `and` and `or` the same precedence, left to
//! right, so `a or b and c` is `(a or b) and c` in tcpdump but
//! `a or (b and c)` here. Parenthesize when in doubt; the two agree then.
//!
//! # What each primitive looks at
//!
//! Everything past the Ethernet header is read through up to two VLAN
//! tags (802.1Q or 802.1ad): `ip` matches a tagged IPv4 packet too. (pcap
//! instead makes `vlan` shift the offsets of the primitives after it;
//! a switch sees few tagged frames and one rule is easier to predict.)
//!
//! - `arp`, `ip`, `ip6`: the EtherType (past the tags).
//! - `icmp`: IPv4 protocol 1. `tcp`, `udp`: the transport of IPv4, or of
//!   IPv6 after its extension headers (the walk of
//!   [`Ipv6Packet::upper_layer`]); every fragment of such a packet matches.
//!   `icmp6`: the same walk ending at ICMPv6.
//! - `vlan`: the frame carries a tag; `vlan ID`: one of its first two tags
//!   has VLAN ID `ID`.
//! - `host`, `net`: the source or destination address of IPv4 or IPv6
//!   (the address family of `ADDR` picks which) and, for IPv4, the sender
//!   (`src`) or target (`dst`) protocol address of ARP, as tcpdump does.
//!   `ip`, `ip6` or `arp` in front restricts the match to that protocol.
//!   A `net` with host bits set (`10.0.0.1/8`) is refused, as tcpdump
//!   refuses it; a bare address is a host-length net.
//! - `port`, `portrange`: TCP or UDP ports (either, or the one named in
//!   front), IPv4 or IPv6. Fragments other than the first carry no
//!   transport header and never match. The ports are read right after
//!   the IP header (past the extension headers for IPv6), whatever the
//!   length fields say, as pcap does: a GSO super-frame's IPv4 total
//!   length may be 0.
//! - `ether host/src/dst`: the Ethernet addresses; `broadcast`: the
//!   destination is ff:ff:ff:ff:ff:ff; `multicast`: its group bit is set
//!   (broadcast included). `ether proto N`: the frame's EtherType or the
//!   one inside its VLAN tags (so `ether proto 0x8100` finds tagged frames).
//! - `ip proto N`: the IPv4 protocol field. `ip6 proto N`: the first Next
//!   Header or the upper layer the extension-header walk ends at (so both
//!   `ip6 proto 0`, Hop-by-Hop, and `ip6 proto 6` find a TCP packet behind
//!   a Hop-by-Hop header). `proto N`: either.
//! - `less N`, `greater N`: the frame's length is at most / at least `N`
//!   (a GSO super-frame's whole length).
//!
//! # Bounds
//!
//! An expression is at most [`MAX_LEN`] bytes and [`MAX_TERMS`]
//! primitives; parentheses and negations nest at most [`MAX_NESTING`]
//! deep. So evaluation is bounded: one decoding pass over the frame (two
//! tags, at most [`MAX_EXTENSION_HEADERS`] IPv6 extension headers), then
//! a walk of a tree of at most 64 leaves whose recursion is at most a few
//! dozen frames deep. [`Filter::matches`] never allocates and never panics:
//! every read goes through a `wire` view's `new_checked` or a `get`.
//!
//! [`MAX_EXTENSION_HEADERS`]: crate::wire::ipv6::MAX_EXTENSION_HEADERS

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use ipnet::IpNet;

use crate::wire::arp::ArpPacket;
use crate::wire::ethernet::{ethertype, EthernetFrame, MacAddr};
use crate::wire::ipv4::{protocol, Ipv4Packet};
use crate::wire::ipv6::{next_header, Ipv6Packet};
use crate::wire::udp;

/// The longest expression accepted, in bytes.
pub const MAX_LEN: usize = 1024;
/// The most primitives an expression may hold.
pub const MAX_TERMS: usize = 64;
/// How deep parentheses and `not`s may nest.
pub const MAX_NESTING: usize = 16;

/// The 802.1Q / 802.1ad tag after the Ethernet addresses' EtherType slot.
/// `wire` has no view of it (the switch refuses tagged frames from
/// endpoints, `offload` reads the one tag it must skip by hand), so its
/// layout is named here. Offsets are from the start of the tag.
mod vlan {
    use std::ops::Range;

    pub const TAG_LEN: usize = 4;
    /// Priority (3 bits), drop eligible (1), VLAN ID (12).
    pub const TCI: Range<usize> = 0..2;
    pub const VID_MASK: u16 = 0x0fff;
    pub const MAX_VID: u32 = 4095;
    /// The EtherType of what the tag carries.
    pub const ETHERTYPE: Range<usize> = 2..4;
    /// Tags read through before giving up on the payload (QinQ is two).
    pub const MAX_TAGS: usize = 2;
}

// --- the compiled filter -----------------------------------------------------

/// A parsed capture filter. Cheap to clone, compared structurally, and
/// printed back (`Display`) in a canonical form that parses to an equal
/// filter.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Filter {
    /// `None`: the empty expression, which matches every frame.
    root: Option<Node>,
}

/// A node of the expression tree. `And` and `Or` are n-ary and flattened
/// (`a and (b and c)` is one `And` of three), so a long chain costs a loop,
/// not a recursion per term. Only the parse allocates the tree.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Prim(Primitive),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Primitive {
    Proto(Proto),
    Vlan(Option<u16>),
    Host {
        l3: Option<L3>,
        dir: Dir,
        addr: IpAddr,
    },
    Net {
        l3: Option<L3>,
        dir: Dir,
        net: IpNet,
    },
    Port {
        l4: Option<L4>,
        dir: Dir,
        lo: u16,
        hi: u16,
    },
    EtherHost {
        dir: Dir,
        mac: MacAddr,
    },
    EtherBroadcast,
    EtherMulticast,
    EtherProto(u16),
    /// `l3` is never `Arp`.
    IpProto {
        l3: Option<L3>,
        proto: u8,
    },
    Less(u32),
    Greater(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Proto {
    Arp,
    Ip,
    Ip6,
    Icmp,
    Icmp6,
    Tcp,
    Udp,
}

/// A network-layer qualifier: `ip host`, `ip6 net`, `arp host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L3 {
    Ip,
    Ip6,
    Arp,
}

/// A transport qualifier: `tcp port`, `udp portrange`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum L4 {
    Tcp,
    Udp,
}

impl L4 {
    fn number(self) -> u8 {
        match self {
            L4::Tcp => protocol::TCP,
            L4::Udp => protocol::UDP,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Src,
    Dst,
    Either,
}

impl Dir {
    #[inline]
    fn test(self, src: bool, dst: bool) -> bool {
        match self {
            Dir::Src => src,
            Dir::Dst => dst,
            Dir::Either => src || dst,
        }
    }
}

impl Filter {
    /// Parses an expression (see the module docs for the grammar). An
    /// empty or all-blank expression gives the filter that matches
    /// everything.
    pub fn parse(expr: &str) -> Result<Filter, FilterError> {
        if expr.len() > MAX_LEN {
            return Err(FilterError {
                position: MAX_LEN,
                token: String::new(),
                kind: FilterErrorKind::TooLong { len: expr.len() },
            });
        }
        let tokens = lex(expr)?;
        let mut p = Parser {
            tokens,
            next: 0,
            terms: 0,
            depth: 0,
        };
        if p.tokens.is_empty() {
            return Ok(Filter { root: None });
        }
        let root = p.or()?;
        if let Some(t) = p.peek() {
            return Err(t.error(FilterErrorKind::Expected("'and', 'or' or the end")));
        }
        Ok(Filter { root: Some(root) })
    }

    /// Whether this is the empty filter, which lets every frame through.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// Whether `frame` (an Ethernet frame, no virtio-net header in front)
    /// passes. Any bytes at all may be given: what cannot be decoded
    /// simply does not match the primitives that need it. Never allocates.
    pub fn matches(&self, frame: &[u8]) -> bool {
        match &self.root {
            None => true,
            Some(root) => root.eval(&View::new(frame)),
        }
    }
}

impl FromStr for Filter {
    type Err = FilterError;
    fn from_str(s: &str) -> Result<Filter, FilterError> {
        Filter::parse(s)
    }
}

// --- evaluation --------------------------------------------------------------

/// What the primitives need of one frame, decoded once per `matches` call
/// into plain values on the stack.
struct View {
    len: usize,
    /// `None` for a frame shorter than an Ethernet header.
    l2: Option<L2>,
    tagged: bool,
    vids: [Option<u16>; vlan::MAX_TAGS],
    /// The EtherType past the tags; `None` when a tag is cut off.
    ethertype: Option<u16>,
    net: Net,
}

#[derive(Clone, Copy)]
struct L2 {
    dst: MacAddr,
    src: MacAddr,
    /// The EtherType field of the Ethernet header itself.
    outer: u16,
}

#[derive(Clone, Copy)]
enum Net {
    /// Not ARP, IPv4 or IPv6, or too malformed for their views.
    Other,
    Arp {
        sender: Ipv4Addr,
        target: Ipv4Addr,
    },
    V4 {
        src: Ipv4Addr,
        dst: Ipv4Addr,
        proto: u8,
        /// Source and destination port of TCP or UDP: `None` for other
        /// protocols, later fragments, and a header cut short.
        ports: Option<(u16, u16)>,
    },
    V6 {
        src: Ipv6Addr,
        dst: Ipv6Addr,
        /// The fixed header's Next Header.
        first: u8,
        /// Where the extension-header walk ended; `None` if it failed.
        upper: Option<u8>,
        ports: Option<(u16, u16)>,
    },
}

impl View {
    fn new(frame: &[u8]) -> View {
        let mut v = View {
            len: frame.len(),
            l2: None,
            tagged: false,
            vids: [None; vlan::MAX_TAGS],
            ethertype: None,
            net: Net::Other,
        };
        let Ok(eth) = EthernetFrame::new_checked(frame) else {
            return v;
        };
        let outer = eth.ethertype();
        v.l2 = Some(L2 {
            dst: eth.dst(),
            src: eth.src(),
            outer,
        });
        let mut kind = outer;
        let mut rest = eth.into_payload();
        for vid in v.vids.iter_mut() {
            if kind != ethertype::VLAN && kind != ethertype::QINQ {
                break;
            }
            v.tagged = true;
            let Some(tag) = rest.get(..vlan::TAG_LEN) else {
                return v;
            };
            let tci = &tag[vlan::TCI];
            *vid = Some(u16::from_be_bytes([tci[0], tci[1]]) & vlan::VID_MASK);
            let et = &tag[vlan::ETHERTYPE];
            kind = u16::from_be_bytes([et[0], et[1]]);
            rest = &rest[vlan::TAG_LEN..];
        }
        v.ethertype = Some(kind);
        v.net = match kind {
            ethertype::ARP => match ArpPacket::new_checked(rest) {
                Ok(arp) => Net::Arp {
                    sender: arp.sender_ip(),
                    target: arp.target_ip(),
                },
                Err(_) => Net::Other,
            },
            ethertype::IPV4 => decode_v4(rest),
            ethertype::IPV6 => decode_v6(rest),
            _ => Net::Other,
        };
        v
    }

    /// The transport protocol: IPv4's, or the end of IPv6's walk.
    fn transport(&self) -> Option<u8> {
        match self.net {
            Net::V4 { proto, .. } => Some(proto),
            Net::V6 { upper, .. } => upper,
            _ => None,
        }
    }

    /// (transport protocol, source port, destination port) of TCP or UDP.
    fn ports(&self) -> Option<(u8, u16, u16)> {
        match self.net {
            Net::V4 {
                proto,
                ports: Some((s, d)),
                ..
            } => Some((proto, s, d)),
            Net::V6 {
                upper: Some(proto),
                ports: Some((s, d)),
                ..
            } => Some((proto, s, d)),
            _ => None,
        }
    }

    /// The (source, destination) addresses `host` and `net` compare, as
    /// the qualifier allows: ARP's are its sender and target.
    fn addrs(&self, l3: Option<L3>) -> Option<(IpAddr, IpAddr)> {
        match (self.net, l3) {
            (Net::V4 { src, dst, .. }, None | Some(L3::Ip)) => Some((src.into(), dst.into())),
            (Net::Arp { sender, target }, None | Some(L3::Arp)) => {
                Some((sender.into(), target.into()))
            }
            (Net::V6 { src, dst, .. }, None | Some(L3::Ip6)) => Some((src.into(), dst.into())),
            _ => None,
        }
    }
}

/// IPv4 through the lenient view a GSO super-frame needs (its total length
/// may be 0): the header must be there, the length field is not trusted.
fn decode_v4(b: &[u8]) -> Net {
    let Ok(ip) = Ipv4Packet::new_checked_gso(b) else {
        return Net::Other;
    };
    let proto = ip.protocol();
    let ports = match proto {
        protocol::TCP | protocol::UDP if !ip.is_later_fragment() => {
            // TCP's ports sit where UDP's do: the first four bytes.
            b.get(ip.header_len()..).and_then(udp::peek_ports)
        }
        _ => None,
    };
    Net::V4 {
        src: ip.src(),
        dst: ip.dst(),
        proto,
        ports,
    }
}

fn decode_v6(b: &[u8]) -> Net {
    let Ok(ip) = Ipv6Packet::new_checked(b) else {
        return Net::Other;
    };
    let (upper, ports) = match ip.upper_layer() {
        Ok(u) => {
            let later = u.fragment.is_some_and(|f| !f.is_first());
            let ports = match u.protocol {
                next_header::TCP | next_header::UDP if !later => {
                    b.get(u.offset..ip.packet().len()).and_then(udp::peek_ports)
                }
                _ => None,
            };
            (Some(u.protocol), ports)
        }
        Err(_) => (None, None),
    };
    Net::V6 {
        src: ip.src(),
        dst: ip.dst(),
        first: ip.next_header(),
        upper,
        ports,
    }
}

impl Node {
    fn eval(&self, v: &View) -> bool {
        match self {
            Node::Prim(p) => p.eval(v),
            Node::Not(n) => !n.eval(v),
            Node::And(ns) => ns.iter().all(|n| n.eval(v)),
            Node::Or(ns) => ns.iter().any(|n| n.eval(v)),
        }
    }
}

impl Primitive {
    fn eval(&self, v: &View) -> bool {
        match *self {
            Primitive::Proto(p) => match p {
                Proto::Arp => v.ethertype == Some(ethertype::ARP),
                Proto::Ip => v.ethertype == Some(ethertype::IPV4),
                Proto::Ip6 => v.ethertype == Some(ethertype::IPV6),
                Proto::Icmp => matches!(
                    v.net,
                    Net::V4 {
                        proto: protocol::ICMP,
                        ..
                    }
                ),
                Proto::Icmp6 => matches!(
                    v.net,
                    Net::V6 {
                        upper: Some(next_header::ICMPV6),
                        ..
                    }
                ),
                Proto::Tcp => v.transport() == Some(protocol::TCP),
                Proto::Udp => v.transport() == Some(protocol::UDP),
            },
            Primitive::Vlan(None) => v.tagged,
            Primitive::Vlan(Some(id)) => v.vids.contains(&Some(id)),
            Primitive::Host { l3, dir, addr } => v
                .addrs(l3)
                .is_some_and(|(s, d)| dir.test(s == addr, d == addr)),
            Primitive::Net { l3, dir, net } => v
                .addrs(l3)
                .is_some_and(|(s, d)| dir.test(net.contains(&s), net.contains(&d))),
            Primitive::Port { l4, dir, lo, hi } => match v.ports() {
                Some((proto, s, d)) if l4.is_none_or(|l4| l4.number() == proto) => {
                    dir.test((lo..=hi).contains(&s), (lo..=hi).contains(&d))
                }
                _ => false,
            },
            Primitive::EtherHost { dir, mac } => {
                v.l2.is_some_and(|l2| dir.test(l2.src == mac, l2.dst == mac))
            }
            Primitive::EtherBroadcast => v.l2.is_some_and(|l2| l2.dst.is_broadcast()),
            Primitive::EtherMulticast => v.l2.is_some_and(|l2| l2.dst.is_multicast()),
            Primitive::EtherProto(t) => {
                v.l2.is_some_and(|l2| l2.outer == t) || v.ethertype == Some(t)
            }
            Primitive::IpProto { l3, proto } => match (v.net, l3) {
                (Net::V4 { proto: p, .. }, None | Some(L3::Ip)) => p == proto,
                (Net::V6 { first, upper, .. }, None | Some(L3::Ip6)) => {
                    first == proto || upper == Some(proto)
                }
                _ => false,
            },
            Primitive::Less(n) => v.len <= n as usize,
            Primitive::Greater(n) => v.len >= n as usize,
        }
    }
}

// --- errors ------------------------------------------------------------------

/// Why an expression was refused, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterError {
    /// Byte offset of the offending token in the expression (0-based); its
    /// length for an expression that ended too early.
    pub position: usize,
    /// The offending token as written; empty at the end of the expression
    /// and for [`FilterErrorKind::TooLong`].
    pub token: String,
    pub kind: FilterErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilterErrorKind {
    /// The expression is longer than [`MAX_LEN`] bytes.
    TooLong { len: usize },
    /// More than [`MAX_TERMS`] primitives: the token is the first too many.
    TooManyTerms,
    /// Parentheses and `not`s nested deeper than [`MAX_NESTING`].
    TooDeep,
    /// A `(` without its `)`: the token is the `(`.
    Unclosed,
    /// Something else was due here (the string says what).
    Expected(&'static str),
    /// The token is in the right place but its value is wrong (the string
    /// says why).
    Invalid(&'static str),
}

impl fmt::Display for FilterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = self.position;
        let tok = &self.token;
        match self.kind {
            FilterErrorKind::TooLong { len } => {
                write!(f, "filter is {len} bytes long, more than {MAX_LEN}")
            }
            FilterErrorKind::TooManyTerms => write!(
                f,
                "filter has more than {MAX_TERMS} primitives: '{tok}' at position {at}"
            ),
            FilterErrorKind::TooDeep => write!(
                f,
                "filter nests deeper than {MAX_NESTING}: '{tok}' at position {at}"
            ),
            FilterErrorKind::Unclosed => write!(f, "'(' at position {at} is never closed"),
            FilterErrorKind::Expected(what) if tok.is_empty() => {
                write!(
                    f,
                    "expected {what} at the end of the filter (position {at})"
                )
            }
            FilterErrorKind::Expected(what) => {
                write!(f, "expected {what}, found '{tok}' at position {at}")
            }
            FilterErrorKind::Invalid(why) => write!(f, "{why}: '{tok}' at position {at}"),
        }
    }
}

impl std::error::Error for FilterError {}

// --- lexing ------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Anything else: a keyword, number or address.
    Word,
    LParen,
    RParen,
    Not,
    And,
    Or,
}

#[derive(Debug, Clone, Copy)]
struct Token<'a> {
    kind: Kind,
    text: &'a str,
    position: usize,
}

impl Token<'_> {
    fn error(&self, kind: FilterErrorKind) -> FilterError {
        FilterError {
            position: self.position,
            token: self.text.to_string(),
            kind,
        }
    }

    /// Case-insensitive keyword test.
    fn is(&self, keyword: &str) -> bool {
        self.kind == Kind::Word && self.text.eq_ignore_ascii_case(keyword)
    }
}

/// Splits at blanks and around `( ) ! && ||`; everything else runs into
/// words, so addresses (`fe80::1`, `10.0.0.0/8`, `02:42:ac:11:00:02`) and
/// ranges (`80-90`) are one token each.
fn lex(s: &str) -> Result<Vec<Token<'_>>, FilterError> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        let kind = match c {
            _ if c.is_ascii_whitespace() => {
                i += 1;
                continue;
            }
            b'(' => Kind::LParen,
            b')' => Kind::RParen,
            b'!' => Kind::Not,
            b'&' | b'|' => {
                if b.get(i + 1) != Some(&c) {
                    return Err(FilterError {
                        position: i,
                        token: (c as char).to_string(),
                        kind: FilterErrorKind::Invalid(if c == b'&' {
                            "a single '&' (write '&&' or 'and')"
                        } else {
                            "a single '|' (write '||' or 'or')"
                        }),
                    });
                }
                i += 1;
                if c == b'&' {
                    Kind::And
                } else {
                    Kind::Or
                }
            }
            _ => {
                while i < b.len() && !b[i].is_ascii_whitespace() && !b"()!&|".contains(&b[i]) {
                    i += 1;
                }
                // Only ASCII bytes end a word, so both ends are char
                // boundaries.
                let w = &s[start..i];
                out.push(Token {
                    kind: if w.eq_ignore_ascii_case("and") {
                        Kind::And
                    } else if w.eq_ignore_ascii_case("or") {
                        Kind::Or
                    } else if w.eq_ignore_ascii_case("not") {
                        Kind::Not
                    } else {
                        Kind::Word
                    },
                    text: w,
                    position: start,
                });
                continue;
            }
        };
        i += 1;
        out.push(Token {
            kind,
            text: &s[start..i],
            position: start,
        });
    }
    Ok(out)
}

// --- parsing -----------------------------------------------------------------

struct Parser<'a> {
    tokens: Vec<Token<'a>>,
    next: usize,
    /// Primitives so far.
    terms: usize,
    /// Open parentheses and `not`s around the current point.
    depth: usize,
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<Token<'a>> {
        self.tokens.get(self.next).copied()
    }

    /// Consumes the next token if it is of `kind`.
    fn eat_kind(&mut self, kind: Kind) -> bool {
        let yes = self.peek().is_some_and(|t| t.kind == kind);
        self.next += usize::from(yes);
        yes
    }

    /// Consumes the next token if it is `keyword`.
    fn eat(&mut self, keyword: &str) -> bool {
        let yes = self.peek().is_some_and(|t| t.is(keyword));
        self.next += usize::from(yes);
        yes
    }

    /// An error about the next token, or about the end if there is none.
    fn error_here(&self, kind: FilterErrorKind) -> FilterError {
        match self.peek() {
            Some(t) => t.error(kind),
            None => FilterError {
                position: self.tokens.last().map_or(0, |t| t.position + t.text.len()),
                token: String::new(),
                kind,
            },
        }
    }

    /// The next token as a word, or `Expected(what)`.
    fn word(&mut self, what: &'static str) -> Result<Token<'a>, FilterError> {
        match self.peek() {
            Some(t) if t.kind == Kind::Word => {
                self.next += 1;
                Ok(t)
            }
            _ => Err(self.error_here(FilterErrorKind::Expected(what))),
        }
    }

    fn enter(&mut self, t: Token<'a>) -> Result<(), FilterError> {
        if self.depth == MAX_NESTING {
            return Err(t.error(FilterErrorKind::TooDeep));
        }
        self.depth += 1;
        Ok(())
    }

    fn or(&mut self) -> Result<Node, FilterError> {
        let mut nodes = Vec::new();
        loop {
            // A parenthesized `or` joins this one: the tree stays flat.
            match self.and()? {
                Node::Or(v) => nodes.extend(v),
                n => nodes.push(n),
            }
            if !self.eat_kind(Kind::Or) {
                break;
            }
        }
        Ok(collapse(nodes, Node::Or))
    }

    fn and(&mut self) -> Result<Node, FilterError> {
        let mut nodes = Vec::new();
        loop {
            match self.not()? {
                Node::And(v) => nodes.extend(v),
                n => nodes.push(n),
            }
            if !self.eat_kind(Kind::And) {
                break;
            }
        }
        Ok(collapse(nodes, Node::And))
    }

    fn not(&mut self) -> Result<Node, FilterError> {
        let Some(t) = self.peek() else {
            return Err(self.error_here(FilterErrorKind::Expected("a primitive")));
        };
        match t.kind {
            Kind::Not => {
                self.next += 1;
                self.enter(t)?;
                let inner = self.not()?;
                self.depth -= 1;
                Ok(Node::Not(Box::new(inner)))
            }
            Kind::LParen => {
                self.next += 1;
                self.enter(t)?;
                let inner = self.or()?;
                match self.peek() {
                    Some(c) if c.kind == Kind::RParen => self.next += 1,
                    Some(_) => {
                        return Err(self.error_here(FilterErrorKind::Expected("'and', 'or' or ')'")))
                    }
                    None => return Err(t.error(FilterErrorKind::Unclosed)),
                }
                self.depth -= 1;
                Ok(inner)
            }
            Kind::Word => {
                self.next += 1;
                self.terms += 1;
                if self.terms > MAX_TERMS {
                    return Err(t.error(FilterErrorKind::TooManyTerms));
                }
                Ok(Node::Prim(self.primitive(t)?))
            }
            _ => Err(t.error(FilterErrorKind::Expected("a primitive"))),
        }
    }

    fn primitive(&mut self, t: Token<'a>) -> Result<Primitive, FilterError> {
        let word = t.text.to_ascii_lowercase();
        Ok(match word.as_str() {
            "arp" | "ip" | "ip6" => {
                let l3 = match word.as_str() {
                    "arp" => L3::Arp,
                    "ip" => L3::Ip,
                    _ => L3::Ip6,
                };
                if l3 != L3::Arp && self.eat("proto") {
                    Primitive::IpProto {
                        l3: Some(l3),
                        proto: self.proto_value()?,
                    }
                } else if self.next_is(&["src", "dst", "host", "net"]) {
                    self.qualified(Some(l3), None)?
                } else {
                    Primitive::Proto(match l3 {
                        L3::Arp => Proto::Arp,
                        L3::Ip => Proto::Ip,
                        L3::Ip6 => Proto::Ip6,
                    })
                }
            }
            "tcp" | "udp" => {
                let l4 = if word == "tcp" { L4::Tcp } else { L4::Udp };
                if self.next_is(&["src", "dst", "port", "portrange"]) {
                    self.qualified(None, Some(l4))?
                } else {
                    Primitive::Proto(match l4 {
                        L4::Tcp => Proto::Tcp,
                        L4::Udp => Proto::Udp,
                    })
                }
            }
            "icmp" => Primitive::Proto(Proto::Icmp),
            "icmp6" => Primitive::Proto(Proto::Icmp6),
            "vlan" => {
                // The ID is optional: take the next word only if it is a
                // number, so `vlan and ip` stays what it says.
                match self.peek().filter(|n| n.kind == Kind::Word) {
                    Some(n) if n.text.starts_with(|c: char| c.is_ascii_digit()) => {
                        Primitive::Vlan(Some(self.number("a VLAN ID", vlan::MAX_VID)? as u16))
                    }
                    _ => Primitive::Vlan(None),
                }
            }
            "src" | "dst" | "host" | "net" | "port" | "portrange" => {
                self.next -= 1; // `qualified` reads the direction itself
                self.qualified(None, None)?
            }
            "ether" => self.ether()?,
            "broadcast" => Primitive::EtherBroadcast,
            "multicast" => Primitive::EtherMulticast,
            "proto" => Primitive::IpProto {
                l3: None,
                proto: self.proto_value()?,
            },
            "less" => Primitive::Less(self.number("a length", u32::MAX)?),
            "greater" => Primitive::Greater(self.number("a length", u32::MAX)?),
            _ => return Err(t.error(FilterErrorKind::Expected("a primitive"))),
        })
    }

    fn next_is(&self, keywords: &[&str]) -> bool {
        self.peek()
            .is_some_and(|t| keywords.iter().any(|k| t.is(k)))
    }

    /// `[src|dst] (host ADDR | net CIDR | port N | portrange N-M)`, with
    /// an optional network or transport qualifier already read (never
    /// both): the former allows only `host` and `net`, the latter only
    /// `port` and `portrange`.
    fn qualified(&mut self, l3: Option<L3>, l4: Option<L4>) -> Result<Primitive, FilterError> {
        let dir = if self.eat("src") {
            Dir::Src
        } else if self.eat("dst") {
            Dir::Dst
        } else {
            Dir::Either
        };
        let expected = match (l3, l4) {
            (Some(_), _) => "'host' or 'net'",
            (_, Some(_)) => "'port' or 'portrange'",
            _ => "'host', 'net', 'port' or 'portrange'",
        };
        let kw = match self.peek() {
            Some(t) if t.kind == Kind::Word => t,
            _ => return Err(self.error_here(FilterErrorKind::Expected(expected))),
        };
        let lower = kw.text.to_ascii_lowercase();
        match lower.as_str() {
            "host" | "net" if l4.is_none() => {
                self.next += 1;
                let v = self.word(if lower == "host" {
                    "an IPv4 or IPv6 address"
                } else {
                    "a network (address/prefix length)"
                })?;
                let net = parse_net(&v, lower == "host")?;
                check_family(&v, l3, net.addr())?;
                Ok(if lower == "host" {
                    Primitive::Host {
                        l3,
                        dir,
                        addr: net.addr(),
                    }
                } else {
                    Primitive::Net { l3, dir, net }
                })
            }
            "port" if l3.is_none() => {
                self.next += 1;
                let n = self.number("a port number", u16::MAX.into())? as u16;
                Ok(Primitive::Port {
                    l4,
                    dir,
                    lo: n,
                    hi: n,
                })
            }
            "portrange" if l3.is_none() => {
                self.next += 1;
                let v = self.word("a port range (N-M)")?;
                let (lo, hi) = v.text.split_once('-').ok_or_else(|| {
                    v.error(FilterErrorKind::Invalid("a port range is written N-M"))
                })?;
                let port = |s: &str| {
                    parse_number(s)
                        .filter(|&n| n <= u16::MAX.into())
                        .map(|n| n as u16)
                        .ok_or_else(|| {
                            v.error(FilterErrorKind::Invalid("ports are numbers 0 to 65535"))
                        })
                };
                let (lo, hi) = (port(lo)?, port(hi)?);
                if lo > hi {
                    return Err(v.error(FilterErrorKind::Invalid(
                        "a port range must not end before it starts",
                    )));
                }
                Ok(Primitive::Port { l4, dir, lo, hi })
            }
            _ => Err(kw.error(FilterErrorKind::Expected(expected))),
        }
    }

    fn ether(&mut self) -> Result<Primitive, FilterError> {
        const EXPECTED: &str = "'host', 'src', 'dst', 'broadcast', 'multicast' or 'proto'";
        let t = self.word(EXPECTED)?;
        let lower = t.text.to_ascii_lowercase();
        let dir = match lower.as_str() {
            "broadcast" => return Ok(Primitive::EtherBroadcast),
            "multicast" => return Ok(Primitive::EtherMulticast),
            "proto" => {
                let n = self.number("an EtherType", u16::MAX.into())?;
                return Ok(Primitive::EtherProto(n as u16));
            }
            "host" => Dir::Either,
            "src" => Dir::Src,
            "dst" => Dir::Dst,
            _ => return Err(t.error(FilterErrorKind::Expected(EXPECTED))),
        };
        if dir != Dir::Either {
            self.eat("host");
        }
        let m = self.word("a MAC address")?;
        let mac = m.text.parse::<MacAddr>().map_err(|_| {
            m.error(FilterErrorKind::Invalid(
                "not a MAC address (xx:xx:xx:xx:xx:xx)",
            ))
        })?;
        Ok(Primitive::EtherHost { dir, mac })
    }

    /// A number of at most `max`.
    fn number(&mut self, what: &'static str, max: u32) -> Result<u32, FilterError> {
        let t = self.word(what)?;
        let n = parse_number(t.text).ok_or_else(|| t.error(FilterErrorKind::Expected(what)))?;
        if n > max {
            return Err(t.error(FilterErrorKind::Invalid("number out of range")));
        }
        Ok(n)
    }

    /// What follows `proto`: a number or one of the protocol names, which
    /// tcpdump wants written `\tcp` (its names are keywords); either
    /// spelling is taken.
    fn proto_value(&mut self) -> Result<u8, FilterError> {
        const WHAT: &str = "a protocol number or name";
        let t = self.word(WHAT)?;
        let name = t.text.strip_prefix('\\').unwrap_or(t.text);
        let n = match name.to_ascii_lowercase().as_str() {
            "icmp" => protocol::ICMP,
            "tcp" => protocol::TCP,
            "udp" => protocol::UDP,
            "icmp6" => next_header::ICMPV6,
            _ => match parse_number(name) {
                Some(n) if n <= u8::MAX.into() => n as u8,
                Some(_) => {
                    return Err(t.error(FilterErrorKind::Invalid("protocol numbers are 0 to 255")))
                }
                None => return Err(t.error(FilterErrorKind::Expected(WHAT))),
            },
        };
        Ok(n)
    }
}

/// One node stands for itself; more are joined by `make`.
fn collapse(mut nodes: Vec<Node>, make: fn(Vec<Node>) -> Node) -> Node {
    if nodes.len() == 1 {
        nodes.remove(0)
    } else {
        make(nodes)
    }
}

/// Decimal, or hex with `0x`.
fn parse_number(s: &str) -> Option<u32> {
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16).ok(),
        // from_str_radix would take a leading '+'.
        None if s.bytes().all(|c| c.is_ascii_digit()) => s.parse().ok(),
        None => None,
    }
}

/// An address (a host-length net) or, unless `host_only`, `addr/len` with
/// no bits set past the prefix.
fn parse_net(t: &Token<'_>, host_only: bool) -> Result<IpNet, FilterError> {
    if let Ok(a) = t.text.parse::<IpAddr>() {
        return Ok(IpNet::from(a));
    }
    if host_only {
        return Err(t.error(FilterErrorKind::Invalid("not an IPv4 or IPv6 address")));
    }
    let net = t.text.parse::<IpNet>().map_err(|_| {
        t.error(FilterErrorKind::Invalid(
            "not a network (address/prefix length)",
        ))
    })?;
    if net.trunc() != net {
        return Err(t.error(FilterErrorKind::Invalid(
            "the address has bits set past the prefix length",
        )));
    }
    Ok(net)
}

/// `ip host` wants IPv4, `ip6 host` IPv6, `arp host` IPv4.
fn check_family(t: &Token<'_>, l3: Option<L3>, a: IpAddr) -> Result<(), FilterError> {
    let ok = match l3 {
        None => true,
        Some(L3::Ip | L3::Arp) => a.is_ipv4(),
        Some(L3::Ip6) => a.is_ipv6(),
    };
    if ok {
        Ok(())
    } else {
        Err(t.error(FilterErrorKind::Invalid(
            "an address of the other family than the qualifier",
        )))
    }
}

// --- printing ----------------------------------------------------------------

impl fmt::Display for Filter {
    /// The canonical form: keywords in lower case, `and`/`or`/`not`,
    /// parentheses only where precedence needs them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.root {
            None => Ok(()),
            Some(n) => n.fmt(f),
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, ns: &[Node], op: &str) -> fmt::Result {
            for (i, n) in ns.iter().enumerate() {
                if i > 0 {
                    write!(f, " {op} ")?;
                }
                // Children of an `and` that are `or`s need parentheses;
                // an `or`'s children never do (and binds tighter).
                match n {
                    Node::Or(_) if op == "and" => write!(f, "({n})")?,
                    _ => write!(f, "{n}")?,
                }
            }
            Ok(())
        }
        match self {
            Node::Prim(p) => p.fmt(f),
            Node::Not(n) => match **n {
                Node::And(_) | Node::Or(_) => write!(f, "not ({n})"),
                _ => write!(f, "not {n}"),
            },
            Node::And(ns) => list(f, ns, "and"),
            Node::Or(ns) => list(f, ns, "or"),
        }
    }
}

impl fmt::Display for Primitive {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn l3(f: &mut fmt::Formatter<'_>, l3: Option<L3>) -> fmt::Result {
            f.write_str(match l3 {
                None => "",
                Some(L3::Ip) => "ip ",
                Some(L3::Ip6) => "ip6 ",
                Some(L3::Arp) => "arp ",
            })
        }
        fn dir(f: &mut fmt::Formatter<'_>, d: Dir) -> fmt::Result {
            f.write_str(match d {
                Dir::Src => "src ",
                Dir::Dst => "dst ",
                Dir::Either => "",
            })
        }
        match *self {
            Primitive::Proto(p) => f.write_str(match p {
                Proto::Arp => "arp",
                Proto::Ip => "ip",
                Proto::Ip6 => "ip6",
                Proto::Icmp => "icmp",
                Proto::Icmp6 => "icmp6",
                Proto::Tcp => "tcp",
                Proto::Udp => "udp",
            }),
            Primitive::Vlan(None) => f.write_str("vlan"),
            Primitive::Vlan(Some(id)) => write!(f, "vlan {id}"),
            Primitive::Host {
                l3: q,
                dir: d,
                addr,
            } => {
                l3(f, q)?;
                dir(f, d)?;
                write!(f, "host {addr}")
            }
            Primitive::Net { l3: q, dir: d, net } => {
                l3(f, q)?;
                dir(f, d)?;
                write!(f, "net {net}")
            }
            Primitive::Port { l4, dir: d, lo, hi } => {
                f.write_str(match l4 {
                    None => "",
                    Some(L4::Tcp) => "tcp ",
                    Some(L4::Udp) => "udp ",
                })?;
                dir(f, d)?;
                if lo == hi {
                    write!(f, "port {lo}")
                } else {
                    write!(f, "portrange {lo}-{hi}")
                }
            }
            Primitive::EtherHost { dir: d, mac } => match d {
                Dir::Either => write!(f, "ether host {mac}"),
                Dir::Src => write!(f, "ether src {mac}"),
                Dir::Dst => write!(f, "ether dst {mac}"),
            },
            Primitive::EtherBroadcast => f.write_str("ether broadcast"),
            Primitive::EtherMulticast => f.write_str("ether multicast"),
            Primitive::EtherProto(t) => write!(f, "ether proto {t:#06x}"),
            Primitive::IpProto { l3: q, proto } => {
                l3(f, q)?;
                write!(f, "proto {proto}")
            }
            Primitive::Less(n) => write!(f, "less {n}"),
            Primitive::Greater(n) => write!(f, "greater {n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::testing::*;
    use crate::wire::ethernet;

    fn m(expr: &str, frame: &[u8]) -> bool {
        Filter::parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .matches(frame)
    }

    fn err(expr: &str) -> FilterError {
        Filter::parse(expr).expect_err(expr)
    }

    /// The names of the zoo's frames `expr` matches.
    fn which(expr: &str) -> Vec<&'static str> {
        let f = Filter::parse(expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        zoo()
            .into_iter()
            .filter(|(_, frame)| f.matches(frame))
            .map(|(n, _)| n)
            .collect()
    }

    #[test]
    fn the_empty_filter_matches_everything() {
        for e in ["", "   ", "\t\n"] {
            let f = Filter::parse(e).unwrap();
            assert!(f.is_empty());
            assert!(f.matches(&[]));
            assert!(f.matches(&[1, 2, 3]));
            assert_eq!(f.to_string(), "");
        }
        assert!(Filter::default().matches(&echo4()));
    }

    #[test]
    fn protocol_primitives() {
        assert_eq!(which("arp"), ["arp"]);
        assert_eq!(which("ip"), ["icmp", "tcp4", "udp4"]);
        assert_eq!(which("ip6"), ["icmp6", "tcp6", "udp6", "udp6-hbh"]);
        assert_eq!(which("icmp"), ["icmp"]);
        assert_eq!(which("icmp6"), ["icmp6"]);
        assert_eq!(which("tcp"), ["tcp4", "tcp6"]);
        // The Hop-by-Hop header is walked past.
        assert_eq!(which("udp"), ["udp4", "udp6", "udp6-hbh"]);
        assert_eq!(which("vlan"), Vec::<&str>::new());
        assert_eq!(which("ICMP or ARP"), ["arp", "icmp"]);
    }

    #[test]
    fn host_matches_ip_and_arp_addresses() {
        assert_eq!(which("host 172.17.0.2"), ["arp", "icmp", "tcp4", "udp4"]);
        assert_eq!(
            which("src host 172.17.0.2"),
            ["arp", "icmp", "tcp4", "udp4"]
        );
        // The ARP request's target is .3: `dst` is ARP's target.
        assert_eq!(
            which("dst host 172.17.0.3"),
            ["arp", "icmp", "tcp4", "udp4"]
        );
        assert!(which("dst host 172.17.0.2").is_empty());
        assert!(which("host 172.17.0.9").is_empty());
        assert_eq!(which("ip host 172.17.0.2"), ["icmp", "tcp4", "udp4"]);
        assert_eq!(which("arp host 172.17.0.2"), ["arp"]);
        assert_eq!(which("arp src host 172.17.0.3"), Vec::<&str>::new());
        assert_eq!(which("host fd00::2"), ["icmp6", "tcp6", "udp6", "udp6-hbh"]);
        assert_eq!(which("ip6 dst host fd00::3").len(), 4);
        assert!(which("src host fd00::3").is_empty());
        // IPv6 is compared as an address, not as text.
        assert_eq!(which("host FD00:0:0:0::2").len(), 4);
    }

    #[test]
    fn net_matches_by_prefix() {
        assert_eq!(which("net 172.17.0.0/16").len(), 4);
        assert_eq!(
            which("src net 172.17.0.2/32"),
            ["arp", "icmp", "tcp4", "udp4"]
        );
        assert!(which("dst net 172.17.0.2/32").is_empty());
        assert!(which("net 10.0.0.0/8").is_empty());
        assert_eq!(which("net 172.17.0.3").len(), 4, "a bare address is a /32");
        assert_eq!(which("ip6 net fd00::/64").len(), 4);
        assert!(which("net fe80::/10").is_empty());
        assert_eq!(which("net 0.0.0.0/0").len(), 4);
        assert_eq!(which("net ::/0").len(), 4);
    }

    #[test]
    fn ports_of_tcp_and_udp_on_both_families() {
        assert_eq!(which("port 53"), ["udp4", "udp6", "udp6-hbh"]);
        assert_eq!(which("dst port 53"), ["udp4", "udp6", "udp6-hbh"]);
        assert!(which("src port 53").is_empty());
        assert_eq!(which("src port 40000"), ["tcp4", "tcp6"]);
        assert_eq!(which("tcp port 80"), ["tcp4"]);
        assert!(which("udp port 80").is_empty());
        assert_eq!(which("udp src port 5353"), ["udp4", "udp6", "udp6-hbh"]);
        assert_eq!(
            which("portrange 1-100"),
            ["tcp4", "udp4", "udp6", "udp6-hbh"]
        );
        assert_eq!(which("tcp portrange 400-500"), ["tcp6"]);
        assert_eq!(which("dst portrange 443-443"), ["tcp6"]);
        // ICMP has no ports, whatever its bytes there say.
        assert!(which("port 0 or port 1 or port 256 or port 257").is_empty());
    }

    #[test]
    fn later_fragments_have_no_ports() {
        let mut f = ip4(A1, A2, protocol::UDP, &udp_dgram(5353, 53));
        assert!(m("port 53", &f));
        // Flags and fragment offset: bytes 6-7 of the IPv4 header. The
        // offset 185 (1480 bytes in).
        f[14 + 6..14 + 8].copy_from_slice(&185u16.to_be_bytes());
        assert!(!m("port 53", &f));
        assert!(!m("port 5353", &f));
        assert!(
            m("udp and host 172.17.0.3", &f),
            "still UDP, still addressed"
        );
        // The first fragment (more fragments, offset 0) carries the ports.
        f[14 + 6..14 + 8].copy_from_slice(&0x2000u16.to_be_bytes());
        assert!(m("port 53", &f));

        // IPv6: a later fragment behind a Fragment header.
        let mut p = vec![next_header::UDP, 0];
        p.extend(((185u16 << 3) | 1).to_be_bytes());
        p.extend(7u32.to_be_bytes());
        p.extend(udp_dgram(5353, 53));
        let f = ip6(B1, B2, next_header::FRAGMENT, &p);
        assert!(m("udp and ip6 proto 44", &f));
        assert!(!m("port 53", &f));
        // The first fragment: offset 0.
        let mut p = p.clone();
        p[2..4].copy_from_slice(&1u16.to_be_bytes());
        assert!(m("udp port 53", &ip6(B1, B2, next_header::FRAGMENT, &p)));
    }

    #[test]
    fn ether_primitives() {
        let arp = arp_request(A1, A2);
        let tcp = ip4(A1, A2, protocol::TCP, &tcp_seg(1, 2));
        assert!(m("ether host 02:42:ac:11:00:02", &arp));
        assert!(m("ether src 02:42:AC:11:00:02", &tcp));
        assert!(m("ether src host 02:42:ac:11:00:02", &tcp));
        assert!(!m("ether dst 02:42:ac:11:00:02", &tcp));
        assert!(m("ether dst host 02:42:ac:11:00:03", &tcp));
        assert!(m("ether host 02:42:ac:11:00:03", &tcp));
        assert!(!m("ether host 02:42:ac:11:00:03", &arp));
        assert!(m("ether broadcast", &arp));
        assert!(m("broadcast", &arp));
        assert!(!m("ether broadcast", &tcp));
        assert!(m("ether multicast", &arp), "broadcast is a group address");
        let mut mc = echo6();
        mc[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        assert!(m("multicast and not broadcast", &mc));
        assert!(!m("ether multicast", &tcp));
        assert!(m("ether proto 0x0806", &arp));
        assert!(m("ether proto 2054", &arp));
        assert!(!m("ether proto 0x0800", &arp));
    }

    #[test]
    fn ip_proto_and_the_extension_header_walk() {
        assert_eq!(which("ip proto 6"), ["tcp4"]);
        assert_eq!(which("ip proto \\tcp"), ["tcp4"]);
        assert_eq!(which("ip6 proto tcp"), ["tcp6"]);
        assert_eq!(which("proto 17"), ["udp4", "udp6", "udp6-hbh"]);
        assert_eq!(which("proto 0x3a"), ["icmp6"]);
        assert_eq!(which("ip proto icmp"), ["icmp"]);
        // Hop-by-Hop: the first Next Header, and the upper layer behind it.
        assert_eq!(which("ip6 proto 0"), ["udp6-hbh"]);
        assert_eq!(which("ip6 proto 17 and ip6 proto 0"), ["udp6-hbh"]);
        assert!(which("ip proto 0").is_empty());
    }

    #[test]
    fn vlan_tags_are_seen_through() {
        let plain = ip4(A1, A2, protocol::UDP, &udp_dgram(5353, 53));
        let one = tagged(&plain, ethertype::VLAN, 0x2000 | 100); // priority 1, VID 100
        let two = tagged(&one, ethertype::QINQ, 7);
        for f in [&one, &two] {
            assert!(m("vlan", f));
            assert!(m("vlan 100", f));
            assert!(m("ip and udp port 53 and host 172.17.0.2", f));
            assert!(m("ether src 02:42:ac:11:00:02", f));
            assert!(m("ether proto 0x0800", f), "the inner EtherType");
        }
        assert!(m("vlan 7 and vlan 100 and ether proto 0x88a8", &two));
        assert!(!m("vlan 7", &one));
        assert!(!m("vlan", &plain));
        // A third tag is not looked through.
        let three = tagged(&two, ethertype::VLAN, 9);
        assert!(m("vlan 9 and vlan 7", &three));
        assert!(!m("ip", &three));
        assert!(!m("vlan 100", &three), "only the first two tags count");
        // A tag cut off: tagged, nothing inside.
        assert!(m("vlan and not ip", &one[..16]));
        assert!(!m("vlan 100", &one[..16]));
    }

    #[test]
    fn length_primitives() {
        let f = echo4(); // 14 + 20 + 12
        assert_eq!(f.len(), 46);
        assert!(m("less 46", &f));
        assert!(!m("less 45", &f));
        assert!(m("greater 46", &f));
        assert!(!m("greater 47", &f));
    }

    #[test]
    fn precedence_not_and_or() {
        // not > and > or: `icmp or tcp and port 53` is `icmp or (tcp and
        // port 53)`, which matches no TCP frame here.
        assert_eq!(which("icmp or tcp and port 53"), ["icmp"]);
        assert_eq!(which("(icmp or tcp) and port 80"), ["tcp4"]);
        assert_eq!(which("tcp and port 80 or icmp"), ["icmp", "tcp4"]);
        assert_eq!(which("not ip and not ip6"), ["arp"]);
        assert_eq!(which("!(ip || ip6)"), ["arp"]);
        assert_eq!(which("! ip && ! ip6"), ["arp"]);
        assert_eq!(which("not not arp"), ["arp"]);
        assert_eq!(which("not tcp and ip"), ["icmp", "udp4"]);
        assert_eq!(which("not (tcp and ip)").len(), 7);
        assert_eq!(which("arp or icmp and ip6 or icmp6"), ["arp", "icmp6"]);
        assert_eq!(which("((((arp))))"), ["arp"]);
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(which("TCP Port 80 AND Src Host 172.17.0.2"), ["tcp4"]);
        assert_eq!(which("Ether SRC 02:42:ac:11:00:02 aNd UdP").len(), 3);
    }

    #[test]
    fn display_is_canonical_and_parses_back() {
        for (input, canonical) in [
            ("tcp", "tcp"),
            ("TCP  &&  PORT 80", "tcp and port 80"),
            ("icmp or tcp and port 53", "icmp or tcp and port 53"),
            ("(icmp or tcp) and port 80", "(icmp or tcp) and port 80"),
            ("arp and (arp and (arp))", "arp and arp and arp"),
            ("!(ip || ip6)", "not (ip or ip6)"),
            ("!!arp", "not not arp"),
            ("src net 10.0.0.0/8", "src net 10.0.0.0/8"),
            ("net 10.1.2.3", "net 10.1.2.3/32"),
            ("ip6 dst host FD00::0:2", "ip6 dst host fd00::2"),
            ("udp dst portrange 10-20", "udp dst portrange 10-20"),
            ("portrange 80-80", "port 80"),
            (
                "ether src host 02:42:AC:11:00:02",
                "ether src 02:42:ac:11:00:02",
            ),
            ("broadcast", "ether broadcast"),
            ("ether proto 2054", "ether proto 0x0806"),
            ("ip proto \\udp", "ip proto 17"),
            ("vlan 0x10 or vlan", "vlan 16 or vlan"),
            ("less 0x40", "less 64"),
        ] {
            let f = Filter::parse(input).unwrap();
            assert_eq!(f.to_string(), canonical, "{input}");
            assert_eq!(Filter::parse(canonical).unwrap(), f, "{input}");
        }
    }

    #[test]
    fn parse_errors_name_the_token_and_its_position() {
        let e = err("tcp and prot 80");
        assert_eq!(
            (e.position, e.token.as_str(), &e.kind),
            (8, "prot", &FilterErrorKind::Expected("a primitive"))
        );
        assert_eq!(
            e.to_string(),
            "expected a primitive, found 'prot' at position 8"
        );

        let e = err("port 70000");
        assert_eq!((e.position, e.token.as_str()), (5, "70000"));
        assert_eq!(e.kind, FilterErrorKind::Invalid("number out of range"));

        let e = err("port x");
        assert_eq!((e.position, e.token.as_str()), (5, "x"));

        let e = err("host 1.2.3");
        assert_eq!((e.position, e.token.as_str()), (5, "1.2.3"));
        assert!(e.to_string().contains("not an IPv4 or IPv6 address"));

        // The end of the expression: the position is its length.
        let e = err("tcp and");
        assert_eq!((e.position, e.token.as_str()), (7, ""));
        assert_eq!(
            e.to_string(),
            "expected a primitive at the end of the filter (position 7)"
        );
        let e = err("src host");
        assert_eq!(e.position, 8);

        let e = err("(tcp or udp");
        assert_eq!((e.position, e.kind.clone()), (0, FilterErrorKind::Unclosed));
        assert_eq!(e.to_string(), "'(' at position 0 is never closed");

        let e = err("tcp)");
        assert_eq!((e.position, e.token.as_str()), (3, ")"));
        let e = err("(tcp udp)");
        assert_eq!((e.position, e.token.as_str()), (5, "udp"));
        assert_eq!(e.kind, FilterErrorKind::Expected("'and', 'or' or ')'"));
        let e = err("host 10.0.0.1 port 80");
        assert_eq!((e.position, e.token.as_str()), (14, "port"));

        let e = err("tcp & udp");
        assert_eq!((e.position, e.token.as_str()), (4, "&"));
        let e = err("tcp | udp");
        assert_eq!(e.position, 4);
        assert_eq!(err("()").position, 1);
        assert_eq!(err("and").position, 0);

        // Values in the wrong place.
        assert_eq!(err("net 10.0.0.1/8").token, "10.0.0.1/8");
        assert_eq!(err("net 10.0.0.0/33").token, "10.0.0.0/33");
        assert_eq!(err("ip host fd00::1").token, "fd00::1");
        assert_eq!(err("ip6 net 10.0.0.0/8").token, "10.0.0.0/8");
        assert_eq!(err("arp host ::1").token, "::1");
        assert_eq!(err("portrange 90-80").token, "90-80");
        assert_eq!(err("portrange 80").token, "80");
        assert_eq!(err("portrange 80-x").token, "80-x");
        assert_eq!(err("ether host 02:42").token, "02:42");
        assert_eq!(err("ether foo").token, "foo");
        assert_eq!(err("tcp src host 10.0.0.1").token, "host");
        assert_eq!(err("ip port 80").token, "port");
        assert_eq!(err("ip src port 80").token, "port");
        assert_eq!(err("vlan 4096").token, "4096");
        assert_eq!(err("ip proto 256").token, "256");
        assert_eq!(err("proto foo").token, "foo");
        assert_eq!(err("port +80").token, "+80");
        assert_eq!(err("less").position, 4);
        // Unicode in a token: positions are byte offsets, the token whole.
        let e = err("tcp and hôst 1");
        assert_eq!((e.position, e.token.as_str()), (8, "hôst"));
    }

    #[test]
    fn bounds_on_length_terms_and_nesting() {
        let ok = vec!["tcp"; MAX_TERMS].join(" or ");
        assert!(Filter::parse(&ok).is_ok());
        let over = vec!["tcp"; MAX_TERMS + 1].join(" or ");
        let e = err(&over);
        assert_eq!(e.kind, FilterErrorKind::TooManyTerms);
        assert_eq!(e.position, MAX_TERMS * "tcp or ".len());

        let deep = format!("{}arp{}", "(".repeat(MAX_NESTING), ")".repeat(MAX_NESTING));
        assert!(Filter::parse(&deep).is_ok());
        let deeper = format!("({deep})");
        let e = err(&deeper);
        assert_eq!((e.kind.clone(), e.position), (FilterErrorKind::TooDeep, 16));
        assert!(Filter::parse(&format!("{}arp", "!".repeat(MAX_NESTING))).is_ok());
        assert_eq!(
            err(&format!("{}arp", "not ".repeat(MAX_NESTING + 1))).kind,
            FilterErrorKind::TooDeep
        );

        let long = format!("tcp{}", " ".repeat(MAX_LEN - 3));
        assert!(Filter::parse(&long).is_ok());
        let e = err(&format!("{long} "));
        assert_eq!(e.kind, FilterErrorKind::TooLong { len: MAX_LEN + 1 });
    }

    #[test]
    fn garbage_frames_never_match_what_they_lack_and_never_panic() {
        let all = Filter::parse(
            "arp or ip or ip6 or icmp or icmp6 or tcp or udp or vlan or vlan 1 \
             or host 0.0.0.0 or host :: or net 0.0.0.0/0 or net ::/0 or port 0 \
             or portrange 0-65535 or ether host 00:00:00:00:00:00 or ether broadcast \
             or ether multicast or ether proto 0 or proto 0 or ip6 proto 0",
        )
        .unwrap();
        // Nothing shorter than an Ethernet header matches any of them.
        for n in 0..ethernet::HEADER_LEN {
            assert!(!all.matches(&[0u8; 14][..n]), "{n} zero bytes");
            assert!(!all.matches(&[0xffu8; 14][..n]), "{n} 0xff bytes");
        }
        assert!(Filter::parse("less 13").unwrap().matches(&[0; 13]));
        // Every prefix of every zoo frame, of tagged ones and of mangled
        // copies: anything may match, nothing may panic.
        let filters: Vec<Filter> = [
            "port 53",
            "host fd00::2 or host 172.17.0.2",
            "net 172.17.0.0/16 and tcp",
            "ip6 proto 17 or icmp6",
            "vlan 100 and udp",
            "not arp and ether multicast",
        ]
        .iter()
        .map(|e| Filter::parse(e).unwrap())
        .chain([all])
        .collect();
        let mut frames: Vec<Vec<u8>> = zoo().into_iter().map(|(_, f)| f).collect();
        frames.push(tagged(&udp6_hop_by_hop(), ethertype::VLAN, 100));
        for f in frames {
            for cut in 0..=f.len() {
                let mut g = f[..cut].to_vec();
                for flt in &filters {
                    flt.matches(&g);
                }
                for b in g.iter_mut().skip(12) {
                    *b ^= 0xa5;
                }
                for flt in &filters {
                    flt.matches(&g);
                }
            }
        }
        // A cut-off IPv4 header: `ip` (the EtherType) yes, addresses no.
        let f = &echo4()[..14 + 19];
        assert!(m("ip", f));
        assert!(!m("host 172.17.0.2", f));
        // Ports cut off after the IPv4 header.
        let f = ip4(A1, A2, protocol::TCP, &[0, 80, 0]);
        assert!(m("tcp", &f));
        assert!(!m("port 80 or port 0", &f));
        // An IPv6 chain that runs past the packet: `ip6`, not `udp`.
        let mut f = udp6_hop_by_hop();
        f[14 + 41] = 200;
        assert!(m("ip6 and ip6 proto 0 and host fd00::3", &f));
        assert!(!m("udp or port 53", &f));
        // An ARP packet for something other than Ethernet/IPv4.
        let mut f = arp_request(A1, A2);
        f[14] = 9;
        assert!(m("arp", &f));
        assert!(!m("host 172.17.0.2", &f));
    }

    /// Runs `exprs` through tcpdump's own compiler (libpcap) over `frames`
    /// and through ours; they must pick the same frames. `false` when
    /// tcpdump is not installed.
    fn agree(frames: &[(&str, Vec<u8>)], exprs: &[&str]) -> bool {
        let bytes: Vec<Vec<u8>> = frames.iter().map(|f| f.1.clone()).collect();
        let file = pcap_of(&bytes);
        for expr in exprs {
            let Some(out) =
                run_tool_with("tcpdump", "agree", &file, &["-nn", "-tt", "-r"], &[expr])
            else {
                return false;
            };
            // Record i is stamped TS + i µs: the first word of each line.
            let theirs: Vec<&str> = out
                .lines()
                .map(|l| {
                    let stamp = l.split_whitespace().next().unwrap_or_default();
                    let us: u64 = stamp.replace('.', "").parse().expect(l);
                    frames[(us - TS / 1000) as usize].0
                })
                .collect();
            let f = Filter::parse(expr).unwrap();
            let ours: Vec<&str> = frames
                .iter()
                .filter(|(_, b)| f.matches(b))
                .map(|(n, _)| *n)
                .collect();
            assert_eq!(ours, theirs, "{expr}");
        }
        true
    }

    /// Where the two agree by design: no `and` mixed with `or`
    /// unparenthesized, no IPv6 extension headers or VLAN tags in front of
    /// a primitive other than `vlan` (pcap walks neither).
    #[test]
    fn agrees_with_tcpdump() {
        let mut frames: Vec<(&str, Vec<u8>)> = zoo()
            .into_iter()
            .filter(|(n, _)| *n != "udp6-hbh")
            .collect();
        let mut mc = echo6();
        mc[..6].copy_from_slice(&[0x33, 0x33, 0, 0, 0, 1]);
        frames.push(("icmp6-mc", mc));
        let mut frag = ip4(A1, A2, protocol::UDP, &udp_dgram(5353, 53));
        frag[14 + 6..14 + 8].copy_from_slice(&185u16.to_be_bytes());
        frames.push(("udp4-frag", frag));
        let exprs = [
            "arp",
            "ip",
            "ip6",
            "icmp",
            "icmp6",
            "tcp",
            "udp",
            "vlan",
            "host 172.17.0.2",
            "src host 172.17.0.3",
            "dst host 172.17.0.3",
            "ip host 172.17.0.2",
            "arp host 172.17.0.3",
            "host fd00::2",
            "ip6 dst host fd00::3",
            "net 172.17.0.0/24",
            "src net 172.17.0.2/31",
            "net fd00::/8",
            "port 53",
            "src port 40000",
            "dst port 443",
            "tcp port 80",
            "udp port 80",
            "portrange 50-100",
            "tcp dst portrange 400-500",
            "ether host 02:42:ac:11:00:02",
            "ether src 02:42:ac:11:00:03",
            "ether dst 02:42:ac:11:00:03",
            "ether broadcast",
            "ether multicast",
            "ether proto 0x0806",
            "ip proto 17",
            "ip6 proto 58",
            "less 60",
            "greater 70",
            "not ip and not ip6",
            "icmp or arp",
            "(icmp or tcp) and not port 443",
            "!(udp || icmp6) && ip6",
        ];
        if !agree(&frames, &exprs) {
            return;
        }
        // One tagged frame: `vlan` and what follows it agree (pcap
        // shifts its offsets past the tag, we look through it).
        let tagged = [("vlan", tagged(&echo4(), ethertype::VLAN, 100))];
        agree(
            &tagged,
            &[
                "vlan",
                "vlan 100",
                "vlan 101",
                "vlan and icmp",
                "vlan 100 and host 172.17.0.3",
            ],
        );
    }
}
