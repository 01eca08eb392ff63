//! Rendered files: snapshots, the plan, leaks, YAML structure, CRD fields.

use super::*;

#[test]
fn rendered_files_match_snapshots() {
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(42, &p).unwrap();
        for (node, files) in render_all(&p, &s) {
            insta::with_settings!({snapshot_path => "../../snapshots", prepend_module_to_snapshot => false}, {
                insta::assert_snapshot!(format!("cluster__{name}__{node}"), dump(&files, &s));
            });
        }
    }
}

#[test]
fn rendered_set_equals_the_plan() {
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(1, &p).unwrap();
        let r = render_all(&p, &s);
        let board = plan::board_files(p.image.board, p.image.partition_table, p.image.pi5);
        for n in &p.nodes {
            let planned: Vec<(String, bool)> = plan::files::node_files(&p, n, &board)
                .into_iter()
                .filter(|f| f.path.starts_with("bakery/"))
                .map(|f| (f.path, f.secret))
                .collect();
            let rendered = &r[n.name.as_str()];
            let got: Vec<&String> = rendered.keys().collect();
            let want: Vec<&String> = planned.iter().map(|(p, _)| p).collect();
            assert_eq!(got, want, "{name}/{}", n.name);
            for (path, secret) in &planned {
                let mode = rendered[path].0;
                if *secret {
                    assert_eq!(mode, 0o600, "{path} is secret");
                } else {
                    assert_ne!(mode, 0o600, "{path} is not secret but mode 0600");
                }
            }
        }
    }
}

#[test]
fn no_secret_in_non_secret_files() {
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(3, &p).unwrap();
        let needles = needles(&s);
        assert!(needles.len() > 20, "the test knows the values");
        let board = plan::board_files(p.image.board, p.image.partition_table, p.image.pi5);
        let r = render_all(&p, &s);
        for n in &p.nodes {
            for f in plan::files::node_files(&p, n, &board) {
                let Some((_, bytes)) = r[n.name.as_str()].get(&f.path) else {
                    continue;
                };
                let text = String::from_utf8_lossy(bytes);
                if f.secret {
                    continue;
                }
                for needle in &needles {
                    assert!(
                        !text.contains(needle.as_str()),
                        "secret value in {}",
                        f.path
                    );
                }
            }
        }
    }
}

#[test]
fn agents_hold_no_server_token_and_no_ca_key() {
    for name in ["bakery", "homelab"] {
        let p = load(name);
        let s = Secrets::generate_with_rng(5, &p).unwrap();
        let server_token = s.server_token().unwrap();
        let server_pw = server_token.rsplit(':').next().unwrap().to_owned();
        let ca_keys: Vec<String> = s
            .ca_files()
            .unwrap()
            .into_iter()
            .filter(|(f, _)| f.ends_with(".key"))
            .flat_map(|(_, c)| {
                String::from_utf8_lossy(c)
                    .lines()
                    .filter(|l| !l.starts_with("-----"))
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .collect();
        let r = render_all(&p, &s);
        let mut agents = 0;
        for n in p.agents() {
            agents += 1;
            for (path, (_, bytes)) in &r[n.name.as_str()] {
                let text = String::from_utf8_lossy(bytes);
                assert!(!path.starts_with("bakery/tls/"), "{path} on an agent");
                assert!(!text.contains(&server_pw), "server token in {path}");
                for k in &ca_keys {
                    assert!(!text.contains(k.as_str()), "CA key material in {path}");
                }
            }
            let token = &r[n.name.as_str()]["bakery/etc/rancher/k3s/token"].1;
            assert_eq!(token, s.agent_token().unwrap().as_bytes());
            assert!(String::from_utf8_lossy(token).contains("::node:"));
        }
        assert!(agents > 0);
        // Only the init server carries CA files.
        for n in p.servers().skip(1) {
            assert!(
                !r[n.name.as_str()]
                    .keys()
                    .any(|k| k.starts_with("bakery/tls/"))
            );
        }
    }
}

#[test]
fn every_yaml_parses_and_k3s_keys_are_known() {
    // Keys of `k3s server` / `k3s agent` this project writes (docs.k3s.io/cli/server).
    const KNOWN: &[&str] = &[
        "token-file",
        "agent-token-file",
        "tls-san",
        "cluster-cidr",
        "service-cidr",
        "flannel-backend",
        "disable",
        "write-kubeconfig-mode",
        "prefer-bundled-bin",
        "etcd-snapshot-schedule-cron",
        "etcd-snapshot-retention",
        "cluster-init",
        "server",
        "node-name",
        "node-ip",
        "flannel-iface",
        "node-label",
        "node-taint",
    ];
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(9, &p).unwrap();
        for (node, files) in render_all(&p, &s) {
            for (path, (_, bytes)) in files {
                if !path.ends_with(".yaml") {
                    continue;
                }
                let text = String::from_utf8(bytes).unwrap();
                let docs = yaml_docs(&text, &path);
                assert!(!docs.is_empty(), "{node}: {path} is empty");
                if path.contains("/rancher/k3s/") {
                    let h = docs[0].as_hash().expect("a mapping");
                    for k in h.keys() {
                        let k = k.as_str().unwrap();
                        assert!(KNOWN.contains(&k), "{path}: unknown K3s key {k}");
                    }
                }
            }
        }
        let kc = cluster::kubeconfig(&p, &s).unwrap();
        let d = &yaml_docs(&kc, "kubeconfig")[0];
        let n = p.cluster.name.as_str();
        assert_eq!(d["current-context"].as_str(), Some(n));
        assert_eq!(d["clusters"][0]["name"].as_str(), Some(n));
        assert_eq!(d["users"][0]["name"].as_str(), Some(n));
        assert_eq!(d["contexts"][0]["context"]["user"].as_str(), Some(n));
        assert_eq!(
            d["clusters"][0]["cluster"]["server"].as_str(),
            Some(format!("https://{}:6443", p.registration_address()).as_str())
        );
    }
}

#[test]
fn servers_share_a_byte_identical_cluster_file() {
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(2, &p).unwrap();
        let r = render_all(&p, &s);
        let shared: Vec<&Vec<u8>> = p
            .servers()
            .map(|n| &r[n.name.as_str()]["bakery/etc/rancher/k3s/config.yaml.d/10-cluster.yaml"].1)
            .collect();
        assert!(shared.windows(2).all(|w| w[0] == w[1]));
        let manifests = |n: &str| -> Vec<(String, Vec<u8>)> {
            r[n].iter()
                .filter(|(k, _)| k.starts_with("bakery/manifests/"))
                .map(|(k, v)| (k.clone(), v.1.clone()))
                .collect()
        };
        let first = manifests(p.init_server().name.as_str());
        for n in p.servers() {
            assert_eq!(
                manifests(n.name.as_str()),
                first,
                "manifests identical on {}",
                n.name
            );
        }
        let text = String::from_utf8_lossy(shared[0]);
        assert!(
            text.contains(&p.cluster.vip.to_string()),
            "tls-san holds the VIP"
        );
    }
}

#[test]
fn crd_objects_use_documented_fields() {
    let mut seen = BTreeMap::new();
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(4, &p).unwrap();
        let r = render_all(&p, &s);
        for (path, (_, bytes)) in &r[p.init_server().name.as_str()] {
            if !path.starts_with("bakery/manifests/") {
                continue;
            }
            for d in yaml_docs(&String::from_utf8_lossy(bytes), path) {
                let kind = d["kind"].as_str().unwrap_or_default().to_owned();
                let Some(fields) = documented(&kind) else {
                    continue;
                };
                *seen.entry(kind.clone()).or_insert(0) += 1;
                let api = d["apiVersion"].as_str().unwrap();
                match kind.as_str() {
                    "HelmChart" => {
                        assert_eq!(api, "helm.cattle.io/v1");
                        assert_eq!(d["metadata"]["namespace"].as_str(), Some("kube-system"));
                        assert!(d["spec"]["chart"].as_str().is_some());
                    }
                    _ => {
                        assert_eq!(api, "metallb.io/v1beta1");
                        assert_eq!(d["metadata"]["namespace"].as_str(), Some("metallb-system"));
                    }
                }
                for k in d["spec"].as_hash().expect("spec").keys() {
                    let k = k.as_str().unwrap();
                    assert!(
                        fields.contains(&k),
                        "{path}: {kind}.spec.{k} is not documented"
                    );
                }
                if kind == "HelmChart" && d["metadata"]["name"].as_str() == Some("metallb") {
                    let v = yaml_docs(d["spec"]["valuesContent"].as_str().unwrap(), "values");
                    assert_eq!(v[0]["speaker"]["frr"]["enabled"].as_bool(), Some(false));
                }
            }
        }
    }
    assert_eq!(
        seen.len(),
        3,
        "HelmChart, IPAddressPool, L2Advertisement all checked: {seen:?}"
    );
}

#[test]
fn keepalived_uses_vrrp3_without_auth_below_one_second() {
    let text = std::fs::read_to_string("profiles/magi.toml")
        .unwrap()
        .replace(
            "timezone = \"Asia/Tokyo\"",
            "timezone = \"Asia/Tokyo\"\nvip-advert-interval = 0.5",
        );
    let p = parse(&text);
    let s = Secrets::generate_with_rng(12, &p).unwrap();
    let r = render_all(&p, &s);
    let conf = String::from_utf8_lossy(&r["caspar"]["bakery/etc/keepalived/keepalived.conf"].1)
        .into_owned();
    assert!(
        conf.contains("vrrp_version 3") && conf.contains("advert_int 0.5"),
        "{conf}"
    );
    assert!(!conf.contains("auth_pass"), "{conf}");
    assert!(
        conf.contains("unicast_src_ip 10.0.0.11") && conf.contains("priority 130"),
        "{conf}"
    );
    let p = load("magi");
    let r = render_all(&p, &s);
    let conf = String::from_utf8_lossy(&r["melchior"]["bakery/etc/keepalived/keepalived.conf"].1)
        .into_owned();
    assert!(
        conf.contains("vrrp_version 2")
            && conf.contains("auth_pass")
            && conf.contains("priority 150")
    );
    assert!(p.nodes.iter().all(|n| n.role == Role::Server));
}

#[test]
fn user_manifests_and_charts_are_deployed() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir(d.join("apps")).unwrap();
    let own = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\ndata:\n  a: \"1\"\n";
    std::fs::write(d.join("apps/hello.yaml"), own).unwrap();
    let values = "replicaCount: 2\nservice:\n  type: LoadBalancer\n";
    std::fs::write(d.join("apps/values.yaml"), values).unwrap();
    let text = std::fs::read_to_string("profiles/homelab.toml").unwrap()
        + "\n[[manifests]]\npath = \"apps/hello.yaml\"\n\n[[charts]]\nname = \"podinfo\"\n\
           chart = \"podinfo\"\nrepo = \"https://stefanprodan.github.io/podinfo\"\n\
           version = \"6.9.0\"\nnamespace = \"podinfo\"\nvalues-file = \"apps/values.yaml\"\n";
    let prof = d.join("homelab.toml");
    std::fs::write(&prof, &text).unwrap();
    let p = profile::load(&prof).unwrap();
    let s = Secrets::generate_with_rng(14, &p).unwrap();
    let r = render_all(&p, &s);
    let server = &r["pi-server"];
    assert_eq!(server["bakery/manifests/hello.yaml"].1, own.as_bytes());
    let charts =
        String::from_utf8_lossy(&server["bakery/manifests/bakery-charts.yaml"].1).into_owned();
    let doc = &yaml_docs(&charts, "charts")[0];
    assert_eq!(doc["kind"].as_str(), Some("HelmChart"));
    assert_eq!(doc["spec"]["version"].as_str(), Some("6.9.0"));
    assert_eq!(doc["spec"]["targetNamespace"].as_str(), Some("podinfo"));
    assert_eq!(
        doc["spec"]["valuesContent"].as_str(),
        Some(values.trim_end())
    );
    for k in doc["spec"].as_hash().unwrap().keys() {
        assert!(
            documented("HelmChart")
                .unwrap()
                .contains(&k.as_str().unwrap())
        );
    }
    assert!(
        !r["pi-worker-1"].contains_key("bakery/manifests/hello.yaml"),
        "servers only"
    );

    // A user file may not take over a bakery or K3s add-on name: `check` rejects it.
    std::fs::write(d.join("apps/traefik.yaml"), own).unwrap();
    let clash = text.replace("apps/hello.yaml", "apps/traefik.yaml");
    std::fs::write(&prof, clash).unwrap();
    let Err(profile::LoadError::Invalid(e)) = profile::load(&prof) else {
        panic!("a manifest named after a K3s add-on was accepted");
    };
    assert!(e.render().contains("hint: rename"), "{}", e.render());
}

#[test]
fn control_plane_only_servers_are_tainted_and_mysql_tolerates_it() {
    let text = std::fs::read_to_string("profiles/bakery.toml")
        .unwrap()
        .replace(
            "address = \"192.168.10.11\"\n",
            "address = \"192.168.10.11\"\nworkloads = false\n",
        );
    let p = parse(&text);
    let s = Secrets::generate_with_rng(16, &p).unwrap();
    let r = render_all(&p, &s);
    let text_of = |n: &str, f: &str| String::from_utf8_lossy(&r[n][f].1).into_owned();
    let node = text_of(
        "master-01",
        "bakery/etc/rancher/k3s/config.yaml.d/20-node.yaml",
    );
    let d = &yaml_docs(&node, "20-node")[0];
    assert_eq!(
        d["node-taint"][0].as_str(),
        Some("node-role.kubernetes.io/control-plane=true:NoSchedule")
    );
    let other = text_of(
        "master-02",
        "bakery/etc/rancher/k3s/config.yaml.d/20-node.yaml",
    );
    assert!(!other.contains("node-taint"), "{other}");
    let wp = text_of("master-02", "bakery/manifests/bakery-wordpress.yaml");
    let mysql = yaml_docs(&wp, "wordpress")
        .into_iter()
        .find(|d| {
            d["kind"].as_str() == Some("Deployment")
                && d["metadata"]["name"].as_str() == Some("wordpress-mysql")
        })
        .unwrap();
    let spec = &mysql["spec"]["template"]["spec"];
    assert_eq!(
        spec["nodeSelector"]["kubernetes.io/hostname"].as_str(),
        Some("master-01")
    );
    assert_eq!(
        spec["tolerations"][0]["key"].as_str(),
        Some("node-role.kubernetes.io/control-plane")
    );
    // Rendering is a pure function of profile, secrets and build time.
    assert_eq!(render_all(&p, &s), r);
}
