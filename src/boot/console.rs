//! The console watcher of `bakery-image run --check`: reads a running QEMU's console
//! (its stdout) line by line, echoes it, and decides the boot's verdict from the markers
//! the bakery initramfs and runtime print (`bakery: ready ...`, `bakery: FAIL ...`, a
//! kernel panic). Input: the spawned child (stdout piped) and its start time; output: a
//! [`RunOutcome`]. QEMU never outlives the call: it is killed on timeout, on a power cut
//! and on drop of the [`Guard`].

use std::io::{BufRead, BufReader, Write};
use std::process::Child;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

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
    pub(crate) fn empty() -> Self {
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

/// The hint for a boot that timed out, from what the console showed last: a node waiting
/// for its cluster is not slow, it waits for peers that were not booted.
pub fn timeout_hint(console: &[String]) -> &'static str {
    let waiting = console
        .iter()
        .rev()
        .take(50)
        .any(|l| l.contains("bakery: join: waiting for a cluster member"));
    if waiting {
        "the node waits for the other servers of its cluster (it never starts a second cluster \
         on silence): boot it with them, or, for a first server booted alone, put \
         `new_cluster=1` in sysconf.txt on its boot partition"
    } else {
        "raise --timeout on a loaded machine"
    }
}

/// The `bakery: ready <host> <role>` part of a console line, if it is one. systemd's
/// status line for the unit (`Starting bakery-ready.service - bakery: ready marker...`)
/// is not: it came before the marker and made boot times look shorter than they were.
pub fn ready_marker(line: &str) -> Option<&str> {
    let i = line.find(READY_MARKER)?;
    let r = &line[i..];
    // systemd may shorten the unit's name with an ellipsis, never its description.
    (!line.contains("bakery-ready.service") && !r.starts_with("bakery: ready marker")).then_some(r)
}

/// Kills QEMU when dropped.
#[derive(Debug)]
pub struct Guard(pub Child);
impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// How to watch.
#[derive(Debug, Clone)]
pub struct Watch {
    pub timeout: Duration,
    /// Echo the console to stdout.
    pub echo: bool,
    /// Kill QEMU as soon as a line contains this text (a power cut).
    pub power_cut_on: Option<String>,
}

/// Watch the console of `guard`'s QEMU (started at `started`) until a verdict, the
/// timeout or QEMU's exit.
pub fn watch(mut guard: Guard, started: Instant, w: &Watch) -> Result<RunOutcome> {
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
    let mut deadline = started + w.timeout;
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
                if w.echo {
                    let _ = writeln!(stdout_w, "{line}");
                }
                if let Some(p) = &w.power_cut_on
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
                    && let Some(r) = ready_marker(&line)
                {
                    out.ready = Some(r.to_owned());
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
    fn a_node_waiting_for_its_peers_gets_the_new_cluster_hint() {
        let lines = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let waiting = lines(&[
            "[ 42.5] bakery-join[519]: bakery: join: waiting for a cluster member or for every server to report no cluster state",
            "[ 43.0] something else",
        ]);
        assert!(timeout_hint(&waiting).contains("new_cluster=1"));
        assert!(timeout_hint(&lines(&["[ 9.0] systemd[1]: Starting"])).contains("--timeout"));
    }

    #[test]
    fn the_units_status_line_is_not_the_ready_marker() {
        assert_eq!(
            ready_marker("[   93.8] bakery-ready[640]: bakery: ready ci-s1 server"),
            Some("bakery: ready ci-s1 server")
        );
        assert_eq!(
            ready_marker(
                "         Starting \x1b[0;1;39mbakery-ready.service\x1b[0m - bakery: ready marker..."
            ),
            None
        );
        assert_eq!(ready_marker("bakery: partitions boot=mmcblk1p1"), None);
    }
}
