//! Every socket system call lanyard makes, in one place: host sockets for
//! NAT flows, DNS queries and published ports, and the AF_PACKET sockets of
//! attached interfaces. On `socket2` where it covers the call (socket,
//! bind, connect, listen, accept, linger, shutdown, options, addresses of
//! both families, send and receive with flags); on libc only for what it
//! lacks: `SO_PEEK_OFF`, `SO_MEMINFO`, `SIOCOUTQ` and the AF_PACKET
//! options. Every descriptor is non-blocking and close-on-exec; every call
//! returns `io::Result` and is retried on EINTR.
//!
//! The data path holds its sockets as `OwnedFd`s and calls in with their
//! raw descriptors; [`on`] lends one to socket2 for the call.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

/// Lends a descriptor to socket2 for the call `f` makes with it.
fn on<T>(fd: RawFd, f: impl FnOnce(&SockRef<'_>) -> T) -> T {
    // SAFETY: every caller passes the descriptor of a socket it owns (an
    // `OwnedFd` it holds across the call), so it stays open for the
    // borrow, which ends when `f` returns.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    f(&SockRef::from(&b))
}

/// Views an initialised byte buffer as the `MaybeUninit` one socket2's
/// receive calls take.
fn uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`, and every `u8` is a
    // valid `MaybeUninit<u8>`; the kernel only ever writes initialised
    // bytes into it, so the buffer stays initialised for the caller.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}

/// Retries a socket2 call on EINTR.
fn retry<T>(mut f: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match f() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

fn domain(a: &SocketAddr) -> Domain {
    if a.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    }
}

/// A new non-blocking, close-on-exec socket.
fn socket(domain: Domain, ty: Type, proto: Protocol) -> io::Result<OwnedFd> {
    let s = Socket::new(domain, ty.nonblocking().cloexec(), Some(proto))?;
    Ok(s.into())
}

/// Starts a connect; `Ok(())` also when it is in progress (EINPROGRESS).
pub fn connect(fd: RawFd, to: SocketAddr) -> io::Result<()> {
    match on(fd, |s| s.connect(&SockAddr::from(to))) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Sets an integer socket option (what socket2 does not name).
pub fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option is an int; we pass a pointer to one and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The pending error of a socket (how a non-blocking connect ended).
pub fn take_error(fd: RawFd) -> io::Result<Option<io::Error>> {
    on(fd, |s| s.take_error())
}

/// Enables SO_PEEK_OFF at `off`; false if the kernel lacks it for TCP
/// (before Linux 6.9).
pub fn set_peek_off(fd: RawFd, off: u32) -> bool {
    setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_PEEK_OFF, off as libc::c_int).is_ok()
}

/// Bytes in a TCP socket's send queue (unsent plus unacknowledged).
pub fn outq(fd: RawFd) -> io::Result<usize> {
    let mut v: libc::c_int = 0;
    // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int.
    let r = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut v as *mut libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v.max(0) as usize)
}

pub fn sndbuf(fd: RawFd) -> io::Result<usize> {
    on(fd, |s| s.send_buffer_size())
}

/// The send buffer's size and what is queued in it, in the kernel's own
/// accounting (SO_MEMINFO: `sndbuf` and `wmem_queued`, which counts buffer
/// overhead too), with one syscall.
pub fn send_buffer(fd: RawFd) -> io::Result<(usize, usize)> {
    // SK_MEMINFO_VARS, which libc does not export.
    let mut v = [0u32; 9];
    let mut len = std::mem::size_of_val(&v) as libc::socklen_t;
    // SAFETY: SO_MEMINFO fills up to `len` bytes of u32 counters.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            v.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok((
        v[libc::SK_MEMINFO_SNDBUF as usize] as usize,
        v[libc::SK_MEMINFO_WMEM_QUEUED as usize] as usize,
    ))
}

/// recv(2) with flags (MSG_PEEK, MSG_TRUNC), never blocking. With
/// MSG_TRUNC on TCP the kernel discards without writing into `buf`; on a
/// packet socket it reports a frame's whole length.
pub fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    let buf = uninit(buf);
    on(fd, |s| {
        retry(|| s.recv_with_flags(buf, flags | libc::MSG_DONTWAIT))
    })
}

/// Whether the peer of a stream socket has closed it (an orderly end with
/// nothing left to read), without blocking or taking any byte.
pub fn peer_closed(fd: RawFd) -> bool {
    let mut b = [0u8; 1];
    matches!(recv(fd, &mut b, libc::MSG_PEEK | libc::MSG_DONTWAIT), Ok(0))
}

/// send(2) without SIGPIPE, never blocking.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    on(fd, |s| {
        retry(|| s.send_with_flags(buf, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL))
    })
}

/// recvfrom(2): the byte count and the sender, of either family.
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    let buf = uninit(buf);
    let (n, from) = on(fd, |s| {
        retry(|| s.recv_from_with_flags(buf, libc::MSG_DONTWAIT))
    })?;
    let from = from
        .as_socket()
        .ok_or_else(|| io::Error::other("unknown address family"))?;
    Ok((n, from))
}

/// sendto(2) an address of either family, without SIGPIPE.
pub fn send_to(fd: RawFd, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
    let to = SockAddr::from(to);
    on(fd, |s| {
        retry(|| s.send_to_with_flags(buf, &to, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL))
    })
}

/// The `UDP_SEGMENT` control message: a cmsghdr and its u16, padded to
/// CMSG_SPACE(2) and aligned as the kernel reads control messages.
#[repr(C, align(8))]
struct SegmentCmsg {
    hdr: libc::cmsghdr,
    segment: u16,
    _pad: [u8; 6],
}

/// One sendmsg(2) of `buf` on a UDP socket as datagrams of `segment` bytes
/// each, the last one possibly shorter, to `to` (a published port's shared
/// socket answering one client) or, with `None`, to the socket's connected
/// remote: UDP GSO
/// (`UDP_SEGMENT`, Linux 4.18). The stack carries them as one packet as far
/// as it can (to the device, or through a veth to the receiving socket) and
/// splits them there, so the per-datagram cost of the send path is paid
/// once. EMSGSIZE when a segment would not fit the route's MTU, EINVAL when
/// there are too many, EIO when the device cannot checksum them: the caller
/// then sends them one by one.
pub fn send_segments(
    fd: RawFd,
    buf: &[u8],
    segment: u16,
    to: Option<SocketAddr>,
) -> io::Result<usize> {
    // CMSG_LEN(2): the header, then the value with no padding before it.
    let cmsg = SegmentCmsg {
        hdr: libc::cmsghdr {
            cmsg_len: (size_of::<libc::cmsghdr>() + size_of::<u16>()) as _,
            cmsg_level: libc::SOL_UDP,
            cmsg_type: libc::UDP_SEGMENT,
        },
        segment,
        _pad: [0; 6],
    };
    // SAFETY: `SegmentCmsg` is plain data with no padding bytes before
    // `_pad` (a 16-byte header, then the u16), all of it initialised; the
    // slice borrows `cmsg` for this call only.
    let control = unsafe {
        std::slice::from_raw_parts(
            &cmsg as *const SegmentCmsg as *const u8,
            size_of::<SegmentCmsg>(),
        )
    };
    let iov = [io::IoSlice::new(buf)];
    let to = to.map(SockAddr::from);
    let mut msg = socket2::MsgHdr::new()
        .with_buffers(&iov)
        .with_control(control);
    if let Some(to) = &to {
        msg = msg.with_addr(to);
    }
    on(fd, |s| {
        retry(|| s.sendmsg(&msg, libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL))
    })
}

pub fn shutdown_write(fd: RawFd) {
    let _ = on(fd, |s| s.shutdown(std::net::Shutdown::Write));
}

/// Makes close() send a RST instead of a FIN (SO_LINGER with 0 s).
pub fn set_linger_zero(fd: RawFd) {
    let _ = on(fd, |s| s.set_linger(Some(Duration::ZERO)));
}

/// The source addresses outbound flows leave from, when the process was
/// told (slirp4netns's `--outbound-addr`, `--outbound-addr6`); set once,
/// before the data path starts. Unset: the kernel picks, by route.
static OUTBOUND: std::sync::OnceLock<(Option<std::net::Ipv4Addr>, Option<std::net::Ipv6Addr>)> =
    std::sync::OnceLock::new();

/// Sets the outbound source addresses (once; later calls are ignored).
pub fn set_outbound(v4: Option<std::net::Ipv4Addr>, v6: Option<std::net::Ipv6Addr>) {
    let _ = OUTBOUND.set((v4, v6));
}

/// Binds a new outbound socket to the outbound source of `to`'s family,
/// when there is one.
fn bind_outbound(fd: RawFd, to: &SocketAddr) -> io::Result<()> {
    let from: Option<SocketAddr> = match (OUTBOUND.get(), to) {
        (Some((Some(a), _)), SocketAddr::V4(_)) => Some((*a, 0).into()),
        (Some((_, Some(a))), SocketAddr::V6(_)) => Some((*a, 0).into()),
        _ => None,
    };
    match from {
        Some(a) => on(fd, |s| s.bind(&a.into())),
        None => Ok(()),
    }
}

/// A new TCP socket, connecting to `to`.
pub fn tcp_connect(to: SocketAddr) -> io::Result<OwnedFd> {
    let fd = socket(domain(&to), Type::STREAM, Protocol::TCP)?;
    bind_outbound(fd.as_raw_fd(), &to)?;
    // The container's own stack already coalesces small writes (Nagle);
    // a second Nagle here would only add a round trip of delay.
    let _ = on(fd.as_raw_fd(), |s| s.set_tcp_nodelay(true));
    connect(fd.as_raw_fd(), to)?;
    Ok(fd)
}

/// A new UDP socket connected to `to` (replies from anyone else are
/// filtered by the kernel, as port-restricted NAT does).
pub fn udp_connect(to: SocketAddr) -> io::Result<OwnedFd> {
    let fd = socket(domain(&to), Type::DGRAM, Protocol::UDP)?;
    bind_outbound(fd.as_raw_fd(), &to)?;
    connect(fd.as_raw_fd(), to)?;
    Ok(fd)
}

/// An unbound UDP socket of either family (a DNS query's own: the kernel
/// binds it to a random port at the first send).
pub fn udp_socket(v6: bool) -> io::Result<OwnedFd> {
    let d = if v6 { Domain::IPV6 } else { Domain::IPV4 };
    socket(d, Type::DGRAM, Protocol::UDP)
}

/// An unprivileged ICMP echo socket; fails with EACCES when the host's
/// `net.ipv4.ping_group_range` excludes our group.
pub fn ping_socket(v6: bool) -> io::Result<OwnedFd> {
    if v6 {
        socket(Domain::IPV6, Type::DGRAM, Protocol::ICMPV6)
    } else {
        socket(Domain::IPV4, Type::DGRAM, Protocol::ICMPV4)
    }
}

/// A listening (TCP) or bound (UDP) socket on `addr`; port 0 picks one.
/// IPv6 sockets are IPv6-only, so `[::]` and `0.0.0.0` can both be bound.
pub fn bind_listener(tcp: bool, addr: SocketAddr) -> io::Result<OwnedFd> {
    let (ty, proto) = if tcp {
        (Type::STREAM, Protocol::TCP)
    } else {
        (Type::DGRAM, Protocol::UDP)
    };
    let s = Socket::new(domain(&addr), ty.nonblocking().cloexec(), Some(proto))?;
    if tcp {
        s.set_reuse_address(true)?;
    }
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&SockAddr::from(addr))?;
    if tcp {
        s.listen(1024)?;
    }
    Ok(s.into())
}

/// The address a socket is bound to (the port the kernel chose for 0).
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    on(fd, |s| s.local_addr())?
        .as_socket()
        .ok_or_else(|| io::Error::other("unknown address family"))
}

/// accept4(2): a non-blocking, close-on-exec connection and its peer.
pub fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    let (c, peer) = on(fd, |s| retry(|| s.accept()))?;
    c.set_nonblocking(true)?;
    let peer = peer
        .as_socket()
        .ok_or_else(|| io::Error::other("unknown address family"))?;
    Ok((c.into(), peer))
}

/// dup(2) with close-on-exec.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: the caller owns `fd` for the call.
    let b = unsafe { BorrowedFd::borrow_raw(fd) };
    b.try_clone_to_owned()
}

/// An AF_PACKET socket bound to interface `ifindex`, all protocols, with
/// the virtio-net header (`PACKET_VNET_HDR`), without its own sends coming
/// back (`PACKET_IGNORE_OUTGOING`), promiscuous, and past the qdisc when
/// the kernel allows (`PACKET_QDISC_BYPASS`, best effort).
pub fn packet_socket(ifindex: u32) -> io::Result<OwnedFd> {
    let all = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
    let s = Socket::new(
        Domain::PACKET,
        Type::RAW.nonblocking().cloexec(),
        Some(Protocol::from(all)),
    )?;
    let fd = s.as_raw_fd();
    setsockopt_int(fd, libc::SOL_PACKET, libc::PACKET_VNET_HDR, 1)?;
    setsockopt_int(fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1)?;
    // Best effort: skipping the qdisc only saves time.
    let _ = setsockopt_int(fd, libc::SOL_PACKET, libc::PACKET_QDISC_BYPASS, 1);
    let mreq = libc::packet_mreq {
        mr_ifindex: ifindex as libc::c_int,
        mr_type: libc::PACKET_MR_PROMISC as libc::c_ushort,
        mr_alen: 0,
        mr_address: [0; 8],
    };
    // SAFETY: PACKET_ADD_MEMBERSHIP reads one packet_mreq.
    let r = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_ADD_MEMBERSHIP,
            (&mreq as *const libc::packet_mreq).cast(),
            size_of::<libc::packet_mreq>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: sockaddr_ll is plain data; zeroed is a valid value.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    sll.sll_family = libc::AF_PACKET as u16;
    sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
    sll.sll_ifindex = ifindex as i32;
    // SAFETY: bind with a sockaddr_ll and its exact size.
    let r = unsafe {
        libc::bind(
            fd,
            (&sll as *const libc::sockaddr_ll).cast(),
            size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor is socket2's, handed over whole.
    Ok(unsafe { OwnedFd::from_raw_fd(s.into_raw_fd()) })
}

/// send(2) of one frame on a packet socket (no SIGPIPE there).
pub fn send_frame(fd: RawFd, frame: &[u8]) -> io::Result<usize> {
    on(fd, |s| {
        retry(|| s.send_with_flags(frame, libc::MSG_DONTWAIT))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_udp_both_families_and_peek() {
        let a = bind_listener(false, "127.0.0.1:0".parse().unwrap()).unwrap();
        let at = local_addr(a.as_raw_fd()).unwrap();
        let b = udp_connect(at).unwrap();
        assert_eq!(send(b.as_raw_fd(), b"hello").unwrap(), 5);
        let mut buf = [0u8; 16];
        // A peek leaves it there; the read takes it, with the sender.
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(recv(a.as_raw_fd(), &mut buf, libc::MSG_PEEK).unwrap(), 5);
        let (n, from) = recv_from(a.as_raw_fd(), &mut buf).unwrap();
        assert_eq!(
            (&buf[..n], from),
            (&b"hello"[..], local_addr(b.as_raw_fd()).unwrap())
        );
        assert_eq!(
            recv(a.as_raw_fd(), &mut buf, 0).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // The reply goes back with sendto.
        assert_eq!(send_to(a.as_raw_fd(), b"hi", from).unwrap(), 2);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(recv(b.as_raw_fd(), &mut buf, 0).unwrap(), 2);
    }

    #[test]
    fn tcp_connect_in_progress_accept_and_reset() {
        let l = bind_listener(true, "127.0.0.1:0".parse().unwrap()).unwrap();
        let at = local_addr(l.as_raw_fd()).unwrap();
        let c = tcp_connect(at).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        assert!(take_error(c.as_raw_fd()).unwrap().is_none());
        let (s, peer) = accept(l.as_raw_fd()).unwrap();
        assert_eq!(peer, local_addr(c.as_raw_fd()).unwrap());
        assert_eq!(send(c.as_raw_fd(), b"abc").unwrap(), 3);
        std::thread::sleep(Duration::from_millis(20));
        let (size, queued) = send_buffer(c.as_raw_fd()).unwrap();
        assert!(size > 0 && queued <= size);
        let mut buf = [0u8; 8];
        assert_eq!(recv(s.as_raw_fd(), &mut buf, libc::MSG_TRUNC).unwrap(), 3);
        set_linger_zero(s.as_raw_fd());
        drop(s);
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            recv(c.as_raw_fd(), &mut buf, 0).unwrap_err().raw_os_error(),
            Some(libc::ECONNRESET)
        );
    }
}
