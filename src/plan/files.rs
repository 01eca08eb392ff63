//! Which files each node carries on its boot partition (p1).
//!
//! p1 holds everything node-specific, readable and editable from any desktop: the board's
//! boot files at the top level and the node's rendered configuration under `bakery/`,
//! which mirrors the paths it is installed to (`bakery/etc/hostname` -> `/etc/hostname`).
//! Files holding secrets are marked so reports can say they exist without showing them.

use serde::Serialize;

use super::contract;
use crate::profile::{Node, Profile, Role};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedFile {
    /// Path inside the boot partition.
    pub path: String,
    /// Holds key material or passwords: mode 0600 when installed, never printed.
    pub secret: bool,
}

fn f(path: impl Into<String>, secret: bool) -> PlannedFile {
    PlannedFile {
        path: path.into(),
        secret,
    }
}

/// The boot-partition files of one node, sorted by path: the board's files, the
/// firmware's text files and the node contract ([`super::contract`]).
pub fn node_files(p: &Profile, node: &Node, board_files: &[String]) -> Vec<PlannedFile> {
    let mut v: Vec<PlannedFile> = board_files.iter().map(|b| f(b.clone(), false)).collect();
    v.extend([f("config.txt", false), f("cmdline.txt", false)]);
    if let Some(pi5) = crate::boot::BoardDef::get(p.image.board).cmdline.pi5_file {
        v.push(f(pi5, false));
    }
    v.extend([f("sysconf.txt", false)]);
    for nf in contract::files_of(p, node) {
        v.push(f(format!("bakery/{}", nf.path), nf.secret));
    }
    if node.role == Role::Server {
        for (name, secret) in crate::cluster::manifests::names(p) {
            v.push(f(format!("bakery/manifests/{name}"), secret));
        }
    }
    if contract::applies(contract::Scope::Init, p, node) {
        for tls in crate::cluster::pki::CA_FILES {
            v.push(f(format!("bakery/tls/{tls}"), tls.ends_with(".key")));
        }
    }
    v.sort_by(|a, b| a.path.cmp(&b.path));
    v.dedup();
    v
}
