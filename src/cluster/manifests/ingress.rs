//! The ingress controller: K3s's packaged Traefik (enabled unless `[ingress] controller =
//! "none"`), its Service pinned to the profile's MetalLB address through a
//! `HelmChartConfig` (helm.cattle.io/v1, which K3s merges into its own Traefik chart), and
//! the Ingress that routes `apps.wordpress.host` to WordPress.

use std::fmt::Write;

use crate::cluster::yaml::q;
use crate::profile::{Profile, Wordpress};

/// The IngressClass K3s's Traefik registers.
pub const INGRESS_CLASS: &str = "traefik";

/// `bakery-ingress.yaml`: Traefik's values (its LoadBalancer address).
pub fn traefik_config(p: &Profile) -> String {
    let mut s = String::from("# bakery-image: K3s's Traefik on a fixed MetalLB address.\n");
    s.push_str(
        "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: traefik\n  \
         namespace: kube-system\nspec:\n  valuesContent: |-\n    service:\n      annotations:\n",
    );
    if let Some(a) = p.ingress.address {
        let a = q(&a.to_string());
        let _ = writeln!(s, "        metallb.io/loadBalancerIPs: {a}");
        let _ = writeln!(s, "        metallb.universe.tf/loadBalancerIPs: {a}");
    }
    s
}

/// The Ingress of WordPress (appended to the WordPress manifest), when it has a host.
pub fn wordpress_ingress(wp: &Wordpress, namespace: &str) -> Option<String> {
    let host = wp.host.as_deref()?;
    let mut s = String::from(
        "---\napiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: wordpress\n",
    );
    let _ = writeln!(s, "  namespace: {namespace}\n  labels:\n    app: wordpress");
    let _ = writeln!(s, "spec:\n  ingressClassName: {INGRESS_CLASS}\n  rules:");
    let _ = writeln!(s, "    - host: {}", q(host));
    s.push_str(
        "      http:\n        paths:\n          - path: /\n            pathType: Prefix\n            \
         backend:\n              service:\n                name: wordpress\n                port:\n                  number: 80\n",
    );
    Some(s)
}
