//! Human-readable reports on stdout (`check`). Data for machines goes out as JSON instead.

use std::fmt::Write as _;

use crate::plan::{Join, Plan};
use crate::profile::{Addressing, Profile, Source};

fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .enumerate()
            .map(|(i, s)| format!("{s:<w$}", w = widths[i]))
            .collect();
        let _ = writeln!(out, "  {}", line.join("  ").trim_end());
    }
    out
}

/// The summary printed by `bakery-image check`.
pub fn check(p: &Profile, plan: &Plan) -> String {
    let mut o = String::new();
    let q = &plan.quorum;
    let tolerance = match (q.servers, q.tolerated_failures) {
        (1, _) => "a single server: no high availability".to_string(),
        (_, 1) => "tolerates 1 server failure".to_string(),
        (_, n) => format!("tolerates {n} server failures"),
    };
    let _ = writeln!(o, "profile {}: valid", p.path.display());
    let _ = writeln!(
        o,
        "cluster {} on {} ({} board)",
        plan.cluster,
        plan.network,
        plan.board.name()
    );
    let _ = writeln!(
        o,
        "  {} server{}, {} agent{}: {tolerance}",
        q.servers,
        if q.servers == 1 { "" } else { "s" },
        q.agents,
        if q.agents == 1 { "" } else { "s" }
    );
    let _ = writeln!(
        o,
        "  API VIP {} (keepalived on the servers), kubeconfig server https://{}:6443",
        plan.vip, plan.registration
    );
    if let Some(lb) = &plan.loadbalancer {
        let _ = writeln!(
            o,
            "  load balancer {} ({}{}): HAProxy to {}; the agents register through it{}",
            lb.address,
            lb.nodes.join(" and "),
            if lb.shared {
                ", shared through keepalived"
            } else {
                ""
            },
            lb.backends.join(", "),
            lb.ingress
                .map(|a| format!("; ports 80, 443 to the ingress {a}"))
                .unwrap_or_default()
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "nodes:");
    let mut rows = vec![
        ["NODE", "ROLE", "ADDRESS", "WORKLOADS", "JOINS"]
            .map(String::from)
            .to_vec(),
    ];
    for n in &plan.nodes {
        let addr = match n.address {
            Addressing::Static(a) => a.to_string(),
            Addressing::Dhcp => "dhcp".into(),
        };
        let join = match &n.join {
            Join::Initialize { peers } if peers.is_empty() => "initialises the cluster".to_string(),
            Join::Initialize { peers } => format!(
                "initialises the cluster (joins {} instead if one answers)",
                peers.join(" or ")
            ),
            Join::Server { url } => format!("server {url}"),
            Join::Agent { url } if plan.loadbalancer.is_some() => {
                format!("agent {url} (load balancer)")
            }
            Join::Agent { url } => format!("agent {url} (VIP)"),
            Join::LoadBalancer { .. } => "runs no K3s: forwards the API".to_string(),
        };
        rows.push(vec![
            n.name.clone(),
            n.role.to_string(),
            addr,
            if n.workloads { "yes" } else { "no" }.into(),
            join,
        ]);
    }
    o.push_str(&table(&rows));
    let order: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|n| matches!(n.join, Join::Initialize { .. }))
        .chain(
            plan.nodes
                .iter()
                .filter(|n| matches!(n.join, Join::Server { .. })),
        )
        .map(|n| n.name.as_str())
        .collect();
    let agents: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|n| matches!(n.join, Join::Agent { .. }))
        .map(|n| n.name.as_str())
        .collect();
    let _ = write!(o, "  join order: {}", order.join(" -> "));
    if !agents.is_empty() {
        let via = if plan.loadbalancer.is_some() {
            "the load balancer"
        } else {
            "the VIP"
        };
        let _ = write!(o, "; then agents {} through {via}", agents.join(", "));
    }
    let _ = writeln!(o);
    let _ = writeln!(o);
    if !plan.pools.is_empty() {
        let _ = writeln!(o, "metallb pools:");
        for pl in &plan.pools {
            let _ = writeln!(o, "  {}: {}", pl.name, pl.addresses.join(", "));
        }
    }
    if let Some(n) = &p.nfs {
        let server = match &n.server {
            crate::profile::NfsServer::Node(name) => format!("node {name}"),
            crate::profile::NfsServer::External(a) => format!("external {a}"),
        };
        let disk = n
            .disk
            .as_ref()
            .map(|d| format!(" on disk \"{d}\""))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "storage: NFS {}{disk} from {server}, StorageClass \"{}\" ({})",
            n.path,
            n.storage_class,
            n.mount_options.join(",")
        );
    }
    if let Some(w) = &p.wordpress {
        let mysql = w
            .mysql_node
            .as_ref()
            .map(|m| format!("pinned to {m}"))
            .unwrap_or_else(|| "scheduled anywhere".into());
        let addr = match (&w.host, w.address) {
            (Some(h), _) => format!(
                "host {h} through the ingress ({})",
                p.ingress.address.map_or_else(
                    || "Traefik, address from the pool".into(),
                    |a| format!("Traefik at {a}")
                )
            ),
            (None, Some(a)) => format!("address {a}"),
            (None, None) => "address from the pool".into(),
        };
        let _ = writeln!(
            o,
            "wordpress: {} replica{}, MySQL {mysql}, {addr}",
            w.replicas,
            if w.replicas == 1 { "" } else { "s" }
        );
    }
    let _ = writeln!(
        o,
        "apps: {}",
        if plan.apps.is_empty() {
            "none".to_string()
        } else {
            plan.apps.join(", ")
        }
    );
    let _ = writeln!(o);
    let _ = writeln!(o, "artifacts:");
    if plan.artifacts.is_empty() {
        let _ = writeln!(o, "  none");
    }
    let mut rows = Vec::new();
    for a in &plan.artifacts {
        let (what, digest) = match &a.source {
            Source::Path { path, sha256 } => (
                path.display().to_string(),
                sha256
                    .as_ref()
                    .map_or("(not pinned)".to_string(), |s| s.to_string()),
            ),
            Source::Url { url, sha256 } => (url.clone(), sha256.to_string()),
        };
        rows.push(vec![a.role.clone(), what, format!("sha256 {digest}")]);
    }
    o.push_str(&table(&rows));
    if let Some(d) = &p.sources.debian {
        let kernel = d.kernel.as_ref().map_or_else(
            || {
                let k = crate::debian::select::board_packages(p.image.board).0;
                if p.image.pi5 {
                    format!("{k}/{}-backports (image.pi5)", d.suites[0])
                } else {
                    format!("{k} (the board's)")
                }
            },
            |k| match &k.suite {
                Some(s) => format!("{}/{s}", k.name),
                None => k.name.clone(),
            },
        );
        let mirror = d
            .mirror
            .as_deref()
            .unwrap_or("none: BAKERY_DEBIAN_MIRROR gives it");
        let _ = writeln!(
            o,
            "  base: Debian {} ({}){}, kernel {kernel}\n  mirror: {mirror}",
            d.suites.join(" + "),
            d.components.join(", "),
            match d.packages.len() {
                0 => String::new(),
                n => format!(", the runtime's packages + {n} of the profile"),
            },
        );
        let lock = crate::debian::lock::path_for(&p.path);
        let state = if lock.is_file() {
            "the build fetches exactly its packages"
        } else {
            "absent: the first build resolves the set and writes it"
        };
        let _ = writeln!(o, "  lock: {} ({state})", lock.display());
    }
    let _ = writeln!(o);
    let boot = plan.nodes.first().map(|n| &n.boot_partition);
    let _ = writeln!(o, "images ({}):", p.image.partition_table_name());
    for n in &plan.nodes {
        let secrets = n.files.iter().filter(|f| f.secret).count();
        let _ = writeln!(
            o,
            "  {}: {} files on the boot partition ({secrets} secret), FAT volume id {}, boots {}",
            n.output,
            n.files.len(),
            n.fat_volume_id,
            n.boots_on.join(", ")
        );
    }
    if let Some(b) = boot {
        let system = p
            .image
            .system_size
            .map_or("sized to the squashfs".to_string(), |s| s.to_string());
        let _ = writeln!(
            o,
            "  layout: p1 {} FAT32 at 1MiB, p2 system {system} (squashfs {}), p3 data {} (grows on first boot)",
            crate::profile::ByteSize(b.size),
            format!("{:?}", p.image.system_compression).to_lowercase(),
            p.image.data_size
        );
    }
    let _ = writeln!(o, "  secrets: {}", p.secrets_dir.display());
    o
}
