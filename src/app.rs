//! The dispatcher: runs one CLI command against the library and reports the outcome.
//!
//! Errors carry their class for the exit code: a [`UserError`] (anywhere in the chain) or
//! a profile's [`Diagnostics`] mean exit 1; everything else is an I/O or tool failure, 2.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, Cmd};
use crate::error::UserError;
use crate::profile::{self, Diagnostics, LoadError};
use crate::{build, fetch, image, plan, report, stage};

/// Exit code for an error chain: 1 for invalid input, 2 otherwise.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    let user = err.chain().any(|e| {
        e.is::<UserError>()
            || e.is::<Diagnostics>()
            || e.downcast_ref::<fetch::FetchError>()
                .is_some_and(fetch::FetchError::is_user_error)
            || e.downcast_ref::<stage::StageError>()
                .is_some_and(stage::StageError::is_user_error)
            || e.is::<stage::check::MissingParts>()
            || e.downcast_ref::<crate::debian::DebianError>()
                .is_some_and(crate::debian::DebianError::is_user_error)
    });
    if user { 1 } else { 2 }
}

fn load(path: &std::path::Path) -> Result<profile::Profile> {
    profile::load(path).map_err(|e| match e {
        LoadError::Invalid(d) => anyhow::Error::new(d),
        LoadError::NotAProfile { .. } => anyhow::Error::new(UserError(e.to_string())),
        LoadError::Io { .. } => anyhow::Error::new(e),
    })
}

/// `--cache-dir`, else the default cache directory.
fn cache_dir(given: Option<std::path::PathBuf>) -> Result<std::path::PathBuf> {
    match given {
        Some(d) => Ok(d),
        None => fetch::default_dir().ok_or_else(|| {
            UserError(
                "no cache directory: neither BAKERY_CACHE_DIR, XDG_CACHE_HOME nor HOME is set\nhint: pass --cache-dir DIR".into(),
            )
            .into()
        }),
    }
}

pub fn run(cli: Cli) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match cli.command {
        Cmd::Check(a) => {
            let p = load(&a.profile)?;
            crate::boot::pi5::check_lock(&p)?;
            let plan = plan::plan(&p);
            out.write_all(report::check(&p, &plan).as_bytes())?;
        }
        Cmd::Plan(a) => {
            let p = load(&a.profile)?;
            let plan = plan::plan(&p);
            serde_json::to_writer_pretty(&mut out, &plan).context("writing the plan")?;
            writeln!(out)?;
        }
        Cmd::Secrets(a) => {
            let p = load(&a.profile)?;
            if let Some(item) = &a.rotate {
                let msg = crate::cluster::inventory::rotate(&p.secrets_dir, &p, item)?;
                eprintln!("warning: {msg}");
            }
            out.write_all(crate::cluster::inventory::list(&p.secrets_dir, &p)?.as_bytes())?;
        }
        Cmd::Kubeconfig(a) => {
            let p = load(&a.profile)?;
            let server = match &a.server {
                None => p.registration_address(),
                Some(s) => crate::cluster::ApiServer::parse(s)
                    .address(&p)
                    .map_err(UserError)?,
            };
            let secrets = crate::cluster::Secrets::open(&p.secrets_dir)?.ok_or_else(|| {
                UserError(format!(
                    "no secrets directory {}\nhint: run `bakery-image build` first: it generates the cluster's CA and admin certificate",
                    p.secrets_dir.display()
                ))
            })?;
            let text = crate::cluster::kubeconfig_for(&p, &secrets, server)?;
            out.write_all(text.as_bytes())?;
        }
        Cmd::Fetch(a) => {
            let p = load(&a.profile)?;
            let plan = plan::plan(&p);
            let cache_dir = cache_dir(a.cache_dir)?;
            let mut opts = fetch::FetchOptions::new(cache_dir);
            opts.offline = a.offline;
            let reporter = crate::cli_progress::reporter();
            let fetched = fetch::fetch_all(&plan.artifacts, &opts, reporter.as_ref())
                .with_context(|| format!("fetching the parts of `{}`", a.profile.display()))?;
            out.write_all(fetch_report(&fetched).as_bytes())?;
            if let Some(d) = build::debian_base(&p, &opts, false, reporter.as_ref())? {
                build::save_lock(&p, &d)?;
                writeln!(out, "debian: {} package(s) in the cache", d.packages.len())?;
            }
        }
        Cmd::Update(a) => {
            let p = load(&a.profile)?;
            if p.sources.debian.is_none() {
                return Err(UserError(format!(
                    "{} has no [sources.debian]: there is no package set to lock\nhint: add a [sources.debian] section, or use `bakery-image fetch` for pinned parts",
                    a.profile.display()
                ))
                .into());
            }
            let cache_dir = cache_dir(a.cache_dir)?;
            let opts = fetch::FetchOptions::new(cache_dir);
            let path = crate::debian::lock::path_for(&p.path);
            let old = crate::debian::lock::LockFile::read(&path).ok().flatten();
            let reporter = crate::cli_progress::reporter();
            let new = build::debian_base(&p, &opts, true, reporter.as_ref())?
                .expect("checked above")
                .lock;
            new.write(&path)
                .with_context(|| format!("writing the lock file {}", path.display()))?;
            out.write_all(crate::debian::lock::changes(old.as_ref(), &new).as_bytes())?;
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
                cache_dir: a.cache_dir,
                ..Default::default()
            };
            let reporter = crate::cli_progress::reporter();
            let r = build::run(&p, &plan, &opts, reporter.as_ref())?;
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
        Cmd::Run(a) => run_image(a)?,
        Cmd::Schema => {
            out.write_all(schema().as_bytes())?;
        }
        Cmd::Completions(a) => {
            clap_complete::generate(a.shell, &mut Cli::command(), "bakery-image", &mut out);
        }
    }
    Ok(())
}

/// One line per fetched part: role, sha256, size, origin, path.
pub fn fetch_report(fetched: &[fetch::Fetched]) -> String {
    let w = fetched.iter().map(|f| f.role.len()).max().unwrap_or(0);
    fetched
        .iter()
        .map(|f| {
            format!(
                "{:w$}  {}  {:>12}  {:10}  {}\n",
                f.role,
                f.sha256,
                f.size,
                f.origin.as_str(),
                f.path.display()
            )
        })
        .collect()
}

fn run_image(a: crate::cli::RunArgs) -> Result<()> {
    use crate::boot::run::{Net, RunOptions};
    let disk_size = match &a.disk_size {
        Some(s) => Some(
            profile::ByteSize::parse(s)
                .map_err(|e| {
                    UserError(format!(
                        "--disk-size {s}: {}\nhint: use a size like 2G or 512M",
                        e.message
                    ))
                })?
                .bytes(),
        ),
        None => None,
    };
    if a.mac.is_some() && a.net == "none" {
        return Err(UserError(
            "--mac with --net none: the VM has no NIC\nhint: drop --mac or pick --net user or vde:SOCKET".into(),
        )
        .into());
    }
    let net = Net::parse(&a.net).map_err(|e| {
        UserError(format!(
            "--net {}: {e}\nhint: use --net none, --net user or --net vde:SOCKET",
            a.net
        ))
    })?;
    if let Net::Vde(sock) = &net
        && !sock.exists()
    {
        return Err(UserError(format!(
            "--net {}: the vde switch socket {} does not exist\nhint: start a switch with `vde_switch -d -s {}` (package vde2)",
            a.net,
            sock.display(),
            sock.display()
        ))
        .into());
    }
    let opts = RunOptions {
        image: a.image.clone(),
        machine: a.machine.clone(),
        memory_mib: a.memory,
        net,
        mac: match &a.mac {
            Some(m) => Some(crate::boot::run::parse_mac(m).map_err(|e| {
                UserError(format!(
                    "--mac: {e}\nhint: use a locally administered address such as 52:54:00:99:00:01"
                ))
            })?),
            None => None,
        },
        timeout: std::time::Duration::from_secs(a.timeout),
        check: a.check,
        append: a.append,
        disk_size,
        snapshot: a.snapshot,
        extra_disks: a.extra_disk.clone(),
        echo: true,
        power_cut_on: a.power_cut_on.clone(),
    };
    let out = crate::boot::run(&opts).with_context(|| format!("booting {}", a.image.display()))?;
    if !a.check {
        return Ok(());
    }
    if let Some(p) = &a.power_cut_on {
        return if out.power_cut {
            eprintln!("bakery-image run: power cut at \"{p}\"");
            Ok(())
        } else {
            Err(UserError(format!("power cut: \"{p}\" never appeared on the console{}\nhint: the boot path may have changed", out.failure.map(|f| format!(" (failure: {f})")).unwrap_or_default())).into())
        };
    }
    if out.ok() {
        eprintln!(
            "bakery-image run: {} after {:.1} s",
            out.ready.as_deref().unwrap_or("ready"),
            out.boot_seconds.unwrap_or_default()
        );
        Ok(())
    } else if let Some(f) = out.failure {
        Err(UserError(format!("boot check failed: {f}\nhint: the console above shows the boot; bakery.onfail=shell (the default without --check) opens a rescue shell")).into())
    } else if out.timed_out {
        Err(UserError(format!(
            "boot check failed: no `bakery: ready` within {} s\nhint: {}",
            a.timeout,
            crate::boot::console::timeout_hint(&out.console)
        ))
        .into())
    } else {
        Err(UserError(format!(
            "boot check failed: QEMU exited (status {:?}) before `bakery: ready`",
            out.exit_status
        ))
        .into())
    }
}

/// The JSON Schema of profiles, as committed in `profiles/profile.schema.json`.
pub fn schema() -> String {
    let s = schemars::schema_for!(profile::raw::RawProfile);
    let mut text = serde_json::to_string_pretty(&s).expect("schemas serialise");
    text.push('\n');
    text
}
