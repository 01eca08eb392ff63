//! Dependency resolution: from the packages asked for (the essential set, the runtime's
//! needs, the profile's list) to the closed set to unpack.
//!
//! Like apt with default pins: each name has one candidate, the highest version in the
//! suites that are not `NotAutomatic` (backports is used only for a package asked for as
//! `name/suite`), or exactly the version a lock file names. Depends and Pre-Depends are
//! followed; an alternative already satisfied (by a package or a Provides) is kept,
//! otherwise the first alternative that has a fitting candidate is taken, and a virtual
//! name is given by its providers in order of priority, then name. Conflicts and Breaks
//! are not solved: the set is built from one suite's consistent archive, and the
//! differential test against mmdebstrap checks the result.

use std::collections::{BTreeMap, HashMap, VecDeque};

use super::packages::{Atom, Package};

/// What the caller asks for, and why (a profile key, or "the node runtime").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub name: String,
    /// Take it from this suite (e.g. a backports kernel).
    pub suite: Option<String>,
    pub why: String,
}

/// Why no package set could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    #[error("no package `{name}`{} in the indices (asked for by {why})", suite.as_ref().map(|s| format!(" in suite {s}")).unwrap_or_default())]
    Missing {
        name: String,
        suite: Option<String>,
        why: String,
    },
    #[error(
        "{package} depends on `{dependency}`, which no available package satisfies (needed by {why})"
    )]
    Unsatisfiable {
        package: String,
        dependency: String,
        why: String,
    },
    #[error(
        "the lock file pins {name} {version}, which the mirror no longer has (asked for by {why})"
    )]
    LockedMissing {
        name: String,
        version: String,
        why: String,
    },
}

/// All packages of the indices, by name and by what they provide.
#[derive(Debug, Default)]
pub struct Universe {
    by_name: HashMap<String, Vec<Package>>,
    providers: HashMap<String, Vec<(String, Option<String>)>>,
    manual_suites: Vec<String>,
}

impl Universe {
    /// `manual_suites`: suites whose packages are taken only when asked for by suite.
    pub fn new(packages: Vec<Package>, manual_suites: Vec<String>) -> Self {
        let mut u = Universe {
            manual_suites,
            ..Default::default()
        };
        for p in packages {
            for pr in &p.provides {
                let v = pr.constraint.as_ref().map(|c| c.version.to_string());
                u.providers
                    .entry(pr.name.clone())
                    .or_default()
                    .push((p.name.clone(), v));
            }
            u.by_name.entry(p.name.clone()).or_default().push(p);
        }
        for list in u.by_name.values_mut() {
            list.sort_by(|a, b| b.version.cmp(&a.version));
        }
        for list in u.providers.values_mut() {
            list.sort();
            list.dedup();
        }
        u
    }

    pub fn essential(&self) -> impl Iterator<Item = &str> {
        self.by_name
            .iter()
            .filter(|(_, v)| v.iter().any(|p| p.essential || p.priority == "required"))
            .map(|(k, _)| k.as_str())
    }

    /// The candidate of `name`: the locked version, or the newest automatic one.
    fn candidate(&self, name: &str, suite: Option<&str>, lock: &Lock) -> Option<&Package> {
        let list = self.by_name.get(name)?;
        if let Some(v) = lock.get(name) {
            let locked = list
                .iter()
                .find(|p| p.version.to_string() == *v && suite.is_none_or(|s| p.suite == s));
            // A name now asked for from a suite its locked version is not from (a profile
            // that moved its kernel to backports): the lock predates the request.
            if locked.is_some() || suite.is_none() {
                return locked;
            }
        }
        list.iter().find(|p| match suite {
            Some(s) => p.suite == s,
            None => !self.manual_suites.contains(&p.suite),
        })
    }

    /// For a versioned dependency the automatic candidate does not fit: the locked
    /// version if it does, else the newest version of `name` in any suite that does (a
    /// lock from before the kernel moved to backports pins the older `linux-base`).
    fn fitting(&self, a: &Atom, lock: &Lock) -> Option<&Package> {
        let c = a.constraint.as_ref()?;
        let fits: Vec<&Package> = self
            .by_name
            .get(&a.name)?
            .iter()
            .filter(|p| c.allows(&p.version))
            .collect();
        fits.iter()
            .find(|p| lock.get(&a.name) == Some(&p.version.to_string()))
            .or(fits.first())
            .copied()
    }
}

/// Locked versions by package name.
pub type Lock = BTreeMap<String, String>;

fn rank(priority: &str) -> u8 {
    match priority {
        "required" => 0,
        "important" => 1,
        "standard" => 2,
        _ => 3,
    }
}

/// Resolve `requests` (and everything they need) into packages sorted by name.
pub fn resolve<'u>(
    u: &'u Universe,
    requests: &[Request],
    lock: &Lock,
) -> Result<Vec<&'u Package>, ResolveError> {
    let mut chosen: BTreeMap<&str, &Package> = BTreeMap::new();
    let mut why: HashMap<String, String> = HashMap::new();
    let mut queue = VecDeque::new();
    for r in requests {
        if chosen.contains_key(r.name.as_str()) {
            continue;
        }
        let p = u
            .candidate(&r.name, r.suite.as_deref(), lock)
            .ok_or_else(|| match lock.get(&r.name) {
                Some(v) if u.by_name.contains_key(&r.name) => ResolveError::LockedMissing {
                    name: r.name.clone(),
                    version: v.clone(),
                    why: r.why.clone(),
                },
                _ => ResolveError::Missing {
                    name: r.name.clone(),
                    suite: r.suite.clone(),
                    why: r.why.clone(),
                },
            })?;
        chosen.insert(&p.name, p);
        why.insert(p.name.clone(), r.why.clone());
        queue.push_back(p);
    }
    while let Some(p) = queue.pop_front() {
        for clause in &p.depends {
            if clause.iter().any(|a| satisfied(&chosen, a)) {
                continue;
            }
            let pick = clause.iter().find_map(|a| pick(u, a, lock));
            let Some(q) = pick else {
                let dependency = clause
                    .iter()
                    .map(Atom::to_string)
                    .collect::<Vec<_>>()
                    .join(" | ");
                return Err(ResolveError::Unsatisfiable {
                    package: format!("{} {}", p.name, p.version),
                    dependency,
                    why: why.get(&p.name).cloned().unwrap_or_default(),
                });
            };
            let chain = format!(
                "{} ← {}",
                p.name,
                why.get(&p.name).map_or("", String::as_str)
            );
            why.entry(q.name.clone()).or_insert(chain);
            chosen.insert(&q.name, q);
            queue.push_back(q);
        }
    }
    Ok(chosen.into_values().collect())
}

fn satisfied(chosen: &BTreeMap<&str, &Package>, a: &Atom) -> bool {
    if let Some(p) = chosen.get(a.name.as_str())
        && a.constraint.as_ref().is_none_or(|c| c.allows(&p.version))
    {
        return true;
    }
    chosen
        .values()
        .any(|p| p.provides.iter().any(|pr| provides(pr, a)))
}

/// Does the Provides entry `pr` satisfy `a`? A versioned dependency needs a versioned
/// provide whose version fits.
fn provides(pr: &Atom, a: &Atom) -> bool {
    pr.name == a.name
        && match (&a.constraint, &pr.constraint) {
            (None, _) => true,
            (Some(c), Some(p)) => c.allows(&p.version),
            (Some(_), None) => false,
        }
}

fn pick<'u>(u: &'u Universe, a: &Atom, lock: &Lock) -> Option<&'u Package> {
    if let Some(p) = u.candidate(&a.name, None, lock)
        && a.constraint.as_ref().is_none_or(|c| c.allows(&p.version))
    {
        return Some(p);
    }
    let Some(provs) = u.providers.get(&a.name) else {
        return u.fitting(a, lock);
    };
    let mut providers: Vec<&Package> = provs
        .iter()
        .filter_map(|(n, _)| u.candidate(n, None, lock))
        .filter(|p| p.provides.iter().any(|pr| provides(pr, a)))
        .collect();
    providers.sort_by(|x, y| (rank(&x.priority), &x.name).cmp(&(rank(&y.priority), &y.name)));
    providers.first().copied().or_else(|| u.fitting(a, lock))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::debian::packages::parse_index;

    fn universe() -> Universe {
        let sha = "0acef0390edcc88ec243516960a8530d5938a1fe63ce9859653ff8b68b55ec0b";
        let stanza = |name: &str, ver: &str, extra: &str| {
            format!(
                "Package: {name}\nVersion: {ver}\nArchitecture: arm64\n{extra}Filename: pool/{name}.deb\nSize: 1\nSHA256: {sha}\n\n"
            )
        };
        let main = [
            stanza("libc6", "2.41-12", "Priority: optional\n"),
            stanza(
                "bash",
                "5.2-1",
                "Essential: yes\nPriority: required\nDepends: libc6 (>= 2.38), awk | busybox\n",
            ),
            stanza("mawk", "1.3-1", "Priority: required\nProvides: awk\n"),
            stanza("gawk", "5.0-1", "Priority: optional\nProvides: awk\n"),
            stanza("app", "1.0", "Depends: libc6 (>= 3.0)\n"),
            stanza("tool", "1.0", "Depends: virt (>= 2)\n"),
            stanza("prov", "1.0", "Provides: virt (= 2.5)\n"),
            stanza("linux-image-arm64", "6.12", ""),
        ]
        .concat();
        let bpo = [
            stanza(
                "linux-image-arm64",
                "6.17~bpo",
                "Depends: linux-base-arm64 (= 6.17~bpo)\n",
            ),
            stanza("linux-base-arm64", "6.17~bpo", ""),
        ]
        .concat();
        let mut all = parse_index(&main, "trixie").unwrap();
        all.extend(parse_index(&bpo, "trixie-backports").unwrap());
        Universe::new(all, vec!["trixie-backports".into()])
    }

    fn req(name: &str, suite: Option<&str>) -> Request {
        Request {
            name: name.into(),
            suite: suite.map(Into::into),
            why: "sources.debian.packages".into(),
        }
    }

    fn names(v: &[&Package]) -> Vec<String> {
        v.iter()
            .map(|p| format!("{}={}", p.name, p.version))
            .collect()
    }

    #[test]
    fn follows_depends_alternatives_and_provides() {
        let u = universe();
        let mut e: Vec<&str> = u.essential().collect();
        e.sort();
        assert_eq!(e, ["bash", "mawk"]);
        let got = resolve(&u, &[req("bash", None), req("tool", None)], &Lock::new()).unwrap();
        // awk is a virtual name: mawk (required) beats gawk (optional); virt (>= 2) needs
        // the versioned provide.
        assert_eq!(
            names(&got),
            [
                "bash=5.2-1",
                "libc6=2.41-12",
                "mawk=1.3-1",
                "prov=1.0",
                "tool=1.0"
            ]
        );
    }

    #[test]
    fn backports_only_by_suite_and_lock_pins() {
        let u = universe();
        let k = resolve(&u, &[req("linux-image-arm64", None)], &Lock::new()).unwrap();
        assert_eq!(names(&k), ["linux-image-arm64=6.12"]);
        let k = resolve(
            &u,
            &[req("linux-image-arm64", Some("trixie-backports"))],
            &Lock::new(),
        )
        .unwrap();
        // Its exact-version dependency exists only in backports: taken from there.
        assert_eq!(
            names(&k),
            ["linux-base-arm64=6.17~bpo", "linux-image-arm64=6.17~bpo"]
        );
        let lock = Lock::from([("linux-image-arm64".to_owned(), "6.17~bpo".to_owned())]);
        let k = resolve(&u, &[req("linux-image-arm64", None)], &lock).unwrap();
        assert_eq!(
            names(&k),
            ["linux-base-arm64=6.17~bpo", "linux-image-arm64=6.17~bpo"]
        );
        // A lock from before the kernel moved to backports does not hold it back.
        let lock = Lock::from([("linux-image-arm64".to_owned(), "6.12".to_owned())]);
        let k = resolve(
            &u,
            &[req("linux-image-arm64", Some("trixie-backports"))],
            &lock,
        )
        .unwrap();
        assert_eq!(
            names(&k),
            ["linux-base-arm64=6.17~bpo", "linux-image-arm64=6.17~bpo"]
        );
        let lock = Lock::from([("libc6".to_owned(), "2.36-9".to_owned())]);
        let e = resolve(&u, &[req("libc6", None)], &lock).unwrap_err();
        assert!(matches!(e, ResolveError::LockedMissing { .. }), "{e}");
    }

    #[test]
    fn missing_and_unsatisfiable_are_named() {
        let u = universe();
        let e = resolve(&u, &[req("nope", None)], &Lock::new()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "no package `nope` in the indices (asked for by sources.debian.packages)"
        );
        let e = resolve(&u, &[req("app", None)], &Lock::new()).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("app 1.0 depends on `libc6 (>= 3.0)`"),
            "{e}"
        );
    }
}
