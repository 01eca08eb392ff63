//! `[[nodes]]`: names, roles, addresses and MACs (each unique), labels, taints, per-node
//! SSH keys, and the server count etcd's quorum needs.

use super::cluster::ssh_keys;
use super::{Unique, check_host_in, grammar, ipv4};
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::{Addressing, Cluster, Node};
use crate::profile::raw::RawProfile;
use crate::profile::types::{Label, Mac, Role, Taint};

pub(super) fn nodes(
    raw: &RawProfile,
    cluster: Option<&Cluster>,
    c: &mut Collector<'_>,
) -> Vec<(usize, Node)> {
    let key = KeyPath::root().key("nodes");
    if raw.nodes.is_empty() {
        c.error(
            &key,
            "the profile has no [[nodes]]",
            "add at least one [[nodes]] table with role = \"server\"",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut names = Unique::new("hostname", "every node needs its own hostname");
    let mut addrs = Unique::new("address", "every node needs its own address");
    let mut macs = Unique::new(
        "MAC",
        "every node needs its own MAC; copy it from the board's label or `ip link`",
    );
    for (i, n) in raw.nodes.iter().enumerate() {
        let k = key.index(i);
        let name = c.check(&k.key("hostname"), Label::parse(&n.hostname));
        names.insert(
            c,
            &k.key("hostname"),
            n.hostname.as_str(),
            format_args!("\"{}\"", n.hostname),
        );
        let role = c.check(&k.key("role"), n.role.parse::<Role>());
        let address = match n.address.as_deref() {
            None | Some("dhcp") => {
                if role == Some(Role::Server) {
                    c.error(&k.key(if n.address.is_some() { "address" } else { "hostname" }),
                        format!("server \"{}\" has no static address", n.hostname),
                        "servers need a static address: other servers join it and keepalived peers with it; add address = \"10.0.0.x\"");
                }
                if role == Some(Role::LoadBalancer) {
                    c.error(&k.key(if n.address.is_some() { "address" } else { "hostname" }),
                        format!("load balancer \"{}\" has no static address", n.hostname),
                        "the load balancer is the cluster's fixed registration address: add address = \"10.0.0.x\"");
                }
                Some(Addressing::Dhcp)
            }
            Some(a) => c
                .check(
                    &k.key("address"),
                    ipv4(a, "address").map_err(|e| {
                        e.hint("write a static IPv4 address, or \"dhcp\" for an agent")
                    }),
                )
                .map(Addressing::Static),
        };
        if let (Some(Addressing::Static(a)), Some(cl)) = (address, cluster) {
            check_host_in(c, &k.key("address"), "address", a, cl.network);
            if a == cl.vip {
                c.error(
                    &k.key("address"),
                    format!("address {a} is the cluster VIP"),
                    "the VIP floats between servers; give the node its own address",
                );
            }
            if Some(a) == cl.gateway {
                c.error(
                    &k.key("address"),
                    format!("address {a} is the gateway's"),
                    "the gateway is the router; give the node its own address",
                );
            }
            addrs.insert(c, &k.key("address"), a, a);
        }
        let mac = n
            .mac
            .as_ref()
            .and_then(|m| c.check(&k.key("mac"), Mac::parse(m)));
        if let Some(m) = &mac {
            macs.insert(c, &k.key("mac"), m.clone(), m.as_str());
        }
        let mut taints = Vec::new();
        for (j, t) in n.taints.iter().enumerate() {
            if let Some(t) = c.check(&k.key("taints").index(j), Taint::parse(t)) {
                taints.push(t);
            }
        }
        for (lk, lv) in &n.labels {
            let lkey = k.key("labels").key(lk);
            c.check(&lkey, grammar::label_key(lk));
            c.check(&lkey, grammar::label_value(lv));
        }
        if role == Some(Role::LoadBalancer) {
            // A load balancer runs no K3s: Kubernetes settings would do nothing.
            for (set, what) in [
                (!n.labels.is_empty(), "labels"),
                (!n.taints.is_empty(), "taints"),
                (n.workloads.is_some(), "workloads"),
            ] {
                if set {
                    c.error(
                        &k.key(what),
                        format!("{what} on a load balancer do nothing: it runs no K3s"),
                        &format!("remove {what} from \"{}\"", n.hostname),
                    );
                }
            }
        }
        if role == Some(Role::Agent) && n.workloads == Some(false) {
            c.error(
                &k.key("workloads"),
                "an agent that runs no workloads does nothing",
                "remove workloads = false, or make the node a server",
            );
        }
        let node_keys = ssh_keys(&n.ssh_authorized_keys, &k.key("ssh-authorized-keys"), c);
        if let (Some(name), Some(role), Some(address)) = (name, role, address) {
            out.push((
                i,
                Node {
                    name,
                    role,
                    address,
                    mac,
                    labels: n.labels.clone(),
                    taints,
                    workloads: role != Role::LoadBalancer && n.workloads.unwrap_or(true),
                    ssh_keys: node_keys,
                },
            ));
        }
    }
    // The schema's promise: a static address needs the gateway (K3s needs a default
    // route, and networkd writes one only from the gateway).
    if raw.cluster.gateway.is_none()
        && let Some(i) = raw
            .nodes
            .iter()
            .position(|n| n.address.as_deref().is_some_and(|a| a != "dhcp"))
    {
        c.error(
            &KeyPath::root().key("cluster"),
            format!("[cluster] has no gateway, but nodes[{i}] has a static address"),
            "add gateway = \"<your router's address>\" to [cluster]: statically addressed nodes need a default route",
        );
    }
    let servers = raw.nodes.iter().filter(|n| n.role == "server").count();
    if servers == 0 {
        c.error(
            &key,
            "the cluster has no server",
            "make at least one node role = \"server\"; it runs the control plane and etcd",
        );
    } else if servers % 2 == 0 && !raw.cluster.allow_even_servers {
        let tolerate = (servers - 1) / 2;
        c.error(&key, format!(
            "{servers} servers: etcd needs a majority, so {servers} servers tolerate only {tolerate} failure{} — no more than {} would",
            if tolerate == 1 { "" } else { "s" }, servers - 1),
            "use an odd number of servers (1: no HA, 3 tolerate 1 failure, 5 tolerate 2), or set allow-even-servers = true in [cluster]");
    }
    out
}
