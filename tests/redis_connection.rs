//! The cluster's Redis connection state (`mp1::cluster::redis`) against a
//! real redis-server: pipelined commands, the claims and scripts the
//! cluster is built on (docs/design/cluster.md), and a stream read.

mod common;
use mp1::cluster::redis::{Connection, Reply};
use mp1::cluster::scripts::Login;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A connection to `redis`, with the cluster's scripts loaded (they go
/// out as `EVALSHA`).
fn connect(redis: &common::redis::Redis) -> TcpStream {
    let mut s = TcpStream::connect(redis.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut c = Connection::default();
    mp1::cluster::scripts::load(&mut c, || 0);
    let n = c.in_flight();
    for (_, r) in round_trip(&mut s, &mut c, n) {
        assert!(!matches!(r, Reply::Error(_)), "{r:?}");
    }
    s
}

/// A lease whose node may be reaped `ms` after its last renewal.
fn lease(ms: u64) -> mp1::cluster::scripts::Lease {
    mp1::cluster::scripts::Lease {
        reap_after_ms: ms,
        pause_ms: 2500,
    }
}

/// The fields of every entry of an `XRANGE` reply.
fn events(r: &Reply) -> Vec<Vec<String>> {
    let Reply::Array(entries) = r else {
        panic!("not a stream: {r:?}")
    };
    entries
        .iter()
        .map(|e| {
            let Reply::Array(entry) = e else {
                panic!("{e:?}")
            };
            items(&entry[1])
        })
        .collect()
}

/// Sends what `c` has queued and reads until `n` replies came.
fn round_trip(s: &mut TcpStream, c: &mut Connection<usize>, n: usize) -> Vec<(usize, Reply)> {
    s.write_all(c.output()).unwrap();
    let len = c.output().len();
    c.written(len);
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while got.len() < n {
        while let Some(r) = c.next_reply().unwrap() {
            got.push(r);
        }
        if got.len() == n {
            break;
        }
        let k = s.read(&mut buf).unwrap();
        assert!(k > 0, "redis closed the connection");
        c.feed(&buf[..k]);
    }
    got
}

/// Queues a fresh login of `name` (session `sid` on `node`).
fn log_in(c: &mut Connection<usize>, tag: usize, name: &str, node: &str, sid: &str) {
    let login = Login {
        node,
        sid,
        ..Default::default()
    };
    mp1::cluster::scripts::login(c, tag, name, &login);
}

#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn claims_scripts_and_streams() {
    let Some(redis) = common::redis::start("claims_scripts_and_streams") else {
        return;
    };
    let mut s = connect(&redis);
    let mut c = Connection::default();
    // One name, two claims at once: exactly one wins.
    c.command(0, &[b"SET", b"{mp1}:u:ana", b"node-a", b"NX"]);
    c.command(1, &[b"SET", b"{mp1}:u:ana", b"node-b", b"NX"]);
    // A check-and-append script: atomic, and its event lands in order.
    let script: &[u8] = b"if redis.call('GET', KEYS[1]) == ARGV[1] then \
        return redis.call('XADD', KEYS[2], '*', 'ev', ARGV[2]) else return false end";
    c.command(
        2,
        &[
            b"EVAL",
            script,
            b"2",
            b"{mp1}:u:ana",
            b"{mp1}:ev",
            b"node-a",
            b"chat",
        ],
    );
    c.command(
        3,
        &[
            b"EVAL",
            script,
            b"2",
            b"{mp1}:u:ana",
            b"{mp1}:ev",
            b"node-b",
            b"chat",
        ],
    );
    c.command(
        4,
        &[b"XREAD", b"COUNT", b"10", b"STREAMS", b"{mp1}:ev", b"0"],
    );
    let got = round_trip(&mut s, &mut c, 5);
    let tags: Vec<usize> = got.iter().map(|(t, _)| *t).collect();
    assert_eq!(tags, [0, 1, 2, 3, 4], "in command order");
    assert_eq!(got[0].1, Reply::SimpleString(b"OK".to_vec()));
    assert_eq!(got[1].1, Reply::Null, "the second claim loses");
    assert!(matches!(got[2].1, Reply::BulkString(_)), "{:?}", got[2].1);
    assert_eq!(got[3].1, Reply::Null, "not the owner: nothing appended");
    let Reply::Array(streams) = &got[4].1 else {
        panic!("{:?}", got[4].1)
    };
    let Reply::Array(stream) = &streams[0] else {
        panic!("{streams:?}")
    };
    let Reply::Array(entries) = &stream[1] else {
        panic!("{stream:?}")
    };
    assert_eq!(entries.len(), 1, "one event in the stream");
}

fn text(r: &Reply) -> String {
    match r {
        Reply::BulkString(b) | Reply::SimpleString(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::Integer(i) => i.to_string(),
        other => panic!("not text: {other:?}"),
    }
}

fn items(r: &Reply) -> Vec<String> {
    match r {
        Reply::Array(a) => a.iter().map(text).collect(),
        other => panic!("not an array: {other:?}"),
    }
}

/// Login and logout as the cluster does them: one namespace, the first
/// login is admin, the admin role passes to the earliest login left, and
/// every change is one event in the stream, in order.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn logins_and_logouts_keep_one_namespace_and_one_admin() {
    use mp1::cluster::scripts::{logout, EVENTS};
    let Some(redis) = common::redis::start("logins_and_logouts_keep_one_namespace_and_one_admin")
    else {
        return;
    };
    let mut s = connect(&redis);
    let mut c = Connection::default();
    log_in(&mut c, 0, "ana", "node-a", "s1");
    log_in(&mut c, 1, "ana", "node-b", "s2");
    log_in(&mut c, 2, "bob", "node-b", "s3");
    logout(&mut c, 3, "ana", "s2", "left"); // not ana's session: nothing
    logout(&mut c, 4, "ana", "s1", "left");
    c.command(5, &[b"XRANGE", EVENTS.as_bytes(), b"-", b"+"]);
    let got = round_trip(&mut s, &mut c, 6);
    assert_eq!(items(&got[0].1), ["ok", "1", "1"], "ana: first, admin");
    assert_eq!(items(&got[1].1), ["taken"]);
    assert_eq!(items(&got[2].1), ["ok", "2", "0"]);
    assert_eq!(items(&got[3].1), ["gone"]);
    assert_eq!(
        items(&got[4].1),
        ["ok", "bob"],
        "the admin role passes to bob"
    );
    let kinds: Vec<(String, String)> = events(&got[5].1)
        .into_iter()
        .map(|fields| (fields[1].clone(), fields[3].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("join".to_string(), "ana".to_string()),
            ("join".to_string(), "bob".to_string()),
            ("leave".to_string(), "ana".to_string()),
        ]
    );
}

/// Two nodes claim the same name at the same moment, many times over:
/// exactly one wins each time.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn simultaneous_logins_of_one_name_have_one_winner() {
    let Some(redis) = common::redis::start("simultaneous_logins_of_one_name_have_one_winner")
    else {
        return;
    };
    drop(connect(&redis)); // loads the scripts
    let addr = redis.addr;
    let node = move |node: &'static str| {
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut c = Connection::default();
            for i in 0..200 {
                log_in(&mut c, i, &format!("name{i}"), node, node);
            }
            round_trip(&mut s, &mut c, 200)
                .into_iter()
                .map(|(_, r)| items(&r)[0] == "ok")
                .collect::<Vec<bool>>()
        })
    };
    let (a, b) = (node("node-a"), node("node-b"));
    let (a, b) = (a.join().unwrap(), b.join().unwrap());
    for i in 0..200 {
        assert!(a[i] ^ b[i], "name{i}: a won {}, b won {}", a[i], b[i]);
    }
}

/// Chat and the admin commands as the cluster checks them: muted users
/// cannot chat, only the admin commands, each status as MP1 names it, and
/// a kicked admin hands the role on.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn chat_and_admin_commands_are_checked_in_redis() {
    use mp1::cluster::scripts::{admin_command, chat, EVENTS};
    let Some(redis) = common::redis::start("chat_and_admin_commands_are_checked_in_redis") else {
        return;
    };
    let mut s = connect(&redis);
    let mut c = Connection::default();
    log_in(&mut c, 0, "ana", "a", "s1");
    log_in(&mut c, 1, "bob", "b", "s2");
    log_in(&mut c, 2, "cy", "b", "s3");
    let _ = round_trip(&mut s, &mut c, 3);
    let steps: [(&str, &str, &str, &str, &[&str]); 9] = [
        ("bob", "s2", "MuteUser", "ana", &["NotAdminError"]),
        ("ana", "s9", "MuteUser", "bob", &["NotAdminError"]), // not her session
        ("ana", "s1", "MuteUser", "ghost", &["UserDoesNotExist"]),
        ("ana", "s1", "MuteUser", "bob", &["OK"]),
        ("ana", "s1", "MuteUser", "bob", &["UserAlreadyMuted"]),
        ("ana", "s1", "UnmuteUser", "cy", &["UserAlreadyUnmuted"]),
        ("ana", "s1", "SetAsAdmin", "ana", &["AlreadyAdmin"]),
        ("ana", "s1", "SetAsAdmin", "cy", &["OK"]),
        ("cy", "s3", "KickUser", "cy", &["OK"]), // the admin kicks themself
    ];
    for (i, (who, sid, command, target, _)) in steps.iter().enumerate() {
        admin_command(&mut c, i, who, sid, command, target);
    }
    let got = round_trip(&mut s, &mut c, steps.len());
    for ((_, reply), step) in got.iter().zip(&steps) {
        assert_eq!(items(reply), step.4, "{} {} {}", step.0, step.2, step.3);
    }
    chat(&mut c, 0, "bob", "s2", "muted words");
    chat(&mut c, 1, "ana", "s1", "hello");
    c.command(2, &[b"GET", b"{mp1}:admin"]);
    c.command(3, &[b"XRANGE", EVENTS.as_bytes(), b"-", b"+"]);
    let got = round_trip(&mut s, &mut c, 4);
    assert_eq!(items(&got[0].1), ["muted"]);
    assert_eq!(items(&got[1].1), ["ok"]);
    assert_eq!(
        text(&got[2].1),
        "ana",
        "cy was kicked: the earliest login left"
    );
    let kinds: Vec<String> = events(&got[3].1)
        .into_iter()
        .map(|fields| fields[1].clone())
        .collect();
    assert_eq!(
        kinds,
        ["join", "join", "join", "mute", "admin", "leave", "chat"]
    );
}

/// Renames keep the login order and the admin role; whispers name who is
/// missing and reach the rest once each.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn renames_and_whispers() {
    use mp1::cluster::scripts::{rename, whisper, ADMIN, EVENTS, USERS_ORDER};
    let Some(redis) = common::redis::start("renames_and_whispers") else {
        return;
    };
    let mut s = connect(&redis);
    let mut c = Connection::default();
    log_in(&mut c, 0, "ana", "a", "s1");
    log_in(&mut c, 1, "bob", "b", "s2");
    rename(&mut c, 2, "ana", "bob", "s1");
    rename(&mut c, 3, "ana", "ana", "s1");
    rename(&mut c, 4, "ana", "anna", "s1");
    whisper(
        &mut c,
        5,
        "bob",
        "s2",
        &["anna", "ghost", "anna", "bob"],
        "psst",
    );
    c.command(6, &[b"ZRANGE", USERS_ORDER.as_bytes(), b"0", b"-1"]);
    c.command(7, &[b"GET", ADMIN.as_bytes()]);
    c.command(8, &[b"XRANGE", EVENTS.as_bytes(), b"-", b"+"]);
    let got = round_trip(&mut s, &mut c, 9);
    assert_eq!(items(&got[2].1), ["taken"]);
    assert_eq!(items(&got[3].1), ["same"]);
    assert_eq!(items(&got[4].1), ["ok"]);
    assert_eq!(items(&got[5].1), ["ok", "ghost"]);
    assert_eq!(items(&got[6].1), ["anna", "bob"], "login order kept");
    assert_eq!(text(&got[7].1), "anna", "the admin role followed");
    assert_eq!(
        events(&got[8].1).pop().unwrap(),
        ["ev", "whisper", "from", "bob", "to", "anna bob", "message", "psst"]
    );
}

/// A node whose lease runs out loses its users, once each, and the admin
/// role passes on; while the lease holds, nothing happens. A node that
/// starts with the id of a live one is refused, and a heartbeat with an
/// old epoch (Redis came back empty) says so.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn a_dead_node_is_reaped_once() {
    use mp1::cluster::scripts::{hello, tick, ADMIN, EVENTS};
    let Some(redis) = common::redis::start("a_dead_node_is_reaped_once") else {
        return;
    };
    let mut s = connect(&redis);
    let mut c = Connection::default();
    hello(&mut c, 0, "a", lease(150), true, "e1");
    hello(&mut c, 1, "b", lease(5000), true, "e2");
    log_in(&mut c, 2, "ana", "a", "s1");
    log_in(&mut c, 3, "bob", "a", "s2");
    log_in(&mut c, 4, "cy", "b", "s3");
    tick(&mut c, 5, "b", lease(5000), "e1");
    hello(&mut c, 6, "b", lease(5000), true, "e3");
    tick(&mut c, 7, "b", lease(5000), "e2");
    let got = round_trip(&mut s, &mut c, 8);
    assert_eq!(
        text(&items_reply(&got[0].1)[0]),
        "e1",
        "the first node sets the epoch"
    );
    assert_eq!(
        text(&items_reply(&got[1].1)[0]),
        "e1",
        "the second learns it"
    );
    assert_eq!(items(&got[5].1), ["ok", "0", "0"], "a's lease holds");
    assert_eq!(items(&got[6].1), ["inuse"], "b is alive");
    assert_eq!(items(&got[7].1), ["reset"], "not Redis's epoch");
    std::thread::sleep(Duration::from_millis(300));
    tick(&mut c, 0, "b", lease(5000), "e1");
    tick(&mut c, 1, "b", lease(5000), "e1");
    c.command(2, &[b"GET", ADMIN.as_bytes()]);
    c.command(3, &[b"XRANGE", EVENTS.as_bytes(), b"-", b"+"]);
    let got = round_trip(&mut s, &mut c, 4);
    assert_eq!(items(&got[0].1), ["ok", "2", "0"]);
    assert_eq!(items(&got[1].1), ["ok", "0", "0"], "twice is harmless");
    assert_eq!(text(&got[2].1), "cy");
    let tail: Vec<Vec<String>> = events(&got[3].1)[3..].to_vec();
    assert_eq!(tail.len(), 4, "{tail:?}");
    // Which node went, for the survivors' logs; then its users, once each.
    assert_eq!(tail[0], ["ev", "nodelost", "node", "a", "users", "2"]);
    assert!(
        tail[1..3].iter().all(|e| e[1] == "leave" && e[5] == "lost"),
        "{tail:?}"
    );
    assert_eq!(tail[3], ["ev", "admin", "name", "cy"]);
    // The tick counts the events trimmed from the stream (by which a node
    // knows it missed some).
    c.command(0, &[b"XTRIM", EVENTS.as_bytes(), b"MAXLEN", b"0"]);
    tick(&mut c, 1, "b", lease(5000), "e1");
    let got = round_trip(&mut s, &mut c, 2);
    // Three logins, the lost node, two departures and the admin.
    assert_eq!(items(&got[1].1), ["ok", "0", "7"]);
}

fn items_reply(r: &Reply) -> Vec<Reply> {
    match r {
        Reply::Array(a) => a.clone(),
        other => panic!("not an array: {other:?}"),
    }
}
