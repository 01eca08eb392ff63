//! The build pipeline end to end: reproducibility, all-or-nothing outputs, the CLI.
//!
//! Full builds are slow (the real amd64 rootfs, kernel and busybox), so these tests share
//! the builds in [`crate::util`]: [`shared_build`] and [`cli_zst_build`].

use assert_cmd::Command;

use crate::need::have;
use crate::util::{build, cli_zst_build, make_profile, shared_build, visible};

#[test]
fn rebuild_is_byte_identical() {
    let Some(s) = shared_build() else {
        return;
    };
    // Same profile, so the same secrets directory beside it.
    let b_dir = s.dir.join("b");
    let a = &s.result;
    let b = build(&s.profile, &b_dir, |_| {}).unwrap();
    for (x, y) in a.images.nodes.iter().zip(&b.images.nodes) {
        assert_eq!(x.raw, y.raw, "{}", x.node);
        assert_eq!(x.download, y.download, "{}", x.node);
        let fx = std::fs::read(s.out.join(&x.file_name)).unwrap();
        let fy = std::fs::read(b_dir.join(&y.file_name)).unwrap();
        assert!(fx == fy, "{} differs between builds", x.file_name);
    }
    assert_ne!(
        a.images.nodes[0].raw.sha256, a.images.nodes[1].raw.sha256,
        "nodes differ"
    );
    for f in [
        "SHA256SUMS",
        "n1.img.xz.sha256",
        "kubeconfig",
        "known_hosts",
    ] {
        assert_eq!(
            std::fs::read(s.out.join(f)).unwrap(),
            std::fs::read(b_dir.join(f)).unwrap(),
            "{f}"
        );
    }
    // The lists differ only in their file:// URLs.
    let la = std::fs::read_to_string(s.out.join("os_list.json")).unwrap();
    let lb = std::fs::read_to_string(b_dir.join("os_list.json")).unwrap();
    assert_eq!(la.replace("/a/", "/b/"), lb);
    std::fs::remove_dir_all(&b_dir).unwrap();
}

#[test]
fn boot_files_are_made_and_compressed_once_per_build() {
    let Some(s) = shared_build() else {
        return;
    };
    let r = &s.result;
    let nodes = r.images.nodes.len() as u64;
    assert!(nodes >= 2, "the shared build has several nodes");
    assert_eq!(
        r.board_files.initramfs_builds, 1,
        "one initramfs for every node"
    );
    // The kernel and the initramfs (the board's files of at least 1 MiB on qemu-x86_64):
    // compressed for the first node only, copied into the others.
    assert_eq!(r.board_files.files, 2, "{:?}", r.board_files);
    assert_eq!(r.images.shared_boot_streams, 2);
    assert!(
        r.images.shared_boot_bytes >= (nodes - 1) * r.board_files.bytes,
        "{} bytes reused, {} bytes of board files",
        r.images.shared_boot_bytes,
        r.board_files.bytes
    );
    // Squashfs data blocks: compressed ahead on every core; the writer compresses only its
    // metadata and whatever was predicted wrongly.
    let sys = &r.images.system;
    assert!(
        sys.blocks_ahead > 4 * sys.blocks_inline,
        "{} ahead, {} inline",
        sys.blocks_ahead,
        sys.blocks_inline
    );
}

#[test]
fn failed_build_leaves_no_file_under_a_final_name() {
    let Some(s) = shared_build() else {
        return;
    };
    // The shared fixture first ran a build that stops after the boot partition.
    let f = &s.failed;
    assert!(f.error.contains("fail point"), "{}", f.error);
    assert!(
        f.left.is_empty(),
        "partial and work files are removed too: {:?}",
        f.left
    );
    // A good build afterwards, into the same directory, publishes everything.
    assert_eq!(
        visible(&s.out),
        [
            "SHA256SUMS",
            "bakery-icon.svg",
            "build.json",
            "known_hosts",
            "kubeconfig",
            "n1.img.xz",
            "n1.img.xz.sha256",
            "n2.img.xz",
            "n2.img.xz.sha256",
            "os_list.json",
            "sbom.spdx.json"
        ]
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(s.out.join("build.json")).unwrap()).unwrap();
    assert_eq!(record["timestamp"], 1_767_323_045);
    assert_eq!(record["images"]["nodes"].as_array().unwrap().len(), 2);
    let inputs = record["inputs"].as_array().unwrap();
    assert!(
        inputs[0]["source"]
            .as_str()
            .unwrap()
            .ends_with("rootfs.tar"),
        "{inputs:?}"
    );
    let last = inputs.last().unwrap();
    assert_eq!(last["role"], "overlays[0]");
    assert!(last["source"].as_str().unwrap().ends_with("root"), "{last}");
}

#[test]
fn cli_build_then_inspect_verifies_checksums() {
    if !have(&["xz"]) {
        return;
    }
    let Some(out) = cli_zst_build() else {
        return;
    };
    let img = out.join("n1.img.zst");
    let o = Command::cargo_bin("bakery-image")
        .unwrap()
        .arg("inspect")
        .arg(&img)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&o.get_output().stdout).into_owned();
    for want in [
        "partition table: GPT",
        "bakery-boot",
        "label BAKERY-BOOT",
        "BAKERY_HOSTNAME='n1'",
        "squashfs 4.0 zstd",
        "ok   SHA256SUMS",
        "ok   os_list.json extract_sha256",
        "ok   n1.img.zst.sha256",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    use std::os::unix::fs::PermissionsExt;
    let kc = std::fs::metadata(out.join("kubeconfig")).unwrap();
    assert_eq!(kc.permissions().mode() & 0o777, 0o600, "kubeconfig mode");
    assert!(out.join("known_hosts").is_file());
    // A wrong digest in SHA256SUMS is caught: exit 1. (Restored before anyone else
    // reads SHA256SUMS of this fixture: only this test does.)
    let sums = out.join("SHA256SUMS");
    let s = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(&sums, format!("{}  n1.img.zst\n", "0".repeat(64))).unwrap();
    let o = Command::cargo_bin("bakery-image")
        .unwrap()
        .arg("inspect")
        .arg(&img)
        .assert()
        .code(1);
    std::fs::write(&sums, s).unwrap();
    assert!(String::from_utf8_lossy(&o.get_output().stdout).contains("FAIL SHA256SUMS"));
}

#[test]
fn unknown_node_is_a_user_error() {
    let d = tempfile::tempdir().unwrap();
    let Some(profile) = make_profile(d.path(), "") else {
        return;
    };
    let o = Command::cargo_bin("bakery-image")
        .unwrap()
        .args(["build", "--node", "nope", "--out"])
        .arg(d.path().join("out"))
        .arg(&profile)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(
        err.contains("--node nope") && err.contains("hint: nodes are n1, n2"),
        "{err}"
    );
    assert_eq!(visible(&d.path().join("out")), Vec::<String>::new());
}

#[test]
fn a_load_balancer_on_a_base_without_haproxy_is_a_located_user_error() {
    let d = tempfile::tempdir().unwrap();
    let Some(profile) = make_profile(d.path(), "") else {
        return;
    };
    let text = std::fs::read_to_string(&profile).unwrap().replacen(
        "[image]",
        "[[nodes]]\nhostname = \"lb\"\nrole = \"loadbalancer\"\naddress = \"10.0.0.5\"\n\n[image]",
        1,
    );
    std::fs::write(&profile, &text).unwrap();
    let line = text
        .lines()
        .position(|l| l.starts_with("rootfs = "))
        .unwrap()
        + 1;
    let o = Command::cargo_bin("bakery-image")
        .unwrap()
        .args(["build", "--offline", "--out"])
        .arg(d.path().join("out"))
        .arg(&profile)
        .assert()
        .code(1);
    let err = String::from_utf8_lossy(&o.get_output().stderr).into_owned();
    assert!(
        err.contains(&format!("p.toml:{line}:1 sources.rootfs")),
        "names the key and its line: {err}"
    );
    assert!(
        err.contains("- haproxy (looked for /usr/sbin/haproxy"),
        "{err}"
    );
    assert!(err.contains("- user haproxy"), "{err}");
    assert!(err.contains("role = \"loadbalancer\""), "{err}");
    assert_eq!(visible(&d.path().join("out")), Vec::<String>::new());
}
