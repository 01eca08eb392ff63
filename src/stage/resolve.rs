//! Path resolution inside a staging tree, following its symlinks the way the kernel
//! would inside a chroot at the tree's root, except that a relative `..` that would climb
//! above the root is refused instead of clamped (it only happens in hostile archives).

use std::collections::VecDeque;

use super::{Kind, Tree};

/// Symlinks followed before giving up (the kernel's limit is 40).
const MAX_HOPS: u32 = 40;

/// Why a path cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResolveError {
    /// Resolving leaves the tree; `link` is the symlink that led there ("" if none).
    Escapes { link: String },
    /// Too many symlinks (a loop).
    Loop { link: String },
}

/// Resolve a tree path (relative, as stored), following symlinks in every parent
/// component and, when `follow_last`, in the last one too. Returns the path as stored
/// in the tree; it need not exist.
pub fn resolve(tree: &Tree, path: &str, follow_last: bool) -> Result<String, ResolveError> {
    let mut todo: VecDeque<String> = path.split('/').map(str::to_owned).collect();
    let mut out: Vec<String> = Vec::new();
    let mut hops = 0;
    let mut last_link = String::new();
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "" | "." => continue,
            ".." => {
                if out.pop().is_none() {
                    return Err(ResolveError::Escapes { link: last_link });
                }
                continue;
            }
            _ => {}
        }
        let here = if out.is_empty() {
            c.clone()
        } else {
            format!("{}/{c}", out.join("/"))
        };
        let follow = follow_last || todo.iter().any(|t| !t.is_empty() && t != ".");
        match tree.get(&here).map(|e| &e.kind) {
            Some(Kind::Symlink(target)) if follow => {
                hops += 1;
                last_link = here.clone();
                if hops > MAX_HOPS {
                    return Err(ResolveError::Loop { link: here });
                }
                if target.starts_with('/') {
                    out.clear();
                }
                for t in target.split('/').rev() {
                    todo.push_front(t.to_owned());
                }
            }
            _ => out.push(c),
        }
    }
    Ok(out.join("/"))
}

/// The entry `path` leads to, following symlinks (also in the last component).
pub fn lookup<'a>(tree: &'a Tree, path: &str) -> Option<(String, &'a super::Entry)> {
    let p = resolve(tree, path, true).ok()?;
    let e = tree.get(&p)?;
    Some((p, e))
}

/// The first parent of `path` that is a symlink, if any.
pub fn symlink_parent(tree: &Tree, path: &str) -> Option<String> {
    let mut at = 0;
    while let Some(i) = path[at..].find('/') {
        let parent = &path[..at + i];
        if matches!(tree.get(parent).map(|e| &e.kind), Some(Kind::Symlink(_))) {
            return Some(parent.to_owned());
        }
        at += i + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Entry;

    fn merged_usr() -> Tree {
        let mut t = Tree::new();
        t.insert("usr/bin", Entry::dir(0o755)).unwrap();
        t.insert("bin", Entry::symlink("usr/bin")).unwrap();
        t.insert("lib", Entry::symlink("/usr/lib")).unwrap();
        t.insert("usr/sbin/modprobe", Entry::symlink("../bin/kmod"))
            .unwrap();
        t.insert("loop", Entry::symlink("loop")).unwrap();
        t.insert("up", Entry::symlink("../..")).unwrap();
        t
    }

    #[test]
    fn follows_links_inside_the_tree() {
        let t = merged_usr();
        assert_eq!(
            resolve(&t, "bin/busybox", false).unwrap(),
            "usr/bin/busybox"
        );
        assert_eq!(
            resolve(&t, "lib/modules/x", false).unwrap(),
            "usr/lib/modules/x"
        );
        assert_eq!(resolve(&t, "bin", false).unwrap(), "bin");
        assert_eq!(resolve(&t, "bin", true).unwrap(), "usr/bin");
        assert_eq!(
            resolve(&t, "sbin/../usr/sbin/modprobe", true).unwrap(),
            "usr/bin/kmod"
        );
        assert_eq!(symlink_parent(&t, "bin/busybox").as_deref(), Some("bin"));
        assert_eq!(symlink_parent(&t, "usr/bin/busybox"), None);
    }

    #[test]
    fn refuses_escapes_and_loops() {
        let t = merged_usr();
        assert!(matches!(
            resolve(&t, "up/etc/passwd", false),
            Err(ResolveError::Escapes { link }) if link == "up"
        ));
        assert!(matches!(
            resolve(&t, "loop/x", false),
            Err(ResolveError::Loop { .. })
        ));
    }
}
