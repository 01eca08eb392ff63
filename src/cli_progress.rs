//! The CLI's progress display: indicatif bars behind the library's [`Reporter`] trait.
//!
//! Bars (bytes, rate, ETA) are drawn on stderr only when it is a terminal; otherwise the
//! CLI uses [`Quiet`] and logs stay clean. This is the only module that uses indicatif.

use std::io::IsTerminal;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::progress::{Quiet, Reporter, Task};

/// The reporter for this process: bars on a terminal, nothing otherwise.
pub fn reporter() -> Box<dyn Reporter> {
    if std::io::stderr().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Quiet)
    }
}

/// One bar per task, stacked.
#[derive(Debug)]
pub struct Bars {
    multi: MultiProgress,
}

impl Bars {
    pub fn new() -> Self {
        Self {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
        }
    }
}

impl Default for Bars {
    fn default() -> Self {
        Self::new()
    }
}

fn style(known_total: bool) -> ProgressStyle {
    let t = if known_total {
        "{msg:24!} [{bar:30}] {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} eta {eta}"
    } else {
        "{msg:24!} {spinner} {bytes:>10} {binary_bytes_per_sec:>12}"
    };
    ProgressStyle::with_template(t)
        .expect("progress templates are valid")
        .progress_chars("=> ")
}

impl Reporter for Bars {
    fn task(&self, name: &str, total: Option<u64>) -> Box<dyn Task + '_> {
        let pb = self.multi.add(ProgressBar::new(total.unwrap_or(0)));
        pb.set_style(style(total.is_some()));
        pb.set_message(name.to_owned());
        Box::new(Bar(pb))
    }
}

struct Bar(ProgressBar);

impl Task for Bar {
    fn advance(&self, n: u64) {
        self.0.inc(n);
    }
    fn set_total(&self, total: u64) {
        self.0.set_style(style(true));
        self.0.set_length(total);
    }
    fn set_position(&self, pos: u64) {
        self.0.set_position(pos);
    }
    fn finish(&self, outcome: &str) {
        let msg = format!("{} {outcome}", self.0.message());
        self.0.finish_with_message(msg);
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if !self.0.is_finished() {
            self.0.abandon();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_parse_and_bars_run_hidden() {
        let _ = (style(true), style(false));
        let bars = Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::hidden()),
        };
        let t = bars.task("rootfs", None);
        t.set_total(10);
        t.set_position(4);
        t.advance(6);
        t.finish("downloaded");
    }
}
