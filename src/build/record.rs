//! `build.json`: what a build used and produced, for audits and comparisons.
//!
//! Inputs with their digests and sizes, the tool version, the timestamp, the system
//! partition, every image's digests and layout, and timings. It never holds secrets: only
//! paths, URLs, digests and sizes of inputs, and no file contents.

use serde::Serialize;

use anyhow::Result;

use crate::image::ImagesOutput;
use crate::plan::Plan;
use crate::profile::{Profile, Source};

pub const RECORD_FORMAT: u32 = 1;

#[derive(Debug, Serialize)]
pub struct Input {
    pub role: String,
    pub source: String,
    pub sha256: Option<String>,
    pub size: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Timings {
    /// Assembling the base from `[sources.debian]` (None for a prepared base).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base_seconds: Option<f64>,
    pub compose_seconds: f64,
    pub total_seconds: f64,
}

/// The boot files every node shares, made once per build.
#[derive(Debug, Clone, Serialize)]
pub struct BoardRecord {
    pub files: usize,
    pub bytes: u64,
    /// Initramfs archives built (one per build, whatever the number of nodes).
    pub initramfs_builds: usize,
    pub seconds: f64,
}

#[derive(Debug, Serialize)]
pub struct BuildRecord {
    pub format: u32,
    pub tool: String,
    pub version: String,
    pub profile: Input,
    pub cluster: String,
    pub board: String,
    pub timestamp: i64,
    pub inputs: Vec<Input>,
    pub board_files: BoardRecord,
    pub images: ImagesOutput,
    pub timings: Timings,
}

fn input(role: String, src: &Source) -> Input {
    let (sha256, size) = match src {
        Source::Path { path, .. } if path.is_file() => match crate::image::file_digest(path) {
            Ok(d) => (Some(d.sha256), Some(d.size)),
            Err(_) => (None, None),
        },
        _ => (src.sha256().map(|s| s.to_string()), None),
    };
    Input {
        role,
        source: src.describe(),
        sha256,
        size,
    }
}

impl BuildRecord {
    pub fn new(
        profile: &Profile,
        plan: &Plan,
        board_files: &BoardRecord,
        images: &ImagesOutput,
        timestamp: i64,
        timings: Timings,
    ) -> Result<Self> {
        let mut inputs: Vec<Input> = plan
            .artifacts
            .iter()
            .map(|a| input(a.role.clone(), &a.source))
            .collect();
        for (i, o) in profile.sources.overlays.iter().enumerate() {
            inputs.push(Input {
                role: format!("overlays[{i}]"),
                source: o.display().to_string(),
                sha256: None,
                size: None,
            });
        }
        Ok(Self {
            format: RECORD_FORMAT,
            tool: env!("CARGO_PKG_NAME").into(),
            version: env!("CARGO_PKG_VERSION").into(),
            profile: input(
                "profile".into(),
                &Source::Path {
                    path: profile.path.clone(),
                    sha256: None,
                },
            ),
            cluster: plan.cluster.clone(),
            board: plan.board.name().into(),
            timestamp,
            inputs,
            board_files: board_files.clone(),
            images: images.clone(),
            timings,
        })
    }

    pub fn to_json(&self) -> Result<String> {
        let mut s = serde_json::to_string_pretty(self)?;
        s.push('\n');
        Ok(s)
    }
}
