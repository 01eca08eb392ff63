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
