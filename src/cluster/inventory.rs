//! `bakery-image secrets`: what the secrets state holds (names, kinds, fingerprints,
//! creation times, expiry), never values; and rotation of one item on purpose.

use std::fmt::Write;
use std::path::Path;

use anyhow::Result;

use super::items::Item;
use super::pki;
use super::secrets::Secrets;
use crate::error::UserError;
use crate::profile::Profile;

fn date(t: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(t)
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| t.to_string())
}

/// The listing of a secrets directory (read-only; nothing is created).
pub fn list(dir: &Path, p: &Profile) -> Result<String> {
    let mut out = String::new();
    let Some(s) = Secrets::open(dir)? else {
        let _ = writeln!(
            out,
            "no secrets yet for cluster {} (directory {} does not exist); the first build creates them",
            p.cluster.name,
            dir.display()
        );
        return Ok(out);
    };
    let _ = writeln!(
        out,
        "secrets of cluster {} in {}",
        p.cluster.name,
        dir.display()
    );
    let times = s.file_times();
    let mut missing = Vec::new();
    for item in Item::required(p.nodes.iter().map(|n| n.name.as_str())) {
        let files = item.files();
        let Some(created) = files.iter().filter_map(|f| times.get(f)).max() else {
            missing.push(item.name());
            continue;
        };
        let detail = detail(&s, &item).unwrap_or_else(|e| format!("unreadable: {e}"));
        let _ = writeln!(
            out,
            "  {:<28} {}\n  {:<28} created {}{}",
            item.name(),
            item.kind(),
            "",
            date(*created),
            if detail.is_empty() {
                String::new()
            } else {
                format!("; {detail}")
            }
        );
    }
    if !missing.is_empty() {
        let _ = writeln!(
            out,
            "missing (the next build creates them): {}",
            missing.join(", ")
        );
    }
    let known: Vec<String> = p.nodes.iter().map(|n| n.name.to_string()).collect();
    let mut stale: Vec<&str> = times
        .keys()
        .filter_map(|f| f.strip_prefix("nodes/")?.split('/').next())
        .filter(|n| !known.iter().any(|k| k == n))
        .collect();
    stale.dedup();
    if !stale.is_empty() {
        let _ = writeln!(
            out,
            "kept for nodes no longer in the profile: {}",
            stale.join(", ")
        );
    }
    for w in s.warnings() {
        let _ = writeln!(out, "warning: {w}");
    }
    Ok(out)
}

fn detail(s: &Secrets, item: &Item) -> Result<String> {
    Ok(match item {
        Item::Ca => {
            let info = pki::cert_info(s.server_ca_pem()?, "server-ca.crt")?;
            format!(
                "server CA {} valid until {}; token CA hash {}",
                info.subject,
                date(info.not_after),
                s.ca_hash()?
            )
        }
        Item::Admin => {
            let info = pki::cert_info(&s.admin()?.cert_pem, "admin.crt")?;
            format!(
                "{} valid until {}, sha256 {}",
                info.subject,
                date(info.not_after),
                info.fingerprint
            )
        }
        Item::HostKey(n) => {
            let k = ssh_key::PublicKey::from_openssh(s.host_key_pub(n)?.trim())
                .map_err(|e| anyhow::anyhow!("host key of {n}: {e}"))?;
            k.fingerprint(ssh_key::HashAlg::Sha256).to_string()
        }
        _ => String::new(),
    })
}

/// Rotate one item by name; returns the warning about what it breaks.
pub fn rotate(dir: &Path, p: &Profile, name: &str) -> Result<String> {
    let item = Item::parse(name).ok_or_else(|| {
        let names: Vec<String> = Item::required(p.nodes.iter().map(|n| n.name.as_str()))
            .iter()
            .map(Item::name)
            .collect();
        UserError(format!(
            "unknown secrets item \"{name}\"\nhint: one of {}",
            names.join(", ")
        ))
    })?;
    if let Item::NodePassword(n) | Item::HostKey(n) = &item
        && p.node(n).is_none()
    {
        return Err(UserError(format!(
            "node \"{n}\" is not in the profile\nhint: name a node of cluster {}",
            p.cluster.name
        ))
        .into());
    }
    Secrets::rotate(dir, p, &item)?;
    Ok(format!(
        "rotated {}: {}; rebuild the affected images",
        item.name(),
        item.breaks()
    ))
}
