//! Images checked by the reference tools: sgdisk, sfdisk, fsck.fat, mtools, unsquashfs,
//! xz, zstd and bsdcat (libarchive, as Raspberry Pi Imager uses), sha256sum.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use bakery_image::image::NodeOutput;
use bakery_image::plan::layout::SECTOR;
use bakery_image::stage::dir::{DirOptions, read_dir};
use bakery_image::stage::{Data, Entry, Kind, Tree};

use crate::need::have;
use crate::util::{build, make_profile, run, sh, sha256sum, shared_build};

const TOOLS: &[&str] = &[
    "sgdisk",
    "sfdisk",
    "fsck.fat",
    "mdir",
    "mcopy",
    "unsquashfs",
    "xz",
    "bsdcat",
    "sha256sum",
];

/// `ls -l` style type and permission string.
fn ls_mode(e: &Entry) -> String {
    let t = match e.kind {
        Kind::Dir => 'd',
        Kind::Symlink(_) => 'l',
        Kind::CharDev { .. } => 'c',
        Kind::BlockDev { .. } => 'b',
        Kind::Fifo => 'p',
        Kind::Socket => 's',
        _ => '-',
    };
    let mut s = String::from(t);
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        let bit = 0o400 >> i;
        s.push(if e.mode & bit != 0 { c } else { '-' });
    }
    if e.mode & 0o4000 != 0 {
        s.replace_range(3..4, if e.mode & 0o100 != 0 { "s" } else { "S" });
    }
    s
}

/// One line of `unsquashfs -lln`.
#[derive(Debug)]
struct Listed {
    mode: String,
    owner: String,
    /// The size column (for devices, "major,").
    size: String,
    target: Option<String>,
}

/// `unsquashfs -lln` of the squashfs at `offset` in `img`, by path.
fn squash_listing(img: &Path, offset: u64) -> BTreeMap<String, Listed> {
    let out = run(Command::new("unsquashfs")
        .args(["-lln", "-o", &offset.to_string()])
        .arg(img));
    out.lines()
        .filter_map(|l| {
            let at = l.find(" squashfs-root")?;
            let f: Vec<&str> = l[..at].split_whitespace().collect();
            let rest = l[at + 1..].trim_start_matches("squashfs-root");
            let rest = rest.strip_prefix('/').unwrap_or(rest);
            let (path, target) = match (f[0].starts_with('l'), rest.split_once(" -> ")) {
                (true, Some((p, t))) => (p, Some(t.to_owned())),
                _ => (rest, None),
            };
            let e = Listed {
                mode: f[0].to_owned(),
                owner: f[1].to_owned(),
                size: f[2].to_owned(),
                target,
            };
            Some((path.to_owned(), e))
        })
        .collect()
}

/// Every entry of the overlay `tree` (read from `dir`) is in the squashfs with its type,
/// mode, owner root, size and link target; and the real system is there around it.
fn assert_squash_matches(img: &Path, offset: u64, dir: &Path, tree: &Tree) {
    let listing = squash_listing(img, offset);
    let mut checked = 0;
    for (path, e) in tree.iter() {
        if path.is_empty() {
            continue;
        }
        let l = listing
            .get(path)
            .unwrap_or_else(|| panic!("{path} of the overlay is not in the squashfs"));
        let e = match &e.kind {
            Kind::Hardlink(t) => tree.get(t).unwrap(),
            _ => e,
        };
        assert_eq!(l.mode, ls_mode(e), "mode of {path}");
        assert_eq!(l.owner, "0/0", "owner of {path}");
        match &e.kind {
            Kind::Symlink(t) => {
                assert_eq!(l.target.as_deref(), Some(t.as_str()), "target of {path}");
            }
            Kind::File(_) | Kind::Hardlink(_) => {
                let size = std::fs::metadata(dir.join(path)).unwrap().len();
                assert_eq!(l.size, size.to_string(), "size of {path}");
            }
            _ => {}
        }
        checked += 1;
    }
    assert!(
        checked >= 14,
        "the overlay has all its special cases: {checked}"
    );
    // The real rootfs, kernel, busybox, k3s stand-in and node runtime.
    assert!(listing.len() > 3000, "{} entries", listing.len());
    let kver = listing
        .keys()
        .find_map(|p| p.strip_prefix("boot/vmlinuz-"))
        .expect("a kernel in /boot");
    assert!(
        ["lib/modules", "usr/lib/modules"].iter().any(|m| listing
            .get(&format!("{m}/{kver}"))
            .is_some_and(|l| l.mode.starts_with('d'))),
        "modules of {kver}"
    );
    assert!(
        ["bin/busybox", "usr/bin/busybox"]
            .iter()
            .any(|p| listing.get(*p).is_some_and(|l| l.mode.starts_with('-'))),
        "busybox"
    );
    for p in ["bin/sh", "usr/local/bin/k3s", "usr/lib/bakery/bakery-node"] {
        assert!(
            listing.contains_key(p) || listing.contains_key(&format!("usr/{p}")),
            "{p} is missing"
        );
    }
    assert_eq!(listing["usr/local/bin/k3s"].mode, "-rwxr-xr-x");
}

/// All reference-tool checks of one built node image (compressed with xz).
/// Decoded copies go to `scratch`, so `out` keeps only what the build published.
fn check_node_image(out: &Path, scratch: &Path, n: &NodeOutput, overlay: &Path, tree: &Tree) {
    let file = out.join(&n.file_name);
    let raw = scratch.join(format!("{}.raw", n.node));
    // Decoders agree with each other and with the digests we published.
    run(Command::new("xz").arg("-t").arg(&file));
    sh(&format!(
        "xz -dc '{}' > '{}'",
        file.display(),
        raw.display()
    ));
    let bsd = sh(&format!("bsdcat '{}' | sha256sum", file.display()));
    let raw_sha = sha256sum(&raw);
    assert_eq!(
        bsd.split_whitespace().next().unwrap(),
        raw_sha,
        "bsdcat == xz -dc"
    );
    assert_eq!(raw_sha, n.raw.sha256);
    assert_eq!(std::fs::metadata(&raw).unwrap().len(), n.layout.total_size);

    // Partition table.
    let v = run(Command::new("sgdisk").arg("-v").arg(&raw));
    assert!(v.contains("No problems found"), "sgdisk -v: {v}");
    let j: serde_json::Value =
        serde_json::from_str(&run(Command::new("sfdisk").arg("-J").arg(&raw))).unwrap();
    let t = &j["partitiontable"];
    assert_eq!(t["label"], "gpt");
    assert_eq!(
        t["id"].as_str().unwrap(),
        n.layout.disk_guid.to_string().to_uppercase()
    );
    let parts = t["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), n.layout.partitions.len());
    for (p, q) in n.layout.partitions.iter().zip(parts) {
        assert_eq!(q["start"].as_u64().unwrap(), p.start / SECTOR, "{q}");
        assert_eq!(q["size"].as_u64().unwrap(), p.size / SECTOR, "{q}");
        assert_eq!(
            q["type"].as_str().unwrap(),
            p.type_guid.to_string().to_uppercase()
        );
        assert_eq!(
            q["uuid"].as_str().unwrap(),
            p.guid.to_string().to_uppercase()
        );
        assert_eq!(q["name"].as_str().unwrap(), p.label);
    }

    // p1: fsck.fat on the extracted partition, mtools through the offset.
    let p1 = &n.layout.partitions[0];
    let fat = scratch.join(format!("{}.p1", n.node));
    sh(&format!(
        "dd if='{}' of='{}' bs=1M skip={} count={} status=none",
        raw.display(),
        fat.display(),
        p1.start >> 20,
        p1.size >> 20
    ));
    let fsck = run(Command::new("fsck.fat").arg("-n").arg(&fat));
    assert!(!fsck.contains("differences"), "{fsck}");
    let dir = run(Command::new("mdir")
        .args(["-/", "-i"])
        .arg(format!("{}@@1M", raw.display()))
        .arg("::"));
    assert!(dir.contains("BAKERY-BOOT"), "{dir}");
    assert!(
        dir.contains("config") && dir.contains("node     env"),
        "{dir}"
    );
    let env = run(Command::new("mtype")
        .arg("-i")
        .arg(format!("{}@@1M", raw.display()))
        .arg("::bakery/node.env"));
    assert!(
        env.contains(&format!("BAKERY_HOSTNAME='{}'", n.node)),
        "{env}"
    );
    let blkid_serial = sh(&format!("mlabel -i '{}@@1M' -s :: ", raw.display()));
    assert!(blkid_serial.contains("BAKERY-BOOT"), "{blkid_serial}");
    // The board's kernel and initramfs (QEMU boots them directly) beside bakery/.
    let files = run(Command::new("mdir")
        .args(["-/", "-b", "-i"])
        .arg(format!("{}@@1M", raw.display()))
        .arg("::"));
    for want in ["::/vmlinuz", "::/initrd.img", "::/bakery/node.env"] {
        assert!(files.lines().any(|l| l == want), "{want} in p1:\n{files}");
    }
    let kernel = scratch.join(format!("{}.vmlinuz", n.node));
    run(Command::new("mcopy")
        .arg("-n")
        .arg("-i")
        .arg(format!("{}@@1M", raw.display()))
        .arg("::vmlinuz")
        .arg(&kernel));
    let magic = std::fs::read(&kernel).unwrap();
    std::fs::remove_file(&kernel).unwrap();
    assert_eq!(
        &magic[0x202..0x206],
        b"HdrS",
        "p1 vmlinuz is an x86 bzImage"
    );

    // p2: the real system with the synthetic overlay, entry for entry.
    let p2 = &n.layout.partitions[1];
    assert_squash_matches(&raw, p2.start, overlay, tree);

    // p3: zeros.
    let p3 = &n.layout.partitions[2];
    let nonzero = sh(&format!(
        "dd if='{}' bs=1M skip={} count={} status=none | tr -d '\\0' | wc -c",
        raw.display(),
        p3.start >> 20,
        p3.size >> 20
    ));
    assert_eq!(nonzero.trim(), "0");
    std::fs::remove_file(&raw).unwrap();
    std::fs::remove_file(&fat).unwrap();
}

/// The synthetic overlay (`root` beside the profile) as the build reads it.
fn overlay_tree(dir: &Path) -> Tree {
    read_dir(
        &dir.join("root"),
        DirOptions {
            owner: Some((0, 0)),
            max_mtime: Some(1_767_323_045),
        },
    )
    .unwrap()
}

#[test]
fn gpt_xz_images_pass_the_reference_tools() {
    if !have(TOOLS) {
        return;
    }
    let Some(b) = shared_build() else {
        return;
    };
    let (out, r) = (&b.out, &b.result);
    assert_eq!(r.images.nodes.len(), 2);
    // A fixed system size: the plan knows the whole layout, and the image must match it.
    let plan = bakery_image::plan::plan(&bakery_image::profile::load(&b.profile).unwrap());
    for (n, planned) in r.images.nodes.iter().zip(&plan.nodes) {
        assert_eq!(Some(&n.layout), planned.layout.as_ref(), "{}", n.node);
    }
    let tree = overlay_tree(&b.dir);
    let scratch = tempfile::tempdir().unwrap();
    for n in &r.images.nodes {
        check_node_image(out, scratch.path(), n, &b.dir.join("root"), &tree);
    }
    // The Imager list, recomputed with coreutils and xz.
    let list: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("os_list.json")).unwrap()).unwrap();
    let entries = list["os_list"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    for e in entries {
        let url = e["url"].as_str().unwrap();
        let path = url.strip_prefix("file://").expect("file:// URL");
        assert!(Path::new(path).is_absolute());
        let f = Path::new(path);
        assert_eq!(e["image_download_sha256"].as_str().unwrap(), sha256sum(f));
        assert_eq!(
            e["image_download_size"].as_u64().unwrap(),
            std::fs::metadata(f).unwrap().len()
        );
        let x = sh(&format!(
            "xz -dc '{path}' | sha256sum; xz -dc '{path}' | wc -c"
        ));
        let mut lines = x.lines();
        assert_eq!(
            e["extract_sha256"].as_str().unwrap(),
            lines.next().unwrap().split_whitespace().next().unwrap()
        );
        assert_eq!(
            e["extract_size"].as_u64().unwrap().to_string(),
            lines.next().unwrap().trim()
        );
        assert_eq!(e["release_date"], "2026-01-02");
        // Imager device tags exist for the Pi only.
        assert_eq!(e["devices"], serde_json::json!([]));
        assert_eq!(e["init_format"], "none");
        for k in ["name", "description", "icon"] {
            assert!(!e[k].as_str().unwrap().is_empty(), "{k}");
        }
    }
    // SHA256SUMS and the .sha256 files, checked by sha256sum -c.
    sh(&format!(
        "cd '{}' && sha256sum -c SHA256SUMS && sha256sum -c n1.img.xz.sha256",
        out.display()
    ));
    // The admin kubeconfig is private; known_hosts names the nodes' host keys.
    use std::os::unix::fs::PermissionsExt;
    let kc = std::fs::metadata(out.join("kubeconfig")).unwrap();
    assert_eq!(kc.permissions().mode() & 0o777, 0o600, "kubeconfig mode");
    let kubeconfig = std::fs::read_to_string(out.join("kubeconfig")).unwrap();
    assert!(kubeconfig.contains("10.0.0.100"), "{kubeconfig}");
    let known = std::fs::read_to_string(out.join("known_hosts")).unwrap();
    for a in ["10.0.0.9", "10.0.0.10"] {
        assert!(known.contains(a), "{a} in known_hosts:\n{known}");
    }
    // Several streams: the node prefix, the shared system stream, zeros, the suffix.
    let l = sh(&format!(
        "xz -l --robot '{}'",
        out.join("n1.img.xz").display()
    ));
    let streams: u32 = l
        .lines()
        .find(|l| l.starts_with("totals"))
        .unwrap()
        .split('\t')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(streams >= 3, "{l}");
}

#[test]
fn mbr_raw_image() {
    if !have(&["sfdisk", "fsck.fat", "unsquashfs"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let Some(profile) = make_profile(
        d.path(),
        // A large data partition: zeros that must cost no disk blocks.
        "partition-table = \"mbr\"\nformat = \"raw\"\ndata-size = \"1GiB\"",
    ) else {
        return;
    };
    let out = d.path().join("out");
    let r = build(&profile, &out, |o| o.nodes = vec!["n2".into()]).unwrap();
    let n = &r.images.nodes[0];
    let img = out.join("n2.img");
    assert_eq!(n.file_name, "n2.img");
    assert_eq!(sha256sum(&img), n.raw.sha256);
    assert_eq!(n.raw, n.download);
    let j: serde_json::Value =
        serde_json::from_str(&run(Command::new("sfdisk").arg("-J").arg(&img))).unwrap();
    let t = &j["partitiontable"];
    assert_eq!(t["label"], "dos");
    assert_eq!(
        t["id"].as_str().unwrap(),
        format!("0x{}", n.layout.disk_signature)
    );
    let parts = t["partitions"].as_array().unwrap();
    let types: Vec<&str> = parts.iter().map(|p| p["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["c", "83", "83"]);
    assert_eq!(parts[0]["bootable"], true);
    for (p, q) in n.layout.partitions.iter().zip(parts) {
        assert_eq!(q["start"].as_u64().unwrap(), p.start / SECTOR);
        assert_eq!(q["size"].as_u64().unwrap(), p.size / SECTOR);
    }
    let i = bakery_image::image::inspect::inspect(&img).unwrap();
    assert_eq!(i.table, "MBR");
    assert_eq!(i.partitions.len(), 3);
    assert!(i.all_ok() && i.checks.len() >= 4, "{}", i.render());
    assert!(
        i.fat
            .as_ref()
            .unwrap()
            .node_env
            .as_ref()
            .unwrap()
            .contains("BAKERY_HOSTNAME='n2'")
    );
    let v = run(Command::new("sfdisk").arg("-V").arg(&img));
    assert!(v.contains("No errors detected"), "{v}");
    assert_squash_matches(
        &img,
        n.layout.partitions[1].start,
        &d.path().join("root"),
        &overlay_tree(d.path()),
    );
    // Sparse: far fewer blocks than bytes.
    let blocks = sh(&format!("du -k '{}'", img.display()));
    let kib: u64 = blocks.split_whitespace().next().unwrap().parse().unwrap();
    assert!(
        kib * 1024 < n.layout.total_size / 4,
        "raw image is not sparse: {kib} KiB"
    );
}

#[test]
fn zst_images_decode_with_zstd_and_bsdcat() {
    if !have(&["zstd", "bsdcat", "sha256sum"]) {
        return;
    }
    // The image `bakery-image build` made with the profile's own codec (zstd level 9).
    let Some(out) = crate::util::cli_zst_build() else {
        return;
    };
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("build.json")).unwrap()).unwrap();
    let n = &record["images"]["nodes"][0];
    assert_eq!(n["node"], "n1");
    let f = out.join("n1.img.zst");
    run(Command::new("zstd").arg("-t").arg(&f));
    let a = sh(&format!("zstd -dc '{}' | sha256sum", f.display()));
    let b = sh(&format!("bsdcat '{}' | sha256sum", f.display()));
    assert_eq!(a, b);
    assert_eq!(a.split_whitespace().next().unwrap(), n["raw"]["sha256"]);
    assert_eq!(sha256sum(&f), n["download"]["sha256"]);
}

#[test]
fn squashfs_keeps_special_files_and_reports_xattrs() {
    if !have(&["unsquashfs"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let mut t = Tree::new();
    t.default_mtime = 1_700_000_000;
    t.insert("dev", Entry::dir(0o755).with_mtime(1_700_000_000))
        .unwrap();
    let dev = |kind| Entry {
        kind,
        mode: 0o620,
        uid: 0,
        gid: 5,
        mtime: 1_700_000_000,
        xattrs: vec![],
    };
    t.insert("dev/console", dev(Kind::CharDev { major: 5, minor: 1 }))
        .unwrap();
    t.insert("dev/sda", dev(Kind::BlockDev { major: 8, minor: 0 }))
        .unwrap();
    t.insert(
        "dev/big",
        dev(Kind::CharDev {
            major: 259,
            minor: 3,
        }),
    )
    .unwrap();
    t.insert("run/fifo", dev(Kind::Fifo)).unwrap();
    let mut ping = Entry::file(Data::bytes(vec![7u8; 5000]), 0o4755)
        .with_owner(1000, 1001)
        .with_mtime(1_600_000_000);
    ping.xattrs
        .push(("security.capability".into(), vec![1, 2, 3]));
    t.insert("usr/bin/ping", ping).unwrap();
    t.insert(
        "usr/bin/ping2",
        Entry {
            kind: Kind::Hardlink("usr/bin/ping".into()),
            ..Entry::dir(0)
        },
    )
    .unwrap();
    t.insert(
        "usr/bin/p",
        Entry::symlink("ping").with_mtime(1_600_000_000),
    )
    .unwrap();
    let img = d.path().join("s.img");
    let info = bakery_image::image::squashfs::write_squashfs(
        &t,
        &img,
        bakery_image::profile::SquashCompression::Zstd,
        1_767_323_045,
    )
    .unwrap();
    assert_eq!(info.xattr_paths, ["usr/bin/ping"]);
    let l = run(Command::new("unsquashfs").args(["-lln", "-UTC"]).arg(&img));
    assert!(
        l.contains("crw--w---- 0/5") && l.contains("5,  1") && l.contains("dev/console"),
        "{l}"
    );
    assert!(l.contains("brw--w---- 0/5") && l.contains("dev/sda"), "{l}");
    assert!(l.contains("259,  3") && l.contains("dev/big"), "{l}");
    assert!(
        l.contains("prw--w---- 0/5") && l.contains("run/fifo"),
        "{l}"
    );
    assert!(
        l.contains("-rwsr-xr-x 1000/1001")
            && l.contains("5000 2020-09-13 12:26 squashfs-root/usr/bin/ping\n"),
        "{l}"
    );
    assert!(
        l.contains(
            "-rwsr-xr-x 1000/1001              5000 2020-09-13 12:26 squashfs-root/usr/bin/ping2"
        ),
        "hard link as a copy with its metadata: {l}"
    );
    assert!(l.contains("squashfs-root/usr/bin/p -> ping"), "{l}");
    let root = l.lines().find(|x| x.ends_with(" squashfs-root")).unwrap();
    assert!(
        root.contains("2026-01-02 03:04"),
        "root mtime is the build time: {root}"
    );
    // Same tree, same bytes.
    let img2 = d.path().join("s2.img");
    bakery_image::image::squashfs::write_squashfs(
        &t,
        &img2,
        bakery_image::profile::SquashCompression::Zstd,
        1_767_323_045,
    )
    .unwrap();
    assert_eq!(std::fs::read(&img).unwrap(), std::fs::read(&img2).unwrap());
}

#[test]
fn fat_refuses_what_it_cannot_store() {
    let d = tempfile::tempdir().unwrap();
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(d.path().join("f"))
        .unwrap();
    f.set_len(262 << 20).unwrap();
    let mut t = Tree::new();
    t.add_bytes("config.txt", "x", 0o644).unwrap();
    t.insert("link", Entry::symlink("config.txt")).unwrap();
    let e = bakery_image::image::fat::write_fat(&f, 1 << 20, 260 << 20, &t, 1, 0).unwrap_err();
    assert!(format!("{e:#}").contains("link is a symlink"), "{e:#}");
}

/// Boot files identical on every node are compressed once and still read back exactly.
#[test]
fn shared_boot_files_are_compressed_once_and_read_back() {
    if !have(&["xz", "bsdcat", "mcopy", "fsck.fat", "cmp"]) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let Some(profile) = make_profile(d.path(), "") else {
        return;
    };
    let p = bakery_image::profile::load(&profile).unwrap();
    let plan = bakery_image::plan::plan(&p);
    let mut kernel = Vec::new();
    let mut s: u64 = 7;
    for _ in 0..(3 << 20) + 12345 {
        s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        kernel.push((s >> 56) as u8);
    }
    let kpath = d.path().join("vmlinuz");
    std::fs::write(&kpath, &kernel).unwrap();
    let mut boot = std::collections::BTreeMap::new();
    for (i, n) in plan.nodes.iter().enumerate() {
        let mut t = Tree::new();
        // A node-specific file sorts first, with a different size per node.
        t.add_bytes(
            "bakery/node.env",
            format!("BAKERY_HOSTNAME='{}'\n", n.name).repeat(1 + 500 * i),
            0o644,
        )
        .unwrap();
        t.insert("vmlinuz", Entry::file(Data::Path(kpath.clone()), 0o644))
            .unwrap();
        t.add_bytes("initrd.img", vec![0x5a; 1 << 20 | 77], 0o644)
            .unwrap();
        boot.insert(n.name.clone(), t);
    }
    let system = read_dir(&d.path().join("root"), DirOptions::default()).unwrap();
    assert!(
        plan.nodes.len() >= 2,
        "two nodes or more, written two at a time"
    );
    let write = |name: &str, workers: usize| {
        let out = d.path().join(name);
        let mut staging = bakery_image::image::Staging::new(&out).unwrap();
        let opts = bakery_image::image::ImageOptions {
            image: p.image.clone(),
            timestamp: 1_767_323_045,
            work_dir: d.path().join(format!("work-{name}")),
            codec: Some(bakery_image::image::Codec::Xz {
                preset: 1,
                threads: 2,
            }),
            workers: Some(workers),
            fail_at: None,
        };
        let r = bakery_image::image::write_node_images(&plan, &system, &boot, &opts, &mut staging)
            .unwrap();
        staging.commit().unwrap();
        assert_eq!(r.node_workers, workers);
        (out, r)
    };
    let (out, r) = write("out", 2);
    // One node at a time writes the very same files: the shared caches do not depend on
    // which node asked first.
    let (alone, r1) = write("alone", 1);
    assert_eq!(r.shared_boot_bytes, r1.shared_boot_bytes);
    assert_eq!(r.shared_boot_streams, r1.shared_boot_streams);
    for (a, b) in r.nodes.iter().zip(&r1.nodes) {
        assert_eq!(
            (&a.node, &a.raw, &a.download),
            (&b.node, &b.raw, &b.download)
        );
        run(Command::new("cmp")
            .arg(out.join(&a.file_name))
            .arg(alone.join(&b.file_name)));
        // The download digest is the file's, as written (past the page cache).
        assert_eq!(sha256sum(&out.join(&a.file_name)), a.download.sha256);
        assert_eq!(
            std::fs::metadata(out.join(&a.file_name)).unwrap().len(),
            a.download.size
        );
    }
    assert!(
        r.shared_boot_bytes >= kernel.len() as u64,
        "the second node reuses the kernel stream: {}",
        r.shared_boot_bytes
    );
    for n in &r.nodes {
        let f = out.join(&n.file_name);
        run(Command::new("xz").arg("-t").arg(&f));
        let raw = out.join("raw");
        sh(&format!("xz -dc '{}' > '{}'", f.display(), raw.display()));
        assert_eq!(sha256sum(&raw), n.raw.sha256);
        assert_eq!(
            sh(&format!("bsdcat '{}' | sha256sum", f.display()))
                .split_whitespace()
                .next()
                .unwrap(),
            n.raw.sha256
        );
        let back = out.join("vmlinuz.back");
        run(Command::new("mcopy")
            .arg("-n")
            .arg("-i")
            .arg(format!("{}@@1M", raw.display()))
            .arg("::vmlinuz")
            .arg(&back));
        run(Command::new("cmp").arg(&back).arg(&kpath));
        sh(&format!(
            "dd if='{}' of='{}.p1' bs=1M skip=1 count=260 status=none && fsck.fat -n '{}.p1'",
            raw.display(),
            raw.display(),
            raw.display()
        ));
        for x in [raw.clone(), back, out.join("raw.p1")] {
            std::fs::remove_file(x).unwrap();
        }
    }
}
