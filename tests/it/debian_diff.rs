//! The differential test: the same package set assembled by mmdebstrap (the reference,
//! running the real maintainer scripts as root) and by bakery-image (no root, no
//! scripts). Paths, types, modes, owners, link targets, users and groups and the
//! alternatives links must match, except for the allowlist below, each with its reason.

use std::collections::BTreeMap;
use std::process::Command;

use bakery_image::stage::dir::{DirOptions, read_dir};
use bakery_image::stage::{Kind, Tree};

use super::debian::{cache_dir, host_mirror};

/// Paths (prefixes) whose difference is expected, and why.
const ALLOW: &[(&str, &str)] = &[
    (
        "var/cache/",
        "apt and debconf caches of the install run; we run neither",
    ),
    ("var/lib/apt/", "apt's lists and state of the install run"),
    ("var/log/", "logs of the install run"),
    (
        "var/lib/dpkg/",
        "dpkg's own bookkeeping beyond status (info/*.list, triggers, locks, backups); status is checked by dpkg-query in debian::assembled_*",
    ),
    (
        "var/lib/systemd/",
        "state systemd writes when its postinst runs (catalog, deb-systemd-helper)",
    ),
    ("var/lib/ucf/", "ucf's conffile registry (scripts only)"),
    ("var/lib/pam/", "pam-auth-update's state (scripts only)"),
    ("var/lib/sgml-base/", "scripts only"),
    (
        "etc/ld.so.cache",
        "written at boot (see the configure table)",
    ),
    (
        "etc/ssl/certs/",
        "update-ca-certificates also makes OpenSSL hash links; the bundle is checked in debian::assembled_*",
    ),
    (
        "etc/systemd/system/",
        "unit enablement by deb-systemd-helper; the node runtime enables its own units",
    ),
    ("etc/rc", "sysv-rc links from update-rc.d"),
    ("etc/apt/", "mmdebstrap writes its sources list"),
    ("etc/hostname", "mmdebstrap copies the host's"),
    ("etc/resolv.conf", "mmdebstrap copies the host's"),
    ("etc/hosts", "mmdebstrap copies the host's"),
    ("etc/mtab", "made by a script; systemd makes it at boot"),
    (
        "etc/machine-id",
        "both empty; mmdebstrap leaves 'uninitialized'",
    ),
    (
        "etc/ssh/ssh_host_",
        "host keys are generated per node at boot",
    ),
    (
        "etc/initramfs-tools/",
        "update-initramfs state; our initramfs is built by the boot stage",
    ),
    (
        "boot/initrd.img",
        "update-initramfs output; the boot stage makes its own",
    ),
    ("initrd.img", "linux-base's symlinks to the initramfs"),
    ("vmlinuz", "linux-base's symlinks to the kernel"),
    (
        "usr/lib/modules/",
        "depmod output: the boot stage writes the module indexes",
    ),
    (
        "etc/alternatives/README",
        "shipped by dpkg; we write only the links",
    ),
    ("usr/share/info/dir", "install-info output"),
    ("etc/shadow-", "backup files of the shadow tools"),
    ("etc/gshadow-", "backup files of the shadow tools"),
    ("etc/passwd-", "backup files of the shadow tools"),
    ("etc/group-", "backup files of the shadow tools"),
    (
        "etc/subuid",
        "useradd's subordinate ids (interactive users only)",
    ),
    (
        "etc/subgid",
        "useradd's subordinate ids (interactive users only)",
    ),
    (
        "etc/fstab",
        "made by a script; the node runtime writes its own",
    ),
    ("etc/debconf", "debconf state"),
    ("usr/lib/python3", "byte-compiled caches"),
    ("run/", "runtime state of the install run"),
    ("tmp/", "mode of the install's tmp"),
    (
        "dev/",
        "mmdebstrap makes device nodes; the kernel's devtmpfs provides them",
    ),
    ("proc", "mount points mmdebstrap creates"),
    ("sys", "mount points mmdebstrap creates"),
    (
        "etc/.pwd.lock",
        "the lock file a run of the shadow tools leaves; nothing reads it",
    ),
    (
        "etc/systemd/user/",
        "user unit enablement by deb-systemd-helper (ssh-agent.socket); a node has no user sessions",
    ),
    (
        "usr/lib/udev/hwdb.bin",
        "compiled at boot by systemd-hwdb-update.service into /etc/udev (see the configure table)",
    ),
];

fn allowed(path: &str) -> bool {
    ALLOW.iter().any(|(p, _)| path.starts_with(p))
}

fn describe(e: &bakery_image::stage::Entry) -> String {
    let kind = match &e.kind {
        Kind::Dir => "dir".to_owned(),
        Kind::File(_) | Kind::Hardlink(_) => "file".to_owned(),
        Kind::Symlink(t) => format!("-> {t}"),
        k => format!("{k:?}"),
    };
    let mode = if matches!(e.kind, Kind::Symlink(_)) {
        0
    } else {
        e.mode
    };
    format!("{kind} {mode:o} {}:{}", e.uid, e.gid)
}

fn entries(t: &Tree) -> BTreeMap<String, String> {
    t.iter()
        .filter(|(p, _)| !p.is_empty() && !allowed(p))
        .map(|(p, e)| (p.to_owned(), describe(e)))
        .collect()
}

fn text(t: &Tree, p: &str) -> String {
    match &t.get(p).map(|e| &e.kind) {
        Some(Kind::File(d)) => String::from_utf8_lossy(&d.read().unwrap()).into_owned(),
        _ => String::new(),
    }
}

// Runs as root (mmdebstrap --mode=root), about a minute with a warm cache.
#[test]
fn same_tree_as_mmdebstrap_for_the_same_packages() {
    use bakery_image::build::{self, Parts};
    use bakery_image::progress::Quiet;
    let Some(mirror) = host_mirror() else { return };
    if !crate::need::have(&["mmdebstrap"]) || !nix_root() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text_p = std::fs::read_to_string(crate::root().join("profiles/ci-x86_64.toml")).unwrap();
    let start = text_p.find("[sources]").unwrap();
    let profile = dir.path().join("x.toml");
    std::fs::write(
        &profile,
        format!(
            "{}[sources.debian]\nmirror = \"{mirror}\"\n",
            &text_p[..start]
        ),
    )
    .unwrap();
    let p = bakery_image::profile::load(&profile).unwrap();
    let a = build::debian_base(
        &p,
        &bakery_image::fetch::FetchOptions::new(cache_dir()),
        false,
        &Quiet,
    )
    .unwrap()
    .unwrap();
    let ours = build::compose_system(&p, &Parts::new(&[]).with_debian(&a), dir.path()).unwrap();

    let include: Vec<String> = a
        .lock
        .packages
        .iter()
        .map(|p| format!("{}={}", p.name, p.version))
        .collect();
    let reference = dir.path().join("ref");
    crate::util::run(
        Command::new("mmdebstrap")
            .args([
                "--quiet",
                "--mode=root",
                "--variant=custom",
                "--arch=amd64",
                "--format=directory",
            ])
            .arg(format!("--include={}", include.join(",")))
            .args(["--aptopt=APT::Install-Recommends=false", "trixie"])
            .arg(&reference)
            .arg(format!("deb {mirror} trixie main non-free-firmware")),
    );
    let theirs = read_dir(&reference, DirOptions::default()).unwrap();

    let (o, t) = (entries(&ours), entries(&theirs));
    let mut diffs = Vec::new();
    for (path, d) in &t {
        match o.get(path) {
            None => diffs.push(format!("only mmdebstrap: {path} {d}")),
            Some(x) if x != d => diffs.push(format!("differs: {path}: ours {x}, mmdebstrap {d}")),
            _ => {}
        }
    }
    for (path, d) in &o {
        if !t.contains_key(path) {
            diffs.push(format!("only ours: {path} {d}"));
        }
    }
    // Users and groups: the same entries (name, ids, gecos, home, shell, members); the
    // shadow files: the same names, passwords (all locked) and ageing fields, except the
    // day of the last change (the build's timestamp against the day mmdebstrap ran).
    for (f, keep) in [
        ("etc/passwd", &[0, 1, 2, 3, 4, 5, 6][..]),
        ("etc/group", &[0, 1, 2, 3][..]),
        ("etc/shadow", &[0, 1, 3, 4, 5, 6, 7, 8][..]),
        ("etc/gshadow", &[0, 1, 2, 3][..]),
    ] {
        let names = |t: &Tree| -> Vec<String> {
            let mut v: Vec<String> = text(t, f)
                .lines()
                .map(|l| {
                    let w: Vec<&str> = l.split(':').collect();
                    keep.iter()
                        .map(|&i| w.get(i).copied().unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(":")
                })
                .collect();
            v.sort();
            v
        };
        if names(&ours) != names(&theirs) {
            diffs.push(format!(
                "{f}: ours {:?}\n  mmdebstrap {:?}",
                names(&ours),
                names(&theirs)
            ));
        }
    }
    assert!(
        diffs.is_empty(),
        "{} difference(s) from mmdebstrap outside the allowlist:\n{}",
        diffs.len(),
        diffs.join("\n")
    );
}

fn nix_root() -> bool {
    crate::util::sh("id -u").trim() == "0"
        || !crate::need::skip("mmdebstrap --mode=root needs root")
}
