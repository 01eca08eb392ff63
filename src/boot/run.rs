//! `bakery-image run`: boot a node image in QEMU (TCG) exactly as it would be flashed.
//!
//! Input: an image (`.img`, `.img.xz`, `.img.zst`). Compressed images are decompressed to
//! a temporary sparse raw copy; raw images are booted in place (writes persist, like a
//! card) unless `snapshot` is set. Kernel, initramfs and cmdline are read from p1's FAT;
//! the architecture comes from the kernel image itself. The Pi console (`ttyS1`/`tty0`)
//! is swapped for the QEMU machine's serial console. Output: the console on stdout and,
//! with `check`, a [`RunOutcome`] (ready marker or failure, boot time). QEMU never
//! outlives the call: it is killed on timeout, on failure and on drop. A SIGKILL of the
//! runner itself cannot reach QEMU (PR_SET_PDEATHSIG would need `unsafe` pre_exec), so
//! harnesses start the runner in its own process group and kill the group (a power cut).
//! Networks: none, restricted user networking, or a port on a `vde_switch` (`Net::Vde`)
//! so several VMs share one private L2 with no host IP traffic; `mac` sets the NIC's.

use std::io::{BufRead, BufReader, IsTerminal, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

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

/// What a checked boot showed.
#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    /// The `bakery: ready <hostname> <role>` line.
    pub ready: Option<String>,
    /// The first failure marker line.
    pub failure: Option<String>,
    /// Seconds from QEMU start to the ready marker.
    pub boot_seconds: Option<f64>,
    /// QEMU's exit status (None when it was killed).
    pub exit_status: Option<i32>,
    pub timed_out: bool,
    /// QEMU was killed because `power_cut_on` appeared.
    pub power_cut: bool,
    /// Every console line.
    pub console: Vec<String>,
}

impl RunOutcome {
    pub fn ok(&self) -> bool {
        self.ready.is_some() && self.failure.is_none() && !self.timed_out
    }
    fn empty() -> Self {
        RunOutcome {
            ready: None,
            failure: None,
            boot_seconds: None,
            exit_status: None,
            timed_out: false,
            power_cut: false,
            console: Vec::new(),
        }
    }
}

/// Console lines that mean the boot failed.
pub const FAILURE_MARKERS: [&str; 5] = [
    "bakery: FAIL",
    "Kernel panic",
    "emergency mode",
    "Emergency Mode",
    "Failed to execute /init",
];
pub const READY_MARKER: &str = "bakery: ready ";

/// Kills QEMU when dropped.
struct Guard(Child);
impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
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

/// Byte range of partition 1 (GPT or MBR).
pub fn partition1(disk: &mut (impl Read + Seek)) -> Result<(u64, u64)> {
    let mut lba = [0u8; 1024];
    disk.seek(SeekFrom::Start(0))?;
    disk.read_exact(&mut lba)
        .context("reading the partition table")?;
    if &lba[512..520] == b"EFI PART" {
        let entries = u64::from_le_bytes(lba[512 + 72..512 + 80].try_into()?);
        let mut e = [0u8; 48];
        disk.seek(SeekFrom::Start(entries * 512))?;
        disk.read_exact(&mut e)?;
        let first = u64::from_le_bytes(e[32..40].try_into()?);
        let last = u64::from_le_bytes(e[40..48].try_into()?);
        if first == 0 || last < first {
            bail!("GPT partition 1 is empty");
        }
        return Ok((first * 512, (last - first + 1) * 512));
    }
    if lba[510..512] == [0x55, 0xaa] {
        let p = &lba[0x1be..0x1ce];
        let start = u32::from_le_bytes(p[8..12].try_into()?) as u64;
        let len = u32::from_le_bytes(p[12..16].try_into()?) as u64;
        if len > 0 {
            return Ok((start * 512, len * 512));
        }
    }
    bail!("no GPT or MBR partition table")
}

/// Read `names` from the FAT of partition 1.
pub fn read_boot_files(disk: &Path, names: &[&str]) -> Result<Vec<Vec<u8>>> {
    use hadris_fat::sync::FatFs;
    use hadris_fs::sync::Volume;
    use hadris_fs::{MountOptions, OpenOptions};
    use hadris_storage::Partition;
    use hadris_storage::host::FileDevice;

    let (off, len) = partition1(&mut fs_err::File::open(disk)?)?;
    let dev = FileDevice::open(disk).with_context(|| format!("opening {}", disk.display()))?;
    let fs = FatFs::mount(
        Partition::new(dev, off, len),
        MountOptions::new().read_only(),
    )
    .map_err(|e| anyhow::anyhow!("mounting the FAT of partition 1: {e:?}"))?;
    let vol = Volume::new(fs);
    names
        .iter()
        .map(|n| {
            let mut v = Vec::new();
            vol.open(format!("/{n}"), OpenOptions::new().read())
                .map_err(|e| anyhow::anyhow!("{n} on partition 1: {e:?}"))?
                .read_to_end(&mut v)
                .with_context(|| format!("reading {n} from partition 1"))?;
            Ok(v)
        })
        .collect()
}

/// Copy `r` into `w`, seeking over zero blocks so the copy stays sparse.
fn sparse_copy(r: &mut impl Read, w: &mut fs_err::File) -> Result<u64> {
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = crate::io::read_full(r, &mut buf)?;
        if n == 0 {
            break;
        }
        if buf[..n].iter().all(|b| *b == 0) {
            w.seek(SeekFrom::Current(n as i64))?;
        } else {
            w.write_all(&buf[..n])?;
        }
        total += n as u64;
    }
    w.set_len(total)?;
    Ok(total)
}

/// The disk QEMU boots: the raw image itself, or a decompressed temporary copy.
fn disk_for(image: &Path, tmp: &Path) -> Result<(PathBuf, bool)> {
    let name = image.file_name().unwrap_or_default().to_string_lossy();
    let open = || fs_err::File::open(image).map(std::io::BufReader::new);
    let out = tmp.join("disk.img");
    let decoded: Option<Box<dyn Read>> = if name.ends_with(".xz") {
        Some(Box::new(liblzma::read::XzDecoder::new_multi_decoder(
            open()?
        )))
    } else if name.ends_with(".zst") {
        Some(Box::new(zstd::Decoder::new(open()?)?))
    } else {
        None
    };
    match decoded {
        Some(mut r) => {
            let mut w = fs_err::File::create(&out)?;
            sparse_copy(&mut r, &mut w)
                .with_context(|| format!("decompressing {}", image.display()))?;
            Ok((out, true))
        }
        None => Ok((image.to_path_buf(), false)),
    }
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

/// Boot the image; returns what the console showed.
/// The QEMU arguments of extra disk `n` (1-based): a raw `-drive` and a virtio-blk device
/// with the serial `bakery-extra-n` (QEMU no longer takes `serial=` on `-drive`).
pub fn extra_drive(path: &Path, n: usize) -> Result<[String; 4]> {
    let shown = path.display().to_string();
    if !path.is_file() {
        bail!(
            "extra disk {shown} is not a file\nhint: create one, e.g. `truncate -s 256M {shown}`"
        );
    }
    if shown.contains(',') {
        bail!(
            "extra disk {shown}: QEMU options cannot hold a comma\nhint: use a path without commas"
        );
    }
    Ok([
        "-drive".into(),
        format!("file={shown},if=none,id=extra{n},format=raw,cache=unsafe"),
        "-device".into(),
        format!("virtio-blk-pci,drive=extra{n},serial=bakery-extra-{n}"),
    ])
}

pub fn run(opts: &RunOptions) -> Result<RunOutcome> {
    let tmp = tempfile::Builder::new()
        .prefix("bakery-run-")
        .tempdir()
        .context("creating a temporary directory")?;
    let (disk, temporary) = disk_for(&opts.image, tmp.path())?;
    if let Some(size) = opts.disk_size {
        let f = fs_err::OpenOptions::new().write(true).open(&disk)?;
        if f.metadata()?.len() < size {
            f.set_len(size)?;
        }
    }
    let files = read_boot_files(&disk, &["vmlinuz", "initrd.img", "cmdline.txt"])?;
    let arch = kernel_arch(&files[0])?;
    let kernel = tmp.path().join("vmlinuz");
    let initrd = tmp.path().join("initrd.img");
    fs_err::write(&kernel, &files[0])?;
    fs_err::write(&initrd, &files[1])?;
    let cmdline = String::from_utf8_lossy(&files[2]);
    let cmdline = cmdline.lines().next().unwrap_or("");

    let mut extra = Vec::new();
    if opts.check {
        extra.extend(["bakery.onfail=poweroff", "panic=-1", "bakery.poweroff"].map(String::from));
    }
    extra.extend(opts.append.iter().cloned());
    let (system, console) = match arch {
        Arch::Aarch64 => ("qemu-system-aarch64", "ttyAMA0"),
        Arch::X86_64 => ("qemu-system-x86_64", "ttyS0"),
    };
    let append = vm_cmdline(cmdline, console, &extra);
    let mut cmd = Command::new(system);
    cmd.arg("-accel").arg("tcg,tb-size=128");
    match arch {
        Arch::Aarch64 => cmd.args(["-M", "virt", "-cpu", "cortex-a72", "-smp", "2"]),
        Arch::X86_64 => cmd.args([
            "-M",
            "q35",
            "-cpu",
            "max",
            "-smp",
            "1",
            "-device",
            "pvpanic-pci",
            "-action",
            "panic=exit-failure",
        ]),
    };
    cmd.arg("-m").arg(opts.memory_mib.to_string());
    cmd.arg("-no-reboot");
    cmd.arg("-kernel").arg(&kernel).arg("-initrd").arg(&initrd);
    cmd.arg("-append").arg(&append);
    let snapshot = if opts.snapshot || temporary {
        ",snapshot=on"
    } else {
        ""
    };
    cmd.arg("-drive").arg(format!(
        "file={},if=virtio,format=raw,cache=unsafe{snapshot}",
        disk.display()
    ));
    for (i, d) in opts.extra_disks.iter().enumerate() {
        cmd.args(extra_drive(d, i + 1)?);
    }
    let nic = match &opts.mac {
        Some(mac) => format!("virtio-net-pci,netdev=n0,mac={mac}"),
        None => "virtio-net-pci,netdev=n0".to_owned(),
    };
    match &opts.net {
        Net::None => {
            cmd.args(["-nic", "none"]);
        }
        Net::User => {
            cmd.args(["-netdev", "user,id=n0,restrict=on", "-device", &nic]);
        }
        Net::Vde(sock) => {
            if !sock.exists() {
                bail!(
                    "vde switch socket {} does not exist\nhint: start one with `vde_switch -d -s {}` (package vde2)",
                    sock.display(),
                    sock.display()
                );
            }
            if sock.to_string_lossy().contains(',') {
                bail!(
                    "vde switch socket {}: QEMU options cannot hold a comma\nhint: use a path without commas",
                    sock.display()
                );
            }
            cmd.arg("-netdev")
                .arg(format!("vde,id=n0,sock={}", sock.display()));
            cmd.args(["-device", &nic]);
        }
    }
    if opts.check || !std::io::stdin().is_terminal() {
        // The console alone on stdout (no monitor multiplexed in): a harness reads it.
        cmd.args(["-display", "none", "-monitor", "none", "-serial", "stdio"]);
        cmd.stdin(Stdio::null());
        if opts.check {
            cmd.stdout(Stdio::piped());
        }
    } else {
        cmd.arg("-nographic");
    }
    tracing::debug!(argv = ?cmd, "starting QEMU");
    let started = Instant::now();
    let child = cmd.spawn().map_err(|e| {
        anyhow::anyhow!(
            "starting {system}: {e}\nhint: install QEMU (Debian: apt-get install qemu-system-arm qemu-system-x86)"
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
    let stdout = guard.0.stdout.take().context("QEMU stdout")?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\n', '\r'])
                        .replace('\r', "");
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut out = RunOutcome::empty();
    // After the verdict, give the guest time to power off (ready) or to print context.
    let mut deadline = started + opts.timeout;
    let mut stdout_w = std::io::stdout();
    loop {
        let now = Instant::now();
        if now >= deadline {
            if out.ready.is_none() && out.failure.is_none() {
                out.timed_out = true;
            }
            break;
        }
        match rx.recv_timeout(deadline - now) {
            Ok(line) => {
                if opts.echo {
                    let _ = writeln!(stdout_w, "{line}");
                }
                if let Some(p) = &opts.power_cut_on
                    && line.contains(p.as_str())
                {
                    tracing::info!(line = %line, "power cut: killing QEMU");
                    let _ = guard.0.kill();
                    let _ = guard.0.wait();
                    out.power_cut = true;
                    out.console.push(line);
                    break;
                }
                if out.failure.is_none() && FAILURE_MARKERS.iter().any(|m| line.contains(m)) {
                    out.failure = Some(line.clone());
                    deadline = deadline.min(Instant::now() + Duration::from_secs(5));
                }
                if out.ready.is_none()
                    && let Some(i) = line.find(READY_MARKER)
                {
                    out.ready = Some(line[i..].to_owned());
                    out.boot_seconds = Some(started.elapsed().as_secs_f64());
                    deadline = Instant::now() + Duration::from_secs(60);
                }
                out.console.push(line);
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // QEMU exits by itself after the guest powers off; give it a moment, then kill.
    let until = Instant::now() + Duration::from_secs(10);
    while Instant::now() < until {
        if let Some(s) = guard.0.try_wait()? {
            out.exit_status = s.code();
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(guard);
    Ok(out)
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
        let d = extra_drive(&ssd, 2).unwrap();
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
        let e = extra_drive(&dir.path().join("missing.img"), 1).unwrap_err();
        assert!(format!("{e:#}").contains("hint: create one"), "{e:#}");
        let comma = dir.path().join("a,b.img");
        std::fs::write(&comma, b"x").unwrap();
        assert!(extra_drive(&comma, 1).is_err());
    }

    #[test]
    fn nets_and_macs_parse() {
        assert_eq!(Net::parse("none").unwrap(), Net::None);
        assert_eq!(Net::parse("user").unwrap(), Net::User);
        assert_eq!(
            Net::parse("vde:/tmp/x/vde.ctl").unwrap(),
            Net::Vde("/tmp/x/vde.ctl".into())
        );
        assert!(Net::parse("vde:").is_err());
        assert!(Net::parse("tap").is_err());
        assert_eq!(parse_mac("52:54:00:AB:00:01").unwrap(), "52:54:00:ab:00:01");
        assert!(parse_mac("52:54:00:ab:00").is_err());
        assert!(parse_mac("52:54:00:ab:00:zz").is_err());
        assert!(parse_mac("01:00:5e:00:00:01").is_err());
    }
}
