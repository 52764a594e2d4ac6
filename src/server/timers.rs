//! The loop's one timer facility: a heap of deadlines, each carrying what
//! to do when it passes (Redis's `ae.c` time events, as one list).
//!
//! Timers are never cancelled. A timer whose subject has changed since it
//! was set (a connection freed and its slab slot reused, a deadline moved)
//! is recognised when it fires, by the generation or instant it carries,
//! and ignored: cheaper than finding it in the heap, and it cannot fire for
//! the wrong subject.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

pub struct Timers<T> {
    heap: BinaryHeap<Entry<T>>,
    /// Breaks ties between equal instants: first set, first fired.
    seq: u64,
}

struct Entry<T> {
    at: Instant,
    seq: u64,
    what: T,
}

impl<T> Timers<T> {
    pub fn new() -> Self {
        Timers {
            heap: BinaryHeap::new(),
            seq: 0,
        }
    }

    /// Fires `what` once `at` has passed.
    pub fn set(&mut self, at: Instant, what: T) {
        self.seq += 1;
        self.heap.push(Entry {
            at,
            seq: self.seq,
            what,
        });
    }

    /// The earliest deadline.
    pub fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|e| e.at)
    }

    /// How long the loop may sleep: until the next deadline, rounded up to
    /// whole milliseconds (epoll cannot sleep less, and waking a hair early
    /// would spin until the deadline); `None` means forever.
    pub fn sleep_for(&self, now: Instant) -> Option<Duration> {
        let next = self.next()?;
        Some(next.saturating_duration_since(now) + Duration::from_micros(999))
    }

    /// Takes the earliest timer whose deadline is at or before `now`, with
    /// the deadline it was set for.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(Instant, T)> {
        if self.heap.peek()?.at > now {
            return None;
        }
        self.heap.pop().map(|e| (e.at, e.what))
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Self::new()
    }
}

// Min-heap order on (at, seq) for std's max-heap.
impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl<T> Eq for Entry<T> {}

/// The pending timer of a deadline that moves all the time (the LAN
/// peer's, the cluster engine's). Timers are never cancelled: a new one is
/// set only when it is earlier than the one pending, and the pending one is
/// forgotten when it fires (a superseded one firing later changes nothing).
#[derive(Debug, Default)]
pub struct Wake(Option<Instant>);

impl Wake {
    /// Whether a timer must be set for `at`.
    pub fn arm(&mut self, at: Instant) -> bool {
        if self.0.is_none_or(|w| at < w) {
            self.0 = Some(at);
            return true;
        }
        false
    }

    /// The timer set for `at` fired.
    pub fn fired(&mut self, at: Instant) {
        if self.0 == Some(at) {
            self.0 = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_sets_a_timer_only_when_earlier_than_the_pending_one() {
        let t0 = Instant::now();
        let mut w = Wake::default();
        assert!(w.arm(t0 + Duration::from_secs(2)));
        assert!(
            !w.arm(t0 + Duration::from_secs(3)),
            "one is pending earlier"
        );
        assert!(w.arm(t0 + Duration::from_secs(1)));
        w.fired(t0 + Duration::from_secs(2)); // superseded: nothing
        assert!(!w.arm(t0 + Duration::from_secs(2)));
        w.fired(t0 + Duration::from_secs(1));
        assert!(w.arm(t0 + Duration::from_secs(5)), "none pending");
    }

    #[test]
    fn fire_in_deadline_order_then_setting_order() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut t = Timers::new();
        t.set(t0 + ms(30), "c");
        t.set(t0 + ms(10), "a");
        t.set(t0 + ms(10), "b");
        t.set(t0 + ms(50), "d");
        assert_eq!(t.next(), Some(t0 + ms(10)));
        assert_eq!(t.pop_expired(t0 + ms(5)), None);
        let fired: Vec<_> = std::iter::from_fn(|| t.pop_expired(t0 + ms(30)))
            .map(|(_, w)| w)
            .collect();
        assert_eq!(fired, ["a", "b", "c"]);
        assert_eq!(t.len(), 1);
        assert_eq!(t.pop_expired(t0 + ms(50)), Some((t0 + ms(50), "d")));
        assert!(t.is_empty());
    }

    #[test]
    fn sleep_rounds_up_and_never_goes_negative() {
        let t0 = Instant::now();
        let mut t = Timers::new();
        assert_eq!(t.sleep_for(t0), None);
        t.set(t0 + Duration::from_micros(2500), ());
        assert_eq!(t.sleep_for(t0), Some(Duration::from_micros(3499)));
        let late = t0 + Duration::from_secs(1);
        assert_eq!(t.sleep_for(late), Some(Duration::from_micros(999)));
    }
}
