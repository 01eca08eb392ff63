//! The base tree from fetched packages, and what their maintainer scripts would have
//! done, done declaratively (scripts are read, never run):
//!
//! | effect | when | how |
//! |---|---|---|
//! | merged /usr links | build | `bin`, `sbin`, `lib` → `usr/…` before anything is unpacked |
//! | users, groups, shadow | build | [`super::users`]: base-passwd, sysusers.d, adduser table |
//! | alternatives | build | `update-alternatives --install` lines of each postinst; highest priority wins |
//! | dpkg status database | build | `var/lib/dpkg/status` and `info/` from each control.tar (`dpkg -l` works) |
//! | CA bundle | build | `etc/ca-certificates.conf`, `etc/ssl/certs/ca-certificates.crt`, `*.pem` links |
//! | machine-id | build (empty) / boot | empty `etc/machine-id`: systemd makes the id on first boot |
//! | ld.so.cache | boot | not written: the loader searches the multiarch dirs without it, and `ldconfig.service` writes it where /etc is writable |
//! | tmpfiles, hwdb | boot | systemd-tmpfiles-setup and systemd-hwdb-update run from their units |
//! | diversions | build | none in the runtime set: empty `var/lib/dpkg/diversions` |

use std::collections::BTreeMap;
use std::path::Path;

use super::control::{Control, read_control};
use super::lock::LockedPackage;
use crate::stage::{self, ContentStore, Data, Entry, Kind, StageError, Tree};

/// Unpack `debs` (in order) over a fresh tree with the merged-/usr links, then apply
/// the declarative configuration. `timestamp` dates the generated files (default: the
/// newest file of the packages, so the same packages give the same tree).
pub fn base_tree(
    debs: &[(LockedPackage, &Path)],
    store: &mut ContentStore,
    timestamp: Option<i64>,
) -> Result<Tree, StageError> {
    let mut tree = Tree::new();
    let timestamp = timestamp.unwrap_or(0);
    let mut controls = Vec::new();
    for link in ["bin", "sbin", "lib"] {
        let path_error = |e: stage::tree::PathError| StageError::Format {
            archive: "sources.debian".into(),
            reason: e.to_string(),
            hint: "this is a bug in bakery-image",
        };
        tree.insert(
            link,
            Entry::symlink(format!("usr/{link}")).with_mtime(timestamp),
        )
        .map_err(path_error)?;
        tree.insert(
            &format!("usr/{link}"),
            Entry::dir(0o755).with_mtime(timestamp),
        )
        .map_err(path_error)?;
    }
    for (p, deb) in debs {
        stage::apply(&mut tree, deb, store)?;
        let c = read_control(deb).map_err(|reason| StageError::Format {
            archive: deb.to_path_buf(),
            reason,
            hint: "the cached package is damaged: clear the cache entry and build again",
        })?;
        controls.push((p.clone(), c));
    }
    let timestamp = if timestamp > 0 {
        timestamp
    } else {
        tree.iter().map(|(_, e)| e.mtime).max().unwrap_or(0)
    };
    configure(&mut tree, &controls, timestamp).map_err(|reason| StageError::Format {
        archive: "sources.debian".into(),
        reason,
        hint: "the package set lacks a part the base needs; add it to sources.debian.packages",
    })?;
    Ok(tree)
}

fn configure(tree: &mut Tree, pkgs: &[(LockedPackage, Control)], t: i64) -> Result<(), String> {
    let names: Vec<&str> = pkgs.iter().map(|(p, _)| p.name.as_str()).collect();
    let db = super::users::make_users(tree, &names, t / 86_400)?;
    script_effects(tree, &db, t).map_err(|e| e.to_string())?;
    for (_, c) in pkgs {
        if let Some(s) = c.get("postinst") {
            alternatives(tree, s, t).map_err(|e| e.to_string())?;
        }
    }
    dpkg_database(tree, pkgs, t).map_err(|e| e.to_string())?;
    ca_bundle(tree, t).map_err(|e| e.to_string())?;
    tree.insert(
        "etc/machine-id",
        Entry::file(Data::bytes(""), 0o444).with_mtime(t),
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}

/// Files postinsts copy from /usr/share into /etc when absent (base-files, libc-bin,
/// debianutils, openssh-server via ucf, nfs-common, nfs-kernel-server). Not libpam-runtime's
/// `common-*`: those are templates pam-auth-update fills in (not done yet).
const COPIES: &[(&str, &str)] = &[
    ("usr/share/base-files/profile", "etc/profile"),
    ("usr/share/base-files/motd", "etc/motd"),
    ("usr/share/base-files/dot.bashrc", "root/.bashrc"),
    ("usr/share/base-files/dot.profile", "root/.profile"),
    ("usr/share/libc-bin/nsswitch.conf", "etc/nsswitch.conf"),
    ("usr/share/debianutils/shells", "etc/shells"),
    ("usr/share/openssh/sshd_config", "etc/ssh/sshd_config"),
    (
        "usr/share/pam/common-session-noninteractive",
        "etc/pam.d/common-session-noninteractive",
    ),
    (
        "usr/share/nfs-common/conffiles/idmapd.conf",
        "etc/idmapd.conf",
    ),
    ("usr/share/nfs-common/conffiles/nfs.conf", "etc/nfs.conf"),
    (
        "usr/share/nfs-common/conffiles/nfs-common.default",
        "etc/default/nfs-common",
    ),
    (
        "usr/share/nfs-kernel-server/conffiles/etc.exports",
        "etc/exports",
    ),
    (
        "usr/share/nfs-kernel-server/conffiles/nfs-kernel-server.default",
        "etc/default/nfs-kernel-server",
    ),
];

/// Directories base-files' postinst makes (mode, gid), and its compatibility links.
const DIRS: &[(&str, u32, u32)] = &[
    ("media", 0o755, 0),
    ("mnt", 0o755, 0),
    ("opt", 0o755, 0),
    ("srv", 0o755, 0),
    ("etc/opt", 0o755, 0),
    ("var/opt", 0o755, 0),
    ("var/mail", 0o2775, 8),
    ("usr/local/bin", 0o755, 0),
    ("usr/local/etc", 0o755, 0),
    ("usr/local/games", 0o755, 0),
    ("usr/local/include", 0o755, 0),
    ("usr/local/lib", 0o755, 0),
    ("usr/local/libexec", 0o755, 0),
    ("usr/local/sbin", 0o755, 0),
    ("usr/local/share/man", 0o755, 0),
    ("usr/local/src", 0o755, 0),
];
const LINKS: &[(&str, &str)] = &[
    ("usr/local/man", "share/man"),
    ("var/spool/mail", "../mail"),
    ("var/run", "/run"),
    ("var/lock", "/run/lock"),
];

/// What the set's scripts do beyond users and alternatives: copies, dirs, ownerships.
fn script_effects(
    tree: &mut Tree,
    db: &super::users::Db,
    t: i64,
) -> Result<(), stage::tree::PathError> {
    for (from, to) in COPIES {
        if let (Some(Kind::File(d)), false) = (tree.get(from).map(|e| &e.kind), tree.contains(to)) {
            let d = d.clone();
            tree.insert(to, Entry::file(d, 0o644).with_mtime(t))?;
        }
    }
    for (dir, mode, gid) in DIRS {
        if !tree.contains(dir) {
            tree.insert(dir, Entry::dir(*mode).with_owner(0, *gid).with_mtime(t))?;
        }
    }
    for (link, target) in LINKS {
        if !matches!(tree.get(link).map(|e| &e.kind), Some(Kind::Symlink(_))) {
            tree.insert(link, Entry::symlink(*target).with_mtime(t))?;
        }
    }
    // openssh-client: `chgrp _ssh ssh-agent; chmod 2755 ssh-agent`.
    let ssh_gid = db.groups.iter().find(|g| g.0 == "_ssh").map(|g| g.1);
    if let (Some(g), Some(e)) = (ssh_gid, tree.get_mut("usr/bin/ssh-agent")) {
        e.gid = g;
        e.mode = 0o2755;
    }
    // nfs-common: `chown statd: /var/lib/nfs/sm /var/lib/nfs/sm.bak`.
    let statd = db.users.iter().find(|u| u.0 == "statd").map(|u| (u.1, u.2));
    for p in ["var/lib/nfs/sm", "var/lib/nfs/sm.bak"] {
        if let (Some((u, g)), Some(e)) = (statd, tree.get_mut(p)) {
            e.uid = u;
            e.gid = g;
        }
    }
    Ok(())
}

/// `update-alternatives --install LINK NAME PATH PRIO [--slave LINK NAME PATH]...`
/// lines of a script (continuations joined); lines using shell variables are skipped.
pub fn parse_alternatives(script: &str) -> Vec<(Vec<[String; 3]>, i64)> {
    let joined = script.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let Some(at) = line.find("update-alternatives --install ") else {
            continue;
        };
        let w: Vec<&str> = line[at + 30..]
            .split_whitespace()
            .take_while(|w| !w.starts_with(['|', ';', '&', '#']))
            .collect();
        if w.len() < 4 || w.iter().any(|x| x.contains('$')) {
            continue;
        }
        let Ok(prio) = w[3].parse() else { continue };
        let mut links = vec![[w[0].to_owned(), w[1].to_owned(), w[2].to_owned()]];
        for s in w[4..].chunks(4) {
            if let ["--slave", l, n, p] = s {
                links.push([(*l).to_owned(), (*n).to_owned(), (*p).to_owned()]);
            }
        }
        out.push((links, prio));
    }
    out
}

fn alternatives(tree: &mut Tree, script: &str, t: i64) -> Result<(), stage::tree::PathError> {
    for (links, prio) in parse_alternatives(script) {
        let name = &links[0][1];
        let admin = format!("var/lib/dpkg/alternatives/{name}");
        // Keep an existing choice of higher priority (another package's postinst).
        if let Some(Kind::File(d)) = tree.get(&admin).map(|e| &e.kind) {
            let old = String::from_utf8_lossy(&d.read().unwrap_or_default()).into_owned();
            let old_prio = old
                .split("\n\n")
                .nth(1)
                .and_then(|b| b.lines().nth(1))
                .and_then(|p| p.parse::<i64>().ok());
            if old_prio.is_some_and(|o| o >= prio) {
                continue;
            }
        }
        let mut admin_text = format!("auto\n{}\n", links[0][0]);
        for [l, n, _] in &links[1..] {
            admin_text.push_str(&format!("{n}\n{l}\n"));
        }
        admin_text.push_str(&format!("\n{}\n{prio}\n", links[0][2]));
        for [_, _, p] in &links[1..] {
            admin_text.push_str(&format!("{p}\n"));
        }
        admin_text.push('\n');
        tree.add_bytes(&admin, admin_text, 0o644)?;
        for (i, [link, n, path]) in links.iter().enumerate() {
            let target = stage::resolve::resolve(tree, path.trim_start_matches('/'), true)
                .unwrap_or_default();
            if i > 0 && !tree.contains(&target) {
                continue; // a slave whose file this package set lacks
            }
            tree.insert(
                &format!("etc/alternatives/{n}"),
                Entry::symlink(path.clone()).with_mtime(t),
            )?;
            let at = stage::resolve::resolve(tree, link.trim_start_matches('/'), false)
                .unwrap_or_else(|_| link.trim_start_matches('/').to_owned());
            tree.insert(
                &at,
                Entry::symlink(format!("/etc/alternatives/{n}")).with_mtime(t),
            )?;
        }
    }
    Ok(())
}

/// `var/lib/dpkg/status` (every package "install ok installed") and `info/` files.
fn dpkg_database(
    tree: &mut Tree,
    pkgs: &[(LockedPackage, Control)],
    t: i64,
) -> Result<(), stage::tree::PathError> {
    let mut sorted: BTreeMap<&str, (&LockedPackage, &Control)> = BTreeMap::new();
    for (p, c) in pkgs {
        sorted.insert(&p.name, (p, c));
    }
    let mut status = String::new();
    for (name, (p, c)) in &sorted {
        let control = c.get("control").unwrap_or_default().trim_end();
        let mut lines = control.lines();
        let first = lines.next().unwrap_or_default();
        status.push_str(first);
        status.push_str("\nStatus: install ok installed\n");
        for l in lines {
            status.push_str(l);
            status.push('\n');
        }
        status.push('\n');
        let same = control.lines().any(|l| l.trim() == "Multi-Arch: same");
        let base = if same {
            format!("{name}:{}", p.arch)
        } else {
            (*name).to_owned()
        };
        for member in ["md5sums", "conffiles", "triggers", "shlibs", "symbols"] {
            if let Some(body) = c.get(member) {
                tree.add_bytes(
                    &format!("var/lib/dpkg/info/{base}.{member}"),
                    body.as_bytes().to_vec(),
                    0o644,
                )?;
            }
        }
    }
    tree.add_bytes("var/lib/dpkg/status", status, 0o644)?;
    for f in ["diversions", "statoverride", "available"] {
        tree.add_bytes(&format!("var/lib/dpkg/{f}"), "", 0o644)?;
    }
    let _ = t;
    Ok(())
}

/// What update-ca-certificates makes on a fresh install: every certificate enabled.
fn ca_bundle(tree: &mut Tree, t: i64) -> Result<(), stage::tree::PathError> {
    let mut certs: Vec<String> = tree
        .iter()
        .filter(|(p, e)| {
            p.starts_with("usr/share/ca-certificates/")
                && p.ends_with(".crt")
                && matches!(e.kind, Kind::File(_))
        })
        .map(|(p, _)| p.to_owned())
        .collect();
    if certs.is_empty() {
        return Ok(());
    }
    certs.sort();
    let mut conf = String::from(
        "# Generated by bakery-image: every certificate of ca-certificates is enabled.\n",
    );
    let mut bundle = Vec::new();
    for c in &certs {
        let rel = &c["usr/share/ca-certificates/".len()..];
        conf.push_str(rel);
        conf.push('\n');
        if let Some(Kind::File(d)) = tree.get(c).map(|e| &e.kind) {
            let mut b = d.read().unwrap_or_default();
            if !b.ends_with(b"\n") {
                b.push(b'\n');
            }
            bundle.extend(b);
        }
        let pem = rel
            .rsplit('/')
            .next()
            .unwrap_or(rel)
            .replace(".crt", ".pem");
        tree.insert(
            &format!("etc/ssl/certs/{pem}"),
            Entry::symlink(format!("/{c}")).with_mtime(t),
        )?;
    }
    tree.add_bytes("etc/ca-certificates.conf", conf, 0o644)?;
    tree.add_bytes("etc/ssl/certs/ca-certificates.crt", bundle, 0o644)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alternatives_lines_with_continuations_and_slaves() {
        let s = "if [ x ]; then\n  update-alternatives --install /usr/bin/awk awk /usr/bin/mawk 5 \\\n    --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz \\\n    --slave /usr/bin/nawk nawk /usr/bin/mawk\nfi\nupdate-alternatives --install $x y z 1\n";
        let a = parse_alternatives(s);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].1, 5);
        assert_eq!(a[0].0.len(), 3);
        assert_eq!(
            a[0].0[2],
            [
                "/usr/bin/nawk".to_owned(),
                "nawk".into(),
                "/usr/bin/mawk".into()
            ]
        );
    }
}
