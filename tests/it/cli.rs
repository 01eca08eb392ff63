//! The CLI as users run it: exit codes, the check summary and the plan JSON (snapshots),
//! and the committed JSON Schema kept current.

use crate::{bin, example_profiles, root};

mod exits;

#[test]
fn check_snapshots() {
    for p in [
        "profiles/magi.toml",
        "profiles/bakery.toml",
        "profiles/homelab.toml",
    ] {
        let out = bin()
            .args(["check", p])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let name = std::path::Path::new(p)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        insta::assert_snapshot!(format!("check-{name}"), String::from_utf8(out).unwrap());
    }
}

#[test]
fn plan_json_snapshots() {
    for p in [
        "profiles/magi.toml",
        "profiles/bakery.toml",
        "profiles/homelab.toml",
    ] {
        let out = bin()
            .args(["plan", p, "--json"])
            .assert()
            .success()
            .get_output()
            .stdout
            .clone();
        let v: serde_json::Value = serde_json::from_slice(&out).expect("plan --json is JSON");
        let name = std::path::Path::new(p)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        insta::assert_json_snapshot!(format!("plan-{name}"), v);
    }
}

#[test]
fn every_example_profile_checks() {
    for p in example_profiles() {
        bin().args(["check"]).arg(&p).assert().success();
    }
}

#[test]
fn invalid_profile_exits_1_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("p.toml");
    std::fs::copy(root().join("tests/it/fixtures/ten-mistakes.toml"), &profile).unwrap();
    let out = bin()
        .arg("check")
        .arg(&profile)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("problems found; nothing was written"), "{err}");
    assert!(err.contains("p.toml:24:10"), "located errors: {err}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        1,
        "nothing written next to the profile: {names:?}"
    );
}

#[test]
fn missing_profile_exits_1() {
    let out = bin()
        .args(["check", "no/such/profile.toml"])
        .assert()
        .code(1)
        .get_output()
        .clone();
    assert!(
        String::from_utf8(out.stderr)
            .unwrap()
            .contains("no/such/profile.toml")
    );
}

/// `inspect` and `run` read images through one reader: a file that is no disk image
/// (here: no boot signature, and a compressed one of the same) is exit 1 with a hint.
#[test]
fn not_an_image_exits_1_for_inspect_and_run() {
    let d = tempfile::tempdir().unwrap();
    let junk = d.path().join("junk.img");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    let xz = d.path().join("junk.img.xz");
    let mut enc = liblzma::write::XzEncoder::new(Vec::new(), 1);
    std::io::Write::write_all(&mut enc, &[7u8; 8192]).unwrap();
    std::fs::write(&xz, enc.finish().unwrap()).unwrap();
    for img in [&junk, &xz] {
        for cmd in ["inspect", "run"] {
            let err = exits::stderr_of(&[cmd, img.to_str().unwrap()], 1);
            assert!(
                err.contains("no partition table") && err.contains("hint: give an image"),
                "{cmd} {}: {err}",
                img.display()
            );
        }
    }
}

/// A GPT whose entry array no longer matches the header's CRC32 (one byte of a name
/// changed, as a bad card or a truncated download would) is refused, not half read; a
/// sound table whose p1 is no FAT is exit 1 with a hint too.
#[test]
fn a_gpt_with_a_bad_crc_is_refused_by_inspect() {
    if !crate::need::have(&["sgdisk"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let img = d.path().join("disk.img");
    std::fs::File::create(&img)
        .unwrap()
        .set_len(8 << 20)
        .unwrap();
    let ok = std::process::Command::new("sgdisk")
        .args(["-n", "1:2048:4095", "-c", "1:bakery-boot"])
        .arg(&img)
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // The table is read; its p1 holds no FAT (the image was not built by bakery-image).
    let img_arg = img.to_str().unwrap();
    let err = exits::stderr_of(&["inspect", img_arg], 1);
    assert!(
        err.contains("partition 1 holds no FAT filesystem") && err.contains("hint:"),
        "{err}"
    );
    let mut bytes = std::fs::read(&img).unwrap();
    bytes[1024 + 56] ^= 0x20; // the first letter of entry 1's name
    std::fs::write(&img, bytes).unwrap();
    let err = exits::stderr_of(&["inspect", img_arg], 1);
    assert!(err.contains("entry array's CRC32 does not match"), "{err}");
}

#[test]
fn help_documents_exit_codes() {
    let out = bin()
        .arg("--help")
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let help = String::from_utf8(out).unwrap();
    assert!(
        help.contains("Exit codes:")
            && help.contains("1  invalid input")
            && help.contains("2  I/O"),
        "{help}"
    );
}

#[test]
fn committed_schema_is_current() {
    let committed = std::fs::read_to_string(root().join("profiles/profile.schema.json")).unwrap();
    let fresh = bakery_image::app::schema();
    assert!(
        committed == fresh,
        "profiles/profile.schema.json is stale: run `cargo run -- schema > profiles/profile.schema.json`"
    );
    let v: serde_json::Value = serde_json::from_str(&fresh).unwrap();
    assert_eq!(
        v["additionalProperties"],
        serde_json::Value::Bool(false),
        "unknown keys are errors in the schema too"
    );
}

#[test]
fn completions_for_bash() {
    let out = bin()
        .args(["completions", "bash"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert!(String::from_utf8(out).unwrap().contains("bakery-image"));
}
