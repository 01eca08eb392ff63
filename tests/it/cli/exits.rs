//! Exit codes and messages of the binary for files that are no profile, usage mistakes,
//! sizes that used to overflow, and log lines without terminal colours.

use crate::{bin, root};

/// Run `bakery-image ARGS`, expect `code`, return stderr.
pub(super) fn stderr_of(args: &[&str], code: i32) -> String {
    let out = bin().args(args).assert().code(code).get_output().clone();
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn files_that_are_no_profile_exit_1_with_a_hint_said_once() {
    let d = tempfile::tempdir().unwrap();
    let bin_file = d.path().join("binary.toml");
    std::fs::write(&bin_file, b"\x7fELF\x02\x01\x01\0\0\0garbage").unwrap();
    let utf16 = d.path().join("utf16.toml");
    let mut b = vec![0xff, 0xfe];
    for u in "[cluster]\nname = \"x\"\n".encode_utf16() {
        b.extend(u.to_le_bytes());
    }
    std::fs::write(&utf16, b).unwrap();
    let latin1 = d.path().join("latin1.toml");
    std::fs::write(&latin1, b"[cluster]\nname = \"caf\xe9\"\n").unwrap();
    for (path, reason) in [
        (d.path().to_path_buf(), "is a directory"),
        (bin_file, "binary file"),
        (utf16, "is UTF-16 text"),
        (latin1, "is not UTF-8 text"),
    ] {
        let err = stderr_of(&["check", path.to_str().unwrap()], 1);
        assert!(err.contains(reason), "{err}");
        assert!(err.contains("hint:"), "{err}");
        assert_eq!(err.matches(reason).count(), 1, "said once: {err}");
        assert_eq!(
            err.lines().filter(|l| l.starts_with("error")).count(),
            1,
            "{err}"
        );
    }
}

#[test]
fn usage_mistakes_exit_1_and_help_exits_0() {
    let err = stderr_of(&["check"], 1);
    assert!(err.contains("Usage"), "{err}");
    stderr_of(&["build", "--no-such-flag", "p.toml"], 1);
    stderr_of(&["frobnicate"], 1);
    bin().arg("--help").assert().code(0);
    bin().arg("--version").assert().code(0);
}

#[test]
fn sizes_near_two_to_the_64_exit_1_not_panic() {
    let d = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("profiles/magi.toml"))
        .unwrap()
        .replace("[image]", "[image]\nboot-size = \"17592186044415MiB\"");
    assert!(
        text.contains("17592186044415MiB"),
        "magi.toml has an [image] table"
    );
    let p = d.path().join("big.toml");
    std::fs::write(&p, text).unwrap();
    for cmd in ["check", "plan"] {
        let err = stderr_of(&[cmd, p.to_str().unwrap()], 1);
        assert!(err.contains("maximum image size"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("rootfs.tar"), b"not really a tar").unwrap();
    let text = "[cluster]\nname = \"t\"\nvip = \"10.0.0.100\"\nnetwork = \"10.0.0.0/24\"\n\
                gateway = \"10.0.0.1\"\n\n[[nodes]]\nhostname = \"s1\"\nrole = \"server\"\n\
                address = \"10.0.0.11\"\n\n[sources]\nrootfs = { path = \"rootfs.tar\" }\n";
    let p = d.path().join("p.toml");
    std::fs::write(&p, text).unwrap();
    let cache = d.path().join("cache");
    let out = bin()
        .args([
            "fetch",
            p.to_str().unwrap(),
            "--cache-dir",
            cache.to_str().unwrap(),
        ])
        .assert()
        .code(0)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("INFO") && err.contains("rootfs"),
        "a log line: {err}"
    );
    assert!(!err.contains('\x1b'), "ANSI escape in {err:?}");
}

#[test]
fn kubeconfig_prints_the_chosen_server_and_refuses_bad_choices_with_exit_1() {
    let d = tempfile::tempdir().unwrap();
    let profile = d.path().join("ci.toml");
    std::fs::copy(root().join("profiles/ci-x86_64.toml"), &profile).unwrap();
    let p = profile.to_str().unwrap();
    // No secrets yet: a user error with a hint, nothing generated.
    let err = stderr_of(&["kubeconfig", p], 1);
    assert!(
        err.contains("no secrets directory") && err.contains("hint:"),
        "{err}"
    );
    assert!(!d.path().join("ci.secrets").exists());
    // Secrets as a build makes them (the library call the build uses).
    let prof = bakery_image::profile::load(&profile).unwrap();
    bakery_image::cluster::Secrets::load_or_create(&prof.secrets_dir, &prof).unwrap();
    for (choice, want) in [
        (None, "10.99.0.5"),
        (Some("lb"), "10.99.0.5"),
        (Some("vip"), "10.99.0.100"),
        (Some("ci-s3"), "10.99.0.13"),
    ] {
        let mut args = vec!["kubeconfig", p];
        if let Some(c) = choice {
            args.extend(["--server", c]);
        }
        let out = bin().args(&args).assert().code(0).get_output().clone();
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(&format!("server: \"https://{want}:6443\"")),
            "{text}"
        );
    }
    for (bad, msg) in [("ci-a1", "not a server"), ("nosuch", "neither vip, lb")] {
        let err = stderr_of(&["kubeconfig", p, "--server", bad], 1);
        assert!(err.contains(msg) && err.contains("hint:"), "{err}");
    }
}
