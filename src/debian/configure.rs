//! The base tree from fetched packages, and what their maintainer scripts would have
//! done, done declaratively (scripts are read, never run):
//!
//! | effect | when | how |
//! |---|---|---|
//! | merged /usr links | build | `bin`, `sbin`, `lib` → `usr/…` before anything is unpacked |
//! | configure order | build | every package after its Pre-Depends/Depends (providers too), by name otherwise: the order the per-package effects below apply in |
//! | users, groups, shadow | build | [`super::users`]: base-passwd, each postinst's `systemd-sysusers` run with systemd's id allocation, the adduser table, then the sysusers.d files no script names |
//! | alternatives | build | `update-alternatives --install` lines of each postinst; highest priority wins |
//! | dpkg status database | build | `var/lib/dpkg/status` and `info/` from each control.tar (`dpkg -l` works) |
//! | PAM stacks | build | [`super::pam`]: pam-auth-update's `common-*` from `/usr/share/pam-configs` |
//! | tmpfiles at install | build | each postinst's `systemd-tmpfiles --create` files, for what the image keeps (`/etc`, `/var/lib`, `/root`); runtime dirs at boot |
//! | login shells | build | update-shells: `/etc/shells` and `var/lib/shells.state` from `shells.d` |
//! | files scripts write | build | copies from `/usr/share` ([`COPIES`]), here-documents ([`WRITTEN`]), base-files dirs and links, vendor and zone links, ownerships (ssh-agent, statd) |
//! | CA bundle | build | `etc/ca-certificates.conf`, `etc/ssl/certs/ca-certificates.crt`, `*.pem` links |
//! | machine-id | build (empty) / boot | empty `etc/machine-id`: systemd makes the id on first boot |
//! | ld.so.cache | boot | not written: the loader searches the multiarch dirs without it, and `ldconfig.service` writes it where /etc is writable |
//! | hwdb, the rest of tmpfiles | boot | systemd-hwdb-update compiles `/etc/udev/hwdb.bin`, systemd-tmpfiles-setup makes `/run`, `/tmp`, `/var/log` entries |
//! | unit enablement | boot | not from deb-systemd-helper: the node runtime enables its own units |
//! | diversions | build | none in the runtime set: empty `var/lib/dpkg/diversions` |
//!
//! The differential test (`tests/it/debian_diff.rs`) holds the result against
//! mmdebstrap's for the same package set; what differs is listed there with a reason.

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
    let ordered: Vec<(&str, Option<&str>)> = configure_order(pkgs)
        .into_iter()
        .map(|i| (pkgs[i].0.name.as_str(), pkgs[i].1.get("postinst")))
        .collect();
    let db = super::users::make_users(tree, &ordered, t / 86_400)?;
    let names: Vec<&str> = pkgs.iter().map(|(p, _)| p.name.as_str()).collect();
    script_effects(tree, &db, &names, t).map_err(|e| e.to_string())?;
    update_shells(tree, t).map_err(|e| e.to_string())?;
    for (_, postinst) in &ordered {
        for conf in postinst.map(tmpfiles_calls).unwrap_or_default() {
            tmpfiles(tree, &db, &conf, t).map_err(|e| e.to_string())?;
        }
    }
    super::pam::pam_auth_update(tree, t).map_err(|e| e.to_string())?;
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

/// The order dpkg configures `pkgs` in: every package after what it depends on
/// (Pre-Depends and Depends, an alternative or a provider in the set), packages and
/// their dependencies visited by name. Cycles are broken where they are met, as dpkg
/// does. Indexes into `pkgs`.
fn configure_order(pkgs: &[(LockedPackage, Control)]) -> Vec<usize> {
    let mut by_name: BTreeMap<String, usize> = BTreeMap::new();
    let mut provides: BTreeMap<String, usize> = BTreeMap::new();
    let mut deps: Vec<Vec<Vec<String>>> = Vec::new();
    for (i, (p, c)) in pkgs.iter().enumerate() {
        by_name.insert(p.name.clone(), i);
        let para = c.get("control").unwrap_or_default();
        let field = |name: &str| -> Vec<Vec<String>> {
            let value = super::deb822::parse(para)
                .ok()
                .and_then(|v| v.first().and_then(|p| p.get(name)).map(str::to_owned))
                .unwrap_or_default();
            super::packages::relations(&value)
                .unwrap_or_default()
                .into_iter()
                .map(|alts| alts.into_iter().map(|a| a.name).collect())
                .collect()
        };
        for a in field("Provides").into_iter().flatten() {
            provides.entry(a).or_insert(i);
        }
        let mut d = field("Pre-Depends");
        d.extend(field("Depends"));
        deps.push(d);
    }
    let pick = |alts: &Vec<String>| {
        alts.iter()
            .find_map(|a| by_name.get(a).or_else(|| provides.get(a)).copied())
    };
    let edges: Vec<Vec<usize>> = deps
        .iter()
        .map(|d| {
            let mut v: Vec<usize> = d.iter().filter_map(pick).collect();
            v.sort_by(|a, b| pkgs[*a].0.name.cmp(&pkgs[*b].0.name));
            v.dedup();
            v
        })
        .collect();
    let mut order = Vec::with_capacity(pkgs.len());
    let mut seen = vec![false; pkgs.len()];
    // Iterative depth-first search: a package goes out once its dependencies have.
    for &root in by_name.values() {
        if seen[root] {
            continue;
        }
        seen[root] = true;
        let mut stack = vec![(root, 0usize)];
        while let Some((n, next)) = stack.last_mut() {
            if let Some(&d) = edges[*n].get(*next) {
                *next += 1;
                if !seen[d] {
                    seen[d] = true;
                    stack.push((d, 0));
                }
            } else {
                order.push(*n);
                stack.pop();
            }
        }
    }
    order
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
    ("usr/share/readline/inputrc", "etc/inputrc"),
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
    installed: &[&str],
    t: i64,
) -> Result<(), stage::tree::PathError> {
    let has = |p: &str| installed.contains(&p);
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
    // nfs-common: `chown statd: /var/lib/nfs/sm /var/lib/nfs/sm.bak`, `touch state;
    // chown statd state`; nfs-kernel-server: empty etab and rmtab.
    let statd = db.users.iter().find(|u| u.0 == "statd").map(|u| (u.1, u.2));
    if let Some((u, g)) = statd {
        for p in ["var/lib/nfs/sm", "var/lib/nfs/sm.bak"] {
            if let Some(e) = tree.get_mut(p) {
                e.uid = u;
                e.gid = g;
            }
        }
        if has("nfs-common") && !tree.contains("var/lib/nfs/state") {
            let state = Entry::file(Data::bytes(""), 0o644).with_owner(u, 0);
            tree.insert("var/lib/nfs/state", state.with_mtime(t))?;
        }
    }
    let empty = |tree: &mut Tree, path: &str, mode: u32| {
        if tree.contains(path) {
            return Ok(());
        }
        tree.insert(path, Entry::file(Data::bytes(""), mode).with_mtime(t))
    };
    if has("nfs-kernel-server") {
        empty(tree, "var/lib/nfs/etab", 0o644)?;
        empty(tree, "var/lib/nfs/rmtab", 0o644)?;
    }
    // libpam-modules: `touch /etc/security/opasswd` (0600) and /etc/environment.
    if has("libpam-modules") {
        empty(tree, "etc/security/opasswd", 0o600)?;
        empty(tree, "etc/environment", 0o644)?;
    }
    // Files postinsts write from a here-document when absent.
    for (pkg, path, body) in WRITTEN {
        if has(pkg) && !tree.contains(path) {
            tree.insert(path, Entry::file(Data::bytes(*body), 0o644).with_mtime(t))?;
        }
    }
    // base-files: the vendor link; tzdata: the default zone (the node runtime sets
    // cluster.timezone at boot); libwtmpdb0: the database moved to /var/log.
    let link = |tree: &mut Tree, when: bool, path: &str, target: &str| {
        if !when || tree.contains(path) {
            return Ok(());
        }
        tree.insert(path, Entry::symlink(target).with_mtime(t))
    };
    let origins = tree.contains("etc/dpkg/origins/debian");
    link(tree, origins, "etc/dpkg/origins/default", "debian")?;
    link(
        tree,
        has("tzdata"),
        "etc/localtime",
        "/usr/share/zoneinfo/Etc/UTC",
    )?;
    link(
        tree,
        has("libwtmpdb0"),
        "var/lib/wtmpdb/wtmp.db",
        "../../log/wtmp.db",
    )?;
    // ca-certificates: the local certificate directory, with /usr/local's mode and group.
    if has("ca-certificates") && !tree.contains("usr/local/share/ca-certificates") {
        let (mode, gid) = tree
            .get("usr/local")
            .map(|e| (e.mode, e.gid))
            .unwrap_or((0o755, 0));
        let dir = Entry::dir(mode).with_owner(0, gid).with_mtime(t);
        tree.insert("usr/local/share/ca-certificates", dir)?;
    }
    Ok(())
}

/// (package, path, content) of the files those postinsts write when absent.
const WRITTEN: &[(&str, &str, &str)] = &[
    (
        "kmod",
        "etc/modules",
        "# /etc/modules is obsolete and has been replaced by /etc/modules-load.d/.\n# Please see modules-load.d(5) and modprobe.d(5) for details.\n#\n# Updating this file still works, but it is undocumented and unsupported.\n",
    ),
    (
        "netbase",
        "etc/networks",
        "default\t\t0.0.0.0\nloopback\t127.0.0.0\nlink-local\t169.254.0.0\n\n",
    ),
];

/// What debianutils' `update-shells` makes on a fresh install: `/etc/shells` from the
/// template plus every shell of `shells.d` (each also by its merged-/usr path), and the
/// state file listing the packaged shells.
fn update_shells(tree: &mut Tree, t: i64) -> Result<(), stage::tree::PathError> {
    let read = |tree: &Tree, p: &str| match tree.get(p).map(|e| &e.kind) {
        Some(Kind::File(d)) => d
            .read()
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    };
    let Some(template) = read(tree, "usr/share/debianutils/shells") else {
        return Ok(());
    };
    let mut sources = vec![template.clone()];
    let fragments: Vec<String> = tree
        .children("usr/share/debianutils/shells.d")
        .map(|(p, _)| p.to_owned())
        .collect();
    sources.extend(fragments.iter().filter_map(|p| read(tree, p)));
    let mut packaged: Vec<String> = Vec::new();
    for line in sources.iter().flat_map(|s| s.lines()) {
        let shell = line.split('#').next().unwrap_or_default();
        if shell.is_empty() {
            continue;
        }
        let (dir, base) = shell.rsplit_once('/').unwrap_or(("", shell));
        let real_dir = stage::resolve::resolve(tree, dir.trim_start_matches('/'), true)
            .map(|d| format!("/{d}"))
            .unwrap_or_else(|_| dir.to_owned());
        for s in [shell.to_owned(), format!("{real_dir}/{base}")] {
            if !packaged.contains(&s) {
                packaged.push(s);
            }
        }
    }
    let source = read(tree, "etc/shells").unwrap_or(template);
    let mut etc = String::new();
    let mut listed: Vec<&str> = Vec::new();
    for line in source.lines() {
        let shell = line.split('#').next().unwrap_or_default();
        if shell.is_empty() || !listed.contains(&shell) {
            etc.push_str(line);
            etc.push('\n');
            listed.push(shell);
        }
    }
    for s in &packaged {
        if !listed.contains(&s.as_str()) {
            etc.push_str(s);
            etc.push('\n');
        }
    }
    let state: String = packaged.iter().map(|s| format!("{s}\n")).collect();
    tree.insert(
        "etc/shells",
        Entry::file(Data::bytes(etc), 0o644).with_mtime(t),
    )?;
    tree.insert(
        "var/lib/shells.state",
        Entry::file(Data::bytes(state), 0o644).with_mtime(t),
    )
}

/// The tmpfiles.d files a maintainer script passes to `systemd-tmpfiles --create`.
fn tmpfiles_calls(script: &str) -> Vec<String> {
    script
        .lines()
        .filter(|l| l.contains("systemd-tmpfiles") && l.contains("--create"))
        .flat_map(|l| l.split_whitespace())
        .filter(|w| w.ends_with(".conf") && !w.contains(['$', '/', '"']))
        .map(str::to_owned)
        .collect()
}

/// Paths `systemd-tmpfiles --create` at install time touches that the image does not
/// keep: runtime and scratch directories, made at every boot.
const TMPFILES_SKIP: &[&str] = &[
    "run",
    "tmp",
    "var/tmp",
    "var/log",
    "var/cache",
    "dev",
    "proc",
    "sys",
];

/// Apply one tmpfiles.d file as `systemd-tmpfiles --create` would in a maintainer
/// script: `d`/`D` (make, or set mode and owner of an existing directory), `f` (an empty
/// or given file when absent), `L` (a link when absent; `L+` replaces), `z` (mode and
/// owner of what exists). Boot-only (`!`) and credential (`^`) lines, specifiers and
/// other types are left to systemd at boot.
fn tmpfiles(
    tree: &mut Tree,
    db: &super::users::Db,
    conf: &str,
    t: i64,
) -> Result<(), stage::tree::PathError> {
    let text = match tree
        .get(&format!("usr/lib/tmpfiles.d/{conf}"))
        .map(|e| &e.kind)
    {
        Some(Kind::File(d)) => String::from_utf8_lossy(&d.read().unwrap_or_default()).into_owned(),
        _ => return Ok(()),
    };
    let uid = |s: &str| match s {
        "-" | "" | "root" => Some(0),
        s => s
            .parse()
            .ok()
            .or_else(|| db.users.iter().find(|u| u.0 == s).map(|u| u.1)),
    };
    let gid = |s: &str| match s {
        "-" | "" | "root" => Some(0),
        s => s
            .parse()
            .ok()
            .or_else(|| db.groups.iter().find(|g| g.0 == s).map(|g| g.1)),
    };
    for line in text.lines().map(str::trim) {
        let w: Vec<&str> = line.split_whitespace().collect();
        if w.len() < 2 || line.starts_with('#') || line.contains('%') {
            continue;
        }
        let (ty, path) = (w[0], w[1].trim_start_matches('/'));
        let field = |i: usize| w.get(i).copied().unwrap_or("-");
        if ty.contains(['!', '^'])
            || path.is_empty()
            || TMPFILES_SKIP
                .iter()
                .any(|s| path == *s || path.starts_with(&format!("{s}/")))
        {
            continue;
        }
        let (only_new, mode) = match field(2).strip_prefix(':') {
            Some(m) => (true, m),
            None => (false, field(2)),
        };
        let mode = u32::from_str_radix(mode.trim_start_matches('~'), 8).ok();
        // A leading ':' (mode, user, group) applies the value only when creating.
        let (Some(u), Some(g)) = (
            uid(field(3).trim_start_matches(':')),
            gid(field(4).trim_start_matches(':')),
        ) else {
            continue;
        };
        let base = ty.trim_end_matches(['-', '=', '$', '+']);
        let exists = tree.contains(path);
        match base {
            "d" | "D" | "z" => {
                let is_dir = matches!(tree.get(path).map(|e| &e.kind), Some(Kind::Dir));
                if !exists && base != "z" {
                    let e = Entry::dir(mode.unwrap_or(0o755)).with_owner(u, g);
                    tree.insert(path, e.with_mtime(t))?;
                } else if (is_dir || base == "z")
                    && !only_new
                    && let Some(e) = tree.get_mut(path)
                {
                    if let Some(m) = mode {
                        e.mode = m;
                    }
                    if field(3) != "-" {
                        e.uid = u;
                    }
                    if field(4) != "-" {
                        e.gid = g;
                    }
                }
            }
            "f" if !exists => {
                let body = w.get(6..).map(|a| a.join(" ")).unwrap_or_default();
                let e = Entry::file(Data::bytes(body), mode.unwrap_or(0o644)).with_owner(u, g);
                tree.insert(path, e.with_mtime(t))?;
            }
            "L" if !exists || ty.contains('+') => {
                if let Some(target) = w.get(6) {
                    tree.insert(path, Entry::symlink(*target).with_mtime(t))?;
                }
            }
            _ => {}
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
