//! NFS storage: the csi-driver-nfs chart and the default StorageClass pointing at the
//! profile's NFS server (a node's static address or an external NAS).

use std::fmt::Write;

use super::HelmChart;
use super::versions::{CSI_DRIVER_NFS_CHART, CSI_DRIVER_NFS_REPO, CSI_DRIVER_NFS_VERSION};
use crate::cluster::yaml::{list, q};
use crate::profile::{Nfs, NfsServer, Profile};

/// The address clients mount from.
pub fn server_address(p: &Profile, nfs: &Nfs) -> String {
    match &nfs.server {
        NfsServer::External(a) => a.clone(),
        NfsServer::Node(n) => p
            .node(n.as_str())
            .and_then(|n| n.address.ip())
            .map_or_else(|| n.to_string(), |a| a.to_string()),
    }
}

pub fn render(p: &Profile, nfs: &Nfs) -> String {
    let mut s =
        String::from("# bakery-image: NFS storage (csi-driver-nfs + default StorageClass).\n");
    s.push_str(
        &HelmChart {
            name: "csi-driver-nfs",
            chart: CSI_DRIVER_NFS_CHART,
            repo: Some(CSI_DRIVER_NFS_REPO),
            version: CSI_DRIVER_NFS_VERSION,
            target_namespace: "kube-system",
            values: None,
        }
        .yaml(),
    );
    s.push_str("---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n");
    let _ = writeln!(s, "  name: {}", q(&nfs.storage_class));
    s.push_str("  annotations:\n    storageclass.kubernetes.io/is-default-class: \"true\"\n");
    s.push_str("provisioner: nfs.csi.k8s.io\nparameters:\n");
    let _ = writeln!(s, "  server: {}", q(&server_address(p, nfs)));
    let _ = writeln!(s, "  share: {}", q(&nfs.path));
    s.push_str("reclaimPolicy: Delete\nvolumeBindingMode: Immediate\nallowVolumeExpansion: true\n");
    if !nfs.mount_options.is_empty() {
        s.push_str("mountOptions:\n");
        s.push_str(&list(&nfs.mount_options, 2));
    }
    s
}
