//! Pi 5 nodes (`image.pi5`), checked statically on the real image since no QEMU model
//! runs a Pi 5: the CI aarch64 profile (pi5, its kernel from trixie-backports) built from
//! the host's mirror, then p1 read with mtools and the initramfs with cpio, the modules'
//! dependencies checked with the host's kmod `modinfo`; and the same profile with
//! trixie's own 6.12 kernel refused with a located error. (`ci/boot-test` boots this
//! image's kernel on QEMU virt and raspi4b.)

use std::path::Path;
use std::process::Command;

use crate::debian::{cache_dir, host_mirror};
use crate::need::have;
use crate::util::{run, sh};

/// profiles/ci-aarch64.toml in `dir` (paths made absolute, a raw image), with `edit`.
fn ci_profile(dir: &Path, edit: impl Fn(String) -> String) -> std::path::PathBuf {
    let text = std::fs::read_to_string(crate::root().join("profiles/ci-aarch64.toml")).unwrap();
    assert!(
        text.contains("pi5 = true"),
        "the CI profile builds Pi 5 images"
    );
    let text = text
        .replace("\"../", &format!("\"{}/", crate::root().display()))
        .replace("[image]\n", "[image]\nformat = \"raw\"\n");
    let p = dir.join("ci.toml");
    std::fs::write(&p, edit(text)).unwrap();
    p
}

fn build(profile: &Path, mirror: &str) -> std::process::Output {
    crate::bin()
        .env("BAKERY_DEBIAN_MIRROR", mirror)
        .env("BAKERY_CACHE_DIR", cache_dir())
        .args(["build", "--node", "ci-s1", "--out"])
        .arg(profile.parent().unwrap().join("out"))
        .arg(profile)
        .output()
        .unwrap()
}

#[test]
fn pi5_image_carries_the_dtbs_config_sections_and_modules_with_their_dependencies() {
    let Some(mirror) = host_mirror() else { return };
    if !have(&["mdir", "mtype", "mcopy", "cpio", "modinfo", "fsck.fat"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let profile = ci_profile(dir.path(), |t| t);
    let o = build(&profile, &mirror);
    assert!(
        o.status.success(),
        "build failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let img = dir.path().join("out/ci-s1.img");
    let at = format!("{}@@1M", img.display());
    let p1 = run(Command::new("mdir").args(["-b", "-i", &at, "::/"]));
    for f in [
        "bcm2712-rpi-5-b.dtb",
        "bcm2712-d-rpi-5-b.dtb",
        "bcm2711-rpi-4-b.dtb",
        "cmdline-pi5.txt",
        "start4.elf",
    ] {
        assert!(p1.contains(&format!("::/{f}")), "{f} not on p1:\n{p1}");
    }
    let mtype = |f: &str| run(Command::new("mtype").args(["-i", &at, &format!("::{f}")]));
    let config = mtype("config.txt");
    let section = |name: &str| -> String {
        let start = config
            .find(&format!("[{name}]\n"))
            .unwrap_or_else(|| panic!("[{name}] in\n{config}"));
        let rest = &config[start + name.len() + 3..];
        rest[..rest.find("\n[").unwrap_or(rest.len())].to_owned()
    };
    let pi4 = section("pi4");
    let pi5 = section("pi5");
    for s in [&pi4, &pi5] {
        assert!(
            s.contains("kernel=vmlinuz\n") && s.contains("initramfs initrd.img followkernel\n"),
            "{config}"
        );
    }
    assert!(pi5.contains("cmdline=cmdline-pi5.txt\n"), "{config}");
    assert!(!pi4.contains("cmdline="), "{config}");
    let c4 = mtype("cmdline.txt");
    let c5 = mtype("cmdline-pi5.txt");
    assert_eq!(c5.lines().count(), 1, "{c5}");
    assert!(
        c5.contains(" console=ttyAMA10,115200 ") && !c5.contains("ttyS1"),
        "{c5}"
    );
    assert_eq!(
        c4.replace("ttyS1", "ttyAMA10"),
        c5,
        "only the console differs"
    );
    // The DTB is a real flattened device tree for the Pi 5 (magic d00dfeed, its model).
    let dtb = dir.path().join("p5.dtb");
    run(Command::new("mcopy")
        .args(["-i", &at, "::bcm2712-rpi-5-b.dtb"])
        .arg(&dtb));
    let bytes = std::fs::read(&dtb).unwrap();
    assert_eq!(&bytes[..4], b"\xd0\x0d\xfe\xed");
    assert!(
        bytes.windows(22).any(|w| w == b"raspberrypi,5-model-b\0"),
        "not the Pi 5 tree"
    );

    // The initramfs: the Pi 5 SD, RP1 and Ethernet modules, each after its dependencies.
    let initrd = dir.path().join("initrd.img");
    run(Command::new("mcopy")
        .args(["-i", &at, "::initrd.img"])
        .arg(&initrd));
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    sh(&format!(
        "cd '{}' && gzip -dc '{}' | cpio -id --quiet",
        x.display(),
        initrd.display()
    ));
    let kver = std::fs::read_to_string(x.join("etc/bakery/kver")).unwrap();
    let kver = kver.trim();
    assert!(
        kver.starts_with(|c: char| c >= '7') || kver.starts_with("6.18"),
        "{kver}"
    );
    let order: Vec<String> = std::fs::read_to_string(x.join("etc/bakery/modules"))
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let name = |p: &str| {
        let f = p.rsplit('/').next().unwrap();
        f.split(".ko").next().unwrap().replace('-', "_")
    };
    let pos = |m: &str| order.iter().position(|p| name(p) == m.replace('-', "_"));
    for m in [
        "sdhci-brcmstb",
        "pinctrl-brcmstb-bcm2712",
        "irq-bcm2712-mip",
        "rp1_pci",
        "clk-rp1",
        "pinctrl-rp1",
        "macb",
        "broadcom",
        "sdhci-iproc",
    ] {
        let i = pos(m).unwrap_or_else(|| panic!("{m} not loaded by the initramfs: {order:?}"));
        let ko = x.join(format!("lib/modules/{kver}/{}", order[i]));
        assert!(order[i].ends_with(".ko.xz"), "{}", order[i]);
        // Its dependencies, as the reference tool reads them from the module itself.
        let deps = run(Command::new("modinfo").args(["-F", "depends"]).arg(&ko));
        for d in deps.trim().split(',').filter(|d| !d.is_empty()) {
            let j = pos(d).unwrap_or_else(|| panic!("{m} needs {d}, not in the initramfs"));
            assert!(j < i, "{d} is loaded after {m}");
        }
    }
    // The initramfs's modules.dep (busybox modprobe) names every listed module.
    let dep = std::fs::read_to_string(x.join(format!("lib/modules/{kver}/modules.dep"))).unwrap();
    for p in &order {
        assert!(
            dep.lines().any(|l| l.starts_with(&format!("{p}:"))),
            "{p} not in modules.dep"
        );
    }
    // `check` says which boards the image boots.
    let o = crate::bin().arg("check").arg(&profile).output().unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(
        out.contains("ci-s1.img: ") && out.contains("boots Pi 4/400/CM4, Pi 5"),
        "{out}"
    );
}

#[test]
fn pi5_with_a_kernel_without_bcm2712_support_is_a_located_error() {
    let Some(mirror) = host_mirror() else { return };
    let dir = tempfile::tempdir().unwrap();
    // trixie's own kernel (6.12): no Pi 5 SD or RP1 drivers.
    let profile = ci_profile(dir.path(), |t| {
        t.replace(
            "extra-suites = [\"trixie-backports\"]\n",
            "extra-suites = [\"trixie-backports\"]\nkernel = \"linux-image-arm64\"\n",
        )
    });
    let text = std::fs::read_to_string(&profile).unwrap();
    let line = text.lines().position(|l| l == "pi5 = true").unwrap() + 1;
    let located = |err: &str, what: &[&str]| {
        for needle in [&format!("ci.toml:{line}:"), "image.pi5", "hint: "]
            .into_iter()
            .chain(what.iter().copied())
        {
            assert!(err.contains(needle), "{needle} missing in\n{err}");
        }
        assert!(!err.contains("panicked"), "{err}");
    };
    // `update` resolves the set (6.12) and writes the lock; `check` then refuses it.
    let o = crate::bin()
        .env("BAKERY_DEBIAN_MIRROR", &mirror)
        .env("BAKERY_CACHE_DIR", cache_dir())
        .arg("update")
        .arg(&profile)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = crate::bin().arg("check").arg(&profile).output().unwrap();
    assert_eq!(o.status.code(), Some(1));
    located(
        &String::from_utf8_lossy(&o.stderr),
        &["linux-image-6.12", "no kernel before 6.18.15"],
    );
    // The build looks at the kernel it got: what it lacks, by name.
    let o = build(&profile, &mirror);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    located(
        &String::from_utf8_lossy(&o.stderr),
        &[
            "no BCM2712 (Pi 5) support",
            "module sdhci_brcmstb",
            "hint: the Pi 5 needs a kernel >= 6.18.15",
        ],
    );
    assert!(!dir.path().join("out/ci-s1.img").exists());
}

#[test]
fn pi5_is_checked_against_the_board_and_the_suites_and_picks_the_backports_kernel() {
    use bakery_image::profile;
    let base = "[cluster]\nname = \"t\"\nvip = \"10.0.0.100\"\nnetwork = \"10.0.0.0/24\"\ngateway = \"10.0.0.1\"\n\n[[nodes]]\nhostname = \"s1\"\nrole = \"server\"\naddress = \"10.0.0.11\"\n\n";
    let parse = |image: &str, debian: &str| {
        profile::parse(
            Path::new("p.toml"),
            &format!("{base}[image]\n{image}\n[sources.debian]\n{debian}"),
        )
    };
    let only = |d: profile::Diagnostics, line: usize, msg: &str| {
        assert_eq!(d.items.len(), 1, "{d}");
        let i = &d.items[0];
        assert_eq!(i.key.to_string(), "image.pi5");
        assert!(
            d.location(i).starts_with(&format!("p.toml:{line}:")),
            "{}",
            d.location(i)
        );
        assert!(i.message.contains(msg), "{}", i.message);
        assert!(i.hint.is_some());
    };
    only(
        parse(
            "board = \"qemu-x86_64\"\npi5 = true\n",
            "suite = \"trixie\"\nextra-suites = [\"trixie-backports\"]\n",
        )
        .unwrap_err(),
        14,
        "no Raspberry Pi",
    );
    only(
        parse("board = \"rpi\"\npi5 = true\n", "suite = \"trixie\"\n").unwrap_err(),
        14,
        "trixie-backports, which is not a suite",
    );
    let p = parse(
        "board = \"rpi\"\npi5 = true\n",
        "suite = \"trixie\"\nextra-suites = [\"trixie-backports\"]\n",
    )
    .unwrap();
    let k = bakery_image::debian::select::requests(&p)
        .into_iter()
        .find(|r| r.name == "linux-image-arm64")
        .unwrap();
    assert_eq!(k.suite.as_deref(), Some("trixie-backports"));
    assert!(k.why.starts_with("image.pi5"), "{}", k.why);
    // Without pi5: trixie's own kernel, and no Pi 5 on the list of what it boots.
    let p = parse("board = \"rpi\"\n", "suite = \"trixie\"\n").unwrap();
    let k = bakery_image::debian::select::requests(&p)
        .into_iter()
        .find(|r| r.name == "linux-image-arm64")
        .unwrap();
    assert_eq!(k.suite, None);
    let plan = bakery_image::plan::plan(&p);
    assert_eq!(plan.nodes[0].boots_on, ["Pi 4/400/CM4"]);
}
