//! Fetching the parts a build needs: verified downloads into a content-addressed cache.
//!
//! Input: the plan's artifacts ([`crate::plan::Artifact`]: a role and a
//! [`Source`](crate::profile::Source)). Output: one [`Fetched`] per artifact, in order,
//! with the local path and sha256 the later stages read.
//!
//! - `http(s)://` and `file://` URLs are always pinned by sha256; they are streamed into
//!   the [`Cache`] and become visible under their digest only once it matched.
//! - Local `path` sources are read in place; their sha256 is computed (and compared when
//!   the profile pins one).
//! - `offline` uses only the cache and names every missing part at once.

mod cache;
mod http;
mod local;

use std::path::PathBuf;
use std::time::Duration;

pub use cache::{Cache, Lock, default_dir, hash_file};

use crate::plan::Artifact;
use crate::profile::{Sha256, Source};
use crate::progress::Reporter;

/// How to fetch.
#[derive(Debug, Clone)]
pub struct FetchOptions {
    pub cache_dir: PathBuf,
    /// Use only the cache; fail listing every part that is not there.
    pub offline: bool,
    /// Attempts per download (transient errors only), at least 1.
    pub tries: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub retry_delay: Duration,
    /// Connect timeout, and longest wait for any single read.
    pub timeout: Duration,
}

impl FetchOptions {
    pub fn new(cache_dir: impl Into<PathBuf>) -> Self {
        Self {
            cache_dir: cache_dir.into(),
            offline: false,
            tries: 4,
            retry_delay: Duration::from_secs(1),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Where a fetched part came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Origin {
    /// Found intact in the cache.
    Cached,
    /// Downloaded (or copied from a `file://` URL) into the cache in this run.
    Downloaded,
    /// A local `path` source, read in place.
    Local,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Cached => "cached",
            Origin::Downloaded => "downloaded",
            Origin::Local => "local",
        }
    }
}

/// One part, ready to read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Fetched {
    /// The artifact's role: "rootfs", "packages[0]", "k3s", "airgap-images[0]".
    pub role: String,
    pub path: PathBuf,
    pub sha256: Sha256,
    pub size: u64,
    pub origin: Origin,
}

/// A part that is not in the cache (offline mode).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub role: String,
    pub url: String,
    pub sha256: Sha256,
}

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error(
        "sha256 mismatch for {url}\n  expected: {expected}\n  actual:   {actual}\nhint: the file is not the one the profile pins; if it legitimately changed upstream, update sha256 in the profile, otherwise it was corrupted or tampered with"
    )]
    HashMismatch {
        url: String,
        expected: Sha256,
        actual: Sha256,
    },
    #[error(
        "offline: {} part(s) not in the cache `{}`:\n{}\nhint: run `bakery-image fetch PROFILE` once with network access (same --cache-dir), or drop --offline",
        missing.len(), cache.display(), list_missing(missing)
    )]
    Offline {
        cache: PathBuf,
        missing: Vec<Missing>,
    },
    #[error("{url}: HTTP {status}\nhint: check the URL in the profile; the server refused it")]
    Status { url: String, status: u16 },
    #[error(
        "downloading {url} failed after {attempts} attempt(s): {message}\nhint: check the network connection and proxy settings (HTTPS_PROXY), then run again: the download resumes"
    )]
    Transport {
        url: String,
        attempts: u32,
        message: String,
    },
    #[error("{role}: `{}` does not exist\nhint: fix the path in the profile (relative paths are resolved against the profile's directory)", path.display())]
    NotFound { role: String, path: PathBuf },
    #[error(
        "{url}: unsupported URL\nhint: use an http://, https:// or file:// URL, or path = \"...\" for a local file"
    )]
    UnsupportedUrl { url: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl FetchError {
    /// Whether the user can fix it by changing the profile or the options (exit code 1).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            FetchError::HashMismatch { .. }
                | FetchError::Offline { .. }
                | FetchError::Status { .. }
                | FetchError::NotFound { .. }
                | FetchError::UnsupportedUrl { .. }
        )
    }
}

fn list_missing(m: &[Missing]) -> String {
    m.iter()
        .map(|m| format!("  {}: {} (sha256 {})", m.role, m.url, m.sha256))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Fetch every artifact (in order). Cached parts are re-hashed before use, so a
/// corrupted cache entry is dropped and fetched again rather than used.
pub fn fetch_all(
    artifacts: &[Artifact],
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<Fetched>, FetchError> {
    let cache = Cache::new(&opts.cache_dir);
    // First pass: what the cache already has; in offline mode, everything it lacks.
    let mut found = Vec::with_capacity(artifacts.len());
    let mut missing = Vec::new();
    for a in artifacts {
        let hit = match &a.source {
            Source::Url { url, sha256 } => {
                let hit = cache.lookup(sha256, &a.role, reporter)?;
                if hit.is_none() {
                    missing.push(Missing {
                        role: a.role.clone(),
                        url: url.clone(),
                        sha256: sha256.clone(),
                    });
                }
                hit
            }
            Source::Path { .. } => None,
        };
        found.push(hit);
    }
    if opts.offline && !missing.is_empty() {
        return Err(FetchError::Offline {
            cache: opts.cache_dir.clone(),
            missing,
        });
    }
    artifacts
        .iter()
        .zip(found)
        .map(|(a, hit)| {
            let role = a.role.clone();
            match (&a.source, hit) {
                (Source::Url { sha256, .. }, Some((path, size))) => Ok(Fetched {
                    role,
                    path,
                    sha256: sha256.clone(),
                    size,
                    origin: Origin::Cached,
                }),
                (Source::Url { url, sha256 }, None) => {
                    fetch_url(&cache, &a.role, url, sha256, opts, reporter)
                }
                (Source::Path { path, sha256 }, _) => {
                    local::fetch_path(&a.role, path, sha256.as_ref(), reporter)
                }
            }
        })
        .collect()
}

/// A source URL as fetch uses it: an HTTP(S) URL and its host, or a `file://` URL and
/// its (percent-decoded, absolute) path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SourceUrl {
    Http { host: String },
    File { path: std::path::PathBuf },
}

/// A source URL, or the error that names it: `http://`/`https://` with a host (parsed by
/// the HTTP client's own URI grammar), or `file:///abs/path` (`file://localhost/...`).
fn parse_url(url: &str) -> Result<SourceUrl, FetchError> {
    let bad = || FetchError::UnsupportedUrl {
        url: url.to_owned(),
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(bad)?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" | "https" => {
            let uri: ureq::http::Uri = url.parse().map_err(|_| bad())?;
            let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(bad)?;
            Ok(SourceUrl::Http {
                host: host.to_owned(),
            })
        }
        "file" => {
            let slash = rest.find('/').ok_or_else(bad)?;
            if !matches!(&rest[..slash], "" | "localhost") || rest.contains(['?', '#']) {
                return Err(bad());
            }
            let bytes = percent_decode(&rest[slash..]).ok_or_else(bad)?;
            use std::os::unix::ffi::OsStringExt;
            Ok(SourceUrl::File {
                path: std::ffi::OsString::from_vec(bytes).into(),
            })
        }
        _ => Err(bad()),
    }
}

/// `%XX` escapes decoded; `None` for a malformed escape, a NUL or a control character.
fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        let b = if b == b'%' {
            let hex = [bytes.next()?, bytes.next()?];
            u8::from_str_radix(std::str::from_utf8(&hex).ok()?, 16).ok()?
        } else {
            b
        };
        if b.is_ascii_control() {
            return None;
        }
        out.push(b);
    }
    Some(out)
}

/// Download (or copy) one pinned URL into the cache.
fn fetch_url(
    cache: &Cache,
    role: &str,
    url: &str,
    sha: &Sha256,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Fetched, FetchError> {
    let parsed = parse_url(url)?;
    let _lock = cache.lock(sha)?;
    let dest = cache.path(sha);
    if let Ok(m) = fs_err::metadata(&dest) {
        // Another process finished it while we waited for the lock.
        return Ok(Fetched {
            role: role.to_owned(),
            path: dest,
            sha256: sha.clone(),
            size: m.len(),
            origin: Origin::Cached,
        });
    }
    let partial = cache.partial(sha);
    let task = reporter.task(role, None);
    let (actual, size) = match &parsed {
        SourceUrl::Http { host } => {
            let client = http::client(host, opts)?;
            let stale = partial.exists();
            let got = http::download(&client, url, &partial, opts, task.as_ref())?;
            if stale && &got.0 != sha {
                // The partial came from an earlier run and may belong to an older upstream
                // file: one fresh download before calling the part tampered with.
                tracing::warn!("{role}: resumed download of {url} does not match; starting over");
                fs_err::remove_file(&partial)?;
                http::download(&client, url, &partial, opts, task.as_ref())?
            } else {
                got
            }
        }
        SourceUrl::File { path } => local::copy_local(role, path, &partial, task.as_ref())?,
    };
    if &actual != sha {
        fs_err::remove_file(&partial)?;
        return Err(FetchError::HashMismatch {
            url: url.to_owned(),
            expected: sha.clone(),
            actual,
        });
    }
    fs_err::rename(&partial, &dest)?;
    task.finish("downloaded");
    tracing::info!("{role}: {url} -> {} ({size} bytes)", dest.display());
    Ok(Fetched {
        role: role.to_owned(),
        path: dest,
        sha256: actual,
        size,
        origin: Origin::Downloaded,
    })
}

/// Download a file whose digest is not known in advance (a suite's `InRelease`, which is
/// checked by its signature instead) into the cache, under the digest it turns out to
/// have, so a lock file can pin it and an offline build find it.
pub fn fetch_unpinned(
    role: &str,
    url: &str,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Fetched, FetchError> {
    let parsed = parse_url(url)?;
    let cache = Cache::new(&opts.cache_dir);
    fs_err::create_dir_all(cache.root().join("sha256"))?;
    let tmp = tempfile::Builder::new()
        .prefix(".unpinned-")
        .suffix(".partial")
        .tempfile_in(cache.root().join("sha256"))?
        .into_temp_path();
    let task = reporter.task(role, None);
    let (sha256, size) = match &parsed {
        SourceUrl::Http { host } => {
            fs_err::remove_file(&tmp)?;
            let client = http::client(host, opts)?;
            http::download(&client, url, &tmp, opts, task.as_ref())?
        }
        SourceUrl::File { path } => local::copy_local(role, path, &tmp, task.as_ref())?,
    };
    let path = cache.path(&sha256);
    tmp.persist(&path).map_err(|e| e.error)?;
    task.finish("downloaded");
    Ok(Fetched {
        role: role.to_owned(),
        path,
        sha256,
        size,
        origin: Origin::Downloaded,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn source_urls() {
        let http = |h: &str| SourceUrl::Http { host: h.into() };
        let file = |p: &str| SourceUrl::File { path: p.into() };
        assert_eq!(
            parse_url("https://example.org/a/b.deb").unwrap(),
            http("example.org")
        );
        assert_eq!(
            parse_url("HTTP://127.0.0.1:8080/x").unwrap(),
            http("127.0.0.1")
        );
        assert_eq!(parse_url("http://[::1]:80/x").unwrap(), http("[::1]"));
        assert_eq!(
            parse_url("file:///srv/a%20b.tar").unwrap(),
            file("/srv/a b.tar")
        );
        assert_eq!(parse_url("file://localhost/srv/x").unwrap(), file("/srv/x"));
        for bad in [
            "ftp://example.org/x",
            "https:///nohost",
            "https://exa mple.org/x",
            "https://example.org/\nx",
            "file://otherhost/x",
            "file://",
            "file:///a%0Ab",
            "file:///a%zz",
            "file:///a?b",
            "/just/a/path",
            "",
        ] {
            assert!(
                matches!(parse_url(bad), Err(FetchError::UnsupportedUrl { .. })),
                "{bad:?} accepted"
            );
        }
    }
}
