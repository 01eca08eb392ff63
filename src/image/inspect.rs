//! `bakery-image inspect IMAGE`: what is in an image, and whether its checksums hold.
//!
//! Reads `.img`, `.img.xz` or `.img.zst` through [`super::reader`] (the reader `run`
//! uses too: decompressed into a sparse temporary file, the table parsed by the fuzzed
//! `stage::parttable`), prints the partition table, the filesystems (FAT label/serial and top-level entries,
//! squashfs superblock), the node's `bakery/node.env`, and verifies every checksum it
//! finds: the `<image>.sha256` file beside it, `SHA256SUMS` and `os_list.json` in the same
//! directory (extract and download digests and sizes).

use std::fmt::Write as _;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::compress::Digest;
pub use super::reader::Partition as FoundPartition;

/// A checksum and whether it matched.
#[derive(Debug, Clone)]
pub struct Check {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Clone)]
pub struct Inspection {
    pub table: String,
    pub disk_id: String,
    pub partitions: Vec<FoundPartition>,
    pub raw: Digest,
    pub download: Digest,
    pub fat: Option<FatSummary>,
    pub squashfs: Option<String>,
    pub checks: Vec<Check>,
}

#[derive(Debug, Clone)]
pub struct FatSummary {
    pub kind: String,
    pub label: String,
    pub serial: String,
    pub top: Vec<String>,
    pub node_env: Option<String>,
}

impl Inspection {
    pub fn all_ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "image: {} bytes, sha256 {}",
            self.raw.size, self.raw.sha256
        );
        if self.download != self.raw {
            let _ = writeln!(
                o,
                "file:  {} bytes, sha256 {}",
                self.download.size, self.download.sha256
            );
        }
        let _ = writeln!(o, "partition table: {} ({})", self.table, self.disk_id);
        for p in &self.partitions {
            let _ = writeln!(
                o,
                "  p{} start {} size {} type {} {} {}",
                p.number, p.start, p.size, p.kind, p.label, p.guid
            );
        }
        if let Some(f) = &self.fat {
            let _ = writeln!(o, "p1: {} label {} serial {}", f.kind, f.label, f.serial);
            let _ = writeln!(o, "  top level: {}", f.top.join(" "));
            match &f.node_env {
                Some(env) => {
                    let _ = writeln!(o, "  bakery/node.env:");
                    for l in env.lines() {
                        let _ = writeln!(o, "    {l}");
                    }
                }
                None => {
                    let _ = writeln!(o, "  no bakery/node.env");
                }
            }
        }
        if let Some(s) = &self.squashfs {
            let _ = writeln!(o, "p2: {s}");
        }
        let _ = writeln!(o, "checksums:");
        if self.checks.is_empty() {
            let _ = writeln!(o, "  none found beside the image");
        }
        for c in &self.checks {
            let _ = writeln!(
                o,
                "  {} {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.what,
                c.detail
            );
        }
        o
    }
}

fn read_at(f: &File, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    f.read_exact_at(&mut b, off)
        .with_context(|| format!("reading {len} bytes at offset {off}"))?;
    Ok(b)
}

fn fat_summary(disk: &Path, f: &File, p: &FoundPartition) -> Result<FatSummary> {
    let bs = read_at(f, p.start, 512)?;
    let kind = String::from_utf8_lossy(&bs[82..90]).trim().to_owned();
    let label = String::from_utf8_lossy(&bs[71..82]).trim().to_owned();
    let serial = u32::from_le_bytes([bs[67], bs[68], bs[69], bs[70]]);
    let vol = super::reader::mount_fat(disk, p)?;
    let mut top = Vec::new();
    let mut rd = vol
        .read_dir("/")
        .map_err(|e| anyhow::anyhow!("listing the FAT root: {e:?}"))?;
    while let Some(e) = rd.next_entry() {
        let e = e.map_err(|e| anyhow::anyhow!("listing the FAT root: {e:?}"))?;
        let mut n = String::from_utf8_lossy(e.name().as_bytes()).into_owned();
        if e.file_type().is_dir() {
            n.push('/');
        }
        top.push(n);
    }
    drop(rd);
    top.sort();
    let node_env = vol
        .read("/bakery/node.env")
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned());
    Ok(FatSummary {
        kind,
        label,
        serial: format!("{:04X}-{:04X}", serial >> 16, serial & 0xffff),
        top,
        node_env,
    })
}

fn squashfs_summary(f: &File, p: &FoundPartition) -> Result<String> {
    let sb = read_at(f, p.start, 96)?;
    if &sb[0..4] != b"hsqs" {
        return Ok("not squashfs".into());
    }
    let le32 = |o: usize| u32::from_le_bytes([sb[o], sb[o + 1], sb[o + 2], sb[o + 3]]);
    let comp = match u16::from_le_bytes([sb[20], sb[21]]) {
        1 => "gzip",
        4 => "xz",
        6 => "zstd",
        _ => "other",
    };
    let used = u64::from_le_bytes(sb[40..48].try_into().expect("8 bytes"));
    Ok(format!(
        "squashfs {}.{} {comp}, {} inodes, block size {}, {used} bytes, time {}",
        u16::from_le_bytes([sb[28], sb[29]]),
        u16::from_le_bytes([sb[30], sb[31]]),
        le32(4),
        le32(12),
        le32(8)
    ))
}

/// The checksum files beside `image` and what they say about it.
fn checks(image: &Path, raw: &Digest, download: &Digest) -> Vec<Check> {
    let dir = image.parent().unwrap_or(Path::new("."));
    let name = image
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut v = Vec::new();
    let mut sums = |what: String, text: &str| {
        if let Some(line) = text.lines().find(|l| {
            l.split_whitespace()
                .nth(1)
                .map(|f| f.trim_start_matches('*'))
                == Some(&name)
        }) {
            let want = line.split_whitespace().next().unwrap_or("");
            v.push(Check {
                ok: want == download.sha256,
                detail: format!("expects {want}"),
                what,
            });
        }
    };
    let side = PathBuf::from(format!("{}.sha256", image.display()));
    if let Ok(t) = std::fs::read_to_string(&side) {
        sums(format!("{name}.sha256"), &t);
    }
    if let Ok(t) = std::fs::read_to_string(dir.join("SHA256SUMS")) {
        sums("SHA256SUMS".into(), &t);
    }
    if let Ok(t) = std::fs::read_to_string(dir.join("os_list.json")) {
        match serde_json::from_str::<serde_json::Value>(&t) {
            Ok(j) => {
                let entry = j["os_list"].as_array().and_then(|l| {
                    l.iter().find(|e| {
                        e["url"]
                            .as_str()
                            .is_some_and(|u| u.rsplit('/').next() == Some(&name))
                    })
                });
                if let Some(e) = entry {
                    let pairs = [
                        (
                            "extract_sha256",
                            e["extract_sha256"].as_str().map(str::to_owned),
                            raw.sha256.clone(),
                        ),
                        (
                            "extract_size",
                            e["extract_size"].as_u64().map(|n| n.to_string()),
                            raw.size.to_string(),
                        ),
                        (
                            "image_download_sha256",
                            e["image_download_sha256"].as_str().map(str::to_owned),
                            download.sha256.clone(),
                        ),
                        (
                            "image_download_size",
                            e["image_download_size"].as_u64().map(|n| n.to_string()),
                            download.size.to_string(),
                        ),
                    ];
                    for (k, want, have) in pairs {
                        v.push(Check {
                            what: format!("os_list.json {k}"),
                            ok: want.as_deref() == Some(have.as_str()),
                            detail: format!("expects {}", want.unwrap_or_else(|| "nothing".into())),
                        });
                    }
                }
            }
            Err(e) => v.push(Check {
                what: "os_list.json".into(),
                ok: false,
                detail: format!("not JSON: {e}"),
            }),
        }
    }
    v
}

/// Inspect an image file.
pub fn inspect(image: &Path) -> Result<Inspection> {
    let tmp = tempfile::Builder::new()
        .prefix("bakery-inspect-")
        .tempdir()
        .context("creating a temporary directory")?;
    let disk = super::reader::open(image, tmp.path(), true)?;
    let (raw, download) = disk.digests.clone().expect("asked for digests");
    let f = fs_err::File::open(&disk.raw_path)?.into_parts().0;
    let super::reader::Table {
        kind,
        disk_id,
        partitions: parts,
    } = disk.table.clone();
    let fat = match parts.first() {
        Some(p) => Some(fat_summary(&disk.raw_path, &f, p).context("reading partition 1")?),
        None => None,
    };
    let squashfs = match parts.get(1) {
        Some(p) => Some(squashfs_summary(&f, p)?),
        None => None,
    };
    let checks = checks(image, &raw, &download);
    Ok(Inspection {
        table: kind.to_owned(),
        disk_id,
        partitions: parts,
        raw,
        download,
        fat,
        squashfs,
        checks,
    })
}
