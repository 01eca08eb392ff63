//! The validated profile: what the rest of the program works from.
//!
//! Every value here has been checked by [`super::validate`]; relative paths are resolved
//! against the profile's directory. Nothing in this module does I/O.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::Ipv4Net;
use serde::Serialize;

use super::types::{ByteSize, Label, Mac, Role, Sha256, Taint};

/// A checked profile.
#[derive(Debug, Clone, Serialize)]
pub struct Profile {
    /// The profile file as given.
    pub path: PathBuf,
    pub cluster: Cluster,
    pub nodes: Vec<Node>,
    /// Cluster-wide authorized keys (OpenSSH lines, parsed and checked).
    pub ssh_keys: Vec<String>,
    pub nfs: Option<Nfs>,
    pub pools: Vec<Pool>,
    /// The cluster load balancer, when the profile has `role = "loadbalancer"` nodes.
    pub loadbalancer: Option<LoadBalancer>,
    pub ingress: Ingress,
    pub wordpress: Option<Wordpress>,
    pub manifests: Vec<PathBuf>,
    pub charts: Vec<Chart>,
    pub image: Image,
    pub sources: Sources,
    pub secrets_dir: PathBuf,
}

impl Profile {
    pub fn servers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Server)
    }
    pub fn agents(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Agent)
    }
    pub fn loadbalancers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::LoadBalancer)
    }
    /// Nodes that run K3s (servers and agents).
    pub fn k3s_nodes(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role != Role::LoadBalancer)
    }
    /// The fixed address nodes register through and clients reach the API at: the load
    /// balancer's when the profile has one, else the VIP.
    pub fn registration_address(&self) -> Ipv4Addr {
        self.loadbalancer
            .as_ref()
            .map_or(self.cluster.vip, |lb| lb.address)
    }
    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name.as_str() == name)
    }
    /// The server that initialises the cluster: the first server in profile order.
    pub fn init_server(&self) -> &Node {
        self.servers()
            .next()
            .expect("validated profiles have at least one server")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: Label,
    pub vip: Ipv4Addr,
    pub network: Ipv4Net,
    pub gateway: Option<Ipv4Addr>,
    pub dns: Vec<IpAddr>,
    pub ntp: Vec<String>,
    pub interface: String,
    pub timezone: String,
    pub cluster_cidr: Ipv4Net,
    pub service_cidr: Ipv4Net,
    /// VRRP advertisement interval in seconds.
    pub vip_advert_interval: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "address")]
pub enum Addressing {
    Static(Ipv4Addr),
    Dhcp,
}

impl Addressing {
    pub fn ip(&self) -> Option<Ipv4Addr> {
        match self {
            Addressing::Static(a) => Some(*a),
            Addressing::Dhcp => None,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: Label,
    pub role: Role,
    pub address: Addressing,
    pub mac: Option<Mac>,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<Taint>,
    /// Whether ordinary pods may run here (always true for agents).
    pub workloads: bool,
    /// Keys for this node only, in addition to the cluster-wide ones.
    pub ssh_keys: Vec<String>,
}

/// The cluster load balancer (HAProxy on the `role = "loadbalancer"` nodes).
#[derive(Debug, Clone, Serialize)]
pub struct LoadBalancer {
    /// The registration address: the single node's own address, or the address two
    /// load-balancer nodes share through keepalived.
    pub address: Ipv4Addr,
    /// Whether the address floats between two nodes (keepalived).
    pub shared: bool,
    /// Forward TCP 80 and 443 to the ingress controller's address.
    pub ingress: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IngressController {
    /// K3s's packaged Traefik.
    Traefik,
    None,
}

#[derive(Debug, Clone, Serialize)]
pub struct Ingress {
    pub controller: IngressController,
    /// Traefik's LoadBalancer address (in a MetalLB pool), when the profile fixes it.
    pub address: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "name")]
pub enum NfsServer {
    /// A node of the cluster exports the share.
    Node(Label),
    /// An external NAS, by address or DNS name.
    External(String),
}

#[derive(Debug, Clone, Serialize)]
pub struct Nfs {
    pub server: NfsServer,
    pub path: String,
    /// Label of an attached disk holding the export (node-served only).
    pub disk: Option<String>,
    pub mount_options: Vec<String>,
    pub storage_class: String,
}

/// An inclusive IPv4 range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct IpRange {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

impl IpRange {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.start <= a && a <= self.end
    }
    pub fn overlaps(&self, o: &IpRange) -> bool {
        self.start <= o.end && o.start <= self.end
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.start == self.end {
            write!(f, "{}", self.start)
        } else {
            write!(f, "{}-{}", self.start, self.end)
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Pool {
    pub name: Label,
    pub ranges: Vec<IpRange>,
}

impl Pool {
    pub fn contains(&self, a: Ipv4Addr) -> bool {
        self.ranges.iter().any(|r| r.contains(a))
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Wordpress {
    pub replicas: u32,
    pub mysql_node: Option<Label>,
    pub address: Option<Ipv4Addr>,
    /// Served through an Ingress on this host name.
    pub host: Option<String>,
    pub mysql_volume: ByteSize,
    pub wordpress_volume: ByteSize,
}

#[derive(Debug, Clone, Serialize)]
pub struct Chart {
    pub name: Label,
    pub chart: String,
    pub repo: Option<String>,
    pub version: String,
    pub namespace: String,
    pub values_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Board {
    /// Raspberry Pi 4 and 5 (one image, `[pi4]`/`[pi5]` sections).
    Rpi,
    QemuAarch64,
    QemuX86_64,
}

impl Board {
    pub const ALL: [(&'static str, Board); 3] = [
        ("rpi", Board::Rpi),
        ("qemu-aarch64", Board::QemuAarch64),
        ("qemu-x86_64", Board::QemuX86_64),
    ];
    pub fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, b)| *b == self)
            .map(|(n, _)| *n)
            .unwrap_or("?")
    }
    /// Debian architecture of the board's userland.
    pub fn arch(self) -> &'static str {
        match self {
            Board::Rpi | Board::QemuAarch64 => "arm64",
            Board::QemuX86_64 => "amd64",
        }
    }
}

/// Deserialize: board definitions name the table a QEMU model needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartitionTable {
    Gpt,
    Mbr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Xz,
    Zst,
    Raw,
}

impl OutputFormat {
    pub fn extension(self) -> &'static str {
        match self {
            OutputFormat::Xz => "img.xz",
            OutputFormat::Zst => "img.zst",
            OutputFormat::Raw => "img",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SquashCompression {
    Zstd,
    Xz,
}

#[derive(Debug, Clone, Serialize)]
pub struct Image {
    pub board: Board,
    pub partition_table: PartitionTable,
    /// The image boots Pi 5s too (board rpi; `image.pi5`).
    pub pi5: bool,
    pub boot_size: ByteSize,
    pub system_size: Option<ByteSize>,
    pub data_size: ByteSize,
    pub format: OutputFormat,
    pub system_compression: SquashCompression,
    /// Build time as seconds since the epoch, when fixed by the profile.
    pub timestamp: Option<i64>,
    pub base_url: Option<String>,
}

/// Where one part comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Source {
    /// A local file (resolved against the profile's directory).
    Path {
        path: PathBuf,
        sha256: Option<Sha256>,
    },
    /// A download, always pinned.
    Url { url: String, sha256: Sha256 },
}

impl Source {
    pub fn sha256(&self) -> Option<&Sha256> {
        match self {
            Source::Path { sha256, .. } => sha256.as_ref(),
            Source::Url { sha256, .. } => Some(sha256),
        }
    }
    /// A short human description: the URL or the path.
    pub fn describe(&self) -> String {
        match self {
            Source::Path { path, .. } => path.display().to_string(),
            Source::Url { url, .. } => url.clone(),
        }
    }
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Sources {
    pub rootfs: Option<Source>,
    pub debian: Option<Debian>,
    pub packages: Vec<Source>,
    pub k3s: Option<Source>,
    pub airgap_images: Vec<Source>,
    pub overlays: Vec<PathBuf>,
}

/// A package asked for by name, optionally from one suite ("name/suite").
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PackageRef {
    pub name: String,
    pub suite: Option<String>,
}

/// `[sources.debian]`, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Debian {
    /// The profile's mirror; BAKERY_DEBIAN_MIRROR replaces it at build time.
    pub mirror: Option<String>,
    /// The main suite first, then the extra suites.
    pub suites: Vec<String>,
    pub components: Vec<String>,
    pub packages: Vec<PackageRef>,
    /// None: the board's default kernel package.
    pub kernel: Option<PackageRef>,
    /// None: the host's debian-archive-keyring.
    pub keyring: Option<PathBuf>,
}

impl Image {
    pub fn partition_table_name(&self) -> &'static str {
        match self.partition_table {
            PartitionTable::Gpt => "GPT",
            PartitionTable::Mbr => "MBR",
        }
    }
}
