//! Files beside the images: `<image>.sha256`, `SHA256SUMS`, `os_list.json` (Raspberry Pi
//! Imager repository) and `build.json`; and the staging that makes a build all-or-nothing.
//!
//! Every output is first written as `.<name>.partial` in the output directory; only when
//! all of them are complete does [`Staging::commit`] rename them to their final names. A
//! failed build removes its partial files; a killed one leaves only dot-files behind,
//! never a file under a final name.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::NodeOutput;
use crate::profile::Board;

/// Outputs being written, renamed to their final names on commit.
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    /// (partial path, final name) in the order they were registered.
    files: Vec<(PathBuf, String)>,
    committed: bool,
}

impl Staging {
    pub fn new(dir: &Path) -> Result<Self> {
        fs_err::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            files: Vec::new(),
            committed: false,
        })
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Register an output and return the temporary path to write it at.
    pub fn partial(&mut self, name: &str) -> PathBuf {
        let p = self.dir.join(format!(".{name}.partial"));
        let _ = std::fs::remove_file(&p);
        self.files.push((p.clone(), name.to_owned()));
        p
    }
    /// Write a small output completely.
    pub fn write(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let p = self.partial(name);
        fs_err::write(&p, bytes)?;
        Ok(())
    }
    /// Write a small output readable by its owner only (0600: kubeconfig).
    pub fn write_private(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        use fs_err::os::unix::fs::OpenOptionsExt as _;
        use std::io::Write as _;
        let p = self.partial(name);
        let mut f = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)?;
        f.write_all(bytes)?;
        Ok(())
    }
    /// The final path an output will have.
    pub fn final_path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
    /// Rename every output to its final name, images first and the lists last, once
    /// every one of them is on disk (one wait at the end: the kernel wrote most of them
    /// back while the later nodes were built).
    pub fn commit(mut self) -> Result<Vec<PathBuf>> {
        for (p, _) in &self.files {
            fs_err::File::open(p)?
                .sync_all()
                .with_context(|| format!("writing {} to disk", p.display()))?;
        }
        let mut done = Vec::new();
        for (p, name) in &self.files {
            let to = self.dir.join(name);
            fs_err::rename(p, &to).with_context(|| format!("publishing {}", to.display()))?;
            done.push(to);
        }
        self.committed = true;
        Ok(done)
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.committed {
            for (p, _) in &self.files {
                let _ = std::fs::remove_file(p);
            }
        }
    }
}

/// `<hex>  <name>` lines, as `sha256sum` prints and `sha256sum -c` reads.
pub fn sha256_line(sha256: &str, name: &str) -> String {
    format!("{sha256}  {name}\n")
}

/// SHA256SUMS over the downloadable images.
pub fn sha256sums(nodes: &[NodeOutput]) -> String {
    let mut s = String::new();
    for n in nodes {
        s.push_str(&sha256_line(&n.download.sha256, &n.file_name));
    }
    s
}

/// One OS entry of a Raspberry Pi Imager repository (doc/json-schema/os-list-schema.json).
#[derive(Debug, Serialize)]
pub struct OsEntry {
    pub name: String,
    pub description: String,
    pub icon: String,
    pub url: String,
    pub extract_size: u64,
    pub extract_sha256: String,
    pub image_download_size: u64,
    pub image_download_sha256: String,
    pub release_date: String,
    pub devices: Vec<String>,
    pub init_format: String,
}

#[derive(Debug, Serialize)]
pub struct OsList {
    pub os_list: Vec<OsEntry>,
}

/// `YYYY-MM-DD` (UTC) of an epoch time.
pub fn date(epoch: i64) -> String {
    // Civil from days (Howard Hinnant's algorithm).
    let z = epoch.div_euclid(86_400) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The URL Imager downloads `name` from: under `base_url`, or a file:// URL of `dir`.
pub fn url_for(base_url: Option<&str>, dir: &Path, name: &str) -> Result<String> {
    Ok(match base_url {
        Some(b) => format!("{}/{name}", b.trim_end_matches('/')),
        None => {
            let abs = std::path::absolute(dir)
                .with_context(|| format!("absolute path of {}", dir.display()))?;
            let mut u = String::from("file://");
            for c in abs.join(name).to_string_lossy().chars() {
                match c {
                    'A'..='Z' | 'a'..='z' | '0'..='9' | '/' | '-' | '_' | '.' | '~' => u.push(c),
                    c => {
                        let mut b = [0u8; 4];
                        for byte in c.encode_utf8(&mut b).bytes() {
                            let _ = write!(u, "%{byte:02X}");
                        }
                    }
                }
            }
            u
        }
    })
}

pub const ICON_NAME: &str = "bakery-icon.svg";
/// A 40x40 icon for Imager's list.
pub const ICON_SVG: &str = r##"<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40" viewBox="0 0 40 40"><rect x="4" y="14" width="32" height="20" rx="4" fill="#c8873a"/><path d="M8 14c0-6 6-9 12-9s12 3 12 9z" fill="#e0a85a"/></svg>
"##;

/// The Imager repository for the built nodes.
pub fn os_list(
    cluster: &str,
    board: Board,
    nodes: &[NodeOutput],
    timestamp: i64,
    base_url: Option<&str>,
    dir: &Path,
) -> Result<String> {
    let devices: Vec<String> = match board {
        Board::Rpi => vec!["pi4-64bit".into(), "pi5-64bit".into()],
        Board::QemuAarch64 | Board::QemuX86_64 => Vec::new(),
    };
    let list = OsList {
        os_list: nodes
            .iter()
            .map(|n| {
                Ok(OsEntry {
                    name: format!("{cluster}: {}", n.node),
                    description: format!(
                        "bakery-image node {} ({}) of K3s cluster {cluster}",
                        n.node, n.role
                    ),
                    icon: url_for(base_url, dir, ICON_NAME)?,
                    url: url_for(base_url, dir, &n.file_name)?,
                    extract_size: n.raw.size,
                    extract_sha256: n.raw.sha256.clone(),
                    image_download_size: n.download.size,
                    image_download_sha256: n.download.sha256.clone(),
                    release_date: date(timestamp),
                    devices: devices.clone(),
                    init_format: "none".into(),
                })
            })
            .collect::<Result<_>>()?,
    };
    let mut s = serde_json::to_string_pretty(&list)?;
    s.push('\n');
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_urls() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(1_700_000_000), "2023-11-14");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(
            url_for(Some("https://x.example/img/"), Path::new("/o"), "a.img.xz").unwrap(),
            "https://x.example/img/a.img.xz"
        );
        assert_eq!(
            url_for(None, Path::new("/o u"), "a.img.xz").unwrap(),
            "file:///o%20u/a.img.xz"
        );
    }

    #[test]
    fn staging_is_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        {
            let mut s = Staging::new(d.path()).unwrap();
            s.write("a.txt", b"x").unwrap();
            assert!(d.path().join(".a.txt.partial").exists());
        }
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            0,
            "dropped: removed"
        );
        let mut s = Staging::new(d.path()).unwrap();
        s.write("a.txt", b"x").unwrap();
        s.commit().unwrap();
        assert_eq!(std::fs::read(d.path().join("a.txt")).unwrap(), b"x");
    }
}
