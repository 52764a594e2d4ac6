//! A connection's output queue: ranges of shared blocks (see `block.rs`)
//! waiting to be written, flushed with one `writev` for many messages.
//!
//! A message is written once into a block; every recipient queues a range
//! of it (bare-framed connections get a range without the `\n`), so
//! fan-out allocates nothing per recipient. A range that continues the
//! last one queued, in the same block, extends it: consecutive broadcasts
//! become one range, one iovec.

use super::block::Block;
use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Ranges gathered into one `writev` at most.
const MAX_IOVECS: usize = 256;

/// A queue that held more slots than this while busy is freed once it
/// drains, so idle connections stay small.
const KEEP_CAPACITY: usize = 16;

struct Chunk {
    block: Rc<Block>,
    start: u32,
    end: u32,
}

impl Chunk {
    fn bytes(&self) -> &[u8] {
        self.block.get(self.start as usize, self.end as usize)
    }

    fn len(&self) -> usize {
        (self.end - self.start) as usize
    }
}

#[derive(Default)]
pub struct OutQueue {
    chunks: VecDeque<Chunk>,
    /// Bytes of the front chunk already written.
    head: usize,
    /// Unsent bytes in all chunks.
    bytes: usize,
}

/// How far a flush got.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything was written.
    All,
    /// The socket is full; wait for it to become writable.
    Blocked,
}

impl OutQueue {
    /// Unsent bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Queues `len` bytes of `block` from `start`; true if that took a
    /// new slot (false: it extended the last range).
    pub fn push(&mut self, block: &Rc<Block>, start: usize, len: usize) -> bool {
        if len == 0 {
            return false;
        }
        let (start, end) = (start as u32, (start + len) as u32);
        self.bytes += len;
        if let Some(last) = self.chunks.back_mut() {
            if last.end == start && Rc::ptr_eq(&last.block, block) {
                last.end = end;
                return false;
            }
        }
        self.chunks.push_back(Chunk {
            block: Rc::clone(block),
            start,
            end,
        });
        true
    }

    /// Drops everything not yet started, keeping a half-written range
    /// whole so the client never sees a cut JSON object.
    pub fn drop_unstarted(&mut self) {
        let keep = usize::from(self.head > 0);
        self.chunks.truncate(keep);
        self.bytes = self.chunks.front().map_or(0, |c| c.len() - self.head);
    }

    /// Writes until the queue is empty or the socket would block.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<Flushed> {
        while !self.chunks.is_empty() {
            // Steady-state fan-out owes one range per turn: a plain write,
            // with no iovec array to set up.
            let result = match self.chunks.len() {
                1 => w.write(&self.chunks[0].bytes()[self.head..]),
                2..=8 => self.write_gathered::<8>(w),
                _ => self.write_gathered::<MAX_IOVECS>(w),
            };
            let written = match result {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Flushed::Blocked),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.advance(written);
        }
        self.shrink_if_drained();
        Ok(Flushed::All)
    }

    /// The unsent bytes of the first `max` ranges, with the blocks that
    /// hold them (for a write submitted elsewhere: `uring.rs`).
    pub fn ranges(&self, max: usize) -> impl Iterator<Item = (&Rc<Block>, &[u8])> {
        self.chunks.iter().take(max).enumerate().map(|(i, c)| {
            let start = if i == 0 { self.head } else { 0 };
            (&c.block, &c.bytes()[start..])
        })
    }

    /// `written` bytes of the front went out by a write submitted
    /// elsewhere; true if nothing is left.
    pub fn wrote(&mut self, written: usize) -> bool {
        self.advance(written);
        self.shrink_if_drained();
        self.chunks.is_empty()
    }

    fn shrink_if_drained(&mut self) {
        if self.chunks.is_empty() && self.chunks.capacity() > KEEP_CAPACITY {
            self.chunks = VecDeque::new();
        }
    }

    /// One `writev` of up to `N` queued ranges.
    fn write_gathered<const N: usize>(&self, w: &mut impl Write) -> io::Result<usize> {
        let mut iov = [IoSlice::new(&[]); N];
        let mut n = 0;
        for (i, (_, bytes)) in self.ranges(N).enumerate() {
            iov[i] = IoSlice::new(bytes);
            n = i + 1;
        }
        w.write_vectored(&iov[..n])
    }

    fn advance(&mut self, mut written: usize) {
        self.bytes -= written;
        while written > 0 {
            let front = self.chunks.front().expect("wrote more than was queued");
            let left = front.len() - self.head;
            if written < left {
                self.head += written;
                return;
            }
            written -= left;
            self.head = 0;
            self.chunks.pop_front();
        }
    }

    /// Queue slots in use (tests).
    #[cfg(test)]
    pub fn slots(&self) -> usize {
        self.chunks.len()
    }

    /// Bytes of the blocks the queue keeps alive (tests): what holding
    /// its ranges costs in memory.
    #[cfg(test)]
    pub fn held(&self) -> usize {
        let mut blocks: Vec<*const Block> =
            self.chunks.iter().map(|c| Rc::as_ptr(&c.block)).collect();
        blocks.dedup();
        blocks
            .iter()
            .map(|&b| {
                // SAFETY: each pointer comes from an Rc the queue holds.
                unsafe { (*b).capacity() }
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `limit` bytes per call, then blocks.
    struct Trickle {
        got: Vec<u8>,
        per_call: usize,
        calls_left: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls_left == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls_left -= 1;
            let n = buf.len().min(self.per_call);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn block(text: &[u8]) -> (Rc<Block>, usize) {
        let b = Block::new(64);
        let at = b.append(text).unwrap();
        (b, at)
    }

    #[test]
    fn partial_writes_resume_in_order() {
        let (a, _) = block(b"hello\n");
        let (b, _) = block(b"world\n");
        let mut q = OutQueue::default();
        q.push(&a, 0, 5);
        q.push(&b, 0, 6);
        assert_eq!(q.bytes(), 11);
        let mut w = Trickle {
            got: vec![],
            per_call: 3,
            calls_left: 3,
        };
        // "hel", "lo", "wor": one slice per call with this writer.
        assert_eq!(q.flush(&mut w).unwrap(), Flushed::Blocked);
        assert_eq!(q.bytes(), 3);
        // A cut keeps the half-written "world" whole.
        q.drop_unstarted();
        assert_eq!(q.bytes(), 3);
        w.calls_left = 10;
        assert_eq!(q.flush(&mut w).unwrap(), Flushed::All);
        assert_eq!(w.got, b"helloworld\n");
        assert_eq!(q.bytes(), 0);
        assert_eq!(Rc::strong_count(&a), 1);
    }

    #[test]
    fn drop_unstarted_on_a_fresh_queue_empties_it() {
        let (a, _) = block(b"x\n");
        let mut q = OutQueue::default();
        q.push(&a, 0, 2);
        q.push(&a, 0, 2);
        q.drop_unstarted();
        assert_eq!(q.bytes(), 0);
    }

    /// Ranges that continue each other in one block become one slot.
    #[test]
    fn contiguous_ranges_coalesce() {
        let b = Block::new(64);
        let mut q = OutQueue::default();
        for word in [&b"one\n"[..], b"two\n", b"three\n"] {
            let at = b.append(word).unwrap();
            q.push(&b, at, word.len());
        }
        assert_eq!(q.slots(), 1);
        // A gap (a message this client does not get) starts a new slot.
        b.append(b"not yours\n").unwrap();
        let at = b.append(b"four\n").unwrap();
        q.push(&b, at, 5);
        assert_eq!(q.slots(), 2);
        let mut out = Vec::new();
        assert_eq!(q.flush(&mut out).unwrap(), Flushed::All);
        assert_eq!(out, b"one\ntwo\nthree\nfour\n");
    }
}
