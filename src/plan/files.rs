//! Which files each node carries on its boot partition (p1).
//!
//! p1 holds everything node-specific, readable and editable from any desktop: the board's
//! boot files at the top level and the node's rendered configuration under `bakery/`,
//! which mirrors the paths it is installed to (`bakery/etc/hostname` -> `/etc/hostname`).
//! Files holding secrets are marked so reports can say they exist without showing them.

use serde::Serialize;

use crate::profile::{Node, Profile, Role};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    /// Path inside the boot partition.
    pub path: String,
    /// Holds key material or passwords: mode 0600 when installed, never printed.
    pub secret: bool,
}

fn f(path: impl Into<String>, secret: bool) -> PlannedFile {
    PlannedFile {
        path: path.into(),
        secret,
    }
}

/// The boot-partition files of one node, sorted by path.
pub fn node_files(p: &Profile, node: &Node, board_files: &[String]) -> Vec<PlannedFile> {
    let mut v: Vec<PlannedFile> = board_files.iter().map(|b| f(b.clone(), false)).collect();
    v.extend([
        f("config.txt", false),
        f("cmdline.txt", false),
        f("sysconf.txt", false),
        f("bakery/node.env", false),
        f("bakery/etc/hostname", false),
        f("bakery/etc/hosts", false),
        f("bakery/etc/systemd/network/10-bakery.network", false),
        f("bakery/etc/systemd/timesyncd.conf.d/bakery.conf", false),
        f("bakery/etc/ssh/authorized_keys", false),
        f("bakery/etc/ssh/ssh_host_ed25519_key", true),
        f("bakery/etc/ssh/ssh_host_ed25519_key.pub", false),
        f("bakery/etc/rancher/node/password", true),
        f("bakery/etc/rancher/k3s/config.yaml.d/20-node.yaml", false),
        f("bakery/etc/rancher/k3s/token", true),
    ]);
    if node.role == Role::Server {
        v.extend([
            f(
                "bakery/etc/rancher/k3s/config.yaml.d/10-cluster.yaml",
                false,
            ),
            f("bakery/etc/rancher/k3s/agent-token", true),
            f("bakery/etc/keepalived/keepalived.conf", true),
            f("bakery/etc/keepalived/check-apiserver.sh", false),
            f("bakery/etc/keepalived/notify.sh", false),
        ]);
        for (name, secret) in crate::cluster::manifests::names(p) {
            v.push(f(format!("bakery/manifests/{name}"), secret));
        }
    }
    if node.name == p.init_server().name {
        v.push(f(
            "bakery/etc/rancher/k3s/config.yaml.d/12-init.yaml",
            false,
        ));
        v.push(f("bakery/etc/rancher/k3s/join.yaml", false));
        for tls in crate::cluster::pki::CA_FILES {
            v.push(f(format!("bakery/tls/{tls}"), tls.ends_with(".key")));
        }
    }
    if crate::cluster::network::serves_nfs(p, node) {
        v.push(f("bakery/etc/exports", false));
    }
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v.dedup();
    v
}
