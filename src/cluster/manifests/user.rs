//! The user's own manifests (copied verbatim) and charts (as K3s HelmChart resources with
//! `valuesContent` taken from the chart's values file). File names were checked against
//! K3s's add-on naming rule when the profile was validated.

use std::path::Path;

use anyhow::{Context, Result};

use super::{HelmChart, Manifest};
use crate::profile::Profile;

/// The file name a user manifest gets under `bakery/manifests/`.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn copy(p: &Profile) -> Result<Vec<Manifest>> {
    p.manifests
        .iter()
        .map(|m| {
            Ok(Manifest {
                name: file_name(m),
                content: fs_err::read(m).with_context(|| {
                    format!("reading manifest {} named in the profile", m.display())
                })?,
                secret: false,
            })
        })
        .collect()
}

pub fn charts(p: &Profile) -> Result<String> {
    let mut s = String::from("# bakery-image: charts from the profile.\n");
    for (i, c) in p.charts.iter().enumerate() {
        let values = match &c.values_file {
            Some(f) => Some(
                fs_err::read_to_string(f)
                    .with_context(|| format!("reading the values file of chart {}", c.name))?,
            ),
            None => None,
        };
        if i > 0 {
            s.push_str("---\n");
        }
        s.push_str(
            &HelmChart {
                name: c.name.as_str(),
                chart: &c.chart,
                repo: c.repo.as_deref(),
                version: &c.version,
                target_namespace: &c.namespace,
                values: values.as_deref(),
            }
            .yaml(),
        );
    }
    Ok(s)
}
