//! `-p` specs (CLI and control socket input): any text parses or is refused
//! with a reason; an accepted spec prints back to an equal spec and expands
//! to one mapping per container port.

#![no_main]

use libfuzzer_sys::fuzz_target;

use lanyard::publish::PublishSpec;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match text.parse::<PublishSpec>() {
        Ok(spec) => {
            let again: PublishSpec = spec
                .to_string()
                .parse()
                .unwrap_or_else(|e| panic!("{spec} does not parse back: {e}"));
            assert_eq!(again, spec);
            let (a, b) = spec.container_ports;
            assert!(a >= 1 && a <= b);
            assert_eq!(spec.mappings().len(), (b - a) as usize + 1);
        }
        Err(why) => assert!(!why.is_empty()),
    }
});
