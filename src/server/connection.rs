//! One client connection as the loop sees it: its socket, the partial
//! object it is sending, the bytes it is owed, and how it frames replies.

use super::output::OutQueue;
use crate::protocol::Splitter;
use mio::net::TcpStream;
use std::net::SocketAddr;
use std::time::Instant;

/// Where a connection is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading requests and receiving messages.
    Open,
    /// Taking its last output; reads are ignored.
    Closing,
    /// Output sent and our side shut down; waiting for the client's FIN
    /// (closing with unread input would reset the connection and could
    /// destroy the reply the client has not read yet).
    Draining,
    /// Gone; freed at the end of the loop turn.
    Dead,
}

pub struct Connection {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    /// Changes each time the slab slot is reused, so a stale event for a
    /// previous occupant is recognised and ignored.
    pub generation: u32,
    pub phase: Phase,
    pub input: Splitter,
    pub out: OutQueue,
    /// Replies end in `\n` (newline framing) rather than back-to-back.
    pub newline: bool,
    /// Whether framing still follows the client (`--framing auto`).
    pub mirror: bool,
    /// Some reply went out bare: a switch to newline owes one `\n`.
    pub sent_bare: bool,
    /// Queued in the loop's flush list this turn.
    pub dirty: bool,
    /// WRITABLE interest is registered (only while output is pending).
    pub writable: bool,
    /// Marked as a slow consumer; cut off once the fan-out finishes.
    pub too_slow: bool,
    /// Unparsable inputs in a row.
    pub unparsable: u32,
    pub last_input: Instant,
}

impl Connection {
    pub fn new(
        stream: TcpStream,
        addr: SocketAddr,
        generation: u32,
        newline: bool,
        mirror: bool,
    ) -> Self {
        Connection {
            stream,
            addr,
            generation,
            phase: Phase::Open,
            input: Splitter::new(),
            out: OutQueue::default(),
            newline,
            mirror,
            sent_bare: false,
            dirty: false,
            writable: false,
            too_slow: false,
            unparsable: 0,
            last_input: Instant::now(),
        }
    }

    /// How many bytes of an encoded line (ending in `\n`) this connection
    /// is sent, recording that a bare reply went out.
    pub fn framed_len(&mut self, line_len: usize) -> usize {
        if self.newline {
            line_len
        } else {
            self.sent_bare = true;
            line_len - 1
        }
    }
}
