//! Integration tests: one binary, one module per area.

mod boot;
mod build;
mod cli;
mod cluster;
mod debian;
mod debian_diff;
mod fetch;
mod image;
mod need;
mod pi5;
mod profile;
mod stage;
mod standin;
mod util;

use std::path::{Path, PathBuf};

/// The repository root (tests run with the package root as working directory).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The bakery-image binary built for these tests.
pub fn bin() -> assert_cmd::Command {
    let mut c = assert_cmd::Command::cargo_bin("bakery-image").expect("binary built");
    c.current_dir(root());
    c
}

/// Every profile shipped in profiles/.
pub fn example_profiles() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join("profiles"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .map(|p| Path::new("profiles").join(p.file_name().unwrap()))
        .collect();
    v.sort();
    v
}
