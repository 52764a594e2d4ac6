//! The client table over real loopback sockets, without a server around it.

use super::*;
use mio::Poll;
use std::net::TcpListener;
use std::time::Duration;

struct Fixture {
    poll: Poll,
    table: Table,
    /// The far ends, as a test client would hold them.
    far: Vec<std::net::TcpStream>,
    listener: TcpListener,
}

impl Fixture {
    fn new(max_output_bytes: usize) -> Fixture {
        Fixture::with_budget(max_output_bytes, usize::MAX / 2)
    }

    fn with_budget(max_output_bytes: usize, max_total: usize) -> Fixture {
        Fixture {
            poll: Poll::new().unwrap(),
            table: Table::new(max_output_bytes, max_total),
            far: Vec::new(),
            listener: TcpListener::bind("127.0.0.1:0").unwrap(),
        }
    }

    /// Connects a client; returns its key and generation.
    fn connect(&mut self, framing: Framing) -> (ConnId, u32) {
        let far = std::net::TcpStream::connect(self.listener.local_addr().unwrap()).unwrap();
        far.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let (near, addr) = self.listener.accept().unwrap();
        near.set_nonblocking(true).unwrap();
        self.far.push(far);
        let stream = TcpStream::from_std(near);
        crate::server::sys::bound_send_buffer(&stream, self.table.max_output_bytes);
        self.table
            .insert(self.poll.registry(), stream, addr, framing, Face::Mp1)
            .unwrap()
    }

    /// Queues to `key` until the kernel refuses more, then `extra` more.
    fn stall(&mut self, key: ConnId, extra: usize) {
        let big = vec![b'x'; 16 * 1024];
        while !self.table.get(key).unwrap().writable {
            self.table.queue_forced(key, &big);
            self.table.flush(self.poll.registry());
        }
        let more = vec![b'z'; extra];
        self.table.queue_forced(key, &more);
    }

    fn receive(&mut self, i: usize, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        self.far[i].read_exact(&mut buf).unwrap();
        buf
    }
}

fn line(s: &str) -> Vec<u8> {
    format!("{s}\n").into_bytes()
}

#[test]
fn a_stale_token_is_not_resolved_to_the_slot_s_next_occupant() {
    let mut f = Fixture::new(1024);
    let (key, generation) = f.connect(Framing::Mirror);
    let old = token::encode(Kind::Conn, key.0, generation);
    assert_eq!(f.table.resolve(old), Some((Kind::Conn, key.0)));
    f.table.kill(key);
    // Not freed until the end of the turn.
    assert!(f.table.get(key).is_some());
    f.table.free_dead(f.poll.registry(), |_| {});
    let (reused, next) = f.connect(Framing::Mirror);
    assert_eq!(reused, key, "slab hands out the freed slot first");
    assert_ne!(next, generation);
    assert_eq!(f.table.resolve(old), None);
    let new = token::encode(Kind::Conn, reused.0, next);
    assert_eq!(f.table.resolve(new), Some((Kind::Conn, reused.0)));
    assert!(!f.table.is(key, generation, Phase::Open));
    assert!(f.table.is(key, next, Phase::Open));
}

/// A broadcast is written once per framing; each recipient queues a
/// range, and consecutive broadcasts it gets become one range.
#[test]
fn fan_out_frames_each_recipient_and_coalesces_broadcasts() {
    let mut f = Fixture::new(1024);
    let (a, _) = f.connect(Framing::Bare);
    let (b, _) = f.connect(Framing::Newline);
    let (c, _) = f.connect(Framing::Newline);
    f.table.queue_all(&[a, b, c], None, &line("{\"m\":1}"));
    f.table.queue_all(&[a, b, c], Some(c), &line("{\"m\":2}"));
    f.table.queue_all(&[a, b, c], None, &line("{\"m\":3}"));
    assert_eq!(f.table.queued(), 9);
    let slots = |f: &Fixture, k: ConnId| f.table.get(k).unwrap().out.slots();
    assert_eq!(
        (slots(&f, a), slots(&f, b)),
        (1, 1),
        "three broadcasts, one range"
    );
    assert_eq!(slots(&f, c), 2, "the one it did not get splits its range");
    f.table.flush(f.poll.registry());
    assert_eq!(f.receive(0, 21), b"{\"m\":1}{\"m\":2}{\"m\":3}");
    assert_eq!(f.receive(1, 24), b"{\"m\":1}\n{\"m\":2}\n{\"m\":3}\n");
    assert_eq!(f.receive(2, 16), b"{\"m\":1}\n{\"m\":3}\n");
    assert_eq!(f.table.queued(), 0);
}

#[test]
fn a_burst_the_kernel_takes_is_not_slowness() {
    let mut f = Fixture::new(20);
    let (a, _) = f.connect(Framing::Newline);
    let msg = line("0123456789"); // 11 bytes
    for _ in 0..3 {
        f.table.queue(a, &msg);
    }
    assert_eq!(f.table.next_too_slow(), None);
    f.table.flush(f.poll.registry());
    assert_eq!(f.receive(0, 33), b"0123456789\n".repeat(3));
}

/// What `key` owes, the kernel's part included.
fn owed_by(f: &Fixture, key: ConnId) -> usize {
    super::owed(f.table.get(key).unwrap())
}

/// A client whose kernel buffers are full (it stopped reading) and that
/// owes more than the limit, counting what the kernel holds for it, is
/// marked too slow, once; a cut keeps nothing unstarted, and its last
/// words still go.
#[test]
fn over_the_output_limit_a_blocked_client_is_marked_too_slow_once() {
    let mut f = Fixture::new(512 * 1024);
    let (a, _) = f.connect(Framing::Newline);
    let (b, _) = f.connect(Framing::Newline);
    f.stall(a, 0);
    let owed = owed_by(&f, a);
    let kernel = f.table.get(a).unwrap().kernel_owed;
    assert!(kernel > 0, "what the kernel holds is counted");
    assert!(owed < 512 * 1024, "the kernel holds less than the limit");
    // Two lines of two thirds of what is left: the first fits, the
    // second does not.
    let msg = line(&"y".repeat((512 * 1024 - owed) * 2 / 3));
    f.table.queue_all(&[a, b], None, &msg);
    f.table.queue_all(&[a, b], None, &msg);
    let (key, owed_then, over_budget) = f.table.next_too_slow().expect("a is too slow");
    assert_eq!((key, over_budget), (a, false));
    assert!(owed_then >= owed + msg.len(), "{owed_then} {owed}");
    assert_eq!(f.table.next_too_slow(), None, "once");
    assert!(
        f.table.get(a).unwrap().out.bytes() < 16 * 1024,
        "unstarted dropped"
    );
    f.table.queue_forced(a, &line("bye"));
    assert!(f.table.begin_close(a));
    assert!(!f.table.begin_close(a), "only once");
    // b is unaffected.
    f.table.flush(f.poll.registry());
    assert_eq!(f.receive(1, msg.len()), &msg[..]);
}

/// A closing connection's output goes, then our FIN, and it drains.
#[test]
fn a_closing_connection_sends_its_last_words_then_drains() {
    let mut f = Fixture::new(1024);
    let (a, _) = f.connect(Framing::Newline);
    f.table.queue_forced(a, &line("bye"));
    assert!(f.table.begin_close(a));
    f.table.flush(f.poll.registry());
    assert_eq!(f.receive(0, 4), b"bye\n");
    let mut rest = Vec::new();
    f.far[0].read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    assert_eq!(f.table.get(a).unwrap().phase(), Phase::Draining);
    assert_eq!(f.table.take_read_later(), vec![a]);
}

#[test]
fn a_closed_peer_is_lost_once_and_freed_at_the_end() {
    let mut f = Fixture::new(1024);
    let (a, _) = f.connect(Framing::Newline);
    f.far.clear(); // the client goes away
    let mut buf = [0u8; 64];
    let closed = (0..100).any(|_| match f.table.read(a, &mut buf) {
        Received::Closed => true,
        _ => {
            std::thread::sleep(Duration::from_millis(10));
            false
        }
    });
    assert!(closed, "the FIN is read as such");
    assert!(
        matches!(f.table.read(a, &mut buf), Received::Nothing),
        "once"
    );
    f.table.lose(a, "closed by client");
    f.table.lose(a, "again");
    assert_eq!(f.table.take_lost(), vec![a]);
    assert!(matches!(f.table.read(a, &mut buf), Received::Nothing));
    let mut freed = Vec::new();
    f.table.free_dead(f.poll.registry(), |k| freed.push(k));
    assert_eq!(freed, vec![a]);
    assert!(f.table.no_connections());
}

/// What all clients together owe (the kernel's part included) is over
/// the budget after a flush: the biggest owers are marked, until the rest
/// fits in nine tenths of it; the total is kept exactly.
#[test]
fn over_the_total_budget_the_biggest_owers_are_marked() {
    let mut f = Fixture::with_budget(1 << 30, 1 << 30);
    let keys: Vec<ConnId> = (0..3).map(|_| f.connect(Framing::Newline).0).collect();
    f.stall(keys[0], 100_000);
    f.stall(keys[1], 150_000);
    f.stall(keys[2], 10_000);
    let owed: Vec<usize> = keys.iter().map(|&k| owed_by(&f, k)).collect();
    let sum: usize = owed.iter().sum();
    assert_eq!(f.table.total_out(), sum);
    f.table.max_total_output = sum - 1;
    assert!(!f.table.has_too_slow());
    f.table.flush(f.poll.registry());
    // Without the biggest, the rest fits in nine tenths of the budget.
    let mut cut = Vec::new();
    while let Some((key, _, over_budget)) = f.table.next_too_slow() {
        assert!(over_budget);
        cut.push(key);
    }
    assert_eq!(cut, vec![keys[1]], "owed {owed:?}");
    let left: usize = keys.iter().map(|&k| owed_by(&f, k)).sum();
    assert_eq!(f.table.total_out(), left);
    f.table.kill(keys[2]);
    f.table.kill(keys[0]);
    f.table.kill(keys[1]);
    assert_eq!(f.table.total_out(), 0);
}

/// A client that stopped reading, whose small replies are queued between
/// another client's large ones, keeps alive only what it owes: a reply to
/// one client is not a range of a shared 64 KiB block (which one 60-byte
/// reply would pin whole, invisible to every limit).
#[test]
fn small_replies_to_a_stalled_client_hold_only_their_own_bytes() {
    let mut f = Fixture::new(1 << 30);
    let (stalled, _) = f.connect(Framing::Newline);
    let (busy, _) = f.connect(Framing::Newline);
    f.stall(stalled, 0);
    let before = f.table.get(stalled).unwrap().out.held();
    let small = line(&"t".repeat(59));
    let large = line(&"w".repeat(4000));
    for _ in 0..200 {
        f.table.queue(stalled, &small);
        for _ in 0..16 {
            f.table.queue(busy, &large);
        }
        f.table.flush(f.poll.registry());
        f.receive(1, 16 * large.len());
    }
    let held = f.table.get(stalled).unwrap().out.held() - before;
    assert!(
        held <= 200 * (small.len() + 64),
        "200 replies of 60 bytes hold {held} bytes"
    );
}

/// Backpressure: a client whose own output reaches a quarter of its limit
/// is paused with the input it had not handled yet; once the output
/// drains below half of that, it is read again next turn, that input
/// first.
#[test]
fn a_reader_is_paused_while_its_output_is_owed_and_resumed_when_it_drains() {
    let mut f = Fixture::new(64 * 1024);
    let (a, _) = f.connect(Framing::Newline);
    f.stall(a, 20 * 1024);
    assert!(f.table.owes_too_much(a), "over 16 KiB owed");
    f.table.pause(a, b"{\"rest\":1}");
    let mut buf = [0u8; 64];
    assert!(
        matches!(f.table.read(a, &mut buf), Received::Nothing),
        "a paused client is not read"
    );
    // The client reads everything it was sent.
    let owed = f.table.get(a).unwrap().out.bytes();
    let far = &mut f.far[0];
    far.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut got = 0;
    let mut chunk = vec![0u8; 1 << 20];
    while f.table.get(a).unwrap().out.bytes() > 0 {
        got += far.read(&mut chunk).unwrap_or(0);
        f.table.on_writable(a);
        f.table.flush(f.poll.registry());
    }
    assert!(got > owed, "read {got} of at least {owed}");
    assert_eq!(f.table.take_read_later(), vec![a], "read again next turn");
    assert_eq!(f.table.take_held_input(a), b"{\"rest\":1}");
}

/// A client whose FIN came before the server finished closing it is not
/// waited for: once its output is out, the connection is dead.
#[test]
fn a_client_whose_fin_came_first_is_closed_once_its_output_is_out() {
    let mut f = Fixture::new(1024);
    let (a, _) = f.connect(Framing::Newline);
    std::io::Write::write_all(&mut f.far[0], b"{}").unwrap();
    f.far[0].shutdown(std::net::Shutdown::Write).unwrap();
    let mut buf = [0u8; 64];
    let mut seen = Vec::new();
    for _ in 0..100 {
        match f.table.read(a, &mut buf) {
            Received::Bytes(n) => seen.extend_from_slice(&buf[..n]),
            Received::Closed => break,
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    assert_eq!(seen, b"{}", "the bytes, then the FIN");
    f.table.queue_forced(a, &line("answer"));
    assert!(f.table.begin_close(a));
    f.table.flush(f.poll.registry());
    assert_eq!(f.receive(0, 7), b"answer\n");
    assert_eq!(f.table.get(a).unwrap().phase(), Phase::Dead);
    let mut freed = Vec::new();
    f.table.free_dead(f.poll.registry(), |k| freed.push(k));
    assert_eq!(freed, vec![a]);
}

/// What an idle client costs the table: its slot, on a 64-bit server, is
/// no bigger than a client's was before every socket shared the table
/// (200 bytes: the idle memory per client must not grow).
#[test]
#[cfg(target_pointer_width = "64")]
fn a_connection_s_slot_stays_small() {
    assert!(std::mem::size_of::<super::Entry>() <= 200);
}

/// Through io_uring with a ring of 4 entries: a fan-out to 10 clients
/// goes in three submissions and reaches each whole; a client whose socket
/// is full waits with WRITABLE interest, charged what it owes, and gets
/// the rest, in order, once it reads and the socket has room again.
#[cfg(with_io_uring)]
#[test]
#[cfg_attr(not(have_io_uring), ignore = "io_uring cannot be set up here")]
fn a_fan_out_wider_than_the_ring_goes_in_chunks() {
    let mut f = Fixture::new(1 << 20);
    let ring = super::super::uring::Uring::with_entries(4).unwrap();
    f.table.use_uring(Box::new(ring));
    let keys: Vec<ConnId> = (0..10).map(|_| f.connect(Framing::Newline).0).collect();
    f.table.queue_all(&keys, None, &line("{\"m\":1}"));
    f.table.flush(f.poll.registry());
    for i in 0..10 {
        assert_eq!(f.receive(i, 8), line("{\"m\":1}"));
    }
    assert_eq!(f.table.total_out(), 0);
    // Client 3 stops reading: its sends come back short, then EAGAIN.
    f.stall(keys[3], 1000);
    let conn = f.table.get(keys[3]).unwrap();
    assert!(conn.writable && conn.out.bytes() >= 1000);
    f.table.queue_all(&keys, None, &line("{\"m\":2}"));
    f.table.flush(f.poll.registry());
    for i in (0..10).filter(|&i| i != 3) {
        assert_eq!(f.receive(i, 8), line("{\"m\":2}"));
    }
    // It reads everything; each flush on WRITABLE sends more.
    let mut got = Vec::new();
    let mut buf = vec![0; 1 << 16];
    while !got.ends_with(&line("{\"m\":2}")) {
        let n = f.far[3].read(&mut buf).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&buf[..n]);
        f.table.on_writable(keys[3]);
        f.table.flush(f.poll.registry());
    }
    assert!(got.iter().filter(|&&b| b == b'z').count() == 1000);
    assert!(!f.table.get(keys[3]).unwrap().writable);
    assert_eq!(f.table.total_out(), 0);
}
