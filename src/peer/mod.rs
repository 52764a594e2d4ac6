//! The peer-to-peer state machine (draft sections 2.4 and 4, docs/PROTOCOL.md's
//! peer rules). No I/O: datagrams come in with their source address, and
//! out go [`Transmit`]s (bytes and a destination) and [`PeerEvent`]s for the
//! user. [`net::PeerNode`] drives it over one UDP socket; the terminal
//! program and mp1d's LAN bridge both use that.
//!
//! Joining: `Discovery` is broadcast and `DiscoveryResponse`s collected for
//! a short window (who is online; a name already seen is refused at once),
//! then `Handshake` is broadcast. Every active peer answers directly: `OK`
//! makes both sides known to each other, `DuplicateError` means the joining
//! peer must pick another name. With no refusal within the handshake window
//! the name is ours.
//!
//! Peers that join at the same moment cannot answer each other's
//! `Handshake` (neither is active yet): each remembers the other and, once
//! active, handshakes with it directly. A refresh `DiscoveryResponse` from a
//! peer we do not know triggers the same direct handshake.
//!
//! Ageing: UDP has no close, so an active peer re-broadcasts `Discovery`
//! every `refresh` period. Every datagram from a known peer (its
//! `DiscoveryResponse` included) counts as a sign of life; a known peer not
//! heard from for three periods is dropped as timed out.
//!
//! ## Driving it (in the manner of quinn-proto's `Connection`)
//!
//! Input: [`Peer::handle_datagram`] for every datagram received (with its
//! source and the time), [`Peer::handle_timeout`] once [`Peer::poll_timeout`]
//! has passed, and the user's calls ([`Peer::join`], [`Peer::chat`],
//! [`Peer::whisper`], [`Peer::rename`], [`Peer::add_peer`],
//! [`Peer::leave`]). `handle_datagram` asks, through its callback, whether a
//! name is taken outside the LAN (mp1d's users); answer from the caller's
//! own namespace, `false` when there is none.
//!
//! After any input, in this order: drain [`Peer::poll_transmits`] and
//! send each datagram (a send that would block may be queued and retried;
//! a lost datagram is what UDP does anyway); drain [`Peer::poll_events`]
//! and show or apply each; then read [`Peer::poll_timeout`] again, since any
//! input may move it. Time only ever comes in from the caller.

pub mod net;

use crate::protocol::name::is_valid_name;
use crate::protocol::{decode_peer, PeerMessage, Status};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Peers introduced to a newcomer at most (see `Peer::introduce_group`).
const MAX_INTRODUCED: usize = 64;

/// Timing and size settings of a peer.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Broadcast destinations (address and peer port). Empty: unicast only.
    pub broadcast: Vec<SocketAddr>,
    /// How long to collect `DiscoveryResponse`s before the handshake.
    pub discovery_window: Duration,
    /// How long a `DuplicateError` may take to arrive.
    pub handshake_window: Duration,
    /// Re-discovery period; silent peers are dropped after three.
    pub refresh: Duration,
    /// Largest datagram sent or accepted (classic peers read 1024 bytes).
    pub max_datagram: usize,
    /// Known peers at most; handshakes past it are dropped (logged).
    pub max_peers: usize,
    /// `Discovery` and `Handshake` answered per second, from all sources
    /// together, on average: a token bucket that refills at this rate...
    pub max_greetings_per_second: u32,
    /// ...and holds this many, so that a crowd arriving at once (a
    /// classroom, a load test) is answered at once. Besides, at most
    /// four a second from any one source.
    pub greeting_burst: u32,
}

impl Default for PeerConfig {
    fn default() -> Self {
        PeerConfig {
            broadcast: Vec::new(),
            discovery_window: Duration::from_secs(1),
            handshake_window: Duration::from_millis(500),
            refresh: Duration::from_secs(30),
            max_datagram: 1024,
            max_peers: 256,
            max_greetings_per_second: 50,
            greeting_burst: 200,
        }
    }
}

/// One datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub to: SocketAddr,
    /// Shared between the copies of one broadcast.
    pub bytes: Rc<[u8]>,
}

/// What the user of a peer is told.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerEvent {
    /// Nobody objected: we are on the LAN as `name`.
    Joined {
        name: String,
    },
    /// Someone holds `name`; pick another and call [`Peer::join`] again.
    NameTaken {
        name: String,
    },
    /// A peer answered our `Discovery` while we were joining.
    Discovered {
        name: String,
        addr: SocketAddr,
    },
    Renamed {
        old: String,
        new: String,
    },
    RenameRefused {
        name: String,
    },
    PeerJoined {
        name: String,
        addr: SocketAddr,
    },
    PeerLeft {
        name: String,
        addr: SocketAddr,
        timed_out: bool,
    },
    PeerRenamed {
        old: String,
        new: String,
        addr: SocketAddr,
    },
    /// Chat from a known peer. `via` names the bridge that relayed it when
    /// `from` is the author behind a bridge.
    Chat {
        from: String,
        message: String,
        via: Option<String>,
    },
    /// `to`: a user behind us (we are a bridge) it is meant for; `None`
    /// for us.
    Whisper {
        from: String,
        message: String,
        via: Option<String>,
        to: Option<String>,
    },
    /// A known peer asks who is on our server (we are a bridge): answer
    /// with [`Peer::send_online_list`].
    OnlineListRequested {
        addr: SocketAddr,
    },
    /// A bridge (the known peer `via`) says who is on its server.
    OnlineList {
        via: String,
        addr: SocketAddr,
        names: Vec<String>,
    },
    /// A datagram that was not acted on, and why (for the log).
    Dropped {
        from: SocketAddr,
        why: String,
    },
    /// Greetings (`Discovery`, `Handshake`) went unanswered over the rate
    /// limit: `count` since the last such event. Told at most once a
    /// second, so that a flood does not flood the log too.
    GreetingsDropped {
        count: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Phase {
    Idle,
    Discovering { name: String, until: Instant },
    Handshaking { name: String, until: Instant },
    Active,
}

struct Known {
    name: String,
    last_seen: Instant,
    /// Added by hand: broadcast does not reach it, so it gets unicast.
    manual: bool,
}

/// One peer: its name, the peers it knows, and its joining state.
pub struct Peer {
    me: SocketAddr,
    config: PeerConfig,
    phase: Phase,
    /// The name we hold while active.
    name: Option<String>,
    /// A rename we asked for and the end of its objection window.
    renaming: Option<(String, Instant)>,
    known: HashMap<SocketAddr, Known>,
    /// Peers added by hand, handshaken with whenever we join.
    manual: Vec<SocketAddr>,
    /// Peers that handshook while we were still joining (and so got no
    /// answer): we handshake with them directly once we are active.
    latecomers: Vec<SocketAddr>,
    next_refresh: Option<Instant>,
    greetings: Greetings,
    out: Vec<Transmit>,
    events: Vec<PeerEvent>,
}

/// Who greeted us (`Discovery`, `Handshake`) lately, for the rate limit.
#[derive(Debug)]
struct Greetings {
    /// The token bucket of all sources together: greetings it can take
    /// now, refilled at `max_greetings_per_second` up to `greeting_burst`.
    tokens: f64,
    refilled: Instant,
    /// Per source, counted in one-second windows.
    window_start: Instant,
    per_source: HashMap<SocketAddr, u32>,
    /// Dropped and not yet told, and when they were last told.
    dropped: u64,
    told: Option<Instant>,
}

/// Greetings taken from one source per second.
const GREETINGS_PER_SOURCE: u32 = 4;

impl Peer {
    /// `me` is our own address as other peers see it: the source address
    /// towards the broadcast address and the port of our one socket.
    pub fn new(me: SocketAddr, config: PeerConfig) -> Peer {
        let burst = f64::from(config.greeting_burst.max(1));
        Peer {
            me,
            config,
            phase: Phase::Idle,
            name: None,
            renaming: None,
            known: HashMap::new(),
            manual: Vec::new(),
            latecomers: Vec::new(),
            next_refresh: None,
            greetings: Greetings {
                tokens: burst,
                refilled: Instant::now(),
                window_start: Instant::now(),
                per_source: HashMap::new(),
                dropped: 0,
                told: None,
            },
            out: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn me(&self) -> SocketAddr {
        self.me
    }

    /// The name we hold, once joined.
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    pub fn is_active(&self) -> bool {
        self.phase == Phase::Active
    }

    /// Known peers' names, sorted.
    pub fn peer_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.known.values().map(|k| k.name.clone()).collect();
        names.sort();
        names
    }

    /// Whether a known peer goes by `name`.
    pub fn knows_name(&self, name: &str) -> bool {
        self.known.values().any(|k| k.name == name)
    }

    /// Datagrams to send, in order.
    pub fn poll_transmits(&mut self) -> std::vec::Drain<'_, Transmit> {
        self.out.drain(..)
    }

    /// Events for the user, in order.
    pub fn poll_events(&mut self) -> std::vec::Drain<'_, PeerEvent> {
        self.events.drain(..)
    }

    /// Starts joining the LAN as `name` (again, after `NameTaken`).
    /// Returns false, doing nothing, if the name breaks the naming rules.
    pub fn join(&mut self, name: &str, now: Instant) -> bool {
        if !is_valid_name(name) {
            return false;
        }
        self.name = None;
        self.phase = Phase::Discovering {
            name: name.to_string(),
            until: now + self.config.discovery_window,
        };
        let (ip, port) = self.me_fields();
        self.broadcast(&PeerMessage::Discovery { ip, port });
        true
    }

    /// Adds a peer by address: it gets our `Handshake` directly (now if we
    /// are joining or active, else when we join).
    pub fn add_peer(&mut self, addr: SocketAddr) {
        if addr == self.me || self.manual.contains(&addr) {
            return;
        }
        self.manual.push(addr);
        let name = match &self.phase {
            Phase::Handshaking { name, .. } => Some(name.clone()),
            Phase::Active => self.name.clone(),
            _ => None,
        };
        if let Some(name) = name {
            let msg = self.own_handshake(name);
            self.send(addr, &msg);
        }
    }

    /// Broadcasts chat, split into datagrams of at most `max_datagram`.
    pub fn chat(&mut self, message: &str) {
        self.chat_as(None, message);
    }

    /// Chat relayed for `author` (a bridge): classic peers see
    /// "author: text" from us; peers that read `name` see the author.
    pub fn chat_as(&mut self, author: Option<&str>, message: &str) {
        if self.phase != Phase::Active {
            return;
        }
        for msg in relayed(
            author,
            message,
            self.config.max_datagram,
            |message, name| PeerMessage::SendChat { message, name },
        ) {
            self.broadcast(&msg);
        }
    }

    /// Whispers to the known peer called `to`; false if there is none.
    pub fn whisper(&mut self, to: &str, message: &str) -> bool {
        self.whisper_as(None, to, message)
    }

    /// A whisper relayed for `author`, like [`Peer::chat_as`].
    pub fn whisper_as(&mut self, author: Option<&str>, to: &str, message: &str) -> bool {
        let Some(addr) = self.addr_of(to) else {
            return false;
        };
        for msg in relayed(
            author,
            message,
            self.config.max_datagram,
            |message, name| PeerMessage::Whisper {
                message,
                name,
                to: None,
            },
        ) {
            self.send(addr, &msg);
        }
        true
    }

    /// Whispers to `user` behind the bridge at `bridge` (extension: the
    /// bridge routes `to`); false if that peer is unknown.
    pub fn whisper_via(&mut self, bridge: SocketAddr, user: &str, message: &str) -> bool {
        if !self.known.contains_key(&bridge) {
            return false;
        }
        let to = Some(user.to_string());
        let overhead = PeerMessage::Whisper {
            message: String::new(),
            name: None,
            to: to.clone(),
        }
        .encode()
        .len();
        for part in split_to_fit(message, self.config.max_datagram.saturating_sub(overhead)) {
            let msg = PeerMessage::Whisper {
                message: part.to_string(),
                name: None,
                to: to.clone(),
            };
            self.send(bridge, &msg);
        }
        true
    }

    /// Asks the known peer at `addr` who is on its server (extension;
    /// bridges answer, classic peers ignore it).
    pub fn ask_online_list(&mut self, addr: SocketAddr) {
        if self.known.contains_key(&addr) {
            self.send(addr, &PeerMessage::RequestOnlineList);
        }
    }

    /// Answers [`PeerEvent::OnlineListRequested`]: `names`, in as many
    /// datagrams as they take.
    pub fn send_online_list(&mut self, addr: SocketAddr, names: &[String]) {
        let max = self.config.max_datagram;
        let mut batch: Vec<String> = Vec::new();
        for name in names {
            batch.push(name.clone());
            let len = PeerMessage::SendOnlineList {
                names: batch.clone(),
            }
            .encode()
            .len();
            if len > max && batch.len() > 1 {
                let last = batch.pop().expect("just pushed");
                let full = std::mem::replace(&mut batch, vec![last]);
                self.send(addr, &PeerMessage::SendOnlineList { names: full });
            }
        }
        self.send(addr, &PeerMessage::SendOnlineList { names: batch });
    }

    /// Asks the LAN to let us go by `new`.
    pub fn rename(&mut self, new: &str, now: Instant) {
        if self.phase != Phase::Active || !is_valid_name(new) || self.name.as_deref() == Some(new) {
            self.events.push(PeerEvent::RenameRefused {
                name: new.to_string(),
            });
            return;
        }
        if self.knows_name(new) {
            self.events.push(PeerEvent::RenameRefused {
                name: new.to_string(),
            });
            return;
        }
        self.renaming = Some((new.to_string(), now + self.config.handshake_window));
        self.broadcast(&PeerMessage::SetUsername {
            name: new.to_string(),
        });
    }

    /// Leaves the LAN: broadcasts `Disconnect` and forgets every peer.
    pub fn leave(&mut self) {
        if self.phase == Phase::Active {
            self.broadcast(&PeerMessage::Disconnect);
        }
        self.phase = Phase::Idle;
        self.name = None;
        self.renaming = None;
        self.known.clear();
        self.latecomers.clear();
        self.next_refresh = None;
    }

    /// The next instant [`Peer::handle_timeout`] has work to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let phase = match &self.phase {
            Phase::Discovering { until, .. } | Phase::Handshaking { until, .. } => Some(*until),
            _ => None,
        };
        [
            phase,
            self.renaming.as_ref().map(|r| r.1),
            self.next_refresh,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Advances timers: ends the discovery and handshake windows, commits
    /// renames, re-discovers and drops silent peers.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.tell_greetings_dropped(now);
        match self.phase.clone() {
            Phase::Discovering { name, until } if until <= now => self.handshake(name, now),
            Phase::Handshaking { name, until } if until <= now => {
                self.phase = Phase::Active;
                self.name = Some(name.clone());
                self.next_refresh = Some(now + self.config.refresh);
                self.events.push(PeerEvent::Joined { name: name.clone() });
                let bytes: Rc<[u8]> = Rc::from(self.own_handshake(name).encode());
                for to in std::mem::take(&mut self.latecomers) {
                    if !self.known.contains_key(&to) {
                        self.push(to, &bytes);
                    }
                }
            }
            _ => {}
        }
        if let Some((new, until)) = self.renaming.clone() {
            if until <= now {
                self.renaming = None;
                let old = self.name.replace(new.clone()).unwrap_or_default();
                self.events.push(PeerEvent::Renamed { old, new });
            }
        }
        if self.next_refresh.is_some_and(|t| t <= now) {
            self.next_refresh = Some(now + self.config.refresh);
            self.expire(now);
            let (ip, port) = self.me_fields();
            self.broadcast(&PeerMessage::Discovery { ip, port });
        }
    }

    /// Handles one received datagram. `taken` says whether a name is held
    /// outside this peer's view (a bridge's server users).
    pub fn handle_datagram(
        &mut self,
        from: SocketAddr,
        bytes: &[u8],
        now: Instant,
        taken: &dyn Fn(&str) -> bool,
    ) {
        self.tell_greetings_dropped(now);
        if from == self.me {
            return; // our own broadcast
        }
        if bytes.len() > self.config.max_datagram {
            self.drop_datagram(
                from,
                format!("{} bytes is over the datagram limit", bytes.len()),
            );
            return;
        }
        let msg = match decode_peer(bytes) {
            Ok(m) => m,
            Err(e) => {
                self.drop_datagram(from, e.to_string());
                return;
            }
        };
        if let Some(k) = self.known.get_mut(&from) {
            k.last_seen = now;
        }
        // A peer is who sends: the source of its datagrams. The ip/port a
        // greeting claims is never trusted (it could name another peer, or
        // a victim to reflect answers at); only a known peer's introduction
        // of a third is used, as a place to send our own Handshake.
        match msg {
            PeerMessage::Discovery { ip, port } => {
                self.note_claim(from, ip, port);
                if self.greeting_allowed(from, now) {
                    self.on_discovery(from)
                }
            }
            PeerMessage::DiscoveryResponse { ip, port, name } => {
                let claimed = claimed_addr(from, ip, port);
                self.on_discovery_response(from, claimed, name)
            }
            PeerMessage::Handshake { ip, port, name } => {
                self.note_claim(from, ip, port);
                if self.greeting_allowed(from, now) {
                    self.on_handshake(from, name, now, taken)
                }
            }
            PeerMessage::HandshakeResponse { name, status } => {
                self.on_handshake_response(from, name, status, now)
            }
            PeerMessage::SendChat { message, name } => {
                self.on_text(from, message, name, None, false)
            }
            PeerMessage::Whisper { message, name, to } => {
                self.on_text(from, message, name, to, true)
            }
            PeerMessage::RequestOnlineList => {
                if self.known.contains_key(&from) {
                    self.events
                        .push(PeerEvent::OnlineListRequested { addr: from });
                } else {
                    self.drop_datagram(from, "RequestOnlineList from a stranger".into());
                }
            }
            PeerMessage::SendOnlineList { names } => match self.known.get(&from) {
                Some(k) => self.events.push(PeerEvent::OnlineList {
                    via: k.name.clone(),
                    addr: from,
                    names,
                }),
                None => self.drop_datagram(from, "SendOnlineList from a stranger".into()),
            },
            PeerMessage::Disconnect => {
                if let Some(k) = self.known.remove(&from) {
                    self.events.push(PeerEvent::PeerLeft {
                        name: k.name,
                        addr: from,
                        timed_out: false,
                    });
                }
            }
            PeerMessage::SetUsername { name } => self.on_set_username(from, name, taken),
            PeerMessage::SetUsernameResponse { status, .. } => {
                if status != Status::Ok {
                    if let Some((name, _)) = self.renaming.take() {
                        self.events.push(PeerEvent::RenameRefused { name });
                    }
                }
            }
        }
    }

    // ------------------------------------------------------------ inbound

    fn on_discovery(&mut self, from: SocketAddr) {
        // Only a peer with a valid name answers (docs/PROTOCOL.md), and to
        // the datagram's source, never to an address it claims.
        let Some(name) = self.name.clone().filter(|_| self.phase == Phase::Active) else {
            return;
        };
        let (ip, port) = self.me_fields();
        self.send(from, &PeerMessage::DiscoveryResponse { ip, port, name });
    }

    /// A greeting whose claimed address is not its source is answered as
    /// its source all the same; the mismatch is logged.
    fn note_claim(&mut self, from: SocketAddr, ip: Option<String>, port: Option<u16>) {
        let claimed = claimed_addr(from, ip, port);
        if claimed != from {
            self.drop_datagram(
                from,
                format!("claims to be {claimed}; taken as its source, {from}"),
            );
        }
    }

    /// Rate limit for `Discovery` and `Handshake`, which we answer:
    /// [`GREETINGS_PER_SOURCE`] a second from any one source (joining
    /// takes two or three), and from all together a token bucket
    /// (`greeting_burst` at once, `max_greetings_per_second` after), so
    /// that nobody can make us send datagrams at will.
    fn greeting_allowed(&mut self, from: SocketAddr, now: Instant) -> bool {
        let g = &mut self.greetings;
        if now.duration_since(g.window_start) >= Duration::from_secs(1) {
            g.window_start = now;
            g.per_source.clear();
        }
        let burst = f64::from(self.config.greeting_burst.max(1));
        let refill = now.duration_since(g.refilled).as_secs_f64()
            * f64::from(self.config.max_greetings_per_second);
        g.tokens = (g.tokens + refill).min(burst);
        g.refilled = now;
        let mine = g.per_source.entry(from).or_insert(0);
        if *mine >= GREETINGS_PER_SOURCE || g.tokens < 1.0 {
            g.dropped += 1;
            self.tell_greetings_dropped(now);
            return false;
        }
        *mine += 1;
        g.tokens -= 1.0;
        true
    }

    /// Reports the greetings dropped since the last report, at most once
    /// a second (the first at once).
    fn tell_greetings_dropped(&mut self, now: Instant) {
        let g = &mut self.greetings;
        let due = g
            .told
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(1));
        if g.dropped > 0 && due {
            self.events
                .push(PeerEvent::GreetingsDropped { count: g.dropped });
            g.dropped = 0;
            g.told = Some(now);
        }
    }

    fn on_discovery_response(&mut self, from: SocketAddr, claimed: SocketAddr, name: String) {
        // The peer itself answers from its own address; anything else is
        // a known peer introducing a third (or a claim to ignore).
        let addr = if claimed == from || self.known.contains_key(&from) {
            claimed
        } else {
            from
        };
        if addr == self.me {
            return;
        }
        // Told of a peer while our handshake is out (a peer we reached by
        // address introduces its group): handshake with it once active.
        if matches!(self.phase, Phase::Handshaking { .. })
            && !self.known.contains_key(&addr)
            && !self.latecomers.contains(&addr)
        {
            self.latecomers.push(addr);
            return;
        }
        // An active peer we never handshook with (we both joined at once,
        // or a datagram was lost) answers a refresh: catch up directly.
        if self.phase == Phase::Active && !self.known.contains_key(&addr) {
            if let Some(mine) = self.name.clone() {
                let msg = self.own_handshake(mine);
                self.send(addr, &msg);
            }
            return;
        }
        if let Phase::Discovering { name: wanted, .. } = &self.phase {
            if *wanted == name {
                let name = wanted.clone();
                self.phase = Phase::Idle;
                self.events.push(PeerEvent::NameTaken { name });
                return;
            }
            self.events.push(PeerEvent::Discovered { name, addr });
        }
    }

    fn on_handshake(
        &mut self,
        addr: SocketAddr,
        name: String,
        now: Instant,
        taken: &dyn Fn(&str) -> bool,
    ) {
        let Some(mine) = self.name.clone().filter(|_| self.phase == Phase::Active) else {
            // Only active peers with a valid name answer; a peer that is
            // joining remembers the newcomer for when it is active.
            let joining = matches!(
                self.phase,
                Phase::Discovering { .. } | Phase::Handshaking { .. }
            );
            if joining && !self.latecomers.contains(&addr) {
                self.latecomers.push(addr);
            }
            return;
        };
        if !self.known.contains_key(&addr) && self.known.len() >= self.config.max_peers {
            let max = self.config.max_peers;
            self.drop_datagram(addr, format!("Handshake past the limit of {max} peers"));
            return;
        }
        let status = self.judge_name(addr, &name, &mine, taken);
        self.send(addr, &PeerMessage::HandshakeResponse { name: mine, status });
        if status != Status::Ok {
            return;
        }
        let manual = self.manual.contains(&addr);
        let old = self.known.insert(
            addr,
            Known {
                name: name.clone(),
                last_seen: now,
                manual,
            },
        );
        match old {
            Some(k) if k.name == name => {}
            Some(k) => self.events.push(PeerEvent::PeerRenamed {
                old: k.name,
                new: name,
                addr,
            }),
            None => {
                self.events.push(PeerEvent::PeerJoined { name, addr });
                self.introduce_group(addr);
            }
        }
    }

    /// A newcomer our broadcast does not reach (it found us by address)
    /// cannot have heard the rest of the group either: it is told who they
    /// are, one `DiscoveryResponse` each (the message that describes a
    /// peer), and handshakes with them itself. Peers on the broadcast
    /// domain learn the group by broadcast, so this costs them nothing.
    fn introduce_group(&mut self, newcomer: SocketAddr) {
        if self.reached_by_broadcast(newcomer) {
            return;
        }
        let others: Vec<PeerMessage> = self
            .known
            .iter()
            .filter(|(a, _)| **a != newcomer)
            .take(MAX_INTRODUCED)
            .map(|(a, k)| PeerMessage::DiscoveryResponse {
                ip: Some(a.ip().to_string()),
                port: Some(a.port()),
                name: k.name.clone(),
            })
            .collect();
        for msg in others {
            self.send(newcomer, &msg);
        }
    }

    fn on_handshake_response(
        &mut self,
        from: SocketAddr,
        name: String,
        status: Status,
        now: Instant,
    ) {
        let wanted = match &self.phase {
            Phase::Handshaking { name, .. } => name.clone(),
            Phase::Active => self.name.clone().unwrap_or_default(),
            _ => {
                self.drop_datagram(from, "HandshakeResponse while not joining".into());
                return;
            }
        };
        if status != Status::Ok {
            if matches!(self.phase, Phase::Handshaking { .. }) {
                self.phase = Phase::Idle;
                self.known.clear();
                self.events.push(PeerEvent::NameTaken { name: wanted });
            }
            return;
        }
        let manual = self.manual.contains(&from);
        let fresh = !self.known.contains_key(&from);
        self.known.insert(
            from,
            Known {
                name: name.clone(),
                last_seen: now,
                manual,
            },
        );
        if fresh {
            self.events.push(PeerEvent::PeerJoined { name, addr: from });
        }
    }

    /// Chat or whisper from `from`; shown only if it handshook with us.
    fn on_text(
        &mut self,
        from: SocketAddr,
        message: String,
        author: Option<String>,
        to: Option<String>,
        whisper: bool,
    ) {
        let Some(k) = self.known.get(&from) else {
            let what = if whisper { "whisper" } else { "chat" };
            self.drop_datagram(from, format!("{what} from a peer that never handshook"));
            return;
        };
        let sender = k.name.clone();
        // A bridge relays "author: text" with the author in `name`.
        let relayed = author.and_then(|a| {
            let rest = message.strip_prefix(&a)?.strip_prefix(": ")?.to_string();
            Some((a, rest))
        });
        let (from, message, via) = match relayed {
            Some((a, rest)) => (a, rest, Some(sender)),
            None => (sender, message, None),
        };
        self.events.push(if whisper {
            PeerEvent::Whisper {
                from,
                message,
                via,
                to,
            }
        } else {
            PeerEvent::Chat { from, message, via }
        });
    }

    fn on_set_username(&mut self, from: SocketAddr, new: String, taken: &dyn Fn(&str) -> bool) {
        let Some(mine) = self.name.clone() else {
            return;
        };
        let Some(old) = self.known.get(&from).map(|k| k.name.clone()) else {
            self.drop_datagram(from, "SetUsername from a peer that never handshook".into());
            return;
        };
        let status = self.judge_name(from, &new, &mine, taken);
        self.send(
            from,
            &PeerMessage::SetUsernameResponse {
                name: new.clone(),
                status,
            },
        );
        if status == Status::Ok && old != new {
            if let Some(k) = self.known.get_mut(&from) {
                k.name = new.clone();
            }
            self.events.push(PeerEvent::PeerRenamed {
                old,
                new,
                addr: from,
            });
        }
    }

    // ----------------------------------------------------------- helpers

    /// Whether the peer at `addr` may go by `name`: not ours, not another
    /// known peer's, not held outside (`taken`), and a valid name.
    fn judge_name(
        &self,
        addr: SocketAddr,
        name: &str,
        mine: &str,
        taken: &dyn Fn(&str) -> bool,
    ) -> Status {
        let held_elsewhere = self.known.iter().any(|(a, k)| *a != addr && k.name == name);
        if name == mine || held_elsewhere || taken(name) || !is_valid_name(name) {
            Status::DuplicateError
        } else {
            Status::Ok
        }
    }

    fn handshake(&mut self, name: String, now: Instant) {
        self.phase = Phase::Handshaking {
            name: name.clone(),
            until: now + self.config.handshake_window,
        };
        let msg = self.own_handshake(name);
        let bytes = self.broadcast(&msg);
        // Hand-added peers are not reached by broadcast.
        for to in self.manual.clone() {
            self.push(to, &bytes);
        }
    }

    fn expire(&mut self, now: Instant) {
        let limit = self.config.refresh * 3;
        let gone: Vec<SocketAddr> = self
            .known
            .iter()
            .filter(|(_, k)| now.duration_since(k.last_seen) > limit)
            .map(|(a, _)| *a)
            .collect();
        for addr in gone {
            if let Some(k) = self.known.remove(&addr) {
                self.events.push(PeerEvent::PeerLeft {
                    name: k.name,
                    addr,
                    timed_out: true,
                });
            }
        }
    }

    fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        self.known
            .iter()
            .find(|(_, k)| k.name == name)
            .map(|(a, _)| *a)
    }

    fn me_fields(&self) -> (Option<String>, Option<u16>) {
        (Some(self.me.ip().to_string()), Some(self.me.port()))
    }

    /// Our `Handshake` as `name`.
    fn own_handshake(&self, name: String) -> PeerMessage {
        let (ip, port) = self.me_fields();
        PeerMessage::Handshake { ip, port, name }
    }

    fn send(&mut self, to: SocketAddr, msg: &PeerMessage) {
        let bytes = Rc::from(msg.encode());
        self.push(to, &bytes);
    }

    /// Queues already encoded bytes (shared by the copies of a message).
    fn push(&mut self, to: SocketAddr, bytes: &Rc<[u8]>) {
        self.out.push(Transmit {
            to,
            bytes: Rc::clone(bytes),
        });
    }

    /// One datagram to each broadcast address, and a unicast copy to each
    /// known peer the broadcast cannot reach: added by hand, or on a port
    /// no broadcast address targets.
    /// Returns the encoded bytes, for callers that send more copies.
    fn broadcast(&mut self, msg: &PeerMessage) -> Rc<[u8]> {
        let bytes: Rc<[u8]> = Rc::from(msg.encode());
        for &to in &self.config.broadcast {
            self.out.push(Transmit {
                to,
                bytes: Rc::clone(&bytes),
            });
        }
        for (&addr, k) in &self.known {
            if k.manual || !self.reached_by_broadcast(addr) {
                self.out.push(Transmit {
                    to: addr,
                    bytes: Rc::clone(&bytes),
                });
            }
        }
        bytes
    }

    fn reached_by_broadcast(&self, addr: SocketAddr) -> bool {
        self.config
            .broadcast
            .iter()
            .any(|b| b.port() == addr.port() && covers(b.ip(), addr.ip()))
    }

    fn drop_datagram(&mut self, from: SocketAddr, why: String) {
        self.events.push(PeerEvent::Dropped { from, why });
    }
}

/// The address a message claims for its sender, or the datagram's source.
fn claimed_addr(from: SocketAddr, ip: Option<String>, port: Option<u16>) -> SocketAddr {
    let ip = ip
        .and_then(|s| s.parse::<IpAddr>().ok())
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(from.ip());
    let port = port.filter(|&p| p != 0).unwrap_or(from.port());
    SocketAddr::new(ip, port)
}

/// Whether a datagram to broadcast address `b` reaches host `ip`: the
/// limited broadcast reaches the local network; a directed one (`a.b.c.255`
/// style, all host bits set) reaches hosts that share its network part.
fn covers(b: IpAddr, ip: IpAddr) -> bool {
    match (b, ip) {
        (IpAddr::V4(b), IpAddr::V4(ip)) => {
            if b.is_broadcast() {
                return true;
            }
            let (b, ip) = (u32::from(b), u32::from(ip));
            // Host bits: the trailing ones of the broadcast address.
            let host = (1u32 << b.trailing_ones().min(31)) - 1;
            host != 0 && (b & !host) == (ip & !host)
        }
        _ => false,
    }
}

/// The datagrams of one chat or whisper: relayed for `author` they read
/// "author: text" and carry `name`; long text is split so each datagram
/// stays within `max_datagram` bytes.
fn relayed(
    author: Option<&str>,
    text: &str,
    max_datagram: usize,
    make: impl Fn(String, Option<String>) -> PeerMessage,
) -> Vec<PeerMessage> {
    let prefix = author.map(|a| format!("{a}: ")).unwrap_or_default();
    let name = author.map(str::to_string);
    let overhead = make(prefix.clone(), name.clone()).encode().len();
    split_to_fit(text, max_datagram.saturating_sub(overhead))
        .into_iter()
        .map(|part| make(format!("{prefix}{part}"), name.clone()))
        .collect()
}

/// Splits `text` at character boundaries into pieces whose JSON-escaped
/// form takes at most `budget` bytes. Always at least one piece.
pub fn split_to_fit(text: &str, budget: usize) -> Vec<&str> {
    let budget = budget.max(12); // room for any one escaped character
    let mut parts = Vec::new();
    let mut start = 0;
    let mut used = 0;
    for (i, c) in text.char_indices() {
        let cost = crate::protocol::ascii::escaped_len(c);
        if used + cost > budget {
            parts.push(&text[start..i]);
            start = i;
            used = 0;
        }
        used += cost;
    }
    if start < text.len() || parts.is_empty() {
        parts.push(&text[start..]);
    }
    parts
}

#[cfg(test)]
mod tests;
