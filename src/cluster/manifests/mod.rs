//! First-boot manifests for K3s's auto-deploy directory, identical on every server.
//!
//! One file per concern (K3s turns each file into an Addon named after it, retried every
//! 15 s until it applies): NFS storage, MetalLB, its address pools (separate, because their
//! CRDs exist only once the chart is installed), Traefik's address, WordPress + MySQL (and
//! its Ingress), the user's charts and
//! the user's own manifests copied verbatim. Versions live in [`versions`].

pub mod ingress;
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

/// What one of bakery-image's own manifests holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Nfs,
    Metallb,
    MetallbPools,
    Ingress,
    Wordpress,
    Charts,
}

/// bakery-image's own manifests of a profile, in order: (file name, holds secrets, part).
/// The one list both [`names`] (the plan) and [`render`] follow.
fn parts(p: &Profile) -> Vec<(&'static str, bool, Part)> {
    let mut v = Vec::new();
    if p.nfs.is_some() {
        v.push(("bakery-nfs.yaml", false, Part::Nfs));
    }
    if !p.pools.is_empty() {
        v.push(("bakery-metallb.yaml", false, Part::Metallb));
        v.push(("bakery-metallb-pools.yaml", false, Part::MetallbPools));
    }
    if p.ingress.controller == crate::profile::IngressController::Traefik
        && p.ingress.address.is_some()
    {
        v.push(("bakery-ingress.yaml", false, Part::Ingress));
    }
    if p.wordpress.is_some() {
        v.push(("bakery-wordpress.yaml", true, Part::Wordpress));
    }
    if !p.charts.is_empty() {
        v.push(("bakery-charts.yaml", false, Part::Charts));
    }
    v
}

/// The file names, in order, a profile's servers carry (the plan's list).
pub fn names(p: &Profile) -> Vec<(String, bool)> {
    let mut v: Vec<(String, bool)> = parts(p)
        .into_iter()
        .map(|(name, secret, _)| (name.to_owned(), secret))
        .collect();
    for m in &p.manifests {
        v.push((user::file_name(m), false));
    }
    v
}

/// Render every manifest of the profile.
pub fn render(p: &Profile, secrets: &Secrets) -> Result<Vec<Manifest>> {
    let mut v = Vec::new();
    for (name, secret, part) in parts(p) {
        let content = match part {
            Part::Nfs => nfs::render(p, p.nfs.as_ref().expect("listed with NFS")),
            Part::Metallb => metallb::chart(),
            Part::MetallbPools => metallb::pools(p),
            Part::Ingress => ingress::traefik_config(p),
            Part::Wordpress => wordpress::render(
                p,
                p.wordpress.as_ref().expect("listed with WordPress"),
                secrets,
            )?,
            Part::Charts => user::charts(p)?,
        };
        v.push(Manifest {
            name: name.to_owned(),
            content: content.into_bytes(),
            secret,
        });
    }
    v.extend(user::copy(p)?);
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
