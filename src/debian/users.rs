//! Users and groups of an assembled base, made at build time the way the packages'
//! scripts would at install time: base-passwd's master files, every `sysusers.d` file
//! (what systemd's postinst applies with systemd-sysusers), and the `adduser`/`addgroup`
//! calls the set's maintainer scripts still make (a table: scripts are never run).
//! Output: `/etc/passwd`, `/etc/group`, `/etc/shadow`, `/etc/gshadow`.

use crate::stage::Tree;

/// System users created by `adduser --system` in maintainer scripts, by package:
/// (package, user, home, group of the user or None for nogroup).
const ADDUSER: &[(&str, &str, &str)] = &[
    ("apt", "_apt", "/nonexistent"),
    ("rpcbind", "_rpc", "/run/rpcbind"),
    ("nfs-common", "statd", "/var/lib/nfs"),
];

/// System users with a group of their own (`adduser --system --group`), by package:
/// (package, user and group, home). Debian's haproxy postinst makes `haproxy` this way.
const ADDUSER_GROUP: &[(&str, &str, &str)] = &[("haproxy", "haproxy", "/var/lib/haproxy")];

/// System groups created by `addgroup --system`: (package, group).
const ADDGROUP: &[(&str, &str)] = &[("openssh-client", "_ssh")];

/// The users and groups database being built.
#[derive(Debug, Default)]
pub struct Db {
    /// name, uid, gid, gecos, home, shell
    pub users: Vec<(String, u32, u32, String, String, String)>,
    /// name, gid, members
    pub groups: Vec<(String, u32, Vec<String>)>,
    /// Users' shadow fields as the creating tool writes them: the password, and the
    /// fields after the day of the last change. Absent: base-passwd's `*` and ageing.
    pub shadow: std::collections::BTreeMap<String, (&'static str, &'static str)>,
    /// Groups' gshadow password (absent: `*`).
    pub gshadow: std::collections::BTreeMap<String, &'static str>,
}

/// systemd-sysusers' shadow entries: locked (`!*`), no ageing; `u!` also expires.
const SYSUSERS_SHADOW: (&str, &str) = ("!*", ":::::");
const SYSUSERS_LOCKED_SHADOW: (&str, &str) = ("!*", "::::1:");
/// adduser --system's: a disabled password (`!`), no ageing.
const ADDUSER_SHADOW: (&str, &str) = ("!", ":::::");

impl Db {
    fn uid_free(&self, id: u32) -> bool {
        !self.users.iter().any(|u| u.1 == id)
    }
    fn gid_free(&self, id: u32) -> bool {
        !self.groups.iter().any(|g| g.1 == id)
    }
    fn gid(&self, name: &str) -> Option<u32> {
        self.groups.iter().find(|g| g.0 == name).map(|g| g.1)
    }
    fn has_user(&self, name: &str) -> bool {
        self.users.iter().any(|u| u.0 == name)
    }
    /// adduser's choice: the lowest free id of 100..=999.
    fn adduser_id(&self, user: bool) -> u32 {
        (100..=999)
            .find(|&i| {
                if user {
                    self.uid_free(i)
                } else {
                    self.gid_free(i)
                }
            })
            .unwrap_or(999)
    }
    /// systemd-sysusers' test for a new id of `name`: no user (`uid`) or group (else)
    /// holds it, and no entry of the other kind holds it under another name.
    fn id_ok(&self, id: u32, name: &str, uid: bool) -> bool {
        let user_other = self.users.iter().any(|u| u.1 == id && (uid || u.0 != name));
        let group_other = self
            .groups
            .iter()
            .any(|g| g.1 == id && (!uid || g.0 != name));
        !user_other && !group_other
    }
    fn add_group(&mut self, name: &str, gid: u32) {
        if self.gid(name).is_none() {
            self.groups.push((name.to_owned(), gid, Vec::new()));
        }
    }
}

fn text(tree: &Tree, path: &str) -> Option<String> {
    match &tree.get(path)?.kind {
        crate::stage::Kind::File(d) => d
            .read()
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        _ => None,
    }
}

/// Split a sysusers.d line into fields, honouring double quotes.
fn fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let (mut quoted, mut any) = (false, false);
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                any = true;
            }
            c if c.is_whitespace() && !quoted => {
                if any {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            c => {
                cur.push(c);
                any = true;
            }
        }
    }
    if any {
        out.push(cur);
    }
    out
}

/// One sysusers.d item: `g` or `u` (`m` lines are applied after both).
struct Item {
    /// `u!`: the account is also expired in shadow.
    locked: bool,
    name: String,
    /// The id field: "-", "123", "123:456", "-:group", "123:group".
    ids: String,
    gecos: String,
    home: String,
    shell: String,
}

/// One `systemd-sysusers FILE...` run over `confs` (in the order given), allocating as
/// systemd 257 does: every group first, then every user (with the group of its own name
/// made just before it); a free id is searched from 999 down with ONE cursor per run,
/// shared by users and groups, and an id is free only when no user or group of another
/// name holds it (uid and gid alike).
fn sysusers_run(db: &mut Db, confs: &[&str]) {
    let (mut groups, mut users, mut members) = (Vec::new(), Vec::new(), Vec::new());
    for line in confs
        .iter()
        .flat_map(|c| c.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let f = fields(line);
        let get = |i: usize| f.get(i).map(String::as_str).unwrap_or("-");
        let locked = f.first().is_some_and(|s| s.ends_with('!'));
        let item = || Item {
            locked,
            name: get(1).to_owned(),
            ids: get(2).to_owned(),
            gecos: get(3).to_owned(),
            home: get(4).to_owned(),
            shell: get(5).to_owned(),
        };
        match f.first().map(|s| s.trim_end_matches('!')) {
            Some("g") if get(1) != "-" => groups.push(item()),
            Some("u") if get(1) != "-" => users.push(item()),
            Some("m") => members.push((get(1).to_owned(), get(2).to_owned())),
            _ => {}
        }
    }
    let mut cursor = 1000u32;
    let mut next_free = |db: &Db, name: &str, uid: bool| -> u32 {
        while cursor > 1 {
            cursor -= 1;
            if db.id_ok(cursor, name, uid) {
                return cursor;
            }
        }
        1
    };
    for g in &groups {
        if db.gid(&g.name).is_some() {
            continue;
        }
        let gid = g
            .ids
            .parse()
            .ok()
            .filter(|&id| db.id_ok(id, &g.name, false))
            .unwrap_or_else(|| next_free(db, &g.name, false));
        db.add_group(&g.name, gid);
        db.gshadow.insert(g.name.clone(), "!*");
    }
    for u in &users {
        if db.has_user(&u.name) {
            continue;
        }
        let (uid_s, gid_s) = u.ids.split_once(':').unwrap_or((&u.ids, "-"));
        let want_uid: Option<u32> = uid_s.parse().ok();
        let gid = match gid_s {
            "-" => match db.gid(&u.name) {
                Some(g) => g,
                None => {
                    let g = want_uid
                        .filter(|&id| db.id_ok(id, &u.name, false))
                        .unwrap_or_else(|| next_free(db, &u.name, false));
                    db.add_group(&u.name, g);
                    db.gshadow.insert(u.name.clone(), "!*");
                    g
                }
            },
            g => g.parse().ok().or_else(|| db.gid(g)).unwrap_or(65534),
        };
        let uid = want_uid
            .filter(|&id| db.id_ok(id, &u.name, true))
            .or(Some(gid).filter(|&id| db.id_ok(id, &u.name, true)))
            .unwrap_or_else(|| next_free(db, &u.name, true));
        let dash = |s: &str, default: &str| {
            if s == "-" {
                default.to_owned()
            } else {
                s.to_owned()
            }
        };
        let shadow = if u.locked {
            SYSUSERS_LOCKED_SHADOW
        } else {
            SYSUSERS_SHADOW
        };
        db.shadow.insert(u.name.clone(), shadow);
        db.users.push((
            u.name.clone(),
            uid,
            gid,
            dash(&u.gecos, ""),
            dash(&u.home, "/"),
            dash(&u.shell, "/usr/sbin/nologin"),
        ));
    }
    for (user, group) in members {
        if db.has_user(&user)
            && let Some(g) = db.groups.iter_mut().find(|g| g.0 == group)
            && !g.2.contains(&user)
        {
            g.2.push(user);
        }
    }
}

/// The sysusers.d files a maintainer script passes to `systemd-sysusers`.
pub fn sysusers_calls(script: &str) -> Vec<Vec<String>> {
    script
        .lines()
        .filter(|l| l.contains("systemd-sysusers") && !l.trim_start().starts_with('#'))
        .map(|l| {
            l.split_whitespace()
                .filter(|w| w.ends_with(".conf") && !w.contains(['$', '/', '"']))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// Build the database for a tree holding `pkgs` (name and postinst, in the order dpkg
/// would configure them); write the four files. Each package's `systemd-sysusers` calls
/// and `adduser` table entries apply in that order; the sysusers.d files no script names
/// apply last, in one run, as systemd-sysusers.service would at boot.
pub fn make_users(tree: &mut Tree, pkgs: &[(&str, Option<&str>)], days: i64) -> Result<Db, String> {
    let mut db = Db::default();
    let passwd = text(tree, "usr/share/base-passwd/passwd.master")
        .ok_or("base-passwd is not in the package set (no passwd.master)")?;
    let group = text(tree, "usr/share/base-passwd/group.master")
        .ok_or("base-passwd is not in the package set (no group.master)")?;
    for l in group.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(':').collect();
        if let [name, _, gid, members] = f[..] {
            let members = members
                .split(',')
                .filter(|m| !m.is_empty())
                .map(str::to_owned)
                .collect();
            db.groups.push((
                name.to_owned(),
                gid.parse()
                    .map_err(|_| format!("group.master: bad line {l:?}"))?,
                members,
            ));
        }
    }
    for l in passwd.lines().filter(|l| !l.is_empty()) {
        let f: Vec<&str> = l.split(':').collect();
        if let [name, _, uid, gid, gecos, home, shell] = f[..] {
            let bad = || format!("passwd.master: bad line {l:?}");
            db.users.push((
                name.to_owned(),
                uid.parse().map_err(|_| bad())?,
                gid.parse().map_err(|_| bad())?,
                gecos.to_owned(),
                home.to_owned(),
                shell.to_owned(),
            ));
        }
    }
    let conf = |name: &str| text(tree, &format!("usr/lib/sysusers.d/{name}"));
    let mut applied: Vec<String> = Vec::new();
    for (pkg, postinst) in pkgs {
        for call in postinst.map(sysusers_calls).unwrap_or_default() {
            let texts: Vec<String> = call.iter().filter_map(|c| conf(c)).collect();
            sysusers_run(
                &mut db,
                &texts.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            applied.extend(call);
        }
        for (_, g) in ADDGROUP.iter().filter(|(p, _)| p == pkg) {
            let id = db.adduser_id(false);
            db.add_group(g, id);
            db.gshadow.insert((*g).to_owned(), "!");
        }
        for (_, name, home) in ADDUSER_GROUP.iter().filter(|(p, ..)| p == pkg) {
            if !db.has_user(name) {
                let gid = db.adduser_id(false);
                db.add_group(name, gid);
                db.gshadow.insert((*name).to_owned(), "!");
                let uid = db.adduser_id(true);
                db.shadow.insert((*name).to_owned(), ADDUSER_SHADOW);
                db.users.push((
                    (*name).to_owned(),
                    uid,
                    gid,
                    String::new(),
                    (*home).to_owned(),
                    "/usr/sbin/nologin".into(),
                ));
            }
        }
        for (_, user, home) in ADDUSER.iter().filter(|(p, ..)| p == pkg) {
            if !db.has_user(user) {
                let id = db.adduser_id(true);
                db.shadow.insert((*user).to_owned(), ADDUSER_SHADOW);
                db.users.push((
                    (*user).to_owned(),
                    id,
                    65534,
                    String::new(),
                    (*home).to_owned(),
                    "/usr/sbin/nologin".into(),
                ));
            }
        }
    }
    let rest: Vec<String> = tree
        .children("usr/lib/sysusers.d")
        .map(|(p, _)| p.rsplit('/').next().unwrap_or(p).to_owned())
        .filter(|n| n.ends_with(".conf") && !applied.contains(n))
        .filter_map(|n| conf(&n))
        .collect();
    sysusers_run(
        &mut db,
        &rest.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    write(tree, &db, days).map_err(|e| e.to_string())?;
    Ok(db)
}

fn write(tree: &mut Tree, db: &Db, days: i64) -> Result<(), crate::stage::tree::PathError> {
    let passwd: String = db
        .users
        .iter()
        .map(|u| format!("{}:x:{}:{}:{}:{}:{}\n", u.0, u.1, u.2, u.3, u.4, u.5))
        .collect();
    let shadow: String = db
        .users
        .iter()
        .map(|u| {
            let (pw, rest) = db
                .shadow
                .get(&u.0)
                .copied()
                .unwrap_or(("*", "0:99999:7:::"));
            format!("{}:{pw}:{days}:{rest}\n", u.0)
        })
        .collect();
    let group: String = db
        .groups
        .iter()
        .map(|g| format!("{}:x:{}:{}\n", g.0, g.1, g.2.join(",")))
        .collect();
    let gshadow: String = db
        .groups
        .iter()
        .map(|g| {
            let pw = db.gshadow.get(&g.0).copied().unwrap_or("*");
            format!("{}:{pw}::{}\n", g.0, g.2.join(","))
        })
        .collect();
    let shadow_gid = db.gid("shadow").unwrap_or(0);
    tree.add_bytes("etc/passwd", passwd, 0o644)?;
    tree.add_bytes("etc/group", group, 0o644)?;
    for (p, body) in [("etc/shadow", shadow), ("etc/gshadow", gshadow)] {
        tree.insert(
            p,
            crate::stage::Entry::file(crate::stage::Data::bytes(body), 0o640)
                .with_owner(0, shadow_gid),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysusers_runs_allocate_like_systemd() {
        let mut db = Db::default();
        db.groups.push(("nogroup".into(), 65534, vec![]));
        db.users.push((
            "nobody".into(),
            65534,
            65534,
            String::new(),
            "/".into(),
            "/".into(),
        ));
        // The four runs of a trixie install, in dpkg's configure order (ids as
        // systemd-sysusers gave them in an mmdebstrap tree).
        sysusers_run(
            &mut db,
            &[
                "g systemd-journal - -\n",
                "u! systemd-network - \"systemd Network Management\"\n",
            ],
        );
        sysusers_run(
            &mut db,
            &["g input -\ng sgx -\ng clock -\ng kvm -\ng render -\n"],
        );
        sysusers_run(&mut db, &["u sshd -:nogroup \"sshd user\" /run/sshd\n"]);
        sysusers_run(
            &mut db,
            &[
                "u! systemd-timesync - \"systemd Time Synchronization\"\ng wheel -\nm systemd-timesync wheel\n",
            ],
        );
        let uid = |n: &str| {
            db.users
                .iter()
                .find(|u| u.0 == n)
                .map(|u| (u.1, u.2))
                .unwrap()
        };
        let gid = |n: &str| db.gid(n).unwrap();
        assert_eq!(
            (gid("systemd-journal"), uid("systemd-network")),
            (999, (998, 998))
        );
        assert_eq!(
            [
                gid("input"),
                gid("sgx"),
                gid("clock"),
                gid("kvm"),
                gid("render")
            ],
            [997, 996, 995, 994, 993]
        );
        assert_eq!(
            uid("sshd"),
            (992, 65534),
            "992: 997..993 are gids of other names"
        );
        assert_eq!(
            gid("wheel"),
            999 - 8,
            "groups of a run first: wheel before timesync's own"
        );
        assert_eq!(uid("systemd-timesync"), (990, 990));
        assert_eq!(
            db.groups.iter().find(|g| g.0 == "wheel").unwrap().2,
            ["systemd-timesync"]
        );
        assert_eq!(
            db.users.iter().find(|u| u.0 == "sshd").unwrap().4,
            "/run/sshd"
        );
        assert_eq!(db.adduser_id(true), 100);
    }

    #[test]
    fn postinst_sysusers_calls() {
        let s = "if [ -z \"${DPKG_ROOT:-}\" ]; then\n   systemd-sysusers ${DPKG_ROOT:+--root=\"$DPKG_ROOT\"} basic.conf systemd-journal.conf\nfi\n# systemd-sysusers x.conf\n";
        assert_eq!(
            sysusers_calls(s),
            [vec!["basic.conf".to_owned(), "systemd-journal.conf".into()]]
        );
    }
}
