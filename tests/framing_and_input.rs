//! Stream framing, byte-level robustness and ordering against a real mp1d.

mod common;
use common::*;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOGIN: &str = r#"{"mtp": "Login", "data": {"name": "ana"}}"#;

#[test]
fn bare_client_gets_bare_replies_newline_client_gets_lines() {
    let server = Mp1d::start(&[]);
    let mut bare = server.connect();
    bare.send(LOGIN);
    bare.recv();
    bare.recv();
    bare.recv();
    assert_eq!(
        String::from_utf8(bare.raw.clone()).unwrap(),
        concat!(
            r#"{"mtp":"AssignUsername","data":{"name":"ana"},"status":"OK"}"#,
            r#"{"mtp":"ServerMessage","data":{"message":"ana joined the server."}}"#,
            r#"{"mtp":"ServerMessage","data":{"message":"You are the admin."}}"#
        )
    );
    let mut lines = server.connect();
    lines.send("{\"mtp\":\"Login\",\"data\":{\"name\":\"bo\"}}\r\n");
    lines.recv();
    lines.recv();
    assert_eq!(
        String::from_utf8(lines.raw.clone()).unwrap(),
        concat!(
            r#"{"mtp":"AssignUsername","data":{"name":"bo"},"status":"OK"}"#,
            "\n",
            r#"{"mtp":"ServerMessage","data":{"message":"bo joined the server."}}"#,
            "\n"
        )
    );
}

#[test]
fn late_line_break_switches_to_newline_and_ends_the_pending_line() {
    let server = Mp1d::start(&[]);
    let mut c = server.connect();
    c.send(LOGIN);
    for _ in 0..3 {
        c.recv();
    }
    c.expect_silence(Duration::from_millis(50));
    c.send("  \n");
    // The bare replies so far get one "\n" to end the reader's line.
    std::thread::sleep(Duration::from_millis(100));
    c.send(&msg("RequestOnlineList", json!({})));
    c.recv();
    let text = String::from_utf8(c.raw.clone()).unwrap();
    assert!(
        text.ends_with("admin.\"}}\n{\"mtp\":\"SendOnlineList\",\"data\":{\"names\":[\"ana\"]}}\n"),
        "{text:?}"
    );
}

#[test]
fn forced_framing_modes() {
    let server = Mp1d::start(&["--framing", "newline"]);
    let mut c = server.connect();
    c.send(LOGIN);
    c.recv();
    assert!(c.raw.ends_with(b"}\n"));
    let server = Mp1d::start(&["--framing", "bare"]);
    let mut c = server.connect();
    c.send(&format!("{LOGIN}\n"));
    for _ in 0..3 {
        c.recv();
    }
    assert!(!c.raw.contains(&b'\n'));
}

#[test]
fn message_split_byte_by_byte() {
    let server = Mp1d::start(&[]);
    let mut other = server.login("other");
    other.expect_server_message("You are the admin.");
    let mut c = server.connect();
    let text = format!(
        "{LOGIN}\n{}\n",
        msg(
            "SendChat",
            json!({"message": "sl\u{f6}w {\"brace\"} \\ end"})
        )
    );
    for b in text.as_bytes() {
        c.send_bytes(&[*b]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(c.recv()["status"], "OK");
    other.expect_server_message("ana joined the server.");
    assert_eq!(
        other.recv(),
        json!({"mtp": "SendChatFromUser",
               "data": {"name": "ana", "message": "sl\u{f6}w {\"brace\"} \\ end"}})
    );
}

#[test]
fn many_messages_in_one_write() {
    let server = Mp1d::start(&[]);
    let mut other = server.login("other");
    other.expect_server_message("You are the admin.");
    let mut c = server.connect();
    let mut batch = String::from(LOGIN);
    for i in 0..50 {
        batch.push_str(&msg("SendChat", json!({"message": format!("m{i}")})));
    }
    batch.push_str(&msg("RequestOnlineList", json!({})));
    c.send(&batch);
    other.expect_server_message("ana joined the server.");
    for i in 0..50 {
        assert_eq!(other.recv()["data"]["message"], format!("m{i}"));
    }
    for _ in 0..2 {
        c.recv(); // AssignUsername, join
    }
    assert_eq!(c.recv()["mtp"], "SendOnlineList");
}

#[test]
fn hundreds_of_rapid_chats_arrive_in_order_everywhere() {
    let server = Mp1d::start(&[]);
    let mut receivers: Vec<Client> = (0..4).map(|i| server.login(&format!("r{i}"))).collect();
    let mut sender = server.login("sender");
    let n = 4500;
    let mut burst = String::new();
    for i in 0..n {
        burst.push_str(&msg("SendChat", json!({"message": format!("{i}")})));
        burst.push('\n');
    }
    sender.send(&burst);
    for (k, r) in receivers.iter_mut().enumerate() {
        let mut got = 0;
        while got < n {
            let v = r.recv();
            if v["mtp"] == "ServerMessage" {
                continue; // joins of later receivers
            }
            assert_eq!(v["data"]["message"], format!("{got}"), "receiver {k}");
            got += 1;
        }
    }
}

#[test]
fn unicode_and_escapes_round_trip_exactly() {
    let server = Mp1d::start(&[]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_server_message("You are the admin.");
    a.expect_server_message("b joined the server.");
    let text = "é ñ 日本語 😀 \u{1F1F5}\u{1F1ED} \"q\" \\ / \t\n\r \u{1} \u{7f} \u{2028}";
    // Once escaped, once as raw UTF-8.
    b.send(&serde_json::to_string(&json!({"mtp": "SendChat", "data": {"message": text}})).unwrap());
    let raw = format!(
        "{{\"mtp\":\"SendChat\",\"data\":{{\"message\":\"{}\"}}}}",
        "é ñ 日本語 😀"
    );
    b.send(&raw);
    let v = a.recv();
    assert_eq!(v["data"]["message"], text);
    assert_eq!(a.recv()["data"]["message"], "é ñ 日本語 😀");
    let wire = String::from_utf8(a.raw.clone()).unwrap();
    assert!(
        wire.contains(r#"\u00e9 \u00f1 \u65e5\u672c\u8a9e \ud83d\ude00"#),
        "{wire}"
    );
    assert!(
        wire.contains(r#"\"q\" \\ / \t\n\r \u0001 \u007f \u2028"#),
        "{wire}"
    );
}

#[test]
fn malformed_input_gets_an_error_and_the_connection_survives() {
    let server = Mp1d::start(&[]);
    let mut c = server.connect();
    c.send("this is not json\n");
    c.expect_server_message("Invalid JSON: expected a JSON object.");
    c.send("{\"mtp\": \"Login\", \"data\": {\"name\": }}\n");
    c.expect_server_message_starting("Invalid JSON: ");
    c.send_bytes(b"{\"mtp\": \"Login\", \"data\": {\"name\": \"\xff\xfe\"}}\n");
    c.expect_server_message_starting("Invalid JSON: ");
    c.send("[1, 2]\n\"str\"\n");
    c.expect_server_message("Invalid JSON: expected a JSON object.");
    c.expect_server_message("Invalid JSON: expected a JSON object.");
    c.send(r#"{"mtp": 7}"#);
    c.expect_server_message("Invalid message: field \"mtp\" must be a string.");
    c.send(r#"{"data": {}}"#);
    c.expect_server_message("Invalid message: missing field \"mtp\".");
    c.send(r#"{"mtp": "SendChat", "data": [1]}"#);
    c.expect_server_message("Invalid message: SendChat: field \"data\" must be an object.");
    c.send(LOGIN);
    assert_eq!(c.recv()["status"], "OK");
    c.expect_server_message("ana joined the server.");
    c.expect_server_message("You are the admin.");
    c.send(&msg("WhisperToUser", json!({"to": [1, 2], "message": "x"})));
    c.expect_server_message(
        "Invalid message: WhisperToUser: field \"data.to\" must be a list of strings.",
    );
}

#[test]
fn ten_unparsable_inputs_in_a_row_disconnect_but_good_json_resets_the_count() {
    let server = Mp1d::start(&[]);
    let mut c = server.connect();
    for _ in 0..9 {
        c.send("garbage\n");
        c.expect_server_message("Invalid JSON: expected a JSON object.");
    }
    c.send(&msg("Nope", json!({})));
    c.recv();
    for _ in 0..9 {
        c.send("garbage\n");
        c.expect_server_message("Invalid JSON: expected a JSON object.");
    }
    c.send("garbage\n");
    c.expect_server_message("Invalid JSON: expected a JSON object.");
    assert_eq!(
        c.recv(),
        json!({"mtp": "Disconnect", "data": {"message": "Too many unparsable messages."}})
    );
    c.expect_closed();
}

#[test]
fn oversized_object_disconnects_that_client_only() {
    let server = Mp1d::start(&["--max-message-bytes", "1024"]);
    let mut other = server.login("other");
    let mut big = server.login("big");
    other.expect_server_message("You are the admin.");
    other.expect_server_message("big joined the server.");
    let huge = format!(
        r#"{{"mtp":"SendChat","data":{{"message":"{}"}}}}"#,
        "x".repeat(5000)
    );
    big.send(&huge);
    assert_eq!(
        big.recv(),
        json!({"mtp": "Disconnect", "data": {"message": "Message too large: the limit is 1024 bytes."}})
    );
    big.expect_closed();
    other.expect_server_message("big left the server.");
    // Just under the limit is fine.
    let mut c = server.login("c");
    other.expect_server_message("c joined the server.");
    let ok = msg("SendChat", json!({"message": "y".repeat(900)}));
    c.send(&ok);
    assert_eq!(other.recv()["data"]["message"], "y".repeat(900));
}

#[test]
fn chat_length_limit_is_enforced() {
    let server = Mp1d::start(&["--max-chat-chars", "5"]);
    let mut a = server.login("a");
    let mut b = server.login("b");
    a.expect_server_message("You are the admin.");
    a.expect_server_message("b joined the server.");
    b.send(&msg("SendChat", json!({"message": "123456"})));
    b.expect_server_message("Message too long: the limit is 5 characters.");
    b.send(&msg("SendChat", json!({"message": "日本語日本"})));
    assert_eq!(a.recv()["data"]["message"], "日本語日本");
}

#[test]
fn client_that_never_logs_in_is_closed() {
    let server = Mp1d::start(&["--login-timeout", "0.3"]);
    let mut lazy = server.connect();
    let mut ok = server.connect();
    ok.send(LOGIN);
    assert_eq!(ok.recv()["status"], "OK");
    assert_eq!(
        lazy.recv(),
        json!({"mtp": "Disconnect", "data": {"message": "Login timeout: no Login within 0.3 s."}})
    );
    lazy.expect_closed();
    // The logged-in client stays.
    ok.recv();
    ok.recv();
    ok.send(&msg("RequestOnlineList", json!({})));
    assert_eq!(ok.recv()["data"]["names"], json!(["ana"]));
}

#[test]
fn idle_timeout_closes_silent_clients() {
    let server = Mp1d::start(&["--idle-timeout", "0.5"]);
    let mut quiet = server.login("quiet");
    quiet.expect_server_message("You are the admin.");
    let v = quiet
        .try_recv(Duration::from_secs(3))
        .expect("idle disconnect");
    assert_eq!(
        v,
        json!({"mtp": "Disconnect", "data": {"message": "Idle timeout: nothing received for 0.5 s."}})
    );
    quiet.expect_closed();
}

#[test]
fn server_full_is_refused_with_a_disconnect() {
    let server = Mp1d::start(&["--max-clients", "2"]);
    let _a = server.login("a");
    let _b = server.login("b");
    let mut c = server.connect();
    assert_eq!(
        c.recv(),
        json!({"mtp": "Disconnect", "data": {"message": "Server is full."}})
    );
    c.expect_closed();
}

#[test]
fn slow_reader_is_cut_off_and_others_lose_nothing() {
    let server = Mp1d::start(&["--max-output-bytes", "65536", "--close-timeout", "30"]);
    let mut fast = server.login("fast");
    fast.expect_server_message("You are the admin.");
    let mut slow = server.login("slow");
    fast.expect_server_message("slow joined the server.");
    let mut sender = server.login("sender");
    fast.expect_server_message("sender joined the server.");
    let payload = "p".repeat(1000);
    // The fast client reads everything as it comes, on its own thread;
    // the sender stays at most 16 messages (16 KB, a quarter of the limit,
    // which counts what the kernel holds too) ahead of it, so only the
    // slow client (which does not read at all) falls behind.
    let progress = Arc::new(AtomicUsize::new(0));
    let seen_so_far = progress.clone();
    let reader = std::thread::spawn(move || {
        let mut seen = 0;
        let mut others = Vec::new();
        while let Some(v) = fast.try_recv(WAIT) {
            if v["mtp"] != "SendChatFromUser" {
                others.push(v);
                continue;
            }
            let text = v["data"]["message"].as_str().unwrap().to_string();
            if text == "end" {
                break;
            }
            assert!(
                text.starts_with(&format!("{seen} ")),
                "out of order: {text:.20}"
            );
            seen += 1;
            seen_so_far.store(seen, Ordering::Relaxed);
        }
        (seen, others)
    });
    // Send until the server reports the slow client cut off (the kernel's
    // socket buffers take a few MiB first).
    let mut sent = 0;
    let mut cut = None;
    while cut.is_none() {
        assert!(sent < 100_000, "slow client never cut off");
        let deadline = Instant::now() + WAIT;
        while progress.load(Ordering::Relaxed) + 16 < sent {
            assert!(Instant::now() < deadline, "fast reader stuck");
            std::thread::sleep(Duration::from_micros(100));
        }
        sender.send(&msg(
            "SendChat",
            json!({"message": format!("{sent} {payload}")}),
        ));
        sent += 1;
        cut = server.log.try_iter().find(|l| l.contains("too slow"));
    }
    sender.send(&msg("SendChat", json!({"message": "end"})));
    let (seen, others) = reader.join().unwrap();
    assert_eq!(seen, sent, "the fast reader lost messages");
    assert_eq!(
        others,
        vec![json!({"mtp": "ServerMessage", "data": {"message": "slow left the server."}})]
    );
    let cut = cut.unwrap();
    assert!(cut.contains(&slow.local_addr().to_string()), "{cut}");
    // The slow client, reading at last, sees whole messages in order, then
    // the reason, then the close.
    let mut next = 0;
    loop {
        let v = slow.recv();
        if v["mtp"] == "Disconnect" {
            assert_eq!(
                v["data"]["message"],
                "Too slow: more than 65536 bytes of messages were waiting."
            );
            break;
        }
        let text = v["data"]["message"].as_str().unwrap();
        if v["mtp"] == "SendChatFromUser" {
            assert!(text.starts_with(&format!("{next} ")), "{text:.20}");
            next += 1;
        }
    }
    assert!(next > 0 && next < sent, "slow got {next} of {sent}");
    slow.expect_closed();
}

#[test]
fn sigterm_sends_server_closing_to_everyone_and_exits_zero() {
    let mut server = Mp1d::start(&[]);
    let mut clients: Vec<Client> = (0..5).map(|i| server.login(&format!("u{i}"))).collect();
    let mut anonymous = server.connect();
    server.signal(libc::SIGTERM);
    for c in clients.iter_mut().chain(std::iter::once(&mut anonymous)) {
        let mut last = serde_json::Value::Null;
        while let Some(v) = c.try_recv(WAIT) {
            last = v;
        }
        assert_eq!(
            last,
            json!({"mtp": "Disconnect", "data": {"message": "Server closing."}})
        );
    }
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn sigint_also_shuts_down_cleanly() {
    let mut server = Mp1d::start(&[]);
    let mut c = server.login("a");
    server.signal(libc::SIGINT);
    c.expect_server_message("You are the admin.");
    assert_eq!(c.recv()["data"]["message"], "Server closing.");
    // The last log line reads as a sentence, not a Rust struct.
    let last = server.wait_log("shut down");
    assert!(
        last.contains("shut down with 0 connections still open; 1 connections accepted"),
        "{last}"
    );
    assert!(!last.contains('{'), "{last}");
    assert_eq!(server.wait_exit(), Some(0));
}

#[test]
fn connection_churn_does_not_confuse_reused_slots() {
    let server = Mp1d::start(&[]);
    let mut watcher = server.login("watcher");
    watcher.expect_server_message("You are the admin.");
    for round in 0..40 {
        let mut batch: Vec<Client> = (0..5)
            .map(|i| server.login(&format!("c{round}_{i}")))
            .collect();
        batch[0].send(&msg(
            "SendChat",
            json!({"message": format!("round {round}")}),
        ));
        drop(batch.split_off(1));
        batch[0].send(&msg("Disconnect", json!({})));
        let mut saw_chat = false;
        let mut left = 0;
        while !(saw_chat && left == 5) {
            let v = watcher.recv();
            if v["mtp"] == "SendChatFromUser" {
                assert_eq!(v["data"]["message"], format!("round {round}"));
                saw_chat = true;
            } else if v["data"]["message"]
                .as_str()
                .unwrap()
                .ends_with("left the server.")
            {
                left += 1;
            }
        }
    }
    watcher.send(&msg("RequestOnlineList", json!({})));
    assert_eq!(watcher.recv()["data"]["names"], json!(["watcher"]));
}

#[test]
fn mass_departure_is_announced_once_each_and_the_server_lives_on() {
    let server = Mp1d::start(&[]);
    let mut watcher = server.login("watcher");
    watcher.expect_server_message("You are the admin.");
    let crowd: Vec<Client> = (0..200).map(|i| server.login(&format!("m{i}"))).collect();
    for i in 0..200 {
        watcher.expect_server_message(&format!("m{i} joined the server."));
    }
    drop(crowd); // all close at once
    let mut left = std::collections::HashSet::new();
    while left.len() < 200 {
        let v = watcher.recv();
        let text = v["data"]["message"].as_str().unwrap().to_string();
        let name = text
            .strip_suffix(" left the server.")
            .expect("only departures");
        assert!(left.insert(name.to_string()), "{name} announced twice");
    }
    watcher.expect_silence(Duration::from_millis(200));
    watcher.send(&msg("RequestOnlineList", json!({})));
    assert_eq!(watcher.recv()["data"]["names"], json!(["watcher"]));
}

/// A login storm does not write a log line per connect and join: past the
/// budget, lines go to debug and one line a second says how many were
/// held back; nothing goes unaccounted for.
#[test]
fn a_login_storm_is_logged_within_the_budget() {
    let server = Mp1d::start(&["--log-level", "info", "--log-lines-per-second", "5"]);
    let clients: Vec<Client> = (0..30).map(|i| server.login(&format!("s{i}"))).collect();
    // 30 connects and 30 joins; read the log until every summary is out.
    let (mut at_info, mut held) = (0, 0);
    let deadline = Instant::now() + Duration::from_millis(2500);
    while let Ok(line) = server
        .log
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
    {
        if line.contains(" connect 127.0.0.1:") || line.contains("joined the server.") {
            assert!(line.contains(" INFO "), "{line}");
            at_info += 1;
        } else if line.contains("more lines (connects, joins, leaves, cuts)") {
            held += line
                .split_whitespace()
                .nth(2)
                .unwrap()
                .parse::<u32>()
                .unwrap();
        }
    }
    assert_eq!(at_info + held, 60, "{at_info} at info, {held} held back");
    // The storm takes well under a second or two: one or two budgets.
    assert!((5..=10).contains(&at_info), "{at_info} lines at info");
    drop(clients);
}

/// Shutdown closes the listening socket at once: a new server can take the
/// port while the old one is still saying goodbye to its clients.
#[test]
fn the_port_is_free_as_soon_as_shutdown_begins() {
    let mut server = Mp1d::start(&["--shutdown-timeout", "3"]);
    // A client that never reads or closes keeps the old server busy.
    let _lingering = server.login("slowpoke");
    server.signal(libc::SIGTERM);
    server.wait_log("signal received");
    let bound = (0..50).find_map(|_| match std::net::TcpListener::bind(server.addr) {
        Ok(l) => Some(l),
        Err(_) => {
            std::thread::sleep(Duration::from_millis(20));
            None
        }
    });
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "the old server should still be closing"
    );
    assert!(bound.is_some(), "the port stayed taken during shutdown");
    drop(bound);
    assert_eq!(server.wait_exit(), Some(0));
}

/// With its stderr on a pipe that nobody reads, mp1d keeps serving: log
/// lines it cannot write are dropped, never waited for, and SIGTERM still
/// shuts it down.
#[test]
fn an_unread_log_never_stops_the_server() {
    let (mut child, addr) = Mp1d::start_with_unread_log(&["--log-level", "debug"]);
    // Each login logs several lines: far more than a pipe holds (64 KiB).
    let mut clients = Vec::new();
    for i in 0..800 {
        let mut c = Client::connect(addr);
        c.send(&format!(r#"{{"mtp":"Login","data":{{"name":"u{i}"}}}}"#));
        let r = c.recv();
        assert_eq!(r["status"], "OK", "login {i}: {r}");
        clients.push(c);
        if clients.len() > 50 {
            clients.remove(0); // a departure: more log lines
        }
    }
    // SIGTERM: it exits promptly although its log is full.
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "mp1d ignored SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
}

/// A client that asks for much in one write and reads as fast as it can
/// is not slow: it gets every reply. (Before backpressure, 500 online
/// lists queued in one turn counted as unsent output and cut it.)
#[test]
fn a_burst_of_ones_own_replies_is_not_slowness() {
    let server = Mp1d::start(&["--max-output-bytes", "65536"]);
    let mut asker = server.login("asker");
    asker.expect_server_message("You are the admin.");
    let others: Vec<Client> = (0..200)
        .map(|i| server.login(&format!("user{i:03}")))
        .collect();
    // Each list is about 2 KB: 500 of them are 1 MB, sixteen times the
    // output limit, asked for in one write.
    let request = r#"{"mtp":"RequestOnlineList","data":{}}"#.repeat(500);
    let mut lists = 0;
    asker.send(&request);
    while lists < 500 {
        let v = asker.recv();
        match v["mtp"].as_str() {
            Some("SendOnlineList") => {
                assert_eq!(v["data"]["names"].as_array().unwrap().len(), 201);
                lists += 1;
            }
            Some("ServerMessage") => {} // joins
            _ => panic!("after {lists} lists: {v}"),
        }
    }
    drop(others);
}

/// Server-side sockets of the connection between the server's `port` and
/// a client's `port`, from /proc/net/tcp: their state (hex).
fn server_sockets(server_port: u16, client_port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    let port_of =
        |field: &str| u16::from_str_radix(field.rsplit(':').next().unwrap_or(""), 16).ok();
    table
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (port_of(f[1]) == Some(server_port) && port_of(f[2]) == Some(client_port))
                .then(|| f[3].to_string())
        })
        .collect()
}

/// Clients that stop reading may together owe at most
/// --max-total-output-bytes: past it, the biggest owers are cut, each told
/// why, and the others lose nothing. A cut client that never takes its
/// last words is reset after the close timeout, so the kernel does not
/// keep its unsent bytes (FIN-WAIT-1) for minutes.
#[test]
fn stalled_clients_share_one_output_budget_and_are_reset() {
    let server = Mp1d::start(&[
        "--max-total-output-bytes",
        "262144",
        "--close-timeout",
        "0.5",
    ]);
    let mut reader = server.login("reader");
    reader.expect_server_message("You are the admin.");
    let stalled: Vec<Client> = (0..3)
        .map(|i| server.login(&format!("stalled{i}")))
        .collect();
    let mut sender = server.login("sender");
    let payload = "q".repeat(4000);
    let mut sent = 0;
    let mut cuts = Vec::new();
    while cuts.len() < 3 {
        assert!(sent < 20_000, "never cut: {cuts:?}");
        sender.send(&format!(
            r#"{{"mtp":"SendChat","data":{{"message":"{sent} {payload}"}}}}"#
        ));
        sent += 1;
        // The reader keeps up.
        loop {
            let Some(v) = reader.try_recv(WAIT) else {
                let log: Vec<String> = server.log.try_iter().collect();
                panic!("reader got nothing after {sent} chats; log {log:#?}");
            };
            if v["mtp"] == "SendChatFromUser" {
                break;
            }
        }
        cuts.extend(
            server
                .log
                .try_iter()
                .filter(|l| l.contains("the most while all clients owed over 262144")),
        );
    }
    // Cut one by one, the biggest first, each with its reason; nobody else.
    for c in &stalled {
        let port = c.local_addr().port().to_string();
        assert!(cuts.iter().any(|l| l.contains(&port)), "{cuts:?}");
    }
    assert!(!cuts.iter().any(|l| l.contains("reader")));
    // After the close timeout the server holds none of their sockets.
    std::thread::sleep(Duration::from_millis(1500));
    let server_port = server.addr.port();
    for c in &stalled {
        let states = server_sockets(server_port, c.local_addr().port());
        assert!(states.is_empty(), "still held, state {states:?}");
    }
    // The reader got every chat, in order, and is still served.
    sender.send(r#"{"mtp":"SendChat","data":{"message":"end"}}"#);
    loop {
        let v = reader.recv();
        if v["data"]["message"] == "end" {
            break;
        }
    }
}
