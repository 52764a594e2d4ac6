//! The source table (Redis's `networking.c` and the file-event table of
//! `ae.c` in one): every socket the loop polls has a slot here, and its
//! token is made from that slot by the one codec (`token.rs`). Stream
//! connections (MP1, HTTP, WebSocket) live in their slot with what they
//! are owed; the listeners and the signal pipe too; the sockets the LAN
//! bridge and the cluster own have a slot that routes their events.
//!
//! For connections it keeps the output queues and the list of those owed
//! a flush, does one `writev` per connection per flush, marks slow
//! consumers and frees the dead at the end of a turn. It knows nothing of
//! chat: it queues encoded lines and reports who was lost, who is too slow
//! and who died; the server decides what that means.

use super::block::{Arena, Block};
use super::connection::{Connection, Face, Phase};
use super::output::Flushed;
use super::token::{self, Kind};
use crate::chat::ConnId;
use crate::cluster::backplane::Link;
use crate::session::Framing;
use crate::websocket;
use log::debug;
use mio::net::{TcpListener, TcpStream, UnixStream};
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;

/// What one read from a connection's socket gave.
pub enum Received {
    /// This many bytes, at the front of the buffer.
    Bytes(usize),
    /// Bytes after we said goodbye: dropped.
    Discarded,
    /// Nothing more to read now (or the connection no longer reads).
    Nothing,
    /// The client's FIN: it sends nothing more (it may still read).
    Closed,
    /// The connection failed.
    Failed(String),
}

/// Which listener a listening socket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listening {
    /// MP1 clients over TCP.
    Mp1,
    /// The HTTP face (`--http`).
    Http,
}

/// What a slot holds. Nearly every slot holds a connection, so it is kept
/// inline (boxing it would cost every client an allocation and a pointer
/// chase for the sake of a handful of listeners).
#[allow(clippy::large_enum_variant)]
pub enum Source {
    Listener(TcpListener, Listening),
    Signals(UnixStream),
    /// The LAN bridge's UDP socket (the bridge owns it).
    Bridge,
    /// A Redis connection (the cluster owns it).
    Redis(Link),
    Conn(Connection),
}

impl Source {
    fn kind(&self) -> Kind {
        match self {
            Source::Listener(..) => Kind::Listener,
            Source::Signals(_) => Kind::Signals,
            Source::Bridge => Kind::Bridge,
            Source::Redis(_) => Kind::Redis,
            Source::Conn(_) => Kind::Conn,
        }
    }
}

struct Entry {
    /// Changes each time the slot is reused, so a stale event or timer for
    /// a previous occupant is recognised and ignored.
    generation: u32,
    source: Source,
}

pub struct Table {
    slab: Slab<Entry>,
    next_generation: u32,
    /// Connections that are chat clients (MP1 or WebSocket), and HTTP
    /// requests being served.
    clients: usize,
    requests: usize,
    /// Unsent bytes a client may owe (kernel included) before it is marked
    /// too slow.
    max_output_bytes: usize,
    /// Unsent bytes at which a client's input stops being read.
    pause_at: usize,
    /// Unsent bytes all clients together may owe; past it the biggest
    /// owers are cut.
    max_total_output: usize,
    /// Unsent bytes all clients owe now (what the kernel held for the
    /// blocked ones included).
    total_out: usize,
    /// Connections owed a flush.
    dirty: Vec<ConnId>,
    /// Messages queued since the last flush.
    queued: usize,
    /// Broadcasts queued since the last flush.
    broadcasts: usize,
    /// Queue slots added since the last flush.
    slots_added: usize,
    /// Messages (replies, not HTTP responses or WebSocket control frames)
    /// queued for a client since the start.
    delivered: u64,
    /// Marked too slow during a fan-out (with their generation); cut off
    /// right after it.
    too_slow: Vec<(ConnId, u32)>,
    /// Failed or closed by the client, still to be logged out.
    lost: Vec<ConnId>,
    /// Dead this turn, freed at its end.
    dead: Vec<ConnId>,
    /// Hit the per-turn read cap (or have input to drain) and must be read
    /// again next turn.
    read_later: Vec<ConnId>,
    /// Bytes written since the last call to [`Table::take_written`].
    written: u64,
    /// Where broadcasts are written.
    arenas: Arenas,
    /// The fan-out's writes go through io_uring (`--io-uring`).
    uring: Option<Box<super::uring::Uring>>,
}

/// One arena for each form a broadcast takes: consecutive broadcasts stay
/// contiguous. A reply to one client gets a block of its own size instead,
/// so that what a client's queue keeps alive is what it owes.
#[derive(Default)]
struct Arenas {
    /// One per [`Form`].
    broadcast: [Arena; 3],
    /// Bytes written into blocks since the last flush.
    written: usize,
}

/// How a broadcast reaches a client: with its `\n`, bare, or in a
/// WebSocket text frame (server frames are unmasked, so one framed copy
/// serves every browser).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Form {
    Newline,
    Bare,
    WebSocket,
}

impl Arenas {
    /// Writes a broadcast's `payload` in `form`: its block, where it
    /// starts, and its length.
    fn put_broadcast(&mut self, form: Form, payload: &[u8]) -> (Rc<Block>, usize, usize) {
        let framed;
        let bytes = if form == Form::WebSocket {
            framed = websocket::frame(websocket::OP_TEXT, payload);
            &framed[..]
        } else {
            payload
        };
        self.written += bytes.len();
        let (block, at) = self.broadcast[form as usize].put(bytes);
        (block, at, bytes.len())
    }

    /// A block holding exactly `bytes`.
    fn put_own(&mut self, bytes: &[u8]) -> Rc<Block> {
        self.written += bytes.len();
        let block = Block::new(bytes.len());
        block.append(bytes).expect("sized to fit");
        block
    }
}

impl Table {
    pub fn new(max_output_bytes: usize, max_total_output: usize) -> Table {
        Table {
            slab: Slab::new(),
            next_generation: 0,
            clients: 0,
            requests: 0,
            max_output_bytes,
            pause_at: (max_output_bytes / 4).max(1),
            max_total_output,
            total_out: 0,
            dirty: Vec::new(),
            queued: 0,
            broadcasts: 0,
            slots_added: 0,
            delivered: 0,
            too_slow: Vec::new(),
            lost: Vec::new(),
            dead: Vec::new(),
            read_later: Vec::new(),
            written: 0,
            arenas: Arenas::default(),
            uring: None,
        }
    }

    // ----------------------------------------------------------- sources

    /// Takes a slot for `source`; returns its key and token. The caller
    /// registers the socket with that token.
    pub fn add(&mut self, source: Source) -> (usize, Token) {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let kind = source.kind();
        let key = self.slab.insert(Entry { generation, source });
        (key, token::encode(kind, key, generation))
    }

    /// Takes a slot for a socket the table holds (a listener, the signal
    /// pipe) and registers it for reading.
    pub fn add_registered(&mut self, registry: &Registry, source: Source) -> io::Result<usize> {
        let (key, token) = self.add(source);
        let registered = match &mut self.slab[key].source {
            Source::Listener(l, _) => registry.register(l, token, Interest::READABLE),
            Source::Signals(s) => registry.register(s, token, Interest::READABLE),
            _ => Ok(()),
        };
        if let Err(e) = registered {
            self.slab.remove(key);
            return Err(e);
        }
        Ok(key)
    }

    /// The slot and kind an event is for; `None` if the token belongs to a
    /// previous occupant of the slot (events already polled still arrive
    /// after a deregister).
    pub fn resolve(&self, event: Token) -> Option<(Kind, usize)> {
        let (kind, key, generation) = token::decode(event)?;
        let entry = self.slab.get(key)?;
        (entry.source.kind() == kind && token::same_generation(generation, entry.generation))
            .then_some((kind, key))
    }

    pub fn source(&self, key: usize) -> Option<&Source> {
        self.slab.get(key).map(|e| &e.source)
    }

    /// Empties a slot that holds no connection (a listener at shutdown).
    pub fn remove(&mut self, key: usize) -> Option<Source> {
        self.slab.try_remove(key).map(|e| e.source)
    }

    /// The listeners' keys.
    pub fn listeners(&self) -> Vec<usize> {
        self.slab
            .iter()
            .filter(|(_, e)| matches!(e.source, Source::Listener(..)))
            .map(|(k, _)| k)
            .collect()
    }

    // -------------------------------------------------------- connections

    /// Chat clients connected (MP1 over TCP or WebSocket).
    pub fn clients(&self) -> usize {
        self.clients
    }

    /// HTTP requests being served.
    pub fn requests(&self) -> usize {
        self.requests
    }

    /// Whether no connection of any kind is left.
    pub fn no_connections(&self) -> bool {
        self.clients + self.requests == 0
    }

    pub fn get(&self, key: ConnId) -> Option<&Connection> {
        match self.slab.get(key.0) {
            Some(Entry {
                source: Source::Conn(c),
                ..
            }) => Some(c),
            _ => None,
        }
    }

    pub fn get_mut(&mut self, key: ConnId) -> Option<&mut Connection> {
        match self.slab.get_mut(key.0) {
            Some(Entry {
                source: Source::Conn(c),
                ..
            }) => Some(c),
            _ => None,
        }
    }

    /// `key`'s connection, which the caller knows is there.
    fn conn(&mut self, key: ConnId) -> &mut Connection {
        conn_at(&mut self.slab, key)
    }

    /// The generation of `key`'s occupant.
    pub fn generation(&self, key: ConnId) -> Option<u32> {
        self.slab.get(key.0).map(|e| e.generation)
    }

    fn conns(&self) -> impl Iterator<Item = (ConnId, &Connection)> {
        self.slab.iter().filter_map(|(k, e)| match &e.source {
            Source::Conn(c) => Some((ConnId(k), c)),
            _ => None,
        })
    }

    /// Every open connection.
    pub fn open_keys(&self) -> Vec<ConnId> {
        self.conns()
            .filter(|(_, c)| c.is_open())
            .map(|(k, _)| k)
            .collect()
    }

    /// Adds a connection and registers it for reading; returns its key and
    /// generation.
    pub fn insert(
        &mut self,
        registry: &Registry,
        stream: TcpStream,
        addr: SocketAddr,
        framing: Framing,
        face: Face,
    ) -> io::Result<(ConnId, u32)> {
        let generation = self.next_generation;
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let mut conn = Connection::new(stream, addr, framing, face);
        let t = token::encode(Kind::Conn, key, generation);
        registry.register(&mut conn.stream, t, Interest::READABLE)?;
        self.next_generation = self.next_generation.wrapping_add(1);
        if conn.is_client() {
            self.clients += 1;
        } else {
            self.requests += 1;
        }
        entry.insert(Entry {
            generation,
            source: Source::Conn(conn),
        });
        Ok((ConnId(key), generation))
    }

    /// An HTTP request asked for a WebSocket: from now on the connection
    /// is a chat client whose objects come in frames.
    pub fn upgrade(&mut self, key: ConnId) {
        let conn = self.conn(key);
        if conn.is_client() {
            return;
        }
        conn.face = Face::WebSocket(Box::default());
        self.requests -= 1;
        self.clients += 1;
    }

    /// Whether `key` still holds the connection of that generation, in
    /// that phase (the guard for timers set for it).
    pub fn is(&self, key: ConnId, generation: u32, phase: Phase) -> bool {
        self.generation(key) == Some(generation)
            && self.get(key).is_some_and(|c| c.phase() == phase)
    }

    // ------------------------------------------------------------ output

    /// Queues `line` (an encoded reply ending in `\n`) for `to`, framed as
    /// `to` wants, unless that would take `to` over its output limit: then
    /// `to` is marked too slow instead.
    pub fn queue(&mut self, to: ConnId, line: &[u8]) {
        self.queued += 1;
        let Some(len) = self.admit(to, line.len()) else {
            return;
        };
        self.queue_own(to, &line[..len]);
    }

    /// `payload` for `to` alone, in a block of its own (in a text frame for
    /// a browser).
    fn queue_own(&mut self, to: ConnId, payload: &[u8]) {
        self.delivered += 1;
        let block = if self.conn(to).is_websocket() {
            self.arenas
                .put_own(&websocket::frame(websocket::OP_TEXT, payload))
        } else {
            self.arenas.put_own(payload)
        };
        self.push(to, &block, 0, block.filled());
    }

    /// The same line to every member but `except`: the fan-out. The bytes
    /// are written once (once for newline clients, once for bare ones);
    /// each recipient queues a range, which extends the range of the
    /// broadcast before when it follows it.
    pub fn queue_all(&mut self, members: &[ConnId], except: Option<ConnId>, line: &[u8]) {
        self.queued += members.len();
        self.broadcasts += 1;
        // Written once per form some recipient needs, on first need.
        let mut copies: [Option<(Rc<Block>, usize, usize)>; 3] = Default::default();
        for &to in members {
            if Some(to) == except {
                continue;
            }
            let Some(len) = self.admit(to, line.len()) else {
                continue;
            };
            let form = if self.conn(to).is_websocket() {
                Form::WebSocket
            } else if len == line.len() {
                Form::Newline
            } else {
                Form::Bare
            };
            let copy = &mut copies[form as usize];
            if copy.is_none() {
                *copy = Some(self.arenas.put_broadcast(form, &line[..len]));
            }
            let (block, at, n) = copy.as_ref().expect("just written");
            self.push(to, block, *at, *n);
            self.delivered += 1;
        }
    }

    /// Whether `to` takes a line of `line_len` bytes now, and how many of
    /// them (its framing): not if it is not open, nor if that would take
    /// it over its output limit (then it is marked too slow). What the
    /// kernel holds for it counts: a limit means bytes wherever they sit.
    fn admit(&mut self, to: ConnId, line_len: usize) -> Option<usize> {
        let max = self.max_output_bytes;
        let conn = self.get_mut(to)?;
        if !conn.is_open() || conn.too_slow {
            return None;
        }
        let len = conn.session.framed_len(line_len);
        if owed(conn) + len > max {
            self.settle_with_kernel(to);
            if owed(self.conn(to)) + len > max {
                self.mark_too_slow(to, false);
                return None;
            }
        }
        Some(len)
    }

    /// Before a client is judged over its limit: if the kernel has refused
    /// it nothing yet, many replies at once are not slowness, so hand the
    /// kernel what it takes now; either way, ask the kernel what it still
    /// holds for it.
    fn settle_with_kernel(&mut self, to: ConnId) {
        let conn = self.conn(to);
        if !conn.writable {
            let before = conn.out.bytes();
            let _ = conn.out.flush(&mut conn.stream);
            let written = before - conn.out.bytes();
            self.written += written as u64;
            self.total_out -= written;
        }
        self.recount_kernel(to);
    }

    /// Updates what the kernel holds for `key` (one ioctl: only for
    /// clients near their limit or refused by the kernel).
    fn recount_kernel(&mut self, key: ConnId) {
        let conn = self.conn(key);
        let now = super::sys::unsent_in_kernel(&conn.stream);
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        let before = std::mem::replace(&mut conn.kernel_owed, now);
        self.total_out = self.total_out + now as usize - before as usize;
    }

    fn mark_too_slow(&mut self, key: ConnId, over_budget: bool) {
        let generation = self.generation(key).expect("a connection in that slot");
        let conn = self.conn(key);
        if conn.too_slow {
            return;
        }
        conn.too_slow = true;
        conn.over_budget = over_budget;
        self.too_slow.push((key, generation));
    }

    fn push(&mut self, to: ConnId, block: &Rc<Block>, at: usize, len: usize) {
        let conn = conn_at(&mut self.slab, to);
        self.slots_added += usize::from(conn.out.push(block, at, len));
        self.total_out += len;
        mark_dirty(&mut self.dirty, conn, to);
    }

    /// Whether `key` owes so much output that its input should wait
    /// (backpressure: a client cannot make its own replies pile up).
    pub fn owes_too_much(&self, key: ConnId) -> bool {
        self.get(key)
            .is_some_and(|c| c.out.bytes() >= self.pause_at)
    }

    /// Stops reading `key` until its output drains, keeping `rest`, input
    /// already read but not handled.
    pub fn pause(&mut self, key: ConnId, rest: &[u8]) {
        let conn = self.conn(key);
        conn.paused = true;
        conn.held_input
            .get_or_insert_with(Box::default)
            .extend_from_slice(rest);
    }

    /// Input held while `key` was paused, to handle before reading more.
    pub fn take_held_input(&mut self, key: ConnId) -> Vec<u8> {
        self.get_mut(key)
            .and_then(|c| c.held_input.take())
            .map(|held| *held)
            .unwrap_or_default()
    }

    /// Resumes a paused connection whose output has drained enough: it is
    /// read (its held input first) next turn.
    fn resume_if_drained(&mut self, key: ConnId) {
        let pause_at = self.pause_at;
        let conn = self.conn(key);
        if conn.paused && conn.out.bytes() < pause_at / 2 {
            conn.paused = false;
            self.read_later.push(key);
        }
    }

    /// Queues past the output limit: the last words before a close.
    pub fn queue_forced(&mut self, to: ConnId, line: &[u8]) {
        let len = self.conn(to).session.framed_len(line.len());
        self.queue_own(to, &line[..len]);
    }

    /// Queues a WebSocket control frame (pong, close) for `to`. After a
    /// close frame nothing more is sent. A pong obeys the output limit
    /// like any reply; a close frame is a last word.
    pub fn queue_ws_control(&mut self, to: ConnId, frame: &[u8]) {
        let Some(ws) = self.get_mut(to).and_then(|c| c.ws()) else {
            return;
        };
        if ws.close_sent {
            return;
        }
        let close = frame.first() == Some(&(0x80 | websocket::OP_CLOSE));
        ws.close_sent = close;
        if !close && self.admit(to, frame.len()).is_none() {
            return;
        }
        self.queue_raw(to, frame);
    }

    /// Queues `bytes` exactly as they are.
    pub fn queue_raw(&mut self, to: ConnId, bytes: &[u8]) {
        let block = self.arenas.put_own(bytes);
        self.push(to, &block, 0, bytes.len());
    }

    /// Messages queued since the last flush.
    #[cfg(test)]
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// The next open connection marked too slow, with what it owed and
    /// whether the total budget (rather than its own limit) was the cause;
    /// its unstarted output is dropped (a half-written message is kept
    /// whole).
    pub fn next_too_slow(&mut self) -> Option<(ConnId, usize, bool)> {
        while let Some((key, generation)) = self.too_slow.pop() {
            if self.generation(key) != Some(generation) {
                continue; // freed and reused since it was marked
            }
            let conn = self.conn(key);
            if conn.is_open() {
                let owed = owed(conn);
                let queued = conn.out.bytes();
                conn.out.drop_unstarted();
                let dropped = queued - conn.out.bytes();
                let over_budget = conn.over_budget;
                self.total_out -= dropped;
                return Some((key, owed, over_budget));
            }
        }
        None
    }

    /// Unsent bytes all clients owe.
    pub fn total_out(&self) -> usize {
        self.total_out
    }

    /// After a flush, when what all clients together owe is over the
    /// budget: marks the biggest owers too slow until the rest fits in
    /// nine tenths of it (Redis's `maxmemory-clients` evicts the same
    /// way). O(clients), and only when over the budget.
    fn enforce_total_budget(&mut self) {
        if self.total_out <= self.max_total_output {
            return;
        }
        let mut owers: Vec<(usize, ConnId)> = self
            .conns()
            .filter(|(_, c)| c.is_open() && !c.too_slow && owed(c) > 0)
            .map(|(k, c)| (owed(c), k))
            .collect();
        owers.sort_unstable_by(|a, b| b.cmp(a));
        let mut left = self.total_out;
        let target = self.max_total_output / 10 * 9;
        for (owed, key) in owers {
            if left <= target {
                break;
            }
            self.mark_too_slow(key, true);
            left -= owed;
        }
    }

    /// Whether connections were marked too slow and wait to be cut.
    pub fn has_too_slow(&self) -> bool {
        !self.too_slow.is_empty()
    }

    /// Whether any connection is owed a flush.
    pub fn has_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Queue slots added and bytes written into blocks since the last
    /// flush: what a burst holds in memory.
    pub fn added_since_flush(&self) -> (usize, usize) {
        (self.slots_added, self.arenas.written)
    }

    /// Browsers connected, and how many of `members` are browsers (an
    /// O(clients) count, for a metrics scrape).
    pub fn websockets(&self, members: &[ConnId]) -> (usize, usize) {
        let connected = self.conns().filter(|(_, c)| c.is_websocket()).count();
        let logged_in = members
            .iter()
            .filter(|&&k| self.get(k).is_some_and(|c| c.is_websocket()))
            .count();
        (connected, logged_in)
    }

    /// Messages queued for a client since the start.
    pub fn delivered(&self) -> u64 {
        self.delivered
    }

    /// Broadcasts queued since the last flush.
    pub fn broadcasts_waiting(&self) -> usize {
        self.broadcasts
    }

    /// How many connections are owed a flush.
    pub fn dirty_len(&self) -> usize {
        self.dirty.len()
    }

    /// Writes what every dirty connection is owed, one `writev` per
    /// connection (or one send each, all in one submission, through
    /// io_uring: `uring.rs`); WRITABLE interest is held only while output
    /// is left. Connections whose writes fail are lost.
    pub fn flush(&mut self, registry: &Registry) {
        self.queued = 0;
        self.broadcasts = 0;
        self.slots_added = 0;
        self.arenas.written = 0;
        if let Some(mut ring) = self.uring.take() {
            match ring.flush(self, registry) {
                Ok(()) => self.uring = Some(ring),
                Err(e) => log::error!("{e}; fan-out writes go by writev from now on"),
            }
        }
        while let Some(key) = self.next_to_flush() {
            self.flush_one(registry, key);
        }
        self.enforce_total_budget();
    }

    /// Sends the fan-out's writes through `ring` from now on.
    pub fn use_uring(&mut self, ring: Box<super::uring::Uring>) {
        self.uring = Some(ring);
    }

    /// The next connection owed a flush (its mark cleared), skipping the
    /// dead.
    pub(super) fn next_to_flush(&mut self) -> Option<ConnId> {
        while let Some(key) = self.dirty.pop() {
            let Some(conn) = self.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.phase() != Phase::Dead {
                return Some(key);
            }
        }
        None
    }

    /// One `writev` (more if the socket takes them) of what `key` owes.
    pub(super) fn flush_one(&mut self, registry: &Registry, key: ConnId) {
        let conn = self.conn(key);
        let before = conn.out.bytes();
        let result = conn.out.flush(&mut conn.stream);
        let written = before - conn.out.bytes();
        self.flushed(registry, key, written, result);
    }

    /// `written` bytes of `key`'s queue went out (and were taken off it),
    /// then `result`: the rest waits for room, or the connection is lost.
    pub(super) fn flushed(
        &mut self,
        registry: &Registry,
        key: ConnId,
        written: usize,
        result: io::Result<Flushed>,
    ) {
        self.written += written as u64;
        self.total_out -= written;
        match result {
            Ok(Flushed::All) => self.flushed_all(registry, key),
            Ok(Flushed::Blocked) => self.blocked(registry, key),
            Err(e) => self.lose(key, &format!("write: {e}")),
        }
    }

    /// Everything `key` was owed is out: no WRITABLE interest; a closing
    /// connection sends its FIN.
    fn flushed_all(&mut self, registry: &Registry, key: ConnId) {
        self.resume_if_drained(key);
        if self.conn(key).writable {
            let t = self.token_of(key);
            let conn = conn_at(&mut self.slab, key);
            conn.writable = false;
            let _ = registry.reregister(&mut conn.stream, t, Interest::READABLE);
        }
        let conn = conn_at(&mut self.slab, key);
        // What the kernel held is being taken: no longer charged.
        self.total_out -= std::mem::take(&mut conn.kernel_owed) as usize;
        if conn.output_done() {
            // Read what it sent meanwhile on the next turn (this may run
            // in the middle of a read).
            self.read_later.push(key);
        } else if conn.phase() == Phase::Closing {
            // Its FIN came already: nothing to wait for.
            self.kill(key);
        }
    }

    /// The kernel refused `key` more: wait for room, and charge it with
    /// what the kernel holds.
    fn blocked(&mut self, registry: &Registry, key: ConnId) {
        self.resume_if_drained(key);
        self.recount_kernel(key);
        let t = self.token_of(key);
        let conn = self.conn(key);
        if !conn.writable {
            conn.writable = true;
            let both = Interest::READABLE | Interest::WRITABLE;
            let _ = registry.reregister(&mut conn.stream, t, both);
        }
    }

    fn token_of(&self, key: ConnId) -> Token {
        let generation = self.generation(key).expect("a connection in that slot");
        token::encode(Kind::Conn, key.0, generation)
    }

    /// The socket has room again: flush it this turn.
    pub fn on_writable(&mut self, key: ConnId) {
        let conn = conn_at(&mut self.slab, key);
        if conn.writable {
            mark_dirty(&mut self.dirty, conn, key);
        }
    }

    /// Bytes written since the last call.
    pub fn take_written(&mut self) -> u64 {
        std::mem::take(&mut self.written)
    }

    /// Whether no connection owes output (an O(connections) scan).
    pub fn all_drained(&self) -> bool {
        self.conns().all(|(_, c)| c.out.bytes() == 0)
    }

    // ------------------------------------------------------------- input

    /// One read into `buf`.
    pub fn read(&mut self, key: ConnId, buf: &mut [u8]) -> Received {
        let Some(conn) = self.get_mut(key) else {
            return Received::Nothing;
        };
        if matches!(conn.phase(), Phase::Closing | Phase::Dead) || conn.paused || conn.read_closed {
            return Received::Nothing;
        }
        loop {
            return match conn.stream.read(buf) {
                Ok(0) => {
                    conn.read_closed = true;
                    Received::Closed
                }
                Ok(_) if conn.phase() == Phase::Draining => Received::Discarded,
                Ok(n) => Received::Bytes(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Received::Nothing,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Received::Failed(e.to_string()),
            };
        }
    }

    /// Reads `key` again next turn.
    pub fn read_later(&mut self, key: ConnId) {
        self.read_later.push(key);
    }

    /// Connections to read again this turn.
    pub fn take_read_later(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.read_later)
    }

    /// Whether some connection waits to be read again.
    pub fn has_reads_left(&self) -> bool {
        !self.read_later.is_empty()
    }

    // ----------------------------------------------------------- closing

    /// Stops reading `key`; its output still goes out. False if it was not
    /// open.
    pub fn begin_close(&mut self, key: ConnId) -> bool {
        if !self.get_mut(key).is_some_and(|c| c.begin_close()) {
            return false;
        }
        let conn = conn_at(&mut self.slab, key);
        mark_dirty(&mut self.dirty, conn, key);
        // A browser is told the connection ends, after its last message.
        if let Some(ws) = conn.ws() {
            let bye = websocket::close_frame(ws.close_code, "");
            self.queue_ws_control(key, &bye);
        }
        true
    }

    /// The connection failed. Its user is logged out later, from
    /// [`Table::take_lost`]: when many clients vanish at once, all are
    /// found dead before anyone is told of the others.
    pub fn lose(&mut self, key: ConnId, why: &str) {
        let conn = self.conn(key);
        let was_open = conn.is_open();
        debug!("#{key} {}: {why}", conn.addr);
        self.kill(key);
        if was_open {
            self.lost.push(key);
        }
    }

    /// The client's FIN came while it was open, and the server began to
    /// close it: it is leaving. Its user is logged out from
    /// [`Table::take_lost`] like a lost one's.
    pub fn hang_up(&mut self, key: ConnId) {
        debug!("#{key}: closed by the client");
        self.lost.push(key);
    }

    /// The connections lost since the last call.
    pub fn take_lost(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.lost)
    }

    /// Marks `key` dead; it is freed at the end of the turn.
    pub fn kill(&mut self, key: ConnId) {
        let conn = self.conn(key);
        let owed = owed(conn);
        if conn.kill() {
            conn.kernel_owed = 0;
            self.total_out -= owed;
            self.dead.push(key);
        }
    }

    /// Gives up on a closing connection that did not take its output in
    /// time: it is reset, so the kernel frees its buffers at once rather
    /// than holding them for a client that stopped reading.
    pub fn abort(&mut self, key: ConnId) {
        super::sys::reset_on_close(&self.conn(key).stream);
        self.kill(key);
    }

    /// Frees the connections that died this turn, calling `on_free` for
    /// each chat client. Never earlier: a slot reused in the same turn
    /// could receive an event polled for its previous occupant.
    pub fn free_dead(&mut self, registry: &Registry, mut on_free: impl FnMut(ConnId)) {
        for key in std::mem::take(&mut self.dead) {
            let Source::Conn(mut conn) = self.slab.remove(key.0).source else {
                unreachable!("only connections die");
            };
            let _ = registry.deregister(&mut conn.stream);
            if conn.is_client() {
                self.clients -= 1;
                on_free(key);
            } else {
                self.requests -= 1;
            }
        }
    }
}

/// The connection in `key`'s slot, which the caller knows is there (a
/// borrow of the slab alone, beside the table's other fields).
fn conn_at(slab: &mut Slab<Entry>, key: ConnId) -> &mut Connection {
    match slab.get_mut(key.0) {
        Some(Entry {
            source: Source::Conn(c),
            ..
        }) => c,
        _ => panic!("no connection in slot {key}"),
    }
}

/// What a connection owes, wherever the bytes sit.
fn owed(conn: &Connection) -> usize {
    conn.out.bytes() + conn.kernel_owed as usize
}

fn mark_dirty(dirty: &mut Vec<ConnId>, conn: &mut Connection, key: ConnId) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(key);
    }
}

#[cfg(test)]
mod tests;
