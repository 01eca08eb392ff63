//! WordPress + MySQL: namespace, the password Secret from the secrets state, MySQL as a
//! single Recreate replica (optionally pinned to a node) and WordPress with N replicas,
//! both on the NFS StorageClass; WordPress is exposed by a LoadBalancer Service, or with
//! `host` by a ClusterIP Service behind an Ingress.
//!
//! Based on the kubernetes.io WordPress/MySQL tutorial, rendered as plain objects (K3s's
//! manifest directory does not run kustomize). More than one WordPress replica shares a
//! ReadWriteMany volume and rolls; one replica uses ReadWriteOnce and Recreate.

use std::fmt::Write;

use anyhow::Result;
use base64::Engine;

use super::versions::{MYSQL_IMAGE, WORDPRESS_IMAGE};
use crate::cluster::k3s::CONTROL_PLANE_TAINT;
use crate::cluster::secrets::Secrets;
use crate::cluster::yaml::q;
use crate::profile::{Profile, Role, Wordpress};

pub const NAMESPACE: &str = "wordpress";

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn pvc(s: &mut String, name: &str, mode: &str, size: u64, class: Option<&str>) {
    s.push_str("---\napiVersion: v1\nkind: PersistentVolumeClaim\nmetadata:\n");
    let _ = writeln!(
        s,
        "  name: {name}\n  namespace: {NAMESPACE}\n  labels:\n    app: wordpress"
    );
    let _ = writeln!(s, "spec:\n  accessModes:\n    - {mode}");
    if let Some(c) = class {
        let _ = writeln!(s, "  storageClassName: {}", q(c));
    }
    let _ = writeln!(
        s,
        "  resources:\n    requests:\n      storage: {}",
        quantity(size)
    );
}

/// Bytes as a Kubernetes quantity ("20Gi").
fn quantity(b: u64) -> String {
    const G: u64 = 1 << 30;
    const M: u64 = 1 << 20;
    if b.is_multiple_of(G) {
        format!("{}Gi", b / G)
    } else if b.is_multiple_of(M) {
        format!("{}Mi", b / M)
    } else {
        b.to_string()
    }
}

pub fn render(p: &Profile, wp: &Wordpress, secrets: &Secrets) -> Result<String> {
    let class = p.nfs.as_ref().map(|n| n.storage_class.as_str());
    let shared = wp.replicas > 1;
    let mut s = String::from("# bakery-image: WordPress with MySQL.\n");
    let _ = writeln!(
        s,
        "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {NAMESPACE}"
    );
    s.push_str("---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: mysql-pass\n");
    let _ = writeln!(s, "  namespace: {NAMESPACE}\ntype: Opaque\ndata:");
    let _ = writeln!(s, "  password: {}", b64(secrets.mysql_password()?));
    let _ = writeln!(
        s,
        "  root-password: {}",
        b64(secrets.mysql_root_password()?)
    );

    // MySQL
    s.push_str("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: wordpress-mysql\n");
    let _ = writeln!(s, "  namespace: {NAMESPACE}\n  labels:\n    app: wordpress");
    s.push_str(
        "spec:\n  ports:\n    - port: 3306\n  selector:\n    app: wordpress\n    tier: mysql\n  clusterIP: None\n",
    );
    pvc(
        &mut s,
        "mysql-pv-claim",
        "ReadWriteOnce",
        wp.mysql_volume.bytes(),
        class,
    );
    s.push_str("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: wordpress-mysql\n");
    let _ = writeln!(s, "  namespace: {NAMESPACE}\n  labels:\n    app: wordpress");
    s.push_str(
        "spec:\n  replicas: 1\n  selector:\n    matchLabels:\n      app: wordpress\n      tier: mysql\n  \
         strategy:\n    type: Recreate\n  template:\n    metadata:\n      labels:\n        app: wordpress\n        \
         tier: mysql\n    spec:\n",
    );
    if let Some(n) = &wp.mysql_node {
        let _ = writeln!(
            s,
            "      nodeSelector:\n        kubernetes.io/hostname: {}",
            q(n.as_str())
        );
        if p.node(n.as_str())
            .is_some_and(|n| n.role == Role::Server && !n.workloads)
        {
            let key = CONTROL_PLANE_TAINT.split('=').next().unwrap_or_default();
            let _ = writeln!(
                s,
                "      tolerations:\n        - key: {}\n          operator: Exists\n          effect: NoSchedule",
                q(key)
            );
        }
    }
    let _ = writeln!(
        s,
        "      containers:\n        - name: mysql\n          image: {}",
        q(MYSQL_IMAGE)
    );
    s.push_str(
        "          env:\n            - name: MYSQL_ROOT_PASSWORD\n              valueFrom:\n                \
         secretKeyRef:\n                  name: mysql-pass\n                  key: root-password\n            \
         - name: MYSQL_DATABASE\n              value: wordpress\n            - name: MYSQL_USER\n              \
         value: wordpress\n            - name: MYSQL_PASSWORD\n              valueFrom:\n                \
         secretKeyRef:\n                  name: mysql-pass\n                  key: password\n          \
         ports:\n            - containerPort: 3306\n              name: mysql\n          volumeMounts:\n            \
         - name: mysql-persistent-storage\n              mountPath: /var/lib/mysql\n      volumes:\n        \
         - name: mysql-persistent-storage\n          persistentVolumeClaim:\n            claimName: mysql-pv-claim\n",
    );

    // WordPress
    s.push_str("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: wordpress\n");
    let _ = writeln!(s, "  namespace: {NAMESPACE}\n  labels:\n    app: wordpress");
    if let Some(a) = wp.address {
        let _ = writeln!(
            s,
            "  annotations:\n    metallb.io/loadBalancerIPs: {}\n    metallb.universe.tf/loadBalancerIPs: {}",
            q(&a.to_string()),
            q(&a.to_string())
        );
    }
    // Behind the ingress (a host name) WordPress needs no address of its own.
    let kind = if wp.host.is_some() {
        "ClusterIP"
    } else {
        "LoadBalancer"
    };
    let _ = writeln!(
        s,
        "spec:\n  type: {kind}\n  ports:\n    - port: 80\n      targetPort: 80\n  selector:\n    \
         app: wordpress\n    tier: frontend"
    );
    let mode = if shared {
        "ReadWriteMany"
    } else {
        "ReadWriteOnce"
    };
    pvc(
        &mut s,
        "wp-pv-claim",
        mode,
        wp.wordpress_volume.bytes(),
        class,
    );
    s.push_str("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: wordpress\n");
    let _ = writeln!(s, "  namespace: {NAMESPACE}\n  labels:\n    app: wordpress");
    let _ = writeln!(
        s,
        "spec:\n  replicas: {}\n  selector:\n    matchLabels:\n      app: wordpress\n      tier: frontend\n  \
         strategy:\n    type: {}",
        wp.replicas,
        if shared { "RollingUpdate" } else { "Recreate" }
    );
    s.push_str(
        "  template:\n    metadata:\n      labels:\n        app: wordpress\n        tier: frontend\n    spec:\n      \
         containers:\n        - name: wordpress\n",
    );
    let _ = writeln!(s, "          image: {}", q(WORDPRESS_IMAGE));
    s.push_str(
        "          env:\n            - name: WORDPRESS_DB_HOST\n              value: wordpress-mysql\n            \
         - name: WORDPRESS_DB_USER\n              value: wordpress\n            - name: WORDPRESS_DB_PASSWORD\n              \
         valueFrom:\n                secretKeyRef:\n                  name: mysql-pass\n                  key: password\n          \
         ports:\n            - containerPort: 80\n              name: wordpress\n          volumeMounts:\n            \
         - name: wordpress-persistent-storage\n              mountPath: /var/www/html\n      volumes:\n        \
         - name: wordpress-persistent-storage\n          persistentVolumeClaim:\n            claimName: wp-pv-claim\n",
    );
    if let Some(i) = super::ingress::wordpress_ingress(wp, NAMESPACE) {
        s.push_str(&i);
    }
    Ok(s)
}
