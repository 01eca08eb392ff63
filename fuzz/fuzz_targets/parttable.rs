//! Any bytes as MBR, GPT header and GPT entry array: no panic.
#![no_main]

use bakery_image::stage::parttable::{gpt_entries_at, parse_gpt_entries, parse_mbr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = parse_mbr(data);
    let _ = gpt_entries_at(data);
    if data.len() > 8 {
        let count = u32::from(data[0]) * 4;
        let size = 128 * u32::from(data[1] % 4 + 1);
        let _ = parse_gpt_entries(&data[2..], count, size);
    }
});
