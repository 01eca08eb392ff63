//! Dynamic executables for the initramfs, with their shared libraries and loader.
//!
//! Input: the staged system tree (a foreign-architecture rootfs: nothing is run) and the
//! executables wanted (`sfdisk`, `mke2fs`, ...). Each is found in the usual bin dirs,
//! its ELF `PT_INTERP` and `DT_NEEDED` entries are read, and every library is looked up
//! in the tree's library dirs (following the tree's symlinks, e.g. Debian's `/lib ->
//! usr/lib`), recursively. Output: the files to place in the initramfs, by the path the
//! loader will look for them at.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use crate::stage::{Data, Kind, Tree};

/// Follow symlinks (absolute or relative) inside the tree, component by component, to a
/// regular file. Returns the resolved path and its content.
pub fn resolve_file(tree: &Tree, path: &str) -> Result<(String, Data)> {
    let mut todo: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .filter(|c| !c.is_empty())
        .map(String::from)
        .rev()
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0;
    while let Some(c) = todo.pop() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        cur.push(c);
        let p = cur.join("/");
        let e = tree
            .get(&p)
            .with_context(|| format!("{path}: /{p} is not in the system tree"))?;
        match &e.kind {
            Kind::Symlink(t) => {
                hops += 1;
                if hops > 40 {
                    bail!("{path}: too many symlinks");
                }
                cur.pop();
                if t.starts_with('/') {
                    cur.clear();
                }
                todo.extend(
                    t.split('/')
                        .filter(|c| !c.is_empty())
                        .map(String::from)
                        .rev(),
                );
            }
            Kind::Hardlink(t) => {
                let t = t.clone();
                cur = t.split('/').map(String::from).collect();
            }
            _ => {}
        }
    }
    let p = cur.join("/");
    match tree.get(&p).map(|e| &e.kind) {
        Some(Kind::File(d)) => Ok((p, d.clone())),
        _ => bail!("{path}: /{p} is not a regular file in the system tree"),
    }
}

/// What a dynamic ELF file asks of the loader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElfDeps {
    pub interpreter: Option<String>,
    pub needed: Vec<String>,
    /// Debian multiarch triplet from `e_machine` (`aarch64-linux-gnu`, `x86_64-linux-gnu`).
    pub triplet: Option<&'static str>,
}

pub fn elf_deps(bytes: &[u8]) -> Result<ElfDeps> {
    let elf = goblin::elf::Elf::parse(bytes).context("not an ELF file")?;
    let triplet = match elf.header.e_machine {
        goblin::elf::header::EM_AARCH64 => Some("aarch64-linux-gnu"),
        goblin::elf::header::EM_X86_64 => Some("x86_64-linux-gnu"),
        goblin::elf::header::EM_ARM => Some("arm-linux-gnueabihf"),
        _ => None,
    };
    Ok(ElfDeps {
        interpreter: elf.interpreter.map(String::from),
        needed: elf.libraries.iter().map(|s| s.to_string()).collect(),
        triplet,
    })
}

/// Executables and libraries to copy into the initramfs: destination path -> content.
#[derive(Debug, Clone, Default)]
pub struct Closure {
    pub files: BTreeMap<String, Data>,
}

const BIN_DIRS: [&str; 4] = ["usr/sbin", "usr/bin", "sbin", "bin"];

/// Find an executable by name in the tree's bin dirs.
pub fn find_program(tree: &Tree, name: &str) -> Result<(String, Data)> {
    for d in BIN_DIRS {
        let p = format!("{d}/{name}");
        if tree.contains(&p)
            && let Ok(r) = resolve_file(tree, &p)
        {
            return Ok(r);
        }
    }
    bail!(
        "`{name}` is not in the system tree (looked in /usr/sbin, /usr/bin, /sbin, /bin)\nhint: the rootfs must include e2fsprogs and fdisk (the initramfs copies sfdisk, mke2fs, e2fsck and resize2fs from it)"
    )
}

/// Copy `programs` to `usr/sbin/<name>` with every library they need (by SONAME under
/// `lib/<triplet>/`) and the loader at its `PT_INTERP` path.
pub fn closure(tree: &Tree, programs: &[&str]) -> Result<Closure> {
    let mut c = Closure::default();
    let mut queue: Vec<(String, Data)> = Vec::new();
    for name in programs {
        let (src, data) = find_program(tree, name)?;
        tracing::debug!(program = name, from = %src, "initramfs program");
        c.files.insert(format!("usr/sbin/{name}"), data.clone());
        queue.push((src, data));
    }
    let mut seen = BTreeSet::new();
    while let Some((src, data)) = queue.pop() {
        let bytes = data.read().with_context(|| format!("reading /{src}"))?;
        let deps = elf_deps(&bytes).with_context(|| format!("reading ELF /{src}"))?;
        if let Some(interp) = &deps.interpreter {
            let dest = interp.trim_start_matches('/').to_owned();
            if let std::collections::btree_map::Entry::Vacant(v) = c.files.entry(dest) {
                let (_, d) =
                    resolve_file(tree, interp).with_context(|| format!("loader of /{src}"))?;
                v.insert(d);
            }
        }
        let triplet = deps.triplet.unwrap_or("");
        for lib in &deps.needed {
            if !seen.insert(lib.clone()) {
                continue;
            }
            let found = [
                format!("lib/{triplet}/{lib}"),
                format!("usr/lib/{triplet}/{lib}"),
                format!("lib/{lib}"),
                format!("usr/lib/{lib}"),
                format!("lib64/{lib}"),
            ]
            .into_iter()
            .find_map(|p| resolve_file(tree, &p).ok());
            let Some((lsrc, ldata)) = found else {
                bail!("library {lib} needed by /{src} is not in the system tree");
            };
            // libc names the loader as DT_NEEDED too: it lives at its PT_INTERP path only.
            let is_loader = deps
                .interpreter
                .as_deref()
                .is_some_and(|i| i.rsplit('/').next() == Some(lib.as_str()));
            if !is_loader {
                c.files
                    .insert(format!("lib/{triplet}/{lib}"), ldata.clone());
            }
            queue.push((lsrc, ldata));
        }
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::Entry;

    #[test]
    fn follows_usrmerge_symlinks() {
        let mut t = Tree::new();
        t.insert("lib", Entry::symlink("usr/lib")).unwrap();
        t.add_bytes("usr/lib/x/libc.so.6", "c", 0o644).unwrap();
        t.insert("usr/lib/x/libc.so", Entry::symlink("libc.so.6"))
            .unwrap();
        t.insert("lib64", Entry::symlink("/usr/lib/x")).unwrap();
        let (p, _) = resolve_file(&t, "/lib/x/libc.so").unwrap();
        assert_eq!(p, "usr/lib/x/libc.so.6");
        let (p, _) = resolve_file(&t, "/lib64/../x/libc.so").unwrap();
        assert_eq!(p, "usr/lib/x/libc.so.6");
        assert!(resolve_file(&t, "/lib/x/nope").is_err());
        assert!(
            find_program(&t, "sfdisk")
                .unwrap_err()
                .to_string()
                .contains("hint:")
        );
    }
}
