//! AF_PACKET ports: a raw socket bound to a named interface in the switch's
//! own network namespace, so an existing veth's host end (or any Ethernet
//! device) joins a lanyard network (`lanyard attach`).
//!
//! `PACKET_VNET_HDR` makes the socket exchange the same 10-byte virtio-net
//! header as our TAPs, so GSO super-frames pass between a veth and a
//! container untouched. `PACKET_IGNORE_OUTGOING` keeps our own sends from
//! coming back as receptions (which would loop), and promiscuous mode lets
//! frames for every MAC behind the switch in.
//!
//! socket2/libc instead of `pnet_datalink`, which hides its fd behind boxed
//! objects (no mio), polls per send, and has no vnet header. Reads are one
//! `recv` per frame for now; `recvmmsg` or a TPACKET ring is the lever to
//! pull when measurements say so.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use super::{Port, PortKind, PortType, SendError};
use crate::frame::FrameBuf;
use crate::offload::Offloads;
use crate::sys::cvt_retry;
use crate::sys::ifreq::if_index;

const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_MR_PROMISC: libc::c_ushort = 1;
const PACKET_VNET_HDR: libc::c_int = 15;
const PACKET_QDISC_BYPASS: libc::c_int = 20;
const PACKET_IGNORE_OUTGOING: libc::c_int = 23;

#[repr(C)]
struct PacketMreq {
    mr_ifindex: libc::c_int,
    mr_type: libc::c_ushort,
    mr_alen: libc::c_ushort,
    mr_address: [u8; 8],
}

fn setsockopt_int(
    fd: RawFd,
    level: libc::c_int,
    name: libc::c_int,
    v: libc::c_int,
) -> io::Result<()> {
    // SAFETY: the option takes an int; we pass a pointer to one and its size.
    let r = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub struct PacketPort {
    /// Shared with the send-only handles of other shards.
    fd: std::sync::Arc<OwnedFd>,
    ifname: String,
}

impl PacketPort {
    /// Opens a raw socket on interface `ifname` (needs CAP_NET_RAW in the
    /// namespace that owns it).
    pub fn open(ifname: &str) -> io::Result<PacketPort> {
        let ifindex = if_index(ifname)?;
        let proto = (libc::ETH_P_ALL as u16).to_be() as libc::c_int;
        // SAFETY: plain socket(2); owned at once below.
        let fd = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                proto,
            )
        };
        if fd < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(
                e.kind(),
                format!("AF_PACKET socket for {ifname}: {e}"),
            ));
        }
        // SAFETY: fresh descriptor, ours alone.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let raw = fd.as_raw_fd();
        setsockopt_int(raw, SOL_PACKET, PACKET_VNET_HDR, 1)?;
        setsockopt_int(raw, SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)?;
        // Best effort: skipping the qdisc only saves time.
        let _ = setsockopt_int(raw, SOL_PACKET, PACKET_QDISC_BYPASS, 1);
        let mreq = PacketMreq {
            mr_ifindex: ifindex as libc::c_int,
            mr_type: PACKET_MR_PROMISC,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        // SAFETY: PACKET_ADD_MEMBERSHIP reads one packet_mreq.
        let r = unsafe {
            libc::setsockopt(
                raw,
                SOL_PACKET,
                PACKET_ADD_MEMBERSHIP,
                (&mreq as *const PacketMreq).cast(),
                std::mem::size_of::<PacketMreq>() as libc::socklen_t,
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
                raw,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if r < 0 {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("bind to {ifname}: {e}")));
        }
        Ok(PacketPort {
            fd: std::sync::Arc::new(fd),
            ifname: ifname.to_string(),
        })
    }

    pub fn ifname(&self) -> &str {
        &self.ifname
    }
}

impl PortType for PacketPort {
    /// The interface's name, in the switch's own namespace.
    type Source = String;

    /// `PACKET_VNET_HDR`: the same vnet header and offloads as our TAPs.
    const OFFERS: Offloads = Offloads::FULL;

    fn open(ifname: String) -> io::Result<PacketPort> {
        PacketPort::open(&ifname)
    }
}

impl Port for PacketPort {
    fn kind(&self) -> PortKind {
        PortKind::Packet
    }

    fn offloads(&self) -> Offloads {
        Self::OFFERS
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn recv_batch(&mut self, bufs: &mut [FrameBuf]) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        let mut n = 0;
        while n < bufs.len() {
            let buf = &mut bufs[n];
            let space = buf.read_space_with_header();
            // SAFETY: recv(2) into a buffer we own, bounded by its length.
            // MSG_TRUNC makes an over-long frame report its real length, so
            // the switch sees it fill the buffer and drops it as oversize.
            let r = cvt_retry(|| unsafe {
                libc::recv(fd, space.as_mut_ptr().cast(), space.len(), libc::MSG_TRUNC) as isize
            });
            match r {
                Ok(len) => {
                    buf.set_len_with_header(len);
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if n > 0 => {
                    let _ = e;
                    break;
                }
                Err(e) if e.raw_os_error() == Some(libc::ENETDOWN) => break,
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn send(&mut self, frame: &FrameBuf) -> Result<(), SendError> {
        let data = frame.with_header();
        let fd = self.fd.as_raw_fd();
        // SAFETY: send(2) from a buffer we own, bounded by its length.
        match cvt_retry(|| unsafe {
            libc::send(fd, data.as_ptr().cast(), data.len(), libc::MSG_DONTWAIT) as isize
        }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(SendError::Full),
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Err(SendError::Full),
            Err(e) => Err(SendError::Failed(e)),
        }
    }

    fn share(&self) -> Box<dyn Port> {
        Box::new(super::SendOnly(PacketPort {
            fd: self.fd.clone(),
            ifname: self.ifname.clone(),
        }))
    }
}
