//! Capabilities: a switch run by root (or by root of a user namespace)
//! keeps only the two it may still use, and only if it holds them.
//!
//! - `CAP_NET_BIND_SERVICE`: `-p 80:80` and `port add` bind host ports
//!   below `net.ipv4.ip_unprivileged_port_start` at any time.
//! - `CAP_NET_RAW`: `lanyard attach --iface` opens an AF_PACKET socket on
//!   an uplink at any time.
//!
//! Everything else goes from the effective, permitted and inheritable
//! sets, the ambient set and (when `CAP_SETPCAP` allows) the bounding
//! set. An unprivileged user holds none of these: nothing changes for
//! it. There is no maintained crate small enough to be worth it for two
//! system calls; the structs are the kernel's (`linux/capability.h`, v3).

const VERSION_3: u32 = 0x2008_0522;
const CAP_SETPCAP: u32 = 8;
const CAP_NET_BIND_SERVICE: u32 = 10;
const CAP_NET_RAW: u32 = 13;
/// The capabilities kept when held, with the names the report uses.
const KEPT: [(u32, &str); 2] = [
    (CAP_NET_BIND_SERVICE, "net_bind_service"),
    (CAP_NET_RAW, "net_raw"),
];

#[repr(C)]
struct Header {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct Data {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The three sets, 64 bits each.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sets {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

fn get() -> std::io::Result<Sets> {
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let mut d = [Data::default(); 2];
    // SAFETY: capget with a v3 header and the two data words v3 fills.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut h, d.as_mut_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let join = |lo: u32, hi: u32| lo as u64 | (hi as u64) << 32;
    Ok(Sets {
        effective: join(d[0].effective, d[1].effective),
        permitted: join(d[0].permitted, d[1].permitted),
        inheritable: join(d[0].inheritable, d[1].inheritable),
    })
}

fn set(s: Sets) -> std::io::Result<()> {
    let mut h = Header {
        version: VERSION_3,
        pid: 0,
    };
    let split = |v: u64| (v as u32, (v >> 32) as u32);
    let (e0, e1) = split(s.effective);
    let (p0, p1) = split(s.permitted);
    let (i0, i1) = split(s.inheritable);
    let d = [
        Data {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        Data {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: capset with a v3 header and two data words, read only.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut h, d.as_ptr()) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// The mask of what to keep out of `permitted`.
fn keep_mask(permitted: u64) -> u64 {
    KEPT.iter().map(|(c, _)| 1u64 << c).fold(0, |m, b| m | b) & permitted
}

/// Drops every capability but the two used, from every set; the report
/// names what is left ("capabilities: none" for an unprivileged user).
pub fn drop_all_but_used() -> Result<String, String> {
    let now = get().map_err(|e| format!("capabilities: capget: {e}"))?;
    let keep = keep_mask(now.permitted);
    if now.effective & (1 << CAP_SETPCAP) != 0 {
        for cap in 0..64u32 {
            if keep & (1 << cap) != 0 {
                continue;
            }
            // SAFETY: prctl with integer arguments only.
            let rc = unsafe { libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) };
            if rc != 0 {
                // EINVAL: past the kernel's last capability.
                break;
            }
        }
    }
    // SAFETY: prctl with integer arguments only. EINVAL on kernels
    // without ambient capabilities (< 4.3), which then have none to clear.
    unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        )
    };
    if now.permitted != keep || now.effective != keep || now.inheritable != 0 {
        set(Sets {
            effective: keep,
            permitted: keep,
            inheritable: 0,
        })
        .map_err(|e| format!("capabilities: capset: {e}"))?;
    }
    let names: Vec<&str> = KEPT
        .iter()
        .filter(|(c, _)| keep & (1 << c) != 0)
        .map(|(_, n)| *n)
        .collect();
    Ok(if names.is_empty() {
        "capabilities: none".into()
    } else {
        format!("capabilities: {} only", names.join(", "))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_two_used_are_kept_and_only_when_held() {
        assert_eq!(keep_mask(0), 0);
        assert_eq!(keep_mask(u64::MAX), 1 << 10 | 1 << 13);
        assert_eq!(keep_mask(1 << 13 | 1 << 21), 1 << 13);
    }

    #[test]
    fn capget_reads_this_process() {
        let s = get().unwrap();
        // Effective is always a subset of permitted.
        assert_eq!(s.effective & !s.permitted, 0);
    }
}
