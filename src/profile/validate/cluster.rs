//! `[cluster]` and `[ssh]`: the network, the VIP, cluster-wide Kubernetes ranges, the
//! interface and time zone every node uses, and the cluster-wide SSH keys.

use std::net::IpAddr;

use ipnet::Ipv4Net;

use super::{check_host_in, cidr, grammar, ipv4};
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::Cluster;
use crate::profile::raw::RawCluster;
use crate::profile::types::Label;

pub(super) fn cluster(raw: &RawCluster, key: &KeyPath, c: &mut Collector<'_>) -> Option<Cluster> {
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
        c.check(&key.key("ntp").index(i), grammar::host(n, "NTP server"));
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
    c.check(&key.key("interface"), grammar::interface(&interface));
    let timezone = raw.timezone.clone().unwrap_or_else(|| "Etc/UTC".into());
    c.check(&key.key("timezone"), grammar::timezone(&timezone));
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

/// OpenSSH public keys, one per entry: a line break would make two keys of one entry, so
/// control characters are refused before the key is parsed; the key is written back in
/// its canonical form (type, base64, comment).
pub(super) fn ssh_keys(lines: &[String], key: &KeyPath, c: &mut Collector<'_>) -> Vec<String> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let line = line.trim();
        if let Some(ch) = line.chars().find(|ch| ch.is_control()) {
            c.error(
                &key.index(i),
                format!("SSH public key entry contains the control character {ch:?}"),
                "give one key per entry: each entry is one line of a .pub file",
            );
            continue;
        }
        match ssh_key::PublicKey::from_openssh(line) {
            Ok(k) => match k.to_openssh() {
                Ok(canonical) => out.push(canonical),
                Err(e) => c.error(
                    &key.index(i),
                    format!("SSH public key cannot be written back ({e})"),
                    "paste one line of a .pub file, e.g. \"ssh-ed25519 AAAAC3Nza... you@host\"",
                ),
            },
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
