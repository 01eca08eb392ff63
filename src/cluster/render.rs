//! Render everything under `bakery/` on one node's boot partition.
//!
//! What is rendered, and with which mode, comes from the node contract
//! ([`crate::plan::contract`]), as does the plan's file list; the rendered set is checked
//! against the plan anyway (a mismatch is a bug and fails the build). Every file carries
//! the build time as its mtime.

use anyhow::{Context, Result, bail};

use super::manifests;
use super::network;
use super::secrets::Secrets;
use super::{haproxy, k3s, keepalived};
use crate::plan::Plan;
use crate::plan::contract::{self, Renderer};
use crate::profile::{Node, Profile, Role};
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
    for nf in contract::files_of(p, node) {
        put(
            nf.path,
            content(nf.renderer, p, node, secrets, build_time)?,
            nf.mode,
        )?;
    }
    if node.role == Role::Server {
        for m in manifests::render(p, secrets)? {
            let path = format!("manifests/{}", m.name);
            let mode = contract::dynamic_mode(&path, m.secret);
            put(&path, m.content, mode)?;
        }
    }
    if contract::applies(contract::Scope::Init, p, node) {
        for (f, content) in secrets.ca_files()? {
            let path = format!("tls/{f}");
            put(
                &path,
                content.to_vec(),
                contract::dynamic_mode(&path, false),
            )?;
        }
    }
    check_against_plan(&t, node_plan)?;
    Ok(t)
}

/// The bytes of one contract file.
fn content(
    r: Renderer,
    p: &Profile,
    node: &Node,
    secrets: &Secrets,
    build_time: i64,
) -> Result<Vec<u8>> {
    let name = node.name.as_str();
    Ok(match r {
        Renderer::NodeEnv => network::node_env(p, node, build_time).into(),
        Renderer::Hostname => network::hostname(node).into(),
        Renderer::Hosts => network::hosts(p, node).into(),
        Renderer::Networkd => network::networkd(p, node).into(),
        Renderer::Timesyncd => network::timesyncd(p).into(),
        Renderer::AuthorizedKeys => network::authorized_keys(p, node).into(),
        Renderer::HostKey => secrets.host_key(name)?.into(),
        Renderer::HostKeyPub => secrets.host_key_pub(name)?.into(),
        Renderer::NodePassword => format!("{}\n", secrets.node_password(name)?).into(),
        Renderer::NodeYaml => k3s::node_yaml(p, node).into(),
        Renderer::Token => match node.role {
            Role::Server => secrets.server_token()?.into(),
            Role::Agent => secrets.agent_token()?.into(),
            Role::LoadBalancer => anyhow::bail!("internal error: a load balancer holds no token"),
        },
        Renderer::AgentToken => secrets.agent_token()?.into(),
        Renderer::ClusterYaml => k3s::cluster_yaml(p).into(),
        Renderer::Keepalived if node.role == Role::LoadBalancer => {
            haproxy::keepalived_conf(p, node, secrets.keepalived_auth()?).into()
        }
        Renderer::Keepalived => keepalived::conf(p, node, secrets.keepalived_auth()?).into(),
        Renderer::Haproxy => haproxy::config(p, node).into(),
        Renderer::HaproxyCheckScript => haproxy::check_script().into(),
        Renderer::CheckScript => keepalived::check_script().into(),
        Renderer::NotifyScript => keepalived::notify_script().into(),
        Renderer::InitYaml => k3s::init_yaml().into(),
        Renderer::JoinYaml => k3s::join_yaml().into(),
        Renderer::Exports => network::exports(p).into(),
    })
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
