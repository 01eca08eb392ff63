//! The profile exactly as written in TOML: serde structs that mirror the file.
//!
//! Values that need a located, friendly error (addresses, sizes, digests, names) are kept
//! as strings here and checked in [`super::validate`], so one run reports every mistake.
//! Unknown keys are collected by `serde_ignored` (see [`super::load`]) rather than failing
//! on the first one; the JSON Schema still marks every table closed.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

/// A whole `profile.toml`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields, title = "bakery-image profile")]
pub struct RawProfile {
    /// Cluster-wide network and Kubernetes settings.
    pub cluster: RawCluster,
    /// SSH access for every node.
    #[serde(default)]
    pub ssh: RawSsh,
    /// The machines of the cluster, in order: the first server initialises the cluster.
    #[serde(default)]
    pub nodes: Vec<RawNode>,
    /// Persistent storage for workloads.
    #[serde(default)]
    pub storage: RawStorage,
    /// MetalLB load-balancer address pools.
    #[serde(default)]
    pub metallb: Option<RawMetallb>,
    /// The cluster load balancer: settings of the `role = "loadbalancer"` nodes.
    #[serde(default)]
    pub loadbalancer: Option<RawLoadbalancer>,
    /// The ingress controller (K3s's Traefik, or none).
    #[serde(default)]
    pub ingress: Option<RawIngress>,
    /// Applications deployed on first boot.
    #[serde(default)]
    pub apps: RawApps,
    /// The user's own Kubernetes manifests, deployed by every server.
    #[serde(default)]
    pub manifests: Vec<RawManifest>,
    /// The user's own Helm charts, deployed through K3s's Helm controller.
    #[serde(default)]
    pub charts: Vec<RawChart>,
    /// The image format and target board.
    #[serde(default)]
    pub image: RawImage,
    /// Where the parts of the image come from.
    #[serde(default)]
    pub sources: RawSources,
    /// Where generated cluster secrets are kept.
    #[serde(default)]
    pub secrets: RawSecrets,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawCluster {
    /// Cluster name: an RFC 1123 label, used for the kubeconfig context and derived IDs.
    pub name: String,
    /// Virtual IP of the Kubernetes API, held by one server at a time (keepalived).
    pub vip: String,
    /// The nodes' LAN as a CIDR, e.g. "10.0.0.0/24".
    pub network: String,
    /// Default gateway (required when any node has a static address).
    #[serde(default)]
    pub gateway: Option<String>,
    /// DNS servers for statically addressed nodes.
    #[serde(default)]
    pub dns: Vec<String>,
    /// NTP servers; empty means systemd-timesyncd's defaults.
    #[serde(default)]
    pub ntp: Vec<String>,
    /// Network interface the cluster uses (default "eth0").
    #[serde(default)]
    pub interface: Option<String>,
    /// Time zone, e.g. "Europe/Berlin" (default "Etc/UTC").
    #[serde(default)]
    pub timezone: Option<String>,
    /// Pod network (K3s `cluster-cidr`, default "10.42.0.0/16").
    #[serde(default)]
    pub cluster_cidr: Option<String>,
    /// Service network (K3s `service-cidr`, default "10.43.0.0/16").
    #[serde(default)]
    pub service_cidr: Option<String>,
    /// Accept an even number of servers (quorum gains nothing from the extra server).
    #[serde(default)]
    pub allow_even_servers: bool,
    /// VRRP advertisement interval for the VIP, in seconds (default 1).
    #[serde(default)]
    pub vip_advert_interval: Option<f64>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawSsh {
    /// OpenSSH public keys allowed to log in as root on every node.
    #[serde(default)]
    pub authorized_keys: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawNode {
    /// Host and Kubernetes node name: an RFC 1123 label (lowercase letters, digits, '-').
    pub hostname: String,
    /// "server" (control plane + embedded etcd), "agent" (worker) or "loadbalancer"
    /// (HAProxy in front of the servers' API; no K3s; one or two such nodes).
    pub role: String,
    /// Static IPv4 address inside the cluster network, or "dhcp" (agents only).
    #[serde(default)]
    pub address: Option<String>,
    /// Ethernet MAC address, e.g. "dc:a6:32:01:02:03" (used to match the interface).
    #[serde(default)]
    pub mac: Option<String>,
    /// Kubernetes node labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Kubernetes node taints, "key[=value]:Effect".
    #[serde(default)]
    pub taints: Vec<String>,
    /// Servers only: also run ordinary workloads (default true). When false the server
    /// gets a `node-role.kubernetes.io/control-plane:NoSchedule` taint.
    #[serde(default)]
    pub workloads: Option<bool>,
    /// Extra SSH public keys for this node only.
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawStorage {
    /// NFS storage: served by a node of the cluster or by an external server.
    #[serde(default)]
    pub nfs: Option<RawNfs>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawNfs {
    /// A node's hostname (that node exports `path`) or an external server's address.
    pub server: String,
    /// The exported path, e.g. "/srv/nfs/k8s".
    pub path: String,
    /// Node-served only: the disk (e.g. a USB SSD) to export from, named by its filesystem
    /// label ("nfs-ssd"), filesystem UUID or /dev/disk/by-id/ path. The node waits for it
    /// at every boot, formats it (ext4) only when it is blank (no filesystem, no partition
    /// table) and never otherwise. Without it the share lives on the node's data partition
    /// (lost when the node is reflashed).
    #[serde(default)]
    pub disk: Option<String>,
    /// NFS mount options for the StorageClass, one `name` or `name=value` per entry
    /// (default ["nfsvers=4.1", "hard"]; a NAS serving databases often wants e.g. ["rw",
    /// "hard", "nointr", "rsize=32768", "wsize=32768", "tcp", "noac", "actimeo=0",
    /// "vers=3", "timeo=600"]).
    #[serde(default)]
    pub mount_options: Option<Vec<String>>,
    /// StorageClass name (default "nfs").
    #[serde(default)]
    pub storage_class: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawMetallb {
    /// Addresses of the pool named "default": ranges "a-b" or CIDRs.
    #[serde(default)]
    pub addresses: Vec<String>,
    /// Further named pools.
    #[serde(default)]
    pub pools: Vec<RawPool>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawPool {
    /// Pool name (an RFC 1123 label).
    pub name: String,
    /// Ranges "a-b" or CIDRs.
    pub addresses: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawLoadbalancer {
    /// With two load-balancer nodes: the address they share (keepalived), the cluster's
    /// registration address. With one, its own address is that address: leave this out.
    #[serde(default)]
    pub address: Option<String>,
    /// Also forward TCP 80 and 443 to the ingress controller's address (`ingress.address`).
    #[serde(default)]
    pub ingress: bool,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawIngress {
    /// "traefik" (default, K3s's packaged Traefik) or "none".
    #[serde(default)]
    pub controller: Option<String>,
    /// Traefik's LoadBalancer address (inside a MetalLB pool); default: one MetalLB picks.
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawApps {
    /// WordPress with MySQL on NFS storage.
    #[serde(default)]
    pub wordpress: Option<RawWordpress>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawWordpress {
    /// WordPress replicas (default 1; more than one shares a ReadWriteMany volume).
    #[serde(default)]
    pub replicas: Option<u32>,
    /// Pin MySQL to this node (a hostname), or leave it to the scheduler.
    #[serde(default)]
    pub mysql_node: Option<String>,
    /// LoadBalancer address of the WordPress service (inside a MetalLB pool); not with
    /// `host` (then the ingress controller's address serves it).
    #[serde(default)]
    pub address: Option<String>,
    /// Host name WordPress answers on through an Ingress (needs `ingress.controller =
    /// "traefik"`); without it WordPress gets a LoadBalancer Service of its own.
    #[serde(default)]
    pub host: Option<String>,
    /// MySQL volume size (default "10GiB").
    #[serde(default)]
    pub mysql_volume: Option<String>,
    /// WordPress content volume size (default "5GiB").
    #[serde(default)]
    pub wordpress_volume: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawManifest {
    /// A YAML file (relative to the profile) copied to every server's auto-deploy directory.
    pub path: String,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawChart {
    /// Name of the HelmChart resource (an RFC 1123 label).
    pub name: String,
    /// Chart name in the repository.
    pub chart: String,
    /// Helm repository URL.
    #[serde(default)]
    pub repo: Option<String>,
    /// Chart version (pinned).
    pub version: String,
    /// Namespace the chart installs into (default "default").
    #[serde(default)]
    pub namespace: Option<String>,
    /// A YAML values file, relative to the profile.
    #[serde(default)]
    pub values_file: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawImage {
    /// Target board: "rpi" (Pi 4 and Pi 5), "qemu-aarch64" or "qemu-x86_64" (default "rpi").
    #[serde(default)]
    pub board: Option<String>,
    /// "gpt" (default) or "mbr" (Pi 3 and Zero 2 W cannot boot GPT).
    #[serde(default)]
    pub partition_table: Option<String>,
    /// Board "rpi" only: the image boots Pi 5s too (default false). Its kernel must drive
    /// the BCM2712 (Debian trixie-backports, 6.18.15 or newer: the default kernel then);
    /// the boot partition gets the Pi 5 DTBs, the initramfs the Pi 5 SD and RP1 drivers.
    #[serde(default)]
    pub pi5: Option<bool>,
    /// Size of the FAT32 boot partition (default "512MiB", at least "260MiB").
    #[serde(default)]
    pub boot_size: Option<String>,
    /// Fixed size of the system partition; default: the squashfs size plus headroom.
    #[serde(default)]
    pub system_size: Option<String>,
    /// Size of the data placeholder; it grows to the card on first boot (default "16MiB").
    /// The whole image (boot + system + data + 2MiB of partition tables) is at most 2TiB.
    #[serde(default)]
    pub data_size: Option<String>,
    /// Output format: "xz" (default), "zst" or "raw".
    #[serde(default)]
    pub format: Option<String>,
    /// squashfs compression of the system partition: "zstd" (default) or "xz".
    #[serde(default)]
    pub system_compression: Option<String>,
    /// Build timestamp (RFC 3339, e.g. "2026-11-01T00:00:00Z"); default SOURCE_DATE_EPOCH
    /// or the profile's modification time.
    #[serde(default)]
    pub timestamp: Option<RawTimestamp>,
    /// Base URL for `os_list.json` download links (default: file:// URLs of the output).
    #[serde(default)]
    pub base_url: Option<String>,
}

/// A time written as a TOML date-time (`2026-11-01T00:00:00Z`) or as a string holding
/// one (`"2026-11-01T00:00:00Z"`), as the schema types it.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum RawTimestamp {
    #[schemars(with = "String")]
    Datetime(toml::value::Datetime),
    Text(String),
}

/// Where one part comes from: a local `path`, or a `url` that must carry its `sha256`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawSource {
    /// A local file, relative to the profile.
    #[serde(default)]
    pub path: Option<String>,
    /// An http(s) or file URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Expected SHA-256 (64 hex digits); required with `url`, optional with `path`.
    #[serde(default)]
    pub sha256: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawSources {
    /// Base root filesystem: a tar archive (plain, gz, xz, zst) or an OS image.
    #[serde(default)]
    pub rootfs: Option<RawSource>,
    /// Base system assembled from Debian packages (instead of `rootfs`).
    #[serde(default)]
    pub debian: Option<RawDebian>,
    /// Debian packages laid over the rootfs in order (kernels, firmware, busybox-static).
    #[serde(default)]
    pub packages: Vec<RawSource>,
    /// The k3s binary.
    #[serde(default)]
    pub k3s: Option<RawSource>,
    /// Air-gap image archives imported by K3s at start.
    #[serde(default)]
    pub airgap_images: Vec<RawSource>,
    /// Directories (relative to the profile) laid over the system image last.
    #[serde(default)]
    pub overlays: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawSecrets {
    /// Secrets directory, relative to the profile (default "<profile>.secrets").
    #[serde(default)]
    pub dir: Option<String>,
}

/// `[sources.debian]`: the base system assembled from a Debian archive.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
#[schemars(deny_unknown_fields)]
pub struct RawDebian {
    /// Archive base URL (http, https or file), best a dated snapshot so the profile pins
    /// its packages in time; the environment variable BAKERY_DEBIAN_MIRROR replaces it.
    #[serde(default)]
    pub mirror: Option<String>,
    /// The suite (default "trixie").
    #[serde(default)]
    pub suite: Option<String>,
    /// Further suites of the same archive, e.g. "trixie-updates", "trixie-backports";
    /// a NotAutomatic suite (backports) is used only for packages named "name/suite".
    #[serde(default)]
    pub extra_suites: Vec<String>,
    /// Archive components (default ["main", "non-free-firmware"]: the Pi boot firmware).
    #[serde(default)]
    pub components: Option<Vec<String>>,
    /// Packages added to the set the node runtime needs: "name" or "name/suite".
    #[serde(default)]
    pub packages: Vec<String>,
    /// The kernel package, "name" or "name/suite" (default the board's
    /// linux-image-<arch> metapackage).
    #[serde(default)]
    pub kernel: Option<String>,
    /// OpenPGP keyring holding the archive keys, relative to the profile (default the
    /// host's /usr/share/keyrings/debian-archive-keyring.gpg).
    #[serde(default)]
    pub keyring: Option<String>,
}
