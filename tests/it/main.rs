//! Integration tests: one binary, one module per area.

mod build;
mod image;
mod util;
