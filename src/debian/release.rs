//! A suite's `Release` file (the text of a verified `InRelease`): which indices exist,
//! with their sha256 and size, so each `Packages` file is checked before it is read.

use super::deb822;
use crate::profile::Sha256;

/// One index file listed under `SHA256:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFile {
    /// Path below `dists/<suite>/`, e.g. `main/binary-arm64/Packages.xz`.
    pub path: String,
    pub sha256: Sha256,
    pub size: u64,
}

/// The parts of a Release file we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    pub codename: String,
    pub suite: String,
    pub architectures: Vec<String>,
    pub components: Vec<String>,
    /// `NotAutomatic: yes` (backports): its packages are used only when asked for by name.
    pub not_automatic: bool,
    pub files: Vec<IndexFile>,
}

impl Release {
    /// Parse the signed text of an `InRelease`.
    pub fn parse(text: &str) -> Result<Release, String> {
        let paras = deb822::parse(text)?;
        let p = paras.first().ok_or("the Release file is empty")?;
        let words = |f: &str| -> Vec<String> {
            p.get(f)
                .unwrap_or("")
                .split_whitespace()
                .map(str::to_owned)
                .collect()
        };
        let mut files = Vec::new();
        for line in p
            .get("SHA256")
            .ok_or("the Release file has no SHA256 list")?
            .lines()
        {
            let w: Vec<&str> = line.split_whitespace().collect();
            let [sha, size, path] = w[..] else {
                if w.is_empty() {
                    continue;
                }
                return Err(format!("malformed SHA256 line {line:?}"));
            };
            files.push(IndexFile {
                path: path.to_owned(),
                sha256: Sha256::parse(sha).map_err(|_| format!("malformed sha256 in {line:?}"))?,
                size: size
                    .parse()
                    .map_err(|_| format!("malformed size in {line:?}"))?,
            });
        }
        Ok(Release {
            codename: p.get("Codename").unwrap_or("").to_owned(),
            suite: p.get("Suite").unwrap_or("").to_owned(),
            architectures: words("Architectures"),
            components: words("Components"),
            not_automatic: p.get("NotAutomatic") == Some("yes"),
            files,
        })
    }

    /// The best available `Packages` index of a component and architecture: xz, then gz,
    /// then plain (the order apt prefers).
    pub fn packages_index(&self, component: &str, arch: &str) -> Option<&IndexFile> {
        let base = format!("{component}/binary-{arch}/Packages");
        ["xz", "gz", ""].iter().find_map(|ext| {
            let want = if ext.is_empty() {
                base.clone()
            } else {
                format!("{base}.{ext}")
            };
            self.files.iter().find(|f| f.path == want)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "Origin: Debian\nSuite: stable\nCodename: trixie\nArchitectures: amd64 arm64\nComponents: main contrib\nMD5Sum:\n 00  1 main/binary-arm64/Packages\nSHA256:\n 0acef0390edcc88ec243516960a8530d5938a1fe63ce9859653ff8b68b55ec0b 56177790 main/binary-arm64/Packages\n 5b9a010e6730e4019e90fcb81c92ad59f061955890d691b7d111637d3f8d3dab  9614816 main/binary-arm64/Packages.xz\n";

    #[test]
    fn lists_indices_and_prefers_xz() {
        let r = Release::parse(TEXT).unwrap();
        assert_eq!(r.codename, "trixie");
        assert_eq!(r.components, ["main", "contrib"]);
        assert_eq!(r.files.len(), 2);
        let i = r.packages_index("main", "arm64").unwrap();
        assert_eq!(i.path, "main/binary-arm64/Packages.xz");
        assert_eq!(i.size, 9614816);
        assert!(r.packages_index("main", "amd64").is_none());
        assert!(Release::parse("Codename: x\nSHA256:\n zz 1 a\n").is_err());
        assert!(Release::parse("Codename: x\n").is_err());
    }
}
