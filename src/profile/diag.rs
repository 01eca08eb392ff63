//! Located diagnostics for a profile: every problem names the file, line and column, the
//! key path (`nodes[1].address`) and, where the user can fix it, a hint.
//!
//! Validation works on plain structs and speaks in key paths; this module turns a key path
//! back into a byte span using the spanned TOML document, and renders rustc-style reports.

use std::fmt::{self, Write as _};
use std::ops::Range;
use std::path::{Path, PathBuf};

use toml::de::{DeTable, DeValue};

use super::types::Invalid;

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path such as `nodes[1].address`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    pub fn root() -> Self {
        Self(Vec::new())
    }
    pub fn key(&self, k: &str) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_owned()));
        Self(v)
    }
    pub fn index(&self, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        Self(v)
    }
    /// Parse "a.b[2].c" (used for paths reported by serde_ignored).
    pub fn from_dotted(s: &str) -> Self {
        let mut out = Vec::new();
        for part in s.split('.') {
            if let Ok(i) = part.parse::<usize>() {
                out.push(Seg::Index(i));
            } else if !part.is_empty() && part != "?" {
                out.push(Seg::Key(part.to_owned()));
            }
        }
        Self(out)
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        if self.0.is_empty() {
            f.write_str("(top level)")?;
        }
        Ok(())
    }
}

/// One problem in a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub key: KeyPath,
    pub message: String,
    pub hint: Option<String>,
    /// Byte range in the file; None when the problem has no place (a missing table).
    pub span: Option<Range<usize>>,
}

/// Every problem found in one profile, with the text needed to locate them.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    pub file: PathBuf,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

impl Diagnostics {
    pub fn new(file: &Path, source: &str) -> Self {
        Self {
            file: file.to_owned(),
            source: source.to_owned(),
            items: Vec::new(),
        }
    }
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Line and column (1-based) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let before = &self.source[..offset.min(self.source.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.len(), |nl| before.len() - nl - 1)
            + 1;
        (line, col)
    }

    /// Where a diagnostic points: "file:line:col".
    pub fn location(&self, d: &Diagnostic) -> String {
        match &d.span {
            Some(span) => {
                let (l, c) = self.line_col(span.start);
                format!("{}:{l}:{c}", self.file.display())
            }
            None => self.file.display().to_string(),
        }
    }

    /// The report shown to users.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for d in &self.items {
            let _ = writeln!(
                out,
                "error: {}: {}",
                shorten(&d.key.to_string()),
                shorten(&d.message)
            );
            let _ = writeln!(out, "  --> {}", self.location(d));
            if let Some(span) = &d.span {
                let (line, col) = self.line_col(span.start);
                if let Some(text) = self.source.lines().nth(line - 1) {
                    let width = line.to_string().len();
                    let (text, col) = excerpt(text, col);
                    let len = span
                        .len()
                        .clamp(1, text.chars().count().saturating_sub(col - 1).max(1));
                    let _ = writeln!(out, "{:width$} |", "");
                    let _ = writeln!(out, "{line} | {text}");
                    let _ = writeln!(
                        out,
                        "{:width$} | {}{}",
                        "",
                        " ".repeat(col - 1),
                        "^".repeat(len.min(EXCERPT))
                    );
                }
            }
            if let Some(h) = &d.hint {
                let _ = writeln!(out, "  = hint: {h}");
            }
            out.push('\n');
        }
        let n = self.items.len();
        let _ = write!(
            out,
            "{}: {n} problem{} found; nothing was written",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        );
        out
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render())
    }
}

impl std::error::Error for Diagnostics {}

/// A message or key quoting a huge value, cut in the middle.
fn shorten(s: &str) -> String {
    const MAX: usize = 300;
    if s.chars().count() <= MAX {
        return s.to_owned();
    }
    let head: String = s.chars().take(MAX / 2).collect();
    let tail: String = s.chars().skip(s.chars().count() - MAX / 4).collect();
    format!("{head}...{tail}")
}

/// The widest excerpt of a source line shown under a diagnostic, in characters.
const EXCERPT: usize = 100;

/// A window of at most [`EXCERPT`] characters of `line` around 1-based byte column `col`,
/// control characters shown as '?', with the column of the same place in the window: a
/// 20 MB line or a line holding terminal escapes is never copied to stderr whole.
fn excerpt(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let at = line
        .char_indices()
        .take_while(|(i, _)| *i < col - 1)
        .count();
    let start = at.saturating_sub(EXCERPT / 4);
    let end = (start + EXCERPT).min(chars.len());
    let mut s: String = chars[start..end]
        .iter()
        .map(|c| if c.is_control() { '?' } else { *c })
        .collect();
    let mut col = at - start + 1;
    if start > 0 {
        s.insert_str(0, "...");
        col += 3;
    }
    if end < chars.len() {
        s.push_str("...");
    }
    (s, col)
}

/// Collects problems during validation, locating each by its key path.
#[derive(Debug)]
pub struct Collector<'a> {
    doc: Option<&'a DeTable<'a>>,
    pub diags: Diagnostics,
}

impl<'a> Collector<'a> {
    pub fn new(file: &Path, source: &str, doc: Option<&'a DeTable<'a>>) -> Self {
        Self {
            doc,
            diags: Diagnostics::new(file, source),
        }
    }

    pub fn push(&mut self, key: &KeyPath, invalid: Invalid) {
        let span = self.doc.and_then(|d| span_of(d, key));
        self.diags.items.push(Diagnostic {
            key: key.clone(),
            message: invalid.message,
            hint: invalid.hint,
            span,
        });
    }

    /// Record a problem; every problem the user can fix carries a hint.
    pub fn error(&mut self, key: &KeyPath, message: impl Into<String>, hint: &str) {
        self.push(key, Invalid::new(message).hint(hint));
    }

    /// Run a parser on a value and record its failure.
    pub fn check<T>(&mut self, key: &KeyPath, r: Result<T, Invalid>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.push(key, e);
                None
            }
        }
    }
}

/// "file:line:col key" of `key` in the profile file at `file` (just "file key" when the
/// file cannot be read again or parsed): for problems found after validation, such as a
/// base that lacks a part the profile needs.
pub fn locate(file: &Path, key: &str) -> String {
    let key_path = KeyPath::from_dotted(key);
    let at = std::fs::read_to_string(file).ok().and_then(|text| {
        let doc = DeTable::parse(&text).ok()?;
        let span = span_of(doc.get_ref(), &key_path)?;
        let d = Diagnostics::new(file, &text);
        Some(d.line_col(span.start))
    });
    match at {
        Some((l, c)) => format!("{}:{l}:{c} {key}", file.display()),
        None => format!("{} {key}", file.display()),
    }
}

/// The span of the value at `key`, or of the deepest existing parent.
pub fn span_of(doc: &DeTable<'_>, key: &KeyPath) -> Option<Range<usize>> {
    let mut table = doc;
    let mut last: Option<Range<usize>> = None;
    let mut array: Option<&toml::de::DeArray<'_>> = None;
    for seg in &key.0 {
        let value = match (seg, array) {
            (Seg::Index(i), Some(arr)) => arr.get(*i)?,
            (Seg::Key(k), None) => match table.get_key_value(k.as_str()) {
                Some((kspan, v)) => {
                    // Point at the key itself if the value is a table (its span can be huge).
                    if matches!(v.get_ref(), DeValue::Table(_)) {
                        last = Some(kspan.span());
                    }
                    v
                }
                None => return last,
            },
            _ => return last,
        };
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => {
                table = t;
                if !matches!(seg, Seg::Key(_)) || last.is_none() {
                    last = Some(value.span());
                }
            }
            DeValue::Array(a) => {
                array = Some(a);
                last = Some(value.span());
            }
            _ => last = Some(value.span()),
        }
    }
    last
}

/// The key path of the deepest value whose span holds byte `at`: names the key of an
/// error that serde reports only by position (a wrong type).
pub fn key_at(doc: &DeTable<'_>, at: usize) -> KeyPath {
    fn value(v: &toml::Spanned<DeValue<'_>>, at: usize, path: KeyPath) -> Option<KeyPath> {
        match v.get_ref() {
            DeValue::Table(t) => {
                table(t, at, &path).or_else(|| v.span().contains(&at).then_some(path))
            }
            DeValue::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, e)| value(e, at, path.index(i)))
                .or_else(|| v.span().contains(&at).then_some(path)),
            _ => v.span().contains(&at).then_some(path),
        }
    }
    fn table(t: &DeTable<'_>, at: usize, path: &KeyPath) -> Option<KeyPath> {
        t.iter().find_map(|(k, v)| {
            let p = path.key(k.get_ref());
            value(v, at, p.clone()).or_else(|| k.span().contains(&at).then_some(p))
        })
    }
    table(doc, at, &KeyPath::root()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_nested_keys() {
        let src = "[cluster]\nname = \"x\"\n\n[[nodes]]\nhostname = \"a\"\n\n[[nodes]]\nhostname = \"b\"\naddress = \"1.2.3.4\"\n";
        let doc = DeTable::parse(src).unwrap();
        let mut c = Collector::new(Path::new("p.toml"), src, Some(doc.get_ref()));
        c.error(
            &KeyPath::root().key("nodes").index(1).key("address"),
            "bad",
            "fix it",
        );
        c.error(
            &KeyPath::root().key("cluster").key("name"),
            "bad name",
            "rename",
        );
        let d = &c.diags;
        assert_eq!(d.location(&d.items[0]), "p.toml:9:11");
        assert_eq!(d.location(&d.items[1]), "p.toml:2:8");
        let r = d.render();
        assert!(r.contains("error: nodes[1].address: bad"), "{r}");
        assert!(r.contains("= hint: fix it"), "{r}");
        assert!(r.contains("2 problems found"), "{r}");
    }

    #[test]
    fn dotted_paths() {
        assert_eq!(
            KeyPath::from_dotted("nodes.1.adress").to_string(),
            "nodes[1].adress"
        );
    }
}
