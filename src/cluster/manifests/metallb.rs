//! MetalLB in L2 mode: the chart (FRR off) and, in a separate file, the address pools
//! and their L2Advertisement (metallb.io/v1beta1; K3s retries them until the CRDs exist).

use std::fmt::Write;

use super::HelmChart;
use super::versions::{METALLB_CHART, METALLB_REPO, METALLB_VERSION};
use crate::cluster::yaml::{list, q};
use crate::profile::Profile;

pub const NAMESPACE: &str = "metallb-system";

pub fn chart() -> String {
    let mut s = String::from("# bakery-image: MetalLB (L2 only).\n");
    s.push_str(
        &HelmChart {
            name: "metallb",
            chart: METALLB_CHART,
            repo: Some(METALLB_REPO),
            version: METALLB_VERSION,
            target_namespace: NAMESPACE,
            values: Some("speaker:\n  frr:\n    enabled: false\n"),
        }
        .yaml(),
    );
    s
}

pub fn pools(p: &Profile) -> String {
    let mut s = String::from("# bakery-image: MetalLB address pools, announced on the LAN (L2).\n");
    let mut first = true;
    for pool in &p.pools {
        if !first {
            s.push_str("---\n");
        }
        first = false;
        s.push_str("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n");
        let _ = writeln!(
            s,
            "  name: {}\n  namespace: {NAMESPACE}\nspec:",
            q(pool.name.as_str())
        );
        s.push_str("  addresses:\n");
        s.push_str(&list(pool.ranges.iter().map(|r| range(*r)), 4));
    }
    s.push_str("---\napiVersion: metallb.io/v1beta1\nkind: L2Advertisement\nmetadata:\n");
    let _ = writeln!(
        s,
        "  name: \"bakery\"\n  namespace: {NAMESPACE}\nspec:\n  ipAddressPools:"
    );
    s.push_str(&list(p.pools.iter().map(|pl| pl.name.as_str()), 4));
    s
}

/// MetalLB wants "a-b" ranges or CIDRs; a single address is "a/32".
fn range(r: crate::profile::IpRange) -> String {
    if r.start == r.end {
        format!("{}/32", r.start)
    } else {
        format!("{}-{}", r.start, r.end)
    }
}
