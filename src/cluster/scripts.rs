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

pub fn user_key(name: &str) -> String {
    format!("{{mp1}}:u:{name}")
}

pub fn node_users_key(node: &str) -> String {
    format!("{{mp1}}:on:{node}")
}

/// Claims `name` for a session on `node`: `{"taken"}`, or
/// `{"ok", seq, admin}` (1 if it became the admin) and a `join` event.
const LOGIN: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'taken'} end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'node', ARGV[2], 'sid', ARGV[3], 'seq', seq, 'muted', 0)
redis.call('ZADD', KEYS[2], seq, ARGV[1])
redis.call('SADD', KEYS[6], ARGV[1])
local admin = 0
if redis.call('EXISTS', KEYS[3]) == 0 then
  redis.call('SET', KEYS[3], ARGV[1])
  admin = 1
end
redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[4], '*',
  'ev', 'join', 'name', ARGV[1], 'node', ARGV[2], 'sid', ARGV[3], 'seq', seq, 'admin', admin)
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

/// Queues the login script for `name` (session `sid` on `node`).
pub fn login<T>(c: &mut Connection<T>, tag: T, name: &str, node: &str, sid: &str) {
    let user = user_key(name);
    let on = node_users_key(node);
    c.command(
        tag,
        &[
            b"EVAL",
            LOGIN.as_bytes(),
            b"6",
            user.as_bytes(),
            USERS_ORDER.as_bytes(),
            ADMIN.as_bytes(),
            SEQ.as_bytes(),
            EVENTS.as_bytes(),
            on.as_bytes(),
            name.as_bytes(),
            node.as_bytes(),
            sid.as_bytes(),
            STREAM_MAXLEN.as_bytes(),
        ],
    );
}

/// Queues the logout script for `name`'s session `sid`; `why` is `left`,
/// `kicked` or `lost` (its node died).
pub fn logout<T>(c: &mut Connection<T>, tag: T, name: &str, sid: &str, why: &str) {
    let user = user_key(name);
    c.command(
        tag,
        &[
            b"EVAL",
            LOGOUT.as_bytes(),
            b"4",
            user.as_bytes(),
            USERS_ORDER.as_bytes(),
            ADMIN.as_bytes(),
            EVENTS.as_bytes(),
            name.as_bytes(),
            sid.as_bytes(),
            STREAM_MAXLEN.as_bytes(),
            why.as_bytes(),
        ],
    );
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
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'ev', 'mute', 'name', target)
elseif command == 'UnmuteUser' then
  if muted ~= '1' then return {'UserAlreadyUnmuted'} end
  redis.call('HSET', KEYS[2], 'muted', 0)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'ev', 'unmute', 'name', target)
elseif command == 'SetAsAdmin' then
  if target == requester then return {'AlreadyAdmin'} end
  redis.call('SET', KEYS[3], target)
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[5], '*', 'ev', 'admin', 'name', target)
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
    'ev', 'leave', 'name', target, 'why', 'kicked', 'admin', new_admin)
else
  return redis.error_reply('unknown admin command ' .. command)
end
return {'OK'}
"#;

/// Queues a chat from `name`'s session `sid`.
pub fn chat<T>(c: &mut Connection<T>, tag: T, name: &str, sid: &str, message: &str) {
    let user = user_key(name);
    c.command(
        tag,
        &[
            b"EVAL",
            CHAT.as_bytes(),
            b"2",
            user.as_bytes(),
            EVENTS.as_bytes(),
            name.as_bytes(),
            sid.as_bytes(),
            message.as_bytes(),
            STREAM_MAXLEN.as_bytes(),
        ],
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
    c.command(
        tag,
        &[
            b"EVAL",
            ADMIN_COMMAND.as_bytes(),
            b"5",
            me.as_bytes(),
            them.as_bytes(),
            ADMIN.as_bytes(),
            USERS_ORDER.as_bytes(),
            EVENTS.as_bytes(),
            requester.as_bytes(),
            sid.as_bytes(),
            command.as_bytes(),
            target.as_bytes(),
            STREAM_MAXLEN.as_bytes(),
        ],
    );
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
    c.command(
        tag,
        &[
            b"EVAL",
            RENAME.as_bytes(),
            b"5",
            from.as_bytes(),
            to.as_bytes(),
            USERS_ORDER.as_bytes(),
            ADMIN.as_bytes(),
            EVENTS.as_bytes(),
            old.as_bytes(),
            new.as_bytes(),
            sid.as_bytes(),
            STREAM_MAXLEN.as_bytes(),
        ],
    );
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
    let mut args: Vec<&[u8]> = vec![
        b"EVAL",
        WHISPER.as_bytes(),
        b"2",
        me.as_bytes(),
        EVENTS.as_bytes(),
        from.as_bytes(),
        sid.as_bytes(),
        message.as_bytes(),
        STREAM_MAXLEN.as_bytes(),
    ];
    args.extend(to.iter().map(|n| n.as_bytes()));
    c.command(tag, &args);
}

/// Logs out every user of a node whose lease has run out (it died, or was
/// cut off): `{"alive"}` while the lease holds, else `{"ok", count}` with
/// one `leave` event (why `lost`) per user and, if the admin was among
/// them, an `admin` event for the earliest login left. Running it twice is
/// harmless: the second finds nobody.
const REAP: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return {'alive'} end
local names = redis.call('SMEMBERS', KEYS[2])
local admin = redis.call('GET', KEYS[4])
local lost_admin = false
for _, name in ipairs(names) do
  redis.call('DEL', '{mp1}:u:' .. name)
  redis.call('ZREM', KEYS[3], name)
  if name == admin then lost_admin = true end
  redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*',
    'ev', 'leave', 'name', name, 'why', 'lost', 'admin', '')
end
redis.call('DEL', KEYS[2])
if lost_admin then
  local first = redis.call('ZRANGE', KEYS[3], 0, 0)
  if #first > 0 then
    redis.call('SET', KEYS[4], first[1])
    redis.call('XADD', KEYS[5], 'MAXLEN', '~', ARGV[1], '*', 'ev', 'admin', 'name', first[1])
  else
    redis.call('DEL', KEYS[4])
  end
end
return {'ok', #names}
"#;

pub fn lease_key(node: &str) -> String {
    format!("{{mp1}}:lease:{node}")
}

/// Queues the renewal of `node`'s lease for `ms` milliseconds.
pub fn renew_lease<T>(c: &mut Connection<T>, tag: T, node: &str, ms: u64) {
    let key = lease_key(node);
    let ms = ms.to_string();
    c.command(tag, &[b"SET", key.as_bytes(), b"1", b"PX", ms.as_bytes()]);
}

/// Queues the reaping of `node`'s users, if its lease has run out.
pub fn reap<T>(c: &mut Connection<T>, tag: T, node: &str) {
    let (lease, on) = (lease_key(node), node_users_key(node));
    c.command(
        tag,
        &[
            b"EVAL",
            REAP.as_bytes(),
            b"5",
            lease.as_bytes(),
            on.as_bytes(),
            USERS_ORDER.as_bytes(),
            ADMIN.as_bytes(),
            EVENTS.as_bytes(),
            STREAM_MAXLEN.as_bytes(),
        ],
    );
}
