//! `bakery-image run`: boot a node image in QEMU (TCG) exactly as it would be flashed.
//!
//! Input: an image (`.img`, `.img.xz`, `.img.zst`), read through [`crate::image::reader`]
//! (the reader `inspect` uses): compressed images are decompressed to a sparse raw copy in
//! the run's work dir; raw images are booted in place (writes persist, like a card)
//! unless `snapshot` is set. Kernel, initramfs, cmdline and (on the Pi models) the DTB
//! are read from p1's FAT; the board from p1's `config.txt` (else the kernel's
//! architecture), and the QEMU machine from the board's `[qemu]` data
//! (`firmware/<board>.toml`): `virt`/`q35` by default, `raspi4b`/`raspi3b` on request.
//! Test-only DTB edits are applied to a copy in the work dir, never to the image. The
//! Pi console (`ttyS1`/`tty0`) is swapped for the machine's console.
//!
//! Steps: prepare the disk and boot files (here), build the argv ([`super::qemu`], pure),
//! spawn, and with `check` watch the console ([`super::console`]) for a [`RunOutcome`].
//! QEMU never outlives the call. A SIGKILL of the runner itself cannot reach QEMU
//! (PR_SET_PDEATHSIG would need `unsafe` pre_exec), so harnesses start the runner in its
//! own process group and kill the group (a power cut).
//! Networks: none, restricted user networking, or a port on a `vde_switch` (`Net::Vde`)
//! so several VMs share one private L2 with no host IP traffic; `mac` sets the NIC's.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::boards::{BoardDef, MachineDef};
pub use super::console::{FAILURE_MARKERS, READY_MARKER, RunOutcome};
use super::console::{Guard, Watch};
use super::qemu::{Console, VmSpec, qemu_argv};
pub use super::qemu::{Net, extra_drive};
use crate::error::UserError;
use crate::image::reader::{self, DiskImage};
use crate::profile::{Board, PartitionTable};

/// Parse a unicast Ethernet address `xx:xx:xx:xx:xx:xx` (normalised to lower case).
pub fn parse_mac(s: &str) -> std::result::Result<String, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()));
    if !ok {
        return Err(format!("{s:?} is not a MAC address like 52:54:00:12:34:56"));
    }
    let first = u8::from_str_radix(parts[0], 16).map_err(|e| e.to_string())?;
    if first & 1 == 1 {
        return Err(format!(
            "{s} is a multicast address; a NIC needs a unicast one"
        ));
    }
    Ok(s.to_ascii_lowercase())
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub image: PathBuf,
    /// The QEMU machine (`virt`, `raspi4b`, ...); None: the board's default.
    pub machine: Option<String>,
    pub memory_mib: u32,
    pub net: Net,
    /// The NIC's MAC address (QEMU picks one when unset; VMs on one L2 need distinct ones).
    pub mac: Option<String>,
    pub timeout: Duration,
    /// Wait for the ready or a failure marker, power off, report.
    pub check: bool,
    /// Extra kernel parameters (e.g. `bakery.selftest=1`).
    pub append: Vec<String>,
    /// Grow the disk to this size before booting (a card bigger than the image).
    pub disk_size: Option<u64>,
    /// Discard the VM's writes (QEMU `snapshot=on`).
    pub snapshot: bool,
    /// Further raw disks (e.g. the NFS node's SSD), attached in order with the serial
    /// `bakery-extra-N`; their writes always persist.
    pub extra_disks: Vec<PathBuf>,
    /// Echo the console to stdout.
    pub echo: bool,
    /// Simulate a power cut: kill QEMU as soon as a console line contains this text
    /// (tests of first-boot recovery).
    pub power_cut_on: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    Aarch64,
    X86_64,
}

/// The architecture of a kernel image: arm64 `Image` ("ARMd" at 0x38) or x86 bzImage
/// ("HdrS" at 0x202).
pub fn kernel_arch(kernel: &[u8]) -> Result<Arch> {
    if kernel.get(0x38..0x3c) == Some(b"ARMd") {
        Ok(Arch::Aarch64)
    } else if kernel.get(0x202..0x206) == Some(b"HdrS") {
        Ok(Arch::X86_64)
    } else {
        bail!("p1's vmlinuz is neither an arm64 Image nor an x86 bzImage")
    }
}

/// Read `names` from the FAT of partition 1 of a raw disk.
pub fn read_boot_files(disk: &Path, names: &[&str]) -> Result<Vec<Vec<u8>>> {
    let tmp = tempfile::tempdir().context("creating a temporary directory")?;
    reader::open(disk, tmp.path(), false)?.read_boot_files(names)
}

/// Replace every `console=` with the VM's console and add the extra parameters.
pub fn vm_cmdline(cmdline: &str, console: &str, extra: &[String]) -> String {
    let mut v: Vec<&str> = cmdline
        .split_whitespace()
        .filter(|w| !w.starts_with("console="))
        .collect();
    let c = format!("console={console}");
    v.push(&c);
    v.extend(extra.iter().map(String::as_str));
    v.join(" ")
}

/// The board an image was built for: named on the first line of p1's `config.txt`
/// (`# bakery-image: <board> ...`), else the QEMU board of the kernel's architecture.
pub fn board_of(config_txt: Option<&str>, arch: Arch) -> Board {
    let want = match arch {
        Arch::Aarch64 => "arm64",
        Arch::X86_64 => "amd64",
    };
    let named = config_txt
        .and_then(|c| c.lines().next())
        .and_then(|l| l.strip_prefix("# bakery-image: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| Board::ALL.iter().find(|(name, _)| *name == n))
        .map(|(_, b)| *b)
        .filter(|b| b.arch() == want);
    named.unwrap_or(match arch {
        Arch::Aarch64 => Board::QemuAarch64,
        Arch::X86_64 => Board::QemuX86_64,
    })
}

/// The machines the host's `system` binary has (`-M help`).
fn host_machines(system: &str) -> Result<Vec<String>> {
    let out = Command::new(system).args(["-M", "help"]).output().map_err(|e| {
        UserError(format!(
            "starting {system}: {e}\nhint: install QEMU (Debian: apt-get install qemu-system-arm qemu-system-x86; ci/setup-host installs the bookworm-backports QEMU)"
        ))
    })?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .collect())
}

/// The first line of `system --version` (for messages).
fn qemu_version(system: &str) -> String {
    Command::new(system)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_owned)
        })
        .unwrap_or_else(|| "an unknown version".into())
}

/// The node of `spec` in the DTB file: `spec` is a path, or `a|b` paths of which the
/// first the tree has is taken (the Pi 4's `/emmc2bus` of 6.1 and 6.12 is
/// `/emmc2-bus@fe000000` in 7.x; the older trees carry no `__symbols__` to find it by
/// label).
fn dtb_node(dtb: &Path, spec: &str) -> Result<String> {
    let alts: Vec<&str> = spec.split('|').collect();
    if let [one] = alts.as_slice() {
        return Ok((*one).to_owned());
    }
    for a in &alts {
        let o = Command::new("fdtget")
            .arg("-l")
            .arg(dtb)
            .arg(a)
            .output()
            .map_err(|err| {
                UserError(format!(
                    "running fdtget: {err}\nhint: install device-tree-compiler (ci/setup-host does)"
                ))
            })?;
        if o.status.success() {
            return Ok((*a).to_owned());
        }
    }
    bail!("the DTB has none of the nodes {spec}")
}

/// Write `dtb` to `out` and apply the machine's test-only edits to that copy (fdtput).
pub fn edited_dtb(dtb: &[u8], out: &Path, m: &MachineDef) -> Result<()> {
    fs_err::write(out, dtb)?;
    let mut edits: Vec<Vec<String>> = Vec::new();
    for node in &m.dtb_disable {
        edits.push(vec![
            "-t".into(),
            "s".into(),
            dtb_node(out, node)?,
            "status".into(),
            "disabled".into(),
        ]);
    }
    for np in &m.dtb_delete {
        let (node, prop) = np
            .split_once(':')
            .with_context(|| format!("dtb-delete {np:?} is not node:property"))?;
        edits.push(vec!["-d".into(), dtb_node(out, node)?, prop.into()]);
    }
    for e in edits {
        let mut cmd = Command::new("fdtput");
        // fdtput FILE comes after the options.
        let (opts, rest) = e.split_at(if e[0] == "-t" { 2 } else { 1 });
        cmd.args(opts).arg(out).args(rest);
        tracing::debug!(argv = ?cmd, "editing the DTB copy");
        let o = cmd.output().map_err(|err| {
            UserError(format!(
                "running fdtput: {err}\nhint: install device-tree-compiler (ci/setup-host does)"
            ))
        })?;
        if !o.status.success() {
            bail!(
                "{cmd:?} failed: {}",
                String::from_utf8_lossy(&o.stderr).trim_end()
            );
        }
    }
    Ok(())
}

/// The work dir's boot files and the disk, ready for QEMU.
struct Prepared {
    board: BoardDef,
    machine_name: String,
    kernel: PathBuf,
    initrd: PathBuf,
    dtb: Option<PathBuf>,
    cmdline: String,
    disk: DiskImage,
}

fn prepare(opts: &RunOptions, work: &Path) -> Result<Prepared> {
    let disk = reader::open(&opts.image, work, false)?;
    let files = disk.read_boot_files(&["vmlinuz", "initrd.img", "cmdline.txt"])?;
    let config = disk.read_boot_files(&["config.txt"]).ok();
    let config = config.as_ref().map(|c| String::from_utf8_lossy(&c[0]));
    let arch = kernel_arch(&files[0])?;
    let board = BoardDef::get(board_of(config.as_deref(), arch));
    let shown = opts.image.display();
    let Some((name, m)) = board.qemu.machine(opts.machine.as_deref()) else {
        return Err(UserError(format!(
            "--machine {}: board {} ({shown}) does not run on that QEMU machine\nhint: use one of {}",
            opts.machine.as_deref().unwrap_or_default(),
            board.name,
            board.qemu.names().join(", ")
        ))
        .into());
    };
    let machine_name = name.to_owned();
    if let Some(t) = m.partition_table
        && !disk.table.kind.eq_ignore_ascii_case(table_name(t))
    {
        return Err(UserError(format!(
            "{shown} has a {} partition table, but the board of QEMU {name} boots only {}\nhint: build the image with `partition-table = \"{}\"` under [image]",
            disk.table.kind,
            table_name(t),
            table_name(t).to_ascii_lowercase()
        ))
        .into());
    }
    if !host_machines(&m.system)?.contains(&machine_name) {
        return Err(UserError(format!(
            "{} ({}) has no machine {name}\nhint: {name} needs a newer QEMU (>= 9; Debian 12: qemu-system-arm from bookworm-backports, which ci/setup-host installs), or run without --machine ({})",
            m.system,
            qemu_version(&m.system),
            board.qemu.default
        ))
        .into());
    }
    grow(&disk, opts, m.disk.needs_power_of_two(), &machine_name)?;
    let kernel = work.join("vmlinuz");
    let initrd = work.join("initrd.img");
    fs_err::write(&kernel, &files[0])?;
    fs_err::write(&initrd, &files[1])?;
    let dtb = match &m.dtb {
        Some(name) => {
            let bytes = disk.read_boot_files(&[name]).map_err(|e| {
                UserError(format!(
                    "{shown}: {e:#}\nhint: QEMU {machine_name} boots with p1's {name}; rebuild the image with a kernel that ships it"
                ))
            })?;
            let out = work.join(format!("qemu-{name}"));
            edited_dtb(&bytes[0], &out, m)
                .with_context(|| format!("preparing {name} for QEMU {machine_name}"))?;
            Some(out)
        }
        None => None,
    };
    let cmdline = String::from_utf8_lossy(&files[2])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    Ok(Prepared {
        board,
        machine_name,
        kernel,
        initrd,
        dtb,
        cmdline,
        disk,
    })
}

fn table_name(t: PartitionTable) -> &'static str {
    match t {
        PartitionTable::Gpt => "GPT",
        PartitionTable::Mbr => "MBR",
    }
}

/// Grow the disk to `--disk-size` and, for SD cards, to a power of two (QEMU refuses
/// others). A decompressed copy is grown freely; an image booted in place only on request.
fn grow(disk: &DiskImage, opts: &RunOptions, pow2: bool, machine: &str) -> Result<()> {
    let size = disk.size()?;
    let mut want = opts.disk_size.unwrap_or(0).max(size);
    if pow2 && !want.is_power_of_two() {
        if !disk.decompressed && opts.disk_size.is_none() {
            return Err(UserError(format!(
                "{}: {size} bytes is not a power of two, which QEMU {machine}'s SD card needs\nhint: add --disk-size {}M (grows the file like a bigger card), or boot the .img.xz",
                opts.image.display(),
                want.next_power_of_two() >> 20
            ))
            .into());
        }
        want = want.next_power_of_two();
    }
    if want > size {
        disk.grow_to(want)?;
    }
    Ok(())
}

/// Boot the image; with `check`, returns what the console showed.
pub fn run(opts: &RunOptions) -> Result<RunOutcome> {
    let tmp = tempfile::Builder::new()
        .prefix("bakery-run-")
        .tempdir()
        .context("creating a temporary directory")?;
    let p = prepare(opts, tmp.path())?;
    for d in &opts.extra_disks {
        if !d.is_file() {
            bail!(
                "extra disk {} is not a file\nhint: create one, e.g. `truncate -s 256M {}`",
                d.display(),
                d.display()
            );
        }
    }
    if let Net::Vde(sock) = &opts.net
        && !sock.exists()
    {
        bail!(
            "vde switch socket {} does not exist\nhint: start one with `vde_switch -d -s {}` (package vde2)",
            sock.display(),
            sock.display()
        );
    }
    let (_, machine) = p
        .board
        .qemu
        .machine(Some(&p.machine_name))
        .expect("chosen above");
    let mut extra = Vec::new();
    if opts.check {
        extra.extend(["bakery.onfail=poweroff", "panic=-1", "bakery.poweroff"].map(String::from));
    }
    extra.extend(opts.append.iter().cloned());
    let append = vm_cmdline(&p.cmdline, &machine.console, &extra);
    let piped = opts.check || !std::io::stdin().is_terminal();
    let argv = qemu_argv(&VmSpec {
        machine_name: &p.machine_name,
        machine,
        memory_mib: opts.memory_mib,
        kernel: &p.kernel,
        initrd: &p.initrd,
        dtb: p.dtb.as_deref(),
        append: &append,
        disk: &p.disk.raw_path,
        snapshot: opts.snapshot || p.disk.decompressed,
        extra_disks: &opts.extra_disks,
        net: &opts.net,
        mac: opts.mac.as_deref(),
        console: if piped {
            Console::Stdio
        } else {
            Console::Terminal
        },
    })?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]);
    if piped {
        cmd.stdin(Stdio::null());
        if opts.check {
            cmd.stdout(Stdio::piped());
        }
    }
    tracing::debug!(argv = ?cmd, "starting QEMU");
    let started = Instant::now();
    let child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "starting {}: {e}\nhint: install QEMU (Debian: apt-get install qemu-system-arm qemu-system-x86)",
            argv[0]
        )
    })?;
    let mut guard = Guard(child);
    if !opts.check {
        let status = guard.0.wait()?;
        return Ok(RunOutcome {
            exit_status: status.code(),
            ..RunOutcome::empty()
        });
    }
    super::console::watch(
        guard,
        started,
        &Watch {
            timeout: opts.timeout,
            echo: opts.echo,
            power_cut_on: opts.power_cut_on.clone(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn console_is_swapped_and_extras_appended() {
        let c = vm_cmdline(
            "console=tty0 console=ttyS1,115200 rootwait bakery.data=bakery-data",
            "ttyAMA0",
            &["bakery.poweroff".into()],
        );
        assert_eq!(
            c,
            "rootwait bakery.data=bakery-data console=ttyAMA0 bakery.poweroff"
        );
    }

    #[test]
    fn kernel_formats_are_recognised() {
        let mut arm = vec![0u8; 0x300];
        arm[0x38..0x3c].copy_from_slice(b"ARMd");
        assert_eq!(kernel_arch(&arm).unwrap(), Arch::Aarch64);
        let mut x86 = vec![0u8; 0x300];
        x86[0x202..0x206].copy_from_slice(b"HdrS");
        assert_eq!(kernel_arch(&x86).unwrap(), Arch::X86_64);
        assert!(kernel_arch(&[0u8; 16]).is_err());
    }

    #[test]
    fn extra_disks_get_serials_and_bad_paths_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        let ssd = dir.path().join("ssd.img");
        std::fs::write(&ssd, vec![0u8; 4096]).unwrap();
        let d = extra_drive(&ssd, 2, "virtio-blk-pci").unwrap();
        assert_eq!(d[3], "virtio-blk-pci,drive=extra2,serial=bakery-extra-2");
        assert!(
            d[1].starts_with(&format!("file={},if=none,id=extra2,", ssd.display())),
            "{d:?}"
        );
        // QEMU itself accepts them (it is paused at once and stopped by the timeout).
        if std::process::Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_ok()
        {
            let out = std::process::Command::new("timeout")
                .args([
                    "3",
                    "qemu-system-x86_64",
                    "-M",
                    "q35",
                    "-display",
                    "none",
                    "-S",
                ])
                .args(&d)
                .output()
                .unwrap();
            assert_eq!(
                out.status.code(),
                Some(124),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let comma = dir.path().join("a,b.img");
        std::fs::write(&comma, b"x").unwrap();
        assert!(extra_drive(&comma, 1, "virtio-blk-pci").is_err());
    }

    #[test]
    fn boards_are_read_from_config_txt() {
        let rpi = "# bakery-image: rpi boot configuration for n1. Generated; rebuild to change.\n";
        assert_eq!(board_of(Some(rpi), Arch::Aarch64), Board::Rpi);
        // A board of another architecture, or none, falls back to the kernel's.
        assert_eq!(board_of(Some(rpi), Arch::X86_64), Board::QemuX86_64);
        assert_eq!(board_of(None, Arch::Aarch64), Board::QemuAarch64);
        assert_eq!(
            board_of(Some("arm_64bit=1\n"), Arch::Aarch64),
            Board::QemuAarch64
        );
    }

    #[test]
    fn macs_parse() {
        assert_eq!(parse_mac("52:54:00:AB:00:01").unwrap(), "52:54:00:ab:00:01");
        assert!(parse_mac("52:54:00:ab:00").is_err());
        assert!(parse_mac("52:54:00:ab:00:zz").is_err());
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
    }
}
