//! Between the clients and the chat: each read goes through the client's
//! session, each request to the [`Chat`](crate::chat::Chat), and each of the
//! chat's effects back to the client table; and the ways a connection is
//! closed on the server's initiative (evictions, timeouts, slow consumers).

use super::connection::{Face, Phase};
use super::table::Received;
use super::{Server, Timer};
use crate::chat::{ConnId, Effect};
use crate::protocol::{encode_line, Cursor, DecodeError, Reply, Request, Status};
use crate::session::{Cut, Input};
use crate::websocket::{self, Event as WsEvent};
use log::{debug, info};
use std::time::Instant;

/// Reads per connection per turn before others get a go.
const READS_PER_TURN: usize = 4;
/// Queue slots added, or bytes written into blocks, after which the loop
/// flushes in the middle of a turn, bounding the memory a burst holds: a
/// turn of 1000 leaves among 5000 clients would otherwise queue millions
/// of ranges. Broadcasts that follow each other extend a range instead of
/// adding one, so a login storm runs whole turns between flushes.
const FLUSH_AFTER_SLOTS: usize = 256 * 1024;
const FLUSH_AFTER_BYTES: usize = 16 * 1024 * 1024;

impl Server {
    // ------------------------------------------------------------- input

    /// The one read path, for every stream connection whatever its face:
    /// reads until `WouldBlock` (mio is edge-triggered) or the client's
    /// FIN, or until this connection had its share of the turn (then it
    /// is read again next turn).
    pub(super) fn on_readable(&mut self, key: ConnId) {
        // Input held back while its output drained comes first, and a
        // browser's frames already received.
        let held = self.table.take_held_input(key);
        if !held.is_empty() {
            self.on_bytes(key, &held);
        }
        if self.table.get(key).is_some_and(|c| c.is_websocket()) {
            self.drain_ws(key);
        }
        for _ in 0..READS_PER_TURN {
            match self.table.read(key, &mut self.scratch) {
                Received::Bytes(n) => {
                    self.on_input(key, n);
                    if self.table.get(key).is_some_and(|c| c.paused) {
                        return; // resumed from the flush that drains it
                    }
                }
                Received::Discarded => continue,
                Received::Nothing => return,
                Received::Closed => return self.on_read_closed(key),
                Received::Failed(why) => return self.table.lose(key, &why),
            }
        }
        self.table.read_later(key);
    }

    /// The client sent its FIN after what was read (which was handled):
    /// what it is owed still goes out, then the connection closes. A chat
    /// client is leaving, and the others are told.
    fn on_read_closed(&mut self, key: ConnId) {
        let Some(conn) = self.table.get(key) else {
            return;
        };
        match conn.phase() {
            Phase::Draining => self.table.kill(key),
            Phase::Open if conn.is_client() => {
                self.begin_close(key);
                self.table.hang_up(key);
            }
            Phase::Open => self.begin_close(key),
            Phase::Closing | Phase::Dead => {}
        }
    }

    /// Hands `scratch[..n]` to what the connection speaks.
    fn on_input(&mut self, key: ConnId, n: usize) {
        let scratch = std::mem::take(&mut self.scratch);
        let conn = self.table.get_mut(key).expect("read from it");
        if !self.config.idle_timeout.is_zero() {
            conn.last_input = Instant::now();
        }
        match conn.face {
            Face::Mp1 => self.on_bytes(key, &scratch[..n]),
            Face::WebSocket(_) => self.on_ws_bytes(key, &scratch[..n]),
            Face::Http(_) => self.on_http_bytes(key, &scratch[..n]),
        }
        self.scratch = scratch;
    }

    /// A browser's bytes: WebSocket frames, whose text messages go to its
    /// session like any client's bytes.
    pub(super) fn on_ws_bytes(&mut self, key: ConnId, bytes: &[u8]) {
        if let Some(ws) = self.table.get_mut(key).and_then(|c| c.ws()) {
            ws.decoder.feed(bytes);
        }
        self.drain_ws(key);
    }

    /// Acts on the frames decoded so far, until they run out or the
    /// connection pauses or closes. Of several pings, the latest is
    /// answered (RFC 6455, 5.5.3), once the frames run out.
    fn drain_ws(&mut self, key: ConnId) {
        let mut ping = None;
        while let Some(event) = self.next_ws_event(key) {
            match event {
                WsEvent::Text(payload) => self.on_bytes(key, &payload),
                WsEvent::Ping(payload) => ping = Some(payload),
                WsEvent::Close(code) => {
                    debug!("#{key}: WebSocket closed by the client ({code})");
                    let echo = websocket::close_frame(websocket::CLOSE_NORMAL, "");
                    self.table.queue_ws_control(key, &echo);
                    self.begin_close(key);
                    self.chat.handle_disconnect(key);
                    self.apply_effects();
                }
                WsEvent::Fail(code, why) => {
                    self.counters.cut_unparsable += 1;
                    let level = self.noisy(log::Level::Warn);
                    log::log!(level, "#{key}: WebSocket: {why}; disconnecting");
                    if let Some(ws) = self.table.get_mut(key).and_then(|c| c.ws()) {
                        ws.close_code = code;
                    }
                    self.evict(key, &format!("WebSocket error: {why}."));
                }
            }
        }
        if let Some(payload) = ping {
            let pong = websocket::frame(websocket::OP_PONG, &payload);
            self.table.queue_ws_control(key, &pong);
            self.cut_slow_consumers();
        }
    }

    /// The next frame event of an open, unpaused browser; a browser that
    /// owes too much is paused first (its frames wait in the decoder).
    fn next_ws_event(&mut self, key: ConnId) -> Option<WsEvent> {
        if self.table.owes_too_much(key) {
            self.table.pause(key, &[]);
            return None;
        }
        let max = self.config.max_message_bytes;
        let conn = self.table.get_mut(key)?;
        if !conn.is_open() || conn.paused {
            return None;
        }
        conn.ws()?.decoder.next_event(max)
    }

    /// Acts on each input in `bytes` until they are used up, or the
    /// connection stops reading, or its own output piles up: then the rest
    /// waits, unread, until that output drains (backpressure).
    fn on_bytes(&mut self, key: ConnId, bytes: &[u8]) {
        let mut at = Cursor::default();
        while self.table.get(key).is_some_and(|c| c.is_open()) {
            if at.between_frames() && self.table.owes_too_much(key) {
                self.table.pause(key, &bytes[at.position()..]);
                return;
            }
            let conn = self.table.get_mut(key).expect("open");
            let Some(input) = conn.session.poll_input(bytes, &mut at, &self.limits) else {
                break;
            };
            self.on_session_input(key, input);
        }
    }

    fn on_session_input(&mut self, key: ConnId, input: Input) {
        match input {
            Input::Request(request) => {
                if self.config.log_chat {
                    log_chat(self.chat.name_of(key), &request);
                }
                self.chat.handle_request(key, request);
                self.apply_effects();
                self.flush_if_heavy();
            }
            Input::Answer(reply) => {
                self.encode(&reply);
                self.table.queue(key, &self.encoded);
            }
            Input::EndLine => {
                self.table.queue_raw(key, b"\n");
            }
            Input::Cut(cut) => {
                let level = self.noisy(log::Level::Warn);
                match cut {
                    Cut::Oversized { limit } => {
                        self.counters.cut_oversize += 1;
                        log::log!(level, "#{key}: message over {limit} bytes; disconnecting");
                    }
                    Cut::Unparsable { count } => {
                        self.counters.cut_unparsable += 1;
                        log::log!(
                            level,
                            "#{key}: {count} unparsable inputs in a row; disconnecting"
                        );
                    }
                }
                self.evict(key, &cut.message());
            }
        }
    }

    // ----------------------------------------------------------- effects

    /// Encodes `reply` as a line into `self.encoded`, where the client
    /// table copies it from into the blocks it queues ranges of.
    pub(super) fn encode(&mut self, reply: &Reply) {
        self.encoded.clear();
        encode_line(reply, &mut self.encoded);
    }

    /// Carries out what the chat decided, then cuts the slow consumers
    /// that fan-out found, which may decide more.
    pub(super) fn apply_effects(&mut self) {
        loop {
            while let Some(effect) = self.chat.poll_effect() {
                self.apply(effect);
            }
            self.cut_slow_consumers();
            if !self.chat.has_effects() {
                return;
            }
        }
    }

    /// The fan-out path: a broadcast is encoded once and the same bytes
    /// are queued for every member; [`Server::flush_all`] writes them.
    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Send(to, reply) => {
                match &reply {
                    Reply::AssignUsername {
                        status: Status::Ok, ..
                    } => self.counters.logins += 1,
                    Reply::WhisperFromUser { .. } => self.counters.whispers += 1,
                    _ => {}
                }
                self.encode(&reply);
                self.table.queue(to, &self.encoded);
            }
            Effect::Broadcast { to, reply } => {
                if let Reply::SendChatFromUser { .. } = &reply {
                    self.counters.chats += 1;
                }
                if let Reply::ServerMessage { message } = &reply {
                    let level = self.noisy(log::Level::Info);
                    log::log!(level, "{message}");
                }
                self.encode(&reply);
                self.table
                    .queue_all(to.members(), to.except(), &self.encoded);
            }
            Effect::Close(key) => self.begin_close(key),
            Effect::Lan(out) => self.relay_to_lan(out),
            Effect::Propose(conn, p) => self.propose(conn, p),
        }
    }

    pub(super) fn cut_slow_consumers(&mut self) {
        while let Some((key, owed, over_budget)) = self.table.next_too_slow() {
            if over_budget {
                self.counters.cut_budget += 1;
            } else {
                self.counters.cut_slow += 1;
            }
            let who = self.who(key);
            let level = self.noisy(log::Level::Warn);
            let why = if over_budget {
                let total = self.config.max_total_output_bytes;
                log::log!(
                    level,
                    "{who}: too slow ({owed} bytes unsent, the most while all \
                     clients owed over {total}); disconnecting"
                );
                format!(
                    "Too slow: the server's output budget ({total} bytes) is full \
                     and this connection owed the most."
                )
            } else {
                log::log!(
                    level,
                    "{who}: too slow ({owed} bytes unsent); disconnecting"
                );
                let max = self.config.max_output_bytes;
                format!("Too slow: more than {max} bytes of messages were waiting.")
            };
            self.evict(key, &why);
        }
    }

    /// A connection as the log names it: `#5 127.0.0.1:54656 (ana)`.
    fn who(&self, key: ConnId) -> String {
        let addr = self.table.get(key).map(|c| c.addr.to_string());
        let name = self.chat.name_of(key).map(|n| format!(" ({n})"));
        format!(
            "#{key} {}{}",
            addr.as_deref().unwrap_or("?"),
            name.unwrap_or_default()
        )
    }

    // ----------------------------------------------------------- closing

    /// Closes an open connection on the server's initiative, telling the
    /// client why and the others that it left.
    pub(super) fn evict(&mut self, key: ConnId, why: &str) {
        self.encode(&Reply::disconnect(why));
        self.table.queue_forced(key, &self.encoded);
        self.begin_close(key);
        self.chat.handle_disconnect(key);
        self.apply_effects();
    }

    /// Stops reading; the connection closes once its output is flushed or
    /// the close timeout passes.
    pub(super) fn begin_close(&mut self, key: ConnId) {
        if !self.table.begin_close(key) {
            return;
        }
        let generation = self.table.generation(key).expect("closing");
        let at = Instant::now() + self.config.close_timeout;
        let at = self.shutdown_deadline.map_or(at, |d| d.min(at));
        self.el.timers.set(at, Timer::Close(key, generation));
    }

    /// Logs out the connections found lost; true if that queued output.
    pub(super) fn log_out_lost(&mut self) -> bool {
        let lost = self.table.take_lost();
        if lost.is_empty() {
            return false;
        }
        for key in lost {
            self.chat.handle_disconnect(key);
        }
        self.apply_effects();
        self.table.has_dirty()
    }

    pub(super) fn on_login_deadline(&mut self, key: ConnId, generation: u32) {
        let waiting =
            self.table.is(key, generation, Phase::Open) && self.chat.name_of(key).is_none();
        if waiting {
            self.counters.cut_timeout += 1;
            debug!("#{key}: no Login in time");
            let secs = self.config.login_timeout.as_secs_f64();
            self.evict(key, &format!("Login timeout: no Login within {secs} s."));
        }
    }

    pub(super) fn sweep_idle(&mut self, now: Instant) {
        let limit = self.config.idle_timeout;
        for key in self.table.open_keys() {
            let idle = self
                .table
                .get(key)
                .is_some_and(|c| c.is_open() && now.duration_since(c.last_input) >= limit);
            if idle {
                self.counters.cut_timeout += 1;
                debug!("#{key}: idle timeout");
                let secs = limit.as_secs_f64();
                self.evict(
                    key,
                    &format!("Idle timeout: nothing received for {secs} s."),
                );
            }
        }
    }

    // ------------------------------------------------------------ output

    /// Flushes now rather than at the end of the turn when a lot was
    /// queued, bounding the memory a burst of fan-out can hold.
    pub(super) fn flush_if_heavy(&mut self) {
        let (slots, bytes) = self.table.added_since_flush();
        if slots >= FLUSH_AFTER_SLOTS || bytes >= FLUSH_AFTER_BYTES {
            self.flush_all();
        }
    }

    /// Flushes every connection owed output; the departures of those whose
    /// writes failed are announced to the rest, and flushed too.
    pub(super) fn flush_all(&mut self) {
        loop {
            self.table.flush(self.el.registry());
            let cut = self.table.has_too_slow();
            self.cut_slow_consumers();
            if !self.log_out_lost() && !cut {
                return;
            }
        }
    }
}

fn log_chat(from: Option<&str>, msg: &Result<Request, DecodeError>) {
    let from = from.unwrap_or("?");
    match msg {
        Ok(Request::SendChat { message }) => info!("chat {from}: {message}"),
        Ok(Request::WhisperToUser { to, message }) => {
            info!("whisper {from} -> {}: {message}", to.join(","))
        }
        _ => {}
    }
}
