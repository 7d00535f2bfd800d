//! `config`: `Config::parse` on arbitrary text. A user's config file is
//! untrusted input to the daemon: any text must give a config or an error
//! naming a field, never a panic (an index into the text for the error's
//! line number, an overflowing subnet computation, ...).

#![no_main]

use libfuzzer_sys::fuzz_target;

use lanyard::config::Config;

fuzz_target!(|data: &[u8]| {
    // The daemon reads the file with `read_to_string`, so only UTF-8 text
    // ever reaches `parse`.
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::parse(text) {
        Ok(config) => {
            // What parse accepted must hold together.
            for n in &config.networks {
                assert!(n.subnet.contains(&n.gateway), "gateway outside subnet");
                assert!(n.subnet.contains(&n.ip_range), "ip_range outside subnet");
                assert!(config.network(&n.name).is_some());
            }
            assert!(config.limits.fdb_max_per_port as usize <= config.limits.fdb_max_entries);
        }
        Err(e) => {
            assert!(!e.field.is_empty(), "error names no field: {e}");
        }
    }
});
