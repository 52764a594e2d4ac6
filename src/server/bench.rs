//! A fixture for `benches/hot_paths.rs`: the fan-out's own data path (one
//! line written once per framing into shared blocks, a range queued for
//! every recipient, each queue flushed) without sockets, so the benchmark
//! needs no access to the blocks and queues themselves, which stay
//! private to the server.

use super::block::Arena;
use super::output::OutQueue;

pub struct FanOut {
    queues: Vec<OutQueue>,
    newline: Arena,
    bare: Arena,
}

impl FanOut {
    /// `n` recipients, half bare and half newline framed (as mirrored
    /// framing gives).
    pub fn new(n: usize) -> FanOut {
        FanOut {
            queues: (0..n).map(|_| OutQueue::default()).collect(),
            newline: Arena::new(),
            bare: Arena::new(),
        }
    }

    /// Queues `line` (ending in `\n`) for everyone, then flushes every
    /// queue into a sink (no syscall is timed).
    pub fn chat(&mut self, line: &[u8]) {
        let len = line.len();
        // Written once per framing, as the table does.
        let (nl, nl_at) = self.newline.put(line);
        let (br, br_at) = self.bare.put(&line[..len - 1]);
        for (i, q) in self.queues.iter_mut().enumerate() {
            if i & 1 == 0 {
                q.push(&nl, nl_at, len);
            } else {
                q.push(&br, br_at, len - 1);
            }
        }
        for q in self.queues.iter_mut() {
            q.flush(&mut std::io::sink())
                .expect("a sink takes everything");
        }
    }
}
