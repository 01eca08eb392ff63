//! Profile values to rendered node files: the first byte picks a string field of a rich
//! profile, the rest is its value. Either validation rejects it, or every node's files
//! render, every YAML file parses, `/etc/exports` keeps its three export lines and
//! `authorized_keys` one line per key. Run by `ci/fuzz`.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use bakery_image::cluster::{self, Secrets};
use bakery_image::{plan, profile};
use libfuzzer_sys::fuzz_target;

const TEMPLATE: &str = r#"[cluster]
name = "fuzz"
vip = "10.0.0.100"
network = "10.0.0.0/24"
gateway = "10.0.0.1"
ntp = [@0@]
interface = @1@
timezone = @2@

[ssh]
authorized-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnJ3tS6gYwA4WkZ2M9cRkQ2yJ0g2lJt8u0mWcB0Yl1R " + @3@]

[[nodes]]
hostname = "s1"
role = "server"
address = "10.0.0.11"
labels = { @4@ = @5@ }
taints = [@6@]

[[nodes]]
hostname = "a1"
role = "agent"
address = "dhcp"

[storage.nfs]
server = "s1"
path = @7@
disk = @8@
mount-options = [@9@]

[metallb]
addresses = ["10.0.0.200-10.0.0.210"]

[apps.wordpress]
address = "10.0.0.200"

[[charts]]
name = "podinfo"
chart = @10@
repo = @11@
version = @12@

[image]
board = "qemu-aarch64"
base-url = @13@
"#;

const DEFAULTS: [&str; 14] = [
    "pool.ntp.org",
    "eth0",
    "Europe/Berlin",
    "me@host",
    "example.com/disk",
    "ssd",
    "example.com/gpu=true:NoSchedule",
    "/srv/nfs/k8s",
    "nfs-ssd",
    "hard",
    "podinfo",
    "https://stefanprodan.github.io/podinfo",
    "6.9.0",
    "https://example.invalid/images",
];

/// A TOML basic string holding `s` exactly.
fn toml_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if c.is_control() => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

fn profile_text(field: usize, value: &str) -> String {
    let mut t = TEMPLATE.to_owned();
    for (i, d) in DEFAULTS.iter().enumerate() {
        let v = if i == field { value } else { d };
        t = t.replace(&format!("@{i}@"), &toml_str(v));
    }
    // TOML has no string concatenation: join the key and its comment in one string.
    t.replace("\" + \"", "")
}

fn secrets(p: &profile::Profile) -> &'static Secrets {
    static S: OnceLock<Secrets> = OnceLock::new();
    S.get_or_init(|| Secrets::generate_with_rng(1, p).expect("secrets"))
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let field = usize::from(pick) % DEFAULTS.len();
    let value = String::from_utf8_lossy(rest);
    let text = profile_text(field, &value);
    let Ok(p) = profile::parse(Path::new("fuzz.toml"), &text) else {
        return;
    };
    let pl = plan::plan(&p);
    let s = secrets(&p);
    for n in &p.nodes {
        let tree = cluster::render_node(&p, &pl, s, n.name.as_str(), 0)
            .unwrap_or_else(|e| panic!("a valid profile fails to render: {e:#}"));
        for (path, e) in tree.iter() {
            let bakery_image::stage::tree::Kind::File(d) = &e.kind else {
                continue;
            };
            let bytes = d.read().expect("rendered bytes");
            let text = String::from_utf8(bytes).expect("rendered files are UTF-8");
            if path.ends_with(".yaml") {
                yaml_rust2::YamlLoader::load_from_str(&text)
                    .unwrap_or_else(|e| panic!("{path} is not YAML: {e}\n{text}"));
            } else if path.ends_with("etc/exports") {
                // The share, the NFSv4 pseudo root and the share under it: three lines of
                // exactly two words each.
                let lines: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
                assert_eq!(lines.len(), 3, "{path}: {text:?}");
                assert!(
                    lines.iter().all(|l| l.split_whitespace().count() == 2),
                    "{path}: {text:?}"
                );
            } else if path.ends_with("authorized_keys") {
                assert_eq!(text.lines().count(), 1, "{path}: {text:?}");
            } else if path.ends_with(".network") || path.ends_with("keepalived.conf") {
                // Line-based formats: the one profile word they take must be one word.
                let iface = &p.cluster.interface;
                assert!(
                    !iface.is_empty()
                        && !iface.contains(|c: char| c.is_whitespace() || c.is_control()),
                    "{path}: interface {iface:?} accepted"
                );
                assert!(
                    text.lines().any(|l| l.trim_end().ends_with(iface.as_str())),
                    "{path}"
                );
            }
        }
    }
});
