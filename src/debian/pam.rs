//! What `pam-auth-update --package` (libpam-runtime's postinst) writes on a fresh
//! install: `/etc/pam.d/common-{auth,account,password,session,session-noninteractive}`
//! from the templates in `/usr/share/pam/` and the profiles in `/usr/share/pam-configs/`
//! whose `Default` is `yes`, the way pam-auth-update 1.7 lays out the stacks: the
//! "Primary" block of each type with its `success=end` jumps counted out, and the
//! "Additional" block after the fallback lines.

use std::collections::BTreeMap;

use crate::stage::{Data, Entry, Kind, Tree};

/// The stacks pam-auth-update writes, by template name.
const TYPES: &[&str] = &[
    "auth",
    "account",
    "password",
    "session",
    "session-noninteractive",
];

/// One profile of `/usr/share/pam-configs`: its fields as pam-auth-update parses them.
type Profile = BTreeMap<String, String>;

fn read(tree: &Tree, path: &str) -> Option<String> {
    match &tree.get(path)?.kind {
        Kind::File(d) => d
            .read()
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

/// pam-auth-update's `parse_pam_profile`: `Field: value` lines, continuation lines
/// trimmed and joined by newlines; a session stack that is not interactive-only also
/// serves the noninteractive one.
fn parse_profile(text: &str) -> Profile {
    let mut p = Profile::new();
    let mut field = String::new();
    for line in text.lines() {
        let is_field = line
            .split_once(':')
            .filter(|(k, v)| {
                !k.is_empty()
                    && !k.contains(char::is_whitespace)
                    && (v.is_empty() || v.starts_with(char::is_whitespace))
            })
            .map(|(k, v)| (k.trim_end_matches("-Final").to_owned(), v.trim().to_owned()));
        match is_field {
            Some((k, v)) => {
                field = k;
                p.insert(field.clone(), v);
            }
            None => {
                let l = line.trim();
                let v = p.entry(field.clone()).or_default();
                if !l.is_empty() {
                    v.push('\n');
                    v.push_str(l);
                }
                *v = v.trim_start().to_owned();
            }
        }
    }
    if p.get("Session-Interactive-Only").map(String::as_str) != Some("yes") {
        for (from, to) in [
            ("Session-Type", "Session-noninteractive-Type"),
            ("Session", "Session-noninteractive"),
            ("Session-Initial", "Session-noninteractive-Initial"),
        ] {
            if let Some(v) = p.get(from).cloned() {
                p.insert(to.to_owned(), v);
            }
        }
    }
    p
}

/// One module line of a block: the control with `end` replaced by the number of lines
/// left to jump over, then the module and its options.
fn merge_line(line: &str, count: usize) -> String {
    let line = line.trim_start();
    let control_end = if line.starts_with('[') {
        line.find(']').map(|i| i + 1)
    } else {
        line.find(char::is_whitespace)
    };
    let Some(end) = control_end else {
        return format!("{line}\n");
    };
    let (control, rest) = line.split_at(end);
    let rest = rest.trim_start();
    let (module, opts) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    let sep = &line[control.len()..line.len() - rest.len()];
    let opts: Vec<&str> = opts.split_whitespace().collect();
    let modline = format!("{control}{sep}{module}").replace("end", &count.to_string());
    format!("{modline} {}\n", opts.join(" "))
}

/// The lines of one profile for a stack type, the `-Initial` form for the first module.
fn lines<'a>(p: &'a Profile, ty: &str, pos: usize) -> &'a str {
    if pos == 0
        && let Some(v) = p.get(&format!("{ty}-Initial")).filter(|v| !v.is_empty())
    {
        return v;
    }
    p.get(ty).map(String::as_str).unwrap_or("")
}

/// One stack from its template, or None when the template lacks the markers.
fn stack(template: &str, ty: &str, enabled: &[&Profile]) -> Option<String> {
    let mut uc = ty.to_owned();
    uc[..1].make_ascii_uppercase();
    let prefix = ty.trim_end_matches("-noninteractive");
    let block = |kind: &str, out: &mut String| {
        let mods: Vec<&&Profile> = enabled
            .iter()
            .filter(|p| p.get(&format!("{uc}-Type")).map(String::as_str) == Some(kind))
            .collect();
        let mut count: usize = mods
            .iter()
            .enumerate()
            .map(|(i, p)| lines(p, &uc, i).lines().filter(|l| !l.is_empty()).count())
            .sum();
        if kind == "Additional" {
            count = count.saturating_sub(1);
        }
        if kind == "Primary" && count == 0 {
            out.push_str(&format!("{prefix}\t[default=1]\t\t\tpam_permit.so\n"));
        }
        for (i, p) in mods.iter().enumerate() {
            for l in lines(p, &uc, i).lines().filter(|l| !l.is_empty()) {
                out.push_str(prefix);
                out.push('\t');
                out.push_str(&merge_line(l, count));
                count = count.saturating_sub(1);
            }
        }
    };
    let mut out = String::new();
    let mut state = 0;
    for line in template.split_inclusive('\n') {
        match state {
            1 if line.starts_with("# here's the fallback if no module succeeds") => {
                out.push_str(line);
                state = 2;
            }
            3 if line.starts_with("# end of pam-auth-update config") => {
                out.push_str(line);
                state = 4;
            }
            1 | 3 => {}
            _ => {
                out.push_str(line);
                if state == 0
                    && line
                        .starts_with("# here are the per-package modules (the \"Primary\" block)")
                {
                    block("Primary", &mut out);
                    state = 1;
                } else if state == 2
                    && line.starts_with(
                        "# and here are more per-package modules (the \"Additional\" block)",
                    )
                {
                    block("Additional", &mut out);
                    state = 3;
                }
            }
        }
    }
    (state == 4).then_some(out)
}

/// Write the common-* stacks that are absent, from what the tree holds.
pub fn pam_auth_update(tree: &mut Tree, t: i64) -> Result<(), crate::stage::tree::PathError> {
    let mut profiles: Vec<(String, Profile)> = tree
        .children("usr/share/pam-configs")
        .filter_map(|(p, _)| {
            let name = p.rsplit('/').next()?.to_owned();
            Some((name, parse_profile(&read(tree, p)?)))
        })
        .filter(|(_, p)| p.get("Default").map(String::as_str) == Some("yes"))
        .filter(|(_, p)| !p.values().any(|v| v.contains("pam_tally")))
        .collect();
    let prio = |p: &Profile| {
        p.get("Priority")
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    // Highest priority first; equal priorities by name, descending (as the script sorts).
    profiles.sort_by(|a, b| prio(&b.1).cmp(&prio(&a.1)).then(b.0.cmp(&a.0)));
    let enabled: Vec<&Profile> = profiles.iter().map(|(_, p)| p).collect();
    for ty in TYPES {
        let dest = format!("etc/pam.d/common-{ty}");
        if tree.contains(&dest) {
            continue;
        }
        let Some(template) = read(tree, &format!("usr/share/pam/common-{ty}")) else {
            continue;
        };
        if let Some(text) = stack(&template, ty, &enabled) {
            tree.insert(&dest, Entry::file(Data::bytes(text), 0o644).with_mtime(t))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNIX: &str = "Name: Unix authentication\nDefault: yes\nPriority: 256\nAuth-Type: Primary\nAuth:\n\t[success=end default=ignore]\tpam_unix.so nullok try_first_pass\nAuth-Initial:\n\t[success=end default=ignore]\tpam_unix.so nullok\nAccount-Type: Primary\nAccount:\n\t[success=end new_authtok_reqd=done default=ignore]\tpam_unix.so\nSession-Type: Additional\nSession:\n\trequired\tpam_unix.so\n";

    #[test]
    fn stacks_like_pam_auth_update() {
        let tpl = "#\n# here are the per-package modules (the \"Primary\" block)\n$TY_primary\n# here's the fallback if no module succeeds\nTY\trequisite\t\t\tpam_deny.so\n# and here are more per-package modules (the \"Additional\" block)\n$TY_additional\n# end of pam-auth-update config\n";
        let unix = parse_profile(UNIX);
        let got = stack(&tpl.replace("TY", "auth"), "auth", &[&unix]).unwrap();
        assert!(
            got.contains("\nauth\t[success=1 default=ignore]\tpam_unix.so nullok\n# here's"),
            "{got}"
        );
        assert!(!got.contains('$'), "{got}");
        let acct = stack(&tpl.replace("TY", "account"), "account", &[&unix]).unwrap();
        assert!(
            acct.contains(
                "account\t[success=1 new_authtok_reqd=done default=ignore]\tpam_unix.so \n"
            ),
            "{acct}"
        );
        let sess = stack(&tpl.replace("TY", "session"), "session", &[&unix]).unwrap();
        assert!(
            sess.contains("session\t[default=1]\t\t\tpam_permit.so\n"),
            "{sess}"
        );
        assert!(
            sess.contains("session\trequired\tpam_unix.so \n# end"),
            "{sess}"
        );
        // Noninteractive: the session stack too, unless interactive-only.
        let ni = stack(
            &tpl.replace("TY", "session"),
            "session-noninteractive",
            &[&unix],
        )
        .unwrap();
        assert!(ni.contains("session\trequired\tpam_unix.so \n"), "{ni}");
        let only = parse_profile(&format!("{UNIX}Session-Interactive-Only: yes\n"));
        let ni = stack(
            &tpl.replace("TY", "session"),
            "session-noninteractive",
            &[&only],
        )
        .unwrap();
        assert!(!ni.contains("pam_unix"), "{ni}");
        assert!(stack("# no markers\n", "auth", &[&unix]).is_none());
    }
}
