//! Checks by independent tools: openssl, kubernetes-validate, keepalived, ssh-keygen.

use super::*;

fn write_tree(dir: &Path, files: &BTreeMap<String, (u32, Vec<u8>)>) {
    for (path, (_, bytes)) in files {
        let f = dir.join(path);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(f, bytes).unwrap();
    }
}

#[test]
fn openssl_verifies_the_pki_and_the_token_hash() {
    if !have(&["openssl"]) {
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
    if !have(&["python3"]) {
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
        // bakery.toml serves WordPress by host name through Traefik.
        "ingress/wordpress",
    ] {
        assert!(
            out.contains(&format!("passed for resource {r} against version 1.36")),
            "{r}: {out}"
        );
    }
    for l in out.lines().filter(|l| l.starts_with("WARN")) {
        assert!(
            [
                "HelmChart",
                "HelmChartConfig",
                "IPAddressPool",
                "L2Advertisement"
            ]
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

#[test]
fn keepalived_accepts_every_rendered_config() {
    if !have(&["apt-get"]) || !have(&["dpkg-deb"]) {
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
fn api_check_script_runs_the_readiness_check() {
    // The rendered track script only hands over to the runtime's readiness check, which
    // tests/it/standin.rs runs against ready and joining stand-ins.
    let s = cluster::keepalived::check_script();
    assert!(s.starts_with("#!/bin/sh\n"), "{s}");
    assert_eq!(
        s.lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>(),
        ["exec /usr/lib/bakery/bakery-vip-check"]
    );
    let runtime = crate::root().join("overlays/runtime/usr/lib/bakery/bakery-vip-check");
    assert!(runtime.is_file(), "{} is in the runtime", runtime.display());
    assert!(
        bakery_image::boot::runtime::FILES
            .iter()
            .any(|(p, _, m)| *p == "usr/lib/bakery/bakery-vip-check" && *m == 0o755),
        "the system image carries it, executable"
    );
}

#[test]
fn ssh_keygen_agrees_with_the_host_keys() {
    if !have(&["ssh-keygen"]) {
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
