//! `<profile>.lock`: the exact package set of a Debian base (every package with version,
//! architecture, file and sha256) and the digests of the `InRelease` files it was
//! resolved from. Written on the first build; afterwards the build fetches exactly
//! these files (no index needed, so `--offline` works from the cache) as long as the
//! profile asks for the same packages; `bakery-image update` resolves it anew.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::packages::Package;

/// Format version written in the file.
pub const VERSION: u32 = 1;

/// One suite as it was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockedSuite {
    pub name: String,
    pub inrelease_sha256: String,
    /// Fingerprint of the archive key whose signature verified.
    pub signed_by: String,
}

/// One package of the set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockedPackage {
    pub name: String,
    pub version: String,
    pub arch: String,
    pub suite: String,
    pub filename: String,
    pub size: u64,
    pub sha256: String,
    pub source: String,
    pub source_version: String,
}

impl LockedPackage {
    pub fn from_package(p: &Package) -> Self {
        LockedPackage {
            name: p.name.clone(),
            version: p.version.to_string(),
            arch: p.arch.clone(),
            suite: p.suite.clone(),
            filename: p.filename.clone(),
            size: p.size,
            sha256: p.sha256.to_string(),
            source: p.source.clone(),
            source_version: p.source_version.clone(),
        }
    }
}

/// The whole lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct LockFile {
    pub version: u32,
    pub architecture: String,
    /// What was asked for ("name" or "name/suite", sorted): a change means re-resolving.
    pub requests: Vec<String>,
    #[serde(rename = "suite")]
    pub suites: Vec<LockedSuite>,
    #[serde(rename = "package")]
    pub packages: Vec<LockedPackage>,
}

/// Where the lock of `profile` lives: `magi.toml` -> `magi.lock`.
pub fn path_for(profile: &Path) -> PathBuf {
    profile.with_extension("lock")
}

impl LockFile {
    /// Read a lock file; `Ok(None)` when there is none.
    pub fn read(path: &Path) -> Result<Option<LockFile>, String> {
        let text = match fs_err::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let lock: LockFile = toml::from_str(&text)
            .map_err(|e| format!("{}: not a valid lock file: {}", path.display(), e.message()))?;
        if lock.version != VERSION {
            return Err(format!(
                "{}: lock file version {} (this bakery-image writes {VERSION})",
                path.display(),
                lock.version
            ));
        }
        Ok(Some(lock))
    }

    /// Write atomically (a temp file renamed over the final name).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let body = toml::to_string(self).map_err(std::io::Error::other)?;
        let text = format!(
            "# Written by bakery-image: the exact Debian packages of this profile's base.\n# Commit it; `bakery-image update` refreshes it.\n{body}"
        );
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, text.as_bytes())?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }

    /// Locked versions by name, as the resolver's preferences.
    pub fn versions(&self) -> super::resolve::Lock {
        self.packages
            .iter()
            .map(|p| (p.name.clone(), p.version.clone()))
            .collect()
    }
}

/// What `bakery-image update` reports: every package added, removed or changed.
pub fn changes(old: Option<&LockFile>, new: &LockFile) -> String {
    let before: std::collections::BTreeMap<&str, &str> = old
        .map(|o| {
            o.packages
                .iter()
                .map(|p| (p.name.as_str(), p.version.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let after: std::collections::BTreeMap<&str, &str> = new
        .packages
        .iter()
        .map(|p| (p.name.as_str(), p.version.as_str()))
        .collect();
    let mut out = String::new();
    for (n, v) in &after {
        match before.get(n) {
            None => out.push_str(&format!("+ {n} {v}\n")),
            Some(o) if o != v => out.push_str(&format!("~ {n} {o} -> {v}\n")),
            _ => {}
        }
    }
    for (n, v) in &before {
        if !after.contains_key(n) {
            out.push_str(&format!("- {n} {v}\n"));
        }
    }
    out.push_str(&format!("{} package(s) locked\n", new.packages.len()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = path_for(&dir.path().join("magi.toml"));
        assert!(path.ends_with("magi.lock"));
        assert_eq!(LockFile::read(&path).unwrap(), None);
        let lock = LockFile {
            version: VERSION,
            architecture: "arm64".into(),
            requests: vec!["bash".into()],
            suites: vec![LockedSuite {
                name: "trixie".into(),
                inrelease_sha256: "00".into(),
                signed_by: "AB".into(),
            }],
            packages: vec![LockedPackage {
                name: "bash".into(),
                version: "5.2.37-2+b5".into(),
                arch: "arm64".into(),
                suite: "trixie".into(),
                filename: "pool/main/b/bash/bash_5.2.37-2+b5_arm64.deb".into(),
                size: 1,
                sha256: "0acef0390edcc88ec243516960a8530d5938a1fe63ce9859653ff8b68b55ec0b".into(),
                source: "bash".into(),
                source_version: "5.2.37-2".into(),
            }],
        };
        lock.write(&path).unwrap();
        assert_eq!(LockFile::read(&path).unwrap(), Some(lock));
        std::fs::write(&path, "version = 9\n").unwrap();
        assert!(LockFile::read(&path).is_err());
    }
}
