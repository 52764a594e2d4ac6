//! The listening socket: accept until the backlog is empty, admit or
//! refuse each connection, and back off when file descriptors run out
//! (the failed connection stays in the backlog, so retrying at once would
//! spin).

use super::connection::Face;
use super::table::{Listening, Source};
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

impl Server {
    /// Accepts on the listener in slot `key` until its backlog is empty.
    /// Every listener shares this loop and its back-off.
    pub(super) fn accept_from(&mut self, key: usize) {
        if self.accept_paused || self.shutdown_deadline.is_some() {
            return;
        }
        let mut odd_errors = 0;
        loop {
            let Some(Source::Listener(listener, which)) = self.table.source(key) else {
                return;
            };
            let which = *which;
            match listener.accept() {
                Ok((stream, addr)) => {
                    self.accept_backoff = BACKOFF_MIN;
                    match which {
                        Listening::Mp1 => self.admit(stream, addr),
                        Listening::Http => self.admit_http(stream, addr),
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
                        self.table.clients()
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
        if self.table.clients() >= self.config.max_clients {
            self.refuse_full(stream, addr);
            return;
        }
        let framing = match self.config.framing {
            FramingMode::Auto => Framing::Mirror,
            FramingMode::Newline => Framing::Newline,
            FramingMode::Bare => Framing::Bare,
        };
        if let Some(key) = self.add_conn(stream, addr, framing, Face::Mp1) {
            self.admit_client(key);
        }
    }

    /// Puts an accepted connection in the table, speaking `face`.
    pub(super) fn add_conn(
        &mut self,
        stream: TcpStream,
        addr: SocketAddr,
        framing: Framing,
        face: Face,
    ) -> Option<ConnId> {
        let _ = stream.set_nodelay(true);
        super::sys::bound_send_buffer(&stream, self.config.max_output_bytes);
        let registry = self.el.registry();
        match self.table.insert(registry, stream, addr, framing, face) {
            Ok((key, _)) => Some(key),
            Err(e) => {
                warn!("register {addr}: {e}");
                None
            }
        }
    }

    /// A connection became a chat client (over TCP, or a browser over
    /// WebSocket): the chat learns of it, and its login deadline is set.
    pub(super) fn admit_client(&mut self, key: ConnId) {
        let Some(conn) = self.table.get(key) else {
            return;
        };
        let (addr, websocket) = (conn.addr, conn.is_websocket());
        let generation = self.table.generation(key).expect("just added");
        self.counters.accepted += 1;
        self.chat.handle_connect(key, addr);
        if !self.config.login_timeout.is_zero() {
            let at = Instant::now() + self.config.login_timeout;
            self.el.timers.set(at, Timer::Login(key, generation));
        }
        let level = self.noisy(log::Level::Info);
        let how = if websocket { " over WebSocket" } else { "" };
        log::log!(level, "connect {addr}{how} (#{key})");
    }

    /// Tells a connection over `--max-clients` why, and closes it.
    fn refuse_full(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        self.counters.refused_full += 1;
        let level = self.noisy(log::Level::Warn);
        log::log!(
            level,
            "rejected {addr}: server full ({} clients)",
            self.table.clients()
        );
        // Best effort: the socket is new, so its buffer has room.
        let mut line = Vec::new();
        encode_line(&Reply::disconnect("Server is full."), &mut line);
        let n = line.len() - usize::from(self.config.framing != FramingMode::Newline);
        let _ = stream.write(&line[..n]);
        let _ = stream.shutdown(Shutdown::Write);
    }
}
