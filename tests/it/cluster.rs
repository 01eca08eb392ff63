//! Cluster assembly: rendered `bakery/` files of every node of the example profiles,
//! checked against snapshots, the plan, YAML parsers, kubernetes-validate and openssl;
//! the secrets state (modes, rebuilds, no leaks).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bakery_image::cluster::{self, Secrets};
use bakery_image::plan;
use bakery_image::profile::{self, Profile, Role};
use bakery_image::stage::{Kind, Tree};

const PROFILES: [&str; 3] = ["magi", "bakery", "homelab"];
const BUILD_TIME: i64 = 1_767_225_600;

fn load(name: &str) -> Profile {
    profile::load(Path::new(&format!("profiles/{name}.toml"))).expect("example profile loads")
}

fn parse(text: &str) -> Profile {
    profile::parse(Path::new("profiles/test.toml"), text).expect("test profile parses")
}

/// Every node's rendered files: node -> path -> (mode, bytes).
type Rendered = BTreeMap<String, BTreeMap<String, (u32, Vec<u8>)>>;

fn render_all(p: &Profile, s: &Secrets) -> Rendered {
    let pl = plan::plan(p);
    p.nodes
        .iter()
        .map(|n| {
            let t = cluster::render_node(p, &pl, s, n.name.as_str(), BUILD_TIME).unwrap();
            (n.name.to_string(), files(&t))
        })
        .collect()
}

fn files(t: &Tree) -> BTreeMap<String, (u32, Vec<u8>)> {
    t.iter()
        .filter_map(|(p, e)| match &e.kind {
            Kind::File(d) => {
                assert_eq!(e.mtime, BUILD_TIME, "{p} carries the build time");
                Some((p.to_owned(), (e.mode, d.read().unwrap())))
            }
            _ => None,
        })
        .collect()
}

fn b64(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// Secret values and their base64 forms.
fn needles(s: &Secrets) -> Vec<String> {
    let mut v = s.secret_values();
    v.extend(s.secret_values().iter().map(|x| b64(x)));
    v
}

fn redact(text: &str, s: &Secrets) -> String {
    let mut out = String::new();
    let mut in_pem = false;
    for l in text.lines() {
        if l.starts_with("-----BEGIN") {
            in_pem = true;
            out.push_str(l);
            out.push_str("\n[pem body redacted]\n");
            continue;
        }
        if l.starts_with("-----END") {
            in_pem = false;
        }
        if !in_pem {
            out.push_str(l);
            out.push('\n');
        }
    }
    let mut needles = needles(s);
    needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
    for n in needles {
        out = out.replace(&n, "[secret]");
    }
    out.replace(&s.ca_hash().unwrap(), "[ca-hash]")
}

fn dump(node: &BTreeMap<String, (u32, Vec<u8>)>, s: &Secrets) -> String {
    let mut out = String::new();
    for (path, (mode, bytes)) in node {
        out.push_str(&format!("==> {path} ({mode:o})\n"));
        out.push_str(&redact(&String::from_utf8_lossy(bytes), s));
    }
    out
}

#[test]
fn rendered_files_match_snapshots() {
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(42, &p).unwrap();
        for (node, files) in render_all(&p, &s) {
            insta::with_settings!({snapshot_path => "../snapshots", prepend_module_to_snapshot => false}, {
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
        let board = plan::board_files(p.image.board);
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
        let board = plan::board_files(p.image.board);
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

fn yaml_docs(text: &str, what: &str) -> Vec<yaml_rust2::Yaml> {
    yaml_rust2::YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("{what}: {e}"))
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
            Some(format!("https://{}:6443", p.cluster.vip).as_str())
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

// ---- CRDs kubernetes-validate cannot know: documented fields only -------------------

/// HelmChart spec fields (docs.k3s.io/add-ons/helm), IPAddressPool and L2Advertisement
/// spec fields (metallb.io/v1beta1 API reference).
fn documented(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "HelmChart" => &[
            "chart",
            "chartContent",
            "repo",
            "version",
            "targetNamespace",
            "createNamespace",
            "valuesContent",
            "valuesSecrets",
            "set",
            "repoCA",
            "repoCAConfigMap",
            "plainHTTP",
            "insecureSkipTLSVerify",
            "helmVersion",
            "bootstrap",
            "jobImage",
            "podSecurityContext",
            "securityContext",
            "backOffLimit",
            "timeout",
            "failurePolicy",
            "authSecret",
            "authPassCredentials",
            "dockerRegistrySecret",
        ],
        "IPAddressPool" => &[
            "addresses",
            "autoAssign",
            "avoidBuggyIPs",
            "serviceAllocation",
        ],
        "L2Advertisement" => &[
            "ipAddressPools",
            "ipAddressPoolSelectors",
            "nodeSelectors",
            "interfaces",
        ],
        _ => return None,
    })
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

// ---- external tools ------------------------------------------------------------------

/// A tool is available, or (outside CI) the test is skipped with a reason.
fn have(tool: &str) -> bool {
    let ok = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(std::env::var_os("CI").is_none(), "{tool} is required in CI");
        eprintln!("skipping: {tool} not installed");
    }
    ok
}

fn run(argv: &[&str], cwd: &Path) -> String {
    let o = Command::new(argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("{argv:?}: {e}"));
    assert!(
        o.status.success(),
        "{argv:?} failed: {}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn write_tree(dir: &Path, files: &BTreeMap<String, (u32, Vec<u8>)>) {
    for (path, (_, bytes)) in files {
        let f = dir.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, bytes).unwrap();
    }
}

#[test]
fn openssl_verifies_the_pki_and_the_token_hash() {
    if !have("openssl") {
        return;
    }
    let p = load("magi");
    let s = Secrets::generate_with_rng(11, &p).unwrap();
    let r = render_all(&p, &s);
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    write_tree(d, &r["melchior"]);
    let tls = d.join("bakery/tls");
    for ca in [
        "server-ca",
        "client-ca",
        "request-header-ca",
        "etcd/peer-ca",
        "etcd/server-ca",
    ] {
        let crt = format!("{ca}.crt");
        let out = run(&["openssl", "verify", "-CAfile", &crt, &crt], &tls);
        assert!(out.contains(": OK"), "{ca}: {out}");
        let text = run(&["openssl", "x509", "-in", &crt, "-noout", "-text"], &tls);
        assert!(text.contains("CA:TRUE"), "{ca} is a CA");
        assert!(text.contains("Certificate Sign"), "{ca} may sign");
        // The key belongs to the certificate.
        let a = run(&["openssl", "x509", "-in", &crt, "-noout", "-pubkey"], &tls);
        let b = run(
            &["openssl", "pkey", "-in", &format!("{ca}.key"), "-pubout"],
            &tls,
        );
        assert_eq!(a, b, "{ca}.key matches {ca}.crt");
    }
    let rsa = run(
        &[
            "openssl",
            "rsa",
            "-in",
            "service.key",
            "-check",
            "-noout",
            "-text",
        ],
        &tls,
    );
    assert!(
        rsa.contains("RSA key ok") && rsa.contains("2048 bit"),
        "{rsa}"
    );
    assert!(
        std::fs::read_to_string(tls.join("service.key"))
            .unwrap()
            .starts_with("-----BEGIN RSA PRIVATE KEY-----")
    );

    // The admin certificate, as the kubeconfig carries it, verifies against the client CA.
    let kc = cluster::kubeconfig(&p, &s).unwrap();
    let d0 = &yaml_docs(&kc, "kubeconfig")[0];
    let dec = |v: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(v).unwrap()
    };
    std::fs::write(
        d.join("admin.crt"),
        dec(d0["users"][0]["user"]["client-certificate-data"]
            .as_str()
            .unwrap()),
    )
    .unwrap();
    std::fs::write(
        d.join("ca.crt"),
        dec(d0["clusters"][0]["cluster"]["certificate-authority-data"]
            .as_str()
            .unwrap()),
    )
    .unwrap();
    let out = run(
        &[
            "openssl",
            "verify",
            "-CAfile",
            "bakery/tls/client-ca.crt",
            "-purpose",
            "sslclient",
            "admin.crt",
        ],
        d,
    );
    assert!(out.contains(": OK"), "{out}");
    let subj = run(
        &[
            "openssl",
            "x509",
            "-in",
            "admin.crt",
            "-noout",
            "-subject",
            "-ext",
            "extendedKeyUsage",
        ],
        d,
    );
    assert!(
        subj.contains("O=system:masters") || subj.contains("O = system:masters"),
        "{subj}"
    );
    assert!(
        subj.contains("CN=system:admin") || subj.contains("CN = system:admin"),
        "{subj}"
    );
    assert!(subj.contains("TLS Web Client Authentication"), "{subj}");
    // Backdated one day: notBefore is a day before the (fixed) creation time.
    let nb = run(
        &[
            "openssl",
            "x509",
            "-in",
            "admin.crt",
            "-noout",
            "-startdate",
        ],
        d,
    );
    assert!(nb.contains("Dec 31 00:00:00 2025 GMT"), "{nb}");
    assert_eq!(
        std::fs::read(d.join("ca.crt")).unwrap(),
        std::fs::read(tls.join("server-ca.crt")).unwrap()
    );

    // Token hash: server-ca.crt holds ONE self-signed certificate, so K3s hashes the
    // file's bytes (hashCA, pkg/clientaccess/token.go); recompute with openssl.
    let pem = std::fs::read_to_string(tls.join("server-ca.crt")).unwrap();
    assert_eq!(pem.matches("BEGIN CERTIFICATE").count(), 1);
    let dgst = run(&["openssl", "dgst", "-sha256", "-r", "server-ca.crt"], &tls);
    let hash = dgst.split_whitespace().next().unwrap();
    for (node, token_file) in [("melchior", "token"), ("melchior", "agent-token")] {
        let tok = String::from_utf8(
            r[node][&format!("bakery/etc/rancher/k3s/{token_file}")]
                .1
                .clone(),
        )
        .unwrap();
        assert!(
            tok.starts_with(&format!("K10{hash}::")),
            "{token_file}: hash matches"
        );
    }
    let tok = String::from_utf8(r["balthazar"]["bakery/etc/rancher/k3s/token"].1.clone()).unwrap();
    assert!(tok.starts_with(&format!("K10{hash}::server:")));
    // (For a CA chain K3s would hash the root's DER instead; not our topology.)
    let der = Command::new("sh")
        .args([
            "-c",
            "openssl x509 -in server-ca.crt -outform DER | openssl dgst -sha256 -r",
        ])
        .current_dir(&tls)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&der.stdout).starts_with(hash));
}

fn validate_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/validate-manifests")
}

#[test]
fn core_manifests_pass_kubernetes_validate() {
    if !have("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(6, &p).unwrap();
        let r = render_all(&p, &s);
        for (path, (_, bytes)) in &r[p.init_server().name.as_str()] {
            if let Some(m) = path.strip_prefix("bakery/manifests/") {
                let f = tmp.path().join(format!("{name}-{m}"));
                std::fs::write(&f, bytes).unwrap();
                files.push(f);
            }
        }
    }
    assert!(files.len() >= 8);
    let o = Command::new(validate_script())
        .args(&files)
        .env(
            "K8S_VERSION",
            bakery_image::cluster::manifests::versions::KUBERNETES_VERSION,
        )
        .output()
        .expect("ci/validate-manifests runs");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "kubernetes-validate failed:\n{out}");
    assert!(!out.contains("ERROR"), "{out}");
    // Core kinds were really checked against 1.36; only the CRDs are unknown to the tool.
    for r in [
        "storageclass/nfs",
        "namespace/wordpress",
        "secret/mysql-pass",
        "deployment/wordpress-mysql",
        "deployment/wordpress",
        "service/wordpress",
        "persistentvolumeclaim/wp-pv-claim",
    ] {
        assert!(
            out.contains(&format!("passed for resource {r} against version 1.36")),
            "{r}: {out}"
        );
    }
    for l in out.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            ["HelmChart", "IPAddressPool", "L2Advertisement"]
                .iter()
                .any(|k| l.contains(&format!("kind {k} "))),
            "unexpected warning: {l}"
        );
    }
    // And it does fail on a broken object (the check can fail).
    let bad = tmp.path().join("bad.yaml");
    std::fs::write(
        &bad,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: x\nspec:\n  ports: 80\n",
    )
    .unwrap();
    let o = Command::new(validate_script()).arg(&bad).output().unwrap();
    assert!(!o.status.success(), "a broken Service must not validate");
}

// ---- secrets state ------------------------------------------------------------------

fn read_all(dir: &Path) -> BTreeMap<String, (u32, Vec<u8>)> {
    use std::os::unix::fs::PermissionsExt;
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let md = e.metadata().unwrap();
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mode = md.permissions().mode() & 0o777;
            if md.is_dir() {
                assert_eq!(mode, 0o700, "{rel}/ is 0700");
                stack.push(e.path());
            } else {
                m.insert(rel, (mode, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    m
}

#[test]
fn secrets_are_private_and_survive_rebuilds() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("magi.secrets");
    let p = load("magi");
    let s1 = Secrets::load_or_create(&dir, &p).unwrap();
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let first = read_all(&dir);
    assert!(first.len() >= 11 + 2 + 2 + 3 * 3 + 1 + 2);
    for (f, (mode, _)) in &first {
        assert_eq!(*mode, 0o600, "{f} is 0600");
    }
    let s2 = Secrets::load_or_create(&dir, &p).unwrap();
    assert_eq!(
        read_all(&dir),
        first,
        "a rebuild keeps every secret byte-identical"
    );
    assert_eq!(s1.server_token().unwrap(), s2.server_token().unwrap());
    assert_eq!(s1.secret_values(), s2.secret_values());

    // A new node gets new secrets; nothing existing changes.
    let text = std::fs::read_to_string("profiles/magi.toml").unwrap()
        + "\n[[nodes]]\nhostname = \"leliel\"\nrole = \"agent\"\naddress = \"10.0.0.20\"\n";
    let p2 = parse(&text);
    Secrets::load_or_create(&dir, &p2).unwrap();
    let after = read_all(&dir);
    for (f, v) in &first {
        assert_eq!(after.get(f), Some(v), "{f} untouched");
    }
    assert!(after.contains_key("nodes/leliel/node-password"));
    assert!(after.contains_key("nodes/leliel/ssh_host_ed25519_key"));
    assert_eq!(after.len(), first.len() + 3);

    // Rotation replaces exactly the item.
    cluster::inventory::rotate(&dir, &p2, "host-key/leliel").unwrap();
    let rotated = read_all(&dir);
    assert_ne!(
        rotated["nodes/leliel/ssh_host_ed25519_key"],
        after["nodes/leliel/ssh_host_ed25519_key"]
    );
    for (f, v) in &after {
        if !f.starts_with("nodes/leliel/ssh_host") {
            assert_eq!(rotated.get(f), Some(v), "{f} untouched by the rotation");
        }
    }
}

#[test]
fn secret_values_never_reach_listings_or_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let prof = tmp.path().join("magi.toml");
    std::fs::copy("profiles/magi.toml", &prof).unwrap();
    // Through the library the CLI calls (`secrets PROFILE [--rotate ITEM]`): the shared
    // cargo target directory of this project's helpers makes the binary itself racy.
    let p = profile::load(&prof).unwrap();
    let dir = &p.secrets_dir;
    let out = cluster::inventory::rotate(dir, &p, "keepalived").unwrap()
        + &cluster::inventory::list(dir, &p).unwrap();
    assert!(
        out.contains("host-key/caspar") && out.contains("SHA256:"),
        "{out}"
    );
    let s = Secrets::load_or_create(dir, &p).unwrap();
    let listing = cluster::inventory::list(dir, &p).unwrap();
    let e = cluster::inventory::rotate(dir, &p, "nope").unwrap_err();
    assert_eq!(bakery_image::app::exit_code(&e), 1);
    let bad = format!("{e:#}");
    // An incomplete item: the error names files, never contents.
    std::fs::remove_file(p.secrets_dir.join("mysql/password")).unwrap();
    let err = format!(
        "{:#}",
        Secrets::load_or_create(&p.secrets_dir, &p).unwrap_err()
    );
    assert!(err.contains("incomplete") && err.contains("hint:"), "{err}");
    let debug = format!("{s:?}");
    for needle in needles(&s) {
        for (what, text) in [
            ("listing", &listing),
            ("error", &bad),
            ("error", &err),
            ("debug", &debug),
            ("rotate", &out),
        ] {
            assert!(
                !text.contains(needle.as_str()),
                "a secret value appears in the {what}"
            );
        }
    }
}

#[test]
fn git_warns_about_unignored_secrets() {
    if !have("git") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    run(&["git", "init", "-q"], tmp.path());
    let dir = tmp.path().join("magi.secrets");
    std::fs::create_dir(&dir).unwrap();
    assert!(cluster::secrets::git_warning(&dir).is_some());
    std::fs::write(tmp.path().join(".gitignore"), "*.secrets/\n").unwrap();
    assert!(cluster::secrets::git_warning(&dir).is_none());
    let outside = tempfile::tempdir().unwrap();
    assert!(cluster::secrets::git_warning(&outside.path().join("x.secrets")).is_none());
}

#[test]
fn outputs_are_written_with_modes() {
    use std::os::unix::fs::PermissionsExt;
    let p = load("homelab");
    let s = Secrets::generate_with_rng(8, &p).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let paths = cluster::write_outputs(tmp.path(), &p, &s).unwrap();
    let mode = |f: &Path| std::fs::metadata(f).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&paths[0]), 0o600);
    assert_eq!(mode(&paths[1]), 0o644);
    let kh = std::fs::read_to_string(&paths[1]).unwrap();
    assert!(kh.contains("pi-server,192.168.1.40 ssh-ed25519 "), "{kh}");
    assert!(
        kh.contains("\npi-worker-2 ssh-ed25519 "),
        "DHCP node by name only: {kh}"
    );
    for needle in needles(&s) {
        assert!(!kh.contains(needle.as_str()));
    }
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
fn keepalived_accepts_every_rendered_config() {
    if !have("apt-get") || !have("dpkg-deb") {
        return;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/keepalived-config-test");
    let tmp = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    let sub_second = std::fs::read_to_string("profiles/magi.toml")
        .unwrap()
        .replace(
            "timezone = \"Asia/Tokyo\"",
            "timezone = \"Asia/Tokyo\"\nvip-advert-interval = 0.25",
        );
    let profiles: Vec<(String, Profile)> = PROFILES
        .iter()
        .map(|n| (n.to_string(), load(n)))
        .chain([("magi-v3".to_owned(), parse(&sub_second))])
        .collect();
    for (name, p) in &profiles {
        let s = Secrets::generate_with_rng(13, p).unwrap();
        for (node, r) in render_all(p, &s) {
            let Some((_, conf)) = r.get("bakery/etc/keepalived/keepalived.conf") else {
                continue;
            };
            // The scripts live in /etc/keepalived on the node; keepalived -t wants them
            // to exist, root-owned: use /bin/true here.
            let conf = String::from_utf8_lossy(conf)
                .replace("/etc/keepalived/check-apiserver.sh", "/bin/true")
                .replace("/etc/keepalived/notify.sh", "/bin/true");
            let f = tmp.path().join(format!("{name}-{node}.conf"));
            std::fs::write(&f, conf).unwrap();
            files.push(f);
        }
    }
    assert_eq!(files.len(), 3 + 3 + 1 + 3);
    let o = Command::new(&script)
        .args(&files)
        .output()
        .expect("the script runs");
    assert!(
        o.status.success(),
        "keepalived rejected a config:\n{}",
        String::from_utf8_lossy(&o.stderr)
    );
    // The check can fail: a misspelt keyword is rejected.
    let bad = tmp.path().join("bad.conf");
    let text = std::fs::read_to_string(&files[0])
        .unwrap()
        .replace("priority", "priorty");
    std::fs::write(&bad, text).unwrap();
    assert!(
        !Command::new(&script)
            .arg(&bad)
            .output()
            .unwrap()
            .status
            .success()
    );
}

#[test]
fn api_check_script_detects_the_local_port() {
    // In a private network namespace (loopback only), with and without a listener.
    let ns_ok = Command::new("unshare")
        .args(["-rn", "true"])
        .status()
        .is_ok_and(|s| s.success());
    if !ns_ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "unshare -rn is required in CI"
        );
        eprintln!("skipping: no user/network namespaces here");
        return;
    }
    if !have("python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = tmp.path().join("check.sh");
    std::fs::write(&script, cluster::keepalived::check_script()).unwrap();
    let py = format!(
        "import socket,subprocess\n\
         down = subprocess.call(['sh', '{s}'])\n\
         l = socket.socket(); l.bind(('127.0.0.1', 6443)); l.listen(1)\n\
         up = subprocess.call(['sh', '{s}'])\n\
         print(down, up)\n",
        s = script.display()
    );
    let o = Command::new("unshare")
        .args([
            "-rn",
            "sh",
            "-c",
            "ip link set lo up 2>/dev/null; exec python3 -c \"$0\"",
        ])
        .arg(&py)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    let codes: Vec<&str> = out.split_whitespace().collect();
    assert_eq!(
        codes.len(),
        2,
        "{out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_ne!(codes[0], "0", "no listener: the check fails");
    assert_eq!(
        codes[1], "0",
        "a listener on 127.0.0.1:6443: the check passes"
    );
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

    // A user file may not take over a bakery or K3s add-on name.
    std::fs::write(d.join("apps/traefik.yaml"), own).unwrap();
    let clash = text.replace("apps/hello.yaml", "apps/traefik.yaml");
    std::fs::write(&prof, clash).unwrap();
    let p = profile::load(&prof).unwrap();
    let pl = plan::plan(&p);
    let e = cluster::render_node(&p, &pl, &s, "pi-server", BUILD_TIME).unwrap_err();
    assert_eq!(bakery_image::app::exit_code(&e), 1);
    assert!(format!("{e:#}").contains("hint: rename"), "{e:#}");
}

#[test]
fn ssh_keygen_agrees_with_the_host_keys() {
    if !have("ssh-keygen") {
        return;
    }
    let p = load("bakery");
    let s = Secrets::generate_with_rng(15, &p).unwrap();
    let r = render_all(&p, &s);
    let tmp = tempfile::tempdir().unwrap();
    let mut seen = std::collections::BTreeSet::new();
    for n in &p.nodes {
        let f = tmp.path().join(n.name.as_str());
        std::fs::write(
            &f,
            &r[n.name.as_str()]["bakery/etc/ssh/ssh_host_ed25519_key"].1,
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let derived = run(&["ssh-keygen", "-y", "-f", f.to_str().unwrap()], tmp.path());
        let public = String::from_utf8_lossy(
            &r[n.name.as_str()]["bakery/etc/ssh/ssh_host_ed25519_key.pub"].1,
        )
        .into_owned();
        let key = |l: &str| l.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
        assert_eq!(
            key(&derived),
            key(&public),
            "{}: .pub matches the private key",
            n.name
        );
        assert!(public.starts_with("ssh-ed25519 "));
        assert!(seen.insert(key(&public)), "host keys differ per node");
    }
}
