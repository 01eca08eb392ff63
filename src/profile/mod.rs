//! The profile: one TOML file describing the whole cluster.
//!
//! [`load`] reads the file, parses it (collecting unknown keys instead of failing on the
//! first), and validates it into a [`Profile`]; any problem comes back as
//! [`Diagnostics`] listing every mistake with its line and a hint.

mod debian;
pub mod diag;
pub mod model;
pub mod raw;
pub mod storage_rules;
pub mod types;
mod validate;

use std::path::Path;

pub use diag::{Diagnostic, Diagnostics, KeyPath};
pub use model::*;
pub use types::{ByteSize, Label, Role, Sha256};
pub use validate::{MAX_IMAGE_SIZE, MIN_BOOT_SIZE};

use diag::Collector;
use raw::RawProfile;

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read (exit 2); the I/O error is the source, printed once.
    #[error("reading profile {path}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The path is not a profile: missing, a directory, binary or not UTF-8 (exit 1).
    #[error("{path}: {reason}\nhint: {hint}")]
    NotAProfile {
        path: String,
        reason: String,
        hint: &'static str,
    },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// A problem found after validation (e.g. in what the build made of the profile), located
/// at `key` of the profile file as a validation error would be. Without the file (it moved
/// since), it is named by file and key alone.
pub fn locate(path: &Path, key: &str, message: String, hint: String) -> Diagnostics {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let key = KeyPath::from_dotted(key);
    let span = toml::de::DeTable::parse(&text)
        .ok()
        .and_then(|d| diag::span_of(d.get_ref(), &key));
    let mut d = Diagnostics::new(path, &text);
    d.items.push(Diagnostic {
        key,
        message,
        hint: Some(hint),
        span,
    });
    d
}

/// Read and validate a profile file.
pub fn load(path: &Path) -> Result<Profile, LoadError> {
    let text = read_text(path)?;
    parse(path, &text).map_err(LoadError::Invalid)
}

/// The profile's text, or why the path holds no TOML text at all.
fn read_text(path: &Path) -> Result<String, LoadError> {
    let shown = path.display().to_string();
    let not = |reason: &str, hint: &'static str| LoadError::NotAProfile {
        path: shown.clone(),
        reason: reason.to_owned(),
        hint,
    };
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(not(
                "no such file",
                "give the path of a profile, e.g. profiles/magi.toml",
            ));
        }
        Ok(m) if m.is_dir() => {
            return Err(not(
                "is a directory, not a profile",
                "give the profile file itself, e.g. profiles/magi.toml",
            ));
        }
        _ => {}
    }
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: shown.clone(),
        source,
    })?;
    if bytes.starts_with(&[0xff, 0xfe]) || bytes.starts_with(&[0xfe, 0xff]) {
        return Err(not(
            "is UTF-16 text; profiles are UTF-8",
            "save the file as UTF-8 (e.g. `iconv -f UTF-16 -t UTF-8`)",
        ));
    }
    if bytes.contains(&0) {
        return Err(not(
            "is a binary file, not a TOML profile",
            "give the profile's .toml file (a text file)",
        ));
    }
    let text = String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        LoadError::NotAProfile {
            path: shown.clone(),
            reason: format!("is not UTF-8 text (invalid byte at offset {at})"),
            hint: "save the file as UTF-8",
        }
    })?;
    Ok(text
        .strip_prefix('\u{feff}')
        .map(str::to_owned)
        .unwrap_or(text))
}

/// Validate profile text; `path` names the file in diagnostics and anchors relative paths.
pub fn parse(path: &Path, text: &str) -> Result<Profile, Diagnostics> {
    let doc = match toml::de::DeTable::parse(text) {
        Ok(d) => d,
        Err(e) => {
            let mut c = Collector::new(path, text, None);
            c.diags.items.push(Diagnostic {
                key: KeyPath::root(),
                message: format!("not valid TOML: {}", e.message()),
                hint: Some("check quotes, brackets and `key = value` syntax".into()),
                span: e.span(),
            });
            return Err(c.diags);
        }
    };
    let mut c = Collector::new(path, text, Some(doc.get_ref()));
    let mut unknown = Vec::new();
    let de = match toml::de::Deserializer::parse(text) {
        Ok(d) => d,
        Err(e) => unreachable!("parsed once already: {e}"),
    };
    let raw: Result<RawProfile, _> =
        serde_ignored::deserialize(de, |p| unknown.push(p.to_string()));
    for u in &unknown {
        let key = KeyPath::from_dotted(u);
        let hint = suggest(u);
        c.error(
            &key,
            format!(
                "unknown key `{}`",
                key.0.last().map_or(u.clone(), |s| match s {
                    diag::Seg::Key(k) => k.clone(),
                    diag::Seg::Index(i) => i.to_string(),
                })
            ),
            &hint,
        );
    }
    let raw = match raw {
        Ok(r) => r,
        Err(e) => {
            let key = match (e.span(), doc.get_ref()) {
                (Some(span), d) => diag::key_at(d, span.start),
                _ => KeyPath::root(),
            };
            c.diags.items.push(Diagnostic {
                key,
                message: e.message().to_owned(),
                hint: Some("see `bakery-image schema` for every key and its type".into()),
                span: e.span(),
            });
            return Err(c.diags);
        }
    };
    match validate::validate(&raw, path, &mut c) {
        Some(p) if c.diags.is_empty() => Ok(p),
        _ => Err(c.diags),
    }
}

/// A hint for a misspelt key: the closest key of the schema, if any is close.
fn suggest(path: &str) -> String {
    let known = schema_keys();
    let last = path.rsplit('.').next().unwrap_or(path);
    match known.iter().map(|k| (distance(last, k), k)).min() {
        Some((d, k)) if d <= 2.max(last.len() / 4) => format!("did you mean `{k}`?"),
        _ => "remove it; `bakery-image schema` lists every key".into(),
    }
}

/// Every key name the profile's JSON Schema knows, so suggestions never drift from it.
fn schema_keys() -> std::collections::BTreeSet<String> {
    fn walk(v: &serde_json::Value, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(serde_json::Value::Object(props)) = m.get("properties") {
                    out.extend(props.keys().cloned());
                }
                m.values().for_each(|x| walk(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    let schema = serde_json::to_value(schemars::schema_for!(RawProfile)).unwrap_or_default();
    let mut out = std::collections::BTreeSet::new();
    walk(&schema, &mut out);
    out
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            cur.push(
                (prev[j] + usize::from(ca != *cb))
                    .min(prev[j + 1] + 1)
                    .min(cur[j] + 1),
            );
        }
        prev = cur;
    }
    prev[b.len()]
}
