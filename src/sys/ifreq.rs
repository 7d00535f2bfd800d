//! `struct ifreq` ioctls: TUN/TAP setup and the few interface settings a
//! container's `eth0` needs (address, mask, MAC, MTU, queue length, flags,
//! default route). They act on the network namespace of the calling thread.
//!
//! The legacy ioctls are used instead of rtnetlink because the whole job is
//! eight fixed-size requests on one interface: no netlink dependency, no
//! message building, and the same calls work from a freshly unshared
//! namespace before anything else exists there. IPv6 addresses will need
//! `in6_ifreq` or rtnetlink; that is the IPv6 issue's call.

use std::ffi::CStr;
use std::io;
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use crate::wire::MacAddr;

/// `struct ifreq`: a 16-byte name and a 24-byte union (x86_64/aarch64
/// layout; the union is sized by `struct ifmap`).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct IfReq {
    pub name: [libc::c_char; libc::IFNAMSIZ],
    pub data: [u8; 24],
}

impl IfReq {
    pub fn new(name: &str) -> io::Result<IfReq> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("interface name '{name}' must be 1-15 bytes"),
            ));
        }
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            data: [0; 24],
        };
        for (d, s) in r.name.iter_mut().zip(name.bytes()) {
            *d = s as libc::c_char;
        }
        Ok(r)
    }

    pub fn name(&self) -> String {
        // SAFETY: the kernel and `new` always leave a NUL inside IFNAMSIZ.
        let c = unsafe { CStr::from_ptr(self.name.as_ptr()) };
        c.to_string_lossy().into_owned()
    }

    pub fn set_short(&mut self, v: i16) {
        self.data[..2].copy_from_slice(&v.to_ne_bytes());
    }

    pub fn short(&self) -> i16 {
        i16::from_ne_bytes([self.data[0], self.data[1]])
    }

    pub fn set_int(&mut self, v: i32) {
        self.data[..4].copy_from_slice(&v.to_ne_bytes());
    }

    /// A `struct sockaddr_in` with `ip` (for SIOCSIFADDR and friends).
    pub fn set_ipv4(&mut self, ip: Ipv4Addr) {
        self.data = [0; 24];
        self.data[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        self.data[4..8].copy_from_slice(&ip.octets());
    }

    /// A `struct sockaddr` of family ARPHRD_ETHER holding `mac`.
    pub fn set_mac(&mut self, mac: MacAddr) {
        self.data = [0; 24];
        self.data[..2].copy_from_slice(&libc::ARPHRD_ETHER.to_ne_bytes());
        self.data[2..8].copy_from_slice(&mac.0);
    }

    /// The MAC of a `struct sockaddr` filled by SIOCGIFHWADDR.
    pub fn mac(&self) -> MacAddr {
        let mut m = [0u8; 6];
        m.copy_from_slice(&self.data[2..8]);
        MacAddr(m)
    }
}

/// Issues an ioctl taking a `struct ifreq` pointer.
pub fn ioctl_ifreq(fd: RawFd, request: libc::Ioctl, req: &mut IfReq) -> io::Result<()> {
    // SAFETY: every request passed here takes a pointer to a `struct ifreq`,
    // whose size and layout `IfReq` reproduces; the kernel reads and writes
    // only within it.
    let r = unsafe { libc::ioctl(fd, request, req as *mut IfReq) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Issues an ioctl taking an integer by value (`TUNSETOFFLOAD`).
pub fn ioctl_value(fd: RawFd, request: libc::Ioctl, value: libc::c_ulong) -> io::Result<()> {
    // SAFETY: the request takes its argument by value; no memory is shared.
    let r = unsafe { libc::ioctl(fd, request, value) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Issues an ioctl taking a pointer to an `int` (`TUNSETVNETHDRSZ`).
pub fn ioctl_int_ptr(fd: RawFd, request: libc::Ioctl, value: &mut libc::c_int) -> io::Result<()> {
    // SAFETY: the request reads or writes exactly one `int` at the pointer.
    let r = unsafe { libc::ioctl(fd, request, value as *mut libc::c_int) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A datagram socket to issue interface ioctls on, in the calling thread's
/// network namespace.
pub fn control_socket() -> io::Result<OwnedFd> {
    // SAFETY: plain socket(2); the result is checked and owned at once.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Configures one interface through ioctls on a control socket.
pub struct Interface<'a> {
    sock: &'a OwnedFd,
    name: String,
}

impl<'a> Interface<'a> {
    pub fn new(sock: &'a OwnedFd, name: &str) -> Interface<'a> {
        Interface {
            sock,
            name: name.to_string(),
        }
    }

    fn req(&self) -> io::Result<IfReq> {
        IfReq::new(&self.name)
    }

    fn call(&self, what: &str, request: libc::Ioctl, r: &mut IfReq) -> io::Result<()> {
        ioctl_ifreq(self.sock.as_raw_fd(), request, r)
            .map_err(|e| io::Error::new(e.kind(), format!("{what} on {}: {e}", self.name)))
    }

    pub fn set_up(&self) -> io::Result<()> {
        let mut r = self.req()?;
        self.call("SIOCGIFFLAGS", libc::SIOCGIFFLAGS, &mut r)?;
        let flags = r.short() | libc::IFF_UP as i16;
        r.set_short(flags);
        self.call("SIOCSIFFLAGS", libc::SIOCSIFFLAGS, &mut r)
    }

    pub fn set_mac(&self, mac: MacAddr) -> io::Result<()> {
        let mut r = self.req()?;
        r.set_mac(mac);
        self.call("SIOCSIFHWADDR", libc::SIOCSIFHWADDR, &mut r)
    }

    pub fn mac(&self) -> io::Result<MacAddr> {
        let mut r = self.req()?;
        self.call("SIOCGIFHWADDR", libc::SIOCGIFHWADDR, &mut r)?;
        Ok(r.mac())
    }

    pub fn set_mtu(&self, mtu: u32) -> io::Result<()> {
        let mut r = self.req()?;
        r.set_int(mtu as i32);
        self.call("SIOCSIFMTU", libc::SIOCSIFMTU, &mut r)
    }

    /// Through rtnetlink: SIOCSIFTXQLEN is refused inside a user namespace.
    pub fn set_txqueuelen(&self, len: u32) -> io::Result<()> {
        let index = if_index(&self.name)?;
        super::rtnl::set_txqueuelen(index, len).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("setting txqueuelen of {}: {e}", self.name),
            )
        })
    }

    /// Address, netmask and broadcast address.
    pub fn set_ipv4(&self, ip: Ipv4Addr, prefix_len: u8) -> io::Result<()> {
        let mask = if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - prefix_len as u32)
        };
        let mut r = self.req()?;
        r.set_ipv4(ip);
        self.call("SIOCSIFADDR", libc::SIOCSIFADDR, &mut r)?;
        let mut r = self.req()?;
        r.set_ipv4(Ipv4Addr::from(mask));
        self.call("SIOCSIFNETMASK", libc::SIOCSIFNETMASK, &mut r)?;
        let mut r = self.req()?;
        r.set_ipv4(Ipv4Addr::from(u32::from(ip) | !mask));
        self.call("SIOCSIFBRDADDR", libc::SIOCSIFBRDADDR, &mut r)
    }
}

/// `struct rtentry` (glibc x86_64/aarch64 layout) for SIOCADDRT.
#[repr(C)]
struct RtEntry {
    rt_pad1: libc::c_ulong,
    rt_dst: libc::sockaddr,
    rt_gateway: libc::sockaddr,
    rt_genmask: libc::sockaddr,
    rt_flags: libc::c_ushort,
    rt_pad2: libc::c_short,
    rt_pad3: libc::c_ulong,
    rt_pad4: *mut libc::c_void,
    rt_metric: libc::c_short,
    rt_dev: *mut libc::c_char,
    rt_mtu: libc::c_ulong,
    rt_window: libc::c_ulong,
    rt_irtt: libc::c_ushort,
}

fn sockaddr_v4(ip: Ipv4Addr) -> libc::sockaddr {
    let sin = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(ip.octets()),
        },
        sin_zero: [0; 8],
    };
    // SAFETY: sockaddr_in and sockaddr are both 16 bytes; this is the
    // reinterpretation the sockets API is built on.
    unsafe { std::mem::transmute::<libc::sockaddr_in, libc::sockaddr>(sin) }
}

/// Adds the default route via `gateway` (SIOCADDRT).
pub fn add_default_route(sock: &OwnedFd, gateway: Ipv4Addr) -> io::Result<()> {
    let mut rt = RtEntry {
        rt_pad1: 0,
        rt_dst: sockaddr_v4(Ipv4Addr::UNSPECIFIED),
        rt_gateway: sockaddr_v4(gateway),
        rt_genmask: sockaddr_v4(Ipv4Addr::UNSPECIFIED),
        rt_flags: libc::RTF_UP | libc::RTF_GATEWAY,
        rt_pad2: 0,
        rt_pad3: 0,
        rt_pad4: std::ptr::null_mut(),
        rt_metric: 0,
        rt_dev: std::ptr::null_mut(),
        rt_mtu: 0,
        rt_window: 0,
        rt_irtt: 0,
    };
    // SAFETY: SIOCADDRT reads one `struct rtentry`, which RtEntry lays out;
    // rt_dev is null so the kernel follows no pointer of ours.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCADDRT, &mut rt as *mut RtEntry) };
    if r < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("SIOCADDRT default via {gateway}: {e}"),
        ));
    }
    Ok(())
}

/// The index of interface `name` in the calling thread's namespace.
pub fn if_index(name: &str) -> io::Result<u32> {
    let c = std::ffi::CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in interface name"))?;
    // SAFETY: c is a valid NUL-terminated string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if i == 0 {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named '{name}'"),
        ));
    }
    Ok(i)
}
