//! Booting: initramfs, boot partition and node runtime built from real Debian parts and
//! checked with the reference tools (cpio, depmod, gzip), plus a real QEMU boot of a
//! hand-assembled image (sgdisk, mkfs.vfat, mcopy, mksquashfs) until the build pipeline
//! produces images (`ci/boot-test` then boots those).
//!
//! Parts: `$BAKERY_PARTS/<arch>/` or `.cache/parts/<arch>/` (made by `ci/fetch-parts`):
//! rootfs.tar, linux-image.deb, busybox-static.deb (+ raspi-firmware.deb for arm64).
//! Missing parts or tools skip the test locally and fail it when `CI` is set.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bakery_image::boot::{self, BoardDef, InitramfsInput, runtime};
use bakery_image::plan;
use bakery_image::profile::{self, Board};
use bakery_image::stage::{Data, Entry, Kind, Tree};

const BUILD_TIME: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

fn skip(why: &str) -> bool {
    if std::env::var_os("CI").is_some() {
        panic!("CI: {why}");
    }
    eprintln!("skipped: {why}");
    true
}

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn parts(arch: &str) -> Option<PathBuf> {
    let base = crate::parts_root();
    let d = base.join(arch);
    let mut need = vec!["rootfs.tar", "linux-image.deb", "busybox-static.deb"];
    if arch == "arm64" {
        need.push("raspi-firmware.deb");
    }
    if need.iter().all(|n| d.join(n).exists()) {
        Some(d)
    } else {
        skip(&format!(
            "parts missing in {} (run ci/fetch-parts)",
            d.display()
        ));
        None
    }
}

fn sh(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The rootfs tar + kernel/busybox/firmware debs unpacked into `<work>/root` (as a real
/// image build would compose them), once per arch per test process.
fn root_dir(arch: &'static str) -> Option<&'static Path> {
    static ARM: OnceLock<Option<PathBuf>> = OnceLock::new();
    static AMD: OnceLock<Option<PathBuf>> = OnceLock::new();
    let cell = if arch == "arm64" { &ARM } else { &AMD };
    cell.get_or_init(|| {
        let p = parts(arch)?;
        // One fixed place per arch, replaced each run, so runs do not pile up copies.
        let work = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("bakery-it-boot-{arch}"));
        let root = work.join("root");
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&root).unwrap();
        sh(Command::new("tar")
            .args(["--numeric-owner", "-xpf"])
            .arg(p.join("rootfs.tar"))
            .arg("-C")
            .arg(&root));
        for deb in [
            "linux-image.deb",
            "busybox-static.deb",
            "raspi-firmware.deb",
        ] {
            if !p.join(deb).exists() {
                continue;
            }
            // dpkg-deb -x would replace usrmerge symlinks (/bin -> usr/bin) by directories.
            let x = work.join(deb);
            sh(Command::new("dpkg-deb").arg("-x").arg(p.join(deb)).arg(&x));
            sh(Command::new("sh").arg("-c").arg(format!(
                "tar -C '{}' -c . | tar -C '{}' -x --keep-directory-symlink",
                x.display(),
                root.display()
            )));
        }
        Some(root)
    })
    .as_deref()
}

/// A host directory as a Tree (contents by path, owners and modes from the inodes).
fn tree_from_dir(root: &Path) -> Tree {
    let mut t = Tree::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let path = e.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let m = std::fs::symlink_metadata(&path).unwrap();
            let ft = m.file_type();
            let kind = if ft.is_dir() {
                stack.push(path.clone());
                Kind::Dir
            } else if ft.is_symlink() {
                Kind::Symlink(
                    std::fs::read_link(&path)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                )
            } else if ft.is_file() {
                Kind::File(Data::Path(path.clone()))
            } else {
                continue; // device nodes: devtmpfs provides /dev
            };
            let mut entry = Entry::dir(m.mode() & 0o7777)
                .with_owner(m.uid(), m.gid())
                .with_mtime(m.mtime());
            entry.kind = kind;
            t.insert(&rel, entry).unwrap();
        }
    }
    t
}

/// Write a tree into a directory (files, dirs, symlinks with modes and owners).
fn tree_to_dir(t: &Tree, dir: &Path) {
    use std::os::unix::fs::{chown, lchown, symlink};
    for (p, e) in t.iter() {
        let dest = dir.join(p);
        match &e.kind {
            Kind::Dir => std::fs::create_dir_all(&dest).unwrap(),
            Kind::File(Data::Path(src)) => {
                if std::fs::hard_link(src, &dest).is_err() {
                    std::fs::copy(src, &dest).unwrap();
                }
            }
            Kind::File(d) => std::fs::write(&dest, d.read().unwrap()).unwrap(),
            Kind::Symlink(target) => symlink(target, &dest).unwrap(),
            _ => continue,
        }
        if let Kind::Symlink(_) = e.kind {
            lchown(&dest, Some(e.uid), Some(e.gid)).unwrap();
        } else {
            chown(&dest, Some(e.uid), Some(e.gid)).unwrap();
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(e.mode)).unwrap();
        }
    }
}

fn profile_text(board: &str, table: &str) -> String {
    format!(
        r#"
[cluster]
name = "boottest"
vip = "10.99.0.100"
network = "10.99.0.0/24"
gateway = "10.99.0.1"
dns = ["10.99.0.1"]

[ssh]
authorized-keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKWe+1arL0X5a2zMhkKC8uvrFpgbtJYwE/eN/nOwUXui boot-test"]

[[nodes]]
hostname = "bt-s1"
role = "server"
address = "10.99.0.11"

[[nodes]]
hostname = "bt-a1"
role = "agent"
address = "10.99.0.21"

[image]
board = "{board}"
timestamp = 2026-11-01T00:00:00Z
data-size = "32MiB"
partition-table = "{table}"
"#
    )
}

fn load_profile(board: &str) -> (profile::Profile, plan::Plan, tempfile::TempDir) {
    load_profile_with(board, "gpt")
}

fn load_profile_with(
    board: &str,
    table: &str,
) -> (profile::Profile, plan::Plan, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, profile_text(board, table)).unwrap();
    let p = profile::load(&path).unwrap_or_else(|e| panic!("{e:?}"));
    let pl = plan::plan(&p);
    (p, pl, dir)
}

fn system(arch: &'static str) -> Option<(Tree, &'static Path)> {
    let root = root_dir(arch)?;
    let mut t = tree_from_dir(root);
    boot::prepare_system(&mut t, BUILD_TIME).unwrap();
    Some((t, root))
}

fn cpio_list(initrd: &[u8], dir: &Path) -> Vec<String> {
    let f = dir.join("initrd.img");
    std::fs::write(&f, initrd).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("gzip -dc '{}' | cpio -t --quiet", f.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

fn cpio_cat(initrd: &[u8], dir: &Path, member: &str) -> String {
    let f = dir.join("initrd.img");
    std::fs::write(&f, initrd).unwrap();
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "gzip -dc '{}' | cpio -i --quiet --to-stdout '{member}'",
            f.display()
        ))
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn initramfs_from_real_parts_is_complete_ordered_and_deterministic() {
    if !have("cpio") && skip("cpio not installed") {
        return;
    }
    let Some((sys, _)) = system("arm64") else {
        return;
    };
    let kver = boot::kernel_version(&sys).unwrap();
    let board = BoardDef::get(Board::Rpi);
    let input = InitramfsInput {
        board: &board,
        system: &sys,
        kver: &kver,
        build_time: BUILD_TIME,
    };
    let a = boot::initramfs(&input).unwrap();
    assert_eq!(
        a,
        boot::initramfs(&input).unwrap(),
        "same inputs, same bytes"
    );
    let tmp = tempfile::tempdir().unwrap();
    let list = cpio_list(&a, tmp.path());
    for need in [
        "init",
        "bin/busybox",
        "bin/sh",
        "dev/console",
        "usr/sbin/sfdisk",
        "usr/sbin/mke2fs",
        "usr/sbin/e2fsck",
        "usr/sbin/resize2fs",
        "lib/ld-linux-aarch64.so.1",
        "lib/aarch64-linux-gnu/libc.so.6",
        "lib/aarch64-linux-gnu/libfdisk.so.1",
        "lib/aarch64-linux-gnu/libext2fs.so.2",
        "etc/bakery/modules",
    ] {
        assert!(
            list.iter().any(|l| l == need),
            "{need} missing from the initramfs"
        );
    }
    let order = cpio_cat(&a, tmp.path(), "etc/bakery/modules");
    let pos = |m: &str| {
        order
            .lines()
            .position(|l| l.ends_with(&format!("/{m}.ko")))
            .unwrap_or_else(|| panic!("{m} not in\n{order}"))
    };
    assert!(pos("sdhci") < pos("sdhci-pltfm") && pos("sdhci-pltfm") < pos("sdhci-iproc"));
    assert!(
        pos("jbd2") < pos("ext4") && pos("mbcache") < pos("ext4") && pos("crc16") < pos("ext4")
    );
    assert!(pos("fat") < pos("vfat"));
    for m in [
        "fixed",
        "gpio-regulator",
        "bcm2835",
        "virtio_blk",
        "virtio_pci",
        "squashfs",
        "overlay",
    ] {
        pos(m);
    }
    // Every listed module is in the archive.
    for l in order.lines() {
        assert!(list.contains(&format!("lib/modules/{kver}/{l}")), "{l}");
    }
}

#[test]
fn generated_modules_dep_agrees_with_depmod() {
    if !have("depmod") && skip("depmod (kmod) not installed") {
        return;
    }
    let Some((sys, root)) = system("arm64") else {
        return;
    };
    let kver = boot::kernel_version(&sys).unwrap();
    // kmod's depmod -n prints modules.dep first, then the other indexes after "#" lines.
    let out = Command::new("depmod")
        .arg("-b")
        .arg(root)
        .arg("-n")
        .arg(&kver)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference: String = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .take_while(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    let mdir = boot::modules::modules_dir(&sys, &kver).unwrap();
    let Some(Kind::File(d)) = sys.get(&format!("{mdir}/modules.dep")).map(|e| &e.kind) else {
        panic!("prepare_system wrote no modules.dep");
    };
    let ours = String::from_utf8(d.read().unwrap()).unwrap();
    let parse =
        |s: &str| -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
            s.lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| {
                    (
                        k.to_owned(),
                        v.split_whitespace().map(String::from).collect(),
                    )
                })
                .collect()
        };
    let (r, o) = (parse(&reference), parse(&ours));
    assert_eq!(r.len(), o.len(), "module count");
    let differing: Vec<_> = r
        .iter()
        .filter(|(k, v)| o.get(*k) != Some(v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        differing.is_empty(),
        "dependency sets differ for {differing:?}"
    );
}

#[test]
fn boot_tree_of_a_pi_node_has_firmware_kernel_and_one_line_cmdline() {
    let Some((sys, _)) = system("arm64") else {
        return;
    };
    let (p, pl, _d) = load_profile("rpi");
    let node = &pl.nodes[0];
    let t = boot::boot_tree(
        &p,
        &pl,
        node,
        &sys,
        bakery_image::build::build_timestamp(&p, &sys).unwrap(),
    )
    .unwrap();
    for f in plan::board_files(Board::Rpi, p.image.partition_table) {
        assert!(
            t.contains(f.trim_end_matches('/')),
            "{f} planned but missing"
        );
    }
    for f in [
        "vmlinuz",
        "initrd.img",
        "start4.elf",
        "fixup4.dat",
        "bcm2711-rpi-4-b.dtb",
        "config.txt",
        "cmdline.txt",
        "sysconf.txt",
    ] {
        assert!(t.contains(f), "{f}");
    }
    assert!(
        !t.contains("bcm2712-rpi-5-b.dtb"),
        "Debian 6.1 has no Pi 5 DTB: nothing faked"
    );
    let Some(Kind::File(c)) = t.get("cmdline.txt").map(|e| &e.kind) else {
        panic!()
    };
    let c = String::from_utf8(c.read().unwrap()).unwrap();
    assert_eq!(c.lines().count(), 1);
    assert!(c.contains("cgroup_memory=1 cgroup_enable=memory"));
    let Some(Kind::File(k)) = t.get("vmlinuz").map(|e| &e.kind) else {
        panic!()
    };
    assert_eq!(&k.read().unwrap()[0x38..0x3c], b"ARMd", "arm64 Image");
    assert!(t.iter().all(|(_, e)| e.mtime == BUILD_TIME || e.mtime == 0));
}

/// Hand-made p1 `bakery/` files, standing in for the cluster renderer; `node.env` is
/// rendered from the profile (the runtime's contract), never written by hand.
fn bakery_files(
    p: &profile::Profile,
    node: &str,
    address: &str,
    init: bool,
) -> Vec<(String, String)> {
    let f = |p: &str, c: String| (format!("bakery/{p}"), c);
    let profile_node = p.node(node).expect("the node is in the profile");
    let mut v = vec![
        f(
            "node.env",
            bakery_image::cluster::network::node_env(p, profile_node, BUILD_TIME),
        ),
        f("etc/hostname", format!("{node}\n")),
        f("etc/hosts", format!("127.0.0.1\tlocalhost\n127.0.1.1\t{node}\n")),
        f(
            "etc/systemd/network/10-bakery.network",
            format!("[Match]\nName=eth0\n\n[Network]\nAddress={address}/24\nGateway=10.99.0.1\nDNS=10.99.0.1\n"),
        ),
        f("etc/ssh/authorized_keys", "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKWe+1arL0X5a2zMhkKC8uvrFpgbtJYwE/eN/nOwUXui boot-test\n".into()),
        f("etc/rancher/node/password", "node-password-secret\n".into()),
        f("etc/rancher/k3s/token", "K10secret::server:secret\n".into()),
        f("etc/rancher/k3s/config.yaml.d/20-node.yaml", format!("node-name: {node}\nnode-ip: {address}\n{}", if init { "cluster-init: true\n" } else { "" })),
        f("manifests/hello.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: hello\n".into()),
    ];
    if init {
        v.push(f(
            "etc/rancher/k3s/join.yaml",
            "server: https://@PEER@:6443\n".into(),
        ));
        v.push(f("tls/server-ca.crt", "CERT\n".into()));
        v.push(f("tls/server-ca.key", "KEY\n".into()));
    }
    v
}

/// Assemble a node image the way the builder lays it out (GPT: p1 FAT `bakery-boot`,
/// p2 squashfs `bakery-system`, p3 empty `bakery-data`), with host tools.
pub fn assemble_image(arch: &'static str, board: &str, out: &Path) -> Option<()> {
    assemble_image_with(arch, board, out, "gpt")
}

/// [`assemble_image`] with the partition table "gpt" or "mbr" (Pi 3 / Zero 2 W layout:
/// no partition names; the cmdline carries the disk signature).
pub fn assemble_image_with(arch: &'static str, board: &str, out: &Path, table: &str) -> Option<()> {
    for t in ["mksquashfs", "mkfs.vfat", "mcopy", "sgdisk", "ssh-keygen"] {
        if !have(t) && skip(&format!("{t} not installed")) {
            return None;
        }
    }
    let (mut sys, _) = system(arch)?;
    let (p, pl, _d) = load_profile_with(board, table);
    let node = &pl.nodes[0];
    let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/k3s-standin/k3s");
    let standin = if standin.exists() {
        std::fs::read(standin).unwrap()
    } else {
        b"#!/bin/sh\necho \"k3s-standin: argv $*\"\ncat /etc/rancher/k3s/config.yaml.d/*.yaml | grep -v token | sed 's/^/k3s-standin: config /'\nexec sleep infinity\n".to_vec()
    };
    sys.insert(
        "usr/local/bin/k3s",
        Entry::file(Data::bytes(standin), 0o755),
    )
    .unwrap();
    let mut p1 = boot::boot_tree(
        &p,
        &pl,
        node,
        &sys,
        bakery_image::build::build_timestamp(&p, &sys).unwrap(),
    )
    .unwrap();
    for (path, content) in bakery_files(&p, &node.name, "10.99.0.11", true) {
        p1.add_bytes(&path, content, 0o644).unwrap();
    }
    let work = tempfile::tempdir_in(out.parent().unwrap()).unwrap();
    let w = work.path();
    let key = w.join("hostkey");
    sh(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "bt"])
        .arg("-f")
        .arg(&key));
    p1.add_bytes(
        "bakery/etc/ssh/ssh_host_ed25519_key",
        std::fs::read(&key).unwrap(),
        0o600,
    )
    .unwrap();
    p1.add_bytes(
        "bakery/etc/ssh/ssh_host_ed25519_key.pub",
        std::fs::read(key.with_extension("pub")).unwrap(),
        0o644,
    )
    .unwrap();

    let stage = w.join("system");
    tree_to_dir(&sys, &stage);
    let sqfs = w.join("system.sqfs");
    sh(Command::new("mksquashfs").arg(&stage).arg(&sqfs).args([
        "-comp",
        "zstd",
        "-noappend",
        "-quiet",
        "-no-progress",
        "-processors",
        "2",
    ]));
    let boot_dir = w.join("boot");
    tree_to_dir(&p1, &boot_dir);
    let vfat = w.join("boot.vfat");
    let boot_mib = 256u64;
    sh(Command::new("truncate")
        .arg("-s")
        .arg(format!("{boot_mib}M"))
        .arg(&vfat));
    sh(Command::new("mkfs.vfat")
        .args(["-F", "32", "-n", "BAKERY"])
        .arg(&vfat));
    let entries: Vec<_> = std::fs::read_dir(&boot_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    sh(Command::new("mcopy")
        .arg("-s")
        .arg("-i")
        .arg(&vfat)
        .args(&entries)
        .arg("::"));
    let sq_mib = std::fs::metadata(&sqfs).unwrap().len().div_ceil(1 << 20) + 1;
    let data_mib = 32u64;
    let total = 1 + boot_mib + sq_mib + data_mib + 1;
    let _ = std::fs::remove_file(out);
    sh(Command::new("truncate")
        .arg("-s")
        .arg(format!("{total}M"))
        .arg(out));
    if table == "gpt" {
        sh(Command::new("sgdisk")
            .arg(format!("-n1:1M:+{boot_mib}M"))
            .args(["-t1:0700", "-c1:bakery-boot"])
            .arg(format!("-n2:0:+{sq_mib}M"))
            .args(["-t2:8300", "-c2:bakery-system"])
            .arg(format!("-n3:0:+{data_mib}M"))
            .args(["-t3:8300", "-c3:bakery-data"])
            .arg(out));
    } else {
        let sig = plan::Layout::compute(
            &pl.cluster,
            &node.name,
            p.image.partition_table,
            p.image.boot_size,
            profile::ByteSize(1),
            p.image.data_size,
        )
        .disk_signature;
        let mib = 2048u64;
        let script = format!(
            "label: dos\nlabel-id: 0x{sig}\nstart={}, size={}, type=c\nstart={}, size={}, type=83\nstart={}, size={}, type=83\n",
            mib,
            boot_mib * mib,
            (1 + boot_mib) * mib,
            sq_mib * mib,
            (1 + boot_mib + sq_mib) * mib,
            data_mib * mib
        );
        let mut c = Command::new("sfdisk")
            .arg("-q")
            .arg(out)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success());
    }
    for (img, start_mib) in [(&vfat, 1u64), (&sqfs, 1 + boot_mib)] {
        sh(Command::new("dd")
            .arg(format!("if={}", img.display()))
            .arg(format!("of={}", out.display()))
            .args(["bs=1M", "conv=notrunc,sparse", "status=none"])
            .arg(format!("seek={start_mib}")));
    }
    Some(())
}

fn selftest(console: &[String], key: &str) -> String {
    let needle = format!("bakery: selftest {key}=");
    console
        .iter()
        .find_map(|l| {
            l.find(&needle)
                .map(|i| l[i + needle.len()..].trim().to_owned())
        })
        .unwrap_or_else(|| panic!("no selftest {key} on the console"))
}

fn boot_check(img: &Path, timeout: u64) -> boot::RunOutcome {
    boot_with(img, timeout, None)
}

fn boot_with(img: &Path, timeout: u64, power_cut_on: Option<&str>) -> boot::RunOutcome {
    let opts = boot::RunOptions {
        image: img.to_path_buf(),
        memory_mib: 1024,
        net: boot::run::Net::User,
        mac: None,
        timeout: std::time::Duration::from_secs(timeout),
        check: true,
        append: vec!["bakery.selftest=1".into(), "bakery.timewait=3".into()],
        disk_size: Some(512 << 20),
        snapshot: false,
        extra_disks: Vec::new(),
        echo: true,
        power_cut_on: power_cut_on.map(String::from),
    };
    let out = boot::run(&opts).unwrap();
    eprintln!(
        "boot: ready={:?} failure={:?} seconds={:?} exit={:?}",
        out.ready, out.failure, out.boot_seconds, out.exit_status
    );
    out
}

fn qemu_boot_and_reboot(arch: &'static str, board: &str, system: &str) {
    if !have(system) && skip(&format!("{system} not installed")) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("node.img");
    if assemble_image(arch, board, &img).is_none() {
        return;
    }
    let fresh = dir.path().join("fresh.img");
    sh(Command::new("cp")
        .arg("--sparse=always")
        .arg(&img)
        .arg(&fresh));
    let first = boot_check(&img, 400);
    assert!(first.ok(), "first boot failed: {:?}", first.failure);
    let c = &first.console;
    assert_eq!(selftest(c, "hostname"), "bt-s1");
    assert_eq!(selftest(c, "authorized_keys"), "1");
    assert_eq!(selftest(c, "cmdline_cgroup"), "yes");
    assert!(selftest(c, "cgroup_controllers").contains("memory"));
    assert_eq!(selftest(c, "root_fstype"), "overlay");
    assert_eq!(selftest(c, "lower_fstype"), "squashfs,ro");
    assert_eq!(selftest(c, "data_fstype"), "ext4");
    let end: u64 = selftest(c, "data_end").parse().unwrap();
    let disk: u64 = selftest(c, "disk_sectors").parse().unwrap();
    assert!(
        disk - end < 8192 && disk == (512 << 20) / 512,
        "p3 grown: end {end} of {disk}"
    );
    assert_eq!(selftest(c, "sshd_password_auth"), "no");
    assert_eq!(
        selftest(c, "eth0"),
        "up 10.99.0.11/24",
        "udev loaded the NIC driver and networkd set the static address"
    );
    assert_eq!(
        selftest(c, "depmod_ran"),
        "0",
        "module indexes come from the build"
    );
    assert!(selftest(c, "k3s").starts_with("active"));
    assert_eq!(selftest(c, "join_decision"), "init");
    assert_eq!(selftest(c, "rancher_marker"), "none");
    assert!(
        c.iter().any(|l| l.contains("k3s-standin: argv server")),
        "stand-in started as server"
    );
    let mid = selftest(c, "machine_id");
    let key = selftest(c, "host_key");

    let second = boot_check(&img, 400);
    assert!(second.ok(), "second boot failed: {:?}", second.failure);
    let c2 = &second.console;
    assert_eq!(selftest(c2, "machine_id"), mid, "machine-id persists");
    assert_eq!(selftest(c2, "host_key"), key, "host key persists");
    assert_eq!(
        selftest(c2, "rancher_marker"),
        "1",
        "/var/lib/rancher persists"
    );
    assert_eq!(selftest(c2, "etc_marker"), "none", "/etc does not persist");
    assert!(
        c2.iter().all(|l| !l.contains("first boot: formatting")),
        "no second mkfs"
    );

    // sysconf.txt edited on a copy of the card (as a user would on a desktop).
    let renamed = dir.path().join("renamed.img");
    sh(Command::new("cp")
        .arg("--sparse=always")
        .arg(&img)
        .arg(&renamed));
    let sysconf = dir.path().join("sysconf.txt");
    std::fs::write(&sysconf, "# edited\nhostname=bt-renamed\n").unwrap();
    sh(Command::new("mcopy")
        .arg("-o")
        .arg("-i")
        .arg(format!("{}@@1M", renamed.display()))
        .arg(&sysconf)
        .arg("::sysconf.txt"));
    let third = boot_check(&renamed, 400);
    assert!(
        third.ok(),
        "boot after the sysconf edit failed: {:?}",
        third.failure
    );
    assert_eq!(selftest(&third.console, "hostname"), "bt-renamed");
    assert!(third.ready.as_deref().unwrap().contains("bt-renamed"));

    // Power cuts during first boot: while growing, then while formatting; the next boot recovers.
    let cut1 = boot_with(&fresh, 400, Some("bakery: grow:"));
    assert!(cut1.power_cut, "no power cut at grow: {:?}", cut1.failure);
    let cut2 = boot_with(&fresh, 400, Some("first boot: formatting"));
    assert!(cut2.power_cut, "no power cut at mkfs: {:?}", cut2.failure);
    let rec = boot_check(&fresh, 400);
    assert!(rec.ok(), "boot after power cuts failed: {:?}", rec.failure);
    assert_eq!(selftest(&rec.console, "data_fstype"), "ext4");
    let end: u64 = selftest(&rec.console, "data_end").parse().unwrap();
    let disk: u64 = selftest(&rec.console, "disk_sectors").parse().unwrap();
    assert!(disk - end < 8192, "p3 grown after recovery");
}

#[test]
#[ignore = "boots QEMU (1-3 min); run by ci/boot-test"]
fn qemu_rpi_image_boots_in_virt_and_persists() {
    qemu_boot_and_reboot("arm64", "rpi", "qemu-system-aarch64");
}

#[test]
#[ignore = "boots QEMU (1-3 min); run by ci/boot-test"]
fn qemu_x86_64_image_boots_and_persists() {
    qemu_boot_and_reboot("amd64", "qemu-x86_64", "qemu-system-x86_64");
}

#[test]
fn runtime_overlay_scripts_parse_with_bash() {
    for (path, text, mode) in runtime::FILES {
        if mode & 0o111 == 0 && !path.ends_with(".sh") {
            continue;
        }
        let out = Command::new("bash")
            .arg("-n")
            .stdin(std::process::Stdio::piped())
            .spawn()
            .and_then(|mut c| {
                use std::io::Write;
                c.stdin.take().unwrap().write_all(text.as_bytes())?;
                c.wait_with_output()
            })
            .unwrap();
        assert!(out.status.success(), "{path} does not parse");
    }
    if have("busybox") {
        let out = Command::new("busybox")
            .args(["ash", "-n"])
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("overlays/initramfs/init"))
            .output()
            .unwrap();
        assert!(out.status.success(), "init does not parse");
    }
}

#[test]
fn run_reads_kernel_initramfs_and_cmdline_from_a_real_fat_p1() {
    for t in ["sgdisk", "mkfs.vfat", "mcopy", "sfdisk"] {
        if !have(t) && skip(&format!("{t} not installed")) {
            return;
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut kernel = vec![0u8; 4096];
    kernel[0x38..0x3c].copy_from_slice(b"ARMd");
    std::fs::write(d.join("vmlinuz"), &kernel).unwrap();
    std::fs::write(d.join("initrd.img"), b"initrd").unwrap();
    std::fs::write(
        d.join("cmdline.txt"),
        "console=tty0 console=ttyS1,115200 rootwait\n",
    )
    .unwrap();
    let vfat = d.join("p1.vfat");
    sh(Command::new("truncate").args(["-s", "40M"]).arg(&vfat));
    sh(Command::new("mkfs.vfat").args(["-F", "32"]).arg(&vfat));
    sh(Command::new("mcopy")
        .arg("-i")
        .arg(&vfat)
        .args(["vmlinuz", "initrd.img", "cmdline.txt"].map(|f| d.join(f)))
        .arg("::"));
    for (table, img) in [("gpt", d.join("gpt.img")), ("dos", d.join("mbr.img"))] {
        sh(Command::new("truncate").args(["-s", "48M"]).arg(&img));
        let script = format!(
            "label: {table}\nstart=2048, size=81920, type={}\n",
            if table == "gpt" {
                "EBD0A0A2-B9E5-4433-87C0-68B6B72699C7"
            } else {
                "c"
            }
        );
        let mut c = Command::new("sfdisk")
            .arg("-q")
            .arg(&img)
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        use std::io::Write;
        c.stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        assert!(c.wait().unwrap().success());
        sh(Command::new("dd")
            .arg(format!("if={}", vfat.display()))
            .arg(format!("of={}", img.display()))
            .args(["bs=1M", "seek=1", "conv=notrunc", "status=none"]));
        let files =
            boot::run::read_boot_files(&img, &["vmlinuz", "initrd.img", "cmdline.txt"]).unwrap();
        assert_eq!(files[0], kernel, "{table}");
        assert_eq!(files[1], b"initrd");
        assert_eq!(
            boot::run::kernel_arch(&files[0]).unwrap(),
            boot::run::Arch::Aarch64
        );
        let cmd = boot::run::vm_cmdline(String::from_utf8_lossy(&files[2]).trim(), "ttyAMA0", &[]);
        assert_eq!(cmd, "rootwait console=ttyAMA0");
    }
}

/// `BAKERY_LAB_IMAGE=/path/node.img BAKERY_LAB_BOARD=rpi cargo test --test it
/// boot::lab_image -- --ignored`: write a hand-assembled node image for manual runs of
/// `bakery-image run`.
#[test]
#[ignore = "writes $BAKERY_LAB_IMAGE for manual experiments"]
fn lab_image() {
    let Some(out) = std::env::var_os("BAKERY_LAB_IMAGE") else {
        return;
    };
    let board = std::env::var("BAKERY_LAB_BOARD").unwrap_or_else(|_| "rpi".into());
    let arch = if board == "qemu-x86_64" {
        "amd64"
    } else {
        "arm64"
    };
    assemble_image(arch, &board, Path::new(&out)).unwrap();
}

#[test]
fn module_indexes_are_read_by_real_kmod() {
    if !have("modprobe") && skip("modprobe (kmod) not installed") {
        return;
    }
    let Some((sys, root)) = system("arm64") else {
        return;
    };
    let kver = boot::kernel_version(&sys).unwrap();
    let mdir = boot::modules::modules_dir(&sys, &kver).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let m = tmp.path().join("lib/modules").join(&kver);
    std::fs::create_dir_all(&m).unwrap();
    std::os::unix::fs::symlink(root.join(&mdir).join("kernel"), m.join("kernel")).unwrap();
    for (name, bytes) in boot::kmodindex::indexes(&sys, &kver).unwrap() {
        std::fs::write(m.join(name), bytes).unwrap();
    }
    let modprobe = |args: &[&str]| -> String {
        let out = Command::new("modprobe")
            .arg("-d")
            .arg(tmp.path())
            .arg("-S")
            .arg(&kver)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "modprobe {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let deps = modprobe(&["--show-depends", "ext4"]);
    for m in ["jbd2.ko", "mbcache.ko", "crc16.ko", "ext4.ko"] {
        assert!(deps.contains(m), "{m} not in\n{deps}");
    }
    assert!(deps.find("jbd2.ko").unwrap() < deps.find("ext4.ko").unwrap());
    // udev's lookup: the virtio-net device alias resolves to the driver.
    assert_eq!(
        modprobe(&["--resolve-alias", "virtio:d00000001v00001AF4"]).trim(),
        "virtio_net"
    );
    assert!(
        modprobe(&["--resolve-alias", "of:NgenetT(null)Cbrcm,bcm2711-genet-v5"]).contains("genet")
    );
    // Builtins are known (no "not found" for a built-in module).
    modprobe(&["--show-depends", "mmc_block"]);
}

#[test]
#[ignore = "boots QEMU (1-2 min); run by ci/boot-test"]
fn qemu_x86_64_mbr_image_boots_and_grows() {
    if !have("qemu-system-x86_64") && skip("qemu-system-x86_64 not installed") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let img = dir.path().join("mbr.img");
    if assemble_image_with("amd64", "qemu-x86_64", &img, "mbr").is_none() {
        return;
    }
    let out = boot_check(&img, 400);
    assert!(out.ok(), "MBR boot failed: {:?}", out.failure);
    let c = &out.console;
    assert!(
        c.iter().any(|l| l.contains("bakery.mbr=")),
        "cmdline carries the disk signature"
    );
    assert_eq!(selftest(c, "data_fstype"), "ext4");
    let end: u64 = selftest(c, "data_end").parse().unwrap();
    let disk: u64 = selftest(c, "disk_sectors").parse().unwrap();
    assert!(disk - end < 8192, "p3 grown on MBR: {end} of {disk}");
}
