//! Read a host directory into a [`Tree`]: test trees and profile overlays.
//!
//! Walks the directory without following symlinks and records type, mode, owner, mtime,
//! device numbers and hard links. File contents stay on disk ([`Data::Path`]). Host files
//! belong to whoever created them, so callers usually force an owner (root for overlays).

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use anyhow::{Context, Result, bail};

use super::{Data, Entry, Kind, Tree};

/// How to read a directory.
#[derive(Debug, Clone, Copy, Default)]
pub struct DirOptions {
    /// Give every entry this uid/gid instead of the host's.
    pub owner: Option<(u32, u32)>,
    /// Clamp mtimes to at most this (SOURCE_DATE_EPOCH).
    pub max_mtime: Option<i64>,
}

/// Read `root` (whose own metadata becomes the tree root's).
pub fn read_dir(root: &Path, opts: DirOptions) -> Result<Tree> {
    let mut tree = Tree::new();
    let meta = fs_err::symlink_metadata(root)?;
    if !meta.is_dir() {
        bail!("{} is not a directory", root.display());
    }
    *tree.get_mut("").expect("root exists") = entry(Kind::Dir, &meta, opts);
    let mut links: HashMap<(u64, u64), String> = HashMap::new();
    walk(root, "", &mut tree, &mut links, opts)?;
    Ok(tree)
}

fn entry(kind: Kind, m: &std::fs::Metadata, opts: DirOptions) -> Entry {
    let (uid, gid) = opts.owner.unwrap_or((m.uid(), m.gid()));
    let mtime = opts.max_mtime.map_or(m.mtime(), |max| m.mtime().min(max));
    Entry {
        kind,
        mode: m.mode() & 0o7777,
        uid,
        gid,
        mtime,
        xattrs: Vec::new(),
    }
}

fn major(rdev: u64) -> u32 {
    (((rdev >> 32) & 0xffff_f000) | ((rdev >> 8) & 0xfff)) as u32
}
fn minor(rdev: u64) -> u32 {
    (((rdev >> 12) & 0xffff_ff00) | (rdev & 0xff)) as u32
}

fn walk(
    dir: &Path,
    rel: &str,
    tree: &mut Tree,
    links: &mut HashMap<(u64, u64), String>,
    opts: DirOptions,
) -> Result<()> {
    let mut names: Vec<_> = fs_err::read_dir(dir)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let Some(n) = name.to_str() else {
            bail!(
                "{}: file name {:?} is not UTF-8",
                dir.display(),
                name.to_string_lossy()
            );
        };
        let path = dir.join(&name);
        let relp = if rel.is_empty() {
            n.to_owned()
        } else {
            format!("{rel}/{n}")
        };
        let m = fs_err::symlink_metadata(&path)?;
        let ft = m.file_type();
        let kind = if ft.is_dir() {
            Kind::Dir
        } else if ft.is_symlink() {
            let t = fs_err::read_link(&path)?;
            Kind::Symlink(
                t.to_str()
                    .with_context(|| format!("{}: link target is not UTF-8", path.display()))?
                    .to_owned(),
            )
        } else if ft.is_file() {
            if m.nlink() > 1 {
                if let Some(first) = links.get(&(m.dev(), m.ino())) {
                    Kind::Hardlink(first.clone())
                } else {
                    links.insert((m.dev(), m.ino()), relp.clone());
                    Kind::File(Data::Path(path.clone()))
                }
            } else {
                Kind::File(Data::Path(path.clone()))
            }
        } else if ft.is_char_device() {
            Kind::CharDev {
                major: major(m.rdev()),
                minor: minor(m.rdev()),
            }
        } else if ft.is_block_device() {
            Kind::BlockDev {
                major: major(m.rdev()),
                minor: minor(m.rdev()),
            }
        } else if ft.is_fifo() {
            Kind::Fifo
        } else {
            Kind::Socket
        };
        let is_dir = kind == Kind::Dir;
        tree.insert(&relp, entry(kind, &m, opts))
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if is_dir {
            walk(&path, &relp, tree, links, opts)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_kinds_modes_and_hardlinks() {
        let d = tempfile::tempdir().unwrap();
        let r = d.path();
        fs_err::create_dir_all(r.join("a/b")).unwrap();
        fs_err::write(r.join("a/f"), "x").unwrap();
        std::fs::hard_link(r.join("a/f"), r.join("a/g")).unwrap();
        std::os::unix::fs::symlink("f", r.join("a/l")).unwrap();
        let t = read_dir(
            r,
            DirOptions {
                owner: Some((0, 0)),
                max_mtime: Some(5),
            },
        )
        .unwrap();
        assert_eq!(t.get("a/b").unwrap().kind, Kind::Dir);
        assert!(matches!(t.get("a/f").unwrap().kind, Kind::File(_)));
        assert_eq!(t.get("a/g").unwrap().kind, Kind::Hardlink("a/f".into()));
        assert_eq!(t.get("a/l").unwrap().kind, Kind::Symlink("f".into()));
        assert!(t.iter().all(|(_, e)| e.mtime <= 5 && e.uid == 0));
    }
}
