//! `role = "loadbalancer"` nodes, `[loadbalancer]` and `[ingress]`: the cluster load
//! balancer's registration address (one node's own, or one two nodes share), clear of the
//! VIP, the gateway, every node and every pool; the ingress controller and its address.

use std::net::Ipv4Addr;

use super::{check_host_in, ipv4};
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::{Cluster, Ingress, IngressController, LoadBalancer, Node, Pool};
use crate::profile::raw::RawProfile;
use crate::profile::types::Role;

/// At most two load-balancer nodes: one active, one standby holding the shared address.
pub const MAX_LOADBALANCERS: usize = 2;

pub(super) fn loadbalancer(
    raw: &RawProfile,
    cluster: Option<&Cluster>,
    nodes: &[(usize, Node)],
    pools: &[Pool],
    ingress: &Ingress,
    c: &mut Collector<'_>,
) -> Option<LoadBalancer> {
    let key = KeyPath::root().key("loadbalancer");
    let lbs: Vec<&(usize, Node)> = nodes
        .iter()
        .filter(|(_, n)| n.role == Role::LoadBalancer)
        .collect();
    let table = raw.loadbalancer.as_ref();
    if lbs.is_empty() {
        if table.is_some() {
            c.error(
                &key,
                "[loadbalancer] is set, but no node has role = \"loadbalancer\"",
                "add a [[nodes]] table with role = \"loadbalancer\", or remove [loadbalancer]",
            );
        }
        return None;
    }
    let nkey = |i: usize| KeyPath::root().key("nodes").index(i);
    if lbs.len() > MAX_LOADBALANCERS {
        c.error(
            &nkey(lbs[MAX_LOADBALANCERS].0).key("role"),
            format!(
                "{} load-balancer nodes: at most {MAX_LOADBALANCERS} share one address",
                lbs.len()
            ),
            "use one load-balancer node, or two that share [loadbalancer] address",
        );
    }
    if !nodes.iter().any(|(_, n)| n.role == Role::Server) {
        c.error(
            &nkey(lbs[0].0).key("role"),
            "a load balancer with no server behind it",
            "HAProxy forwards the API to the servers: add at least one role = \"server\" node",
        );
    }
    let shared = lbs.len() > 1;
    let address = match (shared, table.and_then(|t| t.address.as_deref())) {
        (false, Some(_)) => {
            c.error(
                &key.key("address"),
                "[loadbalancer] address is for two load-balancer nodes; this profile has one",
                &format!(
                    "with one load-balancer node its own address ({}) is the registration address: remove address",
                    lbs[0].1.address.ip().map(|a| a.to_string()).unwrap_or_default()
                ),
            );
            None
        }
        (false, None) => lbs[0].1.address.ip(),
        (true, None) => {
            c.error(
                &key,
                "two load-balancer nodes need the address they share",
                "add [loadbalancer] address = \"<a free address in the cluster network>\" (keepalived moves it between them)",
            );
            None
        }
        (true, Some(a)) => {
            let k = key.key("address");
            let a = c.check(&k, ipv4(a, "load-balancer address"))?;
            shared_address_rules(c, &k, a, cluster, nodes, pools);
            Some(a)
        }
    };
    let forward_ingress = table.is_some_and(|t| t.ingress);
    if forward_ingress {
        if ingress.controller == IngressController::None {
            c.error(
                &key.key("ingress"),
                "the load balancer forwards 80/443 to the ingress, but [ingress] controller = \"none\"",
                "use controller = \"traefik\", or remove ingress = true",
            );
        } else if ingress.address.is_none() {
            c.error(
                &key.key("ingress"),
                "the load balancer forwards 80/443 to the ingress, whose address is not fixed",
                "set [ingress] address = \"<an address of a [metallb] pool>\"",
            );
        }
    }
    Some(LoadBalancer {
        address: address?,
        shared,
        ingress: forward_ingress,
    })
}

fn shared_address_rules(
    c: &mut Collector<'_>,
    k: &KeyPath,
    a: Ipv4Addr,
    cluster: Option<&Cluster>,
    nodes: &[(usize, Node)],
    pools: &[Pool],
) {
    if let Some(cl) = cluster {
        check_host_in(c, k, "load-balancer address", a, cl.network);
        if a == cl.vip {
            c.error(
                k,
                format!("load-balancer address {a} is the servers' VIP"),
                "the VIP floats between the servers; give the load balancers an address of their own",
            );
        }
        if Some(a) == cl.gateway {
            c.error(
                k,
                format!("load-balancer address {a} is the gateway's"),
                "choose a free address in the network",
            );
        }
    }
    for (_, n) in nodes {
        if n.address.ip() == Some(a) {
            c.error(
                k,
                format!("load-balancer address {a} is node {}'s address", n.name),
                "keepalived adds the shared address to the active load balancer: it must be free",
            );
        }
    }
    for pl in pools.iter().filter(|pl| pl.contains(a)) {
        c.error(
            k,
            format!(
                "load-balancer address {a} is in MetalLB pool \"{}\"",
                pl.name
            ),
            "keep the registration address out of every MetalLB pool",
        );
    }
}

pub(super) fn ingress(raw: &RawProfile, pools: &[Pool], c: &mut Collector<'_>) -> Option<Ingress> {
    let key = KeyPath::root().key("ingress");
    let Some(t) = raw.ingress.as_ref() else {
        return Some(Ingress {
            controller: IngressController::Traefik,
            address: None,
        });
    };
    let controller = match t.controller.as_deref().unwrap_or("traefik") {
        "traefik" => Some(IngressController::Traefik),
        "none" => Some(IngressController::None),
        other => {
            let hint =
                if other.eq_ignore_ascii_case("traefik") || other.eq_ignore_ascii_case("none") {
                    "write it in lowercase"
                } else {
                    "controller is \"traefik\" (K3s's packaged Traefik) or \"none\""
                };
            c.error(
                &key.key("controller"),
                format!("unknown ingress controller \"{other}\""),
                hint,
            );
            None
        }
    };
    let address = t
        .address
        .as_ref()
        .and_then(|a| c.check(&key.key("address"), ipv4(a, "ingress address")));
    if let Some(a) = address {
        if controller == Some(IngressController::None) {
            c.error(
                &key.key("address"),
                "[ingress] address with controller = \"none\" does nothing",
                "remove address, or use controller = \"traefik\"",
            );
        } else if !pools.iter().any(|pl| pl.contains(a)) {
            c.error(
                &key.key("address"),
                format!("ingress address {a} is not in any MetalLB pool"),
                "Traefik's Service takes its address from MetalLB: pick one from [metallb] addresses",
            );
        }
        if let Some(w) = raw
            .apps
            .wordpress
            .as_ref()
            .and_then(|w| w.address.as_deref())
            && w == a.to_string()
        {
            c.error(
                &key.key("address"),
                format!("ingress address {a} is also apps.wordpress.address"),
                "give Traefik and WordPress different addresses, or serve WordPress through the ingress with apps.wordpress.host",
            );
        }
    }
    Some(Ingress {
        controller: controller?,
        address,
    })
}
