//! The staging tree: a root filesystem described as data, never as host files.
//!
//! Every entry records type, mode, owner, mtime, symlink target, hardlink, device numbers
//! and xattrs, so a rootfs can be read, composed and written into squashfs or FAT as a
//! normal user, whatever the host's file ownership. File contents are either in memory
//! (small rendered files) or in a file on disk (extracted from an archive into a private
//! content directory); writers read them lazily.
//!
//! Paths are relative, normalised, '/'-separated and never contain `..`; the root is "".

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a regular file's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    Bytes(Arc<[u8]>),
    /// A host file holding exactly the content (owned by the build, not the rootfs).
    Path(PathBuf),
}

impl Data {
    pub fn bytes(b: impl Into<Vec<u8>>) -> Self {
        Data::Bytes(Arc::from(b.into().into_boxed_slice()))
    }
    /// Read the whole content.
    pub fn read(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Data::Bytes(b) => Ok(b.to_vec()),
            Data::Path(p) => fs_err::read(p),
        }
    }
    /// Size in bytes.
    pub fn len(&self) -> std::io::Result<u64> {
        match self {
            Data::Bytes(b) => Ok(b.len() as u64),
            Data::Path(p) => Ok(fs_err::metadata(p)?.len()),
        }
    }
    pub fn is_empty(&self) -> std::io::Result<bool> {
        Ok(self.len()? == 0)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File(Data),
    Symlink(String),
    /// A hard link to another path of the same tree (which must be a regular file).
    Hardlink(String),
    CharDev {
        major: u32,
        minor: u32,
    },
    BlockDev {
        major: u32,
        minor: u32,
    },
    Fifo,
    Socket,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// Permission bits including setuid/setgid/sticky (no file-type bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Seconds since the epoch.
    pub mtime: i64,
    pub xattrs: Vec<(String, Vec<u8>)>,
}

impl Entry {
    pub fn dir(mode: u32) -> Self {
        Self {
            kind: Kind::Dir,
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Vec::new(),
        }
    }
    pub fn file(data: Data, mode: u32) -> Self {
        Self {
            kind: Kind::File(data),
            mode,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Vec::new(),
        }
    }
    pub fn symlink(target: impl Into<String>) -> Self {
        Self {
            kind: Kind::Symlink(target.into()),
            mode: 0o777,
            uid: 0,
            gid: 0,
            mtime: 0,
            xattrs: Vec::new(),
        }
    }
    pub fn with_mtime(mut self, mtime: i64) -> Self {
        self.mtime = mtime;
        self
    }
    pub fn with_owner(mut self, uid: u32, gid: u32) -> Self {
        self.uid = uid;
        self.gid = gid;
        self
    }
}

/// Why a path cannot be part of a tree.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    #[error("path \"{0}\" leaves the tree (contains \"..\")")]
    Escapes(String),
    #[error("path \"{0}\" is empty or not valid")]
    Invalid(String),
}

/// Normalise a path from an archive or a profile: strip leading '/' and "./", collapse
/// '.' and duplicate slashes; refuse "..". The root is "".
pub fn normalize(p: &str) -> Result<String, PathError> {
    let mut out: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => return Err(PathError::Escapes(p.to_owned())),
            c if c.contains('\0') => return Err(PathError::Invalid(p.to_owned())),
            c => out.push(c),
        }
    }
    Ok(out.join("/"))
}

/// A root filesystem as data, sorted by path.
#[derive(Debug, Clone, Default)]
pub struct Tree {
    entries: BTreeMap<String, Entry>,
    /// mtime and mode given to directories created implicitly as parents.
    pub default_mtime: i64,
}

impl Tree {
    pub fn new() -> Self {
        let mut t = Self::default();
        t.entries.insert(String::new(), Entry::dir(0o755));
        t
    }

    /// Insert or replace an entry; missing parents are created as root-owned 0755 dirs.
    /// Replacing a directory with a non-directory removes what was under it.
    pub fn insert(&mut self, path: &str, entry: Entry) -> Result<(), PathError> {
        let path = normalize(path)?;
        let mut parent = String::new();
        for comp in path
            .split('/')
            .collect::<Vec<_>>()
            .iter()
            .rev()
            .skip(1)
            .rev()
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(comp);
            match self.entries.get(&parent) {
                Some(e) if e.kind == Kind::Dir => {}
                _ => {
                    self.remove(&parent);
                    self.entries.insert(
                        parent.clone(),
                        Entry::dir(0o755).with_mtime(self.default_mtime),
                    );
                }
            }
        }
        if entry.kind != Kind::Dir {
            self.remove(&path);
        }
        self.entries.insert(path, entry);
        Ok(())
    }

    /// Remove an entry and everything below it.
    pub fn remove(&mut self, path: &str) -> Option<Entry> {
        let prefix = format!("{path}/");
        let below: Vec<String> = self
            .entries
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in below {
            self.entries.remove(&k);
        }
        if path.is_empty() {
            None
        } else {
            self.entries.remove(path)
        }
    }

    pub fn get(&self, path: &str) -> Option<&Entry> {
        self.entries.get(normalize(path).ok()?.as_str())
    }
    pub fn get_mut(&mut self, path: &str) -> Option<&mut Entry> {
        self.entries.get_mut(normalize(path).ok()?.as_str())
    }
    pub fn contains(&self, path: &str) -> bool {
        self.get(path).is_some()
    }

    /// All entries in path order; the root ("") comes first.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Entry)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }
    /// Direct children of a directory, in name order.
    pub fn children<'a>(&'a self, dir: &str) -> impl Iterator<Item = (&'a str, &'a Entry)> + 'a {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let n = prefix.len();
        let p2 = prefix.clone();
        self.entries
            .range(prefix..)
            .skip_while(|(k, _)| k.is_empty())
            .take_while(move |(k, _)| k.starts_with(&p2))
            .filter(move |(k, _)| !k[n..].contains('/'))
            .map(|(k, v)| (k.as_str(), v))
    }
    pub fn len(&self) -> usize {
        self.entries.len()
    }
    pub fn is_empty(&self) -> bool {
        self.entries.len() <= 1
    }

    /// Lay `other` over this tree: its entries replace ours (like an overlay).
    pub fn overlay(&mut self, other: &Tree) -> Result<(), PathError> {
        for (p, e) in other.iter() {
            if p.is_empty() {
                continue;
            }
            self.insert(p, e.clone())?;
        }
        Ok(())
    }

    /// Add a regular file with in-memory content.
    pub fn add_bytes(
        &mut self,
        path: &str,
        data: impl Into<Vec<u8>>,
        mode: u32,
    ) -> Result<(), PathError> {
        let mtime = self.default_mtime;
        self.insert(path, Entry::file(Data::bytes(data), mode).with_mtime(mtime))
    }

    /// Set every mtime later than `max` to `max` (SOURCE_DATE_EPOCH clamping).
    pub fn clamp_mtimes(&mut self, max: i64) {
        for e in self.entries.values_mut() {
            e.mtime = e.mtime.min(max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_escapes() {
        assert_eq!(normalize("/./usr//bin/").unwrap(), "usr/bin");
        assert!(matches!(
            normalize("a/../../etc"),
            Err(PathError::Escapes(_))
        ));
        assert_eq!(normalize("/").unwrap(), "");
    }

    #[test]
    fn parents_children_overlay() {
        let mut t = Tree::new();
        t.add_bytes("etc/hostname", "a\n", 0o644).unwrap();
        t.add_bytes("etc/ssh/sshd_config", "", 0o644).unwrap();
        assert_eq!(t.get("etc").unwrap().kind, Kind::Dir);
        let kids: Vec<_> = t.children("etc").map(|(p, _)| p).collect();
        assert_eq!(kids, ["etc/hostname", "etc/ssh"]);
        let top: Vec<_> = t.children("").map(|(p, _)| p).collect();
        assert_eq!(top, ["etc"]);
        let mut o = Tree::new();
        o.insert("etc/ssh", Entry::symlink("/run/ssh")).unwrap();
        t.overlay(&o).unwrap();
        assert!(
            !t.contains("etc/ssh/sshd_config"),
            "replacing a dir drops its contents"
        );
        assert_eq!(
            t.get("etc/ssh").unwrap().kind,
            Kind::Symlink("/run/ssh".into())
        );
    }
}
