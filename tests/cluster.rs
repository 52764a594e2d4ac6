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

/// Logs in as `name`, trying again (every 100 ms, up to `common::WAIT`)
/// while the node refuses: it is reconnecting or catching up.
fn login_eventually(node: &Mp1d, name: &str) -> Client {
    let deadline = Instant::now() + common::WAIT;
    loop {
        let mut c = node.connect();
        send(&mut c, false, "Login", json!({ "name": name }));
        let r = c.recv();
        if r["status"] == "OK" {
            c.expect_server_message(&format!("{name} joined the server."));
            return c;
        }
        assert!(Instant::now() < deadline, "{name}: {r}");
        std::thread::sleep(Duration::from_millis(100));
    }
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
    // as far as both read. Both saw every chat of the third client: its
    // first one is where both views start (before it, each may have seen
    // a join the other saw before its own first line).
    for a in 0..3 {
        for b in a + 1..3 {
            let third = names[3 - a - b];
            let common_of = |lines: &Vec<String>| -> Vec<String> {
                lines
                    .iter()
                    .skip_while(|l| !l.starts_with(&format!("{third}:")))
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
    // The survivors' logs say which node went, not only who left.
    for survivor in &n[1..] {
        let line = survivor.wait_log("node n1 was lost");
        assert!(line.contains("its 2 users leave the chat"), "{line}");
    }
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

/// A node frozen for longer than its lease (stopped, then resumed) was
/// taken for dead: the others saw its users leave, and when it resumes its
/// clients get a Disconnect saying why (its own clock fences it at once,
/// or it reads first that its users were reaped).
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
    assert!(
        why.contains("lost its place") || why.contains("lost contact with the chat's Redis"),
        "{why}"
    );
    a.expect_closed();
    // The node serves new logins again, once it has caught up.
    let _again = login_eventually(&n[0], "cut");
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

/// Redis stopped for a while (shorter than the lease: longer, and a node
/// fences itself, as when it is cut off), then started: requests that need
/// it get a ServerMessage, those that do not are answered, connections
/// stay open; when it is back, everything works again and the log said
/// what happened.
#[cfg_attr(not(have_redis), ignore = "redis-server is not installed")]
#[test]
fn redis_stopped_then_started() {
    let Some(mut redis) = common::redis::start("redis_stopped_then_started") else {
        return;
    };
    // Reconnection backs off up to 2 s: back within 3.2 s of the stop, well
    // inside the fence (6 s).
    let n = [
        node_with_lease(&redis, "n1", "8"),
        node_with_lease(&redis, "n2", "8"),
    ];
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
    std::thread::sleep(Duration::from_secs(2));
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

/// What clients saw under a fault, and the invariants checked over it, in
/// the spirit of Jepsen: every reply is recorded with the round in which
/// the test read it (a round reads what has arrived at every client).
struct History {
    clients: Vec<Client>,
    /// (round, client, reply)
    seen: Vec<(usize, usize, Value)>,
    /// Names held by clients logged in before recording began: (client, name).
    held: Vec<(usize, String)>,
    round: usize,
}

impl History {
    fn new() -> History {
        History {
            clients: Vec::new(),
            seen: Vec::new(),
            held: Vec::new(),
            round: 0,
        }
    }

    /// Records `c` from now on; it holds `name` if it is logged in.
    fn add(&mut self, c: Client, name: Option<&str>) -> usize {
        self.clients.push(c);
        let i = self.clients.len() - 1;
        if let Some(name) = name {
            self.held.push((i, name.to_string()));
        }
        i
    }

    /// One round: what has arrived at every client.
    fn sample(&mut self) {
        self.round += 1;
        for (i, c) in self.clients.iter_mut().enumerate() {
            while let Some(v) = c.poll_recv() {
                self.seen.push((self.round, i, v));
            }
        }
    }

    /// Rounds every 20 ms for `d`.
    fn sample_for(&mut self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end {
            self.sample();
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn replies(&self, client: usize) -> impl Iterator<Item = &Value> {
        self.seen
            .iter()
            .filter(move |(_, i, _)| *i == client)
            .map(|(_, _, v)| v)
    }

    /// Every text (server message or disconnect reason) any client saw.
    fn texts(&self) -> Vec<String> {
        let text = |v: &Value| v["data"]["message"].as_str().map(str::to_string);
        self.seen
            .iter()
            .filter(|(_, _, v)| v["mtp"] != "SendChatFromUser")
            .filter_map(|(_, _, v)| text(v))
            .collect()
    }

    /// A name is held by at most one client at every sampled round: from
    /// its `AssignUsername OK` until its `Disconnect` (a release read in
    /// the same round as a claim counts first).
    fn check_one_holder(&self) {
        let mut holder: std::collections::HashMap<String, usize> =
            self.held.iter().map(|(i, n)| (n.clone(), *i)).collect();
        let mut rounds: Vec<usize> = self.seen.iter().map(|s| s.0).collect();
        rounds.dedup();
        for round in rounds {
            let now: Vec<&(usize, usize, Value)> =
                self.seen.iter().filter(|s| s.0 == round).collect();
            for (_, i, v) in &now {
                if v["mtp"] == "Disconnect" {
                    holder.retain(|_, h| h != i);
                }
            }
            for (_, i, v) in &now {
                if v["mtp"] == "AssignUsername" && v["status"] == "OK" {
                    let name = v["data"]["name"].as_str().unwrap().to_string();
                    if let Some(other) = holder.insert(name.clone(), *i) {
                        assert_eq!(
                            other, *i,
                            "round {round}: {name} held by clients {other} and {i} at once"
                        );
                    }
                }
            }
        }
    }

    /// Every client saw each sender's numbered chats (`"<n> ..."`) once each,
    /// in the order sent.
    fn check_chats_once_in_order(&self) {
        for i in 0..self.clients.len() {
            let mut last: std::collections::HashMap<String, i64> = Default::default();
            for v in self.replies(i).filter(|v| v["mtp"] == "SendChatFromUser") {
                let from = v["data"]["name"].as_str().unwrap().to_string();
                let text = v["data"]["message"].as_str().unwrap();
                let Ok(n) = text.split(' ').next().unwrap_or("").parse::<i64>() else {
                    continue;
                };
                let before = last.insert(from.clone(), n).unwrap_or(-1);
                assert!(n > before, "client {i}: {from}'s {n} after {before}");
            }
        }
    }
}

/// Messages that would be untrue of a node that was alive and reachable
/// all along.
fn untrue_of_a_live_node(t: &str) -> bool {
    t.contains("their server was lost") || t.contains("lost its place")
}

/// Redis paused (`DEBUG SLEEP`) for longer than the lease: a pause is no
/// reason to reap anyone. Every node, unable to renew, may give up its
/// users' names (it cannot tell a pause from being cut off) and says so;
/// but no node is reaped for the time Redis did not serve, so no one is
/// announced as lost or told their server lost its place. A shorter pause
/// touches no one.
#[test]
fn a_paused_redis_reaps_no_one() {
    let Some(redis) = common::redis::start("a_paused_redis_reaps_no_one") else {
        return;
    };
    let n: Vec<Mp1d> = ["a", "b", "c"]
        .iter()
        .map(|id| node_with_lease(&redis, id, "2"))
        .collect();
    let mut h = History::new();
    for (k, name) in ["pa", "pb", "pc"].iter().enumerate() {
        let c = login(&n[k], name, false);
        h.add(c, Some(name));
    }
    h.sample_for(Duration::from_millis(300));
    let reply = common::redis::command(redis.addr, &["DEBUG", "SLEEP", "2.5"]);
    assert!(reply.starts_with("+OK"), "{reply}");
    h.sample_for(Duration::from_secs(3));
    for t in h.texts() {
        assert!(!untrue_of_a_live_node(&t), "{t}");
        assert!(
            !t.starts_with("This server") || t.contains("lost contact with the chat's Redis"),
            "{t}"
        );
    }
    h.check_one_holder();
    // Served again: a shorter pause than the fence touches no one.
    let mut x = login(&n[0], "qa", false);
    let mut y = login(&n[1], "qb", false);
    until(&mut x, says("qb joined the server."));
    let reply = common::redis::command(redis.addr, &["DEBUG", "SLEEP", "0.7"]);
    assert!(reply.starts_with("+OK"), "{reply}");
    send(&mut x, false, "SendChat", json!({"message": "still here"}));
    expect(
        &mut y,
        "SendChatFromUser",
        json!({"name": "qa", "message": "still here"}),
        None,
    );
    y.expect_silence(Duration::from_millis(1500));
}

/// Node c reaches Redis through a link the test cuts for 4 s (lease 1 s):
/// c gives up its user's name and tells them before the other nodes may
/// reap it, so a newcomer elsewhere who takes the name never holds it
/// while the first still does; c's `/healthz` says 503 while cut off and
/// 200 once it serves again.
#[test]
fn a_node_cut_off_gives_up_its_names_before_anyone_takes_them() {
    let Some(redis) =
        common::redis::start("a_node_cut_off_gives_up_its_names_before_anyone_takes_them")
    else {
        return;
    };
    let link = common::redis::Forwarder::new(redis.addr);
    let a = node(&redis, "a");
    let url = link.url();
    let args = [
        "--cluster",
        &url,
        "--node-id",
        "c",
        "--cluster-lease",
        LEASE,
    ];
    // (`--http=`: its line is not the one after "listening on" here.)
    let c = Mp1d::start(&[&args[..], &["--http=127.0.0.1:0"]].concat());
    let line = c.wait_log("HTTP on ");
    let at = line.find("HTTP on ").unwrap() + 8;
    let http: std::net::SocketAddr = line[at..].split(": ").next().unwrap().parse().unwrap();
    let health = || http_status(http, "/healthz");
    assert_eq!(health(), 200);
    let mut h = History::new();
    let held = h.add(login(&c, "held", false), Some("held"));
    let watcher = h.add(login(&a, "watcher", false), Some("watcher"));
    h.sample_for(Duration::from_millis(200));
    link.cut(true);
    let cut = Instant::now();
    // A newcomer on a tries for the name until it gets it.
    let mut taken = None;
    let mut saw_503 = false;
    while taken.is_none() && cut.elapsed() < Duration::from_secs(4) {
        let mut newcomer = a.connect();
        send(&mut newcomer, false, "Login", json!({"name": "held"}));
        let i = h.add(newcomer, None);
        let deadline = Instant::now() + Duration::from_millis(300);
        while Instant::now() < deadline {
            h.sample();
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.replies(i).any(|v| v["status"] == "OK") {
            taken = Some(cut.elapsed());
        }
        saw_503 |= health() == 503;
    }
    let taken = taken.expect("the name is free again within 4 s");
    h.sample_for(Duration::from_millis(100));
    h.check_one_holder();
    assert!(saw_503, "c's /healthz said 503 while cut off");
    let told: Vec<&Value> = h.replies(held).collect();
    assert!(
        told.iter().any(|v| v["mtp"] == "Disconnect"
            && v["data"]["message"]
                .as_str()
                .unwrap()
                .contains("lost contact with the chat's Redis")),
        "{told:?}"
    );
    let seen: Vec<&Value> = h.replies(watcher).collect();
    assert!(
        seen.iter()
            .any(|v| v["data"]["message"] == "held left the server (their server was lost)."),
        "{seen:?}"
    );
    assert!(taken < Duration::from_secs(3), "taken after {taken:?}");
    // Healed: c serves again.
    link.cut(false);
    let deadline = Instant::now() + common::WAIT;
    while health() != 200 {
        assert!(Instant::now() < deadline, "c did not come back");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _back = login_eventually(&c, "back");
}

/// The status code of `GET path` on an HTTP face.
fn http_status(addr: std::net::SocketAddr, path: &str) -> u16 {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(common::WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = s.read_to_string(&mut text);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Redis out of memory (`maxmemory`, `noeviction`) under a chat flood:
/// chats are refused and told so, as what it is; renewals still go
/// through, so no node is reaped and no one is cut; once memory is back,
/// chat flows again.
#[test]
fn redis_out_of_memory_refuses_chats_and_reaps_no_one() {
    let Some(redis) = common::redis::start("redis_out_of_memory_refuses_chats_and_reaps_no_one")
    else {
        return;
    };
    let n = nodes(&redis, 3);
    let mut h = History::new();
    for (k, name) in ["m1", "m2", "m3"].iter().enumerate() {
        let c = login(&n[k], name, false);
        h.add(c, Some(name));
    }
    let mut flooder = login(&n[0], "flood", false);
    let info = common::redis::command(redis.addr, &["INFO", "memory"]);
    let used: u64 = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .expect("used_memory");
    let limit = (used + 300_000).to_string();
    for (k, v) in [("maxmemory-policy", "noeviction"), ("maxmemory", &limit)] {
        let r = common::redis::command(redis.addr, &["CONFIG", "SET", k, v]);
        assert!(r.starts_with("+OK"), "{r}");
    }
    let body = "x".repeat(1000);
    let mut refusals = Vec::new();
    // Sends chat `i`; what came back (refusals) is kept.
    let mut flood = |i: usize, refusals: &mut Vec<Value>| {
        let message = json!({ "message": format!("{i} {body}") });
        send(&mut flooder, false, "SendChat", message);
        while let Some(v) = flooder.poll_recv() {
            refusals.push(v);
        }
    };
    for i in 0..2000 {
        flood(i, &mut refusals);
        if !refusals.is_empty() {
            break;
        }
        h.sample();
    }
    // The refusals may trail the flood on a busy machine: a few more
    // chats, slowly, until one comes.
    let mut next = 2000;
    let deadline = Instant::now() + common::WAIT;
    while refusals.is_empty() && Instant::now() < deadline {
        flood(next, &mut refusals);
        next += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!refusals.is_empty(), "Redis never ran out of memory");
    // Three leases with Redis full.
    for i in next..next + 30 {
        flood(i, &mut refusals);
        h.sample_for(Duration::from_millis(100));
    }
    for v in &refusals {
        assert_eq!(
            v["data"]["message"], "The chat's Redis is out of memory; nothing was sent.",
            "{v}"
        );
    }
    for t in h.texts() {
        let quiet = t.ends_with("joined the server.") || t == "You are the admin.";
        assert!(quiet, "nothing else happened: {t}");
    }
    assert!(h.seen.iter().all(|(_, _, v)| v["mtp"] != "Disconnect"));
    h.check_chats_once_in_order();
    let r = common::redis::command(redis.addr, &["CONFIG", "SET", "maxmemory", "0"]);
    assert!(r.starts_with("+OK"), "{r}");
    send(&mut flooder, false, "SendChat", json!({"message": "1"}));
    let got = until(&mut h.clients[2], |v| v["data"]["message"] == "1");
    assert_eq!(got.last().unwrap()["data"]["name"], "flood");
}

/// Logins racing Redis killed and restarted empty, each name on two
/// nodes at once, Redis killed halfway through sending them; those told to
/// try again do, once: every login gets an answer (OK, refused, or try
/// again); the online lists agree within two leases and list exactly who
/// holds a name; nobody is announced as joining twice.
#[test]
fn logins_racing_a_redis_restart_are_all_answered() {
    let Some(mut redis) = common::redis::start("logins_racing_a_redis_restart_are_all_answered")
    else {
        return;
    };
    let n = nodes(&redis, 2);
    let mut watchers = [login(&n[0], "w0", false), login(&n[1], "w1", false)];
    until(&mut watchers[0], says("w1 joined the server."));
    let mut h = History::new();
    for (k, w) in watchers.into_iter().enumerate() {
        h.add(w, Some(["w0", "w1"][k]));
    }
    let answered = |h: &History, i: usize, k: usize| {
        h.replies(i)
            .filter(|v| v["mtp"] == "AssignUsername" || v["mtp"] == "ServerMessage")
            .count()
            >= k
    };
    for round in 0..2 {
        let mut racing = Vec::new();
        for i in 0..100 {
            for node in &n {
                let mut c = node.connect();
                let name = format!("L{round}{i:02}");
                send(&mut c, false, "Login", json!({ "name": name }));
                racing.push((h.add(c, None), name));
            }
            if i == 50 {
                redis.start_again();
            }
        }
        // Everyone is answered; those told to try again (neither refused
        // nor OK) do, once, and are answered again.
        for pass in 1..=2 {
            let deadline = Instant::now() + common::WAIT;
            loop {
                h.sample_for(Duration::from_millis(100));
                let unanswered = racing
                    .iter()
                    .filter(|(i, _)| !answered(&h, *i, pass))
                    .count();
                if unanswered == 0 {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "round {round}, pass {pass}: {unanswered} logins got no answer"
                );
            }
            if pass == 1 {
                racing.retain(|(i, _)| !h.replies(*i).any(|v| v["mtp"] == "AssignUsername"));
                for (i, name) in &racing {
                    send(&mut h.clients[*i], false, "Login", json!({ "name": name }));
                }
            }
        }
    }
    // Two leases for the restored users to come back; then the lists.
    h.sample_for(Duration::from_millis(2500));
    h.check_one_holder();
    let holding: std::collections::BTreeSet<String> = (2..h.clients.len())
        .filter(|&i| !h.replies(i).any(|v| v["mtp"] == "Disconnect"))
        .filter_map(|i| {
            h.replies(i)
                .find(|v| v["mtp"] == "AssignUsername" && v["status"] == "OK")
                .map(|v| v["data"]["name"].as_str().unwrap().to_string())
        })
        .chain(["w0".to_string(), "w1".to_string()])
        .collect();
    for w in 0..2 {
        send(&mut h.clients[w], false, "RequestOnlineList", json!({}));
    }
    h.sample_for(Duration::from_millis(300));
    for w in 0..2 {
        let list = h
            .replies(w)
            .filter(|v| v["mtp"] == "SendOnlineList")
            .last()
            .expect("the online list")
            .clone();
        let names: std::collections::BTreeSet<String> = list["data"]["names"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(names, holding, "node {w}'s list");
        // Joined and left alternate for every name.
        let mut on = std::collections::HashSet::new();
        for t in h.replies(w).filter_map(|v| v["data"]["message"].as_str()) {
            if let Some(name) = t.strip_suffix(" joined the server.") {
                assert!(on.insert(name.to_string()), "node {w}: {name} joined twice");
            } else if let Some((name, _)) = t.split_once(" left the server") {
                on.remove(name);
            }
        }
    }
}

/// The value of `field` in an `INFO`-style reply.
fn info_field(info: &str, field: &str) -> Option<String> {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// Waits (up to 20 s) until `ready` holds; panics saying `what` if not.
fn wait_for(what: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A master, its replica and three Sentinels; two nodes following them
/// (`redis+sentinel://`); the master killed (`kill -9`): chat resumes on
/// both nodes within 15 s, no one is announced gone or cut, the lists
/// agree, names stay unique, and no chat is delivered twice or out of
/// order. The last login before the kill never reached the replica
/// (replication is asynchronous; here its link loses it): the nodes, ahead
/// of the new master, catch up from a snapshot, and that user is told and
/// announced gone.
#[test]
fn a_redis_failover_is_followed() {
    let test = "a_redis_failover_is_followed";
    let Some(mut master) = common::redis::start(test) else {
        return;
    };
    let link = common::redis::Forwarder::new(master.addr);
    let replica = common::redis::start_replica(test, link.addr).unwrap();
    let sentinels: Vec<Redis> = (0..3)
        .map(|_| common::redis::start_sentinel(test, &master, "chat").unwrap())
        .collect();
    wait_for("the replica is in sync", || {
        let info = common::redis::command(replica.addr, &["INFO", "replication"]);
        info_field(&info, "master_link_status").as_deref() == Some("up")
    });
    wait_for("the Sentinels know each other and the replica", || {
        sentinels.iter().all(|s| {
            let r = common::redis::command(s.addr, &["SENTINEL", "master", "chat"]);
            let at = |k: &str| {
                r.split("\r\n")
                    .skip_while(|l| *l != k)
                    .nth(2)
                    .map(str::to_string)
            };
            at("num-other-sentinels").as_deref() == Some("2")
                && at("num-slaves").as_deref() == Some("1")
        })
    });
    let addrs: Vec<String> = sentinels.iter().map(|s| s.addr.to_string()).collect();
    let url = format!("redis+sentinel://{}/chat", addrs.join(","));
    // A lease longer than the failover: the nodes need not fence.
    let start =
        |id: &str| Mp1d::start(&["--cluster", &url, "--node-id", id, "--cluster-lease", "10"]);
    let n = [start("a"), start("b")];
    let mut h = History::new();
    let sender = h.add(login(&n[0], "fa", false), Some("fa"));
    let reader = h.add(login(&n[1], "fb", false), Some("fb"));
    h.sample_for(Duration::from_millis(300));
    let mut next = 0;
    let chat = |h: &mut History, next: &mut usize| {
        let m = json!({ "message": format!("{next} chat") });
        send(&mut h.clients[sender], false, "SendChat", m);
        *next += 1;
    };
    for _ in 0..5 {
        chat(&mut h, &mut next);
    }
    h.sample_for(Duration::from_millis(300));
    // The replica has everything so far; what follows does not reach it.
    wait_for("the replica caught up", || {
        let offset = |r: &Redis| {
            let info = common::redis::command(r.addr, &["INFO", "replication"]);
            info_field(&info, "master_repl_offset")
        };
        offset(&master) == offset(&replica)
    });
    link.lose(true);
    let ghost = h.add(login(&n[0], "ghost", false), Some("ghost"));
    h.sample_for(Duration::from_millis(300));
    let before = h.replies(reader).count();
    assert!(before >= 6, "chat flows before the failover");
    master.stop(); // SIGKILL
    let killed = Instant::now();
    loop {
        chat(&mut h, &mut next);
        h.sample_for(Duration::from_millis(300));
        if h.replies(reader).count() > before {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(15),
            "chat did not resume within 15 s"
        );
    }
    for _ in 0..5 {
        chat(&mut h, &mut next);
    }
    h.sample_for(Duration::from_secs(1));
    // Every chat after the failover reached the reader (the last five).
    let got: Vec<String> = h
        .replies(reader)
        .filter_map(|v| v["data"]["message"].as_str().map(str::to_string))
        .collect();
    for i in next - 5..next {
        assert!(got.contains(&format!("{i} chat")), "{i}: {got:?}");
    }
    h.check_chats_once_in_order();
    for (_, c, v) in &h.seen {
        let text = v["data"]["message"].as_str().unwrap_or_default();
        if *c == ghost || text.starts_with("ghost") {
            continue;
        }
        assert_ne!(v["mtp"], "Disconnect", "{v}");
        assert!(!text.contains("left the server"), "{v}");
    }
    // What the failover lost: ghost's login, told and announced.
    assert!(
        h.replies(ghost).any(|v| v["mtp"] == "Disconnect"
            && v["data"]["message"]
                .as_str()
                .unwrap()
                .contains("failed over")),
        "{:?}",
        h.replies(ghost).collect::<Vec<_>>()
    );
    for c in [sender, reader] {
        let texts: Vec<&str> = h
            .replies(c)
            .filter_map(|v| v["data"]["message"].as_str())
            .collect();
        assert!(texts.contains(&"ghost left the server."), "{texts:?}");
    }
    // Names stay unique on the new master.
    let (mut x, mut y) = (n[0].connect(), n[1].connect());
    let claim = msg("Login", json!({"name": "same"}));
    x.send(&claim);
    y.send(&claim);
    let statuses = [x.recv()["status"].clone(), y.recv()["status"].clone()];
    assert!(
        statuses.contains(&json!("OK")) && statuses.contains(&json!("DuplicateError")),
        "{statuses:?}"
    );
    for c in [sender, reader] {
        send(&mut h.clients[c], false, "RequestOnlineList", json!({}));
    }
    h.sample_for(Duration::from_millis(300));
    for c in [sender, reader] {
        let list = h
            .replies(c)
            .filter(|v| v["mtp"] == "SendOnlineList")
            .last()
            .cloned();
        assert_eq!(list.unwrap()["data"]["names"], json!(["fa", "fb", "same"]));
    }
}
