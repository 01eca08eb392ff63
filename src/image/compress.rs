//! Compressed image streams, shared regions and the digests computed on the way.
//!
//! A node image is written as a sequence of independent streams (xz streams or zstd
//! frames), which every decoder (xz, zstd, libarchive as used by Raspberry Pi Imager)
//! reads as one concatenated output. That lets work be shared between nodes:
//! - the system partition (p2) is compressed once per build and its stream copied into
//!   every node's file;
//! - runs of zeros (the free tail of the FAT, the data placeholder) come from a cache of
//!   compressed zero streams of power-of-two lengths;
//! - only the node's own bytes (partition table, FAT contents, backup GPT) are compressed
//!   per node.
//!
//! The written file's SHA-256 is computed while it is written ([`NodeFile`]); the raw
//! image's ([`RawHash`]) from the same sources, separately, so that it can run on another
//! core at another time (see `write_nodes` in the parent module).

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use sha2::{Digest as _, Sha256};

use super::sparse::SparseImage;
use crate::profile::types::MIB;

/// Size and SHA-256 of a byte stream.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Digest {
    pub size: u64,
    pub sha256: String,
}

/// An output of compressed streams that can also take a whole file of them.
pub trait Append: Write {
    /// Append the bytes of the file at `path`.
    fn append_file(&mut self, path: &Path) -> io::Result<u64> {
        io::copy(&mut fs_err::File::open(path)?, self)
    }
}

impl Append for Vec<u8> {}

/// A node's compressed image file: hashed as it is written (the download digest) and
/// written past the page cache (`O_DIRECT`) in whole aligned blocks, by a thread of its
/// own while the next block fills, the way `dd oflag=direct` and Raspberry Pi Imager
/// write images. The build never reads these files again, and copying 200 MB per node
/// into fresh page-cache pages cost more CPU than anything else a node needs (measured on
/// this project's machines: 0.45 s of kernel time per 180 MiB buffered, 0.03 s direct).
/// Where the file system refuses `O_DIRECT` (tmpfs before Linux 6.6, some FUSE) or its
/// alignment, the file is written through the page cache.
#[derive(Debug)]
pub struct NodeFile {
    buf: AlignedBuf,
    /// Bytes in `buf` not yet sent to the writer.
    len: usize,
    /// Buffers to fill next (the writer gives each back once written).
    spare: Vec<AlignedBuf>,
    hasher: Sha256,
    count: u64,
    tx: Option<std::sync::mpsc::SyncSender<ToWriter>>,
    back: std::sync::mpsc::Receiver<AlignedBuf>,
    writer: Option<std::thread::JoinHandle<io::Result<File>>>,
}

/// What the writer thread is asked to do.
#[derive(Debug)]
enum ToWriter {
    /// Write the buffer's first `n` bytes at the end of the file.
    Write(AlignedBuf, usize),
    /// Go on through the page cache (what an alignment refusal causes, for tests).
    #[cfg(test)]
    Buffered,
}

/// The alignment `O_DIRECT` needs of buffers, offsets and lengths (the largest logical
/// block size of common devices).
const DIRECT_ALIGN: usize = 4096;

/// Blocks in flight per node file: one filling, the others being written.
const NODE_FILE_BUFFERS: usize = 3;

/// A [`CHUNK`]-sized buffer starting at a [`DIRECT_ALIGN`] boundary (where the allocator
/// allows; a buffer that is not aligned only means buffered writes).
#[derive(Debug)]
struct AlignedBuf {
    raw: Vec<u8>,
    off: usize,
}

impl AlignedBuf {
    fn new() -> Self {
        let raw = vec![0u8; CHUNK + DIRECT_ALIGN];
        let off = raw.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
        Self { raw, off }
    }
    fn get(&mut self) -> &mut [u8] {
        &mut self.raw[self.off..self.off + CHUNK]
    }
    fn aligned(&self) -> bool {
        self.off < DIRECT_ALIGN
    }
}

/// The writer thread: blocks to the end of `file`, direct while the file system takes them.
fn node_file_writer(
    path: &Path,
    mut file: File,
    mut direct: bool,
    rx: &std::sync::mpsc::Receiver<ToWriter>,
    back: &std::sync::mpsc::SyncSender<AlignedBuf>,
) -> io::Result<File> {
    let mut written = 0u64;
    let buffered = |file: &mut File, written: u64| -> io::Result<()> {
        let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
        f.seek(SeekFrom::Start(written))?;
        *file = f;
        Ok(())
    };
    for msg in rx {
        match msg {
            #[cfg(test)]
            ToWriter::Buffered => {
                buffered(&mut file, written)?;
                direct = false;
            }
            ToWriter::Write(mut buf, n) => {
                if direct && !buf.aligned() {
                    buffered(&mut file, written)?;
                    direct = false;
                }
                match file.write_all(&buf.get()[..n]) {
                    Err(e) if direct && e.raw_os_error() == Some(libc::EINVAL) => {
                        // The file system took the flag but not the alignment.
                        buffered(&mut file, written)?;
                        direct = false;
                        file.write_all(&buf.get()[..n])?;
                    }
                    r => r?,
                }
                written += n as u64;
                // The other side may be gone (finished or failed): nothing to give back.
                let _ = back.send(buf);
            }
        }
    }
    Ok(file)
}

impl NodeFile {
    pub fn create(path: &Path) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let open = |flags| {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .custom_flags(flags)
                .open(path)
                .map_err(|e| io::Error::new(e.kind(), format!("creating {}: {e}", path.display())))
        };
        let (file, direct) = match open(libc::O_DIRECT) {
            Ok(f) => (f, true),
            Err(_) => (open(0)?, false),
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(NODE_FILE_BUFFERS);
        let (back_tx, back) = std::sync::mpsc::sync_channel(NODE_FILE_BUFFERS);
        let owned = path.to_owned();
        let writer =
            std::thread::spawn(move || node_file_writer(&owned, file, direct, &rx, &back_tx));
        Ok(Self {
            buf: AlignedBuf::new(),
            len: 0,
            spare: (1..NODE_FILE_BUFFERS).map(|_| AlignedBuf::new()).collect(),
            hasher: Sha256::new(),
            count: 0,
            tx: Some(tx),
            back,
            writer: Some(writer),
        })
    }

    /// The writer's error, once it stopped early.
    fn writer_error(&mut self) -> io::Error {
        self.tx = None;
        match self.writer.take().map(|h| h.join()) {
            Some(Ok(Err(e))) => e,
            Some(Err(_)) => io::Error::other("the node file's writer panicked"),
            _ => io::Error::other("the node file's writer stopped"),
        }
    }

    /// Hand `n` bytes of the current buffer to the writer and take an empty one.
    fn send(&mut self, n: usize) -> io::Result<()> {
        let next = match self.spare.pop() {
            Some(b) => b,
            None => match self.back.recv() {
                Ok(b) => b,
                Err(_) => return Err(self.writer_error()),
            },
        };
        let full = std::mem::replace(&mut self.buf, next);
        let sent = self
            .tx
            .as_ref()
            .is_some_and(|tx| tx.send(ToWriter::Write(full, n)).is_ok());
        if !sent {
            return Err(self.writer_error());
        }
        self.len = 0;
        Ok(())
    }

    /// Write the rest through the page cache.
    #[cfg(test)]
    fn set_buffered(&mut self) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(ToWriter::Buffered);
        }
    }

    /// Take bytes from `fill` into the buffer until it returns 0, sending full buffers.
    fn fill_from(
        &mut self,
        mut fill: impl FnMut(&mut [u8]) -> io::Result<usize>,
    ) -> io::Result<u64> {
        let mut total = 0u64;
        loop {
            let len = self.len;
            let n = fill(&mut self.buf.get()[len..])?;
            if n == 0 {
                return Ok(total);
            }
            self.hasher.update(&self.buf.get()[len..len + n]);
            self.len += n;
            self.count += n as u64;
            total += n as u64;
            if self.len == CHUNK {
                self.send(CHUNK)?;
            }
        }
    }

    /// Write what is left and give the file's size and SHA-256.
    pub fn finish(mut self) -> io::Result<Digest> {
        if self.len > 0 {
            // A last whole block, zero-padded, then cut back to the true length.
            let len = self.len;
            let n = len.next_multiple_of(DIRECT_ALIGN);
            self.buf.get()[len..n].fill(0);
            self.send(n)?;
        }
        self.tx = None;
        let file = match self.writer.take().map(|h| h.join()) {
            Some(Ok(r)) => r?,
            _ => return Err(io::Error::other("the node file's writer panicked")),
        };
        file.set_len(self.count)?;
        Ok(Digest {
            size: self.count,
            sha256: hex::encode(std::mem::take(&mut self.hasher).finalize()),
        })
    }
}

impl Drop for NodeFile {
    fn drop(&mut self) {
        // Unfinished (an error on the way): stop the writer and wait for it.
        self.tx = None;
        if let Some(h) = self.writer.take() {
            let _ = h.join();
        }
    }
}

impl Write for NodeFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut rest = buf;
        self.fill_from(|b| {
            let n = rest.len().min(b.len());
            b[..n].copy_from_slice(&rest[..n]);
            rest = &rest[n..];
            Ok(n)
        })
        .map(|n| n as usize)
    }
    /// Full blocks are written as they fill; the last one by [`NodeFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Append for NodeFile {
    fn append_file(&mut self, path: &Path) -> io::Result<u64> {
        let mut src = fs_err::File::open(path)?;
        self.fill_from(|b| src.read(b))
    }
}

/// A stream compressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    /// xz, multithreaded liblzma (block mode, so the bytes do not depend on the thread count).
    Xz { preset: u32, threads: u32 },
    /// zstd frames.
    Zstd { level: i32 },
}

impl Codec {
    pub fn xz_default() -> Self {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1)
            .min(8);
        Codec::Xz { preset: 6, threads }
    }
}

/// A running SHA-256 over an uncompressed image (the raw digest Imager checks,
/// `extract_sha256`), fed with bytes, runs of zeros and whole files.
#[derive(Debug, Default)]
pub struct RawHash {
    hasher: Sha256,
    count: u64,
}

impl RawHash {
    pub fn update(&mut self, b: &[u8]) {
        self.hasher.update(b);
        self.count += b.len() as u64;
    }
    pub fn zeros(&mut self, mut n: u64) {
        while n > 0 {
            let k = n.min(ZEROS.len() as u64) as usize;
            self.update(&ZEROS[..k]);
            n -= k as u64;
        }
    }
    /// The whole content of a file.
    pub fn file(&mut self, path: &Path) -> io::Result<()> {
        let mut f = fs_err::File::open(path)?;
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                return Ok(());
            }
            self.update(&buf[..n]);
        }
    }
    /// `[start, end)` of `src`, its known holes hashed as zeros without reading them.
    pub fn range(&mut self, src: &mut dyn Source, (start, end): (u64, u64)) -> io::Result<()> {
        let mut buf = vec![0u8; CHUNK];
        let mut pos = start;
        while pos < end {
            let n = ((end - pos) as usize).min(CHUNK);
            if src.window(pos, &mut buf[..n])? {
                self.update(&buf[..n]);
            } else {
                self.zeros(n as u64);
            }
            pos += n as u64;
        }
        Ok(())
    }
    pub fn finish(self) -> Digest {
        Digest {
            size: self.count,
            sha256: hex::encode(self.hasher.finalize()),
        }
    }
}

pub(crate) static ZEROS: [u8; 1 << 20] = [0; 1 << 20];
const CHUNK: usize = 1 << 20;
/// Zero runs at least this long are emitted from the zero cache instead of compressed inline.
const ZERO_RUN_MIN: u64 = 2 * MIB;
/// The largest cached zero stream.
pub const ZERO_PIECE_MAX: u64 = 64 * MIB;

/// One open compressed stream.
enum Enc<W: Write> {
    Xz(liblzma::write::XzEncoder<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Enc<W> {
    fn new(codec: Codec, w: W) -> io::Result<Self> {
        Ok(match codec {
            Codec::Xz { preset, threads } => {
                let stream = liblzma::stream::MtStreamBuilder::new()
                    .threads(threads.max(1))
                    .preset(preset)
                    .block_size(0)
                    .check(liblzma::stream::Check::Crc64)
                    .encoder()
                    .map_err(io::Error::other)?;
                Enc::Xz(liblzma::write::XzEncoder::new_stream(w, stream))
            }
            Codec::Zstd { level } => {
                let mut e = zstd::stream::write::Encoder::new(w, level)?;
                e.include_checksum(true)?;
                Enc::Zstd(e)
            }
        })
    }
    fn write_all(&mut self, b: &[u8]) -> io::Result<()> {
        match self {
            Enc::Xz(e) => e.write_all(b),
            Enc::Zstd(e) => e.write_all(b),
        }
    }
    fn finish(self) -> io::Result<W> {
        match self {
            Enc::Xz(e) => e.finish(),
            Enc::Zstd(e) => e.finish(),
        }
    }
}

/// Compress everything `r` yields into one complete stream appended to `w`.
pub fn compress_stream(codec: Codec, r: &mut dyn Read, w: &mut dyn Write) -> Result<u64> {
    let mut enc = Enc::new(codec, w)?;
    let mut buf = vec![0u8; CHUNK];
    let mut total = 0;
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        enc.write_all(&buf[..n])?;
        total += n as u64;
    }
    enc.finish()?;
    Ok(total)
}

/// Compressed streams of zeros, by length, built once per build and shared by the
/// threads that write nodes (a missing piece is compressed under the lock, once).
#[derive(Debug, Default)]
pub struct ZeroCache {
    pieces: Mutex<HashMap<u64, Arc<Vec<u8>>>>,
}

impl ZeroCache {
    /// Append streams that decode to `len` zero bytes: whole [`ZERO_PIECE_MAX`] pieces,
    /// then power-of-two MiB pieces, then the sub-MiB rest. At most ~2x ZERO_PIECE_MAX of
    /// zeros is ever compressed per build.
    pub fn emit(&self, codec: Codec, len: u64, w: &mut dyn Write) -> Result<()> {
        let big = len / ZERO_PIECE_MAX;
        if big > 0 {
            let piece = self.piece(codec, ZERO_PIECE_MAX)?;
            for _ in 0..big {
                w.write_all(&piece)?;
            }
        }
        let len = len % ZERO_PIECE_MAX;
        let mibs = len / MIB;
        let rest = len % MIB;
        for bit in (0..64).rev() {
            if mibs & (1 << bit) != 0 {
                w.write_all(&self.piece(codec, (1u64 << bit) * MIB)?)?;
            }
        }
        if rest > 0 {
            w.write_all(&self.piece(codec, rest)?)?;
        }
        Ok(())
    }

    fn piece(&self, codec: Codec, len: u64) -> Result<Arc<Vec<u8>>> {
        let mut pieces = self.pieces.lock().unwrap_or_else(PoisonError::into_inner);
        if let std::collections::hash_map::Entry::Vacant(v) = pieces.entry(len) {
            // Zeros shrink to almost nothing at any level; the fastest xz preset costs a
            // third of preset 6 for a few more bytes (131 KB instead of 81 KB per 512 MiB).
            let codec = match codec {
                Codec::Xz { threads, .. } => Codec::Xz { preset: 0, threads },
                c => c,
            };
            let mut out = Vec::new();
            compress_stream(codec, &mut io::repeat(0).take(len), &mut out)?;
            v.insert(Arc::new(out));
        }
        Ok(Arc::clone(&pieces[&len]))
    }

    /// How many distinct zero streams were compressed.
    pub fn compressed(&self) -> usize {
        self.pieces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }
}

/// The system partition's compressed form, shared by all nodes.
#[derive(Debug)]
pub struct SharedRegion {
    /// The uncompressed non-zero part (the squashfs file).
    pub source: std::path::PathBuf,
    pub source_len: u64,
    /// Its compressed stream.
    pub stream: std::path::PathBuf,
    /// Zero bytes after the source up to the end of the region.
    pub padding: u64,
}

impl SharedRegion {
    /// Compress `source` once into `stream`.
    pub fn build(
        codec: Codec,
        source: &Path,
        stream: &Path,
        region_len: u64,
    ) -> Result<SharedRegion> {
        let mut r = io::BufReader::with_capacity(CHUNK, fs_err::File::open(source)?);
        let mut w = io::BufWriter::with_capacity(CHUNK, fs_err::File::create(stream)?);
        // The squashfs is compressed already: xz stores it (see [`super::xzstored`]);
        // zstd detects incompressible blocks by itself and stays fast.
        let source_len = match codec {
            Codec::Xz { .. } => super::xzstored::write_stored(&mut r, &mut w).map(|(n, _)| n),
            Codec::Zstd { .. } => compress_stream(codec, &mut r, &mut w)
                .map_err(|e| io::Error::other(format!("{e:#}"))),
        }
        .with_context(|| format!("compressing {}", source.display()))?;
        w.flush()?;
        anyhow::ensure!(
            source_len <= region_len,
            "system image of {source_len} bytes does not fit its partition of {region_len} bytes"
        );
        Ok(SharedRegion {
            source: source.to_owned(),
            source_len,
            stream: stream.to_owned(),
            padding: region_len - source_len,
        })
    }

    /// Append the shared stream to `w`.
    pub fn emit(&self, codec: Codec, zeros: &ZeroCache, w: &mut dyn Append) -> Result<()> {
        w.append_file(&self.stream)?;
        zeros.emit(codec, self.padding, w)?;
        Ok(())
    }
    /// Hash the region's raw bytes (the squashfs and its zero padding) into `raw`.
    pub fn hash(&self, raw: &mut RawHash) -> io::Result<()> {
        raw.file(&self.source)?;
        raw.zeros(self.padding);
        Ok(())
    }
}

/// An output that is either between streams or inside an open one.
struct Sink<'a> {
    codec: Codec,
    out: Option<&'a mut dyn Write>,
    enc: Option<Enc<&'a mut dyn Write>>,
}

impl<'a> Sink<'a> {
    fn new(codec: Codec, w: &'a mut dyn Write) -> Self {
        Self {
            codec,
            out: Some(w),
            enc: None,
        }
    }
    /// Bytes into the current stream (opened on demand).
    fn data(&mut self, b: &[u8]) -> io::Result<()> {
        if self.enc.is_none() {
            let w = self.out.take().expect("sink holds its writer");
            self.enc = Some(Enc::new(self.codec, w)?);
        }
        self.enc.as_mut().expect("just opened").write_all(b)
    }
    fn zeros_inline(&mut self, mut n: u64) -> io::Result<()> {
        while n > 0 {
            let k = n.min(CHUNK as u64) as usize;
            self.data(&ZEROS[..k])?;
            n -= k as u64;
        }
        Ok(())
    }
    /// Finish the open stream, if any.
    fn close(&mut self) -> io::Result<()> {
        if let Some(e) = self.enc.take() {
            self.out = Some(e.finish()?);
        }
        Ok(())
    }
    /// The underlying writer, between streams.
    fn between(&mut self) -> io::Result<&mut dyn Write> {
        self.close()?;
        Ok(&mut **self.out.as_mut().expect("sink holds its writer"))
    }
}

/// Where a node's own bytes are read from: its raw image file, or the in-memory
/// [`SparseImage`] it was written into, which knows its holes without reading them.
pub trait Source {
    /// Fill `buf` with the bytes at `off` and return true, or return false (leaving `buf`
    /// as it is) when they are known to be zeros.
    fn window(&mut self, off: u64, buf: &mut [u8]) -> io::Result<bool>;
}

impl Source for File {
    fn window(&mut self, off: u64, buf: &mut [u8]) -> io::Result<bool> {
        self.seek(SeekFrom::Start(off))?;
        self.read_exact(buf)?;
        Ok(true)
    }
}

impl Source for SparseImage {
    fn window(&mut self, off: u64, buf: &mut [u8]) -> io::Result<bool> {
        if !self.touched(off, off + buf.len() as u64) {
            return Ok(false);
        }
        self.read_at(off, buf);
        Ok(true)
    }
}

/// Compress `[start, end)` of a node's raw image as node-specific streams, taking zero
/// runs of at least [`ZERO_RUN_MIN`] from the cache.
pub fn emit_range(
    codec: Codec,
    src: &mut dyn Source,
    (start, end): (u64, u64),
    zeros: &ZeroCache,
    w: &mut dyn Append,
) -> Result<()> {
    let mut buf = vec![0u8; CHUNK];
    let mut pos = start;
    let mut sink = Sink::new(codec, w);
    let mut pending = 0u64;
    let flush_zeros = |sink: &mut Sink<'_>, zeros: &ZeroCache, pending: u64| -> Result<()> {
        if pending >= ZERO_RUN_MIN {
            zeros.emit(codec, pending, sink.between()?)?;
        } else if pending > 0 {
            sink.zeros_inline(pending)?;
        }
        Ok(())
    };
    while pos < end {
        let n = ((end - pos) as usize).min(CHUNK);
        let read = src.window(pos, &mut buf[..n])?;
        pos += n as u64;
        if !read {
            pending += n as u64;
            continue;
        }
        let chunk = &buf[..n];
        if chunk == &ZEROS[..n] {
            pending += n as u64;
            continue;
        }
        flush_zeros(&mut sink, zeros, pending)?;
        pending = 0;
        sink.data(chunk)?;
    }
    flush_zeros(&mut sink, zeros, pending)?;
    sink.close()?;
    Ok(())
}

/// Compressed streams of byte spans that recur between nodes (the board's kernel,
/// initramfs and firmware on partition 1), by content, kept as files in a work directory.
/// Shared by the threads that write nodes: a span missing from the cache is compressed
/// under the lock, so each distinct span is compressed once per build whatever the order.
#[derive(Debug)]
pub struct SpanCache {
    dir: std::path::PathBuf,
    streams: Mutex<HashMap<(String, u64), std::path::PathBuf>>,
    reused: AtomicU64,
    compressed: AtomicUsize,
}

impl SpanCache {
    pub fn new(dir: &Path) -> Result<Self> {
        fs_err::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            streams: Mutex::new(HashMap::new()),
            reused: AtomicU64::new(0),
            compressed: AtomicUsize::new(0),
        })
    }
    /// Bytes taken from the cache instead of compressed again.
    pub fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }
    /// Spans compressed (each distinct one once per build).
    pub fn compressed(&self) -> usize {
        self.compressed.load(Ordering::Relaxed)
    }
    /// The stream file of `bytes`, compressed now if no node has needed it before.
    fn stream(&self, codec: Codec, bytes: &[u8]) -> Result<std::path::PathBuf> {
        let key = (hex::encode(Sha256::digest(bytes)), bytes.len() as u64);
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(p) = streams.get(&key) {
            self.reused.fetch_add(key.1, Ordering::Relaxed);
            return Ok(p.clone());
        }
        let p = self.dir.join(format!("span-{}", streams.len()));
        let mut out = io::BufWriter::new(fs_err::File::create(&p)?);
        compress_stream(codec, &mut &bytes[..], &mut out)?;
        out.flush()?;
        drop(out);
        streams.insert(key, p.clone());
        self.compressed.fetch_add(1, Ordering::Relaxed);
        Ok(p)
    }
}

/// Like [`emit_range`], but the byte spans `spans` (sorted, disjoint, inside the range)
/// come from the span cache: each is compressed once per build and copied afterwards.
#[allow(clippy::too_many_arguments)]
pub fn emit_range_with_spans(
    codec: Codec,
    src: &mut dyn Source,
    (start, end): (u64, u64),
    spans: &[(u64, u64)],
    zeros: &ZeroCache,
    cache: &SpanCache,
    w: &mut dyn Append,
) -> Result<()> {
    let mut pos = start;
    for &(s, len) in spans {
        anyhow::ensure!(
            s >= pos && s + len <= end,
            "span {s}+{len} outside {pos}..{end}"
        );
        if s > pos {
            emit_range(codec, src, (pos, s), zeros, w)?;
        }
        // The span's bytes: its key and, the first time, the input of its stream.
        let mut bytes = vec![0u8; len as usize];
        if !src.window(s, &mut bytes)? {
            bytes.fill(0);
        }
        let stream = cache.stream(codec, &bytes)?;
        w.append_file(&stream)?;
        pos = s + len;
    }
    if end > pos {
        emit_range(codec, src, (pos, end), zeros, w)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_xz(b: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        liblzma::read::XzDecoder::new_multi_decoder(b)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// A node file holds exactly what was written and appended, and its digest is that of
    /// those bytes: with `O_DIRECT` throughout or switched to the page cache halfway, on
    /// disk and on tmpfs, for lengths that are not multiples of the alignment.
    #[test]
    fn node_files_hold_what_was_written_direct_or_not() {
        let disk = tempfile::tempdir().unwrap();
        let shm = std::path::Path::new("/dev/shm");
        let mut dirs = vec![disk.path().to_owned()];
        let tmpfs = shm.is_dir().then(|| tempfile::tempdir_in(shm).unwrap());
        dirs.extend(tmpfs.as_ref().map(|t| t.path().to_owned()));
        let mut s: u64 = 1;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                    (s >> 56) as u8
                })
                .collect()
        };
        let stream = noise(3 * CHUNK + 1234);
        for dir in dirs {
            let sp = dir.join("stream");
            fs_err::write(&sp, &stream).unwrap();
            for head in [0, 1, 4095, 4096, CHUNK - 1, CHUNK + 17] {
                let p = dir.join("node");
                let a = noise(head);
                let b = noise(777);
                let mut f = NodeFile::create(&p).unwrap();
                f.write_all(&a).unwrap();
                assert_eq!(f.append_file(&sp).unwrap(), stream.len() as u64);
                if head % 2 == 1 {
                    // What a file system that takes the flag but not the alignment
                    // causes: the rest is written through the page cache.
                    f.set_buffered();
                }
                f.write_all(&b).unwrap();
                let d = f.finish().unwrap();
                let want = [&a[..], &stream, &b].concat();
                let got = fs_err::read(&p).unwrap();
                assert_eq!(got.len(), want.len(), "{} head {head}", dir.display());
                assert!(got == want, "{} head {head}: bytes differ", dir.display());
                assert_eq!(d.size, want.len() as u64);
                assert_eq!(d.sha256, hex::encode(Sha256::digest(&want)));
            }
        }
    }

    #[test]
    fn ranges_with_zero_runs_decode_to_the_original() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("img");
        let mut data = vec![0u8; 9 * MIB as usize];
        data[10] = 1; // chunk 0: data
        data[MIB as usize + 5] = 2; // chunk 1: data; chunks 2..=5 zero (a run of 4 MiB)
        data[6 * MIB as usize] = 3; // chunk 6: data; chunk 7 zero (short run, inline)
        data[8 * MIB as usize + 7] = 4; // chunk 8: data
        fs_err::write(&p, &data).unwrap();
        let codec = Codec::Xz {
            preset: 0,
            threads: 2,
        };
        let zeros = ZeroCache::default();
        let mut out = Vec::new();
        let mut f = File::open(&p).unwrap();
        emit_range(codec, &mut f, (0, data.len() as u64), &zeros, &mut out).unwrap();
        assert_eq!(decode_xz(&out), data);
        let mut raw = RawHash::default();
        raw.range(&mut f, (0, 3 * MIB)).unwrap();
        raw.range(&mut f, (3 * MIB, data.len() as u64)).unwrap();
        let d = raw.finish();
        assert_eq!(d.size, data.len() as u64);
        assert_eq!(d.sha256, hex::encode(Sha256::digest(&data)));
        assert_eq!(zeros.compressed(), 1, "one 4 MiB zero piece");
        // zstd frames concatenate the same way.
        let mut out = Vec::new();
        let codec = Codec::Zstd { level: 3 };
        emit_range(
            codec,
            &mut f,
            (0, data.len() as u64),
            &ZeroCache::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), data);
    }
}
