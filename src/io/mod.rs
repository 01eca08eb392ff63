//! Small stream adapters, one per file, composed by the stages that move bytes:
//! body -> [`HashReader`] -> [`ProgressReader`] -> `*.partial`. (A node image's file hashes
//! itself: `image::compress::NodeFile`.)

mod hash_reader;
mod progress_reader;

pub use hash_reader::HashReader;
pub use progress_reader::ProgressReader;

use crate::profile::Sha256;

/// Turn a finished hasher into the profile's digest type.
pub fn digest(h: sha2::Sha256) -> Sha256 {
    use sha2::Digest;
    Sha256::from_bytes(&h.finalize())
}

/// Fill `buf` from `r` as far as the stream allows: the count read, short only at the end.
/// Block-wise copies use it so every block but the last is whole (zero-block detection,
/// fixed-size LZMA2 chunks).
pub fn read_full<R: std::io::Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
