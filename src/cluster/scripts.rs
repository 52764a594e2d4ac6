//! The state changes of a cluster chat, each one Lua script that checks,
//! changes and appends its event to the stream every node reads, so that
//! the stream's order is the order of the changes (docs/design/cluster.md,
//! "Redis layout"). All keys share the `{mp1}` hash slot.

use super::redis::Connection;

/// Events kept in the stream at most (approximately).
pub const STREAM_MAXLEN: &str = "100000";

pub const USERS_ORDER: &str = "{mp1}:order";
pub const ADMIN: &str = "{mp1}:admin";
pub const SEQ: &str = "{mp1}:seq";
pub const EVENTS: &str = "{mp1}:ev";

/// Every script, for [`load`]: each connection loads them once, then
/// sends each by its SHA1 (`EVALSHA`), not its whole text.
const ALL: [&str; 10] = [
    LOGIN,
    LOGOUT,
    CHAT,
    ADMIN_COMMAND,
    RENAME,
    WHISPER,
    HELLO,
    TICK,
    SNAPSHOT,
    ELECT,
];

/// The hex SHA1 by which Redis knows `script`.
fn sha(script: &str) -> String {
    sha1_smol::Sha1::from(script).digest().to_string()
}

/// Queues `SCRIPT LOAD` of every script, each answered with `tag()`: sent
/// first on a new connection, and again when Redis answers `NOSCRIPT` (its
/// cache was flushed), so that what follows can go as `EVALSHA`.
pub fn load<T>(c: &mut Connection<T>, tag: impl Fn() -> T) {
    for script in ALL {
        c.command(tag(), &[b"SCRIPT", b"LOAD", script.as_bytes()]);
    }
}

/// Queues `EVALSHA sha1(script) numkeys key... arg...` (the script was
/// loaded by [`load`]); the key count is the keys given.
fn eval<T>(c: &mut Connection<T>, tag: T, script: &str, keys: &[&str], args: &[&str]) {
    let (sha, numkeys) = (sha(script), keys.len().to_string());
    let mut command: Vec<&[u8]> = vec![b"EVALSHA", sha.as_bytes(), numkeys.as_bytes()];
    command.extend(keys.iter().chain(args).map(|a| a.as_bytes()));
    c.command(tag, &command);
}

/// A script error meaning Redis refused to run it for want of memory
/// (`maxmemory`): nothing of it was carried out, since every script
/// checks before it writes and Redis refuses a script at its first write.
pub fn is_out_of_memory(error: &str) -> bool {
    error.starts_with("OOM")
}

/// An error meaning the server is a replica now (a failover demoted it):
/// nothing was written; find the master again.
pub fn is_read_only(error: &str) -> bool {
    error.starts_with("READONLY")
}

/// A script error meaning Redis did not have the script (its cache was
/// flushed): nothing was run; load the scripts and send it again.
pub fn is_no_script(error: &str) -> bool {
    error.starts_with("NOSCRIPT")
}

pub fn user_key(name: &str) -> String {
    format!("{{mp1}}:u:{name}")
}

pub fn node_users_key(node: &str) -> String {
    format!("{{mp1}}:on:{node}")
}

/// Claims `name` for a session on `node`: `{"taken"}`, or
/// `{"ok", seq, admin}` (1 if it became the admin) and a `join` event.
/// A restored login (Redis came back empty and the node registers its
/// users again, ARGV[6] their login seq, ARGV[7] 1 if admin) keeps its
/// seq and takes the admin role only if it had it; its event says `back`.
const LOGIN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'taken'} end
local seq, back, admin = 0, 0, 0
if ARGV[6] ~= '' then
  seq, back = tonumber(ARGV[6]), 1
  if tonumber(redis.call('GET', KEYS[4]) or '0') < seq then redis.call('SET', KEYS[4], seq) end
  if ARGV[7] == '1' then redis.call('SET', KEYS[3], ARGV[1]); admin = 1 end
else
  seq = redis.call('INCR', KEYS[4])
  if redis.call('EXISTS', KEYS[3]) == 0 then redis.call('SET', KEYS[3], ARGV[1]); admin = 1 end
end
redis.call('HSET', KEYS[1], 'node', ARGV[2], 'sid', ARGV[3], 'seq', seq, 'muted', 0, 'addr', ARGV[5])
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*', 'ev', 'join', 'name', ARGV[1],
  'node', ARGV[2], 'sid', ARGV[3], 'seq', seq, 'admin', admin, 'addr', ARGV[5], 'back', back)
return {'ok', seq, admin}
"#;

/// Releases `name` if the session `sid` still holds it: `{"gone"}`, or
/// `{"ok", new_admin}` ("" if the admin did not change) and a `leave`
/// event saying why; the admin role passes to the earliest login left.
/// The node's set of names is found from the user's record (same `{mp1}`
/// slot as the declared keys).
const LOGOUT: &str = r#"
if redis.call('HGET', KEYS[1], 'sid') ~= ARGV[2] then return {'gone'} end
local node = redis.call('HGET', KEYS[1], 'node')
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('SREM', '{mp1}:on:' .. node, ARGV[1])
local new_admin = ''
if redis.call('GET', KEYS[3]) == ARGV[1] then
  local first = redis.call('ZRANGE', KEYS[2], 0, 0)
  if #first > 0 then
    new_admin = first[1]
    redis.call('SET', KEYS[3], new_admin)
  else
    redis.call('DEL', KEYS[3])
  end
end
redis.call('XADD', KEYS[4], 'MAXLEN', '~', ARGV[3], '*',
  'ev', 'leave', 'name', ARGV[1], 'why', ARGV[4], 'admin', new_admin)
return {'ok', new_admin}
"#;

/// A login's details beside its name.
#[derive(Clone, Debug, Default)]
pub struct Login<'a> {
    pub node: &'a str,
    pub sid: &'a str,
    /// The client's address, for `RequestUserInfo` on other nodes.
    pub addr: &'a str,
    /// Registering again after Redis came back empty: the login seq it had,
    /// and whether it was the admin.
    pub restore: Option<(u64, bool)>,
}

/// Queues the login script for `name`.
pub fn login<T>(c: &mut Connection<T>, tag: T, name: &str, l: &Login) {
    let (user, on) = (user_key(name), node_users_key(l.node));
    let (seq, admin) = match l.restore {
        Some((seq, admin)) => (seq.to_string(), if admin { "1" } else { "0" }),
        None => (String::new(), "0"),
    };
    let keys = [&user, USERS_ORDER, ADMIN, SEQ, EVENTS, &on];
    let args = [name, l.node, l.sid, STREAM_MAXLEN, l.addr, &seq, admin];
    eval(c, tag, LOGIN, &keys, &args);
}

/// Queues the logout script for `name`'s session `sid`; `why` is `left`,
/// `kicked` or `lost` (its node died).
pub fn logout<T>(c: &mut Connection<T>, tag: T, name: &str, sid: &str, why: &str) {
    let user = user_key(name);
    let keys = [&user, USERS_ORDER, ADMIN, EVENTS];
    eval(c, tag, LOGOUT, &keys, &[name, sid, STREAM_MAXLEN, why]);
}

/// A chat from `name`'s session `sid`: `{"gone"}`, `{"muted"}`, or
/// `{"ok"}` and a `chat` event.
const CHAT: &str = r#"
if redis.call('HGET', KEYS[1], 'sid') ~= ARGV[2] then return {'gone'} end
if redis.call('HGET', KEYS[1], 'muted') == '1' then return {'muted'} end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'ev', 'chat', 'name', ARGV[1], 'message', ARGV[3])
return {'ok'}
"#;

/// An admin command (`KickUser`, `MuteUser`, `UnmuteUser`, `SetAsAdmin`)
/// from `requester`'s session: the status the client is answered with
/// (`NotAdminError`, `UserDoesNotExist`, `UserAlreadyMuted`,
/// `UserAlreadyUnmuted`, `AlreadyAdmin`, `OK`), and on `OK` the event:
/// `leave` (why `kicked`, with the admin handover), `mute`, `unmute` or
/// `admin`.
const ADMIN_COMMAND: &str = r#"
local requester, sid, command, target = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
if redis.call('HGET', KEYS[1], 'sid') ~= sid or redis.call('GET', KEYS[3]) ~= requester then
  return {'NotAdminError'}
end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'UserDoesNotExist'} end
local muted = redis.call('HGET', KEYS[2], 'muted')
if command == 'MuteUser' then
  if muted == '1' then return {'UserAlreadyMuted'} end
  redis.call('HSET', KEYS[2], 'muted', 1)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'ev', 'mute', 'name', target, 'by', requester)
elseif command == 'UnmuteUser' then
  if muted ~= '1' then return {'UserAlreadyUnmuted'} end
  redis.call('HSET', KEYS[2], 'muted', 0)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'ev', 'unmute', 'name', target, 'by', requester)
elseif command == 'SetAsAdmin' then
  if target == requester then return {'AlreadyAdmin'} end
  redis.call('SET', KEYS[3], target)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'ev', 'admin', 'name', target, 'by', requester)
elseif command == 'KickUser' then
  local node = redis.call('HGET', KEYS[2], 'node')
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[4], target)
  redis.call('SREM', '{mp1}:on:' .. node, target)
  local new_admin = ''
  if redis.call('GET', KEYS[3]) == target then
    local first = redis.call('ZRANGE', KEYS[4], 0, 0)
    if #first > 0 then new_admin = first[1]; redis.call('SET', KEYS[3], new_admin)
    else redis.call('DEL', KEYS[3]) end
  end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*',
    'ev', 'leave', 'name', target, 'why', 'kicked', 'admin', new_admin, 'by', requester)
else
  return redis.error_reply('unknown admin command ' .. command)
end
return {'OK'}
"#;

/// Queues a chat from `name`'s session `sid`.
pub fn chat<T>(c: &mut Connection<T>, tag: T, name: &str, sid: &str, message: &str) {
    let user = user_key(name);
    eval(
        c,
        tag,
        CHAT,
        &[&user, EVENTS],
        &[name, sid, message, STREAM_MAXLEN],
    );
}

/// Queues an admin command (its MP1 `mtp`) from `requester`'s session.
pub fn admin_command<T>(
    c: &mut Connection<T>,
    tag: T,
    requester: &str,
    sid: &str,
    command: &str,
    target: &str,
) {
    let (me, them) = (user_key(requester), user_key(target));
    let keys = [&me, &them, ADMIN, USERS_ORDER, EVENTS];
    let args = [requester, sid, command, target, STREAM_MAXLEN];
    eval(c, tag, ADMIN_COMMAND, &keys, &args);
}

/// A rename of `old`'s session `sid` to `new`: `{"gone"}`, `{"same"}`,
/// `{"taken"}`, or `{"ok"}` and a `rename` event; the login order and the
/// admin role follow the user.
const RENAME: &str = r#"
if redis.call('HGET', KEYS[1], 'sid') ~= ARGV[3] then return {'gone'} end
if ARGV[1] == ARGV[2] then return {'same'} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {'taken'} end
local node = redis.call('HGET', KEYS[1], 'node')
local seq = redis.call('HGET', KEYS[1], 'seq')
redis.call('RENAME', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[3], seq, ARGV[2])
redis.call('SREM', '{mp1}:on:' .. node, ARGV[1])
redis.call('SADD', '{mp1}:on:' .. node, ARGV[2])
if redis.call('GET', KEYS[4]) == ARGV[1] then redis.call('SET', KEYS[4], ARGV[2]) end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*',
  'ev', 'rename', 'old', ARGV[1], 'new', ARGV[2])
return {'ok'}
"#;

/// A whisper from `from`'s session to the names after ARGV[4]:
/// `{"gone"}`, `{"muted"}`, or `{"ok", missing...}` (the names nobody
/// holds) and, if anyone is there, a `whisper` event naming them (names
/// hold no spaces, so `to` is space-separated).
const WHISPER: &str = r#"
if redis.call('HGET', KEYS[1], 'sid') ~= ARGV[2] then return {'gone'} end
if redis.call('HGET', KEYS[1], 'muted') == '1' then return {'muted'} end
local to, missing, seen = {}, {'ok'}, {}
for i = 5, #ARGV do
  local name = ARGV[i]
  if not seen[name] then
    seen[name] = true
    if redis.call('EXISTS', '{mp1}:u:' .. name) == 1 then
      table.insert(to, name)
    else
      table.insert(missing, name)
    end
  end
end
if #to > 0 then
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*', 'ev', 'whisper',
    'from', ARGV[1], 'to', table.concat(to, ' '), 'message', ARGV[3])
end
return missing
"#;

/// Queues a rename of `old`'s session `sid` to `new`.
pub fn rename<T>(c: &mut Connection<T>, tag: T, old: &str, new: &str, sid: &str) {
    let (from, to) = (user_key(old), user_key(new));
    let keys = [&from, &to, USERS_ORDER, ADMIN, EVENTS];
    eval(c, tag, RENAME, &keys, &[old, new, sid, STREAM_MAXLEN]);
}

/// Queues a whisper from `from`'s session `sid` to `to`.
pub fn whisper<T>(
    c: &mut Connection<T>,
    tag: T,
    from: &str,
    sid: &str,
    to: &[&str],
    message: &str,
) {
    let me = user_key(from);
    let mut args = vec![from, sid, message, STREAM_MAXLEN];
    args.extend(to);
    eval(c, tag, WHISPER, &[&me, EVENTS], &args);
}

pub const EPOCH: &str = "{mp1}:epoch";

/// Lua functions (the prefix of the scripts that keep leases and reap).
///
/// Leases are kept in Redis's own time (`TIME`, in ms): `{mp1}:leases`
/// scores each live node with the moment it may be reaped (its last
/// renewal + lease + margin). `{mp1}:clock` is when Redis last served a
/// hello or tick. Live nodes tick several times a lease, so a longer gap
/// (`pause`, ms) means Redis was not serving (paused, stopped, or every
/// node was cut off): that time does not count against anyone's lease,
/// and `served` moves every reap time on by it, giving every node the
/// chance to renew before anyone may reap it.
///
/// `reap` logs out every user of a node whose lease is over (it died, or
/// was cut off: it fenced itself before this, see `Backplane`), with one
/// `leave` event (why `lost`) each and, if the admin was among them, one
/// `admin` event for the earliest login left (in login order). Returns how
/// many it logged out. Twice is harmless.
macro_rules! reap_fn {
    () => {
        r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- How far every reap time moves on (read only: checks come before writes).
local function pause_shift(now, pause)
  local last = tonumber(redis.call('GET', '{mp1}:clock') or '')
  if last and now - last > pause then return now - last end
  return 0
end
local function served(now, shift)
  if shift > 0 then
    local leases = redis.call('ZRANGE', '{mp1}:leases', 0, -1, 'WITHSCORES')
    for i = 1, #leases, 2 do
      redis.call('ZADD', '{mp1}:leases', tonumber(leases[i + 1]) + shift, leases[i])
    end
  end
  redis.call('SET', '{mp1}:clock', now)
end
local function reap(node, maxlen)
  local on = '{mp1}:on:' .. node
  local names = redis.call('SMEMBERS', on)
  -- Announced in login order, the order the online list shows them in.
  local seqs = {}
  for _, name in ipairs(names) do
    seqs[name] = tonumber(redis.call('ZSCORE', '{mp1}:order', name) or '0')
  end
  table.sort(names, function(a, b) return seqs[a] < seqs[b] end)
  -- For the survivors' logs: which node went, with how many users.
  redis.call('XADD', '{mp1}:ev', 'MAXLEN', '~', maxlen, '*',
    'ev', 'nodelost', 'node', node, 'users', tostring(#names))
  local admin = redis.call('GET', '{mp1}:admin')
  local lost_admin = false
  for _, name in ipairs(names) do
    redis.call('DEL', '{mp1}:u:' .. name)
    redis.call('ZREM', '{mp1}:order', name)
    if name == admin then lost_admin = true end
    redis.call('XADD', '{mp1}:ev', 'MAXLEN', '~', maxlen, '*',
      'ev', 'leave', 'name', name, 'why', 'lost', 'admin', '')
  end
  redis.call('DEL', on)
  redis.call('ZREM', '{mp1}:leases', node)
  if lost_admin then
    local first = redis.call('ZRANGE', '{mp1}:order', 0, 0)
    if #first > 0 then
      redis.call('SET', '{mp1}:admin', first[1])
      redis.call('XADD', '{mp1}:ev', 'MAXLEN', '~', maxlen, '*', 'ev', 'admin', 'name', first[1])
    else
      redis.call('DEL', '{mp1}:admin')
    end
  end
  return #names
end
local function reap_dead(now, maxlen)
  local n = 0
  for _, node in ipairs(redis.call('ZRANGEBYSCORE', '{mp1}:leases', '-inf', '(' .. now)) do
    n = n + reap(node, maxlen)
  end
  return n
end
"#
    };
}

/// Lua functions: every user in login order as `{name, node, sid, seq,
/// muted, addr}`; and the stream's counts `{entries ever added, entries
/// trimmed}` (events are only ever removed by trimming, from the oldest),
/// by which a node knows whether events it has not read were trimmed.
macro_rules! users_fn {
    () => {
        r#"
local function users()
  local all = {}
  for _, name in ipairs(redis.call('ZRANGE', '{mp1}:order', 0, -1)) do
    local u = redis.call('HMGET', '{mp1}:u:' .. name, 'node', 'sid', 'seq', 'muted', 'addr')
    table.insert(all, {name, u[1], u[2], u[3], u[4], u[5] or ''})
  end
  return all
end
local function stream_counts()
  if redis.call('EXISTS', '{mp1}:ev') == 0 then return {0, 0} end
  local info = redis.call('XINFO', 'STREAM', '{mp1}:ev')
  local added, len = 0, 0
  for i = 1, #info, 2 do
    if info[i] == 'entries-added' then added = info[i + 1] end
    if info[i] == 'length' then len = info[i + 1] end
  end
  return {added, added - len}
end
local function last_event_id()
  local last = redis.call('XREVRANGE', '{mp1}:ev', '+', '-', 'COUNT', 1)
  if #last > 0 then return last[1][1] end
  return '0-0'
end
"#
    };
}

/// A node joins (or comes back after losing its connection): reaps the
/// dead nodes (its own earlier life among them, if its lease ran out),
/// takes its lease, and returns what it needs to follow the chat:
/// `{"inuse"}` if a live node has its id and it is starting afresh, else
/// `{epoch, last event id, admin, users, entries added, entries trimmed}`
/// (see [`users_fn`]). The epoch is set if Redis has none (it is new, or came
/// back empty): a node that knew another epoch must register its users
/// again. ARGV: node, reap after (ms: lease + margin), fresh, maxlen, the
/// epoch to set, the pause (ms, see [`reap_fn`]).
///
/// It runs even when Redis is out of memory (`allow-oom`): a lease must be
/// renewable then, and reaping frees memory; its own writes are a few
/// small keys and one event per reaped user.
const HELLO: &str = concat!(
    "#!lua flags=allow-oom\n",
    reap_fn!(),
    users_fn!(),
    r#"
local node, ms, fresh, maxlen, pause = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[6])
local now = now_ms()
local shift = pause_shift(now, pause)
local mine = tonumber(redis.call('ZSCORE', '{mp1}:leases', node) or '')
if fresh == '1' and mine and mine + shift > now then return {'inuse'} end
served(now, shift)
local epoch = redis.call('GET', '{mp1}:epoch')
if not epoch then
  epoch = ARGV[5]
  redis.call('SET', '{mp1}:epoch', epoch)
end
reap_dead(now, maxlen)
redis.call('ZADD', '{mp1}:leases', now + ms, node)
local counts = stream_counts()
return {epoch, last_event_id(), redis.call('GET', '{mp1}:admin') or '', users(),
  counts[1], counts[2]}
"#
);

/// A node's heartbeat: `{"reset"}` if Redis's epoch is not the node's (it
/// came back empty), else renews the lease, reaps the dead nodes and
/// returns `{"ok", users reaped, entries trimmed from the stream}`. ARGV
/// as [`HELLO`]'s: node, reap after (ms), epoch, maxlen, pause (ms). Runs
/// when Redis is out of memory, as the hello does.
const TICK: &str = concat!(
    "#!lua flags=allow-oom\n",
    reap_fn!(),
    users_fn!(),
    r#"
local node, ms, epoch, maxlen, pause = ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], tonumber(ARGV[5])
if redis.call('GET', '{mp1}:epoch') ~= epoch then return {'reset'} end
local now = now_ms()
served(now, pause_shift(now, pause))
redis.call('ZADD', '{mp1}:leases', now + ms, node)
return {'ok', reap_dead(now, maxlen), stream_counts()[2]}
"#
);

/// What the chat holds now, for a node that missed events (they were
/// trimmed from the stream before it read them): `{last event id, admin,
/// users, entries added}`. Sent on the node's stream connection, so it
/// follows the last events the node read there.
const SNAPSHOT: &str = concat!(
    users_fn!(),
    r#"
return {last_event_id(), redis.call('GET', '{mp1}:admin') or '', users(), stream_counts()[1]}
"#
);

/// Queues a snapshot (see [`SNAPSHOT`]).
pub fn snapshot<T>(c: &mut Connection<T>, tag: T) {
    eval(c, tag, SNAPSHOT, &[], &[]);
}

/// Gives the admin role to the earliest login if nobody has it (after
/// Redis came back empty and the admin did not come back): `{"ok", name}`
/// and an `admin` event, or `{"none"}`.
const ELECT: &str = r#"
if redis.call('EXISTS', '{mp1}:admin') == 1 then return {'none'} end
local first = redis.call('ZRANGE', '{mp1}:order', 0, 0)
if #first == 0 then return {'none'} end
redis.call('SET', '{mp1}:admin', first[1])
redis.call('XADD', '{mp1}:ev', 'MAXLEN', '~', ARGV[1], '*', 'ev', 'admin', 'name', first[1])
return {'ok', first[1]}
"#;

/// How a node's lease is kept, for the hello and the tick.
#[derive(Clone, Copy, Debug)]
pub struct Lease {
    /// Others may reap the node this long (ms) after its last renewal.
    pub reap_after_ms: u64,
    /// A longer gap (ms) between the hellos and ticks Redis serves means
    /// it was not serving (see [`reap_fn`]).
    pub pause_ms: u64,
}

/// Queues `node`'s hello (see [`HELLO`]); `fresh` when the process has
/// just started, `epoch` the one to set if Redis has none.
pub fn hello<T>(c: &mut Connection<T>, tag: T, node: &str, lease: Lease, fresh: bool, epoch: &str) {
    let (ms, pause) = (lease.reap_after_ms.to_string(), lease.pause_ms.to_string());
    let fresh = if fresh { "1" } else { "0" };
    let args = [node, &ms, fresh, STREAM_MAXLEN, epoch, &pause];
    eval(c, tag, HELLO, &[], &args);
}

/// Queues `node`'s heartbeat (see [`TICK`]).
pub fn tick<T>(c: &mut Connection<T>, tag: T, node: &str, lease: Lease, epoch: &str) {
    let (ms, pause) = (lease.reap_after_ms.to_string(), lease.pause_ms.to_string());
    eval(
        c,
        tag,
        TICK,
        &[],
        &[node, &ms, epoch, STREAM_MAXLEN, &pause],
    );
}

/// Queues an election of the earliest login as admin, if there is none.
pub fn elect<T>(c: &mut Connection<T>, tag: T) {
    eval(c, tag, ELECT, &[], &[STREAM_MAXLEN]);
}

/// Queues a read of the events after `last_id`, waiting up to `block_ms`
/// for one.
pub fn read_events<T>(c: &mut Connection<T>, tag: T, last_id: &str, count: usize, block_ms: u64) {
    let (count, block) = (count.to_string(), block_ms.to_string());
    c.command(
        tag,
        &[
            b"XREAD",
            b"COUNT",
            count.as_bytes(),
            b"BLOCK",
            block.as_bytes(),
            b"STREAMS",
            EVENTS.as_bytes(),
            last_id.as_bytes(),
        ],
    );
}
