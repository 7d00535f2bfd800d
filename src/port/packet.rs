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
//! The socket and its options are `sys::sock`'s (socket2 and libc) instead
//! of `pnet_datalink`'s, which hides its fd behind boxed objects (no mio),
//! polls per send, and has no vnet header. Reads are one
//! `recv` per frame for now; `recvmmsg` or a TPACKET ring is the lever to
//! pull when measurements say so.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use super::{Port, PortKind, PortType, SendError};
use crate::frame::FrameBuf;
use crate::offload::Offloads;
use crate::sys::ifreq::if_index;
use crate::sys::sock;

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
        let fd = sock::packet_socket(ifindex)
            .map_err(|e| io::Error::new(e.kind(), format!("AF_PACKET socket on {ifname}: {e}")))?;
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
            // MSG_TRUNC makes an over-long frame report its real length, so
            // the switch sees it fill the buffer and drops it as oversize.
            let r = sock::recv(fd, space, libc::MSG_TRUNC);
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
        match sock::send_frame(fd, data) {
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
