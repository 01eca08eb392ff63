//! bakery-image: one profile describes a K3s cluster; the build writes one immutable
//! SD-card image per node.
//!
//! Data flows one way: [`profile`] (TOML -> validated `Profile`) -> [`plan`] (pure: every
//! node, layout, file and artifact) -> fetch -> compose -> filesystems -> disk -> compress
//! -> outputs. [`app`] dispatches CLI commands; [`cli`] holds the clap types.

pub mod app;
pub mod boot;
pub mod build;
pub mod cli;
pub mod cli_progress;
pub mod cluster;
pub mod debian;
pub mod error;
pub mod fetch;
pub mod image;
pub mod io;
pub mod plan;
pub mod profile;
pub mod progress;
pub mod report;
pub mod stage;
