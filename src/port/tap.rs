//! TAP ports: a container's `eth0` seen from the switch's side of the fd.
//!
//! The device is created inside the container's namespace (see `netns`)
//! with `IFF_TAP | IFF_NO_PI | IFF_VNET_HDR`; the fd comes to the switch
//! over the control socket. Adopting it sets the 10-byte vnet header and
//! enables checksum and TSO offload, so the container's kernel hands us
//! 64 KiB TCP super-frames with partial checksums instead of 1500-byte
//! segments: the one lever that lifts a userspace switch from ~2 Gbps to
//! near the kernel bridge at MTU 1500 (the team's crate notes, CRATES.md).
//!
//! A ~100-line ioctl wrapper replaces the `tun-tap` crate, which cannot
//! adopt an fd, has no vnet header and no multi-queue (docs/ARCHITECTURE.md).

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::{Port, PortKind, PortType, SendError, SendOnly};
use crate::frame::FrameBuf;
use crate::offload::Offloads;
use crate::sys::ifreq::{ioctl_ifreq, ioctl_int_ptr, ioctl_value, IfReq};
use crate::sys::{cvt_retry, set_nonblocking};
use crate::wire::vnet::HDR_LEN;

/// Flags a TAP for lanyard is created with.
pub const CREATE_FLAGS: i32 = libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR;

/// Creates TAP device `name` in the calling thread's network namespace and
/// returns its fd (blocking mode, close-on-exec). The device lives as long
/// as an fd to it is open.
pub fn create(name: &str) -> io::Result<OwnedFd> {
    let path = c"/dev/net/tun";
    // SAFETY: open(2) with a static NUL-terminated path; result owned below.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_RDWR | libc::O_CLOEXEC) };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(io::Error::new(
            e.kind(),
            format!("open /dev/net/tun: {e} (it must be mode 0666 for rootless use)"),
        ));
    }
    // SAFETY: fd is fresh and ours.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut req = IfReq::new(name)?;
    req.set_short(CREATE_FLAGS as i16);
    ioctl_ifreq(fd.as_raw_fd(), libc::TUNSETIFF, &mut req)
        .map_err(|e| io::Error::new(e.kind(), format!("TUNSETIFF {name}: {e}")))?;
    Ok(fd)
}

pub struct TapPort {
    /// Shared with the send-only handles of other shards.
    fd: Arc<OwnedFd>,
    vnet: bool,
    /// UDP super-frames may be written to it (`Offloads::uso`).
    uso: bool,
    name: String,
}

impl TapPort {
    /// Adopts the fd of an existing TAP device: checks it is a TAP, sets the
    /// vnet header size and offloads, and makes it non-blocking.
    pub fn from_fd(fd: OwnedFd) -> io::Result<TapPort> {
        let raw = fd.as_raw_fd();
        let mut req = IfReq::new("x")?;
        ioctl_ifreq(raw, libc::TUNGETIFF, &mut req)
            .map_err(|e| io::Error::new(e.kind(), format!("not a TUN/TAP fd (TUNGETIFF: {e})")))?;
        let flags = req.short() as i32;
        if flags & libc::IFF_TAP == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the fd is a TUN device, not a TAP",
            ));
        }
        if flags & libc::IFF_NO_PI == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "the TAP was created without IFF_NO_PI",
            ));
        }
        let vnet = flags & libc::IFF_VNET_HDR != 0;
        let mut uso = false;
        if vnet {
            let mut sz: libc::c_int = HDR_LEN as libc::c_int;
            ioctl_int_ptr(raw, libc::TUNSETVNETHDRSZ, &mut sz)?;
            // TSO needs CSUM; ECN lets the kernel keep CWR-marked segments
            // in one super-frame. UFO/USO stay off for what the TAP hands
            // us: a container's UDP super-frame would have to be cut up
            // again before the NAT.
            let off = libc::TUN_F_CSUM | libc::TUN_F_TSO4 | libc::TUN_F_TSO6 | libc::TUN_F_TSO_ECN;
            // Whether the kernel knows USO (6.2): then it also takes UDP
            // super-frames written to the TAP, whatever the offloads set
            // here (the vnet header says what each frame is), and splits
            // them into datagrams for the container. Asked by setting it,
            // which older kernels refuse, then set back.
            uso = ioctl_value(
                raw,
                libc::TUNSETOFFLOAD,
                (off | libc::TUN_F_USO4 | libc::TUN_F_USO6) as libc::c_ulong,
            )
            .is_ok();
            ioctl_value(raw, libc::TUNSETOFFLOAD, off as libc::c_ulong)?;
        } else {
            // Offloads left on from an earlier owner without a vnet header
            // would corrupt every TCP checksum (CRATES.md).
            ioctl_value(raw, libc::TUNSETOFFLOAD, 0)?;
        }
        set_nonblocking(raw)?;
        Ok(TapPort {
            fd: Arc::new(fd),
            vnet,
            uso,
            name: req.name(),
        })
    }

    /// The device's name in its own namespace.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl PortType for TapPort {
    /// The fd of a TAP made with [`CREATE_FLAGS`] (or at least `IFF_TAP |
    /// IFF_NO_PI`), sent over the control socket.
    type Source = OwnedFd;

    /// Checksum and TSO offload, with a vnet header, when the TAP has one.
    const OFFERS: Offloads = Offloads::FULL;

    fn open(fd: OwnedFd) -> io::Result<TapPort> {
        TapPort::from_fd(fd)
    }
}

impl Port for TapPort {
    fn kind(&self) -> PortKind {
        PortKind::Tap
    }

    fn offloads(&self) -> Offloads {
        if self.vnet {
            Offloads {
                uso: self.uso,
                ..Self::OFFERS
            }
        } else {
            Offloads::NONE
        }
    }

    fn raw_fd(&self) -> Option<RawFd> {
        Some(self.fd.as_raw_fd())
    }

    fn recv_batch(&mut self, bufs: &mut [FrameBuf]) -> io::Result<usize> {
        let fd = self.fd.as_raw_fd();
        let mut n = 0;
        while n < bufs.len() {
            let buf = &mut bufs[n];
            let space = if self.vnet {
                buf.read_space_with_header()
            } else {
                buf.read_space()
            };
            // SAFETY: read(2) into a buffer we own, bounded by its length.
            let r = cvt_retry(|| unsafe {
                libc::read(fd, space.as_mut_ptr().cast(), space.len()) as isize
            });
            match r {
                Ok(0) => break,
                Ok(len) => {
                    if self.vnet {
                        buf.set_len_with_header(len);
                    } else {
                        buf.set_plain_len(len);
                    }
                    n += 1;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    if n > 0 {
                        // Hand over what we have; the error repeats next time.
                        break;
                    }
                    return Err(e);
                }
            }
        }
        Ok(n)
    }

    fn send(&mut self, frame: &FrameBuf) -> Result<(), SendError> {
        let data = if self.vnet {
            frame.with_header()
        } else {
            frame.frame()
        };
        let fd = self.fd.as_raw_fd();
        // SAFETY: write(2) from a buffer we own, bounded by its length.
        match cvt_retry(|| unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) as isize }) {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Err(SendError::Full),
            Err(e) => Err(SendError::Failed(e)),
        }
    }

    fn share(&self) -> Box<dyn Port> {
        Box::new(SendOnly(TapPort {
            fd: self.fd.clone(),
            vnet: self.vnet,
            uso: self.uso,
            name: self.name.clone(),
        }))
    }
}
