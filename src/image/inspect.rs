//! `bakery-image inspect IMAGE`: what is in an image, and whether its checksums hold.
//!
//! Reads `.img`, `.img.xz` or `.img.zst` (decompressed into a sparse temporary file),
//! prints the partition table, the filesystems (FAT label/serial and top-level entries,
//! squashfs superblock), the node's `bakery/node.env`, and verifies every checksum it
//! finds: the `<image>.sha256` file beside it, `SHA256SUMS` and `os_list.json` in the same
//! directory (extract and download digests and sizes).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::compress::{Digest, RawHash};

/// One partition as found in the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundPartition {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    pub kind: String,
    pub label: String,
    pub guid: String,
}

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

/// Decompress (if needed) into a sparse file, hashing both sides.
fn materialise(path: &Path, tmp: &Path) -> Result<(File, Digest, Digest)> {
    let name = path.to_string_lossy();
    let mut src = fs_err::File::open(path)?;
    let mut file_hash = RawHash::default();
    let mut raw_hash = RawHash::default();
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    let tee = TeeHash {
        inner: &mut src,
        hash: &mut file_hash,
    };
    let mut reader: Box<dyn Read + '_> = if name.ends_with(".xz") {
        Box::new(liblzma::read::XzDecoder::new_multi_decoder(
            std::io::BufReader::new(tee),
        ))
    } else if name.ends_with(".zst") {
        Box::new(zstd::stream::read::Decoder::new(tee)?)
    } else {
        Box::new(tee)
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = crate::io::read_full(&mut reader, &mut buf)?;
        if n == 0 {
            break;
        }
        raw_hash.update(&buf[..n]);
        if buf[..n] == super::compress::ZEROS[..n] {
            out.seek(SeekFrom::Current(n as i64))?;
        } else {
            out.write_all(&buf[..n])?;
        }
        len += n as u64;
    }
    drop(reader);
    // Whatever the decoder did not consume (trailing padding) still counts for the file.
    let mut rest = Vec::new();
    src.read_to_end(&mut rest)?;
    file_hash.update(&rest);
    out.set_len(len)?;
    Ok((out, raw_hash.finish(), file_hash.finish()))
}

struct TeeHash<'a, R> {
    inner: &'a mut R,
    hash: &'a mut RawHash,
}

impl<R: Read> Read for TeeHash<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
}

fn read_at(f: &mut File, off: u64, len: usize) -> Result<Vec<u8>> {
    let mut b = vec![0u8; len];
    f.seek(SeekFrom::Start(off))?;
    f.read_exact(&mut b)?;
    Ok(b)
}

fn partitions(f: &mut File) -> Result<(String, String, Vec<FoundPartition>)> {
    let lba0 = read_at(f, 0, 512)?;
    if lba0[510..512] != [0x55, 0xaa] {
        anyhow::bail!("no partition table (no MBR signature)");
    }
    if lba0[450] == 0xee {
        let disk = gpt::GptConfig::new()
            .writable(false)
            .open_from_device(&mut *f)
            .context("reading the GPT")?;
        let parts = disk
            .partitions()
            .iter()
            .map(|(n, p)| FoundPartition {
                number: *n,
                start: p.first_lba * 512,
                size: (p.last_lba + 1 - p.first_lba) * 512,
                kind: p.part_type_guid.guid.to_string().to_uppercase(),
                label: p.name.clone(),
                guid: p.part_guid.to_string(),
            })
            .collect();
        Ok(("GPT".into(), disk.guid().to_string(), parts))
    } else {
        let mbr = mbrman::MBR::read_from(&mut *f, 512).context("reading the MBR")?;
        let parts = mbr
            .iter()
            .filter(|(_, p)| p.is_used())
            .map(|(n, p)| FoundPartition {
                number: n as u32,
                start: u64::from(p.starting_lba) * 512,
                size: u64::from(p.sectors) * 512,
                kind: format!("0x{:02x}", p.sys),
                label: String::new(),
                guid: String::new(),
            })
            .collect();
        let sig = u32::from_le_bytes(mbr.header.disk_signature);
        Ok(("MBR".into(), format!("0x{sig:08x}"), parts))
    }
}

fn fat_summary(f: &mut File, p: &FoundPartition) -> Result<FatSummary> {
    let bs = read_at(f, p.start, 512)?;
    let kind = String::from_utf8_lossy(&bs[82..90]).trim().to_owned();
    let label = String::from_utf8_lossy(&bs[71..82]).trim().to_owned();
    let serial = u32::from_le_bytes([bs[67], bs[68], bs[69], bs[70]]);
    let dev = hadris_storage::host::FileDevice::with_block_size(
        f.try_clone()?,
        hadris_storage::BlockSize::new(512).expect("512 is a block size"),
    )?;
    let part = hadris_storage::Partition::new(dev, p.start, p.size);
    let fs = hadris_fat::sync::FatFs::mount(part, hadris_fs::MountOptions::new())
        .map_err(|e| anyhow::anyhow!("mounting the FAT: {e:?}"))?;
    let vol = hadris_fs::sync::Volume::new(fs);
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

fn squashfs_summary(f: &mut File, p: &FoundPartition) -> Result<String> {
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
        .prefix(".bakery-inspect-")
        .tempfile()
        .context("creating a temporary file")?;
    let (mut f, raw, download) =
        materialise(image, tmp.path()).with_context(|| format!("reading {}", image.display()))?;
    let (table, disk_id, parts) = partitions(&mut f)?;
    let fat = match parts.first() {
        Some(p) => Some(fat_summary(&mut f, p).context("reading partition 1")?),
        None => None,
    };
    let squashfs = match parts.get(1) {
        Some(p) => Some(squashfs_summary(&mut f, p)?),
        None => None,
    };
    let checks = checks(image, &raw, &download);
    Ok(Inspection {
        table,
        disk_id,
        partitions: parts,
        raw,
        download,
        fat,
        squashfs,
        checks,
    })
}
