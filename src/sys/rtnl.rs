//! A few rtnetlink requests: what the legacy ioctls cannot do, or cannot do
//! inside a user namespace.
//!
//! - `SIOCSIFTXQLEN` demands CAP_NET_ADMIN in the initial namespace, while
//!   `RTM_NEWLINK` with `IFLA_TXQLEN` only needs it in the namespace that
//!   owns the device, so a rootless container can set its queue length this
//!   way ([`set_txqueuelen`]).
//! - An IPv6 address through `SIOCSIFADDR` on an `in6_ifreq` cannot carry
//!   `IFA_F_NODAD`, so the address would stay tentative (unusable) for the
//!   second or so duplicate address detection takes; `RTM_NEWADDR` can
//!   ([`add_address_v6`]).
//! - The IPv6 default route ([`add_default_route_v6`]): `SIOCADDRT` on an
//!   `in6_rtmsg` could do it, but once netlink is here for the address one
//!   more message is simpler than a second ioctl struct layout.
//!
//! Each request is one message on a fresh `NETLINK_ROUTE` socket (in the
//! calling thread's network namespace), built by [`Msg`] (header, family
//! header, attributes, each padded to 4 bytes as `NLMSG_ALIGN`/`RTA_ALIGN`
//! ask), then one acknowledgement read back ([`parse_ack`]). Extended acks
//! are asked for, so a refusal carries the kernel's own explanation
//! ("Gateway can not be a local address") next to the errno.

use std::fmt;
use std::io;
use std::net::Ipv6Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::cvt_retry;

// <linux/netlink.h>
const NLMSG_HDRLEN: usize = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// In a reply: only the header of our request is echoed (NETLINK_CAP_ACK).
const NLM_F_CAPPED: u16 = 0x100;
/// In a reply: extended-ack attributes follow the echoed request.
const NLM_F_ACK_TLVS: u16 = 0x200;
/// With NLM_F_CREATE: fail with EEXIST rather than touch an existing object.
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_CAP_ACK: libc::c_int = 10;
const NETLINK_EXT_ACK: libc::c_int = 11;
/// enum nlmsgerr_attrs: the kernel's text explaining the error.
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_ALIGNTO: usize = 4;
const NLA_HDRLEN: usize = 4;

// <linux/rtnetlink.h>, <linux/if_link.h>, <linux/if_addr.h>
const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_NEWROUTE: u16 = 24;
const IFLA_TXQLEN: u16 = 13;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_NODAD: u32 = 0x02;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RT_TABLE_MAIN: u8 = 254;
/// What `ip route add` and `SIOCADDRT` record (so the IPv4 and IPv6
/// default routes of a container look alike in `ip route`).
const RTPROT_BOOT: u8 = 3;
const RT_SCOPE_UNIVERSE: u8 = 0;
const RTN_UNICAST: u8 = 1;
const AF_INET6: u8 = libc::AF_INET6 as u8;
const AF_UNSPEC: u8 = libc::AF_UNSPEC as u8;

/// Every request goes on a fresh socket, so one sequence number will do;
/// the reply must carry it.
const SEQ: u32 = 1;

const fn nla_align(n: usize) -> usize {
    (n + NLA_ALIGNTO - 1) & !(NLA_ALIGNTO - 1)
}

/// One rtnetlink message: `struct nlmsghdr`, the family header
/// (`ifinfomsg`, `ifaddrmsg`, `rtmsg`, given as bytes) and `struct rtattr`s.
/// Every part starts 4-byte aligned; an attribute's `rta_len` counts its
/// header and payload but not its padding, while `nlmsg_len` counts
/// everything, padding included (as iproute2's `addattr_l` does).
struct Msg {
    buf: Vec<u8>,
}

impl Msg {
    fn new(kind: u16, flags: u16, family_header: &[u8]) -> Msg {
        let mut buf = Vec::with_capacity(64);
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_len, set by finish
        buf.extend_from_slice(&kind.to_ne_bytes());
        buf.extend_from_slice(&(flags | NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
        buf.extend_from_slice(&SEQ.to_ne_bytes());
        buf.extend_from_slice(&0u32.to_ne_bytes()); // nlmsg_pid: 0 is "to the kernel"
        let mut m = Msg { buf };
        m.put_aligned(family_header);
        m
    }

    fn put_aligned(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.buf.resize(nla_align(self.buf.len()), 0);
    }

    fn attr(mut self, kind: u16, payload: &[u8]) -> Msg {
        let len = u16::try_from(NLA_HDRLEN + payload.len()).expect("attribute under 64 KiB");
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&kind.to_ne_bytes());
        self.put_aligned(payload);
        self
    }

    fn attr_u32(self, kind: u16, v: u32) -> Msg {
        self.attr(kind, &v.to_ne_bytes())
    }

    fn finish(mut self) -> Vec<u8> {
        let len = self.buf.len() as u32;
        self.buf[..4].copy_from_slice(&len.to_ne_bytes());
        self.buf
    }
}

/// `struct ifinfomsg` naming one interface, changing no flags.
fn ifinfomsg(ifindex: u32) -> [u8; 16] {
    let mut h = [0u8; 16];
    h[0] = AF_UNSPEC; // ifi_family; [1] pad, [2..4] ifi_type
    h[4..8].copy_from_slice(&(ifindex as i32).to_ne_bytes());
    // [8..12] ifi_flags, [12..16] ifi_change: 0, nothing to change
    h
}

/// `struct ifaddrmsg`.
fn ifaddrmsg(family: u8, prefix_len: u8, flags: u8, scope: u8, ifindex: u32) -> [u8; 8] {
    let mut h = [0u8; 8];
    h[0] = family;
    h[1] = prefix_len;
    h[2] = flags;
    h[3] = scope;
    h[4..8].copy_from_slice(&ifindex.to_ne_bytes());
    h
}

/// `struct rtmsg` of a route to `family`'s `dst_len` prefix in the main
/// table.
fn rtmsg(family: u8, dst_len: u8) -> [u8; 12] {
    [
        family,
        dst_len,
        0, // rtm_src_len
        0, // rtm_tos
        RT_TABLE_MAIN,
        RTPROT_BOOT,
        RT_SCOPE_UNIVERSE, // a gateway route reaches past the link
        RTN_UNICAST,
        0, // rtm_flags (u32): no RTNH_F_ONLINK, the gateway is in a prefix
        0, // of the interface and the kernel checks that it is
        0,
        0,
    ]
}

fn set_txqueuelen_msg(ifindex: u32, len: u32) -> Vec<u8> {
    Msg::new(RTM_NEWLINK, 0, &ifinfomsg(ifindex))
        .attr_u32(IFLA_TXQLEN, len)
        .finish()
}

fn add_address_v6_msg(ifindex: u32, ip: Ipv6Addr, prefix_len: u8) -> Vec<u8> {
    // NODAD goes twice: in the 8-bit ifa_flags for any kernel, and as the
    // 32-bit IFA_FLAGS attribute, which takes precedence where it exists
    // (3.14 on) and is where flags past the first byte have to go. The
    // scope is derived from the address by the kernel for IPv6.
    Msg::new(
        RTM_NEWADDR,
        NLM_F_CREATE | NLM_F_EXCL,
        &ifaddrmsg(
            AF_INET6,
            prefix_len,
            IFA_F_NODAD as u8,
            RT_SCOPE_UNIVERSE,
            ifindex,
        ),
    )
    // IFA_LOCAL and IFA_ADDRESS equal: an address of our own, no peer
    // (differing, IFA_ADDRESS would be a point-to-point peer).
    .attr(IFA_LOCAL, &ip.octets())
    .attr(IFA_ADDRESS, &ip.octets())
    .attr_u32(IFA_FLAGS, IFA_F_NODAD)
    .finish()
}

fn add_default_route_v6_msg(ifindex: u32, gateway: Ipv6Addr) -> Vec<u8> {
    // No RTA_DST: dst_len 0 is the default route. No RTA_PRIORITY: the
    // kernel gives user routes metric 1024, as `ip -6 route add` gets.
    Msg::new(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rtmsg(AF_INET6, 0))
        .attr(RTA_GATEWAY, &gateway.octets())
        .attr_u32(RTA_OIF, ifindex)
        .finish()
}

/// A request the kernel refused: its errno and, when it said, why.
///
/// Carried inside the `io::Error` the requests return: `kind()` is the
/// errno's (`AlreadyExists` for EEXIST), and the errno itself is
/// `e.get_ref().and_then(|e| e.downcast_ref::<NetlinkError>())`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetlinkError {
    pub errno: i32,
    /// The kernel's extended-ack text, e.g. "ipv6: address already assigned."
    pub message: Option<String>,
}

impl fmt::Display for NetlinkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let os = io::Error::from_raw_os_error(self.errno);
        match &self.message {
            Some(m) => write!(f, "{os}: {m}"),
            None => write!(f, "{os}"),
        }
    }
}

impl std::error::Error for NetlinkError {}

impl NetlinkError {
    fn into_io(self) -> io::Error {
        io::Error::new(io::Error::from_raw_os_error(self.errno).kind(), self)
    }
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn bad_reply(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected netlink reply: {what}"),
    )
}

/// Reads the acknowledgement of request `seq`: an `NLMSG_ERROR` message
/// whose `struct nlmsgerr` holds 0 (done) or a negative errno, then the
/// request echoed (its header only when capped, else whole) and, with
/// `NLM_F_ACK_TLVS`, attributes of which `NLMSGERR_ATTR_MSG` is the text.
fn parse_ack(reply: &[u8], seq: u32) -> io::Result<()> {
    let len = u32_at(reply, 0).ok_or_else(|| bad_reply("short"))? as usize;
    if len < NLMSG_HDRLEN + 4 || len > reply.len() {
        return Err(bad_reply("length"));
    }
    let reply = &reply[..len];
    if u16_at(reply, 4) != Some(NLMSG_ERROR) {
        return Err(bad_reply("not an acknowledgement"));
    }
    if u32_at(reply, 8) != Some(seq) {
        return Err(bad_reply("another request's sequence number"));
    }
    let flags = u16_at(reply, 6).unwrap_or(0);
    let err = u32_at(reply, NLMSG_HDRLEN).unwrap_or(0) as i32;
    if err == 0 {
        return Ok(());
    }
    let mut e = NetlinkError {
        errno: -err,
        message: None,
    };
    if flags & NLM_F_ACK_TLVS != 0 {
        let echoed_at = NLMSG_HDRLEN + 4;
        let echoed = if flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(reply, echoed_at).map_or(0, |l| l as usize)
        };
        let mut at = echoed_at + nla_align(echoed);
        while let (Some(alen), Some(kind)) = (u16_at(reply, at), u16_at(reply, at + 2)) {
            let alen = alen as usize;
            if alen < NLA_HDRLEN || at + alen > reply.len() {
                break;
            }
            if kind == NLMSGERR_ATTR_MSG {
                let text = &reply[at + NLA_HDRLEN..at + alen];
                let text = text.split(|&b| b == 0).next().unwrap_or(&[]);
                e.message = Some(String::from_utf8_lossy(text).into_owned());
            }
            at += nla_align(alen);
        }
    }
    Err(e.into_io())
}

fn netlink_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2), owned at once.
    let fd = unsafe {
        libc::socket(
            libc::AF_NETLINK,
            libc::SOCK_RAW | libc::SOCK_CLOEXEC,
            libc::NETLINK_ROUTE,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor, ours alone.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    // Best effort, both: a kernel without them (before 4.2 and 4.12) still
    // answers, only with the whole request echoed and no explanation.
    for opt in [NETLINK_CAP_ACK, NETLINK_EXT_ACK] {
        let one: libc::c_int = 1;
        // SAFETY: setsockopt reads one int from a pointer to a local.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                SOL_NETLINK,
                opt,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
    }
    Ok(sock)
}

/// Sends one request and waits for its acknowledgement. The kernel handles
/// a request within `sendto` and queues the ack before it returns, so the
/// `recv` does not wait on anything but the kernel.
fn request(msg: &[u8]) -> io::Result<()> {
    let sock = netlink_socket()?;
    // SAFETY: sockaddr_nl is plain data; zeroed means "the kernel".
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    let sent = cvt_retry(|| {
        // SAFETY: sendto with our buffer and a sockaddr_nl of its exact size.
        unsafe {
            libc::sendto(
                sock.as_raw_fd(),
                msg.as_ptr().cast(),
                msg.len(),
                0,
                (&sa as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        }
    })?;
    if sent != msg.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "netlink request sent in part",
        ));
    }
    // Room for the capped ack and the kernel's message; a longer reply
    // (no NETLINK_CAP_ACK) is cut, and only its start is read anyway.
    let mut buf = [0u8; 4096];
    let n = cvt_retry(|| {
        // SAFETY: recv into our buffer, bounded by its length.
        unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) }
    })?;
    parse_ack(&buf[..n], SEQ)
}

/// Sets the transmit queue length of the interface with index `ifindex`.
pub fn set_txqueuelen(ifindex: u32, len: u32) -> io::Result<()> {
    request(&set_txqueuelen_msg(ifindex, len))
}

/// Adds the static IPv6 address `ip/prefix_len` to interface `ifindex`,
/// with `IFA_F_NODAD`: never tentative, usable at once (whoever picked it
/// guarantees it is unique on the link), even while the interface is still
/// down. The kernel adds the prefix route `prefix/len dev IF` once the
/// interface is up. EEXIST (`AlreadyExists`) if it has that address already.
pub fn add_address_v6(ifindex: u32, ip: Ipv6Addr, prefix_len: u8) -> io::Result<()> {
    request(&add_address_v6_msg(ifindex, ip, prefix_len))
}

/// Adds the IPv6 default route via `gateway` on interface `ifindex` to the
/// main table. The gateway must be on the interface's link: in the prefix
/// of one of its addresses, whose prefix route exists only while the
/// interface is up, or link-local. Otherwise the kernel refuses with
/// EHOSTUNREACH, which is also what a gateway in the prefix gets before
/// up. EEXIST (`AlreadyExists`) if that route is there already.
pub fn add_default_route_v6(ifindex: u32, gateway: Ipv6Addr) -> io::Result<()> {
    request(&add_default_route_v6_msg(ifindex, gateway))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u16s(b: &[u8], at: usize) -> u16 {
        u16_at(b, at).unwrap()
    }

    fn u32s(b: &[u8], at: usize) -> u32 {
        u32_at(b, at).unwrap()
    }

    /// The attributes after the family header: (type, payload), checking
    /// each starts aligned and the walk ends exactly at the message's end.
    fn attrs(m: &[u8], family_len: usize) -> Vec<(u16, Vec<u8>)> {
        let mut at = NLMSG_HDRLEN + family_len;
        let mut out = Vec::new();
        while at < m.len() {
            assert_eq!(at % 4, 0, "attribute at {at} not aligned");
            let len = u16s(m, at) as usize;
            assert!(len >= NLA_HDRLEN && at + len <= m.len());
            out.push((u16s(m, at + 2), m[at + NLA_HDRLEN..at + len].to_vec()));
            at += nla_align(len);
        }
        assert_eq!(at, m.len(), "attributes overrun the message");
        out
    }

    fn header_ok(m: &[u8], kind: u16, flags: u16) {
        assert_eq!(u32s(m, 0) as usize, m.len(), "nlmsg_len");
        assert_eq!(m.len() % 4, 0);
        assert_eq!(u16s(m, 4), kind);
        assert_eq!(u16s(m, 6), flags);
        assert_eq!(u32s(m, 8), SEQ);
        assert_eq!(u32s(m, 12), 0, "nlmsg_pid");
    }

    #[test]
    fn constants_match_libc() {
        assert_eq!(RTM_NEWLINK, libc::RTM_NEWLINK);
        assert_eq!(RTM_NEWADDR, libc::RTM_NEWADDR);
        assert_eq!(RTM_NEWROUTE, libc::RTM_NEWROUTE);
        assert_eq!(NLMSG_ERROR as libc::c_int, libc::NLMSG_ERROR);
        assert_eq!(NLM_F_REQUEST as libc::c_int, libc::NLM_F_REQUEST);
        assert_eq!(NLM_F_ACK as libc::c_int, libc::NLM_F_ACK);
        assert_eq!(NLM_F_EXCL as libc::c_int, libc::NLM_F_EXCL);
        assert_eq!(NLM_F_CREATE as libc::c_int, libc::NLM_F_CREATE);
        assert_eq!(NLM_F_CAPPED as libc::c_int, libc::NLM_F_CAPPED);
        assert_eq!(NLM_F_ACK_TLVS as libc::c_int, libc::NLM_F_ACK_TLVS);
        assert_eq!(SOL_NETLINK, libc::SOL_NETLINK);
        assert_eq!(NETLINK_CAP_ACK, libc::NETLINK_CAP_ACK);
        assert_eq!(NETLINK_EXT_ACK, libc::NETLINK_EXT_ACK);
        assert_eq!(IFLA_TXQLEN, libc::IFLA_TXQLEN);
        assert_eq!(IFA_ADDRESS, libc::IFA_ADDRESS);
        assert_eq!(IFA_LOCAL, libc::IFA_LOCAL);
        assert_eq!(IFA_FLAGS, libc::IFA_FLAGS);
        assert_eq!(IFA_F_NODAD, libc::IFA_F_NODAD);
        assert_eq!(RTA_OIF, libc::RTA_OIF);
        assert_eq!(RTA_GATEWAY, libc::RTA_GATEWAY);
        assert_eq!(RT_TABLE_MAIN, libc::RT_TABLE_MAIN);
        assert_eq!(RTPROT_BOOT, libc::RTPROT_BOOT);
        assert_eq!(RT_SCOPE_UNIVERSE, libc::RT_SCOPE_UNIVERSE);
        assert_eq!(RTN_UNICAST, libc::RTN_UNICAST);
    }

    #[test]
    fn txqueuelen_message_is_the_one_sent_before_the_builder() {
        // The 40 bytes set_txqueuelen built by hand before `Msg` existed.
        let mut want = Vec::new();
        want.extend_from_slice(&40u32.to_ne_bytes());
        want.extend_from_slice(&16u16.to_ne_bytes());
        want.extend_from_slice(&5u16.to_ne_bytes());
        want.extend_from_slice(&1u32.to_ne_bytes());
        want.extend_from_slice(&0u32.to_ne_bytes());
        want.extend_from_slice(&[0, 0, 0, 0]);
        want.extend_from_slice(&7i32.to_ne_bytes());
        want.extend_from_slice(&[0; 8]);
        want.extend_from_slice(&8u16.to_ne_bytes());
        want.extend_from_slice(&13u16.to_ne_bytes());
        want.extend_from_slice(&1234u32.to_ne_bytes());
        assert_eq!(set_txqueuelen_msg(7, 1234), want);
    }

    #[test]
    fn attributes_are_padded_but_their_length_is_not() {
        let m = Msg::new(RTM_NEWLINK, 0, &ifinfomsg(1))
            .attr(3, b"eth0\0") // IFLA_IFNAME: 5 bytes, 3 of padding
            .attr_u32(IFLA_TXQLEN, 9)
            .attr(0x7fff, &[])
            .finish();
        header_ok(&m, RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
        assert_eq!(m.len(), 16 + 16 + 12 + 8 + 4);
        assert_eq!(u16s(&m, 32), 9, "rta_len excludes the padding");
        assert_eq!(&m[36..44], b"eth0\0\0\0\0", "padding is zeros");
        assert_eq!(
            attrs(&m, 16),
            vec![
                (3, b"eth0\0".to_vec()),
                (IFLA_TXQLEN, 9u32.to_ne_bytes().to_vec()),
                (0x7fff, vec![]),
            ]
        );
        // A family header whose size is not a multiple of 4 is padded too.
        let m = Msg::new(1, 0, &[1, 2, 3, 4, 5]).attr_u32(1, 2).finish();
        assert_eq!(m.len(), 16 + 8 + 8);
        assert_eq!(&m[16..24], &[1, 2, 3, 4, 5, 0, 0, 0]);
    }

    #[test]
    fn address_message() {
        let ip: Ipv6Addr = "2001:db8:6::2".parse().unwrap();
        let m = add_address_v6_msg(3, ip, 64);
        header_ok(
            &m,
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        );
        // ifaddrmsg: family, prefix, flags, scope, index.
        assert_eq!(&m[16..20], &[libc::AF_INET6 as u8, 64, 0x02, 0]);
        assert_eq!(u32s(&m, 20), 3);
        assert_eq!(
            attrs(&m, 8),
            vec![
                (IFA_LOCAL, ip.octets().to_vec()),
                (IFA_ADDRESS, ip.octets().to_vec()),
                (IFA_FLAGS, IFA_F_NODAD.to_ne_bytes().to_vec()),
            ]
        );
        assert_eq!(m.len(), 16 + 8 + 20 + 20 + 8);
    }

    #[test]
    fn default_route_message() {
        let gw: Ipv6Addr = "2001:db8:6::1".parse().unwrap();
        let m = add_default_route_v6_msg(5, gw);
        header_ok(
            &m,
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        );
        // rtmsg: family, dst_len, src_len, tos, table, protocol, scope, type.
        assert_eq!(
            &m[16..24],
            &[libc::AF_INET6 as u8, 0, 0, 0, 254, 3, 0, 1],
            "main table, proto boot, scope universe, unicast"
        );
        assert_eq!(u32s(&m, 24), 0, "rtm_flags: no onlink");
        assert_eq!(
            attrs(&m, 12),
            vec![
                (RTA_GATEWAY, gw.octets().to_vec()),
                (RTA_OIF, 5u32.to_ne_bytes().to_vec()),
            ]
        );
        assert_eq!(m.len(), 16 + 12 + 20 + 8);
    }

    /// An NLMSG_ERROR reply as the kernel writes it for `request`.
    fn ack(err: i32, flags: u16, echo: &[u8], tlvs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&err.to_ne_bytes());
        body.extend_from_slice(echo);
        body.resize(nla_align(body.len()), 0);
        let mut m = Msg::new(NLMSG_ERROR, 0, &body);
        for (k, v) in tlvs {
            m = m.attr(*k, v);
        }
        let mut m = m.finish();
        m[6..8].copy_from_slice(&flags.to_ne_bytes());
        m
    }

    #[test]
    fn acks_are_read() {
        let req = add_default_route_v6_msg(5, Ipv6Addr::LOCALHOST);
        assert!(parse_ack(&ack(0, NLM_F_CAPPED, &req[..16], &[]), SEQ).is_ok());

        // Capped, with the kernel's text.
        let r = ack(
            -libc::EEXIST,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            &req[..16],
            &[(NLMSGERR_ATTR_MSG, b"ipv6: address already assigned.\0")],
        );
        let e = parse_ack(&r, SEQ).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
        let ne = e.get_ref().unwrap().downcast_ref::<NetlinkError>().unwrap();
        assert_eq!(ne.errno, libc::EEXIST);
        assert_eq!(
            ne.message.as_deref(),
            Some("ipv6: address already assigned.")
        );
        assert!(e.to_string().contains("address already assigned"), "{e}");

        // Not capped: the whole request is echoed before the attributes.
        let r = ack(
            -libc::EINVAL,
            NLM_F_ACK_TLVS,
            &req,
            &[
                (4, &[0, 0, 0, 0][..]), // NLMSGERR_ATTR_OFFS, skipped
                (NLMSGERR_ATTR_MSG, b"Gateway can not be a local address\0"),
            ],
        );
        let e = parse_ack(&r, SEQ).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains("local address"), "{e}");

        // No text: just the errno.
        let e = parse_ack(&ack(-libc::ENETDOWN, 0, &req[..16], &[]), SEQ).unwrap_err();
        let ne = e.get_ref().unwrap().downcast_ref::<NetlinkError>().unwrap();
        assert_eq!((ne.errno, ne.message.as_deref()), (libc::ENETDOWN, None));
    }

    #[test]
    fn odd_replies_are_refused() {
        let good = ack(0, NLM_F_CAPPED, &[0; 16], &[]);
        assert!(parse_ack(&good[..10], SEQ).is_err(), "short");
        assert!(parse_ack(&good[..good.len() - 4], SEQ).is_err(), "cut");
        assert!(parse_ack(&good, SEQ + 1).is_err(), "another sequence");
        let mut other = good.clone();
        other[4..6].copy_from_slice(&RTM_NEWADDR.to_ne_bytes());
        assert!(parse_ack(&other, SEQ).is_err(), "not an ack");
        // A broken attribute ends the walk; the errno still comes back.
        let mut r = ack(
            -libc::EPERM,
            NLM_F_CAPPED | NLM_F_ACK_TLVS,
            &[0; 16],
            &[(NLMSGERR_ATTR_MSG, b"x\0")],
        );
        let at = NLMSG_HDRLEN + 4 + NLMSG_HDRLEN;
        r[at..at + 2].copy_from_slice(&200u16.to_ne_bytes());
        let e = parse_ack(&r, SEQ).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
    }
}
