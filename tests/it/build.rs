//! The build pipeline end to end: reproducibility, all-or-nothing outputs, the CLI.

use std::path::Path;

use assert_cmd::Command;
use bakery_image::image::FailPoint;

use crate::util::{build, have, make_profile};

/// Files in `dir` that do not start with a dot.
fn visible(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn rebuild_is_byte_identical() {
    let d = tempfile::tempdir().unwrap();
    let profile = make_profile(d.path(), "");
    let a = build(&profile, &d.path().join("a"), |_| {}).unwrap();
    let b = build(&profile, &d.path().join("b"), |_| {}).unwrap();
    for (x, y) in a.images.nodes.iter().zip(&b.images.nodes) {
        assert_eq!(x.raw, y.raw, "{}", x.node);
        assert_eq!(x.download, y.download, "{}", x.node);
        let fx = std::fs::read(d.path().join("a").join(&x.file_name)).unwrap();
        let fy = std::fs::read(d.path().join("b").join(&y.file_name)).unwrap();
        assert!(fx == fy, "{} differs between builds", x.file_name);
    }
    assert_ne!(
        a.images.nodes[0].raw.sha256, a.images.nodes[1].raw.sha256,
        "nodes differ"
    );
    for f in ["SHA256SUMS", "n1.img.xz.sha256"] {
        assert_eq!(
            std::fs::read(d.path().join("a").join(f)).unwrap(),
            std::fs::read(d.path().join("b").join(f)).unwrap(),
            "{f}"
        );
    }
    // The lists differ only in their file:// URLs.
    let la = std::fs::read_to_string(d.path().join("a/os_list.json")).unwrap();
    let lb = std::fs::read_to_string(d.path().join("b/os_list.json")).unwrap();
    assert_eq!(la.replace("/a/", "/b/"), lb);
}

#[test]
fn failed_build_leaves_no_file_under_a_final_name() {
    let d = tempfile::tempdir().unwrap();
    let profile = make_profile(d.path(), "");
    let out = d.path().join("out");
    let e = build(&profile, &out, |o| o.fail_at = Some(FailPoint::AfterBoot)).unwrap_err();
    assert!(format!("{e:#}").contains("fail point"), "{e:#}");
    assert_eq!(visible(&out), Vec::<String>::new());
    let all: Vec<_> = std::fs::read_dir(&out).unwrap().collect();
    assert!(
        all.is_empty(),
        "partial and work files are removed too: {all:?}"
    );
    // A good build afterwards publishes everything.
    build(&profile, &out, |_| {}).unwrap();
    assert_eq!(
        visible(&out),
        [
            "SHA256SUMS",
            "bakery-icon.svg",
            "build.json",
            "n1.img.xz",
            "n1.img.xz.sha256",
            "n2.img.xz",
            "n2.img.xz.sha256",
            "os_list.json"
        ]
    );
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    assert_eq!(record["timestamp"], 1_767_323_045);
    assert_eq!(record["images"]["nodes"].as_array().unwrap().len(), 2);
    assert!(
        record["inputs"][0]["source"]
            .as_str()
            .unwrap()
            .ends_with("root")
    );
}

#[test]
fn cli_build_then_inspect_verifies_checksums() {
    if !have(&["xz"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let profile = make_profile(d.path(), "format = \"zst\"");
    let out = d.path().join("out");
    Command::cargo_bin("bakery-image")
        .unwrap()
        .args(["build", "--node", "n1", "--out"])
        .arg(&out)
        .arg(&profile)
        .assert()
        .success();
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
    // A wrong digest in SHA256SUMS is caught: exit 1.
    let sums = out.join("SHA256SUMS");
    let s = std::fs::read_to_string(&sums).unwrap();
    std::fs::write(&sums, format!("{}  n1.img.zst\n", "0".repeat(64))).unwrap();
    let o = Command::cargo_bin("bakery-image")
        .unwrap()
        .arg("inspect")
        .arg(&img)
        .assert()
        .code(1);
    assert!(String::from_utf8_lossy(&o.get_output().stdout).contains("FAIL SHA256SUMS"));
    std::fs::write(&sums, s).unwrap();
}

#[test]
fn unknown_node_is_a_user_error() {
    let d = tempfile::tempdir().unwrap();
    let profile = make_profile(d.path(), "");
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
