//! The API VIP: keepalived on every server, unicast VRRP between the servers' static
//! addresses, priorities descending in server order, a track script checking that the
//! local K3s server holds cluster state and answers, and a notify script printing `bakery: vip MASTER|BACKUP|FAULT` to the console.
//!
//! Advert intervals below one second need VRRPv3 (centisecond adverts). VRRPv3 has no
//! authentication (RFC 5798 removed it), so the `authentication` block from the secrets
//! is written only for VRRPv2; with v3 the peers are limited by `unicast_peer` instead.
//! Inputs: profile, server, secrets; outputs: `keepalived.conf` and two scripts.

use std::fmt::Write;

use crate::plan::ids;
use crate::profile::{Node, Profile};

/// Paths on the node.
pub const CHECK_SCRIPT: &str = "/etc/keepalived/check-apiserver.sh";
pub const NOTIFY_SCRIPT: &str = "/etc/keepalived/notify.sh";

/// The VRRP router id (1..=255), derived from the cluster name so that two bakery
/// clusters on one LAN are unlikely to collide.
pub fn virtual_router_id(cluster: &str) -> u8 {
    (ids::serial32(cluster, "", "vrrp-router-id") % 255) as u8 + 1
}

/// Priority of the i-th server (0-based): 150, 140, 130, ...
pub fn priority(index: usize) -> u32 {
    150u32.saturating_sub(10 * index as u32).max(1)
}

/// `keepalived.conf` for `node` (a server with a static address).
pub fn conf(p: &Profile, node: &Node, auth_pass: &str) -> String {
    let servers: Vec<&Node> = p.servers().collect();
    let index = servers
        .iter()
        .position(|s| s.name == node.name)
        .unwrap_or(0);
    let own = node.address.ip().map(|a| a.to_string()).unwrap_or_default();
    let peers: Vec<String> = servers
        .iter()
        .filter(|s| s.name != node.name)
        .filter_map(|s| s.address.ip())
        .map(|a| a.to_string())
        .collect();
    let advert = p.cluster.vip_advert_interval;
    let v3 = advert < 1.0;
    let iface = &p.cluster.interface;
    let mut s = format!(
        "# bakery-image: the API VIP {} of cluster {} (server {} of {}).\n",
        p.cluster.vip,
        p.cluster.name,
        index + 1,
        servers.len()
    );
    s.push_str("global_defs {\n");
    let _ = writeln!(s, "    router_id {}", node.name);
    s.push_str("    enable_script_security\n    script_user root\n");
    let _ = writeln!(s, "    vrrp_version {}", if v3 { 3 } else { 2 });
    s.push_str("}\n\n");
    s.push_str("vrrp_script chk_apiserver {\n");
    let _ = writeln!(s, "    script \"{CHECK_SCRIPT}\"");
    s.push_str("    interval 2\n    timeout 3\n    fall 2\n    rise 2\n}\n\n");
    s.push_str("vrrp_instance api {\n    state BACKUP\n");
    let _ = writeln!(s, "    interface {iface}");
    let _ = writeln!(
        s,
        "    virtual_router_id {}",
        virtual_router_id(p.cluster.name.as_str())
    );
    let _ = writeln!(s, "    priority {}", priority(index));
    let _ = writeln!(s, "    advert_int {}", fmt_interval(advert));
    if peers.is_empty() || own.is_empty() {
        s.push_str("    # a single server: no VRRP peers\n");
    } else {
        let _ = writeln!(s, "    unicast_src_ip {own}");
        s.push_str("    unicast_peer {\n");
        for peer in &peers {
            let _ = writeln!(s, "        {peer}");
        }
        s.push_str("    }\n");
    }
    if v3 {
        s.push_str("    # VRRPv3 (sub-second adverts) has no authentication; only the unicast\n");
        s.push_str("    # peers above are accepted.\n");
    } else {
        s.push_str("    authentication {\n        auth_type PASS\n");
        let _ = writeln!(s, "        auth_pass {auth_pass}");
        s.push_str("    }\n");
    }
    s.push_str("    virtual_ipaddress {\n");
    let _ = writeln!(
        s,
        "        {}/{} dev {iface}",
        p.cluster.vip,
        p.cluster.network.prefix_len()
    );
    s.push_str("    }\n    track_script {\n        chk_apiserver\n    }\n");
    let _ = writeln!(s, "    notify \"{NOTIFY_SCRIPT}\"");
    s.push_str("}\n");
    s
}

fn fmt_interval(secs: f64) -> String {
    if secs.fract() == 0.0 {
        format!("{}", secs as u64)
    } else {
        let t = format!("{secs:.2}");
        t.trim_end_matches('0').to_owned()
    }
}

/// The track script: succeeds while the local K3s server holds cluster state and accepts
/// TCP on :6443 (`usr/lib/bakery/bakery-vip-check`). A server that only accepts TCP may
/// still be joining etcd, and must not take the VIP.
pub fn check_script() -> String {
    "#!/bin/sh\n\
     # bakery-image: keepalived health check - is the local K3s server a ready member of\n\
     # the cluster? (A joining server answers on :6443 before it can serve the API.)\n\
     exec /usr/lib/bakery/bakery-vip-check\n"
        .to_owned()
}

/// The notify script: keepalived calls it with TYPE NAME STATE PRIORITY.
/// The servers' instance reports `bakery: vip STATE`, the load balancers' shared
/// address (instance `registration`) `bakery: lb-address STATE`.
pub fn notify_script() -> String {
    "#!/bin/sh\n\
     # bakery-image: report VIP (and load-balancer address) state changes on the console.\n\
     what=vip\n\
     [ \"$2\" = registration ] && what=lb-address\n\
     echo \"bakery: $what $3\" >/dev/console 2>/dev/null || echo \"bakery: $what $3\"\n"
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_intervals() {
        let id = virtual_router_id("magi");
        assert!(id >= 1);
        assert_eq!(id, virtual_router_id("magi"));
        assert_eq!(priority(0), 150);
        assert_eq!(priority(2), 130);
        assert_eq!(fmt_interval(1.0), "1");
        assert_eq!(fmt_interval(0.5), "0.5");
        assert_eq!(fmt_interval(0.25), "0.25");
    }
}
