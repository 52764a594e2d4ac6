//! A one-line progress display on a terminal; silent otherwise. The line
//! is always ended before anything else is printed: cleared when the run
//! is done, ended with a line break when a failed run drops it (so the
//! error starts on a line of its own, under the last state shown).

use std::io::{Stderr, Write};
use std::time::{Duration, Instant};

pub struct Progress<W: Write = Stderr> {
    on: bool,
    last: Option<Instant>,
    shown: bool,
    sink: W,
}

impl Progress {
    pub fn new(on: bool) -> Progress {
        Progress::to(on, std::io::stderr())
    }
}

impl<W: Write> Progress<W> {
    fn to(on: bool, sink: W) -> Progress<W> {
        Progress {
            on,
            last: None,
            shown: false,
            sink,
        }
    }

    /// Shows `phase done/total unit` with a bar, at most ten times a
    /// second.
    pub fn show(&mut self, phase: &str, done: u64, total: u64, unit: &str) {
        if !self.on
            || self
                .last
                .is_some_and(|t| t.elapsed() < Duration::from_millis(100))
        {
            return;
        }
        self.last = Some(Instant::now());
        let _ = write!(self.sink, "\r{}", line(phase, done, total, unit));
        let _ = self.sink.flush();
        self.shown = true;
    }

    /// Clears the line: the run is done and its report follows.
    pub fn done(&mut self) {
        if self.shown {
            let _ = write!(self.sink, "\r\x1b[K");
            let _ = self.sink.flush();
            self.shown = false;
        }
    }
}

/// A run that fails drops its progress line: what is printed next (the
/// error) must not land in the middle of it.
impl<W: Write> Drop for Progress<W> {
    fn drop(&mut self) {
        if self.shown {
            let _ = writeln!(self.sink);
            let _ = self.sink.flush();
        }
    }
}

/// The progress line: `login [#####-----] 50/100 clients`.
fn line(phase: &str, done: u64, total: u64, unit: &str) -> String {
    let width = 30;
    let filled = (done * width)
        .checked_div(total)
        .map_or(width, |f| f.min(width)) as usize;
    let bar = format!(
        "{}{}",
        "#".repeat(filled),
        "-".repeat(width as usize - filled)
    );
    format!("{phase:>6} [{bar}] {done}/{total} {unit}   ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_says_what_it_counts() {
        let l = line("login", 50, 100, "clients");
        assert_eq!(
            l,
            " login [###############---------------] 50/100 clients   "
        );
    }

    #[test]
    fn a_dropped_line_is_ended_and_a_finished_one_cleared() {
        let mut failed = Vec::new();
        {
            let mut p = Progress::to(true, &mut failed);
            p.show("closed", 3, 10, "chats");
        }
        assert!(failed.starts_with(b"\r"), "{failed:?}");
        assert!(failed.ends_with(b"chats   \n"), "{failed:?}");
        let mut finished = Vec::new();
        {
            let mut p = Progress::to(true, &mut finished);
            p.show("closed", 10, 10, "chats");
            p.done();
        }
        assert!(finished.ends_with(b"\r\x1b[K"), "{finished:?}");
        let mut off = Vec::new();
        Progress::to(false, &mut off).show("closed", 1, 2, "chats");
        assert!(off.is_empty());
    }
}
