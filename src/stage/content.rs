//! The build-private content directory: where regular files read from archives keep
//! their bytes, so the staging tree holds only metadata and a [`Data::Path`].
//!
//! Small files stay in memory ([`Data::Bytes`]); the rest become numbered files in the
//! directory. Nothing here is ever extracted under its archive name, so no archive can
//! write anywhere but this directory. A reader that fails removes what it stored
//! ([`ContentStore::mark`] / [`ContentStore::rollback`]).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::Data;

/// Files up to this size are kept in memory.
pub const INLINE_MAX: u64 = 16 * 1024;

#[derive(Debug)]
pub struct ContentStore {
    dir: PathBuf,
    next: u64,
    created: Vec<PathBuf>,
}

/// Why storing failed: the source could not be read, or the store could not be written.
#[derive(Debug)]
pub enum StoreError {
    Read(std::io::Error),
    Write(std::io::Error),
}

impl ContentStore {
    /// Use `dir` (created if needed) for content. It should be private to one build.
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        fs_err::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            next: 0,
            created: Vec::new(),
        })
    }
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Copy exactly `size` bytes from `r`. Fewer bytes is a read error (truncation).
    pub fn store(&mut self, r: &mut dyn Read, size: u64) -> Result<Data, StoreError> {
        if size <= INLINE_MAX {
            let mut buf = Vec::with_capacity(size as usize);
            r.take(size)
                .read_to_end(&mut buf)
                .map_err(StoreError::Read)?;
            short(buf.len() as u64, size)?;
            return Ok(Data::bytes(buf));
        }
        let path = loop {
            let p = self.dir.join(format!("{:08}", self.next));
            self.next += 1;
            if !p.exists() {
                break p;
            }
        };
        let mut out = fs_err::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(StoreError::Write)?;
        self.created.push(path.clone());
        let mut buf = vec![0u8; 1 << 16];
        let mut done = 0u64;
        while done < size {
            let want = buf.len().min((size - done) as usize);
            let n = match r.read(&mut buf[..want]) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::Read(e)),
            };
            out.write_all(&buf[..n]).map_err(StoreError::Write)?;
            done += n as u64;
        }
        short(done, size)?;
        Ok(Data::Path(path))
    }

    /// A point to roll back to.
    pub fn mark(&self) -> usize {
        self.created.len()
    }
    /// Remove every file stored since `mark`.
    pub fn rollback(&mut self, mark: usize) {
        for p in self.created.drain(mark..) {
            if let Err(e) = fs_err::remove_file(&p) {
                tracing::warn!("{e}");
            }
        }
    }
}

fn short(got: u64, want: u64) -> Result<(), StoreError> {
    if got < want {
        return Err(StoreError::Read(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("data ends after {got} of {want} bytes"),
        )));
    }
    Ok(())
}
