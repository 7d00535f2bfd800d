//! Host sockets for NAT flows: thin libc wrappers with the flags the
//! translation needs (non-blocking connect, MSG_PEEK with SO_PEEK_OFF,
//! MSG_TRUNC discards, SIOCOUTQ), each returning `io::Result`.

use std::io;
use std::mem::size_of;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::sys::cvt_retry;

const SO_PEEK_OFF: libc::c_int = 42;
const SIOCOUTQ: libc::Ioctl = 0x5411; // TIOCOUTQ

fn sockaddr_in(a: SocketAddrV4) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: a.port().to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(a.ip().octets()),
        },
        sin_zero: [0; 8],
    }
}

fn v4(a: SocketAddr) -> io::Result<SocketAddrV4> {
    match a {
        SocketAddr::V4(a) => Ok(a),
        SocketAddr::V6(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "IPv6 flows are not supported yet",
        )),
    }
}

/// A new non-blocking, close-on-exec IPv4 socket.
pub fn socket(ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    socket_of(libc::AF_INET, ty, proto)
}

/// A new non-blocking, close-on-exec socket of `family`.
fn socket_of(family: libc::c_int, ty: libc::c_int, proto: libc::c_int) -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is owned at once.
    let fd = unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Starts a connect; `Ok(())` also when it is in progress (EINPROGRESS).
pub fn connect(fd: RawFd, to: SocketAddr) -> io::Result<()> {
    let sa = sockaddr_in(v4(to)?);
    // SAFETY: connect with a sockaddr_in of its exact size.
    let r = unsafe {
        libc::connect(
            fd,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EINPROGRESS) {
        return Ok(());
    }
    Err(e)
}

fn getsockopt_int(fd: RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<libc::c_int> {
    let mut v: libc::c_int = 0;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: the option is an int; we pass a pointer to one and its size.
    let r = unsafe {
        libc::getsockopt(
            fd,
            level,
            name,
            (&mut v as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v)
}

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
    let e = getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_ERROR)?;
    Ok((e != 0).then(|| io::Error::from_raw_os_error(e)))
}

/// Enables SO_PEEK_OFF at `off`; false if the kernel lacks it for TCP
/// (before Linux 6.9).
pub fn set_peek_off(fd: RawFd, off: u32) -> bool {
    setsockopt_int(fd, libc::SOL_SOCKET, SO_PEEK_OFF, off as libc::c_int).is_ok()
}

/// Bytes in a TCP socket's send queue (unsent plus unacknowledged).
pub fn outq(fd: RawFd) -> io::Result<usize> {
    let mut v: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int.
    let r = unsafe { libc::ioctl(fd, SIOCOUTQ, &mut v as *mut libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(v.max(0) as usize)
}

pub fn sndbuf(fd: RawFd) -> io::Result<usize> {
    Ok(getsockopt_int(fd, libc::SOL_SOCKET, libc::SO_SNDBUF)?.max(0) as usize)
}

const SO_MEMINFO: libc::c_int = 55;

/// The send buffer's size and what is queued in it, in the kernel's own
/// accounting (SO_MEMINFO: `sndbuf` and `wmem_queued`, which counts buffer
/// overhead too), with one syscall.
pub fn send_buffer(fd: RawFd) -> io::Result<(usize, usize)> {
    let mut v = [0u32; 9];
    let mut len = std::mem::size_of_val(&v) as libc::socklen_t;
    // SAFETY: SO_MEMINFO fills up to `len` bytes of u32 counters.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            SO_MEMINFO,
            v.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SK_MEMINFO_SNDBUF = 3, SK_MEMINFO_WMEM_QUEUED = 5.
    Ok((v[3] as usize, v[5] as usize))
}

/// recv(2) with flags, retried on EINTR.
pub fn recv(fd: RawFd, buf: &mut [u8], flags: libc::c_int) -> io::Result<usize> {
    // SAFETY: recv into a buffer we own, bounded by its length. With
    // MSG_TRUNC on TCP the kernel discards without writing into it.
    cvt_retry(|| unsafe {
        libc::recv(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            flags | libc::MSG_DONTWAIT,
        ) as isize
    })
}

/// send(2) without SIGPIPE, retried on EINTR.
pub fn send(fd: RawFd, buf: &[u8]) -> io::Result<usize> {
    // SAFETY: send from a buffer we own, bounded by its length.
    cvt_retry(|| unsafe {
        libc::send(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        ) as isize
    })
}

/// sendto(2) an IPv4 address.
pub fn send_to(fd: RawFd, buf: &[u8], to: Ipv4Addr) -> io::Result<usize> {
    let sa = sockaddr_in(SocketAddrV4::new(to, 0));
    // SAFETY: sendto from our buffer with a sockaddr_in of its exact size.
    cvt_retry(|| unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            (&sa as *const libc::sockaddr_in).cast(),
            size_of::<libc::sockaddr_in>() as libc::socklen_t,
        ) as isize
    })
}

/// recvfrom(2): the byte count and the sender's IPv4 address.
pub fn recv_from(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddrV4)> {
    // SAFETY: sockaddr_in is plain data; zeroed is valid.
    let mut sa: libc::sockaddr_in = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_in>() as libc::socklen_t;
    // SAFETY: recvfrom into our buffer and address struct, both bounded.
    let n = cvt_retry(|| unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut sa as *mut libc::sockaddr_in).cast(),
            &mut len,
        ) as isize
    })?;
    let ip = Ipv4Addr::from(u32::from_be(sa.sin_addr.s_addr));
    Ok((n, SocketAddrV4::new(ip, u16::from_be(sa.sin_port))))
}

pub fn shutdown_write(fd: RawFd) {
    // SAFETY: shutdown on our own socket.
    unsafe { libc::shutdown(fd, libc::SHUT_WR) };
}

/// Makes close() send a RST instead of a FIN (SO_LINGER with 0 s).
pub fn set_linger_zero(fd: RawFd) {
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: SO_LINGER takes one struct linger.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}

/// A new TCP socket, connecting to `to`.
pub fn tcp_connect(to: SocketAddr) -> io::Result<OwnedFd> {
    let fd = socket(libc::SOCK_STREAM, libc::IPPROTO_TCP)?;
    // The container's own stack already coalesces small writes (Nagle);
    // a second Nagle here would only add a round trip of delay.
    let _ = setsockopt_int(fd.as_raw_fd(), libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
    connect(fd.as_raw_fd(), to)?;
    Ok(fd)
}

/// A new UDP socket connected to `to` (replies from anyone else are
/// filtered by the kernel, as port-restricted NAT does).
pub fn udp_connect(to: SocketAddr) -> io::Result<OwnedFd> {
    let fd = socket(libc::SOCK_DGRAM, libc::IPPROTO_UDP)?;
    connect(fd.as_raw_fd(), to)?;
    Ok(fd)
}

/// An unbound UDP socket of either family (a DNS query's own: the kernel
/// binds it to a random port at the first send).
pub fn udp_socket(v6: bool) -> io::Result<OwnedFd> {
    let family = if v6 { libc::AF_INET6 } else { libc::AF_INET };
    socket_of(family, libc::SOCK_DGRAM, libc::IPPROTO_UDP)
}

/// An unprivileged ICMP echo socket; fails with EACCES when the host's
/// `net.ipv4.ping_group_range` excludes our group.
pub fn ping_socket() -> io::Result<OwnedFd> {
    socket(libc::SOCK_DGRAM, libc::IPPROTO_ICMP)
}

/// A `sockaddr_storage` for either family, and its length.
fn sockaddr_any(a: SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain data; zeroed is a valid value.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match a {
        SocketAddr::V4(a) => {
            let sin = sockaddr_in(a);
            // SAFETY: sockaddr_storage is larger than and aligned for
            // sockaddr_in.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin) };
            size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: as above, for sockaddr_in6.
            unsafe { std::ptr::write((&mut ss as *mut libc::sockaddr_storage).cast(), sin6) };
            size_of::<libc::sockaddr_in6>()
        }
    };
    (ss, len as libc::socklen_t)
}

/// Reads a `sockaddr_storage` the kernel filled.
fn from_storage(ss: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match ss.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: &libc::sockaddr_in = unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)),
                u16::from_be(sin.sin_port),
            )))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: &libc::sockaddr_in6 =
                unsafe { &*(ss as *const libc::sockaddr_storage).cast() };
            Some(SocketAddr::V6(std::net::SocketAddrV6::new(
                std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr),
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

/// A listening (TCP) or bound (UDP) socket on `addr`; port 0 picks one.
/// IPv6 sockets are IPv6-only, so `[::]` and `0.0.0.0` can both be bound.
pub fn bind_listener(tcp: bool, addr: SocketAddr) -> io::Result<OwnedFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    let (ty, proto) = if tcp {
        (libc::SOCK_STREAM, libc::IPPROTO_TCP)
    } else {
        (libc::SOCK_DGRAM, libc::IPPROTO_UDP)
    };
    // SAFETY: plain socket(2); owned at once.
    let fd = unsafe { libc::socket(family, ty | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let raw = fd.as_raw_fd();
    if tcp {
        setsockopt_int(raw, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    }
    if addr.is_ipv6() {
        setsockopt_int(raw, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
    }
    let (ss, len) = sockaddr_any(addr);
    // SAFETY: bind with a sockaddr of the stated length.
    if unsafe { libc::bind(raw, (&ss as *const libc::sockaddr_storage).cast(), len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: listen on our own bound socket.
    if tcp && unsafe { libc::listen(raw, 1024) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fd)
}

/// The address a socket is bound to (the port the kernel chose for 0).
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: getsockname fills at most `len` bytes of the storage.
    if unsafe {
        libc::getsockname(
            fd,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    } < 0
    {
        return Err(io::Error::last_os_error());
    }
    from_storage(&ss).ok_or_else(|| io::Error::other("unknown address family"))
}

/// accept4(2): a non-blocking, close-on-exec connection and its peer.
pub fn accept(fd: RawFd) -> io::Result<(OwnedFd, SocketAddr)> {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let c = cvt_retry(|| {
        // SAFETY: accept4 fills at most `len` bytes of the storage.
        unsafe {
            libc::accept4(
                fd,
                (&mut ss as *mut libc::sockaddr_storage).cast(),
                &mut len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            ) as isize
        }
    })?;
    // SAFETY: a fresh descriptor from accept4, ours alone.
    let c = unsafe { OwnedFd::from_raw_fd(c as RawFd) };
    let peer = from_storage(&ss).ok_or_else(|| io::Error::other("unknown address family"))?;
    Ok((c, peer))
}

/// recvfrom(2) from any family.
pub fn recv_from_any(fd: RawFd, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
    // SAFETY: sockaddr_storage is plain data; zeroed is valid.
    let mut ss: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: recvfrom into our buffer and address storage, both bounded.
    let n = cvt_retry(|| unsafe {
        libc::recvfrom(
            fd,
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
            (&mut ss as *mut libc::sockaddr_storage).cast(),
            &mut len,
        ) as isize
    })?;
    let from = from_storage(&ss).ok_or_else(|| io::Error::other("unknown address family"))?;
    Ok((n, from))
}

/// sendto(2) any family.
pub fn send_to_any(fd: RawFd, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
    let (ss, len) = sockaddr_any(to);
    // SAFETY: sendto from our buffer with a sockaddr of the stated length.
    cvt_retry(|| unsafe {
        libc::sendto(
            fd,
            buf.as_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            (&ss as *const libc::sockaddr_storage).cast(),
            len,
        ) as isize
    })
}

/// dup(2) with close-on-exec.
pub fn dup(fd: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on our own descriptor.
    let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if d < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, ours alone.
    Ok(unsafe { OwnedFd::from_raw_fd(d) })
}
