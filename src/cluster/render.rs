//! Render everything under `bakery/` on one node's boot partition.
//!
//! The rendered set equals the plan's `bakery/` files for the node
//! ([`crate::plan::files::node_files`]); a mismatch is a bug and fails the build.
//! Secret files get mode 0600, scripts 0755, everything else 0644; every file carries the
//! build time as its mtime.

use anyhow::{Context, Result, bail};

use super::manifests;
use super::network::{self, serves_nfs};
use super::secrets::Secrets;
use super::{k3s, keepalived};
use crate::plan::Plan;
use crate::profile::{Profile, Role};
use crate::stage::Tree;

/// Render the `bakery/` tree of `node_name`.
pub fn render_node(
    p: &Profile,
    plan: &Plan,
    secrets: &Secrets,
    node_name: &str,
    build_time: i64,
) -> Result<Tree> {
    let node = p
        .node(node_name)
        .with_context(|| format!("node {node_name} is not in the profile"))?;
    let node_plan = plan
        .nodes
        .iter()
        .find(|n| n.name == node_name)
        .with_context(|| format!("node {node_name} is not in the plan"))?;
    let mut t = Tree::new();
    t.default_mtime = build_time;
    let mut put = |path: &str, data: Vec<u8>, mode: u32| -> Result<()> {
        t.add_bytes(&format!("bakery/{path}"), data, mode)
            .with_context(|| format!("adding bakery/{path}"))
    };
    let is_init = node.name == p.init_server().name;
    let name = node.name.as_str();
    put(
        "node.env",
        network::node_env(p, node, build_time).into(),
        0o644,
    )?;
    put("etc/hostname", network::hostname(node).into(), 0o644)?;
    put("etc/hosts", network::hosts(p, node).into(), 0o644)?;
    put(
        "etc/systemd/network/10-bakery.network",
        network::networkd(p, node).into(),
        0o644,
    )?;
    put(
        "etc/systemd/timesyncd.conf.d/bakery.conf",
        network::timesyncd(p).into(),
        0o644,
    )?;
    put(
        "etc/ssh/authorized_keys",
        network::authorized_keys(p, node).into(),
        0o644,
    )?;
    put(
        "etc/ssh/ssh_host_ed25519_key",
        secrets.host_key(name)?.into(),
        0o600,
    )?;
    put(
        "etc/ssh/ssh_host_ed25519_key.pub",
        secrets.host_key_pub(name)?.into(),
        0o644,
    )?;
    put(
        "etc/rancher/node/password",
        format!("{}\n", secrets.node_password(name)?).into(),
        0o600,
    )?;
    put(
        "etc/rancher/k3s/config.yaml.d/20-node.yaml",
        k3s::node_yaml(p, node).into(),
        0o644,
    )?;
    match node.role {
        Role::Server => {
            put(
                "etc/rancher/k3s/token",
                secrets.server_token()?.into(),
                0o600,
            )?;
            put(
                "etc/rancher/k3s/agent-token",
                secrets.agent_token()?.into(),
                0o600,
            )?;
            put(
                "etc/rancher/k3s/config.yaml.d/10-cluster.yaml",
                k3s::cluster_yaml(p).into(),
                0o644,
            )?;
            put(
                "etc/keepalived/keepalived.conf",
                keepalived::conf(p, node, secrets.keepalived_auth()?).into(),
                0o600,
            )?;
            put(
                "etc/keepalived/check-apiserver.sh",
                keepalived::check_script().into(),
                0o755,
            )?;
            put(
                "etc/keepalived/notify.sh",
                keepalived::notify_script().into(),
                0o755,
            )?;
            for m in manifests::render(p, secrets)? {
                let mode = if m.secret { 0o600 } else { 0o644 };
                put(&format!("manifests/{}", m.name), m.content, mode)?;
            }
        }
        Role::Agent => {
            put(
                "etc/rancher/k3s/token",
                secrets.agent_token()?.into(),
                0o600,
            )?;
        }
    }
    if is_init {
        put(
            "etc/rancher/k3s/config.yaml.d/12-init.yaml",
            k3s::init_yaml().into(),
            0o644,
        )?;
        put("etc/rancher/k3s/join.yaml", k3s::join_yaml().into(), 0o644)?;
        for (f, content) in secrets.ca_files()? {
            let mode = if f.ends_with(".key") { 0o600 } else { 0o644 };
            put(&format!("tls/{f}"), content.to_vec(), mode)?;
        }
    }
    if serves_nfs(p, node) {
        put("etc/exports", network::exports(p).into(), 0o644)?;
    }
    check_against_plan(&t, node_plan)?;
    Ok(t)
}

/// Every planned `bakery/` file is rendered and nothing else.
fn check_against_plan(t: &Tree, node_plan: &crate::plan::NodePlan) -> Result<()> {
    let rendered: Vec<&str> = t
        .iter()
        .filter(|(p, e)| {
            p.starts_with("bakery/") && matches!(e.kind, crate::stage::tree::Kind::File(_))
        })
        .map(|(p, _)| p)
        .collect();
    let planned: Vec<&str> = node_plan
        .files
        .iter()
        .filter(|f| f.path.starts_with("bakery/"))
        .map(|f| f.path.as_str())
        .collect();
    let mut a = rendered.clone();
    let mut b = planned.clone();
    a.sort();
    b.sort();
    if a != b {
        let extra: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
        let missing: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
        bail!(
            "internal error: rendered files of {} differ from the plan (extra {extra:?}, missing {missing:?})",
            node_plan.name
        );
    }
    Ok(())
}
