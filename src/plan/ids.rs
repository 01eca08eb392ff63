//! Deterministic identifiers: disk and partition GUIDs, filesystem serials.
//!
//! Reproducible builds need every "random" ID fixed by the profile; reflashing a node must
//! give it the same IDs again. Each ID is a SHA-256 over a namespace, the cluster name,
//! the node name and the ID's role, cut to size. GUIDs are RFC 9562 version 8 ("custom").

use sha2::{Digest, Sha256};
use uuid::Uuid;

fn digest(cluster: &str, node: &str, role: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    for part in ["bakery-image/v1", cluster, node, role] {
        h.update((part.len() as u32).to_le_bytes());
        h.update(part.as_bytes());
    }
    h.finalize().into()
}

/// A GUID for `role` ("disk", "boot", "system", "data", ...) of one node.
pub fn guid(cluster: &str, node: &str, role: &str) -> Uuid {
    let d = digest(cluster, node, role);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    uuid::Builder::from_custom_bytes(b).into_uuid()
}

/// A 32-bit serial (FAT volume id, MBR disk signature) for `role` of one node.
pub fn serial32(cluster: &str, node: &str, role: &str) -> u32 {
    let d = digest(cluster, node, role);
    u32::from_le_bytes([d[0], d[1], d[2], d[3]])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_and_distinct() {
        let a = guid("magi", "melchior", "boot");
        assert_eq!(a, guid("magi", "melchior", "boot"));
        assert_ne!(a, guid("magi", "balthazar", "boot"));
        assert_ne!(a, guid("magi", "melchior", "data"));
        assert_ne!(
            a,
            guid("mag", "imelchior", "boot"),
            "length-prefixed parts cannot collide by shifting"
        );
        assert_eq!(a.get_version_num(), 8);
    }
}
