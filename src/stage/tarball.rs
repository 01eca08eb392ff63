//! Tar archives (plain, gzip, xz, zstd; GNU and PAX) read into a [`Tree`] without root.
//!
//! Entries are iterated, never unpacked: regular files go to the [`ContentStore`], and
//! the tree records type, mode, uid/gid (PAX `uid`/`gid` included), mtime (PAX `mtime`
//! wins over the header), symlink targets, hard links (to in-tree paths), device numbers
//! and `SCHILY.xattr.*` extended attributes. Host ownership is never consulted.
//!
//! Rules, applied to every entry:
//! - a leading `/` is dropped (like tar); `..` anywhere is refused;
//! - duplicate entries: the later one wins, as with tar. A directory entry over a
//!   directory only updates its metadata; anything else replaces what was there;
//! - [`ParentLinks::Refuse`]: an entry below a path that is a symlink in the tree is
//!   refused. [`ParentLinks::Follow`] (Debian packages over a merged-/usr base, the way
//!   dpkg works): symlinks in the parent path are followed inside the tree, and a
//!   directory entry over a symlink to a directory keeps the symlink;
//! - hard links must name a regular file already in the tree.
//!
//! An archive is applied all or nothing: on error the tree is unchanged and the content
//! files written for it are removed.

use std::io::{BufRead, Read};
use std::path::Path;

use tar::EntryType;

use super::content::{ContentStore, StoreError};
use super::decompress::{Compression, decoder};
use super::error::{EntryProblem, StageError};
use super::resolve::{ResolveError, resolve, symlink_parent};
use super::tree::normalize;
use super::{Entry, Kind, Tree};

/// What to do with an entry whose parent path is a symlink in the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParentLinks {
    /// Refuse it (root filesystem tarballs).
    Refuse,
    /// Follow the symlink inside the tree (Debian packages, like dpkg).
    Follow,
}

/// Read a tar file (any supported compression) over `tree`.
pub fn apply_tar(
    tree: &mut Tree,
    archive: &Path,
    store: &mut ContentStore,
    links: ParentLinks,
) -> Result<(), StageError> {
    let f = fs_err::File::open(archive)?;
    apply_tar_reader(tree, std::io::BufReader::new(f), archive, store, links)
}

/// Read a tar stream (any supported compression) over `tree`. `name` is the archive's
/// name for messages.
pub fn apply_tar_reader<R: BufRead>(
    tree: &mut Tree,
    reader: R,
    name: &Path,
    store: &mut ContentStore,
    links: ParentLinks,
) -> Result<(), StageError> {
    let (compression, r) = decoder(reader).map_err(|e| StageError::Corrupt {
        archive: name.to_owned(),
        where_: "at the start".into(),
        cause: e,
    })?;
    if compression == Compression::Bzip2 {
        return Err(StageError::Format {
            archive: name.to_owned(),
            reason: "bzip2 compression is not supported".into(),
            hint: "recompress it with xz, zstd or gzip (e.g. `bzcat X | xz > X.xz`)",
        });
    }
    let mark = store.mark();
    let mut work = tree.clone();
    let mut reader = Reader {
        tree: &mut work,
        store,
        name,
        links,
    };
    match reader.read(r) {
        Ok(()) => {
            *tree = work;
            Ok(())
        }
        Err(e) => {
            store.rollback(mark);
            Err(e)
        }
    }
}

struct Reader<'a> {
    tree: &'a mut Tree,
    store: &'a mut ContentStore,
    name: &'a Path,
    links: ParentLinks,
}

impl Reader<'_> {
    fn corrupt(&self, where_: String, source: std::io::Error) -> StageError {
        StageError::Corrupt {
            archive: self.name.to_owned(),
            where_,
            cause: source,
        }
    }
    fn refuse(&self, entry: &str, problem: EntryProblem) -> StageError {
        StageError::Entry {
            archive: self.name.to_owned(),
            entry: entry.to_owned(),
            problem,
        }
    }

    fn read(&mut self, r: Box<dyn Read + '_>) -> Result<(), StageError> {
        let mut archive = tar::Archive::new(r);
        let entries = archive
            .entries()
            .map_err(|e| self.corrupt("at the start".into(), e))?;
        let mut last = String::new();
        let mut count = 0usize;
        for entry in entries {
            let where_ = if count == 0 {
                "in the first header".to_owned()
            } else {
                format!("after entry \"{last}\"")
            };
            let entry = entry.map_err(|e| self.corrupt(where_, e))?;
            last = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            self.entry(entry, &last)?;
            count += 1;
        }
        // Read the compressed stream to its end, so a missing xz index, gzip trailer or
        // zstd checksum (a truncated download) is an error, not silently ignored.
        std::io::copy(&mut archive.into_inner(), &mut std::io::sink())
            .map_err(|e| self.corrupt(format!("after the last entry \"{last}\""), e))?;
        if count == 0 {
            return Err(StageError::Format {
                archive: self.name.to_owned(),
                reason: "not a tar archive, or an empty one".into(),
                hint: "give a tar file (plain, .gz, .xz or .zst) or a Debian package",
            });
        }
        Ok(())
    }

    fn entry<R: Read>(&mut self, mut e: tar::Entry<'_, R>, raw: &str) -> Result<(), StageError> {
        let kind_of = e.header().entry_type();
        if matches!(
            kind_of,
            EntryType::XGlobalHeader
                | EntryType::XHeader
                | EntryType::GNULongName
                | EntryType::GNULongLink
        ) {
            return Ok(());
        }
        let bytes = e.path_bytes().into_owned();
        let raw_path =
            std::str::from_utf8(&bytes).map_err(|_| self.refuse(raw, EntryProblem::NotUtf8))?;
        let path = normalize(raw_path).map_err(|_| self.refuse(raw, EntryProblem::Traversal))?;
        let header_err = |e: std::io::Error| self.corrupt(format!("in the header of \"{raw}\""), e);
        let h = e.header();
        let mode = h.mode().map_err(header_err)? & 0o7777;
        let uid = u32::try_from(h.uid().map_err(header_err)?).unwrap_or(u32::MAX);
        let gid = u32::try_from(h.gid().map_err(header_err)?).unwrap_or(u32::MAX);
        let mut mtime = h.mtime().map_err(header_err)? as i64;
        let dev = (h.device_major(), h.device_minor());
        let link_name = e
            .link_name_bytes()
            .map(|b| String::from_utf8(b.into_owned()));
        let link_name = match link_name {
            Some(Ok(s)) => Some(s),
            Some(Err(_)) => return Err(self.refuse(raw, EntryProblem::NotUtf8)),
            None => None,
        };
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions().map_err(header_err)? {
            for ext in exts {
                let ext =
                    ext.map_err(|e| self.corrupt(format!("in the PAX header of \"{raw}\""), e))?;
                let Ok(key) = ext.key() else { continue };
                if key == "mtime" {
                    if let Some(t) = ext.value().ok().and_then(parse_pax_time) {
                        mtime = t;
                    }
                } else if let Some(name) = key.strip_prefix("SCHILY.xattr.") {
                    xattrs.push((name.to_owned(), ext.value_bytes().to_vec()));
                }
            }
        }

        let dest = self.place(&path, raw)?;
        let kind = match kind_of {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let size = e.size();
                let data = self.store.store(&mut e, size).map_err(|err| match err {
                    StoreError::Read(source) => self.corrupt(format!("in entry \"{raw}\""), source),
                    StoreError::Write(source) => StageError::Content {
                        dir: self.store.dir().to_owned(),
                        source,
                    },
                })?;
                Kind::File(data)
            }
            EntryType::Directory => {
                if self.links == ParentLinks::Follow
                    && matches!(super::resolve::lookup(self.tree, &dest), Some((_, d)) if d.kind == Kind::Dir)
                    && matches!(
                        self.tree.get(&dest).map(|d| &d.kind),
                        Some(Kind::Symlink(_))
                    )
                {
                    // dpkg keeps a symlink to a directory (merged /usr: bin -> usr/bin).
                    return Ok(());
                }
                Kind::Dir
            }
            EntryType::Symlink => Kind::Symlink(link_name.unwrap_or_default()),
            EntryType::Link => Kind::Hardlink(self.hardlink(raw, link_name.unwrap_or_default())?),
            EntryType::Char => Kind::CharDev {
                major: dev_num(dev.0).map_err(header_err)?,
                minor: dev_num(dev.1).map_err(header_err)?,
            },
            EntryType::Block => Kind::BlockDev {
                major: dev_num(dev.0).map_err(header_err)?,
                minor: dev_num(dev.1).map_err(header_err)?,
            },
            EntryType::Fifo => Kind::Fifo,
            other => {
                return Err(self.refuse(
                    raw,
                    EntryProblem::Unsupported {
                        kind: format!("{other:?}"),
                    },
                ));
            }
        };
        let entry = Entry {
            kind,
            mode,
            uid,
            gid,
            mtime,
            xattrs,
        };
        self.tree
            .insert(&dest, entry)
            .map_err(|_| self.refuse(raw, EntryProblem::Traversal))
    }

    /// Where an entry goes in the tree, applying the parent-symlink policy.
    fn place(&self, path: &str, raw: &str) -> Result<String, StageError> {
        match self.links {
            ParentLinks::Refuse => match symlink_parent(self.tree, path) {
                Some(link) => Err(self.refuse(raw, EntryProblem::ThroughSymlink { link })),
                None => Ok(path.to_owned()),
            },
            ParentLinks::Follow => resolve(self.tree, path, false).map_err(|e| {
                let link = match e {
                    ResolveError::Escapes { link } | ResolveError::Loop { link } => link,
                };
                self.refuse(raw, EntryProblem::SymlinkEscape { link })
            }),
        }
    }

    /// The in-tree regular file a hard link entry points to.
    fn hardlink(&self, raw: &str, target: String) -> Result<String, StageError> {
        let t = normalize(&target).map_err(|_| {
            self.refuse(
                raw,
                EntryProblem::HardlinkOutside {
                    target: target.clone(),
                },
            )
        })?;
        let t = self.place(&t, raw)?;
        match self.tree.get(&t).map(|e| &e.kind) {
            Some(Kind::File(_)) => Ok(t),
            Some(Kind::Hardlink(first)) => Ok(first.clone()),
            _ => Err(self.refuse(raw, EntryProblem::HardlinkMissing { target })),
        }
    }
}

fn dev_num(v: std::io::Result<Option<u32>>) -> std::io::Result<u32> {
    Ok(v?.unwrap_or(0))
}

/// PAX times are decimal seconds, possibly fractional and negative: "1700000000.25".
fn parse_pax_time(v: &str) -> Option<i64> {
    let int = v.split('.').next()?;
    let secs: i64 = int.parse().ok()?;
    // Floor, so -1.5 is -2 like the real instant.
    let frac = v.len() > int.len() && v[int.len() + 1..].bytes().any(|b| b != b'0');
    Some(if secs < 0 || int.starts_with('-') {
        secs - i64::from(frac)
    } else {
        secs
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_time() {
        assert_eq!(parse_pax_time("1700000000"), Some(1_700_000_000));
        assert_eq!(parse_pax_time("1700000000.999"), Some(1_700_000_000));
        assert_eq!(parse_pax_time("-1.5"), Some(-2));
        assert_eq!(parse_pax_time("-0.5"), Some(-1));
        assert_eq!(parse_pax_time("x"), None);
    }
}
