//! The bakery initramfs: contents as a [`Tree`], written as cpio newc and gzip-compressed
//! with deterministic bytes.
//!
//! Input: the board definition, the staged system tree (busybox-static, the kernel
//! modules, e2fsprogs and fdisk binaries with their libraries) and the build timestamp.
//! Output: the compressed archive the board's `initramfs` file name holds on p1. The
//! `/init` script is `overlays/initramfs/init` (busybox ash).

use std::io::Write;

use anyhow::{Context, Result, bail};

use super::boards::BoardDef;
use super::{elf, modules};
use crate::stage::{Data, Entry, Kind, Tree};

/// The init script (busybox ash).
pub const INIT: &str = include_str!("../../overlays/initramfs/init");

/// Dynamic programs the init uses, copied from the system tree with their libraries.
pub const PROGRAMS: [&str; 4] = ["sfdisk", "mke2fs", "e2fsck", "resize2fs"];

/// Applets linked at build time (the init also runs `busybox --install -s` for the rest).
const APPLETS: &[&str] = &[
    "sh",
    "ash",
    "mount",
    "umount",
    "switch_root",
    "insmod",
    "modprobe",
    "mkdir",
    "cat",
    "grep",
    "sed",
    "sleep",
    "ls",
    "ln",
    "cp",
    "rm",
    "echo",
    "readlink",
    "dd",
    "od",
    "blockdev",
    "poweroff",
    "reboot",
    "setsid",
    "cttyhack",
    "date",
    "tr",
    "cut",
    "head",
    "sync",
    "mknod",
    "uname",
    "stat",
    "basename",
    "dirname",
    "printf",
    "test",
    "[",
    "true",
    "touch",
    "chmod",
    "awk",
    "wc",
    "mountpoint",
];

/// Modules that may be absent from some kernels without failing the build.
const OPTIONAL_MODULES: &[&str] = &["crc32c-intel", "pvpanic-pci", "virtio_mmio", "bcm2835"];

/// Inputs of one initramfs.
#[derive(Debug, Clone, Copy)]
pub struct InitramfsInput<'a> {
    pub board: &'a BoardDef,
    pub system: &'a Tree,
    /// Kernel version (`/boot/vmlinuz-<kver>` in the system tree).
    pub kver: &'a str,
    /// Load the board's Pi 5 modules too (`image.pi5`).
    pub pi5: bool,
    /// Build timestamp: every mtime, and the clock floor the init applies.
    pub build_time: i64,
}

fn dir(t: &mut Tree, p: &str, mtime: i64) -> Result<()> {
    t.insert(p, Entry::dir(0o755).with_mtime(mtime))?;
    Ok(())
}

/// What goes into the initramfs, as a tree (every mtime = the build time).
pub fn initramfs_tree(input: &InitramfsInput) -> Result<Tree> {
    let InitramfsInput {
        board,
        system,
        kver,
        pi5,
        build_time: mtime,
    } = *input;
    let mut t = Tree::new();
    t.default_mtime = mtime;
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "dev", "proc", "sys", "run", "tmp", "etc", "newroot",
        "mnt",
    ] {
        dir(&mut t, d, mtime)?;
    }
    t.get_mut("tmp").expect("just made").mode = 0o1777;
    for (p, major, minor, mode) in [("dev/console", 5, 1, 0o600), ("dev/null", 1, 3, 0o666)] {
        let mut e = Entry::dir(mode).with_mtime(mtime);
        e.kind = Kind::CharDev { major, minor };
        t.insert(p, e)?;
    }

    // busybox-static and its applets.
    let (bb_src, bb) = elf::resolve_file(system, "bin/busybox").context(
        "busybox is missing from the system tree\nhint: add the busybox-static package to the profile's sources",
    )?;
    let deps = elf::elf_deps(&bb.read().with_context(|| format!("reading /{bb_src}"))?)?;
    if deps.interpreter.is_some() || !deps.needed.is_empty() {
        bail!(
            "/{bb_src} is dynamically linked\nhint: the initramfs needs the busybox-static package, not busybox"
        );
    }
    t.insert("bin/busybox", Entry::file(bb, 0o755).with_mtime(mtime))?;
    for a in APPLETS {
        t.insert(
            &format!("bin/{a}"),
            Entry::symlink("busybox").with_mtime(mtime),
        )?;
    }

    t.insert(
        "init",
        Entry::file(Data::bytes(INIT), 0o755).with_mtime(mtime),
    )?;

    // Kernel modules in load order, plus a modules.dep for busybox modprobe.
    let wanted = board.modules.wanted(pi5);
    let index = modules::ModuleIndex::load_for(system, kver, Some(&wanted))?;
    let order = index.resolve(&wanted, OPTIONAL_MODULES)?;
    let mdir = format!("lib/modules/{kver}");
    for rel in &order {
        let src = format!("{}/{rel}", index.dir);
        let (_, d) = elf::resolve_file(system, &src)?;
        t.insert(
            &format!("{mdir}/{rel}"),
            Entry::file(d, 0o644).with_mtime(mtime),
        )?;
    }
    t.add_bytes(
        &format!("{mdir}/modules.dep"),
        index.modules_dep(Some(&order))?,
        0o644,
    )?;
    let mut list = order.join("\n");
    list.push('\n');
    t.add_bytes("etc/bakery/modules", list, 0o644)?;
    t.add_bytes("etc/bakery/kver", format!("{kver}\n"), 0o644)?;
    t.add_bytes("etc/bakery/build-time", format!("{mtime}\n"), 0o644)?;
    t.add_bytes("etc/bakery/board", format!("{}\n", board.name), 0o644)?;

    // e2fsprogs and sfdisk with their libraries.
    for (p, d) in elf::closure(system, &PROGRAMS)?.files {
        t.insert(&p, Entry::file(d, 0o755).with_mtime(mtime))?;
    }
    for (name, target) in [("mkfs.ext4", "mke2fs"), ("fsck.ext4", "e2fsck")] {
        t.insert(
            &format!("usr/sbin/{name}"),
            Entry::symlink(target).with_mtime(mtime),
        )?;
    }
    if let Ok((_, d)) = elf::resolve_file(system, "etc/mke2fs.conf") {
        t.insert("etc/mke2fs.conf", Entry::file(d, 0o644).with_mtime(mtime))?;
    }
    // Boards without an RTC start in 1970: e2fsck must not treat times as corruption.
    t.add_bytes(
        "etc/e2fsck.conf",
        "[options]\n\tbroken_system_clock = 1\n",
        0o644,
    )?;
    t.insert("etc/mtab", Entry::symlink("/proc/mounts").with_mtime(mtime))?;
    Ok(t)
}

/// Write a tree as a cpio "newc" archive: parents before children, inode numbers in path
/// order, owners and times exactly as in the tree. Hard links are stored as copies.
pub fn cpio_newc(t: &Tree) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut ino = 0u32;
    for (path, e) in t.iter() {
        if path.is_empty() {
            continue;
        }
        ino += 1;
        let (ftype, data, rdev): (u32, Vec<u8>, (u32, u32)) = match &e.kind {
            Kind::Dir => (0o040000, Vec::new(), (0, 0)),
            Kind::File(d) => (
                0o100000,
                d.read().with_context(|| format!("reading {path}"))?,
                (0, 0),
            ),
            Kind::Hardlink(target) => match t.get(target).map(|x| &x.kind) {
                Some(Kind::File(d)) => (0o100000, d.read()?, (0, 0)),
                _ => bail!("{path}: hard link to {target}, which is not a file"),
            },
            Kind::Symlink(target) => (0o120000, target.as_bytes().to_vec(), (0, 0)),
            Kind::CharDev { major, minor } => (0o020000, Vec::new(), (*major, *minor)),
            Kind::BlockDev { major, minor } => (0o060000, Vec::new(), (*major, *minor)),
            Kind::Fifo => (0o010000, Vec::new(), (0, 0)),
            Kind::Socket => (0o140000, Vec::new(), (0, 0)),
        };
        let nlink = if e.kind == Kind::Dir { 2 } else { 1 };
        header(
            &mut out,
            ino,
            ftype | (e.mode & 0o7777),
            e.uid,
            e.gid,
            nlink,
            e.mtime.max(0) as u32,
            data.len(),
            rdev,
            path,
        );
        out.extend_from_slice(&data);
        pad4(&mut out);
    }
    header(&mut out, 0, 0, 0, 0, 1, 0, 0, (0, 0), "TRAILER!!!");
    Ok(out)
}

#[allow(clippy::too_many_arguments)]
fn header(
    out: &mut Vec<u8>,
    ino: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    mtime: u32,
    size: usize,
    rdev: (u32, u32),
    name: &str,
) {
    let fields = [
        ino,
        mode,
        uid,
        gid,
        nlink,
        mtime,
        size as u32,
        0,
        0,
        rdev.0,
        rdev.1,
        name.len() as u32 + 1,
        0,
    ];
    out.extend_from_slice(b"070701");
    for f in fields {
        out.extend_from_slice(format!("{f:08x}").as_bytes());
    }
    out.extend_from_slice(name.as_bytes());
    out.push(0);
    pad4(out);
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// gzip with a fixed header (no name, mtime 0), so equal input gives equal bytes.
pub fn gzip(data: &[u8]) -> Result<Vec<u8>> {
    let mut enc = flate2::GzBuilder::new()
        .mtime(0)
        .operating_system(3)
        .write(Vec::new(), flate2::Compression::best());
    enc.write_all(data)?;
    Ok(enc.finish()?)
}

/// The compressed initramfs image.
pub fn initramfs(input: &InitramfsInput) -> Result<Vec<u8>> {
    let t = initramfs_tree(input)?;
    gzip(&cpio_newc(&t)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newc_layout_is_aligned_and_terminated() {
        let mut t = Tree::new();
        t.add_bytes("etc/a", "hello", 0o644).unwrap();
        t.insert("bin/sh", Entry::symlink("busybox")).unwrap();
        let c = cpio_newc(&t).unwrap();
        assert!(c.starts_with(b"070701"));
        assert_eq!(c.len() % 4, 0);
        let tail = String::from_utf8_lossy(&c[c.len() - 128..]).to_string();
        assert!(tail.contains("TRAILER!!!"));
        assert_eq!(cpio_newc(&t).unwrap(), c, "deterministic");
        assert_eq!(gzip(&c).unwrap(), gzip(&c).unwrap());
    }

    #[test]
    fn init_script_reports_failures_and_switches_root() {
        assert!(INIT.starts_with("#!/bin/sh"));
        for needle in ["bakery: FAIL", "switch_root", "PARTNAME=", "bakery.onfail"] {
            assert!(INIT.contains(needle), "{needle}");
        }
    }
}
