//! Disk images: partition table, FAT32 boot partition, squashfs system partition, data
//! placeholder, compressed output and digests.
//!
//! [`write_node_images`] is the image stage of the build: it takes the plan, the composed
//! system tree (identical for every node) and each node's boot tree, builds the squashfs
//! once, lays every node out with [`Layout::compute`] sized to it, writes each node's
//! own bytes (partition table, FAT) into memory ([`sparse::SparseImage`]), streams the
//! image out around the shared system stream and returns its digests. Outputs are written under temporary names through a
//! [`Staging`]; the caller commits them once everything else is written too.

pub mod compress;
pub mod fat;
pub mod gpt;
pub mod inspect;
pub mod mbr;
pub mod outputs;
pub mod reader;
pub mod region;
pub mod sparse;
pub mod squash_ahead;
pub mod squashfs;
pub mod xzstored;

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;

pub use compress::{Codec, Digest};
pub use outputs::Staging;

use crate::plan::{Layout, PartRole, Plan};
use crate::profile::types::MIB;
use crate::profile::{ByteSize, Image, OutputFormat, PartitionTable};
use crate::stage::Tree;

/// Room left in the system partition beyond the squashfs (rounded up to MiB).
pub const SYSTEM_HEADROOM: u64 = MIB;

/// Where the build stops on purpose (tests of the all-or-nothing output).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailPoint {
    /// After partition 1 of the first node is written.
    AfterBoot,
}

/// How to write the images.
#[derive(Debug, Clone)]
pub struct ImageOptions {
    /// The profile's `[image]` settings.
    pub image: Image,
    /// The build timestamp (epoch seconds): FAT times, squashfs root and superblock time.
    pub timestamp: i64,
    /// Scratch space for the squashfs and per-node raw images (removed by the caller).
    pub work_dir: PathBuf,
    /// Compressor of `.img.xz`/`.img.zst` (None: the format's default).
    pub codec: Option<Codec>,
    /// Node images written at the same time (None: one per core, at most
    /// [`MAX_NODE_WORKERS`]). The bytes do not depend on it.
    pub workers: Option<usize>,
    pub fail_at: Option<FailPoint>,
}

/// The system partition, shared by every node.
#[derive(Debug, Clone, Serialize)]
pub struct SystemOutput {
    pub squashfs_size: u64,
    pub squashfs_sha256: String,
    pub partition_size: u64,
    pub entries: usize,
    pub xattr_paths: usize,
    pub squashfs_seconds: f64,
    /// Squashfs blocks compressed ahead on every core / by backhand's writer.
    pub blocks_ahead: usize,
    pub blocks_inline: usize,
    pub compress_seconds: f64,
}

/// One node's image.
#[derive(Debug, Clone, Serialize)]
pub struct NodeOutput {
    pub node: String,
    pub role: String,
    /// Final file name in the output directory (`melchior.img.xz`).
    pub file_name: String,
    pub layout: Layout,
    /// The uncompressed image.
    pub raw: Digest,
    /// The file as written (equal to `raw` for raw images).
    pub download: Digest,
    pub boot_files: usize,
    pub seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ImagesOutput {
    pub system: SystemOutput,
    /// Boot-partition bytes whose compressed stream was reused from another node.
    pub shared_boot_bytes: u64,
    /// Boot-partition streams compressed (each big boot file once per build).
    pub shared_boot_streams: usize,
    /// Nodes written at the same time, and the wall time of writing all of them.
    pub node_workers: usize,
    pub nodes_seconds: f64,
    pub nodes: Vec<NodeOutput>,
}

/// The layout of `node` once the system partition size is known.
pub fn node_layout(plan: &Plan, image: &Image, node: &str, squashfs_size: u64) -> Result<Layout> {
    let needed = squashfs_size.div_ceil(MIB) * MIB + SYSTEM_HEADROOM;
    let system = match image.system_size {
        Some(s) => {
            ensure!(
                s.bytes() >= squashfs_size,
                "the system image is {} but image.system-size is {s}\nhint: raise image.system-size to at least {} or leave it out",
                ByteSize(squashfs_size),
                ByteSize(needed)
            );
            s
        }
        None => ByteSize(needed),
    };
    let layout = Layout::try_compute(
        &plan.cluster,
        node,
        image.partition_table,
        image.boot_size,
        system,
        image.data_size,
    )
    .map_err(|e| {
        crate::error::UserError(format!(
            "{e}\nhint: the system image is {}; lower image.boot-size or image.data-size",
            ByteSize(squashfs_size)
        ))
    })?;
    if let Some(np) = plan.nodes.iter().find(|n| n.name == node) {
        ensure!(
            *layout.part(PartRole::Boot) == np.boot_partition,
            "boot partition of {node} differs from the plan"
        );
    }
    Ok(layout)
}

/// Write every node image of `boot_trees` (node name -> boot tree) into `staging`.
pub fn write_node_images(
    plan: &Plan,
    system: &Tree,
    boot_trees: &BTreeMap<String, Tree>,
    opts: &ImageOptions,
    staging: &mut Staging,
) -> Result<ImagesOutput> {
    for name in boot_trees.keys() {
        if !plan.nodes.iter().any(|n| &n.name == name) {
            bail!("boot tree for {name}, which is not a node of the plan");
        }
    }
    fs_err::create_dir_all(&opts.work_dir)?;
    let t0 = Instant::now();
    let sq_path = opts.work_dir.join("system.squashfs");
    let sq = squashfs::write_squashfs(
        system,
        &sq_path,
        opts.image.system_compression,
        opts.timestamp,
    )?;
    let squashfs_sha256 = file_sha256(&sq_path)?;
    let squashfs_seconds = t0.elapsed().as_secs_f64();
    tracing::info!(
        "system: squashfs {} ({} entries) in {squashfs_seconds:.1}s",
        ByteSize(sq.size),
        sq.entries
    );

    let Some(first) = boot_trees.keys().next() else {
        bail!("no node to build");
    };
    let probe = node_layout(plan, &opts.image, first, sq.size)?;
    let p2 = probe.part(PartRole::System).clone();
    let codec = match (opts.image.format, opts.codec) {
        (OutputFormat::Raw, _) => None,
        (_, Some(c)) => Some(c),
        (OutputFormat::Xz, None) => Some(Codec::xz_default()),
        (OutputFormat::Zst, None) => Some(Codec::Zstd { level: 9 }),
    };
    let t1 = Instant::now();
    let shared = match codec {
        Some(c) => Some(compress::SharedRegion::build(
            c,
            &sq_path,
            &opts.work_dir.join("system.stream"),
            p2.size,
        )?),
        None => None,
    };
    let compress_seconds = t1.elapsed().as_secs_f64();
    let zeros = compress::ZeroCache::default();
    let span_cache = compress::SpanCache::new(&opts.work_dir.join("spans"))?;
    let jobs: Vec<NodeJob<'_>> = boot_trees
        .iter()
        .map(|(name, boot)| {
            let file_name = format!("{name}.{}", opts.image.format.extension());
            let part = staging.partial(&file_name);
            NodeJob {
                name,
                boot,
                file_name,
                part,
            }
        })
        .collect();
    let ctx = NodeContext {
        plan,
        opts,
        sq_size: sq.size,
        sq_path: &sq_path,
        p2: &p2,
        codec,
        shared: shared.as_ref(),
        zeros: &zeros,
        spans: &span_cache,
    };
    let t2 = Instant::now();
    let workers = opts
        .workers
        .unwrap_or_else(node_workers)
        .clamp(1, 2 * jobs.len().max(1));
    let nodes = write_nodes(&ctx, &jobs, workers)?;
    let nodes_seconds = t2.elapsed().as_secs_f64();
    Ok(ImagesOutput {
        shared_boot_bytes: span_cache.reused(),
        shared_boot_streams: span_cache.compressed(),
        node_workers: workers,
        nodes_seconds,
        system: SystemOutput {
            squashfs_size: sq.size,
            squashfs_sha256,
            partition_size: p2.size,
            entries: sq.entries,
            xattr_paths: sq.xattr_paths.len(),
            squashfs_seconds,
            blocks_ahead: sq.blocks_ahead,
            blocks_inline: sq.blocks_inline,
            compress_seconds,
        },
        nodes,
    })
}

/// One node image to write.
struct NodeJob<'a> {
    name: &'a String,
    boot: &'a Tree,
    file_name: String,
    /// Where to write it (a staging path).
    part: PathBuf,
}

/// What every node image is written from: the plan and the build's shared parts.
struct NodeContext<'a> {
    plan: &'a Plan,
    opts: &'a ImageOptions,
    sq_size: u64,
    sq_path: &'a std::path::Path,
    /// The system partition, the same for every node.
    p2: &'a crate::plan::Partition,
    codec: Option<Codec>,
    shared: Option<&'a compress::SharedRegion>,
    zeros: &'a compress::ZeroCache,
    spans: &'a compress::SpanCache,
}

/// The most threads that write node images at once.
pub const MAX_NODE_WORKERS: usize = 4;

/// How many threads write node images by default: one per core, at most
/// [`MAX_NODE_WORKERS`] (each may hold an xz encoder of its own, about 130 MiB).
fn node_workers() -> usize {
    std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_NODE_WORKERS)
}

/// One piece of node work. A node's file and its raw digest are separate tasks, from the
/// same bytes: the first file is slow (it compresses the board's big files, one stream
/// each, which other nodes then copy) and keeps one core busy, so the raw digests of all
/// nodes (hashing 700 MiB each, the largest per-node cost) run on the other cores
/// meanwhile, and then the other nodes' files, which only copy shared streams.
#[derive(Debug, Clone, Copy)]
enum Task {
    File(usize),
    RawDigest(usize),
}

/// The tasks in the order they are taken: the first node's file, every raw digest, the
/// other files.
fn task_order(nodes: usize) -> Vec<Task> {
    let first = (nodes > 0).then_some(Task::File(0));
    first
        .into_iter()
        .chain((0..nodes).map(Task::RawDigest))
        .chain((1..nodes).map(Task::File))
        .collect()
}

/// Write `jobs` on `workers` threads; the outputs in the jobs' order. The first error
/// (in that order) is returned; after an error no further task is started.
fn write_nodes(
    ctx: &NodeContext<'_>,
    jobs: &[NodeJob<'_>],
    workers: usize,
) -> Result<Vec<NodeOutput>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let tasks = task_order(jobs.len());
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    /// A task's result, once it ran.
    type Slot<T> = Mutex<Option<Result<T>>>;
    let files: Vec<Slot<NodeFileOut>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let digests: Vec<Slot<(Digest, f64)>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let work = || {
        while !failed.load(Ordering::Relaxed) {
            let Some(&task) = tasks.get(next.fetch_add(1, Ordering::Relaxed)) else {
                break;
            };
            let ok = match task {
                Task::File(i) => {
                    let r = write_node(ctx, &jobs[i]);
                    let ok = r.is_ok();
                    *files[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    ok
                }
                Task::RawDigest(i) => {
                    let r = raw_digest(ctx, &jobs[i]);
                    let ok = r.is_ok();
                    *digests[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
                    ok
                }
            };
            if !ok {
                failed.store(true, Ordering::Relaxed);
            }
        }
    };
    if workers <= 1 {
        work();
    } else {
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(work);
            }
        });
    }
    let mut out = Vec::with_capacity(jobs.len());
    let mut first_err = None;
    for (f, d) in files.into_iter().zip(digests) {
        let f = f.into_inner().unwrap_or_else(|e| e.into_inner());
        let d = d.into_inner().unwrap_or_else(|e| e.into_inner());
        match (f, d) {
            (Some(Ok(f)), Some(Ok(d))) => out.push(f.with_raw(d)),
            (Some(Err(e)), _) | (_, Some(Err(e))) => {
                first_err.get_or_insert(e);
            }
            _ => {}
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => {
            ensure!(out.len() == jobs.len(), "a node image was not written");
            Ok(out)
        }
    }
}

/// A node's own bytes, laid out: partition table and FAT in memory.
struct Prepared {
    layout: Layout,
    img: sparse::SparseImage,
    boot_files: usize,
    role: String,
}

/// Lay `job`'s node out and write its own bytes (partition table, FAT) into memory. Both
/// tasks of a node do this (a few milliseconds) rather than keep the result between them.
fn prepare_node(ctx: &NodeContext<'_>, job: &NodeJob<'_>) -> Result<Prepared> {
    let NodeContext { plan, opts, p2, .. } = *ctx;
    let name = job.name;
    let np = plan
        .nodes
        .iter()
        .find(|n| &n.name == name)
        .expect("checked by write_node_images");
    let layout = node_layout(plan, &opts.image, name, ctx.sq_size)?;
    let sys = layout.part(PartRole::System);
    ensure!(
        (sys.start, sys.size) == (p2.start, p2.size),
        "system partition of {name} is not where the shared stream expects it"
    );
    let mut img = sparse::SparseImage::new(layout.total_size);
    match layout.table {
        PartitionTable::Gpt => gpt::write_gpt(&mut img, &layout),
        PartitionTable::Mbr => mbr::write_mbr(&mut img, &layout),
    }
    .with_context(|| format!("writing the partition table of {name}"))?;
    let p1 = layout.part(PartRole::Boot);
    let volume_id = fat::parse_volume_id(&np.fat_volume_id)?;
    let fat_info = fat::write_fat(
        &mut img,
        p1.start,
        p1.size,
        job.boot,
        volume_id,
        opts.timestamp,
    )
    .with_context(|| format!("writing the boot partition of {name}"))?;
    if opts.fail_at == Some(FailPoint::AfterBoot) {
        bail!("stopping after the boot partition of {name} (test fail point)");
    }
    ensure!(
        !img.touched(p2.start, p2.end()),
        "the node's own bytes of {name} overlap the shared system partition"
    );
    Ok(Prepared {
        layout,
        img,
        boot_files: fat_info.files,
        role: np.role.to_string(),
    })
}

/// A node's written file, before its raw digest is joined to it.
struct NodeFileOut {
    out: NodeOutput,
    /// The raw digest, when writing the file gave it (uncompressed images).
    raw: Option<Digest>,
}

impl NodeFileOut {
    fn with_raw(mut self, (raw, seconds): (Digest, f64)) -> NodeOutput {
        if let Some(r) = self.raw {
            debug_assert_eq!(r, raw, "the raw image hashed twice alike");
        }
        self.out.raw = raw;
        self.out.seconds += seconds;
        self.out
    }
}

/// The SHA-256 of `job`'s raw image, from its own bytes and the shared system image,
/// and the seconds it took.
fn raw_digest(ctx: &NodeContext<'_>, job: &NodeJob<'_>) -> Result<(Digest, f64)> {
    let t = Instant::now();
    let mut n = prepare_node(ctx, job)?;
    let p2 = ctx.p2;
    let mut raw = compress::RawHash::default();
    raw.range(&mut n.img, (0, p2.start))?;
    match ctx.shared {
        Some(shared) => shared.hash(&mut raw)?,
        None => {
            raw.file(ctx.sq_path)?;
            raw.zeros(p2.size - ctx.sq_size);
        }
    }
    raw.range(&mut n.img, (p2.end(), n.layout.total_size))?;
    let raw = raw.finish();
    ensure!(raw.size == n.layout.total_size, "image size mismatch");
    let seconds = t.elapsed().as_secs_f64();
    tracing::debug!("{}: raw image hashed in {seconds:.3}s", job.name);
    Ok((raw, seconds))
}

/// Write one node's image file: its own bytes (tables, FAT) in memory, streamed out
/// around the shared system stream, with the file's digest.
fn write_node(ctx: &NodeContext<'_>, job: &NodeJob<'_>) -> Result<NodeFileOut> {
    let t = Instant::now();
    let name = job.name;
    let mut n = prepare_node(ctx, job)?;
    let p2 = ctx.p2;
    let p1 = n.layout.part(PartRole::Boot).clone();
    tracing::debug!(
        "{name}: table and FAT ({}) in {:.3}s",
        ByteSize(n.img.allocated()),
        t.elapsed().as_secs_f64()
    );
    let part = &job.part;
    let (download, raw) = match (ctx.codec, ctx.shared) {
        (Some(c), Some(shared)) => {
            let mut out = compress::NodeFile::create(part)?;
            let spans = shared_spans(&mut n.img, p1.start, p1.size, job.boot)?;
            compress::emit_range_with_spans(
                c,
                &mut n.img,
                (0, p2.start),
                &spans,
                ctx.zeros,
                ctx.spans,
                &mut out,
            )?;
            tracing::debug!("{name}: up to p2 after {:.3}s", t.elapsed().as_secs_f64());
            shared.emit(c, ctx.zeros, &mut out)?;
            compress::emit_range(
                c,
                &mut n.img,
                (p2.end(), n.layout.total_size),
                ctx.zeros,
                &mut out,
            )?;
            (out.finish()?, None)
        }
        _ => {
            let mut file = create_sized(part, n.layout.total_size)?;
            for (off, bytes) in n.img.extents() {
                file.seek(SeekFrom::Start(off))?;
                file.write_all(bytes)?;
            }
            file.seek(SeekFrom::Start(p2.start))?;
            std::io::copy(&mut fs_err::File::open(ctx.sq_path)?, &mut file)?;
            drop(file);
            let d = file_digest(part)?;
            (d.clone(), Some(d))
        }
    };
    let seconds = t.elapsed().as_secs_f64();
    tracing::info!(
        "{}: {} -> {} in {seconds:.1}s",
        job.file_name,
        ByteSize(n.layout.total_size),
        ByteSize(download.size)
    );
    Ok(NodeFileOut {
        out: NodeOutput {
            node: name.clone(),
            role: n.role,
            file_name: job.file_name.clone(),
            raw: download.clone(),
            download,
            layout: n.layout,
            boot_files: n.boot_files,
            seconds,
        },
        raw,
    })
}

/// Boot files at least this big are compressed once per build and shared between nodes.
pub const SHARE_MIN: u64 = MIB;

/// The image byte spans of the boot tree's big files, sorted.
fn shared_spans(
    img: &mut sparse::SparseImage,
    start: u64,
    size: u64,
    boot: &Tree,
) -> Result<Vec<(u64, u64)>> {
    let big: Vec<String> = boot
        .iter()
        .filter_map(|(p, e)| match &e.kind {
            crate::stage::Kind::File(d) if d.len().is_ok_and(|n| n >= SHARE_MIN) => {
                Some(format!("/{p}"))
            }
            _ => None,
        })
        .collect();
    if big.is_empty() {
        return Ok(Vec::new());
    }
    let mut spans: Vec<(u64, u64)> = fat::file_runs(img, start, size, &big)?
        .into_iter()
        .map(|(_, off, len)| (off, len))
        .collect();
    spans.sort_unstable();
    Ok(spans)
}

/// A new sparse file of exactly `len` bytes, open for reading and writing.
fn create_sized(path: &std::path::Path, len: u64) -> Result<File> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.set_len(len)
        .with_context(|| format!("sizing {}", path.display()))?;
    Ok(f)
}

/// Size and SHA-256 of a file.
pub fn file_digest(path: &std::path::Path) -> Result<Digest> {
    let mut f = fs_err::File::open(path)?;
    let mut h = compress::RawHash::default();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finish())
}

fn file_sha256(path: &std::path::Path) -> Result<String> {
    Ok(file_digest(path)?.sha256)
}
