//! Grammar checks for the values of `[storage.nfs]` that reach a node's files beyond
//! what `validate/grammar.rs` checks: the disk (`node.env`, a shell word read by
//! `bakery-nfs`), the StorageClass's `mountOptions` (handed to `mount -o` by
//! csi-driver-nfs) and the directories a node-served share may not be mounted over.
//!
//! Each check returns `Err((message, hint))`; the validator reports it on the key.

/// What `storage.nfs.disk` names, by its shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskSpec {
    /// `/dev/disk/by-id/<name>`: that device (a whole disk or a `-partN`).
    ById,
    /// A filesystem UUID (8-4-4-4-12 hex digits, as `blkid` prints an ext4 UUID).
    Uuid,
    /// A filesystem label (up to 16 characters, as `e2label` sets them).
    Label,
}

type Rule<T> = Result<T, (String, String)>;

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `storage.nfs.disk`: a by-id path, a filesystem UUID or a label.
pub fn disk(s: &str) -> Rule<DiskSpec> {
    let plain = |c: u8| c.is_ascii_alphanumeric() || b"._-".contains(&c);
    if let Some(name) = s.strip_prefix("/dev/disk/by-id/") {
        if !name.is_empty() && name.bytes().all(|c| plain(c) || c == b':') && !name.starts_with('.')
        {
            return Ok(DiskSpec::ById);
        }
        return Err((
            format!("\"{s}\" is not a /dev/disk/by-id/ path"),
            "use the name `ls -l /dev/disk/by-id/` shows for the disk, e.g. \
             \"/dev/disk/by-id/usb-Samsung_SSD_T7_S5SXNG0R123456-0:0\""
                .into(),
        ));
    }
    if is_uuid(s) {
        return Ok(DiskSpec::Uuid);
    }
    if s.starts_with('/') || s.contains(['/', ' ']) {
        return Err((
            format!("\"{s}\" is neither a /dev/disk/by-id/ path, a filesystem UUID nor a label"),
            "name the disk by its label (\"nfs-ssd\"), its filesystem UUID or its \
             /dev/disk/by-id/ path"
                .into(),
        ));
    }
    if s.is_empty() || s.len() > 16 || !s.bytes().all(plain) || s.starts_with('-') {
        return Err((
            format!("\"{s}\" is not a filesystem label"),
            "a label is 1 to 16 letters, digits, '.', '_' or '-' (as set by `e2label`), \
             e.g. \"nfs-ssd\""
                .into(),
        ));
    }
    if s == "bakery-fmt-wip" {
        return Err((
            format!("\"{s}\" is the label bakery-nfs gives a disk while formatting it"),
            "choose another label, e.g. \"nfs-ssd\"".into(),
        ));
    }
    Ok(DiskSpec::Label)
}

/// `storage.nfs.path`: an absolute path of plain characters (it is written unquoted into
/// `/etc/exports` and the StorageClass). A node-served share is also mounted over that
/// path at every boot, so it may not be a system directory.
pub fn export_path(s: &str, node_served: bool) -> Rule<()> {
    let plain = s.starts_with('/')
        && s.len() <= 255
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"._/-+".contains(&c))
        && !s.split('/').any(|seg| seg == "." || seg == "..");
    if !plain {
        return Err((
            format!("export path \"{s}\" is not an absolute path of letters, digits and ._-+/"),
            "e.g. \"/srv/nfs/k8s\"".into(),
        ));
    }
    const SYSTEM: [&str; 13] = [
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/lib",
        "/proc",
        "/root",
        "/run",
        "/sbin",
        "/sys",
        "/usr",
        "/var/lib/rancher",
        "/var/lib/kubelet",
    ];
    let t = s.trim_end_matches('/');
    if node_served
        && (t.is_empty()
            || SYSTEM
                .iter()
                .any(|d| t == *d || t.starts_with(&format!("{d}/"))))
    {
        return Err((
            format!("export path \"{s}\" is a system directory of the node"),
            "the share is mounted over this path at every boot: use a path such as \"/srv/nfs/k8s\"".into(),
        ));
    }
    Ok(())
}

/// One entry of `storage.nfs.mount-options`: `name` or `name=value`, as `mount -o` takes
/// them (entries are joined with commas, so none may hold one).
pub fn mount_option(s: &str) -> Rule<()> {
    let (name, value) = s.split_once('=').map_or((s, None), |(n, v)| (n, Some(v)));
    let name_ok = !name.is_empty()
        && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        && name.as_bytes()[0].is_ascii_alphabetic();
    let value_ok = value.is_none_or(|v| {
        !v.is_empty()
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"._:/-".contains(&c))
    });
    if name_ok && value_ok {
        Ok(())
    } else {
        Err((
            format!("\"{s}\" is not an NFS mount option"),
            "one option per entry, `name` or `name=value` (letters, digits and ._:/-), \
             e.g. [\"rw\", \"hard\", \"vers=3\", \"timeo=600\"]"
                .into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disks_by_shape() {
        assert_eq!(disk("nfs-ssd"), Ok(DiskSpec::Label));
        assert_eq!(
            disk("3e6be9de-8139-4a1f-8a5a-8c0c5b0d7f10"),
            Ok(DiskSpec::Uuid)
        );
        assert_eq!(
            disk("/dev/disk/by-id/usb-Samsung_T7_S5SX-0:0"),
            Ok(DiskSpec::ById)
        );
        for bad in [
            "",
            "a label",
            "/dev/sda",
            "/dev/disk/by-id/",
            "/dev/disk/by-id/../sda",
            "x'y",
            "$(reboot)",
            "seventeen-chars-x",
            "bakery-fmt-wip",
            "-L",
        ] {
            assert!(disk(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn export_paths() {
        assert_eq!(export_path("/srv/nfs/k8s", true), Ok(()));
        assert_eq!(export_path("/volume1/k8s", false), Ok(()));
        assert_eq!(
            export_path("/etc/x", false),
            Ok(()),
            "a NAS may export anything"
        );
        for bad in [
            "srv",
            "/srv/a b",
            "/srv/../etc",
            "/srv/#x",
            "/srv/x\"y",
            "/srv/a,b",
        ] {
            assert!(export_path(bad, false).is_err(), "{bad:?} accepted");
        }
        for sys in [
            "/",
            "/etc",
            "/run/bakery",
            "/usr/share",
            "/var/lib/rancher/k3s",
        ] {
            assert!(
                export_path(sys, true).is_err(),
                "{sys:?} accepted on a node"
            );
        }
    }

    #[test]
    fn mount_options() {
        for ok in [
            "rw",
            "bg",
            "hard",
            "nointr",
            "rsize=32768",
            "tcp",
            "noac",
            "actimeo=0",
            "vers=3",
            "nfsvers=4.1",
            "timeo=600",
            "sec=krb5p",
            "clientaddr=10.0.0.1",
        ] {
            assert_eq!(mount_option(ok), Ok(()), "{ok}");
        }
        for bad in [
            "", "rw,hard", "=3", "vers=", "a b", "x\"y", "3d", "opt=a,b", "o\n",
        ] {
            assert!(mount_option(bad).is_err(), "{bad:?} accepted");
        }
    }
}
