//! kmod's module indexes written in Rust, so udev can autoload drivers from an image whose
//! kernel package never ran depmod (Debian's .deb leaves that to its postinst).
//!
//! Input: the system tree's modules dir (`.ko` files, `modules.order`, `modules.builtin`,
//! `modules.builtin.modinfo`). Output: `modules.dep(.bin)`, `modules.alias(.bin)`,
//! `modules.symbols(.bin)`, `modules.builtin.bin`, `modules.builtin.alias.bin` and
//! `modules.softdep`, the files libkmod (modprobe, udev, systemd-modules-load) reads.
//! The binary format is kmod's index v2.1: a trie of big-endian nodes written children
//! first (libkmod-index.c).

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use super::modules::{ModuleIndex, canonical, modinfo};
use crate::stage::{Data, Entry, Kind, Tree};

const MAGIC: u32 = 0xB007_F457;
const VERSION: u32 = 0x0002_0001;
const F_PREFIX: u32 = 0x8000_0000;
const F_VALUES: u32 = 0x4000_0000;
const F_CHILDS: u32 = 0x2000_0000;

/// A trie node: `prefix` is matched, then one child character is consumed.
#[derive(Debug, Default)]
struct Node {
    prefix: Vec<u8>,
    children: BTreeMap<u8, Node>,
    values: Vec<(u32, String)>,
}

impl Node {
    fn insert(&mut self, key: &[u8], value: &str, prio: u32) {
        let common = self
            .prefix
            .iter()
            .zip(key)
            .take_while(|(a, b)| a == b)
            .count();
        if common < self.prefix.len() {
            let child = Node {
                prefix: self.prefix[common + 1..].to_vec(),
                children: std::mem::take(&mut self.children),
                values: std::mem::take(&mut self.values),
            };
            self.children.insert(self.prefix[common], child);
            self.prefix.truncate(common);
        }
        let rest = &key[common..];
        match rest.split_first() {
            None => {
                if !self.values.iter().any(|(_, v)| v == value) {
                    let at = self.values.partition_point(|(p, _)| *p <= prio);
                    self.values.insert(at, (prio, value.to_owned()));
                }
            }
            Some((c, tail)) => match self.children.get_mut(c) {
                Some(n) => n.insert(tail, value, prio),
                None => {
                    self.children.insert(
                        *c,
                        Node {
                            prefix: tail.to_vec(),
                            children: BTreeMap::new(),
                            values: vec![(prio, value.to_owned())],
                        },
                    );
                }
            },
        }
    }

    fn write(&self, out: &mut Vec<u8>) -> u32 {
        let mut offs = Vec::new();
        let range = self
            .children
            .keys()
            .next()
            .zip(self.children.keys().next_back())
            .map(|(a, b)| (*a, *b));
        if let Some((first, last)) = range {
            for c in first..=last {
                offs.push(self.children.get(&c).map_or(0, |n| n.write(out)));
            }
        }
        let mut off = out.len() as u32;
        if !self.prefix.is_empty() {
            out.extend_from_slice(&self.prefix);
            out.push(0);
            off |= F_PREFIX;
        }
        if let Some((first, last)) = range {
            out.push(first);
            out.push(last);
            for o in offs {
                out.extend_from_slice(&o.to_be_bytes());
            }
            off |= F_CHILDS;
        }
        if !self.values.is_empty() {
            out.extend_from_slice(&(self.values.len() as u32).to_be_bytes());
            for (p, v) in &self.values {
                out.extend_from_slice(&p.to_be_bytes());
                out.extend_from_slice(v.as_bytes());
                out.push(0);
            }
            off |= F_VALUES;
        }
        off
    }
}

/// A kmod index file being built.
#[derive(Debug, Default)]
pub struct Index {
    root: Node,
}

impl Index {
    /// Keys must be ASCII below 128 (kmod's child table); others are skipped.
    pub fn insert(&mut self, key: &str, value: &str, prio: u32) {
        if key.bytes().all(|b| b > 0 && b < 128) {
            self.root.insert(key.as_bytes(), value, prio);
        }
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&MAGIC.to_be_bytes());
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
        let root = self.root.write(&mut out);
        out[8..12].copy_from_slice(&root.to_be_bytes());
        out
    }
}

/// depmod's alias normalisation: '-' becomes '_' outside bracket expressions.
pub fn normalize_alias(a: &str) -> String {
    let mut out = String::with_capacity(a.len());
    let mut in_brackets = false;
    for c in a.chars() {
        match c {
            '[' => in_brackets = true,
            ']' => in_brackets = false,
            '-' if !in_brackets => {
                out.push('_');
                continue;
            }
            _ => {}
        }
        out.push(c);
    }
    out
}

fn text(tree: &Tree, path: &str) -> String {
    match tree.get(path).map(|e| &e.kind) {
        Some(Kind::File(d)) => d
            .read()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}

/// Every index file depmod would write, by file name.
pub fn indexes(tree: &Tree, kver: &str) -> Result<BTreeMap<&'static str, Vec<u8>>> {
    let index = ModuleIndex::load(tree, kver)?;
    let dir = index.dir.clone();
    let dep_text = index.modules_dep(None)?;
    // Priority = position in modules.order (as depmod), unknown modules last.
    let order: BTreeMap<String, u32> = text(tree, &format!("{dir}/modules.order"))
        .lines()
        .enumerate()
        .map(|(i, l)| (canonical(l), i as u32))
        .collect();
    let prio = |name: &str| order.get(name).copied().unwrap_or(u32::MAX >> 4);

    let (mut dep, mut alias, mut symbols) = (Index::default(), Index::default(), Index::default());
    let (mut alias_text, mut softdep_text) = (String::new(), String::new());
    alias_text.push_str("# Aliases extracted from modules themselves.\n");
    softdep_text.push_str("# Soft dependencies extracted from modules themselves.\n");
    for line in dep_text.lines() {
        let Some((path, _)) = line.split_once(':') else {
            continue;
        };
        let name = canonical(path);
        dep.insert(&name, line, prio(&name));
        let full = format!("{dir}/{path}");
        let Some(Kind::File(d)) = tree.get(&full).map(|e| &e.kind) else {
            continue;
        };
        let bytes = d.read().with_context(|| format!("reading {full}"))?;
        for (k, v) in modinfo(&bytes).with_context(|| format!("reading {full}"))? {
            match k.as_str() {
                "alias" => {
                    alias.insert(&normalize_alias(&v), &name, prio(&name));
                    alias_text.push_str(&format!("alias {v} {name}\n"));
                }
                "softdep" => softdep_text.push_str(&format!("softdep {name} {v}\n")),
                _ => {}
            }
        }
        if let Ok(elf) = goblin::elf::Elf::parse(&bytes)
            && let Some(sh) = elf
                .section_headers
                .iter()
                .find(|s| elf.shdr_strtab.get_at(s.sh_name) == Some("__ksymtab_strings"))
            && let Some(strs) =
                bytes.get(sh.sh_offset as usize..(sh.sh_offset + sh.sh_size) as usize)
        {
            for s in strs.split(|b| *b == 0).filter(|s| !s.is_empty()) {
                let s = String::from_utf8_lossy(s);
                symbols.insert(&format!("symbol:{s}"), &name, prio(&name));
            }
        }
    }
    let mut builtin = Index::default();
    for l in text(tree, &format!("{dir}/modules.builtin")).lines() {
        builtin.insert(&canonical(l), "", 0);
    }
    let mut builtin_alias = Index::default();
    let bm = match tree
        .get(&format!("{dir}/modules.builtin.modinfo"))
        .map(|e| &e.kind)
    {
        Some(Kind::File(d)) => d.read().unwrap_or_default(),
        _ => Vec::new(),
    };
    for kv in bm.split(|b| *b == 0) {
        let kv = String::from_utf8_lossy(kv);
        if let Some((m, a)) = kv.split_once(".alias=") {
            builtin_alias.insert(&normalize_alias(a), &m.replace('-', "_"), 0);
        }
    }
    let mut files = BTreeMap::new();
    files.insert("modules.dep", dep_text.into_bytes());
    files.insert("modules.dep.bin", dep.to_bytes());
    files.insert("modules.alias", alias_text.into_bytes());
    files.insert("modules.alias.bin", alias.to_bytes());
    files.insert("modules.symbols.bin", symbols.to_bytes());
    files.insert("modules.builtin.bin", builtin.to_bytes());
    files.insert("modules.builtin.alias.bin", builtin_alias.to_bytes());
    files.insert("modules.softdep", softdep_text.into_bytes());
    files.insert(
        "modules.devname",
        b"# Device nodes to trigger on-demand module loading.\n".to_vec(),
    );
    Ok(files)
}

/// Write the indexes into the system tree when it has none. Returns whether it wrote them.
pub fn ensure_indexes(system: &mut Tree, kver: &str, mtime: i64) -> Result<bool> {
    let Some(dir) = super::modules::modules_dir(system, kver) else {
        return Ok(false);
    };
    if system.contains(&format!("{dir}/modules.dep.bin")) {
        return Ok(false);
    }
    for (name, bytes) in indexes(system, kver)? {
        system.insert(
            &format!("{dir}/{name}"),
            Entry::file(Data::bytes(bytes), 0o644).with_mtime(mtime),
        )?;
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trie_splits_prefixes_and_writes_children_first() {
        let mut i = Index::default();
        i.insert("ext4", "kernel/fs/ext4/ext4.ko:", 1);
        i.insert("ext2", "kernel/fs/ext2/ext2.ko:", 0);
        i.insert("e", "x", 0);
        let b = i.to_bytes();
        assert_eq!(&b[0..4], &MAGIC.to_be_bytes());
        assert_eq!(&b[4..8], &VERSION.to_be_bytes());
        let root = u32::from_be_bytes(b[8..12].try_into().unwrap());
        assert!(root & F_CHILDS != 0, "root has children");
        assert!(
            (root & 0x0FFF_FFFF) as usize > 12,
            "children written before the root"
        );
        assert_eq!(normalize_alias("pci:v-x[a-b]d-"), "pci:v_x[a-b]d_");
    }
}
