//! Helpers shared by the image and build tests: reference tools, test trees and profiles.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bakery_image::build::{self, BuildOptions, BuildResult};
use bakery_image::image::{Codec, FailPoint};

use crate::need;

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

/// The amd64 parts a build needs (see [`need::parts`]).
pub fn parts_dir() -> Option<PathBuf> {
    need::parts(
        "amd64",
        &["rootfs.tar", "linux-image.deb", "busybox-static.deb"],
    )
}

/// A two-node profile (server n1, agent n2) for board qemu-x86_64 over the real amd64
/// test parts (rootfs, kernel, busybox), the k3s stand-in and, as the overlay `root`, a
/// generated tree with the special cases (modes, links, long names, an empty file).
/// `None` when the parts are missing (see [`parts_dir`]).
pub fn make_profile(dir: &Path, image_extra: &str) -> Option<PathBuf> {
    let parts = parts_dir()?;
    let k3s = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/k3s-standin/k3s");
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
board = "qemu-x86_64"
boot-size = "260MiB"
timestamp = 2026-01-02T03:04:05Z
{image_extra}

[sources]
rootfs = {{ path = '{rootfs}' }}
packages = [
  {{ path = '{kernel}' }},
  {{ path = '{busybox}' }},
]
k3s = {{ path = '{k3s}' }}
overlays = ["root"]
"#,
            rootfs = parts.join("rootfs.tar").display(),
            kernel = parts.join("linux-image.deb").display(),
            busybox = parts.join("busybox-static.deb").display(),
            k3s = k3s.display(),
        ),
    )
    .unwrap();
    Some(p)
}

/// Build `profile` into `out` with a fast xz preset (download cache beside the profile).
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
        cache_dir: Some(profile.with_file_name("cache")),
        ..Default::default()
    };
    tweak(&mut opts);
    build::run(&p, &plan, &opts, &bakery_image::progress::Quiet)
}

/// Files in `dir` that do not start with a dot.
pub fn visible(dir: &Path) -> Vec<String> {
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

/// A directory under the target dir, emptied first: fixtures live as long as the test
/// binary (statics are never dropped), so they are cleaned up by the next run instead.
fn fixture_dir(name: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    if d.exists() {
        std::fs::remove_dir_all(&d).unwrap();
    }
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The build that several tests share (each full build takes tens of seconds).
pub struct SharedBuild {
    /// Holds the profile, its overlay `root`, its secrets and the output.
    pub dir: PathBuf,
    pub profile: PathBuf,
    /// Output of the good build (GPT, xz preset 0, both nodes, system-size fixed).
    pub out: PathBuf,
    pub result: BuildResult,
    /// The build into `out` that failed at [`FailPoint::AfterBoot`] just before.
    pub failed: FailedBuild,
}

/// What a failed build left behind.
pub struct FailedBuild {
    pub error: String,
    /// Every name left in the output directory, dot files included.
    pub left: Vec<String>,
}

/// The two-node xz build shared by the image and build tests: first a build that fails
/// after the boot partition, then a good one into the same directory. `None` when the
/// parts are missing; a build error panics in every test that asks.
pub fn shared_build() -> Option<&'static SharedBuild> {
    static SHARED: OnceLock<Option<Result<SharedBuild, String>>> = OnceLock::new();
    let r = SHARED.get_or_init(|| {
        let dir = fixture_dir("shared-build");
        let profile = make_profile(&dir, "system-size = \"320MiB\"")?;
        let out = dir.join("a");
        let error = match build(&profile, &out, |o| o.fail_at = Some(FailPoint::AfterBoot)) {
            Ok(_) => return Some(Err("the build with a fail point succeeded".into())),
            Err(e) => format!("{e:#}"),
        };
        let mut left: Vec<String> = std::fs::read_dir(&out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let result = match build(&profile, &out, |_| {}) {
            Ok(r) => r,
            Err(e) => return Some(Err(format!("the shared build failed: {e:#}"))),
        };
        Some(Ok(SharedBuild {
            dir,
            profile,
            out,
            result,
            failed: FailedBuild { error, left },
        }))
    });
    match r {
        None => None,
        Some(Ok(b)) => Some(b),
        Some(Err(e)) => panic!("{e}"),
    }
}

/// `bakery-image build --node n1` of a profile with `format = "zst"` and its default
/// codec, shared by the zst and CLI tests. The output directory, or `None` when the
/// parts are missing.
pub fn cli_zst_build() -> Option<&'static Path> {
    static OUT: OnceLock<Option<Result<PathBuf, String>>> = OnceLock::new();
    let r = OUT.get_or_init(|| {
        let dir = fixture_dir("cli-zst-build");
        let profile = make_profile(&dir, "format = \"zst\"")?;
        let out = dir.join("out");
        let o = assert_cmd::Command::cargo_bin("bakery-image")
            .unwrap()
            .env("BAKERY_CACHE_DIR", dir.join("cache"))
            .args(["build", "--node", "n1", "--out"])
            .arg(&out)
            .arg(&profile)
            .output()
            .unwrap();
        Some(if o.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "bakery-image build failed: {}",
                String::from_utf8_lossy(&o.stderr)
            ))
        })
    });
    match r {
        None => None,
        Some(Ok(p)) => Some(p),
        Some(Err(e)) => panic!("{e}"),
    }
}
