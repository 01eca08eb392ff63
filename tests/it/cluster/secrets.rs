//! The secrets state: modes, rebuilds, rotation, listings, git warnings, outputs.

use super::*;

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
    if !have(&["git"]) {
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
fn known_hosts_names_every_node_and_holds_no_secret() {
    // File modes of kubeconfig (0600) and known_hosts are checked on a real build
    // (tests/it/build.rs).
    let p = load("homelab");
    let s = Secrets::generate_with_rng(8, &p).unwrap();
    let kh = cluster::known_hosts(&p, &s).unwrap();
    assert!(kh.contains("pi-server,192.168.1.40 ssh-ed25519 "), "{kh}");
    assert!(
        kh.contains("\npi-worker-2 ssh-ed25519 "),
        "DHCP node by name only: {kh}"
    );
    for needle in needles(&s) {
        assert!(!kh.contains(needle.as_str()));
    }
}
