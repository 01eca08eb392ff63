//! Partition 1: a FAT32 volume written from a [`Tree`] with hadris-fat.
//!
//! 4 KiB clusters, label `BAKERY-BOOT`, the plan's volume id and the build timestamp on
//! every entry, so the same tree gives the same bytes. FAT stores only directories and
//! regular files; anything else in the boot tree is a bug upstream and an error here (the
//! crate would skip it with a warning). The volume is written straight into the
//! partition's byte range of the image file, which must be freshly sized (`format` does
//! not zero the data area).

use std::io::{Read, Seek, Write};

use anyhow::{Context, Result, bail};
use hadris_fat::{FatKind, FatOptions, VolumeLabel};
use hadris_fs::{Content, DateTime, Node};
use hadris_io::StdIo;
use hadris_storage::sync::StreamDevice;
use hadris_storage::{BlockSize, Partition};

use crate::plan::layout::SECTOR;
use crate::stage::{Kind, Tree};

pub const LABEL: &str = "BAKERY-BOOT";
pub const CLUSTER: u32 = 4096;

/// What went into the FAT volume.
#[derive(Debug, Clone)]
pub struct FatInfo {
    pub files: usize,
    pub dirs: usize,
    pub bytes: u64,
}

/// Convert a boot tree into hadris' tree (contents read into memory).
fn to_hadris(tree: &Tree) -> Result<(hadris_fs::Tree, FatInfo)> {
    let mut out = hadris_fs::Tree::new();
    let mut info = FatInfo {
        files: 0,
        dirs: 0,
        bytes: 0,
    };
    for (path, e) in tree.iter() {
        if path.is_empty() {
            continue;
        }
        let node = match &e.kind {
            Kind::Dir => {
                info.dirs += 1;
                Node::dir()
            }
            Kind::File(data) => {
                let bytes = data
                    .read()
                    .with_context(|| format!("reading boot file {path}"))?;
                info.files += 1;
                info.bytes += bytes.len() as u64;
                Node::file(Content::bytes(bytes))
            }
            other => bail!(
                "boot partition entry {path} is a {}; FAT holds only directories and regular files",
                kind_name(other)
            ),
        };
        out.insert(path, node)
            .map_err(|e| anyhow::anyhow!("adding {path} to the FAT tree: {e:?}"))?;
    }
    Ok((out, info))
}

pub(crate) fn kind_name(k: &Kind) -> &'static str {
    match k {
        Kind::Dir => "directory",
        Kind::File(_) => "regular file",
        Kind::Symlink(_) => "symlink",
        Kind::Hardlink(_) => "hard link",
        Kind::CharDev { .. } => "character device",
        Kind::BlockDev { .. } => "block device",
        Kind::Fifo => "fifo",
        Kind::Socket => "socket",
    }
}

/// Parse the plan's volume id ("1234ABCD").
pub fn parse_volume_id(id: &str) -> Result<u32> {
    u32::from_str_radix(id, 16).with_context(|| format!("FAT volume id {id:?} is not hex"))
}

/// A block device of 512-byte sectors over a whole image.
fn device<D: Read + Write + Seek>(mut img: D) -> Result<StreamDevice<StdIo<D>>> {
    let len = img.seek(std::io::SeekFrom::End(0))?;
    Ok(StreamDevice::with_block_count(
        StdIo::new(img),
        BlockSize::new(SECTOR as u32).expect("512 is a block size"),
        len / SECTOR,
    ))
}

/// Format `[start, start + size)` of `img` (a whole image, freshly zeroed) as FAT32 and
/// copy `tree` into it.
pub fn write_fat<D: Read + Write + Seek>(
    img: D,
    start: u64,
    size: u64,
    tree: &Tree,
    volume_id: u32,
    timestamp: i64,
) -> Result<FatInfo> {
    let (htree, info) = to_hadris(tree)?;
    let time = DateTime::from_unix_seconds(timestamp)
        .map_err(|e| anyhow::anyhow!("build timestamp {timestamp} for FAT: {e:?}"))?;
    let opts = FatOptions::new()
        .with_kind(FatKind::Fat32)
        .with_cluster_size(CLUSTER)
        .with_label(VolumeLabel::new(LABEL).map_err(|e| anyhow::anyhow!("FAT label: {e:?}"))?)
        .with_serial(volume_id)
        .with_time(time);
    let dev = device(img)?;
    let report = hadris_fat::sync::write(Partition::new(dev, start, size), &htree, &opts)
        .map_err(|e| anyhow::anyhow!("writing FAT32 ({size} bytes): {e:?}"))?;
    if !report.warnings().is_empty() {
        let list: Vec<String> = report
            .warnings()
            .iter()
            .map(|w| {
                format!(
                    "{} ({})",
                    String::from_utf8_lossy(w.path().unwrap_or(b"?")),
                    w.message()
                )
            })
            .collect();
        tracing::warn!("FAT writer: {}", list.join(", "));
    }
    Ok(info)
}

/// Where the bytes of `paths` lie in the image: `(path, image offset, length)` for each
/// file stored in one run of clusters (length rounded up to whole clusters; the slack of
/// a fresh volume is zeros). Files in several runs are left out.
pub fn file_runs<D: Read + Write + Seek>(
    img: D,
    start: u64,
    size: u64,
    paths: &[String],
) -> Result<Vec<(String, u64, u64)>> {
    let dev = device(img)?;
    let mut fs = hadris_fat::sync::FatFs::mount(
        Partition::new(dev, start, size),
        hadris_fs::MountOptions::new(),
    )
    .map_err(|e| anyhow::anyhow!("mounting the new FAT: {e:?}"))?;
    let mut out = Vec::new();
    let mut runs = [hadris_fs::Extent::new(0, 0); 2];
    for p in paths {
        let node = fs
            .resolve(p.as_bytes(), hadris_fs::Resolve::Lexical)
            .map_err(|e| anyhow::anyhow!("finding {p} on the new FAT: {e:?}"))?;
        let n = fs
            .extents(node, 0, &mut runs)
            .map_err(|e| anyhow::anyhow!("mapping {p} on the new FAT: {e:?}"))?;
        if n == 1 {
            let len = runs[0].len().div_ceil(u64::from(CLUSTER)) * u64::from(CLUSTER);
            out.push((p.clone(), start + runs[0].offset(), len));
        }
    }
    Ok(out)
}
