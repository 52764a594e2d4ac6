//! The client table (Redis's `networking.c`): every connection in a slab,
//! tokens that carry a generation, what each client is owed and the list
//! of those owed a flush, one `writev` per client per flush, slow-consumer
//! marks, and deferred frees.
//!
//! It knows nothing of chat: it queues encoded lines and reports who was
//! lost, who is too slow and who died; the server decides what that means.

use super::block::{Arena, Block};
use super::connection::{Connection, Phase};
use super::output::Flushed;
use crate::chat::ConnId;
use crate::session::Framing;
use crate::websocket;
use log::debug;
use mio::net::TcpStream;
use mio::{Interest, Registry, Token};
use slab::Slab;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::rc::Rc;

/// Low half of a connection token: slab key; high half: generation.
const KEY_BITS: u32 = usize::BITS / 2;
pub const KEY_MASK: usize = (1 << KEY_BITS) - 1;

fn token(key: ConnId, generation: u32) -> Token {
    Token(key | ((generation as usize & KEY_MASK) << KEY_BITS))
}

/// What one read from a client's socket gave.
pub enum Received {
    /// This many bytes, at the front of the buffer.
    Bytes(usize),
    /// Bytes after we said goodbye: dropped.
    Discarded,
    /// Nothing more to read now (or the connection no longer reads).
    Nothing,
    /// The client closed the connection, or it failed.
    Gone(String),
}

pub struct Clients {
    slab: Slab<Connection>,
    next_generation: u32,
    /// Unsent bytes a client may owe before it is marked too slow.
    max_output_bytes: usize,
    /// Unsent bytes at which a client's input stops being read.
    pause_at: usize,
    /// Unsent bytes all clients together may owe (what the kernel refused);
    /// past it the biggest owers are cut.
    max_total_output: usize,
    /// Unsent bytes all clients owe now.
    total_out: usize,
    /// Connections owed a flush.
    dirty: Vec<ConnId>,
    /// Messages queued since the last flush.
    queued: usize,
    /// Broadcasts queued since the last flush.
    broadcasts: usize,
    /// Queue slots added since the last flush.
    slots_added: usize,
    /// Messages queued for a client since the start.
    delivered: u64,
    /// Marked too slow during a fan-out; cut off right after it.
    too_slow: Vec<ConnId>,
    /// Failed or closed by the client, still to be logged out.
    lost: Vec<ConnId>,
    /// Dead this turn, freed at its end.
    dead: Vec<ConnId>,
    /// Hit the per-turn read cap (or have input to drain) and must be read
    /// again next turn.
    read_later: Vec<ConnId>,
    /// Bytes written since the last call to [`Clients::take_written`].
    written: u64,
    /// Where queued messages are written.
    arenas: Arenas,
}

/// One arena for replies to one client, one each for broadcasts as newline
/// and bare clients get them: consecutive broadcasts stay contiguous.
#[derive(Default)]
struct Arenas {
    direct: Arena,
    /// One per [`Form`].
    broadcast: [Arena; 3],
    /// Bytes written into them since the last flush.
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
}

impl Clients {
    pub fn new(max_output_bytes: usize, max_total_output: usize) -> Clients {
        Clients {
            slab: Slab::new(),
            next_generation: 0,
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
        }
    }

    pub fn len(&self) -> usize {
        self.slab.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    pub fn get(&self, key: ConnId) -> Option<&Connection> {
        self.slab.get(key)
    }

    pub fn get_mut(&mut self, key: ConnId) -> Option<&mut Connection> {
        self.slab.get_mut(key)
    }

    /// Every open connection.
    pub fn open_keys(&self) -> Vec<ConnId> {
        self.slab
            .iter()
            .filter(|(_, c)| c.is_open())
            .map(|(k, _)| k)
            .collect()
    }

    /// Adds a connection and registers it for reading.
    pub fn insert(
        &mut self,
        registry: &Registry,
        stream: TcpStream,
        addr: SocketAddr,
        framing: Framing,
        websocket: bool,
    ) -> io::Result<(ConnId, u32)> {
        let generation = self.next_generation;
        self.next_generation = self.next_generation.wrapping_add(1);
        let entry = self.slab.vacant_entry();
        let key = entry.key();
        let mut conn = Connection::new(stream, addr, generation, framing);
        if websocket {
            conn.ws = Some(Box::default());
        }
        registry.register(&mut conn.stream, token(key, generation), Interest::READABLE)?;
        entry.insert(conn);
        Ok((key, generation))
    }

    /// The connection an event is for; `None` if the token belongs to a
    /// previous occupant of the slot (events already polled still arrive
    /// after a deregister).
    pub fn resolve(&self, event: Token) -> Option<ConnId> {
        let key = event.0 & KEY_MASK;
        let conn = self.slab.get(key)?;
        (token(key, conn.generation()) == event).then_some(key)
    }

    /// Whether `key` still holds the connection of that generation, in
    /// that phase (the guard for timers set for it).
    pub fn is(&self, key: ConnId, generation: u32, phase: Phase) -> bool {
        self.slab
            .get(key)
            .is_some_and(|c| c.generation() == generation && c.phase() == phase)
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
        let bytes = self.framed(to, &line[..len]);
        let (block, at) = self.arenas.direct.put(&bytes);
        self.arenas.written += bytes.len();
        self.push(to, &block, at, bytes.len());
    }

    /// A reply as `to` is sent it: as it is, or in a WebSocket text frame.
    fn framed<'a>(&self, to: ConnId, payload: &'a [u8]) -> std::borrow::Cow<'a, [u8]> {
        if self.slab[to].ws.is_some() {
            std::borrow::Cow::Owned(websocket::frame(websocket::OP_TEXT, payload))
        } else {
            std::borrow::Cow::Borrowed(payload)
        }
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
            let form = if self.slab[to].ws.is_some() {
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
        }
    }

    /// Whether `to` takes a line of `line_len` bytes now, and how many of
    /// them (its framing): not if it is not open, nor if that would take
    /// it over its output limit while the kernel refuses it bytes (then it
    /// is marked too slow).
    fn admit(&mut self, to: ConnId, line_len: usize) -> Option<usize> {
        let conn = self.slab.get_mut(to)?;
        if !conn.is_open() {
            return None;
        }
        let len = conn.session.framed_len(line_len);
        if conn.out.bytes() + len > self.max_output_bytes && !conn.writable {
            // Over the limit within one turn, but the kernel has not
            // refused it anything yet: many replies at once are not
            // slowness. Hand the kernel what it takes now.
            let before = conn.out.bytes();
            let _ = conn.out.flush(&mut conn.stream);
            let written = before - conn.out.bytes();
            self.written += written as u64;
            self.total_out -= written;
        }
        if conn.out.bytes() + len > self.max_output_bytes {
            if !conn.too_slow {
                conn.too_slow = true;
                self.too_slow.push(to);
            }
            return None;
        }
        Some(len)
    }

    fn push(&mut self, to: ConnId, block: &Rc<Block>, at: usize, len: usize) {
        let conn = &mut self.slab[to];
        self.slots_added += usize::from(conn.out.push(block, at, len));
        self.delivered += 1;
        self.total_out += len;
        mark_dirty(&mut self.dirty, conn, to);
    }

    /// Whether `key` owes so much output that its input should wait
    /// (backpressure: a client cannot make its own replies pile up).
    pub fn owes_too_much(&self, key: ConnId) -> bool {
        self.slab
            .get(key)
            .is_some_and(|c| c.out.bytes() >= self.pause_at)
    }

    /// Stops reading `key` until its output drains, keeping `rest`, input
    /// already read but not handled.
    pub fn pause(&mut self, key: ConnId, rest: &[u8]) {
        let conn = &mut self.slab[key];
        conn.paused = true;
        conn.held_input.extend_from_slice(rest);
    }

    /// Input held while `key` was paused, to handle before reading more.
    pub fn take_held_input(&mut self, key: ConnId) -> Vec<u8> {
        self.slab
            .get_mut(key)
            .map(|c| std::mem::take(&mut c.held_input))
            .unwrap_or_default()
    }

    /// Resumes a paused connection whose output has drained enough: it is
    /// read (its held input first) next turn.
    fn resume_if_drained(&mut self, key: ConnId) {
        let conn = &mut self.slab[key];
        if conn.paused && conn.out.bytes() < self.pause_at / 2 {
            conn.paused = false;
            self.read_later.push(key);
        }
    }

    /// Queues past the output limit: the last words before a close.
    pub fn queue_forced(&mut self, to: ConnId, line: &[u8]) {
        let len = self.slab[to].session.framed_len(line.len());
        let bytes = self.framed(to, &line[..len]);
        let (block, at) = self.arenas.direct.put(&bytes);
        self.push(to, &block, at, bytes.len());
    }

    /// Queues a WebSocket control frame (pong, close) for `to`. After a
    /// close frame nothing more is sent.
    pub fn queue_ws_control(&mut self, to: ConnId, frame: &[u8]) {
        let Some(ws) = self.slab.get_mut(to).and_then(|c| c.ws.as_mut()) else {
            return;
        };
        if ws.close_sent {
            return;
        }
        ws.close_sent = frame.first() == Some(&(0x80 | websocket::OP_CLOSE));
        let (block, at) = self.arenas.direct.put(frame);
        self.push(to, &block, at, frame.len());
    }

    /// Queues `bytes` exactly as they are.
    pub fn queue_raw(&mut self, to: ConnId, bytes: &[u8]) {
        let (block, at) = self.arenas.direct.put(bytes);
        self.push(to, &block, at, bytes.len());
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
        while let Some(key) = self.too_slow.pop() {
            let conn = &mut self.slab[key];
            if conn.is_open() {
                let owed = conn.out.bytes();
                conn.out.drop_unstarted();
                self.total_out -= owed - conn.out.bytes();
                return Some((key, owed, conn.over_budget));
            }
        }
        None
    }

    /// Unsent bytes all clients owe.
    pub fn total_out(&self) -> usize {
        self.total_out
    }

    /// After a flush, when what the kernel refused all clients together is
    /// over the budget: marks the biggest owers too slow until the rest
    /// fits in nine tenths of it (Redis's `maxmemory-clients` evicts the
    /// same way). O(clients), and only when over the budget.
    fn enforce_total_budget(&mut self) {
        if self.total_out <= self.max_total_output {
            return;
        }
        let mut owers: Vec<(usize, ConnId)> = self
            .slab
            .iter()
            .filter(|(_, c)| c.is_open() && !c.too_slow && c.out.bytes() > 0)
            .map(|(k, c)| (c.out.bytes(), k))
            .collect();
        owers.sort_unstable_by(|a, b| b.cmp(a));
        let mut left = self.total_out;
        let target = self.max_total_output / 10 * 9;
        for (owed, key) in owers {
            if left <= target {
                break;
            }
            let conn = &mut self.slab[key];
            conn.too_slow = true;
            conn.over_budget = true;
            self.too_slow.push(key);
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
        let connected = self.slab.iter().filter(|(_, c)| c.ws.is_some()).count();
        let logged_in = members
            .iter()
            .filter(|&&k| self.slab.get(k).is_some_and(|c| c.ws.is_some()))
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
    /// connection; WRITABLE interest is held only while output is left.
    /// Connections whose writes fail are lost.
    pub fn flush(&mut self, registry: &Registry) {
        self.queued = 0;
        self.broadcasts = 0;
        self.slots_added = 0;
        self.arenas.written = 0;
        while let Some(key) = self.dirty.pop() {
            let Some(conn) = self.slab.get_mut(key) else {
                continue;
            };
            conn.dirty = false;
            if conn.phase() == Phase::Dead {
                continue;
            }
            let before = conn.out.bytes();
            let result = conn.out.flush(&mut conn.stream);
            let written = before - conn.out.bytes();
            self.written += written as u64;
            self.total_out -= written;
            if result.is_ok() {
                self.resume_if_drained(key);
            }
            let conn = &mut self.slab[key];
            match result {
                Ok(Flushed::All) => {
                    if conn.writable {
                        conn.writable = false;
                        let t = token(key, conn.generation());
                        let _ = registry.reregister(&mut conn.stream, t, Interest::READABLE);
                    }
                    if conn.output_done() {
                        // Read what it sent meanwhile on the next turn
                        // (this may run in the middle of a read).
                        self.read_later.push(key);
                    }
                }
                Ok(Flushed::Blocked) => {
                    if !conn.writable {
                        conn.writable = true;
                        let t = token(key, conn.generation());
                        let both = Interest::READABLE | Interest::WRITABLE;
                        let _ = registry.reregister(&mut conn.stream, t, both);
                    }
                }
                Err(e) => self.lose(key, &format!("write: {e}")),
            }
        }
        self.enforce_total_budget();
    }

    /// The socket has room again: flush it this turn.
    pub fn on_writable(&mut self, key: ConnId) {
        let conn = &mut self.slab[key];
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
        self.slab.iter().all(|(_, c)| c.out.bytes() == 0)
    }

    // ------------------------------------------------------------- input

    /// One read into `buf`.
    pub fn read(&mut self, key: ConnId, buf: &mut [u8]) -> Received {
        let Some(conn) = self.slab.get_mut(key) else {
            return Received::Nothing;
        };
        if matches!(conn.phase(), Phase::Closing | Phase::Dead) || conn.paused {
            return Received::Nothing;
        }
        loop {
            return match conn.stream.read(buf) {
                Ok(0) => Received::Gone("closed by client".into()),
                Ok(_) if conn.phase() == Phase::Draining => Received::Discarded,
                Ok(n) => Received::Bytes(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Received::Nothing,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Received::Gone(e.to_string()),
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
        let Some(conn) = self.slab.get_mut(key) else {
            return false;
        };
        if !conn.begin_close() {
            return false;
        }
        mark_dirty(&mut self.dirty, conn, key);
        // A browser is told the connection ends, after its last message.
        if let Some(ws) = conn.ws.as_ref() {
            let bye = websocket::close_frame(ws.close_code, "");
            self.queue_ws_control(key, &bye);
        }
        true
    }

    /// The connection failed or the client closed it. Its user is logged
    /// out later, from [`Clients::take_lost`]: when many clients vanish at
    /// once, all are found dead before anyone is told of the others.
    pub fn lose(&mut self, key: ConnId, why: &str) {
        let conn = &self.slab[key];
        let was_open = conn.is_open();
        debug!("#{key} {}: {why}", conn.addr);
        self.kill(key);
        if was_open {
            self.lost.push(key);
        }
    }

    /// The connections lost since the last call.
    pub fn take_lost(&mut self) -> Vec<ConnId> {
        std::mem::take(&mut self.lost)
    }

    /// Marks `key` dead; it is freed at the end of the turn.
    pub fn kill(&mut self, key: ConnId) {
        let conn = &mut self.slab[key];
        let owed = conn.out.bytes();
        if conn.kill() {
            self.total_out -= owed;
            self.dead.push(key);
        }
    }

    /// Gives up on a closing connection that did not take its output in
    /// time: it is reset, so the kernel frees its buffers at once rather
    /// than holding them for a client that stopped reading.
    pub fn abort(&mut self, key: ConnId) {
        super::sys::reset_on_close(&self.slab[key].stream);
        self.kill(key);
    }

    /// Frees the connections that died this turn, calling `on_free` for
    /// each. Never earlier: a slot reused in the same turn could receive an
    /// event polled for its previous occupant.
    pub fn free_dead(&mut self, registry: &Registry, mut on_free: impl FnMut(ConnId)) {
        for key in self.dead.drain(..) {
            let mut conn = self.slab.remove(key);
            let _ = registry.deregister(&mut conn.stream);
            on_free(key);
        }
    }
}

fn mark_dirty(dirty: &mut Vec<ConnId>, conn: &mut Connection, key: ConnId) {
    if !conn.dirty {
        conn.dirty = true;
        dirty.push(key);
    }
}

#[cfg(test)]
mod tests;
