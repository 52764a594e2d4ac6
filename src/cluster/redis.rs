//! A Redis connection's protocol state, with no I/O: commands go in (as
//! RESP2 arrays of bulk strings, encoded by `redis-protocol`), replies come
//! out in the order the commands were sent, each with the tag its command
//! was given. The loop around it moves `output()` to the socket and feeds
//! what the socket returns; pipelining is free: send many, read many.

use redis_protocol::resp2::types::{OwnedFrame, Resp2Frame};
use redis_protocol::resp2::{decode::decode, encode::encode};
use std::collections::VecDeque;

pub use redis_protocol::resp2::types::OwnedFrame as Reply;

/// Work is linear in the bytes: what was written and what was decoded
/// are kept as offsets, and each buffer is compacted once per batch (a new
/// command, a new read), not once per reply or per write.
pub struct Connection<T> {
    out: Vec<u8>,
    /// Bytes at the front of `out` already written.
    sent: usize,
    input: Vec<u8>,
    /// Bytes at the front of `input` already decoded.
    decoded: usize,
    /// Tags of the commands sent whose replies have not come yet.
    waiting: VecDeque<T>,
}

impl<T> Default for Connection<T> {
    fn default() -> Self {
        Connection {
            out: Vec::new(),
            sent: 0,
            input: Vec::new(),
            decoded: 0,
            waiting: VecDeque::new(),
        }
    }
}

impl<T> Connection<T> {
    /// Queues a command; its reply will come back with `tag`.
    pub fn command(&mut self, tag: T, args: &[&[u8]]) {
        let frame = OwnedFrame::Array(
            args.iter()
                .map(|a| OwnedFrame::BulkString(a.to_vec()))
                .collect(),
        );
        self.out.drain(..self.sent);
        self.sent = 0;
        let at = self.out.len();
        self.out.resize(at + frame.encode_len(false), 0);
        let n = encode(&mut self.out[at..], &frame, false).expect("sized by encode_len");
        self.out.truncate(at + n);
        self.waiting.push_back(tag);
    }

    /// Bytes to write.
    pub fn output(&self) -> &[u8] {
        &self.out[self.sent..]
    }

    /// `n` bytes of `output()` were written.
    pub fn written(&mut self, n: usize) {
        self.sent += n;
        if self.sent == self.out.len() {
            self.out.clear();
            self.sent = 0;
        }
    }

    /// Adds bytes read from the socket.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.input.drain(..self.decoded);
        self.decoded = 0;
        self.input.extend_from_slice(bytes);
    }

    /// The tags of the commands still unanswered (the connection is being
    /// dropped).
    pub fn into_waiting(self) -> VecDeque<T> {
        self.waiting
    }

    /// Commands sent and not answered yet.
    pub fn in_flight(&self) -> usize {
        self.waiting.len()
    }

    /// The next reply with its command's tag; `Ok(None)` until all of it
    /// has arrived. An error means the stream cannot be read any more:
    /// drop the connection and make a new one.
    pub fn next_reply(&mut self) -> Result<Option<(T, Reply)>, String> {
        if self.decoded == self.input.len() {
            return Ok(None);
        }
        let (frame, used) = match decode(&self.input[self.decoded..]) {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(None),
            Err(e) => return Err(format!("unreadable reply from Redis: {e:?}")),
        };
        self.decoded += used;
        let tag = self
            .waiting
            .pop_front()
            .ok_or("a reply from Redis to no command")?;
        Ok(Some((tag, frame)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Many replies in one read are decoded from an offset; the buffer is
    /// compacted at the next read, and output at the next command.
    #[test]
    fn many_replies_in_one_read_are_decoded_from_an_offset() {
        let mut c = Connection::default();
        for i in 0..10_000 {
            c.command(i, &[b"PING"]);
        }
        let n = c.output().len();
        c.written(n - 3);
        assert_eq!(c.output(), b"G\r\n", "the rest is still owed");
        c.written(3);
        assert!(c.output().is_empty());
        c.feed(&b"+PONG\r\n".repeat(10_000));
        for i in 0..10_000 {
            assert_eq!(
                c.next_reply().unwrap(),
                Some((i, Reply::SimpleString(b"PONG".to_vec())))
            );
        }
        assert_eq!(c.next_reply().unwrap(), None);
        c.feed(b"+");
        assert_eq!(c.input.len(), 1, "compacted once, at the feed");
    }

    #[test]
    fn commands_are_arrays_of_bulk_strings() {
        let mut c = Connection::default();
        c.command(1, &[b"SET", b"k", b"v", b"NX"]);
        assert_eq!(
            c.output(),
            b"*4\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nNX\r\n"
        );
        c.written(4);
        assert!(c.output().starts_with(b"$3\r\nSET"));
        assert_eq!(c.in_flight(), 1);
    }

    #[test]
    fn pipelined_replies_come_back_in_order_with_their_tags() {
        let mut c = Connection::default();
        c.command("set", &[b"SET", b"k", b"v", b"NX"]);
        c.command("again", &[b"SET", b"k", b"v", b"NX"]);
        c.command("eval", &[b"EVAL", b"return {1,'a'}", b"0"]);
        c.command("bad", &[b"NOPE"]);
        let replies: &[u8] =
            b"+OK\r\n$-1\r\n*2\r\n:1\r\n$1\r\na\r\n-ERR unknown command 'NOPE'\r\n";
        let mut got = Vec::new();
        for b in replies {
            c.feed(&[*b]);
            while let Some(r) = c.next_reply().unwrap() {
                got.push(r);
            }
        }
        assert_eq!(
            got,
            vec![
                ("set", Reply::SimpleString(b"OK".to_vec())),
                ("again", Reply::Null),
                (
                    "eval",
                    Reply::Array(vec![Reply::Integer(1), Reply::BulkString(b"a".to_vec())])
                ),
                ("bad", Reply::Error("ERR unknown command 'NOPE'".into())),
            ]
        );
        assert_eq!(c.in_flight(), 0);
    }

    #[test]
    fn garbage_and_unasked_replies_are_errors() {
        let mut c: Connection<()> = Connection::default();
        c.feed(b"+OK\r\n");
        assert!(c.next_reply().is_err(), "nothing was asked");
        let mut c: Connection<()> = Connection::default();
        c.command((), &[b"PING"]);
        c.feed(b"?what\r\n");
        assert!(c.next_reply().is_err());
    }
}
