//! The QEMU command line of a `bakery-image run`, as a pure function of the board's
//! machine definition (`firmware/<board>.toml` `[qemu.machines.*]`) and the run's options:
//! [`qemu_argv`] touches no file and starts nothing, so every machine's argv is unit-tested
//! on its own. The caller (`run`) has already checked that the files exist.

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::boards::{DiskBus, MachineDef};

/// Network of the VM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Net {
    None,
    /// QEMU user networking, restricted (no traffic leaves the VM's slirp).
    User,
    /// A port on a `vde_switch` (its control socket directory): VMs on one switch share
    /// one private L2, with no host IP traffic.
    Vde(PathBuf),
}

impl Net {
    /// Parse `none`, `user` or `vde:SOCKET`.
    pub fn parse(s: &str) -> std::result::Result<Net, String> {
        match s {
            "none" => Ok(Net::None),
            "user" => Ok(Net::User),
            _ => match s.strip_prefix("vde:") {
                Some("") => Err("vde: needs the switch's socket, e.g. vde:/tmp/vde.ctl".into()),
                Some(sock) => Ok(Net::Vde(PathBuf::from(sock))),
                None => Err(format!(
                    "unknown network {s:?}: expected none, user or vde:SOCKET"
                )),
            },
        }
    }
}

/// How the console is connected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Console {
    /// The guest's console alone on stdout, no monitor (a harness or a pipe reads it).
    Stdio,
    /// `-nographic`: console and monitor multiplexed on the terminal (Ctrl-A X quits).
    Terminal,
}

/// Everything the command line depends on.
#[derive(Debug, Clone)]
pub struct VmSpec<'a> {
    /// The `-M` name.
    pub machine_name: &'a str,
    pub machine: &'a MachineDef,
    /// Used unless the machine's memory is fixed.
    pub memory_mib: u32,
    pub kernel: &'a Path,
    pub initrd: &'a Path,
    /// The (edited) DTB, for machines that take one.
    pub dtb: Option<&'a Path>,
    pub append: &'a str,
    pub disk: &'a Path,
    /// Discard the VM's writes to the disk.
    pub snapshot: bool,
    pub extra_disks: &'a [PathBuf],
    pub net: &'a Net,
    pub mac: Option<&'a str>,
    pub console: Console,
}

/// A path as a QEMU option value: commas would split it.
fn opt_path(what: &str, p: &Path) -> Result<String> {
    let s = p.display().to_string();
    if s.contains(',') {
        bail!("{what} {s}: QEMU options cannot hold a comma\nhint: use a path without commas");
    }
    Ok(s)
}

/// The QEMU arguments of extra disk `n` (1-based): a raw `-drive` and a `device`
/// (virtio-blk-pci, usb-storage) with the serial `bakery-extra-n` (QEMU no longer takes
/// `serial=` on `-drive`).
pub fn extra_drive(path: &Path, n: usize, device: &str) -> Result<[String; 4]> {
    let shown = opt_path("extra disk", path)?;
    Ok([
        "-drive".into(),
        format!("file={shown},if=none,id=extra{n},format=raw,cache=unsafe"),
        "-device".into(),
        format!("{device},drive=extra{n},serial=bakery-extra-{n}"),
    ])
}

/// The argv (program first) that boots `spec`.
pub fn qemu_argv(spec: &VmSpec) -> Result<Vec<String>> {
    let m = spec.machine;
    let mut a: Vec<String> = vec![m.system.clone()];
    let mut push = |v: &[&str]| a.extend(v.iter().map(|s| (*s).to_owned()));
    let accel = match m.tcg_thread {
        Some(t) => format!("tcg,tb-size=128,thread={}", t.qemu_name()),
        None => "tcg,tb-size=128".to_owned(),
    };
    push(&["-accel", &accel, "-M", spec.machine_name]);
    if let Some(cpu) = &m.cpu {
        push(&["-cpu", cpu]);
    }
    if let Some(smp) = m.smp {
        push(&["-smp", &smp.to_string()]);
    }
    push(&["-m", &m.memory.unwrap_or(spec.memory_mib).to_string()]);
    push(&["-no-reboot"]);
    let args: Vec<&str> = m.args.iter().map(String::as_str).collect();
    push(&args);
    push(&["-kernel", &opt_path("kernel", spec.kernel)?]);
    push(&["-initrd", &opt_path("initramfs", spec.initrd)?]);
    match (&m.dtb, spec.dtb) {
        (Some(_), Some(dtb)) => push(&["-dtb", &opt_path("DTB", dtb)?]),
        (Some(name), None) => bail!("machine {} needs the DTB {name}", spec.machine_name),
        (None, _) => {}
    }
    push(&["-append", spec.append]);
    let disk = opt_path("disk", spec.disk)?;
    let snapshot = if spec.snapshot { ",snapshot=on" } else { "" };
    match m.disk {
        DiskBus::Virtio => push(&[
            "-drive",
            &format!("file={disk},if=virtio,format=raw,cache=unsafe{snapshot}"),
        ]),
        DiskBus::Emmc2 => push(&[
            "-drive",
            &format!("if=none,id=sd,format=raw,file={disk},cache=unsafe{snapshot}"),
            "-device",
            "sd-card,drive=sd,bus=/generic-sdhci/sd-bus",
        ]),
        DiskBus::Sd => push(&[
            "-drive",
            &format!("if=sd,format=raw,file={disk},cache=unsafe{snapshot}"),
        ]),
    }
    for (i, d) in spec.extra_disks.iter().enumerate() {
        push(
            &extra_drive(d, i + 1, &m.extra_disk)?
                .each_ref()
                .map(String::as_str),
        );
    }
    let nic = match spec.mac {
        Some(mac) => format!("{},netdev=n0,mac={mac}", m.nic),
        None => format!("{},netdev=n0", m.nic),
    };
    match spec.net {
        Net::None => push(&["-nic", "none"]),
        Net::User => push(&["-netdev", "user,id=n0,restrict=on", "-device", &nic]),
        Net::Vde(sock) => push(&[
            "-netdev",
            &format!("vde,id=n0,sock={}", opt_path("vde switch socket", sock)?),
            "-device",
            &nic,
        ]),
    }
    match spec.console {
        Console::Stdio => push(&["-display", "none", "-monitor", "none", "-serial", "stdio"]),
        // -nographic, spelt out: it would add no serial port to a machine with -nodefaults.
        Console::Terminal => push(&["-display", "none", "-serial", "mon:stdio"]),
    }
    Ok(a)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::boot::BoardDef;
    use crate::profile::Board;

    fn argv(board: Board, machine: Option<&str>, net: &Net, extra: &[PathBuf]) -> Vec<String> {
        let def = BoardDef::get(board);
        let (name, m) = def.qemu.machine(machine).unwrap();
        qemu_argv(&VmSpec {
            machine_name: name,
            machine: m,
            memory_mib: 1024,
            kernel: Path::new("/w/vmlinuz"),
            initrd: Path::new("/w/initrd.img"),
            dtb: m.dtb.as_ref().map(|_| Path::new("/w/board.dtb")),
            append: "rootwait console=ttyAMA0",
            disk: Path::new("/w/disk.img"),
            snapshot: true,
            extra_disks: extra,
            net,
            mac: Some("52:54:00:00:00:01"),
            console: Console::Stdio,
        })
        .unwrap()
    }

    fn has(a: &[String], seq: &[&str]) -> bool {
        a.windows(seq.len()).any(|w| w == seq)
    }

    #[test]
    fn virt_is_the_rpi_default_with_virtio() {
        let a = argv(Board::Rpi, None, &Net::User, &[]);
        assert_eq!(a[0], "qemu-system-aarch64");
        for seq in [
            &["-M", "virt"][..],
            &["-cpu", "cortex-a72"],
            &["-smp", "2"],
            &["-m", "1024"],
            &[
                "-drive",
                "file=/w/disk.img,if=virtio,format=raw,cache=unsafe,snapshot=on",
            ],
            &["-netdev", "user,id=n0,restrict=on"],
            &["-device", "virtio-net-pci,netdev=n0,mac=52:54:00:00:00:01"],
            &["-serial", "stdio"],
        ] {
            assert!(has(&a, seq), "{seq:?} not in {a:?}");
        }
        assert!(!a.contains(&"-dtb".to_owned()), "{a:?}");
    }

    #[test]
    fn raspi4b_has_the_card_on_emmc2_usb_net_and_the_dtb() {
        let ssd = [PathBuf::from("/w/ssd.img")];
        let a = argv(Board::Rpi, Some("raspi4b"), &Net::User, &ssd);
        for seq in [
            &["-M", "raspi4b"][..],
            &["-m", "2048"],
            &["-dtb", "/w/board.dtb"],
            &[
                "-drive",
                "if=none,id=sd,format=raw,file=/w/disk.img,cache=unsafe,snapshot=on",
            ],
            &["-device", "sd-card,drive=sd,bus=/generic-sdhci/sd-bus"],
            &["-device", "usb-net,netdev=n0,mac=52:54:00:00:00:01"],
            &["-device", "usb-storage,drive=extra1,serial=bakery-extra-1"],
        ] {
            assert!(has(&a, seq), "{seq:?} not in {a:?}");
        }
        // The model fixes cores and CPU; its 4 vCPUs share one host thread.
        assert!(!a.contains(&"-cpu".to_owned()) && !a.contains(&"-smp".to_owned()));
        assert!(
            has(&a, &["-accel", "tcg,tb-size=128,thread=single"]),
            "{a:?}"
        );
    }

    #[test]
    fn raspi3b_uses_its_default_sd_bus_and_q35_its_pvpanic() {
        let a = argv(Board::Rpi, Some("raspi3b"), &Net::None, &[]);
        assert!(
            has(&a, &["-M", "raspi3b"]) && has(&a, &["-m", "1024"]),
            "{a:?}"
        );
        assert!(has(
            &a,
            &[
                "-drive",
                "if=sd,format=raw,file=/w/disk.img,cache=unsafe,snapshot=on"
            ]
        ));
        assert!(has(&a, &["-nic", "none"]));
        assert!(
            has(&a, &["-accel", "tcg,tb-size=128,thread=single"]),
            "{a:?}"
        );
        let x = argv(Board::QemuX86_64, None, &Net::Vde("/run/v".into()), &[]);
        assert_eq!(x[0], "qemu-system-x86_64");
        for seq in [
            &["-M", "q35"][..],
            &["-nodefaults"],
            &["-smp", "1"],
            &["-accel", "tcg,tb-size=128"],
            &["-device", "pvpanic-pci", "-action", "panic=exit-failure"],
            &["-netdev", "vde,id=n0,sock=/run/v"],
            &["-serial", "stdio"],
        ] {
            assert!(has(&x, seq), "{seq:?} not in {x:?}");
        }
    }

    #[test]
    fn commas_in_paths_are_refused_with_a_hint() {
        let def = BoardDef::get(Board::QemuAarch64);
        let (name, m) = def.qemu.machine(None).unwrap();
        let e = qemu_argv(&VmSpec {
            machine_name: name,
            machine: m,
            memory_mib: 512,
            kernel: Path::new("/w/vmlinuz"),
            initrd: Path::new("/w/initrd.img"),
            dtb: None,
            append: "",
            disk: Path::new("/w/a,b.img"),
            snapshot: false,
            extra_disks: &[],
            net: &Net::None,
            mac: None,
            console: Console::Terminal,
        })
        .unwrap_err();
        assert!(
            format!("{e:#}").contains("hint: use a path without commas"),
            "{e:#}"
        );
    }

    #[test]
    fn nets_parse() {
        assert_eq!(Net::parse("none").unwrap(), Net::None);
        assert_eq!(Net::parse("user").unwrap(), Net::User);
        assert_eq!(
            Net::parse("vde:/tmp/x/vde.ctl").unwrap(),
            Net::Vde("/tmp/x/vde.ctl".into())
        );
        assert!(Net::parse("vde:").is_err());
        assert!(Net::parse("tap").is_err());
    }
}
