//! Squashfs data blocks compressed ahead of the writer, on every core.
//!
//! backhand's writer compresses one block after the other on one thread; compressing the
//! system image is most of a build. Every file of at least one block is stored as blocks
//! of `block_size` (the last one short), and smaller files are packed into fragment blocks
//! in the writer's order; each block is compressed on its own, so they can be compressed
//! before the writer asks for them: [`precompress`] does that on all cores and keeps the
//! results by content; the writer's [`CompressionAction`] ([`Ahead`]) takes a block's
//! result from there and compresses the rest itself (metadata, anything predicted
//! wrongly). The bytes written are exactly those of the plain writer.
//!
//! backhand wants the action as a `&'static`, so each build leaks one small [`Ahead`]
//! (its table is emptied when the build is done).

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};
use backhand::compression::{CompressionAction, Compressor, DefaultCompressor};
use backhand::{BackhandError, FilesystemCompressor, SuperBlock};
use sha2::{Digest as _, Sha256};

use crate::stage::{Data, Kind, Tree};

type Key = [u8; 32];

/// Compressed blocks by the SHA-256 of their input, with how many are still expected.
#[derive(Debug, Default)]
pub struct Ahead {
    blocks: Mutex<HashMap<Key, (Vec<u8>, usize)>>,
    /// Blocks the writer took from the table / compressed itself.
    hits: AtomicUsize,
    misses: AtomicUsize,
}

impl Ahead {
    /// A new table for one build (see the module comment on `'static`).
    pub fn leak() -> &'static Ahead {
        Box::leak(Box::default())
    }
    /// Empty the table; returns (blocks taken from it, blocks compressed by the writer).
    pub fn finish(&self) -> (usize, usize) {
        self.blocks.lock().expect("ahead table").clear();
        (
            self.hits.load(Ordering::Relaxed),
            self.misses.load(Ordering::Relaxed),
        )
    }
}

impl CompressionAction for Ahead {
    type Error = BackhandError;
    type Compressor = Compressor;
    type FilesystemCompressor = FilesystemCompressor;
    type SuperBlock = SuperBlock;

    fn decompress(
        &self,
        bytes: &[u8],
        out: &mut Vec<u8>,
        compressor: Compressor,
    ) -> Result<(), BackhandError> {
        DefaultCompressor.decompress(bytes, out, compressor)
    }

    fn compress(
        &self,
        bytes: &[u8],
        fc: FilesystemCompressor,
        block_size: u32,
    ) -> Result<Vec<u8>, BackhandError> {
        let key: Key = Sha256::digest(bytes).into();
        let mut t = self.blocks.lock().expect("ahead table");
        if let Some((out, left)) = t.get_mut(&key) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            *left -= 1;
            return Ok(if *left == 0 {
                t.remove(&key).expect("present").0
            } else {
                out.clone()
            });
        }
        drop(t);
        self.misses.fetch_add(1, Ordering::Relaxed);
        DefaultCompressor.compress(bytes, fc, block_size)
    }

    fn compression_options(
        &self,
        superblock: &mut SuperBlock,
        kind: &backhand::kind::Kind,
        fs_compressor: FilesystemCompressor,
    ) -> Result<Option<Vec<u8>>, BackhandError> {
        DefaultCompressor.compression_options(superblock, kind, fs_compressor)
    }
}

/// One block the writer will ask for: a run of a big file, or a fragment block.
enum Job<'a> {
    /// Every block of this file (files of at least one block).
    File(&'a str, &'a Data),
    /// Small files packed into one fragment block as the writer packs them.
    Bytes(Vec<u8>),
}

/// Compress, on `threads` threads into `ahead`, the blocks the writer of `tree` will ask
/// for: the data blocks of every file that fills at least one block, and the fragment
/// blocks, packed the way backhand packs the small files (in its node order: paths
/// compared by components; a fragment block is closed when the next file would overflow
/// it). A block predicted wrongly is only compressed twice, never written wrongly.
pub fn precompress(
    tree: &Tree,
    fc: FilesystemCompressor,
    block_size: u32,
    threads: usize,
    ahead: &Ahead,
) -> Result<()> {
    let bs = u64::from(block_size);
    let mut files: Vec<(&str, &Data, u64)> = tree
        .iter()
        .filter_map(|(p, e)| match &e.kind {
            Kind::File(d) => Some((p, d)),
            Kind::Hardlink(target) => match tree.get(target).map(|t| &t.kind) {
                Some(Kind::File(d)) => Some((p, d)),
                _ => None,
            },
            _ => None,
        })
        .map(|(p, d)| Ok((p, d, d.len().with_context(|| format!("size of {p}"))?)))
        .collect::<Result<_>>()?;
    files.sort_by(|a, b| std::path::Path::new(a.0).cmp(std::path::Path::new(b.0)));
    let (tx, rx) = std::sync::mpsc::sync_channel::<Job<'_>>(4 * threads.max(1));
    let rx = Mutex::new(rx);
    let work = || -> Result<()> {
        let mut buf = vec![0u8; block_size as usize];
        let mut done: Vec<(Key, Vec<u8>)> = Vec::new();
        let one = |block: &[u8], what: &str, done: &mut Vec<(Key, Vec<u8>)>| -> Result<()> {
            // The writer stores blocks of zeros as holes, without compressing them.
            if block.iter().any(|&b| b != 0) {
                let out = DefaultCompressor
                    .compress(block, fc, block_size)
                    .with_context(|| format!("compressing {what}"))?;
                let mut out = out;
                out.shrink_to_fit(); // zstd's output buffer has the worst-case capacity
                done.push((Sha256::digest(block).into(), out));
            }
            Ok(())
        };
        loop {
            let job = rx.lock().expect("job queue").recv();
            let Ok(job) = job else {
                break;
            };
            match job {
                Job::File(path, data) => {
                    let mut r: Box<dyn Read> = match data {
                        Data::Path(p) => Box::new(fs_err::File::open(p)?),
                        Data::Bytes(b) => Box::new(&b[..]),
                    };
                    loop {
                        let n = crate::io::read_full(&mut *r, &mut buf)
                            .with_context(|| format!("reading {path}"))?;
                        if n == 0 {
                            break;
                        }
                        one(&buf[..n], path, &mut done)?;
                        if n < buf.len() {
                            break;
                        }
                    }
                }
                Job::Bytes(b) => one(&b, "a fragment block", &mut done)?,
            }
            if done.len() >= 64 {
                merge(ahead, &mut done);
            }
        }
        merge(ahead, &mut done);
        Ok(())
    };
    std::thread::scope(|s| -> Result<()> {
        let handles: Vec<_> = (0..threads.max(1)).map(|_| s.spawn(work)).collect();
        let fed = (|| -> Result<()> {
            let mut frag: Vec<u8> = Vec::with_capacity(block_size as usize);
            for &(path, data, len) in &files {
                if len == 0 {
                    continue;
                }
                if len >= bs {
                    if tx.send(Job::File(path, data)).is_err() {
                        break;
                    }
                    continue;
                }
                if frag.len() as u64 + len > bs {
                    let full =
                        std::mem::replace(&mut frag, Vec::with_capacity(block_size as usize));
                    if tx.send(Job::Bytes(full)).is_err() {
                        break;
                    }
                }
                frag.extend_from_slice(&data.read().with_context(|| format!("reading {path}"))?);
            }
            if !frag.is_empty() {
                let _ = tx.send(Job::Bytes(frag));
            }
            Ok(())
        })();
        drop(tx);
        let joined = handles
            .into_iter()
            .map(|h| h.join().expect("a compression thread panicked"))
            .collect::<Result<Vec<()>>>();
        fed.and(joined.map(|_| ()))
    })?;
    Ok(())
}

fn merge(ahead: &Ahead, done: &mut Vec<(Key, Vec<u8>)>) {
    let mut t = ahead.blocks.lock().expect("ahead table");
    for (k, out) in done.drain(..) {
        t.entry(k).or_insert((out, 0)).1 += 1;
    }
}
