//! What a scraper sends `--metrics` (any local user can connect): any
//! bytes get one whole HTTP/1.1 response whose Content-Length is its
//! body's (or, for HEAD, the body it would have), 200 only for GET or
//! HEAD of /metrics or /, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;

use lanyard::metrics::{respond_to, MAX_REQUEST};

fuzz_target!(|data: &[u8]| {
    let (flag, req) = match data.split_first() {
        Some((f, r)) => (*f, r),
        None => (0, data),
    };
    let req = &req[..req.len().min(MAX_REQUEST)];
    let body = "lanyard_ports 0\n";
    let render = || -> Result<String, String> {
        if flag & 1 == 0 {
            Ok(body.to_string())
        } else {
            Err("data path unavailable".to_string())
        }
    };
    let out = respond_to(req, flag & 2 != 0, &render);
    let text = String::from_utf8(out).expect("responses are text");
    assert!(text.starts_with("HTTP/1.1 "), "{text:?}");
    let (head, rest) = text.split_once("\r\n\r\n").expect("a head");
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .parse()
        .unwrap();
    let first = String::from_utf8_lossy(req);
    // The method as the server reads it: the request line's first word.
    let method = first.lines().next().unwrap_or("").split_whitespace().next();
    let is_head = method == Some("HEAD") && flag & 2 == 0;
    // HEAD gets no body whatever the status but 405/400; the rest get
    // exactly Content-Length bytes.
    if is_head && !rest.is_empty() {
        assert!(head.contains(" 400 ") || head.contains(" 405 "), "{text:?}");
    }
    if !is_head {
        assert_eq!(rest.len(), len, "{text:?}");
    }
    if head.starts_with("HTTP/1.1 200") {
        assert!(flag & 2 == 0 && flag & 1 == 0);
        assert!(method == Some("GET") || is_head, "{first:?}");
    }
});
