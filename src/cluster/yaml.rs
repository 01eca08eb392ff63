//! Small helpers for writing YAML by hand with exact, stable bytes.
//!
//! Scalars are written as JSON strings (a JSON string is a valid YAML double-quoted
//! scalar), so no value can change a document's structure.

/// A double-quoted YAML scalar.
pub fn q(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// A YAML block list of quoted scalars at `indent` spaces, one `- "item"` per line.
pub fn list(items: impl IntoIterator<Item = impl AsRef<str>>, indent: usize) -> String {
    let pad = " ".repeat(indent);
    items
        .into_iter()
        .map(|i| format!("{pad}- {}\n", q(i.as_ref())))
        .collect()
}

/// A literal block scalar (`|`) body indented by `indent` spaces.
pub fn block(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    for l in text.lines() {
        if l.is_empty() {
            out.push('\n');
        } else {
            out.push_str(&pad);
            out.push_str(l);
            out.push('\n');
        }
    }
    out
}

/// A shell single-quoted word.
pub fn sh(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quoting() {
        assert_eq!(super::q("a\"b: c"), r#""a\"b: c""#);
        assert_eq!(super::sh("it's"), r"'it'\''s'");
        assert_eq!(super::list(["x"], 2), "  - \"x\"\n");
    }
}
