//! The node runtime laid into the system image: bakery units and scripts, enablement links,
//! masks, and the identity scrub that keeps per-node secrets out of the shared image.
//!
//! Input: nothing but the files under `overlays/runtime/` (embedded at compile time).
//! Output: a [`Tree`] to overlay on the composed system tree ([`runtime_overlay`]) and
//! [`prepare_system`], which does that and removes identity baked in by package scripts.

use anyhow::{Context, Result};

use crate::stage::{Data, Entry, Kind, Tree};

macro_rules! overlay_files {
    ($($path:literal => $mode:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../overlays/runtime/", $path)), $mode)),*]
    };
}

/// Files of `overlays/runtime/`: (path in the system, content, mode).
pub const FILES: &[(&str, &str, u32)] = overlay_files![
    "etc/ssh/sshd_config.d/bakery.conf" => 0o644,
    "usr/lib/bakery/common.sh" => 0o644,
    "usr/lib/bakery/bakery-node" => 0o755,
    "usr/lib/bakery/bakery-join" => 0o755,
    "usr/lib/bakery/cluster.sh" => 0o644,
    "usr/lib/bakery/bakery-status" => 0o755,
    "usr/lib/bakery/bakery-vip-check" => 0o755,
    "usr/lib/bakery/bakery-time-wait" => 0o755,
    "usr/lib/bakery/bakery-clock-save" => 0o755,
    "usr/lib/bakery/bakery-ready" => 0o755,
    "usr/lib/bakery/bakery-selftest" => 0o755,
    "usr/lib/bakery/bakery-depmod" => 0o755,
    "usr/lib/bakery/bakery-probe" => 0o755,
    "usr/lib/bakery/bakery-nfs" => 0o755,
    "usr/lib/bakery/bakery-nfscheck" => 0o755,
    "usr/lib/systemd/system/bakery-node.service" => 0o644,
    "usr/lib/systemd/system/bakery-join.service" => 0o644,
    "usr/lib/systemd/system/bakery-status.socket" => 0o644,
    "usr/lib/systemd/system/bakery-status@.service" => 0o644,
    "usr/lib/systemd/system/bakery-time-wait.service" => 0o644,
    "usr/lib/systemd/system/bakery-clock.service" => 0o644,
    "usr/lib/systemd/system/bakery-clock-save.service" => 0o644,
    "usr/lib/systemd/system/bakery-clock-save.timer" => 0o644,
    "usr/lib/systemd/system/bakery-ready.service" => 0o644,
    "usr/lib/systemd/system/bakery-depmod.service" => 0o644,
    "usr/lib/systemd/system/bakery-probe.service" => 0o644,
    "usr/lib/systemd/system/bakery-nfs.service" => 0o644,
    "usr/lib/systemd/system/bakery-nfscheck.service" => 0o644,
    "usr/lib/systemd/system/nfs-server.service.d/bakery.conf" => 0o644,
    "usr/lib/systemd/system/k3s.service" => 0o644,
    "usr/lib/systemd/system/keepalived.service.d/bakery.conf" => 0o644,
    "usr/lib/systemd/system/haproxy.service.d/bakery.conf" => 0o644,
    "usr/lib/systemd/system/ssh.service.d/bakery.conf" => 0o644,
    "usr/lib/systemd/system/systemd-networkd-wait-online.service.d/bakery.conf" => 0o644,
];

/// Units enabled in the image: (target.wants dir, unit, where the unit lives).
pub const ENABLED: &[(&str, &str, &str)] = &[
    (
        "sysinit.target.wants",
        "bakery-node.service",
        "/usr/lib/systemd/system",
    ),
    (
        "sysinit.target.wants",
        "bakery-depmod.service",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "bakery-join.service",
        "/usr/lib/systemd/system",
    ),
    (
        "sockets.target.wants",
        "bakery-status.socket",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "bakery-time-wait.service",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "bakery-clock.service",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "bakery-ready.service",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "bakery-probe.service",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "k3s.service",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "bakery-nfs.service",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "bakery-nfscheck.service",
        "/usr/lib/systemd/system",
    ),
    (
        "timers.target.wants",
        "bakery-clock-save.timer",
        "/usr/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "systemd-networkd.service",
        "/lib/systemd/system",
    ),
    (
        "sockets.target.wants",
        "systemd-networkd.socket",
        "/lib/systemd/system",
    ),
    (
        "network-online.target.wants",
        "systemd-networkd-wait-online.service",
        "/lib/systemd/system",
    ),
    (
        "sysinit.target.wants",
        "systemd-timesyncd.service",
        "/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "ssh.service",
        "/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "keepalived.service",
        "/lib/systemd/system",
    ),
    (
        "multi-user.target.wants",
        "haproxy.service",
        "/lib/systemd/system",
    ),
];

/// Units masked in the appliance: gettys on tty2-6 without logind, package timers that
/// would try to change an immutable root.
pub const MASKED: &[&str] = &[
    "getty-static.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "apt-daily.service",
    "apt-daily-upgrade.service",
    "e2scrub_all.timer",
    "e2scrub_reap.service",
    "systemd-time-wait-sync.service",
];

/// Units the packages enable that run only where bakery starts them: the NFS server (on
/// the NFS node, by `bakery-nfs` once the share is on persistent storage).
pub const DISABLED: &[&str] = &["nfs-server.service"];

/// Where the image carries the modes of the node contract's `/etc` files.
pub const MODES_FILE: &str = "usr/lib/bakery/modes";

/// The runtime as a tree to lay over the system (every mtime = `mtime`).
pub fn runtime_overlay(mtime: i64) -> Result<Tree> {
    let mut t = Tree::new();
    t.default_mtime = mtime;
    for (path, text, mode) in FILES {
        t.insert(
            path,
            Entry::file(Data::bytes(*text), *mode).with_mtime(mtime),
        )?;
    }
    // Generated from the node contract: the modes bakery-node gives the files of /etc.
    t.insert(
        MODES_FILE,
        Entry::file(Data::bytes(crate::plan::contract::modes_file()), 0o644).with_mtime(mtime),
    )?;
    for (wants, unit, dir) in ENABLED {
        t.insert(
            &format!("etc/systemd/system/{wants}/{unit}"),
            Entry::symlink(format!("{dir}/{unit}")).with_mtime(mtime),
        )?;
    }
    for unit in MASKED {
        t.insert(
            &format!("etc/systemd/system/{unit}"),
            Entry::symlink("/dev/null").with_mtime(mtime),
        )?;
    }
    Ok(t)
}

/// Lay the runtime over a composed system tree and remove identity that package scripts
/// baked into it: SSH host keys (each node gets its own from p1) and the machine-id
/// (kept on the data partition by the initramfs). Writes kmod's module indexes
/// (`modules.dep`, `modules.alias.bin`, ...) when the kernel package came without them. `/etc/machine-id` stays as an empty
/// file so systemd never treats the read-only image as "first boot" material.
pub fn prepare_system(system: &mut Tree, mtime: i64) -> Result<()> {
    let keys: Vec<String> = system
        .children("etc/ssh")
        .map(|(p, _)| p.to_owned())
        .filter(|p| {
            p.rsplit('/')
                .next()
                .is_some_and(|n| n.starts_with("ssh_host_"))
        })
        .collect();
    for k in keys {
        system.remove(&k);
    }
    let enabled: Vec<String> = system
        .children("etc/systemd/system")
        .map(|(p, _)| p.to_owned())
        .filter(|p| p.ends_with(".wants"))
        .flat_map(|w| DISABLED.iter().map(move |u| format!("{w}/{u}")))
        .filter(|l| system.contains(l))
        .collect();
    for l in enabled {
        system.remove(&l);
    }
    for p in ["etc/machine-id", "var/lib/dbus/machine-id"] {
        if matches!(system.get(p).map(|e| &e.kind), Some(Kind::File(_))) {
            system.add_bytes(p, "", 0o444)?;
            if let Some(e) = system.get_mut(p) {
                e.mtime = mtime;
            }
        }
    }
    system
        .overlay(&runtime_overlay(mtime)?)
        .context("laying the bakery runtime over the system tree")?;
    if let Ok(kver) = super::kernel_version(system) {
        super::kmodindex::ensure_indexes(system, &kver, mtime)
            .with_context(|| format!("writing the module indexes of kernel {kver}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_overlay_file_is_embedded() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("overlays/runtime");
        let mut on_disk = Vec::new();
        let mut stack = vec![dir.clone()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    on_disk.push(p.strip_prefix(&dir).unwrap().to_string_lossy().into_owned());
                }
            }
        }
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|(p, _, _)| p.to_string()).collect();
        listed.sort();
        assert_eq!(
            on_disk, listed,
            "overlays/runtime and runtime::FILES differ"
        );
    }

    #[test]
    fn enabled_units_exist_or_come_from_debian() {
        let t = runtime_overlay(0).unwrap();
        for (_, unit, dir) in ENABLED {
            if dir.starts_with("/usr/lib/systemd") {
                assert!(
                    t.contains(&format!("usr/lib/systemd/system/{unit}")),
                    "{unit}"
                );
            }
        }
    }

    #[test]
    fn prepare_removes_host_keys_and_machine_id() {
        let mut s = Tree::new();
        s.add_bytes("etc/ssh/ssh_host_rsa_key", "secret", 0o600)
            .unwrap();
        s.add_bytes("etc/ssh/sshd_config", "x", 0o644).unwrap();
        s.add_bytes("etc/machine-id", "0123\n", 0o444).unwrap();
        prepare_system(&mut s, 7).unwrap();
        assert!(!s.contains("etc/ssh/ssh_host_rsa_key"));
        assert!(s.contains("etc/ssh/sshd_config"));
        match &s.get("etc/machine-id").unwrap().kind {
            Kind::File(d) => assert!(d.read().unwrap().is_empty()),
            k => panic!("{k:?}"),
        }
        assert!(s.contains("usr/lib/systemd/system/bakery-node.service"));
    }

    #[test]
    fn prepare_disables_the_nfs_server() {
        let mut s = Tree::new();
        let link = "etc/systemd/system/multi-user.target.wants/nfs-server.service";
        s.insert(
            link,
            Entry::symlink("/lib/systemd/system/nfs-server.service"),
        )
        .unwrap();
        prepare_system(&mut s, 7).unwrap();
        assert!(!s.contains(link), "nfs-server stays enabled on every node");
        assert!(s.contains("etc/systemd/system/multi-user.target.wants/bakery-nfs.service"));
    }

    #[test]
    fn the_modes_file_is_the_contracts() {
        let t = runtime_overlay(0).unwrap();
        match &t.get(MODES_FILE).unwrap().kind {
            Kind::File(d) => assert_eq!(
                d.read().unwrap(),
                crate::plan::contract::modes_file().into_bytes()
            ),
            k => panic!("{k:?}"),
        }
    }
}
