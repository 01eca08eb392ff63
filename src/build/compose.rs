//! The build's inputs made concrete: the system tree and each node's boot tree.
//!
//! [`compose_system`] lays, in order: the base rootfs (a tar archive, an OS image or a
//! directory), the Debian packages, the k3s binary and air-gap image archives;
//! [`finish_system`] adds the bakery node runtime and the profile's overlay directories,
//! fixes the timestamps and checks that the result holds what the node runtime needs.
//! [`boot_tree`] is partition 1 of one node: the
//! board's boot files plus everything the cluster renders under `bakery/`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::boot::BoardDef;
use crate::cluster::{self, Secrets};
use crate::debian::lock::LockedPackage;
use crate::fetch::Fetched;
use crate::plan::{NodePlan, Plan};
use crate::profile::Profile;
use crate::stage::check::{Requirements, check_base};
use crate::stage::dir::{DirOptions, read_dir};
use crate::stage::{self, ContentStore, Data, Entry, Tree};

/// Local paths of the fetched parts, by role ("rootfs", "packages[0]", "k3s", ...), and
/// the packages of an assembled Debian base, in unpacking order.
#[derive(Debug, Default)]
pub struct Parts(BTreeMap<String, PathBuf>, Vec<(LockedPackage, PathBuf)>);

impl Parts {
    pub fn new(fetched: &[Fetched]) -> Self {
        Self(
            fetched
                .iter()
                .map(|f| (f.role.clone(), f.path.clone()))
                .collect(),
            Vec::new(),
        )
    }
    /// Add the packages of an assembled Debian base.
    pub fn with_debian(mut self, a: &crate::debian::assemble::Assembled) -> Self {
        self.1 = a
            .packages
            .iter()
            .map(|(p, f)| (p.clone(), f.path.clone()))
            .collect();
        self
    }
    fn get(&self, role: &str) -> Result<&Path> {
        self.0
            .get(role)
            .map(PathBuf::as_path)
            .with_context(|| format!("part {role} was not fetched"))
    }
}

/// The system tree as the sources give it: base rootfs, packages, k3s, air-gap images.
pub fn compose_system(profile: &Profile, parts: &Parts, work: &Path) -> Result<Tree> {
    let s = &profile.sources;
    let mut store = ContentStore::new(work.join("content"))?;
    let mut tree = match &s.rootfs {
        Some(_) => {
            let base = parts.get("rootfs")?;
            if base.is_dir() {
                read_dir(base, DirOptions::default())
                    .with_context(|| format!("reading rootfs directory {}", base.display()))?
            } else {
                stage::read_base(base, &mut store)?
            }
        }
        None if s.debian.is_some() => {
            let debs: Vec<(LockedPackage, &Path)> = parts
                .1
                .iter()
                .map(|(p, f)| (p.clone(), f.as_path()))
                .collect();
            crate::debian::configure::base_tree(&debs, &mut store, profile.image.timestamp)
                .context("assembling the Debian base (sources.debian)")?
        }
        None => Tree::new(),
    };
    for i in 0..s.packages.len() {
        let deb = parts.get(&format!("packages[{i}]"))?;
        stage::apply(&mut tree, deb, &mut store)?;
    }
    if s.k3s.is_some() {
        let k3s = parts.get("k3s")?;
        tree.insert(
            "usr/local/bin/k3s",
            Entry::file(Data::Path(k3s.to_owned()), 0o755),
        )?;
    }
    for i in 0..s.airgap_images.len() {
        let role = format!("airgap-images[{i}]");
        let p = parts.get(&role)?;
        // Keep the upstream name: K3s picks the decompressor by extension.
        let name = match &s.airgap_images[i] {
            crate::profile::Source::Url { url, .. } => {
                url.rsplit('/').next().unwrap_or("images.tar").to_owned()
            }
            crate::profile::Source::Path { path, .. } => path
                .file_name()
                .map_or("images.tar".into(), |n| n.to_string_lossy().into_owned()),
        };
        tree.insert(
            &format!("var/lib/rancher/k3s/agent/images/{name}"),
            Entry::file(Data::Path(p.to_owned()), 0o644),
        )?;
    }
    Ok(tree)
}

/// Lay the node runtime, then the profile's overlay directories, over the composed tree;
/// fix every mtime at `timestamp`; check that the result holds what the runtime needs.
pub fn finish_system(
    profile: &Profile,
    system: &mut Tree,
    timestamp: i64,
    check: bool,
) -> Result<()> {
    crate::boot::prepare_system(system, timestamp)?;
    for o in &profile.sources.overlays {
        let over = read_dir(
            o,
            DirOptions {
                owner: Some((0, 0)),
                max_mtime: None,
            },
        )
        .with_context(|| format!("reading overlay {}", o.display()))?;
        system.overlay(&over)?;
    }
    if check {
        let mut req = Requirements::for_profile(profile);
        // Without the Pi 5's: those are checked with the Pi 5 DTBs by
        // boot::pi5::check_kernel, which locates the error at image.pi5.
        req.kernel_modules = BoardDef::get(profile.image.board).modules.load;
        // Name the profile key the base comes from, with its line.
        let key = if profile.sources.debian.is_some() {
            "sources.debian"
        } else {
            "sources.rootfs"
        };
        check_base(system, &req).map_err(|e| {
            anyhow::Error::new(e).context(format!(
                "{}: the base this key gives",
                crate::profile::diag::locate(&profile.path, key)
            ))
        })?;
    }
    system.clamp_mtimes(timestamp);
    if let Some(root) = system.get_mut("") {
        root.mtime = timestamp;
    }
    Ok(())
}

/// Partition 1 of one node: the board's boot files (built once per build by
/// [`crate::boot::bootfiles::board_files`]) plus the node's own files and the rendered
/// `bakery/` tree.
pub fn boot_tree(
    profile: &Profile,
    plan: &Plan,
    node: &NodePlan,
    board: &Tree,
    secrets: &Secrets,
    timestamp: i64,
) -> Result<Tree> {
    let mut t = crate::boot::bootfiles::node_boot_tree(board, profile, plan, node)
        .with_context(|| format!("the boot files of node {}", node.name))?;
    let rendered = cluster::render_node(profile, plan, secrets, &node.name, timestamp)
        .with_context(|| format!("rendering the configuration of node {}", node.name))?;
    for (p, _) in rendered.iter() {
        anyhow::ensure!(
            p.is_empty() || board.get(p).is_none_or(|e| e.kind == stage::Kind::Dir),
            "the configuration of node {} would replace the board file {p}",
            node.name
        );
    }
    t.overlay(&rendered)?;
    Ok(t)
}
