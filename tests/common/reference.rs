//! Stand-ins for the two ways other MP1 servers read their input, for
//! interop tests of `mp1 connect` without those servers:
//! - [`Reading::BraceCounter`]: the protocol's reference implementation
//!   (digitalsirkeith/coe151personal, `User.read_json_object`) reads one
//!   byte as the start of an object, then bytes until its braces balance.
//!   A stray `\n` between objects is taken as the start of the next one
//!   and wedges it. Its replies are `json.dumps` output (with spaces), sent
//!   bare; it expects `Login` first and says `Disconnect` before a close.
//! - [`Reading::LineReader`]: a server that reads lines and parses each,
//!   replying with `\n` after each object.
//!
//! One client at a time; every `mtp` it understood is reported in order.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

#[derive(Clone, Copy, Debug)]
pub enum Reading {
    BraceCounter,
    LineReader,
}

pub struct Reference {
    pub port: u16,
    /// The `mtp` of each request understood, in order.
    pub seen: mpsc::Receiver<String>,
}

pub fn start(reading: Reading) -> Reference {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, seen) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        // Bounded: a wedged server gives up after a while.
        stream
            .set_read_timeout(Some(Duration::from_secs(15)))
            .unwrap();
        serve(stream, reading, tx);
    });
    Reference { port, seen }
}

fn serve(stream: TcpStream, reading: Reading, seen: mpsc::Sender<String>) {
    let mut out = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let newline = matches!(reading, Reading::LineReader);
    let mut send = |v: serde_json::Value| {
        // json.dumps's default separators: ", " and ": ".
        let text = serde_json::to_string(&v)
            .unwrap()
            .replace("\",\"", "\", \"")
            .replace("\":", "\": ");
        let _ = out.write_all(text.as_bytes());
        if newline {
            let _ = out.write_all(b"\n");
        }
    };
    loop {
        let Some(text) = (match reading {
            Reading::BraceCounter => read_json_object(&mut reader),
            Reading::LineReader => read_line(&mut reader),
        }) else {
            return;
        };
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&text) else {
            return; // the reference crashes here
        };
        let mtp = msg["mtp"].as_str().unwrap_or_default().to_string();
        let _ = seen.send(mtp.clone());
        let data = &msg["data"];
        match mtp.as_str() {
            "Login" => {
                let name = data["name"].as_str().unwrap_or_default();
                send(
                    serde_json::json!({"mtp": "AssignUsername", "data": {"name": name}, "status": "OK"}),
                );
                let joined = format!("{name} joined the server.");
                send(serde_json::json!({"mtp": "ServerMessage", "data": {"message": joined}}));
            }
            "RequestLocalTime" => {
                send(serde_json::json!({"mtp": "SendLocalTime", "data": {"time": "12:34:56"}}))
            }
            "SendChat" => {
                let echo = format!("echo {}", data["message"].as_str().unwrap_or_default());
                send(serde_json::json!({"mtp": "ServerMessage", "data": {"message": echo}}));
            }
            "Disconnect" => {
                send(serde_json::json!({"mtp": "Disconnect", "data": {"message": ""}}));
                return;
            }
            _ => {}
        }
    }
}

/// The reference's algorithm: the first byte opens an object, whatever it
/// is; then bytes until the count of `{` and `}` is back to zero.
fn read_json_object(r: &mut impl Read) -> Option<String> {
    let mut byte = [0u8];
    let mut data = Vec::new();
    r.read_exact(&mut byte).ok()?;
    data.push(byte[0]);
    let mut open = 1;
    while open > 0 {
        r.read_exact(&mut byte).ok()?;
        data.push(byte[0]);
        match byte[0] {
            b'{' => open += 1,
            b'}' => open -= 1,
            _ => {}
        }
    }
    String::from_utf8(data).ok()
}

fn read_line(r: &mut impl BufRead) -> Option<String> {
    let mut line = String::new();
    match r.read_line(&mut line) {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line),
    }
}
