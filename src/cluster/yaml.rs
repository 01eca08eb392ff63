//! Small helpers for writing YAML by hand with exact, stable bytes.
//!
//! Scalars are written as JSON strings (a JSON string is a valid YAML double-quoted
//! scalar), so no value can change a document's structure.

/// Characters libyaml (and so Go's yaml, which K3s uses) reads as line breaks besides
/// `\r` and `\n`: NEL, LINE SEPARATOR, PARAGRAPH SEPARATOR. JSON leaves them raw.
const YAML_BREAKS: [char; 3] = ['\u{85}', '\u{2028}', '\u{2029}'];

/// A double-quoted YAML scalar.
pub fn q(s: &str) -> String {
    let json = serde_json::to_string(s).expect("strings serialise");
    if !json.contains(YAML_BREAKS) {
        return json;
    }
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.chars() {
        if YAML_BREAKS.contains(&c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out
}

/// A YAML block list of quoted scalars at `indent` spaces, one `- "item"` per line.
pub fn list(items: impl IntoIterator<Item = impl AsRef<str>>, indent: usize) -> String {
    let pad = " ".repeat(indent);
    items
        .into_iter()
        .map(|i| format!("{pad}- {}\n", q(i.as_ref())))
        .collect()
}

/// A literal block scalar (`|`) body indented by `indent` spaces. Every line break a
/// YAML parser knows (`\r\n`, `\r`, NEL, LS, PS) starts an indented line, so no text can
/// end the block early.
pub fn block(text: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    let text = text
        .replace("\r\n", "\n")
        .replace(['\r', '\u{85}', '\u{2028}', '\u{2029}'], "\n");
    for l in text.strip_suffix('\n').unwrap_or(&text).split('\n') {
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
        assert_eq!(super::q("a\u{2028}b"), r#""a\u2028b""#);
        assert_eq!(super::block("a\rb: 1\u{2029}c", 2), "  a\n  b: 1\n  c\n");
    }
}
