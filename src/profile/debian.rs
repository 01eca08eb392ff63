//! Validation of `[sources.debian]`: the mirror URL, suite, component and package names
//! against Debian's grammar (policy §5.6.1 for package names), each error at its key.

use std::path::Path;

use super::diag::{Collector, KeyPath};
use super::model::{Debian, PackageRef};
use super::raw::RawDebian;
use super::types::Invalid;

/// The suite when the profile names none: Debian 13, the current stable release.
pub const DEFAULT_SUITE: &str = "trixie";

fn suite_name(s: &str) -> Result<String, Invalid> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-.".contains(c))
        && s.starts_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(Invalid::new(format!("\"{s}\" is not a Debian suite or component name"))
            .hint("use lowercase letters, digits, '-' and '.', e.g. \"trixie\", \"trixie-backports\", \"main\""))
    }
}

/// "name" or "name/suite"; the suite must be one the profile lists.
fn package_ref(s: &str, suites: &[String]) -> Result<PackageRef, Invalid> {
    let (name, suite) = match s.split_once('/') {
        Some((n, su)) => (n, Some(su)),
        None => (s, None),
    };
    let ok = name.len() >= 2
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+-.".contains(c));
    if !ok {
        return Err(Invalid::new(format!("\"{s}\" is not a Debian package name"))
            .hint("package names are lowercase letters, digits, '+', '-' and '.' (at least two), optionally \"/suite\""));
    }
    if let Some(su) = suite
        && !suites.iter().any(|x| x == su)
    {
        return Err(Invalid::new(format!(
            "\"{s}\" names suite \"{su}\", which the profile does not list"
        ))
        .hint("add the suite to sources.debian.extra-suites, or drop \"/suite\""));
    }
    Ok(PackageRef {
        name: name.to_owned(),
        suite: suite.map(str::to_owned),
    })
}

fn mirror(s: &str) -> Result<String, Invalid> {
    let scheme_ok = ["http://", "https://", "file:///"]
        .iter()
        .any(|p| s.starts_with(p));
    if !scheme_ok || s.contains(char::is_whitespace) {
        return Err(Invalid::new(format!("\"{s}\" is not an http(s) or file URL of a Debian archive"))
            .hint("give the archive root, the directory holding dists/ and pool/, e.g. a dated snapshot URL"));
    }
    Ok(s.trim_end_matches('/').to_owned())
}

/// Validate `[sources.debian]`; `has_rootfs`: the profile also gives `sources.rootfs`.
pub(super) fn debian(
    raw: &RawDebian,
    has_rootfs: bool,
    dir: &Path,
    key: &KeyPath,
    c: &mut Collector<'_>,
) -> Option<Debian> {
    let before = c.diags.len();
    if has_rootfs {
        c.error(
            key,
            "sources.debian and sources.rootfs both give the base system",
            "keep one: [sources.debian] assembles the base from packages, rootfs = { ... } reads a prepared one",
        );
    }
    let mirror = raw
        .mirror
        .as_ref()
        .and_then(|m| c.check(&key.key("mirror"), mirror(m)));
    let suite = match &raw.suite {
        Some(s) => c.check(&key.key("suite"), suite_name(s)),
        None => Some(DEFAULT_SUITE.to_owned()),
    };
    let mut suites: Vec<String> = suite.into_iter().collect();
    for (i, s) in raw.extra_suites.iter().enumerate() {
        let k = key.key("extra-suites").index(i);
        if let Some(s) = c.check(&k, suite_name(s)) {
            if suites.contains(&s) {
                c.error(
                    &k,
                    format!("suite \"{s}\" is listed twice"),
                    "list each suite once",
                );
            }
            suites.push(s);
        }
    }
    let components = match &raw.components {
        None => vec!["main".to_owned(), "non-free-firmware".to_owned()],
        Some(list) if list.is_empty() => {
            c.error(
                &key.key("components"),
                "no components",
                "give at least [\"main\"]",
            );
            Vec::new()
        }
        Some(list) => list
            .iter()
            .enumerate()
            .filter_map(|(i, s)| c.check(&key.key("components").index(i), suite_name(s)))
            .collect(),
    };
    let packages = raw
        .packages
        .iter()
        .enumerate()
        .filter_map(|(i, p)| c.check(&key.key("packages").index(i), package_ref(p, &suites)))
        .collect();
    let kernel = raw
        .kernel
        .as_ref()
        .and_then(|k| c.check(&key.key("kernel"), package_ref(k, &suites)));
    let keyring = raw.keyring.as_ref().map(|k| dir.join(k));
    if let Some(k) = &keyring
        && !k.is_file()
    {
        c.error(
            &key.key("keyring"),
            format!("keyring `{}` does not exist", k.display()),
            "give an OpenPGP keyring file (.gpg or .asc) relative to the profile, or drop the key to use the host's debian-archive-keyring",
        );
    }
    (c.diags.len() == before).then_some(Debian {
        mirror,
        suites,
        components,
        packages,
        kernel,
        keyring,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_debian_grammar() {
        let suites = vec!["trixie".to_owned(), "trixie-backports".to_owned()];
        assert_eq!(
            package_ref("linux-image-arm64/trixie-backports", &suites).unwrap(),
            PackageRef {
                name: "linux-image-arm64".into(),
                suite: Some("trixie-backports".into())
            }
        );
        assert!(package_ref("libstdc++6", &suites).is_ok());
        for bad in ["A", "x", "-x", "a b", "vim/sid", "a;rm"] {
            assert!(package_ref(bad, &suites).is_err(), "{bad}");
        }
        assert!(suite_name("trixie-backports").is_ok());
        assert!(suite_name("Trixie").is_err());
        assert_eq!(
            mirror("https://a.example/debian/").unwrap(),
            "https://a.example/debian"
        );
        assert!(mirror("ftp://x").is_err());
    }
}
