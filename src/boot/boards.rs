//! Board definitions: which boot files, DTBs, overlays and initramfs modules a board needs,
//! and its config.txt / cmdline.txt templates.
//!
//! The definitions are data (`firmware/<board>.toml`), embedded at compile time so the
//! binary is self-contained. Input: a [`Board`]; output: a parsed [`BoardDef`] whose
//! templates render with [`BoardDef::config_txt`] and [`BoardDef::cmdline_txt`].

use serde::Deserialize;

use crate::plan::PartRole;
use crate::profile::{Board, PartitionTable};

const RPI: &str = include_str!("../../firmware/rpi.toml");
const QEMU_AARCH64: &str = include_str!("../../firmware/qemu-aarch64.toml");
const QEMU_X86_64: &str = include_str!("../../firmware/qemu-x86_64.toml");

/// One board, as written in `firmware/<name>.toml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct BoardDef {
    pub name: String,
    /// Debian architecture (arm64, amd64).
    pub arch: String,
    pub description: String,
    /// File name of the kernel on p1.
    pub kernel: String,
    /// File name of the initramfs on p1.
    pub initramfs: String,
    pub qemu: QemuDef,
    #[serde(default)]
    pub firmware: FileSet,
    #[serde(default)]
    pub dtbs: FileSet,
    #[serde(default)]
    pub overlays: FileSet,
    pub modules: ModulesDef,
    pub config: Template,
    pub cmdline: Template,
}

/// How `bakery-image run` boots the board in QEMU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QemuDef {
    pub system: String,
    pub machine: String,
    pub cpu: String,
    /// The serial console device inside the guest.
    pub console: String,
}

/// Files copied from one directory of the system tree to p1.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSet {
    /// Directory in the system tree; `{kver}` is the kernel version.
    #[serde(default)]
    pub from: String,
    /// Required files.
    #[serde(default)]
    pub files: Vec<String>,
    /// Copied when present (e.g. a Pi 5 DTB from a newer kernel).
    #[serde(default)]
    pub optional: Vec<String>,
    /// Required only with the MBR partition table (Pi 3 / Zero 2 W).
    #[serde(default)]
    pub mbr_only: Vec<String>,
}

impl FileSet {
    /// The source directory for a kernel version.
    pub fn dir(&self, kver: &str) -> String {
        self.from.replace("{kver}", kver)
    }
    /// Required files for a partition table.
    pub fn required(&self, table: PartitionTable) -> Vec<&str> {
        let mut v: Vec<&str> = self.files.iter().map(String::as_str).collect();
        if table == PartitionTable::Mbr {
            v.extend(self.mbr_only.iter().map(String::as_str));
        }
        v
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModulesDef {
    /// Module names (as in modules.dep, '-' and '_' equivalent), loaded with dependencies.
    pub load: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Template {
    pub template: String,
}

/// Values substituted into the templates.
#[derive(Debug, Clone)]
pub struct TemplateVars<'a> {
    pub node: &'a str,
    /// MBR disk signature (8 hex digits) when the image has an MBR: partitions have no
    /// names there, so the initramfs finds them by disk signature and number.
    pub mbr_signature: Option<&'a str>,
}

impl BoardDef {
    /// The definition of a board (embedded; a parse failure is a build defect caught by tests).
    pub fn get(board: Board) -> BoardDef {
        let text = match board {
            Board::Rpi => RPI,
            Board::QemuAarch64 => QEMU_AARCH64,
            Board::QemuX86_64 => QEMU_X86_64,
        };
        toml::from_str(text).unwrap_or_else(|e| panic!("firmware/{}.toml: {e}", board.name()))
    }

    fn render(&self, template: &str, vars: &TemplateVars) -> String {
        template
            .replace("{board}", &self.name)
            .replace("{node}", vars.node)
            .replace("{kernel}", &self.kernel)
            .replace("{initramfs}", &self.initramfs)
            .replace("{boot_label}", PartRole::Boot.label())
            .replace("{system_label}", PartRole::System.label())
            .replace("{data_label}", PartRole::Data.label())
    }

    /// config.txt for one node.
    pub fn config_txt(&self, vars: &TemplateVars) -> String {
        let mut s = self.render(self.config.template.trim_start(), vars);
        if !s.ends_with('\n') {
            s.push('\n');
        }
        s
    }

    /// cmdline.txt for one node: exactly one line (the Pi firmware reads only the first).
    pub fn cmdline_txt(&self, vars: &TemplateVars) -> String {
        let mut line = self
            .render(&self.cmdline.template, vars)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(sig) = vars.mbr_signature {
            line.push_str(&format!(" bakery.mbr={sig}"));
        }
        format!("{line}\n")
    }

    /// Names of the files at the top of p1 that come from the board (kernel, initramfs,
    /// firmware, DTBs, `overlays/`), for the plan. Optional files are not listed.
    pub fn p1_files(&self, table: PartitionTable) -> Vec<String> {
        let mut v = vec![self.kernel.clone(), self.initramfs.clone()];
        v.extend(
            self.firmware
                .required(table)
                .into_iter()
                .chain(self.dtbs.required(table))
                .map(String::from),
        );
        if !self.overlays.from.is_empty() {
            v.push("overlays/".to_owned());
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_board_parses_and_renders() {
        for (_, b) in Board::ALL {
            let d = BoardDef::get(b);
            assert_eq!(d.name, b.name());
            assert_eq!(d.arch, b.arch());
            let vars = TemplateVars {
                node: "melchior",
                mbr_signature: None,
            };
            let cmd = d.cmdline_txt(&vars);
            assert_eq!(cmd.lines().count(), 1, "{cmd}");
            for needle in [
                "cgroup_memory=1",
                "cgroup_enable=memory",
                "rootwait",
                "panic=",
                "net.ifnames=0",
                "bakery.system=bakery-system",
                "bakery.data=bakery-data",
                "bakery.boot=bakery-boot",
            ] {
                assert!(
                    cmd.contains(needle),
                    "{}: {needle} missing in {cmd}",
                    d.name
                );
            }
            assert!(!d.config_txt(&vars).contains('{'));
            for m in ["squashfs", "overlay", "ext4", "vfat"] {
                assert!(d.modules.load.iter().any(|x| x == m), "{}: {m}", d.name);
            }
        }
    }

    #[test]
    fn rpi_config_has_pi4_and_pi5_sections() {
        let d = BoardDef::get(Board::Rpi);
        let c = d.config_txt(&TemplateVars {
            node: "n1",
            mbr_signature: None,
        });
        for needle in [
            "arm_64bit=1",
            "enable_uart=1",
            "upstream_kernel=1",
            "[pi4]\nkernel=vmlinuz\ninitramfs initrd.img followkernel",
            "[pi5]",
        ] {
            assert!(c.contains(needle), "{needle} missing in\n{c}");
        }
        let cmd = d.cmdline_txt(&TemplateVars {
            node: "n1",
            mbr_signature: None,
        });
        let mbr = d.cmdline_txt(&TemplateVars {
            node: "n1",
            mbr_signature: Some("0a0b0c0d"),
        });
        assert!(mbr.trim_end().ends_with(" bakery.mbr=0a0b0c0d"), "{mbr}");
        assert!(cmd.starts_with("console=tty0 console=ttyS1,115200 "));
        let gpt = d.p1_files(PartitionTable::Gpt);
        assert!(gpt.contains(&"start4.elf".to_owned()));
        assert!(!gpt.contains(&"bootcode.bin".to_owned()));
        assert!(
            d.p1_files(PartitionTable::Mbr)
                .contains(&"bootcode.bin".to_owned())
        );
    }
}
