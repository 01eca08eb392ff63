//! Profiles are untrusted text: parsing and validation must never panic.
//! Run with `cargo fuzz run profile` (cargo-fuzz, nightly); not part of CI.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bakery_image::profile::parse(std::path::Path::new("fuzz.toml"), text);
    }
});
