//! The completion accounting: what a send's result does to a queue.

use super::*;
use crate::server::uring::Mode;

/// A queue owing `parts`, each in a block of its own (one range each).
fn queue(parts: &[&[u8]]) -> (OutQueue, Vec<Rc<Block>>) {
    let mut q = OutQueue::default();
    let mut blocks = Vec::new();
    for part in parts {
        let b = Block::new(64);
        let at = b.append(part).unwrap();
        q.push(&b, at, part.len());
        blocks.push(b);
    }
    (q, blocks)
}

/// The bytes still queued, in order.
fn left(q: &OutQueue) -> Vec<u8> {
    q.ranges(usize::MAX).flat_map(|(_, b)| b.to_vec()).collect()
}

#[test]
fn a_whole_send_empties_the_queue() {
    let (mut q, _) = queue(&[b"hello\n", b"world\n"]);
    match complete(12, 12, &mut q) {
        Completed::Wrote(12, Ok(Flushed::All)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(q.bytes(), 0);
}

/// A short send keeps the rest, a half-sent range included, and asks
/// for WRITABLE interest; the next send starts where it stopped.
#[test]
fn a_short_send_keeps_the_rest_in_order() {
    let (mut q, _) = queue(&[b"hello\n", b"world\n"]);
    match complete(8, 12, &mut q) {
        Completed::Wrote(8, Ok(Flushed::Blocked)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(q.bytes(), 4);
    assert_eq!(left(&q), b"rld\n");
    match complete(4, 4, &mut q) {
        Completed::Wrote(4, Ok(Flushed::All)) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn eagain_sends_nothing_and_waits_for_room() {
    let (mut q, _) = queue(&[b"hello\n"]);
    match complete(-libc::EAGAIN, 6, &mut q) {
        Completed::Wrote(0, Ok(Flushed::Blocked)) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(left(&q), b"hello\n");
}

#[test]
fn an_interrupted_send_is_sent_again() {
    let (mut q, _) = queue(&[b"hello\n"]);
    assert!(matches!(
        complete(-libc::EINTR, 6, &mut q),
        Completed::Again
    ));
    assert_eq!(q.bytes(), 6);
}

/// An error loses the connection (the table's `flushed` does that with
/// the error); nothing counts as written.
#[test]
fn errors_are_errors() {
    let (mut q, _) = queue(&[b"hello\n"]);
    match complete(-libc::ECONNRESET, 6, &mut q) {
        Completed::Wrote(0, Err(e)) => assert_eq!(e.raw_os_error(), Some(libc::ECONNRESET)),
        other => panic!("{other:?}"),
    }
    match complete(0, 6, &mut q) {
        Completed::Wrote(0, Err(e)) => assert_eq!(e.kind(), io::ErrorKind::WriteZero),
        other => panic!("{other:?}"),
    }
    assert_eq!(q.bytes(), 6);
}

/// An entry holds the blocks it sends from until its completion, and
/// points at exactly the unsent bytes (a half-sent range from where it
/// stopped).
#[test]
fn an_entry_holds_its_blocks_and_points_at_the_unsent_bytes() {
    let (mut q, blocks) = queue(&[b"hello\n", b"world\n"]);
    q.wrote(2);
    let mut slot = Slot::new();
    let _entry = slot.prepare(ConnId(7), &q, -1, 0);
    assert_eq!((slot.key, slot.len), (ConnId(7), 10));
    assert_eq!(
        Rc::strong_count(&blocks[0]),
        3,
        "ours, the queue's, the entry's"
    );
    // SAFETY: the iovecs point into blocks alive here.
    let first = unsafe {
        std::slice::from_raw_parts(slot.iov[0].iov_base as *const u8, slot.iov[0].iov_len)
    };
    assert_eq!(first, b"llo\n");
    assert_eq!(slot.msg.msg_iovlen, 2);
    slot.held.clear();
    assert_eq!(Rc::strong_count(&blocks[0]), 2);
}

#[test]
fn modes_parse() {
    assert_eq!("auto".parse::<Mode>(), Ok(Mode::Auto));
    assert_eq!("on".parse::<Mode>(), Ok(Mode::On));
    assert_eq!("off".parse::<Mode>(), Ok(Mode::Off));
    assert!("yes".parse::<Mode>().is_err());
}

/// Where the kernel allows it, a ring is set up and passes the check that
/// a send to a full socket fails at once.
#[test]
#[cfg_attr(not(have_io_uring), ignore = "io_uring cannot be set up here")]
fn a_ring_is_set_up_where_the_kernel_allows() {
    let ring = Uring::new().expect("a ring");
    assert!(ring.setup().contains("entries"), "{}", ring.setup());
}
