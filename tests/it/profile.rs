//! Profile validation: every rule has a bad case whose error names the key and the line.

use std::path::Path;

use bakery_image::profile::{self, Diagnostics};

const BASE: &str = r#"[cluster]
name = "t"
vip = "10.0.0.100"
network = "10.0.0.0/24"
gateway = "10.0.0.1"

[[nodes]]
hostname = "s1"
role = "server"
address = "10.0.0.11"
"#;

fn errors(text: &str) -> Diagnostics {
    profile::parse(Path::new("bad.toml"), text).expect_err("profile should be invalid")
}

/// Assert exactly one problem: at `key`, on `line`, with `msg` in its message and a hint.
#[track_caller]
fn one(text: &str, key: &str, line: usize, msg: &str) {
    let d = errors(text);
    let found: Vec<String> = d
        .items
        .iter()
        .map(|i| format!("{} @{}: {}", i.key, d.location(i), i.message))
        .collect();
    assert_eq!(d.items.len(), 1, "expected one problem, got {found:#?}");
    let item = &d.items[0];
    assert_eq!(item.key.to_string(), key, "{found:?}");
    assert_eq!(
        d.location(item),
        format!(
            "bad.toml:{line}:{}",
            d.line_col(item.span.clone().unwrap().start).1
        ),
        "{found:?}"
    );
    assert_eq!(
        d.line_col(item.span.clone().unwrap().start).0,
        line,
        "{found:?}"
    );
    assert!(
        item.message.contains(msg),
        "message {:?} lacks {msg:?}",
        item.message
    );
    assert!(item.hint.is_some(), "no hint for {key}");
    let rendered = d.render();
    assert!(
        rendered.contains(&format!("bad.toml:{line}:")),
        "{rendered}"
    );
    assert!(rendered.contains("hint:"), "{rendered}");
}

fn with_nodes(extra: &str) -> String {
    format!("{BASE}\n{extra}")
}

#[test]
fn base_is_valid() {
    profile::parse(Path::new("ok.toml"), BASE).unwrap();
}

#[test]
fn duplicate_hostname() {
    one(
        &with_nodes("[[nodes]]\nhostname = \"s1\"\nrole = \"agent\"\naddress = \"10.0.0.21\"\n"),
        "nodes[1].hostname",
        13,
        "duplicate hostname",
    );
}

#[test]
fn duplicate_address() {
    one(
        &with_nodes("[[nodes]]\nhostname = \"a1\"\nrole = \"agent\"\naddress = \"10.0.0.11\"\n"),
        "nodes[1].address",
        15,
        "duplicate address",
    );
}

#[test]
fn duplicate_mac() {
    let t = BASE.replace(
        "address = \"10.0.0.11\"",
        "address = \"10.0.0.11\"\nmac = \"dc:a6:32:00:00:01\"",
    );
    one(
        &format!(
            "{t}\n[[nodes]]\nhostname = \"a1\"\nrole = \"agent\"\nmac = \"DC-A6-32-00-00-01\"\n"
        ),
        "nodes[1].mac",
        16,
        "duplicate MAC",
    );
}

#[test]
fn hostname_not_rfc1123() {
    one(
        &BASE.replace("\"s1\"", "\"S_1\""),
        "nodes[0].hostname",
        8,
        "RFC 1123",
    );
}

#[test]
fn address_outside_network() {
    one(
        &BASE.replace("10.0.0.11", "10.0.1.11"),
        "nodes[0].address",
        10,
        "outside the cluster network",
    );
}

#[test]
fn vip_collides_with_node() {
    one(
        &BASE.replace("10.0.0.11", "10.0.0.100"),
        "nodes[0].address",
        10,
        "is the cluster VIP",
    );
}

#[test]
fn vip_in_pool() {
    one(
        &with_nodes("[metallb]\naddresses = [\"10.0.0.90-10.0.0.110\"]\n"),
        "metallb.addresses[0]",
        13,
        "contains the VIP",
    );
}

#[test]
fn pool_overlaps_node() {
    one(
        &with_nodes("[metallb]\naddresses = [\"10.0.0.10/31\"]\n"),
        "metallb.addresses[0]",
        13,
        "contains node s1",
    );
}

#[test]
fn pools_overlap_each_other() {
    one(
        &with_nodes(
            "[metallb]\naddresses = [\"10.0.0.200-10.0.0.210\"]\n\n[[metallb.pools]]\nname = \"other\"\naddresses = [\"10.0.0.205-10.0.0.220\"]\n",
        ),
        "metallb.pools[0].addresses[0]",
        17,
        "overlaps",
    );
}

#[test]
fn server_without_static_address() {
    one(
        &with_nodes(
            "[[nodes]]\nhostname = \"s2\"\nrole = \"server\"\naddress = \"dhcp\"\n\n[[nodes]]\nhostname = \"s3\"\nrole = \"server\"\naddress = \"10.0.0.13\"\n",
        ),
        "nodes[1].address",
        15,
        "no static address",
    );
}

#[test]
fn zero_servers() {
    one(
        &BASE.replace("role = \"server\"", "role = \"agent\""),
        "nodes",
        7,
        "no server",
    );
}

#[test]
fn even_servers_explain_quorum() {
    let t =
        with_nodes("[[nodes]]\nhostname = \"s2\"\nrole = \"server\"\naddress = \"10.0.0.12\"\n");
    let d = errors(&t);
    assert_eq!(d.items.len(), 1);
    let i = &d.items[0];
    assert_eq!(i.key.to_string(), "nodes");
    assert!(i.message.contains("2 servers"), "{}", i.message);
    let hint = i.hint.as_deref().unwrap();
    assert!(
        hint.contains("3 tolerate 1")
            && hint.contains("5 tolerate 2")
            && hint.contains("allow-even-servers"),
        "{hint}"
    );
    // An explicit setting accepts it.
    let ok = t.replace(
        "gateway = \"10.0.0.1\"",
        "gateway = \"10.0.0.1\"\nallow-even-servers = true",
    );
    profile::parse(Path::new("ok.toml"), &ok).unwrap();
}

#[test]
fn ssh_key_does_not_parse() {
    one(
        &with_nodes("[ssh]\nauthorized-keys = [\"ssh-ed25519 AAAAnotakey me@x\"]\n"),
        "ssh.authorized-keys[0]",
        13,
        "does not parse",
    );
}

#[test]
fn node_ssh_key_does_not_parse() {
    one(
        &BASE.replace(
            "address = \"10.0.0.11\"",
            "address = \"10.0.0.11\"\nssh-authorized-keys = [\"ssh-rsa AAAA\"]",
        ),
        "nodes[0].ssh-authorized-keys[0]",
        11,
        "does not parse",
    );
}

#[test]
fn nfs_unknown_node() {
    one(
        &with_nodes("[storage.nfs]\nserver = \"s9\"\npath = \"/srv/nfs\"\n"),
        "storage.nfs.server",
        13,
        "not a node",
    );
}

#[test]
fn wordpress_without_storage() {
    one(
        &with_nodes(
            "[metallb]\naddresses = [\"10.0.0.200-10.0.0.210\"]\n\n[apps.wordpress]\nreplicas = 2\n",
        ),
        "apps.wordpress",
        15,
        "needs storage",
    );
}

#[test]
fn malformed_sha256() {
    one(
        &with_nodes(
            "[sources]\nk3s = { url = \"https://example.invalid/k3s\", sha256 = \"abc\" }\n",
        ),
        "sources.k3s.sha256",
        13,
        "malformed sha256",
    );
}

#[test]
fn url_without_sha256() {
    one(
        &with_nodes("[sources]\nk3s = { url = \"https://example.invalid/k3s\" }\n"),
        "sources.k3s",
        13,
        "has no sha256",
    );
}

#[test]
fn boot_partition_too_small() {
    one(
        &with_nodes("[image]\nboot-size = \"256MiB\"\n"),
        "image.boot-size",
        13,
        "too small for FAT32",
    );
}

#[test]
fn unknown_key_with_suggestion() {
    let t = BASE.replace("address = ", "adress = ");
    let d = errors(&t);
    let i = d
        .items
        .iter()
        .find(|i| i.message.contains("unknown key"))
        .expect("unknown key reported");
    assert_eq!(i.key.to_string(), "nodes[0].adress");
    assert_eq!(d.line_col(i.span.clone().unwrap().start).0, 10);
    assert_eq!(i.hint.as_deref(), Some("did you mean `address`?"));
}

#[test]
fn bad_toml_is_located() {
    let d = errors("[cluster]\nname = \"t\nvip = 1\n");
    assert_eq!(d.items.len(), 1);
    assert!(d.items[0].message.contains("not valid TOML"));
    assert_eq!(d.line_col(d.items[0].span.clone().unwrap().start).0, 2);
}

#[test]
fn wrong_type_is_located() {
    let d = errors(&BASE.replace("name = \"t\"", "name = 5"));
    assert_eq!(
        d.line_col(d.items[0].span.clone().unwrap().start).0,
        2,
        "{}",
        d.render()
    );
}

#[test]
fn ten_mistakes_in_one_run() {
    let path = crate::root().join("tests/it/fixtures/ten-mistakes.toml");
    let d = match profile::load(&path) {
        Err(profile::LoadError::Invalid(d)) => d,
        other => panic!("expected diagnostics, got {other:?}"),
    };
    let mut keys: Vec<String> = d.items.iter().map(|i| i.key.to_string()).collect();
    keys.dedup();
    for k in [
        "nodes[2].addres",
        "cluster.name",
        "ssh.authorized-keys[0]",
        "nodes[0].address",
        "nodes[1].hostname",
        "nodes[1].address",
        "nodes[2].hostname",
        "metallb.addresses[0]",
        "storage.nfs.server",
        "image.boot-size",
        "sources.k3s.sha256",
    ] {
        assert!(keys.iter().any(|x| x == k), "{k} not reported: {keys:?}");
    }
    assert!(d.items.len() >= 10);
    assert!(
        d.items.iter().all(|i| i.span.is_some() && i.hint.is_some()),
        "every problem is located and has a hint"
    );
}

#[test]
fn relative_paths_resolve_against_the_profile() {
    let t = with_nodes("[sources]\nrootfs = { path = \"base/rootfs.tar\" }\n");
    let p = profile::parse(Path::new("some/dir/p.toml"), &t).unwrap();
    match p.sources.rootfs.unwrap() {
        profile::Source::Path { path, .. } => {
            assert_eq!(path, Path::new("some/dir/base/rootfs.tar"))
        }
        s => panic!("{s:?}"),
    }
    assert_eq!(p.secrets_dir, Path::new("some/dir/p.secrets"));
}

#[test]
fn every_example_profile_is_valid() {
    let profiles = crate::example_profiles();
    assert!(profiles.len() >= 3);
    for p in profiles {
        if let Err(e) = profile::load(&crate::root().join(&p)) {
            panic!("{}: {e}", p.display());
        }
    }
}

mod defects;
mod loadbalancer;

mod never_panics {
    use proptest::prelude::*;

    use super::BASE;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        /// Arbitrary edits of a valid profile give a profile or located diagnostics, never a panic.
        #[test]
        fn mutated_profiles(cut in 0usize..BASE.len(), insert in "[ -~\n]{0,12}") {
            let mut t = BASE.to_string();
            let at = (0..=cut).rev().find(|i| t.is_char_boundary(*i)).unwrap();
            t.insert_str(at, &insert);
            if let Err(d) = bakery_image::profile::parse(std::path::Path::new("m.toml"), &t) {
                prop_assert!(!d.items.is_empty());
                let _ = d.render();
            }
        }
    }
}

#[test]
fn debian_source_names_follow_debian_grammar() {
    let text = format!(
        "{BASE}\n[sources.debian]\nmirror = \"file:///srv/mirror\"\nextra-suites = [\"trixie-backports\"]\npackages = [\"vim\", \"Bad Name\"]\n"
    );
    one(
        &text,
        "sources.debian.packages[1]",
        15,
        "is not a Debian package name",
    );
    let text = format!("{BASE}\n[sources.debian]\nkernel = \"linux-image-arm64/sid\"\n");
    one(
        &text,
        "sources.debian.kernel",
        13,
        "names suite \"sid\", which the profile does not list",
    );
    let text = format!("{BASE}\n[sources.debian]\nmirror = \"ftp://x\"\n");
    one(
        &text,
        "sources.debian.mirror",
        13,
        "is not an http(s) or file URL",
    );
    let text = format!("{BASE}\n[sources.debian]\nkeyring = \"nope.gpg\"\n");
    one(&text, "sources.debian.keyring", 13, "does not exist");
    let text = format!("{BASE}\n[sources]\nrootfs = {{ path = \"x.tar\" }}\n[sources.debian]\n");
    one(&text, "sources.debian", 14, "both give the base system");
}

#[test]
fn debian_source_defaults() {
    let text = format!(
        "{BASE}\n[sources.debian]\nextra-suites = [\"trixie-backports\"]\nkernel = \"linux-image-arm64/trixie-backports\"\n"
    );
    let p = profile::parse(Path::new("ok.toml"), &text).unwrap();
    let d = p.sources.debian.unwrap();
    assert_eq!(d.suites, ["trixie", "trixie-backports"]);
    assert_eq!(d.components, ["main", "non-free-firmware"]);
    assert_eq!(d.kernel.unwrap().suite.as_deref(), Some("trixie-backports"));
    assert_eq!(d.mirror, None);
}

// --- storage.nfs and cluster.timezone grammar (values written into node files) ---------------

#[test]
fn nfs_disk_that_is_no_label_uuid_or_by_id_path() {
    one(
        &with_nodes("[storage.nfs]\nserver = \"s1\"\npath = \"/srv/nfs\"\ndisk = \"/dev/sda\"\n"),
        "storage.nfs.disk",
        15,
        "neither a /dev/disk/by-id/ path",
    );
}

#[test]
fn nfs_mount_option_with_a_comma() {
    one(
        &with_nodes(
            "[storage.nfs]\nserver = \"10.0.0.5\"\npath = \"/volume1\"\nmount-options = [\n  \"hard\",\n  \"rw,vers=3\",\n]\n",
        ),
        "storage.nfs.mount-options[1]",
        17,
        "not an NFS mount option",
    );
}

#[test]
fn nfs_export_path_over_a_system_directory() {
    one(
        &with_nodes("[storage.nfs]\nserver = \"s1\"\npath = \"/etc/nfs\"\n"),
        "storage.nfs.path",
        14,
        "system directory",
    );
}

#[test]
fn nfs_export_path_with_a_space() {
    one(
        &with_nodes("[storage.nfs]\nserver = \"10.0.0.5\"\npath = \"/volume 1\"\n"),
        "storage.nfs.path",
        14,
        "contains ' '",
    );
}

#[test]
fn timezone_that_escapes_zoneinfo() {
    one(
        &BASE.replace("gateway = ", "timezone = \"../../etc/shadow\"\ngateway = "),
        "cluster.timezone",
        5,
        "not a time zone name",
    );
}
