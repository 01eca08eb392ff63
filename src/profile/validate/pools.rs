//! `[metallb]`: the default and named address pools, each inside the cluster network and
//! clear of the VIP, the gateway, node addresses and each other.

use super::{Unique, cidr, ipv4};
use crate::profile::diag::{Collector, KeyPath};
use crate::profile::model::{Cluster, IpRange, Node, Pool};
use crate::profile::raw::RawMetallb;
use crate::profile::types::{Invalid, Label};

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

pub(super) fn metallb(
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
    let mut names = Unique::new("pool name", "give each pool its own name");
    for (pk, name, addrs) in lists {
        let is_named = pk.0.len() == 3;
        let name_key = if is_named { pk.key("name") } else { pk.clone() };
        let Some(label) = c.check(&name_key, Label::parse(&name)) else {
            continue;
        };
        names.insert(c, &name_key, name.clone(), format_args!("\"{name}\""));
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
