//! Does a staged base hold what the node runtime needs? [`check_base`] looks for every
//! required program and kernel module and the profile's time zone (following the tree's
//! symlinks, so merged /usr and `sbin/modprobe -> ../bin/kmod` count) and reports
//! everything missing at once, each with the package that provides it.

use std::collections::BTreeSet;
use std::fmt;

use super::resolve::{lookup, resolve};
use super::{Kind, Tree};
use crate::profile::{NfsServer, Profile};

/// What the base must contain. A plain struct: the caller fills it from the profile
/// ([`Requirements::for_profile`]) and the board code adds kernel modules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Requirements {
    /// systemd as init.
    pub systemd: bool,
    /// busybox (the initramfs and the runtime's small helpers use it).
    pub busybox: bool,
    /// sfdisk, mkfs.ext4 and e2fsck (growing and formatting the data partition).
    pub disk_tools: bool,
    /// kmod / modprobe.
    pub kmod: bool,
    /// keepalived (servers hold the VIP).
    pub keepalived: bool,
    /// An NFS server (a node of the cluster exports the share).
    pub nfs_server: bool,
    /// HAProxy (the profile has `role = "loadbalancer"` nodes).
    pub haproxy: bool,
    /// The profile's time zone, which must be in the base's tz database (tzdata).
    pub timezone: Option<String>,
    /// Kernel module names ("overlay", "br_netfilter"), found as `*.ko[.xz|.zst|.gz]`
    /// under `lib/modules/<version>/` or listed in its `modules.builtin`.
    pub kernel_modules: Vec<String>,
}

impl Requirements {
    /// What every node image built from `p` needs (one system image serves all nodes,
    /// so server-only and NFS parts are required when any node needs them). Kernel
    /// modules are left for the board code to add.
    pub fn for_profile(p: &Profile) -> Self {
        Self {
            systemd: true,
            busybox: true,
            disk_tools: true,
            kmod: true,
            // Servers hold the VIP; two load balancers share their address the same way.
            keepalived: p.servers().next().is_some()
                || p.loadbalancer.as_ref().is_some_and(|lb| lb.shared),
            haproxy: p.loadbalancer.is_some(),
            nfs_server: matches!(p.nfs.as_ref().map(|n| &n.server), Some(NfsServer::Node(_))),
            timezone: Some(p.cluster.timezone.clone()),
            kernel_modules: Vec::new(),
        }
    }
}

/// One missing part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    /// What is missing: "systemd", "sfdisk", "kernel module overlay".
    pub what: String,
    /// The paths that were tried.
    pub looked_for: Vec<String>,
    pub hint: String,
}

/// Everything the base lacks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct MissingParts(pub Vec<Missing>);

impl fmt::Display for MissingParts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "the base root filesystem lacks {} part(s) the node runtime needs:",
            self.0.len()
        )?;
        for m in &self.0 {
            let paths: Vec<String> = m.looked_for.iter().map(|p| format!("/{p}")).collect();
            writeln!(f, "  - {} (looked for {})", m.what, paths.join(", "))?;
            writeln!(f, "    {}", m.hint)?;
        }
        write!(
            f,
            "hint: add the packages named above to the base (e.g. mmdebstrap --include=...) or as .deb files in sources.packages"
        )
    }
}

/// Check `tree` against `req`, listing every missing part.
pub fn check_base(tree: &Tree, req: &Requirements) -> Result<(), MissingParts> {
    let mut missing = Vec::new();
    let mut need = |on: bool, what: &str, paths: &[&str], hint: &str| {
        if on && !paths.iter().any(|p| is_file(tree, p)) {
            missing.push(Missing {
                what: what.to_owned(),
                looked_for: paths.iter().map(|p| (*p).to_owned()).collect(),
                hint: hint.to_owned(),
            });
        }
    };
    need(
        req.systemd,
        "systemd",
        &["lib/systemd/systemd", "usr/lib/systemd/systemd"],
        "install systemd (package systemd-sysv)",
    );
    need(
        req.busybox,
        "busybox",
        &["bin/busybox", "usr/bin/busybox"],
        "add busybox-static (or busybox)",
    );
    let sbin = |name: &str| [format!("sbin/{name}"), format!("usr/sbin/{name}")];
    for (name, pkg) in [
        ("sfdisk", "fdisk"),
        ("mkfs.ext4", "e2fsprogs"),
        ("e2fsck", "e2fsprogs"),
    ] {
        let p = sbin(name);
        need(
            req.disk_tools,
            name,
            &[&p[0], &p[1]],
            &format!("add the {pkg} package"),
        );
    }
    need(
        req.kmod,
        "kmod (modprobe)",
        &[
            "sbin/modprobe",
            "usr/sbin/modprobe",
            "bin/kmod",
            "usr/bin/kmod",
        ],
        "add the kmod package",
    );
    need(
        req.keepalived,
        "keepalived",
        &["usr/sbin/keepalived", "sbin/keepalived"],
        "add keepalived: servers hold the cluster VIP with it",
    );
    need(
        req.haproxy,
        "haproxy",
        &["usr/sbin/haproxy", "sbin/haproxy"],
        "add haproxy: the profile's role = \"loadbalancer\" nodes run it in front of the servers",
    );
    for name in ["rpc.nfsd", "exportfs"] {
        let p = sbin(name);
        need(
            req.nfs_server,
            name,
            &[&p[0], &p[1]],
            "add nfs-kernel-server: a node of this cluster serves NFS",
        );
    }
    if let Some(tz) = &req.timezone {
        need(
            true,
            &format!("time zone {tz}"),
            &[&format!("usr/share/zoneinfo/{tz}")],
            "add the tzdata package, or set cluster.timezone to a zone the base has",
        );
    }
    // HAProxy drops to Debian's haproxy user, which the package's postinst makes: a
    // haproxy unpacked from sources.packages has no user.
    if req.haproxy && !has_user(tree, "haproxy") {
        missing.push(Missing {
            what: "user haproxy".into(),
            looked_for: vec!["etc/passwd".into()],
            hint: "install haproxy into the base (mmdebstrap --include=haproxy, or [sources.debian]): its postinst makes the user; a .deb in sources.packages is only unpacked".into(),
        });
    }
    if !req.kernel_modules.is_empty() {
        let (dirs, have) = kernel_modules(tree);
        for m in &req.kernel_modules {
            // "a|b": either will do (crc32c_generic became crc32c_cryptoapi in 6.15).
            if !m.split('|').any(|alt| have.contains(&module_key(alt))) {
                missing.push(Missing {
                    what: format!("kernel module {m}"),
                    looked_for: if dirs.is_empty() {
                        vec!["lib/modules/<version>/".into()]
                    } else {
                        dirs.iter().map(|d| format!("{d}/**/{m}.ko*")).collect()
                    },
                    hint: if dirs.is_empty() {
                        "no kernel modules at all: add the board's kernel package (linux-image-...) to sources.packages".into()
                    } else {
                        "use a kernel package that builds this module (or has it built in)".into()
                    },
                });
            }
        }
    }
    if missing.is_empty() {
        Ok(())
    } else {
        Err(MissingParts(missing))
    }
}

/// Whether `etc/passwd` of the tree has a line for `user`.
fn has_user(tree: &Tree, user: &str) -> bool {
    let Some((_, e)) = lookup(tree, "etc/passwd") else {
        return false;
    };
    let Kind::File(data) = &e.kind else {
        return false;
    };
    data.read().is_ok_and(|t| {
        String::from_utf8_lossy(&t)
            .lines()
            .any(|l| l.split(':').next() == Some(user))
    })
}

fn is_file(tree: &Tree, path: &str) -> bool {
    matches!(
        lookup(tree, path).map(|(_, e)| &e.kind),
        Some(Kind::File(_) | Kind::Hardlink(_))
    )
}

/// "br-netfilter.ko.xz" and "br_netfilter" are the same module.
fn module_key(name: &str) -> String {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = [".ko.xz", ".ko.zst", ".ko.gz", ".ko"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    base.replace('-', "_")
}

/// The kernel version directories and every module they hold (files and built-ins).
fn kernel_modules(tree: &Tree) -> (Vec<String>, BTreeSet<String>) {
    let mut dirs = BTreeSet::new();
    for base in ["lib/modules", "usr/lib/modules"] {
        if let Ok(p) = resolve(tree, base, true) {
            for (v, e) in tree.children(&p) {
                if e.kind == Kind::Dir {
                    dirs.insert(v.to_owned());
                }
            }
        }
    }
    let mut have = BTreeSet::new();
    for d in &dirs {
        let prefix = format!("{d}/");
        for (p, e) in tree.iter().filter(|(p, _)| p.starts_with(&prefix)) {
            let name = &p[prefix.len()..];
            if name.contains(".ko") && !matches!(e.kind, Kind::Dir) {
                have.insert(module_key(name));
            } else if name == "modules.builtin"
                && let Kind::File(data) = &e.kind
                && let Ok(text) = data.read()
            {
                for line in String::from_utf8_lossy(&text).lines() {
                    have.insert(module_key(line.trim()));
                }
            }
        }
    }
    (dirs.into_iter().collect(), have)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{Data, Entry};

    fn file(t: &mut Tree, p: &str) {
        t.insert(p, Entry::file(Data::bytes(*b"x"), 0o755)).unwrap();
    }

    fn all() -> Requirements {
        Requirements {
            systemd: true,
            busybox: true,
            disk_tools: true,
            kmod: true,
            keepalived: true,
            nfs_server: true,
            haproxy: true,
            timezone: Some("Europe/Berlin".into()),
            kernel_modules: vec!["overlay".into(), "br_netfilter".into(), "ext4".into()],
        }
    }

    #[test]
    fn empty_base_lists_everything() {
        let err = check_base(&Tree::new(), &all()).unwrap_err();
        let what: Vec<&str> = err.0.iter().map(|m| m.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "systemd",
                "busybox",
                "sfdisk",
                "mkfs.ext4",
                "e2fsck",
                "kmod (modprobe)",
                "keepalived",
                "haproxy",
                "rpc.nfsd",
                "exportfs",
                "time zone Europe/Berlin",
                "user haproxy",
                "kernel module overlay",
                "kernel module br_netfilter",
                "kernel module ext4"
            ]
        );
        let text = err.to_string();
        assert!(text.contains("add the fdisk package"), "{text}");
        assert!(text.contains("linux-image"), "{text}");
        assert!(text.trim_end().lines().last().unwrap().starts_with("hint:"));
    }

    #[test]
    fn merged_usr_base_with_everything_passes() {
        let mut t = Tree::new();
        for l in ["bin", "sbin", "lib"] {
            t.insert(l, Entry::symlink(format!("usr/{l}"))).unwrap();
        }
        for f in [
            "usr/lib/systemd/systemd",
            "usr/bin/busybox",
            "usr/sbin/sfdisk",
            "usr/sbin/mkfs.ext4",
            "usr/sbin/e2fsck",
            "usr/bin/kmod",
            "usr/sbin/keepalived",
            "usr/sbin/haproxy",
            "usr/sbin/rpc.nfsd",
            "usr/sbin/exportfs",
            "usr/share/zoneinfo/Europe/Berlin",
            "usr/lib/modules/6.1.0-1-arm64/kernel/fs/overlayfs/overlay.ko.xz",
            "usr/lib/modules/6.1.0-1-arm64/kernel/net/bridge/br_netfilter.ko",
        ] {
            file(&mut t, f);
        }
        t.insert("usr/sbin/modprobe", Entry::symlink("../bin/kmod"))
            .unwrap();
        t.add_bytes(
            "usr/lib/modules/6.1.0-1-arm64/modules.builtin",
            "kernel/fs/ext4/ext4.ko\n",
            0o644,
        )
        .unwrap();
        t.add_bytes(
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/bash\nhaproxy:x:100:101::/var/lib/haproxy:/usr/sbin/nologin\n",
            0o644,
        )
        .unwrap();
        check_base(&t, &all()).unwrap();
        // A dangling symlink does not count.
        t.remove("usr/bin/kmod");
        let err = check_base(&t, &all()).unwrap_err();
        assert_eq!(err.0.len(), 1, "{err}");
        assert_eq!(err.0[0].what, "kmod (modprobe)");
    }
}
