//! A simulated client's TCP connection, whatever it carries (MP1, MP1 in
//! WebSocket frames, RESP): connecting without blocking, writing what is
//! pending, reading what arrived, and the per-transport reading state the
//! transports keep in it.

use crate::accounting::Receiver;
use mio::net::TcpStream;
use mio::{Interest, Token};
use mp1::protocol::Splitter;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::Instant;

use super::{Framing, Runner};

pub(super) enum Phase {
    Connecting,
    LoggingIn,
    Ready,
}

pub(super) struct Client {
    pub stream: TcpStream,
    /// Index into `Params::targets`.
    pub target: usize,
    pub phase: Phase,
    pub started: Instant,
    /// MP1 (over TCP or in WebSocket text frames): objects being split.
    pub splitter: Splitter,
    /// MP1 over TCP: requests end with a line break.
    pub newline: bool,
    /// WebSocket: the server's 101 has been read.
    pub ws_open: bool,
    /// WebSocket and Redis: bytes of a frame or value that has not fully
    /// arrived.
    pub partial: Vec<u8>,
    pub out: Vec<u8>,
    pub rx: Receiver,
}

impl Client {
    /// A connecting client's first writable event means it connected (or
    /// failed to); then whatever is pending is written.
    pub fn on_writable(&mut self, target: SocketAddr) -> Result<(), String> {
        if matches!(self.phase, Phase::Connecting) {
            if let Ok(Some(e)) | Err(e) = self.stream.take_error() {
                return Err(format!("connect to {target}: {e}"));
            }
            if self.stream.peer_addr().is_err() {
                return Ok(()); // not connected yet
            }
            self.phase = Phase::LoggingIn;
        }
        self.flush().map_err(|e| format!("write: {e}"))
    }

    /// Writes what is pending, once connected.
    pub fn flush(&mut self) -> io::Result<()> {
        if matches!(self.phase, Phase::Connecting) {
            return Ok(());
        }
        mp1::pending::write_pending(&mut self.stream, &mut self.out)
    }

    /// Reads into `buf`: `Ok(Some(n))` with n > 0, `Ok(None)` when nothing
    /// is waiting (or the connection is not up yet).
    pub fn read(&mut self, buf: &mut [u8]) -> Result<Option<usize>, String> {
        loop {
            return match self.stream.read(buf) {
                Ok(0) => Err("the server closed the connection".into()),
                Ok(n) => Ok(Some(n)),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(None),
                Err(e) => Err(format!("read: {e}")),
            };
        }
    }
}

impl Runner<'_> {
    /// Opens a connection to `targets[target]` that sends `out` once
    /// connected.
    pub(super) fn connect(
        &mut self,
        token: Token,
        target: usize,
        out: Vec<u8>,
    ) -> Result<Client, String> {
        let addr = self.p.targets[target];
        let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
        self.poll
            .registry()
            .register(&mut stream, token, Interest::READABLE | Interest::WRITABLE)
            .map_err(|e| e.to_string())?;
        Ok(Client {
            stream,
            target,
            phase: Phase::Connecting,
            started: Instant::now(),
            splitter: Splitter::new(),
            newline: self.p.framing == Framing::Newline,
            ws_open: false,
            partial: Vec::new(),
            out,
            rx: Receiver::default(),
        })
    }
}
