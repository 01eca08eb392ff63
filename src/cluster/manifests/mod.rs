//! First-boot manifests for K3s's auto-deploy directory, identical on every server.
//!
//! One file per concern (K3s turns each file into an Addon named after it, retried every
//! 15 s until it applies): NFS storage, MetalLB, its address pools (separate, because their
//! CRDs exist only once the chart is installed), WordPress + MySQL, the user's charts and
//! the user's own manifests copied verbatim. Versions live in [`versions`].

pub mod metallb;
pub mod nfs;
pub mod user;
pub mod versions;
pub mod wordpress;

use std::fmt::Write;

use anyhow::Result;

use super::secrets::Secrets;
use super::yaml::{block, q};
use crate::profile::Profile;

/// A rendered manifest: file name under `bakery/manifests/`, content, holds secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub name: String,
    pub content: Vec<u8>,
    pub secret: bool,
}

/// The file names, in order, a profile's servers carry (must match the plan).
pub fn names(p: &Profile) -> Vec<(String, bool)> {
    let mut v = Vec::new();
    if p.nfs.is_some() {
        v.push(("bakery-nfs.yaml".to_owned(), false));
    }
    if !p.pools.is_empty() {
        v.push(("bakery-metallb.yaml".to_owned(), false));
        v.push(("bakery-metallb-pools.yaml".to_owned(), false));
    }
    if p.wordpress.is_some() {
        v.push(("bakery-wordpress.yaml".to_owned(), true));
    }
    if !p.charts.is_empty() {
        v.push(("bakery-charts.yaml".to_owned(), false));
    }
    for m in &p.manifests {
        v.push((user::file_name(m), false));
    }
    v
}

/// Render every manifest of the profile.
pub fn render(p: &Profile, secrets: &Secrets) -> Result<Vec<Manifest>> {
    let mut v = Vec::new();
    let mut add = |name: &str, content: String, secret: bool| {
        v.push(Manifest {
            name: name.to_owned(),
            content: content.into_bytes(),
            secret,
        })
    };
    if let Some(nfs) = &p.nfs {
        add("bakery-nfs.yaml", nfs::render(p, nfs), false);
    }
    if !p.pools.is_empty() {
        add("bakery-metallb.yaml", metallb::chart(), false);
        add("bakery-metallb-pools.yaml", metallb::pools(p), false);
    }
    if let Some(wp) = &p.wordpress {
        add(
            "bakery-wordpress.yaml",
            wordpress::render(p, wp, secrets)?,
            true,
        );
    }
    if !p.charts.is_empty() {
        add("bakery-charts.yaml", user::charts(p)?, false);
    }
    for m in user::copy(p)? {
        v.push(m);
    }
    Ok(v)
}

/// A K3s `HelmChart` (helm.cattle.io/v1) in kube-system.
#[derive(Debug)]
pub struct HelmChart<'a> {
    pub name: &'a str,
    pub chart: &'a str,
    pub repo: Option<&'a str>,
    pub version: &'a str,
    pub target_namespace: &'a str,
    pub values: Option<&'a str>,
}

impl HelmChart<'_> {
    pub fn yaml(&self) -> String {
        let mut s = String::from("apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata:\n");
        let _ = writeln!(
            s,
            "  name: {}\n  namespace: kube-system\nspec:",
            q(self.name)
        );
        if let Some(r) = self.repo {
            let _ = writeln!(s, "  repo: {}", q(r));
        }
        let _ = writeln!(s, "  chart: {}", q(self.chart));
        let _ = writeln!(s, "  version: {}", q(self.version));
        let _ = writeln!(s, "  targetNamespace: {}", q(self.target_namespace));
        s.push_str("  createNamespace: true\n");
        if let Some(v) = self.values.filter(|v| !v.trim().is_empty()) {
            // An explicit indentation indicator (content at 2 + 2 columns): a values
            // file whose first line is indented would otherwise set the indentation.
            s.push_str("  valuesContent: |2-\n");
            s.push_str(&block(v.trim_end(), 4));
        }
        s
    }
}
