//! loadgen's accounting against a fake MP1 server that misbehaves on
//! purpose: a dropped, a reordered or a duplicated delivery must be caught
//! and reported (and make loadgen exit 1); a faithful server reports zeros.
//! And its UDP peers against a fake bridge that turns handshakes away, as
//! a rate-limited bridge does.

use mp1::protocol::{
    decode_peer, decode_request, encode_line, Frame, PeerMessage, Reply, Request, Splitter, Status,
};
use serde_json::Value;
use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::{Arc, Mutex};

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    /// Chat number 3 never reaches the second client.
    Drop,
    /// Chat number 3 reaches the second client after chat number 4.
    Reorder,
    /// Chat number 3 reaches the second client twice.
    Duplicate,
    /// Faithful, but reads requests by lines: nothing is seen until a line
    /// break arrives.
    LinesOnly,
}

struct Shared {
    clients: Vec<TcpStream>,
    chats: usize,
    held: Option<Vec<u8>>,
}

fn line(reply: &Reply) -> Vec<u8> {
    let mut out = Vec::new();
    encode_line(reply, &mut out);
    out
}

/// Serves MP1 logins and chat fan-out on a free port until the test ends.
fn fake_server(fault: Fault) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let shared = Arc::new(Mutex::new(Shared {
        clients: Vec::new(),
        chats: 0,
        held: None,
    }));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let shared = shared.clone();
            std::thread::spawn(move || {
                let me = {
                    let mut s = shared.lock().unwrap();
                    s.clients.push(stream.try_clone().unwrap());
                    s.clients.len() - 1
                };
                let mut splitter = Splitter::new();
                let mut buf = [0u8; 4096];
                let mut unended = Vec::new();
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    unended.extend_from_slice(&buf[..n]);
                    let lines = match fault {
                        Fault::LinesOnly => unended
                            .iter()
                            .rposition(|&b| b == b'\n')
                            .map_or(0, |i| i + 1),
                        _ => unended.len(),
                    };
                    let input: Vec<u8> = unended.drain(..lines).collect();
                    let mut requests = Vec::new();
                    let mut frames = splitter.frames(&input, 1 << 16);
                    while let Some(f) = frames.next_frame() {
                        if let Frame::Object(o) = f {
                            requests.push(decode_request(o));
                        }
                    }
                    for req in requests {
                        match req {
                            Ok(Request::Login { name }) => {
                                let name = name.unwrap_or_default();
                                let ok = Reply::AssignUsername {
                                    name,
                                    status: Status::Ok,
                                };
                                let _ = stream.write_all(&line(&ok));
                            }
                            Ok(Request::SendChat { message }) => {
                                let mut s = shared.lock().unwrap();
                                deliver(&mut s, me, message, fault);
                            }
                            _ => {}
                        }
                    }
                }
            });
        }
    });
    addr
}

fn deliver(s: &mut Shared, from: usize, message: String, fault: Fault) {
    let k = s.chats;
    s.chats += 1;
    let bytes = line(&Reply::SendChatFromUser {
        name: format!("c{from}"),
        message,
    });
    for to in 0..s.clients.len() {
        if to == from {
            continue;
        }
        let victim = to == 1 || (from == 1 && to == 0);
        let mut out = bytes.clone();
        if victim && k == 3 {
            match fault {
                Fault::Drop => continue,
                Fault::Reorder => {
                    s.held = Some(bytes.clone());
                    continue;
                }
                Fault::Duplicate => out.extend_from_slice(&bytes),
                Fault::None | Fault::LinesOnly => {}
            }
        }
        if victim && k == 4 {
            if let Some(held) = s.held.take() {
                out.extend_from_slice(&held);
            }
        }
        let _ = s.clients[to].write_all(&out);
    }
}

fn loadgen(addr: &str, extra: &[&str]) -> (Option<i32>, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "--target",
            addr,
            "--clients",
            "3",
            "--json",
            "--msg-timeout",
            "0.5",
        ])
        .args(extra)
        .output()
        .expect("loadgen runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code(), json)
}

const CLOSED: &[&str] = &["--messages", "8", "--warmup", "0"];
const OPEN: &[&str] = &[
    "--mode",
    "open",
    "--rate",
    "40",
    "--duration",
    "0.4",
    "--warmup",
    "0",
    "--drain",
    "1",
];

#[test]
fn a_faithful_server_reports_no_loss() {
    let addr = fake_server(Fault::None);
    let (code, j) = loadgen(&addr, CLOSED);
    assert_eq!(code, Some(0), "{j}");
    assert_eq!(j["tcp"]["expected"], 16);
    assert_eq!(j["tcp"]["received"], 16);
    assert_eq!(j["tcp"]["lost"], 0);
    assert_eq!(j["delivery_us"]["count"], 16);
}

#[test]
fn a_dropped_delivery_is_caught() {
    let addr = fake_server(Fault::Drop);
    let (code, j) = loadgen(&addr, CLOSED);
    assert_eq!(code, Some(1), "{j}");
    assert_eq!(j["tcp"]["lost"], 1, "{j}");
    assert_eq!(j["msg_timeouts"], 1, "{j}");
}

#[test]
fn a_reordered_delivery_is_caught() {
    let addr = fake_server(Fault::Reorder);
    let (code, j) = loadgen(&addr, OPEN);
    assert_eq!(code, Some(1), "{j}");
    assert_eq!(j["tcp"]["reordered"], 1, "{j}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
}

#[test]
fn a_duplicated_delivery_is_caught() {
    let addr = fake_server(Fault::Duplicate);
    let (code, j) = loadgen(&addr, CLOSED);
    assert_eq!(code, Some(1), "{j}");
    assert_eq!(j["tcp"]["duplicates"], 1, "{j}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
}

/// Bare requests by default, and a line break after an unanswered Login
/// reaches a server that reads lines; bare alone never would.
#[test]
fn auto_framing_reaches_a_line_reading_server() {
    let addr = fake_server(Fault::LinesOnly);
    let (code, j) = loadgen(&addr, CLOSED);
    assert_eq!(code, Some(0), "{j}");
    assert_eq!(j["tcp"]["received"], 16, "{j}");
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", &addr, "--clients", "2", "--framing", "bare"])
        .args(["--connect-timeout", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no login within"), "{err}");
}

/// Which handshakes a fake bridge answers, given whether it has seen this
/// peer's address before and how many peers it has answered.
type Answers = fn(seen_before: bool, answered: usize) -> bool;

/// A bridge that answers the handshakes `answers` lets through, and
/// nothing else (it relays no chats).
fn fake_bridge(answers: Answers) -> String {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        let mut seen = HashSet::<SocketAddr>::new();
        let mut answered = HashSet::<SocketAddr>::new();
        let mut buf = [0u8; 2048];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let Ok(PeerMessage::Handshake { .. }) = decode_peer(&buf[..n]) else {
                continue;
            };
            let seen_before = !seen.insert(from);
            if answered.contains(&from) || answers(seen_before, answered.len()) {
                answered.insert(from);
                let ok = PeerMessage::HandshakeResponse {
                    name: "br".into(),
                    status: Status::Ok,
                };
                let _ = socket.send_to(&ok.encode(), from);
            }
        }
    });
    addr
}

/// A handshake the bridge dropped is sent again: every peer joins.
#[test]
fn peers_whose_first_handshake_was_dropped_join() {
    let addr = fake_server(Fault::None);
    let bridge = fake_bridge(|seen_before, _| seen_before);
    let peers = [
        "--peers",
        "4",
        "--bridge",
        &bridge,
        "--connect-timeout",
        "5",
    ];
    let (code, j) = loadgen(&addr, &[CLOSED, &peers].concat());
    assert_eq!(code, Some(0), "{j}");
    assert_eq!(j["peers"], 4, "{j}");
    assert_eq!(j["tcp"]["lost"], 0, "{j}");
}

/// A bridge that answered some peers and not the rest is rate limiting:
/// the hint names its option, not how to start a bridge.
#[test]
fn peers_turned_away_are_blamed_on_the_greeting_limit() {
    let addr = fake_server(Fault::None);
    let bridge = fake_bridge(|_, answered| answered < 2);
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["--target", &addr, "--clients", "2", "--peers", "4"])
        .args(["--bridge", &bridge, "--connect-timeout", "1.5"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("only 2 of 4 peers"), "{err}");
    assert!(err.contains("--lan-greetings-per-second"), "{err}");
    assert!(!err.contains("--peer-name"), "{err}");
}
