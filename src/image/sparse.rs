//! A disk image held in memory as the chunks written to it: `Read + Write + Seek` over a
//! fixed length, zeros wherever nothing was written.
//!
//! A node's own bytes (partition table, FAT metadata and files, backup GPT) are a few
//! dozen MiB of an image of several hundred: written here, they never touch the disk, and
//! the compressor learns for free which windows hold nothing but zeros (see
//! [`super::compress::Source`]). The shared system partition is never written into it.

use std::collections::BTreeMap;
use std::io::{self, Read, Seek, SeekFrom, Write};

/// Granularity of allocation: a write allocates the 64 KiB chunks it touches.
pub const CHUNK: u64 = 64 * 1024;

/// An image of `len` bytes, stored as written chunks.
#[derive(Debug, Clone)]
pub struct SparseImage {
    len: u64,
    pos: u64,
    chunks: BTreeMap<u64, Box<[u8]>>,
}

impl SparseImage {
    pub fn new(len: u64) -> Self {
        Self {
            len,
            pos: 0,
            chunks: BTreeMap::new(),
        }
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// Bytes held in memory.
    pub fn allocated(&self) -> u64 {
        self.chunks.len() as u64 * CHUNK
    }
    /// Whether anything was written in `[start, end)`.
    pub fn touched(&self, start: u64, end: u64) -> bool {
        if start >= end {
            return false;
        }
        self.chunks
            .range(start / CHUNK..=(end - 1) / CHUNK)
            .next()
            .is_some()
    }
    /// Copy `[off, off + buf.len())` into `buf` (zeros where nothing was written).
    pub fn read_at(&self, off: u64, buf: &mut [u8]) {
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            let (idx, within) = (at / CHUNK, (at % CHUNK) as usize);
            let n = (buf.len() - done).min(CHUNK as usize - within);
            match self.chunks.get(&idx) {
                Some(c) => buf[done..done + n].copy_from_slice(&c[within..within + n]),
                None => buf[done..done + n].fill(0),
            }
            done += n;
        }
    }
    /// The written chunks in order: (image offset, bytes), clipped to the image length.
    pub fn extents(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.chunks.iter().map(|(i, c)| {
            let off = i * CHUNK;
            let n = (self.len - off).min(CHUNK) as usize;
            (off, &c[..n])
        })
    }
}

impl Read for SparseImage {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        self.read_at(self.pos, &mut buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Write for SparseImage {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = (buf.len() as u64).min(self.len.saturating_sub(self.pos)) as usize;
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the image",
            ));
        }
        let mut done = 0usize;
        while done < n {
            let at = self.pos + done as u64;
            let (idx, within) = (at / CHUNK, (at % CHUNK) as usize);
            let k = (n - done).min(CHUNK as usize - within);
            let c = self
                .chunks
                .entry(idx)
                .or_insert_with(|| vec![0u8; CHUNK as usize].into_boxed_slice());
            c[within..within + k].copy_from_slice(&buf[done..done + k]);
            done += k;
        }
        self.pos += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Seek for SparseImage {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        self.pos = new
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the image"))?;
        Ok(self.pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_back_writes_and_zeros_elsewhere() {
        let mut img = SparseImage::new(5 * CHUNK + 100);
        img.seek(SeekFrom::Start(CHUNK - 2)).unwrap();
        img.write_all(b"abcd").unwrap(); // across a chunk boundary
        img.seek(SeekFrom::End(-3)).unwrap();
        img.write_all(b"xyz").unwrap();
        assert!(img.write_all(b"!").is_err(), "writing past the end fails");
        assert_eq!(img.allocated(), 3 * CHUNK);
        assert!(img.touched(CHUNK, CHUNK + 1));
        assert!(!img.touched(2 * CHUNK, 5 * CHUNK));
        let mut all = Vec::new();
        img.seek(SeekFrom::Start(0)).unwrap();
        img.read_to_end(&mut all).unwrap();
        assert_eq!(all.len() as u64, img.len());
        let mut want = vec![0u8; all.len()];
        want[CHUNK as usize - 2..CHUNK as usize + 2].copy_from_slice(b"abcd");
        let n = want.len();
        want[n - 3..].copy_from_slice(b"xyz");
        assert_eq!(all, want);
        let ext: Vec<(u64, usize)> = img.extents().map(|(o, b)| (o, b.len())).collect();
        assert_eq!(
            ext,
            [
                (0, CHUNK as usize),
                (CHUNK, CHUNK as usize),
                (5 * CHUNK, 100)
            ]
        );
    }
}
