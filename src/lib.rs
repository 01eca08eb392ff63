//! bakery-image: one profile describes a K3s cluster; the build writes one immutable
//! SD-card image per node.
//!
//! Data flows one way: [`profile`] (TOML -> validated `Profile`) -> [`plan`] (pure: every
//! node, layout, file and artifact) -> fetch -> compose -> filesystems -> disk -> compress
//! -> outputs. [`app`] dispatches CLI commands; [`cli`] holds the clap types.

pub mod app;
pub mod boot;
pub mod cli;
pub mod plan;
pub mod profile;
pub mod report;
pub mod stage;
