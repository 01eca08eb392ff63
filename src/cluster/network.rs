//! Host files of one node: `node.env`, hostname, hosts, the systemd-networkd unit, the
//! timesyncd drop-in, root's authorized_keys and the NFS exports.
//!
//! Inputs: the profile, the node and the build time; outputs: file texts. No secrets.

use std::fmt::Write;

use super::k3s;
use super::yaml::sh;
use crate::profile::{Addressing, NfsServer, Node, Profile, Role};

/// Whether `node` serves the profile's NFS share.
pub fn serves_nfs(p: &Profile, node: &Node) -> bool {
    matches!(&p.nfs, Some(n) if n.server == NfsServer::Node(node.name.clone()))
}

/// Static addresses of the servers other than `node`.
fn peers(p: &Profile, node: &Node) -> Vec<String> {
    p.servers()
        .filter(|s| s.name != node.name)
        .filter_map(|s| s.address.ip())
        .map(|a| a.to_string())
        .collect()
}

/// `bakery/node.env`: KEY='value' lines, only the keys the node runtime reads (a test
/// checks every key has a reader under `overlays/runtime/`).
pub fn node_env(p: &Profile, node: &Node, build_time: i64) -> String {
    let c = &p.cluster;
    let is_init = node.name == p.init_server().name;
    let nfs = p.nfs.as_ref();
    let serve = serves_nfs(p, node);
    let dns: Vec<String> = c.dns.iter().map(|d| d.to_string()).collect();
    let vars: Vec<(&str, String)> = vec![
        ("BAKERY_HOSTNAME", node.name.to_string()),
        ("BAKERY_ROLE", node.role.to_string()),
        ("BAKERY_INIT", u8::from(is_init).to_string()),
        (
            "BAKERY_ADDRESS",
            match node.address {
                Addressing::Static(a) => a.to_string(),
                Addressing::Dhcp => "dhcp".into(),
            },
        ),
        ("BAKERY_DNS", dns.join(" ")),
        ("BAKERY_INTERFACE", c.interface.clone()),
        ("BAKERY_VIP", c.vip.to_string()),
        // Agents register through the load balancer. Servers do not: HAProxy's check
        // (/ping) passes as soon as a joining server opens :6443, so a joining server
        // could be routed to itself; they join through the VIP or a member directly.
        (
            "BAKERY_LB",
            p.loadbalancer
                .as_ref()
                .filter(|_| node.role == Role::Agent)
                .map(|lb| lb.address.to_string())
                .unwrap_or_default(),
        ),
        ("BAKERY_PEERS", peers(p, node).join(" ")),
        ("BAKERY_BUILD_TIME", build_time.to_string()),
        ("BAKERY_TIMEZONE", c.timezone.clone()),
        ("BAKERY_NFS_SERVE", u8::from(serve).to_string()),
        (
            "BAKERY_NFS_DISK",
            nfs.filter(|_| serve)
                .and_then(|n| n.disk.clone())
                .unwrap_or_default(),
        ),
        (
            "BAKERY_NFS_PATH",
            nfs.filter(|_| serve)
                .map(|n| n.path.clone())
                .unwrap_or_default(),
        ),
    ];
    let mut s = String::from("# bakery-image: facts about this node for the node runtime.\n");
    for (k, v) in vars {
        let _ = writeln!(s, "{k}={}", sh(&v));
    }
    s
}

pub fn hostname(node: &Node) -> String {
    format!("{}\n", node.name)
}

/// `/etc/hosts`: loopback, this node, every node with a static address and the VIP.
pub fn hosts(p: &Profile, node: &Node) -> String {
    let mut s = String::from(
        "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
         ff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n",
    );
    if node.address == Addressing::Dhcp {
        let _ = writeln!(s, "127.0.1.1\t{}", node.name);
    }
    let _ = writeln!(s, "\n# cluster {}", p.cluster.name);
    let _ = writeln!(s, "{}\t{}", p.cluster.vip, k3s::api_name(p));
    for n in &p.nodes {
        if let Some(a) = n.address.ip() {
            let _ = writeln!(s, "{a}\t{}", n.name);
        }
    }
    s
}

/// `10-bakery.network`: match by MAC when given, else by interface name.
pub fn networkd(p: &Profile, node: &Node) -> String {
    let c = &p.cluster;
    let mut s = String::from("# bakery-image: the cluster network interface.\n[Match]\n");
    match &node.mac {
        Some(m) => {
            let _ = writeln!(s, "MACAddress={}", m.as_str());
        }
        None => {
            let _ = writeln!(s, "Name={}", c.interface);
        }
    }
    s.push_str("\n[Network]\n");
    match node.address {
        Addressing::Static(a) => {
            let _ = writeln!(s, "Address={a}/{}", c.network.prefix_len());
            if let Some(g) = c.gateway {
                let _ = writeln!(s, "Gateway={g}");
            }
        }
        Addressing::Dhcp => s.push_str("DHCP=ipv4\n"),
    }
    for d in &c.dns {
        let _ = writeln!(s, "DNS={d}");
    }
    s.push_str("IPv6AcceptRA=no\nLinkLocalAddressing=no\n");
    s
}

/// `timesyncd.conf.d/bakery.conf`: the profile's NTP servers.
pub fn timesyncd(p: &Profile) -> String {
    let mut s =
        String::from("# bakery-image: time sources (K3s waits for a synced clock).\n[Time]\n");
    if p.cluster.ntp.is_empty() {
        s.push_str(
            "# no NTP servers in the profile: DHCP-provided or the fallback servers apply\n",
        );
    } else {
        let _ = writeln!(s, "NTP={}", p.cluster.ntp.join(" "));
    }
    s
}

/// Root's `authorized_keys`: the cluster-wide keys, then the node's own.
pub fn authorized_keys(p: &Profile, node: &Node) -> String {
    let mut s = String::new();
    for k in p.ssh_keys.iter().chain(&node.ssh_keys) {
        s.push_str(k.trim());
        s.push('\n');
    }
    s
}

/// Where the NFS node builds its NFSv4 pseudo root (a tmpfs; see `bakery-nfs`).
pub const NFS_V4_ROOT: &str = "/run/bakery/nfs-v4root";

/// `/etc/exports` of the NFS node: the share for NFSv3 (mountd resolves the real path) and,
/// for NFSv4, a pseudo root on a tmpfs holding the share at the same path, because the
/// node's `/` is an overlay that nfsd cannot export (so `server:/srv/nfs/k8s` works with
/// either version). Only `cluster.network` may mount.
pub fn exports(p: &Profile) -> String {
    let path = p.nfs.as_ref().map_or("/srv/nfs/k8s", |n| n.path.as_str());
    let net = p.cluster.network;
    let opts = "rw,sync,no_subtree_check,no_root_squash";
    format!(
        "# bakery-image: the cluster's NFS share (csi-driver-nfs creates a directory per volume).\n\
         {path} {net}({opts})\n\
         {NFS_V4_ROOT} {net}(ro,fsid=0,crossmnt,no_subtree_check)\n\
         {NFS_V4_ROOT}{path} {net}({opts})\n"
    )
}

/// Whether a node is a server (holds keepalived, manifests, the agent token).
pub fn is_server(node: &Node) -> bool {
    node.role == Role::Server
}
