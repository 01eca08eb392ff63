//! Errors of the archive readers: which archive, which entry, what is wrong, and a hint.

use std::fmt;
use std::path::PathBuf;

/// Why one entry of an archive was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryProblem {
    /// The path contains `..` and would leave the tree.
    Traversal,
    /// A parent of the path is a symlink (`link`); writing through it is refused.
    ThroughSymlink { link: String },
    /// A symlink on the way resolves outside the tree, or links loop.
    SymlinkEscape { link: String },
    /// A hard link whose target leaves the tree.
    HardlinkOutside { target: String },
    /// A hard link whose target is not (yet) a regular file in the tree.
    HardlinkMissing { target: String },
    /// The name is not UTF-8.
    NotUtf8,
    /// An entry type the staging tree cannot represent.
    Unsupported { kind: String },
}

impl EntryProblem {
    fn hint(&self) -> &'static str {
        match self {
            EntryProblem::Traversal
            | EntryProblem::ThroughSymlink { .. }
            | EntryProblem::SymlinkEscape { .. }
            | EntryProblem::HardlinkOutside { .. } => {
                "the archive tries to write outside its root; do not use it, or rebuild it from a trusted source"
            }
            EntryProblem::HardlinkMissing { .. } => {
                "hard links must point to a regular file stored earlier in the same archive (or the tree below it); rebuild the archive"
            }
            EntryProblem::NotUtf8 | EntryProblem::Unsupported { .. } => {
                "rebuild the archive without such entries"
            }
        }
    }
}

impl fmt::Display for EntryProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryProblem::Traversal => write!(f, "path leaves the tree (contains \"..\")"),
            EntryProblem::ThroughSymlink { link } => {
                write!(f, "writes through the symlink \"{link}\"")
            }
            EntryProblem::SymlinkEscape { link } => write!(
                f,
                "the symlink \"{link}\" on its path leads outside the tree (or loops)"
            ),
            EntryProblem::HardlinkOutside { target } => {
                write!(f, "hard link to \"{target}\" outside the tree")
            }
            EntryProblem::HardlinkMissing { target } => write!(
                f,
                "hard link to \"{target}\", which is not a regular file present before it"
            ),
            EntryProblem::NotUtf8 => write!(f, "name is not valid UTF-8"),
            EntryProblem::Unsupported { kind } => write!(f, "unsupported entry type {kind}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{}: entry \"{entry}\": {problem}\nhint: {}", archive.display(), problem.hint())]
    Entry {
        archive: PathBuf,
        entry: String,
        problem: EntryProblem,
    },
    #[error(
        "{}: truncated or corrupt ({where_}): {cause}\nhint: fetch the file again (remove it from the cache) and check its sha256",
        archive.display()
    )]
    Corrupt {
        archive: PathBuf,
        /// Where it broke, e.g. `in entry "usr/bin/ls"` or `after entry "etc/"`.
        where_: String,
        /// Part of the message, not the error's source, so it is printed once.
        cause: std::io::Error,
    },
    #[error("{}: {reason}\nhint: {hint}", archive.display())]
    Format {
        archive: PathBuf,
        reason: String,
        hint: &'static str,
    },
    /// Writing the build's private content directory failed (exit code 2).
    #[error("storing extracted content in `{}`", dir.display())]
    Content {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl StageError {
    /// Whether the archive itself is at fault (exit code 1) rather than the host.
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            StageError::Entry { .. } | StageError::Corrupt { .. } | StageError::Format { .. }
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_archive_says_why_once() {
        let e = anyhow::Error::new(StageError::Corrupt {
            archive: "base.tar".into(),
            where_: "in entry \"etc/\"".into(),
            cause: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "early end of file"),
        });
        let text = format!("{e:#}");
        assert_eq!(text.matches("early end of file").count(), 1, "{text}");
        assert!(text.ends_with("check its sha256"), "{text}");
    }
}
