//! The cluster load balancer: `haproxy.cfg` of the `role = "loadbalancer"` nodes and, with
//! two of them, the keepalived configuration that moves their shared address.
//!
//! HAProxy runs in TCP mode (TLS passes through: clients verify the servers' own
//! certificates, which carry the registration address in `tls-san`). Each server is
//! health-checked on the API itself, not just its port: `GET /ping` over TLS without
//! certificate verification (K3s serves `/ping` on :6443 to anyone). `balance first`
//! sends every connection to the first server that passes, so one server answers at a
//! time and a failed one is replaced by the next as soon as its checks fail (two, the
//! second 0.5 s after the first).
//! bakery-status (TCP 6440, the first-boot join decision) is forwarded alongside, its
//! servers tracking the API checks. With `loadbalancer.ingress`, 80 and 443 go to the
//! ingress controller's address. Every value written is an address, a port or a checked
//! label ([`word`] keeps anything else out), so no profile text becomes configuration.
//! HAProxy drops to Debian's `haproxy` user (made by its postinst in a debootstrapped
//! base, by `debian::users` in one assembled from packages).
//! Inputs: the profile and the node; outputs: text.

use std::fmt::Write;

use super::keepalived;
use crate::plan::ids;
use crate::profile::{Node, Profile};

/// Paths on the node (bakery-node installs `bakery/etc/...` into `/etc/...`); Debian's
/// own `/etc/haproxy/haproxy.cfg` stays unused (haproxy.service's bakery drop-in).
pub const CONFIG: &str = "/etc/haproxy/bakery.cfg";
pub const CHECK_SCRIPT: &str = "/etc/keepalived/check-haproxy.sh";
/// Ports: the Kubernetes API (and K3s supervisor) and bakery-status.
pub const API_PORT: u16 = 6443;
pub const STATUS_PORT: u16 = 6440;
/// Health checks: every `INTER_MS`, every `FASTINTER_MS` once a check has failed (or
/// passed on a down server), down after `FALL` failures, up after `RISE` passes. A check
/// connects within min(`timeout connect`, inter) = 2 s and may then take `timeout check`
/// (3 s) for the TLS handshake and the answer: a busy server (or one under emulation,
/// 0.8 s per handshake) must not flap, nor spend its time answering checks.
pub const INTER_MS: u32 = 2000;
pub const FASTINTER_MS: u32 = 500;
pub const FALL: u32 = 2;
pub const RISE: u32 = 2;

/// A token safe in haproxy.cfg: letters, digits and `.-_:` only (anything else becomes
/// `_`). Names and addresses reach here already checked; this keeps the file's grammar
/// (spaces split words, `#` starts a comment, a newline ends a line) out of reach anyway.
pub fn word(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `bakery.cfg` of a load-balancer node.
pub fn config(p: &Profile, node: &Node) -> String {
    let mut s = format!(
        "# bakery-image: the cluster load balancer of cluster {} (node {}).\n\
         # The API ({API_PORT}) and bakery-status ({STATUS_PORT}) of every server; checks: GET /ping over TLS.\n",
        word(p.cluster.name.as_str()),
        word(node.name.as_str())
    );
    s.push_str(
        "global\n    log stderr format short local0 notice\n    maxconn 4096\n    \
         user haproxy\n    group haproxy\n\n",
    );
    s.push_str(
        "defaults\n    mode tcp\n    log global\n    option dontlognull\n    \
         timeout connect 2s\n    timeout client 1h\n    timeout server 1h\n    \
         timeout check 3s\n    retries 2\n    option redispatch\n\n",
    );
    let servers: Vec<(String, String)> = p
        .servers()
        .filter_map(|n| {
            n.address
                .ip()
                .map(|a| (word(n.name.as_str()), a.to_string()))
        })
        .collect();
    let _ = writeln!(
        s,
        "frontend k3s-api\n    bind :{API_PORT}\n    default_backend k3s-api\n"
    );
    s.push_str("backend k3s-api\n    balance first\n    option httpchk GET /ping\n    http-check expect status 200\n");
    let _ = writeln!(
        s,
        "    default-server inter {INTER_MS}ms fastinter {FASTINTER_MS}ms fall {FALL} rise {RISE} check-ssl verify none on-marked-down shutdown-sessions"
    );
    for (name, addr) in &servers {
        let _ = writeln!(s, "    server {name} {addr}:{API_PORT} check");
    }
    let _ = writeln!(
        s,
        "\nfrontend bakery-status\n    bind :{STATUS_PORT}\n    default_backend bakery-status\n"
    );
    s.push_str("backend bakery-status\n    balance first\n");
    for (name, addr) in &servers {
        let _ = writeln!(
            s,
            "    server {name} {addr}:{STATUS_PORT} track k3s-api/{name}"
        );
    }
    if let (Some(lb), Some(ingress)) = (&p.loadbalancer, p.ingress.address)
        && lb.ingress
    {
        for (port, name) in [(80, "http"), (443, "https")] {
            let _ = writeln!(
                s,
                "\nfrontend ingress-{name}\n    bind :{port}\n    default_backend ingress-{name}\n\n\
                 backend ingress-{name}\n    server ingress {ingress}:{port} check inter 2s"
            );
        }
    }
    s
}

/// The VRRP router id of the load balancers' shared address: derived like the servers'
/// VIP id, never equal to it (both instances share the LAN).
pub fn virtual_router_id(cluster: &str) -> u8 {
    let servers = keepalived::virtual_router_id(cluster);
    let id = (ids::serial32(cluster, "", "vrrp-router-id-lb") % 255) as u8 + 1;
    if id == servers { id % 255 + 1 } else { id }
}

/// `keepalived.conf` of a load-balancer node sharing the registration address.
pub fn keepalived_conf(p: &Profile, node: &Node, auth_pass: &str) -> String {
    let lbs: Vec<&Node> = p.loadbalancers().collect();
    let index = lbs.iter().position(|n| n.name == node.name).unwrap_or(0);
    let own = node.address.ip().map(|a| a.to_string()).unwrap_or_default();
    let address = p.registration_address();
    let iface = word(&p.cluster.interface);
    let mut s = format!(
        "# bakery-image: the registration address {address} of cluster {} (load balancer {} of {}).\n",
        word(p.cluster.name.as_str()),
        index + 1,
        lbs.len()
    );
    s.push_str("global_defs {\n");
    let _ = writeln!(s, "    router_id {}", word(node.name.as_str()));
    s.push_str("    enable_script_security\n    script_user root\n    vrrp_version 2\n}\n\n");
    s.push_str("vrrp_script chk_haproxy {\n");
    let _ = writeln!(s, "    script \"{CHECK_SCRIPT}\"");
    s.push_str("    interval 1\n    timeout 2\n    fall 2\n    rise 2\n}\n\n");
    s.push_str("vrrp_instance registration {\n    state BACKUP\n");
    let _ = writeln!(s, "    interface {iface}");
    let _ = writeln!(
        s,
        "    virtual_router_id {}",
        virtual_router_id(p.cluster.name.as_str())
    );
    let _ = writeln!(s, "    priority {}", keepalived::priority(index));
    s.push_str("    advert_int 1\n");
    let _ = writeln!(s, "    unicast_src_ip {own}");
    s.push_str("    unicast_peer {\n");
    for peer in lbs
        .iter()
        .filter(|n| n.name != node.name)
        .filter_map(|n| n.address.ip())
    {
        let _ = writeln!(s, "        {peer}");
    }
    s.push_str("    }\n    authentication {\n        auth_type PASS\n");
    let _ = writeln!(s, "        auth_pass {}", word(auth_pass));
    s.push_str("    }\n    virtual_ipaddress {\n");
    let _ = writeln!(
        s,
        "        {address}/{} dev {iface}",
        p.cluster.network.prefix_len()
    );
    s.push_str("    }\n    track_script {\n        chk_haproxy\n    }\n");
    let _ = writeln!(s, "    notify \"{}\"", keepalived::NOTIFY_SCRIPT);
    s.push_str("}\n");
    s
}

/// The track script of the shared address: HAProxy runs and listens on the API port.
pub fn check_script() -> String {
    format!(
        "#!/bin/sh\n\
         # bakery-image: keepalived health check - does HAProxy accept the API port here?\n\
         exec timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/{API_PORT}'\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_keep_the_grammar_out() {
        assert_eq!(word("ci-s1"), "ci-s1");
        assert_eq!(word("10.0.0.1"), "10.0.0.1");
        assert_eq!(word("a b\n# c"), "a_b___c");
    }

    #[test]
    fn router_ids_differ() {
        for name in ["magi", "bakery", "ci", "homelab", "x", "a1", "b2"] {
            assert_ne!(
                virtual_router_id(name),
                keepalived::virtual_router_id(name),
                "{name}"
            );
        }
    }
}
