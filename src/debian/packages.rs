//! `Packages` indices: one stanza per binary package, with its version, dependencies,
//! what it provides, and where its `.deb` is (with sha256 and size).

use debversion::Version;

use super::deb822;
use crate::profile::Sha256;

/// A version constraint of a dependency, e.g. `(>= 2.36)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Constraint {
    /// `<<`, `<=`, `=`, `>=` or `>>`.
    pub op: String,
    pub version: Version,
}

impl Constraint {
    pub fn allows(&self, v: &Version) -> bool {
        match self.op.as_str() {
            "<<" => v < &self.version,
            "<=" => v <= &self.version,
            "=" => v == &self.version,
            ">=" => v >= &self.version,
            _ => v > &self.version,
        }
    }
}

impl std::fmt::Display for Constraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.op, self.version)
    }
}

/// One alternative of a dependency: a name and an optional version constraint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Atom {
    pub name: String,
    pub constraint: Option<Constraint>,
}

impl std::fmt::Display for Atom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.constraint {
            Some(c) => write!(f, "{} ({c})", self.name),
            None => f.write_str(&self.name),
        }
    }
}

/// A binary package as listed in an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Package {
    pub name: String,
    pub version: Version,
    pub arch: String,
    /// Depends and Pre-Depends: each inner list is a set of alternatives (`a | b`).
    pub depends: Vec<Vec<Atom>>,
    /// Provides; a versioned provide carries `=` and its version.
    pub provides: Vec<Atom>,
    pub essential: bool,
    pub priority: String,
    /// Source package name and version (for the SBOM).
    pub source: String,
    pub source_version: String,
    /// Path of the `.deb` below the mirror root.
    pub filename: String,
    pub sha256: Sha256,
    pub size: u64,
    /// The suite whose index listed it.
    pub suite: String,
}

/// Parse a dependency field (`a (>= 1) | b, c:any`).
pub fn relations(field: &str) -> Result<Vec<Vec<Atom>>, String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|clause| clause.split('|').map(atom).collect())
        .collect()
}

fn atom(s: &str) -> Result<Atom, String> {
    let s = s.trim();
    let (name, rest) = match s.find('(') {
        Some(i) => (s[..i].trim(), Some(&s[i + 1..])),
        None => (s, None),
    };
    // `:any` / `:native` qualifiers: we install one architecture, so the name is enough.
    let name = name.split(':').next().unwrap_or(name).to_owned();
    if name.is_empty() || name.contains([' ', '[', '<']) {
        return Err(format!("malformed relation {s:?}"));
    }
    let constraint = match rest {
        None => None,
        Some(r) => {
            let r = r
                .strip_suffix(')')
                .ok_or_else(|| format!("malformed relation {s:?}"))?;
            let r = r.trim();
            let op_len = r.find(|c: char| !"<=>".contains(c)).unwrap_or(r.len());
            let op = match &r[..op_len] {
                "<" => "<=",
                ">" => ">=",
                o @ ("<<" | "<=" | "=" | ">=" | ">>") => o,
                _ => return Err(format!("malformed relation {s:?}")),
            };
            let version = r[op_len..]
                .trim()
                .parse()
                .map_err(|_| format!("malformed version in {s:?}"))?;
            Some(Constraint {
                op: op.to_owned(),
                version,
            })
        }
    };
    Ok(Atom { name, constraint })
}

/// Read every stanza of a `Packages` index of `suite`.
pub fn parse_index(text: &str, suite: &str) -> Result<Vec<Package>, String> {
    let mut out = Vec::new();
    for p in deb822::parse(text)? {
        let at = |what: &str| format!("stanza at line {}: {what}", p.line);
        let field = |f: &str| p.get(f).ok_or_else(|| at(&format!("no {f} field")));
        let name = field("Package")?.to_owned();
        let version: Version = field("Version")?
            .parse()
            .map_err(|_| at("malformed Version"))?;
        let mut depends = relations(p.get("Pre-Depends").unwrap_or("")).map_err(|e| at(&e))?;
        depends.extend(relations(p.get("Depends").unwrap_or("")).map_err(|e| at(&e))?);
        let provides = relations(p.get("Provides").unwrap_or(""))
            .map_err(|e| at(&e))?
            .into_iter()
            .flatten()
            .collect();
        // `Source: name (version)` when the binary version differs, else just `name`.
        let (source, source_version) = match p.get("Source") {
            Some(s) => match s.split_once(' ') {
                Some((n, v)) => (n.to_owned(), v.trim_matches(['(', ')', ' ']).to_owned()),
                None => (s.to_owned(), version.to_string()),
            },
            None => (name.clone(), version.to_string()),
        };
        out.push(Package {
            arch: field("Architecture")?.to_owned(),
            depends,
            provides,
            essential: p.get("Essential") == Some("yes"),
            priority: p.get("Priority").unwrap_or("optional").to_owned(),
            source,
            source_version,
            filename: field("Filename")?.to_owned(),
            sha256: Sha256::parse(field("SHA256")?).map_err(|_| at("malformed SHA256"))?,
            size: field("Size")?.parse().map_err(|_| at("malformed Size"))?,
            suite: suite.to_owned(),
            name,
            version,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_with_alternatives_versions_and_qualifiers() {
        let r = relations(
            "libc6 (>= 2.36), debconf (>= 0.5) | debconf-2.0, python3:any, x (<< 2:1.0-1~)",
        )
        .unwrap();
        assert_eq!(r.len(), 4);
        assert_eq!(r[1].len(), 2);
        assert_eq!(r[1][1].name, "debconf-2.0");
        assert_eq!(r[2][0].name, "python3");
        let c = r[3][0].constraint.as_ref().unwrap();
        assert!(c.allows(&"1:9".parse().unwrap()));
        assert!(!c.allows(&"2:1.0-1".parse().unwrap()));
        assert!(c.allows(&"2:1.0-0".parse().unwrap()));
        assert_eq!(r[0][0].to_string(), "libc6 (>= 2.36)");
        assert!(relations("a (~ 1)").is_err());
        assert!(relations("a (>= 1").is_err());
    }

    #[test]
    fn stanzas_become_packages() {
        let t = "Package: bash\nEssential: yes\nVersion: 5.2.37-2+b5\nSource: bash (5.2.37-2)\nArchitecture: arm64\nPre-Depends: libc6 (>= 2.38)\nDepends: base-files (>= 2.1.12), debianutils (>= 5.6-0.1)\nPriority: required\nFilename: pool/main/b/bash/bash_5.2.37-2+b5_arm64.deb\nSize: 1483420\nSHA256: 0acef0390edcc88ec243516960a8530d5938a1fe63ce9859653ff8b68b55ec0b\n\nPackage: mawk\nVersion: 1.3.4.20250131-1\nArchitecture: arm64\nProvides: awk\nFilename: pool/main/m/mawk/x.deb\nSize: 1\nSHA256: 0acef0390edcc88ec243516960a8530d5938a1fe63ce9859653ff8b68b55ec0b\n";
        let p = parse_index(t, "trixie").unwrap();
        assert_eq!(p[0].depends.len(), 3);
        assert_eq!(p[0].depends[0][0].name, "libc6");
        assert!(p[0].essential);
        assert_eq!(
            (p[0].source.as_str(), p[0].source_version.as_str()),
            ("bash", "5.2.37-2")
        );
        assert_eq!(p[1].provides[0].name, "awk");
        assert_eq!(p[1].priority, "optional");
        assert!(
            parse_index("Package: x\nVersion: 1\n", "s")
                .unwrap_err()
                .contains("line 1")
        );
    }
}
