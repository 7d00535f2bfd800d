//! DHCPv4 (RFC 2131, options RFC 2132): the client messages the gateway's
//! server reads, and the replies it writes. Only Ethernet clients (htype 1,
//! hlen 6); options are walked with every length checked against the
//! buffer, so a malformed message is an error, never an out-of-bounds read.

use std::net::Ipv4Addr;

use super::{MacAddr, WireError};

pub const SERVER_PORT: u16 = 67;
pub const CLIENT_PORT: u16 = 68;
/// The fixed BOOTP part and the magic cookie.
pub const FIXED_LEN: usize = 240;
const MAGIC: [u8; 4] = [99, 130, 83, 99];
/// BOOTP's minimum message length; replies are padded to it.
pub const MIN_LEN: usize = 300;

pub mod msg {
    pub const DISCOVER: u8 = 1;
    pub const OFFER: u8 = 2;
    pub const REQUEST: u8 = 3;
    pub const DECLINE: u8 = 4;
    pub const ACK: u8 = 5;
    pub const NAK: u8 = 6;
    pub const RELEASE: u8 = 7;
    pub const INFORM: u8 = 8;
}

mod opt {
    pub const PAD: u8 = 0;
    pub const SUBNET_MASK: u8 = 1;
    pub const ROUTER: u8 = 3;
    pub const DNS: u8 = 6;
    pub const HOSTNAME: u8 = 12;
    pub const MTU: u8 = 26;
    pub const BROADCAST: u8 = 28;
    pub const REQUESTED_IP: u8 = 50;
    pub const LEASE_TIME: u8 = 51;
    pub const MSG_TYPE: u8 = 53;
    pub const SERVER_ID: u8 = 54;
    pub const RENEWAL: u8 = 58;
    pub const REBINDING: u8 = 59;
    pub const END: u8 = 255;
}

/// A client's message, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessage {
    pub msg_type: u8,
    pub xid: u32,
    pub flags: u16,
    pub ciaddr: Ipv4Addr,
    pub chaddr: MacAddr,
    pub requested_ip: Option<Ipv4Addr>,
    pub server_id: Option<Ipv4Addr>,
    pub has_hostname: bool,
}

fn ip4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

/// Parses a BOOTREQUEST carrying a DHCP message type.
pub fn parse_client(b: &[u8]) -> Result<ClientMessage, WireError> {
    if b.len() < FIXED_LEN {
        return Err(WireError::Truncated);
    }
    if b[0] != 1 || b[1] != 1 || b[2] != 6 || b[236..240] != MAGIC {
        return Err(WireError::Unsupported);
    }
    let mut m = ClientMessage {
        msg_type: 0,
        xid: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        flags: u16::from_be_bytes([b[10], b[11]]),
        ciaddr: ip4(&b[12..16]),
        chaddr: MacAddr::from_slice(&b[28..34]),
        requested_ip: None,
        server_id: None,
        has_hostname: false,
    };
    let mut i = FIXED_LEN;
    while i < b.len() {
        let code = b[i];
        if code == opt::END {
            break;
        }
        if code == opt::PAD {
            i += 1;
            continue;
        }
        let len = *b.get(i + 1).ok_or(WireError::Truncated)? as usize;
        let data = b.get(i + 2..i + 2 + len).ok_or(WireError::Truncated)?;
        match (code, len) {
            (opt::MSG_TYPE, 1) => m.msg_type = data[0],
            (opt::REQUESTED_IP, 4) => m.requested_ip = Some(ip4(data)),
            (opt::SERVER_ID, 4) => m.server_id = Some(ip4(data)),
            (opt::HOSTNAME, _) => m.has_hostname = true,
            (opt::MSG_TYPE | opt::REQUESTED_IP | opt::SERVER_ID, _) => {
                return Err(WireError::Malformed)
            }
            _ => {}
        }
        i += 2 + len;
    }
    if !(msg::DISCOVER..=msg::INFORM).contains(&m.msg_type) {
        return Err(WireError::Malformed);
    }
    if !m.chaddr.is_unicast() {
        return Err(WireError::Malformed);
    }
    Ok(m)
}

/// What a reply carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub msg_type: u8,
    pub yiaddr: Ipv4Addr,
    pub server: Ipv4Addr,
    pub prefix_len: u8,
    pub router: Option<Ipv4Addr>,
    pub dns: Option<Ipv4Addr>,
    pub mtu: Option<u16>,
    pub lease_secs: Option<u32>,
}

/// Writes the reply to `req` into `out` (at least [`MIN_LEN`] + 64 bytes);
/// returns its length.
pub fn emit_reply(req: &ClientMessage, r: &Reply, out: &mut [u8]) -> usize {
    out[..FIXED_LEN].fill(0);
    out[0] = 2; // BOOTREPLY
    out[1] = 1;
    out[2] = 6;
    out[4..8].copy_from_slice(&req.xid.to_be_bytes());
    out[10..12].copy_from_slice(&req.flags.to_be_bytes());
    out[12..16].copy_from_slice(&req.ciaddr.octets());
    out[16..20].copy_from_slice(&r.yiaddr.octets());
    out[20..24].copy_from_slice(&r.server.octets());
    out[28..34].copy_from_slice(&req.chaddr.0);
    out[236..240].copy_from_slice(&MAGIC);
    let mut i = FIXED_LEN;
    let mut put = |code: u8, data: &[u8], i: &mut usize| {
        out[*i] = code;
        out[*i + 1] = data.len() as u8;
        out[*i + 2..*i + 2 + data.len()].copy_from_slice(data);
        *i += 2 + data.len();
    };
    put(opt::MSG_TYPE, &[r.msg_type], &mut i);
    put(opt::SERVER_ID, &r.server.octets(), &mut i);
    if r.msg_type != msg::NAK {
        let mask = if r.prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - r.prefix_len as u32)
        };
        put(opt::SUBNET_MASK, &mask.to_be_bytes(), &mut i);
        if let Some(router) = r.router {
            put(opt::ROUTER, &router.octets(), &mut i);
        }
        if let Some(dns) = r.dns {
            put(opt::DNS, &dns.octets(), &mut i);
        }
        if let Some(mtu) = r.mtu {
            put(opt::MTU, &mtu.to_be_bytes(), &mut i);
        }
        let bcast = u32::from(r.yiaddr) | !mask;
        if r.yiaddr != Ipv4Addr::UNSPECIFIED {
            put(opt::BROADCAST, &bcast.to_be_bytes(), &mut i);
        }
        if let Some(t) = r.lease_secs {
            put(opt::LEASE_TIME, &t.to_be_bytes(), &mut i);
            put(opt::RENEWAL, &(t / 2).to_be_bytes(), &mut i);
            put(opt::REBINDING, &(t / 8 * 7).to_be_bytes(), &mut i);
        }
    }
    out[i] = opt::END;
    i += 1;
    if i < MIN_LEN {
        out[i..MIN_LEN].fill(0);
        i = MIN_LEN;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discover(mac: MacAddr, extra: &[u8]) -> Vec<u8> {
        let mut b = vec![0u8; FIXED_LEN];
        b[0] = 1;
        b[1] = 1;
        b[2] = 6;
        b[4..8].copy_from_slice(&0xdeadbeefu32.to_be_bytes());
        b[28..34].copy_from_slice(&mac.0);
        b[236..240].copy_from_slice(&MAGIC);
        b.extend_from_slice(&[53, 1, msg::DISCOVER]);
        b.extend_from_slice(extra);
        b.push(255);
        b
    }

    const MAC: MacAddr = MacAddr([2, 0x42, 10, 0, 0, 9]);

    #[test]
    fn parses_a_discover() {
        let m = parse_client(&discover(
            MAC,
            &[50, 4, 10, 0, 0, 9, 12, 3, b'v', b'm', b'1'],
        ))
        .unwrap();
        assert_eq!(m.msg_type, msg::DISCOVER);
        assert_eq!(m.xid, 0xdeadbeef);
        assert_eq!(m.chaddr, MAC);
        assert_eq!(m.requested_ip, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert!(m.has_hostname);
    }

    #[test]
    fn refuses_malformed_messages() {
        let d = discover(MAC, &[]);
        assert_eq!(parse_client(&d[..239]), Err(WireError::Truncated));
        let mut bad = d.clone();
        bad[236] = 0;
        assert_eq!(parse_client(&bad), Err(WireError::Unsupported));
        // An option running past the end.
        let mut trunc = discover(MAC, &[]);
        trunc.pop();
        trunc.extend_from_slice(&[50, 200, 1]);
        assert_eq!(parse_client(&trunc), Err(WireError::Truncated));
        // A message type of the wrong length.
        let mut wrong = vec![0u8; FIXED_LEN];
        wrong[..FIXED_LEN].copy_from_slice(&d[..FIXED_LEN]);
        wrong.extend_from_slice(&[53, 2, 1, 1, 255]);
        assert_eq!(parse_client(&wrong), Err(WireError::Malformed));
        // No message type at all.
        let mut none = d[..FIXED_LEN].to_vec();
        none.push(255);
        assert_eq!(parse_client(&none), Err(WireError::Malformed));
        assert_eq!(
            parse_client(&discover(MacAddr::BROADCAST, &[])),
            Err(WireError::Malformed)
        );
    }

    #[test]
    fn replies_carry_the_configuration() {
        let req = parse_client(&discover(MAC, &[])).unwrap();
        let mut out = [0u8; 600];
        let n = emit_reply(
            &req,
            &Reply {
                msg_type: msg::OFFER,
                yiaddr: Ipv4Addr::new(10, 0, 0, 9),
                server: Ipv4Addr::new(10, 0, 0, 1),
                prefix_len: 24,
                router: Some(Ipv4Addr::new(10, 0, 0, 1)),
                dns: Some(Ipv4Addr::new(10, 0, 0, 1)),
                mtu: Some(1500),
                lease_secs: Some(3600),
            },
            &mut out,
        );
        assert!(n >= MIN_LEN);
        let b = &out[..n];
        assert_eq!(b[0], 2);
        assert_eq!(&b[16..20], &[10, 0, 0, 9]);
        assert_eq!(&b[28..34], &MAC.0);
        let opts = &b[FIXED_LEN..];
        assert_eq!(&opts[..3], &[53, 1, msg::OFFER]);
        let find = |code: u8| {
            let mut i = 0;
            while i < opts.len() && opts[i] != 255 {
                if opts[i] == code {
                    return Some(&opts[i + 2..i + 2 + opts[i + 1] as usize]);
                }
                i += 2 + opts[i + 1] as usize;
            }
            None
        };
        assert_eq!(find(1), Some(&[255, 255, 255, 0][..]));
        assert_eq!(find(3), Some(&[10, 0, 0, 1][..]));
        assert_eq!(find(26), Some(&1500u16.to_be_bytes()[..]));
        assert_eq!(find(51), Some(&3600u32.to_be_bytes()[..]));
        assert_eq!(find(28), Some(&[10, 0, 0, 255][..]));
    }
}
