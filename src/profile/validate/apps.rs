//! `[apps.wordpress]`, `[[manifests]]` and `[[charts]]`: what the servers deploy on first
//! boot, with the files the profile names checked to exist.

use std::path::{Path, PathBuf};

use super::{Kind, Unique, existing, grammar, ipv4};
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::{Chart, Ingress, IngressController, Node, Pool, Wordpress};
use crate::profile::raw::{RawProfile, RawWordpress};
use crate::profile::types::{ByteSize, Invalid, Label, MIB};

pub(super) fn wordpress(
    raw: &RawWordpress,
    p: &RawProfile,
    nodes: &[(usize, Node)],
    pools: &[Pool],
    ingress: Option<&Ingress>,
    c: &mut Collector<'_>,
) -> Option<Wordpress> {
    let key = KeyPath::root().key("apps").key("wordpress");
    if p.storage.nfs.is_none() {
        c.error(
            &key,
            "WordPress needs storage, and the profile has none",
            "add a [storage.nfs] table: MySQL and WordPress keep their data on NFS",
        );
    }
    let replicas = raw.replicas.unwrap_or(1);
    if replicas == 0 {
        c.error(
            &key.key("replicas"),
            "replicas = 0 deploys nothing",
            "use 1 or more, or remove [apps.wordpress]",
        );
    } else if i32::try_from(replicas).is_err() {
        c.error(
            &key.key("replicas"),
            format!("replicas = {replicas} is more than Kubernetes accepts"),
            "a Deployment's replicas is a 32-bit signed number: at most 2147483647",
        );
    }
    let mysql_node = match &raw.mysql_node {
        None => None,
        Some(m) => match nodes.iter().find(|(_, n)| n.name.as_str() == m) {
            Some((_, n)) => Some(n.name.clone()),
            None => {
                c.error(
                    &key.key("mysql-node"),
                    format!("mysql-node \"{m}\" is not a node of this cluster"),
                    "name one of the [[nodes]] hostnames, or remove mysql-node",
                );
                None
            }
        },
    };
    let host = raw.host.clone();
    if let Some(h) = &host {
        c.check(&key.key("host"), grammar::ingress_host(h));
        if ingress.is_some_and(|i| i.controller == IngressController::None) {
            c.error(
                &key.key("host"),
                "apps.wordpress.host needs an ingress controller, and [ingress] controller = \"none\"",
                "use controller = \"traefik\", or remove host (WordPress then gets a LoadBalancer address)",
            );
        }
        if raw.address.is_some() {
            c.error(
                &key.key("address"),
                "apps.wordpress.address does nothing with host: WordPress is served through the ingress",
                "remove address (set [ingress] address to fix the ingress controller's), or remove host",
            );
        }
    }
    let address = raw
        .address
        .as_ref()
        .and_then(|a| c.check(&key.key("address"), ipv4(a, "address")));
    if host.is_some() {
        // Served through the ingress: no LoadBalancer Service of its own.
    } else if let Some(a) = address {
        if !pools.iter().any(|pl| pl.contains(a)) {
            c.error(
                &key.key("address"),
                format!("WordPress address {a} is not in any MetalLB pool"),
                "pick an address from [metallb] addresses",
            );
        }
    } else if p.metallb.is_none() {
        c.error(
            &key,
            "WordPress is published as a LoadBalancer service, but there is no [metallb] pool",
            "add [metallb] addresses = [\"...\"]",
        );
    }
    let size = |k: &str, v: &Option<String>, default: &str, c: &mut Collector<'_>| {
        let s = v.as_deref().unwrap_or(default);
        c.check(&key.key(k), ByteSize::parse(s)).filter(|b| {
            let ok = b.bytes() >= MIB;
            if !ok {
                c.error(
                    &key.key(k),
                    format!("volume size {s} is too small"),
                    "use at least 1MiB, e.g. \"5GiB\"",
                );
            }
            ok
        })
    };
    let mysql_volume = size("mysql-volume", &raw.mysql_volume, "10GiB", c);
    let wordpress_volume = size("wordpress-volume", &raw.wordpress_volume, "5GiB", c);
    Some(Wordpress {
        replicas,
        mysql_node,
        address,
        host,
        mysql_volume: mysql_volume?,
        wordpress_volume: wordpress_volume?,
    })
}

/// Add-on names K3s itself uses (docs.k3s.io packaged components): a user file of that
/// name would replace the packaged component.
const PACKAGED: [&str; 6] = [
    "coredns",
    "traefik",
    "local-storage",
    "metrics-server",
    "rolebindings",
    "ccm",
];

pub(super) fn manifests(raw: &RawProfile, dir: &Path, c: &mut Collector<'_>) -> Vec<PathBuf> {
    let key = KeyPath::root().key("manifests");
    let mut addons = Unique::new(
        "add-on name",
        "K3s names each add-on after its file name up to the first dot: rename one",
    );
    raw.manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let k = key.index(i).key("path");
            if !(m.path.ends_with(".yaml") || m.path.ends_with(".yml") || m.path.ends_with(".json"))
            {
                c.error(
                    &k,
                    format!("manifest \"{}\" is not .yaml, .yml or .json", m.path),
                    "K3s's auto-deploy directory only reads those extensions",
                );
            }
            let base = Path::new(&m.path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            addon_name(&base, &k, c)
                .map(|a| addons.insert(c, &k, a.clone(), format_args!("\"{a}\"")));
            existing(dir, &m.path, &k, "manifest", Kind::File, c)
        })
        .collect()
}

/// The K3s add-on a manifest file becomes: its name up to the first dot, which must be
/// an RFC 1123 label that is neither one of ours (`bakery-*`) nor a packaged component.
fn addon_name(base: &str, key: &KeyPath, c: &mut Collector<'_>) -> Option<String> {
    let addon = base.split('.').next().unwrap_or_default();
    if addon.starts_with("bakery-") || PACKAGED.contains(&addon) {
        c.error(
            key,
            format!(
                "manifest \"{base}\" would replace the add-on \"{addon}\" of bakery-image or K3s \
                 (K3s names each add-on after its file)"
            ),
            "rename the file",
        );
        return None;
    }
    let label = Label::parse(addon).map_err(|e| {
        Invalid::new(format!(
            "manifest \"{base}\" names the add-on \"{addon}\", which is not an RFC 1123 label"
        ))
        .hint(e.hint.unwrap_or_default())
    });
    c.check(key, label)?;
    if let Some(bad) = base
        .chars()
        .find(|ch| !(ch.is_ascii_alphanumeric() || matches!(ch, '.' | '-' | '_')))
    {
        c.error(
            key,
            format!("manifest file name \"{base}\" contains {bad:?}"),
            "use letters, digits, '.', '-' and '_' in manifest file names",
        );
        return None;
    }
    Some(addon.to_owned())
}

pub(super) fn charts(raw: &RawProfile, dir: &Path, c: &mut Collector<'_>) -> Vec<Chart> {
    let key = KeyPath::root().key("charts");
    let mut out = Vec::new();
    for (i, ch) in raw.charts.iter().enumerate() {
        let k = key.index(i);
        let name = c.check(&k.key("name"), Label::parse(&ch.name));
        let values_file = ch
            .values_file
            .as_ref()
            .map(|v| existing(dir, v, &k.key("values-file"), "values file", Kind::File, c));
        let namespace = ch.namespace.clone().unwrap_or_else(|| "default".into());
        c.check(&k.key("namespace"), Label::parse(&namespace));
        if ch.chart.contains("://") {
            c.check(
                &k.key("chart"),
                grammar::url(&ch.chart, "chart", &["https://", "http://"]),
            );
        } else {
            c.check(&k.key("chart"), word(&ch.chart, "chart"));
        }
        c.check(&k.key("version"), word(&ch.version, "chart version"));
        if let Some(r) = &ch.repo {
            c.check(
                &k.key("repo"),
                grammar::url(r, "Helm repository", &["https://", "http://", "oci://"]),
            );
        }
        if let Some(v) = &values_file {
            c.check(&k.key("values-file"), values(v));
        }
        if let Some(name) = name {
            out.push(Chart {
                name,
                chart: ch.chart.clone(),
                repo: ch.repo.clone(),
                version: ch.version.clone(),
                namespace,
                values_file,
            });
        }
    }
    out
}

/// A chart name or version: one word of printable characters (it lands in a YAML string
/// and in Helm's command line).
fn word(s: &str, what: &str) -> Result<(), Invalid> {
    grammar::text(s, what)?;
    if s.is_empty() || s.contains(char::is_whitespace) {
        return Err(Invalid::new(format!("{what} {s:?} is not one word")).hint(
            "write the chart's name or version as Helm shows it, e.g. \"podinfo\" and \"6.9.0\"",
        ));
    }
    Ok(())
}

/// A chart's values file must be YAML: it becomes the HelmChart's `valuesContent`.
fn values(path: &Path) -> Result<(), Invalid> {
    let Ok(bytes) = std::fs::read(path) else {
        return Ok(()); // a missing file is reported by existing()
    };
    let hint = "a values file is a YAML mapping, as for `helm install -f`";
    let text = String::from_utf8(bytes).map_err(|_| {
        Invalid::new(format!("values file {} is not UTF-8 text", path.display())).hint(hint)
    })?;
    yaml_rust2::YamlLoader::load_from_str(&text).map_err(|e| {
        Invalid::new(format!("values file {} is not YAML: {e}", path.display())).hint(hint)
    })?;
    Ok(())
}
