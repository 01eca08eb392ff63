//! The content-addressed download cache: `<root>/sha256/<hex>` holds a verified file
//! whose sha256 is `<hex>`; nothing else is ever stored under a final name.
//!
//! Downloads go to `<hex>.partial` (kept after an interruption so the next attempt can
//! resume) and are renamed only after the digest matched. A per-digest lock file
//! (`<hex>.lock`, an advisory `flock`) serialises concurrent builds that want the same
//! part: the second one waits and then finds the finished file. Lock files are left in
//! place: deleting them would race with a waiting process.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::io::HashReader;
use crate::profile::Sha256;
use crate::progress::Reporter;

/// The cache directory: `$BAKERY_CACHE_DIR`, else `$XDG_CACHE_HOME/bakery-image`, else
/// `$HOME/.cache/bakery-image`. `None` when none of them is set.
pub fn default_dir() -> Option<PathBuf> {
    dir_from(
        std::env::var_os("BAKERY_CACHE_DIR"),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

fn dir_from(
    bakery: Option<OsString>,
    xdg: Option<OsString>,
    home: Option<OsString>,
) -> Option<PathBuf> {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty()).map(PathBuf::from);
    set(bakery)
        .or_else(|| set(xdg).map(|x| x.join("bakery-image")))
        .or_else(|| set(home).map(|h| h.join(".cache").join("bakery-image")))
}

/// A cache rooted at a directory (created on first use).
#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
}

/// Holds the per-digest lock until dropped.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Cache {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn root(&self) -> &Path {
        &self.root
    }
    fn dir(&self) -> PathBuf {
        self.root.join("sha256")
    }
    /// Where a verified file with this digest lives.
    pub fn path(&self, sha: &Sha256) -> PathBuf {
        self.dir().join(sha.as_str())
    }
    /// Where a download of this digest is written until verified.
    pub fn partial(&self, sha: &Sha256) -> PathBuf {
        self.dir().join(format!("{sha}.partial"))
    }

    /// Take the lock for one digest, waiting while another process holds it.
    pub fn lock(&self, sha: &Sha256) -> std::io::Result<Lock> {
        fs_err::create_dir_all(self.dir())?;
        let path = self.dir().join(format!("{sha}.lock"));
        let file = fs_err::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)?
            .into_parts()
            .0;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                tracing::info!(
                    "waiting for another bakery-image to finish `{}`",
                    path.display()
                );
                file.lock().map_err(|e| annotate(&e, &path))?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(annotate(&e, &path)),
        }
        Ok(Lock { _file: file })
    }

    /// The cached file for `sha` if present and intact. A file whose content does not
    /// match its name (disk corruption, tampering) is removed and reported as absent.
    pub fn lookup(
        &self,
        sha: &Sha256,
        role: &str,
        reporter: &dyn Reporter,
    ) -> std::io::Result<Option<(PathBuf, u64)>> {
        let path = self.path(sha);
        if !path.is_file() {
            return Ok(None);
        }
        let (actual, size) = hash_file(&path, role, reporter)?;
        if &actual == sha {
            Ok(Some((path, size)))
        } else {
            tracing::warn!(
                "cached `{}` has sha256 {actual}; removing it",
                path.display()
            );
            fs_err::remove_file(&path)?;
            Ok(None)
        }
    }
}

fn annotate(e: &std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("locking `{}`: {e}", path.display()))
}

/// sha256 and size of a file, reporting progress as "verifying".
pub fn hash_file(
    path: &Path,
    role: &str,
    reporter: &dyn Reporter,
) -> std::io::Result<(Sha256, u64)> {
    let file = fs_err::File::open(path)?;
    let total = file.metadata()?.len();
    let task = reporter.task(&format!("{role} (verifying)"), Some(total));
    let mut r = HashReader::new(crate::io::ProgressReader::new(file, task.as_ref()));
    let mut buf = vec![0u8; 1 << 16];
    while r.read(&mut buf)? != 0 {}
    let out = r.finish();
    task.finish("verified");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_dir_precedence() {
        let s = |v: &str| Some(OsString::from(v));
        assert_eq!(
            dir_from(s("/c"), s("/x"), s("/h")),
            Some(PathBuf::from("/c"))
        );
        assert_eq!(
            dir_from(s(""), s("/x"), s("/h")),
            Some(PathBuf::from("/x/bakery-image"))
        );
        assert_eq!(
            dir_from(None, None, s("/h")),
            Some(PathBuf::from("/h/.cache/bakery-image"))
        );
        assert_eq!(dir_from(None, None, None), None);
    }
}
