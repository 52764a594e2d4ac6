//! The edges of a connection's life and of its limits, tried as a hostile
//! or careless client would: a client that sends and closes at once, a
//! half-close with a request in flight, a head over the HTTP limit in one
//! write, a reader that never reads, a flood of pings.

mod common;
use common::*;
use serde_json::json;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;

/// A logged-in client whose last request and FIN arrive together is seen
/// leaving: the others hear of it, and its name is free again.
fn sends_and_closes_at_once(last: &str) {
    let server = Mp1d::start(&[]);
    let mut ana = server.login("ana");
    ana.expect_server_message("You are the admin.");
    let mut bob = server.login("bob");
    ana.expect_server_message("bob joined the server.");
    // One write: the request, then the FIN right behind it.
    bob.send(last);
    bob.stream.shutdown(Shutdown::Both).unwrap();
    drop(bob);
    let mut seen = Vec::new();
    while !seen.iter().any(|t: &String| t == "bob left the server.") {
        let v = ana.try_recv(WAIT).expect("bob's departure is announced");
        seen.push(v["data"]["message"].as_str().unwrap_or("").to_string());
    }
    let mut again = server.connect();
    again.send(&msg("Login", json!({"name": "bob"})));
    let r = again.recv();
    assert_eq!(r["status"], "OK", "the name is free again: {r}");
}

#[test]
fn a_chat_sent_with_the_fin_is_delivered_and_its_sender_leaves() {
    sends_and_closes_at_once(&msg("SendChat", json!({"message": "bye all"})));
}

#[test]
fn a_whisper_sent_with_the_fin_and_its_sender_leaves() {
    sends_and_closes_at_once(&msg(
        "WhisperToUser",
        json!({"to": ["ana"], "message": "psst"}),
    ));
}

/// The admin who leaves that way hands the role on.
#[test]
fn an_admin_who_sends_and_closes_at_once_hands_the_role_on() {
    let server = Mp1d::start(&[]);
    let mut ana = server.login("ana");
    ana.expect_server_message("You are the admin.");
    let mut bob = server.login("bob");
    ana.expect_server_message("bob joined the server.");
    ana.send(&msg("SendChat", json!({"message": "bye"})));
    ana.stream.shutdown(Shutdown::Both).unwrap();
    drop(ana);
    assert_eq!(bob.recv()["mtp"], "SendChatFromUser");
    bob.expect_server_message("ana left the server.");
    bob.expect_server_message("bob is now the admin.");
}

/// A half-close (`shutdown(SHUT_WR)`) with a request in flight: the reply
/// comes, then the server closes; the others are told the client left.
#[test]
fn a_half_closed_client_gets_its_reply_then_leaves() {
    let server = Mp1d::start(&[]);
    let mut ana = server.login("ana");
    ana.expect_server_message("You are the admin.");
    let mut bob = server.login("bob");
    ana.expect_server_message("bob joined the server.");
    bob.send(&msg("RequestOnlineList", json!({})));
    bob.stream.shutdown(Shutdown::Write).unwrap();
    let list = bob.recv();
    assert_eq!(list["data"]["names"], json!(["ana", "bob"]), "{list}");
    bob.expect_closed();
    ana.expect_server_message("bob left the server.");
}

/// An HTTP request followed by a half-close is answered, then closed.
#[test]
fn an_http_request_then_a_half_close_is_answered() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    let mut s = TcpStream::connect(server.http_addr()).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200 OK\r\n"), "{reply:?}");
    assert!(reply.ends_with("ok\n"), "{reply:?}");
}

/// A request head over the 8 KiB limit is refused whether or not it came
/// whole in one write.
#[test]
fn a_complete_head_over_the_limit_is_refused() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    for size in [9 * 1024, 16 * 1024] {
        let mut s = TcpStream::connect(server.http_addr()).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let filler = "a".repeat(size);
        let req = format!("GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Filler: {filler}\r\n\r\n");
        s.write_all(req.as_bytes()).unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(
            reply.starts_with("HTTP/1.1 431 "),
            "{size} bytes: {:?}",
            &reply[..reply.len().min(80)]
        );
    }
}

/// A client with a tiny receive buffer that never reads.
fn never_reader(server: &Mp1d, name: &str) -> Client {
    let mut c = server.connect_small();
    c.send(&msg("Login", json!({"name": name})));
    assert_eq!(c.recv()["status"], "OK");
    c
}

/// `--max-output-bytes` counts what the kernel holds for a client too:
/// a client that never reads is cut once that much waits for it, wherever
/// the bytes sit (they do not hide in an autotuned kernel buffer).
#[test]
fn the_output_limit_counts_what_the_kernel_holds() {
    let server = Mp1d::start(&["--max-output-bytes", "65536"]);
    let mut ana = server.login("ana");
    ana.expect_server_message("You are the admin.");
    let _sleeper = never_reader(&server, "sleeper");
    ana.expect_server_message("sleeper joined the server.");
    // 4000-character whispers, one at a time: each is followed by a
    // request whose answer says the server has handled the whisper.
    let text = "w".repeat(4000);
    let whisper = msg("WhisperToUser", json!({"to": ["sleeper"], "message": text}));
    let mut handled = 0;
    'sending: while handled < 500 {
        ana.send(&whisper);
        ana.send(&msg("RequestLocalTime", json!({})));
        handled += 1;
        loop {
            let v = ana.recv();
            if v["mtp"] == "SendLocalTime" {
                break;
            }
            if v["data"]["message"] == "sleeper left the server." {
                break 'sending;
            }
        }
    }
    // 64 KiB is 16 whispers; the kernel's buffers (autotuned, they took
    // 800 KB before) no longer hide more.
    assert!(handled < 40, "cut after {handled} whispers of 4000 bytes");
}

/// Of a flood of pings from a browser that reads nothing, the pongs obey
/// the output limit like any reply: the browser is cut, and the server
/// does not owe more than the limit to it.
#[test]
fn a_ping_flood_from_a_browser_that_never_reads_is_cut() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0", "--max-output-bytes", "65536"]);
    let mut watcher = server.login("watcher");
    watcher.expect_server_message("You are the admin.");
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.connect(&server.http_addr().into()).unwrap();
    let mut s: TcpStream = socket.into();
    let addr = server.http_addr();
    write!(
        s,
        "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    .unwrap();
    let mut ping = Vec::new();
    mp1::websocket::masked_frame(0x9, true, [1, 2, 3, 4], &[b'p'; 100], &mut ping);
    let burst: Vec<u8> = ping.repeat(1000);
    s.set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    // 300,000 pings, or until the server stops taking them.
    for _ in 0..300 {
        if s.write_all(&burst).is_err() {
            break;
        }
    }
    let metrics = http_get(addr, "/metrics");
    let owed: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mp1_output_queue_bytes "))
        .expect("the queue gauge")
        .trim()
        .parse()
        .unwrap();
    assert!(owed <= 65536.0, "the server owes {owed} bytes of pongs");
    watcher.send(&msg("RequestOnlineList", json!({})));
    assert_eq!(watcher.recv()["data"]["names"], json!(["watcher"]));
}

/// `GET path` on the HTTP face; the whole response.
fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n").unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    reply
}

/// A page on another host name that resolves to the server (DNS
/// rebinding: `Host` and `Origin` both that name) is refused, unless the
/// name is allowed with `--http-allowed-host`.
#[test]
fn a_rebound_host_name_is_refused_unless_allowed() {
    let upgrade = |server: &Mp1d| {
        let mut s = TcpStream::connect(server.http_addr()).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.write_all(
            b"GET /ws HTTP/1.1\r\nHost: evil.example:8080\r\nOrigin: http://evil.example:8080\r\n\
              Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        )
        .unwrap();
        let mut head = [0u8; 12];
        s.read_exact(&mut head).unwrap();
        String::from_utf8_lossy(&head).into_owned()
    };
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    assert_eq!(upgrade(&server), "HTTP/1.1 403");
    let page = http_get(server.http_addr(), "/");
    assert!(page.starts_with("HTTP/1.1 200 OK"), "by its own address");
    let allowing = Mp1d::start(&[
        "--http",
        "127.0.0.1:0",
        "--http-allowed-host",
        "evil.example",
    ]);
    assert_eq!(upgrade(&allowing), "HTTP/1.1 101");
}
