//! `role = "loadbalancer"`, `[loadbalancer]` and `[ingress]`: every rule has a bad case
//! whose error names the key and the line (lines counted in BASE + the extra text).

use std::path::Path;

use bakery_image::profile::{self, IngressController};

use super::{BASE, errors, one, with_nodes};

const LB: &str = "[[nodes]]\nhostname = \"lb1\"\nrole = \"loadbalancer\"\naddress = \"10.0.0.5\"\n";
const LB2: &str =
    "[[nodes]]\nhostname = \"lb2\"\nrole = \"loadbalancer\"\naddress = \"10.0.0.6\"\n";

#[test]
fn one_loadbalancer_is_the_registration_address() {
    let p = profile::parse(Path::new("ok.toml"), &with_nodes(LB)).unwrap();
    let lb = p.loadbalancer.as_ref().unwrap();
    assert_eq!(lb.address.to_string(), "10.0.0.5");
    assert!(!lb.shared);
    assert_eq!(p.registration_address().to_string(), "10.0.0.5");
    assert_eq!(p.ingress.controller, IngressController::Traefik);
    // Without a load balancer the VIP is.
    let p = profile::parse(Path::new("ok.toml"), BASE).unwrap();
    assert_eq!(p.registration_address().to_string(), "10.0.0.100");
}

#[test]
fn two_loadbalancers_share_an_address() {
    let t = with_nodes(&format!(
        "{LB}\n{LB2}\n[loadbalancer]\naddress = \"10.0.0.9\"\n"
    ));
    let p = profile::parse(Path::new("ok.toml"), &t).unwrap();
    assert!(p.loadbalancer.as_ref().unwrap().shared);
    assert_eq!(p.registration_address().to_string(), "10.0.0.9");
}

#[test]
fn two_loadbalancers_without_an_address() {
    one(
        &with_nodes(&format!("{LB}\n{LB2}\n[loadbalancer]\ningress = false\n")),
        "loadbalancer",
        22,
        "need the address they share",
    );
}

#[test]
fn one_loadbalancer_with_a_shared_address() {
    one(
        &with_nodes(&format!("{LB}\n[loadbalancer]\naddress = \"10.0.0.9\"\n")),
        "loadbalancer.address",
        18,
        "this profile has one",
    );
}

#[test]
fn three_loadbalancers() {
    let lb3 = "[[nodes]]\nhostname = \"lb3\"\nrole = \"loadbalancer\"\naddress = \"10.0.0.7\"\n";
    let d = errors(&with_nodes(&format!(
        "{LB}\n{LB2}\n{lb3}\n[loadbalancer]\naddress = \"10.0.0.9\"\n"
    )));
    assert!(
        d.items
            .iter()
            .any(|i| i.key.to_string() == "nodes[3].role"
                && i.message.contains("3 load-balancer nodes")),
        "{}",
        d.render()
    );
}

#[test]
fn loadbalancer_without_static_address() {
    one(
        &with_nodes(&LB.replace("10.0.0.5", "dhcp")),
        "nodes[1].address",
        15,
        "load balancer \"lb1\" has no static address",
    );
}

#[test]
fn shared_address_is_the_vip() {
    one(
        &with_nodes(&format!(
            "{LB}\n{LB2}\n[loadbalancer]\naddress = \"10.0.0.100\"\n"
        )),
        "loadbalancer.address",
        23,
        "is the servers' VIP",
    );
}

#[test]
fn shared_address_is_a_servers() {
    one(
        &with_nodes(&format!(
            "{LB}\n{LB2}\n[loadbalancer]\naddress = \"10.0.0.11\"\n"
        )),
        "loadbalancer.address",
        23,
        "is node s1's address",
    );
}

#[test]
fn shared_address_in_a_pool() {
    one(
        &with_nodes(&format!(
            "{LB}\n{LB2}\n[loadbalancer]\naddress = \"10.0.0.205\"\n\n[metallb]\naddresses = [\"10.0.0.200-10.0.0.210\"]\n"
        )),
        "loadbalancer.address",
        23,
        "in MetalLB pool \"default\"",
    );
}

#[test]
fn loadbalancer_address_in_a_pool() {
    one(
        &with_nodes(&format!(
            "{LB}\n[metallb]\naddresses = [\"10.0.0.2-10.0.0.9\"]\n"
        )),
        "metallb.addresses[0]",
        18,
        "contains node lb1's address",
    );
}

#[test]
fn loadbalancer_with_no_server() {
    let t = BASE.replace("role = \"server\"", "role = \"agent\"") + "\n" + LB;
    let d = errors(&t);
    let i = d
        .items
        .iter()
        .find(|i| i.key.to_string() == "nodes[1].role")
        .unwrap_or_else(|| panic!("{}", d.render()));
    assert!(i.message.contains("no server behind it"), "{}", i.message);
    assert!(d.render().contains("bad.toml:14:"), "{}", d.render());
    assert!(i.hint.is_some());
}

#[test]
fn kubernetes_settings_on_a_loadbalancer_do_nothing() {
    one(
        &with_nodes(&format!("{LB}labels = {{ a = \"b\" }}\n")),
        "nodes[1].labels",
        16,
        "labels on a load balancer do nothing",
    );
    one(
        &with_nodes(&format!("{LB}workloads = true\n")),
        "nodes[1].workloads",
        16,
        "workloads on a load balancer do nothing",
    );
}

#[test]
fn loadbalancer_table_without_loadbalancer_nodes() {
    one(
        &with_nodes("[loadbalancer]\ningress = true\n"),
        "loadbalancer",
        12,
        "no node has role = \"loadbalancer\"",
    );
}

#[test]
fn unknown_role_hints_loadbalancer() {
    let d = errors(&with_nodes(
        &LB.replace("\"loadbalancer\"", "\"load-balancer\""),
    ));
    assert_eq!(d.items.len(), 1, "{}", d.render());
    assert_eq!(
        d.items[0].hint.as_deref(),
        Some("write role = \"loadbalancer\"")
    );
}

#[test]
fn ingress_forwarding_needs_a_fixed_ingress_address() {
    one(
        &with_nodes(&format!("{LB}\n[loadbalancer]\ningress = true\n")),
        "loadbalancer.ingress",
        18,
        "whose address is not fixed",
    );
    one(
        &with_nodes(&format!(
            "{LB}\n[loadbalancer]\ningress = true\n\n[ingress]\ncontroller = \"none\"\n"
        )),
        "loadbalancer.ingress",
        18,
        "controller = \"none\"",
    );
}

#[test]
fn ingress_controller_and_address() {
    one(
        &with_nodes("[ingress]\ncontroller = \"nginx\"\n"),
        "ingress.controller",
        13,
        "unknown ingress controller \"nginx\"",
    );
    one(
        &with_nodes("[ingress]\naddress = \"10.0.0.201\"\n"),
        "ingress.address",
        13,
        "not in any MetalLB pool",
    );
    one(
        &with_nodes(
            "[metallb]\naddresses = [\"10.0.0.200-10.0.0.210\"]\n\n[ingress]\ncontroller = \"none\"\naddress = \"10.0.0.201\"\n",
        ),
        "ingress.address",
        17,
        "does nothing",
    );
    let p = profile::parse(
        Path::new("ok.toml"),
        &with_nodes(
            "[metallb]\naddresses = [\"10.0.0.200-10.0.0.210\"]\n\n[ingress]\naddress = \"10.0.0.201\"\n",
        ),
    )
    .unwrap();
    assert_eq!(p.ingress.address.unwrap().to_string(), "10.0.0.201");
}

const WP: &str = "[storage.nfs]\nserver = \"s1\"\npath = \"/srv/nfs\"\n\n[metallb]\naddresses = [\"10.0.0.200-10.0.0.210\"]\n\n[apps.wordpress]\n";

#[test]
fn wordpress_host() {
    let p = profile::parse(
        Path::new("ok.toml"),
        &with_nodes(&format!("{WP}host = \"blog.example.com\"\n")),
    )
    .unwrap();
    assert_eq!(
        p.wordpress.unwrap().host.as_deref(),
        Some("blog.example.com")
    );
    for (bad, msg) in [
        ("Blog.Example", "is not a DNS name"),
        ("10.0.0.201", "is an IP address"),
        ("blog.example.com\\n# x", "is not a DNS name"),
        ("blog.example.com:80", "is not a DNS name"),
    ] {
        one(
            &with_nodes(&format!("{WP}host = \"{bad}\"\n")),
            "apps.wordpress.host",
            20,
            msg,
        );
    }
    one(
        &with_nodes(&format!(
            "{WP}host = \"blog.example.com\"\n\n[ingress]\ncontroller = \"none\"\n"
        )),
        "apps.wordpress.host",
        20,
        "needs an ingress controller",
    );
    one(
        &with_nodes(&format!(
            "{WP}host = \"blog.example.com\"\naddress = \"10.0.0.200\"\n"
        )),
        "apps.wordpress.address",
        21,
        "does nothing with host",
    );
}
