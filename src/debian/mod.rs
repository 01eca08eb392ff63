//! The base system from Debian packages, assembled without root, chroot or host tools.
//!
//! Inputs: a mirror, suites, components and package names (the profile's
//! `[sources.debian]`), a keyring. Steps: fetch each suite's `InRelease` and verify its
//! signature ([`openpgp`]) against the archive keys pinned in [`ARCHIVE_KEYS`]; read the
//! `Packages` indices it lists, each checked by its sha256 ([`release`], [`packages`]);
//! resolve dependencies ([`resolve`]); the `.deb` files are then fetched by their index
//! sha256 into the content-addressed cache and unpacked into the staging tree.

pub mod assemble;
pub mod configure;
pub mod control;
pub mod deb822;
pub mod lock;
pub mod openpgp;
pub mod packages;
pub mod pam;
pub mod release;
pub mod resolve;
pub mod select;
pub mod users;

pub use openpgp::{Keyring, PgpError};
pub use release::Release;

/// Primary-key fingerprints of the Debian archive signing keys we trust (from
/// `debian-archive-keyring`); a keyring file may hold more keys, only these are used.
pub const ARCHIVE_KEYS: &[&str] = &[
    // Debian Archive Automatic Signing Key (13/trixie)
    "04B54C3CDCA79751B16BC6B5225629DF75B188BD",
    // Debian Security Archive Automatic Signing Key (13/trixie)
    "5E04A1E3223A19A20706E20F9904613D4CCE68C6",
    // Debian Archive Automatic Signing Key (12/bookworm)
    "B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8",
    // Debian Security Archive Automatic Signing Key (12/bookworm)
    "05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0",
];

/// The keyring used when the profile names none (the `debian-archive-keyring` package).
pub const HOST_KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// Verify an `InRelease` with `keyring` (bytes of a keyring file) and parse it.
pub fn verify_release(inrelease: &[u8], keyring: &[u8]) -> Result<(Release, String), String> {
    let ring =
        Keyring::read(keyring, ARCHIVE_KEYS).map_err(|e| format!("reading the keyring: {e}"))?;
    if ring.keys.is_empty() {
        return Err("the keyring holds none of the Debian archive keys bakery-image trusts".into());
    }
    let text =
        std::str::from_utf8(inrelease).map_err(|_| "InRelease is not UTF-8 text".to_owned())?;
    let (signed, key) = ring.verify_cleartext(text).map_err(|e| e.to_string())?;
    Ok((Release::parse(&signed)?, key))
}

/// Why the Debian base could not be assembled. Every variant but `Io` is something the
/// user can fix (exit code 1); each message ends with a hint.
#[derive(Debug, thiserror::Error)]
pub enum DebianError {
    #[error(
        "sources.debian: no mirror\nhint: set sources.debian.mirror to an archive URL (a dated snapshot pins the packages in time), or set {}",
        assemble::MIRROR_ENV
    )]
    NoMirror,
    #[error("sources.debian.keyring: cannot read `{}`: {message}\nhint: install debian-archive-keyring, or name a keyring file in sources.debian.keyring", path.display())]
    Keyring {
        path: std::path::PathBuf,
        message: String,
    },
    #[error("sources.debian: fetching {what}: {source}")]
    Fetch {
        what: String,
        source: crate::fetch::FetchError,
    },
    #[error(
        "sources.debian.suite: the InRelease of suite {suite} ({url}) failed verification: {message}\nhint: the mirror or the network served a file the Debian archive keys did not sign; use another mirror, or name the keyring that signs this archive in sources.debian.keyring"
    )]
    Signature {
        suite: String,
        url: String,
        message: String,
    },
    #[error(
        "sources.debian.components: suite {suite} has no Packages index for component {component} on {arch}\nhint: check the component name (main, contrib, non-free, non-free-firmware) and that the suite carries the architecture"
    )]
    NoIndex {
        suite: String,
        component: String,
        arch: String,
    },
    #[error(
        "sources.debian: the index {role} is malformed: {message}\nhint: the mirror serves a damaged index; try again or use another mirror"
    )]
    Index { role: String, message: String },
    #[error(
        "sources.debian.packages: {0}\nhint: check the package names and suites (sources.debian.extra-suites), or run `bakery-image update` to resolve against the mirror's current packages"
    )]
    Resolve(#[from] resolve::ResolveError),
    #[error(
        "package {name} {version} from the lock file: {source}\nhint: the mirror no longer serves the locked version (or serves other bytes); point sources.debian.mirror (or BAKERY_DEBIAN_MIRROR) at the snapshot the lock was made from, or run `bakery-image update`"
    )]
    Package {
        name: String,
        version: String,
        source: crate::fetch::FetchError,
    },
    #[error(
        "the lock file is malformed: {0}\nhint: delete it (the next build writes a new one) or run `bakery-image update`"
    )]
    Lock(String),
    #[error(
        "sources.debian: --offline, but no lock beside the profile holds its package set (none yet, or the profile now asks for other packages, another suite or architecture)\nhint: run `bakery-image fetch` or `bakery-image update` once with the mirror reachable: it resolves the set and writes the lock"
    )]
    OfflineUnlocked,
    #[error("{0}")]
    Io(String),
}

impl DebianError {
    /// Whether the user can fix it by changing the profile, the lock, or the mirror.
    pub fn is_user_error(&self) -> bool {
        match self {
            DebianError::Io(_) => false,
            DebianError::Fetch { source, .. } | DebianError::Package { source, .. } => {
                source.is_user_error()
            }
            _ => true,
        }
    }

    /// A fetch error of the package downloads, named by the package it hit.
    fn from_fetch(e: crate::fetch::FetchError, lock: &lock::LockFile) -> Self {
        use crate::fetch::FetchError as F;
        let url = match &e {
            F::HashMismatch { url, .. } | F::Status { url, .. } | F::Transport { url, .. } => {
                Some(url.clone())
            }
            F::Offline { missing, .. } => missing.first().map(|m| m.url.clone()),
            _ => None,
        };
        match url.and_then(|u| lock.packages.iter().find(|p| u.ends_with(&p.filename))) {
            Some(p) if !matches!(e, F::Offline { .. }) => DebianError::Package {
                name: p.name.clone(),
                version: p.version.clone(),
                source: e,
            },
            _ => DebianError::Fetch {
                what: "the packages".into(),
                source: e,
            },
        }
    }
}
