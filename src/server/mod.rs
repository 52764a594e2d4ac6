//! `mp1d`'s event loop: one thread, one `mio::Poll`, every connection in a
//! slab. It only moves bytes: input is split into objects and decoded, the
//! [`Chat`] state machine decides what happens, and the loop queues the
//! encoded replies and flushes each connection once per turn.
//!
//! A turn of the loop, in the spirit of Redis's `beforeSleep`:
//! 1. handle the events of one poll (accept, read, note writability);
//! 2. fire expired timers (login deadline, idle, closing, accept back-off);
//! 3. flush every connection that is owed output, one `writev` each;
//! 4. free the connections that died during the turn (never earlier, so a
//!    reused slab slot cannot receive a stale event meant for its previous
//!    occupant; tokens also carry a generation as a second guard).

mod bridge;
mod config;
mod connection;
pub mod output;
mod sys;

pub use config::{BridgeConfig, Config, FramingMode};
pub use sys::raise_nofile_limit;

use crate::chat::{Chat, ChatConfig, ConnId, Effect};
use crate::peer::net::PeerNode;
use crate::protocol::{decode_request, encode_line, DecodeError, Frame, Reply};
use connection::{Connection, Phase};
use log::{debug, info, warn};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use output::Flushed;
use slab::Slab;
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

const LISTENER: Token = Token(usize::MAX);
const SIGNALS: Token = Token(usize::MAX - 1);
const BRIDGE: Token = Token(usize::MAX - 2);

/// Low half of a connection token: slab key; high half: generation.
const KEY_BITS: u32 = usize::BITS / 2;
const KEY_MASK: usize = (1 << KEY_BITS) - 1;

/// Size of the one read buffer every connection shares.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Reads per connection per turn before others get a go.
const READS_PER_TURN: usize = 4;
/// Backlog for the listening socket (Redis uses 511; the kernel clamps it).
const LISTEN_BACKLOG: i32 = 1024;
/// File descriptors kept free beyond the clients (listener, poll, signals,
/// logging).
const RESERVED_FDS: u64 = 32;
const ACCEPT_BACKOFF_MIN: Duration = Duration::from_millis(10);
const ACCEPT_BACKOFF_MAX: Duration = Duration::from_secs(1);
const IDLE_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Bytes written since the last heap trim that make the next quiet moment
/// worth a trim (a trim costs about a millisecond per 30 MiB of heap).
const TRIM_AFTER_BYTES: u64 = 16 * 1024 * 1024;
const TRIM_RECHECK: Duration = Duration::from_millis(100);
/// Messages queued (one per recipient) after which the loop flushes in the
/// middle of a turn: a turn of 1000 leaves among 5000 clients would
/// otherwise hold five million queue slots (~120 MB) until its end.
const FLUSH_AFTER_QUEUED: usize = 256 * 1024;

fn token(key: usize, generation: u32) -> Token {
    Token(key | ((generation as usize & KEY_MASK) << KEY_BITS))
}

/// Counters of policy actions, logged at exit.
#[derive(Default, Debug)]
struct Stats {
    accepted: u64,
    rejected_full: u64,
    slow_consumers: u64,
    oversized: u64,
    unparsable_cuts: u64,
    timeouts: u64,
}

pub struct Server {
    poll: Poll,
    listener: TcpListener,
    signals: Option<mio::net::UnixStream>,
    config: Config,
    conns: Slab<Connection>,
    chat: Chat,
    next_generation: u32,
    /// The read buffer all connections share.
    scratch: Vec<u8>,
    /// Reused encoding buffer.
    encoded: Vec<u8>,
    effects: Vec<Effect>,
    /// Connections owed a flush this turn.
    dirty: Vec<ConnId>,
    /// Messages queued since the last flush.
    queued: usize,
    /// Connections that died this turn, freed at its end.
    dead: Vec<ConnId>,
    /// Slow consumers found during a fan-out, cut off right after it.
    too_slow: Vec<ConnId>,
    /// Connections that failed or closed, still to be logged out.
    lost: Vec<ConnId>,
    /// Connections that hit the per-turn read cap and have more to read.
    read_backlog: Vec<ConnId>,
    login_deadlines: VecDeque<(Instant, ConnId, u32)>,
    close_deadlines: VecDeque<(Instant, ConnId, u32)>,
    next_idle_sweep: Option<Instant>,
    accept_paused_until: Option<Instant>,
    accept_backoff: Duration,
    shutdown_deadline: Option<Instant>,
    /// The one-byte "\n" sent when a bare connection switches to newline.
    newline: Rc<[u8]>,
    /// Bytes flushed since the heap was last trimmed.
    written_since_trim: u64,
    /// Earliest time to look again for a quiet moment to trim in.
    next_trim_check: Instant,
    /// mp1d's own LAN peer, when it bridges a LAN (`--peer-name`).
    bridge: Option<PeerNode>,
    /// Names tried after the configured LAN name was taken.
    lan_name_tries: u32,
    stats: Stats,
}

impl Server {
    /// Binds the listening socket. Lowers `max_clients` to what the
    /// open-file limit allows.
    pub fn bind(mut config: Config) -> io::Result<Server> {
        let nofile = sys::raise_nofile_limit();
        let fit = nofile.saturating_sub(RESERVED_FDS).max(1) as usize;
        // Keys stay below the low halves of the fixed tokens (MAX, MAX-1, MAX-2).
        let fit = fit.min(KEY_MASK - 3);
        if config.max_clients > fit {
            warn!(
                "max clients lowered from {} to {} to fit the open-file limit ({})",
                config.max_clients, fit, nofile
            );
            config.max_clients = fit;
        }
        let std_listener = std::net::TcpListener::bind((config.bind, config.port))?;
        if let Err(e) = sys::deepen_backlog(&std_listener, LISTEN_BACKLOG) {
            warn!("could not deepen the listen backlog: {e}");
        }
        std_listener.set_nonblocking(true)?;
        let mut listener = TcpListener::from_std(std_listener);
        let poll = Poll::new()?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let chat = Chat::new(ChatConfig {
            max_chat_chars: config.max_chat_chars,
        });
        let next_idle_sweep =
            (!config.idle_timeout.is_zero()).then(|| Instant::now() + IDLE_SWEEP_EVERY);
        Ok(Server {
            poll,
            listener,
            signals: None,
            config,
            conns: Slab::new(),
            chat,
            next_generation: 0,
            scratch: vec![0; SCRATCH_BYTES],
            encoded: Vec::with_capacity(256),
            effects: Vec::new(),
            dirty: Vec::new(),
            queued: 0,
            dead: Vec::new(),
            too_slow: Vec::new(),
            lost: Vec::new(),
            read_backlog: Vec::new(),
            login_deadlines: VecDeque::new(),
            close_deadlines: VecDeque::new(),
            next_idle_sweep,
            accept_paused_until: None,
            accept_backoff: ACCEPT_BACKOFF_MIN,
            shutdown_deadline: None,
            newline: Rc::from(&b"\n"[..]),
            written_since_trim: 0,
            next_trim_check: Instant::now(),
            bridge: None,
            lan_name_tries: 0,
            stats: Stats::default(),
        })
        .and_then(Server::start_bridge)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The configuration in force (after start-up adjustments).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Shut down cleanly on SIGINT and SIGTERM.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let mut s = sys::shutdown_signals()?;
        self.poll
            .registry()
            .register(&mut s, SIGNALS, Interest::READABLE)?;
        self.signals = Some(s);
        Ok(())
    }

    /// Runs until shut down by a signal; returns once every client got
    /// "Server closing." or the shutdown timeout passed.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.poll_timeout();
            self.trim_heap_if_quiet(timeout);
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            let full = events.iter().count() == events.capacity();
            for event in events.iter() {
                match event.token() {
                    LISTENER => self.accept_all(),
                    SIGNALS => self.on_signal(),
                    BRIDGE => self.on_bridge_event(event.is_readable()),
                    t => self.on_conn_event(t, event.is_readable(), event.is_writable()),
                }
                self.log_out_lost();
                self.flush_if_heavy();
            }
            if full && events.capacity() < 65536 {
                events = Events::with_capacity(events.capacity() * 2);
            }
            self.continue_reads();
            self.fire_timers(Instant::now());
            self.flush_all();
            self.flush_bridge();
            self.free_dead();
            if let Some(deadline) = self.shutdown_deadline {
                if self.conns.is_empty() || Instant::now() >= deadline {
                    info!(
                        "shut down ({} connections still open); {:?}",
                        self.conns.len(),
                        self.stats
                    );
                    return Ok(());
                }
            }
        }
    }

    /// After heavy traffic, once nothing is left to write and the loop is
    /// about to sleep, returns freed memory to the kernel.
    fn trim_heap_if_quiet(&mut self, timeout: Option<Duration>) {
        let sleeping = timeout.is_none_or(|t| !t.is_zero());
        if !sleeping || self.written_since_trim < TRIM_AFTER_BYTES {
            return;
        }
        // The scan below is O(connections): while some client keeps output
        // pending, look again only now and then.
        let now = Instant::now();
        if now < self.next_trim_check {
            return;
        }
        self.next_trim_check = now + TRIM_RECHECK;
        if self.conns.iter().all(|(_, c)| c.out.bytes() == 0) {
            sys::release_free_memory();
            self.written_since_trim = 0;
        }
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if !self.read_backlog.is_empty() {
            return Some(Duration::ZERO);
        }
        let next = [
            self.login_deadlines.front().map(|d| d.0),
            self.close_deadlines.front().map(|d| d.0),
            self.next_idle_sweep,
            self.accept_paused_until,
            self.shutdown_deadline,
            self.bridge.as_ref().and_then(|n| n.peer.next_timeout()),
            // Come back to trim the heap once the output has drained.
            (self.written_since_trim >= TRIM_AFTER_BYTES).then_some(self.next_trim_check),
        ]
        .into_iter()
        .flatten()
        .min()?;
        // Round up to whole milliseconds: epoll cannot sleep less, and
        // waking a hair early would spin until the deadline.
        let left = next.saturating_duration_since(Instant::now());
        Some(left + Duration::from_micros(999))
    }

    // ----------------------------------------------------------- accept

    fn accept_all(&mut self) {
        if self.accept_paused_until.is_some() || self.shutdown_deadline.is_some() {
            return;
        }
        let mut odd_errors = 0;
        loop {
            match self.listener.accept() {
                Ok((stream, addr)) => {
                    self.accept_backoff = ACCEPT_BACKOFF_MIN;
                    self.admit(stream, addr);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if sys::is_resource_exhaustion(&e) => {
                    // The connection stays in the backlog: retrying now
                    // would spin. Serve the clients we have and retry later.
                    warn!(
                        "accept: {e}; pausing accepts for {:?} ({} clients)",
                        self.accept_backoff,
                        self.conns.len()
                    );
                    self.accept_paused_until = Some(Instant::now() + self.accept_backoff);
                    self.accept_backoff = (self.accept_backoff * 2).min(ACCEPT_BACKOFF_MAX);
                    return;
                }
                Err(e) => {
                    // Per-connection failures (ECONNABORTED...) consume the
                    // pending connection; keep going, but never forever.
                    debug!("accept: {e}");
                    odd_errors += 1;
                    if odd_errors > 64 {
                        self.accept_paused_until = Some(Instant::now() + ACCEPT_BACKOFF_MIN);
                        return;
                    }
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, addr: SocketAddr) {
        if self.conns.len() >= self.config.max_clients {
            self.stats.rejected_full += 1;
            warn!(
                "rejected {addr}: server full ({} clients)",
                self.conns.len()
            );
            // Best effort: the socket is new, so its buffer has room.
            let mut line = Vec::new();
            encode_line(&Reply::disconnect("Server is full."), &mut line);
            let n = line.len() - usize::from(self.config.framing != FramingMode::Newline);
            let _ = stream.write(&line[..n]);
            let _ = stream.shutdown(Shutdown::Write);
            return;
        }
        let _ = stream.set_nodelay(true);
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let newline = self.config.framing == FramingMode::Newline;
        let mirror = self.config.framing == FramingMode::Auto;
        let entry = self.conns.vacant_entry();
        let key = entry.key();
        let mut conn = Connection::new(stream, addr, generation, newline, mirror);
        if let Err(e) = self.poll.registry().register(
            &mut conn.stream,
            token(key, generation),
            Interest::READABLE,
        ) {
            warn!("register {addr}: {e}");
            return;
        }
        entry.insert(conn);
        self.stats.accepted += 1;
        self.chat.connect(key, addr);
        if !self.config.login_timeout.is_zero() {
            let at = Instant::now() + self.config.login_timeout;
            self.login_deadlines.push_back((at, key, generation));
        }
        info!("connect {addr} (#{key})");
    }

    // ------------------------------------------------------------ events

    fn on_signal(&mut self) {
        let mut buf = [0u8; 16];
        if let Some(s) = self.signals.as_mut() {
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
        if self.shutdown_deadline.is_none() {
            info!("signal received: closing every connection");
            self.begin_shutdown();
        }
    }

    /// Sends every client "Server closing." and stops accepting.
    pub fn begin_shutdown(&mut self) {
        let _ = self.poll.registry().deregister(&mut self.listener);
        if let Some(node) = self.bridge.as_mut() {
            node.peer.leave();
        }
        let deadline = Instant::now() + self.config.shutdown_timeout;
        self.shutdown_deadline = Some(deadline);
        let line = self.encode(&Reply::disconnect("Server closing."));
        let keys: Vec<ConnId> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            if self.conns[key].phase == Phase::Open {
                self.send_forced(key, &line);
                self.begin_close(key);
            }
        }
    }

    fn on_conn_event(&mut self, event_token: Token, readable: bool, writable: bool) {
        let key = event_token.0 & KEY_MASK;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if token(key, conn.generation) != event_token {
            return; // for a previous occupant of this slot
        }
        if writable && conn.writable {
            self.mark_dirty(key);
        }
        if readable {
            self.read_from(key);
        }
    }

    fn continue_reads(&mut self) {
        let backlog = std::mem::take(&mut self.read_backlog);
        for key in backlog {
            self.read_from(key);
        }
    }

    /// Reads until the socket is drained or this connection had its share
    /// of the turn.
    fn read_from(&mut self, key: ConnId) {
        for _ in 0..READS_PER_TURN {
            let Some(conn) = self.conns.get_mut(key) else {
                return;
            };
            match conn.phase {
                Phase::Open | Phase::Draining => {}
                Phase::Closing | Phase::Dead => return,
            }
            let result = conn.stream.read(&mut self.scratch);
            match result {
                Ok(0) => {
                    self.lost(key, "closed by client");
                    return;
                }
                Ok(n) => {
                    if self.conns[key].phase == Phase::Draining {
                        continue; // input after we said goodbye is dropped
                    }
                    self.on_input(key, n);
                    // A short read drained the socket; epoll reports the
                    // next arrival as a new edge.
                    if n < self.scratch.len() {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.lost(key, &e.to_string());
                    return;
                }
            }
        }
        self.read_backlog.push(key);
    }

    /// Splits `scratch[..n]` into frames and handles each.
    fn on_input(&mut self, key: ConnId, n: usize) {
        let scratch = std::mem::take(&mut self.scratch);
        let conn = &mut self.conns[key];
        if !self.config.idle_timeout.is_zero() {
            conn.last_input = Instant::now();
        }
        let mut splitter = std::mem::take(&mut conn.input);
        let max = self.config.max_message_bytes;
        splitter.feed(&scratch[..n], max, |frame| self.on_frame(key, frame));
        self.conns[key].input = splitter;
        self.scratch = scratch;
    }

    /// Handles one frame; returns whether to keep reading this connection.
    fn on_frame(&mut self, key: ConnId, frame: Frame<'_>) -> bool {
        match frame {
            Frame::Object(bytes) => {
                let msg = decode_request(bytes);
                let conn = &mut self.conns[key];
                match &msg {
                    Err(DecodeError::Malformed(_)) => conn.unparsable += 1,
                    _ => conn.unparsable = 0,
                }
                if self.config.log_chat {
                    log_chat(self.chat.name_of(key), &msg);
                }
                self.chat.handle(key, msg, &mut self.effects);
                self.apply_effects();
                self.flush_if_heavy();
                self.check_unparsable(key)
            }
            Frame::LineBreak => {
                self.switch_to_newline(key);
                true
            }
            Frame::Garbage => {
                self.conns[key].unparsable += 1;
                let reply = Reply::server_message("Invalid JSON: expected a JSON object.");
                let line = self.encode(&reply);
                self.send(key, &line);
                self.check_unparsable(key)
            }
            Frame::Oversized => {
                self.stats.oversized += 1;
                let max = self.config.max_message_bytes;
                warn!("#{key}: message over {max} bytes; disconnecting");
                self.evict(
                    key,
                    &format!("Message too large: the limit is {max} bytes."),
                );
                false
            }
        }
    }

    fn check_unparsable(&mut self, key: ConnId) -> bool {
        let Some(conn) = self.conns.get(key) else {
            return false;
        };
        if conn.phase != Phase::Open {
            return false;
        }
        if conn.unparsable >= self.config.max_unparsable {
            self.stats.unparsable_cuts += 1;
            warn!(
                "#{key}: {} unparsable inputs in a row; disconnecting",
                conn.unparsable
            );
            self.evict(key, "Too many unparsable messages.");
            return false;
        }
        true
    }

    fn switch_to_newline(&mut self, key: ConnId) {
        let conn = &mut self.conns[key];
        if !conn.mirror || conn.newline {
            return;
        }
        conn.newline = true;
        if conn.sent_bare {
            // End the line a line reader is waiting on.
            let nl = Rc::clone(&self.newline);
            self.conns[key].out.push(&nl, 1);
            self.mark_dirty(key);
        }
    }

    // ----------------------------------------------------------- effects

    fn encode(&mut self, reply: &Reply) -> Rc<[u8]> {
        self.encoded.clear();
        encode_line(reply, &mut self.encoded);
        Rc::from(&self.encoded[..])
    }

    fn apply_effects(&mut self) {
        while !self.effects.is_empty() {
            let mut effects = std::mem::take(&mut self.effects);
            for effect in effects.drain(..) {
                self.apply(effect);
            }
            // Keep the allocation.
            if self.effects.is_empty() {
                self.effects = effects;
            }
            self.cut_slow_consumers();
        }
    }

    fn apply(&mut self, effect: Effect) {
        match effect {
            Effect::Send(to, reply) => {
                let line = self.encode(&reply);
                self.send(to, &line);
                self.queued += 1;
            }
            Effect::Broadcast { except, reply } => {
                if let Reply::ServerMessage { message } = &reply {
                    info!("{message}");
                }
                let line = self.encode(&reply);
                self.queued += self.chat.members().len();
                for &to in self.chat.members() {
                    if Some(to) != except {
                        queue(
                            &mut self.conns,
                            &mut self.dirty,
                            &mut self.too_slow,
                            &self.config,
                            to,
                            &line,
                        );
                    }
                }
            }
            Effect::Close(key) => self.begin_close(key),
            Effect::Lan(out) => self.relay_to_lan(out),
        }
    }

    fn send(&mut self, to: ConnId, line: &Rc<[u8]>) {
        queue(
            &mut self.conns,
            &mut self.dirty,
            &mut self.too_slow,
            &self.config,
            to,
            line,
        );
    }

    /// Queues past the output limit: for the last words before a close.
    fn send_forced(&mut self, to: ConnId, line: &Rc<[u8]>) {
        let conn = &mut self.conns[to];
        let len = conn.framed_len(line.len());
        conn.out.push(line, len);
        self.mark_dirty(to);
    }

    fn mark_dirty(&mut self, key: ConnId) {
        let conn = &mut self.conns[key];
        if !conn.dirty {
            conn.dirty = true;
            self.dirty.push(key);
        }
    }

    fn cut_slow_consumers(&mut self) {
        while let Some(key) = self.too_slow.pop() {
            let conn = &mut self.conns[key];
            if conn.phase != Phase::Open {
                continue;
            }
            self.stats.slow_consumers += 1;
            warn!(
                "#{key} {}: too slow ({} bytes unsent); disconnecting",
                conn.addr,
                conn.out.bytes()
            );
            conn.out.drop_unstarted();
            let max = self.config.max_output_bytes;
            self.evict(
                key,
                &format!("Too slow: more than {max} bytes of messages were waiting."),
            );
        }
    }

    // ----------------------------------------------------------- closing

    /// Closes an open connection on the server's initiative, telling the
    /// client why and the others that it left.
    fn evict(&mut self, key: ConnId, why: &str) {
        let line = self.encode(&Reply::disconnect(why));
        self.send_forced(key, &line);
        self.begin_close(key);
        self.chat.disconnect(key, &mut self.effects);
        self.apply_effects();
    }

    /// Stops reading; the connection closes once its output is flushed or
    /// the close timeout passes.
    fn begin_close(&mut self, key: ConnId) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        if conn.phase != Phase::Open {
            return;
        }
        conn.phase = Phase::Closing;
        let generation = conn.generation;
        let at = Instant::now() + self.config.close_timeout;
        let at = self.shutdown_deadline.map_or(at, |d| d.min(at));
        self.close_deadlines.push_back((at, key, generation));
        self.mark_dirty(key);
    }

    /// The connection failed or the client closed it.
    /// The user is logged out (and the others told) a little later, in
    /// [`Server::log_out_lost`]: when many clients vanish at once, all of
    /// them are found dead before anyone is told, so nobody is sent the
    /// departures of the others.
    fn lost(&mut self, key: ConnId, why: &str) {
        let conn = &mut self.conns[key];
        let was_open = conn.phase == Phase::Open;
        debug!("#{key} {}: {why}", conn.addr);
        self.kill(key);
        if was_open {
            self.lost.push(key);
        }
    }

    /// Logs out the connections found lost; true if that queued output.
    fn log_out_lost(&mut self) -> bool {
        if self.lost.is_empty() {
            return false;
        }
        for key in std::mem::take(&mut self.lost) {
            self.chat.disconnect(key, &mut self.effects);
        }
        self.apply_effects();
        !self.dirty.is_empty()
    }

    fn kill(&mut self, key: ConnId) {
        let conn = &mut self.conns[key];
        if conn.phase != Phase::Dead {
            conn.phase = Phase::Dead;
            // Nothing more will be written: free the queue now.
            conn.out = output::OutQueue::default();
            self.dead.push(key);
        }
    }

    fn free_dead(&mut self) {
        for key in self.dead.drain(..) {
            let mut conn = self.conns.remove(key);
            let _ = self.poll.registry().deregister(&mut conn.stream);
            // Only shutdown leaves users logged in until here, and then
            // there is nobody left to tell that they left.
            self.chat.disconnect(key, &mut self.effects);
            self.effects.clear();
        }
    }

    // ------------------------------------------------------------ output

    /// Flushes now rather than at the end of the turn when a lot was
    /// queued, bounding the memory a burst of fan-out can hold.
    fn flush_if_heavy(&mut self) {
        if self.queued >= FLUSH_AFTER_QUEUED {
            self.flush_all();
        }
    }

    /// Flushes every connection owed output; the departures of those whose
    /// writes failed are announced to the rest, and flushed too.
    fn flush_all(&mut self) {
        loop {
            self.flush_dirty();
            if !self.log_out_lost() {
                return;
            }
        }
    }

    fn flush_dirty(&mut self) {
        self.queued = 0;
        while let Some(key) = self.dirty.pop() {
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.phase == Phase::Dead {
                continue;
            }
            let before = conn.out.bytes();
            let result = conn.out.flush(&mut conn.stream);
            self.written_since_trim += (before - conn.out.bytes()) as u64;
            match result {
                Ok(Flushed::All) => {
                    if conn.writable {
                        conn.writable = false;
                        let t = token(key, conn.generation);
                        let _ = self.poll.registry().reregister(
                            &mut conn.stream,
                            t,
                            Interest::READABLE,
                        );
                    }
                    if conn.phase == Phase::Closing {
                        // Our FIN goes out after the last reply; then wait
                        // for the client's, draining what it still sends.
                        let _ = conn.stream.shutdown(Shutdown::Write);
                        conn.phase = Phase::Draining;
                        // Read what it sent meanwhile on the next turn
                        // (this may run in the middle of a read).
                        self.read_backlog.push(key);
                    }
                }
                Ok(Flushed::Blocked) => {
                    if !conn.writable {
                        conn.writable = true;
                        let t = token(key, conn.generation);
                        let _ = self.poll.registry().reregister(
                            &mut conn.stream,
                            t,
                            Interest::READABLE | Interest::WRITABLE,
                        );
                    }
                }
                Err(e) => self.lost(key, &format!("write: {e}")),
            }
        }
    }

    // ------------------------------------------------------------ timers

    fn fire_timers(&mut self, now: Instant) {
        while let Some(&(at, key, generation)) = self.login_deadlines.front() {
            if at > now {
                break;
            }
            self.login_deadlines.pop_front();
            let waiting = self
                .conns
                .get(key)
                .is_some_and(|c| c.generation == generation && c.phase == Phase::Open)
                && self.chat.name_of(key).is_none();
            if waiting {
                self.stats.timeouts += 1;
                debug!("#{key}: no Login in time");
                let secs = self.config.login_timeout.as_secs_f64();
                self.evict(key, &format!("Login timeout: no Login within {secs} s."));
            }
        }
        while let Some(&(at, key, generation)) = self.close_deadlines.front() {
            if at > now {
                break;
            }
            self.close_deadlines.pop_front();
            if let Some(c) = self.conns.get(key) {
                if c.generation == generation && c.phase != Phase::Dead {
                    debug!("#{key}: close timeout");
                    self.kill(key);
                }
            }
        }
        if self.accept_paused_until.is_some_and(|t| t <= now) {
            self.accept_paused_until = None;
            self.accept_all();
        }
        if self.next_idle_sweep.is_some_and(|t| t <= now) {
            self.next_idle_sweep = Some(now + IDLE_SWEEP_EVERY);
            self.sweep_idle(now);
        }
    }

    fn sweep_idle(&mut self, now: Instant) {
        let limit = self.config.idle_timeout;
        let idle: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| c.phase == Phase::Open && now.duration_since(c.last_input) >= limit)
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.stats.timeouts += 1;
            debug!("#{key}: idle timeout");
            let secs = limit.as_secs_f64();
            self.evict(
                key,
                &format!("Idle timeout: nothing received for {secs} s."),
            );
        }
    }
}

/// Queues `line` for `to`, framed as `to` wants, unless it would push `to`
/// over its output limit: then `to` is marked as a slow consumer.
fn queue(
    conns: &mut Slab<Connection>,
    dirty: &mut Vec<ConnId>,
    too_slow: &mut Vec<ConnId>,
    config: &Config,
    to: ConnId,
    line: &Rc<[u8]>,
) {
    let Some(conn) = conns.get_mut(to) else {
        return;
    };
    if conn.phase != Phase::Open {
        return;
    }
    let len = conn.framed_len(line.len());
    if conn.out.bytes() + len > config.max_output_bytes {
        if !conn.too_slow {
            conn.too_slow = true;
            too_slow.push(to);
        }
        return;
    }
    conn.out.push(line, len);
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(to);
    }
}

fn log_chat(from: Option<&str>, msg: &Result<crate::protocol::Request, DecodeError>) {
    use crate::protocol::Request;
    let from = from.unwrap_or("?");
    match msg {
        Ok(Request::SendChat { message }) => info!("chat {from}: {message}"),
        Ok(Request::WhisperToUser { to, message }) => {
            info!("whisper {from} -> {}: {message}", to.join(","))
        }
        _ => {}
    }
}
