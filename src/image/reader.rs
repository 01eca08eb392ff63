//! The one reader of built images, for `run` and `inspect`: an image file (`.img`, or
//! xz/zstd/gzip compressed, recognised by its magic bytes, not its name) opened as a raw
//! disk, its partition table read through the fuzzed [`crate::stage::parttable`], and
//! partition 1's FAT mounted read-only.
//!
//! Input: the image path and, for compressed images, a work directory where the raw
//! image is decompressed as a sparse file (zero MiB blocks become holes). Raw images are
//! used in place. Output: a [`DiskImage`] with the raw file's path, both digests when
//! asked for (the raw image's and the file's as downloaded), and the [`Table`].

use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::compress::{Digest, RawHash, ZEROS};
use crate::error::UserError;
use crate::stage::decompress::{Compression, decoder};
use crate::stage::parttable::{self, PartKind};

/// A partition table as `inspect` shows it and `run` uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    /// "GPT" or "MBR".
    pub kind: &'static str,
    /// The disk GUID (GPT) or `0x` + the disk signature (MBR).
    pub disk_id: String,
    pub partitions: Vec<Partition>,
}

/// One partition of a [`Table`], in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub number: u32,
    pub start: u64,
    pub size: u64,
    /// The GPT type GUID (upper case) or the MBR system id (`0x0c`).
    pub kind: String,
    /// The GPT partition name (empty for MBR).
    pub label: String,
    /// The GPT unique partition GUID (empty for MBR).
    pub guid: String,
}

/// An opened image: the raw disk and its table.
#[derive(Debug)]
pub struct DiskImage {
    /// The raw disk: the image itself or its decompressed copy in the work directory.
    pub raw_path: PathBuf,
    /// Whether `raw_path` is a decompressed copy (writable without touching the image).
    pub decompressed: bool,
    /// Digests of the raw image and of the file as given (when asked for).
    pub digests: Option<(Digest, Digest)>,
    pub table: Table,
}

/// Open `image`; a compressed one is decompressed to `work/disk.img`. With `hash`, both
/// digests are computed while reading (a raw image is then read once in full).
pub fn open(image: &Path, work: &Path, hash: bool) -> Result<DiskImage> {
    let shown = image.display();
    let (raw_path, decompressed, digests) =
        materialise(image, work, hash).with_context(|| format!("reading the image {shown}"))?;
    let file = fs_err::File::open(&raw_path)?;
    // A file that is no disk image is the user's to fix (exit 1), not an I/O failure.
    let table = read_table(file.file()).map_err(|e| {
        UserError(format!(
            "{shown}: reading the partition table: {e:#}\nhint: give an image written by `bakery-image build` (.img, .img.xz or .img.zst)"
        ))
    })?;
    Ok(DiskImage {
        raw_path,
        decompressed,
        digests,
        table,
    })
}

impl DiskImage {
    /// Partition `n` (1-based) or an error naming the image.
    pub fn partition(&self, n: u32) -> Result<&Partition> {
        self.table
            .partitions
            .iter()
            .find(|p| p.number == n)
            .with_context(|| {
                format!(
                    "{}: the {} has no partition {n}",
                    self.raw_path.display(),
                    self.table.kind
                )
            })
    }

    /// Mount partition 1's FAT read-only.
    pub fn boot_fat(&self) -> Result<FatVolume> {
        mount_fat(&self.raw_path, self.partition(1)?)
    }

    /// Read `names` (paths from the root) from partition 1's FAT.
    pub fn read_boot_files(&self, names: &[&str]) -> Result<Vec<Vec<u8>>> {
        let vol = self.boot_fat()?;
        names
            .iter()
            .map(|n| {
                vol.read(format!("/{}", n.trim_start_matches('/')))
                    .map_err(|e| anyhow::anyhow!("{n} on partition 1: {e:?}"))
            })
            .collect()
    }

    /// Grow the raw disk to at least `size` bytes (a bigger card): only a decompressed
    /// copy or an image the caller lets the VM write.
    pub fn grow_to(&self, size: u64) -> Result<()> {
        let f = fs_err::OpenOptions::new()
            .write(true)
            .open(&self.raw_path)?;
        if f.metadata()?.len() < size {
            f.set_len(size)?;
        }
        Ok(())
    }

    /// The raw disk's size in bytes.
    pub fn size(&self) -> Result<u64> {
        Ok(fs_err::metadata(&self.raw_path)?.len())
    }
}

/// Partition 1's FAT, mounted read-only.
pub type FatVolume = hadris_fs::sync::Volume<
    hadris_fat::sync::FatFs<hadris_storage::Partition<hadris_storage::host::FileDevice>>,
>;

/// Mount the FAT of `p` in the raw disk `disk`, read-only.
pub fn mount_fat(disk: &Path, p: &Partition) -> Result<FatVolume> {
    let dev = hadris_storage::host::FileDevice::with_block_size(
        fs_err::File::open(disk)?.into_parts().0,
        hadris_storage::BlockSize::new(512).expect("512 is a block size"),
    )
    .with_context(|| format!("opening {}", disk.display()))?;
    let fs = hadris_fat::sync::FatFs::mount(
        hadris_storage::Partition::new(dev, p.start, p.size),
        hadris_fs::MountOptions::new().read_only(),
    )
    .map_err(|e| {
        UserError(format!(
            "{}: partition {} holds no FAT filesystem bakery-image can read ({})\n\
             hint: give an image built by bakery-image (its p1 is the FAT boot partition)",
            disk.display(),
            p.number,
            e.error()
        ))
    })?;
    Ok(hadris_fs::sync::Volume::new(fs))
}

/// The partition table of a raw disk.
pub fn read_table(f: &std::fs::File) -> Result<Table> {
    let at = |off: u64, len: usize| -> Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        f.read_exact_at(&mut b, off)
            .with_context(|| format!("reading {len} bytes at offset {off}"))?;
        Ok(b)
    };
    let lba0 = at(0, 512)?;
    let (parts, gpt) = parttable::parse_mbr(&lba0)?;
    if !gpt {
        return Ok(Table {
            kind: "MBR",
            disk_id: format!("0x{:08x}", parttable::mbr_signature(&lba0)?),
            partitions: parts.iter().map(partition).collect(),
        });
    }
    let h = parttable::gpt_header(&at(512, 512)?)?;
    let array = at(h.entries_at, h.count as usize * h.entry_size as usize)?;
    parttable::check_entries(&array, &h)?;
    let parts = parttable::parse_gpt_entries(&array, h.count, h.entry_size)?;
    Ok(Table {
        kind: "GPT",
        disk_id: uuid::Uuid::from_bytes_le(h.disk_guid).to_string(),
        partitions: parts.iter().map(partition).collect(),
    })
}

fn partition(p: &parttable::Part) -> Partition {
    let (kind, guid) = match p.kind {
        PartKind::Mbr(ty) => (format!("0x{ty:02x}"), String::new()),
        PartKind::Gpt {
            type_guid, guid, ..
        } => (
            uuid::Uuid::from_bytes_le(type_guid)
                .to_string()
                .to_uppercase(),
            uuid::Uuid::from_bytes_le(guid).to_string(),
        ),
    };
    Partition {
        number: p.number,
        start: p.offset,
        size: p.len,
        kind,
        label: p.kind.name(),
        guid,
    }
}

/// The raw disk's path, whether it is a decompressed copy, and the digests.
type Materialised = (PathBuf, bool, Option<(Digest, Digest)>);

/// The raw disk of `image`: itself, or decompressed to `work/disk.img` (sparse).
fn materialise(image: &Path, work: &Path, hash: bool) -> Result<Materialised> {
    let mut src = BufReader::new(fs_err::File::open(image)?);
    let mut file_hash = RawHash::default();
    let mut raw_hash = RawHash::default();
    let c = crate::stage::decompress::detect(std::io::BufRead::fill_buf(&mut src)?);
    if c == Compression::Bzip2 {
        return Err(UserError(format!(
            "{} is bzip2-compressed\nhint: decompress it (bunzip2) or give .img, .img.xz or .img.zst",
            image.display()
        ))
        .into());
    }
    if c == Compression::None {
        if !hash {
            return Ok((image.to_owned(), false, None));
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = crate::io::read_full(&mut src, &mut buf)?;
            if n == 0 {
                break;
            }
            raw_hash.update(&buf[..n]);
        }
        let d = raw_hash.finish();
        return Ok((image.to_owned(), false, Some((d.clone(), d))));
    }
    let out_path = work.join("disk.img");
    let mut out = fs_err::File::create(&out_path)?;
    let tee = TeeHash {
        inner: &mut src,
        hash: hash.then_some(&mut file_hash),
    };
    let (_, mut dec) = decoder(BufReader::new(tee))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut len = 0u64;
    loop {
        let n = crate::io::read_full(&mut dec, &mut buf)
            .with_context(|| format!("decompressing {}", image.display()))?;
        if n == 0 {
            break;
        }
        if hash {
            raw_hash.update(&buf[..n]);
        }
        if buf[..n] == ZEROS[..n] {
            out.seek(SeekFrom::Current(n as i64))?;
        } else {
            out.write_all(&buf[..n])?;
        }
        len += n as u64;
    }
    drop(dec);
    out.set_len(len)?;
    if !hash {
        return Ok((out_path, true, None));
    }
    // Whatever the decoder did not consume (trailing padding) still counts for the file.
    let mut rest = Vec::new();
    src.read_to_end(&mut rest)?;
    file_hash.update(&rest);
    Ok((
        out_path,
        true,
        Some((raw_hash.finish(), file_hash.finish())),
    ))
}

/// Hashes what passes through (the compressed file's bytes).
struct TeeHash<'a, R> {
    inner: &'a mut R,
    hash: Option<&'a mut RawHash>,
}

impl<R: Read> Read for TeeHash<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if let Some(h) = self.hash.as_mut() {
            h.update(&buf[..n]);
        }
        Ok(n)
    }
}
