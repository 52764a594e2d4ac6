//! One stream connection as the loop sees it: its socket, what it speaks
//! ([`Face`]: MP1, an HTTP request, or MP1 over WebSocket after an
//! upgrade), its protocol session, the bytes it is owed, and where it is
//! in its life. The phase changes only through the methods here.

use super::output::OutQueue;
use crate::session::{Framing, Session};
use mio::net::TcpStream;
use std::net::{Shutdown, SocketAddr};
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
    /// destroy the reply the client has not read yet). Skipped when the
    /// client's FIN came first.
    Draining,
    /// Gone; freed at the end of the loop turn.
    Dead,
}

pub struct Connection {
    pub stream: TcpStream,
    pub addr: SocketAddr,
    phase: Phase,
    /// Input rules and reply framing.
    pub session: Session,
    pub out: OutQueue,
    /// Queued in the table's flush list this turn.
    pub(super) dirty: bool,
    /// WRITABLE interest is registered (only while output is pending).
    pub(super) writable: bool,
    /// Marked as a slow consumer; cut off once the fan-out finishes.
    pub(super) too_slow: bool,
    /// ... because the output budget of all clients was exceeded.
    pub(super) over_budget: bool,
    /// Its own output piled up: its input is not read until that drains
    /// (backpressure), and what was read but not handled waits here.
    pub(super) paused: bool,
    /// (Boxed: most connections never pause, and an idle one stays 16
    /// bytes smaller than with a `Vec` inline.)
    #[allow(clippy::box_collection)]
    pub(super) held_input: Option<Box<Vec<u8>>>,
    pub last_input: Instant,
    /// The client's FIN was read: nothing more will come from it.
    pub(super) read_closed: bool,
    /// Bytes the kernel held for it when its socket last refused more
    /// (`SIOCOUTQ`): charged against its output limit with what it owes.
    pub(super) kernel_owed: u32,
    pub face: Face,
}

/// What a connection speaks. An HTTP request that asks for a WebSocket
/// becomes one: a change of face, in the same slot.
pub enum Face {
    /// An MP1 client over TCP.
    Mp1,
    /// An HTTP request being read, or answered.
    Http(Box<HttpRequest>),
    /// An MP1 client whose objects come in WebSocket frames.
    WebSocket(Box<WsState>),
}

/// An HTTP request: its head as read so far; whether it was answered.
#[derive(Default)]
pub struct HttpRequest {
    pub head: Vec<u8>,
    pub answered: bool,
}

/// A WebSocket connection's framing state.
pub struct WsState {
    pub decoder: crate::websocket::Decoder,
    /// Our close frame is queued: nothing is sent after it.
    pub close_sent: bool,
    /// The code our close frame carries (1000 unless the client broke a
    /// rule).
    pub close_code: u16,
}

impl Connection {
    pub fn new(stream: TcpStream, addr: SocketAddr, framing: Framing, face: Face) -> Self {
        Connection {
            stream,
            addr,
            phase: Phase::Open,
            session: Session::new(framing),
            out: OutQueue::default(),
            dirty: false,
            writable: false,
            too_slow: false,
            over_budget: false,
            paused: false,
            held_input: None,
            last_input: Instant::now(),
            read_closed: false,
            kernel_owed: 0,
            face,
        }
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    pub fn is_open(&self) -> bool {
        self.phase == Phase::Open
    }

    /// Stops reading; the output still goes out. False if it was not open.
    pub fn begin_close(&mut self) -> bool {
        if self.phase != Phase::Open {
            return false;
        }
        self.phase = Phase::Closing;
        true
    }

    /// All output is out on a closing connection: send our FIN after it
    /// and wait for the client's, draining what it still sends. False if
    /// it was not closing, or if the client's FIN came already (then there
    /// is nothing to wait for: the caller kills it).
    pub fn output_done(&mut self) -> bool {
        if self.phase != Phase::Closing {
            return false;
        }
        let _ = self.stream.shutdown(Shutdown::Write);
        if self.read_closed {
            return false;
        }
        self.phase = Phase::Draining;
        true
    }

    /// Whether a browser's frames carry its MP1 objects.
    pub fn ws(&mut self) -> Option<&mut WsState> {
        match &mut self.face {
            Face::WebSocket(ws) => Some(ws),
            _ => None,
        }
    }

    pub fn is_websocket(&self) -> bool {
        matches!(self.face, Face::WebSocket(_))
    }

    /// Whether it is (or became) a chat client, not an HTTP request.
    pub fn is_client(&self) -> bool {
        !matches!(self.face, Face::Http(_))
    }

    /// Marks the connection dead and frees its queue (nothing more will be
    /// written). False if it already was.
    pub fn kill(&mut self) -> bool {
        if self.phase == Phase::Dead {
            return false;
        }
        self.phase = Phase::Dead;
        self.out = OutQueue::default();
        true
    }
}

impl Default for WsState {
    fn default() -> Self {
        WsState {
            decoder: crate::websocket::Decoder::default(),
            close_sent: false,
            close_code: crate::websocket::CLOSE_NORMAL,
        }
    }
}
