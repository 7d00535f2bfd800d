//! The embedded servers' parsers of untrusted bytes: DNS queries (header,
//! question, name decoding, the answers built for them) and DHCP client
//! messages (BOOTP header and options, the replies built for them). Any
//! input is parsed or refused; nothing built from an accepted one may go out
//! of bounds.

#![no_main]

use std::net::Ipv4Addr;

use libfuzzer_sys::fuzz_target;

use lanyard::wire::dhcp;
use lanyard::wire::dns;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = dns::parse_query(data) {
        assert!(q.question.len() + dns::HEADER_LEN <= data.len());
        let mut name = [0u8; 256];
        if let Ok(n) = dns::question_name(&q, &mut name) {
            assert!(n.len() <= dns::MAX_NAME_LEN);
            assert_eq!(n, n.to_ascii_lowercase());
            let _ = dns::reverse_v4(n);
            let mut out = [0u8; 600];
            let answers = [dns::Rdata::A([10, 0, 0, 1]), dns::Rdata::Name(n)];
            let len = dns::build_response(
                &q,
                dns::rcode::NOERROR,
                answers,
                600,
                dns::MAX_UDP_LEN,
                &mut out,
            );
            assert!(len <= dns::MAX_UDP_LEN);
            if len > 0 {
                // Our own answer must parse back as a response with the
                // question unchanged.
                assert_eq!(
                    &out[dns::HEADER_LEN..dns::HEADER_LEN + q.question.len()],
                    q.question
                );
                assert_eq!(out[2] & 0x80, 0x80);
            }
        }
    }
    if let Ok(m) = dhcp::parse_client(data) {
        assert!(m.chaddr.is_unicast());
        let mut out = [0u8; dhcp::MIN_LEN + 128];
        let n = dhcp::emit_reply(
            &m,
            &dhcp::Reply {
                msg_type: dhcp::msg::OFFER,
                yiaddr: Ipv4Addr::new(10, 0, 0, 2),
                server: Ipv4Addr::new(10, 0, 0, 1),
                prefix_len: (data.len() % 33) as u8,
                router: Some(Ipv4Addr::new(10, 0, 0, 1)),
                dns: Some(Ipv4Addr::new(10, 0, 0, 1)),
                mtu: Some(1500),
                lease_secs: Some(3600),
            },
            &mut out,
        );
        assert!(n >= dhcp::MIN_LEN && n <= out.len());
        assert_eq!(&out[28..34], &m.chaddr.0);
    }
});
