//! The plan: everything a build will do, computed from a validated profile with no I/O.
//!
//! For each node: its role, how it joins, the files it carries, its partition layout and
//! output names; for the cluster: quorum, VIP, pools, apps and the artifacts to fetch.
//! `bakery-image check` renders it for people and `plan --json` for machines; the build
//! follows it, so what is shown is what is built.

pub mod contract;
pub mod files;
pub mod ids;
pub mod layout;

use std::net::Ipv4Addr;

use serde::Serialize;

pub use files::PlannedFile;
pub use layout::{Layout, PartRole, Partition};

use crate::profile::{Addressing, Board, ByteSize, IngressController, Profile, Role, Source};

/// Bumped when field names or meanings of `plan --json` change.
pub const PLAN_FORMAT: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub format: u32,
    pub cluster: String,
    pub board: Board,
    pub vip: Ipv4Addr,
    /// The address nodes register through and the kubeconfig names: the load balancer's
    /// when the profile has one, else the VIP.
    pub registration: Ipv4Addr,
    /// The cluster load balancer, if any.
    pub loadbalancer: Option<LoadBalancerPlan>,
    /// "traefik" or "none".
    pub ingress: IngressController,
    pub network: String,
    pub quorum: Quorum,
    pub nodes: Vec<NodePlan>,
    pub pools: Vec<PoolPlan>,
    pub apps: Vec<String>,
    pub artifacts: Vec<Artifact>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Quorum {
    pub servers: usize,
    pub agents: usize,
    /// Servers that may fail with the cluster still writable.
    pub tolerated_failures: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancerPlan {
    pub address: Ipv4Addr,
    /// Two nodes share the address (keepalived).
    pub shared: bool,
    pub nodes: Vec<String>,
    /// The servers HAProxy forwards the API to (`address:6443`).
    pub backends: Vec<String>,
    /// Ports 80 and 443 forwarded to the ingress controller's address.
    pub ingress: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PoolPlan {
    pub name: String,
    pub addresses: Vec<String>,
}

/// How a node becomes part of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Join {
    /// The first server initialises etcd, unless at first boot another server already
    /// answers (a reflashed first server): then it joins one of `peers` instead.
    Initialize { peers: Vec<String> },
    /// Further servers join the first server's static address.
    Server { url: String },
    /// Agents join through the registration address (the load balancer or the VIP) with
    /// the agent token.
    Agent { url: String },
    /// A load balancer runs no K3s: it forwards the API to these servers.
    LoadBalancer { backends: Vec<String> },
}

#[derive(Debug, Clone, Serialize)]
pub struct NodePlan {
    pub name: String,
    pub role: Role,
    pub address: Addressing,
    pub workloads: bool,
    pub join: Join,
    pub files: Vec<PlannedFile>,
    /// The layout, when the system partition size is fixed by the profile; otherwise
    /// sized at build time from the squashfs (partition 1 is laid out the same either way).
    pub layout: Option<Layout>,
    pub boot_partition: Partition,
    pub fat_volume_id: String,
    pub output: String,
    /// The hardware the image boots ("Pi 4/400/CM4", "Pi 5", ...): one system partition,
    /// so the same for every node of a profile.
    pub boots_on: Vec<String>,
}

/// A part to fetch before building.
#[derive(Debug, Clone, Serialize)]
pub struct Artifact {
    /// Where it is used: "rootfs", "packages[0]", "k3s", "airgap-images[0]".
    pub role: String,
    pub source: Source,
}

/// Files from the board definition that go to p1 (kernel, initramfs, firmware, DTBs),
/// as listed in `firmware/<board>.toml` (see [`crate::boot::boards`]).
pub fn board_files(board: Board, table: crate::profile::PartitionTable, pi5: bool) -> Vec<String> {
    crate::boot::BoardDef::get(board).p1_files(table, pi5)
}

/// Compute the plan of a validated profile.
pub fn plan(p: &Profile) -> Plan {
    let cluster = p.cluster.name.as_str();
    let init = p.init_server();
    let init_ip = init.address.ip().expect("servers have static addresses");
    let other_servers: Vec<String> = p
        .servers()
        .filter(|s| s.name != init.name)
        .filter_map(|s| s.address.ip())
        .map(|a| a.to_string())
        .collect();
    let backends: Vec<String> = p
        .servers()
        .filter_map(|s| s.address.ip())
        .map(|a| format!("{a}:6443"))
        .collect();
    let board_files = board_files(p.image.board, p.image.partition_table, p.image.pi5);
    let boots_on = crate::boot::pi5::boots_on(p.image.board, p.image.partition_table, p.image.pi5);
    let nodes = p
        .nodes
        .iter()
        .map(|n| {
            let join = match n.role {
                Role::Server if n.name == init.name => Join::Initialize {
                    peers: other_servers.clone(),
                },
                Role::Server => Join::Server {
                    url: format!("https://{init_ip}:6443"),
                },
                Role::Agent => Join::Agent {
                    url: format!("https://{}:6443", p.registration_address()),
                },
                Role::LoadBalancer => Join::LoadBalancer {
                    backends: backends.clone(),
                },
            };
            let name = n.name.as_str();
            let layout = p.image.system_size.map(|s| {
                Layout::compute(
                    cluster,
                    name,
                    p.image.partition_table,
                    p.image.boot_size,
                    s,
                    p.image.data_size,
                )
            });
            let boot_partition = Layout::compute(
                cluster,
                name,
                p.image.partition_table,
                p.image.boot_size,
                ByteSize(1),
                p.image.data_size,
            )
            .part(PartRole::Boot)
            .clone();
            NodePlan {
                name: name.to_owned(),
                role: n.role,
                address: n.address,
                workloads: n.workloads,
                join,
                files: files::node_files(p, n, &board_files),
                layout,
                boot_partition,
                fat_volume_id: format!("{:08X}", ids::serial32(cluster, name, "fat-volume-id")),
                output: format!("{name}.{}", p.image.format.extension()),
                boots_on: boots_on.clone(),
            }
        })
        .collect();
    let servers = p.servers().count();
    let mut apps = Vec::new();
    if p.nfs.is_some() {
        apps.push("nfs-storage".to_owned());
    }
    if !p.pools.is_empty() {
        apps.push("metallb".to_owned());
    }
    if p.ingress.controller == IngressController::Traefik {
        apps.push("ingress:traefik".to_owned());
    }
    if p.wordpress.is_some() {
        apps.push("wordpress".to_owned());
    }
    apps.extend(p.charts.iter().map(|c| format!("chart:{}", c.name)));
    apps.extend(p.manifests.iter().map(|m| {
        format!(
            "manifest:{}",
            m.file_name().unwrap_or_default().to_string_lossy()
        )
    }));
    Plan {
        format: PLAN_FORMAT,
        cluster: cluster.to_owned(),
        board: p.image.board,
        vip: p.cluster.vip,
        registration: p.registration_address(),
        loadbalancer: p.loadbalancer.as_ref().map(|lb| LoadBalancerPlan {
            address: lb.address,
            shared: lb.shared,
            nodes: p.loadbalancers().map(|n| n.name.to_string()).collect(),
            backends: backends.clone(),
            ingress: p.ingress.address.filter(|_| lb.ingress),
        }),
        ingress: p.ingress.controller,
        network: p.cluster.network.to_string(),
        quorum: Quorum {
            servers,
            agents: p.agents().count(),
            tolerated_failures: servers.saturating_sub(1) / 2,
        },
        nodes,
        pools: p
            .pools
            .iter()
            .map(|pl| PoolPlan {
                name: pl.name.to_string(),
                addresses: pl.ranges.iter().map(|r| r.to_string()).collect(),
            })
            .collect(),
        apps,
        artifacts: artifacts(p),
    }
}

fn artifacts(p: &Profile) -> Vec<Artifact> {
    let s = &p.sources;
    let mut v = Vec::new();
    let mut add = |role: String, src: &Source| {
        v.push(Artifact {
            role,
            source: src.clone(),
        })
    };
    if let Some(r) = &s.rootfs {
        add("rootfs".into(), r);
    }
    for (i, pk) in s.packages.iter().enumerate() {
        add(format!("packages[{i}]"), pk);
    }
    if let Some(k) = &s.k3s {
        add("k3s".into(), k);
    }
    for (i, a) in s.airgap_images.iter().enumerate() {
        add(format!("airgap-images[{i}]"), a);
    }
    v
}
