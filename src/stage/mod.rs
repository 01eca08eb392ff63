//! Staging: base root filesystems and packages read into a [`Tree`] without root.

pub mod dir;
pub mod tree;

pub use tree::{Data, Entry, Kind, Tree};
