//! `control_request`: one control-socket request line, as the daemon
//! decodes it (`serde_json::from_slice::<Request>`). Any bytes a local
//! client writes must decode or be refused, never panic; a decoded request
//! must survive a round trip through its own serialisation, since the
//! client builds its requests with `to_string`.

#![no_main]

use libfuzzer_sys::fuzz_target;

use lanyard::control::Request;

fuzz_target!(|data: &[u8]| {
    // The server refuses longer lines before decoding them.
    if data.len() > lanyard::control::proto::MAX_REQUEST_LEN {
        return;
    }
    let Ok(req) = serde_json::from_slice::<Request>(data) else {
        return;
    };
    let text = serde_json::to_string(&req).expect("a request serialises");
    let back: Request = serde_json::from_str(&text).expect("a serialised request decodes");
    assert_eq!(back, req, "request does not round-trip: {text}");
});
