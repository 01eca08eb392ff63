//! Progress reporting, as seen by the library.
//!
//! Long operations (downloads, hashing a cached part, reading an archive) report bytes
//! through a [`Reporter`]; the library never draws anything itself. The CLI supplies an
//! indicatif implementation when stderr is a terminal (see `crate::cli_progress`); tests
//! and non-terminal runs use [`Quiet`]. Rate and ETA are the implementation's business:
//! the library only reports totals and increments.

/// Creates one [`Task`] per long operation.
pub trait Reporter: Sync {
    /// Start a task named `name` (e.g. "rootfs"); `total` is its size in bytes if known.
    fn task(&self, name: &str, total: Option<u64>) -> Box<dyn Task + '_>;
}

/// One running operation. Dropping it without [`Task::finish`] abandons it (on error).
pub trait Task {
    /// `n` more bytes are done.
    fn advance(&self, n: u64);
    /// The size became known (e.g. from a Content-Length).
    fn set_total(&self, total: u64);
    /// Set the position (e.g. when a download resumes at an offset).
    fn set_position(&self, pos: u64);
    /// The operation ended well; `outcome` is a short word such as "downloaded".
    fn finish(&self, outcome: &str);
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Quiet;

impl Reporter for Quiet {
    fn task(&self, _name: &str, _total: Option<u64>) -> Box<dyn Task + '_> {
        Box::new(Quiet)
    }
}

impl Task for Quiet {
    fn advance(&self, _n: u64) {}
    fn set_total(&self, _total: u64) {}
    fn set_position(&self, _pos: u64) {}
    fn finish(&self, _outcome: &str) {}
}
