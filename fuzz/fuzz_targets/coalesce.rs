//! `coalesce`: the switch's UDP coalescer (`dataplane::coalesce`) over
//! any frames, as a port's turn offers them.
//!
//! Input: a sequence of steps, each
//!
//! ```text
//! ports:u8  vnet:[u8; 10]  len:u16be  frame:[u8; len]
//! ```
//!
//! `ports` bit 0 picks the ingress port (of two), bit 1 the egress port (of
//! two), bit 2 ends the turn after this frame. Each frame is offered as the
//! switch offers it: joined to what is held if it may, else what is held is
//! taken and the frame may start the next. Checked whenever something is
//! taken:
//!
//! * one frame taken is that frame, byte for byte, with its vnet header;
//! * a super-frame passes the switch's own offload check, is cut apart by
//!   `offload::segment` into exactly as many segments as frames joined, and
//!   segment `i`'s payload is frame `i`'s UDP payload;
//! * every segment keeps the first frame's Ethernet header and UDP ports,
//!   and goes to the egress port of the frames that made it.

#![no_main]

use lanyard::dataplane::coalesce::Coalescer;
use lanyard::frame::FrameBuf;
use lanyard::offload::{check_offload, segment};
use lanyard::port::PortId;
use lanyard::wire::vnet::VnetHdr;
use libfuzzer_sys::fuzz_target;

/// What the harness expects the coalescer to hold.
#[derive(Default)]
struct Expect {
    /// The frames that joined, as offered.
    frames: Vec<(VnetHdr, Vec<u8>)>,
    egress: Option<PortId>,
}

fn check_taken(c: &mut Coalescer, want: &mut Expect) {
    let Some((egress, f)) = c.take() else {
        assert!(want.frames.is_empty(), "nothing taken, {} held", want.frames.len());
        return;
    };
    assert_eq!(Some(egress), want.egress, "the egress port");
    let frames = std::mem::take(&mut want.frames);
    assert!(!frames.is_empty(), "taken with nothing held");
    if frames.len() == 1 {
        assert_eq!(
            (f.vnet(), f.frame()),
            (frames[0].0, &frames[0].1[..]),
            "a lone frame goes as it came"
        );
        return;
    }
    let h = f.vnet();
    assert!(
        check_offload(f.frame(), &h).is_ok_and(|s| s.is_some()),
        "the super-frame passes the switch's offload check: {h:?}"
    );
    let first = &frames[0].1;
    let l4 = h.csum_start as usize;
    let mut scratch = FrameBuf::new();
    let mut i = 0;
    let n = segment(f, &mut scratch, |s| {
        let got = s.frame();
        let want = &frames[i].1;
        assert_eq!(&got[..14], &first[..14], "segment {i}: the Ethernet header");
        assert_eq!(&got[l4..l4 + 4], &first[l4..l4 + 4], "segment {i}: the ports");
        assert_eq!(&got[l4 + 8..], &want[l4 + 8..], "segment {i}: its frame's payload");
        i += 1;
    })
    .expect("the super-frame cuts apart");
    assert_eq!(n, frames.len(), "one segment per frame joined");
}

fuzz_target!(|data: &[u8]| {
    let mut c = Coalescer::new();
    let mut want = Expect::default();
    let mut buf = FrameBuf::new();
    let mut rest = data;
    while rest.len() >= 13 {
        let ports = rest[0];
        let vnet = VnetHdr::parse(rest[1..11].try_into().expect("10 bytes"));
        let len = (u16::from_be_bytes([rest[11], rest[12]]) as usize).min(rest.len() - 13);
        let frame = &rest[13..13 + len];
        rest = &rest[13 + len..];
        let (ingress, egress) = (PortId(ports as u32 & 1), PortId(2 + ((ports as u32 >> 1) & 1)));
        buf.load(vnet, frame);
        if c.is_holding() && c.try_join(ingress, egress, &buf) {
            want.frames.push((vnet, frame.to_vec()));
        } else {
            if c.is_holding() {
                check_taken(&mut c, &mut want);
            }
            if c.start(ingress, egress, &buf) {
                want.frames.push((vnet, frame.to_vec()));
                want.egress = Some(egress);
            }
        }
        if ports & 4 != 0 {
            check_taken(&mut c, &mut want);
        }
    }
    check_taken(&mut c, &mut want);
});
