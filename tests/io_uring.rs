//! The fan-out's writes through io_uring (`--io-uring on`) and through
//! `writev` (`--io-uring off`) do the same thing: one scenario, run on
//! both paths: several clients, a large broadcast that a lagging reader
//! takes in short writes, a slow reader cut off while the others lose
//! nothing, a half-close with a request in flight.

mod common;
use common::*;
use serde_json::json;
use std::net::Shutdown;

/// A logged-in client with a 4 KiB receive buffer, which the test reads
/// only when it says so: the server's sends to it come back short.
fn small_reader(server: &Mp1d, name: &str) -> Client {
    let mut c = server.connect_small();
    c.send(&msg("Login", json!({"name": name})));
    assert_eq!(c.recv()["status"], "OK");
    c.expect_server_message(&format!("{name} joined the server."));
    c
}

/// The next chat `c` receives, skipping server messages (returned too).
fn next_chat(c: &mut Client, notes: &mut Vec<String>) -> String {
    loop {
        let v = c.recv();
        if v["mtp"] == "SendChatFromUser" {
            assert_eq!(v["data"]["name"], "ana", "{v}");
            return v["data"]["message"].as_str().unwrap().to_string();
        }
        assert_eq!(v["mtp"], "ServerMessage", "{v}");
        notes.push(v["data"]["message"].as_str().unwrap().to_string());
    }
}

/// Chats compared, shown by their start when they differ.
fn same(got: String, want: String) {
    assert!(got == want, "got {got:.20}, expected {want:.20}");
}

/// The `i`th chat: its number, then 4000 bytes in all.
fn chat(i: usize) -> String {
    format!("{i:05} {}", "x".repeat(3994))
}

fn fan_out(mode: &str, path: &str) {
    let server = Mp1d::start(&["--io-uring", mode, "--max-output-bytes", "262144"]);
    let line = server.wait_log("fan-out writes: ");
    assert!(line.contains(&format!("fan-out writes: {path}")), "{line}");
    let mut ana = server.login("ana");
    ana.expect_server_message("You are the admin.");
    let mut readers = Vec::new();
    for name in ["bob", "cy"] {
        readers.push(server.login(name));
        ana.expect_server_message(&format!("{name} joined the server."));
        for r in readers.iter_mut().rev().skip(1) {
            r.expect_server_message(&format!("{name} joined the server."));
        }
    }
    let mut lagger = small_reader(&server, "lagger");
    for r in readers.iter_mut().chain([&mut ana]) {
        r.expect_server_message("lagger joined the server.");
    }
    // What each of bob, cy and the lagger was told besides chats.
    let mut notes: [Vec<String>; 3] = Default::default();

    // 40 chats of 4000 bytes while the lagger reads nothing: its socket
    // fills (short sends, then EAGAIN and WRITABLE interest); it gets
    // them all, whole and in order, once it reads.
    let mut sent = 0;
    for _ in 0..40 {
        ana.send(&msg("SendChat", json!({"message": chat(sent)})));
        for (r, n) in readers.iter_mut().zip(&mut notes) {
            same(next_chat(r, n), chat(sent));
        }
        sent += 1;
    }
    for i in 0..sent {
        same(next_chat(&mut lagger, &mut notes[2]), chat(i));
    }

    // A reader that never reads is cut once 256 KiB wait for it; the
    // others, reading as it comes, lose nothing.
    let mut sleeper = small_reader(&server, "sleeper");
    for r in readers.iter_mut().chain([&mut lagger, &mut ana]) {
        r.expect_server_message("sleeper joined the server.");
    }
    let first = sent;
    let gone = |n: &Vec<String>| n.iter().any(|n| n == "sleeper left the server.");
    while !gone(&notes[0]) {
        assert!(sent < 2000, "the sleeper was never cut");
        ana.send(&msg("SendChat", json!({"message": chat(sent)})));
        for (r, n) in readers.iter_mut().chain([&mut lagger]).zip(&mut notes) {
            same(next_chat(r, n), chat(sent));
        }
        sent += 1;
    }
    for (r, n) in readers.iter_mut().chain([&mut lagger]).zip(&notes) {
        if !gone(n) {
            r.expect_server_message("sleeper left the server.");
        }
    }
    ana.expect_server_message("sleeper left the server.");
    let cut = server.wait_log("too slow");
    assert!(cut.contains(&sleeper.local_addr().to_string()), "{cut}");
    // The sleeper, reading at last, gets whole chats in order, then why.
    let mut next = 0;
    loop {
        let v = sleeper.recv();
        if v["mtp"] == "Disconnect" {
            assert_eq!(
                v["data"]["message"],
                "Too slow: more than 262144 bytes of messages were waiting."
            );
            break;
        }
        if v["mtp"] == "SendChatFromUser" {
            let text = v["data"]["message"].as_str().unwrap();
            assert!(text == chat(first + next), "{:.20}", text);
            next += 1;
        }
    }
    assert!(
        next > 0 && first + next < sent,
        "{next} of {}",
        sent - first
    );
    sleeper.expect_closed();

    // A half-close with a request in flight: the reply, then the close;
    // the others hear that it left.
    let mut dee = server.login("dee");
    for r in readers.iter_mut().chain([&mut lagger, &mut ana]) {
        r.expect_server_message("dee joined the server.");
    }
    dee.send(&msg("RequestOnlineList", json!({})));
    dee.stream.shutdown(Shutdown::Write).unwrap();
    let list = dee.recv();
    assert_eq!(
        list["data"]["names"],
        json!(["ana", "bob", "cy", "lagger", "dee"]),
        "{list}"
    );
    dee.expect_closed();
    for r in readers.iter_mut().chain([&mut lagger, &mut ana]) {
        let mut seen = Vec::new();
        while !seen.iter().any(|n| n == "dee left the server.") {
            seen.push(r.recv()["data"]["message"].as_str().unwrap().to_string());
        }
    }
    // Every chat reached everyone who stayed, once.
    ana.send(&msg("SendChat", json!({"message": "end"})));
    for (r, n) in readers.iter_mut().chain([&mut lagger]).zip(&mut notes) {
        assert_eq!(next_chat(r, n), "end");
    }
}

#[test]
#[cfg_attr(not(have_io_uring), ignore = "io_uring cannot be set up here")]
fn fan_out_through_io_uring() {
    fan_out("on", "io_uring");
}

#[test]
fn fan_out_through_writev() {
    fan_out("off", "writev");
}

/// `auto` uses io_uring where it can be set up, and says so.
#[test]
fn auto_says_which_path_runs() {
    let server = Mp1d::start(&["--io-uring", "auto"]);
    let line = server.wait_log("fan-out writes: ");
    let want = if cfg!(have_io_uring) {
        "fan-out writes: io_uring ("
    } else {
        "fan-out writes: writev (io_uring is unavailable here: "
    };
    assert!(line.contains(want), "{line}");
}
