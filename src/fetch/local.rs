//! Local parts: `path` sources read in place (hashed, and compared with their pin if
//! any), and `file://` URLs copied into the cache through the hashing reader.

use super::{FetchError, Fetched, Origin, hash_file};
use crate::profile::Sha256;
use crate::progress::Reporter;

/// Read a local file in place: compute its digest and compare it with the pin, if any.
pub(super) fn fetch_path(
    role: &str,
    path: &std::path::Path,
    expected: Option<&Sha256>,
    reporter: &dyn Reporter,
) -> Result<Fetched, FetchError> {
    if !path.exists() {
        return Err(FetchError::NotFound {
            role: role.to_owned(),
            path: path.to_owned(),
        });
    }
    let (actual, size) = hash_file(path, role, reporter)?;
    if let Some(e) = expected.filter(|e| **e != actual) {
        return Err(FetchError::HashMismatch {
            url: path.display().to_string(),
            expected: e.clone(),
            actual,
        });
    }
    tracing::info!("{role}: {} sha256 {actual}", path.display());
    Ok(Fetched {
        role: role.to_owned(),
        path: path.to_owned(),
        sha256: actual,
        size,
        origin: Origin::Local,
    })
}

/// Copy a local file into `partial`, hashing it on the way.
pub(super) fn copy_local(
    role: &str,
    src: &std::path::Path,
    partial: &std::path::Path,
    task: &dyn crate::progress::Task,
) -> Result<(Sha256, u64), FetchError> {
    let file = fs_err::File::open(src).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => FetchError::NotFound {
            role: role.to_owned(),
            path: src.to_owned(),
        },
        _ => FetchError::Io(e),
    })?;
    let mut r = crate::io::HashReader::new(crate::io::ProgressReader::new(file, task));
    let mut out = fs_err::File::create(partial)?;
    std::io::copy(&mut r, &mut out)?;
    out.file().sync_all()?;
    Ok(r.finish())
}
