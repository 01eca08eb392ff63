//! The node contract: the one table of what a node's boot partition carries under
//! `bakery/` (path, mode once installed, secret or not, which nodes, which renderer).
//!
//! Everything else is derived from [`NODE_FILES`]: the plan's file list
//! ([`super::files::node_files`]), what the renderer writes and with which mode
//! ([`crate::cluster::render`]), and `usr/lib/bakery/modes` in the system image
//! ([`modes_file`]), from which `bakery-node` sets the modes of the files it installs into
//! `/etc` (FAT has no modes). Manifests and the CA files are the two open-ended sets: their
//! names come from [`crate::cluster::manifests::names`] and
//! [`crate::cluster::pki::CA_FILES`], their modes from [`dynamic_mode`].

use crate::profile::{Node, Profile, Role};

/// Which nodes carry a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    All,
    /// Nodes that run K3s (servers and agents; not load balancers).
    K3s,
    Servers,
    /// Nodes running keepalived: the servers (the VIP) and two load balancers sharing the
    /// registration address.
    Keepalived,
    /// `role = "loadbalancer"` nodes.
    LoadBalancers,
    /// Load balancers sharing the registration address (two of them).
    SharedLoadBalancers,
    /// The server that initialises the cluster (server 1).
    Init,
    /// The node that serves the NFS share.
    NfsServer,
}

/// The renderer of a file (see `cluster::render`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Renderer {
    NodeEnv,
    Hostname,
    Hosts,
    Networkd,
    Timesyncd,
    AuthorizedKeys,
    HostKey,
    HostKeyPub,
    NodePassword,
    NodeYaml,
    /// The server token on servers, the agent token on agents.
    Token,
    AgentToken,
    ClusterYaml,
    Keepalived,
    CheckScript,
    NotifyScript,
    InitYaml,
    JoinYaml,
    Exports,
    Haproxy,
    HaproxyCheckScript,
}

/// One file of the contract; `path` is relative to `bakery/` on the boot partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeFile {
    pub path: &'static str,
    pub mode: u32,
    pub secret: bool,
    pub scope: Scope,
    pub renderer: Renderer,
}

const fn f(path: &'static str, mode: u32, scope: Scope, renderer: Renderer) -> NodeFile {
    NodeFile {
        path,
        mode,
        secret: mode == 0o600,
        scope,
        renderer,
    }
}

use Renderer as R;
use Scope as S;

/// Every fixed file under `bakery/`. Mode 0600 means secret (never printed, 0600 on disk).
pub const NODE_FILES: &[NodeFile] = &[
    f("node.env", 0o644, S::All, R::NodeEnv),
    f("etc/hostname", 0o644, S::All, R::Hostname),
    f("etc/hosts", 0o644, S::All, R::Hosts),
    f(
        "etc/systemd/network/10-bakery.network",
        0o644,
        S::All,
        R::Networkd,
    ),
    f(
        "etc/systemd/timesyncd.conf.d/bakery.conf",
        0o644,
        S::All,
        R::Timesyncd,
    ),
    f("etc/ssh/authorized_keys", 0o644, S::All, R::AuthorizedKeys),
    f("etc/ssh/ssh_host_ed25519_key", 0o600, S::All, R::HostKey),
    f(
        "etc/ssh/ssh_host_ed25519_key.pub",
        0o644,
        S::All,
        R::HostKeyPub,
    ),
    f("etc/rancher/node/password", 0o600, S::K3s, R::NodePassword),
    f(
        "etc/rancher/k3s/config.yaml.d/20-node.yaml",
        0o644,
        S::K3s,
        R::NodeYaml,
    ),
    f("etc/rancher/k3s/token", 0o600, S::K3s, R::Token),
    f(
        "etc/rancher/k3s/agent-token",
        0o600,
        S::Servers,
        R::AgentToken,
    ),
    f(
        "etc/rancher/k3s/config.yaml.d/10-cluster.yaml",
        0o644,
        S::Servers,
        R::ClusterYaml,
    ),
    f(
        "etc/keepalived/keepalived.conf",
        0o600,
        S::Keepalived,
        R::Keepalived,
    ),
    f(
        "etc/keepalived/check-apiserver.sh",
        0o755,
        S::Servers,
        R::CheckScript,
    ),
    f(
        "etc/keepalived/notify.sh",
        0o755,
        S::Keepalived,
        R::NotifyScript,
    ),
    f(
        "etc/rancher/k3s/config.yaml.d/12-init.yaml",
        0o644,
        S::Init,
        R::InitYaml,
    ),
    f("etc/rancher/k3s/join.yaml", 0o644, S::Init, R::JoinYaml),
    f("etc/exports", 0o644, S::NfsServer, R::Exports),
    f(
        "etc/haproxy/bakery.cfg",
        0o644,
        S::LoadBalancers,
        R::Haproxy,
    ),
    f(
        "etc/keepalived/check-haproxy.sh",
        0o755,
        S::SharedLoadBalancers,
        R::HaproxyCheckScript,
    ),
];

/// Whether `node` carries files of `scope`.
pub fn applies(scope: Scope, p: &Profile, node: &Node) -> bool {
    match scope {
        Scope::All => true,
        Scope::K3s => node.role != Role::LoadBalancer,
        Scope::Servers => node.role == Role::Server,
        Scope::Keepalived => {
            node.role == Role::Server
                || (node.role == Role::LoadBalancer
                    && p.loadbalancer.as_ref().is_some_and(|lb| lb.shared))
        }
        Scope::LoadBalancers => node.role == Role::LoadBalancer,
        Scope::SharedLoadBalancers => {
            node.role == Role::LoadBalancer && p.loadbalancer.as_ref().is_some_and(|lb| lb.shared)
        }
        Scope::Init => node.name == p.init_server().name,
        Scope::NfsServer => crate::cluster::network::serves_nfs(p, node),
    }
}

/// The fixed files `node` carries, in table order.
pub fn files_of<'a>(
    p: &'a Profile,
    node: &'a Node,
) -> impl Iterator<Item = &'static NodeFile> + 'a {
    NODE_FILES.iter().filter(move |f| applies(f.scope, p, node))
}

/// Mode of a file of the open-ended sets: `manifests/*` (servers) and `tls/*` (server 1).
pub fn dynamic_mode(path: &str, secret: bool) -> u32 {
    if secret || (path.starts_with("tls/") && path.ends_with(".key")) {
        0o600
    } else {
        0o644
    }
}

/// `usr/lib/bakery/modes`: `<octal mode> <path under /etc>` for every `etc/` file of the
/// contract, read by `bakery-node` (files it does not list are installed 0600).
pub fn modes_file() -> String {
    let mut s = String::from(
        "# bakery-image: modes of the files bakery-node installs into /etc (from plan::contract).\n",
    );
    for nf in NODE_FILES {
        if let Some(rel) = nf.path.strip_prefix("etc/") {
            s.push_str(&format!("{:04o} {rel}\n", nf.mode));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_unique_and_secrets_are_0600() {
        let mut seen = std::collections::BTreeSet::new();
        for nf in NODE_FILES {
            assert!(seen.insert(nf.path), "{} twice", nf.path);
            assert_eq!(nf.secret, nf.mode == 0o600, "{}", nf.path);
            assert!(!nf.path.contains(' '), "bakery-node splits modes on spaces");
        }
    }

    #[test]
    fn modes_file_lists_every_etc_file() {
        let m = modes_file();
        assert!(m.contains("\n0644 hostname\n"), "{m}");
        assert!(m.contains("\n0600 keepalived/keepalived.conf\n"), "{m}");
        assert!(m.contains("\n0755 keepalived/notify.sh\n"), "{m}");
        assert!(
            !m.contains("node.env"),
            "node.env is not installed into /etc"
        );
        let n = NODE_FILES
            .iter()
            .filter(|f| f.path.starts_with("etc/"))
            .count();
        assert_eq!(m.lines().filter(|l| !l.starts_with('#')).count(), n);
    }
}
