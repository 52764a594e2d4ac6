//! A one-line progress display on a terminal; silent otherwise.

use std::io::Write;
use std::time::{Duration, Instant};

pub struct Progress {
    on: bool,
    last: Option<Instant>,
    shown: bool,
}

impl Progress {
    pub fn new(on: bool) -> Progress {
        Progress {
            on,
            last: None,
            shown: false,
        }
    }

    /// Shows `phase done/total` as a bar, at most ten times a second.
    pub fn show(&mut self, phase: &str, done: u64, total: u64) {
        if !self.on
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let width = 30;
        let filled = (done * width)
            .checked_div(total)
            .map_or(width, |f| f.min(width)) as usize;
        let bar = format!(
            "{}{}",
            "#".repeat(filled),
            "-".repeat(width as usize - filled)
        );
        eprint!("\r{phase:>6} [{bar}] {done}/{total}   ");
        let _ = std::io::stderr().flush();
        self.shown = true;
    }

    pub fn done(&mut self) {
        if self.shown {
            eprint!("\r\x1b[K");
            let _ = std::io::stderr().flush();
            self.shown = false;
        }
    }
}
