//! Kernel modules for the initramfs: dependencies and insmod order, without running
//! anything on the host.
//!
//! Input: the staged system tree with `lib/modules/<kver>/` (or `usr/lib/modules/...`)
//! and the board's module names. Dependencies come from `modules.dep` when the tree has
//! one; Debian's kernel .deb ships none (its postinst runs depmod), so otherwise they are
//! read from each `.ko`'s ELF `.modinfo` section (`depends=`) and a `modules.dep` is
//! generated ([`ModuleIndex::modules_dep`]) so it can be written into the system tree too.
//! Output: module paths in load order (every module after its dependencies).

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result, bail};

use crate::stage::{Kind, Tree};

/// Why the modules of a board cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ModuleError {
    #[error(
        "kernel module `{name}` is not in {dir} of the system tree\nhint: check the kernel source of the profile (board modules are listed in firmware/<board>.toml)"
    )]
    Missing { name: String, dir: String },
    #[error("kernel module `{name}` depends on `{dep}`, which is not in {dir}")]
    MissingDep {
        name: String,
        dep: String,
        dir: String,
    },
    #[error("kernel module dependency cycle through `{0}`")]
    Cycle(String),
}

/// Canonical module name: file stem with '-' replaced by '_'.
pub fn canonical(name: &str) -> String {
    let stem = name.rsplit('/').next().unwrap_or(name);
    let stem = stem
        .strip_suffix(".ko.xz")
        .or_else(|| stem.strip_suffix(".ko.zst"))
        .or_else(|| stem.strip_suffix(".ko.gz"))
        .or_else(|| stem.strip_suffix(".ko"))
        .unwrap_or(stem);
    stem.replace('-', "_")
}

/// The modules of one kernel: name -> (path relative to the modules dir, dependency names).
#[derive(Debug, Clone)]
pub struct ModuleIndex {
    /// Kernel version.
    pub kver: String,
    /// Modules directory in the tree (`lib/modules/<kver>` or `usr/lib/modules/<kver>`).
    pub dir: String,
    /// Whether `modules.dep` was read from the tree (false: generated from .modinfo).
    pub from_modules_dep: bool,
    modules: BTreeMap<String, (String, Vec<String>)>,
    /// Modules built into the kernel (`modules.builtin`): asked for, nothing to load.
    builtin: BTreeSet<String>,
}

fn builtin_of(tree: &Tree, dir: &str) -> BTreeSet<String> {
    match tree.get(&format!("{dir}/modules.builtin")).map(|e| &e.kind) {
        Some(Kind::File(d)) => String::from_utf8_lossy(&d.read().unwrap_or_default())
            .lines()
            .map(canonical)
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Find the modules directory of `kver` in the tree.
pub fn modules_dir(tree: &Tree, kver: &str) -> Option<String> {
    ["lib/modules", "usr/lib/modules"]
        .iter()
        .map(|d| format!("{d}/{kver}"))
        .find(|d| matches!(tree.get(d).map(|e| &e.kind), Some(Kind::Dir)))
}

impl ModuleIndex {
    /// Index all modules of `kver` in the tree.
    pub fn load(tree: &Tree, kver: &str) -> Result<ModuleIndex> {
        Self::load_for(tree, kver, None)
    }

    /// Index the modules of `kver` needed for `wanted` (and their dependencies). With a
    /// `modules.dep` in the tree everything is indexed anyway (it is one small file).
    pub fn load_for(tree: &Tree, kver: &str, wanted: Option<&[String]>) -> Result<ModuleIndex> {
        let dir = modules_dir(tree, kver).with_context(|| {
            format!("no lib/modules/{kver} in the system tree\nhint: the kernel package must be part of the system sources")
        })?;
        if let Some(e) = tree.get(&format!("{dir}/modules.dep"))
            && let Kind::File(d) = &e.kind
        {
            let text = d
                .read()
                .with_context(|| format!("reading {dir}/modules.dep"))?;
            let text = String::from_utf8_lossy(&text);
            return Ok(ModuleIndex {
                builtin: builtin_of(tree, &dir),
                kver: kver.to_owned(),
                dir,
                from_modules_dep: true,
                modules: parse_modules_dep(&text),
            });
        }
        // No modules.dep: name -> path from file names, dependencies from .modinfo, read
        // only for the modules reachable from `wanted` (all when `None`).
        let prefix = format!("{dir}/");
        let mut paths: BTreeMap<String, String> = BTreeMap::new();
        for (path, e) in tree.iter() {
            if let Some(rel) = path.strip_prefix(&prefix)
                && [".ko", ".ko.xz", ".ko.zst", ".ko.gz"]
                    .iter()
                    .any(|x| rel.ends_with(x))
                && matches!(e.kind, Kind::File(_))
            {
                paths.insert(canonical(rel), rel.to_owned());
            }
        }
        if paths.is_empty() {
            bail!("no kernel modules (.ko) under {dir}");
        }
        let mut queue: Vec<String> = match wanted {
            Some(w) => w.iter().flat_map(|n| n.split('|')).map(canonical).collect(),
            None => paths.keys().cloned().collect(),
        };
        let mut modules = BTreeMap::new();
        while let Some(name) = queue.pop() {
            if modules.contains_key(&name) {
                continue;
            }
            let Some(rel) = paths.get(&name) else {
                continue;
            };
            let path = format!("{prefix}{rel}");
            let Some(Kind::File(d)) = tree.get(&path).map(|e| &e.kind) else {
                continue;
            };
            let bytes = d.read().with_context(|| format!("reading {path}"))?;
            let info = modinfo(&bytes).with_context(|| format!("reading .modinfo of {path}"))?;
            let deps: Vec<String> = info
                .iter()
                .filter(|(k, _)| k == "depends")
                .flat_map(|(_, v)| v.split(','))
                .filter(|s| !s.is_empty())
                .map(canonical)
                .collect();
            queue.extend(deps.iter().cloned());
            modules.insert(name, (rel.clone(), deps));
        }
        Ok(ModuleIndex {
            builtin: builtin_of(tree, &dir),
            kver: kver.to_owned(),
            dir,
            from_modules_dep: false,
            modules,
        })
    }

    /// Of `names`, those neither a module nor built into the kernel.
    pub fn missing(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .filter(|n| {
                let c = canonical(n);
                !self.modules.contains_key(&c) && !self.builtin.contains(&c)
            })
            .cloned()
            .collect()
    }

    /// Path of a module relative to the modules dir.
    pub fn path(&self, name: &str) -> Option<&str> {
        self.modules.get(&canonical(name)).map(|(p, _)| p.as_str())
    }

    pub fn len(&self) -> usize {
        self.modules.len()
    }
    pub fn is_empty(&self) -> bool {
        self.modules.is_empty()
    }

    /// The modules `names` and all their dependencies, in insmod order (dependencies
    /// first; ties in the order asked). Returns paths relative to the modules dir.
    /// Names missing from the kernel are errors unless listed in `optional`; `a|b` is the
    /// first of the alternatives the kernel has.
    pub fn resolve(&self, names: &[String], optional: &[&str]) -> Result<Vec<String>, ModuleError> {
        let mut out = Vec::new();
        let mut done = BTreeSet::new();
        for n in names {
            let c = n
                .split('|')
                .map(canonical)
                .find(|c| self.modules.contains_key(c) || self.builtin.contains(c))
                .unwrap_or_else(|| canonical(n.split('|').next().unwrap_or(n)));
            if !self.modules.contains_key(&c) {
                if self.builtin.contains(&c) || optional.iter().any(|o| canonical(o) == c) {
                    continue;
                }
                return Err(ModuleError::Missing {
                    name: n.clone(),
                    dir: self.dir.clone(),
                });
            }
            self.visit(&c, &mut Vec::new(), &mut done, &mut out)?;
        }
        Ok(out)
    }

    fn visit(
        &self,
        name: &str,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) -> Result<(), ModuleError> {
        if done.contains(name) {
            return Ok(());
        }
        if stack.iter().any(|s| s == name) {
            return Err(ModuleError::Cycle(name.to_owned()));
        }
        let (path, deps) = &self.modules[name];
        stack.push(name.to_owned());
        for d in deps {
            if !self.modules.contains_key(d) {
                return Err(ModuleError::MissingDep {
                    name: name.to_owned(),
                    dep: d.clone(),
                    dir: self.dir.clone(),
                });
            }
            self.visit(d, stack, done, out)?;
        }
        stack.pop();
        done.insert(name.to_owned());
        out.push(path.clone());
        Ok(())
    }

    /// A `modules.dep` in depmod's format for the given modules (all when `None`):
    /// `path: deps...` with the full dependency closure, listed so that loading from the
    /// last to the first works (as modprobe does).
    pub fn modules_dep(&self, only: Option<&[String]>) -> Result<String, ModuleError> {
        let mut s = String::new();
        let paths: BTreeSet<&str> = match only {
            Some(v) => v.iter().map(String::as_str).collect(),
            None => self.modules.values().map(|(p, _)| p.as_str()).collect(),
        };
        for (name, (path, _)) in &self.modules {
            if !paths.contains(path.as_str()) {
                continue;
            }
            let mut order = Vec::new();
            self.visit(name, &mut Vec::new(), &mut BTreeSet::new(), &mut order)?;
            order.pop(); // the module itself comes last
            order.reverse();
            s.push_str(path);
            s.push(':');
            for d in order {
                s.push(' ');
                s.push_str(&d);
            }
            s.push('\n');
        }
        Ok(s)
    }
}

/// Write `modules.dep` into the system tree when it has none (Debian's kernel .deb leaves
/// depmod to its postinst), so busybox/kmod modprobe find dependencies. Returns whether it
/// wrote one.
pub fn ensure_modules_dep(system: &mut Tree, kver: &str, mtime: i64) -> Result<bool> {
    let index = ModuleIndex::load(system, kver)?;
    if index.from_modules_dep {
        return Ok(false);
    }
    let text = index.modules_dep(None)?;
    let path = format!("{}/modules.dep", index.dir);
    system.insert(
        &path,
        crate::stage::Entry::file(crate::stage::Data::bytes(text), 0o644).with_mtime(mtime),
    )?;
    Ok(true)
}

/// Parse depmod's `modules.dep`.
pub fn parse_modules_dep(text: &str) -> BTreeMap<String, (String, Vec<String>)> {
    let mut m = BTreeMap::new();
    for line in text.lines() {
        let Some((path, deps)) = line.split_once(':') else {
            continue;
        };
        let path = path.trim();
        if path.is_empty() {
            continue;
        }
        // modules.dep lists the whole closure; the direct order is rebuilt by `visit`
        // since each dependency carries its own closure too.
        let deps = deps.split_whitespace().map(canonical).collect();
        m.insert(canonical(path), (path.to_owned(), deps));
    }
    m
}

/// The `key=value` entries of a module's `.modinfo` ELF section.
pub fn modinfo(ko: &[u8]) -> Result<Vec<(String, String)>> {
    // Debian compresses its modules since trixie (.ko.xz); the ELF is inside.
    let plain;
    let ko = if ko.starts_with(b"\x7fELF") {
        ko
    } else {
        let (_, mut r) = crate::stage::decompress::decoder(ko)?;
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut r, &mut v).context("decompressing the module")?;
        plain = v;
        &plain
    };
    let elf = goblin::elf::Elf::parse(ko).context("not an ELF module")?;
    let sh = elf
        .section_headers
        .iter()
        .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some(".modinfo"))
        .context("no .modinfo section")?;
    let start = sh.sh_offset as usize;
    let end = start + sh.sh_size as usize;
    let data = ko.get(start..end).context(".modinfo outside the file")?;
    Ok(data
        .split(|b| *b == 0)
        .filter_map(|kv| {
            let kv = std::str::from_utf8(kv).ok()?;
            let (k, v) = kv.split_once('=')?;
            Some((k.to_owned(), v.to_owned()))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index(dep: &str) -> ModuleIndex {
        ModuleIndex {
            kver: "6.1".into(),
            dir: "lib/modules/6.1".into(),
            from_modules_dep: true,
            modules: parse_modules_dep(dep),
            builtin: ["virtio_pci".to_owned()].into(),
        }
    }

    const DEP: &str = "\
kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/jbd2/jbd2.ko:
kernel/fs/mbcache.ko:
kernel/lib/crc16.ko:
kernel/drivers/mmc/host/sdhci-iproc.ko: kernel/drivers/mmc/host/sdhci-pltfm.ko kernel/drivers/mmc/host/sdhci.ko
kernel/drivers/mmc/host/sdhci-pltfm.ko: kernel/drivers/mmc/host/sdhci.ko
kernel/drivers/mmc/host/sdhci.ko:
";

    #[test]
    fn dependencies_come_first_once() {
        let i = index(DEP);
        let v = i
            .resolve(&["sdhci_iproc".into(), "ext4".into(), "sdhci".into()], &[])
            .unwrap();
        let pos = |s: &str| v.iter().position(|p| p.ends_with(s)).unwrap();
        assert!(pos("/sdhci.ko") < pos("sdhci-pltfm.ko"));
        assert!(pos("sdhci-pltfm.ko") < pos("sdhci-iproc.ko"));
        assert!(pos("jbd2.ko") < pos("ext4.ko"));
        assert!(pos("crc16.ko") < pos("ext4.ko"));
        assert_eq!(v.len(), 7);
    }

    #[test]
    fn missing_modules_are_named() {
        let i = index(DEP);
        let e = i.resolve(&["nope".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("`nope`"));
        assert!(i.resolve(&["nope".into()], &["nope"]).unwrap().is_empty());
        // Alternatives: the first the kernel has; none is the first one missing.
        assert_eq!(
            i.resolve(&["nope|jbd2".into()], &[]).unwrap(),
            ["kernel/fs/jbd2/jbd2.ko"]
        );
        let e = i.resolve(&["nope|nada".into()], &[]).unwrap_err();
        assert!(e.to_string().contains("`nope|nada`"), "{e}");
        // Built in: asked for, nothing to load.
        assert_eq!(
            index(DEP).resolve(&["virtio-pci".into()], &[]).unwrap(),
            Vec::<String>::new()
        );
        let bad = index("a.ko: b.ko\n");
        assert!(matches!(
            bad.resolve(&["a".into()], &[]),
            Err(ModuleError::MissingDep { .. })
        ));
        let cyc = index("a.ko: b.ko\nb.ko: a.ko\n");
        assert!(matches!(
            cyc.resolve(&["a".into()], &[]),
            Err(ModuleError::Cycle(_))
        ));
    }

    #[test]
    fn generated_modules_dep_round_trips() {
        let i = index(DEP);
        let text = i.modules_dep(None).unwrap();
        let line = text
            .lines()
            .find(|l| l.starts_with("kernel/fs/ext4"))
            .unwrap();
        // modprobe loads from the end: every dependency of X appears after X.
        assert!(line.ends_with("jbd2.ko") || line.contains("jbd2.ko"));
        let again = parse_modules_dep(&text);
        assert_eq!(again.len(), 7);
        let j = index(&text);
        assert_eq!(
            j.resolve(&["ext4".into()], &[]).unwrap().last().unwrap(),
            "kernel/fs/ext4/ext4.ko"
        );
    }
}
