//! `capture_filter`: capture filter expressions and the frames they run on.
//! Any text parses or is refused with an error that points into it; a
//! parsed filter prints back to one that parses equal; `matches` never
//! panics on any bytes, whole or cut short (it runs on the data-path
//! thread, on frames nothing has checked yet).
//!
//! Input layout: the expression (UTF-8, lossily), a 0 byte, the frame (an
//! Ethernet frame, no virtio-net header). Without a 0 byte the whole input
//! is the expression and the frame is empty.

#![no_main]

use std::hint::black_box;

use libfuzzer_sys::fuzz_target;

use lanyard::capture::filter::MAX_LEN;
use lanyard::capture::{Filter, FilterErrorKind};

fuzz_target!(|data: &[u8]| {
    let (expr, frame) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let expr = String::from_utf8_lossy(expr);
    let filter = match Filter::parse(&expr) {
        Ok(f) => f,
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(e.position <= expr.len().max(MAX_LEN), "{e:?}");
            if let FilterErrorKind::TooLong { len } = e.kind {
                assert_eq!(len, expr.len());
                assert!(len > MAX_LEN);
            } else {
                // The error names a token where it stands (or the end).
                assert!(expr.len() <= MAX_LEN);
                assert!(
                    expr.get(e.position..)
                        .is_some_and(|rest| rest.starts_with(&e.token)),
                    "{e:?} does not point into {expr:?}"
                );
            }
            return;
        }
    };

    // The canonical form parses back to the same filter (when it fits:
    // `&&` prints as `and`, so it may grow past the length bound).
    let text = filter.to_string();
    if text.len() <= MAX_LEN {
        let again = Filter::parse(&text)
            .unwrap_or_else(|e| panic!("{text:?} (from {expr:?}) does not parse back: {e}"));
        assert_eq!(again, filter, "{expr:?} printed as {text:?}");
    }
    assert_eq!(filter.is_empty(), text.is_empty());

    // The whole frame and a few cuts of it: at the Ethernet, VLAN, IP and
    // transport boundaries, and the middle.
    black_box(filter.matches(frame));
    for cut in [13, 14, 17, 18, 33, 34, 37, 53, 54, 57, frame.len() / 2] {
        if let Some(part) = frame.get(..cut) {
            black_box(filter.matches(part));
        }
    }
    if filter.is_empty() {
        assert!(filter.matches(frame));
    }
});
