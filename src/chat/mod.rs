//! The server's protocol state machine: who is connected, who is logged in
//! under which name, who is admin, who is muted. No I/O: the server loop
//! feeds it decoded requests and connection events, and it answers with
//! [`Effect`]s saying what to send to whom and which connections to close.
//! Every row of the server table of docs/PROTOCOL.md lives here.
//!
//! ## Driving it (the project's one sans-IO style, after quinn-proto)
//!
//! Input goes in through `handle_*` calls; nothing is sent by the chat
//! itself: what to send to whom comes out of [`Chat::poll_effect`], one
//! [`Effect`] at a time, until it says `None`.
//! - [`Chat::handle_connect`] when a connection is accepted (the
//!   connection may log in from then on);
//! - [`Chat::handle_request`] for each request the connection's session
//!   decoded, in the order it arrived (a decode error goes in too: the chat
//!   answers it);
//! - [`Chat::handle_disconnect`] when a connection is gone or is being
//!   closed by the server (announces the departure and any admin handover;
//!   for a connection the chat has forgotten it does nothing);
//! - `handle_lan_*` for what the LAN bridge heard, and [`Chat::is_taken`]
//!   when the bridge asks whether a name is free;
//! - in a cluster, [`Chat::handle_event`] and [`Chat::handle_refusal`] for
//!   what the cluster's engine decided.
//!
//! After each call, carry out the effects in order before the next call:
//! `Send` and `Broadcast` queue an encoded reply (a broadcast goes to the
//! recipients it names); `Close` stops reading the connection and flushes
//! it (the chat has already forgotten it: do not hand in its disconnect);
//! `Lan` goes to the bridge; `Propose` to the cluster's engine. Order
//! matters: a client sees its replies in the order of the effects. The
//! chat never needs to know whether bytes were written, and keeps no
//! clock: the only time it needs is the wall clock's `RequestLocalTime`.
//!
//! ## One path, one node or many
//!
//! Requests that change shared state (login, rename, chat, whisper, the
//! admin commands, leaving) do not change it here: they become a
//! [`Proposal`] to an engine, which decides; every change reaches the chat
//! as an [`Event`] applied through [`Chat::apply`] (the proposer's own
//! replies come from its event too, so a client sees the engine's order),
//! and a refused proposal comes back through [`Chat::refused`]. On a single
//! node the engine is a [`LocalEngine`] inside the chat, which decides at
//! once; after [`Chat::join_cluster`] proposals become
//! [`Effect::Propose`], which the loop hands to the cluster's engine. That
//! hand-off ([`Chat::propose`]) is the only place the two differ. See
//! `cluster.rs`.

mod cluster;

use crate::cluster::local::{Decision, LocalEngine, View};
use crate::cluster::{Departure, Event, Proposal, Refusal};
use crate::protocol::name::is_valid_name;
use crate::protocol::{AdminCommand, DecodeError, Reply, Request, Status};
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;

/// The server loop's handle for one connection (its slot in the loop's
/// table).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub usize);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// Who a broadcast goes to: the logged-in connections at the moment it
/// was made, less one. The list is a snapshot shared with the chat (no
/// copy per broadcast); the chat copies it only if its membership changes
/// while a broadcast still holds it.
#[derive(Clone, Debug)]
pub struct Audience {
    members: Rc<Vec<ConnId>>,
    except: Option<ConnId>,
}

impl Audience {
    /// The members; skip [`Audience::except`].
    pub fn members(&self) -> &[ConnId] {
        &self.members
    }

    /// The one member it does not go to (a chat's sender).
    pub fn except(&self) -> Option<ConnId> {
        self.except
    }

    /// Whom it reaches, in no particular order.
    pub fn recipients(&self) -> impl Iterator<Item = ConnId> + '_ {
        let except = self.except;
        self.members
            .iter()
            .copied()
            .filter(move |&c| Some(c) != except)
    }
}

impl PartialEq for Audience {
    /// The same recipients, whatever the order.
    fn eq(&self, other: &Audience) -> bool {
        let sorted = |a: &Audience| {
            let mut v: Vec<ConnId> = a.recipients().collect();
            v.sort_unstable();
            v
        };
        sorted(self) == sorted(other)
    }
}

impl Eq for Audience {}

/// What the loop must do after an input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// Send to one connection.
    Send(ConnId, Reply),
    /// Send to everyone in `to`. Encoded once by the loop and shared by
    /// all recipients.
    Broadcast { to: Audience, reply: Reply },
    /// Close after flushing what the connection is owed. The chat state has
    /// already forgotten it.
    Close(ConnId),
    /// For the LAN, through the peer bridge (only when one is set).
    Lan(LanOut),
    /// For the cluster's engine (only in a cluster): a state change the
    /// connection asked for (none: the node's own, such as an election or
    /// a logout nobody waits for).
    Propose(Option<ConnId>, Proposal),
}

/// What a server user sends to LAN peers through the bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LanOut {
    Chat {
        from: String,
        message: String,
    },
    Whisper {
        from: String,
        to: String,
        message: String,
    },
}

/// A LAN peer seen through the bridge: it shares the server's namespace.
struct LanUser {
    name: String,
    addr: SocketAddr,
}

/// Limits the state machine enforces.
#[derive(Clone, Debug)]
pub struct ChatConfig {
    /// Longest chat or whisper text, in Unicode scalar values.
    pub max_chat_chars: usize,
    /// Most names in one `WhisperToUser`: its cost is bounded.
    pub max_whisper_recipients: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_chat_chars: 4096,
            max_whisper_recipients: 100,
        }
    }
}

struct Session {
    addr: SocketAddr,
    user: Option<User>,
    /// In a cluster: the session's number on this node (its cluster-wide
    /// id is `node/sid`).
    sid: u32,
}

struct User {
    name: String,
    /// Login order, for the online list and admin succession.
    seq: u64,
    muted: bool,
    /// Position in `Chat::members`.
    slot: usize,
}

/// The server's users, names, admin and mutes.
pub struct Chat {
    config: ChatConfig,
    sessions: Vec<Option<Session>>,
    names: HashMap<String, ConnId>,
    /// Logged-in connections, unordered and dense, for fan-out (shared
    /// with the broadcasts made from it: see [`Audience`]).
    members: Rc<Vec<ConnId>>,
    local_time: Box<dyn Fn() -> String>,
    /// The bridge's own name on the LAN, when mp1d bridges one.
    bridge: Option<String>,
    /// LAN peers known to the bridge, in the order they appeared.
    lan: Vec<LanUser>,
    /// The shared state as this node sees it: the other nodes' users, the
    /// admin, logins in flight.
    shared: cluster::Shared,
    /// The engine that decides proposals at once, on a single node; none
    /// in a cluster (the loop hands proposals to the cluster's).
    engine: Option<LocalEngine>,
    /// Effects not polled yet, and the buffer the handlers write into.
    pending: VecDeque<Effect>,
    scratch: Vec<Effect>,
}

fn chrono_local_time() -> String {
    chrono::Local::now().format("%H:%M:%S").to_string()
}

impl Chat {
    pub fn new(config: ChatConfig) -> Chat {
        Chat {
            config,
            sessions: Vec::new(),
            names: HashMap::new(),
            members: Rc::default(),
            local_time: Box::new(chrono_local_time),
            bridge: None,
            lan: Vec::new(),
            shared: cluster::Shared::new("local"),
            engine: Some(LocalEngine::default()),
            pending: VecDeque::new(),
            scratch: Vec::new(),
        }
    }

    /// Replaces the wall clock used for `RequestLocalTime` (tests).
    pub fn with_clock(mut self, clock: impl Fn() -> String + 'static) -> Chat {
        self.local_time = Box::new(clock);
        self
    }

    /// The next thing to do, in order; `None` when everything asked for
    /// so far has been handed out.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.pending.pop_front()
    }

    /// Whether effects wait to be polled.
    pub fn has_effects(&self) -> bool {
        !self.pending.is_empty()
    }

    /// Runs a handler that writes effects, queueing them for polling.
    fn emit<R>(&mut self, handler: impl FnOnce(&mut Chat, &mut Vec<Effect>) -> R) -> R {
        let mut out = std::mem::take(&mut self.scratch);
        let r = handler(self, &mut out);
        self.pending.extend(out.drain(..));
        self.scratch = out;
        r
    }

    /// Handles one decoded (or undecodable) message from `conn`.
    pub fn handle_request(&mut self, conn: ConnId, msg: Result<Request, DecodeError>) {
        self.emit(|c, out| c.request(conn, msg, out))
    }

    /// The connection is gone (dropped, timed out, cut off).
    pub fn handle_disconnect(&mut self, conn: ConnId) {
        self.emit(|c, out| c.disconnect(conn, out))
    }

    /// Applies one event the cluster's engine decided.
    pub fn handle_event(&mut self, event: Event) {
        self.emit(|c, out| c.apply(event, out))
    }

    /// The cluster's engine turned `p` down.
    pub fn handle_refusal(&mut self, conn: ConnId, p: Proposal, why: Refusal) {
        self.emit(|c, out| c.refused(conn, p, why, out))
    }

    /// The wait after the cluster's Redis came back empty is over.
    pub fn handle_settle(&mut self) {
        self.emit(|c, out| c.settle(out))
    }

    /// A LAN peer handshook with the bridge.
    pub fn handle_lan_join(&mut self, name: &str, addr: SocketAddr) {
        self.emit(|c, out| c.lan_join(name, addr, out))
    }

    /// A LAN peer left or timed out.
    pub fn handle_lan_leave(&mut self, addr: SocketAddr) {
        self.emit(|c, out| c.lan_leave(addr, out))
    }

    pub fn handle_lan_rename(&mut self, addr: SocketAddr, new: &str) {
        self.emit(|c, out| c.lan_rename(addr, new, out))
    }

    /// Chat from the LAN reaches every server user.
    pub fn handle_lan_chat(&mut self, from: &str, message: String) {
        self.emit(|c, out| c.lan_chat(from, message, out))
    }

    /// A LAN peer whispers a server user through the bridge. False if no
    /// server user has that name.
    pub fn handle_lan_whisper(&mut self, from: &str, to: &str, message: String) -> bool {
        self.emit(|c, out| c.lan_whisper(from, to, message, out))
    }

    /// Logged-in connections, for fan-out. Order is not meaningful.
    pub fn members(&self) -> &[ConnId] {
        &self.members
    }

    /// The name `conn` is logged in under.
    pub fn name_of(&self, conn: ConnId) -> Option<&str> {
        self.user(conn).map(|u| u.name.as_str())
    }

    pub fn admin(&self) -> Option<&str> {
        self.shared.admin.as_deref()
    }

    /// Logged-in names in login order, then LAN peers'.
    pub fn online_names(&self) -> Vec<String> {
        let mut names = self.cluster_names();
        names.extend(self.lan.iter().map(|l| l.name.clone()));
        names
    }

    /// Whether `name` is held by a logged-in client, a LAN peer or the
    /// bridge itself: one namespace for both.
    pub fn is_taken(&self, name: &str) -> bool {
        self.names.contains_key(name)
            || self.shared.remote.contains_key(name)
            || self.bridge.as_deref() == Some(name)
            || self.lan.iter().any(|l| l.name == name)
    }

    /// mp1d bridges a LAN under `name`: server chat is relayed to it, and
    /// LAN peers share the namespace.
    pub fn set_bridge(&mut self, name: Option<String>) {
        self.bridge = name;
    }

    /// A LAN peer handshook with the bridge.
    fn lan_join(&mut self, name: &str, addr: SocketAddr, out: &mut Vec<Effect>) {
        self.lan.retain(|l| l.addr != addr);
        self.lan.push(LanUser {
            name: name.to_string(),
            addr,
        });
        self.announce(out, format!("{name} joined from the LAN."));
    }

    /// A LAN peer left or timed out.
    fn lan_leave(&mut self, addr: SocketAddr, out: &mut Vec<Effect>) {
        if let Some(i) = self.lan.iter().position(|l| l.addr == addr) {
            let gone = self.lan.remove(i);
            self.announce(out, format!("{} left the LAN.", gone.name));
        }
    }

    fn lan_rename(&mut self, addr: SocketAddr, new: &str, out: &mut Vec<Effect>) {
        if let Some(l) = self.lan.iter_mut().find(|l| l.addr == addr) {
            let old = std::mem::replace(&mut l.name, new.to_string());
            self.announce(out, format!("{old} has changed username to {new}."));
        }
    }

    /// Chat from the LAN reaches every server user.
    fn lan_chat(&mut self, from: &str, message: String, out: &mut Vec<Effect>) {
        let reply = Reply::SendChatFromUser {
            name: from.to_string(),
            message,
        };
        out.push(Effect::Broadcast {
            to: self.everyone_but(None),
            reply,
        });
    }

    /// The members now, less `except`.
    pub(crate) fn everyone_but(&self, except: Option<ConnId>) -> Audience {
        Audience {
            members: Rc::clone(&self.members),
            except,
        }
    }

    /// Tells every member.
    pub(crate) fn announce(&self, out: &mut Vec<Effect>, message: String) {
        out.push(Effect::Broadcast {
            to: self.everyone_but(None),
            reply: Reply::ServerMessage { message },
        });
    }

    /// A LAN peer whispers a server user through the bridge (the `to`
    /// extension). False if no server user has that name.
    fn lan_whisper(
        &mut self,
        from: &str,
        to: &str,
        message: String,
        out: &mut Vec<Effect>,
    ) -> bool {
        let Some(&target) = self.names.get(to) else {
            return false;
        };
        out.push(Effect::Send(
            target,
            Reply::WhisperFromUser {
                from: from.to_string(),
                message,
            },
        ));
        true
    }

    /// LAN peers known through the bridge.
    pub fn lan_peer_count(&self) -> usize {
        self.lan.len()
    }

    /// The server's own users (not LAN peers), in login order: what the
    /// bridge tells LAN peers that ask.
    pub fn user_names(&self) -> Vec<String> {
        let mut users: Vec<&User> = self.members.iter().filter_map(|&c| self.user(c)).collect();
        users.sort_by_key(|u| u.seq);
        users.into_iter().map(|u| u.name.clone()).collect()
    }

    /// A new connection from `addr`; it must log in before anything else.
    pub fn handle_connect(&mut self, conn: ConnId, addr: SocketAddr) {
        if self.sessions.len() <= conn.0 {
            self.sessions.resize_with(conn.0 + 1, || None);
        }
        let sid = self.shared.new_sid();
        self.sessions[conn.0] = Some(Session {
            addr,
            user: None,
            sid,
        });
    }

    /// The connection is gone (dropped, timed out, cut off). A logged-in
    /// user is announced as having left (once the engine says so).
    fn disconnect(&mut self, conn: ConnId, out: &mut Vec<Effect>) {
        self.leave_cluster(conn, out);
    }

    /// Handles one decoded (or undecodable) message from `conn`.
    fn request(&mut self, conn: ConnId, msg: Result<Request, DecodeError>, out: &mut Vec<Effect>) {
        let req = match msg {
            Ok(req) => req,
            Err(e) => {
                out.push(Effect::Send(conn, Reply::server_message(e.to_string())));
                return;
            }
        };
        let Some(session) = self.session(conn) else {
            return;
        };
        let logged_in = session.user.is_some();
        match req {
            Request::Login { name } if !logged_in => self.login(conn, name, out),
            Request::Login { .. } => {
                let msg = format!("Already logged in as {}.", self.name_of(conn).unwrap_or(""));
                out.push(Effect::Send(conn, Reply::server_message(msg)));
            }
            _ if !logged_in => out.push(Effect::Send(
                conn,
                Reply::server_message("Not logged in: send Login first."),
            )),
            Request::SetUsername { name } => self.set_username(conn, name, out),
            Request::RequestUserInfo { name } => self.user_info(conn, name, out),
            Request::RequestLocalTime => {
                let time = (self.local_time)();
                out.push(Effect::Send(conn, Reply::SendLocalTime { time }));
            }
            Request::WhisperToUser { to, message } => self.whisper(conn, to, message, out),
            Request::SendChat { message } => self.chat(conn, message, out),
            Request::RequestOnlineList => {
                let names = self.online_names();
                out.push(Effect::Send(conn, Reply::SendOnlineList { names }));
            }
            Request::Disconnect => {
                out.push(Effect::Send(conn, Reply::disconnect("Goodbye.")));
                out.push(Effect::Close(conn));
                self.disconnect(conn, out);
            }
            Request::KickUser { name } => {
                self.admin_command(conn, AdminCommand::KickUser, name, out)
            }
            Request::MuteUser { name } => {
                self.admin_command(conn, AdminCommand::MuteUser, name, out)
            }
            Request::UnmuteUser { name } => {
                self.admin_command(conn, AdminCommand::UnmuteUser, name, out)
            }
            Request::SetAsAdmin { name } => {
                self.admin_command(conn, AdminCommand::SetAsAdmin, name, out)
            }
        }
    }

    fn session(&self, conn: ConnId) -> Option<&Session> {
        self.sessions.get(conn.0).and_then(Option::as_ref)
    }

    fn user(&self, conn: ConnId) -> Option<&User> {
        self.session(conn).and_then(|s| s.user.as_ref())
    }

    fn user_mut(&mut self, conn: ConnId) -> Option<&mut User> {
        self.sessions
            .get_mut(conn.0)
            .and_then(Option::as_mut)
            .and_then(|s| s.user.as_mut())
    }

    fn login(&mut self, conn: ConnId, name: Option<String>, out: &mut Vec<Effect>) {
        let (name, status) = self.check_new_name(conn, name);
        if status != Status::Ok {
            out.push(Effect::Send(conn, Reply::AssignUsername { name, status }));
            return;
        }
        self.propose_login(conn, name, out);
    }

    /// Validates a requested name: `InvalidUsername`, `DuplicateError`
    /// (held by another connection) or `Ok`.
    fn check_new_name(&self, conn: ConnId, name: Option<String>) -> (String, Status) {
        let Some(name) = name else {
            return (String::new(), Status::InvalidUsername);
        };
        if !is_valid_name(&name) {
            return (name, Status::InvalidUsername);
        }
        let own = self.names.get(&name) == Some(&conn);
        if !own && self.is_taken(&name) {
            (name, Status::DuplicateError)
        } else {
            (name, Status::Ok)
        }
    }

    fn set_username(&mut self, conn: ConnId, name: Option<String>, out: &mut Vec<Effect>) {
        let (name, status) = self.check_new_name(conn, name);
        let old = match self.user(conn) {
            Some(u) => u.name.clone(),
            None => return,
        };
        if status == Status::Ok && old != name {
            let new = name;
            self.propose_for(conn, out, |sid| Proposal::Rename { old, new, sid });
        } else {
            out.push(Effect::Send(conn, Reply::SetUsername { name, status }));
        }
    }

    fn user_info(&self, conn: ConnId, name: String, out: &mut Vec<Effect>) {
        let user = self
            .names
            .get(&name)
            .and_then(|&c| self.session(c))
            .map(|s| s.addr);
        let peer = || self.lan.iter().find(|l| l.name == name).map(|l| l.addr);
        let remote = || self.shared.addr_of(&name);
        let reply = match user.or_else(peer).or_else(remote) {
            Some(addr) => Reply::ProvideUserInfo {
                ip: addr.ip().to_string(),
                port: addr.port(),
                name,
                status: Status::Ok,
            },
            None => Reply::ProvideUserInfo {
                name,
                ip: String::new(),
                port: 0,
                status: Status::UserDoesNotExist,
            },
        };
        out.push(Effect::Send(conn, reply));
    }

    /// Whether `conn` may send `message` now; if not, tells it why.
    fn may_speak(&self, conn: ConnId, message: &str, out: &mut Vec<Effect>) -> bool {
        let muted = self.user(conn).is_some_and(|u| u.muted);
        if muted {
            out.push(Effect::Send(conn, Reply::server_message("You are muted.")));
            return false;
        }
        let max = self.config.max_chat_chars;
        // Byte length bounds the char count from above: skip counting
        // for the usual short message.
        if message.len() > max && message.chars().count() > max {
            let why = format!("Message too long: the limit is {max} characters.");
            out.push(Effect::Send(conn, Reply::server_message(why)));
            return false;
        }
        true
    }

    fn chat(&mut self, conn: ConnId, message: String, out: &mut Vec<Effect>) {
        if !self.may_speak(conn, &message, out) {
            return;
        }
        let name = self.name_of(conn).unwrap_or_default().to_string();
        self.propose_for(conn, out, |sid| Proposal::Chat { name, sid, message });
    }

    fn whisper(&mut self, conn: ConnId, to: Vec<String>, message: String, out: &mut Vec<Effect>) {
        if !self.may_speak(conn, &message, out) {
            return;
        }
        let max = self.config.max_whisper_recipients;
        if to.len() > max {
            let why = format!("Too many recipients: at most {max} names in one whisper.");
            out.push(Effect::Send(conn, Reply::server_message(why)));
            return;
        }
        let from = self.name_of(conn).unwrap_or_default().to_string();
        // LAN peers are not the engine's: their whispers go to the bridge.
        let (lan, to): (Vec<String>, Vec<String>) = to
            .into_iter()
            .partition(|n| !self.names.contains_key(n) && self.lan.iter().any(|l| l.name == *n));
        let mut seen = HashSet::new();
        for name in lan.into_iter().filter(|n| seen.insert(n.clone())) {
            out.push(Effect::Lan(LanOut::Whisper {
                from: from.clone(),
                to: name,
                message: message.clone(),
            }));
        }
        if to.is_empty() {
            return;
        }
        let p = |sid| Proposal::Whisper {
            from,
            sid,
            to,
            message,
        };
        self.propose_for(conn, out, p);
    }

    fn admin_command(
        &mut self,
        conn: ConnId,
        command: AdminCommand,
        name: String,
        out: &mut Vec<Effect>,
    ) {
        let by = self.name_of(conn).unwrap_or_default().to_string();
        let p = |sid| Proposal::Admin {
            by,
            sid,
            command,
            target: name,
        };
        self.propose_for(conn, out, p);
    }

    /// Tells `conn` why the server closes it, closes it and forgets it;
    /// its user, if it had logged in (the caller announces the departure).
    fn close(&mut self, conn: ConnId, why: &str, out: &mut Vec<Effect>) -> Option<User> {
        out.push(Effect::Send(conn, Reply::disconnect(why)));
        out.push(Effect::Close(conn));
        let user = self.logout(conn);
        if let Some(s) = self.sessions.get_mut(conn.0) {
            *s = None;
        }
        user
    }

    /// Removes `conn`'s user (if logged in) from names and members.
    fn logout(&mut self, conn: ConnId) -> Option<User> {
        let user = self.sessions.get_mut(conn.0)?.as_mut()?.user.take()?;
        self.names.remove(&user.name);
        Rc::make_mut(&mut self.members).swap_remove(user.slot);
        if let Some(&moved) = self.members.get(user.slot) {
            if let Some(u) = self.user_mut(moved) {
                u.slot = user.slot;
            }
        }
        Some(user)
    }

    /// Hands `p` to the engine: on a single node it is decided at once,
    /// and its events and refusals applied before this returns; in a
    /// cluster the loop hands it on ([`Effect::Propose`]).
    fn propose(&mut self, conn: Option<ConnId>, p: Proposal, out: &mut Vec<Effect>) {
        let Some(mut engine) = self.engine.take() else {
            out.push(Effect::Propose(conn, p));
            return;
        };
        let mut decisions = Vec::new();
        engine.decide(p, &*self, &mut decisions);
        self.engine = Some(engine);
        for d in decisions {
            match d {
                Decision::Event(e) => self.apply(e, out),
                Decision::Refused(why, p) => {
                    if let Some(conn) = conn {
                        self.refused(conn, p, why, out);
                    }
                }
            }
        }
    }
}

/// On a single node, the chat's own view is the shared state its engine
/// decides against (no copy of it is kept).
impl View for Chat {
    fn holds(&self, name: &str) -> bool {
        self.names.contains_key(name) || self.shared.remote.contains_key(name)
    }

    fn muted(&self, name: &str) -> Option<bool> {
        match self.names.get(name) {
            Some(&conn) => self.user(conn).map(|u| u.muted),
            None => self.shared.remote.get(name).map(|r| r.muted),
        }
    }

    fn admin(&self) -> Option<&str> {
        self.shared.admin.as_deref()
    }

    fn earliest_but(&self, name: &str) -> Option<String> {
        self.cluster_names().into_iter().find(|n| n != name)
    }
}

const KICKED: &str = "Kicked from the server.";

/// What everyone is told when `name` leaves.
fn departure(name: &str, why: Departure) -> String {
    match why {
        Departure::Left => format!("{name} left the server."),
        Departure::Kicked => format!("{name} has been kicked from the server."),
        Departure::Lost => format!("{name} left the server (their server was lost)."),
    }
}

#[cfg(test)]
mod tests;
