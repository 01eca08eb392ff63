//! The build pipeline: profile + plan -> system tree -> boot trees -> images -> outputs.
//!
//! [`run`] composes the system tree once ([`compose::compose_system`]), fixes the build
//! timestamp, makes the board's boot files once (kernel, initramfs, firmware: identical on
//! every node), renders each node's boot tree ([`compose::boot_tree`]), writes the images
//! ([`crate::image::write_node_images`]) and the files beside them, then publishes
//! everything at once. Nothing appears under a final name unless the whole build worked.

pub mod compose;
pub mod record;
pub mod sbom;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};

pub use compose::{Parts, boot_tree, compose_system, finish_system};

use crate::cluster::{self, Secrets};
use crate::error::UserError;
use crate::fetch::{self, FetchOptions};
use crate::image::{self, Codec, FailPoint, ImageOptions, ImagesOutput, Staging, outputs};
use crate::plan::Plan;
use crate::profile::Profile;
use crate::progress;
use crate::stage::Tree;

/// What `bakery-image build` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct BuildOptions {
    pub out_dir: PathBuf,
    /// Build only these nodes (all when empty).
    pub nodes: Vec<String>,
    /// Use only cached or local parts (no downloads).
    pub offline: bool,
    /// The download cache (default: [`fetch::default_dir`]).
    pub cache_dir: Option<PathBuf>,
    /// Skip the check that the base holds what the node runtime needs (tests that build
    /// from small synthetic trees).
    pub skip_base_check: bool,
    /// Override the image compressor (tests and benchmarks use a fast one).
    pub codec: Option<Codec>,
    pub fail_at: Option<FailPoint>,
}

#[derive(Debug)]
pub struct BuildResult {
    /// The boot files shared by every node.
    pub board_files: record::BoardRecord,
    pub images: ImagesOutput,
    /// Every published file.
    pub files: Vec<PathBuf>,
    pub timestamp: i64,
}

/// The build timestamp: profile `image.timestamp`, else `SOURCE_DATE_EPOCH`, else the
/// newest mtime in the system tree.
pub fn build_timestamp(profile: &Profile, system: &Tree) -> Result<i64> {
    if let Some(t) = profile.image.timestamp {
        return Ok(t);
    }
    if let Ok(v) = std::env::var("SOURCE_DATE_EPOCH") {
        return v.trim().parse().map_err(|_| {
            UserError(format!(
                "SOURCE_DATE_EPOCH={v:?} is not a number of seconds\nhint: unset it or set it to e.g. $(git log -1 --format=%ct)"
            ))
            .into()
        });
    }
    Ok(system.iter().map(|(_, e)| e.mtime).max().unwrap_or(0))
}

/// Resolve and fetch the Debian base of `profile` (None without `[sources.debian]`),
/// honouring its lock file unless `update`.
pub fn debian_base(
    profile: &Profile,
    fopts: &FetchOptions,
    update: bool,
    reporter: &dyn progress::Reporter,
) -> Result<Option<crate::debian::assemble::Assembled>> {
    let Some(d) = &profile.sources.debian else {
        return Ok(None);
    };
    let lock_path = crate::debian::lock::path_for(&profile.path);
    let lock = crate::debian::lock::LockFile::read(&lock_path)
        .map_err(|e| UserError(format!("{e}\nhint: delete the lock file (the next build writes a new one) or run `bakery-image update`")))?;
    let inputs = crate::debian::assemble::Inputs {
        debian: d,
        arch: profile.image.board.arch(),
        requests: crate::debian::select::requests(profile),
        lock,
        update,
    };
    tracing::info!("assembling the Debian base ({})", d.suites.join(", "));
    Ok(Some(crate::debian::assemble::assemble(
        &inputs, fopts, reporter,
    )?))
}

/// Write the lock of `a` beside the profile when it differs from the one there (after a
/// successful build, or a fetch: so that `--offline` finds the set it resolved).
pub fn save_lock(profile: &Profile, a: &crate::debian::assemble::Assembled) -> Result<()> {
    let path = crate::debian::lock::path_for(&profile.path);
    if crate::debian::lock::LockFile::read(&path)
        .ok()
        .flatten()
        .as_ref()
        != Some(&a.lock)
    {
        a.lock
            .write(&path)
            .with_context(|| format!("writing the lock file {}", path.display()))?;
        tracing::info!("wrote {}", path.display());
    }
    Ok(())
}

/// Build the images of `profile` as planned.
pub fn run(
    profile: &Profile,
    plan: &Plan,
    opts: &BuildOptions,
    reporter: &dyn progress::Reporter,
) -> Result<BuildResult> {
    let t0 = Instant::now();
    for n in &opts.nodes {
        if !plan.nodes.iter().any(|p| &p.name == n) {
            let names: Vec<&str> = plan.nodes.iter().map(|p| p.name.as_str()).collect();
            return Err(UserError(format!(
                "--node {n}: no such node in {}\nhint: nodes are {}",
                profile.path.display(),
                names.join(", ")
            ))
            .into());
        }
    }
    let mut staging = Staging::new(&opts.out_dir)?;
    let work = tempfile::Builder::new()
        .prefix(".bakery-work-")
        .tempdir_in(&opts.out_dir)
        .with_context(|| format!("creating a work directory in {}", opts.out_dir.display()))?;

    tracing::info!("fetching {} part(s)", plan.artifacts.len());
    let cache_dir = match &opts.cache_dir {
        Some(d) => d.clone(),
        None => fetch::default_dir().ok_or_else(|| {
            UserError("no cache directory: neither BAKERY_CACHE_DIR, XDG_CACHE_HOME nor HOME is set\nhint: set BAKERY_CACHE_DIR".into())
        })?,
    };
    let mut fopts = FetchOptions::new(cache_dir);
    fopts.offline = opts.offline;
    let fetched = fetch::fetch_all(&plan.artifacts, &fopts, reporter)?;
    let t_base = Instant::now();
    let debian = debian_base(profile, &fopts, false, reporter)?;
    let mut parts = Parts::new(&fetched);
    if let Some(a) = &debian {
        parts = parts.with_debian(a);
    }

    tracing::info!("composing the system tree");
    let mut system = compose_system(profile, &parts, work.path())?;
    // The base from [sources.debian]: packages checked in the cache, unpacked, configured.
    let base_seconds = debian.as_ref().map(|_| t_base.elapsed().as_secs_f64());
    let timestamp = build_timestamp(profile, &system)?;
    finish_system(profile, &mut system, timestamp, !opts.skip_base_check)?;
    let compose_seconds = t0.elapsed().as_secs_f64();

    let secrets = Secrets::load_or_create(&profile.secrets_dir, profile)?;
    for w in secrets.warnings() {
        tracing::warn!("{w}");
    }
    tracing::info!("board files (kernel, initramfs, firmware), shared by every node");
    let board = crate::boot::bootfiles::board_files(profile, plan, &system, timestamp)
        .context("the board's boot files")?;
    let board_record = record::BoardRecord {
        files: board
            .tree
            .iter()
            .filter(|(_, e)| matches!(e.kind, crate::stage::Kind::File(_)))
            .count(),
        bytes: board
            .tree
            .iter()
            .filter_map(|(_, e)| match &e.kind {
                crate::stage::Kind::File(d) => d.len().ok(),
                _ => None,
            })
            .sum(),
        initramfs_builds: board.initramfs_builds,
        seconds: board.seconds,
    };
    let mut boot_trees = BTreeMap::new();
    for n in &plan.nodes {
        if opts.nodes.is_empty() || opts.nodes.contains(&n.name) {
            tracing::info!("boot partition of {}", n.name);
            boot_trees.insert(
                n.name.clone(),
                boot_tree(profile, plan, n, &board.tree, &secrets, timestamp)?,
            );
        }
    }

    tracing::info!("writing images");
    let iopts = ImageOptions {
        image: profile.image.clone(),
        timestamp,
        work_dir: work.path().join("images"),
        codec: opts.codec,
        workers: None,
        fail_at: opts.fail_at,
    };
    let images = image::write_node_images(plan, &system, &boot_trees, &iopts, &mut staging)?;

    tracing::info!("writing checksums, lists and the kubeconfig");
    staging.write_private(
        "kubeconfig",
        cluster::kubeconfig(profile, &secrets)?.as_bytes(),
    )?;
    staging.write(
        "known_hosts",
        cluster::known_hosts(profile, &secrets)?.as_bytes(),
    )?;
    for n in &images.nodes {
        staging.write(
            &format!("{}.sha256", n.file_name),
            outputs::sha256_line(&n.download.sha256, &n.file_name).as_bytes(),
        )?;
    }
    staging.write("SHA256SUMS", outputs::sha256sums(&images.nodes).as_bytes())?;
    staging.write(outputs::ICON_NAME, outputs::ICON_SVG.as_bytes())?;
    let list = outputs::os_list(
        &plan.cluster,
        plan.board,
        &images.nodes,
        timestamp,
        profile.image.base_url.as_deref(),
        &opts.out_dir,
    )?;
    staging.write("os_list.json", list.as_bytes())?;
    let record = record::BuildRecord::new(
        profile,
        plan,
        &board_record,
        &images,
        timestamp,
        record::Timings {
            base_seconds,
            compose_seconds,
            total_seconds: t0.elapsed().as_secs_f64(),
        },
    )?;
    staging.write("build.json", record.to_json()?.as_bytes())?;
    let secs = timestamp.rem_euclid(86_400);
    let created = format!(
        "{}T{:02}:{:02}:{:02}Z",
        outputs::date(timestamp),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    );
    staging.write(
        "sbom.spdx.json",
        sbom::sbom(
            profile.cluster.name.as_str(),
            debian.as_ref().map(|a| &a.lock),
            &fetched,
            &created,
        )
        .as_bytes(),
    )?;
    let files = staging.commit()?;
    drop(work);
    tracing::info!(
        "built {} image(s) in {:.1}s",
        images.nodes.len(),
        t0.elapsed().as_secs_f64()
    );
    if let Some(a) = &debian {
        save_lock(profile, a)?;
    }
    Ok(BuildResult {
        board_files: board_record,
        images,
        files,
        timestamp,
    })
}
