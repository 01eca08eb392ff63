//! Turns a [`RawProfile`] into a checked [`Profile`], collecting every problem at once.
//!
//! Rules are grouped by profile section, one module each. Each rule reports through the
//! [`Collector`] with the key path of the offending value, so the message lands on the
//! right line. Existence checks touch only files the profile itself names as inputs it
//! owns (manifests, chart values, overlays); sources are checked when they are fetched.
//! This module holds the entry point and the helpers several sections share.

mod apps;
mod cluster;
pub(super) mod grammar;
mod image;
mod loadbalancer;
mod nodes;
mod pools;
mod sources;
mod storage;

use std::collections::HashMap;
use std::fmt::Display;
use std::hash::Hash;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::diag::{Collector, KeyPath};
use super::model::{Image, Profile, Sources};
use super::raw::RawProfile;
use super::types::{Invalid, MIB};

/// The smallest FAT32 volume with 4 KiB clusters (65,525 clusters plus metadata).
pub const MIN_BOOT_SIZE: u64 = 260 * MIB;

/// The largest image (all partitions plus the partition tables) a profile may describe:
/// 2 TiB, the capacity limit of SDXC cards and of MBR's 32-bit sector numbers. Every
/// partition size is checked against it, so the layout's sums cannot overflow.
pub const MAX_IMAGE_SIZE: u64 = 2 * 1024 * 1024 * MIB;

pub fn validate(raw: &RawProfile, path: &Path, c: &mut Collector<'_>) -> Option<Profile> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = KeyPath::root();
    let cluster = cluster::cluster(&raw.cluster, &root.key("cluster"), c);
    let ssh_keys = cluster::ssh_keys(
        &raw.ssh.authorized_keys,
        &root.key("ssh").key("authorized-keys"),
        c,
    );
    let nodes = nodes::nodes(raw, cluster.as_ref(), c);
    let pools = pools::metallb(raw.metallb.as_ref(), cluster.as_ref(), &nodes, c);
    let nfs = raw
        .storage
        .nfs
        .as_ref()
        .and_then(|n| storage::nfs(n, &nodes, &root.key("storage").key("nfs"), c));
    let ingress = loadbalancer::ingress(raw, &pools, c);
    let lb = ingress
        .as_ref()
        .and_then(|i| loadbalancer::loadbalancer(raw, cluster.as_ref(), &nodes, &pools, i, c));
    let wordpress = raw
        .apps
        .wordpress
        .as_ref()
        .and_then(|w| apps::wordpress(w, raw, &nodes, &pools, ingress.as_ref(), c));
    let manifests = apps::manifests(raw, &dir, c);
    let charts = apps::charts(raw, &dir, c);
    let image = image::image(&raw.image, &root.key("image"), c);
    let sources = sources::sources(&raw.sources, &dir, &root.key("sources"), c);
    if let (Some(i), Some(s)) = (&image, &sources) {
        pi5_kernel(i, s, &root, c);
    }
    let secrets_dir = match &raw.secrets.dir {
        Some(d) => dir.join(d),
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "profile".into());
            dir.join(format!("{stem}.secrets"))
        }
    };
    if !c.diags.is_empty() {
        return None;
    }
    Some(Profile {
        path: path.to_owned(),
        cluster: cluster?,
        nodes: nodes.into_iter().map(|(_, n)| n).collect(),
        ssh_keys,
        nfs,
        pools,
        loadbalancer: lb,
        ingress: ingress?,
        wordpress,
        manifests,
        charts,
        image: image?,
        sources: sources?,
        secrets_dir,
    })
}

/// A Pi 5 image takes its default kernel from `<suite>-backports`, so that suite must be
/// one of the base's (Pi 5 drivers exist only in trixie-backports kernels >= 6.18.15).
fn pi5_kernel(image: &Image, sources: &Sources, root: &KeyPath, c: &mut Collector<'_>) {
    let Some(d) = sources.debian.as_ref().filter(|_| image.pi5) else {
        return;
    };
    if d.kernel.is_some() {
        return;
    }
    let bpo = format!("{}-backports", d.suites[0]);
    if !d.suites.contains(&bpo) {
        c.error(
            &root.key("image").key("pi5"),
            format!("pi5 = true takes the kernel from {bpo}, which is not a suite of [sources.debian]"),
            &format!("add extra-suites = [\"{bpo}\"] to [sources.debian] (the Pi 5 needs a kernel >= 6.18.15), or set sources.debian.kernel"),
        );
    }
}

pub(super) fn ipv4(s: &str, what: &str) -> Result<Ipv4Addr, Invalid> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        let hint = if s.contains('/') {
            "write the address without a prefix length"
        } else {
            "write a dotted IPv4 address such as \"10.0.0.9\""
        };
        Invalid::new(format!("{what} \"{s}\" is not an IPv4 address")).hint(hint)
    })
}

pub(super) fn cidr(s: &str, what: &str) -> Result<Ipv4Net, Invalid> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        Invalid::new(format!("{what} \"{s}\" is not an IPv4 CIDR"))
            .hint("write a network such as \"10.0.0.0/24\"")
    })?;
    if net.trunc() != net {
        return Err(Invalid::new(format!("{what} \"{s}\" has host bits set"))
            .hint(format!("did you mean \"{}\"?", net.trunc())));
    }
    Ok(net)
}

pub(super) fn check_host_in(
    c: &mut Collector<'_>,
    key: &KeyPath,
    what: &str,
    a: Ipv4Addr,
    net: Ipv4Net,
) {
    if !net.contains(&a) {
        c.error(
            key,
            format!("{what} {a} is outside the cluster network {net}"),
            "every node address, the VIP and the gateway must be inside [cluster] network",
        );
    } else if net.prefix_len() < 31 && (a == net.network() || a == net.broadcast()) {
        c.error(
            key,
            format!(
                "{what} {a} is the network's {} address",
                if a == net.network() {
                    "network"
                } else {
                    "broadcast"
                }
            ),
            "choose a host address",
        );
    }
}

/// What an input path the profile names must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    File,
    Dir,
}

pub(super) fn existing(
    dir: &Path,
    rel: &str,
    key: &KeyPath,
    what: &str,
    kind: Kind,
    c: &mut Collector<'_>,
) -> PathBuf {
    let p = dir.join(rel);
    match std::fs::metadata(&p) {
        Err(_) => c.error(
            key,
            format!("{what} \"{}\" does not exist", p.display()),
            "paths are relative to the profile's directory",
        ),
        Ok(m) if kind == Kind::Dir && !m.is_dir() => c.error(
            key,
            format!("{what} \"{}\" is not a directory", p.display()),
            "an overlay is a directory laid over the system image; give the directory",
        ),
        Ok(m) if kind == Kind::File && m.is_dir() => c.error(
            key,
            format!("{what} \"{}\" is a directory, not a file", p.display()),
            "give the file itself",
        ),
        Ok(_) => {}
    }
    p
}

/// Values that must be unique across a list (hostnames, addresses, pool names...): each
/// later copy is reported at its own key, naming where the value first appeared.
pub(super) struct Unique<T> {
    what: &'static str,
    hint: &'static str,
    seen: HashMap<T, KeyPath>,
}

impl<T: Eq + Hash> Unique<T> {
    pub fn new(what: &'static str, hint: &'static str) -> Self {
        Self {
            what,
            hint,
            seen: HashMap::new(),
        }
    }

    /// Record `value` found at `key`; false (and a reported problem) if it was seen before.
    pub fn insert(
        &mut self,
        c: &mut Collector<'_>,
        key: &KeyPath,
        value: T,
        shown: impl Display,
    ) -> bool {
        if let Some(first) = self.seen.get(&value) {
            c.error(
                key,
                format!("duplicate {} {shown} (also {first})", self.what),
                self.hint,
            );
            return false;
        }
        self.seen.insert(value, key.clone());
        true
    }
}
