//! The listening socket: accept until the backlog is empty, admit or
//! refuse each connection, and back off when file descriptors run out
//! (the failed connection stays in the backlog, so retrying at once would
//! spin).

use super::{FramingMode, Server, Timer};
use crate::chat::ConnId;
use crate::protocol::{encode_line, Reply};
use crate::session::Framing;
use log::{debug, warn};
use mio::net::TcpStream;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

pub(super) const BACKOFF_MIN: Duration = Duration::from_millis(10);
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// Per-connection accept failures in a row before pausing a moment.
const ODD_ERRORS_MAX: u32 = 64;

/// The listening sockets, which share one accept loop and one back-off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Listener {
    /// MP1 clients over TCP.
    Mp1,
    /// The HTTP face (`--http`).
    Http,
}

impl Server {
    /// Accepts on every listener (after a pause).
    pub(super) fn accept_all(&mut self) {
        self.accept_from(Listener::Mp1);
        self.accept_from(Listener::Http);
    }

    /// Accepts on `which` until its backlog is empty.
    pub(super) fn accept_from(&mut self, which: Listener) {
        if self.accept_paused || self.shutdown_deadline.is_some() {
            return;
        }
        let mut odd_errors = 0;
        loop {
            let listener = match which {
                Listener::Mp1 => self.listener.as_ref(),
                Listener::Http => self.http.as_ref().map(|h| h.listener()),
            };
            let Some(listener) = listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, addr)) => {
                    self.accept_backoff = BACKOFF_MIN;
                    match which {
                        Listener::Mp1 => self.admit(stream, addr),
                        Listener::Http => self.admit_http(stream, addr),
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if super::sys::is_resource_exhaustion(&e) => {
                    // The connection stays in the backlog: retrying now
                    // would spin. Serve the clients we have and retry later.
                    warn!(
                        "accept ({which:?}): {e}; pausing accepts for {:?} ({} clients)",
                        self.accept_backoff,
                        self.clients.len()
                    );
                    self.pause_accepts(self.accept_backoff);
                    self.accept_backoff = (self.accept_backoff * 2).min(BACKOFF_MAX);
                    return;
                }
                Err(e) => {
                    // Per-connection failures (ECONNABORTED...) consume the
                    // pending connection; keep going, but never forever.
                    debug!("accept: {e}");
                    odd_errors += 1;
                    if odd_errors > ODD_ERRORS_MAX {
                        self.pause_accepts(BACKOFF_MIN);
                        return;
                    }
                }
            }
        }
    }

    fn pause_accepts(&mut self, how_long: Duration) {
        self.accept_paused = true;
        self.el
            .timers
            .set(Instant::now() + how_long, Timer::ResumeAccept);
    }

    fn admit(&mut self, stream: TcpStream, addr: SocketAddr) {
        if self.clients.len() >= self.config.max_clients {
            self.refuse_full(stream, addr);
            return;
        }
        let framing = match self.config.framing {
            FramingMode::Auto => Framing::Mirror,
            FramingMode::Newline => Framing::Newline,
            FramingMode::Bare => Framing::Bare,
        };
        self.admit_client(stream, addr, framing, false);
    }

    /// Adds a client (over TCP, or a browser over WebSocket) to the table
    /// and the chat, with its login deadline.
    pub(super) fn admit_client(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        framing: Framing,
        websocket: bool,
    ) -> Option<ConnId> {
        let _ = stream.set_nodelay(true);
        let (key, generation) =
            match self
                .clients
                .insert(self.el.registry(), stream, addr, framing, websocket)
            {
                Ok(k) => k,
                Err(e) => {
                    warn!("register {addr}: {e}");
                    return None;
                }
            };
        self.counters.accepted += 1;
        self.chat.connect(key, addr);
        if !self.config.login_timeout.is_zero() {
            let at = Instant::now() + self.config.login_timeout;
            self.el.timers.set(at, Timer::Login(key, generation));
        }
        let level = self.noisy(log::Level::Info);
        let how = if websocket { " over WebSocket" } else { "" };
        log::log!(level, "connect {addr}{how} (#{key})");
        Some(key)
    }

    /// Tells a connection over `--max-clients` why, and closes it.
    fn refuse_full(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        self.counters.refused_full += 1;
        let level = self.noisy(log::Level::Warn);
        log::log!(
            level,
            "rejected {addr}: server full ({} clients)",
            self.clients.len()
        );
        // Best effort: the socket is new, so its buffer has room.
        let mut line = Vec::new();
        encode_line(&Reply::disconnect("Server is full."), &mut line);
        let n = line.len() - usize::from(self.config.framing != FramingMode::Newline);
        let _ = stream.write(&line[..n]);
        let _ = stream.shutdown(Shutdown::Write);
    }
}
