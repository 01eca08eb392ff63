//! The cluster load balancer: HAProxy's config checked by haproxy itself, the shared
//! address by keepalived, what each role carries, and where nodes and the kubeconfig point.

use super::hostile::{haproxy_test, keepalived_test};
use super::*;
use bakery_image::cluster::ApiServer;

fn ci() -> Profile {
    load("ci-x86_64")
}

const TWO_LBS: &str = r#"[cluster]
name = "two"
vip = "10.0.0.100"
network = "10.0.0.0/24"
gateway = "10.0.0.1"

[[nodes]]
hostname = "s1"
role = "server"
address = "10.0.0.11"

[[nodes]]
hostname = "a1"
role = "agent"
address = "10.0.0.21"

[[nodes]]
hostname = "lb1"
role = "loadbalancer"
address = "10.0.0.5"

[[nodes]]
hostname = "lb2"
role = "loadbalancer"
address = "10.0.0.6"

[loadbalancer]
address = "10.0.0.9"
"#;

fn text(r: &Rendered, node: &str, path: &str) -> String {
    String::from_utf8(r[node][path].1.clone()).unwrap_or_else(|_| panic!("{node}:{path}"))
}

#[test]
fn haproxy_accepts_the_load_balancers_config() {
    for p in [ci(), load("bakery")] {
        let s = Secrets::generate_with_rng(3, &p).unwrap();
        let r = render_all(&p, &s);
        let lb = p.loadbalancers().next().unwrap().name.to_string();
        let cfg = text(&r, &lb, "bakery/etc/haproxy/bakery.cfg");
        haproxy_test(&lb, &cfg);
        assert_eq!(r[&lb]["bakery/etc/haproxy/bakery.cfg"].0, 0o644);
        // Every server behind the API port, checked on /ping over TLS; bakery-status too.
        for srv in p.servers() {
            let a = srv.address.ip().unwrap();
            assert!(
                cfg.contains(&format!("    server {} {a}:6443 check\n", srv.name)),
                "{cfg}"
            );
            assert!(
                cfg.contains(&format!(
                    "    server {} {a}:6440 track k3s-api/{}\n",
                    srv.name, srv.name
                )),
                "{cfg}"
            );
        }
        assert!(cfg.contains("option httpchk GET /ping\n"), "{cfg}");
        assert!(cfg.contains("check-ssl verify none"), "{cfg}");
        assert!(cfg.contains("mode tcp\n"), "{cfg}");
        // loadbalancer.ingress: 80 and 443 to Traefik's address.
        let ingress = p.ingress.address.unwrap();
        for port in [80, 443] {
            assert!(cfg.contains(&format!("    bind :{port}\n")), "{cfg}");
            assert!(
                cfg.contains(&format!("server ingress {ingress}:{port} check")),
                "{cfg}"
            );
        }
    }
}

#[test]
fn a_broken_haproxy_config_is_refused() {
    // The check can fail: haproxy -c rejects a config with an unknown keyword.
    if !have(&["haproxy"]) {
        return;
    }
    let p = ci();
    let s = Secrets::generate_with_rng(3, &p).unwrap();
    let cfg = text(
        &render_all(&p, &s),
        "ci-lb1",
        "bakery/etc/haproxy/bakery.cfg",
    )
    .replace("balance first", "balance first\n    frobnicate yes");
    let f = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(f.path(), cfg).unwrap();
    let o = Command::new("haproxy")
        .args(["-c", "-f"])
        .arg(f.path())
        .output()
        .unwrap();
    assert!(!o.status.success());
}

#[test]
fn roles_carry_their_own_files() {
    let p = ci();
    let s = Secrets::generate_with_rng(3, &p).unwrap();
    let r = render_all(&p, &s);
    let lb = &r["ci-lb1"];
    // No K3s on the load balancer: no token, node password or K3s drop-in, no manifests.
    assert!(
        !lb.keys()
            .any(|k| k.contains("rancher") || k.contains("manifests") || k.contains("keepalived")),
        "{:?}",
        lb.keys().collect::<Vec<_>>()
    );
    assert!(!r["ci-s1"].contains_key("bakery/etc/haproxy/bakery.cfg"));
    let env = text(&r, "ci-lb1", "bakery/node.env");
    assert!(env.contains("BAKERY_ROLE='loadbalancer'\n"), "{env}");
    let env = text(&r, "ci-a1", "bakery/node.env");
    assert!(env.contains("BAKERY_LB='10.99.0.5'\n"), "{env}");
    // The servers' certificate covers the registration address; the agent registers there.
    let cluster = text(
        &r,
        "ci-s1",
        "bakery/etc/rancher/k3s/config.yaml.d/10-cluster.yaml",
    );
    assert!(cluster.contains("  - \"10.99.0.5\"\n"), "{cluster}");
    let agent = text(
        &r,
        "ci-a1",
        "bakery/etc/rancher/k3s/config.yaml.d/20-node.yaml",
    );
    assert!(
        agent.contains("server: \"https://10.99.0.5:6443\"\n"),
        "{agent}"
    );
    // Traefik is K3s's default and stays enabled; servicelb is replaced by MetalLB.
    assert!(!cluster.contains("- \"traefik\""), "{cluster}");
    let none = parse(
        &std::fs::read_to_string("profiles/ci-x86_64.toml")
            .unwrap()
            .replace(
                "controller = \"traefik\"\naddress = \"10.99.0.201\"",
                "controller = \"none\"",
            )
            .replace(
                "ingress = true   # 80 and 443 to Traefik's address as well",
                "",
            )
            .replace("host = \"wordpress.ci.example\"\n", ""),
    );
    assert!(cluster::k3s::disabled(&none).contains(&"traefik"));
    let plan = plan::plan(&p);
    let lbp = plan.nodes.iter().find(|n| n.name == "ci-lb1").unwrap();
    assert!(matches!(lbp.join, plan::Join::LoadBalancer { .. }));
    assert!(!lbp.workloads);
}

#[test]
fn two_load_balancers_share_their_address_through_keepalived() {
    let p = parse(TWO_LBS);
    let s = Secrets::generate_with_rng(3, &p).unwrap();
    let r = render_all(&p, &s);
    for lb in ["lb1", "lb2"] {
        let conf = text(&r, lb, "bakery/etc/keepalived/keepalived.conf");
        keepalived_test(lb, &conf);
        assert_eq!(r[lb]["bakery/etc/keepalived/keepalived.conf"].0, 0o600);
        assert!(conf.contains("        10.0.0.9/24 dev eth0\n"), "{conf}");
        assert!(conf.contains("vrrp_instance registration"), "{conf}");
        assert!(
            !conf.contains("10.0.0.11"),
            "servers are not VRRP peers of the LBs: {conf}"
        );
        assert_eq!(r[lb]["bakery/etc/keepalived/check-haproxy.sh"].0, 0o755);
        haproxy_test(lb, &text(&r, lb, "bakery/etc/haproxy/bakery.cfg"));
    }
    let lb1 = text(&r, "lb1", "bakery/etc/keepalived/keepalived.conf");
    assert!(lb1.contains("unicast_peer {\n        10.0.0.6\n"), "{lb1}");
    let srv = text(&r, "s1", "bakery/etc/keepalived/keepalived.conf");
    let id = |c: &str| {
        c.lines()
            .find_map(|l| {
                l.trim()
                    .strip_prefix("virtual_router_id ")
                    .map(str::to_owned)
            })
            .unwrap()
    };
    assert_ne!(
        id(&lb1),
        id(&srv),
        "two VRRP instances on one LAN need their own ids"
    );
    let agent = text(
        &r,
        "a1",
        "bakery/etc/rancher/k3s/config.yaml.d/20-node.yaml",
    );
    assert!(
        agent.contains("server: \"https://10.0.0.9:6443\"\n"),
        "{agent}"
    );
    let notify = text(&r, "lb1", "bakery/etc/keepalived/notify.sh");
    assert!(notify.contains("lb-address"), "{notify}");
}

#[test]
fn the_kubeconfig_names_the_load_balancer_or_the_choice() {
    let p = ci();
    let s = Secrets::generate_with_rng(3, &p).unwrap();
    let k = cluster::kubeconfig(&p, &s).unwrap();
    assert!(k.contains("server: \"https://10.99.0.5:6443\""), "{k}");
    for (choice, want) in [
        ("vip", "10.99.0.100"),
        ("lb", "10.99.0.5"),
        ("ci-s2", "10.99.0.12"),
    ] {
        let a = ApiServer::parse(choice).address(&p).unwrap();
        assert_eq!(a.to_string(), want);
        let k = cluster::kubeconfig_for(&p, &s, a).unwrap();
        assert!(
            k.contains(&format!("server: \"https://{want}:6443\"")),
            "{k}"
        );
    }
    for (bad, msg) in [
        ("ci-a1", "not a server"),
        ("ci-lb1", "not a server"),
        ("nope", "neither vip, lb"),
    ] {
        let e = ApiServer::parse(bad).address(&p).unwrap_err();
        assert!(e.contains(msg) && e.contains("hint:"), "{e}");
    }
    // Without a load balancer, the VIP; and lb is refused with a hint.
    let magi = load("magi");
    let s = Secrets::generate_with_rng(3, &magi).unwrap();
    assert!(
        cluster::kubeconfig(&magi, &s)
            .unwrap()
            .contains(&format!("https://{}:6443", magi.cluster.vip))
    );
    assert!(
        ApiServer::LoadBalancer
            .address(&magi)
            .unwrap_err()
            .contains("no load balancer")
    );
}
