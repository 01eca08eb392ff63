//! `[storage.nfs]`: who serves the share (a node of the cluster or an external server),
//! the export path, the optional disk label and the StorageClass.

use std::net::IpAddr;

use super::grammar;
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::{Addressing, Nfs, NfsServer, Node};
use crate::profile::raw::RawNfs;
use crate::profile::storage_rules;
use crate::profile::types::Label;

pub(super) fn nfs(
    raw: &RawNfs,
    nodes: &[(usize, Node)],
    key: &KeyPath,
    c: &mut Collector<'_>,
) -> Option<Nfs> {
    let looks_external = raw.server.parse::<IpAddr>().is_ok() || raw.server.contains('.');
    let server = if looks_external {
        c.check(&key.key("server"), grammar::host(&raw.server, "NFS server"));
        NfsServer::External(raw.server.clone())
    } else if let Some((_, n)) = nodes.iter().find(|(_, n)| n.name.as_str() == raw.server) {
        if n.address == Addressing::Dhcp {
            c.error(
                &key.key("server"),
                format!("NFS server node \"{}\" has no static address", raw.server),
                "clients mount the share by address: give that node a static address",
            );
        }
        NfsServer::Node(n.name.clone())
    } else {
        let mut names: Vec<&str> = nodes.iter().map(|(_, n)| n.name.as_str()).collect();
        names.dedup();
        c.error(
            &key.key("server"),
            format!(
                "NFS server \"{}\" is not a node of this cluster",
                raw.server
            ),
            &format!(
                "name one of the nodes ({}) or give an external server's address",
                names.join(", ")
            ),
        );
        return None;
    };
    // The grammar of /etc/exports first; then what a serving node must not export.
    let path_ok = c
        .check(&key.key("path"), grammar::export_path(&raw.path))
        .is_some();
    let on_node = matches!(server, NfsServer::Node(_));
    if let (true, Err((m, h))) = (path_ok, storage_rules::export_path(&raw.path, on_node)) {
        c.error(&key.key("path"), m, &h);
    }
    if raw.disk.is_some() && matches!(server, NfsServer::External(_)) {
        c.error(
            &key.key("disk"),
            "disk applies only when a node of the cluster serves NFS",
            "remove disk, or name a node as server",
        );
    }
    if let Some(Err((m, h))) = raw.disk.as_deref().map(storage_rules::disk) {
        c.error(&key.key("disk"), m, &h);
    }
    for (i, o) in raw.mount_options.iter().flatten().enumerate() {
        if let Err((m, h)) = storage_rules::mount_option(o) {
            c.error(&key.key("mount-options").index(i), m, &h);
        }
    }
    let storage_class = raw.storage_class.clone().unwrap_or_else(|| "nfs".into());
    c.check(&key.key("storage-class"), Label::parse(&storage_class));
    Some(Nfs {
        server,
        path: raw.path.clone(),
        disk: raw.disk.clone(),
        mount_options: raw
            .mount_options
            .clone()
            .unwrap_or_else(|| vec!["nfsvers=4.1".into(), "hard".into()]),
        storage_class,
    })
}
