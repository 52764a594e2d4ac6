//! Append-only byte blocks that output queues share.
//!
//! Every message mp1d sends is written once into a block; queues hold
//! ranges of blocks, not copies. Consecutive broadcasts land next to each
//! other in the same block, so a recipient of many of them in one turn
//! (a login storm: every login is announced to everyone) owes one range,
//! which one `writev` entry hands to the kernel, instead of one queue slot
//! and one iovec per message.
//!
//! A block is appended to while queues already hold ranges of it. That is
//! sound because appends write only above `filled` and ranges handed out
//! lie below it: bytes, once written, never change.

use std::cell::Cell;
use std::ptr::NonNull;
use std::rc::Rc;

/// Bytes of a block that take many messages.
pub const BLOCK_BYTES: usize = 64 * 1024;

pub struct Block {
    /// Start of `cap` bytes allocated as a `Box<[u8]>`.
    ptr: NonNull<u8>,
    cap: usize,
    /// Bytes written so far; they never change again.
    filled: Cell<usize>,
}

impl Block {
    pub fn new(cap: usize) -> Rc<Block> {
        let bytes: Box<[u8]> = vec![0; cap].into_boxed_slice();
        let ptr = NonNull::new(Box::into_raw(bytes) as *mut u8).expect("Box is never null");
        Rc::new(Block {
            ptr,
            cap,
            filled: Cell::new(0),
        })
    }

    /// Appends `bytes`; returns where they start, or `None` if they do
    /// not fit in what is left.
    pub fn append(&self, bytes: &[u8]) -> Option<usize> {
        let at = self.filled.get();
        if self.cap - at < bytes.len() {
            return None;
        }
        // SAFETY: `at + bytes.len() <= cap`, so the destination lies in
        // our allocation, above `filled`: no slice handed out by `get`
        // covers it, and no reference to it exists. `bytes` cannot overlap
        // it: it is either elsewhere or a slice of filled bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), self.ptr.as_ptr().add(at), bytes.len());
        }
        self.filled.set(at + bytes.len());
        Some(at)
    }

    /// The written bytes `start..end`.
    pub fn get(&self, start: usize, end: usize) -> &[u8] {
        assert!(
            start <= end && end <= self.filled.get(),
            "range not written"
        );
        // SAFETY: in bounds (checked), and written bytes never change, so
        // a shared slice of them stays valid while `self` lives.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().add(start), end - start) }
    }

    pub fn filled(&self) -> usize {
        self.filled.get()
    }

    /// Bytes allocated for it.
    pub fn capacity(&self) -> usize {
        self.cap
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        let whole = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.cap);
        // SAFETY: `ptr` and `cap` came from `Box::into_raw` of a
        // `Box<[u8]>` of that length, and are released once, here.
        drop(unsafe { Box::from_raw(whole) });
    }
}

/// Where the bytes of messages being queued go: one block for direct
/// replies, and one each for broadcasts as newline and as bare clients
/// get them, so consecutive broadcasts stay contiguous for both.
pub struct Arena {
    block: Rc<Block>,
}

impl Arena {
    pub fn new() -> Arena {
        Arena {
            block: Block::new(BLOCK_BYTES),
        }
    }

    /// Writes `bytes` into the current block (a fresh one when it is full;
    /// a block of their own when they are bigger than a block).
    pub fn put(&mut self, bytes: &[u8]) -> (Rc<Block>, usize) {
        if let Some(at) = self.block.append(bytes) {
            return (Rc::clone(&self.block), at);
        }
        if bytes.len() > BLOCK_BYTES / 2 {
            let own = Block::new(bytes.len());
            let at = own.append(bytes).expect("sized to fit");
            return (own, at);
        }
        self.block = Block::new(BLOCK_BYTES);
        let at = self.block.append(bytes).expect("a fresh block takes it");
        (Rc::clone(&self.block), at)
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appended_bytes_stay_put_while_more_are_appended() {
        let b = Block::new(16);
        let first = b.append(b"hello").unwrap();
        let held = b.get(first, first + 5);
        assert_eq!(b.append(b" world"), Some(5));
        assert_eq!(held, b"hello");
        assert_eq!(b.get(0, 11), b"hello world");
        assert_eq!(b.append(b"too long!"), None, "does not fit");
        assert_eq!(b.filled(), 11);
    }

    #[test]
    #[should_panic(expected = "range not written")]
    fn unwritten_bytes_cannot_be_read() {
        let b = Block::new(16);
        b.append(b"abc").unwrap();
        b.get(0, 4);
    }

    #[test]
    fn an_arena_moves_on_when_a_block_is_full() {
        let mut a = Arena::new();
        let msg = vec![b'x'; 1000];
        let (first, at) = a.put(&msg);
        assert_eq!(at, 0);
        let mut last = Rc::clone(&first);
        for _ in 0..100 {
            last = a.put(&msg).0;
        }
        assert!(!Rc::ptr_eq(&first, &last), "a second block");
        assert_eq!(first.get(0, 1000), &msg[..]);
        // Something bigger than half a block gets its own.
        let big = vec![b'y'; BLOCK_BYTES];
        let (own, at) = a.put(&big);
        assert_eq!((at, own.filled()), (0, BLOCK_BYTES));
        assert!(!Rc::ptr_eq(&own, &last));
    }
}
