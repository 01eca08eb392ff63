//! The Debian assembler against a real archive: the host's apt mirror (as ci/fetch-parts
//! takes it), serving trixie. Downloads are cached in `.cache/debian` of the repository.

use std::path::PathBuf;

use bakery_image::debian::assemble::{self, Inputs};
use bakery_image::debian::{self, DebianError, HOST_KEYRING, select};
use bakery_image::fetch::FetchOptions;
use bakery_image::profile::{self, Debian};
use bakery_image::progress::Quiet;

/// The first Debian archive URL of the host's apt sources (deb822 or one-line format).
pub fn host_mirror() -> Option<String> {
    for f in [
        "/etc/apt/sources.list.d/debian.sources",
        "/etc/apt/sources.list",
    ] {
        let Ok(text) = std::fs::read_to_string(f) else {
            continue;
        };
        for line in text.lines() {
            let w: Vec<&str> = line.split_whitespace().collect();
            let url = match w.as_slice() {
                ["URIs:", u, ..] => u,
                ["deb", u, ..] if !u.starts_with('[') => u,
                ["deb", _, u, ..] => u,
                _ => continue,
            };
            if !url.contains("security") {
                return Some(url.trim_end_matches('/').to_owned());
            }
        }
    }
    crate::need::skip("no Debian apt sources on this host");
    None
}

pub fn cache_dir() -> PathBuf {
    crate::root().join(".cache/debian")
}

fn fopts() -> FetchOptions {
    FetchOptions::new(cache_dir())
}

fn inrelease(mirror: &str) -> Vec<u8> {
    let f = bakery_image::fetch::fetch_unpinned(
        "t",
        &format!("{mirror}/dists/trixie/InRelease"),
        &fopts(),
        &Quiet,
    )
    .unwrap();
    std::fs::read(f.path).unwrap()
}

#[test]
fn inrelease_verifies_against_the_archive_keys_and_tampering_fails() {
    let Some(mirror) = host_mirror() else { return };
    let keyring = std::fs::read(HOST_KEYRING).unwrap();
    let bytes = inrelease(&mirror);
    let (release, key) = debian::verify_release(&bytes, &keyring).unwrap();
    assert_eq!(release.codename, "trixie");
    assert!(debian::ARCHIVE_KEYS.contains(&key.as_str()), "{key}");
    assert!(release.packages_index("main", "arm64").is_some());

    // One changed digit in the signed text.
    let text = String::from_utf8(bytes.clone()).unwrap();
    let tampered = text.replacen("Codename: trixie", "Codename: trixif", 1);
    let e = debian::verify_release(tampered.as_bytes(), &keyring).unwrap_err();
    assert!(e.contains("no valid signature by a trusted key"), "{e}");
    // A keyring without the archive keys (only the removed, expired ones).
    let removed = std::fs::read("/usr/share/keyrings/debian-archive-removed-keys.gpg").unwrap();
    let e = debian::verify_release(&bytes, &removed).unwrap_err();
    assert!(e.contains("none of the Debian archive keys"), "{e}");
    // gpgv, the reference, agrees that the untampered file verifies.
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("InRelease");
    std::fs::write(&f, &bytes).unwrap();
    if crate::need::have(&["gpgv"]) {
        crate::util::run(
            std::process::Command::new("gpgv")
                .args(["--keyring", HOST_KEYRING])
                .arg(&f),
        );
    }
}

fn debian_section(mirror: &str) -> Debian {
    Debian {
        mirror: Some(mirror.to_owned()),
        suites: vec!["trixie".into()],
        components: vec!["main".into(), "non-free-firmware".into()],
        packages: vec![],
        kernel: None,
        keyring: None,
    }
}

/// A profile over the real ci-aarch64 example with `[sources.debian]` instead of rootfs.
fn ci_profile(dir: &std::path::Path) -> profile::Profile {
    let text = std::fs::read_to_string(crate::root().join("profiles/ci-aarch64.toml")).unwrap();
    let start = text.find("[sources]").unwrap();
    // trixie alone: its own kernel, so no Pi 5 (tests/it/pi5.rs builds that).
    let head = text[..start].replace("pi5 = true\n", "");
    let text = format!("{head}[sources.debian]\nsuite = \"trixie\"\n");
    let p = dir.join("ci.toml");
    std::fs::write(&p, text).unwrap();
    profile::load(&p).unwrap()
}

#[test]
fn resolves_and_fetches_the_runtime_set_of_trixie_then_honours_the_lock() {
    let Some(mirror) = host_mirror() else { return };
    let dir = tempfile::tempdir().unwrap();
    let p = ci_profile(dir.path());
    let d = p.sources.debian.clone().unwrap();
    assert_eq!(d.suites, ["trixie"]);
    let mut d = d;
    d.mirror = Some(mirror);
    let inputs = Inputs {
        debian: &d,
        arch: "arm64",
        requests: select::requests(&p),
        lock: None,
        update: false,
    };
    let a = assemble::assemble(&inputs, &fopts(), &Quiet).unwrap();
    let names: Vec<&str> = a.lock.packages.iter().map(|p| p.name.as_str()).collect();
    for want in [
        "base-files",
        "base-passwd",
        "bash",
        "dpkg",
        "libc6",
        "systemd",
        "systemd-sysv",
        "openssh-server",
        "keepalived",
        "nfs-kernel-server",
        "linux-image-arm64",
        "raspi-firmware",
        "busybox-static",
        "mawk",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let mut sorted = names.clone();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "one version per package");
    for (lp, f) in &a.packages {
        assert_eq!(f.sha256.as_str(), lp.sha256, "{}", lp.name);
        assert_eq!(crate::util::sha256sum(&f.path), lp.sha256, "{}", lp.name);
    }
    assert_eq!(a.lock.suites.len(), 1);

    // With the lock and the mirror gone, the same set comes from the cache alone.
    let mut offline = fopts();
    offline.offline = true;
    let mut gone = d.clone();
    gone.mirror = Some("http://127.0.0.1:9/debian".into());
    let inputs = Inputs {
        debian: &gone,
        arch: "arm64",
        requests: select::requests(&p),
        lock: Some(a.lock.clone()),
        update: false,
    };
    let b = assemble::assemble(&inputs, &offline, &Quiet).unwrap();
    assert_eq!(b.lock, a.lock);

    // A locked file the cache lacks and the mirror does not serve: named by package.
    let mut lock = a.lock.clone();
    lock.packages[0].sha256 = "1".repeat(64);
    let inputs = Inputs {
        debian: &d,
        arch: "arm64",
        requests: select::requests(&p),
        lock: Some(lock.clone()),
        update: false,
    };
    let e = assemble::assemble(&inputs, &fopts(), &Quiet).unwrap_err();
    assert!(
        matches!(&e, DebianError::Package { name, .. } if *name == lock.packages[0].name),
        "{e}"
    );
    assert!(e.is_user_error());
}

#[test]
fn unknown_packages_are_named_with_their_profile_key() {
    let Some(mirror) = host_mirror() else { return };
    let mut d = debian_section(&mirror);
    d.packages = vec![profile::PackageRef {
        name: "no-such-package-bakery".into(),
        suite: None,
    }];
    let dir = tempfile::tempdir().unwrap();
    let mut p = ci_profile(dir.path());
    p.sources.debian = Some(d.clone());
    let inputs = Inputs {
        debian: &d,
        arch: "arm64",
        requests: select::requests(&p),
        lock: None,
        update: false,
    };
    let e = assemble::assemble(&inputs, &fopts(), &Quiet).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("no package `no-such-package-bakery`")
            && msg.contains("sources.debian.packages[0]"),
        "{msg}"
    );
    assert!(msg.contains("hint:"), "{msg}");
}

fn file_text(tree: &bakery_image::stage::Tree, path: &str) -> String {
    match &tree
        .get(path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .kind
    {
        bakery_image::stage::Kind::File(d) => String::from_utf8(d.read().unwrap()).unwrap(),
        k => panic!("{path} is {k:?}"),
    }
}

fn link(tree: &bakery_image::stage::Tree, path: &str) -> String {
    match &tree
        .get(path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .kind
    {
        bakery_image::stage::Kind::Symlink(t) => t.clone(),
        k => panic!("{path} is {k:?}"),
    }
}

#[test]
fn assembled_trixie_base_passes_the_runtime_check_and_is_configured() {
    use bakery_image::build::{self, Parts};
    let Some(mirror) = host_mirror() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut p = ci_profile(dir.path());
    p.sources.debian.as_mut().unwrap().mirror = Some(mirror);
    let a = build::debian_base(&p, &fopts(), false, &Quiet)
        .unwrap()
        .unwrap();
    let parts = Parts::new(&[]).with_debian(&a);
    let mut tree = build::compose_system(&p, &parts, dir.path()).unwrap();
    // The same check every build runs: systemd, busybox, disk tools, kmod, keepalived,
    // the NFS server and the board's kernel modules are all there.
    build::finish_system(&p, &mut tree, 1_767_225_600, true).unwrap();

    let passwd = file_text(&tree, "etc/passwd");
    for user in [
        "root:x:0:0:root:/root:/bin/bash",
        "_apt:x:",
        "statd:x:",
        "_rpc:x:",
        "systemd-network:x:",
        "systemd-timesync:x:",
        "nobody:x:65534:65534:",
    ] {
        assert!(
            passwd.lines().any(|l| l.starts_with(user)),
            "{user} not in passwd:\n{passwd}"
        );
    }
    let group = file_text(&tree, "etc/group");
    assert!(
        group.lines().any(|l| l.starts_with("shadow:x:42:")),
        "{group}"
    );
    assert!(group.lines().any(|l| l.starts_with("_ssh:x:")), "{group}");
    let shadow = tree.get("etc/shadow").unwrap();
    assert_eq!((shadow.mode, shadow.uid, shadow.gid), (0o640, 0, 42));
    assert!(file_text(&tree, "etc/shadow").starts_with("root:*:"));
    assert_eq!(link(&tree, "usr/bin/awk"), "/etc/alternatives/awk");
    assert_eq!(link(&tree, "etc/alternatives/awk"), "/usr/bin/mawk");
    assert_eq!(link(&tree, "bin"), "usr/bin");
    assert_eq!(file_text(&tree, "etc/machine-id"), "");
    // What postinsts copy or change: sshd reads sshd_config.d only through the main file.
    assert!(
        file_text(&tree, "etc/ssh/sshd_config").contains("Include /etc/ssh/sshd_config.d/*.conf")
    );
    assert_eq!(link(&tree, "var/run"), "/run");
    let agent = tree.get("usr/bin/ssh-agent").unwrap();
    let ssh_gid: u32 = group
        .lines()
        .find(|l| l.starts_with("_ssh:"))
        .unwrap()
        .split(':')
        .nth(2)
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!((agent.mode, agent.gid), (0o2755, ssh_gid));
    let bundle = file_text(&tree, "etc/ssl/certs/ca-certificates.crt");
    assert!(bundle.matches("BEGIN CERTIFICATE").count() > 100);

    // dpkg itself reads the status database: every locked package, installed.
    let admin = dir.path().join("dpkg");
    std::fs::create_dir_all(admin.join("info")).unwrap();
    std::fs::create_dir_all(admin.join("updates")).unwrap();
    std::fs::write(
        admin.join("status"),
        file_text(&tree, "var/lib/dpkg/status"),
    )
    .unwrap();
    if crate::need::have(&["dpkg-query"]) {
        let out = crate::util::run(
            std::process::Command::new("dpkg-query")
                .arg(format!("--admindir={}", admin.display()))
                .args(["-W", "-f", "${Package} ${Version} ${db:Status-Abbrev}\n"]),
        );
        let got: Vec<&str> = out.lines().collect();
        assert_eq!(got.len(), a.lock.packages.len(), "{out}");
        for lp in &a.lock.packages {
            let want = format!("{} {} ii ", lp.name, lp.version);
            assert!(
                got.contains(&want.as_str()),
                "{want:?} not in dpkg-query output"
            );
        }
    }
}

/// The whole CLI build from `[sources.debian]`: lock written beside the profile, an SPDX
/// SBOM the reference validator accepts; then an offline rebuild with the mirror gone gives
/// byte-identical images from the lock and the cache alone, built with no root: as an
/// unprivileged user (`nobody`, by setpriv when the test runs as root) whose only writable
/// places are the profile's directory (lock, secrets, output) and its own cache (a
/// hard-linked copy of the warm one, whose files it can read but not change).
#[test]
fn build_from_debian_writes_lock_and_sbom_and_rebuilds_identically_offline_unprivileged() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let Some(mirror) = host_mirror() else { return };
    let root = crate::util::sh("id -u").trim() == "0";
    if root && !crate::need::have(&["setpriv"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (dir, user_cache) = (tmp.path().join("work"), tmp.path().join("cache"));
    std::fs::create_dir(&dir).unwrap();
    let text = std::fs::read_to_string(crate::root().join("profiles/ci-aarch64.toml")).unwrap();
    let start = text.find("[sources]").unwrap();
    let standin = crate::root().join("ci/k3s-standin/k3s");
    let text = format!(
        "{}[sources]\nk3s = {{ path = \"{}\" }}\n\n[sources.debian]\nsuite = \"trixie\"\n",
        &text[..start]
            .replace("pi5 = true\n", "")
            .replace("data-size", "format = \"raw\"\ndata-size"),
        standin.display()
    );
    let profile = dir.join("deb.toml");
    std::fs::write(&profile, text).unwrap();
    let o = crate::bin()
        .env("BAKERY_DEBIAN_MIRROR", &mirror)
        .env("BAKERY_CACHE_DIR", cache_dir())
        .arg("build")
        .arg(&profile)
        .args(["--node", "ci-s1", "--out"])
        .arg(dir.join("out1"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let lock = dir.join("deb.lock");
    let locked = std::fs::read_to_string(&lock).unwrap();
    assert!(locked.contains("name = \"systemd\""), "{locked}");
    let sbom = dir.join("out1/sbom.spdx.json");
    let doc: serde_json::Value = serde_json::from_slice(&std::fs::read(&sbom).unwrap()).unwrap();
    let names: Vec<&str> = doc["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"systemd") && names.contains(&"k3s"),
        "{names:?}"
    );
    // The SPDX project's validator (from PyPI, in a private venv).
    crate::util::run(std::process::Command::new(crate::root().join("ci/validate-sbom")).arg(&sbom));

    // The rebuild: offline, no mirror, no root.
    let bin = assert_cmd::cargo::cargo_bin("bakery-image");
    let mut c = if root {
        let cmd = |args: &[&std::ffi::OsStr]| {
            crate::util::run(std::process::Command::new(args[0]).args(&args[1..]))
        };
        cmd(&[
            "cp".as_ref(),
            "-al".as_ref(),
            cache_dir().as_os_str(),
            user_cache.as_os_str(),
        ]);
        cmd(&[
            "chown".as_ref(),
            "-R".as_ref(),
            "65534:65534".as_ref(),
            dir.as_os_str(),
        ]);
        // Only the cache's directories become the user's: its files stay root's.
        crate::util::run(std::process::Command::new("find").arg(&user_cache).args([
            "-type",
            "d",
            "-exec",
            "chown",
            "65534:65534",
            "{}",
            "+",
        ]));
        let mut c = std::process::Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin);
        c
    } else {
        crate::util::run(
            std::process::Command::new("cp")
                .arg("-r")
                .arg(cache_dir())
                .arg(&user_cache),
        );
        std::process::Command::new(&bin)
    };
    let o = c
        .env("BAKERY_CACHE_DIR", &user_cache)
        .env("BAKERY_DEBIAN_MIRROR", "http://127.0.0.1:9/debian")
        .env("HOME", &dir)
        .current_dir(&dir)
        .arg("build")
        .arg(&profile)
        .args(["--offline", "--node", "ci-s1", "--out"])
        .arg(dir.join("out2"))
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "the unprivileged offline rebuild failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&lock).unwrap(),
        locked,
        "the lock is honoured, not rewritten"
    );
    let sums = |o: &str| std::fs::read_to_string(dir.join(o).join("SHA256SUMS")).unwrap();
    assert_eq!(
        sums("out1"),
        sums("out2"),
        "same profile and lock, same images, whoever builds them"
    );
    let img = dir.join("out2/ci-s1.img");
    if root {
        assert_eq!(
            std::fs::metadata(&img).unwrap().uid(),
            65534,
            "written by the user"
        );
    }
    // Inside, the system is root's all the same: owners and the setuid bit come from the
    // packages, not from who built it (unsquashfs lists p2 in place).
    let table = crate::util::sh(&format!("sfdisk -J {}", img.display()));
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let p2 = table["partitiontable"]["partitions"][1]["start"]
        .as_u64()
        .unwrap();
    let listing = crate::util::sh(&format!(
        "unsquashfs -o {} -lln {} usr/bin/passwd",
        p2 * 512,
        img.display()
    ));
    assert!(
        listing.contains("-rwsr-xr-x 0/0"),
        "passwd is setuid root in the image: {listing}"
    );
}

/// `--offline` with no lock for the profile's set is a user error that says what to run;
/// `fetch` resolves the set and writes the lock, after which an offline fetch holds.
#[test]
fn offline_needs_the_lock_and_fetch_writes_it() {
    let Some(mirror) = host_mirror() else { return };
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(crate::root().join("profiles/ci-x86_64.toml")).unwrap();
    let start = text.find("[sources]").unwrap();
    let standin = crate::root().join("ci/k3s-standin/k3s");
    let profile = dir.path().join("p.toml");
    std::fs::write(
        &profile,
        format!(
            "{}[sources]\nk3s = {{ path = \"{}\" }}\n\n[sources.debian]\nsuite = \"trixie\"\n",
            &text[..start],
            standin.display()
        ),
    )
    .unwrap();
    let run = |args: &[&str]| {
        crate::bin()
            .env("BAKERY_DEBIAN_MIRROR", &mirror)
            .env("BAKERY_CACHE_DIR", cache_dir())
            .args(args)
            .arg(&profile)
            .output()
            .unwrap()
    };
    let o = run(&[
        "build",
        "--offline",
        "--out",
        dir.path().join("out").to_str().unwrap(),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("--offline, but no lock") && err.contains("hint: run `bakery-image fetch`"),
        "{err}"
    );
    assert!(!dir.path().join("out/ci-s1.img.xz").exists());
    let o = run(&["fetch"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let lock = std::fs::read_to_string(dir.path().join("p.lock")).unwrap();
    assert!(
        lock.contains("name = \"haproxy\""),
        "the load balancer's package is locked"
    );
    let o = run(&["fetch", "--offline"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}
