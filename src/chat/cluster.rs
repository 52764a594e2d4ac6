//! The chat's shared state and the engine's side of it, for a single node
//! and a cluster alike: other nodes' users beside this node's
//! connections, requests turned into proposals, and the engine's events
//! applied in its order (on a single node the engine is local and decides
//! at once). What a client sees is decided here; who holds which name,
//! who is admin and who is muted comes from the engine.

use super::{departure, Chat, ConnId, Effect, User, KICKED};
use crate::cluster::{Departure, Event, Member, Proposal, Refusal};
use crate::protocol::{AdminCommand, Reply, Status};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;

pub(crate) const UNAVAILABLE: &str =
    "The chat is unavailable right now: its Redis cannot be reached. Nothing was sent; try again.";
pub(crate) const UNKNOWN: &str = "The chat lost its Redis connection: your last request may or \
                                  may not have been carried out.";
pub(crate) const EXPELLED: &str = "This server lost its place in the chat (it was cut off from \
                                   the cluster for longer than its lease); log in again.";
pub(crate) const OUT_OF_MEMORY: &str = "The chat's Redis is out of memory; nothing was sent.";
pub(crate) const FENCED: &str = "This server lost contact with the chat's Redis for too long to \
                                 keep holding your name; log in again.";
const NAME_LOST: &str = "Your name was taken while the chat's Redis was restarting; log in again.";
const LOGIN_RESET: &str = "The chat's Redis restarted while you were logging in; you are not \
                           logged in. Try again.";
const LOGIN_UNDONE: &str = "The chat's Redis failed over and the new one never received your \
                            login; log in again.";
const RESTORE_LOST: &str =
    "The chat's Redis went away again while your login was being restored; log in again.";

/// A user held on another node (or one of ours that is leaving).
pub(crate) struct Remote {
    seq: u64,
    pub(crate) muted: bool,
    /// `ip:port`, for `RequestUserInfo`.
    addr: String,
}

impl From<&Member> for Remote {
    fn from(m: &Member) -> Remote {
        Remote {
            seq: m.seq,
            muted: m.muted,
            addr: m.addr.clone(),
        }
    }
}

/// This node's view of the cluster.
pub(crate) struct Shared {
    node: String,
    /// Numbers wrap after 2^32 sessions; a session that old is long gone.
    next_sid: u32,
    pub(crate) remote: HashMap<String, Remote>,
    /// The admin's name, wherever they are.
    pub(crate) admin: Option<String>,
    /// Logins in flight: cluster-wide session id → connection.
    joining: HashMap<String, ConnId>,
    /// After Redis came back empty: the users not registered again yet.
    stale: Option<HashSet<String>>,
}

impl Shared {
    pub(crate) fn new(node: &str) -> Shared {
        Shared {
            node: node.to_string(),
            next_sid: 0,
            remote: HashMap::new(),
            admin: None,
            joining: HashMap::new(),
            stale: None,
        }
    }

    pub(crate) fn new_sid(&mut self) -> u32 {
        self.next_sid = self.next_sid.wrapping_add(1);
        self.next_sid
    }

    pub(crate) fn addr_of(&self, name: &str) -> Option<SocketAddr> {
        self.remote.get(name).and_then(|r| r.addr.parse().ok())
    }
}

impl Chat {
    /// From now on the chat is one node, `node`, of a cluster: see the
    /// module doc of [`Chat`].
    pub fn join_cluster(&mut self, node: &str) {
        self.shared = Shared::new(node);
        self.engine = None;
    }

    fn shared(&mut self) -> &mut Shared {
        &mut self.shared
    }

    /// `conn`'s session id, cluster-wide.
    pub(super) fn sid_of(&self, conn: ConnId) -> String {
        let sid = self.session(conn).map_or(0, |s| s.sid);
        format!("{}/{sid}", self.shared.node)
    }

    /// Every user of the cluster in login order.
    pub(super) fn cluster_names(&self) -> Vec<String> {
        let mut all: Vec<(u64, &str)> = self
            .members
            .iter()
            .filter_map(|&c| self.user(c).map(|u| (u.seq, u.name.as_str())))
            .collect();
        all.extend(self.shared.remote.iter().map(|(n, r)| (r.seq, n.as_str())));
        all.sort();
        all.into_iter().map(|(_, n)| n.to_string()).collect()
    }

    /// Hands the engine the change `conn` asked for, made from its
    /// session id.
    pub(super) fn propose_for(
        &mut self,
        conn: ConnId,
        out: &mut Vec<Effect>,
        proposal: impl FnOnce(String) -> Proposal,
    ) {
        let p = proposal(self.sid_of(conn));
        self.propose(Some(conn), p, out);
    }

    /// A login is proposed once at a time per connection; the connection is
    /// remembered by its session id until the log answers.
    pub(super) fn propose_login(&mut self, conn: ConnId, name: String, out: &mut Vec<Effect>) {
        let Some(addr) = self.session(conn).map(|s| s.addr.to_string()) else {
            return;
        };
        let sid = self.sid_of(conn);
        if self.shared().joining.contains_key(&sid) {
            let why = "Logging in already: wait for the answer.";
            out.push(Effect::Send(conn, Reply::server_message(why)));
            return;
        }
        self.shared().joining.insert(sid.clone(), conn);
        let p = Proposal::Login {
            name,
            sid,
            addr,
            restore: None,
        };
        self.propose(Some(conn), p, out);
    }

    /// The connection is gone: its user stays in the cluster's namespace
    /// (as if elsewhere) until the log says it left.
    pub(super) fn leave_cluster(&mut self, conn: ConnId, out: &mut Vec<Effect>) {
        let sid = self.sid_of(conn);
        // A login in flight that succeeds after all is logged out when its
        // event comes (no connection waits for it).
        self.shared().joining.remove(&sid);
        if let Some(user) = self.logout(conn) {
            let remote = Remote {
                seq: user.seq,
                muted: user.muted,
                addr: self
                    .session(conn)
                    .map(|s| s.addr.to_string())
                    .unwrap_or_default(),
            };
            let name = user.name;
            self.shared().remote.insert(name.clone(), remote);
            self.propose(Some(conn), Proposal::Logout { name, sid }, out);
        }
        if let Some(s) = self.sessions.get_mut(conn.0) {
            *s = None;
        }
    }

    /// Applies one event of the shared log.
    pub(super) fn apply(&mut self, event: Event, out: &mut Vec<Effect>) {
        match event {
            Event::Snapshot { users, admin } => self.load(users, admin),
            Event::Resync { users, admin } => {
                self.resync(users, admin, (EXPELLED, Departure::Lost), out)
            }
            Event::Rewound { users, admin } => {
                self.resync(users, admin, (LOGIN_UNDONE, Departure::Left), out)
            }
            Event::Reset => self.reset(out),
            Event::Fenced => self.fenced(out),
            Event::Join { user, admin, back } => {
                if back {
                    self.came_back(user, admin, out);
                } else {
                    self.joined(user, admin, out);
                }
            }
            Event::Leave {
                name,
                why,
                by,
                new_admin,
            } => self.left(name, why, by, new_admin, out),
            Event::Rename { old, new } => self.renamed(old, new, out),
            Event::Chat { name, message } => {
                if self.bridge.is_some() {
                    let (from, message) = (name.clone(), message.clone());
                    out.push(Effect::Lan(super::LanOut::Chat { from, message }));
                }
                let except = self.names.get(&name).copied();
                let reply = Reply::SendChatFromUser { name, message };
                let to = self.everyone_but(except);
                out.push(Effect::Broadcast { to, reply });
            }
            Event::Whisper { from, to, message } => {
                for name in to {
                    if let Some(&target) = self.names.get(&name) {
                        let reply = Reply::WhisperFromUser {
                            from: from.clone(),
                            message: message.clone(),
                        };
                        out.push(Effect::Send(target, reply));
                    }
                }
            }
            Event::Mute { name, by } => self.muted(name, by, true, out),
            Event::Unmute { name, by } => self.muted(name, by, false, out),
            Event::Admin { name, by } => {
                if let Some(by) = by {
                    self.admin_ok(&by, AdminCommand::SetAsAdmin, &name, out);
                }
                self.shared().admin = Some(name.clone());
                self.announce(out, format!("{name} is now the admin."));
            }
        }
    }

    /// What the cluster held when this node joined.
    fn load(&mut self, users: Vec<Member>, admin: Option<String>) {
        for m in users {
            self.shared()
                .remote
                .insert(m.name.clone(), Remote::from(&m));
        }
        self.shared().admin = admin;
    }

    /// Catches up after missing events: what differs from the snapshot is
    /// applied and announced, as the missed events would have been (this
    /// node's own users that the cluster no longer holds for them were
    /// logged out while it was away: they are closed, saying why).
    /// `lost`: what this node's users the cluster no longer holds are told,
    /// and how their departure is announced.
    fn resync(
        &mut self,
        users: Vec<Member>,
        admin: Option<String>,
        lost: (&str, Departure),
        out: &mut Vec<Effect>,
    ) {
        let node = self.shared().node.clone();
        let now: HashMap<&str, &Member> = users.iter().map(|m| (m.name.as_str(), m)).collect();
        let ours: Vec<(ConnId, String)> = self
            .members
            .iter()
            .filter_map(|&c| self.user(c).map(|u| (c, u.name.clone())))
            .collect();
        for (conn, name) in ours {
            let sid = self.sid_of(conn);
            match now.get(name.as_str()) {
                Some(m) if m.node == node && m.sid == sid => {
                    if let Some(u) = self.user_mut(conn) {
                        u.muted = m.muted;
                    }
                }
                _ => {
                    self.close(conn, lost.0, out);
                    self.announce(out, departure(&name, lost.1));
                }
            }
        }
        let mut gone: Vec<String> = self
            .shared()
            .remote
            .keys()
            .filter(|n| !now.contains_key(n.as_str()))
            .cloned()
            .collect();
        gone.sort();
        for name in gone {
            self.shared().remote.remove(&name);
            self.announce(out, departure(&name, Departure::Left));
        }
        for m in &users {
            if self.names.contains_key(&m.name) {
                continue;
            }
            let known = self.shared().remote.contains_key(&m.name);
            self.shared().remote.insert(m.name.clone(), Remote::from(m));
            if !known {
                self.announce(out, format!("{} joined the server.", m.name));
            }
        }
        if self.shared().admin != admin {
            self.shared().admin = admin.clone();
            if let Some(name) = admin {
                self.announce(out, format!("{name} is now the admin."));
            }
        }
    }

    /// This node can no longer hold its users' names: each is told and
    /// closed, and leaves as if they had disconnected (the logouts go out
    /// when the engine is back; until then the names stay listed).
    fn fenced(&mut self, out: &mut Vec<Effect>) {
        // A copy: each leave changes the members.
        let members: Vec<ConnId> = self.members.iter().copied().collect();
        for conn in members {
            out.push(Effect::Send(conn, Reply::disconnect(FENCED)));
            out.push(Effect::Close(conn));
            self.leave_cluster(conn, out);
        }
    }

    /// Tells the admin `by`, if they are here, that their command worked.
    fn admin_ok(&self, by: &str, command: AdminCommand, target: &str, out: &mut Vec<Effect>) {
        if let Some(&admin) = self.names.get(by) {
            let reply = Reply::Admin {
                command,
                name: target.to_string(),
                status: Status::Ok,
            };
            out.push(Effect::Send(admin, reply));
        }
    }

    fn joined(&mut self, m: Member, admin: bool, out: &mut Vec<Effect>) {
        let shared = &mut self.shared;
        let ours = m.node == shared.node;
        let waiting = if ours {
            shared.joining.remove(&m.sid)
        } else {
            None
        };
        let conn = waiting.filter(|&c| self.sid_of(c) == m.sid);
        let name = m.name.clone();
        // After Redis came back empty, a user this node still lists (from
        // before) may log in afresh: already announced, and not to be
        // announced gone when the wait ends.
        let listed = self
            .shared()
            .stale
            .as_mut()
            .is_some_and(|s| s.remove(&name));
        match conn {
            Some(conn) => self.log_in(conn, &m, out),
            None => {
                self.shared().remote.insert(name.clone(), Remote::from(&m));
            }
        }
        let joined = format!("{name} joined the server.");
        match conn {
            Some(conn) if listed => out.push(Effect::Send(conn, Reply::server_message(&joined))),
            _ if listed => {}
            _ => self.announce(out, joined),
        }
        if admin {
            self.shared().admin = Some(name.clone());
            if let Some(conn) = conn {
                let you = Reply::server_message("You are the admin.");
                out.push(Effect::Send(conn, you));
            }
        }
        if ours && conn.is_none() {
            // Its connection left while the login was in flight.
            let p = Proposal::Logout { name, sid: m.sid };
            self.propose(None, p, out);
        }
    }

    /// `conn` is logged in as `m.name`, as the log says.
    fn log_in(&mut self, conn: ConnId, m: &Member, out: &mut Vec<Effect>) {
        self.names.insert(m.name.clone(), conn);
        let slot = self.members.len();
        std::rc::Rc::make_mut(&mut self.members).push(conn);
        if let Some(Some(s)) = self.sessions.get_mut(conn.0) {
            s.user = Some(User {
                name: m.name.clone(),
                seq: m.seq,
                muted: false,
                slot,
            });
        }
        let reply = Reply::AssignUsername {
            name: m.name.clone(),
            status: Status::Ok,
        };
        out.push(Effect::Send(conn, reply));
    }

    fn left(
        &mut self,
        name: String,
        why: Departure,
        by: Option<String>,
        new_admin: Option<String>,
        out: &mut Vec<Effect>,
    ) {
        if let Some(by) = &by {
            self.admin_ok(by, AdminCommand::KickUser, &name, out);
        }
        if let Some(&conn) = self.names.get(&name) {
            let reason = match why {
                Departure::Kicked => KICKED,
                Departure::Lost => EXPELLED,
                Departure::Left => "Logged out.",
            };
            self.close(conn, reason, out);
        } else {
            self.shared().remote.remove(&name);
        }
        if let Some(stale) = self.shared().stale.as_mut() {
            stale.remove(&name);
        }
        self.announce(out, departure(&name, why));
        if self.shared().admin.as_deref() == Some(name.as_str()) {
            self.shared().admin = None;
        }
        if let Some(next) = new_admin {
            self.shared().admin = Some(next.clone());
            self.announce(out, format!("{next} is now the admin."));
        }
    }

    fn renamed(&mut self, old: String, new: String, out: &mut Vec<Effect>) {
        if let Some(conn) = self.names.remove(&old) {
            self.names.insert(new.clone(), conn);
            if let Some(u) = self.user_mut(conn) {
                u.name = new.clone();
            }
            let reply = Reply::SetUsername {
                name: new.clone(),
                status: Status::Ok,
            };
            out.push(Effect::Send(conn, reply));
        } else if let Some(r) = self.shared().remote.remove(&old) {
            self.shared().remote.insert(new.clone(), r);
        }
        if self.shared().admin.as_deref() == Some(old.as_str()) {
            self.shared().admin = Some(new.clone());
        }
        self.announce(out, format!("{old} has changed username to {new}."));
    }

    fn muted(&mut self, name: String, by: String, mute: bool, out: &mut Vec<Effect>) {
        let command = if mute {
            AdminCommand::MuteUser
        } else {
            AdminCommand::UnmuteUser
        };
        self.admin_ok(&by, command, &name, out);
        if let Some(&conn) = self.names.get(&name) {
            if let Some(u) = self.user_mut(conn) {
                u.muted = mute;
            }
        } else if let Some(r) = self.shared().remote.get_mut(&name) {
            r.muted = mute;
        }
        let verb = if mute { "muted" } else { "unmuted" };
        self.announce(out, format!("{name} has been {verb}."));
    }

    /// Redis came back empty: register this node's users again (with the
    /// login order and admin role they had), and wait for the others' to
    /// come back through the new log; [`Chat::settle`] ends the wait.
    fn reset(&mut self, out: &mut Vec<Effect>) {
        let shared = &mut self.shared;
        // A login in flight may have been carried out in the Redis that is
        // gone, its event unread: nothing holds the name now, and no
        // answer would come. Each is told so.
        for (_, conn) in shared.joining.drain() {
            out.push(Effect::Send(conn, Reply::server_message(LOGIN_RESET)));
        }
        shared.stale = Some(shared.remote.keys().cloned().collect());
        let admin = shared.admin.clone();
        let mut again = Vec::new();
        for &conn in self.members.iter() {
            let Some(user) = self.user(conn) else {
                continue;
            };
            let was_admin = admin.as_deref() == Some(user.name.as_str());
            let p = Proposal::Login {
                name: user.name.clone(),
                sid: self.sid_of(conn),
                addr: self
                    .session(conn)
                    .map(|s| s.addr.to_string())
                    .unwrap_or_default(),
                restore: Some((user.seq, was_admin)),
            };
            again.push((conn, p));
        }
        for (conn, p) in again {
            self.propose(Some(conn), p, out);
        }
    }

    /// A user registered again after Redis came back empty: nobody is told,
    /// unless this node had not known them.
    fn came_back(&mut self, m: Member, admin: bool, out: &mut Vec<Effect>) {
        let shared = &mut self.shared;
        let known = shared.stale.as_mut().is_some_and(|s| s.remove(&m.name));
        let ours = m.node == shared.node && self.names.contains_key(&m.name);
        if !ours {
            self.shared()
                .remote
                .insert(m.name.clone(), Remote::from(&m));
            if !known {
                self.announce(out, format!("{} joined the server.", m.name));
            }
        }
        if admin && self.shared().admin.as_deref() != Some(m.name.as_str()) {
            self.shared().admin = Some(m.name.clone());
            self.announce(out, format!("{} is now the admin.", m.name));
        }
    }

    /// The wait after Redis came back empty is over: whoever did not come
    /// back is gone, and if the admin is among them, the earliest login
    /// takes over.
    pub(super) fn settle(&mut self, out: &mut Vec<Effect>) {
        let Some(stale) = self.shared.stale.take() else {
            return;
        };
        let mut gone: Vec<String> = stale.into_iter().collect();
        gone.sort();
        for name in gone {
            self.shared().remote.remove(&name);
            self.announce(out, departure(&name, Departure::Left));
        }
        let admin = self.shared().admin.clone();
        let present = admin
            .as_ref()
            .is_some_and(|a| self.names.contains_key(a) || self.shared().remote.contains_key(a));
        if !present {
            self.shared().admin = None;
            self.propose(None, Proposal::Elect, out);
        }
    }

    /// The engine turned a proposal down: tell the client that asked.
    pub(super) fn refused(
        &mut self,
        conn: ConnId,
        p: Proposal,
        why: Refusal,
        out: &mut Vec<Effect>,
    ) {
        let own_sid = self.session(conn).map(|_| self.sid_of(conn));
        let current = |sid: &str| own_sid.as_deref() == Some(sid);
        let send = |out: &mut Vec<Effect>, reply| out.push(Effect::Send(conn, reply));
        let say = |out: &mut Vec<Effect>, text: &str| send(out, Reply::server_message(text));
        match p {
            Proposal::Login {
                name, sid, restore, ..
            } => {
                if !current(&sid) {
                    return;
                }
                self.shared().joining.remove(&sid);
                if restore.is_some() {
                    // Its name is not held for it (or may not be): it
                    // cannot stay logged in under it.
                    let why = if why == Refusal::Taken {
                        NAME_LOST
                    } else {
                        RESTORE_LOST
                    };
                    if let Some(user) = self.close(conn, why, out) {
                        self.announce(out, departure(&user.name, Departure::Left));
                    }
                    return;
                }
                match why {
                    Refusal::Taken => send(
                        out,
                        Reply::AssignUsername {
                            name,
                            status: Status::DuplicateError,
                        },
                    ),
                    _ => say(out, unavailable(&why)),
                }
            }
            Proposal::Rename { new, sid, .. } if current(&sid) => match why {
                Refusal::Taken | Refusal::Same => {
                    let status = if why == Refusal::Taken {
                        Status::DuplicateError
                    } else {
                        Status::Ok
                    };
                    send(out, Reply::SetUsername { name: new, status })
                }
                Refusal::Gone => {}
                _ => say(out, unavailable(&why)),
            },
            Proposal::Chat { sid, .. } | Proposal::Whisper { sid, .. } if current(&sid) => {
                match why {
                    Refusal::Muted => say(out, "You are muted."),
                    Refusal::Missing(names) => {
                        for name in names {
                            say(out, &format!("UserDoesNotExist: {name}"));
                        }
                    }
                    Refusal::Gone => {}
                    _ => say(out, unavailable(&why)),
                }
            }
            Proposal::Admin {
                sid,
                command,
                target,
                ..
            } if current(&sid) => match why {
                Refusal::Admin(status) => send(
                    out,
                    Reply::Admin {
                        command,
                        name: target,
                        status,
                    },
                ),
                _ => say(out, unavailable(&why)),
            },
            _ => {}
        }
    }
}

fn unavailable(why: &Refusal) -> &'static str {
    match why {
        Refusal::Unknown => UNKNOWN,
        Refusal::OutOfMemory => OUT_OF_MEMORY,
        _ => UNAVAILABLE,
    }
}

#[cfg(test)]
mod tests;
