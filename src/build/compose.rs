//! Seams of the build that other parts fill in: the system tree and each node's boot tree.
//!
//! Until the sources (fetch, .deb), boot (board files, initramfs, config.txt) and cluster
//! (everything under `bakery/`) parts are merged, [`compose_system`] reads local sources
//! only (a rootfs directory or plain tar, a local k3s binary and air-gap archives, and
//! the profile's overlay directories) and [`boot_tree`] writes placeholder boot files
//! plus a minimal `bakery/node.env`. Both keep their signatures when the real parts land.

use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::app::UserError;
use crate::plan::{NodePlan, Plan};
use crate::profile::{Profile, Source};
use crate::stage::dir::{DirOptions, read_dir};
use crate::stage::{Data, Entry, Kind, Tree};

fn local(role: &str, s: &Source) -> Result<std::path::PathBuf> {
    match s {
        Source::Path { path, .. } => Ok(path.clone()),
        Source::Url { url, .. } => Err(UserError(format!(
            "sources.{role}: downloading {url} is not implemented in this build yet\nhint: download it yourself and use path = \"...\""
        ))
        .into()),
    }
}

/// The system tree: base rootfs, then packages, k3s, air-gap images and overlays.
pub fn compose_system(profile: &Profile, work: &Path) -> Result<Tree> {
    let s = &profile.sources;
    let mut tree = match &s.rootfs {
        Some(src) => {
            let p = local("rootfs", src)?;
            if p.is_dir() {
                read_dir(&p, DirOptions::default())
                    .with_context(|| format!("reading rootfs directory {}", p.display()))?
            } else {
                read_tar(&p, &work.join("rootfs-content"))
                    .with_context(|| format!("reading rootfs archive {}", p.display()))?
            }
        }
        None => Tree::new(),
    };
    if !s.packages.is_empty() {
        bail!(UserError(
            "sources.packages: installing .deb packages is not implemented in this build yet\nhint: leave packages out for now".into()
        ));
    }
    if let Some(k) = &s.k3s {
        let p = local("k3s", k)?;
        tree.insert(
            "usr/local/bin/k3s",
            Entry::file(Data::Path(p), 0o755).with_mtime(tree.default_mtime),
        )?;
    }
    for (i, a) in s.airgap_images.iter().enumerate() {
        let p = local(&format!("airgap-images[{i}]"), a)?;
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("images-{i}.tar"));
        tree.insert(
            &format!("var/lib/rancher/k3s/agent/images/{name}"),
            Entry::file(Data::Path(p), 0o644),
        )?;
    }
    for o in &s.overlays {
        let over = read_dir(
            o,
            DirOptions {
                owner: Some((0, 0)),
                max_mtime: None,
            },
        )
        .with_context(|| format!("reading overlay {}", o.display()))?;
        tree.overlay(&over)?;
    }
    Ok(tree)
}

/// Read a plain tar archive into a tree; file contents go to `content_dir`.
pub fn read_tar(path: &Path, content_dir: &Path) -> Result<Tree> {
    fs_err::create_dir_all(content_dir)?;
    let mut ar = tar::Archive::new(std::io::BufReader::new(fs_err::File::open(path)?));
    let mut tree = Tree::new();
    for (i, e) in ar.entries()?.enumerate() {
        let mut e = e?;
        let h = e.header().clone();
        let name = e.path()?.to_string_lossy().into_owned();
        let rel = crate::stage::tree::normalize(&name)?;
        let mut xattrs = Vec::new();
        if let Some(exts) = e.pax_extensions()? {
            for x in exts {
                let x = x?;
                if let Some(k) = x.key().ok().and_then(|k| k.strip_prefix("SCHILY.xattr.")) {
                    xattrs.push((k.to_owned(), x.value_bytes().to_vec()));
                }
            }
        }
        let link = || -> Result<String> {
            Ok(e.link_name()?
                .map(|l| l.to_string_lossy().into_owned())
                .unwrap_or_default())
        };
        let kind = match h.entry_type() {
            tar::EntryType::Directory => Kind::Dir,
            tar::EntryType::Symlink => Kind::Symlink(link()?),
            tar::EntryType::Link => Kind::Hardlink(crate::stage::tree::normalize(&link()?)?),
            tar::EntryType::Char => Kind::CharDev {
                major: h.device_major()?.unwrap_or(0),
                minor: h.device_minor()?.unwrap_or(0),
            },
            tar::EntryType::Block => Kind::BlockDev {
                major: h.device_major()?.unwrap_or(0),
                minor: h.device_minor()?.unwrap_or(0),
            },
            tar::EntryType::Fifo => Kind::Fifo,
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                let dst = content_dir.join(i.to_string());
                let mut out = fs_err::File::create(&dst)?;
                std::io::copy(&mut e, &mut out)?;
                Kind::File(Data::Path(dst))
            }
            _ => continue,
        };
        let entry = Entry {
            kind,
            mode: h.mode()? & 0o7777,
            uid: h.uid()? as u32,
            gid: h.gid()? as u32,
            mtime: h.mtime()? as i64,
            xattrs,
        };
        if rel.is_empty() {
            *tree.get_mut("").expect("root") = entry;
        } else {
            tree.insert(&rel, entry)?;
        }
    }
    Ok(tree)
}

/// The boot partition of one node (placeholder boot files and `bakery/node.env`).
pub fn boot_tree(plan: &Plan, node: &NodePlan, timestamp: i64) -> Result<Tree> {
    let mut t = Tree::new();
    t.default_mtime = timestamp;
    t.add_bytes("config.txt", "arm_64bit=1\n", 0o644)?;
    t.add_bytes(
        "cmdline.txt",
        "console=ttyAMA0,115200 console=tty1 rootwait cgroup_memory=1 cgroup_enable=memory\n",
        0o644,
    )?;
    let role = node.role.to_string();
    let env = format!(
        "BAKERY_CLUSTER='{}'\nBAKERY_HOSTNAME='{}'\nBAKERY_ROLE='{}'\nBAKERY_BUILD_TIME='{}'\n",
        plan.cluster, node.name, role, timestamp
    );
    t.add_bytes("bakery/node.env", env, 0o644)?;
    Ok(t)
}
