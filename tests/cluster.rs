//! Several mp1d nodes serving one chat through a real Redis (issue 12):
//! three nodes on loopback with clients on each, in both framings; the
//! races driven many times; a node killed; Redis restarted and stopped.
//! Each test starts its own redis-server and stops it by its PID.

mod common;
use common::redis::Redis;
use common::{msg, Client, Mp1d};
use serde_json::{json, Value};
use std::time::{Duration, Instant};

/// A short lease keeps the tests quick: a dead node is noticed within
/// about 1.3 s.
const LEASE: &str = "1";

fn node(redis: &Redis, id: &str) -> Mp1d {
    node_with_lease(redis, id, LEASE)
}

fn node_with_lease(redis: &Redis, id: &str, lease: &str) -> Mp1d {
    let url = redis.url();
    Mp1d::start(&["--cluster", &url, "--node-id", id, "--cluster-lease", lease])
}

fn nodes(redis: &Redis, n: usize) -> Vec<Mp1d> {
    (1..=n).map(|i| node(redis, &format!("n{i}"))).collect()
}

/// Sends one request, ended by a line break when `newline`.
fn send(c: &mut Client, newline: bool, mtp: &str, data: Value) {
    let mut text = msg(mtp, data);
    if newline {
        text.push('\n');
    }
    c.send(&text);
}

/// Logs in as `name`; consumes the login's replies (and "You are the
/// admin." for the first).
fn login(node: &Mp1d, name: &str, newline: bool) -> Client {
    let mut c = node.connect();
    send(&mut c, newline, "Login", json!({ "name": name }));
    let r = c.recv();
    assert_eq!(r["mtp"], "AssignUsername", "{r}");
    assert_eq!(r["status"], "OK", "{name}: {r}");
    c.expect_server_message(&format!("{name} joined the server."));
    c
}

/// What a client received until `until` matched (inclusive).
fn until(c: &mut Client, what: impl Fn(&Value) -> bool) -> Vec<Value> {
    let mut got = Vec::new();
    loop {
        let v = c
            .try_recv(common::WAIT)
            .unwrap_or_else(|| panic!("waited for a reply; got {got:?}"));
        let done = what(&v);
        got.push(v);
        if done {
            return got;
        }
    }
}

fn says(text: &str) -> impl Fn(&Value) -> bool + '_ {
    move |v: &Value| v["mtp"] == "ServerMessage" && v["data"]["message"] == text
}

fn expect(c: &mut Client, mtp: &str, data: Value, status: Option<&str>) {
    let v = c.recv();
    assert_eq!(v["mtp"], mtp, "{v}");
    assert_eq!(v["data"], data, "{v}");
    if let Some(s) = status {
        assert_eq!(v["status"], s, "{v}");
    }
}

/// Each reply ends with a line break for a client that ends its requests
/// with one, and none does for a bare client.
fn check_framing(c: &Client, newline: bool) {
    let text = String::from_utf8_lossy(&c.raw);
    let breaks = text.matches('\n').count();
    let objects = text.matches("{\"mtp\"").count();
    if newline {
        assert_eq!(breaks, objects, "one line per reply: {text}");
    } else {
        assert_eq!(breaks, 0, "bare replies: {text}");
    }
}

/// Every bullet of "clients of every node see one chat": one namespace,
/// one admin, kick/mute/unmute across nodes, whispers, the online list
/// and user info cluster-wide, in login order; admin handover.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn three_nodes_serve_one_chat() {
    let Some(redis) = common::redis::start("three_nodes_serve_one_chat") else {
        return;
    };
    let n = nodes(&redis, 3);
    // ana ends her requests with a line break, bob and cy do not.
    let mut ana = login(&n[0], "ana", true);
    ana.expect_server_message("You are the admin.");
    let mut bob = login(&n[1], "bob", false);
    ana.expect_server_message("bob joined the server.");
    let mut cy = login(&n[2], "cy", false);
    for c in [&mut ana, &mut bob] {
        c.expect_server_message("cy joined the server.");
    }
    // One namespace: bob's name is taken on every node.
    for node in &n {
        let mut dup = node.connect();
        send(&mut dup, false, "Login", json!({"name": "bob"}));
        expect(
            &mut dup,
            "AssignUsername",
            json!({"name": "bob"}),
            Some("DuplicateError"),
        );
    }
    // Chat from node 2 reaches nodes 1 and 3, not its sender.
    send(&mut bob, false, "SendChat", json!({"message": "hello all"}));
    for c in [&mut ana, &mut cy] {
        expect(
            c,
            "SendChatFromUser",
            json!({"name": "bob", "message": "hello all"}),
            None,
        );
    }
    // Whisper across nodes; a name held nowhere is named.
    send(
        &mut ana,
        true,
        "WhisperToUser",
        json!({"to": ["cy", "ghost"], "message": "psst"}),
    );
    expect(
        &mut cy,
        "WhisperFromUser",
        json!({"from": "ana", "message": "psst"}),
        None,
    );
    ana.expect_server_message("UserDoesNotExist: ghost");
    // The online list and user info cover the cluster, in login order.
    send(&mut cy, false, "RequestOnlineList", json!({}));
    expect(
        &mut cy,
        "SendOnlineList",
        json!({"names": ["ana", "bob", "cy"]}),
        None,
    );
    send(&mut ana, true, "RequestUserInfo", json!({"name": "cy"}));
    let addr = cy.local_addr();
    expect(
        &mut ana,
        "ProvideUserInfo",
        json!({"name": "cy", "ip": addr.ip().to_string(), "port": addr.port()}),
        Some("OK"),
    );
    // Only the admin commands; mute reaches bob on another node.
    send(&mut cy, false, "MuteUser", json!({"name": "bob"}));
    expect(
        &mut cy,
        "MuteUser",
        json!({"name": "bob"}),
        Some("NotAdminError"),
    );
    send(&mut ana, true, "MuteUser", json!({"name": "bob"}));
    expect(&mut ana, "MuteUser", json!({"name": "bob"}), Some("OK"));
    for c in [&mut ana, &mut bob, &mut cy] {
        c.expect_server_message("bob has been muted.");
    }
    send(
        &mut bob,
        false,
        "SendChat",
        json!({"message": "can you hear me"}),
    );
    bob.expect_server_message("You are muted.");
    send(&mut ana, true, "MuteUser", json!({"name": "bob"}));
    expect(
        &mut ana,
        "MuteUser",
        json!({"name": "bob"}),
        Some("UserAlreadyMuted"),
    );
    send(&mut ana, true, "UnmuteUser", json!({"name": "bob"}));
    expect(&mut ana, "UnmuteUser", json!({"name": "bob"}), Some("OK"));
    for c in [&mut ana, &mut bob, &mut cy] {
        c.expect_server_message("bob has been unmuted.");
    }
    // The admin role moves to node 3, and cy kicks bob on node 2.
    send(&mut ana, true, "SetAsAdmin", json!({"name": "cy"}));
    expect(&mut ana, "SetAsAdmin", json!({"name": "cy"}), Some("OK"));
    for c in [&mut ana, &mut bob, &mut cy] {
        c.expect_server_message("cy is now the admin.");
    }
    send(&mut cy, false, "KickUser", json!({"name": "bob"}));
    expect(&mut cy, "KickUser", json!({"name": "bob"}), Some("OK"));
    expect(
        &mut bob,
        "Disconnect",
        json!({"message": "Kicked from the server."}),
        None,
    );
    bob.expect_closed();
    for c in [&mut ana, &mut cy] {
        c.expect_server_message("bob has been kicked from the server.");
    }
    // A rename on node 1 is seen on node 3; the old name is free again.
    send(&mut ana, true, "SetUsername", json!({"name": "anna"}));
    expect(&mut ana, "SetUsername", json!({"name": "anna"}), Some("OK"));
    for c in [&mut ana, &mut cy] {
        c.expect_server_message("ana has changed username to anna.");
    }
    // The admin leaves: the earliest login left takes over, told once.
    send(&mut cy, false, "Disconnect", json!({}));
    expect(&mut cy, "Disconnect", json!({"message": "Goodbye."}), None);
    ana.expect_server_message("cy left the server.");
    ana.expect_server_message("anna is now the admin.");
    send(&mut ana, true, "RequestOnlineList", json!({}));
    expect(&mut ana, "SendOnlineList", json!({"names": ["anna"]}), None);
    ana.expect_silence(Duration::from_millis(300));
    let mut again = login(&n[1], "bob", false);
    ana.expect_server_message("bob joined the server.");
    again.expect_silence(Duration::from_millis(100));
    check_framing(&ana, true);
    check_framing(&cy, false);
    check_framing(&again, false);
}

/// The same name claimed on two nodes at the same moment, many times:
/// one `OK`, one `DuplicateError`, every time; renames likewise.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn simultaneous_claims_of_one_name_on_two_nodes() {
    let Some(redis) = common::redis::start("simultaneous_claims_of_one_name_on_two_nodes") else {
        return;
    };
    let n = nodes(&redis, 2);
    for round in 0..40 {
        let name = format!("x{round}");
        let (mut a, mut b) = (n[0].connect(), n[1].connect());
        let login = msg("Login", json!({ "name": name }));
        a.send(&login);
        b.send(&login);
        let (ra, rb) = (a.recv(), b.recv());
        let ok = [&ra, &rb].iter().filter(|r| r["status"] == "OK").count();
        let dup = [&ra, &rb]
            .iter()
            .filter(|r| r["status"] == "DuplicateError")
            .count();
        assert_eq!((ok, dup), (1, 1), "round {round}: {ra} {rb}");
    }
    let mut a = login(&n[0], "ra", false);
    let mut b = login(&n[1], "rb", false);
    for round in 0..40 {
        let rename = msg("SetUsername", json!({ "name": format!("y{round}") }));
        a.send(&rename);
        b.send(&rename);
        let ra = until(&mut a, |v| v["mtp"] == "SetUsername");
        let rb = until(&mut b, |v| v["mtp"] == "SetUsername");
        let statuses = [
            ra.last().unwrap()["status"].clone(),
            rb.last().unwrap()["status"].clone(),
        ];
        assert!(
            statuses.contains(&json!("OK")) && statuses.contains(&json!("DuplicateError")),
            "round {round}: {statuses:?}"
        );
    }
}

/// The admin and the next in line leave at the same moment, on two
/// nodes, many times: the role lands on the earliest login left, and
/// everyone sees the same announcements in the same order.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn admin_and_successor_leaving_at_once() {
    let Some(redis) = common::redis::start("admin_and_successor_leaving_at_once") else {
        return;
    };
    let n = nodes(&redis, 3);
    for round in 0..10 {
        let names: Vec<String> = (0..4).map(|i| format!("r{round}u{i}")).collect();
        let mut c0 = login(&n[0], &names[0], false);
        c0.expect_server_message("You are the admin.");
        let c1 = login(&n[1], &names[1], false);
        let mut c2 = login(&n[2], &names[2], true);
        let mut c3 = login(&n[0], &names[3], false);
        // Let the joins reach everyone.
        until(&mut c2, says(&format!("{} joined the server.", names[3])));
        drop(c0);
        drop(c1);
        let new_admin = format!("{} is now the admin.", names[2]);
        let done = says(&new_admin);
        let seen2 = until(&mut c2, &done);
        let seen3 = until(&mut c3, &done);
        assert_eq!(seen2, seen3, "round {round}: one order");
        let admins = seen2
            .iter()
            .filter(|v| {
                v["data"]["message"]
                    .as_str()
                    .is_some_and(|m| m.ends_with("is now the admin."))
            })
            .count();
        assert!(admins <= 2, "round {round}: {seen2:?}");
        // The role really is on node 3.
        send(&mut c2, true, "MuteUser", json!({ "name": names[3] }));
        let r = until(&mut c2, |v| v["mtp"] == "MuteUser");
        assert_eq!(r.last().unwrap()["status"], "OK", "round {round}: {r:?}");
        // Leave the cluster empty for the next round: c3 sees c2 go, and
        // the next round's first login follows c3's logout on the same
        // node's Redis connection, so it is alone and the admin.
        send(&mut c2, true, "Disconnect", json!({}));
        until(&mut c3, says(&format!("{} left the server.", names[2])));
        send(&mut c3, false, "Disconnect", json!({}));
        until(&mut c3, |v| v["mtp"] == "Disconnect");
    }
}

/// Chats, joins and renames from all three nodes at once: every client
/// sees them in one order (the ones it did not send itself), each chat
/// once, each sender's in the order sent.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn one_order_on_every_node() {
    let Some(redis) = common::redis::start("one_order_on_every_node") else {
        return;
    };
    let n = nodes(&redis, 3);
    let mut cs = [
        login(&n[0], "o1", false),
        login(&n[1], "o2", true),
        login(&n[2], "o3", false),
    ];
    let names = ["o1", "o2", "o3"];
    const CHATS: usize = 150;
    for i in 0..CHATS {
        for (k, c) in cs.iter_mut().enumerate() {
            send(
                c,
                k == 1,
                "SendChat",
                json!({ "message": format!("{} {i}", names[k]) }),
            );
        }
        if i == CHATS / 2 {
            let _late = login(&n[1], "late", false);
        }
    }
    for (k, c) in cs.iter_mut().enumerate() {
        send(c, k == 1, "SendChat", json!({ "message": "end" }));
    }
    // Each client collects until it saw the other two say "end".
    let mut seen: Vec<Vec<String>> = Vec::new();
    for (k, c) in cs.iter_mut().enumerate() {
        let mut ends = 0;
        let mut lines = Vec::new();
        while ends < 2 {
            let v = c.recv();
            let line = match v["mtp"].as_str() {
                Some("SendChatFromUser") => {
                    let m = v["data"]["message"].as_str().unwrap().to_string();
                    if m == "end" {
                        ends += 1;
                    }
                    format!("{}: {m}", v["data"]["name"].as_str().unwrap())
                }
                Some("ServerMessage") => v["data"]["message"].as_str().unwrap().to_string(),
                _ => continue,
            };
            assert!(
                !line.starts_with(&format!("{}:", names[k])),
                "own chat echoed"
            );
            lines.push(line);
        }
        seen.push(lines);
    }
    for (k, lines) in seen.iter().enumerate() {
        for (s, sender) in names.iter().enumerate() {
            if s == k {
                continue;
            }
            let from: Vec<&String> = lines
                .iter()
                .filter(|l| l.starts_with(&format!("{sender}:")))
                .collect();
            let want: Vec<String> = (0..CHATS)
                .map(|i| format!("{sender}: {sender} {i}"))
                .chain([format!("{sender}: end")])
                .collect();
            assert_eq!(
                from,
                want.iter().collect::<Vec<_>>(),
                "{} from {sender}",
                names[k]
            );
        }
    }
    // Pairwise: what both saw, they saw in the same order. Each stopped
    // reading at its own last "end", so one may have read a little further
    // into the log than the other (a departure after the chats): compare
    // as far as both read.
    for a in 0..3 {
        for b in a + 1..3 {
            let common_of = |lines: &Vec<String>| -> Vec<String> {
                // From the first chat on: all three were logged in.
                lines
                    .iter()
                    .skip_while(|l| !l.contains(": "))
                    .filter(|l| {
                        !l.starts_with(&format!("{}:", names[a]))
                            && !l.starts_with(&format!("{}:", names[b]))
                    })
                    .cloned()
                    .collect()
            };
            let (sa, sb) = (common_of(&seen[a]), common_of(&seen[b]));
            let both = sa.len().min(sb.len());
            assert!(both > CHATS, "{} vs {}: {sa:?} {sb:?}", names[a], names[b]);
            assert_eq!(sa[..both], sb[..both], "{} vs {}", names[a], names[b]);
        }
    }
}

/// A node killed with the admin on it: within the lease its users are
/// announced as gone on the other nodes, once each, and the role passes.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn a_killed_node_is_noticed_within_the_lease() {
    let Some(redis) = common::redis::start("a_killed_node_is_noticed_within_the_lease") else {
        return;
    };
    let mut n = nodes(&redis, 3);
    let _admin = login(&n[0], "boss", false);
    let _also = login(&n[0], "mate", true);
    let mut b = login(&n[1], "bea", false);
    let mut c = login(&n[2], "cal", true);
    until(&mut b, says("cal joined the server."));
    let killed = Instant::now();
    n[0].child.kill().unwrap(); // SIGKILL
    let done = says("bea is now the admin.");
    let seen_b = until(&mut b, &done);
    let took = killed.elapsed();
    let seen_c = until(&mut c, &done);
    let want = [
        "boss left the server (their server was lost).",
        "mate left the server (their server was lost).",
        "bea is now the admin.",
    ];
    for seen in [&seen_b, &seen_c] {
        let texts: Vec<&str> = seen
            .iter()
            .filter_map(|v| v["data"]["message"].as_str())
            .collect();
        assert_eq!(texts, want);
    }
    assert!(
        took < Duration::from_secs(4),
        "noticed after {took:?} (lease 1 s)"
    );
    b.expect_silence(Duration::from_millis(1500));
    send(&mut c, true, "RequestOnlineList", json!({}));
    expect(
        &mut c,
        "SendOnlineList",
        json!({"names": ["bea", "cal"]}),
        None,
    );
}

/// A node killed and restarted at once with the same id finds its earlier
/// life's lease still running: it waits it out (not an error), its old
/// users are announced as gone, and it serves again.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn a_node_restarted_at_once_waits_out_its_old_lease() {
    let Some(redis) = common::redis::start("a_node_restarted_at_once_waits_out_its_old_lease")
    else {
        return;
    };
    let mut a = node(&redis, "a");
    let b = node(&redis, "b");
    let _old = login(&a, "old", false);
    let mut watcher = login(&b, "watcher", false);
    a.child.kill().unwrap();
    let _ = a.child.wait();
    let a = node(&redis, "a");
    watcher.expect_server_message("old left the server (their server was lost).");
    watcher.expect_server_message("watcher is now the admin.");
    let _back = login(&a, "old", false);
    watcher.expect_server_message("old joined the server.");
}

/// A node cut off for longer than its lease (stopped, then resumed) finds
/// itself expelled: its clients get a Disconnect saying why, and the
/// others saw them leave.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn an_expelled_node_tells_its_clients_why() {
    let Some(redis) = common::redis::start("an_expelled_node_tells_its_clients_why") else {
        return;
    };
    let n = nodes(&redis, 2);
    let mut a = login(&n[0], "cut", false);
    a.expect_server_message("You are the admin.");
    let mut b = login(&n[1], "stay", false);
    a.expect_server_message("stay joined the server.");
    n[0].signal(libc::SIGSTOP);
    until(&mut b, says("cut left the server (their server was lost)."));
    n[0].signal(libc::SIGCONT);
    let v = until(&mut a, |v| v["mtp"] == "Disconnect");
    let why = v.last().unwrap()["data"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(why.contains("lost its place"), "{why}");
    a.expect_closed();
    // The node serves new logins again.
    let _again = login(&n[0], "cut", false);
    until(&mut b, says("cut joined the server."));
}

/// Redis restarted (empty) in the middle of a chat stream: the nodes
/// reconnect and register their users again, names stay held once, and no
/// chat is delivered twice or out of order; a chat sent while Redis was
/// away is answered with a ServerMessage saying so.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn redis_restarted_in_the_middle_of_a_chat_stream() {
    let Some(mut redis) = common::redis::start("redis_restarted_in_the_middle_of_a_chat_stream")
    else {
        return;
    };
    let n = nodes(&redis, 3);
    let mut a = login(&n[0], "sender", false);
    let mut b = login(&n[1], "reader", true);
    let mut c = login(&n[2], "third", false);
    until(&mut a, says("third joined the server."));
    until(&mut b, says("third joined the server."));
    let mut sent = Vec::new();
    let mut refused = 0;
    for i in 0..200 {
        if i == 80 {
            redis.start_again();
        }
        send(
            &mut a,
            false,
            "SendChat",
            json!({ "message": format!("m{i}") }),
        );
        sent.push(i);
        std::thread::sleep(Duration::from_millis(10));
        while let Some(v) = a.poll_recv() {
            let m = v["data"]["message"].as_str().unwrap_or_default();
            assert!(m.starts_with("The chat"), "{v}");
            refused += 1;
        }
    }
    send(&mut a, false, "SendChat", json!({ "message": "end" }));
    std::thread::sleep(Duration::from_millis(300));
    // The last one may be refused too if Redis is still away: retry.
    let deadline = Instant::now() + common::WAIT;
    let mut got: Vec<String> = Vec::new();
    for reader in [&mut b, &mut c] {
        got.clear();
        loop {
            match reader.try_recv(Duration::from_millis(500)) {
                Some(v) if v["mtp"] == "SendChatFromUser" => {
                    let m = v["data"]["message"].as_str().unwrap().to_string();
                    if m == "end" {
                        break;
                    }
                    got.push(m);
                }
                Some(v) => assert_eq!(v["mtp"], "ServerMessage", "{v}"),
                None => {
                    assert!(Instant::now() < deadline, "no end");
                    send(&mut a, false, "SendChat", json!({ "message": "end" }));
                }
            }
        }
        let numbers: Vec<usize> = got.iter().map(|m| m[1..].parse().unwrap()).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "in order, once each: {numbers:?}"
        );
        assert!(
            numbers.len() + refused >= 200,
            "{} delivered, {refused} refused",
            numbers.len()
        );
    }
    // Names are held once: sender's name is taken on every node.
    for node in &n {
        let mut dup = node.connect();
        send(&mut dup, false, "Login", json!({"name": "sender"}));
        expect(
            &mut dup,
            "AssignUsername",
            json!({"name": "sender"}),
            Some("DuplicateError"),
        );
    }
    send(&mut c, false, "RequestOnlineList", json!({}));
    let v = until(&mut c, |v| v["mtp"] == "SendOnlineList");
    assert_eq!(
        v.last().unwrap()["data"]["names"],
        json!(["sender", "reader", "third"])
    );
}

/// Redis stopped for a while, then started: requests that need it get a
/// ServerMessage, those that do not are answered, connections stay open;
/// when it is back, everything works again and the log said what happened.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn redis_stopped_then_started() {
    let Some(mut redis) = common::redis::start("redis_stopped_then_started") else {
        return;
    };
    let n = nodes(&redis, 2);
    let mut a = login(&n[0], "al", false);
    a.expect_server_message("You are the admin.");
    let mut b = login(&n[1], "bo", true);
    a.expect_server_message("bo joined the server.");
    redis.stop();
    let line = n[0].wait_log("lost the cluster's Redis");
    assert!(line.contains(" [n1] lost"), "says which node: {line}");
    send(&mut a, false, "SendChat", json!({"message": "anyone?"}));
    a.expect_server_message_starting("The chat is unavailable right now");
    send(&mut a, false, "MuteUser", json!({"name": "bo"}));
    a.expect_server_message_starting("The chat is unavailable right now");
    let mut late = n[1].connect();
    send(&mut late, false, "Login", json!({"name": "late"}));
    late.expect_server_message_starting("The chat is unavailable right now");
    send(&mut b, true, "RequestOnlineList", json!({}));
    expect(
        &mut b,
        "SendOnlineList",
        json!({"names": ["al", "bo"]}),
        None,
    );
    std::thread::sleep(Duration::from_secs(2)); // longer than the lease
    b.expect_silence(Duration::from_millis(10));
    redis.start_again();
    n[0].wait_log("back in the cluster");
    n[1].wait_log("back in the cluster");
    // Nobody was announced as gone; chat flows again; the admin is still al.
    let deadline = Instant::now() + common::WAIT;
    loop {
        send(&mut a, false, "SendChat", json!({"message": "back"}));
        if let Some(v) = b.try_recv(Duration::from_millis(300)) {
            assert_eq!(v["mtp"], "SendChatFromUser", "{v}");
            break;
        }
        assert!(Instant::now() < deadline, "chat did not come back");
        while a.poll_recv().is_some() {}
    }
    while a.poll_recv().is_some() {}
    send(&mut a, false, "MuteUser", json!({"name": "bo"}));
    expect(&mut a, "MuteUser", json!({"name": "bo"}), Some("OK"));
    send(&mut late, false, "Login", json!({"name": "late"}));
    expect(
        &mut late,
        "AssignUsername",
        json!({"name": "late"}),
        Some("OK"),
    );
    send(&mut late, false, "Login", json!({"name": "al"}));
    let mut dup = n[1].connect();
    send(&mut dup, false, "Login", json!({"name": "al"}));
    expect(
        &mut dup,
        "AssignUsername",
        json!({"name": "al"}),
        Some("DuplicateError"),
    );
}

/// Start-up: an unreachable Redis is a clear error naming it, and the LAN
/// bridge is refused in cluster mode.
#[test]
fn start_up_errors_name_the_problem() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("redis://127.0.0.1:{port}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mp1d"))
        .args(["--port", "0", "--bind", "127.0.0.1", "--cluster", &url])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains(&format!("cannot reach the cluster's Redis at {url}")),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mp1d"))
        .args(["--cluster", &url, "--peer-name", "br"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--peer-name is not available with --cluster"),
        "{err}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mp1d"))
        .args(["--cluster", "http://127.0.0.1:6379"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--cluster: expected redis://HOST[:PORT]"),
        "{err}"
    );
}

/// A node shut down (SIGTERM) logs its users out on its way: the others
/// see them leave at once, not after the lease (30 s here).
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn a_node_shut_down_says_goodbye() {
    let Some(redis) = common::redis::start("a_node_shut_down_says_goodbye") else {
        return;
    };
    let mut a = node_with_lease(&redis, "a", "30");
    let b = node_with_lease(&redis, "b", "30");
    let _first = login(&a, "first", false);
    let mut watcher = login(&b, "watcher", false);
    a.signal(libc::SIGTERM);
    assert_eq!(a.wait_exit(), Some(0));
    watcher.expect_server_message("first left the server.");
    watcher.expect_server_message("watcher is now the admin.");
}

/// Events trimmed from the stream before a node read them (here: the node
/// is paused while they happen and the stream is trimmed to nothing) are
/// not silently missed: the node catches up from a snapshot and its
/// clients are told what changed.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn a_node_that_missed_trimmed_events_catches_up() {
    let Some(redis) = common::redis::start("a_node_that_missed_trimmed_events_catches_up") else {
        return;
    };
    let a = node_with_lease(&redis, "a", "5");
    let b = node_with_lease(&redis, "b", "5");
    let mut watcher = login(&a, "watcher", false);
    watcher.expect_server_message("You are the admin.");
    let _leaver = login(&b, "leaver", false);
    watcher.expect_server_message("leaver joined the server.");
    a.signal(libc::SIGSTOP);
    drop(_leaver);
    let _newbie = login(&b, "newbie", false);
    let mut raw = std::net::TcpStream::connect(redis.addr).unwrap();
    let trimmed = common::redis::call(&mut raw, &[b"XTRIM", b"{mp1}:ev", b"MAXLEN", b"0"]);
    assert!(
        matches!(trimmed, Some(mp1::cluster::redis::Reply::Integer(_))),
        "{trimmed:?}"
    );
    a.signal(libc::SIGCONT);
    a.wait_log("catching up from a snapshot");
    watcher.expect_server_message("leaver left the server.");
    watcher.expect_server_message("newbie joined the server.");
    send(&mut watcher, false, "RequestOnlineList", json!({}));
    expect(
        &mut watcher,
        "SendOnlineList",
        json!({"names": ["watcher", "newbie"]}),
        None,
    );
}
