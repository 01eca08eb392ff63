//! Partition 2: the system tree as a squashfs image (backhand), identical for every node.
//!
//! Modes, owners, mtimes, symlinks, device nodes, fifos and sockets are kept; hard links
//! become copies (the data is deduplicated, nlink is 1). backhand cannot store xattrs: the
//! files that carry some are listed in a warning, never dropped silently. The root
//! directory gets the tree root's mode/owner and the build timestamp as mtime (backhand's
//! writer only exposes that through a filesystem reader, hence the small detour).

use std::io::{BufWriter, Cursor, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use backhand::compression::{CompressionOptions, Compressor, Zstd};
use backhand::{FilesystemCompressor, FilesystemReader, FilesystemWriter, NodeHeader};

use crate::profile::SquashCompression;
use crate::stage::{Data, Entry, Kind, Tree};

/// zstd level of squashfs blocks. Measured by ci/bench on a 284 MB Debian rootfs (2 shared
/// cores, 128 KiB blocks): level 3 (backhand's default) 108.6 MB in 1.5 s, 9: 101.9 MB in
/// 4.2 s, 12: 101.3 MB in 18 s, 15 (mksquashfs' default): 96.0 MB in 41 s (one thread).
pub const ZSTD_LEVEL: u32 = 9;

/// Squashfs block size: 1 MiB, the largest the format and the kernel allow. The block is
/// zstd's window, so it is worth more than the level: on ci/bench's 717 MB tree (2 shared
/// cores, blocks compressed ahead on both) level 9 gives 205.6 MB with 128 KiB blocks and
/// 186.1 MB in 12 s with 1 MiB ones; level 6: 189.0 MB in 10 s, 12: 185.1 MB in 27 s, 15:
/// 184.7 MB (mksquashfs' zstd-15 with 128 KiB blocks, the reference: 193.4 MB). Reading a
/// small file decompresses its whole block (a few ms on a Pi 4; zstd decodes at hundreds
/// of MB/s per core and Debian's kernel decompresses on every CPU).
pub const BLOCK_SIZE: u32 = 1 << 20;

/// What was written.
#[derive(Debug, Clone)]
pub struct SquashInfo {
    /// Bytes of the squashfs image.
    pub size: u64,
    pub entries: usize,
    /// Paths whose xattrs could not be stored.
    pub xattr_paths: Vec<String>,
    /// Blocks compressed ahead on every core / by the writer itself (metadata, blocks
    /// predicted wrongly).
    pub blocks_ahead: usize,
    pub blocks_inline: usize,
}

/// Linux `new_encode_dev`, the device number layout squashfs stores.
pub fn encode_dev(major: u32, minor: u32) -> u32 {
    (minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)
}

fn header(e: &Entry, mtime_max: i64) -> NodeHeader {
    NodeHeader {
        permissions: (e.mode & 0o7777) as u16,
        uid: e.uid,
        gid: e.gid,
        mtime: e.mtime.clamp(0, mtime_max.min(u32::MAX as i64)) as u32,
    }
}

/// An empty squashfs whose root inode carries `root`, read back so that a writer can be
/// built from it (the only way backhand lets a caller set the root's mtime).
fn root_template(root: NodeHeader, comp: Compressor) -> Result<Vec<u8>> {
    let mut w = FilesystemWriter::default();
    w.set_compressor(FilesystemCompressor::new(comp, None)?);
    w.set_root_mode(root.permissions);
    w.set_root_uid(root.uid);
    w.set_root_gid(root.gid);
    let mut buf = Cursor::new(Vec::new());
    w.write(&mut buf)
        .context("writing the squashfs root template")?;
    Ok(buf.into_inner())
}

/// Write `tree` as squashfs into a new file at `out`.
pub fn write_squashfs(
    tree: &Tree,
    out: &Path,
    compression: SquashCompression,
    timestamp: i64,
) -> Result<SquashInfo> {
    let comp = match compression {
        SquashCompression::Zstd => Compressor::Zstd,
        SquashCompression::Xz => Compressor::Xz,
    };
    let options = match compression {
        SquashCompression::Zstd => Some(CompressionOptions::Zstd(Zstd {
            compression_level: ZSTD_LEVEL,
        })),
        SquashCompression::Xz => None,
    };
    let root_entry = tree.get("").context("tree has no root")?;
    let mut root = header(root_entry, i64::MAX);
    root.mtime = timestamp.clamp(0, u32::MAX as i64) as u32;
    let template = root_template(root, comp)?;
    let mut reader = FilesystemReader::from_reader(Cursor::new(template))
        .context("reading the squashfs root template")?;
    reader.root.root_mut().header = root;
    let mut w = FilesystemWriter::from_fs_reader(&reader)?;
    let fc = FilesystemCompressor::new(comp, options)?;
    let block_size = BLOCK_SIZE;
    w.set_block_size(block_size);
    w.set_compressor(fc);
    w.set_time(root.mtime);
    let ahead = super::squash_ahead::Ahead::leak();
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    let t0 = std::time::Instant::now();
    super::squash_ahead::precompress(tree, fc, block_size, threads, ahead)?;
    tracing::debug!(
        "squashfs: data blocks compressed ahead on {threads} thread(s) in {:.1}s",
        t0.elapsed().as_secs_f64()
    );
    w.set_kind(backhand::kind::Kind::new_v4(ahead));

    let mut xattr_paths = Vec::new();
    let mut entries = 1;
    for (path, e) in tree.iter() {
        if path.is_empty() {
            continue;
        }
        if !e.xattrs.is_empty() {
            xattr_paths.push(path.to_owned());
        }
        entries += 1;
        let h = header(e, i64::MAX);
        let r = match &e.kind {
            Kind::Dir => w.push_dir(path, h),
            Kind::File(data) => push_data(&mut w, data, path, h),
            // A hard link shares its target's inode: same data and metadata.
            Kind::Hardlink(target) => match tree.get(target) {
                Some(
                    t @ Entry {
                        kind: Kind::File(data),
                        ..
                    },
                ) => push_data(&mut w, data, path, header(t, i64::MAX)),
                _ => bail!("hard link {path} points to {target}, which is not a regular file"),
            },
            Kind::Symlink(target) => w.push_symlink(target.as_str(), path, h),
            Kind::CharDev { major, minor } => {
                w.push_char_device(encode_dev(*major, *minor), path, h)
            }
            Kind::BlockDev { major, minor } => {
                w.push_block_device(encode_dev(*major, *minor), path, h)
            }
            Kind::Fifo => w.push_fifo(path, h),
            Kind::Socket => w.push_socket(path, h),
        };
        r.with_context(|| format!("adding {path} to the squashfs"))?;
    }
    if !xattr_paths.is_empty() {
        let shown: Vec<&str> = xattr_paths.iter().take(20).map(String::as_str).collect();
        let more = xattr_paths.len().saturating_sub(shown.len());
        tracing::warn!(
            "squashfs cannot store extended attributes; {} file(s) lose them: {}{}",
            xattr_paths.len(),
            shown.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        );
    }
    let file = fs_err::File::create(out)?;
    let mut bw = BufWriter::with_capacity(1 << 20, file);
    let (_, size) = w
        .write(&mut bw)
        .with_context(|| format!("writing squashfs {}", out.display()))?;
    bw.flush()?;
    let (blocks_ahead, blocks_inline) = ahead.finish();
    tracing::debug!(
        "squashfs: {blocks_ahead} block(s) compressed ahead, {blocks_inline} by the writer"
    );
    Ok(SquashInfo {
        size,
        entries,
        xattr_paths,
        blocks_ahead,
        blocks_inline,
    })
}

fn push_data(
    w: &mut FilesystemWriter<'_, '_, '_>,
    data: &Data,
    path: &str,
    h: NodeHeader,
) -> Result<(), backhand::BackhandError> {
    match data {
        Data::Path(p) => w.push_file_from_path(p.clone(), path, h),
        Data::Bytes(b) => w.push_file(Cursor::new(b.clone()), path, h),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_numbers_use_the_linux_encoding() {
        assert_eq!(encode_dev(5, 1), 0x0501);
        assert_eq!(encode_dev(1, 3), 0x0103);
        assert_eq!(encode_dev(259, 0x1234), 0x0121_0334);
    }
}
