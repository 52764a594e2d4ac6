//! A small logger for the binaries: one line per record on stderr, with
//! the local time and level (and a tag, such as a cluster node's id, when
//! several processes share one terminal or log). The level comes from `--log-level`, else
//! `RUST_LOG` (a plain level such as `debug`, or `target=level` pairs of
//! which the last level wins), else `info`.
//!
//! Logging never blocks the caller: lines go into a bounded queue that a
//! writer thread empties into stderr. If stderr stops taking lines (a pipe
//! nobody reads, a stalled terminal), the queue fills and further lines
//! are dropped and counted; the count is written as soon as stderr takes
//! lines again. That thread is the only one in mp1d besides the loop: a
//! write to stderr can block, and the loop must not. [`flush`] before
//! exit, so the last lines are not lost.

use log::{LevelFilter, Log, Metadata, Record};
use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Lines waiting for stderr at most; past it, lines are dropped.
const QUEUE_LINES: usize = 4096;

enum Msg {
    Line(String),
    /// Answer once every line queued before this one is written.
    Flush(SyncSender<()>),
}

struct QueueLogger {
    queue: SyncSender<Msg>,
    /// `[tag] ` before every message, or nothing.
    tag: String,
}

/// Lines dropped because the queue was full, not yet reported.
static DROPPED: AtomicU64 = AtomicU64::new(0);
static LOGGER: OnceLock<QueueLogger> = OnceLock::new();

impl Log for QueueLogger {
    fn enabled(&self, metadata: &Metadata) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f");
        let line = format!(
            "{now} {:<5} {}{}\n",
            record.level(),
            self.tag,
            record.args()
        );
        if let Err(TrySendError::Full(_)) = self.queue.try_send(Msg::Line(line)) {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// Writes queued lines to stderr, each in one write so lines from several
/// processes do not mix; reports drops first.
fn writer(rx: mpsc::Receiver<Msg>) {
    let mut stderr = std::io::stderr();
    for msg in rx {
        match msg {
            Msg::Line(line) => {
                let dropped = DROPPED.swap(0, Ordering::Relaxed);
                if dropped > 0 {
                    let now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S%.3f");
                    let note = format!(
                        "{now} WARN  {dropped} log lines dropped: stderr was not taking them\n"
                    );
                    let _ = stderr.write_all(note.as_bytes());
                }
                let _ = stderr.write_all(line.as_bytes());
            }
            Msg::Flush(done) => {
                let _ = done.try_send(());
            }
        }
    }
}

/// Parses a level name (`off`, `error`, `warn`, `info`, `debug`, `trace`).
pub fn parse_level(s: &str) -> Option<LevelFilter> {
    let last = s.rsplit([',', '=']).next()?.trim();
    last.parse().ok()
}

/// Installs the logger and starts its writer thread. `level` wins over
/// `RUST_LOG`; `tag` (a cluster node's id) starts every message.
pub fn init(level: Option<LevelFilter>, tag: Option<&str>) {
    let level = level
        .or_else(|| std::env::var("RUST_LOG").ok().and_then(|v| parse_level(&v)))
        .unwrap_or(LevelFilter::Info);
    let (tx, rx) = mpsc::sync_channel(QUEUE_LINES);
    let tag = tag.map(|t| format!("[{t}] ")).unwrap_or_default();
    let logger = LOGGER.get_or_init(|| QueueLogger { queue: tx, tag });
    let started = std::thread::Builder::new()
        .name("log".into())
        .spawn(move || writer(rx))
        .is_ok();
    if started && log::set_logger(logger).is_ok() {
        log::set_max_level(level);
    }
}

/// Waits (at most `limit`) until every line logged so far is written.
pub fn flush(limit: Duration) {
    let Some(logger) = LOGGER.get() else {
        return;
    };
    let deadline = Instant::now() + limit;
    let (done_tx, done_rx) = mpsc::sync_channel(1);
    let mut msg = Msg::Flush(done_tx);
    loop {
        match logger.queue.try_send(msg) {
            Ok(()) => break,
            Err(TrySendError::Full(m)) if Instant::now() < deadline => {
                msg = m;
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(_) => return,
        }
    }
    let _ = done_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels() {
        assert_eq!(parse_level("debug"), Some(LevelFilter::Debug));
        assert_eq!(parse_level("mp1=warn"), Some(LevelFilter::Warn));
        assert_eq!(parse_level("OFF"), Some(LevelFilter::Off));
        assert_eq!(parse_level("loud"), None);
    }
}
