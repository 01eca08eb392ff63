//! Turns a [`RawProfile`] into a checked [`Profile`], collecting every problem at once.
//!
//! Rules are grouped by table. Each rule reports through the [`Collector`] with the key
//! path of the offending value, so the message lands on the right line. Existence checks
//! touch only files the profile itself names as inputs it owns (manifests, chart values,
//! overlays); sources are checked when they are fetched.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::diag::{Collector, KeyPath};
use super::model::*;
use super::raw::*;
use super::types::{ByteSize, Invalid, Label, MIB, Mac, Role, Sha256, Taint};

/// The smallest FAT32 volume with 4 KiB clusters (65,525 clusters plus metadata).
pub const MIN_BOOT_SIZE: u64 = 260 * MIB;

pub fn validate(raw: &RawProfile, path: &Path, c: &mut Collector<'_>) -> Option<Profile> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let root = KeyPath::root();
    let cluster = cluster(&raw.cluster, &root.key("cluster"), c);
    let ssh_keys = ssh_keys(
        &raw.ssh.authorized_keys,
        &root.key("ssh").key("authorized-keys"),
        c,
    );
    let nodes = nodes(raw, cluster.as_ref(), c);
    let pools = metallb(raw.metallb.as_ref(), cluster.as_ref(), &nodes, c);
    let nfs = raw
        .storage
        .nfs
        .as_ref()
        .and_then(|n| nfs(n, &nodes, &root.key("storage").key("nfs"), c));
    let wordpress = raw
        .apps
        .wordpress
        .as_ref()
        .and_then(|w| wordpress(w, raw, &nodes, &pools, c));
    let manifests = manifests(raw, &dir, c);
    let charts = charts(raw, &dir, c);
    let image = image(&raw.image, &root.key("image"), c);
    let sources = sources(&raw.sources, &dir, &root.key("sources"), c);
    let secrets_dir = match &raw.secrets.dir {
        Some(d) => dir.join(d),
        None => {
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| "profile".into());
            dir.join(format!("{stem}.secrets"))
        }
    };
    if !c.diags.is_empty() {
        return None;
    }
    Some(Profile {
        path: path.to_owned(),
        cluster: cluster?,
        nodes: nodes.into_iter().map(|(_, n)| n).collect(),
        ssh_keys,
        nfs,
        pools,
        wordpress,
        manifests,
        charts,
        image: image?,
        sources: sources?,
        secrets_dir,
    })
}

fn ipv4(s: &str, what: &str) -> Result<Ipv4Addr, Invalid> {
    s.parse::<Ipv4Addr>().map_err(|_| {
        let hint = if s.contains('/') {
            "write the address without a prefix length"
        } else {
            "write a dotted IPv4 address such as \"10.0.0.9\""
        };
        Invalid::new(format!("{what} \"{s}\" is not an IPv4 address")).hint(hint)
    })
}

fn cidr(s: &str, what: &str) -> Result<Ipv4Net, Invalid> {
    let net: Ipv4Net = s.parse().map_err(|_| {
        Invalid::new(format!("{what} \"{s}\" is not an IPv4 CIDR"))
            .hint("write a network such as \"10.0.0.0/24\"")
    })?;
    if net.trunc() != net {
        return Err(Invalid::new(format!("{what} \"{s}\" has host bits set"))
            .hint(format!("did you mean \"{}\"?", net.trunc())));
    }
    Ok(net)
}

fn cluster(raw: &RawCluster, key: &KeyPath, c: &mut Collector<'_>) -> Option<Cluster> {
    let name = c.check(&key.key("name"), Label::parse(&raw.name));
    let network = c.check(&key.key("network"), cidr(&raw.network, "network"));
    let vip = c.check(&key.key("vip"), ipv4(&raw.vip, "VIP"));
    if let (Some(net), Some(vip)) = (network, vip) {
        check_host_in(c, &key.key("vip"), "VIP", vip, net);
    }
    let gateway = raw
        .gateway
        .as_ref()
        .and_then(|g| c.check(&key.key("gateway"), ipv4(g, "gateway")));
    if let (Some(net), Some(gw)) = (network, gateway) {
        check_host_in(c, &key.key("gateway"), "gateway", gw, net);
        if Some(gw) == vip {
            c.error(
                &key.key("vip"),
                format!("the VIP {gw} is the gateway's address"),
                "choose a free address in the network for the VIP",
            );
        }
    }
    let mut dns = Vec::new();
    for (i, d) in raw.dns.iter().enumerate() {
        match d.parse::<IpAddr>() {
            Ok(a) => dns.push(a),
            Err(_) => c.error(
                &key.key("dns").index(i),
                format!("DNS server \"{d}\" is not an IP address"),
                "DNS servers are given by address, e.g. \"10.0.0.1\"",
            ),
        }
    }
    for (i, n) in raw.ntp.iter().enumerate() {
        if n.is_empty() || n.contains(char::is_whitespace) {
            c.error(
                &key.key("ntp").index(i),
                format!("NTP server \"{n}\" is not a host name or address"),
                "give a host name such as \"pool.ntp.org\" or an address",
            );
        }
    }
    let cluster_cidr = c.check(
        &key.key("cluster-cidr"),
        cidr(
            raw.cluster_cidr.as_deref().unwrap_or("10.42.0.0/16"),
            "cluster-cidr",
        ),
    );
    let service_cidr = c.check(
        &key.key("service-cidr"),
        cidr(
            raw.service_cidr.as_deref().unwrap_or("10.43.0.0/16"),
            "service-cidr",
        ),
    );
    let overlap = |a: Ipv4Net, b: Ipv4Net| a.contains(&b.network()) || b.contains(&a.network());
    if let (Some(cc), Some(sc)) = (cluster_cidr, service_cidr) {
        if overlap(cc, sc) {
            c.error(
                &key.key("service-cidr"),
                format!("service-cidr {sc} overlaps cluster-cidr {cc}"),
                "give pods and services separate ranges",
            );
        }
        if let Some(net) = network {
            for (k, r) in [("cluster-cidr", cc), ("service-cidr", sc)] {
                if overlap(r, net) {
                    c.error(&key.key(k), format!("{k} {r} overlaps the node network {net}"), "pod and service ranges must not overlap the LAN; the defaults are 10.42.0.0/16 and 10.43.0.0/16");
                }
            }
        }
    }
    let interface = raw.interface.clone().unwrap_or_else(|| "eth0".into());
    if interface.is_empty() || interface.len() > 15 || interface.contains(['/', ' ']) {
        c.error(
            &key.key("interface"),
            format!("\"{interface}\" is not a network interface name"),
            "e.g. \"eth0\"",
        );
    }
    let timezone = raw.timezone.clone().unwrap_or_else(|| "Etc/UTC".into());
    if let Err((m, h)) = super::storage_rules::timezone(&timezone) {
        c.error(&key.key("timezone"), m, &h);
    }
    let advert = raw.vip_advert_interval.unwrap_or(1.0);
    if !(0.01..=255.0).contains(&advert) {
        c.error(
            &key.key("vip-advert-interval"),
            format!("VRRP advert interval {advert} s is out of range"),
            "use 0.01 to 255 seconds; 1 is the default, 0.2-0.5 gives sub-second failover",
        );
    }
    Some(Cluster {
        // A bad name is already reported; keep checking addresses against the network.
        name: name.unwrap_or_else(|| Label::parse("invalid").expect("a valid label")),
        vip: vip?,
        network: network?,
        gateway,
        dns,
        ntp: raw.ntp.clone(),
        interface,
        timezone,
        cluster_cidr: cluster_cidr?,
        service_cidr: service_cidr?,
        vip_advert_interval: advert,
    })
}

fn check_host_in(c: &mut Collector<'_>, key: &KeyPath, what: &str, a: Ipv4Addr, net: Ipv4Net) {
    if !net.contains(&a) {
        c.error(
            key,
            format!("{what} {a} is outside the cluster network {net}"),
            "every node address, the VIP and the gateway must be inside [cluster] network",
        );
    } else if net.prefix_len() < 31 && (a == net.network() || a == net.broadcast()) {
        c.error(
            key,
            format!(
                "{what} {a} is the network's {} address",
                if a == net.network() {
                    "network"
                } else {
                    "broadcast"
                }
            ),
            "choose a host address",
        );
    }
}

fn ssh_keys(lines: &[String], key: &KeyPath, c: &mut Collector<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        match ssh_key::PublicKey::from_openssh(line.trim()) {
            Ok(_) => out.push(line.trim().to_owned()),
            Err(e) => {
                let hint = if line.contains("PRIVATE KEY") {
                    "this is a private key: never put it in a profile; use the .pub file's line"
                } else {
                    "paste one line of a .pub file, e.g. \"ssh-ed25519 AAAAC3Nza... you@host\""
                };
                c.error(
                    &key.index(i),
                    format!("SSH public key does not parse ({e})"),
                    hint,
                );
            }
        }
    }
    out
}

fn nodes(raw: &RawProfile, cluster: Option<&Cluster>, c: &mut Collector<'_>) -> Vec<(usize, Node)> {
    let key = KeyPath::root().key("nodes");
    if raw.nodes.is_empty() {
        c.error(
            &key,
            "the profile has no [[nodes]]",
            "add at least one [[nodes]] table with role = \"server\"",
        );
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut names: HashMap<String, usize> = HashMap::new();
    let mut addrs: HashMap<Ipv4Addr, usize> = HashMap::new();
    let mut macs: HashMap<Mac, usize> = HashMap::new();
    for (i, n) in raw.nodes.iter().enumerate() {
        let k = key.index(i);
        let name = c.check(&k.key("hostname"), Label::parse(&n.hostname));
        if let Some(&first) = names.get(&n.hostname) {
            c.error(
                &k.key("hostname"),
                format!(
                    "duplicate hostname \"{}\" (also nodes[{first}])",
                    n.hostname
                ),
                "every node needs its own hostname",
            );
        } else {
            names.insert(n.hostname.clone(), i);
        }
        let role = c.check(&k.key("role"), n.role.parse::<Role>());
        let address = match n.address.as_deref() {
            None | Some("dhcp") => {
                if role == Some(Role::Server) {
                    c.error(&k.key(if n.address.is_some() { "address" } else { "hostname" }),
                        format!("server \"{}\" has no static address", n.hostname),
                        "servers need a static address: other servers join it and keepalived peers with it; add address = \"10.0.0.x\"");
                }
                Some(Addressing::Dhcp)
            }
            Some(a) => c
                .check(
                    &k.key("address"),
                    ipv4(a, "address").map_err(|e| {
                        e.hint("write a static IPv4 address, or \"dhcp\" for an agent")
                    }),
                )
                .map(Addressing::Static),
        };
        if let (Some(Addressing::Static(a)), Some(cl)) = (address, cluster) {
            check_host_in(c, &k.key("address"), "address", a, cl.network);
            if a == cl.vip {
                c.error(
                    &k.key("address"),
                    format!("address {a} is the cluster VIP"),
                    "the VIP floats between servers; give the node its own address",
                );
            }
            if Some(a) == cl.gateway {
                c.error(
                    &k.key("address"),
                    format!("address {a} is the gateway's"),
                    "the gateway is the router; give the node its own address",
                );
            }
            if let Some(&first) = addrs.get(&a) {
                c.error(
                    &k.key("address"),
                    format!("duplicate address {a} (also nodes[{first}])"),
                    "every node needs its own address",
                );
            } else {
                addrs.insert(a, i);
            }
        }
        let mac = n
            .mac
            .as_ref()
            .and_then(|m| c.check(&k.key("mac"), Mac::parse(m)));
        if let Some(m) = &mac {
            if let Some(&first) = macs.get(m) {
                c.error(
                    &k.key("mac"),
                    format!("duplicate MAC {} (also nodes[{first}])", m.as_str()),
                    "every node needs its own MAC; copy it from the board's label or `ip link`",
                );
            } else {
                macs.insert(m.clone(), i);
            }
        }
        let mut taints = Vec::new();
        for (j, t) in n.taints.iter().enumerate() {
            if let Some(t) = c.check(&k.key("taints").index(j), Taint::parse(t)) {
                taints.push(t);
            }
        }
        for lk in n.labels.keys() {
            if lk.is_empty() || lk.len() > 253 || lk.contains(char::is_whitespace) {
                c.error(
                    &k.key("labels").key(lk),
                    format!("\"{lk}\" is not a Kubernetes label key"),
                    "label keys are [prefix/]name without spaces, at most 253 characters",
                );
            }
        }
        if role == Some(Role::Agent) && n.workloads == Some(false) {
            c.error(
                &k.key("workloads"),
                "an agent that runs no workloads does nothing",
                "remove workloads = false, or make the node a server",
            );
        }
        let node_keys = ssh_keys(&n.ssh_authorized_keys, &k.key("ssh-authorized-keys"), c);
        if let (Some(name), Some(role), Some(address)) = (name, role, address) {
            out.push((
                i,
                Node {
                    name,
                    role,
                    address,
                    mac,
                    labels: n.labels.clone(),
                    taints,
                    workloads: n.workloads.unwrap_or(true),
                    ssh_keys: node_keys,
                },
            ));
        }
    }
    let servers = raw.nodes.iter().filter(|n| n.role == "server").count();
    if servers == 0 {
        c.error(
            &key,
            "the cluster has no server",
            "make at least one node role = \"server\"; it runs the control plane and etcd",
        );
    } else if servers % 2 == 0 && !raw.cluster.allow_even_servers {
        let tolerate = (servers - 1) / 2;
        c.error(&key, format!(
            "{servers} servers: etcd needs a majority, so {servers} servers tolerate only {tolerate} failure{} — no more than {} would",
            if tolerate == 1 { "" } else { "s" }, servers - 1),
            "use an odd number of servers (1: no HA, 3 tolerate 1 failure, 5 tolerate 2), or set allow-even-servers = true in [cluster]");
    }
    out
}

fn range(s: &str) -> Result<IpRange, Invalid> {
    let hint = "write a range \"10.0.0.200-10.0.0.220\" or a CIDR \"10.0.0.224/28\"";
    if let Some((a, b)) = s.split_once('-') {
        let start = ipv4(a.trim(), "range start").map_err(|e| e.hint(hint))?;
        let end = ipv4(b.trim(), "range end").map_err(|e| e.hint(hint))?;
        if start > end {
            return Err(Invalid::new(format!("range \"{s}\" ends before it starts")).hint(hint));
        }
        Ok(IpRange { start, end })
    } else if s.contains('/') {
        let n = cidr(s, "pool").map_err(|e| e.hint(hint))?;
        Ok(IpRange {
            start: n.network(),
            end: n.broadcast(),
        })
    } else {
        let a = ipv4(s, "pool address").map_err(|e| e.hint(hint))?;
        Ok(IpRange { start: a, end: a })
    }
}

fn metallb(
    raw: Option<&RawMetallb>,
    cluster: Option<&Cluster>,
    nodes: &[(usize, Node)],
    c: &mut Collector<'_>,
) -> Vec<Pool> {
    let Some(raw) = raw else { return Vec::new() };
    let key = KeyPath::root().key("metallb");
    let mut lists: Vec<(KeyPath, String, &Vec<String>)> = Vec::new();
    if !raw.addresses.is_empty() {
        lists.push((key.key("addresses"), "default".into(), &raw.addresses));
    }
    for (i, p) in raw.pools.iter().enumerate() {
        lists.push((key.key("pools").index(i), p.name.clone(), &p.addresses));
    }
    if lists.is_empty() {
        c.error(
            &key,
            "[metallb] has no addresses",
            "add addresses = [\"10.0.0.200-10.0.0.220\"]",
        );
    }
    let mut pools = Vec::new();
    let mut seen: Vec<(IpRange, String)> = Vec::new();
    let mut names = BTreeMap::new();
    for (pk, name, addrs) in lists {
        let is_named = pk.0.len() == 3;
        let name_key = if is_named { pk.key("name") } else { pk.clone() };
        let Some(label) = c.check(&name_key, Label::parse(&name)) else {
            continue;
        };
        if names.insert(name.clone(), ()).is_some() {
            c.error(
                &name_key,
                format!("duplicate pool name \"{name}\""),
                "give each pool its own name",
            );
        }
        let addr_key = if is_named {
            pk.key("addresses")
        } else {
            pk.clone()
        };
        let mut ranges = Vec::new();
        for (j, s) in addrs.iter().enumerate() {
            let k = addr_key.index(j);
            let Some(r) = c.check(&k, range(s)) else {
                continue;
            };
            if let Some(cl) = cluster {
                if !cl.network.contains(&r.start) || !cl.network.contains(&r.end) {
                    c.error(&k, format!("pool range {r} is not inside the cluster network {}", cl.network), "MetalLB L2 answers ARP on the LAN: pool addresses must be in [cluster] network");
                }
                if r.contains(cl.vip) {
                    c.error(
                        &k,
                        format!("pool range {r} contains the VIP {}", cl.vip),
                        "keep the API VIP out of every MetalLB pool",
                    );
                }
                if let Some(gw) = cl.gateway.filter(|g| r.contains(*g)) {
                    c.error(
                        &k,
                        format!("pool range {r} contains the gateway {gw}"),
                        "keep the gateway out of every MetalLB pool",
                    );
                }
            }
            for (_, n) in nodes {
                if let Some(a) = n.address.ip().filter(|a| r.contains(*a)) {
                    c.error(
                        &k,
                        format!("pool range {r} contains node {}'s address {a}", n.name),
                        "pools must not overlap node addresses (or your DHCP range)",
                    );
                }
            }
            for (other, oname) in &seen {
                if other.overlaps(&r) {
                    c.error(
                        &k,
                        format!("pool range {r} overlaps {other} (pool \"{oname}\")"),
                        "each address may belong to one pool only",
                    );
                }
            }
            seen.push((r, name.clone()));
            ranges.push(r);
        }
        pools.push(Pool {
            name: label,
            ranges,
        });
    }
    pools
}

fn nfs(raw: &RawNfs, nodes: &[(usize, Node)], key: &KeyPath, c: &mut Collector<'_>) -> Option<Nfs> {
    let looks_external = raw.server.parse::<IpAddr>().is_ok() || raw.server.contains('.');
    let server = if looks_external {
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
    let on_node = matches!(server, NfsServer::Node(_));
    if let Err((m, h)) = super::storage_rules::export_path(&raw.path, on_node) {
        c.error(&key.key("path"), m, &h);
    }
    if raw.disk.is_some() && matches!(server, NfsServer::External(_)) {
        c.error(
            &key.key("disk"),
            "disk applies only when a node of the cluster serves NFS",
            "remove disk, or name a node as server",
        );
    }
    if let Some(Err((m, h))) = raw.disk.as_deref().map(super::storage_rules::disk) {
        c.error(&key.key("disk"), m, &h);
    }
    for (i, o) in raw.mount_options.iter().flatten().enumerate() {
        if let Err((m, h)) = super::storage_rules::mount_option(o) {
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

fn wordpress(
    raw: &RawWordpress,
    p: &RawProfile,
    nodes: &[(usize, Node)],
    pools: &[Pool],
    c: &mut Collector<'_>,
) -> Option<Wordpress> {
    let key = KeyPath::root().key("apps").key("wordpress");
    if p.storage.nfs.is_none() {
        c.error(
            &key,
            "WordPress needs storage, and the profile has none",
            "add a [storage.nfs] table: MySQL and WordPress keep their data on NFS",
        );
    }
    let replicas = raw.replicas.unwrap_or(1);
    if replicas == 0 {
        c.error(
            &key.key("replicas"),
            "replicas = 0 deploys nothing",
            "use 1 or more, or remove [apps.wordpress]",
        );
    }
    let mysql_node = match &raw.mysql_node {
        None => None,
        Some(m) => match nodes.iter().find(|(_, n)| n.name.as_str() == m) {
            Some((_, n)) => Some(n.name.clone()),
            None => {
                c.error(
                    &key.key("mysql-node"),
                    format!("mysql-node \"{m}\" is not a node of this cluster"),
                    "name one of the [[nodes]] hostnames, or remove mysql-node",
                );
                None
            }
        },
    };
    let address = raw
        .address
        .as_ref()
        .and_then(|a| c.check(&key.key("address"), ipv4(a, "address")));
    if let Some(a) = address {
        if !pools.iter().any(|pl| pl.contains(a)) {
            c.error(
                &key.key("address"),
                format!("WordPress address {a} is not in any MetalLB pool"),
                "pick an address from [metallb] addresses",
            );
        }
    } else if p.metallb.is_none() {
        c.error(
            &key,
            "WordPress is published as a LoadBalancer service, but there is no [metallb] pool",
            "add [metallb] addresses = [\"...\"]",
        );
    }
    let size = |k: &str, v: &Option<String>, default: &str, c: &mut Collector<'_>| {
        let s = v.as_deref().unwrap_or(default);
        c.check(&key.key(k), ByteSize::parse(s)).filter(|b| {
            let ok = b.bytes() >= MIB;
            if !ok {
                c.error(
                    &key.key(k),
                    format!("volume size {s} is too small"),
                    "use at least 1MiB, e.g. \"5GiB\"",
                );
            }
            ok
        })
    };
    let mysql_volume = size("mysql-volume", &raw.mysql_volume, "10GiB", c);
    let wordpress_volume = size("wordpress-volume", &raw.wordpress_volume, "5GiB", c);
    Some(Wordpress {
        replicas,
        mysql_node,
        address,
        mysql_volume: mysql_volume?,
        wordpress_volume: wordpress_volume?,
    })
}

fn existing_file(
    dir: &Path,
    rel: &str,
    key: &KeyPath,
    what: &str,
    c: &mut Collector<'_>,
) -> PathBuf {
    let p = dir.join(rel);
    if !p.exists() {
        c.error(
            key,
            format!("{what} \"{}\" does not exist", p.display()),
            "paths are relative to the profile's directory",
        );
    }
    p
}

fn manifests(raw: &RawProfile, dir: &Path, c: &mut Collector<'_>) -> Vec<PathBuf> {
    let key = KeyPath::root().key("manifests");
    let mut names = BTreeMap::new();
    raw.manifests
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let k = key.index(i).key("path");
            if !(m.path.ends_with(".yaml") || m.path.ends_with(".yml") || m.path.ends_with(".json"))
            {
                c.error(
                    &k,
                    format!("manifest \"{}\" is not .yaml, .yml or .json", m.path),
                    "K3s's auto-deploy directory only reads those extensions",
                );
            }
            let base = Path::new(&m.path)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(prev) = names.insert(base.clone(), i) {
                c.error(
                    &k,
                    format!("manifest file name \"{base}\" is used twice (also manifests[{prev}])"),
                    "K3s names each add-on after its file: rename one",
                );
            }
            existing_file(dir, &m.path, &k, "manifest", c)
        })
        .collect()
}

fn charts(raw: &RawProfile, dir: &Path, c: &mut Collector<'_>) -> Vec<Chart> {
    let key = KeyPath::root().key("charts");
    let mut out = Vec::new();
    for (i, ch) in raw.charts.iter().enumerate() {
        let k = key.index(i);
        let name = c.check(&k.key("name"), Label::parse(&ch.name));
        let values_file = ch
            .values_file
            .as_ref()
            .map(|v| existing_file(dir, v, &k.key("values-file"), "values file", c));
        let namespace = ch.namespace.clone().unwrap_or_else(|| "default".into());
        c.check(&k.key("namespace"), Label::parse(&namespace));
        if let Some(name) = name {
            out.push(Chart {
                name,
                chart: ch.chart.clone(),
                repo: ch.repo.clone(),
                version: ch.version.clone(),
                namespace,
                values_file,
            });
        }
    }
    out
}

fn image(raw: &RawImage, key: &KeyPath, c: &mut Collector<'_>) -> Option<Image> {
    let board_name = raw.board.as_deref().unwrap_or("rpi");
    let board = Board::ALL
        .iter()
        .find(|(n, _)| *n == board_name)
        .map(|(_, b)| *b);
    if board.is_none() {
        c.error(
            &key.key("board"),
            format!("unknown board \"{board_name}\""),
            "board is \"rpi\" (Pi 4 and Pi 5), \"qemu-aarch64\" or \"qemu-x86_64\"",
        );
    }
    let partition_table = match raw.partition_table.as_deref().unwrap_or("gpt") {
        "gpt" => Some(PartitionTable::Gpt),
        "mbr" | "dos" | "msdos" => Some(PartitionTable::Mbr),
        other => {
            c.error(
                &key.key("partition-table"),
                format!("unknown partition table \"{other}\""),
                "use \"gpt\" (default) or \"mbr\" (Pi 3, Zero 2 W)",
            );
            None
        }
    };
    let boot_size = c.check(
        &key.key("boot-size"),
        ByteSize::parse(raw.boot_size.as_deref().unwrap_or("512MiB")),
    );
    if let Some(b) = boot_size.filter(|b| b.bytes() < MIN_BOOT_SIZE) {
        c.error(&key.key("boot-size"), format!("boot partition {b} is too small for FAT32"),
            "FAT32 with 4 KiB clusters needs at least 260MiB (smaller volumes become FAT16, which the Pi bootloader rejects); 512MiB is the default");
    }
    let system_size = raw
        .system_size
        .as_ref()
        .and_then(|s| c.check(&key.key("system-size"), ByteSize::parse(s)));
    if let Some(s) = system_size.filter(|s| s.bytes() < 16 * MIB) {
        c.error(
            &key.key("system-size"),
            format!("system partition {s} is too small"),
            "leave system-size out to size it to the squashfs",
        );
    }
    let data_size = c.check(
        &key.key("data-size"),
        ByteSize::parse(raw.data_size.as_deref().unwrap_or("16MiB")),
    );
    if let Some(d) = data_size.filter(|d| d.bytes() < MIB) {
        c.error(
            &key.key("data-size"),
            format!("data placeholder {d} is too small"),
            "use at least 1MiB; it grows to the whole card on first boot",
        );
    }
    for (k, v) in [
        ("boot-size", boot_size),
        ("system-size", system_size),
        ("data-size", data_size),
    ] {
        if let Some(v) = v.filter(|v| v.bytes() % MIB != 0) {
            c.error(
                &key.key(k),
                format!("{v} is not a whole number of MiB"),
                "partitions are aligned to 1 MiB",
            );
        }
    }
    let format = match raw.format.as_deref().unwrap_or("xz") {
        "xz" => Some(OutputFormat::Xz),
        "zst" | "zstd" => Some(OutputFormat::Zst),
        "raw" | "img" => Some(OutputFormat::Raw),
        other => {
            c.error(
                &key.key("format"),
                format!("unknown output format \"{other}\""),
                "use \"xz\" (Raspberry Pi Imager), \"zst\" or \"raw\"",
            );
            None
        }
    };
    let system_compression = match raw.system_compression.as_deref().unwrap_or("zstd") {
        "zstd" => Some(SquashCompression::Zstd),
        "xz" => Some(SquashCompression::Xz),
        other => {
            c.error(
                &key.key("system-compression"),
                format!("unknown squashfs compression \"{other}\""),
                "use \"zstd\" (default, fast) or \"xz\" (smaller, slow)",
            );
            None
        }
    };
    let timestamp = raw
        .timestamp
        .as_ref()
        .and_then(|t| c.check(&key.key("timestamp"), epoch(t)));
    if let Some(u) = &raw.base_url
        && !(u.starts_with("https://") || u.starts_with("http://") || u.starts_with("file://"))
    {
        c.error(
            &key.key("base-url"),
            format!("base-url \"{u}\" is not an http(s) or file URL"),
            "use https://... or file:///...",
        );
    }
    Some(Image {
        board: board?,
        partition_table: partition_table?,
        boot_size: boot_size?,
        system_size,
        data_size: data_size?,
        format: format?,
        system_compression: system_compression?,
        timestamp,
        base_url: raw.base_url.clone(),
    })
}

/// Seconds since the epoch of a TOML offset date-time.
fn epoch(t: &toml::value::Datetime) -> Result<i64, Invalid> {
    let hint = "write an RFC 3339 time with offset, e.g. 2026-11-01T00:00:00Z";
    let (Some(d), Some(tm), Some(off)) = (t.date, t.time, t.offset) else {
        return Err(Invalid::new(format!("timestamp {t} has no date, time and offset")).hint(hint));
    };
    // Days from civil date (Howard Hinnant's algorithm).
    let (y, m, dd) = (i64::from(d.year), i64::from(d.month), i64::from(d.day));
    let y2 = if m <= 2 { y - 1 } else { y };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * ((m + 9) % 12) + 2) / 5 + dd - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let off_min = match off {
        toml::value::Offset::Z => 0,
        toml::value::Offset::Custom { minutes } => i64::from(minutes),
    };
    Ok(days * 86_400
        + i64::from(tm.hour) * 3600
        + i64::from(tm.minute) * 60
        + i64::from(tm.second.unwrap_or(0))
        - off_min * 60)
}

fn source(raw: &RawSource, dir: &Path, key: &KeyPath, c: &mut Collector<'_>) -> Option<Source> {
    let sha256 = raw
        .sha256
        .as_ref()
        .and_then(|s| c.check(&key.key("sha256"), Sha256::parse(s)));
    match (&raw.path, &raw.url) {
        (Some(_), Some(_)) => {
            c.error(
                key,
                "a source has both path and url",
                "give either path = \"...\" or url = \"...\" with sha256",
            );
            None
        }
        (None, None) => {
            c.error(
                key,
                "a source needs path or url",
                "give path = \"...\" or url = \"...\" with sha256 = \"...\"",
            );
            None
        }
        (Some(p), None) => Some(Source::Path {
            path: dir.join(p),
            sha256,
        }),
        (None, Some(u)) => {
            if !(u.starts_with("https://") || u.starts_with("http://") || u.starts_with("file://"))
            {
                c.error(
                    &key.key("url"),
                    format!("\"{u}\" is not an http(s) or file URL"),
                    "use https://... or file:///..., or path = \"...\" for a local file",
                );
            }
            if raw.sha256.is_none() {
                c.error(
                    key,
                    format!("url \"{u}\" has no sha256"),
                    "pin every download: add sha256 = \"<64 hex digits>\" (sha256sum of the file)",
                );
            }
            Some(Source::Url {
                url: u.clone(),
                sha256: sha256?,
            })
        }
    }
}

fn sources(raw: &RawSources, dir: &Path, key: &KeyPath, c: &mut Collector<'_>) -> Option<Sources> {
    let before = c.diags.len();
    let rootfs = raw
        .rootfs
        .as_ref()
        .and_then(|s| source(s, dir, &key.key("rootfs"), c));
    let debian = raw
        .debian
        .as_ref()
        .and_then(|d| super::debian::debian(d, raw.rootfs.is_some(), dir, &key.key("debian"), c));
    let k3s = raw
        .k3s
        .as_ref()
        .and_then(|s| source(s, dir, &key.key("k3s"), c));
    let packages = raw
        .packages
        .iter()
        .enumerate()
        .filter_map(|(i, s)| source(s, dir, &key.key("packages").index(i), c))
        .collect();
    let airgap_images = raw
        .airgap_images
        .iter()
        .enumerate()
        .filter_map(|(i, s)| source(s, dir, &key.key("airgap-images").index(i), c))
        .collect();
    let overlays = raw
        .overlays
        .iter()
        .enumerate()
        .map(|(i, o)| {
            existing_file(
                dir,
                o,
                &key.key("overlays").index(i),
                "overlay directory",
                c,
            )
        })
        .collect();
    (c.diags.len() == before).then_some(Sources {
        rootfs,
        debian,
        packages,
        k3s,
        airgap_images,
        overlays,
    })
}
