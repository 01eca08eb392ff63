//! A byte-range view of a file: `Read + Write + Seek` over `[start, start + len)`.
//!
//! Partition writers and readers (FAT inspection, tests) see only their partition;
//! positions are relative to the start of the window and I/O never leaves it.

use std::io::{self, Read, Seek, SeekFrom, Write};

/// A window `[start, start + len)` of an underlying seekable stream.
#[derive(Debug)]
pub struct Region<F> {
    inner: F,
    start: u64,
    len: u64,
    pos: u64,
}

impl<F: Seek> Region<F> {
    pub fn new(inner: F, start: u64, len: u64) -> Self {
        Self {
            inner,
            start,
            len,
            pos: 0,
        }
    }
    pub fn len(&self) -> u64 {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn into_inner(self) -> F {
        self.inner
    }
    fn room(&self, want: usize) -> usize {
        want.min(self.len.saturating_sub(self.pos) as usize)
    }
}

impl<F: Read + Seek> Read for Region<F> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let got = self.inner.read(&mut buf[..n])?;
        self.pos += got as u64;
        Ok(got)
    }
}

impl<F: Write + Seek> Write for Region<F> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.room(buf.len());
        if n == 0 && !buf.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "write past the end of the partition",
            ));
        }
        self.inner.seek(SeekFrom::Start(self.start + self.pos))?;
        let put = self.inner.write(&buf[..n])?;
        self.pos += put as u64;
        Ok(put)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<F: Seek> Seek for Region<F> {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let new = match to {
            SeekFrom::Start(o) => Some(o),
            SeekFrom::End(d) => self.len.checked_add_signed(d),
            SeekFrom::Current(d) => self.pos.checked_add_signed(d),
        };
        let new = new.ok_or_else(|| {
            io::Error::new(io::ErrorKind::InvalidInput, "seek before the partition")
        })?;
        self.pos = new;
        Ok(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn stays_inside_its_window() {
        let mut r = Region::new(Cursor::new(vec![0u8; 16]), 4, 8);
        r.write_all(b"abcd").unwrap();
        assert!(
            r.write_all(b"efghijk").is_err(),
            "writing past the end fails"
        );
        r.seek(SeekFrom::Start(0)).unwrap();
        let mut s = String::new();
        r.read_to_string(&mut s).unwrap();
        assert_eq!(s.len(), 8);
        assert!(s.starts_with("abcd"));
        let v = r.into_inner().into_inner();
        assert_eq!(&v[..4], &[0; 4]);
        assert_eq!(&v[4..8], b"abcd");
    }
}
