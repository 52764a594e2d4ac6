//! Browsers over WebSocket (`mp1d --http`, `GET /ws`) at the byte level:
//! the opening handshake, one MP1 object per text frame both ways, TCP and
//! WebSocket users in one chat, pings, fragments, the close handshake, and
//! the rules a client must keep (masked frames, UTF-8, size), each broken
//! on purpose.

mod common;
use common::*;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

/// A WebSocket client that writes frames byte-exact and reads server
/// frames.
struct Ws {
    s: TcpStream,
    buf: Vec<u8>,
}

/// A masked client frame.
fn frame(opcode: u8, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    mp1::websocket::masked_frame(opcode, fin, [0x11, 0x22, 0x33, 0x44], payload, &mut out);
    out
}

impl Ws {
    fn open(addr: SocketAddr, origin: Option<&str>) -> Result<Ws, String> {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        let origin = origin
            .map(|o| format!("Origin: {o}\r\n"))
            .unwrap_or_default();
        write!(
            s,
            "GET /ws HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
        )
        .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8];
        while !head.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).unwrap() == 0 {
                break;
            }
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        if !head.starts_with("HTTP/1.1 101 ") {
            return Err(head);
        }
        assert!(
            head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{head}"
        );
        Ok(Ws { s, buf: Vec::new() })
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
    }

    fn send(&mut self, text: String) {
        self.send_raw(&frame(0x1, true, text.as_bytes()));
    }

    /// The next server frame: (opcode, payload); `None` at EOF.
    fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            let decoded = mp1::websocket::decode_server_frame(&self.buf);
            if let Some(f) = decoded.expect("server frames are unmasked") {
                assert!(f.fin, "server frames are final");
                let payload = self.buf[f.payload].to_vec();
                self.buf.drain(..f.len);
                return Some((f.opcode, payload));
            }
            let mut chunk = [0u8; 4096];
            match self.s.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) => panic!("read: {e}"),
            }
        }
    }

    /// The next MP1 object (a text frame), skipping nothing else.
    fn recv(&mut self) -> Value {
        let (op, payload) = self.frame().expect("a frame");
        assert_eq!(op, 0x1, "expected text, got {op}: {payload:?}");
        serde_json::from_slice(&payload).unwrap()
    }

    /// Reads until a close frame; its code.
    fn closed_with(&mut self) -> (u16, Vec<Value>) {
        let mut before = Vec::new();
        while let Some((op, payload)) = self.frame() {
            match op {
                0x1 => before.push(serde_json::from_slice(&payload).unwrap()),
                0x8 => return (u16::from_be_bytes([payload[0], payload[1]]), before),
                _ => {}
            }
        }
        panic!("no close frame; got {before:?}");
    }
}

fn login(ws: &mut Ws, name: &str) {
    ws.send(msg("Login", json!({"name": name})));
    let v = ws.recv();
    assert_eq!(
        (v["mtp"].as_str(), v["status"].as_str()),
        (Some("AssignUsername"), Some("OK")),
        "{v}"
    );
}

#[test]
fn browsers_and_tcp_clients_share_one_chat() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    let http = server.http_addr();
    let mut tcp = server.login("tcp");
    tcp.expect_server_message("You are the admin.");
    let mut web = Ws::open(http, Some(&format!("http://{http}"))).unwrap();
    login(&mut web, "web");
    assert_eq!(web.recv()["data"]["message"], "web joined the server.");
    tcp.expect_server_message("web joined the server.");

    web.send(msg(
        "SendChat",
        json!({"message": "héllo from the browser"}),
    ));
    assert_eq!(
        tcp.recv(),
        json!({"mtp": "SendChatFromUser", "data": {"name": "web", "message": "héllo from the browser"}})
    );
    tcp.send(&msg("SendChat", json!({"message": "hi browser"})));
    assert_eq!(web.recv()["data"]["message"], "hi browser");
    tcp.send(&msg(
        "WhisperToUser",
        json!({"to": ["web"], "message": "psst"}),
    ));
    assert_eq!(
        web.recv(),
        json!({"mtp": "WhisperFromUser", "data": {"from": "tcp", "message": "psst"}})
    );
    web.send(msg("RequestOnlineList", json!({})));
    assert_eq!(web.recv()["data"]["names"], json!(["tcp", "web"]));
    // /metrics counts each transport.
    let mut m = TcpStream::connect(http).unwrap();
    m.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").unwrap();
    let mut metrics = String::new();
    m.read_to_string(&mut metrics).unwrap();
    for line in [
        r#"mp1_clients{transport="tcp",state="logged_in"} 1"#,
        r#"mp1_clients{transport="websocket",state="logged_in"} 1"#,
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in {metrics}");
    }

    // A ping is answered; a message in fragments, a ping between them.
    web.send_raw(&frame(0x9, true, b"beat"));
    assert_eq!(web.frame(), Some((0xA, b"beat".to_vec())));
    let text = msg("SendChat", json!({"message": "in pieces"}));
    let (a, b) = text.as_bytes().split_at(10);
    web.send_raw(&frame(0x1, false, a));
    web.send_raw(&frame(0x9, true, b""));
    web.send_raw(&frame(0x0, true, b));
    assert_eq!(web.frame(), Some((0xA, vec![])));
    assert_eq!(tcp.recv()["data"]["message"], "in pieces");

    // The admin kicks the browser: it reads why, then the close frame.
    tcp.send(&msg("KickUser", json!({"name": "web"})));
    let (code, last) = web.closed_with();
    assert_eq!(code, 1000);
    assert_eq!(
        last.last().unwrap()["data"]["message"],
        "Kicked from the server."
    );
    assert_eq!(tcp.recv()["status"], "OK");
    tcp.expect_server_message("web has been kicked from the server.");
}

#[test]
fn a_browser_closing_is_a_departure() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0"]);
    let http = server.http_addr();
    let mut tcp = server.login("tcp");
    tcp.expect_server_message("You are the admin.");
    let mut web = Ws::open(http, None).unwrap();
    login(&mut web, "web");
    tcp.expect_server_message("web joined the server.");
    let mut going = 1001u16.to_be_bytes().to_vec();
    going.extend_from_slice(b"tab closed");
    web.send_raw(&frame(0x8, true, &going));
    let (code, _) = web.closed_with();
    assert_eq!(code, 1000);
    tcp.expect_server_message("web left the server.");
}

#[test]
fn rule_breakers_are_told_and_closed() {
    let server = Mp1d::start(&["--http", "127.0.0.1:0", "--max-message-bytes", "1024"]);
    let http = server.http_addr();
    for (bytes, code) in [
        // A server's frame, which is unmasked.
        (mp1::websocket::frame(0x1, b"{}"), 1002),
        (frame(0x1, true, &[0xC3, 0x28]), 1007),
        (frame(0x2, true, b"\x00\x01"), 1003),
        (frame(0x1, true, &vec![b' '; 2000]), 1009),
    ] {
        let mut web = Ws::open(http, None).unwrap();
        web.send_raw(&bytes);
        let (got, said) = web.closed_with();
        assert_eq!(got, code, "{bytes:?}");
        let why = said.last().unwrap()["data"]["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(why.starts_with("WebSocket error: "), "{why}");
    }
    // Another origin's page may not connect.
    let refused = Ws::open(http, Some("http://elsewhere.example"))
        .err()
        .unwrap();
    assert!(refused.starts_with("HTTP/1.1 403 Forbidden"), "{refused}");
    // TCP clients were never disturbed.
    let mut c = server.login("fine");
    c.expect_server_message("You are the admin.");
}

/// A browser, a LAN peer (through the bridge) and a terminal user in one
/// chat.
#[test]
fn browsers_lan_peers_and_tcp_users_chat_together() {
    let (server, mut lan) = common::peers::bridged(&["--http", "127.0.0.1:0"]);
    let http = server.http_addr();
    let mut tcp = server.login("tcp");
    tcp.expect_server_message("You are the admin.");
    let mut web = Ws::open(http, None).unwrap();
    login(&mut web, "web");
    tcp.expect_server_message("web joined the server.");

    web.send(msg("SendChat", json!({"message": "from the browser"})));
    assert_eq!(tcp.recv()["data"]["message"], "from the browser");
    let mut got = Vec::new();
    let deadline = std::time::Instant::now() + WAIT;
    while got.is_empty() && std::time::Instant::now() < deadline {
        lan.pump(std::time::Duration::from_millis(20));
        got.extend(lan.take_chats());
    }
    assert_eq!(
        got,
        vec![("web".to_string(), "from the browser".to_string())]
    );

    lan.node.peer.chat("from the LAN");
    lan.pump(std::time::Duration::from_millis(50));
    loop {
        let v = web.recv();
        if v["mtp"] == "SendChatFromUser" {
            assert_eq!(v["data"], json!({"name": "lan", "message": "from the LAN"}));
            break;
        }
    }
    assert_eq!(tcp.recv()["data"]["message"], "from the LAN");
}
