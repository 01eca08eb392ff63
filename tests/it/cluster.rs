//! Cluster assembly: rendered `bakery/` files of every node of the example profiles,
//! checked against snapshots, the plan, YAML parsers, kubernetes-validate and openssl;
//! the secrets state (modes, rebuilds, no leaks).

mod contract;
mod hostile;
mod loadbalancer;
mod render;
mod secrets;
mod tools;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::need::have;

use bakery_image::cluster::{self, Secrets};
use bakery_image::plan;
use bakery_image::profile::{self, Profile, Role};
use bakery_image::stage::{Kind, Tree};

const PROFILES: [&str; 3] = ["magi", "bakery", "homelab"];
const BUILD_TIME: i64 = 1_767_225_600;

fn load(name: &str) -> Profile {
    profile::load(Path::new(&format!("profiles/{name}.toml"))).expect("example profile loads")
}

fn parse(text: &str) -> Profile {
    profile::parse(Path::new("profiles/test.toml"), text).expect("test profile parses")
}

/// Every node's rendered files: node -> path -> (mode, bytes).
type Rendered = BTreeMap<String, BTreeMap<String, (u32, Vec<u8>)>>;

fn render_all(p: &Profile, s: &Secrets) -> Rendered {
    let pl = plan::plan(p);
    p.nodes
        .iter()
        .map(|n| {
            let t = cluster::render_node(p, &pl, s, n.name.as_str(), BUILD_TIME).unwrap();
            (n.name.to_string(), files(&t))
        })
        .collect()
}

fn files(t: &Tree) -> BTreeMap<String, (u32, Vec<u8>)> {
    t.iter()
        .filter_map(|(p, e)| match &e.kind {
            Kind::File(d) => {
                assert_eq!(e.mtime, BUILD_TIME, "{p} carries the build time");
                Some((p.to_owned(), (e.mode, d.read().unwrap())))
            }
            _ => None,
        })
        .collect()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Secret values and their base64 forms.
fn needles(s: &Secrets) -> Vec<String> {
    let mut v = s.secret_values();
    v.extend(s.secret_values().iter().map(|x| b64(x)));
    v
}

fn redact(text: &str, s: &Secrets) -> String {
    let mut out = String::new();
    let mut in_pem = false;
    for l in text.lines() {
        if l.starts_with("-----BEGIN") {
            in_pem = true;
            out.push_str(l);
            out.push_str("\n[pem body redacted]\n");
            continue;
        }
        if l.starts_with("-----END") {
            in_pem = false;
        }
        if !in_pem {
            out.push_str(l);
            out.push('\n');
        }
    }
    let mut needles = needles(s);
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for n in needles {
        out = out.replace(&n, "[secret]");
    }
    out.replace(&s.ca_hash().unwrap(), "[ca-hash]")
}

fn dump(node: &BTreeMap<String, (u32, Vec<u8>)>, s: &Secrets) -> String {
    let mut out = String::new();
    for (path, (mode, bytes)) in node {
        out.push_str(&format!("==> {path} ({mode:o})\n"));
        out.push_str(&redact(&String::from_utf8_lossy(bytes), s));
    }
    out
}

fn yaml_docs(text: &str, what: &str) -> Vec<yaml_rust2::Yaml> {
    yaml_rust2::YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// HelmChart spec fields (docs.k3s.io/add-ons/helm), IPAddressPool and L2Advertisement
/// spec fields (metallb.io/v1beta1 API reference).
fn documented(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "HelmChart" => &[
            "chart",
            "chartContent",
            "repo",
            "version",
            "targetNamespace",
            "createNamespace",
            "valuesContent",
            "valuesSecrets",
            "set",
            "repoCA",
            "repoCAConfigMap",
            "plainHTTP",
            "insecureSkipTLSVerify",
            "helmVersion",
            "bootstrap",
            "jobImage",
            "podSecurityContext",
            "securityContext",
            "backOffLimit",
            "timeout",
            "failurePolicy",
            "authSecret",
            "authPassCredentials",
            "dockerRegistrySecret",
        ],
        "IPAddressPool" => &[
            "addresses",
            "autoAssign",
            "avoidBuggyIPs",
            "serviceAllocation",
        ],
        "L2Advertisement" => &[
            "ipAddressPools",
            "ipAddressPoolSelectors",
            "nodeSelectors",
            "interfaces",
        ],
        _ => return None,
    })
}

fn run(argv: &[&str], cwd: &Path) -> String {
    let o = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        o.status.success(),
        "{argv:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}
