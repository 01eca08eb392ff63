//! Pi 5 support of the `rpi` board (`image.pi5`): whether the kernel the build found can
//! drive a Pi 5, and which boards an image boots.
//!
//! Input: the profile, the board definition and the composed system tree with its kernel
//! version. Output: nothing, or a located error at `image.pi5` naming what the kernel
//! lacks (the Pi 5 DTBs of `firmware/rpi.toml [dtbs] pi5`, the drivers of `[modules]
//! pi5`), so an image that claims Pi 5 support always carries it.

use anyhow::Result;

use super::boards::BoardDef;
use super::bootfiles::find_board_file;
use super::modules::{ModuleIndex, canonical};
use crate::profile::{Board, PartitionTable, Profile};
use crate::stage::Tree;

/// The hardware an image of `board` boots, for `check` and `plan --json`.
pub fn boots_on(board: Board, table: PartitionTable, pi5: bool) -> Vec<String> {
    let mut v: Vec<&str> = match board {
        Board::Rpi => vec!["Pi 4/400/CM4"],
        Board::QemuAarch64 => vec!["QEMU virt (aarch64)"],
        Board::QemuX86_64 => vec!["QEMU q35 (x86_64)"],
    };
    if board == Board::Rpi && pi5 {
        v.push("Pi 5");
    }
    if board == Board::Rpi && table == PartitionTable::Mbr {
        v.push("Pi 3/Zero 2 W");
    }
    v.into_iter().map(String::from).collect()
}

/// What kernel `kver` of `system` lacks to boot a Pi 5: DTBs and modules by name.
pub fn missing(board: &BoardDef, system: &Tree, kver: &str) -> Result<Vec<String>> {
    let mut out: Vec<String> = board
        .dtbs
        .pi5
        .iter()
        .filter(|name| find_board_file(system, &board.dtbs, kver, name).is_none())
        .map(|name| format!("device tree {name}"))
        .collect();
    let index = ModuleIndex::load_for(system, kver, Some(&board.modules.pi5))?;
    out.extend(
        index
            .missing(&board.modules.pi5)
            .into_iter()
            .map(|m| format!("module {}", canonical(&m))),
    );
    Ok(out)
}

/// With `image.pi5`: the kernel must carry the Pi 5's DTBs and drivers, else a located
/// error at `image.pi5` (exit 1).
pub fn check_kernel(profile: &Profile, board: &BoardDef, system: &Tree, kver: &str) -> Result<()> {
    let lacks = missing(board, system, kver)?;
    if lacks.is_empty() {
        return Ok(());
    }
    let suite = profile
        .sources
        .debian
        .as_ref()
        .map_or("trixie", |d| d.suites[0].as_str());
    Err(crate::profile::locate(
        &profile.path,
        "image.pi5",
        format!(
            "pi5 = true, but kernel {kver} has no BCM2712 (Pi 5) support: it lacks {}",
            lacks.join(", ")
        ),
        format!(
            "the Pi 5 needs a kernel >= 6.18.15: set sources.debian.kernel = \"linux-image-arm64/{suite}-backports\" with extra-suites = [\"{suite}-backports\"] (then `bakery-image update`), or leave pi5 out (the image then boots Pi 4s only)"
        ),
    )
    .into())
}

/// The first Debian kernel with the Pi 5's SD and RP1 drivers (trixie-backports).
pub const MIN_PI5_KERNEL: &str = "6.18.15";

/// With `image.pi5` and a lock beside the profile: the locked kernel must be new enough
/// for a Pi 5 (`check` says so before any build; the build checks the kernel itself).
pub fn check_lock(profile: &Profile) -> Result<()> {
    if !profile.image.pi5 || profile.sources.debian.is_none() {
        return Ok(());
    }
    let path = crate::debian::lock::path_for(&profile.path);
    let Ok(Some(lock)) = crate::debian::lock::LockFile::read(&path) else {
        return Ok(()); // no lock (the first build resolves one) or a broken one (build says)
    };
    let asked = crate::debian::select::requests(profile);
    if lock.requests != crate::debian::assemble::request_keys(&asked) {
        return Ok(()); // the lock predates what the profile asks: the build resolves anew
    }
    let min: debversion::Version = MIN_PI5_KERNEL.parse().expect("a version");
    let kernels: Vec<_> = lock
        .packages
        .iter()
        .filter(|p| {
            p.name
                .strip_prefix("linux-image-")
                .is_some_and(|v| v.starts_with(|c: char| c.is_ascii_digit()))
        })
        .collect();
    let new_enough = kernels.iter().any(|p| {
        p.version
            .parse::<debversion::Version>()
            .is_ok_and(|v| v >= min)
    });
    if kernels.is_empty() || new_enough {
        return Ok(());
    }
    let names: Vec<String> = kernels
        .iter()
        .map(|p| format!("{} {}", p.name, p.version))
        .collect();
    Err(crate::profile::locate(
        &profile.path,
        "image.pi5",
        format!(
            "pi5 = true, but {} locks {}: no kernel before {MIN_PI5_KERNEL} drives a Pi 5 (BCM2712)",
            path.display(),
            names.join(", ")
        ),
        "take the kernel from backports (sources.debian.kernel = \"linux-image-arm64/trixie-backports\", or leave kernel out with pi5 = true) and run `bakery-image update`".into(),
    )
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::{Data, Entry};

    fn file(t: &mut Tree, p: &str, body: &str) {
        t.insert(p, Entry::file(Data::bytes(body), 0o644)).unwrap();
    }

    /// A tree in Debian 7.x's layout: vmlinuz and DTBs under usr/lib/modules/<v>, the old
    /// DTB path a compatibility symlink, the Pi 5 modules listed in modules.dep.
    fn seven(dep: &str, dtbs: &[&str]) -> Tree {
        let mut t = Tree::new();
        let m = "usr/lib/modules/7.3.4+deb13-arm64";
        file(&mut t, &format!("{m}/vmlinuz"), "Image");
        file(&mut t, &format!("{m}/modules.dep"), dep);
        for d in dtbs {
            file(&mut t, &format!("{m}/dtb/broadcom/{d}"), "dtb");
        }
        t.insert(
            "usr/lib/linux-image-7.3.4+deb13-arm64",
            Entry::symlink("modules/7.3.4+deb13-arm64/dtb"),
        )
        .unwrap();
        t
    }

    #[test]
    fn a_kernel_without_bcm2712_support_is_named_with_what_it_lacks() {
        let b = BoardDef::get(Board::Rpi);
        let dep: String = b
            .modules
            .pi5
            .iter()
            .map(|m| format!("kernel/x/{m}.ko.xz:\n"))
            .collect();
        let full = seven(&dep, &["bcm2712-rpi-5-b.dtb", "bcm2712-d-rpi-5-b.dtb"]);
        let kver = crate::boot::kernel_version(&full).unwrap();
        assert_eq!(kver, "7.3.4+deb13-arm64");
        assert!(crate::boot::bootfiles::kernel_image(&full, &kver).is_ok());
        assert_eq!(missing(&b, &full, &kver).unwrap(), Vec::<String>::new());
        // Through the compatibility symlink (the first directory of [dtbs]) as well.
        assert!(
            crate::boot::elf::resolve_file(
                &full,
                &format!("usr/lib/linux-image-{kver}/broadcom/bcm2712-rpi-5-b.dtb")
            )
            .is_ok()
        );
        let part = seven("kernel/x/macb.ko.xz:\n", &["bcm2712-rpi-5-b.dtb"]);
        let lacks = missing(&b, &part, &kver).unwrap();
        assert!(lacks.contains(&"device tree bcm2712-d-rpi-5-b.dtb".to_owned()));
        assert!(
            lacks.contains(&"module sdhci_brcmstb".to_owned()),
            "{lacks:?}"
        );
        assert!(!lacks.iter().any(|m| m == "module macb"), "{lacks:?}");
    }

    #[test]
    fn boots_on_follows_board_table_and_pi5() {
        assert_eq!(
            boots_on(Board::Rpi, PartitionTable::Gpt, true),
            ["Pi 4/400/CM4", "Pi 5"]
        );
        assert_eq!(
            boots_on(Board::Rpi, PartitionTable::Mbr, false),
            ["Pi 4/400/CM4", "Pi 3/Zero 2 W"]
        );
        assert_eq!(
            boots_on(Board::QemuX86_64, PartitionTable::Gpt, false),
            ["QEMU q35 (x86_64)"]
        );
    }
}
