//! `[image]`: board, partition table, partition sizes, output format, compression, the
//! fixed build time and the Imager base URL.

use super::{MAX_IMAGE_SIZE, MIN_BOOT_SIZE, grammar};
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::{Board, Image, OutputFormat, PartitionTable, SquashCompression};
use crate::profile::raw::{RawImage, RawTimestamp};
use crate::profile::types::{ByteSize, Invalid, MIB};

pub(super) fn image(raw: &RawImage, key: &KeyPath, c: &mut Collector<'_>) -> Option<Image> {
    let board_name = raw.board.as_deref().unwrap_or("rpi");
    let board = Board::ALL
        .iter()
        .find(|(n, _)| *n == board_name)
        .map(|(_, b)| *b);
    if board.is_none() {
        c.error(
            &key.key("board"),
            format!("unknown board \"{board_name}\""),
            "board is \"rpi\" (Pi 4 and Pi 5), \"qemu-aarch64\" or \"qemu-x86_64\"",
        );
    }
    let partition_table = match raw.partition_table.as_deref().unwrap_or("gpt") {
        "gpt" => Some(PartitionTable::Gpt),
        "mbr" | "dos" | "msdos" => Some(PartitionTable::Mbr),
        other => {
            c.error(
                &key.key("partition-table"),
                format!("unknown partition table \"{other}\""),
                "use \"gpt\" (default) or \"mbr\" (Pi 3, Zero 2 W)",
            );
            None
        }
    };
    let pi5 = raw.pi5.unwrap_or(false);
    if pi5 && board.is_some_and(|b| b != Board::Rpi) {
        c.error(
            &key.key("pi5"),
            format!("pi5 = true, but board \"{board_name}\" is no Raspberry Pi"),
            "set board = \"rpi\" (one image for Pi 4 and Pi 5), or leave pi5 out",
        );
    }
    let boot_size = c.check(
        &key.key("boot-size"),
        ByteSize::parse(raw.boot_size.as_deref().unwrap_or("512MiB")),
    );
    if let Some(b) = boot_size.filter(|b| b.bytes() < MIN_BOOT_SIZE) {
        c.error(&key.key("boot-size"), format!("boot partition {b} is too small for FAT32"),
            "FAT32 with 4 KiB clusters needs at least 260MiB (smaller volumes become FAT16, which the Pi bootloader rejects); 512MiB is the default");
    }
    let system_size = raw
        .system_size
        .as_ref()
        .and_then(|s| c.check(&key.key("system-size"), ByteSize::parse(s)));
    if let Some(s) = system_size.filter(|s| s.bytes() < 16 * MIB) {
        c.error(
            &key.key("system-size"),
            format!("system partition {s} is too small"),
            "leave system-size out to size it to the squashfs",
        );
    }
    let data_size = c.check(
        &key.key("data-size"),
        ByteSize::parse(raw.data_size.as_deref().unwrap_or("16MiB")),
    );
    if let Some(d) = data_size.filter(|d| d.bytes() < MIB) {
        c.error(
            &key.key("data-size"),
            format!("data placeholder {d} is too small"),
            "use at least 1MiB; it grows to the whole card on first boot",
        );
    }
    for (k, v) in [
        ("boot-size", boot_size),
        ("system-size", system_size),
        ("data-size", data_size),
    ] {
        if let Some(v) = v.filter(|v| v.bytes() % MIB != 0) {
            c.error(
                &key.key(k),
                format!("{v} is not a whole number of MiB"),
                "partitions are aligned to 1 MiB",
            );
        }
        if let Some(v) = v.filter(|v| v.bytes() > MAX_IMAGE_SIZE) {
            c.error(
                &key.key(k),
                format!("{v} exceeds the maximum image size of {}", ByteSize(MAX_IMAGE_SIZE)),
                "images are at most 2TiB (SDXC cards and MBR's 32-bit sectors); the data partition grows to the card on first boot",
            );
        }
    }
    // The partitions plus the partition tables (1 MiB before, 1 MiB after) must fit too.
    let sizes = [boot_size, system_size, data_size];
    if sizes.iter().flatten().all(|v| v.bytes() <= MAX_IMAGE_SIZE) {
        let total: u64 = sizes.iter().flatten().map(|v| v.bytes()).sum::<u64>() + 2 * MIB;
        if total > MAX_IMAGE_SIZE {
            c.error(
                key,
                format!("boot, system and data partitions add up to {}, more than the maximum image size of {}", ByteSize(total), ByteSize(MAX_IMAGE_SIZE)),
                "lower image.data-size: the data partition grows to the card on first boot",
            );
        }
    }
    let format = match raw.format.as_deref().unwrap_or("xz") {
        "xz" => Some(OutputFormat::Xz),
        "zst" | "zstd" => Some(OutputFormat::Zst),
        "raw" | "img" => Some(OutputFormat::Raw),
        other => {
            c.error(
                &key.key("format"),
                format!("unknown output format \"{other}\""),
                "use \"xz\" (Raspberry Pi Imager), \"zst\" or \"raw\"",
            );
            None
        }
    };
    let system_compression = match raw.system_compression.as_deref().unwrap_or("zstd") {
        "zstd" => Some(SquashCompression::Zstd),
        "xz" => Some(SquashCompression::Xz),
        other => {
            c.error(
                &key.key("system-compression"),
                format!("unknown squashfs compression \"{other}\""),
                "use \"zstd\" (default, fast) or \"xz\" (smaller, slow)",
            );
            None
        }
    };
    let timestamp = raw.timestamp.as_ref().and_then(|t| {
        let t = match t {
            RawTimestamp::Datetime(d) => Ok(*d),
            RawTimestamp::Text(s) => s.trim().parse::<toml::value::Datetime>().map_err(|_| {
                Invalid::new(format!("timestamp {s:?} is not an RFC 3339 time"))
                    .hint("write an RFC 3339 time with offset, e.g. 2026-11-01T00:00:00Z")
            }),
        };
        c.check(&key.key("timestamp"), t.and_then(|t| epoch(&t)))
    });
    if let Some(u) = &raw.base_url {
        c.check(
            &key.key("base-url"),
            grammar::url(u, "base-url", &["https://", "http://", "file://"]),
        );
    }
    Some(Image {
        board: board?,
        partition_table: partition_table?,
        pi5,
        boot_size: boot_size?,
        system_size,
        data_size: data_size?,
        format: format?,
        system_compression: system_compression?,
        timestamp,
        base_url: raw.base_url.clone(),
    })
}

/// Seconds since the epoch of a TOML offset date-time.
fn epoch(t: &toml::value::Datetime) -> Result<i64, Invalid> {
    let hint = "write an RFC 3339 time with offset, e.g. 2026-11-01T00:00:00Z";
    let (Some(d), Some(tm), Some(off)) = (t.date, t.time, t.offset) else {
        return Err(Invalid::new(format!("timestamp {t} has no date, time and offset")).hint(hint));
    };
    // Days from civil date (Howard Hinnant's algorithm).
    let (y, m, dd) = (i64::from(d.year), i64::from(d.month), i64::from(d.day));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let off_min = match off {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    Ok(days * 86_400
        + i64::from(tm.hour) * 3600
        + i64::from(tm.minute) * 60
        + i64::from(tm.second.unwrap_or(0))
        - off_min * 60)
}
