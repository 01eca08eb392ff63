//! What a test needs from the machine: tools and the parts of `ci/fetch-parts`. One rule
//! for every test: when something is missing, a developer's run skips the test with the
//! reason printed, and a CI run (`CI` set) fails it, because CI installs every tool
//! (`ci/setup-host`) and fetches every part (`ci/fetch-parts`) itself.

use std::fmt::Display;
use std::path::{Path, PathBuf};

/// The test cannot run here: panics under `CI`, else prints why and returns true, so that
/// `if !ok && skip("...") { return; }` reads as what it does.
pub fn skip(why: impl Display) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("CI must run this test, but {why}");
    }
    eprintln!("skipping: {why}");
    true
}

/// Where `tool` is: on PATH, or in /sbin and /usr/sbin (a normal user's PATH may lack them).
pub fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/sbin".into(), "/usr/sbin".into()])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// Every tool is installed; otherwise [`skip`] names the first one missing.
pub fn have(tools: &[&str]) -> bool {
    match tools.iter().find(|t| find(t).is_none()) {
        None => true,
        Some(t) => !skip(format!("{t} is not installed (ci/setup-host installs it)")),
    }
}

/// Where the test parts of `ci/fetch-parts` are: `$BAKERY_PARTS`, else
/// `${XDG_CACHE_HOME:-~/.cache}/bakery-image/parts` (outside the repository, as the script
/// keeps them).
pub fn parts_root() -> PathBuf {
    if let Some(p) = std::env::var_os("BAKERY_PARTS") {
        return PathBuf::from(p);
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| crate::root().join(".cache"));
    cache.join("bakery-image/parts")
}

/// The parts directory of `arch` ("amd64", "arm64") when it holds every file of `names`;
/// otherwise [`skip`] names the first one missing.
pub fn parts(arch: &str, names: &[&str]) -> Option<PathBuf> {
    let dir = parts_root().join(arch);
    match names.iter().map(|n| dir.join(n)).find(|p| !p.is_file()) {
        None => Some(dir),
        Some(p) => {
            skip(missing(&p));
            None
        }
    }
}

/// One part by its path under the parts directory (e.g. "arm64/rootfs.tar").
pub fn part(rel: &str) -> Option<PathBuf> {
    let p = parts_root().join(rel);
    if p.is_file() {
        Some(p)
    } else {
        skip(missing(&p));
        None
    }
}

fn missing(p: &Path) -> String {
    format!("{} is missing (run ci/fetch-parts)", p.display())
}
