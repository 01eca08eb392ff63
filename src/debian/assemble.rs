//! From `[sources.debian]` to verified `.deb` files in the cache: the lock file when it
//! matches what the profile asks for, else signed indices and the resolver.
//!
//! Every download goes through [`crate::fetch`], so each file is checked against its
//! sha256 (from the lock, or from an index whose own digest the signed `InRelease`
//! gives) and lands in the content-addressed cache under that digest only once it
//! matched. Progress: one task for the indices and one for the packages, each with the
//! count in its name and the total bytes.

use std::io::{BufReader, Read};

use super::lock::{LockFile, LockedPackage, LockedSuite, VERSION};
use super::packages::{Package, parse_index};
use super::resolve::{Lock, Request, Universe, resolve};
use super::{DebianError, HOST_KEYRING, verify_release};
use crate::fetch::{self, FetchOptions, Fetched};
use crate::plan::Artifact;
use crate::profile::{Debian, Sha256, Source};
use crate::progress::{Quiet, Reporter};

/// The environment variable that replaces the profile's mirror.
pub const MIRROR_ENV: &str = "BAKERY_DEBIAN_MIRROR";

/// What to assemble: the profile's section, the architecture, the full request list.
#[derive(Debug)]
pub struct Inputs<'a> {
    pub debian: &'a Debian,
    pub arch: &'a str,
    pub requests: Vec<Request>,
    /// The lock read from beside the profile, if any.
    pub lock: Option<LockFile>,
    /// Resolve anew even when the lock matches (`bakery-image update`).
    pub update: bool,
}

/// The packages, fetched, and the lock that describes them.
#[derive(Debug)]
pub struct Assembled {
    pub packages: Vec<(LockedPackage, Fetched)>,
    pub lock: LockFile,
}

/// The mirror to use: BAKERY_DEBIAN_MIRROR, else the profile's.
pub fn mirror(d: &Debian) -> Result<String, DebianError> {
    match std::env::var(MIRROR_ENV) {
        Ok(m) if !m.trim().is_empty() => Ok(m.trim().trim_end_matches('/').to_owned()),
        _ => d.mirror.clone().ok_or(DebianError::NoMirror),
    }
}

/// Request strings as the lock records them, sorted.
pub fn request_keys(r: &[Request]) -> Vec<String> {
    let mut v: Vec<String> = r
        .iter()
        .map(|r| match &r.suite {
            Some(s) => format!("{}/{s}", r.name),
            None => r.name.clone(),
        })
        .collect();
    v.sort();
    v.dedup();
    v
}

pub fn assemble(
    inputs: &Inputs<'_>,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Assembled, DebianError> {
    let keys = request_keys(&inputs.requests);
    let lock = match &inputs.lock {
        Some(l) if !inputs.update && l.requests == keys && l.architecture == inputs.arch => {
            l.clone()
        }
        _ if opts.offline => return Err(DebianError::OfflineUnlocked),
        other => {
            let prefer = if inputs.update {
                Lock::new()
            } else {
                other.as_ref().map(LockFile::versions).unwrap_or_default()
            };
            resolve_lock(inputs, &keys, &prefer, opts, reporter)?
        }
    };
    // An offline build takes the locked packages from the cache by their sha256, so it
    // needs no mirror; the name only shows in the list of what the cache lacks.
    let mirror = match mirror(inputs.debian) {
        Err(DebianError::NoMirror) if opts.offline => "<sources.debian.mirror>".to_owned(),
        m => m?,
    };
    let artifacts: Vec<Artifact> = lock
        .packages
        .iter()
        .map(|p| {
            Ok(Artifact {
                role: format!("debian:{}", p.name),
                source: Source::Url {
                    url: format!("{mirror}/{}", p.filename),
                    sha256: Sha256::parse(&p.sha256).map_err(|_| {
                        DebianError::Lock(format!("package {}: malformed sha256", p.name))
                    })?,
                },
            })
        })
        .collect::<Result<_, DebianError>>()?;
    let total: u64 = lock.packages.iter().map(|p| p.size).sum();
    let fetched = fetch_grouped(
        &artifacts,
        &format!("debian packages ({})", artifacts.len()),
        total,
        opts,
        reporter,
    )
    .map_err(|e| DebianError::from_fetch(e, &lock))?;
    Ok(Assembled {
        packages: lock.packages.iter().cloned().zip(fetched).collect(),
        lock,
    })
}

/// Read the signed indices and resolve the requests into a new lock.
fn resolve_lock(
    inputs: &Inputs<'_>,
    keys: &[String],
    prefer: &Lock,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<LockFile, DebianError> {
    let d = inputs.debian;
    let mirror = mirror(d)?;
    let keyring_path = d.keyring.clone().unwrap_or_else(|| HOST_KEYRING.into());
    let keyring = fs_err::read(&keyring_path).map_err(|e| DebianError::Keyring {
        path: keyring_path.clone(),
        message: e.to_string(),
    })?;
    let mut suites = Vec::new();
    let mut index_artifacts = Vec::new();
    let mut index_size = 0;
    let mut manual = Vec::new();
    for suite in &d.suites {
        let url = format!("{mirror}/dists/{suite}/InRelease");
        let got = fetch::fetch_unpinned(&format!("debian:{suite}/InRelease"), &url, opts, reporter)
            .map_err(|e| DebianError::Fetch {
                what: format!("the InRelease of suite {suite}"),
                source: e,
            })?;
        let bytes = fs_err::read(&got.path).map_err(|e| DebianError::Io(e.to_string()))?;
        let (release, signed_by) =
            verify_release(&bytes, &keyring).map_err(|message| DebianError::Signature {
                suite: suite.clone(),
                url: url.clone(),
                message,
            })?;
        if release.not_automatic {
            manual.push(suite.clone());
        }
        for comp in &d.components {
            let Some(ix) = release.packages_index(comp, inputs.arch) else {
                return Err(DebianError::NoIndex {
                    suite: suite.clone(),
                    component: comp.clone(),
                    arch: inputs.arch.to_owned(),
                });
            };
            index_size += ix.size;
            index_artifacts.push((
                suite.clone(),
                Artifact {
                    role: format!("debian:{suite}/{}", ix.path),
                    source: Source::Url {
                        url: format!("{mirror}/dists/{suite}/{}", ix.path),
                        sha256: ix.sha256.clone(),
                    },
                },
            ));
        }
        suites.push(LockedSuite {
            name: suite.clone(),
            inrelease_sha256: got.sha256.to_string(),
            signed_by,
        });
    }
    let arts: Vec<Artifact> = index_artifacts.iter().map(|(_, a)| a.clone()).collect();
    let fetched = fetch_grouped(
        &arts,
        &format!("debian indices ({})", arts.len()),
        index_size,
        opts,
        reporter,
    )
    .map_err(|e| DebianError::Fetch {
        what: "the Packages indices".into(),
        source: e,
    })?;
    let mut all: Vec<Package> = Vec::new();
    for ((suite, a), f) in index_artifacts.iter().zip(&fetched) {
        let file = fs_err::File::open(&f.path).map_err(|e| DebianError::Io(e.to_string()))?;
        let (_, mut r) = crate::stage::decompress::decoder(BufReader::new(file))
            .map_err(|e| DebianError::Io(e.to_string()))?;
        let mut text = String::new();
        r.read_to_string(&mut text)
            .map_err(|e| DebianError::Index {
                role: a.role.clone(),
                message: e.to_string(),
            })?;
        all.extend(
            parse_index(&text, suite).map_err(|message| DebianError::Index {
                role: a.role.clone(),
                message,
            })?,
        );
    }
    all.retain(|p| p.arch == inputs.arch || p.arch == "all");
    let universe = Universe::new(all, manual);
    let mut requests = inputs.requests.clone();
    // The essential set, as debootstrap and mmdebstrap take it.
    let mut essential: Vec<String> = universe.essential().map(str::to_owned).collect();
    essential.sort();
    requests.extend(essential.into_iter().map(|name| Request {
        name,
        suite: None,
        why: "Debian's essential set (Essential: yes, Priority: required)".into(),
    }));
    let chosen = resolve(&universe, &requests, prefer)?;
    Ok(LockFile {
        version: VERSION,
        architecture: inputs.arch.to_owned(),
        requests: keys.to_vec(),
        suites,
        packages: chosen
            .into_iter()
            .map(LockedPackage::from_package)
            .collect(),
    })
}

/// Fetch `artifacts` showing one progress task named `name` over `total` bytes,
/// advanced part by part (offline, every missing part is named at once first).
fn fetch_grouped(
    artifacts: &[Artifact],
    name: &str,
    total: u64,
    opts: &FetchOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<Fetched>, fetch::FetchError> {
    if opts.offline {
        return fetch::fetch_all(artifacts, opts, &Quiet);
    }
    let task = reporter.task(name, Some(total));
    let mut out = Vec::with_capacity(artifacts.len());
    for a in artifacts {
        let f = fetch::fetch_all(std::slice::from_ref(a), opts, &Quiet)?;
        task.advance(f.iter().map(|f| f.size).sum());
        out.extend(f);
    }
    task.finish("done");
    Ok(out)
}
