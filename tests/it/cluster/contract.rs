//! The node contract: every `node.env` key has a reader in the node runtime, and every
//! profile key that reaches a node changes what the node gets (no key that does nothing).

use super::*;
use bakery_image::boot::runtime::FILES;

fn env_keys(env: &str) -> Vec<(String, String)> {
    env.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let (k, v) = l.split_once('=').expect("KEY='value'");
            (k.to_owned(), v.trim_matches('\'').to_owned())
        })
        .collect()
}

fn node_env(r: &Rendered, node: &str) -> Vec<(String, String)> {
    env_keys(std::str::from_utf8(&r[node]["bakery/node.env"].1).unwrap())
}

fn env(r: &Rendered, node: &str, key: &str) -> String {
    node_env(r, node)
        .into_iter()
        .find(|(k, _)| k == key)
        .unwrap_or_else(|| panic!("{node}: no {key} in node.env"))
        .1
}

#[test]
fn every_node_env_key_is_read_by_the_runtime() {
    for name in PROFILES {
        let p = load(name);
        let s = Secrets::generate_with_rng(5, &p).unwrap();
        let r = render_all(&p, &s);
        for node in r.keys() {
            for (k, _) in node_env(&r, node) {
                let readers: Vec<&str> = FILES
                    .iter()
                    .filter(|(_, text, _)| {
                        text.contains(&format!("${k}")) || text.contains(&format!("${{{k}"))
                    })
                    .map(|(path, _, _)| *path)
                    .collect();
                assert!(
                    !readers.is_empty(),
                    "{name}/{node}: node.env key {k} has no reader under overlays/runtime/"
                );
            }
        }
    }
}

const BASE: &str = r#"
[cluster]
name = "t"
vip = "10.0.0.100"
network = "10.0.0.0/24"
gateway = "10.0.0.1"
[ssh]
authorized-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKWe+1arL0X5a2zMhkKC8uvrFpgbtJYwE/eN/nOwUXui t"]
[[nodes]]
hostname = "s1"
role = "server"
address = "10.0.0.11"
[[nodes]]
hostname = "a1"
role = "agent"
address = "10.0.0.21"
[image]
board = "qemu-x86_64"
[sources]
rootfs = { path = "rootfs.tar" }
k3s = { path = "k3s" }
"#;

fn rendered(extra: &str) -> Rendered {
    let p = parse(&format!("{BASE}{extra}"));
    let s = Secrets::generate_with_rng(7, &p).unwrap();
    render_all(&p, &s)
}

fn text(r: &Rendered, node: &str, path: &str) -> Option<String> {
    r[node]
        .get(path)
        .map(|(_, b)| String::from_utf8(b.clone()).unwrap())
}

#[test]
fn timezone_reaches_every_node() {
    let r = rendered("");
    assert_eq!(env(&r, "s1", "BAKERY_TIMEZONE"), "Etc/UTC");
    let p = parse(&BASE.replacen("network = ", "timezone = \"Asia/Tokyo\"\nnetwork = ", 1));
    let s = Secrets::generate_with_rng(7, &p).unwrap();
    let r = render_all(&p, &s);
    for n in ["s1", "a1"] {
        assert_eq!(env(&r, n, "BAKERY_TIMEZONE"), "Asia/Tokyo", "{n}");
    }
}

#[test]
fn nfs_keys_reach_the_nfs_node_and_the_storage_class() {
    let r = rendered(
        "[storage.nfs]\nserver = \"a1\"\npath = \"/srv/share\"\ndisk = \"nfs-ssd\"\n\
         mount-options = [\"rw\", \"hard\", \"vers=3\", \"timeo=600\"]\n",
    );
    assert_eq!(env(&r, "a1", "BAKERY_NFS_SERVE"), "1");
    assert_eq!(env(&r, "a1", "BAKERY_NFS_DISK"), "nfs-ssd");
    assert_eq!(env(&r, "a1", "BAKERY_NFS_PATH"), "/srv/share");
    for k in ["BAKERY_NFS_SERVE", "BAKERY_NFS_DISK", "BAKERY_NFS_PATH"] {
        let want = if k == "BAKERY_NFS_SERVE" { "0" } else { "" };
        assert_eq!(env(&r, "s1", k), want, "s1 does not serve NFS: {k}");
    }
    let exports = text(&r, "a1", "bakery/etc/exports").expect("the NFS node exports");
    for line in [
        "/srv/share 10.0.0.0/24(rw,sync,no_subtree_check,no_root_squash)",
        "/run/bakery/nfs-v4root 10.0.0.0/24(ro,fsid=0,crossmnt,no_subtree_check)",
        "/run/bakery/nfs-v4root/srv/share 10.0.0.0/24(rw,sync,no_subtree_check,no_root_squash)",
    ] {
        assert!(
            exports.lines().any(|l| l == line),
            "{line} not in {exports}"
        );
    }
    assert!(text(&r, "s1", "bakery/etc/exports").is_none());
    let sc = text(&r, "s1", "bakery/manifests/bakery-nfs.yaml").unwrap();
    assert!(
        sc.contains("  server: \"10.0.0.21\"\n  share: \"/srv/share\"\n"),
        "{sc}"
    );
    assert!(
        sc.contains("mountOptions:\n  - \"rw\"\n  - \"hard\"\n  - \"vers=3\"\n  - \"timeo=600\"\n"),
        "{sc}"
    );
}

#[test]
fn nfs_on_a_nas_renders_only_the_client_side() {
    let r = rendered("[storage.nfs]\nserver = \"10.0.0.5\"\npath = \"/volume1/k8s\"\n");
    for n in ["s1", "a1"] {
        assert!(
            text(&r, n, "bakery/etc/exports").is_none(),
            "{n} exports for a NAS"
        );
        assert_eq!(env(&r, n, "BAKERY_NFS_SERVE"), "0");
    }
    let sc = text(&r, "s1", "bakery/manifests/bakery-nfs.yaml").unwrap();
    assert!(
        sc.contains("  server: \"10.0.0.5\"\n  share: \"/volume1/k8s\"\n"),
        "{sc}"
    );
    assert!(
        sc.contains("mountOptions:\n  - \"nfsvers=4.1\"\n  - \"hard\"\n"),
        "defaults: {sc}"
    );
}
