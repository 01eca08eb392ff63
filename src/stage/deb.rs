//! Debian packages (.deb: an `ar` archive of `debian-binary`, `control.tar.*` and
//! `data.tar[.gz|.xz|.zst]`) applied over a tree, the way dpkg would unpack them: their
//! paths are followed through the tree's symlinks (merged /usr: `bin/busybox` lands in
//! `usr/bin/busybox`), directory entries keep existing symlinks to directories. Maintainer
//! scripts are not run; only the files are laid down.

use std::io::{BufReader, Read};
use std::path::Path;

use super::Tree;
use super::ar::ArReader;
use super::content::ContentStore;
use super::error::StageError;
use super::tarball::{ParentLinks, apply_tar_reader};

/// Apply the files of one Debian package over `tree` (all or nothing).
pub fn apply_deb(tree: &mut Tree, deb: &Path, store: &mut ContentStore) -> Result<(), StageError> {
    let f = fs_err::File::open(deb)?;
    let corrupt = |where_: &str, e: std::io::Error| StageError::Corrupt {
        archive: deb.to_owned(),
        where_: where_.to_owned(),
        cause: e,
    };
    let mut ar = ArReader::new(BufReader::new(f)).map_err(|e| corrupt("at the start", e))?;
    let mut seen_version = false;
    while let Some(mut member) = ar
        .next_member()
        .map_err(|e| corrupt("in the ar member list", e))?
    {
        let id = member.name.clone();
        if id == "debian-binary" {
            let mut v = String::new();
            member
                .read_to_string(&mut v)
                .map_err(|e| corrupt("in debian-binary", e))?;
            if !v.starts_with("2.") {
                return Err(StageError::Format {
                    archive: deb.to_owned(),
                    reason: format!("unsupported .deb format version {:?}", v.trim()),
                    hint: "only format 2.x Debian packages are supported",
                });
            }
            seen_version = true;
        } else if id.starts_with("data.tar") {
            if !seen_version {
                break;
            }
            let name = deb.join(&id);
            return apply_tar_reader(
                tree,
                BufReader::new(member),
                &name,
                store,
                ParentLinks::Follow,
            );
        }
    }
    Err(StageError::Format {
        archive: deb.to_owned(),
        reason: if seen_version {
            "the package has no data.tar member".into()
        } else {
            "not a Debian package (no debian-binary member first)".into()
        },
        hint: "give a .deb as downloaded by `apt-get download`, or a tar archive",
    })
}
