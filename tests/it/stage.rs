//! Staging readers against archives made by the real tools (GNU tar, gzip, xz, zstd, ar,
//! Python's tarfile for hostile and special entries) and the real Debian parts that
//! `ci/fetch-parts` writes to `~/.cache/bakery-image/parts/` (or `$BAKERY_PARTS`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use bakery_image::stage::check::{Requirements, check_base};

use crate::need::{find, have, part};
use bakery_image::stage::{
    self, ContentStore, EntryProblem, Kind, ParentLinks, StageError, Tree, tarball,
};

/// A command for an installed tool, by full path.
fn cmd(tool: &str) -> Command {
    Command::new(find(tool).unwrap_or_else(|| tool.into()))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn python(script: &str, dir: &Path) {
    run(Command::new("python3")
        .arg("-c")
        .arg(script)
        .current_dir(dir));
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                v.extend(files_under(&p));
            }
            v.push(p);
        }
    }
    v.sort();
    v
}

/// A source tree with the usual cases, packed by GNU tar.
fn sample_dir(root: &Path) {
    let d = root.join("src");
    let long = "a-directory-name-long-enough-to-need-gnu-or-pax-long-names-because-ustar-stops-at-100-characters";
    std::fs::create_dir_all(d.join("etc/ssh")).unwrap();
    std::fs::create_dir_all(d.join(long)).unwrap();
    std::fs::create_dir_all(d.join("usr/bin")).unwrap();
    std::fs::write(d.join("etc/hostname"), "node\n").unwrap();
    std::fs::write(d.join(long).join("file-with-a-long-name-too.txt"), "long\n").unwrap();
    std::fs::write(d.join("usr/bin/big"), vec![0x5a; 100_000]).unwrap();
    std::fs::hard_link(d.join("usr/bin/big"), d.join("usr/bin/big-again")).unwrap();
    std::os::unix::fs::symlink("usr/bin", d.join("bin")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", d.join("etc/hostname-link")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        d.join("usr/bin/big"),
        std::fs::Permissions::from_mode(0o4755),
    )
    .unwrap();
    std::fs::set_permissions(d.join("etc/ssh"), std::fs::Permissions::from_mode(0o700)).unwrap();
}

/// (type, mode, uid, gid, size, target) per path, from `tar -tv` of GNU tar.
fn gnu_listing(archive: &Path) -> BTreeMap<String, String> {
    let out = Command::new("tar")
        .args(["-tv", "--numeric-owner", "--quoting-style=literal", "-f"])
        .arg(archive)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            // -rwsr-xr-x 0/0 100000 2023-11-14 22:13 ./usr/bin/big
            // lrwxrwxrwx 0/0      0 2023-11-14 22:13 ./bin -> usr/bin
            let mut rest = l;
            let mut f = Vec::new();
            for _ in 0..5 {
                rest = rest.trim_start();
                let end = rest.find(' ').unwrap();
                f.push(&rest[..end]);
                rest = &rest[end..];
            }
            let mut name = &rest[1..];
            if f[0].starts_with('l') {
                name = name.split(" -> ").next().unwrap();
            } else if f[0].starts_with('h') {
                name = name.split(" link to ").next().unwrap();
            }
            let name = name
                .trim_start_matches("./")
                .trim_end_matches('/')
                .to_owned();
            let (ty, perms) = f[0].split_at(1);
            let size = if ty == "-" { f[2] } else { "0" };
            (name, format!("{ty} {perms} {} {size}", f[1]))
        })
        .filter(|(n, _)| !n.is_empty() && n != ".")
        .collect()
}

fn perms(mode: u32) -> String {
    let mut s = String::new();
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (0o400 >> i) != 0 { c } else { '-' });
    }
    let set = |s: &mut String, at: usize, bit: u32, x: char, no_x: char| {
        if mode & bit != 0 {
            let c = if s.as_bytes()[at] == b'x' { x } else { no_x };
            s.replace_range(at..at + 1, &c.to_string());
        }
    };
    set(&mut s, 2, 0o4000, 's', 'S');
    set(&mut s, 5, 0o2000, 's', 'S');
    set(&mut s, 8, 0o1000, 't', 'T');
    s
}

/// The same listing, from our tree.
fn our_listing(t: &Tree) -> BTreeMap<String, String> {
    t.iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, e)| {
            let (ty, size) = match &e.kind {
                Kind::File(d) => ("-", d.len().unwrap()),
                Kind::Dir => ("d", 0),
                Kind::Symlink(_) => ("l", 0),
                Kind::Hardlink(_) => ("h", 0),
                Kind::CharDev { .. } => ("c", 0),
                Kind::BlockDev { .. } => ("b", 0),
                Kind::Fifo => ("p", 0),
                Kind::Socket => ("s", 0),
            };
            (
                p.to_owned(),
                format!("{ty} {} {}/{} {size}", perms(e.mode), e.uid, e.gid),
            )
        })
        .collect()
}

fn read(archive: &Path, content: &Path) -> Result<Tree, StageError> {
    let mut store = ContentStore::new(content).unwrap();
    let mut t = Tree::new();
    stage::apply(&mut t, archive, &mut store)?;
    Ok(t)
}

#[test]
fn every_compression_and_format_matches_gnu_tar() {
    if !have(&["tar", "gzip", "xz", "zstd"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    sample_dir(tmp.path());
    for format in ["gnu", "pax"] {
        let tar = tmp.path().join(format!("{format}.tar"));
        run(Command::new("tar")
            .args([
                "-c",
                "--format",
                format,
                "--owner=0",
                "--group=0",
                "--numeric-owner",
            ])
            .args(["--mtime=@1700000000", "--sort=name", "-f"])
            .arg(&tar)
            .args(["-C", "src", "."])
            .current_dir(tmp.path()));
        let expected = gnu_listing(&tar);
        for (tool, args, ext) in [
            ("cat", &[][..], "plain"),
            ("gzip", &["-c"][..], "gz"),
            ("xz", &["-c", "-T1"][..], "xz"),
            ("zstd", &["-c", "-q"][..], "zst"),
        ] {
            // No telling extension: the format is detected from the bytes.
            let packed = tmp.path().join(format!("{format}-{ext}.bin"));
            let out = Command::new(tool).args(args).arg(&tar).output().unwrap();
            assert!(out.status.success());
            std::fs::write(&packed, out.stdout).unwrap();
            let content = tmp.path().join(format!("content-{format}-{ext}"));
            let t = read(&packed, &content).unwrap_or_else(|e| panic!("{format}/{ext}: {e}"));
            assert_eq!(our_listing(&t), expected, "{format}/{ext}");
            let big = t.get("usr/bin/big").unwrap();
            assert_eq!((big.mode, big.uid, big.mtime), (0o4755, 0, 1_700_000_000));
            let Kind::File(d) = &big.kind else { panic!() };
            assert_eq!(d.read().unwrap(), vec![0x5a; 100_000]);
            assert!(matches!(d, stage::Data::Path(p) if p.starts_with(&content)));
            assert_eq!(
                t.get("usr/bin/big-again").unwrap().kind,
                Kind::Hardlink("usr/bin/big".into())
            );
            assert_eq!(t.get("bin").unwrap().kind, Kind::Symlink("usr/bin".into()));
            assert_eq!(
                t.get("etc/hostname-link").unwrap().kind,
                Kind::Symlink("/etc/hostname".into())
            );
        }
    }
}

/// Python's tarfile writes what GNU tar will not (as a normal user): foreign owners,
/// device nodes, xattrs, hostile names.
const SPECIAL: &str = r#"
import tarfile, io
def add(t, name, type=tarfile.REGTYPE, data=b"", uid=0, gid=0, mode=0o644, **kw):
    i = tarfile.TarInfo(name); i.type = type; i.uid = uid; i.gid = gid; i.mode = mode
    i.mtime = 1700000000; i.size = len(data) if type == tarfile.REGTYPE else 0
    for k, v in kw.items(): setattr(i, k, v)
    t.addfile(i, io.BytesIO(data) if type == tarfile.REGTYPE else None)
with tarfile.open("special.tar", "w", format=tarfile.PAX_FORMAT) as t:
    add(t, "./", tarfile.DIRTYPE, mode=0o755)
    add(t, "root-file", data=b"r", uid=0, gid=0, mode=0o600)
    add(t, "home/user", tarfile.DIRTYPE, uid=1000, gid=1000, mode=0o750)
    add(t, "home/user/notes", data=b"n" * 20000, uid=1000, gid=1001, uname="nosuchuser", gname="nosuchgroup")
    add(t, "dev/console", tarfile.CHRTYPE, mode=0o600, devmajor=5, devminor=1)
    add(t, "dev/sda", tarfile.BLKTYPE, mode=0o660, gid=6, devmajor=8, devminor=0)
    add(t, "run/initctl", tarfile.FIFOTYPE, mode=0o600)
    add(t, "usr/bin/ping", data=b"ping", mode=0o755, pax_headers={"SCHILY.xattr.security.capability": "\x01\x00\x00\x02", "mtime": "1700000123.75"})
    add(t, "/abs/file", data=b"a")
    add(t, "dup", data=b"first")
    add(t, "dup", data=b"second", mode=0o640)
"#;

fn check_special(t: &Tree) {
    let e = |p: &str| t.get(p).unwrap_or_else(|| panic!("{p} missing"));
    assert_eq!(
        (e("root-file").uid, e("root-file").gid, e("root-file").mode),
        (0, 0, 0o600)
    );
    assert_eq!((e("home/user").uid, e("home/user").mode), (1000, 0o750));
    let notes = e("home/user/notes");
    assert_eq!(
        (notes.uid, notes.gid),
        (1000, 1001),
        "numeric ids, not names"
    );
    assert_eq!(e("dev/console").kind, Kind::CharDev { major: 5, minor: 1 });
    assert_eq!(e("dev/sda").kind, Kind::BlockDev { major: 8, minor: 0 });
    assert_eq!(e("dev/sda").gid, 6);
    assert_eq!(e("run/initctl").kind, Kind::Fifo);
    let ping = e("usr/bin/ping");
    assert_eq!(ping.mtime, 1_700_000_123, "PAX mtime wins");
    assert_eq!(
        ping.xattrs,
        [("security.capability".to_owned(), vec![1u8, 0, 0, 2])]
    );
    assert!(t.contains("abs/file"), "absolute paths become relative");
    let dup = e("dup");
    assert_eq!(dup.mode, 0o640, "the later duplicate wins");
    let Kind::File(d) = &dup.kind else { panic!() };
    assert_eq!(d.read().unwrap(), b"second");
}

#[test]
fn ownership_devices_xattrs_without_root() {
    if !have(&["python3"]) || (is_root() && !have(&["setpriv"])) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    python(SPECIAL, tmp.path());
    let archive = tmp.path().join("special.tar");
    let content = tmp.path().join("content");
    // Nothing may depend on the host's ownership: as root, read the archive as `nobody`
    // in a child process of this very test binary; as a normal user, read it directly.
    if is_root() {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::create_dir(&content).unwrap();
        std::os::unix::fs::chown(&content, Some(65534), Some(65534)).unwrap();
        let out = cmd("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "stage::special_archive_as_this_user",
                "--nocapture",
            ])
            .env("BAKERY_TEST_ARCHIVE", &archive)
            .env("BAKERY_TEST_CONTENT", &content)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains("as uid 65534: ok"),
            "the child did not run the check: {text}"
        );
    } else {
        check_special(&read(&archive, &content).unwrap());
    }
}

/// Run by `ownership_devices_xattrs_without_root` in a child process as `nobody`.
#[test]
fn special_archive_as_this_user() {
    let (Some(a), Some(c)) = (
        std::env::var_os("BAKERY_TEST_ARCHIVE"),
        std::env::var_os("BAKERY_TEST_CONTENT"),
    ) else {
        return; // only meaningful when started by the test above
    };
    check_special(&read(Path::new(&a), Path::new(&c)).unwrap());
    let uid = Command::new("id").arg("-u").output().unwrap();
    println!("as uid {}: ok", String::from_utf8_lossy(&uid.stdout).trim());
}

/// Build a hostile tar with Python and read it: the error must name the entry, and
/// nothing may be written anywhere but the content dir (which must end up empty).
fn hostile(entries: &str, expect_entry: &str, expect: fn(&EntryProblem) -> bool) {
    let tmp = tempfile::tempdir().unwrap();
    let script = format!(
        r#"
import tarfile, io
def add(t, name, type=tarfile.REGTYPE, data=b"", link=""):
    i = tarfile.TarInfo(name); i.type = type; i.linkname = link
    i.size = len(data) if type == tarfile.REGTYPE else 0
    t.addfile(i, io.BytesIO(data) if type == tarfile.REGTYPE else None)
with tarfile.open("hostile.tar", "w", format=tarfile.GNU_FORMAT) as t:
    add(t, "big", data=b"x" * 100000)
{entries}
"#
    );
    let work = tmp.path().join("work");
    std::fs::create_dir(&work).unwrap();
    python(&script, &work);
    let before = files_under(tmp.path());
    let content = work.join("content");
    let mut store = ContentStore::new(&content).unwrap();
    let mut tree = Tree::new();
    tree.add_bytes("etc/keep", "kept", 0o644).unwrap();
    let err = stage::apply(&mut tree, &work.join("hostile.tar"), &mut store).unwrap_err();
    match &err {
        StageError::Entry { entry, problem, .. } => {
            assert_eq!(entry, expect_entry, "{err}");
            assert!(expect(problem), "{err}");
        }
        e => panic!("expected an entry error, got {e:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("hostile.tar") && msg.contains(expect_entry) && msg.contains("hint:"),
        "{msg}"
    );
    assert!(err.is_user_error());
    assert_eq!(tree.len(), 3, "the tree is unchanged");
    assert!(tree.contains("etc/keep") && !tree.contains("big"));
    let mut after = files_under(tmp.path());
    after.retain(|p| p != &content);
    assert_eq!(after, before, "files appeared outside the content dir");
    assert!(files_under(&content).is_empty(), "content left behind");
}

#[test]
fn traversal_is_refused() {
    hostile(
        r#"    add(t, "../escaped", data=b"x")"#,
        "../escaped",
        |p| *p == EntryProblem::Traversal,
    );
    hostile(
        r#"    add(t, "usr/../../escaped", data=b"x")"#,
        "usr/../../escaped",
        |p| *p == EntryProblem::Traversal,
    );
}

#[test]
fn writing_through_a_symlink_is_refused() {
    hostile(
        r#"    add(t, "evil", tarfile.SYMTYPE, link="/etc")
    add(t, "evil/passwd", data=b"root::0:0::/:/bin/sh")"#,
        "evil/passwd",
        |p| matches!(p, EntryProblem::ThroughSymlink { link } if link == "evil"),
    );
    hostile(
        r#"    add(t, "up", tarfile.SYMTYPE, link="../../..")
    add(t, "up/tmp/x", data=b"x")"#,
        "up/tmp/x",
        |p| matches!(p, EntryProblem::ThroughSymlink { link } if link == "up"),
    );
}

#[test]
fn hardlinks_to_outside_or_missing_targets_are_refused() {
    hostile(
        r#"    add(t, "link", tarfile.LNKTYPE, link="../outside/file")"#,
        "link",
        |p| matches!(p, EntryProblem::HardlinkOutside { .. }),
    );
    hostile(
        r#"    add(t, "shadow", tarfile.LNKTYPE, link="/etc/shadow")"#,
        "shadow",
        |p| matches!(p, EntryProblem::HardlinkMissing { target } if target == "/etc/shadow"),
    );
}

#[test]
fn truncated_and_corrupt_archives_fail_cleanly() {
    if !have(&["tar"]) || !have(&["xz"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    sample_dir(tmp.path());
    let tar = tmp.path().join("t.tar");
    run(Command::new("tar")
        .args(["-cf"])
        .arg(&tar)
        .args(["--sort=name", "-C", "src", "."])
        .current_dir(tmp.path()));
    run(Command::new("xz").args(["-k", "-T1"]).arg(&tar));
    let plain = std::fs::read(&tar).unwrap();
    let xz = std::fs::read(tmp.path().join("t.tar.xz")).unwrap();
    let cases = [
        // Cut inside the data of a big file.
        ("cut.tar", plain[..plain.len() / 2 + 100].to_vec()),
        ("cut.tar.xz", xz[..xz.len() - 40].to_vec()),
        ("garbage.tar", {
            let mut g = plain.clone();
            g[600..700].fill(0x41); // a header checksum no longer matches
            g
        }),
    ];
    for (name, bytes) in cases {
        let err = refused_cleanly(tmp.path(), name, &bytes);
        assert!(matches!(err, StageError::Corrupt { .. }), "{name}: {err:?}");
        assert!(err.to_string().contains("entry"), "{err}");
    }
    let p = tmp.path().join("text.tar");
    std::fs::write(&p, "hello\n").unwrap();
    let err = read(&p, &tmp.path().join("c")).unwrap_err();
    assert!(err.to_string().contains("text.tar"), "{err}");
}

/// A .deb made with `ar` (zstd data member) over a merged-/usr base, the dpkg way.
#[test]
fn deb_follows_merged_usr_links() {
    if !have(&["tar"]) || !have(&["zstd"]) || !have(&["ar"]) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::create_dir_all(d.join("data/bin")).unwrap();
    std::fs::create_dir_all(d.join("data/lib/modules/6.1.0-9-arm64/kernel")).unwrap();
    std::fs::write(d.join("data/bin/tool"), "#!/bin/sh\n").unwrap();
    std::fs::write(
        d.join("data/lib/modules/6.1.0-9-arm64/kernel/overlay.ko"),
        "ko",
    )
    .unwrap();
    std::fs::write(d.join("control"), "Package: t\n").unwrap();
    std::fs::write(d.join("debian-binary"), "2.0\n").unwrap();
    let tar = |out: &str, dir: &str| {
        run(Command::new("tar")
            .args([
                "--owner=0",
                "--group=0",
                "--numeric-owner",
                "--zstd",
                "-cf",
                out,
                "-C",
                dir,
                ".",
            ])
            .current_dir(d))
    };
    tar("data.tar.zst", "data");
    std::fs::create_dir(d.join("ctl")).unwrap();
    std::fs::rename(d.join("control"), d.join("ctl/control")).unwrap();
    tar("control.tar.zst", "ctl");
    run(Command::new("ar")
        .args([
            "rc",
            "t.deb",
            "debian-binary",
            "control.tar.zst",
            "data.tar.zst",
        ])
        .current_dir(d));
    let mut store = ContentStore::new(d.join("content")).unwrap();
    let mut tree = Tree::new();
    tree.insert("usr/bin", stage::Entry::dir(0o755)).unwrap();
    tree.insert("usr/lib", stage::Entry::dir(0o755)).unwrap();
    tree.insert("bin", stage::Entry::symlink("usr/bin"))
        .unwrap();
    tree.insert("lib", stage::Entry::symlink("usr/lib"))
        .unwrap();
    stage::apply(&mut tree, &d.join("t.deb"), &mut store).unwrap();
    assert_eq!(
        tree.get("bin").unwrap().kind,
        Kind::Symlink("usr/bin".into()),
        "kept"
    );
    assert!(tree.contains("usr/bin/tool"));
    assert!(tree.contains("usr/lib/modules/6.1.0-9-arm64/kernel/overlay.ko"));
    let req = Requirements {
        kernel_modules: vec!["overlay".into(), "nbd".into()],
        ..Requirements::default()
    };
    let err = check_base(&tree, &req).unwrap_err();
    assert_eq!(err.0.len(), 1);
    assert_eq!(err.0[0].what, "kernel module nbd");

    // The same data as a plain tar: like GNU tar (without --keep-directory-symlink),
    // the later directory entry `bin/` replaces the symlink; nothing goes through it.
    tarball::apply_tar(
        &mut tree,
        &d.join("data.tar.zst"),
        &mut store,
        ParentLinks::Refuse,
    )
    .unwrap();
    assert_eq!(tree.get("bin").unwrap().kind, Kind::Dir);
    assert!(tree.contains("bin/tool") && tree.contains("usr/bin/tool"));
}

#[test]
fn real_busybox_static_deb() {
    for arch in ["arm64", "amd64"] {
        let Some(deb) = part(&format!("{arch}/busybox-static.deb")) else {
            return;
        };
        let tmp = tempfile::tempdir().unwrap();
        let t = read(&deb, &tmp.path().join("content")).unwrap();
        let bb = t.get("bin/busybox").expect("bin/busybox");
        assert_eq!((bb.mode, bb.uid, bb.gid), (0o755, 0, 0));
        let Kind::File(data) = &bb.kind else {
            panic!("{:?}", bb.kind)
        };
        let head = &data.read().unwrap()[..4];
        assert_eq!(head, b"\x7fELF");
        // Cross-check against dpkg-deb's own view of the package.
        if have(&["dpkg-deb"]) {
            let out = Command::new("dpkg-deb")
                .arg("-c")
                .arg(&deb)
                .output()
                .unwrap();
            let listing = String::from_utf8_lossy(&out.stdout);
            let line = listing
                .lines()
                .find(|l| l.ends_with("./bin/busybox"))
                .unwrap();
            assert!(line.starts_with("-rwxr-xr-x root/root"), "{line}");
            let size: u64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
            assert_eq!(data.len().unwrap(), size);
        }
    }
}

/// The real arm64 base with the kernel and busybox packages over it, checked for what
/// the node runtime needs. Reads ~400 MB; the biggest test here.
#[test]
fn real_rootfs_with_packages_passes_the_base_check() {
    let (Some(rootfs), Some(kernel), Some(bb)) = (
        part("arm64/rootfs.tar"),
        part("arm64/linux-image.deb"),
        part("arm64/busybox-static.deb"),
    ) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut store = ContentStore::new(tmp.path().join("content")).unwrap();
    let base = stage::read_base(&rootfs, &mut store).unwrap();
    let mut tree = base.clone();
    for deb in [&kernel, &bb] {
        stage::apply(&mut tree, deb, &mut store).unwrap();
    }
    let req = Requirements {
        systemd: true,
        busybox: true,
        disk_tools: true,
        kmod: true,
        keepalived: true,
        nfs_server: true,
        // The prepared CI rootfs predates the load balancer; [sources.debian] adds haproxy.
        haproxy: false,
        timezone: Some("Asia/Tokyo".into()),
        kernel_modules: vec!["overlay".into(), "br_netfilter".into(), "ext4".into()],
    };
    check_base(&tree, &req).unwrap_or_else(|e| panic!("{e}"));
    // The base alone, entry by entry, as GNU tar sees it.
    let (ours, gnu) = (our_listing(&base), gnu_listing(&rootfs));
    assert!(gnu.len() > 5000, "{}", gnu.len());
    let diff: Vec<_> = gnu
        .iter()
        .filter(|(k, v)| ours.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: tar {v}, ours {:?}", ours.get(k)))
        .chain(
            ours.keys()
                .filter(|k| !gnu.contains_key(*k))
                .map(|k| format!("{k}: only ours")),
        )
        .take(10)
        .collect();
    assert!(diff.is_empty(), "{diff:#?}");
    // Merged /usr: the package's bin/busybox went through the base's bin -> usr/bin.
    assert!(matches!(tree.get("bin").unwrap().kind, Kind::Symlink(_)));
    assert!(tree.contains("usr/bin/busybox"));
    // mmdebstrap keeps file capabilities and ACLs as SCHILY.xattr PAX records.
    let ping = tree.get("usr/bin/ping").unwrap();
    let cap = ping.xattrs.iter().find(|(k, _)| k == "security.capability");
    assert!(
        cap.is_some_and(|(_, v)| v.len() == 20 && v[..4] == [1, 0, 0, 2]),
        "{:?}",
        ping.xattrs
    );
    let journal = tree.get("var/log/journal").unwrap();
    assert!(
        journal
            .xattrs
            .iter()
            .any(|(k, _)| k == "system.posix_acl_default"),
        "{:?}",
        journal.xattrs
    );
    let mut more = req.clone();
    more.kernel_modules.push("no_such_module".into());
    let err = check_base(&tree, &more).unwrap_err();
    assert_eq!(err.0.len(), 1, "{err}");
    // A profile with a load balancer needs HAProxy and its user, which this base lacks.
    let lb = Requirements {
        haproxy: true,
        ..req.clone()
    };
    let err = check_base(&tree, &lb).unwrap_err();
    let what: Vec<&str> = err.0.iter().map(|m| m.what.as_str()).collect();
    assert_eq!(what, ["haproxy", "user haproxy"], "{err}");
    let text = err.to_string();
    assert!(text.contains("role = \"loadbalancer\""), "{text}");
    assert!(text.contains("postinst makes the user"), "{text}");
}

/// A disk image as a base: GPT (raw) and MBR with a FAT p1 (xz-compressed, like a
/// Raspberry Pi OS download), the ext4 root made by mkfs.ext4 -d from the sample tree.
#[test]
fn disk_image_base_gpt_and_mbr() {
    if !["mkfs.ext4", "sfdisk", "xz", "dd"]
        .iter()
        .all(|t| have(&[t]) || *t == "dd")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    sample_dir(d);
    std::fs::write(d.join("src/etc/ssh/sshd_config"), "PermitRootLogin no\n").unwrap();
    if is_root() {
        std::os::unix::fs::lchown(d.join("src/etc/hostname"), Some(1000), Some(1001)).unwrap();
    }
    run(cmd("mkfs.ext4")
        .args([
            "-q",
            "-F",
            "-E",
            "root_owner=0:0",
            "-d",
            "src",
            "fs.ext4",
            "16M",
        ])
        .env("E2FSPROGS_FAKE_TIME", "1700000000")
        .current_dir(d));
    let sfdisk = |img: &str, table: &str| {
        run(Command::new("truncate")
            .args(["-s", "40M", img])
            .current_dir(d));
        let mut c = cmd("sfdisk");
        c.args(["-q", img])
            .current_dir(d)
            .stdin(std::process::Stdio::piped());
        let mut child = c.spawn().unwrap();
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(table.as_bytes())
            .unwrap();
        assert!(child.wait().unwrap().success());
    };
    let place = |img: &str, seek_mib: u32| {
        run(Command::new("dd")
            .args([
                "if=fs.ext4",
                &format!("of={img}"),
                "bs=1M",
                &format!("seek={seek_mib}"),
            ])
            .args(["conv=notrunc", "status=none"])
            .current_dir(d));
    };
    sfdisk(
        "gpt.img",
        "label: gpt\nstart=2048, size=32768, type=linux\n",
    );
    place("gpt.img", 1);
    sfdisk(
        "mbr.img",
        "label: dos\nstart=2048, size=16384, type=c\nstart=18432, size=32768, type=83\n",
    );
    place("mbr.img", 9);
    if have(&["mkfs.vfat"]) {
        run(cmd("mkfs.vfat")
            .args(["-C", "boot.fat", "8192"])
            .current_dir(d));
        run(Command::new("dd")
            .args([
                "if=boot.fat",
                "of=mbr.img",
                "bs=1M",
                "seek=1",
                "conv=notrunc",
                "status=none",
            ])
            .current_dir(d));
    }
    run(Command::new("xz")
        .args(["-k", "-T1", "-0", "mbr.img"])
        .current_dir(d));
    for img in ["gpt.img", "mbr.img.xz"] {
        let content = d.join(format!("content-{img}"));
        let mut store = ContentStore::new(&content).unwrap();
        let t = stage::read_base(&d.join(img), &mut store).unwrap_or_else(|e| panic!("{img}: {e}"));
        let e = |p: &str| t.get(p).unwrap_or_else(|| panic!("{img}: {p} missing"));
        let Kind::File(big) = &e("usr/bin/big").kind else {
            panic!()
        };
        assert_eq!(big.read().unwrap(), vec![0x5a; 100_000]);
        assert_eq!(e("usr/bin/big").mode, 0o4755);
        assert_eq!(e("etc/ssh").mode, 0o700);
        assert_eq!(e("bin").kind, Kind::Symlink("usr/bin".into()));
        let Kind::File(cfg) = &e("etc/ssh/sshd_config").kind else {
            panic!()
        };
        assert_eq!(cfg.read().unwrap(), b"PermitRootLogin no\n");
        if is_root() {
            assert_eq!((e("etc/hostname").uid, e("etc/hostname").gid), (1000, 1001));
        }
        assert!(!t.contains("lost+found"));
        // No leftovers of the decompressed image.
        let left: Vec<_> = files_under(&content)
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(".image")
            })
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // An image without an ext4 partition: a clear error.
    let err = stage::read_base(
        &d.join("boot.fat"),
        &mut ContentStore::new(d.join("c")).unwrap(),
    );
    assert!(err.is_err());
}

/// Whether the tests run as root (then ownership can be set on the source files).
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Hostile `ar` containers (the fuzzer found a GNU name-table index that panicked the
/// `ar` crate): each is a located error, the tree and the content store untouched.
#[test]
fn hostile_deb_containers_fail_cleanly() {
    let hdr = |name: &str, size: &str| {
        format!(
            "{name:<16}{:<12}{:<6}{:<6}{:<8}{size:<10}`\n",
            0, 0, 0, 100644
        )
        .into_bytes()
    };
    let deb = |members: &[Vec<u8>]| {
        let mut v = b"!<arch>\n".to_vec();
        for m in members {
            v.extend_from_slice(m);
        }
        v
    };
    let version = [hdr("debian-binary", "4"), b"2.0\n".to_vec()].concat();
    let cases = [
        ("gnu-index.deb", deb(&[hdr("/1218463333", "0")])),
        ("name-table.deb", deb(&[hdr("//", "9999999999")])),
        ("bsd-name.deb", deb(&[hdr("#1/20", "20")])),
        (
            "huge.deb",
            deb(&[
                version.clone(),
                hdr("data.tar", "9999999999"),
                b"short".to_vec(),
            ]),
        ),
        ("size.deb", deb(&[version.clone(), hdr("data.tar", "0x10")])),
        (
            "cut-header.deb",
            deb(&[version.clone(), hdr("data.tar", "10")[..30].to_vec()]),
        ),
    ];
    let tmp = tempfile::tempdir().unwrap();
    for (name, bytes) in cases {
        refused_cleanly(tmp.path(), name, &bytes);
        let p = tmp.path().join(name);
        let err = bakery_image::debian::control::read_control(&p).unwrap_err();
        assert!(err.contains(name), "{name}: {err}");
    }
}

/// Write `bytes` as `dir/name` and apply it to an empty tree: the error (returned) names
/// the file and carries a hint, the tree is unchanged and the content store empty.
fn refused_cleanly(dir: &Path, name: &str, bytes: &[u8]) -> StageError {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    let content = dir.join(format!("content-{name}"));
    let mut store = ContentStore::new(&content).unwrap();
    let mut tree = Tree::new();
    let err = stage::apply(&mut tree, &p, &mut store).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(name) && msg.contains("hint:"), "{name}: {msg}");
    assert_eq!(tree.len(), 1, "{name}: tree changed");
    assert!(
        files_under(&content).is_empty(),
        "{name}: content left behind"
    );
    err
}
