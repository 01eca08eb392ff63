//! `[sources]`: every part is a local path or a URL pinned by sha256; overlays are
//! directories next to the profile.

use std::path::Path;

use super::{Kind, existing, grammar};
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::{Source, Sources};
use crate::profile::raw::{RawSource, RawSources};
use crate::profile::types::Sha256;

fn source(raw: &RawSource, dir: &Path, key: &KeyPath, c: &mut Collector<'_>) -> Option<Source> {
    let sha256 = raw
        .sha256
        .as_ref()
        .and_then(|s| c.check(&key.key("sha256"), Sha256::parse(s)));
    match (&raw.path, &raw.url) {
        (Some(_), Some(_)) => {
            c.error(
                key,
                "a source has both path and url",
                "give either path = \"...\" or url = \"...\" with sha256",
            );
            None
        }
        (None, None) => {
            c.error(
                key,
                "a source needs path or url",
                "give path = \"...\" or url = \"...\" with sha256 = \"...\"",
            );
            None
        }
        (Some(p), None) => Some(Source::Path {
            path: dir.join(p),
            sha256,
        }),
        (None, Some(u)) => {
            c.check(
                &key.key("url"),
                grammar::url(u, "source", &["https://", "http://", "file://"]).map_err(|e| {
                    e.hint("use https://... or file:///..., or path = \"...\" for a local file")
                }),
            );
            if raw.sha256.is_none() {
                c.error(
                    key,
                    format!("url \"{u}\" has no sha256"),
                    "pin every download: add sha256 = \"<64 hex digits>\" (sha256sum of the file)",
                );
            }
            Some(Source::Url {
                url: u.clone(),
                sha256: sha256?,
            })
        }
    }
}

pub(super) fn sources(
    raw: &RawSources,
    dir: &Path,
    key: &KeyPath,
    c: &mut Collector<'_>,
) -> Option<Sources> {
    let before = c.diags.len();
    let rootfs = raw
        .rootfs
        .as_ref()
        .and_then(|s| source(s, dir, &key.key("rootfs"), c));
    let debian = raw.debian.as_ref().and_then(|d| {
        crate::profile::debian::debian(d, raw.rootfs.is_some(), dir, &key.key("debian"), c)
    });
    let k3s = raw
        .k3s
        .as_ref()
        .and_then(|s| source(s, dir, &key.key("k3s"), c));
    let packages = raw
        .packages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| source(s, dir, &key.key("packages").index(i), c))
        .collect();
    let airgap_images = raw
        .airgap_images
        .iter()
        .enumerate()
        .filter_map(|(i, s)| source(s, dir, &key.key("airgap-images").index(i), c))
        .collect();
    let overlays = raw
        .overlays
        .iter()
        .enumerate()
        .map(|(i, o)| {
            existing(
                dir,
                o,
                &key.key("overlays").index(i),
                "overlay directory",
                Kind::Dir,
                c,
            )
        })
        .collect();
    (c.diags.len() == before).then_some(Sources {
        rootfs,
        debian,
        packages,
        k3s,
        airgap_images,
        overlays,
    })
}
