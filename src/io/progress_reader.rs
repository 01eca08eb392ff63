//! A reader that reports the bytes read through it to a progress [`Task`].

use std::io::{self, Read};

use crate::progress::Task;

/// Forwards reads and advances `task` by the number of bytes read.
pub struct ProgressReader<'a, R> {
    inner: R,
    task: &'a dyn Task,
}

impl<R> std::fmt::Debug for ProgressReader<'_, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProgressReader").finish_non_exhaustive()
    }
}

impl<'a, R: Read> ProgressReader<'a, R> {
    pub fn new(inner: R, task: &'a dyn Task) -> Self {
        Self { inner, task }
    }
    pub fn into_inner(self) -> R {
        self.inner
    }
}

impl<R: Read> Read for ProgressReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.task.advance(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::*;

    struct Count(Cell<u64>);
    impl Task for Count {
        fn advance(&self, n: u64) {
            self.0.set(self.0.get() + n);
        }
        fn set_total(&self, _: u64) {}
        fn set_position(&self, pos: u64) {
            self.0.set(pos);
        }
        fn finish(&self, _: &str) {}
    }

    #[test]
    fn counts_every_byte() {
        let t = Count(Cell::new(0));
        let mut r = ProgressReader::new(&[7u8; 10_000][..], &t);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        assert_eq!(t.0.get(), 10_000);
    }
}
