//! A reader that computes the sha256 of everything read through it.

use std::io::{self, Read};

use sha2::Digest;

use crate::profile::Sha256;

/// Hashes the bytes as they are read; [`HashReader::finish`] gives the digest.
#[derive(Debug)]
pub struct HashReader<R> {
    inner: R,
    hasher: sha2::Sha256,
    count: u64,
}

impl<R: Read> HashReader<R> {
    pub fn new(inner: R) -> Self {
        Self::with_hasher(inner, sha2::Sha256::new(), 0)
    }
    /// Continue a hash over bytes already seen (e.g. a partial download being resumed).
    pub fn with_hasher(inner: R, hasher: sha2::Sha256, count: u64) -> Self {
        Self {
            inner,
            hasher,
            count,
        }
    }
    /// Bytes hashed so far.
    pub fn count(&self) -> u64 {
        self.count
    }
    /// The digest of everything read, and the count of bytes.
    pub fn finish(self) -> (Sha256, u64) {
        (super::digest(self.hasher), self.count)
    }
}

impl<R: Read> Read for HashReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_of_known_input() {
        let mut r = HashReader::new(&b"abc"[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
        let (d, n) = r.finish();
        assert_eq!(n, 3);
        // FIPS 180-2 test vector.
        assert_eq!(
            d.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
