//! K3s configuration as `config.yaml.d` drop-ins.
//!
//! `10-cluster.yaml` (servers) holds every value K3s requires to be identical on all
//! servers and is byte-identical on each of them; `12-init.yaml` (init server only) holds
//! `cluster-init: true` alone so the node runtime can drop it when it joins instead;
//! `20-node.yaml` holds what differs per node; `join.yaml` is the join drop-in of the init
//! server with an `@PEER@` placeholder. Inputs: the profile and a node; output: text.
//!
//! Tokens are given in full form through files: servers read `token-file`
//! (`K10<hash>::server:<pw>`) and `agent-token-file` (`K10<hash>::node:<pw>`); K3s strips
//! the `K10<hash>::<user>:` prefix when it stores the password (`Passwd.EnsureUser` in
//! K3s `pkg/passwd`), and joiners check `<hash>` against `/cacerts` before sending
//! credentials. Agents read only the agent token, from their own `token-file`.

use std::fmt::Write;

use super::yaml::{list, q};
use crate::profile::{IngressController, Node, Profile, Role};

/// Paths on the node (the runtime installs `bakery/etc/...` into `/etc/...`).
pub const TOKEN_FILE: &str = "/etc/rancher/k3s/token";
pub const AGENT_TOKEN_FILE: &str = "/etc/rancher/k3s/agent-token";
/// Placeholder in `join.yaml` the runtime replaces with the answering peer's address.
pub const PEER_PLACEHOLDER: &str = "@PEER@";
/// etcd snapshots: every 6 hours, two days kept.
pub const SNAPSHOT_CRON: &str = "0 */6 * * *";
pub const SNAPSHOT_RETENTION: u32 = 8;
/// Taint for servers that do not run ordinary workloads.
pub const CONTROL_PLANE_TAINT: &str = "node-role.kubernetes.io/control-plane=true:NoSchedule";

/// The name the VIP is known by (hosts file, `tls-san`).
pub fn api_name(p: &Profile) -> String {
    format!("{}-api", p.cluster.name)
}

/// Packaged components to disable: servicelb when MetalLB serves LoadBalancers, the
/// local-path provisioner when NFS provides the default StorageClass, Traefik with
/// `[ingress] controller = "none"`.
pub fn disabled(p: &Profile) -> Vec<&'static str> {
    let mut v = Vec::new();
    if !p.pools.is_empty() {
        v.push("servicelb");
    }
    if p.ingress.controller == IngressController::None {
        v.push("traefik");
    }
    if p.nfs.is_some() {
        v.push("local-storage");
    }
    v
}

/// Names and addresses the servers' certificate covers: the VIP, the API name and, with
/// a load balancer, its registration address (clients reach the servers through it).
pub fn tls_san(p: &Profile) -> Vec<String> {
    let mut v = vec![p.cluster.vip.to_string(), api_name(p)];
    if let Some(lb) = &p.loadbalancer {
        v.push(lb.address.to_string());
    }
    v
}

/// `10-cluster.yaml`: identical on every server.
pub fn cluster_yaml(p: &Profile) -> String {
    let c = &p.cluster;
    let mut s = format!(
        "# bakery-image: settings every server of cluster {} shares (K3s critical values).\n\
         # Identical on all servers: change them only by rebuilding every server.\n",
        q(c.name.as_str())
    );
    let _ = writeln!(s, "token-file: {}", q(TOKEN_FILE));
    let _ = writeln!(s, "agent-token-file: {}", q(AGENT_TOKEN_FILE));
    s.push_str("tls-san:\n");
    s.push_str(&list(tls_san(p), 2));
    let _ = writeln!(s, "cluster-cidr: {}", q(&c.cluster_cidr.to_string()));
    let _ = writeln!(s, "service-cidr: {}", q(&c.service_cidr.to_string()));
    let _ = writeln!(s, "flannel-backend: {}", q("vxlan"));
    s.push_str("disable:\n");
    s.push_str(&list(disabled(p), 2));
    let _ = writeln!(s, "write-kubeconfig-mode: {}", q("0600"));
    s.push_str("prefer-bundled-bin: true\n");
    let _ = writeln!(s, "etcd-snapshot-schedule-cron: {}", q(SNAPSHOT_CRON));
    let _ = writeln!(s, "etcd-snapshot-retention: {SNAPSHOT_RETENTION}");
    s
}

/// `12-init.yaml` of the init server.
pub fn init_yaml() -> String {
    "# bakery-image: initialise a new cluster. The node runtime keeps this file only when\n\
     # every other server reports no cluster state at first boot (else join.yaml instead).\n\
     cluster-init: true\n"
        .to_owned()
}

/// `join.yaml` of the init server: installed as `30-join.yaml` with `@PEER@` replaced.
pub fn join_yaml() -> String {
    format!(
        "# bakery-image: join an existing cluster (a reflashed first server). The node\n\
         # runtime installs this as config.yaml.d/30-join.yaml with {PEER_PLACEHOLDER} replaced\n\
         # by the address of a cluster member it found (the VIP or a server).\n\
         server: {}\n",
        q(&format!("https://{PEER_PLACEHOLDER}:6443"))
    )
}

/// The URL a node joins through, if any (servers 2..n: server 1; agents: the registration
/// address, i.e. the load balancer's or the VIP). The
/// node runtime overrides it at first boot with `30-join.yaml`, naming the first member
/// it finds (the VIP or any server past its join), so a node never depends on server 1.
pub fn join_url(p: &Profile, node: &Node) -> Option<String> {
    let init = p.init_server();
    match node.role {
        Role::Server if node.name == init.name => None,
        Role::Server => init.address.ip().map(|a| format!("https://{a}:6443")),
        Role::Agent => Some(format!("https://{}:6443", p.registration_address())),
        Role::LoadBalancer => None,
    }
}

/// `20-node.yaml`: this node's own settings.
pub fn node_yaml(p: &Profile, node: &Node) -> String {
    let mut s = format!(
        "# bakery-image: settings of node {} ({}).\n",
        q(node.name.as_str()),
        node.role
    );
    if let Some(url) = join_url(p, node) {
        let _ = writeln!(s, "server: {}", q(&url));
    }
    if node.role == Role::Agent {
        // Agents hold only the agent token, in the file servers call agent-token.
        let _ = writeln!(s, "token-file: {}", q(TOKEN_FILE));
        s.push_str("prefer-bundled-bin: true\n");
    }
    let _ = writeln!(s, "node-name: {}", q(node.name.as_str()));
    if let Some(ip) = node.address.ip() {
        let _ = writeln!(s, "node-ip: {}", q(&ip.to_string()));
    }
    let _ = writeln!(s, "flannel-iface: {}", q(&p.cluster.interface));
    let labels: Vec<String> = node
        .labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    if !labels.is_empty() {
        s.push_str("node-label:\n");
        s.push_str(&list(&labels, 2));
    }
    let mut taints: Vec<String> = node.taints.iter().map(|t| t.as_str().to_owned()).collect();
    if node.role == Role::Server && !node.workloads {
        taints.push(CONTROL_PLANE_TAINT.to_owned());
    }
    if !taints.is_empty() {
        s.push_str("node-taint:\n");
        s.push_str(&list(&taints, 2));
    }
    s
}
