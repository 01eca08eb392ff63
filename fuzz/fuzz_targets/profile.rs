//! Profiles are untrusted text: parsing and validation must never panic.
//! Run by `ci/fuzz` (cargo-fuzz, nightly), or `cargo +nightly fuzz run profile`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = bakery_image::profile::parse(std::path::Path::new("fuzz.toml"), text);
    }
});
