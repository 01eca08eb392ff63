//! Helpers shared by the image and build tests: reference tools, test trees and profiles.

use std::path::{Path, PathBuf};
use std::process::Command;

use bakery_image::build::{self, BuildOptions, BuildResult};
use bakery_image::image::Codec;

/// Whether `tool` is on PATH. In CI a missing tool fails the test; locally it is skipped.
pub fn have(tools: &[&str]) -> bool {
    for t in tools {
        let found = Command::new("sh")
            .args(["-c", &format!("command -v {t}")])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !found {
            if std::env::var_os("CI").is_some() {
                panic!("{t} is missing; ci/setup-host installs it");
            }
            eprintln!("skipping: {t} is not installed");
            return false;
        }
    }
    true
}

/// Run a command, panic with its stderr on failure, return stdout.
pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh(script: &str) -> String {
    run(Command::new("sh").args(["-c", script]))
}

/// sha256sum of a file, computed by coreutils.
pub fn sha256sum(p: &Path) -> String {
    sh(&format!("sha256sum '{}'", p.display()))
        .split_whitespace()
        .next()
        .unwrap()
        .to_owned()
}

/// A small root filesystem: nested dirs, modes, a symlink, a hard link, an empty file,
/// a 1 MiB pseudo-random file and long names.
pub fn make_rootfs(dir: &Path) {
    let r = dir;
    std::fs::create_dir_all(r.join("etc/ssh")).unwrap();
    std::fs::create_dir_all(r.join("usr/lib/x/y/z")).unwrap();
    std::fs::create_dir_all(r.join("var/empty")).unwrap();
    std::fs::write(r.join("etc/hostname"), "bakery\n").unwrap();
    std::fs::write(
        r.join("etc/ssh/sshd_config"),
        "PermitRootLogin prohibit-password\n",
    )
    .unwrap();
    std::fs::write(
        r.join("usr/lib/x/y/z/a-rather-long-file-name-for-testing.conf"),
        "x\n",
    )
    .unwrap();
    std::fs::write(r.join("usr/lib/empty"), "").unwrap();
    let mut big = Vec::with_capacity(1 << 20);
    let mut s: u32 = 12345;
    for _ in 0..(1 << 20) {
        s = s.wrapping_mul(1_103_515_245).wrapping_add(12345);
        big.push((s >> 16) as u8);
    }
    std::fs::write(r.join("usr/lib/blob"), &big).unwrap();
    std::fs::hard_link(r.join("usr/lib/blob"), r.join("usr/lib/blob-link")).unwrap();
    std::os::unix::fs::symlink("../etc/hostname", r.join("usr/hostname-link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        r.join("etc/ssh/sshd_config"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::set_permissions(r.join("var/empty"), std::fs::Permissions::from_mode(0o750)).unwrap();
}

/// A two-node profile (server n1, agent n2) over a generated rootfs in `dir`.
pub fn make_profile(dir: &Path, image_extra: &str) -> PathBuf {
    make_rootfs(&dir.join("root"));
    let p = dir.join("p.toml");
    std::fs::write(
        &p,
        format!(
            r#"[cluster]
name = "t"
vip = "10.0.0.100"
network = "10.0.0.0/24"
gateway = "10.0.0.1"
dns = ["10.0.0.1"]

[ssh]
authorized-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGnJ3tS6gYwA4WkZ2M9cRkQ2yJ0g2lJt8u0mWcB0Yl1R a@b"]

[[nodes]]
hostname = "n1"
role = "server"
address = "10.0.0.9"

[[nodes]]
hostname = "n2"
role = "agent"
address = "10.0.0.10"

[image]
board = "rpi"
boot-size = "260MiB"
timestamp = 2026-01-02T03:04:05Z
{image_extra}

[sources]
rootfs = {{ path = "root" }}
"#
        ),
    )
    .unwrap();
    p
}

/// Build `profile` into `out` with a fast xz preset.
pub fn build(
    profile: &Path,
    out: &Path,
    tweak: impl FnOnce(&mut BuildOptions),
) -> anyhow::Result<BuildResult> {
    let p = bakery_image::profile::load(profile).map_err(|e| anyhow::anyhow!("{e}"))?;
    let plan = bakery_image::plan::plan(&p);
    let mut opts = BuildOptions {
        out_dir: out.to_owned(),
        codec: Some(Codec::Xz {
            preset: 0,
            threads: 2,
        }),
        ..Default::default()
    };
    tweak(&mut opts);
    build::run(&p, &plan, &opts, &bakery_image::progress::Quiet)
}
