//! Staging: base root filesystems and packages read into a [`Tree`] without root.
//!
//! Inputs: fetched files (a rootfs tarball, Debian packages); output: a [`Tree`] whose
//! regular files live in memory or in a build-private [`ContentStore`] directory.
//! [`apply`] recognises the format by magic bytes (ar for .deb, else tar with any
//! supported compression); [`check::check_base`] then verifies that the result holds
//! what the node runtime needs.

pub mod ar;
pub mod check;
pub mod content;
pub mod deb;
pub mod decompress;
pub mod dir;
pub mod error;
pub mod image;
pub mod parttable;
pub mod resolve;
pub mod tarball;
pub mod tree;

use std::io::{BufRead, BufReader};
use std::path::Path;

pub use content::ContentStore;
pub use error::{EntryProblem, StageError};
pub use tarball::ParentLinks;
pub use tree::{Data, Entry, Kind, Tree};

/// Apply one archive over `tree`: a Debian package (dpkg-like, symlinks in parent paths
/// followed inside the tree) or a tar file (writes through symlinks refused).
pub fn apply(tree: &mut Tree, archive: &Path, store: &mut ContentStore) -> Result<(), StageError> {
    let mut r = BufReader::new(fs_err::File::open(archive)?);
    if r.fill_buf()?.starts_with(ar::AR_MAGIC) {
        deb::apply_deb(tree, archive, store)
    } else {
        tarball::apply_tar_reader(tree, r, archive, store, ParentLinks::Refuse)
    }
}

/// A base root filesystem: a tar archive (any supported compression) or a disk image
/// (`.img`, possibly compressed) whose largest ext4 partition is read.
pub fn read_base(base: &Path, store: &mut ContentStore) -> Result<Tree, StageError> {
    if image::is_disk_image(&image::peek_decompressed(base, 512)?) {
        return image::read_image(base, store);
    }
    let mut tree = Tree::new();
    apply(&mut tree, base, store)?;
    Ok(tree)
}

/// A root filesystem: the base ([`read_base`]), then each package or tar archive in
/// order (later files win).
pub fn read_rootfs(
    base: &Path,
    packages: &[&Path],
    store: &mut ContentStore,
) -> Result<Tree, StageError> {
    let mut tree = read_base(base, store)?;
    for p in packages {
        apply(&mut tree, p, store)?;
    }
    Ok(tree)
}
