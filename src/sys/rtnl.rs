//! A minimal rtnetlink request: what the legacy ioctls cannot do inside a
//! user namespace. `SIOCSIFTXQLEN` demands CAP_NET_ADMIN in the initial
//! namespace, while `RTM_NEWLINK` with `IFLA_TXQLEN` only needs it in the
//! namespace that owns the device, so a rootless container can set its
//! queue length this way.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

const RTM_NEWLINK: u16 = 16;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLMSG_ERROR: u16 = 2;
const IFLA_TXQLEN: u16 = 13;

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
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Sends one request and waits for its acknowledgement.
fn request(msg: &[u8]) -> io::Result<()> {
    let sock = netlink_socket()?;
    // SAFETY: sockaddr_nl is plain data; zeroed means "the kernel".
    let mut sa: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
    sa.nl_family = libc::AF_NETLINK as libc::sa_family_t;
    // SAFETY: sendto with our buffer and a sockaddr_nl of its exact size.
    let r = unsafe {
        libc::sendto(
            sock.as_raw_fd(),
            msg.as_ptr().cast(),
            msg.len(),
            0,
            (&sa as *const libc::sockaddr_nl).cast(),
            std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    let mut buf = [0u8; 1024];
    // SAFETY: recv into our buffer, bounded by its length.
    let n = unsafe { libc::recv(sock.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let n = n as usize;
    if n < 20 || u16::from_ne_bytes([buf[4], buf[5]]) != NLMSG_ERROR {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "unexpected netlink reply",
        ));
    }
    let err = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    if err != 0 {
        return Err(io::Error::from_raw_os_error(-err));
    }
    Ok(())
}

/// Sets the transmit queue length of the interface with index `ifindex`.
pub fn set_txqueuelen(ifindex: u32, len: u32) -> io::Result<()> {
    let mut m = Vec::with_capacity(40);
    // struct nlmsghdr
    m.extend_from_slice(&40u32.to_ne_bytes());
    m.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    m.extend_from_slice(&1u32.to_ne_bytes()); // seq
    m.extend_from_slice(&0u32.to_ne_bytes()); // pid: the kernel fills it
                                              // struct ifinfomsg
    m.push(libc::AF_UNSPEC as u8);
    m.push(0);
    m.extend_from_slice(&0u16.to_ne_bytes());
    m.extend_from_slice(&(ifindex as i32).to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // flags
    m.extend_from_slice(&0u32.to_ne_bytes()); // change
                                              // struct rtattr IFLA_TXQLEN
    m.extend_from_slice(&8u16.to_ne_bytes());
    m.extend_from_slice(&IFLA_TXQLEN.to_ne_bytes());
    m.extend_from_slice(&len.to_ne_bytes());
    request(&m)
}
