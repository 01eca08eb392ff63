//! Debian control-file syntax (deb822): paragraphs of `Field: value` lines with
//! continuation lines, as in `Release`, `Packages` and `/var/lib/dpkg/status`.
//!
//! Hand-written (40 lines) rather than `deb822-lossless`, whose rowan syntax trees keep
//! comments and spacing for editors: we only read machine-written indices, tens of
//! megabytes of them, and want borrowed slices, not a lossless tree.

/// One paragraph: fields in file order; values are borrowed, multi-line values keep
/// their inner newlines and leading spaces.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Paragraph<'a> {
    pub fields: Vec<(&'a str, &'a str)>,
    /// 1-based line of the paragraph's first field (for located errors).
    pub line: usize,
}

impl<'a> Paragraph<'a> {
    /// The value of a field (names compare case-insensitively, as in deb822).
    pub fn get(&self, name: &str) -> Option<&'a str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Split `text` into paragraphs; a line that is neither a field nor a continuation is
/// an error naming its line.
pub fn parse(text: &str) -> Result<Vec<Paragraph<'_>>, String> {
    let mut out = Vec::new();
    let mut cur = Paragraph::default();
    // Byte offset where the current field's value starts, and where it ends.
    let mut open: Option<(&str, usize, usize)> = None;
    let mut at = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = at;
        at += line.len();
        let l = line.trim_end_matches(['\n', '\r']);
        if l.trim().is_empty() {
            close(text, &mut open, &mut cur);
            if !cur.fields.is_empty() {
                out.push(std::mem::take(&mut cur));
            }
        } else if l.starts_with([' ', '\t']) {
            match &mut open {
                Some((_, _, end)) => *end = start + l.len(),
                None => return Err(format!("line {}: continuation line without a field", i + 1)),
            }
        } else if l.starts_with('#') {
            continue;
        } else {
            close(text, &mut open, &mut cur);
            let colon = l
                .find(':')
                .ok_or_else(|| format!("line {}: expected `Field: value`", i + 1))?;
            if cur.fields.is_empty() {
                cur.line = i + 1;
            }
            let vstart = start + colon + 1;
            open = Some((&l[..colon], vstart, start + l.len()));
        }
    }
    close(text, &mut open, &mut cur);
    if !cur.fields.is_empty() {
        out.push(cur);
    }
    Ok(out)
}

fn close<'a>(text: &'a str, open: &mut Option<(&'a str, usize, usize)>, cur: &mut Paragraph<'a>) {
    if let Some((k, s, e)) = open.take() {
        cur.fields.push((k, text[s..e].trim()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_fields_and_continuations() {
        let t = "Package: a\nDepends: b,\n c (>= 1)\n\n\nPackage: d\nDescription: x\n more\n";
        let p = parse(t).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].get("depends"), Some("b,\n c (>= 1)"));
        assert_eq!(p[1].get("Package"), Some("d"));
        assert_eq!(p[1].line, 6);
        assert_eq!(p[1].get("Description"), Some("x\n more"));
        assert!(parse(" x\n").unwrap_err().contains("line 1"));
        assert!(parse("a: b\nnocolon\n").unwrap_err().contains("line 2"));
    }
}
