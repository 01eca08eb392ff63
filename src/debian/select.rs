//! Which packages a profile's base needs: what the node runtime uses (the same set the
//! base check in [`crate::stage::check`] looks for), the board's kernel and firmware,
//! and the profile's own `sources.debian.packages`, each with the key that asked for it.

use super::resolve::Request;
use crate::profile::{Board, Profile};
use crate::stage::check::Requirements;

/// Packages every node runs (init, devices, remote access, disk tools, time, TLS roots).
const RUNTIME: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "udev",
    "openssh-server",
    "e2fsprogs",
    "fdisk",
    "kmod",
    "iproute2",
    "iputils-ping",
    "procps",
    "ca-certificates",
    "busybox-static",
    "systemd-timesyncd",
];

/// The board's default kernel package and the boot firmware it needs.
pub fn board_packages(board: Board) -> (&'static str, &'static [&'static str]) {
    match board {
        Board::Rpi => ("linux-image-arm64", &["raspi-firmware"]),
        Board::QemuAarch64 => ("linux-image-arm64", &[]),
        Board::QemuX86_64 => ("linux-image-amd64", &[]),
    }
}

/// Every package the base of `p` asks for (the resolver adds the essential set).
pub fn requests(p: &Profile) -> Vec<Request> {
    let Some(d) = &p.sources.debian else {
        return Vec::new();
    };
    let req = Requirements::for_profile(p);
    let runtime = |name: &str, why: &str| Request {
        name: name.to_owned(),
        suite: None,
        why: why.to_owned(),
    };
    let mut v: Vec<Request> = RUNTIME
        .iter()
        .map(|n| runtime(n, "the node runtime"))
        .collect();
    if req.keepalived {
        v.push(runtime(
            "keepalived",
            "the node runtime (servers hold the VIP)",
        ));
    }
    if req.haproxy {
        v.push(runtime(
            "haproxy",
            "the node runtime (role = \"loadbalancer\" nodes)",
        ));
    }
    if req.nfs_server {
        v.push(runtime(
            "nfs-kernel-server",
            "storage.nfs (a node serves the share)",
        ));
    }
    let (kernel, firmware) = board_packages(p.image.board);
    match &d.kernel {
        Some(k) => v.push(Request {
            name: k.name.clone(),
            suite: k.suite.clone(),
            why: "sources.debian.kernel".into(),
        }),
        // The Pi 5's drivers exist only in backports kernels (>= 6.18.15).
        None if p.image.pi5 => v.push(Request {
            name: kernel.to_owned(),
            suite: Some(format!("{}-backports", d.suites[0])),
            why: "image.pi5 (the Pi 5 needs a backports kernel; set sources.debian.kernel to change it)".into(),
        }),
        None => v.push(runtime(
            kernel,
            "image.board (its default kernel; set sources.debian.kernel to change it)",
        )),
    }
    v.extend(
        firmware
            .iter()
            .map(|f| runtime(f, "image.board (boot firmware)")),
    );
    v.extend(d.packages.iter().enumerate().map(|(i, r)| Request {
        name: r.name.clone(),
        suite: r.suite.clone(),
        why: format!("sources.debian.packages[{i}]"),
    }));
    v
}
