//! Booting: initramfs, boot partition and node runtime built from real Debian parts and
//! checked with the reference tools (cpio, depmod, gzip, kmod, bash, busybox ash). The
//! QEMU boots of real built images are `ci/boot-test`'s.
//!
//! Parts: `$BAKERY_PARTS/<arch>/` or `~/.cache/bakery-image/parts/<arch>/` (made by `ci/fetch-parts`):
//! rootfs.tar, linux-image.deb, busybox-static.deb (+ raspi-firmware.deb for arm64).
//! Missing parts or tools skip the test locally and fail it when `CI` is set (`need`).

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use bakery_image::boot::{self, BoardDef, InitramfsInput, runtime};
use bakery_image::plan;
use bakery_image::profile::{self, Board};
use bakery_image::stage::{Data, Entry, Kind, Tree};

use crate::need::{self, have};

const BUILD_TIME: i64 = 1_793_491_200; // 2026-11-01T00:00:00Z

fn parts(arch: &str) -> Option<PathBuf> {
    let mut names = vec!["rootfs.tar", "linux-image.deb", "busybox-static.deb"];
    if arch == "arm64" {
        names.push("raspi-firmware.deb");
    }
    need::parts(arch, &names)
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
    if !have(&["cpio"]) {
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
        pi5: false,
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
    if !have(&["depmod"]) {
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
    for f in plan::board_files(Board::Rpi, p.image.partition_table, p.image.pi5) {
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
    if have(&["busybox"]) {
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
        if !have(&[t]) {
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
    std::fs::write(
        d.join("config.txt"),
        "# bakery-image: rpi boot configuration for n1. Generated; rebuild to change.\n",
    )
    .unwrap();
    let vfat = d.join("p1.vfat");
    sh(Command::new("truncate").args(["-s", "40M"]).arg(&vfat));
    sh(Command::new("mkfs.vfat").args(["-F", "32"]).arg(&vfat));
    sh(Command::new("mcopy")
        .arg("-i")
        .arg(&vfat)
        .args(["vmlinuz", "initrd.img", "cmdline.txt", "config.txt"].map(|f| d.join(f)))
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
    // Machines the image's board (rpi, from config.txt) cannot use are exit-1 errors with
    // a hint, before QEMU starts.
    let run = |img: &str, machine: &str| {
        let o = assert_cmd::Command::cargo_bin("bakery-image")
            .unwrap()
            .arg("run")
            .arg(d.join(img))
            .args(["--machine", machine, "--check", "--timeout", "5"])
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, err) = run("gpt.img", "pi9");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("board rpi") && err.contains("hint: use one of virt, raspi3b, raspi4b"),
        "{err}"
    );
    if !have(&["qemu-system-aarch64"]) {
        return;
    }
    let (code, err) = run("gpt.img", "raspi3b");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("boots only MBR") && err.contains("partition-table = \"mbr\""),
        "{err}"
    );
    let has_raspi4b = Command::new("qemu-system-aarch64")
        .args(["-M", "help"])
        .output()
        .is_ok_and(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.starts_with("raspi4b "))
        });
    let (code, err) = run("gpt.img", "raspi4b");
    assert_eq!(code, Some(1), "{err}");
    if has_raspi4b {
        // 48 MiB booted in place: QEMU's SD card needs a power of two.
        assert!(
            err.contains("not a power of two") && err.contains("--disk-size 64M"),
            "{err}"
        );
    } else {
        assert!(
            err.contains("has no machine raspi4b") && err.contains("bookworm-backports"),
            "{err}"
        );
    }
}

/// The raspi4b DTB edit, done by the real fdtput on the Pi 4 DTB of the kernel part,
/// checked with fdtget; the source bytes are left as they were.
#[test]
fn raspi4b_dtb_edit_disables_the_missing_devices_on_a_copy() {
    if !have(&["fdtput", "fdtget", "dpkg-deb", "tar"]) {
        return;
    }
    let Some(deb) = need::part("arm64/linux-image.deb") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(&deb)
        .output()
        .unwrap();
    assert!(tar.status.success());
    std::fs::write(d.join("k.tar"), &tar.stdout).unwrap();
    sh(Command::new("tar")
        .arg("-C")
        .arg(d)
        .arg("-xf")
        .arg(d.join("k.tar"))
        .args(["--wildcards", "*/broadcom/bcm2711-rpi-4-b.dtb"]));
    let found = walk_find(d, "bcm2711-rpi-4-b.dtb").expect("the kernel part has the Pi 4 DTB");
    let original = std::fs::read(&found).unwrap();
    let def = BoardDef::get(Board::Rpi);
    let (_, m) = def.qemu.machine(Some("raspi4b")).unwrap();
    let out = d.join("edited.dtb");
    boot::run::edited_dtb(&original, &out, m).unwrap();
    assert_eq!(std::fs::read(&found).unwrap(), original);
    let get = |args: &[&str]| {
        Command::new("fdtget")
            .arg(&out)
            .args(args)
            .output()
            .unwrap()
    };
    assert_eq!(m.dtb_disable.len(), 6);
    for node in &m.dtb_disable {
        let o = get(&[node, "status"]);
        assert_eq!(
            String::from_utf8_lossy(&o.stdout).trim(),
            "disabled",
            "{node}"
        );
    }
    for np in &m.dtb_delete {
        let (nodes, prop) = np.split_once(':').unwrap();
        // "a|b": the node of this kernel's tree (the 6.1 part: /emmc2bus).
        let node = nodes
            .split('|')
            .find(|n| {
                Command::new("fdtget")
                    .arg(&found)
                    .args(["-l", n])
                    .output()
                    .unwrap()
                    .status
                    .success()
            })
            .unwrap_or_else(|| panic!("none of {nodes} in the stock DTB"));
        // Present before, gone after.
        let before = Command::new("fdtget")
            .arg(&found)
            .args([node, prop])
            .output()
            .unwrap();
        assert!(before.status.success(), "{np} missing in the stock DTB");
        assert!(!get(&[node, prop]).status.success(), "{np} still there");
    }
    // A node the DTB lacks is a clear failure, not a silent no-op.
    let mut bad = m.clone();
    bad.dtb_disable = vec!["/soc/no-such-node".into()];
    let e = boot::run::edited_dtb(&original, &d.join("bad.dtb"), &bad).unwrap_err();
    assert!(format!("{e:#}").contains("no-such-node"), "{e:#}");
}

fn walk_find(dir: &Path, name: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()? {
        let p = e.ok()?.path();
        if p.is_dir() {
            if let Some(f) = walk_find(&p, name) {
                return Some(f);
            }
        } else if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
    }
    None
}

#[test]
fn module_indexes_are_read_by_real_kmod() {
    if !have(&["modprobe"]) {
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
