//! Small stream adapters, one per file, composed by the stages that move bytes:
//! body -> [`HashReader`] -> [`ProgressReader`] -> `*.partial`; encoder -> [`HashWriter`].

mod hash_reader;
mod hash_writer;
mod progress_reader;

pub use hash_reader::HashReader;
pub use hash_writer::HashWriter;
pub use progress_reader::ProgressReader;

use crate::profile::Sha256;

/// Turn a finished hasher into the profile's digest type.
pub fn digest(h: sha2::Sha256) -> Sha256 {
    use sha2::Digest;
    Sha256::from_bytes(&h.finalize())
}
