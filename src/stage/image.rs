//! Existing OS images as a base: a raw disk image (`.img`, or compressed with xz, zstd
//! or gzip), its MBR or GPT read, and the largest ext4 partition (the root filesystem
//! of Raspberry Pi OS Lite or a Debian raspi image) read into a [`Tree`] with ext4-view.
//!
//! Limits, from ext4-view 1.0: no xattrs (file capabilities are lost), no device numbers
//! (device nodes are skipped with a warning; /dev is a devtmpfs on every booted system),
//! and hard links become separate copies. The FAT firmware partition is not read: the
//! boot partition is built from the board's packages instead.

use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

use ext4_view::{Ext4, Ext4Read};

use super::content::{ContentStore, StoreError};
use super::decompress::{Compression, decoder};
use super::error::{EntryProblem, StageError};
use super::parttable::{Part, check_entries, gpt_header, parse_gpt_entries, parse_mbr};
use super::{Entry, Kind, Tree};

/// Whether the first bytes of a (decompressed) file look like a partitioned disk rather
/// than a tar archive.
pub fn is_disk_image(head: &[u8]) -> bool {
    head.len() >= 512 && head[510..512] == [0x55, 0xaa] && &head[257..262] != b"ustar"
}

/// Read the root filesystem of a disk image (compressed or not).
pub fn read_image(image: &Path, store: &mut ContentStore) -> Result<Tree, StageError> {
    let mut r = BufReader::new(fs_err::File::open(image)?);
    let (c, mut dec) = decoder(&mut r).map_err(|e| corrupt(image, "at the start", e))?;
    // ext4 needs random access: a compressed image is expanded into the content dir
    // first (sparse holes are not preserved; images are a few GiB at most).
    let _tmp;
    let raw = if c == Compression::None {
        image.to_owned()
    } else {
        let p = store
            .dir()
            .join(format!(".image-{}.raw", std::process::id()));
        _tmp = RemoveOnDrop(p.clone());
        let mut out = fs_err::File::create(&p).map_err(|e| content(store, e))?;
        std::io::copy(&mut dec, &mut out).map_err(|e| corrupt(image, "decompressing", e))?;
        p
    };
    drop(dec);
    let file = fs_err::File::open(&raw)?.into_parts().0;
    let root = root_partition(&file, image)?;
    let fs = Ext4::load(Box::new(Window {
        file,
        offset: root.offset,
        len: root.len,
    }))
    .map_err(|e| {
        corrupt(
            image,
            &format!("in the ext4 filesystem of partition {}", root.number),
            e,
        )
    })?;
    let mark = store.mark();
    let mut tree = Tree::new();
    match walk(&fs, &mut tree, store, image) {
        Ok(()) => Ok(tree),
        Err(e) => {
            store.rollback(mark);
            Err(e)
        }
    }
}

struct RemoveOnDrop(std::path::PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn corrupt(
    image: &Path,
    where_: &str,
    e: impl Into<Box<dyn std::error::Error + Send + Sync>>,
) -> StageError {
    StageError::Corrupt {
        archive: image.to_owned(),
        where_: where_.to_owned(),
        cause: std::io::Error::other(e),
    }
}

fn content(store: &ContentStore, source: std::io::Error) -> StageError {
    StageError::Content {
        dir: store.dir().to_owned(),
        source,
    }
}

/// One partition of the image file, as ext4-view reads it.
struct Window {
    file: std::fs::File,
    offset: u64,
    len: u64,
}

impl Ext4Read for Window {
    fn read(
        &mut self,
        start: u64,
        dst: &mut [u8],
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        let end = start
            .checked_add(dst.len() as u64)
            .filter(|e| *e <= self.len);
        if end.is_none() {
            return Err("read past the end of the partition".into());
        }
        self.file.read_exact_at(dst, self.offset + start)?;
        Ok(())
    }
}

/// The largest ext4 partition of the image.
fn root_partition(file: &std::fs::File, image: &Path) -> Result<Part, StageError> {
    let at = |off: u64, len: usize| -> Result<Vec<u8>, StageError> {
        let mut b = vec![0u8; len];
        file.read_exact_at(&mut b, off)
            .map_err(|e| corrupt(image, "reading the partition table", e))?;
        Ok(b)
    };
    let format = |reason: String| StageError::Format {
        archive: image.to_owned(),
        reason,
        hint: "give a disk image with an ext4 root partition (e.g. Raspberry Pi OS Lite) or a rootfs tarball",
    };
    let (mut parts, gpt) = parse_mbr(&at(0, 512)?).map_err(|e| format(e.to_string()))?;
    if gpt {
        let h = gpt_header(&at(512, 512)?).map_err(|e| format(e.to_string()))?;
        let array = at(h.entries_at, h.count as usize * h.entry_size as usize)?;
        check_entries(&array, &h).map_err(|e| format(e.to_string()))?;
        parts =
            parse_gpt_entries(&array, h.count, h.entry_size).map_err(|e| format(e.to_string()))?;
    }
    let mut ext4: Vec<Part> = Vec::new();
    for p in parts {
        let mut magic = [0u8; 2];
        if file.read_exact_at(&mut magic, p.offset + 1024 + 56).is_ok() && magic == [0x53, 0xef] {
            ext4.push(p);
        }
    }
    ext4.into_iter()
        .max_by_key(|p| p.len)
        .ok_or_else(|| format("no ext4 partition found".into()))
}

fn walk(
    fs: &Ext4,
    tree: &mut Tree,
    store: &mut ContentStore,
    image: &Path,
) -> Result<(), StageError> {
    let meta = |m: &ext4_view::Metadata, kind: Kind| Entry {
        kind,
        mode: u32::from(m.mode()),
        uid: m.uid(),
        gid: m.gid(),
        mtime: m.modified().seconds(),
        xattrs: Vec::new(),
    };
    let root = fs
        .metadata("/")
        .map_err(|e| corrupt(image, "in \"/\"", e))?;
    tree.insert("", meta(&root, Kind::Dir))
        .expect("the root is a valid path");
    let mut dirs = vec![String::new()];
    while let Some(dir) = dirs.pop() {
        let abs = format!("/{dir}");
        let err = |e: ext4_view::Ext4Error| corrupt(image, &format!("in \"{abs}\""), e);
        for ent in fs.read_dir(abs.as_str()).map_err(err)? {
            let ent = ent.map_err(err)?;
            let name = ent.file_name();
            let Ok(name) = name.as_str() else {
                return Err(StageError::Entry {
                    archive: image.to_owned(),
                    entry: format!("{abs}/{}", ent.file_name().display()),
                    problem: EntryProblem::NotUtf8,
                });
            };
            if name == "." || name == ".." || (dir.is_empty() && name == "lost+found") {
                continue;
            }
            let path = if dir.is_empty() {
                name.to_owned()
            } else {
                format!("{dir}/{name}")
            };
            let epath = format!("/{path}");
            let err = |e: ext4_view::Ext4Error| corrupt(image, &format!("in \"{epath}\""), e);
            let m = ent.metadata().map_err(err)?;
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                dirs.push(path.clone());
                Kind::Dir
            } else if ft.is_regular_file() {
                let mut f = fs.open(epath.as_str()).map_err(err)?;
                let data = store.store(&mut f, m.len()).map_err(|e| match e {
                    StoreError::Read(s) => corrupt(image, &format!("in \"{epath}\""), s),
                    StoreError::Write(s) => content(store, s),
                })?;
                Kind::File(data)
            } else if ft.is_symlink() {
                let t = fs.read_link(epath.as_str()).map_err(err)?;
                let t = t.to_str().map_err(|_| StageError::Entry {
                    archive: image.to_owned(),
                    entry: epath.clone(),
                    problem: EntryProblem::NotUtf8,
                })?;
                Kind::Symlink(t.to_owned())
            } else if ft.is_fifo() {
                Kind::Fifo
            } else if ft.is_socket() {
                Kind::Socket
            } else {
                tracing::warn!(
                    "{}: skipping device node {epath} (device numbers are not readable)",
                    image.display()
                );
                continue;
            };
            tree.insert(&path, meta(&m, kind))
                .map_err(|_| StageError::Entry {
                    archive: image.to_owned(),
                    entry: epath.clone(),
                    problem: EntryProblem::Traversal,
                })?;
        }
    }
    Ok(())
}

/// Read the first `n` bytes of a file after decompression (fewer if it is shorter).
pub fn peek_decompressed(path: &Path, n: usize) -> Result<Vec<u8>, StageError> {
    let mut r = BufReader::new(fs_err::File::open(path)?);
    let (_, dec) = decoder(&mut r).map_err(|e| corrupt(path, "at the start", e))?;
    let mut head = Vec::with_capacity(n);
    dec.take(n as u64)
        .read_to_end(&mut head)
        .map_err(|e| corrupt(path, "at the start", e))?;
    Ok(head)
}
