//! The dispatcher: runs one CLI command against the library and reports the outcome.
//!
//! Errors carry their class for the exit code: [`UserError`] (anywhere in the chain) or a
//! profile's [`Diagnostics`] mean exit 1; everything else is an I/O or tool failure, exit 2.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, Cmd};
use crate::profile::{self, Diagnostics, LoadError};
use crate::{build, image, plan, report};

/// An error the user can fix (exit code 1). Its message should end with a hint.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UserError(pub String);

/// Exit code for an error chain: 1 for invalid input, 2 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let user = err
        .chain()
        .any(|e| e.is::<UserError>() || e.is::<Diagnostics>());
    if user { 1 } else { 2 }
}

fn load(path: &std::path::Path) -> Result<profile::Profile> {
    profile::load(path).map_err(|e| match e {
        LoadError::Invalid(d) => anyhow::Error::new(d),
        LoadError::Io { .. } => anyhow::Error::new(e),
    })
}

pub fn run(cli: Cli) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Cmd::Check(a) => {
            let p = load(&a.profile)?;
            let plan = plan::plan(&p);
            out.write_all(report::check(&p, &plan).as_bytes())?;
        }
        Cmd::Plan(a) => {
            let p = load(&a.profile)?;
            let plan = plan::plan(&p);
            serde_json::to_writer_pretty(&mut out, &plan).context("writing the plan")?;
            writeln!(out)?;
        }
        Cmd::Build(a) => {
            let p = load(&a.profile)?;
            let plan = plan::plan(&p);
            let out_dir = a.out.unwrap_or_else(|| {
                a.profile
                    .parent()
                    .unwrap_or(std::path::Path::new("."))
                    .join("out")
            });
            let opts = build::BuildOptions {
                out_dir,
                nodes: a.nodes,
                offline: a.offline,
                ..Default::default()
            };
            let r = build::run(&p, &plan, &opts, &build::LogReporter)?;
            for f in &r.files {
                writeln!(out, "{}", f.display())?;
            }
        }
        Cmd::Inspect(a) => {
            let i = image::inspect::inspect(&a.image)?;
            out.write_all(i.render().as_bytes())?;
            if !i.all_ok() {
                return Err(UserError(format!(
                    "{}: a checksum does not match\nhint: the image or a list beside it changed after the build; rebuild or download it again",
                    a.image.display()
                ))
                .into());
            }
        }
        Cmd::Schema => {
            out.write_all(schema().as_bytes())?;
        }
        Cmd::Completions(a) => {
            clap_complete::generate(a.shell, &mut Cli::command(), "bakery-image", &mut out);
        }
    }
    Ok(())
}

/// The JSON Schema of profiles, as committed in `profiles/profile.schema.json`.
pub fn schema() -> String {
    let s = schemars::schema_for!(profile::raw::RawProfile);
    let mut text = serde_json::to_string_pretty(&s).expect("schemas serialise");
    text.push('\n');
    text
}
