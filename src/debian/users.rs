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
/// (package, user and group, home). Debian's haproxy postinst makes `haproxy` this way
/// before the other packages' scripts run (their ids follow it in a debootstrapped base).
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
}

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
    /// systemd-sysusers' choice: the highest free id of 999 down.
    fn sysusers_id(&self, uid: bool, gid: bool) -> u32 {
        (1..=999)
            .rev()
            .find(|&i| (!uid || self.uid_free(i)) && (!gid || self.gid_free(i)))
            .unwrap_or(1)
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

/// Apply one sysusers.d file (u, g and m lines; other types are left to boot).
fn sysusers(db: &mut Db, conf: &str) {
    for line in conf
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let f = fields(line);
        let get = |i: usize| f.get(i).map(String::as_str).filter(|s| *s != "-");
        match (f.first().map(|s| s.trim_end_matches('!')), get(1)) {
            (Some("g"), Some(name)) => {
                let gid = get(2)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_else(|| db.sysusers_id(false, true));
                db.add_group(name, gid);
            }
            (Some("u"), Some(name)) if !db.has_user(name) => {
                let ids = get(2).unwrap_or("");
                let (uid_s, gid_s) = ids.split_once(':').unwrap_or((ids, ""));
                let uid = uid_s
                    .parse()
                    .ok()
                    .filter(|&u| db.uid_free(u))
                    .unwrap_or_else(|| db.sysusers_id(true, true));
                let gid = match gid_s {
                    "" => db.gid(name).unwrap_or_else(|| {
                        let g = if db.gid_free(uid) {
                            uid
                        } else {
                            db.sysusers_id(false, true)
                        };
                        db.add_group(name, g);
                        g
                    }),
                    g => g.parse().ok().or_else(|| db.gid(g)).unwrap_or(65534),
                };
                let home = get(4).unwrap_or("/").to_owned();
                let shell = get(5).unwrap_or("/usr/sbin/nologin").to_owned();
                db.users.push((
                    name.to_owned(),
                    uid,
                    gid,
                    get(3).unwrap_or("").to_owned(),
                    home,
                    shell,
                ));
            }
            (Some("m"), Some(user)) => {
                if let (Some(group), true) = (get(2), db.has_user(user))
                    && let Some(g) = db.groups.iter_mut().find(|g| g.0 == group)
                    && !g.2.iter().any(|m| m == user)
                {
                    g.2.push(user.to_owned());
                }
            }
            _ => {}
        }
    }
}

/// Build the database for a tree holding `installed` packages; write the four files.
pub fn make_users(tree: &mut Tree, installed: &[&str], days: i64) -> Result<Db, String> {
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
    let confs: Vec<String> = tree
        .children("usr/lib/sysusers.d")
        .map(|(p, _)| p.to_owned())
        .filter(|p| p.ends_with(".conf"))
        .collect();
    for c in confs {
        if let Some(t) = text(tree, &c) {
            sysusers(&mut db, &t);
        }
    }
    for (pkg, name, home) in ADDUSER_GROUP {
        if installed.contains(pkg) && !db.has_user(name) {
            let gid = db.adduser_id(false);
            db.add_group(name, gid);
            let uid = db.adduser_id(true);
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
    for (pkg, g) in ADDGROUP {
        if installed.contains(pkg) {
            let id = db.adduser_id(false);
            db.add_group(g, id);
        }
    }
    for (pkg, user, home) in ADDUSER {
        if installed.contains(pkg) && !db.has_user(user) {
            let id = db.adduser_id(true);
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
        .map(|u| format!("{}:*:{days}:0:99999:7:::\n", u.0))
        .collect();
    let group: String = db
        .groups
        .iter()
        .map(|g| format!("{}:x:{}:{}\n", g.0, g.1, g.2.join(",")))
        .collect();
    let gshadow: String = db
        .groups
        .iter()
        .map(|g| format!("{}:*::{}\n", g.0, g.2.join(",")))
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
    fn sysusers_lines_allocate_like_systemd() {
        let mut db = Db::default();
        db.groups.push(("nogroup".into(), 65534, vec![]));
        sysusers(
            &mut db,
            "# c\nu systemd-network 998 \"systemd Network Management\" /\nu! systemd-timesync - \"systemd Time Synchronization\"\ng  wheel -\nm systemd-network wheel\n",
        );
        assert_eq!(db.users[0].1, 998);
        assert_eq!(db.users[0].3, "systemd Network Management");
        assert_eq!((db.users[1].1, db.users[1].2), (999, 999));
        let wheel = db.groups.iter().find(|g| g.0 == "wheel").unwrap();
        assert_eq!(wheel.1, 997);
        assert_eq!(wheel.2, ["systemd-network"]);
        assert_eq!(db.adduser_id(true), 100);
    }
}
