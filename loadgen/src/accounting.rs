//! Delivery accounting, free of I/O: every chat a simulated client sends
//! gets a global sequence number; every receiver records which numbers it
//! saw, in what order per sender. Lost, duplicated and reordered deliveries
//! are counted from that.

/// What one receiver saw.
#[derive(Clone, Debug, Default)]
pub struct Receiver {
    /// Bit `seq` set once message `seq` arrived.
    seen: Vec<u64>,
    /// Highest sequence number seen from each sender (by sender index).
    last_from: Vec<Option<u64>>,
    pub received: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

impl Receiver {
    /// Records message `seq` from sender `from`.
    pub fn record(&mut self, seq: u64, from: usize) {
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if self.seen.len() <= word {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
            return;
        }
        self.seen[word] |= 1 << bit;
        self.received += 1;
        if self.last_from.len() <= from {
            self.last_from.resize(from + 1, None);
        }
        match self.last_from[from] {
            Some(last) if seq < last => self.reordered += 1,
            _ => self.last_from[from] = Some(seq),
        }
    }

    pub fn has(&self, seq: u64) -> bool {
        let word = (seq / 64) as usize;
        self.seen
            .get(word)
            .is_some_and(|w| w & (1 << (seq % 64)) != 0)
    }
}

/// Totals over all receivers for a set of sent messages.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub expected: u64,
    pub received: u64,
    pub lost: u64,
    pub duplicates: u64,
    pub reordered: u64,
}

/// Tallies receivers against `sent`: (seq, sender index) of each message,
/// which every receiver but its sender should have got. Each receiver comes
/// with its own sender index, if it sends.
pub fn tally<'a>(
    receivers: impl IntoIterator<Item = (&'a Receiver, Option<usize>)>,
    sent: &[(u64, usize)],
) -> Tally {
    let mut t = Tally::default();
    for (rx, own) in receivers {
        for &(seq, from) in sent {
            if own == Some(from) {
                continue;
            }
            t.expected += 1;
            if !rx.has(seq) {
                t.lost += 1;
            }
        }
        t.received += rx.received;
        t.duplicates += rx.duplicates;
        t.reordered += rx.reordered;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_run() {
        let mut rx = [Receiver::default(), Receiver::default()];
        let sent: Vec<(u64, usize)> = (0..5).map(|s| (s, 0)).collect();
        // Receiver 0 is the sender; receiver 1 gets all five.
        for s in 0..5 {
            rx[1].record(s, 0);
        }
        let t = tally([(&rx[0], Some(0)), (&rx[1], None)], &sent);
        assert_eq!(
            t,
            Tally {
                expected: 5,
                received: 5,
                lost: 0,
                duplicates: 0,
                reordered: 0
            }
        );
    }

    #[test]
    fn loss_duplicates_and_reordering_are_caught() {
        let mut rx = [Receiver::default()];
        let sent: Vec<(u64, usize)> = (0..6).map(|s| (s, 0)).collect();
        for s in [0, 2, 1, 3, 3, 5] {
            rx[0].record(s, 0);
        }
        let t = tally([(&rx[0], None)], &sent);
        assert_eq!(t.lost, 1, "4 never came");
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 1, "1 after 2");
        assert_eq!(t.received, 5);
    }

    #[test]
    fn order_is_per_sender() {
        let mut rx = Receiver::default();
        // Two senders interleaved: 0,2,4 from A and 1,3 from B.
        for (s, from) in [(0, 0), (1, 1), (3, 1), (2, 0), (4, 0)] {
            rx.record(s, from);
        }
        assert_eq!(rx.reordered, 0);
    }
}
