//! The boot partition (p1) of one node, as a [`Tree`]: kernel, initramfs, firmware, DTBs,
//! DT overlays, config.txt, cmdline.txt (and the Pi 5's cmdline-pi5.txt) and sysconf.txt.
//!
//! Input: the profile (board, partition table, `image.pi5`, build timestamp), the node's
//! plan, and the composed system tree (Debian layout: `/boot/vmlinuz-<kver>` or, 7.x,
//! `/usr/lib/modules/<kver>/vmlinuz`; `/lib/modules/<kver>`, `/usr/lib/raspi-firmware`,
//! `/usr/lib/linux-image-<kver>/broadcom` or `/usr/lib/modules/<kver>/dtb/broadcom`).
//! Output: the board part of p1; the cluster helper's `bakery/` tree is laid over it by
//! the build.

use anyhow::{Context, Result, bail};

use super::boards::{BoardDef, FileSet, TemplateVars};
use super::elf::resolve_file;
use super::initramfs::{InitramfsInput, initramfs};
use crate::plan::{NodePlan, Plan};
use crate::profile::{PartitionTable, Profile};
use crate::stage::{Data, Entry, Kind, Tree};

/// The kernel version of the system tree: `boot/vmlinuz-<kver>` (Debian up to 6.x) or
/// `usr/lib/modules/<kver>/vmlinuz` (Debian's 7.x `linux-binary-<kver>`) with a matching
/// modules dir; the highest version when there are several.
pub fn kernel_version(system: &Tree) -> Result<String> {
    let mut found: Vec<String> = system
        .children("boot")
        .filter_map(|(p, _)| p.strip_prefix("boot/vmlinuz-"))
        .chain(
            system
                .children("usr/lib/modules")
                .filter_map(|(p, _)| p.strip_prefix("usr/lib/modules/"))
                .filter(|v| {
                    system
                        .get(&format!("usr/lib/modules/{v}/vmlinuz"))
                        .is_some()
                }),
        )
        .filter(|v| super::modules::modules_dir(system, v).is_some())
        .map(String::from)
        .collect();
    found.sort_by_key(|a| natural(a));
    found.dedup();
    found.pop().context(
        "no kernel in the system tree (expected /boot/vmlinuz-<version> or /usr/lib/modules/<version>/vmlinuz, and its modules)\nhint: add the kernel package (linux-image-*) to the profile's sources",
    )
}

/// The kernel image of `kver` in the system tree (either layout of [`kernel_version`]).
pub fn kernel_image(system: &Tree, kver: &str) -> Result<Data> {
    resolve_file(system, &format!("boot/vmlinuz-{kver}"))
        .or_else(|_| resolve_file(system, &format!("usr/lib/modules/{kver}/vmlinuz")))
        .map(|(_, d)| d)
}

fn natural(s: &str) -> Vec<(u64, String)> {
    s.split(|c: char| !c.is_ascii_alphanumeric())
        .map(|p| (p.parse().unwrap_or(0), p.to_owned()))
        .collect()
}

/// sysconf.txt (Debian raspi convention): commented defaults; an uncommented line
/// overrides the profile on this card at the next boot.
pub fn sysconf_txt(hostname: &str) -> String {
    format!(
        "# sysconf.txt: read by bakery-node at every boot (Debian raspi convention).\n\
         # Uncomment and edit a line to override the profile on this card only:\n\
         #\n\
         # hostname - the system hostname (the K3s node name stays the profile's)\n\
         # root_authorized_key - one more SSH public key for root\n\
         # (root_pw is not supported: this image allows SSH keys only)\n\
         # new_cluster=1 - first server only, at its first boot after a flash: start a NEW\n\
         #   cluster without asking the other servers (otherwise it waits until they say\n\
         #   that no cluster exists, or joins the one they are in); reflash them too\n\
         #\n\
         #hostname={hostname}\n\
         #root_authorized_key=ssh-ed25519 AAAA... you@example\n\
         #new_cluster=1\n"
    )
}

/// Where the board file `name` is in the system tree: the first of the set's
/// directories that has it (symlinks followed, as Linux >= 6.18's DTB path is one).
pub fn find_board_file(system: &Tree, set: &FileSet, kver: &str, name: &str) -> Option<Data> {
    set.dirs(kver)
        .iter()
        .find_map(|dir| resolve_file(system, &format!("{dir}/{name}")).ok())
        .map(|(_, d)| d)
}

#[allow(clippy::too_many_arguments)] // one call per file set; a struct would only rename them
fn copy_set(
    p1: &mut Tree,
    system: &Tree,
    set: &FileSet,
    kver: &str,
    table: PartitionTable,
    pi5: bool,
    dest_dir: &str,
    mtime: i64,
) -> Result<()> {
    for name in set.required(table, pi5) {
        let d = find_board_file(system, set, kver, name).with_context(|| {
            let dirs = set.dirs(kver).iter().map(|d| format!("/{d}")).collect::<Vec<_>>().join(" or ");
            format!("board file {name} (from {dirs})\nhint: the profile's sources must include the package that ships it")
        })?;
        p1.insert(
            &format!("{dest_dir}{name}"),
            Entry::file(d, 0o644).with_mtime(mtime),
        )?;
    }
    Ok(())
}

/// The board files of p1 that every node of a build shares, and what making them cost.
#[derive(Debug, Clone)]
pub struct BoardFiles {
    /// Kernel, initramfs, firmware, DTBs and DT overlays, with their directories.
    pub tree: Tree,
    /// Initramfs archives built for this tree (one: it is identical on every node).
    pub initramfs_builds: usize,
    pub seconds: f64,
}

/// The part of p1 identical on every node: kernel, initramfs, firmware, DTBs and overlays.
/// Built once per build; `mtime` is the build timestamp (every mtime, the clock floor of
/// the initramfs; see `build::build_timestamp`).
pub fn board_files(
    profile: &Profile,
    plan: &Plan,
    system: &Tree,
    mtime: i64,
) -> Result<BoardFiles> {
    let t0 = std::time::Instant::now();
    let board = BoardDef::get(plan.board);
    let table = profile.image.partition_table;
    let kver = kernel_version(system)?;
    let mut p1 = Tree::new();
    p1.default_mtime = mtime;
    if let Some(e) = p1.get_mut("") {
        e.mtime = mtime;
    }

    let pi5 = profile.image.pi5;
    if pi5 {
        super::pi5::check_kernel(profile, &board, system, &kver)?;
    }
    let kernel = kernel_image(system, &kver)?;
    p1.insert(&board.kernel, Entry::file(kernel, 0o644).with_mtime(mtime))?;
    let initrd = initramfs(&InitramfsInput {
        board: &board,
        system,
        kver: &kver,
        pi5,
        build_time: mtime,
    })
    .context("building the initramfs")?;
    p1.insert(
        &board.initramfs,
        Entry::file(Data::bytes(initrd), 0o644).with_mtime(mtime),
    )?;

    copy_set(
        &mut p1,
        system,
        &board.firmware,
        &kver,
        table,
        pi5,
        "",
        mtime,
    )?;
    copy_set(&mut p1, system, &board.dtbs, &kver, table, pi5, "", mtime)?;
    if !board.overlays.from.is_empty() {
        p1.insert("overlays", Entry::dir(0o755).with_mtime(mtime))?;
        copy_set(
            &mut p1,
            system,
            &board.overlays,
            &kver,
            table,
            pi5,
            "overlays/",
            mtime,
        )?;
    }
    Ok(BoardFiles {
        tree: p1,
        initramfs_builds: 1,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

/// The board part of one node's boot partition (see [`board_files`] and [`node_boot_tree`]).
pub fn boot_tree(
    profile: &Profile,
    plan: &Plan,
    node: &NodePlan,
    system: &Tree,
    mtime: i64,
) -> Result<Tree> {
    node_boot_tree(
        &board_files(profile, plan, system, mtime)?.tree,
        profile,
        plan,
        node,
    )
}

/// The board part of one node's boot partition: the shared board files plus the node's
/// config.txt, cmdline.txt and sysconf.txt.
pub fn node_boot_tree(
    shared: &Tree,
    profile: &Profile,
    plan: &Plan,
    node: &NodePlan,
) -> Result<Tree> {
    let board = BoardDef::get(plan.board);
    let table = profile.image.partition_table;
    let mut p1 = shared.clone();

    // The same signature the disk writer uses (plan::layout), whatever the sizes.
    let signature = crate::plan::Layout::compute(
        &plan.cluster,
        &node.name,
        table,
        profile.image.boot_size,
        crate::profile::ByteSize(1),
        profile.image.data_size,
    )
    .disk_signature;
    let vars = TemplateVars {
        node: &node.name,
        mbr_signature: (table == PartitionTable::Mbr).then_some(signature.as_str()),
    };
    p1.add_bytes("config.txt", board.config_txt(&vars), 0o644)?;
    p1.add_bytes("cmdline.txt", board.cmdline_txt(&vars), 0o644)?;
    if let Some((file, text)) = board.pi5_cmdline_txt(&vars) {
        p1.add_bytes(&file, text, 0o644)?;
    }
    p1.add_bytes("sysconf.txt", sysconf_txt(&node.name), 0o644)?;
    for (p, e) in p1.iter() {
        if !matches!(e.kind, Kind::File(_) | Kind::Dir) {
            bail!("boot partition entry {p} is not a file or directory");
        }
    }
    Ok(p1)
}
