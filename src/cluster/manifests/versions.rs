//! Every chart version and image tag the first-boot manifests use, pinned in one place.
//!
//! Bump here (and re-run the snapshot tests) to move the cluster to newer components.

/// The Kubernetes minor of the K3s release the example profiles pin (v1.36.4+k3s1); the
/// manifests are validated against it.
pub const KUBERNETES_VERSION: &str = "1.36.0";

/// csi-driver-nfs Helm chart (kubernetes-csi), provisioner `nfs.csi.k8s.io`.
pub const CSI_DRIVER_NFS_REPO: &str =
    "https://raw.githubusercontent.com/kubernetes-csi/csi-driver-nfs/master/charts";
pub const CSI_DRIVER_NFS_CHART: &str = "csi-driver-nfs";
pub const CSI_DRIVER_NFS_VERSION: &str = "4.12.1";

/// MetalLB Helm chart (L2 mode only: FRR disabled).
pub const METALLB_REPO: &str = "https://metallb.github.io/metallb";
pub const METALLB_CHART: &str = "metallb";
pub const METALLB_VERSION: &str = "0.15.3";

/// Application images (multi-arch: arm64 and amd64).
pub const MYSQL_IMAGE: &str = "mysql:8.4";
pub const WORDPRESS_IMAGE: &str = "wordpress:6.8-apache";
