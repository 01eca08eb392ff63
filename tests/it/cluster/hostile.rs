//! Hostile strings in every string field of a profile: `check` rejects the value with a
//! located error, or every rendered file still parses with its real parser and holds the
//! value intact. The fields are taken from the profile's JSON Schema, so a new string key
//! is covered (or this test fails until the base profile below sets it).

use std::collections::BTreeSet;

use proptest::prelude::*;

use super::*;

/// A profile that sets every string key of the schema at least once.
const RICH: &str = r#"[cluster]
name = "rich"
vip = "10.0.0.100"
network = "10.0.0.0/24"
gateway = "10.0.0.1"
dns = ["10.0.0.1"]
ntp = ["pool.ntp.org"]
interface = "eth0"
timezone = "Europe/Berlin"
cluster-cidr = "10.42.0.0/16"
service-cidr = "10.43.0.0/16"
vip-advert-interval = 1.0

[ssh]
authorized-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnJ3tS6gYwA4WkZ2M9cRkQ2yJ0g2lJt8u0mWcB0Yl1R baker@oven"]

[[nodes]]
hostname = "s1"
role = "server"
address = "10.0.0.11"
mac = "dc:a6:32:00:00:01"
labels = { "example.com/disk" = "ssd" }
taints = ["example.com/gpu=true:NoSchedule"]
ssh-authorized-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnJ3tS6gYwA4WkZ2M9cRkQ2yJ0g2lJt8u0mWcB0Yl1R node@s1"]

[[nodes]]
hostname = "a1"
role = "agent"
address = "dhcp"

[storage.nfs]
server = "s1"
path = "/srv/nfs/k8s"
disk = "nfs-ssd"
mount-options = ["nfsvers=4.1", "hard"]
storage-class = "nfs"

[metallb]
addresses = ["10.0.0.200-10.0.0.210"]

[[metallb.pools]]
name = "extra"
addresses = ["10.0.0.220/30"]

[apps.wordpress]
replicas = 2
mysql-node = "s1"
address = "10.0.0.200"
mysql-volume = "10GiB"
wordpress-volume = "5GiB"

[[manifests]]
path = "hello.yaml"

[[charts]]
name = "podinfo"
chart = "podinfo"
repo = "https://stefanprodan.github.io/podinfo"
version = "6.9.0"
namespace = "podinfo"
values-file = "values.yaml"

[image]
board = "qemu-aarch64"
partition-table = "gpt"
boot-size = "512MiB"
system-size = "256MiB"
data-size = "16MiB"
format = "xz"
system-compression = "zstd"
timestamp = "2026-11-01T00:00:00Z"
base-url = "https://example.invalid/images"

[sources]
rootfs = { url = "https://example.invalid/rootfs.tar", sha256 = "c920706346d5ad4e5cd3c7bf1bb09ce71ebe07fec829e513e40f1caf98aed8bb" }
k3s = { path = "k3s", sha256 = "c920706346d5ad4e5cd3c7bf1bb09ce71ebe07fec829e513e40f1caf98aed8bb" }
packages = [{ path = "kernel.deb" }, { url = "https://example.invalid/busybox.deb", sha256 = "c920706346d5ad4e5cd3c7bf1bb09ce71ebe07fec829e513e40f1caf98aed8bb" }]
airgap-images = [{ path = "images.tar" }, { url = "https://example.invalid/images.tar", sha256 = "c920706346d5ad4e5cd3c7bf1bb09ce71ebe07fec829e513e40f1caf98aed8bb" }]
overlays = ["overlay"]

[secrets]
dir = "rich.secrets"
"#;

/// [`RICH`] with its base given as `[sources.debian]` (every key set) instead of a rootfs:
/// the two are exclusive, so the Debian keys get a profile of their own.
fn rich_debian() -> String {
    let debian = r#"
[sources.debian]
mirror = "https://example.invalid/debian"
suite = "trixie"
extra-suites = ["trixie-backports"]
components = ["main", "non-free-firmware"]
packages = ["vim-tiny", "htop"]
kernel = "linux-image-amd64/trixie-backports"
keyring = "archive.gpg"

[secrets]"#;
    let start = RICH.find("rootfs = {").unwrap();
    let end = start + RICH[start..].find('\n').unwrap() + 1;
    format!("{}{}", &RICH[..start], &RICH[end..]).replacen("\n[secrets]", debian, 1)
}

/// [`RICH`] with two load balancers sharing an address, the ingress on a fixed address
/// and WordPress served by host name (exclusive with its own `address`).
fn rich_lb() -> String {
    let lbs = r#"[[nodes]]
hostname = "lb1"
role = "loadbalancer"
address = "10.0.0.5"

[[nodes]]
hostname = "lb2"
role = "loadbalancer"
address = "10.0.0.6"

[loadbalancer]
address = "10.0.0.9"
ingress = true

[ingress]
controller = "traefik"
address = "10.0.0.201"

[storage.nfs]"#;
    RICH.replacen("[storage.nfs]", lbs, 1).replacen(
        "mysql-node = \"s1\"\naddress = \"10.0.0.200\"",
        "mysql-node = \"s1\"\nhost = \"blog.example.com\"",
        1,
    )
}

/// Every string leaf of the rich profiles: (profile text, path segments); the Debian
/// variant adds only its `sources.debian` leaves, the load-balancer variant its own.
fn all_leaves() -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for (text, only) in [
        (RICH.to_owned(), None),
        (rich_debian(), Some(&["sources.debian"][..])),
        (
            rich_lb(),
            Some(
                &[
                    "loadbalancer",
                    "ingress",
                    "apps.wordpress.host",
                    "nodes[2]",
                    "nodes[3]",
                ][..],
            ),
        ),
    ] {
        let doc: toml::Value = toml::from_str(&text).unwrap();
        let mut leaves = Vec::new();
        string_leaves(&doc, &[], &mut leaves);
        out.extend(
            leaves
                .into_iter()
                .filter(|l| only.is_none_or(|o| o.iter().any(|o| dotted(l).starts_with(o))))
                .map(|l| (text.clone(), l)),
        );
    }
    out
}

/// Every string leaf of a TOML value, by path segments (array items as `[i]`).
fn string_leaves(v: &toml::Value, path: &[String], out: &mut Vec<Vec<String>>) {
    let with = |seg: String| {
        let mut p = path.to_vec();
        p.push(seg);
        p
    };
    match v {
        toml::Value::String(_) => out.push(path.to_vec()),
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                string_leaves(x, &with(format!("[{i}]")), out);
            }
        }
        toml::Value::Table(t) => {
            for (k, x) in t {
                string_leaves(x, &with(k.clone()), out);
            }
        }
        _ => {}
    }
}

/// A leaf path as text (`nodes[0].labels.example.com/disk`).
fn dotted(path: &[String]) -> String {
    let mut s = String::new();
    for seg in path {
        if !seg.starts_with('[') && !s.is_empty() {
            s.push('.');
        }
        s.push_str(seg);
    }
    s
}

/// The schema's string properties, as paths with `[]` for array items and `*` for map keys.
fn schema_strings() -> BTreeSet<String> {
    schema_props(&["string"])
}

/// The schema's properties of the given JSON types (same path notation).
fn schema_props(types: &[&str]) -> BTreeSet<String> {
    use serde_json::Value;
    let schema: Value = serde_json::from_str(&bakery_image::app::schema()).unwrap();
    let defs = schema["$defs"].clone();
    let resolve = |v: &Value| -> Value {
        match v.get("$ref").and_then(|r| r.as_str()) {
            Some(r) => defs[r.trim_start_matches("#/$defs/")].clone(),
            None => v.clone(),
        }
    };
    let is_type = |v: &Value| match &v["type"] {
        Value::String(s) => types.contains(&s.as_str()),
        Value::Array(a) => a.iter().any(|x| types.iter().any(|t| x == t)),
        _ => false,
    };
    let mut out = BTreeSet::new();
    let mut stack = vec![(schema.clone(), String::new())];
    while let Some((v, path)) = stack.pop() {
        let v = resolve(&v);
        for alt in ["anyOf", "oneOf"] {
            for x in v[alt].as_array().into_iter().flatten() {
                stack.push((x.clone(), path.clone()));
            }
        }
        if is_type(&v) {
            out.insert(path.clone());
        }
        if let Some(items) = v.get("items") {
            stack.push((items.clone(), format!("{path}[]")));
        }
        for (k, x) in v["properties"].as_object().into_iter().flatten() {
            let p = if path.is_empty() {
                k.clone()
            } else {
                format!("{path}.{k}")
            };
            stack.push((x.clone(), p));
        }
        if let Some(ap) = v.get("additionalProperties").filter(|a| a.is_object()) {
            if types.contains(&"string") {
                out.insert(format!("{path}.*"));
            }
            stack.push((ap.clone(), format!("{path}.*")));
        }
    }
    out
}

/// A leaf path in the schema's notation: indices become `[]`, label keys `*`.
fn generic(path: &[String]) -> String {
    let mut segs: Vec<String> = path
        .iter()
        .map(|s| {
            if s.starts_with('[') {
                "[]".to_owned()
            } else {
                s.clone()
            }
        })
        .collect();
    if segs.len() >= 2 && segs[segs.len() - 2] == "labels" {
        *segs.last_mut().unwrap() = "*".into();
    }
    // Every part of [sources] is one RawSource, checked by one function: a field set in
    // any of them covers all ([sources.debian] is a table of its own).
    if segs.first().is_some_and(|s| s == "sources")
        && segs.len() >= 3
        && !matches!(segs[1].as_str(), "overlays" | "debian")
    {
        return format!("sources.*.{}", segs.last().unwrap());
    }
    dotted(&segs)
}

fn dir_with_inputs() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("hello.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n",
    )
    .unwrap();
    std::fs::write(
        d.path().join("values.yaml"),
        "  # indented first line\nreplicaCount: 2\nui:\n  message: hi\n",
    )
    .unwrap();
    std::fs::create_dir(d.path().join("overlay")).unwrap();
    std::fs::write(d.path().join("archive.gpg"), b"").unwrap();
    d
}

#[test]
fn the_rich_profile_sets_every_string_key_of_the_schema() {
    let d = dir_with_inputs();
    profile::parse(&d.path().join("rich.toml"), RICH).unwrap();
    profile::parse(&d.path().join("rich.toml"), &rich_debian()).unwrap();
    let lb = profile::parse(&d.path().join("rich.toml"), &rich_lb()).unwrap();
    assert!(
        lb.loadbalancer
            .as_ref()
            .is_some_and(|l| l.shared && l.ingress)
    );
    let covered: BTreeSet<String> = all_leaves().iter().map(|(_, l)| generic(l)).collect();
    let schema_key = |k: String| {
        let segs: Vec<String> = k.split('.').map(str::to_owned).collect();
        generic(&segs)
    };
    let missing: Vec<_> = schema_strings()
        .into_iter()
        .map(schema_key)
        .filter(|k| !k.is_empty() && !covered.contains(k))
        .collect();
    assert!(
        missing.is_empty(),
        "string keys of the schema the property test misses: {missing:?}"
    );
}

/// Replace the string at `path` of a TOML document (the map key itself if `key_instead`).
fn set(doc: &mut toml::Value, path: &[String], value: &str, key_instead: bool) {
    let mut cur = doc;
    for (n, seg) in path.iter().enumerate() {
        let last = n == path.len() - 1;
        if let Some(i) = seg.strip_prefix('[') {
            let i: usize = i.trim_end_matches(']').parse().unwrap();
            cur = &mut cur.as_array_mut().unwrap()[i];
        } else if last && key_instead {
            let t = cur.as_table_mut().unwrap();
            let v = t.remove(seg).unwrap();
            t.insert(value.to_owned(), v);
            return;
        } else {
            cur = cur.as_table_mut().unwrap().get_mut(seg).unwrap();
        }
    }
    *cur = toml::Value::String(value.to_owned());
}

/// Every rendered file parses with its format's parser; returns the values found in them.
fn check_rendered(p: &Profile) -> String {
    let s = Secrets::generate_with_rng(5, p).unwrap();
    let mut seen = String::new();
    for (node, files) in render_all(p, &s) {
        for (path, (_, bytes)) in files {
            let text =
                String::from_utf8(bytes).unwrap_or_else(|_| panic!("{node}:{path} is not UTF-8"));
            let what = format!("{node}:{path}");
            if path.ends_with(".yaml") {
                for doc in yaml_docs(&text, &what) {
                    yaml_strings(&doc, &mut seen);
                }
            } else if path.ends_with("node.env") {
                // Sourced by sh: every line a comment or KEY='value', values unescaped here.
                for l in text.lines().filter(|l| !l.starts_with('#')) {
                    let (k, v) = l.split_once('=').unwrap_or_else(|| panic!("{what}: {l:?}"));
                    assert!(
                        k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'),
                        "{what}: {l:?}"
                    );
                    assert!(v.starts_with('\'') && v.ends_with('\''), "{what}: {l:?}");
                    seen.push_str(&v[1..v.len() - 1].replace(r"'\''", "'"));
                    seen.push('\n');
                }
            } else if path.ends_with("haproxy/bakery.cfg") {
                haproxy_test(&what, &text);
                for w in text.split_whitespace() {
                    seen.push_str(w);
                    seen.push('\n');
                }
            } else if path.ends_with("keepalived.conf") {
                keepalived_test(&what, &text);
                for w in text.split_whitespace() {
                    seen.push_str(w.trim_matches('"'));
                    seen.push('\n');
                }
            } else if path.ends_with(".network")
                || path.ends_with(".conf") && path.contains("systemd")
            {
                // systemd INI: comments, [Section] headers, Key=value without control characters.
                for l in text
                    .lines()
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                {
                    assert!(
                        (l.starts_with('[') && l.ends_with(']'))
                            || l.split_once('=')
                                .is_some_and(|(k, _)| k.bytes().all(|b| b.is_ascii_alphanumeric())),
                        "{what}: {l:?}"
                    );
                    assert!(!l.chars().any(char::is_control), "{what}: {l:?}");
                    if let Some((_, v)) = l.split_once('=') {
                        for w in v.split(' ') {
                            seen.push_str(w);
                            seen.push('\n');
                        }
                    }
                }
            } else if path.ends_with("etc/exports") {
                // The share, the NFSv4 pseudo root and the share under it: three lines,
                // each exactly `<path> <client>(<options>)`.
                let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
                let path = &p.nfs.as_ref().unwrap().path;
                let v4 = "/run/bakery/nfs-v4root";
                let want = [path.clone(), v4.to_owned(), format!("{v4}{path}")];
                let got: Vec<&str> = lines
                    .iter()
                    .map(|l| l.split_whitespace().next().unwrap_or(""))
                    .collect();
                assert_eq!(got, want, "{what}: export lines {text:?}");
                for l in &lines {
                    assert_eq!(l.split_whitespace().count(), 2, "{what}: {text:?}");
                }
            } else if path.ends_with("authorized_keys") {
                for l in text.lines() {
                    ssh_key::PublicKey::from_openssh(l)
                        .unwrap_or_else(|e| panic!("{what}: {l:?}: {e}"));
                }
                assert_eq!(
                    text.lines().count(),
                    p.ssh_keys.len() + p.node(&node).unwrap().ssh_keys.len(),
                    "{what}: one line per key"
                );
                seen.push_str(&text);
            } else {
                seen.push_str(&text);
            }
        }
    }
    seen
}

/// `haproxy -c` accepts the file (binding its ports is not tried in check mode).
pub(super) fn haproxy_test(what: &str, text: &str) {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*HAVE.get_or_init(|| have(&["haproxy"])) {
        return;
    }
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    let o = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(f.path())
        .output()
        .unwrap();
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        o.status.success(),
        "{what}: haproxy -c rejects it:\n{out}\n{text}"
    );
    assert!(
        !out.contains("[WARNING]"),
        "{what}: haproxy -c warns:\n{out}\n{text}"
    );
}

/// `keepalived --config-test` accepts the file; warnings that an interface does not exist
/// on this machine are expected (the node's interfaces are not the test host's).
pub(super) fn keepalived_test(what: &str, text: &str) {
    static HAVE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if !*HAVE.get_or_init(|| have(&["keepalived"])) {
        return;
    }
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), text).unwrap();
    let o = Command::new("keepalived")
        .args(["--config-test", "-f"])
        .arg(f.path())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    // Syntax problems; not the host-specific ones (missing interfaces, scripts).
    let problems: Vec<&str> = err
        .lines()
        .filter(|l| {
            let l = l.to_ascii_lowercase();
            [
                "unknown keyword",
                "invalid",
                "error",
                "missing",
                "expected",
                "unmatched",
            ]
            .iter()
            .any(|w| l.contains(w))
        })
        .collect();
    assert!(
        problems.is_empty(),
        "{what}: keepalived rejects it: {problems:?}\n{text}"
    );
}

fn yaml_strings(y: &yaml_rust2::Yaml, out: &mut String) {
    use yaml_rust2::Yaml;
    match y {
        Yaml::String(s) => {
            out.push_str(s);
            out.push('\n');
        }
        Yaml::Array(a) => a.iter().for_each(|x| yaml_strings(x, out)),
        Yaml::Hash(h) => h.iter().for_each(|(k, v)| {
            yaml_strings(k, out);
            yaml_strings(v, out);
        }),
        _ => {}
    }
}

/// Fields whose value must appear, unchanged, in some rendered file when accepted.
fn lands_in_node_files(path: &str) -> bool {
    [
        "cluster.interface",
        "nodes[0].labels",
        "cluster.timezone",
        "cluster.ntp",
        "storage.nfs.path",
        "storage.nfs.disk",
        "storage.nfs.mount-options",
        "charts[0].chart",
        "charts[0].repo",
        "charts[0].version",
        "nodes[0].taints",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

fn hostile() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,20}",
        "[a-z0-9./_-]{1,12}[\n\r\t\u{0}\u{1b}#;{}\"'`$\\\\ ,=:]{1,3}[ -~\n]{0,12}",
        Just("eth0\n[Match]\nName=*".to_owned()),
        Just("/srv/nfs\n/ *(rw,no_root_squash,insecure)".to_owned()),
        Just("x\"\ny: 1".to_owned()),
        Just("} virtual_server 1 {".to_owned()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(160))]
    #[test]
    fn hostile_strings_are_rejected_or_survive_rendering(field in any::<prop::sample::Index>(), value in hostile(), key_instead: bool) {
        let d = dir_with_inputs();
        let leaves = all_leaves();
        let (text, segs) = field.get(&leaves).clone();
        let mut doc: toml::Value = toml::from_str(&text).unwrap();
        let path = dotted(&segs);
        let label = path.contains(".labels.");
        set(&mut doc, &segs, &value, key_instead && label);
        let text = toml::to_string(&doc).unwrap();
        match profile::parse(&d.path().join("rich.toml"), &text) {
            Err(diags) => {
                prop_assert!(!diags.items.is_empty());
                for i in &diags.items {
                    prop_assert!(i.span.is_some(), "{path}: unlocated: {}", i.message);
                    prop_assert!(i.hint.is_some(), "{path}: no hint: {}", i.message);
                }
            }
            Ok(p) => {
                let seen = check_rendered(&p);
                if lands_in_node_files(&path) || label {
                    prop_assert!(seen.contains(&value), "{path} = {value:?} accepted but not found intact in the node files");
                }
            }
        }
    }
}

#[test]
fn keepalived_accepts_configs_with_the_widest_accepted_words() {
    let d = dir_with_inputs();
    let text = RICH.replace("interface = \"eth0\"", "interface = \"br-lan_0.1\"");
    let p = profile::parse(&d.path().join("rich.toml"), &text).unwrap();
    let s = Secrets::generate_with_rng(5, &p).unwrap();
    let r = render_all(&p, &s);
    let conf = &r["s1"]["bakery/etc/keepalived/keepalived.conf"].1;
    keepalived_test("s1", std::str::from_utf8(conf).unwrap());
}

/// Every number key of the schema at its extremes: a located error or a profile that
/// plans and renders (no overflow, no NaN in a file).
#[test]
fn number_fields_at_their_extremes() {
    let d = dir_with_inputs();
    let numbers = schema_props(&["integer", "number"]);
    assert!(numbers.contains("apps.wordpress.replicas"), "{numbers:?}");
    for key in &numbers {
        let segs: Vec<String> = key.split('.').map(str::to_owned).collect();
        for v in [
            toml::Value::Integer(0),
            toml::Value::Integer(-1),
            toml::Value::Integer(i64::from(u32::MAX)),
            toml::Value::Integer(i64::from(i32::MAX) + 1),
            toml::Value::Integer(i64::MAX),
            toml::Value::Float(f64::NAN),
            toml::Value::Float(f64::INFINITY),
            toml::Value::Float(1e-300),
            toml::Value::Float(1e300),
        ] {
            let mut doc: toml::Value = toml::from_str(RICH).unwrap();
            let mut cur = &mut doc;
            for s in &segs[..segs.len() - 1] {
                cur = cur.as_table_mut().unwrap().get_mut(s).unwrap();
            }
            cur.as_table_mut()
                .unwrap()
                .insert(segs.last().unwrap().clone(), v.clone());
            let text = toml::to_string(&doc).unwrap();
            match profile::parse(&d.path().join("rich.toml"), &text) {
                Err(e) => assert!(
                    e.items
                        .iter()
                        .all(|i| i.span.is_some() && i.key.to_string() == *key),
                    "{key} = {v}: {}",
                    e.render()
                ),
                Ok(p) => {
                    let seen = check_rendered(&p);
                    assert!(
                        !seen.contains("NaN") && !seen.contains("inf"),
                        "{key} = {v}"
                    );
                    // Kubernetes counts replicas in an int32.
                    let replicas = p.wordpress.as_ref().map_or(1, |w| w.replicas);
                    assert!(i32::try_from(replicas).is_ok(), "{key} = {v}");
                }
            }
        }
    }
}
