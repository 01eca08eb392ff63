//! Any bytes as MBR, GPT header and GPT entry array: no panic (the one table parser of
//! `stage::image`, `run` and `inspect`, through `image::reader`).
#![no_main]

use bakery_image::stage::parttable::{
    GptHeader, check_entries, gpt_entries_at, gpt_header, mbr_signature, parse_gpt_entries,
    parse_mbr,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((parts, _)) = parse_mbr(data) {
        let _ = mbr_signature(data);
        for p in parts {
            let _ = p.kind.name();
        }
    }
    let _ = gpt_entries_at(data);
    let _ = gpt_header(data);
    if data.len() >= 8 {
        // The entry array's CRC check, with a header the fuzzer cannot forge a CRC for.
        let h = GptHeader {
            entries_at: 1024,
            count: u32::from(data[0]),
            entry_size: 128 * u32::from(data[1] % 4 + 1),
            disk_guid: [0; 16],
            entries_crc32: u32::from_le_bytes(data[4..8].try_into().unwrap()),
        };
        let _ = check_entries(&data[8..], &h);
    }
    if data.len() > 8 {
        let count = u32::from(data[0]) * 4;
        let size = 128 * u32::from(data[1] % 4 + 1);
        if let Ok(parts) = parse_gpt_entries(&data[2..], count, size) {
            for p in parts {
                let _ = p.kind.name();
            }
        }
    }
});
