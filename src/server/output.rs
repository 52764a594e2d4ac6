//! A connection's output queue: shared, reference-counted message bytes
//! waiting to be written, flushed with one `writev` for many messages.
//!
//! A broadcast is encoded once (with a trailing `\n`); every recipient
//! queues a clone of the same `Rc` and the length it wants (bare-framed
//! connections leave the `\n` off), so fan-out allocates nothing per
//! recipient beyond the queue slot.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Messages gathered into one `writev` at most.
const MAX_IOVECS: usize = 256;

/// A queue that held more slots than this while busy is freed once it
/// drains, so idle connections stay small.
const KEEP_CAPACITY: usize = 16;

struct Chunk {
    data: Rc<[u8]>,
    len: u32,
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

    /// Queues the first `len` bytes of `data`.
    pub fn push(&mut self, data: &Rc<[u8]>, len: usize) {
        debug_assert!(len <= data.len());
        if len == 0 {
            return;
        }
        self.chunks.push_back(Chunk {
            data: Rc::clone(data),
            len: len as u32,
        });
        self.bytes += len;
    }

    /// Drops everything not yet started, keeping a half-written message so
    /// the client never sees a cut JSON object.
    pub fn drop_unstarted(&mut self) {
        let keep = usize::from(self.head > 0);
        self.chunks.truncate(keep);
        self.bytes = self
            .chunks
            .front()
            .map_or(0, |c| c.len as usize - self.head);
    }

    /// Writes until the queue is empty or the socket would block.
    pub fn flush(&mut self, w: &mut impl Write) -> io::Result<Flushed> {
        while !self.chunks.is_empty() {
            // Steady-state fan-out owes one message per turn: a plain
            // write, with no iovec array to set up.
            let result = match self.chunks.len() {
                1 => {
                    let c = &self.chunks[0];
                    w.write(&c.data[self.head..c.len as usize])
                }
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
        if self.chunks.capacity() > KEEP_CAPACITY {
            self.chunks = VecDeque::new();
        }
        Ok(Flushed::All)
    }

    /// One `writev` of up to `N` queued messages.
    fn write_gathered<const N: usize>(&self, w: &mut impl Write) -> io::Result<usize> {
        let mut iov = [IoSlice::new(&[]); N];
        let mut n = 0;
        for (i, c) in self.chunks.iter().take(N).enumerate() {
            let start = if i == 0 { self.head } else { 0 };
            iov[i] = IoSlice::new(&c.data[start..c.len as usize]);
            n = i + 1;
        }
        w.write_vectored(&iov[..n])
    }

    fn advance(&mut self, mut written: usize) {
        self.bytes -= written;
        while written > 0 {
            let front = self.chunks.front().expect("wrote more than was queued");
            let left = front.len as usize - self.head;
            if written < left {
                self.head += written;
                return;
            }
            written -= left;
            self.head = 0;
            self.chunks.pop_front();
        }
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

    #[test]
    fn partial_writes_resume_in_order() {
        let a: Rc<[u8]> = Rc::from(&b"hello\n"[..]);
        let b: Rc<[u8]> = Rc::from(&b"world\n"[..]);
        let mut q = OutQueue::default();
        q.push(&a, 5);
        q.push(&b, 6);
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
        let a: Rc<[u8]> = Rc::from(&b"x\n"[..]);
        let mut q = OutQueue::default();
        q.push(&a, 2);
        q.push(&a, 2);
        q.drop_unstarted();
        assert_eq!(q.bytes(), 0);
        assert_eq!(q.bytes(), 0);
    }
}
