//! The grammars of the files profile values land in, as checks on the values.
//!
//! A value that reaches a node file is either checked here against the grammar of its
//! destination (a systemd-networkd or keepalived word, an `/etc/exports` path, a kubelet
//! `--node-labels` item, an OpenSSH key line) or escaped for it by the one escaper of that
//! format (`cluster::yaml::q` for YAML, `cluster::yaml::sh` for `node.env`). Words that go
//! into INI, keepalived or exports syntax have no escaping there, so they are checked.

use crate::profile::types::Invalid;

/// The first character of `s` that is a control character (newline, tab, NUL, DEL...).
fn control(s: &str) -> Option<char> {
    s.chars().find(|c| c.is_control())
}

/// Text that lands in a YAML or JSON string (escaped there) or a comment: anything but
/// control characters, which no line-based format survives.
pub fn text(s: &str, what: &str) -> Result<(), Invalid> {
    match control(s) {
        Some(c) => Err(
            Invalid::new(format!("{what} {s:?} contains the control character {c:?}"))
                .hint("remove line breaks, tabs and other control characters"),
        ),
        None => Ok(()),
    }
}

/// A network interface name by the kernel's rules (`dev_valid_name`: 1-15 bytes, not "."
/// or "..", no '/', ':' or white space), narrowed to the characters that mean nothing in
/// systemd-networkd's `Name=` (globs, lists) and keepalived's syntax (comments, braces).
pub fn interface(s: &str) -> Result<(), Invalid> {
    let hint = "use the kernel's name of the interface, e.g. \"eth0\" or \"end0\" \
                (1-15 letters, digits, '.', '-' or '_')";
    let bad = |why: String| Err(Invalid::new(format!("interface {s:?} {why}")).hint(hint));
    if s.is_empty() || s.len() > 15 {
        return bad("is not 1-15 bytes long".into());
    }
    if s == "." || s == ".." {
        return bad("is not a valid interface name".into());
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
    {
        return bad(format!("contains {c:?}"));
    }
    Ok(())
}

/// A tz database name ("Europe/Berlin", "Etc/GMT+1", "UTC"), by the database's own rules
/// for names: '/'-separated components of ASCII letters, digits, '.', '-', '_' and '+',
/// none empty, "." or "..", none starting with '-'. Whether the base has the zone is
/// checked when the image is composed.
pub fn timezone(s: &str) -> Result<(), Invalid> {
    let hint = "use a tz database name such as \"Europe/Berlin\" or \"Etc/UTC\"";
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.split('/').all(|part| {
            !part.is_empty()
                && part != "."
                && part != ".."
                && !part.starts_with('-')
                && part
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '+'))
        });
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(format!("{s:?} is not a time zone name")).hint(hint))
    }
}

/// A DNS host name (RFC 1123 labels separated by dots, at most 253 characters) or an IP
/// address: NTP servers, an external NFS server.
pub fn host(s: &str, what: &str) -> Result<(), Invalid> {
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Ok(());
    }
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    let name = s.strip_suffix('.').unwrap_or(s);
    if name.len() <= 253 && name.split('.').all(label) {
        Ok(())
    } else {
        Err(
            Invalid::new(format!("{what} {s:?} is not a host name or IP address")).hint(
                "give a host name such as \"pool.ntp.org\" or an address such as \"10.0.0.1\"",
            ),
        )
    }
}

/// An Ingress rule's host: a lowercase RFC 1123 DNS subdomain (no IP address, no port),
/// as Kubernetes validates `spec.rules[].host`; a leading "*." wildcard is allowed.
pub fn ingress_host(s: &str) -> Result<(), Invalid> {
    let hint = "give a DNS name such as \"blog.example.com\" (lowercase, no scheme, port or path)";
    let name = s.strip_prefix("*.").unwrap_or(s);
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    if s.parse::<std::net::IpAddr>().is_ok() {
        return Err(Invalid::new(format!("host {s:?} is an IP address"))
            .hint("an Ingress matches host names; clients reach the address through a DNS name"));
    }
    if s.len() <= 253 && name.split('.').all(label) {
        Ok(())
    } else {
        Err(Invalid::new(format!("host {s:?} is not a DNS name")).hint(hint))
    }
}

/// An NFS export path as `/etc/exports` and the node runtime take it: absolute, normal
/// (no empty, "." or ".." components, no trailing '/'), not "/" itself, and only
/// characters exports(5) gives no meaning (white space, quotes, '#', '(' would).
pub fn export_path(s: &str) -> Result<(), Invalid> {
    let hint =
        "use an absolute path of letters, digits and '/', '.', '-', '_', e.g. \"/srv/nfs/k8s\"";
    let bad = |why: &str| Err(Invalid::new(format!("export path {s:?} {why}")).hint(hint));
    if !s.starts_with('/') {
        return bad("is not absolute");
    }
    if s == "/" {
        return Err(
            Invalid::new("export path \"/\" would export the node's whole root")
                .hint("export a directory of its own, e.g. \"/srv/nfs/k8s\""),
        );
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '+')))
    {
        return bad(&format!("contains {c:?}"));
    }
    if s[1..]
        .split('/')
        .any(|part| part.is_empty() || part == "." || part == "..")
    {
        return bad("is not a normal path (empty, \".\" or \"..\" components, or a trailing '/')");
    }
    Ok(())
}

/// The name part of a Kubernetes qualified name (label keys, taint keys): 1-63
/// characters, alphanumeric at both ends, '-', '_' and '.' inside.
fn k8s_name(s: &str) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

/// A DNS subdomain (RFC 1123, lowercase), the prefix of a qualified name.
fn dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        })
}

/// A Kubernetes qualified name `[prefix/]name` (apimachinery `IsQualifiedName`): label
/// and taint keys.
pub fn qualified_name(s: &str) -> bool {
    match s.split_once('/') {
        Some((prefix, name)) => dns_subdomain(prefix) && k8s_name(name),
        None => k8s_name(s),
    }
}

/// A Kubernetes label key the kubelet accepts in `--node-labels`.
pub fn label_key(s: &str) -> Result<(), Invalid> {
    if !qualified_name(s) {
        return Err(Invalid::new(format!("{s:?} is not a Kubernetes label key")).hint(
            "a key is [prefix/]name: name 1-63 letters, digits, '-', '_', '.', alphanumeric at both ends; prefix a DNS subdomain",
        ));
    }
    // The kubelet refuses to start with labels in the kubernetes.io and k8s.io namespaces
    // other than its own (k8s.io/kubelet `IsKubeletLabel`).
    let ns = s.split_once('/').map_or("", |(p, _)| p);
    let in_ns = |d: &str| ns == d || ns.ends_with(&format!(".{d}"));
    const KUBELET_LABELS: [&str; 11] = [
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
        "topology.kubernetes.io/region",
        "failure-domain.beta.kubernetes.io/zone",
        "failure-domain.beta.kubernetes.io/region",
        "beta.kubernetes.io/instance-type",
        "node.kubernetes.io/instance-type",
        "kubernetes.io/os",
        "kubernetes.io/arch",
        "beta.kubernetes.io/os",
        "beta.kubernetes.io/arch",
    ];
    if (in_ns("kubernetes.io") || in_ns("k8s.io"))
        && !KUBELET_LABELS.contains(&s)
        && !in_ns("kubelet.kubernetes.io")
        && !in_ns("node.kubernetes.io")
    {
        return Err(Invalid::new(format!(
            "label {s:?} is in the kubernetes.io namespace, which the kubelet may not set"
        ))
        .hint("the kubelet refuses such labels at start; use your own prefix, e.g. \"example.com/role\", or node.kubernetes.io/..."));
    }
    Ok(())
}

/// A Kubernetes label value: empty, or 1-63 characters as a label name.
pub fn is_label_value(s: &str) -> bool {
    s.is_empty() || k8s_name(s)
}

/// A label value, with the message a user sees.
pub fn label_value(s: &str) -> Result<(), Invalid> {
    if is_label_value(s) {
        Ok(())
    } else {
        Err(Invalid::new(format!("{s:?} is not a Kubernetes label value")).hint(
            "a value is empty or 1-63 letters, digits, '-', '_', '.', alphanumeric at both ends",
        ))
    }
}

/// An http(s) URL without white space, control characters or quotes.
pub fn url(s: &str, what: &str, schemes: &[&str]) -> Result<(), Invalid> {
    let scheme_ok = schemes
        .iter()
        .any(|sc| s.strip_prefix(sc).is_some_and(|rest| rest.len() > 1));
    let chars_ok = s
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '"' | '\'' | '<' | '>' | '\\' | '`'));
    if scheme_ok && chars_ok {
        Ok(())
    } else {
        Err(
            Invalid::new(format!("{what} {s:?} is not a URL")).hint(format!(
                "write a URL starting with {} and without spaces or quotes (percent-encode them)",
                schemes.join(" or ")
            )),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interfaces() {
        for ok in ["eth0", "end0", "enp1s0", "bond0.100", "br-lan", "wlan_0"] {
            interface(ok).unwrap();
        }
        for bad in [
            "",
            ".",
            "..",
            "eth0\n[Match]",
            "a b",
            "eth/0",
            "e:1",
            "x{",
            "#",
            &"e".repeat(16),
        ] {
            assert!(interface(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timezones() {
        for ok in [
            "Etc/UTC",
            "UTC",
            "Europe/Berlin",
            "America/Argentina/Buenos_Aires",
            "Etc/GMT+1",
            "Etc/GMT-14",
        ] {
            timezone(ok).unwrap();
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "Europe//Berlin",
            "Europe/Berlin\n",
            "Eu rope",
            "-x",
            "a/./b",
            "Europe/Berlin\x07",
        ] {
            assert!(timezone(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn exports() {
        export_path("/srv/nfs/k8s").unwrap();
        for bad in [
            "srv",
            "/",
            "/srv/\n/ *(rw)",
            "/srv nfs",
            "/srv/../etc",
            "/srv/",
            "/srv//x",
            "/a#b",
            "/a\"b",
        ] {
            assert!(export_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn labels_and_hosts() {
        label_key("example.com/role").unwrap();
        label_key("node.kubernetes.io/pool").unwrap();
        label_key("kubernetes.io/arch").unwrap();
        for bad in [
            "",
            "a b",
            "a=b",
            "-a",
            "Ex.com/x",
            "a/b/c",
            "node-role.kubernetes.io/worker",
            &"a".repeat(64),
        ] {
            assert!(label_key(bad).is_err(), "{bad:?}");
        }
        label_value("").unwrap();
        label_value("v1.2_x").unwrap();
        for bad in ["a,b=c", "a b", "-a", "a\n", &"a".repeat(64)] {
            assert!(label_value(bad).is_err(), "{bad:?}");
        }
        host("pool.ntp.org", "NTP server").unwrap();
        host("10.0.0.1", "NTP server").unwrap();
        host("fd00::1", "NTP server").unwrap();
        for bad in ["", "a b", "a\nb", "a..b", "-a.b", "a#b"] {
            assert!(host(bad, "NTP server").is_err(), "{bad:?}");
        }
        url("https://charts.example/x", "repo", &["https://", "http://"]).unwrap();
        assert!(url("https://a b", "repo", &["https://"]).is_err());
        assert!(url("https://", "repo", &["https://"]).is_err());
        assert!(text("a\nb", "x").is_err());
    }
}
