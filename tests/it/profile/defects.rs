//! One test per class of defect found by feeding broken profiles to `check`: injection
//! into rendered files, overflowing sizes, unnamed type errors, huge excerpts, a missing
//! gateway, quoted timestamps, overlays that are files, add-on names clashing with K3s.

use std::path::Path;

use bakery_image::profile;

use super::{BASE, errors, one, with_nodes};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnJ3tS6gYwA4WkZ2M9cRkQ2yJ0g2lJt8u0mWcB0Yl1R";

#[test]
fn newline_in_the_export_path_is_rejected() {
    one(
        &with_nodes(
            "[storage.nfs]\nserver = \"s1\"\npath = \"/srv/nfs\\n/ *(rw,no_root_squash,insecure)\"\n",
        ),
        "storage.nfs.path",
        14,
        "export path",
    );
}

#[test]
fn exporting_the_root_is_rejected() {
    one(
        &with_nodes("[storage.nfs]\nserver = \"s1\"\npath = \"/\"\n"),
        "storage.nfs.path",
        14,
        "whole root",
    );
}

#[test]
fn newline_in_the_interface_is_rejected() {
    one(
        &BASE.replace(
            "gateway = \"10.0.0.1\"",
            // 15 bytes, the kernel's limit: the length check alone lets it through.
            "gateway = \"10.0.0.1\"\ninterface = \"e\\n[Network]\\nX=y\"",
        ),
        "cluster.interface",
        6,
        "contains '\\n'",
    );
}

#[test]
fn one_authorized_keys_entry_holds_one_key() {
    one(
        &with_nodes(&format!(
            "[ssh]\nauthorized-keys = [\"{KEY} a@x\\n{KEY} b@y\"]\n"
        )),
        "ssh.authorized-keys[0]",
        13,
        "control character",
    );
}

#[test]
fn control_characters_in_the_timezone_are_rejected() {
    one(
        &BASE.replace(
            "gateway = \"10.0.0.1\"",
            "gateway = \"10.0.0.1\"\ntimezone = \"Europe/Berlin\\u0007\"",
        ),
        "cluster.timezone",
        6,
        "time zone",
    );
}

#[test]
fn label_values_and_taints_cannot_add_labels_or_taints() {
    let t = BASE.replace(
        "address = \"10.0.0.11\"",
        "address = \"10.0.0.11\"\nlabels = { \"a\" = \"x,node-role.kubernetes.io/master=true\" }",
    );
    one(&t, "nodes[0].labels.a", 11, "label value");
    let t = BASE.replace(
        "address = \"10.0.0.11\"",
        "address = \"10.0.0.11\"\ntaints = [\"a=b,c=d:NoSchedule\"]",
    );
    one(&t, "nodes[0].taints[0]", 11, "not a Kubernetes value");
}

#[test]
fn sizes_near_two_to_the_64_are_rejected_not_overflowed() {
    one(
        &with_nodes("[image]\ndata-size = \"17592186044415MiB\"\n"),
        "image.data-size",
        13,
        "maximum image size",
    );
    one(
        &with_nodes("[image]\nsystem-size = \"10485760TiB\"\n"),
        "image.system-size",
        13,
        "maximum image size",
    );
    // Each size fits, the sum does not.
    let d = errors(&with_nodes(
        "[image]\nboot-size = \"1TiB\"\ndata-size = \"1TiB\"\n",
    ));
    assert!(
        d.items.iter().any(|i| i.message.contains("add up to")),
        "{}",
        d.render()
    );
}

#[test]
fn type_errors_are_named_by_their_key() {
    let d = errors(&BASE.replace("hostname = \"s1\"", "hostname = 5"));
    assert_eq!(d.items.len(), 1);
    assert_eq!(
        d.items[0].key.to_string(),
        "nodes[0].hostname",
        "{}",
        d.render()
    );
}

#[test]
fn a_20_mb_line_is_not_quoted_whole() {
    let t = BASE.replace(
        "name = \"t\"",
        &format!("name = \"{}\"", "x".repeat(20 << 20)),
    );
    let r = errors(&t).render();
    assert!(r.len() < 4096, "{} bytes of report", r.len());
    assert!(r.contains("cluster.name") && r.contains("..."), "{r}");
}

#[test]
fn static_addresses_need_the_gateway() {
    one(
        &BASE.replace("gateway = \"10.0.0.1\"\n", ""),
        "cluster",
        1,
        "no gateway",
    );
}

#[test]
fn a_quoted_timestamp_is_accepted_as_the_schema_says() {
    let bare = profile::parse(
        Path::new("ok.toml"),
        &with_nodes("[image]\ntimestamp = 2026-11-01T00:00:00Z\n"),
    )
    .unwrap();
    let quoted = profile::parse(
        Path::new("ok.toml"),
        &with_nodes("[image]\ntimestamp = \"2026-11-01T00:00:00Z\"\n"),
    )
    .unwrap();
    assert_eq!(bare.image.timestamp, Some(1_793_491_200));
    assert_eq!(quoted.image.timestamp, bare.image.timestamp);
    one(
        &with_nodes("[image]\ntimestamp = \"yesterday\"\n"),
        "image.timestamp",
        13,
        "RFC 3339",
    );
}

#[test]
fn an_overlay_must_be_a_directory_and_manifests_not_k3s_add_ons() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("traefik.yaml"), "kind: ConfigMap\n").unwrap();
    std::fs::write(d.path().join("file"), "").unwrap();
    let t =
        with_nodes("[sources]\noverlays = [\"file\"]\n\n[[manifests]]\npath = \"traefik.yaml\"\n");
    let e = profile::parse(&d.path().join("p.toml"), &t).unwrap_err();
    let keys: Vec<String> = e.items.iter().map(|i| i.key.to_string()).collect();
    assert_eq!(
        keys,
        ["manifests[0].path", "sources.overlays[0]"],
        "{}",
        e.render()
    );
    assert!(e.render().contains("is not a directory"), "{}", e.render());
    assert!(e.render().contains("add-on \"traefik\""), "{}", e.render());
}
