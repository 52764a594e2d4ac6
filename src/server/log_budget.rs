//! A budget for the log lines clients can cause at will (connects, joins
//! and leaves, cuts, dropped datagrams): a login storm or a flood of
//! garbage must not write megabytes of log. Within the budget a line is
//! logged at its level; past it, at debug (so `--log-level debug` still
//! shows every one), and counted; once the second is over, one line says
//! how many were held back. No I/O: the caller passes the time in and
//! does the logging.

use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub struct LogBudget {
    per_window: u32,
    window_start: Instant,
    used: u32,
    /// Lines held back in the current window.
    held: u64,
}

impl LogBudget {
    /// At most `per_second` lines a second at their own level (0: none).
    pub fn new(per_second: u32, now: Instant) -> LogBudget {
        LogBudget {
            per_window: per_second,
            window_start: now,
            used: 0,
            held: 0,
        }
    }

    /// Whether one more line may be logged at its own level now. If not,
    /// it is counted as held back, and `Some(deadline)` is returned the
    /// first time in a window: call [`LogBudget::summary`] then.
    pub fn take(&mut self, now: Instant) -> (bool, Option<Instant>) {
        self.roll(now);
        if self.used < self.per_window {
            self.used += 1;
            return (true, None);
        }
        self.held += 1;
        let first = self.held == 1;
        (false, first.then_some(self.window_start + WINDOW))
    }

    /// How many lines were held back in a window that has ended (once);
    /// a fresh window starts then.
    pub fn summary(&mut self, now: Instant) -> Option<u64> {
        if self.held == 0 || now < self.window_start + WINDOW {
            return None;
        }
        self.window_start = now;
        self.used = 0;
        Some(std::mem::take(&mut self.held))
    }

    /// A new window once the last one is over, unless lines held back in
    /// it still wait for their summary.
    fn roll(&mut self, now: Instant) {
        if self.held == 0 && now >= self.window_start + WINDOW {
            self.window_start = now;
            self.used = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_is_cut_to_the_budget_and_summed_up_once() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(3, t0);
        let results: Vec<bool> = (0..10).map(|_| b.take(t0).0).collect();
        assert_eq!(results.iter().filter(|&&ok| ok).count(), 3);
        assert_eq!(b.summary(t0), None, "not before the second is over");
        let later = t0 + WINDOW;
        assert_eq!(b.summary(later), Some(7));
        assert_eq!(b.summary(later), None);
        // A fresh second has a fresh budget.
        assert!(b.take(later).0);
    }

    #[test]
    fn the_summary_deadline_is_given_once_per_window() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(1, t0);
        assert_eq!(b.take(t0), (true, None));
        assert_eq!(b.take(t0), (false, Some(t0 + WINDOW)));
        assert_eq!(b.take(t0), (false, None));
        let t1 = t0 + WINDOW;
        assert_eq!(b.summary(t1), Some(2));
        assert_eq!(b.take(t1), (true, None));
        assert_eq!(b.take(t1), (false, Some(t1 + WINDOW)));
    }

    #[test]
    fn zero_holds_everything_back() {
        let t0 = Instant::now();
        let mut b = LogBudget::new(0, t0);
        assert!(!b.take(t0).0);
        assert_eq!(b.summary(t0 + WINDOW), Some(1));
    }
}
