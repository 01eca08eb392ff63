//! Board definitions: which boot files, DTBs, overlays and initramfs modules a board needs,
//! and its config.txt / cmdline.txt templates.
//!
//! The definitions are data (`firmware/<board>.toml`), embedded at compile time so the
//! binary is self-contained. Input: a [`Board`]; output: a parsed [`BoardDef`] whose
//! templates render with [`BoardDef::config_txt`] and [`BoardDef::cmdline_txt`].

use std::collections::BTreeMap;

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
    pub cmdline: CmdlineDef,
}

/// How `bakery-image run` boots the board in QEMU: the QEMU machines it runs on, by the
/// name `-M` takes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct QemuDef {
    /// The machine used without `--machine`.
    pub default: String,
    pub machines: BTreeMap<String, MachineDef>,
}

/// One QEMU machine model a board's image boots on.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MachineDef {
    /// The QEMU binary (`qemu-system-aarch64`).
    pub system: String,
    /// `-cpu` (the Pi models have theirs fixed).
    #[serde(default)]
    pub cpu: Option<String>,
    /// `-smp` (the Pi models have theirs fixed).
    #[serde(default)]
    pub smp: Option<u32>,
    /// TCG's vCPU threading: `single` runs every vCPU on one host thread (`thread=single`).
    /// The Pi models have 4 cores fixed; measured alone on 2 host cores, a raspi4b boot
    /// took 135 s wall and 127 s of CPU single-threaded against 154 s and 231 s with one
    /// thread per vCPU, and only single-threaded did the dwc2 USB device enumerate.
    #[serde(default)]
    pub tcg_thread: Option<TcgThread>,
    /// RAM fixed by the model, in MiB (`--memory` does not apply).
    #[serde(default)]
    pub memory: Option<u32>,
    /// The serial console device inside the guest (QEMU's first `-serial`).
    pub console: String,
    /// Where the card is attached.
    pub disk: DiskBus,
    /// The NIC's QEMU device.
    pub nic: String,
    /// The QEMU device of each `--extra-disk`.
    pub extra_disk: String,
    /// Further QEMU arguments.
    #[serde(default)]
    pub args: Vec<String>,
    /// The DTB on p1 given to QEMU (`-dtb`), after the edits below on a copy.
    #[serde(default)]
    pub dtb: Option<String>,
    /// DTB nodes given `status = "disabled"` (devices the model lacks).
    #[serde(default)]
    pub dtb_disable: Vec<String>,
    /// DTB properties deleted, as `node:property`.
    #[serde(default)]
    pub dtb_delete: Vec<String>,
    /// The only partition table this model's board can boot (the Pi 3: MBR).
    #[serde(default)]
    pub partition_table: Option<PartitionTable>,
}

/// How TCG maps a machine's vCPUs to host threads (QEMU's `-accel tcg,thread=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TcgThread {
    /// One host thread for all vCPUs, taken in turn.
    Single,
    /// One host thread per vCPU (QEMU's default where the guest allows it).
    Multi,
}

impl TcgThread {
    /// The value of `-accel tcg,thread=`.
    pub fn qemu_name(self) -> &'static str {
        match self {
            TcgThread::Single => "single",
            TcgThread::Multi => "multi",
        }
    }
}

/// Where a machine's card is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DiskBus {
    /// virtio-blk (`if=virtio`).
    Virtio,
    /// An SD card on the Pi 4's emmc2 (`generic-sdhci`); the size must be a power of two.
    Emmc2,
    /// An SD card on the machine's default SD bus (`if=sd`); a power of two too.
    Sd,
}

impl DiskBus {
    /// SD cards in QEMU must have a power-of-two size.
    pub fn needs_power_of_two(self) -> bool {
        self != DiskBus::Virtio
    }
}

impl QemuDef {
    /// The machine named `name`, or the default one.
    pub fn machine(&self, name: Option<&str>) -> Option<(&str, &MachineDef)> {
        let name = name.unwrap_or(&self.default);
        self.machines
            .get_key_value(name)
            .map(|(k, m)| (k.as_str(), m))
    }
    /// The machine names, default first.
    pub fn names(&self) -> Vec<&str> {
        let mut v = vec![self.default.as_str()];
        v.extend(
            self.machines
                .keys()
                .map(String::as_str)
                .filter(|k| *k != self.default),
        );
        v
    }
}

/// Files copied from one directory of the system tree to p1.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileSet {
    /// Directory in the system tree; `{kver}` is the kernel version.
    #[serde(default)]
    pub from: String,
    /// Where a file missing from `from` is looked for next (the DTBs of Linux >= 6.18).
    #[serde(default)]
    pub also_from: Option<String>,
    /// Required files.
    #[serde(default)]
    pub files: Vec<String>,
    /// Required only with `image.pi5` (the Pi 5 DTBs).
    #[serde(default)]
    pub pi5: Vec<String>,
    /// Required only with the MBR partition table (Pi 3 / Zero 2 W).
    #[serde(default)]
    pub mbr_only: Vec<String>,
}

impl FileSet {
    /// The source directories for a kernel version, in lookup order.
    pub fn dirs(&self, kver: &str) -> Vec<String> {
        std::iter::once(&self.from)
            .chain(self.also_from.as_ref())
            .map(|d| d.replace("{kver}", kver))
            .collect()
    }
    /// Required files for a partition table, with or without Pi 5 support.
    pub fn required(&self, table: PartitionTable, pi5: bool) -> Vec<&str> {
        let mut v: Vec<&str> = self.files.iter().map(String::as_str).collect();
        if table == PartitionTable::Mbr {
            v.extend(self.mbr_only.iter().map(String::as_str));
        }
        if pi5 {
            v.extend(self.pi5.iter().map(String::as_str));
        }
        v
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ModulesDef {
    /// Module names (as in modules.dep, '-' and '_' equivalent), loaded with dependencies;
    /// `a|b` is the first of them the kernel has.
    pub load: Vec<String>,
    /// Loaded too with `image.pi5` (and then required of the kernel).
    #[serde(default)]
    pub pi5: Vec<String>,
}

impl ModulesDef {
    /// The modules the initramfs loads, with or without Pi 5 support.
    pub fn wanted(&self, pi5: bool) -> Vec<String> {
        let mut v = self.load.clone();
        if pi5 {
            v.extend(self.pi5.iter().cloned());
        }
        v
    }
}

/// cmdline.txt: its template, the serial console it names and, on boards with a Pi 5
/// section in config.txt, the file that section reads with the Pi 5's console.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CmdlineDef {
    pub template: String,
    /// `{serial}` in the template.
    #[serde(default)]
    pub serial: Option<String>,
    /// The Pi 5's cmdline file (config.txt `[pi5] cmdline=`).
    #[serde(default)]
    pub pi5_file: Option<String>,
    /// `{serial}` in the Pi 5's file.
    #[serde(default)]
    pub pi5_serial: Option<String>,
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
            .replace(
                "{pi5_cmdline}",
                self.cmdline.pi5_file.as_deref().unwrap_or_default(),
            )
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
        self.cmdline_with(self.cmdline.serial.as_deref(), vars)
    }

    /// The Pi 5's cmdline file for one node (`[pi5] cmdline=` in config.txt): its name
    /// and text, on boards that have one.
    pub fn pi5_cmdline_txt(&self, vars: &TemplateVars) -> Option<(String, String)> {
        let file = self.cmdline.pi5_file.clone()?;
        Some((
            file,
            self.cmdline_with(self.cmdline.pi5_serial.as_deref(), vars),
        ))
    }

    fn cmdline_with(&self, serial: Option<&str>, vars: &TemplateVars) -> String {
        let template = self
            .cmdline
            .template
            .replace("{serial}", serial.unwrap_or_default());
        let mut line = self
            .render(&template, vars)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(sig) = vars.mbr_signature {
            line.push_str(&format!(" bakery.mbr={sig}"));
        }
        format!("{line}\n")
    }

    /// Names of the files at the top of p1 that come from the board (kernel, initramfs,
    /// firmware, DTBs, `overlays/`), for the plan.
    pub fn p1_files(&self, table: PartitionTable, pi5: bool) -> Vec<String> {
        let mut v = vec![self.kernel.clone(), self.initramfs.clone()];
        v.extend(
            self.firmware
                .required(table, pi5)
                .into_iter()
                .chain(self.dtbs.required(table, pi5))
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
            assert!(
                d.qemu.machine(None).is_some(),
                "{}: default machine",
                d.name
            );
            for (name, m) in &d.qemu.machines {
                for del in &m.dtb_delete {
                    assert!(del.split_once(':').is_some(), "{}: {name}: {del}", d.name);
                }
                assert!(m.dtb.is_some() || m.dtb_disable.is_empty(), "{name}");
                // Every DTB a machine boots with is one the board puts on p1.
                if let Some(dtb) = &m.dtb {
                    let table = m.partition_table.unwrap_or(PartitionTable::Gpt);
                    assert!(
                        d.p1_files(table, false).contains(dtb),
                        "{}: {name}: {dtb} is not on p1",
                        d.name
                    );
                }
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
            "[pi5]\n# The same arm64 kernel",
            "initramfs initrd.img followkernel\ncmdline=cmdline-pi5.txt\n",
        ] {
            assert!(c.contains(needle), "{needle} missing in\n{c}");
        }
        let (file, pi5) = d
            .pi5_cmdline_txt(&TemplateVars {
                node: "n1",
                mbr_signature: None,
            })
            .unwrap();
        assert_eq!(file, "cmdline-pi5.txt");
        assert!(
            pi5.starts_with("console=tty0 console=ttyAMA10,115200 "),
            "{pi5}"
        );
        assert_eq!(pi5.lines().count(), 1);
        let gpt5 = d.p1_files(PartitionTable::Gpt, true);
        for f in ["bcm2712-rpi-5-b.dtb", "bcm2712-d-rpi-5-b.dtb"] {
            assert!(gpt5.contains(&f.to_owned()), "{f}");
            assert!(
                !d.p1_files(PartitionTable::Gpt, false)
                    .contains(&f.to_owned())
            );
        }
        assert!(d.modules.wanted(true).iter().any(|m| m == "sdhci-brcmstb"));
        assert!(!d.modules.wanted(false).iter().any(|m| m == "sdhci-brcmstb"));
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
        let gpt = d.p1_files(PartitionTable::Gpt, false);
        assert!(gpt.contains(&"start4.elf".to_owned()));
        assert!(!gpt.contains(&"bootcode.bin".to_owned()));
        assert!(
            d.p1_files(PartitionTable::Mbr, false)
                .contains(&"bootcode.bin".to_owned())
        );
    }
}
