//! When a wide flush may go out. A login storm announces every login to
//! everyone: flushing each announcement to 10,000 clients on its own would
//! be 10,000 writes an announcement; paced, one write carries many. Steady
//! chat, where one message reaches everyone far less often, never waits.
//! No I/O and no clock: the loop passes the time in.

use std::time::{Duration, Instant};

/// Connections owed output that make a flush "wide": after one, the next
/// waits (in a storm) so that more arrives for each of them and goes out
/// in the same write.
pub const WIDE_FLUSH: usize = 512;
/// The shortest pause between two wide flushes in a storm.
pub const WIDE_FLUSH_EVERY: Duration = Duration::from_millis(2);

pub struct Pacer {
    /// When the last wide flush ended, and how long it took.
    last_wide_end: Instant,
    last_wide_took: Duration,
}

impl Pacer {
    pub fn new(now: Instant) -> Pacer {
        Pacer {
            last_wide_end: now,
            last_wide_took: Duration::ZERO,
        }
    }

    /// Whether a flush of `dirty` connections, with `broadcasts` waiting,
    /// waits: `Some(until)` when it is wide, in a storm (more than one
    /// broadcast waits), not at shutdown, and the last wide flush ended
    /// less than twice its own length (2 ms at least) ago.
    pub fn hold_until(
        &self,
        dirty: usize,
        broadcasts: usize,
        shutting_down: bool,
        now: Instant,
    ) -> Option<Instant> {
        if dirty < WIDE_FLUSH || broadcasts <= 1 || shutting_down {
            return None;
        }
        let pause = (self.last_wide_took * 2).max(WIDE_FLUSH_EVERY);
        let next = self.last_wide_end + pause;
        (now < next).then_some(next)
    }

    /// A flush of `dirty` connections ran from `started` to `ended`.
    pub fn flushed(&mut self, dirty: usize, started: Instant, ended: Instant) {
        if dirty >= WIDE_FLUSH {
            self.last_wide_took = ended - started;
            self.last_wide_end = ended;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn steady_chat_and_narrow_flushes_never_wait() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        p.flushed(5000, t0, t0 + 10 * MS);
        let now = t0 + 11 * MS;
        assert_eq!(p.hold_until(5000, 1, false, now), None, "one broadcast");
        assert_eq!(p.hold_until(100, 50, false, now), None, "narrow");
        assert_eq!(p.hold_until(5000, 50, true, now), None, "shutting down");
    }

    #[test]
    fn a_storm_waits_twice_as_long_as_the_last_wide_flush_took() {
        let t0 = Instant::now();
        let mut p = Pacer::new(t0);
        p.flushed(5000, t0, t0 + 10 * MS);
        let end = t0 + 10 * MS;
        assert_eq!(p.hold_until(5000, 3, false, end + MS), Some(end + 20 * MS));
        assert_eq!(p.hold_until(5000, 3, false, end + 20 * MS), None);
        // A quick wide flush still leaves 2 ms between two.
        p.flushed(600, end, end);
        assert_eq!(p.hold_until(600, 3, false, end), Some(end + 2 * MS));
        // A narrow flush does not count as one.
        p.flushed(10, end, end + 50 * MS);
        assert_eq!(p.hold_until(600, 3, false, end + 3 * MS), None);
    }
}
