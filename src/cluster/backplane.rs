//! The Redis engine of a cluster node, with no I/O: it turns the chat's
//! [`Proposal`]s into scripts on one Redis connection (`commands`), follows
//! the event stream on another (`reader`: a blocking `XREAD` cannot share a
//! connection with commands), keeps the node's lease alive, and notices
//! when Redis came back empty (its epoch changed). The loop around it
//! (`server::cluster`) connects the two sockets, moves bytes, and calls
//! [`Backplane::handle_lost`] when either breaks; time comes in as arguments.
//!
//! Order of a node's life: `handle_connected` → hello (reap the dead, take the
//! lease, learn the epoch and where the stream ends) → up: proposals go
//! out, events come in, a tick every third of the lease renews it and
//! reaps dead nodes. `handle_lost` fails what was in flight and waits for
//! the next `handle_connected`. Driven in the project's one style:
//! `handle_*` in (bytes, time, proposals), `poll_*` out (outputs for the
//! loop, bytes to transmit on each link, when to wake it).

use super::redis::{Connection, Reply};
use super::scripts;
use super::{Departure, Event, Member, Proposal, Refusal};
use crate::chat::ConnId;
use crate::protocol::Status;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Events asked for in one read.
const READ_COUNT: usize = 1000;
/// How long one read waits for an event before it is asked again.
const READ_BLOCK_MS: u64 = 1000;
/// Renewals per lease: several, so that one slow answer does not fence.
const TICKS_PER_LEASE: u32 = 6;

/// The margin between a node's fence and its reaping, as a part of the
/// lease: the node stops holding its users' names at (last confirmed
/// renewal + lease - margin) by its own clock; the others may reap it at
/// (its last renewal + lease + margin) in Redis's time, time Redis was not
/// serving not counted. Its renewal reaches Redis after the node sent it,
/// so the fence always comes first (by two margins, for clocks that run at
/// slightly different rates and a loop that is late).
fn margin(lease: Duration) -> Duration {
    lease / 4
}

/// How long after its last renewal a node may be reaped (and a restarted
/// node with the same id must wait).
pub fn reap_after(lease: Duration) -> Duration {
    lease + margin(lease)
}

/// Why a node that fenced itself is not serving, for `/healthz`.
const FENCED: &str = "fenced: this node could not renew its lease in the cluster's Redis in time";

/// One of the node's two Redis connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Commands,
    Reader,
}

/// What the engine has for the loop.
#[derive(Debug)]
pub enum Output {
    /// Apply to the chat.
    Event(Event),
    /// Tell the client.
    Refused(Option<ConnId>, Proposal, Refusal),
    /// The node cannot go on (its id is in use by a live node).
    Fatal(String),
    /// Something the log should say, at warn level.
    Warn(String),
    /// Joined (or rejoined) the cluster; at info level.
    Up(String),
}

enum Tag {
    /// A `SCRIPT LOAD`.
    Load,
    Hello,
    Tick,
    Propose(Option<ConnId>, Proposal),
}

/// What the stream connection was asked.
enum Read {
    Events,
    /// The whole state, after events were trimmed before this node read
    /// them.
    Snapshot,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Down,
    Greeting,
    Up,
}

pub struct Backplane {
    node: String,
    lease: Duration,
    /// The life of Redis this node knows (none before the first hello).
    epoch: Option<String>,
    /// The last event applied.
    last_id: String,
    /// The stream index of the next event to apply (events ever added
    /// before it): when more than that many were trimmed, this node missed
    /// some.
    position: u64,
    /// Events were missed: catch up from a snapshot before reading on.
    resync: bool,
    /// ... because Redis lost events this node had applied (a failover).
    rewound: bool,
    commands: Connection<Tag>,
    reader: Connection<Read>,
    phase: Phase,
    out: VecDeque<Output>,
    /// Logouts that could not be sent while Redis was away: a name must
    /// not stay held, so they go out once it is back.
    logouts: Vec<Proposal>,
    next_tick: Option<Instant>,
    /// When the unanswered tick (or hello) was sent.
    tick_sent: Option<Instant>,
    /// When the last renewal Redis confirmed was sent: the lease holds
    /// until at least a lease after that. None before the first hello and
    /// once fenced.
    renewed: Option<Instant>,
    /// The lease may have run out: the node gave up its users' names.
    fenced: bool,
}

impl Backplane {
    pub fn new(node: &str, lease: Duration) -> Backplane {
        Backplane {
            node: node.to_string(),
            lease,
            epoch: None,
            last_id: "0-0".into(),
            position: 0,
            resync: false,
            rewound: false,
            commands: Connection::default(),
            reader: Connection::default(),
            phase: Phase::Down,
            out: VecDeque::new(),
            logouts: Vec::new(),
            next_tick: None,
            tick_sent: None,
            renewed: None,
            fenced: false,
        }
    }

    /// Why the node cannot serve now (no Redis, or fenced), if it cannot.
    pub fn health(&self) -> Option<&'static str> {
        match self.phase {
            Phase::Up => None,
            _ if self.fenced => Some(FENCED),
            _ => Some("no connection to the cluster's Redis"),
        }
    }

    /// The lease as the scripts keep it.
    fn script_lease(&self) -> scripts::Lease {
        scripts::Lease {
            reap_after_ms: reap_after(self.lease).as_millis() as u64,
            pause_ms: (self.lease / 2).as_millis() as u64,
        }
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Proposals can be sent.
    pub fn is_up(&self) -> bool {
        self.phase == Phase::Up
    }

    /// Both connections are open: greet Redis.
    pub fn handle_connected(&mut self, now: Instant) {
        self.commands = Connection::default();
        self.reader = Connection::default();
        let epoch = new_epoch(&self.node);
        let lease = self.script_lease();
        // Before its first hello succeeds the node is starting afresh: a
        // live node with its id is then an error.
        let fresh = self.epoch.is_none();
        scripts::load(&mut self.commands, || Tag::Load);
        scripts::hello(
            &mut self.commands,
            Tag::Hello,
            &self.node,
            lease,
            fresh,
            &epoch,
        );
        self.phase = Phase::Greeting;
        self.tick_sent = Some(now);
        self.next_tick = None;
    }

    /// A connection broke (or Redis stopped answering): what was in flight
    /// may or may not have been carried out; say so, and wait for the
    /// next [`Backplane::connected`].
    pub fn handle_lost(&mut self) {
        let waiting = std::mem::take(&mut self.commands);
        self.reader = Connection::default();
        self.phase = Phase::Down;
        self.next_tick = None;
        self.tick_sent = None;
        for tag in waiting.into_waiting() {
            if let Tag::Propose(conn, p) = tag {
                self.refuse(conn, p, Refusal::Unknown);
            }
        }
    }

    /// Hands a proposal to Redis, or refuses it at once while Redis is
    /// away (a logout is kept until it is back).
    pub fn propose(&mut self, conn: Option<ConnId>, p: Proposal) {
        if self.phase != Phase::Up {
            self.refuse(conn, p, Refusal::Unavailable);
            return;
        }
        self.send(conn, p);
    }

    fn refuse(&mut self, conn: Option<ConnId>, p: Proposal, why: Refusal) {
        if matches!(p, Proposal::Logout { .. }) {
            self.logouts.push(p);
        } else {
            self.out.push_back(Output::Refused(conn, p, why));
        }
    }

    fn send(&mut self, conn: Option<ConnId>, p: Proposal) {
        let c = &mut self.commands;
        let node = self.node.as_str();
        match &p {
            Proposal::Login {
                name,
                sid,
                addr,
                restore,
            } => {
                let login = scripts::Login {
                    node,
                    sid,
                    addr,
                    restore: *restore,
                };
                scripts::login(c, Tag::Propose(conn, p.clone()), name, &login);
            }
            Proposal::Rename { old, new, sid } => {
                scripts::rename(c, Tag::Propose(conn, p.clone()), old, new, sid)
            }
            Proposal::Chat { name, sid, message } => {
                scripts::chat(c, Tag::Propose(conn, p.clone()), name, sid, message)
            }
            Proposal::Whisper {
                from,
                sid,
                to,
                message,
            } => {
                let to: Vec<&str> = to.iter().map(String::as_str).collect();
                scripts::whisper(c, Tag::Propose(conn, p.clone()), from, sid, &to, message)
            }
            Proposal::Admin {
                by,
                sid,
                command,
                target,
            } => scripts::admin_command(
                c,
                Tag::Propose(conn, p.clone()),
                by,
                sid,
                command.mtp(),
                target,
            ),
            Proposal::Logout { name, sid } => {
                scripts::logout(c, Tag::Propose(conn, p.clone()), name, sid, "left")
            }
            Proposal::Elect => scripts::elect(c, Tag::Propose(conn, p)),
        }
    }

    /// The next thing for the loop.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Bytes to write to `link`.
    pub fn poll_transmit(&self, link: Link) -> &[u8] {
        match link {
            Link::Commands => self.commands.output(),
            Link::Reader => self.reader.output(),
        }
    }

    pub fn transmitted(&mut self, link: Link, n: usize) {
        match link {
            Link::Commands => self.commands.written(n),
            Link::Reader => self.reader.written(n),
        }
    }

    /// Bytes read from `link`. An error means the connection cannot be
    /// used any more: drop both and call [`Backplane::handle_lost`].
    pub fn handle_input(&mut self, link: Link, bytes: &[u8], now: Instant) -> Result<(), String> {
        match link {
            Link::Commands => {
                self.commands.feed(bytes);
                while let Some((tag, reply)) = self.commands.next_reply()? {
                    self.on_reply(tag, reply, now)?;
                }
            }
            Link::Reader => {
                self.reader.feed(bytes);
                while let Some((read, reply)) = self.reader.next_reply()? {
                    match read {
                        Read::Events => self.on_events(reply)?,
                        Read::Snapshot => self.on_snapshot(reply)?,
                    }
                    self.read_more();
                }
            }
        }
        Ok(())
    }

    /// When [`Backplane::handle_timeout`] wants to run next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let silent = self.tick_sent.map(|t| t + self.lease);
        let fence = self.fence_at();
        [self.next_tick, silent, fence].into_iter().flatten().min()
    }

    /// When the node must stop holding its users' names, unless Redis
    /// confirms a renewal first.
    fn fence_at(&self) -> Option<Instant> {
        self.renewed.map(|r| r + self.lease - margin(self.lease))
    }

    /// Renews the lease when it is time; an error when Redis has not
    /// answered for a whole lease (drop the connections: they are dead).
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), String> {
        if self.fence_at().is_some_and(|t| now >= t) {
            return Err(self.fence());
        }
        if let Some(sent) = self.tick_sent {
            if now >= sent + self.lease {
                return Err(format!(
                    "Redis did not answer for {} ms",
                    self.lease.as_millis()
                ));
            }
        }
        if self.phase == Phase::Up && self.next_tick.is_some_and(|t| now >= t) {
            self.next_tick = Some(now + self.lease / TICKS_PER_LEASE);
            if self.tick_sent.is_none() {
                self.tick_sent = Some(now);
                let (lease, epoch) = (self.script_lease(), self.epoch.as_deref());
                scripts::tick(
                    &mut self.commands,
                    Tag::Tick,
                    &self.node,
                    lease,
                    epoch.unwrap_or(""),
                );
            }
        }
        Ok(())
    }

    /// The lease may run out before Redis confirms a renewal (the node is
    /// cut off, or Redis is not serving: from here the two look alike):
    /// the node gives up its users' names before anyone may reap them,
    /// and tells them ([`Event::Fenced`]); the connections are dropped
    /// (the returned reason) and made again. Their logouts go out when
    /// Redis is back.
    fn fence(&mut self) -> String {
        self.renewed = None;
        self.fenced = true;
        self.out.push_back(Output::Event(Event::Fenced));
        format!(
            "no renewal of this node's lease confirmed for {} ms: it gave up its users' names \
             (fenced) before the others may reap them",
            (self.lease - margin(self.lease)).as_millis()
        )
    }

    fn on_reply(&mut self, tag: Tag, reply: Reply, now: Instant) -> Result<(), String> {
        if let Reply::Error(e) = &reply {
            if scripts::is_no_script(e) {
                return self.load_and_resend(tag);
            }
            if scripts::is_read_only(e) {
                if let Tag::Propose(conn, p) = tag {
                    self.refuse(conn, p, Refusal::Unavailable);
                }
                return Err(format!("Redis is a replica now ({e}): finding the master"));
            }
            // The kind only: a chat's text is not logged.
            let what = match &tag {
                Tag::Load => "script load",
                Tag::Hello => "hello",
                Tag::Tick => "tick",
                Tag::Propose(_, p) => p.kind(),
            };
            self.out
                .push_back(Output::Warn(format!("Redis refused the {what}: {e}")));
            return match tag {
                Tag::Propose(conn, p) => {
                    let why = if scripts::is_out_of_memory(e) {
                        Refusal::OutOfMemory
                    } else {
                        Refusal::Unknown
                    };
                    self.refuse(conn, p, why);
                    Ok(())
                }
                // A renewal refused (out of memory, say) is tried again at
                // the next tick; only the fence ends the node's hold.
                Tag::Tick => {
                    self.tick_sent = None;
                    Ok(())
                }
                Tag::Load | Tag::Hello => Err(format!("Redis refused the {what}: {e}")),
            };
        }
        let words = strings(&reply);
        match tag {
            Tag::Load => {}
            Tag::Hello => self.on_hello(reply, now)?,
            Tag::Tick => {
                let sent = self.tick_sent.take();
                if words.first().map(String::as_str) == Some("reset") {
                    return Err("Redis lost its data (its epoch changed)".into());
                }
                self.renewed = sent.or(self.renewed);
                self.check_trimmed(words.get(2));
            }
            Tag::Propose(conn, p) => {
                if let Some(why) = refusal(&p, &words) {
                    self.refuse(conn, p, why);
                }
            }
        }
        Ok(())
    }

    /// Redis answered `NOSCRIPT` (its script cache was flushed): nothing
    /// was run. The scripts are loaded again, then a proposal is sent
    /// again after them on the same connection; a tick is sent at the next
    /// one.
    fn load_and_resend(&mut self, tag: Tag) -> Result<(), String> {
        scripts::load(&mut self.commands, || Tag::Load);
        match tag {
            Tag::Propose(conn, p) => self.send(conn, p),
            Tag::Tick => self.tick_sent = None,
            Tag::Hello | Tag::Load => return Err("Redis lost the scripts during the hello".into()),
        }
        Ok(())
    }

    fn on_hello(&mut self, reply: Reply, now: Instant) -> Result<(), String> {
        let sent = self.tick_sent.take();
        let Reply::Array(parts) = reply else {
            return Err(format!("unexpected hello reply {reply:?}"));
        };
        let word = |i: usize| parts.get(i).map(text).unwrap_or_default();
        if word(0) == "inuse" {
            self.out.push_back(Output::Fatal(format!(
                "another live node has the id {:?}: give this one another --node-id",
                self.node
            )));
            return Ok(());
        }
        let epoch = word(0);
        match self.epoch.as_deref() {
            None => {
                let (users, admin) = self.take_state(parts.get(1..).unwrap_or_default());
                self.out
                    .push_back(Output::Event(Event::Snapshot { users, admin }));
                self.out
                    .push_back(Output::Up(format!("node {} joined the cluster", self.node)));
            }
            Some(known) if known == epoch => {
                self.check_behind(word(4).parse().unwrap_or(0));
                self.check_trimmed(parts.get(5).map(text).as_ref());
                self.out.push_back(Output::Up(format!(
                    "node {} is back in the cluster",
                    self.node
                )));
            }
            Some(_) => {
                self.logouts.clear();
                self.last_id = "0-0".into();
                self.position = 0;
                self.resync = false;
                self.rewound = false;
                self.out.push_back(Output::Warn(
                    "Redis came back empty: registering this node's users again".into(),
                ));
                self.out.push_back(Output::Event(Event::Reset));
                self.out.push_back(Output::Up(format!(
                    "node {} is back in the cluster",
                    self.node
                )));
            }
        }
        self.epoch = Some(epoch);
        self.phase = Phase::Up;
        self.renewed = sent;
        self.fenced = false;
        self.next_tick = Some(now + self.lease / TICKS_PER_LEASE);
        for p in std::mem::take(&mut self.logouts) {
            self.send(None, p);
        }
        self.read_more();
        Ok(())
    }

    /// Events up to `trimmed` were trimmed from the stream: if this node
    /// had not read them all, it catches up from a snapshot.
    fn check_trimmed(&mut self, trimmed: Option<&String>) {
        let trimmed: u64 = trimmed.and_then(|t| t.parse().ok()).unwrap_or(0);
        if trimmed > self.position && !self.resync {
            self.resync = true;
            self.out.push_back(Output::Warn(format!(
                "{} events were trimmed from the stream before this node read them: \
                 catching up from a snapshot",
                trimmed - self.position
            )));
        }
    }

    /// The stream has had fewer events added than this node has read: this
    /// Redis is a replica promoted by a failover, and the last events did
    /// not reach it (replication is asynchronous). The node catches up from
    /// a snapshot of what this Redis holds.
    fn check_behind(&mut self, added: u64) {
        if added < self.position && !self.resync {
            self.resync = true;
            self.rewound = true;
            self.out.push_back(Output::Warn(format!(
                "the stream lacks {} events this node read (a failover lost them): \
                 catching up from a snapshot",
                self.position - added
            )));
        }
    }

    /// Asks the stream connection for what comes next: a snapshot if
    /// events were missed, else the events after the last one applied.
    fn read_more(&mut self) {
        if self.phase != Phase::Up || self.reader.in_flight() > 0 {
            return;
        }
        if self.resync {
            scripts::snapshot(&mut self.reader, Read::Snapshot);
        } else {
            scripts::read_events(
                &mut self.reader,
                Read::Events,
                &self.last_id,
                READ_COUNT,
                READ_BLOCK_MS,
            );
        }
    }

    /// The state as a snapshot has it replaces what was missed; reading
    /// goes on after the snapshot's last event.
    fn on_snapshot(&mut self, reply: Reply) -> Result<(), String> {
        let Reply::Array(parts) = reply else {
            return Err(format!("unexpected snapshot reply {reply:?}"));
        };
        let (users, admin) = self.take_state(&parts);
        self.resync = false;
        let e = if std::mem::take(&mut self.rewound) {
            Event::Rewound { users, admin }
        } else {
            Event::Resync { users, admin }
        };
        self.out.push_back(Output::Event(e));
        Ok(())
    }

    /// The state a hello or a snapshot returns, `{last event id, admin,
    /// users, entries added}`: reading goes on after that event, at that
    /// stream index; the users and admin are for the chat.
    fn take_state(&mut self, parts: &[Reply]) -> (Vec<Member>, Option<String>) {
        let word = |i: usize| parts.get(i).map(text).unwrap_or_default();
        self.last_id = word(0);
        self.position = word(3).parse().unwrap_or(0);
        let admin = Some(word(1)).filter(|a| !a.is_empty());
        (parts.get(2).map(members).unwrap_or_default(), admin)
    }

    /// An `XREAD` reply: nothing (it timed out) or the entries after
    /// `last_id`.
    fn on_events(&mut self, reply: Reply) -> Result<(), String> {
        let streams = match reply {
            Reply::Null => return Ok(()),
            Reply::Array(s) => s,
            Reply::Error(e) => return Err(format!("reading the event stream: {e}")),
            other => return Err(format!("unexpected XREAD reply {other:?}")),
        };
        for stream in streams {
            let Reply::Array(mut kv) = stream else {
                continue;
            };
            let Some(Reply::Array(entries)) = kv.pop() else {
                continue;
            };
            for entry in entries {
                let Reply::Array(parts) = entry else { continue };
                let (Some(id), Some(fields)) = (parts.first(), parts.get(1)) else {
                    continue;
                };
                self.last_id = text(id);
                self.position += 1;
                let fields = strings(fields);
                if let Some(line) = node_lost(&fields) {
                    self.out.push_back(Output::Warn(line));
                    continue;
                }
                match event(&fields) {
                    Some(e) => self.out.push_back(Output::Event(e)),
                    None => self.out.push_back(Output::Warn(format!(
                        "an event this node cannot read: {fields:?}"
                    ))),
                }
            }
        }
        Ok(())
    }
}

/// The value of `key` in a stream entry's field/value list.
fn field<'a>(fields: &'a [String], key: &str) -> Option<&'a str> {
    fields
        .chunks(2)
        .find(|kv| kv.len() == 2 && kv[0] == key)
        .map(|kv| kv[1].as_str())
}

/// The log line for a `nodelost` entry: another node stopped renewing its
/// lease and was reaped (its users' departures follow as events).
fn node_lost(fields: &[String]) -> Option<String> {
    let get = |key| field(fields, key);
    (get("ev")? == "nodelost").then(|| {
        let node = get("node").unwrap_or("?");
        let users = match get("users").unwrap_or("?") {
            "1" => "its one user leaves".to_string(),
            n => format!("its {n} users leave"),
        };
        format!("node {node} was lost (it stopped renewing its lease): {users} the chat")
    })
}

/// What a script's answer means for the proposal, if it was refused.
fn refusal(p: &Proposal, words: &[String]) -> Option<Refusal> {
    let first = words.first().map(String::as_str).unwrap_or("");
    match first {
        "taken" => return Some(Refusal::Taken),
        "same" => return Some(Refusal::Same),
        "muted" => return Some(Refusal::Muted),
        "gone" if !matches!(p, Proposal::Logout { .. }) => return Some(Refusal::Gone),
        _ => {}
    }
    match p {
        Proposal::Whisper { .. } if words.len() > 1 => Some(Refusal::Missing(words[1..].to_vec())),
        Proposal::Admin { .. } => match Status::parse(first) {
            Some(Status::Ok) => None,
            Some(status) => Some(Refusal::Admin(status)),
            None => Some(Refusal::Unknown),
        },
        _ => None,
    }
}

/// An epoch id for Redis's life, should this node be the first to see it.
fn new_epoch(node: &str) -> String {
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    format!("{node}-{wall}")
}

fn text(r: &Reply) -> String {
    match r {
        Reply::BulkString(b) | Reply::SimpleString(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Integer(i) => i.to_string(),
        Reply::Error(e) => e.to_string(),
        _ => String::new(),
    }
}

fn strings(r: &Reply) -> Vec<String> {
    match r {
        Reply::Array(a) => a.iter().map(text).collect(),
        other => vec![text(other)],
    }
}

/// The users of a hello reply.
fn members(r: &Reply) -> Vec<Member> {
    let Reply::Array(rows) = r else {
        return Vec::new();
    };
    rows.iter()
        .map(strings)
        .filter(|u| u.len() >= 6)
        .map(|u| Member {
            name: u[0].clone(),
            node: u[1].clone(),
            sid: u[2].clone(),
            seq: u[3].parse().unwrap_or(0),
            muted: u[4] == "1",
            addr: u[5].clone(),
        })
        .collect()
}

/// An event from its stream fields (`ev`, kind, then name/value pairs).
pub fn event(fields: &[String]) -> Option<Event> {
    let get = |key| field(fields, key).map(str::to_string);
    let some = |v: Option<String>| v.filter(|s| !s.is_empty());
    let kind = get("ev")?;
    Some(match kind.as_str() {
        "join" => Event::Join {
            user: Member {
                name: get("name")?,
                node: get("node")?,
                sid: get("sid")?,
                seq: get("seq")?.parse().ok()?,
                muted: false,
                addr: get("addr").unwrap_or_default(),
            },
            admin: get("admin")? == "1",
            back: get("back").as_deref() == Some("1"),
        },
        "leave" => Event::Leave {
            name: get("name")?,
            why: match get("why")?.as_str() {
                "kicked" => Departure::Kicked,
                "lost" => Departure::Lost,
                _ => Departure::Left,
            },
            by: some(get("by")),
            new_admin: some(get("admin")),
        },
        "rename" => Event::Rename {
            old: get("old")?,
            new: get("new")?,
        },
        "chat" => Event::Chat {
            name: get("name")?,
            message: get("message")?,
        },
        "whisper" => Event::Whisper {
            from: get("from")?,
            to: get("to")?.split(' ').map(str::to_string).collect(),
            message: get("message")?,
        },
        "mute" => Event::Mute {
            name: get("name")?,
            by: get("by")?,
        },
        "unmute" => Event::Unmute {
            name: get("name")?,
            by: get("by")?,
        },
        "admin" => Event::Admin {
            name: get("name")?,
            by: some(get("by")),
        },
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Answers the script loads a new connection starts with, then the
    /// hello with `hello`.
    fn greet(b: &mut Backplane, hello: &[u8], now: Instant) {
        let loads = b.commands.in_flight() - 1;
        b.handle_input(Link::Commands, "+sha\r\n".repeat(loads).as_bytes(), now)
            .unwrap();
        b.handle_input(Link::Commands, hello, now).unwrap();
    }

    /// A hello answer: epoch e1, an empty stream, no admin, no users.
    const HELLO_E1: &[u8] = b"*4\r\n$2\r\ne1\r\n$3\r\n0-0\r\n$0\r\n\r\n*0\r\n";

    /// A backplane up (greeted with [`HELLO_E1`]) with what it had for the
    /// loop taken.
    fn up(lease: Duration) -> (Backplane, Instant) {
        let mut b = Backplane::new("n1", lease);
        let now = Instant::now();
        b.handle_connected(now);
        greet(&mut b, HELLO_E1, now);
        while b.poll_output().is_some() {}
        (b, now)
    }

    fn a_chat() -> Proposal {
        Proposal::Chat {
            name: "a".into(),
            sid: "s".into(),
            message: "m".into(),
        }
    }

    fn words(w: &[&str]) -> Vec<String> {
        w.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stream_fields_become_events() {
        let e = event(&words(&[
            "ev", "leave", "name", "bob", "why", "kicked", "admin", "", "by", "ana",
        ]));
        assert_eq!(
            e,
            Some(Event::Leave {
                name: "bob".into(),
                why: Departure::Kicked,
                by: Some("ana".into()),
                new_admin: None,
            })
        );
        let e = event(&words(&[
            "ev", "whisper", "from", "a", "to", "b c", "message", "hi there",
        ]));
        assert_eq!(
            e,
            Some(Event::Whisper {
                from: "a".into(),
                to: words(&["b", "c"]),
                message: "hi there".into(),
            })
        );
        assert_eq!(event(&words(&["ev", "nonsense"])), None);
        assert_eq!(event(&words(&["ev", "join", "name", "x"])), None);
    }

    #[test]
    fn script_answers_become_refusals() {
        let whisper = Proposal::Whisper {
            from: "a".into(),
            sid: "s".into(),
            to: words(&["b", "ghost"]),
            message: "m".into(),
        };
        assert_eq!(refusal(&whisper, &words(&["ok"])), None);
        assert_eq!(
            refusal(&whisper, &words(&["ok", "ghost"])),
            Some(Refusal::Missing(words(&["ghost"])))
        );
        let admin = Proposal::Admin {
            by: "a".into(),
            sid: "s".into(),
            command: crate::protocol::AdminCommand::MuteUser,
            target: "b".into(),
        };
        assert_eq!(refusal(&admin, &words(&["OK"])), None);
        assert_eq!(
            refusal(&admin, &words(&["UserAlreadyMuted"])),
            Some(Refusal::Admin(Status::UserAlreadyMuted))
        );
    }

    #[test]
    fn while_down_proposals_are_refused_and_logouts_kept() {
        let mut b = Backplane::new("n1", Duration::from_secs(3));
        let chat = a_chat();
        b.propose(Some(ConnId(7)), chat.clone());
        b.propose(
            Some(ConnId(8)),
            Proposal::Logout {
                name: "a".into(),
                sid: "s".into(),
            },
        );
        assert!(matches!(
            b.poll_output(),
            Some(Output::Refused(Some(ConnId(7)), p, Refusal::Unavailable)) if p == chat
        ));
        assert!(b.poll_output().is_none(), "the logout waits for Redis");
        assert_eq!(b.logouts.len(), 1);
        assert!(b.poll_transmit(Link::Commands).is_empty());
    }

    #[test]
    fn in_flight_proposals_are_unknown_when_the_connection_is_lost() {
        let mut b = Backplane::new("n1", Duration::from_secs(3));
        let now = Instant::now();
        b.handle_connected(now);
        greet(&mut b, HELLO_E1, now);
        assert!(matches!(
            b.poll_output(),
            Some(Output::Event(Event::Snapshot { .. }))
        ));
        assert!(matches!(b.poll_output(), Some(Output::Up(_))));
        assert!(b.is_up());
        assert!(
            !b.poll_transmit(Link::Reader).is_empty(),
            "reading the stream"
        );
        let chat = a_chat();
        b.propose(Some(ConnId(3)), chat.clone());
        b.handle_lost();
        assert!(matches!(
            b.poll_output(),
            Some(Output::Refused(Some(ConnId(3)), p, Refusal::Unknown)) if p == chat
        ));
        // Back, and Redis has another epoch: it came back empty.
        b.handle_connected(now);
        greet(
            &mut b,
            b"*4\r\n$2\r\ne2\r\n$3\r\n0-0\r\n$0\r\n\r\n*0\r\n",
            now,
        );
        assert!(matches!(b.poll_output(), Some(Output::Warn(_))));
        assert!(matches!(b.poll_output(), Some(Output::Event(Event::Reset))));
        assert!(matches!(b.poll_output(), Some(Output::Up(_))));
    }

    #[test]
    fn an_unconfirmed_lease_fences_the_node_before_anyone_may_reap_it() {
        let lease = Duration::from_secs(3);
        assert!(Backplane::new("n1", lease).health().is_some(), "not up yet");
        let (mut b, t0) = up(lease);
        assert_eq!(b.health(), None);
        // A renewal refused for want of memory is tried again at the next
        // tick: the connection is not dropped.
        b.handle_timeout(t0 + lease / 6).unwrap();
        let n = b.poll_transmit(Link::Commands).len();
        b.transmitted(Link::Commands, n);
        let oom = b"-OOM command not allowed when used memory > 'maxmemory'.\r\n";
        b.handle_input(Link::Commands, oom, t0).unwrap();
        assert!(matches!(b.poll_output(), Some(Output::Warn(_))));
        assert!(b.is_up());
        // No renewal confirmed since the hello: fenced at lease - margin,
        // well before the others may reap it (lease + margin).
        let fence = t0 + lease - margin(lease);
        assert_eq!(b.poll_timeout().map(|t| t <= fence), Some(true));
        b.handle_timeout(fence - Duration::from_millis(1)).unwrap();
        assert!(b.poll_output().is_none());
        assert!(b.handle_timeout(fence).is_err(), "drop the connections");
        assert!(matches!(
            b.poll_output(),
            Some(Output::Event(Event::Fenced))
        ));
        b.handle_lost();
        assert_eq!(b.health(), Some(FENCED));
        assert!(reap_after(lease) - (lease - margin(lease)) >= lease / 2);
        // Once fenced, nothing more to fence until the next hello.
        assert!(b.handle_timeout(fence + lease).is_ok());
        assert!(b.poll_output().is_none());
    }

    #[test]
    fn a_demoted_master_means_finding_the_master_again() {
        let (mut b, now) = up(Duration::from_secs(3));
        let chat = a_chat();
        b.propose(Some(ConnId(3)), chat.clone());
        let readonly = b"-READONLY You can't write against a read only replica.\r\n";
        assert!(
            b.handle_input(Link::Commands, readonly, now).is_err(),
            "reconnect"
        );
        assert!(matches!(
            b.poll_output(),
            Some(Output::Refused(Some(ConnId(3)), p, Refusal::Unavailable)) if p == chat
        ));
    }

    #[test]
    fn a_script_redis_no_longer_has_is_loaded_and_sent_again() {
        let mut b = Backplane::new("n1", Duration::from_secs(3));
        let now = Instant::now();
        b.handle_connected(now);
        let first = String::from_utf8_lossy(b.poll_transmit(Link::Commands)).to_string();
        assert!(
            first.starts_with("*3\r\n$6\r\nSCRIPT\r\n$4\r\nLOAD"),
            "{first}"
        );
        greet(&mut b, HELLO_E1, now);
        while b.poll_output().is_some() {}
        let n = b.poll_transmit(Link::Commands).len();
        b.transmitted(Link::Commands, n);
        b.propose(Some(ConnId(3)), a_chat());
        let sent = String::from_utf8_lossy(b.poll_transmit(Link::Commands)).to_string();
        assert!(sent.contains("EVALSHA") && !sent.contains("XADD"), "{sent}");
        b.transmitted(Link::Commands, sent.len());
        b.handle_input(Link::Commands, b"-NOSCRIPT No matching script.\r\n", now)
            .unwrap();
        assert!(b.poll_output().is_none(), "not refused: it was not run");
        let again = String::from_utf8_lossy(b.poll_transmit(Link::Commands)).to_string();
        assert!(again.starts_with("*3\r\n$6\r\nSCRIPT"), "{again}");
        assert!(again.ends_with(&sent), "then the chat again: {again}");
    }

    #[test]
    fn events_trimmed_before_they_were_read_are_caught_up_from_a_snapshot() {
        let mut b = Backplane::new("n1", Duration::from_secs(3));
        let now = Instant::now();
        b.handle_connected(now);
        // Up, with 5 events in the stream and none trimmed.
        greet(
            &mut b,
            b"*6\r\n$2\r\ne1\r\n$3\r\n5-0\r\n$0\r\n\r\n*0\r\n:5\r\n:0\r\n",
            now,
        );
        while b.poll_output().is_some() {}
        let reading = b.poll_transmit(Link::Reader).len();
        b.transmitted(Link::Reader, reading);
        b.handle_timeout(now + Duration::from_secs(1)).unwrap();
        let ticked = b.poll_transmit(Link::Commands).len();
        b.transmitted(Link::Commands, ticked);
        // The tick says 7 were trimmed: two this node never read.
        b.handle_input(Link::Commands, b"*3\r\n$2\r\nok\r\n:0\r\n:7\r\n", now)
            .unwrap();
        assert!(matches!(b.poll_output(), Some(Output::Warn(w)) if w.starts_with("2 events")));
        // The read in flight ends (nothing new); next comes a snapshot.
        b.handle_input(Link::Reader, b"*-1\r\n", now).unwrap();
        let next = String::from_utf8_lossy(b.poll_transmit(Link::Reader)).to_string();
        assert!(
            next.contains("EVALSHA") && !next.contains("XREAD"),
            "{next}"
        );
        let n = b.poll_transmit(Link::Reader).len();
        b.transmitted(Link::Reader, n);
        b.handle_input(
            Link::Reader,
            b"*4\r\n$3\r\n9-0\r\n$1\r\nx\r\n*0\r\n:9\r\n",
            now,
        )
        .unwrap();
        assert!(matches!(
            b.poll_output(),
            Some(Output::Event(Event::Resync { users, admin })) if users.is_empty() && admin.as_deref() == Some("x")
        ));
        let next = String::from_utf8_lossy(b.poll_transmit(Link::Reader)).to_string();
        assert!(
            next.contains("XREAD") && next.contains("9-0"),
            "reads on after it: {next}"
        );
    }
}
