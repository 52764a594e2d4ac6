//! `mp1d`: one thread, one event loop, every client in one table. The
//! server only moves bytes and time between them and the state machines:
//! each connection's [`Session`](crate::session::Session) turns its bytes
//! into requests, the [`Chat`] decides what happens, and the replies are
//! queued and flushed.
//!
//! The pieces, after Redis's split between `ae.c` and `networking.c`:
//! - [`event_loop`]: poll and timers; knows nothing of clients;
//! - [`table`]: every socket the loop polls, in one slab, with one token
//!   codec ([`token`]); the connections' output queues, flushes, deferred
//!   frees;
//! - `accept`, `dispatch`, `http`, `bridge`, `cluster`: the listeners; a
//!   connection's bytes to its face (MP1, HTTP, WebSocket) and the chat,
//!   and the chat's effects back out; the LAN bridge; the Redis links;
//! - this file: the turn.
//!
//! A turn, in the spirit of Redis's `beforeSleep`:
//! 1. wait for events (not at all if reads are left over), then handle
//!    each: accept, read, note writability;
//! 2. fire expired timers (login deadline, idle sweep, closing, accept
//!    back-off, the LAN peer's clock, shutdown);
//! 3. flush every connection that is owed output, one `writev` each;
//! 4. free the connections that died during the turn (never earlier, so a
//!    reused slab slot cannot receive a stale event meant for its previous
//!    occupant; tokens also carry a generation as a second guard).

mod accept;
#[doc(hidden)]
pub mod bench;
mod block;
mod bridge;
mod cluster;
mod config;
mod connection;
mod dispatch;
mod event_loop;
mod forwarded;
mod http;
mod log_budget;
mod metrics;
pub mod output;
mod pacing;
mod start;
mod sys;
mod table;
mod timers;
mod token;
mod uring;

pub use cluster::ClusterConfig;
pub use config::{BridgeConfig, Config, FramingMode};
pub use start::StartError;
pub use sys::raise_nofile_limit;
pub use uring::Mode as IoUringMode;

use crate::chat::{Chat, ChatConfig, ConnId};
use crate::peer::net::PeerNode;
use crate::session::Limits;
use connection::Phase;
use event_loop::EventLoop;
use log::{info, warn};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use table::{Listening, Source, Table};
use token::Kind;

/// Size of the one read buffer every connection shares.
const SCRATCH_BYTES: usize = 64 * 1024;
/// Backlog for the listening socket (Redis uses 511; the kernel clamps it).
const LISTEN_BACKLOG: i32 = 1024;
/// File descriptors kept free beyond the clients (listener, poll, signals,
/// logging).
const RESERVED_FDS: u64 = 32;
const IDLE_SWEEP_EVERY: Duration = Duration::from_secs(1);
/// Bytes written since the last heap trim that make the next quiet moment
/// worth a trim (a trim costs about a millisecond per 30 MiB of heap).
const TRIM_AFTER_BYTES: u64 = 16 * 1024 * 1024;
const TRIM_RECHECK: Duration = Duration::from_millis(100);
/// Quiet time after heavy traffic before its tail is trimmed.
const TRIM_QUIET: Duration = Duration::from_millis(200);

/// What a timer does when it fires. Connection timers carry the
/// generation they were set for: a reused slot's new occupant is not
/// affected.
#[derive(Clone, Copy, Debug)]
enum Timer {
    /// Close the connection if it has not logged in.
    Login(ConnId, u32),
    /// Give up on a closing connection's last output.
    Close(ConnId, u32),
    /// Look for idle connections, then again a second later.
    IdleSweep,
    /// Try accepting again after running out of file descriptors.
    ResumeAccept,
    /// The LAN peer's next deadline.
    Bridge,
    /// Look again for a quiet moment to return freed memory in.
    Trim,
    /// Stop waiting for clients to take "Server closing.".
    Shutdown,
    /// The end of a pause between two flushes to very many connections.
    Flush,
    /// An HTTP connection's deadline.
    Http(ConnId, u32),
    /// Say how many log lines the budget held back.
    LogSummary,
    /// The cluster's engine or Redis sockets have work due.
    Cluster,
    /// The wait for users to register again after Redis came back empty
    /// is over.
    Settle,
}

pub struct Server {
    el: EventLoop<Timer>,
    /// Where it listens for MP1 clients.
    addr: SocketAddr,
    config: Config,
    limits: Limits,
    /// Every socket: listeners (closed as shutdown begins, so the port is
    /// free for a new server at once), signals, connections.
    table: Table,
    chat: Chat,
    /// The read buffer all connections share.
    scratch: Vec<u8>,
    /// Reused encoding buffer.
    encoded: Vec<u8>,
    accept_paused: bool,
    accept_backoff: Duration,
    shutdown_deadline: Option<Instant>,
    shutdown_expired: bool,
    /// Bytes flushed since the heap was last trimmed.
    written_since_trim: u64,
    /// Earliest time to look again for a quiet moment to trim in.
    next_trim_check: Instant,
    trim_timer_set: bool,
    /// When the next wide flush may go (see `pacing.rs`).
    pacer: pacing::Pacer,
    flush_timer_set: bool,
    /// Heavy traffic went out: trim once more when it has been quiet.
    trim_tail: bool,
    /// When output was last written.
    last_write: Instant,
    /// mp1d's own LAN peer, when it bridges a LAN (`--peer-name`).
    bridge: Option<PeerNode>,
    /// The earliest [`Timer::Bridge`] still to fire.
    bridge_wake: timers::Wake,
    /// Names tried after the configured LAN name was taken.
    lan_name_tries: u32,
    log_budget: log_budget::LogBudget,
    /// Where the HTTP face listens (`--http`).
    http_addr: Option<SocketAddr>,
    /// What mp1d counts about itself (`/metrics`, and the exit line).
    counters: metrics::Counters,
    /// How long loop turns take.
    turns: metrics::TurnHistogram,
    /// The node's link to the rest of the cluster (`--cluster`).
    cluster: Option<Box<cluster::Cluster>>,
    /// How the fan-out's writes go out (`--io-uring`), for the log.
    write_path: String,
}

impl Server {
    /// Binds the listening socket. Lowers `max_clients` to what the
    /// open-file limit allows.
    pub fn bind(mut config: Config) -> Result<Server, StartError> {
        let nofile = sys::raise_nofile_limit();
        let fit = nofile.saturating_sub(RESERVED_FDS).max(1) as usize;
        // Every connection and the few fixed sockets fit the token codec.
        let fit = fit.min(token::MAX_KEYS - RESERVED_FDS as usize);
        if config.max_clients > fit {
            warn!(
                "max clients lowered from {} to {} to fit the open-file limit ({})",
                config.max_clients, fit, nofile
            );
            config.max_clients = fit;
        }
        let mp1 = SocketAddr::new(config.bind, config.port);
        let listener = sys::listen(mp1, LISTEN_BACKLOG).map_err(|e| StartError::Mp1(mp1, e))?;
        let addr = listener.local_addr()?;
        let mut el = EventLoop::new()?;
        let mut table = Table::new(config.max_output_bytes, config.max_total_output_bytes);
        table.add_registered(el.registry(), Source::Listener(listener, Listening::Mp1))?;
        if !config.idle_timeout.is_zero() {
            el.timers
                .set(Instant::now() + IDLE_SWEEP_EVERY, Timer::IdleSweep);
        }
        let chat = Chat::new(ChatConfig {
            max_chat_chars: config.max_chat_chars,
            max_whisper_recipients: config.max_whisper_recipients,
        });
        let limits = Limits {
            max_message_bytes: config.max_message_bytes,
            max_unparsable: config.max_unparsable,
        };
        let log_budget = log_budget::LogBudget::new(config.log_lines_per_second, Instant::now());
        Ok(Server {
            el,
            addr,
            limits,
            table,
            config,
            chat,
            scratch: vec![0; SCRATCH_BYTES],
            encoded: Vec::with_capacity(256),
            accept_paused: false,
            accept_backoff: accept::BACKOFF_MIN,
            shutdown_deadline: None,
            shutdown_expired: false,
            written_since_trim: 0,
            next_trim_check: Instant::now(),
            trim_timer_set: false,
            trim_tail: false,
            pacer: pacing::Pacer::new(Instant::now()),
            flush_timer_set: false,
            last_write: Instant::now(),
            bridge: None,
            bridge_wake: timers::Wake::default(),
            lan_name_tries: 0,
            log_budget,
            http_addr: None,
            counters: metrics::Counters::default(),
            turns: metrics::TurnHistogram::default(),
            cluster: None,
            write_path: String::new(),
        })
        .and_then(Server::start_uring)
        .and_then(Server::start_bridge)
        .and_then(Server::start_http)
    }

    /// Sets up io_uring for the fan-out's writes as `--io-uring` says.
    fn start_uring(mut self) -> Result<Server, StartError> {
        let mode = self.config.io_uring;
        self.write_path = match mode {
            IoUringMode::Off => "writev (--io-uring off)".into(),
            _ => match uring::Uring::new() {
                Ok(ring) => {
                    let path = format!("io_uring ({}; --io-uring {mode})", ring.setup());
                    self.table.use_uring(Box::new(ring));
                    path
                }
                Err(e) if mode == IoUringMode::On => {
                    return Err(StartError::IoUring(io::Error::other(e)))
                }
                Err(e) => format!("writev (io_uring is unavailable here: {e})"),
            },
        };
        Ok(self)
    }

    /// How the fan-out's writes go out, for the start-up log.
    pub fn write_path(&self) -> &str {
        &self.write_path
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }

    /// The configuration in force (after start-up adjustments).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Shut down cleanly on SIGINT and SIGTERM.
    pub fn handle_signals(&mut self) -> io::Result<()> {
        let s = sys::shutdown_signals()?;
        self.table
            .add_registered(self.el.registry(), Source::Signals(s))?;
        Ok(())
    }

    /// Runs until shut down by a signal; returns once every client got
    /// "Server closing." or the shutdown timeout passed.
    pub fn run(mut self) -> io::Result<()> {
        loop {
            let busy = self.table.has_reads_left();
            if !busy {
                self.before_sleep();
            }
            let events = self.el.wait(busy)?;
            let woke = Instant::now();
            for event in events.iter() {
                let Some((kind, key)) = self.table.resolve(event.token()) else {
                    continue; // for a previous occupant of its slot
                };
                match kind {
                    Kind::Listener => self.accept_from(key),
                    Kind::Signals => self.on_signal(key),
                    Kind::Bridge => self.on_bridge_event(event.is_readable()),
                    Kind::Redis => self.on_cluster_event(key),
                    Kind::Conn => {
                        self.on_conn_event(ConnId(key), event.is_readable(), event.is_writable())
                    }
                }
                self.log_out_lost();
                self.pump_cluster();
                self.flush_if_heavy();
            }
            self.el.done_with(events);
            self.continue_reads();
            self.fire_timers(Instant::now());
            self.flush_paced(Instant::now());
            self.flush_bridge();
            self.free_dead();
            self.turns.record(woke.elapsed());
            if self.shutdown_deadline.is_some()
                && (self.table.no_connections() || self.shutdown_expired)
            {
                self.cluster_goodbye();
                info!(
                    "shut down with {} connections still open; {}",
                    self.table.clients() + self.table.requests(),
                    self.counters
                );
                return Ok(());
            }
        }
    }

    fn on_conn_event(&mut self, key: ConnId, readable: bool, writable: bool) {
        if writable {
            self.table.on_writable(key);
        }
        if readable {
            self.on_readable(key);
        }
    }

    fn continue_reads(&mut self) {
        for key in self.table.take_read_later() {
            self.on_readable(key);
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        while let Some((at, timer)) = self.el.timers.pop_expired(now) {
            match timer {
                Timer::Login(key, generation) => self.on_login_deadline(key, generation),
                Timer::Close(key, generation) => {
                    if self.table.is(key, generation, Phase::Closing)
                        || self.table.is(key, generation, Phase::Draining)
                    {
                        log::debug!("#{key}: close timeout");
                        self.table.abort(key);
                    }
                }
                Timer::IdleSweep => {
                    self.el.timers.set(now + IDLE_SWEEP_EVERY, Timer::IdleSweep);
                    self.sweep_idle(now);
                }
                Timer::ResumeAccept => {
                    self.accept_paused = false;
                    for key in self.table.listeners() {
                        self.accept_from(key);
                    }
                }
                Timer::Bridge => self.bridge_wake.fired(at),
                Timer::Trim => self.trim_timer_set = false,
                Timer::Shutdown => self.shutdown_expired = true,
                Timer::LogSummary => self.log_held_back(now),
                Timer::Flush => self.flush_timer_set = false,
                Timer::Http(key, generation) => self.on_http_deadline(key, generation),
                Timer::Cluster => self.on_cluster_timer(at),
                Timer::Settle => self.on_settle_timer(),
            }
        }
    }

    /// Flushes what the turn queued, but paces wide flushes (see
    /// `pacing.rs`): in a storm, right after one, the next waits for its
    /// timer.
    /// Shutdown and narrow flushes never wait.
    fn flush_paced(&mut self, now: Instant) {
        let dirty = self.table.dirty_len();
        let broadcasts = self.table.broadcasts_waiting();
        let stopping = self.shutdown_deadline.is_some();
        if let Some(next) = self.pacer.hold_until(dirty, broadcasts, stopping, now) {
            if !self.flush_timer_set {
                self.flush_timer_set = true;
                self.el.timers.set(next, Timer::Flush);
            }
            return;
        }
        self.flush_all();
        self.pacer.flushed(dirty, now, Instant::now());
    }

    /// After heavy traffic, returns freed memory to the kernel: whenever
    /// another 16 MiB went out and nothing is left to write (bounding the
    /// peak of a storm), and once more when the traffic has been quiet for
    /// a moment (its tail). Runs just before the loop sleeps.
    fn before_sleep(&mut self) {
        let now = Instant::now();
        let written = self.table.take_written();
        self.counters.bytes_written += written;
        if written > 0 {
            self.written_since_trim += written;
            self.last_write = now;
        }
        let heavy = self.written_since_trim >= TRIM_AFTER_BYTES;
        self.trim_tail |= heavy;
        if !self.trim_tail {
            return;
        }
        let quiet = now.duration_since(self.last_write) >= TRIM_QUIET;
        // The scan below is O(connections): while some client keeps output
        // pending, look again only now and then.
        if (heavy || quiet) && now >= self.next_trim_check {
            self.next_trim_check = now + TRIM_RECHECK;
            if self.table.all_drained() {
                sys::release_free_memory();
                self.written_since_trim = 0;
                if quiet {
                    self.trim_tail = false;
                    return;
                }
            }
        }
        if !self.trim_timer_set {
            self.trim_timer_set = true;
            let at = if heavy {
                self.next_trim_check
            } else {
                (self.last_write + TRIM_QUIET).max(self.next_trim_check)
            };
            self.el.timers.set(at, Timer::Trim);
        }
    }

    /// The level for a log line a client caused: its own within the
    /// budget, else debug (counted, and summed up a second later).
    fn noisy(&mut self, level: log::Level) -> log::Level {
        let now = Instant::now();
        self.log_held_back(now);
        match self.log_budget.take(now) {
            (true, _) => level,
            (false, summary_at) => {
                if let Some(at) = summary_at {
                    self.el.timers.set(at, Timer::LogSummary);
                }
                log::Level::Debug
            }
        }
    }

    fn log_held_back(&mut self, now: Instant) {
        if let Some(n) = self.log_budget.summary(now) {
            info!(
                "{n} more lines (connects, joins, leaves, cuts) in the last second not \
                 logged at their level (over --log-lines-per-second; --log-level debug \
                 shows them)"
            );
        }
    }

    fn on_signal(&mut self, key: usize) {
        let mut buf = [0u8; 16];
        if let Some(Source::Signals(s)) = self.table.source(key) {
            let mut s = s;
            while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        }
        if self.shutdown_deadline.is_none() {
            info!("signal received: closing every connection");
            self.begin_shutdown();
        }
    }

    /// Sends every client "Server closing." and stops accepting.
    pub fn begin_shutdown(&mut self) {
        for key in self.table.listeners() {
            if let Some(Source::Listener(mut listener, _)) = self.table.remove(key) {
                let _ = self.el.registry().deregister(&mut listener);
            }
        }
        if let Some(node) = self.bridge.as_mut() {
            node.peer.leave();
        }
        self.leave_cluster();
        let deadline = Instant::now() + self.config.shutdown_timeout;
        self.shutdown_deadline = Some(deadline);
        self.el.timers.set(deadline, Timer::Shutdown);
        self.encode(&crate::protocol::Reply::disconnect("Server closing."));
        for key in self.table.open_keys() {
            if self.table.get(key).is_some_and(|c| c.is_client()) {
                self.table.queue_forced(key, &self.encoded);
            }
            self.begin_close(key);
        }
    }

    fn free_dead(&mut self) {
        let chat = &mut self.chat;
        self.table.free_dead(self.el.registry(), |key| {
            // Only shutdown leaves users logged in until here, and then
            // there is nobody left to tell that they left.
            chat.handle_disconnect(key);
            while chat.poll_effect().is_some() {}
        });
    }
}
